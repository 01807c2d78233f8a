//! The Pacemaker harness itself: a real node comes up, runs a resource agent, and goes away.

use std::time::Duration;

use hapx_tests::pacemaker::{NodeOptions, PacemakerNode};

#[test]
fn a_one_node_cluster_runs_a_resource_and_stops_cleanly() {
    let Some(node) = PacemakerNode::start("pacemaker::one_node", NodeOptions::default()) else {
        return;
    };
    let pid = node.pid();
    let dir = node.dir().to_path_buf();

    // The node's hostname and cluster are its own, not the machine's.
    let out = node.run(&["hostname"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node1");

    // Pacemaker's executor runs an OCF agent for a resource created through its own CLI.
    let dummy = r#"<primitive id="probe-dummy" class="ocf" provider="heartbeat" type="Dummy"/>"#;
    let out = node
        .run(&[
            "cibadmin",
            "--create",
            "--scope",
            "resources",
            "--xml-text",
            dummy,
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "cibadmin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = node.wait_until(Duration::from_secs(60), |xml| {
        xml.lines()
            .any(|l| l.contains("id=\"probe-dummy\"") && l.contains("role=\"Started\""))
    });
    assert!(
        started.is_ok(),
        "Dummy never started: {:?}\n{}",
        started,
        node.log_tail(30)
    );

    drop(node);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .contains("State:\tZ"),
        "pacemakerd {pid} still runs"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}
