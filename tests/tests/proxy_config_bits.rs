//! Small configuration points, hapx-proxy next to HAProxy 2.6 (`-c` messages and exit codes
//! compared whole with `check_alike`; traffic where behaviour matters):
//! - a master-worker reload reads the new configuration from no state: the previous load's
//!   `tune.vars` limits and process variables are gone, and the closing "Fatal errors"
//!   line follows HAProxy's rule (none when reading stopped);
//! - `regsub` with an empty regex, header and URI actions with empty words, `balance` in a
//!   frontend (read, and refused when wrong) and `random(N)` as `strtol` reads it;
//! - a fetch's own arguments read as a converter's (quotes, escapes, no trimming);
//! - `-q` hides even the alerts: only the exit code tells.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{TestDir, free_port, http_get, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_alike, check_messages, side_by_side};
use hapx_tests::{bins, require};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// An HTTP frontend `f` on port 1 (never bound by `-c`) with `lines`.
fn frontend(lines: &str) -> String {
    format!("defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{lines}\n")
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// The body of a GET of `/` at `addr`; empty when nothing answers (yet).
fn answer(addr: SocketAddr) -> String {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let request = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let mut raw = String::new();
    if conn.write_all(request).is_err() || conn.read_to_string(&mut raw).is_err() {
        return String::new();
    }
    raw.split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string()
}

/// A master (`-W`) of `binary` on `dir/cur.cfg`, its messages in `dir/NAME.err`; stopped
/// (SIGTERM, then SIGKILL) when dropped.
struct Master {
    child: Child,
    log: PathBuf,
}

impl Master {
    fn start(binary: &Path, dir: &Path, name: &str) -> Master {
        let log = dir.join(format!("{name}.err"));
        let child = Command::new(binary)
            .args(["-W", "-f"])
            .arg(dir.join("cur.cfg"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("starting the master");
        Master { child, log }
    }

    fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        kill(pid, sig).expect("signalling the master");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.signal(Signal::SIGTERM);
        let stopped = wait_for(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A configuration printing process variables `names` on `port`, after `global`.
fn vars_config(port: u16, global: &str, names: &[&str]) -> String {
    let shown: Vec<String> = (names.iter())
        .map(|n| format!("{n}=%[var(proc.{n})]"))
        .collect();
    format!(
        "global\n{global}defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:{port}\n  \
         http-request return status 200 content-type text/plain lf-string \"{}\\n\"\n",
        shown.join(" ")
    )
}

/// What a master of `binary` answers before and after each reload to the configurations of
/// `loads` (the first is the one it starts with), and its messages.
fn reloads(binary: &Path, dir: &TestDir, name: &str, port: u16, loads: &[String]) -> Vec<String> {
    let cur = dir.join("cur.cfg");
    std::fs::write(&cur, &loads[0]).expect("writing the configuration");
    let master = Master::start(binary, dir, name);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut seen = Vec::new();
    let mut last = String::new();
    let answered = wait_for(Duration::from_secs(10), || {
        last = answer(addr);
        !last.is_empty() && master.log().contains("Loading success.")
    });
    assert!(answered, "{name}: no answer at start: {}", master.log());
    seen.push(last.clone());
    for load in &loads[1..] {
        std::fs::write(&cur, load).expect("writing the configuration");
        let before = master.log().matches("Reloading HAProxy").count();
        master.signal(Signal::SIGUSR2);
        let mut signalled = Instant::now();
        // Done when the new worker answers differently, or the reload was refused.
        let previous = last.clone();
        let done = wait_for(Duration::from_secs(10), || {
            let log = master.log();
            if log.matches("Reloading HAProxy").count() == before {
                // HAProxy's master, just executed again, may miss a signal: say it again.
                if signalled.elapsed() > Duration::from_secs(1) {
                    master.signal(Signal::SIGUSR2);
                    signalled = Instant::now();
                }
                return false;
            }
            if log.contains("Error(s) found") || log.contains("Fatal errors") {
                return true;
            }
            // A loaded worker is announced once the master handles signals again.
            let loaded = log.matches("Loading success.").count() > before + 1;
            let body = answer(addr);
            let changed = !body.is_empty() && body != previous;
            if loaded && changed {
                last = body;
            }
            loaded && changed
        });
        assert!(done, "{name}: reload not done: {}", master.log());
        seen.push(last.clone());
    }
    seen.push(master.log());
    seen
}

/// The master's messages that matter here: alerts, without pids and versions.
fn alerts(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with("[ALERT]"))
        .filter_map(|l| l.split_once(" : ").map(|(_, text)| text.to_string()))
        .collect()
}

#[test]
fn a_reload_starts_from_no_variable_limits_or_process_variables() {
    let dir = temp_dir("config-bits-reload");
    let port = free_port();
    let limited = vars_config(
        port,
        "  tune.vars.proc-max-size 200\n  set-var proc.a int(1)\n",
        &["a"],
    );
    let unlimited = vars_config(
        port,
        "  set-var proc.a int(1)\n  set-var proc.b int(2)\n  set-var proc.c int(3)\n",
        &["a", "b", "c"],
    );
    // Renamed variables, again under the limit: the previous loads' ones do not count.
    let renamed = vars_config(
        port,
        "  tune.vars.proc-max-size 200\n  set-var proc.d int(4)\n",
        &["d"],
    );
    // Reading stops at this error: HAProxy says no "Fatal errors" line after it.
    let broken = format!("{renamed}  http-request set-header x \"\"\n");
    let loads = [limited, unlimited, renamed, broken];
    let ours = reloads(&bins::path("hapx-proxy"), &dir, "hapx", port, &loads);
    assert_eq!(
        ours[..4],
        ["a=1\n", "a=1 b=2 c=3\n", "d=4\n", "d=4\n"],
        "hapx: {}",
        ours[4]
    );
    let expected_alerts = [
        "config : parsing [cur.cfg:12] : error detected in frontend 'f' while parsing \
         'http-request set-header' rule : expects exactly 2 arguments.",
    ];
    let ours_alerts: Vec<String> = alerts(&ours[4])
        .into_iter()
        .map(|a| a.replace(&format!("{}/", dir.display()), ""))
        .collect();
    assert_eq!(ours_alerts[0], expected_alerts[0]);
    assert!(
        !ours[4].contains("Fatal errors"),
        "no closing line after reading stopped: {}",
        ours[4]
    );
    if !require::path("config-bits-reload", Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let theirs = reloads(Path::new(HAPROXY), &dir, "haproxy", port, &loads);
    assert_eq!(ours[..4], theirs[..4]);
    let theirs_alerts: Vec<String> = alerts(&theirs[4])
        .into_iter()
        .map(|a| a.replace(&format!("{}/", dir.display()), ""))
        .filter(|a| !a.contains("Failed to load worker") && !a.contains("exit status"))
        .collect();
    let ours_alerts: Vec<String> = ours_alerts
        .into_iter()
        .filter(|a| !a.contains("Failed to load worker") && !a.contains("exit status"))
        .collect();
    assert_eq!(ours_alerts, theirs_alerts);
}

#[test]
fn empty_regex_and_empty_action_words_are_refused_as_haproxys() {
    let lines = [
        "  http-request set-var(txn.x) str(a),regsub(,-,g)",
        "  http-request set-header x \"\"",
        "  http-request set-header x \"\" if TRUE",
        "  http-request set-header \"\" v",
        "  http-request add-header x \"\"",
        "  http-request set-header x y \"\"",
        "  http-request set-header x y \"\" if FALSE",
        "  http-request set-header x y z",
        "  http-request set-method \"\"",
        "  http-request set-method a b",
        "  http-request set-path a \"\" b",
        "  http-request set-uri \"\" if TRUE",
        "  http-request replace-header x \"\" y",
        "  http-request replace-header x y z \"\"",
        "  http-request replace-header a b c d",
        "  http-request replace-value \"\" y z",
        "  http-request replace-path \"\" x",
        "  http-request replace-uri a b c",
        "  http-request del-header \"\"",
        "  http-request del-header x \"\"",
        "  http-request del-header a b",
        "  http-response set-header x \"\"",
        "  http-response del-header \"\" if TRUE",
    ];
    for (i, line) in lines.iter().enumerate() {
        let (code, messages) = check_alike(&format!("config-bits-words-{i}"), &frontend(line));
        assert_eq!(code == 0, messages.is_empty(), "{line}: {messages:?}");
    }
    // The cases HAProxy refuses are refused.
    let (code, messages) = check_alike("config-bits-regsub", &frontend(lines[0]));
    assert_eq!(code, 1);
    assert!(messages[0].contains("missing regex in arg 1 of conversion keyword 'regsub'"));
    let (code, _) = check_alike("config-bits-empty-value", &frontend(lines[1]));
    assert_eq!(code, 1);
}

#[test]
fn balance_is_read_in_a_frontend_and_random_as_strtol() {
    let words = [
        "bogus",
        "",
        "roundrobin",
        "uri bogus",
        "hdr(",
        "random(x)",
        "random(3",
        "random()",
        "random(3)x",
        "randomx",
        "random(0x10)",
        "random(-1)",
        "random(08)",
        "random(4294967297)",
        "random(99999999999999999999)",
        "random(-99999999999999999999)",
    ];
    for (i, word) in words.iter().enumerate() {
        let line = format!("  balance {word}");
        check_alike(&format!("config-bits-fe-balance-{i}"), &frontend(&line));
        let backend = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
             backend b\n{line}\n  server s 127.0.0.1:1\n"
        );
        check_alike(&format!("config-bits-be-balance-{i}"), &backend);
    }
    let (code, messages) = check_alike("config-bits-fe-bogus", &frontend("  balance bogus"));
    assert_eq!(code, 1);
    assert!(
        messages[1].starts_with("ALERT: parsing [")
            && messages[1].contains("balance only supports")
    );
}

#[test]
fn fetch_arguments_are_read_as_converter_arguments() {
    let lines = [
        "  http-request set-var(txn.x) 'str(\"a,b\")'",
        "  http-request set-var(txn.x) \"str('x')\"",
        "  http-request set-var(txn.x) 'str(\"a\\\\\"b\")'",
        "  http-request set-var(txn.x) 'str(a\\\\,b)'",
        "  http-request set-var(txn.x) 'str(\"a)\")'",
        "  http-request set-var(txn.x) str(a",
        "  http-request set-var(txn.x) req.hdr(host",
        "  acl a req.hdr(host -m found",
        "  acl a hdr_beg(host x",
    ];
    for (i, line) in lines.iter().enumerate() {
        check_alike(&format!("config-bits-fetch-args-{i}"), &frontend(line));
    }
    let front = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind {front}\n  http-request return status 200 \
         content-type text/plain lf-string '[%[str( a )]][%[str(\" b \")]][%[str(\"c,d\")]]'\n"
    );
    let (ours, theirs) = side_by_side("config-bits-fetch-args", &config, front, |addr| {
        http_get(addr, "/", None).2
    });
    assert_eq!(ours, "[ a ][ b ][c,d]");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn quiet_hides_even_alerts() {
    let dir = temp_dir("config-bits-quiet");
    let file = dir.join("bad.cfg");
    std::fs::write(&file, frontend("  http-request set-header x \"\"")).expect("writing");
    let mut programs = vec![bins::path("hapx-proxy")];
    if require::path("config-bits-quiet", Path::new(HAPROXY), "HAProxy") {
        programs.push(HAPROXY.into());
    }
    let missing = dir.join("missing.cfg");
    for program in programs {
        for args in [vec!["-q", "-c", "-f"], vec!["-q", "-f"]] {
            for cfg in [&file, &missing] {
                let out = Command::new(&program)
                    .args(&args)
                    .arg(cfg)
                    .output()
                    .expect("running the proxy");
                let what = format!("{} {args:?} {}", program.display(), cfg.display());
                assert_eq!(out.status.code(), Some(1), "{what}");
                assert!(
                    out.stderr.is_empty(),
                    "{what}: {:?}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(out.stdout.is_empty(), "{what}");
            }
        }
        // `-V` overrides it.
        let out = Command::new(&program)
            .args(["-q", "-V", "-c", "-f"])
            .arg(&file)
            .output()
            .expect("running the proxy");
        assert!(String::from_utf8_lossy(&out.stderr).contains("expects exactly 2 arguments"));
    }
}

/// HAProxy's cookie and parameter fetches without a name read every one; hapx reads only
/// a named one and says so, rather than a false "missing argument" (header fetches without
/// a name: tests/tests/proxy_gaps.rs).
#[test]
fn nameless_cookie_and_parameter_fetches_are_refused_as_not_implemented() {
    let dir = temp_dir("config-bits-nameless");
    for (i, fetch) in ["req.cook", "urlp"].iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        let line = format!("  http-request set-var(txn.x) {fetch}");
        std::fs::write(&file, frontend(&line)).expect("writing");
        let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_eq!(code, 1, "{fetch}");
        assert!(
            messages[0].contains(&format!(
                "uses '{fetch}' without a name, which is not implemented by hapx"
            )),
            "{fetch}: {messages:?}"
        );
        if require::path("config-bits-nameless", Path::new(HAPROXY), "HAProxy") {
            assert_eq!(check_messages(Path::new(HAPROXY), &file).0, 0, "{fetch}");
        }
    }
}
