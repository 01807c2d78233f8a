//! `tcp-request connection expect-proxy layer4 [if|unless COND]` beside HAProxy: the PROXY
//! header (v1 or v2) is read only from a connection whose rule matched, on its real peer
//! address; its source is then what later rules, the logs and the server see. A connection
//! the rule does not match is served with its real address, the header's bytes part of its
//! stream (forwarded in TCP mode, a bad request in HTTP mode). The action is not final:
//! a later connection rule still decides, on the real peer.
//!
//! Also the connection rules' socket actions: `set-mark` (seen by `ss` on the proxy's
//! socket) and `silent-drop` (the client hears nothing, the frontend counts a denied
//! connection).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, socket_seen, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, TIMEOUTS, check_alike, side_by_side};
use hapx_tests::require;
use hapx_tests::wait::eventually;

/// A PROXY v1 header from 10.1.2.3:1111 to 10.0.0.1:80.
const V1: &[u8] = b"PROXY TCP4 10.1.2.3 10.0.0.1 1111 80\r\n";

/// A PROXY v1 header whose source the session rules reject.
const V1_REJECTED_SOURCE: &[u8] = b"PROXY TCP4 10.9.9.9 10.0.0.1 2222 80\r\n";

/// A PROXY v2 header (PROXY command, TCP over IPv4) from 10.4.5.6:3333 to 10.0.0.1:80.
const V2: &[u8] =
    b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x0a\x04\x05\x06\x0a\x00\x00\x01\x0d\x05\x00\x50";

/// Frontends' log lines carry this, the proxies' own notices do not.
const MARK: &str = " src=";

fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A TCP server sending back what each connection sent once its client finished sending.
fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a TCP echo server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut got = Vec::new();
                if conn.read_to_end(&mut got).is_ok() {
                    let _ = conn.write_all(&got);
                }
            });
        }
    });
    addr
}

/// What a client from 127.0.0.`from` saw after sending `bytes` to `front` and closing its
/// side: what came back, or how it failed (`reset` when the proxy reset the connection).
fn send_from(from: u8, front: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a client socket");
    socket
        .bind(&SocketAddr::from((loopback(from), 0)).into())
        .expect("binding the client's address");
    socket
        .connect(&front.into())
        .expect("connecting to the proxy");
    let mut client = TcpStream::from(socket);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let sent = client
        .write_all(bytes)
        .and_then(|()| client.shutdown(Shutdown::Write));
    let mut answer = Vec::new();
    match sent.and_then(|()| client.read_to_end(&mut answer)) {
        Ok(_) => Ok(answer),
        // Where the reset meets the client (its shutdown, its write or its read) is a race.
        Err(e) if is_reset(&e) => Err("reset".to_string()),
        Err(e) => Err(format!("{:?}", e.kind())),
    }
}

/// Whether `e` is how a connection reset by its peer shows.
fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, NotConnected};
    matches!(e.kind(), ConnectionReset | NotConnected | BrokenPipe)
}

/// The frontends' log lines received until (and with) the first showing `last`.
fn marked_lines_until(syslog: &Syslog, last: &str) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(line) = syslog.lines(1).pop() {
        if line.contains(MARK) {
            lines.push(line.clone());
        }
        if line.contains(last) {
            break;
        }
    }
    lines
}

/// The status line of an HTTP answer, the server's name and the `x-forwarded-for` it got.
fn http_summary(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let status = text.lines().next().unwrap_or_default().to_string();
    let forwarded = text
        .lines()
        .find(|l| l.starts_with("x-forwarded-for:"))
        .unwrap_or_default();
    format!("{status} | {forwarded}")
}

#[test]
fn expect_proxy_reads_the_header_only_where_its_rule_matches() {
    let test = "expect_proxy_reads_the_header_only_where_its_rule_matches";
    let syslog = Syslog::bind();
    let echo = start_echo();
    let web = EchoServer::start("web");
    let (tcp_front, http_front) = (
        SocketAddr::from((loopback(1), free_port())),
        SocketAddr::from((loopback(1), free_port())),
    );
    let config = format!(
        "global\n  log {log} local0\n\
         defaults\n  log global\n{TIMEOUTS}\
         \x20 log-format \"%f{MARK}%ci:%cp up=%U\"\n\
         frontend tcpfe\n  mode tcp\n  bind {tcp_front}\n\
         \x20 tcp-request connection expect-proxy layer4 if {{ src 127.0.0.1 127.0.0.3 }}\n\
         \x20 tcp-request connection reject if {{ src 127.0.0.3 }}\n\
         \x20 tcp-request session reject if {{ src 10.9.9.9 }}\n\
         \x20 default_backend echo\n\
         frontend httpfe\n  mode http\n  bind {http_front}\n  option forwardfor\n\
         \x20 tcp-request connection expect-proxy layer4 unless {{ src 127.0.0.2 }}\n\
         \x20 default_backend web\n\
         backend echo\n  mode tcp\n  server e {echo}\n\
         backend web\n  mode http\n  server w {web}\n",
        log = syslog.addr,
        web = web.addr,
    );
    let with = |header: &[u8], payload: &[u8]| [header, payload].concat();
    let request = b"GET / HTTP/1.1\r\nhost: test.example\r\nconnection: close\r\n\r\n";
    let traffic = |_front: SocketAddr| {
        let tcp_cases: [(&str, u8, Vec<u8>); 6] = [
            ("v1 header, rule matches", 1, with(V1, b"hello\n")),
            ("v2 header, rule matches", 1, with(V2, b"hello\n")),
            ("v1 header, rule does not match", 2, with(V1, b"hello\n")),
            ("later rule rejects the real peer", 3, with(V1, b"hello\n")),
            (
                "session rule sees the header",
                1,
                with(V1_REJECTED_SOURCE, b"x"),
            ),
            ("no header where one is expected", 1, b"hello\n".to_vec()),
        ];
        let mut seen: Vec<String> = tcp_cases
            .iter()
            .map(|(name, from, bytes)| {
                let got = send_from(*from, tcp_front, bytes);
                format!(
                    "tcp {name}: {:?}",
                    got.map(|b| String::from_utf8_lossy(&b).into_owned())
                )
            })
            .collect();
        let http_cases: [(&str, u8, Vec<u8>); 3] = [
            ("v1 header, rule matches", 1, with(V1, request)),
            ("v1 header, rule does not match", 2, with(V1, request)),
            ("no header, rule does not match", 2, request.to_vec()),
        ];
        seen.extend(http_cases.iter().map(|(name, from, bytes)| {
            let got = send_from(*from, http_front, bytes);
            format!("http {name}: {:?}", got.map(|b| http_summary(&b)))
        }));
        // A last connection, from an address no case uses: once its line came, every line
        // before it came.
        let last = send_from(4, tcp_front, b"last\n");
        assert_eq!(last, Ok(b"last\n".to_vec()), "the last connection");
        (seen, marked_lines_until(&syslog, "tcpfe src=127.0.0.4:"))
    };
    let (ours, theirs) = side_by_side(test, &config, tcp_front, traffic);
    // hapx's own behaviour, whether or not HAProxy is there to compare with.
    let (answers, lines) = &ours;
    assert_eq!(answers[0], "tcp v1 header, rule matches: Ok(\"hello\\n\")");
    assert!(
        answers[2].contains("PROXY TCP4 10.1.2.3"),
        "the header of an unmatched connection is its stream's: {answers:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("tcpfe src=10.1.2.3:1111"))
            && lines.iter().any(|l| l.contains("tcpfe src=10.4.5.6:3333")),
        "matched connections are logged with their header's source: {lines:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours.0, theirs.0, "what clients saw");
        // A line is sent as its connection ends, which the client may see first: the
        // lines are compared in no order.
        let masked = |lines: &[String]| {
            let mut lines: Vec<String> = lines.iter().map(|l| mask_client_port(l)).collect();
            lines.sort();
            lines
        };
        assert_eq!(masked(&ours.1), masked(&theirs.1), "log lines");
    }
}

/// `line` with a loopback client's port (the kernel's choice) masked; a header's port stays.
fn mask_client_port(line: &str) -> String {
    let Some(at) = line.find("src=127.0.0.") else {
        return line.to_string();
    };
    let Some(colon) = line[at..].find(':').map(|c| at + c) else {
        return line.to_string();
    };
    let digits = line[colon + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(line.len(), |d| colon + 1 + d);
    format!("{}:PORT{}", &line[..colon], &line[digits..])
}

#[test]
fn expect_proxy_rules_are_checked_as_haproxy_checks_them() {
    let test = "expect_proxy_rules_are_checked_as_haproxy_checks_them";
    let rules = [
        "tcp-request connection expect-proxy layer4",
        "tcp-request connection expect-proxy layer4 if { src 127.0.0.1 }",
        "tcp-request connection expect-proxy layer4 unless { src 127.0.0.1 } || FALSE",
        "tcp-request connection expect-proxy",
        "tcp-request connection expect-proxy layer7",
        "tcp-request connection expect-proxy layer4 now",
        "tcp-request connection expect-proxy layer4 if { req.len gt 0 }",
        "tcp-request content expect-proxy layer4",
        "tcp-request content expect-proxy",
        "tcp-request session expect-proxy layer4",
        "tcp-request session expect-proxy layer5",
    ];
    let mut taken = Vec::new();
    for rule in rules {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  {rule}\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        let (code, messages) = check_alike(test, &text);
        if code == 0 {
            taken.push(rule);
        } else {
            assert!(!messages.is_empty(), "{rule}: refused without a message");
        }
    }
    // Whether or not HAProxy is there to compare: the well-formed connection rules, one
    // whose condition can never match there taken with a warning.
    assert_eq!(taken, [rules[0], rules[1], rules[2], rules[6]]);
}

/// A client from 127.0.0.`from` connected to `front`.
fn connected_from(from: u8, front: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("a client socket");
    socket
        .bind(&SocketAddr::from((loopback(from), 0)).into())
        .expect("binding the client's address");
    socket
        .connect(&front.into())
        .expect("connecting to the proxy");
    // Nothing sent: a byte the client sends after a silent drop would be answered with a
    // reset by the client's own system (no socket for it any more), whichever proxy it is.
    TcpStream::from(socket)
}

#[test]
fn connection_socket_actions_act_as_haproxys() {
    let test = "connection_socket_actions_act_as_haproxys";
    if !require::command(test, "ss") {
        return;
    }
    let dir = temp_dir(test);
    let stats = dir.join("stats.sock");
    let echo = start_echo();
    let front = SocketAddr::from((loopback(1), free_port()));
    let config = format!(
        "global\n  stats socket {stats} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n\
         \x20 tcp-request connection set-mark 0x2a if {{ src 127.0.0.1 }}\n\
         \x20 tcp-request connection set-tos 0x20 if {{ src 127.0.0.1 }}\n\
         \x20 tcp-request connection silent-drop if {{ src 127.0.0.2 }}\n\
         \x20 default_backend echo\n\
         backend echo\n  server e {echo}\n",
        stats = stats.display(),
    );
    let traffic = |front: SocketAddr| {
        // Marked: the proxy's side of the connection carries the mark once its rules ran.
        let marked = connected_from(1, front);
        let client = marked.local_addr().expect("the client's address");
        let mark_seen = eventually(Duration::from_secs(5), || {
            socket_seen(front, client).is_some_and(|s| s.contains("fwmark:0x2a"))
        });
        drop(marked);
        // Dropped: once the proxy's side is gone, whether the client heard of it.
        let dropped = connected_from(2, front);
        let client = dropped.local_addr().expect("the client's address");
        let proxy_side_gone = eventually(Duration::from_secs(5), || {
            socket_seen(front, client).is_none()
        });
        let client_side = socket_seen(client, front)
            .and_then(|s| s.split_whitespace().next().map(str::to_string));
        let csv = cli(&stats, "show stat");
        let counted = stat_row(&csv, "fe", "FRONTEND").map(|r| {
            ["dcon", "dses", "stot"]
                .map(|f| format!("{f}={}", r[f]))
                .join(" ")
        });
        (mark_seen, proxy_side_gone, client_side, counted)
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert!(ours.0, "the mark was set: {ours:?}");
    assert!(ours.1, "the dropped connection was closed: {ours:?}");
    // A dropped connection is no session, and no denied one (HAProxy counts it nowhere).
    assert_eq!(
        ours.3.as_deref(),
        Some("dcon=0 dses=0 stot=1"),
        "the marked connection alone is a session: {ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
