//! Small differences with HAProxy 2.6 fixed, each run beside HAProxy: what counts as a
//! listener (`-c`'s exit 2, a start's "No enabled listener found") when only a `peers`
//! section listens; the refusal to start when `uid`/`user` would drop the privileges
//! `source ... usesrc` or `interface` need, at start-up and on a master's reload (refused,
//! its worker kept); a failed `-sf` reload (that refusal, a peers listener that cannot
//! bind) leaving the old process's stats socket answering; and an idle pooled server
//! connection its server closes: noticed at once, closed with a FIN and dropped from the
//! pool.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::binaries;
use hapx_tests::wait::eventually;

const TIMEOUTS: &str = "  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n";

/// How a start that must fail ended: its exit code and its alerts and warnings, each as
/// `LEVEL: text` without the pid and command name HAProxy puts before it.
fn failed_start(binary: &Path, file: &Path, extra: &[&str]) -> (i32, Vec<String>) {
    let (code, stderr) = failed_start_stderr(binary, file, extra);
    (code, messages(&stderr))
}

/// How a start that must fail ended: its exit code and all it wrote on stderr.
fn failed_start_stderr(binary: &Path, file: &Path, extra: &[&str]) -> (i32, String) {
    let mut child = Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(file)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the proxy");
    let mut exited = None;
    eventually(Duration::from_secs(10), || {
        exited = child.try_wait().expect("waiting for the proxy");
        exited.is_some()
    });
    let Some(status) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} kept running on {}", binary.display(), file.display());
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    (status.code().unwrap_or(-1), stderr)
}

/// The alerts and warnings of `stderr`, each as `LEVEL: text` (the text after `] ` of
/// `[ARGV0.main()] `, or after `config : `).
fn messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let level = ["ALERT", "WARNING"]
                .into_iter()
                .find(|level| l.starts_with(&format!("[{level}]")))?;
            let text = l
                .split_once(".main()] ")
                .or_else(|| l.split_once("config : "))?
                .1;
            Some(format!("{level}: {text}"))
        })
        .collect()
}

/// `BINARY -c -f FILE EXTRA...`: its exit code and the last line it printed.
fn check(binary: &Path, file: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(file)
        .args(extra)
        .output()
        .expect("running the checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    (out.status.code().unwrap_or(-1), last)
}

/// `text` written as `NAME.cfg` in `dir`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, text).expect("writing the configuration");
    file
}

#[test]
fn a_peers_section_with_a_local_member_is_a_listener() {
    let test = "a_peers_section_with_a_local_member_is_a_listener";
    let dir = temp_dir(test);
    let peer = free_port();
    let valid = "Configuration file is valid";
    let none = "Configuration file has no error but will not start (no listener) => exit(2).";
    let no_listener = "ALERT: No enabled listener found (check for 'bind' directives) ! Exiting.";
    // (case, configuration, `-c`'s exit and last line, whether a start listens on `peer`).
    let cases = [
        (
            "local peer line",
            format!("peers p\n  peer me 127.0.0.1:{peer}\n  peer other 127.0.0.1:1\n"),
            (0, valid),
            true,
        ),
        (
            "bind and local server",
            format!("peers p\n  bind 127.0.0.1:{peer}\n  server me\n  server other 127.0.0.1:1\n"),
            (0, valid),
            true,
        ),
        // The section's proxy exists, so `-c` is content; yet nothing listens.
        (
            "local server without bind",
            "peers p\n  server me\n  server other 127.0.0.1:1\n".into(),
            (0, valid),
            false,
        ),
        (
            "no local member",
            "peers p\n  peer other 127.0.0.1:1\n".into(),
            (2, none),
            false,
        ),
        (
            "disabled section",
            format!("peers p\n  disabled\n  peer me 127.0.0.1:{peer}\n  peer other 127.0.0.1:1\n"),
            (2, none),
            false,
        ),
        (
            "nothing at all",
            "global\n  maxconn 10\n".into(),
            (2, none),
            false,
        ),
        (
            "disabled frontend",
            format!("frontend fe\n  disabled\n  bind 127.0.0.1:{peer}\n"),
            (2, none),
            false,
        ),
    ];
    let front = SocketAddr::from(([127, 0, 0, 1], peer));
    for (case, text, (code, line), listens) in &cases {
        let file = write(&dir, "case", text);
        for (label, binary) in binaries(test) {
            let what = format!("{label}, {case}");
            let (exit, last) = check(&binary, &file, &["-L", "me"]);
            assert_eq!((exit, last.as_str()), (*code, *line), "{what}: -c");
            if *listens {
                let extra = ["-L".to_string(), "me".to_string()];
                let _proxy = Proxy::start_with(binary, &dir, label, text, front, &extra);
            } else {
                let (exit, said) = failed_start(&binary, &file, &["-L", "me"]);
                assert_eq!(exit, 1, "{what}: a start");
                assert_eq!(said.last().map(String::as_str), Some(no_listener), "{what}");
            }
        }
    }
}

#[test]
fn uid_with_usesrc_or_interface_refuses_to_start() {
    let test = "uid_with_usesrc_or_interface_refuses_to_start";
    if !hapx_tests::require::is_root() {
        hapx_tests::require::skip(test, "needs root: `uid` is only changed from root");
        return;
    }
    let dir = temp_dir(test);
    let alert = "ALERT: Some configuration options require full privileges, so global.uid cannot be changed.";
    let front = free_port();
    let with = |global: &str, rest: &str| {
        format!(
            "global\n{global}defaults\n  mode http\n{TIMEOUTS}\
             frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n{rest}"
        )
    };
    let from_defaults = format!(
        "defaults\n  mode http\n{TIMEOUTS}  source 0.0.0.0 usesrc clientip\n\
         backend be\n  server s 127.0.0.1:1\n"
    );
    let refused = [
        "backend be\n  source 0.0.0.0 usesrc clientip\n  server s 127.0.0.1:1\n",
        "backend be\n  server s 127.0.0.1:1 source 0.0.0.0 usesrc client\n",
        "backend be\n  source 0.0.0.0 interface lo\n  server s 127.0.0.1:1\n",
        "backend be\n  server s 127.0.0.1:1 source 0.0.0.0 interface lo\n",
        // From a `defaults` section.
        from_defaults.as_str(),
        // Read, so counted, though never used.
        "backend be\n  server s 127.0.0.1:1\nbackend off\n  disabled\n  source 0.0.0.0 usesrc clientip\n  server s 127.0.0.1:1\n",
    ];
    for (n, rest) in refused.iter().enumerate() {
        for global in ["  uid 65534\n", "  user nobody\n"] {
            let text = with(global, rest);
            let file = write(&dir, &format!("refused{n}"), &text);
            for (label, binary) in binaries(test) {
                let what = format!("{label}, {global:?} and {rest:?}");
                let (exit, line) = check(&binary, &file, &[]);
                assert_eq!(
                    (exit, line.as_str()),
                    (0, "Configuration file is valid"),
                    "{what}"
                );
                let (exit, said) = failed_start(&binary, &file, &[]);
                assert_eq!((exit, said), (1, vec![alert.to_string()]), "{what}");
                // Master-worker mode: the master refuses before it forks a worker.
                let (exit, said) = failed_start(&binary, &file, &["-W"]);
                assert_eq!((exit, said), (1, vec![alert.to_string()]), "{what}, -W");
            }
        }
    }
    // Still root (`uid 0`), no such option, or a `transparent` bind (not concerned; nor is
    // a `bind ... interface`, which hapx does not implement).
    let started = [
        (
            "  uid 0\n",
            "backend be\n  source 0.0.0.0 usesrc clientip\n  server s 127.0.0.1:1\n",
        ),
        ("  uid 65534\n", "backend be\n  server s 127.0.0.1:1\n"),
    ];
    let addr = SocketAddr::from(([127, 0, 0, 1], front));
    for (global, rest) in started {
        for (label, binary) in binaries(test) {
            let _proxy = Proxy::start_with(binary, &dir, label, &with(global, rest), addr, &[]);
        }
    }
    let text = format!(
        "global\n  uid 65534\ndefaults\n{TIMEOUTS}frontend fe\n  bind {addr} transparent\n"
    );
    for (label, binary) in binaries(test) {
        let _proxy = Proxy::start_with(binary, &dir, label, &text, addr, &[]);
    }
}

/// The `Pid:` of a `show info` answer.
fn pid_of(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .and_then(|p| p.trim().parse().ok())
}

/// A master-worker process (`-W -S MASTER.sock -f FILE`), its stderr in a file; stopped by
/// SIGTERM when dropped.
struct Master {
    child: Child,
    socket: PathBuf,
    stderr: PathBuf,
}

impl Master {
    fn start(binary: &Path, dir: &Path, label: &str, file: &Path) -> Master {
        let socket = dir.join(format!("{label}-master.sock"));
        let stderr = dir.join(format!("{label}-master.err"));
        let child = Command::new(binary)
            .arg("-W")
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("creating the stderr file"))
            .spawn()
            .expect("starting the master");
        Master {
            child,
            socket,
            stderr,
        }
    }

    /// The current worker's pid, once the master CLI gives it.
    fn worker(&self) -> Option<u32> {
        let mut conn = std::os::unix::net::UnixStream::connect(&self.socket).ok()?;
        conn.write_all(b"@1 show info\n").ok()?;
        // Until it closes or says no more: HAProxy's master may keep the session open.
        conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut info = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            info.extend_from_slice(&buf[..n]);
        }
        pid_of(&String::from_utf8_lossy(&info))
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

#[test]
fn a_master_reload_to_uid_with_usesrc_is_refused_and_keeps_its_worker() {
    // Short: the master CLI's path must fit in a UNIX socket address.
    let test = "fixups-master-reload";
    if !hapx_tests::require::is_root() {
        hapx_tests::require::skip(test, "needs root: `uid` is only changed from root");
        return;
    }
    let dir = temp_dir(test);
    let alert = "ALERT: Some configuration options require full privileges, so global.uid cannot be changed.";
    let front = free_port();
    let config = |global: &str, source: &str| {
        format!(
            "global\n{global}defaults\n  mode tcp\n{TIMEOUTS}\
             frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
             backend be\n{source}  server s 127.0.0.1:1\n"
        )
    };
    let refused = config("  uid 65534\n", "  source 0.0.0.0 usesrc clientip\n");
    for (label, binary) in binaries(test) {
        let file = write(&dir, &format!("{label}-current"), &config("", ""));
        let master = Master::start(&binary, &dir, label, &file);
        let mut worker = None;
        eventually(Duration::from_secs(10), || {
            worker = master.worker();
            worker.is_some()
        });
        let worker = worker.unwrap_or_else(|| panic!("{label}: no worker answered"));
        std::fs::write(&file, &refused).expect("writing the configuration");
        let pid = nix::unistd::Pid::from_raw(master.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR2).expect("SIGUSR2");
        let failed = eventually(Duration::from_secs(10), || {
            master.said().contains("Loading failure!")
        });
        let said = master.said();
        assert!(failed, "{label}: the reload did not fail: {said}");
        let reload = said.split_once("Reloading HAProxy").map_or("", |(_, r)| r);
        assert_eq!(messages(reload), vec![alert.to_string()], "{label}: {said}");
        // The worker there goes on, still the current one (the master CLI answers again
        // once HAProxy's master is back in its wait mode).
        let mut now = None;
        eventually(Duration::from_secs(10), || {
            now = master.worker();
            now.is_some()
        });
        assert_eq!(
            now,
            Some(worker),
            "{label}: the worker after the refused reload"
        );
    }
}

#[test]
fn a_failed_reload_leaves_the_old_stats_socket_answering() {
    let test = "fixups-failed-reload";
    let dir = temp_dir(test);
    let front = free_port();
    let socket = dir.join("stats.sock");
    let config = |global: &str, rest: &str| {
        format!(
            "global\n  stats socket {} level admin\n{global}defaults\n  mode tcp\n{TIMEOUTS}\
             frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n{rest}",
            socket.display()
        )
    };
    let backend = "backend be\n  server s 127.0.0.1:1\n";
    // A peers listener on a port the test holds.
    let held = TcpListener::bind("127.0.0.1:0").expect("holding a port");
    let taken = held.local_addr().expect("its address");
    let peers = format!("{backend}peers p\n  peer me {taken}\n  peer other 127.0.0.1:1\n");
    let mut cases = vec![("a peers listener that cannot bind", config("", &peers))];
    if hapx_tests::require::is_root() {
        let usesrc = "backend be\n  source 0.0.0.0 usesrc clientip\n  server s 127.0.0.1:1\n";
        cases.push(("uid with usesrc", config("  uid 65534\n", usesrc)));
    } else {
        hapx_tests::require::skip(test, "uid with usesrc: needs root");
    }
    // hapx only: HAProxy 2.6.12 replaces the stats socket file before either check, and
    // the old process's socket is no longer reached at that path after such a failure.
    let binary = hapx_tests::bins::path("hapx-proxy");
    let addr = SocketAddr::from(([127, 0, 0, 1], front));
    let old = Proxy::start_with(binary.clone(), &dir, "old", &config("", backend), addr, &[]);
    let old_pid = old.pid().to_string();
    for (case, text) in &cases {
        let file = write(&dir, "new", text);
        let (exit, stderr) = failed_start_stderr(&binary, &file, &["-L", "me", "-sf", &old_pid]);
        assert_eq!(exit, 1, "{case}: {stderr}");
        let info = cli(&socket, "show info");
        assert_eq!(pid_of(&info), Some(old.pid()), "{case}: {info:?}");
        assert!(
            old.listens_on(front),
            "{case}: the old process stopped listening"
        );
    }
}

/// A server answering one keep-alive request, then, when told, closing its side of the
/// idle connection and reading until the proxy closes its own: `FIN` when it closed
/// cleanly, `RST` when it reset the connection.
fn close_idle_when_told(listener: TcpListener, told: mpsc::Receiver<()>) -> String {
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        .unwrap();
    told.recv().unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => "FIN".into(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "RST".into(),
        Err(e) => format!("{e}"),
    }
}

/// The `idle_conn_cur` of server `be/s`, from the runtime API at `socket`.
fn idle_conns(socket: &Path) -> Option<String> {
    stat_row(&cli(socket, "show stat"), "be", "s").map(|row| row["idle_conn_cur"].clone())
}

#[test]
fn a_pooled_connection_its_server_closes_is_closed_cleanly_and_dropped() {
    let test = "a_pooled_connection_its_server_closes_is_closed_cleanly_and_dropped";
    // Short: the stats socket's path must be (HAProxy's limit: 97 bytes).
    let dir = temp_dir("pooled_close");
    // The client connection closed after its response, or kept open (its server connection
    // is in the pool either way).
    for client_close in [true, false] {
        for (label, binary) in binaries(test) {
            let what = format!("{label}, client closes: {client_close}");
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let server = listener.local_addr().unwrap();
            let (tell, told) = mpsc::channel();
            let watching = std::thread::spawn(move || close_idle_when_told(listener, told));
            let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let socket = dir.join(format!("{label}.sock"));
            let config = format!(
                "global\n  stats socket {} level admin\n\
                 defaults\n  mode http\n{TIMEOUTS}\
                 frontend fe\n  bind {front}\n  default_backend be\n\
                 backend be\n  server s {server}\n",
                socket.display()
            );
            let _proxy = Proxy::start_with(binary, &dir, label, &config, front, &[]);
            let mut client = TcpStream::connect(front).unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let close = if client_close {
                "Connection: close\r\n"
            } else {
                ""
            };
            write!(client, "GET / HTTP/1.1\r\nHost: x\r\n{close}\r\n").unwrap();
            let mut response = Vec::new();
            while !response.ends_with(b"ok\n") {
                let mut chunk = [0u8; 512];
                let n = client.read(&mut chunk).unwrap();
                assert!(n > 0, "{what}: {}", String::from_utf8_lossy(&response));
                response.extend_from_slice(&chunk[..n]);
            }
            assert!(
                eventually(Duration::from_secs(10), || idle_conns(&socket).as_deref()
                    == Some("1")),
                "{what}: not pooled: {:?}",
                idle_conns(&socket)
            );
            tell.send(()).unwrap();
            assert_eq!(watching.join().unwrap(), "FIN", "{what}: the proxy's close");
            // Dropped from the pool as it closed (well before `pool-purge-delay`, 5s).
            assert!(
                eventually(Duration::from_secs(2), || idle_conns(&socket).as_deref()
                    == Some("0")),
                "{what}: still pooled: {:?}",
                idle_conns(&socket)
            );
        }
    }
}
