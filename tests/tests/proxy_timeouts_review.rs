//! Which timeout HAProxy 2.6 applies where two could, side by side with hapx-proxy:
//!
//! - a kept-alive connection whose next request has begun to arrive gets `timeout
//!   http-request` (else `timeout client`), counted from the start of its idle wait, and no
//!   longer `timeout http-keep-alive`, which only covers a connection with nothing of its next
//!   request;
//! - `http-request tarpit` without `timeout tarpit` holds a request for `timeout connect` in a
//!   proxy that can be a backend (`listen`), and not at all in a `frontend`;
//! - a TCP client that sent nothing gets `timeout client` while its server's connection
//!   attempts are retried (`cC`);
//! - a connection with no server to go to is the backend's connection error (`econ`), and
//!   an attempt its client no longer waits for is neither made nor counted (`stot`).
//!
//! Timers are compared by the order in which connections end, each against one whose
//! timeout is known to fall between what HAProxy does and what it does not do, never by
//! how long one took.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{
    cli, free_port, kept_alive_client, read_response, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::{EchoServer, HttplogLine, Syslog, get, side_by_side};

/// What a client saw on its connection after its first response: the status line of what
/// came next (empty when the connection just closed), and when it ended.
#[derive(Debug)]
struct Ending {
    answer: String,
    at: Instant,
}

/// Runs one request on a kept-alive connection to `front`, then sends `next` (maybe
/// nothing, maybe the start of a head) and waits for the connection's end.
fn keep_alive_then(front: SocketAddr, next: &'static str) -> Ending {
    let mut conn = kept_alive_client(front);
    conn.get_mut()
        .write_all(get("/a", "").as_bytes())
        .expect("sending the first request");
    let (status, _) = read_response(&mut conn);
    assert!(status.contains(" 200 "), "first response: {status:?}");
    conn.get_mut()
        .write_all(next.as_bytes())
        .expect("sending the start of the next request");
    let mut answer = String::new();
    let _ = conn.read_line(&mut answer);
    // To the connection's end: a 408 is followed by the close.
    let _ = conn.read_to_end(&mut Vec::new());
    Ending {
        answer: answer.trim_end().to_string(),
        at: Instant::now(),
    }
}

/// What one proxy did with the kept-alive connections of [`next_request_timeouts`].
#[derive(Debug, PartialEq, Eq)]
struct KeptAlive {
    /// The answers to the partial heads, on the frontend with `timeout http-request` and on
    /// the one with `timeout client` only.
    answers: [String; 2],
    /// The log lines of those frontends' partial heads.
    logged: [Vec<HttplogLine>; 2],
    /// Whether the reference's idle connection (closed by its 1 s `timeout
    /// http-keep-alive`) ended before each partial head was answered.
    reference_first: [bool; 2],
    /// The reference's idle connection's answer (none: it just closes).
    reference_answer: String,
}

#[test]
fn next_request_begun_gets_http_request_timeout_not_keep_alive() {
    let server = EchoServer::start("s");
    let (request_port, client_port, reference_port) = (free_port(), free_port(), free_port());
    let (request_log, client_log) = (Syslog::bind(), Syslog::bind());
    // `p`: the usual production shape; `c`: `timeout client` stands in for http-request.
    // Both give the partial head 2 s from the idle wait's start, and 300 ms with nothing of
    // it; `r` closes its idle connection at 1 s, between the two.
    let config = format!(
        "defaults\n  mode http\n  option httplog\n  timeout connect 1s\n  timeout server 5s\n\
         frontend p\n  bind 127.0.0.1:{request_port}\n  log {} local0\n  timeout client 10s\n  timeout http-request 2s\n  timeout http-keep-alive 300ms\n  default_backend be\n\
         frontend c\n  bind 127.0.0.1:{client_port}\n  log {} local0\n  timeout client 2s\n  timeout http-keep-alive 300ms\n  default_backend be\n\
         frontend r\n  bind 127.0.0.1:{reference_port}\n  timeout client 10s\n  timeout http-keep-alive 1s\n  default_backend be\n\
         backend be\n  server s {}\n",
        request_log.addr, client_log.addr, server.addr
    );
    let front = SocketAddr::from(([127, 0, 0, 1], request_port));
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side("next-request-timeout", &config, front, |_| {
        let (partial_p, partial_c, reference) = std::thread::scope(|scope| {
            let p = scope.spawn(|| keep_alive_then(at(request_port), "GET /b HTTP/1.1\r\n"));
            let c = scope.spawn(|| keep_alive_then(at(client_port), "GET /b HTTP/1.1\r\n"));
            let r = scope.spawn(|| keep_alive_then(at(reference_port), ""));
            let join = |h: std::thread::ScopedJoinHandle<'_, Ending>| h.join().unwrap();
            (join(p), join(c), join(r))
        });
        KeptAlive {
            answers: [partial_p.answer, partial_c.answer],
            logged: [
                request_log.httplog_lines("p", 2),
                client_log.httplog_lines("c", 2),
            ],
            reference_first: [reference.at < partial_p.at, reference.at < partial_c.at],
            reference_answer: reference.answer,
        }
    });
    // HAProxy's behaviour, checked on hapx's side even where HAProxy is not installed.
    assert_eq!(ours.answers[0], "HTTP/1.1 408 Request Time-out", "{ours:?}");
    assert_eq!(ours.answers[1], "HTTP/1.1 408 Request Time-out", "{ours:?}");
    assert_eq!(ours.reference_first, [true, true], "{ours:?}");
    assert_eq!(ours.reference_answer, "", "{ours:?}");
    for logged in &ours.logged {
        let flags: Vec<&str> = logged.iter().map(|l| l.flags.as_str()).collect();
        assert_eq!(flags, ["----", "cR--"], "{ours:?}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// What a client saw of a tarpitted request: the status line, and when it came.
fn tarpitted(front: SocketAddr) -> (String, Instant) {
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    conn.write_all(get("/t", "connection: close\r\n").as_bytes())
        .expect("sending the request");
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    let status = answer.lines().next().unwrap_or_default().to_string();
    (status, Instant::now())
}

/// What one proxy did with the tarpitted requests of
/// [`frontend_tarpit_without_timeout_answers_at_once`].
#[derive(Debug, PartialEq, Eq)]
struct Tarpits {
    /// The statuses in the frontend, then in the `listen`.
    statuses: [String; 2],
    /// Whether the frontend's answer came before the `listen`'s.
    frontend_first: bool,
    /// The log lines of the frontend's request, then of the listen's.
    logged: [Vec<HttplogLine>; 2],
}

#[test]
fn frontend_tarpit_without_timeout_answers_at_once() {
    let server = EchoServer::start("s");
    let (frontend_port, listen_port) = (free_port(), free_port());
    let (frontend_log, listen_log) = (Syslog::bind(), Syslog::bind());
    // The frontend's `timeout connect`, from its defaults (3 s), is longer than the
    // listen's (1.5 s): were it copied into `timeout tarpit`, the frontend would answer
    // last. (HAProxy's frontend does not take it from its defaults, a backend timeout.)
    let config = format!(
        "defaults\n  mode http\n  option httplog\n  timeout client 10s\n  timeout server 10s\n  timeout connect 3s\n\
         frontend f\n  bind 127.0.0.1:{frontend_port}\n  log {} local0\n  http-request tarpit\n  default_backend be\n\
         listen l\n  bind 127.0.0.1:{listen_port}\n  log {} local0\n  timeout connect 1500ms\n  http-request tarpit\n  server s {}\n\
         backend be\n  timeout connect 1s\n  server s {}\n",
        frontend_log.addr, listen_log.addr, server.addr, server.addr
    );
    let front = SocketAddr::from(([127, 0, 0, 1], frontend_port));
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side("frontend-tarpit", &config, front, |_| {
        let (frontend, listen) = std::thread::scope(|scope| {
            let f = scope.spawn(|| tarpitted(at(frontend_port)));
            let l = scope.spawn(|| tarpitted(at(listen_port)));
            (f.join().unwrap(), l.join().unwrap())
        });
        Tarpits {
            statuses: [frontend.0, listen.0],
            frontend_first: frontend.1 < listen.1,
            logged: [
                frontend_log.httplog_lines("f", 1),
                listen_log.httplog_lines("l", 1),
            ],
        }
    });
    assert_eq!(
        ours.statuses,
        [
            "HTTP/1.1 500 Internal Server Error",
            "HTTP/1.1 500 Internal Server Error"
        ],
        "{ours:?}"
    );
    assert!(ours.frontend_first, "{ours:?}");
    for logged in &ours.logged {
        let flags: Vec<&str> = logged.iter().map(|l| l.flags.as_str()).collect();
        assert_eq!(flags, ["PT--"], "{ours:?}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The termination flags of a `tcplog` line (after its syslog header).
fn tcplog_flags(line: &str) -> String {
    line.split(' ').nth(6).unwrap_or_default().to_string()
}

/// Connects to `front`, sends `data` (maybe nothing), and waits for the proxy to close.
fn until_closed(front: SocketAddr, data: &[u8]) {
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    conn.write_all(data).expect("sending");
    let _ = conn.read_to_end(&mut Vec::new());
}

#[test]
fn silent_client_times_out_while_connections_are_retried() {
    let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (quiet_port, sending_port) = (free_port(), free_port());
    let (quiet_log, sending_log) = (Syslog::bind(), Syslog::bind());
    // Four attempts with three turn-arounds of `timeout connect` (500 ms) in between: past
    // `timeout client` (1 s) before the last one fails.
    let config = format!(
        "defaults\n  mode tcp\n  option tcplog\n  retries 3\n  timeout client 1s\n  timeout server 5s\n  timeout connect 500ms\n\
         listen quiet\n  bind 127.0.0.1:{quiet_port}\n  log {} local0\n  server r {refused}\n\
         listen sending\n  bind 127.0.0.1:{sending_port}\n  log {} local0\n  server r {refused}\n",
        quiet_log.addr, sending_log.addr
    );
    let front = SocketAddr::from(([127, 0, 0, 1], quiet_port));
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side("silent-client-retries", &config, front, |_| {
        std::thread::scope(|scope| {
            scope.spawn(|| until_closed(at(quiet_port), b""));
            scope.spawn(|| until_closed(at(sending_port), b"hello\n"));
        });
        [&quiet_log, &sending_log].map(|log| {
            log.lines(1)
                .iter()
                .map(|l| tcplog_flags(l))
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(ours, [["cC"], ["SC"]], "silent, then sending");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `show stat` columns of `proxy`/`server` after the scenario.
fn columns(sock: &std::path::Path, proxy: &str, server: &str, names: &[&str]) -> Vec<String> {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, proxy, server).unwrap_or_default();
    names
        .iter()
        .map(|n| format!("{n}={}", row.get(*n).map_or("", String::as_str)))
        .collect()
}

#[test]
fn connection_errors_without_server_and_attempts_after_client_reset_count_as_haproxy() {
    let refused = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (nosrv_port, retry_port) = (free_port(), free_port());
    let (nosrv_log, retry_log) = (Syslog::bind(), Syslog::bind());
    let dir = temp_dir("timeouts-review-counters");
    let sock = dir.join("stats.sock");
    // `retry`: a refused server, a 1 s turn-around before the retry, during which the client
    // resets its connection.
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode tcp\n  option tcplog\n  retries 3\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         listen nosrv\n  bind 127.0.0.1:{nosrv_port}\n  log {} local0\n  server m {refused} disabled\n\
         listen retry\n  bind 127.0.0.1:{retry_port}\n  log {} local0\n  server r {refused}\n",
        sock.display(),
        nosrv_log.addr,
        retry_log.addr
    );
    let front = SocketAddr::from(([127, 0, 0, 1], nosrv_port));
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side("timeouts-review-counters", &config, front, |_| {
        until_closed(at(nosrv_port), b"hello\n");
        until_closed(at(nosrv_port), b"");
        let nosrv_flags: Vec<String> = nosrv_log.lines(2).iter().map(|l| tcplog_flags(l)).collect();
        let mut conn = TcpStream::connect(at(retry_port)).expect("connecting to the proxy");
        conn.write_all(b"hello\n").expect("sending");
        // The first attempt refused: the retry's turn-around (1 s) has begun.
        let attempted = || columns(&sock, "retry", "r", &["connect"]) == ["connect=1"];
        assert!(
            wait_until(Duration::from_secs(5), attempted),
            "no first attempt"
        );
        socket2::SockRef::from(&conn)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
        drop(conn);
        let retry_flags: Vec<String> = retry_log.lines(1).iter().map(|l| tcplog_flags(l)).collect();
        (
            nosrv_flags,
            retry_flags,
            columns(&sock, "nosrv", "BACKEND", &["econ"]),
            columns(&sock, "retry", "r", &["stot", "connect", "econ"]),
        )
    });
    assert_eq!(ours.0, ["SC", "SC"], "{ours:?}");
    assert_eq!(ours.2[0], "econ=2", "{ours:?}");
    assert_eq!(ours.3[..2], ["stot=1", "connect=1"], "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
