//! Balancing each HTTP request, and reusing idle server connections, beside HAProxy 2.6 run
//! with the same configuration: a kept-alive client's requests go round the servers; a
//! client connection's first request opens its own server connection and later ones take
//! idle ones as `http-reuse` allows; `option prefer-last-server` keeps a client on the
//! server of a connection it owns (`http-reuse never`); `show stat` counts requests
//! (`stot`) and balancing decisions (`lbtot`) per server as HAProxy does; a request queued
//! for a hashed server that goes into maintenance is balanced again only with `option
//! redispatch`. A server connection goes back to use only once its response was read
//! whole, is never used at an old address or after maintenance, and a request the server
//! may have acted on is never sent twice.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{
    Proxy, cli, free_port, kept_alive_client, read_response, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::binaries;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// An HTTP server that numbers its connections and answers each request with `NAME cN`
/// (N: the connection's number), after holding it the milliseconds a path `/hMS` names; a
/// path naming `ntlm` gets a 401 asking for NTLM authentication; after a path naming `bye`
/// the server closes the connection (without saying so in the response); a path naming
/// `drop` gets no answer (the connection closes); one naming `early` gets a 103 after
/// 200 ms, then 700 ms later `200 EARLY`. Each request line is noted with its connection's
/// number.
struct Numbered {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(usize, String)>>>,
}

impl Numbered {
    fn start(name: &str) -> Numbered {
        let listener = TcpListener::bind((LO, 0)).expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, name, log) = (connections.clone(), name.to_string(), requests.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let n = count.fetch_add(1, SeqCst) + 1;
                let (name, log) = (format!("{name} c{n}"), log.clone());
                thread::spawn(move || while answer(&conn, &name, |line| note(&log, n, line)) {});
            }
        });
        Numbered {
            addr,
            connections,
            requests,
        }
    }

    /// The requests so far: `cN METHOD PATH`, in arrival order.
    fn requests(&self) -> Vec<String> {
        let log = self.requests.lock().unwrap();
        log.iter().map(|(n, line)| format!("c{n} {line}")).collect()
    }
}

fn note(log: &Mutex<Vec<(usize, String)>>, connection: usize, line: &str) {
    let line: Vec<&str> = line.split_whitespace().take(2).collect();
    log.lock().unwrap().push((connection, line.join(" ")));
}

/// Answers one request on `conn`, its request line told to `seen` first; false when the
/// connection is over.
fn answer(conn: &TcpStream, body: &str, seen: impl Fn(&str)) -> bool {
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
    if head.is_empty() {
        return false;
    }
    seen(head.lines().next().unwrap_or_default());
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let _ = std::io::Read::read_exact(&mut reader, &mut vec![0; length]);
    let first = head.lines().next().unwrap_or_default();
    let hold = head
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.strip_prefix("/h"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    thread::sleep(Duration::from_millis(hold));
    if first.contains("drop") {
        return false;
    }
    let body = if first.contains("early") {
        thread::sleep(Duration::from_millis(200));
        let _ = (&*conn).write_all(b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n");
        thread::sleep(Duration::from_millis(700));
        "EARLY"
    } else {
        body
    };
    let status = if first.contains("ntlm") {
        "401 Unauthorized\r\nwww-authenticate: NTLM"
    } else {
        "200 OK"
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    (&*conn).write_all(reply.as_bytes()).is_ok() && !first.contains("bye")
}

/// Sends `GET PATH` on a kept-alive client connection: the status and the body.
fn ask(conn: &mut BufReader<TcpStream>, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).unwrap();
    let (status, body) = read_response(conn);
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok());
    (code.unwrap_or(0), body)
}

/// Starts `binary` (one thread, a stats socket `NAME.sock`) with an HTTP frontend and
/// `backend be` holding `backend` lines.
fn start(binary: PathBuf, dir: &Path, name: &str, backend: &str) -> (Proxy, SocketAddr, PathBuf) {
    let front = SocketAddr::from((LO, free_port()));
    let sock = dir.join(format!("{name}.sock"));
    let cfg = format!(
        "global\n  nbthread 1\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\nbackend be\n{backend}",
        sock.display()
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    (proxy, front, sock)
}

fn server_lines(servers: &[Numbered], options: &str) -> String {
    let lines: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("  server s{} {}{options}\n", i + 1, s.addr))
        .collect();
    lines.concat()
}

/// Runs `plan` (`A1 B1 A2`...: the client connection, by letter, sending a request) through
/// `front`; the answers (`s1 c1`...).
fn run_plan(front: SocketAddr, plan: &str) -> Vec<String> {
    let mut clients: HashMap<char, BufReader<TcpStream>> = HashMap::new();
    plan.split_whitespace()
        .map(|step| {
            let who = step.chars().next().unwrap();
            let conn = clients
                .entry(who)
                .or_insert_with(|| kept_alive_client(front));
            let (code, body) = ask(conn, &format!("/{step}"));
            // Lets the proxy put the server connection back before the next request.
            thread::sleep(Duration::from_millis(30));
            format!("{code} {body}")
        })
        .collect()
}

/// Columns of each server's row in `show stat` that count requests, balancing decisions
/// and connections: `stot`, `lbtot`, `connect`, `reuse`, `srv_icur` (idle ones).
fn server_counts(sock: &Path, servers: usize) -> Vec<[String; 5]> {
    let csv = cli(sock, "show stat");
    (1..=servers)
        .map(|i| {
            let row = stat_row(&csv, "be", &format!("s{i}")).expect("the server's row");
            ["stot", "lbtot", "connect", "reuse", "srv_icur"].map(|c| row[c].clone())
        })
        .collect()
}

#[test]
fn each_request_of_a_kept_alive_client_is_balanced() {
    let test = "each_request_of_a_kept_alive_client_is_balanced";
    let dir = temp_dir(&short(test));
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let servers: Vec<Numbered> = ["s1", "s2", "s3"].map(Numbered::start).into();
        let backend = format!("  balance roundrobin\n{}", server_lines(&servers, ""));
        let (_proxy, front, sock) = start(binary, &dir, who, &backend);
        let answers = run_plan(front, "A1 A2 A3 A4 A5 A6");
        assert_eq!(
            answers,
            [
                "200 s1 c1",
                "200 s2 c1",
                "200 s3 c1",
                "200 s1 c1",
                "200 s2 c1",
                "200 s3 c1"
            ],
            "{who}"
        );
        let counts = server_counts(&sock, 3);
        // Two requests each, on one connection each (opened, then reused, then idle).
        assert_eq!(
            counts,
            vec![["2", "2", "1", "1", "1"].map(String::from); 3],
            "{who}"
        );
        seen.push((answers, counts));
    }
    agree(seen, test);
}

#[test]
fn idle_server_connections_are_reused_as_http_reuse_says() {
    let test = "idle_server_connections_are_reused_as_http_reuse_says";
    let dir = temp_dir(&short(test));
    let plan = "A1 B1 A2 B2 C1 A3 D1";
    // The server connection each request went on, as HAProxy 2.6 (one thread) chooses: a
    // first request opens one with `safe`; a connection that served two is "safe" for an
    // `aggressive` first request; of two idle ones the pool keeps one (the recent need).
    let expected = [
        ("safe", [1, 2, 1, 1, 3, 1, 4]),
        ("aggressive", [1, 2, 1, 1, 1, 1, 1]),
        ("always", [1, 1, 1, 1, 1, 1, 1]),
        ("never", [1, 2, 1, 2, 3, 1, 4]),
    ];
    for (mode, connections) in expected {
        let mut seen = Vec::new();
        for (who, binary) in binaries(test) {
            let server = Numbered::start("s1");
            let backend = format!("  http-reuse {mode}\n  server s1 {}\n", server.addr);
            let name = format!("{who}-{mode}");
            let (_proxy, front, sock) = start(binary, &dir, &name, &backend);
            let answers = run_plan(front, plan);
            let opened = server.connections.load(SeqCst);
            seen.push((who, answers, opened, server_counts(&sock, 1)));
        }
        let (_, first, opened, counts) = &seen[0];
        let want: Vec<String> = connections.iter().map(|c| format!("200 s1 c{c}")).collect();
        assert_eq!(first, &want, "hapx, http-reuse {mode}");
        assert_eq!(
            *opened,
            connections.into_iter().max().unwrap_or(0),
            "{mode}"
        );
        assert!(
            seen.iter()
                .all(|(_, a, o, c)| a == first && o == opened && c == counts),
            "http-reuse {mode}: {seen:?}"
        );
    }
}

#[test]
fn prefer_last_server_keeps_a_client_on_the_server_of_its_own_connection() {
    let test = "prefer_last_server_keeps_a_client_on_the_server_of_its_own_connection";
    let dir = temp_dir(&short(test));
    let plan = "A1 A2 A3 B1 B2 A4 B3";
    for reuse in ["never", "safe"] {
        let mut seen = Vec::new();
        for (who, binary) in binaries(test) {
            let servers: Vec<Numbered> = ["s1", "s2", "s3"].map(Numbered::start).into();
            let backend = format!(
                "  option prefer-last-server\n  http-reuse {reuse}\n{}",
                server_lines(&servers, "")
            );
            let name = format!("{who}-{reuse}");
            let (_proxy, front, sock) = start(binary, &dir, &name, &backend);
            let answers = run_plan(front, plan);
            let servers_of: Vec<&str> = answers.iter().map(|a| &a[4..6]).collect();
            if reuse == "never" {
                // Each client stays on its first server: one balancing decision each.
                assert_eq!(
                    servers_of,
                    ["s1", "s1", "s1", "s2", "s2", "s1", "s2"],
                    "{who}"
                );
            } else {
                // Its connections are the server's, not its own: balanced as without.
                assert_eq!(
                    servers_of,
                    ["s1", "s2", "s3", "s1", "s2", "s3", "s1"],
                    "{who}"
                );
            }
            seen.push((answers, server_counts(&sock, 3)));
        }
        agree(seen, reuse);
    }
}

/// A hashed client's request waits in the queue of its server (`maxconn 1`, busy); the
/// server goes into maintenance: with `option redispatch` the request is balanced again
/// and served by the other server at once, without it waits for `timeout queue` (503).
#[test]
fn a_request_queued_for_a_server_going_into_maintenance_is_redistributed_with_redispatch() {
    let test = "a_request_queued_for_a_server_going_into_maintenance_is_redistributed";
    let dir = temp_dir(&short(test));
    let runs = cases([true, false], binaries(test));
    let seen = at_once(&runs, |(redispatch, (who, binary))| {
        let (redispatch, who) = (*redispatch, *who);
        let servers: Vec<Numbered> = ["s1", "s2"].map(Numbered::start).into();
        let backend = format!(
            "  balance source\n  timeout queue 1500ms\n{}{}",
            if redispatch {
                "  option redispatch\n"
            } else {
                ""
            },
            server_lines(&servers, " maxconn 1")
        );
        let name = format!("{who}-{redispatch}");
        let (_proxy, front, sock) = start(binary.clone(), &dir, &name, &backend);
        // Which server this client hashes to.
        let (_, body) = ask(&mut kept_alive_client(front), "/probe");
        let mine = body[..2].to_string();
        let other = if mine == "s1" { "s2" } else { "s1" };
        let on_mine = |column: &str| {
            stat_row(&cli(&sock, "show stat"), "be", &mine).is_some_and(|r| r[column] == "1")
        };
        // Busy for longer than the queue's timeout; the next request queued behind it.
        let busy = thread::spawn(move || ask(&mut kept_alive_client(front), "/h3000"));
        let wait = Duration::from_secs(5);
        assert!(wait_until(wait, || on_mine("scur")), "{who}: not busy");
        let queued = thread::spawn(move || ask(&mut kept_alive_client(front), "/queued"));
        assert!(wait_until(wait, || on_mine("qcur")), "{who}: not queued");
        cli(&sock, &format!("disable server be/{mine}"));
        let (code, body) = queued.join().unwrap();
        let _ = busy.join();
        let redispatches =
            stat_row(&cli(&sock, "show stat"), "be", &mine).map(|r| r["wredis"].clone());
        if redispatch {
            assert_eq!((code, &body[..2]), (200, other), "{who}");
        } else {
            assert_eq!(code, 503, "{who}: {body}");
        }
        (
            code,
            body[..body.len().min(2)].to_string() == other,
            redispatches,
        )
    });
    for (case, seen) in seen.chunks(seen.len() / 2).enumerate() {
        agree(seen.to_vec(), &format!("redispatch {}", case == 0));
    }
}

/// Each of `values` with each of `binaries`, in that order: a test's cases.
fn cases<V: Copy>(
    values: [V; 2],
    binaries: Vec<(&'static str, PathBuf)>,
) -> Vec<(V, (&'static str, PathBuf))> {
    (values.into_iter())
        .flat_map(|v| binaries.iter().map(move |b| (v, b.clone())))
        .collect()
}

/// `run` on each of `cases` at the same time, the results in order: each case has its own
/// servers, proxy and stats socket, and none waits for the others' held responses.
fn at_once<C: Sync, T: Send>(cases: &[C], run: impl Fn(&C) -> T + Sync) -> Vec<T> {
    thread::scope(|scope| {
        let running: Vec<_> = (cases.iter())
            .map(|case| scope.spawn(|| run(case)))
            .collect();
        (running.into_iter())
            .map(|r| {
                r.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// A short directory name for `test`: stats socket paths must fit in 108 bytes.
fn short(test: &str) -> String {
    let initials: String = test.split('_').filter_map(|w| w.chars().next()).collect();
    format!("bal-{initials}")
}

/// `maxqueue`: a request that must wait for its hashed server, whose queue is full, gets a
/// 503 at once (counted in `econ`); round robin waits in the backend's queue, which it
/// does not limit.
#[test]
fn maxqueue_refuses_a_request_its_server_cannot_queue() {
    let test = "maxqueue_refuses_a_request_its_server_cannot_queue";
    let dir = temp_dir(&short(test));
    let runs = cases(["source", "roundrobin"], binaries(test));
    let seen = at_once(&runs, |(balance, (who, binary))| {
        let (balance, who) = (*balance, *who);
        let server = Numbered::start("s1");
        let backend = format!(
            "  balance {balance}\n  timeout queue 10s\n  server s1 {} maxconn 1 maxqueue 1\n",
            server.addr
        );
        let name = format!("{who}-{balance}");
        let (_proxy, front, sock) = start(binary.clone(), &dir, &name, &backend);
        // Each request in turn, the next sent once the proxy holds this one (served,
        // queued or answered already): s1 is busy 1.5 s with the first, a margin for a
        // loaded machine (round robin's third waits for two).
        let requests: Vec<_> = (0..3)
            .map(|sent| {
                let asking = thread::spawn(move || ask(&mut kept_alive_client(front), "/h1500").0);
                assert!(
                    wait_until(Duration::from_secs(5), || asking.is_finished()
                        || held(&sock) > sent),
                    "{who}: request {sent} was not taken"
                );
                asking
            })
            .collect();
        let codes: Vec<u16> = requests.into_iter().map(|t| t.join().unwrap()).collect();
        let row = stat_row(&cli(&sock, "show stat"), "be", "s1").expect("s1's row");
        let (econ, qlimit) = (row["econ"].clone(), row["qlimit"].clone());
        if balance == "source" {
            assert_eq!(codes, [200, 200, 503], "{who}");
            assert_eq!((econ.as_str(), qlimit.as_str()), ("1", "1"), "{who}");
        } else {
            assert_eq!(codes, [200, 200, 200], "{who}");
        }
        (codes, econ, qlimit)
    });
    for (seen, balance) in seen.chunks(seen.len() / 2).zip(["source", "roundrobin"]) {
        agree(seen.to_vec(), &format!("balance {balance}"));
    }
}

/// The requests backend `be` holds: served by s1, or waiting in its queue or the backend's.
fn held(sock: &Path) -> usize {
    let stat = cli(sock, "show stat");
    let count = |row: &str, column: &str| {
        stat_row(&stat, "be", row)
            .and_then(|r| r.get(column).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    count("s1", "scur") + count("s1", "qcur") + count("BACKEND", "qcur")
}

/// A 401 asking for NTLM (or Negotiate) authenticates the server connection, not the request:
/// as HAProxy, the client connection keeps that connection and its later requests go to
/// that server; other clients are balanced as usual.
#[test]
fn a_connection_authenticated_by_ntlm_keeps_its_client_on_its_server() {
    let test = "a_connection_authenticated_by_ntlm_keeps_its_client_on_its_server";
    let dir = temp_dir(&short(test));
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let servers: Vec<Numbered> = ["s1", "s2", "s3"].map(Numbered::start).into();
        let (_proxy, front, sock) = start(binary, &dir, who, &server_lines(&servers, ""));
        let answers = run_plan(front, "Antlm A2 A3 B1 A4 B2");
        assert_eq!(
            answers,
            [
                "401 s1 c1",
                "200 s1 c1",
                "200 s1 c1",
                "200 s2 c1",
                "200 s1 c1",
                "200 s3 c1"
            ],
            "{who}"
        );
        seen.push((answers, server_counts(&sock, 3)));
    }
    agree(seen, test);
}

/// A server closes an idle connection (here at once after a response that did not announce
/// it): the next request, with a body or not, is not lost on it; it goes on a new connection,
/// as with HAProxy, whose idle connections notice the close. The same for a connection the
/// client connection owns (`http-reuse never`). Each request reaches the server once, on
/// the connection the counters say (opened or reused).
#[test]
fn an_idle_connection_the_server_closed_is_not_reused() {
    let test = "an_idle_connection_the_server_closed_is_not_reused";
    let dir = temp_dir(&short(test));
    for reuse in ["safe", "never"] {
        let mut seen = Vec::new();
        for (who, binary) in binaries(test) {
            let server = Numbered::start("s1");
            let backend = format!("  http-reuse {reuse}\n  server s1 {}\n", server.addr);
            let (_proxy, front, sock) = start(binary, &dir, &format!("{who}-{reuse}"), &backend);
            let mut client = kept_alive_client(front);
            let mut answers = vec![ask(&mut client, "/bye").1];
            thread::sleep(Duration::from_millis(100));
            let post = "POST /post HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello";
            client.get_mut().write_all(post.as_bytes()).unwrap();
            answers.push(read_response(&mut client).1);
            answers.push(ask(&mut client, "/bye").1);
            // Sooner than before: the close may be fresh news.
            thread::sleep(Duration::from_millis(20));
            answers.push(ask(&mut client, "/get").1);
            assert_eq!(
                answers,
                ["s1 c1", "s1 c2", "s1 c2", "s1 c3"],
                "{who} {reuse}"
            );
            let requests = server.requests();
            assert_eq!(
                requests,
                ["c1 GET /bye", "c2 POST /post", "c2 GET /bye", "c3 GET /get"],
                "{who} {reuse}"
            );
            let counts = server_counts(&sock, 1);
            // Three opened, one reused (the second /bye).
            assert_eq!([&counts[0][2], &counts[0][3]], ["3", "1"], "{who} {reuse}");
            seen.push((answers, requests, counts));
        }
        agree(seen, &format!("{test} {reuse}"));
    }
}

/// A client resets its connection while its request waits after an interim response (a
/// 103 the server sends 200 ms in, its final response 700 ms later): that server connection,
/// its response still to come, must not serve another client's request (`http-reuse
/// always` would let any take it).
#[test]
fn a_connection_whose_response_is_still_coming_is_not_reused() {
    let test = "a_connection_whose_response_is_still_coming_is_not_reused";
    let dir = temp_dir(&short(test));
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let server = Numbered::start("s1");
        let backend = format!("  http-reuse always\n  server s1 {}\n", server.addr);
        let (_proxy, front, _) = start(binary, &dir, who, &backend);
        let first = TcpStream::connect(front).unwrap();
        (&first)
            .write_all(b"GET /early HTTP/1.1\r\nhost: t\r\n\r\n")
            .unwrap();
        thread::sleep(Duration::from_millis(50));
        reset(first);
        // The 103 came meanwhile and met the reset client connection.
        thread::sleep(Duration::from_millis(350));
        let (code, body) = ask(&mut kept_alive_client(front), "/one");
        assert_eq!((code, body.as_str()), (200, "s1 c2"), "{who}");
        seen.push((code, body));
    }
    agree(seen, test);
}

/// Closes `conn` with a reset (SO_LINGER 0).
fn reset(conn: TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt::Linger};
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(&conn, Linger, &linger).expect("SO_LINGER");
}

/// The server closes its connection without answering a request it received (a bodiless
/// POST, then DELETE): the server may have acted on it, so it is never sent again. A
/// request that is not its client connection's first: the client connection closes without
/// a response, for the client to decide (HAProxy's `abort_keep_alive`); a first one: 502.
#[test]
fn a_request_the_server_dropped_is_not_sent_again() {
    let test = "a_request_the_server_dropped_is_not_sent_again";
    let dir = temp_dir(&short(test));
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let server = Numbered::start("s1");
        let (_proxy, front, _) =
            start(binary, &dir, who, &format!("  server s1 {}\n", server.addr));
        let mut client = kept_alive_client(front);
        let mut answers = vec![ask(&mut client, "/a").1];
        thread::sleep(Duration::from_millis(30));
        let post = b"POST /drop HTTP/1.1\r\nhost: t\r\n\r\n";
        client.get_mut().write_all(post).unwrap();
        let (status, _) = read_response(&mut client);
        answers.push(format!("[{status}]"));
        let mut other = kept_alive_client(front);
        let delete = b"DELETE /drop HTTP/1.1\r\nhost: t\r\n\r\n";
        other.get_mut().write_all(delete).unwrap();
        answers.push(read_response(&mut other).0);
        thread::sleep(Duration::from_millis(100));
        answers.extend(server.requests());
        assert_eq!(
            answers,
            [
                "s1 c1",
                "[]",
                "HTTP/1.1 502 Bad Gateway",
                "c1 GET /a",
                "c1 POST /drop",
                "c2 DELETE /drop"
            ],
            "{who}"
        );
        seen.push(answers);
    }
    agree(seen, test);
}

/// A server's kept connections (idle in its pool with `http-reuse safe`, the client
/// connection's own with `never`) are not used after its address changed, nor after it
/// went into maintenance: the next request connects anew, to the new address.
#[test]
fn kept_connections_go_with_an_address_change_or_maintenance() {
    let test = "kept_connections_go_with_an_address_change_or_maintenance";
    let dir = temp_dir(&short(test));
    for reuse in ["safe", "never"] {
        let mut seen = Vec::new();
        for (who, binary) in binaries(test) {
            let (old, new) = (Numbered::start("old"), Numbered::start("new"));
            let backend = format!("  http-reuse {reuse}\n  server s1 {}\n", old.addr);
            let (_proxy, front, sock) = start(binary, &dir, &format!("{who}-{reuse}"), &backend);
            let mut client = kept_alive_client(front);
            let mut answers = vec![ask(&mut client, "/1").1];
            thread::sleep(Duration::from_millis(30));
            let port = new.addr.port();
            cli(&sock, &format!("set server be/s1 addr {LO} port {port}"));
            answers.push(ask(&mut client, "/2").1);
            thread::sleep(Duration::from_millis(30));
            cli(&sock, "disable server be/s1");
            cli(&sock, "enable server be/s1");
            answers.push(ask(&mut client, "/3").1);
            if who == "hapx" || reuse == "safe" {
                assert_eq!(answers, ["old c1", "new c1", "new c2"], "{who} {reuse}");
            }
            seen.push(answers);
        }
        // HAProxy 2.6 closes the idle connections of its pools then, but not those a client
        // connection owns: with `never` its client keeps talking to the old address even
        // after maintenance. hapx retires those too (a deliberate difference).
        if reuse == "safe" {
            agree(seen, &format!("{test} {reuse}"));
        }
    }
}

/// `retries 2` against a closed port: one request makes three connection attempts, each
/// counted in `connect` (the server's and the backend's) and in the server's `stot`, as
/// HAProxy counts them.
#[test]
fn each_connection_attempt_counts_in_connect() {
    let test = "each_connection_attempt_counts_in_connect";
    let dir = temp_dir(&short(test));
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        // Nothing listens there.
        let closed = SocketAddr::from((LO, free_port()));
        let backend = format!("  retries 2\n  server s1 {closed}\n");
        let (_proxy, front, sock) = start(binary, &dir, who, &backend);
        let (code, _) = ask(&mut kept_alive_client(front), "/x");
        let csv = cli(&sock, "show stat");
        let column =
            |row: &str, name: &str| stat_row(&csv, "be", row).expect("a row")[name].clone();
        let counts = [
            column("s1", "connect"),
            column("BACKEND", "connect"),
            column("s1", "stot"),
            column("BACKEND", "stot"),
        ];
        assert_eq!(code, 503, "{who}");
        // `stot`: the server counts each attempt too, the backend the request.
        assert_eq!(counts, ["3", "3", "3", "1"], "{who}");
        seen.push((code, counts));
    }
    agree(seen, test);
}

/// `http-reuse always`: a client connection's first request takes a "safe" idle connection
/// (one that served two requests) before one that served one, as HAProxy 2.6 does.
#[test]
fn reuse_always_gives_a_first_request_a_safe_connection_first() {
    let test = "reuse_always_gives_a_first_request_a_safe_connection_first";
    let dir = temp_dir(&short(test));
    let mut seen = Vec::new();
    for (who, binary) in binaries(test) {
        let server = Numbered::start("s1");
        let backend = format!("  http-reuse always\n  server s1 {}\n", server.addr);
        let (_proxy, front, _) = start(binary, &dir, who, &backend);
        // Two connections at once, both idle after.
        let together: Vec<_> = (0..2)
            .map(|_| {
                thread::spawn(move || {
                    let mut client = kept_alive_client(front);
                    let answer = ask(&mut client, "/h300").1;
                    (client, answer)
                })
            })
            .collect();
        let mut done: Vec<_> = together.into_iter().map(|t| t.join().unwrap()).collect();
        thread::sleep(Duration::from_millis(50));
        // A later request takes an idle one, which becomes safe.
        let safe = ask(&mut done[0].0, "/again").1;
        thread::sleep(Duration::from_millis(50));
        let first = ask(&mut kept_alive_client(front), "/first").1;
        assert_eq!(first, safe, "{who}");
        assert_eq!(server.connections.load(SeqCst), 2, "{who}");
        seen.push(first == safe);
    }
    agree(seen, test);
}

/// Asserts that hapx and HAProxy saw the same (`seen` holds each one's observations).
fn agree<T: PartialEq + std::fmt::Debug>(mut seen: Vec<T>, case: &str) {
    seen.dedup();
    assert_eq!(seen.len(), 1, "{case}: hapx and HAProxy differ: {seen:?}");
}
