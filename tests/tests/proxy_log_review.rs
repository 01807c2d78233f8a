//! Log lines that review round 14 found unlike HAProxy 2.6.12's, hapx-proxy beside HAProxy on
//! the same configuration and traffic:
//!
//! - an upgraded HTTP/1 stream (a `101 Switching Protocols`) logs how its tunnel ended, as a
//!   TCP session does: `cD--` at `timeout tunnel`, `sD--` when the client ended its side and
//!   the server stays silent, `CD--` when the client goes while the server sends;
//! - `capture cookie` (`%CC`) stays empty for the answers the request rules make themselves
//!   (`return`, `redirect`, `auth`, the `redirect` keyword) and for the stats page: HAProxy
//!   captures the cookie once the rules let the request through, or on their `deny` and
//!   `tarpit`, but not otherwise;
//! - a connection whose last attempt, redispatched, failed too logs `%rc` with its `+` and
//!   `%Tw` with the time until the redispatch (the first server's failed attempts), in HTTP
//!   and in TCP mode.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, Unanswering, free_port, http_raw, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, binaries, masked_timers, shape};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The next `count` log lines of frontend `frontend` (its name the line's third word), other
/// messages skipped; fewer when they stop coming (10 seconds each).
fn lines_of(syslog: &Syslog, frontend: &str, count: usize) -> Vec<String> {
    std::iter::from_fn(|| syslog.lines(1).pop())
        .filter(|line| line.split(' ').nth(2) == Some(frontend))
        .take(count)
        .collect()
}

/// Runs `config` (its log target `{syslog}`, its frontend at `{front}`) with each binary, then
/// `traffic` against it; what `traffic` made of the log, per binary (hapx-proxy first).
fn per_binary<T>(
    test: &str,
    config: &str,
    traffic: impl Fn(SocketAddr, &Syslog) -> T,
) -> Vec<(&'static str, T)> {
    let dir = temp_dir(test);
    binaries(test)
        .into_iter()
        .map(|(name, binary): (&'static str, PathBuf)| {
            let syslog = Syslog::bind();
            let front = SocketAddr::from((LO, free_port()));
            let text = config
                .replace("{syslog}", &syslog.addr.to_string())
                .replace("{front}", &front.to_string());
            let _proxy = Proxy::start_with(binary, &dir, name, &text, front, &[]);
            (name, traffic(front, &syslog))
        })
        .collect()
}

/// Asserts that every binary saw what hapx-proxy saw.
fn assert_alike<T: std::fmt::Debug + PartialEq>(seen: &[(&str, T)]) {
    if let [(_, hapx), rest @ ..] = seen {
        for (name, theirs) in rest {
            assert_eq!(hapx, theirs, "hapx-proxy, then {name}");
        }
    }
}

/// What an upgraded server does once it answered `101`.
#[derive(Debug, Clone, Copy)]
enum Upgraded {
    /// Sends back what it gets, until the proxy closes.
    Echo,
    /// Sends a byte every 50 ms, until a send fails.
    Push,
    /// Sends back what it gets until the client's end, then holds the connection open,
    /// silent (until the test ends).
    Hold,
}

/// The connections [`Upgraded::Hold`] servers hold.
static HELD: std::sync::Mutex<Vec<TcpStream>> = std::sync::Mutex::new(Vec::new());

/// A server that switches every request's connection to the protocol it asked for
/// (`upgrade: echo`), then behaves as `upgraded` says.
fn upgrading_server(upgraded: Upgraded) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding an upgrading server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || switch(conn, upgraded));
        }
    });
    addr
}

fn switch(conn: TcpStream, upgraded: Upgraded) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        line.clear();
    }
    let head = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    match upgraded {
        Upgraded::Echo | Upgraded::Hold => {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if writer.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            if matches!(upgraded, Upgraded::Hold) {
                HELD.lock().expect("the held connections").push(writer);
            }
        }
        Upgraded::Push => {
            while writer.write_all(b"x").is_ok() {
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A client upgraded through `front`: its connection once the `101` head was read.
fn upgraded_client(front: SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let request = "GET /ws HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
    conn.write_all(request.as_bytes())
        .expect("sending the upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).expect("the 101 head"), 1, "{head:?}");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    conn
}

/// A log line from its frontend on, every number masked: what ended it, not when.
fn after_date(line: &str) -> String {
    let from = line.find("] ").map_or(0, |at| at + 2);
    shape(&line[from..])
}

/// How a client upgraded through a proxy ends its tunnel.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// Sends `ping`, reads it back, then waits for the proxy's close.
    Idle,
    /// Sends `ping`, reads it back, ends its side (a FIN), then waits for the proxy's close.
    HalfClosed,
    /// Reads the server's first byte, then closes.
    Leaves,
}

/// The log line of a stream upgraded through each binary to a server that does as
/// `upgraded` says, its client as `client` says; the line's numbers masked, its flags
/// asserted to be `flags`.
fn tunnel_ended(upgraded: Upgraded, client: Client, flags: &str) -> Vec<(&'static str, String)> {
    let test = "log-review-tunnel";
    let server = upgrading_server(upgraded);
    let config = format!(
        "global\n  log {{syslog}} local0\ndefaults\n  mode http\n  log global\n  option httplog\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n  timeout tunnel 400ms\n\
         frontend fe\n  bind {{front}}\n  default_backend be\n\
         backend be\n  server s1 {server}\n"
    );
    let seen = per_binary(test, &config, |front, log| {
        let mut conn = upgraded_client(front);
        match client {
            Client::Idle | Client::HalfClosed => {
                conn.write_all(b"ping").expect("sending through the tunnel");
                let mut echoed = [0u8; 4];
                conn.read_exact(&mut echoed).expect("the echo");
                if matches!(client, Client::HalfClosed) {
                    conn.shutdown(Shutdown::Write)
                        .expect("ending the client's side");
                }
                let mut rest = Vec::new();
                let closed = conn.read_to_end(&mut rest).map(|_| rest.len());
                assert_eq!(
                    closed.ok(),
                    Some(0),
                    "closed by the proxy, nothing more sent"
                );
            }
            Client::Leaves => {
                let mut pushed = [0u8; 1];
                conn.read_exact(&mut pushed)
                    .expect("the server's first byte");
            }
        }
        drop(conn);
        lines_of(log, "fe", 1).pop().unwrap_or_default()
    });
    for (name, line) in &seen {
        assert!(
            line.contains(" 101 ") && line.contains(flags),
            "{name}: {line}"
        );
    }
    (seen.into_iter())
        .map(|(name, line)| (name, after_date(&line)))
        .collect()
}

/// An upgraded stream, idle past `timeout tunnel` after an exchange: closed then and logged
/// `cD--` (the client's side is looked at first, both sides idle as long), as HAProxy logs
/// it.
#[test]
fn an_idle_tunnel_ends_on_the_client_side() {
    assert_alike(&tunnel_ended(Upgraded::Echo, Client::Idle, " cD-- "));
}

/// An upgraded stream whose client ended its side (a FIN) and whose server stays silent:
/// the server's side times out, `sD--`, as HAProxy logs it.
#[test]
fn a_half_closed_tunnel_ends_on_the_server_side() {
    assert_alike(&tunnel_ended(Upgraded::Hold, Client::HalfClosed, " sD-- "));
}

/// An upgraded stream whose client goes while its server keeps sending: the client's
/// abort, `CD--`, as HAProxy logs it.
#[test]
fn a_tunnel_left_by_its_client_is_its_abort() {
    assert_alike(&tunnel_ended(Upgraded::Push, Client::Leaves, " CD-- "));
}

/// The words of an `httplog` line that tell how its request was answered: the server, the
/// status, the captured request cookie (`%CC`), the termination state and the request.
fn answered(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let request = line
        .split_once('"')
        .map_or("", |(_, r)| r.trim_end_matches('"'));
    let pick = [3, 5, 7, 9].map(|i| words.get(i).copied().unwrap_or("?"));
    pick.iter()
        .copied()
        .chain([request])
        .map(str::to_string)
        .collect()
}

/// `capture cookie SID`: empty for what the rules answer themselves (`return`, `redirect`,
/// `auth`, the `redirect` keyword, a backend's `return`), for the stats page and for the
/// Prometheus exporter (logged `<PROMEX>`, as HAProxy logs its service); captured
/// for a `deny`, a `tarpit` (the frontend's or the backend's) and a served request, as
/// HAProxy captures it.
#[test]
fn capture_cookie_skips_the_answers_the_rules_make() {
    let test = "log-review-capture-cookie";
    let web = EchoServer::start("web");
    let config = format!(
        "global\n  log {{syslog}} local0\ndefaults\n  mode http\n  log global\n  option httplog\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n  timeout tarpit 50ms\n\
         userlist users\n  user u insecure-password p\n\
         frontend fe\n  bind {{front}}\n  capture cookie SID len 10\n\
         \x20 stats enable\n  stats uri /stats\n\
         \x20 http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         \x20 http-request return status 201 content-type text/plain string made if {{ path /ret }}\n\
         \x20 http-request redirect location /x code 307 if {{ path /redir }}\n\
         \x20 http-request deny deny_status 403 if {{ path /deny }}\n\
         \x20 http-request tarpit deny_status 403 if {{ path /tarpit }}\n\
         \x20 http-request auth if {{ path /auth }}\n\
         \x20 redirect location /y if {{ path /legacy }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-request return status 202 if {{ path /bret }}\n\
         \x20 http-request deny if {{ path /bdeny }}\n\
         \x20 server s1 {}\n",
        web.addr
    );
    let paths = [
        "/ret", "/redir", "/auth", "/legacy", "/bret", "/stats", "/metrics", "/deny", "/tarpit",
        "/bdeny", "/served",
    ];
    let seen = per_binary(test, &config, |front, log| {
        for path in paths {
            let request = format!(
                "GET {path} HTTP/1.1\r\nhost: test\r\ncookie: SID=zz\r\nconnection: close\r\n\r\n"
            );
            let answer = http_raw(front, request.as_bytes(), Duration::from_secs(10));
            assert!(answer.starts_with("HTTP/1.1 "), "{path}: {answer:?}");
        }
        let mut lines: Vec<Vec<String>> = (lines_of(log, "fe", paths.len()).iter())
            .map(|l| answered(l))
            .collect();
        lines.sort_by(|a, b| a[4].cmp(&b[4]));
        lines
    });
    for (name, lines) in &seen {
        assert_eq!(lines.len(), paths.len(), "{name}: {lines:?}");
        for line in lines {
            let captured = ["/deny", "/tarpit", "/bdeny", "/served"]
                .iter()
                .any(|p| line[4].starts_with(&format!("GET {p} ")));
            let expected = if captured { "SID=zz" } else { "-" };
            assert_eq!(line[2], expected, "{name}: {line:?}");
        }
    }
    assert_alike(&seen);
}

/// `%Tw`, the second timer of an `httplog` line or the first of a `tcplog` one.
fn queue_timer(line: &str, timers: usize) -> Option<i64> {
    let word = line.split(' ').find(|w| {
        w.split('/').count() == timers
            && w.chars()
                .all(|c| c.is_ascii_digit() || c == '/' || c == '-')
    })?;
    let at = if timers == 5 { 1 } else { 0 };
    word.split('/').nth(at)?.parse().ok()
}

/// `retries 1` and `option redispatch` over two servers whose connections hang: the first
/// attempt times out, the retry goes to the other server and times out too. HAProxy logs
/// the retry as a redispatch (`+1`) and `%Tw` as the time until it (the first attempt's
/// `timeout connect`), in HTTP (503, `sC--`) as in TCP (`sC`).
#[test]
fn a_failed_redispatch_logs_its_plus_and_queue_time() {
    let test = "log-review-redispatch";
    let hanging = Unanswering::start();
    let tcp_front = SocketAddr::from((LO, free_port()));
    let backend = |name: &str, mode: &str| {
        format!(
            "backend {name}\n  mode {mode}\n  retries 1\n  option redispatch\n  balance roundrobin\n\
             \x20 server s1 {0}\n  server s2 {0}\n",
            hanging.addr
        )
    };
    let config = format!(
        "global\n  log {{syslog}} local0\ndefaults\n  log global\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 300ms\n\
         frontend ft\n  mode tcp\n  option tcplog\n  bind {tcp_front}\n  default_backend bt\n\
         frontend fh\n  mode http\n  option httplog\n  bind {{front}}\n  default_backend bh\n{}{}",
        backend("bt", "tcp"),
        backend("bh", "http"),
    );
    let seen = per_binary(test, &config, |front, log| {
        let request = b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";
        let answer = http_raw(front, request, Duration::from_secs(10));
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        let http = lines_of(log, "fh", 1).pop().unwrap_or_default();
        let mut conn = TcpStream::connect(tcp_front).expect("connecting to the TCP frontend");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        let mut rest = Vec::new();
        let closed = conn.read_to_end(&mut rest).map(|_| rest.len());
        assert_eq!(closed.ok(), Some(0), "closed without a server");
        let tcp = lines_of(log, "ft", 1).pop().unwrap_or_default();
        [(http, 5), (tcp, 3)]
    });
    for (name, lines) in &seen {
        for (line, timers) in lines {
            let redispatched = line.contains(" sC-- ") || line.contains(" sC ");
            assert!(redispatched && line.contains("/+1 "), "{name}: {line}");
            let waited = queue_timer(line, *timers);
            assert!(waited.is_some_and(|w| w >= 300), "{name}: %Tw in {line}");
        }
    }
    let masked: Vec<_> = (seen.iter())
        .map(|(name, lines)| {
            let lines = lines.clone().map(|(l, timers)| masked_timers(&l, timers));
            (*name, lines)
        })
        .collect();
    assert_alike(&masked);
}
