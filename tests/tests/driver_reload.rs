//! Parameter reloads on the embedded cluster: a change of only reloadable parameters of a
//! running resource runs the agent's reload (`reload-agent` for an OCF 1.1 agent that
//! advertises it, `reload` for an OCF 1.0 one) once, without a stop or a start, and the history
//! records it as Pacemaker's controller does (as a start, with the new digests), so the next
//! pass, and `crm_simulate`, have nothing left to do. A change of a parameter the agent cannot
//! reload restarts the resource; a failed reload is a failure like any other.

use std::time::Duration;

use hapx_cib::xml::{Document, Element};
use hapx_tests::driver::{
    self, Fixture, Rsc, assert_pacemaker_reads_it_settled, started, stopped, transient,
};
use hapx_tests::require;

const WAIT: Duration = Duration::from_secs(30);

/// The driver's prerequisites and pacemaker's Dummy (the OCF 1.1 agent behind `Logged11`).
fn prerequisites(test: &str) -> bool {
    driver::prerequisites(test)
        && require::path(
            test,
            std::path::Path::new("/usr/lib/ocf/resource.d/pacemaker/Dummy"),
            "pacemaker's Dummy",
        )
}

fn op<'d>(doc: &'d Document, id: &str) -> Option<&'d Element> {
    doc.root
        .child("status")?
        .descendants()
        .find(|e| e.name == "lrm_rsc_op" && e.id() == Some(id))
}

/// The digest Pacemaker records for a one-time operation run with these parameters.
fn digest(f: &Fixture, rsc: &str, params: &[(&str, &str)]) -> String {
    let state = f.state_file(rsc).display().to_string();
    let all = params.iter().copied().chain([("state", state.as_str())]);
    hapx_cib::digest::op_digest(all, 0, 0)
}

/// Starts `rsc` and waits until it runs with its recurring monitor recorded.
fn start_settled(f: &mut Fixture, rsc: &Rsc) {
    f.write_cib(std::slice::from_ref(rsc), "");
    f.start_driver();
    let monitor = format!("{}_monitor_1000", rsc.id);
    f.wait_until("the resource started and monitored", WAIT, |d| {
        started(d, &rsc.id) && op(d, &monitor).is_some()
    });
}

/// Waits until the history shows `rsc` running with the digest of `params` and its monitor
/// rescheduled with them, then lets the driver run a few more passes.
fn wait_settled_with(f: &Fixture, rsc: &str, params: &[(&str, &str)]) {
    let want = digest(f, rsc, params);
    let last = format!("{rsc}_last_0");
    let monitor = format!("{rsc}_monitor_1000");
    f.wait_until("the new parameters recorded", WAIT, |d| {
        op(d, &last).is_some_and(|o| o.attr("op-digest") == Some(want.as_str()))
            && op(d, &monitor).is_some_and(|m| {
                m.attr("call-id").and_then(|c| c.parse::<i64>().ok())
                    > op(d, &last)
                        .and_then(|o| o.attr("call-id"))
                        .and_then(|c| c.parse().ok())
            })
    });
    // Several monitor intervals: a driver that kept rescheduling would act again meanwhile.
    std::thread::sleep(Duration::from_secs(3));
}

fn reload_once(agent: &str, action: &str, test: &str) {
    if !prerequisites(test) {
        return;
    }
    let mut f = Fixture::new(test);
    let a = Rsc {
        agent: agent.into(),
        ..Rsc::new("A")
    }
    .param("fake", "1");
    start_settled(&mut f, &a);
    let before = op(&f.cib(), "A_last_0")
        .cloned()
        .expect("A's start recorded");
    assert!(
        before.attr("op-restart-digest").is_some(),
        "a start of an agent that can reload records its restart digest: {:?}",
        before.attributes
    );
    assert_eq!(before.attr("op-force-restart"), Some("  state  "));

    let changed = Rsc {
        params: vec![("fake".into(), "2".into())],
        ..a.clone()
    };
    f.edit_config(std::slice::from_ref(&changed), "");
    wait_settled_with(&f, "A", &[("fake", "2")]);

    assert_eq!(
        (
            f.count("A", action),
            f.count("A", "start"),
            f.count("A", "stop")
        ),
        (1, 1, 0),
        "one {action}, no restart: {:?}\n{}",
        f.actions(),
        f.driver_log()
    );
    let cib = f.cib();
    let last = op(&cib, "A_last_0").expect("A's history");
    // Pacemaker records a successful reload as a start with the new parameters' digests.
    assert_eq!(last.attr("operation"), Some("start"));
    assert_eq!(last.attr("operation_key"), Some("A_start_0"));
    assert_eq!(last.attr("rc-code"), Some("0"));
    assert_ne!(last.attr("call-id"), before.attr("call-id"));
    assert_eq!(
        last.attr("op-restart-digest"),
        before.attr("op-restart-digest")
    );
    assert_pacemaker_reads_it_settled(&f);
    f.stop_driver();
}

#[test]
fn a_reloadable_change_runs_reload_agent_once_on_an_ocf_1_1_agent() {
    reload_once("ocf:test:Logged11", "reload-agent", "reload_agent_ocf11");
}

#[test]
fn a_reloadable_change_runs_the_legacy_reload_on_an_ocf_1_0_agent() {
    reload_once("ocf:test:Logged", "reload", "reload_legacy_ocf10");
}

#[test]
fn a_non_reloadable_change_restarts() {
    if !prerequisites("reload_restart") {
        return;
    }
    let mut f = Fixture::new("reload_restart");
    let a = Rsc {
        agent: "ocf:test:Logged11".into(),
        ..Rsc::new("A")
    };
    start_settled(&mut f, &a);
    // `state` is not reloadable: the agent must be stopped and started with it.
    let moved = f.dir.join("elsewhere.state").display().to_string();
    let mut xml = f.config_xml(std::slice::from_ref(&a), "");
    xml = xml.replace(&f.state_file("A").display().to_string(), moved.as_str());
    f.edit_config_xml(&xml);
    f.wait_until("A restarted", WAIT, |_| f.count("A", "start") == 2);
    let want = hapx_cib::digest::op_digest([("state", moved.as_str())], 0, 0);
    f.wait_until("A's new start recorded", WAIT, |d| {
        started(d, "A")
            && op(d, "A_last_0").is_some_and(|o| o.attr("op-digest") == Some(want.as_str()))
            && op(d, "A_monitor_1000").is_some()
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        (
            f.count("A", "reload-agent"),
            f.count("A", "stop"),
            f.count("A", "start")
        ),
        (0, 1, 2),
        "{:?}",
        f.actions()
    );
    assert_pacemaker_reads_it_settled(&f);
    f.stop_driver();
}

#[test]
fn a_failed_reload_is_a_failed_start_and_start_failure_is_fatal_applies() {
    if !prerequisites("reload_failed") {
        return;
    }
    let mut f = Fixture::new("reload_failed");
    let a = Rsc {
        agent: "ocf:test:Logged11".into(),
        ..Rsc::new("A")
    }
    .param("fake", "1");
    start_settled(&mut f, &a);
    let failing = Rsc {
        params: vec![
            ("fake".into(), "2".into()),
            ("fail_reload".into(), "1".into()),
        ],
        ..a.clone()
    };
    f.edit_config(std::slice::from_ref(&failing), "");
    // Pacemaker records a reload that ran and failed as a failed start (the executor's status
    // is "done"), and counts it as one: with start-failure-is-fatal (the default) the fail
    // count is INFINITY, so the resource is stopped and stays so.
    f.wait_until("A stopped after its failed reload", WAIT, |d| {
        stopped(d, "A") && transient(d, "fail-count-A#start_0").as_deref() == Some("INFINITY")
    });
    std::thread::sleep(Duration::from_secs(3));
    let cib = f.cib();
    let failure = op(&cib, "A_last_failure_0").expect("the failure recorded");
    assert_eq!(failure.attr("operation"), Some("start"));
    assert_eq!(failure.attr("operation_key"), Some("A_start_0"));
    assert_eq!(failure.attr("rc-code"), Some("1"));
    assert_eq!(
        (
            f.count("A", "reload-agent"),
            f.count("A", "stop"),
            f.count("A", "start")
        ),
        (1, 1, 1),
        "{:?}\n{}",
        f.actions(),
        f.driver_log()
    );
    assert_pacemaker_reads_it_settled(&f);
    f.stop_driver();
}
