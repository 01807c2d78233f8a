//! hapx's IPaddr2 agent against the kernel, in private network namespaces: what each action
//! does to the addresses, gratuitous ARP and unsolicited NA seen from a neighbour, refusals
//! that change nothing, and Debian's ocf-tester.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use hapx_tests::agents::{
    ProviderDir, addresses, has_address, neighbour_mac, run_in, run_in_env, settled_addresses,
    status, tx_packets,
};
use hapx_tests::netns::{Host, Network};
use hapx_tests::require;
use hapx_tests::wait::eventually;

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec")
}

fn network_with(test: &str, hosts: &[(&str, &[&str])]) -> Option<(Network, Vec<Host>)> {
    if !require::network_namespaces(test) {
        return None;
    }
    let mut net = Network::new().expect("create the switch");
    let hosts = hosts
        .iter()
        .map(|(name, addrs)| net.add_host(name, addrs).expect("add a host"))
        .collect();
    Some((net, hosts))
}

#[test]
fn start_monitor_stop_follow_the_address_and_are_idempotent() {
    let Some((net, hosts)) = network_with(
        "agents::ipaddr2_lifecycle",
        &[("a", &["192.0.2.1/24", "2001:db8::1/64"])],
    ) else {
        return;
    };
    let a = &hosts[0];
    let ocf = ProviderDir::new("lifecycle");
    let agent = ocf.agent("IPaddr2");
    for (ip, extra) in [
        ("192.0.2.50", vec![("cidr_netmask", "24"), ("nic", "eth0")]),
        ("2001:db8::50", vec![("nodad", "true")]),
    ] {
        let mut params = vec![("ip", ip)];
        params.extend(extra);
        let code = |action: &str| status(&run_in(a, &agent, action, &params));
        assert_eq!(code("monitor"), 7, "{ip}: monitor before start");
        assert_eq!(code("start"), 0, "{ip}: start");
        assert!(has_address(&net, a, ip), "{ip} missing after start");
        assert_eq!(code("monitor"), 0, "{ip}: monitor after start");
        assert_eq!(code("status"), 0, "{ip}: status after start");
        assert_eq!(code("start"), 0, "{ip}: start of a started address");
        assert_eq!(
            addresses(&net, a).matches(&format!(" {ip}/")).count(),
            1,
            "{ip} added twice"
        );
        assert_eq!(code("stop"), 0, "{ip}: stop");
        assert!(!has_address(&net, a, ip), "{ip} still there after stop");
        assert_eq!(code("monitor"), 7, "{ip}: monitor after stop");
        assert_eq!(code("stop"), 0, "{ip}: stop of a stopped address");
    }
    // The host's own addresses were never touched.
    assert!(has_address(&net, a, "192.0.2.1") && has_address(&net, a, "2001:db8::1"));
}

#[test]
fn nic_prefix_broadcast_are_derived_and_flags_applied() {
    let Some((net, hosts)) = network_with(
        "agents::ipaddr2_derived",
        &[("a", &["192.0.2.1/25", "2001:db8::1/64"])],
    ) else {
        return;
    };
    let a = &hosts[0];
    let ocf = ProviderDir::new("derived");
    let agent = ocf.agent("IPaddr2");
    let v4 = [("ip", "192.0.2.60"), ("iflabel", "vip")];
    assert_eq!(status(&run_in(a, &agent, "start", &v4)), 0);
    let shown = addresses(&net, a);
    assert!(
        shown.contains("inet 192.0.2.60/25 brd 192.0.2.127 scope global secondary eth0:vip"),
        "{shown}"
    );
    assert_eq!(status(&run_in(a, &agent, "stop", &v4)), 0);

    let explicit = [
        ("ip", "192.0.2.61"),
        ("nic", "eth0"),
        ("cidr_netmask", "27"),
        ("broadcast", "-"),
    ];
    assert_eq!(status(&run_in(a, &agent, "start", &explicit)), 0);
    let shown = addresses(&net, a);
    assert!(
        shown.contains("inet 192.0.2.61/27 brd 192.0.2.32 "),
        "{shown}"
    );
    // Refresh ARPs on monitor and a route-cache flush on stop work without a warning.
    let mut more = explicit.to_vec();
    more.extend([
        ("arp_count_refresh", "2"),
        ("arp_interval", "10"),
        ("flush_routes", "true"),
    ]);
    for (action, code) in [("monitor", 0), ("stop", 0), ("monitor", 7)] {
        let out = run_in(a, &agent, action, &more);
        assert_eq!(status(&out), code, "{action}: {}", out.stderr);
        assert!(!out.stderr.contains("WARNING"), "{action}: {}", out.stderr);
    }

    let v6 = [
        ("ip", "2001:db8::61"),
        ("nodad", "yes"),
        ("noprefixroute", "true"),
        ("preferred_lft", "0"),
    ];
    assert_eq!(status(&run_in(a, &agent, "start", &v6)), 0);
    let line = addresses(&net, a)
        .lines()
        .find(|l| l.contains("2001:db8::61/64"))
        .map(str::to_string)
        .unwrap_or_default();
    for flag in ["nodad", "noprefixroute", "deprecated", "preferred_lft 0sec"] {
        assert!(line.contains(flag), "{flag} missing in {line:?}");
    }
    assert_eq!(status(&run_in(a, &agent, "stop", &v6)), 0);
}

#[test]
fn network_namespace_parameter_works_from_outside() {
    let Some((net, hosts)) = network_with("agents::ipaddr2_netns", &[("a", &["192.0.2.1/24"])])
    else {
        return;
    };
    let a = &hosts[0];
    let ocf = ProviderDir::new("netns");
    let agent = ocf.agent("IPaddr2");
    let params = [
        ("ip", "192.0.2.70"),
        ("network_namespace", a.netns.as_str()),
    ];
    let run = |action: &str| {
        let mut inv = hapx_agents::exec::Invocation::new(&agent, action);
        for (k, v) in params {
            inv = inv.param(k, v);
        }
        status(&hapx_agents::exec::run(&inv).unwrap())
    };
    // Logging as ocf-shellfuncs does: with HA_LOGFILE set, lines go there and not to stderr.
    let logfile = std::env::temp_dir().join(format!("hapxt-halog-{}", std::process::id()));
    let mut inv = hapx_agents::exec::Invocation::new(&agent, "start")
        .env("HA_LOGFILE", &logfile.to_string_lossy());
    for (k, v) in params {
        inv = inv.param(k, v);
    }
    let out = hapx_agents::exec::run(&inv).unwrap();
    assert_eq!(status(&out), 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let log = std::fs::read_to_string(&logfile).unwrap_or_default();
    let _ = std::fs::remove_file(&logfile);
    assert!(
        log.contains("IPaddr2(hapx-rsc)[") && log.contains("INFO: added 192.0.2.70/24 to eth0"),
        "{log}"
    );
    assert!(has_address(&net, a, "192.0.2.70"));
    assert_eq!(run("start"), 0);
    assert_eq!(run("monitor"), 0);
    assert_eq!(run("stop"), 0);
    assert!(!has_address(&net, a, "192.0.2.70"));
    assert_eq!(run("monitor"), 7);
}

#[test]
fn monitor_reports_a_down_link_and_a_gone_interface() {
    let Some((net, hosts)) = network_with("agents::ipaddr2_link", &[("a", &["192.0.2.1/24"])])
    else {
        return;
    };
    let a = &hosts[0];
    let ocf = ProviderDir::new("link");
    let agent = ocf.agent("IPaddr2");
    let params = [
        ("ip", "192.0.2.80"),
        ("nic", "eth0"),
        ("cidr_netmask", "24"),
    ];
    let recurring = [("OCF_RESKEY_CRM_meta_interval", "10000")];
    let deep = [
        ("OCF_RESKEY_CRM_meta_interval", "10000"),
        ("OCF_CHECK_LEVEL", "10"),
    ];
    assert_eq!(status(&run_in(a, &agent, "start", &params)), 0);
    assert_eq!(status(&run_in_env(a, &agent, "monitor", &params, &deep)), 0);
    net.run(a, &["ip", "link", "set", "eth0", "down"]).unwrap();
    assert_eq!(
        status(&run_in_env(a, &agent, "monitor", &params, &recurring)),
        0
    );
    let out = run_in_env(a, &agent, "monitor", &params, &deep);
    assert_eq!(
        status(&out),
        1,
        "depth 10 with the link down: {}",
        out.stderr
    );
    assert!(out.stderr.contains("no link"), "{}", out.stderr);

    net.run(a, &["ip", "link", "del", "eth0"]).unwrap();
    let out = run_in_env(a, &agent, "monitor", &params, &recurring);
    assert_eq!(
        status(&out),
        1,
        "recurring monitor, interface gone: {}",
        out.stderr
    );
    assert!(out.stderr.contains("nic=\"eth0\""), "{}", out.stderr);
    let probe = [("OCF_RESKEY_CRM_meta_interval", "0")];
    assert_eq!(
        status(&run_in_env(a, &agent, "monitor", &params, &probe)),
        5
    );
    assert_eq!(status(&run_in(a, &agent, "stop", &params)), 0);
}

type Case<'a> = (&'a [(&'a str, &'a str)], i32, &'a str);

#[test]
fn bad_parameters_get_the_right_code_one_line_and_change_nothing() {
    let Some((net, hosts)) = network_with("agents::ipaddr2_bad", &[("a", &["192.0.2.1/24"])])
    else {
        return;
    };
    let a = &hosts[0];
    let ocf = ProviderDir::new("bad");
    let agent = ocf.agent("IPaddr2");
    // (parameters, OCF code, the parameter the message must name)
    let cases: [Case<'_>; 7] = [
        (&[("ip", "300.1.1.1")], 6, "ip"),
        (
            &[("ip", "192.0.2.90"), ("cidr_netmask", "40")],
            6,
            "cidr_netmask",
        ),
        (&[("ip", "192.0.2.90"), ("nic", "nosuchif")], 2, "nic"),
        (&[("nic", "eth0")], 6, "ip"),
        (&[("ip", "203.0.113.9")], 2, "nic"),
        (
            &[("ip", "192.0.2.90"), ("arp_count", "lots")],
            6,
            "arp_count",
        ),
        (
            &[("ip", "192.0.2.90"), ("unique_clone_address", "true")],
            6,
            "unique_clone_address",
        ),
    ];
    let before = settled_addresses(&net, a);
    for (params, code, name) in cases {
        for action in ["validate-all", "start"] {
            let out = run_in(a, &agent, action, params);
            assert_eq!(status(&out), code, "{action} {params:?}: {}", out.stderr);
            let lines: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            assert_eq!(lines.len(), 1, "{action} {params:?}: {lines:?}");
            assert!(
                lines[0].starts_with("ocf-exit-reason:")
                    && lines[0].contains(&format!("parameter {name}")),
                "{action} {params:?}: {}",
                lines[0]
            );
        }
    }
    assert_eq!(
        addresses(&net, a),
        before,
        "a refused start changed the addresses"
    );
}

#[test]
fn run_arping_refuses_an_address_another_host_answers_for() {
    let Some((net, hosts)) = network_with(
        "agents::ipaddr2_arping",
        &[
            ("a", &["192.0.2.1/24"]),
            ("b", &["192.0.2.2/24", "192.0.2.95/24"]),
        ],
    ) else {
        return;
    };
    let a = &hosts[0];
    let ocf = ProviderDir::new("arping");
    let agent = ocf.agent("IPaddr2");
    let params = [("ip", "192.0.2.95"), ("run_arping", "true")];
    let out = run_in(a, &agent, "start", &params);
    assert_eq!(status(&out), 1, "{}", out.stderr);
    let mac_b = net.mac(&hosts[1]).unwrap();
    assert!(
        out.stderr.contains(&mac_b),
        "{} does not name {mac_b}",
        out.stderr
    );
    assert!(!has_address(&net, a, "192.0.2.95"));
    // With nobody answering, the probe passes and the address is added.
    let free = [("ip", "192.0.2.96"), ("run_arping", "true")];
    assert_eq!(status(&run_in(a, &agent, "start", &free)), 0);
    assert!(has_address(&net, a, "192.0.2.96"));
}

/// The VIP moves from `a` to `b`; `observer` had learnt it at `a`'s MAC and must learn `b`'s
/// from `b`'s announcement alone.
fn neighbour_follows_the_move(test: &str, vip: &str, own: [&str; 3], ping: &str) {
    let Some((net, hosts)) = network_with(
        test,
        &[("a", &[own[0]]), ("b", &[own[1]]), ("observer", &[own[2]])],
    ) else {
        return;
    };
    let (a, b, observer) = (&hosts[0], &hosts[1], &hosts[2]);
    let ocf = ProviderDir::new(&test.replace("::", "-"));
    let agent = ocf.agent("IPaddr2");
    let params = [("ip", vip), ("nodad", "true"), ("arp_interval", "100")];
    let v4 = !vip.contains(':');
    if v4 {
        // No IPv6 chatter (router solicitations, MLD) from the observer: it must send nothing.
        net.run(
            observer,
            &["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
        )
        .unwrap();
    }
    assert_eq!(status(&run_in(a, &agent, "start", &params)), 0);
    let out = net
        .run(observer, &[ping, "-c", "1", "-W", "5", vip])
        .unwrap();
    assert!(
        out.status.success(),
        "{ping} {vip}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (mac_a, mac_b) = (net.mac(a).unwrap(), net.mac(b).unwrap());
    assert_eq!(
        neighbour_mac(&net, observer, vip).as_deref(),
        Some(mac_a.as_str())
    );

    let sent_before = tx_packets(&net, observer);
    assert_eq!(status(&run_in(a, &agent, "stop", &params)), 0);
    assert_eq!(status(&run_in(b, &agent, "start", &params)), 0);
    let moved = eventually(Duration::from_secs(5), || {
        neighbour_mac(&net, observer, vip).as_deref() == Some(mac_b.as_str())
    });
    assert!(
        moved,
        "observer still has {:?} for {vip}, expected {mac_b}",
        neighbour_mac(&net, observer, vip)
    );
    if v4 {
        assert_eq!(
            tx_packets(&net, observer),
            sent_before,
            "the observer sent packets"
        );
    }
}

#[test]
fn gratuitous_arp_moves_a_neighbours_entry() {
    neighbour_follows_the_move(
        "agents::ipaddr2_garp",
        "192.0.2.100",
        ["192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24"],
        "ping",
    );
}

#[test]
fn unsolicited_neighbour_advertisement_moves_a_neighbours_entry() {
    neighbour_follows_the_move(
        "agents::ipaddr2_na",
        "2001:db8::100",
        ["2001:db8::1/64", "2001:db8::2/64", "2001:db8::3/64"],
        "ping",
    );
}

#[test]
fn ocf_tester_passes() {
    let test = "agents::ipaddr2_ocf_tester";
    let Some((_net, hosts)) = network_with(test, &[("a", &["192.0.2.1/24"])]) else {
        return;
    };
    if !require::command(test, "ocf-tester") {
        return;
    }
    let ocf = ProviderDir::new("tester");
    let out = Command::new("ip")
        .args(["netns", "exec", &hosts[0].netns, "ocf-tester", "-n", "vip"])
        .args(["-o", "ip=192.0.2.110", "-o", "cidr_netmask=24"])
        .arg(ocf.agent("IPaddr2"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "{text}"
    );
}

#[test]
fn meta_data_is_valid_and_has_the_reference_parameters() {
    let test = "agents::meta_data";
    let spec = spec_dir();
    if !require::command(test, "xmllint") || !require::path(test, &spec, "the OCF spec files") {
        return;
    }
    let ocf = ProviderDir::new("meta");
    for (agent, reference) in [
        ("IPaddr2", "heartbeat-IPaddr2.metadata.xml"),
        ("haproxy", "russki-haproxy.metadata.xml"),
    ] {
        let out = Command::new(ocf.agent(agent))
            .arg("meta-data")
            .output()
            .unwrap();
        assert!(out.status.success());
        let file =
            std::env::temp_dir().join(format!("hapxt-meta-{}-{agent}.xml", std::process::id()));
        std::fs::write(&file, &out.stdout).unwrap();
        let lint = Command::new("xmllint")
            .args(["--noout", "--dtdvalid"])
            .arg(spec.join("ra-api-1.dtd"))
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(
            lint.status.success(),
            "{agent} meta-data: {}",
            String::from_utf8_lossy(&lint.stderr)
        );
        let ours = parameters(&String::from_utf8_lossy(&out.stdout));
        let theirs = parameters(&std::fs::read_to_string(spec.join(reference)).unwrap());
        for p in &theirs {
            assert!(
                ours.contains(p),
                "{agent}: reference parameter {p:?} differs or is missing"
            );
        }
    }
}

/// (name, required, unique, type, default) of every parameter of a meta-data document.
fn parameters(xml: &str) -> Vec<(String, String, String, String, Option<String>)> {
    let without_doctype: String = xml
        .lines()
        .filter(|l| !l.starts_with("<!DOCTYPE"))
        .collect::<Vec<_>>()
        .join("\n");
    let doc = hapx_cib::xml::Document::parse(&without_doctype).expect("meta-data parses");
    let params = doc.root.child("parameters").expect("a parameters element");
    params
        .children_named("parameter")
        .map(|p| {
            let content = p.child("content").expect("a content element");
            (
                p.attr("name").unwrap_or("").to_string(),
                p.attr("required").unwrap_or("0").to_string(),
                p.attr("unique").unwrap_or("0").to_string(),
                content.attr("type").unwrap_or("").to_string(),
                content.attr("default").map(str::to_string),
            )
        })
        .collect()
}
