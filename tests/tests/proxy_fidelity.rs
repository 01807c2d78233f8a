//! Small fidelity points, hapx-proxy next to HAProxy 2.6 on the same configurations and
//! traffic, each compared whole:
//! - the length-value payload fetch (`req.payload_lv`, `payload_lv`) in content rules,
//!   switching rules, `balance hash` and `stick on`, HAProxy's offset quirks included, and
//!   its argument errors;
//! - `deny`/`tarpit`/`return ... errorfiles NAME` (a section's page per rule) and their
//!   errors, and `errorfile` pages as HAProxy's HTTP/1 layer writes them out again;
//! - the `Connect from` line of frontends logging without a format, and the stats page's
//!   stream (its `stats auth` 401) as HAProxy logs and counts it;
//! - an untimed `HANA` check's `check_duration`, and how the page shows trackers;
//! - HTTP fetches in a TCP frontend's content rules, read from the stream's first bytes
//!   (given up at once on bytes no HTTP request could start with).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, http_get, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{
    EchoServer, Syslog, TIMEOUTS, check_frontend_line, check_text, exchange, get, shape,
    shape_keeping_bytes, side_by_side,
};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// Sends `data` in one write (then closes the sending side when `close`), and reads the
/// first line the server behind answers ("" when the proxy closed instead).
fn send_and_read(addr: SocketAddr, data: &[u8], close: bool) -> String {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return "<refused>".into();
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if conn.write_all(data).is_err() {
        return String::new();
    }
    if close {
        conn.shutdown(Shutdown::Write).ok();
    }
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    line.trim().to_string()
}

/// `\0\x01` then 14 `x`, an `A` at `at`: a one-byte length field at 1 (value 1) in a
/// two-byte field at 0, so that which offset a rule reads shows.
fn marked(at: usize) -> Vec<u8> {
    let mut data = b"\0\x01xxxxxxxxxxxxxx".to_vec();
    data[at] = b'A';
    data
}

#[test]
fn payload_lv_routes_and_rejects_like_haproxy() {
    let test = "payload_lv_routes_and_rejects_like_haproxy";
    let hold = Duration::from_millis(300);
    let names = ["rel", "abs", "odd", "follow", "hashed", "none"];
    let servers: Vec<_> = names
        .iter()
        .map(|n| NamedServer::start(n, LO, hold))
        .collect();
    let backends: String = names
        .iter()
        .zip(&servers)
        .map(|(n, s)| format!("backend b_{n}\n  server s_{n} {}\n", s.addr))
        .collect();
    let (h1, h2) = (
        NamedServer::start("h1", LO, hold),
        NamedServer::start("h2", LO, hold),
    );
    let (addr, hashed) = (front(), front());
    // The rules read the length at 0 (two bytes) and take the data right after it, at a
    // signed offset (relative), at an unsigned even one (HAProxy halves it) and at an odd
    // one (HAProxy reads it as relative, halved).
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}frontend fe\n  bind {addr}\n  tcp-request inspect-delay 1s\n\
         \x20 tcp-request content reject if {{ req.payload_lv(0,1) -m str bad }}\n\
         \x20 tcp-request content accept if {{ req.payload_lv(0,2) -m found }}\n\
         \x20 tcp-request content accept if {{ req.payload_lv(0,1) -m found }}\n\
         \x20 use_backend b_rel if {{ req.payload_lv(0,2,+1) -m bin 41 }}\n\
         \x20 use_backend b_abs if {{ req.payload_lv(0,2,10) -m bin 41 }}\n\
         \x20 use_backend b_odd if {{ req.payload_lv(0,2,11) -m bin 41 }}\n\
         \x20 use_backend b_follow if {{ payload_lv(1,1,) -m str abc }}\n\
         \x20 use_backend b_hashed if {{ req.payload_lv(0,1),crc32 gt 0 }}\n\
         \x20 default_backend b_none\n{backends}\
         frontend fh\n  bind {hashed}\n  default_backend b_lv\n\
         backend b_lv\n  balance hash req.payload_lv(0,1)\n  server h1 {}\n  server h2 {}\n",
        h1.addr, h2.addr
    );
    let mut cases: Vec<(Vec<u8>, bool)> = (2..14).map(|at| (marked(at), false)).collect();
    cases.extend([
        (b"\x03abcdef".to_vec(), false),
        (b"\x03bad".to_vec(), false),
        (b"\x02xyz".to_vec(), false),
        // A length of 0 never matches; a length past what came does not once the client
        // has closed (nor after the inspect delay).
        (b"\0\0abc".to_vec(), true),
        (b"\0\x09abc".to_vec(), true),
        (b"\x09abc".to_vec(), true),
    ]);
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let mut seen: Vec<String> = (cases.iter())
            .map(|(data, close)| send_and_read(addr, data, *close))
            .collect();
        // `balance hash` reads the buffer once its content is forwarded: the fetch finds
        // nothing there and the servers are taken in turn, as for any key-less request.
        seen.extend((0..4).map(|_| send_and_read(hashed, b"\x03abc", false)));
        seen
    });
    // The relative offset reads right after the field (+1 = 3), the odd one at 2 + 5.
    assert_eq!(ours[1], "rel", "{ours:?}");
    assert_eq!(ours[5], "odd", "{ours:?}");
    assert_eq!(ours[12], "hashed", "{ours:?}");
    assert_eq!(ours[13], "", "rejected: {ours:?}");
    assert_ne!(ours[18], ours[19], "taken in turn: {ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn payload_lv_arguments_are_checked_like_haproxy() {
    let dir = temp_dir("payload_lv_arguments_are_checked_like_haproxy");
    for (case, args) in [
        "-1,1", "0,0", "0,1,x", "0,1,+1x", "0,1,-2", "0,1,-1", "0", "0,1,2,3",
    ]
    .iter()
    .enumerate()
    {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
             \x20 tcp-request content reject if {{ req.payload_lv({args}) -m bin 41 }}\n\
             \x20 acl lv req.payload_lv({args}) -m bin 41\n  default_backend b\nbackend b\n  server s 127.0.0.1:2\n"
        );
        let [ours, theirs] = check_text(&dir, case, &text);
        assert_eq!(
            ours, theirs,
            "req.payload_lv({args}): hapx-proxy, then HAProxy"
        );
    }
}

/// What a client saw of one request on its own connection: every byte until the proxy
/// closed or `wait` passed quietly, and whether it closed.
fn until_close(addr: SocketAddr, request: &[u8], wait: Duration) -> (String, bool) {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return ("<refused>".into(), true);
    };
    conn.set_read_timeout(Some(wait)).ok();
    if conn.write_all(request).is_err() {
        return (String::new(), true);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match conn.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// What a client saw of one `request` on its own connection: the whole answer (its head,
/// then the body its `content-length` frames, or all until the proxy closed), and whether
/// the connection closed after it: once the answer is whole, `then` (a request answered
/// at once) is sent, and the proxy answers it or closes. No quiet window: each step waits
/// for a condition, within a generous deadline.
fn answer_then(addr: SocketAddr, request: &str, then: &str) -> (String, bool) {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return ("<refused>".into(), true);
    };
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    if conn.write_all(request.as_bytes()).is_err() {
        return (String::new(), true);
    }
    let mut out = Vec::new();
    let read_more = |conn: &mut TcpStream, out: &mut Vec<u8>| {
        let mut buf = [0u8; 4096];
        match conn.read(&mut buf) {
            Ok(n) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                true
            }
            _ => false,
        }
    };
    let text = |out: &[u8]| String::from_utf8_lossy(out).into_owned();
    let head_end = loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if !read_more(&mut conn, &mut out) {
            return (text(&out), true);
        }
    };
    let head = text(&out[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap_or_default().to_string();
    let length = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = if request.starts_with("HEAD ") || status == "204" || status == "304" {
        Some(0)
    } else {
        length
    };
    let Some(body) = body else {
        while read_more(&mut conn, &mut out) {}
        return (text(&out), true);
    };
    while out.len() < head_end + body {
        if !read_more(&mut conn, &mut out) {
            return (text(&out), true);
        }
    }
    let answer = text(&out);
    let closed = conn.write_all(then.as_bytes()).is_err() || !read_more(&mut conn, &mut Vec::new());
    (answer, closed)
}

/// [`answer_then`] for each request at once, in order.
fn all_until_close(addr: SocketAddr, requests: &[String], then: &str) -> Vec<(String, bool)> {
    std::thread::scope(|scope| {
        let seen: Vec<_> = requests
            .iter()
            .map(|r| scope.spawn(move || answer_then(addr, r, then)))
            .collect();
        seen.into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect()
    })
}

/// Writes an error page `name` into `dir`; its path.
fn page(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a page");
    path.display().to_string()
}

#[test]
fn replies_take_http_errors_sections_like_haproxy() {
    let test = "replies_take_http_errors_sections_like_haproxy";
    let dir = temp_dir(test);
    let plain = |status: &str, src: &str| {
        format!("HTTP/1.0 {status}\r\ncontent-type: text/plain\r\nx-src: {src}\r\n\r\nfrom {src}\n")
    };
    let (p403, p503) = (
        page(&dir, "403.http", &plain("403 Forbidden", "sec403")),
        page(
            &dir,
            "503.http",
            &plain("503 Service Unavailable", "sec503"),
        ),
    );
    let (p500, p502) = (
        page(&dir, "500.http", &plain("500 Internal Error", "sec500")),
        page(&dir, "502.http", &plain("502 Bad Gateway", "sec502")),
    );
    let web = EchoServer::start("web");
    let addr = front();
    // Each rule's reply takes its section's page for its status (a status the section
    // lacks: an empty reply); the proxy's own pages stay.
    let config = format!(
        "http-errors site\n  errorfile 403 {p403}\n  errorfile 503 {p503}\n  errorfile 500 {p500}\n  errorfile 502 {p502}\n\
         defaults\n  mode http\n{TIMEOUTS}  timeout tarpit 100ms\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request deny errorfiles site if {{ path /d1 }}\n\
         \x20 http-request deny deny_status 503 errorfiles site if {{ path /d2 }}\n\
         \x20 http-request deny if {{ path /d3 }}\n\
         \x20 http-request return status 503 errorfiles site if {{ path /r1 }}\n\
         \x20 http-request return status 500 errorfiles site hdr x-extra yes if {{ path /r2 }}\n\
         \x20 http-request tarpit deny_status 500 errorfiles site if {{ path /t1 }}\n\
         \x20 http-request deny deny_status 404 errorfiles site if {{ path /d4 }}\n\
         \x20 http-response deny deny_status 502 errorfiles site if {{ res.hdr(x-deny) -m found }} || {{ status 200 }}\n\
         \x20 default_backend b\nbackend b\n  server s {}\n",
        web.addr
    );
    let requests: Vec<String> = ["/d1", "/d2", "/d3", "/r1", "/r2", "/t1", "/d4", "/pass"]
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nhost: x\r\n\r\n"))
        .collect();
    let then = "GET /d3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        all_until_close(addr, &requests, then)
    });
    assert!(ours[0].0.contains("from sec403"), "{ours:?}");
    assert!(
        ours[1].0.contains("from sec503") && ours[1].1,
        "unframed: closed {ours:?}"
    );
    assert!(
        ours[2]
            .0
            .contains("Request forbidden by administrative rules")
    );
    assert!(
        ours[6]
            .0
            .starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n")
    );
    assert!(ours[7].0.contains("from sec502"), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn reply_errorfiles_errors_read_like_haproxys() {
    let dir = temp_dir("reply_errorfiles_errors_read_like_haproxys");
    let p403 = page(&dir, "403.http", "HTTP/1.0 403 Forbidden\r\n\r\nno\n");
    let cases = [
        "http-request deny errorfiles nosuch",
        "http-response deny errorfiles",
        "http-request deny errorfiles site errorfile FILE",
        "http-request return errorfile FILE string abc",
        "http-request return status 503 errorfiles site",
        "http-request return status 299 errorfiles site",
        "http-request deny content-type text/plain errorfiles site",
    ];
    let section = format!("http-errors site\n  errorfile 403 {p403}\n");
    for (case, line) in cases.iter().enumerate() {
        let line = format!("  {}", line.replace("FILE", &p403));
        let [ours, theirs] = check_frontend_line(&dir, case, &line, "", &section);
        assert_eq!(ours, theirs, "{line}: hapx-proxy, then HAProxy");
    }
}

/// HAProxy parses an `errorfile` page and writes it out again through its HTTP/1 layer:
/// names lower-cased, values trimmed, the `connection` header its own, the connection kept
/// only after a page that frames its body and does not ask to close.
#[test]
fn errorfile_pages_go_out_as_haproxy_writes_them() {
    let test = "errorfile_pages_go_out_as_haproxy_writes_them";
    let dir = temp_dir(test);
    let pages = [
        // The seed's 503: HTTP/1.0, no length, `Connection: close`.
        "HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html>down</html>\n",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nX-Y:  spaced \r\n\r\nabc\n",
        "HTTP/1.0 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nabc\n",
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nabc\n",
        "HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\nconnection: close\r\n\r\nabc\n",
        "HTTP/1.0 403 Forbidden\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nabc\n",
        // Other `connection` tokens stay; a status line without a reason.
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: Keep-Alive, X-Foo\r\nX-Foo: bar\r\n\r\nabc\n",
        "HTTP/1.1 403\r\nContent-Length: 4\r\n\r\nabc\n",
    ];
    let rules: String = pages
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let file = page(&dir, &format!("p{i}.http"), text);
            format!("  http-request deny errorfile {file} if {{ path /p{i} }}\n")
        })
        .collect();
    let dead = front();
    let own503 = page(
        &dir,
        "own503.http",
        pages[1]
            .replace("403 Forbidden", "503 Service Unavailable")
            .as_str(),
    );
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n  timeout client 10s\n  timeout server 2s\n  timeout connect 200ms\n\
         frontend fe\n  bind {addr}\n{rules}  default_backend b\n\
         backend b\n  errorfile 503 {own503}\n  server s {dead}\n"
    );
    let mut requests: Vec<String> = (0..pages.len())
        .map(|i| format!("GET /p{i} HTTP/1.1\r\nhost: x\r\n\r\n"))
        .collect();
    requests.push("GET /none HTTP/1.1\r\nhost: x\r\n\r\n".into());
    requests.push("GET /p2 HTTP/1.0\r\n\r\n".into());
    requests.push("GET /p1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".into());
    // An HTTP/1.0 keep-alive client on HTTP/1.1 pages, and HEAD (the head only).
    requests.push("GET /p1 HTTP/1.0\r\nconnection: keep-alive\r\n\r\n".into());
    requests.push("GET /none HTTP/1.0\r\nconnection: keep-alive\r\n\r\n".into());
    requests.push("HEAD /p1 HTTP/1.1\r\nhost: x\r\n\r\n".into());
    requests.push("HEAD /p0 HTTP/1.1\r\nhost: x\r\n\r\n".into());
    let then = "GET /p1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        all_until_close(addr, &requests, then)
    });
    assert!(
        ours[0]
            .0
            .contains("cache-control: no-cache\r\ncontent-type: text/html\r\n\r\n")
    );
    assert!(ours[0].1, "an unframed page closes");
    assert!(
        ours[1].0.contains("x-y: spaced\r\n") && !ours[1].1,
        "{:?}",
        ours[1]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A frontend that logs without a traffic format (no `option httplog|tcplog`, no
/// `log-format`) logs HAProxy's `Connect from` line for each stream: each TCP connection,
/// each HTTP request (none for an HTTP connection that sent nothing).
#[test]
fn frontends_without_a_format_log_each_stream_like_haproxy() {
    let test = "frontends_without_a_format_log_each_stream_like_haproxy";
    let server = NamedServer::start("s", LO, Duration::from_millis(200));
    let web = EchoServer::start("web");
    let syslog = Syslog::bind();
    let (tcp, http) = (front(), front());
    let config = format!(
        "global\n  log {} local0\ndefaults\n  log global\n{TIMEOUTS}\
         frontend ft\n  mode tcp\n  bind {tcp}\n  default_backend bt\n\
         frontend fh\n  mode http\n  bind {http}\n  default_backend bh\n\
         backend bt\n  mode tcp\n  server s {}\nbackend bh\n  mode http\n  server s {}\n",
        syslog.addr, server.addr, web.addr
    );
    let (ours, theirs) = side_by_side(test, &config, tcp, |tcp| {
        let answer = send_and_read(tcp, b"", false);
        let twice = [get("/a", ""), get("/b", "")];
        let responses = exchange(http, &twice).len();
        let silent = TcpStream::connect(http).expect("connecting");
        drop(silent);
        let _ = TcpStream::connect(tcp).expect("connecting");
        let lines: Vec<String> = syslog.lines(4).iter().map(|l| shape(l)).collect();
        (answer, responses, lines)
    });
    assert_eq!(ours.0, "s");
    let line = |fe: &str, mode: &str| format!("Connect from N.N.N.N:N to N.N.N.N:N ({fe}/{mode})");
    assert_eq!(
        ours.2,
        [
            line("ft", "TCP"),
            line("fh", "HTTP"),
            line("fh", "HTTP"),
            line("ft", "TCP")
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The stats page's stream as HAProxy logs and counts it: its applet connects at once,
/// its bytes count on the proxy's frontend and backend; a request without `stats auth`'s
/// credentials gets the 401, logged as HAProxy 2.6 logs it (400, both pages' bytes).
#[test]
fn stats_requests_are_logged_and_counted_like_haproxy() {
    let test = "stats_requests_are_logged_and_counted_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {} local0\n  stats socket {} level admin\n\
         defaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}\
         listen stats\n  bind {addr}\n  stats enable\n  stats uri /stats\n  stats auth admin:secret\n",
        syslog.addr,
        sock.display()
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let (denied, closed) =
            until_close(addr, get("/stats", "").as_bytes(), Duration::from_secs(2));
        let status = denied.lines().next().unwrap_or_default().to_string();
        let raw = syslog.lines(1).concat();
        // The status after the timers, and the line with the other numbers masked.
        let words: Vec<&str> = raw.split(' ').collect();
        let timers = words.iter().position(|w| w.split('/').count() == 5);
        let logged = timers.and_then(|t| words.get(t + 1)).map(|w| w.to_string());
        let line = (logged, shape_keeping_bytes(&raw));
        let csv = cli(&sock, "show stat");
        let bytes =
            |sv: &str| stat_row(&csv, "stats", sv).map(|r| format!("{}/{}", r["bin"], r["bout"]));
        (status, closed, line, bytes("FRONTEND"), bytes("BACKEND"))
    });
    assert_eq!(ours.0, "HTTP/1.1 401 Unauthorized");
    assert_eq!(ours.2.0.as_deref(), Some("400"), "{:?}", ours.2);
    assert!(ours.2.1.contains(" N/N/N/-N/N N 469 "), "{:?}", ours.2);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// An HTTP server answering every request 500 (then closing).
fn failing_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = (&conn).write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            });
        }
    });
    addr
}

/// A server taken DOWN by `observe layer7` (a `HANA` check result, never timed) and
/// servers tracking one in maintenance and one DOWN: `show stat`'s `check_duration` is
/// HAProxy's untimed -1 as unsigned, and the page shows what HAProxy's does (`MAINT` for
/// the tracker, the server it follows in place of the check failures), and the exporter
/// gives it as -1 ms (and nothing for a server not checked yet). The checks come every
/// 10 s, so that the next one (L4OK again) does not replace the HANA result while it is read.
#[test]
fn untimed_checks_and_trackers_show_like_haproxy() {
    let test = "untimed_checks_and_trackers_show_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let failing = failing_server();
    let (addr, stats, prom) = (front(), front(), front());
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  default_backend be\n\
         backend be\n\
         \x20 server a {failing} check inter 3s fall 3 rise 100 observe layer7 error-limit 1 on-error mark-down\n\
         \x20 server c {failing} check disabled\n  server t {failing} track be/c\n  server u {failing} track be/a\n\
         listen stats\n  bind {stats}\n  stats enable\n  stats uri /stats\n\
         frontend prom\n  bind {prom}\n  http-request use-service prometheus-exporter\n",
        sock.display()
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let checked = || {
            stat_row(&cli(&sock, "show stat"), "be", "a")
                .is_some_and(|r| r["check_status"] == "L4OK")
        };
        assert!(wait_until(Duration::from_secs(8), checked));
        let answered = until_close(addr, get("/", "").as_bytes(), Duration::from_secs(2));
        let csv = cli(&sock, "show stat");
        let row = |sv: &str| {
            stat_row(&csv, "be", sv).map(|r| {
                let f = |c: &str| r[c].clone();
                [
                    f("status"),
                    f("check_status"),
                    f("check_duration"),
                    f("tracked"),
                ]
            })
        };
        let (_, head, page) = http_get(stats, "/stats;norefresh", None);
        let shows = |text: &str| page.matches(text).count();
        let (_, _, metrics) = http_get(prom, "/metrics", None);
        let durations: Vec<String> = (metrics.lines())
            .filter(|l| l.starts_with("haproxy_server_check_duration_seconds{"))
            .map(str::to_string)
            .collect();
        (
            answered.0.lines().next().map(str::to_string),
            [row("a"), row("c"), row("t"), row("u")],
            head.starts_with("HTTP/1.1 200"),
            [
                shows(" HANA in 18446744073709551615ms"),
                shows("MAINT (via"),
                shows(" MAINT</td>") + shows(">MAINT</td>"),
                shows("<a class=lfsb href=\"#be/c\">via be/c</a>"),
                shows("<a class=lfsb href=\"#be/a\">via be/a</a>"),
            ],
            durations,
        )
    });
    let a = ours.1[0].as_ref().expect("server a's row");
    assert_eq!(a[1..3], ["HANA".to_string(), "18446744073709551615".into()]);
    assert_eq!(ours.3, [1, 0, 2, 1, 1], "{ours:?}");
    let untimed = "haproxy_server_check_duration_seconds{proxy=\"be\",server=\"a\"} -0.001000";
    assert_eq!(
        ours.4,
        [untimed],
        "only checked results, the untimed one at -1 ms"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// HTTP fetches in a TCP frontend's content rules read the request head the stream starts
/// with, as HAProxy 2.6 parses its raw buffer: the rules wait while the head is not whole
/// (a rule on the path decides once it is), and a whole head that is not HTTP decides at
/// once; `use_backend` reads it too.
#[test]
fn tcp_content_rules_read_http_heads_like_haproxy() {
    let test = "tcp_content_rules_read_http_heads_like_haproxy";
    let (one, two) = (
        NamedServer::start("one", LO, Duration::from_millis(300)),
        NamedServer::start("two", LO, Duration::from_millis(300)),
    );
    let addr = front();
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}frontend ft\n  bind {addr}\n  tcp-request inspect-delay 3s\n\
         \x20 tcp-request content reject if {{ req.hdr(host) -m str bad.example }}\n\
         \x20 tcp-request content reject if {{ path /reject }}\n\
         \x20 tcp-request content reject if {{ method DELETE }}\n\
         \x20 tcp-request content accept if {{ req.len gt 0 }}\n\
         \x20 use_backend b2 if {{ path_beg /two }}\n  default_backend b1\n\
         backend b1\n  server s {}\nbackend b2\n  server s {}\n",
        one.addr, two.addr
    );
    let cases: [&[u8]; 9] = [
        b"GET / HTTP/1.1\r\nhost: bad.example\r\n\r\n",
        b"GET /reject HTTP/1.1\r\nhost: x\r\n\r\n",
        b"DELETE / HTTP/1.1\r\nhost: x\r\n\r\n",
        b"GET /two HTTP/1.1\r\nhost: x\r\n\r\n",
        b"hello\r\n\r\n",
        b"GET /reject HTTP/1.0\r\n\r\n",
        b"GET http://bad.example/reject HTTP/1.1\r\nhost: bad.example\r\n\r\n",
        b"GET /two?x HTTP/1.1\r\nHost: BAD.example\r\n\r\n",
        b"get /reject HTTP/1.1\r\nhost: x\r\n\r\n",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let mut seen: Vec<String> = cases
            .iter()
            .map(|c| send_and_read(addr, c, false))
            .collect();
        // A head in two parts: the path rule waits for the whole head, then rejects.
        seen.push(split_head(addr));
        seen
    });
    assert_eq!(
        ours,
        ["", "", "", "two", "one", "", "", "two", "", ""],
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// HAProxy's HTTP/1 parser gives up on a TCP stream's first bytes as soon as no request
/// could begin so (a binary protocol, an SSH banner): rules using HTTP fetches decide at
/// once instead of waiting out `inspect-delay` (20 s here, far beyond the clients' 5 s
/// read), while a partial HTTP head is still waited for.
#[test]
fn tcp_content_rules_give_up_on_non_http_at_once_like_haproxy() {
    let test = "tcp_content_rules_give_up_on_non_http_at_once_like_haproxy";
    let one = NamedServer::start("one", LO, Duration::from_millis(300));
    let addr = front();
    let config = format!(
        "defaults
  mode tcp
  timeout client 30s
  timeout server 2s
  timeout connect 1s
         frontend ft
  bind {addr}
  tcp-request inspect-delay 20s
           tcp-request content reject if {{ path /reject }}
           tcp-request content accept if {{ req.len gt 0 }}
  default_backend b1
         backend b1
  server s {}
",
        one.addr
    );
    let cases: [&[u8]; 5] = [
        b"\x00\x01\x02\x03binary",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"GET /\x01x",
        b"GET / HTTP/1.1\r\nbad header\r\n",
        b"GET /reject HTTP/1.1\r\nhost: x\r\n",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        std::thread::scope(|scope| {
            let seen: Vec<_> = cases
                .iter()
                .map(|c| scope.spawn(move || send_and_read(addr, c, false)))
                .collect();
            seen.into_iter()
                .map(|h| h.join().expect("a client thread"))
                .collect::<Vec<String>>()
        })
    });
    assert_eq!(ours, ["one", "one", "one", "one", ""], "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Sends a request head in two writes, 300 ms apart; the first line answered ("" when
/// the proxy closed instead).
fn split_head(addr: SocketAddr) -> String {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return "<refused>".into();
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = conn.write_all(b"GET /reject HTTP/1.1\r\nhost: x\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let _ = conn.write_all(b"\r\n");
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    line.trim().to_string()
}

/// `stick on req.payload_lv(...)`: a client keeps the server its length-value field
/// first went to (new keys taken in turn).
#[test]
fn payload_lv_sticks_like_haproxy() {
    let test = "payload_lv_sticks_like_haproxy";
    let hold = Duration::from_millis(200);
    let (s1, s2) = (
        NamedServer::start("s1", LO, hold),
        NamedServer::start("s2", LO, hold),
    );
    let addr = front();
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}frontend ft\n  bind {addr}\n  tcp-request inspect-delay 1s\n\
         \x20 tcp-request content accept if {{ req.payload_lv(0,1) -m found }}\n  default_backend bs\n\
         backend bs\n  stick-table type string len 8 size 10\n  stick on req.payload_lv(0,1)\n\
         \x20 server s1 {}\n  server s2 {}\n",
        s1.addr, s2.addr
    );
    let keys: [&[u8]; 8] = [
        b"\x01A", b"\x01A", b"\x01B", b"\x01B", b"\x01A", b"\x01C", b"\x01B", b"\x01A",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        (keys.iter())
            .map(|k| send_and_read(addr, k, false))
            .collect::<Vec<_>>()
    });
    assert_eq!([&ours[1], &ours[4], &ours[7]], [&ours[0]; 3], "{ours:?}");
    assert_eq!([&ours[3], &ours[6]], [&ours[2]; 2], "{ours:?}");
    assert_ne!(ours[0], ours[2], "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
