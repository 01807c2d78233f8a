//! The predefined ACL `WAIT_END` (the `wait_end` fetch), HAProxy's idiom for "decide once the
//! inspect delay is over", in `tcp-request content` and `tcp-response content` rules, beside
//! HAProxy 2.6: no answer while more may come, so the rules wait; true once the content is
//! final. Timing is not compared, only what each client gets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::free_port;
use hapx_tests::proxy_rules::side_by_side;

/// A TCP server answering each connection's first read with `echo:` and what it read.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = [0u8; 256];
                if let Ok(n) = conn.read(&mut buf) {
                    let _ = conn.write_all(&[b"echo:", &buf[..n]].concat());
                }
                // Held open: the proxy's rules, not the server's close, end the wait.
                let _ = conn.read(&mut buf);
            });
        }
    });
    addr
}

/// What a client sending `hi` reads before the connection ends (or 5 s pass).
fn answer(front: SocketAddr) -> String {
    let mut conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"hi").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.ends_with(b"hi") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn wait_end_decides_once_the_inspect_delay_is_over() {
    let server = echo_server();
    let cases = [
        // Accepted at the delay's end on both sides: the echo goes through.
        (
            "tcp-request content accept if WAIT_END\n  tcp-request content reject",
            "tcp-response content accept if WAIT_END\n  tcp-response content reject",
            "echo:hi",
        ),
        // Rejected at the request delay's end: nothing reaches the client.
        ("tcp-request content reject if WAIT_END", "", ""),
        // Rejected at the response delay's end: the echo is never passed on.
        ("", "tcp-response content reject if WAIT_END", ""),
    ];
    for (request_rules, response_rules, wanted) in cases {
        let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = format!(
            "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend f\n  bind {front}\n  tcp-request inspect-delay 200ms\n  {request_rules}\n  default_backend b\n\
             backend b\n  tcp-response inspect-delay 200ms\n  {response_rules}\n  server s {server}\n"
        );
        let (ours, theirs) = side_by_side("proxy_wait_end", &config, front, answer);
        assert_eq!(ours, wanted, "{config}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "{config}");
        }
    }
}
