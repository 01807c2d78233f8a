//! Tracked stick counters counting HTTP requests, side by side with HAProxy 2.6: a
//! `tcp-request content track-scN` (in an HTTP frontend, in a TCP frontend whose HTTP backend
//! turns the connection to HTTP, in the backend) counts each request in `http_req_cnt` and
//! `http_req_rate` as `tcp-request connection|session` and `http-request` trackings do; a
//! request the content rules refuse is not counted. HTTP errors (`http_err_cnt`): a server's
//! 4xx and a `deny` counted before the response rules, `auth` after, `return` never. And the
//! order of HAProxy's warnings for
//! a TCP frontend with a log format but no log address and HTTP rules.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, check_alike, read_response, side_by_side};

fn front() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A frontend in `mode` whose backend `be` (HTTP, its own table) shows the counters of the
/// entry slot 0 tracks in every response (`frontend_var:req_cnt/req_rate/conn_cnt`, the
/// first as the frontend's `http-request` rules saw it); `frontend` and `backend` lines
/// added to each.
fn config(mode: &str, frontend: &str, backend: &str, server: SocketAddr, socket: &str) -> String {
    format!(
        "global\n  stats socket {socket} level admin\n\
         defaults\n  timeout client 6s\n  timeout server 6s\n  timeout connect 1s\n\
         frontend f\n  mode {mode}\n  bind {{FRONT}}\n  tcp-request inspect-delay 2s\n{frontend}\
         \x20 tcp-request content accept if {{ req.len gt 0 }}\n\
         \x20 http-request set-var(txn.n) sc0_http_req_cnt\n  default_backend be\n\
         backend be\n  mode http\n\
         \x20 stick-table type ip size 10 store http_req_cnt,http_req_rate(10s),conn_cnt\n{backend}\
         \x20 http-after-response set-header x-v \"%[var(txn.n)]:%[sc0_http_req_cnt]/%[sc0_http_req_rate]/%[sc0_conn_cnt]\"\n\
         \x20 server s {server}\n"
    )
}

/// The `x-v` header of each response to `paths`, requested one after the other on one
/// kept-alive connection ("-" for a response without it, nothing more once it closed).
fn counters_seen(addr: SocketAddr, paths: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return seen;
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().expect("a clone of the stream"));
    for path in paths {
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        if conn.write_all(request.as_bytes()).is_err() {
            break;
        }
        let Some(response) = read_response(&mut reader) else {
            break;
        };
        seen.push(response.header("x-v").unwrap_or("-").to_string());
    }
    seen
}

/// Where `track-sc0 src table be` goes, and what three requests on one connection show.
#[rustfmt::skip]
const CASES: &[(&str, &str, &str, [&str; 3])] = &[
    // An HTTP frontend: every tracking counts each request once.
    ("http", "tcp-request content", "", ["1:1/1/1", "2:2/2/2", "3:3/3/3"]),
    ("http", "tcp-request connection", "", ["1:1/1/1", "2:2/2/1", "3:3/3/1"]),
    ("http", "tcp-request session", "", ["1:1/1/1", "2:2/2/1", "3:3/3/1"]),
    ("http", "http-request", "", ["1:1/1/1", "2:2/2/2", "3:3/3/3"]),
    ("http", "", "tcp-request content", [":1/1/1", ":2/2/2", ":3/3/3"]),
    ("http", "", "http-request", [":1/1/1", ":2/2/2", ":3/3/3"]),
    // A TCP frontend turned to HTTP by its backend: the same, but for its `http-request`
    // tracking on the first request, which HAProxy's stream makes in its backend already
    // and counts once more with the backend's trackings.
    ("tcp", "tcp-request content", "", ["1:1/1/1", "2:2/2/2", "3:3/3/3"]),
    ("tcp", "tcp-request connection", "", ["1:1/1/1", "2:2/2/1", "3:3/3/1"]),
    ("tcp", "tcp-request session", "", ["1:1/1/1", "2:2/2/1", "3:3/3/1"]),
    ("tcp", "http-request", "", ["1:2/2/1", "3:3/3/2", "4:4/4/3"]),
    ("tcp", "", "tcp-request content", [":1/1/1", ":2/2/2", ":3/3/3"]),
    ("tcp", "", "http-request", [":1/1/1", ":2/2/2", ":3/3/3"]),
];

#[test]
fn every_tracking_counts_kept_alive_requests_like_haproxy() {
    let test = "every_tracking_counts_kept_alive_requests_like_haproxy";
    let server = EchoServer::start("s");
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    for (mode, in_frontend, in_backend, expected) in CASES {
        let track = |place: &str| match place {
            "" => String::new(),
            place => format!("  {place} track-sc0 src table be\n"),
        };
        let addr = front();
        let text = config(
            mode,
            &track(in_frontend),
            &track(in_backend),
            server.addr,
            &socket.display().to_string(),
        )
        .replace("{FRONT}", &addr.to_string());
        let case = format!("mode {mode}, frontend '{in_frontend}', backend '{in_backend}'");
        let (ours, theirs) = side_by_side(test, &text, addr, |a| {
            counters_seen(a, &["/a", "/bb", "/ccc"])
        });
        assert_eq!(ours, expected, "hapx, {case}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "hapx, then HAProxy, {case}");
        }
    }
}

#[test]
fn a_request_the_content_rules_refuse_is_not_counted() {
    let test = "a_request_the_content_rules_refuse_is_not_counted";
    let server = EchoServer::start("s");
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    for mode in ["http", "tcp"] {
        let addr = front();
        let frontend = "  tcp-request session track-sc0 src table be\n\
                        \x20 tcp-request content reject if { path /refused }\n";
        let text = config(
            mode,
            frontend,
            "",
            server.addr,
            &socket.display().to_string(),
        )
        .replace("{FRONT}", &addr.to_string());
        let traffic = |a: SocketAddr| {
            let seen = counters_seen(a, &["/a", "/refused"]);
            let table = cli(&socket, "show table be");
            let entry = table.lines().find(|l| l.contains("key=127.0.0.1"));
            let counts = entry.map(|l| {
                let words = l.split(' ').filter(|w| w.starts_with("http_req_cnt="));
                words.collect::<Vec<_>>().join(" ")
            });
            (seen, counts)
        };
        let (ours, theirs) = side_by_side(test, &text, addr, traffic);
        let expected = (
            vec!["1:1/1/1".to_string()],
            Some("http_req_cnt=1".to_string()),
        );
        assert_eq!(ours, expected, "hapx, mode {mode}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "hapx, then HAProxy, mode {mode}");
        }
    }
}

#[test]
fn http_errors_count_where_haproxy_counts_them() {
    let test = "http_errors_count_where_haproxy_counts_them";
    let (addr, origin) = (front(), front());
    // The server answers 404 to /nf; `deny` (whatever its status) counts an error before its
    // page goes through `http-after-response`, `auth` after, `return` none.
    let text = format!(
        "defaults\n  mode http\n  timeout client 6s\n  timeout server 6s\n  timeout connect 1s\n\
         frontend f\n  bind {addr}\n  tcp-request connection track-sc0 src table be\n  default_backend be\n\
         backend be\n  stick-table type ip size 10 store http_req_cnt,http_err_cnt,http_err_rate(10s)\n\
         \x20 http-request deny deny_status 500 if {{ path /denied }}\n\
         \x20 http-request return status 404 if {{ path /returned }}\n\
         \x20 http-request auth if {{ path /auth }}\n\
         \x20 http-after-response set-header x-v \"%[sc0_http_req_cnt]/%[sc0_http_err_cnt]/%[sc0_http_err_rate]\"\n\
         \x20 server s {origin}\n\
         listen origin\n  bind {origin}\n  http-request return status 404 if {{ path /nf }}\n\
         \x20 http-request return status 200\n"
    );
    let paths = ["/a", "/denied", "/nf", "/returned", "/auth", "/c"];
    let (ours, theirs) = side_by_side(test, &text, addr, |a| counters_seen(a, &paths));
    let expected = ["1/0/0", "2/1/1", "3/2/2", "4/2/2", "5/2/2", "6/3/3"];
    assert_eq!(ours, expected, "hapx");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx, then HAProxy");
    }
}

#[test]
fn a_tcp_frontend_is_warned_about_its_log_format_before_its_http_rules() {
    let test = "a_tcp_frontend_is_warned_about_its_log_format_before_its_http_rules";
    let text = "defaults\n  timeout client 6s\n  timeout server 6s\n  timeout connect 1s\n\
                frontend f1\n  mode tcp\n  bind 127.0.0.1:1\n  log-format \"%ci\"\n\
                \x20 monitor-uri /m\n  option forwardfor\n  stats enable\n\
                \x20 http-request set-header x-a 1\n  http-response set-header x-a 1\n\
                \x20 redirect location /x if { path /y }\n  default_backend be\n\
                backend be\n  mode http\n  server s1 127.0.0.1:1\n";
    let (code, messages) = check_alike(test, text);
    assert_eq!(code, 0);
    assert_eq!(
        messages,
        [
            "WARNING: monitor-uri will be ignored for frontend 'f1' (needs 'mode http').",
            "WARNING: log format ignored for frontend 'f1' since it has no log address.",
            "WARNING: 'stats' statement ignored for frontend 'f1' as it requires HTTP mode.",
            "WARNING: 'http-request' rules ignored for frontend 'f1' as they require HTTP mode.",
            "WARNING: 'http-response' rules ignored for frontend 'f1' as they require HTTP mode.",
            "WARNING: 'redirect' rules ignored for frontend 'f1' as they require HTTP mode.",
            "WARNING: 'option forwardfor' ignored for frontend 'f1' as it requires HTTP mode.",
        ]
    );
}
