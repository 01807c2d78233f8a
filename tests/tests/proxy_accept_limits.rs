//! A listener out of descriptors, beside HAProxy 2.6: when accept(2) fails with EMFILE, the
//! frontend's logs get HAProxy's emergency message ("Proxy fe reached process FD limit
//! (maxsock=N). Please check 'ulimit-n' and restart.") and the listener pauses instead of
//! spinning; once descriptors are free again, the connections waiting in the backlog are
//! served.
//!
//! Each proxy runs the same configuration; once it is up, its open-files limit is lowered
//! with prlimit(1) to a few descriptors above what it holds, and more clients connect than
//! fit. Their streams wait in `tcp-request inspect-delay` for data, holding no server
//! connection, so the accept is what fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hapx_tests::bins;
use hapx_tests::proxy::{Proxy, free_port, silent_server, temp_dir};
use hapx_tests::proxy_rules::HAPROXY;
use hapx_tests::require;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn config(front: SocketAddr, log: SocketAddr, server: SocketAddr) -> String {
    format!(
        "global\n  maxconn 1000\n  nbthread 2\n  no strict-limits\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
         frontend fe\n  bind {front}\n  log {log} local0\n\
         \x20 tcp-request inspect-delay 10s\n  tcp-request content accept if {{ req.len gt 0 }}\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {server}\n"
    )
}

/// The number of descriptors process `pid` holds.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Sets process `pid`'s soft open-files limit to `n` (the hard one stays: raising it back
/// may not be allowed even to root in a container).
fn limit_fds(pid: u32, n: usize) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={n}:"))
        .status()
        .expect("running prlimit");
    assert!(status.success(), "prlimit failed for {pid}");
}

/// The "reached ... limit" messages `log` received within `wait`, each from "Proxy" on.
fn limit_messages(log: &UdpSocket, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut found = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        log.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("setting a timeout");
        let Ok(n) = log.recv(&mut buf) else { break };
        let line = String::from_utf8_lossy(&buf[..n]);
        if let Some(at) = line.find("Proxy ") {
            let msg = line[at..].trim_end().to_string();
            if msg.contains("reached") {
                found.push(msg);
            }
        }
    }
    found
}

/// Brings `proxy` to its steady set of descriptors before the limit is computed from it.
/// HAProxy opens a thread's log socket at that thread's first log line, and its threads'
/// pollers as they start: counted too early (a loaded CI host), the spare descriptors went
/// to those and no "reached" line could be sent at all. So a few connections come and go
/// (each logs a line, on whichever thread takes it), then the count must hold still.
fn settle(proxy: &Proxy, front: SocketAddr) {
    for _ in 0..8 {
        drop(TcpStream::connect(front).expect("connecting"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = usize::MAX;
    let mut same = 0;
    while same < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = open_fds(proxy.pid());
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
}

/// What one proxy did: its limit messages, and whether every client was served once the
/// first ones left.
fn run(binary: &Path, name: &str, dir: &Path) -> (Vec<String>, bool) {
    let log = UdpSocket::bind((LO, 0)).expect("binding a syslog socket");
    let front = SocketAddr::from((LO, free_port()));
    let server = silent_server();
    let text = config(front, log.local_addr().expect("log address"), server);
    let proxy = Proxy::start_with(binary.to_path_buf(), dir, name, &text, front, &[]);
    settle(&proxy, front);
    limit_fds(proxy.pid(), open_fds(proxy.pid()) + 4);
    let mut clients: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(front).expect("connecting (the backlog takes it)"))
        .collect();
    let messages = limit_messages(&log, Duration::from_secs(2));
    // Descriptors back: the waiting clients are accepted and their streams go on (each
    // sends a byte and is forwarded to the silent server, which keeps it open).
    limit_fds(proxy.pid(), 1000);
    let served = clients.iter_mut().all(|c| {
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("setting a timeout");
        let sent = c.write_all(b"x").is_ok();
        // Still open: a read times out instead of seeing a close or a reset.
        let mut byte = [0u8; 1];
        sent && matches!(c.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut)
    });
    (messages, served)
}

#[test]
fn a_listener_out_of_descriptors_says_so_and_recovers() {
    let test = "a_listener_out_of_descriptors_says_so_and_recovers";
    if !require::command(test, "prlimit") {
        return;
    }
    let dir = temp_dir(test);
    let (ours, served) = run(&bins::path("hapx-proxy"), "hapx", &dir);
    assert!(
        served,
        "hapx-proxy: clients left waiting after the limit was raised"
    );
    assert!(
        ours.iter().all(
            |m| m.starts_with("Proxy fe reached process FD limit (maxsock=")
                && m.ends_with("). Please check 'ulimit-n' and restart.")
        ),
        "{ours:#?}"
    );
    // Each thread's listener pauses 100 ms per failure, as HAProxy's: at most ten a second
    // per thread (two here), never a flood.
    assert!(
        (1..=50).contains(&ours.len()),
        "{} messages: {ours:#?}",
        ours.len()
    );
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let (theirs, their_served) = run(Path::new(HAPROXY), "haproxy", &dir);
    assert!(their_served, "HAProxy: clients left waiting");
    eprintln!(
        "limit messages in 2 s: hapx-proxy {}, HAProxy {}",
        ours.len(),
        theirs.len()
    );
    let text = |m: &Vec<String>| {
        m.first()
            .map(|m| m.split("(maxsock=").next().map(str::to_string))
    };
    assert_eq!(
        text(&ours),
        text(&theirs),
        "ours {ours:#?}, theirs {theirs:#?}"
    );
}
