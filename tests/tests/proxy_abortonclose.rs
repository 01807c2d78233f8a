//! A client that leaves while its stream waits for a server (in the backend's queue, in a
//! server's queue, or while its server is connected to), with and without `option
//! abortonclose`, hapx-proxy beside HAProxy 2.6 on the same configuration and traffic: the
//! log line (termination state, status, server, queue positions, which timers were
//! reached), what the client got, what the server saw, and the `show stat` counters.
//!
//! What HAProxy 2.6.12 does (measured):
//! - HTTP, request whole: without the option a FIN or a reset goes unseen (the request is
//!   served); with it, `CQ`/`CC`, status -1, no server sees the request, a reset counted
//!   as the client's abort of the backend (and of the server whose queue it was).
//! - HTTP, body still to come: `CQ`/`CC` with or without the option (the FIN truncates
//!   it: an abort in the queue); a body finished while waiting is served.
//! - HTTP, `sQ` to a client that reset: the 503's failed write is the client's abort.
//! - TCP: a reset is `CD` at once (an abort of the backend, and of the server connected
//!   to or queued for); a FIN after data goes on (served once a slot frees, or `sC`) and
//!   is `CQ`/`CC` with the option; a client let go that sent data gets a FIN, not a reset.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{Syslog, check_messages};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// The request that holds the server's only slot until released.
const HOLD: &[u8] = b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n";
/// A whole request (in TCP mode: data the server answers).
const GET: &[u8] = b"GET /q HTTP/1.1\r\nhost: x\r\n\r\n";
/// A request whose body (10 bytes) has 3 bytes sent.
const POST_PARTIAL: &[u8] = b"POST /q HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc";

/// The `show stat` columns compared, in the frontend's, the backend's and the server's row.
const COUNTERS: [&str; 9] = [
    "scur",
    "qcur",
    "stot",
    "lbtot",
    "econ",
    "cli_abrt",
    "hrsp_2xx",
    "hrsp_5xx",
    "hrsp_other",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Http,
    Tcp,
}

/// Where the stream waits when its client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The backend's queue (round robin, the server at its `maxconn`).
    Queue,
    /// The server's own queue (`balance source`).
    ServerQueue,
    /// Connecting to a server that never answers the SYN.
    Connect,
}

/// How the client leaves.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// A FIN (shutdown of its side), the client then reading what comes.
    Fin,
    /// A reset (SO_LINGER 0, closed).
    Reset,
    /// The rest of its request's body, then a FIN.
    RestThenFin(&'static [u8]),
}

#[derive(Debug, Clone, Copy)]
struct Case {
    mode: Mode,
    /// Option lines in `defaults` and in the backend.
    defaults: &'static str,
    backend: &'static str,
    wait: Wait,
    sent: &'static [u8],
    leave: Leave,
    timeout_queue: &'static str,
}

impl Case {
    fn new(mode: Mode, wait: Wait, sent: &'static [u8], leave: Leave) -> Case {
        Case {
            mode,
            defaults: "",
            backend: "",
            wait,
            sent,
            leave,
            timeout_queue: "5s",
        }
    }

    /// `option abortonclose` in `defaults`: the frontend's and the backend's.
    fn abortonclose(self) -> Case {
        Case {
            defaults: "  option abortonclose\n",
            ..self
        }
    }

    /// `option abortonclose` in the backend alone.
    fn backend_abortonclose(self) -> Case {
        Case {
            backend: "  option abortonclose\n",
            ..self
        }
    }
}

/// What one proxy showed: the queued client's log line ([`masked`]), what that client got
/// ([`reply`]), the requests the server saw, the [`COUNTERS`] once every stream ended.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    line: String,
    reply: String,
    server: Vec<String>,
    counters: Vec<String>,
}

impl Seen {
    fn counter(&self, name: &str) -> &str {
        let found = self.counters.iter().find_map(|c| c.strip_prefix(name));
        found.and_then(|v| v.strip_prefix('=')).unwrap_or("?")
    }
}

/// Runs `case` through hapx-proxy, then HAProxy when installed; checks each with `check`
/// and asserts both saw the same.
fn compare(test: &str, case: Case, check: impl Fn(&str, &Seen)) {
    let dir = temp_dir(test);
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    let mut seen = Vec::new();
    for (name, binary) in list {
        let got = run(binary, &dir, name, case);
        check(name, &got);
        seen.push(got);
    }
    if let [hapx, haproxy] = &seen[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
}

fn run(binary: PathBuf, dir: &Path, name: &str, case: Case) -> Seen {
    let backend = Backend::start();
    let unanswering = (case.wait == Wait::Connect).then(unanswering_server);
    let server = match &unanswering {
        Some((listener, _)) => listener.local_addr().expect("its address"),
        None => backend.addr,
    };
    let syslog = Syslog::bind();
    let socket = dir.join(format!("{name}.sock"));
    let front = SocketAddr::from((LO, free_port()));
    let (mode, log) = match case.mode {
        Mode::Http => ("http", "httplog"),
        Mode::Tcp => ("tcp", "tcplog"),
    };
    let balance = if case.wait == Wait::ServerQueue {
        "  balance source\n"
    } else {
        ""
    };
    let connect = if case.wait == Wait::Connect {
        "1500ms"
    } else {
        "5s"
    };
    let config = format!(
        "global\n  log {} local0\n  stats socket {} level admin\n\
         defaults\n  mode {mode}\n  log global\n  option {log}\n  retries 0\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect {connect}\n\
         \x20 timeout queue {}\n{}\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n{balance}{}  server s1 {server} maxconn 1\n",
        syslog.addr,
        socket.display(),
        case.timeout_queue,
        case.defaults,
        case.backend,
    );
    let proxy = Proxy::start_with(binary, dir, name, &config, front, &[]);
    let stat = |row: &str, field: &str| {
        stat_row(&cli(&socket, "show stat"), "be", row)
            .map(|r| r[field].clone())
            .unwrap_or_default()
    };
    let mut holder = (case.wait != Wait::Connect).then(|| {
        let mut holder = TcpStream::connect(front).expect("the first client");
        holder.write_all(HOLD).unwrap();
        assert!(wait_until(Duration::from_secs(5), || stat("s1", "scur") == "1"));
        holder
    });
    let mut queued = TcpStream::connect(front).expect("the second client");
    let port = queued.local_addr().expect("its address").port();
    queued.write_all(case.sent).unwrap();
    let (row, field) = match case.wait {
        Wait::Queue => ("BACKEND", "qcur"),
        Wait::ServerQueue => ("s1", "qcur"),
        Wait::Connect => ("s1", "scur"),
    };
    assert!(
        wait_until(Duration::from_secs(5), || stat(row, field) == "1"),
        "{name}: the second client did not wait"
    );
    let reader = match case.leave {
        Leave::Reset => {
            socket2::SockRef::from(&queued)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(queued);
            None
        }
        Leave::Fin => Some(leave_with_fin(queued)),
        Leave::RestThenFin(rest) => {
            queued.write_all(rest).unwrap();
            Some(leave_with_fin(queued))
        }
    };
    // Time for the proxy to see the client leave before the slot frees: a proxy that lets
    // it go does so at once; the duration only decides how strongly a proxy that goes on
    // is tested, never whether one that is right passes.
    thread::sleep(Duration::from_millis(300));
    backend.release();
    if let Some(holder) = holder.as_mut() {
        holder
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = [0u8; 256];
        assert!(holder.read(&mut answer).unwrap_or(0) > 0, "{name}: holder");
        // In TCP mode the slot is the holder's connection's; in HTTP mode its request's
        // (the connection stays, so that the lines count it whenever they are written).
        if case.mode == Mode::Tcp {
            let _ = holder.shutdown(Shutdown::Write);
        }
    }
    let reply = reader.map_or_else(String::new, |r| r.join().expect("the reader"));
    let lines = syslog.lines(if case.wait == Wait::Connect { 1 } else { 2 });
    drop(holder);
    let line = lines
        .iter()
        .find(|l| l.contains(&format!(":{port} ")))
        .unwrap_or_else(|| panic!("{name}: no log line of port {port} in {lines:?}"));
    let frontend_scur =
        || stat_row(&cli(&socket, "show stat"), "fe", "FRONTEND").map(|r| r["scur"].clone());
    assert!(
        wait_until(Duration::from_secs(5), || stat("BACKEND", "scur") == "0"
            && frontend_scur().as_deref() == Some("0")),
        "{name}: streams left"
    );
    let csv = cli(&socket, "show stat");
    let counters = [("fe", "FRONTEND"), ("be", "BACKEND"), ("be", "s1")]
        .into_iter()
        .flat_map(|(proxy, row)| {
            let values = stat_row(&csv, proxy, row).expect("a stat row");
            COUNTERS.map(|field| format!("{row}.{field}={}", values[field]))
        })
        .collect();
    drop(proxy);
    Seen {
        line: masked(line),
        reply,
        server: backend.seen(),
        counters,
    }
}

/// Shuts the client's side and reads what comes in a thread: see [`reply`].
fn leave_with_fin(client: TcpStream) -> thread::JoinHandle<String> {
    client.shutdown(Shutdown::Write).unwrap();
    thread::spawn(move || reply(client))
}

/// What a client that closed its side got: the first line of a response, `closed` (a FIN
/// and nothing), or `reset`.
fn reply(mut client: TcpStream) -> String {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    match client.read_to_end(&mut got) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => "reset".into(),
        Err(e) => format!("{:?}", e.kind()),
        Ok(_) if got.is_empty() => "closed".into(),
        Ok(_) => String::from_utf8_lossy(&got)
            .lines()
            .next()
            .unwrap_or_default()
            .into(),
    }
}

/// A log line from its frontend's name on, its timers' values masked (only whether each is
/// -1, never reached, is kept).
fn masked(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = words.iter().position(|w| *w == "fe").unwrap_or(0);
    let numbers = |w: &str| {
        let parts: Vec<&str> = w.split('/').collect();
        let numeric = parts.iter().all(|p| {
            !p.is_empty()
                && p.trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        });
        if numeric { parts.len() } else { 0 }
    };
    let mut timers_seen = false;
    words[from..]
        .iter()
        .map(|w| match numbers(w) {
            3 | 5 if !timers_seen => {
                timers_seen = true;
                w.split('/')
                    .map(|t| if t == "-1" { "-1" } else { "T" })
                    .collect::<Vec<_>>()
                    .join("/")
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HTTP server that records each request it gets (`FIRST-LINE BODY`, or `truncated
/// FIRST-LINE` when its body did not come whole) and answers `200 ok`; a request for
/// `/hold` is answered once released.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    released: Arc<(Mutex<bool>, Condvar)>,
}

impl Backend {
    fn start() -> Backend {
        let listener = TcpListener::bind((LO, 0)).expect("binding a server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new((Mutex::new(false), Condvar::new()));
        let (s, r) = (seen.clone(), released.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, r) = (s.clone(), r.clone());
                thread::spawn(move || serve(conn, &s, &r));
            }
        });
        Backend {
            addr,
            seen,
            released,
        }
    }

    fn release(&self) {
        let (lock, wake) = &*self.released;
        *lock.lock().unwrap() = true;
        wake.notify_all();
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(mut conn: TcpStream, seen: &Mutex<Vec<String>>, released: &(Mutex<bool>, Condvar)) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let first = head.lines().next().unwrap_or_default().to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + length {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    seen.lock().unwrap().push(format!("truncated {first}"));
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[end..end + length]).into_owned();
        buf.drain(..end + length);
        seen.lock()
            .unwrap()
            .push(format!("{first} {body}").trim_end().into());
        if first.contains("/hold") {
            let (lock, wake) = released;
            let _held = wake
                .wait_while(lock.lock().unwrap(), |released| !*released)
                .unwrap();
        }
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// A server that never completes a handshake: a listener with a backlog of 0 (room for
/// one) whose queue is filled by a connection that is never accepted; later SYNs go
/// unanswered. The listener and the filler, to keep.
fn unanswering_server() -> (TcpListener, TcpStream) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((LO, 0)).into())
        .expect("binding");
    // SAFETY: listen(2) on a socket this function owns.
    assert_eq!(unsafe { libc::listen(socket.as_raw_fd(), 0) }, 0);
    let listener = TcpListener::from(socket);
    let filler = TcpStream::connect(listener.local_addr().expect("its address"))
        .expect("filling the accept queue");
    (listener, filler)
}

fn assert_term(name: &str, seen: &Seen, term: &str) {
    assert!(seen.line.contains(&format!(" {term}")), "{name}: {seen:?}");
}

// HTTP mode.

#[test]
fn http_fin_in_the_queue_goes_unseen_without_abortonclose() {
    let case = Case::new(Mode::Http, Wait::Queue, GET, Leave::Fin);
    compare("aoc-http-queue-fin", case, |name, seen| {
        assert_term(name, seen, "200 ");
        assert_eq!(seen.reply, "HTTP/1.1 200 OK", "{name}");
        assert_eq!(
            seen.server,
            ["GET /hold HTTP/1.1", "GET /q HTTP/1.1"],
            "{name}"
        );
    });
}

#[test]
fn http_fin_in_the_queue_aborts_with_abortonclose() {
    let case = Case::new(Mode::Http, Wait::Queue, GET, Leave::Fin).abortonclose();
    compare("aoc-http-queue-fin-aoc", case, |name, seen| {
        assert_term(name, seen, "-1 0 - - CQ-- ");
        assert!(
            seen.line.contains("be/<NOSRV> T/T/-1/-1/T"),
            "{name}: {seen:?}"
        );
        assert_eq!(seen.reply, "closed", "{name}");
        assert_eq!(seen.server, ["GET /hold HTTP/1.1"], "{name}");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "0", "{name}");
        assert_eq!(seen.counter("BACKEND.hrsp_other"), "1", "{name}");
        assert_eq!(seen.counter("BACKEND.qcur"), "0", "{name}");
    });
}

/// HAProxy's frontend stops reading after a whole request without the option (its own,
/// from `defaults`): the backend's alone sees no FIN.
#[test]
fn http_abortonclose_of_the_backend_alone_sees_no_fin() {
    let case = Case::new(Mode::Http, Wait::Queue, GET, Leave::Fin).backend_abortonclose();
    compare("aoc-http-queue-fin-backend-aoc", case, |name, seen| {
        assert_term(name, seen, "200 ");
        assert_eq!(
            seen.server,
            ["GET /hold HTTP/1.1", "GET /q HTTP/1.1"],
            "{name}"
        );
    });
}

/// The frontend reads the FIN, the backend (`no option abortonclose`) waits on.
#[test]
fn http_no_abortonclose_in_the_backend_keeps_the_request() {
    let case = Case {
        backend: "  no option abortonclose\n",
        ..Case::new(Mode::Http, Wait::Connect, GET, Leave::Fin).abortonclose()
    };
    compare("aoc-http-connect-fin-no-aoc", case, |name, seen| {
        assert!(seen.line.contains(" 503 217 - - sC-- "), "{name}: {seen:?}");
    });
}

#[test]
fn http_reset_in_the_queue_is_an_abort_with_abortonclose() {
    let case = Case::new(Mode::Http, Wait::Queue, GET, Leave::Reset).abortonclose();
    compare("aoc-http-queue-reset-aoc", case, |name, seen| {
        assert_term(name, seen, "CQ-- ");
        assert_eq!(seen.server, ["GET /hold HTTP/1.1"], "{name}");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "1", "{name}");
        assert_eq!(seen.counter("s1.cli_abrt"), "0", "{name}");
    });
}

#[test]
fn http_body_cut_in_the_queue_aborts_without_abortonclose() {
    let case = Case::new(Mode::Http, Wait::Queue, POST_PARTIAL, Leave::Fin);
    compare("aoc-http-queue-truncated", case, |name, seen| {
        assert_term(name, seen, "-1 0 - - CQ-- ");
        assert_eq!(seen.server, ["GET /hold HTTP/1.1"], "{name}");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "1", "{name}");
    });
}

#[test]
fn http_body_finished_in_the_queue_is_served() {
    let rest = Leave::RestThenFin(b"defghij");
    let case = Case::new(Mode::Http, Wait::Queue, POST_PARTIAL, rest);
    compare("aoc-http-queue-body-finished", case, |name, seen| {
        assert_term(name, seen, "200 ");
        assert_eq!(seen.server[1], "POST /q HTTP/1.1 abcdefghij", "{name}");
        assert_eq!(seen.reply, "HTTP/1.1 200 OK", "{name}");
    });
}

#[test]
fn http_leaving_a_server_queue_names_the_server() {
    let case = Case::new(Mode::Http, Wait::ServerQueue, GET, Leave::Reset).abortonclose();
    compare("aoc-http-server-queue", case, |name, seen| {
        assert_term(name, seen, "CQ-- ");
        assert!(seen.line.contains("be/s1 "), "{name}: {seen:?}");
        assert!(seen.line.contains(" 1/0 "), "{name}: {seen:?}");
        assert_eq!(seen.counter("s1.cli_abrt"), "1", "{name}");
    });
}

#[test]
fn http_fin_while_connecting_aborts_with_abortonclose() {
    let case = Case::new(Mode::Http, Wait::Connect, GET, Leave::Fin).abortonclose();
    compare("aoc-http-connect-fin-aoc", case, |name, seen| {
        assert_term(name, seen, "-1 0 - - CC-- ");
        assert!(seen.line.contains("be/s1 T/T/-1/-1/T"), "{name}: {seen:?}");
        assert_eq!(seen.counter("s1.econ"), "0", "{name}");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "0", "{name}");
    });
}

#[test]
fn http_body_cut_while_connecting_aborts() {
    let case = Case::new(Mode::Http, Wait::Connect, POST_PARTIAL, Leave::Reset);
    compare("aoc-http-connect-truncated", case, |name, seen| {
        assert_term(name, seen, "CC-- ");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "0", "{name}");
    });
}

#[test]
fn http_fin_while_connecting_waits_for_the_connection_without_abortonclose() {
    let case = Case::new(Mode::Http, Wait::Connect, GET, Leave::Fin);
    compare("aoc-http-connect-fin", case, |name, seen| {
        assert_term(name, seen, "503 ");
        assert!(seen.line.contains(" sC-- "), "{name}: {seen:?}");
        assert_eq!(seen.reply, "HTTP/1.1 503 Service Unavailable", "{name}");
    });
}

#[test]
fn http_queue_timeout_to_a_reset_client_counts_its_abort() {
    let case = Case {
        timeout_queue: "100ms",
        ..Case::new(Mode::Http, Wait::Queue, GET, Leave::Reset)
    };
    compare("aoc-http-queue-timeout-reset", case, |name, seen| {
        assert_term(name, seen, "503 ");
        assert!(seen.line.contains(" sQ-- "), "{name}: {seen:?}");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "1", "{name}");
    });
}

// TCP mode.

#[test]
fn tcp_fin_after_data_in_the_queue_is_served_once_a_slot_frees() {
    let case = Case::new(Mode::Tcp, Wait::Queue, GET, Leave::Fin);
    compare("aoc-tcp-queue-fin", case, |name, seen| {
        assert_term(name, seen, "40 -- ");
        assert_eq!(seen.reply, "HTTP/1.1 200 OK", "{name}");
        assert_eq!(seen.server[1], "GET /q HTTP/1.1", "{name}");
    });
}

/// In TCP mode the backend's option decides alone.
#[test]
fn tcp_fin_after_data_in_the_queue_aborts_with_abortonclose() {
    let case = Case::new(Mode::Tcp, Wait::Queue, GET, Leave::Fin).backend_abortonclose();
    compare("aoc-tcp-queue-fin-aoc", case, |name, seen| {
        assert_term(name, seen, "0 CQ ");
        assert_eq!(seen.reply, "closed", "{name}");
        assert_eq!(seen.server, ["GET /hold HTTP/1.1"], "{name}");
    });
}

/// `option abortonclose` in `defaults`, undone in the backend by `no option abortonclose`.
#[test]
fn tcp_no_abortonclose_undoes_the_defaults() {
    let case = Case {
        defaults: "  option abortonclose\n",
        backend: "  no option abortonclose\n",
        ..Case::new(Mode::Tcp, Wait::Queue, GET, Leave::Fin)
    };
    compare("aoc-tcp-queue-fin-no-aoc", case, |name, seen| {
        assert_term(name, seen, "40 -- ");
        assert_eq!(seen.server[1], "GET /q HTTP/1.1", "{name}");
    });
}

#[test]
fn tcp_reset_in_the_queue_is_logged_cd() {
    let case = Case::new(Mode::Tcp, Wait::Queue, GET, Leave::Reset);
    compare("aoc-tcp-queue-reset", case, |name, seen| {
        assert_term(name, seen, "0 CD ");
        assert!(seen.line.contains("be/<NOSRV> T/-1/T"), "{name}: {seen:?}");
        assert_eq!(seen.counter("BACKEND.cli_abrt"), "1", "{name}");
        assert_eq!(seen.server, ["GET /hold HTTP/1.1"], "{name}");
    });
}

#[test]
fn tcp_fin_after_data_while_connecting_aborts_with_abortonclose() {
    let case = Case::new(Mode::Tcp, Wait::Connect, GET, Leave::Fin).abortonclose();
    compare("aoc-tcp-connect-fin-aoc", case, |name, seen| {
        assert_term(name, seen, "0 CC ");
        assert_eq!(seen.reply, "closed", "{name}");
    });
}

#[test]
fn tcp_reset_while_connecting_is_an_abort() {
    let case = Case::new(Mode::Tcp, Wait::Connect, GET, Leave::Reset);
    compare("aoc-tcp-connect-reset", case, |name, seen| {
        assert_term(name, seen, "0 CD ");
        assert_eq!(seen.counter("s1.cli_abrt"), "1", "{name}");
        assert_eq!(seen.counter("s1.econ"), "0", "{name}");
    });
}

#[test]
fn tcp_fin_after_data_while_connecting_waits_without_abortonclose() {
    let case = Case::new(Mode::Tcp, Wait::Connect, GET, Leave::Fin);
    compare("aoc-tcp-connect-fin", case, |name, seen| {
        assert_term(name, seen, "0 sC ");
        // What it sent was read: the close is a FIN, not a reset.
        assert_eq!(seen.reply, "closed", "{name}");
    });
}

// The keyword.

/// In a frontend HAProxy warns and ignores it (with `no` too); an argument is refused.
#[test]
fn abortonclose_is_a_backend_option_like_haproxy() {
    let test = "abortonclose_is_a_backend_option_like_haproxy";
    let dir = temp_dir(test);
    for (case, extra) in [("plain", ""), ("argument", " extra")] {
        let file = dir.join(format!("{case}.cfg"));
        let text = format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n\
             \x20 timeout connect 1s\n  option abortonclose\n\
             frontend fe\n  bind 127.0.0.1:1\n  option abortonclose\n\
             \x20 no option abortonclose\n  default_backend be\n\
             backend be\n  no option abortonclose\n  option abortonclose{extra}\n\
             \x20 server s 127.0.0.1:2\n"
        );
        std::fs::write(&file, text).unwrap();
        let ours = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
        let warned = ours
            .1
            .iter()
            .filter(|m| m.contains("no backend capability"));
        assert_eq!(warned.count(), 2, "{case}: {ours:?}");
        assert_eq!(ours.0 == 0, extra.is_empty(), "{case}: {ours:?}");
        if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
            let theirs = check_messages(Path::new(HAPROXY), &file);
            assert_eq!(ours, theirs, "{case}: hapx-proxy, then HAProxy");
        }
    }
}
