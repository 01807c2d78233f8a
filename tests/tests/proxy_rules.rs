//! Content switching and request rules, hapx-proxy next to HAProxy 2.6 on the same
//! configurations and traffic: `acl`, `use_backend`, `http-request`, `http-response`,
//! `tcp-request connection|content` with `inspect-delay` (SNI routing), `monitor-uri`,
//! `monitor fail` and `timeout tarpit`. Compared: statuses, response headers and bodies,
//! what the servers received, which backend answered, whether the connection stayed open,
//! the log lines (numbers masked), and `-c` messages for broken rules.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, Syslog, TIMEOUTS, check_both, check_frontend_line,
    check_messages, client_hello, exchange, get, read_response, shape_keeping_bytes, side_by_side,
};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// Each sequence of requests on one connection: what came back.
type Seen = Vec<Vec<Option<Response>>>;

/// The sequences run at once, each on its own connection ([`exchange`] waits a while on
/// each to see whether it stays open).
fn requests(seqs: &[&[String]], addr: SocketAddr) -> Seen {
    thread::scope(|scope| {
        let clients: Vec<_> = seqs
            .iter()
            .map(|reqs| scope.spawn(move || exchange(addr, reqs)))
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("a client thread"))
            .collect()
    })
}

/// Log lines with their numbers but the byte counts masked, sorted (connections run at
/// once).
fn shapes(lines: &[String]) -> Vec<String> {
    let mut s: Vec<String> = lines.iter().map(|l| shape_keeping_bytes(l)).collect();
    s.sort();
    s
}

/// The response to request `i` of sequence `s`.
fn resp(seen: &Seen, s: usize, i: usize) -> &Response {
    seen[s][i]
        .as_ref()
        .unwrap_or_else(|| panic!("no response to request {i} of sequence {s}: {seen:#?}"))
}

#[test]
fn http_rules_answer_like_haproxy() {
    let test = "http_rules_answer_like_haproxy";
    let (api, web) = (EchoServer::start("api"), EchoServer::start("web"));
    let stat = EchoServer::start_with("static", "x-internal: secret\r\n");
    let leaky = EchoServer::start_with("leaky", "x-internal: leak-1\r\n");
    let dir = temp_dir(test);
    let blocked = dir.join("blocked.lst");
    std::fs::write(&blocked, "# paths nobody gets\n/blocked\n\n/also-blocked\n").unwrap();
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\ndefaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}  timeout tarpit 200ms\n\
         frontend fe\n  bind {addr}\n  tcp-request content reject if {{ path /tcp-reject }}\n  monitor-uri /health\n  monitor fail if {{ req.hdr(x-fail) -m found }}\n\
         \x20 acl is_api path_beg /api/\n  acl host_static hdr(host) -i static.example\n  acl blocked path -f {blocked}\n\
         \x20 http-request allow if {{ path /blocked }} {{ req.hdr(x-allow) -m found }}\n\
         \x20 http-request deny if blocked\n  http-request deny deny_status 429 if {{ path /slow }}\n\
         \x20 http-request tarpit if {{ path /tarpit }}\n\
         \x20 http-request auth realm Private if {{ path_beg /private }} !{{ req.hdr(authorization) -m found }}\n\
         \x20 http-request redirect location /new code 301 if {{ path /old }}\n\
         \x20 http-request redirect prefix /v2 if {{ path_beg /v1/ }}\n\
         \x20 http-request redirect scheme https if {{ path /secure }}\n\
         \x20 http-request return status 200 content-type text/plain string pong if {{ path /ping }} METH_GET\n\
         \x20 http-request set-header X-Route %[path]\n  http-request add-header X-Src %[src]\n  http-request del-header X-Secret\n\
         \x20 http-response set-header X-Proxy rules\n  http-response del-header X-Internal\n\
         \x20 redirect prefix /moved code 308 if {{ path_beg /legacy/ }}\n\
         \x20 use_backend api if is_api || {{ req.hdr(x-api) -m str yes }}\n  use_backend static if host_static\n\
         \x20 use_backend api if {{ cook(canary) 1 }} || {{ urlp(to) -i API }}\n\
         \x20 use_backend leaky if {{ path_beg /leak }}\n  default_backend web\n\
         backend api\n  server a {api}\n\
         backend static\n  http-request set-header X-Backend static\n  server s {stat}\n\
         backend leaky\n  http-response deny if {{ res.hdr(x-internal) -m beg leak }}\n  server l {leaky}\n\
         backend web\n  server w {web}\n",
        log = syslog.addr,
        blocked = blocked.display(),
        api = api.addr,
        web = web.addr,
        stat = stat.addr,
        leaky = leaky.addr,
    );
    let post_ping =
        "POST /ping HTTP/1.1\r\nhost: test.example\r\ncontent-length: 0\r\n\r\n".to_string();
    let seqs: Vec<Vec<String>> = vec![
        // Switching on one kept-alive connection, and the monitor URI.
        vec![
            get("/health", ""),
            get("/api/x", ""),
            get("/page", ""),
            get("/q", "x-api: yes\r\n"),
        ],
        vec![get("/blocked", ""), get("/page", "")],
        vec![get("/also-blocked", "connection: close\r\n")],
        vec![get("/slow", ""), get("/tarpit", "")],
        vec![
            get("/private/a", ""),
            get("/private/a", "authorization: Basic eDp5\r\n"),
        ],
        vec![get("/old", ""), get("/v1/x?q=1", ""), get("/secure", "")],
        vec![get("/ping", ""), post_ping],
        vec!["GET /s HTTP/1.1\r\nhost: static.example\r\n\r\n".to_string()],
        vec![get("/leak", "")],
        vec![get("/health", "x-fail: 1\r\n")],
        vec![get("/h", "x-secret: 1\r\nx-other: 2\r\n")],
        vec![get("/blocked", "x-allow: 1\r\n"), get("/tcp-reject", "")],
        vec![get("/legacy/a?x=1", "")],
        vec![
            get("/c", "cookie: a=b; canary=1\r\n"),
            get("/c", "cookie: canary=2\r\n"),
            get("/u?x=1&to=api", ""),
        ],
    ];
    let seq_refs: Vec<&[String]> = seqs.iter().map(Vec::as_slice).collect();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let seen = requests(&seq_refs, a);
        // Every answer is logged but the two of `monitor-uri`, and so is the dropped request.
        let answered = seen.iter().flatten().flatten().count();
        (seen, syslog.lines(answered - 2 + 1))
    });
    let (seen, log) = &ours;
    // What the rules did, checked on hapx's answers before comparing with HAProxy's.
    assert_eq!(resp(seen, 0, 0).status, 200);
    assert!(resp(seen, 0, 0).body.contains("Service ready."));
    assert_eq!(
        (1..4)
            .map(|i| resp(seen, 0, i).server())
            .collect::<Vec<_>>(),
        ["api", "web", "api"]
    );
    assert_eq!(resp(seen, 1, 0).status, 403);
    assert_eq!(resp(seen, 1, 1).server(), "web", "kept alive after a deny");
    assert_eq!(seen[2].last(), Some(&None), "closed as the client asked");
    assert_eq!(
        (resp(seen, 3, 0).status, resp(seen, 3, 1).status),
        (429, 500)
    );
    assert_eq!(
        resp(seen, 4, 0).header("www-authenticate"),
        Some("Basic realm=\"Private\"")
    );
    assert_eq!(resp(seen, 4, 1).server(), "web");
    assert_eq!(resp(seen, 5, 0).header("location"), Some("/new"));
    assert_eq!(resp(seen, 5, 1).header("location"), Some("/v2/v1/x?q=1"));
    assert_eq!(
        resp(seen, 5, 2).header("location"),
        Some("https://test.example/secure")
    );
    assert_eq!(
        (resp(seen, 6, 0).status, resp(seen, 6, 0).body.as_str()),
        (200, "pong")
    );
    assert_eq!(resp(seen, 6, 1).server(), "web");
    let s = resp(seen, 7, 0);
    assert_eq!(
        (s.server(), s.forwarded("x-backend")),
        ("static", Some("static"))
    );
    assert_eq!(
        (s.header("x-internal"), s.header("x-proxy")),
        (None, Some("rules"))
    );
    assert_eq!(resp(seen, 8, 0).status, 502);
    assert_eq!(resp(seen, 9, 0).status, 503);
    let h = resp(seen, 10, 0);
    assert_eq!(h.forwarded("x-secret"), None);
    assert_eq!(h.forwarded("x-other"), Some("2"));
    assert_eq!(h.forwarded("x-route"), Some("/h"));
    assert_eq!(h.forwarded("x-src"), Some("127.0.0.1"));
    // `allow` ends the rules (no deny, no header edits); a content rule drops the request.
    let allowed = resp(seen, 11, 0);
    assert_eq!(
        (allowed.server(), allowed.forwarded("x-route")),
        ("web", None)
    );
    assert_eq!(seen[11].get(1), Some(&None));
    assert_eq!(
        (0..3)
            .map(|i| resp(seen, 13, i).server())
            .collect::<Vec<_>>(),
        ["api", "web", "api"]
    );
    let moved = resp(seen, 12, 0);
    assert_eq!(
        (moved.status, moved.header("location")),
        (308, Some("/moved/legacy/a?x=1"))
    );
    // A request a `tcp-request content` rule drops: no status, no answer.
    assert!(
        log.iter().any(|l| l.contains(" fe fe/<NOSRV> -1/-1/-1/-1/")
            && l.contains(" -1 0 - - PR-- ")
            && l.ends_with(" \"<BADREQ>\"")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains(" fe fe/<NOSRV> ") && l.contains(" 403 ") && l.contains(" PR-- ")),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains(" fe api/a ")), "{log:#?}");
    let Some(theirs) = theirs else {
        return;
    };
    assert_eq!(ours.0, theirs.0, "responses differ from HAProxy's");
    assert_eq!(
        shapes(log),
        shapes(&theirs.1),
        "log lines differ\nhapx:\n{log:#?}\nHAProxy:\n{:#?}",
        theirs.1
    );
}

/// A request with a body answered by a rule (`deny`, `return`, `redirect`): as in HAProxy,
/// a body that came with the head is drained and the connection kept; one still coming
/// closes it, and the answer says `connection: close`; a redirect closes after any body.
#[test]
fn answers_to_requests_with_bodies_like_haproxy() {
    let test = "answers_to_requests_with_bodies_like_haproxy";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request deny if {{ path /d }}\n\
         \x20 http-request return status 200 content-type text/plain string pong if {{ path /r }}\n\
         \x20 http-request redirect location /new if {{ path /o }}\n  default_backend web\n\
         backend web\n  server w {}\n",
        web.addr
    );
    let post = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: test.example\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let chunked = "POST /d HTTP/1.1\r\nhost: test.example\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    // The request, what follows it after a pause (the rest of its body and a next request
    // that closes), and how many answers come.
    let next = get("/d", "connection: close\r\n");
    let cases: Vec<(String, String, usize)> = vec![
        (post("/d", "hello") + &next, String::new(), 2),
        (
            post("/d", "hello").replace("hello", ""),
            "hello".to_string() + &next,
            1,
        ),
        (
            post("/d", "hello").replace("hello", "hel"),
            "lo".to_string() + &next,
            1,
        ),
        (chunked.to_string() + &next, String::new(), 2),
        (post("/r", "hello") + &next, String::new(), 2),
        (post("/o", "hello") + &next, String::new(), 1),
        (get("/o", "") + &next, String::new(), 2),
    ];
    let traffic = |a: SocketAddr| {
        cases
            .iter()
            .map(|(first, later, _)| {
                let mut s = TcpStream::connect(a).expect("connecting");
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                s.write_all(first.as_bytes()).expect("sending");
                if !later.is_empty() {
                    thread::sleep(Duration::from_millis(200));
                    let _ = s.write_all(later.as_bytes());
                }
                let mut reader = BufReader::new(s);
                std::iter::from_fn(|| read_response(&mut reader)).collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    for (i, (answers, (_, _, count))) in ours.iter().zip(&cases).enumerate() {
        assert_eq!(answers.len(), *count, "case {i}: {answers:#?}");
        let closes = |r: &Response| r.header("connection") == Some("close");
        assert_eq!(closes(&answers[0]), *count == 1, "case {i}: {answers:#?}");
        if let Some(after) = answers.get(1) {
            // The next request on the connection was read whole, after the drained body.
            assert_eq!((after.status, closes(after)), (403, true), "case {i}");
        }
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Connects, sends `first` then (after a pause) `rest`, and reads the server's name, then
/// everything until the server closes (so that each connection ends the same clean way).
fn tls_client(addr: SocketAddr, first: &[u8], rest: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return "<refused>".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(4))).ok();
    let _ = s.write_all(first);
    thread::sleep(Duration::from_millis(150));
    let _ = s.write_all(rest);
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let _ = reader.read_to_end(&mut Vec::new());
    line.trim().to_string()
}

#[test]
fn sni_routing_waits_for_the_client_hello_like_haproxy() {
    let test = "sni_routing_waits_for_the_client_hello_like_haproxy";
    let hold = Duration::from_millis(300);
    let (a, b, other) = (
        NamedServer::start("a", LO, hold),
        NamedServer::start("b", LO, hold),
        NamedServer::start("other", LO, hold),
    );
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\ndefaults\n  log global\n  mode tcp\n  option tcplog\n{TIMEOUTS}\
         frontend tls\n  bind {addr}\n  tcp-request inspect-delay 1s\n\
         \x20 tcp-request content reject if {{ req.ssl_sni -i blocked.example }}\n\
         \x20 tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20 use_backend a if {{ req.ssl_sni -i a.example }}\n\
         \x20 use_backend b if {{ req.ssl_sni -m end .b.example }}\n  default_backend other\n\
         backend a\n  server a {}\nbackend b\n  server b {}\nbackend other\n  server o {}\n",
        a.addr,
        b.addr,
        other.addr,
        log = syslog.addr,
    );
    let traffic = |addr: SocketAddr| {
        let mut names = Vec::new();
        for sni in ["a.example", "x.b.example", "c.example", "blocked.example"] {
            // The hello in two pieces: the first cannot decide, the rules wait for more.
            let hello = client_hello(sni);
            names.push(tls_client(addr, &hello[..20], &hello[20..]));
        }
        names.push(tls_client(addr, b"plain text\n", b""));
        names.push(tls_client(addr, b"", b""));
        // One line per connection.
        (names.clone(), syslog.lines(names.len()))
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(ours.0, ["a", "b", "other", "", "other", "other"]);
    assert!(
        ours.1
            .iter()
            .any(|l| l.contains(" tls tls/<NOSRV> ") && l.contains(" PR ")),
        "{:#?}",
        ours.1
    );
    let Some(theirs) = theirs else {
        return;
    };
    assert_eq!(ours.0, theirs.0);
    assert_eq!(
        shapes(&ours.1),
        shapes(&theirs.1),
        "hapx:\n{:#?}\nHAProxy:\n{:#?}",
        ours.1,
        theirs.1
    );
}

#[test]
fn tcp_request_connection_rules_like_haproxy() {
    let test = "tcp_request_connection_rules_like_haproxy";
    let server = NamedServer::start("srv", LO, Duration::from_millis(100));
    let (refused, allowed) = (front(), front());
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}\
         frontend refuse\n  bind {refused}\n  tcp-request connection reject if LOCALHOST\n  default_backend be\n\
         frontend allow\n  bind {allowed}\n  tcp-request connection accept if {{ src 127.0.0.0/8 }} {{ dst_port {port} }}\n\
         \x20 tcp-request connection reject\n  default_backend be\n\
         backend be\n  server s {}\n",
        server.addr,
        port = allowed.port(),
    );
    let traffic = |_: SocketAddr| {
        (
            hapx_tests::proxy::ask(refused),
            hapx_tests::proxy::ask(allowed),
        )
    };
    let (ours, theirs) = side_by_side(test, &config, refused, traffic);
    assert_eq!(ours, (String::new(), "srv".to_string()));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Broken rules: the same `-c` messages as HAProxy, word for word.
#[test]
fn rule_errors_read_like_haproxys() {
    let test = "rule_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "  acl a1 nosuchfetch foo",
        "  acl a4 src 300.1.1.1",
        "  acl x!y src 1.2.3.4",
        "  acl a6 src_port 1:x",
        "  acl a12 nbsrv a",
        "  acl a3 hdr(host) -m nosuch x",
        "  use_backend b if unknownacl",
        "  use_backend b if { path_beg /a",
        "  use_backend b when a5",
        "  use_backend",
        "  use_backend nob if a5",
        "  use_backend t if a5",
        "  http-request deny if nope",
        "  http-request deny deny_status 999",
        "  http-request redirect location /x code 305",
        "  http-request redirect",
        "  http-request set-header X",
        "  http-response deny if nope",
        "  tcp-request content reject if nope",
        "  tcp-request connection reject if nope",
        "  tcp-request inspect-delay",
        "  monitor fail if nope",
        "  monitor fail",
        "  monitor foo",
        "  monitor-uri",
        "  redirect foo",
        "  redirect scheme https if nope",
        "  redirect location /x code 305",
        "  http-request deny if { nbsrv(nob) gt 0 }",
        "  http-request deny if { srv_is_up(b/zz) }",
    ];
    for (i, line) in cases.iter().enumerate() {
        let tcp_backend = "backend t\n  mode tcp\n  server s 127.0.0.1:1\n";
        let [ours, theirs] =
            check_frontend_line(&dir, i, line, "  acl a5 path_beg /x\n", tcp_backend);
        assert_eq!(theirs.0, 1, "HAProxy accepted {line:?}: {theirs:#?}");
        assert_eq!(ours, theirs, "{line:?}");
    }
}

/// Rules that only warn: misplaced ones, fetches that cannot match where they are used,
/// rules a TCP proxy ignores.
#[test]
fn rule_warnings_read_like_haproxys() {
    let test = "rule_warnings_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let file = dir.join("warn.cfg");
    std::fs::write(
        &file,
        format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  http-request deny\n  http-response deny\n  monitor-uri /x\n\
             \x20 redirect location /r\n  acl x path /x\n  tcp-request content reject if x\n  tcp-request connection reject if {{ path /y }}\n\
             \x20 tcp-request connection reject if {{ req.ssl_sni a }}\n  default_backend b\n\
             backend b\n  use_backend b\n  monitor-uri /x\n  tcp-request content reject\n  http-request deny if {{ status 200 }}\n  server s 127.0.0.1:1\n\
             frontend h\n  mode http\n  bind 127.0.0.1:2\n  use_backend hb if {{ req.ssl_sni x }}\n  default_backend hb\n\
             backend hb\n  mode http\n  server s 127.0.0.1:1\n"
        ),
    )
    .unwrap();
    let [ours, theirs] = check_both(&file);
    // The backend's `use_backend` to itself is a loop: an error.
    assert_eq!((ours.0, theirs.0), (1, 1), "{ours:#?}");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(ours.1), sorted(theirs.1));
}

/// A rule using what HAProxy accepts and hapx does not implement (a fetch, an action, a
/// converter, a whole rule keyword) is refused, in any proxy: dropping it would fail open
/// (`deny if !tls` would let plain HTTP through where HAProxy denies it). Each is an alert
/// naming its line and what is missing, at `-c` and at start; an ACL or a keyword that is
/// not a rule stays a warning.
#[test]
fn unimplemented_rule_parts_are_refused() {
    let dir = temp_dir("unimplemented_rule_parts_are_refused");
    let file = dir.join("u.cfg");
    std::fs::write(
        &file,
        format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  acl tls ssl_bc\n  http-request deny if !tls\n\
             \x20 http-request cache-use c\n  http-request deny if {{ path,ub64dec /x }}\n  use_backend b if tls\n\
             \x20 redirect scheme https if !tls\n  monitor fail if tls\n  tcp-request content reject if !tls\n\
             \x20 tcp-request session set-dst-port int(1)\n  compression algo gzip\n  default_backend b\n\
             backend b\n  http-response deny if {{ res.hdr(x),ub64dec x }}\n  http-after-response ot-group g\n\
             \x20 tcp-response content silent-drop\n  use-server s if {{ ssl_bc }}\n  server s 127.0.0.1:1\n"
        ),
    )
    .unwrap();
    let hapx = bins::path("hapx-proxy");
    let (code, messages) = check_messages(&hapx, &file);
    assert_eq!(code, 1, "{messages:#?}");
    let at = |line: usize| {
        messages
            .iter()
            .filter(|m| m.contains(&format!("u.cfg:{line}] : ")))
            .cloned()
            .collect::<Vec<_>>()
    };
    let refused = "hapx refuses to run without this rule";
    for (line, what) in [
        (9, "the sample fetch 'ssl_bc'"),
        (10, "the action 'cache-use'"),
        (11, "the converter 'ub64dec'"),
        (12, "the sample fetch 'ssl_bc'"),
        (13, "the sample fetch 'ssl_bc'"),
        (14, "the sample fetch 'ssl_bc'"),
        (15, "the sample fetch 'ssl_bc'"),
        (16, "the action 'set-dst-port'"),
        (20, "the converter 'ub64dec'"),
        (21, "the action 'ot-group'"),
        (22, "'tcp-response content silent-drop'"),
        (23, "the sample fetch 'ssl_bc'"),
    ] {
        let found: Vec<String> = at(line)
            .into_iter()
            .filter(|m| m.starts_with("ALERT: "))
            .collect();
        assert!(
            found.len() == 1 && found[0].contains(what) && found[0].contains(refused),
            "line {line}, {what}:\n{messages:#?}"
        );
    }
    for line in [8, 17] {
        let found = at(line);
        assert!(
            found.len() == 1 && found[0].starts_with("WARNING: "),
            "line {line}:\n{messages:#?}"
        );
    }
    // Started for real, it refuses the same way instead of running without the rules.
    let mut child = std::process::Command::new(&hapx)
        .arg("-f")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting hapx-proxy");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for hapx-proxy") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hapx-proxy started with rules it cannot evaluate");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("its stderr")
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("u.cfg:9] : ") && stderr.contains(refused),
        "{stderr}"
    );
}

/// The usual health endpoint of a load balancer: `monitor fail` when a backend has no
/// server left, `use_backend` away from it, `srv_is_up` in a rule.
#[test]
fn server_states_drive_rules_like_haproxy() {
    let test = "server_states_drive_rules_like_haproxy";
    let live = EchoServer::start("live");
    let closed = SocketAddr::from((LO, free_port()));
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  monitor-uri /health\n  monitor fail if {{ nbsrv(dead) lt 1 }}\n\
         \x20 http-request return status 200 content-type text/plain string up if {{ path /up }} {{ srv_is_up(live/l) }}\n\
         \x20 http-request return status 503 content-type text/plain string down if {{ path /up }}\n\
         \x20 acl dead_down nbsrv(dead) eq 0\n  use_backend live if dead_down\n  default_backend dead\n\
         backend dead\n  server d {closed} check inter 100ms fall 1 rise 1\n\
         backend live\n  server l {} check inter 100ms\n",
        live.addr
    );
    let traffic = |a: SocketAddr| {
        // Until the first checks took the dead server down: `monitor fail` then holds.
        let health = get("/health", "connection: close\r\n");
        let down = hapx_tests::wait::eventually(
            Duration::from_secs(10),
            || matches!(exchange(a, std::slice::from_ref(&health)).first(), Some(Some(r)) if r.status == 503),
        );
        assert!(down, "the dead server never went down");
        exchange(a, &[get("/health", ""), get("/up", ""), get("/x", "")])
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let answer = |i: usize| ours[i].as_ref().map(|r| (r.status, r.server().to_string()));
    assert_eq!(answer(0).map(|a| a.0), Some(503));
    assert_eq!(answer(1), Some((200, "up".into())));
    assert_eq!(answer(2), Some((200, "live".into())));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A backend's own rules run for the requests and connections that reach it, even through
/// a frontend without any rule.
#[test]
fn backend_rules_apply_like_haproxy() {
    let test = "backend_rules_apply_like_haproxy";
    let web = EchoServer::start("web");
    let named = NamedServer::start("tls", LO, Duration::from_millis(300));
    let (http, tcp) = (front(), front());
    let config = format!(
        "defaults\n{TIMEOUTS}\
         frontend h\n  mode http\n  bind {http}\n  default_backend web\n\
         backend web\n  mode http\n  http-request deny if {{ path /no }}\n  http-request set-header X-Be yes\n  server w {}\n\
         frontend t\n  mode tcp\n  bind {tcp}\n  default_backend tls\n\
         backend tls\n  mode tcp\n  tcp-request inspect-delay 1s\n  tcp-request content reject if {{ req.ssl_sni -i bad.example }}\n  server s {}\n",
        web.addr, named.addr
    );
    let traffic = |_: SocketAddr| {
        let answers = exchange(http, &[get("/ok", ""), get("/no", "")]);
        let (good, bad) = (client_hello("good.example"), client_hello("bad.example"));
        let names = [
            tls_client(tcp, &good[..10], &good[10..]),
            tls_client(tcp, &bad[..10], &bad[10..]),
        ];
        (answers, names)
    };
    let (ours, theirs) = side_by_side(test, &config, http, traffic);
    let ok = ours.0[0].as_ref().expect("an answer to /ok");
    assert_eq!((ok.server(), ok.forwarded("x-be")), ("web", Some("yes")));
    assert_eq!(ours.0[1].as_ref().map(|r| r.status), Some(403));
    assert_eq!(ours.1, ["tls".to_string(), String::new()]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// What the rules did shows in `show stat` as in HAProxy: denied requests, responses and
/// connections, intercepted requests, statuses.
#[test]
fn rule_outcomes_are_counted_like_haproxy() {
    let test = "rule_outcomes_are_counted_like_haproxy";
    let web = EchoServer::start_with("web", "x-leak: 1\r\n");
    let (addr, refused) = (front(), front());
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  monitor-uri /mon\n  http-request deny if {{ path /d }}\n\
         \x20 http-response deny if {{ res.hdr(x-leak) -m found }} {{ status 200 }}\n  default_backend be\n\
         frontend no\n  bind {refused}\n  tcp-request connection reject\n  default_backend be\n\
         backend be\n  server s {}\n",
        socket.display(),
        web.addr
    );
    let columns = [
        "dreq",
        "dresp",
        "intercepted",
        "dcon",
        "dses",
        "hrsp_2xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "req_tot",
    ];
    let traffic = |a: SocketAddr| {
        exchange(a, &[get("/mon", ""), get("/d", ""), get("/x", "")]);
        hapx_tests::proxy::ask(refused);
        let csv = hapx_tests::proxy::cli(&socket, "show stat");
        [
            ("fe", "FRONTEND"),
            ("no", "FRONTEND"),
            ("be", "BACKEND"),
            ("be", "s"),
        ]
        .iter()
        .map(|(p, s)| {
            let row = hapx_tests::proxy::stat_row(&csv, p, s).unwrap_or_default();
            columns
                .iter()
                .map(|c| format!("{p}/{s} {c}={}", row.get(*c).cloned().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert!(
        ours[0].contains(&"fe/FRONTEND dresp=1".to_string()),
        "{ours:#?}"
    );
    assert!(
        ours[1].contains(&"no/FRONTEND dcon=1".to_string()),
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Request and response rewrites: `set-method|path|query|uri`, `replace-path|uri|header|
/// value`, as the server and the client see them through each proxy.
#[test]
fn rewrites_like_haproxy() {
    let test = "rewrites_like_haproxy";
    let web = EchoServer::start_with("web", "x-srv: one\r\n");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request set-method POST if {{ path /m }}\n\
         \x20 http-request set-path /new%[path] if {{ path_beg /p/ }}\n\
         \x20 http-request set-query a=1 if {{ path /q }}\n\
         \x20 http-request set-uri /u2?x=%[url_param(x)] if {{ path_beg /u }}\n\
         \x20 http-request replace-path /api(/.*) \\1 if {{ path_beg /api/ }}\n\
         \x20 http-request replace-uri ^/old/(.*)$ /new/\\1 if {{ path_beg /old/ }}\n\
         \x20 http-request replace-header X-Fwd ^(.*)$ pre-\\1\n\
         \x20 http-request replace-value X-List ^a(.*)$ A\\1\n\
         \x20 http-request deny content-type text/plain string nope if {{ path /nope }}\n\
         \x20 http-response set-status 203 if {{ res.hdr(x-srv) one }} {{ status 200 }}\n\
         \x20 http-response set-status 299 reason Fine if {{ status 203 }}\n\
         \x20 http-response replace-header X-Srv (.*) \\1-seen\n\
         \x20 default_backend web\nbackend web\n  server w {}\n",
        web.addr
    );
    let requests: Vec<String> = [
        "/m",
        "/p/x?k=v",
        "/q?z=9",
        "/u?x=5",
        "/api/v1/items?id=3",
        "/old/a/b?c=1",
    ]
    .iter()
    .map(|p| get(p, ""))
    .chain([
        get("/h", "x-fwd: val\r\nx-list: ab, cd, ae\r\n"),
        get("/nope", ""),
    ])
    .collect();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| exchange(a, &requests));
    let line = |i: usize| {
        let r = ours[i].as_ref().expect("a response");
        r.body.lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(line(0), "POST /m HTTP/1.1");
    assert_eq!(line(1), "GET /new/p/x?k=v HTTP/1.1");
    assert_eq!(line(2), "GET /q?a=1 HTTP/1.1");
    assert_eq!(line(3), "GET /u2?x=5 HTTP/1.1");
    assert_eq!(line(4), "GET /v1/items?id=3 HTTP/1.1");
    assert_eq!(line(5), "GET /new/a/b?c=1 HTTP/1.1");
    let h = ours[6].as_ref().expect("a response");
    assert_eq!(h.forwarded("x-fwd"), Some("pre-val"));
    assert_eq!(h.forwarded("x-list"), Some("Ab, cd,Ae"));
    assert_eq!(h.header("x-srv"), Some("one-seen"));
    assert_eq!(h.status, 299);
    let nope = ours[7].as_ref().expect("a response");
    assert_eq!((nope.status, nope.body.as_str()), (403, "nope"));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
