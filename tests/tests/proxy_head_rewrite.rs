//! HTTP/1 heads HAProxy 2.6 reads otherwise than a naive parser, and rewrites it fails:
//! hapx-proxy next to HAProxy on the same configurations and raw traffic.
//! - A head ends at its first empty line whatever ended the line before it (`\n\r\n`); a
//!   CR not followed by LF is refused at once, not after `timeout http-request`; no blank
//!   may come before the method or after the version; Content-Length is digits between
//!   commas and blanks (space, tab) only, kept as written (`01`) when one header gives it.
//!   A server's response is read the same way (502 where a request gets 400).
//! - A `replace-*` whose replacement ends inside an escape, or a rewrite that no longer
//!   fits HAProxy's buffer, fails: 500 (`PR--`, `PH--` for a response), counted in `wrew`
//!   and `eint` of the frontend, the backend and the server where they take part; an
//!   `http-after-response` rewrite too.
//! - `http-response deny` keeps the server connection only for a response that came whole
//!   within HAProxy's buffer less its rewrite reserve.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, TIMEOUTS, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// Sends `request` on a new connection and reads until the peer closes or 6 s pass: all
/// that came, and whether it came within 2 s (`timeout http-request` is 3 s: a head taken
/// as incomplete would be answered later).
fn exchange_raw(addr: SocketAddr, request: &[u8]) -> (String, bool) {
    let started = Instant::now();
    let Ok(mut s) = TcpStream::connect(addr) else {
        return ("no connection".into(), false);
    };
    s.set_read_timeout(Some(Duration::from_secs(6))).ok();
    let _ = s.write_all(request);
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    while !complete(&got) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let quick = started.elapsed() < Duration::from_secs(2);
    (String::from_utf8_lossy(&got).into_owned(), quick)
}

/// Whether `got` holds a whole response with a Content-Length (a kept-alive connection
/// stays open after it).
fn complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:"));
    length
        .and_then(|l| l.trim().parse::<usize>().ok())
        .is_some_and(|l| got.len() >= end + 4 + l)
}

/// [`exchange_raw`] told short: the status line and, for a 200, the body.
fn answer(addr: SocketAddr, request: &[u8]) -> (String, bool) {
    let (text, quick) = exchange_raw(addr, request);
    let status = text.split("\r\n").next().unwrap_or_default().to_string();
    let body = match status.contains(" 200 ") {
        true => text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim(),
        false => "",
    };
    (format!("{status} {body}"), quick)
}

/// Malformed request heads: the statuses (and the Content-Length the rules see) HAProxy
/// answers, as soon as it does.
#[test]
fn request_heads_are_read_as_haproxy_reads_them() {
    let test = "request_heads_are_read_as_haproxy_reads_them";
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  timeout http-request 3s\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 content-type text/plain \
         lf-string \"cl=%[req.hdr(content-length)]\"\n"
    );
    let cases: [&[u8]; 16] = [
        b"GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n",
        b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\t\r\nHost: a\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET  /  HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \x0c1\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xc2\xa01\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 01\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 01\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 01\r\nContent-Length: 1\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,,1\r\n\r\nz",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    ];
    let traffic = |addr| -> Vec<(String, bool)> { cases.iter().map(|c| answer(addr, c)).collect() };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let statuses: Vec<&str> = ours.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK cl=",
            "HTTP/1.1 200 OK cl=",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 200 OK cl=",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 200 OK cl=01",
            "HTTP/1.1 200 OK cl=01",
            "HTTP/1.1 200 OK cl=01",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
            "HTTP/1.1 400 Bad request ",
        ],
        "hapx-proxy"
    );
    assert!(ours.iter().all(|(_, quick)| *quick), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The Content-Length a server gets: as the client wrote it when one header gives one
/// value (`01`), the last word of the first header otherwise.
#[test]
fn content_length_is_forwarded_as_written() {
    let test = "content_length_is_forwarded_as_written";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend be\n\
         backend be\n  server web {}\n",
        web.addr
    );
    let lengths = ["01", "00", "01, 1", "1 ,01", "1\r\nContent-Length: 01"];
    let traffic = |addr| -> Vec<String> {
        lengths
            .iter()
            .map(|cl| {
                let body = if cl.starts_with("00") { "" } else { "z" };
                let request = format!(
                    "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\
                     Content-Length: {cl}\r\n\r\n{body}"
                );
                let (text, _) = answer(addr, request.as_bytes());
                let forwarded = text.lines().filter(|l| l.starts_with("content-length"));
                forwarded.collect::<Vec<_>>().join("|")
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        [
            "content-length: 01",
            "content-length: 00",
            "content-length: 1",
            "content-length: 01",
            "content-length: 1"
        ],
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A server that answers every connection's first request with `response`, then closes.
fn fixed_server(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = (&conn).write_all(response);
                thread::sleep(Duration::from_millis(100));
            });
        }
    });
    addr
}

/// The same heads from a server: HAProxy's 502 where a request gets 400, at once.
#[test]
fn response_heads_are_read_as_haproxy_reads_them() {
    let test = "response_heads_are_read_as_haproxy_reads_them";
    let responses: [&'static [u8]; 7] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\rb\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: \x0c2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2,\r\n\r\nok",
        b" HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ];
    let servers: Vec<SocketAddr> = responses.iter().map(|r| fixed_server(r)).collect();
    let addr = front();
    let mut config = format!("defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n");
    for (i, _) in servers.iter().enumerate() {
        config += &format!("  use_backend b{i} if {{ path /{i} }}\n");
    }
    for (i, server) in servers.iter().enumerate() {
        config += &format!("backend b{i}\n  server s {server}\n");
    }
    let traffic = |addr| -> Vec<(String, bool)> {
        (0..servers.len())
            .map(|i| {
                let request = format!("GET /{i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
                let (text, quick) = exchange_raw(addr, request.as_bytes());
                let head = text.split("\r\n\r\n").next().unwrap_or_default();
                let lines = head
                    .lines()
                    .filter(|l| l.starts_with("HTTP") || l.starts_with("content-length"));
                (lines.collect::<Vec<_>>().join("|"), quick)
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let statuses: Vec<&str> = ours.iter().map(|(s, _)| &s[..12]).collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200",
            "HTTP/1.1 502",
            "HTTP/1.1 502",
            "HTTP/1.1 502",
            "HTTP/1.1 200",
            "HTTP/1.1 502",
            "HTTP/1.1 502"
        ],
        "hapx-proxy: {ours:?}"
    );
    assert!(ours[4].0.contains("content-length: 02"), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// wrew and eint of a `show stat` row.
fn failures(csv: &str, proxy: &str, server: &str) -> (String, String) {
    let row: HashMap<String, String> = stat_row(csv, proxy, server).unwrap_or_default();
    let get = |col: &str| row.get(col).cloned().unwrap_or_default();
    (get("wrew"), get("eint"))
}

/// Failed rewrites: a replacement ending in `\` or in `\x` with one digit, a header that
/// no longer fits the buffer, a response's header replaced the same way. HAProxy answers
/// 500, logs `PR--` (`PH--`) without a request time, and counts `wrew` and `eint`.
#[test]
fn failed_rewrites_answer_500_and_are_counted() {
    let test = "failed_rewrites_answer_500_and_are_counted";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let web = EchoServer::start_with("web", "x-r: 1\r\n");
    let addr = front();
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n  log {log} local0\n  log-format \"%ST %tsc %TR %b %s\"\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request replace-header x-a (.*) \"ab\\\\\" if {{ hdr(x-a) -m found }}\n\
         \x20 http-request replace-header x-b (.*) '\\x4' if {{ hdr(x-b) -m found }}\n\
         \x20 http-request replace-value x-v (.*) 'v\\' if {{ hdr(x-v) -m found }}\n\
         \x20 http-request set-header x-big %[req.hdr(x-c)]%[req.hdr(x-c)] if {{ hdr(x-c) -m found }}\n\
         \x20 use_backend resp if {{ hdr(x-resp) -m found }}\n\
         \x20 use_backend after if {{ hdr(x-after) -m found }}\n\
         \x20 default_backend be\n\
         backend be\n  server web {web}\n\
         backend after\n\
         \x20 http-after-response replace-header x-r (.*) \"ab\\\\\"\n\
         \x20 server web {web}\n\
         backend resp\n\
         \x20 http-response replace-header x-r (.*) \"ab\\\\\"\n\
         \x20 server web {web}\n",
        sock = sock.display(),
        log = syslog.addr,
        web = web.addr,
    );
    let fits = "y".repeat(5416);
    let too_big = "y".repeat(5417);
    let requests = [
        "x-a: 1".to_string(),
        "x-b: 1".into(),
        "x-v: 1, 2".into(),
        format!("x-c: {fits}"),
        format!("x-c: {too_big}"),
        "x-resp: 1".into(),
        "x-after: 1".into(),
        "x-none: 1".into(),
    ];
    let traffic = |addr| {
        // Each request's log line is read before the next request goes: a line is sent
        // when its stream ends, which may come after the client has its answer, so lines
        // read at the end could come in another order than the requests.
        let (statuses, logs): (Vec<String>, Vec<String>) = requests
            .iter()
            .map(|h| {
                let request =
                    format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{h}\r\n\r\n");
                let status = answer(addr, request.as_bytes())
                    .0
                    .split(' ')
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                (status, syslog.lines(1).concat())
            })
            .unzip();
        let csv = cli(&sock, "show stat");
        let counted = [
            ("fe", "FRONTEND"),
            ("be", "BACKEND"),
            ("resp", "BACKEND"),
            ("resp", "web"),
            ("after", "web"),
        ]
        .map(|(p, s)| failures(&csv, p, s));
        (statuses, logs, counted)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours.0,
        ["500", "500", "500", "200", "500", "500", "500", "200"],
        "hapx-proxy"
    );
    assert_eq!(
        ours.1,
        [
            "500 PR-- -1 fe <NOSRV>",
            "500 PR-- -1 fe <NOSRV>",
            "500 PR-- -1 fe <NOSRV>",
            "200 ---- 0 be web",
            "500 PR-- -1 fe <NOSRV>",
            "500 PH-- 0 resp web",
            "500 PH-- 0 after web",
            "200 ---- 0 be web",
        ],
        "hapx-proxy"
    );
    let pair = |w: &str, e: &str| (w.to_string(), e.to_string());
    let (none, one) = (pair("0", "0"), pair("1", "1"));
    assert_eq!(
        ours.2,
        [pair("6", "6"), none, one.clone(), one.clone(), one],
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A server on one connection per client request kind: answers `/deny/N` with a response
/// of N body bytes marked for denial, `/conn` with the number of its connection.
fn counting_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for (number, conn) in listener.incoming().flatten().enumerate() {
            thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                loop {
                    let mut first = String::new();
                    if reader.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                        line.clear();
                    }
                    let path = first.split(' ').nth(1).unwrap_or_default();
                    let response = match path.strip_prefix("/deny/") {
                        Some(n) => {
                            let body = "x".repeat(n.parse().unwrap_or(0));
                            format!(
                                "HTTP/1.1 200 OK\r\nx-deny: 1\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            )
                        }
                        None => format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-conn: {number}\r\n\r\nok"
                        ),
                    };
                    if (&conn).write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `http-response deny` keeps the server connection for a response well within HAProxy's
/// buffer less its rewrite reserve, and drops it for one beyond (about 15.2 KB).
#[test]
fn a_denied_response_keeps_its_connection_only_within_the_buffer() {
    let test = "a_denied_response_keeps_its_connection_only_within_the_buffer";
    let server = counting_server();
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend be\n\
         backend be\n  http-response deny if {{ res.hdr(x-deny) -m found }}\n\
         \x20 http-reuse always\n  server s {server}\n"
    );
    // Each exchange waits for the connection's close, after which the server connection
    // is back in the idle pool (or gone).
    let get = |addr, path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let mut s = TcpStream::connect(addr).expect("connecting");
        s.set_read_timeout(Some(Duration::from_secs(6))).ok();
        let _ = s.write_all(request.as_bytes());
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        got
    };
    let conn = |text: String| {
        let at = text.find("x-conn: ").map_or(text.len(), |at| at + 8);
        text[at..]
            .split("\r\n")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    // A moment after each exchange for the proxy to put its server connection back in the
    // pool: the client's close may reach it first. Sizes keep away from HAProxy's cut,
    // which moves between about 15186 and 15216 body bytes from run to run.
    let settled = |text: String| {
        thread::sleep(Duration::from_millis(100));
        text
    };
    let traffic = |addr| -> Vec<bool> {
        [0, 8000, 14000, 15800, 16200]
            .iter()
            .map(|n| {
                let before = conn(settled(get(addr, "/conn")));
                settled(get(addr, &format!("/deny/{n}")));
                before == conn(settled(get(addr, "/conn")))
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(ours, [true, true, true, false, false], "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
