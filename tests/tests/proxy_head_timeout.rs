//! A request head that comes slowly, beside HAProxy 2.6: without `timeout http-request`,
//! `timeout client` is a read timeout that each byte received arms again (a client sending
//! its head steadily, each piece within the timeout, is served however long the whole head
//! takes); `timeout http-request` is a deadline for the whole head.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::free_port;
use hapx_tests::proxy_rules::{EchoServer, side_by_side};

/// Sends `head` in pieces of 4 bytes, `gap` apart, then reads the status line of the answer
/// (or what ended the connection).
fn trickle(front: SocketAddr, head: &[u8], gap: Duration) -> String {
    late_trickle(front, head, Duration::ZERO, (4, gap))
}

/// [`trickle`], sending nothing for `silence` after the connect, in pieces of `size` bytes.
fn late_trickle(
    front: SocketAddr,
    head: &[u8],
    silence: Duration,
    (size, gap): (usize, Duration),
) -> String {
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    std::thread::sleep(silence);
    for piece in head.chunks(size) {
        if conn.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(gap);
    }
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("<nothing>").to_string()
}

fn config(front: SocketAddr, server: SocketAddr, more: &str) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 1s\n  timeout server 5s\n  timeout connect 1s\n{more}\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  server s {server}\n"
    )
}

const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[test]
fn timeout_client_is_armed_again_by_each_piece_of_a_head() {
    let test = "timeout_client_is_armed_again_by_each_piece_of_a_head";
    let server = EchoServer::start("s");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    // 12 pieces 300 ms apart: 3.6 s in all, never 1 s without a byte.
    let (ours, theirs) = side_by_side(test, &config(front, server.addr, ""), front, |front| {
        trickle(front, HEAD, Duration::from_millis(300))
    });
    assert_eq!(ours, "HTTP/1.1 200 OK");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn timeout_http_request_is_a_deadline_for_the_whole_head() {
    let test = "timeout_http_request_is_a_deadline_for_the_whole_head";
    let server = EchoServer::start("s");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = config(front, server.addr, "  timeout http-request 1s\n");
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        trickle(front, HEAD, Duration::from_millis(300))
    });
    assert_eq!(ours, "HTTP/1.1 408 Request Time-out");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `timeout http-request` is the head's deadline from its first byte, as HAProxy's stream
/// begins with it: 700 ms of silence, then a head sent over 500 ms, is served within a 1 s
/// timeout; a silence longer than it is answered 408 at its end however soon the head
/// comes then.
#[test]
fn timeout_http_request_counts_from_the_heads_first_byte() {
    let test = "timeout_http_request_counts_from_the_heads_first_byte";
    let server = EchoServer::start("s");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = config(front, server.addr, "  timeout http-request 1s\n");
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let pieces = (HEAD.len().div_ceil(5), Duration::from_millis(100));
        [
            late_trickle(front, HEAD, Duration::from_millis(700), pieces),
            late_trickle(front, HEAD, Duration::from_millis(1500), pieces),
        ]
    });
    assert_eq!(ours[0], "HTTP/1.1 200 OK");
    assert_eq!(ours[1], "HTTP/1.1 408 Request Time-out");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Without `timeout http-request`, a connection silent for longer than `timeout client`
/// since its accept is answered 408 when its head comes, as HAProxy's, however quickly the
/// head then comes; one silent for less is served.
#[test]
fn a_silent_connection_times_out_from_its_accept() {
    let test = "a_silent_connection_times_out_from_its_accept";
    let server = EchoServer::start("s");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let whole = (HEAD.len(), Duration::ZERO);
    let (ours, theirs) = side_by_side(test, &config(front, server.addr, ""), front, |front| {
        [
            late_trickle(front, HEAD, Duration::from_millis(1500), whole),
            late_trickle(front, HEAD, Duration::from_millis(300), whole),
        ]
    });
    assert_eq!(ours[1], "HTTP/1.1 200 OK");
    assert_ne!(ours[0], ours[1]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
