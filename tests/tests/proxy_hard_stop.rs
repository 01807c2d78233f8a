//! What a process says of itself on signals, beside HAProxy: at `hard-stop-after` after a
//! soft stop (SIGUSR1), the hard-stop warnings (stderr, and the logs at level warning) and a
//! log line for each session it kills (termination code `K`); on SIGHUP, the servers' states
//! dump (stderr as warnings, the logs at level notice).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, free_port, is_listening, temp_dir};
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};
use nix::sys::signal::Signal;

const HAPROXY: &str = "/usr/sbin/haproxy";
const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// What each held client sends (the test server echoes it).
const GREETING: &[u8] = b"hi\n";

fn programs(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut programs = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        programs.push(("haproxy", HAPROXY.into()));
    }
    programs
}

/// A proxy in the foreground (`-db`) whose stdout (its logs, `log stdout`) and stderr are
/// collected line by line; killed when dropped.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(program: &Path, cfg: &Path) -> Running {
        let mut child = Command::new(program)
            .arg("-db")
            .arg("-f")
            .arg(cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the proxy");
        let stdout = collect(child.stdout.take().expect("its stdout"));
        let stderr = collect(child.stderr.take().expect("its stderr"));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn signal(&self, sig: Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signalling the proxy");
    }

    fn stderr_has(&self, text: &str) -> bool {
        lock(&self.stderr).iter().any(|l| l.contains(text))
    }

    fn exited(&mut self) -> bool {
        eventually(Duration::from_secs(15), || {
            self.child.try_wait().ok().flatten().is_some()
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock(lines: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(|e| e.into_inner())
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            lock(&sink).push(line);
        }
    });
    lines
}

/// `[LEVEL]    (PID) : text` without its pid.
fn without_pid(line: &str) -> String {
    match line.split_once(" : ") {
        Some((head, text)) => format!("{} {text}", head.split_whitespace().next().unwrap_or("")),
        None => line.to_string(),
    }
}

/// An RFC 3164 log line (`<PRI>date host tag[pid]: message`) as `<PRI> message`.
fn log_message(line: &str) -> String {
    let pri = line
        .split('>')
        .next()
        .map_or("", |p| p.trim_start_matches('<'));
    let message = line.split_once("]: ").map_or(line, |(_, m)| m);
    format!("<{pri}> {message}")
}

/// A `tcplog` line's message as `frontend backend/server bytes termination`.
fn tcplog_fields(message: &str) -> Option<String> {
    let fields: Vec<&str> = message.split_whitespace().collect();
    // <PRI> client [date] frontend backend/server times bytes termination ...
    let picked = [
        fields.first()?,
        fields.get(3)?,
        fields.get(4)?,
        fields.get(6)?,
        fields.get(7)?,
    ];
    Some(picked.map(|f| f.to_string()).join(" "))
}

/// After SIGUSR1 with sessions held, at `hard-stop-after`: HAProxy's warnings on stderr and
/// in the logs (level warning), one per frontend with the connections it still holds, then
/// each killed session's log line (`K-`, level info); the process then exits.
#[test]
fn hard_stop_after_says_so_and_logs_the_killed_sessions() {
    let test = "hard_stop_after_says_so_and_logs_the_killed_sessions";
    let dir = temp_dir("hard_stop");
    let server = NamedServer::start("s", LO, Duration::from_secs(60));
    let mut seen = Vec::new();
    for (who, program) in programs(test) {
        let (port_f, port_g) = (free_port(), free_port());
        let cfg = dir.join(format!("{who}.cfg"));
        let text = format!(
            "global\n  log stdout format rfc3164 local0\n  hard-stop-after 1s\n\
             defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout client 1h\n  timeout server 1h\n  timeout connect 1s\n\
             frontend f\n  bind 127.0.0.1:{port_f}\n  default_backend b\n\
             frontend g\n  bind 127.0.0.1:{port_g}\n  default_backend b\n\
             backend b\n  server s {}\n",
            server.addr
        );
        std::fs::write(&cfg, text).expect("writing the configuration");
        let mut proxy = Running::start(&program, &cfg);
        let (front_f, front_g) = (
            SocketAddr::from((LO, port_f)),
            SocketAddr::from((LO, port_g)),
        );
        assert!(
            eventually(Duration::from_secs(10), || is_listening(front_f)
                && is_listening(front_g)),
            "{who}: not listening"
        );
        // Held through the proxy: each has read the server's greeting.
        let clients: Vec<TcpStream> = [front_f, front_g, front_g]
            .into_iter()
            .map(|front| {
                let mut conn = TcpStream::connect(front).expect("connecting");
                conn.write_all(GREETING).expect("sending");
                let mut greeting = [0u8; 2];
                conn.read_exact(&mut greeting)
                    .expect("the server's greeting");
                conn
            })
            .collect();
        proxy.signal(Signal::SIGUSR1);
        assert!(proxy.exited(), "{who}: still running after the hard stop");
        drop(clients);
        let stderr: Vec<String> = lock(&proxy.stderr).iter().map(|l| without_pid(l)).collect();
        let logs: Vec<String> = lock(&proxy.stdout).iter().map(|l| log_message(l)).collect();
        let (mut traffic, said): (Vec<String>, Vec<String>) =
            logs.into_iter().partition(|l| l.contains(" b/s "));
        traffic = traffic.iter().filter_map(|l| tcplog_fields(l)).collect();
        traffic.sort();
        assert!(
            stderr.iter().any(|l| l.contains("performing a hard-stop")),
            "{who}: {stderr:?}"
        );
        assert_eq!(traffic.len(), 3, "{who}: {traffic:?}");
        seen.push((stderr, said, traffic));
    }
    let (hapx, haproxy) = (&seen[0], seen.get(1));
    // Each session got the server's greeting and the echo of what its client sent.
    let bytes = "s\n".len() + GREETING.len();
    let killed = |fe: &str| format!("<134> {fe} b/s {bytes} K-");
    assert_eq!(
        hapx.2,
        [killed("f"), killed("g"), killed("g")],
        "hapx's killed sessions"
    );
    if let Some(haproxy) = haproxy {
        assert_eq!(hapx, haproxy, "hapx and HAProxy differ");
    }
}

/// SIGHUP: every proxy's servers, UP or DOWN (checks failing, `disabled`), and the proxy's
/// line (servers available, backups only, none), as HAProxy says them on stderr and in the
/// logs (level notice, each proxy's lines announced); the process keeps running.
#[test]
fn sighup_dumps_the_servers_states() {
    let test = "sighup_dumps_the_servers_states";
    let dir = temp_dir("sighup");
    let server = NamedServer::start("s", LO, Duration::from_secs(1));
    let refused = {
        let taken = std::net::TcpListener::bind((LO, 0)).expect("binding");
        taken.local_addr().expect("its address")
    };
    let mut seen = Vec::new();
    for (who, program) in programs(test) {
        let (port_k, port_l) = (free_port(), free_port());
        let cfg = dir.join(format!("{who}.cfg"));
        let up = server.addr;
        let text = format!(
            "global\n  log stdout format rfc3164 local0\n\
             defaults\n  mode tcp\n  log global\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend k\n  bind 127.0.0.1:{port_k}\n  default_backend kb\n\
             backend kb\n  server m1 {up} check inter 200\n  server m2 {refused} check inter 200 fall 1\n  \
             server m3 {up} disabled\n  server m4 {up} backup\n\
             listen l\n  bind 127.0.0.1:{port_l}\n  server x {refused} check inter 200 fall 1\n  server y {up} backup\n\
             backend empty\n"
        );
        std::fs::write(&cfg, text).expect("writing the configuration");
        let mut proxy = Running::start(&program, &cfg);
        let settled = eventually(Duration::from_secs(10), || {
            proxy.stderr_has("Server kb/m2 is DOWN") && proxy.stderr_has("Server l/x is DOWN")
        });
        assert!(settled, "{who}: the checks did not settle");
        proxy.signal(Signal::SIGHUP);
        let last = "SIGHUP: Proxy <HTTPCLIENT>";
        let dumped = eventually(Duration::from_secs(10), || {
            proxy.stderr_has(last) && lock(&proxy.stdout).iter().any(|l| l.contains(last))
        });
        assert!(dumped, "{who}: no dump");
        let stderr: Vec<String> = (lock(&proxy.stderr).iter())
            .filter(|l| l.contains("SIGHUP"))
            .map(|l| without_pid(l))
            .collect();
        let logs: Vec<String> = (lock(&proxy.stdout).iter())
            .filter(|l| l.contains("SIGHUP"))
            .map(|l| log_message(l))
            .collect();
        let running = matches!(proxy.child.try_wait(), Ok(None));
        assert!(running, "{who}: SIGHUP ended the process");
        seen.push((stderr, logs));
    }
    let hapx = &seen[0];
    assert_eq!(
        hapx.0.first().map(String::as_str),
        Some("[WARNING] SIGHUP received, dumping servers states."),
        "hapx's stderr: {:?}",
        hapx.0
    );
    assert!(
        hapx.0.contains(&"[WARNING] SIGHUP: Proxy l is running on backup servers ! Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+0.".to_string()),
        "{:?}",
        hapx.0
    );
    assert!(
        hapx.1
            .contains(&"<133> SIGHUP received, dumping servers states for proxy kb.".to_string()),
        "{:?}",
        hapx.1
    );
    if let Some(haproxy) = seen.get(1) {
        assert_eq!(hapx, haproxy, "hapx and HAProxy differ");
    }
}
