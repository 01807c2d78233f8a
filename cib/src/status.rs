//! Unpacking the status section: which nodes are up, clean, in standby; what runs where, in
//! which role; which operations failed and what that implies.
//!
//! This mirrors Pacemaker's `unpack.c`: each node's operation history is sorted by call id and
//! replayed; the last meaningful operation decides the resource's role on that node, failures
//! are handled by the operation's `on-fail` policy, and fail counts come from the node's
//! transient attributes (`fail-count-RSC#OP_INTERVAL`), expiring after `failure-timeout` against
//! the given "now". Side effects Pacemaker has while unpacking (a fencing request, a required
//! stop, an already-active recurring monitor) are recorded as [`EarlyAction`]s, in order, because
//! they come first in the transition's action numbering.
//!
//! After the histories, each operation since a resource's last start is checked against the
//! resource's definition now (`pcmk__handle_rsc_config_changes`, with [`crate::digest`]): a
//! changed start restarts the resource (or reloads it when the agent recorded a restart digest
//! and only reloadable parameters changed), a changed monitor runs again; these are
//! [`DefinitionChange`]s. Shutdown locks (`shutdown-lock`) keep a resource stopped by its node's
//! clean shutdown on that node until the lock expires.

use crate::digest::{self, DigestMatch};
use crate::model::{Attrs, Cib, NoQuorumPolicy, Primitive, is_true, parse_interval_ms};
use crate::score::{self, INFINITY};
use crate::xml::Element;

/// A resource role, ordered as Pacemaker orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Unknown,
    Stopped,
    Started,
    Unpromoted,
    Promoted,
}

impl Role {
    pub fn parse(text: &str) -> Role {
        match text.to_ascii_lowercase().as_str() {
            "stopped" => Role::Stopped,
            "started" => Role::Started,
            "slave" | "unpromoted" => Role::Unpromoted,
            "master" | "promoted" => Role::Promoted,
            _ => Role::Unknown,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Role::Unknown => "Unknown",
            Role::Stopped => "Stopped",
            Role::Started => "Started",
            Role::Unpromoted => "Unpromoted",
            Role::Promoted => "Promoted",
        }
    }
}

/// What to do when an operation fails (`on-fail`), ordered by severity as Pacemaker compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OnFail {
    Ignore,
    Demote,
    Recover,
    RestartContainer,
    Migrate,
    Block,
    Stop,
    Standby,
    Fence,
}

impl OnFail {
    fn parse(text: &str) -> Option<OnFail> {
        Some(match text.to_ascii_lowercase().as_str() {
            "ignore" => OnFail::Ignore,
            "demote" => OnFail::Demote,
            "restart" => OnFail::Recover,
            "block" => OnFail::Block,
            "stop" => OnFail::Stop,
            "standby" => OnFail::Standby,
            "fence" => OnFail::Fence,
            "migrate" => OnFail::Migrate,
            "restart-container" => OnFail::RestartContainer,
            _ => return None,
        })
    }
}

/// A node as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: String,
    pub uname: String,
    pub online: bool,
    pub unclean: bool,
    pub shutdown: bool,
    pub standby: bool,
    pub standby_onfail: bool,
    pub maintenance: bool,
    pub pending: bool,
    pub unseen: bool,
    pub expected_up: bool,
    pub is_dc: bool,
    /// Configured instance attributes overridden by transient attributes.
    pub attrs: Attrs,
    /// Resources active here (for "standby (with active resources)").
    pub running: Vec<usize>,
    /// Resources active here at unpack time (Pacemaker's initial `num_resources`).
    pub num_resources: usize,
}

impl NodeStatus {
    /// Whether the node can run resources at all (`pcmk__node_available` without scores).
    pub fn available(&self) -> bool {
        self.online
            && !self.shutdown
            && !self.unclean
            && !self.standby
            && !self.maintenance
            && !self.pending
    }
}

/// A resource as the status section shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RscStatus {
    pub id: String,
    pub running_on: Vec<usize>,
    pub role: Role,
    /// Next role forced while unpacking (on-fail=stop, target-role), if any.
    pub next_role: Role,
    pub failed: bool,
    /// The failure needs a stop (Pacemaker's `pe_rsc_stop`).
    pub stop_needed: bool,
    pub managed: bool,
    pub blocked: bool,
    pub maintenance: bool,
    pub failure_ignored: bool,
    pub orphan: bool,
    pub start_pending: bool,
    /// Nodes where the resource's state is known from history (no probe needed).
    pub known_on: Vec<bool>,
    /// Scores from unpacking (hard errors, masked probes, on-fail=migrate), by node.
    pub bans: Vec<(usize, i32)>,
    /// Failed probes that mean "stopped" (not installed ...): node and rc.
    pub failed_probes: Vec<(usize, i32)>,
    pub partial_migration_source: Option<usize>,
    pub partial_migration_target: Option<usize>,
    /// Effective fail count per node.
    pub fail_counts: Vec<i32>,
    /// The node this resource is locked to by `shutdown-lock` (it stays stopped until that
    /// node comes back or the lock expires).
    pub locked_to: Option<usize>,
}

/// An action Pacemaker creates while unpacking, before any scheduling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyAction {
    Fence {
        node: usize,
        reason: String,
    },
    Stop {
        rsc: usize,
        node: usize,
    },
    /// An active recurring operation (kept as an optional action).
    Recurring {
        rsc: usize,
        node: usize,
        task: String,
        interval_ms: u64,
    },
    ClearFailcount {
        rsc: usize,
        node: usize,
    },
    /// Forgetting a resource's history on a node (`lrm_delete`): an expired shutdown lock.
    ClearHistory {
        rsc: usize,
        node: usize,
    },
    /// Cancelling an active recurring operation that is no longer configured.
    Cancel {
        rsc: usize,
        node: usize,
        interval_ms: u64,
    },
}

/// The unpacked cluster.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    /// Nodes sorted the way Pacemaker sorts them (by name, numbers numerically).
    pub nodes: Vec<NodeStatus>,
    /// Primitives in processing order (priority, then configuration order), orphans last.
    pub resources: Vec<RscStatus>,
    /// The configuration of each resource (orphans get a synthesized one).
    pub configs: Vec<Primitive>,
    pub have_quorum: bool,
    pub have_stonith_resource: bool,
    pub early: Vec<EarlyAction>,
    /// Recurring monitors to schedule again (their failure expired, or their parameters
    /// changed): resource, node, interval.
    pub reschedule: Vec<(usize, usize, u64)>,
    /// Resources whose definition changed since they started (operation digests), by the
    /// node where they run: each is restarted or reloaded there.
    pub definition_changes: Vec<DefinitionChange>,
    /// The timeout of an operation that configures none (`op_defaults`, else 20s), in ms.
    pub default_timeout_ms: u64,
    pub now: i64,
}

/// An operation whose definition changed since it ran (`pcmk__check_action_config`), in the
/// order Pacemaker finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefinitionChange {
    pub rsc: usize,
    pub node: usize,
    pub response: ChangeResponse,
    /// The resource has a fail count there, which the change clears.
    pub clear_failcount: bool,
}

/// What a definition change needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeResponse {
    /// Stop and start the resource (`force_restart`).
    Restart,
    /// Reload its parameters (the agent recorded a restart digest, so it can reload, and only
    /// reloadable parameters changed).
    Reload,
    /// Run the recurring monitor with this interval again with the new definition.
    Reschedule(u64),
    /// Nothing visible (a one-time operation other than a start or probe).
    None,
}

/// Compares node names the way Pacemaker sorts node lists (`sort_node_uname`).
pub fn cmp_node_names(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na: u128 = std::str::from_utf8(&a[si..i])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let nb: u128 = std::str::from_utf8(&b[sj..j])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let ord = na.cmp(&nb).then((i - si).cmp(&(j - sj)));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            let ord = a[i].to_ascii_lowercase().cmp(&b[j].to_ascii_lowercase());
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// `sort_op_by_callid`: by call id; a pending operation (call id -1) by its transition number.
fn cmp_ops(a: &OpRecord<'_>, b: &OpRecord<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.call_id >= 0 && b.call_id >= 0 {
        return a.call_id.cmp(&b.call_id).then(
            a.last_change
                .unwrap_or(-1)
                .cmp(&b.last_change.unwrap_or(-1)),
        );
    }
    if a.call_id < 0 && b.call_id < 0 {
        return Ordering::Equal;
    }
    match a.transition.cmp(&b.transition) {
        Ordering::Equal if a.call_id < 0 => Ordering::Greater,
        Ordering::Equal => Ordering::Less,
        other => other,
    }
}

/// One `lrm_rsc_op`, parsed.
#[derive(Debug, Clone)]
struct OpRecord<'a> {
    xml: &'a Element,
    task: String,
    interval_ms: u64,
    rc: i32,
    status: i32,
    call_id: i64,
    target_rc: i32,
    /// The transition number from the transition key.
    transition: i64,
    last_change: Option<i64>,
}

impl<'a> OpRecord<'a> {
    fn read(xml: &'a Element) -> Option<OpRecord<'a>> {
        let task = xml.attr("operation")?.to_string();
        let int = |name: &str, default: i64| {
            xml.attr(name)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        let target_rc = xml
            .attr("transition-key")
            .and_then(|k| k.split(':').nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        let transition = xml
            .attr("transition-key")
            .and_then(|k| k.split(':').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        Some(OpRecord {
            transition,
            interval_ms: xml
                .attr("interval")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            rc: int("rc-code", 0) as i32,
            status: int("op-status", 0) as i32,
            call_id: int("call-id", -1),
            last_change: xml
                .attr("last-rc-change")
                .and_then(|v| v.parse().ok())
                .or_else(|| xml.attr("last-run").and_then(|v| v.parse().ok())),
            target_rc,
            task,
            xml,
        })
    }

    fn is_probe(&self) -> bool {
        self.task == "monitor" && self.interval_ms == 0
    }
}

// Executor statuses (PCMK_EXEC_*).
const EXEC_PENDING: i32 = -1;
const EXEC_DONE: i32 = 0;
const EXEC_CANCELLED: i32 = 1;
const EXEC_ERROR: i32 = 4;
const EXEC_ERROR_HARD: i32 = 5;
const EXEC_ERROR_FATAL: i32 = 6;
const EXEC_NOT_INSTALLED: i32 = 7;

/// The per-resource settings the unpacker needs, from meta attributes.
#[derive(Debug, Clone)]
pub struct RscSettings {
    pub priority: i32,
    pub stickiness: i32,
    pub migration_threshold: i32,
    pub failure_timeout_s: i64,
    pub managed: bool,
    pub maintenance: bool,
    pub allow_migrate: bool,
    pub target_role: Option<Role>,
    pub multiple_active: String,
    /// `requires`: "nothing", "quorum", "fencing", "unfencing".
    pub requires: String,
}

impl RscSettings {
    pub fn of(p: &Primitive, cib: &Cib) -> RscSettings {
        let meta = &p.meta;
        let int =
            |name: &str, default: i32| meta.get(name).map(score::parse_plain).unwrap_or(default);
        let requires = meta.get("requires").map(str::to_string).unwrap_or_else(|| {
            if p.is_stonith() || !cib.options.stonith_enabled {
                "quorum".to_string()
            } else if unfencing_enabled(cib) {
                "unfencing".to_string()
            } else {
                "fencing".to_string()
            }
        });
        let requires = if (p.is_stonith() && requires != "nothing")
            || (requires == "fencing" && !cib.options.stonith_enabled)
        {
            "quorum".to_string()
        } else {
            requires
        };
        RscSettings {
            priority: int("priority", 0),
            stickiness: int(
                "resource-stickiness",
                cib.options.default_stickiness.unwrap_or(0),
            ),
            migration_threshold: int("migration-threshold", INFINITY),
            failure_timeout_s: meta
                .get("failure-timeout")
                .and_then(parse_interval_ms)
                .map(|ms| (ms / 1000) as i64)
                .unwrap_or(0),
            managed: meta
                .get("is-managed")
                .map(is_true)
                .unwrap_or(cib.options.is_managed_default)
                && !cib.options.maintenance_mode
                && !meta.get("maintenance").map(is_true).unwrap_or(false),
            maintenance: meta.get("maintenance").map(is_true).unwrap_or(false)
                || cib.options.maintenance_mode,
            allow_migrate: meta.get("allow-migrate").map(is_true).unwrap_or(false),
            target_role: meta
                .get("target-role")
                .map(Role::parse)
                .and_then(|r| if r == Role::Unknown { None } else { Some(r) }),
            multiple_active: meta
                .get("multiple-active")
                .unwrap_or("stop_start")
                .to_string(),
            requires,
        }
    }
}

/// Unpacks the status section of `cib` with `now` (seconds since the epoch) as the time.
pub fn unpack(cib: &Cib, now: i64) -> ClusterStatus {
    let mut u = Unpacker::new(cib, now);
    u.unpack_node_states();
    u.unpack_histories();
    u.check_definitions();
    u.apply_shutdown_locks();
    u.finish()
}

struct Unpacker<'a> {
    cib: &'a Cib,
    nodes: Vec<NodeStatus>,
    resources: Vec<RscStatus>,
    configs: Vec<Primitive>,
    settings: Vec<RscSettings>,
    /// Resource index by id.
    ids: std::collections::HashMap<String, usize>,
    early: Vec<EarlyAction>,
    reschedule: Vec<(usize, usize, u64)>,
    definition_changes: Vec<DefinitionChange>,
    /// Per configured resource: all its parameters are known (see `params_comparable_all`).
    comparable: Vec<bool>,
    now: i64,
    have_stonith_resource: bool,
    fence_seen: Vec<bool>,
}

impl<'a> Unpacker<'a> {
    fn new(cib: &'a Cib, now: i64) -> Self {
        let mut nodes: Vec<NodeStatus> = cib
            .nodes
            .iter()
            .filter(|n| n.kind != "ping" && n.kind != "remote")
            .map(|n| NodeStatus {
                id: n.id.clone(),
                uname: n.uname.clone(),
                online: false,
                // Until its status entry is seen, a node is unclean if startup-fencing is on.
                unclean: cib.options.startup_fencing && cib.options.stonith_enabled,
                shutdown: false,
                standby: false,
                standby_onfail: false,
                maintenance: false,
                pending: false,
                unseen: true,
                expected_up: false,
                is_dc: cib.dc_uuid.as_deref() == Some(n.id.as_str()),
                attrs: n.attrs.clone(),
                running: Vec::new(),
                num_resources: 0,
            })
            .collect();
        nodes.sort_by(|a, b| cmp_node_names(&a.uname, &b.uname));
        // Processing order: priority (highest first), stable over configuration order.
        let mut configs: Vec<Primitive> = cib.primitives.clone();
        let prio = |p: &Primitive| RscSettings::of(p, cib).priority;
        configs.sort_by_key(|p| std::cmp::Reverse(prio(p)));
        let settings: Vec<RscSettings> = configs.iter().map(|p| RscSettings::of(p, cib)).collect();
        let n = nodes.len();
        let resources = configs
            .iter()
            .zip(&settings)
            .map(|(p, s)| new_rsc(&p.id, s, n))
            .collect();
        let fence_seen = vec![false; n];
        let ids = configs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let mut u = Unpacker {
            // Watchdog self-fencing (SBD) counts as a fencing device (`have-watchdog`).
            have_stonith_resource: cib.primitives.iter().any(Primitive::is_stonith)
                || cib.options.attrs.get("have-watchdog").is_some_and(is_true),
            cib,
            nodes,
            resources,
            configs,
            settings,
            ids,
            early: Vec::new(),
            reschedule: Vec::new(),
            definition_changes: Vec::new(),
            comparable: Vec::new(),
            now,
            fence_seen,
        };
        u.comparable = u.params_comparable_all();
        u
    }

    fn node_index(&self, id: Option<&str>, uname: Option<&str>) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| Some(n.id.as_str()) == id)
            .or_else(|| {
                self.nodes
                    .iter()
                    .position(|n| Some(n.uname.as_str()) == uname)
            })
    }

    fn can_fence(&self, node: usize) -> bool {
        let o = &self.cib.options;
        if !o.stonith_enabled || !self.have_stonith_resource {
            return false;
        }
        self.cib.have_quorum
            || o.no_quorum_policy == NoQuorumPolicy::Ignore
            || self.nodes[node].online
    }

    /// `pe_fence_node`: marks the node unclean and records the first reason.
    fn fence_node(&mut self, node: usize, reason: String) {
        if self.nodes[node].unclean && self.fence_seen[node] {
            return;
        }
        if self.nodes[node].unclean && !self.nodes[node].unseen {
            // Already unclean (e.g. from an earlier check) with a fence op recorded.
            if self.fence_seen[node] {
                return;
            }
        }
        self.nodes[node].unclean = true;
        self.fence_seen[node] = true;
        self.early.push(EarlyAction::Fence { node, reason });
    }

    fn status_root(&self) -> Option<&'a Element> {
        self.cib.doc.root.child("status")
    }

    fn unpack_node_states(&mut self) {
        let Some(status) = self.status_root() else {
            return;
        };
        for state in status.children_named("node_state") {
            let Some(ix) = self.node_index(state.id(), state.attr("uname")) else {
                continue;
            };
            // Transient attributes override configured ones.
            if let Some(t) = state.child("transient_attributes") {
                let mut sink = Vec::new();
                if let Ok(attrs) =
                    crate::model::nvsets(&self.cib.doc.root, t, "instance_attributes", &mut sink)
                {
                    let node = &mut self.nodes[ix];
                    let mut merged = attrs;
                    for (k, v) in &node.attrs.0 {
                        merged.add_default(k, v);
                    }
                    node.attrs = merged;
                }
            }
            self.nodes[ix].unclean = false;
            self.nodes[ix].unseen = false;
            self.determine_online(ix, state);
            if self.nodes[ix].online
                && !self.cib.have_quorum
                && self.cib.options.no_quorum_policy == NoQuorumPolicy::Suicide
            {
                self.fence_node(ix, "cluster does not have quorum".to_string());
            }
        }
    }

    fn determine_online(&mut self, ix: usize, state: &Element) {
        let attr = |n: &str| state.attr(n);
        let node_attr = |u: &Self, n: &str| u.nodes[ix].attrs.get(n).map(str::to_string);
        let shutdown = node_attr(self, "shutdown")
            .map(|v| v != "0" && !v.is_empty())
            .unwrap_or(false);
        self.nodes[ix].shutdown = shutdown;
        let expected = attr("expected");
        self.nodes[ix].expected_up = expected == Some("member");
        let in_cluster = attr("in_ccm");
        let crmd_online = attr("crmd")
            .map(|c| c.eq_ignore_ascii_case("online"))
            .unwrap_or(false);
        let join = attr("join");
        let in_cluster_true = in_cluster.map(is_true).unwrap_or(false);
        let online = if self.cib.options.stonith_enabled {
            self.online_with_fencing(ix, in_cluster, in_cluster_true, crmd_online, join, expected)
        } else {
            self.online_without_fencing(ix, in_cluster_true, crmd_online, join)
        };
        let node = &mut self.nodes[ix];
        node.online = online;
        if online {
            if node.attrs.get("standby").map(is_true).unwrap_or(false) {
                node.standby = true;
            }
            if node.attrs.get("maintenance").map(is_true).unwrap_or(false) {
                node.maintenance = true;
            }
        } else {
            // An offline node's standby/maintenance still shows in its mode.
            if node.attrs.get("standby").map(is_true).unwrap_or(false) {
                node.standby = true;
            }
            if node.attrs.get("maintenance").map(is_true).unwrap_or(false) {
                node.maintenance = true;
            }
        }
    }

    fn online_without_fencing(
        &mut self,
        ix: usize,
        in_cluster: bool,
        crmd_online: bool,
        join: Option<&str>,
    ) -> bool {
        if !in_cluster {
            false
        } else if crmd_online {
            join == Some("member")
        } else if !self.nodes[ix].expected_up {
            false
        } else {
            self.fence_node(ix, "peer is unexpectedly down".to_string());
            false
        }
    }

    fn online_with_fencing(
        &mut self,
        ix: usize,
        in_cluster: Option<&str>,
        in_cluster_true: bool,
        crmd_online: bool,
        join: Option<&str>,
        expected: Option<&str>,
    ) -> bool {
        let terminate = self.nodes[ix].attrs.get("terminate").map(str::to_string);
        let do_terminate = match terminate.as_deref() {
            Some(t) if is_true(t) => true,
            Some(t) => t
                .chars()
                .next()
                .is_some_and(|c| c != '0' && c.is_ascii_digit()),
            None => false,
        };
        let exp_down = expected.unwrap_or("down") == "down";
        let mut online = in_cluster_true;
        if self.nodes[ix].shutdown {
            online = crmd_online;
        } else if in_cluster.is_none() {
            self.fence_node(ix, "peer has not been seen by the cluster".to_string());
        } else if join == Some("nack") {
            self.fence_node(ix, "peer failed Pacemaker membership criteria".to_string());
        } else if !do_terminate && exp_down {
            if in_cluster_true || crmd_online {
                self.nodes[ix].standby = true;
                self.nodes[ix].pending = true;
            }
        } else if do_terminate && join == Some("down") && !in_cluster_true && !crmd_online {
            online = false;
        } else if !in_cluster_true {
            self.fence_node(ix, "peer is no longer part of the cluster".to_string());
        } else if !crmd_online {
            self.fence_node(ix, "peer process is no longer available".to_string());
        } else if do_terminate {
            self.fence_node(ix, "termination was requested".to_string());
        } else if join == Some("member") {
            // active
        } else if matches!(join, Some("pending") | Some("down")) {
            self.nodes[ix].standby = true;
            self.nodes[ix].pending = true;
        } else {
            self.fence_node(ix, "peer was in an unknown state".to_string());
        }
        online
    }

    fn unpack_histories(&mut self) {
        let Some(status) = self.status_root() else {
            return;
        };
        let fencing = self.cib.options.stonith_enabled || self.cib.options.shutdown_lock;
        for state in status.children_named("node_state") {
            let Some(ix) = self.node_index(state.id(), state.attr("uname")) else {
                continue;
            };
            if !fencing && !self.nodes[ix].online {
                continue;
            }
            let Some(list) = state.path(&["lrm", "lrm_resources"]) else {
                continue;
            };
            for entry in list.children_named("lrm_resource") {
                self.unpack_lrm_resource(ix, entry);
            }
        }
    }

    fn rsc_index(&mut self, entry: &Element) -> Option<usize> {
        let id = entry.id()?;
        if let Some(&i) = self.ids.get(id) {
            return Some(i);
        }
        // An orphan: history for a resource no longer configured.
        entry.elements().next()?;
        let p = Primitive {
            id: id.to_string(),
            class: entry.attr("class").unwrap_or("ocf").to_string(),
            provider: entry.attr("provider").map(str::to_string),
            agent: entry.attr("type").unwrap_or("").to_string(),
            description: None,
            meta: Attrs::default(),
            params: Attrs::default(),
            utilization: Attrs::default(),
            ops: Vec::new(),
            line: entry.line,
            group: None,
        };
        let mut s = RscSettings::of(&p, self.cib);
        s.managed = self.cib.options.stop_orphan_resources && s.managed;
        let mut r = new_rsc(id, &s, self.nodes.len());
        r.orphan = true;
        r.managed = s.managed;
        self.resources.push(r);
        self.configs.push(p);
        self.settings.push(s);
        self.ids.insert(id.to_string(), self.resources.len() - 1);
        Some(self.resources.len() - 1)
    }

    fn unpack_lrm_resource(&mut self, node: usize, entry: &Element) {
        let mut ops: Vec<OpRecord<'_>> = entry
            .children_named("lrm_rsc_op")
            .filter_map(OpRecord::read)
            .collect();
        if ops.is_empty() {
            return;
        }
        let Some(r) = self.rsc_index(entry) else {
            return;
        };
        self.unpack_shutdown_lock(r, node, entry);
        ops.sort_by(cmp_ops);
        let saved_role = self.resources[r].role;
        self.resources[r].role = Role::Unknown;
        let mut on_fail = OnFail::Ignore;
        let mut last_failure = false;
        for op in &ops {
            self.unpack_op(r, node, op, &mut on_fail, &mut last_failure);
        }
        self.record_active_recurring(r, node, &ops);
        self.process_rsc_state(r, node, on_fail);
        if let Some(req) = self.settings[r].target_role {
            let rs = &mut self.resources[r];
            if rs.next_role == Role::Unknown || req < rs.next_role {
                rs.next_role = req;
            }
        }
        if saved_role > self.resources[r].role {
            self.resources[r].role = saved_role;
        }
    }

    /// `unpack_shutdown_lock`: a resource stopped by its node's clean shutdown stays locked to
    /// that node (`shutdown-lock`) until the lock expires (`shutdown-lock-limit`), when its
    /// history there is forgotten.
    fn unpack_shutdown_lock(&mut self, r: usize, node: usize, entry: &Element) {
        if !self.cib.options.shutdown_lock {
            return;
        }
        let Some(lock_time) = entry
            .attr("shutdown-lock")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|&t| t != 0)
        else {
            return;
        };
        let limit_s = shutdown_lock_limit_s(self.cib);
        if limit_s > 0 && self.now > lock_time + limit_s {
            self.early.push(EarlyAction::ClearHistory { rsc: r, node });
        } else {
            self.resources[r].locked_to = Some(node);
        }
    }

    /// `apply_shutdown_lock`: a resource active only on a node shutting down cleanly is locked
    /// there; a locked resource that is active elsewhere loses its lock (and its history on
    /// the lock node). A locked resource may run on no other node.
    fn apply_shutdown_locks(&mut self) {
        if !self.cib.options.shutdown_lock {
            return;
        }
        for r in 0..self.resources.len() {
            if self.configs[r].is_stonith() {
                self.resources[r].locked_to = None;
                continue;
            }
            let running = self.resources[r].running_on.clone();
            if let Some(lock) = self.resources[r].locked_to {
                if !running.is_empty() {
                    self.early
                        .push(EarlyAction::ClearHistory { rsc: r, node: lock });
                    self.resources[r].locked_to = None;
                }
            } else if let [n] = running[..] {
                let node = &self.nodes[n];
                if node.shutdown && !node.unclean {
                    self.resources[r].locked_to = Some(n);
                }
            }
            let Some(lock) = self.resources[r].locked_to else {
                continue;
            };
            for n in 0..self.nodes.len() {
                if n != lock {
                    self.resources[r].bans.push((n, -INFINITY));
                }
            }
        }
    }

    /// `block_failure`: a failure of an operation configured with on-fail="block" never expires,
    /// so such a resource loses its failure-timeout (as Pacemaker warns and does).
    fn check_block_failure(&mut self, r: usize, node: usize) {
        if self.settings[r].failure_timeout_s == 0 {
            return;
        }
        let blocking: Vec<(String, u64)> = self.configs[r]
            .ops
            .iter()
            .filter(|o| o.attrs.get("on-fail") == Some("block"))
            .map(|o| (o.name.clone(), o.interval_ms))
            .collect();
        if blocking.is_empty() {
            return;
        }
        let Some(status) = self.status_root() else {
            return;
        };
        let id = self.resources[r].id.clone();
        let n = &self.nodes[node];
        let failed = status
            .children_named("node_state")
            .filter(|s| s.attr("uname") == Some(n.uname.as_str()))
            .filter_map(|s| s.path(&["lrm", "lrm_resources"]))
            .flat_map(|l| l.children_named("lrm_resource"))
            .filter(|e| e.id() == Some(id.as_str()))
            .flat_map(|e| e.children_named("lrm_rsc_op"))
            .filter_map(OpRecord::read)
            .any(|op| {
                op.rc != op.target_rc
                    && blocking
                        .iter()
                        .any(|(name, interval)| *name == op.task && *interval == op.interval_ms)
            });
        if failed {
            self.settings[r].failure_timeout_s = 0;
        }
    }

    /// `pe_get_failcount`: the summed fail count of `rsc` on `node` (optionally of one
    /// operation), and the latest failure time; `effective` applies failure-timeout.
    fn failcount(
        &self,
        r: usize,
        node: usize,
        op: Option<(&str, u64)>,
        effective: bool,
    ) -> (i32, i64) {
        let id = &self.resources[r].id;
        let attrs = &self.nodes[node].attrs;
        let matches = |name: &str, prefix: &str| -> bool {
            let Some(rest) = name.strip_prefix(prefix) else {
                return false;
            };
            let Some(rest) = rest.strip_prefix(id.as_str()) else {
                return false;
            };
            match op {
                Some((task, interval)) => rest.is_empty() || rest == format!("#{task}_{interval}"),
                None => rest.is_empty() || rest.starts_with('#'),
            }
        };
        let mut count = 0;
        let mut last = 0i64;
        for (name, value) in &attrs.0 {
            if matches(name, "fail-count-") {
                count = score::add(count, score::parse_plain(value));
            } else if matches(name, "last-failure-") {
                last = last.max(value.trim().parse().unwrap_or(0));
            }
        }
        let timeout = self.settings[r].failure_timeout_s;
        if effective && count > 0 && last > 0 && timeout > 0 && self.now >= last + timeout {
            count = 0;
        }
        (count, last)
    }

    fn op_expired(&mut self, r: usize, node: usize, op: &OpRecord<'_>) -> bool {
        self.check_block_failure(r, node);
        let timeout = self.settings[r].failure_timeout_s;
        let mut expired = false;
        let mut unexpired = 0;
        if timeout > 0 {
            if let Some(last_run) = op.last_change {
                if self.now >= last_run + timeout {
                    expired = true;
                }
                unexpired = self
                    .failcount(r, node, Some((&op.task, op.interval_ms)), true)
                    .0;
            }
        }
        let mut clear = false;
        if expired
            && self
                .failcount(r, node, Some((&op.task, op.interval_ms)), false)
                .0
                != 0
        {
            if unexpired == 0 {
                clear = true;
            } else {
                expired = false;
            }
        }
        // A failure recorded under parameters that have changed since no longer counts (its
        // fail count is cleared with the other definition changes, after the cancellations).
        let last_failure = op.xml.id().is_some_and(|id| id.contains("last_failure"));
        if !expired
            && last_failure
            && matches!(op.task.as_str(), "start" | "monitor")
            && self.comparable.get(r).copied().unwrap_or(false)
            && !matches!(
                self.digest_change(r, op),
                DigestMatch::Match | DigestMatch::Unknown
            )
        {
            let change = DefinitionChange {
                rsc: r,
                node,
                response: ChangeResponse::None,
                clear_failcount: true,
            };
            if !self.definition_changes.contains(&change) {
                self.definition_changes.push(change);
            }
        }
        if clear {
            let action = EarlyAction::ClearFailcount { rsc: r, node };
            if !self.early.contains(&action) {
                self.early.push(action);
            }
        }
        if expired && op.is_probe() && matches!(op.rc, 0 | 7 | 8 | 190 | 191) {
            expired = false;
        }
        expired
    }

    fn configured_on_fail(&self, r: usize, task: &str, interval_ms: u64) -> OnFail {
        let p = &self.configs[r];
        // custom_action finds the operation's configuration disabled or not, so a disabled
        // monitor's on-fail still applies to its past failures.
        let configured = p
            .ops
            .iter()
            .find(|o| o.name == task && o.interval_ms == interval_ms)
            .and_then(|o| o.on_fail.as_deref())
            .or_else(|| self.cib.op_defaults.get("on-fail"))
            .and_then(OnFail::parse);
        if let Some(f) = configured {
            if f == OnFail::Fence && !self.cib.options.stonith_enabled {
                return OnFail::Stop;
            }
            return f;
        }
        if p.meta.get("container").is_some() {
            OnFail::RestartContainer
        } else if task == "stop" {
            if self.cib.options.stonith_enabled {
                OnFail::Fence
            } else {
                OnFail::Block
            }
        } else {
            OnFail::Recover
        }
    }

    fn unpack_op(
        &mut self,
        r: usize,
        node: usize,
        op: &OpRecord<'_>,
        on_fail: &mut OnFail,
        last_failure: &mut bool,
    ) {
        if op.task == "notify" || op.task == "meta-data" {
            return;
        }
        let expired = op.status != EXEC_NOT_INSTALLED && self.op_expired(r, node, op);
        let (rc, status) = self.remap(r, node, op, on_fail);
        let maskable =
            op.is_probe() && (op.rc == 5 || op.rc == 2 || op.status == EXEC_NOT_INSTALLED);
        if expired && maskable && op.rc != op.target_rc {
            if self.resources[r].role <= Role::Stopped {
                self.resources[r].role = Role::Unknown;
            }
            return;
        }
        if expired && rc != op.target_rc {
            if op.interval_ms == 0 {
                return;
            }
            if self.nodes[node].online && !self.nodes[node].unclean {
                // The monitor is rescheduled once its failure has expired (unless the failure
                // is only the "last failure" record beside the active monitor's own entry).
                if !op
                    .xml
                    .id()
                    .is_some_and(|id| id.ends_with("_last_failure_0"))
                {
                    self.reschedule.push((r, node, op.interval_ms));
                }
                return;
            }
        }
        if maskable {
            self.update_state(r, node, op, 7, on_fail);
            self.resources[r].role = Role::Stopped;
            self.resources[r].failed_probes.push((node, op.rc));
            self.resources[r].bans.push((node, -INFINITY));
            return;
        }
        match status {
            EXEC_PENDING => {
                if op.task == "start" {
                    self.resources[r].start_pending = true;
                    self.set_active(r);
                } else if op.task == "promote" {
                    self.resources[r].role = Role::Promoted;
                }
            }
            EXEC_DONE => self.update_state(r, node, op, rc, on_fail),
            EXEC_CANCELLED => {}
            EXEC_NOT_INSTALLED => {
                let strategy = self.configured_on_fail(r, &op.task, op.interval_ms);
                if strategy == OnFail::Ignore {
                    *on_fail = OnFail::Migrate;
                }
                self.resources[r].bans.push((node, -INFINITY));
                self.op_failure(r, node, op, on_fail, last_failure);
            }
            _ => {
                let strategy = self.configured_on_fail(r, &op.task, op.interval_ms);
                if strategy == OnFail::Ignore
                    || (strategy == OnFail::RestartContainer && op.task == "stop")
                {
                    let target = op.target_rc;
                    self.update_state(r, node, op, target, on_fail);
                    self.resources[r].failure_ignored = true;
                    if strategy == OnFail::RestartContainer && *on_fail <= OnFail::Recover {
                        *on_fail = strategy;
                    }
                } else {
                    self.op_failure(r, node, op, on_fail, last_failure);
                    if status == EXEC_ERROR_HARD {
                        self.resources[r].bans.push((node, -INFINITY));
                    } else if status == EXEC_ERROR_FATAL {
                        for n in 0..self.nodes.len() {
                            self.resources[r].bans.push((n, -INFINITY));
                        }
                    }
                }
            }
        }
    }

    /// `remap_operation`: the effective rc and executor status.
    fn remap(
        &mut self,
        r: usize,
        node: usize,
        op: &OpRecord<'_>,
        on_fail: &mut OnFail,
    ) -> (i32, i32) {
        let rc = op.rc;
        let mut status = op.status;
        if status != EXEC_DONE && status != EXEC_ERROR {
            return (rc, status);
        }
        status = EXEC_DONE;
        let target = op.target_rc;
        if target < 0 || target != rc {
            status = EXEC_ERROR;
        }
        match rc {
            0 => {
                if op.is_probe() && target == 7 {
                    status = EXEC_DONE;
                }
            }
            7 => {
                if op.is_probe() || target == rc || !self.resources[r].managed {
                    status = EXEC_DONE;
                    self.resources[r].role = Role::Stopped;
                    *on_fail = OnFail::Ignore;
                    self.resources[r].next_role = Role::Unknown;
                }
            }
            8 => {
                if op.is_probe() {
                    status = EXEC_DONE;
                }
                if status != EXEC_DONE {
                    status = EXEC_ERROR;
                }
                self.resources[r].role = Role::Promoted;
            }
            9 | 191 => {
                self.resources[r].role = Role::Promoted;
                status = EXEC_ERROR;
            }
            190 => {
                if status == EXEC_ERROR && target == 0 {
                    status = EXEC_DONE;
                }
            }
            6 => status = EXEC_ERROR_FATAL,
            3 if op.interval_ms > 0 => status = 3,
            2..=5 => {
                if !self.can_fence(node) && op.task == "stop" {
                    status = EXEC_ERROR;
                } else {
                    status = EXEC_ERROR_HARD;
                }
            }
            _ => {
                if status == EXEC_DONE && rc != target {
                    status = EXEC_ERROR;
                }
            }
        }
        (rc, status)
    }

    fn set_active(&mut self, r: usize) {
        let rs = &mut self.resources[r];
        if rs.role < Role::Started {
            rs.role = Role::Started;
        }
    }

    fn update_state(
        &mut self,
        r: usize,
        node: usize,
        op: &OpRecord<'_>,
        rc: i32,
        on_fail: &mut OnFail,
    ) {
        let mut clear = false;
        let task = op.task.as_str();
        if rc == 7 {
            clear = true;
        } else if task == "monitor" {
            self.set_active(r);
            if rc == 8 {
                self.resources[r].role = Role::Promoted;
            }
        } else if task == "start" {
            self.resources[r].role = Role::Started;
            clear = true;
        } else if task == "stop" {
            self.resources[r].role = Role::Stopped;
            clear = true;
        } else if task == "promote" {
            self.resources[r].role = Role::Promoted;
            clear = true;
        } else if task == "demote" {
            self.resources[r].role = Role::Unpromoted;
            clear = true;
        } else if task == "migrate_from" {
            self.resources[r].role = Role::Started;
            clear = true;
        } else if task == "migrate_to" {
            self.migrate_to_success(r, node, op);
        } else {
            self.set_active(r);
        }
        if clear {
            match *on_fail {
                OnFail::Stop | OnFail::Fence | OnFail::Migrate | OnFail::Standby => {}
                _ => {
                    *on_fail = OnFail::Ignore;
                    self.resources[r].next_role = Role::Unknown;
                }
            }
        }
    }

    /// `unpack_migrate_to_success`: a completed migrate_to. Unless newer operations on the
    /// source and newer state on the target make it irrelevant, the resource is active; with
    /// no (or a pending) migrate_from on the target yet, it is active on the target too and the
    /// migration is partial (or, the target being down, failed).
    fn migrate_to_success(&mut self, r: usize, node: usize, op: &OpRecord<'_>) {
        let Some(target) = op
            .xml
            .attr("migrate_target")
            .and_then(|t| self.node_index(None, Some(t)))
        else {
            self.resources[r].role = Role::Started;
            return;
        };
        let source_name = op
            .xml
            .attr("migrate_source")
            .map(str::to_string)
            .unwrap_or_else(|| self.nodes[node].uname.clone());
        let source = self.node_index(None, Some(&source_name));
        let source_newer = source.is_some_and(|s| self.non_monitor_after(r, s, op.xml, true));
        let migrate_from = self.find_lrm_op(r, target, "migrate_from", Some(&source_name), None);
        if migrate_from.is_some() && source_newer {
            return;
        }
        let target_newer = self.newer_state_after_migrate(r, target, op.xml, migrate_from);
        if source_newer && target_newer {
            return;
        }
        self.resources[r].role = Role::Started;
        let from_status = migrate_from.map(|m| {
            let int = |name: &str| m.attr(name).and_then(|v| v.parse::<i32>().ok());
            (int("rc-code").unwrap_or(0), int("op-status").unwrap_or(0))
        });
        match from_status {
            // Completed or failed migrate_from: the target's own history tells its state.
            Some((_, status)) if status != EXEC_PENDING => {}
            _ => {
                if self.nodes[target].online {
                    self.add_running(r, target);
                    if source.is_some_and(|s| self.nodes[s].online) {
                        self.resources[r].partial_migration_source = source;
                        self.resources[r].partial_migration_target = Some(target);
                    }
                } else if !source_newer {
                    self.resources[r].failed = true;
                    self.resources[r].stop_needed = true;
                    self.settings[r].allow_migrate = false;
                }
            }
        }
    }

    /// `native_add_running`: the resource is active on `node`.
    fn add_running(&mut self, r: usize, node: usize) {
        if !self.resources[r].running_on.contains(&node) {
            self.resources[r].running_on.push(node);
            self.nodes[node].running.push(r);
            self.nodes[node].num_resources += 1;
        }
    }

    /// The resource's recorded operations on `node`, in document order.
    fn lrm_ops(&self, r: usize, node: usize) -> Vec<&'a Element> {
        let id = self.resources[r].id.as_str();
        let (uname, node_id) = (&self.nodes[node].uname, &self.nodes[node].id);
        let Some(status) = self.status_root() else {
            return Vec::new();
        };
        status
            .children_named("node_state")
            .filter(|s| s.attr("uname") == Some(uname.as_str()) || s.id() == Some(node_id.as_str()))
            .filter_map(|s| s.path(&["lrm", "lrm_resources"]))
            .flat_map(|l| l.children_named("lrm_resource"))
            .filter(|e| e.id() == Some(id))
            .flat_map(|e| e.children_named("lrm_rsc_op"))
            .collect()
    }

    /// `find_lrm_op`: the first `task` operation of the resource on `node` (a migrate_from
    /// from `source`), if it ended with `rc` when one is given.
    fn find_lrm_op(
        &self,
        r: usize,
        node: usize,
        task: &str,
        source: Option<&str>,
        rc: Option<i32>,
    ) -> Option<&'a Element> {
        let op = self.lrm_ops(r, node).into_iter().find(|o| {
            o.attr("operation") == Some(task)
                && (task != "migrate_from"
                    || source.is_none()
                    || o.attr("migrate_source") == source)
        })?;
        if let Some(rc) = rc {
            let int = |name: &str| op.attr(name).and_then(|v| v.parse::<i32>().ok());
            if int("rc-code") != Some(rc) || int("op-status") != Some(EXEC_DONE) {
                return None;
            }
        }
        Some(op)
    }

    /// `non_monitor_after`: a start, stop or migration of the resource on `node` newer than
    /// `than`.
    fn non_monitor_after(&self, r: usize, node: usize, than: &Element, same_node: bool) -> bool {
        self.lrm_ops(r, node).into_iter().any(|o| {
            !std::ptr::eq(o, than)
                && matches!(
                    o.attr("operation"),
                    Some("start" | "stop" | "migrate_to" | "migrate_from")
                )
                && is_newer_op(o, than, same_node) == std::cmp::Ordering::Greater
        })
    }

    /// `newer_state_after_migrate`: whether `node` has newer state than the migration (a
    /// newer start, stop or migration, or a newer probe finding the resource stopped).
    fn newer_state_after_migrate(
        &self,
        r: usize,
        node: usize,
        migrate_to: &Element,
        migrate_from: Option<&Element>,
    ) -> bool {
        let xml_op = migrate_from.unwrap_or(migrate_to);
        let uname = self.nodes[node].uname.as_str();
        let (source, target) = (xml_op.attr("migrate_source"), xml_op.attr("migrate_target"));
        let (xml_op, same_node) = if target.is_some_and(|t| t.eq_ignore_ascii_case(uname)) {
            match migrate_from {
                Some(from) => (from, true),
                None => (migrate_to, false),
            }
        } else if source.is_some_and(|s| s.eq_ignore_ascii_case(uname)) {
            (migrate_to, true)
        } else {
            (xml_op, false)
        };
        let not_running = self
            .find_lrm_op(r, node, "monitor", None, Some(7))
            .is_some_and(|m| is_newer_op(m, xml_op, same_node) == std::cmp::Ordering::Greater);
        self.non_monitor_after(r, node, xml_op, same_node) || not_running
    }

    fn op_failure(
        &mut self,
        r: usize,
        node: usize,
        op: &OpRecord<'_>,
        on_fail: &mut OnFail,
        last_failure: &mut bool,
    ) {
        *last_failure = true;
        let action_on_fail = self.configured_on_fail(r, &op.task, op.interval_ms);
        if op.task == "stop" {
            self.resources[r].bans.push((node, -INFINITY));
        } else if op.task == "promote" {
            self.resources[r].role = Role::Promoted;
        } else if op.task == "demote" {
            if action_on_fail == OnFail::Block {
                self.resources[r].role = Role::Promoted;
                self.resources[r].next_role = Role::Stopped;
            } else if self.resources[r].role < Role::Started {
                self.resources[r].role = Role::Unpromoted;
            }
        }
        if op.is_probe() && op.rc == 5 {
            self.resources[r].role = Role::Stopped;
        } else if self.resources[r].role < Role::Started {
            self.resources[r].role = Role::Started;
        }
        if action_on_fail > *on_fail {
            *on_fail = action_on_fail;
        }
        if action_on_fail == OnFail::Stop {
            self.resources[r].next_role = Role::Stopped;
        }
    }

    /// `process_recurring`: recurring operations active since the last start.
    fn record_active_recurring(&mut self, r: usize, node: usize, ops: &[OpRecord<'_>]) {
        let (start_index, stop_index) = active_range(ops);
        for (i, op) in ops.iter().enumerate() {
            let i = i as i64;
            if !self.nodes[node].online {
                break;
            }
            if start_index < stop_index && i <= stop_index {
                continue;
            }
            if i < start_index {
                continue;
            }
            if op.interval_ms == 0 || op.status == EXEC_PENDING {
                continue;
            }
            // An active recurring operation that is no longer configured (or is disabled) is
            // cancelled.
            let configured = self.resources[r].orphan
                || self.configs[r]
                    .ops
                    .iter()
                    .any(|o| o.name == op.task && o.interval_ms == op.interval_ms && o.enabled);
            if !configured {
                self.early.push(EarlyAction::Cancel {
                    rsc: r,
                    node,
                    interval_ms: op.interval_ms,
                });
                continue;
            }
            self.early.push(EarlyAction::Recurring {
                rsc: r,
                node,
                task: op.task.clone(),
                interval_ms: op.interval_ms,
            });
        }
    }

    fn process_rsc_state(&mut self, r: usize, node: usize, mut on_fail: OnFail) {
        let role = self.resources[r].role;
        if role != Role::Unknown {
            self.resources[r].known_on[node] = true;
        }
        if role > Role::Stopped
            && !self.nodes[node].online
            && !self.nodes[node].maintenance
            && self.resources[r].managed
        {
            let reason = format!("{} is thought to be active there", self.resources[r].id);
            self.fence_node(node, reason);
        }
        if self.nodes[node].unclean {
            on_fail = OnFail::Ignore;
        }
        match on_fail {
            OnFail::Ignore | OnFail::Demote => {}
            OnFail::Fence => {
                let reason = format!("{} failed there", self.resources[r].id);
                self.fence_node(node, reason);
            }
            OnFail::Standby => {
                self.nodes[node].standby = true;
                self.nodes[node].standby_onfail = true;
            }
            OnFail::Block => {
                self.resources[r].managed = false;
                self.resources[r].blocked = true;
            }
            OnFail::Migrate => self.resources[r].bans.push((node, -INFINITY)),
            OnFail::Stop => self.resources[r].next_role = Role::Stopped,
            OnFail::RestartContainer => {
                self.resources[r].failed = true;
                self.resources[r].stop_needed = true;
                let container = self.configs[r].meta.get("container").map(str::to_string);
                match container.and_then(|c| self.resources.iter().position(|x| x.id == c)) {
                    Some(c) => self.early.push(EarlyAction::Stop { rsc: c, node }),
                    None if role != Role::Stopped && role != Role::Unknown => {
                        self.early.push(EarlyAction::Stop { rsc: r, node })
                    }
                    None => {}
                }
            }
            OnFail::Recover => {
                if role != Role::Stopped && role != Role::Unknown {
                    self.resources[r].failed = true;
                    self.resources[r].stop_needed = true;
                    self.early.push(EarlyAction::Stop { rsc: r, node });
                }
            }
        }
        if role != Role::Stopped && role != Role::Unknown {
            let rs = &mut self.resources[r];
            if self.nodes[node].maintenance {
                rs.managed = false;
            }
            if !rs.running_on.contains(&node) {
                rs.running_on.push(node);
                self.nodes[node].running.push(r);
                self.nodes[node].num_resources += 1;
            }
            match on_fail {
                OnFail::Ignore => {}
                OnFail::Demote | OnFail::Block => rs.failed = true,
                _ => {
                    rs.failed = true;
                    rs.stop_needed = true;
                }
            }
        }
        // A partial migration's source stopped since: the resource is still active on the
        // migration target.
        let rs = &self.resources[r];
        if rs.role == Role::Stopped
            && rs.partial_migration_source == Some(node)
            && rs.partial_migration_target.is_some()
            && !rs.running_on.is_empty()
        {
            self.resources[r].role = Role::Started;
        }
    }

    /// `pcmk__handle_rsc_config_changes`: on every node that can run resources (or is in
    /// maintenance), each operation since a resource's last start is checked against the
    /// resource's definition now (operation digests). A changed one-time operation restarts
    /// (or reloads) the resource, a changed recurring one is scheduled again, and either
    /// clears the resource's fail count there.
    fn check_definitions(&mut self) {
        let Some(status) = self.status_root() else {
            return;
        };
        let comparable = self.comparable.clone();
        for state in status.children_named("node_state") {
            let Some(node) = self.node_index(state.id(), state.attr("uname")) else {
                continue;
            };
            if !(self.nodes[node].maintenance || self.nodes[node].available()) {
                continue;
            }
            let Some(list) = state.path(&["lrm", "lrm_resources"]) else {
                continue;
            };
            for entry in list.children_named("lrm_resource") {
                let Some(&r) = entry.id().and_then(|id| self.ids.get(id)) else {
                    continue;
                };
                if !self.resources[r].orphan && comparable.get(r).copied().unwrap_or(false) {
                    self.check_rsc_history(r, node, entry);
                }
            }
        }
    }

    /// Whether hapx knows all of a resource's parameters: node-specific (ruled) parameter
    /// sets are not evaluated, so a resource with any is never found changed. One pass over
    /// the configured resources.
    fn params_comparable_all(&self) -> Vec<bool> {
        let mut comparable = vec![false; self.resources.len()];
        let resources = self.cib.doc.root.path(&["configuration", "resources"]);
        for p in resources.into_iter().flat_map(|r| r.descendants()) {
            if p.name != "primitive" {
                continue;
            }
            let Some(&r) = p.id().and_then(|id| self.ids.get(id)) else {
                continue;
            };
            comparable[r] = !p
                .children_named("instance_attributes")
                .any(|set| set.child("rule").is_some() || set.attr("id-ref").is_some());
        }
        comparable
    }

    /// `process_rsc_history` for one resource on one node.
    fn check_rsc_history(&mut self, r: usize, node: usize, entry: &Element) {
        let mut ops: Vec<OpRecord<'_>> = entry
            .children_named("lrm_rsc_op")
            .filter_map(OpRecord::read)
            .collect();
        ops.sort_by(cmp_ops);
        let (start_index, stop_index) = active_range(&ops);
        if start_index < stop_index {
            return; // stopped
        }
        let maintenance = self.resources[r].maintenance || self.nodes[node].maintenance;
        for (i, op) in ops.iter().enumerate().skip(start_index.max(0) as usize) {
            let one_time = matches!(
                op.task.as_str(),
                "monitor" | "start" | "promote" | "migrate_from"
            );
            if (op.interval_ms == 0 && !one_time) || (op.interval_ms > 0 && maintenance) {
                continue;
            }
            let implied_start = i as i64 == start_index;
            if let Some(response) = self.check_action_config(r, node, op, implied_start) {
                let clear_failcount = self.failcount(r, node, None, true).0 != 0;
                self.definition_changes.push(DefinitionChange {
                    rsc: r,
                    node,
                    response,
                    clear_failcount,
                });
            }
        }
    }

    /// `pcmk__check_action_config`: what a change of `op`'s definition needs, if it changed.
    /// Recurring operations no longer configured were cancelled while unpacking.
    fn check_action_config(
        &mut self,
        r: usize,
        node: usize,
        op: &OpRecord<'_>,
        implied_start: bool,
    ) -> Option<ChangeResponse> {
        let config = &self.configs[r];
        let configured = config
            .ops
            .iter()
            .find(|o| o.name == op.task && o.interval_ms == op.interval_ms && o.enabled);
        if op.interval_ms > 0 && configured.is_none() {
            return None;
        }
        let change = self.digest_change(r, op);
        if change == DigestMatch::Match {
            return None;
        }
        let reload = change != DigestMatch::Restart && op.xml.attr("op-restart-digest").is_some();
        Some(if op.interval_ms > 0 {
            // A recurring operation is not reloaded or restarted: it runs again with the new
            // parameters (force_restart and pcmk__reschedule_recurring both require its key).
            self.reschedule.push((r, node, op.interval_ms));
            ChangeResponse::Reschedule(op.interval_ms)
        } else if reload {
            ChangeResponse::Reload
        } else if op.task == "start" || (op.task == "monitor" && implied_start) {
            // force_restart requires the action with the operation's own key: a start, or the
            // probe that found the resource running (and so stands for its start); either way
            // Pacemaker restarts it (its regression case params-5 is a changed probe, while a
            // changed probe that found it stopped changes nothing in group-anticolocation).
            ChangeResponse::Restart
        } else {
            ChangeResponse::None
        })
    }

    /// `rsc_action_digest_cmp` of a recorded operation against the resource's definition. An
    /// operation hashes with its configured timeout only when it is configured and enabled
    /// (Pacemaker finds no interval for a disabled one, so it leaves the timeout out).
    fn digest_change(&self, r: usize, op: &OpRecord<'_>) -> DigestMatch {
        let config = &self.configs[r];
        let configured = config
            .ops
            .iter()
            .find(|o| o.name == op.task && o.interval_ms == op.interval_ms && o.enabled);
        let interval_ms = if configured.is_some() {
            op.interval_ms
        } else {
            0
        };
        let timeout_ms = configured
            .and_then(|o| o.attrs.get("timeout"))
            .and_then(parse_interval_ms)
            .unwrap_or_else(|| default_timeout_ms(self.cib));
        let params = digest::operation_params(config, &op.task, op.interval_ms);
        let own_params = digest::op_config(config, &op.task, op.interval_ms)
            .is_some_and(|o| !o.params.0.is_empty());
        digest::compare_with_interval(
            op.xml,
            params.iter().copied(),
            own_params,
            interval_ms,
            timeout_ms,
        )
    }

    fn finish(mut self) -> ClusterStatus {
        // Fail counts and target roles for every resource.
        for r in 0..self.resources.len() {
            for n in 0..self.nodes.len() {
                self.check_block_failure(r, n);
                self.resources[r].fail_counts[n] = self.failcount(r, n, None, true).0;
            }
            if let Some(req) = self.settings[r].target_role {
                let rs = &mut self.resources[r];
                if rs.next_role == Role::Unknown || req < rs.next_role {
                    rs.next_role = req;
                }
            }
            if self.resources[r].role == Role::Unknown {
                self.resources[r].role = Role::Stopped;
            }
        }
        ClusterStatus {
            nodes: self.nodes,
            resources: self.resources,
            configs: self.configs,
            have_quorum: self.cib.have_quorum,
            have_stonith_resource: self.have_stonith_resource,
            early: self.early,
            reschedule: self.reschedule,
            definition_changes: self.definition_changes,
            default_timeout_ms: default_timeout_ms(self.cib),
            now: self.now,
        }
    }
}

/// Whether some fence device unfences nodes (`provides=unfencing`), so that nodes are unfenced
/// before they probe or run what needs it (Pacemaker's `pe_flag_enable_unfencing`).
pub fn unfencing_enabled(cib: &Cib) -> bool {
    cib.options.stonith_enabled
        && cib.primitives.iter().any(|p| {
            p.is_stonith()
                && p.meta
                    .get("provides")
                    .is_some_and(|v| v.eq_ignore_ascii_case("unfencing"))
        })
}

/// `shutdown-lock-limit` in seconds (0: locks never expire).
fn shutdown_lock_limit_s(cib: &Cib) -> i64 {
    cib.options
        .attrs
        .get("shutdown-lock-limit")
        .and_then(parse_interval_ms)
        .map(|ms| (ms / 1000) as i64)
        .unwrap_or(0)
}

/// The timeout of operations that configure none: `op_defaults`, else Pacemaker's 20s.
fn default_timeout_ms(cib: &Cib) -> u64 {
    cib.op_defaults
        .get("timeout")
        .and_then(parse_interval_ms)
        .unwrap_or(20_000)
}

/// The timeout of a resource's operation as the digest includes it, in milliseconds.
pub fn op_timeout_ms(p: &Primitive, task: &str, interval_ms: u64, default_ms: u64) -> u64 {
    p.ops
        .iter()
        .find(|o| o.name == task && o.interval_ms == interval_ms && o.enabled)
        .and_then(|o| o.attrs.get("timeout"))
        .and_then(parse_interval_ms)
        .unwrap_or(default_ms)
}

/// `pe__is_newer_op`: which of two recorded operations is newer: by call id on the same node
/// (a pending one is newest), else by the time of the last change.
fn is_newer_op(a: &Element, b: &Element, same_node_default: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let same_node = match (a.attr("on_node"), b.attr("on_node")) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => same_node_default,
    };
    let int = |e: &Element, name: &str| e.attr(name).and_then(|v| v.trim().parse::<i64>().ok());
    let (call_a, call_b) = (
        int(a, "call-id").unwrap_or(-1),
        int(b, "call-id").unwrap_or(-1),
    );
    match (call_a, call_b) {
        (-1, -1) => return Ordering::Equal,
        (-1, _) => return Ordering::Greater,
        (_, -1) => return Ordering::Less,
        _ => {}
    }
    if same_node && call_a != call_b {
        return call_a.cmp(&call_b);
    }
    let (last_a, last_b) = (
        int(a, "last-rc-change").unwrap_or(-1),
        int(b, "last-rc-change").unwrap_or(-1),
    );
    if last_a >= 0 && last_a < last_b {
        Ordering::Less
    } else if last_b >= 0 && last_a > last_b {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// `calculate_active_ops`: the indexes of the last start (or what implies one) and the last
/// successful stop in a sorted history; -1 when there is none.
fn active_range(ops: &[OpRecord<'_>]) -> (i64, i64) {
    let mut start_index: i64 = -1;
    let mut stop_index: i64 = -1;
    let mut implied_monitor_start: i64 = -1;
    let mut implied_clone_start: i64 = -1;
    for (i, op) in ops.iter().enumerate() {
        let i = i as i64;
        match op.task.as_str() {
            "stop" if op.status == 0 => stop_index = i,
            "start" | "migrate_from" => start_index = i,
            "monitor" if implied_monitor_start <= stop_index && (op.rc == 0 || op.rc == 8) => {
                implied_monitor_start = i;
            }
            "promote" | "demote" => implied_clone_start = i,
            _ => {}
        }
    }
    if start_index == -1 {
        if implied_clone_start != -1 {
            start_index = implied_clone_start;
        } else if implied_monitor_start != -1 {
            start_index = implied_monitor_start;
        }
    }
    (start_index, stop_index)
}

fn new_rsc(id: &str, s: &RscSettings, nodes: usize) -> RscStatus {
    RscStatus {
        id: id.to_string(),
        running_on: Vec::new(),
        role: Role::Unknown,
        next_role: Role::Unknown,
        failed: false,
        stop_needed: false,
        managed: s.managed,
        blocked: false,
        maintenance: s.maintenance,
        failure_ignored: false,
        orphan: false,
        start_pending: false,
        known_on: vec![false; nodes],
        bans: Vec::new(),
        failed_probes: Vec::new(),
        partial_migration_source: None,
        partial_migration_target: None,
        fail_counts: vec![0; nodes],
        locked_to: None,
    }
}

/// Settings for every resource of an unpacked cluster, in its order.
pub fn settings(cib: &Cib, status: &ClusterStatus) -> Vec<RscSettings> {
    status
        .configs
        .iter()
        .zip(&status.resources)
        .map(|(p, r)| {
            let mut s = RscSettings::of(p, cib);
            if r.orphan {
                s.managed = r.managed;
            }
            s
        })
        .collect()
}

/// Node attributes by name, for colocation `node-attribute`.
pub fn node_attribute<'a>(node: &'a NodeStatus, name: &str) -> Option<&'a str> {
    match name {
        "#uname" => Some(node.uname.as_str()),
        "#id" => Some(node.id.as_str()),
        _ => node.attrs.get(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_node_names_like_pacemaker() {
        let mut names = vec!["node10", "node2", "Node1", "node1a"];
        names.sort_by(|a, b| cmp_node_names(a, b));
        assert_eq!(names, vec!["Node1", "node1a", "node2", "node10"]);
    }
}
