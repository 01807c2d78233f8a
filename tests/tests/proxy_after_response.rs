//! `http-after-response` and `tcp-request session` rules, beside HAProxy 2.6.
//!
//! `http-after-response`: every response the client gets goes through them, the server's
//! (after the `http-response` rules) and the proxy's own (a `deny`, a redirect, a 503 without
//! a server, the `monitor-uri` answer, the stats page), the stream's backend's rules first,
//! then the frontend's. Both proxies must send the same status and headers, log the status
//! `set-status` made and the size with the headers the rules added, and count the statuses
//! alike (the server its own, the proxies the final one).
//!
//! `tcp-request session`: after the connection rules, before any request; a rejected
//! session is reset, not logged, counted in `dses` and not in `stot`; its tracking and
//! variables are the session's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{binaries, check_alike};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The longest any read of a test waits (an upper bound, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);

/// An HTTP/1.1 server answering 404 to paths under `/missing`, 500 under `/fail`, 200 to
/// the others, each with a body of 5 bytes.
fn server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("a server socket");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    addr
}

fn serve(conn: TcpStream) {
    let mut writer = conn.try_clone().expect("a clone");
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                break;
            }
        }
        let status = match line.split(' ').nth(1) {
            Some(p) if p.starts_with("/missing") => "404 Not Found",
            Some(p) if p.starts_with("/fail") => "500 Internal Server Error",
            _ => "200 OK",
        };
        let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 5\r\n\r\nhello");
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Sends one request for `path` and reads the answer to its end: the status line and the
/// `x-` headers (the ones the rules write), in order.
fn ask(port: u16, path: &str) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let ours = lines.filter(|l| l.to_ascii_lowercase().starts_with("x-"));
    std::iter::once(first)
        .chain(ours.map(str::to_string))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A log socket in `dir` for the proxy `name`.
fn log_socket(dir: &Path, name: &str) -> (PathBuf, UnixDatagram) {
    let path = dir.join(format!("{name}.log"));
    let sock = UnixDatagram::bind(&path).expect("a log socket");
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    (path, sock)
}

fn next_log(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("a log line");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    // The message after the syslog header (`<PRI>date host tag[pid]: `).
    line.split_once("]: ")
        .map_or(line.clone(), |(_, m)| m.to_string())
        .trim_end()
        .to_string()
}

/// The requests of the `http-after-response` test: path, then what the client must get.
const EXCHANGES: [(&str, &str); 8] = [
    (
        "/",
        "HTTP/1.1 200 OK | x-order: fe-resp | x-order: be-after | x-order: fe-after | x-var: fe-be | x-st: 200",
    ),
    (
        "/deny",
        "HTTP/1.1 403 Forbidden | x-order: fe-after | x-var: fe- | x-st: 403 | x-fmt: 403-<NOSRV>",
    ),
    (
        "/redir",
        "HTTP/1.1 302 Found | x-order: fe-after | x-var: fe- | x-st: 302",
    ),
    (
        "/missing",
        "HTTP/1.1 299 Yo | x-order: fe-resp | x-order: be-after | x-order: fe-after | x-var: fe-be | x-st: 299",
    ),
    (
        "/down",
        "HTTP/1.1 503 Service Unavailable | x-order: down-after | x-order: fe-after | x-var: fe- | x-st: 503",
    ),
    (
        "/bdeny",
        "HTTP/1.1 401 Unauthorized | x-order: be-after | x-order: fe-after | x-var: fe-be | x-st: 401",
    ),
    (
        "/fail",
        "HTTP/1.1 202 Accepted | x-order: be-after | x-order: fe-after | x-var: fe-be | x-st: 202",
    ),
    (
        "/mon",
        "HTTP/1.1 200 OK | x-order: fe-after | x-var: fe- | x-st: 200",
    ),
];

/// What one proxy did: each exchange's answer and log line (none for `monitor-uri`), then
/// the stats page's answer and the counters.
fn after_response_run(binary: PathBuf, dir: &Path, name: &str) -> (Vec<String>, Vec<String>) {
    let (log, log_sock) = log_socket(dir, name);
    let socket = dir.join(format!("{name}.sock"));
    let port = free_port();
    let down = free_port();
    let cfg = format!(
        "global\n  log {log} local0\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n  log global\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n\
         frontend f\n  bind {LO}:{port}\n  log-format \"%ST %B %HU %s\"\n  monitor-uri /mon\n  stats enable\n  stats uri /stats\n\
         \x20 http-request deny if {{ path /deny }}\n  http-request redirect location /x if {{ path /redir }}\n\
         \x20 http-response set-header x-order fe-resp\n  http-after-response add-header x-order fe-after\n\
         \x20 http-after-response set-status 299 reason Yo if {{ status 404 }}\n\
         \x20 http-after-response set-status 202 if {{ status 502 }}\n  http-after-response set-var(txn.a) str(fe)\n\
         \x20 http-after-response set-header x-var %[var(txn.a)]-%[var(txn.b)]\n  http-after-response add-header x-st %[status]\n\
         \x20 http-after-response set-var-fmt(txn.f) \"%ST-%s\" if {{ status 403 }}\n\
         \x20 http-after-response add-header x-fmt %[var(txn.f)] if {{ status 403 }}\n\
         \x20 use_backend down if {{ path /down }}\n  default_backend b\n\
         backend b\n  http-response add-header x-order be-resp\n  http-after-response add-header x-order be-after\n\
         \x20 http-after-response set-var(txn.b) str(be)\n  http-response deny if {{ status 500 }}\n  http-request deny deny_status 401 if {{ path /bdeny }}\n  server s {server}\n\
         backend down\n  http-after-response add-header x-order down-after\n  server s {LO}:{down}\n",
        log = log.display(),
        sock = socket.display(),
        server = server(),
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, SocketAddr::from((LO, port)), &[]);
    let mut seen = Vec::new();
    for (path, _) in EXCHANGES {
        let answer = ask(port, path);
        let logged = if path == "/mon" {
            "not logged".to_string()
        } else {
            next_log(&log_sock)
        };
        seen.push(format!("{path}: {answer} / {logged}"));
    }
    // The page's size differs between the two (its contents do): its headers and status.
    let stats = ask(port, "/stats");
    let logged = next_log(&log_sock);
    let mut words: Vec<&str> = logged.split(' ').collect();
    if let Some(size) = words.get_mut(1) {
        *size = "N";
    }
    seen.push(format!("/stats: {stats} / {}", words.join(" ")));
    // HAProxy may log the stats page's request before it counts its status: wait until the
    // frontend has counted every request (the exchanges and the page).
    let mut csv = String::new();
    hapx_tests::wait::eventually(Duration::from_secs(5), || {
        csv = cli(&socket, "show stat");
        let counted: u64 = stat_row(&csv, "f", "FRONTEND").map_or(0, |r| {
            [
                "hrsp_1xx",
                "hrsp_2xx",
                "hrsp_3xx",
                "hrsp_4xx",
                "hrsp_5xx",
                "hrsp_other",
            ]
            .iter()
            .filter_map(|f| r.get(*f)?.parse::<u64>().ok())
            .sum()
        });
        counted == EXCHANGES.len() as u64 + 1
    });
    let rows = [
        ("f", "FRONTEND"),
        ("b", "BACKEND"),
        ("b", "s"),
        ("down", "BACKEND"),
    ];
    let counters = rows
        .iter()
        .flat_map(|&(px, sv)| {
            let r = stat_row(&csv, px, sv).expect("a stat row");
            ["hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx"]
                .map(|f| format!("{px}/{sv}.{f}={}", r[f]))
        })
        .collect();
    drop(proxy);
    (seen, counters)
}

/// Proxied and local replies through both proxies' `http-after-response` rules.
#[test]
fn after_response_rules_run_on_every_reply() {
    let test = "after-response";
    let dir = temp_dir(test);
    let mut runs = Vec::new();
    for (name, binary) in binaries(test) {
        let (seen, counters) = after_response_run(binary, &dir, name);
        for ((path, want), line) in EXCHANGES.iter().zip(&seen) {
            assert!(
                line.starts_with(&format!("{path}: {want} / ")),
                "{name}: {line}\n  expected {want}"
            );
        }
        // The status `set-status` made, the added headers counted in the size.
        for want in [
            "/: HTTP/1.1 200 OK",
            "/deny: HTTP/1.1 403 Forbidden",
            "/missing: HTTP/1.1 299 Yo",
        ] {
            assert!(
                seen.iter().any(|l| l.starts_with(want)),
                "{name}: {want} in {seen:?}"
            );
        }
        assert!(
            seen[8].starts_with(
                "/stats: HTTP/1.1 200 OK | x-order: fe-after | x-var: fe- | x-st: 200"
            ),
            "{name}: {}",
            seen[8]
        );
        // The server counts the status it sent; its proxies, the one the client got.
        for want in [
            "b/s.hrsp_4xx=1",
            "b/s.hrsp_5xx=1",
            "b/s.hrsp_2xx=1",
            "f/FRONTEND.hrsp_2xx=5",
            "down/BACKEND.hrsp_5xx=1",
        ] {
            assert!(
                counters.contains(&want.to_string()),
                "{name}: {want} in {counters:?}"
            );
        }
        runs.push((name, seen, counters));
    }
    if let [(_, hapx, hapx_counters), (_, haproxy, haproxy_counters)] = &runs[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
        // HAProxy also counts a backend's own `deny` in the backend (hapx does not yet).
        let without_backend = |c: &Vec<String>| -> Vec<String> {
            c.iter()
                .filter(|l| !l.starts_with("b/BACKEND"))
                .cloned()
                .collect()
        };
        assert_eq!(
            without_backend(hapx_counters),
            without_backend(haproxy_counters),
            "hapx-proxy, then HAProxy"
        );
    }
    for (name, seen, _) in &runs {
        let logged: Vec<&str> = (seen.iter())
            .filter_map(|l| l.split_once(" / "))
            .map(|(_, log)| log)
            .collect();
        assert_eq!(
            logged,
            [
                "200 54 / s",
                "403 238 /deny <NOSRV>",
                "302 113 /redir <NOSRV>",
                "299 61 /missing s",
                "503 264 /down s",
                "401 262 /bdeny <NOSRV>",
                "202 326 /fail s",
                "not logged",
                "200 N /stats <STATS>",
            ],
            "{name}"
        );
    }
}

/// Connects to `port`, asks for `/` and reads to the end: the answer's body, or `refused`
/// when nothing came (a reset, or a close: whether the request reached the proxy before it
/// closed, unread, decides which, with either proxy).
fn session(port: u16) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let sent = conn.write_all(b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n");
    let mut got = Vec::new();
    match (sent, conn.read_to_end(&mut got)) {
        (Ok(()), Ok(_)) if !got.is_empty() => {
            let text = String::from_utf8_lossy(&got);
            text.split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        }
        _ => "refused".into(),
    }
}

/// What one proxy did with the `tcp-request session` test's sessions: each answer, the log
/// lines, the counters and the stick entry.
fn session_run(binary: PathBuf, dir: &Path, name: &str) -> (Vec<String>, Vec<String>, String) {
    let (log, log_sock) = log_socket(dir, name);
    let socket = dir.join(format!("{name}.sock"));
    let (port, tcp_port) = (free_port(), free_port());
    let cfg = format!(
        "global\n  log {log} local0\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n  log global\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n\
         frontend f\n  bind {LO}:{port}\n  log-format \"%ST %HU %[var(sess.x)]\"\n\
         \x20 stick-table type ip size 10 store conn_cnt,conn_cur,sess_cnt,http_req_cnt,gpc0\n\
         \x20 tcp-request session track-sc1 src\n  tcp-request session sc-inc-gpc0(1)\n\
         \x20 tcp-request session set-var(sess.x) str(kept)\n  tcp-request session reject if {{ sc1_get_gpc0 gt 2 }}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"%[sc1_get_gpc0] %[var(sess.x)]\"\n\
         frontend t\n  mode tcp\n  bind {LO}:{tcp_port}\n  option tcplog\n  tcp-request session reject\n  default_backend none\n\
         backend none\n  mode tcp\n  server s {LO}:1\n",
        log = log.display(),
        sock = socket.display(),
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, SocketAddr::from((LO, port)), &[]);
    let mut answers: Vec<String> = (0..4).map(|_| session(port)).collect();
    answers.push(format!("tcp: {}", session(tcp_port)));
    let logged = (0..2).map(|_| next_log(&log_sock)).collect::<Vec<_>>();
    // Nothing more: the rejected sessions are not logged (a line would be there by now, as
    // the counters below are read after the sessions ended).
    let idle = || cli(&socket, "show info").contains("\nCurrConns: 0\n");
    assert!(wait_until(PATIENCE, idle), "{name}: a session left");
    log_sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        log_sock.recv(&mut buf).is_err(),
        "{name}: a rejected session was logged"
    );
    let csv = cli(&socket, "show stat");
    let mut counters = Vec::new();
    for px in ["f", "t"] {
        let r = stat_row(&csv, px, "FRONTEND").expect("a stat row");
        counters.extend(["stot", "dcon", "dses"].map(|f| format!("{px}.{f}={}", r[f])));
    }
    let table = cli(&socket, "show table f");
    let entry = table
        .lines()
        .find(|l| l.contains("key=127.0.0.1"))
        .and_then(|l| l.split_once(" exp=0 "))
        .map_or(String::new(), |(_, data)| data.to_string());
    drop(proxy);
    answers.extend(logged);
    (answers, counters, entry)
}

/// Session rules: tracking, counting and variables, then rejections, beside HAProxy.
#[test]
fn session_rules_reject_before_any_request() {
    let test = "tcp-request-session";
    let dir = temp_dir(test);
    let mut runs = Vec::new();
    for (name, binary) in binaries(test) {
        let (answers, counters, entry) = session_run(binary, &dir, name);
        assert_eq!(
            answers,
            [
                "1 kept",
                "2 kept",
                "refused",
                "refused",
                "tcp: refused",
                "200 / kept",
                "200 / kept"
            ],
            "{name}"
        );
        assert_eq!(
            counters,
            [
                "f.stot=2", "f.dcon=0", "f.dses=2", "t.stot=0", "t.dcon=0", "t.dses=1"
            ],
            "{name}"
        );
        assert_eq!(
            entry, "gpc0=4 conn_cnt=4 conn_cur=0 sess_cnt=2 http_req_cnt=2",
            "{name}"
        );
        runs.push((answers, counters, entry));
    }
    if let [hapx, haproxy] = &runs[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
}

const DEFAULTS: &str =
    "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n";

/// Where the rules are allowed and which actions, as HAProxy words it.
#[test]
fn rule_mistakes_are_named_as_haproxy_names_them() {
    let text = format!(
        "{DEFAULTS}frontend f\n  bind 127.0.0.1:1\n  tcp-request content accept\n\
         \x20 tcp-request session accept\n  http-after-response set-header a b if {{ path /x }}\n  default_backend b\n\
         backend b\n  tcp-request session accept\n  server s 127.0.0.1:1\n"
    );
    let (code, messages) = check_alike("after-response-check", &text);
    assert_ne!(code, 0);
    let has = |m: &str| messages.iter().any(|l| l.contains(m));
    assert!(
        has(
            "case.cfg:9] : a 'tcp-request' rule placed after a 'tcp-request content' rule will still be processed before."
        ),
        "{messages:?}"
    );
    assert!(
        has(
            "case.cfg:10] : anonymous acl will never match because it uses keyword 'path' which is incompatible with 'frontend http-response header rule'"
        ),
        "{messages:?}"
    );
    assert!(
        has(
            "case.cfg:13] : tcp-request session is not allowed because backend b is not a frontend"
        ),
        "{messages:?}"
    );
    // An action HAProxy does not take there: its parser stops at it (the last line here).
    let unknown = format!(
        "{DEFAULTS}listen l\n  bind 127.0.0.1:1\n  server s 127.0.0.1:1\n  http-after-response deny\n"
    );
    let (code, messages) = check_alike("after-response-action", &unknown);
    assert_ne!(code, 0);
    assert!(
        has_in(
            &messages,
            "case.cfg:9]: 'http-after-response' expects 'ot-group', 'add-header', 'allow', 'capture', 'del-header', 'replace-header', 'replace-value', 'set-header', 'set-status', 'strict-mode', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', but got 'deny'."
        ),
        "{messages:?}"
    );
    // In TCP mode the rules are dropped with a warning.
    let tcp = "defaults\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
               listen t\n  mode tcp\n  bind 127.0.0.1:1\n  http-after-response set-header a b\n  server s 127.0.0.1:1\n";
    let (code, messages) = check_alike("after-response-tcp", tcp);
    assert_eq!(code, 0, "{messages:?}");
    assert_eq!(
        messages,
        ["WARNING: 'http-after-response' rules ignored for proxy 't' as they require HTTP mode."]
    );
}

fn has_in(messages: &[String], m: &str) -> bool {
    messages.iter().any(|l| l.contains(m))
}
