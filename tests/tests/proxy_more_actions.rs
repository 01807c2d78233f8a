//! Rule actions HAProxy 2.6 runs that hapx-proxy once refused, side by side with HAProxy:
//! `set-log-level` (a line's syslog severity, or no line), `del-header -m`, `reject` and
//! `silent-drop` (what the client sees of the end, the log line, the counters), `set-nice`,
//! `set-tos` and `set-mark` (accepted, the request served as HAProxy serves it), and their
//! `-c` verdicts.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_frontend_line, exchange, get, masked_timers, shape,
    side_by_side,
};
use hapx_tests::require;

/// A UDP syslog sink that keeps each message's priority (`<PRI>`), which the harness's
/// sink drops.
struct PrioritySyslog {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl PrioritySyslog {
    fn bind() -> PrioritySyslog {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a syslog socket");
        let addr = socket.local_addr().expect("its address");
        PrioritySyslog { socket, addr }
    }

    /// The traffic lines of frontend `frontend` as `<PRI> LINE` (numbers masked), until
    /// one shows `last` (the request sent last); the others HAProxy sends (its start
    /// notices) are skipped. Fewer when they do not all come within 10 seconds.
    fn lines_until(&self, frontend: &str, last: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        let mut buf = [0u8; 8192];
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|l| !l.is_zero())
        {
            self.socket.set_read_timeout(Some(left)).expect("a timeout");
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let text = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            let Some((pri, rest)) = text.split_once('>') else {
                continue;
            };
            let Some((_, line)) = rest.split_once("]: ") else {
                continue;
            };
            if line.split(' ').nth(2) != Some(frontend) {
                continue;
            }
            let done = line.contains(last);
            // The priority stays; the line's numbers (times, ports) are masked.
            lines.push(format!("{pri}> {}", shape(&masked_timers(line, 5))));
            if done {
                break;
            }
        }
        lines
    }
}

/// `set-log-level`: `silent` leaves the request's line out, a level sends it at that
/// severity (`err` at 3: `<131>` in `local0`), from request and response rules; the last
/// rule that ran wins.
#[test]
fn set_log_level_changes_or_silences_lines_like_haproxy() {
    let test = "set_log_level_changes_or_silences_lines_like_haproxy";
    let syslog = PrioritySyslog::bind();
    let server = EchoServer::start("s1");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-log-level silent if {{ path /health }}\n\
         \x20 http-request set-log-level err if {{ path_beg /err }}\n\
         \x20 http-request set-log-level debug if {{ path /err-then-debug }}\n\
         \x20 http-request set-var(txn.notice) str(1) if {{ path /notice }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-response set-log-level notice if {{ var(txn.notice) -m found }}\n\
         \x20 server s1 {server}\n",
        log = syslog.addr,
        server = server.addr,
    );
    let paths = [
        "/health",
        "/err",
        "/ok",
        "/notice",
        "/health",
        "/err-then-debug",
        "/last",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let requests: Vec<String> = paths.iter().map(|p| get(p, "")).collect();
        let answers = exchange(a, &requests);
        let statuses: Vec<String> = answers
            .iter()
            .map(|r| r.as_ref().map_or("none".into(), |r| r.status.to_string()))
            .collect();
        (statuses, syslog.lines_until("fe", "/last"))
    });
    assert_eq!(ours.0, vec!["200"; paths.len()], "{ours:#?}");
    let priorities: Vec<&str> = ours.1.iter().map(|l| &l[..5]).collect();
    // local0 (16 * 8) with err (3), info (6), notice (5), debug (7), info.
    assert_eq!(
        priorities,
        ["<131>", "<134>", "<133>", "<135>", "<134>"],
        "{:#?}",
        ours.1
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// What `-c` says of these actions, well and badly written, as HAProxy says it.
#[test]
fn action_verdicts_read_like_haproxys() {
    let test = "action_verdicts_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let lines = [
        "http-request set-log-level silent if { path /health }",
        "http-request set-log-level err",
        "http-request set-log-level bogus",
        "http-request set-log-level",
        "http-request set-log-level info x",
        "http-response set-log-level debug",
        "http-request del-header x -m beg",
        "http-request del-header x -m foo",
        "http-request del-header x -m",
        "http-request del-header ( -m reg",
        "http-request del-header x -m reg (",
        "http-request del-header x -m str y",
        "http-request del-header x -m str if TRUE",
        "http-response del-header x- -m sub",
        "http-request reject",
        "http-request reject x",
        "http-request reject\n  http-request deny",
        "http-request silent-drop",
        "http-request silent-drop x",
        "http-request silent-drop rst-ttl 3",
        "http-request set-nice 10",
        "http-request set-nice 10000",
        "http-request set-nice x",
        "http-request set-nice",
        "http-request set-nice 1 2",
        "http-request set-tos 0x10",
        "http-request set-tos 010",
        "http-request set-tos zz",
        "http-request set-tos 12k",
        "http-request set-tos",
        "http-request set-mark 5",
        "http-request set-mark q",
        "http-response set-tos 3",
        "http-response set-mark 0x3",
        "http-response silent-drop",
        "http-response reject",
        "http-request set-src src",
        "http-request set-src",
        "http-request set-src hdr(x)",
        "http-request set-src hdr(x) y",
        "http-request set-src res.hdr(x)",
        "http-request set-src nosuch",
        "http-request early-hint link <x>",
        "http-request early-hint link",
        "http-request early-hint link a b",
        "http-request early-hint link %[nosuch]",
        "http-response early-hint link a",
        "http-request capture req.hdr(host) len 10",
        "http-request capture req.hdr(host) len 0",
        "http-request capture req.hdr(host) len x",
        "http-request capture req.hdr(host) len",
        "http-request capture req.hdr(host) len 10 x",
        "http-request capture req.hdr(host) id x",
        "http-request capture req.hdr(host) id 0",
        "http-request capture req.hdr(host) id 1\n  capture request header a len 1",
        "http-request capture req.hdr(host) id 0\n  capture request header a len 1",
        "http-request capture req.hdr(host) foo 1",
        "http-request capture res.hdr(host) len 10",
        "http-request capture nosuch len 10",
        "http-request capture req.hdr(host),lower len 10 if TRUE",
        "http-response capture res.hdr(server) id 0",
        "http-response capture res.hdr(server) id 0\n  capture response header a len 1",
        "http-response capture res.hdr(server)",
        "http-response capture res.hdr(server) id",
        "http-response capture res.hdr(server) len 3",
        "declare capture request len 5",
        "declare capture response len 5\n  http-response capture status id 0",
        "declare capture request len 5\n  http-request capture src id 0",
        "declare capture request len",
        "declare capture request len 0",
        "declare capture request len x",
        "declare capture request foo 4",
        "declare capture",
        "declare",
        "declare foo",
    ];
    for (i, line) in lines.iter().enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, &format!("  {line}"), "", "");
        assert_eq!(ours, theirs, "{line}");
    }
}

/// `del-header NAME -m METHOD`: which headers each method removes (all but `reg` ignore
/// case; `reg` sees names lower-cased), as the server sees the request.
#[test]
fn del_header_match_methods_remove_like_haproxy() {
    let test = "del_header_match_methods_remove_like_haproxy";
    let server = EchoServer::start("s1");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request del-header x-beg- -m beg\n\
         \x20 http-request del-header -end -m end\n\
         \x20 http-request del-header mid -m sub\n\
         \x20 http-request del-header ^r[0-9]$ -m reg\n\
         \x20 http-request del-header ^Q[0-9]$ -m reg\n\
         \x20 http-request del-header exact -m str\n\
         \x20 http-request del-header plain\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {server}\n",
        server = server.addr,
    );
    let headers = "x-beg-a: 1\r\nX-BEG-b: 2\r\nx-be: 3\r\na-end: 4\r\nB-END: 5\r\nend: 6\r\n\
                   amidb: 7\r\nMID: 8\r\nR1: 9\r\nr2: 10\r\nR12: 11\r\nexact: 12\r\nexactly: 13\r\n\
                   Plain: 14\r\nplainer: 15\r\nQ1: 16\r\n";
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let answers = exchange(a, &[get("/", headers)]);
        answers
            .into_iter()
            .map(|r| r.map(|r| (r.status, r.body)))
            .collect::<Vec<_>>()
    });
    let body = ours
        .first()
        .and_then(|r| r.as_ref())
        .map_or("", |r| r.1.as_str());
    let kept = [
        "x-be: 3",
        "end: 6",
        "r12: 11",
        "exactly: 13",
        "plainer: 15",
        "q1: 16",
    ];
    for kept in kept {
        assert!(body.contains(kept), "{kept} in {body}");
    }
    let gone = [
        "x-beg-a", "x-beg-b", "a-end", "b-end", "amidb", "mid:", "r1:", "r2:", "exact:",
    ];
    for gone in gone {
        assert!(!body.contains(gone), "{gone} in {body}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// What a client saw of its connection's end after its request: an answer, the end of
/// the stream, a reset, or nothing within a second (`silent-drop` sends nothing).
fn ending(addr: SocketAddr, path: &str) -> String {
    let mut client = TcpStream::connect(addr).expect("connecting to the proxy");
    client
        .write_all(get(path, "").as_bytes())
        .expect("sending the request");
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("a read timeout");
    let mut buf = [0u8; 4096];
    match client.read(&mut buf) {
        Ok(0) => "end of stream".into(),
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => "reset".into(),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            "nothing".into()
        }
        Err(e) => format!("error {:?}", e.kind()),
    }
}

/// `reject` and `silent-drop`, in the frontend's and in the backend's request rules, and a
/// response's `silent-drop`: what the client sees, the log lines (`PR--`; no status for a
/// request, the request line kept) and the denied requests of the frontend and the backend
/// (a response's drop counts there too, as HAProxy counts it).
#[test]
fn reject_and_silent_drop_end_like_haproxy() {
    let test = "reject_and_silent_drop_end_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("stats.sock");
    let syslog = PrioritySyslog::bind();
    let server = EchoServer::start("s");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request reject if {{ path /reject }}\n\
         \x20 http-request silent-drop if {{ path /drop }}\n\
         \x20 http-request deny if {{ path /reject /drop }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-request reject if {{ path /be-reject }}\n\
         \x20 http-request silent-drop if {{ path /be-drop }}\n\
         \x20 http-request set-var(txn.path) path\n\
         \x20 http-response silent-drop if {{ var(txn.path) -m str /resp-drop }}\n\
         \x20 server s {server}\n",
        sock = sock.display(),
        log = syslog.addr,
        server = server.addr,
    );
    let paths = [
        "/reject",
        "/drop",
        "/be-reject",
        "/be-drop",
        "/resp-drop",
        "/last",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let ends: Vec<String> = paths
            .iter()
            .map(|p| format!("{p}: {}", ending(a, p)))
            .collect();
        // Each line goes when its connection ends, which the client does not wait for.
        let mut lines = syslog.lines_until("fe", "/last");
        lines.sort();
        let csv = cli(&sock, "show stat");
        let counters = [("fe", "FRONTEND"), ("be", "BACKEND")].map(|(section, row)| {
            let r = stat_row(&csv, section, row).expect("a stat row");
            ["dreq", "req_tot", "ereq", "stot"].map(|f| format!("{section}/{row}.{f}={}", r[f]))
        });
        (ends, lines, counters)
    });
    assert_eq!(
        ours.0,
        [
            "/reject: end of stream",
            "/drop: nothing",
            "/be-reject: end of stream",
            "/be-drop: nothing",
            "/resp-drop: nothing",
            "/last: HTTP/1.1 200 OK"
        ],
        "{ours:#?}"
    );
    // No status, no bytes, `PR--`.
    let unanswered = ours
        .1
        .iter()
        .filter(|l| l.contains(" -N N - - PR-- "))
        .count();
    assert_eq!(unanswered, 4, "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `http-request capture ... len N` and `declare capture request|response len N` add a
/// capture slot after those declared before it (the response's `declare` here comes
/// first, before the header captures); `id N` writes into an existing slot (a header capture's too), over what the
/// header gave; `http-response capture ... id N` into a response slot. Values are cut to
/// their slot's length, and shown in the log line's `{...}` blocks as header captures.
#[test]
fn capture_rules_fill_log_slots_like_haproxy() {
    let test = "capture_rules_fill_log_slots_like_haproxy";
    let syslog = PrioritySyslog::bind();
    let server = EchoServer::start_with("s1", "x-r: response-value\r\n");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 capture request header host len 5\n\
         \x20 http-request capture req.hdr(user-agent) len 4\n\
         \x20 capture request header x-a len 10\n\
         \x20 http-request capture path id 0 if {{ path /id }}\n\
         \x20 http-request capture req.hdr(nope) id 2\n\
         \x20 declare capture request len 3\n\
         \x20 http-request capture method id 3\n\
         \x20 declare capture response len 20\n\
         \x20 http-response capture res.hdr(x-r) id 2\n\
         \x20 capture response header x-r len 3\n\
         \x20 capture response header content-length len 8\n\
         \x20 http-response capture res.hdr(x-r),upper id 0 if {{ status 200 }}\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {server}\n",
        log = syslog.addr,
        server = server.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let requests = [
            get("/ok", "user-agent: agent-name\r\nx-a: hello-world-long\r\n"),
            get("/id", "user-agent: ab\r\n"),
            get("/last", ""),
        ];
        let answers = exchange(a, &requests);
        let statuses: Vec<u16> = answers.iter().flatten().map(|r| r.status).collect();
        (statuses, syslog.lines_until("fe", "/last"))
    });
    assert_eq!(ours.0, [200, 200, 200], "{ours:#?}");
    assert!(
        ours.1[0].contains("{test.|agen|hello-worl|GET} {RESPONSE-VALUE|res|response}"),
        "{:#?}",
        ours.1
    );
    assert!(
        ours.1[1].contains("{/id|ab||GET} {RESPONSE-VALUE|res|response}"),
        "{:#?}",
        ours.1
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `http-request set-src EXPR`: the later rules, the backend's rules, `option forwardfor`
/// and the log line (`%ci`, its port kept) see the address the expression gave (none: an
/// expression that gives no address changes nothing); as in HAProxy 2.6, the next request
/// on the connection has the real one again.
#[test]
fn set_src_changes_the_client_address_like_haproxy() {
    let test = "set_src_changes_the_client_address_like_haproxy";
    let syslog = PrioritySyslog::bind();
    let server = EchoServer::start("s1");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-header x-before %[src]\n\
         \x20 http-request set-src req.hdr(x-real) if {{ req.hdr(x-real) -m found }}\n\
         \x20 http-request set-header x-after %[src]\n\
         \x20 option forwardfor\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-request set-header x-be %[src]\n\
         \x20 server s1 {server}\n",
        log = syslog.addr,
        server = server.addr,
    );
    let reals = ["10.1.2.3", "", "::1", "bogus", "10.9.9.9"];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let requests: Vec<String> = reals
            .iter()
            .map(|r| match r.is_empty() {
                true => get("/", ""),
                false => get("/", &format!("x-real: {r}\r\n")),
            })
            .chain([get("/last", "")])
            .collect();
        let seen: Vec<Vec<String>> = exchange(a, &requests)
            .into_iter()
            .flatten()
            .map(|r| {
                (r.body.lines())
                    .filter(|l| l.starts_with("x-"))
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        let clients: Vec<String> = syslog
            .lines_until("fe", "/last")
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap_or_default().to_string())
            .collect();
        (seen, clients)
    });
    assert_eq!(
        ours.0[0],
        [
            "x-real: 10.1.2.3",
            "x-before: 127.0.0.1",
            "x-after: 10.1.2.3",
            "x-be: 10.1.2.3",
            "x-forwarded-for: 10.1.2.3"
        ],
        "{ours:#?}"
    );
    assert_eq!(ours.0[1][2], "x-be: 127.0.0.1", "{ours:#?}");
    assert_eq!(ours.0.len(), reals.len() + 1, "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Everything a client gets for `request` on a connection of its own, up to the proxy's
/// close (the request asks for it).
fn whole_answer(addr: SocketAddr, request: &str) -> String {
    let mut client = TcpStream::connect(addr).expect("connecting to the proxy");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    client
        .write_all(request.as_bytes())
        .expect("sending the request");
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `http-request early-hint NAME FMT`: one `103 Early Hints` per rule before the final
/// response (an answer of the proxy's own too), none to an HTTP/1.0 client; the log line
/// counts them in the response's bytes, as HAProxy 2.6.
#[test]
fn early_hints_go_before_the_response_like_haproxy() {
    let test = "early_hints_go_before_the_response_like_haproxy";
    let syslog = PrioritySyslog::bind();
    let server = EchoServer::start("s1");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request early-hint Link \"</style.css>; rel=preload\" if {{ path_beg /eh }}\n\
         \x20 http-request early-hint link \"</a.js>; rel=preload; x=%[path]\" if {{ path_beg /eh }}\n\
         \x20 http-request set-header x-mid 1\n\
         \x20 http-request early-hint x-other v if {{ path_beg /eh }}\n\
         \x20 http-request deny if {{ path /eh-deny }}\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {server}\n",
        log = syslog.addr,
        server = server.addr,
    );
    let close = "connection: close\r\n";
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let answers: Vec<String> = [
            get("/eh", close),
            get("/eh-deny", close),
            "GET /eh HTTP/1.0\r\nhost: x\r\n\r\n".to_string(),
            get("/last", close),
        ]
        .iter()
        .map(|r| {
            let answer = whole_answer(a, r);
            // The heads only (the echoed request differs in its ports).
            (answer.split("\r\n\r\n"))
                .filter(|part| part.starts_with("HTTP/"))
                .collect::<Vec<_>>()
                .join("\n--\n")
        })
        .collect();
        let mut lines: Vec<String> = syslog
            .lines_until("fe", "/last")
            .iter()
            .map(|l| l.split(' ').skip(3).collect::<Vec<_>>().join(" "))
            .collect();
        // Each line goes when its connection ends, which the client does not wait for.
        lines.sort();
        (answers, lines)
    });
    assert!(
        ours.0[0].starts_with("HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\n--\n"),
        "{ours:#?}"
    );
    assert_eq!(ours.0[0].matches(" 103 ").count(), 3, "{ours:#?}");
    assert_eq!(ours.0[1].matches(" 103 ").count(), 3, "{ours:#?}");
    assert!(ours.0[1].ends_with("HTTP/1.1 403 Forbidden\r\ncontent-length: 93\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close"), "{ours:#?}");
    assert!(!ours.0[2].contains(" 103 "), "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The `fwmark` of the proxy's sockets for connections to `addr`, as `ss` shows them.
fn socket_marks(addr: SocketAddr) -> Vec<String> {
    let filter = format!("( sport = :{} )", addr.port());
    let out = std::process::Command::new("ss")
        .args(["-tnie", "state", "established", &filter])
        .output()
        .expect("running ss");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("fwmark:"))
        .map(str::to_string)
        .collect()
}

/// What a client connection sees of a request: its status line, and (root with `ss` only)
/// the marks of the proxy's socket while the connection is open.
fn served_with_marks(addr: SocketAddr, marks: bool) -> (String, Vec<String>) {
    let mut client = TcpStream::connect(addr).expect("connecting to the proxy");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    client
        .write_all(get("/marked", "").as_bytes())
        .expect("sending the request");
    let mut buf = [0u8; 4096];
    let n = client.read(&mut buf).unwrap_or(0);
    let status = String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let marks = if marks {
        socket_marks(addr)
    } else {
        Vec::new()
    };
    (status, marks)
}

/// `set-nice`, `set-tos` and `set-mark` change nothing a client sees: the request is
/// served and logged as HAProxy serves and logs it; the client connection's socket has the
/// mark (seen with `ss`, as root).
#[test]
fn socket_and_priority_actions_serve_like_haproxy() {
    let test = "socket_and_priority_actions_serve_like_haproxy";
    // Setting a mark takes CAP_NET_ADMIN; `ss` shows it.
    let with_ss = require::is_root() && require::command(test, "ss");
    let syslog = PrioritySyslog::bind();
    let server = EchoServer::start("s1");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-nice -100\n\
         \x20 http-request set-tos 0x10\n\
         \x20 http-request set-mark 7\n\
         \x20 http-response set-nice 5\n\
         \x20 http-response set-tos 0x20\n\
         \x20 http-response set-mark 9\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {server}\n",
        log = syslog.addr,
        server = server.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let marked = served_with_marks(a, with_ss);
        let answers = exchange(a, &[get("/a", ""), get("/last", "")]);
        let statuses: Vec<u16> = answers.iter().flatten().map(|r| r.status).collect();
        (marked, statuses, syslog.lines_until("fe", "/last"))
    });
    assert_eq!(ours.0.0, "HTTP/1.1 200 OK", "{ours:#?}");
    if with_ss {
        assert_eq!(ours.0.1, ["fwmark:0x9"], "{ours:#?}");
    }
    assert_eq!(ours.1, [200, 200], "{ours:#?}");
    assert_eq!(ours.2.len(), 3, "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
