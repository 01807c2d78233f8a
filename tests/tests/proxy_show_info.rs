//! `show info`'s counts side by side with HAProxy 2.6.12, on the same configuration and
//! traffic:
//! - `Listeners` counts the `stats socket`s and a `peers` section's local member besides the
//!   frontends' binds; `Jobs` the listeners and every session alive: a frontend's
//!   connection, a CLI session (the one reading included), a peers session; `CurrConns`
//!   the frontends' connections alone;
//! - `CumConns` counts every session begun (CLI ones included), `CumReq` every stream: one
//!   per HTTP request (none for a connection closed before its first), per TCP session, per
//!   CLI session;
//! - the `Ssl*` lines: TLS connections of both sides (`CurrSslConns`, `CumSslConns`), full
//!   handshakes (keys) per second of each side, resumed sessions computing none;
//! - the lines themselves, in HAProxy's order;
//! - `-c`: HAProxy's warning for an `http-request`, `http-response` or `http-after-response`
//!   rule written after an unconditional final one of its list (`allow`, `deny`, `tarpit`,
//!   `auth`, `redirect`, `return`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_rules::{check_alike, side_by_side};
use hapx_tests::proxy_tls::site_certificate;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// `show info` as name -> value.
fn info(sock: &Path) -> HashMap<String, String> {
    parse_info(&cli(sock, "show info"))
}

fn parse_info(answer: &str) -> HashMap<String, String> {
    (answer.lines())
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An interactive CLI session (`prompt`): it reads `show info` as often as needed while
/// counted once, as the sessions it counts.
struct Session(BufReader<UnixStream>);

impl Session {
    fn open(sock: &Path) -> Session {
        let stream = UnixStream::connect(sock).expect("connecting to the stats socket");
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut session = Session(BufReader::new(stream));
        session.ask("prompt");
        session
    }

    /// `command`'s answer, up to the next prompt.
    fn ask(&mut self, command: &str) -> String {
        (self.0.get_mut())
            .write_all(format!("{command}\n").as_bytes())
            .expect("sending a command");
        let mut answer = String::new();
        while !answer.ends_with("\n> ") {
            let mut byte = [0; 1];
            self.0.read_exact(&mut byte).expect("reading the answer");
            answer.push(char::from(byte[0]));
        }
        answer
    }

    fn info(&mut self) -> HashMap<String, String> {
        parse_info(&self.ask("show info"))
    }

    /// Reads `show info` until `ready` holds of it; that reading.
    fn info_once(
        &mut self,
        ready: impl Fn(&HashMap<String, String>) -> bool,
    ) -> HashMap<String, String> {
        let mut last = self.info();
        let done = wait_until(Duration::from_secs(5), || {
            last = self.info();
            ready(&last)
        });
        assert!(done, "{last:?}");
        last
    }
}

/// The numeric value of `name` in `info`.
fn count(info: &HashMap<String, String>, name: &str) -> i64 {
    let value = (info.get(name)).unwrap_or_else(|| panic!("no {name} in {info:?}"));
    value.parse().unwrap_or_else(|_| panic!("{name}: {value}"))
}

/// `names`' values in `now` less those in `before`, as `Name=delta`.
fn deltas(
    before: &HashMap<String, String>,
    now: &HashMap<String, String>,
    names: &[&str],
) -> Vec<String> {
    (names.iter())
        .map(|n| format!("{n}={}", count(now, n) - count(before, n)))
        .collect()
}

/// An HTTP/1.1 keep-alive request on `conn`; the response's status line.
fn request(conn: &mut BufReader<TcpStream>) -> String {
    (conn.get_mut())
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("sending a request");
    let mut status = String::new();
    conn.read_line(&mut status).expect("reading the status");
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("reading the head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).expect("reading the body");
    status.trim_end().to_string()
}

const COUNTS: [&str; 5] = ["CurrConns", "CumConns", "CumReq", "Jobs", "Listeners"];

/// The counts' changes from the first reading along CLI sessions, HTTP and TCP traffic,
/// read through one CLI session.
fn session_counts(sock: &Path, http: SocketAddr, tcp: SocketAddr) -> Vec<Vec<String>> {
    let mut reader = Session::open(sock);
    let base = reader.info();
    let jobs = count(&base, "Jobs");
    let mut steps = vec![vec![format!("Listeners={}", count(&base, "Listeners"))]];
    let held = Session::open(sock);
    steps.push(deltas(&base, &reader.info(), &COUNTS));
    drop(held);
    let mut conn = BufReader::new(TcpStream::connect(http).expect("connecting"));
    let now = reader.info_once(|i| count(i, "CurrConns") == 1 && count(i, "Jobs") == jobs + 1);
    steps.push(deltas(&base, &now, &COUNTS));
    for _ in 0..3 {
        assert_eq!(request(&mut conn), "HTTP/1.1 200 OK");
    }
    steps.push(deltas(&base, &reader.info(), &COUNTS));
    drop(conn);
    let plain = TcpStream::connect(tcp).expect("connecting");
    (&plain).write_all(b"hello").expect("sending");
    let mut echoed = [0; 5];
    (&plain).read_exact(&mut echoed).expect("reading the echo");
    drop(plain);
    let now = reader.info_once(|i| count(i, "CurrConns") == 0 && count(i, "Jobs") == jobs);
    steps.push(deltas(&base, &now, &COUNTS));
    steps
}

/// A TCP server on 127.0.0.1 echoing what each connection sends.
fn echo_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind((LO, 0)).expect("binding the echo server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0; 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn show_info_counts_cli_sessions_and_streams_as_haproxy() {
    let test = "show_info_counts_cli_sessions_and_streams_as_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let (http, tcp) = (
        SocketAddr::from((LO, free_port())),
        SocketAddr::from((LO, free_port())),
    );
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend web\n  mode http\n  bind {http}\n  http-request return status 200\n\
         frontend plain\n  mode tcp\n  bind {tcp}\n  default_backend echo\n\
         backend echo\n  mode tcp\n  server e {}\n",
        sock.display(),
        echo_server()
    );
    let (ours, theirs) = side_by_side(test, &config, http, |_| session_counts(&sock, http, tcp));
    let expected = [
        vec!["Listeners=3"],
        // Another session held: a job, a session, a stream, not a connection.
        vec![
            "CurrConns=0",
            "CumConns=1",
            "CumReq=1",
            "Jobs=1",
            "Listeners=0",
        ],
        // A connection without a request yet: a session, no stream.
        vec![
            "CurrConns=1",
            "CumConns=2",
            "CumReq=1",
            "Jobs=1",
            "Listeners=0",
        ],
        vec![
            "CurrConns=1",
            "CumConns=2",
            "CumReq=4",
            "Jobs=1",
            "Listeners=0",
        ],
        // The TCP session's stream.
        vec![
            "CurrConns=0",
            "CumConns=3",
            "CumReq=5",
            "Jobs=0",
            "Listeners=0",
        ],
    ];
    assert_eq!(ours, expected, "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Two members of a `peers` section run by `binary`, replicating: `Listeners`, `Jobs`,
/// `ActivePeers` of the first, once two readings in a row agree.
fn peer_jobs(test: &str, binary: &Path) -> Vec<String> {
    let dir = temp_dir(test);
    let (peer, front) = ([free_port(), free_port()], [free_port(), free_port()]);
    let socket = |i: usize| dir.join(format!("n{i}.sock"));
    let start = |i: usize| {
        let config = format!(
            "global\n  stats socket {} level admin\n\
             peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  mode http\n  bind 127.0.0.1:{}\n  http-request return status 200\n\
             backend tb\n  stick-table type ip size 100 peers pair\n  server s 127.0.0.1:1\n",
            socket(i).display(),
            peer[0],
            peer[1],
            front[i]
        );
        let ready = SocketAddr::from((LO, front[i]));
        let local = ["-L".to_string(), format!("n{i}")];
        Proxy::start_with(
            binary.into(),
            &dir,
            &format!("n{i}"),
            &config,
            ready,
            &local,
        )
    };
    let (_n0, _n1) = (start(0), start(1));
    let reading = || {
        let now = info(&socket(0));
        ["Listeners", "Jobs", "ActivePeers", "ConnectedPeers"]
            .map(|n| format!("{n}={}", count(&now, n)))
            .to_vec()
    };
    // Both members connected to each other at first: the session that gives way may last a
    // moment. Settled: the same reading for a second.
    let (mut last, mut same) = (Vec::new(), 0);
    let settled = wait_until(Duration::from_secs(20), || {
        let now = reading();
        same = match now == last && now.contains(&"ConnectedPeers=1".to_string()) {
            true => same + 1,
            false => 0,
        };
        last = now;
        std::thread::sleep(Duration::from_millis(200));
        same >= 5
    });
    assert!(settled, "{test}: {last:?}");
    last
}

#[test]
fn show_info_counts_peers_listener_and_sessions_as_haproxy() {
    let test = "show_info_counts_peers_listener_and_sessions_as_haproxy";
    let ours = peer_jobs(test, &hapx_tests::bins::path("hapx-proxy"));
    // The frontend's bind, the stats socket, the peers' listener; those and the reading
    // CLI session and the peers session.
    assert_eq!(
        ours,
        ["Listeners=3", "Jobs=5", "ActivePeers=1", "ConnectedPeers=1"]
    );
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = peer_jobs(&format!("{test}-haproxy"), Path::new(HAPROXY));
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A TLS client whose sessions the next connection resumes (the same configuration).
fn tls_client() -> Arc<rustls::ClientConfig> {
    use hapx_proxy::config::model::{ServerTls, Verify};
    let settings = ServerTls {
        ssl: true,
        verify: Some(Verify::None),
        ..ServerTls::default()
    };
    let client =
        hapx_proxy::config::tls::build(&settings, Default::default()).expect("building the client");
    client.connector(None, None).config
}

/// A request over TLS to `addr` with `config`; the connection, still open, and whether the
/// handshake resumed a session.
fn tls_request(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> (
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    bool,
) {
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config.clone(), name).expect("a TLS client");
    let sock = TcpStream::connect(addr).expect("connecting");
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    (stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")).expect("sending");
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    // The response (its tickets came before it).
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).expect("reading the response");
        assert!(n > 0, "closed early: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let resumed = stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    (stream, resumed)
}

const TLS_COUNTS: [&str; 6] = [
    "CurrSslConns",
    "CumSslConns",
    "MaxSslConns",
    "SslFrontendMaxKeyRate",
    "SslBackendMaxKeyRate",
    "SslCacheMisses",
];

/// The TLS counts along a full handshake, a resumed one held open, then one request through
/// a backend's TLS connection.
fn tls_counts(sock: &Path, tls: SocketAddr, plain: SocketAddr) -> Vec<Vec<String>> {
    let read = || {
        let now = info(sock);
        (TLS_COUNTS.iter())
            .map(|n| format!("{n}={}", count(&now, n)))
            .collect::<Vec<_>>()
    };
    let config = tls_client();
    let mut steps = vec![read()];
    let (first, resumed) = tls_request(tls, &config);
    assert!(!resumed);
    drop(first);
    // Closed in the proxy before the second comes, or both count as current.
    let closed = || count(&info(sock), "CurrSslConns") == 0;
    assert!(wait_until(Duration::from_secs(5), closed));
    let (second, resumed) = tls_request(tls, &config);
    assert!(resumed, "the second handshake resumes the first's session");
    steps.push(read());
    drop(second);
    assert!(wait_until(Duration::from_secs(5), closed));
    let mut conn = BufReader::new(TcpStream::connect(plain).expect("connecting"));
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("sending");
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut after = read();
    // Whether the server connection is kept idle differs (reuse), and the second the
    // handshakes fall in: the cumulated counts only.
    after.retain(|c| !c.starts_with("CurrSslConns") && !c.starts_with("SslFrontendMax"));
    steps.push(after);
    steps
}

#[test]
fn show_info_counts_tls_as_haproxy() {
    let test = "show_info_counts_tls_as_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let pem = dir.join("site.pem");
    site_certificate(&pem, &["localhost"], false);
    let (tls, plain) = (
        SocketAddr::from((LO, free_port())),
        SocketAddr::from((LO, free_port())),
    );
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend secure\n  bind {tls} ssl crt {}\n  http-request return status 200\n\
         frontend plain\n  bind {plain}\n  default_backend tls\n\
         backend tls\n  server s {tls} ssl verify none\n",
        sock.display(),
        pem.display()
    );
    let (ours, theirs) = side_by_side(test, &config, plain, |_| tls_counts(&sock, tls, plain));
    let expected = [
        vec![
            "CurrSslConns=0",
            "CumSslConns=0",
            "MaxSslConns=0",
            "SslFrontendMaxKeyRate=0",
            "SslBackendMaxKeyRate=0",
            "SslCacheMisses=0",
        ],
        // One key computed: the second session resumed the first.
        vec![
            "CurrSslConns=1",
            "CumSslConns=2",
            "MaxSslConns=0",
            "SslFrontendMaxKeyRate=1",
            "SslBackendMaxKeyRate=0",
            "SslCacheMisses=0",
        ],
        // The backend's connection and the frontend's it reaches.
        vec![
            "CumSslConns=4",
            "MaxSslConns=0",
            "SslBackendMaxKeyRate=1",
            "SslCacheMisses=0",
        ],
    ];
    assert_eq!(ours, expected, "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The names of `show info`'s lines with `binary` running `config`.
fn info_names(test: &str, binary: &Path) -> Vec<String> {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend web\n  bind {front}\n  http-request return status 200\n",
        sock.display()
    );
    let _p = Proxy::start_with(binary.into(), &dir, "p", &config, front, &[]);
    (cli(&sock, "show info").lines())
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn show_info_lines_come_in_haproxy_order() {
    let test = "show_info_lines_come_in_haproxy_order";
    let ours = info_names(test, &hapx_tests::bins::path("hapx-proxy"));
    for name in [
        "SslFrontendSessionReuse_pct",
        "CompressBpsRateLim",
        "Memmax_bytes",
        "PoolUsed_bytes",
    ] {
        assert!(ours.iter().any(|n| n == name), "{name}: {ours:?}");
    }
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = info_names(&format!("{test}-haproxy"), Path::new(HAPROXY));
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn rules_after_a_final_one_warn_as_haproxy() {
    let config = format!(
        "defaults d1\n  mode http\n  timeout client 5s\n  timeout server 5s\n  \
                  timeout connect 5s\n  http-request deny\n  http-request deny\n\
                  frontend f from d1\n  bind 127.0.0.1:{}\n  http-request deny\n  \
                  http-request return status 200\n  http-request redirect location / if TRUE\n  \
                  http-request set-header a b\n  http-response allow\n  \
                  http-response set-header a b\n  http-after-response set-header a b\n  \
                  http-after-response allow\n  http-after-response allow\n  \
                  http-request tarpit unless TRUE\n",
        free_port()
    );
    let (code, messages) = check_alike("rules_after_a_final_one_warn_as_haproxy", &config);
    assert_eq!(code, 0, "{messages:?}");
    let warning = |line: u32, kw: &str| {
        format!(
            "WARNING: parsing [case.cfg:{line}]: previous '{kw}' action is final and has no condition attached, further entries are NOOP."
        )
    };
    // The file's name without its directory.
    let messages: Vec<String> = (messages.iter())
        .map(|m| match (m.find('['), m.find("case.cfg")) {
            (Some(open), Some(name)) => format!("{}{}", &m[..=open], &m[name..]),
            _ => m.clone(),
        })
        .collect();
    // Not at the frontend's first rule: the defaults section's list is its own. Not after
    // a conditional rule, nor after one that is not final.
    assert_eq!(
        messages,
        [
            warning(7, "http-request"),
            warning(11, "http-request"),
            warning(12, "http-request"),
            warning(15, "http-response"),
            warning(18, "http-after-response"),
        ],
    );
}
