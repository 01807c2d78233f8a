//! An HTTP/1 client connection's own HTTP/2 server connection (`http-reuse never`: private
//! to it), idle between its requests and closed by its server: side by side with HAProxy
//! 2.6, the proxy lets go of its socket at once (HAProxy's mux releases a closed server
//! connection then), not at the client's next request, and the client connection stays
//! for that request.
//!
//! The HTTP/2 server is an HAProxy (`bind ... proto h2`, a short `timeout client` closing
//! its idle connections) in front of an HTTP/1.1 test server: the test skips loudly when
//! HAProxy is not installed (failing under CI).

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, read_response};
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// An HTTP/1.1 server answering every request (none with a body) 200 `ok`.
fn ok_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut writer = conn.try_clone().expect("a clone");
                let mut reader = BufReader::new(conn);
                while read_head(&mut reader) {
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Reads a request head; false at the connection's end.
fn read_head(reader: &mut impl std::io::BufRead) -> bool {
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return true,
            Ok(_) => {}
        }
    }
}

/// The sockets process `pid` holds open.
fn sockets(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// What the client saw through `binary`: its first answer, whether the proxy let go of
/// the server connection its server closed while the client connection stayed open, and
/// the answer to the client's next request on that connection.
fn run(binary: PathBuf, test: &str) -> (Option<u16>, bool, Option<u16>) {
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("proxy")
        .to_string();
    let dir = temp_dir(&format!("{test}-{name}"));
    let hop = SocketAddr::from((LO, free_port()));
    let hop_config = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 300ms\n  \
         timeout server 5s\nfrontend hop\n  bind {hop} proto h2\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        ok_server()
    );
    let _hop = Proxy::start_with(PathBuf::from(HAPROXY), &dir, "hop", &hop_config, hop, &[]);
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  \
         timeout server 5s\n  timeout http-keep-alive 10s\nfrontend fe\n  bind {front}\n  \
         default_backend be\nbackend be\n  http-reuse never\n  server s1 {hop} proto h2\n"
    );
    let proxy = Proxy::start_with(binary, &dir, &name, &config, front, &[]);
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(c.try_clone().expect("a clone"));
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    c.write_all(get).expect("the first request");
    let first = read_response(&mut reader).map(|r| r.status);
    // The client's and the server's connections, then the client's alone.
    let held = sockets(proxy.pid());
    let released = eventually(Duration::from_secs(10), || sockets(proxy.pid()) == held - 1);
    c.write_all(get).expect("the next request");
    let next = read_response(&mut reader).map(|r| r.status);
    (first, released, next)
}

#[test]
fn a_private_h2_server_connection_its_server_closed_is_let_go_at_once() {
    let test = "a_private_h2_server_connection_its_server_closed_is_let_go_at_once";
    if !require::path(test, Path::new(HAPROXY), "HAProxy (the HTTP/2 server)") {
        return;
    }
    let (ours, theirs) = thread::scope(|s| {
        let theirs = s.spawn(|| run(PathBuf::from(HAPROXY), test));
        let ours = run(bins::path("hapx-proxy"), test);
        (ours, theirs.join().expect("HAProxy's run"))
    });
    assert_eq!(ours, theirs, "{test}: seen (hapx, HAProxy)");
    assert_eq!(ours, (Some(200), true, Some(200)));
}
