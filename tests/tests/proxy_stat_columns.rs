//! `show stat` beside HAProxy 2.6, cell for cell: one configuration with every kind of row (a
//! TCP frontend and backend, an HTTP frontend and backend, `listen` sections, servers with
//! and without checks, backups, a server in maintenance, a stats listener, a backend and a
//! `listen` whose `tcp-request content` rule rejects), the same small traffic through
//! hapx-proxy and then through HAProxy (HTTP requests answered 200, 404 by a backend's
//! `http-request return`, 403 by a frontend's and by a backend's `http-request deny`; TCP
//! sessions, two of them rejected), then every column of every row compared, except those
//! that must differ:
//!
//! - `pid`: the process number of each run;
//! - `lastchg`, `downtime`, `lastsess`, `last_chk`, `check_duration`: seconds or
//!   milliseconds measured on each run's clock;
//! - `qtime`, `ctime`, `rtime`, `ttime` and their `_max`: milliseconds measured per session;
//! - `rate`, `rate_max`, `req_rate`, `req_rate_max`, `conn_rate`, `conn_rate_max`: counts
//!   over the current second of wall time, which the traffic may straddle;
//! - `bout` of the stats listener: the pages differ (HAProxy's version, pid, node...).
//!
//! The HTTP servers with checks are backups, which the traffic never reaches: a check's
//! connection counts in use as it opens, with the requests' then in flight, so a check
//! during a request makes `need_conn_est` 2 instead of 1, in HAProxy too. (A TCP session's
//! connection is not in use once open: `bt/t1` takes both.)
//!
//! Global `maxconn` is set: without it, each derives it from the open-files limit and hapx
//! keeps room for descriptors HAProxy does not hold (`limits`), so `slim` would differ.
//!
//! Both run one thread (`nbthread 1`): HAProxy's accept loop counts a connection in the
//! frontend's `feconn` and in `actconn` before each `accept()`, the last one included (which
//! finds nothing and uncounts it). With several threads, another thread may be in that
//! window when a session logs (`%ac/%fc` read 2/2 for the only session of `fr`), and two
//! threads woken for one connection both count it, the one that gets it recording 2 as
//! `smax` (seen on `stats` after `scur` read 0). One thread runs its accept loop to the end
//! before any session of it, so these counts are then the sessions' own.
//!
//! Not compared yet, as hapx does not count them: the SSL and HTTP/1 stats modules'
//! columns (`ssl_*`, `h1_*`), which HAProxy fills on frontend and backend rows (`ssl_*` on
//! servers' too).
//!
//! The `httplog` and `tcplog` lines are compared too: an answer or a rejection decided by a
//! backend's own rules names that backend (`bh/<NOSRV>`), where the session counts (`stot`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, csv_fields, free_port, no_connection_open, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, side_by_side};
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Columns whose values are measured on each run's clock or process (see the top comment).
const MEASURED: &[&str] = &[
    "pid",
    "lastchg",
    "downtime",
    "lastsess",
    "last_chk",
    "check_duration",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "rate",
    "rate_max",
    "req_rate",
    "req_rate_max",
    "conn_rate",
    "conn_rate_max",
];

/// Columns of stats modules hapx does not count (see the top comment).
const NOT_COUNTED: &[&str] = &["ssl_", "h1_"];

/// Every `show stat` row as "proxy/server" -> column -> value.
type Rows = BTreeMap<String, BTreeMap<String, String>>;

fn rows(csv: &str) -> Rows {
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .map(|h| csv_fields(h.trim_start_matches("# ")))
        .unwrap_or_default();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let fields = csv_fields(l);
            let key = format!("{}/{}", fields[0], fields[1]);
            let row = (header.iter())
                .zip(fields.clone())
                .filter(|(h, _)| !h.is_empty() && !MEASURED.contains(&h.as_str()))
                .filter(|(h, _)| !NOT_COUNTED.iter().any(|p| h.starts_with(p)))
                .filter(|(h, _)| !(fields[0] == "stats" && *h == "bout"))
                .map(|(h, v)| (h.clone(), v))
                .collect();
            (key, row)
        })
        .collect()
}

/// Sends one request on its own connection; the status code.
fn status_of(addr: SocketAddr, path: &str) -> u16 {
    let mut conn = TcpStream::connect(addr).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).expect("sending");
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Opens a TCP session, reads the server's greeting (none when rejected), then closes.
fn tcp_session(addr: SocketAddr) -> String {
    let conn = TcpStream::connect(addr).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut line = String::new();
    let _ = BufReader::new(&conn).read_line(&mut line);
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = (&conn).read_to_end(&mut rest);
    line
}

/// The `show stat` CSV once no session is open and every check has a result.
fn settled_csv(sock: &Path) -> String {
    let settled = |csv: &str| {
        rows(csv).values().all(|row| {
            let col = |c: &str| row.get(c).map_or("", String::as_str);
            let checking = col("check_status").starts_with('*') || col("check_status") == "INI";
            col("scur") == "0" && !checking
        })
    };
    eventually(Duration::from_secs(10), || settled(&cli(sock, "show stat")));
    cli(sock, "show stat")
}

/// A log line without its timestamps, client port and timers.
fn log_shape(line: &str) -> String {
    let fields: Vec<&str> = line.split(' ').collect();
    // client ip:port [date] frontend backend/server timers status bytes ...
    let keep = |i: usize, f: &str| match i {
        0 => f.split(':').next().unwrap_or("").to_string(),
        1 | 4 => "_".into(),
        _ => f.to_string(),
    };
    (fields.iter().enumerate())
        .map(|(i, f)| keep(i, f))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_column_of_every_row_matches_haproxy() {
    let dir = temp_dir("stat-columns");
    let sock = dir.join("stats.sock");
    let syslog = Syslog::bind();
    let (t1, t2) = (
        NamedServer::start("t1", LO, Duration::from_secs(5)),
        NamedServer::start("t2", LO, Duration::from_secs(5)),
    );
    let echo = EchoServer::start("e");
    let [p_tcp, p_rej, p_lrej, p_http, p_listen, p_stats] = [0; 6].map(|_| free_port());
    let cfg = format!(
        "global\n    maxconn 1000\n    nbthread 1\n    stats socket {sock} level admin\n\
         \x20   log {syslog} local0\n\
         defaults\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   log global\n\
         frontend ft\n    mode tcp\n    bind 127.0.0.1:{p_tcp}\n    default_backend bt\n\
         frontend fr\n    mode tcp\n    option tcplog\n    bind 127.0.0.1:{p_rej}\n    default_backend br\n\
         backend bt\n    mode tcp\n    server t1 {t1} check inter 500ms\n    server t2 {t2}\n\
         backend br\n    mode tcp\n    tcp-request content reject\n    server r1 {t1}\n\
         listen lr\n    mode tcp\n    option tcplog\n    bind 127.0.0.1:{p_lrej}\n\
         \x20   tcp-request content reject\n    server r2 {t2}\n\
         frontend fh\n    mode http\n    option httplog\n    bind 127.0.0.1:{p_http}\n\
         \x20   http-request deny if {{ path /fdeny }}\n    default_backend bh\n\
         backend bh\n    mode http\n\
         \x20   http-request deny if {{ path /bdeny }}\n\
         \x20   http-request return status 404 if {{ path /missing }}\n\
         \x20   server h1 {echo}\n    server h2 {echo}\n\
         \x20   server hb {echo} backup check inter 500ms\n    server hm {echo} disabled\n\
         listen ls\n    mode http\n    option httplog\n    bind 127.0.0.1:{p_listen}\n\
         \x20   server l1 {echo}\n    server lb {echo} backup check inter 500ms\n\
         listen stats\n    mode http\n    bind 127.0.0.1:{p_stats}\n    stats enable\n\
         \x20   stats uri /st\n",
        sock = sock.display(),
        syslog = syslog.addr,
        t1 = t1.addr,
        t2 = t2.addr,
        echo = echo.addr,
    );
    let at = |port: u16| SocketAddr::from((LO, port));
    let (ours, theirs) = side_by_side("stat-columns", &cfg, at(p_tcp), |_| {
        // Each session ends, in the proxy too, before the next starts: `smax` is then 1 and
        // `%ac`/`%fc` count the logged session alone.
        let ended = || assert!(no_connection_open(&sock), "a session stayed open");
        let greetings: Vec<String> = [p_tcp, p_tcp, p_tcp, p_rej, p_lrej]
            .map(|p| {
                let greeting = tcp_session(at(p));
                ended();
                greeting
            })
            .to_vec();
        let statuses: Vec<u16> = [
            (p_http, "/"),
            (p_http, "/a"),
            (p_http, "/fdeny"),
            (p_http, "/bdeny"),
            (p_http, "/missing"),
            (p_listen, "/"),
            (p_stats, "/st"),
            (p_stats, "/st;csv"),
        ]
        .map(|(p, path)| {
            let status = status_of(at(p), path);
            ended();
            status
        })
        .to_vec();
        // 13 lines: 5 TCP sessions, 8 HTTP requests; those of `option httplog` and `tcplog`
        // compared.
        let mut logs: Vec<String> = (syslog.lines(13).iter())
            .filter(|l| {
                [" fh ", " ls ", " fr ", " lr "]
                    .iter()
                    .any(|f| l.contains(f))
            })
            .map(|l| log_shape(l))
            .collect();
        logs.sort();
        (greetings, statuses, logs, rows(&settled_csv(&sock)))
    });
    let Some(theirs) = theirs else { return };
    eprintln!("hapx: {:?} {:?}", ours.0, ours.1);
    eprintln!("HAProxy: {:?} {:?}", theirs.0, theirs.1);
    let mut differences = Vec::new();
    for (key, row) in &theirs.3 {
        let Some(our_row) = ours.3.get(key) else {
            differences.push(format!("{key}: no row in hapx"));
            continue;
        };
        for (col, value) in row {
            let our = our_row.get(col).map_or("", String::as_str);
            if our != value {
                differences.push(format!("{key} {col}: hapx {our:?}, HAProxy {value:?}"));
            }
        }
    }
    differences.extend(
        (ours.3.keys())
            .filter(|k| !theirs.3.contains_key(*k))
            .map(|k| format!("{k}: no row in HAProxy")),
    );
    assert_eq!((&ours.0, &ours.1), (&theirs.0, &theirs.1));
    assert_eq!(ours.2, theirs.2, "the log lines");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
