//! Harness for the proxy's tests: real processes and sockets on loopback.
//!
//! - [`Proxy`]: a running `hapx-proxy` (or `haproxy`) on a configuration text, stopped on drop.
//! - [`NamedServer`]: a TCP server that answers each connection with its name (and optionally
//!   holds it open), counting connections; stopped on drop.
//! - [`HttpServer`]: a tiny HTTP/1.1 keep-alive server answering with its name and the request's
//!   `X-Forwarded-For`.
//! - [`DnsResponder`]: a UDP DNS server on loopback answering A queries from a table the test
//!   changes.
//! - [`cli`], [`ask`], [`http_get`]: talking to the runtime API, to a TCP frontend, over HTTP.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use hapx_agents::netlink::Listener;
use hapx_agents::netlink::Netlink;

/// A free TCP port on 127.0.0.1 for a frontend (checked by binding it, then released), never
/// one this process was given before.
///
/// The port is taken below the kernel's ephemeral range (`ip_local_port_range`), where the
/// kernel never picks one by itself: a port from that range, once released, may be handed at
/// once to another test's server binding port 0 or to a client's connection before the
/// proxy binds it, and the proxy then fails to start or, worse, the test talks to the other
/// socket. Two frontends on one port would share it through SO_REUSEPORT instead of failing,
/// hence no port twice, nor one any TCP socket of the host has (see [`local_tcp_ports`]).
/// Each process starts at its own place in the range so that test processes running side
/// by side rarely try the same ports, and a port given out stays reserved to its process
/// (see [`reserve`]).
pub fn free_port() -> u16 {
    static NEXT: Mutex<Option<u32>> = Mutex::new(None);
    let (low, high) = static_port_range();
    let span = high - low;
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    let start = *next.get_or_insert_with(|| std::process::id().wrapping_mul(7919) % span);
    let in_use = local_tcp_ports();
    for offset in start..start + span {
        let port = u16::try_from(low + offset % span).expect("a port below 65536");
        if !in_use.contains(&port)
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && reserve(port)
        {
            *next = Some(offset + 1);
            return port;
        }
    }
    panic!("no free port on loopback between {low} and {high}")
}

/// Reserves `port` for this test process: an exclusive lock on its file in a directory all
/// test processes share, held until the process ends (the kernel drops it then, however
/// the process ends). A port is free at [`free_port`]'s bind, yet another test process may
/// pick it before this one's proxy binds it; the two proxies would then share it through
/// SO_REUSEPORT and answer each other's clients. False when another live process holds it.
fn reserve(port: u16) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    static HELD: Mutex<Vec<Flock<std::fs::File>>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("hapx-test-ports");
    // A directory nobody can create leaves the check to the bind alone.
    if std::fs::create_dir_all(&dir).is_err() {
        return true;
    }
    let Ok(file) = std::fs::File::create(dir.join(port.to_string())) else {
        return true;
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            true
        }
        Err(_) => false,
    }
}

/// The local ports of every TCP socket the kernel lists, in any state: a port a binding test
/// accepts may still carry a connection of a process an earlier test left closing, or a
/// listener it paused and may resume, either of which can make the proxy's own bind fail.
fn local_tcp_ports() -> std::collections::HashSet<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let local = l.split_whitespace().nth(1)?;
                    u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The ports under the kernel's ephemeral range, down to half its lower bound (16384-32767
/// with Linux's default 32768-60999), and never below 1024.
fn static_port_range() -> (u32, u32) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let high = ephemeral_low.max(2048);
    (high / 2, high)
}

/// Starts `binary -W -S MASTER -f CFG` (a master-worker process whose master CLI listens at
/// `master`), its output discarded; the caller waits for what it needs to be up.
pub fn spawn_master(binary: &Path, master: &Path, cfg: &Path) -> Child {
    Command::new(binary)
        .args(["-W", "-S"])
        .arg(master)
        .arg("-f")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the master")
}

/// A fresh directory for one test's files, removed when dropped.
pub fn temp_dir(test: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("hapx-proxy-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    TestDir(dir)
}

/// A test's directory (see [`temp_dir`]); it derefs to its path.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls a condition until it holds or a timeout passes (the proxy tests' name for
/// [`crate::wait::eventually`]).
pub use crate::wait::eventually as wait_until;

/// A server on a free loopback port that accepts every connection and keeps it open,
/// saying nothing (until the test process ends): a server held busy.
pub fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

/// Whether some socket listens on `addr`'s port (any address), without connecting: a probe
/// connection would count as traffic through the proxy. See [`listeners`].
pub fn is_listening(addr: SocketAddr) -> bool {
    !listeners(addr.port()).is_empty()
}

/// The TCP sockets listening on `port` (any address, IPv4 or IPv6) in the calling thread's
/// network namespace (the thread may have entered one of its own), with their inodes and
/// accept queues, asked of the kernel's sock_diag. It walks the listening sockets alone,
/// where reading /proc/net/tcp walks every connection too: after the load tests, tens of
/// thousands in TIME_WAIT, and each read then takes a good part of a second.
pub fn listeners(port: u16) -> Vec<Listener> {
    Netlink::open_sock_diag()
        .and_then(|mut diag| diag.listening_tcp())
        .expect("listing the listening sockets (sock_diag)")
        .into_iter()
        .filter(|l| l.port == port)
        .collect()
}

/// The inodes of the sockets process `pid` holds (from /proc/PID/fd), listening or not.
pub fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The paths of the `stats socket` lines of configuration `text` (those naming a file).
fn stats_socket_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("stats socket "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|path| path.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// A running proxy process.
#[derive(Debug)]
pub struct Proxy {
    pub child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Proxy {
    /// Starts `hapx-proxy -db -f CONFIG` in the foreground and waits until `ready` accepts.
    pub fn start(dir: &Path, name: &str, config: &str, ready: SocketAddr) -> Proxy {
        Self::start_with(
            crate::bins::path("hapx-proxy"),
            dir,
            name,
            config,
            ready,
            &[],
        )
    }

    /// Same with another binary (HAProxy) and extra arguments.
    pub fn start_with(
        binary: PathBuf,
        dir: &Path,
        name: &str,
        config: &str,
        ready: SocketAddr,
        extra: &[String],
    ) -> Proxy {
        let path = dir.join(format!("{name}.cfg"));
        std::fs::write(&path, config).expect("writing the configuration");
        // Its UNIX sockets: every `stats socket` of the configuration, and hapx-proxy's
        // listener hand-over channel (see hapx_proxy::runtime::handover).
        let mut unix = stats_socket_paths(config);
        let hapx = binary.file_name().is_some_and(|n| n == "hapx-proxy");
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the proxy");
        let proxy = Proxy {
            child,
            dir: dir.to_path_buf(),
            config: path,
        };
        if hapx {
            unix.push(format!("@hapx-proxy-listeners-{}", proxy.pid()));
        }
        // Up once it holds each of its listening sockets, the last ones bound after the
        // frontends listen: a test may use the runtime API at once, or reload the process
        // (without its hand-over channel the new one would bind sockets of its own). Its
        // own: on a reload, the old process listens on `ready` already. Generous: HAProxy
        // tries each userlist's password hash when it loads (seconds for a slow one).
        assert!(
            wait_until(Duration::from_secs(30), || proxy.listens_on(ready.port())
                && unix.iter().all(|name| proxy.listens_at(name))),
            "the proxy did not listen on {ready} and at {unix:?}"
        );
        proxy
    }

    /// Whether this process holds a UNIX socket listening at `name` (a path, or `@NAME` for
    /// an abstract one), from /proc/net/unix. That table shows the name a socket was bound
    /// to: HAProxy binds `PATH.PID.tmp`, then renames it to PATH.
    pub fn listens_at(&self, name: &str) -> bool {
        let held = socket_inodes(self.pid());
        let table = std::fs::read_to_string("/proc/thread-self/net/unix").unwrap_or_default();
        let renamed = |bound: &str| {
            bound
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.') && rest.ends_with(".tmp"))
        };
        table.lines().skip(1).any(|line| {
            // Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 is "listening".
            let w: Vec<&str> = line.split_whitespace().collect();
            w.len() == 8
                && u32::from_str_radix(w[3], 16).is_ok_and(|f| f & 0x10000 != 0)
                && (w[7] == name || renamed(w[7]))
                && w[6].parse().is_ok_and(|inode: u64| held.contains(&inode))
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether this process holds a socket listening on `port` (its own, or one it took over).
    pub fn listens_on(&self, port: u16) -> bool {
        let held = socket_inodes(self.pid());
        listeners(port).iter().any(|l| held.contains(&l.inode))
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig);
    }

    /// Waits for the process to exit, at most `timeout`; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TCP server that writes `NAME\n` to each connection, then holds it for `hold` (or until
/// the client closes) before closing.
#[derive(Debug)]
pub struct NamedServer {
    pub name: String,
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl NamedServer {
    pub fn start(name: &str, ip: Ipv4Addr, hold: Duration) -> NamedServer {
        Self::start_on(name, SocketAddr::from((ip, 0)), hold)
    }

    pub fn start_on(name: &str, addr: SocketAddr, hold: Duration) -> NamedServer {
        let listener = TcpListener::bind(addr).expect("binding a test server");
        // Hundreds of connections at once through a proxy must not overflow the accept queue
        // (std listens with 128): a dropped SYN costs the proxy its connect timeout, and the
        // test would measure this server's thread start-up instead of the proxy. listen(2)
        // again on a listening socket only resizes its queue.
        let backlog = nix::sys::socket::Backlog::new(4096).expect("a valid backlog");
        nix::sys::socket::listen(&listener, backlog).expect("resizing the accept queue");
        let addr = listener.local_addr().expect("its address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, o, s, n) = (
            accepted.clone(),
            open.clone(),
            stop.clone(),
            name.to_string(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (o, n) = (o.clone(), n.clone());
                thread::spawn(move || {
                    let _ = conn.write_all(format!("{n}\n").as_bytes());
                    let _ = conn.set_read_timeout(Some(hold.max(Duration::from_millis(1))));
                    let mut buf = [0u8; 4096];
                    // Echo what the client sends until it closes or `hold` passes quietly.
                    while let Ok(k) = conn.read(&mut buf) {
                        if k == 0 || conn.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        NamedServer {
            name: name.into(),
            addr,
            accepted,
            open,
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for NamedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Connects to a TCP frontend and reads the first line (the server's name); "" on failure.
pub fn ask(addr: SocketAddr) -> String {
    let Ok(conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return String::new();
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    line.trim().to_string()
}

/// Counts which server answered `n` connections.
pub fn tally(addr: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for _ in 0..n {
        *out.entry(ask(addr)).or_insert(0) += 1;
    }
    out
}

/// Runs one runtime API command on the UNIX socket at `path`; the whole answer.
pub fn cli(path: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(path).expect("connecting to the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("{command}\n").as_bytes())
        .expect("sending the command");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Waits (up to 10 s) until the proxy whose stats socket is at `path` holds no client
/// connection: `show info`'s `CurrConns` 0, which leaves out the CLI's own connections (in
/// HAProxy as in hapx-proxy). A session is released after its stream counted, logged and
/// ended, so every session before has then counted all it counts. False if one stays open.
pub fn no_connection_open(path: &Path) -> bool {
    crate::wait::eventually(Duration::from_secs(10), || {
        cli(path, "show info").contains("\nCurrConns: 0\n")
    })
}

/// A server address whose connections hang: a listener that accepts nothing, its queue
/// filled (the SYNs that come next are dropped and the connects wait), while it lives.
#[derive(Debug)]
pub struct Unanswering {
    pub addr: SocketAddr,
    _listener: std::net::TcpListener,
    _queued: Vec<TcpStream>,
}

impl Unanswering {
    pub fn start() -> Unanswering {
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a server");
        let backlog = nix::sys::socket::Backlog::new(0).expect("a valid backlog");
        nix::sys::socket::listen(&listener, backlog).expect("shrinking the accept queue");
        let addr = listener.local_addr().expect("its address");
        // Connections until one is not taken: the queue is full.
        let mut queued = Vec::new();
        while let Ok(conn) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            queued.push(conn);
            assert!(queued.len() < 64, "the accept queue of {addr} never filled");
        }
        Unanswering {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }

    /// How many connections to it are being made (SYN_SENT in /proc/net/tcp).
    pub fn connecting(&self) -> usize {
        let SocketAddr::V4(v4) = self.addr else {
            return 0;
        };
        let remote = format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        );
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        table
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"02")
            })
            .count()
    }
}

/// One row of `show stat` CSV, as column -> value, for `proxy`/`server`.
pub fn stat_row(csv: &str, proxy: &str, server: &str) -> Option<HashMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    lines
        .map(csv_fields)
        .find(|f| {
            f.first().map(String::as_str) == Some(proxy)
                && f.get(1).map(String::as_str) == Some(server)
        })
        .map(|f| {
            header
                .iter()
                .zip(f)
                .map(|(h, v)| (h.to_string(), v))
                .collect()
        })
}

/// The fields of one `show stat` line, as both proxies quote them: a field holding a comma
/// or a quote is in double quotes, its quotes doubled.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("one field at least");
        match (c, quoted) {
            ('"', false) if field.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    fields
}

/// A `show stat` row's check columns (`status`, `check_status`, `check_code`,
/// `last_chk`); None while HAProxy runs a check (its status marked "* ", its detail cleared
/// until the check ends).
pub fn settled_check_row(row: &HashMap<String, String>) -> Option<[String; 4]> {
    let get = |k: &str| row.get(k).cloned().unwrap_or_default();
    let running = get("check_status").starts_with("* ");
    (!running).then(|| ["status", "check_status", "check_code", "last_chk"].map(get))
}

/// The check columns (`status`, `check_status`, `check_code`, `last_chk`) of `servers`
/// (backend, server) as `show stat` on `sock` shows them once each is in the state and
/// check status `expected` says (8 s at most), each read between two checks: HAProxy marks
/// a running check's status "* " and clears its detail until it ends.
pub fn settled_check_rows(
    sock: &Path,
    servers: &[(&str, &str)],
    expected: &[[&str; 2]],
) -> Vec<[String; 4]> {
    let read = || -> Vec<Option<[String; 4]>> {
        let csv = cli(sock, "show stat");
        (servers.iter())
            .map(|(b, s)| settled_check_row(&stat_row(&csv, b, s).unwrap_or_default()))
            .collect()
    };
    wait_until(Duration::from_secs(8), || {
        read().iter().zip(expected).all(|(r, want)| {
            r.as_ref()
                .is_none_or(|r| r[0] == want[0] && r[1] == want[1])
        })
    });
    let mut rows: Vec<Option<[String; 4]>> = vec![None; servers.len()];
    wait_until(Duration::from_secs(5), || {
        for (kept, seen) in rows.iter_mut().zip(read()) {
            if kept.is_none() {
                *kept = seen;
            }
        }
        rows.iter().all(Option::is_some)
    });
    rows.into_iter().map(Option::unwrap_or_default).collect()
}

/// A log message with its `check duration: 14ms` written `check duration: Nms`: how long a
/// check took varies from run to run, and grows on a loaded machine.
pub fn blank_check_duration(message: &str) -> String {
    const FIELD: &str = "check duration: ";
    match message.split_once(FIELD) {
        Some((head, tail)) => {
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head}{FIELD}N{rest}")
        }
        None => message.to_string(),
    }
}

/// A raw HTTP exchange: sends `request` bytes, reads until the peer closes or `timeout`.
pub fn http_raw(addr: SocketAddr, request: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connecting");
    s.set_read_timeout(Some(timeout)).ok();
    s.write_all(request).expect("sending");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// GET `path` with `Connection: close` and optional Basic credentials: (status, head, body),
/// the body decoded when chunked (HAProxy streams its stats and metrics).
pub fn http_get(addr: SocketAddr, path: &str, basic: Option<&str>) -> (u16, String, String) {
    let auth = basic
        .map(|b| format!("Authorization: Basic {}\r\n", base64(b.as_bytes())))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    let raw = http_raw(addr, req.as_bytes(), Duration::from_secs(5));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("\r\ntransfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || size > rest.len() {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Standard base64 with padding (`Authorization: Basic`).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A minimal HTTP/1.1 server: answers every request with `NAME` as body and echoes the
/// request's X-Forwarded-For in an `x-seen-xff` header; keeps connections alive.
#[derive(Debug)]
pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
}

impl HttpServer {
    pub fn start(name: &str) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (r, c, name) = (requests.clone(), connections.clone(), name.to_string());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (r, name) = (r.clone(), name.clone());
                thread::spawn(move || serve_http(conn, &name, &r));
            }
        });
        HttpServer {
            addr,
            requests,
            connections,
        }
    }
}

fn serve_http(conn: TcpStream, name: &str, requests: &AtomicUsize) {
    let mut writer = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    loop {
        let mut xff = String::new();
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                match n.to_ascii_lowercase().as_str() {
                    "x-forwarded-for" => xff = v.trim().to_string(),
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-seen-xff: {xff}\r\n\r\n{name}",
            name.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A DNS server on 127.0.0.1 answering A queries from `records` (name -> IPv4); unknown
/// names get NXDOMAIN.
#[derive(Debug)]
pub struct DnsResponder {
    pub addr: SocketAddr,
    pub records: Arc<Mutex<HashMap<String, Ipv4Addr>>>,
    pub queries: Arc<AtomicUsize>,
}

impl DnsResponder {
    pub fn start() -> DnsResponder {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("binding the DNS responder");
        let addr = sock.local_addr().expect("address");
        let records: Arc<Mutex<HashMap<String, Ipv4Addr>>> = Arc::default();
        let queries = Arc::new(AtomicUsize::new(0));
        let (r, q) = (records.clone(), queries.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                q.fetch_add(1, Ordering::SeqCst);
                if let Some(resp) = answer(&buf[..n], &r.lock().expect("records")) {
                    let _ = sock.send_to(&resp, from);
                }
            }
        });
        DnsResponder {
            addr,
            records,
            queries,
        }
    }

    pub fn set(&self, name: &str, ip: Option<Ipv4Addr>) {
        let mut r = self.records.lock().expect("records");
        match ip {
            Some(ip) => r.insert(name.to_string(), ip),
            None => r.remove(name),
        };
    }
}

fn answer(q: &[u8], records: &HashMap<String, Ipv4Addr>) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    while *q.get(at)? != 0 {
        let len = usize::from(q[at]);
        labels.push(String::from_utf8_lossy(q.get(at + 1..at + 1 + len)?).to_string());
        at += 1 + len;
    }
    let qtype = u16::from_be_bytes([*q.get(at + 1)?, *q.get(at + 2)?]);
    let question_end = at + 5;
    let name = labels.join(".");
    let mut r = q[..question_end].to_vec();
    r[2] = 0x81;
    r[3] = 0x80;
    r[6] = 0;
    r[7] = 0;
    r[8..12].fill(0);
    match records.get(&name) {
        None => r[3] = 0x83,
        Some(ip) if qtype == 1 => {
            r[7] = 1;
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4]);
            r.extend_from_slice(&ip.octets());
        }
        Some(_) => {}
    }
    Some(r)
}

/// A client connection to `front` for several requests (answers awaited 10 s at most).
pub fn kept_alive_client(front: SocketAddr) -> BufReader<TcpStream> {
    let c = TcpStream::connect(front).expect("connecting to the proxy");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(c)
}

/// Reads one response framed by its Content-Length off a kept-alive connection: its status
/// line without the line end (empty when the connection ended) and its body.
pub fn read_response(conn: &mut BufReader<TcpStream>) -> (String, String) {
    let mut status = String::new();
    let _ = conn.read_line(&mut status);
    let mut length = 0;
    let mut line = String::new();
    while conn.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0; length];
    let _ = conn.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).into_owned();
    (status.trim_end().to_string(), body)
}

/// The soft open-files limit of process `pid`.
pub fn soft_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("its limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("the open-files line");
    line.split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

/// What `ss` shows of the TCP socket from `local` to `peer` (state, marks), if any.
pub fn socket_seen(local: SocketAddr, peer: SocketAddr) -> Option<String> {
    let filter = format!(
        "src {} and sport = :{} and dst {} and dport = :{}",
        local.ip(),
        local.port(),
        peer.ip(),
        peer.port()
    );
    let out = std::process::Command::new("ss")
        .args(["-tanHe", &filter])
        .output()
        .expect("running ss");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}
