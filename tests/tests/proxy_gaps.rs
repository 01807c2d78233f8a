//! Gaps hapx-proxy had with HAProxy 2.6, each run through both on the same configuration:
//! - header fetches without a name (`req.hdr_cnt`, `req.hdr()`, `res.fhdr(,2)`, `hdr_ip`,
//!   `shdr_val` ...): every header, the counts even without parentheses; `hdr_val`'s
//!   `strl2ic` and `hdr_ip`'s `url2ipv4` readings (the `hdr_ip` ACL's too);
//! - `srv_is_up(server)` without a backend: the section it is written in;
//! - `http-request|http-response|http-after-response strict-mode off`: a failed rewrite is
//!   counted (`wrew`) and ignored, for the rest of that rule list only;
//! - `source ADDR[:PORT]` (a backend's) and `server ... source ADDR[:LOW-HIGH]`: the local
//!   address of server connections and health checks; each server's own range, its ports
//!   back once the proxy closes (no TIME_WAIT), an exhausted range failing at once with
//!   HAProxy's alert, a check's bind failure worded as HAProxy's;
//! - a failed strict `http-after-response` rewrite of the proxy's own reply: a 500.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, Syslog, TIMEOUTS, binaries, check_alike, check_messages, side_by_side,
};
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// Sends `request` on a new connection; all that came back until the peer closed.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return "no connection".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = s.write_all(request.as_bytes());
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// The value of header `name` (lower case) in a response's head.
fn header(response: &str, name: &str) -> String {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    let prefix = format!("{name}: ");
    head.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("(none)")
        .to_string()
}

/// The status code of a response.
fn status(response: &str) -> String {
    response.split(' ').nth(1).unwrap_or_default().to_string()
}

const REQUEST_HEADERS: &str =
    "Host: a\r\nX-A: 12abc, 1.2.3.4:80\r\nX-B: ::1\r\nX-B: -127.0.0.5\r\nX-c: 9\r\n";

/// Header fetches without a name, in rules on the request and on the response: counts,
/// values by occurrence, the last value (`req.hdr()`), integers and addresses, and in ACLs
/// every value.
#[test]
fn header_fetches_without_a_name_read_every_header() {
    let test = "header_fetches_without_a_name_read_every_header";
    let web = EchoServer::start_with("web", "x-r: 7, 8\r\nx-s: 10.0.0.9\r\n");
    let addr = front();
    let acls = [
        "req.hdr_ip(,0) -m ip 127.0.0.5",
        "hdr_cnt gt 5",
        "req.hdr(,1) -m str a",
        "req.hdr() -m str 9",
        "req.hdr_val() -m int 12",
        "hdr_beg() 12",
        "req.hdr -m found",
        "hdr_ip ::1",
        "hdr_ip() ::1",
        "req.fhdr() -m sub 1.2.3.4:80",
        "hdr_ip(x-a) 1.2.3.4",
    ];
    let mut config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend be\n"
    );
    for (i, acl) in acls.iter().enumerate() {
        config += &format!("  acl a{i} {acl}\n  http-request set-var(txn.a{i}) bool(1) if a{i}\n");
    }
    let request_fetches = [
        "req.hdr_cnt",
        "req.hdr_cnt()",
        "req.fhdr_cnt",
        "hdr_cnt",
        "req.hdr_cnt(connection)",
        "req.hdr",
        "req.fhdr",
        "hdr",
        "req.hdr()",
        "req.hdr(,1)",
        "req.fhdr(,2)",
        "req.hdr(,-1)",
        "hdr(,0)",
        "req.hdr_val(,1)",
        "req.hdr_val(,2)",
        "req.hdr_val(,3)",
        "req.hdr_val(,-2)",
        "hdr_val(,-1)",
        "req.hdr_ip(,3)",
        "req.hdr_ip(,4)",
        "hdr_ip(,-1)",
        "req.hdr_ip()",
        "req.hdr_ip",
    ];
    for (i, fetch) in request_fetches.iter().enumerate() {
        config += &format!("  http-request set-var(txn.f{i}) {fetch}\n");
    }
    let vars = |prefix: &str, n: usize| -> String {
        (0..n)
            .map(|i| format!("%[var(txn.{prefix}{i})]|"))
            .collect()
    };
    let response_fetches = [
        "res.hdr_cnt",
        "res.fhdr_cnt",
        "shdr_cnt",
        "res.hdr",
        "res.hdr(,1)",
        "res.hdr()",
        "res.fhdr(,3)",
        "shdr(,-2)",
        "res.hdr_val(,2)",
        "res.hdr_ip(,-1)",
        "shdr_val(,3)",
        "shdr_ip(,5)",
        "res.fhdr()",
    ];
    // Fetched before any rule adds a header to the response.
    let mut shown = String::new();
    for (i, fetch) in response_fetches.iter().enumerate() {
        config += &format!("  http-response set-var(txn.r{i}) {fetch}\n");
        shown += &format!("%[var(txn.r{i})]|");
    }
    config += &format!(
        "  http-response set-header x-acl \"{}\"\n  http-response set-header x-req \"{}\"\n",
        vars("a", acls.len()),
        vars("f", request_fetches.len())
    );
    config += &format!(
        "  http-response set-header x-res \"{shown}\"\nbackend be\n  server web {}\n",
        web.addr
    );
    let request = format!("GET / HTTP/1.1\r\n{REQUEST_HEADERS}Connection: close\r\n\r\n");
    let traffic = |addr| {
        let response = exchange(addr, &request);
        ["x-acl", "x-req", "x-res"].map(|h| header(&response, h))
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        [
            "|1|1|1|1|1|||1|1|1|",
            "6|6|5|6|0||||9|a|12abc, 1.2.3.4:80|9|9|0|12|818284|-126797985|9|1.2.3.4|::1||||",
            "4|3|4||82|10.0.0.9|10.0.0.9|8|7|10.0.0.9|8||10.0.0.9|",
        ]
        .map(String::from),
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A header fetch's arguments: at most a name and an occurrence (a name only for the
/// counts), the occurrence an integer; an empty one is 0.
#[test]
fn header_fetch_arguments_are_checked_as_haproxy_does() {
    let test = "header_fetch_arguments_are_checked_as_haproxy_does";
    let lines = [
        "http-request set-var(txn.a) req.hdr_cnt(a,b)",
        "http-request set-var(txn.a) req.hdr(a,1,2)",
        "http-request set-var(txn.a) req.hdr(a,x)",
        "http-request set-header a %[hdr(a,x)]",
        "acl x req.hdr(a,x) -m found",
        "acl y hdr_cnt(a,b) 1",
        "acl z hdr_beg(a,x) b",
        "http-request set-var(txn.a) res.fhdr(,)",
    ];
    for line in lines {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {}\n  {line}\n",
            front()
        );
        let (code, messages) = check_alike(test, &text);
        assert!(
            code != 0 || line.ends_with("(,)"),
            "{line}: {code} {messages:?}"
        );
    }
}

/// `srv_is_up(s)` finds `s` in the section it is written in: a listen section's own
/// servers, a backend's in that backend's rules.
#[test]
fn srv_is_up_without_a_backend_looks_in_its_own_section() {
    let test = "srv_is_up_without_a_backend_looks_in_its_own_section";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}listen li\n  bind {addr}\n\
         \x20 acl s2_up srv_is_up(s2)\n\
         \x20 http-request set-var(txn.s2) str(down) if !s2_up\n\
\
         \x20 http-request return status 200 content-type text/plain \
         lf-string \"s1=%[srv_is_up(s1)] s2=%[srv_is_up(s2)] full=%[srv_is_up(li/s2)] \
         acl=%[var(txn.s2)]\" unless {{ path /be }}\n\
         \x20 use_backend be if {{ path /be }}\n\
         \x20 server s1 {web}\n  server s2 {web} disabled\n\
         backend be\n\
         \x20 http-request return status 200 content-type text/plain \
         lf-string \"t1=%[srv_is_up(t1)] t2=%[srv_is_up(t2)]\"\n\
         \x20 server t1 {web} disabled\n  server t2 {web}\n",
        web = web.addr
    );
    let traffic = |addr| {
        ["/", "/be"].map(|path| {
            let response = exchange(
                addr,
                &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
            );
            response
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        ["s1=1 s2=0 full=0 acl=down", "t1=0 t2=1"].map(String::from),
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// wrew and eint of a `show stat` row.
/// A listen section's `srv_is_up(s)` keeps looking at its own `s` once a `use_backend`
/// switched the request to a backend with a server of the same name (HAProxy resolves the
/// argument when it parses it), in its response and after-response rules alike; `nbsrv`
/// without a name is the current backend's.
#[test]
fn srv_is_up_without_a_backend_stays_in_its_section_after_a_switch() {
    let test = "srv_is_up_without_a_backend_stays_in_its_section_after_a_switch";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}listen li\n  bind {addr}\n\
         \x20 use_backend be if {{ path /be }}\n\
         \x20 http-response set-header x-up \"%[srv_is_up(s)] nb=%[nbsrv]\"\n\
         \x20 http-after-response set-header x-after \"%[srv_is_up(s)]\"\n\
         \x20 server s {web}\n\
         backend be\n  server s {web} disabled\n  server t {web}\n",
        web = web.addr
    );
    let traffic = |addr| {
        ["/", "/be"].map(|path| {
            let response = exchange(
                addr,
                &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
            );
            format!(
                "{} {}",
                header(&response, "x-up"),
                header(&response, "x-after")
            )
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        ["1 nb=1 1", "1 nb=1 1"].map(String::from),
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

fn failures(csv: &str, proxy: &str, server: &str) -> (String, String) {
    let row: HashMap<String, String> = stat_row(csv, proxy, server).unwrap_or_default();
    let get = |col: &str| row.get(col).cloned().unwrap_or_default();
    (get("wrew"), get("eint"))
}

/// `strict-mode off`: a failed rewrite leaves the message as it was (a header that no
/// longer fits is not added), is counted in `wrew` (not `eint`) and the rules go on; each
/// rule list starts strict again (a backend's after its frontend's), and `strict-mode on`
/// restores it.
#[test]
fn strict_mode_off_counts_a_failed_rewrite_and_goes_on() {
    let test = "strict_mode_off_counts_a_failed_rewrite_and_goes_on";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let web = EchoServer::start_with("web", "x-r: 7\r\n");
    let addr = front();
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n  log {log} local0\n  log-format \"%ST %tsc %b %s\"\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request strict-mode off if {{ hdr(x-soft) -m found }}\n\
         \x20 http-request replace-header x-a (.*) \"ab\\\\\" if {{ hdr(x-a) -m found }}\n\
         \x20 http-request set-header x-big %[req.hdr(x-c)]%[req.hdr(x-c)] if {{ hdr(x-c) -m found }}\n\
         \x20 http-request strict-mode on if {{ hdr(x-strict) -m found }}\n\
         \x20 http-request replace-header x-d (.*) \"ab\\\\\" if {{ hdr(x-d) -m found }}\n\
         \x20 http-request set-header x-after 1\n\
         \x20 http-response strict-mode off\n\
         \x20 http-response replace-header x-r (.*) \"ab\\\\\"\n\
         \x20 http-response set-header x-after-response 1\n\
         \x20 http-after-response strict-mode OFF\n\
         \x20 http-after-response replace-header x-after-response (.*) \"ab\\\\\"\n\
         \x20 http-after-response set-header x-last 1\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-request replace-header x-b (.*) \"ab\\\\\" if {{ hdr(x-b) -m found }}\n\
         \x20 server web {web}\n",
        sock = sock.display(),
        log = syslog.addr,
        web = web.addr,
    );
    let big = "y".repeat(5417);
    let requests = [
        "x-a: 1".to_string(),
        "x-a: 1\r\nx-soft: 1".into(),
        "x-b: 1\r\nx-soft: 1".into(),
        format!("x-soft: 1\r\nx-big: old\r\nx-c: {big}"),
        "x-soft: 1\r\nx-strict: 1\r\nx-d: 1".into(),
        "x-soft: 1\r\nx-d: 1".into(),
    ];
    let traffic = |addr| {
        // Each log line is read before the next request: counters are final by then.
        let (seen, logs): (Vec<String>, Vec<String>) = requests
            .iter()
            .map(|h| {
                let request =
                    format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{h}\r\n\r\n");
                let response = exchange(addr, &request);
                let forwarded: Vec<&str> = (response.lines())
                    .filter(|l| {
                        ["x-a:", "x-big:", "x-after:"]
                            .iter()
                            .any(|h| l.starts_with(h))
                    })
                    .collect();
                let returned = ["x-r", "x-after-response", "x-last"].map(|h| header(&response, h));
                let seen = format!("{} {forwarded:?} {returned:?}", status(&response));
                (seen, syslog.lines(1).concat())
            })
            .unzip();
        let csv = cli(&sock, "show stat");
        let counted = [("fe", "FRONTEND"), ("be", "BACKEND"), ("be", "web")]
            .map(|(p, s)| failures(&csv, p, s));
        (seen, logs, counted)
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let passed = "[\"7\", \"1\", \"1\"]";
    assert_eq!(
        ours.0,
        [
            "500 [] [\"(none)\", \"(none)\", \"1\"]".to_string(),
            format!("200 [\"x-a: 1\", \"x-after: 1\"] {passed}"),
            "500 [] [\"(none)\", \"(none)\", \"1\"]".into(),
            format!("200 [\"x-after: 1\"] {passed}"),
            "500 [] [\"(none)\", \"(none)\", \"1\"]".into(),
            format!("200 [\"x-after: 1\"] {passed}"),
        ],
        "hapx-proxy"
    );
    assert_eq!(
        ours.1,
        [
            "500 PR-- fe <NOSRV>",
            "200 ---- be web",
            "500 PR-- be <NOSRV>",
            "200 ---- be web",
            "500 PR-- fe <NOSRV>",
            "200 ---- be web",
        ],
        "hapx-proxy"
    );
    let pair = |w: &str, e: &str| (w.to_string(), e.to_string());
    assert_eq!(
        ours.2,
        [pair("12", "3"), pair("7", "1"), pair("6", "0")],
        "hapx-proxy"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A defaults section's rules run before a proxy's own as a list of their own: a
/// `strict-mode off` there ends with them.
#[test]
fn strict_mode_of_a_defaults_section_ends_with_its_rules() {
    let test = "strict_mode_of_a_defaults_section_ends_with_its_rules";
    let addr = front();
    let config = format!(
        "defaults def\n  mode http\n{TIMEOUTS}\
         \x20 http-request strict-mode off\n\
         \x20 http-request replace-header x-d (.*) \"ab\\\\\"\n\
         frontend fe from def\n  bind {addr}\n\
         \x20 http-request replace-header x-a (.*) \"ab\\\\\"\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"%[req.hdr(x-d)]\"\n"
    );
    let traffic = |addr| {
        ["x-d: 1", "x-d: 1\r\nx-a: 1"].map(|h| {
            let request = format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{h}\r\n\r\n");
            let response = exchange(addr, &request);
            let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
            format!(
                "{} {}",
                status(&response),
                if body.starts_with('<') { "" } else { body }
            )
        })
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(ours, ["200 1", "500 "].map(String::from), "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `strict-mode` takes `on` or `off` (any case), one of them.
#[test]
fn strict_mode_arguments_are_checked_as_haproxy_does() {
    let test = "strict_mode_arguments_are_checked_as_haproxy_does";
    for (line, valid) in [
        ("http-request strict-mode", false),
        ("http-request strict-mode maybe", false),
        ("http-request strict-mode On", true),
        ("http-response strict-mode on foo", false),
        ("http-after-response strict-mode off if TRUE", true),
    ] {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {}\n  {line}\n",
            front()
        );
        let (code, messages) = check_alike(test, &text);
        assert_eq!(code == 0, valid, "{line}: {messages:?}");
    }
}

/// A server that records the address of every connection it accepts, answering an HTTP
/// request with `PEER-IP PEER-PORT` and closing first (so that no TIME_WAIT holds the
/// proxy's side of the connection).
fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(peer) = conn.peer_addr() else {
                continue;
            };
            seen.lock().expect("the peers").push(peer);
            thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let body = format!("{} {}", peer.ip(), peer.port());
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = (&conn).write_all(response.as_bytes());
            });
        }
    });
    (addr, peers)
}

/// `source` binds a backend's connections and health checks to an address; a server's
/// `source` with a port range takes its ports in turn (not beyond its end: when a port
/// comes back depends on when each proxy closes the connection that held it).
#[test]
fn source_binds_server_connections_and_checks() {
    let test = "source_binds_server_connections_and_checks";
    let dir = temp_dir(test);
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        // Servers and ports of its own per binary: no connection of one run meets the
        // other's.
        let (web, _) = recording_server();
        let (checked, check_peers) = recording_server();
        let low = free_port();
        let addr = front();
        let config = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
             \x20 use_backend ranged if {{ path /ranged }}\n  default_backend plain\n\
             backend plain\n  source 127.0.0.2\n  server web {web}\n\
             backend ranged\n  source 127.0.0.2\n\
             \x20 server web {web} source 127.0.0.3:{low}-{high}\n\
             backend health\n  option httpchk\n  source 127.0.0.4:0\n\
             \x20 server c {checked} check inter 200\n",
            high = low + 2
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, addr, &[]);
        let answers: Vec<String> = ["/", "/ranged", "/ranged", "/ranged"]
            .iter()
            .map(|path| {
                let request =
                    format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
                let response = exchange(addr, &request);
                let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
                match body.split_once(' ') {
                    // A ranged port as its place in the range.
                    Some((ip, port)) if ip == "127.0.0.3" => {
                        format!(
                            "{ip} +{}",
                            port.parse::<u16>().unwrap_or(0).wrapping_sub(low)
                        )
                    }
                    Some((ip, _)) => ip.to_string(),
                    None => format!("no answer: {response:?}"),
                }
            })
            .collect();
        let checked_from = eventually(Duration::from_secs(5), || {
            !check_peers.lock().expect("the peers").is_empty()
        })
        .then(|| check_peers.lock().expect("the peers")[0].ip());
        results.push((label, answers, checked_from));
    }
    let (_, ours, checked) = &results[0];
    assert_eq!(
        ours,
        &["127.0.0.2", "127.0.0.3 +0", "127.0.0.3 +1", "127.0.0.3 +2",],
        "hapx-proxy"
    );
    assert_eq!(
        *checked,
        Some(IpAddr::from([127, 0, 0, 4])),
        "hapx-proxy's check"
    );
    if let Some((_, theirs, their_check)) = results.get(1) {
        assert_eq!(
            (ours, checked),
            (theirs, their_check),
            "hapx-proxy, then HAProxy"
        );
    }
}

/// `source`'s address as HAProxy reads it: a port but no range on a backend, valid ports,
/// an address or a resolvable name, only `usesrc` and `interface` after it.
#[test]
fn source_lines_are_checked_as_haproxy_does() {
    let test = "source_lines_are_checked_as_haproxy_does";
    for line in [
        "source",
        "source 127.0.0.2:40000-40010",
        "source host.invalid",
        "source 127.0.0.2 foo",
        "source ::1",
        "source 127.0.0.2:70000",
    ] {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {}\n  default_backend be\n\
             backend be\n  {line}\n  server s 127.0.0.1:1\n",
            front()
        );
        let (code, messages) = check_alike(test, &text);
        assert_eq!(code, 1, "{line}: {messages:?}");
    }
    // Valid for both, without a warning (transparent proxying included).
    let dir = temp_dir(test);
    for (line, warned) in [
        ("source 127.0.0.2:40000", None::<&str>),
        ("server s 127.0.0.1:1 source 127.0.0.2:40000-40010", None),
        ("source 0.0.0.0 usesrc clientip", None),
        ("server s 127.0.0.1:1 source 127.0.0.2 usesrc client", None),
    ] {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {}\n  default_backend be\n\
             backend be\n  {line}\n  server t 127.0.0.1:1\n",
            front()
        );
        let file = dir.join("case.cfg");
        std::fs::write(&file, text).expect("writing the configuration");
        let (code, messages) = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
        let expected: Vec<String> = warned
            .map(|w| {
                format!(
                    "WARNING: parsing [{}:10] : {w} is not implemented by hapx and is ignored.",
                    file.display()
                )
            })
            .into_iter()
            .collect();
        assert_eq!((code, messages), (0, expected), "{line}");
    }
}

/// A keep-alive HTTP server that records the peer of every connection it accepts and
/// answers each request with `PEER-IP PEER-PORT` once `open` is set, holding it until then.
/// It never closes first: the proxy closes the connections.
fn holding_server(open: Arc<AtomicBool>) -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(peer) = conn.peer_addr() else {
                continue;
            };
            seen.lock().expect("the peers").push(peer);
            let open = open.clone();
            thread::spawn(move || answer_while_open(&conn, peer, &open));
        }
    });
    (addr, peers)
}

/// Each request on `conn` answered with its peer once `open` is set, until the peer closes.
fn answer_while_open(conn: &TcpStream, peer: SocketAddr, open: &AtomicBool) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        let mut lines = 0;
        while reader.read_line(&mut line).unwrap_or(0) > 2 {
            line.clear();
            lines += 1;
        }
        if lines == 0 {
            return;
        }
        while !open.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(10));
        }
        let body = format!("{} {}", peer.ip(), peer.port());
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if (&*conn).write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// An answer as its status and the source port the server saw, as an offset from `low`.
fn status_and_port(response: &str, low: u16) -> String {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    match body.split_once(' ') {
        Some((_, port)) => format!(
            "{} +{}",
            status(response),
            port.parse::<u16>().unwrap_or(0).wrapping_sub(low)
        ),
        None => status(response),
    }
}

const CLOSING_GET: &str = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/// A port range smaller than the requests, toward a server that keeps its connections
/// open: the proxy closes each one first, without leaving the port in TIME_WAIT (HAProxy
/// resets the connections it closes before the server did), so the ports come back.
#[test]
fn source_range_ports_come_back_when_the_proxy_closes_first() {
    let test = "source_range_ports_come_back_when_the_proxy_closes_first";
    let dir = temp_dir(test);
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        let (web, _) = holding_server(Arc::new(AtomicBool::new(true)));
        let low = free_port();
        let addr = front();
        let config = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend be\n\
             backend be\n  server web {web} source 127.0.0.5:{low}-{high} pool-max-conn 0\n",
            high = low + 1
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, addr, &[]);
        let answers: Vec<String> = (0..6)
            .map(|_| status_and_port(&exchange(addr, CLOSING_GET), low))
            .collect();
        results.push(answers);
    }
    let expected = ["200 +0", "200 +1", "200 +0", "200 +1", "200 +0", "200 +1"];
    assert_eq!(results[0], expected, "hapx-proxy");
    // Which port HAProxy's ring gives next depends on when the last connection's port came
    // back (before or after the next request): each answer within the range is compared.
    let in_range = |answers: &[String]| -> Vec<bool> {
        answers
            .iter()
            .map(|a| a == "200 +0" || a == "200 +1")
            .collect()
    };
    if let Some(theirs) = results.get(1) {
        assert_eq!(
            in_range(&results[0]),
            in_range(theirs),
            "hapx-proxy, then HAProxy: {theirs:?}"
        );
    }
}

/// Servers inheriting one `source` range each have their own copy of it: the same ports
/// serve connections to both at once (their 4-tuples differ), as HAProxy's per-server rings.
#[test]
fn servers_sharing_a_source_range_each_have_their_own_ports() {
    let test = "servers_sharing_a_source_range_each_have_their_own_ports";
    let dir = temp_dir(test);
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        let open = Arc::new(AtomicBool::new(false));
        let (a, a_peers) = holding_server(open.clone());
        let (b, b_peers) = holding_server(open.clone());
        let low = free_port();
        let addr = front();
        let config = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend be\n\
             backend be\n  balance roundrobin\n  default-server source 127.0.0.6:{low}-{high}\n\
             \x20 server a {a}\n  server b {b}\n",
            high = low + 1
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, addr, &[]);
        let clients: Vec<_> = (0..4)
            .map(|_| thread::spawn(move || exchange(addr, CLOSING_GET)))
            .collect();
        let count = |peers: &Arc<Mutex<Vec<SocketAddr>>>| peers.lock().expect("peers").len();
        let all_held = eventually(Duration::from_secs(5), || {
            count(&a_peers) == 2 && count(&b_peers) == 2
        });
        open.store(true, Ordering::Relaxed);
        let mut statuses: Vec<String> = clients
            .into_iter()
            .map(|c| status(&c.join().expect("a client")))
            .collect();
        statuses.sort();
        let ports = |peers: &Arc<Mutex<Vec<SocketAddr>>>| {
            let mut ports: Vec<u16> = (peers.lock().expect("peers").iter())
                .map(|p| p.port().wrapping_sub(low))
                .collect();
            ports.sort_unstable();
            ports
        };
        results.push((all_held, statuses, ports(&a_peers), ports(&b_peers)));
    }
    let ok = || "200".to_string();
    let expected = (true, vec![ok(), ok(), ok(), ok()], vec![0, 1], vec![0, 1]);
    assert_eq!(results[0], expected, "hapx-proxy");
    if let Some(theirs) = results.get(1) {
        assert_eq!(&results[0], theirs, "hapx-proxy, then HAProxy");
    }
}

/// With every port of its range held, a connection fails at once (HAProxy's
/// `SF_ERR_RESOURCE`: retried without the turn-around, then 503 `SC--`), each attempt with
/// HAProxy's alert, as a log line too.
#[test]
fn an_exhausted_source_range_fails_at_once_with_haproxys_alert() {
    let test = "an_exhausted_source_range_fails_at_once_with_haproxys_alert";
    let dir = temp_dir(test);
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        let open = Arc::new(AtomicBool::new(false));
        let (web, peers) = holding_server(open.clone());
        let syslog = Syslog::bind();
        let low = free_port();
        let addr = front();
        let config = format!(
            "defaults\n  mode http\n  log {} local0\n  option httplog\n{TIMEOUTS}\
             frontend fe\n  bind {addr}\n  default_backend be\n\
             backend be\n  retries 3\n  server web {web} source 127.0.0.7:{low}-{high}\n",
            syslog.addr,
            high = low + 1
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, addr, &[]);
        let held: Vec<_> = (0..2)
            .map(|_| thread::spawn(move || exchange(addr, CLOSING_GET)))
            .collect();
        let both_held = eventually(Duration::from_secs(5), || {
            peers.lock().expect("peers").len() == 2
        });
        // Answered while both ports are held: a wait for a port would never end.
        let third = status(&exchange(addr, CLOSING_GET));
        let lines = syslog.lines(5);
        let alerts: Vec<&String> = lines.iter().filter(|l| l.contains("bind")).collect();
        let failed = lines
            .iter()
            .any(|l| l.contains(" 503 ") && l.contains(" SC-- "));
        let retried = lines.iter().any(|l| l.contains(" SC-- 3/3/2/2/3 "));
        let summary = (
            both_held,
            third,
            alerts.len(),
            alerts[0].clone(),
            failed,
            retried,
        );
        open.store(true, Ordering::Relaxed);
        let statuses: Vec<String> = held
            .into_iter()
            .map(|c| status(&c.join().expect("a client")))
            .collect();
        results.push((summary, statuses));
    }
    let alert = "Cannot bind to source address before connect() for backend be.";
    let expected = (
        (true, "503".to_string(), 4, alert.to_string(), true, true),
        vec!["200".to_string(), "200".to_string()],
    );
    assert_eq!(results[0], expected, "hapx-proxy");
    if let Some(theirs) = results.get(1) {
        assert_eq!(&results[0], theirs, "hapx-proxy, then HAProxy");
    }
}

/// A health check that cannot bind to its server's source address says so as HAProxy's
/// checks do (`CO_ER_CANT_BIND`, with the system's reason).
#[test]
fn a_check_that_cannot_bind_says_so() {
    let test = "a_check_that_cannot_bind_says_so";
    let dir = temp_dir(test);
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        let (web, _) = holding_server(Arc::new(AtomicBool::new(true)));
        let sock = dir.join(format!("{label}.sock"));
        let addr = front();
        let config = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend be\n\
             backend be\n  source [::1]\n  server web {web} check inter 200\n",
            sock.display()
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, addr, &[]);
        let mut last = String::new();
        eventually(Duration::from_secs(5), || {
            let row = stat_row(&cli(&sock, "show stat"), "be", "web").unwrap_or_default();
            last = row.get("last_chk").cloned().unwrap_or_default();
            !last.is_empty()
        });
        results.push(last);
    }
    let expected = "Can't bind to source address (Address family not supported by protocol)";
    assert_eq!(results[0], expected, "hapx-proxy");
    if let Some(theirs) = results.get(1) {
        assert_eq!(&results[0], theirs, "hapx-proxy, then HAProxy");
    }
}

/// In strict mode, an `http-after-response` rewrite failing on the proxy's own reply (a
/// `return`) replaces it with a 500, which goes through the rules once more (HAProxy's
/// `http_reply_and_close`): a rule failing only on the reply's header lets the 500 through
/// with the later rules applied; one failing on every message fails again on the 500, which
/// then goes as it is, for a server's response too. Logged `PR--`, counted in `wrew` and
/// `eint`.
#[test]
fn a_failed_after_response_rewrite_of_an_own_reply_is_a_500() {
    let test = "a_failed_after_response_rewrite_of_an_own_reply_is_a_500";
    let dir = temp_dir(test);
    let web = EchoServer::start("web");
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        let syslog = Syslog::bind();
        let sock = dir.join(format!("{label}.sock"));
        let (on_header, always) = (front(), front());
        let config = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode http\n  log {} local0\n  log-format \"%ST %tsc %b %s\"\n\
             {TIMEOUTS}\
             frontend fe\n  bind {on_header}\n\
             \x20 http-request return status 200 content-type text/plain string hi \
             hdr x-f foo if {{ path /ret }}\n\
             \x20 http-after-response replace-header x-f (.*) \"ab\\\\\"\n\
             \x20 http-after-response set-header x-last 1\n  default_backend be\n\
             frontend fe2\n  bind {always}\n\
             \x20 http-request return status 200 content-type text/plain string hi \
             if {{ path /ret }}\n\
             \x20 http-after-response set-header x-f foo\n\
             \x20 http-after-response replace-header x-f (.*) \"ab\\\\\"\n\
             \x20 default_backend be\n\
             backend be\n  server web {}\n",
            sock.display(),
            syslog.addr,
            web.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, on_header, &[]);
        let answers: Vec<String> = [(on_header, "/ret"), (on_header, "/"), (always, "/ret")]
            .into_iter()
            .chain([(always, "/")])
            .map(|(addr, path)| {
                let response = exchange(
                    addr,
                    &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
                );
                format!(
                    "{} x-f={} x-last={}",
                    status(&response),
                    header(&response, "x-f"),
                    header(&response, "x-last")
                )
            })
            .collect();
        let logs = syslog.lines(4);
        let csv = cli(&sock, "show stat");
        let counted = [
            failures(&csv, "fe", "FRONTEND"),
            failures(&csv, "fe2", "FRONTEND"),
        ];
        results.push((answers, logs, counted));
    }
    let text = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let count = |wrew: &str, eint: &str| (wrew.to_string(), eint.to_string());
    let expected = (
        text(&[
            "500 x-f=(none) x-last=1",
            "200 x-f=(none) x-last=1",
            "500 x-f=(none) x-last=(none)",
            "500 x-f=(none) x-last=(none)",
        ]),
        text(&[
            "500 PR-- fe <NOSRV>",
            "200 ---- be web",
            "500 PR-- fe2 <NOSRV>",
            "500 PH-- be web",
        ]),
        [count("1", "1"), count("4", "2")],
    );
    assert_eq!(results[0], expected, "hapx-proxy");
    if let Some(theirs) = results.get(1) {
        assert_eq!(&results[0], theirs, "hapx-proxy, then HAProxy");
    }
}

/// `source` ports as HAProxy's `str2sa_range` reads them (a range from 0, `atoi`'s
/// numbers, no offset, digits only for a port), and what a server's `source` reads after
/// its address (`interface`, `usesrc`; `usesrc` nowhere else). HAProxy prefixes a server
/// line's errors with `'server be/s' : `, which hapx does not: their exit codes are compared.
#[test]
fn source_ports_and_followers_are_read_as_haproxy_does() {
    let test = "source_ports_and_followers_are_read_as_haproxy_does";
    let config = |line: &str| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {}\n  default_backend be\n\
             backend be\n  {line}\n  server t 127.0.0.1:1\n",
            front()
        )
    };
    for (line, message) in [
        (
            "source 127.0.0.2:-5",
            "'source 127.0.0.2:-5' : port offset not permitted here in '127.0.0.2:-5'",
        ),
        (
            "source 127.0.0.2:abc",
            "'source 127.0.0.2:abc' : invalid character 'a' in port number 'abc' in \
             '127.0.0.2:abc'",
        ),
    ] {
        let (code, messages) = check_alike(test, &config(line));
        let place = messages.first().and_then(|m| m.split_once("] : "));
        assert_eq!((code, place.map(|p| p.1)), (1, Some(message)), "{line}");
    }
    let dir = temp_dir(test);
    for (line, valid) in [
        ("server s 127.0.0.1:1 source 127.0.0.3:0-10", true),
        ("server s 127.0.0.1:1 source 127.0.0.3:5a-6", true),
        ("server s 127.0.0.1:1 source 127.0.0.3:5000-", false),
        (
            "server s 127.0.0.1:1 source 127.0.0.3 interface lo weight 3",
            true,
        ),
        (
            "server s 127.0.0.1:1 source 127.0.0.3 interface lo usesrc client",
            true,
        ),
        ("server s 127.0.0.1:1 source 127.0.0.3 interface", false),
        ("server s 127.0.0.1:1 source 127.0.0.3 usesrc", false),
        ("server s 127.0.0.1:1 usesrc client", false),
    ] {
        let file = dir.join("case.cfg");
        std::fs::write(&file, config(line)).expect("writing the configuration");
        let codes: Vec<i32> = binaries(test)
            .into_iter()
            .map(|(_, binary)| check_messages(&binary, &file).0)
            .collect();
        assert_eq!(codes[0] == 0, valid, "{line}: hapx-proxy");
        if let Some(theirs) = codes.get(1) {
            assert_eq!(codes[0], *theirs, "{line}: hapx-proxy, then HAProxy");
        }
    }
}

/// `strict-mode off`: a `replace-header` whose result no longer fits the buffer leaves the
/// header as it was (HAProxy checks the room before it changes the value), so later rules
/// still have room; the failure is counted once.
#[test]
fn non_strict_overflowing_replace_keeps_the_header() {
    let test = "non_strict_overflowing_replace_keeps_the_header";
    let dir = temp_dir(test);
    let web = EchoServer::start("web");
    let mut results = Vec::new();
    for (label, binary) in binaries(test) {
        let sock = dir.join(format!("{label}.sock"));
        let addr = front();
        let config = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
             \x20 http-request strict-mode off\n\
             \x20 http-request replace-header x-a (.*) \\1\\1\\1\n\
             \x20 http-request set-header x-next ok\n  default_backend be\n\
             backend be\n  server web {}\n",
            sock.display(),
            web.addr
        );
        let _proxy = Proxy::start_with(binary, &dir, label, &config, addr, &[]);
        let (a, b) = ("a".repeat(5000), "b".repeat(5000));
        let request = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nx-a: {a}\r\nx-b: {b}\r\nConnection: close\r\n\r\n"
        );
        let response = exchange(addr, &request);
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let forwarded = |name: &str| {
            let prefix = format!("{name}: ");
            body.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .map_or("(none)".to_string(), |v| format!("{} bytes", v.len()))
        };
        let csv = cli(&sock, "show stat");
        let seen = (status(&response), forwarded("x-a"), forwarded("x-next"));
        results.push((seen, failures(&csv, "fe", "FRONTEND")));
    }
    let expected = (
        (
            "200".to_string(),
            "5000 bytes".to_string(),
            "2 bytes".to_string(),
        ),
        ("1".to_string(), "0".to_string()),
    );
    assert_eq!(results[0], expected, "hapx-proxy");
    if let Some(theirs) = results.get(1) {
        assert_eq!(&results[0], theirs, "hapx-proxy, then HAProxy");
    }
}
