//! Replies rendered per request and unique ids, hapx-proxy next to HAProxy 2.6 on the same
//! configuration and requests, compared byte for byte:
//!
//! - `http-error` with `lf-string`, `lf-file` and `hdr` values (`%[req.hdr(host)]`, `%ci`,
//!   `%ID`, `%[status]`), sent for a `deny`, an `auth`, a backend without a server (the
//!   request still at hand) and a server that failed (502, 504: the request sent, its
//!   headers gone); `http-error ... errorfiles NAME`; `http-request return` with `lf-file`.
//! - `unique-id-format`: an absent sample writes nothing (not `-` as in a log line), spaces
//!   merge; a request the proxy answered itself (`deny`, `return`) gets its id made without
//!   its headers, as HAProxy makes it while logging.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, Syslog, TIMEOUTS, check_text, exchange, get, side_by_side,
};

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// The raw bytes answering `GET path` with `headers` (lines ending in CRLF), the client
/// asking to close: everything until the proxy closes.
fn raw(addr: SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connecting to the proxy");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = get(path, &format!("{headers}connection: close\r\n"));
    s.write_all(request.as_bytes()).expect("sending a request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn rendered_http_error_replies_match_haproxy() {
    let test = "rendered_http_error_replies_match_haproxy";
    let dir = temp_dir(test);
    let page = dir.join("429.lf");
    std::fs::write(&page, "slow down %[req.hdr(x-who)] at %[path]\n").expect("a page");
    let answer = dir.join("answer.lf");
    std::fs::write(&answer, "file for %[req.hdr(host)] id=%ID\n").expect("a page");
    let gone = dir.join("404.http");
    let gone_page = "HTTP/1.0 404 Not Found\r\ncontent-length: 5\r\n\r\ngone\n";
    std::fs::write(&gone, gone_page).expect("a page");
    let (addr, dead) = (front(), front());
    let (page, answer, gone) = (page.display(), answer.display(), gone.display());
    let config = format!(
        "http-errors site\n  errorfile 404 {gone}\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  unique-id-format %ci-%[req.hdr(x-who)]\n\
         \x20 http-error status 403 content-type text/plain lf-string \"host=%[req.hdr(host)] ci=%ci id=%ID st=%[status]\\n\" hdr x-host \"%[req.hdr(host)]\" hdr x-ci %ci\n\
         \x20 http-error status 429 content-type text/plain lf-file {page} hdr x-empty %[req.hdr(nope)]\n\
         \x20 http-error status 400 hdr x-who \"who=%[req.hdr(x-who)]\"\n\
         \x20 http-error status 401 content-type text/plain lf-string \"log in, %[req.hdr(x-who)]\" hdr x-who %[req.hdr(x-who)]\n\
         \x20 http-request auth realm Inside if {{ path /auth }}\n\
         \x20 http-error status 404 errorfiles site\n  http-request deny deny_status 404 if {{ path /gone }}\n\
         \x20 http-request deny if {{ path /deny }}\n  http-request deny deny_status 429 if {{ path /rate }}\n\
         \x20 http-request deny deny_status 400 if {{ path /bad }}\n\
         \x20 http-request return status 200 content-type text/plain lf-file {answer} hdr x-who %[req.hdr(x-who)] if {{ path /answer }}\n\
         \x20 default_backend dead\n\
         backend dead\n  retries 0\n\
         \x20 http-error status 503 content-type text/html lf-string \"<p>%[req.hdr(host)] is down (%ID)</p>\"\n\
         \x20 server s {dead}\n"
    );
    let paths = [
        "/deny", "/rate", "/bad", "/answer", "/down", "/auth", "/gone",
    ];
    let traffic = |addr| {
        let closing: Vec<_> = (paths.iter())
            .map(|p| text(&raw(addr, p, "x-who: me\r\n")))
            .collect();
        // Kept alive: the rendered reply frames itself, the connection goes on.
        let kept = exchange(addr, &[get("/deny", ""), get("/rate", "x-who: you\r\n")]);
        let kept: Vec<_> = (kept.iter())
            .map(|r| {
                r.as_ref()
                    .map(|r| (r.status, r.headers.clone(), r.body.clone()))
            })
            .collect();
        (closing, kept)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let (closing, kept) = &ours;
    assert_eq!(
        closing[0],
        "HTTP/1.1 403 Forbidden\r\nx-host: test.example\r\nx-ci: 127.0.0.1\r\ncontent-length: 39\r\n\
         content-type: text/plain\r\nconnection: close\r\n\r\nhost=test.example ci=127.0.0.1 id= st=\n"
    );
    assert!(
        closing[1].ends_with("\r\n\r\nslow down me at /rate\n") && !closing[1].contains("x-empty"),
        "lf-file rendered, an empty header left out: {:?}",
        closing[1]
    );
    assert!(
        closing[2]
            .starts_with("HTTP/1.1 400 Bad Request\r\nx-who: who=me\r\ncontent-length: 0\r\n"),
        "headers only: an empty body: {:?}",
        closing[2]
    );
    assert!(closing[3].ends_with("\r\n\r\nfile for test.example id=\n"));
    assert!(
        closing[4].ends_with("\r\n\r\n<p>test.example is down (127.0.0.1-me)</p>"),
        "the backend's reply, the unique id made: {:?}",
        closing[4]
    );
    assert_eq!(
        closing[5],
        "HTTP/1.1 401 Unauthorized\r\nx-who: me\r\ncontent-length: 10\r\ncontent-type: text/plain\r\n\
         www-authenticate: Basic realm=\"Inside\"\r\nconnection: close\r\n\r\nlog in, me",
        "auth's header after the reply's own"
    );
    assert_eq!(
        closing[6], gone_page,
        "`errorfiles NAME`: the section's page"
    );
    assert_eq!(kept.len(), 2, "the connection stays open: {kept:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn rendered_reply_messages_read_like_haproxys() {
    let test = "rendered_reply_messages_read_like_haproxys";
    let dir = temp_dir(test);
    let missing = dir.join("missing.lf");
    let bad = dir.join("bad.lf");
    std::fs::write(&bad, "a %[req.hdr(host) b").expect("a page");
    let site = dir.join("503.http");
    let page = "HTTP/1.0 503 Service Unavailable\r\ncontent-length: 5\r\n\r\ndown\n";
    std::fs::write(&site, page).expect("a page");
    let lines = [
        format!(
            "http-error status 503 content-type text/plain lf-file {}",
            missing.display()
        ),
        format!(
            "http-request return status 200 content-type text/plain lf-file {}",
            bad.display()
        ),
        "http-error status 503 lf-string x".into(),
        "http-error status 503 content-type text/plain lf-string %[req.len]".into(),
        "http-error status 503 content-type text/plain hdr x %[res.hdr(y)]".into(),
        "http-error status 503 content-type text/plain errorfiles site hdr x y".into(),
        "http-error status 404 errorfiles site".into(),
        "http-error status 503 errorfiles nope".into(),
        "http-error status 503 content-type text/plain default-errorfiles".into(),
    ];
    for (case, line) in lines.iter().enumerate() {
        let text = format!(
            "http-errors site\n  errorfile 503 {site}\n\
             defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:{}\n  {line}\n",
            free_port(),
            site = site.display(),
        );
        let [ours, theirs] = check_text(&dir, case, &text);
        assert_eq!(ours, theirs, "{line}");
    }
}

/// `unique-id-format` through both, forwarded (`unique-id-header`) and logged (`%ID`).
fn unique_ids(test: &str, format: &str, paths: &[&str]) -> (Vec<Option<String>>, Vec<String>) {
    let echo = EchoServer::start("echo");
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\ndefaults\n  log global\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  unique-id-format \"{format}\"\n  unique-id-header x-unique\n\
         \x20 log-format \"%{{+Q}}r id=%ID\"\n\
         \x20 http-request deny if {{ path /deny }}\n\
         \x20 http-request return status 200 content-type text/plain string ok if {{ path /answer }}\n\
         \x20 http-request set-header x-set set-by-rule\n\
         \x20 default_backend b\n\
         backend b\n  server s {}\n",
        echo.addr,
        log = syslog.addr,
    );
    let traffic = |addr| {
        let forwarded = (paths.iter())
            .map(|p| {
                let r = exchange(addr, &[get(p, "x-id: abc\r\n")]);
                let r = r[0].as_ref().expect("a response");
                r.forwarded("x-unique").map(str::to_string)
            })
            .collect::<Vec<_>>();
        (forwarded, syslog.lines(paths.len()))
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
    ours
}

#[test]
fn unique_id_writes_nothing_for_an_absent_sample_like_haproxy() {
    let (forwarded, logged) = unique_ids(
        "unique_id_writes_nothing_for_an_absent_sample_like_haproxy",
        "%ci-%[req.hdr(x-id)]-%[req.hdr(nope)]-%{+Q}[req.hdr(nope)]-%[req.hdr(x-set)] a  b",
        &["/one?q=1"],
    );
    let id = "127.0.0.1-abc---set-by-rule a b";
    assert_eq!(forwarded, [Some(id.to_string())]);
    assert_eq!(logged, [format!("\"GET /one?q=1 HTTP/1.1\" id={id}")]);
}

#[test]
fn unique_id_of_an_answered_request_has_no_headers_like_haproxy() {
    let (forwarded, logged) = unique_ids(
        "unique_id_of_an_answered_request_has_no_headers_like_haproxy",
        "%ci-%[req.hdr(x-id)]-%[path]-%HU-%[url]-%[src]",
        &["/deny", "/answer", "/sent"],
    );
    assert_eq!(
        forwarded,
        [
            None,
            None,
            Some("127.0.0.1-abc-/sent-/sent-/sent-127.0.0.1".into())
        ]
    );
    assert_eq!(
        logged,
        [
            "\"GET /deny HTTP/1.1\" id=127.0.0.1---/deny--127.0.0.1",
            "\"GET /answer HTTP/1.1\" id=127.0.0.1---/answer--127.0.0.1",
            "\"GET /sent HTTP/1.1\" id=127.0.0.1-abc-/sent-/sent-/sent-127.0.0.1",
        ]
    );
}

/// A server that reads each request and never answers: it closes at once, or with `hold`
/// keeps the connection open a while.
fn failing_server(hold: bool) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                if hold {
                    std::thread::sleep(Duration::from_secs(3));
                }
            });
        }
    });
    addr
}

#[test]
fn rendered_http_error_replies_for_server_failures_match_haproxy() {
    let test = "rendered_http_error_replies_for_server_failures_match_haproxy";
    let (closing, silent) = (failing_server(false), failing_server(true));
    let addr = front();
    let reply = |code| {
        format!(
            "  http-error status {code} content-type text/plain lf-string \"{code} for %[req.hdr(host)]%[path]\" hdr x-who %[req.hdr(x-who)]\n"
        )
    };
    let config = format!(
        "defaults\n  mode http\n  timeout client 10s\n  timeout connect 1s\n  timeout server 300ms\n\
         frontend fe\n  bind {addr}\n{}  use_backend silent if {{ path /silent }}\n  default_backend closing\n\
         backend closing\n{}  retries 0\n  server s {closing}\n\
         backend silent\n  server s {silent}\n",
        reply(504),
        reply(502),
    );
    let traffic = |addr| ["/closing", "/silent"].map(|p| text(&raw(addr, p, "x-who: me\r\n")));
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    // As in HAProxy, the request went to the server: its headers are gone, and the
    // header rendered empty is left out.
    assert!(
        ours[0].starts_with("HTTP/1.1 502 ")
            && !ours[0].contains("x-who")
            && ours[0].ends_with("\r\n\r\n502 for "),
        "the backend's reply: {:?}",
        ours[0]
    );
    assert!(
        ours[1].starts_with("HTTP/1.1 504 ") && ours[1].ends_with("\r\n\r\n504 for "),
        "the frontend's reply: {:?}",
        ours[1]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
