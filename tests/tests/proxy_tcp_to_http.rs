//! A `mode tcp` frontend whose backend is `mode http`: HAProxy 2.6 turns the connection to
//! HTTP when its stream switches to that backend, and every later request on it is a stream
//! of its own, which the frontend's content rules and `use_backend` see anew. hapx-proxy
//! and HAProxy run the same configuration and traffic in turn: the responses the client
//! sees, the heads the servers get (the backend's `http-request` rules, `option
//! forwardfor`, `option http-server-close`), the log lines (shape-compared: the frontend's
//! TCP format, one line per request), the `show stat` counters, and what `-c` says.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, http_raw, stat_row, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, Response, Syslog, binaries, check_alike, check_text, exchange, get,
    shape_keeping_bytes,
};
use hapx_tests::proxy_tls::{ClientHello, TlsClient, site_certificate};
use hapx_tests::require;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The `show stat` columns compared: sessions, requests and their errors, responses by
/// class, bytes (not the current sessions: HAProxy's may still be closing).
const COLUMNS: [&str; 10] = [
    "stot", "req_tot", "ereq", "dreq", "cli_abrt", "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "bin",
    "bout",
];

/// What one proxy did with a test's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    /// Each connection's responses (see [`exchange`]), or its raw answer.
    seen: Vec<String>,
    /// The log lines, shaped (numbers masked but byte counts).
    log: Vec<String>,
    /// `proxy/row` -> the [`COLUMNS`] of `show stat`.
    stats: Vec<(String, Vec<(String, String)>)>,
}

/// A client's traffic: what it saw, as text.
type Traffic = fn(SocketAddr) -> Vec<String>;

/// Runs `body` (the frontend `fe`'s lines, then the backends; `bind`: its `bind` line's
/// options) through `binary` with `traffic`, waiting for `lines` log lines; `rows`: the
/// `show stat` rows compared.
fn observe(
    binary: &(&str, PathBuf),
    test: &str,
    (bind, body): (&str, &str),
    traffic: Traffic,
    lines: usize,
    rows: &[(&str, &str)],
) -> Observed {
    let syslog = Syslog::bind();
    // Short: the stats socket's path must fit a UNIX socket address.
    let dir = temp_dir(&format!("t2h-{}-{}", &test[..20], binary.0));
    let sock = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  log {} local0\n  stats socket {} level admin\ndefaults\n  retries 0\n  \
         timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend fe\n  mode tcp\n  log global\n  bind {front} {bind}\n{body}",
        syslog.addr,
        sock.display()
    );
    let _proxy = Proxy::start_with(binary.1.clone(), &dir, binary.0, &config, front, &[]);
    let seen = traffic(front);
    let log = syslog
        .lines(lines)
        .iter()
        .map(|l| shape_keeping_bytes(l))
        .collect();
    let csv = cli(&sock, "show stat");
    let stats = rows
        .iter()
        .map(|(proxy, row)| {
            let found = stat_row(&csv, proxy, row).unwrap_or_default();
            let columns = COLUMNS
                .iter()
                .map(|c| (c.to_string(), found.get(*c).cloned().unwrap_or_default()))
                .collect();
            (format!("{proxy}/{row}"), columns)
        })
        .collect();
    Observed { seen, log, stats }
}

/// [`observe`] with hapx-proxy, then with HAProxy when it is installed (skipped loudly
/// otherwise, failing under CI): both observed alike. hapx's observation is returned.
fn alike(
    test: &str,
    body: &str,
    traffic: Traffic,
    lines: usize,
    rows: &[(&str, &str)],
) -> Observed {
    alike_bound(test, ("", body), traffic, lines, rows)
}

/// [`alike`] with options on the frontend's `bind` line: `(bind, body)`. The proxies run
/// at the same time: each has its own port, stats socket and syslog sink, and the servers
/// answer each connection alone, so neither waits for the other's windows.
fn alike_bound(
    test: &str,
    config: (&str, &str),
    traffic: Traffic,
    lines: usize,
    rows: &[(&str, &str)],
) -> Observed {
    let binaries = binaries(test);
    let mut runs = std::thread::scope(|scope| {
        let observing: Vec<_> = (binaries.iter())
            .map(|b| scope.spawn(move || observe(b, test, config, traffic, lines, rows)))
            .collect();
        (observing.into_iter())
            .map(|o| {
                o.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Vec<_>>()
    });
    let ours = runs.remove(0);
    if let Some(theirs) = runs.pop() {
        // Connections that follow one another may end in either order inside a proxy with
        // two threads (HAProxy logs a rejected connection's line after it closed it), so the
        // log lines are compared in sorted order.
        let in_any_order = |o: &Observed| {
            let mut o = o.clone();
            o.log.sort();
            o
        };
        assert_eq!(
            in_any_order(&ours),
            in_any_order(&theirs),
            "{test}: hapx-proxy, then HAProxy"
        );
    }
    ours
}

/// Responses as text, `None` where none came (the connection closed).
fn shown(responses: Vec<Option<Response>>) -> Vec<String> {
    responses
        .into_iter()
        .map(|r| r.map_or_else(|| "closed".to_string(), |r| format!("{r:?}")))
        .collect()
}

/// Three kept-alive requests on one connection, then a malformed one on another (its
/// first request), then a malformed one after a good one.
fn three_then_malformed(front: SocketAddr) -> Vec<String> {
    let mut seen = shown(exchange(
        front,
        &[get("/a", ""), get("/b", ""), get("/c", "")],
    ));
    let bad = b"BAD\r\n\r\n";
    seen.push(http_raw(front, bad, Duration::from_secs(5)));
    let mut later = get("/d", "").into_bytes();
    later.extend_from_slice(bad);
    seen.push(http_raw(front, &later, Duration::from_secs(5)));
    seen
}

/// The value of `name` in the head the server got, as the echo server shows it.
fn forwarded<'a>(seen: &'a str, name: &str) -> Option<&'a str> {
    let start = seen.find(&format!("\\n{name}: "))? + name.len() + 4;
    seen[start..].split("\\n").next()
}

fn column<'a>(observed: &'a Observed, row: &str, name: &str) -> &'a str {
    let (_, columns) = (observed.stats.iter())
        .find(|(r, _)| r == row)
        .expect("a compared row");
    let (_, value) = columns.iter().find(|(c, _)| c == name).expect("a column");
    value
}

#[test]
fn requests_turn_to_http_in_the_backend_as_in_haproxy() {
    let (one, two) = (EchoServer::start("one"), EchoServer::start("two"));
    let body = format!(
        "  option tcplog\n  tcp-request content set-var(sess.n) int(0) if !{{ var(sess.n) -m found }}\n  \
         tcp-request content set-var(sess.n) var(sess.n),add(1)\n  \
         use_backend two if {{ var(sess.n) -m int ge 2 }}\n  default_backend one\n\
         backend one\n  mode http\n  option forwardfor\n  http-request set-header x-n %[var(sess.n)]\n  \
         http-response set-header x-from one\n  server s1 {}\n\
         backend two\n  mode http\n  http-request set-header x-two %[var(sess.n)]\n  server s1 {}\n",
        one.addr, two.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND"), ("two", "BACKEND")];
    let test = "requests_turn_to_http_in_the_backend_as_in_haproxy";
    let seen = alike(test, &body, three_then_malformed, 6, &rows);
    // The first request in the backend its rules chose, through its HTTP rules; the later
    // ones where the frontend's rules, run anew, send them.
    assert!(seen.seen[0].contains("one\\n"), "{:?}", seen.seen);
    assert_eq!(
        forwarded(&seen.seen[0], "x-n"),
        Some("1"),
        "{:?}",
        seen.seen[0]
    );
    assert_eq!(
        forwarded(&seen.seen[0], "x-forwarded-for"),
        Some("127.0.0.1")
    );
    assert!(
        seen.seen[0].contains("(\"x-from\", \"one\")"),
        "{:?}",
        seen.seen[0]
    );
    assert_eq!(
        forwarded(&seen.seen[1], "x-two"),
        Some("2"),
        "{:?}",
        seen.seen[1]
    );
    assert_eq!(
        forwarded(&seen.seen[2], "x-two"),
        Some("3"),
        "{:?}",
        seen.seen[2]
    );
    // A malformed request gets HAProxy's own 400, first or kept alive.
    assert!(
        seen.seen[3].starts_with("HTTP/1.1 400 Bad request"),
        "{:?}",
        seen.seen[3]
    );
    let after_good = seen.seen[4].split_once("HTTP/1.1 400 Bad request");
    assert!(
        after_good.is_some_and(|(good, _)| good.contains("x-n: 1")),
        "{:?}",
        seen.seen[4]
    );
    // One line per request in the frontend's TCP format.
    assert_eq!(seen.log.len(), 6, "{:?}", seen.log);
    assert!(seen.log[1].contains(" fe two/sN "), "{:?}", seen.log);
    for refused in [&seen.log[3], &seen.log[5]] {
        assert!(
            refused.contains(" fe fe/<NOSRV> ") && refused.contains(" PR "),
            "{refused}"
        );
    }
    // Requests count in the TCP frontend, responses in the backends.
    assert_eq!(column(&seen, "fe/FRONTEND", "req_tot"), "6");
    assert_eq!(column(&seen, "fe/FRONTEND", "stot"), "3");
    assert_eq!(column(&seen, "two/BACKEND", "hrsp_2xx"), "2");
}

/// Two requests on one connection, the second sent to a TCP backend by the frontend's rules.
fn second_to_tcp(front: SocketAddr) -> Vec<String> {
    shown(exchange(front, &[get("/a", ""), get("/b", "")]))
}

#[test]
fn kept_alive_requests_log_connections_and_refuse_tcp_backends_as_haproxy() {
    let (one, two) = (EchoServer::start("one"), EchoServer::start("two"));
    // No log format: a "Connect from" line per stream, in the frontend's mode.
    let body = format!(
        "  tcp-request content set-var(sess.n) int(0) if !{{ var(sess.n) -m found }}\n  \
         tcp-request content set-var(sess.n) var(sess.n),add(1)\n  \
         use_backend raw if {{ var(sess.n) -m int ge 2 }}\n  default_backend one\n\
         backend one\n  mode http\n  server s1 {}\nbackend raw\n  mode tcp\n  server s1 {}\n",
        one.addr, two.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND"), ("raw", "BACKEND")];
    let test = "kept_alive_requests_log_connections_and_refuse_tcp_backends_as_haproxy";
    let seen = alike(test, &body, second_to_tcp, 2, &rows);
    assert_eq!(seen.seen.len(), 2, "{:?}", seen.seen);
    assert_eq!(seen.seen[1], "closed");
    assert!(
        seen.log
            .iter()
            .all(|l| l.contains("Connect from") && l.ends_with("(fe/TCP)")),
        "{:?}",
        seen.log
    );
    assert_eq!(column(&seen, "raw/BACKEND", "stot"), "1");
}

/// A kept-alive request, then an HTTP/1.0 one.
fn then_http10(front: SocketAddr) -> Vec<String> {
    let old = "GET /old HTTP/1.0\r\nhost: test.example\r\n\r\n".to_string();
    shown(exchange(front, &[get("/a", ""), old]))
}

#[test]
fn backend_connection_options_apply_as_in_haproxy() {
    let one = EchoServer::start("one");
    let body = format!(
        "  option tcplog\n  default_backend one\n\
         backend one\n  mode http\n  option http-server-close\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "backend_connection_options_apply_as_in_haproxy";
    let seen = alike(test, &body, then_http10, 2, &rows);
    // The server's connection closes after each request; the client's stays open until
    // its HTTP/1.0 request.
    assert_eq!(
        forwarded(&seen.seen[0], "connection"),
        Some("close"),
        "{:?}",
        seen.seen
    );
    assert_eq!(seen.seen.len(), 3, "{:?}", seen.seen);
    assert_eq!(seen.seen[2], "closed");
}

#[test]
fn check_accepts_http_backends_of_tcp_frontends_as_haproxy() {
    let test = "check_accepts_http_backends_of_tcp_frontends_as_haproxy";
    let defaults = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";
    // No warning for the upgrade; `option forwardfor` of a TCP frontend is dropped.
    let upgrading = format!(
        "{defaults}frontend fe\n  mode tcp\n  bind 127.0.0.1:1\n  option forwardfor\n  \
         use_backend other if {{ src 10.0.0.1 }}\n  default_backend web\n\
         backend web\n  mode http\n  server s 127.0.0.1:1\n\
         backend other\n  mode http\n  server s 127.0.0.1:1\n"
    );
    let (code, messages) = check_alike(test, &upgrading);
    assert_eq!(code, 0, "{messages:?}");
    assert_eq!(
        messages,
        ["WARNING: 'option forwardfor' ignored for frontend 'fe' as it requires HTTP mode."]
    );
    // The reverse is refused, default backend first, with HAProxy's messages (hapx names
    // the `default_backend` line too).
    let reverse = format!(
        "{defaults}frontend fe\n  mode http\n  bind 127.0.0.1:1\n  \
         use_backend raw if {{ path /x }}\n  default_backend raw\n\
         backend raw\n  mode tcp\n  server s 127.0.0.1:1\n"
    );
    let missing = reverse.replace("default_backend raw", "default_backend nowhere");
    let dir = temp_dir("t2h-check");
    for (case, text) in [reverse, missing].iter().enumerate() {
        let [ours, theirs] = check_text(&dir, case, text);
        assert_ne!(ours.0, 0, "{ours:?}");
        let unplaced: Vec<String> = (ours.1.iter())
            .map(|m| match m.split_once("] : ") {
                Some((level, text)) if m.contains(": [") => {
                    format!("{}{text}", level.split_once('[').map_or(level, |(l, _)| l))
                }
                _ => m.clone(),
            })
            .collect();
        assert!(unplaced[0].contains("default"), "{unplaced:?}");
        if binaries(test).len() > 1 {
            assert_eq!((ours.0, unplaced), theirs, "hapx-proxy, then HAProxy");
        }
    }
}

/// Three connections whose first request never comes whole: one closed at once, one
/// closed with half a request line, one silent until `timeout http-request`; then a
/// request.
fn first_requests_failing(front: SocketAddr) -> Vec<String> {
    let mut seen = vec![
        http_raw(front, b"", Duration::from_millis(100)),
        http_raw(front, b"GET / HTTP/1.1\r\n", Duration::from_millis(100)),
        http_raw(front, b"", Duration::from_secs(5)),
    ];
    seen.extend(shown(exchange(front, &[get("/a", "")])));
    seen
}

/// [`second_to_tcp`], then [`first_requests_failing`].
fn served_then_failing(front: SocketAddr) -> Vec<String> {
    let mut seen = second_to_tcp(front);
    seen.extend(first_requests_failing(front));
    seen
}

#[test]
fn stats_of_a_turned_connection_count_per_request() {
    let one = EchoServer::start("one");
    let body = format!(
        "  option tcplog\n  timeout http-request 1s\n  default_backend one\n\
         backend one\n  mode http\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND"), ("one", "s1")];
    let test = "stats_of_a_turned_connection_count_per_request";
    let seen = alike(test, &body, served_then_failing, 6, &rows);
    // A first request that never came whole is the stream's, already in its backend:
    // logged `PR`, a request and two errors of the frontend, a client abort of the backend.
    // The silent one gets the 408; the others no answer.
    assert_eq!(&seen.seen[3..5], ["", ""], "{:?}", seen.seen);
    assert!(seen.seen[5].starts_with("HTTP/1.1 408"), "{:?}", seen.seen);
    assert_eq!(
        seen.log.iter().filter(|l| l.contains(" PR ")).count(),
        3,
        "{:?}",
        seen.log
    );
    assert_eq!(column(&seen, "fe/FRONTEND", "req_tot"), "6");
    assert_eq!(column(&seen, "fe/FRONTEND", "ereq"), "6");
    assert_eq!(column(&seen, "one/BACKEND", "cli_abrt"), "3");
    // Without a line for a connection that sent nothing with `dontlognull`.
    let quiet = body.replace("option tcplog", "option tcplog\n  option dontlognull");
    let without = alike(test, &quiet, first_requests_failing, 2, &rows);
    assert!(without.log[0].contains(" PR "), "{:?}", without.log);
    assert!(!without.log[1].contains(" PR "), "{:?}", without.log);
    assert_eq!(column(&without, "one/BACKEND", "stot"), "4");
    let seen = alike(test, &body, second_to_tcp, 2, &rows);
    let counts: HashMap<&str, &str> = ["stot", "req_tot", "hrsp_2xx"]
        .iter()
        .map(|c| (*c, column(&seen, "one/BACKEND", c)))
        .collect();
    assert_eq!(counts["stot"], "2", "{counts:?}");
    assert_eq!(counts["req_tot"], "2", "{counts:?}");
    assert_eq!(column(&seen, "fe/FRONTEND", "stot"), "1");
    // A TCP frontend shows no response classes.
    assert_eq!(column(&seen, "fe/FRONTEND", "hrsp_2xx"), "");
}

/// A request, then a malformed one, through TLS.
fn through_tls(front: SocketAddr) -> Vec<String> {
    let mut client = TlsClient::connect(front, &ClientHello::default()).expect("a handshake");
    [get("/a", ""), "BAD\r\n\r\n".to_string()]
        .iter()
        .map(|request| match client.send_and_read(request.as_bytes()) {
            Ok(answer) => String::from_utf8_lossy(&answer).into_owned(),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

#[test]
fn tls_connections_turn_to_http_as_in_haproxy() {
    let one = EchoServer::start("one");
    let certs = temp_dir("t2h-tls-certs");
    let pem = certs.join("site.pem");
    site_certificate(&pem, &["localhost"], false);
    let bind = format!("ssl crt {}", pem.display());
    let body = format!(
        "  option tcplog\n  default_backend one\n\
         backend one\n  mode http\n  option forwardfor\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "tls_connections_turn_to_http_as_in_haproxy";
    let seen = alike_bound(test, (&bind, &body), through_tls, 2, &rows);
    assert!(
        seen.seen[0].contains("x-forwarded-for: 127.0.0.1"),
        "{:?}",
        seen.seen
    );
    assert!(
        seen.seen[1].starts_with("HTTP/1.1 400 Bad request"),
        "{:?}",
        seen.seen
    );
    // Both lines mark the connection's TLS (`fe~`), the refused request's too.
    assert!(
        seen.log.iter().all(|l| l.contains(" fe~ ")),
        "{:?}",
        seen.log
    );
    assert_eq!(column(&seen, "fe/FRONTEND", "req_tot"), "2");
}

#[test]
fn protocol_detection_sends_each_request_to_http_as_in_haproxy() {
    let (web, raw) = (EchoServer::start("web"), EchoServer::start("raw"));
    // The usual way to share a port: wait for the first bytes, HTTP to its backend.
    let body = format!(
        "  option tcplog\n  tcp-request inspect-delay 2s\n  tcp-request content accept if HTTP\n  \
         use_backend web if HTTP\n  default_backend raw\n\
         backend web\n  mode http\n  http-request set-header x-web %[req.ver]\n  server s1 {}\n\
         backend raw\n  mode tcp\n  server s1 {}\n",
        web.addr, raw.addr
    );
    let rows = [("fe", "FRONTEND"), ("web", "BACKEND"), ("raw", "BACKEND")];
    let test = "protocol_detection_sends_each_request_to_http_as_in_haproxy";
    let seen = alike(test, &body, second_to_tcp, 2, &rows);
    assert_eq!(seen.seen.len(), 2, "{:?}", seen.seen);
    for answer in &seen.seen {
        assert!(
            answer.contains("web\\n") && answer.contains("x-web: 1.1"),
            "{answer}"
        );
    }
    assert_eq!(column(&seen, "web/BACKEND", "req_tot"), "2");
    assert_eq!(column(&seen, "raw/BACKEND", "stot"), "0");
}

/// Four kept-alive requests: one served, one the frontend denies, one it redirects, one
/// served.
fn served_denied_redirected_served(front: SocketAddr) -> Vec<String> {
    let paths = ["/a", "/deny", "/red", "/b"];
    shown(exchange(front, &paths.map(|p| get(p, ""))))
}

#[test]
fn frontend_http_rules_and_variables_reach_turned_requests_as_in_haproxy() {
    let one = EchoServer::start("one");
    // The frontend's HTTP rules, warned about as in HAProxy, run on every request once the
    // connection is HTTP; its content rules' `txn` variables reach the first request (the
    // same stream), and `req.len` is there on later ones (an HTTP request's size).
    let body = format!(
        "  option tcplog\n  tcp-request inspect-delay 2s\n  \
         tcp-request content set-var(txn.t) req.payload(4,2)\n  \
         tcp-request content set-var(txn.l) req.len\n  \
         tcp-request content reject if !{{ req.len gt 0 }}\n  \
         http-request deny if {{ path /deny }}\n  redirect location /x if {{ path /red }}\n  \
         http-response set-header x-v fe\n  http-after-response set-header x-a fe\n  \
         default_backend one\n\
         backend one\n  mode http\n  http-response set-header x-t \"%[var(txn.t)]\"\n  \
         http-response set-header x-l \"%[var(txn.l)]\"\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "frontend_http_rules_and_variables_reach_turned_requests_as_in_haproxy";
    let seen = alike(test, &body, served_denied_redirected_served, 4, &rows);
    assert!(seen.seen.len() >= 4, "{:?}", seen.seen);
    let [a, deny, red, b] = [0, 1, 2, 3].map(|i| &seen.seen[i]);
    for served in [a, b] {
        assert!(
            served.contains("status: 200") && served.contains("(\"x-v\", \"fe\")"),
            "{served}"
        );
        assert!(served.contains("(\"x-a\", \"fe\")"), "{served}");
    }
    assert!(
        deny.contains("status: 403") && deny.contains("(\"x-a\", \"fe\")"),
        "{deny}"
    );
    assert!(
        red.contains("status: 302") && red.contains("(\"location\", \"/x\")"),
        "{red}"
    );
    // The first request's variable from its raw bytes; the later ones' payload is gone.
    assert!(a.contains("(\"x-t\", \"/a\")"), "{a}");
    assert!(b.contains("(\"x-t\", \"\")"), "{b}");
    // Its raw bytes first, then an HTTP request's size.
    assert!(a.contains("(\"x-l\", \"39\")"), "{a}");
    assert!(b.contains("(\"x-l\", \"50\")"), "{b}");
    // (Without a log format, which HAProxy warns about first.)
    let config = format!(
        "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend fe\n  mode tcp\n  bind 127.0.0.1:1\n{}",
        body.replace("  option tcplog\n", "")
    );
    let (code, messages) = check_alike(test, &config);
    assert_eq!(code, 0, "{messages:?}");
    for which in [
        "http-request",
        "http-response",
        "http-after-response",
        "redirect",
    ] {
        let warning = format!(
            "WARNING: '{which}' rules ignored for frontend 'fe' as they require HTTP mode."
        );
        assert!(messages.contains(&warning), "{messages:?}");
    }
}

/// Runs curl with `args` for `url`: the first line the server echoed (its name), the
/// request line it got, then the HTTP version and status the client saw.
fn curl(args: &[&str], url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "5", "-w", "%{http_version} %{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines.iter().take(2).chain(lines.last()).copied();
    kept.collect::<Vec<_>>().join(" | ")
}

/// Two connections in HTTP/2 with prior knowledge (curl 7.88 sends nothing for a second
/// URL on such a connection), one request each.
fn prior_knowledge(front: SocketAddr) -> Vec<String> {
    ["/pk1", "/pk2"]
        .map(|p| curl(&["--http2-prior-knowledge"], &format!("http://{front}{p}")))
        .to_vec()
}

/// Two connections in HTTP/2 negotiated by ALPN, one request each.
fn alpn_h2(front: SocketAddr) -> Vec<String> {
    let resolve = format!("localhost:{}:127.0.0.1", front.port());
    ["/alpn1", "/alpn2"]
        .map(|p| {
            let url = format!("https://localhost:{}{p}", front.port());
            curl(&["-k", "--http2", "--resolve", &resolve], &url)
        })
        .to_vec()
}

#[test]
fn http2_connections_turn_to_http_as_in_haproxy() {
    let test = "http2_connections_turn_to_http_as_in_haproxy";
    if !require::command(test, "curl") {
        return;
    }
    let one = EchoServer::start("one");
    let body = format!(
        "  option tcplog\n  default_backend one\nbackend one\n  mode http\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    // Each HTTP/2 stream is a request of the frontend's, logged in its format.
    let seen = alike(test, &body, prior_knowledge, 2, &rows);
    let expected = |p: &str| format!("one | GET {p} HTTP/1.1 | 2 200");
    assert_eq!(seen.seen, [expected("/pk1"), expected("/pk2")], "{seen:?}");
    assert_eq!(column(&seen, "one/BACKEND", "req_tot"), "2");
    // The TCP stream each connection began with counts as a session of the backend too.
    assert_eq!(column(&seen, "one/BACKEND", "stot"), "4");
    let certs = temp_dir("t2h-h2-certs");
    let pem = certs.join("site.pem");
    site_certificate(&pem, &["localhost"], false);
    let bind = format!("ssl crt {} alpn h2,http/1.1", pem.display());
    let seen = alike_bound(test, (&bind, &body), alpn_h2, 2, &rows);
    assert_eq!(
        seen.seen,
        [expected("/alpn1"), expected("/alpn2")],
        "{seen:?}"
    );
    assert!(
        seen.log.iter().all(|l| l.contains(" fe~ ")),
        "{:?}",
        seen.log
    );
}

/// A request, then one the frontend's content rules refuse, on one connection.
fn second_refused(front: SocketAddr) -> Vec<String> {
    shown(exchange(front, &[get("/a", ""), get("/b", "")]))
}

#[test]
fn requests_refused_by_content_rules_are_not_counted_as_in_haproxy() {
    let one = EchoServer::start("one");
    let rules = "  option tcplog\n  tcp-request inspect-delay 1s\n  \
         tcp-request content set-var(sess.n) int(0) if !{ var(sess.n) -m found }\n  \
         tcp-request content set-var(sess.n) var(sess.n),add(1)\n  \
         tcp-request content reject if { var(sess.n) -m int ge 2 }\n  default_backend one\n";
    let backend = format!("backend one\n  mode http\n  server s1 {}\n", one.addr);
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "requests_refused_by_content_rules_are_not_counted_as_in_haproxy";
    // HAProxy counts a request once its frontend's content rules let it in, whether the
    // connection turned to HTTP or the frontend is an HTTP one.
    for mode in ["", "  mode http\n"] {
        let body = format!("{mode}{rules}{backend}");
        let seen = alike(test, &body, second_refused, 2, &rows);
        assert_eq!(seen.seen[1], "closed", "{seen:?}");
        assert_eq!(column(&seen, "fe/FRONTEND", "req_tot"), "1", "{seen:?}");
        assert_eq!(column(&seen, "fe/FRONTEND", "dreq"), "1", "{seen:?}");
    }
}

/// A password `u:right` hashed with SHA-512 crypt (`openssl passwd -6`).
const HASHED_RIGHT: &str = "$6$hapxsalt$qtkgTKUWqlnE1ftOZPqeonjlj4wJud9EpskmzcmmCmxC6tSPbFdmb.3hX1ct4hDIEOLCvdsDemFjs3lhlTN9X/";

/// Four connections, each one request with Basic credentials, wrong then right, for the
/// backend's rule (`/a`) and for the frontend's (`/fe`).
fn with_passwords(front: SocketAddr) -> Vec<String> {
    let (wrong, right) = ("dTp3cm9uZw==", "dTpyaWdodA==");
    [("/a", wrong), ("/a", right), ("/fe", wrong), ("/fe", right)]
        .iter()
        .flat_map(|(path, basic)| {
            let credentials = format!("authorization: Basic {basic}\r\n");
            shown(exchange(front, &[get(path, &credentials)]))
        })
        .collect()
}

/// The first request of a connection turned to HTTP, with credentials: the frontend's and
/// the backend's `http_auth` find the passwords as HAProxy does (hapx hashes them off its
/// worker threads first, as for any HTTP request).
#[test]
fn credentials_on_turned_connections_are_checked_as_in_haproxy() {
    let one = EchoServer::start("one");
    let body = format!(
        "  option tcplog\n  http-request deny if {{ path /fe }} !{{ http_auth(L) }}\n  \
         default_backend one\n\
         backend one\n  mode http\n  http-request auth unless {{ http_auth(L) }}\n  \
         server s1 {}\n\
         userlist L\n  user u password {HASHED_RIGHT}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "credentials_on_turned_connections_are_checked_as_in_haproxy";
    let seen = alike(test, &body, with_passwords, 4, &rows);
    let statuses: Vec<bool> = ["status: 401", "status: 200", "status: 403", "status: 200"]
        .iter()
        .zip(&seen.seen)
        .map(|(status, answer)| answer.contains(status))
        .collect();
    assert_eq!(statuses, [true; 4], "{:?}", seen.seen);
}

/// A first request the backend's content rules reject, then one they let in, each on its
/// own connection.
fn rejected_then_served(front: SocketAddr) -> Vec<String> {
    let mut seen = shown(exchange(front, &[get("/r", "")]));
    seen.extend(shown(exchange(front, &[get("/a", "")])));
    seen
}

/// The backend's `tcp-request content reject` on a turned connection's first request:
/// HAProxy's stream is in the backend, which counts a session, a request and the bytes
/// read (`stot`, `req_tot`, `bin`), the frontend the denial; logged under the backend.
#[test]
fn requests_rejected_by_the_backend_count_in_it_as_in_haproxy() {
    let one = EchoServer::start("one");
    let body = format!(
        "  option tcplog\n  default_backend one\n\
         backend one\n  mode http\n  tcp-request content reject if {{ path /r }}\n  \
         server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "requests_rejected_by_the_backend_count_in_it_as_in_haproxy";
    let seen = alike(test, &body, rejected_then_served, 2, &rows);
    assert_eq!(seen.seen[0], "closed", "{:?}", seen.seen);
    assert!(
        seen.log
            .iter()
            .any(|l| l.contains(" one/<NOSRV> ") && l.contains(" PR ")),
        "{:?}",
        seen.log
    );
    assert_eq!(column(&seen, "fe/FRONTEND", "dreq"), "1");
    assert_eq!(column(&seen, "one/BACKEND", "stot"), "2");
    assert_eq!(column(&seen, "one/BACKEND", "req_tot"), "2");
}

/// A POST with its body, a GET, then a POST again on one connection, each sent whole.
fn posts_around_a_get(front: SocketAddr) -> Vec<String> {
    let post = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nhost: test.example\r\ncontent-length: 3\r\n\r\nabc")
    };
    shown(exchange(front, &[post("/a"), get("/b", ""), post("/c")]))
}

#[test]
fn request_length_counts_the_body_received_as_in_haproxy() {
    let one = EchoServer::start("one");
    // `req.len` of an HTTP request is the size of HAProxy's internal form of what came:
    // its head, and its body as far as it arrived with it. Measured in the frontend's
    // content rules (its raw bytes on the first request, then each later request's HTTP
    // size), its HTTP rules and the backend's.
    let body = format!(
        "  option tcplog\n  tcp-request inspect-delay 2s\n  \
         tcp-request content set-var(txn.l) req.len\n  \
         tcp-request content accept if {{ req.len gt 0 }}\n  \
         http-request set-header x-fl %[req.len]\n  default_backend one\n\
         backend one\n  mode http\n  http-request set-header x-bl %[req.len]\n  \
         http-response set-header x-l \"%[var(txn.l)]\"\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND")];
    let test = "request_length_counts_the_body_received_as_in_haproxy";
    let seen = alike(test, &body, posts_around_a_get, 3, &rows);
    assert_eq!(seen.seen.len(), 3, "{:?}", seen.seen);
    let [a, b, c] = [0, 1, 2].map(|i| &seen.seen[i]);
    let value = |seen: &str, name: &str| forwarded(seen, name).map(str::to_string);
    // The body's 3 bytes count: a POST's head is 16 bytes longer than the GET's here (its
    // method, its `content-length`), its `req.len` 19. The backend's rules see the header
    // the frontend's added.
    for post in [a, c] {
        assert_eq!(value(post, "x-fl").as_deref(), Some("69"), "{post}");
        assert_eq!(value(post, "x-bl").as_deref(), Some("75"), "{post}");
    }
    assert_eq!(value(b, "x-fl").as_deref(), Some("50"), "{b}");
    assert_eq!(value(b, "x-bl").as_deref(), Some("56"), "{b}");
    // The first request's raw bytes, then the later POST's HTTP size with its body.
    assert!(a.contains("(\"x-l\", \"62\")"), "{a}");
    assert!(c.contains("(\"x-l\", \"69\")"), "{c}");
}

#[test]
fn ignored_probes_of_turned_connections_are_still_logged_as_in_haproxy() {
    let one = EchoServer::start("one");
    let body = format!(
        "  option tcplog\n  option http-ignore-probes\n  timeout http-request 1s\n  \
         default_backend one\n\
         backend one\n  mode http\n  server s1 {}\n",
        one.addr
    );
    let rows = [("fe", "FRONTEND"), ("one", "BACKEND"), ("one", "s1")];
    let test = "ignored_probes_of_turned_connections_are_still_logged_as_in_haproxy";
    // HAProxy drops the option of a TCP frontend (with a warning): the first requests
    // that never came are logged and counted, the silent one answered 408, as without it.
    let seen = alike(test, &body, first_requests_failing, 4, &rows);
    assert!(seen.seen[2].starts_with("HTTP/1.1 408"), "{:?}", seen.seen);
    assert_eq!(
        seen.log.iter().filter(|l| l.contains(" PR ")).count(),
        3,
        "{:?}",
        seen.log
    );
    assert_eq!(column(&seen, "fe/FRONTEND", "req_tot"), "4");
}
