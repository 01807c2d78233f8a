//! Health checks to servers that require the PROXY protocol, side by side with HAProxy
//! 2.6: a server's `send-proxy` / `send-proxy-v2` applies to its checks when they go where
//! its traffic goes (no check `port` nor `addr`), on the implicit connect; the header names
//! the check's own connection (v1) or is a LOCAL command (v2). Each server here refuses a
//! connection that does not start with a PROXY header (it closes it without a word), so a
//! check without the header fails; the bytes of every check are kept and compared.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{free_port, settled_check_rows, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A server that insists on the PROXY protocol: it reads the header (v1 or v2), answers an
/// HTTP request after it with a 200, and closes at once a connection that starts otherwise.
/// It keeps the first bytes of every connection.
struct ProxyOnly {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ProxyOnly {
    fn start() -> ProxyOnly {
        let listener = TcpListener::bind((LO, 0)).expect("binding a check server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(conn, &kept));
            }
        });
        ProxyOnly { addr, seen }
    }

    /// The last connection's bytes, its v1 source port written `N` (it varies).
    fn last(&self) -> String {
        let seen = self.seen.lock().unwrap();
        seen.last().map_or_else(String::new, |bytes| shown(bytes))
    }
}

/// Where the header ends, once it came; None while it may still come.
fn header_end(got: &[u8]) -> Option<usize> {
    if got.starts_with(V2_SIGNATURE) && got.len() >= 16 {
        let len = 16 + usize::from(u16::from_be_bytes([got[14], got[15]]));
        return (got.len() >= len).then_some(len);
    }
    got.windows(2).position(|w| w == b"\r\n").map(|at| at + 2)
}

fn serve(mut conn: TcpStream, kept: &Mutex<Vec<Vec<u8>>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n @ 1..) = conn.read(&mut chunk) {
        got.extend_from_slice(&chunk[..n]);
        let is_proxy = got.starts_with(b"PROXY ") || got.starts_with(V2_SIGNATURE);
        let could_be = b"PROXY ".starts_with(&got[..got.len().min(6)])
            || V2_SIGNATURE.starts_with(&got[..got.len().min(12)]);
        if !is_proxy && !could_be {
            break; // Not the PROXY protocol: refused.
        }
        if let Some(end) = header_end(&got).filter(|_| is_proxy) {
            // A request after the header gets its answer.
            if got.len() > end || read_more(&mut conn, &mut got) {
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
            break;
        }
    }
    if !got.is_empty() {
        kept.lock().unwrap().push(got);
    }
}

/// Waits for bytes after the header (a check's request); false when none come.
fn read_more(conn: &mut TcpStream, got: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 1024];
    match conn.read(&mut chunk) {
        Ok(n @ 1..) => {
            got.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

/// Bytes as text, the v1 header's source port (the check's own, varying) written `N`.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let Some(line) = text.strip_prefix("PROXY ") else {
        return format!("{:?}", bytes.escape_ascii().to_string());
    };
    let mut words: Vec<&str> = line.splitn(5, ' ').collect();
    if words.len() == 5 {
        words[3] = "N";
    }
    format!("PROXY {}", words.join(" "))
        .escape_debug()
        .to_string()
}

/// The check rows of `backends` (each with one server `s`) once their states are as
/// `expected` says, with what each server saw last.
fn observe(sock: &Path, expected: &[(&str, &str, &str)], servers: &[ProxyOnly]) -> Vec<String> {
    let names: Vec<(&str, &str)> = expected.iter().map(|(b, ..)| (*b, "s")).collect();
    let states: Vec<[&str; 2]> = expected.iter().map(|(_, st, c)| [*st, *c]).collect();
    // Every server saw a check of this proxy's (or HAProxy's state alone is compared).
    let seen_all = || servers.iter().all(|s| !s.seen.lock().unwrap().is_empty());
    assert!(
        eventually(Duration::from_secs(5), seen_all),
        "servers not checked"
    );
    let rows = settled_check_rows(sock, &names, &states);
    (rows.iter().zip(servers).zip(expected))
        .map(|((row, server), (b, ..))| format!("{b}: {:?} {}", &row[..2], server.last()))
        .collect()
}

#[test]
fn checks_of_a_send_proxy_server_carry_the_header() {
    let test = "checks_of_a_send_proxy_server_carry_the_header";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let expected = [
        ("tcp_v1", "UP", "L4OK"),
        ("tcp_v2", "UP", "L4OK"),
        ("http_v1", "UP", "L7OK"),
        ("http_v2", "UP", "L7OK"),
        ("check_port", "DOWN", "L7RSP"),
        ("check_addr", "DOWN", "L7RSP"),
        ("tcp_check", "UP", "L7OK"),
    ];
    let servers: Vec<ProxyOnly> = expected.iter().map(|_| ProxyOnly::start()).collect();
    let a = |i: usize| servers[i].addr;
    let check = "check inter 300ms rise 1 fall 1";
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 1s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend tcp_v1\n\
         backend tcp_v1\n  server s {} send-proxy {check}\n\
         backend tcp_v2\n  server s {} send-proxy-v2 {check}\n\
         backend http_v1\n  option httpchk GET /health\n  server s {} send-proxy {check}\n\
         backend http_v2\n  option httpchk GET /health\n  server s {} send-proxy-v2 {check}\n\
         backend check_port\n  option httpchk\n  server s {} send-proxy {check} port {}\n\
         backend check_addr\n  option httpchk\n  server s {} send-proxy {check} addr 127.0.0.1\n\
         backend tcp_check\n  option tcp-check\n  tcp-check send \"GET / HTTP/1.0\\r\\n\\r\\n\"\n\
         \x20 tcp-check expect string 200\n  server s {} send-proxy-v2 {check}\n",
        a(0),
        a(1),
        a(2),
        a(3),
        a(4),
        a(4).port(),
        a(5),
        a(6),
        sock = sock.display(),
    );
    let run = |_| {
        // What the other proxy's checks sent is not this one's.
        for server in &servers {
            server.seen.lock().unwrap().clear();
        }
        observe(&sock, &expected, &servers)
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), run);
    for (line, (b, state, status)) in ours.iter().zip(&expected) {
        assert!(
            line.contains(&format!("[\"{state}\", \"{status}\"")),
            "{b}: {line}"
        );
    }
    // v1 names the check's connection: from its own port to the server's.
    let v1 = format!("PROXY TCP4 127.0.0.1 127.0.0.1 N {}\\r\\n", a(0).port());
    assert!(ours[0].ends_with(&v1), "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn check_send_proxy_sends_the_header_wherever_checks_go() {
    let test = "check_send_proxy_sends_the_header_wherever_checks_go";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let expected = [
        ("check_port", "UP", "L7OK"),
        ("v2_check_addr", "UP", "L7OK"),
        ("no_check_send_proxy", "DOWN", "L7RSP"),
        ("connect_send_proxy", "UP", "L7OK"),
    ];
    let servers: Vec<ProxyOnly> = expected.iter().map(|_| ProxyOnly::start()).collect();
    let a = |i: usize| servers[i].addr;
    let check = "check inter 300ms rise 1 fall 1";
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 1s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend check_port\n\
         backend check_port\n  option httpchk\n  server s {} check-send-proxy {check} port {}\n\
         backend v2_check_addr\n  option httpchk\n\
         \x20 server s {} send-proxy-v2 check-send-proxy {check} addr 127.0.0.1\n\
         backend no_check_send_proxy\n  option httpchk\n  default-server check-send-proxy\n\
         \x20 server s {} no-check-send-proxy send-proxy {check} port {}\n\
         backend connect_send_proxy\n  option tcp-check\n\
         \x20 tcp-check connect port {} send-proxy\n\
         \x20 tcp-check send \"GET / HTTP/1.0\\r\\n\\r\\n\"\n  tcp-check expect string 200\n\
         \x20 server s 127.0.0.1:1 send-proxy-v2 {check}\n",
        a(0),
        a(0).port(),
        a(1),
        a(2),
        a(2).port(),
        a(3).port(),
        sock = sock.display(),
    );
    let run = |_| {
        for server in &servers {
            server.seen.lock().unwrap().clear();
        }
        observe(&sock, &expected, &servers)
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), run);
    for (line, (b, state, status)) in ours.iter().zip(&expected) {
        assert!(
            line.contains(&format!("[\"{state}\", \"{status}\"")),
            "{b}: {line}"
        );
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
