//! Running a transition the way `crm_simulate` does: every action succeeds, in graph order.
//!
//! The graph lists, resource by resource, each resource's actions newest first, then the
//! cluster actions (fencing, shutdown) newest first. Execution sweeps the list repeatedly,
//! firing every action whose inputs are all done; a fired action is done at once, so later
//! actions in the same sweep may fire too. This is what makes `crm_simulate`'s "Executing
//! Cluster Transition" order, and hapx reproduces it to print the same lines.
//!
//! Each result is recorded in the CIB's status section as Pacemaker records it (an
//! `lrm_rsc_op` per operation; a fenced node goes down and loses its history), so that the
//! revised cluster status comes from unpacking the new CIB.

use std::collections::HashSet;

use crate::digest;
use crate::inject::OpSpec;
use crate::schedule::{Action, Task, Transition};
use crate::status;
use crate::xml::{Document, Element, Node};

/// One synapse of the transition graph: an action and the actions it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synapse {
    pub action: usize,
    pub inputs: Vec<usize>,
}

/// The transition graph, in Pacemaker's synapse order.
pub fn graph(t: &Transition) -> Vec<Synapse> {
    let mut order: Vec<usize> = Vec::new();
    let group_actions: std::collections::HashMap<usize, &Vec<usize>> = t
        .group_actions
        .iter()
        .map(|(first, ids)| (*first, ids))
        .collect();
    for &r in &t.order {
        // A group's own actions come before its members', newest first.
        if let Some(ids) = group_actions.get(&r) {
            order.extend(
                ids.iter()
                    .rev()
                    .copied()
                    .filter(|&a| t.in_graph(&t.actions[a])),
            );
        }
        order.extend(
            t.by_rsc[r]
                .iter()
                .rev()
                .copied()
                .filter(|&a| t.in_graph(&t.actions[a])),
        );
    }
    let mut others: Vec<usize> = t
        .actions
        .iter()
        .filter(|a| a.rsc.is_none() && !matches!(a.task, Task::Group(_)) && t.in_graph(a))
        .map(|a| a.id)
        .collect();
    others.reverse();
    order.extend(others);
    let included: HashSet<usize> = order.iter().copied().collect();
    let mut inputs: Vec<Vec<usize>> = vec![Vec::new(); t.actions.len()];
    for o in &t.orderings {
        if included.contains(&o.first)
            && included.contains(&o.then)
            && !inputs[o.then].contains(&o.first)
        {
            inputs[o.then].push(o.first);
        }
    }
    order
        .into_iter()
        .map(|a| Synapse {
            action: a,
            inputs: std::mem::take(&mut inputs[a]),
        })
        .collect()
}

/// The order in which the graph's actions run when every action succeeds.
pub fn execution_order(t: &Transition) -> Vec<usize> {
    let synapses = graph(t);
    let mut done = vec![false; t.actions.len()];
    let mut fired = vec![false; synapses.len()];
    let mut order = Vec::new();
    loop {
        let mut any = false;
        for (i, s) in synapses.iter().enumerate() {
            if fired[i] || !s.inputs.iter().all(|&x| done[x]) {
                continue;
            }
            fired[i] = true;
            any = true;
            done[s.action] = true;
            order.push(s.action);
        }
        if !any {
            return order;
        }
    }
}

/// The operation key Pacemaker gives an action (`rsc1_start_0`, `load_stopped_node1`).
pub fn action_key(t: &Transition, a: &Action) -> String {
    match (&a.task, a.rsc) {
        (Task::LoadStopped, _) => {
            format!("load_stopped_{}", node_name(t, a.node))
        }
        (Task::Fence(op), _) => format!("stonith-{}-{}", node_name(t, a.node), op),
        (Task::Cancel(i), Some(r)) => format!("{}_monitor_{i}", t.status.resources[r].id),
        (task, Some(r)) => format!(
            "{}_{}_{}",
            t.status.resources[r].id,
            task.name(),
            match task {
                Task::Monitor(i) => *i,
                _ => 0,
            }
        ),
        (task, None) => task.name().to_string(),
    }
}

fn node_name(t: &Transition, n: Option<usize>) -> String {
    n.map(|n| t.status.nodes[n].uname.clone())
        .unwrap_or_default()
}

/// Runs the transition: the lines `crm_simulate` prints under "Executing Cluster Transition"
/// and the CIB with the results recorded.
pub fn execute(t: &Transition, doc: &Document) -> (Vec<String>, Document) {
    execute_with(t, doc, &[], t.status.now)
}

/// Runs the transition with some actions failing (`crm_simulate -F`): a failed action records
/// its rc and a fail count, and nothing that waits for it runs. Lines come with their bullets.
pub fn execute_with(
    t: &Transition,
    doc: &Document,
    failures: &[OpSpec],
    now: i64,
) -> (Vec<String>, Document) {
    let synapses = graph(t);
    let mut doc = doc.clone();
    let mut done = vec![false; t.actions.len()];
    let mut fired = vec![false; synapses.len()];
    let mut lines = Vec::new();
    let mut cache = EntryCache::default();
    loop {
        let mut any = false;
        for (i, s) in synapses.iter().enumerate() {
            if fired[i] || !s.inputs.iter().all(|&x| done[x]) {
                continue;
            }
            fired[i] = true;
            any = true;
            let a = &t.actions[s.action];
            lines.push(format!("  * {}", describe(t, a)));
            let failure = failures.iter().find(|f| {
                a.rsc.is_some()
                    && f.key() == action_key(t, a)
                    && a.node.is_some_and(|n| t.status.nodes[n].uname == f.node)
            });
            match failure {
                Some(f) => {
                    // Pacemaker numbers actions from 1.
                    lines.push(format!(
                        "Pretending action {} failed with rc={}",
                        a.id + 1,
                        f.rc
                    ));
                    let mut failed = a.clone();
                    failed.target_rc = f.rc;
                    record_result(t, &failed, &mut doc, a.target_rc, &mut cache);
                    lines.extend(record_failcount(t, a, &mut doc, now));
                }
                None => {
                    record(t, a, &mut doc, &mut cache);
                    done[s.action] = true;
                }
            }
        }
        if !any {
            break;
        }
    }
    (lines, doc)
}

fn describe(t: &Transition, a: &Action) -> String {
    let node = node_name(t, a.node);
    if a.pseudo {
        return format!("Pseudo action:   {}", action_key(t, a));
    }
    match (&a.task, a.rsc) {
        (Task::Fence(op), _) => format!("Fencing {node} ({op})"),
        (Task::Shutdown, _) => format!("Cluster action:  do_shutdown on {node}"),
        (Task::ClearFailcount | Task::LrmDelete, Some(r)) => format!(
            "Cluster action:  {} for {} on {node}",
            a.task.name(),
            t.status.resources[r].id
        ),
        (Task::Cancel(i), Some(r)) => format!(
            "Resource action: {:<15} cancel={i} on {node}",
            t.status.resources[r].id
        ),
        (Task::Monitor(i), Some(r)) if *i > 0 => format!(
            "Resource action: {:<15} monitor={i} on {node}",
            t.status.resources[r].id
        ),
        (task, Some(r)) => format!(
            "Resource action: {:<15} {} on {node}",
            t.status.resources[r].id,
            task.name()
        ),
        (task, None) => format!("Cluster action:  {} on {node}", task.name()),
    }
}

/// Records an action's (successful) result in the CIB, as `crm_simulate` injects it.
fn record(t: &Transition, a: &Action, doc: &mut Document, cache: &mut EntryCache) {
    record_result(t, a, doc, a.target_rc, cache)
}

/// Records `a.target_rc` as the result of `a`, which expected `expected`.
/// Where each node's `lrm_resource` entries are, by resource id.
#[derive(Debug, Default)]
struct EntryCache {
    indexed: std::collections::HashSet<usize>,
    positions: std::collections::HashMap<(usize, String), usize>,
}

fn record_result(
    t: &Transition,
    a: &Action,
    doc: &mut Document,
    expected: i32,
    cache: &mut EntryCache,
) {
    if a.pseudo {
        return;
    }
    let Some(n) = a.node else {
        return;
    };
    let node = &t.status.nodes[n];
    match (&a.task, a.rsc) {
        (Task::Fence(op), _) if op != "on" => {
            let state = node_state(doc, &node.id, &node.uname);
            state.set_attr("in_ccm", "false");
            state.set_attr("crmd", "offline");
            state.set_attr("join", "down");
            state.set_attr("expected", "down");
            state
                .children
                .retain(|c| !matches!(c, Node::Element(e) if e.name == "lrm" || e.name == "transient_attributes"));
            cache.indexed.remove(&n);
            cache.positions.retain(|(node, _), _| *node != n);
        }
        (
            Task::Start | Task::Stop | Task::Monitor(_) | Task::MigrateTo | Task::MigrateFrom,
            Some(r),
        ) => {
            let p = &t.status.configs[r];
            let state = node_state(doc, &node.id, &node.uname);
            let resources = state
                .child_or_insert("lrm")
                .child_or_insert("lrm_resources");
            // Index each node's history once: looking entries up one by one would make
            // recording quadratic in the number of resources.
            if cache.indexed.insert(n) {
                for (i, c) in resources.children.iter().enumerate() {
                    if let Node::Element(e) = c {
                        if e.name == "lrm_resource" {
                            if let Some(id) = e.id() {
                                cache.positions.insert((n, id.to_string()), i);
                            }
                        }
                    }
                }
            }
            let pos = cache.positions.get(&(n, p.id.clone())).copied();
            let entry = match pos {
                Some(i) => match &mut resources.children[i] {
                    Node::Element(e) => e,
                    _ => unreachable!("position matched an element"),
                },
                None => {
                    resources
                        .children
                        .push(Node::Element(p.lrm_resource_element()));
                    cache
                        .positions
                        .insert((n, p.id.clone()), resources.children.len() - 1);
                    match resources.children.last_mut() {
                        Some(Node::Element(e)) => e,
                        _ => unreachable!("just pushed an element"),
                    }
                }
            };
            let call_id = entry
                .children_named("lrm_rsc_op")
                .filter_map(|o| o.attr("call-id").and_then(|c| c.parse::<i64>().ok()))
                .max()
                .unwrap_or(0)
                .max(0)
                + 1;
            // crm_simulate records its results under transition -1.
            let interval = match a.task {
                Task::Monitor(i) => i,
                _ => 0,
            };
            let op_id = if interval > 0 {
                format!("{}_monitor_{interval}", p.id)
            } else {
                format!("{}_last_0", p.id)
            };
            let mut op = Element::new("lrm_rsc_op")
                .with_attr("id", op_id.clone())
                .with_attr("operation", a.task.name())
                .with_attr(
                    "operation_key",
                    format!("{}_{}_{interval}", p.id, a.task.name()),
                )
                .with_attr("transition-key", format!("0:-1:{expected}:hapx-simulate"))
                .with_attr("call-id", call_id.to_string())
                .with_attr("rc-code", a.target_rc.to_string())
                .with_attr("op-status", if a.target_rc == expected { "0" } else { "4" })
                .with_attr("interval", interval.to_string())
                .with_attr("last-rc-change", t.status.now.to_string())
                .with_attr("last-run", t.status.now.to_string())
                .with_attr("on_node", node.uname.clone());
            // The controller records each result with its parameters' digest, which the
            // next schedule compares with the resource's definition.
            let timeout =
                status::op_timeout_ms(p, a.task.name(), interval, t.status.default_timeout_ms);
            op.set_attr(
                "op-digest",
                digest::operation_digest(p, a.task.name(), interval, timeout),
            );
            if a.task == Task::MigrateTo {
                if let Some(target) = t.assigned[r] {
                    op.set_attr("migrate_source", node.uname.clone());
                    op.set_attr("migrate_target", t.status.nodes[target].uname.clone());
                }
            }
            let existing = entry
                .children
                .iter()
                .position(|c| matches!(c, Node::Element(e) if e.id() == Some(op_id.as_str())));
            match existing {
                Some(i) => entry.children[i] = Node::Element(op),
                None => entry.children.push(Node::Element(op)),
            }
        }
        _ => {}
    }
}

/// Counts a failed action in the node's transient attributes, as `crm_simulate` does.
fn record_failcount(t: &Transition, a: &Action, doc: &mut Document, now: i64) -> Vec<String> {
    let (Some(r), Some(n)) = (a.rsc, a.node) else {
        return Vec::new();
    };
    let node = &t.status.nodes[n];
    let key = format!(
        "{}#{}_{}",
        t.status.resources[r].id,
        a.task.name(),
        match a.task {
            Task::Monitor(i) => i,
            _ => 0,
        }
    );
    let state = node_state(doc, &node.id, &node.uname);
    let name = crate::inject::record_failure(state, &key, false, now);
    vec![
        format!(
            "  * Injecting attribute {name}=value++ into /node_state '{}'",
            node.id
        ),
        format!(
            "  * Injecting attribute last-failure-{key}={now} into /node_state '{}'",
            node.id
        ),
    ]
}

/// The `node_state` of a node, created (as a member that is up) when missing.
fn node_state<'d>(doc: &'d mut Document, id: &str, uname: &str) -> &'d mut Element {
    let status = doc.root.child_or_insert("status");
    let pos = status.children.iter().position(
        |c| matches!(c, Node::Element(e) if e.name == "node_state" && (e.id() == Some(id) || e.attr("uname") == Some(uname))),
    );
    let pos = pos.unwrap_or_else(|| {
        status.children.push(Node::Element(
            Element::new("node_state")
                .with_attr("id", id)
                .with_attr("uname", uname)
                .with_attr("in_ccm", "true")
                .with_attr("crmd", "online")
                .with_attr("join", "member")
                .with_attr("expected", "member"),
        ));
        status.children.len() - 1
    });
    match &mut status.children[pos] {
        Node::Element(e) => e,
        _ => unreachable!("position matched an element"),
    }
}

/// The transition graph as Pacemaker's graph XML (`crm_simulate -G`).
pub fn graph_xml(t: &Transition) -> String {
    use crate::xml::escape_attr;
    let mut out = String::from(
        "<transition_graph cluster-delay=\"60s\" stonith-timeout=\"60s\" failed-stop-offset=\"INFINITY\" failed-start-offset=\"INFINITY\" transition_id=\"0\">\n",
    );
    let element = |a: &Action| -> String {
        let tag = if a.pseudo {
            "pseudo_event"
        } else if a.rsc.is_some() && !matches!(a.task, Task::ClearFailcount) {
            "rsc_op"
        } else {
            "crm_event"
        };
        let mut s = format!(
            "<{tag} id=\"{}\" operation=\"{}\" operation_key=\"{}\"",
            a.id,
            escape_attr(a.task.name()),
            escape_attr(&action_key(t, a))
        );
        if let (false, Some(n)) = (a.pseudo, a.node) {
            let node = &t.status.nodes[n];
            s.push_str(&format!(
                " on_node=\"{}\" on_node_uuid=\"{}\"",
                escape_attr(&node.uname),
                escape_attr(&node.id)
            ));
        }
        s.push('>');
        if let (Some(r), "rsc_op") = (a.rsc, tag) {
            let p = &t.status.configs[r];
            s.push_str(&format!(
                "<primitive id=\"{}\" class=\"{}\"{} type=\"{}\"/>",
                escape_attr(&p.id),
                escape_attr(&p.class),
                p.provider
                    .as_deref()
                    .map(|v| format!(" provider=\"{}\"", escape_attr(v)))
                    .unwrap_or_default(),
                escape_attr(&p.agent)
            ));
        }
        let interval = match a.task {
            Task::Monitor(i) => i,
            _ => 0,
        };
        s.push_str(&format!(
            "<attributes CRM_meta_interval=\"{interval}\" CRM_meta_op_target_rc=\"{}\"/></{tag}>",
            a.target_rc
        ));
        s
    };
    for (i, syn) in graph(t).iter().enumerate() {
        out.push_str(&format!("  <synapse id=\"{i}\">\n    <action_set>\n      "));
        out.push_str(&element(&t.actions[syn.action]));
        out.push_str("\n    </action_set>\n    <inputs>\n");
        for &input in &syn.inputs {
            out.push_str("      <trigger>\n        ");
            out.push_str(&element(&t.actions[input]));
            out.push_str("\n      </trigger>\n");
        }
        out.push_str("    </inputs>\n  </synapse>\n");
    }
    out.push_str("</transition_graph>\n");
    out
}
