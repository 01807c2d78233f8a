//! `hapx status`: crm_mon 2.1.5's one-shot text output, rendered from the CIB itself.
//!
//! The embedded cluster runs without Pacemaker, so `status` cannot ask `crm_mon`. This module
//! reads the configuration and the status section through hapx-cib's unpacking (the same
//! node states, roles, failures and flags Pacemaker's `unpack.c` derives) and prints them the
//! way `crm_mon -1` does: the cluster summary, the node list, the resources (active ones, or
//! all with `-r`), node attributes (`-A`), the migration summary (`-f`) and the failed
//! resource actions. On a live cluster the shell keeps calling the real `crm_mon`.
//!
//! - [`options`]: the crm_mon flags `status` accepts.
//! - [`history`]: operation history records: failed actions and failed probes.
//! - [`text`]: date, interval and exit-code wording shared by the sections.

pub mod history;
pub mod options;
pub mod text;

use std::collections::HashMap;

use hapx_cib::model::{Cib, ModelError, is_true};
use hapx_cib::score;
use hapx_cib::status::{self, ClusterStatus, NodeStatus, Role, RscStatus};
use hapx_cib::xml::{Document, Element};

pub use options::MonOptions;

/// Why the status cannot be rendered natively.
#[derive(Debug, thiserror::Error)]
pub enum MonError {
    #[error("the CIB cannot be read: {0}")]
    Model(#[from] ModelError),
    /// Configuration the native renderer does not model (clones, bundles ...).
    #[error("status of {0} is not rendered natively")]
    Unsupported(String),
}

/// Renders `crm_mon -1` for the CIB in `doc`, as seen at `now` (seconds since the epoch).
pub fn render(doc: Document, opts: &MonOptions, now: i64) -> Result<String, MonError> {
    let cib = Cib::from_document(doc)?;
    if let Some(what) = unsupported_resources(&cib.doc.root) {
        return Err(MonError::Unsupported(what));
    }
    let st = status::unpack(&cib, now);
    let view = View::new(&cib, &st, opts.rsc_only);
    let mut out = String::new();
    view.summary(&mut out, now);
    view.node_list(&mut out);
    view.resources(&mut out, opts);
    if opts.node_attributes {
        view.node_attributes(&mut out);
    }
    if opts.fail_counts {
        view.migration_summary(&mut out);
    }
    view.failed_actions(&mut out);
    Ok(out)
}

/// `crm_resource --list`: every resource with its state, without nodes.
pub fn list(doc: Document) -> Result<String, MonError> {
    let cib = Cib::from_document(doc)?;
    if let Some(what) = unsupported_resources(&cib.doc.root) {
        return Err(MonError::Unsupported(what));
    }
    let st = status::unpack(&cib, text::now());
    let view = View::new(&cib, &st, true);
    let mut out = String::new();
    let opts = MonOptions {
        inactive: true,
        ..MonOptions::default()
    };
    view.resources(&mut out, &opts);
    trim_final_blank(&mut out);
    if cib.primitives.is_empty() {
        return Ok("NO resources configured\n".into());
    }
    Ok(out)
}

/// `crm_resource --locate --resource RSC`: the nodes the resource (a primitive, or any
/// member of a group) is active on; `None` when there is no such resource. A clone, bundle
/// or one of their members is [`MonError::Unsupported`].
pub fn locate(doc: &Document, rsc: &str) -> Result<Option<Vec<String>>, MonError> {
    let unmodelled = doc
        .root
        .path(&["configuration", "resources"])
        .into_iter()
        .flat_map(|r| r.elements())
        .find(|e| {
            matches!(e.name.as_str(), "clone" | "master" | "bundle")
                && e.descendants().any(|d| d.id() == Some(rsc))
        });
    if let Some(e) = unmodelled {
        let what = format!("<{} id=\"{}\">", e.name, e.id().unwrap_or_default());
        return Err(MonError::Unsupported(what));
    }
    let cib = Cib::from_document(doc.clone())?;
    let st = status::unpack(&cib, text::now());
    let members: Vec<&str> = match cib.groups.iter().find(|g| g.id == rsc) {
        Some(g) => g.members.iter().map(String::as_str).collect(),
        None if st.resources.iter().any(|r| r.id == rsc) => vec![rsc],
        None => return Ok(None),
    };
    let mut nodes: Vec<String> = Vec::new();
    for r in st
        .resources
        .iter()
        .filter(|r| members.contains(&r.id.as_str()))
    {
        for &n in &r.running_on {
            let name = &st.nodes[n].uname;
            if !nodes.contains(name) {
                nodes.push(name.clone());
            }
        }
    }
    Ok(Some(nodes))
}

/// The first resource the renderer does not model, as `<tag id="...">`.
fn unsupported_resources(cib: &Element) -> Option<String> {
    let resources = cib.path(&["configuration", "resources"])?;
    resources
        .elements()
        .find(|e| matches!(e.name.as_str(), "clone" | "master" | "bundle"))
        .map(|e| format!("<{} id=\"{}\">", e.name, e.id().unwrap_or_default()))
}

/// The unpacked cluster plus what the sections need to look up.
struct View<'a> {
    cib: &'a Cib,
    st: &'a ClusterStatus,
    failed: Vec<history::FailedOp>,
    pending: Vec<history::PendingOp>,
    /// Leave nodes out of resource lines (`crm_resource --list`).
    rsc_only: bool,
    /// Primitive and group elements by id, and resource indexes by id (looked up per line).
    elements: HashMap<&'a str, &'a Element>,
    indexes: HashMap<&'a str, usize>,
}

impl<'a> View<'a> {
    fn new(cib: &'a Cib, st: &'a ClusterStatus, rsc_only: bool) -> View<'a> {
        let failed = history::failed_ops(cib, st);
        let pending = history::pending_ops(cib);
        let elements = cib
            .doc
            .root
            .path(&["configuration", "resources"])
            .into_iter()
            .flat_map(|r| r.descendants())
            .filter(|e| matches!(e.name.as_str(), "primitive" | "group"))
            .filter_map(|e| Some((e.id()?, e)))
            .collect();
        let indexes = st
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        View {
            cib,
            st,
            failed,
            pending,
            rsc_only,
            elements,
            indexes,
        }
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.cib.options.attrs.get(name)
    }

    fn summary(&self, out: &mut String, now: i64) {
        let root = &self.cib.doc.root;
        out.push_str("Cluster Summary:\n");
        let stack = self.option("cluster-infrastructure").unwrap_or("unknown");
        out.push_str(&format!("  * Stack: {stack}\n"));
        let dc = self
            .cib
            .dc_uuid
            .as_deref()
            .and_then(|id| self.st.nodes.iter().find(|n| n.id == id));
        match dc {
            Some(dc) => out.push_str(&format!(
                "  * Current DC: {} (version {}) - partition {} quorum\n",
                dc.uname,
                self.option("dc-version").unwrap_or("unknown"),
                if root.attr("have-quorum").is_some_and(is_true) {
                    "with"
                } else {
                    "WITHOUT"
                }
            )),
            None => out.push_str("  * Current DC: NONE\n"),
        }
        out.push_str(&format!("  * Last updated: {}\n", text::epoch_to_str(now)));
        out.push_str(&format!("  * Last change:  {}\n", last_change(root)));
        let nodes = self.cib.nodes.len();
        out.push_str(&format!(
            "  * {nodes} node{} configured\n",
            text::plural(nodes)
        ));
        out.push_str(&format!("  * {}\n", self.instance_counts()));
        self.maintenance_banner(out);
        out.push('\n');
    }

    /// "N resource instances configured (D DISABLED, B BLOCKED ...)" (`pe__count_common`).
    fn instance_counts(&self) -> String {
        let (mut n, mut disabled, mut blocked) = (0, 0, 0);
        for (i, r) in self.st.resources.iter().enumerate() {
            if r.orphan && r.role <= Role::Stopped {
                continue;
            }
            n += 1;
            if self
                .target_role(i)
                .is_some_and(|t| Role::parse(t) == Role::Stopped)
            {
                disabled += 1;
            }
            if r.blocked {
                blocked += 1;
            }
        }
        let head = format!("{n} resource instance{} configured", text::plural(n));
        let blocked_text = "BLOCKED from further action due to failure";
        match (disabled, blocked) {
            (0, 0) => head,
            (d, 0) => format!("{head} ({d} DISABLED)"),
            (0, b) => format!("{head} ({b} {blocked_text})"),
            (d, b) => format!("{head} ({d} DISABLED, {b} {blocked_text})"),
        }
    }

    fn maintenance_banner(&self, out: &mut String) {
        if self.cib.options.maintenance_mode {
            out.push_str("\n              *** Resource management is DISABLED ***\n");
            out.push_str("  The cluster will not attempt to start, stop or recover services\n");
        } else if self.cib.options.stop_all_resources {
            out.push_str("\n    *** Resource management is DISABLED ***\n");
            out.push_str("  The cluster will keep all resources stopped\n");
        }
    }

    /// The resource's effective `target-role`: its own meta, else its group's, else defaults.
    fn target_role(&self, i: usize) -> Option<&str> {
        let p = &self.st.configs[i];
        let own = self
            .rsc_element(&p.id)
            .and_then(|e| meta_of(e, "target-role"));
        own.or_else(|| {
            p.group
                .as_deref()
                .and_then(|g| self.rsc_element(g))
                .and_then(|g| meta_of(g, "target-role"))
        })
        .or_else(|| p.meta.get("target-role"))
    }

    fn rsc_element(&self, id: &str) -> Option<&'a Element> {
        self.elements.get(id).copied()
    }

    fn node_list(&self, out: &mut String) {
        if self.st.nodes.is_empty() {
            return;
        }
        out.push_str("Node List:\n");
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for (i, n) in self.st.nodes.iter().enumerate() {
            let health = self.health(n);
            if n.unclean || n.pending || n.standby || n.maintenance || health <= 0 {
                let mut line = format!("  * Node {}: {}", n.uname, node_state(n));
                if health < 0 {
                    line.push_str(" (health is RED)");
                } else if health == 0 {
                    line.push_str(" (health is YELLOW)");
                }
                out.push_str(&line);
                out.push('\n');
            } else if n.online {
                online.push(self.st.nodes[i].uname.as_str());
            } else {
                offline.push(self.st.nodes[i].uname.as_str());
            }
        }
        if !online.is_empty() {
            out.push_str(&format!("  * Online: [ {} ]\n", online.join(" ")));
        }
        if !offline.is_empty() {
            out.push_str(&format!("  * OFFLINE: [ {} ]\n", offline.join(" ")));
        }
        out.push('\n');
    }

    /// `pe__node_health`: 1 healthy (or no strategy), 0 yellow, -1 red. The words `red` and
    /// `yellow` count as such whatever scores the strategy gives them.
    fn health(&self, n: &NodeStatus) -> i32 {
        if matches!(self.cib.options.node_health_strategy.as_str(), "none" | "") {
            return 1;
        }
        let h = &self.cib.options.health;
        let mut rc = 1;
        for (name, value) in &n.attrs.0 {
            if !name.starts_with("#health") {
                continue;
            }
            if value.eq_ignore_ascii_case("red") {
                return -1;
            } else if value.eq_ignore_ascii_case("yellow") {
                rc = 0;
                continue;
            }
            let s = score::parse(value, h);
            if s <= h.red {
                return -1;
            } else if s <= h.yellow && h.yellow != h.green {
                rc = 0;
            }
        }
        rc
    }

    fn resources(&self, out: &mut String, opts: &MonOptions) {
        out.push_str(if opts.inactive {
            "Full List of Resources:\n"
        } else {
            "Active Resources:\n"
        });
        let mut printed = false;
        // Pacemaker lists resources by priority (highest first), then in configuration order.
        let mut top: Vec<&Element> = self
            .cib
            .doc
            .root
            .path(&["configuration", "resources"])
            .into_iter()
            .flat_map(|r| r.elements())
            .collect();
        top.sort_by_key(|e| std::cmp::Reverse(self.priority(e)));
        for e in top {
            let id = e.id().unwrap_or_default();
            match e.name.as_str() {
                "primitive" => {
                    if let Some(i) = self.index(id)
                        && (opts.inactive || self.active(i))
                    {
                        out.push_str(&format!("  * {}\n", self.primitive_line(i)));
                        printed = true;
                    }
                }
                "group" => printed |= self.group(out, e, opts),
                _ => {}
            }
        }
        // Orphans (history of resources no longer configured) come last, when active.
        for (i, r) in self.st.resources.iter().enumerate() {
            if r.orphan && self.active(i) {
                out.push_str(&format!("  * {}\n", self.primitive_line(i)));
                printed = true;
            }
        }
        if !printed {
            out.push_str(if opts.inactive {
                "  * No resources\n"
            } else {
                "  * No active resources\n"
            });
        }
        out.push('\n');
    }

    fn priority(&self, e: &Element) -> i32 {
        let defaults = self
            .cib
            .doc
            .root
            .path(&["configuration", "rsc_defaults"])
            .and_then(|d| meta_of(d, "priority"));
        meta_of(e, "priority")
            .or(defaults)
            .map(score::parse_plain)
            .unwrap_or(0)
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.indexes.get(id).copied()
    }

    /// `native_active(rsc, TRUE)`.
    fn active(&self, i: usize) -> bool {
        let r = &self.st.resources[i];
        r.running_on.iter().any(|&n| {
            let node = &self.st.nodes[n];
            node.unclean || node.online || !r.managed
        })
    }

    fn group(&self, out: &mut String, g: &Element, opts: &MonOptions) -> bool {
        let members: Vec<usize> = g
            .children_named("primitive")
            .filter_map(|p| self.index(p.id().unwrap_or_default()))
            .collect();
        let active_count = members.iter().filter(|&&i| self.active(i)).count();
        if active_count == 0 && !opts.inactive {
            return false;
        }
        let mut flags = Vec::new();
        let inactive = members.len() - active_count;
        if active_count > 0 && inactive > 0 && !opts.inactive {
            flags.push(format!(
                "{inactive} member{} inactive",
                text::plural(inactive)
            ));
        }
        let managed = meta_of(g, "is-managed").is_none_or(is_true)
            && meta_of(g, "maintenance").is_none_or(|m| !is_true(m))
            && self.cib.options.is_managed_default
            && !self.cib.options.maintenance_mode;
        if !managed {
            flags.push("unmanaged".into());
        }
        if meta_of(g, "target-role").is_some_and(|t| Role::parse(t) == Role::Stopped) {
            flags.push("disabled".into());
        }
        let id = g.id().unwrap_or_default();
        if flags.is_empty() {
            out.push_str(&format!("  * Resource Group: {id}:\n"));
        } else {
            out.push_str(&format!(
                "  * Resource Group: {id} ({}):\n",
                flags.join(", ")
            ));
        }
        for &i in &members {
            if opts.inactive || self.active(i) {
                out.push_str(&format!("    * {}\n", self.primitive_line(i)));
            }
        }
        true
    }

    /// `pcmk__native_output_string`: `ID\t(AGENT):\t STATE NODE (FLAGS)`.
    fn primitive_line(&self, i: usize) -> String {
        let r = &self.st.resources[i];
        let p = &self.st.configs[i];
        let mut s = format!("{}\t({}):\t", p.id, agent_text(p, self.rsc_element(&p.id)));
        let multiple = r.running_on.len() > 1;
        let pending = self.pending.iter().find(|o| o.rsc == r.id);
        let node = if multiple || self.rsc_only {
            None
        } else {
            r.running_on
                .first()
                .map(|&n| &self.st.nodes[n])
                .or_else(|| pending.and_then(|o| self.st.nodes.iter().find(|n| n.uname == o.node)))
        };
        if r.orphan {
            s.push_str(" ORPHANED");
        }
        if r.failed {
            s.push_str(" FAILED");
            if r.role > Role::Unpromoted {
                s.push(' ');
                s.push_str(r.role.text());
            }
        } else {
            s.push(' ');
            s.push_str(
                pending
                    .and_then(history::PendingOp::state)
                    .unwrap_or(displayable_role(r).text()),
            );
        }
        if let Some(n) = node {
            s.push(' ');
            s.push_str(&n.uname);
        }
        if displayable_role(r) == Role::Stopped
            && let Some(rc) = self.failed_probe(&r.id, node.map(|n| n.uname.as_str()))
        {
            s.push_str(&format!(" ({}) ", text::exit_code(rc)));
        }
        let mut flags: Vec<&str> = Vec::new();
        if node.is_some_and(|n| !n.online && n.unclean) {
            flags.push("UNCLEAN");
        }
        if let Some(flag) = pending.and_then(history::PendingOp::flag) {
            flags.push(flag);
        }
        if self
            .target_role(i)
            .is_some_and(|t| Role::parse(t) == Role::Stopped)
        {
            flags.push("disabled");
        }
        // crm_mon 2.1.5 words a resource in maintenance as unmanaged.
        if r.blocked {
            flags.push("blocked");
        } else if r.maintenance || !r.managed {
            flags.push("unmanaged");
        }
        if r.failure_ignored {
            flags.push("failure ignored");
        }
        if !flags.is_empty() {
            s.push_str(&format!(" ({})", flags.join(", ")));
        }
        // crm_resource --list appends the description as a word, crm_mon in parentheses.
        if let Some(d) = &p.description {
            if self.rsc_only {
                s.push_str(&format!(" {d}"));
            } else if multiple {
                s.push_str(&format!(" ({d})"));
            }
        }
        if multiple && !self.rsc_only {
            let names: Vec<&str> = r
                .running_on
                .iter()
                .map(|&n| self.st.nodes[n].uname.as_str())
                .collect();
            s.push_str(&format!(" [ {} ]", names.join(" ")));
        }
        s
    }

    /// `pe__failed_probe_for_rsc`: the rc of a failed probe of the resource (on `node`).
    fn failed_probe(&self, rsc: &str, node: Option<&str>) -> Option<i32> {
        self.failed
            .iter()
            .find(|f| f.rsc == rsc && f.is_probe() && node.is_none_or(|n| n == f.node))
            .map(|f| f.rc)
    }

    /// "Node Attributes:" (`-A`): each online node's attributes (configured and transient),
    /// sorted by name, without the ones crm_mon filters out.
    fn node_attributes(&self, out: &mut String) {
        let mut text = String::new();
        for n in self.st.nodes.iter().filter(|n| n.online) {
            // Node attributes are a table: a later (transient) value replaces a configured one.
            let mut table = std::collections::BTreeMap::new();
            for (k, v) in &n.attrs.0 {
                if !is_internal_attr(k) {
                    table.insert(k.as_str(), v.as_str());
                }
            }
            if table.is_empty() {
                continue;
            }
            let attrs = table;
            text.push_str(&format!("  * Node: {}:\n", n.uname));
            for (k, v) in attrs {
                text.push_str(&format!("    * {k:<32}\t: {v:<10}\n"));
            }
        }
        if !text.is_empty() {
            out.push_str("Node Attributes:\n");
            out.push_str(&text);
            out.push('\n');
        }
    }

    fn history_ids(&self, n: &NodeStatus) -> Vec<&'a str> {
        let Some(section) = self.cib.doc.root.child("status") else {
            return Vec::new();
        };
        section
            .children_named("node_state")
            .filter(|s| s.id() == Some(n.id.as_str()) || s.attr("uname") == Some(&n.uname))
            .filter_map(|s| s.path(&["lrm", "lrm_resources"]))
            .flat_map(|l| l.children_named("lrm_resource"))
            .filter_map(|e| e.id())
            .collect()
    }

    fn transient_attrs(&self, n: &NodeStatus) -> Vec<(&'a str, &'a str)> {
        let Some(section) = self.cib.doc.root.child("status") else {
            return Vec::new();
        };
        section
            .children_named("node_state")
            .filter(|s| s.id() == Some(n.id.as_str()) || s.attr("uname") == Some(&n.uname))
            .filter_map(|s| s.child("transient_attributes"))
            .flat_map(|t| t.children_named("instance_attributes"))
            .flat_map(|set| set.children_named("nvpair"))
            .filter_map(|nv| Some((nv.attr("name")?, nv.attr("value").unwrap_or_default())))
            .collect()
    }

    /// "Migration Summary:" (`-f`): per node, each resource's raw fail count (failure-timeout
    /// not applied, as `pe_fc_default`), its migration-threshold and last failure.
    fn migration_summary(&self, out: &mut String) {
        // The heading comes with the first online node, even when nothing failed.
        if !self.st.nodes.iter().any(|n| n.online) {
            return;
        }
        out.push_str("Migration Summary:\n");
        for n in self.st.nodes.iter().filter(|n| n.online) {
            let attrs = self.transient_attrs(n);
            let mut lines = Vec::new();
            // The resources with history on the node, in the order the history lists them.
            for (i, r) in self
                .history_ids(n)
                .into_iter()
                .filter_map(|id| self.index(id).map(|i| (i, &self.st.resources[i])))
            {
                let (count, last) = raw_failcount(&attrs, &r.id);
                if count == 0 {
                    continue;
                }
                let threshold = self.st.configs[i]
                    .meta
                    .get("migration-threshold")
                    .map(score::parse_plain)
                    .unwrap_or(score::INFINITY);
                let mut line = format!(
                    "    * {}: migration-threshold={threshold} fail-count={count}",
                    r.id
                );
                if last > 0 {
                    line.push_str(&format!(" last-failure='{}'", text::epoch_to_str(last)));
                }
                lines.push(line);
            }
            if !lines.is_empty() {
                out.push_str(&format!("  * Node: {}:\n", n.uname));
                for l in lines {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }

    fn failed_actions(&self, out: &mut String) {
        let listed: Vec<&history::FailedOp> = self.failed.iter().filter(|f| !f.masked()).collect();
        if listed.is_empty() {
            trim_final_blank(out);
            return;
        }
        out.push_str("Failed Resource Actions:\n");
        for f in listed {
            out.push_str(&format!("  * {}\n", f.friendly()));
        }
    }
}

/// crm_mon ends without the blank line that separates sections.
fn trim_final_blank(out: &mut String) {
    if out.ends_with("\n\n") {
        out.pop();
    }
}

/// `last_changed_string`: cib-last-written, then " by USER via CLIENT on ORIGIN".
fn last_change(root: &Element) -> String {
    let mut s = root
        .attr("cib-last-written")
        .unwrap_or_default()
        .to_string();
    if let Some(u) = root.attr("update-user") {
        s.push_str(&format!(" by {u}"));
    }
    if let Some(c) = root.attr("update-client") {
        s.push_str(&format!(" via {c}"));
    }
    if let Some(o) = root.attr("update-origin") {
        s.push_str(&format!(" on {o}"));
    }
    s
}

/// `node_text_status`.
fn node_state(n: &NodeStatus) -> &'static str {
    if n.unclean {
        if n.online {
            "UNCLEAN (online)"
        } else if n.pending {
            "UNCLEAN (pending)"
        } else {
            "UNCLEAN (offline)"
        }
    } else if n.pending {
        "pending"
    } else if n.standby_onfail && n.online {
        "standby (on-fail)"
    } else if n.standby {
        match (n.online, n.running.is_empty()) {
            (true, false) => "standby (with active resources)",
            (true, true) => "standby",
            (false, _) => "OFFLINE (standby)",
        }
    } else if n.maintenance {
        if n.online {
            "maintenance"
        } else {
            "OFFLINE (maintenance)"
        }
    } else if n.online {
        "online"
    } else {
        "OFFLINE"
    }
}

fn displayable_role(r: &RscStatus) -> Role {
    if r.role == Role::Unknown {
        Role::Stopped
    } else {
        r.role
    }
}

/// `class:provider:type` as written in the primitive (crm_mon does not canonicalise it).
fn agent_text(p: &hapx_cib::model::Primitive, xml: Option<&Element>) -> String {
    let attr = |name: &str, dflt: &str| {
        xml.and_then(|e| e.attr(name))
            .map(str::to_string)
            .unwrap_or_else(|| dflt.to_string())
    };
    let class = attr("class", &p.class);
    let kind = attr("type", &p.agent);
    match (class.as_str(), p.provider.as_deref()) {
        ("ocf", Some(provider)) => format!("{class}:{provider}:{kind}"),
        _ => format!("{class}:{kind}"),
    }
}

fn meta_of<'e>(e: &'e Element, name: &str) -> Option<&'e str> {
    e.children_named("meta_attributes")
        .flat_map(|m| m.children_named("nvpair"))
        .find(|n| n.attr("name") == Some(name))
        .and_then(|n| n.attr("value"))
}

/// crm_mon's filter for "Node Attributes": names starting with one of these are not shown.
fn is_internal_attr(name: &str) -> bool {
    [
        "fail-count-",
        "last-failure-",
        "shutdown",
        "terminate",
        "standby",
        "#",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// The summed `fail-count-RSC[#OP_INTERVAL]` and the latest `last-failure-RSC[...]`.
fn raw_failcount(attrs: &[(&str, &str)], rsc: &str) -> (i32, i64) {
    let matches = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(rsc))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
    };
    let (mut count, mut last) = (0, 0);
    for (k, v) in attrs {
        if matches(k, "fail-count-") {
            count = score::add(count, score::parse_plain(v));
        } else if matches(k, "last-failure-") {
            last = last.max(v.trim().parse::<i64>().unwrap_or(0));
        }
    }
    (count, last)
}
