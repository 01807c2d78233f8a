//! Log lines: what hapx-proxy sends to a syslog target next to what HAProxy 2.6 sends for the
//! same traffic and configuration (`option tcplog`, `option httplog`, a refused server,
//! `option dontlognull`). Both are captured on a UDP socket on loopback and compared field by
//! field with every number masked (times, ports, pids and counts differ between any two runs).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// What a test does through the proxy at `front` once.
type Traffic = fn(SocketAddr);

/// Log lines sent by `binary` while `traffic` runs through `frontend fe` (which uses
/// `backend be`) followed by `body`: the rest of the frontend, then the backend.
fn log_lines(binary: &Path, test: &str, mode: &str, body: &str, traffic: Traffic) -> Vec<String> {
    let sink = UdpSocket::bind((LO, 0)).expect("binding the syslog socket");
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    let log = sink.local_addr().expect("its address");
    let port = free_port();
    let front = SocketAddr::from((LO, port));
    let config = format!(
        "global\n  log {log} local0\ndefaults\n  log global\n  mode {mode}\n  retries 0\n  \
         timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n{body}"
    );
    let dir = temp_dir(test);
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("proxy");
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, name, &config, front, &[]);
    traffic(front);
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sink.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    drop(proxy);
    lines
}

/// A line with its syslog header's time and pid, and every number, masked.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    // The tag: "haproxy" for both unless configured, but the month name is a word.
    out
}

/// A backend server answering every connection with `ANSWER`.
fn answering_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 1024];
            if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = conn.write_all(ANSWER);
            }
        }
    });
    addr
}

fn one_request(front: SocketAddr) {
    let mut c = TcpStream::connect(front).expect("connecting through the proxy");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    c.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("the request");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
}

fn connect_and_close(front: SocketAddr) {
    let c = TcpStream::connect(front).expect("connecting through the proxy");
    thread::sleep(Duration::from_millis(100));
    drop(c);
    thread::sleep(Duration::from_millis(100));
}

fn compare(test: &str, mode: &str, body: &str, traffic: Traffic) {
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let ours = log_lines(&bins::path("hapx-proxy"), test, mode, body, traffic);
    let theirs = log_lines(&PathBuf::from(HAPROXY), test, mode, body, traffic);
    let (ours_shape, theirs_shape): (Vec<_>, Vec<_>) = (
        ours.iter().map(|l| shape(l)).collect(),
        theirs.iter().map(|l| shape(l)).collect(),
    );
    assert_eq!(
        ours_shape, theirs_shape,
        "{test}\nhapx:\n{ours:#?}\nHAProxy:\n{theirs:#?}"
    );
}

#[test]
fn tcplog_lines_match_haproxy() {
    let server = answering_server();
    let body = format!("  option tcplog\nbackend be\n  server s1 {server}\n");
    compare("tcplog_lines_match_haproxy", "tcp", &body, one_request);
}

#[test]
fn httplog_lines_match_haproxy() {
    let server = answering_server();
    let body = format!("  option httplog\nbackend be\n  server s1 {server}\n");
    compare("httplog_lines_match_haproxy", "http", &body, one_request);
}

#[test]
fn refused_server_lines_match_haproxy() {
    // A port nothing listens on: the connection is refused.
    let closed = SocketAddr::from((LO, free_port()));
    for (mode, option) in [("tcp", "tcplog"), ("http", "httplog")] {
        let body = format!("  option {option}\nbackend be\n  server s1 {closed}\n");
        compare(
            "refused_server_lines_match_haproxy",
            mode,
            &body,
            one_request,
        );
    }
}

#[test]
fn dontlognull_leaves_out_empty_connections() {
    let server = answering_server();
    let body = format!("  option tcplog\n  option dontlognull\nbackend be\n  server s1 {server}\n");
    let test = "dontlognull_leaves_out_empty_connections";
    compare(test, "tcp", &body, connect_and_close);
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let lines = log_lines(
            &bins::path("hapx-proxy"),
            test,
            "tcp",
            &body,
            connect_and_close,
        );
        assert!(lines.is_empty(), "{lines:#?}");
    }
}
