//! Small HTTP-mode divergences from HAProxy 2.6, each checked side by side (hapx-proxy,
//! then HAProxy, on the same configuration and requests):
//!
//! - a WebSocket handshake (`Connection: upgrade` and a last `Upgrade` naming `websocket`)
//!   without a `Sec-WebSocket-Key` of 24 characters is refused by HAProxy's h1 parser with
//!   400 (`PR`), the connection closed; other upgrades, and a plain `Upgrade: websocket`
//!   without `Connection: upgrade`, pass;
//! - the `stats auth` 401 closes the connection;
//! - `http-error` replies are rendered wherever HAProxy renders them: `monitor fail`'s 503
//!   and a frontend without a backend's 503 with the request at hand; a bad response head,
//!   a bad chunked response, a bad request body and a stalled one (502, 400, 504) with the
//!   method alone (the request went to its server); the backend's page before the
//!   frontend's. A request HAProxy's HTTP/1 layer cannot read (400, 408) gets its fixed
//!   page, whatever the configuration says;
//! - the bytes of answers no server gave (a frontend without a backend, the Prometheus
//!   exporter, an `http-response` rule's answer) count in `show stat`'s `bin`/`bout`;
//! - `%[method]` in `unique-id-format` still shows for a request a rule answered;
//! - an error reply (no backend, no server, `deny`) keeps the connection when the request's
//!   body came whole (or it had none), the body dropped; one still coming closes it;
//! - a server's WebSocket handshake answer (`Connection: upgrade`, `Upgrade: websocket`)
//!   without a `Sec-WebSocket-Accept` is a bad response: 502 `PH`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{cli, free_port, http_get, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, TIMEOUTS, side_by_side};

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// What a client sending `request` on a new connection saw: the status line of the answer
/// and whether the proxy closed the connection after it (waiting a second for the close).
fn answer(addr: SocketAddr, request: &str) -> (String, bool) {
    let mut s = TcpStream::connect(addr).expect("connecting to the proxy");
    s.write_all(request.as_bytes()).expect("sending a request");
    let until = Instant::now() + Duration::from_secs(1);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        s.set_read_timeout(Some(left)).expect("a read timeout");
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&out);
    let status = text.split("\r\n").next().unwrap_or_default().to_string();
    (status, closed)
}

/// `each` of `items` run at the same time, their results in order: each runs its own client
/// connection, independent of the others (their log lines are compared sorted), so none
/// waits for the windows of the others.
fn concurrently<I: Sync, T: Send>(items: &[I], each: impl Fn(&I) -> T + Sync) -> Vec<T> {
    thread::scope(|scope| {
        let runs: Vec<_> = (items.iter())
            .map(|item| scope.spawn(|| each(item)))
            .collect();
        (runs.into_iter())
            .map(|run| {
                run.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

#[test]
fn websocket_handshakes_without_a_valid_key_get_400() {
    let test = "websocket_handshakes_without_a_valid_key_get_400";
    let server = EchoServer::start("s1");
    let log = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {} local0 info\ndefaults\n  mode http\n  log global\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  log-format \"%ST %ts %{{+Q}}r\"\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        log.addr, server.addr
    );
    let requests = [
        // Refused: no key, a short one, an empty one; `upgrade` among other tokens; a list
        // naming `websocket`; HTTP/1.0 too.
        "GET /a HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
            .to_string(),
        format!(
            "GET /b HTTP/1.1\r\nhost: x\r\nconnection: keep-alive, Upgrade\r\nupgrade: WebSocket\r\n\
             sec-websocket-key: {}\r\n\r\n",
            &KEY[1..]
        ),
        "GET /c HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: foo, websocket\r\n\
         sec-websocket-key:\r\n\r\n"
            .to_string(),
        "GET /d HTTP/1.0\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
            .to_string(),
        // Passed: a valid key (any 24 characters, one of several keys); no `Connection:
        // upgrade`; a last `Upgrade` not naming websocket; `websocket/13` is another word.
        format!(
            "GET /e HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-key: abc\r\nsec-websocket-key: {KEY}\r\n\r\n"
        ),
        "GET /f HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-key: !!!!!!!!!!!!!!!!!!!!!!!!\r\n\r\n"
            .to_string(),
        "GET /g HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n\r\n".to_string(),
        "GET /h HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nupgrade: h2c\r\n\r\n"
            .to_string(),
        "GET /i HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket/13\r\n\r\n"
            .to_string(),
    ];
    let traffic = |addr: SocketAddr| {
        let seen: Vec<(String, bool)> = concurrently(&requests, |r| answer(addr, r));
        let mut lines = log.lines(requests.len());
        lines.sort();
        (seen, lines)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let refused = ("HTTP/1.1 400 Bad request".to_string(), true);
    assert_eq!(ours.0[..4], vec![refused; 4][..], "{:?}", ours.0);
    assert!(
        ours.0[4..]
            .iter()
            .all(|(status, closed)| status == "HTTP/1.1 200 OK" && !closed),
        "{:?}",
        ours.0
    );
    assert!(
        ours.1.contains(&"400 PR \"<BADREQ>\"".to_string()),
        "{:?}",
        ours.1
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
}

#[test]
fn the_stats_auth_401_closes_the_connection() {
    let test = "the_stats_auth_401_closes_the_connection";
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         listen st\n  bind {addr}\n  stats enable\n  stats uri /\n  stats auth a:b\n"
    );
    let traffic = |addr: SocketAddr| {
        [
            "GET / HTTP/1.1\r\nhost: x\r\n\r\n",
            // A body announced, not sent: not awaited.
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n",
        ]
        .map(|r| answer(addr, r))
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let refused = ("HTTP/1.1 401 Unauthorized".to_string(), true);
    assert_eq!(ours, [refused.clone(), refused]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
}

/// A server that reads each request head and answers it `reply` (then holds the connection
/// a second); with `reply` None it reads whatever comes and never answers.
fn scripted(reply: Option<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(reply) = reply.filter(|_| seen.windows(4).any(|w| w == b"\r\n\r\n"))
                    {
                        let _ = conn.write_all(reply);
                        thread::sleep(Duration::from_secs(1));
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The raw answer to `parts` sent on a new connection (a pause of 300 ms before each part
/// after the first), read until the proxy closes or for `wait`.
fn exchange_raw(addr: SocketAddr, parts: &[&[u8]], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connecting to the proxy");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            thread::sleep(Duration::from_millis(300));
        }
        let _ = s.write_all(part);
    }
    s.set_read_timeout(Some(wait)).ok();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn error_replies_are_rendered_where_haproxy_renders_them() {
    let test = "error_replies_are_rendered_where_haproxy_renders_them";
    let dir = temp_dir(test);
    let page = |name: &str, status: &str| {
        let path = dir.join(format!("{name}.http"));
        let text = format!("HTTP/1.0 {status}\r\ncontent-type: text/plain\r\n\r\n{name} file\n");
        std::fs::write(&path, text).expect("an error page");
        path.display().to_string()
    };
    let (fe400, fe408, fe502, fe503, fe504) = (
        page("fe400", "400 Bad Request"),
        page("fe408", "408 Request Time-out"),
        page("fe502", "502 Bad Gateway"),
        page("fe503", "503 Service Unavailable"),
        page("fe504", "504 Gateway Timeout"),
    );
    let (be400, be502, be504) = (
        page("be400", "400 Bad Request"),
        page("be502", "502 Bad Gateway"),
        page("be504", "504 Gateway Timeout"),
    );
    let bad_head = scripted(Some(b"garbage here\r\n\r\n"));
    let bad_chunk = scripted(Some(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ));
    let sink = scripted(None);
    let log = Syslog::bind();
    let (replies, files) = (front(), front());
    let backends = |suffix: &str, pages: &str| {
        format!(
            "backend bad_head{suffix}\n{pages}  server s {bad_head}\n\
             backend bad_chunk{suffix}\n{pages}  server s {bad_chunk}\n\
             backend sink{suffix}\n{pages}  server s {sink}\n"
        )
    };
    let routes = |suffix: &str| {
        format!(
            "  monitor-uri /mon\n  monitor fail if TRUE\n\
             \x20 use_backend bad_head{suffix} if {{ path /bad_head }}\n\
             \x20 use_backend bad_chunk{suffix} if {{ path /bad_chunk }}\n\
             \x20 use_backend sink{suffix} if {{ path_beg /sink }}\n"
        )
    };
    let lf = |code: u16| {
        format!(
            "  http-error status {code} content-type text/plain lf-string \"E{code} m=%[method] p=%[path] h=%[req.hdr(host)]\"\n"
        )
    };
    let config = format!(
        "global\n  log {} local0 info\n\
         defaults\n  mode http\n  log global\n  log-format \"%ft %b %ST %ts %B %{{+Q}}r\"\n\
         \x20 timeout client 5s\n  timeout server 1s\n  timeout connect 1s\n  timeout http-request 1s\n\
         frontend replies\n  bind {replies}\n{}{}{}{}{}{}{}\
         frontend files\n  bind {files}\n{}\
         \x20 errorfile 400 {fe400}\n  errorfile 408 {fe408}\n  errorfile 502 {fe502}\n\
         \x20 errorfile 503 {fe503}\n  errorfile 504 {fe504}\n{}{}",
        log.addr,
        routes(""),
        lf(400),
        lf(408),
        lf(502),
        lf(503),
        lf(504),
        backends("", ""),
        routes("_files"),
        "",
        backends(
            "_files",
            &format!("  errorfile 400 {be400}\n  errorfile 502 {be502}\n  errorfile 504 {be504}\n")
        ),
    );
    const HOST: &str = "host: h.example\r\n";
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "unreadable",
            vec![format!("GET /x HTTP/1.1\r\n{HOST}bad header\r\n\r\n").into()],
        ),
        (
            "too slow",
            vec![format!("GET /x HTTP/1.1\r\n{HOST}").into()],
        ),
        (
            "monitor",
            vec![format!("GET /mon HTTP/1.1\r\n{HOST}\r\n").into()],
        ),
        (
            "no backend",
            vec![format!("GET /none HTTP/1.1\r\n{HOST}connection: close\r\n\r\n").into()],
        ),
        (
            "bad head",
            vec![format!("GET /bad_head HTTP/1.1\r\n{HOST}connection: close\r\n\r\n").into()],
        ),
        (
            "bad chunk",
            vec![format!("GET /bad_chunk HTTP/1.1\r\n{HOST}connection: close\r\n\r\n").into()],
        ),
        (
            "bad request body",
            vec![
                format!("POST /sink HTTP/1.1\r\n{HOST}transfer-encoding: chunked\r\n\r\n").into(),
                b"zz\r\n".to_vec(),
            ],
        ),
        (
            "stalled request body",
            vec![format!("POST /sink HTTP/1.1\r\n{HOST}content-length: 10\r\n\r\nabc").into()],
        ),
    ];
    let runs: Vec<_> = [replies, files]
        .into_iter()
        .flat_map(|addr| cases.iter().map(move |case| (addr, case)))
        .collect();
    let traffic = |_: SocketAddr| {
        let seen = concurrently(&runs, |(addr, (name, parts))| {
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let answer = exchange_raw(*addr, &parts, Duration::from_secs(4));
            format!("{name}: {answer}")
        });
        // Every case is logged but the monitor's.
        let mut lines = log.lines(2 * (cases.len() - 1));
        lines.sort();
        (seen, lines)
    };
    let (ours, theirs) = side_by_side(test, &config, replies, traffic);
    let expect = [
        "monitor: HTTP/1.1 503 Service Unavailable\r\ncontent-length: 29\r\ncontent-type: text/plain\r\n\r\nE503 m=GET p=/mon h=h.example",
        "no backend: HTTP/1.1 503 Service Unavailable\r\ncontent-length: 30\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nE503 m=GET p=/none h=h.example",
        "bad chunk: HTTP/1.1 502 Bad Gateway or Proxy Error\r\ncontent-length: 16\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nE502 m=GET p= h=",
        "stalled request body: HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 17\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nE504 m=POST p= h=",
    ];
    for line in expect {
        assert!(
            ours.0.iter().any(|s| s == line),
            "{line:?} in {:#?}",
            ours.0
        );
    }
    let files_seen = &ours.0[cases.len()..];
    assert!(files_seen[0].ends_with(
        "<h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
    ));
    assert!(files_seen[3].ends_with("fe503 file\n"), "{}", files_seen[3]);
    for at in [4, 5, 6, 7] {
        assert!(
            files_seen[at].contains("\r\n\r\nbe"),
            "the backend's page: {}",
            files_seen[at]
        );
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
}

/// `show stat`'s `bin` and `bout` of `rows` (proxy, server) after `requests` (port, path),
/// and the logged size of each answer (as HAProxy counts a message: its start line's parts
/// and 20 bytes, each header's name and value but `connection`, one byte, the body).
fn counted_bytes(
    socket: &Path,
    requests: &[(SocketAddr, &str)],
    rows: &[(&str, &str)],
) -> (Vec<u64>, Vec<(String, String)>) {
    let sizes = requests
        .iter()
        .map(|(addr, path)| {
            let (_, head, body) = http_get(*addr, path, None);
            let mut lines = head.split("\r\n");
            // Its three parts, without the two spaces between them.
            let start = lines.next().unwrap_or_default().len().saturating_sub(2);
            let headers: usize = lines
                .filter_map(|l| l.split_once(':'))
                .filter(|(n, _)| !n.eq_ignore_ascii_case("connection"))
                .map(|(n, v)| n.len() + v.trim().len())
                .sum();
            (20 + start + headers + 1 + body.len()) as u64
        })
        .collect();
    let csv = cli(socket, "show stat");
    let counted = rows
        .iter()
        .map(|(proxy, server)| {
            let row = stat_row(&csv, proxy, server).expect("a stats row");
            (row["bin"].clone(), row["bout"].clone())
        })
        .collect();
    (sizes, counted)
}

#[test]
fn answers_without_a_server_count_their_bytes() {
    let test = "answers_without_a_server_count_their_bytes";
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let server = EchoServer::start("s1");
    let (none, metrics, answered) = (front(), front(), front());
    let config = format!(
        "global\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend none\n  bind {none}\n\
         frontend metrics\n  bind {metrics}\n\
         \x20 http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         frontend answered\n  bind {answered}\n\
         \x20 use_backend denied if {{ path /deny }}\n  default_backend returned\n\
         backend denied\n  http-response deny\n  server s {}\n\
         backend returned\n  http-response return status 299 content-type text/plain string \"hello there\"\n\
         \x20 server s {}\n",
        socket.display(),
        server.addr,
        server.addr,
    );
    let requests = [
        (none, "/x"),
        (metrics, "/metrics"),
        (answered, "/deny"),
        (answered, "/ret"),
    ];
    let rows = [
        ("none", "FRONTEND"),
        ("metrics", "FRONTEND"),
        ("answered", "FRONTEND"),
        ("denied", "BACKEND"),
        ("denied", "s"),
        ("returned", "BACKEND"),
        ("returned", "s"),
    ];
    let traffic = |_: SocketAddr| counted_bytes(&socket, &requests, &rows);
    let (ours, theirs) = side_by_side(test, &config, none, traffic);
    let (sizes, counted) = &ours;
    // The exporter's answer counts as it went (hapx's metrics are its own).
    assert_eq!(counted[1].1, sizes[1].to_string(), "{counted:?}");
    assert_eq!(counted[0].1, sizes[0].to_string(), "{counted:?}");
    if let Some((their_sizes, mut theirs)) = theirs {
        // HAProxy's exporter page is another one: its own size counts, as hapx's does.
        assert_eq!(theirs[1].1, their_sizes[1].to_string());
        theirs[1].1 = counted[1].1.clone();
        assert_eq!(*counted, theirs, "(hapx, HAProxy)");
    }
}

#[test]
fn the_unique_id_of_an_answered_request_shows_its_method() {
    let test = "the_unique_id_of_an_answered_request_shows_its_method";
    let server = EchoServer::start("s1");
    let log = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {} local0 info\ndefaults\n  mode http\n  log global\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  log-format \"%ID %ST %ts\"\n\
         \x20 unique-id-format %[method]-%[path]-x\n\
         \x20 http-request deny if {{ path /deny }}\n\
         \x20 http-request return status 200 if {{ path /return }}\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        log.addr, server.addr
    );
    let traffic = |addr: SocketAddr| {
        for (method, path) in [("GET", "/deny"), ("POST", "/return"), ("HEAD", "/")] {
            let request = format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            exchange_raw(addr, &[request.as_bytes()], Duration::from_secs(2));
        }
        let mut lines = log.lines(3);
        lines.sort();
        lines
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        ["GET--x 403 PR", "HEAD-/-x 200 --", "POST--x 200 LR"].map(String::from)
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
}

/// The status lines and `connection: close` headers in a raw exchange, in order.
fn statuses_and_closes(raw: &str) -> Vec<String> {
    raw.lines()
        .filter(|l| l.starts_with("HTTP/1.") || l.eq_ignore_ascii_case("connection: close"))
        .map(str::to_string)
        .collect()
}

#[test]
fn error_replies_keep_a_connection_whose_body_came_whole() {
    let test = "error_replies_keep_a_connection_whose_body_came_whole";
    let refused = free_port();
    let (none, dead, deny) = (front(), front(), front());
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend none\n  bind {none}\n\
         frontend dead\n  bind {dead}\n  default_backend be\n\
         frontend deny\n  bind {deny}\n  http-request deny\n\
         backend be\n  retries 0\n  server s1 127.0.0.1:{refused}\n"
    );
    let second: &[u8] = b"GET /second HTTP/1.1\r\nhost: x\r\n\r\n";
    let cases: [(&str, Vec<&[u8]>); 4] = [
        (
            "whole body",
            vec![b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc", second],
        ),
        (
            "empty body",
            vec![b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n", second],
        ),
        (
            "whole chunked body",
            vec![
                b"POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                second,
            ],
        ),
        // The body still coming when the answer goes: the connection closes.
        (
            "partial body",
            vec![
                b"POST /d HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\na",
                b"bcGET /second HTTP/1.1\r\nhost: x\r\n\r\n",
            ],
        ),
    ];
    let runs: Vec<_> = [none, dead, deny]
        .into_iter()
        .flat_map(|addr| cases.iter().map(move |case| (addr, case)))
        .collect();
    let traffic = |_: SocketAddr| {
        concurrently(&runs, |(addr, (name, parts))| {
            let raw = exchange_raw(*addr, parts, Duration::from_secs(1));
            (*name, statuses_and_closes(&raw))
        })
    };
    let (ours, theirs) = side_by_side(test, &config, none, traffic);
    for (at, (name, seen)) in ours.iter().enumerate() {
        let status = if at < 8 {
            "HTTP/1.1 503 Service Unavailable"
        } else {
            "HTTP/1.1 403 Forbidden"
        };
        let expect = match *name {
            "partial body" => vec![status, "connection: close"],
            _ => vec![status, status],
        };
        assert_eq!(seen, &expect, "{name} (case {at})");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
}

#[test]
fn a_websocket_response_without_an_accept_gets_502() {
    let test = "a_websocket_response_without_an_accept_gets_502";
    let bare = scripted(Some(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n",
    ));
    let accepted = scripted(Some(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
          sec-websocket-accept: abc\r\n\r\n",
    ));
    let other = scripted(Some(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n",
    ));
    let log = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {} local0 info\ndefaults\n  mode http\n  log global\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  log-format \"%b %ST %ts %{{+Q}}r\"\n\
         \x20 use_backend accepted if {{ path /accepted }}\n\
         \x20 use_backend other if {{ path /other }}\n  default_backend bare\n\
         backend bare\n  server s {bare}\n\
         backend accepted\n  server s {accepted}\n\
         backend other\n  server s {other}\n",
        log.addr
    );
    let traffic = |addr: SocketAddr| {
        let seen: Vec<Vec<String>> = concurrently(&["/bare", "/accepted", "/other"], |path| {
            let request = format!(
                "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\n\
                 upgrade: websocket\r\nsec-websocket-key: {KEY}\r\n\r\n"
            );
            let raw = exchange_raw(addr, &[request.as_bytes()], Duration::from_secs(2));
            statuses_and_closes(&raw)
        });
        let mut lines = log.lines(3);
        lines.sort();
        (seen, lines)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(ours.0[0], ["HTTP/1.1 502 Bad Gateway"], "{ours:?}");
    assert_eq!(ours.0[1], ["HTTP/1.1 101 Switching Protocols"], "{ours:?}");
    assert!(
        ours.1
            .contains(&"bare 502 PH \"GET /bare HTTP/1.1\"".to_string()),
        "{:?}",
        ours.1
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
}
