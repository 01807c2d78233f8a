//! `hapx lab` end to end, with real Corosync and Pacemaker: the seed's "Test High
//! Availability". One lab (hapx stack, the seed's crm script) is shared by the scenarios, in
//! order, to keep the run short:
//!
//! 1. failover: with the probe running, hapx-node01 is powered off; hapx-node02 holds the VIP
//!    and the proxy, the VIP is on exactly one node's interface, the client's neighbour entry
//!    for the VIP is node 2's MAC, and requests are answered again;
//! 2. no failback: hapx-node01 comes back and the resources stay (resource-stickiness=100);
//! 3. a proxy killed on the active node is restarted there by Pacemaker through the agent;
//! 4. migration-threshold=2 (on the VIP resource, as the seed sets it): after two failures of
//!    the VIP the resources move to the other node.
//!
//! `hapx lab down` then removes everything; the test checks that nothing is left.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hapx_shell::lab::state::{Role, State};
use hapx_shell::lab::{backend, net, node, ops, probe};
use hapx_tests::bins;
use hapx_tests::pacemaker::PacemakerNode;
use hapx_tests::require;

const TEST: &str = "lab_failover";
const NODE1: &str = "hapx-node01";
const NODE2: &str = "hapx-node02";
const VIP_RSC: &str = "virtual-ip-resource";
const PROXY_RSC: &str = "haproxy-resource";

/// The lab of this test; `hapx lab down` on drop, so a failing test leaves nothing behind.
struct Lab {
    name: String,
}

impl Lab {
    fn hapx(&self, args: &[&str]) -> Output {
        Command::new(bins::path("hapx"))
            .args(["lab", "--name", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run hapx lab")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.hapx(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "hapx lab {}: {text}", args.join(" "));
        text
    }

    fn state(&self) -> State {
        State::load(&self.name)
            .unwrap()
            .expect("the lab's state file")
    }

    fn pid(&self, node: &str) -> u32 {
        self.state()
            .host(node)
            .and_then(|h| h.pid)
            .expect("the node runs")
    }

    fn netns(&self, host: &str) -> String {
        self.state().host(host).expect("the host").netns.clone()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.hapx(&["down"]);
        if !out.status.success() {
            eprintln!("hapx lab down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Polls `check` until it holds; panics with `what` and the cluster's view when it does not.
fn wait_for(lab: &Lab, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        thread::sleep(Duration::from_millis(250));
    }
    let view = ops::crm_mon_text(&lab.state()).unwrap_or_default();
    panic!("{what}: not within {timeout:?}; crm_mon:\n{view}");
}

/// Both resources are active on `node` alone, as `observer`'s Pacemaker sees it.
fn resources_on(lab: &Lab, observer: &str, node: &str) -> bool {
    let xml = node::crm_mon_xml(lab.pid(observer)).unwrap_or_default();
    [VIP_RSC, PROXY_RSC]
        .iter()
        .all(|rsc| node::resource_nodes(&xml, rsc) == vec![node.to_string()])
}

fn served(lab: &Lab) -> Option<String> {
    let state = lab.state();
    let target = SocketAddr::new(state.vip.parse().unwrap(), backend::PORT);
    ops::in_netns(&lab.netns("client"), move || {
        probe::request(target, Duration::from_millis(1000))
    })
    .unwrap()
}

fn proxy_pid(lab: &Lab, node: &str) -> Option<u32> {
    net::processes_in(&lab.netns(node)).into_iter().find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "hapx-proxy")
            && net::process_runs(*pid)
    })
}

fn fail_count(lab: &Lab, observer: &str, rsc: &str, node: &str) -> u32 {
    let out = node::run(
        lab.pid(observer),
        &["crm_failcount", "--query", "-r", rsc, "-N", node],
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("value=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_seeds_high_availability_test_on_a_two_node_lab() {
    if !PacemakerNode::available(TEST) || !require::command(TEST, "setsid") {
        return;
    }
    let lab = Lab {
        name: format!("test-{}", std::process::id()),
    };
    let up = lab.ok(&["up"]);
    assert!(up.contains("answered by kube-mast0"), "{up}");
    let state = lab.state();
    assert_eq!(ops::vip_holders(&state), vec![NODE1.to_string()]);
    assert!(resources_on(&lab, NODE2, NODE1));

    // 1. Failover, seen by the client.
    let probe = Command::new(bins::path("hapx"))
        .args(["lab", "--name", &lab.name, "probe", "--duration", "18"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_secs(2));
    lab.ok(&["fail", NODE1]);
    let report = String::from_utf8(probe.wait_with_output().unwrap().stdout).unwrap();
    assert!(
        report.contains("outage from"),
        "the failover must show: {report}"
    );
    assert!(!report.contains("not over at the end"), "{report}");
    assert!(resources_on(&lab, NODE2, NODE2), "after failover");
    let state = lab.state();
    assert_eq!(ops::vip_holders(&state), vec![NODE2.to_string()]);
    let node2_mac = net::mac(&lab.netns(NODE2)).unwrap();
    assert_eq!(
        net::neighbour(&lab.netns("client"), &state.vip).unwrap(),
        Some(node2_mac)
    );
    assert!(proxy_pid(&lab, NODE2).is_some());
    assert!(served(&lab).is_some_and(|a| a.starts_with("kube-mast0")));

    // 2. No failback when node 1 returns.
    lab.ok(&["recover", NODE1]);
    thread::sleep(Duration::from_secs(5));
    assert!(
        resources_on(&lab, NODE1, NODE2),
        "resources must stay on {NODE2}"
    );
    assert_eq!(ops::vip_holders(&lab.state()), vec![NODE2.to_string()]);
    assert!(proxy_pid(&lab, NODE1).is_none());

    // 3. A killed proxy is restarted by Pacemaker (monitor interval=20) on the same node.
    let killed = proxy_pid(&lab, NODE2).expect("the proxy runs on node 2");
    net::signal(killed, nix::sys::signal::Signal::SIGKILL);
    wait_for(
        &lab,
        "the proxy restarted on node 2",
        Duration::from_secs(60),
        || {
            proxy_pid(&lab, NODE2).is_some_and(|p| p != killed)
                && fail_count(&lab, NODE2, PROXY_RSC, NODE2) == 1
                && resources_on(&lab, NODE2, NODE2)
        },
    );
    assert!(served(&lab).is_some());

    // 4. Two failures of the VIP (migration-threshold=2) move both resources to node 1.
    let cidr = format!("{}/{}", lab.state().vip, net::PREFIX_LEN);
    for failures in 1..=2 {
        wait_for(
            &lab,
            "the VIP on node 2's interface",
            Duration::from_secs(60),
            || ops::vip_holders(&lab.state()) == vec![NODE2.to_string()],
        );
        net::ip(&[
            "-n",
            &lab.netns(NODE2),
            "addr",
            "del",
            &cidr,
            "dev",
            net::INTERFACE,
        ])
        .unwrap();
        wait_for(
            &lab,
            "a VIP failure counted",
            Duration::from_secs(60),
            || fail_count(&lab, NODE2, VIP_RSC, NODE2) == failures,
        );
    }
    wait_for(
        &lab,
        "both resources on node 1",
        Duration::from_secs(60),
        || {
            resources_on(&lab, NODE2, NODE1)
                && ops::vip_holders(&lab.state()) == vec![NODE1.to_string()]
                && served(&lab).is_some()
        },
    );

    // down removes everything it made.
    let state = lab.state();
    lab.ok(&["down"]);
    assert!(State::load(&lab.name).unwrap().is_none());
    for host in state.hosts.iter().filter(|h| h.role != Role::Client) {
        assert!(
            !host.pid.is_some_and(net::process_runs),
            "{} still runs",
            host.name
        );
    }
    for netns in state.hosts.iter().map(|h| &h.netns).chain([&state.switch]) {
        assert!(
            !Path::new("/run/netns").join(netns).exists(),
            "{netns} is left"
        );
    }
    assert!(!state.dir.exists());
}
