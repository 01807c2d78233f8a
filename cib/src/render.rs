//! `crm_simulate`'s text output: the cluster status (node list, resource list) and the
//! transition summary, byte for byte.

use std::fmt::Write as _;

use crate::model::Cib;
use crate::schedule::{Action, Task, Transition};
use crate::status::{ClusterStatus, NodeStatus, Role, RscStatus};

/// The "Node List" and "Full List of Resources" blocks, indented as under
/// "Current cluster status:".
pub fn cluster_status(cib: &Cib, st: &ClusterStatus) -> String {
    let mut out = String::new();
    out.push_str("  * Node List:\n");
    let mut online = Vec::new();
    let mut offline = Vec::new();
    for node in &st.nodes {
        match node_mode(cib, node) {
            NodeMode::Online => online.push(node.uname.as_str()),
            NodeMode::Offline => offline.push(node.uname.as_str()),
            NodeMode::Other(mode) => {
                let _ = writeln!(out, "    * Node {}: {}", node.uname, mode);
            }
        }
    }
    if !online.is_empty() {
        let _ = writeln!(out, "    * Online: [ {} ]", online.join(" "));
    }
    if !offline.is_empty() {
        let _ = writeln!(out, "    * OFFLINE: [ {} ]", offline.join(" "));
    }
    out.push('\n');
    out.push_str("  * Full List of Resources:\n");
    let mut any = false;
    let mut group: Option<&str> = None;
    for (r, rs) in st.resources.iter().enumerate() {
        if rs.orphan && rs.running_on.is_empty() {
            continue;
        }
        any = true;
        let member_of = st.configs[r].group.as_deref();
        if member_of.is_some() && member_of != group {
            let _ = writeln!(
                out,
                "    * Resource Group: {}:",
                group_title(cib, member_of.unwrap_or(""))
            );
        }
        group = member_of;
        let indent = if group.is_some() { "      " } else { "    " };
        let _ = writeln!(out, "{indent}* {}", resource_line(cib, st, r));
    }
    if !any {
        out.push_str("    * No resources\n");
    }
    out
}

/// A group's name with its flags: `grp (unmanaged, disabled)`.
fn group_title(cib: &Cib, id: &str) -> String {
    let Some(g) = cib.groups.iter().find(|g| g.id == id) else {
        return id.to_string();
    };
    let meta = |name: &str| g.meta.get(name).map(crate::model::is_true);
    let mut flags = Vec::new();
    if meta("is-managed") == Some(false)
        || meta("maintenance") == Some(true)
        || cib.options.maintenance_mode
    {
        flags.push("unmanaged");
    }
    if g.meta.get("target-role").map(Role::parse) == Some(Role::Stopped) {
        flags.push("disabled");
    }
    if flags.is_empty() {
        id.to_string()
    } else {
        format!("{id} ({})", flags.join(", "))
    }
}

enum NodeMode {
    Online,
    Offline,
    Other(String),
}

/// Node health as the display reports it, when not green.
fn health_word(cib: &Cib, node: &NodeStatus) -> Option<&'static str> {
    if cib.options.node_health_strategy == "none" {
        return None;
    }
    let mut worst = 0;
    for (_, v) in node.attrs.with_prefix("#health") {
        let level = match v.to_ascii_lowercase().as_str() {
            "red" => 2,
            "yellow" => 1,
            "green" => 0,
            other => {
                let s = crate::score::parse(other, &cib.options.health);
                if s <= -crate::score::INFINITY {
                    2
                } else if s < 0 {
                    1
                } else {
                    0
                }
            }
        };
        worst = worst.max(level);
    }
    match worst {
        2 => Some("RED"),
        1 => Some("YELLOW"),
        _ => None,
    }
}

fn node_mode(cib: &Cib, node: &NodeStatus) -> NodeMode {
    if node.unclean {
        let how = if node.online {
            "online"
        } else if node.pending {
            "pending"
        } else {
            "offline"
        };
        NodeMode::Other(format!("UNCLEAN ({how})"))
    } else if node.pending {
        NodeMode::Other("pending".into())
    } else if node.standby_onfail && node.online {
        NodeMode::Other("standby (on-fail)".into())
    } else if node.standby {
        if node.online {
            if node.running.is_empty() {
                NodeMode::Other("standby".into())
            } else {
                NodeMode::Other("standby (with active resources)".into())
            }
        } else {
            NodeMode::Other("OFFLINE (standby)".into())
        }
    } else if node.maintenance {
        if node.online {
            NodeMode::Other("maintenance".into())
        } else {
            NodeMode::Other("OFFLINE (maintenance)".into())
        }
    } else if node.online {
        match health_word(cib, node) {
            Some(h) => NodeMode::Other(format!("online (health is {h})")),
            None => NodeMode::Online,
        }
    } else {
        NodeMode::Offline
    }
}

/// An OCF exit code as Pacemaker 2.1.5's status output words it (`services_ocf_exitcode_str`,
/// as compiled into libpe_status).
pub fn exit_text(rc: i32) -> &'static str {
    match rc {
        0 => "ok",
        1 => "error",
        2 => "invalid parameter",
        3 => "unimplemented feature",
        4 => "insufficient privileges",
        5 => "not installed",
        6 => "not configured",
        7 => "not running",
        8 => "promoted",
        9 => "promoted (failed)",
        190 => "OCF_DEGRADED",
        191 => "promoted (degraded)",
        _ => "unknown",
    }
}

/// One resource line (`native_output_string`).
pub fn resource_line(_cib: &Cib, st: &ClusterStatus, r: usize) -> String {
    let rs: &RscStatus = &st.resources[r];
    let p = &st.configs[r];
    let mut out = format!("{}\t({}):\t", rs.id, p.agent_spec());
    let node = if rs.running_on.len() == 1 {
        Some(rs.running_on[0])
    } else if rs.running_on.is_empty() {
        rs.locked_to
    } else {
        None
    };
    if rs.orphan {
        out.push_str(" ORPHANED");
    }
    let role = rs.role;
    if rs.failed {
        out.push_str(" FAILED");
        if role > Role::Unpromoted {
            let _ = write!(out, " {}", role.text());
        }
    } else if rs.start_pending && rs.role <= Role::Started && rs.running_on.len() == 1 {
        out.push_str(" Starting");
    } else {
        let _ = write!(out, " {}", role.text());
    }
    if let Some(n) = node {
        let _ = write!(out, " {}", st.nodes[n].uname);
    }
    if role <= Role::Stopped {
        let probe = rs
            .failed_probes
            .iter()
            .find(|(n, _)| node.is_none() || Some(*n) == node);
        if let Some((_, rc)) = probe {
            let _ = write!(out, " ({}) ", exit_text(*rc));
        }
    }
    let mut flags: Vec<&str> = Vec::new();
    if let Some(n) = node {
        if !st.nodes[n].online && st.nodes[n].unclean {
            flags.push("UNCLEAN");
        }
        if rs.locked_to == Some(n) {
            flags.push("LOCKED");
        }
    }
    let target = p.meta.get("target-role").map(Role::parse);
    if target == Some(Role::Stopped) {
        flags.push("disabled");
    }
    // Maintenance shows as unmanaged, as Pacemaker 2.1.5 prints it.
    if rs.blocked {
        flags.push("blocked");
    } else if !rs.managed || rs.maintenance {
        flags.push("unmanaged");
    }
    if rs.failure_ignored {
        flags.push("failure ignored");
    }
    if !flags.is_empty() {
        let _ = write!(out, " ({})", flags.join(", "));
    }
    if rs.running_on.len() > 1 {
        if let Some(d) = &p.description {
            let _ = write!(out, " ({d})");
        }
        let names: Vec<&str> = rs
            .running_on
            .iter()
            .map(|&n| st.nodes[n].uname.as_str())
            .collect();
        let _ = write!(out, " [ {} ]", names.join(" "));
    }
    out
}

/// The "Transition Summary" lines (without the heading), in Pacemaker's order: fencing first,
/// then each resource's change.
pub fn transition_summary(t: &Transition) -> Vec<String> {
    let mut lines = Vec::new();
    for a in t.actions.iter().rev() {
        if a.rsc.is_some() || a.optional {
            continue;
        }
        if let Task::Fence(op) = &a.task {
            let node = a
                .node
                .map(|n| t.status.nodes[n].uname.as_str())
                .unwrap_or("");
            // A fencing without a reason is only logged, never printed (as in Pacemaker).
            if let Some(reason) = &a.reason {
                lines.push(format!("Fence ({op}) {node} '{reason}'"));
            }
        }
    }
    let mut items = Vec::new();
    for &r in &t.order {
        items.extend(rsc_items(t, r));
    }
    // Column widths grow over a first (logging) pass, as Pacemaker's static widths do.
    let mut rsc_width = 5;
    let mut detail_width = 5;
    for it in &items {
        let len = it.rsc.len();
        if len > rsc_width {
            rsc_width = len + 2;
        }
        if it.details.len() > detail_width {
            detail_width = it.details.len();
        }
    }
    for it in items {
        let reason = match it.reason {
            Some(r) => format!("  {r}"),
            None => String::new(),
        };
        lines.push(format!(
            "{:<8}   {:<rw$}   ( {:>dw$} ){}",
            it.change,
            it.rsc,
            it.details,
            reason,
            rw = rsc_width,
            dw = detail_width
        ));
    }
    lines
}

struct Item {
    change: &'static str,
    rsc: String,
    details: String,
    reason: Option<String>,
}

fn first_action<'a>(
    t: &'a Transition,
    r: usize,
    task: &'a Task,
    node: Option<usize>,
) -> Option<&'a Action> {
    t.rsc_actions(r, task, node).next()
}

fn item(
    t: &Transition,
    change: &'static str,
    r: usize,
    origin: Option<usize>,
    destination: Option<usize>,
    action: Option<&Action>,
    source: Option<&Action>,
) -> Option<Item> {
    let action = action?;
    let source = source.unwrap_or(action);
    let name = |n: usize| t.status.nodes[n].uname.clone();
    let rs = &t.status.resources[r];
    let same_host = origin.is_some() && origin == destination;
    let same_role = rs.role == t.next_role[r];
    let details = match (origin, destination) {
        (None, Some(d)) => name(d),
        (Some(o), None) => name(o),
        (Some(o), Some(_)) if same_role && same_host => name(o),
        (Some(o), Some(d)) if same_role => format!("{} -> {}", name(o), name(d)),
        (Some(o), Some(_)) if same_host => {
            format!(
                "{} -> {} {}",
                rs.role.text(),
                t.next_role[r].text(),
                name(o)
            )
        }
        (Some(o), Some(d)) => format!(
            "{} {} -> {} {}",
            rs.role.text(),
            name(o),
            t.next_role[r].text(),
            name(d)
        ),
        (None, None) => return None,
    };
    let reason = match (&source.reason, action.runnable) {
        (Some(r), false) => Some(format!("due to {r} (blocked)")),
        (Some(r), true) => Some(format!("due to {r}")),
        (None, false) => Some("blocked".to_string()),
        (None, true) => None,
    };
    Some(Item {
        change,
        rsc: rs.id.clone(),
        details,
        reason,
    })
}

/// `rsc_action_default`: what changes for one primitive.
fn rsc_items(t: &Transition, r: usize) -> Vec<Item> {
    let rs = &t.status.resources[r];
    let current = crate::schedule::active_node(&t.status, r, &t.settings[r]);
    let next = t.assigned[r];
    let mut out = Vec::new();
    if !t.status.resources[r].managed || (current.is_none() && next.is_none()) {
        return out;
    }
    let moving = current.is_some() && next.is_some() && current != next;
    let start = first_action(t, r, &Task::Start, next);
    let start_node = match start {
        Some(s) if s.runnable => current,
        _ => None,
    };
    let stop = first_action(t, r, &Task::Stop, start_node);
    let role = rs.role;
    let next_role = t.next_role[r];
    if role == next_role {
        let Some(next_node) = next else {
            return out;
        };
        let migrate = first_action(t, r, &Task::MigrateFrom, Some(next_node));
        let reload = first_action(t, r, &Task::Reload, Some(next_node));
        let it = if migrate.is_some_and(|m| m.runnable) && current.is_some() {
            item(t, "Migrate", r, current, next, start, None)
        } else if let Some(reload) = reload.filter(|a| !a.optional) {
            // Pacemaker prints a reload without its action, so without a reason.
            let quiet = Action {
                reason: None,
                ..reload.clone()
            };
            item(t, "Reload", r, current, next, Some(&quiet), None)
        } else if start.is_none_or(|s| s.optional) {
            None
        } else if !start.is_some_and(|s| s.runnable) {
            let src = match stop {
                Some(s) if s.reason.is_some() => Some(s),
                _ => start,
            };
            item(t, "Stop", r, current, None, stop, src)
        } else if moving && current.is_some() {
            let change = if rs.failed { "Recover" } else { "Move" };
            item(t, change, r, current, next, stop, None)
        } else if rs.failed {
            item(t, "Recover", r, current, None, stop, None)
        } else {
            item(t, "Restart", r, current, next, start, None)
        };
        out.extend(it);
        return out;
    }
    let start_unrunnable = start.is_some_and(|s| !s.runnable);
    if stop.is_some() && (next_role == Role::Stopped || start_unrunnable) {
        for &n in &rs.running_on {
            let stop_op = first_action(t, r, &Task::Stop, Some(n));
            let src = match stop_op {
                Some(s) if s.reason.is_some() => Some(s),
                _ => start,
            };
            out.extend(item(t, "Stop", r, Some(n), None, stop_op, src));
        }
    } else if stop.is_some() && rs.failed && rs.stop_needed {
        out.extend(item(t, "Recover", r, current, next, stop, start));
    } else if moving {
        out.extend(item(t, "Move", r, current, next, stop, None));
    } else if let Some(s) = start.filter(|s| !s.optional) {
        out.extend(item(t, "Start", r, current, next, Some(s), None));
    }
    out
}

/// The allocation scores (`crm_simulate -s`), one line per resource and allowed node.
pub fn scores(t: &Transition) -> String {
    let mut out = String::new();
    for (r, rs) in t.status.resources.iter().enumerate() {
        for (n, w) in crate::schedule::node_scores(t, r) {
            let _ = writeln!(
                out,
                "pcmk__primitive_assign: {} allocation score on {}: {}",
                rs.id,
                t.status.nodes[n].uname,
                crate::score::to_text(w)
            );
        }
    }
    out
}

/// Why resource `rsc` goes where it goes (`hapx simulate --explain`), in plain words.
pub fn explain(t: &Transition, rsc: &str) -> Option<String> {
    let r = t.status.resources.iter().position(|x| x.id == rsc)?;
    let mut out = String::new();
    let rs = &t.status.resources[r];
    let s = &t.settings[r];
    let _ = writeln!(out, "Resource {rsc}:");
    match rs.running_on.as_slice() {
        [] => out.push_str("  now: stopped\n"),
        nodes => {
            let names: Vec<&str> = nodes
                .iter()
                .map(|&n| t.status.nodes[n].uname.as_str())
                .collect();
            let _ = writeln!(
                out,
                "  now: {} on {}{}",
                rs.role.text(),
                names.join(", "),
                if rs.failed { " (failed)" } else { "" }
            );
        }
    }
    let _ = writeln!(
        out,
        "  settings: priority {}, resource-stickiness {}, migration-threshold {}, {}",
        s.priority,
        s.stickiness,
        crate::score::to_text(s.migration_threshold),
        if rs.managed {
            "managed"
        } else {
            "not managed (stays as it is)"
        }
    );
    out.push_str("  contributions:\n");
    if t.explanations[r].is_empty() {
        out.push_str("    none beyond the cluster default of 0 on every allowed node\n");
    }
    for why in &t.explanations[r] {
        let _ = writeln!(out, "    {why}");
    }
    out.push_str("  node states:\n");
    for node in &t.status.nodes {
        let state = if node.unclean {
            "unclean: cannot run resources until fenced"
        } else if !node.online {
            "offline: cannot run resources"
        } else if node.standby {
            "standby: cannot run resources"
        } else if node.maintenance {
            "maintenance: cannot run resources"
        } else {
            "online"
        };
        let _ = writeln!(out, "    {}: {state}", node.uname);
    }
    out.push_str("  final scores:\n");
    for (n, w) in crate::schedule::node_scores(t, r) {
        let _ = writeln!(
            out,
            "    {}: {}",
            t.status.nodes[n].uname,
            crate::score::to_text(w)
        );
    }
    match t.assigned[r] {
        Some(n) => {
            let _ = writeln!(
                out,
                "  decision: run on {} (highest score; ties go to the node with fewer resources, then the current node, then by name)",
                t.status.nodes[n].uname
            );
        }
        None => {
            out.push_str("  decision: stopped (no node with a score of 0 or more can run it)\n")
        }
    }
    Some(out)
}
