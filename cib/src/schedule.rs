//! The scheduler: where each resource should run, and the actions (with orderings) that get
//! the cluster there.
//!
//! The stages follow Pacemaker 2.1.5's `pcmk__schedule_actions`:
//! 1. node scores per resource: symmetric default, location constraints, stickiness,
//!    failure thresholds, bans from the history;
//! 2. assignment in priority order, each resource pulling in the scores of what it is
//!    colocated with (mandatory colocations ban, advisory ones add), ties broken by fewest
//!    assigned resources, then the current node, then the node name;
//! 3. actions: the ones unpacking implied (fencing, stops of failed resources, active
//!    monitors), definition changes (required restarts, reloads, monitors to run again), probes
//!    where a resource's state is unknown (after the node's unfencing when a fence device
//!    provides it), then per resource stop/start, migration and recurring monitors, and each
//!    group's start/running/stop/stopped pseudo-actions around its members;
//! 4. fencing of unclean nodes and shutdowns;
//! 5. orderings (internal, user constraints, fencing) and the propagation of "required" and
//!    "unrunnable" along them.
//!
//! Action ids follow creation order, as Pacemaker's do: the transition graph, and so the order
//! in which `crm_simulate` executes it, depends on them.

use std::collections::HashMap;

use crate::model::{Cib, NoQuorumPolicy, OrderKind};
use crate::score::{self, INFINITY};
use crate::status::{
    self, ChangeResponse, ClusterStatus, EarlyAction, Role, RscSettings, node_attribute,
};

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Task {
    Start,
    Stop,
    /// A monitor; interval 0 is a probe.
    Monitor(u64),
    MigrateTo,
    MigrateFrom,
    ClearFailcount,
    /// Cancelling the recurring monitor with this interval.
    Cancel(u64),
    /// Fencing with the given stonith action (reboot, off, on).
    Fence(String),
    Shutdown,
    /// Utilization bookkeeping pseudo-action (`load_stopped_NODE`).
    LoadStopped,
    /// `one-or-more:SET`: runnable when any of its inputs is.
    OneOrMore(String),
    /// Reloading changed parameters without a restart (`reload-agent`).
    Reload,
    /// Forgetting a resource's history on a node (`lrm_delete`).
    LrmDelete,
    /// A group's pseudo-action, by its key (`GRP_start_0`, `GRP_running_0`, `GRP_stop_0`,
    /// `GRP_stopped_0`).
    Group(String),
}

impl Task {
    /// The operation name as Pacemaker spells it.
    pub fn name(&self) -> &str {
        match self {
            Task::Start => "start",
            Task::Stop => "stop",
            Task::Monitor(_) => "monitor",
            Task::MigrateTo => "migrate_to",
            Task::MigrateFrom => "migrate_from",
            Task::ClearFailcount => "clear_failcount",
            Task::Cancel(_) => "cancel",
            Task::Fence(_) => "stonith",
            Task::Shutdown => "do_shutdown",
            Task::LoadStopped => "load_stopped",
            Task::OneOrMore(name) => name,
            Task::Reload => "reload-agent",
            Task::Group(key) => key,
            Task::LrmDelete => "lrm_delete",
        }
    }

    fn interval(&self) -> u64 {
        match self {
            Task::Monitor(i) => *i,
            _ => 0,
        }
    }
}

/// One action of a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub id: usize,
    pub rsc: Option<usize>,
    pub task: Task,
    pub node: Option<usize>,
    pub optional: bool,
    pub runnable: bool,
    pub pseudo: bool,
    pub reason: Option<String>,
    /// The start/promote requirement (`requires`): "nothing", "quorum", "fencing".
    pub needs: &'static str,
    /// The rc the action is expected to return (7 for a probe of a stopped resource).
    pub target_rc: i32,
    pub migrate_runnable: bool,
    /// Shown in the graph even while optional (`pe_action_print_always`): a group's
    /// pseudo-action whose members act.
    pub print_always: bool,
}

/// Ordering flags (Pacemaker's `pe_order_*` that matter here).
pub mod flags {
    pub const OPTIONAL: u32 = 0;
    pub const IMPLIES_THEN: u32 = 1 << 0;
    pub const IMPLIES_FIRST: u32 = 1 << 1;
    pub const RUNNABLE_LEFT: u32 = 1 << 2;
    pub const RESTART: u32 = 1 << 3;
    pub const ASYMMETRICAL: u32 = 1 << 4;
    pub const IMPLIES_FIRST_MIGRATABLE: u32 = 1 << 5;
    pub const SERIALIZE: u32 = 1 << 6;
    pub const PSEUDO_LEFT: u32 = 1 << 7;
    /// Applies only between actions on the same node (utilization orderings).
    pub const SAME_NODE: u32 = 1 << 8;
    /// Never creates a missing first action (orderings derived from others).
    pub const NO_CREATE: u32 = 1 << 9;
    /// An input of a one-or-more pseudo-action.
    pub const ONE_OR_MORE: u32 = 1 << 10;
    /// A required "then" makes "first" shown in the graph (`pe_order_implies_first_printed`).
    pub const IMPLIES_FIRST_PRINTED: u32 = 1 << 11;
    /// A required "first" makes "then" shown in the graph (`pe_order_implies_then_printed`).
    pub const IMPLIES_THEN_PRINTED: u32 = 1 << 12;
}

/// A resolved ordering between two actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordering {
    pub first: usize,
    pub then: usize,
    pub flags: u32,
}

/// What one side of an ordering names before actions exist.
#[derive(Debug, Clone)]
enum Side {
    Action(usize),
    /// Every action of the resource with this task (any node).
    Rsc(usize, Task),
    /// A group's pseudo-action by its key (`GRP_running_0`), once it exists.
    Group(String),
}

#[derive(Debug, Clone)]
struct OrderSpec {
    first: Side,
    then: Side,
    flags: u32,
}

/// A colocation with resolved resource indices.
#[derive(Debug, Clone)]
struct Coloc {
    dependent: usize,
    primary: usize,
    score: i32,
    dependent_role: Role,
    primary_role: Role,
    node_attribute: String,
    influence: bool,
}

/// The scheduler's decisions.
#[derive(Debug, Clone)]
pub struct Transition {
    pub status: ClusterStatus,
    /// The order resources were processed in (Pacemaker's resource list after assignment).
    pub order: Vec<usize>,
    /// Each resource's action ids, oldest first.
    pub by_rsc: Vec<Vec<usize>>,
    pub settings: Vec<RscSettings>,
    pub actions: Vec<Action>,
    pub orderings: Vec<Ordering>,
    /// Where each resource is assigned (None: stopped).
    pub assigned: Vec<Option<usize>>,
    pub next_role: Vec<Role>,
    /// Final node scores per resource (None: not allowed), for `--explain` and `-s`.
    pub scores: Vec<Vec<Option<i32>>>,
    /// Human-readable contributions to each resource's scores.
    pub explanations: Vec<Vec<String>>,
    /// Each group's pseudo-actions (start, running, stop, stopped), by the group's first
    /// member: the graph lists them before the members' actions.
    pub group_actions: Vec<(usize, Vec<usize>)>,
}

impl Transition {
    /// Whether an action goes into the transition graph.
    pub fn in_graph(&self, a: &Action) -> bool {
        if !a.runnable || (a.optional && !a.print_always) {
            return false;
        }
        if let Some(r) = a.rsc {
            let managed = self.status.resources[r].managed;
            if !managed && !matches!(a.task, Task::Monitor(_)) && !a.pseudo {
                return false;
            }
        }
        if a.pseudo || matches!(a.task, Task::Fence(_) | Task::Shutdown | Task::LrmDelete) {
            return true;
        }
        match a.node {
            None => false,
            Some(n) => self.status.nodes[n].online && !self.status.nodes[n].unclean,
        }
    }

    /// Actions of resource `r` with task `task` (on `node`, if given).
    pub fn rsc_actions<'a>(
        &'a self,
        r: usize,
        task: &'a Task,
        node: Option<usize>,
    ) -> impl Iterator<Item = &'a Action> + 'a {
        // Pacemaker keeps a resource's actions newest first.
        self.by_rsc[r]
            .iter()
            .rev()
            .map(|&a| &self.actions[a])
            .filter(move |a| a.task == *task && (node.is_none() || a.node == node))
    }
}

/// Schedules the unpacked cluster.
pub fn schedule(cib: &Cib, status: ClusterStatus) -> Transition {
    let settings = status::settings(cib, &status);
    let mut s = Scheduler::new(cib, status, settings);
    s.unpack_constraints();
    s.initial_scores();
    s.assign_all();
    s.create_early_actions();
    s.apply_definition_changes();
    s.create_load_stopped();
    s.cancel_stopped_monitors();
    s.create_probes();
    for r in s.order.clone() {
        s.create_rsc_actions(r);
        s.create_group_actions(r);
    }
    s.apply_quorum();
    s.schedule_fencing_and_shutdowns();
    s.apply_orderings();
    s.cancel_reloads();
    s.finish()
}

struct Scheduler<'a> {
    cib: &'a Cib,
    st: ClusterStatus,
    settings: Vec<RscSettings>,
    actions: Vec<Action>,
    /// Each resource's actions, oldest first.
    by_rsc: Vec<Vec<usize>>,
    /// Each resource's actions by task, oldest first.
    by_task: HashMap<(usize, Task), Vec<usize>>,
    index: HashMap<(Option<usize>, Task, Option<usize>), usize>,
    /// Each group's pseudo-actions, by the group's first member.
    group_actions: Vec<(usize, Vec<usize>)>,
    /// A fence device unfences nodes (`provides=unfencing`).
    unfencing: bool,
    /// Starts required before placement (definition changes), by resource: each takes the
    /// node of the first start asked for, as Pacemaker's unassigned actions do.
    unassigned_starts: HashMap<usize, usize>,
    specs: Vec<OrderSpec>,
    orderings: Vec<Ordering>,
    allowed: Vec<Vec<Option<i32>>>,
    explain: Vec<Vec<String>>,
    assigned: Vec<Option<usize>>,
    provisional: Vec<bool>,
    allocating: Vec<bool>,
    merging: Vec<bool>,
    next_role: Vec<Role>,
    node_count: Vec<usize>,
    colocs: Vec<Coloc>,
    this_with: Vec<Vec<usize>>,
    with_this: Vec<Vec<usize>>,
    managed: Vec<bool>,
    /// The order resources are processed in (assignment, actions, graph, summary).
    order: Vec<usize>,
    /// Resource index by id.
    ids: HashMap<String, usize>,
    /// Node index by lower-cased name.
    node_names: HashMap<String, usize>,
    utilization_left: Vec<HashMap<String, i64>>,
}

impl<'a> Scheduler<'a> {
    fn new(cib: &'a Cib, st: ClusterStatus, settings: Vec<RscSettings>) -> Self {
        let nr = st.resources.len();
        let nn = st.nodes.len();
        let managed = st.resources.iter().map(|r| r.managed).collect();
        let next_role = st.resources.iter().map(|r| r.next_role).collect();
        let utilization_left: Vec<HashMap<String, i64>> = st
            .nodes
            .iter()
            .map(|n| {
                let conf = cib.nodes.iter().find(|c| c.uname == n.uname);
                conf.map(|c| {
                    c.utilization
                        .0
                        .iter()
                        .map(|(k, v)| (k.clone(), v.trim().parse::<i64>().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
            })
            .collect();
        Scheduler {
            cib,
            settings,
            actions: Vec::new(),
            by_rsc: vec![Vec::new(); nr],
            by_task: HashMap::new(),
            index: HashMap::new(),
            unassigned_starts: HashMap::new(),
            group_actions: Vec::new(),
            unfencing: status::unfencing_enabled(cib),
            specs: Vec::new(),
            orderings: Vec::new(),
            allowed: vec![vec![None; nn]; nr],
            explain: vec![Vec::new(); nr],
            assigned: vec![None; nr],
            provisional: vec![true; nr],
            allocating: vec![false; nr],
            merging: vec![false; nr],
            next_role,
            node_count: vec![0; nn],
            colocs: Vec::new(),
            this_with: vec![Vec::new(); nr],
            with_this: vec![Vec::new(); nr],
            managed,
            order: (0..nr).collect(),
            ids: st
                .resources
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id.clone(), i))
                .collect(),
            utilization_left,
            node_names: st
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.uname.to_ascii_lowercase(), i))
                .collect(),
            st,
        }
    }

    fn rsc_index(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// The member standing for `id` if it names a group (its first or last member), else the
    /// resource itself.
    fn group_member(&self, id: &str, last: bool) -> Option<usize> {
        match self.cib.groups.iter().find(|g| g.id == id) {
            Some(g) => {
                let mut members = g.members.iter().filter_map(|m| self.rsc_index(m));
                if last {
                    members.next_back()
                } else {
                    members.next()
                }
            }
            None => self.rsc_index(id),
        }
    }

    /// A group's side of an ordering as its pseudo-action: the group's start or stop when it
    /// comes second, its running or stopped when it comes first (Pacemaker orders the group's
    /// own actions). The members it stands for carry the ordering's effect; this link (which
    /// changes no flags) gives the transition graph the group's inputs, so actions run in
    /// Pacemaker's order.
    fn group_graph_link(
        &mut self,
        first_id: &str,
        first_task: &Task,
        first: usize,
        then_id: &str,
        then_task: &Task,
        then: usize,
    ) {
        let is_group = |id: &str| self.cib.groups.iter().any(|g| g.id == id);
        let (first_group, then_group) = (is_group(first_id), is_group(then_id));
        if !first_group && !then_group {
            return;
        }
        let group_side = |id: &str, task: &Task, as_first: bool| -> Option<Side> {
            let op = match (task, as_first) {
                (Task::Start, true) => "running",
                (Task::Stop, true) => "stopped",
                (Task::Start, false) => "start",
                (Task::Stop, false) => "stop",
                _ => return None,
            };
            Some(Side::Group(format!("{id}_{op}_0")))
        };
        let first_side = if first_group {
            group_side(first_id, first_task, true)
        } else {
            Some(Side::Rsc(first, first_task.clone()))
        };
        let then_side = if then_group {
            group_side(then_id, then_task, false)
        } else {
            Some(Side::Rsc(then, then_task.clone()))
        };
        if let (Some(first), Some(then)) = (first_side, then_side) {
            self.specs.push(OrderSpec {
                first,
                then,
                flags: flags::OPTIONAL | flags::NO_CREATE,
            });
        }
    }

    /// The member standing for `id` in an ordering: a group has started once its last member
    /// has and starts with its first; it stops with its last member and has stopped once its
    /// first has.
    fn order_member(&self, id: &str, task: &Task, is_first: bool) -> Option<usize> {
        let pick_last = if *task == Task::Start {
            is_first
        } else {
            !is_first
        };
        self.group_member(id, pick_last)
    }

    /// A node by name, case-insensitively (as attribute values compare).
    fn node_by_name(&self, name: &str) -> Option<usize> {
        self.node_names.get(&name.to_ascii_lowercase()).copied()
    }

    fn node_index(&self, uname: &str) -> Option<usize> {
        self.st.nodes.iter().position(|n| n.uname == uname)
    }

    fn priority(&self, r: usize) -> i32 {
        self.settings[r].priority
    }

    // ---- constraints ---------------------------------------------------------------------

    fn unpack_constraints(&mut self) {
        let cib = self.cib;
        // A group's members run with the member before them.
        for g in &cib.groups {
            if !g.collocated {
                continue;
            }
            let members: Vec<usize> = g.members.iter().filter_map(|m| self.rsc_index(m)).collect();
            for pair in members.windows(2) {
                self.colocs.push(Coloc {
                    dependent: pair[1],
                    primary: pair[0],
                    score: INFINITY,
                    dependent_role: Role::Unknown,
                    primary_role: Role::Unknown,
                    node_attribute: "#uname".into(),
                    influence: true,
                });
            }
        }
        for c in &cib.colocations {
            // A group follows through its first member; as the primary of a mandatory
            // colocation it stands for its last (the whole group must be placeable).
            let d = self.group_member(&c.rsc, false);
            let p = self.group_member(&c.with_rsc, c.score >= INFINITY);
            let (Some(d), Some(p)) = (d, p) else {
                continue;
            };
            if c.score == 0 {
                continue;
            }
            let role = |r: &Option<String>| {
                r.as_deref()
                    .map(Role::parse)
                    .map(|r| if r == Role::Started { Role::Unknown } else { r })
                    .unwrap_or(Role::Unknown)
            };
            self.colocs.push(Coloc {
                dependent: d,
                primary: p,
                score: c.score,
                dependent_role: role(&c.rsc_role),
                primary_role: role(&c.with_rsc_role),
                node_attribute: c.node_attribute.clone().unwrap_or_else(|| "#uname".into()),
                influence: c.influence,
            });
        }
        // A resource inside a container runs where its container runs.
        for d in 0..self.st.resources.len() {
            let Some(container) = self.st.configs[d].meta.get("container").map(str::to_string)
            else {
                continue;
            };
            let Some(p) = self.rsc_index(&container) else {
                continue;
            };
            self.colocs.push(Coloc {
                dependent: d,
                primary: p,
                score: INFINITY,
                dependent_role: Role::Unknown,
                primary_role: Role::Unknown,
                node_attribute: "#uname".into(),
                influence: true,
            });
        }
        // Anti-colocated resources: one stops before the other starts on the same node.
        for c in self.colocs.clone() {
            if c.score > -INFINITY {
                continue;
            }
            for (a, b) in [(c.dependent, c.primary), (c.primary, c.dependent)] {
                self.specs.push(OrderSpec {
                    first: Side::Rsc(a, Task::Stop),
                    then: Side::Rsc(b, Task::Start),
                    flags: flags::SAME_NODE | flags::NO_CREATE,
                });
            }
        }
        // Between groups, the same orderings link the groups' own pseudo-actions in the graph.
        for c in &cib.colocations {
            if c.score > -INFINITY {
                continue;
            }
            for (a, b) in [(&c.rsc, &c.with_rsc), (&c.with_rsc, &c.rsc)] {
                let (Some(first), Some(then)) = (
                    self.order_member(a, &Task::Stop, true),
                    self.order_member(b, &Task::Start, false),
                ) else {
                    continue;
                };
                self.group_graph_link(a, &Task::Stop, first, b, &Task::Start, then);
            }
        }
        for (i, c) in self.colocs.iter().enumerate() {
            self.this_with[c.dependent].push(i);
            self.with_this[c.primary].push(i);
        }
        // Sorted by the other side's priority (highest first), then its id.
        let colocs = self.colocs.clone();
        let ids: Vec<String> = self.st.resources.iter().map(|r| r.id.clone()).collect();
        let prio: Vec<i32> = (0..ids.len()).map(|r| self.priority(r)).collect();
        for list in &mut self.this_with {
            list.sort_by(|&a, &b| {
                let (pa, pb) = (colocs[a].primary, colocs[b].primary);
                prio[pb].cmp(&prio[pa]).then(ids[pa].cmp(&ids[pb]))
            });
        }
        for list in &mut self.with_this {
            list.sort_by(|&a, &b| {
                let (da, db) = (colocs[a].dependent, colocs[b].dependent);
                prio[db].cmp(&prio[da]).then(ids[da].cmp(&ids[db]))
            });
        }
        for o in &cib.orders {
            let (Some(fa), Some(ta)) = (task_of(&o.first_action), task_of(&o.then_action)) else {
                continue;
            };
            let (Some(first), Some(then)) = (
                self.order_member(&o.first, &fa, true),
                self.order_member(&o.then, &ta, false),
            ) else {
                continue;
            };
            let kind_flags = |action: &str, symmetry: Symmetry| -> u32 {
                match o.kind {
                    OrderKind::Optional => flags::OPTIONAL,
                    OrderKind::Serialize => flags::SERIALIZE,
                    OrderKind::Mandatory => match symmetry {
                        Symmetry::Asymmetric => flags::ASYMMETRICAL,
                        Symmetry::Symmetric => {
                            let mut f = flags::IMPLIES_THEN;
                            if action == "start" || action == "promote" {
                                f |= flags::RUNNABLE_LEFT;
                            }
                            f
                        }
                        Symmetry::Inverse => flags::IMPLIES_FIRST,
                    },
                }
            };
            let symmetry = if o.symmetrical {
                Symmetry::Symmetric
            } else {
                Symmetry::Asymmetric
            };
            self.specs.push(OrderSpec {
                first: Side::Rsc(first, fa.clone()),
                then: Side::Rsc(then, ta.clone()),
                flags: kind_flags(&o.first_action, symmetry),
            });
            self.group_graph_link(&o.first, &fa, first, &o.then, &ta, then);

            if o.symmetrical {
                let (Some(fi), Some(ti)) = (invert(&fa), invert(&ta)) else {
                    continue;
                };
                let (Some(first), Some(then)) = (
                    self.order_member(&o.then, &ti, true),
                    self.order_member(&o.first, &fi, false),
                ) else {
                    continue;
                };
                self.specs.push(OrderSpec {
                    first: Side::Rsc(first, ti.clone()),
                    then: Side::Rsc(then, fi.clone()),
                    flags: kind_flags(&o.then_action, Symmetry::Inverse),
                });
                self.group_graph_link(&o.then, &ti, first, &o.first, &fi, then);
            }
        }
        // Sets where any one member will do: a pseudo-action collects them.
        for set in &cib.one_or_more {
            let (Some(ma), Some(ta)) = (task_of(&set.member_action), task_of(&set.then_action))
            else {
                continue;
            };
            let pseudo = self.action(None, Task::OneOrMore(set.name.clone()), None, false);
            self.actions[pseudo].pseudo = true;
            for m in &set.members {
                if let Some(r) = self.order_member(m, &ma, true) {
                    self.specs.push(OrderSpec {
                        first: Side::Rsc(r, ma.clone()),
                        then: Side::Action(pseudo),
                        flags: flags::ONE_OR_MORE | flags::NO_CREATE,
                    });
                }
            }
            let then_flags = match set.kind {
                OrderKind::Mandatory => flags::IMPLIES_THEN | flags::RUNNABLE_LEFT,
                _ => flags::OPTIONAL,
            };
            for t in &set.thens {
                if let Some(r) = self.order_member(t, &ta, false) {
                    self.specs.push(OrderSpec {
                        first: Side::Action(pseudo),
                        then: Side::Rsc(r, ta.clone()),
                        flags: then_flags,
                    });
                }
            }
        }
        // Internal constraints, resource by resource: a group's members start one after the
        // other and stop in reverse; stop before start (a restart), for managed resources, and
        // their containers. Interleaved so that a member's start created for a later ordering
        // is not yet there for its own stop-before-start, as in Pacemaker.
        for r in 0..self.st.resources.len() {
            if let Some(prev) = self.previous_group_member(r) {
                self.specs.push(OrderSpec {
                    first: Side::Rsc(prev, Task::Start),
                    then: Side::Rsc(r, Task::Start),
                    flags: flags::IMPLIES_THEN | flags::RUNNABLE_LEFT,
                });
                self.specs.push(OrderSpec {
                    first: Side::Rsc(r, Task::Stop),
                    then: Side::Rsc(prev, Task::Stop),
                    flags: flags::IMPLIES_FIRST,
                });
            }
            if self.managed[r] {
                self.specs.push(OrderSpec {
                    first: Side::Rsc(r, Task::Stop),
                    then: Side::Rsc(r, Task::Start),
                    flags: flags::IMPLIES_THEN | flags::RESTART,
                });
                self.container_orderings(r);
            }
        }
    }

    /// The member before `r` in its ordered group, if any.
    fn previous_group_member(&self, r: usize) -> Option<usize> {
        let g = self.st.configs[r].group.as_deref()?;
        let group = self.cib.groups.iter().find(|x| x.id == g)?;
        if !group.ordered {
            return None;
        }
        let members: Vec<usize> = group
            .members
            .iter()
            .filter_map(|m| self.rsc_index(m))
            .collect();
        let at = members.iter().position(|&m| m == r)?;
        at.checked_sub(1).map(|i| members[i])
    }

    /// A contained resource starts after and stops before its container.
    fn container_orderings(&mut self, r: usize) {
        let container = self.st.configs[r].meta.get("container").map(str::to_string);
        if let Some(c) = container.and_then(|c| self.rsc_index(&c)) {
            self.specs.push(OrderSpec {
                first: Side::Rsc(c, Task::Start),
                then: Side::Rsc(r, Task::Start),
                flags: flags::IMPLIES_THEN | flags::RUNNABLE_LEFT,
            });
            self.specs.push(OrderSpec {
                first: Side::Rsc(r, Task::Stop),
                then: Side::Rsc(c, Task::Stop),
                flags: flags::IMPLIES_FIRST,
            });
        }
    }

    // ---- scores --------------------------------------------------------------------------

    fn add_score(&mut self, r: usize, node: usize, value: i32, why: String) {
        let slot = &mut self.allowed[r][node];
        *slot = Some(score::add(slot.unwrap_or(0), value));
        self.explain[r].push(why);
    }

    fn initial_scores(&mut self) {
        let nn = self.st.nodes.len();
        let nr = self.st.resources.len();
        let symmetric = self.cib.options.symmetric_cluster;
        for r in 0..nr {
            if symmetric {
                for n in 0..nn {
                    self.allowed[r][n] = Some(0);
                }
            }
            if self.st.resources[r].orphan {
                // An orphan (history without configuration) may not run anywhere.
                for n in 0..nn {
                    let why = format!(
                        "{}: -INFINITY on {}: it is no longer configured",
                        self.st.resources[r].id, self.st.nodes[n].uname
                    );
                    self.add_score(r, n, -INFINITY, why);
                }
            }
            let bans = self.st.resources[r].bans.clone();
            for (n, s) in bans {
                let why = format!(
                    "{}: {} on {} (its operation history: hard failure or failed probe)",
                    self.st.resources[r].id,
                    score::to_text(s),
                    self.st.nodes[n].uname
                );
                self.add_score(r, n, s, why);
            }
        }
        self.apply_node_health();
        let cib = self.cib;
        let mut applied = Vec::new();
        for l in &cib.locations {
            // A location on a group applies to each member.
            let targets: Vec<usize> = match cib.groups.iter().find(|g| g.id == l.rsc) {
                Some(g) => g.members.iter().filter_map(|m| self.rsc_index(m)).collect(),
                None => self.rsc_index(&l.rsc).into_iter().collect(),
            };
            for r in targets {
                applied.push((r, l));
            }
        }
        for (r, l) in applied {
            let Some(n) = self.node_index(&l.node) else {
                continue;
            };
            if let Some(role) = l.role.as_deref().map(Role::parse) {
                if role != Role::Started && role != Role::Unknown && role != self.next_role[r] {
                    continue;
                }
            }
            let why = format!(
                "{}: {} on {} from location constraint {}",
                l.rsc,
                score::to_text(l.score),
                l.node,
                l.id
            );
            self.add_score(r, n, l.score, why);
        }
        self.apply_rule_locations();
        for r in 0..nr {
            let stickiness = self.settings[r].stickiness;
            let running = &self.st.resources[r].running_on;
            if self.managed[r] && stickiness >= 1 && running.len() == 1 {
                let n = running[0];
                if symmetric || self.allowed[r][n].is_some() {
                    let why = format!(
                        "{}: +{} on {} for resource-stickiness (it is active there)",
                        self.st.resources[r].id, stickiness, self.st.nodes[n].uname
                    );
                    self.add_score(r, n, stickiness, why);
                }
            }
        }
        // A container also carries the failures of the resources inside it.
        let mut fillers: Vec<Vec<usize>> = vec![Vec::new(); nr];
        for f in 0..nr {
            if let Some(c) = self.st.configs[f].meta.get("container") {
                if let Some(c) = self.rsc_index(c) {
                    fillers[c].push(f);
                }
            }
        }
        for n in 0..nn {
            for r in 0..nr {
                let threshold = self.settings[r].migration_threshold;
                let fillers = fillers[r].iter().fold(0, |acc, &f| {
                    score::add(acc, self.st.resources[f].fail_counts[n])
                });
                let fc = score::add(self.st.resources[r].fail_counts[n], fillers);
                if threshold == 0 || self.st.resources[r].failure_ignored || fc <= 0 {
                    continue;
                }
                if threshold - fc <= 0 {
                    let why = format!(
                        "{}: -INFINITY on {}: fail count {} reached migration-threshold {}",
                        self.st.resources[r].id, self.st.nodes[n].uname, fc, threshold
                    );
                    self.add_score(r, n, -INFINITY, why);
                }
            }
        }
    }

    /// Location constraints with rules: each rule gives its score to the nodes it matches.
    fn apply_rule_locations(&mut self) {
        let cib = self.cib;
        for l in &cib.rule_locations {
            let targets: Vec<usize> = match cib.groups.iter().find(|g| g.id == l.rsc) {
                Some(g) => g.members.iter().filter_map(|m| self.rsc_index(m)).collect(),
                None => self.rsc_index(&l.rsc).into_iter().collect(),
            };
            for rule in &l.rules {
                let role = rule.role.as_deref().or(l.role.as_deref()).map(Role::parse);
                for &r in &targets {
                    if let Some(role) = role {
                        if role != Role::Started
                            && role != Role::Unknown
                            && role != self.next_role[r]
                        {
                            continue;
                        }
                    }
                    for n in 0..self.st.nodes.len() {
                        let node = &self.st.nodes[n];
                        let attr = |name: &str| -> Option<String> {
                            match name {
                                "#kind" => Some("cluster".to_string()),
                                "#is_dc" => Some(node.is_dc.to_string()),
                                other => node_attribute(node, other).map(str::to_string),
                            }
                        };
                        let mut results = rule
                            .expressions
                            .iter()
                            .map(|e| e.accepts(attr(&e.attribute).as_deref()));
                        let matched = if rule.and {
                            results.all(|b| b)
                        } else {
                            results.any(|b| b)
                        };
                        if !matched {
                            continue;
                        }
                        let value = match &rule.score {
                            crate::model::RuleScore::Fixed(s) => *s,
                            crate::model::RuleScore::Attribute(a) => match attr(a) {
                                Some(v) => score::parse(&v, &cib.options.health),
                                None => continue,
                            },
                        };
                        let why = format!(
                            "{}: {} on {} from rule {} of location constraint {}",
                            self.st.resources[r].id,
                            score::to_text(value),
                            self.st.nodes[n].uname,
                            rule.id,
                            l.id
                        );
                        self.add_score(r, n, value, why);
                    }
                }
            }
        }
    }

    /// Node health (`#health-*` attributes) under the configured strategy.
    fn apply_node_health(&mut self) {
        let strategy = self.cib.options.node_health_strategy.clone();
        if strategy == "none" || strategy.is_empty() {
            return;
        }
        let health = self.cib.options.health;
        for n in 0..self.st.nodes.len() {
            let mut total = 0;
            let attrs: Vec<String> = self.st.nodes[n]
                .attrs
                .with_prefix("#health")
                .map(|(_, v)| v.to_string())
                .collect();
            for v in &attrs {
                let s = match strategy.as_str() {
                    "migrate-on-red" => match v.to_ascii_lowercase().as_str() {
                        "red" => -INFINITY,
                        _ => 0,
                    },
                    "only-green" => match v.to_ascii_lowercase().as_str() {
                        "red" | "yellow" => -INFINITY,
                        _ => 0,
                    },
                    _ => score::parse(v, &health),
                };
                total = score::add(total, s);
            }
            if total == 0 {
                continue;
            }
            for r in 0..self.st.resources.len() {
                let why = format!(
                    "{}: {} on {} from node health",
                    self.st.resources[r].id,
                    score::to_text(total),
                    self.st.nodes[n].uname
                );
                self.add_score(r, n, total, why);
            }
        }
    }

    // ---- assignment ----------------------------------------------------------------------

    fn available(&self, n: usize) -> bool {
        self.st.nodes[n].available()
    }

    fn any_available(&self, table: &[Option<i32>]) -> bool {
        table
            .iter()
            .enumerate()
            .any(|(n, w)| matches!(w, Some(w) if *w >= 0) && self.available(n))
    }

    fn assign_all(&mut self) {
        // With a placement strategy, Pacemaker re-sorts its resource list for assignment, and
        // every later stage (actions, graph, summary) follows that order.
        if self.cib.options.placement_strategy != "default" {
            self.order = self.sorted_by_placement();
        }
        for r in self.order.clone() {
            self.allocate(r);
        }
    }

    /// Utilization bookkeeping (`load_stopped_NODE`): with a placement strategy, what uses
    /// capacity on a node stops there before anything new starts there.
    fn create_load_stopped(&mut self) {
        if self.cib.options.placement_strategy == "default" {
            return;
        }
        for r in self.order.clone() {
            if self.st.configs[r].utilization.0.is_empty() || !self.managed[r] {
                continue;
            }
            for n in 0..self.st.nodes.len() {
                if self.allowed[r][n].is_none() {
                    continue;
                }
                let load = self.action(None, Task::LoadStopped, Some(n), false);
                self.actions[load].pseudo = true;
                self.specs.push(OrderSpec {
                    first: Side::Rsc(r, Task::Stop),
                    then: Side::Action(load),
                    flags: flags::SAME_NODE,
                });
                self.specs.push(OrderSpec {
                    first: Side::Action(load),
                    then: Side::Rsc(r, Task::Start),
                    flags: flags::SAME_NODE,
                });
            }
        }
    }

    /// `cmp_resources`: priority, then score on the current node, then scores node by node.
    fn sorted_by_placement(&mut self) -> Vec<usize> {
        let nr = self.st.resources.len();
        let weights: Vec<Vec<Option<i32>>> = (0..nr)
            .map(|r| {
                let init = self.allowed[r].clone();
                self.merge_weights(
                    r,
                    init,
                    "#uname",
                    1.0,
                    MergeFlags {
                        forward: true,
                        rollback: false,
                        positive: false,
                    },
                    true,
                )
            })
            .collect();
        // Nodes in Pacemaker's preference order (capacity first under "balanced").
        let mut nodes: Vec<usize> = (0..self.st.nodes.len()).collect();
        nodes.sort_by(|&a, &b| {
            self.compare_capacity(a, b)
                .then(self.st.nodes[a].uname.cmp(&self.st.nodes[b].uname))
        });
        let mut order: Vec<usize> = (0..nr).collect();
        order.sort_by(|&a, &b| {
            let pa = self.priority(a);
            let pb = self.priority(b);
            if pa != pb {
                return pb.cmp(&pa);
            }
            let cur = |r: usize| {
                self.st.resources[r]
                    .running_on
                    .first()
                    .and_then(|&n| weights[r][n])
                    .unwrap_or(-INFINITY)
            };
            let (ca, cb) = (cur(a), cur(b));
            if ca != cb {
                return cb.cmp(&ca);
            }
            for &n in &nodes {
                match (weights[a][n], weights[b][n]) {
                    (Some(_), None) => return std::cmp::Ordering::Less,
                    (None, Some(_)) => return std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) if x != y => return y.cmp(&x),
                    _ => {}
                }
            }
            std::cmp::Ordering::Equal
        });
        order
    }

    fn allocate(&mut self, r: usize) -> Option<usize> {
        if !self.provisional[r] {
            return self.assigned[r];
        }
        if self.allocating[r] {
            return None;
        }
        self.allocating[r] = true;
        for ci in self.this_with[r].clone() {
            let c = self.colocs[ci].clone();
            let archive =
                if c.dependent_role >= Role::Promoted || (c.score < 0 && c.score > -INFINITY) {
                    Some(self.allowed[r].clone())
                } else {
                    None
                };
            self.allocate(c.primary);
            self.apply_colocation(&c);
            if let Some(archive) = archive {
                if !self.any_available(&self.allowed[r]) {
                    self.allowed[r] = archive;
                }
            }
        }
        for ci in self.with_this[r].clone() {
            let c = self.colocs[ci].clone();
            if !(c.influence || self.st.resources[r].running_on.is_empty()) {
                continue;
            }
            let nodes = self.allowed[r].clone();
            let merged = self.merge_weights(
                c.dependent,
                nodes,
                &c.node_attribute,
                c.score as f64 / INFINITY as f64,
                MergeFlags {
                    forward: false,
                    rollback: true,
                    positive: false,
                },
                false,
            );
            if merged != self.allowed[r] {
                let why = format!(
                    "{}: scores merged from {} (colocated with it, score {})",
                    self.st.resources[r].id,
                    self.st.resources[c.dependent].id,
                    score::to_text(c.score)
                );
                self.explain[r].push(why);
            }
            self.allowed[r] = merged;
        }
        let role = self.st.resources[r].role;
        if self.next_role[r] == Role::Stopped {
            for n in 0..self.st.nodes.len() {
                let why = format!(
                    "{}: -INFINITY on {}: target-role is Stopped",
                    self.st.resources[r].id, self.st.nodes[n].uname
                );
                self.add_score(r, n, -INFINITY, why);
            }
        }
        if self.cib.options.stonith_enabled && !self.st.have_stonith_resource {
            self.managed[r] = false;
        }
        if !self.managed[r] {
            self.next_role[r] = role;
            let current = self.st.resources[r].running_on.first().copied();
            self.assign(r, current, true);
        } else if self.cib.options.stop_all_resources {
            self.assign(r, None, true);
        } else if self.provisional[r] {
            self.choose_node(r);
        }
        self.allocating[r] = false;
        self.assigned[r]
    }

    /// `pcmk__colocation_affects` + `pcmk__apply_coloc_to_weights`.
    fn apply_colocation(&mut self, c: &Coloc) {
        let (d, p) = (c.dependent, c.primary);
        if self.provisional[p] || !self.provisional[d] {
            return;
        }
        if c.score > 0 && c.dependent_role != Role::Unknown && c.dependent_role != self.next_role[d]
        {
            return;
        }
        if c.score > 0 && c.primary_role != Role::Unknown && c.primary_role != self.next_role[p] {
            return;
        }
        if c.score < 0 && c.dependent_role != Role::Unknown && c.dependent_role == self.next_role[d]
        {
            return;
        }
        if c.score < 0 && c.primary_role != Role::Unknown && c.primary_role == self.next_role[p] {
            return;
        }
        let primary_node = self.assigned[p];
        let value = primary_node.and_then(|n| node_attribute(&self.st.nodes[n], &c.node_attribute));
        if primary_node.is_none() && c.score < 0 {
            return;
        }
        let mut work = self.allowed[d].clone();
        for (n, slot) in work.iter_mut().enumerate() {
            let Some(w) = slot else {
                continue;
            };
            if primary_node.is_none() {
                *w = score::add(-c.score, *w);
            } else if node_attribute(&self.st.nodes[n], &c.node_attribute)
                .map(|v| Some(v.to_ascii_lowercase()) == value.map(|x| x.to_ascii_lowercase()))
                .unwrap_or(value.is_none())
            {
                if c.score < INFINITY {
                    *w = score::add(c.score, *w);
                }
            } else if c.score >= INFINITY {
                *w = score::add(-c.score, *w);
            }
        }
        if c.score <= -INFINITY || c.score >= INFINITY || self.any_available(&work) {
            if work != self.allowed[d] {
                let why = format!(
                    "{}: {} colocation with {} ({}) {}",
                    self.st.resources[d].id,
                    if c.score >= INFINITY || c.score <= -INFINITY {
                        "mandatory"
                    } else {
                        "advisory"
                    },
                    self.st.resources[p].id,
                    score::to_text(c.score),
                    match primary_node {
                        Some(n) => format!("which is assigned to {}", self.st.nodes[n].uname),
                        None => "which cannot run anywhere".to_string(),
                    }
                );
                self.explain[d].push(why);
            }
            self.allowed[d] = work;
        }
    }

    /// `best_node_score_matching_attr`.
    fn best_score_matching(&self, r: usize, attr: &str, value: Option<&str>) -> i32 {
        if attr == "#uname" {
            // Node names are unique: only the node itself matches.
            let n = value.and_then(|v| self.node_by_name(v));
            return match n.and_then(|n| self.allowed[r][n].map(|w| (n, w))) {
                Some((n, w)) if w > -INFINITY && self.available(n) => w,
                _ => -INFINITY,
            };
        }
        let mut best = -INFINITY;
        for (n, w) in self.allowed[r].iter().enumerate() {
            let Some(w) = *w else {
                continue;
            };
            if w > best
                && self.available(n)
                && node_attribute(&self.st.nodes[n], attr).map(str::to_ascii_lowercase)
                    == value.map(str::to_ascii_lowercase)
            {
                best = w;
            }
        }
        best
    }

    /// `pcmk__native_merge_weights`.
    fn merge_weights(
        &mut self,
        r: usize,
        nodes: Vec<Option<i32>>,
        attr: &str,
        factor: f64,
        f: MergeFlags,
        init: bool,
    ) -> Vec<Option<i32>> {
        if self.merging[r] {
            return nodes;
        }
        self.merging[r] = true;
        let mut work = if init {
            self.allowed[r].clone()
        } else {
            let mut work = nodes.clone();
            for (n, slot) in nodes.iter().enumerate() {
                let Some(w) = *slot else {
                    continue;
                };
                let value = node_attribute(&self.st.nodes[n], attr).map(str::to_string);
                let s = self.best_score_matching(r, attr, value.as_deref());
                if factor < 0.0 && s < 0 {
                    continue;
                }
                let wf = factor * s as f64;
                let mut weight = if wf < 0.0 {
                    (wf - 0.5) as i32
                } else {
                    (wf + 0.5) as i32
                };
                if weight == 0 && s != 0 {
                    weight = if factor > 0.0 {
                        1
                    } else if factor < 0.0 {
                        -1
                    } else {
                        0
                    };
                }
                let new = score::add(weight, w);
                if f.positive && new < 0 && w > 0 {
                    continue;
                }
                if f.positive && new < 0 && w == 0 {
                    continue;
                }
                work[n] = Some(new);
            }
            work
        };
        if self.any_available(&work) {
            let multiplier = if factor < 0.0 { -1.0 } else { 1.0 };
            let list: Vec<usize> = if f.forward {
                self.this_with[r].clone()
            } else {
                self.with_this[r].clone()
            };
            for ci in list {
                let c = self.colocs[ci].clone();
                let other = if f.forward {
                    c.primary
                } else {
                    if !(c.influence || self.st.resources[c.primary].running_on.is_empty()) {
                        continue;
                    }
                    c.dependent
                };
                work = self.merge_weights(
                    other,
                    work,
                    &c.node_attribute,
                    multiplier * c.score as f64 / INFINITY as f64,
                    f,
                    false,
                );
            }
        } else if f.rollback {
            self.merging[r] = false;
            return nodes;
        }
        self.merging[r] = false;
        work
    }

    fn choose_node(&mut self, r: usize) {
        let prefer = self.apply_utilization(r);
        let current = self.st.resources[r].running_on.first().copied();
        let mut candidates: Vec<usize> = (0..self.st.nodes.len())
            .filter(|&n| self.allowed[r][n].is_some())
            .collect();
        let weight = |s: &Self, n: usize| {
            if s.available(n) {
                s.allowed[r][n].unwrap_or(-INFINITY)
            } else {
                -INFINITY
            }
        };
        // "minimal" packs resources: equal scores go by node name only.
        let minimal = self.cib.options.placement_strategy == "minimal";
        candidates.sort_by(|&a, &b| {
            let by_weight = weight(self, b).cmp(&weight(self, a));
            if minimal {
                return by_weight.then(self.st.nodes[a].uname.cmp(&self.st.nodes[b].uname));
            }
            by_weight
                .then_with(|| self.compare_capacity(a, b))
                .then(self.node_count[a].cmp(&self.node_count[b]))
                .then_with(|| match current {
                    Some(c) if c == a => std::cmp::Ordering::Less,
                    Some(c) if c == b => std::cmp::Ordering::Greater,
                    _ => std::cmp::Ordering::Equal,
                })
                .then(self.st.nodes[a].uname.cmp(&self.st.nodes[b].uname))
        });
        let Some(&best) = candidates.first() else {
            self.assign(r, None, false);
            return;
        };
        let mut chosen = best;
        let best_w = self.allowed[r][best].unwrap_or(-INFINITY);
        if let Some(p) = prefer {
            if self.allowed[r][p].is_some_and(|w| w >= best_w) && self.available(p) {
                self.assign(r, Some(p), false);
                return;
            }
        }
        if best_w > 0 && self.available(best) {
            if let Some(running) = current {
                if self.available(running) {
                    for &n in candidates.iter().skip(1) {
                        if self.allowed[r][n] != Some(best_w) {
                            break;
                        }
                        if n == running {
                            chosen = n;
                        }
                    }
                }
            }
        }
        self.assign(r, Some(chosen), false);
    }

    fn compare_capacity(&self, a: usize, b: usize) -> std::cmp::Ordering {
        if self.cib.options.placement_strategy != "balanced" {
            return std::cmp::Ordering::Equal;
        }
        self.capacity_order(a, b)
    }

    fn rsc_utilization(&self, r: usize) -> HashMap<String, i64> {
        self.st.configs[r]
            .utilization
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().parse::<i64>().unwrap_or(0)))
            .collect()
    }

    /// Resources that must run with `r` (mandatory colocations either way), `r` first
    /// (`pcmk__colocated_resources`).
    fn colocated_set(&self, r: usize, orig: usize, set: &mut Vec<usize>) {
        if set.contains(&r) {
            return;
        }
        set.push(r);
        for &ci in &self.this_with[r] {
            let c = &self.colocs[ci];
            if c.primary != orig && c.score >= INFINITY {
                self.colocated_set(c.primary, orig, set);
            }
        }
        for &ci in &self.with_this[r] {
            let c = &self.colocs[ci];
            if c.dependent != orig && c.score >= INFINITY {
                self.colocated_set(c.dependent, orig, set);
            }
        }
    }

    fn fits(&self, n: usize, need: &HashMap<String, i64>) -> bool {
        need.iter()
            .all(|(k, v)| self.utilization_left[n].get(k).copied().unwrap_or(0) >= *v)
    }

    /// Bans nodes without the capacity the resource (and what must run with it) needs, under
    /// non-default placement strategies (`pcmk__ban_insufficient_capacity`). When no node can
    /// hold them all, only nodes too small for the resource alone are banned, and the node
    /// with the most free capacity is preferred.
    fn apply_utilization(&mut self, r: usize) -> Option<usize> {
        let strategy = self.cib.options.placement_strategy.clone();
        if strategy == "default" {
            return None;
        }
        let mut set = Vec::new();
        self.colocated_set(r, r, &mut set);
        let mut total: HashMap<String, i64> = HashMap::new();
        for &x in &set {
            if !self.provisional[x] {
                continue;
            }
            for (k, v) in self.rsc_utilization(x) {
                *total.entry(k).or_insert(0) += v;
            }
        }
        let candidates: Vec<usize> = (0..self.st.nodes.len())
            .filter(|&n| matches!(self.allowed[r][n], Some(w) if w >= 0) && self.available(n))
            .collect();
        let any_capable = candidates.iter().any(|&n| self.fits(n, &total));
        let mut most_capable: Option<usize> = None;
        for &n in &candidates {
            let better = match most_capable {
                None => true,
                Some(m) => self.capacity_order(n, m) == std::cmp::Ordering::Less,
            };
            if better {
                most_capable = Some(n);
            }
        }
        let need = if any_capable {
            total
        } else {
            self.rsc_utilization(r)
        };
        for n in candidates {
            if !self.fits(n, &need) {
                let why = format!(
                    "{}: -INFINITY on {}: not enough capacity ({strategy} placement)",
                    self.st.resources[r].id, self.st.nodes[n].uname
                );
                self.add_score(r, n, -INFINITY, why);
            }
        }
        if any_capable { None } else { most_capable }
    }

    /// More remaining capacity first (`pcmk__compare_node_capacities`).
    fn capacity_order(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let mut result = 0i64;
        for (k, va) in &self.utilization_left[a] {
            let vb = self.utilization_left[b].get(k).copied().unwrap_or(0);
            if *va > vb {
                result -= 1;
            } else if *va < vb {
                result += 1;
            }
        }
        for (k, vb) in &self.utilization_left[b] {
            if !self.utilization_left[a].contains_key(k) && *vb > 0 {
                result += 1;
            }
        }
        result.cmp(&0)
    }

    fn assign(&mut self, r: usize, chosen: Option<usize>, force: bool) {
        let mut chosen = chosen;
        if !force {
            if let Some(n) = chosen {
                if self.allowed[r][n].unwrap_or(-INFINITY) < 0 || !self.available(n) {
                    self.next_role[r] = Role::Stopped;
                    chosen = None;
                }
            }
        }
        self.provisional[r] = false;
        self.assigned[r] = chosen;
        match chosen {
            None => {
                self.next_role[r] = Role::Stopped;
            }
            Some(n) => {
                self.node_count[n] += 1;
                let need = self.rsc_utilization(r);
                for (k, v) in need {
                    *self.utilization_left[n].entry(k).or_insert(0) -= v;
                }
            }
        }
    }

    // ---- actions -------------------------------------------------------------------------

    /// `custom_action`: finds or creates the action, clearing `optional` when asked.
    fn action(
        &mut self,
        rsc: Option<usize>,
        task: Task,
        node: Option<usize>,
        optional: bool,
    ) -> usize {
        let key = (rsc, task.clone(), node);
        if let Some(&id) = self.index.get(&key) {
            if !optional {
                self.actions[id].optional = false;
            }
            return id;
        }
        if let (Some(r), Task::Start, Some(_)) = (rsc, &task, node) {
            if let Some(id) = self.unassigned_starts.remove(&r) {
                return self.assign_action_node(id, key);
            }
        }
        let id = self.actions.len();
        let needs = match (&task, rsc) {
            (Task::Start, Some(r)) => needs_of(&self.settings[r].requires),
            _ => "nothing",
        };
        let mut a = Action {
            id,
            rsc,
            task: task.clone(),
            node,
            optional,
            runnable: true,
            pseudo: false,
            reason: None,
            needs,
            target_rc: 0,
            migrate_runnable: false,
            print_always: false,
        };
        if let Some(r) = rsc {
            self.set_runnable(&mut a, r);
        }
        self.actions.push(a);
        if let Some(r) = rsc {
            self.by_rsc[r].push(id);
            self.by_task.entry((r, task.clone())).or_default().push(id);
        }
        self.index.insert(key, id);
        id
    }

    /// `find_actions` on an action created without a node: it takes the node asked for.
    fn assign_action_node(
        &mut self,
        id: usize,
        key: (Option<usize>, Task, Option<usize>),
    ) -> usize {
        let mut a = self.actions[id].clone();
        self.index.remove(&(a.rsc, a.task.clone(), None));
        a.node = key.2;
        a.runnable = true;
        if let Some(r) = a.rsc {
            self.set_runnable(&mut a, r);
        }
        self.actions[id] = a;
        self.index.insert(key, id);
        id
    }

    /// `pcmk__handle_rsc_config_changes`, in the order the changes were found: the start of
    /// each resource whose definition changed is required (before placement, so without a
    /// node yet), or it is reloaded, or its monitor runs again; and its fail count is cleared.
    fn apply_definition_changes(&mut self) {
        for c in self.st.definition_changes.clone() {
            match c.response {
                ChangeResponse::Restart => self.force_restart(c.rsc),
                ChangeResponse::Reload => self.schedule_reload(c.rsc, c.node),
                ChangeResponse::Reschedule(i) => {
                    self.action(Some(c.rsc), Task::Monitor(i), Some(c.node), true);
                }
                ChangeResponse::None => {}
            }
            if c.clear_failcount {
                self.action(Some(c.rsc), Task::ClearFailcount, Some(c.node), false);
            }
        }
    }

    fn force_restart(&mut self, r: usize) {
        if let Some(&id) = self.unassigned_starts.get(&r) {
            set_reason(&mut self.actions[id], "resource definition change", true);
            return;
        }
        let id = self.action(Some(r), Task::Start, None, false);
        set_reason(&mut self.actions[id], "resource definition change", true);
        self.unassigned_starts.insert(r, id);
    }

    /// `schedule_reload`: a reload where the resource runs, unless it is unmanaged or failed
    /// (it is stopped and started anyway), or its start is pending (a reload cannot catch
    /// that, so it is stopped and started again).
    fn schedule_reload(&mut self, r: usize, node: usize) {
        let rs = &self.st.resources[r];
        if !self.managed[r] || rs.failed {
            return;
        }
        if rs.start_pending {
            self.action(Some(r), Task::Stop, Some(node), false);
            return;
        }
        let id = self.action(Some(r), Task::Reload, Some(node), false);
        set_reason(&mut self.actions[id], "resource definition change", false);
    }

    /// `pe_order_then_cancels_first`: a required stop of a resource cancels its reload.
    fn cancel_reloads(&mut self) {
        for i in 0..self.actions.len() {
            let Some(r) = self.actions[i].rsc else {
                continue;
            };
            if self.actions[i].task != Task::Reload || self.actions[i].optional {
                continue;
            }
            let stopping = self.by_rsc[r]
                .iter()
                .any(|&a| self.actions[a].task == Task::Stop && !self.actions[a].optional);
            if stopping {
                self.actions[i].optional = true;
            }
        }
    }

    /// Runnability at creation (`unpack_operation`'s checks).
    fn set_runnable(&mut self, a: &mut Action, r: usize) {
        let Some(n) = a.node else {
            a.runnable = false;
            return;
        };
        let node = &self.st.nodes[n];
        if !self.managed[r] && a.task.interval() == 0 && !matches!(a.task, Task::Monitor(_)) {
            a.optional = true;
        }
        if !node.online {
            a.runnable = false;
            if self.managed[r] && a.task == Task::Stop && !node.unclean {
                self.mark_unclean(n, "stop is unrunnable".to_string());
            }
        } else if node.pending {
            a.runnable = false;
        }
    }

    /// Quorum restrictions, applied once every resource's actions exist (Pacemaker decides
    /// whether a start is required before it finds the start cannot run without quorum).
    fn apply_quorum(&mut self) {
        if self.st.have_quorum {
            return;
        }
        let policy = self.cib.options.no_quorum_policy;
        for i in 0..self.actions.len() {
            let a = &self.actions[i];
            let Some(r) = a.rsc else {
                continue;
            };
            if a.needs == "nothing" || a.pseudo || !a.runnable || a.node.is_none() {
                continue;
            }
            let reason = match policy {
                NoQuorumPolicy::Stop => "no quorum",
                NoQuorumPolicy::Freeze => {
                    let active = !self.st.resources[r].running_on.is_empty();
                    if active && self.next_role[r] <= self.st.resources[r].role {
                        continue;
                    }
                    "quorum freeze"
                }
                _ => continue,
            };
            let a = &mut self.actions[i];
            a.runnable = false;
            set_reason(a, reason, true);
        }
    }

    fn mark_unclean(&mut self, n: usize, reason: String) {
        if self.st.nodes[n].unclean {
            return;
        }
        self.st.nodes[n].unclean = true;
        let id = self.fence_action(n, true);
        if self.actions[id].reason.is_none() {
            self.actions[id].reason = Some(reason);
        }
    }

    fn fence_action(&mut self, n: usize, optional: bool) -> usize {
        let task = Task::Fence(self.cib.options.stonith_action.clone());
        self.action(None, task, Some(n), optional)
    }

    /// `pcmk__order_vs_unfence`: with unfencing in use, a fence device's or an unfencing
    /// resource's probe or start on a node comes after the node's unfencing, which is required
    /// (with the reason Pacemaker prints) while the node was never unfenced.
    fn order_vs_unfence(&mut self, r: usize, n: usize, action: usize, task: &str, f: u32) {
        if !self.unfencing {
            return;
        }
        let fence_device = self.st.configs[r].is_stonith();
        if !fence_device && self.settings[r].requires != "unfencing" {
            return;
        }
        let unfence = self.action(None, Task::Fence("on".into()), Some(n), true);
        self.specs.push(OrderSpec {
            first: Side::Action(unfence),
            then: Side::Action(action),
            flags: f,
        });
        let node = &self.st.nodes[n];
        let unfenced = node_attribute(node, "#node-unfenced").is_some_and(|v| v != "0");
        if !unfenced && node.online && !node.unclean && !node.shutdown {
            self.actions[unfence].optional = false;
            let reason = format!("required by {} {task}", self.st.resources[r].id);
            set_reason(&mut self.actions[unfence], &reason, false);
        }
    }

    fn can_fence(&self, n: usize) -> bool {
        let o = &self.cib.options;
        if !o.stonith_enabled || !self.st.have_stonith_resource {
            return false;
        }
        self.st.have_quorum
            || o.no_quorum_policy == NoQuorumPolicy::Ignore
            || self.st.nodes[n].online
    }

    fn create_early_actions(&mut self) {
        for e in self.st.early.clone() {
            match e {
                EarlyAction::Fence { node, reason } => {
                    let id = self.fence_action(node, true);
                    if self.actions[id].reason.is_none() {
                        self.actions[id].reason = Some(reason);
                    }
                }
                EarlyAction::Stop { rsc, node } => {
                    self.action(Some(rsc), Task::Stop, Some(node), false);
                }
                EarlyAction::Recurring {
                    rsc,
                    node,
                    task,
                    interval_ms,
                } => {
                    let t = if task == "monitor" {
                        Task::Monitor(interval_ms)
                    } else {
                        continue;
                    };
                    self.action(Some(rsc), t, Some(node), true);
                }
                EarlyAction::ClearFailcount { rsc, node } => {
                    self.action(Some(rsc), Task::ClearFailcount, Some(node), false);
                }
                EarlyAction::ClearHistory { rsc, node } => {
                    // The controller forgets history for any node, up or down.
                    let id = self.action(Some(rsc), Task::LrmDelete, Some(node), false);
                    self.actions[id].runnable = true;
                }
                EarlyAction::Cancel {
                    rsc,
                    node,
                    interval_ms,
                } => {
                    let id = self.action(Some(rsc), Task::Cancel(interval_ms), Some(node), false);
                    self.specs.push(OrderSpec {
                        first: Side::Rsc(rsc, Task::Stop),
                        then: Side::Action(id),
                        flags: flags::OPTIONAL,
                    });
                }
            }
        }
    }

    fn create_probes(&mut self) {
        let modes = self.discovery_modes();
        for n in 0..self.st.nodes.len() {
            let node = &self.st.nodes[n];
            if !node.online || node.unclean {
                continue;
            }
            if node
                .attrs
                .get("probe_complete")
                .is_some_and(|v| !crate::model::is_true(v))
            {
                continue;
            }
            for r in self.order.clone() {
                let (orphan, known, running) = {
                    let rs = &self.st.resources[r];
                    (rs.orphan, rs.known_on[n], rs.running_on.contains(&n))
                };
                if orphan || known || self.st.configs[r].meta.get("container").is_some() {
                    continue;
                }
                if Self::discovery_never(&modes[r], n) {
                    continue;
                }
                let id = self.action(Some(r), Task::Monitor(0), Some(n), false);
                self.actions[id].optional = false;
                if !running {
                    self.actions[id].target_rc = 7;
                }
                self.order_vs_unfence(r, n, id, "monitor", flags::OPTIONAL);
                self.specs.push(OrderSpec {
                    first: Side::Action(id),
                    then: Side::Rsc(r, Task::Start),
                    flags: flags::OPTIONAL,
                });
            }
        }
    }

    /// Per resource, the nodes its location constraints set `resource-discovery` on:
    /// (node, "never"/"exclusive"/...).
    fn discovery_modes(&self) -> Vec<Vec<(usize, String)>> {
        let mut modes = vec![Vec::new(); self.st.resources.len()];
        for l in &self.cib.locations {
            let (Some(mode), Some(r), Some(n)) = (
                l.discovery.as_deref(),
                self.rsc_index(&l.rsc),
                self.node_index(&l.node),
            ) else {
                continue;
            };
            modes[r].push((n, mode.to_string()));
        }
        modes
    }

    /// Whether probing `r` on `n` is switched off by `resource-discovery`.
    fn discovery_never(modes: &[(usize, String)], n: usize) -> bool {
        let exclusive = modes.iter().any(|(_, m)| m == "exclusive");
        if exclusive && !modes.iter().any(|(x, m)| *x == n && m == "exclusive") {
            return true;
        }
        modes.iter().any(|(x, m)| *x == n && m == "never")
    }

    fn create_rsc_actions(&mut self, r: usize) {
        if self.next_role[r] == Role::Unknown {
            self.next_role[r] = if self.assigned[r].is_some() {
                Role::Started
            } else {
                Role::Stopped
            };
        }
        let rs = self.st.resources[r].clone();
        let assigned = self.assigned[r];
        let current = active_node(&self.st, r, &self.settings[r]);
        let mut need_stop = false;
        let mut is_moving = false;
        let mut allow_migrate = false;
        if let (Some(c), Some(a)) = (current, assigned) {
            if c != a && self.next_role[r] >= Role::Started {
                is_moving = true;
                allow_migrate = self.can_migrate(r, c);
                need_stop = true;
            }
        }
        let mut partial_continue = false;
        if let (Some(src), Some(tgt)) = (rs.partial_migration_source, rs.partial_migration_target) {
            if allow_migrate
                && rs.running_on.len() == 2
                && current == Some(src)
                && assigned == Some(tgt)
            {
                partial_continue = true;
            } else {
                need_stop = true;
                allow_migrate = false;
            }
        } else if rs.partial_migration_source.is_some() || rs.partial_migration_target.is_some() {
            need_stop = true;
            allow_migrate = false;
        }
        let needs_fencing = self.settings[r].requires == "fencing";
        let clean_active = rs
            .running_on
            .iter()
            .filter(|&&n| !self.st.nodes[n].unclean)
            .count();
        let multiply_active = if partial_continue {
            false
        } else if needs_fencing {
            rs.running_on.len() > 1
        } else {
            clean_active > 1
        };
        let mut stop_unexpected = false;
        if multiply_active {
            match self.settings[r].multiple_active.as_str() {
                "stop_start" => need_stop = true,
                "stop_unexpected" => {
                    need_stop = true;
                    stop_unexpected = true;
                }
                _ => {}
            }
        }
        if !is_moving {
            if rs.failed {
                if rs.stop_needed {
                    need_stop = true;
                }
            } else if rs.blocked {
                need_stop = true;
            }
        }
        // Down to stopped on the current node(s), then up on the assigned node.
        let role = rs.role;
        if role != Role::Stopped && role != Role::Unknown {
            self.stop_resource(r, !need_stop, partial_continue, stop_unexpected);
        }
        let next = self.next_role[r];
        let blocked = rs.blocked;
        if role <= next && role != Role::Stopped && !blocked {
            if let Some(a) = assigned {
                self.start_resource(r, a, !need_stop);
            }
        }
        // From the current role to the next one.
        if role == Role::Stopped && next >= Role::Started {
            if let Some(a) = assigned {
                self.start_resource(r, a, false);
            }
        } else if role >= Role::Started && next == Role::Stopped {
            self.stop_resource(r, false, partial_continue, false);
        }
        self.create_recurring(r);
        if allow_migrate {
            if let Some(c) = current {
                self.create_migration(r, c, partial_continue);
            }
        }
    }

    /// `pcmk__group_create_actions` and `pcmk__group_internal_constraints`: once its last
    /// member's actions exist, a group gets its start, running, stop and stopped
    /// pseudo-actions, ordered around its members' starts and stops. They stay optional
    /// (and out of the graph) unless a member starts or stops.
    fn create_group_actions(&mut self, last: usize) {
        let Some(g) = self.st.configs[last].group.clone() else {
            return;
        };
        let Some(group) = self.cib.groups.iter().find(|x| x.id == g) else {
            return;
        };
        let members: Vec<usize> = group
            .members
            .iter()
            .filter_map(|m| self.rsc_index(m))
            .collect();
        if members.last() != Some(&last) {
            return;
        }
        let ordered = group.ordered;
        let pseudo = |s: &mut Self, op: &str| {
            let id = s.action(None, Task::Group(format!("{g}_{op}_0")), None, true);
            s.actions[id].pseudo = true;
            s.actions[id].runnable = true;
            id
        };
        let start = pseudo(self, "start");
        let running = pseudo(self, "running");
        let stop = pseudo(self, "stop");
        let stopped = pseudo(self, "stopped");
        self.group_actions
            .push((members[0], vec![start, running, stop, stopped]));
        let own = [
            (stopped, start, flags::OPTIONAL),
            (start, running, flags::RUNNABLE_LEFT),
            (stop, stopped, flags::RUNNABLE_LEFT),
        ];
        for (first, then, f) in own {
            self.specs.push(OrderSpec {
                first: Side::Action(first),
                then: Side::Action(then),
                flags: f | flags::NO_CREATE,
            });
        }
        for (i, &m) in members.iter().enumerate() {
            let stopped_flags = if i == 0 && ordered {
                flags::IMPLIES_THEN
            } else {
                flags::IMPLIES_THEN_PRINTED
            };
            let member_specs = [
                (
                    Side::Action(stop),
                    Side::Rsc(m, Task::Stop),
                    flags::IMPLIES_FIRST_PRINTED,
                ),
                (
                    Side::Rsc(m, Task::Stop),
                    Side::Action(stopped),
                    stopped_flags,
                ),
                (
                    Side::Rsc(m, Task::Start),
                    Side::Action(running),
                    flags::RUNNABLE_LEFT | flags::IMPLIES_THEN | flags::IMPLIES_THEN_PRINTED,
                ),
                (
                    Side::Action(start),
                    Side::Rsc(m, Task::Start),
                    flags::IMPLIES_THEN | flags::RUNNABLE_LEFT | flags::IMPLIES_FIRST_PRINTED,
                ),
            ];
            for (first, then, f) in member_specs {
                self.specs.push(OrderSpec {
                    first,
                    then,
                    flags: f,
                });
            }
        }
    }

    fn can_migrate(&self, r: usize, current: usize) -> bool {
        let rs = &self.st.resources[r];
        self.settings[r].allow_migrate
            && !rs.failed
            && !rs.start_pending
            && self.st.nodes[current].online
            && !self.st.nodes[current].unclean
            && self.managed[r]
    }

    fn stop_resource(
        &mut self,
        r: usize,
        optional: bool,
        partial_continue: bool,
        stop_unexpected: bool,
    ) {
        let running = self.st.resources[r].running_on.clone();
        let assigned = self.assigned[r];
        for n in running {
            let mut optional = optional;
            if let Some(tgt) = self.st.resources[r].partial_migration_target {
                if tgt == n && partial_continue {
                    continue;
                }
                optional = false;
            }
            if stop_unexpected && Some(n) == assigned {
                continue;
            }
            let id = self.action(Some(r), Task::Stop, Some(n), optional);
            if assigned.is_none() {
                set_reason(&mut self.actions[id], "node availability", false);
            } else if stop_unexpected {
                set_reason(&mut self.actions[id], "being multiply active", false);
            }
            if !self.managed[r] {
                self.actions[id].runnable = false;
            }
        }
    }

    fn start_resource(&mut self, r: usize, node: usize, optional: bool) {
        let id = self.action(Some(r), Task::Start, Some(node), true);
        if self.actions[id].runnable && !optional {
            self.actions[id].optional = false;
        }
        if !self.actions[id].optional {
            self.order_vs_unfence(r, node, id, "start", flags::IMPLIES_THEN);
        }
    }

    fn create_recurring(&mut self, r: usize) {
        if self.st.resources[r].blocked || self.st.resources[r].maintenance {
            return;
        }
        let node = match self.assigned[r] {
            Some(n) if !self.st.nodes[n].maintenance => n,
            _ => {
                self.create_stopped_monitors(r);
                return;
            }
        };
        let start = self.action(Some(r), Task::Start, Some(node), true);
        let ops = self.st.configs[r].ops.clone();
        for op in &ops {
            if op.name != "monitor" || op.interval_ms == 0 || !op.enabled {
                continue;
            }
            let role = op.role.as_deref().map(Role::parse).unwrap_or(Role::Unknown);
            if role == Role::Stopped {
                continue;
            }
            if role != Role::Unknown && role != Role::Started && role != self.next_role[r] {
                continue;
            }
            if role == Role::Unknown && self.next_role[r] == Role::Promoted {
                continue;
            }
            let task = Task::Monitor(op.interval_ms);
            let exists = self
                .index
                .contains_key(&(Some(r), task.clone(), Some(node)));
            let reschedule = self.st.reschedule.contains(&(r, node, op.interval_ms));
            let optional = self.actions[start].optional && exists && !reschedule;
            let mon = self.action(Some(r), task, Some(node), optional);
            if !self.actions[start].runnable
                || !self.st.nodes[node].online
                || self.st.nodes[node].unclean
            {
                self.actions[mon].runnable = false;
            }
            if self.managed[r] {
                self.specs.push(OrderSpec {
                    first: Side::Rsc(r, Task::Start),
                    then: Side::Action(mon),
                    flags: flags::IMPLIES_THEN | flags::RUNNABLE_LEFT,
                });
            }
        }
        self.create_stopped_monitors(r);
    }

    /// A stopped-state monitor active where its resource will now run is cancelled before
    /// the start. Pacemaker finds these while checking the operation history against the
    /// configuration, before any probe or resource action is created.
    fn cancel_stopped_monitors(&mut self) {
        for r in self.order.clone() {
            let Some(n) = self.assigned[r] else {
                continue;
            };
            let ops = self.st.configs[r].ops.clone();
            for op in &ops {
                if op.name != "monitor"
                    || op.interval_ms == 0
                    || !op.enabled
                    || op.role.as_deref().map(Role::parse) != Some(Role::Stopped)
                {
                    continue;
                }
                let task = Task::Monitor(op.interval_ms);
                if self.index.contains_key(&(Some(r), task, Some(n))) {
                    let cancel = self.action(Some(r), Task::Cancel(op.interval_ms), Some(n), false);
                    self.specs.push(OrderSpec {
                        first: Side::Action(cancel),
                        then: Side::Rsc(r, Task::Start),
                        flags: flags::RUNNABLE_LEFT,
                    });
                }
            }
        }
    }

    /// Monitors with role="Stopped" on nodes where the resource will not run.
    fn create_stopped_monitors(&mut self, r: usize) {
        let ops = self.st.configs[r].ops.clone();
        for op in &ops {
            if op.name != "monitor" || op.interval_ms == 0 || !op.enabled {
                continue;
            }
            if op.role.as_deref().map(Role::parse) != Some(Role::Stopped) {
                continue;
            }
            for n in 0..self.st.nodes.len() {
                if Some(n) == self.assigned[r] {
                    // Cancelled already (see `cancel_stopped_monitors`).
                    continue;
                }
                if !self.st.nodes[n].online || self.st.nodes[n].unclean {
                    continue;
                }
                let task = Task::Monitor(op.interval_ms);
                let exists = self.index.contains_key(&(Some(r), task.clone(), Some(n)));
                let id = self.action(Some(r), task, Some(n), exists);
                self.actions[id].target_rc = 7;
                if self.st.resources[r].running_on.contains(&n) {
                    let stop = self.action(Some(r), Task::Stop, Some(n), true);
                    self.orderings.push(Ordering {
                        first: stop,
                        then: id,
                        flags: flags::RUNNABLE_LEFT,
                    });
                }
                if !self.managed[r] {
                    self.actions[id].runnable = false;
                }
                // The probe on that node runs first.
                if let Some(&probe) = self.index.get(&(Some(r), Task::Monitor(0), Some(n))) {
                    self.orderings.push(Ordering {
                        first: probe,
                        then: id,
                        flags: flags::OPTIONAL,
                    });
                }
            }
        }
    }

    fn create_migration(&mut self, r: usize, current: usize, partial: bool) {
        let Some(target) = self.assigned[r] else {
            return;
        };
        let start = self.rsc_first(r, &Task::Start);
        let stop = self.rsc_first(r, &Task::Stop);
        let (Some(start), Some(stop)) = (start, stop) else {
            return;
        };
        let migrate_to = if partial {
            None
        } else {
            Some(self.action(Some(r), Task::MigrateTo, Some(current), true))
        };
        let migrate_from = self.action(Some(r), Task::MigrateFrom, Some(target), true);
        self.actions[start].migrate_runnable = true;
        self.actions[stop].migrate_runnable = true;
        self.actions[start].pseudo = true;
        self.actions[migrate_from].migrate_runnable = true;
        if let Some(mt) = migrate_to {
            self.actions[mt].migrate_runnable = true;
            self.actions[mt].needs = self.actions[start].needs;
            self.specs.push(OrderSpec {
                first: Side::Rsc(r, Task::Monitor(0)),
                then: Side::Action(mt),
                flags: flags::OPTIONAL,
            });
            self.specs.push(OrderSpec {
                first: Side::Action(mt),
                then: Side::Action(migrate_from),
                flags: flags::IMPLIES_FIRST_MIGRATABLE,
            });
        } else {
            self.actions[migrate_from].needs = self.actions[start].needs;
            self.specs.push(OrderSpec {
                first: Side::Rsc(r, Task::Monitor(0)),
                then: Side::Action(migrate_from),
                flags: flags::OPTIONAL,
            });
        }
        self.specs.push(OrderSpec {
            first: Side::Action(migrate_from),
            then: Side::Rsc(r, Task::Stop),
            flags: flags::IMPLIES_FIRST_MIGRATABLE,
        });
        self.specs.push(OrderSpec {
            first: Side::Action(migrate_from),
            then: Side::Rsc(r, Task::Start),
            flags: flags::IMPLIES_FIRST_MIGRATABLE | flags::PSEUDO_LEFT,
        });
    }

    /// The resource's newest action with this task (Pacemaker's `find_first_action`).
    fn rsc_first(&self, r: usize, task: &Task) -> Option<usize> {
        self.by_task
            .get(&(r, task.clone()))
            .and_then(|ids| ids.last().copied())
    }

    fn schedule_fencing_and_shutdowns(&mut self) {
        let have_managed = self.managed.iter().any(|&m| m);
        let mut last_fence: Option<usize> = None;
        let mut dc_down: Option<usize> = None;
        let mut fencing_ops = Vec::new();
        for n in 0..self.st.nodes.len() {
            let node = self.st.nodes[n].clone();
            if have_managed && node.unclean && self.can_fence(n) {
                let id = self.fence_action(n, false);
                self.actions[id].optional = false;
                if self.actions[id].reason.is_none() {
                    self.actions[id].reason = Some("node is unclean".to_string());
                }
                self.order_vs_fence(id);
                if node.is_dc {
                    dc_down = Some(id);
                } else {
                    if !self.cib.options.concurrent_fencing {
                        if let Some(prev) = last_fence {
                            self.orderings.push(Ordering {
                                first: prev,
                                then: id,
                                flags: flags::OPTIONAL,
                            });
                        }
                    }
                    last_fence = Some(id);
                    fencing_ops.push(id);
                }
            } else if node.online && node.shutdown {
                let id = self.action(None, Task::Shutdown, Some(n), false);
                // Stops on this node come first.
                let stops: Vec<usize> = self
                    .actions
                    .iter()
                    .filter(|a| a.node == Some(n) && a.task == Task::Stop && a.rsc.is_some())
                    .map(|a| a.id)
                    .collect();
                for s in stops {
                    self.orderings.push(Ordering {
                        first: s,
                        then: id,
                        flags: flags::RUNNABLE_LEFT,
                    });
                }
                if node.is_dc {
                    dc_down = Some(id);
                }
            }
        }
        if let Some(dc) = dc_down {
            if self.actions[dc].task == Task::Shutdown {
                let shutdowns: Vec<usize> = self
                    .actions
                    .iter()
                    .filter(|a| a.task == Task::Shutdown && a.id != dc)
                    .map(|a| a.id)
                    .collect();
                for s in shutdowns {
                    self.orderings.push(Ordering {
                        first: s,
                        then: dc,
                        flags: flags::OPTIONAL,
                    });
                }
            }
            if self.cib.options.concurrent_fencing {
                for f in fencing_ops {
                    self.orderings.push(Ordering {
                        first: f,
                        then: dc,
                        flags: flags::OPTIONAL,
                    });
                }
            } else if let Some(f) = last_fence {
                self.orderings.push(Ordering {
                    first: f,
                    then: dc,
                    flags: flags::OPTIONAL,
                });
            }
        }
    }

    /// Starts wait for fencing; stops on the fenced node become implied by it.
    fn order_vs_fence(&mut self, fence: usize) {
        let target = self.actions[fence].node.unwrap_or(0);
        for r in 0..self.st.resources.len() {
            if !self.managed[r] {
                continue;
            }
            let ids: Vec<usize> = self.by_rsc[r].iter().rev().copied().collect();
            for &id in &ids {
                let needs = self.actions[id].needs;
                let is_start = self.actions[id].task == Task::Start;
                if needs == "fencing" {
                    self.orderings.push(Ordering {
                        first: fence,
                        then: id,
                        flags: flags::OPTIONAL,
                    });
                } else if needs == "quorum"
                    && is_start
                    && self.allowed[r][target].is_some()
                    && !self.st.resources[r].known_on[target]
                {
                    self.orderings.push(Ordering {
                        first: fence,
                        then: id,
                        flags: flags::RUNNABLE_LEFT,
                    });
                }
            }
            let order_implicit = self.settings[r].requires == "fencing";
            for &id in &ids {
                let a = &mut self.actions[id];
                if a.task == Task::Stop && a.node == Some(target) {
                    a.pseudo = true;
                    a.runnable = true;
                    if order_implicit {
                        self.orderings.push(Ordering {
                            first: fence,
                            then: id,
                            flags: flags::OPTIONAL,
                        });
                    }
                }
            }
        }
    }

    // ---- orderings -----------------------------------------------------------------------

    fn side_actions(&mut self, side: &Side, create: bool) -> Vec<usize> {
        match side {
            Side::Action(id) => vec![*id],
            Side::Group(key) => self
                .index
                .get(&(None, Task::Group(key.clone()), None))
                .map(|&id| vec![id])
                .unwrap_or_default(),
            Side::Rsc(r, task) => {
                let found: Vec<usize> = self
                    .by_task
                    .get(&(*r, task.clone()))
                    .map(|ids| ids.iter().rev().copied().collect())
                    .unwrap_or_default();
                if found.is_empty() && create {
                    let role = self.st.resources[*r].role;
                    if role <= Role::Stopped && *task == Task::Stop {
                        return found;
                    }
                    return vec![self.action(Some(*r), task.clone(), None, true)];
                }
                found
            }
        }
    }

    fn apply_orderings(&mut self) {
        // "stop A then B" orderings, for the probes-first rule below.
        let mut stops_first: Vec<(usize, Vec<usize>, u32)> = Vec::new();
        for spec in std::mem::take(&mut self.specs) {
            let same_rsc =
                matches!((&spec.first, &spec.then), (Side::Rsc(a, _), Side::Rsc(b, _)) if a == b);
            let create = !same_rsc && spec.flags & flags::NO_CREATE == 0;
            let firsts = self.side_actions(&spec.first, create);
            let thens = self.side_actions(&spec.then, false);
            let first_rsc = match &spec.first {
                Side::Rsc(r, Task::Stop) => Some(*r),
                Side::Action(a) if self.actions[*a].task == Task::Stop => self.actions[*a].rsc,
                _ => None,
            };
            let then_rsc = match &spec.then {
                Side::Rsc(r, _) => Some(*r),
                Side::Action(a) => self.actions[*a].rsc,
                Side::Group(_) => None,
            };
            // The constraint counts here even when the stop itself does not exist (a group's
            // graph link is not a constraint of its own).
            let graph_link = matches!(spec.then, Side::Group(_));
            if let Some(a) = first_rsc.filter(|_| !graph_link) {
                if then_rsc != Some(a) && !thens.is_empty() {
                    stops_first.push((a, thens.clone(), spec.flags & flags::SAME_NODE));
                }
            }
            if firsts.is_empty() {
                continue;
            }
            for &f in &firsts {
                for &t in &thens {
                    let same_node = self.actions[f].node == self.actions[t].node;
                    if f != t && (spec.flags & flags::SAME_NODE == 0 || same_node) {
                        self.orderings.push(Ordering {
                            first: f,
                            then: t,
                            flags: spec.flags,
                        });
                    }
                }
            }
        }
        self.order_probes(&stops_first);
        self.block_colocated_starts();
        self.propagate();
        self.settle_migrations();
    }

    /// `pcmk__order_probes`: a probe comes before the stops of what a start it precedes would
    /// restart (transitively along "implies then" orderings), and before whatever must wait
    /// for its resource's stop (the probe may find it running).
    fn order_probes(&mut self, stops_first: &[(usize, Vec<usize>, u32)]) {
        let mut after: Vec<Vec<(usize, u32)>> = vec![Vec::new(); self.actions.len()];
        for o in &self.orderings {
            after[o.first].push((o.then, o.flags));
        }
        let mut added = Vec::new();
        let mut visited = vec![0u32; self.actions.len()];
        let mut generation = 0u32;
        for r in self.order.clone() {
            let probes: Vec<usize> = self.by_rsc[r]
                .iter()
                .rev()
                .copied()
                .filter(|&a| self.actions[a].task == Task::Monitor(0))
                .collect();
            for probe in probes {
                for &(then, _) in &after[probe] {
                    // A fresh generation marks the actions this walk has visited.
                    generation += 1;
                    self.restart_orderings(
                        probe,
                        then,
                        &after,
                        (&mut visited, generation),
                        &mut added,
                    );
                }
            }
        }
        for &(a, ref thens, same_node) in stops_first {
            let probes: Vec<usize> = self.by_rsc[a]
                .iter()
                .rev()
                .copied()
                .filter(|&x| self.actions[x].task == Task::Monitor(0))
                .collect();
            for &p in &probes {
                for &t in thens {
                    if same_node != 0 && self.actions[p].node != self.actions[t].node {
                        continue;
                    }
                    added.push(Ordering {
                        first: p,
                        then: t,
                        flags: flags::OPTIONAL | same_node,
                    });
                }
            }
        }
        self.orderings.extend(added);
    }

    fn restart_orderings(
        &self,
        probe: usize,
        then: usize,
        after: &[Vec<(usize, u32)>],
        (visited, generation): (&mut [u32], u32),
        added: &mut Vec<Ordering>,
    ) {
        if visited[then] == generation {
            return;
        }
        visited[then] = generation;
        let probe_rsc = self.actions[probe].rsc;
        let a = &self.actions[then];
        if a.rsc.is_some() && a.rsc != probe_rsc && a.task == Task::Start {
            if let Some(r) = a.rsc {
                for &stop in self.by_rsc[r].iter().rev() {
                    let s = &self.actions[stop];
                    if s.task == Task::Stop && !s.pseudo {
                        added.push(Ordering {
                            first: probe,
                            then: stop,
                            flags: flags::OPTIONAL,
                        });
                    }
                }
            }
        }
        for &(next, f) in &after[then] {
            if f & flags::IMPLIES_THEN != 0 {
                self.restart_orderings(probe, next, after, (&mut *visited, generation), added);
            }
        }
    }

    /// An unrunnable start blocks the starts of resources mandatorily colocated with it.
    fn block_colocated_starts(&mut self) {
        let ids: Vec<usize> = (0..self.actions.len()).rev().collect();
        for id in ids {
            let a = &self.actions[id];
            let (Some(r), false, Task::Start) = (a.rsc, a.runnable, &a.task) else {
                continue;
            };
            for ci in self.with_this[r].clone() {
                let c = &self.colocs[ci];
                if c.score < INFINITY {
                    continue;
                }
                let d = c.dependent;
                let reason = format!("colocation with {}", self.st.resources[r].id);
                for &id in self.by_rsc[d].iter().rev() {
                    let a = &mut self.actions[id];
                    if a.runnable && a.task == Task::Start {
                        a.runnable = false;
                        set_reason(a, &reason, false);
                    }
                }
            }
        }
    }

    /// Propagates "required" and "unrunnable" along orderings until nothing changes.
    ///
    /// Requirements flowing forward (a required or unrunnable action and what follows it) settle
    /// before those flowing backward (a required stop and what must stop first), which is the
    /// order in which Pacemaker's recursive update usually meets them; it decides which reason
    /// an action keeps.
    fn propagate(&mut self) {
        let has_one_or_more = self
            .actions
            .iter()
            .any(|a| matches!(a.task, Task::OneOrMore(_)));
        let mut rounds = 0;
        loop {
            rounds += 1;
            let mut changed = true;
            while changed && rounds < 1000 {
                changed = has_one_or_more && self.settle_one_or_more();
                rounds += 1;
                for i in 0..self.orderings.len() {
                    let mut o = self.orderings[i];
                    o.flags &= !flags::IMPLIES_FIRST;
                    changed |= self.update_pair(o);
                }
            }
            let mut changed = false;
            for i in 0..self.orderings.len() {
                let o = self.orderings[i];
                changed |= self.update_pair(o);
            }
            if !changed || rounds >= 1000 {
                break;
            }
        }
    }

    /// A one-or-more pseudo-action can run only if one of its inputs can.
    fn settle_one_or_more(&mut self) -> bool {
        let mut changed = false;
        for i in 0..self.actions.len() {
            if !matches!(self.actions[i].task, Task::OneOrMore(_)) {
                continue;
            }
            let any = self.orderings.iter().any(|o| {
                o.then == i && o.flags & flags::ONE_OR_MORE != 0 && self.actions[o.first].runnable
            });
            if !any && self.actions[i].runnable {
                self.actions[i].runnable = false;
                changed = true;
            }
        }
        changed
    }

    fn reason_text(&self, change: &str, cause: usize) -> String {
        let c = &self.actions[cause];
        match c.rsc {
            Some(r) => format!(
                "{change} {} {}",
                self.st.resources[r].id,
                task_word(&c.task)
            ),
            None => format!("{change} {}", task_word(&c.task)),
        }
    }

    fn set_flag_reason(&mut self, target: usize, cause: usize, change: &str) {
        if self.actions[target].rsc != self.actions[cause].rsc {
            let text = self.reason_text(change, cause);
            set_reason(&mut self.actions[target], &text, false);
        }
    }

    /// Applies one ordering's effects, in the order Pacemaker's
    /// `pcmk__update_ordered_actions` applies them (it decides which reason an action keeps).
    fn update_pair(&mut self, o: Ordering) -> bool {
        let (f, t) = (o.first, o.then);
        let mut changed = false;
        let first = Snapshot::of(&self.actions[f]);
        let then = Snapshot::of(&self.actions[t]);
        if o.flags & flags::ASYMMETRICAL != 0 && !first.runnable && then.runnable {
            let stopped = then
                .rsc
                .is_some_and(|r| self.st.resources[r].role <= Role::Stopped);
            if stopped || !then.optional {
                self.actions[t].runnable = false;
                self.set_flag_reason(t, f, "unrunnable");
                changed = true;
            }
        }
        if o.flags & flags::IMPLIES_FIRST != 0 && !then.optional && !then.migrate_runnable {
            if first.optional {
                self.actions[f].optional = false;
                self.set_flag_reason(f, t, "required");
                changed = true;
            }
            // Only a resource that comes back up (moves or restarts) makes what depends on it
            // unable to migrate; one that just stops blocks it through its start instead.
            let then_restarts = then.rsc.is_some_and(|r| {
                self.by_rsc[r].iter().any(|&a| {
                    let a = &self.actions[a];
                    a.task == Task::Start && a.runnable && !a.optional
                })
            });
            if first.migrate_runnable && then_restarts {
                self.actions[f].migrate_runnable = false;
                if first.rsc != then.rsc {
                    let text = self.reason_text("unrunnable", t);
                    set_reason(&mut self.actions[f], &text, true);
                }
                changed = true;
            }
        }
        // Waiting for a stop that cannot happen (a required one, or one of a blocked resource
        // that stays active) blocks what comes after it.
        let blocked_first = first
            .rsc
            .is_some_and(|r| self.st.resources[r].blocked && !self.managed[r]);
        if o.flags & (flags::IMPLIES_FIRST | flags::IMPLIES_THEN) != 0
            && (!first.optional || blocked_first)
            && !first.runnable
            && then.runnable
            && first.is_stop
        {
            self.actions[t].runnable = false;
            changed = true;
        }
        if o.flags & flags::IMPLIES_FIRST_MIGRATABLE != 0 {
            if (!then.migrate_runnable || !then.runnable) && first.runnable {
                self.actions[f].runnable = false;
                changed = true;
            }
            if !then.optional && first.optional {
                self.actions[f].optional = false;
                changed = true;
            }
        }
        if o.flags & flags::RUNNABLE_LEFT != 0
            && !first.runnable
            && then.runnable
            && !(o.flags & flags::PSEUDO_LEFT != 0 && first.pseudo)
        {
            self.actions[t].runnable = false;
            self.set_flag_reason(t, f, "unrunnable");
            changed = true;
        }
        // A migrating resource's start is a formality: it does not force a restart after it.
        let first_migrating = first.is_start && first.migrate_runnable;
        if o.flags & flags::IMPLIES_THEN != 0
            && then.optional
            && !first.optional
            && !then.migrate_runnable
            && !first_migrating
        {
            self.actions[t].optional = false;
            self.set_flag_reason(t, f, "required");
            changed = true;
        }
        if o.flags & flags::IMPLIES_FIRST_PRINTED != 0
            && !self.actions[t].optional
            && !self.actions[f].print_always
        {
            self.actions[f].print_always = true;
            changed = true;
        }
        if o.flags & flags::IMPLIES_THEN_PRINTED != 0
            && !self.actions[f].optional
            && !self.actions[t].print_always
        {
            self.actions[t].print_always = true;
            changed = true;
        }
        if o.flags & flags::RESTART != 0 {
            let then = Snapshot::of(&self.actions[t]);
            let managed = then.rsc.is_some_and(|r| self.managed[r]);
            let restart = !then.optional;
            let stop = !then.runnable && managed && first.rsc == then.rsc;
            if restart || stop {
                let first_now = Snapshot::of(&self.actions[f]);
                if first_now.optional && (first_now.runnable || restart) {
                    self.actions[f].optional = false;
                    changed = true;
                }
                if !then.migrate_runnable && self.actions[f].migrate_runnable {
                    self.actions[f].migrate_runnable = false;
                    changed = true;
                }
                let first_now = Snapshot::of(&self.actions[f]);
                if !first_now.optional && !first_now.runnable && then.runnable {
                    self.actions[t].runnable = false;
                    changed = true;
                }
            }
        }
        changed
    }

    /// A migration whose migrate_from cannot run falls back to a real stop and start.
    fn settle_migrations(&mut self) {
        for r in 0..self.st.resources.len() {
            let Some(from) = self.rsc_first(r, &Task::MigrateFrom) else {
                continue;
            };
            if self.actions[from].runnable {
                continue;
            }
            if let Some(start) = self.rsc_first(r, &Task::Start) {
                self.actions[start].pseudo = false;
                self.actions[start].migrate_runnable = false;
            }
            if let Some(stop) = self.rsc_first(r, &Task::Stop) {
                self.actions[stop].migrate_runnable = false;
            }
        }
    }

    fn finish(self) -> Transition {
        Transition {
            assigned: self.assigned,
            next_role: self.next_role,
            scores: self.allowed,
            explanations: self.explain,
            settings: self.settings,
            actions: self.actions,
            by_rsc: self.by_rsc,
            order: self.order,
            orderings: self.orderings,
            group_actions: self.group_actions,
            status: {
                let mut st = self.st;
                for (r, m) in self.managed.iter().enumerate() {
                    st.resources[r].managed = *m;
                }
                st
            },
        }
    }
}

/// The parts of an action the ordering rules read (cheap to copy).
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    rsc: Option<usize>,
    optional: bool,
    runnable: bool,
    pseudo: bool,
    migrate_runnable: bool,
    is_start: bool,
    is_stop: bool,
}

impl Snapshot {
    fn of(a: &Action) -> Snapshot {
        Snapshot {
            rsc: a.rsc,
            optional: a.optional,
            runnable: a.runnable,
            pseudo: a.pseudo,
            migrate_runnable: a.migrate_runnable,
            is_start: a.task == Task::Start,
            is_stop: a.task == Task::Stop,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct MergeFlags {
    forward: bool,
    rollback: bool,
    positive: bool,
}

#[derive(Debug, Clone, Copy)]
enum Symmetry {
    Symmetric,
    Asymmetric,
    Inverse,
}

fn needs_of(requires: &str) -> &'static str {
    match requires {
        "nothing" => "nothing",
        "fencing" | "unfencing" => "fencing",
        _ => "quorum",
    }
}

fn task_of(action: &str) -> Option<Task> {
    Some(match action {
        "start" => Task::Start,
        "stop" => Task::Stop,
        "monitor" => Task::Monitor(0),
        _ => return None,
    })
}

fn invert(task: &Task) -> Option<Task> {
    match task {
        Task::Start => Some(Task::Stop),
        Task::Stop => Some(Task::Start),
        _ => None,
    }
}

fn task_word(task: &Task) -> &str {
    task.name()
}

/// `pe_action_set_reason` without overwrite: the first reason sticks.
fn set_reason(a: &mut Action, reason: &str, overwrite: bool) {
    if a.reason.is_none() || overwrite {
        a.reason = Some(reason.to_string());
    }
}

/// The node a resource counts as active on (`pe__find_active_on`): the migration source of a
/// partial migration; for a resource that does not need fencing, the first clean online node;
/// otherwise the first node it is active on.
pub fn active_node(st: &ClusterStatus, r: usize, settings: &RscSettings) -> Option<usize> {
    let rs = &st.resources[r];
    if let Some(src) = rs.partial_migration_source {
        if rs.running_on.contains(&src) {
            return Some(src);
        }
    }
    if settings.requires != "fencing" {
        let happy = rs
            .running_on
            .iter()
            .copied()
            .find(|&n| st.nodes[n].online && !st.nodes[n].unclean);
        if happy.is_some() {
            return happy;
        }
    }
    rs.running_on.first().copied()
}

/// The score each node gets for resource `r` (for `-s`), by node index.
pub fn node_scores(t: &Transition, r: usize) -> Vec<(usize, i32)> {
    t.scores[r]
        .iter()
        .enumerate()
        .filter_map(|(n, w)| w.map(|w| (n, w)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverts_actions() {
        assert_eq!(invert(&Task::Start), Some(Task::Stop));
        assert_eq!(task_of("stop"), Some(Task::Stop));
        assert_eq!(needs_of("unfencing"), "fencing");
    }
}
