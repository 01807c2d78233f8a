//! An HTTP response blocked on a client that does not read, its stream killed (`shutdown
//! session`) or its `timeout client` passing, side by side with HAProxy 2.6.
//!
//! Measured against HAProxy 2.6.12: a kill stops the reads from the server at once, but
//! what the proxy holds for the client still goes to it. A client reading on gets it and
//! then the connection's end (a FIN), logged `KD--`; a client reading nothing keeps it until
//! `timeout client`, then the FIN, logged `K---` (`KD--` when the proxy's last bytes still
//! found room in its socket: which of the two depends on the sockets' buffers at the kill,
//! in HAProxy as in hapx, so only the kill's `K` is compared then). Without a kill,
//! `timeout client` ends it `cD--`. Each client then reads what its socket holds to the
//! end, not a reset.
//!
//! The server writes its large response without blocking, and tells the test once its
//! socket is full: the proxy's buffers and the client's are full then, the response blocked
//! on the client (no sleep).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HttplogLine, Syslog, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The response's announced body: far more than every buffer on the way holds.
const LARGE: usize = 1 << 30;

/// A server answering each connection's request with a [`LARGE`] body it writes until its
/// socket is full, which it tells on the receiver; it then writes on until the connection
/// ends.
fn flooding_server() -> (SocketAddr, Receiver<()>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    let (full, fulls) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let full = full.clone();
            thread::spawn(move || flood(conn, &full));
        }
    });
    (addr, fulls)
}

fn flood(mut conn: TcpStream, full: &mpsc::Sender<()>) {
    let mut head = [0u8; 1024];
    if !matches!(conn.read(&mut head), Ok(n) if n > 0) {
        return;
    }
    let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {LARGE}\r\n\r\n");
    if conn.write_all(answer.as_bytes()).is_err() || conn.set_nonblocking(true).is_err() {
        return;
    }
    let chunk = vec![b'x'; 1 << 16];
    let mut told = false;
    loop {
        match conn.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !told {
                    told = full.send(()).is_ok();
                }
                // Blocking from here: the next write waits for room.
                if conn.set_nonblocking(false).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// What a client does once its response is blocked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    /// Its stream is killed; it reads on to the end.
    KilledReading,
    /// Its stream is killed; it reads nothing until the proxy logged its end.
    KilledIdle,
    /// Nothing: `timeout client` passes.
    Idle,
}

/// The configuration: frontend `fe` on `front` to `server`, an admin `stats socket` at
/// `sock`, logs to `syslog`.
fn config(front: SocketAddr, server: SocketAddr, sock: &Path, syslog: SocketAddr) -> String {
    format!(
        "global\n  stats socket {} level admin\n  log {syslog} local0 info\n\
         defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 1s\n  \
         timeout client 1s\n  timeout server 10s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  server s1 {server}\n",
        sock.display()
    )
}

/// The stream number `show sess` gives the stream from `src`.
fn stream_of(sock: &Path, src: SocketAddr) -> String {
    let answer = cli(sock, "show sess");
    let src = format!("src={src}");
    let line = answer.lines().find(|l| l.split(' ').any(|w| w == src));
    let line = line.unwrap_or_else(|| panic!("no stream from {src} in:\n{answer}"));
    line.split(':').next().unwrap_or_default().to_string()
}

/// Reads `c` to its end: whether it ended with a FIN (not a reset), and whether it read
/// anything.
fn read_to_end(c: &mut TcpStream) -> (bool, bool) {
    let mut buf = vec![0u8; 1 << 16];
    let mut any = false;
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (true, any),
            Ok(_) => any = true,
            Err(_) => return (false, any),
        }
    }
}

/// One client's run as `then` says: how its connection ended ([`read_to_end`]) and the
/// request's log line, its size masked (what the buffers held).
fn run(
    front: SocketAddr,
    sock: &Path,
    (syslog, fulls): (&Syslog, &Receiver<()>),
    then: Then,
) -> ((bool, bool), Option<HttplogLine>) {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /large HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("sending the request");
    fulls
        .recv_timeout(Duration::from_secs(10))
        .expect("the server's socket full");
    if then != Then::Idle {
        let id = stream_of(sock, c.local_addr().expect("the client's address"));
        cli(sock, &format!("shutdown session {id}"));
    }
    let mut line = None;
    if then != Then::KilledReading {
        line = syslog.httplog_lines("fe", 1).pop();
    }
    let ended = read_to_end(&mut c);
    if line.is_none() {
        line = syslog.httplog_lines("fe", 1).pop();
    }
    let masked = line.map(|l| {
        let flags = match then {
            Then::KilledIdle => l.flags.replace("KD", "K-"),
            _ => l.flags,
        };
        HttplogLine {
            bytes: 0,
            flags,
            ..l
        }
    });
    (ended, masked)
}

/// For each way (killed while the client reads, killed while it does not, its timeout),
/// the end the client saw and the log line, as HAProxy's.
#[test]
fn a_response_blocked_on_its_client_ends_as_haproxys() {
    let test = "a_response_blocked_on_its_client_ends_as_haproxys";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let (server, fulls) = flooding_server();
    let syslog = Syslog::bind();
    let front = SocketAddr::from((LO, free_port()));
    let text = config(front, server, &sock, syslog.addr);
    let ways = [Then::KilledReading, Then::KilledIdle, Then::Idle];
    let traffic = |front| {
        (ways.iter())
            .map(|&then| (then, run(front, &sock, (&syslog, &fulls), then)))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &text, front, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "{test} (hapx, HAProxy)");
    }
    let flags: Vec<(Then, &str)> = (ours.iter())
        .map(|(then, (_, line))| (*then, line.as_ref().map_or("", |l| l.flags.as_str())))
        .collect();
    assert_eq!(
        flags,
        [
            (Then::KilledReading, "KD--"),
            (Then::KilledIdle, "K---"),
            (Then::Idle, "cD--"),
        ]
    );
    for (then, (ended, _)) in &ours {
        assert_eq!(*ended, (true, true), "{then:?}: read, then a FIN");
    }
}
