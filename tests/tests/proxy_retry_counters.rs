//! A TCP session retrying a refused server, beside HAProxy 2.6, each case run by hapx-proxy
//! and then by HAProxy on the same configuration with the same traffic:
//!
//! - while it waits to retry, it is no session of its server's (`scur` 0, HAProxy's
//!   `cur_sess`) but keeps its server's slot (`maxconn 1`: the next client waits in the
//!   queue), and `show sess` names the server (`srv=s3`);
//! - a TCP backend's time means (`ttime`) are over its load-balanced connections (`lbtot`),
//!   the failed ones included, though only the connected ones add their times; the counts
//!   (`stot`, `wretr`, `econ`, `lbtot`) agree;
//! - each attempt counts in its server's session rate, in one period from the first attempt
//!   on (HAProxy's periods begin with an event, not on a second of the clock): `rate_max`.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, no_connection_open, stat_row, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A TCP frontend on `front` to backend `b`, whose `servers` lines follow; a connect timeout
/// (so a retry's turn-around) of `connect_ms`.
fn config(sock: &Path, front: SocketAddr, connect_ms: u32, servers: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n\
         \x20 timeout connect {connect_ms}ms\n  timeout queue 10s\n\
         frontend f\n  bind {front}\n  default_backend b\n\
         backend b\n  balance roundrobin\n{servers}",
        sock.display()
    )
}

/// `columns` of `b`/`server` in `show stat`, as `column=value`.
fn stats(sock: &Path, server: &str, columns: &[&str]) -> Vec<String> {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, "b", server).unwrap_or_default();
    columns
        .iter()
        .map(|c| format!("{c}={}", row.get(*c).map_or("?", String::as_str)))
        .collect()
}

fn number(sock: &Path, server: &str, column: &str) -> i64 {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, "b", server).unwrap_or_default();
    row.get(column).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

/// Connects to `front` and reads until the proxy closes (the session's end).
fn session(front: SocketAddr) {
    if let Ok(mut conn) = TcpStream::connect(front) {
        conn.set_read_timeout(Some(Duration::from_secs(15))).ok();
        let _ = conn.read_to_end(&mut Vec::new());
    }
}

/// What a proxy shows while a session waits to retry `s3` (`maxconn 1`) and a second one
/// waits for its slot: `s3`'s `scur`, the connections queued in `b` (its queue and `s3`'s),
/// and the server `show sess` names for the first. `reached`: that state came (`scur` 0,
/// one queued, `srv=s3`); else the last seen.
#[derive(Debug, PartialEq, Eq)]
struct DuringRetry {
    reached: bool,
    scur: i64,
    queued: i64,
    srv_s3: bool,
}

fn during_retry(sock: &Path, front: SocketAddr) -> DuringRetry {
    let first = TcpStream::connect(front).expect("connecting a first client");
    // Its first attempt failed: it waits to retry (the attempts take microseconds).
    let retrying = eventually(Duration::from_secs(5), || number(sock, "s3", "wretr") >= 1);
    assert!(retrying, "the first session never retried");
    let second = TcpStream::connect(front).expect("connecting a second client");
    let mut seen = DuringRetry {
        reached: false,
        scur: -1,
        queued: -1,
        srv_s3: false,
    };
    // Until that state comes, or the first session's retries run out.
    let reached = eventually(Duration::from_secs(5), || {
        let scur = number(sock, "s3", "scur");
        let queued = number(sock, "BACKEND", "qcur") + number(sock, "s3", "qcur");
        let srv_s3 = cli(sock, "show sess").contains(" srv=s3 ");
        if number(sock, "s3", "wretr") >= 3 {
            return true;
        }
        seen = DuringRetry {
            reached: false,
            scur,
            queued,
            srv_s3,
        };
        scur == 0 && queued == 1 && srv_s3
    });
    seen.reached = reached && seen.scur == 0 && seen.queued == 1 && seen.srv_s3;
    drop((first, second));
    assert!(no_connection_open(sock), "sessions stayed open");
    seen
}

#[test]
fn a_session_waiting_to_retry_keeps_its_slot_but_is_no_session_of_its_server() {
    let test = "a_session_waiting_to_retry_keeps_its_slot_but_is_no_session_of_its_server";
    let dir = temp_dir("retry-slot");
    let sock = dir.join("admin.sock");
    let front = SocketAddr::from((LO, free_port()));
    let refused = free_port();
    let servers = format!("  server s3 127.0.0.1:{refused} maxconn 1\n");
    let cfg = config(&sock, front, 500, &servers);
    let (ours, theirs) = side_by_side(test, &cfg, front, |front| during_retry(&sock, front));
    eprintln!("during a retry: hapx {ours:?}, HAProxy {theirs:?}");
    assert!(
        ours.reached,
        "hapx while a session waits to retry: {ours:?} (HAProxy: {theirs:?})"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx beside HAProxy");
    }
}

/// The counts after `sessions` sequential sessions, and the backend's `ttime` against what
/// its live server's says: `(counts, backend ttime, s1's ttime scaled to the backend's
/// lbtot)`.
fn after_sessions(sock: &Path, front: SocketAddr, sessions: usize) -> (Vec<String>, i64, f64) {
    for _ in 0..sessions {
        session(front);
    }
    assert!(no_connection_open(sock), "sessions stayed open");
    let counted = ["stot", "lbtot", "wretr", "econ"];
    let mut counts = stats(sock, "BACKEND", &counted);
    counts.extend(stats(sock, "s1", &counted));
    counts.extend(stats(sock, "s3", &counted));
    let backend_ttime = number(sock, "BACKEND", "ttime");
    let backend_lbtot = number(sock, "BACKEND", "lbtot");
    let (s1_ttime, s1_lbtot) = (number(sock, "s1", "ttime"), number(sock, "s1", "lbtot"));
    // s1's sessions all connected: their times' sum is about its mean times its count, and
    // the backend's mean is that sum over all its balanced sessions.
    let scaled = (s1_ttime * s1_lbtot) as f64 / backend_lbtot.max(1) as f64;
    (counts, backend_ttime, scaled)
}

#[test]
fn a_tcp_backends_times_are_over_its_balanced_sessions_failed_ones_included() {
    let test = "a_tcp_backends_times_are_over_its_balanced_sessions_failed_ones_included";
    let dir = temp_dir("retry-ttime");
    let sock = dir.join("admin.sock");
    let front = SocketAddr::from((LO, free_port()));
    // s1 holds each session until it has been quiet this long: a time worth averaging.
    let s1 = NamedServer::start("s1", LO, Duration::from_millis(300));
    let refused = free_port();
    let servers = format!("  server s1 {}\n  server s3 127.0.0.1:{refused}\n", s1.addr);
    let cfg = config(&sock, front, 100, &servers);
    let (ours, theirs) = side_by_side(test, &cfg, front, |front| after_sessions(&sock, front, 4));
    eprintln!("after the sessions: hapx {ours:?}, HAProxy {theirs:?}");
    let check = |who: &str, (counts, ttime, scaled): &(Vec<String>, i64, f64)| {
        // Rounded up at both ends: within one of each other.
        assert!(
            (*ttime as f64 - scaled).abs() <= 1.0 && *ttime > 0,
            "{who}: backend ttime {ttime}, s1's over the backend's sessions {scaled} ({counts:?})"
        );
    };
    check("hapx", &ours);
    if let Some(theirs) = theirs {
        check("HAProxy", &theirs);
        assert_eq!(ours.0, theirs.0, "counts: hapx beside HAProxy");
    }
}

/// One session to `s3` alone: its counts.
fn one_failed_session(sock: &Path, front: SocketAddr) -> Vec<String> {
    session(front);
    assert!(no_connection_open(sock), "the session stayed open");
    stats(sock, "s3", &["stot", "wretr", "econ", "rate_max"])
}

#[test]
fn each_attempt_counts_in_the_session_rate_of_a_period_begun_by_the_first() {
    let test = "each_attempt_counts_in_the_session_rate_of_a_period_begun_by_the_first";
    let dir = temp_dir("retry-rate");
    let sock = dir.join("admin.sock");
    let front = SocketAddr::from((LO, free_port()));
    let refused = free_port();
    let servers = format!("  server s3 127.0.0.1:{refused}\n");
    // Three turn-arounds of 200 ms: the four attempts fall well within one second, which
    // begins with the first, wherever the clock's second is.
    let cfg = config(&sock, front, 200, &servers);
    let (ours, theirs) = side_by_side(test, &cfg, front, |front| one_failed_session(&sock, front));
    eprintln!("one failed session: hapx {ours:?}, HAProxy {theirs:?}");
    let expected = ["stot=4", "wretr=3", "econ=1", "rate_max=4"];
    assert_eq!(ours, expected, "hapx");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx beside HAProxy");
    }
}
