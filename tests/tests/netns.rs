//! The namespace harness itself: hosts reach each other over the switch, and nothing is left.

use hapx_tests::netns::{Network, harness_namespaces};
use hapx_tests::require;

#[test]
fn two_hosts_ping_each_other_over_the_bridge_and_everything_is_removed() {
    if !require::network_namespaces("netns::ping") || !require::command("netns::ping", "ping") {
        return;
    }
    let names;
    {
        let mut net = Network::new().expect("create the switch");
        let a = net
            .add_host("a", &["192.0.2.1/24", "2001:db8::1/64"])
            .expect("host a");
        let b = net
            .add_host("b", &["192.0.2.2/24", "2001:db8::2/64"])
            .expect("host b");
        for (from, to) in [(&a, "192.0.2.2"), (&b, "192.0.2.1"), (&a, "2001:db8::2")] {
            let out = net
                .run(from, &["ping", "-c", "1", "-W", "5", to])
                .expect("run ping");
            assert!(
                out.status.success(),
                "ping {to} from {}: {}",
                from.name,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        // Each host sees its own address and not the other's.
        let out = net
            .run(&a, &["ip", "-o", "address", "show", "dev", "eth0"])
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("192.0.2.1/24") && !shown.contains("192.0.2.2"),
            "{shown}"
        );
        assert_ne!(net.mac(&a).unwrap(), net.mac(&b).unwrap());
        names = net.namespaces();
        let present = harness_namespaces();
        assert!(
            names.iter().all(|n| present.contains(n)),
            "{names:?} not in {present:?}"
        );
    }
    let present = harness_namespaces();
    assert!(
        names.iter().all(|n| !present.contains(n)),
        "left behind: {present:?}"
    );
}

#[test]
fn processes_started_in_a_host_end_with_the_network() {
    if !require::network_namespaces("netns::processes") {
        return;
    }
    let pid;
    {
        let mut net = Network::new().expect("create the switch");
        let a = net.add_host("a", &["192.0.2.1/24"]).expect("host a");
        let mut sleeper = net.command(&a, "sleep");
        sleeper.arg("600");
        pid = net.spawn(sleeper).expect("spawn sleep");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        // The process really runs inside the host's namespace (once `ip netns exec` has
        // entered it, which takes a moment after the spawn).
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        let entered = (0..200).any(|_| {
            let ours = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
            ours != mine || {
                std::thread::sleep(std::time::Duration::from_millis(10));
                false
            }
        });
        assert!(entered, "pid {pid} never entered the host's namespace");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains("State:\tZ"),
        "pid {pid} still runs"
    );
}

#[test]
fn a_failed_set_up_step_cleans_up_what_was_made() {
    if !require::network_namespaces("netns::failed_setup") {
        return;
    }
    let names;
    {
        let mut net = Network::new().expect("create the switch");
        let err = net.add_host("bad", &["not-an-address"]).unwrap_err();
        assert!(err.to_string().contains("not-an-address"), "{err}");
        names = net.namespaces();
        assert_eq!(names.len(), 2, "{names:?}");
    }
    let present = harness_namespaces();
    assert!(
        names.iter().all(|n| !present.contains(n)),
        "left behind: {present:?}"
    );
}
