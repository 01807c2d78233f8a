//! Stick-table replication (`peers` sections) between hapx and HAProxy 2.6 on loopback: an
//! entry made by traffic through one process appears with the same key and counters in the
//! other's `show table`, both ways, between two hapx processes too; a restarted process
//! learns the whole table from its peer (resync); a section error is HAProxy's text.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::peers::{
    HAPROXY, LO, at_once, check_output, complete, get, hapx, have_haproxy, socket, start_member,
    two_ports, varint,
};
use hapx_tests::proxy::{NamedServer, Proxy, cli, free_port, http_raw, temp_dir};
use hapx_tests::wait::eventually;

/// The ports of a pair: each member's peer port and HTTP port.
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

    /// Member `i`'s configuration: a frontend counting requests per source into a
    /// replicated table.
    fn config(&self, dir: &Path, i: usize) -> String {
        format!(
            "global\n  stats socket {} level admin\n\
             peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 src table tb\n  http-request return status 200\n\
             backend tb\n  stick-table type ip size 100 expire 60s peers pair store conn_cnt,gpc0,http_req_cnt\n",
            socket(dir, i).display(),
            self.peer[0],
            self.peer[1],
            self.http[i]
        )
    }

    fn start(&self, dir: &Path, i: usize, binary: PathBuf) -> Proxy {
        let config = self.config(dir, i);
        start_member(&binary, dir, &format!("n{i}"), &config, self.http[i], None)
    }

    fn get(&self, i: usize) {
        get(self.http[i], "/");
    }
}

/// The entry lines of `show table tb`, without the entry's address and expiry.
fn entries(dir: &Path, i: usize) -> Vec<String> {
    cli(&socket(dir, i), "show table tb")
        .lines()
        .filter(|l| l.starts_with("0x"))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| !w.starts_with("0x") && !w.starts_with("exp="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn both_ways(test: &str, binaries: [PathBuf; 2]) {
    let dir = temp_dir(test);
    let pair = Pair::new();
    let [b0, b1] = binaries;
    let _n0 = pair.start(&dir, 0, b0);
    let _n1 = pair.start(&dir, 1, b1);
    // Two requests through n0: n1 learns the entry.
    pair.get(0);
    pair.get(0);
    let want = vec!["key=127.0.0.1 use=0 gpc0=0 conn_cnt=2 http_req_cnt=2".to_string()];
    assert!(
        eventually(Duration::from_secs(10), || entries(&dir, 1) == want),
        "{test}: n1 shows {:?}",
        entries(&dir, 1)
    );
    // A request through n1 counts on the learned entry; n0 learns it back.
    pair.get(1);
    let want = vec!["key=127.0.0.1 use=0 gpc0=0 conn_cnt=3 http_req_cnt=3".to_string()];
    assert!(
        eventually(Duration::from_secs(10), || entries(&dir, 0) == want
            && entries(&dir, 1) == want),
        "{test}: n0 shows {:?}, n1 {:?}",
        entries(&dir, 0),
        entries(&dir, 1)
    );
}

/// Asks the TCP frontend at `front` from `source`: the server's name.
fn ask_from(source: Ipv4Addr, front: SocketAddr) -> String {
    use std::io::{BufRead, BufReader};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket
        .connect(&front.into())
        .expect("connecting to the frontend");
    let conn: std::net::TcpStream = socket.into();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    line.trim().to_string()
}

/// `stick on src` entries made on each member (a server chosen by `use-server` per source)
/// reach the other with their `server_id` and `server_key`.
fn sticky_both_ways(test: &str, binaries: [PathBuf; 2]) {
    let dir = temp_dir(test);
    let pair = Pair::new();
    let s1 = NamedServer::start("s1", LO, Duration::from_millis(10));
    let s2 = NamedServer::start("s2", LO, Duration::from_millis(10));
    let config = |i: usize| {
        format!(
            "global\n  stats socket {} level admin\n\
             peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             listen tb\n  bind 127.0.0.1:{}\n  stick-table type ip size 100 expire 60s peers pair\n  stick on src\n\
             \x20 use-server s2 if {{ src 127.0.0.1 }}\n  use-server s1 if {{ src 127.0.0.2 }}\n\
             \x20 server s1 {}\n  server s2 {}\n",
            socket(&dir, i).display(),
            pair.peer[0],
            pair.peer[1],
            pair.http[i],
            s1.addr,
            s2.addr
        )
    };
    let [b0, b1] = binaries;
    let front = |i: usize| SocketAddr::from((LO, pair.http[i]));
    let _n0 = start_member(&b0, &dir, "n0", &config(0), pair.http[0], None);
    let _n1 = start_member(&b1, &dir, "n1", &config(1), pair.http[1], None);
    assert_eq!(ask_from(LO, front(0)), "s2");
    assert_eq!(ask_from(Ipv4Addr::new(127, 0, 0, 2), front(1)), "s1");
    let want = vec![
        "key=127.0.0.1 use=0 server_id=2 server_key=s2".to_string(),
        "key=127.0.0.2 use=0 server_id=1 server_key=s1".to_string(),
    ];
    let sorted = |i: usize| {
        let mut e = entries(&dir, i);
        e.sort();
        e
    };
    assert!(
        eventually(Duration::from_secs(10), || sorted(0) == want
            && sorted(1) == want),
        "{test}: n0 shows {:?}, n1 {:?}",
        sorted(0),
        sorted(1)
    );
}

#[test]
fn stick_entries_replicate_with_their_server() {
    if !have_haproxy("stick_entries_replicate_with_their_server") {
        return;
    }
    sticky_both_ways("peers-stick-haproxy-hapx", [PathBuf::from(HAPROXY), hapx()]);
    sticky_both_ways("peers-stick-hapx-hapx", [hapx(), hapx()]);
}

#[test]
fn hapx_and_haproxy_replicate_both_ways() {
    if !have_haproxy("hapx_and_haproxy_replicate_both_ways") {
        return;
    }
    both_ways("peers-hapx-haproxy", [PathBuf::from(HAPROXY), hapx()]);
    both_ways("peers-haproxy-hapx", [hapx(), PathBuf::from(HAPROXY)]);
}

#[test]
fn two_hapx_replicate() {
    both_ways("peers-hapx-hapx", [hapx(), hapx()]);
}

/// A restarted member asks for, and gets, the whole table from the other one.
fn restart_learns(test: &str, teacher: PathBuf, learner: PathBuf) {
    let dir = temp_dir(test);
    let pair = Pair::new();
    let _n0 = pair.start(&dir, 0, teacher);
    let n1 = pair.start(&dir, 1, learner.clone());
    pair.get(0);
    pair.get(0);
    let want = vec!["key=127.0.0.1 use=0 gpc0=0 conn_cnt=2 http_req_cnt=2".to_string()];
    assert!(eventually(Duration::from_secs(10), || entries(&dir, 1) == want));
    drop(n1);
    let _n1 = pair.start(&dir, 1, learner);
    assert!(
        eventually(Duration::from_secs(10), || entries(&dir, 1) == want),
        "{test}: the restarted member shows {:?}",
        entries(&dir, 1)
    );
}

#[test]
fn restarted_hapx_learns_the_table_from_haproxy() {
    if !have_haproxy("restarted_hapx_learns_the_table_from_haproxy") {
        return;
    }
    restart_learns("peers-resync-haproxy", PathBuf::from(HAPROXY), hapx());
}

#[test]
fn restarted_haproxy_learns_the_table_from_hapx() {
    if !have_haproxy("restarted_haproxy_learns_the_table_from_hapx") {
        return;
    }
    restart_learns("peers-resync-to-haproxy", hapx(), PathBuf::from(HAPROXY));
}

#[test]
fn restarted_hapx_learns_the_table_from_hapx() {
    restart_learns("peers-resync-hapx", hapx(), hapx());
}

/// Tables keyed by a string, an integer and an IPv6 address replicate between HAProxy and
/// hapx both ways: each side's entries (keyed by a request header) appear in the other's
/// table.
#[test]
fn every_key_type_replicates() {
    if !have_haproxy("every_key_type_replicates") {
        return;
    }
    let cases = [
        ("string len 32", "req.hdr(x-k)", ["a b=c", "xyz"]),
        ("integer", "req.hdr_val(x-k)", ["1234", "4000000000"]),
        ("ipv6", "req.hdr(x-k)", ["2001:db8::1", "::ffff:192.0.2.1"]),
    ];
    for (kind, fetch, keys) in cases {
        let dir = temp_dir("peers-key-types");
        let pair = Pair::new();
        let config = |i: usize| {
            format!(
                "global\n  stats socket {} level admin\n\
                 peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
                 defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
                 frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 {fetch} table tb\n  http-request return status 200\n\
                 backend tb\n  stick-table type {kind} size 100 expire 60s peers pair store http_req_cnt\n",
                socket(&dir, i).display(),
                pair.peer[0],
                pair.peer[1],
                pair.http[i]
            )
        };
        let front = |i: usize| SocketAddr::from((LO, pair.http[i]));
        let binaries = [PathBuf::from(HAPROXY), hapx()];
        let _procs: Vec<Proxy> = (0..2)
            .map(|i| {
                let local = format!("n{i}");
                start_member(&binaries[i], &dir, &local, &config(i), pair.http[i], None)
            })
            .collect();
        for (i, key) in keys.iter().enumerate() {
            let request =
                format!("GET / HTTP/1.1\r\nhost: x\r\nx-k: {key}\r\nconnection: close\r\n\r\n");
            let answer = http_raw(front(i), request.as_bytes(), Duration::from_secs(5));
            assert!(answer.starts_with("HTTP/1.1 200"), "{kind}: {answer}");
        }
        let sorted = |i: usize| {
            let mut e = entries(&dir, i);
            e.sort();
            e
        };
        assert!(
            eventually(Duration::from_secs(10), || sorted(0).len() == 2
                && sorted(0) == sorted(1)),
            "{kind}: HAProxy shows {:?}, hapx {:?}",
            sorted(0),
            sorted(1)
        );
    }
}

/// A reload (`-sf`): the old process teaches the new one its table before it exits (the
/// new one's table is checked once the old one is gone).
fn reload_keeps_table(test: &str, binary: PathBuf) {
    let dir = temp_dir(test);
    let pair = Pair::new();
    let mut old = pair.start(&dir, 0, binary.clone());
    pair.get(0);
    pair.get(0);
    // Only a process whose tables are complete teaches its successor: here (its peer n1
    // never answers) once its 5 s resync wait (HAProxy's PEER_RESYNC_TIMEOUT) is over, as
    // `show peers` tells.
    assert!(
        eventually(Duration::from_secs(30), || complete(&socket(&dir, 0))),
        "{test}: the first process never completed its resync"
    );
    let want = vec!["key=127.0.0.1 use=0 gpc0=0 conn_cnt=2 http_req_cnt=2".to_string()];
    assert_eq!(entries(&dir, 0), want);
    let config = pair.config(&dir, 0);
    let new = start_member(&binary, &dir, "n0", &config, pair.http[0], Some(old.pid()));
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "{test}: the old process did not finish"
    );
    assert!(cli(&socket(&dir, 0), "show info").contains(&format!("Pid: {}", new.pid())));
    assert_eq!(entries(&dir, 0), want, "{test}: the new process's table");
}

#[test]
fn a_reload_keeps_the_table() {
    let mut runs: Vec<Box<dyn FnOnce() + Send>> =
        vec![Box::new(|| reload_keeps_table("peers-reload-hapx", hapx()))];
    if have_haproxy("a_reload_keeps_the_table") {
        runs.push(Box::new(|| {
            reload_keeps_table("peers-reload-haproxy", PathBuf::from(HAPROXY))
        }));
    }
    at_once(runs);
}

/// A configuration of member `n0` (its peer `n1` never answers) counting requests per
/// `x-k` header in a replicated string table with `expire`.
fn keyed_config(dir: &Path, pair: &Pair, i: usize, name: &str, expire: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 req.hdr(x-k) table tb\n  http-request return status 200\n\
         backend tb\n  stick-table type string len 32 size 1m expire {expire} peers pair store http_req_cnt\n",
        dir.join(format!("{name}.sock")).display(),
        pair.peer[0],
        pair.peer[1],
        pair.http[i]
    )
}

/// Keep-alive requests to `front`, each with a new `x-k` key `{tag}-{n}` (or all with
/// `shared`), until `stop`: the keys answered 200 (a connection the stopping process
/// closes is opened again).
fn keyed_requests(
    front: SocketAddr,
    tag: String,
    shared: bool,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut made = Vec::new();
    let mut conn: Option<BufReader<std::net::TcpStream>> = None;
    let mut n = 0u64;
    // Fewer than the table holds (a full table trashes its oldest entries).
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 150_000 {
        n += 1;
        let key = match shared {
            true => "shared".to_string(),
            false => format!("{tag}-{n}"),
        };
        let mut c = match conn.take() {
            Some(c) => c,
            None => match std::net::TcpStream::connect(front) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    BufReader::new(s)
                }
                Err(_) => continue,
            },
        };
        let request = format!("GET / HTTP/1.1\r\nhost: x\r\nx-k: {key}\r\n\r\n");
        if c.get_mut().write_all(request.as_bytes()).is_err() {
            continue;
        }
        let (mut status, mut length, mut close) = (String::new(), 0usize, false);
        let mut line = String::new();
        let mut complete = false;
        while c.read_line(&mut line).is_ok_and(|n| n > 0) {
            let l = line.trim_end().to_ascii_lowercase();
            if status.is_empty() {
                status = l.clone();
            } else if let Some(v) = l.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            } else if l == "connection: close" {
                close = true;
            } else if l.is_empty() {
                complete = true;
                break;
            }
            line.clear();
        }
        let mut body = vec![0; length];
        if !complete || c.read_exact(&mut body).is_err() {
            continue;
        }
        if status.starts_with("http/1.1 200") {
            made.push(key);
        }
        if !close {
            conn = Some(c);
        }
    }
    made
}

/// What a reload must keep of the keys made meanwhile.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Every key: hapx's old process exits once its successor acknowledged every change
    /// it pushed (acknowledged once learned), so the new process's table is complete when
    /// the old one is gone.
    Every,
    /// All but one in a thousand: HAProxy 2.6's reload loses a few of the entries made
    /// meanwhile (2 or 3 keys of 80k to 106k, in 6 of 71 runs on a loaded host; never
    /// learned later, even when a session through the old process kept it 10 s longer),
    /// so only a lesson or pushes gone missing, which lose thousands, are caught there.
    AllButAFew,
}

/// A reload (`-sf`) under traffic: every key made through the old process, before and
/// during the reload, is in the new process's table once the old one is gone (the old
/// process pushes its changes to the new one until it exits; [`Kept`] for HAProxy).
/// With `shared`, every request counts on one entry instead: the processes overwrite each
/// other's count there while both serve, so a few requests may be lost (HAProxy loses
/// a few too), but not the old process's changes after its lesson.
fn reload_under_traffic(test: &str, binary: PathBuf, shared: bool, kept: Kept) {
    let dir = temp_dir(test);
    let pair = Pair::new();
    let config = keyed_config(&dir, &pair, 0, "n0", "60s");
    let front = SocketAddr::from((LO, pair.http[0]));
    let mut old = start_member(&binary, &dir, "n0", &config, pair.http[0], None);
    // Only a process whose tables are complete teaches: past its 5 s resync wait here, as
    // `show peers` tells (the section's PEERS_F_RESYNC_REMOTE), however slow the host.
    let socket = dir.join("n0.sock");
    assert!(
        eventually(Duration::from_secs(30), || complete(&socket)),
        "{test}: the first process never completed its resync"
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || keyed_requests(front, format!("c{c}"), shared, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let new = start_member(&binary, &dir, "n0", &config, pair.http[0], Some(old.pid()));
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let made: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        old.wait_exit(Duration::from_secs(15)).is_some(),
        "{test}: the old process did not finish"
    );
    assert!(cli(&socket, "show info").contains(&format!("Pid: {}", new.pid())));
    let table = cli(&socket, "show table tb");
    let keys: std::collections::HashSet<&str> = (table.lines())
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("key=")))
        .collect();
    let lost: Vec<&String> = made.iter().filter(|k| !keys.contains(k.as_str())).collect();
    assert!(made.len() > 100, "{test}: only {} requests", made.len());
    let tolerated = match kept {
        Kept::Every => 0,
        Kept::AllButAFew => made.len() / 1000,
    };
    assert!(
        lost.len() <= tolerated,
        "{test}: {} of {} keys lost, such as {:?}",
        lost.len(),
        made.len(),
        &lost[..lost.len().min(5)]
    );
    if !shared {
        return;
    }
    let counted: usize = (table.lines())
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("http_req_cnt="))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // What the new process counts before the lesson reaches it is overwritten by the
    // lesson (the protocol carries values, not increments). After it, HAProxy's old process
    // sends nothing more (what it counts while it drains is lost: 0.011 to 0.19 % here),
    // while hapx's sends on and its successor adds the growth of each cumulative count
    // rather than taking the value (0 to 0.024 %; 0.04 to 0.9 % when it took the values):
    // the bound catches a lesson or pushes gone missing, not the host's speed.
    let missing = made.len().saturating_sub(counted);
    assert!(
        missing <= 10 + made.len() / 64,
        "{test}: the shared entry counts {counted} of {} requests",
        made.len()
    );
    eprintln!(
        "{test}: {} requests, the shared entry counts {counted}",
        made.len()
    );
}

#[test]
fn a_reload_under_traffic_keeps_every_key() {
    use Kept::{AllButAFew, Every};
    // One after the other: runs under traffic at the same time load the host past what
    // the bounds were measured on.
    reload_under_traffic("peers-reload-keys-hapx", hapx(), false, Every);
    reload_under_traffic("peers-reload-shared-hapx", hapx(), true, Every);
    if have_haproxy("a_reload_under_traffic_keeps_every_key") {
        let haproxy = || PathBuf::from(HAPROXY);
        reload_under_traffic("peers-reload-keys-haproxy", haproxy(), false, AllButAFew);
        reload_under_traffic("peers-reload-shared-haproxy", haproxy(), true, AllButAFew);
    }
}

/// The `exp=` of `key` in member `name`'s table.
fn expiry(dir: &Path, name: &str, key: &str) -> Option<u64> {
    let table = cli(&dir.join(format!("{name}.sock")), "show table tb");
    let line = table.lines().find(|l| l.contains(&format!("key={key} ")))?;
    let exp = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("exp="))?;
    exp.parse().ok()
}

/// A member started 6 s after its peer made an entry (`expire 20s`) learns it in a resync,
/// with the remaining 14 s, then gets it again as a plain update, with a full expiry
/// (HAProxy resends the taught entries once the lesson is confirmed).
fn relearned_expiry(test: &str, teacher: PathBuf, learner: PathBuf) -> u64 {
    let dir = temp_dir(test);
    let pair = Pair::new();
    let start = |i: usize, binary: PathBuf| {
        let local = format!("n{i}");
        let config = keyed_config(&dir, &pair, i, &local, "20s");
        start_member(&binary, &dir, &local, &config, pair.http[i], None)
    };
    let _n0 = start(0, teacher);
    let request = "GET / HTTP/1.1\r\nhost: x\r\nx-k: old\r\nconnection: close\r\n\r\n";
    let front = SocketAddr::from((LO, pair.http[0]));
    assert!(
        http_raw(front, request.as_bytes(), Duration::from_secs(5)).starts_with("HTTP/1.1 200")
    );
    std::thread::sleep(Duration::from_secs(6));
    let _n1 = start(1, learner);
    // The lesson gives at most 14 s; the update after it about 20 s.
    let mut last = None;
    eventually(Duration::from_secs(10), || {
        last = expiry(&dir, "n1", "old");
        last.is_some_and(|exp| exp > 16_000)
    });
    let teacher_exp = expiry(&dir, "n0", "old").unwrap_or(0);
    assert!(
        teacher_exp < 15_000,
        "{test}: the teacher's entry expires in {teacher_exp} ms"
    );
    last.unwrap_or(0)
}

#[test]
fn a_resync_resends_the_entries_with_a_full_expiry() {
    let mut runs: Vec<(&str, &str, PathBuf, PathBuf)> =
        vec![("hapx to hapx", "peers-exp-hapx", hapx(), hapx())];
    if have_haproxy("a_resync_resends_the_entries_with_a_full_expiry") {
        let haproxy = || PathBuf::from(HAPROXY);
        runs.push((
            "HAProxy to HAProxy",
            "peers-exp-haproxy",
            haproxy(),
            haproxy(),
        ));
        runs.push((
            "hapx to HAProxy",
            "peers-exp-hapx-haproxy",
            hapx(),
            haproxy(),
        ));
    }
    // The runs at once: each waits out its own 6 s, with its own ports and processes.
    let cases: Vec<(&str, u64)> = std::thread::scope(|scope| {
        let running: Vec<_> = (runs.into_iter())
            .map(|(case, test, teacher, learner)| {
                (
                    case,
                    scope.spawn(move || relearned_expiry(test, teacher, learner)),
                )
            })
            .collect();
        (running.into_iter())
            .map(|(case, run)| {
                let exp = run
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (case, exp)
            })
            .collect()
    });
    for (case, exp) in &cases {
        assert!(
            *exp > 16_000,
            "{case}: the learner's entry expires in {exp} ms: {cases:?}"
        );
    }
}

/// What member n0 (`binary`) sends a peer n1 that says hello and then `message`, up to its
/// close.
fn answer_to(test: &str, binary: PathBuf, message: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let dir = temp_dir(test);
    let pair = Pair::new();
    let config = keyed_config(&dir, &pair, 0, "n0", "60s");
    let _n0 = start_member(&binary, &dir, "n0", &config, pair.http[0], None);
    let mut peer = None;
    eventually(Duration::from_secs(5), || {
        peer = std::net::TcpStream::connect((LO, pair.peer[0])).ok();
        peer.is_some()
    });
    let mut peer = peer.expect("connecting to n0's peer port");
    peer.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    peer.write_all(b"HAProxyS 2.1\nn0\nn1 1234 1\n").unwrap();
    let _ = peer.write_all(message);
    let mut answer = Vec::new();
    let _ = peer.read_to_end(&mut answer);
    answer
}

/// Framing errors from a peer: HAProxy's error message (class 1: code 1 for a message
/// longer than its buffer, 0 for a malformed length), then the close.
#[test]
fn framing_errors_get_haproxys_error_codes() {
    if !have_haproxy("framing_errors_get_haproxys_error_codes") {
        return;
    }
    let mut too_long = vec![10, 0x80];
    too_long.extend(varint(16385));
    too_long.extend(vec![b'x'; 16385]);
    let cases: [(&str, Vec<u8>, [u8; 2]); 3] = [
        (
            "a length of 1 GiB",
            [vec![10, 0x80], varint(1 << 30)].concat(),
            [1, 1],
        ),
        ("a length of 16385", too_long, [1, 1]),
        (
            "a length of 6 bytes",
            vec![10, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            [1, 0],
        ),
    ];
    for (case, message, code) in cases {
        let theirs = answer_to("peers-framing-haproxy", HAPROXY.into(), &message);
        let ours = answer_to("peers-framing-hapx", hapx(), &message);
        assert!(
            theirs.starts_with(b"200\n") && theirs.ends_with(&code),
            "{case}: HAProxy sent {theirs:?}"
        );
        assert!(
            ours.starts_with(b"200\n") && ours.ends_with(&code),
            "{case}: hapx sent {ours:?}, HAProxy {theirs:?}"
        );
    }
}

/// `peers` sections as HAProxy 2.6 reads them: the same messages (errors name file:line as
/// HAProxy's) and exit status for each.
#[test]
fn peers_section_messages_are_haproxys() {
    if !have_haproxy("peers_section_messages_are_haproxys") {
        return;
    }
    let cases = [
        "peers p\n  peer n0 127.0.0.1:1\n  bogus\n",
        "peers p\n  peer n0 127.0.0.1:1\npeers p\n  peer n0 127.0.0.1:2\n",
        "peers\n",
        "peers p\n  peer other 127.0.0.1:2\n",
        // `-L n0` wins over `localpeer`.
        "global\n  localpeer other\npeers p\n  peer other 127.0.0.1:2\n",
        "global\n  localpeer\n",
        "global\n  localpeer a b\n",
        "peers p\n  peer n0 127.0.0.1\n",
        "peers p\n  peer n0 127.0.0.1:abc\n",
        "peers p\n  peer x 127.0.0.1:abc\n",
        "peers p\n  peer n0 127.0.0.1:1-5\n",
        "peers p\n  peer n0 nope.invalid:1\n",
        "peers p\n  peer n0 127.0.0.1:70000\n",
        "peers p\n  peer n0 127.0.0.1:\n",
        "peers p\n  peer x 127.0.0.1:1 shard\n",
        "peers p\n  peer n0 127.0.0.1:1\n  peer x nope.invalid:1\n",
        "peers p\n  peer n0 127.0.0.1:1\n  peer n0 127.0.0.1:2\n",
        "peers p\n  peer n0 127.0.0.1:1\n  peer x 127.0.0.1:3 check inter 1s\n",
        "peers p\n  peer n0 127.0.0.1:1\n  bind 127.0.0.1:4\n",
        "peers p\n  bind 127.0.0.1:4\n  server n0\n  peer x 127.0.0.1:5\n",
        "peers p\n  bind 127.0.0.1:1\n  server n0 127.0.0.1:1\n",
        "peers p\n  bind 127.0.0.1\n  server n0\n",
        "peers p\n  bind 127.0.0.1:1 2.2.2.2:3\n  server n0\n",
        "peers p\n  server n0\n  bind 127.0.0.1:1\n  server x 127.0.0.1:2\n",
        "peers p\n  peer n0 127.0.0.1:1\n  disabled\n  enabled\n",
        "peers p\n  peer n0 127.0.0.1:1\nbackend b\n  timeout server 1s\n  timeout connect 1s\n  stick-table type ip size 10 peers nosuch\n",
    ];
    let dir = temp_dir("peers-messages");
    let path = dir.join("t.cfg");
    for case in cases {
        let text = format!(
            "{case}defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend f\n  bind 127.0.0.1:{}\n",
            free_port()
        );
        std::fs::write(&path, &text).unwrap();
        let theirs = check_output(Path::new(HAPROXY), &path);
        let ours = check_output(&hapx(), &path);
        assert_eq!(ours, theirs, "for:\n{case}");
    }
}
