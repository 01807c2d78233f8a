//! `req.ssl_ver` read as HAProxy 2.6's `smp_fetch_req_ssl_ver` reads it, side by side with
//! HAProxy: the ClientHello's version, not the record layer's (a TLS 1.2 or 1.3 client says
//! 3.1 in its record and 3.3 in its hello), from any SSLv3-format record, and from SSLv2
//! hellos (short and long headers); nothing from what is not SSL or is cut short. A
//! frontend routes each client to a backend named after the version it saw.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, free_port};
use hapx_tests::proxy_rules::side_by_side;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A ClientHello in one record: `record` the record layer's version, `hello` the hello's.
fn client_hello(record: [u8; 2], hello: [u8; 2]) -> Vec<u8> {
    let mut body = hello.to_vec();
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    let mut handshake = vec![1, 0];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record_bytes = vec![0x16, record[0], record[1]];
    record_bytes.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record_bytes.extend_from_slice(&handshake);
    record_bytes
}

/// An SSLv2 CLIENT-HELLO asking for `version`: three cipher specs, a 16-byte challenge;
/// `long`: the 3-byte header with `padding` bytes after the message.
fn sslv2_hello(version: [u8; 2], long: Option<u8>) -> Vec<u8> {
    let body_len = 9 + 9 + 16;
    let mut hello = match long {
        None => vec![0x80, body_len],
        Some(padding) => vec![0x00, body_len, padding],
    };
    hello.extend_from_slice(&[0x01, version[0], version[1], 0, 9, 0, 0, 0, 16]);
    hello.extend_from_slice(&[0; 9 + 16]);
    hello.extend(std::iter::repeat_n(0, usize::from(long.unwrap_or(0))));
    hello
}

/// Sends `bytes`, half-closes, and returns the first line back: the name of the backend's
/// server, or "" when the proxy closed without forwarding.
fn route(front: SocketAddr, bytes: &[u8]) -> String {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return String::new();
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    if conn.write_all(bytes).is_err() {
        return String::new();
    }
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = conn.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn req_ssl_ver_is_the_client_hellos_version() {
    let test = "req_ssl_ver_is_the_client_hellos_version";
    let servers: Vec<NamedServer> = ["v30", "v31", "v33", "v34", "none"]
        .iter()
        .map(|n| NamedServer::start(n, LO, Duration::from_secs(1)))
        .collect();
    let port = free_port();
    let backends: String = servers
        .iter()
        .map(|s| format!("backend {}\n  server s {}\n", s.name, s.addr))
        .collect();
    let config = format!(
        "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  tcp-request inspect-delay 1s\n\
         \x20 tcp-request content reject if {{ req.ssl_ver lt 3.1 }}\n\
         \x20 use_backend v30 if {{ req.ssl_ver 3.0 }}\n\
         \x20 use_backend v31 if {{ req.ssl_ver 3.1 }}\n\
         \x20 use_backend v33 if {{ req.ssl_ver 3.3 }}\n\
         \x20 use_backend v34 if {{ req.ssl_ver 3.4 }}\n\
         \x20 default_backend none\n{backends}"
    );
    let modern = client_hello([3, 1], [3, 3]);
    let mut alert_type = modern.clone();
    alert_type[0] = 0x15;
    let clients: Vec<(&str, Vec<u8>)> = vec![
        ("TLS 1.2/1.3 client", modern.clone()),
        ("TLS 1.0 client", client_hello([3, 1], [3, 1])),
        ("record 3.3", client_hello([3, 3], [3, 3])),
        ("SSLv3 client", client_hello([3, 0], [3, 0])),
        ("alert record type", alert_type),
        ("record version 2.0", client_hello([2, 0], [3, 3])),
        ("cut short", modern[..modern.len() - 1].to_vec()),
        ("SSLv2 hello for 3.1", sslv2_hello([3, 1], None)),
        ("SSLv2 long header", sslv2_hello([3, 4], Some(2))),
        ("SSLv2 hello for 2.0", sslv2_hello([0, 2], None)),
        ("plain text", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
    ];
    let observe = |front| {
        (clients.iter())
            .map(|(what, bytes)| format!("{what}: {}", route(front, bytes)))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    let routed: Vec<&str> = ours
        .iter()
        .map(|l| l.rsplit(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        routed,
        [
            "v33", "v31", "v33", "", "v33", "none", "none", "v31", "v34", "", "none"
        ],
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
