//! Health-check behaviours a review found unlike HAProxy 2.6's, run by hapx-proxy and then
//! by HAProxy on the same configuration against the same scripted loopback servers (each
//! answers, pauses as told, then keeps its connection open):
//! - an HTTP body rule waits for its pattern's length as well as `min-recv` (a negated rule
//!   does not pass on a partial body); a `string-lf` rendered empty fails at once;
//! - a tcp-check's success is built once all its rules ran, from the last rule that is not a
//!   variable or comment rule (an expect's `on-success` and `status-code` seeing the
//!   variables set after it);
//! - an `http-check set-var` after an expect runs after it, with `option httpchk`'s implicit
//!   request too;
//! - `status-code` values cast to an integer and kept in 16 bits as HAProxy does;
//! - an HTTP head going wrong judged at its first bad byte, without waiting for a line end;
//! - `rbinary` matching the hexadecimal of the first 8191 bytes only;
//! - a `comment` rule's text carried to the rules after it; tcp-check connection failures
//!   naming their step;
//! - the check requests' bytes, compared whole;
//! - rule order, option and message errors: HAProxy's `-c` messages.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{cli, free_port, settled_check_rows, stat_row, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, check_messages, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What a scripted server does once the check's request came.
#[derive(Clone)]
enum Step {
    Send(Vec<u8>),
    Pause(Duration),
}

fn send(bytes: &[u8]) -> Step {
    Step::Send(bytes.to_vec())
}

fn pause(ms: u64) -> Step {
    Step::Pause(Duration::from_millis(ms))
}

/// A loopback server playing its steps on every connection, keeping the raw bytes of what
/// each check sent.
struct Scripted {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Scripted {
    fn start(steps: Vec<Step>) -> Scripted {
        let listener = TcpListener::bind((LO, 0)).expect("binding a check server");
        let addr = listener.local_addr().expect("its address");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let kept = sent.clone();
        let steps = Arc::new(steps);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (kept, steps) = (kept.clone(), steps.clone());
                std::thread::spawn(move || play(conn, &steps, &kept));
            }
        });
        Scripted { addr, sent }
    }

    /// What the checks sent since the last call, each connection's bytes as they came.
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.sent.lock().unwrap())
    }
}

/// Whether `got` holds a whole HTTP request (its head, then its Content-Length body).
fn whole_request(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..end]);
    let length = (head.lines())
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + length
}

/// Reads what the check sends (until a whole HTTP request came, or a 300 ms pause), keeps
/// it, plays the steps, then holds the connection open for 3 s.
fn play(mut conn: TcpStream, steps: &[Step], kept: &Mutex<Vec<Vec<u8>>>) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !whole_request(&got) {
        match conn.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    if !got.is_empty() {
        kept.lock().unwrap().push(got);
    }
    for step in steps {
        match step {
            Step::Send(bytes) => {
                if conn.write_all(bytes).is_err() {
                    return;
                }
            }
            Step::Pause(d) => std::thread::sleep(*d),
        }
    }
    std::thread::sleep(Duration::from_secs(3));
}

/// `show stat` rows (state, check status, code, last_chk) of `servers` once settled as
/// `expected` says, and each one's check duration (ms).
type Rows = (Vec<[String; 4]>, Vec<Option<u64>>);

fn rows(sock: &Path, expected: &[(&str, &str, &str)]) -> Rows {
    let servers: Vec<(&str, &str)> = expected.iter().map(|(b, ..)| (*b, "s")).collect();
    let states: Vec<[&str; 2]> = expected.iter().map(|(_, st, c)| [*st, *c]).collect();
    let rows = settled_check_rows(sock, &servers, &states);
    let csv = cli(sock, "show stat");
    let durations = (expected.iter())
        .map(|(b, ..)| stat_row(&csv, b, "s").and_then(|r| r["check_duration"].parse().ok()))
        .collect();
    (rows, durations)
}

/// A configuration of `sections` (backends, each with one server `s`) with an admin socket
/// at `sock`, a frontend at `port`, `timeout check 5s`; `global` lines added.
fn config(sock: &Path, port: u16, global: &str, sections: &[String]) -> String {
    format!(
        "global\n  stats socket {sock} level admin\n{global}\
         defaults\n  mode http\n  log global\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend {first}\n{}",
        sections.concat(),
        sock = sock.display(),
        first = "b_first",
    )
}

/// A backend `name` with `rules` and one server `s` at `addr`, checked every 500 ms.
fn backend(name: &str, rules: &str, addr: SocketAddr) -> String {
    format!("backend {name}\n{rules}  server s {addr} check inter 500ms rise 1 fall 1\n")
}

/// The frontend's default backend, unchecked.
fn first_backend() -> String {
    "backend b_first\n  server s 127.0.0.1:1\n".into()
}

/// A second defaults section with a 1 s `timeout check`, for the backends after it that
/// wait in vain.
const SHORT_CHECK: &str = "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
                           \x20 timeout connect 1s\n  timeout check 1s\n";

const HTTPCHK: &str = "  option httpchk\n";
const TCPCHK: &str = "  mode tcp\n  option tcp-check\n";

/// Runs `sections` on both proxies: hapx's rows (asserted against `expected`'s states) and
/// HAProxy's when it runs, which must be the same rows.
fn run_rows(
    test: &str,
    global: &str,
    sections: &[String],
    expected: &[(&str, &str, &str)],
) -> Rows {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let mut all = vec![first_backend()];
    all.extend_from_slice(sections);
    let config = config(&sock, port, global, &all);
    let observe = |_| rows(&sock, expected);
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (b, state, status)) in ours.0.iter().zip(expected) {
        assert_eq!([&row[0], &row[1]], [state, status], "{b}: {row:?}");
    }
    if let Some(theirs) = theirs {
        for ((o, t), (b, ..)) in ours.0.iter().zip(&theirs.0).zip(expected) {
            assert_eq!(o, t, "{b}: hapx-proxy, then HAProxy");
        }
    }
    ours
}

fn row<'r>(rows: &'r Rows, expected: &[(&str, &str, &str)], name: &str) -> &'r [String; 4] {
    &rows.0[expected
        .iter()
        .position(|e| e.0 == name)
        .expect("a backend")]
}

/// Asserts the backends' checks ended long before the 5 s `timeout check`.
fn decided_at_once(rows: &Rows, expected: &[(&str, &str, &str)], names: &[&str]) {
    for name in names {
        let at = expected
            .iter()
            .position(|e| e.0 == *name)
            .expect("a backend");
        let duration = rows.1[at];
        assert!(
            duration.is_some_and(|ms| ms < 2500),
            "{name}: {duration:?} ms"
        );
    }
}

const SPLIT_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";

#[test]
fn body_rules_wait_for_their_pattern_as_well_as_min_recv() {
    let split = Scripted::start(vec![send(SPLIT_HELLO), pause(400), send(b"lo")]);
    let partial = Scripted::start(vec![send(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
    )]);
    let expected = [
        ("mr1", "UP", "L7OK"),
        ("mr0", "UP", "L7OK"),
        ("neg", "DOWN", "L7RSP"),
        ("lf_wait", "UP", "L7OK"),
        ("lf_empty", "DOWN", "L7RSP"),
    ];
    let rule = |r: &str| format!("{HTTPCHK}  http-check expect {r}\n");
    let sections = [
        backend("mr1", &rule("min-recv 1 string hello"), split.addr),
        backend("mr0", &rule("min-recv 0 string hello"), split.addr),
        backend("neg", &rule("min-recv 3 ! string hello"), split.addr),
        backend(
            "lf_wait",
            &rule("min-recv 2 string-lf \"%[env(WANT)]\""),
            split.addr,
        ),
        backend(
            "lf_empty",
            &rule("string-lf \"%[env(NOPE)]\""),
            partial.addr,
        ),
    ];
    let test = "body_rules_wait_for_their_pattern_as_well_as_min_recv";
    let rows = run_rows(test, "  setenv WANT hello\n", &sections, &expected);
    assert_eq!(
        row(&rows, &expected, "neg")[3],
        "HTTP check matched unwanted content"
    );
    assert_eq!(
        row(&rows, &expected, "lf_empty")[3],
        "log-format string evaluated to an empty string"
    );
    decided_at_once(&rows, &expected, &["lf_empty"]);
}

#[test]
fn a_tcp_check_success_comes_from_its_last_rule() {
    let ok = Scripted::start(vec![send(b"OK\n")]);
    let expected = [
        ("late", "UP", "L7OK"),
        ("send_only", "UP", "L7OK"),
        ("var_only", "UP", "L4OK"),
        ("connect_only", "UP", "L4OK"),
        ("expect_then_var", "UP", "L7OK"),
    ];
    let sections = [
        backend(
            "late",
            &format!(
                "{TCPCHK}  tcp-check expect string OK on-success \"v=%[var(check.x)]\" status-code var(check.c)\n\
                 \x20 tcp-check set-var(check.x) str(late)\n  tcp-check set-var(check.c) int(77)\n"
            ),
            ok.addr,
        ),
        backend(
            "send_only",
            &format!("{TCPCHK}  tcp-check send bye\\n\n"),
            ok.addr,
        ),
        backend(
            "var_only",
            &format!("{TCPCHK}  tcp-check set-var(check.x) int(1)\n"),
            ok.addr,
        ),
        backend(
            "connect_only",
            &format!("{TCPCHK}  tcp-check connect\n"),
            ok.addr,
        ),
        backend(
            "expect_then_var",
            &format!("{TCPCHK}  tcp-check expect string OK\n  tcp-check set-var(check.x) int(1)\n"),
            ok.addr,
        ),
    ];
    let rows = run_rows(
        "a_tcp_check_success_comes_from_its_last_rule",
        "",
        &sections,
        &expected,
    );
    let row = |name| row(&rows, &expected, name);
    assert_eq!(row("late")[2..], ["77".to_string(), "v=late".to_string()]);
    assert_eq!(
        row("send_only")[2..],
        ["0".to_string(), "(tcp-check)".to_string()]
    );
    assert_eq!(row("var_only")[2..], [String::new(), String::new()]);
    assert_eq!(
        row("connect_only")[2..],
        [String::new(), "(tcp-check)".to_string()]
    );
    assert_eq!(
        row("expect_then_var")[2..],
        ["0".to_string(), "(tcp-check)".to_string()]
    );
}

#[test]
fn http_check_variables_after_an_expect_run_after_it() {
    let server = Scripted::start(vec![send(
        b"HTTP/1.1 200 OK\r\nX-Tok: hello\r\nContent-Length: 11\r\n\r\nhello world",
    )]);
    let expected = [
        ("implicit_lf", "UP", "L7OK"),
        ("implicit_onsuccess", "UP", "L7OK"),
    ];
    let sections = [
        backend(
            "implicit_lf",
            &format!(
                "{HTTPCHK}  http-check expect status 200\n  http-check set-var(check.t) res.hdr(x-tok)\n\
                 \x20 http-check expect string-lf \"%[var(check.t)] world\"\n"
            ),
            server.addr,
        ),
        backend(
            "implicit_onsuccess",
            &format!(
                "{HTTPCHK}  http-check expect status 200\n  http-check set-var(check.t) res.hdr(x-tok)\n\
                 \x20 http-check expect status 200 on-success \"t=%[var(check.t)]\"\n"
            ),
            server.addr,
        ),
    ];
    let test = "http_check_variables_after_an_expect_run_after_it";
    let rows = run_rows(test, "", &sections, &expected);
    assert_eq!(row(&rows, &expected, "implicit_onsuccess")[3], "t=hello");
}

/// A syslog sink: the `code: N` of each "Server B/s is DOWN" line of one proxy run (lines
/// of a process an earlier run read are skipped).
struct DownCodes {
    socket: UdpSocket,
    earlier: Mutex<BTreeSet<String>>,
}

impl DownCodes {
    fn bind() -> DownCodes {
        let socket = UdpSocket::bind((LO, 0)).expect("binding a syslog socket");
        DownCodes {
            socket,
            earlier: Mutex::default(),
        }
    }

    /// Each of `backends`' code as its DOWN line says it (15 s at most).
    fn codes(&self, backends: &[&str]) -> BTreeMap<String, String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let (mut codes, mut pids) = (BTreeMap::new(), BTreeSet::new());
        let mut buf = [0u8; 4096];
        while codes.len() < backends.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self
                .socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let datagram = String::from_utf8_lossy(&buf[..n]);
            let Some((header, message)) = datagram.split_once("]: ") else {
                continue;
            };
            let pid = header.rsplit('[').next().unwrap_or_default().to_string();
            if self.earlier.lock().unwrap().contains(&pid) {
                continue;
            }
            pids.insert(pid);
            let Some(rest) = message.strip_prefix("Server ") else {
                continue;
            };
            let Some((server, rest)) = rest.split_once("/s is DOWN, ") else {
                continue;
            };
            if let Some((_, after)) = rest.split_once("code: ") {
                let code = after.split(',').next().unwrap_or_default();
                codes.insert(server.to_string(), code.to_string());
            }
        }
        self.earlier.lock().unwrap().extend(pids);
        codes
    }
}

#[test]
fn status_code_is_cast_and_kept_as_haproxy_does() {
    let test = "status_code_is_cast_and_kept_as_haproxy_does";
    let server = Scripted::start(vec![send(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )]);
    // Backend, status wanted, expression, code in the stats (unsigned) and in the log.
    let cases = [
        ("neg", "500", "int(-1)", "4294967295", "-1"),
        ("big", "500", "int(40000)", "4294941760", "-25536"),
        ("wraps", "500", "int(70000)", "4464", "4464"),
        (
            "saturated",
            "500",
            "str(99999999999999999999)",
            "4294967295",
            "-1",
        ),
        ("plus", "500", "str(+)", "0", "0"),
        ("letters", "200", "str(abc)", "0", ""),
        ("empty", "500", "str()", "200", "200"),
        ("leading", "500", "str(-7x)", "4294967289", "-7"),
    ];
    let expected: Vec<(&str, &str, &str)> = (cases.iter())
        .map(|(name, status, ..)| match *status {
            "200" => (*name, "UP", "L7OK"),
            _ => (*name, "DOWN", "L7STS"),
        })
        .collect();
    let sections: Vec<String> = (cases.iter())
        .map(|(name, status, expr, ..)| {
            let rules =
                format!("{HTTPCHK}  http-check expect status {status} status-code \"{expr}\"\n");
            backend(name, &rules, server.addr)
        })
        .collect();
    let syslog = DownCodes::bind();
    let down: Vec<&str> = (cases.iter())
        .filter(|c| c.1 == "500")
        .map(|c| c.0)
        .collect();
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let mut all = vec![first_backend()];
    all.extend_from_slice(&sections);
    let global = format!(
        "  log {} local0\n",
        syslog.socket.local_addr().expect("its address")
    );
    let config = config(&sock, port, &global, &all);
    let observe = |_| (rows(&sock, &expected), syslog.codes(&down));
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (name, _, expr, code, logged) in cases {
        let at = expected
            .iter()
            .position(|e| e.0 == name)
            .expect("a backend");
        assert_eq!(
            ours.0.0[at][..2],
            [expected[at].1, expected[at].2],
            "{name}"
        );
        assert_eq!(ours.0.0[at][2], code, "{name}: {expr}");
        if !logged.is_empty() {
            assert_eq!(
                ours.1.get(name).map(String::as_str),
                Some(logged),
                "{name}: {expr}"
            );
        }
    }
    let Some(theirs) = theirs else { return };
    assert_eq!(ours.0.0, theirs.0.0, "stats rows: hapx-proxy, then HAProxy");
    assert_eq!(ours.1, theirs.1, "logged codes: hapx-proxy, then HAProxy");
}

#[test]
fn a_head_going_wrong_is_judged_at_its_first_bad_byte() {
    let answer = |bytes: &[u8]| Scripted::start(vec![send(bytes)]);
    let lower = answer(b"garbage");
    let code = answer(b"HTTP/1.1 2x");
    let header = answer(b"HTTP/1.1 200 OK\r\nX-A 1");
    let upper = answer(b"GARBAGE");
    let expected = [
        ("lower", "DOWN", "L7RSP"),
        ("code", "DOWN", "L7RSP"),
        ("header", "DOWN", "L7RSP"),
        // Could still be a version: waits, under the second defaults' 1 s.
        ("upper", "DOWN", "L7TOUT"),
    ];
    let sections = [
        backend("lower", HTTPCHK, lower.addr),
        backend("code", HTTPCHK, code.addr),
        backend("header", HTTPCHK, header.addr),
        SHORT_CHECK.to_string(),
        backend("upper", HTTPCHK, upper.addr),
    ];
    let test = "a_head_going_wrong_is_judged_at_its_first_bad_byte";
    let rows = run_rows(test, "", &sections, &expected);
    decided_at_once(&rows, &expected, &["lower", "code", "header"]);
}

/// Check regexes mean what PCRE2 (without UTF) means: `$` also before a final newline, `.`
/// any byte, a pattern's bytes matched one by one.
#[test]
fn check_regexes_mean_what_pcre_means() {
    let ok = Scripted::start(vec![send(b"OK\n")]);
    let binary = Scripted::start(vec![send(b"\xff\xfeOK\n")]);
    let euro = Scripted::start(vec![send("\u{20ac}\n".as_bytes())]);
    let http = |body: &[u8]| {
        let mut bytes =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        Scripted::start(vec![send(&bytes)])
    };
    let (ok_line, euro_body) = (http(b"ok\n"), http("\u{20ac}".as_bytes()));
    let expected = [
        ("t_dollar", "UP", "L7OK"),
        ("h_dollar", "UP", "L7OK"),
        ("bin_dot", "UP", "L7OK"),
        ("euro_dots", "UP", "L7OK"),
        ("h_euro", "UP", "L7OK"),
        ("h_euro_neg", "UP", "L7OK"),
    ];
    let tcp = |rule: &str| format!("{TCPCHK}  tcp-check expect {rule}\n");
    let httpchk = |rule: &str| format!("{HTTPCHK}  http-check expect {rule}\n");
    let sections = [
        backend("t_dollar", &tcp("rstring ^OK$"), ok.addr),
        backend("h_dollar", &httpchk("rstring ^ok$"), ok_line.addr),
        backend("bin_dot", &tcp("rstring ^..OK"), binary.addr),
        backend("euro_dots", &tcp("rstring ^...\\n"), euro.addr),
        backend("h_euro", &httpchk("rstring ^...$"), euro_body.addr),
        backend("h_euro_neg", &httpchk("! rstring ^.$"), euro_body.addr),
    ];
    let test = "check_regexes_mean_what_pcre_means";
    let rows = run_rows(test, "", &sections, &expected);
    assert_eq!(
        row(&rows, &expected, "t_dollar")[2..],
        ["0".to_string(), "(tcp-check)".to_string()]
    );
    // Look-around is PCRE2's too: taken, as HAProxy takes it (no listener: exit 2).
    let dir = temp_dir(test);
    let file = dir.join("lookahead.cfg");
    let defaults =
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n";
    std::fs::write(
        &file,
        format!(
            "{defaults}backend b\n  option tcp-check\n  tcp-check expect rstring (?=a)\n\
             \x20 server s 127.0.0.1:1 check\n"
        ),
    )
    .expect("writing the configuration");
    let (code, messages) = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
    assert_eq!((code, messages), (2, vec![]));
}

/// Status lines HAProxy's check parser takes: any `XXXX/D.D` version, any number of
/// digits as the code.
#[test]
fn status_lines_are_read_as_haproxys_check_reads_them() {
    let answer = |status: &str| {
        let bytes = format!("{status}\r\nContent-Length: 5\r\n\r\nhello");
        Scripted::start(vec![send(bytes.as_bytes())])
    };
    let cases = [
        ("h2", "HTTP/2.0 200 OK", "UP", "L7OK", "200"),
        ("h09", "HTTP/0.9 200 OK", "UP", "L7OK", "200"),
        ("code99", "HTTP/1.1 99 OK", "UP", "L7OK", "99"),
        ("code1000", "HTTP/1.1 1000 OK", "UP", "L7OK", "1000"),
        ("icy", "ICY 200 OK", "DOWN", "L7RSP", ""),
        ("code_letters", "HTTP/1.1 200x OK", "DOWN", "L7RSP", ""),
    ];
    let servers: Vec<Scripted> = cases.iter().map(|c| answer(c.1)).collect();
    let expected: Vec<(&str, &str, &str)> = cases.iter().map(|c| (c.0, c.2, c.3)).collect();
    let rules = format!("{HTTPCHK}  http-check expect string hello\n");
    let sections: Vec<String> = (cases.iter().zip(&servers))
        .map(|(c, server)| backend(c.0, &rules, server.addr))
        .collect();
    let test = "status_lines_are_read_as_haproxys_check_reads_them";
    let rows = run_rows(test, "", &sections, &expected);
    for (name, status, .., code) in cases {
        assert_eq!(row(&rows, &expected, name)[2], code, "{status}");
    }
}

#[test]
fn rbinary_matches_the_first_8191_bytes() {
    let mut past = vec![b'A'; 8191];
    past.extend_from_slice(b"B\n");
    let mut within = vec![b'A'; 8190];
    within.extend_from_slice(b"B\n");
    let past = Scripted::start(vec![send(&past)]);
    let within = Scripted::start(vec![send(&within)]);
    let expected = [("within", "UP", "L7OK"), ("past", "DOWN", "L7TOUT")];
    let rule = format!("{TCPCHK}  tcp-check expect rbinary 42\n");
    let sections = [
        backend("within", &rule, within.addr),
        SHORT_CHECK.to_string(),
        backend("past", &rule, past.addr),
    ];
    let rows = run_rows(
        "rbinary_matches_the_first_8191_bytes",
        "",
        &sections,
        &expected,
    );
    assert_eq!(
        row(&rows, &expected, "past")[3],
        " at step 1 of tcp-check (expect binary regex)"
    );
}

#[test]
fn comments_carry_to_the_rules_after_them() {
    let ok = Scripted::start(vec![send(b"OK\n")]);
    let http = Scripted::start(vec![send(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
    )]);
    let expected = [
        ("tcp", "DOWN", "L7RSP"),
        ("two_expects", "DOWN", "L7RSP"),
        ("after_send", "DOWN", "L7RSP"),
        ("after_var", "DOWN", "L7RSP"),
        ("own_comment", "DOWN", "L7RSP"),
        ("http", "DOWN", "L7RSP"),
    ];
    let zz = "  tcp-check expect string ZZ min-recv 1\n";
    let sections = [
        backend(
            "tcp",
            &format!("{TCPCHK}  tcp-check comment hello\n{zz}"),
            ok.addr,
        ),
        backend(
            "two_expects",
            &format!("{TCPCHK}  tcp-check comment c\n  tcp-check expect string OK\n{zz}"),
            ok.addr,
        ),
        backend(
            "after_send",
            &format!("{TCPCHK}  tcp-check comment c\n  tcp-check send x\\n\n{zz}"),
            ok.addr,
        ),
        backend(
            "after_var",
            &format!("{TCPCHK}  tcp-check comment c\n  tcp-check set-var(check.x) int(1)\n{zz}"),
            ok.addr,
        ),
        backend(
            "own_comment",
            &format!(
                "{TCPCHK}  tcp-check comment c\n  tcp-check expect string ZZ min-recv 1 comment mine\n"
            ),
            ok.addr,
        ),
        backend(
            "http",
            &format!("{HTTPCHK}  http-check comment hcom\n  http-check expect string nope\n"),
            http.addr,
        ),
    ];
    let rows = run_rows(
        "comments_carry_to_the_rules_after_them",
        "",
        &sections,
        &expected,
    );
    let info = |name| row(&rows, &expected, name)[3].clone();
    assert_eq!(
        info("tcp"),
        "TCPCHK did not match content 'ZZ' at step 2 comment: hello"
    );
    assert_eq!(
        info("two_expects"),
        "TCPCHK did not match content 'ZZ' at step 3 comment: c"
    );
    assert_eq!(
        info("after_send"),
        "TCPCHK did not match content 'ZZ' at step 3"
    );
    assert_eq!(
        info("after_var"),
        "TCPCHK did not match content 'ZZ' at step 3"
    );
    assert_eq!(
        info("own_comment"),
        "TCPCHK did not match content 'ZZ' at step 2 comment: mine"
    );
    assert_eq!(
        info("http"),
        "HTTP content check did not match comment: hcom"
    );
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind((LO, 0)).expect("binding a port");
    listener.local_addr().expect("its address").port()
}

#[test]
fn tcp_check_connection_failures_name_their_step() {
    let port = closed_port();
    let closed = SocketAddr::from((LO, port));
    let expected = [
        ("no_rules", "DOWN", "L4CON"),
        ("only_var", "DOWN", "L4CON"),
        ("send", "DOWN", "L4CON"),
        ("connect", "DOWN", "L4CON"),
        ("httpchk", "DOWN", "L4CON"),
    ];
    let sections = [
        backend("no_rules", TCPCHK, closed),
        backend(
            "only_var",
            &format!("{TCPCHK}  tcp-check set-var(check.x) int(1)\n"),
            closed,
        ),
        backend("send", &format!("{TCPCHK}  tcp-check send x\\n\n"), closed),
        backend(
            "connect",
            &format!(
                "{TCPCHK}  tcp-check set-var(check.x) int(1)\n  tcp-check comment c\n\
                 \x20 tcp-check connect port {port}\n  tcp-check send x\\n\n"
            ),
            closed,
        ),
        backend("httpchk", HTTPCHK, closed),
    ];
    let rows = run_rows(
        "tcp_check_connection_failures_name_their_step",
        "",
        &sections,
        &expected,
    );
    let info = |name| row(&rows, &expected, name)[3].clone();
    let initial = "Connection refused at initial connection step of tcp-check";
    assert_eq!(info("no_rules"), initial);
    assert_eq!(info("only_var"), initial);
    assert_eq!(info("send"), initial);
    assert_eq!(
        info("connect"),
        format!("Connection refused at step 3 of tcp-check (connect port {port}) comment: 'c'")
    );
    assert_eq!(info("httpchk"), "Connection refused");
}

/// The check requests as the servers got them, byte for byte.
#[test]
fn http_check_requests_are_haproxys_bytes() {
    let test = "http_check_requests_are_haproxys_bytes";
    let ok = || {
        Scripted::start(vec![send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )])
    };
    let servers = [ok(), ok(), ok(), ok()];
    let expected = [
        ("hidden", "UP", "L7OK"),
        ("send11", "UP", "L7OK"),
        ("send10", "UP", "L7OK"),
        ("conn", "UP", "L7OK"),
    ];
    let sections = [
        backend(
            "hidden",
            "  option httpchk GET /h HTTP/1.1\\r\\nHost:\\ www.example\\r\\nX-Mixed-Case:\\ v\n",
            servers[0].addr,
        ),
        backend(
            "send11",
            &format!(
                "{HTTPCHK}  http-check send meth POST uri /p ver HTTP/1.1 hdr Host h.example \
                 hdr X-Mixed-Case Val body abc\n"
            ),
            servers[1].addr,
        ),
        backend(
            "send10",
            &format!(
                "{HTTPCHK}  http-check send meth GET uri /q hdr X-Mixed-Case Val body-lf \"%[srv_name]\"\n"
            ),
            servers[2].addr,
        ),
        backend(
            "conn",
            &format!(
                "{HTTPCHK}  http-check send uri /c ver HTTP/1.1 hdr Connection close hdr Host c\n"
            ),
            servers[3].addr,
        ),
    ];
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let mut all = vec![first_backend()];
    all.extend_from_slice(&sections);
    let config = config(&sock, port, "", &all);
    let observe = |_| {
        rows(&sock, &expected);
        servers
            .iter()
            .map(|s| s.take().into_iter().next())
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    let shown = |r: &Option<Vec<u8>>| {
        String::from_utf8_lossy(r.as_deref().unwrap_or_default()).into_owned()
    };
    assert_eq!(
        shown(&ours[1]),
        "POST /p HTTP/1.1\r\nhost: h.example\r\nx-mixed-case: Val\r\ncontent-length: 3\r\n\
         connection: close\r\n\r\nabc"
    );
    assert_eq!(
        shown(&ours[2]),
        "GET /q HTTP/1.0\r\nx-mixed-case: Val\r\ncontent-length: 1\r\n\r\ns"
    );
    let Some(theirs) = theirs else { return };
    for ((o, t), (b, ..)) in ours.iter().zip(&theirs).zip(&expected) {
        assert_eq!(shown(o), shown(t), "{b}: hapx-proxy, then HAProxy");
    }
}

/// Rule order, option and message errors: the same exit code and messages as HAProxy's
/// `-c`.
#[test]
fn check_rule_errors_and_warnings_are_haproxys() {
    let test = "check_rule_errors_and_warnings_are_haproxys";
    let dir = temp_dir(test);
    let haproxy = hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy");
    let defaults =
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n";
    let listen = |rules: &str| {
        format!(
            "{defaults}listen be\n  bind 127.0.0.1:1\n  {rules}\n  server s1 127.0.0.1:1 check\n"
        )
    };
    let backend =
        |rules: &str| format!("{defaults}backend b\n  {rules}\n  server s 127.0.0.1:1 check\n");
    let cases: Vec<(String, i32)> = vec![
        // A connect must come first (comments and variable rules aside).
        (
            listen("option tcp-check\n  tcp-check send x\n  tcp-check connect"),
            1,
        ),
        (
            listen(
                "option tcp-check\n  tcp-check comment c\n  tcp-check set-var(check.x) int(1)\n\
                 \x20 tcp-check expect string x\n  tcp-check connect",
            ),
            1,
        ),
        (
            listen(
                "option tcp-check\n  tcp-check set-var(check.x) int(1)\n  tcp-check connect\n  tcp-check connect",
            ),
            0,
        ),
        // Messages.
        (listen("option tcp-check\n  tcp-check comment"), 1),
        (listen("option httpchk\n  http-check comment"), 1),
        (listen("option tcp-check\n  tcp-check connect comment"), 1),
        (listen("option tcp-check\n  tcp-check expect rstring"), 1),
        (listen("option tcp-check\n  tcp-check expect ! string"), 1),
        (listen("option tcp-check\n  tcp-check expect"), 1),
        (listen("option httpchk\n  http-check expect string-lf"), 1),
        (listen("option httpchk\n  http-check expect"), 1),
        (listen("option httpchk\n  http-check expect hdr"), 1),
        (listen("option httpchk\n  http-check expect bogus"), 1),
        (listen("option httpchk\n  http-check expect bogus x"), 1),
        (
            listen("option httpchk\n  http-check expect status 200 status-code"),
            1,
        ),
        (
            listen("option tcp-check\n  tcp-check set-var(check.x) str(a),nosuchconv"),
            1,
        ),
        (
            listen("option httpchk\n  http-check expect status 200 status-code str(a),nosuch"),
            1,
        ),
        // Where a reference is: a variable rule's expression, or a directive.
        (
            listen("option tcp-check\n  tcp-check set-var(check.x) nbsrv(nope)"),
            1,
        ),
        (
            listen("option httpchk\n  http-check set-var-fmt(check.x) \"%[nbsrv(nope)]\""),
            1,
        ),
        (
            listen("option httpchk\n  http-check expect status 200 status-code nbsrv(nope)"),
            1,
        ),
        // Another check option drops the http-check rules before it: no warning.
        (
            backend("http-check expect status 200\n  option tcp-check"),
            0,
        ),
        (
            backend("http-check expect status 200\n  option ssl-hello-chk"),
            0,
        ),
        (
            backend("option tcp-check\n  http-check expect status 200"),
            0,
        ),
    ];
    for (i, (text, code)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        // 1: refused; 0: accepted (with warnings, 2).
        let ours = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
        assert_eq!(i32::from(ours.0 == 1), *code, "case {i}: {:#?}", ours.1);
        if haproxy {
            let theirs = check_messages(Path::new(HAPROXY), &file);
            assert_eq!(ours, theirs, "case {i}: hapx-proxy, then HAProxy");
        }
    }
    let first = check_messages(
        &hapx_tests::bins::path("hapx-proxy"),
        &dir.join("case0.cfg"),
    )
    .1;
    assert!(
        first[0].ends_with(
            "case0.cfg:10] : 'tcp-check connect' : first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a 'comment', when there is a 'connect' step in the tcp-check ruleset."
        ),
        "{first:#?}"
    );
    let dropped = check_messages(
        &hapx_tests::bins::path("hapx-proxy"),
        &dir.join("case20.cfg"),
    )
    .1;
    assert!(
        dropped.iter().all(|m| !m.contains("http-check rules")),
        "{dropped:#?}"
    );
}
