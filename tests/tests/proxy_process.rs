//! The process: -D with a pid file, SIGTERM, SIGUSR1 soft stop that lets connections finish
//! and ends idle HTTP keep-alive at once (beside HAProxy), seamless reloads (-sf) under load
//! with no failed connection (with `expose-fd listeners`, with the seed's stats socket line
//! without it, after dropping to another user), SIGTTOU/SIGTTIN pausing the listeners, the
//! open-files limit and derived maxconn compared with HAProxy under the same start limits,
//! binding an address that is not local yet (the VIP before IPaddr2 moves it) and IPv6.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{
    HttpServer, NamedServer, Proxy, ask, cli, free_port, is_listening, temp_dir, wait_until,
};
use hapx_tests::wait::alive;
use hapx_tests::{bins, require};
use nix::sys::signal::Signal;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn tcp_config(port: u16, server: SocketAddr, global: &str) -> String {
    format!(
        "global\n{global}defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s {server}\n"
    )
}

#[test]
fn daemon_writes_its_pid_and_stops_on_sigterm() {
    let dir = temp_dir("daemon");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let cfg = dir.join("d.cfg");
    std::fs::write(&cfg, tcp_config(port, srv.addr, "  daemon\n")).unwrap();
    let pidfile = dir.join("p.pid");
    let status = Command::new(bins::path("hapx-proxy"))
        .arg("-f")
        .arg(&cfg)
        .arg("-p")
        .arg(&pidfile)
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let addr = SocketAddr::from((LO, port));
    assert!(wait_until(Duration::from_secs(5), || is_listening(addr)));
    assert_eq!(ask(addr), "s");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "still running after SIGTERM"
    );
}

#[test]
fn bind_error_fails_the_start() {
    let dir = temp_dir("binderr");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // Without SO_REUSEPORT on the other socket, the bind must fail and say where.
    let cfg = dir.join("b.cfg");
    std::fs::write(&cfg, tcp_config(port, "127.0.0.1:1".parse().unwrap(), "")).unwrap();
    let out = Command::new(bins::path("hapx-proxy"))
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot bind socket") && err.contains(&format!("{}:8", cfg.display())),
        "{err}"
    );
}

#[test]
fn soft_stop_lets_connections_finish() {
    let dir = temp_dir("softstop");
    let srv = NamedServer::start("s", LO, Duration::from_secs(10));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let mut p = Proxy::start(&dir, "soft", &tcp_config(port, srv.addr, ""), addr);
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "s\n");
    p.signal(Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(5), || !is_listening(addr)),
        "still listening after SIGUSR1"
    );
    // The established connection still works (the server echoes).
    (&conn).write_all(b"still here\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "still here\n");
    assert!(
        p.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a connection open"
    );
    drop(reader);
    drop(conn);
    assert!(
        p.wait_exit(Duration::from_secs(5)).is_some(),
        "did not exit once the connection closed"
    );
}

/// Reloads three times (`-sf OLD`) under constant connection load; no connection may fail.
/// `socket_options` end the `stats socket PATH` line; `more_global` adds to the global section.
fn reload_under_load(name: &str, socket_options: &str, more_global: &str) {
    let dir = temp_dir(name);
    let sock = dir.join("admin.sock");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let global = format!(
        "  stats socket {} {socket_options}\n{more_global}",
        sock.display()
    );
    let cfg = tcp_config(port, srv.addr, &global);
    let mut old = Proxy::start(&dir, "gen0", &cfg, addr);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if ask(addr) == "s" {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let mut queued = Vec::new();
    for generation in 1..=3 {
        std::thread::sleep(Duration::from_millis(300));
        // Connections waiting in the old process's accept queue when it stops (its listeners
        // paused, as HAProxy's SIGTTOU does): the new process must take them, not the kernel
        // reset them with the old sockets.
        old.signal(Signal::SIGTTOU);
        std::thread::sleep(Duration::from_millis(200));
        queued.extend((0..20).map(|_| TcpStream::connect(addr).unwrap()));
        let extra = ["-sf".to_string(), old.pid().to_string()];
        let new = Proxy::start_with(
            bins::path("hapx-proxy"),
            &dir,
            &format!("gen{generation}"),
            &cfg,
            addr,
            &extra,
        );
        assert!(
            old.wait_exit(Duration::from_secs(10)).is_some(),
            "generation {} did not finish",
            generation - 1
        );
        assert!(cli(&sock, "show info").contains(&format!("Pid: {}", new.pid())));
        old = new;
    }
    for conn in &queued {
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        let _ = BufReader::new(conn).read_line(&mut line);
        let counter = if line == "s\n" { &ok } else { &failed };
        counter.fetch_add(1, Ordering::SeqCst);
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(ok > 100, "too little load to mean anything: {ok}");
    assert_eq!(
        failed,
        0,
        "{name}: {failed} of {} connections failed across three reloads ({} queued at them)",
        ok + failed,
        queued.len()
    );
}

#[test]
fn reload_under_load_refuses_nothing() {
    reload_under_load("reload", "mode 600 level admin expose-fd listeners", "");
}

/// The seed's own stats socket line has no `expose-fd listeners`: the listeners go over the
/// private hand-over channel.
#[test]
fn reload_with_the_seeds_stats_socket_refuses_nothing() {
    reload_under_load("reloadseed", "mode 660 level admin", "");
}

/// The old process runs as another user (`user nobody`), the new one is started by root.
#[test]
fn reload_after_dropping_privileges_refuses_nothing() {
    if !require::is_root() {
        require::skip(
            "reload_after_dropping_privileges_refuses_nothing",
            "needs root to switch users",
        );
        return;
    }
    reload_under_load("reloaduser", "mode 660 level admin", "  user nobody\n");
}

/// The process state letter from /proc (R, S, T for stopped...).
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.chars().next().unwrap()
}

/// SIGTTOU pauses the listeners (connections wait in the queue, the process is not stopped),
/// SIGTTIN resumes them.
#[test]
fn sigttou_pauses_and_sigttin_resumes_the_listeners() {
    let dir = temp_dir("ttou");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let p = Proxy::start(&dir, "ttou", &tcp_config(port, srv.addr, ""), addr);
    assert_eq!(ask(addr), "s");
    p.signal(Signal::SIGTTOU);
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(proc_state(p.pid()), 'T', "SIGTTOU stopped the process");
    let before = srv.accepted.load(Ordering::SeqCst);
    // The kernel completes the handshake; the proxy does not take the connection yet.
    let waiting = TcpStream::connect(addr).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        srv.accepted.load(Ordering::SeqCst),
        before,
        "accepted while paused"
    );
    p.signal(Signal::SIGTTIN);
    let mut line = String::new();
    BufReader::new(&waiting).read_line(&mut line).unwrap();
    assert_eq!(line, "s\n");
}

#[test]
fn binds_a_non_local_address_and_ipv6() {
    let dir = temp_dir("freebind");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let (port, vip_port) = (free_port(), free_port());
    // 192.0.2.10 (documentation range) is on no interface here: like a VIP before IPaddr2 runs.
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind [::1]:{port}\n  bind 192.0.2.10:{vip_port}\n  default_backend be\nbackend be\n  server s {}\n",
        srv.addr
    );
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        hapx_tests::require::skip("binds_a_non_local_address_and_ipv6", "no IPv6 loopback");
        return;
    }
    let _p = Proxy::start(&dir, "freebind", &cfg, v6);
    assert!(is_listening(SocketAddr::from(([192, 0, 2, 10], vip_port))));
    let started = Instant::now();
    assert_eq!(ask(v6), "s");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn idle_tcp_connections_hit_the_client_timeout() {
    let dir = temp_dir("tcp-timeout");
    let srv = NamedServer::start("s", LO, Duration::from_secs(30));
    let port = free_port();
    let cfg = tcp_config(port, srv.addr, "").replace("timeout client 10s", "timeout client 300ms");
    let addr = SocketAddr::from((LO, port));
    let _p = Proxy::start(&dir, "tcp-timeout", &cfg, addr);
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "s\n");
    // Then silence: the proxy closes the connection after the idle timeout.
    let started = Instant::now();
    line.clear();
    let n = reader.read_line(&mut line).unwrap_or(0);
    assert_eq!(n, 0, "expected the proxy to close, got {line:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(
        wait_until(Duration::from_secs(3), || srv.open.load(Ordering::SeqCst)
            == 0),
        "the server side stays open"
    );
}

const HAPROXY: &str = "/usr/sbin/haproxy";

/// Starts `binary -db -f CONFIG` with the open-files limits `(soft, hard)`, as a shell's
/// `ulimit -n` or systemd's `LimitNOFILE` would leave them.
fn start_limited(binary: &Path, config: &Path, nofile: (u64, u64)) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(binary);
    cmd.arg("-db")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: nofile.0,
                rlim_max: nofile.1,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    cmd.spawn().expect("starting the proxy")
}

/// The soft open-files limit of a running process, from /proc.
fn soft_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in show info:\n{info}"))
        .trim()
        .parse()
        .unwrap()
}

/// What `show info` says about descriptors, and the process's real soft limit.
#[derive(Debug)]
struct FdInfo {
    maxconn: u64,
    maxsock: u64,
    ulimit_n: u64,
    soft_limit: u64,
    /// What it printed while starting.
    stderr: String,
}

/// Runs `binary` on `config` under `nofile` until its stats socket answers `show info`.
fn fd_info(binary: &Path, dir: &Path, name: &str, config: &str, nofile: (u64, u64)) -> FdInfo {
    let sock = dir.join(format!("{name}.sock"));
    let config = config.replace("@SOCK@", &sock.display().to_string());
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, config).unwrap();
    let mut child = start_limited(binary, &path, nofile);
    let answered = wait_until(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let info = answered.then(|| cli(&sock, "show info"));
    let soft_limit = soft_nofile(child.id());
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let info = info.unwrap_or_else(|| {
        panic!(
            "{} did not start: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    FdInfo {
        maxconn: info_field(&info, "Maxconn"),
        maxsock: info_field(&info, "Maxsock"),
        ulimit_n: info_field(&info, "Ulimit-n"),
        soft_limit,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn limits_config(port: u16, server: SocketAddr, global: &str) -> String {
    // splice-auto: HAProxy then counts pipes as hapx (which splices bulk transfers) does.
    tcp_config(
        port,
        server,
        &format!("  stats socket @SOCK@ mode 600 level admin\n{global}"),
    )
    .replace("  mode tcp\n", "  mode tcp\n  option splice-auto\n")
}

/// Runs hapx-proxy on `config` under `nofile` until it listens on `addr`.
fn serve_limited(dir: &Path, config: &str, addr: SocketAddr, nofile: (u64, u64)) -> Proxy {
    let path = dir.join("serve.cfg");
    let sock = dir.join("serve.sock");
    std::fs::write(&path, config.replace("@SOCK@", &sock.display().to_string())).unwrap();
    let child = start_limited(&bins::path("hapx-proxy"), &path, nofile);
    let proxy = Proxy {
        child,
        dir: dir.to_path_buf(),
        config: path,
    };
    assert!(wait_until(Duration::from_secs(10), || is_listening(addr)));
    proxy
}

/// Opens `n` connections through `addr` at once; how many got the server's greeting.
fn concurrent_greetings(addr: SocketAddr, n: usize) -> usize {
    let mut conns = Vec::new();
    for _ in 0..n {
        let Ok(c) = TcpStream::connect(addr) else {
            break;
        };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conns.push(c);
    }
    conns
        .into_iter()
        .filter(|c| {
            let mut line = String::new();
            BufReader::new(c).read_line(&mut line).is_ok() && line == "s\n"
        })
        .count()
}

/// HAProxy and hapx on the same configuration, both started under the same limits.
struct SideBySide {
    dir: hapx_tests::proxy::TestDir,
    _server: NamedServer,
    addr: SocketAddr,
    config: String,
    theirs: FdInfo,
    ours: FdInfo,
}

/// Runs both on `limits_config(.., global)` under `nofile`; None (skipped) without HAProxy.
fn side_by_side(test: &str, global: &str, nofile: (u64, u64)) -> Option<SideBySide> {
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let dir = temp_dir(test);
    let server = NamedServer::start("s", LO, Duration::from_secs(10));
    let port = free_port();
    let config = limits_config(port, server.addr, global);
    let theirs = fd_info(Path::new(HAPROXY), &dir, "haproxy", &config, nofile);
    let ours = fd_info(&bins::path("hapx-proxy"), &dir, "hapx", &config, nofile);
    Some(SideBySide {
        dir,
        _server: server,
        addr: SocketAddr::from((LO, port)),
        config,
        theirs,
        ours,
    })
}

#[test]
fn open_files_limit_is_raised_for_maxconn_like_haproxy() {
    // A soft limit of 256 cannot hold 400 connections (two descriptors each).
    let low = (256, 20000);
    let Some(run) = side_by_side(
        "open_files_limit_is_raised_for_maxconn_like_haproxy",
        "  maxconn 400\n",
        low,
    ) else {
        return;
    };
    let (ours, theirs) = (&run.ours, &run.theirs);
    assert_eq!(
        ours.maxconn, theirs.maxconn,
        "hapx {ours:?}, HAProxy {theirs:?}"
    );
    assert_eq!(theirs.ulimit_n, theirs.soft_limit, "{theirs:?}");
    assert_eq!(ours.ulimit_n, ours.soft_limit, "{ours:?}");
    assert!(
        ours.maxsock >= theirs.maxsock,
        "hapx {ours:?}, HAProxy {theirs:?}"
    );
    assert!(ours.soft_limit >= ours.maxsock, "{ours:?}");

    // And the connections really fit: all 400 at once, under that start limit.
    let _p = serve_limited(&run.dir, &run.config, run.addr, low);
    assert_eq!(concurrent_greetings(run.addr, 400), 400);
}

#[test]
fn maxconn_is_derived_from_the_limit_like_haproxy() {
    // systemd's default: soft and hard 1024.
    let systemd = (1024, 1024);
    let Some(run) = side_by_side(
        "maxconn_is_derived_from_the_limit_like_haproxy",
        "",
        systemd,
    ) else {
        return;
    };
    let (ours, theirs) = (&run.ours, &run.theirs);
    // Same arithmetic; hapx holds a few more listening descriptors (one socket per thread,
    // each kept twice for reloads) where HAProxy holds one per address.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let extra = 2 * threads - 1;
    assert!(
        ours.maxconn <= theirs.maxconn && ours.maxconn + extra >= theirs.maxconn,
        "hapx {ours:?}, HAProxy {theirs:?}"
    );
    assert!(
        ours.maxsock <= ours.soft_limit && ours.soft_limit <= 1024,
        "{ours:?}"
    );

    // Every derived connection fits under the limit: none refused, none reset.
    let _p = serve_limited(&run.dir, &run.config, run.addr, systemd);
    let n = ours.maxconn as usize;
    assert_eq!(concurrent_greetings(run.addr, n), n);
}

#[test]
fn an_impossible_limit_is_an_alert_like_haproxy() {
    let test = "an_impossible_limit_is_an_alert_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir("fdalert");
    let port = free_port();
    let server: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let cases = [
        // Above the hard limit, which only root could raise (and not in every container).
        (
            "  maxconn 30000\n",
            (256, 20000),
            "Cannot raise FD limit to ",
        ),
        // ulimit-n below what maxconn needs.
        (
            "  maxconn 2000\n  ulimit-n 3000\n",
            (256, 20000),
            "FD limit (3000) too low for maxconn=2000/maxsock=",
        ),
    ];
    for (i, (global, nofile, alert)) in cases.into_iter().enumerate() {
        let cfg = limits_config(port, server, global);
        let run = |binary: &Path, name: &str| {
            let path = dir.join(format!("{name}{i}.cfg"));
            let sock = dir.join(format!("{name}{i}.sock"));
            std::fs::write(&path, cfg.replace("@SOCK@", &sock.display().to_string())).unwrap();
            let out = start_limited(binary, &path, nofile)
                .wait_with_output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let theirs = run(Path::new(HAPROXY), "haproxy");
        let ours = run(&bins::path("hapx-proxy"), "hapx");
        assert_eq!(theirs.0, Some(1), "{theirs:?}");
        assert_eq!(ours.0, Some(1), "{ours:?}");
        for (who, err) in [("HAProxy", &theirs.1), ("hapx", &ours.1)] {
            assert!(
                err.contains("[ALERT]") && err.contains(alert),
                "{who}: {err}"
            );
        }
        assert!(!is_listening(SocketAddr::from((LO, port))));
    }
}

/// HTTP mode with keep-alive timeouts far longer than the test waits.
fn http_config(port: u16, server: SocketAddr) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 30s\n  timeout server 30s\n  timeout connect 1s\n  timeout http-keep-alive 30s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s {server}\n"
    )
}

/// Reads one response (head and Content-Length body); the head, lowercased.
fn read_response(reader: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line.to_ascii_lowercase());
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).unwrap();
    head
}

/// The peer closed the connection (rather than the read timing out).
fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    matches!(std::io::Read::read_to_end(reader, &mut rest), Ok(0))
}

/// SIGUSR1 with one idle keep-alive connection and one request in flight: the idle one
/// closes at once, the request gets its response with `Connection: close` and its connection
/// ends, and the process exits long before the 30 s keep-alive timeout.
fn soft_stop_with_keep_alive(binary: &Path, name: &str) {
    let dir = temp_dir(&format!("softka-{name}"));
    let srv = HttpServer::start("s");
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let mut p = Proxy::start_with(
        binary.to_path_buf(),
        &dir,
        name,
        &http_config(port, srv.addr),
        addr,
        &[],
    );
    let connect = || {
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (c.try_clone().unwrap(), BufReader::new(c))
    };
    let (mut idle, mut idle_reader) = connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_response(&mut idle_reader);
    assert!(
        head.starts_with("http/1.1 200") && !head.contains("connection: close"),
        "{name}: {head}"
    );
    // In flight: the head is out, the body is not.
    let (mut busy, mut busy_reader) = connect();
    busy.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || srv
        .connections
        .load(Ordering::SeqCst)
        == 2));
    p.signal(Signal::SIGUSR1);
    assert!(
        closed(&mut idle_reader),
        "{name}: the idle keep-alive connection stayed open"
    );
    busy.write_all(b"hello").unwrap();
    let head = read_response(&mut busy_reader);
    assert!(
        head.starts_with("http/1.1 200") && head.contains("connection: close"),
        "{name}: {head}"
    );
    assert!(
        closed(&mut busy_reader),
        "{name}: the last response's connection stayed open"
    );
    assert!(
        p.wait_exit(Duration::from_secs(10)).is_some(),
        "{name}: did not exit after its connections ended"
    );
}

#[test]
fn soft_stop_ends_keep_alive_like_haproxy() {
    if require::path(
        "soft_stop_ends_keep_alive_like_haproxy",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        soft_stop_with_keep_alive(Path::new(HAPROXY), "haproxy");
    }
    soft_stop_with_keep_alive(&bins::path("hapx-proxy"), "hapx");
}

/// `no strict-limits`: the limit goes as high as allowed, with HAProxy's warning (and its alert
/// that maxsock does not fit), and the process runs.
#[test]
fn no_strict_limits_warns_and_runs_like_haproxy() {
    let global = "  no strict-limits\n  maxconn 30000\n";
    let Some(run) = side_by_side(
        "no_strict_limits_warns_and_runs_like_haproxy",
        global,
        (256, 20000),
    ) else {
        return;
    };
    for (who, info) in [("HAProxy", &run.theirs), ("hapx", &run.ours)] {
        assert_eq!(info.maxconn, 30000, "{who}: {info:?}");
        assert_eq!(info.soft_limit, 20000, "{who}: {info:?}");
        assert_eq!(info.ulimit_n, 20000, "{who}: {info:?}");
        let warned = info.stderr.lines().any(|l| {
            l.contains("[WARNING]")
                && l.contains("Cannot raise FD limit to")
                && l.ends_with("limit is 20000.")
        });
        let alerted = info.stderr.lines().any(|l| {
            l.contains("[ALERT]")
                && l.contains("FD limit (20000) too low for maxconn=30000/maxsock=")
        });
        assert!(warned && alerted, "{who}: {}", info.stderr);
    }
}
