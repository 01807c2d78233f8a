//! Review points of TCP traffic and sample arguments, hapx-proxy next to HAProxy 2.6 on the
//! same configurations and traffic:
//! - `leastconn` and `roundrobin` with every active server gone and no `allbackups`: the
//!   first backup is taken whatever its load, so a client waits in that server's queue (not
//!   the backend's) and is refused past its `maxqueue`;
//! - a client that closes (FIN, nothing sent) while the proxy still connects to its server
//!   (one that never answers the SYN: a listener whose backlog is full): the attempt is
//!   abandoned at once, logged `CC`;
//! - `req.payload_lv`'s third argument read as HAProxy's saturating `read_int64`.

use std::io::Read;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, silent_server, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{Syslog, TIMEOUTS, check_text, shape, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[test]
fn leastconn_takes_the_first_backup_full_like_haproxy() {
    first_backup_full(
        "leastconn_takes_the_first_backup_full_like_haproxy",
        "leastconn",
    );
}

#[test]
fn roundrobin_takes_the_first_backup_full_like_haproxy() {
    first_backup_full(
        "roundrobin_takes_the_first_backup_full_like_haproxy",
        "roundrobin",
    );
}

/// Two clients more than the first backup of `balance` takes, every active server gone.
fn first_backup_full(test: &str, balance: &str) {
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let (backup, other) = (silent_server(), silent_server());
    let config = format!(
        "global\n  stats socket {}\ndefaults\n  mode tcp\n{TIMEOUTS}  timeout queue 10s\n\
         frontend f\n  bind {front}\n  default_backend b\n\
         backend b\n  balance {balance}\n  server a 127.0.0.1:{} disabled\n\
         \x20 server k {backup} backup maxconn 1 maxqueue 1\n  server l {other} backup\n",
        socket.display(),
        free_port(),
    );
    let traffic = |front: SocketAddr| {
        let first = TcpStream::connect(front).expect("connecting");
        let csv = || cli(&socket, "show stat");
        let row =
            |server: &str, field: &str| stat_row(&csv(), "b", server).map(|r| r[field].clone());
        assert!(
            wait_until(Duration::from_secs(5), || row("k", "scur").as_deref()
                == Some("1")),
            "the first connection reaches the backup"
        );
        // The backup is full: the next client waits, the one after is refused (or waits
        // in the backend's queue, were the backup not taken full).
        let second = TcpStream::connect(front).expect("connecting");
        let third = TcpStream::connect(front).expect("connecting");
        // Settled once all three are accounted for: served, queued (the backup's queue or
        // the backend's) or refused.
        let count = |server: &str, field: &str| {
            row(server, field)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let settled = wait_until(Duration::from_secs(10), || {
            count("k", "scur")
                + count("k", "qcur")
                + count("BACKEND", "qcur")
                + count("BACKEND", "econ")
                >= 3
        });
        assert!(
            settled,
            "the three connections were not all served, queued or refused"
        );
        let seen = ["k", "l", "BACKEND"].map(|s| {
            (
                s,
                row(s, "scur"),
                row(s, "qcur"),
                row(s, "lbtot"),
                row(s, "econ"),
            )
        });
        drop((first, second, third));
        seen
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn payload_lv_offset2_saturates_like_haproxy() {
    let dir = temp_dir("payload_lv_offset2_saturates_like_haproxy");
    for (case, offset2) in [
        "99999999999999999999",
        "-99999999999999999999",
        "+184467440737095516150",
        "99999999999999999999x",
        "9223372036854775806",
        "9223372036854775807",
    ]
    .iter()
    .enumerate()
    {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
             \x20 tcp-request content reject if {{ req.payload_lv(0,1,{offset2}) -m bin 41 }}\n\
             \x20 default_backend b\nbackend b\n  server s 127.0.0.1:2\n"
        );
        let [ours, theirs] = check_text(&dir, case, &text);
        assert_eq!(ours, theirs, "offset2 {offset2}: hapx-proxy, then HAProxy");
    }
}

/// A server that never completes a handshake: a listener with a backlog of 0 (room for
/// one) whose queue is filled by a connection that is never accepted; later SYNs go
/// unanswered. The listener and the filler, to keep.
fn unanswering_server() -> (socket2::Socket, TcpStream) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((LO, 0)).into())
        .expect("binding");
    // SAFETY: listen(2) on a socket this function owns.
    assert_eq!(unsafe { libc::listen(socket.as_raw_fd(), 0) }, 0);
    let addr = socket
        .local_addr()
        .expect("its address")
        .as_socket()
        .expect("IP");
    let filler = TcpStream::connect(addr).expect("filling the accept queue");
    (socket, filler)
}

#[test]
fn a_client_closing_while_connecting_is_let_go_like_haproxy() {
    let test = "a_client_closing_while_connecting_is_let_go_like_haproxy";
    let (ours, theirs) = client_closes_after(test, Duration::from_millis(300));
    assert_eq!(ours.0, "closed");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A FIN that comes with the connection: hapx-proxy lets the client go as when it comes
/// later. HAProxy does too when it reads the FIN before its connection attempt is under
/// way; when it reads it while setting the stream up it misses it and goes on connecting
/// (timing: seen both ways in a row here), so only its first outcome is compared.
#[test]
fn a_client_closing_at_once_is_let_go_too() {
    let test = "a_client_closing_at_once_is_let_go_too";
    let (ours, theirs) = client_closes_after(test, Duration::ZERO);
    assert_eq!(ours.0, "closed");
    assert!(
        ours.1.len() == 1 && ours.1[0].contains(" f b/s N/-N/N N CC "),
        "{ours:?}"
    );
    if let Some(theirs) = theirs.filter(|t| t.0 == "closed") {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

type Outcome = (String, Vec<String>, [[String; 8]; 2]);

/// A client connects, closes its side `after` that, then waits for the proxy's close: what
/// it saw, the log line and the counters, with each proxy, the server never answering.
fn client_closes_after(test: &str, after: Duration) -> (Outcome, Option<Outcome>) {
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let syslog = Syslog::bind();
    let front = SocketAddr::from((LO, free_port()));
    let (server, _filler) = unanswering_server();
    let addr = server
        .local_addr()
        .expect("an address")
        .as_socket()
        .expect("IP");
    let config = format!(
        "global\n  stats socket {}\n  log {} local0\ndefaults\n  mode tcp\n  log global\n\
         \x20 option tcplog\n  timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n\
         frontend f\n  bind {front}\n  default_backend b\nbackend b\n  server s {addr}\n",
        socket.display(),
        syslog.addr,
    );
    let traffic = |front: SocketAddr| {
        let mut client = TcpStream::connect(front).expect("connecting");
        thread::sleep(after);
        client.shutdown(Shutdown::Write).expect("closing");
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("a timeout");
        // Closed within 2 s (the connect timeout is 5 s): the proxy gave up the attempt.
        let closed = match client.read(&mut [0; 16]) {
            Ok(0) => "closed".to_string(),
            Ok(n) => format!("{n} bytes"),
            Err(e) => format!("{:?}", e.kind()),
        };
        let line = syslog.lines(1).iter().map(|l| shape(l)).collect::<Vec<_>>();
        let csv = cli(&socket, "show stat");
        let counts = ["s", "BACKEND"].map(|s| {
            let row = stat_row(&csv, "b", s).expect("a row");
            [
                "scur", "stot", "econ", "cli_abrt", "srv_abrt", "eresp", "wretr", "lbtot",
            ]
            .map(|c| format!("{c}={}", row[c]))
        });
        (closed, line, counts)
    };
    side_by_side(test, &config, front, traffic)
}
