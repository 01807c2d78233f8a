//! Cookie persistence beside HAProxy 2.6: the same backends (`cookie ... insert indirect
//! nocache httponly domain`, `prefix`, `rewrite`, `insert preserve postonly`) behind
//! hapx-proxy and then HAProxy, the same requests (no cookie, a valid one, one among
//! others, an unknown one, one naming a server in maintenance, with and without `option
//! persist`, POSTs). Each response must come from the same server, with the same
//! `Set-Cookie` and `Cache-control` headers, the server must have seen the same `Cookie`
//! header, and the log lines must show the same termination state (`%tsc`, whose 3rd and
//! 4th characters are the cookie's). The requests include the cookie more than once, over
//! two Cookie headers, after a `,`, with `$` attributes and spaces around `=`; a server's
//! own cookie has a `,` after its value. A second test sends cookie-directed requests to a
//! dead server with `option persist` and `option redispatch`: they must be balanced by the
//! hash of their URI, as HAProxy's, on a map and on a ring.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Response, Syslog, read_response, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The backends compared: (cookie line, header the servers add to every response, extra
/// backend lines).
const BACKENDS: &[(&str, &str, &str)] = &[
    (
        "cookie SRV insert indirect nocache httponly domain .example.com",
        "cache-control: max-age=60\r\n",
        "",
    ),
    (
        "cookie JSESSIONID prefix",
        "set-cookie: JSESSIONID=sess42; Path=/\r\n",
        "",
    ),
    (
        "cookie SRV rewrite",
        "set-cookie: SRV=from-server, OTHER=y; Path=/\r\n",
        "",
    ),
    (
        "cookie SRV insert preserve postonly secure",
        "set-cookie: OTHER=1\r\n",
        "",
    ),
    (
        "cookie SRV insert indirect nocache",
        "",
        "  option persist\n  option redispatch\n",
    ),
];

/// The requests sent to every backend, in order: (method, URI, Cookie header; a `\n` in
/// it starts another Cookie header).
fn requests(cookie: &str) -> Vec<(&'static str, String, Option<String>)> {
    let named = |v: &str| Some(format!("{cookie}={v}"));
    vec![
        ("GET", "/one".into(), None),
        ("GET", "/two".into(), None),
        ("GET", "/three".into(), None),
        ("GET", "/four".into(), named("a")),
        ("GET", "/five".into(), Some(format!("x=1; {cookie}=b; y=2"))),
        ("GET", "/six".into(), named("unknown")),
        ("GET", "/seven".into(), named("a~session-7")),
        ("POST", "/eight".into(), None),
        ("POST", "/nine".into(), named("b")),
        ("GET", "/ten".into(), Some("other=1".into())),
        (
            "GET",
            "/11".into(),
            Some(format!("{cookie}=zz; {cookie}=b")),
        ),
        ("GET", "/12".into(), Some(format!("{cookie}=b;{cookie}=a"))),
        (
            "GET",
            "/13".into(),
            Some(format!("{cookie}=a\n{cookie}=b; y=2")),
        ),
        ("GET", "/14".into(), Some(format!("x=1, {cookie}=b"))),
        (
            "GET",
            "/15".into(),
            Some(format!("{cookie}=b; $Path=/; x=1; {cookie}=a; $Version=1")),
        ),
        (
            "GET",
            "/16".into(),
            Some(format!("a = 1 ;{cookie} = b ; c=2")),
        ),
        (
            "GET",
            "/17".into(),
            Some(format!("{cookie}=zz; {cookie}=b~sess")),
        ),
        (
            "GET",
            "/18".into(),
            Some(format!("q=\"a;b\"; {cookie}=, {cookie}=a")),
        ),
    ]
}

/// What a client saw of one response, and the Cookie header the server got.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    server: String,
    set_cookie: Vec<String>,
    cache_control: Option<String>,
    /// The Cookie headers the server got.
    forwarded_cookies: Vec<String>,
}

fn seen(r: Option<Response>) -> Seen {
    let Some(r) = r else {
        return Seen {
            server: "<no response>".into(),
            set_cookie: Vec::new(),
            cache_control: None,
            forwarded_cookies: Vec::new(),
        };
    };
    Seen {
        server: r.server().to_string(),
        set_cookie: r
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect(),
        cache_control: r.header("cache-control").map(String::from),
        forwarded_cookies: r
            .body
            .lines()
            .skip(2)
            .filter_map(|l| l.strip_prefix("cookie:"))
            .map(|v| v.trim().to_string())
            .collect(),
    }
}

fn send(front: SocketAddr, method: &str, uri: &str, cookie: Option<&str>) -> Seen {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return seen(None);
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let cookie: String = cookie
        .into_iter()
        .flat_map(|c| c.split('\n'))
        .map(|c| format!("cookie: {c}\r\n"))
        .collect();
    let body = if method == "POST" {
        "content-length: 0\r\n"
    } else {
        ""
    };
    let request = format!("{method} {uri} HTTP/1.1\r\nhost: test.example\r\n{cookie}{body}\r\n");
    conn.write_all(request.as_bytes()).ok();
    seen(read_response(&mut BufReader::new(conn)))
}

fn config(ports: &[u16], sock: &Path, syslog: SocketAddr, servers: &[Vec<EchoServer>]) -> String {
    let mut cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  option httplog\n  log {syslog} local0\n\
         \x20 log-format \"%b %s %ST %tsc\"\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n",
        sock.display()
    );
    for (k, (cookie, _, extra)) in BACKENDS.iter().enumerate() {
        let web = &servers[k];
        cfg += &format!(
            "listen p{k}\n  bind 127.0.0.1:{}\n  balance uri\n  {cookie}\n{extra}\
             \x20 server s0 {} cookie a\n  server s1 {} cookie b\n  server s2 {}\n",
            ports[k], web[0].addr, web[1].addr, web[2].addr
        );
    }
    cfg
}

/// Every request through every backend; then the same with `s0` in maintenance; and the
/// log lines of it all.
fn traffic(ports: &[u16], sock: &Path, syslog: &Syslog) -> (Vec<Vec<Seen>>, Vec<String>) {
    let mut out = Vec::new();
    let mut sent = 0;
    let mut round = |out: &mut Vec<Vec<Seen>>| {
        for (k, (cookie, _, _)) in BACKENDS.iter().enumerate() {
            let name = cookie.split_whitespace().nth(1).unwrap_or_default();
            let front = SocketAddr::from((LO, ports[k]));
            let reqs = requests(name);
            sent += reqs.len();
            out.push(
                reqs.iter()
                    .map(|(m, uri, c)| send(front, m, uri, c.as_deref()))
                    .collect(),
            );
        }
    };
    round(&mut out);
    for k in 0..BACKENDS.len() {
        cli(sock, &format!("disable server p{k}/s0"));
    }
    round(&mut out);
    // One line per request; HAProxy also logs the servers put in maintenance there. A line
    // may come after the next request's: compared sorted (each starts with its backend).
    let mut logs = Vec::new();
    while logs.len() < sent {
        let lines = syslog.lines(sent - logs.len());
        if lines.is_empty() {
            break;
        }
        let messages = lines
            .iter()
            .map(|line| line.rsplit(": ").next().unwrap_or_default().to_string());
        logs.extend(messages.filter(|line| !line.starts_with("Server ")));
    }
    logs.sort();
    (out, logs)
}

#[test]
fn persistence_cookies_behave_as_with_haproxy() {
    let servers: Vec<Vec<EchoServer>> = BACKENDS
        .iter()
        .map(|(_, extra, _)| {
            (0..3)
                .map(|i| EchoServer::start_with(&format!("web{i}"), extra))
                .collect()
        })
        .collect();
    let dir = temp_dir("cookie");
    let sock = dir.join("admin.sock");
    let ports: Vec<u16> = BACKENDS.iter().map(|_| free_port()).collect();
    // One sink: each run reads its own lines before the next one starts.
    let syslog = Syslog::bind();
    let last = SocketAddr::from((LO, ports[BACKENDS.len() - 1]));
    let cfg = config(&ports, &sock, syslog.addr, &servers);
    let (ours, theirs) = side_by_side("cookie", &cfg, last, |_| traffic(&ports, &sock, &syslog));
    // Sound on its own: a valid cookie reaches its server, with no cookie set again, and
    // `indirect` takes it out of the request.
    let (responses, logs) = &ours;
    assert_eq!(responses[0][3].server, "web0", "{:?}", responses[0][3]);
    assert!(responses[0][3].set_cookie.is_empty());
    assert_eq!(responses[0][4].forwarded_cookies, ["x=1; y=2"]);
    // Every occurrence of the cookie goes; the first naming a server counts.
    assert_eq!(responses[0][10].server, "web1");
    assert!(responses[0][10].forwarded_cookies.is_empty());
    assert_eq!(responses[0][12].forwarded_cookies, ["y=2"]);
    assert!(logs.iter().any(|l| l.ends_with("--VN")), "{logs:?}");
    let Some((their_responses, their_logs)) = theirs else {
        return;
    };
    for (k, (cookie, _, extra)) in BACKENDS.iter().enumerate() {
        for round in 0..2 {
            let at = round * BACKENDS.len() + k;
            for (i, (ours, theirs)) in responses[at].iter().zip(&their_responses[at]).enumerate() {
                let (m, uri, c) = &requests("NAME")[i];
                assert_eq!(
                    ours, theirs,
                    "{cookie} {extra:?}, round {round}, {m} {uri} cookie {c:?}"
                );
            }
        }
    }
    assert_eq!(logs, &their_logs);
}

/// Requests with `SRV=a`, the cookie of a server that is down, to a backend with `option
/// persist` and `option redispatch` balancing by URI: sent to it, they fail and are
/// redispatched, by the hash of their URI (the server it avoids left out of a map, skipped
/// on a ring), each to the server HAProxy sends it to.
#[test]
fn redispatched_cookie_requests_are_hashed_as_with_haproxy() {
    let web: Vec<EchoServer> = (0..3)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let dead = free_port();
    for hash_type in ["map-based", "consistent"] {
        let port = free_port();
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
             listen p\n  bind 127.0.0.1:{port}\n  balance uri\n  hash-type {hash_type}\n\
             \x20 cookie SRV insert indirect nocache\n  option persist\n  option redispatch\n\
             \x20 retries 1\n\
             \x20 server s0 127.0.0.1:{dead} cookie a check inter 100 fall 1 rise 1\n\
             \x20 server s1 {} cookie b\n  server s2 {} cookie c\n  server s3 {}\n",
            web[0].addr, web[1].addr, web[2].addr
        );
        let traffic = |front: SocketAddr| {
            // The first check finds s0 down.
            std::thread::sleep(Duration::from_millis(600));
            (0..16)
                .map(|i| {
                    send(
                        front,
                        "GET",
                        &format!("/item-{}", i * 7919 % 1000),
                        Some("SRV=a"),
                    )
                    .server
                })
                .collect::<Vec<_>>()
        };
        let front = SocketAddr::from((LO, port));
        let (ours, theirs) = side_by_side("cookie-redispatch", &cfg, front, traffic);
        // Sound on its own: spread by the URI, not all to one server.
        assert!(
            ours.iter().all(|s| s.starts_with("web")),
            "{hash_type}: {ours:?}"
        );
        assert!(ours.iter().any(|s| s != &ours[0]), "{hash_type}: {ours:?}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "{hash_type}");
        }
    }
}
