//! Variables as the round-6 review found them different from HAProxy 2.6's, hapx-proxy
//! next to HAProxy on the same configurations and traffic (the same asserts on both):
//! - `req`/`res` scopes: one at a time (`req` during the request, `res` from the response
//!   on), no default for a scope that is not there, in HTTP and TCP;
//! - `tcp-request connection set-var(txn.x|req.x)` sets nothing (no stream yet);
//! - `set-var-fmt` values cut at 16383 bytes (`tune.bufsize` - 1);
//! - ACL `-m int` / `-m bool` on variables cast as HAProxy (`12abc` is 12, an address its
//!   number);
//! - a set its conditions refuse still creates the variable (traffic and checks);
//! - `get var`: level operator, each unprintable byte shown as `.`, `bin` as text;
//! - a 400 after a kept-alive request logs no `txn` variable of the previous one;
//! - a check's `var(txn.x,DEFAULT)` gives nothing; `bool()`/`int()` arguments; `-c`
//!   messages of variable rules.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{NamedServer, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, Syslog, TIMEOUTS, check_frontend_line, exchange, get,
    side_by_side,
};
use hapx_tests::require;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// Asserts hapx's observation is `expected`, and HAProxy's too where it runs.
fn assert_both<T: std::fmt::Debug + PartialEq>(ours: T, theirs: Option<T>, expected: T) {
    assert_eq!(ours, expected, "hapx");
    if let Some(theirs) = theirs {
        assert_eq!(theirs, expected, "HAProxy");
    }
}

/// The headers `names` of a response (`-`: absent), forwarded ones first.
fn headers(r: &Option<Response>, forwarded: &[&str], returned: &[&str]) -> Vec<String> {
    let Some(r) = r else {
        return vec!["no response".into()];
    };
    let sent = forwarded.iter().map(|h| (h, r.forwarded(h)));
    let got = returned.iter().map(|h| (h, r.header(h)));
    (sent.chain(got))
        .map(|(h, v)| format!("{h}={}", v.unwrap_or("-")))
        .collect()
}

#[test]
fn request_and_response_scopes_live_as_haproxys() {
    let test = "request_and_response_scopes_live_as_haproxys";
    let web = EchoServer::start("web");
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\n\
         defaults\n  log global\n  mode http\n{TIMEOUTS}\
         \x20 log-format \"LOG req=%[var(req.r,dr)] res=%[var(res.s,ds)] txn=%[var(txn.t,dt)]\"\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(req.r) int(7)\n\
         \x20 http-request set-var(res.early) int(9)\n\
         \x20 http-request set-var(txn.t) int(1)\n\
         \x20 http-request set-header x-resinreq %[var(res.x,dflt)]\n\
         \x20 http-request set-header x-reqinreq %[var(req.r,dflt)]\n\
         \x20 http-response set-var(res.s) int(8)\n\
         \x20 http-response set-header x-early %[var(res.early,dflt)]\n\
         \x20 http-response set-header x-resp-req %[var(req.r,dr)]\n\
         \x20 http-response set-header x-resp-txn %[var(txn.t)]\n\
         \x20 default_backend web\n\
         backend web\n  server w {web}\n",
        log = syslog.addr,
        web = web.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let r = exchange(a, &[get("/", "connection: close\r\n")]);
        let seen = headers(
            &r[0],
            &["x-resinreq", "x-reqinreq"],
            &["x-early", "x-resp-req", "x-resp-txn"],
        );
        (seen, syslog.lines(1))
    });
    let expected = (
        [
            "x-resinreq=",
            "x-reqinreq=7",
            "x-early=dflt",
            "x-resp-req=",
            "x-resp-txn=1",
        ]
        .map(String::from)
        .to_vec(),
        vec!["LOG req=- res=8 txn=1".to_string()],
    );
    assert_both(ours, theirs, expected);
}

/// What a TCP client saw: the server's first line, or nothing when the proxy closed.
fn tcp_first_line(addr: SocketAddr) -> String {
    let Ok(s) = TcpStream::connect(addr) else {
        return "no connection".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line
}

#[test]
fn tcp_connection_rules_have_no_stream_variables() {
    let test = "tcp_connection_rules_have_no_stream_variables";
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
         \x20 log-format \"LOG req=%[var(req.r,dr)] c=%[var(txn.c,dc)] s=%[var(sess.s,ds)]\"\n\
         frontend fe\n  bind {addr}\n\
         \x20 tcp-request connection set-var(txn.c) int(1)\n\
         \x20 tcp-request connection set-var(req.c) int(1)\n\
         \x20 tcp-request connection set-var(sess.s) int(2)\n\
         \x20 tcp-request content set-var(req.r) int(3)\n\
         \x20 use_backend two if {{ var(txn.c) -m int 1 }}\n\
         \x20 use_backend two if {{ var(req.c) -m int 1 }}\n\
         \x20 default_backend one\n\
         backend one\n  server a {one}\n\
         backend two\n  server b {two}\n",
        log = syslog.addr,
        one = one.addr,
        two = two.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        (tcp_first_line(a), syslog.lines(1))
    });
    let expected = ("one\n".to_string(), vec!["LOG req=- c=dc s=2".to_string()]);
    assert_both(ours, theirs, expected);
}

#[test]
fn format_values_stop_at_haproxys_buffer() {
    let test = "format_values_stop_at_haproxys_buffer";
    let dir = temp_dir(test);
    let sock = dir.join("stats.sock");
    let addr = front();
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(sess.acc) str(abcdefgh) if !{{ var(sess.acc) -m found }}\n\
         \x20 http-request set-var-fmt(sess.acc) \"%[var(sess.acc)]%[var(sess.acc)]\"\n\
         \x20 http-request set-var(proc.len) var(sess.acc),length\n\
         \x20 http-request return status 200 content-type text/plain string ok\n",
        sock = sock.display(),
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let requests = vec![get("/", ""); 20];
        let answered = exchange(a, &requests).iter().flatten().count();
        (answered, cli(&sock, "get var proc.len"))
    });
    assert_both(
        ours,
        theirs,
        (20, "proc.len: type=sint value=<16383>\n".to_string()),
    );
}

#[test]
fn acl_matches_cast_variables_as_haproxys() {
    let test = "acl_matches_cast_variables_as_haproxys";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(txn.hs) req.hdr(x-v)\n\
         \x20 http-request set-var(txn.ip) src\n\
         \x20 http-request set-header x-int yes if {{ var(txn.hs) -m int 12 }}\n\
         \x20 http-request set-header x-ipint yes if {{ var(txn.ip) -m int 2130706433 }}\n\
         \x20 http-request set-header x-ipbool yes if {{ var(txn.ip) -m bool }}\n\
         \x20 http-request set-header x-strbool yes if {{ var(txn.hs) -m bool }}\n\
         \x20 http-request set-header x-add %[var(txn.hs),add(1)]\n\
         \x20 default_backend web\n\
         backend web\n  server w {web}\n",
        web = web.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let r = exchange(a, &[get("/", "x-v: 12abc\r\nconnection: close\r\n")]);
        headers(
            &r[0],
            &["x-int", "x-ipint", "x-ipbool", "x-strbool", "x-add"],
            &[],
        )
    });
    let expected = [
        "x-int=yes",
        "x-ipint=yes",
        "x-ipbool=yes",
        "x-strbool=yes",
        "x-add=13",
    ];
    assert_both(ours, theirs, expected.map(String::from).to_vec());
}

#[test]
fn a_refused_conditional_set_creates_the_variable() {
    let test = "a_refused_conditional_set_creates_the_variable";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(txn.a,ifset) int(1)\n\
         \x20 http-request set-var(txn.a,ifexists) int(2)\n\
         \x20 http-request set-var(txn.b,ifempty) int(1)\n\
         \x20 http-request set-var(txn.b,ifexists) int(2)\n\
         \x20 http-request set-var(txn.c,ifnotempty) req.hdr(x-empty)\n\
         \x20 http-request set-var(txn.c,ifexists) int(3)\n\
         \x20 http-request set-var(txn.d,ifexists) int(4)\n\
         \x20 http-request set-var(txn.d,ifexists) int(5)\n\
         \x20 http-request set-var(txn.e,ifset,) int(6)\n\
         \x20 http-request set-var(txn.e,ifnotexists) int(7)\n\
         \x20 http-request set-header x-a %[var(txn.a,none)]\n\
         \x20 http-request set-header x-b %[var(txn.b,none)]\n\
         \x20 http-request set-header x-c %[var(txn.c,none)]\n\
         \x20 http-request set-header x-d %[var(txn.d,none)]\n\
         \x20 http-request set-header x-e %[var(txn.e,none)]\n\
         \x20 default_backend web\n\
         backend web\n  server w {web}\n",
        web = web.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let r = exchange(a, &[get("/", "x-empty:\r\nconnection: close\r\n")]);
        headers(&r[0], &["x-a", "x-b", "x-c", "x-d", "x-e"], &[])
    });
    let expected = ["x-a=2", "x-b=2", "x-c=3", "x-d=none", "x-e=none"];
    assert_both(ours, theirs, expected.map(String::from).to_vec());
}

/// A server keeping the first line each connection sends it, until it has `count`.
fn first_lines(listener: &TcpListener, count: usize) -> Vec<String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(10);
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    while lines.lock().unwrap().len() < count && Instant::now() < deadline {
        match listener.accept() {
            Ok((conn, _)) => {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    conn.set_nonblocking(false).ok();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
                    let mut line = String::new();
                    if BufReader::new(conn).read_line(&mut line).is_ok() && !line.is_empty() {
                        lines.lock().unwrap().push(line);
                    }
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut lines = lines.lock().unwrap().clone();
    lines.truncate(count);
    lines
}

#[test]
fn check_variables_create_and_default_as_haproxys() {
    let test = "check_variables_create_and_default_as_haproxys";
    let listener = TcpListener::bind((LO, 0)).expect("binding a check server");
    let server = listener.local_addr().expect("its address");
    let addr = front();
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}  timeout check 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  option tcp-check\n  tcp-check connect\n\
         \x20 tcp-check set-var(check.a,ifset) int(1)\n\
         \x20 tcp-check set-var(check.a,ifexists) int(2)\n\
         \x20 tcp-check send-lf \"L txn=[%[var(txn.nope,dflt)]] req=[%[var(req.nope,dflt)]] sess=[%[var(sess.nope,dflt)]] a=[%[var(check.a,none)]]\\n\"\n\
         \x20 server s {server} check inter 300ms\n",
        front = addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |_| first_lines(&listener, 2));
    let line = "L txn=[] req=[] sess=[dflt] a=[2]\n".to_string();
    assert_both(ours, theirs, vec![line.clone(), line]);
}

#[test]
fn get_var_needs_operator_and_shows_printable_bytes() {
    let test = "get_var_needs_operator_and_shows_printable_bytes";
    let dir = temp_dir(test);
    let (user, oper) = (dir.join("user.sock"), dir.join("oper.sock"));
    let addr = front();
    let config = format!(
        "global\n  stats socket {user} level user\n  stats socket {oper} level operator\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(proc.h) req.hdr(x-v)\n\
         \x20 http-request set-var(proc.nl) url_param(a),url_dec\n\
         \x20 http-request set-var(proc.bin) req.hdr(x-b),b64dec\n\
         \x20 http-request set-var(proc.t) bool(true)\n\
         \x20 http-request set-var(proc.big) int(99999999999999999999)\n\
         \x20 http-request return status 200 content-type text/plain string ok\n",
        user = user.display(),
        oper = oper.display(),
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let headers = "x-v: a\tb\u{1}c\u{e9}\r\nx-b: RwBU\r\nconnection: close\r\n";
        let answered = exchange(a, &[get("/?a=x%0A%0Ainjected", headers)]);
        let shown = ["proc.h", "proc.nl", "proc.bin", "proc.t", "proc.big"]
            .map(|v| cli(&oper, &format!("get var {v}")));
        (
            answered.iter().flatten().count(),
            cli(&user, "get var proc.h"),
            shown,
        )
    });
    let expected = (
        1,
        "Permission denied\n\n".to_string(),
        [
            "proc.h: type=str value=<a.b.c..>\n",
            "proc.nl: type=str value=<x..injected>\n",
            "proc.bin: type=bin value=<G>\n",
            "proc.t: type=bool value=<1>\n",
            "proc.big: type=sint value=<9223372036854775807>\n",
        ]
        .map(String::from),
    );
    assert_both(ours, theirs, expected);
}

#[test]
fn a_bad_request_after_a_kept_alive_one_logs_no_transaction_variable() {
    let test = "a_bad_request_after_a_kept_alive_one_logs_no_transaction_variable";
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\n\
         defaults\n  log global\n  mode http\n{TIMEOUTS}\
         \x20 log-format \"LOG %ST txn=%[var(txn.t,none)] sess=%[var(sess.s,none)]\"\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(txn.t) path\n\
         \x20 http-request set-var(sess.s) path\n\
         \x20 http-request return status 200 content-type text/plain string ok\n",
        log = syslog.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut s = TcpStream::connect(a).expect("connecting to the proxy");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(b"GET /first HTTP/1.1\r\nhost: a\r\n\r\n")
            .expect("sending");
        let mut reader = BufReader::new(s.try_clone().expect("a clone"));
        let first = hapx_tests::proxy_rules::read_response(&mut reader).map(|r| r.status);
        s.write_all(b"GET /bad path HTTP/1.1 junk\r\nhost: a\r\n\r\n")
            .expect("sending");
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        let second = String::from_utf8_lossy(&rest)
            .lines()
            .next()
            .map(String::from);
        (first, second, syslog.lines(2))
    });
    let expected = (
        Some(200),
        Some("HTTP/1.1 400 Bad request".to_string()),
        [
            "LOG 200 txn=/first sess=/first",
            "LOG 400 txn=- sess=/first",
        ]
        .map(String::from)
        .to_vec(),
    );
    assert_both(ours, theirs, expected);
}

#[test]
fn variable_rule_messages_read_like_haproxys() {
    let test = "variable_rule_messages_read_like_haproxys";
    if !require::path(test, std::path::Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        "  http-request set-var(txn.x) bool(true)",
        "  http-request set-var(txn.x) bool(FALSE)",
        "  http-request set-var(txn.x) bool(2)",
        "  http-request set-var(txn.x) bool()",
        "  http-request set-var(txn.x) int(-99999999999999999999)",
        "  http-request set-var(txn.x) int(12abc)",
        "  http-request set-var(txn.x) str(a,b)",
        "  http-request set-var(txn.x) var(txn.y,a,b)",
        "  http-request unset-var(txn.x,ifset)",
        "  http-request unset-var(txn.x,)",
        "  http-request set-var(txn.x,ifset,) str(a)",
        "  http-request set-var(txn.x,,ifset) str(a)",
        "  http-request set-var(txn.x) status",
        "  tcp-request content set-var(txn.x) status",
    ];
    for (i, line) in cases.iter().enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, line, "", "");
        assert_eq!(ours, theirs, "{line:?}");
    }
}

#[test]
fn the_proxys_own_replies_start_the_response_scope() {
    let test = "the_proxys_own_replies_start_the_response_scope";
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {log} local0\n\
         defaults\n  log global\n  mode http\n{TIMEOUTS}\
         \x20 log-format \"LOG req=%[var(req.r,dr)] res=%[var(res.s,ds)]\"\n\
         frontend fe\n  bind {addr}\n\
         \x20 http-request set-var(req.r) int(7)\n\
         \x20 http-request deny if {{ path /deny }}\n\
         \x20 http-request return status 200 hdr x-r \"%[var(req.r,dr)]\"\n\
         \x20 http-after-response set-header x-after \"%[var(req.r,dr)]/%[var(res.s,ds)]\"\n",
        log = syslog.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen = Vec::new();
        for path in ["/deny", "/ret"] {
            let r = exchange(a, &[get(path, "connection: close\r\n")]);
            seen.push(headers(&r[0], &[], &["x-r", "x-after"]));
            seen.push(syslog.lines(1));
        }
        seen
    });
    let expected = [
        vec!["x-r=-", "x-after=/ds"],
        vec!["LOG req=- res=ds"],
        vec!["x-r=7", "x-after=/ds"],
        vec!["LOG req=- res=ds"],
    ]
    .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
    .to_vec();
    assert_both(ours, theirs, expected);
}

/// What the log says of a TCP connection from `source` that the proxy ends without an
/// answer.
fn tcp_ended_from(addr: SocketAddr, source: Ipv4Addr, syslog: &Syslog) -> Vec<String> {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("binding the client's address");
    socket
        .connect(&addr.into())
        .expect("connecting to the proxy");
    let mut s = TcpStream::from(socket);
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = s.read(&mut [0u8; 16]);
    syslog.lines(1)
}

#[test]
fn a_tcp_streams_scope_follows_its_outcome() {
    let test = "a_tcp_streams_scope_follows_its_outcome";
    let syslog = Syslog::bind();
    let addr = front();
    let nowhere = front();
    let config = format!(
        "global\n  log {log} local0\n\
         defaults\n  log global\n  mode tcp\n{TIMEOUTS}  retries 0\n\
         \x20 log-format \"LOG req=%[var(req.r,dr)] res=%[var(res.s,ds)]\"\n\
         frontend fe\n  bind {addr}\n\
         \x20 tcp-request content set-var(req.r) int(7)\n\
         \x20 tcp-request content reject if {{ src 127.0.0.2 }}\n\
         \x20 default_backend be\n\
         backend be\n  server s {nowhere}\n",
        log = syslog.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        // A refused connection to the server ends the request's analysis; a rejected
        // request does not.
        let failed = tcp_ended_from(a, LO, &syslog);
        let rejected = tcp_ended_from(a, Ipv4Addr::new(127, 0, 0, 2), &syslog);
        (failed, rejected)
    });
    let expected = (
        vec!["LOG req=- res=ds".to_string()],
        vec!["LOG req=7 res=-".to_string()],
    );
    assert_both(ours, theirs, expected);
}
