//! `tcp-response content` rules in `mode http` backends, beside HAProxy 2.6. HAProxy warns
//! that L6 fetches are ignored on HTTP proxies, yet runs the rules on its internal message:
//! once the request went (on nothing, `res.len` 0), then, with an inspect-delay, as the
//! response comes (`res.len`: the logged size of the head and of the body that came with
//! it); `res.payload`, `res.payload_lv` and `res.ssl_hello_type` find nothing there, at
//! once. A `reject` closes the client connection without a response (`PD--`, status -1,
//! `dresp`), a `close` drops the server connection (what came still goes: `SD--` when the
//! message was not whole). Both proxies must give each client the same bytes, log the
//! same lines and count the same.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_rules::{check_alike, masked_timers, section_counters};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
/// The longest any read of a test waits (an upper bound, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n";
const BODY: &[u8] = b"hello";
/// How long `/split` waits for its release: well within the sections' 5 s delay.
const UNRELEASED: Duration = Duration::from_millis(300);
/// How long `/slow` waits before it answers: well past the sections' 200 ms delay.
const SLOW: Duration = Duration::from_millis(1200);

/// An HTTP server on loopback: `/` answers at once, `/split` sends its head, then its body
/// once the test releases it (`release`) or after [`UNRELEASED`] (for a rule that holds
/// the head until the body comes), `/slow` answers after [`SLOW`].
fn server() -> (SocketAddr, Sender<()>) {
    let listener = TcpListener::bind((LO, 0)).expect("a server socket");
    let addr = listener.local_addr().unwrap();
    let (release, released) = channel();
    let released = Arc::new(Mutex::new(released));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let released = released.clone();
            std::thread::spawn(move || serve(conn, &released));
        }
    });
    (addr, release)
}

fn serve(conn: TcpStream, released: &Mutex<Receiver<()>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("a second handle"));
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("/").to_string();
        // The rest of the head.
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let sent = match path.as_str() {
            "/split" => {
                let released = released.lock().unwrap();
                // A release an earlier request's client sent once its body had come.
                while released.try_recv().is_ok() {}
                out.write_all(HEAD).and_then(|()| {
                    let _ = released.recv_timeout(UNRELEASED);
                    out.write_all(BODY)
                })
            }
            "/slow" => {
                std::thread::sleep(SLOW);
                out.write_all(&[HEAD, BODY].concat())
            }
            _ => out.write_all(&[HEAD, BODY].concat()),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// One client connection sending `paths` in turn while the proxy keeps it: per request,
/// what came back (`<EOF>` when the proxy closed). For `/split`, the server's body is
/// released once the client has the head alone (a rule may hold it: the body then comes
/// unreleased).
fn client(port: u16, paths: &[&str], release: &Sender<()>) -> Vec<String> {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut seen = Vec::new();
    for path in paths {
        conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut released = *path != "/split";
        let end = loop {
            // A whole answer: the server's, or the proxy's own page.
            if got.ends_with(BODY) || got.ends_with(b"</html>\n") {
                break "";
            }
            if !released && got.windows(4).any(|w| w == b"\r\n\r\n") {
                released = release.send(()).is_ok();
            }
            match conn.read(&mut buf) {
                Ok(0) => break "<EOF>",
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break "<error>",
            }
        };
        seen.push(format!("{path} {:?}{end}", String::from_utf8_lossy(&got)));
        if !end.is_empty() {
            break;
        }
    }
    seen
}

/// The listen sections compared: name, rules, and the requests of its client connection.
const CASES: [(&str, &str, &[&str]); 11] = [
    // Without a delay, the rules decide on nothing yet: `res.len` is 0.
    (
        "rej",
        "  tcp-response content reject if { res.len gt 0 }\n",
        &["/"],
    ),
    (
        "rejd",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len gt 0 }\n",
        &["/"],
    ),
    // The head and what came with it, the head alone (53), nothing at the delay's end.
    (
        "var",
        "  tcp-response inspect-delay 200ms\n  tcp-response content set-var(txn.l) res.len if { res.len gt 0 }\n  http-response set-header X-L %[var(txn.l)]\n",
        &["/", "/split", "/slow"],
    ),
    // More than the head: the rule waits for the body.
    (
        "var60",
        "  tcp-response inspect-delay 5s\n  tcp-response content set-var(txn.l) res.len if { res.len gt 55 }\n  http-response set-header X-L %[var(txn.l)]\n",
        &["/", "/split"],
    ),
    ("rejall", "  tcp-response content reject\n", &["/", "/"]),
    (
        "closed",
        "  tcp-response inspect-delay 5s\n  tcp-response content close if { res.len gt 0 }\n",
        &["/", "/split"],
    ),
    (
        "rejbody",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len gt 55 }\n",
        &["/split"],
    ),
    // `timeout server` ends the wait for a rule (504, `sH--`), the delay not over.
    (
        "late",
        "  timeout server 300ms\n  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len gt 0 }\n",
        &["/slow"],
    ),
    // The fetches of the response's bytes find nothing in the internal message, at once:
    // the rule never matches (no wait for the delay), `unless` always does.
    (
        "pay",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,4) -m bin 48545450 }\n",
        &["/", "/split"],
    ),
    (
        "paylv",
        "  tcp-response inspect-delay 5s\n  tcp-response content reject unless { res.payload_lv(0,1) -m found }\n",
        &["/"],
    ),
    (
        "hello",
        "  tcp-response inspect-delay 5s\n  tcp-response content set-var(txn.h) res.ssl_hello_type\n  http-response set-header X-H %[var(txn.h)]\n",
        &["/"],
    ),
];

/// What one proxy did: each client's view and the log lines (timers masked), then the
/// counters.
fn run(binary: PathBuf, dir: &Path, name: &str) -> (Vec<String>, Vec<String>) {
    let (addr, release) = server();
    let log = dir.join(format!("{name}.log"));
    let log_sock = UnixDatagram::bind(&log).expect("a log socket");
    log_sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let socket = dir.join(format!("{name}.sock"));
    let mut cfg = format!(
        "global\n  log {} local0\n  stats socket {} level admin\ndefaults\n  mode http\n  log global\n  option httplog\n  \
         timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n",
        log.display(),
        socket.display()
    );
    let mut ports = Vec::new();
    for (section, rules, _) in CASES {
        let port = free_port();
        cfg += &format!("listen {section}\n  bind {LO}:{port}\n{rules}  server s {addr}\n");
        ports.push(port);
    }
    let first = SocketAddr::from((LO, ports[0]));
    let proxy = Proxy::start_with(binary, dir, name, &cfg, first, &[]);
    let mut seen = Vec::new();
    for ((section, _, paths), port) in CASES.iter().zip(&ports) {
        let got = client(*port, paths, &release);
        let idle = || cli(&socket, "show info").contains("\nCurrConns: 0\n");
        assert!(wait_until(PATIENCE, idle), "{name}: a session left");
        for answer in &got {
            let mut buf = [0u8; 2048];
            let n = log_sock.recv(&mut buf).expect("a log line");
            let line = masked_timers(&String::from_utf8_lossy(&buf[..n]), 5);
            seen.push(format!("{section} {answer}, log {line}"));
        }
    }
    let csv = cli(&socket, "show stat");
    let counters = section_counters(
        &csv,
        CASES.iter().map(|(section, ..)| *section),
        &["stot", "bout", "dresp", "hrsp_2xx", "hrsp_other"],
    );
    drop(proxy);
    (seen, counters)
}

/// Accepted, rejected and closed responses, and `res.len` as the rules see it, beside
/// HAProxy.
#[test]
fn response_rules_run_on_the_http_message() {
    let test = "tcp-response-http";
    let dir = temp_dir(test);
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    let whole = r#""HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\nhello""#;
    let with = |l: u32| {
        format!(r#""HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\nx-l: {l}\r\n\r\nhello""#)
    };
    let unset = r#""HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\nx-l: \r\n\r\nhello""#;
    let unset_h = r#""HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\nx-h: \r\n\r\nhello""#;
    let expected = [
        format!(r#"rej / {whole}, log rej rej/s T/T/T/T/T 200 58 - - ----"#),
        r#"rejd / ""<EOF>, log rejd rejd/s T/T/T/-1/T -1 58 - - PD--"#.to_string(),
        format!("var / {}, log var var/s T/T/T/T/T 200 58 - - ----", with(58)),
        format!("var /split {}, log var var/s T/T/T/T/T 200 58 - - ----", with(53)),
        format!("var /slow {unset}, log var var/s T/T/T/T/T 200 58 - - ----"),
        format!("var60 / {}, log var60 var60/s T/T/T/T/T 200 58 - - ----", with(58)),
        format!("var60 /split {}, log var60 var60/s T/T/T/T/T 200 58 - - ----", with(58)),
        r#"rejall / ""<EOF>, log rejall rejall/s T/T/T/-1/T -1 0 - - PD--"#.to_string(),
        format!(r#"closed / {whole}, log closed closed/s T/T/T/T/T 200 58 - - ----"#),
        r#"closed /split "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\n"<EOF>, log closed closed/s T/T/T/T/T 200 53 - - SD--"#.to_string(),
        r#"rejbody /split ""<EOF>, log rejbody rejbody/s T/T/T/-1/T -1 58 - - PD--"#.to_string(),
        r#"late /slow "HTTP/1.1 504 Gateway Time-out\r\n"#.to_string(),
        format!(r#"pay / {whole}, log pay pay/s T/T/T/T/T 200 58 - - ----"#),
        format!(r#"pay /split {whole}, log pay pay/s T/T/T/T/T 200 58 - - ----"#),
        r#"paylv / ""<EOF>, log paylv paylv/s T/T/T/-1/T -1 0 - - PD--"#.to_string(),
        format!("hello / {unset_h}, log hello hello/s T/T/T/T/T 200 58 - - ----"),
    ];
    let mut runs = Vec::new();
    for (name, binary) in list {
        let (seen, counters) = run(binary, &dir, name);
        assert_eq!(seen.len(), expected.len(), "{name}: {seen:#?}");
        for (line, want) in seen.iter().zip(&expected) {
            assert!(line.starts_with(want), "{name}: {line}\n  expected {want}");
        }
        let late = (seen.iter().find(|l| l.starts_with("late "))).map_or("", String::as_str);
        assert!(
            late.contains(", log late late/s T/T/T/-1/T 504 198 - - sH--"),
            "{name}: {late}"
        );
        for want in [
            "late/s.dresp=0",
            "rejd/FRONTEND.dresp=1",
            "rejd/s.bout=58",
            "rejd/BACKEND.hrsp_other=1",
            "rejall/s.dresp=1",
            "rejall/BACKEND.bout=0",
            "rejbody/s.dresp=1",
            "rej/s.dresp=0",
            "closed/s.stot=2",
            "closed/BACKEND.bout=111",
            "paylv/s.dresp=1",
            "pay/s.dresp=0",
        ] {
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

/// The configuration check: rules reading `res.len`, `res.payload`, `res.payload_lv` or
/// `res.ssl_hello_type` are warned about as HAProxy warns (`L6 sample fetches ignored on
/// HTTP proxies`, for a condition only), and run.
#[test]
fn http_mode_response_rules_are_warned_about_as_haproxy_does() {
    let text = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
        backend b\n  tcp-response inspect-delay 1s\n  tcp-response content reject if { res.len gt 0 }\n\
        \x20 tcp-response content set-var(txn.l) res.len\n\
        \x20 tcp-response content reject if { res.payload(0,1) -m bin 00 }\n\
        \x20 tcp-response content set-var(txn.h) res.ssl_hello_type\n\
        \x20 tcp-response content close if { res.payload_lv(0,1) -m found }\n\
        \x20 tcp-response content accept\n  server s 127.0.0.1:1\n";
    let (_, messages) = check_alike("tcp-response-http-check", text);
    assert!(
        !(messages.iter()).any(|m| m.starts_with("ALERT")),
        "{messages:?}"
    );
    let warned = |m: &String| {
        m.contains("Proxy 'b': L6 sample fetches ignored on HTTP proxies (declared at ")
            && m.ends_with("case.cfg:8).")
    };
    assert!(messages.iter().any(warned), "{messages:?}");
}
