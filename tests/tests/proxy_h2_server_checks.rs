//! Health checks of HTTP/2 servers (`server ... proto h2 check`, `check-proto`, `ssl alpn h2`
//! with and without `check-alpn`), the `proto` keyword's checks against the proxy's mode, and
//! what an HTTP/2 server gets of a client's `TE`, and `shutdown session` on a stream of a
//! shared HTTP/2 server connection, each beside HAProxy 2.6: the same check statuses in
//! `show stat` and `show servers state`, the same configuration errors, the same headers at
//! the server, the other streams going on.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hapx_tests::nghttpd::Nghttpd;
// hapx-proxy, then HAProxy when it is installed (skipped loudly, or failed under CI).
use hapx_tests::proxy::{
    Proxy, cli, free_port, settled_check_rows, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::binaries as proxies;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// nghttpd serving `docs/index.html` (h2c, or TLS given a key and certificate).
fn nghttpd(dir: &Path, name: &str, tls: Option<(&Path, &Path)>) -> Nghttpd {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).expect("the docs directory");
    std::fs::write(docs.join("index.html"), "hello\n").expect("index.html");
    Nghttpd::start(dir, name, tls)
}

/// `show servers state` rows as `backend server op_state check_status check_result
/// check_health check_state` (columns 2, 4, 6, 11-14).
fn servers_state(sock: &Path) -> Vec<String> {
    cli(sock, "show servers state")
        .lines()
        .filter(|l| !l.starts_with('#') && l.split_whitespace().count() > 14)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            [f[1], f[3], f[5], f[10], f[11], f[12], f[13]].join(" ")
        })
        .collect()
}

/// Every server of a proxy's backends, each checked over HTTP/2 (or not) as HAProxy does:
/// the check columns of `show stat` (and `check_desc`) and of `show servers state`.
#[test]
fn h2_check_statuses_as_haproxy() {
    let test = "h2-server-checks";
    if !hapx_tests::require::command(test, "nghttpd") {
        return;
    }
    let dir = temp_dir(test);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (key, crt) = (dir.join("key.pem"), dir.join("cert.pem"));
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    let servers = [
        ("b", "nohost"),
        ("b", "refused"),
        ("b2", "s404"),
        ("b3", "ok"),
        ("b3", "h1"),
        ("b3", "tls"),
        ("b3", "tlsalpn"),
        ("b3", "h1only"),
    ];
    let expected = [
        ["DOWN", "SOCKERR"],
        ["DOWN", "L4CON"],
        ["DOWN", "L7STS"],
        ["UP", "L7OK"],
        ["DOWN", "L7RSP"],
        ["DOWN", "L7RSP"],
        ["UP", "L7OK"],
        ["DOWN", "SOCKERR"],
    ];
    // An HTTP/1.1 server checked with `check-proto h2`: it cannot answer the preface.
    let h1_only = hapx_tests::proxy::HttpServer::start("h1");
    let mut seen = Vec::new();
    for (name, binary) in proxies(test) {
        let h2c = nghttpd(&dir, name, None);
        let tls = nghttpd(&dir, &format!("{name}-tls"), Some((&key, &crt)));
        let front = SocketAddr::from((LO, free_port()));
        let sock = dir.join(format!("{name}.sock"));
        let (a, t) = (h2c.addr, tls.addr);
        let cfg = format!(
            "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n  \
             timeout server 5s\n  timeout connect 2s\n\
             frontend f\n  bind {front}\n  default_backend b\n\
             backend b\n  option httpchk GET /index.html\n\
             \x20 server nohost {a} proto h2 check inter 500\n\
             \x20 server refused 127.0.0.1:{} proto h2 check inter 500\n\
             backend b2\n  option httpchk GET /nothere\n  http-check send hdr host x\n\
             \x20 server s404 {a} proto h2 check inter 500\n\
             backend b3\n  option httpchk GET /index.html\n  http-check send hdr host x\n  \
             http-check expect status 200\n\
             \x20 server ok {a} proto h2 check inter 500\n\
             \x20 server h1 {a} proto h2 check inter 500 check-proto h1\n\
             \x20 server tls {t} ssl verify none alpn h2 check inter 500\n\
             \x20 server tlsalpn {t} ssl verify none alpn h2 check-alpn h2 check inter 500\n\
             \x20 server h1only {} check-proto h2 check inter 500\n",
            sock.display(),
            free_port(),
            h1_only.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, name, &cfg, front, &[]);
        let rows = settled_check_rows(&sock, &servers, &expected);
        let csv = cli(&sock, "show stat");
        let descs: Vec<String> = (servers.iter())
            .map(|(b, s)| stat_row(&csv, b, s).unwrap_or_default()["check_desc"].clone())
            .collect();
        let state = servers_state(&sock);
        for (row, want) in rows.iter().zip(&expected) {
            assert_eq!(
                [row[0].as_str(), row[1].as_str()],
                *want,
                "{name}: {rows:?}"
            );
        }
        seen.push((name, rows, descs, state));
    }
    if let [(_, rows, descs, state), (_, h_rows, h_descs, h_state)] = &seen[..] {
        assert_eq!(rows, h_rows, "show stat check columns");
        assert_eq!(descs, h_descs, "check_desc");
        assert_eq!(state, h_state, "show servers state");
    }
}

/// What `-c` says of `text` (exit code, messages without the process id).
fn check_config(binary: &Path, dir: &Path, text: &str) -> (Option<i32>, Vec<String>) {
    let path = dir.join("check.cfg");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("[ALERT]"))
        .map(|l| l.split_once(") : ").map_or(l, |(_, m)| m).to_string())
        .collect();
    (out.status.code(), lines)
}

/// `proto h2` on a server of a `mode tcp` backend, and `check-proto` with a check that is not
/// HTTP: refused with HAProxy's words.
#[test]
fn proto_h2_is_refused_where_haproxy_refuses_it() {
    let test = "h2-server-proto-modes";
    let dir = temp_dir(test);
    let base = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";
    let tcp = format!("{base}backend t\n  mode tcp\n  server s 127.0.0.1:1 proto h2\n");
    let check =
        format!("{base}backend b\n  mode http\n  server s 127.0.0.1:1 check-proto h2 check\n");
    let hapx = hapx_tests::bins::path("hapx-proxy");
    let (code, lines) = check_config(&hapx, &dir, &tcp);
    assert_eq!(code, Some(1));
    assert_eq!(
        lines[0],
        format!(
            "config : backend 't' : MUX protocol 'h2' is not usable for server 's' at [{}:7].",
            dir.join("check.cfg").display()
        ),
        "{lines:?}"
    );
    let (check_code, check_lines) = check_config(&hapx, &dir, &check);
    assert_eq!(check_code, Some(1));
    assert!(
        check_lines[0]
            .contains("server 's' uses an incompatible MUX protocol for the selected check type"),
        "{check_lines:?}"
    );
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        let haproxy = Path::new(HAPROXY);
        assert_eq!(check_config(haproxy, &dir, &tcp), (code, lines));
        assert_eq!(
            check_config(haproxy, &dir, &check),
            (check_code, check_lines)
        );
    }
}

/// A client's `TE` reaches an HTTP/2 server as HAProxy's H2 layer lets it: `trailers` when
/// the value holds that word (case-sensitive) followed by nothing or a comma, else no `te`.
#[test]
fn te_to_an_h2_server_as_haproxy() {
    let test = "h2-server-te";
    if !hapx_tests::require::command(test, "nghttpd") {
        return;
    }
    let dir = temp_dir(test);
    let values = [
        "trailers",
        "gzip, trailers;q=0.5",
        "gzip",
        "Trailers",
        "trailers, deflate",
    ];
    let mut seen = Vec::new();
    for (name, binary) in proxies(test) {
        let server = nghttpd(&dir, name, None);
        let front = SocketAddr::from((LO, free_port()));
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
             frontend f\n  bind {front}\n  default_backend b\n\
             backend b\n  server s {} proto h2\n",
            server.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, name, &cfg, front, &[]);
        for value in values {
            let request = format!(
                "GET /index.html HTTP/1.1\r\nhost: x\r\nte: {value}\r\nconnection: close\r\n\r\n"
            );
            let answer =
                hapx_tests::proxy::http_raw(front, request.as_bytes(), Duration::from_secs(5));
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "{name} {value}: {answer}"
            );
        }
        wait_until(Duration::from_secs(2), || {
            server.received_named("te").len() >= 2
        });
        let te = server.received_named("te");
        assert_eq!(te, ["te: trailers", "te: trailers"], "{name}");
        seen.push(te);
    }
    if let [hapx, haproxy] = &seen[..] {
        assert_eq!(hapx, haproxy);
    }
}

/// A client reading a big response slowly (it holds its stream open), then, once told, all
/// of it: how many bytes it got and whether the proxy closed it.
struct SlowClient {
    stream: std::net::TcpStream,
    got: usize,
}

impl SlowClient {
    fn get(front: SocketAddr, path: &str) -> SlowClient {
        let mut stream = std::net::TcpStream::connect(front).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        std::io::Write::write_all(
            &mut stream,
            format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut client = SlowClient { stream, got: 0 };
        client.read_past(64 * 1024);
        client
    }

    /// Reads until it got more than `limit` bytes in all; false once the proxy closed (or
    /// reset) the connection.
    fn read_past(&mut self, limit: usize) -> bool {
        let mut buf = vec![0u8; 64 * 1024];
        while self.got <= limit {
            match std::io::Read::read(&mut self.stream, &mut buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("no data nor close for 10 s, after {} bytes", self.got)
                }
                Ok(0) | Err(_) => return false,
                Ok(n) => self.got += n,
            }
        }
        true
    }

    /// `src=IP:PORT` as `show sess` names its stream.
    fn source(&self) -> String {
        format!("src={}", self.stream.local_addr().unwrap())
    }
}

/// `shutdown session` on one of two streams sharing an HTTP/2 server connection ends that
/// stream alone (HAProxy resets it with CANCEL): the other client gets its whole response.
#[test]
fn shutdown_session_ends_one_stream_of_a_shared_h2_connection() {
    let test = "h2-server-shutdown-session";
    if !hapx_tests::require::command(test, "nghttpd") {
        return;
    }
    let dir = temp_dir(test);
    const SIZE: usize = 30_000_000;
    let mut seen = Vec::new();
    for (name, binary) in proxies(test) {
        let server = nghttpd(&dir, name, None);
        let big: Vec<u8> = (0..SIZE as u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(dir.join("docs").join("big"), &big).unwrap();
        let front = SocketAddr::from((LO, free_port()));
        let sock = dir.join(format!("{name}-kill.sock"));
        let cfg = format!(
            "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 20s\n  \
             timeout server 20s\n  timeout connect 2s\n  http-reuse always\n\
             frontend f\n  bind {front}\n  default_backend b\n\
             backend b\n  server s {} proto h2\n",
            sock.display(),
            server.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, name, &cfg, front, &[]);
        // An idle server connection, which both clients' streams then take (`always`).
        let primed = hapx_tests::proxy::http_raw(
            front,
            b"GET /index.html HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            Duration::from_secs(5),
        );
        assert!(primed.starts_with("HTTP/1.1 200"), "{name}: {primed}");
        let mut killed = SlowClient::get(front, "/big");
        let mut other = SlowClient::get(front, "/big");
        let sessions = cli(&sock, "show sess");
        let id = (sessions.lines())
            .find(|l| l.contains(&format!("{} ", killed.source())))
            .and_then(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("{name}: no stream of the client in {sessions}"))
            .to_string();
        assert_eq!(
            cli(&sock, &format!("shutdown session {id}")),
            "\n",
            "{name}"
        );
        // The killed one ends (with what the sockets held), the other gets all of it.
        assert!(!killed.read_past(usize::MAX), "{name}");
        assert!(killed.got < SIZE, "{name}: {}", killed.got);
        other.read_past(SIZE);
        assert!(other.got > SIZE, "{name}: {}", other.got);
        // One server connection, the killed stream reset with CANCEL.
        let log = server.log_text();
        let cancelled = log.contains("recv RST_STREAM") && log.contains("CANCEL");
        seen.push((server_connections(&log), cancelled));
    }
    // hapx's two streams share one connection (the case at stake); HAProxy 2.6.12 opens a
    // second one here, and resets its killed stream with CANCEL as well.
    assert_eq!(seen[0], (1, true), "hapx");
    if let Some(&(_, cancelled)) = seen.get(1) {
        assert!(cancelled, "haproxy");
    }
}

/// The connections nghttpd logged requests on.
fn server_connections(log: &str) -> usize {
    let mut ids: Vec<&str> = (log.lines())
        .filter(|l| l.contains("recv HEADERS frame"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// What an HTTP/2 check sends, as HAProxy's: `:method`, `:path`, `host` (from `http-check
/// send hdr host`) as an ordinary header, no `:authority`, then the other headers.
/// `:scheme` is not compared: HAProxy sends `https`, the `h2` crate `http` for a request
/// without an authority (it cannot send a scheme without one).
#[test]
fn what_an_h2_check_sends() {
    let test = "h2-server-check-sends";
    if !hapx_tests::require::command(test, "nghttpd") {
        return;
    }
    let dir = temp_dir(test);
    let mut seen = Vec::new();
    for (name, binary) in proxies(test) {
        let server = nghttpd(&dir, name, None);
        let front = SocketAddr::from((LO, free_port()));
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
             frontend f\n  bind {front}\n  default_backend b\n\
             backend b\n  option httpchk GET /index.html?q=1\n  http-check send hdr host x \
             hdr x-check yes\n  server s {} proto h2 check inter 200\n",
            server.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, name, &cfg, front, &[]);
        assert!(wait_until(Duration::from_secs(5), || !server
            .received_named("x-check")
            .is_empty()));
        let log = server.log_text();
        let first: Vec<String> = (log.lines())
            .filter_map(|l| l.split_once("recv (stream_id=1) ").map(|(_, h)| h))
            .take_while(|h| !h.starts_with("x-check"))
            .filter(|h| !h.starts_with(":scheme"))
            .map(str::to_string)
            .collect();
        assert_eq!(
            first,
            [":method: GET", ":path: /index.html?q=1", "host: x"],
            "{name}"
        );
        seen.push(first);
    }
    if let [hapx, haproxy] = &seen[..] {
        assert_eq!(hapx, haproxy);
    }
}
