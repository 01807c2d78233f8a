//! Values of the stats beside HAProxy 2.6, each case run by hapx-proxy and then by HAProxy on
//! the same configuration with the same traffic, and asserted the same:
//!
//! - `need_conn_est` counts health check connections among a server's connections in use
//!   (1 for a checked server without traffic, 2 once a check ran beside a session);
//! - `set server X state drain` passes to the servers tracking X, down the chain (`DRAIN`,
//!   admin state 16 in `show servers state`), and back;
//! - a backend's `slim` is its `fullconn`: a tenth of the `maxconn` of the frontends that
//!   reach it, at least 1; a backend without servers is UP with an empty `downtime`; a
//!   disabled proxy has no row;
//! - `show info`'s `Maxsock`, `Ulimit-n` and `Maxpipes` for `maxconn 1000`, with and
//!   without `option splice-auto` and global `maxpipes`;
//! - a request body sent to the Prometheus exporter counts in the frontend's bytes in, in
//!   the CSV and in the exporter.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One column of a `show stat` row.
fn column(sock: &Path, proxy: &str, server: &str, col: &str) -> String {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, proxy, server).unwrap_or_else(|| panic!("no {proxy}/{server}"));
    row.get(col).cloned().unwrap_or_default()
}

/// Waits (10 s at most) until the column shows `value`; its value then.
fn column_reaches(sock: &Path, proxy: &str, server: &str, col: &str, value: &str) -> String {
    eventually(Duration::from_secs(10), || {
        column(sock, proxy, server, col) == value
    });
    column(sock, proxy, server, col)
}

/// Connects to `front` and reads the server's greeting line.
fn greeted(front: SocketAddr) -> (TcpStream, String) {
    let conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut line = String::new();
    let _ = BufReader::new(&conn).read_line(&mut line);
    (conn, line)
}

/// An HTTP server answering each request `200` after `delay`; a connection closed without
/// a request (a health check) is just closed.
fn slow_http_server(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a test server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                let mut asked = false;
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    asked = true;
                    line.clear();
                }
                if asked {
                    thread::sleep(delay);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = (&conn).write_all(ok);
                }
            });
        }
    });
    addr
}

#[test]
fn health_checks_count_in_the_estimated_need_of_connections() {
    let dir = temp_dir("stats-values-need");
    let sock = dir.join("admin.sock");
    let checked = NamedServer::start("c", LO, Duration::from_secs(30));
    let plain = NamedServer::start("p", LO, Duration::from_secs(30));
    let slow = slow_http_server(Duration::from_secs(2));
    let (port_a, port_b, port_h) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         listen a\n  bind 127.0.0.1:{port_a}\n  server c {} check inter 100\n\
         listen b\n  bind 127.0.0.1:{port_b}\n  server p {}\n\
         listen h\n  mode http\n  bind 127.0.0.1:{port_h}\n  server hc {slow} check inter 100\n",
        sock.display(),
        checked.addr,
        plain.addr
    );
    let front = SocketAddr::from((LO, port_a));
    let (ours, theirs) = side_by_side("stats-values-need", &cfg, front, |_| {
        // Checked, no traffic: the checks' connections.
        let idle_checked = column_reaches(&sock, "a", "c", "need_conn_est", "1");
        let idle_plain = column(&sock, "b", "p", "need_conn_est");
        // A TCP session's connection counts as it opens.
        let (_held, line) = greeted(SocketAddr::from((LO, port_b)));
        let busy_plain = column_reaches(&sock, "b", "p", "need_conn_est", "1");
        // An HTTP request in progress while the checks go on: both in use at once.
        let mut request = TcpStream::connect(SocketAddr::from((LO, port_h))).expect("connecting");
        request
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("sending");
        let busy_checked = column_reaches(&sock, "h", "hc", "need_conn_est", "2");
        [line, idle_checked, idle_plain, busy_plain, busy_checked]
    });
    eprintln!("hapx: {ours:?}\nHAProxy: {theirs:?}");
    let expected = ["p\n", "1", "0", "1", "2"].map(String::from);
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        assert_eq!(theirs, expected);
    }
}

/// The admin state (`srv_admin_state`) of a server in `show servers state`.
fn admin_state(sock: &Path, backend: &str, server: &str) -> String {
    let dump = cli(sock, "show servers state");
    dump.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 6 && f[1] == backend && f[3] == server)
        .map(|f| f[6].to_string())
        .unwrap_or_default()
}

#[test]
fn drain_passes_to_the_tracking_servers() {
    let dir = temp_dir("stats-values-drain");
    let sock = dir.join("admin.sock");
    let server = NamedServer::start("s", LO, Duration::from_secs(30));
    let port = free_port();
    let cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s1 {addr} check inter 100\n  server s2 {addr} track s1\n  \
         server s3 {addr} track s2\n\
         backend c\n  server t1 {addr} track b/s1\n",
        sock.display(),
        addr = server.addr
    );
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = side_by_side("stats-values-drain", &cfg, front, |_| {
        column_reaches(&sock, "b", "s1", "status", "UP");
        let look = || {
            [("b", "s2"), ("b", "s3"), ("c", "t1")]
                .map(|(b, s)| (column(&sock, b, s, "status"), admin_state(&sock, b, s)))
        };
        cli(&sock, "set server b/s1 state drain");
        let drained = look();
        cli(&sock, "set server b/s1 state ready");
        let ready = look();
        (drained, ready)
    });
    eprintln!("hapx: {ours:?}\nHAProxy: {theirs:?}");
    let state = |status: &str, admin: &str| (status.to_string(), admin.to_string());
    let drained = [(); 3].map(|_| state("DRAIN", "16"));
    let ready = [(); 3].map(|_| state("UP", "0"));
    assert_eq!(ours, (drained.clone(), ready.clone()));
    if let Some(theirs) = theirs {
        assert_eq!(theirs, (drained, ready));
    }
}

#[test]
fn backend_limits_come_from_the_frontends_reaching_them() {
    let dir = temp_dir("stats-values-slim");
    let sock = dir.join("admin.sock");
    let server = NamedServer::start("s", LO, Duration::from_secs(30));
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let cfg = format!(
        "global\n  maxconn 1000\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend f1\n  bind 127.0.0.1:{}\n  use_backend b2 if {{ path /a }}\n  \
         use_backend b2 if {{ path /b }}\n  use_backend b1 if {{ path /c }}\n  default_backend b1\n\
         frontend f2\n  bind 127.0.0.1:{}\n  maxconn 500\n  use_backend b1 if {{ path /a }}\n  \
         use_backend b3 if {{ path /b }}\n\
         frontend f3\n  bind 127.0.0.1:{}\n  maxconn 33\n  disabled\n  default_backend b3\n\
         listen l\n  bind 127.0.0.1:{}\n  maxconn 300\n  server s {addr}\n\
         backend b1\n  server s {addr}\nbackend b2\n  server s {addr}\n\
         backend b3\n  fullconn 77\n  server s {addr}\nbackend b4\n  server s {addr}\n\
         backend empty\n",
        sock.display(),
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        addr = server.addr
    );
    let front = SocketAddr::from((LO, ports[3]));
    let (ours, theirs) = side_by_side("stats-values-slim", &cfg, front, |_| {
        let slims =
            ["l", "b1", "b2", "b3", "b4", "empty"].map(|b| column(&sock, b, "BACKEND", "slim"));
        let empty = ["status", "downtime"].map(|c| column(&sock, "empty", "BACKEND", c));
        let with_servers = column(&sock, "b4", "BACKEND", "downtime");
        // A disabled proxy has no row.
        let disabled_shown = stat_row(&cli(&sock, "show stat"), "f3", "FRONTEND").is_some();
        (slims, empty, with_servers, disabled_shown)
    });
    eprintln!("hapx: {ours:?}\nHAProxy: {theirs:?}");
    let expected = (
        ["30", "150", "100", "77", "1", "1"].map(String::from),
        ["UP", ""].map(String::from),
        "0".to_string(),
        false,
    );
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        assert_eq!(theirs, expected);
    }
}

#[test]
fn descriptor_figures_match_haproxy() {
    let dir = temp_dir("stats-values-info");
    let sock = dir.join("admin.sock");
    let server = NamedServer::start("s", LO, Duration::from_secs(30));
    // Without splicing, splicing from a frontend, and a set number of pipes.
    let cases = [
        ("", "", ("2028", "2028", "0")),
        ("", "  option splice-auto\n", ("2528", "2528", "250")),
        ("  maxpipes 7\n", "", ("2042", "2042", "7")),
    ];
    for (i, (global, frontend, expected)) in cases.into_iter().enumerate() {
        let port = free_port();
        let cfg = format!(
            "global\n  maxconn 1000\n  nbthread 2\n  stats socket {} level admin\n{global}\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             frontend f\n  bind 127.0.0.1:{port}\n{frontend}  default_backend b\n\
             backend b\n  server s {}\n",
            sock.display(),
            server.addr
        );
        let front = SocketAddr::from((LO, port));
        let (ours, theirs) = side_by_side(&format!("stats-values-info{i}"), &cfg, front, |_| {
            let info = cli(&sock, "show info");
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_string()
            };
            (field("Maxsock"), field("Ulimit-n"), field("Maxpipes"))
        });
        eprintln!("case {i}: hapx: {ours:?}\nHAProxy: {theirs:?}");
        let owned = (
            expected.0.to_string(),
            expected.1.to_string(),
            expected.2.to_string(),
        );
        assert_eq!(ours, owned, "case {i}");
        if let Some(theirs) = theirs {
            assert_eq!(theirs, owned, "case {i}");
        }
    }
}

/// Sends `request` on its own connection and reads the answer to its end.
fn exchange(front: SocketAddr, request: &str) -> String {
    let mut conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    conn.write_all(request.as_bytes()).expect("sending");
    let mut out = String::new();
    let _ = conn.read_to_string(&mut out);
    out
}

#[test]
fn a_body_sent_to_the_exporter_counts_in_bytes_in() {
    let dir = temp_dir("stats-values-prom");
    let sock = dir.join("admin.sock");
    let port = free_port();
    let cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  \
         http-request use-service prometheus-exporter if {{ path /metrics }}\n",
        sock.display()
    );
    let front = SocketAddr::from((LO, port));
    // Two requests with heads of the same length: the second's bytes in exceed the first's
    // by the difference of their bodies.
    let post = |body: &str| {
        format!(
            "POST /metrics HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (short, long) = ("s".repeat(10), "l".repeat(38));
    let (ours, theirs) = side_by_side("stats-values-prom", &cfg, front, |_| {
        let bin = || column(&sock, "f", "FRONTEND", "bin");
        let answered = exchange(front, &post(&short)).starts_with("HTTP/1.1 200");
        let before = bin();
        exchange(front, &post(&long));
        eventually(Duration::from_secs(10), || bin() != before);
        let csv: u64 = bin().parse().unwrap_or_default();
        let metrics = exchange(
            front,
            "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        );
        let exported: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("haproxy_frontend_bytes_in_total{proxy=\"f\"} "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let first: u64 = before.parse().unwrap_or_default();
        (answered, csv.saturating_sub(first), first, exported == csv)
    });
    eprintln!("hapx: {ours:?}\nHAProxy: {theirs:?}");
    let grown = (long.len() - short.len()) as u64;
    assert_eq!(
        (ours.0, ours.1 - ours.2, ours.3),
        (true, grown, true),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
