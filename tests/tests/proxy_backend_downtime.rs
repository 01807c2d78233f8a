//! A backend's `downtime` and `lastchg` in `show stat`, side by side with HAProxy 2.6: the
//! time it has no server taking connections counts (HAProxy's `be_downtime`), added up when
//! a server runs again or leaves drain, lost when one leaves maintenance (HAProxy only
//! restarts `lastchg` then). The test holds the servers out from the runtime API and waits
//! on the counts it reads: seconds are compared as what two clock readings allow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::side_by_side;

/// How long a test waits for a count to reach what it needs (never this long).
const PATIENCE: Duration = Duration::from_secs(20);

/// The columns compared word for word at each step.
const COLUMNS: [&str; 5] = ["status", "weight", "act", "bck", "chkdown"];

/// What one proxy showed at one step: the backend row's compared columns, its downtime
/// and its lastchg.
#[derive(Debug)]
struct Step {
    label: &'static str,
    columns: Vec<String>,
    downtime: u64,
    lastchg: u64,
}

fn backend_row(sock: &Path) -> HashMap<String, String> {
    stat_row(&cli(sock, "show stat"), "d", "BACKEND").expect("backend d's row")
}

fn seconds(row: &HashMap<String, String>, column: &str) -> u64 {
    row.get(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a number in {column}: {row:?}"))
}

fn step(sock: &Path, label: &'static str) -> Step {
    let row = backend_row(sock);
    Step {
        label,
        columns: COLUMNS
            .iter()
            .map(|c| row.get(*c).cloned().unwrap_or_default())
            .collect(),
        downtime: seconds(&row, "downtime"),
        lastchg: seconds(&row, "lastchg"),
    }
}

/// Waits until the backend's downtime reaches `at_least` seconds.
fn wait_downtime(sock: &Path, at_least: u64) {
    assert!(
        wait_until(PATIENCE, || seconds(&backend_row(sock), "downtime")
            >= at_least),
        "downtime never reached {at_least}: {:?}",
        backend_row(sock)
    );
}

/// Each command, checked accepted (HAProxy and hapx answer nothing).
fn run(sock: &Path, commands: &[&str]) {
    for command in commands {
        let answer = cli(sock, command);
        assert!(answer.trim().is_empty(), "{command}: {answer}");
    }
}

#[test]
fn backend_downtime_counts_while_no_server_takes_connections_as_haproxy() {
    let dir = temp_dir("backend-downtime");
    let sock = dir.join("admin.sock");
    let port = free_port();
    let conf = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend d\n\
         backend d\n  server s1 127.0.0.1:9\n  server s2 127.0.0.1:9 backup\n",
        sock.display()
    );
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side("backend-downtime", &conf, front, |_| {
        let mut steps = vec![step(&sock, "started")];
        // Both drained: no server takes connections; the time counts as it passes.
        run(
            &sock,
            &["set server d/s1 state drain", "set server d/s2 state drain"],
        );
        wait_downtime(&sock, 1);
        steps.push(step(&sock, "drained"));
        // One back: the time down is kept, `lastchg` restarts.
        let back = Instant::now();
        run(&sock, &["set server d/s1 state ready"]);
        steps.push(step(&sock, "ready again"));
        let since_back = back.elapsed().as_secs() + 1;
        // Both in maintenance, then one out of it: that time is not added.
        let kept = steps.last().map_or(0, |s| s.downtime);
        run(&sock, &["disable server d/s1", "disable server d/s2"]);
        wait_downtime(&sock, kept + 1);
        steps.push(step(&sock, "in maintenance"));
        run(
            &sock,
            &["enable server d/s1", "set server d/s2 state ready"],
        );
        steps.push(step(&sock, "out of maintenance"));
        (steps, since_back)
    });
    check(&ours);
    if let Some(theirs) = theirs {
        check(&theirs);
        for (mine, haproxy) in ours.0.iter().zip(&theirs.0) {
            assert_eq!(mine.label, haproxy.label);
            assert_eq!(
                mine.columns, haproxy.columns,
                "{}: {COLUMNS:?} (hapx-proxy, HAProxy)",
                mine.label
            );
        }
    }
}

/// What both proxies must show: the downtime counted while down, kept once back, the time
/// in maintenance not added; `lastchg` restarted when a server came back.
fn check((steps, since_back): &(Vec<Step>, u64)) {
    let at = |label: &str| {
        steps
            .iter()
            .find(|s| s.label == label)
            .unwrap_or_else(|| panic!("no {label} in {steps:?}"))
    };
    assert_eq!(at("started").downtime, 0, "{steps:?}");
    assert_eq!(at("drained").columns[0], "DOWN", "{steps:?}");
    let ready = at("ready again");
    assert_eq!(ready.columns[0], "UP", "{steps:?}");
    assert!(ready.downtime >= at("drained").downtime, "{steps:?}");
    assert!(ready.lastchg <= *since_back, "lastchg restarted: {steps:?}");
    assert!(at("in maintenance").downtime > ready.downtime, "{steps:?}");
    let out = at("out of maintenance");
    assert_eq!(out.columns[0], "UP", "{steps:?}");
    assert_eq!(out.downtime, ready.downtime, "{steps:?}");
}
