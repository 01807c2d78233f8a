//! hapx's top level on a file CIB: `ra` against crmsh's output, `resource` and `node` edits as
//! Pacemaker's tools make them, `status` as `crm_mon -1` prints it.

use std::process::Command;

use hapx_tests::require;
use hapx_tests::shell::{Cib, describe};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ra_commands_print_what_crmsh_prints() {
    if !require::command("ra_commands_print_what_crmsh_prints", "crm") {
        return;
    }
    let cib = Cib::empty("ra");
    for args in [
        vec!["ra", "classes"],
        vec!["ra", "list", "ocf", "pacemaker"],
        vec!["ra", "list", "ocf"],
        vec!["ra", "providers", "Dummy"],
        vec!["ra", "info", "ocf:heartbeat:Dummy"],
        vec!["ra", "info", "IPaddr2"],
        vec!["ra", "info", "ocf:pacemaker:Stateful"],
    ] {
        let ours = cib.hapx(&args, "");
        let theirs = cib.crmsh(&args, "");
        assert!(ours.status.success(), "{args:?}: {}", describe(&ours));
        assert_eq!(stdout(&ours), stdout(&theirs), "{args:?}");
    }
    let missing = cib.hapx(&["ra", "info", "ocf:heartbeat:Nope"], "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("got no meta-data"));
}

#[test]
fn resource_commands_edit_the_cib_like_crm_resource() {
    let cib = Cib::empty("resource");
    let out = cib.hapx(
        &["configure"],
        "property stonith-enabled=false\nnode node1\nprimitive p ocf:heartbeat:Dummy\nclone c p\ncommit\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    for args in [
        &["resource", "stop", "c"][..],
        &["resource", "meta", "p", "set", "m0", "123"],
        &["resource", "param", "p", "set", "fake", "1 2 3"],
        &["resource", "move", "c", "node1"],
    ] {
        let out = cib.hapx(args, "");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    let text = cib.text();
    for expected in [
        r#"<nvpair id="c-meta_attributes-target-role" name="target-role" value="Stopped"/>"#,
        // crm_resource sets a clone child's meta attribute on the clone.
        r#"<nvpair id="c-meta_attributes-m0" name="m0" value="123"/>"#,
        r#"<nvpair id="p-instance_attributes-fake" name="fake" value="1 2 3"/>"#,
        r#"<rsc_location id="cli-prefer-c" rsc="c" role="Started" node="node1" score="INFINITY"/>"#,
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let shown = cib.hapx(&["resource", "param", "p", "show", "fake"], "");
    assert_eq!(stdout(&shown), "1 2 3\n");
    for args in [
        &["resource", "clear", "c"][..],
        &["resource", "start", "c"],
        &["resource", "meta", "c", "delete", "m0"],
    ] {
        let out = cib.hapx(args, "");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    let text = cib.text();
    assert!(
        !text.contains("cli-prefer-c") && !text.contains("\"m0\""),
        "{text}"
    );
    assert!(
        text.contains(r#"name="target-role" value="Started""#),
        "{text}"
    );

    let before = cib.text();
    let out = cib.hapx(&["resource", "stop", "nope"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Resource not found: nope"));
    assert_eq!(cib.text(), before);
}

#[test]
fn node_commands_set_node_attributes_like_crm_attribute() {
    let cib = Cib::empty("node");
    let out = cib.hapx(&["configure", "node", "node1"], "");
    assert!(out.status.success(), "{}", describe(&out));
    for args in [
        &["node", "standby", "node1"][..],
        &["node", "maintenance", "node1"],
        &["node", "attribute", "node1", "set", "a1", "1 2 3"],
    ] {
        let out = cib.hapx(args, "");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    // crmsh's standby makes the set as NODE-instance_attributes and its maintenance (crmsh's
    // own edit) uses it; crm_attribute adds its own `nodes-NODE` set beside it.
    let text = cib.text();
    for expected in [
        r#"<instance_attributes id="node1-instance_attributes">"#,
        r#"<nvpair id="node1-instance_attributes-standby" name="standby" value="on"/>"#,
        r#"<nvpair id="node1-instance_attributes-maintenance" name="maintenance" value="true"/>"#,
        r#"<instance_attributes id="nodes-node1">"#,
        r#"<nvpair id="nodes-node1-a1" name="a1" value="1 2 3"/>"#,
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let out = cib.hapx(&["node", "online", "node1"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("INFO: online node node1"));
    let out = cib.hapx(&["node", "show", "node1"], "");
    assert_eq!(
        stdout(&out),
        "node1: member\n\tstandby=off maintenance=true\n\ta1=\"1 2 3\"\n"
    );
    let out = cib.hapx(&["node", "attribute", "node1", "show", "a1"], "");
    assert_eq!(stdout(&out), "scope=nodes  name=a1 value=1 2 3\n");
    let out = cib.hapx(&["node", "utilization", "node1", "set", "cpu", "2"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let out = cib.hapx(&["node", "utilization", "node1", "delete", "cpu"], "");
    assert_eq!(
        stdout(&out),
        "Deleted nodes attribute: id=nodes-node1-utilization-cpu name=cpu\n"
    );
    let out = cib.hapx(&["node", "attribute", "node1", "show", "nope"], "");
    assert!(!out.status.success());
    let out = cib.hapx(&["node", "standby", "nope"], "");
    assert!(!out.status.success());
}

#[test]
fn status_is_crm_mons_view_of_the_file() {
    if !require::command("status_is_crm_mons_view_of_the_file", "crm_mon") {
        return;
    }
    let cib = Cib::empty("status");
    let out = cib.hapx(
        &["configure"],
        "property stonith-enabled=false\nnode node1\nprimitive p ocf:heartbeat:Dummy\ncommit\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    // `-r` (inactive resources too) goes through to crm_mon.
    let ours = cib.hapx(&["status", "-r"], "");
    assert!(ours.status.success(), "{}", describe(&ours));
    let theirs = Command::new("crm_mon")
        .args(["-1", "-r"])
        .env("CIB_file", &cib.path)
        .output()
        .unwrap();
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.contains("Last updated"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(stdout(&ours)), strip(stdout(&theirs)));
    assert!(
        stdout(&ours).contains("p\t(ocf:heartbeat:Dummy)"),
        "{}",
        stdout(&ours)
    );
}

#[test]
fn a_link_named_crm_is_the_same_shell() {
    let cib = Cib::unfenced("crmlink");
    let crm = cib.dir.join("crm");
    std::os::unix::fs::symlink(hapx_tests::bins::path("hapx"), &crm).unwrap();
    let mut cmd = Command::new(&crm);
    cmd.arg("configure").env("CIB_file", &cib.path);
    let out =
        hapx_tests::shell::run_with_stdin(cmd, "primitive p ocf:heartbeat:Dummy\ncommit\nbye\n");
    assert!(out.status.success(), "{}", describe(&out));
    let shown = Command::new(&crm)
        .args(["configure", "show"])
        .env("CIB_file", &cib.path)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&shown),
        "primitive p Dummy\nproperty cib-bootstrap-options: \\\n\tstonith-enabled=false\n"
    );
}
