//! Harness for the server-lifecycle tests (`tests/tests/proxy_server_lifecycle.rs` in TCP
//! mode, `tests/tests/proxy_http_lifecycle.rs` in HTTP mode): one configuration with a stats
//! socket and a syslog sink, run by hapx-proxy and then by HAProxy 2.6 with the same traffic.
//!
//! - [`Lab`]: a test's directory, stats socket, syslog sink and servers; [`Lab::run`] runs the
//!   traffic through both proxies.
//! - [`CheckPort`]: a health-check target to open and close (the checks pass, then fail).
//! - [`agree`]: hapx-proxy saw what was expected, and the same as HAProxy.
//! - [`status`], [`messages`]: a server's state on the stats socket, the proxy's messages.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
