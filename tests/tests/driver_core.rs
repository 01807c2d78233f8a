//! The local driver (`hapx cluster start|stop`) with real agents: the resource-agents Dummy,
//! behind a wrapper that logs each call (see `hapx_tests::driver`). Each test runs the real
//! `hapx` binary on a private CIB file and checks the CIB it writes with Pacemaker's own
//! `crm_verify` and `crm_simulate`.

use std::time::Duration;

use hapx_tests::driver::{
    Fixture, Rsc, assert_pacemaker_reads_it_settled, last_op, monitors_recorded, prerequisites,
    started, stopped, transient,
};
use hapx_tests::wait::eventually;

const WAIT: Duration = Duration::from_secs(30);
const ORDER_A_B: &str = "<rsc_order id=\"o\" kind=\"Mandatory\" first=\"A\" then=\"B\"/>\
                         <rsc_colocation id=\"c\" score=\"INFINITY\" rsc=\"B\" with-rsc=\"A\"/>";

fn position(actions: &[String], line: &str) -> usize {
    actions
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} never ran: {actions:?}"))
}

fn rposition(actions: &[String], line: &str) -> usize {
    actions
        .iter()
        .rposition(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} never ran: {actions:?}"))
}

#[test]
fn order_is_honoured_on_start_and_reversed_on_stop() {
    if !prerequisites("order_is_honoured_on_start_and_reversed_on_stop") {
        return;
    }
    let mut f = Fixture::new("order");
    // B is listed first, so only the constraint can put A's start first.
    f.write_cib(&[Rsc::new("B"), Rsc::new("A")], ORDER_A_B);
    f.start_driver();
    f.wait_until("A and B started", WAIT, |d| {
        started(d, "A") && started(d, "B")
    });
    let actions = f.actions();
    assert!(
        position(&actions, "A start 0") < position(&actions, "B start 0"),
        "{actions:?}"
    );
    assert!(
        position(&actions, "A monitor 0") < position(&actions, "A start 0"),
        "probe first: {actions:?}"
    );
    assert!(
        position(&actions, "B monitor 0") < position(&actions, "A start 0"),
        "every resource is probed before anything starts: {actions:?}"
    );
    f.wait_until("A's and B's recurring monitors recorded", WAIT, |d| {
        monitors_recorded(d, &["A", "B"])
    });
    assert_pacemaker_reads_it_settled(&f);
    assert_eq!((f.count("A", "start"), f.count("B", "start")), (1, 1));

    let out = f.stop_driver();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actions = f.actions();
    assert!(
        rposition(&actions, "B stop 0") < rposition(&actions, "A stop 0"),
        "{actions:?}"
    );
    assert!(!f.state_file("A").exists() && !f.state_file("B").exists());
    let cib = f.cib();
    let state = cib
        .root
        .path(&["status", "node_state"])
        .expect("a node_state");
    assert_eq!(state.attr("crmd"), Some("offline"));
    let (ok, text) = f.crm_verify();
    assert!(
        ok && text.trim().is_empty(),
        "crm_verify -x after stop:\n{text}"
    );
}

#[test]
fn a_second_driver_names_the_first() {
    if !prerequisites("a_second_driver_names_the_first") {
        return;
    }
    let mut f = Fixture::new("second");
    f.write_cib(&[Rsc::new("A")], "");
    f.start_driver();
    f.wait_until("A started", WAIT, |d| started(d, "A"));
    let out = f
        .hapx()
        .args(["cluster", "start", "--foreground", "--node", "node1"])
        .output()
        .expect("running a second driver");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("already running (pid "), "{stderr}");
    let status = f
        .hapx()
        .args(["cluster", "status"])
        .output()
        .expect("cluster status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("Local driver: running (pid"), "{text}");
    assert!(
        text.contains("A\t(ocf:test:Logged):\t Started node1"),
        "{text}"
    );
    assert_eq!(f.count("A", "start"), 1);
}

#[test]
fn a_failed_monitor_restarts_the_resource_and_counts_the_failure() {
    if !prerequisites("a_failed_monitor_restarts_the_resource_and_counts_the_failure") {
        return;
    }
    let mut f = Fixture::new("restart");
    f.write_cib(&[Rsc::new("A").on_fail("restart")], "");
    f.start_driver();
    f.wait_until("A monitored", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_monitor_1000"))
    });
    // The resource dies behind the cluster's back: Dummy's state file goes.
    std::fs::remove_file(f.state_file("A")).expect("removing A's state");
    f.wait_until("a fail count and A restarted", WAIT, |d| {
        transient(d, "fail-count-A#monitor_1000").as_deref() == Some("1")
            && f.count("A", "start") == 2
            && started(d, "A")
    });
    assert!(f.state_file("A").exists(), "A runs again");
    assert_eq!(f.count("A", "start"), 2);
    assert_eq!(f.count("A", "stop"), 1);
    let cib = f.cib();
    let failure = cib
        .root
        .descendants()
        .find(|e| e.id() == Some("A_last_failure_0"))
        .expect("the failure is recorded");
    assert_eq!(failure.attr("operation_key"), Some("A_monitor_1000"));
    assert_eq!(failure.attr("rc-code"), Some("7"));
    f.wait_until("the new monitor recorded", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_monitor_1000") && e.attr("rc-code") == Some("0"))
    });
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn reaching_migration_threshold_stops_the_resource() {
    if !prerequisites("reaching_migration_threshold_stops_the_resource") {
        return;
    }
    let mut f = Fixture::new("threshold");
    f.write_cib(&[Rsc::new("A").meta("migration-threshold", "2")], "");
    f.start_driver();
    for failures in 1..=2 {
        f.wait_until("A monitored", WAIT, |d| {
            started(d, "A")
                && d.root
                    .descendants()
                    .any(|e| e.id() == Some("A_monitor_1000") && e.attr("rc-code") == Some("0"))
        });
        std::fs::remove_file(f.state_file("A")).expect("removing A's state");
        let count = failures.to_string();
        f.wait_until("the failure counted", WAIT, |d| {
            transient(d, "fail-count-A#monitor_1000").as_deref() == Some(count.as_str())
        });
    }
    f.wait_until("A stopped for good", WAIT, |d| stopped(d, "A"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(stopped(&f.cib(), "A"), "A stays stopped");
    assert_eq!(f.count("A", "start"), 2, "{:?}", f.actions());
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn failure_timeout_expires_the_fail_count_and_the_resource_comes_back() {
    if !prerequisites("failure_timeout_expires_the_fail_count_and_the_resource_comes_back") {
        return;
    }
    let mut f = Fixture::new("expiry");
    f.write_cib(
        &[Rsc::new("A")
            .meta("migration-threshold", "1")
            .meta("failure-timeout", "4s")],
        "",
    );
    f.start_driver();
    f.wait_until("A monitored", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_monitor_1000"))
    });
    std::fs::remove_file(f.state_file("A")).expect("removing A's state");
    f.wait_until("A stopped by the threshold", WAIT, |d| {
        stopped(d, "A") && transient(d, "fail-count-A#monitor_1000").is_some()
    });
    f.wait_until("the fail count expired and A started again", WAIT, |d| {
        transient(d, "fail-count-A#monitor_1000").is_none() && started(d, "A")
    });
    assert_eq!(
        f.count("A", "start"),
        2,
        "{:?}\n{}",
        f.actions(),
        f.driver_log()
    );
    // The driver logs the expiry right after writing the CIB the wait above saw.
    assert!(
        eventually(WAIT, || f.driver_log().contains("failure-timeout expired")),
        "{}",
        f.driver_log()
    );
    f.wait_until("the new monitor recorded", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_monitor_1000") && e.attr("rc-code") == Some("0"))
    });
    let (ok, text) = f.crm_verify();
    assert!(ok && text.trim().is_empty(), "crm_verify -x:\n{text}");
}

#[test]
fn a_driver_killed_mid_transition_is_replaced_without_duplicate_starts() {
    if !prerequisites("a_driver_killed_mid_transition_is_replaced_without_duplicate_starts") {
        return;
    }
    let mut f = Fixture::new("killed");
    f.write_cib(
        &[Rsc::new("A"), Rsc::new("B").param("start_delay", "3")],
        ORDER_A_B,
    );
    f.start_driver();
    // Kill the driver while B's (slow) start runs.
    let start = std::time::Instant::now();
    while !f.actions().iter().any(|l| l == "B start 0") {
        assert!(
            start.elapsed() < WAIT,
            "B never started: {}",
            f.driver_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    f.kill_driver();
    assert!(!f.state_file("B").exists(), "B's start was still running");
    f.start_driver();
    f.wait_until("A and B running under the new driver", WAIT, |d| {
        started(d, "A") && started(d, "B") && monitors_recorded(d, &["A", "B"])
    });
    assert_eq!(f.count("A", "start"), 1, "{:?}", f.actions());
    assert_eq!(f.count("B", "start"), 1, "{:?}", f.actions());
    assert!(
        f.driver_log().contains("a previous driver left running"),
        "{}",
        f.driver_log()
    );
    // The new driver probed both and adopted them.
    let last = last_op(&f.cib(), "A").expect("A's history");
    assert_eq!(last, ("monitor".to_string(), "0".to_string()));
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn a_cib_edited_while_an_action_runs_is_picked_up_after_it() {
    if !prerequisites("a_cib_edited_while_an_action_runs_is_picked_up_after_it") {
        return;
    }
    let mut f = Fixture::new("edit");
    let a = Rsc::new("A").param("start_delay", "3");
    f.write_cib(std::slice::from_ref(&a), "");
    f.start_driver();
    let start = std::time::Instant::now();
    while !f.actions().iter().any(|l| l == "A start 0") {
        assert!(
            start.elapsed() < WAIT,
            "A never started: {}",
            f.driver_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // While A's start runs, B is added.
    f.edit_config(&[a, Rsc::new("B")], ORDER_A_B);
    f.wait_until("B started", WAIT, |d| started(d, "A") && started(d, "B"));
    let log = f.driver_log();
    let a_done = log
        .find("A start on node1: rc=0")
        .expect("A's start logged");
    let rescheduled = log
        .find("the CIB changed while an action ran")
        .expect("the edit was noticed");
    assert!(a_done < rescheduled, "{log}");
    assert_eq!((f.count("A", "start"), f.count("B", "start")), (1, 1));
    f.wait_until("A's and B's recurring monitors recorded", WAIT, |d| {
        monitors_recorded(d, &["A", "B"])
    });
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn cleanup_forgets_failures_and_reprobes_without_a_restart() {
    if !prerequisites("cleanup_forgets_failures_and_reprobes_without_a_restart") {
        return;
    }
    let mut f = Fixture::new("cleanup");
    f.write_cib(&[Rsc::new("A").on_fail("restart")], "");
    f.start_driver();
    f.wait_until("A monitored", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_monitor_1000"))
    });
    std::fs::remove_file(f.state_file("A")).expect("removing A's state");
    f.wait_until("a fail count and A restarted", WAIT, |d| {
        transient(d, "fail-count-A#monitor_1000").is_some()
            && f.count("A", "start") == 2
            && started(d, "A")
    });
    let probes_before = f.count("A", "monitor");
    // crmsh's spelling; `hapx cluster cleanup A` does the same.
    let out = f
        .hapx()
        .args(["resource", "cleanup", "A"])
        .output()
        .expect("resource cleanup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Cleaned up A"));
    f.wait_until("A re-probed, fail count gone", WAIT, |d| {
        transient(d, "fail-count-A#monitor_1000").is_none()
            && !d
                .root
                .descendants()
                .any(|e| e.id() == Some("A_last_failure_0"))
            && started(d, "A")
            && d.root
                .descendants()
                .any(|e| e.id() == Some("A_monitor_1000"))
    });
    assert_eq!(
        f.count("A", "start"),
        2,
        "no start after the cleanup: {:?}",
        f.actions()
    );
    assert!(f.count("A", "monitor") > probes_before);
    let out = f
        .hapx()
        .args(["cluster", "cleanup", "nosuch"])
        .output()
        .expect("cluster cleanup");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resource nosuch does not exist"));
    let out = f
        .hapx()
        .args(["resource", "cleanup", "nosuch"])
        .output()
        .expect("resource cleanup");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resource nosuch does not exist"));
    assert_pacemaker_reads_it_settled(&f);
}

/// Kills A behind the driver's back once its monitor runs, and waits until the failure is
/// recorded.
fn fail_a_once(f: &mut Fixture, rsc: Rsc) {
    f.write_cib(&[rsc], "");
    f.start_driver();
    f.wait_until("A monitored", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_monitor_1000") && e.attr("rc-code") == Some("0"))
    });
    std::fs::remove_file(f.state_file("A")).expect("removing A's state");
    f.wait_until("the failure recorded", WAIT, |d| {
        d.root
            .descendants()
            .any(|e| e.id() == Some("A_last_failure_0"))
    });
    // Give the driver time to act on it (or, rightly, not to).
    std::thread::sleep(Duration::from_secs(3));
}

#[test]
fn on_fail_stop_leaves_the_resource_stopped() {
    if !prerequisites("on_fail_stop_leaves_the_resource_stopped") {
        return;
    }
    let mut f = Fixture::new("onfail-stop");
    fail_a_once(&mut f, Rsc::new("A").on_fail("stop"));
    let cib = f.cib();
    assert!(stopped(&cib, "A"), "{}", f.driver_log());
    assert_eq!(f.count("A", "start"), 1);
    assert_eq!(
        transient(&cib, "fail-count-A#monitor_1000").as_deref(),
        Some("1")
    );
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn on_fail_ignore_counts_nothing_and_leaves_the_resource_alone() {
    if !prerequisites("on_fail_ignore_counts_nothing_and_leaves_the_resource_alone") {
        return;
    }
    let mut f = Fixture::new("onfail-ignore");
    fail_a_once(&mut f, Rsc::new("A").on_fail("ignore"));
    let cib = f.cib();
    assert_eq!(f.count("A", "start"), 1, "{:?}", f.actions());
    assert_eq!(f.count("A", "stop"), 0, "{:?}", f.actions());
    assert_eq!(transient(&cib, "fail-count-A#monitor_1000"), None);
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn on_fail_block_leaves_the_failed_resource_untouched() {
    if !prerequisites("on_fail_block_leaves_the_failed_resource_untouched") {
        return;
    }
    let mut f = Fixture::new("onfail-block");
    fail_a_once(&mut f, Rsc::new("A").on_fail("block"));
    assert_eq!(f.count("A", "start"), 1, "{:?}", f.actions());
    assert_eq!(f.count("A", "stop"), 0, "{:?}", f.actions());
    let status = f
        .hapx()
        .args(["cluster", "status"])
        .output()
        .expect("cluster status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("blocked"), "{text}");
    assert_pacemaker_reads_it_settled(&f);
}

#[test]
fn on_fail_standby_moves_every_resource_off_the_node() {
    if !prerequisites("on_fail_standby_moves_every_resource_off_the_node") {
        return;
    }
    let mut f = Fixture::new("onfail-standby");
    f.write_cib(&[Rsc::new("A").on_fail("standby"), Rsc::new("B")], "");
    f.start_driver();
    f.wait_until("A monitored", WAIT, |d| {
        started(d, "B")
            && d.root
                .descendants()
                .any(|e| e.id() == Some("A_monitor_1000") && e.attr("rc-code") == Some("0"))
    });
    std::fs::remove_file(f.state_file("A")).expect("removing A's state");
    f.wait_until("both stopped: the node is in standby", WAIT, |d| {
        stopped(d, "A") && stopped(d, "B")
    });
    assert_eq!((f.count("A", "start"), f.count("B", "start")), (1, 1));
    assert_pacemaker_reads_it_settled(&f);
}
