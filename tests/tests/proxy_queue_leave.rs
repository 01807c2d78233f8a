//! A TCP client that closes (FIN, nothing sent) while its connection waits in the queue of a
//! server at its `maxconn`, beside HAProxy 2.6: it leaves the queue at once (no wait for a
//! slot or `timeout queue`), is logged `CQ`, and the backend's queue is empty again. One that
//! sent data before closing waits its turn (here until `timeout queue`, `sQ`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, silent_server, stat_row, temp_dir, wait_until};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// The `show stat` columns compared, in the frontend's, the backend's and the server's row.
const COUNTERS: [&str; 8] = [
    "scur", "qcur", "stot", "lbtot", "econ", "cli_abrt", "dreq", "ereq",
];

/// What one proxy showed when the queued client sent `sent` and closed its side: its log
/// line masked (see [`masked`]), then the [`COUNTERS`].
fn run(binary: PathBuf, dir: &Path, name: &str, sent: &[u8]) -> (String, Vec<String>) {
    let server = silent_server();
    let port = free_port();
    let front = SocketAddr::from((LO, port));
    let log = dir.join(format!("{name}.log"));
    let log_sock = std::os::unix::net::UnixDatagram::bind(&log).expect("a log socket");
    log_sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let socket = dir.join(format!("{name}.sock"));
    let cfg = format!(
        "global\n  log {} local0\n  stats socket {} level admin\ndefaults\n  mode tcp\n  log global\n  option tcplog\n  \
         timeout client 10s\n  timeout server 10s\n  timeout connect 5s\n  timeout queue 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  server s1 {server} maxconn 1\n",
        log.display(),
        socket.display()
    );
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    let holder = TcpStream::connect(front).expect("the first client");
    // Round robin queues in the backend's queue.
    let row = |field: &str| {
        let row = if field == "qcur" { "BACKEND" } else { "s1" };
        stat_row(&cli(&socket, "show stat"), "be", row)
            .map(|r| r[field].clone())
            .unwrap_or_default()
    };
    assert!(wait_until(Duration::from_secs(5), || row("scur") == "1"));
    let mut queued = TcpStream::connect(front).expect("the second client");
    assert!(wait_until(Duration::from_secs(5), || row("qcur") == "1"));
    queued.write_all(sent).unwrap();
    queued.shutdown(Shutdown::Write).unwrap();
    queued
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = queued.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{name}: the queued client got {rest:?}");
    let mut buf = [0u8; 2048];
    let n = log_sock.recv(&mut buf).expect("a log line");
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    // The line is logged before the session is freed: its frontend slot is given back just
    // after, in either proxy, so the counters are read once only the holder's is left.
    let frontend_scur =
        || stat_row(&cli(&socket, "show stat"), "fe", "FRONTEND").map(|row| row["scur"].clone());
    assert!(
        wait_until(Duration::from_secs(5), || frontend_scur().as_deref()
            == Some("1")),
        "{name}: the queued client's session was never freed"
    );
    let csv = cli(&socket, "show stat");
    let counters: Vec<String> = [("fe", "FRONTEND"), ("be", "BACKEND"), ("be", "s1")]
        .into_iter()
        .flat_map(|(proxy, name)| {
            let row = stat_row(&csv, proxy, name).expect("a stat row");
            COUNTERS.map(|field| format!("{name}.{field}={}", row[field]))
        })
        .collect();
    let mut holder = holder;
    let _ = holder.write_all(b"x");
    drop(proxy);
    (masked(&line), counters)
}

/// Runs hapx-proxy, then HAProxy when installed, with a queued client that sends `sent`
/// and closes its side; asserts both logged the same line (`CQ` or `sQ` as `term` says)
/// and show the same counters after, the queue empty again and the holder's slot kept.
fn compare(test: &str, sent: &[u8], term: &str) {
    let dir = temp_dir(test);
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    let mut seen = Vec::new();
    for (name, binary) in list {
        let (line, counters) = run(binary, &dir, name, sent);
        assert!(line.contains(&format!(" {term} ")), "{name}: {line}");
        for expected in ["s1.qcur=0", "BACKEND.qcur=0", "s1.scur=1", "s1.stot=1"] {
            assert!(
                counters.contains(&expected.to_string()),
                "{name}: {expected} in {counters:?}"
            );
        }
        seen.push((line, counters));
    }
    if let [hapx, haproxy] = &seen[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
}

/// Closed with nothing sent: HAProxy's `check_req_may_abort` takes it out of the queue at
/// once (`CQ`), its place in the backend's queue logged (`%bq`).
#[test]
fn a_client_closing_in_the_queue_leaves_it_at_once() {
    compare("queue-leave-empty", b"", "CQ");
}

/// Sent data then closed (no `option abortonclose`): the request is not empty, so it waits
/// on until `timeout queue` (`sQ`), as in HAProxy.
#[test]
fn a_client_closing_after_data_waits_its_turn() {
    compare("queue-leave-data", b"hello\n", "sQ");
}

/// A log line without what differs from run to run: syslog header, pid, client port, date,
/// and the timers' values (`Tw/Tc/Tt`: only whether each is -1, never reached, is kept).
fn masked(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = words.iter().position(|w| *w == "fe").unwrap_or(0);
    words[from..]
        .iter()
        .map(|w| match w.split('/').collect::<Vec<_>>()[..] {
            [_, _, _]
                if w.chars()
                    .all(|c| c.is_ascii_digit() || c == '/' || c == '-') =>
            {
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
