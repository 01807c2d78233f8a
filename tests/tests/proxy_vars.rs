//! Variables in traffic rules, hapx-proxy next to HAProxy 2.6 on the same configurations
//! and traffic: `set-var`, `set-var-fmt` (with conditions) and `unset-var` in
//! `tcp-request connection|content`, `http-request` and `http-response`, read by `var()`
//! in headers, conditions, `use_backend` decisions and log lines; `sess` variables kept
//! across a kept-alive connection's requests, `txn` ones not; `proc` ones shown by the
//! runtime API's `get var`; and `-c` messages for bad variable rules.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, Syslog, TIMEOUTS, check_frontend_line, exchange, get, shape,
    side_by_side,
};
use hapx_tests::require;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// What a request's variables showed: the server that answered, the status, the headers
/// the server received from the rules, the response header set from variables.
fn seen(r: &Option<Response>) -> Vec<String> {
    let Some(r) = r else {
        return vec!["no response".into()];
    };
    let mut out = vec![r.status.to_string(), r.server().to_string()];
    for h in [
        "x-route",
        "x-first",
        "x-fmt",
        "x-n",
        "x-default",
        "x-req",
        "x-port",
        "x-tcp",
    ] {
        out.push(format!("{h}={}", r.forwarded(h).unwrap_or("-")));
    }
    out.push(format!("x-res={}", r.header("x-res").unwrap_or("-")));
    out
}

#[test]
fn http_variables_flow_like_haproxys() {
    let test = "http_variables_flow_like_haproxys";
    let (api, web) = (EchoServer::start("api"), EchoServer::start("web"));
    let syslog = Syslog::bind();
    let dir = temp_dir(test);
    let sock = dir.join("stats.sock");
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\n  stats socket {sock} level admin\n\
         defaults\n  log global\n  mode http\n{TIMEOUTS}\
         \x20 log-format \"route=%[var(txn.route)] first=%[var(sess.first)] n=%[var(txn.n)]\"\n\
         frontend fe\n  bind {addr}\n\
         \x20 tcp-request connection set-var(sess.port) dst_port\n\
         \x20 tcp-request content set-var(txn.tcp) path if {{ path /a }}\n\
         \x20 http-request set-var(sess.first,ifnotset) path\n\
         \x20 http-request set-var(txn.route) req.hdr(x-route),lower\n\
         \x20 http-request set-var(txn.route) str(default) if !{{ var(txn.route) -m found }}\n\
         \x20 http-request set-var-fmt(txn.fmt) \"%[var(txn.route)]-%[path]\"\n\
         \x20 http-request set-var(txn.n) int(5)\n\
         \x20 http-request set-var(txn.n,ifgt) int(3)\n\
         \x20 http-request set-var(txn.n,iflt) int(1)\n\
         \x20 http-request set-var(txn.gone) str(x)\n\
         \x20 http-request unset-var(txn.gone)\n\
         \x20 http-request set-var(req.r) var(txn.gone,none)\n\
         \x20 http-request set-var(proc.last) path\n\
         \x20 http-request set-var(proc.count) int(7)\n\
         \x20 http-request set-header x-route %[var(txn.route)]\n\
         \x20 http-request set-header x-first %[var(sess.first)]\n\
         \x20 http-request set-header x-fmt %[var(txn.fmt)]\n\
         \x20 http-request set-header x-n %[var(txn.n)]\n\
         \x20 http-request set-header x-default %[var(txn.none,dflt)]\n\
         \x20 http-request set-header x-req %[var(req.r)]\n\
         \x20 http-request set-header x-port %[var(sess.port)]\n\
         \x20 http-request set-header x-tcp %[var(txn.tcp,unset)]\n\
         \x20 http-request deny deny_status 403 if {{ var(txn.route) -m str blocked }}\n\
         \x20 http-response set-var(res.code) status\n\
         \x20 http-response set-header x-res %[var(res.code)]-%[var(txn.route)]\n\
         \x20 use_backend api if {{ var(txn.route) -m str api }}\n\
         \x20 default_backend web\n\
         backend api\n  server a {api}\n\
         backend web\n  server w {web}\n",
        log = syslog.addr,
        sock = sock.display(),
        api = api.addr,
        web = web.addr,
    );
    let kept = [
        get("/a", "x-route: API\r\n"),
        get("/b", ""),
        get("/c", "x-route: Blocked\r\n"),
    ];
    let other = [get("/d", "connection: close\r\n")];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let first: Vec<Vec<String>> = exchange(a, &kept).iter().map(seen).collect();
        let second: Vec<Vec<String>> = exchange(a, &other).iter().map(seen).collect();
        let mut log: Vec<String> = syslog.lines(4).iter().map(|l| shape(l)).collect();
        log.sort();
        let api = [
            "get var proc.last",
            "get var proc.count",
            "get var proc.none",
        ]
        .map(|c| cli(&sock, c));
        (first, second, log, api)
    });
    let (first, second, log, api) = &ours;
    let port = addr.port();
    // What the rules did, on hapx's own answers.
    assert_eq!(
        first[0],
        [
            "200",
            "api",
            "x-route=api",
            "x-first=/a",
            "x-fmt=api-/a",
            "x-n=3",
            "x-default=dflt",
            "x-req=none",
            &format!("x-port={port}"),
            "x-tcp=/a",
            "x-res=200-api"
        ]
    );
    // The session's variable stays, the transaction's are new.
    assert_eq!(
        first[1][..5],
        [
            "200",
            "web",
            "x-route=default",
            "x-first=/a",
            "x-fmt=default-/b"
        ]
    );
    assert_eq!(first[2][0], "403");
    // Another connection, another session.
    assert_eq!(second[0][3], "x-first=/d");
    assert!(
        log.contains(&"route=api first=/a n=N".to_string()),
        "{log:#?}"
    );
    assert!(
        log.contains(&"route=blocked first=/a n=N".to_string()),
        "{log:#?}"
    );
    assert_eq!(api[0], "proc.last: type=str value=</d>\n");
    assert_eq!(api[1], "proc.count: type=sint value=<7>\n");
    assert_eq!(api[2], "Variable not found.\n\n");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// What a TCP client saw: the server's name line, or nothing when the proxy closed.
fn tcp_exchange(addr: SocketAddr, sent: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connecting to the proxy");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(sent).expect("sending");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    // The server's first line (it may echo what it receives after it).
    while !got.contains(&b'\n') {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let line = got
        .split_inclusive(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}

#[test]
fn tcp_variables_decide_like_haproxys() {
    let test = "tcp_variables_decide_like_haproxys";
    let hold = Duration::from_millis(200);
    let (one, two) = (
        NamedServer::start("one", LO, hold),
        NamedServer::start("two", LO, hold),
    );
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\n\
         defaults\n  log global\n  mode tcp\n{TIMEOUTS}\
         \x20 log-format \"cmd=%[var(txn.cmd)] src=%[var(sess.src)] none=%[var(txn.none,d)]\"\n\
         frontend fe\n  bind {addr}\n  tcp-request inspect-delay 2s\n\
         \x20 tcp-request connection set-var(sess.src) src\n\
         \x20 tcp-request content set-var(txn.cmd) req.payload(0,4),lower if {{ req.len ge 4 }}\n\
         \x20 tcp-request content reject if {{ var(txn.cmd) -m str quit }}\n\
         \x20 use_backend two if {{ var(txn.cmd) -m str two! }}\n\
         \x20 default_backend one\n\
         backend one\n  tcp-response inspect-delay 2s\n\
         \x20 tcp-response content set-var(txn.srv) res.payload(0,3),hex if {{ res.len ge 3 }}\n\
         \x20 tcp-response content reject if {{ var(txn.srv) -m str 6F6E65 }} {{ var(txn.cmd) -m str one! }}\n\
         \x20 server a {one}\n\
         backend two\n  server b {two}\n",
        log = syslog.addr,
        one = one.addr,
        two = two.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let answers = [b"TWO!".as_slice(), b"ONE.", b"ONE!", b"QUIT"].map(|m| tcp_exchange(a, m));
        let mut log: Vec<String> = syslog.lines(4).iter().map(|l| shape(l)).collect();
        log.sort();
        (answers, log)
    });
    let (answers, log) = &ours;
    // `ONE!` is refused by a response rule on what the server said (`one` in
    // hexadecimal) and what the client said, `QUIT` by a request rule.
    assert_eq!(answers, &["two\n", "one\n", "", ""]);
    assert!(
        log.contains(&"cmd=two! src=N.N.N.N none=d".to_string()),
        "{log:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn variable_rule_errors_read_like_haproxys() {
    let test = "variable_rule_errors_read_like_haproxys";
    if !require::path(test, std::path::Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "  http-request set-var(txn.foo,ifnotset,ifgt) str(x)",
        "  http-request set-var(txn.) str(x)",
        "  http-request set-var(foo.x) str(x)",
        "  http-request set-var(txn.x,ifzz) str(x)",
        "  http-request set-var(txn.z)",
        "  http-request set-var(txn.z) res.hdr(x)",
        "  http-request set-var-fmt(txn.z) \"%[res.hdr(x)]\"",
        "  http-request set-var(txn.z",
        "  http-request set-var",
        "  http-request set-var() str(a)",
        "  http-request set-var(txn.a.b-c_d) str(a)",
        "  http-request set-header x %[var(bad)]",
        "  http-request set-header x %[var()]",
        "  http-request deny if { var(txn.a) x }",
        "  http-request deny if { var(txn.a),lower x }",
        "  http-response set-var(req.q) str(a) if { var(txn.b) -m int 3 }",
        "  tcp-request connection set-var(sess.a) req.hdr(host)",
        "  tcp-request connection set-var(txn.a) src",
        "  tcp-request content set-var(txn.a) req.hdr(host)",
        "  tcp-request content set-var(txn.a) str(a) extra",
        "  tcp-request content unset-var(txn.a) if { var(txn.a) -m found }",
    ];
    for (i, line) in cases.iter().enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, line, "", "");
        assert_eq!(ours, theirs, "{line:?}");
    }
}
