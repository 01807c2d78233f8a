//! `show peers` and the `table` lines of `peers` sections, beside HAProxy 2.6 on loopback:
//! the same report of a pair of members (its stable fields exactly, the rest in shape), the
//! same names for a section's tables (in rules, fetches, `show table`, and on the wire, so
//! that hapx and HAProxy replicate them with each other), the same messages for a bad
//! `table` line, and HAProxy's alerts when a peers listener cannot be bound.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, http_get, temp_dir};
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

fn hapx() -> PathBuf {
    hapx_tests::bins::path("hapx-proxy")
}

fn have_haproxy(test: &str) -> bool {
    hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy 2.6")
}

/// A pair's ports: each member's peer port and HTTP port.
struct Pair {
    peer: [u16; 2],
    http: [u16; 2],
}

impl Pair {
    fn new() -> Pair {
        Pair {
            peer: [free_port(), free_port()],
            http: [free_port(), free_port()],
        }
    }

    /// Member `i`: a section with two tables of its own, and a proxy's table naming it; a
    /// frontend tracks each request in a section table and in the proxy's.
    fn config(&self, dir: &Path, i: usize) -> String {
        format!(
            "global\n  stats socket {} level admin\n\
             peers mypeers\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             \x20 table t1 type ip size 100 expire 60s store http_req_cnt,gpc0\n\
             \x20 table t2 type string len 16 size 1k store conn_cnt\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 src table mypeers/t1\n\
             \x20 http-request track-sc1 src table tb\n  http-request return status 200\n\
             backend tb\n  stick-table type ip size 100 peers mypeers store conn_cnt\n",
            socket(dir, i).display(),
            self.peer[0],
            self.peer[1],
            self.http[i]
        )
    }

    fn start(&self, dir: &Path, i: usize, binary: &Path) -> Proxy {
        let front = SocketAddr::from((LO, self.http[i]));
        let extra = ["-L".to_string(), format!("n{i}")];
        let name = format!("n{i}");
        Proxy::start_with(
            binary.into(),
            dir,
            &name,
            &self.config(dir, i),
            front,
            &extra,
        )
    }
}

fn socket(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("n{i}.sock"))
}

/// Fields of `show peers` that are HAProxy's memory or timers, or counters that depend on
/// when connections were tried (and how many changes a request makes).
const UNSTABLE: &[&str] = &[
    "resync_timeout",
    "task_calls",
    "last_hdshk",
    "reconnect",
    "heartbeat",
    "new_conn",
    "coll",
    "tx_hbt",
    "rx_hbt",
    "last_acked",
    "last_pushed",
    "last_get",
    "update",
    "localupdate",
    "commitupdate",
];

/// A member's "alive" flag, which HAProxy sets and clears with its reconnection timer.
const ALIVE: u64 = 0x2000_0000;

/// `show peers` with its stable fields as they are, and the others masked: addresses
/// (`0x...`), the date, the timers and counters of [`UNSTABLE`], a source port.
fn stable(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        out.push_str(&line[..indent]);
        let words: Vec<String> = line.split_whitespace().map(stable_word).collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

fn stable_word(word: &str) -> String {
    if word.starts_with("0x") {
        return match word.ends_with(':') {
            true => "PTR:".into(),
            false => "PTR".into(),
        };
    }
    if word.starts_with('[') && word.ends_with(']') {
        return "[DATE]".into();
    }
    let Some((key, value)) = word.split_once(['=', ':']) else {
        return word.into();
    };
    let sep = &word[key.len()..=key.len()];
    if value.starts_with("0x") && sep == ":" {
        return format!("{key}:PTR");
    }
    if UNSTABLE.contains(&key) {
        return format!("{key}=*");
    }
    if key == "flags" {
        let bits = u64::from_str_radix(value.trim_start_matches("0x"), 16).unwrap_or(u64::MAX);
        return format!("flags=0x{:x}", bits & !ALIVE);
    }
    if key == "src" {
        let host = value.rsplit_once(':').map_or(value, |(h, _)| h);
        return format!("src={host}:*");
    }
    word.into()
}

/// Table dumps without the entries' addresses and expiry.
fn tables(dir: &Path, i: usize) -> String {
    let mut out = cli(&socket(dir, i), "show table");
    for name in ["mypeers/t1", "tb"] {
        out += &cli(&socket(dir, i), &format!("show table {name}"));
    }
    (out.lines())
        .map(|l| {
            (l.split_whitespace())
                .filter(|w| !w.starts_with("0x") && !w.starts_with("exp="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one pair of `binary` reports once settled: member n0 starts alone and gives up
/// waiting for a lesson; n1 starts and learns from it; a request through n0 reaches n1.
/// `show peers` of each, `show peers mypeers` and of an unknown section, and n1's tables.
fn pair_report(test: &str, pair: &Pair, binary: &Path) -> Vec<String> {
    let dir = temp_dir(test);
    let peers = |i| cli(&socket(&dir, i), "show peers");
    let _n0 = pair.start(&dir, 0, binary);
    // No member answered within 5 s: its tables are what they are (remote resync timed out).
    assert!(
        eventually(Duration::from_secs(15), || peers(0).contains("flags=0x33 ")),
        "{test}: n0 shows {}",
        peers(0)
    );
    let _n1 = pair.start(&dir, 1, binary);
    // n1 learned from n0 (a remote lesson, finished), which it asked for.
    let settled = || {
        let (p0, p1) = (peers(0), peers(1));
        p0.contains("flags=0x4033 ")
            && p0.contains("id=n1(remote,active)")
            && p1.contains("flags=0x2213 ")
            && p1.contains("id=n0(remote,active)")
    };
    assert!(
        eventually(Duration::from_secs(15), settled),
        "{test}: n0 shows {}\nn1 shows {}",
        peers(0),
        peers(1)
    );
    let (status, _, _) = http_get(SocketAddr::from((LO, pair.http[0])), "/", None);
    assert_eq!(status, 200);
    let replicated = || {
        let t = tables(&dir, 1);
        t.contains("key=127.0.0.1 use=0 gpc0=0 http_req_cnt=1") && t.contains("conn_cnt=1")
    };
    assert!(
        eventually(Duration::from_secs(10), replicated),
        "{test}: n1 has {}",
        tables(&dir, 1)
    );
    // The tables each member last defined to the other are known on both sides.
    let defined = || {
        let (p0, p1) = (peers(0), peers(1));
        p0.contains("last_local_table:") && p1.contains("remote_table:")
    };
    assert!(eventually(Duration::from_secs(10), defined), "{test}");
    vec![
        stable(&peers(0)),
        stable(&peers(1)),
        stable(&cli(&socket(&dir, 1), "show peers mypeers")),
        stable(&cli(&socket(&dir, 1), "show peers dict")),
        cli(&socket(&dir, 1), "show peers nosuch"),
        tables(&dir, 1),
    ]
}

/// A pair of hapx reports what a pair of HAProxy reports.
#[test]
fn show_peers_is_haproxys() {
    if !have_haproxy("show_peers_is_haproxys") {
        return;
    }
    let pair = Pair::new();
    let theirs = pair_report("peers-show-haproxy", &pair, Path::new(HAPROXY));
    let ours = pair_report("peers-show-hapx", &pair, &hapx());
    let what = [
        "n0's show peers",
        "n1's show peers",
        "show peers mypeers",
        "show peers dict",
        "show peers nosuch",
        "n1's tables",
    ];
    for ((what, ours), theirs) in what.iter().zip(&ours).zip(&theirs) {
        assert_eq!(ours, theirs, "{what}");
    }
}

/// A section's table made by traffic through one member reaches the other, HAProxy one
/// side and hapx the other (its name on the wire is HAProxy's).
#[test]
fn section_tables_replicate_with_haproxy() {
    if !have_haproxy("section_tables_replicate_with_haproxy") {
        return;
    }
    for (test, binaries) in [
        ("peers-table-hapx-haproxy", [hapx(), PathBuf::from(HAPROXY)]),
        ("peers-table-haproxy-hapx", [PathBuf::from(HAPROXY), hapx()]),
    ] {
        let dir = temp_dir(test);
        let pair = Pair::new();
        let _n0 = pair.start(&dir, 0, &binaries[0]);
        let _n1 = pair.start(&dir, 1, &binaries[1]);
        for _ in 0..2 {
            let (status, _, _) = http_get(SocketAddr::from((LO, pair.http[0])), "/", None);
            assert_eq!(status, 200);
        }
        let want = "key=127.0.0.1 use=0 gpc0=0 http_req_cnt=2";
        assert!(
            eventually(Duration::from_secs(10), || tables(&dir, 1).contains(want)),
            "{test}: n1 has {}",
            tables(&dir, 1)
        );
    }
}

/// The messages of `-c -L n0` (without the process id), and its exit status.
fn check_output(binary: &Path, config: &Path) -> (Vec<String>, Option<i32>) {
    let out = Command::new(binary)
        .args(["-c", "-L", "n0", "-f"])
        .arg(config)
        .output()
        .expect("running -c");
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|l| match l.split_once(") : ") {
            Some((level, rest)) => format!("{} {rest}", level.split(" (").next().unwrap_or(level)),
            None => l.to_string(),
        })
        .collect();
    (lines, out.status.code())
}

/// `table` lines and references to their tables as HAProxy 2.6 reads them: the same
/// messages and exit status.
#[test]
fn table_lines_read_as_haproxys() {
    if !have_haproxy("table_lines_read_as_haproxys") {
        return;
    }
    let cases = [
        "  table t1 type ip size 100\n",
        // A repeated name is accepted.
        "  table t1 type ip size 100\n  table t1 type string size 10\n",
        "  table\n",
        "  table t3 type foo size 1\n",
        "  table t4 type ip size 10 peers other\n",
        "  table t5 type ip\n",
        "  table t9 size 10\n",
        "  table t6 type ip size 10 nopurge expire 10s store gpc0,http_req_rate(10s)\n",
        "  table t7 type ip size 1 expire 30d\n",
        "  table t8 type ip size 1 store gpc0,gpc0\n",
        "  table t4 type string len 0 size 1\n",
        "  table t1 type ip size 10\nbackend b\n  mode http\n  http-request track-sc0 src table t1\n",
        "  table t1 type ip size 10\nbackend b\n  mode http\n  http-request track-sc0 src table mypeers/t1\n\
         \x20 http-request track-sc1 src table mypeers/t7\n",
        "  table t6 type ip size 10 store gpc0\nbackend b\n  mode http\n\
         \x20 http-request set-var(txn.x) sc_get_gpc0(0,t6)\n\
         \x20 http-request set-var(txn.y) src_get_gpc0(mypeers/t6)\n",
    ];
    let dir = temp_dir("peers-table-messages");
    let path = dir.join("t.cfg");
    for case in cases {
        let text = format!(
            "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             peers mypeers\n  peer n0 127.0.0.1:{}\n{case}frontend f\n  bind 127.0.0.1:{}\n",
            free_port(),
            free_port()
        );
        std::fs::write(&path, &text).unwrap();
        let theirs = check_output(Path::new(HAPROXY), &path);
        let ours = check_output(&hapx(), &path);
        assert_eq!(ours, theirs, "for:\n{case}");
    }
}

/// A section removed (no member is this process) or disabled keeps its tables, which
/// `show table` lists as HAProxy's, in the order tables are declared; `show peers` lists
/// neither section.
#[test]
fn tables_of_sections_not_running_stay() {
    if !have_haproxy("tables_of_sections_not_running_stay") {
        return;
    }
    let mut outputs = Vec::new();
    for (test, binary) in [
        ("peers-table-list-haproxy", PathBuf::from(HAPROXY)),
        ("peers-table-list-hapx", hapx()),
    ] {
        let dir = temp_dir(test);
        let front = SocketAddr::from((LO, free_port()));
        let sock = dir.join("s.sock");
        let config = format!(
            "global\n  stats socket {} level admin\n\
             backend ba\n  stick-table type ip size 100\n\
             peers removed\n  peer n1 127.0.0.1:{}\n  table t1 type ip size 100\n  table t2 type integer size 5\n\
             peers off\n  disabled\n  peer n0 127.0.0.1:{}\n  table t3 type ip size 100\n\
             frontend f\n  mode http\n  bind {front}\n  timeout client 1s\n\
             \x20 http-request track-sc0 src table removed/t1\n  http-request track-sc1 src table off/t3\n\
             \x20 http-request return status 200\n\
             backend bz\n  stick-table type ip size 100\n",
            sock.display(),
            free_port(),
            free_port()
        );
        let extra = ["-L".to_string(), "n0".to_string()];
        let _p = Proxy::start_with(binary, &dir, "p", &config, front, &extra);
        let (status, _, _) = http_get(front, "/", None);
        assert_eq!(status, 200);
        outputs.push((
            cli(&sock, "show table"),
            cli(&sock, "show peers"),
            cli(&sock, "show table off/t3").lines().count(),
        ));
    }
    assert_eq!(outputs[1], outputs[0]);
}

/// A peers listener whose address is taken: HAProxy's alerts, and the start fails.
#[test]
fn a_busy_peers_address_fails_the_start() {
    if !have_haproxy("a_busy_peers_address_fails_the_start") {
        return;
    }
    let taken = std::net::TcpListener::bind((LO, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = temp_dir("peers-busy");
    let path = dir.join("busy.cfg");
    let config = format!(
        "peers pp\n  peer n0 127.0.0.1:{port}\n  peer n1 127.0.0.1:{}\n\
         backend tb\n  stick-table type ip size 100 peers pp\n",
        free_port()
    );
    std::fs::write(&path, config).unwrap();
    let run = |binary: &Path| {
        let out = Command::new(binary)
            .args(["-db", "-L", "n0", "-f"])
            .arg(&path)
            .output()
            .expect("starting");
        let text = String::from_utf8_lossy(&out.stderr).replace(&*binary.to_string_lossy(), "BIN");
        let alerts: Vec<String> = (text.lines())
            .filter(|l| l.starts_with("[ALERT]"))
            .map(|l| l.split_once(") : ").map_or(l, |(_, rest)| rest).to_string())
            .collect();
        (alerts, out.status.code())
    };
    let theirs = run(Path::new(HAPROXY));
    assert_eq!(theirs.1, Some(1), "{theirs:?}");
    assert_eq!(run(&hapx()), theirs);
}
