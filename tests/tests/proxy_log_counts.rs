//! What the log lines and the stats count, hapx-proxy beside HAProxy 2.6 on the same
//! configuration and traffic, where they once differed:
//!
//! - `%sc` (the server's connections in the `actconn/feconn/beconn/srv_conn/retries`
//!   group) of a stream that holds no slot of its server: one that waited in the server's
//!   own queue (`sQ`) or failed to connect (`SC`). HAProxy logs the server's `cur_sess`,
//!   which such a stream is not part of (measured: the holder's 1).
//! - `%B` and `show stat` bout of a response whose client reset before it or during its
//!   body: HAProxy counts what it took from the server for the client, the part whose
//!   write failed included (measured: 51 bytes, not 49, for a 2-byte body after the head).
//! - flag options given an argument: `'option persist' cannot handle unexpected argument
//!   'extra'.`, fatal, before the option's capability is looked at; `no` on an option that
//!   is no flag: `negation/default is not supported for option 'tcplog'.`; `option
//!   redispatch` reads its argument as atol() does (a word is 0).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{Syslog, check_both};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// hapx-proxy, then HAProxy when installed (skipped loudly without it, failing under CI=1).
fn proxies(test: &str) -> Vec<PathBuf> {
    let mut list = vec![hapx_tests::bins::path("hapx-proxy")];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(PathBuf::from(HAPROXY));
    }
    list
}

/// A configuration logging `option {log}` to `syslog`, with a stats socket, a frontend `fe`
/// on `front` and a backend `be` (`backend` lines) with server `s1` at `server` (`server_opts`
/// after its address).
fn config(
    syslog: &Syslog,
    socket: &Path,
    (mode, log): (&str, &str),
    front: SocketAddr,
    backend: &str,
    server: (SocketAddr, &str),
) -> String {
    format!(
        "global\n  log {} local0\n  stats socket {} level admin\n\
         defaults\n  mode {mode}\n  log global\n  option {log}\n  retries 0\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n{backend}  server s1 {} {}\n",
        syslog.addr,
        socket.display(),
        server.0,
        server.1,
    )
}

/// The `actconn/feconn/beconn/srv_conn/retries` group of a tcplog or httplog line: the
/// fifth of the line's words made of five numbers.
fn counts_group(line: &str) -> String {
    let five_numbers = |w: &&str| {
        let parts: Vec<&str> = w.split('/').collect();
        parts.len() == 5
            && parts.iter().all(|p| {
                let digits = p.trim_start_matches(['+', '-']);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            })
    };
    // The timers come first (five of them in httplog); the counts follow the status.
    let groups: Vec<&str> = line.split_whitespace().filter(five_numbers).collect();
    groups.last().map_or_else(String::new, |g| g.to_string())
}

/// The line of the client at `port` among `lines`.
fn line_of(lines: &[String], port: u16) -> &str {
    lines
        .iter()
        .find(|l| l.contains(&format!(":{port} ")))
        .unwrap_or_else(|| panic!("no log line of port {port} in {lines:?}"))
}

// `%sc` of a stream that holds no slot.

/// TCP: a server that accepted one connection (kept open) then stopped listening. The
/// second client's connection is refused (`SC`): the line counts the holder alone.
#[test]
fn tcp_connection_refused_counts_the_other_connections_of_its_server() {
    let mut seen = Vec::new();
    for binary in proxies("lc-tcp-sc") {
        let dir = temp_dir("lc-tcp-sc");
        let syslog = Syslog::bind();
        let socket = dir.join("stats.sock");
        let front = SocketAddr::from((LO, free_port()));
        let listener = TcpListener::bind((LO, 0)).expect("binding a server");
        let server = listener.local_addr().expect("its address");
        let (accepted_tx, accepted) = mpsc::channel();
        let acceptor = thread::spawn(move || {
            let conn = listener.accept().map(|(c, _)| c);
            let _ = accepted_tx.send(());
            // The listener closes here: later connections are refused.
            conn
        });
        let text = config(&syslog, &socket, ("tcp", "tcplog"), front, "", (server, ""));
        let proxy = Proxy::start_with(binary.clone(), &dir, "p", &text, front, &[]);
        let mut holder = TcpStream::connect(front).expect("the first client");
        holder.write_all(b"hello").unwrap();
        accepted
            .recv_timeout(Duration::from_secs(5))
            .expect("the server accepted the first connection");
        let _held = acceptor.join().expect("the acceptor");
        // The server accepts before the proxy counts the connection as its server's (HAProxy
        // counts it after its connect() returns, on a thread that may be preempted).
        let scur = || stat_row(&cli(&socket, "show stat"), "be", "s1").map(|r| r["scur"].clone());
        assert!(wait_until(Duration::from_secs(5), || scur().as_deref() == Some("1")));
        let refused = TcpStream::connect(front).expect("the second client");
        let port = refused.local_addr().expect("its address").port();
        let lines = syslog.lines(1);
        let line = line_of(&lines, port);
        assert!(line.contains(" SC "), "{}: {line}", binary.display());
        let counts = counts_group(line);
        // The process's and frontend's two, the backend's one (the holder), the server's one.
        assert_eq!(counts, "2/2/1/1/0", "{}: {line}", binary.display());
        seen.push(counts);
        drop((refused, holder, proxy));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

/// A server whose every request waits until `release` answers it; its connections are
/// counted in `accepted`.
struct HeldServer {
    addr: SocketAddr,
    release: mpsc::Sender<()>,
}

impl HeldServer {
    fn start() -> HeldServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding a server");
        let addr = listener.local_addr().expect("its address");
        let (release, released) = mpsc::channel::<()>();
        thread::spawn(move || {
            let released = std::sync::Mutex::new(released);
            for mut conn in listener.incoming().flatten() {
                let _ = read_head(&mut conn);
                let _ = released.lock().unwrap().recv();
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        HeldServer { addr, release }
    }
}

/// Reads up to the end of a request or response head.
fn read_head(conn: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    buf
}

/// HTTP: the server (`maxconn 1`) busy with a held request, the next one waits in its own
/// queue (`balance source`) until `timeout queue`: `sQ`, the server named, the holder alone
/// counted.
#[test]
fn http_server_queue_timeout_counts_the_holder_alone() {
    let seen = server_queue_lines("lc-http-sq", "maxconn 1", 1);
    for (name, line) in &seen {
        assert!(line.starts_with("be/s1 T/T/-1/-1/T 503 "), "{name}: {line}");
        assert!(line.contains(" sQ-- 2/2/1/1/0 1/0 "), "{name}: {line}");
    }
    assert!(seen.windows(2).all(|w| w[0].1 == w[1].1), "{seen:?}");
}

/// HTTP: the server's queue full (`maxqueue 1`, one waiting): the next request is refused
/// at once (`SQ`, no queue time), the server named, the waiting one not counted on it.
#[test]
fn http_server_queue_full_as_haproxy() {
    let seen = server_queue_lines("lc-http-sq-full", "maxconn 1 maxqueue 1", 2);
    for (name, line) in &seen {
        assert!(
            line.starts_with("be/s1 T/-1/-1/-1/T 503 "),
            "{name}: {line}"
        );
        assert!(line.contains(" SQ-- 3/3/2/1/0 0/0 "), "{name}: {line}");
    }
    assert!(seen.windows(2).all(|w| w[0].1 == w[1].1), "{seen:?}");
}

/// Each proxy's line (from its backend's name on) of the last of `waiting` requests sent
/// while a held one takes the server (`server_opts`) of a `balance source` backend with a
/// `timeout queue` of 300 ms.
fn server_queue_lines(test: &str, server_opts: &str, waiting: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for binary in proxies(test) {
        let dir = temp_dir(test);
        let syslog = Syslog::bind();
        let socket = dir.join("stats.sock");
        let front = SocketAddr::from((LO, free_port()));
        let server = HeldServer::start();
        let backend = "  balance source\n  timeout queue 300ms\n";
        let server_line = (server.addr, server_opts);
        let text = config(
            &syslog,
            &socket,
            ("http", "httplog"),
            front,
            backend,
            server_line,
        );
        let proxy = Proxy::start_with(binary.clone(), &dir, "p", &text, front, &[]);
        let stat = |row: &str, field: &str| {
            stat_row(&cli(&socket, "show stat"), "be", row).map(|r| r[field].clone())
        };
        let mut holder = TcpStream::connect(front).expect("the first client");
        holder
            .write_all(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        assert!(wait_until(Duration::from_secs(5), || stat("s1", "scur")
            .as_deref()
            == Some("1")));
        let mut clients = Vec::new();
        for i in 0..waiting {
            let mut queued = TcpStream::connect(front).expect("a queued client");
            queued
                .write_all(b"GET /q HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let port = queued.local_addr().expect("its address").port();
            clients.push((queued, port));
            if i + 1 < waiting {
                let depth = (i + 1).to_string();
                let queued = || stat("s1", "qcur").as_deref() == Some(depth.as_str());
                assert!(wait_until(Duration::from_secs(5), queued));
            }
        }
        let port = clients.last().expect("a client").1;
        let lines = syslog.lines(1);
        let line = line_of(&lines, port);
        let from = line.find(" be/").map_or(line, |i| &line[i..]);
        // Its timers masked (whether each was reached kept).
        let shown: Vec<String> = from
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| match i {
                1 => w
                    .split('/')
                    .map(|t| if t == "-1" { "-1" } else { "T" })
                    .collect::<Vec<_>>()
                    .join("/"),
                _ => w.to_string(),
            })
            .collect();
        seen.push((binary.display().to_string(), shown.join(" ")));
        let _ = server.release.send(());
        drop((clients, holder, proxy));
    }
    seen
}

// `%B` and bout of a response whose client reset.

/// How the server delimits its 10-byte body (`abcd`, then `efghij`).
#[derive(Debug, Clone, Copy)]
enum Body {
    Sized,
    Chunked,
    UntilClose,
}

impl Body {
    /// The response's head, and its body's two parts as they go on the wire.
    fn parts(self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        match self {
            Body::Sized => (
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
                b"abcd",
                b"efghij",
            ),
            Body::Chunked => (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                b"4\r\nabcd\r\n",
                b"6\r\nefghij\r\n0\r\n\r\n",
            ),
            Body::UntilClose => (
                b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
                b"abcd",
                b"efghij",
            ),
        }
    }
}

/// When the client resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    /// Before the response: the server sends it whole after the reset.
    BeforeHead,
    /// After the head and the body's first part reached it: the server sends the rest.
    DuringBody,
}

/// What one proxy counted for the reset client's response: `%B` of its line, and bout of
/// the frontend, the backend and the server.
fn reset_client(binary: &Path, test: &str, body: Body, reset: Reset) -> (String, [String; 3]) {
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let server = listener.local_addr().expect("its address");
    let (go_tx, go) = mpsc::channel::<()>();
    let (head, first, rest) = body.parts();
    let served = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("the proxy's connection");
        read_head(&mut conn);
        if reset == Reset::DuringBody {
            let mut start = head.to_vec();
            start.extend_from_slice(first);
            conn.write_all(&start).unwrap();
            go.recv().unwrap();
            let _ = conn.write_all(rest);
        } else {
            go.recv().unwrap();
            let whole = [head, first, rest].concat();
            let _ = conn.write_all(&whole);
        }
        // Until the proxy closes: the body ends with the server's close only then.
        let mut sink = [0u8; 64];
        if let Body::UntilClose = body {
            drop(conn);
        } else {
            while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
        }
    });
    let text = config(
        &syslog,
        &socket,
        ("http", "httplog"),
        front,
        "",
        (server, ""),
    );
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, "p", &text, front, &[]);
    let mut client = TcpStream::connect(front).expect("the client");
    let port = client.local_addr().expect("its address").port();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    if reset == Reset::DuringBody {
        // The head and the first part, then the reset.
        let wanted = head.len() + first.len();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        while got.len() < wanted {
            match client.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => panic!("{}: the response's start did not come", binary.display()),
            }
        }
    } else {
        // The request reached the server before the client goes.
        let stat = || stat_row(&cli(&socket, "show stat"), "be", "s1").map(|r| r["scur"].clone());
        assert!(wait_until(Duration::from_secs(5), || stat().as_deref() == Some("1")));
    }
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    // Time for the reset to reach the proxy's socket before the server's bytes come
    // (loopback: at once); a proxy that counts right passes however long this is.
    thread::sleep(Duration::from_millis(200));
    go_tx.send(()).unwrap();
    let lines = syslog.lines(1);
    let line = line_of(&lines, port).to_string();
    let fe_scur =
        || stat_row(&cli(&socket, "show stat"), "fe", "FRONTEND").map(|r| r["scur"].clone());
    assert!(wait_until(Duration::from_secs(5), || fe_scur().as_deref() == Some("0")));
    let csv = cli(&socket, "show stat");
    let bout = [("fe", "FRONTEND"), ("be", "BACKEND"), ("be", "s1")].map(|(px, row)| {
        let values = stat_row(&csv, px, row).expect("a stat row");
        format!("{row}.bout={}", values["bout"])
    });
    drop(proxy);
    // The server holds a kept-alive connection until the proxy closes it (HAProxy keeps
    // it idle for reuse): it ends with the proxy, which the counts above did not wait for.
    served.join().expect("the server");
    // `%B` follows the status in httplog.
    let words: Vec<&str> = line.split_whitespace().collect();
    let status = words.iter().position(|w| *w == "200").expect("a 200 line");
    (words[status + 1].to_string(), bout)
}

fn compare_reset(test: &str, body: Body, reset: Reset) {
    let mut seen = Vec::new();
    for binary in proxies(test) {
        let got = reset_client(&binary, test, body, reset);
        let bytes: u64 = got.0.parse().expect("a byte count");
        // Every count the same: the line's and the three rows'.
        for b in &got.1 {
            assert!(
                b.ends_with(&format!("={bytes}")),
                "{}: {got:?}",
                binary.display()
            );
        }
        seen.push(got);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "hapx-proxy, then HAProxy: {seen:?}"
    );
}

#[test]
fn sized_response_to_a_client_reset_before_it_counts_what_was_taken() {
    compare_reset("lc-reset-head-sized", Body::Sized, Reset::BeforeHead);
}

#[test]
fn chunked_response_to_a_client_reset_before_it_counts_what_was_taken() {
    compare_reset("lc-reset-head-chunked", Body::Chunked, Reset::BeforeHead);
}

#[test]
fn close_delimited_response_to_a_client_reset_before_it_counts_what_was_taken() {
    compare_reset("lc-reset-head-close", Body::UntilClose, Reset::BeforeHead);
}

#[test]
fn sized_response_to_a_client_reset_during_its_body_counts_what_was_taken() {
    compare_reset("lc-reset-body-sized", Body::Sized, Reset::DuringBody);
}

#[test]
fn chunked_response_to_a_client_reset_during_its_body_counts_what_was_taken() {
    compare_reset("lc-reset-body-chunked", Body::Chunked, Reset::DuringBody);
}

#[test]
fn close_delimited_response_to_a_client_reset_during_its_body_counts_what_was_taken() {
    compare_reset("lc-reset-body-close", Body::UntilClose, Reset::DuringBody);
}

// Options given arguments.

/// `line` in a `listen` section and in a frontend (which lacks the backend capability),
/// checked by both: the same exit code and messages.
fn check_option_line(dir: &Path, case: usize, line: &str) -> (i32, Vec<String>) {
    let text = format!(
        "defaults\n  mode http\n  log 127.0.0.1:9 local0\n\
         \x20 timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         listen l\n  bind 127.0.0.1:1\n  {line}\n  server s 127.0.0.1:2\n\
         frontend f\n  bind 127.0.0.1:3\n  {line}\n  default_backend l\n"
    );
    let file = dir.join(format!("case{case}.cfg"));
    std::fs::write(&file, text).expect("writing the configuration");
    let [hapx, haproxy] = check_both(&file);
    assert_eq!(hapx, haproxy, "{line}: hapx-proxy, then HAProxy");
    hapx
}

/// Every flag option hapx implements refuses an argument, with `no` too, before its
/// capability is looked at (a fatal alert for the frontend's line as for the listen's).
#[test]
fn flag_options_refuse_an_argument() {
    const FLAGS: [&str; 23] = [
        "abortonclose",
        "allbackups",
        "clitcpka",
        "dontlog-normal",
        "dontlognull",
        "h1-case-adjust-bogus-client",
        "h1-case-adjust-bogus-server",
        "http-ignore-probes",
        "http-keep-alive",
        "http-server-close",
        "httpclose",
        "log-health-checks",
        "log-separate-errors",
        "logasap",
        "nolinger",
        "persist",
        "prefer-last-server",
        "splice-auto",
        "splice-request",
        "splice-response",
        "srvtcpka",
        "tcp-smart-accept",
        "tcp-smart-connect",
    ];
    if !hapx_tests::require::path("lc-flag-args", Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir("lc-flag-args");
    let mut case = 0;
    for name in FLAGS {
        for negation in ["", "no "] {
            case += 1;
            let (code, messages) =
                check_option_line(&dir, case, &format!("{negation}option {name} extra"));
            let refusal = format!("'option {name}' cannot handle unexpected argument 'extra'.");
            assert_ne!(code, 0, "{negation}option {name} extra");
            assert_eq!(messages.len(), 2, "{messages:?}");
            assert!(
                messages
                    .iter()
                    .all(|m| m.starts_with("ALERT: ") && m.ends_with(&refusal))
            );
            case += 1;
            let (code, _) = check_option_line(&dir, case, &format!("{negation}option {name}"));
            assert_eq!(code, 0, "{negation}option {name}");
        }
    }
}

/// The options that take arguments keep them; those that are no flags refuse `no`; the
/// others refuse what they do not take, each with HAProxy's words.
#[test]
fn options_with_arguments_as_haproxy() {
    if !hapx_tests::require::path("lc-option-args", Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir("lc-option-args");
    let lines = [
        ("option redispatch extra", 0),
        ("option redispatch 2x", 0),
        ("no option redispatch extra", 0),
        ("option httplog clf", 0),
        ("option httplog clf extra", 1),
        ("option httplog extra", 1),
        ("no option httplog", 1),
        ("option tcplog extra", 1),
        ("no option tcplog", 1),
        ("option tcpka extra", 1),
        ("no option tcpka", 1),
        ("option tcp-check extra", 1),
        ("no option tcp-check", 1),
        ("option ssl-hello-chk extra", 1),
        ("option httpchk GET / HTTP/1.1", 0),
        ("option httpchk GET / HTTP/1.1 extra", 1),
        ("no option httpchk", 1),
        ("option forwardfor header X-Client if-none", 0),
        ("option forwardfor extra", 1),
        ("option forwardfor header", 1),
        ("option forwardfor except", 1),
        ("option forwardfor except nowhere", 1),
        ("no option forwardfor", 1),
        ("no option bogus", 1),
    ];
    for (case, (line, code)) in lines.into_iter().enumerate() {
        let (got, messages) = check_option_line(&dir, case, line);
        assert_eq!(got, code, "{line}: {messages:?}");
    }
}

/// `option logasap`: the line goes as the response head is forwarded (the body still to
/// come) or once connected (TCP), the stream counted on its backend and its server.
#[test]
fn logasap_lines_count_their_own_stream() {
    for (mode, log) in [
        ("http", "httplog\n  option logasap"),
        ("tcp", "tcplog\n  option logasap"),
    ] {
        let mut seen = Vec::new();
        for binary in proxies("lc-logasap") {
            let dir = temp_dir("lc-logasap");
            let syslog = Syslog::bind();
            let socket = dir.join("stats.sock");
            let front = SocketAddr::from((LO, free_port()));
            let listener = TcpListener::bind((LO, 0)).expect("binding a server");
            let server = listener.local_addr().expect("its address");
            let (release, released) = mpsc::channel::<()>();
            let served = thread::spawn(move || {
                let (mut conn, _) = listener.accept().expect("the proxy's connection");
                read_head(&mut conn);
                // The head and part of the body; the rest once released.
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabcd");
                let _ = released.recv();
                let _ = conn.write_all(b"efghij");
            });
            let text = config(&syslog, &socket, (mode, log), front, "", (server, ""));
            let proxy = Proxy::start_with(binary.clone(), &dir, "p", &text, front, &[]);
            // The start's readiness probe gone (HAProxy counts its close on another thread).
            let idle = || cli(&socket, "show info").contains("\nCurrConns: 0\n");
            assert!(wait_until(Duration::from_secs(5), idle));
            let mut client = TcpStream::connect(front).expect("the client");
            let port = client.local_addr().expect("its address").port();
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let lines = syslog.lines(1);
            let counts = counts_group(line_of(&lines, port));
            assert_eq!(
                counts,
                "1/1/1/1/0",
                "{mode} {}: {lines:?}",
                binary.display()
            );
            seen.push(counts);
            release.send(()).unwrap();
            served.join().expect("the server");
            drop((client, proxy));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{mode}: {seen:?}");
    }
}
