//! Stick-table byte counters side by side with HAProxy 2.6: a tracked entry's `bytes_in_cnt`,
//! `bytes_out_cnt` and their rates count every byte of the tracked stream or session,
//! the requests the proxy answers itself (deny, 429s, `return`, redirects, error pages, the
//! stats page) as those a server answers, following the frontend's figures rather than
//! the backend's. HAProxy adds a stream's bytes when it ends: after each request of a
//! kept-alive connection, at the end of a TCP session.
//!
//! Each test runs the same configuration and traffic through hapx-proxy and then HAProxy
//! and compares the `show table` lines (entry pointers and expiries masked), waiting on
//! states (the connections closed, the entry's counters moved), never on time.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{
    cli, free_port, kept_alive_client, no_connection_open, read_response, stat_row, temp_dir,
};
use hapx_tests::proxy_rules::{EchoServer, TIMEOUTS, side_by_side};
use hapx_tests::proxy_stick::masked;
use hapx_tests::wait::eventually;

/// The stored data of every table here: the byte counts and rates with the request counts
/// they come with.
const STORE: &str = "http_req_cnt,http_req_rate(10s),http_err_cnt,conn_cnt,\
                     bytes_in_cnt,bytes_in_rate(10s),bytes_out_cnt,bytes_out_rate(10s)";

fn front() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A configuration with an admin stats socket at `socket`: frontend `f` on `front` with
/// `lines`, default backend `b` (server `server`), table `st` and `sections`.
fn config(
    socket: &Path,
    mode: &str,
    front: SocketAddr,
    lines: &str,
    server: SocketAddr,
    sections: &str,
) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode {mode}\n{TIMEOUTS}\
         frontend f\n  bind {front}\n{lines}  default_backend b\n\
         backend st\n  stick-table type ip size 1k expire 30s store {STORE}\n\
         backend b\n  server s {server}\n{sections}",
        socket.display()
    )
}

/// The entry lines of `show table st`, pointers and expiries masked.
fn table(socket: &Path) -> Vec<String> {
    masked(&cli(socket, "show table st"), 0..=30_000)
        .into_iter()
        .filter(|l| l.contains("key="))
        .collect()
}

/// The value of `name=` in an entry line.
fn stored(line: &str, name: &str) -> Option<u64> {
    line.split(' ')
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// The frontend's `bin` and `bout` in `show stat`.
fn frontend_bytes(socket: &Path) -> [u64; 2] {
    let row = stat_row(&cli(socket, "show stat"), "f", "FRONTEND").expect("the frontend's row");
    ["bin", "bout"].map(|c| row[c].parse().expect("a byte count"))
}

/// Sends `request` on a connection of its own and reads its response; its status.
fn one_request(addr: SocketAddr, request: &str) -> String {
    let mut conn = kept_alive_client(addr);
    conn.get_mut()
        .write_all(request.as_bytes())
        .expect("sending the request");
    read_response(&mut conn).0
}

/// What a proxy's table showed once every connection closed, with its frontend's bytes.
#[derive(Debug, PartialEq, Eq)]
struct Settled {
    entries: Vec<String>,
    frontend: [u64; 2],
}

fn settled(socket: &Path) -> Settled {
    assert!(no_connection_open(socket), "a connection stayed open");
    Settled {
        entries: table(socket),
        frontend: frontend_bytes(socket),
    }
}

/// The tracked entry's byte counts are the frontend's: every byte of its streams.
fn follows_the_frontend(seen: &Settled) {
    let [entry] = &seen.entries[..] else {
        panic!("one entry expected: {seen:?}");
    };
    let counted = ["bytes_in_cnt", "bytes_out_cnt"].map(|n| stored(entry, n));
    assert_eq!(counted, seen.frontend.map(Some), "{seen:?}");
}

/// The review's case: 3 requests served, then 3 refused with 429 by `http-request deny`;
/// HAProxy's entry counts 624 bytes in and 1380 out where its backend counts 312 and 705.
#[test]
fn requests_denied_with_429_count_in_the_tracked_bytes() {
    let server = EchoServer::start("s");
    let dir = temp_dir("stick-bytes-429");
    let socket = dir.join("admin.sock");
    let front = front();
    let lines = "  http-request track-sc0 src table st\n\
                 \x20 http-request deny deny_status 429 if { sc_http_req_rate(0) gt 3 }\n";
    let config = config(&socket, "http", front, lines, server.addr, "");
    let request = "GET /averyveryverylongpath0 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (ours, theirs) = side_by_side("stick-bytes-429", &config, front, |addr| {
        let statuses: Vec<String> = (0..6).map(|_| one_request(addr, request)).collect();
        (statuses, settled(&socket))
    });
    assert_eq!(
        ours.0[2..4],
        ["HTTP/1.1 200 OK", "HTTP/1.1 429 Too Many Requests"]
    );
    follows_the_frontend(&ours.1);
    if let Some(theirs) = theirs {
        follows_the_frontend(&theirs.1);
        assert_eq!(ours, theirs);
    }
}

/// The proxy's own answers (a redirect, a `return`, a 403, a 503 for a POST no server
/// takes) count in the tracked bytes as the frontend counts them, a stream's body too; the
/// stats page as well (its size differs from HAProxy's, so it is compared with each
/// proxy's own frontend only).
#[test]
fn the_proxys_own_answers_count_in_the_tracked_bytes() {
    let server = EchoServer::start("s");
    let dir = temp_dir("stick-bytes-own");
    let socket = dir.join("admin.sock");
    let front = front();
    let lines = "  http-request track-sc0 src table st\n\
                 \x20 http-request redirect location /elsewhere if { path /redirect }\n\
                 \x20 http-request return status 200 content-type text/plain string hello \
                 if { path /return }\n\
                 \x20 http-request deny if { path /deny }\n\
                 \x20 stats enable\n  stats uri /stats\n\
                 \x20 use_backend gone if { path /gone }\n";
    let gone = "backend gone\n  server d 127.0.0.1:1 disabled\n";
    let config = config(&socket, "http", front, lines, server.addr, gone);
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let post = "POST /gone HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
                content-length: 11\r\n\r\nhello world";
    let (ours, theirs) = side_by_side("stick-bytes-own", &config, front, |addr| {
        let statuses: Vec<String> = ["/redirect", "/return", "/deny", "/gone", "/"]
            .into_iter()
            .map(|p| one_request(addr, &get(p)))
            .chain([one_request(addr, post)])
            .collect();
        let answers = settled(&socket);
        one_request(addr, &get("/stats;csv"));
        (statuses, answers, settled(&socket))
    });
    let statuses: Vec<&str> = ours.0.iter().map(|s| &s[9..12]).collect();
    assert_eq!(statuses, ["302", "200", "403", "503", "200", "503"]);
    follows_the_frontend(&ours.1);
    follows_the_frontend(&ours.2);
    if let Some(theirs) = theirs {
        follows_the_frontend(&theirs.2);
        assert_eq!((&ours.0, &ours.1), (&theirs.0, &theirs.1));
    }
}

/// A kept-alive connection: each request's bytes (a 429 as a 200) are added when its
/// stream ends, on a stream's tracking (`http-request`, `tcp-request content`) as on the
/// session's (`tcp-request connection`), seen between the requests of one connection.
#[test]
fn a_kept_alive_connection_adds_each_requests_bytes_when_it_ends() {
    let server = EchoServer::start("s");
    let deny = "  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 2 }\n";
    for tracking in [
        "http-request track-sc0 src table st",
        "tcp-request content track-sc0 src table st",
        "tcp-request connection track-sc0 src table st",
    ] {
        let test = format!("stick-bytes-kept ({tracking})");
        let dir = temp_dir("stick-bytes-kept");
        let socket = dir.join("admin.sock");
        let front = front();
        let lines = format!("  {tracking}\n{deny}");
        let config = config(&socket, "http", front, &lines, server.addr, "");
        // The session's tracking holds the entry while the connection lasts, a stream's
        // lets it go when the stream ends (hapx a moment after counting its bytes).
        let in_use = if tracking.starts_with("tcp-request connection") {
            "use=1 "
        } else {
            "use=0 "
        };
        let (ours, theirs) = side_by_side(&test, &config, front, |addr| {
            let mut conn = kept_alive_client(addr);
            let mut after_each = Vec::new();
            let mut out_before = 0;
            for _ in 0..4 {
                let request = "GET /averyveryverylongpath0 HTTP/1.1\r\nhost: x\r\n\r\n";
                conn.get_mut()
                    .write_all(request.as_bytes())
                    .expect("sending");
                let (status, _) = read_response(&mut conn);
                // The stream ends after its response: its bytes come then.
                let mut entries = Vec::new();
                let counted = eventually(Duration::from_secs(10), || {
                    entries = table(&socket);
                    let out = entries.first().and_then(|e| stored(e, "bytes_out_cnt"));
                    out.is_some_and(|out| out > out_before)
                        && entries.first().is_some_and(|e| e.contains(in_use))
                });
                assert!(
                    counted,
                    "{test}: the request's bytes never came: {entries:?}"
                );
                out_before = entries
                    .first()
                    .and_then(|e| stored(e, "bytes_out_cnt"))
                    .unwrap_or(0);
                after_each.push((status, entries));
            }
            drop(conn);
            (after_each, settled(&socket))
        });
        assert_eq!(ours.0[3].0, "HTTP/1.1 429 Too Many Requests", "{test}");
        follows_the_frontend(&ours.1);
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "{test}");
        }
    }
}

/// A TCP session tracked by `tcp-request connection`: its bytes both ways count once it
/// ends, none while it is open.
#[test]
fn a_tracked_tcp_session_counts_its_bytes_when_it_ends() {
    let server = EchoServer::start("s");
    let dir = temp_dir("stick-bytes-tcp");
    let socket = dir.join("admin.sock");
    let front = front();
    let lines = "  tcp-request connection track-sc0 src table st\n";
    let config = config(&socket, "tcp", front, lines, server.addr, "");
    let (ours, theirs) = side_by_side("stick-bytes-tcp", &config, front, |addr| {
        let mut conn = kept_alive_client(addr);
        let mut open = Vec::new();
        for _ in 0..2 {
            let request = "GET /a HTTP/1.1\r\nhost: x\r\n\r\n";
            conn.get_mut()
                .write_all(request.as_bytes())
                .expect("sending");
            assert_eq!(read_response(&mut conn).0, "HTTP/1.1 200 OK");
            open.push(table(&socket));
        }
        drop(conn);
        let ended = settled(&socket);
        (open, ended)
    });
    for entries in &ours.0 {
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(stored(&entries[0], "bytes_in_cnt"), Some(0), "{entries:?}");
    }
    follows_the_frontend(&ours.1);
    assert!(ours.1.frontend[0] > 0, "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A `PRI` request HAProxy's HTTP/1 parser takes for a head and its analysis refuses: the
/// session's entry counts it as a request (no HTTP error) with its bytes and its 400's.
#[test]
fn a_refused_pri_request_counts_in_the_sessions_entry() {
    let server = EchoServer::start("s");
    let dir = temp_dir("stick-bytes-pri");
    let socket = dir.join("admin.sock");
    let front = front();
    let lines = "  tcp-request connection track-sc0 src table st\n";
    let config = config(&socket, "http", front, lines, server.addr, "");
    let (ours, theirs) = side_by_side("stick-bytes-pri", &config, front, |addr| {
        let status = one_request(addr, "PRI / HTTP/1.1\r\nhost: x\r\n\r\n");
        (status, settled(&socket))
    });
    assert_eq!(ours.0, "HTTP/1.1 400 Bad request");
    let entry = &ours.1.entries[0];
    let counts = ["http_req_cnt", "http_err_cnt"].map(|n| stored(entry, n));
    assert_eq!(counts, [Some(1), Some(0)], "{ours:?}");
    follows_the_frontend(&ours.1);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
