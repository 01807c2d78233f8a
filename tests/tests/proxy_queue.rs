//! The queue of connections waiting for a server at its `maxconn`, beside HAProxy 2.6: the
//! server sees them in the order they arrived (first come, first served, in the backend's
//! queue and in a server's), never two at once; one that gives up (`timeout queue`) does
//! not hold up those behind it; a retry on the same server keeps its slot, so `maxconn`
//! holds through the retry's turn-around; a server leaving maintenance takes the queued
//! connections at once. In HTTP a server's `maxconn` counts requests in progress: a client
//! idle on a kept-alive connection holds no slot, and its next request waits its turn.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{
    Proxy, cli, free_port, kept_alive_client, read_response, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::binaries;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A hold time meaning: until the test opens the server's gate ([`Seen::open_gate`]).
const GATED: u64 = 999_999;

/// What the test server saw: the clients in the order it served them, and the most
/// requests it had in hand at once; and the gate a client held [`GATED`] waits at.
#[derive(Default)]
struct Seen {
    order: Mutex<Vec<usize>>,
    busy: AtomicUsize,
    most_busy: AtomicUsize,
    gate: Mutex<bool>,
    gate_opened: Condvar,
}

impl Seen {
    /// Lets the clients waiting at the gate go on.
    fn open_gate(&self) {
        *self.gate.lock().unwrap() = true;
        self.gate_opened.notify_all();
    }

    /// Waits for the gate to open (at most 60 s: a test gone wrong ends anyway).
    fn wait_at_gate(&self) {
        let open = self.gate.lock().unwrap();
        let _ = self
            .gate_opened
            .wait_timeout_while(open, Duration::from_secs(60), |open| !*open);
    }
}

/// A server on `listener` that reads one line naming the client and how long to hold it
/// (`7 200`, or an HTTP request line `GET /7/200 HTTP/1.1`), holds it that long, answers
/// and closes.
fn serve(listener: TcpListener) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = shared.clone();
            thread::spawn(move || answer(conn, &seen));
        }
    });
    seen
}

fn answer(conn: TcpStream, seen: &Seen) {
    let busy = seen.busy.fetch_add(1, SeqCst) + 1;
    seen.most_busy.fetch_max(busy, SeqCst);
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let http = line.starts_with("GET");
    hold(&line, seen);
    if http {
        // The rest of the head.
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {}
    }
    // No longer busy before answering: the proxy gives the slot back once it has the
    // answer, and may connect again at once.
    seen.busy.fetch_sub(1, SeqCst);
    let reply: &[u8] = if http {
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
    } else {
        b"ok\n"
    };
    let mut conn = conn;
    let _ = conn.write_all(reply);
}

/// Records the client that `line` (`7 200`, `GET /7/200 HTTP/1.1`) names, and holds it the
/// time it names ([`GATED`]: until the gate opens).
fn hold(line: &str, seen: &Seen) {
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    if let [client, hold, ..] = numbers[..] {
        seen.order.lock().unwrap().push(client as usize);
        match hold {
            GATED => seen.wait_at_gate(),
            ms => thread::sleep(Duration::from_millis(ms)),
        }
    }
}

/// A client: connects to `front`, names itself and its hold time, and reads the answer to
/// its end (empty when the proxy gave up on it).
fn client(front: SocketAddr, mode: &str, id: usize, hold_ms: u64) -> String {
    let mut c = TcpStream::connect(front).expect("connecting to the proxy");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = match mode {
        "http" => format!("GET /{id}/{hold_ms} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"),
        _ => format!("{id} {hold_ms}\n"),
    };
    c.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer
}

/// Clients `(start after the previous one, hold)` through `front`, each in its thread;
/// their answers in order.
fn clients(front: SocketAddr, mode: &str, plan: &[(u64, u64)]) -> Vec<String> {
    let mut running = Vec::new();
    for (id, &(after, hold)) in plan.iter().enumerate() {
        thread::sleep(Duration::from_millis(after));
        let mode = mode.to_string();
        running.push(thread::spawn(move || client(front, &mode, id, hold)));
    }
    running.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Starts `binary` with one frontend and `backend be` holding `backend`.
fn start(
    binary: PathBuf,
    dir: &Path,
    name: &str,
    mode: &str,
    backend: &str,
) -> (Proxy, SocketAddr) {
    start_with(binary, dir, name, "", mode, backend)
}

/// [`start`] with `global` lines.
fn start_with(
    binary: PathBuf,
    dir: &Path,
    name: &str,
    global: &str,
    mode: &str,
    backend: &str,
) -> (Proxy, SocketAddr) {
    let port = free_port();
    let front = SocketAddr::from((LO, port));
    let cfg = format!(
        "global\n{global}defaults\n  mode {mode}\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\nbackend be\n{backend}"
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    (proxy, front)
}

/// A test server (`serve` or `serve_kept_alive`) on a free loopback port: its address and
/// what it sees.
fn on_loopback(serving: fn(TcpListener) -> Arc<Seen>) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind((LO, 0)).expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    (addr, serving(listener))
}

fn ok(mode: &str, answer: &str) -> bool {
    match mode {
        "http" => answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        _ => answer == "ok\n",
    }
}

#[test]
fn queued_connections_are_served_in_arrival_order() {
    let test = "queued_connections_are_served_in_arrival_order";
    // Short: HAProxy binds its stats socket at PATH.PID.tmp, within 108 bytes.
    let dir = temp_dir("queue-order");
    const CLIENTS: usize = 8;
    // Round robin queues in the backend's queue; a hash in its server's.
    for (mode, balance) in [
        ("tcp", "roundrobin"),
        ("http", "roundrobin"),
        ("tcp", "source"),
    ] {
        for (who, binary) in binaries(test) {
            let (server, seen) = on_loopback(serve);
            let name = format!("{who}-{mode}-{balance}");
            let sock = dir.join(format!("{name}.sock"));
            let global = format!("  stats socket {} level admin\n", sock.display());
            let backend = format!(
                "  balance {balance}\n  timeout queue 30s\n  server s1 {server} maxconn 1\n"
            );
            let (_proxy, front) = start_with(binary, &dir, &name, &global, mode, &backend);
            // 0 holds the only slot until the gate opens; each of the others comes once
            // the proxy counts the one before it queued, so arrival order is known.
            let mut running = Vec::new();
            for id in 0..CLIENTS {
                let hold = if id == 0 { GATED } else { 20 };
                running.push(thread::spawn(move || client(front, mode, id, hold)));
                let arrived = || match id {
                    0 => seen.order.lock().unwrap().len() == 1,
                    _ => queued_in_all(&sock) == id,
                };
                let case = format!("{who} {mode} {balance}: client {id}");
                assert!(
                    wait_until(Duration::from_secs(20), arrived),
                    "{case} not seen"
                );
            }
            seen.open_gate();
            let answers: Vec<String> = running.into_iter().map(|t| t.join().unwrap()).collect();
            let case = format!("{who} {mode} {balance}");
            assert!(answers.iter().all(|a| ok(mode, a)), "{case}: {answers:?}");
            let order = seen.order.lock().unwrap().clone();
            let arrival: Vec<usize> = (0..CLIENTS).collect();
            assert_eq!(order, arrival, "{case}: served out of arrival order");
            assert_eq!(seen.most_busy.load(SeqCst), 1, "{case}: maxconn 1 exceeded");
        }
    }
}

/// The connections queued in backend `be`, in its queue and its servers' (`qcur`).
fn queued_in_all(sock: &Path) -> usize {
    let csv = cli(sock, "show stat");
    ["s1", "BACKEND"]
        .iter()
        .filter_map(|row| {
            stat_row(&csv, "be", row)?
                .get("qcur")?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

#[test]
fn a_connection_giving_up_does_not_hold_up_those_behind_it() {
    let test = "a_connection_giving_up_does_not_hold_up_those_behind_it";
    let dir = temp_dir("queue-giving-up");
    // 0 holds the slot until the gate opens; 1 queues, and gives up after `timeout queue`;
    // 2 and 3 queue [`BEHIND`] later, so that when 1 has given up and the gate opens
    // they are that far from their own timeouts: served, in their order. The timeout
    // itself is the subject, hence its margin rather than a gate.
    for mode in ["tcp", "http"] {
        for (who, binary) in binaries(test) {
            let (server, seen) = on_loopback(serve);
            let name = format!("{who}-{mode}");
            let sock = dir.join(format!("{name}.sock"));
            let global = format!("  stats socket {} level admin\n", sock.display());
            let backend =
                format!("  timeout queue {QUEUE_TIMEOUT_MS}ms\n  server s1 {server} maxconn 1\n");
            let (_proxy, front) = start_with(binary, &dir, &name, &global, mode, &backend);
            let case = format!("{who} {mode}");
            let start = |id: usize, hold: u64| {
                let mode = mode.to_string();
                thread::spawn(move || client(front, &mode, id, hold))
            };
            let holding = start(0, GATED);
            let on_server = || seen.order.lock().unwrap().len() == 1;
            assert!(
                wait_until(Duration::from_secs(20), on_server),
                "{case}: 0 not served"
            );
            let giving_up = start(1, 50);
            let queued =
                |n: usize| wait_until(Duration::from_secs(20), || queued_in_all(&sock) == n);
            assert!(queued(1), "{case}: 1 not queued");
            thread::sleep(BEHIND);
            let mut behind = Vec::new();
            for id in [2, 3] {
                behind.push(start(id, 50));
                assert!(queued(id), "{case}: {id} not queued");
            }
            let gave_up = giving_up.join().unwrap();
            seen.open_gate();
            let mut answers = vec![holding.join().unwrap(), gave_up];
            answers.extend(behind.into_iter().map(|t| t.join().unwrap()));
            let served: Vec<bool> = answers.iter().map(|a| ok(mode, a)).collect();
            assert_eq!(served, [true, false, true, true], "{case}: {answers:?}");
            if mode == "http" {
                assert!(
                    answers[1].starts_with("HTTP/1.1 503"),
                    "{case}: {answers:?}"
                );
            }
            assert_eq!(*seen.order.lock().unwrap(), [0, 2, 3], "{case}");
            assert_eq!(seen.most_busy.load(SeqCst), 1, "{case}: maxconn 1 exceeded");
        }
    }
}

/// The backend's `timeout queue` in [`a_connection_giving_up_does_not_hold_up_those_behind_it`].
const QUEUE_TIMEOUT_MS: u64 = 3000;

/// How much later than the connection giving up the ones behind it queue: how long the
/// test may take, on a loaded machine, from the give-up to the slot freeing.
const BEHIND: Duration = Duration::from_millis(1500);

#[test]
fn a_retry_on_the_same_server_keeps_its_slot() {
    let test = "a_retry_on_the_same_server_keeps_its_slot";
    let dir = temp_dir(test);
    for mode in ["tcp", "http"] {
        for (who, binary) in binaries(test) {
            // The server is not there yet: the first attempts are refused, and each
            // retry waits for its turn-around (`timeout connect`, 1 s) holding the slot.
            let port = free_port();
            let server = SocketAddr::from((LO, port));
            let backend =
                format!("  retries 3\n  timeout queue 5s\n  server s1 {server} maxconn 1\n");
            let (_proxy, front) = start(binary, &dir, &format!("{who}-{mode}"), mode, &backend);
            // 0 connects first; 1 comes while 0 waits to retry, and must wait for the slot
            // rather than connect beside it once the server is up.
            let plan = [(0, 300), (100, 300)];
            let seen = thread::scope(|s| {
                let starting = s.spawn(|| {
                    thread::sleep(Duration::from_millis(400));
                    serve(TcpListener::bind(server).expect("binding the server's port"))
                });
                let answers = clients(front, mode, &plan);
                let case = format!("{who} {mode}");
                assert!(answers.iter().all(|a| ok(mode, a)), "{case}: {answers:?}");
                starting.join().unwrap()
            });
            let case = format!("{who} {mode}");
            assert_eq!(*seen.order.lock().unwrap(), [0, 1], "{case}");
            assert_eq!(seen.most_busy.load(SeqCst), 1, "{case}: maxconn 1 exceeded");
        }
    }
}

#[test]
fn a_server_coming_up_takes_the_queued_connections() {
    let test = "a_server_coming_up_takes_the_queued_connections";
    let dir = temp_dir(test);
    for (who, binary) in binaries(test) {
        let (first, second) = (
            TcpListener::bind((LO, 0)).unwrap(),
            TcpListener::bind((LO, 0)).unwrap(),
        );
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        let (seen_a, seen_b) = (serve(first), serve(second));
        let sock = dir.join(format!("{who}.sock"));
        let global = format!("  stats socket {} level admin\n", sock.display());
        let backend = format!(
            "  timeout queue 10s\n  server a {a} maxconn 1\n  server b {b} maxconn 1 disabled\n"
        );
        let (_proxy, front) = start_with(binary, &dir, who, &global, "tcp", &backend);
        // 0 holds the only usable server; 1 queues, until b leaves maintenance.
        let (done, finished) = mpsc::channel();
        let clients: Vec<_> = [(0, 3000), (1, 50)]
            .into_iter()
            .map(|(id, hold)| {
                let done = done.clone();
                thread::sleep(Duration::from_millis(150));
                thread::spawn(move || {
                    let answer = client(front, "tcp", id, hold);
                    done.send((id, answer)).unwrap();
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        cli(&sock, "set server be/b state ready");
        for c in clients {
            c.join().unwrap();
        }
        let order: Vec<(usize, String)> = finished.try_iter().collect();
        let ok_all = order.iter().all(|(_, a)| ok("tcp", a));
        assert!(ok_all, "{who}: {order:?}");
        // b served 1 while a still held 0.
        assert_eq!(
            order.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [1, 0],
            "{who}"
        );
        assert_eq!(*seen_a.order.lock().unwrap(), [0], "{who}");
        assert_eq!(*seen_b.order.lock().unwrap(), [1], "{who}");
    }
}

/// A server on `listener` that keeps its connections alive: it answers each request
/// (`GET /<client>/<hold ms>`) after holding it, until the proxy closes or asks to close.
/// [`Seen`] counts requests in hand, not connections.
fn serve_kept_alive(listener: TcpListener) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = shared.clone();
            thread::spawn(move || while answer_one(&conn, &seen) {});
        }
    });
    seen
}

/// Answers one request on `conn`; false when the connection is over.
fn answer_one(conn: &TcpStream, seen: &Seen) -> bool {
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
    if head.is_empty() {
        return false;
    }
    let busy = seen.busy.fetch_add(1, SeqCst) + 1;
    seen.most_busy.fetch_max(busy, SeqCst);
    hold(head.lines().next().unwrap_or_default(), seen);
    seen.busy.fetch_sub(1, SeqCst);
    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
    let closing = head.to_ascii_lowercase().contains("connection: close");
    (&*conn).write_all(reply).is_ok() && !closing
}

/// Sends `GET /<id>/<hold>` on a kept-alive client connection; the status line and body
/// of the answer (empty when the connection ended).
fn ask_kept_alive(conn: &mut BufReader<TcpStream>, id: usize, hold_ms: u64) -> String {
    let request = format!("GET /{id}/{hold_ms} HTTP/1.1\r\nhost: t\r\n\r\n");
    if conn.get_mut().write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let (status, body) = read_response(conn);
    status + "|" + &body
}

/// The server's `scur` in `show stat` once it settles at `want` (the last value seen after
/// two seconds otherwise): the proxy gives the slot back just after the answer leaves.
fn settled_scur(sock: &Path, want: &str) -> String {
    let mut scur = String::new();
    for _ in 0..40 {
        let csv = cli(sock, "show stat");
        scur = stat_row(&csv, "be", "s1").map_or_else(String::new, |r| r["scur"].clone());
        if scur == want {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    scur
}

#[test]
fn an_idle_kept_alive_client_holds_no_server_slot() {
    let test = "an_idle_kept_alive_client_holds_no_server_slot";
    let dir = temp_dir(test);
    for (who, binary) in binaries(test) {
        let (server, seen) = on_loopback(serve_kept_alive);
        let sock = dir.join(format!("{who}.sock"));
        let global = format!("  stats socket {} level admin\n", sock.display());
        let backend = format!("  timeout queue 1s\n  server s1 {server} maxconn 1\n");
        let (_proxy, front) = start_with(binary, &dir, who, &global, "http", &backend);
        // A is answered and keeps its connection, idle: the server counts no request.
        let mut a = kept_alive_client(front);
        assert_eq!(
            ask_kept_alive(&mut a, 0, 0),
            "HTTP/1.1 200 OK|ok\n",
            "{who}"
        );
        assert_eq!(settled_scur(&sock, "0"), "0", "{who}: scur with A idle");
        // B is served, not queued behind A's idle connection until `timeout queue`.
        let b = client(front, "http", 1, 0);
        assert!(ok("http", &b), "{who}: B got {b:?}");
        // A's kept-alive connection still serves its next request.
        assert_eq!(
            ask_kept_alive(&mut a, 2, 0),
            "HTTP/1.1 200 OK|ok\n",
            "{who}"
        );
        assert_eq!(*seen.order.lock().unwrap(), [0, 1, 2], "{who}");
        assert_eq!(seen.most_busy.load(SeqCst), 1, "{who}: maxconn 1 exceeded");
    }
}

#[test]
fn kept_alive_clients_taking_turns_never_exceed_maxconn() {
    let test = "kept_alive_clients_taking_turns_never_exceed_maxconn";
    let dir = temp_dir(test);
    let (clients, requests) = (5, 6);
    for maxconn in [1, 2] {
        for (who, binary) in binaries(test) {
            let (server, seen) = on_loopback(serve_kept_alive);
            let backend = format!("  timeout queue 3s\n  server s1 {server} maxconn {maxconn}\n");
            let name = format!("{who}-{maxconn}");
            let (_proxy, front) = start(binary, &dir, &name, "http", &backend);
            // Each client sends its requests one after the other on its one connection,
            // all clients at once: their requests alternate at the server. Each keeps its
            // connection until all are done, so an idle one holding its slot would leave
            // others waiting until `timeout queue`.
            let done = Barrier::new(clients);
            let answers: Vec<Vec<String>> = thread::scope(|s| {
                let running: Vec<_> = (0..clients)
                    .map(|id| {
                        let done = &done;
                        s.spawn(move || {
                            let mut conn = kept_alive_client(front);
                            let answers = (0..requests)
                                .map(|_| ask_kept_alive(&mut conn, id, 20))
                                .collect();
                            done.wait();
                            answers
                        })
                    })
                    .collect();
                running.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let case = format!("{who} maxconn {maxconn}");
            let all_ok = answers
                .iter()
                .flatten()
                .all(|a| a == "HTTP/1.1 200 OK|ok\n");
            assert!(all_ok, "{case}: {answers:?}");
            assert_eq!(
                seen.order.lock().unwrap().len(),
                clients * requests,
                "{case}"
            );
            let most = seen.most_busy.load(SeqCst);
            if who == "HAProxy" {
                // HAProxy itself went past `maxconn 1` once in a CI run under load (2 requests
                // at the server at once): its limit is not held that strictly, so it is only
                // the reference for the answers and the order, not for this bound.
                if most > maxconn {
                    eprintln!("{case}: HAProxy had {most} requests at once");
                }
                continue;
            }
            assert!(most <= maxconn, "{case}: {most} requests at once");
        }
    }
}

/// `show stat` reports the queues as HAProxy does: `qcur` while connections wait (in the
/// backend's queue for round robin), `qmax` the longest it was.
#[test]
fn queue_lengths_show_in_the_stats() {
    let test = "queue_lengths_show_in_the_stats";
    let dir = temp_dir(test);
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let (server, _served) = on_loopback(serve);
        let sock = dir.join(format!("{who}.sock"));
        let global = format!("  stats socket {} level admin\n", sock.display());
        let backend = format!("  timeout queue 10s\n  server s1 {server} maxconn 1\n");
        let (_proxy, front) = start_with(binary, &dir, who, &global, "http", &backend);
        // One held for a second, three waiting behind it.
        let running = thread::spawn(move || {
            clients(front, "http", &[(0, 1000), (50, 10), (50, 10), (50, 10)])
        });
        thread::sleep(Duration::from_millis(500));
        let queue = |csv: &str, sv: &str| {
            let row = stat_row(csv, "be", sv).expect("a row");
            (row["qcur"].clone(), row["qmax"].clone())
        };
        let during = cli(&sock, "show stat");
        let answers = running.join().unwrap();
        assert!(answers.iter().all(|a| ok("http", a)), "{who}: {answers:?}");
        let after = cli(&sock, "show stat");
        seen.push([
            queue(&during, "BACKEND"),
            queue(&during, "s1"),
            queue(&after, "BACKEND"),
            queue(&after, "s1"),
        ]);
    }
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        seen[0],
        [
            pair("3", "3"),
            pair("0", "0"),
            pair("0", "3"),
            pair("0", "0")
        ]
    );
    if let Some(theirs) = seen.get(1) {
        assert_eq!(&seen[0], theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// A queued connection waits on when no server is usable any more (here the only one goes
/// into maintenance), until `timeout queue`, as in HAProxy: a 503 then, not at once.
#[test]
fn queued_connections_wait_for_their_timeout_when_no_server_is_left() {
    let test = "queued_connections_wait_for_their_timeout_when_no_server_is_left";
    // Short: HAProxy binds its stats socket at PATH.PID.tmp, within 108 bytes.
    let dir = temp_dir("queue-no-server");
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let (server, _served) = on_loopback(serve);
        let sock = dir.join(format!("{who}.sock"));
        let global = format!("  stats socket {} level admin\n", sock.display());
        let backend = format!("  timeout queue 1500ms\n  server s1 {server} maxconn 1\n");
        let (_proxy, front) = start_with(binary, &dir, who, &global, "http", &backend);
        let running = thread::spawn(move || clients(front, "http", &[(0, 800), (100, 10)]));
        thread::sleep(Duration::from_millis(300));
        let disabled = std::time::Instant::now();
        cli(&sock, "disable server be/s1");
        let answers = running.join().unwrap();
        let waited = disabled.elapsed();
        assert!(ok("http", &answers[0]), "{who}: {answers:?}");
        assert!(answers[1].starts_with("HTTP/1.1 503"), "{who}: {answers:?}");
        // Its 1.5 s from when it queued (0.2 s before the disable), not at once.
        assert!(waited > Duration::from_millis(900), "{who}: {waited:?}");
        seen.push(answers[1].lines().next().unwrap_or_default().to_string());
    }
    if let Some(theirs) = seen.get(1) {
        assert_eq!(&seen[0], theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}
