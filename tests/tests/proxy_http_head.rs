//! The bytes of each head through hapx-proxy and through HAProxy 2.6, side by side: what a
//! server receives for a request and what a client receives for a response, compared byte
//! for byte (nothing differs legitimately here: no Date, the same client address).
//!
//! A recording server answers each request with the case's fixed raw response (mixed-case
//! names, `Connection` headers, HTTP/1.0, interim responses, bodies of every framing); a raw
//! client sends the case's fixed bytes. For each case the test compares the request as the
//! server got it, the response as the client got it, whether the proxy then closed the client
//! connection and, when it kept it, whether it closed the server's. The cases run under each
//! HTTP connection mode (`http-keep-alive`, `httpclose`, `http-server-close`, backend-only
//! `httpclose`), with `option forwardfor`, and with `h1-case-adjust`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_rules::{HAPROXY, side_by_side};
use hapx_tests::{bins, require};

/// How long a proxy gets to close a connection it means to close, once its stream ended
/// (see [`stream_ended`]): the close is then on its way already.
const CLOSE_WAIT: Duration = Duration::from_millis(150);

/// A request sent as it is, and the raw response the server gives it.
struct Case {
    name: &'static str,
    request: &'static str,
    response: &'static str,
}

const OK_MIXED: &str =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Mixed-Case: A\r\nConnection: keep-alive\r\n\r\nok";

const fn case(name: &'static str, request: &'static str, response: &'static str) -> Case {
    Case {
        name,
        request,
        response,
    }
}

/// The requests every connection mode runs.
const REQUESTS: &[Case] = &[
    case(
        "get-1.1",
        "GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: T\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "close-1.1",
        "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "keep-alive-1.1",
        "GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "close-and-hop-header",
        "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\nX-Bar: 2\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "hop-header-and-keep-alive-1.0",
        "GET /a HTTP/1.0\r\nHost: x\r\nConnection: X-Foo,keep-alive\r\nX-Foo: 1\r\n\r\n",
        OK_MIXED,
    ),
    case("get-1.0", "GET /a HTTP/1.0\r\nHost: x\r\n\r\n", OK_MIXED),
    case(
        "keep-alive-1.0",
        "GET /a HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "connection-spacing",
        "GET /a HTTP/1.1\r\nHost: x\r\nConnection:\r\nConnection: a , close\r\nConnection: b ,c,\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "te-trailers",
        "GET /a HTTP/1.1\r\nHost: x\r\nTE: gzip, trailers\r\nConnection: TE\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "te-other",
        "GET /a HTTP/1.1\r\nHost: x\r\nTE: gzip\r\nX-Te: trailers\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "post-length",
        "POST /p HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        OK_MIXED,
    ),
    case(
        "post-chunked",
        "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "upgrade-1.0",
        "GET /a HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n",
        OK_MIXED,
    ),
];

/// Requests HAProxy's HTTP/1 layer rewrites or refuses itself (with its own raw messages).
const ODD_REQUESTS: &[Case] = &[
    case(
        "blanks-in-request-line",
        "GET\t/a  HTTP/1.1\r\nHost: x\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "same-host-twice",
        "GET /a HTTP/1.1\r\nHost: x\r\nHOST: X\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "other-host",
        "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "bad-header",
        "GET /a HTTP/1.1\r\nBad Header\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "get-1.0-with-body",
        "GET /a HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        OK_MIXED,
    ),
    case(
        "unknown-coding",
        "POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        OK_MIXED,
    ),
    case("slow-head", "GET /a HTTP/1.1\r\nHost", OK_MIXED),
];

/// Request targets checked against the `Host` header and normalized: an absolute URI whose
/// authority differs from `Host` (beyond the scheme's default port) is refused, a default
/// or empty port is dropped from the URI and every `Host`, CONNECT needs an authority with
/// a port that `Host` agrees with.
const TARGETS: &[Case] = &[
    case(
        "abs-host-differs",
        "GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "abs-same-host",
        "GET http://a.example/x HTTP/1.1\r\nHost: A.EXAMPLE\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "abs-default-port-both",
        "GET http://a.example:80/x HTTP/1.1\r\nHost: a.example:80\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "abs-default-port-in-host",
        "GET http://a.example/x HTTP/1.1\r\nHost: a.example:80\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "abs-https-port-on-http",
        "GET http://a.example:443/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "abs-empty-port-userinfo",
        "GET http://u@a.example:/x HTTP/1.0\r\nHost: a.example\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "abs-no-host",
        "GET HTTPS://A.example:443/x HTTP/1.1\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "authority-form-get",
        "GET a.example:80 HTTP/1.1\r\nHost: a.example\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "connect-path",
        "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "connect-no-port",
        "CONNECT a.example HTTP/1.1\r\n\r\n",
        OK_MIXED,
    ),
    case(
        "connect-host-differs",
        "CONNECT a.example:8443 HTTP/1.1\r\nHost: a.example\r\n\r\n",
        OK_MIXED,
    ),
];

/// The responses every connection mode runs (to a plain HTTP/1.1 GET, unless said).
const RESPONSES: &[Case] = &[
    case(
        "resp-close",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    ),
    case(
        "resp-1.0",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ),
    case(
        "resp-1.0-keep-alive",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nok",
    ),
    case(
        "resp-until-close",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil-close",
    ),
    case(
        "resp-1.0-until-close",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nuntil-close",
    ),
    case(
        "resp-chunked-to-1.0",
        "GET /r HTTP/1.0\r\nHost: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ),
    case(
        "resp-204",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
    case(
        "resp-304",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
    ),
    case(
        "resp-blanks-in-status-line",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1  200 \t Fine  ok\r\nContent-Length: 2\r\n\r\nok",
    ),
    case(
        "resp-no-reason",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
    ),
    case(
        "resp-odd-values",
        "GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 200 Very  Fine\r\nX-Empty:\r\nX-Sp:   a  b  \r\nContent-Length: 0\r\nTE: x, trailers\r\n\r\n",
    ),
    case(
        "resp-interim-to-1.0",
        "GET /r HTTP/1.0\r\nHost: x\r\n\r\n",
        "HTTP/1.1 100 Continue\r\nX-A: 1\r\nConnection: keep-alive\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ),
    case(
        "resp-head",
        "HEAD /r HTTP/1.1\r\nHost: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nContent-Type: text/plain\r\n\r\n",
    ),
    case(
        "resp-switch",
        "GET /r HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: foo\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\nraw",
    ),
];

/// What one case showed.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// The request bytes the server received (empty: none came).
    at_server: String,
    /// The response bytes the client received.
    at_client: String,
    client_closed: bool,
    /// With the client connection kept: whether the server connection was closed.
    server_closed: Option<bool>,
}

impl Seen {
    /// Whether `haproxy` saw the same: the same bytes both ways, the same client connection
    /// fate and, when hapx closed the server connection, HAProxy too. (HAProxy may close a
    /// server connection hapx keeps: beyond the connection mode, its pool of idle server
    /// connections closes those it estimates it will not need.)
    fn agrees_with(&self, haproxy: &Seen) -> bool {
        (&self.at_server, &self.at_client, self.client_closed)
            == (
                &haproxy.at_server,
                &haproxy.at_client,
                haproxy.client_closed,
            )
            && (self.server_closed != Some(true) || haproxy.server_closed == Some(true))
    }
}

/// Each request's bytes and the index of the server connection it came on.
type Requests = Mutex<Vec<(Vec<u8>, usize)>>;

/// A server answering each request with the current case's response, recording each request
/// as it came and which of its connections the proxy closed.
struct Recorder {
    addr: SocketAddr,
    response: Arc<Mutex<&'static str>>,
    seen: Arc<Requests>,
    /// Per connection: whether it ended on the server's side (the proxy closed it, or the
    /// server did after a response running until close), and a handle on its socket to ask
    /// the kernel whether the proxy closed it, whether or not the server's thread has run
    /// since.
    closed: Arc<Mutex<Vec<ServerSide>>>,
}

/// One server connection: whether it ended on the server's side, and a handle on it.
type ServerSide = (Arc<AtomicBool>, TcpStream);

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let response = Arc::new(Mutex::new(""));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed: Arc<Mutex<Vec<ServerSide>>> = Arc::default();
        let (r, s, c) = (response.clone(), seen.clone(), closed.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let flag = Arc::new(AtomicBool::new(false));
                let Ok(handle) = conn.try_clone() else {
                    continue;
                };
                let id = {
                    let mut all = c.lock().unwrap();
                    all.push((flag.clone(), handle));
                    all.len() - 1
                };
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || {
                    serve(conn, id, &r, &s);
                    flag.store(true, Ordering::SeqCst);
                });
            }
        });
        Recorder {
            addr,
            response,
            seen,
            closed,
        }
    }
}

/// Reads requests off `conn` until the proxy closes it; answers each with the current
/// response, then closes when that response runs until close.
fn serve(mut conn: TcpStream, id: usize, response: &Mutex<&'static str>, seen: &Requests) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_message(&mut conn, &mut buf, true, false) else {
            return;
        };
        seen.lock().unwrap().push((request, id));
        let answer = *response.lock().unwrap();
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
        if !answer.to_ascii_lowercase().contains("\r\ncontent-length:")
            && !answer
                .to_ascii_lowercase()
                .contains("\r\ntransfer-encoding:")
            && !answer.contains(" 204 ")
            && !answer.contains(" 101 ")
        {
            return;
        }
    }
}

/// One message from `conn` (bytes already read first, in `buf`): its head and its body by
/// the framing it announces. `bodyless`: a response that can have none (to HEAD); a
/// response without framing runs until the peer closes. None when the peer closed first.
fn read_message(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    request: bool,
    bodyless: bool,
) -> Option<Vec<u8>> {
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        fill(conn, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap_or_default().to_string();
    let header = |name: &str| {
        head.split("\r\n")
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let no_body =
        bodyless || (!request && (status.starts_with('1') || status == "204" || status == "304"));
    let end = if no_body {
        head_end
    } else if header("transfer-encoding:").is_some() {
        loop {
            if let Some(p) = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n") {
                break head_end + p + 5;
            }
            fill(conn, buf)?;
        }
    } else if let Some(len) = header("content-length:") {
        let end = head_end + len.parse::<usize>().ok()?;
        while buf.len() < end {
            fill(conn, buf)?;
        }
        end
    } else if request {
        head_end
    } else {
        // Until the proxy closes (or goes quiet: a kept connection would hang here).
        while fill(conn, buf).is_some() {}
        buf.len()
    };
    Some(buf.drain(..end).collect())
}

/// Appends what arrives; None at the end of the stream (or when nothing comes in time).
fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match conn.read(&mut chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// Whether the proxy closed (or reset) the connection `conn` is a handle on: the kernel's
/// answer to a peek that does not wait, whoever reads that connection.
fn peer_closed(conn: &TcpStream) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(conn.as_raw_fd(), &mut [0u8; 1], flags) {
        Ok(n) => n == 0,
        Err(e) => e != nix::errno::Errno::EAGAIN,
    }
}

/// Waits (5 s at most) until the proxy with the stats socket `sock` runs no stream of
/// frontend `fe`: the response's stream ended, and with it the proxy closed the client and
/// server connections it closes, or kept them idle (neither a stream in `show sess`).
fn stream_ended(sock: &Path) -> bool {
    wait_until(Duration::from_secs(5), || {
        !cli(sock, "show sess")
            .lines()
            .any(|l| l.contains(" fe=fe "))
    })
}

/// Runs `cases` one after the other through the proxy listening on `front`, its stats
/// socket at `sock`.
fn run(front: SocketAddr, sock: &Path, server: &Recorder, cases: &[&Case]) -> Vec<Seen> {
    cases
        .iter()
        .map(|case| {
            *server.response.lock().unwrap() = case.response;
            server.seen.lock().unwrap().clear();
            let mut conn = TcpStream::connect(front).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            conn.write_all(case.request.as_bytes()).unwrap();
            let head = case.request.starts_with("HEAD ");
            let mut buf = Vec::new();
            let mut at_client = Vec::new();
            // Interim responses first, then the final one.
            while let Some(message) = read_message(&mut conn, &mut buf, false, head) {
                let interim =
                    message.starts_with(b"HTTP/1.1 1") && !message.starts_with(b"HTTP/1.1 101");
                at_client.extend_from_slice(&message);
                if !interim {
                    break;
                }
            }
            // A switched protocol's tunnel is a stream that stays.
            if !case.response.contains(" 101 ") {
                assert!(stream_ended(sock), "case {}: its stream stayed", case.name);
            }
            conn.set_read_timeout(Some(CLOSE_WAIT)).unwrap();
            let mut chunk = [0u8; 4096];
            let closed = loop {
                match conn.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) => break false,
                }
            };
            // A switched protocol's first bytes, or anything sent after the response.
            at_client.append(&mut buf);
            let seen = std::mem::take(&mut *server.seen.lock().unwrap());
            let server_closed = (!closed).then(|| {
                seen.last().is_some_and(|(_, id)| {
                    let (ended, handle) = &server.closed.lock().unwrap()[*id];
                    ended.load(Ordering::SeqCst) || peer_closed(handle)
                })
            });
            let at_server = seen
                .iter()
                .map(|(r, _)| String::from_utf8_lossy(r))
                .collect();
            Seen {
                at_server,
                at_client: String::from_utf8_lossy(&at_client).into_owned(),
                client_closed: closed,
                server_closed,
            }
        })
        .collect()
}

/// Runs `cases` through hapx-proxy and HAProxy on a configuration made of `global`,
/// frontend lines `fe` and backend lines `be`; asserts they saw the same bytes; hapx's side.
/// The two proxies run at the same time, each with its own server, port and stats socket:
/// the cases run one after the other through each (a server connection kept idle by one
/// case is the next one's), and neither waits for the other's.
fn compare(test: &str, global: &str, fe: &str, be: &str, cases: &[&Case]) -> Vec<Seen> {
    let dir = temp_dir(test);
    let observe = |binary: PathBuf, name: &str| {
        let server = Recorder::start();
        let port = free_port();
        let sock = dir.join(format!("{name}.sock"));
        let config = config(&sock, server.addr, port, (global, fe, be));
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let _proxy = Proxy::start_with(binary, &dir, name, &config, front, &[]);
        run(front, &sock, &server, cases)
    };
    let (ours, theirs) = std::thread::scope(|scope| {
        let ours = scope.spawn(|| observe(bins::path("hapx-proxy"), "hapx"));
        let theirs = require::path(test, Path::new(HAPROXY), "HAProxy")
            .then(|| scope.spawn(|| observe(HAPROXY.into(), "haproxy")));
        let joined = |run: std::thread::ScopedJoinHandle<'_, Vec<Seen>>| {
            run.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (joined(ours), theirs.map(joined))
    });
    if let Some(theirs) = theirs {
        for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
            assert!(
                ours.agrees_with(theirs),
                "{test}: case {}\nhapx-proxy: {ours:?}\nHAProxy:    {theirs:?}",
                case.name
            );
        }
    }
    ours
}

/// The configuration of [`compare`]: `global`, frontend lines `fe` and backend lines `be`,
/// the frontend on `port`, the backend's server at `server`, a stats socket at `sock`.
fn config(
    sock: &Path,
    server: SocketAddr,
    port: u16,
    (global, fe, be): (&str, &str, &str),
) -> String {
    // `timeout http-keep-alive`: a kept connection is not closed by its idle timeout
    // (else `timeout http-request`) while a loaded machine's test looks at it. Whether an
    // idle server connection stays depends on the thread its request ran on (each keeps its
    // first) and on the estimate of the need the purge task moves every `pool-purge-delay`:
    // one thread, and no purge during the test, make it depend on the cases alone.
    format!(
        "global\n  nbthread 1\n  stats socket {} level admin\n{global}defaults\n  mode http\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n  timeout http-request 500ms\n  timeout http-keep-alive 10s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n{fe}\
         backend be\n{be}  server s {server} pool-purge-delay 1h\n",
        sock.display(),
    )
}

fn all_cases() -> Vec<&'static Case> {
    REQUESTS
        .iter()
        .chain(ODD_REQUESTS)
        .chain(RESPONSES)
        .collect()
}

fn seen<'a>(cases: &[&Case], results: &'a [Seen], name: &str) -> &'a Seen {
    let at = cases.iter().position(|c| c.name == name).unwrap();
    &results[at]
}

#[test]
fn keep_alive_heads_match_haproxy() {
    let cases = all_cases();
    let ours = compare("head-keep-alive", "", "", "", &cases);
    // HAProxy's answers, checked on hapx's side even where HAProxy is not installed.
    let close = seen(&cases, &ours, "close-and-hop-header");
    assert_eq!(
        close.at_server,
        "GET /a HTTP/1.1\r\nhost: x\r\nconnection: X-Foo\r\nx-foo: 1\r\nx-bar: 2\r\n\r\n"
    );
    assert!(
        close.at_client.contains("\r\nconnection: close\r\n"),
        "{close:?}"
    );
    assert!(close.client_closed);
    let old = seen(&cases, &ours, "get-1.0");
    assert_eq!(
        old.at_server,
        "GET /a HTTP/1.0\r\nhost: x\r\nconnection: keep-alive\r\n\r\n"
    );
    // The HTTP/1 layer's own refusal, as HAProxy's source writes it.
    let bad = seen(&cases, &ours, "bad-header");
    assert!(
        bad.at_client.starts_with(
            "HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\n"
        ),
        "{bad:?}"
    );
    assert_eq!((bad.at_server.as_str(), bad.client_closed), ("", true));
    let kept = seen(&cases, &ours, "keep-alive-1.0");
    assert_eq!(
        kept.at_client,
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-mixed-case: A\r\nconnection: keep-alive\r\n\r\nok"
    );
    // The server connection goes to the server's pool of idle connections after the
    // response, which already holds what HAProxy keeps (one per thread, as the earlier cases
    // left it): HAProxy closes it, as hapx does.
    assert_eq!(
        (kept.client_closed, kept.server_closed),
        (false, Some(true))
    );
}

/// Request targets through both proxies: the same refusals, the same normalized request at
/// the server.
#[test]
fn request_targets_are_checked_like_haproxy() {
    let cases: Vec<&Case> = TARGETS.iter().collect();
    let ours = compare("head-targets", "", "", "", &cases);
    let status = |name| {
        seen(&cases, &ours, name)
            .at_client
            .lines()
            .next()
            .unwrap_or_default()
    };
    for refused in [
        "abs-host-differs",
        "abs-https-port-on-http",
        "authority-form-get",
        "connect-path",
        "connect-no-port",
        "connect-host-differs",
    ] {
        assert_eq!(status(refused), "HTTP/1.1 400 Bad request", "{refused}");
        assert!(
            seen(&cases, &ours, refused).at_server.is_empty(),
            "{refused}"
        );
    }
    let at_server = |name| seen(&cases, &ours, name).at_server.clone();
    assert!(
        at_server("abs-default-port-both")
            .starts_with("GET http://a.example/x HTTP/1.1\r\nhost: a.example\r\n")
    );
    assert!(at_server("abs-default-port-in-host").contains("host: a.example:80\r\n"));
    assert!(
        at_server("abs-empty-port-userinfo")
            .starts_with("GET http://u@a.example/x HTTP/1.0\r\nhost: a.example\r\n")
    );
    assert!(at_server("abs-no-host").starts_with("GET HTTPS://A.example/x HTTP/1.1\r\n"));
}

#[test]
fn httpclose_heads_match_haproxy() {
    let cases = all_cases();
    let ours = compare("head-httpclose", "", "  option httpclose\n", "", &cases);
    let get = seen(&cases, &ours, "get-1.1");
    assert!(
        get.at_server.ends_with("connection: close\r\n\r\n"),
        "{get:?}"
    );
    assert!(get.client_closed);
}

#[test]
fn http_server_close_heads_match_haproxy() {
    let cases = all_cases();
    let ours = compare(
        "head-server-close",
        "",
        "  option http-server-close\n",
        "",
        &cases,
    );
    let get = seen(&cases, &ours, "get-1.1");
    assert!(
        get.at_server.ends_with("connection: close\r\n\r\n"),
        "{get:?}"
    );
    assert_eq!((get.client_closed, get.server_closed), (false, Some(true)));
}

#[test]
fn backend_httpclose_closes_the_server_side_only() {
    let cases: Vec<&Case> = REQUESTS.iter().take(7).collect();
    let ours = compare("head-be-httpclose", "", "", "  option httpclose\n", &cases);
    let get = seen(&cases, &ours, "get-1.1");
    assert_eq!((get.client_closed, get.server_closed), (false, Some(true)));
}

#[test]
fn added_headers_come_last_in_haproxy_order() {
    let cases: Vec<&Case> = REQUESTS.iter().take(7).collect();
    let fe = "  option forwardfor\n  http-request set-header X-Set Yes\n";
    let ours = compare(
        "head-forwardfor",
        "",
        fe,
        "  option forwardfor header X-Client-IP\n",
        &cases,
    );
    let old = seen(&cases, &ours, "get-1.0");
    assert_eq!(
        old.at_server,
        "GET /a HTTP/1.0\r\nhost: x\r\nx-set: Yes\r\nx-client-ip: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn case_adjusted_names_match_haproxy() {
    let dir = temp_dir("head-case-file");
    let file = dir.join("names");
    std::fs::write(
        &file,
        "# header names as old peers want them\n\n  x-forwarded-for   X-Forwarded-For  \nhost HOST\nconnection Connection\ncontent-length Content-Length\nx-mixed-case X-MIXED-case\n",
    )
    .unwrap();
    // (A FROM not in lower case never matches, in HAProxy as in hapx.)
    let global = format!(
        "  h1-case-adjust-file {}\n  h1-case-adjust te TE\n  h1-case-adjust Content-Type Content-Type\n",
        file.display()
    );
    let cases = all_cases();
    let fe = "  option forwardfor\n  option h1-case-adjust-bogus-client\n";
    let ours = compare(
        "head-case",
        &global,
        fe,
        "  option h1-case-adjust-bogus-server\n",
        &cases,
    );
    let old = seen(&cases, &ours, "get-1.0");
    assert_eq!(
        old.at_server,
        "GET /a HTTP/1.0\r\nHOST: x\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    );
    assert!(
        old.at_client.starts_with(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-MIXED-case: A\r\nConnection: close\r\n"
        ),
        "{old:?}"
    );
    // The options on the other side's proxy do nothing: names stay lower case.
    let ours = compare(
        "head-case-swapped",
        &global,
        "  option h1-case-adjust-bogus-server\n",
        "  option h1-case-adjust-bogus-client\n",
        &cases[..7],
    );
    assert!(
        ours[0]
            .at_server
            .starts_with("GET /a HTTP/1.1\r\nhost: x\r\n"),
        "{:?}",
        ours[0]
    );
}

/// `hapx-proxy -c` and `haproxy -c` on `config`: their exit codes, and hapx's messages.
fn check_both(dir: &std::path::Path, name: &str, config: &str) -> (i32, Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, config).unwrap();
    let run = |binary: &std::path::Path| {
        std::process::Command::new(binary)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("running the checker")
    };
    let ours = run(&hapx_tests::bins::path("hapx-proxy"));
    let haproxy = std::path::Path::new(hapx_tests::proxy_rules::HAPROXY);
    let theirs =
        hapx_tests::require::path("case_adjust_is_checked_like_haproxy", haproxy, "HAProxy")
            .then(|| run(haproxy).status.code().unwrap_or(-1));
    let stderr = String::from_utf8_lossy(&ours.stderr).into_owned();
    (ours.status.code().unwrap_or(-1), theirs, stderr)
}

#[test]
fn case_adjust_is_checked_like_haproxy() {
    let dir = temp_dir("head-case-check");
    let names = dir.join("names");
    std::fs::write(&names, "# ok\nhost Host\n\nbad\n").unwrap();
    let proxies = "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                   frontend fe\n  bind 127.0.0.1:8080\n  option h1-case-adjust-bogus-client\n  default_backend be\n\
                   backend be\n  option h1-case-adjust-bogus-server\n  server s 127.0.0.1:1\n";
    let bad_file = names.display().to_string();
    let missing = dir.join("missing").display().to_string();
    for (global, fails, message) in [
        ("h1-case-adjust content-length Content-Length", false, ""),
        (
            "h1-case-adjust content-length Content-Lengthx",
            true,
            "must not differ",
        ),
        (
            "h1-case-adjust content-length",
            true,
            "expects <from> and <to>",
        ),
        (
            "h1-case-adjust host Host\n  h1-case-adjust host HOST",
            true,
            "duplicate entry 'host'",
        ),
        ("h1-case-adjust-file", true, "expects <file>"),
        (
            &format!("h1-case-adjust-file {bad_file}"),
            true,
            "expect <to> at line 4",
        ),
        (
            &format!("h1-case-adjust-file {missing}"),
            true,
            "failed to open file",
        ),
    ] {
        let config = format!("global\n  {global}\n{proxies}");
        let (ours, theirs, stderr) = check_both(&dir, "case.cfg", &config);
        assert_eq!(ours != 0, fails, "{global}: {stderr}");
        assert!(stderr.contains(message), "{global}: {stderr}");
        // The error names the (last) line of the entry.
        let line = 1 + global.lines().count();
        if fails {
            assert!(
                stderr.contains(&format!("case.cfg:{line}]")),
                "{global}: {stderr}"
            );
        }
        if let Some(theirs) = theirs {
            assert_eq!(ours == 0, theirs == 0, "{global}: HAProxy exited {theirs}");
        }
    }
}

/// Requests whose header values hold bytes that are not UTF-8, control characters, folded
/// lines, and a few HAProxy refuses (a byte past ASCII in a name or the URI, a CR alone).
const BYTE_REQUESTS: &[(&str, &[u8])] = &[
    (
        "latin-1",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: caf\xe9 ok\r\n\r\n",
    ),
    (
        "utf-8",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: caf\xc3\xa9\r\n\r\n",
    ),
    ("ff", b"GET /a HTTP/1.1\r\nhost: h\r\nx: a\xffb\x80\r\n\r\n"),
    (
        "controls",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: a\x01b\x7fc\x1b\r\n\r\n",
    ),
    ("nul", b"GET /a HTTP/1.1\r\nhost: h\r\nx: a\x00b\r\n\r\n"),
    (
        "blanks",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: \x0ca\tb\xc2\xa0\r\n\r\n",
    ),
    (
        "folded",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: a\r\n\tb\r\n  c\r\n\r\n",
    ),
    (
        "framing",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: a\"b#c{d|e}f\\g\r\n\r\n",
    ),
    (
        "reserved",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx: \xf4\x8f\xbf\xa9\r\n\r\n",
    ),
    (
        "bad-name",
        b"GET /a HTTP/1.1\r\nhost: h\r\nx\xe9: a\r\n\r\n",
    ),
    ("bad-uri", b"GET /caf\xe9 HTTP/1.1\r\nhost: h\r\n\r\n"),
    ("utf-8-uri", b"GET /caf\xc3\xa9 HTTP/1.1\r\nhost: h\r\n\r\n"),
    ("lone-cr", b"GET /a HTTP/1.1\r\nhost: h\r\nx: a\rb\r\n\r\n"),
    (
        "folded-first",
        b"GET /a HTTP/1.1\r\n x: a\r\nhost: h\r\n\r\n",
    ),
];

/// What one byte request came to: the status line the client got, the lines the server got
/// for the headers named `x` to `z`, and the log line.
type ByteSeen = (Vec<u8>, Vec<Vec<u8>>, Vec<u8>);

/// HAProxy's strings are bytes: a header value with any byte but CR and LF is accepted and
/// forwarded as it came, copied into another header, converted (`regsub` writing a `\xHH`
/// byte, `lower`, `length` in bytes), matched by an ACL written with `\xHH`, and captured
/// into the log (`#XX` for what is not printable ASCII). hapx, byte for byte as HAProxy.
#[test]
fn header_bytes_pass_through_like_haproxy() {
    let test = "header_bytes_pass_through_like_haproxy";
    let server = Recorder::start();
    *server.response.lock().unwrap() = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let syslog = hapx_tests::proxy_rules::Syslog::bind();
    let port = free_port();
    let config = format!(
        "global\n  log {} local0\ndefaults\n  mode http\n  log global\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  capture request header x len 40\n  log-format \"LOG %hr\"\n\
         \x20 http-request set-header y %[req.hdr(x)]\n\
         \x20 http-request set-header y-sub %[req.hdr(x),regsub(a,\\xe9),lower]\n\
         \x20 http-request set-header y-len %[req.hdr(x),length]\n\
         \x20 http-request set-header y-field %[req.hdr(x),field(2,\\xe9)]\n\
         \x20 http-request set-header z yes if {{ req.hdr(x) -m sub \\xe9 }}\n\
         \x20 http-request set-header z-len yes if {{ req.hdr(x) -m len 7 }}\n\
         \x20 default_backend be\nbackend be\n  server s {}\n",
        syslog.addr, server.addr
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let run = |front: SocketAddr| -> Vec<ByteSeen> {
        BYTE_REQUESTS
            .iter()
            .map(|(_, request)| {
                server.seen.lock().unwrap().clear();
                let mut conn = TcpStream::connect(front).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                conn.write_all(request).unwrap();
                let mut buf = Vec::new();
                let response = read_message(&mut conn, &mut buf, false, false).unwrap_or_default();
                let status = response.split(|&b| b == b'\r').next().unwrap_or_default();
                let seen = std::mem::take(&mut *server.seen.lock().unwrap());
                let forwarded = seen
                    .first()
                    .map(|(r, _)| {
                        r.split(|&b| b == b'\n')
                            .filter(|l| matches!(l.first(), Some(b'x' | b'y' | b'z')))
                            .map(<[u8]>::to_vec)
                            .collect()
                    })
                    .unwrap_or_default();
                let log = syslog.messages(1).pop().unwrap_or_default();
                (status.to_vec(), forwarded, log)
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, front, run);
    let at = |name: &str| BYTE_REQUESTS.iter().position(|(n, _)| *n == name).unwrap();
    let latin1 = &ours[at("latin-1")];
    assert_eq!(latin1.0, b"HTTP/1.1 200 OK");
    assert_eq!(
        latin1.1,
        [
            &b"x: caf\xe9 ok\r"[..],
            b"y: caf\xe9 ok\r",
            b"y-sub: c\xe9f\xe9 ok\r",
            b"y-len: 7\r",
            b"y-field:  ok\r",
            b"z: yes\r",
            b"z-len: yes\r",
        ]
    );
    assert_eq!(latin1.2, b"LOG {caf#E9 ok}");
    assert_eq!(ours[at("bad-uri")].0, b"HTTP/1.1 400 Bad request");
    if let Some(theirs) = theirs {
        for ((name, _), (ours, theirs)) in BYTE_REQUESTS.iter().zip(ours.iter().zip(&theirs)) {
            let show = |s: &ByteSeen| {
                let lines: Vec<String> = s.1.iter().map(|l| l.escape_ascii().to_string()).collect();
                format!("{} {lines:?} {}", s.0.escape_ascii(), s.2.escape_ascii())
            };
            assert_eq!(
                ours,
                theirs,
                "{name}:\nhapx-proxy: {}\nHAProxy:    {}",
                show(ours),
                show(theirs)
            );
        }
    }
}

/// Bytes written in the configuration file are the bytes sent: a latin-1 byte (not UTF-8)
/// and a character of the range hapx uses to carry raw bytes (U+10FF0D, written as its four
/// UTF-8 bytes) go to the server as written, as do the same bytes written as `\xHH`
/// escapes; a latin-1 ACL pattern file matches the latin-1 header value it holds. HAProxy,
/// side by side.
#[test]
fn configuration_bytes_reach_the_server_as_written() {
    let test = "configuration_bytes_reach_the_server_as_written";
    let server = Recorder::start();
    *server.response.lock().unwrap() = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let dir = temp_dir(test);
    let port = free_port();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let main = format!(
        "defaults\n  mode http\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         backend be\n  server s {}\n",
        server.addr
    );
    // The frontend, in a second file: its bytes are not all UTF-8.
    let mut bytes =
        format!("frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n").into_bytes();
    bytes.extend_from_slice(b"  http-request set-header x-latin caf\xe9\n");
    bytes.extend_from_slice(b"  http-request set-header x-reserved a\xf4\x8f\xbc\x8db\n");
    bytes.extend_from_slice(b"  http-request set-header x-escaped a\\xf4\\x8f\\xbc\\x8db\\xe9\n");
    let patterns = dir.join("latin1.lst");
    std::fs::write(&patterns, b"# latin-1\ncaf\xe9\n").unwrap();
    bytes.extend_from_slice(
        format!(
            "  http-request set-header x-listed yes if {{ req.hdr(x-in) -f {} }}\n",
            patterns.display()
        )
        .as_bytes(),
    );
    let frontend = dir.join("frontend.cfg");
    std::fs::write(&frontend, &bytes).unwrap();
    let extra = ["-f".to_string(), frontend.display().to_string()];
    let run = |binary: std::path::PathBuf, name: &str| -> Vec<Vec<u8>> {
        let _proxy = Proxy::start_with(binary, &dir, name, &main, front, &extra);
        server.seen.lock().unwrap().clear();
        let mut conn = TcpStream::connect(front).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nhost: h\r\nx-in: caf\xe9\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let _ = read_message(&mut conn, &mut buf, false, false);
        let seen = std::mem::take(&mut *server.seen.lock().unwrap());
        seen.first()
            .map(|(r, _)| {
                r.split(|&b| b == b'\n')
                    .filter(|l| l.starts_with(b"x-") && !l.starts_with(b"x-in"))
                    .map(<[u8]>::to_vec)
                    .collect()
            })
            .unwrap_or_default()
    };
    let ours = run(hapx_tests::bins::path("hapx-proxy"), "hapx");
    assert_eq!(
        ours,
        [
            &b"x-latin: caf\xe9\r"[..],
            b"x-reserved: a\xf4\x8f\xbc\x8db\r",
            b"x-escaped: a\xf4\x8f\xbc\x8db\xe9\r",
            b"x-listed: yes\r",
        ]
    );
    if hapx_tests::require::path(
        test,
        std::path::Path::new(hapx_tests::proxy_rules::HAPROXY),
        "HAProxy",
    ) {
        let theirs = run(
            std::path::PathBuf::from(hapx_tests::proxy_rules::HAPROXY),
            "haproxy",
        );
        let show = |s: &[Vec<u8>]| {
            s.iter()
                .map(|l| l.escape_ascii().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&ours), show(&theirs), "hapx-proxy, then HAProxy");
    }
}
