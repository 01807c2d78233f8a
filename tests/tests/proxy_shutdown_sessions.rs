//! An operator killing a server's sessions, side by side with HAProxy 2.6 (same
//! configuration, same traffic, same observations): the runtime API's `shutdown sessions
//! server B/S` (level admin; HAProxy's answers to a bad server and to lower levels) and the
//! stats page's `shutdown` action close every session of that server and no other, logged
//! with HAProxy's termination code `K` (`K-` in TCP mode; `KH--` and a 502 for a request
//! still waiting for its response, `KD--` for a response under way, in HTTP mode, where a
//! kept-alive connection between requests is no session and stays open). The server stays
//! in service. The stats page's legacy actions (`disable`, `stop`) log HAProxy's cause.
//! What is the server's: a TCP session still connecting (`KC`), in its TLS handshake with a
//! `server ... ssl` (`KC`) or forwarding through TLS (`K-`); not a session waiting in the
//! queue, nor an HTTP stream redispatched to another server, nor another server's request.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use hapx_tests::proxy::{
    NamedServer, Unanswering, cli, free_port, http_raw, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_lifecycle::{
    Lab, SLOW, SlowServer, agree, fate, messages, received, request, request_logs, send, session,
    status,
};
use hapx_tests::proxy_rules::{Syslog, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A TCP lab whose servers answer each session with their names and hold it.
fn tcp_lab(test: &str, names: [&str; 2]) -> Lab<[NamedServer; 2]> {
    let servers = names.map(|n| NamedServer::start(n, LO, Duration::from_secs(30)));
    Lab::new(test, "tcp", servers)
}

/// The backend's two servers (roundrobin) and `more` lines, then a `listen stats` on
/// `stats_port` whose page takes admin actions.
fn backend(servers: &[NamedServer; 2], more: &str, stats_port: u16) -> String {
    format!(
        "  server a {}\n  server b {}\n{more}\
         listen stats\n  mode http\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /\n  stats admin if TRUE\n",
        servers[0].addr, servers[1].addr
    )
}

/// `count` sessions, sorted by the server that answered them.
fn sessions(front: SocketAddr, count: usize) -> Vec<(String, TcpStream)> {
    let mut conns: Vec<(String, TcpStream)> = (0..count).map(|_| session(front)).collect();
    conns.sort_by(|x, y| x.0.cmp(&y.0));
    conns
}

/// Each session's server and whether the proxy closed it within `wait` or left it open,
/// the sessions watched at the same time (one `wait` for them all).
fn fates(conns: &mut [(String, TcpStream)], wait: Duration) -> Vec<String> {
    std::thread::scope(|scope| {
        let watched: Vec<_> = (conns.iter_mut())
            .map(|(name, conn)| scope.spawn(move || format!("{name} {}", fate(conn, wait))))
            .collect();
        (watched.into_iter())
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The log lines of the sessions `conns`, each as `be/SERVER FLAGS` (words 3 and 6 of a
/// `tcplog` line), sorted. A line is a session's by its client address (word 0): the lines
/// of other sessions are skipped (the previous proxy's, which may still be logging the
/// sessions that ended as it stopped, when this one runs).
fn session_logs(syslog: &Syslog, conns: &[(String, TcpStream)]) -> Vec<String> {
    let mut clients: Vec<String> = conns
        .iter()
        .map(|(_, conn)| conn.local_addr().expect("a session's address").to_string())
        .collect();
    let mut found = Vec::new();
    while !clients.is_empty() {
        let Some(line) = syslog.lines(1).pop() else {
            break;
        };
        let words: Vec<&str> = line.split(' ').collect();
        let Some(client) = clients.iter().position(|c| words[0] == c) else {
            continue;
        };
        clients.swap_remove(client);
        let word = |i: usize| words.get(i).copied().unwrap_or_default();
        found.push(format!("{} {} {}", word(2), word(3), word(6)));
    }
    found.sort();
    found
}

/// Whether `be/server` counts no session: a stream's counts end just after its log line
/// (HAProxy frees it after logging it).
fn no_session(sock: &Path, server: &str) -> bool {
    stat_row(&cli(sock, "show stat"), "be", server)
        .is_some_and(|row| row.get("scur").is_some_and(|n| n == "0"))
}

/// [`counters`] once the `killed` servers count no session (not asserted here: the
/// counters are).
fn settled_counters(
    sock: &Path,
    killed: &[&str],
    servers: &[&str],
    columns: &[&str],
) -> Vec<String> {
    wait_until(Duration::from_secs(10), || {
        killed.iter().all(|server| no_session(sock, server))
    });
    counters(sock, servers, columns)
}

/// `show stat`'s `columns` of `be/server` for each of `servers`.
fn counters(sock: &Path, servers: &[&str], columns: &[&str]) -> Vec<String> {
    let stat = cli(sock, "show stat");
    servers
        .iter()
        .map(|server| {
            let row = stat_row(&stat, "be", server).unwrap_or_default();
            let values: Vec<String> = columns
                .iter()
                .map(|c| format!("{c}={}", row.get(*c).map_or("?", String::as_str)))
                .collect();
            format!("{server} {}", values.join(" "))
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// The answers: the runtime API's, or the stats page's `;st=` outcomes.
    answers: Vec<String>,
    /// Per session, once the kill was done: its server and its fate.
    sessions: Vec<String>,
    /// The killed sessions' logs.
    logs: Vec<String>,
    /// `show stat` counters of both servers after the kill.
    stats: Vec<String>,
    /// The server that took the next session.
    next: String,
}

/// What follows a TCP test's kills: its `answers` and the `sessions`' fates, the `killed`
/// sessions' logs, both servers' counters once the killed sessions are no longer counted,
/// and the server of a new session (a killer of sessions leaves its server in service:
/// roundrobin's next turn is still a's).
fn after_tcp_kills(
    lab: &Lab<[NamedServer; 2]>,
    front: SocketAddr,
    answers: Vec<String>,
    sessions: Vec<String>,
    killed: &[(String, TcpStream)],
) -> Observed {
    let logs = session_logs(&lab.syslog, killed);
    let killed: Vec<&str> = killed.iter().map(|(server, _)| server.as_str()).collect();
    let columns = ["scur", "stot", "cli_abrt", "srv_abrt", "status"];
    let stats = settled_counters(&lab.sock, &killed, &["a", "b"], &columns);
    let (next, _) = session(front);
    Observed {
        answers,
        sessions,
        logs,
        stats,
        next,
    }
}

#[test]
fn shutdown_sessions_server_kills_that_servers_tcp_sessions_only() {
    let lab = tcp_lab("shutdown-tcp", ["a", "b"]);
    let sock = &lab.sock;
    let be = backend(&lab.servers, "", free_port());
    let (ours, theirs) = lab.run("shutdown-tcp", &be, |front| {
        let mut conns = sessions(front, 4);
        let answers = vec![cli(sock, "shutdown sessions server be/a")];
        let sessions = fates(&mut conns, Duration::from_millis(1500));
        after_tcp_kills(&lab, front, answers, sessions, &conns[..2])
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec![
            "a closed".into(),
            "a closed".into(),
            "b open".into(),
            "b open".into(),
        ],
        logs: vec!["fe be/a K-".into(), "fe be/a K-".into()],
        stats: vec![
            "a scur=0 stot=2 cli_abrt=0 srv_abrt=0 status=no check".into(),
            "b scur=2 stot=2 cli_abrt=0 srv_abrt=0 status=no check".into(),
        ],
        next: "a".into(),
    };
    agree(ours, theirs, expected);
}

/// POSTs the stats page's admin form; the outcome in its redirection (`DONE`, `PART`...).
fn post(stats: SocketAddr, form: &str) -> String {
    let request = format!(
        "POST / HTTP/1.1\r\nhost: lab\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{form}",
        form.len()
    );
    let answer = http_raw(stats, request.as_bytes(), Duration::from_secs(3));
    answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location: "))
        .and_then(|l| l.split_once(";st=").map(|(_, st)| st.to_string()))
        .unwrap_or_else(|| format!("no redirection: {answer:?}"))
}

#[test]
fn the_stats_page_shutdown_action_kills_the_servers_sessions() {
    let lab = tcp_lab("shutdown-page", ["a", "b"]);
    let stats = SocketAddr::from((LO, free_port()));
    let be = backend(&lab.servers, "", stats.port());
    let (ours, theirs) = lab.run("shutdown-page", &be, |front| {
        let mut conns = sessions(front, 4);
        let mut answers = vec![post(stats, "s=a&action=shutdown&b=be")];
        let mut sessions = fates(&mut conns, Duration::from_millis(1500));
        // A server without sessions counts as done; an unknown one does not.
        answers.push(post(stats, "s=a&action=shutdown&b=be"));
        answers.push(post(stats, "s=zz&s=b&action=shutdown&b=be"));
        sessions.extend(fates(&mut conns[2..], Duration::from_millis(1500)));
        after_tcp_kills(&lab, front, answers, sessions, &conns)
    });
    let expected = Observed {
        answers: vec!["DONE".into(), "DONE".into(), "PART".into()],
        sessions: vec![
            "a closed".into(),
            "a closed".into(),
            "b open".into(),
            "b open".into(),
            "b closed".into(),
            "b closed".into(),
        ],
        logs: vec![
            "fe be/a K-".into(),
            "fe be/a K-".into(),
            "fe be/b K-".into(),
            "fe be/b K-".into(),
        ],
        stats: vec![
            "a scur=0 stot=2 cli_abrt=0 srv_abrt=0 status=no check".into(),
            "b scur=0 stot=2 cli_abrt=0 srv_abrt=0 status=no check".into(),
        ],
        next: "a".into(),
    };
    agree(ours, theirs, expected);
}

#[test]
fn the_stats_pages_legacy_actions_log_their_cause() {
    let lab = tcp_lab("shutdown-legacy", ["a", "b"]);
    let stats = SocketAddr::from((LO, free_port()));
    // And c, whose checks fail (nothing listens on its check port): DOWN.
    let c = format!(
        "  server c 127.0.0.1:{} check inter 100ms fall 1 rise 1\n",
        free_port()
    );
    let be = backend(&lab.servers, &c, stats.port());
    let (ours, theirs) = lab.run("shutdown-legacy", &be, |_| {
        assert!(wait_until(Duration::from_secs(5), || status(
            &lab.sock, "c"
        ) == "DOWN"));
        let actions = [
            ("b", "disable"),
            ("b", "enable"),
            ("b", "stop"),
            ("b", "start"),
            ("c", "stop"),
            ("c", "disable"),
        ];
        let answers: Vec<String> = actions
            .iter()
            .map(|(server, action)| post(stats, &format!("s={server}&action={action}&b=be")))
            .collect();
        let prefixes = ["Server be/b ", "Server be/c enters", "Server be/c was"];
        (answers, messages(&lab.syslog, &prefixes, actions.len()))
    });
    let expected = (
        vec!["DONE".to_string(); 6],
        vec![
            "Server be/b is going DOWN for maintenance ('disable' on stats page). 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".to_string(),
            "Server be/b is UP/READY (leaving forced maintenance).".into(),
            "Server be/b enters drain state ('stop' on stats page). 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.".into(),
            "Server be/b is UP (leaving forced drain).".into(),
            // A server DOWN tells the servers left, as it would going DOWN.
            "Server be/c enters drain state ('stop' on stats page). 2 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into(),
            "Server be/c was DOWN and now enters maintenance ('disable' on stats page).".into(),
        ],
    );
    agree(ours, theirs, expected);
}

#[test]
fn shutdown_sessions_answers_as_haproxy_at_each_level() {
    let dir = temp_dir("shutdown-levels");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let port = free_port();
    let levels = ["admin", "operator", "user"];
    let mut config = String::from("global\n");
    for level in levels {
        let path = dir.join(format!("{level}.sock"));
        config.push_str(&format!(
            "  stats socket {} level {level}\n",
            path.display()
        ));
    }
    config.push_str(&format!(
        "defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server a {}\n",
        server.addr
    ));
    let commands = [
        "shutdown sessions server",
        "shutdown sessions server be",
        "shutdown sessions server nope/a",
        "shutdown sessions server be/zz",
        "shutdown sessions server be/a extra words",
        "shutdown sessions server be/a",
    ];
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = side_by_side("shutdown-levels", &config, front, |front| {
        let mut answers = Vec::new();
        for level in levels.iter().rev() {
            let (_, mut conn) = session(front);
            for command in commands {
                let answer = cli(&dir.join(format!("{level}.sock")), command);
                answers.push(format!("{level}: {command}: {answer:?}"));
            }
            answers.push(format!("{level}: session {}", fate(&mut conn, SLOW / 3)));
        }
        answers
    });
    let mut expected = Vec::new();
    for level in levels.iter().rev() {
        for command in commands {
            let answer = match (*level, command) {
                ("admin", "shutdown sessions server" | "shutdown sessions server be") => {
                    "Require 'backend/server'.\n\n"
                }
                ("admin", "shutdown sessions server nope/a") => "No such backend.\n\n",
                ("admin", "shutdown sessions server be/zz") => "No such server.\n\n",
                ("admin", _) => "\n",
                _ => "Permission denied\n\n",
            };
            expected.push(format!("{level}: {command}: {answer:?}"));
        }
        let fate = if *level == "admin" { "closed" } else { "open" };
        expected.push(format!("{level}: session {fate}"));
    }
    agree(ours, theirs, expected);
}

/// What a client connection received: its status line, the length of what came after its
/// head, and its fate ([`received`]): the first bytes (or its close) awaited for up to
/// `first`, what follows until it is quiet for `quiet`.
fn summary(conn: &mut TcpStream, first: Duration, quiet: Duration) -> String {
    let mut byte = [0u8; 1];
    conn.set_read_timeout(Some(first)).unwrap();
    let (text, fate) = match conn.peek(&mut byte) {
        Ok(1..) => received(conn, quiet),
        Ok(0) => (String::new(), "closed"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            (String::new(), "open")
        }
        Err(_) => (String::new(), "reset"),
    };
    let status = text.lines().next().unwrap_or_default();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    format!("{status} | {} | {fate}", body.len())
}

#[test]
fn shutdown_sessions_kills_the_requests_in_progress_in_http_mode() {
    let lab = Lab::new("shutdown-http", "http", ["a", "b"].map(SlowServer::start));
    let [a, b] = &lab.servers;
    let be = format!(
        "  balance first\n  server a {} maxconn 10\n  server b {}\n",
        a.addr, b.addr
    );
    let (ours, theirs) = lab.run("shutdown-http", &be, |front| {
        // A kept-alive connection between requests, a request waiting for its response
        // (on the server: a kill before would find it connecting), and a response under
        // way, all on a, held there until the kill.
        let (answer, quiet) = (Duration::from_secs(10), Duration::from_millis(500));
        let mut idle = request(front, "/");
        let first = summary(&mut idle, answer, quiet);
        let on_a = a.requests.load(SeqCst);
        let mut head = request(front, "/held");
        // Not asserted here: the 502 below is.
        wait_until(answer, || a.requests.load(SeqCst) > on_a);
        let mut body = request(front, "/held-body");
        let body_begun = summary(&mut body, answer, quiet);
        let answers = vec![cli(&lab.sock, "shutdown sessions server be/a")];
        let mut sessions = vec![first, body_begun];
        for conn in [&mut head, &mut body] {
            sessions.push(summary(conn, answer, quiet));
        }
        // Left open: nothing comes.
        sessions.push(summary(&mut idle, Duration::from_millis(1500), quiet));
        // The idle connection's next request is served, by a again.
        send(&mut idle, "/");
        sessions.push(summary(&mut idle, answer, quiet));
        let logs = request_logs(&lab.syslog, 4);
        a.release();
        let columns = ["scur", "srv_abrt", "cli_abrt", "eresp", "status"];
        let stats = settled_counters(&lab.sock, &["a"], &["a", "BACKEND"], &columns);
        Observed {
            answers,
            sessions,
            logs,
            stats,
            next: String::new(),
        }
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec![
            "HTTP/1.1 200 OK | 2 | open".into(),
            "HTTP/1.1 200 OK | 10 | open".into(),
            "HTTP/1.1 502 Bad Gateway | 107 | open".into(),
            " | 0 | closed".into(),
            " | 0 | open".into(),
            "HTTP/1.1 200 OK | 2 | open".into(),
        ],
        logs: vec![
            "be/a GET / HTTP/1.1 200 51 ---- Tr=set".into(),
            "be/a GET / HTTP/1.1 200 51 ---- Tr=set".into(),
            "be/a GET /held HTTP/1.1 502 209 KH-- Tr=-1".into(),
            "be/a GET /held-body HTTP/1.1 200 61 KD-- Tr=set".into(),
        ],
        stats: vec![
            "a scur=0 srv_abrt=1 cli_abrt=0 eresp=1 status=no check".into(),
            "BACKEND scur=0 srv_abrt=1 cli_abrt=0 eresp=1 status=UP".into(),
        ],
        next: String::new(),
    };
    agree(ours, theirs, expected);
}

/// A TCP session of `lab` to its server `a` at `addr` (`server`: its line's options after
/// the address) killed once its connection reached the server (`reaching`: how many did),
/// while it connects: its client closed, logged `KC`, no connection error counted.
fn killed_while_connecting<S>(
    lab: &Lab<S>,
    addr: SocketAddr,
    server: &str,
    reaching: impl Fn() -> usize,
) {
    let be = format!("  timeout connect 10s\n  server a {addr}{server}\n");
    let (ours, theirs) = lab.run(&lab.name, &be, |front| {
        let before = reaching();
        let conn = TcpStream::connect(front).expect("connecting to the frontend");
        // Not asserted here: the session's fate below is. Then a moment for what follows
        // (a `server ... ssl`'s ClientHello).
        wait_until(Duration::from_secs(5), || reaching() > before);
        std::thread::sleep(Duration::from_millis(200));
        let answers = vec![cli(&lab.sock, "shutdown sessions server be/a")];
        let mut conns = vec![("a".to_string(), conn)];
        let sessions = fates(&mut conns, Duration::from_secs(3));
        let logs = session_logs(&lab.syslog, &conns);
        let columns = ["scur", "stot", "econ", "wretr", "cli_abrt", "srv_abrt"];
        let stats = settled_counters(&lab.sock, &["a"], &["a", "BACKEND"], &columns);
        Observed {
            answers,
            sessions,
            logs,
            stats,
            next: String::new(),
        }
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec!["a closed".into()],
        logs: vec!["fe be/a KC".into()],
        stats: vec![
            "a scur=0 stot=1 econ=0 wretr=0 cli_abrt=0 srv_abrt=0".into(),
            "BACKEND scur=0 stot=1 econ=0 wretr=0 cli_abrt=0 srv_abrt=0".into(),
        ],
        next: String::new(),
    };
    agree(ours, theirs, expected);
}

#[test]
fn shutdown_sessions_server_kills_a_tcp_session_still_connecting() {
    let lab = Lab::new("shutdown-connecting", "tcp", Unanswering::start());
    killed_while_connecting(&lab, lab.servers.addr, "", || lab.servers.connecting());
}

/// A server that accepts every connection and keeps it, answering nothing: a `server ...
/// ssl` waits for its TLS handshake there.
struct Silent {
    addr: SocketAddr,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Silent {
    fn start() -> Silent {
        let listener = std::net::TcpListener::bind((LO, 0)).expect("binding a server");
        let addr = listener.local_addr().expect("its address");
        let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            }
        });
        Silent { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

/// A TCP session in its TLS handshake with a `server ... ssl` is its server's (HAProxy
/// counts the handshake in the connection): killed, its client closed, logged `KC`, no
/// connection error counted.
#[test]
fn shutdown_sessions_server_kills_a_tcp_session_in_its_tls_handshake() {
    let lab = Lab::new("shutdown-handshake", "tcp", Silent::start());
    let accepted = || lab.servers.accepted();
    killed_while_connecting(&lab, lab.servers.addr, " ssl verify none", accepted);
}

/// A TCP session forwarding through TLS to a `server ... ssl` is killed as a plaintext one
/// (`K-`); the other server's stays.
#[test]
fn shutdown_sessions_server_kills_a_tls_session_to_a_server_ssl() {
    use hapx_tests::proxy_tls::{Behaviour, Pki, TlsServer};
    let dir = temp_dir("shutdown-tls-pki");
    let pki = Pki::new(&dir);
    let servers = [(); 2].map(|()| TlsServer::start(&pki, Behaviour::Echo));
    let lab = Lab::new("shutdown-tls", "tcp", servers);
    let [a, b] = &lab.servers;
    let be = format!(
        "  server a {} ssl verify none\n  server b {} ssl verify none\n",
        a.addr, b.addr
    );
    let (ours, theirs) = lab.run("shutdown-tls", &be, |front| {
        // Roundrobin: a, then b; each echoes a byte once its handshake is done.
        let mut conns: Vec<(String, TcpStream)> = ["a", "b"]
            .iter()
            .map(|name| {
                let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                std::io::Write::write_all(&mut conn, b"x").expect("sending");
                let mut echo = [0u8; 1];
                let echoed = std::io::Read::read_exact(&mut conn, &mut echo).is_ok();
                (format!("{name} echoed={echoed}"), conn)
            })
            .collect();
        let answers = vec![cli(&lab.sock, "shutdown sessions server be/a")];
        let sessions = fates(&mut conns, Duration::from_secs(2));
        let logs = session_logs(&lab.syslog, &conns[..1]);
        let columns = ["scur", "stot", "cli_abrt", "srv_abrt"];
        let stats = settled_counters(&lab.sock, &["a"], &["a", "b"], &columns);
        Observed {
            answers,
            sessions,
            logs,
            stats,
            next: String::new(),
        }
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec!["a echoed=true closed".into(), "b echoed=true open".into()],
        logs: vec!["fe be/a K-".into()],
        stats: vec![
            "a scur=0 stot=1 cli_abrt=0 srv_abrt=0".into(),
            "b scur=1 stot=1 cli_abrt=0 srv_abrt=0".into(),
        ],
        next: String::new(),
    };
    agree(ours, theirs, expected);
}

/// A session waiting in its server's queue is not the server's yet (HAProxy's: no
/// connection slot): a kill closes the session served only, and the queued one takes the
/// slot it freed.
#[test]
fn shutdown_sessions_server_spares_a_queued_session() {
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let lab = Lab::new("shutdown-queued", "tcp", server);
    let be = format!(
        "  timeout queue 10s\n  server a {} maxconn 1\n",
        lab.servers.addr
    );
    let (ours, theirs) = lab.run("shutdown-queued", &be, |front| {
        let served = session(front);
        let queued = TcpStream::connect(front).expect("connecting to the frontend");
        // In the backend's queue (no server is its own yet).
        let waiting = || {
            stat_row(&cli(&lab.sock, "show stat"), "be", "BACKEND")
                .is_some_and(|row| row.get("qcur").is_some_and(|n| n == "1"))
        };
        assert!(
            wait_until(Duration::from_secs(10), waiting),
            "the second session is not queued"
        );
        let answers = vec![cli(&lab.sock, "shutdown sessions server be/a")];
        let mut conns = vec![served, ("queued".to_string(), queued)];
        let sessions = fates(&mut conns, Duration::from_secs(2));
        let logs = session_logs(&lab.syslog, &conns[..1]);
        let columns = ["scur", "qcur", "stot"];
        let stats = counters(&lab.sock, &["a"], &columns);
        Observed {
            answers,
            sessions,
            logs,
            stats,
            next: String::new(),
        }
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec!["a closed".into(), "queued data".into()],
        logs: vec!["fe be/a K-".into()],
        stats: vec!["a scur=1 qcur=0 stot=2".into()],
        next: String::new(),
    };
    agree(ours, theirs, expected);
}

/// In HTTP mode, a kill of one server cuts its requests only: the other server's request in
/// progress gets its response.
#[test]
fn shutdown_sessions_spares_the_other_servers_requests_in_http_mode() {
    let lab = Lab::new(
        "shutdown-http-other",
        "http",
        ["a", "b"].map(SlowServer::start),
    );
    let [a, b] = &lab.servers;
    let be = format!("  server a {}\n  server b {}\n", a.addr, b.addr);
    let (ours, theirs) = lab.run("shutdown-http-other", &be, |front| {
        let answer = Duration::from_secs(10);
        let (on_a, on_b) = (a.requests.load(SeqCst), b.requests.load(SeqCst));
        // Roundrobin: a, then b, each held until the kill. Not asserted here: the answers
        // below are.
        let mut to_a = request(front, "/held");
        wait_until(answer, || a.requests.load(SeqCst) > on_a);
        let mut to_b = request(front, "/held");
        wait_until(answer, || b.requests.load(SeqCst) > on_b);
        let answers = vec![cli(&lab.sock, "shutdown sessions server be/a")];
        let quiet = Duration::from_millis(500);
        let killed = summary(&mut to_a, answer, quiet);
        b.release();
        let sessions = vec![killed, summary(&mut to_b, answer, quiet)];
        a.release();
        let logs = request_logs(&lab.syslog, 2);
        let columns = ["scur", "srv_abrt", "eresp"];
        let stats = settled_counters(&lab.sock, &["a", "b"], &["a", "b"], &columns);
        Observed {
            answers,
            sessions,
            logs,
            stats,
            next: String::new(),
        }
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec![
            "HTTP/1.1 502 Bad Gateway | 107 | open".into(),
            "HTTP/1.1 200 OK | 2 | open".into(),
        ],
        logs: vec![
            "be/a GET /held HTTP/1.1 502 209 KH-- Tr=-1".into(),
            "be/b GET /held HTTP/1.1 200 51 ---- Tr=set".into(),
        ],
        stats: vec![
            "a scur=0 srv_abrt=0 eresp=1".into(),
            "b scur=0 srv_abrt=0 eresp=0".into(),
        ],
        next: String::new(),
    };
    agree(ours, theirs, expected);
}

/// In HTTP mode, a stream redispatched from a refusing server to another one is that
/// other server's: a kill of the first leaves it connecting (no response, no log line),
/// counted on the second.
#[test]
fn shutdown_sessions_spares_a_stream_redispatched_to_another_server_in_http_mode() {
    let refusing = free_port();
    let lab = Lab::new("shutdown-redispatch", "http", Unanswering::start());
    let be = format!(
        "  timeout connect 10s\n  retries 1\n  option redispatch\n\
         \x20 server a 127.0.0.1:{refusing}\n  server b {}\n",
        lab.servers.addr
    );
    let (ours, theirs) = lab.run("shutdown-redispatch", &be, |front| {
        let mut conn = request(front, "/");
        // On b: not asserted here, the counters below are.
        wait_until(Duration::from_secs(5), || lab.servers.connecting() > 0);
        let answers = vec![cli(&lab.sock, "shutdown sessions server be/a")];
        let quiet = Duration::from_millis(500);
        let sessions = vec![summary(&mut conn, Duration::from_millis(1500), quiet)];
        let columns = ["scur", "stot", "wredis", "econ"];
        let stats = counters(&lab.sock, &["a", "b"], &columns);
        Observed {
            answers,
            sessions,
            logs: Vec::new(),
            stats,
            next: String::new(),
        }
    });
    let expected = Observed {
        answers: vec!["\n".into()],
        sessions: vec![" | 0 | open".into()],
        logs: Vec::new(),
        stats: vec![
            "a scur=0 stot=1 wredis=1 econ=0".into(),
            "b scur=1 stot=1 wredis=0 econ=0".into(),
        ],
        next: String::new(),
    };
    agree(ours, theirs, expected);
}
