//! One resource operation through the agents' executor: which agent, with which parameters
//! and timeout, and its outcome turned into the result Pacemaker's executor would report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hapx_agents::exec::{self, Invocation, Termination};
use hapx_cib::model::{Cib, OpConfig, Primitive, parse_interval_ms};

use super::history::{OpResult, exec_status};
use hapx_cib::digest::operation_digest;

/// Pacemaker's default operation timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The configured `<op>` of `p` for `task` at `interval_ms`; for a probe without its own
/// configuration, the monitor with the smallest interval (whose timeout Pacemaker uses).
pub fn op_config<'p>(p: &'p Primitive, task: &str, interval_ms: u64) -> Option<&'p OpConfig> {
    let exact = p
        .ops
        .iter()
        .find(|o| o.name == task && o.interval_ms == interval_ms && o.enabled);
    if exact.is_some() || task != "monitor" || interval_ms != 0 {
        return exact;
    }
    p.ops
        .iter()
        .filter(|o| o.name == "monitor" && o.enabled)
        .min_by_key(|o| o.interval_ms)
}

/// The operation's timeout: its own, else `op_defaults`, else 20 s.
pub fn timeout(cib: &Cib, p: &Primitive, task: &str, interval_ms: u64) -> Duration {
    op_config(p, task, interval_ms)
        .and_then(|o| o.attrs.get("timeout"))
        .or_else(|| cib.op_defaults.get("timeout"))
        .and_then(parse_interval_ms)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The configured on-fail of the operation (lower case), if any.
pub fn on_fail(p: &Primitive, task: &str, interval_ms: u64) -> Option<String> {
    let exact = p
        .ops
        .iter()
        .find(|o| o.name == task && o.interval_ms == interval_ms && o.enabled);
    exact
        .and_then(|o| o.on_fail.clone())
        .map(|v| v.to_ascii_lowercase())
}

/// Where the agent of an OCF resource lives: `OCF_ROOT/resource.d/PROVIDER/TYPE`.
pub fn agent_path(ocf_root: &Path, p: &Primitive) -> Result<PathBuf, String> {
    if p.class != "ocf" {
        return Err(format!(
            "{}: class {} is not supported by the local driver (only ocf)",
            p.id, p.class
        ));
    }
    let provider = p.provider.as_deref().unwrap_or("heartbeat");
    Ok(ocf_root.join("resource.d").join(provider).join(&p.agent))
}

/// What the driver needs to know to run one operation.
#[derive(Debug, Clone)]
pub struct OpRequest<'a> {
    pub p: &'a Primitive,
    pub task: &'a str,
    pub interval_ms: u64,
    pub timeout: Duration,
    pub target_rc: i32,
    pub call_id: i64,
    pub transition_key: String,
    pub node: &'a str,
    pub node_id: &'a str,
    pub queued: Instant,
    /// The value of [`super::inflight::MARK`] for this driver's agents.
    pub mark: &'a Path,
}

impl OpRequest<'_> {
    fn digest(&self) -> String {
        operation_digest(
            self.p,
            self.task,
            self.interval_ms,
            self.timeout.as_millis() as u64,
        )
    }

    fn result(
        &self,
        rc: i32,
        op_status: i32,
        exec_ms: u64,
        queue_ms: u64,
        reason: String,
    ) -> OpResult {
        OpResult {
            task: self.task.to_string(),
            interval_ms: self.interval_ms,
            call_id: self.call_id,
            rc,
            op_status,
            target_rc: self.target_rc,
            transition_key: self.transition_key.clone(),
            finished: unix_now(),
            exec_ms,
            queue_ms,
            digest: self.digest(),
            restart: None,
            exit_reason: reason,
        }
    }
}

/// The agent's `ocf-exit-reason:` line, if it printed one.
fn exit_reason(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.split_once("ocf-exit-reason:").map(|(_, r)| r.trim()))
        .unwrap_or("")
        .to_string()
}

/// Runs the operation and reports it as Pacemaker's executor would.
pub fn run(req: &OpRequest<'_>, ocf_root: &Path) -> OpResult {
    let queue_ms = req.queued.elapsed().as_millis() as u64;
    let agent = match agent_path(ocf_root, req.p) {
        Ok(a) => a,
        Err(reason) => return req.result(3, exec_status::NOT_SUPPORTED, 0, queue_ms, reason),
    };
    if !agent.exists() {
        let reason = format!("{}: agent {} is not installed", req.p.id, agent.display());
        return req.result(5, exec_status::NOT_INSTALLED, 0, queue_ms, reason);
    }
    let mut inv = Invocation::new(&agent, req.task).timeout(req.timeout);
    inv.instance = req.p.id.clone();
    for (name, value) in &req.p.params.0 {
        inv = inv.param(name, value);
    }
    inv = inv
        .param("CRM_meta_interval", &req.interval_ms.to_string())
        .param("CRM_meta_name", req.task)
        .param("CRM_meta_on_node", req.node)
        .param("CRM_meta_on_node_uuid", req.node_id)
        .env("OCF_ROOT", &ocf_root.to_string_lossy())
        .env(super::inflight::MARK, &req.mark.to_string_lossy());
    let started = Instant::now();
    match exec::run(&inv) {
        Ok(out) => {
            let exec_ms = out.duration.as_millis() as u64;
            let reason = exit_reason(&out.stderr);
            match out.termination {
                Termination::Exited(c) if (0..=9).contains(&c) || c == 190 || c == 191 => {
                    req.result(c, exec_status::DONE, exec_ms, queue_ms, reason)
                }
                Termination::Exited(c) => req.result(
                    1,
                    exec_status::ERROR,
                    exec_ms,
                    queue_ms,
                    format!("agent exited with status {c}, not an OCF code"),
                ),
                Termination::Signalled(s) => req.result(
                    1,
                    exec_status::ERROR,
                    exec_ms,
                    queue_ms,
                    format!("agent killed by signal {s}"),
                ),
                Termination::TimedOut => req.result(
                    1,
                    exec_status::TIMEOUT,
                    exec_ms,
                    queue_ms,
                    format!("{} timed out after {}ms", req.task, req.timeout.as_millis()),
                ),
            }
        }
        Err(e) => req.result(
            5,
            exec_status::NOT_INSTALLED,
            started.elapsed().as_millis() as u64,
            queue_ms,
            e.to_string(),
        ),
    }
}
