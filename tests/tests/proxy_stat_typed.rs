//! `show stat typed` and `show info typed` side by side with HAProxy 2.6: HAProxy's typed
//! form of the same fields (`S.3.1.4.scur.1:MGP:u32:0`), each line word for word but the
//! values the clock decides. Each proxy's typed output is first checked against its own
//! CSV and `show info` (the same values, at HAProxy's positions); then every line hapx
//! prints must be HAProxy's, and a line HAProxy prints that hapx does not is allowed only
//! for a field hapx's CSV leaves empty too (told by the CSV tests, not this one's subject).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use hapx_tests::proxy::{cli, csv_fields, free_port, http_get, temp_dir, wait_until};
use hapx_tests::proxy_rules::{EchoServer, side_by_side};

/// Fields whose values follow the clock (ages, durations, averages and rates of times).
const TIMED: [&str; 18] = [
    "lastchg",
    "downtime",
    "check_duration",
    "agent_duration",
    "lastsess",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "rate",
    "req_rate",
    "conn_rate",
    "throttle",
    "last_chk",
];

/// Fields counting how many connections were open at once: the start's readiness probe,
/// which a proxy may take from its accept queue only once the test's request came (after
/// the test saw no connection open), can add one (seen in CI: HAProxy's frontend `smax` 2).
const OVERLAPPED: [&str; 1] = ["smax"];

/// A typed stat line's key (`S.3.1.4.scur.1`) and the rest (`MGP:u32`, value).
type Typed = BTreeMap<String, (String, String)>;

/// Parses typed lines: `key:tags:type:value`.
fn typed_lines(text: &str) -> Typed {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.splitn(4, ':');
            let mut next = || parts.next().unwrap_or_default().to_string();
            let (key, tags, kind, value) = (next(), next(), next(), next());
            // A string field is written as a CSV cell (quoted when it needs to be).
            let value = csv_fields(&value).into_iter().next().unwrap_or_default();
            (key, (format!("{tags}:{kind}"), value))
        })
        .collect()
}

/// The CSV's filled cells as the typed keys they make: `S.iid.sid.pos.name.1` -> value.
fn csv_as_typed(csv: &str) -> HashMap<String, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .filter(|c| !c.is_empty() && *c != "-")
        .collect();
    let mut out = HashMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let cells: Vec<String> = csv_fields(line).into_iter().filter(|c| c != "-").collect();
        let row: HashMap<&str, &str> = header
            .iter()
            .zip(&cells)
            .map(|(h, v)| (*h, v.as_str()))
            .collect();
        let kind = match row.get("type").copied() {
            Some("0") => "F",
            Some("1") => "B",
            Some("2") => "S",
            _ => "L",
        };
        let (iid, sid) = (row["iid"], row["sid"]);
        for (position, name) in header.iter().enumerate() {
            let value = row.get(name).copied().unwrap_or_default();
            if !value.is_empty() {
                out.insert(
                    format!("{kind}.{iid}.{sid}.{position}.{name}.1"),
                    value.to_string(),
                );
            }
        }
    }
    out
}

/// The field name of a typed key.
fn field(key: &str) -> &str {
    key.split('.').nth(4).unwrap_or_default()
}

/// What one proxy shows: its typed stats, its CSV as typed keys, its typed info lines and
/// its `show info`.
struct Seen {
    stat: Typed,
    csv: HashMap<String, String>,
    info: Vec<String>,
    info_plain: String,
}

/// Each typed stat line holds its CSV cell's value, and every filled cell has its line;
/// each typed info line the value `show info` gives.
fn consistent(who: &str, seen: &Seen) {
    for (key, (_, value)) in &seen.stat {
        if value.is_empty() {
            // An empty string: an empty cell.
            assert!(!seen.csv.contains_key(key), "{who}: typed {key} empty");
            continue;
        }
        // The CSV is read by a second command: a clock's value may have moved on since.
        let Some(cell) = seen.csv.get(key) else {
            panic!("{who}: typed {key}={value} has no CSV cell");
        };
        if !TIMED.contains(&field(key)) {
            assert_eq!(cell, value, "{who}: typed {key} against the CSV");
        }
    }
    let mut missing: Vec<&String> = seen
        .csv
        .keys()
        .filter(|k| !seen.stat.contains_key(*k))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{who}: CSV cells without a typed line: {missing:?}"
    );
    // `show info`'s lines in order, the values of the steady ones the same.
    let plain: Vec<(&str, &str)> = seen
        .info_plain
        .lines()
        .filter_map(|l| l.split_once(": "))
        .collect();
    let typed: Vec<(&str, &str)> = seen.info.iter().map(|l| info_name_value(l)).collect();
    let names =
        |lines: &[(&str, &str)]| lines.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(&typed),
        names(&plain),
        "{who}: show info typed's fields"
    );
    for (name, value) in &typed {
        if STEADY_INFO.contains(name) {
            assert!(
                plain.contains(&(name, value)),
                "{who}: {name}: {value} in show info"
            );
        }
    }
}

/// `show info` fields that do not change between two commands.
const STEADY_INFO: [&str; 9] = [
    "Name", "Version", "Nbthread", "Pid", "Maxconn", "Maxsock", "Ulimit-n", "node", "Tainted",
];

/// A typed info line's (name, value): `6.Pid.1:SGP:u32:7`.
fn info_name_value(line: &str) -> (&str, &str) {
    let mut parts = line.splitn(4, ':');
    let key = parts.next().unwrap_or_default();
    let value = parts.nth(2).unwrap_or_default();
    let name = key
        .split_once('.')
        .map_or("", |(_, rest)| rest.strip_suffix(".1").unwrap_or(rest));
    (name, value)
}

#[test]
fn typed_stats_and_info_are_haproxys() {
    let dir = temp_dir("stat-typed");
    let sock = dir.join("admin.sock");
    let echo = EchoServer::start("e");
    let (port, tcp_port) = (free_port(), free_port());
    let e = echo.addr.port();
    let conf = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         frontend ft\n  mode tcp\n  bind 127.0.0.1:{tcp_port}\n  default_backend bt\n\
         backend b\n  cookie SRV insert\n\
         \x20 server a 127.0.0.1:{e} cookie a maxconn 10 maxqueue 5 weight 20\n\
         \x20 server t 127.0.0.1:{e} track c\n\
         \x20 server k 127.0.0.1:{e} backup\n\
         \x20 server m 127.0.0.1:9 disabled\n\
         \x20 server c 127.0.0.1:{e} check inter 100 rise 1\n\
         backend bt\n  mode tcp\n  server s 127.0.0.1:{e}\n",
        sock.display()
    );
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side("stat-typed", &conf, front, |front| {
        // The start's readiness probe may still be open: `smax` would then count two.
        assert!(hapx_tests::proxy::no_connection_open(&sock));
        let (status, _, _) = http_get(front, "/", None);
        assert_eq!(status, 200);
        assert!(hapx_tests::proxy::no_connection_open(&sock));
        let checked = || {
            let csv = cli(&sock, "show stat");
            hapx_tests::proxy::stat_row(&csv, "b", "c")
                .and_then(|row| row.get("check_status").cloned())
                .is_some_and(|s| s.trim_start_matches("* ") == "L4OK")
        };
        assert!(
            wait_until(Duration::from_secs(20), checked),
            "c never checked"
        );
        Seen {
            stat: typed_lines(&cli(&sock, "show stat typed")),
            csv: csv_as_typed(&cli(&sock, "show stat")),
            info: cli(&sock, "show info typed")
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            info_plain: cli(&sock, "show info"),
        }
    });
    consistent("hapx-proxy", &ours);
    // A server's `act` is a status, a backend's a metric (the proxies' ids count from 2).
    let meta = |key: &str| {
        ours.stat
            .get(key)
            .map(|(meta, value)| format!("{meta}:{value}"))
    };
    assert_eq!(meta("S.4.1.19.act.1").as_deref(), Some("SGP:u32:1"));
    assert_eq!(meta("B.4.0.19.act.1").as_deref(), Some("MGP:u32:3"));
    let Some(theirs) = theirs else {
        return;
    };
    consistent("HAProxy", &theirs);
    agree_on_stats(&ours, &theirs);
    // Info: every line's position, name, tags and type (the values are each process's).
    let heads = |seen: &Seen| -> Vec<String> {
        seen.info
            .iter()
            .map(|l| l.splitn(4, ':').take(3).collect::<Vec<_>>().join(":"))
            .collect()
    };
    assert_eq!(heads(&ours), heads(&theirs));
}

/// Every typed stat line of hapx's is HAProxy's (values aside from the clock's); a line
/// only HAProxy prints is for a field hapx's CSV leaves empty.
fn agree_on_stats(ours: &Seen, theirs: &Seen) {
    let timed = |key: &str| TIMED.contains(&field(key));
    for (key, (meta, value)) in &ours.stat {
        let Some((their_meta, their_value)) = theirs.stat.get(key) else {
            panic!(
                "{key}:{meta}:{value} is not in HAProxy's: {:?}",
                theirs.stat
            );
        };
        assert_eq!(meta, their_meta, "{key}");
        if OVERLAPPED.contains(&field(key)) {
            let (a, b) = (value.parse::<u64>(), their_value.parse::<u64>());
            assert!(
                matches!((a, b), (Ok(a), Ok(b)) if a.abs_diff(b) <= 1),
                "{key}: {value}, HAProxy's {their_value}"
            );
        } else if !timed(key) {
            assert_eq!(value, their_value, "{key}");
        }
    }
    let only_theirs: Vec<&String> = theirs
        .stat
        .keys()
        .filter(|k| !ours.stat.contains_key(*k))
        .collect();
    for key in only_theirs {
        assert!(
            !ours.csv.contains_key(key),
            "{key}: hapx's CSV fills it, its typed output does not"
        );
    }
}
