//! Log lines: what hapx-proxy sends to a syslog target next to what HAProxy 2.6 sends for the
//! same traffic and configuration (`option tcplog`, `option httplog [clf]`, a refused server,
//! `option dontlognull`, `log-format` with every variable and flag, captures, unique ids,
//! `log-format-sd`, `log-tag`, each `log ... format`, `len`, `sample` and levels), and the
//! configuration errors both give for bad formats. Both are captured on a UDP socket on loopback and compared field by
//! field with every number masked (times, ports, pids and counts differ between any two runs).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::check_both;
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// What a test does through the proxy at `front` once.
type Traffic = fn(SocketAddr);

/// A test's configuration: `global` lines after the log target, the target's options
/// (`len 80 format rfc5424`...), the proxies' mode, and the rest of `frontend fe` followed
/// by `backend be`.
#[derive(Clone, Copy)]
struct Setup<'a> {
    global: &'a str,
    /// Options of the frontend's `bind` line.
    bind: &'a str,
    target: &'a str,
    mode: &'a str,
    body: &'a str,
}

/// Log lines sent by `binary` while `traffic` runs through `frontend fe` (which uses
/// `backend be`) followed by `body`: the rest of the frontend, then the backend.
fn log_lines(binary: &Path, test: &str, mode: &str, body: &str, traffic: Traffic) -> Vec<String> {
    let setup = Setup::new(mode, body);
    log_lines_of(binary, test, setup, traffic)
}

impl<'a> Setup<'a> {
    /// A `local0` target and nothing more in `global`.
    fn new(mode: &'a str, body: &'a str) -> Self {
        Setup {
            global: "",
            bind: "",
            target: "local0",
            mode,
            body,
        }
    }
}

fn log_lines_of(binary: &Path, test: &str, setup: Setup<'_>, traffic: Traffic) -> Vec<String> {
    let sink = UdpSocket::bind((LO, 0)).expect("binding the syslog socket");
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    let log = sink.local_addr().expect("its address");
    let port = free_port();
    let front = SocketAddr::from((LO, port));
    let Setup {
        global,
        bind,
        target,
        mode,
        body,
    } = setup;
    let config = format!(
        "global\n  log {log} {target}\n{global}defaults\n  log global\n  mode {mode}\n  \
         retries 0\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend fe\n  bind {front} {bind}\n  default_backend be\n{body}"
    );
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("proxy");
    // Its own directory: the two proxies of a comparison run side by side.
    let dir = temp_dir(&format!("{test}-{name}"));
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, name, &config, front, &[]);
    traffic(front);
    let mut lines = Vec::new();
    let mut buf = [0u8; 70000];
    while let Ok(n) = sink.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    drop(proxy);
    lines
}

/// A line with every number but its byte count masked (times, ports, pids and counts
/// differ between runs), and runs of the long test message's filler, whose cut depends on
/// the pid's digits.
fn shape(line: &str) -> String {
    let mut out = hapx_tests::proxy_rules::shape_keeping_bytes(line);
    while out.contains("xx") {
        out = out.replace("xx", "x");
    }
    out
}

/// A backend server answering every connection with `ANSWER`.
fn answering_server() -> SocketAddr {
    answering(ANSWER, Duration::ZERO)
}

/// A backend server answering each connection `answer`, `delay` after it read the request.
fn answering(answer: &'static [u8], delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                    thread::sleep(delay);
                    let _ = conn.write_all(answer);
                }
            });
        }
    });
    addr
}

fn one_request(front: SocketAddr) {
    send_raw(
        front,
        b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
}

fn connect_and_close(front: SocketAddr) {
    let c = TcpStream::connect(front).expect("connecting through the proxy");
    thread::sleep(Duration::from_millis(100));
    drop(c);
    thread::sleep(Duration::from_millis(100));
}

fn compare(test: &str, mode: &str, body: &str, traffic: Traffic) {
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let (ours, theirs) = side_by_side(test, Setup::new(mode, body), traffic);
    let (ours_shape, theirs_shape): (Vec<_>, Vec<_>) = (
        ours.iter().map(|l| shape(l)).collect(),
        theirs.iter().map(|l| shape(l)).collect(),
    );
    assert_eq!(
        ours_shape, theirs_shape,
        "{test}\nhapx:\n{ours:#?}\nHAProxy:\n{theirs:#?}"
    );
}

#[test]
fn tcplog_lines_match_haproxy() {
    let server = answering_server();
    let body = format!("  option tcplog\nbackend be\n  server s1 {server}\n");
    compare("tcplog_lines_match_haproxy", "tcp", &body, one_request);
}

#[test]
fn httplog_lines_match_haproxy() {
    let server = answering_server();
    let body = format!("  option httplog\nbackend be\n  server s1 {server}\n");
    compare("httplog_lines_match_haproxy", "http", &body, one_request);
}

#[test]
fn refused_server_lines_match_haproxy() {
    // A port nothing listens on: the connection is refused.
    let closed = SocketAddr::from((LO, free_port()));
    for (mode, option) in [("tcp", "tcplog"), ("http", "httplog")] {
        let body = format!("  option {option}\nbackend be\n  server s1 {closed}\n");
        compare(
            "refused_server_lines_match_haproxy",
            mode,
            &body,
            one_request,
        );
    }
}

#[test]
fn dontlognull_leaves_out_empty_connections() {
    let server = answering_server();
    let body = format!("  option tcplog\n  option dontlognull\nbackend be\n  server s1 {server}\n");
    let test = "dontlognull_leaves_out_empty_connections";
    compare(test, "tcp", &body, connect_and_close);
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let lines = log_lines(
            &bins::path("hapx-proxy"),
            test,
            "tcp",
            &body,
            connect_and_close,
        );
        assert!(lines.is_empty(), "{lines:#?}");
    }
}

/// A connection that never sends a request gets HAProxy's 408 once `timeout http-request`
/// passes, logged as `<BADREQ>` (`cR--`), except with `option dontlognull`.
#[test]
fn idle_connections_408_is_logged_unless_dontlognull() {
    let test = "idle_connections_408_is_logged_unless_dontlognull";
    let server = answering_server();
    let idle = |front: SocketAddr| {
        let mut c = TcpStream::connect(front).expect("connecting through the proxy");
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    };
    for option in ["", "  option dontlognull\n"] {
        let body = format!(
            "  option httplog\n{option}  timeout http-request 300ms\nbackend be\n  server s1 {server}\n"
        );
        compare(test, "http", &body, idle);
        let lines = log_lines(&bins::path("hapx-proxy"), test, "http", &body, idle);
        assert_eq!(
            lines.len(),
            usize::from(option.is_empty()),
            "{option}: {lines:#?}"
        );
    }
}

/// The lines of hapx-proxy and of HAProxy for the same setup and traffic, both run at once
/// (each with its own ports, log socket and directory): most of a run is waiting.
fn side_by_side(test: &str, setup: Setup<'_>, traffic: Traffic) -> (Vec<String>, Vec<String>) {
    let hapx = bins::path("hapx-proxy");
    thread::scope(|s| {
        let theirs = s.spawn(|| log_lines_of(Path::new(HAPROXY), test, setup, traffic));
        let ours = log_lines_of(&hapx, test, setup, traffic);
        (ours, theirs.join().expect("HAProxy's run"))
    })
}

/// [`compare`] for a full [`Setup`]; both sides' lines, for further checks.
fn compare_setup(
    test: &str,
    setup: Setup<'_>,
    traffic: Traffic,
) -> Option<(Vec<String>, Vec<String>)> {
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let (ours, theirs) = side_by_side(test, setup, traffic);
    let (ours_shape, theirs_shape): (Vec<_>, Vec<_>) = (
        ours.iter().map(|l| shape(l)).collect(),
        theirs.iter().map(|l| shape(l)).collect(),
    );
    assert_eq!(
        ours_shape, theirs_shape,
        "{test}: {}\nhapx:\n{ours:#?}\nHAProxy:\n{theirs:#?}",
        setup.body
    );
    assert!(!ours.is_empty(), "{test}: no line was logged");
    Some((ours, theirs))
}

/// A backend server answering every request with `ANSWER` and two headers to capture,
/// keeping the requests it got.
fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            if let Ok(n @ 1..) = conn.read(&mut buf) {
                kept.lock()
                    .expect("the request list")
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-Resp: r\"v{1}\r\nSet-Cookie: a=b\r\nconnection: close\r\n\r\nok",
                );
            }
        }
    });
    (addr, seen)
}

/// A request with characters HAProxy encodes or escapes in its URI and headers.
fn odd_request(front: SocketAddr) {
    send_raw(
        front,
        b"GET /a\"b\\c]{x}?q=\"1&r=2 HTTP/1.1\r\nHost: h\"{|}\\z]\r\nUser-Agent: a-long-agent\r\nX-Dup: first\r\nX-Dup: second\r\nConnection: close\r\n\r\n",
    );
}

/// A request HAProxy refuses (a header line without a colon): a `<BADREQ>` line.
fn bad_request(front: SocketAddr) {
    send_raw(
        front,
        b"GET /x HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n",
    );
}

/// Every HTTP-mode variable of HAProxy 2.6 with the flags that change them, captures in
/// both directions and a unique id: the same line as HAProxy's, number for number masked.
const HTTP_VARIABLES: &str = "%ci:%cp %fi:%fp %si:%sp %bi:%bp %f %ft %b %s %Tw/%Tc/%Tt/%Th/%Ti/%TR/%Tq/%Tr/%Ta/%Td/%Tu %Ts %ms %ST %B %U %ts %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %hrl %hsl %r %HM %HU %HP %HPO %HQ %HV %ID %t %T %Tl %tr %trg %trl %pid %H %rt %lc %CC %CS";

#[test]
fn custom_log_format_matches_haproxy() {
    let (server, seen) = recording_server();
    let formats = [
        HTTP_VARIABLES.to_string(),
        format!("%{{+Q}}o {HTTP_VARIABLES}"),
        format!("%{{+E}}o {HTTP_VARIABLES}"),
        "%{+Q,+E}r|%{+E}hr|%{+Q}hrl|%{+X}ci %{-Q}b %%  literal%%text  %{+Q}HQ".to_string(),
    ];
    for format in formats {
        let body = format!(
            "  log-format \"{}\"\n  unique-id-format %{{+X}}o\\ %ci_%fi_%rt\n  unique-id-header X-Req-Id\n  capture request header Host len 12\n  capture request header User-Agent len 4\n  capture request header X-Absent len 4\n  capture request header X-Dup len 9\n  capture response header X-Resp len 20\nbackend be\n  server s1 {server}\n",
            format.replace('"', "\\\"")
        );
        let setup = Setup::new("http", &body);
        compare_setup("custom_log_format_matches_haproxy", setup, odd_request);
        compare_setup("custom_log_format_matches_haproxy", setup, bad_request);
    }
    // The unique id went to the server in the header, as HAProxy sends it.
    let requests = seen.lock().expect("the request list");
    let ids: Vec<&str> = requests
        .iter()
        .filter_map(|r| {
            r.lines().find_map(|l| {
                l.get(10..)
                    .filter(|_| l[..10].eq_ignore_ascii_case("x-req-id: "))
            })
        })
        .collect();
    // Both proxies sent it with every request.
    assert_eq!(ids.len(), requests.len(), "{requests:#?}");
    assert!(
        ids.iter().all(|id| id.starts_with("7F000001_7F000001_")),
        "{ids:?}"
    );
}

#[test]
fn tcp_log_format_matches_haproxy() {
    let server = answering_server();
    let body = format!(
        "  log-format \"%ci:%cp %fi %si:%sp %f %ft %b %s %Tw/%Tc/%Tt/%Th/%Td/%Tu %ST %B %U %ts %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq [%hr] [%hrl] %ID %t %T %pid %H\"\n  unique-id-format %ci_%fi\n  capture request header Host len 12\n  capture request header X-Other len 12\nbackend be\n  server s1 {server}\n"
    );
    let setup = Setup::new("tcp", &body);
    compare_setup("tcp_log_format_matches_haproxy", setup, one_request);
    // A refused server: -1 timers, the SC state, no server connection to show.
    let closed = SocketAddr::from((LO, free_port()));
    let body = body.replace(&server.to_string(), &closed.to_string());
    let setup = Setup {
        body: &body,
        ..setup
    };
    compare_setup("tcp_log_format_matches_haproxy", setup, one_request);
}

#[test]
fn httplog_clf_matches_haproxy() {
    let (server, _) = recording_server();
    let body = format!(
        "  option httplog clf\n  capture request header Host len 12\nbackend be\n  server s1 {server}\n"
    );
    let setup = Setup::new("http", &body);
    compare_setup("httplog_clf_matches_haproxy", setup, odd_request);
}

#[test]
fn syslog_formats_and_lengths_match_haproxy() {
    let server = answering_server();
    let long = "x".repeat(200);
    let body = format!(
        "  log-format \"%ci %b {long}\"\n  log-format-sd \"[meta@32473 client=\\\"%ci\\\"]\"\n  log-tag fe-tag\nbackend be\n  server s1 {server}\n"
    );
    let mut cases = Vec::new();
    for format in [
        "rfc3164", "rfc5424", "short", "raw", "iso", "timed", "priority", "local",
    ] {
        for len in ["", "len 80", "len 120"] {
            for global in ["", "  log-send-hostname\n", "  log-send-hostname lb-1\n"] {
                cases.push((format, len, global));
            }
        }
    }
    // A case is mostly waiting (for the proxies to start, for their lines to come): the
    // cases run a few at a time, each with its own ports, log sockets and directories.
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..PARALLEL_CASES {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    let Some(&case) = cases.get(i) else { break };
                    check_syslog_case(&format!("syslog_formats_{i}"), &body, case);
                }
            });
        }
    });
}

/// How many cases of a table run at once.
const PARALLEL_CASES: usize = 8;

/// One target `format`, `len` and `log-send-hostname` (`global`) of
/// [`syslog_formats_and_lengths_match_haproxy`].
fn check_syslog_case(test: &str, body: &str, (format, len, global): (&str, &str, &str)) {
    let target = format!("{len} format {format} local0");
    let setup = Setup {
        global,
        target: &target,
        ..Setup::new("tcp", body)
    };
    let Some((ours, theirs)) = compare_setup(test, setup, one_request) else {
        return;
    };
    if let Some(max) = len.strip_prefix("len ") {
        // Cut at the same length: `len` bytes and the line feed. A line under it is as
        // long as its numbers are wide (a pid of 4 digits or of 5), which `shape` masks:
        // only the lines that reach the limit must match HAProxy's.
        let max: usize = max.parse().expect("a length");
        let cut = |lines: &[String]| {
            lines
                .iter()
                .map(|l| (l.len() > max).then_some(l.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(cut(&ours), cut(&theirs), "{target}\n{ours:#?}\n{theirs:#?}");
        assert!(ours.iter().all(|l| l.len() <= max + 1), "{ours:#?}");
    }
}

#[test]
fn levels_and_sampling_match_haproxy() {
    let server = answering_server();
    let body = format!("  log-format \"line %lc\"\nbackend be\n  server s1 {server}\n");
    // A pause after each: its line is sent before the next connection's (sampling counts
    // lines in the order they are sent).
    let six = |front: SocketAddr| {
        for _ in 0..6 {
            one_request(front);
            thread::sleep(Duration::from_millis(30));
        }
    };
    // Traffic lines are at info: `notice` drops them, `minlevel` raises their severity.
    for target in [
        "sample 2,3-4:4 local0",
        "sample 1:3 local3",
        "local1 info notice",
        "len 100 format rfc5424 sample 2:2 local7 debug err",
    ] {
        let setup = Setup {
            target,
            ..Setup::new("tcp", &body)
        };
        let test = "levels_and_sampling_match_haproxy";
        let Some((ours, theirs)) = compare_setup(test, setup, six) else {
            return;
        };
        // Which lines a sample keeps: the same ones, counted the same way. Sorted: a
        // connection's line is sent when it ends, on whichever thread ran it, so two that
        // end together may arrive in either order.
        let message = |l: &String| l.split(": ").nth(1).map(str::to_string);
        let sorted = |lines: &[String]| {
            let mut all: Vec<_> = lines.iter().map(message).collect();
            all.sort();
            all
        };
        let (ours, theirs) = (sorted(&ours), sorted(&theirs));
        assert_eq!(ours, theirs, "{target}");
    }
}

#[test]
fn bad_formats_are_refused_as_haproxy_refuses_them() {
    let test = "bad_formats_are_refused_as_haproxy_refuses_them";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        (
            "http",
            "  log-format \"%zz %ci\"",
            "no such format variable 'zz'",
        ),
        (
            "tcp",
            "  log-format \"%ci %r\"",
            "format variable 'r' is reserved for HTTP mode",
        ),
        (
            "http",
            "  log-format \"%{+Q ci\"",
            "truncated line after '+Q ci'",
        ),
        (
            "http",
            "  log-format \"%{+Q}\"",
            "parse argument modifier without variable name",
        ),
        (
            "http",
            "  log-format a b",
            "log-format expects only one argument",
        ),
        (
            "http",
            "  unique-id-format \"%ci %qq\"",
            "no such format variable 'qq'",
        ),
        (
            "http",
            "  log-format \"%[req.hdr(host)]\"",
            "may not be reliably used here because it needs 'HTTP request headers'",
        ),
        (
            "http",
            "  log-format \"%[nosuch]\"",
            "unknown fetch method 'nosuch'",
        ),
        (
            "http",
            "  capture request header Host",
            "'capture request' expects 'header' <header_name> 'len' <len>",
        ),
        (
            "http",
            "  capture cookie SESS",
            "'capture' expects 'cookie' <cookie_name> 'len' <len>",
        ),
        (
            "http",
            "  log 127.0.0.1 len 10 local0",
            "invalid log length '10', must be between 80 and 65535",
        ),
        (
            "http",
            "  log 127.0.0.1 format nope local0",
            "unknown log format 'nope'",
        ),
        (
            "http",
            "  log 127.0.0.1 sample 5:4 local0",
            "sample size 4 should be greater or equal to 5",
        ),
    ];
    for (mode, line, message) in cases {
        let config = format!(
            "defaults\n  mode {mode}\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend fe\n  bind 127.0.0.1:{}\n  default_backend be\n{line}\nbackend be\n  server s1 127.0.0.1:1\n",
            free_port()
        );
        let path = dir.join("bad.cfg");
        std::fs::write(&path, config).expect("writing the configuration");
        for (binary, (code, messages)) in ["hapx", "HAProxy"].iter().zip(check_both(&path)) {
            let text = messages.join("\n");
            assert_ne!(code, 0, "{binary} accepted {line:?}:\n{text}");
            assert!(text.contains(message), "{binary} on {line:?}:\n{text}");
            assert!(text.contains("bad.cfg:9"), "{binary} on {line:?}:\n{text}");
        }
    }
}

#[test]
fn sample_fetches_in_formats_match_haproxy() {
    let (server, seen) = recording_server();
    let body = format!(
        "  log-format \"%[src] %[dst_port] %{{+Q}}[method] %[status] %[fe_name] %{{+Q}}[be_name] %[method,lower] %ID\"\n  unique-id-format %[src]-%[method]-%[req.hdr(host)]\n  unique-id-header X-Req-Id\nbackend be\n  server s1 {server}\n"
    );
    let setup = Setup::new("http", &body);
    let test = "sample_fetches_in_formats_match_haproxy";
    if compare_setup(test, setup, one_request).is_none() {
        return;
    }
    let requests = seen.lock().expect("the request list");
    assert!(
        requests.iter().all(|r| r
            .to_ascii_lowercase()
            .contains("x-req-id: 127.0.0.1-get-t\r\n")),
        "{requests:#?}"
    );
    drop(requests);
    let body = format!(
        "  log-format \"%[src]:%[src_port] %[dst] %{{+Q}}[dst_port] %ci\"\nbackend be\n  server s1 {}\n",
        answering_server()
    );
    let setup = Setup {
        mode: "tcp",
        body: &body,
        ..setup
    };
    compare_setup(test, setup, one_request);
}

#[test]
fn normal_and_error_sessions_are_told_apart_as_haproxy_does() {
    let test = "normal_and_error_sessions_are_told_apart_as_haproxy_does";
    let server = answering_server();
    let closed = SocketAddr::from((LO, free_port()));
    for (mode, option) in [("tcp", "tcplog"), ("http", "httplog")] {
        for to in [server, closed] {
            let body = format!(
                "  option {option}\n  option dontlog-normal\n  option log-separate-errors\nbackend be\n  server s1 {to}\n"
            );
            let setup = Setup::new(mode, &body);
            if !require::path(test, Path::new(HAPROXY), "HAProxy") {
                return;
            }
            let (ours, theirs) = side_by_side(test, setup, one_request);
            // The priority (local0.err for errors) and the line's shape; none for a
            // normal session.
            let prio = |l: &String| l.split('>').next().map(str::to_string);
            let view = |lines: &[String]| {
                lines
                    .iter()
                    .map(|l| (prio(l), shape(l)))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                view(&ours),
                view(&theirs),
                "{mode} to {to}\n{ours:#?}\n{theirs:#?}"
            );
            assert_eq!(ours.is_empty(), to == server, "{ours:#?}");
        }
    }
}

#[test]
fn logasap_lines_match_haproxy() {
    let server = answering_server();
    let closed = SocketAddr::from((LO, free_port()));
    for (mode, format) in [
        ("tcp", "option tcplog"),
        ("http", "option httplog"),
        ("http", "log-format \"%Tt %Ta %B %U %Td %ts %ST\""),
    ] {
        for to in [server, closed] {
            let body = format!("  {format}\n  option logasap\nbackend be\n  server s1 {to}\n");
            let setup = Setup::new(mode, &body);
            compare_setup("logasap_lines_match_haproxy", setup, one_request);
        }
    }
}

/// Sends `bytes` and reads until the proxy closes.
fn send_raw(front: SocketAddr, bytes: &[u8]) {
    let mut c = TcpStream::connect(front).expect("connecting through the proxy");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    c.write_all(bytes).expect("the bytes");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
}

#[test]
fn refused_proxy_headers_are_logged_as_haproxy_logs_them() {
    let server = answering_server();
    let traffic: [Traffic; 2] = [
        |front| send_raw(front, b"GET / HTTP/1.0 and more bytes here\r\n\r\n"),
        |front| send_raw(front, b"PROXY TCP4 192.0.2.1 x 1 2\r\n"),
    ];
    for format in [
        "option tcplog",
        "log-format \"%ci %b\"\n  error-log-format \"ERR %ci %f %ft %ts %tsc %Tt %B %s\"",
    ] {
        for send in traffic {
            let body = format!("  {format}\nbackend be\n  server s1 {server}\n");
            let setup = Setup {
                bind: "accept-proxy",
                ..Setup::new("tcp", &body)
            };
            compare_setup("refused_proxy_headers_are_logged", setup, send);
        }
    }
}

/// A backend server keeping its connections alive, answering each request head it reads.
fn keep_alive_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if conn.write_all(answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Reads one `ANSWER`-sized response of [`keep_alive_server`] (its head and `ok`).
fn read_answer(c: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok") {
        match c.read(&mut buf) {
            Ok(n @ 1..) => got.extend_from_slice(&buf[..n]),
            _ => panic!("the answer was cut: {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

/// One kept-alive connection: a pause before the first request, whose head comes in two
/// parts; a longer pause before the second; then two pipelined requests.
fn paused_keep_alive(front: SocketAddr) {
    let mut c = TcpStream::connect(front).expect("connecting through the proxy");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    thread::sleep(Duration::from_millis(300));
    c.write_all(b"GET /1 HTTP/1.1\r\nHost: t\r\n")
        .expect("the request");
    thread::sleep(Duration::from_millis(200));
    c.write_all(b"\r\n").expect("the request's end");
    read_answer(&mut c);
    thread::sleep(Duration::from_millis(400));
    c.write_all(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("the request");
    read_answer(&mut c);
    c.write_all(b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\nGET /4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("the requests");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
}

/// The words of a line's message (after the syslog header) parsed as numbers, `%t`-style
/// dates as milliseconds of the day; None for other words.
fn numbers(line: &str) -> Vec<Option<i64>> {
    let message = line.trim_end().split_once("]: ").map_or(line, |(_, m)| m);
    message
        .split(' ')
        .map(|w| {
            w.parse::<i64>().ok().or_else(|| {
                // 26/Nov/2026:05:39:25.631
                let (_, time) = w.split_once(':')?;
                let (hms, ms) = time.split_once('.')?;
                let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
                let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
                Some(((h * 60 + m) * 60 + s) * 1000 + ms.parse::<i64>().ok()?)
            })
        })
        .collect()
}

#[test]
fn idle_time_of_kept_alive_requests_matches_haproxy() {
    let server = keep_alive_server();
    let body = format!(
        "  log-format \"%Th %Ti %TR %Tq %Ta %Tt %Tu %t %tr %r\"\nbackend be\n  server s1 {server}\n"
    );
    let setup = Setup::new("http", &body);
    let test = "idle_time_of_kept_alive_requests_matches_haproxy";
    let Some((ours, theirs)) = compare_setup(test, setup, paused_keep_alive) else {
        return;
    };
    for (who, lines) in [("hapx", &ours), ("HAProxy", &theirs)] {
        assert_eq!(lines.len(), 4, "{who}: {lines:#?}");
        let mut idle = Vec::new();
        for line in lines {
            let n: Vec<i64> = numbers(line).into_iter().flatten().collect();
            let [th, ti, tr, tq, ta, tt, tu, accept, request] = n[..] else {
                panic!("{who}: {line}");
            };
            // HAProxy's derivations (section 8.4): Tq = Th + Ti + TR, Ta = Tt - Th - Ti,
            // Tu = Tt - Ti; the request's date is the accept date plus Th + Ti.
            assert_eq!(tq, th + ti + tr, "{who}: {line}");
            assert_eq!(ta, tt - th - ti, "{who}: {line}");
            assert_eq!(tu, tt - ti, "{who}: {line}");
            let since = (request - accept).rem_euclid(86_400_000);
            assert!((since - th - ti).abs() <= 1, "{who}: {line}");
            idle.push((ti, tr));
        }
        // The pauses show in Ti, measured from the accept, then from the end of the
        // previous response; the head's two parts in TR; nothing for pipelined requests.
        let pause = |(ti, _): (i64, i64), ms: i64| ti >= ms - 100 && ti < ms + 1000;
        assert!(
            pause(idle[0], 300) && pause(idle[1], 400),
            "{who}: {lines:#?}"
        );
        assert!((150..1200).contains(&idle[0].1), "{who}: {lines:#?}");
        assert!(idle[1].1 < 100, "{who}: {lines:#?}");
        assert!(
            idle[2..].iter().all(|&(ti, tr)| ti < 100 && tr < 100),
            "{who}: {lines:#?}"
        );
    }
}

/// How long the queue tests' server takes: the queued requests all join the queue meanwhile.
const SLOW_ANSWER: Duration = Duration::from_millis(150);

/// Requests queued at once behind a server's `maxconn 1`.
const QUEUED: usize = 4;

/// `n` clients a few milliseconds apart, each with one request.
fn requests_in_a_row(front: SocketAddr, n: usize) {
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let c = thread::spawn(move || one_request(front));
            thread::sleep(Duration::from_millis(20));
            c
        })
        .collect();
    for c in clients {
        c.join().expect("a client");
    }
}

#[test]
fn queue_positions_match_haproxy() {
    let server = answering(ANSWER, SLOW_ANSWER);
    let test = "queue_positions_match_haproxy";
    // Round robin skips a full server: requests wait in the backend's queue (`%bq`); a
    // hash picks its server whatever its load: they wait in the server's (`%sq`).
    for (mode, balance, queue) in [
        ("http", "roundrobin", "bq"),
        ("http", "source", "sq"),
        ("tcp", "roundrobin", "bq"),
    ] {
        let body = format!(
            "  log-format \"%sq %bq %Tw %Tc %ac %fc %bc\"\nbackend be\n  balance {balance}\n  timeout queue 5s\n  server s1 {server} maxconn 1\n"
        );
        let setup = Setup::new(mode, &body);
        let Some((ours, theirs)) =
            compare_setup(test, setup, |front| requests_in_a_row(front, QUEUED + 1))
        else {
            return;
        };
        // The connections counted when each line is written (process, frontend, backend):
        // the same set of counts for both, whichever request each line is.
        let counts = |lines: &[String]| {
            let mut all: Vec<Vec<i64>> = lines
                .iter()
                .map(|l| numbers(l).into_iter().flatten().skip(4).collect())
                .collect();
            all.sort_unstable();
            all
        };
        assert_eq!(
            counts(&ours),
            counts(&theirs),
            "{mode} {balance}: %ac %fc %bc"
        );
        for (who, lines) in [("hapx", &ours), ("HAProxy", &theirs)] {
            let mut positions = Vec::new();
            for line in lines {
                let n: Vec<i64> = numbers(line).into_iter().flatten().collect();
                let [sq, bq, tw, _tc, ..] = n[..] else {
                    panic!("{who}: {line}");
                };
                let (used, other) = if queue == "bq" { (bq, sq) } else { (sq, bq) };
                assert_eq!(other, 0, "{who} {mode} {balance}: {line}");
                // Queued: waited; not queued: served at once.
                assert_eq!(used > 0, tw > 10, "{who} {mode} {balance}: {line}");
                positions.push(used);
            }
            // Which request got which place is a race; the places are not: the first
            // request is served, the others queue behind it, each place taken once (1 plus
            // those that left the queue while it waited).
            positions.sort_unstable();
            let expected: Vec<i64> = (0..=QUEUED as i64).collect();
            assert_eq!(positions, expected, "{who} {mode} {balance}: {lines:#?}");
        }
    }
}

/// The answer of the cookie test's server: a cookie of a name none captures, then one with
/// blanks around its `=` and attributes.
const COOKIE_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nSet-Cookie: other=abc; Path=/\r\nSet-Cookie: SESSID = srvvalue; Path=/; HttpOnly\r\nconnection: close\r\n\r\nok";

/// A request with cookies, the captured one not first, in two `Cookie` headers.
fn request_with_cookies(front: SocketAddr) {
    send_raw(
        front,
        b"GET /c HTTP/1.1\r\nHost: t\r\nCookie: a=b; SESSIONX=\r\nCookie: SESSID= clientvalue ; z=y\r\nConnection: close\r\n\r\n",
    );
}

#[test]
fn captured_cookies_match_haproxy() {
    let server = answering(COOKIE_ANSWER, Duration::ZERO);
    // The name is a prefix; the capture is cut to its length, at most 63.
    for capture in [
        "SESSID len 40",
        "SESS len 9",
        "SESSIONX len 20",
        "nomatch len 10",
    ] {
        for format in ["option httplog", "log-format \"%{+Q}CC %CS %r\""] {
            let body = format!(
                "  {format}\n  capture cookie {capture}\nbackend be\n  server s1 {server}\n"
            );
            let setup = Setup::new("http", &body);
            let test = "captured_cookies_match_haproxy";
            let Some((ours, theirs)) = compare_setup(test, setup, request_with_cookies) else {
                return;
            };
            // The cookies themselves (no number in them), word for word as HAProxy's.
            let cookies = |lines: &[String]| {
                lines
                    .iter()
                    .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
                    .filter(|w| w.contains('=') || matches!(w.as_str(), "-" | "\"\""))
                    .collect::<Vec<_>>()
            };
            assert_eq!(cookies(&ours), cookies(&theirs), "{ours:#?}\n{theirs:#?}");
            assert!(!cookies(&ours).is_empty(), "{ours:#?}");
        }
    }
}

#[test]
fn queue_timeouts_match_haproxy() {
    // The first request holds the only slot longer than the others may wait.
    let server = answering(ANSWER, Duration::from_millis(1000));
    let test = "queue_timeouts_match_haproxy";
    for mode in ["http", "tcp"] {
        let body = format!(
            "  log-format \"%ts %sq %bq %Tw %Tc\"\nbackend be\n  timeout queue 200ms\n  server s1 {server} maxconn 1\n"
        );
        let setup = Setup::new(mode, &body);
        let Some((ours, theirs)) = compare_setup(test, setup, |front| {
            // One served, two left in the queue.
            requests_in_a_row(front, 3)
        }) else {
            return;
        };
        for (who, lines) in [("hapx", &ours), ("HAProxy", &theirs)] {
            let given_up: Vec<_> = lines.iter().filter(|l| l.contains(": sQ ")).collect();
            assert_eq!(given_up.len(), 2, "{who} {mode}: {lines:#?}");
            for line in given_up {
                let n: Vec<i64> = numbers(line).into_iter().flatten().collect();
                let [sq, bq, tw, tc] = n[..] else {
                    panic!("{who}: {line}");
                };
                // Each waited its `timeout queue` as the first in line (no one left the
                // queue meanwhile), and never connected.
                assert_eq!((sq, bq, tc), (0, 1, -1), "{who} {mode}: {line}");
                assert!((200..1000).contains(&tw), "{who} {mode}: {line}");
            }
        }
    }
}
