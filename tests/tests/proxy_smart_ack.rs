//! `option tcp-smart-accept` and `option tcp-smart-connect`: the packets they save, counted by
//! the kernel, for hapx-proxy and for HAProxy 2.6 with the same configuration.
//!
//! Each measurement runs in a network namespace of its own (a thread of this test enters it,
//! and the proxy it starts inherits it), so its loopback carries nothing but the test's
//! connections and the namespace's `OutSegs` counter counts exactly their TCP segments.
//! Connections run one at a time: connect, a request, the server's answer and close, the
//! client's close.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use hapx_tests::netns::Network;
use hapx_tests::proxy::{Proxy, temp_dir};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
const CONNECTIONS: u32 = 200;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
const HANG: Duration = Duration::from_secs(10);

/// Lines added to the defaults section, and options added to the bind line.
type Tuning = (&'static str, &'static str);

/// Runs `f` on a thread inside the namespace `netns`; processes it starts are inside too.
fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{netns}");
    thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("entering {netns}: {e}"));
            f()
        })
        .join()
        .expect("the measuring thread")
    })
}

/// TCP segments sent in the calling thread's namespace so far.
fn out_segments() -> u64 {
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("reading snmp");
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().expect("Tcp names"), tcp.next().expect("values"));
    let at = names
        .split_whitespace()
        .position(|n| n == "OutSegs")
        .expect("an OutSegs column");
    values
        .split_whitespace()
        .nth(at)
        .expect("OutSegs")
        .parse()
        .expect("a number")
}

/// A server that reads a request and answers with `ANSWER`, closing first.
fn answering_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(HANG));
            let mut buf = [0u8; 1024];
            if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = conn.write_all(ANSWER);
            }
        }
    });
    addr
}

/// Segments per connection through a proxy started from `binary` with `options` in its
/// defaults section and `bind` on its bind line (in a namespace of its own).
fn segments_per_connection(binary: PathBuf, (options, bind): Tuning, tag: &str) -> f64 {
    let mut net = Network::new().expect("creating a test network");
    let host = net
        .add_host("lb", &["192.0.2.10/24"])
        .expect("adding a host");
    let dir = temp_dir(&format!("smart-ack-{tag}"));
    let per_connection = in_netns(&host.netns, || {
        let server = answering_server();
        let front = SocketAddr::from((LO, 8443));
        let config = format!(
            "defaults\n  mode tcp\n{options}  timeout client 5s\n  timeout server 5s\n  \
             timeout connect 2s\nfrontend fe\n  bind {front}{bind}\n  default_backend be\n\
             backend be\n  server s {server}\n"
        );
        let _proxy = Proxy::start_with(binary, &dir, tag, &config, front, &[]);
        thread::sleep(Duration::from_millis(200));
        let before = out_segments();
        for i in 0..CONNECTIONS {
            let mut c = TcpStream::connect(front).expect("connecting through the proxy");
            c.set_read_timeout(Some(HANG)).expect("a read timeout");
            c.write_all(REQUEST).expect("the request");
            let mut answer = Vec::new();
            c.read_to_end(&mut answer).expect("the answer");
            assert_eq!(answer, ANSWER, "{tag}: connection {i}");
        }
        // The last closes' final ACKs.
        thread::sleep(Duration::from_millis(300));
        (out_segments() - before) as f64 / f64::from(CONNECTIONS)
    });
    drop(net);
    per_connection
}

#[test]
fn smart_accept_and_connect_save_packets_like_haproxy() {
    let test = "smart_accept_and_connect_save_packets_like_haproxy";
    if !require::network_namespaces(test) {
        return;
    }
    // defer-accept: the proxy accepts a connection once its request is there, so what the
    // options save does not depend on which of the client and the proxy runs first.
    const SMART: Tuning = (
        "  option tcp-smart-accept\n  option tcp-smart-connect\n",
        " defer-accept",
    );
    const PLAIN: Tuning = ("", "");
    let hapx = bins::path("hapx-proxy");
    let plain = segments_per_connection(hapx.clone(), PLAIN, "hapx-plain");
    let smart = segments_per_connection(hapx, SMART, "hapx-smart");
    eprintln!(
        "{test}: hapx-proxy {plain:.2} segments per connection, {smart:.2} with both options"
    );
    // One ACK saved on the client side (the request's), two on the server side (the
    // handshake's, sent with the request, and the answer's, sent with the FIN). A delayed ACK
    // still leaves on its own when an answer takes longer than the kernel's 40 ms timer (a
    // loaded machine): at least two of the three on average.
    assert!(
        plain - smart >= 2.0,
        "the options saved {:.2} segments per connection ({plain:.2} -> {smart:.2}), not 3",
        plain - smart
    );
    if !require::path(test, std::path::Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let reference_plain = segments_per_connection(HAPROXY.into(), PLAIN, "haproxy-plain");
    let reference = segments_per_connection(HAPROXY.into(), SMART, "haproxy-smart");
    eprintln!(
        "{test}: HAProxy {reference_plain:.2} segments per connection, {reference:.2} with both options"
    );
    // HAProxy 2.6 has no data in hand when it connects in TCP mode: its tcp-smart-connect
    // saves nothing there.
    assert!(
        smart < reference,
        "hapx-proxy sends {smart:.2} segments per connection, HAProxy {reference:.2}"
    );
}

/// With smart connect and a server that speaks first, the proxy has nothing to send with the
/// handshake's ACK: the server still gets its connection and the client the greeting, and
/// the exchange goes on both ways.
#[test]
fn smart_connect_serves_a_server_that_speaks_first() {
    let test = "smart_connect_serves_a_server_that_speaks_first";
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let server = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(HANG));
            let _ = conn.write_all(b"220 ready\r\n");
            let mut buf = [0u8; 64];
            if let Ok(n) = conn.read(&mut buf) {
                let _ = conn.write_all(&buf[..n]);
            }
        }
    });
    let dir = temp_dir(test);
    let port = hapx_tests::proxy::free_port();
    let front = SocketAddr::from((LO, port));
    let config = format!(
        "defaults\n  mode tcp\n  option tcp-smart-accept\n  option tcp-smart-connect\n  \
         timeout client 5s\n  timeout server 5s\n  timeout connect 2s\nfrontend fe\n  \
         bind {front}\n  default_backend be\nbackend be\n  server s {server}\n"
    );
    let _proxy = Proxy::start(&dir, test, &config, front);
    for _ in 0..5 {
        let mut c = TcpStream::connect(front).expect("connecting through the proxy");
        c.set_read_timeout(Some(HANG)).expect("a read timeout");
        let mut greeting = [0u8; 11];
        c.read_exact(&mut greeting).expect("the server's greeting");
        assert_eq!(&greeting, b"220 ready\r\n");
        c.write_all(b"HELO t\r\n").expect("the client's turn");
        let mut echo = [0u8; 8];
        c.read_exact(&mut echo).expect("the echo");
        assert_eq!(&echo, b"HELO t\r\n");
    }
}
