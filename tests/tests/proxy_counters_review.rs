//! Retries, termination states, counters and messages beside HAProxy 2.6, each case run by
//! hapx-proxy and then by HAProxy on the same configuration with the same traffic:
//!
//! - a server a persistence cookie names is retried (with HAProxy's pause) before a
//!   redispatch, even among several servers (HAProxy's `SF_DIRECT`); `force-persist` never
//!   redispatches; the log's retries (`+3`), timers and cookie state (`D`), and the
//!   `wretr`/`wredis`/`econ` columns agree;
//! - a failed HTTP connection logs its retries;
//! - a server that closes without answering counts in its `eresp` and its backend's;
//! - a request that waited in the queue counts its wait in `qtime`/`qtime_max`;
//! - `timeout queue` counts in the backend's `econ`;
//! - TCP sessions ended by the server's timeout log `sD`, by the client's reset `CD`, by the
//!   client's timeout `cD`, and count in `srv_abrt`/`cli_abrt`;
//! - a server put in maintenance with connections in its queue says how many were sent to
//!   other servers and how many still wait.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, read_response, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// An HTTP server that, for each request (read to its blank line), waits `delay` then
/// answers `200` with an empty body; with `answer` false it closes without answering.
fn slow_server(delay: Duration, answer: bool) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a test server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                thread::sleep(delay);
                if answer {
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = (&conn).write_all(ok);
                }
            });
        }
    });
    addr
}

/// `GET path` with `extra` header lines, on its own connection: the response's status (0
/// for none).
fn request(front: SocketAddr, path: &str, extra: &str) -> u16 {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return 0;
    };
    conn.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let req = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{extra}\r\n");
    if conn.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    read_response(&mut BufReader::new(conn)).map_or(0, |r| r.status)
}

/// [`request`]s sent at once, `gap` apart (so that they queue in that order).
fn concurrent(front: SocketAddr, n: usize, extra: &str, gap: Duration) -> Vec<u16> {
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let extra = extra.to_string();
            thread::sleep(if i == 0 { Duration::ZERO } else { gap });
            thread::spawn(move || request(front, &format!("/{i}"), &extra))
        })
        .collect();
    let mut out: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap_or(0)).collect();
    out.sort_unstable();
    out
}

/// `count` log lines whose first word is one of `proxies` (HAProxy also logs its proxies'
/// start), sorted: lines of concurrent requests come in any order.
fn log_lines(syslog: &Syslog, proxies: &[&str], count: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < count {
        let lines = syslog.lines(1);
        let Some(line) = lines.first() else { break };
        if proxies.contains(&line.split(' ').next().unwrap_or_default()) {
            out.push(line.clone());
        }
    }
    out.sort();
    out
}

/// `columns` of `proxy`/`server` in `show stat`.
fn stats(sock: &Path, proxy: &str, server: &str, columns: &[&str]) -> Vec<String> {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, proxy, server).unwrap_or_default();
    columns
        .iter()
        .map(|c| format!("{c}={}", row.get(*c).map_or("?", String::as_str)))
        .collect()
}

/// A number of a log line (the word `at`, `/`-separated part `part`).
fn field(line: &str, at: usize, part: usize) -> i64 {
    let word = line.split(' ').nth(at).unwrap_or_default();
    let value = word.split('/').nth(part).unwrap_or_default();
    value.trim_start_matches('+').parse().unwrap_or(-1)
}

fn global(sock: &Path, syslog: &Syslog, format: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  log {} local0\n  log-format \"{format}\"\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n",
        sock.display(),
        syslog.addr
    )
}

/// What one run of the HTTP cases showed: statuses, log lines (timers in whole seconds),
/// stats columns.
#[derive(Debug, PartialEq, Eq)]
struct HttpSeen {
    statuses: Vec<Vec<u16>>,
    logs: Vec<String>,
    stats: Vec<Vec<String>>,
    /// (qtime_max of the server, its backend's, the longest `%Tw` logged), in ms: compared
    /// between each other, not with HAProxy's (times vary).
    queue_times: (i64, i64, i64),
}

fn http_traffic(ports: &[u16], sock: &Path, syslog: &Syslog) -> HttpSeen {
    let front = |k: usize| SocketAddr::from((LO, ports[k]));
    let mut statuses = vec![
        // A cookie naming a refused server among two.
        vec![request(front(0), "/", "cookie: SRV=s1\r\n")],
        // The same with `force-persist`.
        vec![request(front(1), "/", "cookie: SRV=s1\r\n")],
        // One refused server.
        vec![request(front(2), "/", "")],
        // A server closing without an answer.
        vec![request(front(3), "/", "")],
    ];
    // Two requests for one slot, the second served after waiting.
    statuses.push(concurrent(front(4), 2, "", Duration::from_millis(100)));
    // Two requests for one slot, the second given up after `timeout queue`.
    statuses.push(concurrent(front(5), 2, "", Duration::from_millis(100)));
    let names = ["ck", "fp", "rf", "cl", "qw", "qt"];
    let raw = log_lines(syslog, &names, 8);
    let longest_wait = raw
        .iter()
        .filter(|l| l.starts_with("qw "))
        .map(|l| field(l, 5, 0))
        .max()
        .unwrap_or(-1);
    let logs = raw
        .iter()
        .map(|l| {
            // `%Tw %Tc` last, in whole seconds: they hold the retries' pauses.
            let mut words: Vec<String> = l.split(' ').map(String::from).collect();
            for at in [5, 6] {
                let ms = field(l, at, 0);
                words[at] = if ms < 0 { ms } else { ms / 1000 }.to_string();
            }
            words.join(" ")
        })
        .collect();
    let counters = [
        "econ", "eresp", "wretr", "wredis", "cli_abrt", "srv_abrt", "hrsp_5xx",
    ];
    let mut stats_seen = Vec::new();
    for (proxy, server) in [
        ("ck", "s1"),
        ("ck", "s2"),
        ("ck", "BACKEND"),
        ("fp", "s1"),
        ("fp", "BACKEND"),
        ("rf", "s1"),
        ("rf", "BACKEND"),
        ("cl", "s1"),
        ("cl", "BACKEND"),
        ("qt", "s1"),
        ("qt", "BACKEND"),
    ] {
        let mut row = vec![format!("{proxy}/{server}")];
        row.extend(stats(sock, proxy, server, &counters));
        stats_seen.push(row);
    }
    let q = |server| {
        let v = stats(sock, "qw", server, &["qtime_max"]);
        v[0].trim_start_matches("qtime_max=").parse().unwrap_or(-1)
    };
    HttpSeen {
        statuses,
        logs,
        stats: stats_seen,
        queue_times: (q("s1"), q("BACKEND"), longest_wait),
    }
}

#[test]
fn http_retries_errors_and_queue_times_count_as_with_haproxy() {
    let dir = temp_dir("counters-http");
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let echo = EchoServer::start("web2");
    let refused = free_port();
    let closing = slow_server(Duration::ZERO, false);
    let quick = slow_server(Duration::from_millis(400), true);
    let slow = slow_server(Duration::from_millis(1500), true);
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let mut cfg = global(&sock, &syslog, "%b %s %ST %tsc %rc %Tw %Tc");
    cfg += &format!(
        "listen ck\n  mode http\n  bind 127.0.0.1:{}\n  option redispatch\n  retries 3\n\
         \x20 cookie SRV insert indirect\n\
         \x20 server s1 127.0.0.1:{refused} cookie s1\n  server s2 {} cookie s2\n",
        ports[0], echo.addr
    );
    cfg += &format!(
        "listen fp\n  mode http\n  bind 127.0.0.1:{}\n  option redispatch\n  retries 1\n\
         \x20 cookie SRV insert indirect\n  force-persist if TRUE\n\
         \x20 server s1 127.0.0.1:{refused} cookie s1\n  server s2 {} cookie s2\n",
        ports[1], echo.addr
    );
    cfg += &format!(
        "listen rf\n  mode http\n  bind 127.0.0.1:{}\n  retries 1\n\
         \x20 server s1 127.0.0.1:{refused}\n",
        ports[2]
    );
    cfg += &format!(
        "listen cl\n  mode http\n  bind 127.0.0.1:{}\n  server s1 {closing}\n",
        ports[3]
    );
    cfg += &format!(
        "listen qw\n  mode http\n  bind 127.0.0.1:{}\n  timeout queue 5s\n\
         \x20 server s1 {quick} maxconn 1\n",
        ports[4]
    );
    cfg += &format!(
        "listen qt\n  mode http\n  bind 127.0.0.1:{}\n  timeout queue 300\n\
         \x20 server s1 {slow} maxconn 1\n",
        ports[5]
    );
    let last = SocketAddr::from((LO, ports[5]));
    let (ours, theirs) = side_by_side("counters-http", &cfg, last, |_| {
        http_traffic(&ports, &sock, &syslog)
    });
    eprintln!("hapx: {ours:#?}");
    // Sound on its own: the cookie's server was retried twice (a second's pause each)
    // before the redispatch, which the log shows as `+3` with the cookie's server down.
    assert_eq!(ours.statuses[0], [200]);
    assert!(
        ours.logs.contains(&"ck s2 200 --DI +3 2 0".to_string()),
        "{:?}",
        ours.logs
    );
    assert!(ours.logs.contains(&"rf s1 503 SC-- 1 0 -1".to_string()));
    let (server_wait, backend_wait, logged) = ours.queue_times;
    assert!(server_wait > 0 && (server_wait - logged).abs() <= 50);
    assert_eq!(server_wait, backend_wait);
    let Some(theirs) = theirs else {
        return;
    };
    eprintln!("HAProxy: {theirs:#?}");
    assert_eq!(ours.statuses, theirs.statuses);
    assert_eq!(ours.logs, theirs.logs);
    assert_eq!(ours.stats, theirs.stats);
    let (server_wait, backend_wait, logged) = theirs.queue_times;
    assert!(server_wait > 0 && (server_wait - logged).abs() <= 50);
    assert_eq!(server_wait, backend_wait);
}

/// Connects to a TCP frontend, reads the server's first line, then waits for the proxy to
/// end the session (`reset`: resets it instead, at once).
fn tcp_session(front: SocketAddr, reset: bool) {
    let Ok(conn) = TcpStream::connect(front) else {
        return;
    };
    conn.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    if reset {
        let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
        return;
    }
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

#[test]
fn tcp_sessions_end_with_haproxys_termination_states() {
    let dir = temp_dir("counters-tcp");
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let server = NamedServer::start("s1", LO, Duration::from_secs(10));
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut cfg = global(&sock, &syslog, "%b %s %ts %rc");
    for (k, (name, extra)) in [
        ("st", "  timeout server 1s\n"),
        ("rs", ""),
        ("ct", "  timeout client 1s\n"),
    ]
    .iter()
    .enumerate()
    {
        cfg += &format!(
            "listen {name}\n  mode tcp\n  bind 127.0.0.1:{}\n{extra}  server s1 {}\n",
            ports[k], server.addr
        );
    }
    let last = SocketAddr::from((LO, ports[2]));
    let (ours, theirs) = side_by_side("counters-tcp", &cfg, last, |_| {
        for (k, reset) in [(0, false), (1, true), (2, false)] {
            tcp_session(SocketAddr::from((LO, ports[k])), reset);
        }
        let logs = log_lines(&syslog, &["st", "rs", "ct"], 3);
        let rows: Vec<Vec<String>> = ["st", "rs", "ct"]
            .iter()
            .flat_map(|p| [(*p, "s1"), (*p, "BACKEND")])
            .map(|(p, s)| stats(&sock, p, s, &["cli_abrt", "srv_abrt"]))
            .collect();
        (logs, rows)
    });
    eprintln!("hapx: {ours:?}");
    assert_eq!(
        ours.0,
        ["ct s1 cD 0", "rs s1 CD 0", "st s1 sD 0"],
        "{ours:?}"
    );
    assert_eq!(ours.1[0], ["cli_abrt=0", "srv_abrt=1"]);
    assert_eq!(ours.1[2], ["cli_abrt=1", "srv_abrt=0"]);
    let Some(theirs) = theirs else {
        return;
    };
    eprintln!("HAProxy: {theirs:?}");
    assert_eq!(ours, theirs);
}

#[test]
fn a_server_gone_says_how_many_of_its_queue_moved() {
    let dir = temp_dir("counters-requeue");
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let slow = slow_server(Duration::from_millis(1000), true);
    let echo = EchoServer::start("web2");
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let mut cfg = global(&sock, &syslog, "%b %s %ST %tsc");
    for (k, (name, extra)) in [("rd", "  option redispatch\n"), ("st", "")]
        .iter()
        .enumerate()
    {
        cfg += &format!(
            "listen {name}\n  mode http\n  bind 127.0.0.1:{}\n  timeout queue 5s\n{extra}\
             \x20 cookie SRV insert indirect\n\
             \x20 server s1 {slow} cookie s1 maxconn 1\n  server s2 {} cookie s2\n",
            ports[k], echo.addr
        );
    }
    let last = SocketAddr::from((LO, ports[1]));
    let (ours, theirs) = side_by_side("counters-requeue", &cfg, last, |_| {
        let mut statuses = Vec::new();
        for (k, name) in ["rd", "st"].iter().enumerate() {
            let front = SocketAddr::from((LO, ports[k]));
            // One request served by s1, two waiting in its queue (served by s1 in maintenance
            // unless redispatched, as HAProxy does).
            let gap = Duration::from_millis(100);
            let sending = thread::spawn(move || concurrent(front, 3, "cookie: SRV=s1\r\n", gap));
            thread::sleep(Duration::from_millis(500));
            cli(&sock, &format!("disable server {name}/s1"));
            statuses.push(sending.join().unwrap_or_default());
        }
        let mut messages = Vec::new();
        while messages.len() < 2 {
            let lines = syslog.lines(1);
            let Some(line) = lines.first() else { break };
            if line.starts_with("Server ") {
                messages.push(line.clone());
            }
        }
        (statuses, messages)
    });
    eprintln!("hapx: {ours:?}");
    assert!(
        ours.1[0].ends_with("1 sessions active, 2 requeued, 0 remaining in queue."),
        "{ours:?}"
    );
    assert!(
        ours.1[1].ends_with("1 sessions active, 0 requeued, 2 remaining in queue."),
        "{ours:?}"
    );
    let Some(theirs) = theirs else {
        return;
    };
    eprintln!("HAProxy: {theirs:?}");
    assert_eq!(ours, theirs);
}

#[test]
fn the_slow_server_helper_answers() {
    // The helper the cases above rely on: a request gets its answer after the delay.
    let addr = slow_server(Duration::from_millis(10), true);
    let mut conn = TcpStream::connect(addr).expect("connecting");
    conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("sending");
    let mut out = String::new();
    let _ = conn.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
}

/// Without `timeout connect` or `timeout queue`, HAProxy bounds neither the connection
/// attempts nor the wait in a queue (it only warns): a connection waits for a full server
/// as long as it takes (here longer than the 5 s hapx once applied).
#[test]
fn without_timeouts_a_queue_waits_as_long_as_it_takes() {
    let dir = temp_dir("counters-untimed");
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let server = NamedServer::start("s1", LO, Duration::from_secs(30));
    let port = free_port();
    let cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  log {} local0\n  log-format \"%b %s %ts\"\n\
         listen un\n  mode tcp\n  bind 127.0.0.1:{port}\n  server s1 {} maxconn 1\n",
        sock.display(),
        syslog.addr,
        server.addr
    );
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = side_by_side("counters-untimed", &cfg, front, |_| {
        // The first connection holds the only slot for 5.5 s; the second waits for it.
        let holder = thread::spawn(move || {
            let conn = TcpStream::connect(front).expect("connecting");
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            thread::sleep(Duration::from_millis(5500));
            line
        });
        thread::sleep(Duration::from_millis(200));
        let waiter = TcpStream::connect(front).expect("connecting");
        waiter.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut second = String::new();
        let _ = BufReader::new(&waiter).read_line(&mut second);
        drop(waiter);
        let first = holder.join().unwrap_or_default();
        (first, second, log_lines(&syslog, &["un"], 2))
    });
    eprintln!("hapx: {ours:?}\nHAProxy: {theirs:?}");
    assert_eq!((ours.0.as_str(), ours.1.as_str()), ("s1\n", "s1\n"));
    let Some(theirs) = theirs else {
        return;
    };
    assert_eq!(ours, theirs);
}
