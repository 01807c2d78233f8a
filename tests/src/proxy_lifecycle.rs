//! Harness for the server-lifecycle tests (`tests/tests/proxy_server_lifecycle.rs` in TCP
//! mode, `tests/tests/proxy_http_lifecycle.rs` in HTTP mode,
//! `tests/tests/proxy_shutdown_sessions.rs` in both): one configuration with a stats
//! socket and a syslog sink, run by hapx-proxy and then by HAProxy 2.6 with the same traffic.
//!
//! - [`Lab`]: a test's directory, stats socket, syslog sink and servers; [`Lab::run`] runs the
//!   traffic through both proxies.
//! - [`CheckPort`]: a health-check target to open and close (the checks pass, then fail).
//! - [`agree`]: hapx-proxy saw what was expected, and the same as HAProxy.
//! - [`status`], [`messages`]: a server's state on the stats socket, the proxy's messages.
//! - [`session`], [`fate`]: a TCP client session and whether the proxy closed it.
//! - [`SlowServer`]: an HTTP server whose answers on some paths are slow or unusual.
//! - [`request`], [`send`], [`received`], [`received_until`], [`answered`],
//!   [`request_logs`]: an HTTP client connection, what it received, and the requests' log
//!   lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::proxy::{TestDir, cli, free_port, stat_row, temp_dir};
use crate::proxy_rules::{Syslog, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A health-check target on a fixed port: accepts and closes connections until dropped,
/// then refuses them (the checks fail, the server's own port still serves its sessions).
#[derive(Debug)]
pub struct CheckPort {
    stop: Arc<AtomicBool>,
    done: Option<thread::JoinHandle<()>>,
}

impl CheckPort {
    pub fn open(port: u16) -> CheckPort {
        let listener = wait_for_bind(port);
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let done = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if listener.accept().is_err() {
                    thread::sleep(Duration::from_millis(5));
                }
            }
        });
        CheckPort {
            stop,
            done: Some(done),
        }
    }
}

/// Binds `port` (a closed port may linger a moment between the two runs).
fn wait_for_bind(port: u16) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind((LO, port)) {
            return l;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("could not bind the check port {port}");
}

impl Drop for CheckPort {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.done.take() {
            let _ = t.join();
        }
    }
}

/// A test's surroundings: its directory and stats socket, a syslog sink, its servers, and
/// the proxies' mode (`tcp` or `http`, with `option tcplog` or `httplog`).
#[derive(Debug)]
pub struct Lab<S> {
    /// The test's name (its directories').
    pub name: String,
    _dir: TestDir,
    pub sock: PathBuf,
    pub syslog: Syslog,
    pub servers: S,
    /// Its mode, and `timeout client` 10s unless [`Lab::client_timeout`].
    proxied: Proxied,
}

impl<S> Lab<S> {
    pub fn new(test: &str, mode: &'static str, servers: S) -> Lab<S> {
        let dir = temp_dir(test);
        Lab {
            name: test.to_string(),
            sock: dir.join("admin.sock"),
            _dir: dir,
            syslog: Syslog::bind(),
            servers,
            proxied: Proxied {
                mode,
                client_timeout: "10s",
                frontend: "",
            },
        }
    }

    /// Lines the frontend takes (rules) after its `bind` and `default_backend`.
    pub fn frontend(mut self, lines: &'static str) -> Lab<S> {
        self.proxied.frontend = lines;
        self
    }

    /// The proxies' `timeout client` (for a test that waits for it).
    pub fn client_timeout(mut self, timeout: &'static str) -> Lab<S> {
        self.proxied.client_timeout = timeout;
        self
    }

    /// `traffic` through hapx-proxy, then HAProxy, each running `backend` (see [`config`]).
    pub fn run<T>(
        &self,
        test: &str,
        backend: &str,
        traffic: impl Fn(SocketAddr) -> T,
    ) -> (T, Option<T>) {
        let port = free_port();
        let conf = config(&self.sock, self.syslog.addr, port, self.proxied, backend);
        side_by_side(test, &conf, SocketAddr::from((LO, port)), traffic)
    }
}

/// hapx-proxy saw `expected`, and so did HAProxy when installed.
pub fn agree<T: PartialEq + std::fmt::Debug>(ours: T, theirs: Option<T>, expected: T) {
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy vs HAProxy");
    }
}

/// How the proxies run a [`Lab`]'s traffic: their mode (`tcp`, `http`) and `timeout client`.
#[derive(Debug, Clone, Copy)]
pub struct Proxied {
    pub mode: &'static str,
    pub client_timeout: &'static str,
    /// The frontend's lines after `bind` and `default_backend`, each ending in `\n`.
    pub frontend: &'static str,
}

/// A frontend `fe` on `port` to `backend be` (its lines after `backend be`), as `proxy`
/// says, logging to `syslog`, with an admin stats socket at `sock`.
pub fn config(sock: &Path, syslog: SocketAddr, port: u16, proxy: Proxied, backend: &str) -> String {
    let Proxied {
        mode,
        client_timeout,
        frontend,
    } = proxy;
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode {mode}\n  log {syslog} local0\n  option {mode}log\n  timeout client {client_timeout}\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n{frontend}\
         backend be\n{backend}",
        sock.display()
    )
}

/// `show stat`'s status of `be/server`.
pub fn status(sock: &Path, server: &str) -> String {
    stat_row(&cli(sock, "show stat"), "be", server)
        .and_then(|r| r.get("status").cloned())
        .unwrap_or_default()
}

/// The next `count` messages starting with one of `prefixes`, in order (fewer after 10 s
/// without any message).
pub fn messages(syslog: &Syslog, prefixes: &[&str], count: usize) -> Vec<String> {
    let mut found = Vec::new();
    while found.len() < count {
        let Some(line) = syslog.lines(1).pop() else {
            break;
        };
        if prefixes.iter().any(|p| line.starts_with(p)) {
            found.push(line);
        }
    }
    found
}

/// A client session through the proxy, and the server that answered it.
pub fn session(front: SocketAddr) -> (String, TcpStream) {
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut name = Vec::new();
    let mut byte = [0u8; 1];
    while conn.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        name.push(byte[0]);
    }
    (String::from_utf8_lossy(&name).into_owned(), conn)
}

/// Whether the proxy closed the session within `wait` ("closed"), or left it open.
pub fn fate(conn: &mut TcpStream, wait: Duration) -> &'static str {
    conn.set_read_timeout(Some(wait)).unwrap();
    match conn.read(&mut [0u8; 16]) {
        Ok(0) => "closed",
        Ok(_) => "data",
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "open"
        }
        Err(_) => "reset",
    }
}

/// A client connection that sent `GET path`.
pub fn request(front: SocketAddr, path: &str) -> TcpStream {
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    send(&mut conn, path);
    conn
}

pub fn send(conn: &mut TcpStream, path: &str) {
    let req = format!("GET {path} HTTP/1.1\r\nhost: lab\r\n\r\n");
    conn.write_all(req.as_bytes()).expect("sending a request");
}

/// What a client connection received within `wait`, and whether the proxy then closed it
/// ("closed"), reset it, or left it open.
pub fn received(conn: &mut TcpStream, wait: Duration) -> (String, &'static str) {
    conn.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let fate = loop {
        if let Some(fate) = read_more(conn, &mut got) {
            break fate;
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), fate)
}

/// What a client connection received until it holds `expected` (or the proxy closed it, or
/// `at_most` passed), and whether the proxy then closed it, reset it, or left it open: what
/// arrived before the test's next step, however the kernel split it into reads and however
/// late a loaded machine delivers it.
pub fn received_until(
    conn: &mut TcpStream,
    expected: &str,
    at_most: Duration,
) -> (String, &'static str) {
    let deadline = std::time::Instant::now() + at_most;
    let mut got = Vec::new();
    let fate = loop {
        if String::from_utf8_lossy(&got).contains(expected) {
            break "open";
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        if let Some(fate) = read_more(conn, &mut got) {
            break fate;
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), fate)
}

/// What a client connection received once `last` arrived (within 10 s, however late and
/// however split into reads), then within `quiet` more, and whether the proxy then closed
/// it, reset it, or left it open: the wait for an answer is on its bytes, only the wait for
/// nothing more is a window.
pub fn answered(conn: &mut TcpStream, last: &str, quiet: Duration) -> (String, &'static str) {
    let (mut got, fate) = received_until(conn, last, Duration::from_secs(10));
    if fate != "open" {
        return (got, fate);
    }
    let (more, fate) = received(conn, quiet);
    got.push_str(&more);
    (got, fate)
}

/// One read of `conn` into `got`: None while data comes, else whether the proxy closed the
/// connection ("closed"), reset it, or the read timed out with it "open".
fn read_more(conn: &mut TcpStream, got: &mut Vec<u8>) -> Option<&'static str> {
    let mut buf = [0u8; 4096];
    match conn.read(&mut buf) {
        Ok(0) => Some("closed"),
        Ok(n) => {
            got.extend_from_slice(&buf[..n]);
            None
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Some("open")
        }
        Err(_) => Some("reset"),
    }
}

/// The next `count` request log lines (`httplog`), each as `SERVER REQUEST STATUS BYTES
/// FLAGS Tr`, sorted (their order races between concurrent requests).
pub fn request_logs(syslog: &Syslog, count: usize) -> Vec<String> {
    let mut found = Vec::new();
    while found.len() < count {
        let Some(line) = syslog.lines(1).pop() else {
            break;
        };
        let words: Vec<&str> = line.split(' ').collect();
        if words.len() < 12 || words[2] != "fe" {
            continue;
        }
        let request = line.split('"').nth(1).unwrap_or_default();
        let tr = words[4].split('/').nth(3).unwrap_or_default();
        found.push(format!(
            "{} {request} {} {} {} Tr={}",
            words[3],
            words[5],
            words[6],
            words[9],
            if tr == "-1" { "-1" } else { "set" }
        ));
    }
    found.sort();
    found
}

/// How long the slow answers keep the client waiting: longer than the tests' observations.
pub const SLOW: Duration = Duration::from_secs(3);

/// The size of `/big`'s body: more than the sockets between the server and a client that
/// does not read can hold.
pub const BIG: usize = 16 << 20;

/// An HTTP/1.1 keep-alive server answering `NAME\n` at once (once it read the request's
/// Content-Length body), except on `/close-body` (its head and 10 bytes of its body at
/// once, 90 more after [`SLOW`], its body delimited by its close), `/big` (a body of
/// [`BIG`] bytes), `/interim` (a `100 Continue` before its response), `/ws` (a
/// WebSocket switch and `hi`, then what comes through the tunnel echoed for [`SLOW`]),
/// `/held` (its response once the test calls [`SlowServer::release`]) and `/held-body`
/// (its head and 10 of the 100 bytes of its body at once, the rest once released).
#[derive(Debug)]
pub struct SlowServer {
    pub name: String,
    pub addr: SocketAddr,
    /// How many requests it read whole (head and body), before answering each: a test
    /// waits on it for a request to be on the server.
    pub requests: Arc<AtomicUsize>,
    gate: Arc<Gate>,
}

/// What `/held` requests wait on: the number of [`SlowServer::release`] calls so far. A
/// request takes the count when it arrives and answers once the count moved, so a test
/// decides when a server slot frees, however slow the machine is.
#[derive(Debug, Default)]
struct Gate {
    releases: Mutex<u64>,
    moved: Condvar,
}

/// How long a `/held` request waits for a release a failing test never sends.
const HELD_AT_MOST: Duration = Duration::from_secs(30);

impl Gate {
    fn ticket(&self) -> u64 {
        *self.releases.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_past(&self, ticket: u64) {
        let releases = self.releases.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .moved
            .wait_timeout_while(releases, HELD_AT_MOST, |count| *count == ticket);
    }

    fn release(&self) {
        *self.releases.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.moved.notify_all();
    }
}

impl SlowServer {
    pub fn start(name: &str) -> SlowServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a server");
        let addr = listener.local_addr().expect("its address");
        let served = name.to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Gate::default());
        let (counted, opened) = (requests.clone(), gate.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (name, counted, gate) = (served.clone(), counted.clone(), opened.clone());
                thread::spawn(move || serve(conn, &name, &counted, &gate));
            }
        });
        SlowServer {
            name: name.into(),
            addr,
            requests,
            gate,
        }
    }

    /// Lets every `/held` request received so far be answered.
    pub fn release(&self) {
        self.gate.release();
    }
}

fn serve(conn: TcpStream, name: &str, requests: &AtomicUsize, gate: &Gate) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_string();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim_end().is_empty() {
                break;
            }
            if let Some(n) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = n.trim().parse().unwrap_or(0);
            }
        }
        if reader.read_exact(&mut vec![0; length]).is_err() {
            return;
        }
        let ticket = gate.ticket();
        requests.fetch_add(1, Ordering::SeqCst);
        let sent = match path.as_str() {
            "/held" => {
                gate.wait_past(ticket);
                out.write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{name}\n").as_bytes(),
                )
            }
            "/held-body" => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
                let _ = out.write_all(head.as_bytes());
                gate.wait_past(ticket);
                out.write_all(&[b'x'; 90])
            }
            "/ws" => {
                let head = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nhi";
                let _ = out.write_all(head.as_bytes());
                let _ = reader.get_ref().set_read_timeout(Some(SLOW));
                let mut buf = [0u8; 512];
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    if out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                return;
            }
            "/close-body" => {
                let head = "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n0123456789";
                let _ = out.write_all(head.as_bytes());
                thread::sleep(SLOW);
                let _ = out.write_all(&[b'x'; 90]);
                return;
            }
            "/big" => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n");
                let _ = out.write_all(head.as_bytes());
                out.write_all(&vec![b'x'; BIG])
            }
            "/interim" => out.write_all(
                format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{name}\n")
                    .as_bytes(),
            ),
            _ => out.write_all(
                format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{name}\n").as_bytes(),
            ),
        };
        if sent.is_err() {
            return;
        }
    }
}
