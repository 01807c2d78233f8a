//! TCP-mode log lines side by side with HAProxy 2.6:
//!
//! - `option dontlognull` leaves out every session whose client sent nothing (HAProxy logs
//!   a stream only `if !(fe->options & PR_O_NULLNOLOG) || req->total`), however it ended:
//!   its server refused it (`SC`), its client half-closed (`CC`) or reset (`CD`) while it
//!   waited, it timed out in the queue (`sQ`), no server was left (`<NOSRV>`), its server
//!   spoke first, its content rules rejected it (`PR`); a session whose client sent bytes
//!   is logged;
//! - a `listen` section left without a server is a "proxy" in the alert, as HAProxy's
//!   `proxy_type_str` calls it.
//!
//! Loopback only; each wait is on a state (a closed connection, a server's `scur`, the
//! next log line), never on a time.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, silent_server, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{Syslog, binaries};

/// The frontends of [`config`], each for one way a session ends.
struct Fronts {
    /// Its server refuses (nobody listens there); one retry.
    refuse: u16,
    /// Its server says `hi` first, then waits.
    banner: u16,
    /// Its only server is `disabled`.
    nosrv: u16,
    /// Its server (busy, silent) takes one connection at a time; the queue times out.
    maxc: u16,
    /// Its content rules reject a client once it sent something, or at `inspect-delay`.
    rejects: u16,
}

impl Fronts {
    fn new() -> Fronts {
        Fronts {
            refuse: free_port(),
            banner: free_port(),
            nosrv: free_port(),
            maxc: free_port(),
            rejects: free_port(),
        }
    }
}

/// Every session logged as `BACKEND BYTES_IN TERM`, with `option dontlognull`.
fn config(syslog: SocketAddr, socket: &Path, fronts: &Fronts) -> String {
    let closed = free_port();
    let banner = banner_server();
    let busy = silent_server();
    format!(
        "global\n  stats socket {socket} level admin\n\
         defaults\n  mode tcp\n  log {syslog} local0\n  option dontlognull\n  log-format \"%b %U %ts\"\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 300ms\n\
         listen refuse\n  bind 127.0.0.1:{refuse}\n  retries 1\n  server s1 127.0.0.1:{closed}\n\
         listen banner\n  bind 127.0.0.1:{banner_port}\n  server s1 {banner}\n\
         listen nosrv\n  bind 127.0.0.1:{nosrv}\n  server s1 {busy} disabled\n\
         listen maxc\n  bind 127.0.0.1:{maxc}\n  timeout queue 300ms\n  server s1 {busy} maxconn 1\n\
         listen rejects\n  bind 127.0.0.1:{rejects}\n  tcp-request inspect-delay 300ms\n\
         \x20 tcp-request content reject if {{ req.len gt 0 }} || !{{ req.len gt 0 }}\n  server s1 {busy}\n",
        socket = socket.display(),
        refuse = fronts.refuse,
        banner_port = fronts.banner,
        nosrv = fronts.nosrv,
        maxc = fronts.maxc,
        rejects = fronts.rejects,
    )
}

/// A server on a free loopback port that sends `hi\n` on each connection and keeps it open.
fn banner_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"hi\n");
            held.push(conn);
        }
    });
    addr
}

fn connect(port: u16) -> TcpStream {
    let conn = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the frontend");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    conn
}

/// Reads `conn` to its end (the proxy closed it).
fn until_closed(mut conn: TcpStream) {
    let _ = conn.read_to_end(&mut Vec::new());
}

/// Ends `conn` with a reset.
fn reset(conn: TcpStream) {
    socket2::SockRef::from(&conn)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(conn);
}

/// The sessions that sent nothing, each ended another way, then the ones that talked; the
/// lines logged, up to the last talking session's (`refuse 5 SC`).
fn run(binary: PathBuf, dir: &Path, name: &str) -> Vec<String> {
    let syslog = Syslog::bind();
    let socket = dir.join(format!("{name}.sock"));
    let fronts = Fronts::new();
    let front = SocketAddr::from(([127, 0, 0, 1], fronts.refuse));
    let config = config(syslog.addr, &socket, &fronts);
    let _proxy = Proxy::start_with(binary, dir, name, &config, front, &[]);
    // Refused twice, the client waiting (`SC`); half-closed at once (`CC`); reset (`CD`).
    until_closed(connect(fronts.refuse));
    let half_closed = connect(fronts.refuse);
    half_closed.shutdown(Shutdown::Write).expect("half-closing");
    until_closed(half_closed);
    reset(connect(fronts.refuse));
    // The server's banner read, then a reset (`CD`, 3 bytes out).
    let mut banner = connect(fronts.banner);
    let mut hi = [0u8; 3];
    banner.read_exact(&mut hi).expect("the server's banner");
    reset(banner);
    // No server to go to.
    until_closed(connect(fronts.nosrv));
    // Rejected by content rules at `inspect-delay`, silent; then as soon as it talks.
    until_closed(connect(fronts.rejects));
    let mut talking = connect(fronts.rejects);
    talking.write_all(b"abc").expect("sending");
    until_closed(talking);
    // In the queue until `timeout queue` (`sQ`), behind a client that talks (logged).
    let mut holder = connect(fronts.maxc);
    holder.write_all(b"hold").expect("sending");
    let busy =
        || stat_row(&cli(&socket, "show stat"), "maxc", "s1").is_some_and(|r| r["scur"] == "1");
    assert!(
        wait_until(Duration::from_secs(10), busy),
        "{name}: maxc/s1 never busy"
    );
    until_closed(connect(fronts.maxc));
    reset(holder);
    // The last one talks: its line ends the wait for lines.
    let mut talking = connect(fronts.refuse);
    talking.write_all(b"hello").expect("sending");
    until_closed(talking);
    let mut lines = Vec::new();
    while let Some(line) = syslog.lines(1).pop() {
        // HAProxy's notices (`Proxy refuse started.`) are no session's.
        if line.contains(" started.") {
            continue;
        }
        let last = line == "refuse 5 SC";
        lines.push(line);
        if last {
            break;
        }
    }
    lines
}

#[test]
fn dontlognull_leaves_out_every_silent_tcp_session_like_haproxy() {
    let test = "dontlognull_leaves_out_every_silent_tcp_session_like_haproxy";
    let dir = temp_dir("dontlognull");
    let runs: Vec<(&str, Vec<String>)> = binaries(test)
        .into_iter()
        .map(|(name, binary)| (name, run(binary, &dir, name)))
        .collect();
    for (name, lines) in &runs {
        // Only the sessions that sent something: the rejected one, the holder (reset), and
        // the last one.
        assert_eq!(
            lines,
            &["rejects 3 PR", "maxc 4 CD", "refuse 5 SC"],
            "{name}"
        );
    }
    if let [(_, ours), (_, theirs)] = runs.as_slice() {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

/// The alert logged when the last server of `listen h` goes: as it is a `listen`, a
/// "proxy".
fn alert_when_emptied(binary: PathBuf, dir: &Path, name: &str) -> String {
    let syslog = Syslog::bind();
    let socket = dir.join(format!("{name}-alert.sock"));
    let port = free_port();
    let config = format!(
        "global\n  stats socket {socket} level admin\n\
         defaults\n  mode tcp\n  log {log} local0\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         listen h\n  bind 127.0.0.1:{port}\n  server s1 {busy}\n",
        socket = socket.display(),
        log = syslog.addr,
        busy = silent_server(),
    );
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let _proxy = Proxy::start_with(binary, dir, &format!("{name}-alert"), &config, front, &[]);
    cli(&socket, "disable server h/s1");
    std::iter::from_fn(|| syslog.lines(1).pop())
        .find(|line| line.contains("has no server available"))
        .unwrap_or_default()
}

#[test]
fn a_listen_without_servers_is_a_proxy_in_the_alert_like_haproxy() {
    let test = "a_listen_without_servers_is_a_proxy_in_the_alert_like_haproxy";
    let dir = temp_dir("listen-alert");
    let alerts: Vec<(&str, String)> = binaries(test)
        .into_iter()
        .map(|(name, binary)| (name, alert_when_emptied(binary, &dir, name)))
        .collect();
    for (name, alert) in &alerts {
        assert_eq!(alert, "proxy h has no server available!", "{name}");
    }
    if let [(_, ours), (_, theirs)] = alerts.as_slice() {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

/// The TLS frontends of [`tls_config`]: with and without `option dontlognull`.
struct TlsFronts {
    nulllog: u16,
    lognull: u16,
}

fn tls_config(syslog: SocketAddr, crt: &Path, fronts: &TlsFronts) -> String {
    format!(
        "defaults\n  mode tcp\n  log {syslog} local0\n  option tcplog\n\
         \x20 timeout client 300ms\n  timeout server 10s\n  timeout connect 1s\n\
         listen nulllog\n  bind 127.0.0.1:{nulllog} ssl crt {crt}\n  option dontlognull\n  server s1 {busy}\n\
         listen lognull\n  bind 127.0.0.1:{lognull} ssl crt {crt}\n  server s1 {busy}\n",
        crt = crt.display(),
        nulllog = fronts.nulllog,
        lognull = fronts.lognull,
        busy = silent_server(),
    )
}

/// Each way a TLS client can leave its handshake, on the frontend on `port`: closed at once,
/// closed after a part of its hello, silent until the handshake's timeout, and reset.
fn abandon_handshakes(port: u16) {
    let empty = connect(port);
    empty.shutdown(Shutdown::Write).expect("half-closing");
    until_closed(empty);
    let mut partial = connect(port);
    // Six bytes of a ClientHello's record header, then the close.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .expect("sending");
    partial.shutdown(Shutdown::Write).expect("half-closing");
    until_closed(partial);
    until_closed(connect(port));
    reset(connect(port));
}

/// The connection errors logged (what follows `FRONTEND/1: `), sorted.
fn tls_run(binary: PathBuf, dir: &Path, name: &str, crt: &Path) -> Vec<String> {
    let syslog = Syslog::bind();
    let fronts = TlsFronts {
        nulllog: free_port(),
        lognull: free_port(),
    };
    let front = SocketAddr::from(([127, 0, 0, 1], fronts.lognull));
    let _proxy = Proxy::start_with(
        binary,
        dir,
        name,
        &tls_config(syslog.addr, crt, &fronts),
        front,
        &[],
    );
    abandon_handshakes(fronts.nulllog);
    abandon_handshakes(fronts.lognull);
    // Five lines: the reset on `nulllog`, the four on `lognull`.
    let mut lines: Vec<String> = syslog
        .lines(6)
        .into_iter()
        .filter(|l| !l.contains(" started."))
        .map(|l| l.split_once("] ").map_or(l.clone(), |(_, m)| m.to_string()))
        .collect();
    lines.sort();
    lines
}

/// A TLS client that closes, aborts or times out during its handshake is a null connection
/// `dontlognull` leaves out, as HAProxy's `session_kill_embryonic`; one that reset is logged.
#[test]
fn dontlognull_leaves_out_abandoned_tls_handshakes_like_haproxy() {
    let test = "dontlognull_leaves_out_abandoned_tls_handshakes_like_haproxy";
    let dir = temp_dir("dontlognull-tls");
    let pki = hapx_tests::proxy_tls::Pki::new(&dir);
    let runs: Vec<(&str, Vec<String>)> = binaries(test)
        .into_iter()
        .map(|(name, binary)| (name, tls_run(binary, &dir, name, &pki.server)))
        .collect();
    for (name, lines) in &runs {
        assert_eq!(
            lines,
            &[
                "lognull/1: Connection closed during SSL handshake",
                "lognull/1: Connection closed during SSL handshake",
                "lognull/1: SSL handshake failure",
                "lognull/1: Timeout during SSL handshake",
                "nulllog/1: SSL handshake failure",
            ],
            "{name}"
        );
    }
    if let [(_, ours), (_, theirs)] = runs.as_slice() {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}
