//! `tcp-response inspect-delay` and `tcp-response content` rules with the `res.len`,
//! `res.payload` and `res.payload_lv` fetches, beside HAProxy 2.6: on a server that sends a
//! banner first (SSH-like) and on one that answers the client's request. Both proxies must
//! give each client the same bytes and end, log the same line (`PD` for a rejection), show
//! the same counters (`dresp`, `bout`) and treat the server alike (a FIN after `reject`, a
//! reset after `close`); and both must say the same of the same configuration mistakes.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{check_alike, check_messages, masked_timers, section_counters};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
const BANNER: &[u8] = b"SSH-2.0-test\r\n";
/// The longest any read of a test waits (an upper bound, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);

/// A server on loopback that sends `banner` at once on each connection, then answers each
/// read with `RE:` and what it read; each connection's end (`eof` or `reset`) is reported.
fn server(banner: &'static [u8]) -> (SocketAddr, Receiver<&'static str>) {
    let listener = TcpListener::bind((LO, 0)).expect("a server socket");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx: Sender<&'static str> = tx.clone();
            std::thread::spawn(move || serve(conn, banner, &tx));
        }
    });
    (addr, rx)
}

fn serve(mut conn: TcpStream, banner: &[u8], ended: &Sender<&'static str>) {
    let _ = conn.write_all(banner);
    let mut buf = [0u8; 4096];
    let end = loop {
        match conn.read(&mut buf) {
            Ok(0) => break "eof",
            Ok(n) => {
                let mut answer = b"RE:".to_vec();
                answer.extend_from_slice(&buf[..n]);
                let _ = conn.write_all(&answer);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break "reset",
            Err(_) => break "error",
        }
    };
    let _ = ended.send(end);
}

/// One client: connects to `port`, sends `send`, then reads `expect` bytes (a kept session,
/// which it then closes itself) or, with `expect` None, everything until the proxy closes.
/// What it received, and `closed` when the proxy closed the connection.
fn client(port: u16, send: &[u8], expect: Option<usize>) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(send).unwrap();
    let mut got = Vec::new();
    let end = match expect {
        Some(n) => {
            got.resize(n, 0);
            conn.read_exact(&mut got).map_or("error", |_| "kept")
        }
        None => conn.read_to_end(&mut got).map_or("error", |_| "closed"),
    };
    format!("{:?} {end}", String::from_utf8_lossy(&got))
}

/// The listen sections compared: name, rules, and whether its server sends a banner first.
const CASES: [(&str, &str, bool); 6] = [
    (
        "rej",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,3) -m bin 535348 }\n",
        true,
    ),
    (
        "close",
        "  tcp-response inspect-delay 5s\n  tcp-response content close if { res.payload(0,3) -m bin 535348 }\n",
        true,
    ),
    // Without a delay the rules decide at once, on nothing yet: the banner passes.
    (
        "nodelay",
        "  tcp-response content reject if { res.payload(0,3) -m bin 535348 }\n",
        true,
    ),
    (
        "after",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,5) -m bin 52453a4243 }\n  tcp-response content accept if { res.len gt 4 }\n",
        false,
    ),
    (
        "lv",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload_lv(3,1) -m bin 4242 }\n  tcp-response content accept if { res.len ge 6 }\n",
        false,
    ),
    // A rule that never decides: the data waits for the delay's end, then passes.
    (
        "wait",
        "  tcp-response inspect-delay 500ms\n  tcp-response content reject if { res.len gt 100 }\n",
        true,
    ),
];

/// The clients, in order: section, what it sends, how many bytes it waits for (None: until
/// the proxy closes).
const CLIENTS: [(&str, &str, Option<usize>); 8] = [
    ("rej", "", None),
    ("close", "", None),
    ("nodelay", "", Some(BANNER.len())),
    ("after", "AB", Some(5)),
    ("after", "BC", None),
    ("lv", "\u{2}AA", Some(6)),
    ("lv", "\u{2}BB", None),
    ("wait", "x", Some(BANNER.len() + 4)),
];

/// What one proxy did with each client: the client's view, the server's end of its
/// connection and the log line (masked), then the counters.
fn run(binary: PathBuf, dir: &Path, name: &str) -> (Vec<String>, Vec<String>) {
    let (banner, banner_ends) = server(BANNER);
    let (answering, answering_ends) = server(b"");
    let log = dir.join(format!("{name}.log"));
    let log_sock = UnixDatagram::bind(&log).expect("a log socket");
    log_sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let socket = dir.join(format!("{name}.sock"));
    let mut cfg = format!(
        "global\n  log {} local0\n  stats socket {} level admin\ndefaults\n  mode tcp\n  log global\n  option tcplog\n  \
         timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n",
        log.display(),
        socket.display()
    );
    let mut ports = Vec::new();
    for (section, rules, banner_first) in CASES {
        let port = free_port();
        let to = if banner_first { banner } else { answering };
        cfg += &format!("listen {section}\n  bind {LO}:{port}\n{rules}  server s {to}\n");
        ports.push((section, port, banner_first));
    }
    let first = SocketAddr::from((LO, ports[0].1));
    let proxy = Proxy::start_with(binary, dir, name, &cfg, first, &[]);
    let mut seen = Vec::new();
    for (section, send, expect) in CLIENTS {
        let (_, port, banner_first) = *ports.iter().find(|(s, ..)| *s == section).unwrap();
        // The previous session gone (its log line goes first), as its count shows in `%ac`.
        let idle = || cli(&socket, "show info").contains("\nCurrConns: 0\n");
        assert!(wait_until(PATIENCE, idle), "{name}: a session left");
        let got = client(port, send.as_bytes(), expect);
        let ends = if banner_first {
            &banner_ends
        } else {
            &answering_ends
        };
        let server_end = ends.recv_timeout(PATIENCE).unwrap_or("none");
        let mut buf = [0u8; 2048];
        let n = log_sock.recv(&mut buf).expect("a log line");
        let line = masked_timers(&String::from_utf8_lossy(&buf[..n]), 3);
        seen.push(format!(
            "{section} {send:?}: {got}, server {server_end}, log {line}"
        ));
    }
    let csv = cli(&socket, "show stat");
    let counters = section_counters(
        &csv,
        ports.iter().map(|(section, ..)| *section),
        &["stot", "bin", "bout", "dresp"],
    );
    drop(proxy);
    (seen, counters)
}

/// Rejected and closed sessions, banner and answer inspection, beside HAProxy.
#[test]
fn response_rules_decide_on_what_the_server_sends() {
    let test = "tcp-response";
    let dir = temp_dir(test);
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    let mut runs = Vec::new();
    for (name, binary) in list {
        let (seen, counters) = run(binary, &dir, name);
        let expected = [
            r#"rej "": "" closed, server eof, log rej rej/s T/T/T 14 PD"#,
            r#"close "": "SSH-2.0-test\r\n" closed, server reset, log close close/s T/T/T 14 --"#,
            r#"nodelay "": "SSH-2.0-test\r\n" kept, server eof, log nodelay nodelay/s T/T/T 14 --"#,
            r#"after "AB": "RE:AB" kept, server eof, log after after/s T/T/T 5 --"#,
            r#"after "BC": "" closed, server eof, log after after/s T/T/T 5 PD"#,
            r#"lv "\u{2}AA": "RE:\u{2}AA" kept, server eof, log lv lv/s T/T/T 6 --"#,
            r#"lv "\u{2}BB": "" closed, server eof, log lv lv/s T/T/T 6 PD"#,
            r#"wait "x": "SSH-2.0-test\r\nRE:x" kept, server eof, log wait wait/s T/T/T 18 --"#,
        ];
        for (line, want) in seen.iter().zip(expected) {
            assert!(line.starts_with(want), "{name}: {line}\n  expected {want}");
        }
        for want in [
            "rej/FRONTEND.dresp=1",
            "rej/s.dresp=1",
            "rej/BACKEND.bout=14",
        ] {
            assert!(
                counters.contains(&want.to_string()),
                "{name}: {want} in {counters:?}"
            );
        }
        for want in ["after/BACKEND.dresp=1", "lv/s.dresp=1", "close/s.dresp=0"] {
            assert!(
                counters.contains(&want.to_string()),
                "{name}: {want} in {counters:?}"
            );
        }
        runs.push((seen, counters));
    }
    if let [hapx, haproxy] = &runs[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
}

const DEFAULTS: &str =
    "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n";

/// The keyword's own mistakes, where it is allowed, its actions and the fetches' places.
#[test]
fn response_rule_mistakes_are_named_as_haproxy_names_them() {
    let text = format!(
        "{DEFAULTS}frontend f\n  bind 127.0.0.1:1\n  tcp-response inspect-delay 1s\n  tcp-response content reject if {{ res.len gt 0 }}\n  default_backend b\n\
         backend b\n  tcp-response inspect-delay 1s\n  tcp-response inspect-delay 2s\n  tcp-response content accept extra\n  tcp-response content foo if TRUE\n\
         \x20 tcp-response content track-sc0 src\n  tcp-response inspect-delay\n  tcp-response inspect-delay -1\n  tcp-response inspect-delay 10x\n  tcp-response bogus\n  tcp-response\n\
         \x20 tcp-response content accept if {{ req.len gt 0 }}\n  tcp-response content reject if {{ rep_ssl_hello_type 2 }} {{ req.ssl_hello_type 1 }}\n\
         \x20 tcp-response content accept unless {{ res.payload_lv(0,2,4,1) -m bin 00 }}\n  tcp-response content accept if {{ res.payload(0) -m bin 00 }}\n\
         \x20 tcp-response content accept if {{ be_name b }} {{ nosuch }}\n  tcp-response content close if {{ res.payload(0,3) -m bin 414243 }} || {{ res.payload_lv(0,1) -m bin 41 }}\n\
         \x20 tcp-response content accept if {{ path / }}\n  server s 127.0.0.1:1\n\
         listen l\n  bind 127.0.0.1:2\n  tcp-response content reject if {{ src 10.0.0.1 }} {{ req.len gt 1 }}\n  server s 127.0.0.1:1\n"
    );
    let (code, messages) = check_alike("tcp-response-check", &text);
    assert_ne!(code, 0);
    let has = |m: &str| messages.iter().any(|l| l.contains(m));
    assert!(
        has(
            "case.cfg:8] : tcp-response inspect-delay is only allowed in 'backend' sections or 'defaults' section with a name"
        ),
        "{messages:?}"
    );
    assert!(
        has("ignoring tcp-response inspect-delay (was already defined) in backend 'b'"),
        "{messages:?}"
    );
    assert!(has("(got 'track-sc0')"), "{messages:?}");
    assert!(
        has("expects a positive delay in milliseconds, in backend 'b' (unexpected character '-')"),
        "{messages:?}"
    );
    assert!(
        has(
            "keyword 'req.ssl_hello_type' which is incompatible with 'backend tcp-response content rule'"
        ),
        "{messages:?}"
    );
    // A listen section's rules are checked as a backend's too.
    assert!(
        has(
            "case.cfg:32] : anonymous acl will never match in 'tcp-response content' because it uses keyword 'req.len' which is incompatible with 'backend tcp-response content rule'"
        ),
        "{messages:?}"
    );
}

/// `res.*` fetches in formats: refused where no response buffer is (a request rule, the log
/// line), ignored with a warning in an HTTP response rule.
#[test]
fn response_fetches_in_formats_as_haproxy() {
    let rules = format!(
        "{DEFAULTS}backend h\n  mode http\n  http-response set-header x %[res.payload(0,3)]\n  http-request set-header y %[res.len]\n  server s 127.0.0.1:1\n"
    );
    let (code, messages) = check_alike("tcp-response-formats", &rules);
    assert_ne!(code, 0);
    let has = |m: &str| messages.iter().any(|l| l.contains(m));
    assert!(
        has("L6 sample fetch <res.payload(0,3)]> ignored in HTTP log-format string."),
        "{messages:?}"
    );
    assert!(
        has(
            "error detected in backend 'h' while parsing 'http-request set-header' rule : sample fetch <res.len]> may not be reliably used here because it needs 'response buffer' which is not available here."
        ),
        "{messages:?}"
    );
    let log_line = format!(
        "{DEFAULTS}listen a\n  bind 127.0.0.1:1\n  log-format \"RL=%[res.len]\"\n  server s 127.0.0.1:1\n"
    );
    // Only the message itself is compared here: HAProxy words its place differently
    // (`Parsing [F:L]:`) and adds a warning about the proxy's missing log address.
    let dir = temp_dir("tcp-response-log-format");
    let file = dir.join("case.cfg");
    std::fs::write(&file, log_line).unwrap();
    let mut binaries = vec![hapx_tests::bins::path("hapx-proxy")];
    if hapx_tests::require::path("tcp-response-log-format", Path::new(HAPROXY), "HAProxy") {
        binaries.push(PathBuf::from(HAPROXY));
    }
    for binary in binaries {
        let (code, messages) = check_messages(&binary, &file);
        assert_ne!(code, 0, "{binary:?}");
        assert!(
            (messages.iter()).any(|l| l.contains("failed to parse log-format : sample fetch <res.len]> may not be reliably used here because it needs 'response buffer' which is not available here.")),
            "{binary:?}: {messages:?}"
        );
    }
}

/// What hapx does not run is refused, never left out: `tcp-response content` actions
/// other than accept/close/reject, sc-*0 and the variable ones (`silent-drop` here). (Its
/// rules reading the response's bytes in an HTTP backend run: `proxy_tcp_response_http`.)
#[test]
fn response_rules_hapx_cannot_run_are_refused() {
    let dir = temp_dir("tcp-response-refused");
    let text = format!(
        "{DEFAULTS}backend b\n  tcp-response content silent-drop\n  server s 127.0.0.1:1\n"
    );
    let file = dir.join("case.cfg");
    std::fs::write(&file, text).unwrap();
    let (code, messages) = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
    assert_ne!(code, 0, "{messages:?}");
    assert!(
        (messages.iter()).any(|m| m.contains("not implemented by hapx")),
        "{messages:?}"
    );
}

/// `res.*` fetches in request-side rules: never matching there (a warning naming the rule),
/// refused as a stick key, allowed in `http-response`. (In an HTTP proxy HAProxy warns that
/// L6 fetches are ignored, yet gives `res.len` its internal HTX size; hapx gives it no value.)
#[test]
fn response_fetches_in_request_rules_as_haproxy() {
    let text = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
        frontend f\n  bind 127.0.0.1:1\n  tcp-request content accept if { res.len gt 0 }\n\
        \x20 http-request deny if { res.payload(0,1) -m bin 00 }\n  http-response deny if { res.len gt 0 }\n  default_backend b\n\
        backend b\n  http-response deny if { res.payload(0,1) -m bin 00 }\n  server s 127.0.0.1:1\n\
        backend t\n  mode tcp\n  tcp-request content accept if { res.len gt 0 }\n  use-server s if { res.len gt 0 }\n\
        \x20 stick on res.payload(0,4)\n  stick match res.hdr(x)\n  stick on status,lower\n  server s 127.0.0.1:1\n";
    let (code, messages) = check_alike("tcp-response-request-rules", text);
    assert_ne!(code, 0);
    let has = |m: &str| messages.iter().any(|l| l.contains(m));
    assert!(
        has(
            "uses keyword 'res.len' which is incompatible with 'backend use-server, balance or stick-match rule'"
        ),
        "{messages:?}"
    );
    assert!(
        has(
            "'stick': fetch method 'res.payload' extracts information from 'response buffer', none of which is available during request."
        ),
        "{messages:?}"
    );
    assert!(
        !has("incompatible with 'frontend http-response header rule'"),
        "{messages:?}"
    );
}

/// One case of [`compare_cases`]: a `listen` section's own lines, its server's behaviour
/// (what it reports of its side) and its client's (what it saw).
struct Case {
    name: &'static str,
    lines: &'static str,
    serve: fn(TcpStream) -> String,
    client: fn(u16) -> String,
}

/// Runs each case against hapx-proxy, and HAProxy when installed (the same expected): per
/// case, the client's view, the server's and the log line from the section's name on
/// (timers masked). hapx-proxy's result is returned for the caller's own checks.
fn compare_cases(test: &str, cases: &[Case]) -> Vec<String> {
    let dir = temp_dir(test);
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    let runs: Vec<Vec<String>> = (list.into_iter())
        .map(|(name, binary)| run_cases(binary, &dir, name, cases))
        .collect();
    if let [hapx, haproxy] = &runs[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
    runs.into_iter().next().unwrap()
}

fn run_cases(binary: PathBuf, dir: &Path, name: &str, cases: &[Case]) -> Vec<String> {
    let log = dir.join(format!("{name}.log"));
    let log_sock = UnixDatagram::bind(&log).expect("a log socket");
    log_sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let socket = dir.join(format!("{name}.sock"));
    // The readiness probe goes to a section that logs nothing (before the defaults).
    let ready = free_port();
    let mut cfg = format!(
        "global\n  log {} local0\n  stats socket {} level admin\nlisten ready\n  mode tcp\n  bind {LO}:{ready}\n  \
         timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n  server s {LO}:1\n\
         defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n",
        log.display(),
        socket.display()
    );
    let mut targets = Vec::new();
    for case in cases {
        let listener = TcpListener::bind((LO, 0)).expect("a server socket");
        let port = free_port();
        let to = listener.local_addr().unwrap();
        cfg += &format!(
            "listen {}\n  bind {LO}:{port}\n{}  server s {to}\n",
            case.name, case.lines
        );
        let (tx, rx) = channel();
        let serve = case.serve;
        std::thread::spawn(move || {
            if let Some(conn) = listener.incoming().flatten().next() {
                let _ = tx.send(serve(conn));
            }
        });
        targets.push((port, rx));
    }
    let proxy = Proxy::start_with(binary, dir, name, &cfg, SocketAddr::from((LO, ready)), &[]);
    let mut seen = Vec::new();
    for (case, (port, server_saw)) in cases.iter().zip(targets) {
        let idle = || cli(&socket, "show info").contains("\nCurrConns: 0\n");
        assert!(wait_until(PATIENCE, idle), "{name}: a session left");
        let got = (case.client)(port);
        let mut buf = [0u8; 2048];
        let n = log_sock.recv(&mut buf).expect("a log line");
        let line = masked_timers(&String::from_utf8_lossy(&buf[..n]), 3);
        let server = server_saw
            .recv_timeout(2 * PATIENCE)
            .unwrap_or("nothing".into());
        seen.push(format!(
            "{}: client {got}; server {server}; log {line}",
            case.name
        ));
    }
    // The error counters of each case's backend and server.
    let csv = cli(&socket, "show stat");
    for case in cases {
        for row in ["BACKEND", "s"] {
            let r = stat_row(&csv, case.name, row).expect("a stat row");
            seen.push(format!(
                "{}/{row}: dresp={} eresp={}",
                case.name, r["dresp"], r["eresp"]
            ));
        }
    }
    drop(proxy);
    seen
}

/// What a peer sends until it ends: its bytes (their count past 40) and how it ended.
fn read_to_end(conn: &mut TcpStream) -> String {
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let end = loop {
        match conn.read(&mut buf) {
            Ok(0) => break "FIN",
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break "RST",
            Err(_) => break "nothing more",
        }
    };
    match got.len() {
        0..=40 => format!("{:?} then {end}", String::from_utf8_lossy(&got)),
        n => format!("{n} bytes then {end}"),
    }
}

/// A client that sends nothing and reads until the proxy ends the session, which it says
/// ended `soon` within 5 s (each session it meets ends within one or two, or at once).
fn quiet_client(port: u16) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    let start = std::time::Instant::now();
    let got = read_to_end(&mut conn);
    format!("{got} ({})", soon_or_late(start))
}

fn soon_or_late(start: std::time::Instant) -> &'static str {
    if start.elapsed() < Duration::from_secs(5) {
        "soon"
    } else {
        "late"
    }
}

/// A client that sends `hello` at once, then reads until the proxy ends the session.
fn hello_client(port: u16) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.write_all(b"hello\n").unwrap();
    read_to_end(&mut conn)
}

/// A server that says nothing and reads until the proxy ends the session.
fn quiet_server(mut conn: TcpStream) -> String {
    read_to_end(&mut conn)
}

/// A client that sends until the proxy takes no more (the server reads nothing), then
/// waits for the proxy to end the session.
fn flooding_client(port: u16) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let chunk = vec![b'x'; 65536];
    while conn.write(&chunk).is_ok() {}
    let start = std::time::Instant::now();
    let got = read_to_end(&mut conn);
    format!("{got} ({})", soon_or_late(start))
}

/// A server that reads nothing and closes after 8 s: long after the session's timeouts.
fn deaf_server(conn: TcpStream) -> String {
    std::thread::sleep(Duration::from_secs(8));
    drop(conn);
    "closed".into()
}

/// Client data towards a server that stops reading does not stall the inspection: the
/// session ends at `timeout server` (`sD`), as HAProxy's.
#[test]
fn client_data_to_a_deaf_server_ends_at_timeout_server() {
    let seen = compare_cases(
        "tcp-response-deaf",
        &[Case {
            name: "deaf",
            lines: "  timeout client 2s\n  timeout server 2s\n  tcp-response inspect-delay 1s\n  tcp-response content reject if { res.len gt 0 }\n",
            serve: deaf_server,
            client: flooding_client,
        }],
    );
    assert!(seen[0].contains(r#"client "" then FIN (soon)"#), "{seen:?}");
    assert!(seen[0].contains(" 0 sD"), "{seen:?}");
}

/// `timeout server` and `timeout client` end a session whose response is held, long before
/// the inspect-delay (`sD`, `cD`), as HAProxy's.
#[test]
fn timeouts_end_the_wait_for_the_response() {
    let rules =
        "  tcp-response inspect-delay 8s\n  tcp-response content reject if { res.len gt 100 }\n";
    let seen = compare_cases(
        "tcp-response-timeouts",
        &[
            Case {
                name: "tsrv",
                lines: concat_lines("  timeout server 1s\n", rules),
                serve: quiet_server,
                client: quiet_client,
            },
            Case {
                name: "tcli",
                lines: concat_lines("  timeout client 1s\n", rules),
                serve: quiet_server,
                client: quiet_client,
            },
            // What was held goes to the client before the end, counted.
            Case {
                name: "theld",
                lines: concat_lines("  timeout client 1s\n", rules),
                serve: banner_server,
                client: quiet_client,
            },
        ],
    );
    assert!(seen[0].contains(r#"client "" then FIN (soon)"#), "{seen:?}");
    assert!(seen[0].contains(" 0 sD"), "{seen:?}");
    assert!(seen[1].contains(r#"client "" then FIN (soon)"#), "{seen:?}");
    assert!(seen[1].contains(" 0 cD"), "{seen:?}");
    let held = r#"client "SSH-2.0-test\r\n" then FIN (soon)"#;
    assert!(seen[2].contains(held), "{seen:?}");
    assert!(seen[2].contains(" 14 cD"), "{seen:?}");
}

/// Both lines of a section, kept for the whole test run (a `Case` holds static text).
fn concat_lines(a: &str, b: &str) -> &'static str {
    Box::leak(format!("{a}{b}").into_boxed_str())
}

/// A server that sends `SS`, then resets its connection.
fn resetting_server(mut conn: TcpStream) -> String {
    conn.write_all(b"SS").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    socket2::SockRef::from(&conn)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    "reset".into()
}

/// A server reset while the rules wait ends the response: the rules decide on what came,
/// it goes to the client, and the session ends with `SD`.
#[test]
fn a_server_reset_during_the_hold_passes_on_what_it_sent() {
    let seen = compare_cases(
        "tcp-response-reset",
        &[
            Case {
                name: "rst",
                lines: "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len gt 100 }\n",
                serve: resetting_server,
                client: quiet_client,
            },
            // Decided on the reset only: rejected (`PD`), the server's error counted still.
            Case {
                name: "rstrej",
                lines: "  tcp-response inspect-delay 5s\n  tcp-response content accept if { res.len ge 3 }\n  tcp-response content reject\n",
                serve: resetting_server,
                client: quiet_client,
            },
        ],
    );
    assert!(
        seen[0].contains(r#"client "SS" then FIN (soon)"#),
        "{seen:?}"
    );
    assert!(seen[0].contains(" 2 SD"), "{seen:?}");
    assert!(seen[1].contains(r#"client "" then FIN (soon)"#), "{seen:?}");
    assert!(seen[1].contains(" 2 PD"), "{seen:?}");
    for row in ["rst/BACKEND", "rst/s", "rstrej/s"] {
        let counted = |l: &String| l.starts_with(row) && l.ends_with("eresp=1");
        assert!(seen.iter().any(counted), "{row}: {seen:?}");
    }
}

/// A server that sends 20000 bytes at once, then reads until the proxy ends.
fn big_server(mut conn: TcpStream) -> String {
    conn.write_all(&[b'B'; 20000]).unwrap();
    read_to_end(&mut conn)
}

/// A server that waits for the client's `hello\n` before it sends 20000 bytes: what reaches
/// it then no longer races the proxy's verdict on its response (HAProxy, on a loaded host,
/// sometimes judged the response before it had passed the hello on).
fn big_server_after_hello(conn: TcpStream) -> String {
    after_hello(conn, big_server)
}

/// [`banner_server`] once the client's `hello\n` came: for the same reason (hapx, on a
/// loaded host, sometimes passed the hello on before it judged the banner).
fn banner_server_after_hello(conn: TcpStream) -> String {
    after_hello(conn, banner_server)
}

/// `serve` once the client's `hello\n` came.
fn after_hello(mut conn: TcpStream, serve: fn(TcpStream) -> String) -> String {
    let mut hello = [0u8; 6];
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    if conn.read_exact(&mut hello).is_err() {
        return "no hello".into();
    }
    serve(conn)
}

/// A server that sends an SSH banner at once, then reads until the proxy ends.
fn banner_server(mut conn: TcpStream) -> String {
    conn.write_all(BANNER).unwrap();
    read_to_end(&mut conn)
}

/// `reject` ends both sides with a FIN, after what each had sent (a client that sent at
/// once, a server that sent more than is held): no reset, as HAProxy. The held part is
/// HAProxy's buffer less its rewrite reserve: 15360 bytes.
#[test]
fn reject_closes_both_sides_with_a_fin() {
    let seen = compare_cases(
        "tcp-response-reject-fin",
        &[
            Case {
                name: "banner",
                lines: "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,3) -m bin 535348 }\n",
                serve: banner_server_after_hello,
                client: hello_client,
            },
            Case {
                name: "big",
                lines: "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len ge 15000 }\n",
                serve: big_server_after_hello,
                client: hello_client,
            },
        ],
    );
    assert!(seen[0].contains(r#"client "" then FIN"#), "{seen:?}");
    // (What the server read after the hello: nothing, then the proxy's FIN.)
    assert!(seen[0].contains(r#"server "" then FIN"#), "{seen:?}");
    assert!(seen[0].contains(" 14 PD"), "{seen:?}");
    assert!(seen[1].contains(r#"client "" then FIN"#), "{seen:?}");
    assert!(
        seen[1].contains("then FIN; log"),
        "the server's end: {seen:?}"
    );
    assert!(seen[1].contains(" 15360 PD"), "{seen:?}");
}

/// A client that sends 20000 bytes, then reads for three seconds: longer than its server
/// reads (one second of quiet), so the server's close reaches it through either proxy.
fn big_client(port: u16) -> String {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.write_all(&[b'C'; 20000]).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 64];
    match conn.read(&mut buf) {
        Ok(n) => format!("{n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => "reset".into(),
        Err(_) => "nothing".into(),
    }
}

/// A server that reads for a second, and says how much it got.
fn counting_server(mut conn: TcpStream) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 65536];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        got += n;
    }
    format!("{got} bytes")
}

/// Rules stop waiting once 15360 bytes are held, on the response side and on the request
/// side alike: a rule on 16384 bytes never matches, one on 15360 does.
#[test]
fn inspection_holds_15360_bytes_at_most() {
    let seen = compare_cases(
        "tcp-response-limit",
        &[
            Case {
                name: "res15360",
                lines: "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len eq 15360 }\n",
                serve: big_server,
                client: quiet_client,
            },
            Case {
                name: "res16384",
                lines: "  timeout server 1s\n  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len ge 16384 }\n",
                serve: big_server,
                client: quiet_client,
            },
            Case {
                name: "req",
                lines: "  tcp-request inspect-delay 5s\n  tcp-request content reject if { req.len ge 16384 }\n  tcp-request content accept if { req.len ge 15360 }\n",
                serve: counting_server,
                client: big_client,
            },
        ],
    );
    assert!(seen[0].contains(" 15360 PD"), "{seen:?}");
    assert!(seen[1].contains("client 20000 bytes"), "{seen:?}");
    assert!(seen[2].contains("server 20000 bytes"), "{seen:?}");
}

/// A ServerHello record (handshake, TLS 1.2) of 104 bytes: a message of 100.
const SERVER_HELLO: [u8; 9] = [22, 3, 3, 0, 104, 2, 0, 0, 100];

/// A server that sends 12 bytes of a ServerHello, the rest a second later.
fn slow_hello_server(mut conn: TcpStream) -> String {
    let mut record = SERVER_HELLO.to_vec();
    record.extend_from_slice(&[b'R'; 100]);
    conn.write_all(&record[..12]).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    conn.write_all(&record[12..]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    "sent".into()
}

/// A server that sends an alert record whose byte 5 is 2, and closes.
fn alert_server(mut conn: TcpStream) -> String {
    conn.write_all(&[21, 3, 3, 0, 4, 2, 0, 0, 0]).unwrap();
    read_to_end(&mut conn)
}

/// `res.ssl_hello_type` as HAProxy reads it: only once the whole first handshake message is
/// in (a partial ServerHello passes at the delay's end), on any SSLv3 record type.
#[test]
fn ssl_hello_type_waits_for_the_whole_message() {
    let rule = "  tcp-response inspect-delay 500ms\n  tcp-response content reject if { res.ssl_hello_type 2 }\n";
    let seen = compare_cases(
        "tcp-response-hello",
        &[
            Case {
                name: "partial",
                lines: rule,
                serve: slow_hello_server,
                client: quiet_client,
            },
            Case {
                name: "alert",
                lines: rule,
                serve: alert_server,
                client: quiet_client,
            },
        ],
    );
    assert!(seen[0].contains("client 109 bytes then FIN"), "{seen:?}");
    assert!(seen[0].contains(" 109 --"), "{seen:?}");
    assert!(seen[1].contains(" 9 PD"), "{seen:?}");
}
