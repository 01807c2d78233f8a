//! HTTP/2 to servers (`server ... proto h2`, `server ... ssl alpn h2`), beside HAProxy 2.6:
//! the same traffic through each (curl as the client, nghttpd or a scripted HTTP/2 server
//! as the server) gives the same responses, the same log lines (timers masked) and the same
//! number of server connections.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hapx_tests::nghttpd::Nghttpd;
// hapx-proxy, then HAProxy when it is installed (skipped loudly, or failed under CI).
use hapx_tests::proxy::{Proxy, TestDir, cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::binaries as proxies;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Header fields with `:scheme` masked (see [`what_the_server_receives`]).
fn masked_scheme(fields: Vec<String>) -> Vec<String> {
    fields
        .into_iter()
        .map(|f| match f.starts_with(":scheme:") {
            true => ":scheme: MASKED".to_string(),
            false => f,
        })
        .collect()
}

/// The test's files: `docs/small` and `docs/big` for nghttpd, a body to post.
fn docs(dir: &Path) {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("small"), "hello\n").unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(docs.join("big"), &big).unwrap();
    std::fs::write(dir.join("body"), &big).unwrap();
}

/// A proxy in front of `server_line`, logging to a datagram socket.
struct Running {
    _proxy: Proxy,
    front: SocketAddr,
    log: std::os::unix::net::UnixDatagram,
}

fn run(binary: PathBuf, dir: &Path, name: &str, bind: &str, server_line: &str) -> Running {
    let front = SocketAddr::from((LO, free_port()));
    let log_path = dir.join(format!("{name}.log"));
    let _ = std::fs::remove_file(&log_path);
    let log = std::os::unix::net::UnixDatagram::bind(&log_path).unwrap();
    log.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cfg = format!(
        "global\n  log {} local0\ndefaults\n  mode http\n  log global\n  option httplog\n  \
         timeout client 10s\n  timeout server 3s\n  timeout connect 5s\n\
         frontend fe\n  bind {front}{bind}\n  default_backend be\n\
         backend be\n  {server_line}\n",
        log_path.display()
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    Running {
        _proxy: proxy,
        front,
        log,
    }
}

impl Running {
    /// The next `n` log lines, masked (see [`masked`]).
    fn lines(&self, n: usize) -> Vec<String> {
        let mut buf = [0u8; 4096];
        (0..n)
            .map(|_| {
                let got = self.log.recv(&mut buf).expect("a log line");
                masked(&String::from_utf8_lossy(&buf[..got]))
            })
            .collect()
    }
}

/// curl with `args`, each response's `status size version` on a line (`-w`).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-k", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

const WRITE_OUT: &str = "%{http_code} %{size_download} %{http_version}\\n";

/// A log line without what differs from run to run: everything before the frontend's
/// name, the timers (only whether each is -1).
fn masked(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = words.iter().position(|w| *w == "fe").unwrap_or(0);
    words[from..]
        .iter()
        .map(|w| {
            let timers = w.split('/').count() == 5
                && w.chars()
                    .all(|c| c.is_ascii_digit() || c == '/' || c == '-');
            if timers {
                w.split('/')
                    .map(|t| if t == "-1" { "-1" } else { "T" })
                    .collect::<Vec<_>>()
                    .join("/")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one proxy did with the same traffic: its curl output, log lines and the number of
/// connections the server saw.
type Seen = (String, Vec<String>, usize);

fn compare(test: &str, each: impl Fn(&str, PathBuf) -> Seen) {
    let mut seen = Vec::new();
    for (name, binary) in proxies(test) {
        seen.push((name, each(name, binary)));
    }
    if let [(_, hapx), (_, haproxy)] = &seen[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
}

/// Asserts one proxy's answer (`out`) and that its one log line holds `in_log`, so that a
/// test asserts what HAProxy does even where HAProxy does not run to compare with.
fn expect(name: &str, out: &str, lines: &[String], answer: &str, in_log: &str) {
    assert_eq!(out, answer, "{name}");
    assert!(lines[0].contains(in_log), "{name}: {lines:?}");
}

/// An HTTP/1.1 client on one kept-alive connection, then two more clients, through a
/// `proto h2` server (h2c): GET of a small and a big file, POST with a length and
/// chunked. The same answers, logs and server connections as HAProxy: each client
/// connection's first request takes a new one (`http-reuse safe`), its later ones reuse it.
#[test]
fn h1_client_to_h2c_server_with_bodies() {
    let test = "h2-servers-h1-h2c";
    if !hapx_tests::require::command(test, "nghttpd") || !hapx_tests::require::command(test, "curl")
    {
        return;
    }
    let dir = temp_dir(test);
    docs(&dir);
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let line = format!("server s1 {} proto h2", server.addr);
        let proxy = run(binary, &dir, name, "", &line);
        let url = |p: &str| format!("http://{}/{p}", proxy.front);
        let body = format!("@{}", dir.join("body").display());
        let (small, big) = (url("small"), url("big"));
        let mut out = curl(&[
            "-w",
            WRITE_OUT,
            "-o",
            "/dev/null",
            &big,
            "-o",
            "/dev/null",
            &small,
            "-o",
            "/dev/null",
            &big,
        ]);
        out += &curl(&[
            "-w",
            WRITE_OUT,
            "-o",
            "/dev/null",
            "--data-binary",
            &body,
            &small,
        ]);
        let chunked = "Transfer-Encoding: chunked";
        out += &curl(&[
            "-w",
            WRITE_OUT,
            "-o",
            "/dev/null",
            "-H",
            chunked,
            "--data-binary",
            &body,
            &small,
        ]);
        let lines = proxy.lines(5);
        assert!(
            out.starts_with("200 100000 1.1\n200 6 1.1\n"),
            "{name}: {out}"
        );
        (out, lines, server.connections())
    });
}

/// Two HTTP/2 clients through a `server ... ssl alpn h2,http/1.1` (nghttpd over TLS picks
/// h2): the same answers, logs and server connections as HAProxy (one: an HTTP/2 stream is
/// never a connection's first request, so the second client's shares the first's).
#[test]
fn h2_client_to_tls_alpn_h2_server() {
    let test = "h2-servers-h2-tls";
    if !hapx_tests::require::command(test, "nghttpd") || !hapx_tests::require::command(test, "curl")
    {
        return;
    }
    let dir = temp_dir(test);
    docs(&dir);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (key, crt) = (dir.join("key.pem"), dir.join("cert.pem"));
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, Some((&key, &crt)));
        let line = format!("server s1 {} ssl verify none alpn h2,http/1.1", server.addr);
        let proxy = run(binary, &dir, name, " proto h2", &line);
        let url = |p: &str| format!("http://{}/{p}", proxy.front);
        let body = format!("@{}", dir.join("body").display());
        let h2 = "--http2-prior-knowledge";
        let mut out = curl(&[h2, "-w", WRITE_OUT, "-o", "/dev/null", &url("big")]);
        out += &curl(&[
            h2,
            "-w",
            WRITE_OUT,
            "-o",
            "/dev/null",
            "--data-binary",
            &body,
            &url("small"),
        ]);
        let lines = proxy.lines(2);
        assert_eq!(out, "200 100000 2\n200 6 2\n", "{name}");
        let lines: Vec<String> = lines
            .iter()
            .map(|l| l.replace(&proxy.front.port().to_string(), "PORT"))
            .collect();
        (out, lines, server.connections())
    });
}

/// What a scripted server does in answer to a request.
enum Step {
    /// Writes these frames.
    Send(Vec<u8>),
    /// Waits (the server's own pace; nothing is read meanwhile).
    Pause(Duration),
    /// Closes its connection.
    Close,
    /// Sends a PING and reads until its ACK: the client read what was sent before. The
    /// request counts as received after this step (after the first one without it).
    PingAcked,
}

/// A scripted HTTP/2 server: answers its client's preface with its SETTINGS, then each
/// request (a HEADERS that ends its stream) on the connection with `answer(stream id)`'s
/// steps. Also gives the number of requests it received, counted once their first step
/// was taken.
fn scripted_server(
    answer: fn(u32) -> Vec<Step>,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind((LO, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let counted = counted.clone();
            std::thread::spawn(move || serve_scripted(&mut conn, answer, &counted));
        }
    });
    (addr, requests)
}

/// An HTTP/2 frame read whole from `conn`: its type, flags, stream and payload (None: the
/// connection ended).
fn read_frame(conn: &mut std::net::TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut header = [0u8; 9];
    conn.read_exact(&mut header).ok()?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).ok()?;
    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & !(1 << 31);
    Some((header[3], header[4], stream, payload))
}

/// Sends a PING, then reads frames until its ACK (false: the connection ended first).
fn ping_acked(conn: &mut std::net::TcpStream) -> bool {
    let data = *b"hapxping";
    if conn.write_all(&frame(6, 0, 0, &data)).is_err() {
        return false;
    }
    while let Some((kind, flags, _, payload)) = read_frame(conn) {
        if kind == 6 && flags & 1 == 1 && payload == data {
            return true;
        }
    }
    false
}

fn serve_scripted(
    conn: &mut std::net::TcpStream,
    answer: fn(u32) -> Vec<Step>,
    requests: &std::sync::atomic::AtomicUsize,
) {
    let mut preface = [0u8; 24];
    if conn.read_exact(&mut preface).is_err() {
        return;
    }
    // Our SETTINGS (none), and the ACK of the client's.
    let _ = conn.write_all(&frame(4, 0, 0, &[]));
    let _ = conn.write_all(&frame(4, 1, 0, &[]));
    while let Some((kind, flags, stream, _)) = read_frame(conn) {
        // A request whose head ended its stream (a GET): answered.
        if kind != 1 || flags & 1 == 0 {
            continue;
        }
        let steps = answer(stream);
        let counted_after = (steps.iter().position(|s| matches!(s, Step::PingAcked))).unwrap_or(0);
        for (n, step) in steps.into_iter().enumerate() {
            match step {
                Step::Send(frames) => {
                    if conn.write_all(&frames).is_err() {
                        return;
                    }
                }
                Step::Pause(time) => std::thread::sleep(time),
                Step::Close => {
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
                Step::PingAcked => {
                    if !ping_acked(conn) {
                        return;
                    }
                }
            }
            if n == counted_after {
                requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// One GET through a `proto h2` server that answers each request's stream with `script`,
/// through hapx-proxy then HAProxy: curl's status, size and version (`answer`) and the log
/// line (holding `in_log`) as expected, and the same for both.
fn scripted_get(test: &str, script: fn(u32) -> Vec<Step>, answer: &str, in_log: &str) {
    if !hapx_tests::require::command(test, "curl") {
        return;
    }
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let (server, _) = scripted_server(script);
        let line = format!("server s1 {server} proto h2");
        let proxy = run(binary, &dir, name, "", &line);
        let url = format!("http://{}/x", proxy.front);
        let out = curl(&["-w", WRITE_OUT, "-o", "/dev/null", &url]);
        let lines = proxy.lines(1);
        expect(name, &out, &lines, answer, in_log);
        (out, lines, 0)
    });
}

/// The server resets the request's stream (RST_STREAM, REFUSED_STREAM... here
/// INTERNAL_ERROR) before any response: the client's status, log line and server
/// connections as HAProxy's.
#[test]
fn a_stream_reset_by_the_server() {
    scripted_get(
        "h2-servers-reset",
        |stream| vec![Step::Send(frame(3, 0, stream, &2u32.to_be_bytes()))],
        "502 107 1.1\n",
        " 502 209 - - SH-- ",
    );
}

/// The server dies in the middle of a response (HEADERS with a length, part of its DATA,
/// then its connection closes): the client's status, log line as HAProxy's.
#[test]
fn the_server_dying_mid_response() {
    let script = |stream| {
        // `:status 200` (static 8), `content-length: 100` (static name 28).
        let head = [0x88, 0x0f, 0x0d, 0x03, b'1', b'0', b'0'];
        let mut out = frame(1, 4, stream, &head);
        out.extend(frame(0, 0, stream, b"0123456789"));
        vec![Step::Send(out), Step::Close]
    };
    scripted_get(
        "h2-servers-dying",
        script,
        "200 10 1.1\n",
        " 200 59 - - SD-- ",
    );
}

/// `proto h2` on a server and on `default-server`, `alpn h2`: checked without the "not
/// implemented" warning; an unknown protocol is HAProxy's error.
#[test]
fn the_proto_keyword_is_checked() {
    let dir = temp_dir("h2-servers-check");
    let check = |cfg: &str| {
        let path = dir.join("check.cfg");
        std::fs::write(&path, cfg).unwrap();
        let out = Command::new(hapx_tests::bins::path("hapx-proxy"))
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.code(), text)
    };
    let base = format!(
        "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\nbackend be\n",
        free_port()
    );
    let (code, text) = check(&format!(
        "{base}  default-server proto h2\n  server s1 127.0.0.1:1\n  server s2 127.0.0.1:2 proto h1\n  server s3 127.0.0.1:3 ssl verify none alpn h2,http/1.1\n"
    ));
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("not implemented"), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
    let (code, text) = check(&format!("{base}  server s1 127.0.0.1:1 proto h9\n"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("unknown MUX protocol 'h9'"), "{text}");
}

/// The server answers a request with GOAWAY (last stream 0: the request was not processed)
/// and closes: the client's status and log line as HAProxy's.
#[test]
fn a_goaway_before_the_response() {
    scripted_get(
        "h2-servers-goaway",
        |_| vec![Step::Send(frame(7, 0, 0, &[0; 8])), Step::Close],
        "502 107 1.1\n",
        " 502 209 - - SH-- ",
    );
}

/// The server never answers (a PING, then nothing): `timeout server` ends the request as
/// HAProxy ends it.
#[test]
fn timeout_server_on_a_stream() {
    scripted_get(
        "h2-servers-timeout",
        |_| vec![Step::Send(frame(6, 0, 0, &[0; 8]))],
        "504 92 1.1\n",
        " 504 198 - - sH-- ",
    );
}

/// The test's directory with its files ([`docs`]), when nghttpd, curl and h2load are there
/// (else the test is skipped loudly, or fails under CI).
fn h2load_dir(test: &str) -> Option<TestDir> {
    let needs = ["nghttpd", "curl", "h2load"];
    if !needs.iter().all(|c| hapx_tests::require::command(test, c)) {
        return None;
    }
    let dir = temp_dir(test);
    docs(&dir);
    Some(dir)
}

/// `requests` GETs of `url` by h2load over `clients` connections, at most `streams` at
/// once on each: all of them succeed.
fn h2load(name: &str, url: &str, requests: usize, clients: usize, streams: usize) {
    let counts = [requests, clients, streams].map(|n| n.to_string());
    let load = Command::new("h2load")
        .args(["-n", &counts[0], "-c", &counts[1], "-m", &counts[2], url])
        .output()
        .expect("h2load");
    let report = String::from_utf8_lossy(&load.stdout);
    let done = format!("{requests} succeeded");
    assert!(report.contains(&done), "{name}: {report}");
}

/// Ten requests at once on one HTTP/2 client connection (h2load, ten streams) open ten
/// server connections: all ten come before any connection is up, so none finds one to
/// share. Twenty from two clients at once then open none (HTTP/2 streams are never a first
/// request: they share those ten), and three HTTP/1.1 clients one after the other open one
/// each (`http-reuse safe`): the server sees as many connections after each step as through
/// HAProxy (measured: 10, 10, 11, 12, 13).
#[test]
fn server_connections_for_concurrent_streams() {
    let test = "h2-servers-concurrent";
    let Some(dir) = h2load_dir(test) else { return };
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let line = format!("server s1 {} proto h2", server.addr);
        let proxy = run(binary, &dir, name, "", &line);
        let url = format!("http://{}/big", proxy.front);
        let mut counts = Vec::new();
        for (requests, clients) in [(10, 1), (20, 2)] {
            h2load(name, &url, requests, clients, 10);
            counts.push(server.connections());
        }
        for _ in 0..3 {
            curl(&["-o", "/dev/null", url.as_str()]);
            counts.push(server.connections());
        }
        // (The log lines are not read: the datagram socket drops beyond its queue.)
        drop(proxy);
        (format!("{counts:?}"), Vec::new(), server.connections())
    });
}

/// `request` on a new connection to `front`, and all it answers until it closes.
fn exchange(front: SocketAddr, request: &str) -> String {
    let mut conn = std::net::TcpStream::connect(front).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}

/// HPACK `:status` as a literal without indexing (static name 8).
fn status(code: &str) -> Vec<u8> {
    let mut out = vec![0x08, code.len() as u8];
    out.extend_from_slice(code.as_bytes());
    out
}

/// HPACK: a literal header field without indexing, with a new name.
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

/// What the server receives (nghttpd's log of each request's header fields), as HAProxy
/// sends it: an origin-form request's target as `:path` with `host` an ordinary header and
/// no `:authority` (`Host: h:80`, `OPTIONS *`, `Host: a b`, a target that is not valid
/// percent-encoding all as they are); an absolute-form one's `:authority` from the target
/// and no `host`. `:scheme` is masked: HAProxy sends `https` for an origin-form request,
/// the `h2` crate `http` (it cannot send a scheme without an authority).
#[test]
fn what_the_server_receives() {
    let test = "h2-servers-received";
    if !hapx_tests::require::command(test, "nghttpd") || !hapx_tests::require::command(test, "curl")
    {
        return;
    }
    let dir = temp_dir(test);
    docs(&dir);
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let line = format!("server s1 {} proto h2", server.addr);
        let proxy = run(binary, &dir, name, "", &line);
        let front = proxy.front.to_string();
        let small = format!("http://{front}/small");
        let mut out = String::new();
        for host in ["Host: h", "Host: h:80", "Host: a b"] {
            out += &curl(&["-w", WRITE_OUT, "-o", "/dev/null", "-H", host, &small]);
        }
        let odd = format!("http://{front}/%zz");
        out += &curl(&["-w", WRITE_OUT, "-o", "/dev/null", "-H", "Host: h", &odd]);
        let star = ["-X", "OPTIONS", "--request-target", "*", "-H", "Host: h"];
        out += &curl(&[&["-w", WRITE_OUT, "-o", "/dev/null"], &star[..], &[&small]].concat());
        let absolute = "http://example.com:81/small?q=1";
        out += &curl(&["-w", WRITE_OUT, "-o", "/dev/null", "-x", &front, absolute]);
        let lines = proxy.lines(6);
        let received = masked_scheme(server.received());
        let text = received.join("\n");
        assert!(out.starts_with("200 6 1.1\n200 6 1.1\n"), "{name}: {out}");
        for wanted in [":path: /small\nhost: h\n", ":path: /small\nhost: h:80\n"] {
            assert!(text.contains(wanted), "{name}: {text}");
        }
        assert!(
            text.contains(":method: OPTIONS\n:scheme: MASKED\n:path: *\nhost: h\n"),
            "{text}"
        );
        assert!(text.contains(":path: /%zz\nhost: h\n"), "{name}: {text}");
        let absolute = ":authority: example.com:81\n:path: /small?q=1\nuser-agent";
        assert!(text.contains(absolute), "{name}: {text}");
        assert_eq!(text.matches(":authority").count(), 1, "{name}: {text}");
        (out, lines, received.len())
    });
}

/// One HTTP/2 client reading a big download slowly does not stall another client's
/// download on the same (shared) server connection: HAProxy opens the connection's receive
/// window wide (WINDOW_UPDATE on stream 0 after its preface) and only each stream's window
/// bounds what a stream holds.
#[test]
fn a_slow_reader_does_not_stall_the_shared_connection() {
    let test = "h2-servers-slow-reader";
    if !hapx_tests::require::command(test, "nghttpd") || !hapx_tests::require::command(test, "curl")
    {
        return;
    }
    let dir = temp_dir(test);
    docs(&dir);
    let huge: Vec<u8> = (0..10_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(dir.join("docs").join("huge"), huge).unwrap();
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let line = format!("server s1 {} proto h2", server.addr);
        let proxy = run(binary, &dir, name, " proto h2", &line);
        let url = |p: &str| format!("http://{}/{p}", proxy.front);
        let h2 = "--http2-prior-knowledge";
        let mut slow = Command::new("curl")
            .args([
                "-s",
                h2,
                "--limit-rate",
                "5k",
                "-m",
                "20",
                "-o",
                "/dev/null",
            ])
            .arg(url("huge"))
            .spawn()
            .expect("curl");
        assert!(wait_until(Duration::from_secs(5), || server.connections() == 1));
        let out = curl(&[
            h2,
            "-m",
            "5",
            "-w",
            WRITE_OUT,
            "-o",
            "/dev/null",
            &url("big"),
        ]);
        let _ = slow.kill();
        let _ = slow.wait();
        let port = proxy.front.port().to_string();
        let lines: Vec<String> = (proxy.lines(1).iter())
            .map(|l| l.replace(&port, "PORT"))
            .collect();
        assert_eq!(out, "200 100000 2\n", "{name}");
        // (Not the server connections: HAProxy's second client, on another thread, may
        // open its own.)
        (out, lines, 0)
    });
}

/// A server that recycles its connection (a graceful GOAWAY: last stream 2^31-1, NO_ERROR,
/// then the answer half a second later, then it closes): a request that comes meanwhile
/// goes on a new server connection, not on the one going away: both 200, as HAProxy.
#[test]
fn a_graceful_goaway_sends_the_next_request_elsewhere() {
    let test = "h2-servers-graceful-goaway";
    if !hapx_tests::require::command(test, "curl") {
        return;
    }
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let (server, requests) = scripted_server(|stream| {
            let goaway = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];
            // The PING's ACK tells the GOAWAY was read before the second request comes.
            vec![
                Step::Send(frame(7, 0, 0, &goaway)),
                Step::PingAcked,
                Step::Pause(Duration::from_millis(500)),
                Step::Send(frame(1, 5, stream, &[0x88])),
                Step::Close,
            ]
        });
        let line = format!("http-reuse always\n  server s1 {server} proto h2");
        let proxy = run(binary, &dir, name, "", &line);
        let url = |p: &str| format!("http://{}/{p}", proxy.front);
        let first = Command::new("curl")
            .args(["-s", "-m", "10", "-o", "/dev/null", "-w", WRITE_OUT])
            .arg(url("a"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        let seen = std::sync::atomic::Ordering::SeqCst;
        assert!(wait_until(Duration::from_secs(5), || requests.load(seen) == 1));
        let second = curl(&["-w", WRITE_OUT, "-o", "/dev/null", &url("b")]);
        let first = String::from_utf8_lossy(&first.wait_with_output().unwrap().stdout).to_string();
        let out = format!("{first}{second}");
        let lines = proxy.lines(2);
        assert_eq!(out, "200 0 1.1\n200 0 1.1\n", "{name}: {lines:?}");
        (out, lines, requests.load(seen))
    });
}

/// A 1xx interim response (`:status 100`) before the final one goes to the client as
/// HAProxy relays it: its own HTTP/1.1 head first.
#[test]
fn an_interim_response_is_relayed() {
    let test = "h2-servers-interim";
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let (server, _) = scripted_server(|stream| {
            let mut head = vec![0x88, 0x0f, 0x0d, 0x01, b'2'];
            head.extend(literal("x-final", "1"));
            let mut out = frame(1, 4, stream, &status("100"));
            out.extend(frame(1, 4, stream, &head));
            out.extend(frame(0, 1, stream, b"ok"));
            vec![Step::Send(out)]
        });
        let line = format!("server s1 {server} proto h2");
        let proxy = run(binary, &dir, name, "", &line);
        let out = exchange(
            proxy.front,
            "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        );
        let lines = proxy.lines(1);
        let relayed = "HTTP/1.1 100 \r\n\r\nHTTP/1.1 200 \r\ncontent-length: 2\r\nx-final: 1\r\n";
        assert!(out.starts_with(relayed), "{name}: {out:?}");
        assert!(out.ends_with("\r\n\r\nok"), "{name}: {out:?}");
        (out, lines, 0)
    });
}

/// `Expect: 100-continue` on an upload: the server's `100` reaches curl, which sends the
/// body at once (it would wait for its `--expect100-timeout`, 5 s, without it).
#[test]
fn expect_100_continue_upload() {
    let test = "h2-servers-expect";
    if !hapx_tests::require::command(test, "nghttpd") || !hapx_tests::require::command(test, "curl")
    {
        return;
    }
    let dir = temp_dir(test);
    docs(&dir);
    compare(test, |name, binary| {
        let server = Nghttpd::start_with(&dir, name, None, &["--echo-upload"]);
        let line = format!("server s1 {} proto h2", server.addr);
        let proxy = run(binary, &dir, name, "", &line);
        let body = format!("@{}", dir.join("body").display());
        let url = format!("http://{}/small", proxy.front);
        let expect = ["-H", "Expect: 100-continue", "--expect100-timeout", "5"];
        let write_out = "%{http_code} %{size_download}\\n";
        let timed = [
            "-w",
            write_out,
            "-o",
            "/dev/null",
            "--data-binary",
            &body,
            &url,
        ];
        let started = std::time::Instant::now();
        let out = curl(&[&expect[..], &timed[..]].concat());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{name}: waited for the 100"
        );
        let lines = proxy.lines(1);
        assert_eq!(out, "200 100000\n", "{name}");
        (out, lines, server.connections())
    });
}

/// Trailers of a response (DATA, then a HEADERS that ends the stream) end its chunked body
/// to an HTTP/1.1 client, as HAProxy writes them.
#[test]
fn response_trailers_are_relayed() {
    let test = "h2-servers-trailers";
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let (server, _) = scripted_server(|stream| {
            let mut out = frame(1, 4, stream, &[0x88]);
            out.extend(frame(0, 0, stream, b"hello"));
            out.extend(frame(1, 5, stream, &literal("x-trail", "yes")));
            vec![Step::Send(out)]
        });
        let line = format!("server s1 {server} proto h2");
        let proxy = run(binary, &dir, name, "", &line);
        let request = "GET /x HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: close\r\n\r\n";
        let out = exchange(proxy.front, request);
        let lines = proxy.lines(1);
        assert!(
            out.ends_with("5\r\nhello\r\n0\r\nx-trail: yes\r\n\r\n"),
            "{name}: {out:?}"
        );
        // (The head's fields compared as a set: HAProxy writes its `connection: close`
        // before the `transfer-encoding` its HTTP/1 layer adds, hapx after.)
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let mut head: Vec<&str> = head.lines().collect();
        head.sort_unstable();
        (format!("{head:?} {body}"), lines, 0)
    });
}

/// A chunked request's trailers reach the server as HAProxy sends them: HEADERS, DATA,
/// then a HEADERS with the trailer fields that ends the stream.
#[test]
fn request_trailers_are_sent() {
    let test = "h2-servers-request-trailers";
    if !hapx_tests::require::command(test, "nghttpd") {
        return;
    }
    let dir = temp_dir(test);
    docs(&dir);
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let line = format!("server s1 {} proto h2", server.addr);
        let proxy = run(binary, &dir, name, "", &line);
        let request = "POST /small HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
                       Connection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Req-Trailer: 1\r\n\r\n";
        let out = exchange(proxy.front, request);
        let lines = proxy.lines(1);
        assert!(out.starts_with("HTTP/1.1 200"), "{name}: {out}");
        let log = server.log_text();
        let frames: Vec<String> = (log.lines())
            .filter(|l| l.contains("recv HEADERS") || l.contains("recv DATA"))
            .filter_map(|l| l.split_once("] recv "))
            // Kind and flags (not the length: the two HPACK encoders differ).
            .map(|(_, f)| {
                f.split(['<', ','])
                    .filter(|w| !w.contains("length"))
                    .collect()
            })
            .collect();
        let received = masked_scheme(server.received());
        assert!(
            received.contains(&"x-req-trailer: 1".to_string()),
            "{name}: {received:?}"
        );
        assert_eq!(frames.len(), 3, "{name}: {frames:?}");
        assert!(frames[2].starts_with("HEADERS frame"), "{name}: {frames:?}");
        (format!("{frames:?}"), lines, received.len())
    });
}

/// A server's `show stat` columns `srv_icur`, `safe_conn_cur` and `need_conn_est`.
fn idle_columns(admin: &Path) -> String {
    let csv = cli(admin, "show stat");
    let row = stat_row(&csv, "be", "s1").expect("the server's row");
    let cols = ["srv_icur", "safe_conn_cur", "need_conn_est"];
    cols.map(|c| format!("{c}={}", row[c])).join(" ")
}

/// Server connections with no stream left are HAProxy's idle (safe) ones: a client
/// connection's first request opens its own connection rather than take one (`http-reuse
/// safe`), later streams take them, the stats count them, and every `pool-purge-delay` the
/// pool closes half of those beyond the recent need until the thread's first is left.
#[test]
fn idle_connections_are_counted_reused_and_purged() {
    let test = "h2-servers-idle";
    let Some(dir) = h2load_dir(test) else { return };
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let front = SocketAddr::from((LO, free_port()));
        let admin = dir.join(format!("{name}.sock"));
        // One thread: which connections a thread keeps is then the same in both.
        let cfg = format!(
            "global\n  nbthread 1\n  stats socket {} level admin\n\
             defaults\n  mode http\n  timeout client 10s\n  timeout server 3s\n  timeout connect 5s\n\
             frontend fe\n  bind {front}\n  default_backend be\n\
             backend be\n  server s1 {} proto h2 pool-purge-delay 500ms\n",
            admin.display(),
            server.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, name, &cfg, front, &[]);
        let (small, big) = (
            format!("http://{front}/small"),
            format!("http://{front}/big"),
        );
        let mut seen = Vec::new();
        // Ten streams at once: ten connections, each idle once its stream ended.
        h2load(name, &big, 10, 1, 10);
        seen.push(format!("10 streams: {} connections", server.connections()));
        // (Read before the second purge, a second after the streams ended, lowers the need.)
        seen.push(idle_columns(&admin));
        // Later streams take them; a client connection's first request does not.
        h2load(name, &big, 20, 1, 5);
        curl(&["-o", "/dev/null", small.as_str()]);
        seen.push(format!("then: {} connections", server.connections()));
        // The purge closes them down to the thread's first, as the need falls to none.
        let kept = "srv_icur=1 safe_conn_cur=1 need_conn_est=0";
        let settled = wait_until(Duration::from_secs(30), || idle_columns(&admin) == kept);
        assert!(settled, "{name}: {}", idle_columns(&admin));
        (seen.join("\n"), Vec::new(), server.connections())
    });
}

/// An HTTP/1.1 server answering each request (a GET) `ok` on kept-alive connections, and
/// the number of connections it accepted.
fn counting_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::BufRead;
    let listener = TcpListener::bind((LO, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().unwrap();
                let mut reader = std::io::BufReader::new(conn);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let ended = line == "\r\n";
                    line.clear();
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                    if ended && writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// A prior-knowledge HTTP/2 client connection that sends its GETs in rounds.
struct Rounds {
    conn: std::net::TcpStream,
    next_stream: u32,
}

impl Rounds {
    fn open(front: SocketAddr) -> Rounds {
        let mut conn = std::net::TcpStream::connect(front).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend_from_slice(&frame(4, 0, 0, &[]));
        conn.write_all(&hello).unwrap();
        Rounds {
            conn,
            next_stream: 1,
        }
    }

    /// Sends a GET of `path` on a new stream and reads nothing of its answer.
    fn send_get(&mut self, path: &str) {
        let block = get_block(path);
        (self
            .conn
            .write_all(&frame(1, 0x05, self.next_stream, &block)))
        .unwrap();
        self.next_stream += 2;
    }

    /// `n` GETs of `path` at once, each one's response read to its end; their statuses
    /// (the first byte of each HEADERS block: 0x88 is HPACK's indexed `:status: 200`).
    fn get_at_once(&mut self, path: &str, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut open = std::collections::BTreeSet::new();
        for _ in 0..n {
            out.extend_from_slice(&frame(1, 0x05, self.next_stream, &get_block(path)));
            open.insert(self.next_stream);
            self.next_stream += 2;
        }
        self.conn.write_all(&out).unwrap();
        let mut statuses = Vec::new();
        while !open.is_empty() {
            let Some((kind, flags, stream, payload)) = read_frame(&mut self.conn) else {
                panic!("the connection ended with streams {open:?} open");
            };
            match kind {
                1 => statuses.push(payload.first().copied().unwrap_or(0)),
                3 | 7 => panic!("stream {stream} reset or GOAWAY: {payload:?}"),
                4 if flags & 1 == 0 => self.conn.write_all(&frame(4, 1, 0, &[])).unwrap(),
                _ => {}
            }
            if (kind == 0 || kind == 1) && flags & 1 == 1 {
                open.remove(&stream);
            }
        }
        statuses
    }
}

/// A GET's header block: :method GET, :scheme http (indexed), :path and :authority
/// (literals without indexing, indexed names 4 and 1).
fn get_block(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 1, b'x']);
    block
}

/// The server's `show stat` columns `scur`, `stot`, `connect`, `reuse` and `need_conn_est`.
fn connection_columns(admin: &Path) -> [String; 5] {
    let csv = cli(admin, "show stat");
    let row = stat_row(&csv, "be", "s1").expect("the server's row");
    ["scur", "stot", "connect", "reuse", "need_conn_est"].map(|c| format!("{c}={}", row[c]))
}

/// `http-reuse never` with HTTP/2 clients: a client connection's server connections are
/// its own, shared by all its streams as HAProxy 2.6's session list holds them. One client
/// connection sends 1, then 10, then 10, then 5 streams at once (each round once the last
/// one's streams left the server), then a second client connection 1:
/// - to an HTTP/2 server (nghttpd h2c) every stream of the first client goes on its one
///   connection, concurrent or not, and the second opens its own: 1, 1, 1, 1, 2;
/// - to an HTTP/1.1 server each concurrent stream needs a connection, and a connection
///   whose stream ended stays only while the client connection holds fewer than five idle
///   ones (`max-session-srv-conns`): 1, 10, 15, 15, 16.
///
/// The server's `connect`/`reuse` counts, and its need estimate (a private connection
/// counts in use only as it opens: 1), as HAProxy's.
#[test]
fn http_reuse_never_keeps_connections_per_client_connection() {
    let test = "h2-servers-reuse-never";
    let Some(dir) = h2load_dir(test) else { return };
    compare(test, |name, binary| {
        let h2 = Nghttpd::start(&dir, name, None);
        let (h1, h1_accepted) = counting_server();
        let mut seen = Vec::new();
        for (kind, addr, proto) in [("h2", h2.addr, " proto h2"), ("h1", h1, "")] {
            let front = SocketAddr::from((LO, free_port()));
            let admin = dir.join(format!("{name}-{kind}.sock"));
            let cfg = format!(
                "global\n  stats socket {} level admin\n\
                 defaults\n  mode http\n  timeout client 10s\n  timeout server 3s\n  timeout connect 5s\n\
                 frontend fe\n  bind {front}\n  default_backend be\n\
                 backend be\n  http-reuse never\n  server s1 {addr}{proto}\n",
                admin.display()
            );
            let _proxy = Proxy::start_with(binary.clone(), &dir, name, &cfg, front, &[]);
            let connections = || match kind {
                "h2" => h2.connections(),
                _ => h1_accepted.load(std::sync::atomic::Ordering::SeqCst),
            };
            // The streams of a round left the server (their connections detached).
            let settled = || {
                let left = || connection_columns(&admin)[0] == "scur=0";
                assert!(wait_until(Duration::from_secs(10), left), "{name}");
            };
            let path = "/small";
            let mut counts = Vec::new();
            let mut first = Rounds::open(front);
            for n in [1, 10, 10, 5] {
                assert_eq!(first.get_at_once(path, n), vec![0x88; n], "{name} {kind}");
                settled();
                counts.push(connections());
            }
            let mut second = Rounds::open(front);
            assert_eq!(second.get_at_once(path, 1), [0x88], "{name} {kind}");
            settled();
            counts.push(connections());
            let columns = connection_columns(&admin);
            let wanted = match kind {
                "h2" => (
                    [1, 1, 1, 1, 2],
                    "stot=27 connect=2 reuse=25 need_conn_est=1",
                ),
                _ => (
                    [1, 10, 15, 15, 16],
                    "stot=27 connect=16 reuse=11 need_conn_est=1",
                ),
            };
            assert_eq!(counts, wanted.0, "{name} {kind}: server connections");
            assert_eq!(columns[1..].join(" "), wanted.1, "{name} {kind}");
            seen.push(format!("{kind}: {counts:?} {}", columns.join(" ")));
        }
        (seen.join("\n"), Vec::new(), 0)
    });
}

/// The connections established to `server` (`ss`, filtered by the kernel).
fn open_to(server: SocketAddr) -> usize {
    let out = Command::new("ss")
        .args(["-Htn", "state", "established", "dst"])
        .arg(server.to_string())
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A server's `show stat` columns, `name=value` each.
fn columns(admin: &Path, names: &[&str]) -> String {
    let csv = cli(admin, "show stat");
    let row = stat_row(&csv, "be", "s1").expect("the server's row");
    let shown: Vec<String> = names.iter().map(|c| format!("{c}={}", row[*c])).collect();
    shown.join(" ")
}

/// A proxy with one thread and a stats socket in front of `server` (`proto h2`), with
/// `http-reuse REUSE` and the server line's `extra` options.
fn pooled_proxy(
    binary: PathBuf,
    dir: &Path,
    name: &str,
    server: SocketAddr,
    reuse: &str,
    extra: &str,
) -> (Proxy, SocketAddr, PathBuf) {
    let front = SocketAddr::from((LO, free_port()));
    let admin = dir.join(format!("{name}-{reuse}.sock"));
    let cfg = format!(
        "global\n  nbthread 1\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  http-reuse {reuse}\n  server s1 {server} proto h2{extra}\n",
        admin.display()
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    (proxy, front, admin)
}

/// The test's files, with `docs/huge` (10 MB) that a client stops reading.
fn huge_docs(test: &str) -> Option<TestDir> {
    if !hapx_tests::require::command(test, "ss") {
        return None;
    }
    let dir = h2load_dir(test)?;
    let huge: Vec<u8> = (0..10_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(dir.join("docs").join("huge"), huge).unwrap();
    Some(dir)
}

/// A client connection that sent GET `path` and reads no more than `most` bytes of it (a
/// small receive buffer: the download stalls once the buffers between are full).
fn stalled_get(front: SocketAddr, path: &str, most: usize) -> std::net::TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&front.into()).unwrap();
    let mut conn: std::net::TcpStream = sock.into();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = 0;
    let mut buf = [0; 4096];
    while got < most {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    conn
}

/// Ten client connections each start a download and close after its first bytes: each
/// server connection's only stream ends without a whole response (the proxy resets it),
/// yet the connection is listed as idle, counted and purged as HAProxy's `h2_detach` lists
/// it, not left open and uncounted. Once settled, every open server connection is counted
/// in `srv_icur`; the purge then closes them down to none (no need is left).
#[test]
fn aborted_streams_leave_counted_idle_connections() {
    let test = "h2-servers-aborted";
    let Some(dir) = huge_docs(test) else { return };
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let extra = " pool-purge-delay 300ms";
        let (proxy, front, admin) = pooled_proxy(binary, &dir, name, server.addr, "safe", extra);
        for _ in 0..10 {
            drop(stalled_get(front, "/huge", 2000));
        }
        let counted = || {
            let open = open_to(server.addr);
            let shown = columns(&admin, &["scur", "srv_icur"]);
            (shown == format!("scur=0 srv_icur={open}")).then_some(open)
        };
        let mut settled = None;
        assert!(
            wait_until(Duration::from_secs(10), || {
                settled = counted();
                settled.is_some()
            }),
            "{name}: {} open, {}",
            open_to(server.addr),
            columns(&admin, &["scur", "srv_icur"])
        );
        let purged = wait_until(Duration::from_secs(20), || counted() == Some(0));
        assert!(purged, "{name}: {:?}", counted());
        drop(proxy);
        (format!("purged: {purged}"), Vec::new(), 0)
    });
}

/// Maintenance closes a server's idle HTTP/2 connections at once, as HAProxy's: the purge
/// (a minute away) does not have to.
#[test]
fn maintenance_closes_idle_connections() {
    let test = "h2-servers-maint";
    let Some(dir) = huge_docs(test) else { return };
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let extra = " pool-purge-delay 60s";
        let (proxy, front, admin) = pooled_proxy(binary, &dir, name, server.addr, "safe", extra);
        let url = format!("http://{front}/small");
        let load = Command::new("h2load")
            .args(["--h1", "-n", "100", "-c", "5", &url])
            .output()
            .expect("h2load");
        // (Done, not "succeeded": h2load's HTTP/1 parser fails the empty reason phrase an
        // HTTP/2 response gets in HTTP/1.1, from both proxies.)
        let report = String::from_utf8_lossy(&load.stdout);
        assert!(report.contains("100 done"), "{name}: {report}");
        let idle = || {
            let open = open_to(server.addr);
            let shown = columns(&admin, &["scur", "srv_icur"]);
            open > 0 && shown == format!("scur=0 srv_icur={open}")
        };
        assert!(wait_until(Duration::from_secs(10), idle), "{name}");
        cli(&admin, "set server be/s1 state maint");
        let closed = wait_until(Duration::from_secs(5), || open_to(server.addr) == 0);
        assert!(closed, "{name}: {} open", open_to(server.addr));
        let shown = columns(&admin, &["srv_icur", "used_conn_cur"]);
        drop(proxy);
        (shown, Vec::new(), 0)
    });
}

/// Client A downloads a small file, then a huge one it stops reading; client B then starts
/// the same huge download (its first request) and stops reading too. With `http-reuse safe`
/// (the default) B's request never goes on A's busy connection (HAProxy attaches a
/// connection taken while idle to the taking session): two server connections, two in use.
/// With `always` it does: one connection, in use once (`used_conn_cur` counts connections,
/// not requests).
#[test]
fn safe_reuse_never_shares_a_busy_connection() {
    let test = "h2-servers-safe-busy";
    let Some(dir) = huge_docs(test) else { return };
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let mut seen = Vec::new();
        for reuse in ["safe", "always"] {
            let (proxy, front, admin) =
                pooled_proxy(binary.clone(), &dir, name, server.addr, reuse, "");
            let mut a = stalled_get(front, "/small", 1);
            a.write_all(b"GET /huge HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let admin = admin.as_path();
            let busy = |n: usize| {
                let scur = format!("scur={n}");
                move || columns(admin, &["scur"]) == scur
            };
            assert!(
                wait_until(Duration::from_secs(10), busy(1)),
                "{name} {reuse}"
            );
            // (Not read at all: HAProxy's connection blocks behind A's full stream then.)
            let b = stalled_get(front, "/huge", 0);
            assert!(
                wait_until(Duration::from_secs(10), busy(2)),
                "{name} {reuse}"
            );
            let names = [
                "connect",
                "reuse",
                "srv_icur",
                "used_conn_cur",
                "need_conn_est",
            ];
            let shown = columns(admin, &names);
            seen.push(format!("{reuse}: {} open, {shown}", open_to(server.addr)));
            drop((a, b));
            drop(proxy);
        }
        (seen.join("\n"), Vec::new(), 0)
    });
}

/// With `http-reuse safe`, a new server connection is the HTTP/2 client connection's that
/// opened it while its streams are open, as HAProxy 2.6 attaches it to the session: that
/// client's later stream joins it (one server connection), where it used to open another.
#[test]
fn an_h2_clients_later_stream_joins_the_connection_its_first_opened() {
    let test = "h2-servers-safe-session";
    let Some(dir) = huge_docs(test) else { return };
    compare(test, |name, binary| {
        let server = Nghttpd::start(&dir, name, None);
        let (proxy, front, admin) =
            pooled_proxy(binary.clone(), &dir, name, server.addr, "safe", "");
        let admin = admin.as_path();
        let busy = |n: usize| {
            let scur = format!("scur={n}");
            move || columns(admin, &["scur"]) == scur
        };
        let mut client = Rounds::open(front);
        // The first download stalls (no WINDOW_UPDATE): its stream stays open.
        client.send_get("/huge");
        assert!(wait_until(Duration::from_secs(10), busy(1)), "{name}");
        client.send_get("/huge");
        assert!(wait_until(Duration::from_secs(10), busy(2)), "{name}");
        let shown = columns(admin, &["connect", "reuse"]);
        let seen = format!("{} open, {shown}", open_to(server.addr));
        drop((client, proxy));
        (seen, Vec::new(), 0)
    });
}

/// `n` GETs one after the other on one HTTP/1.1 client connection, each answered `ok`.
fn sequential_h1_gets(front: SocketAddr, n: usize) {
    let mut conn = std::net::TcpStream::connect(front).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..n {
        conn.write_all(b"GET /small HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0; 1024];
        while !answer.ends_with(b"\r\n\r\nok\n") {
            let got = conn.read(&mut buf).unwrap();
            assert!(
                got > 0,
                "closed after {:?}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..got]);
        }
    }
}

/// `max-session-srv-conns N` on the frontend bounds the idle server connections each
/// client connection keeps (`http-reuse never`), as HAProxy's `session_check_idle_conn`,
/// for 0, 1 and 2 (5 by default: [`http_reuse_never_keeps_connections_per_client_connection`]):
/// - an HTTP/2 client's two rounds of ten streams at once to an HTTP/1.1 server: ten
///   connections, then the ten beyond the N kept idle;
/// - an HTTP/1.1 client's three requests one after the other: one connection, or three
///   with N = 0;
/// - an HTTP/2 client's two single streams to an h2c server: one connection, or two
///   with N = 0.
#[test]
fn max_session_srv_conns_bounds_idle_private_connections() {
    let test = "h2-servers-max-session-srv-conns";
    let Some(dir) = h2load_dir(test) else { return };
    let under_h2 = dir.join("docs").join("h2");
    std::fs::create_dir_all(&under_h2).unwrap();
    std::fs::write(under_h2.join("small"), "hello\n").unwrap();
    compare(test, |name, binary| {
        let mut seen = Vec::new();
        for most in [0, 1, 2] {
            let h2 = Nghttpd::start(&dir, &format!("{name}-{most}"), None);
            let (h1, h1_accepted) = counting_server();
            let h1_connections = || h1_accepted.load(std::sync::atomic::Ordering::SeqCst);
            let front = SocketAddr::from((LO, free_port()));
            let admin = dir.join(format!("{name}-{most}.sock"));
            let cfg = format!(
                "global\n  stats socket {} level admin\n\
                 defaults\n  mode http\n  timeout client 10s\n  timeout server 3s\n  timeout connect 5s\n\
                 frontend fe\n  bind {front}\n  max-session-srv-conns {most}\n\
                 \x20 use_backend h2 if {{ path_beg /h2 }}\n  default_backend be\n\
                 backend be\n  http-reuse never\n  server s1 {h1}\n\
                 backend h2\n  http-reuse never\n  server s1 {} proto h2\n",
                admin.display(),
                h2.addr
            );
            let _proxy = Proxy::start_with(binary.clone(), &dir, name, &cfg, front, &[]);
            // The streams of a round left the backend's server (their connections detached).
            let settled = |backend: &str| {
                let left = || {
                    let csv = cli(&admin, "show stat");
                    stat_row(&csv, backend, "s1").is_some_and(|row| row["scur"] == "0")
                };
                assert!(wait_until(Duration::from_secs(10), left), "{name} {most}");
            };
            let mut counts = Vec::new();
            let mut client = Rounds::open(front);
            for _ in 0..2 {
                assert_eq!(client.get_at_once("/small", 10), [0x88; 10], "{name}");
                settled("be");
                counts.push(h1_connections());
            }
            sequential_h1_gets(front, 3);
            settled("be");
            counts.push(h1_connections() - counts[1]);
            let mut client = Rounds::open(front);
            for _ in 0..2 {
                assert_eq!(client.get_at_once("/h2/small", 1), [0x88], "{name}");
                settled("h2");
                counts.push(h2.connections());
            }
            let wanted = match most {
                0 => [10, 20, 3, 1, 2],
                1 => [10, 19, 1, 1, 1],
                _ => [10, 18, 1, 1, 1],
            };
            assert_eq!(counts, wanted, "{name}: max-session-srv-conns {most}");
            seen.push(format!("{most}: {counts:?}"));
        }
        (seen.join("\n"), Vec::new(), 0)
    });
}

/// The connections to `server` the proxy has not closed after the server's FIN (`ss`,
/// CLOSE-WAIT).
fn half_closed_to(server: SocketAddr) -> usize {
    let out = Command::new("ss")
        .args(["-Htn", "state", "close-wait", "dst"])
        .arg(server.to_string())
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// One GET of `path` on `conn`, an HTTP/1.1 client connection, whose answer has no body:
/// the answer, read to its end.
fn h1_get_empty(conn: &mut std::net::TcpStream, path: &str) -> String {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 1024];
    let ended = |a: &[u8]| {
        let text = String::from_utf8_lossy(a).to_ascii_lowercase();
        text.ends_with("\r\n\r\n0\r\n\r\n")
            || (text.contains("content-length: 0\r\n") && text.ends_with("\r\n\r\n"))
    };
    while !ended(&answer) {
        let got = conn.read(&mut buf).unwrap();
        assert!(
            got > 0,
            "closed after {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..got]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A private server connection (`http-reuse never`) that the server closes once idle (its
/// answer read: a GOAWAY, then its FIN) is closed by the proxy at once, as HAProxy's mux
/// releases it, not left half-closed until a later request would take it: the private
/// connection of an HTTP/2 client connection (in its session's list) and that of an
/// HTTP/1.1 one (which holds it between its requests). The later request on the same
/// client connection goes on a new server connection and succeeds, neither failed nor
/// retried: two requests on two connections, none in use or idle left, as HAProxy.
#[test]
fn a_closed_idle_private_connection_is_dropped_at_once() {
    let test = "h2-servers-private-closed";
    if !hapx_tests::require::command(test, "ss") {
        return;
    }
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let mut seen = Vec::new();
        for client_speaks in ["h2", "h1"] {
            let (server, requests) = scripted_server(|stream| {
                vec![
                    Step::Send(frame(1, 5, stream, &[0x88])),
                    Step::PingAcked,
                    Step::Send(frame(7, 0, 0, &[0, 0, 0, stream as u8, 0, 0, 0, 0])),
                    Step::Close,
                ]
            });
            let admin = dir.join(format!("{name}-{client_speaks}.sock"));
            let front = SocketAddr::from((LO, free_port()));
            let cfg = format!(
                "global\n  stats socket {} level admin\n\
                 defaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n\
                 frontend fe\n  bind {front}\n  default_backend be\n\
                 backend be\n  http-reuse never\n  server s1 {server} proto h2\n",
                admin.display()
            );
            let _proxy = Proxy::start_with(binary.clone(), &dir, name, &cfg, front, &[]);
            let mut h2_client = (client_speaks == "h2").then(|| Rounds::open(front));
            let mut h1_client = std::net::TcpStream::connect(front).unwrap();
            h1_client
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut get = |path: &str| match h2_client.as_mut() {
                Some(client) => format!("{:?}", client.get_at_once(path, 1)),
                None => h1_get_empty(&mut h1_client, path),
            };
            let first = get("/a");
            let seen_by_server = std::sync::atomic::Ordering::SeqCst;
            let closed = || requests.load(seen_by_server) == 1 && half_closed_to(server) == 0;
            // (Within `timeout client`, which would end the client connection, its session
            // and so the server connection.)
            assert!(
                wait_until(Duration::from_secs(5), closed),
                "{name} {client_speaks}: {} half-closed",
                half_closed_to(server)
            );
            let second = get("/b");
            let names = ["stot", "connect", "reuse", "srv_icur", "used_conn_cur"];
            let left = || columns(&admin, &names[3..]) == "srv_icur=0 used_conn_cur=0";
            assert!(wait_until(Duration::from_secs(10), left), "{name}");
            // (Two requests on two connections: `connect`, as the server's count after the
            // second answer is not yet settled.)
            let shown = columns(&admin, &names);
            seen.push(format!("{client_speaks}: {first:?} {second:?} {shown}"));
        }
        (seen.join("\n"), Vec::new(), 0)
    });
}

/// A response without `content-length` reaches an HTTP/1.1 client chunked, as HAProxy's H1
/// layer writes it, whether its body ended with its last DATA or its HEADERS ended the
/// stream (then only the last chunk), with HAProxy's logged sizes (the HTTP/2 message's,
/// without the framing added).
#[test]
fn a_response_without_length_is_chunked() {
    let test = "h2-servers-no-length";
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let (server, _) = scripted_server(|stream| match stream {
            1 => vec![Step::Send(frame(1, 5, stream, &[0x88]))],
            _ => {
                let mut out = frame(1, 4, stream, &[0x88]);
                out.extend(frame(0, 1, stream, b"hello"));
                vec![Step::Send(out)]
            }
        });
        let line = format!("server s1 {server} proto h2");
        let proxy = run(binary, &dir, name, "", &line);
        let request = "GET /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        let out = exchange(proxy.front, request);
        let lines = proxy.lines(2);
        let wanted = "HTTP/1.1 200 \r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
        assert!(out.starts_with(wanted), "{name}: {out:?}");
        assert!(out.ends_with("5\r\nhello\r\n0\r\n\r\n"), "{name}: {out:?}");
        // (Without the `connection: close`, which HAProxy writes before the
        // `transfer-encoding` its HTTP/1 layer adds, hapx after.)
        let out = out.replacen("connection: close\r\n", "", 1);
        (out, lines, 0)
    });
}

/// `max-session-srv-conns` read by `-c` as HAProxy 2.6 reads it, alerts and warnings word
/// for word: no value is an alert (HAProxy's own "parsine" spelling), a value that is no
/// number, a negative one or extra words pass (C's `atoi`), a backend warns that it has no
/// frontend side, a defaults section or a listen take it.
#[test]
fn max_session_srv_conns_is_read_as_haproxy_reads_it() {
    let test = "h2-servers-max-session-srv-conns-parse";
    let dir = temp_dir(test);
    let with_haproxy =
        hapx_tests::require::path(test, Path::new(hapx_tests::proxy_rules::HAPROXY), "HAProxy");
    let cases = [
        ("frontend", "", 1),
        ("frontend", "abc", 0),
        ("frontend", "-1", 0),
        ("frontend", "0", 0),
        ("listen", "3 4", 0),
        ("defaults", "", 1),
        ("defaults", "7", 0),
        ("backend", "", 1),
        // (Warnings found: `-c` exits with 2.)
        ("backend", "2", 2),
    ];
    for (case, (section, value, status)) in cases.into_iter().enumerate() {
        let keyword = format!("  max-session-srv-conns {value}\n");
        let (defaults_line, proxy_line) = match section {
            "defaults" => (keyword.as_str(), ""),
            _ => ("", keyword.as_str()),
        };
        let proxy = match section {
            "backend" => format!("backend b\n{proxy_line}  server s 127.0.0.1:1\n"),
            "defaults" | "frontend" => format!("frontend f\n  bind 127.0.0.1:1\n{proxy_line}"),
            _ => format!("listen l\n  bind 127.0.0.1:1\n{proxy_line}  server s 127.0.0.1:1\n"),
        };
        let text = format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             {defaults_line}{proxy}"
        );
        let file = dir.join(format!("case{case}.cfg"));
        std::fs::write(&file, &text).unwrap();
        let hapx =
            hapx_tests::proxy_rules::check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
        assert_eq!(hapx.0, status, "{text}: {:?}", hapx.1);
        if with_haproxy {
            let haproxy = hapx_tests::proxy_rules::check_messages(
                Path::new(hapx_tests::proxy_rules::HAPROXY),
                &file,
            );
            assert_eq!(hapx, haproxy, "{text}");
        }
    }
}

/// An HTTP/2 server that answers each request as soon as its HEADERS come, before its
/// body: a 413 that ends the stream, then RST_STREAM with `reason`, its ask for no more of
/// the body (NO_ERROR, RFC 9113 8.1; CANCEL, as HAProxy 2.6 and nginx send it); then a
/// PING, whose ACK (the client read those) it counts.
fn early_answer_server(
    reason: u32,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind((LO, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = answered.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut preface = [0u8; 24];
                if conn.read_exact(&mut preface).is_err() {
                    return;
                }
                let _ = conn.write_all(&[frame(4, 0, 0, &[]), frame(4, 1, 0, &[])].concat());
                while let Some((kind, _, stream, _)) = read_frame(&mut conn) {
                    if kind == 1 {
                        // `:status: 413` (a literal of indexed name 8).
                        let mut answer = frame(1, 5, stream, b"\x08\x03413");
                        answer.extend(frame(3, 0, stream, &reason.to_be_bytes()));
                        let _ = conn.write_all(&answer);
                        if ping_acked(&mut conn) {
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    (addr, answered)
}

/// An upload the server answers before its body came (a 413, then its RST_STREAM with
/// NO_ERROR or CANCEL), the rest of the body sent once the proxy read those: the client gets
/// the 413, as through HAProxy (before, hapx took the reset stream's refusal of the rest for
/// a failure: a 502). Not compared: HAProxy relays the 413 at once, hapx once the body
/// came (HTTP/2 servers are not watched during a body), and HAProxy logs `-1 32 SD--`
/// where hapx logs `413 32 ----`.
#[test]
fn an_early_answer_with_a_reset_reaches_the_client() {
    let test = "h2-servers-early-answer";
    let dir = temp_dir(test);
    compare(test, |name, binary| {
        let answers = [0, 8].map(|reason| early_answer(&dir, name, binary.clone(), reason));
        (answers.join("\n"), Vec::new(), 0)
    });
}

/// [`an_early_answer_with_a_reset_reaches_the_client`] with one reset `reason`: what the
/// client got.
fn early_answer(dir: &Path, name: &str, binary: PathBuf, reason: u32) -> String {
    let (server, answered) = early_answer_server(reason);
    let line = format!("server s1 {server} proto h2");
    let proxy = run(binary, dir, name, "", &line);
    let mut conn = std::net::TcpStream::connect(proxy.front).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = "POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\n\r\n0123456789";
    conn.write_all(head.as_bytes()).unwrap();
    let read = || answered.load(std::sync::atomic::Ordering::SeqCst) == 1;
    assert!(wait_until(Duration::from_secs(5), read), "{name}");
    conn.write_all(b"0123456789").unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 1024];
    while !answer.ends_with(b"\r\n0\r\n\r\n") {
        let got = conn.read(&mut buf).unwrap();
        assert!(got > 0, "{name}: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..got]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 413 "),
        "{name} {reason}: {answer:?}"
    );
    drop(proxy);
    answer
}
