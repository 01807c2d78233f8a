//! Stick tables side by side with HAProxy 2.6: the same configuration and the same traffic
//! through hapx-proxy and then HAProxy, comparing what clients got and what `show table`
//! shows (entry pointers masked, `exp` checked against the table's expiry and masked).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, TIMEOUTS, check_both, get, read_response, side_by_side};
use hapx_tests::proxy_stick::masked;

fn front() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// An HTTP configuration: frontend `fe` (with `lines`, a stats socket at `socket`) and
/// backend `be` on `server`.
fn http_config(front: SocketAddr, socket: &str, lines: &str, server: SocketAddr) -> String {
    format!(
        "global\n  stats socket {socket} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n{lines}  default_backend be\n\
         backend be\n  server s1 {server}\n"
    )
}

/// Status of a request for `path` on a connection of its own, which it closes (0: none).
fn status(addr: SocketAddr, path: &str, headers: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = get(path, &format!("{headers}connection: close\r\n"));
    if s.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    read_response(&mut BufReader::new(s)).map_or(0, |r| r.status)
}

/// Lets the proxy end the connections whose responses were read (an entry tracked by a
/// request shows `use=1` until then).
fn settle() {
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn rate_limit_idiom_denies_the_same_requests() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-rate");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 100k expire 30s store http_req_rate(10s)\n\
                 \x20 http-request track-sc0 src\n\
                 \x20 http-request deny deny_status 429 if { sc_http_req_rate(0) gt 10 }\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr);
    let syslog = hapx_tests::proxy_rules::Syslog::bind();
    let config = config.replace(
        "frontend fe\n",
        &format!(
            "frontend fe\n  log {} local0\n  log-format \"%ST rate=%[sc_http_req_rate(0)] cnt=%[sc0_http_req_cnt]\"\n",
            syslog.addr
        ),
    );
    let (ours, theirs) = side_by_side("stick-rate", &config, front, |addr| {
        let statuses: Vec<u16> = (0..14).map(|_| status(addr, "/", "")).collect();
        settle();
        let table = cli(&socket, "show table fe");
        let logged = syslog.lines(14);
        (
            statuses,
            masked(&table, 25_000..=30_000),
            cli(&socket, "show table"),
            logged.last().cloned(),
        )
    });
    assert_eq!(ours.3.as_deref(), Some("429 rate=14 cnt=-"));
    let mut expected = vec![200; 10];
    expected.extend([429; 4]);
    assert_eq!(ours.0, expected);
    assert_eq!(
        ours.1,
        [
            "# table: fe, type: ip, size:102400, used:1",
            "0x?: key=127.0.0.1 use=0 exp=? http_req_rate(10000)=14"
        ]
    );
    assert_eq!(ours.2, "# table: fe, type: ip, size:102400, used:1\n\n");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Whether a connection opened now is served: a request on it gets a response (kept open
/// after it when it is).
fn open_served(addr: SocketAddr) -> (bool, Option<TcpStream>) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (false, None);
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    if s.write_all(get("/", "").as_bytes()).is_err() {
        return (false, None);
    }
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200") => (true, Some(s)),
        _ => (false, None),
    }
}

#[test]
fn connection_limit_rejects_the_same_connections() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-conn");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 1k expire 30s store conn_cur,conn_cnt,conn_rate(10s),sess_cnt\n\
                 \x20 tcp-request connection track-sc0 src\n\
                 \x20 tcp-request connection reject if { sc_conn_cur(0) gt 2 }\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr);
    let (ours, theirs) = side_by_side("stick-conn", &config, front, |addr| {
        let mut held = Vec::new();
        let mut served = Vec::new();
        for _ in 0..4 {
            let (ok, conn) = open_served(addr);
            served.push(ok);
            held.extend(conn);
        }
        // One held connection closes: a new one gets its place.
        held.remove(0);
        std::thread::sleep(Duration::from_millis(300));
        served.push(open_served(addr).0);
        drop(held);
        std::thread::sleep(Duration::from_millis(300));
        let table = cli(&socket, "show table fe");
        (served, masked(&table, 25_000..=30_000))
    });
    assert_eq!(ours.0, [true, true, false, false, true]);
    assert_eq!(
        ours.1,
        [
            "# table: fe, type: ip, size:1024, used:1",
            "0x?: key=127.0.0.1 use=0 exp=? conn_cnt=5 conn_rate(10000)=5 conn_cur=0 sess_cnt=3"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A string table keyed by the `x-user` header, with gpc0 counted by an action and errors.
fn user_table(size: &str, expire: &str) -> String {
    format!(
        "  stick-table type string len 16 size {size} expire {expire} store gpc0,http_req_cnt,http_err_cnt,http_req_rate(10s)\n\
         \x20 http-request track-sc1 req.hdr(x-user)\n\
         \x20 http-request sc-inc-gpc0(1) if {{ path /count }}\n\
         \x20 http-request deny deny_status 403 if {{ sc_get_gpc0(1) gt 1 }}\n"
    )
}

fn user(addr: SocketAddr, name: &str, path: &str) -> u16 {
    status(addr, path, &format!("x-user: {name}\r\n"))
}

#[test]
fn lru_trashes_the_least_recently_used_entry() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-lru");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = http_config(
        front,
        &socket.display().to_string(),
        &user_table("2", "30s"),
        server.addr,
    );
    let (ours, theirs) = side_by_side("stick-lru", &config, front, |addr| {
        // Each request once the one before has ended in the proxy too: an entry still in
        // use (its stream not yet ended when the client has its answer) is not trashed, and
        // HAProxy would then refuse carol instead of trashing bob.
        let mut statuses = Vec::new();
        for (name, path) in [
            ("alice", "/count"),
            ("bob", "/"),
            // alice's gpc0 is 2 now: denied, as after.
            ("alice", "/count"),
            ("alice", "/"),
            // The table is full: bob, the least recently used, goes.
            ("carol", "/"),
        ] {
            statuses.push(user(addr, name, path));
            settle();
        }
        settle();
        let table = masked(&cli(&socket, "show table fe"), 25_000..=30_000);
        let filtered = masked(
            &cli(&socket, "show table fe data.gpc0 gt 0"),
            25_000..=30_000,
        );
        let one = masked(&cli(&socket, "show table fe key carol"), 25_000..=30_000);
        let missing = cli(&socket, "show table fe key bob");
        let cleared = cli(&socket, "clear table fe key alice");
        let after = masked(&cli(&socket, "show table fe"), 25_000..=30_000);
        let set = cli(&socket, "set table fe key dave data.gpc0 7");
        let with_set = masked(&cli(&socket, "show table fe key dave"), 25_000..=30_000);
        let errors = [
            cli(&socket, "show table nope"),
            cli(&socket, "show table fe data.nope gt 1"),
            cli(&socket, "show table fe data.gpc0 xx 1"),
            cli(&socket, "show table fe data.conn_cur gt 0"),
            cli(&socket, "set table fe key erin data.conn_cur 1"),
            cli(&socket, "set table fe key 0123456789abcdefXYZ data.gpc0 1"),
            masked(&cli(&socket, "show table fe"), 25_000..=30_000).join("\n"),
        ];
        (
            statuses, table, filtered, one, missing, cleared, after, set, with_set, errors,
        )
    });
    assert_eq!(ours.0, [200, 200, 403, 403, 200]);
    assert_eq!(
        ours.1,
        [
            "# table: fe, type: string, size:2, used:2",
            "0x?: key=alice use=0 exp=? gpc0=2 http_req_cnt=3 http_req_rate(10000)=3 http_err_cnt=2",
            "0x?: key=carol use=0 exp=? gpc0=0 http_req_cnt=1 http_req_rate(10000)=1 http_err_cnt=0"
        ]
    );
    assert_eq!(ours.2.len(), 2);
    assert_eq!(ours.3.len(), 2);
    assert_eq!(ours.4, "\n");
    assert_eq!(ours.6.len(), 2);
    assert!(ours.8[1].contains("gpc0=7"), "{:?}", ours.8);
    assert_eq!(ours.9[0], "No such table\n\n");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn entries_expire() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-expire");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = http_config(
        front,
        &socket.display().to_string(),
        &user_table("10", "1s"),
        server.addr,
    );
    let (ours, theirs) = side_by_side("stick-expire", &config, front, |addr| {
        user(addr, "alice", "/");
        user(addr, "bob", "/");
        settle();
        let before = masked(&cli(&socket, "show table fe"), 500..=1_000);
        std::thread::sleep(Duration::from_millis(1_500));
        (before, cli(&socket, "show table fe"))
    });
    assert_eq!(ours.0.len(), 3);
    assert_eq!(ours.1, "# table: fe, type: string, size:10, used:0\n\n");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn configuration_errors_are_haproxys() {
    let dir = temp_dir("stick-errors");
    // The lines in frontend `f`, and whether the configuration is refused (else warned about).
    let cases = [
        ("  stick-table type ip size 10 store foo\n", true),
        ("  stick-table type ip expire 10s\n", true),
        ("  stick-table type ip size 1k store http_req_rate\n", true),
        ("  stick-table type foo size 1k\n", true),
        (
            "  stick-table type ip size 1k\n  http-request track-sc0 src table nope\n",
            true,
        ),
        ("  http-request track-sc0 src\n", true),
        (
            "  stick-table type ip size 1k\n  stick-table type ip size 2k\n",
            true,
        ),
        ("  stick-table type ip size 1k\n  stick on src\n", false),
        ("  stick-table type ip size 0\n", true),
        ("  stick-table type ip size 10x\n", true),
        ("  stick-table type ip size 10 store gpt0(10s)\n", true),
        (
            "  stick-table type ip size 10 store http_req_rate(10s\n",
            true,
        ),
        ("  stick-table type ip size 10 store gpc0, conn_cnt\n", true),
        ("  stick-table type ip size 10 peers nope\n", true),
        ("  stick-table type string size 10 len 5\n", true),
        ("  stick-table type string len 0 size 10\n", true),
        ("  stick-table type ip size 10 expire 30d\n", true),
        ("  stick-table type ip size 10 expire 10x\n", true),
        (
            "  stick-table type ip size 1k\n  tcp-request connection track-sc3 src\n",
            true,
        ),
    ];
    for (i, (lines, refused)) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{lines}  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        assert_eq!(ours.0 != 0, *refused, "case {i}: {lines} {ours:?}");
        assert!(!ours.1.is_empty(), "case {i}: {lines}");
        if std::path::Path::new(hapx_tests::proxy_rules::HAPROXY).exists() {
            assert_eq!(ours, theirs, "case {i}: {lines}");
        }
    }
    // Not in a defaults section.
    let file = dir.join("defaults.cfg");
    let text = format!(
        "defaults\n  mode http\n  stick on src\n{TIMEOUTS}backend b\n  server s 127.0.0.1:1\n"
    );
    std::fs::write(&file, text).expect("writing the configuration");
    let [ours, theirs] = check_both(&file);
    assert_ne!(ours.0, 0);
    assert_eq!(
        ours.1,
        ["ALERT: parsing [".to_string()
            + &file.display().to_string()
            + ":3] : 'stick' not allowed in 'defaults' section."]
    );
    if std::path::Path::new(hapx_tests::proxy_rules::HAPROXY).exists() {
        assert_eq!(ours, theirs);
    }
}

/// The server that answered a request for `user` (the echo server's first line).
fn served_by(addr: SocketAddr, user: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = get("/", &format!("x-user: {user}\r\nconnection: close\r\n"));
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    read_response(&mut BufReader::new(s))
        .map(|r| r.body.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn stick_on_keeps_clients_on_their_server() {
    let (s1, s2) = (EchoServer::start("s1"), EchoServer::start("s2"));
    let dir = temp_dir("stick-on");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  balance roundrobin\n\
         \x20 stick-table type string len 32 size 1k expire 30s\n\
         \x20 stick on req.hdr(x-user)\n\
         \x20 server s1 {}\n  server s2 {}\n",
        socket.display(),
        s1.addr,
        s2.addr
    );
    let users = ["ann", "bob", "cat", "dan", "eve"];
    let (ours, theirs) = side_by_side("stick-on", &config, front, |addr| {
        let first: Vec<String> = users.iter().map(|u| served_by(addr, u)).collect();
        // Later, in another order: each client goes back to its server.
        std::thread::sleep(Duration::from_millis(300));
        let again: Vec<String> = users.iter().rev().map(|u| served_by(addr, u)).collect();
        settle();
        let table = masked(&cli(&socket, "show table be"), 25_000..=30_000);
        // A server in maintenance: its clients are balanced again (and stored anew).
        cli(&socket, "disable server be/s1");
        let moved: Vec<String> = users.iter().map(|u| served_by(addr, u)).collect();
        (first, again, table, moved)
    });
    let (first, again, _, moved) = &ours;
    let back: Vec<String> = again.iter().rev().cloned().collect();
    assert_eq!(*first, back);
    assert!(first.contains(&"s1".to_string()) && first.contains(&"s2".to_string()));
    assert!(moved.iter().all(|s| s == "s2"), "{moved:?}");
    assert_eq!(ours.2.len(), 6);
    assert!(
        ours.2[1].ends_with("server_id=1 server_key=s1")
            || ours.2[1].ends_with("server_id=2 server_key=s2"),
        "{:?}",
        ours.2
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn stick_on_src_in_tcp_mode_keeps_the_client_on_its_server() {
    use hapx_tests::proxy::{NamedServer, ask};
    use std::net::Ipv4Addr;
    let hold = Duration::from_millis(50);
    let (a, b) = (
        NamedServer::start("a", Ipv4Addr::LOCALHOST, hold),
        NamedServer::start("b", Ipv4Addr::LOCALHOST, hold),
    );
    let dir = temp_dir("stick-tcp");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         listen l\n  bind {front}\n  balance roundrobin\n\
         \x20 stick-table type ip size 10 expire 30s\n  stick on src\n\
         \x20 server a 127.0.0.1:{}\n  server b 127.0.0.1:{}\n",
        socket.display(),
        a.port(),
        b.port()
    );
    let (ours, theirs) = side_by_side("stick-tcp", &config, front, |addr| {
        let names: Vec<String> = (0..4).map(|_| ask(addr)).collect();
        settle();
        let table = masked(&cli(&socket, "show table l"), 25_000..=30_000);
        (names, table)
    });
    assert_eq!(ours.0, ["a", "a", "a", "a"]);
    assert_eq!(
        ours.1,
        [
            "# table: l, type: ip, size:10, used:1",
            "0x?: key=127.0.0.1 use=0 exp=? server_id=1 server_key=a"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A kept-alive client connection: requests one after the other on it.
struct KeptAlive {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl KeptAlive {
    fn open(addr: SocketAddr) -> KeptAlive {
        let stream = TcpStream::connect(addr).expect("connecting to the proxy");
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let reader = BufReader::new(stream.try_clone().expect("cloning the connection"));
        KeptAlive { stream, reader }
    }

    /// The status of a request for `path` and the values of its response's `x-` headers
    /// (0: no response).
    fn status(&mut self, path: &str) -> (u16, Vec<String>) {
        if self.stream.write_all(get(path, "").as_bytes()).is_err() {
            return (0, Vec::new());
        }
        read_response(&mut self.reader).map_or((0, Vec::new()), |r| {
            let x = r.headers.into_iter().filter(|(n, _)| n.starts_with("x-"));
            (r.status, x.map(|(n, v)| format!("{n}: {v}")).collect())
        })
    }
}

/// The entry lines of `show table fe` (expiry checked against 30s and masked).
fn entries(socket: &std::path::Path) -> Vec<String> {
    masked(&cli(socket, "show table fe"), 25_000..=30_000)
        .into_iter()
        .skip(1)
        .collect()
}

#[test]
fn session_and_request_tracking_of_one_slot_count_once() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-levels");
    let socket = dir.join("stats.sock");
    let front = front();
    // The slot tracked at connection level is taken for the request rules: HAProxy's
    // `http-request track-sc0` then does nothing (and nothing counts twice).
    let lines = "  stick-table type ip size 100 expire 30s store conn_cur,conn_cnt,sess_cnt,http_req_cnt,http_err_cnt\n\
                 \x20 tcp-request connection track-sc0 src\n\
                 \x20 http-request track-sc0 src\n\
                 \x20 http-request return status 200 if { path /local }\n\
                 \x20 http-request deny deny_status 403 if { path /deny }\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr);
    let (ours, theirs) = side_by_side("stick-levels", &config, front, |addr| {
        let mut c = KeptAlive::open(addr);
        let statuses: Vec<u16> = ["/", "/", "/deny", "/local"]
            .iter()
            .map(|p| c.status(p).0)
            .collect();
        settle();
        let open = entries(&socket);
        drop(c);
        // Refused before any request: a connection closed at once, and a malformed request.
        drop(TcpStream::connect(addr));
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(3))).ok();
            s.write_all(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n").ok();
            let _ = s.read(&mut [0u8; 256]);
        }
        settle();
        (statuses, open, entries(&socket))
    });
    assert_eq!(ours.0, [200, 200, 403, 200]);
    assert_eq!(
        ours.1,
        [
            "0x?: key=127.0.0.1 use=1 exp=? conn_cnt=1 conn_cur=1 sess_cnt=1 http_req_cnt=4 http_err_cnt=1"
        ]
    );
    assert_eq!(
        ours.2,
        [
            "0x?: key=127.0.0.1 use=0 exp=? conn_cnt=3 conn_cur=0 sess_cnt=3 http_req_cnt=6 http_err_cnt=3"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn request_trackers_end_with_each_request_and_response_rules_count() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-kept");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 100 expire 30s store conn_cur,conn_cnt,http_req_cnt,http_err_cnt,gpc0,gpt0\n\
                 \x20 http-request track-sc0 src\n\
                 \x20 http-request return status 200 if { path /local }\n\
                 \x20 http-request deny deny_status 403 if { path /deny }\n\
                 \x20 http-request redirect location /x if { path /redir }\n\
                 \x20 http-response sc-inc-gpc0(0)\n\
                 \x20 http-response sc-set-gpt0(0) 7\n\
                 \x20 http-response set-header x-gpc0 %[sc0_get_gpc0]\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr);
    let (ours, theirs) = side_by_side("stick-kept", &config, front, |addr| {
        let mut c = KeptAlive::open(addr);
        // After each request on the kept connection: its response, and the entry (no longer
        // in use once the request is over, however it was answered).
        let seen: Vec<_> = ["/", "/local", "/redir", "/deny", "/"]
            .iter()
            .map(|p| {
                let answer = c.status(p);
                settle();
                (answer, entries(&socket))
            })
            .collect();
        drop(c);
        settle();
        (seen, entries(&socket))
    });
    let statuses: Vec<u16> = ours.0.iter().map(|((s, _), _)| *s).collect();
    assert_eq!(statuses, [200, 200, 302, 403, 200]);
    assert_eq!(ours.0[0].0.1, ["x-gpc0: 1"]);
    assert_eq!(
        ours.0[0].1,
        [
            "0x?: key=127.0.0.1 use=0 exp=? gpt0=7 gpc0=1 conn_cnt=1 conn_cur=0 http_req_cnt=1 http_err_cnt=0"
        ]
    );
    assert_eq!(
        ours.1,
        [
            "0x?: key=127.0.0.1 use=0 exp=? gpt0=7 gpc0=2 conn_cnt=5 conn_cur=0 http_req_cnt=5 http_err_cnt=1"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn sessions_count_once_their_tls_handshake_is_over() {
    use hapx_tests::proxy_tls::{ClientHello, TlsClient, site_certificate};
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-tls");
    let socket = dir.join("stats.sock");
    let crt = dir.join("site.pem");
    site_certificate(&crt, &["site.example"], false);
    let front = front();
    let lines = "  stick-table type ip size 100 expire 30s store conn_cur,conn_cnt,sess_cnt,http_req_cnt\n\
                 \x20 tcp-request connection track-sc0 src\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr).replace(
        &format!("bind {front}\n"),
        &format!("bind {front} ssl crt {}\n", crt.display()),
    );
    let (ours, theirs) = side_by_side("stick-tls", &config, front, |addr| {
        // Not TLS: the handshake fails, no session.
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(3))).ok();
            s.write_all(get("/", "").as_bytes()).ok();
            let _ = s.read(&mut [0u8; 256]);
        }
        settle();
        let failed = entries(&socket);
        let mut tls = TlsClient::connect(addr, &ClientHello::default()).expect("a handshake");
        let answer = tls.send_and_read(get("/", "connection: close\r\n").as_bytes());
        let status = answer.map(|a| String::from_utf8_lossy(&a[..a.len().min(12)]).into_owned());
        drop(tls);
        settle();
        (failed, status, entries(&socket))
    });
    assert_eq!(
        ours.0,
        ["0x?: key=127.0.0.1 use=0 exp=? conn_cnt=1 conn_cur=0 sess_cnt=0 http_req_cnt=0"]
    );
    assert_eq!(ours.1.as_deref(), Ok("HTTP/1.1 200"));
    assert_eq!(
        ours.2,
        ["0x?: key=127.0.0.1 use=0 exp=? conn_cnt=2 conn_cur=0 sess_cnt=1 http_req_cnt=1"]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn table_commands_answer_as_haproxy() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-cli");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = http_config(
        front,
        &socket.display().to_string(),
        "  stick-table type integer size 10 store gpc0\n",
        server.addr,
    )
    .replace(
        "frontend fe\n",
        "backend ipt\n  stick-table type ip size 10 store gpc0,server_id\nfrontend fe\n",
    );
    let commands = [
        "show table",
        "clear table",
        "set table",
        "set table fe",
        "set table fe key",
        "set table fe data.gpc0 1",
        "clear table fe key",
        "clear table fe foo",
        "show table fe key",
        "show table fe foo",
        "set table fe key -1 data.gpc0 3",
        "set table fe key 4294967296 data.gpc0 3",
        "set table fe key abc data.gpc0 3",
        "set table fe key 5x data.gpc0 2",
        "set table fe key 1 data.gpc0 -1",
        "set table fe key 2 data.gpc0 99999999999",
        "set table fe key 3 data.gpc0 1x",
        "set table ipt key 1.2.3 data.gpc0 1",
        "set table ipt key 1.2.3.4 data.server_id -1",
        "show table ipt key 1.2.3",
        "show table ipt key 1.2.3.9",
        "show table ipt key nope",
        "show table fe",
        "show table ipt",
    ];
    let (ours, theirs) = side_by_side("stick-cli", &config, front, |_| {
        commands
            .iter()
            .map(|c| {
                let answer = cli(&socket, c);
                // Entry pointers differ from run to run.
                let lines: Vec<String> = answer
                    .lines()
                    .map(|l| match l.split_once(": key=") {
                        Some((_, rest)) => format!("0x?: key={rest}"),
                        None => l.to_string(),
                    })
                    .collect();
                format!("{c} => {}", lines.join("|"))
            })
            .collect::<Vec<_>>()
    });
    let expect = |c: &str, a: &str| {
        assert!(ours.contains(&format!("{c} => {a}")), "{c}: {ours:#?}");
    };
    expect(
        "show table",
        "# table: fe, type: integer, size:10, used:0|# table: ipt, type: ip, size:10, used:0|",
    );
    expect(
        "clear table",
        "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>|",
    );
    expect("show table fe key", "Key value expected|");
    expect("set table fe key -1 data.gpc0 3", "Invalid key|");
    expect(
        "show table fe",
        "# table: fe, type: integer, size:10, used:4|0x?: key=1 use=0 exp=0 gpc0=4294967295|0x?: key=2 use=0 exp=0 gpc0=1215752191|0x?: key=3 use=0 exp=0 gpc0=0|0x?: key=5 use=0 exp=0 gpc0=2|",
    );
    expect(
        "show table ipt key 1.2.3",
        "# table: ipt, type: ip, size:10, used:2|0x?: key=1.2.3.0 use=0 exp=0 server_id=0 gpc0=1|",
    );
    expect(
        "show table ipt",
        "# table: ipt, type: ip, size:10, used:2|0x?: key=1.2.3.0 use=0 exp=0 server_id=0 gpc0=1|0x?: key=1.2.3.4 use=0 exp=0 server_id=-1 gpc0=0|",
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A connection to `addr` from loopback address `src`, its request answered (kept open).
fn tracked_from(addr: SocketAddr, src: [u8; 4]) -> Option<KeptAlive> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket
        .bind(&SocketAddr::from((src, 0)).into())
        .and_then(|()| socket.connect(&addr.into()))
        .ok()?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let reader = BufReader::new(stream.try_clone().ok()?);
    let mut c = KeptAlive { stream, reader };
    (c.status("/").0 == 200).then_some(c)
}

#[test]
fn a_full_table_keeps_entries_tracked_past_their_expiry() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-full");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 2 expire 1s store conn_cur,gpc0\n\
                 \x20 tcp-request connection track-sc0 src\n\
                 \x20 http-request sc-inc-gpc0(0)\n\
                 \x20 http-request return status 200 if { always_true }\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr);
    let (ours, theirs) = side_by_side("stick-full", &config, front, |addr| {
        let a = tracked_from(addr, [127, 0, 0, 2]);
        let b = tracked_from(addr, [127, 0, 0, 3]);
        // Both outlive the table's expiry while tracked, then the first ends: the next
        // key finds the least recently used entry (the second, tracked) and no room.
        std::thread::sleep(Duration::from_millis(1200));
        let held = masked(&cli(&socket, "show table fe"), 0..=0);
        drop(a);
        settle();
        let d = tracked_from(addr, [127, 0, 0, 5]);
        settle();
        let after = masked(&cli(&socket, "show table fe"), 0..=1000);
        drop((b, d));
        (held, after)
    });
    assert_eq!(
        ours.1,
        [
            "# table: fe, type: ip, size:2, used:2",
            "0x?: key=127.0.0.2 use=0 exp=? gpc0=1 conn_cur=0",
            "0x?: key=127.0.0.3 use=1 exp=? gpc0=1 conn_cur=1"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Byte counters of an entry tracked by `http-request track-sc0`: each request's bytes (as
/// HAProxy counts them at the end of each stream: the request head and body in, the
/// response out) go into the counts and rates, which the fetches read on the next request
/// (`sc0_kbytes_in`, `sc0_bytes_out_rate`, `src_kbytes_out` ...) and `show table` shows.
#[test]
fn byte_counters_count_each_request_as_haproxy() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-bytes");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 100 expire 30s store bytes_in_cnt,bytes_out_cnt,bytes_in_rate(10s),bytes_out_rate(10s)\n\
                 \x20 http-request track-sc0 src\n\
                 \x20 http-request set-header x-counts \"%[sc0_kbytes_in] %[sc0_kbytes_out] %[sc0_bytes_in_rate] %[sc0_bytes_out_rate] %[src_kbytes_in] %[src_bytes_out_rate] %[sc_kbytes_out(0)] %[sc_bytes_in_rate(0)]\"\n";
    let config = http_config(front, &socket.display().to_string(), lines, server.addr);
    let (ours, theirs) = side_by_side("stick-bytes", &config, front, |addr| {
        let mut c = KeptAlive::open(addr);
        let mut counts = Vec::new();
        for size in [10, 1500, 700, 4000, 0] {
            let path = format!("/{}", "a".repeat(size));
            if c.stream.write_all(get(&path, "").as_bytes()).is_err() {
                break;
            }
            let r = read_response(&mut c.reader);
            counts.push(r.and_then(|r| r.forwarded("x-counts").map(String::from)));
        }
        // A POST's body counts in too.
        let body = "b".repeat(2500);
        let post = format!(
            "POST /p HTTP/1.1\r\nhost: test.example\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        c.stream.write_all(post.as_bytes()).ok();
        let _ = read_response(&mut c.reader);
        c.stream.write_all(get("/", "").as_bytes()).ok();
        counts.push(
            read_response(&mut c.reader).and_then(|r| r.forwarded("x-counts").map(String::from)),
        );
        settle();
        (counts, entries(&socket))
    });
    let (counts, table) = &ours;
    // Sound on its own: nothing counted before the first request ends, then kilobytes grow.
    assert_eq!(counts[0].as_deref(), Some("0 0 0 0 0 0 0 0"), "{counts:?}");
    assert!(counts.iter().all(Option::is_some), "{counts:?}");
    let kin = |i: usize| -> u64 {
        counts[i]
            .as_deref()
            .and_then(|c| c.split(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert!(kin(4) >= 6 && kin(5) >= kin(4) + 2, "{counts:?}");
    assert_eq!(table.len(), 1, "{table:?}");
    assert!(table[0].contains(" bytes_in_cnt="), "{table:?}");
    if let Some(theirs) = theirs {
        assert_eq!(&ours, &theirs);
    }
}

/// `show table l` once no entry is in use any more (the proxy saw the connection end and
/// counted its bytes; within 5 seconds, even on a loaded machine).
fn ended(socket: &std::path::Path) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let table = masked(&cli(socket, "show table l"), 25_000..=30_000);
        if std::time::Instant::now() > deadline || !table.iter().any(|l| l.contains(" use=1")) {
            return table;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `tcp-request content track-sc0` in TCP mode: the connection counts when the content
/// rules track it, and its bytes in each direction once it ends; fetches of the entry
/// (`sc0_conn_cnt`, `src_kbytes_out`) decide as in HAProxy.
#[test]
fn tcp_content_tracking_counts_connections_and_bytes_as_haproxy() {
    use hapx_tests::proxy::NamedServer;
    use std::net::Ipv4Addr;
    let a = NamedServer::start("a", Ipv4Addr::LOCALHOST, Duration::from_millis(300));
    let dir = temp_dir("stick-tcp-content");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         listen l\n  bind {front}\n\
         \x20 stick-table type ip size 10 expire 30s store conn_cnt,conn_cur,bytes_in_cnt,bytes_out_cnt,bytes_in_rate(10s),bytes_out_rate(10s)\n\
         \x20 tcp-request inspect-delay 1s\n\
         \x20 tcp-request content track-sc0 src\n\
         \x20 tcp-request content reject if {{ sc0_conn_cnt gt 4 }}\n\
         \x20 tcp-request content reject if {{ src_kbytes_out ge 3 }}\n\
         \x20 server a {}\n",
        socket.display(),
        a.addr
    );
    let (ours, theirs) = side_by_side("stick-tcp-content", &config, front, |addr| {
        let mut echoed = Vec::new();
        let mut tables = Vec::new();
        // The refused connections send nothing: HAProxy counts what a refused connection
        // sent if it came before the rule refused it, which is a race of its own.
        for size in [100, 1200, 2000, 0, 0, 0] {
            let Ok(mut c) = TcpStream::connect(addr) else {
                echoed.push(0);
                continue;
            };
            c.set_read_timeout(Some(Duration::from_secs(3))).ok();
            c.write_all(&vec![b'x'; size]).ok();
            // The server's name line and the echo, until it closes after its hold.
            let mut got = Vec::new();
            let _ = c.read_to_end(&mut got);
            echoed.push(got.len());
            drop(c);
            tables.push(ended(&socket));
        }
        (echoed, tables)
    });
    let (echoed, tables) = &ours;
    assert_eq!(echoed[..3], [102, 1202, 2002], "{echoed:?}");
    assert_eq!(
        tables[0][1],
        "0x?: key=127.0.0.1 use=0 exp=? conn_cnt=1 conn_cur=0 bytes_in_cnt=100 bytes_in_rate(10000)=100 bytes_out_cnt=102 bytes_out_rate(10000)=102"
    );
    // Over 3 kB sent back: the next connection is refused.
    assert_eq!(echoed[3], 0, "{echoed:?}");
    if let Some(theirs) = theirs {
        assert_eq!(&ours, &theirs);
    }
}
