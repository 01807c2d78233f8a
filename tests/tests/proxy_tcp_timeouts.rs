//! A TCP session's inactivity timeouts per direction, and health checks' variables held to
//! `tune.vars.check-max-size`, run by hapx-proxy and then by HAProxy 2.6 on the same
//! configuration with the same traffic.
//!
//! HAProxy arms its timeouts per side: reading from a side and writing to it are bounded by
//! that side's timeout (`timeout client`, `timeout server`), its `-fin` one replacing it for
//! reading once the proxy sent it a FIN; a direction waiting for its destination to take
//! data does not read. So a client that does not read ends on `timeout client` (`cD`)
//! whatever the server's timeout, even after the server closed, and after a `shutdown
//! session` (`K-`, counted from the last write to it: the kill shuts the server side at
//! once); a server that does not read ends on `timeout server` (`sD`) even after the client
//! closed. Each case sets timeouts of 1 s and 4 s and tells which one fired by when the
//! session's log line came (before 2.5 s or after), with its termination flags; copied and
//! spliced (`option splice-request`/`splice-response`) forwarding alike.
//!
//! Check variables: a `check` variable counts against `check-max-size` and, with the run's
//! `sess` ones, `sess-max-size`; a `sess` one not against `check-max-size`. What a check's
//! `send-lf` renders shows which sets were kept.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::proxy_lifecycle::agree;
use hapx_tests::proxy_rules::{HAPROXY, Syslog, side_by_side};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The timeouts of a case, as configuration values (`None`: not set).
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    client: &'static str,
    server: &'static str,
    client_fin: Option<&'static str>,
    server_fin: Option<&'static str>,
}

const fn timeouts(client: &'static str, server: &'static str) -> Timeouts {
    Timeouts {
        client,
        server,
        client_fin: None,
        server_fin: None,
    }
}

/// What a case's peers do once the session is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// The server fills every buffer toward a client that never reads, then:
    ServerFloods(Then),
    /// The client fills every buffer toward a server that never reads, then:
    ClientFloods(Then),
    /// Nothing is sent, then:
    Quiet(Then),
}

/// The event a case's timing counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Nothing more.
    Nothing,
    /// The server shuts its sending down (its FIN).
    ServerCloses,
    /// The client shuts its sending down.
    ClientCloses,
    /// The runtime API's `shutdown session` kills the session.
    Killed,
}

/// How the proxies forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forwarding {
    Copied,
    Spliced,
}

/// A case's configuration: one `listen` to `server`, logging to `syslog`.
fn config(
    sock: &Path,
    syslog: SocketAddr,
    port: u16,
    server: SocketAddr,
    t: Timeouts,
    fwd: Forwarding,
) -> String {
    let mut extra = String::new();
    if let Some(fin) = t.client_fin {
        extra += &format!("  timeout client-fin {fin}\n");
    }
    if let Some(fin) = t.server_fin {
        extra += &format!("  timeout server-fin {fin}\n");
    }
    if fwd == Forwarding::Spliced {
        extra += "  option splice-request\n  option splice-response\n";
    }
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  log {syslog} local0\n  option tcplog\n  timeout connect 1s\n\
         \x20 timeout client {}\n  timeout server {}\n{extra}\
         listen f\n  bind 127.0.0.1:{port}\n  server s {server}\n",
        sock.display(),
        t.client,
        t.server,
    )
}

/// Writes to `conn` until nothing more is taken for a moment (every buffer on the way is
/// full); the socket is left blocking.
fn flood(conn: &mut TcpStream) {
    conn.set_nonblocking(true).expect("a non-blocking socket");
    let chunk = vec![b'x'; 1 << 20];
    let mut stalled_since: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match conn.write(&chunk) {
            Ok(_) => stalled_since = None,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("flooding: {e}"),
        }
    }
    conn.set_nonblocking(false).expect("a blocking socket");
}

/// The session the proxy opened to `listener` (within 5 s).
fn accept(listener: &TcpListener) -> TcpStream {
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).expect("a blocking socket");
                return conn;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the proxy did not connect to the server: {e}"),
        }
    }
}

/// `shutdown session` of frontend `f`'s one session.
fn kill_the_session(sock: &Path) {
    let sessions = cli(sock, "show sess");
    let id = sessions
        .lines()
        .find(|l| l.contains(" fe=f "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no session of f in `show sess`: {sessions}"));
    let answer = cli(sock, &format!("shutdown session {id}"));
    assert_eq!(answer.trim(), "", "shutdown session {id}");
}

/// Which timeout ended the session, by when its log line came after the event: `1s`
/// (before 2.5 s), `4s` (before 10 s), or `none`; and the line's termination flags.
fn ended(syslog: &Syslog, client: SocketAddr, since: Instant) -> String {
    let prefix = format!("{client} ");
    loop {
        let Some(line) = syslog.lines(1).pop() else {
            return "no log line: none".into();
        };
        if !line.starts_with(&prefix) {
            continue;
        }
        let elapsed = since.elapsed();
        let fired = if elapsed < Duration::from_millis(2500) {
            "1s"
        } else {
            "4s"
        };
        let flags = line.split(' ').nth(6).unwrap_or_default().to_string();
        return format!("{flags} after {fired}");
    }
}

/// Runs `traffic` through hapx-proxy and HAProxy with timeouts `t`: the session's end
/// (see [`ended`]) through each. The two run at the same time, each with its own server,
/// syslog sink, port and stats socket: each waits out its own timeouts.
fn run(test: &str, t: Timeouts, traffic: Traffic, fwd: Forwarding) -> (String, Option<String>) {
    let dir = temp_dir(test);
    std::thread::scope(|scope| {
        let dir = &dir;
        let ours =
            scope.spawn(move || observe(dir, bins::path("hapx-proxy"), "hapx", t, traffic, fwd));
        let theirs = require::path(test, Path::new(HAPROXY), "HAProxy")
            .then(|| scope.spawn(move || observe(dir, HAPROXY.into(), "haproxy", t, traffic, fwd)));
        let joined = |run: std::thread::ScopedJoinHandle<'_, String>| {
            run.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (joined(ours), theirs.map(joined))
    })
}

/// [`run`]'s traffic through the proxy `binary` (named `name` in `dir`).
fn observe(
    dir: &Path,
    binary: PathBuf,
    name: &str,
    t: Timeouts,
    traffic: Traffic,
    fwd: Forwarding,
) -> String {
    let sock = dir.join(format!("{name}.sock"));
    let syslog = Syslog::bind();
    let server = TcpListener::bind((LO, 0)).expect("binding the server");
    let server_addr = server.local_addr().expect("its address");
    let port = free_port();
    let conf = config(&sock, syslog.addr, port, server_addr, t, fwd);
    let front = SocketAddr::from((LO, port));
    let _proxy = Proxy::start_with(binary, dir, name, &conf, front, &[]);
    let mut client = TcpStream::connect(front).expect("connecting to the frontend");
    let mut upstream = accept(&server);
    let then = match traffic {
        Traffic::ServerFloods(then) => {
            flood(&mut upstream);
            then
        }
        Traffic::ClientFloods(then) => {
            flood(&mut client);
            then
        }
        Traffic::Quiet(then) => then,
    };
    match then {
        Then::Nothing => {}
        Then::ServerCloses => upstream.shutdown(std::net::Shutdown::Write).unwrap(),
        Then::ClientCloses => client.shutdown(std::net::Shutdown::Write).unwrap(),
        Then::Killed => kill_the_session(&sock),
    }
    let since = Instant::now();
    let client_addr = client.local_addr().expect("the client's address");
    let end = ended(&syslog, client_addr, since);
    drop((client, upstream));
    end
}

/// Each case: its timeouts, traffic, and the end expected (HAProxy's).
fn cases(test: &str, fwd: Forwarding, list: &[(Timeouts, Traffic, &str)]) {
    std::thread::scope(|s| {
        let runs: Vec<_> = list
            .iter()
            .enumerate()
            .map(|(i, &(t, traffic, expected))| {
                let name = format!("{test}-{i}");
                (
                    t,
                    traffic,
                    expected,
                    s.spawn(move || run(&name, t, traffic, fwd)),
                )
            })
            .collect();
        for (t, traffic, expected, handle) in runs {
            let (ours, theirs) = handle.join().expect("a case's thread");
            eprintln!("{t:?} {traffic:?} {fwd:?}: hapx {ours}, HAProxy {theirs:?}");
            agree(ours, theirs, expected.to_string());
        }
    });
}

use Then::*;
use Traffic::*;

const CLIENT_1S: Timeouts = timeouts("1s", "4s");
const SERVER_1S: Timeouts = timeouts("4s", "1s");

/// After `shutdown session`, a client that does not read keeps its side until `timeout
/// client` (counted from the last write to it), whatever `timeout server` and `client-fin`
/// say: the server's side was closed at once, the FIN to the client not sent yet.
fn killed_sessions_wait_for_timeout_client(fwd: Forwarding) {
    let client_fin_1s = Timeouts {
        client_fin: Some("1s"),
        server_fin: Some("1s"),
        ..SERVER_1S
    };
    cases(
        &format!("tcp-timeouts-kill-{fwd:?}"),
        fwd,
        &[
            (CLIENT_1S, ServerFloods(Killed), "K- after 1s"),
            (SERVER_1S, ServerFloods(Killed), "K- after 4s"),
            (client_fin_1s, ServerFloods(Killed), "K- after 4s"),
        ],
    );
}

#[test]
fn a_killed_session_waits_for_timeout_client_when_copied() {
    killed_sessions_wait_for_timeout_client(Forwarding::Copied);
}

#[test]
fn a_killed_session_waits_for_timeout_client_when_spliced() {
    killed_sessions_wait_for_timeout_client(Forwarding::Spliced);
}

/// A client or server that does not read: its own timeout, in any phase.
fn peers_that_do_not_read(fwd: Forwarding) {
    cases(
        &format!("tcp-timeouts-noread-{fwd:?}"),
        fwd,
        &[
            // Both sides open, the client not reading: the server's silence is no timeout.
            (SERVER_1S, ServerFloods(Nothing), "cD after 4s"),
            // The server closed, its data not all taken.
            (SERVER_1S, ServerFloods(ServerCloses), "cD after 4s"),
            (CLIENT_1S, ServerFloods(ServerCloses), "cD after 1s"),
            // The client closed, not reading what the server sends.
            (SERVER_1S, ServerFloods(ClientCloses), "cD after 4s"),
            // The server not reading: the client's close or the server's does not change it.
            (SERVER_1S, ClientFloods(ClientCloses), "sD after 1s"),
            (CLIENT_1S, ClientFloods(ServerCloses), "sD after 4s"),
        ],
    );
}

#[test]
fn a_peer_that_does_not_read_ends_on_its_own_timeout_when_copied() {
    peers_that_do_not_read(Forwarding::Copied);
}

#[test]
fn a_peer_that_does_not_read_ends_on_its_own_timeout_when_spliced() {
    peers_that_do_not_read(Forwarding::Spliced);
}

/// Once a side closed, the other side is waited for with its timeout, or its `-fin` one
/// when set (which replaces it, longer or shorter).
#[test]
fn a_half_closed_session_waits_with_the_other_sides_fin_timeout() {
    let fin = |t: Timeouts, client_fin, server_fin| Timeouts {
        client_fin,
        server_fin,
        ..t
    };
    let both_4s = timeouts("4s", "4s");
    cases(
        "tcp-timeouts-fin",
        Forwarding::Copied,
        &[
            (SERVER_1S, Quiet(ServerCloses), "cD after 4s"),
            (
                fin(both_4s, Some("1s"), None),
                Quiet(ServerCloses),
                "cD after 1s",
            ),
            (
                fin(CLIENT_1S, Some("4s"), None),
                Quiet(ServerCloses),
                "cD after 4s",
            ),
            (CLIENT_1S, Quiet(ClientCloses), "sD after 4s"),
            (
                fin(both_4s, None, Some("1s")),
                Quiet(ClientCloses),
                "sD after 1s",
            ),
            (
                fin(SERVER_1S, None, Some("4s")),
                Quiet(ClientCloses),
                "sD after 4s",
            ),
        ],
    );
}

/// What a health check sends with `send-lf` after `rules`, under the global `tune` lines.
fn check_sends(test: &str, tune: &str, rules: &[&str]) -> (String, Option<String>) {
    let server = TcpListener::bind((LO, 0)).expect("binding a check server");
    let server_addr = server.local_addr().expect("its address");
    let port = free_port();
    let rules: String = rules.iter().map(|r| format!("  tcp-check {r}\n")).collect();
    let conf = format!(
        "global\n{tune}\
         defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  option tcp-check\n{rules}  tcp-check connect\n\
         \x20 tcp-check send-lf \"a=%[var(check.a)] b=%[var(check.b)] \
         c=%[var(sess.c)] d=%[var(sess.d)]\\n\"\n\
         \x20 tcp-check expect string ok\n\
         \x20 server s {server_addr} check inter 300ms\n"
    );
    side_by_side(test, &conf, SocketAddr::from((LO, port)), |_| {
        // The previous proxy's checks still waiting are dropped: the next one is this
        // proxy's (the previous one has stopped).
        server
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        while server.accept().is_ok() {}
        let mut conn = accept(&server);
        conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\n") && matches!(conn.read(&mut byte), Ok(1)) {
            got.push(byte[0]);
        }
        // Answered, so that the server stays up (no messages).
        let _ = conn.write_all(b"ok\n");
        String::from_utf8_lossy(&got).trim_end().to_string()
    })
}

#[test]
fn check_variables_are_held_to_check_max_size() {
    let twenty = "aaaaaaaaaaaaaaaaaaaa";
    let a20 = format!("set-var(check.a) str({twenty})");
    let cases: [(&str, Vec<String>, String); 5] = [
        // 80 + 20 bytes fit 100; another variable's 80 do not.
        (
            "  tune.vars.check-max-size 100\n",
            vec![a20.clone(), "set-var(check.b) str(x)".into()],
            format!("a={twenty} b= c= d="),
        ),
        // `sess` variables are not counted there.
        (
            "  tune.vars.check-max-size 100\n",
            vec![
                format!("set-var(sess.c) str({twenty}{twenty})"),
                "set-var(sess.d) str(y)".into(),
                "set-var(check.a) str(z)".into(),
            ],
            format!("a=z b= c={twenty}{twenty} d=y"),
        ),
        // `check` variables count in the check's session.
        (
            "  tune.vars.sess-max-size 100\n",
            vec![a20.clone(), "set-var(check.b) str(x)".into()],
            format!("a={twenty} b= c= d="),
        ),
        (
            "  tune.vars.sess-max-size 100\n",
            vec![
                format!("set-var(sess.c) str({twenty})"),
                "set-var(check.a) str(x)".into(),
            ],
            format!("a= b= c={twenty} d="),
        ),
        (
            "  tune.vars.check-max-size 200\n",
            vec![
                format!("set-var(sess.c) str({twenty})"),
                "set-var(check.a) str(x)".into(),
                "set-var(check.b) str(x)".into(),
            ],
            format!("a=x b=x c={twenty} d="),
        ),
    ];
    for (i, (tune, rules, expected)) in cases.iter().enumerate() {
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        let (ours, theirs) = check_sends(&format!("check-vars-limit-{i}"), tune, &rules);
        agree(ours, theirs, expected.clone());
    }
}
