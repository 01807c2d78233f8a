//! Health-check variables, regex and status-code expect rules, HTTP answers judged as soon
//! as they can be, and check rule errors, run by hapx-proxy and then by HAProxy 2.6 on the
//! same configuration against the same loopback servers:
//! - `tcp-check`/`http-check` `set-var`, `set-var-fmt`, `unset-var` and `var()` in the
//!   check's formats: the `check` and `sess` scopes live for one run, `proc` for the
//!   process, `txn`/`req` are not a check's; an expression without a value sets nothing;
//!   `var(NAME,DEFAULT)`; `set-var(NAME,ifnotset)` conditions; a rule after an expect
//!   reads the response (`res.hdr`), one before the `send` is seen by its formats, one
//!   after it is not: the servers must receive HAProxy's bytes;
//! - `tcp-check expect [!] rstring|rbinary` (rbinary on the upper-case hexadecimal of what
//!   came), `http-check expect string-lf`, `status-code EXPR`: every server's `show stat`
//!   row must be HAProxy's, comments and variable rules counting as steps;
//! - an HTTP answer that cannot be HTTP, a chunked one, one shorter than its Content-Length
//!   on a connection left open: judged at once as HAProxy judges them (not at the timeout);
//! - rule errors (variable names, expressions, `status-code`), a defaults section's check
//!   formats naming a missing backend (reported once, as that section's), and inherited
//!   `http-check` rules without `option httpchk` (no warning): HAProxy's messages.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, settled_check_rows, stat_row, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, check_messages, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What a test server answers each connection, after reading what the check sent; it then
/// keeps the connection open (3 s), as a server that does not close.
#[derive(Clone, Copy)]
enum Answer {
    /// `OK\n`, what the check sent kept as it came.
    Tcp,
    /// Reads an HTTP request (head and Content-Length body), keeps its request line,
    /// headers (names lower-cased, without `connection`) and body; answers 200 with
    /// `X-Token: tok42` and body `ok`.
    Http,
    /// These bytes, whatever came.
    Bytes(&'static [u8]),
}

/// A loopback server keeping what each check sent.
struct CheckServer {
    addr: SocketAddr,
    seen: Arc<Mutex<BTreeSet<String>>>,
}

impl CheckServer {
    fn start(answer: Answer) -> CheckServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding a check server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(conn, answer, &kept));
            }
        });
        CheckServer { addr, seen }
    }

    /// What the checks sent since the last call.
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}

/// Reads what the check sends until `done` says it is all there, it pauses for 300 ms or
/// closes.
fn read_sent(conn: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&got) {
        match conn.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    got
}

/// Whether `got` holds a whole HTTP request (its head, then its Content-Length body).
fn whole_request(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = (head.lines())
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    body.len() >= length
}

/// The request as kept: request line, headers (lower-cased names, no `connection`), body.
fn request_seen(got: &[u8]) -> String {
    let text = String::from_utf8_lossy(got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let mut kept = vec![lines.next().unwrap_or_default().to_string()];
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name = name.to_ascii_lowercase();
        if name != "connection" {
            kept.push(format!("{name}:{value}"));
        }
    }
    format!("{} || {body}", kept.join(" | "))
}

/// Keeps what a check sent (a connection on which nothing came, a plain connect check's,
/// is not kept: when the check closes it varies).
fn keep(seen: &Mutex<BTreeSet<String>>, sent: &[u8], shown: impl Fn(&[u8]) -> String) {
    if !sent.is_empty() {
        seen.lock().unwrap().insert(shown(sent));
    }
}

fn serve(mut conn: TcpStream, answer: Answer, seen: &Mutex<BTreeSet<String>>) {
    let _ = conn.set_nodelay(true);
    let reply: &[u8] = match answer {
        Answer::Tcp => {
            let sent = read_sent(&mut conn, |_| false);
            keep(seen, &sent, |s| String::from_utf8_lossy(s).into_owned());
            b"OK\n"
        }
        Answer::Http => {
            let sent = read_sent(&mut conn, whole_request);
            keep(seen, &sent, request_seen);
            b"HTTP/1.1 200 OK\r\nX-Token: tok42\r\nContent-Length: 2\r\n\r\nok"
        }
        Answer::Bytes(bytes) => {
            read_sent(&mut conn, whole_request);
            bytes
        }
    };
    let _ = conn.write_all(reply);
    std::thread::sleep(Duration::from_secs(3));
}

/// `show stat` rows (state, check status, code, last_chk) of `servers` once settled as
/// `expected` says, and each one's check duration (ms).
fn rows(sock: &Path, expected: &[(&str, &str, &str)]) -> (Vec<[String; 4]>, Vec<Option<u64>>) {
    let servers: Vec<(&str, &str)> = expected.iter().map(|(b, ..)| (*b, "s")).collect();
    let states: Vec<[&str; 2]> = expected.iter().map(|(_, st, c)| [*st, *c]).collect();
    let rows = settled_check_rows(sock, &servers, &states);
    let csv = cli(sock, "show stat");
    let durations = (expected.iter())
        .map(|(b, ..)| stat_row(&csv, b, "s").and_then(|r| r["check_duration"].parse().ok()))
        .collect();
    (rows, durations)
}

/// Backends (each with one server `s`) and the state and check status they settle in.
const VARS: [(&str, &str, &str); 7] = [
    ("tv", "DOWN", "L7RSP"),
    ("tq", "DOWN", "L7RSP"),
    ("hv", "DOWN", "L7STS"),
    ("hpre", "UP", "L7OK"),
    ("hconn", "UP", "L7OK"),
    ("hzero", "UP", "L7OK"),
    ("fe_be", "UP", "L4OK"),
];

#[test]
fn check_variables_behave_like_haproxy() {
    let test = "check_variables_behave_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let tcp = CheckServer::start(Answer::Tcp);
    let http = CheckServer::start(Answer::Http);
    let port = free_port();
    let server = |addr: SocketAddr| format!("  server s {addr} check inter 500ms rise 1 fall 1\n");
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 2s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend fe_be\n\
         backend fe_be\n  server s {tcp_addr} check inter 500ms rise 1 fall 1\n\
         backend tv\n  mode tcp\n  option tcp-check\n\
         \x20 tcp-check send-lf \"A1 [%[var(check.x)]] [%[var(sess.x)]] [%[var(txn.x)]] [%[var(proc.x)]] [%[var(req.x)]]\\n\"\n\
         \x20 tcp-check set-var(check.x) int(1)\n  tcp-check set-var(sess.x) str(s)\n\
         \x20 tcp-check set-var(txn.x) str(t)\n  tcp-check set-var(proc.x) str(p)\n\
         \x20 tcp-check set-var(req.x) str(r)\n\
         \x20 tcp-check send-lf \"A2 [%[var(check.x)]] [%[var(sess.x)]] [%[var(txn.x)]] [%[var(proc.x)]] [%[var(req.x)]] [%[var(check.nope,dflt)]]\\n\"\n\
         \x20 tcp-check set-var(check.x) str(a) if FALSE\n  tcp-check set-var(check.y) env(NOPE)\n\
         \x20 tcp-check set-var-fmt(check.z) \"f-%[srv_name]-%[var(check.x)]\"\n\
         \x20 tcp-check send-lf \"A3 [%[var(check.x)]] [%[var(check.y)]] [%[var(check.z)]] [%[var(check.x),add(5)]]\\n\"\n\
         \x20 tcp-check unset-var(check.x)\n  tcp-check unset-var(proc.x)\n\
         \x20 tcp-check send-lf \"A4 [%[var(check.x)]] [%[var(proc.x)]]\\n\"\n\
         \x20 tcp-check expect string ZZ min-recv 1\n{tcp_s}\
         backend tq\n  mode tcp\n  option tcp-check\n  tcp-check comment hello\n\
         \x20 tcp-check set-var(check.q) int(3)\n  tcp-check set-var(check.c,ifnotset) int(1)\n\
         \x20 tcp-check set-var(check.c,ifnotset) int(2)\n  tcp-check set-var(check.d,ifexists) int(3)\n\
         \x20 tcp-check send-lf \"B1 [%[var(check.q)]] [%[var(check.c)]] [%[var(check.d)]]\\n\"\n\
         \x20 tcp-check expect string ZZ min-recv 1\n{tcp_s}\
         backend hv\n  option httpchk\n  http-check connect\n\
         \x20 http-check set-var(check.p) str(/first)\n  http-check set-var(sess.s) str(S)\n\
         \x20 http-check send meth GET uri-lf \"%[var(check.p)]\" hdr X-V \"%[var(check.p)]-%[var(sess.s)]\"\n\
         \x20 http-check set-var(check.after) str(late)\n  http-check expect status 200\n\
         \x20 http-check set-var(check.tok) res.hdr(x-token)\n  http-check set-var(check.code) int(299)\n\
         \x20 http-check connect\n\
         \x20 http-check send meth POST uri-lf \"/second/%[var(check.tok)]/%[var(check.after)]\" body-lf \"b=%[var(check.tok)]\"\n\
         \x20 http-check expect status 201 on-error \"got %[status] tok=%[var(check.tok)]\" status-code \"var(check.code)\"\n{http_s}\
         backend hpre\n  option httpchk\n  http-check set-var(check.p) str(/pre)\n\
         \x20 http-check send meth GET uri-lf \"%[var(check.p)]\"\n  http-check expect status 200\n{http_s}\
         backend hconn\n  option httpchk\n  http-check connect\n  http-check set-var(check.p) str(/conn)\n\
         \x20 http-check send meth GET uri-lf \"%[var(check.p)]\"\n  http-check expect status 200\n{http_s}\
         backend hzero\n  http-check set-var(check.p) str(/zero)\n  option httpchk\n\
         \x20 http-check send meth GET uri-lf \"%[var(check.p)]0\"\n{http_s}",
        sock = sock.display(),
        tcp_addr = tcp.addr,
        tcp_s = server(tcp.addr),
        http_s = server(http.addr),
    );
    let observe = |_| {
        let (rows, _) = rows(&sock, &VARS);
        (rows, tcp.take(), http.take())
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (b, state, status)) in ours.0.iter().zip(&VARS) {
        assert_eq!([&row[0], &row[1]], [state, status], "{b}: {row:?}");
    }
    assert_eq!(ours.0[0][3], "TCPCHK did not match content 'ZZ' at step 15");
    assert_eq!(ours.0[1][3], "TCPCHK did not match content 'ZZ' at step 7");
    assert_eq!(
        ours.0[2][2..],
        ["299".to_string(), "got 200 tok=tok42".to_string()]
    );
    let run = "A1 [] [] [] [] []\nA2 [1] [s] [] [p] [] [dflt]\nA3 [a] [] [f-s-a] [5]\nA4 [] []\n";
    assert!(ours.1.contains(run), "{:#?}", ours.1);
    assert!(ours.1.contains("B1 [3] [1] []\n"), "{:#?}", ours.1);
    for sent in [
        "GET /first HTTP/1.0 | x-v: /first-S || ",
        "POST /second/tok42/late HTTP/1.0 | content-length: 7 || b=tok42",
        "GET /pre HTTP/1.0 || ",
        "GET /conn HTTP/1.0 || ",
        "GET /zero0 HTTP/1.0 || ",
    ] {
        assert!(ours.2.contains(sent), "{sent}: {:#?}", ours.2);
    }
    let Some(theirs) = theirs else { return };
    for ((o, t), (b, ..)) in ours.0.iter().zip(&theirs.0).zip(&VARS) {
        assert_eq!(o, t, "{b}: hapx-proxy, then HAProxy");
    }
    assert_eq!(
        ours.1, theirs.1,
        "TCP checks sent: hapx-proxy, then HAProxy"
    );
    assert_eq!(
        ours.2, theirs.2,
        "HTTP checks sent: hapx-proxy, then HAProxy"
    );
}

/// Backends and the state and check status they settle in; the first ones decided as soon
/// as the answer came (their check durations far below `timeout check`).
const EXPECTS: [(&str, &str, &str); 22] = [
    ("garbage", "DOWN", "L7RSP"),
    ("garbage2", "DOWN", "L7RSP"),
    ("chunk_ok", "UP", "L7OK"),
    ("chunk_bad", "DOWN", "L7RSP"),
    ("short_cl", "UP", "L7OK"),
    ("rs_ok", "UP", "L7OK"),
    ("rs_neg", "DOWN", "L7RSP"),
    ("rb_ok", "UP", "L7OK"),
    ("rb_bad", "DOWN", "L7RSP"),
    ("rb_neg", "DOWN", "L7RSP"),
    ("lf_ok", "UP", "L7OK"),
    ("lf_bad", "DOWN", "L7RSP"),
    ("lf_empty", "DOWN", "L7RSP"),
    ("lf_neg", "DOWN", "L7RSP"),
    ("sc_fail", "DOWN", "L7STS"),
    ("sc_str", "UP", "L7OK"),
    ("sc_big", "DOWN", "L7STS"),
    ("sc_tcp", "UP", "L7OK"),
    ("sc_tcp_sts", "DOWN", "L7STS"),
    // Waiting in vain, under a second defaults section's 1 s `timeout check`.
    ("chunk_open_bad", "DOWN", "L7TOUT"),
    ("rs_wait", "DOWN", "L7TOUT"),
    ("rb_lower", "DOWN", "L7TOUT"),
];

/// How many of [`EXPECTS`] are decided as soon as the answer came.
const DECIDED_AT_ONCE: usize = 19;

#[test]
fn regex_status_code_and_early_http_verdicts_behave_like_haproxy() {
    let test = "regex_status_code_and_early_http_verdicts_behave_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let answer = |bytes: &'static [u8]| CheckServer::start(Answer::Bytes(bytes));
    let garbage = answer(b"garbage line here\r\n\r\n");
    let garbage2 = answer(b"garbage\n");
    let chunk_hello =
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    let chunk_other =
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nxxxxx\r\n0\r\n\r\n");
    let chunk_open = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    let short = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello");
    let ok123 = answer(b"OK123\n");
    let ab = answer(b"AB\n");
    let nope = answer(b"NOPE\n");
    let port = free_port();
    let server = |addr: SocketAddr| format!("  server s {addr} check inter 500ms rise 1 fall 1\n");
    let backend = |name: &str, rules: &str, addr: SocketAddr| {
        format!("backend {name}\n{rules}{}", server(addr))
    };
    let tcp = "  mode tcp\n  option tcp-check\n";
    let httpchk = "  option httpchk\n";
    let sections = [
        backend("garbage", httpchk, garbage.addr),
        backend("garbage2", &format!("{httpchk}  http-check expect string x\n"), garbage2.addr),
        backend("chunk_ok", &format!("{httpchk}  http-check expect string hello\n"), chunk_hello.addr),
        backend("chunk_bad", &format!("{httpchk}  http-check expect string hello\n"), chunk_other.addr),
        backend("short_cl", &format!("{httpchk}  http-check expect string hello\n"), short.addr),
        backend("rs_ok", &format!("{tcp}  tcp-check expect rstring ^OK[0-9]+\n"), ok123.addr),
        backend("rs_neg", &format!("{tcp}  tcp-check expect ! rstring ^OK\n"), ok123.addr),
        backend("rb_ok", &format!("{tcp}  tcp-check expect rbinary ^4142\n"), ab.addr),
        backend("rb_bad", &format!("{tcp}  tcp-check expect rbinary ^4F4B min-recv 2\n"), ab.addr),
        backend("rb_neg", &format!("{tcp}  tcp-check expect ! rbinary 41\n"), ab.addr),
        backend("lf_ok", &format!("{httpchk}  http-check expect string-lf \"%[env(WANT)]\"\n"), chunk_hello.addr),
        backend("lf_bad", &format!("{httpchk}  http-check expect string-lf \"%[srv_name]x\" comment cc\n"), chunk_hello.addr),
        backend("lf_empty", &format!("{httpchk}  http-check expect string-lf \"%[env(NOPE)]\"\n"), chunk_hello.addr),
        backend("lf_neg", &format!("{httpchk}  http-check expect ! string-lf \"%[env(WANT)]\"\n"), chunk_hello.addr),
        backend("sc_fail", &format!("{httpchk}  http-check expect status 500 status-code \"int(42)\"\n"), chunk_hello.addr),
        backend("sc_str", &format!("{httpchk}  http-check expect status 200 status-code \"str(7x)\"\n"), chunk_hello.addr),
        backend("sc_big", &format!("{httpchk}  http-check expect status 500 status-code \"int(70000)\"\n"), chunk_hello.addr),
        backend("sc_tcp", &format!("{tcp}  tcp-check expect string OK status-code \"int(42)\"\n"), ok123.addr),
        backend(
            "sc_tcp_sts",
            &format!("{tcp}  tcp-check expect string ZZ min-recv 1 status-code \"int(43)\" error-status L7STS\n"),
            ok123.addr,
        ),
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n  timeout check 1s\n".into(),
        backend("chunk_open_bad", &format!("{httpchk}  http-check expect string zzz\n"), chunk_open.addr),
        backend("rs_wait", &format!("{tcp}  tcp-check send x\\n\n  tcp-check expect rstring ZZZ comment cc\n"), nope.addr),
        backend("rb_lower", &format!("{tcp}  tcp-check expect rbinary 4f4b\n"), ok123.addr),
    ];
    let config = format!(
        "global\n  stats socket {sock} level admin\n  setenv WANT hello\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend garbage\n{}",
        sections.concat(),
        sock = sock.display(),
    );
    let observe = |_| rows(&sock, &EXPECTS);
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (b, state, status)) in ours.0.iter().zip(&EXPECTS) {
        assert_eq!([&row[0], &row[1]], [state, status], "{b}: {row:?}");
    }
    // Decided at once, not at the 5 s `timeout check` (a generous bound).
    for (duration, (b, ..)) in ours.1.iter().zip(&EXPECTS).take(DECIDED_AT_ONCE) {
        assert!(duration.is_some_and(|ms| ms < 2500), "{b}: {duration:?} ms");
    }
    let row = |name: &str| &ours.0[EXPECTS.iter().position(|e| e.0 == name).unwrap()];
    assert_eq!(row("chunk_bad")[3], "HTTP content check did not match");
    assert_eq!(
        row("rs_neg")[3],
        "TCPCHK matched unwanted content (regex) at step 1"
    );
    assert_eq!(
        row("rb_bad")[3],
        "TCPCHK did not match content (binary regex) at step 1"
    );
    assert_eq!(
        row("lf_bad")[3],
        "HTTP content check did not match comment: cc"
    );
    assert_eq!(
        row("lf_empty")[3],
        "log-format string evaluated to an empty string"
    );
    assert_eq!(row("sc_fail")[2], "42");
    assert_eq!(row("sc_str")[2], "7");
    assert_eq!(row("sc_big")[2], "4464");
    assert_eq!(
        row("sc_tcp")[2..],
        ["42".to_string(), "(tcp-check)".to_string()]
    );
    assert_eq!(row("sc_tcp_sts")[2], "43");
    assert_eq!(
        row("rs_wait")[3],
        " at step 2 of tcp-check (expect regex) comment: 'cc'"
    );
    assert_eq!(
        row("rb_lower")[3],
        " at step 1 of tcp-check (expect binary regex)"
    );
    let Some(theirs) = theirs else { return };
    for ((o, t), (b, ..)) in ours.0.iter().zip(&theirs.0).zip(&EXPECTS) {
        assert_eq!(o, t, "{b}: hapx-proxy, then HAProxy");
    }
}

/// Rule errors, defaults' check references and inherited rules: the same exit code and
/// messages as HAProxy's `-c`.
#[test]
fn check_rule_errors_are_reported_like_haproxy() {
    let test = "check_rule_errors_are_reported_like_haproxy";
    let dir = temp_dir(test);
    let haproxy = hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy");
    let defaults =
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n";
    let listen = |rules: &str| {
        format!(
            "{defaults}listen be\n  bind 127.0.0.1:1\n  {rules}\n  server s1 127.0.0.1:1 check\n"
        )
    };
    let mut cases: Vec<(String, i32)> = [
        "option tcp-check\n  tcp-check set-var(x) int(1)",
        "option tcp-check\n  tcp-check set-var() int(1)",
        "option tcp-check\n  tcp-check set-var(check.x int(1)",
        "option tcp-check\n  tcp-check set-var(check.x) nope",
        "option tcp-check\n  tcp-check set-var(check.x) int(abc)",
        "option tcp-check\n  tcp-check set-var(check.x)",
        "option tcp-check\n  tcp-check set-var(check.x) fe_name",
        "option tcp-check\n  tcp-check set-var(check.x,bogus) int(1)",
        "option tcp-check\n  tcp-check unset-var(check.x,ifexists)",
        "option tcp-check\n  tcp-check send-lf \"%[var(x)]\"",
        "option tcp-check\n  tcp-check send-lf \"%[var()]\"",
        "option tcp-check\n  tcp-check send-lf \"%[int()]\"",
        "option httpchk\n  http-check expect rstring-lf x",
        "option httpchk\n  http-check expect status 200 status-code 200",
        "option httpchk\n  http-check expect status 200 status-code \"req.hdr(host)\"",
        "option tcp-check\n  tcp-check expect string OK status-code \"int(x)\"",
        "option httpchk\n  http-check set-var(txn.x) req.hdr(host)",
    ]
    .iter()
    .map(|rules| (listen(rules), 1))
    .collect();
    // Accepted by both.
    cases.push((
        listen(
            "option httpchk\n  http-check set-var(check.x) str(a)\n  http-check unset-var(check.x)\n\
             \x20 http-check set-var-fmt(check.y) \"%[srv_name]\"\n  http-check expect string-lf \"%[var(check.y)]\"",
        ),
        0,
    ));
    cases.push((
        listen("option tcp-check\n  tcp-check set-var(check.x) int(1) if FALSE"),
        0,
    ));
    // A defaults section's check formats are resolved once, as that section's.
    let named = "defaults d1\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n\
                 \x20 option httpchk\n  http-check send uri-lf \"%[nbsrv(nope)]\"\n\
                 \x20 http-check expect status 200 on-error \"%[nbsrv(zz)]\"\n\
                 backend a\n  http-check send uri-lf \"%[nbsrv(q)]\"\n  server s 127.0.0.1:1 check\n\
                 backend b\n  server s 127.0.0.1:1 check\n\
                 listen c\n  bind 127.0.0.1:1\n  server s 127.0.0.1:1 check\n";
    cases.push((named.into(), 1));
    let anonymous = format!(
        "{defaults}  option httpchk\n  http-check send uri-lf \"%[nbsrv(nope)]\"\n\
         backend a\n  server s 127.0.0.1:1 check\n\
         listen b\n  bind 127.0.0.1:1\n  server s 127.0.0.1:1 check\n"
    );
    cases.push((anonymous, 1));
    // Rules inherited without `option httpchk` are ignored silently; a proxy's own are not.
    let inherited = format!(
        "{defaults}  http-check expect status 200\n\
         listen a\n  bind 127.0.0.1:1\n  server s 127.0.0.1:1 check\n\
         backend b\n  http-check expect status 201\n  server s 127.0.0.1:1 check\n"
    );
    cases.push((inherited, 0));
    for (i, (text, code)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let ours = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
        assert_eq!(ours.0, *code, "case {i}: {:#?}", ours.1);
        if haproxy {
            let theirs = check_messages(Path::new(HAPROXY), &file);
            assert_eq!(ours, theirs, "case {i}: hapx-proxy, then HAProxy");
        }
    }
    // The messages of the last three cases: once per defaults section, one warning.
    let messages = |i: usize| {
        check_messages(
            &hapx_tests::bins::path("hapx-proxy"),
            &dir.join(format!("case{i}.cfg")),
        )
        .1
    };
    let n = cases.len();
    let named = messages(n - 3);
    assert_eq!(named.len(), 2, "{named:#?}");
    assert!(
        named[0].contains("multiple argument resolution errors"),
        "{named:#?}"
    );
    assert!(
        named[1].contains("backend 'q'") && named[1].contains("in proxy 'a'"),
        "{named:#?}"
    );
    let anonymous = messages(n - 2);
    assert_eq!(anonymous.len(), 1, "{anonymous:#?}");
    assert!(
        anonymous[0].ends_with("in server directive in proxy ''."),
        "{anonymous:#?}"
    );
    assert_eq!(
        messages(n - 1),
        [
            "WARNING: backend 'b' uses http-check rules without 'option httpchk', so the rules are ignored."
        ]
    );
    // An invalid regex: refused at its line, in PCRE2's words.
    let file = dir.join("regex.cfg");
    std::fs::write(
        &file,
        listen("option tcp-check\n  tcp-check expect rbinary \"[\""),
    )
    .unwrap();
    let (code, messages) = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
    assert_eq!(code, 1, "{messages:#?}");
    assert!(
        messages[0].contains("regex.cfg:9] : 'tcp-check expect' : regex '[' is invalid (error="),
        "{messages:#?}"
    );
}
