//! HTTP connections that have sent nothing yet, or nothing since their last request,
//! beside HAProxy 2.6. hapx keeps such a connection in a task holding only its socket (and
//! what it keeps between requests) until its next bytes come (see `serve_proto` in the
//! proxy's `runtime/http.rs`); what a user sees must not change: each is a session of its
//! frontend from its accept (`scur`, `stot`, `show info`'s `CurrConns`) and an open HTTP/1
//! connection (`h1_open_connections`) with no stream between requests
//! (`h1_open_streams`), each is served once it sends its request, an idle one is closed at
//! its keep-alive timeout, and all leave the counts when they close.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{EchoServer, side_by_side};

/// How many connections wait silent.
const SILENT: usize = 20;

/// The frontend's columns compared.
const COLUMNS: [&str; 7] = [
    "scur",
    "stot",
    "h1_open_connections",
    "h1_total_connections",
    "req_tot",
    "h1_open_streams",
    "h1_total_streams",
];

/// The frontend's `COLUMNS` and `show info`'s `CurrConns`.
fn counts(sock: &Path) -> Vec<String> {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, "fe", "FRONTEND").expect("the frontend's row");
    let mut out: Vec<String> = COLUMNS.iter().map(|c| format!("{c}={}", row[*c])).collect();
    let info = cli(sock, "show info");
    let current = info.lines().find(|l| l.starts_with("CurrConns: "));
    out.push(current.unwrap_or("CurrConns: ?").to_string());
    out
}

/// Counts once they stay the same for two reads in a row: the proxies take the
/// connections in their own time.
fn settled(sock: &Path, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut last = Vec::new();
    let steady = wait_until(Duration::from_secs(10), || {
        let now = counts(sock);
        let same = now == last && until(&now);
        last = now;
        same
    });
    assert!(steady, "the counts never settled: {last:?}");
    last
}

/// The status line a connection gets for a kept-alive request sent now, its answer read
/// whole (a `content-length` body).
fn kept_request(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("sending the request");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut answer = Vec::new();
    let mut byte = [0u8];
    while !answer.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
        answer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = conn.read_exact(&mut body);
    head.lines().next().unwrap_or("<nothing>").to_uppercase()
}

/// The status line a connection gets for a request sent now.
fn request(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("sending the request");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("<nothing>").to_string()
}

#[test]
fn silent_connections_are_sessions_from_their_accept_and_served_when_they_speak() {
    let test = "silent_connections_are_sessions_from_their_accept_and_served_when_they_speak";
    let dir = temp_dir("idle-conns");
    let sock = dir.join("stats.sock");
    let server = EchoServer::start("s");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {}\n\
         defaults\n  mode http\n  timeout client 20s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  server s {}\n",
        sock.display(),
        server.addr
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let mut silent: Vec<TcpStream> = (0..SILENT)
            .map(|_| TcpStream::connect(front).expect("connecting"))
            .collect();
        let all_in = format!("scur={SILENT}");
        let waiting = settled(&sock, |c| c[0] == all_in);
        let statuses: Vec<String> = silent.iter_mut().map(request).collect();
        drop(silent);
        let done = settled(&sock, |c| c[0] == "scur=0");
        (waiting, statuses, done)
    });
    let (waiting, statuses, done) = &ours;
    assert_eq!(waiting[0], format!("scur={SILENT}"));
    assert_eq!(waiting[2], format!("h1_open_connections={SILENT}"));
    assert!(
        statuses.iter().all(|s| s == "HTTP/1.1 200 OK"),
        "{statuses:?}"
    );
    assert_eq!(done[4], format!("req_tot={SILENT}"));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// How many connections stay open between two requests.
const KEPT: usize = 10;

#[test]
fn kept_alive_connections_wait_between_requests_as_haproxys() {
    let test = "kept_alive_connections_wait_between_requests_as_haproxys";
    let dir = temp_dir("kept-conns");
    let sock = dir.join("stats.sock");
    let server = EchoServer::start("s");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let short = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {}\n\
         defaults\n  mode http\n  timeout client 20s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         frontend short\n  bind {short}\n  timeout http-keep-alive 300ms\n  default_backend be\n\
         backend be\n  server s {}\n",
        sock.display(),
        server.addr
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let mut kept: Vec<TcpStream> = (0..KEPT)
            .map(|_| TcpStream::connect(front).expect("connecting"))
            .collect();
        let first: Vec<String> = kept.iter_mut().map(kept_request).collect();
        let all_in = format!("scur={KEPT}");
        let between = settled(&sock, |c| c[0] == all_in);
        let second: Vec<String> = kept.iter_mut().map(request).collect();
        drop(kept);
        let done = settled(&sock, |c| c[0] == "scur=0");
        // One left idle past its keep-alive timeout: the proxy closes it, saying nothing.
        let mut idle = TcpStream::connect(short).expect("connecting");
        let status = kept_request(&mut idle);
        let mut after = Vec::new();
        idle.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let closed = idle.read_to_end(&mut after).map(|_| after.len());
        (first, between, second, done, status, format!("{closed:?}"))
    });
    let (first, between, second, done, status, closed) = &ours;
    assert!(
        first.iter().chain(second).all(|s| s == "HTTP/1.1 200 OK"),
        "{ours:?}"
    );
    assert_eq!(between[2], format!("h1_open_connections={KEPT}"));
    assert_eq!(between[5], "h1_open_streams=0");
    assert_eq!(done[4], format!("req_tot={}", 2 * KEPT));
    assert_eq!(
        (status.as_str(), closed.as_str()),
        ("HTTP/1.1 200 OK", "Ok(0)")
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
