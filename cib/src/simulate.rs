//! The whole `crm_simulate -x FILE -S` pipeline: model, unpack, schedule, print the summary,
//! execute, unpack the result again and print the revised status.

use crate::execute;
use crate::inject::{self, InjectError, OpSpec};
use crate::model::{Cib, ModelError};
use crate::render;
use crate::schedule::{self, Transition};
use crate::status;
use crate::xml::Document;

/// How to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Seconds since the epoch used as "now" when the CIB carries no `execution-date`.
    pub now: i64,
    /// Also execute the transition and print the revised status (`-S`); otherwise only the
    /// response (`-R`).
    pub execute: bool,
}

/// What a simulation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The text `crm_simulate` prints.
    pub text: String,
    pub transition: Transition,
    /// The CIB after executing the transition (with `execute`).
    pub revised: Option<Document>,
}

/// Why a CIB cannot be simulated.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SimulateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("not supported yet by hapx's scheduler: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Inject(#[from] InjectError),
}

/// Simulates a CIB given as text.
pub fn simulate(text: &str, options: Options) -> Result<Outcome, SimulateError> {
    let cib = Cib::parse(text)?;
    simulate_cib(&cib, options)
}

/// Schedules a modelled CIB without executing (for callers that want the transition only).
pub fn schedule_cib(cib: &Cib, now: i64) -> Result<Transition, SimulateError> {
    if let Some(first) = cib.unsupported.first() {
        return Err(SimulateError::Unsupported(first.clone()));
    }
    let now = cib.execution_date.unwrap_or(now);
    Ok(schedule::schedule(cib, status::unpack(cib, now)))
}

/// What-if changes applied before scheduling (`crm_simulate -u/-d/-f/-i`) and failures
/// during execution (`-F`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhatIf {
    pub node_up: Vec<String>,
    pub node_down: Vec<String>,
    pub node_fail: Vec<String>,
    pub op_inject: Vec<OpSpec>,
    pub op_fail: Vec<OpSpec>,
    /// Print the allocation scores (`-s`).
    pub show_scores: bool,
}

/// Simulates a CIB with what-if changes, printing what `crm_simulate` prints for them.
pub fn simulate_what_if(
    text: &str,
    options: Options,
    what_if: &WhatIf,
) -> Result<Outcome, SimulateError> {
    let original = Cib::parse(text)?;
    let now = original.execution_date.unwrap_or(options.now);
    let mut doc = original.doc.clone();
    let mut changes = Vec::new();
    for node in &what_if.node_up {
        inject::node_up(&mut doc, node);
        changes.push(format!("Bringing node {node} online"));
    }
    for node in &what_if.node_down {
        inject::node_down(&mut doc, node);
        changes.push(format!("Taking node {node} offline"));
    }
    for node in &what_if.node_fail {
        inject::node_fail(&mut doc, node);
        changes.push(format!("Failing node {node}"));
    }
    for spec in &what_if.op_inject {
        inject::op_inject(&mut doc, spec, now)?;
        changes.push(format!(
            "Injecting {}@{}={} into the configuration",
            spec.key(),
            spec.node,
            spec.rc
        ));
    }
    let modified = Cib::from_document(doc)?;
    let mut prefix = String::new();
    if !changes.is_empty() {
        let st = status::unpack(&original, now);
        prefix.push_str("Current cluster status:\n");
        prefix.push_str(&render::cluster_status(&original, &st));
        prefix.push_str("\nPerforming Requested Modifications:\n");
        for c in changes {
            prefix.push_str(&format!("  * {c}\n"));
        }
        prefix.push('\n');
    }
    run(&modified, options, &prefix, what_if)
}

/// Simulates a modelled CIB.
pub fn simulate_cib(cib: &Cib, options: Options) -> Result<Outcome, SimulateError> {
    run(cib, options, "", &WhatIf::default())
}

fn run(
    cib: &Cib,
    options: Options,
    prefix: &str,
    what_if: &WhatIf,
) -> Result<Outcome, SimulateError> {
    let transition = schedule_cib(cib, options.now)?;
    let now = cib.execution_date.unwrap_or(options.now);
    let mut text = String::new();
    if cib.doc.root.attr("validate-with") == Some("none") {
        text.push_str(
            "Schema validation of configuration is disabled (enabling is encouraged and prevents common misconfigurations)\n",
        );
    }
    if let Some(date) = cib.execution_date {
        text.push_str(&format!(
            "Using the original execution date of: {}\n",
            format_utc(date)
        ));
    }
    let st = status::unpack(cib, now);
    let disabled = st
        .configs
        .iter()
        .filter(|p| {
            p.meta.get("target-role").map(status::Role::parse) == Some(status::Role::Stopped)
        })
        .count();
    let blocked = st.resources.iter().filter(|r| r.blocked).count();
    if disabled > 0 || blocked > 0 {
        text.push_str(&format!(
            "{disabled} of {} resource instances DISABLED and {blocked} BLOCKED from further action due to failure\n\n",
            st.resources.iter().filter(|r| !r.orphan).count()
        ));
    }
    if prefix.is_empty() {
        text.push_str("Current cluster status:\n");
        text.push_str(&render::cluster_status(cib, &st));
        text.push('\n');
    } else {
        text.push_str(prefix);
    }
    if what_if.show_scores {
        text.push_str(&render::scores(&transition));
        text.push('\n');
    }
    text.push_str("Transition Summary:\n");
    for line in render::transition_summary(&transition) {
        text.push_str(&format!("  * {line}\n"));
    }
    let mut revised = None;
    if options.execute {
        text.push_str("\nExecuting Cluster Transition:\n");
        let (lines, doc) = execute::execute_with(&transition, &cib.doc, &what_if.op_fail, now);
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
        if let Some(date) = cib.execution_date {
            text.push_str(&format!(
                "Using the original execution date of: {}\n",
                format_utc(date)
            ));
        }
        let after = Cib::from_document(doc.clone())?;
        let st2 = status::unpack(&after, now);
        text.push_str("\nRevised Cluster Status:\n");
        text.push_str(&render::cluster_status(&after, &st2));
        revised = Some(doc);
    }
    Ok(Outcome {
        text,
        transition,
        revised,
    })
}

/// Formats seconds since the epoch as `YYYY-MM-DD HH:MM:SSZ`.
pub fn format_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-node cluster with `resources` and `constraints` spliced in, and each node's
    /// history. (These small cases were checked against crm_simulate 2.1.5.)
    fn cib(resources: &str, constraints: &str, history1: &str, history2: &str) -> String {
        format!(
            r#"<cib have-quorum="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="node1"/><node id="2" uname="node2"/></nodes>
    <resources>{resources}</resources>
    <constraints>{constraints}</constraints>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>{history1}</lrm_resources></lrm></node_state>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="2"><lrm_resources>{history2}</lrm_resources></lrm></node_state>
  </status>
</cib>"#
        )
    }

    fn dummy(id: &str, meta: &str) -> String {
        format!(
            r#"<primitive id="{id}" class="ocf" provider="pacemaker" type="Dummy"><meta_attributes id="{id}-m">{meta}</meta_attributes></primitive>"#
        )
    }

    fn running(id: &str, call: u32) -> String {
        format!(
            r#"<lrm_resource id="{id}" class="ocf" provider="pacemaker" type="Dummy"><lrm_rsc_op id="{id}_last_0" operation="start" transition-key="1:1:0:x" call-id="{call}" rc-code="0" op-status="0" interval="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/></lrm_resource>"#
        )
    }

    fn probed(id: &str) -> String {
        format!(
            r#"<lrm_resource id="{id}" class="ocf" provider="pacemaker" type="Dummy"><lrm_rsc_op id="{id}_last_0" operation="monitor" transition-key="1:1:7:x" call-id="1" rc-code="7" op-status="0" interval="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/></lrm_resource>"#
        )
    }

    fn summary(xml: &str) -> Vec<String> {
        let out = simulate(
            xml,
            Options {
                now: 0,
                execute: false,
            },
        )
        .unwrap();
        out.text
            .lines()
            .skip_while(|l| !l.starts_with("Transition Summary:"))
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn stickiness_keeps_and_a_ban_moves() {
        let stay = cib(
            &dummy(
                "a",
                r#"<nvpair id="a-s" name="resource-stickiness" value="100"/>"#,
            ),
            r#"<rsc_location id="l" rsc="a" node="node2" score="50"/>"#,
            &running("a", 2),
            &probed("a"),
        );
        assert!(summary(&stay).is_empty(), "{:?}", summary(&stay));
        let moved = stay.replace(r#"score="50""#, r#"score="200""#);
        assert_eq!(
            summary(&moved),
            vec!["  * Move       a       ( node1 -> node2 )"]
        );
    }

    #[test]
    fn mandatory_anti_colocation_and_order_hold() {
        let resources = format!("{}{}", dummy("a", ""), dummy("b", ""));
        let xml = cib(
            &resources,
            r#"<rsc_colocation id="c" rsc="b" with-rsc="a" score="-INFINITY"/>
               <rsc_order id="o-ab" first="a" then="b"/>"#,
            &format!("{}{}", probed("a"), probed("b")),
            &format!("{}{}", probed("a"), probed("b")),
        );
        let out = simulate(
            &xml,
            Options {
                now: 0,
                execute: true,
            },
        )
        .unwrap();
        let t = &out.transition;
        let a = t.status.resources.iter().position(|r| r.id == "a").unwrap();
        let b = t.status.resources.iter().position(|r| r.id == "b").unwrap();
        assert!(t.assigned[a].is_some() && t.assigned[b].is_some());
        assert_ne!(t.assigned[a], t.assigned[b]);
        let text = &out.text;
        let start_a = text.find("a               start").unwrap();
        let start_b = text.find("b               start").unwrap();
        assert!(start_a < start_b, "{text}");
    }

    #[test]
    fn summary_columns_grow_like_pacemakers() {
        let resources = format!(
            "{}{}",
            dummy("a-long-resource-name", ""),
            dummy(
                "b",
                r#"<nvpair id="b-t" name="target-role" value="Stopped"/>"#
            )
        );
        let xml = cib(
            &resources,
            "",
            &format!("{}{}", probed("a-long-resource-name"), running("b", 2)),
            &format!("{}{}", probed("a-long-resource-name"), probed("b")),
        );
        assert_eq!(
            summary(&xml),
            vec![
                "  * Start      a-long-resource-name     ( node1 )",
                "  * Stop       b                        ( node1 )  due to node availability",
            ]
        );
    }

    #[test]
    fn formats_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_utc(1_461_844_229), "2016-04-28 11:50:29Z");
    }
}
