//! hapx's agents under real Pacemaker: `ocf:hapx:IPaddr2` and `ocf:hapx:haproxy` (with Debian's
//! HAProxy) start, are monitored, and are recovered by Pacemaker after the address is removed
//! by hand and after the daemon is killed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::agents::ProviderDir;
use hapx_tests::pacemaker::{NodeOptions, PacemakerNode};
use hapx_tests::require;
use hapx_tests::wait::alive;

const HAPROXY: &str = "/usr/sbin/haproxy";
const VIP: &str = "192.0.2.50";

fn create(node: &PacemakerNode, xml: &str) {
    let out = node
        .run(&[
            "cibadmin",
            "--create",
            "--scope",
            "resources",
            "--xml-text",
            xml,
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "cibadmin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn primitive(id: &str, kind: &str, params: &[(&str, &str)]) -> String {
    let nvpairs: String = params
        .iter()
        .map(|(k, v)| format!(r#"<nvpair id="{id}-{k}" name="{k}" value="{v}"/>"#))
        .collect();
    format!(
        r#"<primitive id="{id}" class="ocf" provider="hapx" type="{kind}">
             <instance_attributes id="{id}-ia">{nvpairs}</instance_attributes>
             <operations>
               <op id="{id}-monitor-2s" name="monitor" interval="2s" timeout="20s"/>
             </operations>
           </primitive>"#
    )
}

fn started(xml: &str, id: &str) -> bool {
    xml.lines().any(|l| {
        l.contains(&format!("<resource id=\"{id}\""))
            && l.contains("role=\"Started\"")
            && l.contains("failed=\"false\"")
    })
}

fn failed_monitor(xml: &str, id: &str) -> bool {
    xml.contains(&format!("op_key=\"{id}_monitor_2000\""))
}

fn has_vip(node: &PacemakerNode) -> bool {
    node.run(&["ip", "-o", "address", "show", "dev", "eth0"])
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/24 ")))
}

fn pid_in(pidfile: &Path) -> Option<i32> {
    fs::read_to_string(pidfile)
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
}

#[test]
fn pacemaker_starts_monitors_and_recovers_both_agents() {
    let test = "agents::pacemaker";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let ocf = ProviderDir::new("pacemaker");
    let scratch = std::env::temp_dir().join(format!("hapxt-pcmk-lb-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).unwrap();
    let conffile = scratch.join("haproxy.cfg");
    fs::write(
        &conffile,
        format!(
            "global\n  stats socket {}/admin.sock mode 600 level admin\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend fe\n  bind {VIP}:16443\n  default_backend be\n\
             backend be\n  server s1 127.0.0.1:16444\n",
            scratch.display()
        ),
    )
    .unwrap();
    let pidfile: PathBuf = scratch.join("haproxy.pid");
    let options = NodeOptions {
        ocf_providers: vec![("hapx".into(), ocf.dir())],
        ..NodeOptions::default()
    };
    let Some(node) = PacemakerNode::start(test, options) else {
        let _ = fs::remove_dir_all(&scratch);
        return;
    };
    let minute = Duration::from_secs(60);

    create(
        &node,
        &primitive(
            "vip",
            "IPaddr2",
            &[("ip", VIP), ("nic", "eth0"), ("cidr_netmask", "24")],
        ),
    );
    let ok = node.wait_until(minute, |xml| started(xml, "vip"));
    assert!(
        ok.is_ok(),
        "vip never started: {ok:?}\n{}",
        node.log_tail(40)
    );
    assert!(
        has_vip(&node),
        "Pacemaker says vip started but {VIP} is not on eth0"
    );

    // The load balancer binds the VIP, so it goes where the VIP is, after it.
    create(
        &node,
        &primitive(
            "lb",
            "haproxy",
            &[
                ("binpath", HAPROXY),
                ("conffile", &conffile.to_string_lossy()),
                ("pidfile", &pidfile.to_string_lossy()),
            ],
        ),
    );
    let ok = node.wait_until(minute, |xml| started(xml, "lb"));
    assert!(
        ok.is_ok(),
        "lb never started: {ok:?}\n{}",
        node.log_tail(40)
    );
    let first = pid_in(&pidfile).expect("haproxy's pid file");
    assert!(alive(first));

    // Remove the address by hand: the monitor notices, Pacemaker recovers it.
    let out = node
        .run(&["ip", "address", "del", &format!("{VIP}/24"), "dev", "eth0"])
        .unwrap();
    assert!(out.status.success());
    let ok = node.wait_until(minute, |xml| {
        failed_monitor(xml, "vip") && started(xml, "vip") && has_vip(&node)
    });
    assert!(
        ok.is_ok(),
        "vip not recovered: {ok:?}\n{}",
        node.log_tail(40)
    );

    // Kill the daemon (started by this test, through Pacemaker and the agent).
    let pid = pid_in(&pidfile).expect("haproxy's pid file");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let ok = node.wait_until(minute, |xml| {
        failed_monitor(xml, "lb")
            && started(xml, "lb")
            && pid_in(&pidfile).is_some_and(|p| p != pid && alive(p))
    });
    assert!(
        ok.is_ok(),
        "lb not recovered: {ok:?}\n{}",
        node.log_tail(40)
    );

    let last = pid_in(&pidfile);
    drop(node);
    if let Some(p) = last {
        assert!(!alive(p), "haproxy {p} survived the node's stop");
    }
    let _ = fs::remove_dir_all(&scratch);
}
