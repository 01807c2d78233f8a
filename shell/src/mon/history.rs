//! Operation history: which recorded operations failed, as Pacemaker's unpacking records them
//! for "Failed Resource Actions" and for the "(not installed)" note of a failed probe.
//!
//! Each node's `lrm_rsc_op` entries are read in call-id order; an operation failed when its
//! execution status says so or its exit code differs from the one the transition expected
//! (`remap_operation`: a probe finding the resource stopped or running is not a failure).
//! Failures older than the resource's `failure-timeout` have expired and are left out.

use hapx_cib::model::Cib;
use hapx_cib::status::{self, ClusterStatus};
use hapx_cib::xml::Element;

use super::text;

/// Execution statuses (`enum pcmk_exec_status`).
const EXEC_DONE: i32 = 0;
const EXEC_CANCELLED: i32 = 1;
const EXEC_ERROR: i32 = 4;
const EXEC_PENDING: i32 = -1;
const EXEC_NOT_INSTALLED: i32 = 7;
const OCF_UNIMPLEMENTED: i32 = 3;
const OCF_NOT_INSTALLED: i32 = 5;
const OCF_OK: i32 = 0;
const OCF_NOT_RUNNING: i32 = 7;
const OCF_RUNNING_PROMOTED: i32 = 8;

/// A failed operation as `crm_mon` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedOp {
    /// The history entry's id (`RSC_last_failure_0`).
    pub id: String,
    /// The resource the history belongs to.
    pub rsc: String,
    pub node: String,
    /// `operation_key` (`RSC_TASK_INTERVAL`), or the id when there is none.
    pub key: String,
    pub task: String,
    pub interval_ms: u64,
    pub rc: i32,
    /// The recorded execution status (`op-status`), not the remapped one.
    pub status: i32,
    pub exit_reason: Option<String>,
    pub last_rc_change: Option<i64>,
    pub exec_time_ms: Option<i64>,
}

impl FailedOp {
    pub fn is_probe(&self) -> bool {
        self.task == "monitor" && self.interval_ms == 0
    }

    /// `pcmk_xe_mask_probe_failure`: a probe that found the agent missing is kept for the
    /// resource line's "(not installed)" note but not listed as a failed action.
    pub fn masked(&self) -> bool {
        self.is_probe() && (self.rc == OCF_NOT_INSTALLED || self.status == EXEC_NOT_INSTALLED)
    }

    /// `failed_action_friendly`: `RSC [10s-interval ]TASK on NODE returned 'error' ...`.
    pub fn friendly(&self) -> String {
        let (rsc, task, interval) = parse_op_key(&self.key).unwrap_or((
            "unknown resource".into(),
            "unknown action".into(),
            0,
        ));
        let mut s = format!("{rsc} ");
        if interval != 0 {
            s.push_str(&format!("{}-interval ", text::readable_interval(interval)));
        }
        let task = if task == "monitor" && interval == 0 {
            "probe".to_string()
        } else {
            task
        };
        s.push_str(&format!("{task} on {}", self.node));
        let reason = self.exit_reason.as_deref().filter(|r| !r.is_empty());
        if self.status == EXEC_DONE {
            s.push_str(&format!(" returned '{}'", text::exit_code(self.rc)));
            if let Some(r) = reason {
                s.push_str(&format!(" ({r})"));
            }
        } else {
            s.push_str(&format!(
                " could not be executed ({}",
                text::exec_status(self.status)
            ));
            if let Some(r) = reason {
                s.push_str(&format!(": {r}"));
            }
            s.push(')');
        }
        if let Some(t) = self.last_rc_change {
            s.push_str(&format!(" at {}", text::epoch_to_str(t)));
        }
        if let Some(ms) = self.exec_time_ms.filter(|&ms| ms > 0) {
            s.push_str(&format!(" after {}", text::readable_interval(ms as u64)));
        }
        s
    }
}

/// `parse_op_key`: `RSC_TASK_INTERVAL` into its parts (tasks with `_` kept whole).
pub fn parse_op_key(key: &str) -> Option<(String, String, u64)> {
    let (rest, interval) = key.rsplit_once('_')?;
    let interval: u64 = interval.parse().ok()?;
    for task in ["migrate_to", "migrate_from"] {
        if let Some(rsc) = rest.strip_suffix(task).and_then(|r| r.strip_suffix('_'))
            && !rsc.is_empty()
        {
            return Some((rsc.to_string(), task.to_string(), interval));
        }
    }
    let (rsc, task) = rest.rsplit_once('_')?;
    if rsc.is_empty() || task.is_empty() {
        return None;
    }
    Some((rsc.to_string(), task.to_string(), interval))
}

/// Every failed operation in the status section, in Pacemaker's unpacking order.
pub fn failed_ops(cib: &Cib, st: &ClusterStatus) -> Vec<FailedOp> {
    let settings = status::settings(cib, st);
    let mut failed: Vec<FailedOp> = Vec::new();
    let Some(section) = cib.doc.root.child("status") else {
        return failed;
    };
    for state in section.children_named("node_state") {
        let Some(node) = st.nodes.iter().find(|n| {
            Some(n.id.as_str()) == state.id() || Some(n.uname.as_str()) == state.attr("uname")
        }) else {
            continue;
        };
        // Pacemaker records no failure of an offline node (`record_failed_op`).
        if !node.online {
            continue;
        }
        let entries = state
            .path(&["lrm", "lrm_resources"])
            .into_iter()
            .flat_map(|l| l.children_named("lrm_resource"));
        for entry in entries {
            let rsc = entry.id().unwrap_or_default();
            let ri = st.resources.iter().position(|r| r.id == rsc);
            let managed = ri.is_none_or(|i| settings[i].managed);
            let timeout = ri.map(|i| settings[i].failure_timeout_s).unwrap_or(0);
            let node_ix = st.nodes.iter().position(|n| n.uname == node.uname);
            // `check_operation_expiry`: an old failure has expired only while no effective
            // fail count keeps it alive.
            let counted = ri
                .zip(node_ix)
                .is_some_and(|(r, n)| st.resources[r].fail_counts.get(n).copied().unwrap_or(0) > 0);
            let mut ops: Vec<&Element> = entry.children_named("lrm_rsc_op").collect();
            ops.sort_by_key(|op| int_attr(op, "call-id").unwrap_or(0));
            for op in ops {
                let Some(f) = read_failure(op, rsc, &node.uname, managed) else {
                    continue;
                };
                let expired = timeout > 0
                    && !counted
                    && f.last_rc_change
                        .or_else(|| int_attr(op, "last-run"))
                        .is_some_and(|t| t + timeout <= st.now);
                if expired {
                    continue;
                }
                // One entry per operation key and node (`record_failed_op`).
                if !failed.iter().any(|o| o.key == f.key && o.node == f.node) {
                    failed.push(f);
                }
            }
        }
    }
    failed
}

fn int_attr(e: &Element, name: &str) -> Option<i64> {
    e.attr(name).and_then(|v| v.trim().parse().ok())
}

/// The expected exit code from `transition-key` (`ACTION:TRANSITION:TARGET_RC:UUID`), or from
/// `transition-magic` (`STATUS:RC;KEY`).
fn target_rc(op: &Element) -> Option<i32> {
    let key = op.attr("transition-key").or_else(|| {
        op.attr("transition-magic")
            .and_then(|m| m.split_once(';').map(|x| x.1))
    })?;
    key.split(':').nth(2)?.parse().ok()
}

/// The operation as a failure, or `None` when it succeeded, is pending or was cancelled.
fn read_failure(op: &Element, rsc: &str, node: &str, managed: bool) -> Option<FailedOp> {
    let call_id = int_attr(op, "call-id").unwrap_or(0);
    let recorded = int_attr(op, "op-status").unwrap_or(0) as i32;
    if call_id == -1 || recorded == EXEC_PENDING || recorded == EXEC_CANCELLED {
        return None;
    }
    let rc = int_attr(op, "rc-code").unwrap_or(0) as i32;
    let task = op.attr("operation").unwrap_or_default().to_string();
    let interval_ms = op
        .attr("interval")
        .and_then(hapx_cib::model::parse_interval_ms)
        .unwrap_or(0);
    let probe = task == "monitor" && interval_ms == 0;
    let mut status = recorded;
    if let Some(target) = target_rc(op)
        && (status == EXEC_DONE || status == EXEC_ERROR)
    {
        status = remap(rc, target, probe, managed);
    }
    // Unsupported recurring actions are ignored.
    let unsupported = rc == OCF_UNIMPLEMENTED && interval_ms > 0;
    if status == EXEC_DONE || unsupported {
        return None;
    }
    let key = op
        .attr("operation_key")
        .filter(|k| !k.is_empty())
        .or(op.id())
        .unwrap_or_default()
        .to_string();
    Some(FailedOp {
        id: op.id().unwrap_or_default().to_string(),
        rsc: rsc.to_string(),
        node: node.to_string(),
        key,
        task,
        interval_ms,
        rc,
        status: recorded,
        exit_reason: op.attr("exit-reason").map(str::to_string),
        last_rc_change: int_attr(op, "last-rc-change").filter(|&t| t > 0),
        exec_time_ms: int_attr(op, "exec-time"),
    })
}

/// `remap_operation`: the execution status an exit code means against the expected one.
fn remap(rc: i32, target: i32, probe: bool, managed: bool) -> i32 {
    let mismatch = if rc == target { EXEC_DONE } else { EXEC_ERROR };
    match rc {
        OCF_OK if probe && target == OCF_NOT_RUNNING => EXEC_DONE,
        OCF_NOT_RUNNING if probe || rc == target || !managed => EXEC_DONE,
        OCF_RUNNING_PROMOTED if probe => EXEC_DONE,
        9 | 191 => EXEC_ERROR,
        2..=6 => EXEC_ERROR + 1,
        _ => mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_keys_split_from_the_right() {
        assert_eq!(
            parse_op_key("group_1-postfix_9_monitor_0"),
            Some(("group_1-postfix_9".into(), "monitor".into(), 0))
        );
        assert_eq!(
            parse_op_key("vip_migrate_to_0"),
            Some(("vip".into(), "migrate_to".into(), 0))
        );
        assert_eq!(parse_op_key("garbage"), None);
    }

    #[test]
    fn probes_finding_the_resource_stopped_are_not_failures() {
        assert_eq!(remap(7, 7, true, true), EXEC_DONE);
        assert_eq!(remap(0, 7, true, true), EXEC_DONE);
        assert_eq!(remap(1, 0, false, true), EXEC_ERROR);
        assert_eq!(remap(7, 0, false, true), EXEC_ERROR);
    }
}

/// An operation still in flight (`call-id="-1"` or `op-status="-1"`): crm_mon shows the
/// resource as "Starting", "Stopping" ... and flags pending monitors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOp {
    pub rsc: String,
    pub node: String,
    /// The task, or `probe` for a one-time monitor.
    pub task: String,
}

impl PendingOp {
    /// `native_pending_state`: the word replacing the role, if the task has one.
    pub fn state(&self) -> Option<&'static str> {
        Some(match self.task.as_str() {
            "start" => "Starting",
            "stop" => "Stopping",
            "migrate_to" | "migrate_from" => "Migrating",
            "promote" => "Promoting",
            "demote" => "Demoting",
            _ => return None,
        })
    }

    /// `native_pending_task`: the flag a pending monitor adds.
    pub fn flag(&self) -> Option<&'static str> {
        match self.task.as_str() {
            "monitor" => Some("Monitoring"),
            "probe" => Some("Checking"),
            _ => None,
        }
    }
}

/// The first pending operation of each resource, in unpacking order.
pub fn pending_ops(cib: &Cib) -> Vec<PendingOp> {
    let mut out: Vec<PendingOp> = Vec::new();
    let Some(section) = cib.doc.root.child("status") else {
        return out;
    };
    for state in section.children_named("node_state") {
        let node = state.attr("uname").unwrap_or_default();
        let entries = state
            .path(&["lrm", "lrm_resources"])
            .into_iter()
            .flat_map(|l| l.children_named("lrm_resource"));
        for entry in entries {
            let rsc = entry.id().unwrap_or_default();
            for op in entry.children_named("lrm_rsc_op") {
                let pending = int_attr(op, "call-id") == Some(-1)
                    || int_attr(op, "op-status") == Some(i64::from(EXEC_PENDING));
                if !pending || out.iter().any(|p| p.rsc == rsc) {
                    continue;
                }
                let task = op.attr("operation").unwrap_or_default();
                let interval = op
                    .attr("interval")
                    .and_then(hapx_cib::model::parse_interval_ms)
                    .unwrap_or(0);
                if task == "notify" {
                    continue;
                }
                out.push(PendingOp {
                    rsc: rsc.to_string(),
                    node: node.to_string(),
                    task: if task == "monitor" && interval == 0 {
                        "probe".into()
                    } else {
                        task.to_string()
                    },
                });
            }
        }
    }
    out
}
