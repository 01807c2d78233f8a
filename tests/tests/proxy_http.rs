//! HTTP mode through a real hapx-proxy: keep-alive, X-Forwarded-For, 400 on malformed
//! requests, 408 for clients too slow to send a request, 503 with an errorfile, 502 from a
//! broken server.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{HttpServer, Proxy, free_port, http_raw, temp_dir};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn start(test: &str, servers: &str, extra: &str) -> (Proxy, SocketAddr) {
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
    (Proxy::start(&dir, test, &cfg, addr), addr)
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
        b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\n\r\n",
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
    let (_p, addr) = start("http-408", &format!("  server web1 {}\n", srv.addr), "");
    let started = Instant::now();
    let resp = http_raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: slow",
        Duration::from_secs(5),
    );
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // An idle connection that never sends anything is closed without a response.
    let resp = http_raw(addr, b"", Duration::from_secs(5));
    assert_eq!(resp, "");
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
