//! A server's state counters through maintenance and drain, side by side with HAProxy 2.6:
//! `chkdown` counts a running server going into maintenance, `downtime` counts while it is
//! there (and loses that time when it comes back UP); a DOWN server entering maintenance
//! keeps its `lastchg` (and so do its trackers); drain restarts `lastchg` and leaving it
//! adds the drained time to `downtime`. A check under way shows `* ` before its status in
//! `show stat` and the in-progress flag (1) in `show servers state`'s check state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, silent_server, stat_row, wait_until};
use hapx_tests::proxy_lifecycle::{CheckPort, Lab, agree, status};

/// `be/server`'s `show stat` row.
fn row(sock: &Path, server: &str) -> HashMap<String, String> {
    stat_row(&cli(sock, "show stat"), "be", server).unwrap_or_default()
}

/// A number column of `be/server` (0 when empty).
fn number(sock: &Path, server: &str, column: &str) -> u64 {
    row(sock, server)
        .get(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `be/server`'s `show servers state` fields by name.
fn server_state(sock: &Path, server: &str) -> HashMap<String, String> {
    let out = cli(sock, "show servers state be");
    let mut lines = out.lines().skip(1);
    let names: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(' ')
        .map(String::from)
        .collect();
    lines
        .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
        .find(|f| f.get(3).is_some_and(|n| n == server))
        .map(|f| names.into_iter().zip(f).collect())
        .unwrap_or_default()
}

/// Waits (at most `secs` + 10 s) until `be/server`'s `column` reaches `secs`.
fn wait_column(sock: &Path, server: &str, column: &str, secs: u64) {
    let limit = Duration::from_secs(secs + 10);
    assert!(
        wait_until(limit, || number(sock, server, column) >= secs),
        "{server} {column} never reached {secs}"
    );
}

/// Servers `up` (its checks pass), `down` (they fail) and a tracker of each.
fn lab(test: &str) -> (Lab<()>, String, CheckPort) {
    let lab = Lab::new(test, "tcp", ());
    let open = free_port();
    let closed = free_port();
    let be = format!(
        "  server up 127.0.0.1:{open} check inter 1s\n\
         \x20 server down 127.0.0.1:{closed} check inter 1s\n\
         \x20 server tup 127.0.0.1:{open} track be/up\n\
         \x20 server tdown 127.0.0.1:{open} track be/down\n"
    );
    (lab, be, CheckPort::open(open))
}

/// The first word of `be/server`'s status (`DRAIN` of `DRAIN 1/3`).
fn state_word(sock: &Path, server: &str) -> String {
    let status = status(sock, server);
    status.split(' ').next().unwrap_or_default().to_string()
}

fn settled(sock: &Path) {
    assert!(wait_until(Duration::from_secs(10), || {
        status(sock, "up") == "UP" && status(sock, "down") == "DOWN"
    }));
}

#[test]
fn maintenance_counts_a_running_servers_stop_and_keeps_a_down_ones_clock() {
    let (lab, be, _port) = lab("maint-counters");
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("maint-counters", &be, |_: SocketAddr| {
        settled(sock);
        wait_column(sock, "down", "lastchg", 4);
        cli(sock, "set server be/up state maint");
        cli(sock, "disable server be/down");
        let mut seen = Vec::new();
        let after = row(sock, "down");
        // Its clock runs on from its DOWN: not restarted, its downtime with it.
        seen.push(format!(
            "down chkdown={} lastchg kept={} downtime=lastchg:{}",
            after["chkdown"],
            number(sock, "down", "lastchg") >= 4,
            after["downtime"] == after["lastchg"]
        ));
        seen.push(format!(
            "tdown lastchg kept={}",
            number(sock, "tdown", "lastchg") >= 4
        ));
        // The running one stopped: counted, and its downtime counts.
        wait_column(sock, "up", "downtime", 2);
        let up = row(sock, "up");
        seen.push(format!("up {} chkdown={}", up["status"], up["chkdown"]));
        let states = ["up", "down", "tup", "tdown"].map(|s| {
            let st = server_state(sock, s);
            format!("{s} health={}", st["srv_check_health"])
        });
        seen.extend(states);
        // Back from maintenance: UP with no downtime (HAProxy restarts the clock first).
        cli(sock, "set server be/up state ready");
        assert!(wait_until(Duration::from_secs(5), || status(sock, "up") == "UP"));
        let up = row(sock, "up");
        seen.push(format!(
            "up {} chkdown={} downtime={}",
            up["status"], up["chkdown"], up["downtime"]
        ));
        cli(sock, "enable server be/down");
        // Its first check fails again: one more stop.
        assert!(wait_until(Duration::from_secs(5), || {
            number(sock, "down", "chkdown") == 2
        }));
        seen.push(format!(
            "tdown lastchg restarted={}",
            number(sock, "tdown", "lastchg") < 4
        ));
        seen
    });
    let expected = [
        "down chkdown=1 lastchg kept=true downtime=lastchg:true",
        "tdown lastchg kept=true",
        "up MAINT chkdown=1",
        "up health=0",
        "down health=0",
        // A running tracker drops to 0, a stopped one keeps its health.
        "tup health=0",
        "tdown health=2",
        "up UP chkdown=1 downtime=0",
        "tdown lastchg restarted=true",
    ];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

#[test]
fn drain_restarts_lastchg_and_leaving_it_adds_to_downtime() {
    let (lab, be, _port) = lab("drain-counters");
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("drain-counters", &be, |_: SocketAddr| {
        settled(sock);
        let mut seen = Vec::new();
        wait_column(sock, "down", "lastchg", 2);
        // A DOWN server drained: its clock and downtime start again.
        cli(sock, "set server be/down state drain");
        let down = row(sock, "down");
        seen.push(format!(
            "down {} restarted={} downtime=lastchg:{}",
            down["status"],
            number(sock, "down", "lastchg") < 2,
            down["downtime"] == down["lastchg"]
        ));
        // A running one drained, then back: the drained time counts as down.
        cli(sock, "set server be/up state drain");
        let drained = row(sock, "up");
        seen.push(format!(
            "up {} downtime={}",
            drained["status"], drained["downtime"]
        ));
        seen.push(format!("tup {}", status(sock, "tup")));
        wait_column(sock, "up", "lastchg", 2);
        cli(sock, "set server be/up state ready");
        let up = row(sock, "up");
        seen.push(format!(
            "up {} chkdown={} drained time added={}",
            up["status"],
            up["chkdown"],
            number(sock, "up", "downtime") >= 2
        ));
        seen.push(format!("tup {}", status(sock, "tup")));
        seen
    });
    let expected = [
        "down DOWN restarted=true downtime=lastchg:true",
        "up DRAIN downtime=0",
        "tup DRAIN",
        "up UP chkdown=0 drained time added=true",
        "tup UP",
    ];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

#[test]
fn leaving_maintenance_into_drain_drains_the_trackers_on_the_way_out() {
    let (lab, be, _port) = lab("maint-to-drain");
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("maint-to-drain", &be, |_: SocketAddr| {
        settled(sock);
        cli(sock, "set server be/up state maint");
        cli(sock, "set server be/up state drain");
        let backend = stat_row(&cli(sock, "show stat"), "be", "BACKEND").unwrap_or_default();
        let mut seen = vec![
            // (Its health counts after the status come and go with its next check.)
            format!("up {}", state_word(sock, "up")),
            format!("tup {}", state_word(sock, "tup")),
            // Down once, when the last server taking traffic went into maintenance.
            format!("backend chkdown={}", backend["chkdown"]),
        ];
        seen.extend(hapx_tests::proxy_lifecycle::messages(
            &lab.syslog,
            &["Server be/tup "],
            3,
        ));
        seen
    });
    let expected = [
        "up DRAIN",
        "tup DRAIN",
        "backend chkdown=1",
        "Server be/tup is going DOWN for maintenance via be/up. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "Server be/tup is UP/DRAIN (leaving maintenance).",
        "Server be/tup is leaving forced drain but remains in drain mode via be/up.",
    ];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

#[test]
fn a_check_under_way_is_starred_until_its_result() {
    let lab = Lab::new("check-in-progress", "tcp", ());
    // It accepts and never answers: with a long `timeout check`, each check stays under way.
    let silent = silent_server();
    let be = format!(
        "  timeout check 60s\n  option tcp-check\n  tcp-check expect string OK\n\
         \x20 server s {silent} check inter 1s\n"
    );
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("check-in-progress", &be, |_: SocketAddr| {
        let starred = || {
            row(sock, "s")
                .get("check_status")
                .is_some_and(|s| s.starts_with("* "))
        };
        assert!(wait_until(Duration::from_secs(10), starred));
        let r = row(sock, "s");
        let st = server_state(sock, "s");
        vec![
            format!("{} {}", r["check_status"], r["check_desc"]),
            format!("check_state={}", st["srv_check_state"]),
        ]
    });
    let expected = ["* INI Initializing", "check_state=7"];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

/// A server leaving maintenance comes back at `rise` and waits for its next check: HAProxy's
/// paused check keeps its schedule, so a server in maintenance since the start (`disabled`,
/// its first tick already passed) is not checked at once, and is `UP 1/2` until that check.
#[test]
fn leaving_maintenance_waits_for_the_next_check_at_rise() {
    let lab = Lab::new("maint-recheck", "tcp", ());
    let open = free_port();
    let _port = CheckPort::open(open);
    // `inter` long enough that reading the state after `ready` comes before the next check.
    let be = format!("  server m1 127.0.0.1:{open} check inter 4s rise 2 fall 2 disabled\n");
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("maint-recheck", &be, |_: SocketAddr| {
        let mut seen = vec![format!("start {}", status(sock, "m1"))];
        cli(sock, "set server be/m1 state ready");
        let health = server_state(sock, "m1")["srv_check_health"].clone();
        seen.push(format!("ready {} health={health}", status(sock, "m1")));
        assert!(wait_until(Duration::from_secs(10), || status(sock, "m1") == "UP"));
        seen.push(format!("checked {}", status(sock, "m1")));
        seen
    });
    let expected = ["start MAINT", "ready UP 1/2 health=2", "checked UP"];
    agree(ours, theirs, expected.map(String::from).to_vec());
}
