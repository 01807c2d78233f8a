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

/// Two nodes, both online (and a third without a state), and `p` failed on each, then
/// stopped: its history (with a last failure) and its fail count recorded on node1 and node2.
fn two_node_cib_with_failures() -> String {
    let state = |id: &str, uname: &str| {
        format!(
            r#"<node_state id="{id}" uname="{uname}" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="{id}">
        <instance_attributes id="status-{id}">
          <nvpair id="status-{id}-fail-count-p.monitor_10000" name="fail-count-p#monitor_10000" value="1"/>
        </instance_attributes>
      </transient_attributes>
      <lrm id="{id}">
        <lrm_resources>
          <lrm_resource id="p" type="Dummy" class="ocf" provider="heartbeat">
            <lrm_rsc_op id="p_last_0" operation_key="p_stop_0" operation="stop" crm-debug-origin="hapx" crm_feature_set="3.16.1" transition-key="3:0:0:00000000-0000-0000-0000-000000000000" transition-magic="0:0;3:0:0:00000000-0000-0000-0000-000000000000" exit-reason="" on_node="{uname}" call-id="3" rc-code="0" op-status="0" interval="0" last-rc-change="1700000000" exec-time="1" queue-time="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/>
            <lrm_rsc_op id="p_last_failure_0" operation_key="p_monitor_10000" operation="monitor" crm-debug-origin="hapx" crm_feature_set="3.16.1" transition-key="2:0:0:00000000-0000-0000-0000-000000000000" transition-magic="0:7;2:0:0:00000000-0000-0000-0000-000000000000" exit-reason="" on_node="{uname}" call-id="2" rc-code="7" op-status="0" interval="10000" last-rc-change="1700000000" exec-time="1" queue-time="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
    </node_state>"#
        )
    };
    format!(
        r#"<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="5" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="node1"/>
      <node id="2" uname="node2"/>
      <node id="3" uname="node3"/>
    </nodes>
    <resources>
      <primitive id="p" class="ocf" provider="heartbeat" type="Dummy">
        <operations>
          <op id="p-monitor-10s" name="monitor" interval="10s"/>
        </operations>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status>
    {}
    {}
  </status>
</cib>
"#,
        state("1", "node1"),
        state("2", "node2")
    )
}

/// The `node_state` of `uname` in the CIB text.
fn node_state(text: &str, uname: &str) -> Option<hapx_cib::xml::Element> {
    let doc = hapx_cib::xml::Document::parse(text).expect("the CIB parses");
    doc.root
        .child("status")?
        .children_named("node_state")
        .find(|s| s.attr("uname") == Some(uname))
        .cloned()
}

#[test]
fn status_section_edits_on_a_file_cib_are_written() {
    let cib = Cib::with_text("statusedit", &two_node_cib_with_failures());
    let out = cib.hapx(&["node", "status-attr", "node1", "set", "foo", "bar"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let text = cib.text();
    assert!(
        text.contains(r#"<nvpair id="status-1-foo" name="foo" value="bar"/>"#),
        "{text}"
    );
    // A status update, as Pacemaker's CIB manager counts it.
    assert!(text.contains(r#"num_updates="1""#), "{text}");
    let out = cib.hapx(&["node", "status-attr", "node1", "show", "foo"], "");
    assert_eq!(stdout(&out), "scope=status  name=foo value=bar\n");
    let out = cib.hapx(&["node", "status-attr", "node1", "delete", "foo"], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "Deleted status attribute: id=status-1-foo name=foo\n"
    );
    assert!(!cib.text().contains(r#"name="foo""#));

    let out = cib.hapx(&["node", "standby", "node2", "reboot"], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("INFO: standby node node2"));
    let state = node_state(&cib.text(), "node2").expect("node2's state");
    let standby = state
        .descendants()
        .find(|e| e.attr("name") == Some("standby"))
        .expect("a transient standby attribute");
    assert_eq!(standby.attr("value"), Some("on"));
    assert_eq!(standby.id(), Some("status-2-standby"));

    // node3 has no state: nothing to set it in, an error, nothing written.
    let before = cib.text();
    let out = cib.hapx(&["node", "status-attr", "node3", "set", "foo", "bar"], "");
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such device or address"));
    assert_eq!(cib.text(), before);

    // delete: the node leaves the configuration and its state the status section.
    let out = cib.hapx(&["node", "delete", "node1"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let text = cib.text();
    assert!(node_state(&text, "node1").is_none(), "{text}");
    assert!(!text.contains(r#"uname="node1""#), "{text}");
    assert!(node_state(&text, "node2").is_some(), "{text}");
}

#[test]
fn status_attr_writes_what_crm_attribute_writes() {
    if !require::command("status_attr_writes_what_crm_attribute_writes", "crm") {
        return;
    }
    let ours = Cib::with_text("statusattr-hapx", &two_node_cib_with_failures());
    let theirs = Cib::with_text("statusattr-crmsh", &two_node_cib_with_failures());
    let args = ["node", "status-attr", "node1", "set", "foo", "bar"];
    let out = ours.hapx(&args, "");
    assert!(out.status.success(), "{}", describe(&out));
    let out = theirs.crmsh(&args, "");
    assert!(out.status.success(), "{}", describe(&out));
    let transient = |text: &str| {
        node_state(text, "node1")
            .and_then(|s| s.child("transient_attributes").cloned())
            .map(|t| hapx_cib::xml::Document::new(t).to_xml())
    };
    assert_eq!(transient(&ours.text()), transient(&theirs.text()));
}

#[test]
fn cleanup_on_a_file_cib_touches_only_the_named_node() {
    let cib = Cib::with_text("cleanupnode", &two_node_cib_with_failures());
    let history = |text: &str, uname: &str| {
        let state = node_state(text, uname).expect("the node's state");
        (
            state.descendants().any(|e| e.name == "lrm_resource"),
            state
                .descendants()
                .any(|e| e.attr("name") == Some("fail-count-p#monitor_10000")),
        )
    };
    let out = cib.hapx(&["resource", "cleanup", "p", "node1"], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "Cleaned up p\n");
    let text = cib.text();
    assert_eq!(history(&text, "node1"), (false, false), "{text}");
    assert_eq!(history(&text, "node2"), (true, true), "{text}");

    let out = cib.hapx(&["resource", "cleanup", "p", "nope"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node nope does not exist"));
    assert_eq!(cib.text(), text);

    // clearstate on an online node forgets that node's failures only.
    let cib = Cib::with_text("clearstate", &two_node_cib_with_failures());
    let out = cib.hapx(&["-F", "node", "clearstate", "node2"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let text = cib.text();
    assert_eq!(history(&text, "node1"), (true, true), "{text}");
    assert_eq!(history(&text, "node2"), (false, false), "{text}");
}

#[test]
fn absurd_numbers_are_refused_not_overflowed() {
    let cib = Cib::with_text("absurd", &two_node_cib_with_failures());
    let before = cib.text();
    let out = cib.hapx(
        &["resource", "move", "p", "node1", "P9999999999999999Y"],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Invalid lifetime 'P9999999999999999Y'"),
        "{}",
        describe(&out)
    );
    let out = cib.hapx(&["resource", "move", "p", "node1", "P8000Y"], "");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("after the year 9999"));
    let out = cib.hapx(
        &["resource", "trace", "p", "monitor", "99999999999999999"],
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Operation monitor with interval 99999999999999999 not found in p"),
        "{}",
        describe(&out)
    );
    assert_eq!(cib.text(), before);
}

#[test]
fn a_lifetime_in_months_ends_on_the_calendar_date() {
    let cib = Cib::with_text("months", &two_node_cib_with_failures());
    let out = cib.hapx(&["resource", "move", "p", "node1", "P1Y2M"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let doc = hapx_cib::xml::Document::parse(&cib.text()).unwrap();
    let end = doc
        .root
        .descendants()
        .find(|e| e.name == "date_expression")
        .and_then(|e| e.attr("end").map(str::to_string))
        .expect("a lifetime's end");
    // The same calendar day (or the month's last), 14 months on.
    let now = hapx_shell::mon::text::now();
    let today = |fmt: &str| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{now}"), fmt])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (year, month, day): (i64, i64, i64) = (
        today("+%Y").parse().unwrap(),
        today("+%m").parse().unwrap(),
        today("+%d").parse().unwrap(),
    );
    let months = year * 12 + month - 1 + 14;
    let expected_month = format!("{:04}-{:02}-", months / 12, months % 12 + 1);
    assert!(end.starts_with(&expected_month), "{end}");
    let end_day: i64 = end[8..10].parse().unwrap();
    assert!(end_day == day || (day > 28 && end_day >= 28), "{end}");
}

#[test]
fn locate_prints_where_a_resource_runs_as_status_does() {
    let cib = Cib::with_text("locate", &two_node_cib_with_failures());
    let located = cib.hapx(&["resource", "locate", "p"], "");
    let status = cib.hapx(&["resource", "status", "p"], "");
    assert!(located.status.success(), "{}", describe(&located));
    assert_eq!(
        (stdout(&located), String::from_utf8_lossy(&located.stderr)),
        (stdout(&status), String::from_utf8_lossy(&status.stderr))
    );
    assert!(String::from_utf8_lossy(&located.stderr).contains("resource p is NOT running"));
    let out = cib.hapx(&["resource", "locate"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Expected at least one resource"));
}

#[test]
fn restart_without_a_driver_says_so_and_starts() {
    let cib = Cib::with_text("restartnodriver", &two_node_cib_with_failures());
    let out = cib.hapx(&["resource", "restart", "p"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let stop = text.find("ordering p to stop").expect("the stop");
    let nodriver = text.find("no cluster driver runs").expect("said so");
    let start = text.find("ordering p to start").expect("the start");
    assert!(stop < nodriver && nodriver < start, "{text}");
    assert!(
        cib.text().contains(r#"name="target-role" value="Started""#),
        "{}",
        cib.text()
    );
}

#[test]
fn restart_waits_for_the_driver_to_stop_the_resource() {
    use hapx_tests::driver::{Fixture, Rsc, prerequisites, started};
    if !prerequisites("restart_waits_for_the_driver_to_stop_the_resource") {
        return;
    }
    let wait = std::time::Duration::from_secs(30);
    let mut f = Fixture::new("restart");
    f.write_cib(&[Rsc::new("A")], "");
    f.start_driver();
    f.wait_until("A started", wait, |d| started(d, "A"));
    let out = f
        .hapx()
        .args(["resource", "restart", "A"])
        .output()
        .expect("running hapx resource restart");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !stdout(&out).contains("no cluster driver"),
        "{}",
        describe(&out)
    );
    // The stop has happened by the time restart started the resource again.
    assert!(
        f.actions().iter().any(|l| l == "A stop 0"),
        "restart returned before A stopped: {:?}",
        f.actions()
    );
    f.wait_until("A started again", wait, |d| started(d, "A"));
    let actions = f.actions();
    let stop = actions
        .iter()
        .position(|l| l == "A stop 0")
        .unwrap_or_else(|| panic!("A never stopped: {actions:?}"));
    assert!(
        actions[stop..].iter().any(|l| l == "A start 0"),
        "started again after the stop: {actions:?}"
    );
    assert_eq!(f.count("A", "start"), 2, "{actions:?}");
    f.stop_driver();
}
