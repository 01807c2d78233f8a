//! The driver's loop: schedule, execute, record, watch.
//!
//! Each pass loads the CIB, unpacks it at the current time, schedules it with hapx-cib and
//! executes the transition graph one action at a time in graph order, an action starting only
//! when every action it is ordered after is done. Every result is recorded at once. As
//! Pacemaker's controller does, the transition is abandoned and the CIB rescheduled when a
//! result is not the expected one, and when the CIB changed underneath (an edit made while an
//! action ran is picked up right after that action).
//!
//! Between transitions the driver runs the recurring monitors when they are due, wakes up when
//! the CIB file changes, when a fail count's `failure-timeout` runs out, and at least every
//! recheck interval.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hapx_cib::digest::operation_params;
use hapx_cib::execute::graph;
use hapx_cib::model::{Cib, Primitive};
use hapx_cib::schedule::{Task, Transition, schedule};
use hapx_cib::status::unpack;
use hapx_cib::xml::Document;

use super::action::{self, OpRequest, unix_now};
use super::history::{self, OpResult};
use super::reload::{self, Support};
use super::store::{Bump, Stamp, Store, StoreError};

/// How the driver is set up.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The CIB file.
    pub cib: PathBuf,
    /// This node's name (`uname`).
    pub node: String,
    /// Where agents are found: `OCF_ROOT/resource.d/PROVIDER/TYPE`.
    pub ocf_root: PathBuf,
    /// How often the CIB file is checked for changes.
    pub poll: Duration,
    /// The longest the driver waits without rescheduling (Pacemaker's
    /// cluster-recheck-interval, shorter here since one node has nothing else to wait for).
    pub recheck: Duration,
}

impl DriverConfig {
    pub fn new(cib: impl Into<PathBuf>, node: impl Into<String>) -> DriverConfig {
        DriverConfig {
            cib: cib.into(),
            node: node.into(),
            ocf_root: std::env::var_os("OCF_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/usr/lib/ocf")),
            poll: Duration::from_millis(200),
            recheck: Duration::from_secs(60),
        }
    }
}

/// Why the driver stopped working.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A recurring monitor the driver runs between transitions.
#[derive(Debug, Clone)]
struct Recurring {
    due: Instant,
    call_id: i64,
    transition_key: String,
}

/// How executing a transition ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Every action ran; `acted` says whether there were any.
    Complete { acted: bool },
    /// An unexpected result or a changed CIB: schedule again now.
    Aborted,
}

/// The running driver.
#[derive(Debug)]
pub struct Driver {
    cfg: DriverConfig,
    store: Store,
    node_id: String,
    call_id: i64,
    uuid: String,
    transition: u64,
    recurring: BTreeMap<(String, u64), Recurring>,
    stop: Arc<AtomicBool>,
    stopping: bool,
    /// The file's stamp as of the CIB this driver last read or wrote.
    seen: Stamp,
    /// The last model error reported, so that a broken CIB is reported once.
    reported: Option<String>,
    /// The mark the driver's agents carry (see [`super::inflight`]).
    mark: PathBuf,
    /// Someone else changed the CIB since it was last read (found while updating it).
    dirty: bool,
    /// Each agent's reload support, read from its meta-data once (the controller's cache).
    reloads: HashMap<PathBuf, Option<Support>>,
}

/// Prints a line of the driver's log.
pub fn log(message: &str) {
    let secs = unix_now();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    println!("{h:02}:{m:02}:{s:02} hapx-driver: {message}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

fn transition_uuid() -> String {
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let hex = format!("{:08x}{:032x}", pid, nanos);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[28..40]
    )
}

impl Driver {
    /// Joins the CIB as its node: adds the node to the configuration when missing, marks it
    /// online and quorate, and forgets its old operation history so that every resource is
    /// probed first (a restarted driver adopts what runs instead of starting it again).
    pub fn join(cfg: DriverConfig, stop: Arc<AtomicBool>) -> Result<Driver, DriverError> {
        let store = Store::new(&cfg.cib);
        let node = cfg.node.clone();
        let longest = longest_timeout(&store.load()?);
        super::inflight::wait_for_leftovers(&cfg.cib, longest, log);
        let added = store.update(Bump::Config, |doc| {
            let (id, changed) = history::ensure_node(doc, &node);
            changed.then_some(id)
        })?;
        let node_id = match added {
            Some(id) => id,
            None => history::ensure_node(&mut store.load()?, &node).0,
        };
        let call_id = store
            .update(Bump::Status, |doc| {
                let last = history::max_call_id(doc, &node_id, &node);
                doc.root.set_attr("have-quorum", "1");
                doc.root.set_attr("dc-uuid", node_id.clone());
                history::erase_history(doc, &node_id, &node);
                history::mark_online(doc, &node_id, &node);
                Some(last)
            })?
            .unwrap_or(0);
        log(&format!(
            "node {node} (id {node_id}) joined {}; probing every resource",
            cfg.cib.display()
        ));
        Ok(Driver {
            seen: store.last_written(),
            store,
            node_id,
            call_id,
            uuid: transition_uuid(),
            transition: 0,
            recurring: BTreeMap::new(),
            stop,
            stopping: false,
            reported: None,
            mark: super::inflight::mark_value(&cfg.cib),
            dirty: false,
            reloads: HashMap::new(),
            cfg,
        })
    }

    /// Runs until asked to stop (the `stop` flag), then stops every resource in the reverse
    /// of their order and leaves the cluster.
    pub fn run(mut self) -> Result<(), DriverError> {
        loop {
            if self.stop.load(Ordering::SeqCst) && !self.stopping {
                self.begin_shutdown()?;
            }
            let stamp = self.store.stamp();
            let doc = self.store.load()?;
            self.seen = stamp;
            self.dirty = false;
            let cib = match Cib::from_document(doc) {
                Ok(cib) => cib,
                Err(e) => {
                    let message = e.to_string();
                    if self.reported.as_deref() != Some(message.as_str()) {
                        log(&format!(
                            "the CIB cannot be scheduled: {message}; waiting for a fix"
                        ));
                        self.reported = Some(message);
                    }
                    if self.stopping {
                        return self.leave();
                    }
                    self.wait_for_change();
                    continue;
                }
            };
            self.reported = None;
            let t = schedule(&cib, unpack(&cib, unix_now()));
            let Some(me) = t.status.nodes.iter().position(|n| n.uname == self.cfg.node) else {
                log("this node is missing from the CIB's configuration; joining again");
                let added = self.store.update(Bump::Config, |doc| {
                    let (_, changed) = history::ensure_node(doc, &self.cfg.node);
                    changed.then_some(())
                })?;
                if added.is_none() {
                    self.wait_for_change();
                }
                continue;
            };
            let active = t
                .status
                .resources
                .iter()
                .any(|r| r.running_on.contains(&me));
            if self.stopping && !active {
                return self.leave();
            }
            self.transition += 1;
            match self.execute(&cib, &t, me)? {
                Outcome::Aborted => {
                    // An unexpected result reschedules at once, but never in a busy loop.
                    std::thread::sleep(self.cfg.poll.min(Duration::from_millis(100)));
                    continue;
                }
                Outcome::Complete { acted } => {
                    if self.stopping {
                        if !acted {
                            let left: Vec<&str> = t
                                .status
                                .resources
                                .iter()
                                .filter(|r| r.running_on.contains(&me))
                                .map(|r| r.id.as_str())
                                .collect();
                            log(&format!(
                                "cannot stop {} (blocked or unmanaged); leaving them as they are",
                                left.join(", ")
                            ));
                            return self.leave();
                        }
                        continue;
                    }
                    if acted {
                        // The status moved on: the next schedule says what now runs (and,
                        // normally, that nothing more is needed).
                        continue;
                    }
                    self.adopt_recurring(&cib, &t, me);
                    let expiry = next_expiry(&t, me);
                    self.idle(&cib, expiry)?;
                }
            }
        }
    }

    fn begin_shutdown(&mut self) -> Result<(), DriverError> {
        self.stopping = true;
        log("stopping: every resource stops, in the reverse of their order");
        let (id, node) = (self.node_id.clone(), self.cfg.node.clone());
        self.write_status(|doc| {
            let now = unix_now().to_string();
            history::set_transient(doc, &id, &node, "shutdown", Some(&now));
            Some(())
        })?;
        Ok(())
    }

    fn leave(self) -> Result<(), DriverError> {
        let (id, node) = (self.node_id.clone(), self.cfg.node.clone());
        self.store.update(Bump::Status, |doc| {
            history::mark_offline(doc, &id, &node);
            Some(())
        })?;
        log(&format!("node {node} left the cluster"));
        Ok(())
    }

    fn next_call_id(&mut self) -> i64 {
        self.call_id += 1;
        self.call_id
    }

    fn cib_changed(&self) -> bool {
        self.dirty || self.store.stamp() != self.seen
    }

    /// Updates the status section, noting whether someone else wrote the CIB since it was
    /// read (the update would otherwise hide that change from [`Driver::cib_changed`]).
    fn write_status<R>(
        &mut self,
        change: impl FnOnce(&mut Document) -> Option<R>,
    ) -> Result<Option<R>, DriverError> {
        let result = self.store.update(Bump::Status, change)?;
        if self.store.found_by_last_update() != self.seen {
            self.dirty = true;
        }
        if result.is_some() {
            self.seen = self.store.last_written();
        }
        Ok(result)
    }

    /// Runs the transition graph in order.
    fn execute(&mut self, cib: &Cib, t: &Transition, me: usize) -> Result<Outcome, DriverError> {
        let synapses = graph(t);
        let mut done = vec![false; t.actions.len()];
        let mut fired = vec![false; synapses.len()];
        let mut acted = false;
        let queued = Instant::now();
        let ready = |i: usize, fired: &[bool], done: &[bool]| {
            !fired[i] && synapses[i].inputs.iter().all(|&x| done[x])
        };
        let is_probe = |i: usize| t.actions[synapses[i].action].task == Task::Monitor(0);
        // Probes first, as Pacemaker runs them all at once before anything they may order.
        while let Some(i) = (0..synapses.len())
            .find(|&i| is_probe(i) && ready(i, &fired, &done))
            .or_else(|| (0..synapses.len()).find(|&i| ready(i, &fired, &done)))
        {
            fired[i] = true;
            let a = &t.actions[synapses[i].action];
            acted |= !a.pseudo;
            let expected = match (&a.task, a.rsc) {
                _ if a.pseudo => true,
                (Task::LoadStopped | Task::Shutdown, _) => true,
                (Task::Fence(op), _) => {
                    log(&format!(
                        "fencing ({op}) is not available on the embedded cluster"
                    ));
                    true
                }
                (Task::ClearFailcount, Some(r)) => {
                    let rsc = t.status.resources[r].id.clone();
                    let (id, node) = (self.node_id.clone(), self.cfg.node.clone());
                    self.write_status(|doc| {
                        history::clear_failcounts(doc, &id, &node, &rsc).then_some(())
                    })?;
                    log(&format!(
                        "{rsc}: failure-timeout expired, fail count cleared"
                    ));
                    true
                }
                (Task::Start | Task::Stop | Task::Monitor(_) | Task::Reload, Some(r))
                    if a.node == Some(me) =>
                {
                    let p = &t.status.configs[r];
                    let key = format!("{}:{}:{}:{}", a.id, self.transition, a.target_rc, self.uuid);
                    self.run_operation(cib, p, &a.task, a.target_rc, key, queued)?
                }
                (task, rsc) => {
                    let what = rsc.map(|r| t.status.resources[r].id.as_str()).unwrap_or("");
                    log(&format!(
                        "{what} {}: not possible on a single-node cluster, skipped",
                        task.name()
                    ));
                    true
                }
            };
            done[synapses[i].action] = true;
            if !expected {
                return Ok(Outcome::Aborted);
            }
            if self.cib_changed() {
                log("the CIB changed while an action ran; rescheduling");
                return Ok(Outcome::Aborted);
            }
        }
        Ok(Outcome::Complete { acted })
    }

    /// Runs one operation of the transition on this node, records it and keeps the recurring
    /// monitors in step; returns whether its result was the expected one.
    fn run_operation(
        &mut self,
        cib: &Cib,
        p: &Primitive,
        task: &Task,
        target_rc: i32,
        key: String,
        queued: Instant,
    ) -> Result<bool, DriverError> {
        let interval = match task {
            Task::Monitor(i) => *i,
            _ => 0,
        };
        let support = self.reload_support(p);
        // The scheduler asks for `reload-agent`; the controller runs whatever reload the agent
        // has (`reload` for a pre-OCF-1.1 agent), defaulting to the OCF 1.1 name.
        let agent_action = match (task, &support) {
            (Task::Reload, Some(s)) => s.action(),
            _ => task.name(),
        };
        if *task == Task::Reload {
            log(&format!(
                "{}: only reloadable parameters changed; running {agent_action}",
                p.id
            ));
        }
        let call_id = self.next_call_id();
        let req = OpRequest {
            p,
            task: agent_action,
            interval_ms: interval,
            timeout: action::timeout(cib, p, task.name(), interval),
            target_rc,
            call_id,
            transition_key: key.clone(),
            node: &self.cfg.node,
            node_id: &self.node_id,
            queued,
            mark: &self.mark,
        };
        let mut result = action::run(&req, &self.cfg.ocf_root);
        if let Some(s) = support.filter(|_| reload::records_restart_digest(agent_action, interval))
        {
            result.restart = Some(s.restart_attrs(operation_params(p, task.name(), interval)));
        }
        if *task == Task::Reload {
            result.task = reload::recorded_task(result.op_status).to_string();
        }
        let expected = self.record(cib, p, &result)?;
        if interval > 0 && !result.failed() {
            let due = Instant::now() + Duration::from_millis(interval);
            self.recurring.insert(
                (p.id.clone(), interval),
                Recurring {
                    due,
                    call_id,
                    transition_key: key,
                },
            );
        }
        if *task == Task::Stop && !result.failed() {
            self.recurring.retain(|(rsc, _), _| rsc != &p.id);
        }
        Ok(expected)
    }

    /// The agent's reload support, from its meta-data (read once per agent).
    fn reload_support(&mut self, p: &Primitive) -> Option<Support> {
        let agent = action::agent_path(&self.cfg.ocf_root, p).ok()?;
        let ocf_root = &self.cfg.ocf_root;
        self.reloads
            .entry(agent)
            .or_insert_with_key(|agent| reload::probe_agent(agent, ocf_root, p))
            .clone()
    }

    /// Records a result (and a failure's fail count) and logs it; returns whether it was the
    /// expected result.
    fn record(&mut self, cib: &Cib, p: &Primitive, r: &OpResult) -> Result<bool, DriverError> {
        let failed = r.failed();
        let on_fail = action::on_fail(p, &r.task, r.interval_ms);
        let counts = failed && on_fail.as_deref() != Some("ignore");
        let fatal = match r.task.as_str() {
            "start" => cib.options.start_failure_is_fatal,
            "stop" => true,
            _ => false,
        };
        let (id, node) = (self.node_id.clone(), self.cfg.node.clone());
        let written = self.write_status(|doc: &mut Document| {
            // A failure counts once per change of result, as Pacemaker's executor reports a
            // recurring operation only when its result changes.
            let changed = history::record(doc, &id, &node, p, r);
            if counts && changed {
                history::count_failure(doc, &id, &node, &p.id, r, fatal);
            }
            changed.then_some(())
        })?;
        if written.is_some() {
            let interval = if r.interval_ms > 0 {
                format!(" (every {}ms)", r.interval_ms)
            } else {
                String::new()
            };
            let verdict = if failed { "FAILED" } else { "ok" };
            let reason = if r.exit_reason.is_empty() {
                String::new()
            } else {
                format!(": {}", r.exit_reason)
            };
            log(&format!(
                "{} {}{interval} on {node}: rc={} status={} {verdict} in {}ms{reason}",
                p.id, r.task, r.rc, r.op_status, r.exec_ms
            ));
        }
        Ok(r.op_status == history::exec_status::DONE && r.rc == r.target_rc)
    }

    /// Keeps the recurring monitors in line with the CIB: the ones its history shows active on
    /// this node for a resource active here, and no others (a cleanup or a stop removed them).
    fn adopt_recurring(&mut self, cib: &Cib, t: &Transition, me: usize) {
        let mut wanted: BTreeMap<(String, u64), (i64, String)> = BTreeMap::new();
        let lrm = cib
            .doc
            .root
            .child("status")
            .into_iter()
            .flat_map(|s| s.children_named("node_state"))
            .filter(|s| s.attr("uname") == Some(self.cfg.node.as_str()))
            .filter_map(|s| s.path(&["lrm", "lrm_resources"]));
        for list in lrm {
            for entry in list.children_named("lrm_resource") {
                let Some(rsc) = entry.id() else { continue };
                let active = t
                    .status
                    .resources
                    .iter()
                    .any(|r| r.id == rsc && r.running_on.contains(&me));
                let configured = cib.primitive(rsc);
                if !active || configured.is_none() {
                    continue;
                }
                for op in entry.children_named("lrm_rsc_op") {
                    let interval: u64 = op
                        .attr("interval")
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                    if interval == 0 || op.attr("operation") != Some("monitor") {
                        continue;
                    }
                    let still_configured = configured.is_some_and(|p| {
                        p.ops
                            .iter()
                            .any(|o| o.name == "monitor" && o.interval_ms == interval && o.enabled)
                    });
                    if !still_configured {
                        continue;
                    }
                    let call_id = op.attr("call-id").and_then(|c| c.parse().ok()).unwrap_or(0);
                    let key = op.attr("transition-key").unwrap_or("").to_string();
                    wanted.insert((rsc.to_string(), interval), (call_id, key));
                }
            }
        }
        self.recurring.retain(|k, _| wanted.contains_key(k));
        for (k, (call_id, key)) in wanted {
            let interval = Duration::from_millis(k.1);
            self.recurring.entry(k).or_insert_with(|| Recurring {
                due: Instant::now() + interval,
                call_id,
                transition_key: key,
            });
        }
    }

    /// Waits between transitions, running recurring monitors when due; returns when the CIB
    /// must be scheduled again.
    fn idle(&mut self, cib: &Cib, expiry: Option<i64>) -> Result<(), DriverError> {
        let deadline = Instant::now() + self.cfg.recheck;
        loop {
            if self.stop.load(Ordering::SeqCst) || self.cib_changed() || Instant::now() >= deadline
            {
                return Ok(());
            }
            if expiry.is_some_and(|e| unix_now() >= e) {
                return Ok(());
            }
            let due: Vec<(String, u64)> = self
                .recurring
                .iter()
                .filter(|(_, r)| r.due <= Instant::now())
                .map(|(k, _)| k.clone())
                .collect();
            for (rsc, interval) in due {
                if !self.run_recurring(cib, &rsc, interval)? {
                    return Ok(());
                }
            }
            std::thread::sleep(self.cfg.poll);
        }
    }

    /// Runs one recurring monitor; returns false when its result calls for rescheduling.
    fn run_recurring(&mut self, cib: &Cib, rsc: &str, interval: u64) -> Result<bool, DriverError> {
        let Some(rec) = self.recurring.get(&(rsc.to_string(), interval)).cloned() else {
            return Ok(true);
        };
        let Some(p) = cib.primitive(rsc) else {
            self.recurring.remove(&(rsc.to_string(), interval));
            return Ok(true);
        };
        let req = OpRequest {
            p,
            task: "monitor",
            interval_ms: interval,
            timeout: action::timeout(cib, p, "monitor", interval),
            target_rc: 0,
            call_id: rec.call_id,
            transition_key: rec.transition_key.clone(),
            node: &self.cfg.node,
            node_id: &self.node_id,
            queued: Instant::now(),
            mark: &self.mark,
        };
        let result = action::run(&req, &self.cfg.ocf_root);
        if let Some(r) = self.recurring.get_mut(&(rsc.to_string(), interval)) {
            r.due = Instant::now() + Duration::from_millis(interval);
        }
        let expected = self.record(cib, p, &result)?;
        Ok(expected)
    }

    fn wait_for_change(&self) {
        while !self.cib_changed() && !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(self.cfg.poll);
        }
    }
}

/// The longest operation timeout configured in the CIB (at least the default).
fn longest_timeout(doc: &Document) -> Duration {
    let Ok(cib) = Cib::from_document(doc.clone()) else {
        return action::DEFAULT_TIMEOUT;
    };
    let cib = &cib;
    cib.primitives
        .iter()
        .flat_map(|p| {
            p.ops
                .iter()
                .map(move |o| action::timeout(cib, p, &o.name, o.interval_ms))
        })
        .chain([action::DEFAULT_TIMEOUT])
        .max()
        .unwrap_or(action::DEFAULT_TIMEOUT)
}

/// When the next fail count of a resource on this node expires (failure-timeout), as seconds
/// since the epoch.
fn next_expiry(t: &Transition, me: usize) -> Option<i64> {
    let node = &t.status.nodes[me];
    let now = unix_now();
    let mut next: Option<i64> = None;
    for (r, rs) in t.status.resources.iter().enumerate() {
        let timeout = t.settings.get(r).map(|s| s.failure_timeout_s).unwrap_or(0);
        if timeout <= 0 {
            continue;
        }
        let prefix = format!("last-failure-{}", rs.id);
        for (name, value) in &node.attrs.0 {
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('#')) {
                continue;
            }
            let Ok(last) = value.trim().parse::<i64>() else {
                continue;
            };
            let at = last + timeout;
            if at > now {
                next = Some(next.map_or(at, |n: i64| n.min(at)));
            }
        }
    }
    next
}
