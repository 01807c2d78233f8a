//! `ring NAME` and `log-forward NAME` sections, and `log ring@NAME` targets, beside HAProxy
//! 2.6: the sections are read with HAProxy's keywords and messages; a proxy logging to a ring
//! runs and serves; a `log-forward` section re-emits the syslog it receives over UDP and TCP
//! to its targets with their formats, byte for byte as HAProxy (the rings themselves:
//! proxy_rings.rs).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use hapx_tests::bins;
use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_messages, exchange, get, side_by_side,
};
use hapx_tests::require;

const RING: &str = "ring myring\n  description \"My local buffer\"\n  format rfc3164\n  maxlen 1200\n  size 32764\n\
                    \x20 timeout connect 5s\n  timeout server 10s\n  server mysyslogsrv 127.0.0.1:6514 log-proto octet-count\n";
const LOG_FORWARD: &str = "log-forward sylog-loadb\n  dgram-bind 127.0.0.1:1514\n  bind 127.0.0.1:1514\n  maxconn 10\n\
                           \x20 timeout client 10s\n  log 127.0.0.1:10001 local0\n  log global\n";

#[test]
fn ring_and_log_forward_lines_are_judged_as_haproxy_does() {
    let test = "ring_and_log_forward_lines_are_judged_as_haproxy_does";
    let cases = [
        // Every ring keyword's error, a second ring of a name, a ring without one, and a
        // log-forward section without a name (where HAProxy stops reading).
        "ring r\n  foo\n  size abc\n  format bogus\n  maxlen 0\n  server\n  timeout client 1s\n\
         ring r\nring\nlog-forward\nlog-forward lf\n  foo\n",
        // A missing timeout, a missing description, a maximum length above the size (a
        // warning); a log-forward keyword HAProxy does not know.
        "ring r\n  timeout connect\n  description\n  maxlen 100000\nlog-forward lf\n  foo\n  maxconn 10\n",
        // A ring's bad server lines; a log-forward section's bad lines (a `bind` without an
        // address passes).
        "ring r\n  server s1 nonsense\n  server s2 127.0.0.1\n  server s3 127.0.0.1:5 log-proto foo\n\
         log-forward lf\n  bind\n  bind abc\n  dgram-bind 127.0.0.1\n  maxconn\n  timeout client\n\
         \x20 backlog\n  log\n  bind 127.0.0.1:1\n",
    ];
    let dir = temp_dir(test);
    let with_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (case, text) in cases.iter().enumerate() {
        let file = dir.join(format!("case{case}.cfg"));
        std::fs::write(&file, text).expect("writing");
        let (code, ours) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_ne!(code, 0, "{ours:?}");
        if with_haproxy {
            let theirs = check_messages(Path::new(HAPROXY), &file);
            assert_eq!((code, ours), theirs, "hapx-proxy, then HAProxy");
        }
    }
}

#[test]
fn a_ring_and_a_log_forward_section_are_read_as_haproxy_reads_them() {
    let test = "a_ring_and_a_log_forward_section_are_read_as_haproxy_reads_them";
    let dir = temp_dir(test);
    let cases = [
        format!(
            "{RING}ring quiet\ndefaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
             \x20 log ring@myring local0\n  log ring@quiet local0 info\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:2\n{LOG_FORWARD}"
        ),
        // Rings with servers are backends to HAProxy, warned about without their timeouts.
        format!(
            "ring a\n  server s 127.0.0.1:3\nring b\n  timeout connect 1s\n  server s 127.0.0.1:3\n\
             ring c\n  timeout connect 1s\n  timeout server 1s\n  server s 127.0.0.1:3\n\
             defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
             \x20 log ring@a local0\n  http-request return status 200\n"
        ),
    ];
    let with_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (case, text) in cases.iter().enumerate() {
        let file = dir.join(format!("case{case}.cfg"));
        std::fs::write(&file, text).expect("writing");
        let ours = check_messages(&bins::path("hapx-proxy"), &file);
        assert_eq!(ours.0, 0, "{ours:?}");
        if case == 0 {
            assert_eq!(ours.1, Vec::<String>::new());
        }
        if with_haproxy {
            assert_eq!(
                ours,
                check_messages(Path::new(HAPROXY), &file),
                "hapx-proxy, then HAProxy"
            );
        }
    }
}

#[test]
fn a_log_to_an_unknown_ring_is_refused() {
    let test = "a_log_to_an_unknown_ring_is_refused";
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    let text = format!(
        "{RING}defaults\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  log ring@nosuch local0\n\
         \x20 default_backend b\nbackend b\n  server s 127.0.0.1:2\n"
    );
    std::fs::write(&file, text).expect("writing");
    // HAProxy says so when it starts (its `-c` passes); hapx at once.
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_ne!(code, 0, "{messages:?}");
    assert!(
        messages.contains(&format!(
            "ALERT: log server declared in proxy section 'f' in file '{}' at line 15 uses unknown ring named 'nosuch'.",
            file.display()
        )),
        "{messages:?}"
    );
}

#[test]
fn a_proxy_logging_to_a_ring_serves_its_requests() {
    let test = "a_proxy_logging_to_a_ring_serves_its_requests";
    let server = EchoServer::start("s1");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "{RING}defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind {front}\n  log ring@myring local0\n\
         \x20 option httplog\n  default_backend b\nbackend b\n  server s1 {}\n{LOG_FORWARD}",
        server.addr
    );
    let answered = |front: SocketAddr| {
        exchange(front, &[get("/", "")])
            .into_iter()
            .map(|r| r.map(|r| r.server().to_string()))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, front, answered);
    assert_eq!(ours, [Some("s1".to_string())]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A UDP syslog receiver keeping each datagram whole.
struct Receiver {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl Receiver {
    fn bind() -> Receiver {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a receiver");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("its address");
        Receiver { socket, addr }
    }

    /// The datagrams up to the first holding `marker` (included); fewer if one does not
    /// come within 10 seconds.
    fn until(&self, marker: &str) -> Vec<String> {
        let mut got = Vec::new();
        let mut buf = [0u8; 70000];
        while let Ok(n) = self.socket.recv(&mut buf) {
            let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
            let last = datagram.contains(marker);
            got.push(datagram);
            if last {
                break;
            }
        }
        got
    }
}

/// A datagram with its digits masked, unless its message came with its own date
/// (`dated`): only then is its header's date not the time it was sent.
fn masked_unless_dated(datagram: &str) -> String {
    if datagram.contains("dated") {
        return datagram.to_string();
    }
    let mut out = String::new();
    let mut in_digits = false;
    for c in datagram.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// Syslog messages as senders write them: RFC 3164 and RFC 5424 headers, whole or in part,
/// and none.
const RECEIVED: [&str; 9] = [
    "<30>Nov 28 19:00:01 myhost myapp[123]: dated rfc3164",
    "<165>1 2026-11-28T19:00:02.123456+00:00 myhost myapp 123 ID47 [ex@32473 iut=\"3\" e=\"\\]\"] dated rfc5424",
    "<165>1 2026-11-28T19:00:02Z host app - - - dated zulu",
    "<13>no header at all",
    "plain text without a priority",
    "<30>Nov 28 19:00:01 myhost myapp: dated without a pid",
    "<30>myapp[5]: a tag alone",
    "<165>1 - - - - - - nil fields",
    "<30>Nov 28 19:00:01 myhost my[app]x: dated odd tag",
];

#[test]
fn a_log_forward_section_re_emits_syslog_as_haproxy_does() {
    let test = "a_log_forward_section_re_emits_syslog_as_haproxy_does";
    let formats = [
        "",
        "format rfc5424",
        "format rfc3164",
        "format short",
        "format raw",
        "format priority",
        "format iso",
        "format timed",
        "len 80 format rfc5424",
    ];
    let receivers: Vec<Receiver> = formats.iter().map(|_| Receiver::bind()).collect();
    let udp = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let tcp = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let mut config = format!(
        "log-forward lf\n  dgram-bind {udp}\n  bind {tcp}\n  maxconn 5\n  timeout client 10s\n"
    );
    for (format, receiver) in formats.iter().zip(&receivers) {
        config += &format!("  log {} {format} local3 info\n", receiver.addr);
    }
    let observe = |tcp: SocketAddr| {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("a sender");
        for message in RECEIVED.iter().chain(&["<0>marker one"]) {
            sender.send_to(message.as_bytes(), udp).expect("sending");
        }
        let mut got: Vec<Vec<String>> = receivers.iter().map(|r| r.until("marker one")).collect();
        let mut stream = TcpStream::connect(tcp).expect("connecting");
        let mut framed = Vec::new();
        for message in &RECEIVED[..2] {
            framed.extend(format!("{} {message}", message.len()).bytes());
        }
        framed.extend(b"<30>Nov 28 19:00:04 h app[9]: dated over a line\r\n<0>marker two\n");
        stream.write_all(&framed).expect("sending");
        for (receiver, got) in receivers.iter().zip(&mut got) {
            got.extend(receiver.until("marker two"));
        }
        // Sorted per receiver: HAProxy's threads may take datagrams out of order.
        (got.iter())
            .flat_map(|datagrams| {
                let mut masked: Vec<String> =
                    datagrams.iter().map(|d| masked_unless_dated(d)).collect();
                masked.sort();
                masked
            })
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, tcp, observe);
    assert_eq!(
        ours.len(),
        formats.len() * (RECEIVED.len() + 5),
        "{ours:#?}"
    );
    let first = "<30>Nov 28 19:00:01 myhost myapp[123]: dated rfc3164\n";
    assert!(ours.contains(&first.to_string()), "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn a_syslog_client_framing_badly_or_idle_is_closed() {
    let test = "a_syslog_client_framing_badly_or_idle_is_closed";
    let receiver = Receiver::bind();
    let tcp = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "log-forward lf\n  bind {tcp}\n  timeout client 500ms\n  log {} local0\n",
        receiver.addr
    );
    let observe = |tcp: SocketAddr| {
        let closed = |sent: &[u8]| {
            let mut stream = TcpStream::connect(tcp).expect("connecting");
            stream.write_all(sent).expect("sending");
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut buf = [0u8; 16];
            matches!(stream.read(&mut buf), Ok(0) | Err(_))
        };
        // A message, then a frame neither octet-counted nor a line: closed; idle: closed.
        let bad = closed(b"<0>before\nx");
        let got = receiver.until("before");
        let idle = closed(b"");
        (bad, idle, got)
    };
    let (ours, theirs) = side_by_side(test, &config, tcp, observe);
    assert!(ours.0 && ours.1, "{ours:?}");
    assert_eq!(ours.2.len(), 1, "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(
            (ours.0, ours.1, ours.2.len()),
            (theirs.0, theirs.1, theirs.2.len())
        );
    }
}

/// hapx only: HAProxy 2.6.12 never serves a client that waited for a slot (seen: neither
/// after the first client closes nor after its `timeout client`, nor a client coming later),
/// which hapx does not copy.
#[test]
fn a_log_forward_section_serves_maxconn_clients_at_once() {
    let test = "a_log_forward_section_serves_maxconn_clients_at_once";
    let receiver = Receiver::bind();
    let tcp = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "log-forward lf\n  bind {tcp}\n  maxconn 1\n  timeout client 10s\n  log {} local0\n",
        receiver.addr
    );
    let dir = temp_dir(test);
    let _proxy = Proxy::start(&dir, "hapx", &config, tcp);
    let mut first = TcpStream::connect(tcp).expect("connecting");
    first.write_all(b"<0>first\n").expect("sending");
    let mut order = receiver.until("first");
    // The second client waits in the listener's queue while the first is served.
    let mut second = TcpStream::connect(tcp).expect("connecting");
    second.write_all(b"<0>second\n").expect("sending");
    first.write_all(b"<0>first again\n").expect("sending");
    order.extend(receiver.until("first again"));
    drop(first);
    order.extend(receiver.until("second"));
    assert_eq!(order, ["<0>first\n", "<0>first again\n", "<0>second\n"]);
}
