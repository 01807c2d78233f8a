//! Server state kept across reloads (`server-state-file`, `server-state-base`,
//! `server-state-file-name`, `load-server-state-from-file`), side by side with HAProxy 2.6:
//! states set over the runtime API, dumped with `show servers state` into the file, applied
//! by a fresh process of the same program (global and local files, and a master's new
//! worker after SIGUSR2); hand-written files with mismatched, malformed and invalid lines;
//! missing and empty files; the keywords' errors. Each compares `show servers state`,
//! `show stat` and the start-up messages on stderr (pids, paths and the seconds since the
//! last change set aside).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_dns::MultiDnsResponder;
use hapx_tests::proxy_rules::HAPROXY;
use hapx_tests::{bins, require};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WAIT: Duration = Duration::from_secs(10);

/// The header HAProxy writes after the version line.
const HEADER: &str = "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port";

/// Both programs, HAProxy only where it is installed (else the test says so, or fails in CI).
fn programs(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut out = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        out.push(("haproxy", HAPROXY.into()));
    }
    out
}

/// One program's running process, its stderr in a file.
struct Running {
    child: Child,
    stderr: PathBuf,
    sock: PathBuf,
}

impl Running {
    /// Starts `binary ARGS -f CFG` in the foreground; waits until its stats socket answers.
    fn start(binary: &Path, dir: &Path, name: &str, config: &str, args: &[&str]) -> Running {
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, config).expect("writing the configuration");
        let stderr = dir.join(format!("{name}.stderr"));
        let child = Command::new(binary)
            .args(args)
            .arg("-f")
            .arg(&cfg)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("a stderr file"))
            .spawn()
            .expect("starting the proxy");
        let sock = dir.join("stats.sock");
        let running = Running {
            child,
            stderr,
            sock,
        };
        assert!(
            wait_until(WAIT, || running.answers()),
            "{} did not answer on its stats socket",
            binary.display()
        );
        running
    }

    fn answers(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.sock).is_ok()
            && cli(&self.sock, "show info").contains("Pid:")
    }

    fn ask(&self, command: &str) -> String {
        cli(&self.sock, command)
    }

    /// What it printed on stderr, normalized (see [`normalize`]).
    fn messages(&self, dir: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        normalize(&text, dir)
    }

    fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Warnings and alerts with `(PID)` and the test directory set aside; the version notices
/// (each program names itself) left out.
fn normalize(text: &str, dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    text.lines()
        .filter(|l| l.starts_with("[WARNING]") || l.starts_with("[ALERT]"))
        .map(|l| {
            let (level, rest) = l.split_once('(').unwrap_or((l, ""));
            let rest = rest.split_once(") : ").map_or(rest, |(_, r)| r);
            format!("{}(PID) : {}", level, rest.replace(&dir, "DIR"))
        })
        .collect()
}

/// `show servers state` with the seconds since the last change (a timing) set aside.
fn servers_state(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut words: Vec<&str> = l.split(' ').collect();
            if !l.starts_with('#') && words.len() > 9 {
                words[9] = "T";
            }
            words.join(" ")
        })
        .collect()
}

/// The columns of `show servers state` a restart keeps: ids, names, address, states,
/// weights, the last check's status and result, the checks' state (not the health, which
/// HAProxy sets anew from the operational state).
fn kept(state: &[String]) -> Vec<String> {
    state
        .iter()
        .skip(2)
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let keep = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13];
            keep.iter()
                .filter_map(|&i| words.get(i).copied())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Each server's `show stat` status and weight.
fn stat_statuses(running: &Running, backend: &str, servers: &[&str]) -> Vec<String> {
    let csv = running.ask("show stat");
    servers
        .iter()
        .map(|s| {
            let row = stat_row(&csv, backend, s).unwrap_or_default();
            let get = |k: &str| row.get(k).cloned().unwrap_or_default();
            format!("{s} {} {}", get("status"), get("weight"))
        })
        .collect()
}

/// What a start with a state file shows.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    messages: Vec<String>,
    state: Vec<String>,
    stat: Vec<String>,
}

fn seen(running: &Running, dir: &Path, backend: &str, servers: &[&str]) -> Seen {
    Seen {
        messages: running.messages(dir),
        state: servers_state(&running.ask("show servers state")),
        stat: stat_statuses(running, backend, servers),
    }
}

/// Compares each program's [`Seen`] with HAProxy's, after checking hapx's with `expect`.
fn agree(test: &str, seen: Vec<(&str, Seen)>, expect: impl Fn(&Seen)) {
    let mut reference: Option<Seen> = None;
    for (name, s) in seen {
        if name == "hapx" {
            expect(&s);
        }
        match &reference {
            None => reference = Some(s),
            Some(r) => assert_eq!(&s, r, "{test}: {name} differs"),
        }
    }
}

fn defaults(dir: &Path, global: &str, port: u16) -> String {
    format!(
        "global\n  stats socket {} level admin\n{global}\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n",
        dir.join("stats.sock").display()
    )
}

/// Ports nobody listens on (taken from the free ones, so that no test's server is there).
fn closed_ports<const N: usize>() -> [u16; N] {
    std::array::from_fn(|_| free_port())
}

#[test]
fn runtime_changes_survive_a_restart_with_the_global_file() {
    let test = "runtime_changes_survive_a_restart_with_the_global_file";
    let dir = temp_dir("server-state-global");
    let mut all = Vec::new();
    let [p1, p2, p3, p4, p5] = closed_ports();
    let front = free_port();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let config = defaults(&dir, "  server-state-file ./state\n", front)
            + &format!(
                "backend be\n  load-server-state-from-file global\n\
             server s1 127.0.0.1:{p1} weight 10\n  server s2 127.0.0.1:{p2} weight 20\n\
             server s3 127.0.0.1:{p3}\n  server s4 127.0.0.1:{p4} check inter 1h\n\
             server s5 127.0.0.1:{p5}\n"
            );
        let first = Running::start(&binary, &dir, "first", &config, &["-db"]);
        assert!(wait_until(WAIT, || stat_statuses(&first, "be", &["s4"])[0]
            .starts_with("s4 DOWN")));
        for command in [
            "disable server be/s1",
            "set server be/s2 weight 7",
            "set server be/s3 state drain",
            "disable health be/s4",
            "set server be/s5 health down",
        ] {
            first.ask(command);
        }
        let dump = first.ask("show servers state");
        std::fs::write(dir.join("state"), &dump).expect("writing the state");
        first.stop();
        let second = Running::start(&binary, &dir, "second", &config, &["-db"]);
        let servers = ["s1", "s2", "s3", "s4", "s5"];
        let s = seen(&second, &dir, "be", &servers);
        // What was dumped is what the new process shows.
        assert_eq!(
            kept(&s.state),
            kept(&servers_state(&dump)),
            "{name}: state kept"
        );
        all.push((name, s));
        second.stop();
    }
    agree(test, all, |s| {
        assert_eq!(
            s.stat,
            [
                "s1 MAINT 10",
                "s2 no check 7",
                "s3 DRAIN 1",
                "s4 DOWN 1",
                "s5 DOWN 1"
            ]
        );
        assert!(
            s.messages
                .iter()
                .any(|m| m.ends_with("Server be/s3 remains in forced drain mode.")),
            "{:?}",
            s.messages
        );
    });
}

/// A local state file per backend, hand-written: ids and names that do not match, a server
/// no longer configured, a weight or a maintenance changed in the configuration since.
#[test]
fn local_files_are_checked_against_the_backend() {
    let test = "local_files_are_checked_against_the_backend";
    let dir = temp_dir("server-state-local");
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        let base = dir.join("base");
        std::fs::create_dir_all(&base).expect("a directory");
        let line = |rest: &str| format!("{rest} 127.0.0.1 ");
        let file = |lines: &[String]| format!("1\n{HEADER}\n{}\n", lines.join("\n"));
        std::fs::write(
            base.join("be.state"),
            file(&[
                line("9 be 1 s1") + "0 1 10 10 0 1 0 0 0 0 0 0 - 1 - 0 0 - - 0",
                line("3 be 2 s2") + "2 0 7 20 4 1 0 2 0 0 0 0 - 2 - 0 0 - - 0",
                line("3 be 3 gone") + "2 0 7 20 4 1 0 2 0 0 0 0 - 2 - 0 0 - - 0",
                line("3 be 4 s3") + "0 1 1 1 0 1 0 0 0 0 0 0 - 3 - 0 0 - - 0",
                line("3 be 5 s4") + "2 8 3 0 0 1 0 0 0 0 0 0 - 4 - 0 0 - - 0",
                line("3 other 6 s5") + "0 1 1 1 0 1 0 0 0 0 0 0 - 5 - 0 0 - - 0",
                line("7 other 6 s5") + "0 1 1 1 0 1 0 0 0 0 0 0 - 5 - 0 0 - - 0",
            ]),
        )
        .expect("writing a state");
        // Named after the backend: `server-state-file-name` without a name.
        std::fs::write(
            base.join("be2"),
            file(&[line("4 be2 1 s1") + "3 0 1 1 0 1 0 0 0 0 0 0 - 1 - 0 0 - - 0"]),
        )
        .expect("writing a state");
        let config = defaults(
            &dir,
            &format!("  server-state-base {}\n", base.display()),
            free_port(),
        ) + "backend be\n  load-server-state-from-file local\n  server-state-file-name be.state\n\
               server s1 127.0.0.1:1 weight 10\n  server s2 127.0.0.1:2 weight 30\n\
               server s3 127.0.0.1:3 disabled check inter 1h\n  server s4 127.0.0.1:4 weight 5\n\
               server s5 127.0.0.1:5\n\
               backend be2\n  load-server-state-from-file local\n  server-state-file-name\n\
               server s1 127.0.0.1:1\n\
               backend be3\n  load-server-state-from-file none\n  server s1 127.0.0.1:1\n";
        let running = Running::start(&binary, &dir, "local", &config, &["-db"]);
        let mut s = seen(&running, &dir, "be", &["s1", "s2", "s3", "s4", "s5"]);
        s.stat.extend(
            stat_statuses(&running, "be2", &["s1"])
                .into_iter()
                .map(|l| "be2 ".to_string() + &l),
        );
        all.push((name, s));
        running.stop();
    }
    agree(test, all, |s| {
        assert_eq!(
            s.stat,
            [
                "s1 MAINT 10",
                // The weight changed in the configuration: the file's is not kept.
                "s2 no check 30",
                "s3 MAINT 1",
                // Drained with a configured weight of 0 before: the drain is dropped.
                "s4 no check 5",
                "s5 no check 1",
                "be2 s1 NOLB 1",
            ]
        );
        let expected = [
            "[WARNING]  (PID) : config : Proxy 'be': backend ID mismatch: from server state file: '9', from running config '3'",
            "[WARNING]  (PID) : config : Proxy 'be': backend name mismatch: from server state file: 'other', from running config 'be'",
        ];
        for e in expected {
            assert!(s.messages.iter().any(|m| m == e), "{e} in {:?}", s.messages);
        }
        assert!(
            s.messages
                .iter()
                .any(|m| m.ends_with("Proxy 'be': can't find server 'gone' in backend 'be'")),
            "{:?}",
            s.messages
        );
    });
}

/// Lines HAProxy refuses: values out of range (the server keeps its configuration), a line
/// cut short (the whole file ignored), and files it cannot use.
#[test]
fn bad_files_and_lines_are_reported_like_haproxy() {
    let test = "bad_files_and_lines_are_reported_like_haproxy";
    let dir = temp_dir("server-state-bad");
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let values = "127.0.0.1 2 0 1 1 0 1 0 0 0 0 0 0 - 1 - 0 0 - - 0";
        std::fs::write(
            dir.join("global"),
            format!(
                "1\n{HEADER}\n2 be 1 s1 127.0.0.1 5 9 x 1 -3 99 7 0 0 0 2 2 bad_name! 99999 _x 0 0 - - 0\n\
                 2 be 2 s2 127.0.0.1 0 0 1 1 0 1 0 0 0 0 0 0 - 2 - 0 0 - - 0 extra\n\
                 2 be 3 s3 127.0.0.1 3 0 1 1 0 1 0 0 0 0 0 0 - 3 -\n\
                 2 be 3 s3 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 3 - 0 0 - - 0\n"
            ),
        )
        .expect("writing a state");
        std::fs::write(
            dir.join("cut"),
            format!("1\n{HEADER}\n1 cut 1 s1 {values}\n2 cut 1 s1\n"),
        )
        .expect("writing a state");
        std::fs::write(dir.join("v2"), format!("2\n{HEADER}\n1 v2 1 s1 {values}\n"))
            .expect("writing a state");
        std::fs::write(dir.join("empty"), "").expect("writing a state");
        let config = defaults(&dir, "  server-state-file ./global\n", free_port())
            + "backend be\n  load-server-state-from-file global\n  server s1 127.0.0.1:1\n\
               server s2 127.0.0.1:2\n  server s3 127.0.0.1:3\n\
               backend cut\n  load-server-state-from-file local\n  server s1 127.0.0.1:1\n\
               backend v2\n  load-server-state-from-file local\n  server s1 127.0.0.1:1\n\
               backend empty\n  load-server-state-from-file local\n  server s1 127.0.0.1:1\n\
               backend missing\n  load-server-state-from-file local\n  server s1 127.0.0.1:1\n";
        let running = Running::start(&binary, &dir, "bad", &config, &["-db"]);
        all.push((name, seen(&running, &dir, "be", &["s1", "s2", "s3"])));
        running.stop();
    }
    agree(test, all, |s| {
        assert_eq!(s.stat, ["s1 no check 1", "s2 DOWN 1", "s3 NOLB 1"]);
        let expected = [
            "[WARNING]  (PID) : config : server-state application failed for server 'be/s1', invalid srv_op_state value '5', invalid srv_admin_state value '9', invalid srv_uweight value 'x', invalid srv_check_status value '99', invalid srv_check_result value '7', invalid bk_f_forced_id value '2', invalid srv_f_forced_id value '2', invalid srv_fqdn value 'bad_name!', invalid srv_port value '99999'",
            "[WARNING]  (PID) : config : Proxy 'cut': corrupted server state file 'cut' at line 3.",
            "[WARNING]  (PID) : config : Proxy 'v2': Can't get version of the server state file 'v2'.",
            "[WARNING]  (PID) : config : Proxy 'empty': Can't get version of the server state file 'empty'.",
            "[WARNING]  (PID) : config : Proxy 'missing': Can't open server state file 'missing': No such file or directory.",
        ];
        for e in expected {
            assert!(s.messages.iter().any(|m| m == e), "{e} in {:?}", s.messages);
        }
    });
}

/// The global file missing, and a backend asking for it when none is set.
#[test]
fn a_missing_global_file_is_said() {
    let test = "a_missing_global_file_is_said";
    let dir = temp_dir("server-state-missing");
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let port = free_port();
        let backend = "backend be\n  load-server-state-from-file global\n  server s1 127.0.0.1:1\n";
        let missing = defaults(&dir, "  server-state-file ./nothing\n", port) + backend;
        let running = Running::start(&binary, &dir, "missing", &missing, &["-db"]);
        let mut messages = running.messages(&dir);
        running.stop();
        let unset = defaults(&dir, "", port) + backend;
        let running = Running::start(&binary, &dir, "unset", &unset, &["-db"]);
        messages.extend(running.messages(&dir));
        running.stop();
        all.push((name, messages));
    }
    let expected = [
        "[WARNING]  (PID) : config : config: Can't open global server state file './nothing': No such file or directory",
        "[WARNING]  (PID) : config : backend 'be' configured to load server state file from global section 'server-state-file' directive. Unfortunately, 'server-state-file' is not set!",
    ];
    for (name, messages) in all {
        assert_eq!(messages, expected, "{name}");
    }
}

/// A tracking server inherits the maintenance and drain the file gives the server it
/// tracks (HAProxy's IMAINT and IDRAIN, admin states 2 and 16).
#[test]
fn trackers_inherit_the_files_maintenance_and_drain() {
    let test = "trackers_inherit_the_files_maintenance_and_drain";
    let dir = temp_dir("server-state-track");
    let [p1, p2] = closed_ports();
    let front = free_port();
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::write(
            dir.join("state"),
            format!(
                "1\n{HEADER}\n3 be 1 s1 127.0.0.1 0 1 1 1 0 1 0 0 14 0 0 0 - {p1} - 0 0 - - 0\n\
                 3 be 2 s2 127.0.0.1 2 8 1 1 0 1 0 0 6 0 0 0 - {p2} - 0 0 - - 0\n"
            ),
        )
        .expect("writing a state");
        let config = defaults(&dir, "  server-state-file ./state\n", front)
            + &format!(
                "backend be\n  load-server-state-from-file global\n\
                 server s1 127.0.0.1:{p1} check inter 1h\n  server s2 127.0.0.1:{p2} check inter 1h\n\
                 backend trackers\n  server t1 127.0.0.1:{p1} track be/s1\n\
                 server t2 127.0.0.1:{p2} track be/s2\n"
            );
        let running = Running::start(&binary, &dir, "track", &config, &["-db"]);
        let state = servers_state(&running.ask("show servers state trackers"));
        // The admin states only: the trackers' own checks follow their servers'.
        let admin: Vec<String> = state
            .iter()
            .skip(2)
            .map(|l| l.split(' ').take(7).collect::<Vec<_>>().join(" "))
            .collect();
        let stat = stat_statuses(&running, "trackers", &["t1"]);
        all.push((name, admin, stat));
        running.stop();
    }
    for (name, admin, stat) in &all {
        assert_eq!(
            admin,
            &[
                "4 trackers 1 t1 127.0.0.1 0 2".to_string(),
                "4 trackers 2 t2 127.0.0.1 2 16".to_string(),
            ],
            "{name}"
        );
        assert_eq!(stat, &["t1 MAINT (via be/s1) 1"], "{name}");
    }
}

/// `-c` reads the files as a start does, and says so.
#[test]
fn check_mode_reads_the_files() {
    let test = "check_mode_reads_the_files";
    let dir = temp_dir("server-state-check");
    std::fs::write(
        dir.join("state"),
        format!("1\n{HEADER}\n9 be 1 s1 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 1 - 0 0 - - 0\n"),
    )
    .expect("writing a state");
    let config = defaults(&dir, "  server-state-file ./nothing\n", free_port())
        + &format!(
            "backend be\n  load-server-state-from-file local\n  server-state-file-name {}\n\
             server s1 127.0.0.1:1\n",
            dir.join("state").display()
        );
    let cfg = dir.join("check.cfg");
    std::fs::write(&cfg, config).expect("writing the configuration");
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let out = Command::new(binary)
            .args(["-c", "-f"])
            .arg(&cfg)
            .current_dir(&*dir)
            .output()
            .expect("running -c");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        all.push((name, out.status.code(), stdout, normalize(&stderr, &dir)));
    }
    let hapx = &all[0];
    assert_eq!(hapx.1, Some(0));
    assert_eq!(
        hapx.2,
        "Warnings were found.\nConfiguration file is valid\n"
    );
    assert_eq!(
        hapx.3,
        [
            "[WARNING]  (PID) : config : config: Can't open global server state file './nothing': No such file or directory",
            "[WARNING]  (PID) : config : Proxy 'be': backend ID mismatch: from server state file: '9', from running config '3'",
            "[WARNING]  (PID) : config : Server be/s1 is DOWN, changed from server-state after a reload. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        ]
    );
    for other in &all[1..] {
        assert_eq!(other.1, hapx.1, "{} status", other.0);
        assert_eq!(
            (&other.2, &other.3),
            (&hapx.2, &hapx.3),
            "{} differs",
            other.0
        );
    }
}

/// The keywords' own errors, with `-c`.
#[test]
fn keyword_errors_are_haproxys() {
    let test = "keyword_errors_are_haproxys";
    let dir = temp_dir("server-state-keywords");
    let config = "global\n  server-state-file\n  server-state-base\n  server-state-file /a\n\
                  server-state-file /b\n  server-state-base /x\n  server-state-base /y\n\
                  defaults\n  load-server-state-from-file\n\
                  frontend f\n  bind 127.0.0.1:1\n  load-server-state-from-file local\n\
                  backend b\n  load-server-state-from-file bogus\n  server-state-file-name a b\n\
                  server s 127.0.0.1:1\n";
    let cfg = dir.join("keywords.cfg");
    std::fs::write(&cfg, config).expect("writing the configuration");
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let out = Command::new(binary)
            .args(["-c", "-f"])
            .arg(&cfg)
            .output()
            .expect("running -c");
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        all.push((name, out.status.code(), normalize(&text, &dir)));
    }
    let hapx = &all[0];
    assert_eq!(hapx.1, Some(1));
    assert!(
        hapx.2.iter().any(|l| l.ends_with(
            "parsing [DIR/keywords.cfg:14] : 'load-server-state-from-file' expects 'global', 'local' or 'none'. Got 'bogus'"
        )),
        "{:?}",
        hapx.2
    );
    for other in &all[1..] {
        assert_eq!(
            (other.1, &other.2),
            (hapx.1, &hapx.2),
            "{} differs",
            other.0
        );
    }
}

/// Master-worker mode: each new worker reads the file, so a SIGUSR2 reload after dumping
/// keeps what was set at run time.
#[test]
fn a_masters_new_worker_applies_the_file() {
    let test = "a_masters_new_worker_applies_the_file";
    let dir = temp_dir("server-state-master");
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let config = defaults(&dir, "  server-state-file ./state\n", free_port())
            + "backend be\n  load-server-state-from-file global\n\
               server s1 127.0.0.1:1\n  server s2 127.0.0.1:2\n";
        let master = Running::start(&binary, &dir, "master", &config, &["-W", "-db"]);
        let pid_of = |r: &Running| {
            let info = r.ask("show info");
            info.lines()
                .find_map(|l| l.strip_prefix("Pid: "))
                .unwrap_or_default()
                .to_string()
        };
        // Signals are the master's once it says it is loaded.
        let loaded = || {
            std::fs::read_to_string(&master.stderr).is_ok_and(|t| t.contains("Loading success."))
        };
        assert!(wait_until(WAIT, loaded), "{name}: the master did not load");
        let first_worker = pid_of(&master);
        master.ask("disable server be/s1");
        master.ask("set server be/s2 weight 9");
        let dump = master.ask("show servers state");
        std::fs::write(dir.join("state"), &dump).expect("writing the state");
        // HAProxy's master may miss a SIGUSR2 sent right after its start (it then never
        // reloads): the reference is sent it again; hapx must take the first.
        let attempts = if name == "hapx" { 1 } else { 5 };
        let reloaded = (0..attempts).any(|_| {
            let _ = kill(Pid::from_raw(master.child.id() as i32), Signal::SIGUSR2);
            wait_until(WAIT / attempts, || {
                master.answers() && pid_of(&master) != first_worker
            })
        });
        assert!(
            reloaded,
            "{name}: no new worker: {}",
            std::fs::read_to_string(&master.stderr).unwrap_or_default()
        );
        let state = servers_state(&master.ask("show servers state"));
        assert_eq!(
            kept(&state),
            kept(&servers_state(&dump)),
            "{name}: kept by the new worker"
        );
        all.push((name, state, stat_statuses(&master, "be", &["s1", "s2"])));
        master.stop();
    }
    for (name, _, stat) in &all {
        assert_eq!(stat, &["s1 MAINT 1", "s2 no check 9"], "{name}");
    }
    if let [(_, a, _), (_, b, _)] = &all[..] {
        assert_eq!(a, b);
    }
}

/// `-c -f CFG` run in `dir`, killed if it outlasts `WAIT`: its exit code (None when killed),
/// stdout, and stderr normalized.
fn check_run(binary: &Path, cfg: &Path, dir: &Path) -> (Option<i32>, String, Vec<String>) {
    let stdout = dir.join("check.stdout");
    let stderr = dir.join("check.stderr");
    let mut child = Command::new(binary)
        .args(["-c", "-f"])
        .arg(cfg)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("a stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("a stderr file"))
        .spawn()
        .expect("running -c");
    let mut code = None;
    let done = wait_until(WAIT, || match child.try_wait() {
        Ok(Some(status)) => {
            code = status.code();
            true
        }
        _ => false,
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&stdout), normalize(&read(&stderr), dir))
}

/// Runs `-c` on `config` with each program (in a directory of its own, prepared by
/// `prepare`), and checks that they agree; hapx's result.
fn check_agree(
    test: &str,
    config: &str,
    prepare: impl Fn(&Path),
) -> (Option<i32>, String, Vec<String>) {
    let dir = temp_dir(test);
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        // The same path for both, so that the messages naming it agree.
        let dir = dir.join("run");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        prepare(&dir);
        let cfg = dir.join("check.cfg");
        std::fs::write(&cfg, config.replace("DIR", &dir.display().to_string()))
            .expect("writing the configuration");
        all.push((name, check_run(&binary, &cfg, &dir)));
    }
    let hapx = all[0].1.clone();
    for (name, other) in &all[1..] {
        assert_eq!(other, &hapx, "{test}: {name} differs from hapx");
    }
    hapx
}

/// A version-1 state line for server `id`/`name` of backend `be` (id `be_id`), at `addr`,
/// with operational state `op` (0 DOWN, 2 running).
fn state_line(be_id: u32, be: &str, id: u32, name: &str, addr: &str, op: u32) -> String {
    format!("{be_id} {be} {id} {name} {addr} {op} 0 1 1 10 1 0 2 0 0 0 0 - 80 - 0 0 - - 0")
}

const CHECK_DEFAULTS: &str = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  \
                              timeout server 5s\n";

/// `init-addr last` on a name that does not resolve: the server starts on the address the
/// file kept, as HAProxy's `srv_init_addr` runs after the files; `none` before `last`
/// leaves the server without an address (`MAINT (resolution)`), a name resolved before
/// `last` wins, and a server written with an address keeps it.
#[test]
fn init_addr_last_takes_the_files_address() {
    let test = "init_addr_last_takes_the_files_address";
    let dir = temp_dir("server-state-init-addr");
    let servers = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"];
    let mut all = Vec::new();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let lines: Vec<String> = (1..=6)
            .map(|n| state_line(3, "be", n, &format!("a{n}"), &format!("10.0.0.{n}"), 2))
            .collect();
        std::fs::write(
            dir.join("state"),
            format!("1\n{HEADER}\n{}\n", lines.join("\n")),
        )
        .expect("writing a state");
        let config = defaults(&dir, "  server-state-file ./state\n", free_port())
            + "backend be\n  load-server-state-from-file global\n\
               server a1 nonexistent.invalid:80 init-addr last\n\
               server a2 nonexistent.invalid:80 init-addr libc,last\n\
               server a3 nonexistent.invalid:80 init-addr none,last\n\
               server a4 localhost:80 init-addr libc,last\n\
               server a5 localhost:80 init-addr last,libc\n\
               server a6 127.0.0.1:80\n\
               server a7 nonexistent.invalid:80 init-addr last,libc,10.9.9.9\n";
        let running = Running::start(&binary, &dir, "init-addr", &config, &["-db"]);
        let csv = running.ask("show stat");
        let mut s = seen(&running, &dir, "be", &servers);
        // The health of a server in `MAINT (resolution)` is not compared: hapx's differs
        // from HAProxy's with a file or without, which is not this test's matter.
        s.state = kept(&s.state);
        s.stat = servers
            .iter()
            .map(|sv| {
                let row = stat_row(&csv, "be", sv).unwrap_or_default();
                let get = |k: &str| row.get(k).cloned().unwrap_or_default();
                format!("{sv} {} {}", get("status"), get("addr"))
            })
            .collect();
        all.push((name, s));
        running.stop();
    }
    agree(test, all, |s| {
        assert_eq!(
            s.stat,
            [
                "a1 no check 10.0.0.1:80",
                "a2 no check 10.0.0.2:80",
                "a3 MAINT (resolution) ",
                "a4 no check 127.0.0.1:80",
                "a5 no check 10.0.0.5:80",
                "a6 no check 127.0.0.1:80",
                "a7 no check 10.9.9.9:80",
            ]
        );
        assert_eq!(
            s.messages,
            [
                "[WARNING]  (PID) : config : [DIR/init-addr.cfg:20] : 'server be/a7' : could not resolve address 'nonexistent.invalid', falling back to configured address."
            ]
        );
    });
}

/// `init-addr last` with no line for the server: no address, and no start, in HAProxy's
/// words (`-c` says it too).
#[test]
fn init_addr_last_without_a_line_is_haproxys_failure() {
    let test = "init_addr_last_without_a_line_is_haproxys_failure";
    let config = "global\n  server-state-file DIR/state\n".to_string()
        + CHECK_DEFAULTS
        + "  load-server-state-from-file global\n\
           frontend fe\n  bind 127.0.0.1:1\n  default_backend be\n\
           backend be\n  server a1 nonexistent.invalid:80 init-addr last\n\
           server a2 nonexistent.invalid:80 init-addr last,libc\n\
           server a3 nonexistent.invalid:80 init-addr last,none\n\
           server a4 nonexistent.invalid:80 init-addr libc,none\n";
    let (code, stdout, messages) = check_agree(test, &config, |dir| {
        let line = state_line(2, "be", 9, "other", "10.0.0.1", 2);
        std::fs::write(dir.join("state"), format!("1\n{line}\n")).expect("writing a state");
    });
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        messages,
        [
            "[ALERT]    (PID) : config : [DIR/check.cfg:13] : 'server be/a1' : no method found to resolve address 'nonexistent.invalid'.",
            "[ALERT]    (PID) : config : [DIR/check.cfg:14] : 'server be/a2' : could not resolve address 'nonexistent.invalid'.",
            "[WARNING]  (PID) : config : [DIR/check.cfg:16] : 'server be/a4' : could not resolve address 'nonexistent.invalid', disabling server.",
            "[ALERT]    (PID) : config : Failed to initialize server(s) addr.",
        ]
    );
}

/// An endless file (`/dev/zero`) is read as `fgets` reads it, one bounded line at a time:
/// no version, said at once; a directory has no version either.
#[test]
fn endless_files_and_directories_have_no_version() {
    let test = "endless_files_and_directories_have_no_version";
    let config = "global\n  server-state-file DIR/zero\n  server-state-base DIR\n".to_string()
        + CHECK_DEFAULTS
        + "frontend fe\n  bind 127.0.0.1:1\n  default_backend be\n\
           backend be\n  load-server-state-from-file global\n  server s1 127.0.0.1:1\n\
           backend dir\n  load-server-state-from-file local\n  server s1 127.0.0.1:1\n";
    let (code, stdout, messages) = check_agree(test, &config, |dir| {
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).expect("a link");
        std::fs::create_dir(dir.join("dir")).expect("a directory");
    });
    assert_eq!(code, Some(0), "{messages:?}");
    assert_eq!(
        stdout,
        "Warnings were found.\nConfiguration file is valid\n"
    );
    assert_eq!(
        messages,
        [
            "[WARNING]  (PID) : config : config: Can't get version of the global server state file 'DIR/zero'.",
            "[WARNING]  (PID) : config : Proxy 'dir': Can't get version of the server state file 'DIR/dir'.",
        ]
    );
}

/// Lines are read as HAProxy 2.6's `fgets` into 2000 bytes reads them: one of 1999 bytes
/// (its newline included) applies, one of 2000 is cut, so the file is corrupted; a NUL
/// ends the line (C string), so a line with one is cut too.
#[test]
fn long_lines_and_nul_bytes_are_read_as_fgets_reads_them() {
    let test = "long_lines_and_nul_bytes_are_read_as_fgets_reads_them";
    let config = "global\n  server-state-base DIR\n".to_string()
        + CHECK_DEFAULTS
        + "  load-server-state-from-file local\n\
           frontend fe\n  bind 127.0.0.1:1\n  default_backend fits\n\
           backend fits\n  server s1 127.0.0.1:1\n\
           backend long\n  server s1 127.0.0.1:1\n\
           backend nul\n  server s1 127.0.0.1:1\n  server s2 127.0.0.1:2\n";
    let (code, stdout, messages) = check_agree(test, &config, |dir| {
        let padded = |be_id, be: &str, len: usize| {
            let line = state_line(be_id, be, 1, "s1", "127.0.0.1", 0);
            format!("{line}{}\n", " ".repeat(len - line.len() - 1))
        };
        let fits = padded(2, "fits", 1999);
        assert_eq!(fits.len(), 1999);
        std::fs::write(dir.join("fits"), format!("1\n{fits}")).expect("writing a state");
        let long = padded(3, "long", 2000);
        std::fs::write(dir.join("long"), format!("1\n{long}")).expect("writing a state");
        let s1 = state_line(4, "nul", 1, "s1", "127.0.0.1", 0);
        let s2 = state_line(4, "nul", 2, "s2", "127.0.0.1", 0);
        std::fs::write(dir.join("nul"), format!("1\n{s1}\n{s2}\0junk\n")).expect("writing");
    });
    assert_eq!(code, Some(0), "{messages:?}");
    assert_eq!(
        stdout,
        "Warnings were found.\nConfiguration file is valid\n"
    );
    assert_eq!(
        messages,
        [
            "[WARNING]  (PID) : config : Server fits/s1 is DOWN, changed from server-state after a reload. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
            "[WARNING]  (PID) : config : Proxy 'long': corrupted server state file 'DIR/long' at line 1.",
            "[WARNING]  (PID) : config : Proxy 'nul': corrupted server state file 'DIR/nul' at line 2.",
        ]
    );
}

/// `server-state-file-name` in a defaults section (no name, `use-backend-name` or a name)
/// does not reach its backends: each reads the file named after itself.
#[test]
fn defaults_file_names_do_not_reach_backends() {
    let test = "defaults_file_names_do_not_reach_backends";
    let config = "global\n  server-state-base DIR\n".to_string()
        + CHECK_DEFAULTS
        + "  load-server-state-from-file local\n  server-state-file-name\n\
           frontend fe\n  bind 127.0.0.1:1\n  default_backend be\n\
           backend be\n  server s1 127.0.0.1:1\n"
        + &CHECK_DEFAULTS.replace("defaults", "defaults named")
        + "  load-server-state-from-file local\n  server-state-file-name other\n\
           backend be2\n  server s1 127.0.0.1:1\n";
    let (code, _, messages) = check_agree(test, &config, |dir| {
        for (be_id, be) in [(2, "be"), (3, "be2")] {
            let line = state_line(be_id, be, 1, "s1", "127.0.0.1", 0);
            std::fs::write(dir.join(be), format!("1\n{line}\n")).expect("writing a state");
        }
        // Were the defaults' name used, the servers would stay UP.
        let line = state_line(3, "be2", 1, "s1", "127.0.0.1", 2);
        std::fs::write(dir.join("other"), format!("1\n{line}\n")).expect("writing a state");
    });
    assert_eq!(code, Some(0), "{messages:?}");
    let down = |be: &str| {
        format!(
            "[WARNING]  (PID) : config : Server {be}/s1 is DOWN, changed from server-state after a reload. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        )
    };
    assert_eq!(messages, [down("be"), down("be2")]);
}

/// Without HAProxy's runtime API frontend (made by `stats socket`, `stats timeout` or
/// `stats maxconn`), the first proxy is id 1; with it, 2. A local file's `be_id` is
/// checked against that.
#[test]
fn backend_ids_start_at_one_without_a_stats_frontend() {
    let test = "backend_ids_start_at_one_without_a_stats_frontend";
    for (global, be_id) in [("", 2), ("  stats timeout 10s\n", 3)] {
        let config = format!("global\n{global}  server-state-base DIR\n")
            + CHECK_DEFAULTS
            + "  load-server-state-from-file local\n\
               frontend fe\n  bind 127.0.0.1:1\n  default_backend be\n\
               backend be\n  server s1 127.0.0.1:1\n";
        let (code, _, messages) = check_agree(test, &config, |dir| {
            let line = state_line(99, "be", 1, "s1", "127.0.0.1", 2);
            std::fs::write(dir.join("be"), format!("1\n{line}\n")).expect("writing a state");
        });
        assert_eq!(code, Some(0), "{messages:?}");
        assert_eq!(
            messages,
            [format!(
                "[WARNING]  (PID) : config : Proxy 'be': backend ID mismatch: from server state file: '99', from running config '{be_id}'"
            )]
        );
    }
}

/// The messages of reading the files go to stderr only, not to the backends' log
/// servers (HAProxy's are not set up yet then), with `-c` or not.
#[test]
fn state_messages_do_not_reach_syslog() {
    let test = "state_messages_do_not_reach_syslog";
    let dir = temp_dir("server-state-syslog");
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let syslog = std::net::UdpSocket::bind("127.0.0.1:0").expect("a syslog socket");
        syslog.set_read_timeout(Some(WAIT)).expect("a timeout");
        let log_port = syslog.local_addr().expect("its address").port();
        let line = state_line(3, "be", 1, "s1", "127.0.0.1", 0);
        std::fs::write(dir.join("state"), format!("1\n{line}\n")).expect("writing a state");
        let front = free_port();
        let config = defaults(&dir, "  server-state-file ./state\n", front).replace(
            "defaults\n",
            &format!("defaults\n  log 127.0.0.1:{log_port} local0\n  option httplog\n"),
        ) + "backend be\n  load-server-state-from-file global\n  server s1 127.0.0.1:1\n";
        let cfg = dir.join("syslog.cfg");
        std::fs::write(&cfg, &config).expect("writing the configuration");
        let (code, _, messages) = check_run(&binary, &cfg, &dir);
        assert_eq!(code, Some(0), "{name}: {messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("is DOWN, changed from server-state"))
        );
        let running = Running::start(&binary, &dir, "syslog", &config, &["-db"]);
        // A request's log line marks the end of what start-up may have sent.
        let mut client = std::net::TcpStream::connect(("127.0.0.1", front)).expect("connecting");
        std::io::Write::write_all(&mut client, b"GET /marker HTTP/1.0\r\n\r\n").expect("a request");
        let mut reply = String::new();
        let _ = std::io::Read::read_to_string(&mut client, &mut reply);
        let mut datagrams = Vec::new();
        let mut buf = [0u8; 4096];
        while !datagrams.iter().any(|d: &String| d.contains("/marker")) {
            let n = syslog.recv(&mut buf).expect("the request's log line");
            datagrams.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        running.stop();
        assert!(
            !datagrams.iter().any(|d| d.contains("server-state")),
            "{name} sent {datagrams:?}"
        );
    }
}

/// Each program's dump read by the other: HAProxy's `show servers state` applied by hapx
/// as HAProxy applies it, and hapx's by HAProxy, so that the two can replace each other
/// across a reload.
#[test]
fn each_programs_dump_is_read_by_the_other() {
    let test = "each_programs_dump_is_read_by_the_other";
    let dir = temp_dir("server-state-cross");
    let programs = programs(test);
    let [p1, p2, p3, p4] = closed_ports();
    let front = free_port();
    let config = |dir: &Path| {
        defaults(dir, "  server-state-file ./state\n", front)
            + &format!(
                "backend be\n  load-server-state-from-file global\n\
                 server s1 127.0.0.1:{p1} weight 10\n  server s2 127.0.0.1:{p2} weight 20\n\
                 server s3 127.0.0.1:{p3}\n  server s4 localhost:{p4} check inter 1h\n"
            )
    };
    let servers = ["s1", "s2", "s3", "s4"];
    let mut dumps = Vec::new();
    for (name, binary) in &programs {
        let dir = dir.join(format!("{name}-writes"));
        std::fs::create_dir_all(&dir).expect("a directory");
        let first = Running::start(binary, &dir, "first", &config(&dir), &["-db"]);
        assert!(wait_until(WAIT, || stat_statuses(&first, "be", &["s4"])[0]
            .starts_with("s4 DOWN")));
        for command in [
            "disable server be/s1",
            "set server be/s2 weight 7",
            "set server be/s3 state drain",
            "set server be/s4 addr 127.0.0.2",
            "disable health be/s4",
        ] {
            first.ask(command);
        }
        dumps.push((*name, first.ask("show servers state")));
        first.stop();
    }
    for (writer, dump) in &dumps {
        let mut all = Vec::new();
        for (reader, binary) in &programs {
            let dir = dir.join(format!("{reader}-reads-{writer}"));
            std::fs::create_dir_all(&dir).expect("a directory");
            std::fs::write(dir.join("state"), dump).expect("writing the state");
            let running = Running::start(binary, &dir, "second", &config(&dir), &["-db"]);
            let mut s = seen(&running, &dir, "be", &servers);
            s.state = kept(&s.state);
            all.push((*reader, s));
            running.stop();
        }
        agree(&format!("{test} ({writer}'s dump)"), all, |s| {
            assert_eq!(
                s.stat,
                ["s1 MAINT 10", "s2 no check 7", "s3 DRAIN 1", "s4 DOWN 1"]
            );
            assert!(
                s.state
                    .iter()
                    .any(|l| l.starts_with("3 be 4 s4 127.0.0.2 ")),
                "{:?}",
                s.state
            );
        });
    }
}

/// The check's port and the agent's address and port set at run time come back from the
/// file, as HAProxy 2.6.12's `srv_state_srv_update` applies them last; a server whose
/// checks or agent the file disables keeps the rest, and HAProxy's "partially applied"
/// warning says why. A `disabled` server the file makes ready says it leaves maintenance.
#[test]
fn check_and_agent_targets_survive_a_restart() {
    let test = "check_and_agent_targets_survive_a_restart";
    let dir = temp_dir("server-state-targets");
    let mut all = Vec::new();
    let [p1, p2, p3, agent1, agent2, moved1, moved2, check3] = closed_ports();
    let front = free_port();
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let config = defaults(&dir, "  server-state-file ./state\n", front)
            + &format!(
                "backend be\n  load-server-state-from-file global\n\
             server a1 127.0.0.1:{p1} agent-check agent-port {agent1} agent-inter 1h\n\
             server a2 127.0.0.1:{p2} agent-check agent-port {agent2} agent-inter 1h\n\
             server c3 127.0.0.1:{p3} check inter 1h\n\
             server d4 127.0.0.1:{p3} disabled\n"
            );
        let first = Running::start(&binary, &dir, "first", &config, &["-db"]);
        for command in [
            format!("set server be/a1 agent-addr 127.0.0.1 port {moved1}"),
            format!("set server be/a2 agent-addr 127.0.0.1 port {moved2}"),
            "disable agent be/a2".into(),
            format!("set server be/c3 check-port {check3}"),
            "disable health be/c3".into(),
            "set server be/d4 state ready".into(),
        ] {
            assert_eq!(first.ask(&command).trim(), "", "{name}: {command}");
        }
        let dump = first.ask("show servers state");
        std::fs::write(dir.join("state"), &dump).expect("writing the state");
        first.stop();
        let second = Running::start(&binary, &dir, "second", &config, &["-db"]);
        all.push((name, seen(&second, &dir, "be", &["a1", "a2", "c3", "d4"])));
        second.stop();
    }
    agree(test, all, |s| {
        let target = |server: &str| {
            let line = s.state.iter().find(|l| l.split(' ').nth(3) == Some(server));
            let words: Vec<&str> = line.map_or(vec![], |l| l.split(' ').collect());
            words.get(21..).map(|w| w.join(" ")).unwrap_or_default()
        };
        assert_eq!(target("a1"), format!("0 - 127.0.0.1 {moved1}"));
        assert_eq!(target("a2"), format!("0 - - {agent2}"));
        assert_eq!(target("c3"), "0 - - 0");
        assert_eq!(
            s.messages,
            [
                "[WARNING]  (PID) : config : server-state partially applied for server 'be/a2', agent checks are not enabled on this server",
                "[WARNING]  (PID) : config : server-state partially applied for server 'be/c3', health checks are not enabled on this server",
                "[WARNING]  (PID) : config : Server be/d4 is UP/READY (leaving forced maintenance).",
            ]
        );
    });
}

/// A server's name set with `set server B/S fqdn` survives a restart as in HAProxy 2.6.12:
/// the name is flagged 64 in the admin state (`SRV_ADMF_HMAINT`), which shows only from the
/// next admin change on; the new process starts on the file's name, the flag pending again
/// until an admin change. A name DNS cannot resolve (96: the resolution's maintenance too)
/// leaves the new process without an address: HAProxy's "could not resolve address ...,
/// disabling server.".
#[test]
fn a_fqdn_set_on_the_cli_survives_a_restart() {
    let test = "a_fqdn_set_on_the_cli_survives_a_restart";
    let dir = temp_dir("server-state-fqdn");
    let mut all = Vec::new();
    let [p1, p2] = closed_ports();
    let front = free_port();
    let admin = |state: &[String], server: &str| {
        let line = state.iter().find(|l| l.split(' ').nth(3) == Some(server));
        line.and_then(|l| l.split(' ').nth(6).map(str::to_string))
            .unwrap_or_default()
    };
    for (name, binary) in programs(test) {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("a directory");
        let dns = MultiDnsResponder::start();
        let loopback = [IpAddr::from([127, 0, 0, 1])];
        dns.set("localhost", &loopback);
        dns.set("moved.test", &loopback);
        let config = defaults(&dir, "  server-state-file ./state\n", front)
            + &format!(
                "resolvers dns\n  nameserver ns1 {}\n  resolve_retries 1\n  timeout retry 100ms\n\
                 timeout resolve 100ms\n  hold valid 1s\n  hold nx 100ms\n\
                 backend be\n  load-server-state-from-file global\n\
                 default-server init-addr last,libc,none resolvers dns resolve-opts allow-dup-ip\n\
                 server s1 localhost:{p1}\n  server s2 localhost:{p2}\n",
                dns.addr
            );
        let first = Running::start(&binary, &dir, "first", &config, &["-db"]);
        let state = |r: &Running| servers_state(&r.ask("show servers state be"));
        assert_eq!(
            first.ask("set server be/s1 fqdn moved.test").trim(),
            "be/s1 changed its FQDN from localhost to moved.test by 'stats socket command'"
        );
        // Flagged in the next admin state, not yet the current one.
        assert_eq!(admin(&state(&first), "s1"), "0", "{name}: before a change");
        first.ask("set server be/s1 state drain");
        first.ask("set server be/s1 state ready");
        assert_eq!(admin(&state(&first), "s1"), "64", "{name}: after a change");
        first.ask("set server be/s2 fqdn gone.test");
        assert!(
            wait_until(WAIT, || admin(&state(&first), "s2") == "96"),
            "{name}: s2 {:?}",
            state(&first)
        );
        let dump = first.ask("show servers state");
        std::fs::write(dir.join("state"), &dump).expect("writing the state");
        first.stop();
        let second = Running::start(&binary, &dir, "second", &config, &["-db"]);
        let mut s = seen(&second, &dir, "be", &["s1", "s2"]);
        // The flag is pending again: an admin change shows it.
        second.ask("set server be/s1 state drain");
        s.state.extend(state(&second).into_iter().skip(2));
        all.push((name, s));
        second.stop();
    }
    agree(test, all, |s| {
        let fqdn = |server: &str| {
            let line = s.state.iter().find(|l| l.split(' ').nth(3) == Some(server));
            line.and_then(|l| l.split(' ').nth(17)).unwrap_or_default()
        };
        assert_eq!(fqdn("s1"), "moved.test");
        assert_eq!(fqdn("s2"), "gone.test");
        assert_eq!(admin(&s.state[2..4], "s1"), "0");
        assert_eq!(admin(&s.state[2..4], "s2"), "96");
        assert_eq!(admin(&s.state[4..], "s1"), "72");
        assert!(
            s.messages.iter().any(|m| m.ends_with(
                "'server be/s2' : could not resolve address 'gone.test', disabling server."
            )),
            "{:?}",
            s.messages
        );
    });
}
