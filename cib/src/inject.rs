//! What-if changes to a CIB before scheduling, as `crm_simulate` makes them: nodes coming up,
//! going down cleanly or failing, and operation results injected into the history.

use crate::model::Cib;
use crate::xml::{Document, Element, Node};

/// Why a what-if change cannot be applied.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum InjectError {
    #[error(
        "operation spec '{0}': expected RSC_TASK_INTERVAL@NODE=RC (e.g. rsc1_monitor_0@node1=7)"
    )]
    BadSpec(String),
    #[error("operation spec '{spec}': no resource named '{rsc}' in the configuration")]
    UnknownResource { spec: String, rsc: String },
}

/// A parsed `RSC_TASK_INTERVAL@NODE=RC` operation spec (`-i`, `-F`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpSpec {
    pub rsc: String,
    pub task: String,
    pub interval_ms: u64,
    pub node: String,
    pub rc: i32,
}

const TASKS: [&str; 10] = [
    "migrate_from",
    "migrate_to",
    "monitor",
    "start",
    "stop",
    "promote",
    "demote",
    "notify",
    "reload",
    "cancel",
];

impl OpSpec {
    /// Parses `rsc1_monitor_0@node1=7`.
    pub fn parse(spec: &str) -> Result<OpSpec, InjectError> {
        let bad = || InjectError::BadSpec(spec.to_string());
        let (left, rc) = spec.rsplit_once('=').ok_or_else(bad)?;
        let rc: i32 = rc.trim().parse().map_err(|_| bad())?;
        let (key, node) = left.rsplit_once('@').ok_or_else(bad)?;
        let (rest, interval) = key.rsplit_once('_').ok_or_else(bad)?;
        let interval_ms: u64 = interval.parse().map_err(|_| bad())?;
        let task = TASKS
            .iter()
            .find(|t| rest.ends_with(&format!("_{t}")))
            .ok_or_else(bad)?;
        let rsc = &rest[..rest.len() - task.len() - 1];
        if rsc.is_empty() || node.is_empty() {
            return Err(bad());
        }
        Ok(OpSpec {
            rsc: rsc.to_string(),
            task: task.to_string(),
            interval_ms,
            node: node.to_string(),
            rc,
        })
    }

    /// The operation key, `rsc_task_interval`.
    pub fn key(&self) -> String {
        format!("{}_{}_{}", self.rsc, self.task, self.interval_ms)
    }
}

fn node_id(doc: &Document, uname: &str) -> String {
    doc.root
        .path(&["configuration", "nodes"])
        .and_then(|nodes| {
            nodes
                .children_named("node")
                .find(|n| n.attr("uname") == Some(uname))
                .and_then(|n| n.id().map(str::to_string))
        })
        .unwrap_or_else(|| uname.to_string())
}

/// The node's `node_state`, created when missing (with the node itself, as `crm_simulate`
/// does for a node it has not heard of).
pub fn node_state<'d>(doc: &'d mut Document, uname: &str) -> &'d mut Element {
    let id = node_id(doc, uname);
    let nodes = doc
        .root
        .child_or_insert("configuration")
        .child_or_insert("nodes");
    if !nodes
        .children_named("node")
        .any(|n| n.attr("uname") == Some(uname))
    {
        nodes.children.push(Node::Element(
            Element::new("node")
                .with_attr("id", id.clone())
                .with_attr("uname", uname),
        ));
    }
    let status = doc.root.child_or_insert("status");
    let pos = status.children.iter().position(|c| {
        matches!(c, Node::Element(e) if e.name == "node_state"
            && (e.attr("uname") == Some(uname) || e.id() == Some(id.as_str())))
    });
    let pos = pos.unwrap_or_else(|| {
        status.children.push(Node::Element(
            Element::new("node_state")
                .with_attr("id", id.clone())
                .with_attr("uname", uname),
        ));
        status.children.len() - 1
    });
    match &mut status.children[pos] {
        Node::Element(e) => e,
        _ => unreachable!("position matched an element"),
    }
}

fn set_membership(
    doc: &mut Document,
    uname: &str,
    in_ccm: &str,
    crmd: &str,
    join: &str,
    expected: &str,
) {
    let state = node_state(doc, uname);
    state.set_attr("uname", uname);
    state.set_attr("in_ccm", in_ccm);
    state.set_attr("crmd", crmd);
    state.set_attr("join", join);
    state.set_attr("expected", expected);
}

/// `-u NODE`: the node joins the cluster.
pub fn node_up(doc: &mut Document, uname: &str) {
    set_membership(doc, uname, "true", "online", "member", "member");
}

/// `-d NODE`: the node leaves the cluster cleanly.
pub fn node_down(doc: &mut Document, uname: &str) {
    set_membership(doc, uname, "false", "offline", "down", "down");
}

/// `-f NODE`: the node is lost unexpectedly (it will need fencing).
pub fn node_fail(doc: &mut Document, uname: &str) {
    set_membership(doc, uname, "false", "online", "member", "member");
}

/// `-i SPEC`: records an operation result in the node's history (and a failure in its fail
/// count, as the cluster would).
pub fn op_inject(doc: &mut Document, spec: &OpSpec, now: i64) -> Result<(), InjectError> {
    let cib = Cib::from_document(doc.clone()).ok();
    let primitive = cib.as_ref().and_then(|c| c.primitive(&spec.rsc)).cloned();
    let Some(p) = primitive else {
        return Err(InjectError::UnknownResource {
            spec: format!("{}@{}={}", spec.key(), spec.node, spec.rc),
            rsc: spec.rsc.clone(),
        });
    };
    let expected = if spec.task == "monitor" && spec.interval_ms == 0 && spec.rc == 7 {
        7
    } else {
        0
    };
    let state = node_state(doc, &spec.node);
    let resources = state
        .child_or_insert("lrm")
        .child_or_insert("lrm_resources");
    let entry = p.lrm_resource_in(resources);
    let call_id = entry
        .children_named("lrm_rsc_op")
        .filter_map(|o| o.attr("call-id").and_then(|c| c.parse::<i64>().ok()))
        .max()
        .unwrap_or(0)
        .max(0)
        + 1;
    let id = if spec.interval_ms > 0 {
        spec.key()
    } else if spec.rc == expected {
        format!("{}_last_0", p.id)
    } else {
        format!("{}_last_failure_0", p.id)
    };
    let op = Element::new("lrm_rsc_op")
        .with_attr("id", id.clone())
        .with_attr("operation_key", spec.key())
        .with_attr("operation", spec.task.clone())
        .with_attr("transition-key", format!("0:0:{expected}:hapx-inject"))
        .with_attr("call-id", call_id.to_string())
        .with_attr("rc-code", spec.rc.to_string())
        .with_attr("op-status", if spec.rc == expected { "0" } else { "4" })
        .with_attr("interval", spec.interval_ms.to_string())
        .with_attr("last-rc-change", now.to_string());
    match entry
        .children
        .iter()
        .position(|c| matches!(c, Node::Element(e) if e.id() == Some(id.as_str())))
    {
        Some(i) => entry.children[i] = Node::Element(op),
        None => entry.children.push(Node::Element(op)),
    }
    if spec.rc != expected {
        let key = format!("{}#{}_{}", spec.rsc, spec.task, spec.interval_ms);
        record_failure(node_state(doc, &spec.node), &key, spec.task == "start", now);
    }
    Ok(())
}

/// Records a failure of `key` (`RSC#TASK_INTERVAL`) in a node's transient attributes, as the
/// controller does: `fail-count-KEY` goes up by one (to INFINITY when `fatal`) and
/// `last-failure-KEY` becomes `now`. Returns the fail-count attribute's name.
pub(crate) fn record_failure(node_state: &mut Element, key: &str, fatal: bool, now: i64) -> String {
    let attrs = node_state
        .child_or_insert("transient_attributes")
        .child_or_insert("instance_attributes");
    let name = format!("fail-count-{key}");
    let count = attrs
        .children_named("nvpair")
        .find(|n| n.attr("name") == Some(name.as_str()))
        .and_then(|n| n.attr("value"))
        .map(crate::score::parse_plain)
        .unwrap_or(0);
    let count = if fatal {
        crate::score::INFINITY
    } else {
        crate::score::add(count, 1)
    };
    set_nvpair(attrs, &name, &crate::score::to_text(count));
    set_nvpair(attrs, &format!("last-failure-{key}"), &now.to_string());
    name
}

fn set_nvpair(set: &mut Element, name: &str, value: &str) {
    for nv in set.elements_mut() {
        if nv.name == "nvpair" && nv.attr("name") == Some(name) {
            nv.set_attr("value", value);
            return;
        }
    }
    set.children.push(Node::Element(
        Element::new("nvpair")
            .with_attr("id", format!("status-{name}"))
            .with_attr("name", name)
            .with_attr("value", value),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_op_specs() {
        let s = OpSpec::parse("my_rsc_migrate_to_0@node-1=1").unwrap();
        assert_eq!(s.rsc, "my_rsc");
        assert_eq!(s.task, "migrate_to");
        assert_eq!(s.node, "node-1");
        assert_eq!(s.rc, 1);
        assert_eq!(s.key(), "my_rsc_migrate_to_0");
        assert!(OpSpec::parse("rsc1@node1=0").is_err());
        assert!(OpSpec::parse("rsc1_start_0@node1").is_err());
    }

    #[test]
    fn brings_nodes_up_and_down() {
        let mut doc = Document::parse("<cib><configuration><nodes><node id=\"1\" uname=\"n1\"/></nodes></configuration><status/></cib>").unwrap();
        node_up(&mut doc, "n1");
        let st = doc.root.path(&["status", "node_state"]).unwrap();
        assert_eq!(st.id(), Some("1"));
        assert_eq!(st.attr("crmd"), Some("online"));
        node_down(&mut doc, "n1");
        let st = doc.root.path(&["status", "node_state"]).unwrap();
        assert_eq!(st.attr("expected"), Some("down"));
    }
}
