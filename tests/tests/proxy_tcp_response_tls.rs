//! `tcp-response content` rules behind TLS, beside HAProxy 2.6: a `bind ... ssl` frontend, a
//! `server ... ssl`, and both. HAProxy judges the server's plaintext there as on plain
//! sockets (measured: the same verdicts, `PD` logs, `dresp` and `bout` counts); hapx must
//! give each client the same bytes and end, and log and count the same.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_rules::{masked_timers, section_counters};
use hapx_tests::proxy_tls::{ClientHello, Pki, TlsClient};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
const BANNER: &[u8] = b"SSH-2.0-test\r\n";
/// The longest any read of a test waits (an upper bound, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);

/// A stream a test server or client speaks through: plain, or TLS over a socket.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A server on loopback (through TLS with `tls`) that sends `banner` at once on each
/// connection, then answers each read with `RE:` and what it read.
fn server(banner: &'static [u8], tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("a server socket");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tls = tls.clone();
            std::thread::spawn(move || {
                let mut stream: Box<dyn Stream> = match tls {
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        Box::new(rustls::StreamOwned::new(session, conn))
                    }
                    None => Box::new(conn),
                };
                serve(&mut *stream, banner);
            });
        }
    });
    addr
}

fn serve(conn: &mut dyn Stream, banner: &[u8]) {
    if !banner.is_empty() && conn.write_all(banner).and_then(|()| conn.flush()).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        let mut answer = b"RE:".to_vec();
        answer.extend_from_slice(&buf[..n]);
        if conn.write_all(&answer).and_then(|()| conn.flush()).is_err() {
            return;
        }
    }
}

/// One client (through TLS with `tls`): sends `send`, then reads `expect` bytes (a kept
/// session) or, with `expect` None, everything until the proxy closes. What it received,
/// and how the session stood.
fn client(port: u16, tls: bool, send: &[u8], expect: Option<usize>) -> String {
    let addr = SocketAddr::from((LO, port));
    let mut conn: Box<dyn Stream> = if tls {
        let client = TlsClient::connect(addr, &ClientHello::default()).expect("a handshake");
        Box::new(client.stream)
    } else {
        let conn = TcpStream::connect(addr).expect("connecting to the proxy");
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        Box::new(conn)
    };
    if !send.is_empty() {
        conn.write_all(send).unwrap();
        conn.flush().unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if expect.is_some_and(|n| got.len() >= n) {
            break "kept";
        }
        match conn.read(&mut buf) {
            Ok(0) => break "closed",
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A TLS peer's FIN without close_notify ends it too.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break "closed",
            Err(_) => break "error",
        }
    };
    format!("{:?} {end}", String::from_utf8_lossy(&got))
}

/// The listen sections compared: name, TLS on the client's side, TLS on the server's,
/// rules, and whether the server sends a banner first.
const CASES: [(&str, bool, bool, &str, bool); 8] = [
    (
        "rej",
        true,
        false,
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,3) -m bin 535348 }\n",
        true,
    ),
    (
        "after",
        true,
        false,
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,5) -m bin 52453a4243 }\n  tcp-response content accept if { res.len gt 4 }\n",
        false,
    ),
    (
        "srvssl",
        false,
        true,
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,5) -m bin 52453a4243 }\n  tcp-response content accept if { res.len gt 4 }\n",
        false,
    ),
    (
        "both",
        true,
        true,
        "  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.payload(0,3) -m bin 535348 }\n",
        true,
    ),
    (
        "close",
        true,
        false,
        "  tcp-response inspect-delay 5s\n  tcp-response content close if { res.payload(0,3) -m bin 535348 }\n",
        true,
    ),
    // A rule that never decides: the data waits for the delay's end, then passes.
    (
        "wait",
        true,
        true,
        "  tcp-response inspect-delay 500ms\n  tcp-response content set-var(sess.l) res.len\n  tcp-response content reject if { res.len gt 100 }\n",
        true,
    ),
    // A side's timeout ends the wait: what was held goes to the client first.
    (
        "clilate",
        true,
        false,
        "  timeout client 1s\n  tcp-response inspect-delay 8s\n  tcp-response content reject if { res.len gt 100 }\n",
        true,
    ),
    (
        "srvlate",
        false,
        true,
        "  timeout server 1s\n  tcp-response inspect-delay 8s\n  tcp-response content reject if { res.len gt 100 }\n",
        false,
    ),
];

/// The clients, in order: section, what it sends, how many bytes it waits for (None: until
/// the proxy closes).
const CLIENTS: [(&str, &str, Option<usize>); 10] = [
    ("rej", "", None),
    ("after", "AB", Some(5)),
    ("after", "BC", None),
    ("srvssl", "AB", Some(5)),
    ("srvssl", "BC", None),
    ("both", "", None),
    ("close", "", None),
    ("wait", "x", Some(BANNER.len() + 4)),
    ("clilate", "", None),
    ("srvlate", "x", None),
];

/// What one proxy did with each client (its view and the log line, masked), then the
/// counters.
fn run(binary: PathBuf, dir: &Path, pki: &Pki, name: &str) -> (Vec<String>, Vec<String>) {
    let tls = Some(pki.server_config(false));
    let servers = [
        (false, false, server(BANNER, None)),
        (false, true, server(BANNER, tls.clone())),
        (true, false, server(b"", None)),
        (true, true, server(b"", tls)),
    ];
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
    for (section, tls_client, tls_server, rules, banner_first) in CASES {
        let port = free_port();
        let to = (servers.iter())
            .find(|(answering, tls, _)| *answering != banner_first && *tls == tls_server)
            .map(|(.., addr)| addr)
            .unwrap();
        let ssl_bind = if tls_client {
            format!(" ssl crt {}", pki.server.display())
        } else {
            String::new()
        };
        let ssl_server = if tls_server { " ssl verify none" } else { "" };
        cfg += &format!(
            "listen {section}\n  bind {LO}:{port}{ssl_bind}\n{rules}  server s {to}{ssl_server}\n"
        );
        ports.push((section, port, tls_client));
    }
    let first = SocketAddr::from((LO, ports[0].1));
    let proxy = Proxy::start_with(binary, dir, name, &cfg, first, &[]);
    let mut seen = Vec::new();
    for (section, send, expect) in CLIENTS {
        let (_, port, tls) = *ports.iter().find(|(s, ..)| *s == section).unwrap();
        // The previous session gone (its log line goes first).
        let idle = || cli(&socket, "show info").contains("\nCurrConns: 0\n");
        assert!(wait_until(PATIENCE, idle), "{name}: a session left");
        let got = client(port, tls, send.as_bytes(), expect);
        let mut buf = [0u8; 2048];
        let n = log_sock.recv(&mut buf).expect("a log line");
        let line = masked_timers(&String::from_utf8_lossy(&buf[..n]), 3);
        seen.push(format!("{section} {send:?}: {got}, log {line}"));
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

/// Rejected, accepted and closed sessions behind TLS on either side, beside HAProxy.
#[test]
fn response_rules_judge_plaintext_behind_tls() {
    let test = "tcp-response-tls";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    let mut runs = Vec::new();
    for (name, binary) in list {
        let (seen, counters) = run(binary, &dir, &pki, name);
        let expected = [
            r#"rej "": "" closed, log rej~ rej/s T/T/T 14 PD"#,
            r#"after "AB": "RE:AB" kept, log after~ after/s T/T/T 5 --"#,
            r#"after "BC": "" closed, log after~ after/s T/T/T 5 PD"#,
            r#"srvssl "AB": "RE:AB" kept, log srvssl srvssl/s T/T/T 5 --"#,
            r#"srvssl "BC": "" closed, log srvssl srvssl/s T/T/T 5 PD"#,
            r#"both "": "" closed, log both~ both/s T/T/T 14 PD"#,
            r#"close "": "SSH-2.0-test\r\n" closed, log close~ close/s T/T/T 14 --"#,
            r#"wait "x": "SSH-2.0-test\r\nRE:x" kept, log wait~ wait/s T/T/T 18 --"#,
            r#"clilate "": "SSH-2.0-test\r\n" closed, log clilate~ clilate/s T/T/T 14 cD"#,
            r#"srvlate "x": "RE:x" closed, log srvlate srvlate/s T/T/T 4 sD"#,
        ];
        for (line, want) in seen.iter().zip(expected) {
            assert!(line.starts_with(want), "{name}: {line}\n  expected {want}");
        }
        for want in [
            "rej/FRONTEND.dresp=1",
            "rej/BACKEND.bout=14",
            "after/s.dresp=1",
            "srvssl/BACKEND.dresp=1",
            "both/s.dresp=1",
            "close/s.dresp=0",
            "wait/FRONTEND.bin=1",
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
