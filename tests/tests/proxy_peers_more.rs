//! `show peers` and the `table` lines of `peers` sections, beside HAProxy 2.6 on loopback:
//! the same report of a pair of members (its stable fields exactly, the rest in shape), the
//! same names for a section's tables (in rules, fetches, `show table`, and on the wire, so
//! that hapx and HAProxy replicate them with each other), the same messages for a bad
//! `table` line, HAProxy's alerts when a peers listener cannot be bound, a local change
//! still to be pushed surviving what a peer teaches about the same entry, and how soon an
//! old process with peers exits at a soft stop: alone, or replaced by a successor whose
//! configuration lost its table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hapx_tests::peers::{
    HAPROXY, HeldServer, LO, at_once, check_output, complete, get, hapx, have_haproxy, holds,
    lone_config, socket, start_member, two_ports,
};
use hapx_tests::proxy::{Proxy, TestDir, cli, free_port, http_get, temp_dir};
use hapx_tests::wait::eventually;
use nix::sys::signal::Signal;

/// A pair's ports: each member's peer port and HTTP port.
struct Pair {
    peer: [u16; 2],
    http: [u16; 2],
}

impl Pair {
    fn new() -> Pair {
        Pair {
            peer: two_ports(),
            http: two_ports(),
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
        let config = self.config(dir, i);
        start_member(binary, dir, &format!("n{i}"), &config, self.http[i], None)
    }
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
    get(pair.http[0], "/");
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
            get(pair.http[0], "/");
        }
        let want = "key=127.0.0.1 use=0 gpc0=0 http_req_cnt=2";
        assert!(
            eventually(Duration::from_secs(10), || tables(&dir, 1).contains(want)),
            "{test}: n1 has {}",
            tables(&dir, 1)
        );
    }
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
        let _p = start_member(&binary, &dir, "n0", &config, front.port(), None);
        get(front.port(), "/");
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

/// Three members in a chain, b - a - c: a's section names all three, b's and c's only a
/// and themselves, so what b changes reaches c only through a. Each tracks requests by path.
struct Chain {
    peer: [u16; 3],
    http: [u16; 3],
}

const CHAIN: [&str; 3] = ["a", "b", "c"];

impl Chain {
    fn new() -> Chain {
        Chain {
            peer: [free_port(), free_port(), free_port()],
            http: [free_port(), free_port(), free_port()],
        }
    }

    fn config(&self, dir: &Path, i: usize) -> String {
        let members: &[usize] = match i {
            0 => &[0, 1, 2],
            _ => &[0, i],
        };
        let peers: String = (members.iter())
            .map(|&m| format!("  peer {} 127.0.0.1:{}\n", CHAIN[m], self.peer[m]))
            .collect();
        format!(
            "global\n  stats socket {} level admin\n\
             peers chain\n{peers}\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 path table tb\n\
             \x20 http-request return status 200\n\
             backend tb\n  stick-table type string len 8 size 100 expire 60s peers chain store http_req_cnt\n",
            self.socket(dir, i).display(),
            self.http[i]
        )
    }

    fn socket(&self, dir: &Path, i: usize) -> PathBuf {
        dir.join(format!("{}.sock", CHAIN[i]))
    }

    fn start(&self, dir: &Path, i: usize, binary: &Path) -> Proxy {
        let config = self.config(dir, i);
        start_member(binary, dir, CHAIN[i], &config, self.http[i], None)
    }

    fn get(&self, i: usize, path: &str) {
        get(self.http[i], path);
    }

    /// Whether member `i`'s table holds `path` counted `count` times.
    fn holds(&self, dir: &Path, i: usize, path: &str, count: u32) -> bool {
        holds(&self.socket(dir, i), "tb", path, count)
    }

    /// Whether member `i`'s tables are complete: learned, or past the wait for a lesson
    /// (`PEERS_F_RESYNC_REMOTE` in the section's flags).
    fn complete(&self, dir: &Path, i: usize) -> bool {
        complete(&self.socket(dir, i))
    }

    /// The connections member `i` has opened to member `to` (`new_conn` of `show peers`).
    fn connections(&self, dir: &Path, i: usize, to: usize) -> Option<u32> {
        let peers = cli(&self.socket(dir, i), "show peers");
        let (_, block) = peers.split_once(&format!("id={}(", CHAIN[to]))?;
        let (_, rest) = block.split_once("new_conn=")?;
        rest.split_whitespace().next()?.parse().ok()
    }
}

/// Member a (`binary`) changes an entry while member c is stopped, then learns from b a
/// newer count of it before its session with c has ended: the change is still queued for
/// c, so when c comes back, a pushes it, with b's count (HAProxy 2.6's update tree keeps
/// the entry where a local change put it). Without that, c would keep a's first count.
fn pending_change_survives_learning(test: &str, binary: &Path) {
    let dir = temp_dir(test);
    let chain = Chain::new();
    let haproxy = Path::new(HAPROXY);
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        assert!(eventually(Duration::from_secs(30), check), "{test}: {what}");
    };
    // a first, complete once nobody taught it; then b and c learn from it, completely: a
    // member that is not complete asks again for a lesson at its next session, and c's
    // lesson from a would bring it b's count too.
    let _a = chain.start(&dir, 0, binary);
    wait("a is complete", &|| chain.complete(&dir, 0));
    let _b = chain.start(&dir, 1, haproxy);
    let c = chain.start(&dir, 2, haproxy);
    wait("b and c are complete", &|| {
        chain.complete(&dir, 1) && chain.complete(&dir, 2)
    });
    // Both sessions of a work: what a changes reaches b and c.
    chain.get(0, "/w");
    wait("/w reaches b and c", &|| {
        chain.holds(&dir, 1, "/w", 1) && chain.holds(&dir, 2, "/w", 1)
    });
    let opened = chain
        .connections(&dir, 0, 2)
        .expect("a's show peers names c");
    c.signal(Signal::SIGSTOP);
    chain.get(0, "/k");
    wait("b learns a's /k", &|| chain.holds(&dir, 1, "/k", 1));
    for _ in 0..5 {
        chain.get(1, "/k");
    }
    wait("a learns b's /k", &|| chain.holds(&dir, 0, "/k", 6));
    // a's session with the silent c ended, and a connected again.
    wait("a reconnects to c", &|| {
        chain.connections(&dir, 0, 2).is_some_and(|n| n > opened)
    });
    c.signal(Signal::SIGCONT);
    wait("c gets b's /k through a", &|| chain.holds(&dir, 2, "/k", 6));
    assert!(chain.holds(&dir, 1, "/k", 6), "{test}");
}

#[test]
fn a_learned_entry_keeps_its_pending_local_change() {
    if !have_haproxy("a_learned_entry_keeps_its_pending_local_change") {
        return;
    }
    pending_change_survives_learning("peers-pending-haproxy", Path::new(HAPROXY));
    pending_change_survives_learning("peers-pending-hapx", &hapx());
}

/// How long `proxy` takes to exit from `since` (at most 20 s).
fn exits_after(test: &str, proxy: &mut Proxy, since: std::time::Instant) -> Duration {
    let status = proxy.wait_exit(Duration::from_secs(20));
    assert!(status.is_some(), "{test}: the old process did not exit");
    since.elapsed()
}

/// A process (`binary`) alone in its section, its tables complete (a complete process
/// teaches a successor, if there is one).
fn lone_member(test: &str, binary: &Path) -> (TestDir, Proxy) {
    let dir = temp_dir(test);
    let (peer, http) = (free_port(), free_port());
    let sock = dir.join("lone.sock");
    let config = lone_config(&sock, peer, http, "tbl", None);
    let proxy = start_member(binary, &dir, "local", &config, http, None);
    get(http, "/k");
    assert!(
        eventually(Duration::from_secs(30), || complete(&sock)),
        "{test}: the tables never completed"
    );
    (dir, proxy)
}

/// Nobody replaces the process: it does not wait for a successor to listen at its peers
/// address. HAProxy's old process retries its local member for about 3 s before it gives
/// up; hapx's stops at the first refusal (it waited 5 s before): it has stopped while
/// HAProxy's, told to stop after it, still tries.
#[test]
fn a_lone_soft_stop_does_not_wait_for_a_successor() {
    if !have_haproxy("a_lone_soft_stop_does_not_wait_for_a_successor") {
        return;
    }
    let runs: Vec<Box<dyn FnOnce() -> (TestDir, Proxy) + Send>> = vec![
        Box::new(|| lone_member("peers-lone-stop-hapx", &hapx())),
        Box::new(|| lone_member("peers-lone-stop-haproxy", Path::new(HAPROXY))),
    ];
    let mut members = at_once(runs);
    let [(_, ours), (_, theirs)] = &mut members[..] else {
        unreachable!("two runs")
    };
    ours.signal(Signal::SIGUSR1);
    theirs.signal(Signal::SIGUSR1);
    assert!(
        ours.wait_exit(Duration::from_secs(20)).is_some(),
        "hapx's process did not stop"
    );
    assert!(
        matches!(theirs.child.try_wait(), Ok(None)),
        "HAProxy's process stopped before hapx's"
    );
    assert!(
        theirs.wait_exit(Duration::from_secs(20)).is_some(),
        "HAProxy's process did not stop"
    );
}

/// A reload (`-sf`) whose new configuration renamed the replicated table, while the test
/// holds a request on the old process until the new one has learned: its response counts
/// in the old table after the lesson, an update the successor ignores and never
/// acknowledges. How long the old process takes to exit from the reload.
fn successor_without_the_table(test: &str, binary: &Path) -> Duration {
    let dir = temp_dir(test);
    let (peer, http) = (free_port(), free_port());
    let held = HeldServer::start();
    let sock = dir.join("r.sock");
    let config = |table| lone_config(&sock, peer, http, table, Some(held.port));
    let mut old = start_member(binary, &dir, "local", &config("tbl"), http, None);
    let front = SocketAddr::from((LO, http));
    let (status, _, _) = http_get(front, "/k", None);
    assert_eq!(status, 200, "{test}");
    assert!(
        eventually(Duration::from_secs(30), || complete(&sock)),
        "{test}: the tables never completed"
    );
    let slow = std::thread::spawn(move || http_get(front, "/held", None).0);
    held.wait_arrival();
    let reloaded = std::time::Instant::now();
    let _new = start_member(
        binary,
        &dir,
        "local",
        &config("tbl2"),
        http,
        Some(old.pid()),
    );
    // The new process's tables are complete once the old one's lesson is over.
    assert!(
        eventually(Duration::from_secs(30), || complete(&sock)),
        "{test}: the new process never learned"
    );
    held.release();
    let exit = exits_after(test, &mut old, reloaded);
    assert_eq!(slow.join().expect("the slow request"), 200, "{test}");
    exit
}

/// The old process does not wait for acknowledgements of a table its successor does not
/// have (hapx waited 5 s of silence before; both exit once the held request is answered).
#[test]
fn a_successor_without_the_table_is_not_waited_for() {
    if !have_haproxy("a_successor_without_the_table_is_not_waited_for") {
        return;
    }
    let runs: Vec<Box<dyn FnOnce() -> Duration + Send>> = vec![
        Box::new(|| successor_without_the_table("peers-renamed-haproxy", Path::new(HAPROXY))),
        Box::new(|| successor_without_the_table("peers-renamed-hapx", &hapx())),
    ];
    let [theirs, ours] = at_once(runs)[..] else {
        unreachable!("two runs")
    };
    eprintln!("renamed table: HAProxy's old process exits after {theirs:?}, hapx's after {ours:?}");
    assert!(
        ours < Duration::from_secs(4),
        "hapx took {ours:?} (HAProxy {theirs:?})"
    );
    assert!(
        ours <= theirs + Duration::from_secs(2),
        "hapx took {ours:?}, HAProxy {theirs:?}"
    );
}
