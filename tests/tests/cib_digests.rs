//! Restart on changed parameters: a running resource whose recorded operation digests no
//! longer match its definition is restarted (a changed start) or has its monitor scheduled
//! again (a changed monitor), exactly as `crm_simulate` decides and prints it.

use hapx_cib::digest::op_digest;
use hapx_tests::{cib, require};

/// Two online nodes, `rsc` (ocf:pacemaker:Dummy) started on node1 with a 10s monitor, its
/// history recorded with the digests of `recorded` (parameters, monitor timeout in ms) while
/// the configuration now says `now` (parameters, monitor timeout).
fn cib_text(recorded: (&[(&str, &str)], u64), now: (&[(&str, &str)], u64)) -> String {
    let params: String = now
        .0
        .iter()
        .map(|(n, v)| format!(r#"<nvpair id="rsc-{n}" name="{n}" value="{v}"/>"#))
        .collect();
    let start = op_digest(recorded.0.iter().copied(), 0, 20000);
    let monitor = op_digest(recorded.0.iter().copied(), 10000, recorded.1);
    let probe = op_digest(recorded.0.iter().copied(), 0, 20000);
    format!(
        r#"<cib crm_feature_set="3.0.14" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="opts-stonith" name="stonith-enabled" value="false"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="node1"/><node id="2" uname="node2"/></nodes>
    <resources>
      <primitive id="rsc" class="ocf" provider="pacemaker" type="Dummy">
        <instance_attributes id="rsc-params">{params}</instance_attributes>
        <operations><op id="rsc-mon" name="monitor" interval="10s" timeout="{timeout}ms"/></operations>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="1"><lrm_resources>
        <lrm_resource id="rsc" class="ocf" provider="pacemaker" type="Dummy">
          <lrm_rsc_op id="rsc_last_0" operation_key="rsc_start_0" operation="start" transition-key="2:1:0:2e1e1e1e-0000-4000-8000-000000000001" transition-magic="0:0;2:1:0:2e1e1e1e-0000-4000-8000-000000000001" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="{start}"/>
          <lrm_rsc_op id="rsc_monitor_10000" operation_key="rsc_monitor_10000" operation="monitor" transition-key="3:1:0:2e1e1e1e-0000-4000-8000-000000000001" transition-magic="0:0;3:1:0:2e1e1e1e-0000-4000-8000-000000000001" call-id="3" rc-code="0" op-status="0" interval="10000" op-digest="{monitor}"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="2"><lrm_resources>
        <lrm_resource id="rsc" class="ocf" provider="pacemaker" type="Dummy">
          <lrm_rsc_op id="rsc_last_0" operation_key="rsc_monitor_0" operation="monitor" transition-key="1:1:7:2e1e1e1e-0000-4000-8000-000000000001" transition-magic="0:7;1:1:7:2e1e1e1e-0000-4000-8000-000000000001" call-id="1" rc-code="7" op-status="0" interval="0" op-digest="{probe}"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
  </status>
</cib>
"#,
        timeout = now.1,
    )
}

/// hapx's and crm_simulate's output for a CIB text; None when crm_simulate is missing.
fn both(name: &str, text: &str) -> Option<(String, String)> {
    if !require::command(name, "crm_simulate") {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("hapx-digests-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("cib.xml");
    std::fs::write(&path, text).expect("write CIB");
    let theirs = cib::crm_simulate(&path)
        .unwrap_or_else(|| panic!("crm_simulate fails on {}", path.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let ours = cib::hapx_simulate(text, cib::FIXED_NOW).expect("hapx simulates the CIB");
    Some((ours, theirs))
}

#[test]
fn a_changed_parameter_restarts_the_resource_like_crm_simulate() {
    let text = cib_text((&[("fake", "old")], 20000), (&[("fake", "new")], 20000));
    let Some((ours, theirs)) = both("changed_parameter", &text) else {
        return;
    };
    assert!(
        theirs.contains("Restart    rsc") && theirs.contains("due to resource definition change"),
        "crm_simulate restarts rsc:\n{theirs}"
    );
    assert_eq!(cib::normalise(&ours), cib::normalise(&theirs));
}

#[test]
fn a_changed_monitor_timeout_only_reschedules_the_monitor_like_crm_simulate() {
    let text = cib_text((&[("fake", "same")], 20000), (&[("fake", "same")], 30000));
    let Some((ours, theirs)) = both("changed_monitor", &text) else {
        return;
    };
    assert!(
        !theirs.contains("Restart") && theirs.contains("rsc") && theirs.contains("monitor=10000"),
        "crm_simulate only reschedules the monitor:\n{theirs}"
    );
    assert_eq!(cib::normalise(&ours), cib::normalise(&theirs));
}

#[test]
fn unchanged_parameters_leave_the_resource_alone_like_crm_simulate() {
    let text = cib_text((&[("fake", "same")], 20000), (&[("fake", "same")], 20000));
    let Some((ours, theirs)) = both("unchanged", &text) else {
        return;
    };
    assert!(
        !theirs.contains("Restart") && !theirs.contains("monitor=10000"),
        "nothing to do:\n{theirs}"
    );
    assert_eq!(cib::normalise(&ours), cib::normalise(&theirs));
}
