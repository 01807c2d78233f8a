//! Size and descriptor limits, and a refused response's server connection, run through
//! hapx-proxy, then HAProxy 2.6 when installed, with the same assertions (HAProxy's
//! behaviour, measured, is what they assert).
//!
//! - `tune.vars.*-max-size`: a variable counts 80 bytes plus its string's in its scope and
//!   the enclosing ones; a set that does not fit is refused silently; a process variable the
//!   configuration names that does not fit refuses the configuration.
//! - `tune.pool-low-fd-ratio`/`tune.pool-high-fd-ratio`: idle server connections are kept
//!   only while the descriptors in use stay under the bounds (20% and 25% of `maxsock`), and
//!   a connection made above the high bound closes an idle one.
//! - `http-response deny` of a response that came whole keeps the server connection for
//!   the next request.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{
    Proxy, cli, free_port, http_get, kept_alive_client, read_response, temp_dir,
};
use hapx_tests::proxy_rules::binaries;
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

const DEFAULTS: &str =
    "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n";

/// One header of a response head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

// ---------------------------------------------------------------------------------------
// 1. Variables' sizes.

#[test]
fn variables_that_do_not_fit_their_scopes_are_not_set() {
    let test = "variables_that_do_not_fit_their_scopes_are_not_set";
    let dir = temp_dir("limits-more-vars");
    let big = "x".repeat(900);
    for (who, binary) in binaries(test) {
        let (txn, reqres, sess) = (free_port(), free_port(), free_port());
        let config = format!(
            "global\n  tune.vars.sess-max-size 1000\n  tune.vars.txn-max-size 200\n  tune.vars.reqres-max-size 100\n{DEFAULTS}\
             frontend txn\n  bind 127.0.0.1:{txn}\n\
             \x20 http-request set-var(txn.a) str(abcdefghij)\n\
             \x20 http-request set-var(txn.c) int(5)\n\
             \x20 http-request set-var(txn.d) int(6)\n\
             \x20 http-request return status 200 hdr x-vars \"%[var(txn.a)]|%[var(txn.c)]|%[var(txn.d)]\"\n\
             frontend reqres\n  bind 127.0.0.1:{reqres}\n\
             \x20 http-request set-var(req.x) int(1)\n\
             \x20 http-request set-var(req.y) int(2)\n\
             \x20 http-request set-var(txn.t) int(3)\n\
             \x20 http-request set-var(txn.u) int(4)\n\
             \x20 http-request return status 200 hdr x-vars \"%[var(req.x)]|%[var(req.y)]|%[var(txn.t)]|%[var(txn.u)]\"\n\
             frontend sess\n  bind 127.0.0.1:{sess}\n\
             \x20 http-request set-var(sess.big) str({big}) if !{{ var(sess.big) -m found }}\n\
             \x20 http-request set-var(txn.a) int(1)\n\
             \x20 http-request return status 200 hdr x-vars \"%[var(sess.big),length]|%[var(txn.a)]\"\n"
        );
        let front = SocketAddr::from((LO, txn));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        // txn: 90 + 80 fit in 200, a third variable does not.
        let (status, head, _) = http_get(front, "/", None);
        assert_eq!(status, 200, "{who}");
        assert_eq!(
            header(&head, "x-vars").as_deref(),
            Some("abcdefghij|5|"),
            "{who}"
        );
        // req variables count in req/res (100: one) and in txn (200: two in all).
        let (_, head, _) = http_get(SocketAddr::from((LO, reqres)), "/", None);
        assert_eq!(header(&head, "x-vars").as_deref(), Some("1||3|"), "{who}");
        // sess holds 980 bytes: a transaction's variable does not fit beside it, on every
        // request of the connection (each stream's start frees the last one's).
        let mut conn = kept_alive_client(SocketAddr::from((LO, sess)));
        for _ in 0..2 {
            conn.get_mut()
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            let head = read_head(&mut conn);
            assert_eq!(header(&head, "x-vars").as_deref(), Some("900|"), "{who}");
        }
    }
}

/// Reads a response head (and its empty body) off a kept-alive connection.
fn read_head(conn: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

#[test]
fn process_variables_count_every_scope_and_are_given_back() {
    let test = "process_variables_count_every_scope_and_are_given_back";
    let dir = temp_dir("limits-more-proc");
    for (who, binary) in binaries(test) {
        let port = free_port();
        let sock = dir.join(format!("{who}.sock"));
        // proc.a: 90; proc.b, named by a rule: 80; a session's variable: 80 (330 in all
        // with a transaction's, over 300).
        let config = format!(
            "global\n  tune.vars.proc-max-size 300\n  set-var proc.a str(0123456789)\n  stats socket {} level admin\n{DEFAULTS}\
             frontend f\n  bind 127.0.0.1:{port}\n\
             \x20 http-request set-var(proc.b) int(1)\n\
             \x20 http-request set-var(sess.s) int(1)\n\
             \x20 http-request set-var(txn.t) int(2)\n\
             \x20 http-request return status 200 hdr x-vars \"%[var(proc.a)]|%[var(proc.b)]|%[var(sess.s)]|%[var(txn.t)]\"\n",
            sock.display()
        );
        let front = SocketAddr::from((LO, port));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        let vars = || header(&http_get(front, "/", None).1, "x-vars");
        assert_eq!(vars().as_deref(), Some("0123456789|1|1|"), "{who}");
        // A connection's variables go with it: a later one finds the same room (hapx gives
        // them back just after the connection closed, HAProxy as it closes).
        for round in 1..3 {
            assert!(
                eventually(Duration::from_secs(5), || vars().as_deref()
                    == Some("0123456789|1|1|")),
                "{who}, connection {round}: {:?}",
                vars()
            );
        }
        assert_eq!(
            cli(&sock, "get var proc.b").trim(),
            "proc.b: type=sint value=<1>",
            "{who}"
        );
    }
}

#[test]
fn a_process_variable_that_does_not_fit_refuses_the_configuration() {
    let test = "a_process_variable_that_does_not_fit_refuses_the_configuration";
    let dir = temp_dir("limits-more-proc-check");
    let port = free_port();
    let config = format!(
        "global\n  tune.vars.proc-max-size 100\n  set-var proc.a int(1)\n{DEFAULTS}\
         frontend f\n  bind 127.0.0.1:{port}\n\
         \x20 http-request return status 200 hdr a \"%[var(proc.a)]\" hdr b \"%[var(proc.b)]\"\n"
    );
    let path = dir.join("check.cfg");
    std::fs::write(&path, &config).unwrap();
    let bad_size = dir.join("size.cfg");
    std::fs::write(&bad_size, "global\n  tune.vars.txn-max-size 1x\n").unwrap();
    for (who, binary) in binaries(test) {
        let out = Command::new(&binary)
            .args(["-c", "-f"])
            .arg(&path)
            .output()
            .expect("running -c");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{who}: {stderr}");
        let expected = "check.cfg:11] : error detected in frontend 'f' while parsing 'http-request return' rule : failed to parse sample expression <var(proc.b)]> : invalid args in fetch method 'var' : (null).";
        assert!(stderr.contains(expected), "{who}: {stderr}");
        let out = Command::new(&binary)
            .args(["-c", "-f"])
            .arg(&bad_size)
            .output()
            .expect("running -c");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{who}: {stderr}");
        let expected = "size.cfg:2] : tune.vars.txn-max-size: '1x' is an invalid size";
        assert!(stderr.contains(expected), "{who}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------
// 2. Idle connections and descriptors.

/// An HTTP server that answers only once `batch` requests wait (so that that many server
/// connections are in use at once), and counts its connections still open.
struct BatchServer {
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    batch: Arc<(Mutex<(usize, usize)>, Condvar)>,
}

impl BatchServer {
    fn start() -> BatchServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding");
        let addr = listener.local_addr().expect("address");
        let open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        // (requests waiting, requests to wait for)
        let batch = Arc::new((Mutex::new((0, 1)), Condvar::new()));
        let (o, a, b) = (open.clone(), accepted.clone(), batch.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                o.fetch_add(1, Ordering::SeqCst);
                a.fetch_add(1, Ordering::SeqCst);
                let (o, b) = (o.clone(), b.clone());
                thread::spawn(move || {
                    serve_batched(conn, &b);
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        BatchServer {
            addr,
            open,
            accepted,
            batch,
        }
    }

    /// The next answers wait for `n` requests.
    fn expect_batch(&self, n: usize) {
        *self.batch.0.lock().unwrap() = (0, n);
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

fn serve_batched(conn: TcpStream, batch: &(Mutex<(usize, usize)>, Condvar)) {
    let mut writer = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
        }
        let (lock, ready) = batch;
        let mut waiting = lock.lock().unwrap();
        waiting.0 += 1;
        ready.notify_all();
        let (waiting, _) = ready
            .wait_timeout_while(waiting, Duration::from_secs(10), |w| w.0 < w.1)
            .unwrap();
        drop(waiting);
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if writer.write_all(resp).is_err() {
            return;
        }
    }
}

/// `clients` connections that each make one request at once (the server answers them
/// together), then stay open.
fn concurrent_requests(front: SocketAddr, clients: usize) -> Vec<BufReader<TcpStream>> {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let mut conn = kept_alive_client(front);
                conn.get_mut()
                    .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                    .unwrap();
                let (status, body) = read_response(&mut conn);
                assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
                conn
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Waits for the server's open connections to be `expected`, and to stay so a moment.
fn settles_at(server: &BatchServer, expected: usize) -> bool {
    eventually(Duration::from_secs(5), || server.open() == expected) && {
        thread::sleep(Duration::from_millis(200));
        server.open() == expected
    }
}

#[test]
fn idle_connections_are_bounded_by_the_descriptors_in_use() {
    let test = "idle_connections_are_bounded_by_the_descriptors_in_use";
    let dir = temp_dir("limits-more-pool");
    // maxconn 20, no runtime API: maxsock 54, so the low bound is 11 descriptors, the high
    // one 14; one listener and a thread's two pipes are always in use. With N clients and
    // their N server connections: first offered at 3 + 2N, each refused one closed.
    for (clients, idle) in [(4, 3), (5, 2), (6, 1)] {
        for (who, binary) in binaries(test) {
            let server = BatchServer::start();
            let port = free_port();
            let config = format!(
                "global\n  maxconn 20\n  nbthread 1\n{DEFAULTS}frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
                 backend b\n  http-reuse always\n  server s {}\n",
                server.addr
            );
            let front = SocketAddr::from((LO, port));
            let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
            server.expect_batch(clients);
            let _conns = concurrent_requests(front, clients);
            assert!(
                settles_at(&server, idle),
                "{who}, {clients} clients: {} server connections open, not {idle}",
                server.open()
            );
        }
    }
}

#[test]
fn a_connection_above_the_high_bound_closes_an_idle_one() {
    let test = "a_connection_above_the_high_bound_closes_an_idle_one";
    let dir = temp_dir("limits-more-pool-high");
    // maxconn 20 with a runtime API: maxsock 65, bounds 13 and 17; four idle connections
    // beside four clients and four sockets always in use (12). More clients raise the
    // count: a request then reuses one idle connection, closes another above 17, and its
    // own is not kept from 17 on.
    for (more, left) in [(4, 4), (5, 3), (6, 2)] {
        for (who, binary) in binaries(test) {
            let server = BatchServer::start();
            let port = free_port();
            let sock = dir.join(format!("{who}-{more}.sock"));
            let config = format!(
                "global\n  maxconn 20\n  nbthread 1\n  stats socket {}\n{DEFAULTS}frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
                 backend b\n  http-reuse always\n  server s {}\n",
                sock.display(),
                server.addr
            );
            let front = SocketAddr::from((LO, port));
            let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
            server.expect_batch(4);
            let _conns = concurrent_requests(front, 4);
            assert!(settles_at(&server, 4), "{who}: {}", server.open());
            let mut idle_clients: Vec<_> = (0..more).map(|_| kept_alive_client(front)).collect();
            // All of them accepted (descriptors in use) before the request.
            let conns = || current_conns(&cli(&sock, "show info"));
            assert!(
                eventually(Duration::from_secs(5), || conns() == Some(4 + more)),
                "{who}: {:?} connections",
                conns()
            );
            server.expect_batch(1);
            let last = &mut idle_clients[0];
            last.get_mut()
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(last).0, "HTTP/1.1 200 OK", "{who}");
            assert!(
                settles_at(&server, left),
                "{who}, {more} more clients: {} server connections open, not {left} ({} accepted)",
                server.open(),
                server.accepted.load(Ordering::SeqCst)
            );
            // The request reused an idle connection: none was opened.
            assert_eq!(server.accepted.load(Ordering::SeqCst), 4, "{who}");
        }
    }
}

/// `CurrConns` of a `show info` answer.
fn current_conns(info: &str) -> Option<usize> {
    info.lines()
        .find_map(|l| l.strip_prefix("CurrConns: "))
        .and_then(|v| v.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------
// 3. A refused response's server connection.

#[test]
fn a_denied_response_leaves_its_server_connection_for_the_next_request() {
    let test = "a_denied_response_leaves_its_server_connection_for_the_next_request";
    let dir = temp_dir("limits-more-deny");
    for (who, binary) in binaries(test) {
        let server = BatchServer::start();
        let port = free_port();
        let config = format!(
            "global\n  nbthread 1\n{DEFAULTS}frontend f\n  bind 127.0.0.1:{port}\n\
             \x20 http-request set-var(txn.path) path\n\
             \x20 http-response deny if {{ var(txn.path) -m str /deny }}\n\
             \x20 default_backend b\nbackend b\n  server s {}\n",
            server.addr
        );
        let front = SocketAddr::from((LO, port));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        let mut conn = kept_alive_client(front);
        for (path, status) in [
            ("/deny", "HTTP/1.1 502 Bad Gateway"),
            ("/deny", "HTTP/1.1 502 Bad Gateway"),
            ("/ok", "HTTP/1.1 200 OK"),
            ("/deny", "HTTP/1.1 502 Bad Gateway"),
            ("/ok", "HTTP/1.1 200 OK"),
        ] {
            let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
            conn.get_mut().write_all(request.as_bytes()).unwrap();
            assert_eq!(read_response(&mut conn).0, status, "{who} {path}");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "{who}");
        assert_eq!(server.open(), 1, "{who}");
    }
}
