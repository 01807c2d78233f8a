//! Seamless reloads under HTTP keep-alive load, beside HAProxy 2.6.12: kept-alive clients
//! send requests back to back and a TCP client opens short connections while the proxy is
//! reloaded (`-sf OLD`, with and without `-x SOCKET`; a master-worker process's SIGUSR2, each
//! sent once the master said `READY=1`, since HAProxy's master still starting loses it;
//! HAProxy always with `-x`, without which it loses its old accept queue's connections). The
//! old process closes its idle kept-alive connections at once and answers a request in
//! progress with `connection: close`, so that it exits while its clients stay busy; the new
//! process takes the listeners over. No connection is refused or reset and no request fails:
//! a request that meets an idle connection as the old process closes it gets the
//! connection's orderly end, and is sent again on a new connection, as HTTP clients do (RFC
//! 9112, 9.3.1; HAProxy 2.6's documented soft stop). Also the soft stop's `Proxy ... stopped`
//! lines, `GLOBAL` among them, in HAProxy's order.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{HttpServer, NamedServer, Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::Syslog;
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};
use nix::sys::signal::Signal;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
/// Kept-alive HTTP clients sending requests back to back.
const HTTP_CLIENTS: usize = 4;
const RELOADS: usize = 4;

/// The binaries a side-by-side test runs: hapx-proxy, and HAProxy where it is installed (its
/// absence skips that side loudly, and fails under CI).
fn hapx_and_haproxy(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut binaries = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(
        &format!("{test} (HAProxy side)"),
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        binaries.push(("HAProxy", HAPROXY.into()));
    }
    binaries
}

/// What came of the requests and connections of a run, by kind.
#[derive(Debug, Default)]
struct Tally {
    /// HTTP requests answered (2xx-4xx).
    answered: AtomicUsize,
    /// Answers that closed their connection (`connection: close`, the old process's).
    closing: AtomicUsize,
    /// Requests that met a kept-alive connection's orderly end before any answer: sent
    /// again on a new connection (counted there).
    resent: AtomicUsize,
    /// TCP sessions that got their server's greeting.
    tcp_answered: AtomicUsize,
    /// Everything else, described (the first [`FAILURES_KEPT`]).
    failures: Mutex<Vec<String>>,
    failure_count: AtomicUsize,
}

/// The failures described in a run's tally; the others are counted.
const FAILURES_KEPT: usize = 20;

impl Tally {
    fn fail(&self, what: String) {
        if self.failure_count.fetch_add(1, Ordering::SeqCst) < FAILURES_KEPT {
            (self.failures.lock().unwrap_or_else(|e| e.into_inner())).push(what);
        }
    }

    fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn progress(&self) -> usize {
        self.answered.load(Ordering::SeqCst) + self.tcp_answered.load(Ordering::SeqCst)
    }
}

/// How one request went.
enum Exchange {
    /// Answered; whether the connection stays open.
    Answered { status: u16, keep: bool },
    /// The connection ended before any byte of an answer.
    Ended,
}

/// Sends one request on `conn` and reads its answer (a `content-length` body).
fn exchange(conn: &mut BufReader<TcpStream>) -> std::io::Result<Exchange> {
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nhost: reload\r\n\r\n")?;
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Ok(Exchange::Ended);
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut length, mut keep) = (0, true);
    loop {
        let mut header = String::new();
        if conn.read_line(&mut header)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "connection" => keep &= !value.trim().eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok(Exchange::Answered { status, keep })
}

/// A kept-alive client: requests back to back until `stop`, a new connection when the last
/// one closed.
fn http_client(front: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let mut kept: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::SeqCst) {
        let reused = kept.is_some();
        let mut conn = match kept.take() {
            Some(conn) => conn,
            None => match TcpStream::connect_timeout(&front, Duration::from_secs(3)) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    BufReader::new(c)
                }
                Err(e) => {
                    tally.fail(format!("connect: {e}"));
                    continue;
                }
            },
        };
        match exchange(&mut conn) {
            Ok(Exchange::Answered { status, keep }) if (200..500).contains(&status) => {
                tally.answered.fetch_add(1, Ordering::SeqCst);
                if keep {
                    kept = Some(conn);
                } else {
                    tally.closing.fetch_add(1, Ordering::SeqCst);
                }
            }
            Ok(Exchange::Answered { status, .. }) => tally.fail(format!("status {status}")),
            Ok(Exchange::Ended) if reused => {
                tally.resent.fetch_add(1, Ordering::SeqCst);
            }
            Ok(Exchange::Ended) => tally.fail("a new connection ended unanswered".into()),
            Err(e) => tally.fail(format!(
                "{} connection: {e}",
                if reused { "kept-alive" } else { "new" }
            )),
        }
    }
}

/// A TCP client: one short connection after another until `stop`, each reading its
/// server's greeting.
fn tcp_client(front: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    while !stop.load(Ordering::SeqCst) {
        match greeting(front) {
            Ok(line) if line == "t\n" => tally.tcp_answered.fetch_add(1, Ordering::SeqCst),
            Ok(line) => {
                tally.fail(format!("TCP session answered {line:?}"));
                continue;
            }
            Err(e) => {
                tally.fail(format!("TCP session: {e}"));
                continue;
            }
        };
    }
}

/// The first line a TCP connection to `front` reads.
fn greeting(front: SocketAddr) -> std::io::Result<String> {
    let conn = TcpStream::connect_timeout(&front, Duration::from_secs(3))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    Ok(line)
}

/// The fronts, servers and configuration of a run.
struct Setup {
    dir: hapx_tests::proxy::TestDir,
    sock: PathBuf,
    http_front: SocketAddr,
    tcp_front: SocketAddr,
    cfg: String,
    _servers: (HttpServer, NamedServer),
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = temp_dir(name);
        let sock = dir.join("admin.sock");
        let web = HttpServer::start("web");
        let tcp_server = NamedServer::start("t", LO, Duration::from_secs(5));
        let http_front = SocketAddr::from((LO, free_port()));
        let tcp_front = SocketAddr::from((LO, free_port()));
        let cfg = format!(
            "global\n  stats socket {} mode 600 level admin expose-fd listeners\n\
             defaults\n  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
             frontend web\n  mode http\n  bind {http_front}\n  default_backend web\n\
             frontend tcp\n  mode tcp\n  bind {tcp_front}\n  default_backend tcp\n\
             backend web\n  mode http\n  server s {}\n\
             backend tcp\n  mode tcp\n  server s {}\n",
            sock.display(),
            web.addr,
            tcp_server.addr
        );
        Setup {
            dir,
            sock,
            http_front,
            tcp_front,
            cfg,
            _servers: (web, tcp_server),
        }
    }
}

/// Runs the clients against the proxy at `setup`'s fronts while `reload` reloads it
/// [`RELOADS`] times; what came of it. `reload` is handed a wait for the clients to be
/// served some more (false when they are not), to call before each reload and after the
/// last; what it returns (the last process) is kept until the clients stopped.
fn under_load<T>(setup: &Setup, reload: impl FnOnce(&dyn Fn() -> bool) -> T) -> Tally {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let (http_front, tcp_front) = (setup.http_front, setup.tcp_front);
    let clients: Vec<_> = (0..=HTTP_CLIENTS)
        .map(|n| {
            let (stop, tally) = (stop.clone(), tally.clone());
            std::thread::spawn(move || match n {
                0 => tcp_client(tcp_front, &stop, &tally),
                _ => http_client(http_front, &stop, &tally),
            })
        })
        .collect();
    let served_more = || {
        let before = tally.progress();
        eventually(Duration::from_secs(10), || tally.progress() >= before + 300)
    };
    // The clients stop however the reloads went.
    let reloaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reload(&served_more)));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("a client thread panicked");
    }
    match reloaded {
        Ok(last) => drop(last),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    Arc::try_unwrap(tally).unwrap_or_else(|_| unreachable!("the clients are joined"))
}

/// Reloads `binary`'s proxy with `-sf OLD`, every other time with `-x SOCKET` too (HAProxy
/// every time), each old process waited for.
fn reloads_under_load(who: &str, binary: &Path) -> Tally {
    let setup = Setup::new(&format!("reloadka-{}", who.to_lowercase()));
    let start = |name: &str, extra: &[String]| {
        let (dir, cfg) = (&setup.dir, &setup.cfg);
        Proxy::start_with(binary.into(), dir, name, cfg, setup.http_front, extra)
    };
    let mut old = start("gen0", &[]);
    under_load(&setup, |served_more| {
        for generation in 1..=RELOADS {
            assert!(served_more(), "{who}: no load served");
            let mut extra = vec!["-sf".to_string(), old.pid().to_string()];
            // HAProxy loses the connections waiting in the old process's accept queue when
            // that process closes its listener, unless the new one takes the listeners over
            // with `-x` (its management guide's lossless reload): HAProxy always gets it.
            // hapx must lose nothing either way.
            if generation % 2 == 0 || who == "HAProxy" {
                extra.extend(["-x".to_string(), setup.sock.display().to_string()]);
            }
            let new = start(&format!("gen{generation}"), &extra);
            // Its kept-alive clients busy all along, the old process must close their
            // connections to finish.
            assert!(
                old.wait_exit(Duration::from_secs(10)).is_some(),
                "{who}: generation {} did not finish under keep-alive load",
                generation - 1
            );
            old = new;
        }
        assert!(served_more(), "{who}: no load served after the reloads");
        old
    })
}

/// The pids of `pid`'s children (a master's workers).
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    (std::fs::read_to_string(path).unwrap_or_default())
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The systemd notifications (`sd_notify`) of a master started with `-Ws`: whether the
/// master said `READY=1` within `wait` (its first time, or once a reload is over). Only then
/// does it take a reload signal: HAProxy's master, still starting, loses a SIGUSR2.
fn master_ready(notify: &std::os::unix::net::UnixDatagram, wait: Duration) -> bool {
    let _ = notify.set_read_timeout(Some(wait));
    let mut message = [0; 512];
    while let Ok(n) = notify.recv(&mut message) {
        if String::from_utf8_lossy(&message[..n]).contains("READY=1") {
            return true;
        }
    }
    false
}

/// Reloads `binary`'s master-worker process (`-Ws`) with SIGUSR2 once it is ready, each old
/// worker waited for.
fn master_reloads_under_load(who: &str, binary: &Path) -> Tally {
    let setup = Setup::new(&format!("reloadkamw-{}", who.to_lowercase()));
    let config = setup.dir.join("master.cfg");
    std::fs::write(&config, &setup.cfg).expect("writing the configuration");
    let notify_path = setup.dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("binding");
    let child = Command::new(binary)
        .args(["-Ws", "-db", "-f"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the master");
    let master = Proxy {
        child,
        dir: setup.dir.to_path_buf(),
        config,
    };
    let serving = || match children(master.pid()).as_slice() {
        [one] => Some(*one).filter(|&w| hapx_tests::wait::alive(w as i32)),
        _ => None,
    };
    assert!(
        master_ready(&notify, Duration::from_secs(10)) && serving().is_some(),
        "{who}: the master and its worker did not start"
    );
    under_load(&setup, |served_more| {
        for reload in 1..=RELOADS {
            assert!(served_more(), "{who}: no load served");
            let old = serving().expect("one worker serves");
            master.signal(Signal::SIGUSR2);
            assert!(
                master_ready(&notify, Duration::from_secs(10)),
                "{who}: reload {reload} did not end"
            );
            // The old worker leaves once its kept-alive clients' connections are closed.
            assert!(
                eventually(Duration::from_secs(10), || serving()
                    .is_some_and(|w| w != old)),
                "{who}: reload {reload}: the old worker {old} did not finish under keep-alive \
                 load (the master's children: {:?})",
                children(master.pid())
            );
        }
        assert!(served_more(), "{who}: no load served after the reloads");
    })
}

/// What a run's tally must show: no failure, and each client's connection to each old
/// process ended (closed idle, or after an answer that said so).
fn assert_nothing_lost(who: &str, tally: &Tally) {
    let (answered, closing, resent) = (
        tally.answered.load(Ordering::SeqCst),
        tally.closing.load(Ordering::SeqCst),
        tally.resent.load(Ordering::SeqCst),
    );
    eprintln!(
        "{who}: {answered} answered ({closing} closing their connection), {resent} sent \
         again, {} TCP sessions, failures: {:?}",
        tally.tcp_answered.load(Ordering::SeqCst),
        tally.failures()
    );
    let failed = tally.failure_count.load(Ordering::SeqCst);
    assert_eq!(
        failed,
        0,
        "{who}: failures, the first ones: {:?}",
        tally.failures()
    );
    // Each client holds a connection to the old process when it is replaced (its
    // connections end only at reloads), which ends before it exits.
    assert!(
        closing + resent >= HTTP_CLIENTS * RELOADS,
        "{who}: {closing} closing answers and {resent} requests sent again for \
         {HTTP_CLIENTS} clients and {RELOADS} reloads"
    );
}

#[test]
fn reloads_under_keep_alive_load_lose_no_request() {
    let test = "reloads_under_keep_alive_load_lose_no_request";
    for (who, binary) in hapx_and_haproxy(test) {
        assert_nothing_lost(who, &reloads_under_load(who, &binary));
    }
}

#[test]
fn master_worker_reloads_under_keep_alive_load_lose_no_request() {
    let test = "master_worker_reloads_under_keep_alive_load_lose_no_request";
    for (who, binary) in hapx_and_haproxy(test) {
        assert_nothing_lost(who, &master_reloads_under_load(who, &binary));
    }
}

/// The `Proxy NAME stopped (...)` lines a process prints on SIGUSR1, its pid taken out.
fn stop_lines(binary: &Path, dir: &Path, cfg: &str, port: u16, sock: &Path) -> Vec<String> {
    let config = dir.join(format!(
        "{}.cfg",
        binary.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&config, cfg).expect("writing the configuration");
    let child = Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the proxy");
    let mut proxy = Proxy {
        child,
        dir: dir.to_path_buf(),
        config,
    };
    let sock = sock.display().to_string();
    assert!(
        eventually(Duration::from_secs(10), || proxy.listens_on(port)
            && proxy.listens_at(&sock)),
        "{} did not start",
        binary.display()
    );
    proxy.signal(Signal::SIGUSR1);
    assert!(
        proxy.wait_exit(Duration::from_secs(10)).is_some(),
        "{} did not stop",
        binary.display()
    );
    let mut stderr = String::new();
    if let Some(mut pipe) = proxy.child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    stderr
        .lines()
        .filter_map(|l| l.split_once(") : ").map(|(_, msg)| msg.to_string()))
        .filter(|msg| msg.starts_with("Proxy "))
        .collect()
}

/// A soft stop names the proxies that listen first, then `GLOBAL` (the stats socket's), then
/// the others, as HAProxy; a frontend and a backend of one name are two proxies.
#[test]
fn soft_stop_names_global_among_the_stopped_proxies() {
    let test = "soft_stop_names_global_among_the_stopped_proxies";
    let dir = temp_dir("stopglobal");
    let sock = dir.join("admin.sock");
    let (fe, li, twin) = (free_port(), free_port(), free_port());
    let syslog = Syslog::bind();
    let cfg = format!(
        "global\n  stats socket {} mode 600 level admin\n\
         defaults\n  log {} local0\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         backend early\n  server s 127.0.0.1:9\n\
         frontend fe\n  bind 127.0.0.1:{fe}\n  default_backend early\n\
         listen li\n  bind 127.0.0.1:{li}\n  server s 127.0.0.1:9\n\
         frontend twin\n  bind 127.0.0.1:{twin}\n  default_backend twin\n\
         backend twin\n  server s 127.0.0.1:9\n\
         backend late\n  server s 127.0.0.1:9\n",
        sock.display(),
        syslog.addr
    );
    let mut outputs = Vec::new();
    for (who, binary) in hapx_and_haproxy(test) {
        let stderr = stop_lines(&binary, &dir, &cfg, fe, &sock);
        outputs.push((who, stderr, logged_stops(&syslog, 6)));
    }
    let expected: Vec<String> = [
        "fe",
        "li",
        "twin",
        "GLOBAL",
        "early",
        "twin",
        "late",
        "<HTTPCLIENT>",
    ]
    .iter()
    .map(|p| format!("Proxy {p} stopped (cumulated conns: FE: 0, BE: 0)."))
    .collect();
    // Each proxy's own log targets get its line: the backends' too (not GLOBAL's, nor the
    // internal HTTP client's, which have none here).
    let logged: Vec<String> = (expected.iter())
        .filter(|l| !l.contains("GLOBAL") && !l.contains("<HTTPCLIENT>"))
        .cloned()
        .collect();
    for (who, lines, syslog_lines) in outputs {
        assert_eq!(lines, expected, "{who}");
        assert_eq!(syslog_lines, logged, "{who}'s syslog");
    }
}

/// The next `count` `Proxy ... stopped` lines `syslog` got (fewer after 10 s without one).
fn logged_stops(syslog: &Syslog, count: usize) -> Vec<String> {
    let mut stops = Vec::new();
    while stops.len() < count {
        let Some(line) = syslog.lines(1).pop() else {
            break;
        };
        if line.starts_with("Proxy ") && line.contains(" stopped ") {
            stops.push(line);
        }
    }
    stops
}

/// A process without listeners (backends and a stats socket only) hands over nothing at a
/// reload, and the new one takes that quietly, as HAProxy: no warning on its stderr.
#[test]
fn a_reload_without_listeners_is_quiet() {
    let test = "a_reload_without_listeners_is_quiet";
    let dir = temp_dir("nolisteners");
    for (who, binary) in hapx_and_haproxy(test) {
        let sock = dir.join(format!("{who}.sock"));
        let pidfile = dir.join(format!("{who}.pid"));
        let config = dir.join(format!("{who}.cfg"));
        let text = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             backend b\n  server s 127.0.0.1:9\n",
            sock.display()
        );
        std::fs::write(&config, text).expect("writing the configuration");
        let start = |extra: &[String]| {
            Command::new(&binary)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-p")
                .arg(&pidfile)
                .args(extra)
                .stdin(Stdio::null())
                .output()
                .expect("running the proxy")
        };
        let first = start(&[]);
        assert!(first.status.success(), "{who}: {first:?}");
        let old = std::fs::read_to_string(&pidfile).expect("the pid file");
        let old = old.trim().to_string();
        let second = start(&["-sf".into(), old.clone()]);
        let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
        let new = std::fs::read_to_string(&pidfile).unwrap_or_default();
        for pid in [old.as_str(), new.trim()] {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        assert!(second.status.success(), "{who}: {second:?}");
        let warnings: Vec<&str> = (stderr.lines())
            .filter(|l| l.contains("[WARNING]") || l.contains("[ALERT]"))
            .collect();
        assert!(warnings.is_empty(), "{who}: {warnings:?}");
    }
}
