//! Server lifecycle keywords, side by side with HAProxy 2.6 (same configuration, same
//! traffic, same observations): `on-marked-down shutdown-sessions` closes a server's
//! established sessions when its checks mark it DOWN (a server without it keeps them), and
//! `on-marked-up shutdown-backup-sessions` closes the backup servers' sessions when the
//! active server comes back; both log HAProxy's termination codes. Bad values are refused
//! with HAProxy's messages.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{
    NamedServer, blank_check_duration, cli, free_port, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_lifecycle::{CheckPort, Lab, agree, fate, messages, session, status};
use hapx_tests::proxy_rules::{HAPROXY, Syslog};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A lab whose two servers answer each session with their names.
fn lab(test: &str, names: [&str; 2]) -> Lab<[NamedServer; 2]> {
    let servers = names.map(|n| NamedServer::start(n, LO, Duration::from_secs(30)));
    Lab::new(test, "tcp", servers)
}

/// The `tcplog` line of the first session logged on `server` (`be/NAME`): its server and
/// termination flags (words 3 and 6), skipping the state-change messages.
fn session_log(syslog: &Syslog, server: &str) -> String {
    for _ in 0..20 {
        let Some(line) = syslog.lines(1).pop() else {
            break;
        };
        let words: Vec<&str> = line.split(' ').collect();
        if words.len() > 6 && words[2] == "fe" && words[3] == format!("be/{server}") {
            return format!("{} {}", words[3], words[6]);
        }
    }
    String::new()
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// Per server name: the fate of the session it served.
    sessions: Vec<(String, &'static str)>,
    /// The killed session's log: `be/SERVER FLAGS`.
    log: String,
    /// `show stat` scur of each server after the change.
    scur: Vec<String>,
}

#[test]
fn on_marked_down_shuts_down_the_servers_sessions() {
    let lab = lab("lifecycle-down", ["a", "b"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let (check_a, check_b) = (free_port(), free_port());
    let be = format!(
        "  server a {} check port {check_a} inter 100ms fall 1 rise 1 on-marked-down shutdown-sessions\n\
         server b {} check port {check_b} inter 100ms fall 1 rise 1\n",
        lab.servers[0].addr, lab.servers[1].addr
    );
    let (ours, theirs) = lab.run("lifecycle-down", &be, |front| {
        let checks = (CheckPort::open(check_a), CheckPort::open(check_b));
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a")
            == "UP"
            && status(sock, "b") == "UP"));
        let mut conns: Vec<(String, TcpStream)> = (0..2).map(|_| session(front)).collect();
        conns.sort_by(|x, y| x.0.cmp(&y.0));
        // Both checks fail: both servers go DOWN; only a's session is closed.
        drop(checks);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a")
            == "DOWN"
            && status(sock, "b") == "DOWN"));
        let sessions = conns
            .iter_mut()
            .map(|(name, c)| (name.clone(), fate(c, Duration::from_millis(1500))))
            .collect();
        let log = session_log(syslog, "a");
        let stat = cli(sock, "show stat");
        let scur = ["a", "b"]
            .iter()
            .map(|s| {
                stat_row(&stat, "be", s)
                    .map(|r| r["scur"].clone())
                    .unwrap_or_default()
            })
            .collect();
        Observed {
            sessions,
            log,
            scur,
        }
    });
    let expected = Observed {
        sessions: vec![("a".into(), "closed"), ("b".into(), "open")],
        log: "be/a D-".into(),
        scur: vec!["0".into(), "1".into()],
    };
    agree(ours, theirs, expected);
}

#[test]
fn on_marked_up_shuts_down_the_backup_sessions() {
    let lab = lab("lifecycle-up", ["a", "bk"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let check_a = free_port();
    let be = format!(
        "  server a {} check port {check_a} inter 100ms fall 1 rise 1 on-marked-up shutdown-backup-sessions\n\
         server bk {} backup\n",
        lab.servers[0].addr, lab.servers[1].addr
    );
    let (ours, theirs) = lab.run("lifecycle-up", &be, |front| {
        // a's checks fail from the start: its traffic goes to the backup.
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        let (name, mut conn) = session(front);
        let _checks = CheckPort::open(check_a);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "UP"));
        let sessions = vec![(name, fate(&mut conn, Duration::from_millis(1500)))];
        let log = session_log(syslog, "bk");
        // New sessions go to a again.
        let (next, _) = session(front);
        Observed {
            sessions,
            log,
            scur: vec![next],
        }
    });
    let expected = Observed {
        sessions: vec![("bk".into(), "closed")],
        log: "be/bk U-".into(),
        scur: vec!["a".into()],
    };
    agree(ours, theirs, expected);
}

#[test]
fn maintenance_shuts_down_the_sessions_too() {
    let lab = lab("lifecycle-maint", ["a", "b"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let be = format!(
        "  server a {} on-marked-down shutdown-sessions\n  server b {} backup\n",
        lab.servers[0].addr, lab.servers[1].addr
    );
    let (ours, theirs) = lab.run("lifecycle-maint", &be, |front| {
        let (name, mut conn) = session(front);
        cli(sock, "disable server be/a");
        let sessions = vec![(name, fate(&mut conn, Duration::from_millis(1500)))];
        let log = session_log(syslog, "a");
        let (next, _) = session(front);
        Observed {
            sessions,
            log,
            scur: vec![status(sock, "a"), next],
        }
    });
    let expected = Observed {
        sessions: vec![("a".into(), "closed")],
        log: "be/a D-".into(),
        scur: vec!["MAINT".into(), "b".into()],
    };
    agree(ours, theirs, expected);
}

/// What `show stat` says of server `a` and the backend during a slow start: the distinct
/// successive (status, weight, throttle, backend weight) of `a`, sampled every 50ms for
/// `span`.
fn ramp(sock: &Path, span: Duration) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let end = std::time::Instant::now() + span;
    while std::time::Instant::now() < end {
        let stat = cli(sock, "show stat");
        let (Some(a), Some(be)) = (stat_row(&stat, "be", "a"), stat_row(&stat, "be", "BACKEND"))
        else {
            continue;
        };
        let now = format!(
            "{} w={} throttle={} be={}",
            a["status"], a["weight"], a["throttle"], be["weight"]
        );
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        thread::sleep(Duration::from_millis(50));
    }
    seen
}

#[test]
fn slowstart_ramps_the_weight_as_haproxy() {
    let lab = lab("lifecycle-slowstart", ["a", "b"]);
    let sock = &lab.sock;
    let check_a = free_port();
    let be = format!(
        "  server a {} check port {check_a} inter 100ms fall 1 rise 1 weight 10 slowstart 3s\n         server b {} weight 10\n",
        lab.servers[0].addr, lab.servers[1].addr
    );
    let (ours, theirs) = lab.run("lifecycle-slowstart", &be, |front| {
        // No slow start when the proxy starts: a's checks fail, then pass.
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        let checks = CheckPort::open(check_a);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "UP"));
        // Just back, a has 1/17 of the traffic (10 of 16 * 10 + 10), not half of it.
        let first: Vec<String> = (0..34).map(|_| session(front).0).collect();
        let a_share = first.iter().filter(|n| *n == "a").count();
        let mut seen = ramp(sock, Duration::from_millis(3500));
        // Out of maintenance too, it starts slowly.
        cli(sock, "disable server be/a");
        cli(sock, "enable server be/a");
        seen.extend(ramp(sock, Duration::from_millis(500)));
        drop(checks);
        (a_share, seen)
    });
    let (a_share, seen) = &ours;
    // HAProxy's weighted round robin and hapx's place the server's turns a little
    // differently: 2 of 34, give or take one.
    assert!((1..=3).contains(a_share), "{ours:?}");
    // 3 s: 1/16, 6/16, 11/16 of the weight 10 at each whole second (HAProxy's
    // `(16 * e + 3) / 3`), then all of it.
    let expected: Vec<String> = [
        "UP w=1 throttle=6 be=11",
        "UP w=4 throttle=37 be=14",
        "UP w=7 throttle=68 be=17",
        "UP w=10 throttle= be=20",
        "UP w=1 throttle=6 be=11",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(*seen, expected);
    if let Some((their_share, their_seen)) = theirs {
        assert_eq!(*seen, their_seen, "hapx-proxy vs HAProxy");
        assert!(
            their_share.abs_diff(*a_share) <= 1,
            "{ours:?} vs {their_share}"
        );
    }
}

#[test]
fn a_tracking_server_follows_the_tracked_servers_checks() {
    let lab = lab("lifecycle-track", ["a", "b"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let check_c = free_port();
    let be = format!(
        "  server a {} track be2/c on-marked-down shutdown-sessions\n  server b {}\n\
         backend be2\n  server c {} check port {check_c} inter 100ms fall 1 rise 1\n",
        lab.servers[0].addr, lab.servers[1].addr, lab.servers[0].addr
    );
    let (ours, theirs) = lab.run("lifecycle-track", &be, |front| {
        // c's checks fail from the start, then pass: a follows.
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        let mut seen = vec![format!(
            "while DOWN: {}",
            (0..4)
                .map(|_| session(front).0)
                .collect::<Vec<_>>()
                .join(",")
        )];
        let checks = CheckPort::open(check_c);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "UP"));
        let mut conns: Vec<(String, TcpStream)> = (0..2).map(|_| session(front)).collect();
        conns.sort_by(|x, y| x.0.cmp(&y.0));
        let row = stat_row(&cli(sock, "show stat"), "be", "a").unwrap();
        seen.push(format!("{} tracked={}", row["status"], row["tracked"]));
        // c goes DOWN: a follows, its session is shut down (its own `on-marked-down`).
        drop(checks);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        for (name, conn) in &mut conns {
            seen.push(format!(
                "{name}: {}",
                fate(conn, Duration::from_millis(1500))
            ));
        }
        // a's messages, in order.
        // The count of sessions in the last one races with their shutdown, in HAProxy too.
        let mut found = messages(syslog, &["Server be/a "], 3);
        if let Some(last) = found.last_mut() {
            *last = last.replace(" 1 sessions active", " 0 sessions active");
        }
        seen.extend(found);
        seen
    });
    let expected = [
        "while DOWN: b,b,b,b",
        "UP tracked=be2/c",
        "a: closed",
        "b: open",
        "Server be/a is DOWN via be2/c. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/a is UP via be2/c. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.",
        "Server be/a is DOWN via be2/c. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

#[test]
fn log_health_checks_logs_each_change_of_health() {
    let lab = lab("lifecycle-loghc", ["a", "b"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let check_a = free_port();
    let be = format!(
        "  option log-health-checks\n  server a {} check port {check_a} inter 100ms fall 2 rise 2\n\
         server b {}\n",
        lab.servers[0].addr, lab.servers[1].addr
    );
    let (ours, theirs) = lab.run("lifecycle-loghc", &be, |_| {
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        let checks = CheckPort::open(check_a);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "UP"));
        drop(checks);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        // A check's duration is 0 or 1 ms by the machine's load, in either proxy.
        messages(
            syslog,
            &["Health check for server be/a ", "Server be/a "],
            8,
        )
        .iter()
        .map(|m| blank_check_duration(m))
        .collect::<Vec<_>>()
    });
    let refused =
        "reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms";
    let passed = "reason: Layer4 check passed, check duration: Nms";
    // The changes of state leave out the check's outcome, logged just before.
    let expected: Vec<String> = vec![
        format!("Health check for server be/a failed, {refused}, status: 0/2 DOWN."),
        "Server be/a is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into(),
        format!("Health check for server be/a succeeded, {passed}, status: 1/2 DOWN."),
        format!("Health check for server be/a succeeded, {passed}, status: 2/2 UP."),
        "Server be/a is UP. 2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.".into(),
        format!("Health check for server be/a failed, {refused}, status: 1/2 UP."),
        format!("Health check for server be/a failed, {refused}, status: 0/2 DOWN."),
        "Server be/a is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.".into(),
    ];
    agree(ours, theirs, expected);
}

#[test]
fn observed_connection_errors_mark_the_server_down() {
    let lab = lab("lifecycle-observe", ["a", "b"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let check_a = free_port();
    // a's own port refuses connections; its checks (on another port) pass.
    let refusing = TcpListener::bind((LO, 0)).unwrap().local_addr().unwrap();
    let be = format!(
        "  retries 0\n  server a {refusing} check port {check_a} inter 100ms fall 3 rise 100 observe layer4 error-limit 2 on-error mark-down\n\
         server b {}\n",
        lab.servers[1].addr
    );
    // Open before the proxies start: a is never DOWN by its checks (rise 100 would keep it).
    let _checks = CheckPort::open(check_a);
    let (ours, theirs) = lab.run("lifecycle-observe", &be, |front| {
        assert!(wait_until(Duration::from_secs(5), || {
            stat_row(&cli(sock, "show stat"), "be", "a")
                .is_some_and(|r| r["check_status"] == "L4OK")
        }));
        // Round robin: a, b, a (the second error in a row marks a DOWN), then b only.
        let mut seen: Vec<String> = (0..6).map(|_| session(front).0).collect();
        let row = stat_row(&cli(sock, "show stat"), "be", "a").unwrap();
        seen.extend(
            [
                "status",
                "check_status",
                "hanafail",
                "chkfail",
                "chkdown",
                "econ",
            ]
            .map(|k| format!("{k}={}", row[k])),
        );
        // Whether the failed attempt still counts as a session races in HAProxy.
        let message = messages(syslog, &["Server be/a "], 1).concat();
        seen.push(message.replace(" 1 sessions active", " 0 sessions active"));
        seen
    });
    let expected = [
        "",
        "b",
        "",
        "b",
        "b",
        "b",
        "status=DOWN",
        "check_status=HANA",
        "hanafail=1",
        "chkfail=1",
        "chkdown=1",
        "econ=2",
        "Server be/a is DOWN, reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: L4 unsuccessful connection\". 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

/// `haproxy -c` on a server line with `option`: exit code and the alert's text after the
/// place.
fn refusal(binary: &Path, dir: &Path, option: &str) -> (i32, String) {
    let file = dir.join("bad.cfg");
    std::fs::write(
        &file,
        format!(
            "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend f\n  bind 127.0.0.1:1\n  default_backend b\nbackend b\n  server s 127.0.0.1:2 {option}\n"
        ),
    )
    .unwrap();
    let out = Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("running the checker");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let place = format!("{}:10] : ", file.display());
    let message = stderr
        .lines()
        .find_map(|l| l.split_once(&place).map(|(_, m)| m.to_string()))
        .unwrap_or_default();
    // HAProxy names the server first (`'server b/s' : MESSAGE`), and ends its messages
    // with one more dot.
    let message = message
        .strip_prefix("'server b/s' : ")
        .map_or(message.clone(), String::from)
        .replace("..", ".");
    (out.status.code().unwrap_or(-1), message)
}

#[test]
fn bad_lifecycle_values_are_refused_as_haproxy_does() {
    let dir = temp_dir("lifecycle-bad");
    let haproxy = require::path("lifecycle-bad", Path::new(HAPROXY), "HAProxy");
    for option in [
        "on-marked-down foo",
        "on-marked-up shutdown-sessions",
        "slowstart 10k",
        "slowstart -1",
        "slowstart 9999999999",
        "track s",
        "track s2",
        "track nob/s",
        "check track s",
        "track s2\n  server s2 127.0.0.1:3",
        "observe foo",
        "error-limit 0",
        "error-limit x",
        "on-error foo",
    ] {
        let ours = refusal(&bins::path("hapx-proxy"), &dir, option);
        assert_eq!(ours.0, 1, "{option}: {ours:?}");
        assert!(!ours.1.is_empty(), "{option}: {ours:?}");
        if haproxy {
            assert_eq!(ours, refusal(Path::new(HAPROXY), &dir, option), "{option}");
        }
    }
    for option in [
        "on-marked-down shutdown-sessions",
        "on-marked-up shutdown-backup-sessions",
        "slowstart 1500ms",
        "check observe layer4 error-limit 3 on-error sudden-death",
        "track s2\n  server s2 127.0.0.1:3 check",
        "track b2/s3\n  server s2 127.0.0.1:3 track s\nbackend b2\n  server s3 127.0.0.1:4 check",
    ] {
        let ours = refusal(&bins::path("hapx-proxy"), &dir, option);
        assert_eq!(ours, (0, String::new()), "{option}");
    }
}
