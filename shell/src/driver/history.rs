//! The status section as Pacemaker's controller writes it: the node's `node_state`, its
//! operation history (`lrm` → `lrm_resources` → `lrm_resource` → `lrm_rsc_op`) and its transient
//! attributes (fail counts, `last-failure`, `shutdown`).
//!
//! History entries follow Pacemaker's naming: a recurring operation keeps one entry named by its
//! key (`RSC_monitor_20000`), every other operation replaces `RSC_last_0`, and a failure is also
//! copied to `RSC_last_failure_0`. A stop cancels the resource's recurring operations and their
//! entries go with them. A reload is recorded as the start it stands for (see
//! [`super::reload`]), and one-time operations of an agent that can reload carry
//! `op-force-restart` and `op-restart-digest`. Fail counts are the transient attributes
//! `fail-count-RSC#TASK_INTERVAL` and `last-failure-RSC#TASK_INTERVAL`, which is what
//! `crm_mon`, `crm_simulate` and hapx-cib's unpacking read.

use hapx_cib::model::Primitive;
use hapx_cib::xml::{Document, Element, Node};

/// Pacemaker's CRM feature set that the recorded entries claim.
pub const FEATURE_SET: &str = "3.16.1";

/// Executor statuses (`PCMK_EXEC_*`) the driver records.
pub mod exec_status {
    pub const DONE: i32 = 0;
    pub const TIMEOUT: i32 = 2;
    pub const NOT_SUPPORTED: i32 = 3;
    pub const ERROR: i32 = 4;
    pub const NOT_INSTALLED: i32 = 7;
}

/// One finished operation, ready to record.
#[derive(Debug, Clone)]
pub struct OpResult {
    pub task: String,
    pub interval_ms: u64,
    pub call_id: i64,
    pub rc: i32,
    pub op_status: i32,
    pub target_rc: i32,
    /// `ACTION:TRANSITION:TARGET_RC:UUID`, as the controller builds it.
    pub transition_key: String,
    /// When the operation ended (seconds since the epoch).
    pub finished: i64,
    pub exec_ms: u64,
    pub queue_ms: u64,
    pub digest: String,
    /// `op-force-restart` and `op-restart-digest`, recorded when the agent can reload (see
    /// [`super::reload`]).
    pub restart: Option<(String, String)>,
    pub exit_reason: String,
}

impl OpResult {
    /// `RSC_TASK_INTERVAL`.
    pub fn key(&self, rsc: &str) -> String {
        format!("{rsc}_{}_{}", self.task, self.interval_ms)
    }

    pub fn is_probe(&self) -> bool {
        self.task == "monitor" && self.interval_ms == 0
    }

    /// Whether the result is a failure: an executor error, or an rc other than the expected
    /// one (a probe's "running", "not running" and "promoted" are findings, not failures).
    pub fn failed(&self) -> bool {
        if self.op_status != exec_status::DONE {
            return true;
        }
        if self.is_probe() {
            return !matches!(self.rc, 0 | 7 | 8);
        }
        self.rc != self.target_rc
    }
}

/// The `node_state` element of a node, created when missing.
pub fn node_state<'d>(doc: &'d mut Document, id: &str, uname: &str) -> &'d mut Element {
    let status = doc.root.child_or_insert("status");
    let pos = status.children.iter().position(|c| {
        matches!(c, Node::Element(e) if e.name == "node_state"
            && (e.id() == Some(id) || e.attr("uname") == Some(uname)))
    });
    let pos = pos.unwrap_or_else(|| {
        status.children.push(Node::Element(
            Element::new("node_state")
                .with_attr("id", id)
                .with_attr("uname", uname),
        ));
        status.children.len() - 1
    });
    match &mut status.children[pos] {
        Node::Element(e) => e,
        _ => unreachable!("position matched an element"),
    }
}

/// Marks the node as a joined, online member (what the controller writes when it joins).
pub fn mark_online(doc: &mut Document, id: &str, uname: &str) {
    let state = node_state(doc, id, uname);
    for (name, value) in [
        ("in_ccm", "true"),
        ("crmd", "online"),
        ("crm-debug-origin", "hapx-driver"),
        ("join", "member"),
        ("expected", "member"),
    ] {
        state.set_attr(name, value);
    }
}

/// Marks the node as cleanly down, its history and transient attributes gone (what the
/// cluster records when a node leaves).
pub fn mark_offline(doc: &mut Document, id: &str, uname: &str) {
    let state = node_state(doc, id, uname);
    for (name, value) in [
        ("in_ccm", "false"),
        ("crmd", "offline"),
        ("crm-debug-origin", "hapx-driver"),
        ("join", "down"),
        ("expected", "down"),
    ] {
        state.set_attr(name, value);
    }
    erase_history(doc, id, uname);
}

/// Forgets the node's operation history and transient attributes, so that every resource is
/// probed again (what Pacemaker does when a node's controller (re)joins).
pub fn erase_history(doc: &mut Document, id: &str, uname: &str) {
    let state = node_state(doc, id, uname);
    state.children.retain(
        |c| !matches!(c, Node::Element(e) if e.name == "lrm" || e.name == "transient_attributes"),
    );
}

/// The node's id in `configuration/nodes`, adding `<node id=... uname=.../>` when it is not
/// there. Returns the id and whether the configuration changed.
pub fn ensure_node(doc: &mut Document, uname: &str) -> (String, bool) {
    let nodes = doc
        .root
        .child_or_insert("configuration")
        .child_or_insert("nodes");
    if let Some(n) = nodes
        .children_named("node")
        .find(|n| n.attr("uname") == Some(uname))
    {
        return (n.id().unwrap_or(uname).to_string(), false);
    }
    let used: Vec<u64> = nodes
        .children_named("node")
        .filter_map(|n| n.id().and_then(|i| i.parse().ok()))
        .collect();
    let id = (1..).find(|i| !used.contains(i)).unwrap_or(1).to_string();
    nodes.children.push(Node::Element(
        Element::new("node")
            .with_attr("id", id.clone())
            .with_attr("uname", uname),
    ));
    (id, true)
}

/// The element `<lrm_resource id=RSC>` of the node, created when missing.
fn lrm_resource<'d>(state: &'d mut Element, node_id: &str, p: &Primitive) -> &'d mut Element {
    let lrm = state.child_or_insert("lrm");
    if lrm.attr("id").is_none() {
        lrm.set_attr("id", node_id);
    }
    p.lrm_resource_in(lrm.child_or_insert("lrm_resources"))
}

/// The largest call id recorded for the node (0 when none).
pub fn max_call_id(doc: &Document, id: &str, uname: &str) -> i64 {
    let Some(status) = doc.root.child("status") else {
        return 0;
    };
    status
        .children_named("node_state")
        .filter(|s| s.id() == Some(id) || s.attr("uname") == Some(uname))
        .flat_map(|s| s.descendants())
        .filter(|e| e.name == "lrm_rsc_op")
        .filter_map(|e| e.attr("call-id").and_then(|c| c.parse().ok()))
        .max()
        .unwrap_or(0)
}

fn op_element(id: &str, p: &Primitive, op: &OpResult, uname: &str, last_change: i64) -> Element {
    let e = Element::new("lrm_rsc_op")
        .with_attr("id", id)
        .with_attr("operation_key", op.key(&p.id))
        .with_attr("operation", op.task.clone())
        .with_attr("crm-debug-origin", "hapx-driver")
        .with_attr("crm_feature_set", FEATURE_SET)
        .with_attr("transition-key", op.transition_key.clone())
        .with_attr(
            "transition-magic",
            format!("{}:{};{}", op.op_status, op.rc, op.transition_key),
        )
        .with_attr("exit-reason", op.exit_reason.clone())
        .with_attr("on_node", uname)
        .with_attr("call-id", op.call_id.to_string())
        .with_attr("rc-code", op.rc.to_string())
        .with_attr("op-status", op.op_status.to_string())
        .with_attr("interval", op.interval_ms.to_string())
        .with_attr("last-rc-change", last_change.to_string())
        .with_attr("exec-time", op.exec_ms.to_string())
        .with_attr("queue-time", op.queue_ms.to_string())
        .with_attr("op-digest", op.digest.clone());
    match &op.restart {
        Some((list, digest)) => e
            .with_attr("op-force-restart", list.clone())
            .with_attr("op-restart-digest", digest.clone()),
        None => e,
    }
}

fn put(entry: &mut Element, op: Element) {
    let id = op.id().unwrap_or("").to_string();
    match entry
        .children
        .iter()
        .position(|c| matches!(c, Node::Element(e) if e.id() == Some(id.as_str())))
    {
        Some(i) => entry.children[i] = Node::Element(op),
        None => entry.children.push(Node::Element(op)),
    }
}

/// Records a finished operation of `p` on the node. Returns false (and changes nothing) for a
/// recurring result equal to the one recorded, which Pacemaker does not write again either,
/// and for a recurring result of a resource whose history was cleaned up meanwhile.
pub fn record(
    doc: &mut Document,
    node_id: &str,
    uname: &str,
    p: &Primitive,
    op: &OpResult,
) -> bool {
    let state = node_state(doc, node_id, uname);
    let known = state.path(&["lrm", "lrm_resources"]).is_some_and(|l| {
        l.children_named("lrm_resource")
            .any(|e| e.id() == Some(p.id.as_str()))
    });
    if op.interval_ms > 0 && !known {
        // The resource's history was cleaned up while its monitor ran: the monitor belongs to
        // the forgotten history (the next schedule probes the resource afresh).
        return false;
    }
    let entry = lrm_resource(state, node_id, p);
    let recurring_id = op.key(&p.id);
    let mut last_change = op.finished;
    if op.interval_ms > 0 {
        if let Some(old) = entry
            .children_named("lrm_rsc_op")
            .find(|e| e.id() == Some(recurring_id.as_str()))
        {
            let same = old.attr("rc-code") == Some(op.rc.to_string().as_str())
                && old.attr("op-status") == Some(op.op_status.to_string().as_str())
                && old.attr("op-digest") == Some(op.digest.as_str());
            if same {
                return false;
            }
            if old.attr("rc-code") == Some(op.rc.to_string().as_str()) {
                last_change = old
                    .attr("last-rc-change")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(last_change);
            }
        }
        put(entry, op_element(&recurring_id, p, op, uname, last_change));
    } else {
        put(
            entry,
            op_element(&format!("{}_last_0", p.id), p, op, uname, last_change),
        );
    }
    if op.failed() {
        let failure = format!("{}_last_failure_0", p.id);
        put(entry, op_element(&failure, p, op, uname, op.finished));
    }
    if op.task == "stop" && !op.failed() {
        // The stop cancelled the recurring operations; their entries go with them (the
        // record of a past failure stays).
        let prefix = format!("{}_", p.id);
        entry.children.retain(|c| {
            !matches!(c, Node::Element(e) if e.name == "lrm_rsc_op"
                && e.attr("interval").is_some_and(|i| i != "0")
                && e.id().is_some_and(|id| id.starts_with(&prefix) && !id.ends_with("_last_failure_0")))
        });
    }
    true
}

/// An XML id made from `text` (`#` and other characters an id cannot hold become `.`).
fn xml_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '.'
            }
        })
        .collect()
}

fn transient_set<'d>(doc: &'d mut Document, node_id: &str, uname: &str) -> &'d mut Element {
    let state = node_state(doc, node_id, uname);
    let transient = state.child_or_insert("transient_attributes");
    if transient.attr("id").is_none() {
        transient.set_attr("id", node_id);
    }
    let set = transient.child_or_insert("instance_attributes");
    if set.attr("id").is_none() {
        set.set_attr("id", format!("status-{node_id}"));
    }
    set
}

/// A transient node attribute.
pub fn transient(doc: &Document, node_id: &str, uname: &str, name: &str) -> Option<String> {
    doc.root
        .child("status")?
        .children_named("node_state")
        .find(|s| s.id() == Some(node_id) || s.attr("uname") == Some(uname))?
        .child("transient_attributes")?
        .children_named("instance_attributes")
        .flat_map(|s| s.children_named("nvpair"))
        .find(|n| n.attr("name") == Some(name))
        .and_then(|n| n.attr("value").map(str::to_string))
}

/// Sets (or with `None` removes) a transient node attribute.
pub fn set_transient(
    doc: &mut Document,
    node_id: &str,
    uname: &str,
    name: &str,
    value: Option<&str>,
) {
    let set = transient_set(doc, node_id, uname);
    let pos = set.children.iter().position(
        |c| matches!(c, Node::Element(e) if e.name == "nvpair" && e.attr("name") == Some(name)),
    );
    match (pos, value) {
        (Some(i), Some(v)) => {
            if let Node::Element(e) = &mut set.children[i] {
                e.set_attr("value", v);
            }
        }
        (None, Some(v)) => set.children.push(Node::Element(
            Element::new("nvpair")
                .with_attr("id", xml_id(&format!("status-{node_id}-{name}")))
                .with_attr("name", name)
                .with_attr("value", v),
        )),
        (Some(i), None) => {
            set.children.remove(i);
        }
        (None, None) => {}
    }
}

/// Counts a failure of `op` of `rsc`: `fail-count-RSC#TASK_INTERVAL` goes up by one (to
/// INFINITY when `fatal`: a failed start with start-failure-is-fatal, a failed stop), and
/// `last-failure-RSC#TASK_INTERVAL` becomes the failure's time.
pub fn count_failure(
    doc: &mut Document,
    node_id: &str,
    uname: &str,
    rsc: &str,
    op: &OpResult,
    fatal: bool,
) {
    let suffix = format!("{rsc}#{}_{}", op.task, op.interval_ms);
    let name = format!("fail-count-{suffix}");
    let old = transient(doc, node_id, uname, &name);
    let value = if fatal {
        "INFINITY".to_string()
    } else {
        let n = hapx_cib::score::parse_plain(old.as_deref().unwrap_or("0"));
        hapx_cib::score::add(n, 1).to_string()
    };
    let value = if value == hapx_cib::score::INFINITY.to_string() {
        "INFINITY".to_string()
    } else {
        value
    };
    set_transient(doc, node_id, uname, &name, Some(&value));
    let last = format!("last-failure-{suffix}");
    set_transient(doc, node_id, uname, &last, Some(&op.finished.to_string()));
}

/// Removes every fail count and last-failure time of `rsc` on the node (the controller's
/// `clear_failcount`). Returns whether anything was removed.
pub fn clear_failcounts(doc: &mut Document, node_id: &str, uname: &str, rsc: &str) -> bool {
    let set = transient_set(doc, node_id, uname);
    let before = set.children.len();
    set.children.retain(|c| {
        !matches!(c, Node::Element(e) if e.name == "nvpair" && e.attr("name").is_some_and(|n| {
            ["fail-count-", "last-failure-"].iter().any(|p| {
                n.strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix(rsc))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
            })
        }))
    });
    set.children.len() != before
}

/// Whether any fail count of `rsc` is recorded in the node state `state`.
fn has_failcount(state: &Element, rsc: &str) -> bool {
    state.descendants().any(|e| {
        e.name == "nvpair"
            && e.attr("name").is_some_and(|n| {
                n.strip_prefix("fail-count-")
                    .and_then(|rest| rest.strip_prefix(rsc))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
            })
    })
}

/// `resource cleanup [RSC] [NODE]`: forgets the history and fail counts of `rsc` (or of every
/// resource that failed) on `node` (by name or id; default: every node), so that it is probed
/// again there and its failures no longer count. Returns the resources cleaned up.
pub fn cleanup(doc: &mut Document, rsc: Option<&str>, node: Option<&str>) -> Vec<String> {
    let mut cleaned: Vec<String> = Vec::new();
    let Some(status) = doc.root.child("status") else {
        return cleaned;
    };
    let on_node =
        |s: &Element| node.is_none_or(|n| s.attr("uname") == Some(n) || s.id() == Some(n));
    let chosen: Vec<&Element> = status
        .children_named("node_state")
        .filter(|s| on_node(s))
        .collect();
    let mut targets: Vec<String> = Vec::new();
    for state in &chosen {
        for e in state.descendants().filter(|e| e.name == "lrm_resource") {
            let Some(id) = e.id() else { continue };
            let failed = e
                .children_named("lrm_rsc_op")
                .any(|o| o.id().is_some_and(|i| i.ends_with("_last_failure_0")));
            let wanted = match rsc {
                Some(r) => r == id,
                None => failed || chosen.iter().any(|s| has_failcount(s, id)),
            };
            if wanted && !targets.iter().any(|t| t == id) {
                targets.push(id.to_string());
            }
        }
    }
    if let Some(r) = rsc {
        if !targets.iter().any(|t| t == r) && chosen.iter().any(|s| has_failcount(s, r)) {
            targets.push(r.to_string());
        }
    }
    let states: Vec<(String, String)> = chosen
        .iter()
        .map(|s| {
            (
                s.id().unwrap_or("").to_string(),
                s.attr("uname").unwrap_or("").to_string(),
            )
        })
        .collect();
    for target in targets {
        for (id, uname) in &states {
            let state = node_state(doc, id, uname);
            if let Some(list) = state.path_mut(&["lrm", "lrm_resources"]) {
                list.children.retain(|c| {
                    !matches!(c, Node::Element(e) if e.name == "lrm_resource" && e.id() == Some(target.as_str()))
                });
            }
            if state.child("transient_attributes").is_some() {
                clear_failcounts(doc, id, uname, &target);
            }
        }
        cleaned.push(target);
    }
    cleaned
}
