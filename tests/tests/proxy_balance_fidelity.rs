//! Balancing details beside HAProxy 2.6, each run through hapx-proxy and then HAProxy (skipped
//! loudly without it, a failure under CI) with the same asserts: a server's slow start (the
//! `weight` and `throttle` columns step by step, and its end: `Server B/S is UP.` logged and
//! `srv_time_since_last_change` counted from it); the reminder `remains in forced drain
//! mode.` after each change of a drained server's operational state (and no second alert for
//! a backend that had no server left already); the `lbtot`, `wretr` and `wredis` counters of
//! retried and redispatched connections; and `-c`'s messages for bad `req.payload` and
//! `req.payload_lv` arguments.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hapx_tests::proxy::{
    NamedServer, Proxy, TestDir, ask, cli, free_port, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::binaries;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Asserts every run recorded the same as the first (hapx-proxy's).
fn all_same<T: PartialEq + std::fmt::Debug>(test: &str, seen: &[(&str, T)]) {
    for (tag, value) in &seen[1..] {
        assert_eq!(
            &seen[0].1, value,
            "{test}: hapx-proxy (left) and {tag} (right) differ"
        );
    }
}

/// A proxy in front of two servers answering their names (`s1` with `s1_opts`, `s2` with
/// `s2_opts`), its admin socket and its log socket (a UNIX datagram socket it logs to).
struct Rig {
    _proxy: Proxy,
    _servers: [NamedServer; 2],
    sock: PathBuf,
    log: UnixDatagram,
}

impl Rig {
    fn start(binary: &Path, dir: &TestDir, tag: &str, backend: &str, opts: [&str; 2]) -> Rig {
        let servers = ["s1", "s2"].map(|n| NamedServer::start(n, LO, Duration::from_secs(5)));
        let sock = dir.join(format!("{tag}.sock"));
        let log_path = dir.join(format!("{tag}.log"));
        let log = UnixDatagram::bind(&log_path).expect("a log socket");
        log.set_nonblocking(true).unwrap();
        let front = SocketAddr::from((LO, free_port()));
        let cfg = format!(
            "global\n  stats socket {} level admin\n  log {} local0\n\
             defaults\n  mode tcp\n  log global\n  timeout client 5s\n  timeout server 5s\n  \
             timeout connect 1s\n\
             frontend fe\n  bind {front}\n  default_backend be\n\
             backend be\n{backend}  server s1 127.0.0.1:{} weight 10 {}\n  \
             server s2 127.0.0.1:{} weight 3 {}\n",
            sock.display(),
            log_path.display(),
            servers[0].port(),
            opts[0],
            servers[1].port(),
            opts[1],
        );
        let proxy = Proxy::start_with(binary.to_path_buf(), dir, tag, &cfg, front, &[]);
        Rig {
            _proxy: proxy,
            _servers: servers,
            sock,
            log,
        }
    }

    /// The messages logged since the last call, without their syslog header.
    fn logged(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.log.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            let from = line.find("]: ").map_or(0, |at| at + 3);
            lines.push(line[from..].to_string());
        }
        lines
    }

    /// Runs `command`; what it answered, then what was logged by then.
    fn run(&self, command: &str) -> Vec<String> {
        let answer = cli(&self.sock, command);
        // Every message of a command is logged before it answers; give the datagrams
        // their way through the socket.
        std::thread::sleep(Duration::from_millis(100));
        let mut seen = vec![format!("> {command}: {}", answer.trim())];
        seen.extend(self.logged());
        seen
    }
}

/// The fields of `server`'s line in `show servers state be`.
fn server_state(rig: &Rig, server: &str) -> Vec<String> {
    let state = cli(&rig.sock, "show servers state be");
    let line = (state.lines())
        .find(|l| l.split(' ').nth(3) == Some(server))
        .unwrap_or_else(|| panic!("no state line for {server}: {state}"));
    line.split(' ').map(str::to_string).collect()
}

/// Waits until the wall clock is 400 ms into a second.
fn mid_second() {
    let into = (SystemTime::now().duration_since(UNIX_EPOCH))
        .unwrap_or_default()
        .subsec_millis();
    std::thread::sleep(Duration::from_millis(u64::from((1400 - into) % 1000)));
}

/// A server of weight 10 with `slowstart 3s` leaving maintenance: its `weight` and
/// `throttle` columns and the backend's `weight` take the same steps, once a second (HAProxy's
/// `(16 * elapsed + 3) / 3` sixteenths of its weight), its `srv_op_state` STARTING (1), then
/// at the end HAProxy's server goes from STARTING to RUNNING (2): `is UP` is logged again and
/// its last change counted from then.
#[test]
fn slow_start_steps_and_ends_as_with_haproxy() {
    let test = "fidelity-slowstart";
    let dir = temp_dir(test);
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let rig = Rig::start(&binary, &dir, tag, "", ["slowstart 3s", ""]);
        let mut record = rig.run("set server be/s1 state maint");
        // HAProxy counts the slow start in whole seconds of its clock (`now.tv_sec -
        // last_change`, its `last_change` taken from the time its thread last woke up),
        // once a second from a warm-up task that runs late on a loaded host: near the turn
        // of a second, either reading can fall in the next or previous one and a step is
        // skipped (1, 7, 10 seen under load). Left in the middle of a second, each reading
        // stays within its own.
        mid_second();
        record.extend(rig.run("set server be/s1 state ready"));
        // STARTING (1) while it warms up.
        record.push(format!("srv_op_state={}", server_state(&rig, "s1")[5]));
        let mut steps: Vec<String> = Vec::new();
        let since = Instant::now();
        loop {
            // One dump for the three columns: a step falling between two reads would pair
            // the server's weight before it with the backend's after it.
            let stat = cli(&rig.sock, "show stat");
            let column = |server: &str, column: &str| {
                stat_row(&stat, "be", server)
                    .and_then(|mut row| row.remove(column))
                    .unwrap_or_default()
            };
            let step = format!(
                "weight={} throttle={} backend={}",
                column("s1", "weight"),
                column("s1", "throttle"),
                column("BACKEND", "weight")
            );
            if steps.last() != Some(&step) {
                steps.push(step.clone());
            }
            if step.contains("throttle= ") || since.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The end is logged within a moment of the last step.
        let mut end = Vec::new();
        assert!(
            wait_until(Duration::from_secs(3), || {
                end.extend(rig.logged());
                !end.is_empty()
            }),
            "{tag}: nothing logged at the end of the slow start"
        );
        record.extend(steps);
        record.extend(end);
        let s1 = server_state(&rig, "s1");
        record.push(format!("srv_op_state={}", s1[5]));
        let since_change: u64 = s1[9].parse().expect("srv_time_since_last_change");
        assert!(since_change <= 2, "{tag}: last change {since_change}s ago");
        seen.push((tag, record));
    }
    eprintln!("{test}: {:?}", seen[0].1);
    all_same(test, &seen);
}

/// Runs `commands` on a rig (see [`Rig::start`]) through each proxy; what each answered and
/// logged, compared.
fn same_messages(test: &str, opts: [&str; 2], commands: &[&str]) -> Vec<String> {
    let dir = temp_dir(test);
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let rig = Rig::start(&binary, &dir, tag, "", opts);
        let record: Vec<String> = commands.iter().flat_map(|c| rig.run(c)).collect();
        seen.push((tag, record));
    }
    eprintln!("{test}: {:#?}", seen[0].1);
    all_same(test, &seen);
    seen.swap_remove(0).1
}

/// A drained server whose health an operator changes (stopping, UP, DOWN) is reminded of
/// its drain after each change, as HAProxy's `srv_update_status` does.
#[test]
fn a_drained_server_changing_health_is_reminded_of_its_drain() {
    let record = same_messages(
        "fidelity-drain-health",
        ["", ""],
        &[
            "set server be/s1 state drain",
            "set server be/s1 health stopping",
            "set server be/s1 health up",
            "set server be/s1 health down",
            "set server be/s1 health up",
            "set server be/s1 state ready",
        ],
    );
    let reminders = record
        .iter()
        .filter(|l| l.as_str() == "Server be/s1 remains in forced drain mode.")
        .count();
    assert_eq!(reminders, 4, "{record:#?}");
}

/// A drained server tracking another follows it DOWN, UP, into maintenance and out of it,
/// reminded of its drain after each change of operational state; its going DOWN raises no
/// second "no server available" alert (it took no connections: the backend had none left
/// already).
#[test]
fn a_drained_tracker_is_reminded_and_raises_no_second_alert() {
    let record = same_messages(
        "fidelity-drain-track",
        ["check inter 1h", "track be/s1"],
        &[
            "set server be/s2 state drain",
            "set server be/s1 health down",
            "set server be/s1 health up",
            "set server be/s1 state maint",
            "set server be/s1 state ready",
            "set server be/s2 state ready",
        ],
    );
    let alerts = record
        .iter()
        .filter(|l| l.contains("has no server available"))
        .count();
    assert_eq!(alerts, 2, "{record:#?}");
    assert!(
        record.contains(&"Server be/s2 remains in forced drain mode.".to_string()),
        "{record:#?}"
    );
}

/// The counters of a backend whose first server refuses connections, for `backend` lines
/// (retries, redispatch, the algorithm): each of `show stat`'s rows compared after four
/// connections.
fn retry_counters(test: &str, backend: &str) {
    let dir = temp_dir(test);
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let live = NamedServer::start("s2", LO, Duration::from_secs(5));
        let sock = dir.join(format!("{tag}.sock"));
        let front = SocketAddr::from((LO, free_port()));
        let cfg = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  \
             timeout connect 1s\n\
             frontend fe\n  bind {front}\n  default_backend be\n\
             backend be\n{backend}  server s1 127.0.0.1:{}\n  server s2 127.0.0.1:{}\n",
            sock.display(),
            free_port(),
            live.port(),
        );
        let _proxy = Proxy::start_with(binary, &dir, tag, &cfg, front, &[]);
        let mut record: Vec<String> = (0..4).map(|_| ask(front)).collect();
        // Every connection ended and counted before the counters are read.
        let ended = || {
            let csv = cli(&sock, "show stat");
            stat_row(&csv, "fe", "FRONTEND").is_some_and(|r| r["scur"] == "0" && r["stot"] == "4")
        };
        assert!(
            wait_until(Duration::from_secs(10), ended),
            "{tag}: not ended"
        );
        let csv = cli(&sock, "show stat");
        for row in ["s1", "s2", "BACKEND"] {
            let row_of = stat_row(&csv, "be", row).expect("a stat row");
            for column in ["stot", "lbtot", "wretr", "wredis", "econ"] {
                record.push(format!("{row}.{column}={}", row_of[column]));
            }
        }
        seen.push((tag, record));
    }
    eprintln!("{test}: {:?}", seen[0].1);
    all_same(test, &seen);
}

/// A redispatch counts a balancing pick on both servers (`lbtot` twice in the backend), and
/// `wredis` on the server left.
#[test]
fn redispatched_connections_count_as_with_haproxy() {
    retry_counters("fidelity-redispatch", "  retries 2\n  option redispatch\n");
    retry_counters(
        "fidelity-redispatch-every-2",
        "  retries 3\n  option redispatch 2\n",
    );
    retry_counters(
        "fidelity-redispatch-no-retry",
        "  retries 0\n  option redispatch\n",
    );
}

/// Retries on the same server count `wretr` and no second pick.
#[test]
fn retried_connections_count_as_with_haproxy() {
    retry_counters("fidelity-retries", "  retries 1\n");
}

/// What `-c` says of `condition` in a `tcp-request content` rule: its alerts and warnings,
/// without the process id.
fn check_messages(binary: &Path, dir: &Path, condition: &str) -> Vec<String> {
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:1\n  tcp-request content accept if {{ {condition} }}\n  \
         default_backend be\nbackend be\n  server s 127.0.0.1:2\n"
    );
    let path = dir.join("payload.cfg");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("running -c");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| l.starts_with("[ALERT]") || l.starts_with("[WARNING]") || l.contains("valid"))
        .map(|l| match l.split_once(") : ") {
            Some((level, rest)) => format!("{} {rest}", level.split(' ').next().unwrap_or("")),
            None => l.to_string(),
        })
        .collect();
    lines.push(format!("exit {:?}", out.status.code()));
    lines
}

/// Bad `req.payload` and `req.payload_lv` arguments get HAProxy's messages from `-c`.
#[test]
fn payload_argument_errors_are_reported_as_by_haproxy() {
    let test = "fidelity-payload-args";
    let dir = temp_dir(test);
    let conditions = [
        "req.payload_lv(0,1) -m found",
        "req.payload_lv(0) -m found",
        "req.payload_lv(0,0) -m found",
        "req.payload_lv(x,1) -m found",
        "req.payload_lv(0,2,-5) -m found",
        "req.payload_lv(0,2,+x) -m found",
        "req.payload(0) -m found",
        "req.payload(0,x) -m found",
        "req.payload(-1,2) -m found",
        "res.payload_lv(0,5) -m found",
    ];
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let record: Vec<Vec<String>> = conditions
            .iter()
            .map(|c| check_messages(&binary, &dir, c))
            .collect();
        seen.push((tag, record));
    }
    assert!(
        seen[0].1[2]
            .iter()
            .any(|l| l.contains("payload length must be > 0")),
        "{:?}",
        seen[0].1[2]
    );
    all_same(test, &seen);
}

/// `set weight B/S W[%]` (HAProxy's older form of `set server B/S weight`) answers as
/// HAProxy's; a weight of 0 on the last server taking connections raises the backend's "no
/// server available" alert, from either form.
#[test]
fn set_weight_answers_and_alerts_as_with_haproxy() {
    let record = same_messages(
        "fidelity-set-weight",
        ["", ""],
        &[
            "set weight",
            "set weight be/s1",
            "set weight nosuch/s1 5",
            "set weight be/nosuch 5",
            "set weight be 5",
            "set weight be/s1 x",
            "set weight be/s1 300",
            "set weight be/s1 50%",
            "get weight be/s1",
            "set weight be/s1 0",
            "set server be/s2 weight 0",
            "set weight be/s2 3 extra",
            "get weight be/s2",
        ],
    );
    let alerts = record
        .iter()
        .filter(|l| l.contains("has no server available"))
        .count();
    assert_eq!(alerts, 1, "{record:#?}");
}

/// The frontends' conditions in [`http_fetches_of_a_tcp_stream_decide_as_with_haproxy`]:
/// each sends a client whose condition matched to the server named `Y`, else to `n`.
const STREAM_CONDITIONS: [&str; 12] = [
    "req.proto_http",
    "method -m found",
    "method PRI",
    "req.ver -m found",
    "req.ver 2.0",
    "req.ver 3.0",
    "req.ver 1.1",
    "req.ver 1.0",
    "req.ver 11.22",
    "path -m found",
    "base -m found",
    "req.hdr(host) -m found",
];

/// A TCP stream's first bytes read as an HTTP request by `tcp-request content` fetches, as
/// HAProxy 2.6's H1 parser reads them then: any version of upper-case letters, digits, `.`
/// and `/` (`HTTP/2.0`, the HTTP/2 preface, `HTTP/3.0`, even `FOO`), `req.ver` what follows
/// its `/`, HTTP/1.0 for an HTTP/0.9 line (none), no path for `*`; and a head whose headers are
/// refused is no HTTP (`req.proto_http` false).
#[test]
fn http_fetches_of_a_tcp_stream_decide_as_with_haproxy() {
    let test = "fidelity-stream-http";
    let dir = temp_dir(test);
    let requests: [&[u8]; 17] = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /x HTTP/2\r\n\r\n",
        b"GET / HTTP/3.0\r\n\r\n",
        b"GET / HTTP/11.22\r\n\r\n",
        b"GET / HTTP/1.1x\r\n\r\n",
        b"GET / http/1.1\r\n\r\n",
        b"GET / HTTP/\r\n\r\n",
        b"GET / FOO\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET  /  HTTP/2.0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ];
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let yes = NamedServer::start("Y", LO, Duration::from_secs(5));
        let no = NamedServer::start("n", LO, Duration::from_secs(5));
        let ports: Vec<u16> = STREAM_CONDITIONS.iter().map(|_| free_port()).collect();
        let frontends: String = (STREAM_CONDITIONS.iter().zip(&ports).enumerate())
            .map(|(i, (condition, port))| {
                format!(
                    "frontend f{i}\n  bind 127.0.0.1:{port}\n  tcp-request inspect-delay 300ms\n  \
                     tcp-request content accept if {{ req.len gt 0 }}\n  \
                     use_backend yes if {{ {condition} }}\n  default_backend no\n"
                )
            })
            .collect();
        let cfg = format!(
            "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  \
             timeout connect 1s\n{frontends}\
             backend yes\n  server s 127.0.0.1:{}\nbackend no\n  server s 127.0.0.1:{}\n",
            yes.port(),
            no.port()
        );
        let last = SocketAddr::from((LO, ports[ports.len() - 1]));
        let _proxy = Proxy::start_with(binary, &dir, tag, &cfg, last, &[]);
        let record: Vec<String> = requests
            .iter()
            .map(|request| {
                let answers: String = (ports.iter())
                    .map(|&p| ask_with(SocketAddr::from((LO, p)), request))
                    .collect();
                format!("{:?}: {answers}", String::from_utf8_lossy(request))
            })
            .collect();
        seen.push((tag, record));
    }
    eprintln!("{test}: {:#?}", seen[0].1);
    // The HTTP/2 preface is HTTP to these fetches: method PRI, version 2.0, no path.
    assert!(
        seen[0].1[0].ends_with(": YYYYYnnnnnnn"),
        "{:?}",
        seen[0].1[0]
    );
    all_same(test, &seen);
}

/// Sends `request` to `front` and reads the answering server's name ("" when none).
fn ask_with(front: SocketAddr, request: &[u8]) -> String {
    hapx_tests::proxy_balance::ask_from(LO, front, request)
}

/// `hash-type consistent` over `balance source` with six servers of equal weight: the
/// servers 200 client addresses reach, after servers leave and come back in another order,
/// a weight raised and lowered back, a health change and a drain.
#[test]
fn consistent_hashing_follows_changes_as_with_haproxy() {
    let test = "fidelity-consistent";
    let dir = temp_dir(test);
    let names = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let steps: [&[&str]; 7] = [
        &[],
        &[
            "set server be/s1 state maint",
            "set server be/s2 state maint",
        ],
        &[
            "set server be/s2 state ready",
            "set server be/s1 state ready",
        ],
        &["set server be/s3 weight 7"],
        &["set server be/s3 weight 1"],
        &["set server be/s4 health down", "set server be/s4 health up"],
        &[
            "set server be/s5 state drain",
            "set server be/s5 state ready",
        ],
    ];
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let servers = names.map(|n| NamedServer::start(n, LO, Duration::from_secs(5)));
        let lines: String = (names.iter().zip(&servers))
            .map(|(n, s)| format!("  server {n} 127.0.0.1:{} weight 1\n", s.port()))
            .collect();
        let sock = dir.join(format!("{tag}.sock"));
        let front = SocketAddr::from((LO, free_port()));
        let cfg = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  \
             timeout connect 1s\n\
             frontend fe\n  bind {front}\n  default_backend be\n\
             backend be\n  balance source\n  hash-type consistent\n{lines}",
            sock.display()
        );
        let _proxy = Proxy::start_with(binary, &dir, tag, &cfg, front, &[]);
        let mut record = Vec::new();
        for commands in steps {
            for command in commands {
                cli(&sock, command);
            }
            let reached: String = (0..200u8)
                .map(|i| {
                    let src = Ipv4Addr::new(127, 0, 1 + i / 100, 1 + i % 100);
                    let name = hapx_tests::proxy_balance::ask_from(src, front, b"");
                    name.chars().last().unwrap_or('?')
                })
                .collect();
            record.push(format!("{commands:?}: {reached}"));
        }
        seen.push((tag, record));
    }
    assert!(
        seen[0].1.iter().all(|r| !r.contains('?')),
        "{:?}",
        seen[0].1
    );
    all_same(test, &seen);
}

/// Sleeps until the wall clock is `ms` milliseconds into a second.
fn align_to_second(ms: u128) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis();
    let wait = (1000 + ms - now % 1000) % 1000;
    std::thread::sleep(Duration::from_millis(wait as u64));
}

/// A server drained during its slow start (`slowstart 2s`) is reminded of its drain at each
/// step of its warm-up, then at its end after `is UP`. Entering drain within the second of
/// the wall clock it came back in recomputes no new weight in HAProxy: no reminder then.
#[test]
fn a_server_drained_while_warming_up_is_reminded_at_each_step() {
    let test = "fidelity-drain-warming";
    let dir = temp_dir(test);
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let rig = Rig::start(&binary, &dir, tag, "", ["slowstart 2s", ""]);
        let mut record = rig.run("set server be/s1 state maint");
        // Back early in a second, drained well within it.
        align_to_second(50);
        record.extend(rig.run("set server be/s1 state ready"));
        record.extend(rig.run("set server be/s1 state drain"));
        let mut rest = Vec::new();
        let ended = |rest: &mut Vec<String>| {
            rest.extend(rig.logged());
            rest.iter().any(|l| l.ends_with("is UP. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."))
                && rest.last().is_some_and(|l| l.contains("remains"))
        };
        assert!(
            wait_until(Duration::from_secs(5), || ended(&mut rest)),
            "{tag}: the slow start did not end: {rest:?}"
        );
        record.extend(rest);
        seen.push((tag, record));
    }
    eprintln!("{test}: {:#?}", seen[0].1);
    let reminders = (seen[0].1.iter())
        .filter(|l| l.ends_with("remains in forced drain mode."))
        .count();
    assert_eq!(reminders, 2, "{:#?}", seen[0].1);
    // HAProxy reminds at the drain itself too when its clock's second changed since the
    // server came back, which it reads from its last wake-up and shifts on a loaded host
    // (the alignment above then misses): two reminders in a row are compared as one.
    for (_, record) in &mut seen {
        record.dedup();
    }
    all_same(test, &seen);
}

/// `show servers state`'s `srv_op_state`, `srv_admin_state`, `srv_check_health` and
/// `srv_check_state` of a server, checked or not, through maintenance, health forced down
/// and up, and drain: maintenance sets the health to 0, which only checks set again.
#[test]
fn server_states_through_maintenance_are_as_with_haproxy() {
    let test = "fidelity-server-state";
    let dir = temp_dir(test);
    let commands = [
        "set server be/s1 state maint",
        "set server be/s1 state ready",
        "set server be/s1 health down",
        "set server be/s1 health up",
        "set server be/s1 state drain",
        "set server be/s1 state maint",
        "set server be/s1 state ready",
    ];
    let mut seen = Vec::new();
    for (tag, binary) in binaries(test) {
        let mut record = Vec::new();
        for opts in ["", "check inter 1h rise 3"] {
            let rig = Rig::start(
                &binary,
                &dir,
                &format!("{tag}-{}", opts.len()),
                "",
                [opts, ""],
            );
            // The check run at start-up has passed (srv_check_result 3): none runs after.
            let checked = || opts.is_empty() || server_state(&rig, "s1")[11] == "3";
            assert!(
                wait_until(Duration::from_secs(10), checked),
                "{tag}: no check"
            );
            for command in commands {
                cli(&rig.sock, command);
                let s1 = server_state(&rig, "s1");
                record.push(format!(
                    "[{opts}] {command}: op={} admin={} health={} check={}",
                    s1[5], s1[6], s1[12], s1[13]
                ));
            }
        }
        seen.push((tag, record));
    }
    eprintln!("{test}: {:#?}", seen[0].1);
    all_same(test, &seen);
}
