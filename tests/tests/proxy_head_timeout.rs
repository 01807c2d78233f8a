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
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    for piece in head.chunks(4) {
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
