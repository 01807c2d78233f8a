//! hapx against a real one-node Pacemaker: a piped crm script configures the live cluster
//! through cibadmin, Pacemaker runs what it says, and `hapx status` / `hapx resource` work on it.

use std::process::Stdio;
use std::time::Duration;

use hapx_tests::bins;
use hapx_tests::pacemaker::{NodeOptions, PacemakerNode};
use hapx_tests::shell::{describe, run_with_stdin};

const SCRIPT: &str = "\
property stonith-enabled=no
property no-quorum-policy=ignore
rsc_defaults resource-stickiness=100
primitive first-resource ocf:heartbeat:Dummy meta migration-threshold=2 op monitor interval=20 timeout=60 on-fail=restart
primitive second-resource ocf:heartbeat:Dummy op monitor interval=20 timeout=60 on-fail=restart
colocation loc inf: first-resource second-resource
order ord inf: first-resource second-resource
commit
bye
";

fn started(xml: &str, id: &str) -> bool {
    xml.lines()
        .any(|l| l.contains(&format!("id=\"{id}\"")) && l.contains("role=\"Started\""))
}

fn stopped(xml: &str, id: &str) -> bool {
    xml.lines()
        .any(|l| l.contains(&format!("id=\"{id}\"")) && l.contains("role=\"Stopped\""))
}

fn hapx(node: &PacemakerNode, args: &[&str], stdin: &str) -> std::process::Output {
    let mut cmd = node.command(bins::path("hapx"));
    cmd.args(args).env_remove("CIB_file").env_remove("HAPX_CIB");
    run_with_stdin(cmd, stdin)
}

#[test]
fn a_piped_script_configures_live_pacemaker() {
    let Some(node) = PacemakerNode::start("shell::live_configure", NodeOptions::default()) else {
        return;
    };
    // `-w` waits for the cluster to act on the commit: both run when hapx returns.
    let out = hapx(&node, &["-w", "configure"], SCRIPT);
    assert!(
        out.status.success(),
        "{}\n{}",
        describe(&out),
        node.log_tail(20)
    );
    let now = node.crm_mon_xml().unwrap();
    assert!(
        started(&now, "first-resource") && started(&now, "second-resource"),
        "not started when `hapx -w configure` returned:\n{now}"
    );

    let both = node.wait_until(Duration::from_secs(90), |xml| {
        started(xml, "first-resource") && started(xml, "second-resource")
    });
    assert!(
        both.is_ok(),
        "resources never started: {both:?}\n{}",
        node.log_tail(30)
    );

    // The configuration Pacemaker holds is the one the script describes.
    let show = hapx(&node, &["configure", "show"], "");
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(
        show.contains("colocation loc inf: first-resource second-resource"),
        "{show}"
    );
    assert!(
        show.contains("order ord Mandatory: first-resource second-resource"),
        "{show}"
    );

    // `hapx status` is what crm_mon -1 -r shows, as crmsh's `status` (but for the clock line).
    let ours = hapx(&node, &["status"], "");
    assert!(ours.status.success(), "{}", describe(&ours));
    let theirs = node
        .command("crm_mon")
        .args(["-1", "-r"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The clock's lines go, and the clock in pacemakerd's status line (the two commands may
    // run in different seconds).
    let strip = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.contains("Last updated") && !l.contains("Last change"))
            .map(|l| l.split(" (last updated ").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&ours), strip(&theirs));
    assert!(strip(&ours).contains("first-resource"), "{}", strip(&ours));

    // Resource commands go through the live CIB too.
    let out = hapx(&node, &["resource", "stop", "second-resource"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let down = node.wait_until(Duration::from_secs(60), |xml| {
        stopped(xml, "second-resource") || !started(xml, "second-resource")
    });
    assert!(down.is_ok(), "second-resource never stopped: {down:?}");

    // The resource and node levels on a live cluster: crm_resource and crm_attribute run as
    // crmsh runs them (their own reports), crmsh's own edits commit through cibadmin.
    let name = node.name().to_string();
    let run = |args: &[&str]| {
        let out = hapx(&node, args, "");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&[
        "resource",
        "param",
        "first-resource",
        "set",
        "fake",
        "1 2 3",
    ]);
    assert!(
        out.contains("Set 'first-resource' option: id=first-resource-instance_attributes-fake"),
        "{out}"
    );
    assert_eq!(
        run(&["resource", "param", "first-resource", "show", "fake"]),
        "1 2 3\n"
    );
    run(&["node", "attribute", &name, "set", "a1", "x y"]);
    assert_eq!(
        run(&["node", "attribute", &name, "show", "a1"]),
        "scope=nodes  name=a1 value=x y\n"
    );
    let out = run(&["resource", "move", "first-resource", &name]);
    assert!(
        out.contains("INFO: Move constraint created for first-resource"),
        "{out}"
    );
    run(&["resource", "trace", "first-resource", "start"]);
    let config = |node: &PacemakerNode| {
        let out = node
            .run(&["cibadmin", "--query", "--scope", "configuration"])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = config(&node);
    assert!(text.contains("id=\"cli-prefer-first-resource\""), "{text}");
    assert!(
        text.contains("id=\"first-resource-start-0-instance_attributes-trace_ra\""),
        "{text}"
    );
    run(&["resource", "untrace", "first-resource"]);
    run(&["resource", "clear", "first-resource"]);
    let text = config(&node);
    assert!(
        !text.contains("cli-prefer-first-resource") && !text.contains("trace_ra"),
        "{text}"
    );

    // A bad script changes nothing on the live cluster either.
    let before = node
        .run(&["cibadmin", "--query", "--scope", "configuration"])
        .unwrap();
    let out = hapx(
        &node,
        &["configure"],
        "primitive x ocf:heartbeat:Dummy\ncolocation c inf: x nope\ncommit\n",
    );
    assert!(!out.status.success(), "{}", describe(&out));
    let after = node
        .run(&["cibadmin", "--query", "--scope", "configuration"])
        .unwrap();
    assert_eq!(before.stdout, after.stdout);
}

/// The seed's script verbatim, with hapx's agents installed as `ocf:heartbeat:IPaddr2` and
/// `ocf:heartbeat:haproxy` (`hapx agents install --provider heartbeat`): Pacemaker starts both.
#[test]
fn the_seed_script_starts_its_resources() {
    let test = "shell::live_seed";
    let seed = hapx_tests::shell::seed_dir().join("configure.crm");
    if !hapx_tests::require::path(test, &seed, "the seed's configure.crm") {
        return;
    }
    let scratch = hapx_tests::shell::Cib::empty("seed-agents");
    let heartbeat = scratch.dir.join("ocf/resource.d/heartbeat");
    std::fs::create_dir_all(&heartbeat).unwrap();
    for entry in std::fs::read_dir("/usr/lib/ocf/resource.d/heartbeat").unwrap() {
        let entry = entry.unwrap();
        let to = heartbeat.join(entry.file_name());
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to).unwrap();
        } else {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), to).unwrap();
        }
    }
    let out = std::process::Command::new(bins::path("hapx"))
        .args(["agents", "install", "--provider", "heartbeat", "--ocf-root"])
        .arg(scratch.dir.join("ocf"))
        .arg("--binary")
        .arg(bins::path("hapx-ocf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let options = NodeOptions {
        ocf_providers: vec![("heartbeat".into(), heartbeat)],
        ..NodeOptions::default()
    };
    let Some(node) = PacemakerNode::start(test, options) else {
        return;
    };
    // The seed's VIP lives on enp0s3.41: give the node's private network namespace an
    // interface of that name (a veth pair with both ends inside, so nothing leaves it).
    for args in [
        &[
            "ip",
            "link",
            "add",
            "enp0s3.41",
            "type",
            "veth",
            "peer",
            "name",
            "seed-peer",
        ][..],
        &["ip", "link", "set", "seed-peer", "up"],
        &["ip", "link", "set", "enp0s3.41", "up"],
    ] {
        let out = node.run(args).unwrap();
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    // The seed's haproxy.cfg, seen only inside the node's private mount namespace, and the
    // run directory its stats socket needs (the node's /run is private and empty).
    let cfg = hapx_tests::shell::seed_dir().join("haproxy.cfg");
    let cfg = cfg.to_str().unwrap();
    for args in [
        &["mount", "--bind", cfg, "/etc/haproxy/haproxy.cfg"][..],
        &["mkdir", "-p", "/run/haproxy"],
    ] {
        let out = node.run(args).unwrap();
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    let script = std::fs::read_to_string(&seed).unwrap();
    let out = hapx(&node, &["configure"], &script);
    assert!(
        out.status.success(),
        "{}\n{}",
        describe(&out),
        node.log_tail(20)
    );
    let both = node.wait_until(Duration::from_secs(90), |xml| {
        started(xml, "virtual-ip-resource") && started(xml, "haproxy-resource")
    });
    assert!(
        both.is_ok(),
        "seed resources never started: {both:?}\n{}",
        node.log_tail(40)
    );
}
