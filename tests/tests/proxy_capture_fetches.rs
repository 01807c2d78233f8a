//! The `capture.*` sample fetches beside HAProxy 2.6: `capture.req.method`,
//! `capture.req.uri`, `capture.req.ver`, `capture.res.ver`, `capture.req.hdr(N)` and
//! `capture.res.hdr(N)` in a `log-format`. They read what HAProxy keeps of a transaction
//! for its log line: the request line as the client sent it (before any rule rewrote it),
//! the capture slots (`capture request header`, `declare capture` filled by
//! `http-request capture ... id N`), the messages' versions.
//!
//! Both proxies run the same configuration on the same requests; their log lines must be
//! the same. The configuration checks compare the messages of misplaced or misused fetches.
//! (A negative slot, `capture.req.hdr(-1)`, is left out: HAProxy 2.6.12 reads before its
//! slots and crashes; hapx finds nothing there.)

use std::net::{Ipv4Addr, SocketAddr};

use hapx_tests::proxy::free_port;
use hapx_tests::proxy_rules::{EchoServer, Syslog, TIMEOUTS, check_alike, exchange, side_by_side};

/// The next `count` access log lines (those starting with `log:`), others skipped.
fn access_lines(log: &Syslog, count: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < count {
        let Some(line) = log.lines(1).pop() else {
            break;
        };
        if let Some(line) = line.strip_prefix("log: ") {
            lines.push(line.to_string());
        }
    }
    lines
}

/// The requests sent, each on a connection of its own: an origin-form URI with a query, an
/// absolute URI, one without a path, an HTTP/1.0 request, one the proxy denies, one rewritten by the rules.
const REQUESTS: [&str; 6] = [
    "GET /a/b?x=1 HTTP/1.1\r\nhost: one.example\r\nx-id: first\r\nconnection: close\r\n\r\n",
    "POST http://abs.example/p?q HTTP/1.1\r\nhost: abs.example\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    "GET http://no-path.example HTTP/1.1\r\nhost: no-path.example\r\nconnection: close\r\n\r\n",
    "GET /old HTTP/1.0\r\nhost: a-host-name-longer-than-twenty\r\n\r\n",
    "GET /deny HTTP/1.1\r\nhost: denied\r\nx-id: second-is-cut\r\nconnection: close\r\n\r\n",
    "PUT /rewrite/me HTTP/1.1\r\nhost: rw\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
];

#[test]
fn capture_fetches_in_log_format_show_what_is_kept_for_the_log() {
    let test = "capture_fetches_in_log_format_show_what_is_kept_for_the_log";
    let server = EchoServer::start_with("s1", "x-served: yes\r\n");
    let log = Syslog::bind();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let format = "log: m=[%[capture.req.method]] u=[%[capture.req.uri]] \
                  v=[%[capture.req.ver]] rv=[%[capture.res.ver]] h0=[%[capture.req.hdr(0)]] \
                  h1=[%[capture.req.hdr(1)]] h9=[%[capture.req.hdr(9)]] \
                  r0=[%[capture.res.hdr(0)]] r1=[%[capture.res.hdr(1)]] \
                  low=[%[capture.req.uri,lower]] st=%ST";
    let config = format!(
        "global\n  log {} local0 info\ndefaults\n  mode http\n  log global\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  log-format \"{format}\"\n\
         \x20 capture request header host len 20\n\
         \x20 declare capture request len 8\n\
         \x20 capture response header x-served len 2\n\
         \x20 declare capture response len 4\n\
         \x20 http-request capture req.hdr(x-id) id 1\n\
         \x20 http-request deny if {{ path /deny }}\n\
         \x20 http-request set-path /NEW%[path] if {{ path_beg /rewrite }}\n\
         \x20 http-request set-method GET if {{ path_beg /NEW }}\n\
         \x20 http-response capture res.hdr(content-length) id 1\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {}\n",
        log.addr, server.addr
    );
    let traffic = |front: SocketAddr| {
        let statuses: Vec<u16> = REQUESTS
            .iter()
            .map(|r| {
                let got = exchange(front, &[r.to_string()]);
                got.first().cloned().flatten().map_or(0, |r| r.status)
            })
            .collect();
        (statuses, access_lines(&log, REQUESTS.len()))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, [200, 200, 200, 200, 403, 200], "statuses");
    assert_eq!(ours.1.len(), REQUESTS.len(), "{:#?}", ours.1);
    // What HAProxy does not decide: the original line, not the rewritten one.
    assert!(
        ours.1[5].starts_with("m=[PUT] u=[/rewrite/me]"),
        "{}",
        ours.1[4]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `%[FETCH]` in frontend `fe`'s line `line`, checked by both binaries: the same exit code
/// and messages.
fn check_line(test: &str, line: &str) -> (i32, Vec<String>) {
    // Only checked (`-c`): nothing listens or connects.
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:8080\n\
         \x20 declare capture request len 8\n  declare capture response len 8\n  {line}\n\
         \x20 default_backend be\nbackend be\n  server s1 127.0.0.1:8081\n"
    );
    check_alike(test, &text)
}

#[test]
fn capture_fetches_are_checked_as_haproxy_checks_them() {
    let test = "capture_fetches_are_checked_as_haproxy_checks_them";
    let accepted = check_line(
        test,
        "log-format \"%[capture.req.uri] %[capture.res.hdr(0)] %[capture.res.ver]\"",
    );
    assert_eq!(accepted.0, 0, "{:?}", accepted.1);
    // The response's slots are not there yet in a request's rules.
    let early = check_line(test, "http-request set-header x-a %[capture.res.hdr(0)]");
    assert_ne!(early.0, 0, "{:?}", early.1);
    assert!(
        early.1.iter().any(|m| m.contains("needs 'HTTP response'")),
        "{:?}",
        early.1
    );
    for bad in ["capture.req.hdr", "capture.res.hdr(x)"] {
        let refused = check_line(test, &format!("log-format \"%[{bad}]\""));
        assert_ne!(refused.0, 0, "{bad}: {:?}", refused.1);
    }
}
