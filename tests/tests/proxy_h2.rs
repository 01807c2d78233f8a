//! HTTP/2 on HTTP frontends, hapx-proxy beside HAProxy 2.6 with the same configuration and
//! traffic: prior knowledge in clear (curl `--http2-prior-knowledge`), ALPN `h2` over TLS
//! with streams multiplexed on one connection (curl `--http2 -Z`), request bodies with and
//! without a length, a deny rule, `bind ... proto h2` given HTTP/1, an incomplete preface,
//! and the GOAWAY frames of an idle connection and of a soft stop (a raw frame client);
//! the request fetches of a stream, `http-reuse safe` for streams, the frontend's h2
//! `show stat` columns, streams refused for their headers (reset, logged `<BADREQ>`), and
//! `shutdown session` of one stream.
//! Log lines are compared with their numbers masked but their byte counts; what the
//! HTTP/1.1 server received is compared byte for byte.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, TestDir, cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, Syslog, shape_keeping_bytes, side_by_side};
use hapx_tests::proxy_tls::site_certificate;
use hapx_tests::{bins, require};

/// The whole client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An HTTP/1.1 server recording every request it reads (head and body, as they came) and
/// answering each `ok`, keeping its connections alive.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = log.clone();
                thread::spawn(move || serve_recorded(conn, &log));
            }
        });
        Recorder { addr, seen }
    }

    /// The requests read since the last call.
    fn take(&self) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap();
        seen.drain(..)
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .collect()
    }
}

fn serve_recorded(conn: TcpStream, log: &Mutex<Vec<Vec<u8>>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut writer = conn.try_clone().expect("a second handle");
    let mut reader = BufReader::new(conn);
    loop {
        let mut raw = Vec::new();
        let mut length = 0;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            raw.extend_from_slice(line.as_bytes());
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
            if line == "\r\n" {
                break;
            }
        }
        if chunked {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                raw.extend_from_slice(size.as_bytes());
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut data = vec![0; n + 2];
                if reader.read_exact(&mut data).is_err() {
                    return;
                }
                raw.extend_from_slice(&data);
                if n == 0 {
                    break;
                }
            }
        } else {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            raw.extend_from_slice(&body);
        }
        log.lock().unwrap().push(raw);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-from: rec\r\n\r\nok\n")
            .is_err()
        {
            return;
        }
    }
}

fn curl(test: &str) -> bool {
    require::command(test, "curl")
}

/// Runs curl with `args`; its standard output.
fn run_curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn http_config(log: SocketAddr, front: SocketAddr, bind: &str, body: &str) -> String {
    format!(
        "global\n  log {log} local0\ndefaults\n  mode http\n  log global\n  option httplog\n  \
         timeout client 3s\n  timeout http-keep-alive 1s\n  timeout server 3s\n  \
         timeout connect 1s\nfrontend fe\n  bind {front}{bind}\n{body}  default_backend be\n"
    )
}

/// What the tests that read the stats socket start from: a directory holding the socket,
/// a syslog sink and a front address.
struct StatsRig {
    _dir: TestDir,
    sock: PathBuf,
    syslog: Syslog,
    front: SocketAddr,
}

impl StatsRig {
    fn new(test: &str) -> StatsRig {
        let dir = temp_dir(test);
        let sock = dir.join("stats.sock");
        let (syslog, front) = (Syslog::bind(), local(free_port()));
        StatsRig {
            _dir: dir,
            sock,
            syslog,
            front,
        }
    }

    /// `http_config` with an admin stats socket in its global section, and `backend` lines
    /// ahead of the one server, at `server`.
    fn config(&self, backend: &str, server: SocketAddr) -> String {
        format!(
            "global\n  stats socket {} level admin\n{}backend be\n{backend}  server s1 {server}\n",
            self.sock.display(),
            http_config(self.syslog.addr, self.front, "", "").replacen("global\n", "", 1),
        )
    }
}

/// What HAProxy's run gave, when it ran, is what hapx-proxy's gave.
fn same_as_haproxy<T: PartialEq + std::fmt::Debug>(ours: &T, theirs: Option<T>) {
    if let Some(theirs) = theirs {
        assert_eq!(*ours, theirs);
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Log lines with their numbers (times, ports) masked, their byte counts kept.
fn shaped(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| shape_keeping_bytes(l)).collect()
}

/// Requests in clear with prior knowledge: a GET with headers, a POST with a length, a PUT
/// streamed without one (chunked to the server). Logged as HAProxy logs them (`%r` with the
/// absolute URI and HTTP/2.0, the same byte counts), and the server receives the same bytes:
/// origin form, `host` first, lower-case names.
#[test]
fn prior_knowledge_requests_are_logged_and_forwarded_like_haproxy() {
    let test = "h2_prior_knowledge";
    if !curl(test) {
        return;
    }
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let url = |path: &str| format!("http://{front}{path}");
        let mut answers = Vec::new();
        let get = url("/a?b=c");
        answers.push(run_curl(&[
            "--http2-prior-knowledge",
            "-H",
            "X-Foo: Bar",
            "-A",
            "ua",
            &get,
        ]));
        let post = url("/post");
        answers.push(run_curl(&["--http2-prior-knowledge", "-d", "hello", &post]));
        let body = temp_dir(&format!("{test}-body"));
        let file = body.join("body");
        std::fs::write(&file, "streamed body\n").unwrap();
        let put = url("/put");
        // From standard input: no length known, the request ends with its stream.
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "--http2-prior-knowledge",
                "-T",
                "-",
                &put,
            ])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .expect("running curl");
        answers.push(String::from_utf8_lossy(&out.stdout).into_owned());
        (answers, server.take(), shaped(&syslog.lines(3)))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, ["ok\n"; 3], "{ours:#?}");
    assert!(
        ours.1[0].starts_with(&format!("GET /a?b=c HTTP/1.1\r\nhost: {front}\r\n")),
        "{ours:#?}"
    );
    assert!(
        ours.1[2].contains("transfer-encoding: chunked\r\n\r\nE\r\nstreamed body\n\r\n0\r\n\r\n"),
        "{ours:#?}"
    );
    assert!(
        ours.2[0].ends_with(&format!("\"GET http://{} HTTP/N.N\"", "N.N.N.N:N/a?b=c")),
        "{ours:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// ALPN `h2` on an `ssl` bind: four streams multiplexed on one connection (`curl -Z`) are
/// four requests of one session: `stot` 1 and `req_tot` 4 on the frontend, 4 sessions on
/// the backend, four log lines of one client port, as in HAProxy.
#[test]
fn streams_of_one_tls_connection_are_requests_of_one_session() {
    let test = "h2_tls_multiplexed";
    if !curl(test) {
        return;
    }
    let dir = temp_dir(test);
    let pem = dir.join("site.pem");
    site_certificate(&pem, &["site.example"], false);
    let sock = dir.join("stats.sock");
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "global\n  log {} local0\n  stats socket {} level admin\ndefaults\n  mode http\n  \
         log global\n  option httplog\n  timeout client 3s\n  timeout server 3s\n  \
         timeout connect 1s\nfrontend fe\n  bind {front} ssl crt {} alpn h2,http/1.1\n  \
         default_backend be\nbackend be\n  server s1 {}\n",
        syslog.addr,
        sock.display(),
        pem.display(),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let urls: Vec<String> = (1..=4).map(|i| format!("https://{front}/{i}")).collect();
        let mut args = vec!["--http2", "-k", "-Z"];
        args.extend(urls.iter().map(String::as_str));
        let answers = run_curl(&args);
        let lines = syslog.lines(4);
        let ports: std::collections::BTreeSet<String> = lines
            .iter()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        let csv = cli(&sock, "show stat");
        let row = |proxy: &str, server: &str| {
            let row = stat_row(&csv, proxy, server).expect("a stats row");
            ["stot", "req_tot", "conn_tot", "bin", "bout", "hrsp_2xx"]
                .map(|f| row.get(f).cloned().unwrap_or_default())
        };
        let mut shapes = shaped(&lines);
        shapes.sort();
        (
            answers,
            ports.len(),
            shapes,
            row("fe", "FRONTEND"),
            row("be", "BACKEND"),
        )
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, "ok\n".repeat(4), "{ours:#?}");
    assert_eq!(ours.1, 1, "one client connection: {ours:#?}");
    assert!(
        ours.2
            .iter()
            .all(|l| l.contains("fe~ be/sN") && l.contains("\"GET https://")),
        "{ours:#?}"
    );
    assert_eq!(&ours.3[..3], ["1", "4", "1"], "frontend: {ours:#?}");
    assert_eq!(ours.4[0], "4", "backend: {ours:#?}");
    same_as_haproxy(&ours, theirs);
}

/// A request an `http-request deny` refuses: HAProxy's 403 page on the stream (its
/// HTTP/2 head without the HTTP/1 connection's headers), logged `PR--` with its 192 bytes.
#[test]
fn denied_streams_get_haproxys_403() {
    let test = "h2_deny";
    if !curl(test) {
        return;
    }
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(
            syslog.addr,
            front,
            "",
            "  http-request deny if { path /deny }\n"
        ),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let url = format!("http://{front}/deny");
        let head = run_curl(&[
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &url,
        ]);
        (head, shaped(&syslog.lines(1)), server.take())
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert!(ours.0.starts_with("HTTP/2 403 \r\n"), "{ours:#?}");
    assert!(!ours.0.contains("connection"), "{ours:#?}");
    assert!(ours.1[0].contains(" N 192 - - PR-- "), "{ours:#?}");
    assert!(ours.2.is_empty(), "{ours:#?}");
    same_as_haproxy(&ours, theirs);
}

/// `bind ... proto h2` given an HTTP/1 request: the connection closes without a reply,
/// logged `<BADREQ>` `PR--` with no bytes; an HTTP/2 client is served. And on an ordinary
/// bind, a preface cut short is HTTP/1's bad request (400).
#[test]
fn forced_h2_refuses_http1_and_a_short_preface_is_http1() {
    let test = "h2_proto_bind";
    if !curl(test) {
        return;
    }
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let (forced, plain) = (local(free_port()), local(free_port()));
    let config = format!(
        "{}  bind {plain}\nbackend be\n  server s1 {}\n",
        http_config(syslog.addr, forced, " proto h2", ""),
        server.addr
    );
    let traffic = |forced: SocketAddr| {
        let http1 = run_curl(&["-w", "%{http_code}", &format!("http://{forced}/x")]);
        let h2 = run_curl(&["--http2-prior-knowledge", &format!("http://{forced}/y")]);
        let mut conn = TcpStream::connect(plain).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n").unwrap();
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        let status = reply.lines().next().unwrap_or_default().to_string();
        let lines = shaped(&syslog.lines(3));
        (http1, h2, status, lines)
    };
    let (ours, theirs) = side_by_side(test, &config, forced, traffic);
    assert_eq!(ours.0, "000", "{ours:#?}");
    assert_eq!(ours.1, "ok\n", "{ours:#?}");
    assert_eq!(ours.2, "HTTP/1.1 400 Bad request", "{ours:#?}");
    assert!(
        ours.3[0].contains("PR-- ") && ours.3[0].ends_with("\"<BADREQ>\""),
        "{ours:#?}"
    );
    assert!(
        ours.3[2].contains(" N 206 - - PR-- ") && ours.3[2].ends_with("\"<BADREQ>\""),
        "{ours:#?}"
    );
    // The refused connection's status is 0 (no stream), not -1 (a request unanswered).
    assert!(ours.3[0].contains(" N 0 - - PR-- "), "{ours:#?}");
    same_as_haproxy(&ours, theirs);
}

/// An HTTP/2 frame read whole from `conn`: its type, flags, stream and payload.
fn read_frame(conn: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    conn.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    conn.read_exact(&mut payload).ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Some((head[3], head[4], stream, payload))
}

/// A prior-knowledge connection that sent one GET (stream 1, its response read).
fn one_stream(front: SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let authority = b"127.0.0.1";
    // HPACK: :method GET, :scheme http, :path /, :authority literal (indexed name 1).
    let mut block = vec![0x82, 0x86, 0x84, 0x41, authority.len() as u8];
    block.extend_from_slice(authority);
    let mut out = PREFACE.to_vec();
    out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[1, 0x05, 0, 0, 0, 1]);
    out.extend_from_slice(&block);
    conn.write_all(&out).unwrap();
    while let Some((kind, flags, _, payload)) = read_frame(&mut conn) {
        if kind == 4 && flags & 1 == 0 {
            conn.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).unwrap();
        }
        if kind == 0 && flags & 1 == 1 {
            assert_eq!(payload, b"ok\n");
            break;
        }
    }
    conn
}

/// The GOAWAY frames read until the connection closes (last stream, error code), PINGs
/// answered.
fn goaways(conn: &mut TcpStream) -> Vec<(u32, u32)> {
    let mut seen = Vec::new();
    while let Some((kind, flags, _, payload)) = read_frame(conn) {
        match kind {
            7 => {
                let word = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
                seen.push((word(0) & 0x7fff_ffff, word(4)));
            }
            6 if flags & 1 == 0 => {
                let mut ack = vec![0, 0, 8, 6, 1, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                let _ = conn.write_all(&ack);
            }
            _ => {}
        }
    }
    seen
}

/// An idle connection closes with GOAWAY (last stream 1, NO_ERROR) once its keep-alive
/// timeout passed; a soft stop (SIGUSR1) sends GOAWAY for every stream at once, then the
/// last one, and closes, as HAProxy.
#[test]
fn idle_connections_and_soft_stops_end_with_goaway() {
    let test = "h2_goaway";
    let server = Recorder::start();
    let syslog = Syslog::bind();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let run = |binary: &Path, name: &str| {
        let dir = temp_dir(&format!("{test}-{name}"));
        let idle = {
            let _p = Proxy::start_with(binary.into(), &dir, name, &config, front, &[]);
            goaways(&mut one_stream(front))
        };
        let p = Proxy::start_with(binary.into(), &dir, name, &config, front, &[]);
        let mut conn = one_stream(front);
        p.signal(nix::sys::signal::Signal::SIGUSR1);
        (idle, goaways(&mut conn))
    };
    let ours = run(&bins::path("hapx-proxy"), "hapx");
    assert_eq!(ours.0, [(1, 0)], "{ours:?}");
    assert_eq!(ours.1.first(), Some(&(0x7fff_ffff, 0)), "{ours:?}");
    assert_eq!(ours.1.last(), Some(&(1, 0)), "{ours:?}");
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = run(Path::new(HAPROXY), "haproxy");
        assert_eq!(ours, theirs);
    }
}

/// A server answering every request with a chunked body sent in pieces cut anywhere (a
/// size line in two, CR apart from LF), a pause between them.
fn piecewise_chunked_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let pieces: [&[u8]; 6] = [
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5",
                    b"\r",
                    b"\nhel",
                    b"lo\r\n1",
                    b"0\r\n0123456789abcdef\r\n0\r",
                    b"\n\r\n",
                ];
                for piece in pieces {
                    if conn.write_all(piece).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    addr
}

/// A chunked response reaches the HTTP/2 client as its data whole, however the server's
/// writes cut its framing, without `content-length` nor `transfer-encoding`; logged with
/// HAProxy's byte count.
#[test]
fn chunked_responses_cut_anywhere_arrive_whole() {
    let test = "h2_chunked_pieces";
    if !curl(test) {
        return;
    }
    let syslog = Syslog::bind();
    let server = piecewise_chunked_server();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {server}\n",
        http_config(syslog.addr, front, "", "")
    );
    let traffic = |front: SocketAddr| {
        let url = format!("http://{front}/");
        let answer = run_curl(&["--http2-prior-knowledge", "-D", "-", &url]);
        (answer, shaped(&syslog.lines(1)))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(
        ours.0, "HTTP/2 200 \r\n\r\nhello0123456789abcdef",
        "{ours:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// The request fetches of an HTTP/2 stream read HAProxy's internal form of the request:
/// the absolute URI (`url`), version 2.0, `host` from `:authority`; HTTP/1 requests on the
/// same frontend keep theirs.
#[test]
fn fetches_see_an_h2_request_as_haproxy() {
    let test = "h2_fetches";
    if !curl(test) {
        return;
    }
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(
            syslog.addr,
            front,
            "",
            "  http-request return status 200 content-type text/plain lf-string \
             \"%[req.ver]|%[url]|%[path]|%[base]|%[req.hdr(host)]|%[req.proto_http]|\
             %[url_param(b)]|%[query]|%HU|%HP|%HQ|%HV\\n\"\n"
        ),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let url = format!("http://{front}/ver?b=c");
        let h2 = run_curl(&["--http2-prior-knowledge", &url]);
        let other = run_curl(&["--http2-prior-knowledge", "-H", "Host: other", &url]);
        let http1 = run_curl(&[&url]);
        (h2, other, http1)
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    let authority = front.to_string();
    assert_eq!(
        ours.0,
        format!(
            "2.0|http://{authority}/ver?b=c|/ver|{authority}/ver|{authority}|1|c|b=c|\
             http://{authority}/ver?b=c|http://{authority}/ver|?b=c|HTTP/2.0\n"
        ),
        "{ours:#?}"
    );
    assert!(
        ours.1
            .starts_with("2.0|http://other/ver?b=c|/ver|other/ver|other|"),
        "{ours:#?}"
    );
    assert_eq!(
        ours.2,
        format!(
            "1.1|/ver?b=c|/ver|{authority}/ver|{authority}|1|c|b=c|/ver?b=c|/ver|?b=c|HTTP/1.1\n"
        ),
        "{ours:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// HAProxy marks every HTTP/2 stream "not first" (SE_FL_NOT_FIRST): with `http-reuse safe`
/// the first stream of a new connection reuses the idle server connection the previous
/// client connection left, as a later HTTP/1 request would.
#[test]
fn h2_streams_reuse_server_connections_as_later_requests() {
    let test = "h2_reuse";
    if !curl(test) {
        return;
    }
    let rig = StatsRig::new(test);
    let server = Recorder::start();
    let front = rig.front;
    let config = rig.config("  http-reuse safe\n", server.addr);
    let traffic = |front: SocketAddr| {
        let url = format!("http://{front}/r");
        let answers: Vec<String> = (0..3)
            .map(|_| run_curl(&["--http2-prior-knowledge", &url]))
            .collect();
        let csv = cli(&rig.sock, "show stat");
        let row = stat_row(&csv, "be", "s1").expect("the server's row");
        let counts = ["stot", "connect", "reuse"].map(|f| row[f].clone());
        (answers, counts)
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, ["ok\n"; 3], "{ours:#?}");
    assert_eq!(
        ours.1,
        ["3", "1", "2"],
        "one server connection, reused: {ours:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// `show stat`'s h2 columns of a frontend, as HAProxy's h2 stats module counts them: the
/// HEADERS, DATA and SETTINGS frames its clients sent, its connections and streams.
#[test]
fn frontend_h2_columns_count_frames_connections_and_streams() {
    let test = "h2_stat_columns";
    if !curl(test) {
        return;
    }
    let rig = StatsRig::new(test);
    let server = Recorder::start();
    let front = rig.front;
    let config = rig.config("", server.addr);
    const COLUMNS: [&str; 9] = [
        "h2_headers_rcvd",
        "h2_data_rcvd",
        "h2_settings_rcvd",
        "h2_rst_stream_rcvd",
        "h2_goaway_rcvd",
        "h2_open_connections",
        "h2_backend_open_streams",
        "h2_total_connections",
        "h2_backend_total_streams",
    ];
    let traffic = |front: SocketAddr| {
        let url = format!("http://{front}/c");
        let answers = [
            run_curl(&["--http2-prior-knowledge", &url]),
            run_curl(&["--http2-prior-knowledge", "-d", "hello", &url]),
            run_curl(&[&url]),
        ];
        let csv = cli(&rig.sock, "show stat");
        let row = stat_row(&csv, "fe", "FRONTEND").expect("the frontend's row");
        (answers, COLUMNS.map(|c| row[c].clone()))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, ["ok\n"; 3], "{ours:#?}");
    let counts = ours.1.clone().map(|v| v.parse::<u64>().expect("a number"));
    // Two HEADERS, one DATA; two connections and streams, none open any more.
    assert_eq!(counts[..2], [2, 1], "{ours:#?}");
    assert_eq!(counts[5..], [0, 0, 2, 2], "{ours:#?}");
    same_as_haproxy(&ours, theirs);
}

/// An HPACK request block for `GET http://127.0.0.1/` with `extra` literal headers (new
/// names, not indexed).
fn request_block(extra: &[(&str, &str)]) -> Vec<u8> {
    let authority = b"127.0.0.1";
    let mut block = vec![0x82, 0x86, 0x84, 0x41, authority.len() as u8];
    block.extend_from_slice(authority);
    for (name, value) in extra {
        block.push(0);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// A HEADERS frame ending its headers and its stream.
fn headers_frame(stream: u32, block: &[u8]) -> Vec<u8> {
    let mut frame = (block.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[1, 0x05]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(block);
    frame
}

/// Streams whose header blocks HTTP/2 forbids (HTTP/1's connection headers `upgrade`,
/// `connection`) are reset with PROTOCOL_ERROR and logged `<BADREQ>` (status 0, no
/// stream), the connection serving the next stream, as HAProxy.
#[test]
fn malformed_streams_are_reset_and_logged_as_bad_requests() {
    let test = "h2_malformed_streams";
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let mut conn = TcpStream::connect(front).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        out.extend(headers_frame(1, &request_block(&[("upgrade", "h2c")])));
        out.extend(headers_frame(3, &request_block(&[("connection", "close")])));
        out.extend(headers_frame(5, &request_block(&[])));
        conn.write_all(&out).unwrap();
        let mut resets = Vec::new();
        while let Some((kind, flags, stream, payload)) = read_frame(&mut conn) {
            if kind == 3 {
                resets.push((stream, u32::from_be_bytes(payload[..4].try_into().unwrap())));
            }
            if kind == 0 && flags & 1 == 1 {
                break;
            }
        }
        let mut lines = shaped(&syslog.lines(3));
        lines.sort();
        (resets, lines)
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, [(1, 1), (3, 1)], "{ours:#?}");
    let bad: Vec<_> = ours.1.iter().filter(|l| l.contains("<BADREQ>")).collect();
    assert_eq!(bad.len(), 2, "{ours:#?}");
    assert!(
        bad.iter().all(|l| l.contains(" N 0 - - PR-- ")),
        "{ours:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// An HTTP/1.1 server answering each request `ok` a second after its head came.
fn slow_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut writer = conn.try_clone().expect("a second handle");
                let mut reader = BufReader::new(conn);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        thread::sleep(Duration::from_secs(1));
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
                        if writer.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// `shutdown session` of one stream of an HTTP/2 connection ends that stream alone: reset
/// with REFUSED_STREAM (nothing was sent on it), the other stream answered, as HAProxy.
#[test]
fn shutdown_session_ends_one_stream_alone() {
    let test = "h2_shutdown_session";
    let rig = StatsRig::new(test);
    let front = rig.front;
    let config = rig.config("", slow_server());
    let traffic = |front: SocketAddr| {
        let mut conn = TcpStream::connect(front).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        out.extend(headers_frame(1, &request_block(&[])));
        out.extend(headers_frame(3, &request_block(&[])));
        conn.write_all(&out).unwrap();
        // Both streams at their server: the first one listed is killed.
        let mut listed = Vec::new();
        for _ in 0..100 {
            listed = cli(&rig.sock, "show sess")
                .lines()
                .filter(|l| l.contains("fe=fe") && l.contains("srv=s1"))
                .filter_map(|l| l.split(':').next().map(str::to_string))
                .collect();
            if listed.len() == 2 {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(listed.len(), 2, "two streams at the server");
        cli(&rig.sock, &format!("shutdown session {}", listed[0]));
        let mut seen = Vec::new();
        while let Some((kind, flags, stream, payload)) = read_frame(&mut conn) {
            match kind {
                3 => seen.push((stream, u32::from_be_bytes(payload[..4].try_into().unwrap()))),
                0 if flags & 1 == 1 => {
                    seen.push((stream, 0));
                    break;
                }
                _ => {}
            }
        }
        seen
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    // One stream reset with REFUSED_STREAM, the other's response ended.
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert_eq!(ours[0].1, 7, "{ours:?}");
    assert_eq!(ours[1].1, 0, "{ours:?}");
    same_as_haproxy(&ours, theirs);
}

/// The descriptors of TCP sockets process `pid` holds now (each counted, a duplicate too).
fn tcp_descriptors(pid: u32) -> usize {
    let tcp: std::collections::BTreeSet<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(9).map(|i| format!("socket:[{i}]")))
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| tcp.contains(&*l.to_string_lossy()))
        .count()
}

/// Streams of an HTTP/2 connection hold no descriptor of their own, as HAProxy's: four
/// streams at their server add their server connections to the process's TCP descriptors
/// (three new ones, the fourth stream reusing the idle connection a first stream left),
/// nothing for the client side.
#[test]
fn streams_hold_no_descriptor_of_their_own() {
    let test = "h2_stream_descriptors";
    let rig = StatsRig::new(test);
    let front = rig.front;
    let config = rig.config("", slow_server());
    let traffic = |pid: u32| {
        let mut conn = one_stream(front);
        let before = tcp_descriptors(pid);
        let out: Vec<u8> = [3, 5, 7, 9]
            .into_iter()
            .flat_map(|id| headers_frame(id, &request_block(&[])))
            .collect();
        conn.write_all(&out).unwrap();
        let mut at_server = 0;
        for _ in 0..100 {
            at_server = cli(&rig.sock, "show sess")
                .lines()
                .filter(|l| l.contains("fe=fe") && l.contains("srv=s1"))
                .count();
            if at_server == 4 {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(at_server, 4, "four streams at the server");
        tcp_descriptors(pid) - before
    };
    let dir = temp_dir(&format!("{test}-run"));
    let ours = {
        let p = Proxy::start_with(bins::path("hapx-proxy"), &dir, "hapx", &config, front, &[]);
        traffic(p.pid())
    };
    assert_eq!(ours, 3, "TCP descriptors added by four streams");
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let p = Proxy::start_with(HAPROXY.into(), &dir, "haproxy", &config, front, &[]);
        assert_eq!(ours, traffic(p.pid()), "as HAProxy");
    }
}

/// The crumbs of a split `cookie` header reach the HTTP/1.1 server as one `cookie` header,
/// joined by "; " and placed after the other headers, as HAProxy sends them; other repeated
/// headers stay apart, in their order.
#[test]
fn cookie_crumbs_are_joined_like_haproxy() {
    let test = "h2_cookie_crumbs";
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let mut conn = TcpStream::connect(front).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let headers = [
            ("cookie", "a=1"),
            ("x-dup", "1"),
            ("cookie", "b=2"),
            ("x-dup", "2"),
        ];
        out.extend(headers_frame(1, &request_block(&headers)));
        conn.write_all(&out).unwrap();
        while let Some((kind, flags, _, _)) = read_frame(&mut conn) {
            if kind == 0 && flags & 1 == 1 {
                break;
            }
        }
        (server.take(), shaped(&syslog.lines(1)))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(
        ours.0,
        ["GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-dup: 1\r\nx-dup: 2\r\ncookie: a=1; b=2\r\n\r\n"],
        "{ours:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// A request whose DATA, come in the same read as its HEADERS, contradicts its
/// `content-length`: the stream is reset (PROTOCOL_ERROR) and logged once, as a request of
/// its backend aborted by the client (`CR--`, no server, status -1), the server never
/// contacted, as HAProxy does (hapx logged a `<BADREQ>` too, and went to the server); the
/// next stream is served.
#[test]
fn body_contradicting_its_length_is_one_aborted_request() {
    let test = "h2_body_contradicting_length";
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let mut conn = TcpStream::connect(front).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        // POST, its headers ending but not its stream; then 5 bytes of the 10 announced.
        let mut block = request_block(&[("content-length", "10")]);
        block[0] = 0x83;
        let mut headers = headers_frame(1, &block);
        headers[4] = 0x04;
        out.extend(headers);
        out.extend_from_slice(&[0, 0, 5, 0, 0x01, 0, 0, 0, 1]);
        out.extend_from_slice(b"hello");
        conn.write_all(&out).unwrap();
        let mut resets = Vec::new();
        while let Some((kind, _, stream, payload)) = read_frame(&mut conn) {
            if kind == 3 {
                resets.push((stream, u32::from_be_bytes(payload[..4].try_into().unwrap())));
                break;
            }
        }
        // A GET on the next stream, logged after it.
        conn.write_all(&headers_frame(3, &request_block(&[])))
            .unwrap();
        while let Some((kind, flags, stream, _)) = read_frame(&mut conn) {
            if kind == 0 && flags & 1 == 1 && stream == 3 {
                break;
            }
        }
        (resets, shaped(&syslog.lines(2)), server.take().len())
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, [(1, 1)], "{ours:#?}");
    assert!(
        ours.1[0].contains(" fe be/<NOSRV> N/-N/-N/-N/N -N 0 - - CR-- "),
        "{ours:#?}"
    );
    assert!(ours.1[1].contains("\"GET http://"), "{ours:#?}");
    assert_eq!(ours.2, 1, "only the GET reached the server: {ours:#?}");
    same_as_haproxy(&ours, theirs);
}

/// An HPACK integer of `value` with a `prefix`-bit prefix after the bits `first`.
fn hpack_int(value: usize, prefix: u32, first: u8) -> Vec<u8> {
    let max = (1usize << prefix) - 1;
    if value < max {
        return vec![first | value as u8];
    }
    let (mut out, mut rest) = (vec![first | max as u8], value - max);
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

/// A request head as big as HAProxy takes from a stream (its internal form: 15275 bytes
/// for this one, with `x-big` 15213 bytes long) is served; one byte more and the stream is
/// reset (PROTOCOL_ERROR) and logged as a bad request of status 0, as HAProxy does (hapx
/// answered a 400 page, and took 25 bytes more).
#[test]
fn oversized_heads_are_reset_at_haproxys_size() {
    let test = "h2_oversized_heads";
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let block = |size: usize| {
        let mut block = request_block(&[]);
        block.extend_from_slice(&[0, 5]);
        block.extend_from_slice(b"x-big");
        block.extend(hpack_int(size, 7, 0));
        block.extend(std::iter::repeat_n(b'a', size));
        block
    };
    let traffic = |front: SocketAddr| {
        let mut conn = TcpStream::connect(front).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        out.extend(headers_frame(1, &block(15214)));
        out.extend(headers_frame(3, &block(15213)));
        conn.write_all(&out).unwrap();
        let mut frames = Vec::new();
        while let Some((kind, flags, stream, payload)) = read_frame(&mut conn) {
            match kind {
                3 => frames.push(format!("{stream} reset {:?}", &payload[..4])),
                1 => frames.push(format!("{stream} headers")),
                _ => {}
            }
            if kind == 0 && flags & 1 == 1 {
                break;
            }
        }
        let mut lines: Vec<String> = (syslog.lines(2).iter())
            .map(|l| shape_keeping_bytes(l).chars().take(160).collect())
            .collect();
        lines.sort();
        (frames, lines, server.take().len())
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert_eq!(ours.0, ["1 reset [0, 0, 0, 1]", "3 headers"], "{ours:#?}");
    assert!(
        ours.1
            .iter()
            .any(|l| l.contains(" fe fe/<NOSRV> -N/-N/-N/-N/N N 0 - - PR-- ")),
        "{ours:#?}"
    );
    assert_eq!(ours.2, 1, "{ours:#?}");
    same_as_haproxy(&ours, theirs);
}

/// `OPTIONS *`: forwarded as `OPTIONS * HTTP/1.1`, logged with the authority and no path
/// (`OPTIONS http://127.0.0.1 HTTP/2.0`), as HAProxy logs it (hapx showed a stray `*`).
#[test]
fn options_asterisk_is_logged_like_haproxy() {
    let test = "h2_options_asterisk";
    let syslog = Syslog::bind();
    let server = Recorder::start();
    let front = local(free_port());
    let config = format!(
        "{}backend be\n  server s1 {}\n",
        http_config(syslog.addr, front, "", ""),
        server.addr
    );
    let traffic = |front: SocketAddr| {
        let mut conn = TcpStream::connect(front).expect("connecting");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        // `:method OPTIONS`, `:scheme http`, `:path *`, `:authority 127.0.0.1`.
        let mut block = vec![0x02, 7];
        block.extend_from_slice(b"OPTIONS");
        block.extend_from_slice(&[0x86, 0x04, 1, b'*', 0x41, 9]);
        block.extend_from_slice(b"127.0.0.1");
        out.extend(headers_frame(1, &block));
        conn.write_all(&out).unwrap();
        while let Some((kind, flags, _, _)) = read_frame(&mut conn) {
            if kind == 0 && flags & 1 == 1 {
                break;
            }
        }
        (server.take(), syslog.lines(1))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert!(
        ours.0[0].starts_with("OPTIONS * HTTP/1.1\r\nhost: 127.0.0.1\r\n"),
        "{ours:#?}"
    );
    assert!(
        ours.1[0].ends_with("\"OPTIONS http://127.0.0.1 HTTP/2.0\""),
        "{ours:#?}"
    );
    same_as_haproxy(
        &(ours.0, shaped(&ours.1)),
        theirs.map(|t| (t.0, shaped(&t.1))),
    );
}
