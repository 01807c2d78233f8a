//! HTTP mode through a real hapx-proxy: keep-alive, X-Forwarded-For, 400 on malformed
//! requests, 408 for clients too slow to send a request (and, as HAProxy, for connections
//! that send none, unless `option http-ignore-probes`), 503 with an errorfile, 502 from a
//! broken server, 504 once from a silent one.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{HttpServer, Proxy, free_port, http_raw, temp_dir};
use hapx_tests::proxy_rules::binaries;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn start(test: &str, servers: &str, extra: &str) -> (Proxy, SocketAddr) {
    start_binary(&hapx_tests::bins::path("hapx-proxy"), test, servers, extra)
}

/// The same configuration run by `binary` (hapx-proxy or HAProxy).
fn start_binary(
    binary: &std::path::Path,
    test: &str,
    servers: &str,
    extra: &str,
) -> (Proxy, SocketAddr) {
    let dir = temp_dir(test);
    let port = free_port();
    let page = dir.join("503.http");
    std::fs::write(
        &page,
        "HTTP/1.0 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\nhapx test page\n",
    )
    .unwrap();
    let cfg = format!(
        "defaults\n  mode http\n  option httplog\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n  timeout http-request 500ms\n\
         errorfile 503 {}\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  option forwardfor\n  default_backend be\n{extra}\
         backend be\n{servers}",
        page.display()
    );
    let addr = SocketAddr::from((LO, port));
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, test, &cfg, addr, &[]);
    (proxy, addr)
}

/// Reads one response with a Content-Length body from a kept-alive connection.
fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed mid-head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn keep_alive_and_forwardfor() {
    let srv = HttpServer::start("web1");
    let (_p, addr) = start("http-ka", &format!("  server web1 {}\n", srv.addr), "");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..5 {
        let body = "x".repeat(i * 10);
        write!(
            s,
            "POST /p{i} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let (head, body) = read_response(&mut s);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("x-seen-xff: 127.0.0.1"), "{head}");
        assert_eq!(body, "web1");
    }
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_eq!(
        srv.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one server connection for the kept-alive client"
    );
}

#[test]
fn malformed_requests_get_400() {
    let srv = HttpServer::start("web1");
    let (_p, addr) = start("http-400", &format!("  server web1 {}\n", srv.addr), "");
    for bad in [
        &b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"[..],
        b"NOT A REQUEST\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        // A folded line continues a header (HAProxy joins it), not the start line.
        b"GET / HTTP/1.1\r\n folded: a\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\n\r\n",
        b"GET /caf\xe9 HTTP/1.1\r\n\r\n",
    ] {
        let resp = http_raw(addr, bad, Duration::from_secs(5));
        assert!(
            resp.starts_with("HTTP/1.1 400"),
            "{:?} -> {resp}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn slow_clients_hit_the_request_timeout() {
    let srv = HttpServer::start("web1");
    let server = format!("  server web1 {}\n", srv.addr);
    let mut answers = Vec::new();
    for (_, binary) in binaries("slow_clients_hit_the_request_timeout") {
        let (_p, addr) = start_binary(&binary, "http-408", &server, "");
        let started = Instant::now();
        let partial = http_raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: slow",
            Duration::from_secs(5),
        );
        assert!(partial.starts_with("HTTP/1.1 408"), "{binary:?}: {partial}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // A connection that never sends a request gets the same 408 (HAProxy's default)...
        let idle = http_raw(addr, b"", Duration::from_secs(5));
        // ... unless probes are ignored (browsers' pre-connects): then it just closes.
        let probes = "  option http-ignore-probes\n";
        let (_q, quiet) = start_binary(&binary, "http-408-probes", &server, probes);
        let ignored = http_raw(quiet, b"", Duration::from_secs(5));
        answers.push((partial, idle, ignored));
    }
    let (partial, idle, ignored) = &answers[0];
    assert_eq!(idle, partial);
    assert_eq!(ignored, "");
    if let Some(theirs) = answers.get(1) {
        assert_eq!(&answers[0], theirs, "hapx-proxy (left) and HAProxy (right)");
    }
    assert_eq!(srv.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A server that accepts and never answers: a 504 once `timeout server` passes, after one
/// attempt only (the request reached the server, which may act on it: no second copy).
#[test]
fn a_silent_server_gets_a_504_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server_addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(conn);
        }
    });
    let server = format!("  server s {server_addr}\n");
    let mut answers = Vec::new();
    for (_, binary) in binaries("a_silent_server_gets_a_504_once") {
        let (_p, addr) = start_binary(&binary, "http-504", &server, "");
        let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
        let started = Instant::now();
        let answer = http_raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Duration::from_secs(9),
        );
        let took = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 504"), "{binary:?}: {answer}");
        // `timeout server 2s`, once: not twice (twice would take 4 s at the least; the
        // margin is the whole second timeout, so a busy machine does not trip it).
        assert!(took < Duration::from_secs(4), "{binary:?}: {took:?}");
        let attempts = accepted.load(std::sync::atomic::Ordering::SeqCst) - before;
        answers.push((answer, attempts));
    }
    assert_eq!(answers[0].1, 1);
    if let Some(theirs) = answers.get(1) {
        assert_eq!(&answers[0], theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

#[test]
fn no_server_uses_the_errorfile_and_broken_servers_give_502() {
    let dead = free_port();
    let (_p, addr) = start(
        "http-503",
        &format!("  retries 0\n  server dead 127.0.0.1:{dead}\n"),
        "",
    );
    let resp = http_raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(
        resp.starts_with("HTTP/1.0 503") && resp.contains("hapx test page"),
        "{resp}"
    );

    let broken = TcpListener::bind("127.0.0.1:0").unwrap();
    let broken_addr = broken.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in broken.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"garbage\r\n\r\n");
        }
    });
    let (_p2, addr) = start("http-502", &format!("  server broken {broken_addr}\n"), "");
    let resp = http_raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
}

#[test]
fn accept_proxy_takes_the_client_from_the_header() {
    let srv = HttpServer::start("web1");
    let dir = temp_dir("accept-proxy");
    let (back_port, front_port) = (free_port(), free_port());
    let back = format!(
        "defaults\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend back\n  mode http\n  bind 127.0.0.1:{back_port} accept-proxy\n  option forwardfor\n  default_backend be\n\
         backend be\n  mode http\n  server web1 {}\n",
        srv.addr
    );
    let back_addr = SocketAddr::from((LO, back_port));
    let _b = Proxy::start(&dir, "back", &back, back_addr);
    // A PROXY v1 header names a client the connection does not come from.
    let resp = http_raw(
        back_addr,
        b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(resp.contains("x-seen-xff: 192.0.2.7"), "{resp}");
    // Without a header the connection gets nothing.
    let resp = http_raw(
        back_addr,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(resp, "");
    // A hapx front proxy with send-proxy-v2 in front of it: the real client (loopback) arrives.
    let front = format!(
        "defaults\n  mode tcp\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend front\n  bind 127.0.0.1:{front_port}\n  default_backend be\n\
         backend be\n  server back 127.0.0.1:{back_port} send-proxy-v2\n"
    );
    let front_addr = SocketAddr::from((LO, front_port));
    let _f = Proxy::start(&dir, "front", &front, front_addr);
    let resp = http_raw(
        front_addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains("x-seen-xff: 127.0.0.1"),
        "{resp}"
    );
    // The same from an HTTP-mode front proxy with send-proxy (v1), keep-alive on its side:
    // the header opens the server connection once, before the first request.
    let http_port = free_port();
    let http_front = format!(
        "defaults\n  mode http\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend front\n  bind 127.0.0.1:{http_port}\n  default_backend be\n\
         backend be\n  server back 127.0.0.1:{back_port} send-proxy\n"
    );
    let http_addr = SocketAddr::from((LO, http_port));
    let _h = Proxy::start(&dir, "http-front", &http_front, http_addr);
    let resp = http_raw(
        http_addr,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(resp.matches("HTTP/1.1 200").count(), 2, "{resp}");
    assert_eq!(resp.matches("x-seen-xff: 127.0.0.1").count(), 2, "{resp}");
}

/// A server recording each request exactly as it arrives (head and body bytes), answering
/// `200 ok` on a kept-alive connection. It reads bodies by the framing it receives, as a
/// real server would: whatever a proxy forwards is what the server acts on.
struct WireServer {
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl WireServer {
    fn start() -> WireServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut writer = conn.try_clone().unwrap();
                    let mut reader = std::io::BufReader::new(conn);
                    while let Some(raw) = read_framed(&mut reader) {
                        record.lock().unwrap().push(raw);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if writer.write_all(ok).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WireServer { addr, seen }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One request off the wire, with header names lowercased (HAProxy lowercases them).
fn read_framed(r: &mut impl std::io::BufRead) -> Option<String> {
    let line = |r: &mut dyn std::io::BufRead| {
        let mut l = String::new();
        (r.read_line(&mut l).ok()? > 0).then_some(l)
    };
    let mut raw = line(r)?;
    let (mut chunked, mut length) = (false, 0usize);
    loop {
        let h = line(r)?;
        if h == "\r\n" {
            raw.push_str(&h);
            break;
        }
        let (n, v) = h.split_once(':')?;
        let n = n.to_ascii_lowercase();
        chunked |= n == "transfer-encoding" && v.trim().eq_ignore_ascii_case("chunked");
        if n == "content-length" {
            length = v.trim().parse().ok()?;
        }
        raw.push_str(&format!("{n}:{v}"));
    }
    if chunked {
        loop {
            let size_line = line(r)?;
            raw.push_str(&size_line);
            let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
            if size == 0 {
                raw.push_str(&line(r)?);
                return Some(raw);
            }
            let mut data = vec![0u8; size + 2];
            r.read_exact(&mut data).ok()?;
            raw.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).ok()?;
    raw.push_str(&String::from_utf8_lossy(&body));
    Some(raw)
}

/// Sends one request on a new connection: the response's status, whether the response said
/// `connection: close`, and whether the proxy then closed the connection.
fn exchange_once(addr: SocketAddr, request: &[u8]) -> (u16, bool, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let (head, _) = read_response(&mut s);
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let says_close = head
        .to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let closed = matches!(s.read(&mut [0u8; 64]), Ok(0));
    (status, says_close, closed)
}

/// Requests whose framing is ambiguous or unsupported (RFC 9112 section 6.3): what the
/// server receives and what the client gets, through hapx-proxy and through HAProxy 2.6.
const SMUGGLING: &[&str] = &[
    "POST /te-cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /cl-te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /te-case HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /cl-twice HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "POST /cl-list HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
    "POST /cl-conflict HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "POST /te-cl-conflict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /cl-sign HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    "POST /te-gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    "POST /te-gzip-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /te-chunked-gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /te-twice HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /te-identity HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
    // Chunk framing itself: no CRLF after the data, a signed or blank-padded size, a size
    // that overflows, a trailer that is no header field.
    "POST /chunk-no-crlf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
    "POST /chunk-plus HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
    "POST /chunk-blank HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3 \r\nabc\r\n0\r\n\r\n",
    "POST /chunk-huge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nX\r\n0\r\n\r\n",
    "POST /chunk-2p52 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000\r\nX\r\n0\r\n\r\n",
    "POST /chunk-trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
];

/// `option forwardfor` (in [`start`]'s configuration) adds this last.
const XFF: &str = "x-forwarded-for: 127.0.0.1\r\n";

fn smuggling_run(addr: SocketAddr, srv: &WireServer) -> Vec<(u16, bool, bool, Vec<String>)> {
    SMUGGLING
        .iter()
        .map(|req| {
            let (status, says_close, closed) = exchange_once(addr, req.as_bytes());
            std::thread::sleep(Duration::from_millis(50));
            // Error pages differ in their headers (HAProxy's own 422 has no `connection`);
            // `closed` tells what the proxy did.
            (status, says_close && status < 400, closed, srv.take())
        })
        .collect()
}

/// A kept-alive connection's idle timeout well past [`exchange_once`]'s look for a close:
/// only a close the proxy chose shows there, not its keep-alive timeout on a loaded host.
const LONG_KEEP_ALIVE: &str = "  timeout http-keep-alive 5s\n";

#[test]
fn ambiguous_framing_is_never_forwarded() {
    let srv = WireServer::start();
    let (_p, addr) = start(
        "http-smuggle",
        &format!("  server s {}\n", srv.addr),
        LONG_KEEP_ALIVE,
    );
    let got = smuggling_run(addr, &srv);
    let chunked_abc = "3\r\nabc\r\n0\r\n\r\n";
    for (req, (status, says_close, closed, seen)) in SMUGGLING.iter().zip(&got) {
        let path = req.split(' ').nth(1).unwrap();
        match path {
            // Transfer-Encoding wins; the length is gone; the connection closes afterwards.
            "/te-cl" | "/cl-te" => {
                assert_eq!((*status, *says_close, *closed), (200, true, true), "{path}");
                let want = format!(
                    "POST {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{XFF}\r\n{chunked_abc}"
                );
                assert_eq!(seen, &[want], "{path}");
            }
            "/te-case" => {
                assert_eq!((*status, *closed), (200, false), "{path}");
                assert!(seen[0].ends_with(chunked_abc), "{seen:?}");
            }
            "/cl-twice" | "/cl-list" => {
                assert_eq!((*status, *closed), (200, false), "{path}");
                let want =
                    format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n{XFF}\r\nabc");
                assert_eq!(seen, &[want], "{path}");
            }
            "/te-gzip-chunked" => {
                assert_eq!((*status, *closed, seen.len()), (422, true, 0), "{path}");
            }
            _ => assert_eq!((*status, *closed, seen.len()), (400, true, 0), "{path}"),
        }
    }
    // HAProxy 2.6 on the same configuration: the same answers and the same bytes on the wire.
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !hapx_tests::require::path("ambiguous_framing_is_never_forwarded", haproxy, "HAProxy") {
        return;
    }
    let (_h, haddr) = start_binary(
        haproxy,
        "http-smuggle-haproxy",
        &format!("  server s {}\n", srv.addr),
        LONG_KEEP_ALIVE,
    );
    let reference = smuggling_run(haddr, &srv);
    for ((req, ours), theirs) in SMUGGLING.iter().zip(&got).zip(&reference) {
        assert_eq!(ours, theirs, "{}", req.split(' ').nth(1).unwrap());
    }
}

/// A server answering every request on a connection with `response` (then keeping the
/// connection open until the client goes).
fn scripted_server(response: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().unwrap();
                let mut reader = std::io::BufReader::new(conn);
                while read_framed(&mut reader).is_some() {
                    if writer.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Responses whose framing is ambiguous or unsupported, and what the client must get.
const RESPONSES: &[(&str, &str)] = &[
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ),
    (
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 3 \r\nabc\r\n0\r\n\r\n",
        "502",
    ),
    (
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nX\r\n0\r\n\r\n",
        "502",
    ),
];

/// What a client gets for one GET: the whole answer with lowercased header names, or the
/// status alone for an error page.
fn response_seen(addr: SocketAddr) -> String {
    let raw = http_raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_millis(700),
    );
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    if !status.starts_with("HTTP/1.1 200") {
        return status.split(' ').nth(1).unwrap_or_default().to_string();
    }
    let headers: String = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            format!("{}:{v}\r\n", n.to_ascii_lowercase())
        })
        .collect();
    format!("{status}\r\n{headers}\r\n{body}")
}

#[test]
fn ambiguous_responses_are_fixed_or_refused() {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    let with_haproxy = hapx_tests::require::path(
        "ambiguous_responses_are_fixed_or_refused",
        haproxy,
        "HAProxy",
    );
    for (i, (response, want)) in RESPONSES.iter().enumerate() {
        let server = format!("  server s {}\n", scripted_server(response));
        let (_p, addr) = start(&format!("http-resp-{i}"), &server, "");
        assert_eq!(&response_seen(addr), want, "{response:?}");
        if with_haproxy {
            let (_h, haddr) = start_binary(haproxy, &format!("http-resp-h{i}"), &server, "");
            assert_eq!(&response_seen(haddr), want, "HAProxy: {response:?}");
        }
    }
}

#[test]
fn http_counters_match_haproxy() {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !hapx_tests::require::path("http_counters_match_haproxy", haproxy, "HAProxy") {
        return;
    }
    let srv = WireServer::start();
    let server = format!("  server s {}\n", srv.addr);
    let mut stats = Vec::new();
    for (binary, name) in [
        (hapx_tests::bins::path("hapx-proxy"), "http-counters"),
        (haproxy.to_path_buf(), "http-counters-haproxy"),
    ] {
        let stats_port = free_port();
        let listen =
            format!("listen st\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /\n");
        let (_p, addr) = start_binary(&binary, name, &server, &listen);
        for request in [
            &b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
            b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            b"GET /d HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            http_raw(addr, request, Duration::from_secs(5));
        }
        let (_, _, csv) =
            hapx_tests::proxy::http_get(SocketAddr::from((LO, stats_port)), "/;csv", None);
        stats.push(csv);
    }
    let row = |csv: &str, px: &str, sv: &str| hapx_tests::proxy::stat_row(csv, px, sv).unwrap();
    for (px, sv, columns) in [
        (
            "fe",
            "FRONTEND",
            &["req_tot", "ereq", "hrsp_2xx", "hrsp_4xx", "stot"][..],
        ),
        (
            "be",
            "BACKEND",
            &[
                "req_tot", "hrsp_2xx", "stot", "lbtot", "cli_abrt", "srv_abrt",
            ],
        ),
        (
            "be",
            "s",
            &[
                "req_tot", "hrsp_2xx", "stot", "lbtot", "cli_abrt", "srv_abrt",
            ],
        ),
    ] {
        let (ours, theirs) = (row(&stats[0], px, sv), row(&stats[1], px, sv));
        for col in columns {
            assert_eq!(ours[*col], theirs[*col], "{px}/{sv} {col}");
        }
        for col in ["bin", "bout"] {
            assert!(
                ours[col].parse::<u64>().unwrap() > 0,
                "{px}/{sv} {col}: {ours:?}"
            );
        }
    }
    let be = row(&stats[0], "be", "s");
    for col in ["ctime", "rtime", "ttime", "ttime_max"] {
        assert!(be[col].parse::<u64>().is_ok(), "{col}: {be:?}");
    }
    assert!(
        (0..=2).contains(&be["lastsess"].parse::<i64>().unwrap()),
        "{be:?}"
    );
}

/// A frontend `maxconn` beyond what a semaphore holds passes `-c` (as with HAProxy): the
/// proxy must still start and serve, not panic sizing its connection slots.
#[test]
fn a_huge_frontend_maxconn_still_serves() {
    let srv = WireServer::start();
    let (_p, addr) = start(
        "http-huge-maxconn",
        &format!("  server s {}\n", srv.addr),
        "  maxconn 2305843009213693952\n",
    );
    let (status, _, _) = exchange_once(addr, b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(srv.take().len(), 1);
}

/// After its own 503 (a backend without servers), the client connection stays open exactly
/// where HAProxy keeps it: for a plain HTTP/1.1 request, not after an `errorfile` page (which
/// may not frame itself), nor with `option httpclose`, nor for an HTTP/1.0 request.
#[test]
fn error_pages_keep_the_connection_where_haproxy_does() {
    let test = "error_pages_keep_the_connection_where_haproxy_does";
    let dir = temp_dir(test);
    let page = dir.join("503.http");
    std::fs::write(
        &page,
        "HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body>down</body></html>\n",
    )
    .unwrap();
    let cases = [
        ("", "HTTP/1.1"),
        (
            &*format!("  errorfile 503 {}\n", page.display()),
            "HTTP/1.1",
        ),
        ("  option httpclose\n", "HTTP/1.1"),
        ("", "HTTP/1.0"),
    ];
    let mut seen = Vec::new();
    for (_, binary) in binaries(test) {
        let mut kept = Vec::new();
        for (i, (extra, version)) in cases.iter().enumerate() {
            let port = free_port();
            let cfg = format!(
                "defaults\n  mode http\n  timeout client 5s\n  timeout server 2s\n  timeout connect 1s\n\
                 frontend fe\n  bind 127.0.0.1:{port}\n{extra}  default_backend empty\nbackend empty\n"
            );
            let addr = SocketAddr::from((LO, port));
            let name = format!("case{i}");
            let _p = Proxy::start_with(binary.clone(), &dir, &name, &cfg, addr, &[]);
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let request = format!("GET / {version}\r\nHost: a\r\n\r\n");
            c.write_all(request.as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Closed (read returns 0) within the read timeout, or still open.
            let closed = loop {
                match c.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(_) => break false,
                }
            };
            let text = String::from_utf8_lossy(&got);
            assert!(text.contains(" 503 "), "{binary:?} case {i}: {text}");
            kept.push(!closed);
        }
        seen.push(kept);
    }
    assert_eq!(seen[0], [true, false, false, false]);
    if let Some(theirs) = seen.get(1) {
        assert_eq!(&seen[0], theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// What one proxy did with one client: the first line of its answer, its log line from
/// the frontend's name on (the header, address and date differ), and the `show stat`
/// `columns` of `rows`.
type Seen = (Option<String>, Vec<String>, Vec<Vec<String>>);

/// Runs the frontend `fe` with the backend `be` (`backend`: its lines) through hapx-proxy,
/// then HAProxy when it is installed (skipped loudly otherwise, failing under CI); sends
/// `request`, half-closing the connection, and reads the answer. Both observed alike;
/// hapx's observation is returned.
fn plain_alike(
    test: &str,
    backend: &str,
    request: &[u8],
    rows: &[(&str, &str)],
    columns: &[&str],
) -> Seen {
    let mut observed: Vec<Seen> = Vec::new();
    for (name, binary) in hapx_tests::proxy_rules::binaries(test) {
        let syslog = hapx_tests::proxy_rules::Syslog::bind();
        let stats_port = free_port();
        let extra = format!(
            "  log {} local0\nlisten st\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /\n",
            syslog.addr
        );
        let (_p, addr) = start_binary(&binary, &format!("{test}-{name}"), backend, &extra);
        let mut client = TcpStream::connect(addr).expect("connecting");
        client.set_read_timeout(Some(Duration::from_secs(5))).ok();
        client.write_all(request).expect("sending");
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("half-closing");
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let line = syslog.lines(1).remove(0);
        let from_fe = line.find(" fe ").map_or("", |at| &line[at..]);
        let logged = from_fe.split(' ').map(str::to_string).collect();
        let (_, _, csv) =
            hapx_tests::proxy::http_get(SocketAddr::from((LO, stats_port)), "/;csv", None);
        let counted = rows
            .iter()
            .map(|(px, sv)| {
                let row = hapx_tests::proxy::stat_row(&csv, px, sv).expect("the row");
                columns.iter().map(|c| row[*c].clone()).collect()
            })
            .collect();
        observed.push((answer.lines().next().map(str::to_string), logged, counted));
    }
    let ours = observed.remove(0);
    if let Some(theirs) = observed.pop() {
        assert_eq!(
            ours.0, theirs.0,
            "{test}: the answer: hapx-proxy, then HAProxy"
        );
        assert_eq!(
            ours.2, theirs.2,
            "{test}: {columns:?}: hapx-proxy, then HAProxy"
        );
        // Without the timers.
        let shape = |l: &[String]| {
            l.iter()
                .filter(|w| !w.contains('/') || w.contains("NOSRV"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&ours.1), shape(&theirs.1), "{test}: the log line");
    }
    ours
}

/// A client that sends half a head and closes its sending side: HAProxy still writes its
/// 400, counts it in `hrsp_4xx` and logs it `400 0 ... CR--` (`%B` 0: its HTTP/1 layer
/// wrote the error, no stream did). hapx does the same, side by side.
#[test]
fn a_client_closing_mid_head_gets_the_400_as_in_haproxy() {
    let test = "a_client_closing_mid_head_gets_the_400_as_in_haproxy";
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n";
    let columns = ["req_tot", "ereq", "hrsp_4xx"];
    let ours = plain_alike(test, "", request, &[("fe", "FRONTEND")], &columns);
    assert_eq!(
        ours.0.as_deref(),
        Some("HTTP/1.1 400 Bad request"),
        "{ours:?}"
    );
    assert_eq!(ours.2, [["1", "1", "1"]], "{ours:?}");
    let logged = ours.1.join(" ");
    assert!(logged.contains(" 400 0 - - CR-- "), "{logged}");
}

/// A request the backend's `tcp-request content reject` refuses after `default_backend`:
/// HAProxy's stream had entered the backend, which counts a session, a request and the
/// bytes read; the frontend counts the denial; the line is the backend's, with the request.
#[test]
fn a_backend_content_reject_counts_in_the_backend_as_in_haproxy() {
    let test = "a_backend_content_reject_counts_in_the_backend_as_in_haproxy";
    let srv = WireServer::start();
    let backend = format!(
        "  tcp-request content reject if {{ path /r }}\n  server s {}\n",
        srv.addr
    );
    let request = b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n";
    let rows = [("fe", "FRONTEND"), ("be", "BACKEND")];
    let columns = ["stot", "req_tot", "dreq", "bin", "bout"];
    let ours = plain_alike(test, &backend, request, &rows, &columns);
    assert_eq!(ours.0, None, "{ours:?}");
    assert_eq!(ours.2[0], ["1", "1", "1", "39", "0"], "{ours:?}");
    assert_eq!(ours.2[1], ["1", "1", "0", "39", "0"], "{ours:?}");
    let logged = ours.1.join(" ");
    assert!(logged.contains(" be/<NOSRV> "), "{logged}");
    assert!(logged.ends_with(" \"GET /r HTTP/1.1\""), "{logged}");
}
