//! A client that connects to an HTTP frontend and closes without sending a byte (at once,
//! or after closing its sending side and waiting for an answer), side by side with HAProxy
//! 2.6: HAProxy counts it as an invalid request (`ereq`, `req_tot`, `hrsp_4xx`) and logs
//! it `400 ... CR-- "<BADREQ>"`, unless `option dontlognull` (counted, not logged) or
//! `option http-ignore-probes` (neither).

use std::io::Read;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, http_get, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{EchoServer, Syslog, side_by_side};

/// The frontend's columns compared.
const COLUMNS: [&str; 5] = ["stot", "ereq", "req_tot", "hrsp_4xx", "hrsp_2xx"];

#[derive(Debug, PartialEq, Eq)]
struct Seen {
    counters: Vec<String>,
    /// The log lines before the marker request's, without the client's port, the date
    /// and the timers.
    logs: Vec<String>,
}

fn empty_connections_as_haproxy(test: &str, option: &str) {
    let dir = temp_dir(test);
    let port = free_port();
    let server = EchoServer::start("s1");
    let syslog = Syslog::bind();
    let sock = dir.join("admin.sock");
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  log {} local0\n  option httplog\n  {option}\n  \
         timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        sock.display(),
        syslog.addr,
        server.addr,
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (ours, theirs) = side_by_side(test, &config, front, |front| traffic(front, &sock, &syslog));
    // hapx's own view: the marker request counted, whatever else did.
    assert!(ours.counters.last().is_some_and(|n| n == "1"), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

fn traffic(front: SocketAddr, sock: &Path, syslog: &Syslog) -> Seen {
    drop(TcpStream::connect(front).expect("connecting"));
    // One at a time: the log lines' connection counts are then known.
    assert!(ended(sock, 1));
    let mut half_closed = TcpStream::connect(front).expect("connecting");
    half_closed
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    let _ = half_closed.shutdown(Shutdown::Write);
    let _ = half_closed.read_to_end(&mut Vec::new());
    // Both sessions ended: they counted and logged what they do.
    assert!(ended(sock, 2));
    let stat = cli(sock, "show stat");
    let row = stat_row(&stat, "fe", "FRONTEND").expect("the frontend's row");
    let mut counters: Vec<String> = COLUMNS.iter().map(|c| row[*c].clone()).collect();
    // A request after them, whose line ends the lines to read.
    assert_eq!(http_get(front, "/marker", None).0, 200);
    let mut logs = Vec::new();
    while let Some(line) = syslog.lines(1).pop() {
        if line.contains("/marker") {
            break;
        }
        logs.push(masked(&line));
    }
    let stat = cli(sock, "show stat");
    let row = stat_row(&stat, "fe", "FRONTEND").expect("the frontend's row");
    counters.push(row["hrsp_2xx"].clone());
    Seen { counters, logs }
}

/// Waits (up to 10 s) until the frontend took `sessions` sessions and they all ended.
fn ended(sock: &Path, sessions: usize) -> bool {
    wait_until(Duration::from_secs(10), || {
        let stat = cli(sock, "show stat");
        let row = stat_row(&stat, "fe", "FRONTEND");
        row.is_some_and(|row| row["stot"] == sessions.to_string() && row["scur"] == "0")
    })
}

/// An `httplog` line without the client's port, the date and the timers (words 0, 1, 4).
fn masked(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let ip = words[0].rsplit_once(':').map_or(words[0], |(ip, _)| ip);
    let rest = words.iter().enumerate().skip(2).filter(|(i, _)| *i != 4);
    let rest: Vec<&str> = rest.map(|(_, w)| *w).collect();
    format!("{ip} {}", rest.join(" "))
}

#[test]
fn empty_connections_count_as_bad_requests() {
    empty_connections_as_haproxy("empty_connections_count_as_bad_requests", "");
}

#[test]
fn empty_connections_count_unlogged_with_dontlognull() {
    empty_connections_as_haproxy(
        "empty_connections_count_unlogged_with_dontlognull",
        "option dontlognull",
    );
}

#[test]
fn empty_connections_are_ignored_with_http_ignore_probes() {
    empty_connections_as_haproxy(
        "empty_connections_are_ignored_with_http_ignore_probes",
        "option http-ignore-probes",
    );
}
