//! Variables set outside HTTP rules and health-check requests, run by hapx-proxy and then by
//! HAProxy 2.6 on the same configuration:
//! - `set-var proc.NAME EXPR` / `set-var-fmt proc.NAME FMT` in the global section: run while
//!   the configuration is read (a later line sees the value; a variable the configuration
//!   names exists for `ifexists`/`ifnotexists`), the format rendered for HAProxy's `CFG`
//!   pseudo-proxy without a client; `get var` on the stats socket must answer as HAProxy's;
//!   their errors (scope, missing argument, a fetch needing traffic) must be HAProxy's;
//! - `set-var-fmt` in `tcp-request connection`, `tcp-request content` and `tcp-response
//!   content` rules (and `tcp-request session` ones): rendered with the connection, the payload, the proxies, the server and
//!   variables, read back through `proc` variables; a fetch a rule cannot see is refused with
//!   HAProxy's words;
//! - the request of `option httpchk` and `http-check send` (method, URI, version, headers,
//!   body, the old `option httpchk` hidden headers and body): the test servers must receive
//!   HAProxy's bytes (header names in lower case, the body's length, the connection header
//!   last and only where HTTP/1.x needs it).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_text, side_by_side};
use hapx_tests::{require, wait};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// `get var proc.NAME` for each of `names`, as the stats socket at `sock` answers.
fn proc_vars(sock: &Path, names: &[&str]) -> Vec<String> {
    (names.iter())
        .map(|n| cli(sock, &format!("get var proc.{n}")))
        .collect()
}

#[test]
fn global_set_var_answers_as_haproxy() {
    let dir = temp_dir("vars-more-global");
    let sock = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  stats socket {sock} level admin\n  setenv VARS_MORE_ENV from-env\n\
         \x20 set-var proc.a int(5)\n\
         \x20 set-var proc.b str(hello),upper\n\
         \x20 set-var-fmt proc.c \"x-%[var(proc.a)]-%b-%f-%s-%ci-%cp-%fi-%{{+Q}}[str(q)]-%[var(proc.zz)]- %ID %ft %rt\"\n\
         \x20 set-var proc.d var(proc.zz)\n\
         \x20 set-var proc.e env(VARS_MORE_ENV)\n\
         \x20 set-var proc.f bool(1)\n\
         \x20 set-var proc.g,ifnotexists int(9)\n\
         \x20 set-var proc.h,ifexists int(3)\n\
         \x20 set-var proc.a,ifexists int(7)\n\
         \x20 set-var proc.i always_true extra words\n\
         \x20 set-var-fmt proc.j  %[env(VARS_MORE_ENV),upper] ignored\n\
         \x20 set-var proc.k,ifgt int(0)\n\
         \x20 set-var proc.l var(txn.x,dflt)\n\
         \x20 set-var proc.m var(proc.zz,dflt)\n\
         defaults\n{TIMEOUTS}\
         listen l\n  bind {front}\n  server s 127.0.0.1:1\n",
        sock = sock.display()
    );
    let names = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "zz",
    ];
    let (ours, theirs) = side_by_side("global_set_var_answers_as_haproxy", &config, front, |_| {
        proc_vars(&sock, &names)
    });
    let expected = BTreeMap::from([
        ("a", "proc.a: type=sint value=<7>\n".to_string()),
        ("b", "proc.b: type=str value=<HELLO>\n".into()),
        (
            "c",
            "proc.c: type=str value=<x-5-CFG-CFG-<NOSRV>----\"q\"--  CFG 0>\n".into(),
        ),
        ("d", "Variable not found.\n\n".into()),
        ("e", "proc.e: type=str value=<from-env>\n".into()),
        ("g", "Variable not found.\n\n".into()),
        ("h", "proc.h: type=sint value=<3>\n".into()),
        ("j", "proc.j: type=str value=<FROM-ENV>\n".into()),
        // No `txn` scope there: no default either.
        ("l", "Variable not found.\n\n".into()),
        ("m", "proc.m: type=str value=<dflt>\n".into()),
    ]);
    for (name, answer) in names.iter().zip(&ours) {
        if let Some(want) = expected.get(name) {
            assert_eq!(answer, want, "hapx's proc.{name}");
        }
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "get var answers: hapx vs HAProxy");
    }
}

/// `-c` on each configuration: hapx's messages and exit status must be HAProxy's.
fn same_checks(test: &str, cases: &[String]) {
    let dir = temp_dir(test);
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    for (i, text) in cases.iter().enumerate() {
        let [ours, theirs] = check_text(&dir, i, text);
        assert_eq!(ours, theirs, "case {i}:\n{text}");
    }
}

#[test]
fn global_set_var_errors_are_haproxys() {
    let listen =
        format!("defaults\n{TIMEOUTS}listen l\n  bind 127.0.0.1:9\n  server s 127.0.0.1:1\n");
    let cases: Vec<String> = [
        "set-var txn.a int(5)",
        "set-var-fmt sess.a x",
        "set-var proc.a",
        "set-var",
        "set-var-fmt proc.a",
        "set-var proc.a src",
        "set-var proc.a nbsrv(l)",
        "set-var proc.a req.len",
        "set-var proc.a path",
        "set-var proc.a method",
        "set-var proc.a res.len",
        "set-var proc.a status",
        "set-var proc.a ssl_fc",
        "set-var proc.a fe_name",
        "set-var proc.a nosuch",
        "set-var proc.a-b int(1)",
        "set-var proc int(1)",
        "set-var proc.a int(1),ifzz",
        "set-var proc.a,ifzz int(1)",
        "set-var-fmt proc.a %[src]",
        "set-var-fmt proc.a %[be_name]",
        "set-var-fmt proc.a %[req.len]",
        "set-var-fmt proc.a %r",
        "set-var-fmt proc.a %[nosuch]",
        "set-var proc.a int(1)\n  set-var-fmt proc.b %ci",
    ]
    .iter()
    .map(|line| format!("global\n  {line}\n{listen}"))
    .collect();
    same_checks("global_set_var_errors_are_haproxys", &cases);
}

/// A TCP client: sends `hello`, reads what comes back until `srv\nhello` or a pause.
fn hello(front: SocketAddr) -> String {
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
    conn.write_all(b"hello").expect("sending");
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    while !got.ends_with(b"srv\nhello") {
        match conn.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn tcp_set_var_fmt_renders_as_haproxy() {
    let dir = temp_dir("vars-more-tcp");
    let sock = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let server = NamedServer::start("srv", LO, Duration::from_secs(2));
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  tcp-request inspect-delay 2s\n\
         \x20 tcp-request connection set-var-fmt(proc.conn) \"%[src]|%ci|%f|%b|%s|%{{+Q}}[str(x)]|%[var(proc.none)]|%{{+Q}}[var(proc.none)]|lit\"\n\
         \x20 tcp-request connection set-var-fmt(proc.literal) plain\n\
         \x20 tcp-request session set-var-fmt(proc.sess) \"%[src]|%f|%[var(proc.literal)]\"\n\
         \x20 tcp-request content set-var-fmt(proc.content) \"%[req.len]|%[req.payload(0,3)]|%[req.payload(0,3),hex]|%[var(proc.conn),word(3,|)]|%b\" if {{ req.len gt 4 }}\n\
         \x20 default_backend be\n\
         backend be\n  tcp-response inspect-delay 2s\n\
         \x20 tcp-response content set-var-fmt(proc.resp) \"%[res.payload(0,3)]|%s|%b|%f|%[var(proc.content),word(1,|)]\" if {{ res.len ge 4 }}\n\
         \x20 server s1 {addr}\n",
        sock = sock.display(),
        addr = server.addr
    );
    // Not an empty `set-var-fmt` here: HAProxy 2.6.12 dies of it (SIGSEGV) when it runs.
    let names = ["conn", "literal", "content", "resp", "sess"];
    let (ours, theirs) = side_by_side("tcp_set_var_fmt_renders_as_haproxy", &config, front, |f| {
        let reply = hello(f);
        // The response rule ran before what the server sent reached the client.
        let set = wait::eventually(Duration::from_secs(5), || {
            !cli(&sock, "get var proc.resp").starts_with("Variable not found")
        });
        (reply, set, proc_vars(&sock, &names))
    });
    assert_eq!(ours.0, "srv\nhello", "what the client got through hapx");
    assert!(ours.1, "hapx set proc.resp: {:?}", ours.2);
    assert_eq!(
        ours.2[0],
        "proc.conn: type=str value=<127.0.0.1|127.0.0.1|fe|fe|<NOSRV>|\"x\"||\"\"|lit>\n"
    );
    assert_eq!(ours.2[3], "proc.resp: type=str value=<srv|s1|be|fe|5>\n");
    assert_eq!(
        ours.2[4],
        "proc.sess: type=str value=<127.0.0.1|fe|plain>\n"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

#[test]
fn tcp_set_var_fmt_errors_are_haproxys() {
    let tcp = |frontend: &str, backend: &str| {
        format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:9\n{frontend}  default_backend b\n\
             backend b\n{backend}  server s 127.0.0.1:1\n"
        )
    };
    let front = |rule: &str| tcp(&format!("  {rule}\n"), "");
    let back = |rule: &str| tcp("", &format!("  {rule}\n"));
    let cases = vec![
        front("tcp-request connection set-var-fmt(sess.a) %[req.len]"),
        front("tcp-request connection set-var-fmt(sess.a) %[path]"),
        front("tcp-request connection set-var-fmt(sess.a) %[res.len]"),
        front("tcp-request connection set-var-fmt(sess.a) %[src]-%ci-%r"),
        front("tcp-request session set-var-fmt(sess.a) %[req.len]"),
        front("tcp-request session set-var-fmt(sess.a) %[path]"),
        front("tcp-request content set-var-fmt(txn.a) %[res.len]"),
        front("tcp-request content set-var-fmt(txn.a) %[status]"),
        front("tcp-request content set-var-fmt(txn.a) %[req.len]-%[path]"),
        front("tcp-request content set-var-fmt(txn.a)"),
        front("tcp-request content set-var-fmt(txn.a) a b"),
        front("tcp-request content set-var-fmt(txn.a) a if TRUE"),
        front("tcp-request content set-var-fmt(txn.a) %[nosuch]"),
        front("tcp-request content set-var-fmt(txn.a,ifzz) a"),
        front("tcp-request content set-var-fmt(zz.a) a"),
        back("tcp-response content set-var-fmt(txn.a) %[path]"),
        back("tcp-response content set-var-fmt(txn.a) %[req.len]"),
        back("tcp-response content set-var-fmt(txn.a) %[res.len] x y"),
        back("tcp-response content set-var-fmt(txn.a)"),
        back("tcp-response content set-var-fmt(txn.a) %r"),
    ];
    same_checks("tcp_set_var_fmt_errors_are_haproxys", &cases);
}

/// A loopback HTTP server keeping the distinct requests it receives (head and
/// Content-Length body, or up to a pause), each answered 200.
struct CaptureServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl CaptureServer {
    fn start() -> CaptureServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding a capture server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let request = read_request(&mut conn);
                let mut seen = kept.lock().unwrap();
                if !seen.contains(&request) {
                    seen.push(request);
                }
                drop(seen);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        CaptureServer { addr, seen }
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}

/// A request as it came: until its head and the body its Content-Length announces (or a
/// chunked body's last chunk) are there, or 300 ms pass quietly.
fn read_request(conn: &mut TcpStream) -> String {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = (head.lines())
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse::<usize>().ok());
            let chunked = head.contains("transfer-encoding: chunked");
            if (chunked && body.ends_with("0\r\n\r\n"))
                || (!chunked && body.len() >= length.unwrap_or(0))
            {
                return text;
            }
        }
        match conn.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => return String::from_utf8_lossy(&got).into_owned(),
        }
    }
}

#[test]
fn check_requests_are_haproxys() {
    let backends = [
        "option httpchk",
        "option httpchk GET /x HTTP/1.1\\r\\nHost:\\ Www.Ex\\r\\nX-Up:\\ A",
        "option httpchk POST /p HTTP/1.1\\r\\nX-A:\\ 1\\r\\n\\r\\nhello",
        "option httpchk GET / HTTP/1.0\\r\\nConnection:\\ close",
        "option httpchk GET /z HTTP/1.1\\r\\nX-A:\\ 1\n  http-check send hdr X-B 2",
        "option httpchk OPTIONS * HTTP/1.1",
        "option httpchk\n  http-check send meth POST uri /p ver HTTP/1.1 hdr X-V v hdr Host h body hello",
        "option httpchk HEAD /h\n  http-check send ver HTTP/1.0 hdr Connection keep-alive hdr X-B b",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr Connection keep-alive hdr X-B b body x",
        "option httpchk\n  http-check send ver HTTP/1.0 hdr Connection keep-alive hdr X-B b body x",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr Connection close hdr X-B b",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr Content-Length 3 hdr X-B b body hello",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr Content-Length 3 hdr X-B b",
        "option httpchk\n  http-check send ver HTTP/1.0 hdr Connection \"Upgrade, keep-alive\" hdr Upgrade x hdr Host H",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr Transfer-Encoding chunked body x",
        "option httpchk\n  http-check send meth GET ver HTTP/1.1 hdr X-A a body-lf \"%[var(txn.none)]\"",
        "option httpchk\n  http-check send ver HTTP/1.0 hdr X-A a body-lf \"%[var(txn.none)]\"",
        "option httpchk\n  http-check send ver HTTP/1.0 hdr Connection close hdr X-E \"%[var(txn.none)]\" hdr X-F f",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr Connection \"close, keep-alive\" hdr X-B b body-lf \"%[srv_name]\"",
        "option httpchk\n  http-check send ver HTTP/1.1 hdr connection \"Foo, close\" hdr X-aB-c b",
    ];
    let servers: Vec<CaptureServer> = backends.iter().map(|_| CaptureServer::start()).collect();
    let front = SocketAddr::from((LO, free_port()));
    let mut config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fx\n  bind {front}\n  default_backend b0\n"
    );
    for (i, (lines, server)) in backends.iter().zip(&servers).enumerate() {
        config.push_str(&format!(
            "backend b{i}\n  {lines}\n  server s {} check inter 200ms\n",
            server.addr
        ));
    }
    let (ours, theirs) = side_by_side("check_requests_are_haproxys", &config, front, |_| {
        let all_seen = wait::eventually(Duration::from_secs(10), || {
            servers.iter().all(|s| !s.seen.lock().unwrap().is_empty())
        });
        assert!(all_seen, "every server was checked");
        servers.iter().map(CaptureServer::take).collect::<Vec<_>>()
    });
    assert_eq!(ours[0], ["OPTIONS / HTTP/1.0\r\n\r\n"]);
    assert_eq!(
        ours[1],
        ["GET /x HTTP/1.1\r\nhost: Www.Ex\r\nx-up: A\r\nconnection: close\r\n\r\n"]
    );
    assert_eq!(
        ours[6],
        [
            "POST /p HTTP/1.1\r\nx-v: v\r\nhost: h\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
        ]
    );
    if let Some(theirs) = theirs {
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(o, t, "backend b{i} ({}): hapx vs HAProxy", backends[i]);
        }
    }
}
