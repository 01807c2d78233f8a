//! Harness for the balancing tests (`tests/tests/proxy_balance*.rs`): TCP clients that
//! connect from a chosen loopback source address and send their first bytes, the RDP
//! Connection Requests that `balance rdp-cookie` and `persist rdp-cookie` read, and
//! [`same_as_haproxy`]: a script of connections (sequential, held open, queued) and runtime
//! commands run through hapx-proxy and HAProxy side by side, the servers that answered
//! compared in order.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proxy::{NamedServer, Proxy, TestDir, ask, cli, free_port, stat_row, temp_dir};

/// The servers' weights in the hash tests: distinct, their greatest common divisor 1 but for
/// the map's reduction by it.
pub const WEIGHTS: [u32; 4] = [1, 2, 3, 5];

/// The `hash-type` lines compared: both methods, each hash function, with and without
/// `avalanche`.
pub const HASH_TYPES: &[&str] = &[
    "map-based",
    "map-based djb2",
    "map-based wt6",
    "map-based crc32",
    "map-based sdbm avalanche",
    "map-based djb2 avalanche",
    "consistent",
    "consistent sdbm",
    "consistent djb2",
    "consistent wt6 avalanche",
    "consistent crc32",
];

/// Part of [`HASH_TYPES`], for tests that run many algorithms on each: both methods with
/// their default function, and each with another one (one with `avalanche`).
pub const SOME_HASH_TYPES: &[&str] = &[
    "map-based",
    "map-based djb2 avalanche",
    "consistent",
    "consistent crc32",
];

/// The `global` section (an admin-level stats socket at `sock`) and the `defaults` section
/// (`mode` when not empty, the timeouts) the balancing tests' configurations start with.
pub fn config_head(sock: &Path, mode: &str) -> String {
    let mode = if mode.is_empty() {
        String::new()
    } else {
        format!("  mode {mode}\n")
    };
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n{mode}  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n",
        sock.display()
    )
}

/// `server sK ADDR weight W` lines for `addrs`, with the [`WEIGHTS`] in turn.
pub fn servers_lines(addrs: &[SocketAddr]) -> String {
    (addrs.iter().zip(WEIGHTS).enumerate())
        .map(|(i, (a, w))| format!("  server s{i} {a} weight {w}\n"))
        .collect()
}

/// Connects from loopback address `src` to `front`, sends `data` and reads the first line
/// the server writes (its name, from a [`crate::proxy::NamedServer`]); "" on failure.
pub fn ask_from(src: Ipv4Addr, front: SocketAddr, data: &[u8]) -> String {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a socket");
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))
        .expect("binding a loopback source address");
    let SocketAddr::V4(v4) = front else {
        panic!("an IPv4 frontend")
    };
    if connect(fd.as_raw_fd(), &SockaddrIn::from(v4)).is_err() {
        return String::new();
    }
    let mut conn = TcpStream::from(fd);
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if !data.is_empty() && conn.write_all(data).is_err() {
        return String::new();
    }
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    line.trim().to_string()
}

/// An RDP Connection Request: a TPKT header, an X.224 CR TPDU, the line
/// `Cookie: COOKIE\r\n` when there is a cookie, then an RDP Negotiation Request (TLS).
pub fn rdp_request(cookie: Option<&str>) -> Vec<u8> {
    let mut user_data = cookie.map_or_else(Vec::new, |c| format!("Cookie: {c}\r\n").into_bytes());
    user_data.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00]);
    // Length indicator (the TPDU header after it), CR code, DST-REF, SRC-REF, class 0.
    let mut tpdu = vec![6 + user_data.len() as u8, 0xe0, 0, 0, 0, 0, 0];
    tpdu.extend(user_data);
    let mut request = vec![3, 0];
    request.extend_from_slice(&(4 + tpdu.len() as u16).to_be_bytes());
    request.extend(tpdu);
    request
}

/// The `msts` routing token naming server `addr`, as a terminal server farm issues it and
/// HAProxy decodes it: the address's 32 bits as they lie in memory and the port in
/// network order, each as a decimal number, then a reserved field.
pub fn routing_token(addr: SocketAddrV4) -> String {
    let ip = u32::from_ne_bytes(addr.ip().octets());
    let port = u16::from_ne_bytes(addr.port().to_be_bytes());
    format!("msts={ip}.{port}.0000")
}

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// One step of a script for [`same_as_haproxy`].
#[derive(Debug, Clone)]
pub enum Step {
    /// This many connections, one after the other, each closed before the next.
    Ask(usize),
    /// This many connections, kept open (until [`Step::Release`] or [`Step::Free`]).
    Hold(usize),
    /// Closes the kept connections, oldest first, each counted gone by the proxy before the
    /// next is closed (no connection may be queued then).
    Release,
    /// A runtime API command (`{b}` stands for the backend's name).
    Cli(String),
    /// This many connections that find every server full: each waits in a queue, kept open,
    /// until the proxy counts it queued.
    Queue(usize),
    /// Closes the oldest kept connection to this server and, once the proxy counts it
    /// gone, records what [`Step::Dequeued`] does.
    Free(&'static str),
    /// Records the server a queued connection reached (it is kept then), or
    /// `(none)` while the proxy counts every queued connection still queued.
    Dequeued,
    /// This `show stat` column of each server, recorded as `[COLUMN: s1=V ...]`.
    Column(&'static str),
}

/// A runtime API command step.
#[allow(non_snake_case)]
pub fn Cli(command: impl Into<String>) -> Step {
    Step::Cli(command.into())
}

/// The connections a script holds open: served (with their server's name), and queued (in
/// arrival order).
#[derive(Default)]
struct Clients {
    held: Vec<(String, TcpStream)>,
    queued: Vec<TcpStream>,
}

/// Runs `script` through `binary` in front of `servers` (each answering with its name;
/// one named `dead...` refuses connections), with `servers` the backend's server options by
/// name and `backend` lines added after `balance roundrobin`; the names answered in order.
fn run(
    binary: &Path,
    dir: &TestDir,
    case: &str,
    backend: &str,
    servers: &[(&str, &str)],
    script: &[Step],
) -> Vec<String> {
    let live: Vec<Option<NamedServer>> = servers
        .iter()
        .map(|(n, _)| {
            (!n.starts_with("dead")).then(|| NamedServer::start(n, LO, Duration::from_secs(30)))
        })
        .collect();
    let lines: String = servers
        .iter()
        .zip(&live)
        .map(|((n, opts), s)| {
            let port = s.as_ref().map_or_else(free_port, NamedServer::port);
            format!("  server {n} 127.0.0.1:{port} {opts}\n")
        })
        .collect();
    let tag = binary.file_name().unwrap().to_string_lossy();
    let sock = dir.join(format!("{case}-{tag}.sock"));
    let (port, ready) = (free_port(), free_port());
    let cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout client 30s\n  timeout server 30s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         listen ready\n  mode http\n  bind 127.0.0.1:{ready}\n  stats enable\n\
         backend be\n  balance roundrobin\n{backend}{lines}",
        sock.display()
    );
    let ready = SocketAddr::from((LO, ready));
    let _proxy = Proxy::start_with(
        binary.to_path_buf(),
        dir,
        &format!("{case}-{tag}"),
        &cfg,
        ready,
        &[],
    );
    let front = SocketAddr::from((LO, port));
    eprintln!("{case}: running {tag}");
    let mut seen = Vec::new();
    let mut clients = Clients::default();
    for step in script {
        seen.extend(play(step, front, &sock, servers, &mut clients));
    }
    seen
}

/// Plays one step; what it recorded.
fn play(
    step: &Step,
    front: SocketAddr,
    sock: &Path,
    servers: &[(&str, &str)],
    clients: &mut Clients,
) -> Vec<String> {
    let mut seen = Vec::new();
    match step {
        Step::Ask(n) => {
            for _ in 0..*n {
                seen.push(ask(front));
                // A closed connection counts on its server until the proxy has ended it: a
                // full server would be skipped by chance.
                wait_served(sock, servers, clients.held.len());
            }
        }
        Step::Hold(n) => {
            for _ in 0..*n {
                let conn =
                    TcpStream::connect_timeout(&front, Duration::from_secs(3)).expect("connecting");
                let name = first_line(&conn, Duration::from_secs(5));
                seen.push(name.clone());
                clients.held.push((name, conn));
                wait_served(sock, servers, clients.held.len());
            }
        }
        Step::Release => {
            assert!(
                clients.queued.is_empty(),
                "released with connections queued"
            );
            // One at a time, each counted gone before the next: the order they end in is
            // the order `leastconn` takes idle servers in.
            while !clients.held.is_empty() {
                drop(clients.held.remove(0));
                wait_served(sock, servers, clients.held.len());
            }
        }
        Step::Cli(command) => {
            let answer = cli(sock, &command.replace("{b}", "be"));
            seen.push(format!("[{command}: {}]", answer.trim()));
        }
        Step::Queue(n) => {
            for _ in 0..*n {
                let conn =
                    TcpStream::connect_timeout(&front, Duration::from_secs(3)).expect("connecting");
                clients.queued.push(conn);
                wait_queued(sock, servers, clients.queued.len());
            }
        }
        Step::Free(name) => {
            let at = clients.held.iter().position(|(n, _)| n == name);
            drop(
                clients
                    .held
                    .remove(at.expect("a connection held to the server freed")),
            );
            // Gone from the counts: its slot given back, and to a waiter if one took it.
            let left = clients.held.len() + clients.queued.len();
            wait_until_sum(sock, servers, "scur+qcur", left, |n, row| {
                served(n, row) + queued(n, row)
            });
            seen.push(dequeued(sock, servers, clients));
        }
        Step::Dequeued => seen.push(dequeued(sock, servers, clients)),
        Step::Column(column) => {
            let csv = cli(sock, "show stat");
            let values: Vec<String> = servers
                .iter()
                .map(|(n, _)| {
                    let row = stat_row(&csv, "be", n).unwrap_or_default();
                    format!("{n}={}", row.get(*column).map_or("?", String::as_str))
                })
                .collect();
            seen.push(format!("[{column}: {}]", values.join(" ")));
        }
    }
    seen
}

/// How long the counts must stay put before a queued connection is taken as not served:
/// a hand-off moves them in one step of the proxy, far quicker than this.
const SETTLED: Duration = Duration::from_millis(300);

/// The server a queued connection reached ([`Step::Dequeued`]): when the proxy counts
/// fewer queued than the script holds queued (and the counts stay so for [`SETTLED`]: a
/// hand-off may be counted half-way), it reads the server's name from the waiter answered
/// ([`first_answered`]), given a generous delay, and keeps that connection as held; else
/// `(none)`.
fn dequeued(sock: &Path, servers: &[(&str, &str)], clients: &mut Clients) -> String {
    let waiting = clients.queued.len();
    let counted = || sum_of(sock, servers, queued);
    let mut taken = waiting > 0 && counted() < waiting;
    let since = std::time::Instant::now();
    while waiting > 0 && !taken && since.elapsed() < SETTLED {
        std::thread::sleep(Duration::from_millis(20));
        taken = counted() < waiting;
    }
    if !taken {
        return "(none)".into();
    }
    let at = first_answered(&clients.queued, Duration::from_secs(20));
    let conn = clients
        .queued
        .remove(at.expect("a dequeued connection got no answer"));
    let name = first_line(&conn, Duration::from_secs(5));
    assert!(
        !name.is_empty(),
        "a dequeued connection's answer ended early"
    );
    // Counted on its server already: it left the queue for one of its slots.
    clients.held.push((name.clone(), conn));
    name
}

/// Which of `queued` the proxy answered first, within `timeout`. Not always the oldest:
/// HAProxy 2.6 now and then hands a freed slot to the younger of two waiters (about one
/// run in 45 of [`Step::Dequeued`]), and what is recorded is the server, not the waiter.
fn first_answered(queued: &[TcpStream], timeout: Duration) -> Option<usize> {
    let since = std::time::Instant::now();
    while since.elapsed() < timeout {
        for (at, conn) in queued.iter().enumerate() {
            conn.set_read_timeout(Some(Duration::from_millis(20)))
                .ok()?;
            if conn.peek(&mut [0u8]).is_ok_and(|n| n > 0) {
                return Some(at);
            }
        }
    }
    None
}

/// The first line `conn` reads within `timeout` (a server's name); "" when none came.
fn first_line(conn: &TcpStream, timeout: Duration) -> String {
    conn.set_read_timeout(Some(timeout)).unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    line.trim().to_string()
}

type Row = std::collections::HashMap<String, String>;

/// A row's `column` as a number (a huge one when missing: no sum matches then).
fn column(row: &Row, column: &str) -> usize {
    row.get(column)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(usize::MAX / 8)
}

/// Connections on a server (BACKEND's row counts them again: none there).
fn served(name: &str, row: &Row) -> usize {
    if name == "BACKEND" {
        0
    } else {
        column(row, "scur")
    }
}

/// Connections queued, in the backend's queue or a server's.
fn queued(_: &str, row: &Row) -> usize {
    column(row, "qcur")
}

/// `value` of each of the backend's rows (`servers`, then BACKEND), summed, from one
/// `show stat`.
fn sum_of(sock: &Path, servers: &[(&str, &str)], value: impl Fn(&str, &Row) -> usize) -> usize {
    let csv = cli(sock, "show stat");
    let rows = servers.iter().map(|(n, _)| *n).chain(["BACKEND"]);
    rows.map(|n| stat_row(&csv, "be", n).map_or(usize::MAX / 8, |row| value(n, &row)))
        .fold(0, usize::saturating_add)
}

/// Waits until [`sum_of`] `value` (`what`, for the message) is `want`.
fn wait_until_sum(
    sock: &Path,
    servers: &[(&str, &str)],
    what: &str,
    want: usize,
    value: impl Fn(&str, &Row) -> usize,
) {
    let reached = || sum_of(sock, servers, &value) == want;
    assert!(
        crate::proxy::wait_until(Duration::from_secs(20), reached),
        "not {want} connections counted as {what}"
    );
}

/// Waits until the proxy counts `want` current connections on the servers in all.
fn wait_served(sock: &Path, servers: &[(&str, &str)], want: usize) {
    wait_until_sum(sock, servers, "scur", want, served);
}

/// Waits until the proxy counts `want` connections queued, in the backend's queue and the
/// servers'.
fn wait_queued(sock: &Path, servers: &[(&str, &str)], want: usize) {
    wait_until_sum(sock, servers, "qcur", want, queued);
}

/// Runs the script through hapx-proxy and HAProxy (skipped, loudly, without it; a failure
/// under CI) and asserts they recorded the same.
pub fn same_as_haproxy(case: &str, backend: &str, servers: &[(&str, &str)], script: &[Step]) {
    if !crate::require::path(case, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(case);
    let [hapx, haproxy] = [crate::bins::path("hapx-proxy"), PathBuf::from(HAPROXY)]
        .map(|binary| run(&binary, &dir, case, backend, servers, script));
    eprintln!("{case}: {hapx:?}");
    assert!(
        hapx.iter().all(|s| !s.is_empty()),
        "a connection failed: {hapx:?}"
    );
    assert_eq!(
        hapx, haproxy,
        "{case}: hapx (left) and HAProxy (right) differ"
    );
}

/// A seeded xorshift sequence: the random scripts are the same in every run.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Seeded(seed.max(1))
    }

    /// The next number, below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A runtime command changing `server`, by `roll` (0 to 5): its weight (then asked of
/// `weight`), maintenance, drain, ready, health down, health up.
pub fn change(server: &str, roll: u64, weight: impl FnOnce() -> u64) -> Step {
    let what = match roll {
        0 => format!("weight {}", weight()),
        1 => "state maint".into(),
        2 => "state drain".into(),
        3 => "state ready".into(),
        4 => "health down".into(),
        _ => "health up".into(),
    };
    Cli(format!("set server {{b}}/{server} {what}"))
}

/// Every server of `names` ready and up again.
pub fn all_back(names: &[&str]) -> Vec<Step> {
    names
        .iter()
        .flat_map(|server| [change(server, 3, || 0), change(server, 5, || 0)])
        .collect()
}
