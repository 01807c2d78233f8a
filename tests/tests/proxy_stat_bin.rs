//! `show stat`'s `bin` for TCP sessions that never reach their server, side by side with
//! HAProxy 2.6: a client's bytes count as they are received (HAProxy's `req->total`, read
//! into the request buffer while the session waits), in the frontend's, the backend's and
//! the server's rows (the server it was for, none after a backend queue), up to the
//! buffer's 15360 bytes (`tune.bufsize` less `tune.maxrewrite`) before a connection.
//!
//! Loopback only. Each client's bytes are in the proxy's socket long before the proxy
//! gives up (a connect turn-around, a queue timeout, or the content rules wait for them);
//! the counts are read once no connection is left.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{
    Proxy, cli, free_port, no_connection_open, silent_server, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::binaries;

/// The frontends of [`config`].
struct Fronts {
    /// Its server refuses; retried after a turn-around.
    refuse: u16,
    /// Its content rules wait for 6 bytes, then its server refuses (no retry).
    rules: u16,
    /// Its (busy) server takes one connection at a time; the queue times out.
    maxc: u16,
}

fn config(socket: &Path, fronts: &Fronts) -> String {
    let closed = free_port();
    format!(
        "global\n  stats socket {socket} level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         listen refuse\n  bind 127.0.0.1:{refuse}\n  retries 1\n  server r1 127.0.0.1:{closed}\n\
         listen rules\n  bind 127.0.0.1:{rules}\n  retries 0\n  tcp-request inspect-delay 10s\n\
         \x20 tcp-request content accept if {{ req.len ge 6 }}\n  server r1 127.0.0.1:{closed}\n\
         listen maxc\n  bind 127.0.0.1:{maxc}\n  timeout queue 1s\n  server s1 {busy} maxconn 1\n",
        socket = socket.display(),
        refuse = fronts.refuse,
        rules = fronts.rules,
        maxc = fronts.maxc,
        busy = silent_server(),
    )
}

fn connect(port: u16) -> TcpStream {
    let conn = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the frontend");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    conn
}

/// Sends `data` on a new connection to `port`, then reads to the proxy's close.
fn send_until_closed(port: u16, data: &[u8]) {
    let mut conn = connect(port);
    conn.write_all(data).expect("sending");
    let _ = conn.read_to_end(&mut Vec::new());
}

/// `bin` of each row of the three listens, after their sessions.
fn bin_counts(binary: PathBuf, dir: &Path, name: &str) -> Vec<String> {
    let socket = dir.join(format!("{name}.sock"));
    let fronts = Fronts {
        refuse: free_port(),
        rules: free_port(),
        maxc: free_port(),
    };
    let front = SocketAddr::from(([127, 0, 0, 1], fronts.refuse));
    let _proxy = Proxy::start_with(binary, dir, name, &config(&socket, &fronts), front, &[]);
    send_until_closed(fronts.refuse, b"hello\n");
    send_until_closed(fronts.rules, b"hello\n");
    // More than the request buffer takes before a connection.
    send_until_closed(fronts.rules, &[b'x'; 20000]);
    // A talking client holds the server; the next one's bytes wait with it in the queue.
    let mut holder = connect(fronts.maxc);
    holder.write_all(b"hold").expect("sending");
    let busy =
        || stat_row(&cli(&socket, "show stat"), "maxc", "s1").is_some_and(|r| r["scur"] == "1");
    assert!(
        wait_until(Duration::from_secs(10), busy),
        "{name}: maxc/s1 never busy"
    );
    send_until_closed(fronts.maxc, b"hello\n");
    socket2::SockRef::from(&holder)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(holder);
    assert!(no_connection_open(&socket), "{name}: sessions left open");
    let stat = cli(&socket, "show stat");
    let rows = [
        ("refuse", "FRONTEND"),
        ("refuse", "r1"),
        ("refuse", "BACKEND"),
        ("rules", "FRONTEND"),
        ("rules", "r1"),
        ("rules", "BACKEND"),
        ("maxc", "FRONTEND"),
        ("maxc", "s1"),
        ("maxc", "BACKEND"),
    ];
    rows.iter()
        .map(|&(proxy, row)| {
            let bin = stat_row(&stat, proxy, row).map(|r| r["bin"].clone());
            format!("{proxy}/{row} {}", bin.unwrap_or_default())
        })
        .collect()
}

#[test]
fn bytes_in_count_on_receipt_when_the_server_never_connects_like_haproxy() {
    let test = "bytes_in_count_on_receipt_when_the_server_never_connects_like_haproxy";
    let dir = temp_dir("stat-bin");
    let runs: Vec<(&str, Vec<String>)> = binaries(test)
        .into_iter()
        .map(|(name, binary)| (name, bin_counts(binary, &dir, name)))
        .collect();
    // 6 + 15360 on `rules`; the queued client's 6 in `maxc`'s frontend and backend rows,
    // the server's only the holder's 4.
    let expected = [
        "refuse/FRONTEND 6",
        "refuse/r1 6",
        "refuse/BACKEND 6",
        "rules/FRONTEND 15366",
        "rules/r1 15366",
        "rules/BACKEND 15366",
        "maxc/FRONTEND 10",
        "maxc/s1 4",
        "maxc/BACKEND 10",
    ];
    for (name, counts) in &runs {
        assert_eq!(counts, &expected, "{name}");
    }
    if let [(_, ours), (_, theirs)] = runs.as_slice() {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}
