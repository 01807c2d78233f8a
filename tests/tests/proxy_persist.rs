//! Server choice overrides beside HAProxy 2.6: `use-server`, `force-persist` and
//! `ignore-persist`, with a persistence cookie (`cookie SRV insert indirect nocache`) and
//! with `stick on`, in HTTP and TCP mode. The same configuration and requests go through
//! hapx-proxy and then HAProxy: each response must come from the same server with the same
//! `Set-Cookie`, the server must have seen the same Cookie header, the log lines (`%b %s
//! %tsc`) and `show table` must be the same. The requests cover a `use-server` rule naming
//! a server that is up, in maintenance (passed over, then taken with `force-persist`), a
//! cookie under `use-server` and `ignore-persist`, and a cookie naming a server in
//! maintenance with and without `force-persist`. The configuration errors are HAProxy's.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, Response, Syslog, TIMEOUTS, check_both, client_hello, read_response, side_by_side,
};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

use hapx_tests::proxy_rules::CookieSeen as Seen;

/// What a client saw of one response, and the Cookie headers the server got.
fn seen(r: Option<Response>) -> Seen {
    Seen::of(r, str::to_string)
}

/// `GET uri` on a connection of its own, with extra header lines (CRLF each).
fn send(front: SocketAddr, uri: &str, headers: &str) -> Seen {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return seen(None);
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let request = format!("GET {uri} HTTP/1.1\r\nhost: test.example\r\n{headers}\r\n");
    conn.write_all(request.as_bytes()).ok();
    seen(read_response(&mut BufReader::new(conn)))
}

/// The requests, (URI, headers), sent before and after `s1` goes into maintenance.
const REQUESTS: &[(&str, &str)] = &[
    ("/one", ""),
    ("/two", ""),
    ("/admin/a", ""),
    ("/admin/b", "cookie: SRV=a\r\n"),
    ("/static/x.png", "cookie: SRV=a\r\n"),
    ("/static/y.png", ""),
    ("/page", "cookie: SRV=b\r\n"),
    ("/page", "x-pick: s1\r\ncookie: SRV=a\r\n"),
    ("/page", "x-pick: s1\r\n"),
    ("/page", "x-pick: s1\r\nx-tester: 1\r\n"),
    ("/page", "cookie: SRV=b\r\nx-tester: 1\r\n"),
    ("/static/z", "cookie: SRV=b\r\nx-tester: 1\r\n"),
    ("/other", "x-pick: nobody\r\ncookie: SRV=b\r\n"),
];

/// The stick backend's requests: (URI, user, extra headers).
const STICK_REQUESTS: &[(&str, &str, &str)] = &[
    ("/", "u1", ""),
    ("/", "u2", ""),
    ("/", "u1", ""),
    ("/static/a", "u1", ""),
    ("/", "u1", ""),
    ("/", "u2", "x-pick: s0\r\n"),
    ("/", "u2", ""),
    ("/", "u3", "x-pick: s1\r\n"),
    ("/", "u3", ""),
];

fn config(
    port: u16,
    stick_port: u16,
    sock: &Path,
    syslog: SocketAddr,
    web: &[EchoServer],
) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  log {syslog} local0\n  log-format \"%b %s %tsc\"\n{TIMEOUTS}\
         listen p\n  bind 127.0.0.1:{port}\n  balance uri\n  cookie SRV insert indirect nocache\n\
         \x20 acl static path_beg /static\n\
         \x20 force-persist if {{ hdr(x-tester) -m found }}\n  ignore-persist if static\n\
         \x20 use-server s2 if {{ path_beg /admin }}\n\
         \x20 use-server s1 if {{ hdr(x-pick) s1 }}\n  use-server s0 if {{ hdr(x-pick) s1 }}\n\
         \x20 server s0 {} cookie a\n  server s1 {} cookie b\n  server s2 {} cookie c\n\
         listen q\n  bind 127.0.0.1:{stick_port}\n  balance roundrobin\n\
         \x20 stick-table type string len 16 size 100\n  stick on hdr(x-user)\n\
         \x20 ignore-persist if {{ path_beg /static }}\n\
         \x20 use-server s0 if {{ hdr(x-pick) s0 }}\n  use-server s1 if {{ hdr(x-pick) s1 }}\n\
         \x20 server s0 {}\n  server s1 {}\n  server s2 {}\n",
        sock.display(),
        web[0].addr,
        web[1].addr,
        web[2].addr,
        web[0].addr,
        web[1].addr,
        web[2].addr,
    )
}

/// What one run saw: the cookie backend's responses (before and after `s1` goes into
/// maintenance), the stick backend's servers, its table, and the log lines.
type Run = (Vec<Seen>, Vec<String>, Vec<String>, Vec<String>);

fn traffic(ports: (u16, u16), sock: &Path, syslog: &Syslog) -> Run {
    let front = SocketAddr::from((LO, ports.0));
    let mut cookie = Vec::new();
    for round in 0..2 {
        if round == 1 {
            cli(sock, "disable server p/s1");
        }
        cookie.extend(REQUESTS.iter().map(|(uri, h)| send(front, uri, h)));
    }
    let front = SocketAddr::from((LO, ports.1));
    let stick: Vec<String> = STICK_REQUESTS
        .iter()
        .map(|(uri, user, h)| send(front, uri, &format!("x-user: {user}\r\n{h}")).server)
        .collect();
    let table: Vec<String> = cli(sock, "show table q")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string())
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.starts_with("exp="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let sent = 2 * REQUESTS.len() + STICK_REQUESTS.len();
    let mut logs: Vec<String> = syslog
        .lines(sent + 1)
        .into_iter()
        .filter(|l| !l.starts_with("Server "))
        .collect();
    logs.sort();
    (cookie, stick, table, logs)
}

#[test]
fn use_server_and_persistence_rules_choose_as_haproxy() {
    let web: Vec<EchoServer> = (0..3)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let dir = temp_dir("persist");
    let sock = dir.join("admin.sock");
    let ports = (free_port(), free_port());
    let syslog = Syslog::bind();
    let cfg = config(ports.0, ports.1, &sock, syslog.addr, &web);
    let last = SocketAddr::from((LO, ports.1));
    let (ours, theirs) = side_by_side("persist", &cfg, last, |_| traffic(ports, &sock, &syslog));
    let (cookie, stick, table, logs) = &ours;
    // Sound on its own: `use-server` wins over the balancer and the cookie, which it still
    // takes out; a server in maintenance is passed over unless `force-persist`.
    assert_eq!(cookie[2].server, "web2", "{:?}", cookie[2]);
    assert_eq!(cookie[3].server, "web2", "{:?}", cookie[3]);
    assert!(cookie[3].forwarded_cookies.is_empty(), "{:?}", cookie[3]);
    assert_eq!(cookie[7].server, "web1");
    let n = REQUESTS.len();
    assert_eq!(cookie[n + 8].server, "web0", "{:?}", cookie[n + 8]);
    assert_eq!(cookie[n + 9].server, "web1", "{:?}", cookie[n + 9]);
    assert_eq!(cookie[n + 10].server, "web1", "{:?}", cookie[n + 10]);
    assert_eq!(stick[5], "web0");
    assert!(!table.is_empty());
    assert!(logs.iter().any(|l| l.starts_with("p s2 --U")), "{logs:?}");
    let Some((their_cookie, their_stick, their_table, their_logs)) = theirs else {
        return;
    };
    for (i, (a, b)) in cookie.iter().zip(&their_cookie).enumerate() {
        let (uri, h) = REQUESTS[i % n];
        assert_eq!(a, b, "round {}, {uri} {h:?}", i / n);
    }
    assert_eq!(stick, &their_stick);
    assert_eq!(table, &their_table);
    assert_eq!(logs, &their_logs);
}

/// A TCP server that answers each connection with its name and closes.
fn tcp_server(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a TCP server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 256];
            conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(name.as_bytes());
        }
    });
    addr
}

/// `use-server` on what a TCP client sent (the SNI of its TLS ClientHello, the manual's
/// example), after `tcp-request inspect-delay`.
#[test]
fn use_server_picks_by_content_in_tcp_mode_as_haproxy() {
    let servers = [tcp_server("t0"), tcp_server("t1"), tcp_server("t2")];
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}listen t\n  bind 127.0.0.1:{port}\n  balance roundrobin\n\
         \x20 tcp-request inspect-delay 2s\n  tcp-request content accept if {{ req.len gt 0 }}\n\
         \x20 use-server s2 if {{ req.ssl_sni -i www.example.com }}\n\
         \x20 server s0 {}\n  server s1 {}\n  server s2 {} weight 0\n",
        servers[0], servers[1], servers[2]
    );
    let traffic = |front: SocketAddr| {
        [
            "www.example.com",
            "mail.example.com",
            "WWW.example.com",
            "x.example",
            "www",
            "a",
        ]
        .iter()
        .map(|name| {
            let Ok(mut c) = TcpStream::connect(front) else {
                return String::new();
            };
            c.set_read_timeout(Some(Duration::from_secs(5))).ok();
            c.write_all(&client_hello(name)).ok();
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        })
        .collect::<Vec<_>>()
    };
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = side_by_side("persist-tcp", &cfg, front, traffic);
    assert_eq!(ours[0], "t2");
    assert_eq!(ours[2], "t2");
    assert!(["t0", "t1"].contains(&ours[1].as_str()), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn configuration_errors_are_haproxys() {
    let dir = temp_dir("persist-check");
    let cases = [
        ("  use-server\n", true),
        ("  use-server s\n", true),
        ("  use-server s when x\n", true),
        ("  use-server nope if TRUE\n", true),
        ("  use-server s if { nosuchfetch }\n", true),
        ("  force-persist\n", true),
        ("  ignore-persist TRUE\n", true),
        ("  ignore-persist if { nosuchfetch }\n", true),
        (
            "  use-server s if TRUE\n  force-persist if TRUE\n  ignore-persist unless TRUE\n",
            false,
        ),
    ];
    for (i, (lines, refused)) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
             backend b\n{lines}  server s 127.0.0.1:1\n"
        );
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        assert_eq!(ours.0 != 0, *refused, "case {i}: {lines} {ours:?}");
        if *refused {
            assert!(!ours.1.is_empty(), "case {i}: {lines}");
        }
        if Path::new(hapx_tests::proxy_rules::HAPROXY).exists() {
            assert_eq!(ours, theirs, "case {i}: {lines}");
        }
    }
    // Not in a defaults section; ignored with a warning in a frontend.
    for (i, (section, line)) in [
        ("defaults", "  use-server s if TRUE\n"),
        ("defaults", "  force-persist if TRUE\n"),
        ("frontend", "  use-server s if TRUE\n"),
        (
            "frontend",
            "  force-persist if TRUE\n  ignore-persist if TRUE\n",
        ),
    ]
    .iter()
    .enumerate()
    {
        let text = if *section == "defaults" {
            format!("defaults\n  mode http\n{line}{TIMEOUTS}backend b\n  server s 127.0.0.1:1\n")
        } else {
            format!(
                "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{line}  default_backend b\n\
                 backend b\n  server s 127.0.0.1:1\n"
            )
        };
        let file = dir.join(format!("section{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        assert!(!ours.1.is_empty(), "{section}: {line}");
        if Path::new(hapx_tests::proxy_rules::HAPROXY).exists() {
            assert_eq!(ours, theirs, "{section}: {line}");
        }
    }
}
