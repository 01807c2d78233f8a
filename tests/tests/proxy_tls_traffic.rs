//! TCP-mode traffic to `server ... ssl`: a plain client, hapx-proxy (and HAProxy 2.6, side by
//! side) speaking TLS to a real TLS echo server. Bytes must pass both ways intact, a
//! client's half-close must reach the server (which then says `bye`), the SNI must be the
//! configured one, and a server whose certificate fails verification gets no data.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::proxy_tls::{Behaviour, Pki, TlsServer};

fn config(front: u16, server: &str) -> String {
    format!(
        "defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
         backend be\n  {server}\n"
    )
}

/// Sends `payload` while reading the echo, then half-closes; everything read back.
fn exchange(front: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return Vec::new();
    };
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = conn.try_clone().expect("cloning the client socket");
    let collect = thread::spawn(move || {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        got
    });
    let _ = conn.write_all(payload);
    let _ = conn.shutdown(Shutdown::Write);
    collect.join().expect("the reading thread")
}

fn payload() -> Vec<u8> {
    // 1 MB of varied bytes: more than any buffer or TLS record on the way.
    (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn tcp_traffic_through_server_ssl_both_ways_with_half_close() {
    let test = "tls_traffic";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let server = TlsServer::start(&pki, Behaviour::Echo);
    let front = free_port();
    let line = format!(
        "server s1 127.0.0.1:{} ssl verify required ca-file {} sni str(api.example)",
        server.port(),
        pki.ca.display()
    );
    let data = payload();
    let mut want = data.clone();
    want.extend_from_slice(b"bye");
    let front_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, front));
    let (ours, theirs) = side_by_side(test, &config(front, &line), front_addr, |addr| {
        let small = exchange(addr, b"hello");
        let big = exchange(addr, &data);
        (small, big)
    });
    assert_eq!(ours.0, b"hellobye", "hapx-proxy: a small exchange");
    assert!(
        ours.1 == want,
        "hapx-proxy: {} bytes back of {}",
        ours.1.len(),
        want.len()
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs.0, b"hellobye", "HAProxy: a small exchange");
        assert!(theirs.1 == want, "HAProxy: {} bytes back", theirs.1.len());
    }
    let seen = server.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| s.sni.as_deref() == Some("api.example")),
        "{seen:?}"
    );
}

#[test]
fn unverified_server_gets_no_traffic() {
    let test = "tls_traffic_wrong_ca";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let server = TlsServer::start(&pki, Behaviour::Echo);
    let front = free_port();
    let other: &Path = &pki.other_ca;
    let line = format!(
        "server s1 127.0.0.1:{} ssl verify required ca-file {}",
        server.port(),
        other.display()
    );
    let front_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, front));
    let sock = dir.join("admin.sock");
    let text = format!(
        "global\n  stats socket {} level admin\n{}",
        sock.display(),
        config(front, &line)
    );
    let (ours, theirs) = side_by_side(test, &text, front_addr, |addr| {
        let got = exchange(addr, b"secret");
        // A failed handshake is a connection error of the server.
        let econ = || {
            stat_row(&cli(&sock, "show stat"), "be", "s1")
                .and_then(|r| r.get("econ").cloned())
                .unwrap_or_default()
        };
        wait_until(Duration::from_secs(10), || econ() == "1");
        (got, econ())
    });
    assert_eq!(ours, (Vec::new(), "1".to_string()), "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(theirs, (Vec::new(), "1".to_string()), "HAProxy");
    }
    assert!(
        server.seen().iter().all(|s| !s.head.contains("secret")),
        "{:?}",
        server.seen()
    );
}

/// A server that accepts TCP connections and never answers the ClientHello: the handshake
/// is part of the connection attempt, as in HAProxy's one connect timer. Each attempt ends
/// when `timeout connect` runs out (TCP connect and handshake together), is retried per
/// `retries` (at once after a timeout), and the session ends `sC` with no connect time
/// (`%Tc` -1), `retries` attempts logged, one connection error and `retries` retries counted.
#[test]
fn a_handshake_that_never_ends_is_a_connect_timeout_retried() {
    let test = "tls_silent_server";
    let dir = temp_dir(test);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a silent server");
    let silent_port = silent.local_addr().unwrap().port();
    // Accepts and keeps every connection, reading nothing.
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = accepted.clone();
    thread::spawn(move || {
        for conn in silent.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let syslog = hapx_tests::proxy_rules::Syslog::bind();
    let sock = dir.join("admin.sock");
    let front = free_port();
    let text = format!(
        "global\n  stats socket {} level admin\n  log {} local0\n\
         defaults\n  mode tcp\n  log global\n  log-format \"%Tc %ts %rc %s\"\n  retries 2\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 300ms\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:{silent_port} ssl verify none\n",
        sock.display(),
        syslog.addr
    );
    let front_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, front));
    let (ours, theirs) = side_by_side(test, &text, front_addr, |addr| {
        let before = accepted.lock().unwrap().len();
        let got = exchange(addr, b"hello");
        let line = syslog.lines(1).pop().unwrap_or_default();
        let row = stat_row(&cli(&sock, "show stat"), "be", "s1").unwrap_or_default();
        let stat = |name: &str| row.get(name).cloned().unwrap_or_default();
        let attempts = accepted.lock().unwrap().len() - before;
        (got, line, stat("econ"), stat("wretr"), attempts)
    });
    let want = (
        Vec::new(),
        "-1 sC 2 s1".to_string(),
        "1".into(),
        "2".into(),
        3,
    );
    assert_eq!(ours, want, "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(theirs, want, "HAProxy");
    }
}

/// Which servers get traffic, by the name checked and the certificate's validity: the
/// server's certificate is for `api.example` (and 127.0.0.1). A `sni` or `verifyhost` naming
/// another host, or an expired certificate, and no byte reaches the server; the right name
/// or none (HAProxy then checks no name), and data flows. hapx and HAProxy, case by case.
#[test]
fn names_and_validity_decide_which_servers_get_traffic() {
    let test = "tls_traffic_names";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let valid = TlsServer::start(&pki, Behaviour::Echo);
    let expired = TlsServer::start(&pki.with_expired_server(), Behaviour::Echo);
    // (case, server, options after `verify required ca-file CA`, whether data flows)
    let cases = [
        ("sni other", &valid, "sni str(other.example)", false),
        (
            "verifyhost other",
            &valid,
            "verifyhost other.example",
            false,
        ),
        ("sni api", &valid, "sni str(api.example)", true),
        ("no name", &valid, "", true),
        ("expired", &expired, "sni str(api.example)", false),
    ];
    for (case, server, options, flows) in cases {
        let front = free_port();
        let line = format!(
            "server s1 127.0.0.1:{} ssl verify required ca-file {} {options}",
            server.port(),
            pki.ca.display()
        );
        let front_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, front));
        let before = server.seen().len();
        let (ours, theirs) = side_by_side(test, &config(front, &line), front_addr, |addr| {
            exchange(addr, b"secret")
        });
        let want: &[u8] = if flows { b"secretbye" } else { b"" };
        assert_eq!(ours, want, "hapx-proxy: {case}");
        if let Some(theirs) = theirs {
            assert_eq!(theirs, want, "HAProxy: {case}");
        }
        let reached = server.seen()[before..]
            .iter()
            .any(|s| s.head.contains("secret"));
        assert_eq!(reached, flows, "{case}: {:?}", server.seen());
    }
}
