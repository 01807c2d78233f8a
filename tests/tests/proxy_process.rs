//! The process: -D with a pid file, SIGTERM, SIGUSR1 soft stop that lets connections finish,
//! a seamless reload (-sf) under load with no failed connection, binding an address that is
//! not local yet (the VIP before IPaddr2 moves it) and IPv6.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hapx_tests::bins;
use hapx_tests::proxy::{
    NamedServer, Proxy, ask, cli, free_port, is_listening, temp_dir, wait_until,
};
use hapx_tests::wait::alive;
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

#[test]
fn reload_under_load_refuses_nothing() {
    let dir = temp_dir("reload");
    let sock = dir.join("admin.sock");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let global = format!(
        "  stats socket {} mode 600 level admin expose-fd listeners\n",
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
    for generation in 1..=3 {
        std::thread::sleep(Duration::from_millis(300));
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
        "{failed} of {} connections failed across three reloads",
        ok + failed
    );
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
