//! Request-line versions HAProxy 2.6 takes on an HTTP/1 connection besides 1.0 and 1.1
//! (any `HTTP/d.d`: `HTTP/2.0` sent by a confused client, `HTTP/1.2`, `HTTP/0.9` written
//! out), side by side with HAProxy: each is answered, and reaches the server as HAProxy
//! sends it (a later version as HTTP/1.1, an earlier one as written). A `PRI` request is
//! refused, as HAProxy refuses it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, TIMEOUTS, exchange, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[test]
fn other_request_versions_are_forwarded_as_haproxy_does() {
    let test = "other_request_versions_are_forwarded_as_haproxy_does";
    let server = EchoServer::start("s");
    let port = free_port();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s {}\n",
        server.addr
    );
    let observe = |front: SocketAddr| -> Vec<(u16, String)> {
        ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/1.0"]
            .iter()
            .map(|version| {
                let request = format!("GET /v {version}\r\nHost: x\r\nConnection: close\r\n\r\n");
                let answer = exchange(front, &[request]);
                answer
                    .first()
                    .cloned()
                    .flatten()
                    .map_or((0, String::new()), |r| (r.status, r.body))
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    assert_eq!(ours[0], (200, "s\nGET /v HTTP/1.1\nhost: x\n".to_string()));
    assert_eq!(
        ours[2],
        (
            200,
            "s\nGET /v HTTP/0.9\nhost: x\nconnection: keep-alive\n".to_string()
        )
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A request whose method is `PRI` (HTTP/2's preface, on an HTTP/1 connection that does
/// not take HTTP/2): HAProxy's parser takes it and its analysis refuses it, with a 400 in
/// its internal form, counted as a request error; the same bytes and counters in both.
#[test]
fn pri_requests_are_refused_as_haproxy_refuses_them() {
    let test = "pri_requests_are_refused_as_haproxy_refuses_them";
    let server = EchoServer::start("s");
    let port = free_port();
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let config = format!(
        "global\n  stats socket {}\ndefaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s {}\n",
        socket.display(),
        server.addr
    );
    let observe = |front: SocketAddr| -> (Vec<String>, Vec<String>) {
        let replies = [
            "PRI * HTTP/2.0",
            "PRI /x HTTP/2.0",
            "PRI * HTTP/1.1",
            "PRI /x HTTP/1.0",
        ]
        .iter()
        .map(|line| raw_reply(front, &format!("{line}\r\nhost: a\r\n\r\n")))
        .collect();
        let csv = cli(&socket, "show stat");
        let row = stat_row(&csv, "f", "FRONTEND").expect("the frontend's row");
        let counters = ["req_tot", "ereq", "hrsp_4xx", "bin", "bout"]
            .iter()
            .map(|f| format!("{f}={}", row[*f]))
            .collect();
        (replies, counters)
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for reply in &ours.0 {
        assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    }
    assert!(ours.1.contains(&"ereq=4".to_string()), "{:?}", ours.1);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Everything `front` sends back to `request` until it closes.
fn raw_reply(front: SocketAddr, request: &str) -> String {
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    conn.write_all(request.as_bytes()).expect("sending");
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}
