//! The runtime API's `show errors`, side by side with HAProxy 2.6 (same configuration, same
//! traffic): the last request each frontend refused and the last response each backend
//! refused, with HAProxy's header lines (proxies, server, event number, buffer figures,
//! the H1 parser's state and flags where it stopped, the error's position) and its escaped
//! dump of the bytes, a kept-alive connection's second request too; its empty answer, its filters (a proxy's name or id, the other end's,
//! `request` or `response`), its refusal of an unknown proxy and of level user. Dates and
//! client ports differ between runs and are masked; nothing else is.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::side_by_side;

/// A response HAProxy's parser refuses at its third header's space (a body follows).
const BAD_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\nok";

/// A server answering every request head with [`BAD_RESPONSE`], then holding its
/// connection until the proxy closes it (a close of its own would show in the proxy's
/// flags as it races the response).
fn bad_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                if conn.write_all(BAD_RESPONSE).is_ok() {
                    let _ = conn.read_to_end(&mut Vec::new());
                }
            });
        }
    });
    addr
}

/// Sends `bytes` on a new connection, closes the sending side and reads the answers until
/// the proxy closes. The proxy captured what it refused before answering it: once this
/// returns, the capture is there.
fn exchange(front: SocketAddr, bytes: &[u8]) -> String {
    let conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    finish(conn, bytes)
}

/// [`exchange`] on a connection already open.
fn finish(mut conn: TcpStream, bytes: &[u8]) -> String {
    conn.write_all(bytes).expect("sending");
    let _ = conn.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response (its head, then its `Content-Length` body); its status.
fn response_status(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    let _ = conn.read_exact(&mut body);
    statuses(&head).pop().unwrap_or_default()
}

/// The status codes of the responses in `answers`, in order.
fn statuses(answers: &str) -> Vec<String> {
    answers
        .split("\r\n")
        .filter(|line| line.to_ascii_uppercase().starts_with("HTTP/1."))
        .filter_map(|line| line.split(' ').nth(1).map(str::to_string))
        .collect()
}

/// `show errors`'s answer with what differs between runs masked: the dates (`[DATE]`) and
/// the clients' ports (`src IP:PORT`).
fn masked(answer: &str) -> String {
    answer
        .lines()
        .map(|line| {
            let line = match (line.find('['), line.find(']')) {
                (Some(open), Some(close)) if close > open => {
                    format!("{}[DATE]{}", &line[..open], &line[close + 1..])
                }
                _ => line.to_string(),
            };
            match line.rsplit_once(", src ") {
                Some((before, src)) => {
                    let ip = src.rsplit_once(':').map_or(src, |(ip, _)| ip);
                    format!("{before}, src {ip}:PORT")
                }
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const QUERIES: [&str; 9] = [
    "show errors",
    "show errors fe",
    "show errors fe2 request",
    "show errors be",
    "show errors be request",
    "show errors 3 response",
    "show errors -1 request",
    "show errors nope",
    "show errors 0",
];

#[test]
fn show_errors_dumps_refused_messages_as_haproxy() {
    let test = "show_errors_dumps_refused_messages_as_haproxy";
    let dir = temp_dir(test);
    let (port, port2) = (free_port(), free_port());
    let server = bad_server();
    let (admin, user) = (dir.join("admin.sock"), dir.join("user.sock"));
    let config = format!(
        "global\n  stats socket {} level admin\n  stats socket {} level user\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         frontend fe2\n  bind 127.0.0.1:{port2}\n  default_backend be\n\
         backend be\n  server s1 {server}\n",
        admin.display(),
        user.display()
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let front2 = SocketAddr::from((Ipv4Addr::LOCALHOST, port2));
    let traffic = |front: SocketAddr| traffic(front, front2, &admin, &user);
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    // hapx's own view, whatever HAProxy says: every refusal was captured.
    assert_eq!(ours.statuses, ["400", "502", "400"], "{ours:#?}");
    assert!(ours.answers[0].contains(" : 3\n"), "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// What a test run saw: the clients' statuses, the empty dump, then each query's answer.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    empty: String,
    user: String,
    statuses: Vec<String>,
    answers: Vec<String>,
}

fn traffic(front: SocketAddr, front2: SocketAddr, admin: &Path, user: &Path) -> Seen {
    let empty = masked(&cli(admin, "show errors"));
    let user = cli(user, "show errors");
    let mut statuses = Vec::new();
    // A bad method; then, on one connection, a request relayed to the bad server and,
    // once its 502 came, a request with a bad header name.
    statuses.extend(statuses_of(
        front2,
        b"GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let mut conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("sending");
    statuses.push(response_status(&mut conn));
    let bad_header = b"GET /b HTTP/1.1\r\nHost: x\r\nBad\x01Name: y\r\n\r\n";
    statuses.extend(self::statuses(&finish(conn, bad_header)));
    let answers = QUERIES.iter().map(|q| masked(&cli(admin, q))).collect();
    Seen {
        empty,
        user,
        statuses,
        answers,
    }
}

fn statuses_of(front: SocketAddr, bytes: &[u8]) -> Vec<String> {
    statuses(&exchange(front, bytes))
}

/// Requests HAProxy's parser refuses at various places: each one's capture shows the state
/// the parser was in, the refused byte's position and what it had read of the framing.
const REFUSED: [&[u8]; 16] = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    // A fragment: refused as HAProxy's fix for CVE-2023-45539 refuses it.
    b"GET /account.php#.png HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET #x HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nA\x00b: c\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nA b\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\nbad header\n\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nX-Tab: \t\\\x1b\x7f\r\n\x01\r\n\r\n",
    b"\x01GET / HTTP/1.1\r\n\r\n",
    b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nX-Long: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\nHost: x\r\nBad=: y\r\n\r\n",
];

#[test]
fn each_refused_request_is_captured_where_haproxy_stops() {
    let test = "each_refused_request_is_captured_where_haproxy_stops";
    let dir = temp_dir(test);
    let port = free_port();
    let admin = dir.join("admin.sock");
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  http-request deny\n",
        admin.display(),
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let traffic = |front: SocketAddr| {
        REFUSED
            .iter()
            .map(|request| {
                let statuses = statuses_of(front, request);
                format!("{statuses:?}\n{}", masked(&cli(&admin, "show errors fe")))
            })
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    for (request, seen) in REFUSED.iter().zip(&ours) {
        assert!(seen.contains("invalid request"), "{request:?}: {seen}");
    }
    if let Some(theirs) = theirs {
        for ((request, ours), theirs) in REFUSED.iter().zip(&ours).zip(&theirs) {
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(request));
        }
    }
}
