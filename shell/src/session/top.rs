//! The top level besides `configure`: `status`, `resource`, `node` and `ra`.
//!
//! Resource and node commands change the CIB the way Pacemaker's own tools do (`crm_resource
//! --meta`, `crm_resource --move`, `crm_attribute -t nodes`), through the session's backend, and
//! commit at once; on a live cluster the commit goes through `cibadmin`. `status` is `crm_mon -1`
//! on a live cluster, as in crmsh; on a file CIB (the embedded cluster, `CIB_file`) hapx renders
//! the same text itself ([`crate::mon`]), as it does `resource status`, so no Pacemaker is needed.

use std::path::Path;
use std::process::Command;

use hapx_cib::xml::{Document, Element, Node};

use super::{Session, failcount};
use crate::backend::Version;
use crate::mon;
use crate::ra;

impl Session {
    /// `status [crm_mon options]`: on a live cluster `crm_mon -1`; on a file CIB (the embedded
    /// cluster, `CIB_file`) crm_mon's text rendered natively, so no Pacemaker is needed.
    pub(super) fn status(&mut self, args: &[String]) {
        if self.backend.is_live() {
            return self.crm_mon(args);
        }
        let opts = match mon::MonOptions::parse(args) {
            Ok(o) => o,
            Err(e) => return self.error(&e),
        };
        let Some(doc) = self.load_now() else { return };
        match mon::render(doc, &opts, mon::text::now()) {
            Ok(text) => self.print(&text),
            // Clones and bundles: crm_mon renders them when it is installed.
            Err(mon::MonError::Unsupported(what)) if crm_mon_installed() => {
                let _ = what;
                self.crm_mon(args)
            }
            Err(e) => self.error(&format!("status: {e}")),
        }
    }

    fn crm_mon(&mut self, args: &[String]) {
        let mut cmd = Command::new("crm_mon");
        cmd.arg("-1").args(args);
        if let Some(file) = self.backend.file() {
            cmd.env("CIB_file", file);
        }
        match cmd.output() {
            Ok(out) => {
                self.print(&String::from_utf8_lossy(&out.stdout));
                let err = String::from_utf8_lossy(&out.stderr);
                if !out.status.success() {
                    self.error(&format!("crm_mon: {}", err.trim()));
                }
            }
            Err(e) => self.error(&format!(
                "crm_mon not available, check your installation ({e})"
            )),
        }
    }

    /// Loads the CIB, lets `edit` change it, commits it at once.
    /// `client` is the Pacemaker tool that would make this change (`crm_resource` ...).
    fn edit_now(&mut self, client: &str, edit: impl FnOnce(&mut Document) -> Result<(), String>) {
        if !self.interactive && !self.failed.is_empty() {
            return self.error("refused: this input had errors; nothing was written");
        }
        let mut doc = match self.backend.load() {
            Ok(doc) => doc,
            Err(e) => return self.error(&e.to_string()),
        };
        let version = Version::of(&doc.root);
        if let Err(e) = edit(&mut doc) {
            return self.error(&e);
        }
        if let Err(e) = self.backend.commit_by(&doc, version, client) {
            return self.error(&e.to_string());
        }
        // An unedited working copy is reloaded; an edited one keeps its base version and so is
        // refused at commit, as any concurrent change is.
        if !self.has_changes() {
            self.working = None;
        }
    }

    fn load_now(&mut self) -> Option<Document> {
        match self.backend.load() {
            Ok(doc) => Some(doc),
            Err(e) => {
                self.error(&e.to_string());
                None
            }
        }
    }

    /// `resource start|stop|restart|manage|unmanage|maintenance|move|migrate|clear|unmigrate|
    /// param|meta|list|status|cleanup|failcount ...`
    pub(super) fn resource(&mut self, args: &[String]) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["start", ids @ ..] if !ids.is_empty() => {
                self.set_meta_now(ids, "target-role", Some("Started"))
            }
            ["stop", ids @ ..] if !ids.is_empty() => {
                self.set_meta_now(ids, "target-role", Some("Stopped"))
            }
            ["restart", ids @ ..] if !ids.is_empty() => {
                self.set_meta_now(ids, "target-role", Some("Stopped"));
                self.set_meta_now(ids, "target-role", Some("Started"));
            }
            ["manage", id] => self.set_meta_now(&[id], "is-managed", Some("true")),
            ["unmanage", id] => self.set_meta_now(&[id], "is-managed", Some("false")),
            ["maintenance", id] | ["maintenance", id, "on"] => {
                self.set_meta_now(&[id], "maintenance", Some("true"))
            }
            ["maintenance", id, "off"] => self.set_meta_now(&[id], "maintenance", Some("false")),
            ["meta", id, "set", name, value] => self.set_meta_now(&[id], name, Some(value)),
            ["meta", id, "delete", name] => self.set_meta_now(&[id], name, None),
            ["meta", id, "show", name] => self.show_attr(id, "meta_attributes", name),
            ["param", id, "set", name, value] => {
                self.set_attr_now(id, "instance_attributes", name, Some(value))
            }
            ["param", id, "delete", name] => {
                self.set_attr_now(id, "instance_attributes", name, None)
            }
            ["param", id, "show", name] => self.show_attr(id, "instance_attributes", name),
            ["move" | "migrate", id, node] | ["move" | "migrate", id, node, "force"] => {
                self.move_to(id, node)
            }
            ["clear" | "unmigrate" | "unmove", id] => self.clear_moves(id),
            ["list"] | ["show"] => self.list_resources(),
            ["status" | "show", ids @ ..] => self.resource_status(ids),
            ["cleanup", rest @ ..] | ["failcount", rest @ ..] if self.backend.is_live() => self
                .run_tool(
                    if a[0] == "cleanup" {
                        "crm_resource"
                    } else {
                        "crm_failcount"
                    },
                    a[0],
                    rest,
                ),
            ["cleanup", rest @ ..] if rest.len() <= 1 => self.cleanup_file(rest.first().copied()),
            ["failcount", rsc, cmd, node, rest @ ..] => self.failcount_file(rsc, cmd, node, rest),
            ["cleanup" | "failcount", ..] => self.error(&format!(
                "resource {}: needs a running cluster (this CIB is a file: {})",
                a[0],
                self.backend
                    .file()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )),
            _ => self.error(&format!(
                "resource: unknown command or arguments: '{}'",
                a.join(" ")
            )),
        }
    }

    /// `resource cleanup [RSC]` on a file CIB: the embedded cluster's driver forgets the
    /// failures and probes again, as Pacemaker's controller does after `crm_resource --cleanup`.
    fn cleanup_file(&mut self, rsc: Option<&str>) {
        let Some(path) = self.backend.file().map(Path::to_path_buf) else {
            return;
        };
        match crate::driver::control::cleanup_file(&path, rsc) {
            Ok(cleaned) if cleaned.is_empty() => println!("nothing to clean up"),
            Ok(cleaned) => cleaned.iter().for_each(|r| println!("Cleaned up {r}")),
            Err(e) => self.error(&format!("resource cleanup: {e:#}")),
        }
    }

    /// `resource failcount RSC show|delete|set NODE ...` on a file CIB (see `failcount`).
    fn failcount_file(&mut self, rsc: &str, cmd: &str, node: &str, rest: &[&str]) {
        let Some(path) = self.backend.file().map(Path::to_path_buf) else {
            return;
        };
        let result = match (cmd, rest) {
            ("show", []) => failcount::show(&path, rsc, node).map(|text| self.print(&text)),
            ("delete", []) => failcount::delete(&path, rsc, node),
            ("set", [value, more @ ..]) if more.len() <= 2 => failcount::set(
                &path,
                rsc,
                node,
                value,
                more.first().copied(),
                more.get(1).copied(),
            ),
            _ => Err(anyhow::anyhow!(
                "usage: failcount <rsc> set <node> <value> [operation] [interval] | \
                 delete <node> | show <node>"
            )),
        };
        if let Err(e) = result {
            self.error(&format!("resource failcount: {e:#}"));
        }
    }

    fn run_tool(&mut self, tool: &str, what: &str, rest: &[&str]) {
        let mut cmd = Command::new(tool);
        if what == "cleanup" {
            cmd.arg("--cleanup");
            if let Some(r) = rest.first() {
                cmd.args(["--resource", r]);
            }
            if let Some(n) = rest.get(1) {
                cmd.args(["--node", n]);
            }
        } else {
            // failcount RSC show|delete NODE
            match rest {
                [r, "show", n] => cmd.args(["--query", "-r", r, "-N", n]),
                [r, "delete", n] => cmd.args(["--delete", "-r", r, "-N", n]),
                _ => return self.error("resource failcount: expected RSC show|delete NODE"),
            };
        }
        match cmd.output() {
            Ok(out) => {
                self.print(&String::from_utf8_lossy(&out.stdout));
                if !out.status.success() {
                    self.error(&format!(
                        "{tool}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            Err(e) => self.error(&format!("{tool}: {e}")),
        }
    }

    fn show_attr(&mut self, id: &str, set: &str, name: &str) {
        let Some(doc) = self.load_now() else { return };
        let value = resources(&doc.root)
            .and_then(|r| r.find_by_id(id))
            .and_then(|rsc| {
                rsc.children_named(set)
                    .flat_map(|m| m.children_named("nvpair"))
                    .find(|n| n.attr("name") == Some(name))
                    .and_then(|n| n.attr("value").map(str::to_string))
            });
        match value {
            Some(v) => self.print(&format!("{v}\n")),
            None => self.error(&format!("{id}: attribute {name} not found")),
        }
    }

    /// Sets (or with `None` removes) a meta attribute of resources and commits at once.
    pub(super) fn set_meta_now(&mut self, ids: &[&str], name: &str, value: Option<&str>) {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let (name, value) = (name.to_string(), value.map(str::to_string));
        self.edit_now("crm_resource", |doc| {
            for id in &ids {
                let rsc = resource_mut(doc, id)?;
                set_nvpair(rsc, "meta_attributes", &name, value.as_deref());
            }
            Ok(())
        });
    }

    fn set_attr_now(&mut self, id: &str, set: &str, name: &str, value: Option<&str>) {
        self.edit_now("crm_resource", |doc| {
            let rsc = resource_mut(doc, id)?;
            set_nvpair(rsc, set, name, value);
            Ok(())
        });
    }

    /// `crm_resource --move`: a `cli-prefer-RSC` location, role Started, score INFINITY.
    fn move_to(&mut self, id: &str, node: &str) {
        self.edit_now("crm_resource", |doc| {
            resource_mut(doc, id)?;
            let constraints = doc
                .root
                .child_or_insert("configuration")
                .child_or_insert("constraints");
            let cid = format!("cli-prefer-{id}");
            constraints
                .children
                .retain(|n| !matches!(n, Node::Element(e) if e.id() == Some(cid.as_str())));
            constraints.children.push(
                Element::new("rsc_location")
                    .with_attr("id", cid)
                    .with_attr("rsc", id)
                    .with_attr("role", "Started")
                    .with_attr("node", node)
                    .with_attr("score", "INFINITY")
                    .into(),
            );
            Ok(())
        });
    }

    /// `crm_resource --clear`: drops `cli-prefer-RSC` and `cli-ban-RSC-on-*`.
    fn clear_moves(&mut self, id: &str) {
        self.edit_now("crm_resource", |doc| {
            resource_mut(doc, id)?;
            if let Some(constraints) = doc.root.path_mut(&["configuration", "constraints"]) {
                let prefer = format!("cli-prefer-{id}");
                let ban = format!("cli-ban-{id}-on-");
                constraints.children.retain(|n| match n {
                    Node::Element(e) => {
                        let cid = e.id().unwrap_or_default();
                        cid != prefer && !cid.starts_with(&ban)
                    }
                    _ => true,
                });
            }
            Ok(())
        });
    }

    /// `resource list`: each resource with its agent, like `crm_resource --list` without state.
    fn list_resources(&mut self) {
        let Some(doc) = self.load_now() else { return };
        let mut text = String::new();
        if let Some(r) = resources(&doc.root) {
            list_into(r, 0, &mut text);
        }
        if text.is_empty() {
            text = "NO resources configured\n".into();
        }
        self.print(&text);
    }

    /// `resource status [RSC]`: where resources run, from `crm_mon`'s view of the cluster.
    fn resource_status(&mut self, ids: &[&str]) {
        if !self.backend.is_live() {
            return self.resource_status_file(ids);
        }
        let mut cmd = Command::new("crm_resource");
        cmd.arg("--locate");
        match ids.first() {
            Some(id) => cmd.args(["--resource", id]),
            None => cmd.arg("--list"),
        };
        if let Some(file) = self.backend.file() {
            cmd.env("CIB_file", file);
        }
        match cmd.output() {
            Ok(out) => {
                self.print(&String::from_utf8_lossy(&out.stdout));
                if !out.status.success() {
                    self.error(&format!(
                        "crm_resource: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
            }
            Err(e) => self.error(&format!("crm_resource: {e}")),
        }
    }

    /// `resource status [RSC...]` on a file CIB, rendered natively as `crm_resource --list`
    /// and `crm_resource --locate` print it.
    fn resource_status_file(&mut self, ids: &[&str]) {
        let Some(doc) = self.load_now() else { return };
        if ids.is_empty() {
            match mon::list(doc) {
                Ok(text) => self.print(&text),
                Err(e) => self.error(&format!("resource status: {e}")),
            }
            return;
        }
        for id in ids {
            match mon::locate(&doc, id) {
                Ok(Some(nodes)) if nodes.is_empty() => eprintln!("resource {id} is NOT running"),
                Ok(Some(nodes)) => {
                    let text: String = nodes
                        .iter()
                        .map(|n| format!("resource {id} is running on: {n}\n"))
                        .collect();
                    self.print(&text);
                }
                Ok(None) => self.error(&format!("Resource '{id}' not found")),
                Err(e) => self.error(&format!("resource status: {e}")),
            }
        }
    }

    /// `node standby|online|maintenance|ready|show|attribute ...`
    pub(super) fn node(&mut self, args: &[String]) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let here = local_node();
        match a.as_slice() {
            ["standby", rest @ ..] => self.node_attr_now(
                rest.first().copied().unwrap_or(&here),
                "standby",
                Some("on"),
            ),
            ["online", rest @ ..] => self.node_attr_now(
                rest.first().copied().unwrap_or(&here),
                "standby",
                Some("off"),
            ),
            ["maintenance", rest @ ..] => self.node_attr_now(
                rest.first().copied().unwrap_or(&here),
                "maintenance",
                Some("on"),
            ),
            ["ready", rest @ ..] => self.node_attr_now(
                rest.first().copied().unwrap_or(&here),
                "maintenance",
                Some("off"),
            ),
            ["attribute", node, "set", name, value] => self.node_attr_now(node, name, Some(value)),
            ["attribute", node, "delete", name] => self.node_attr_now(node, name, None),
            ["attribute", node, "show", name] => self.node_attr_show(node, name),
            ["show", rest @ ..] => self.node_show(rest.first().copied()),
            _ => self.error(&format!(
                "node: unknown command or arguments: '{}'",
                a.join(" ")
            )),
        }
    }

    /// `crm_attribute -t nodes -N NODE -n NAME -v VALUE`: set `nodes-ID` of the node.
    fn node_attr_now(&mut self, node: &str, name: &str, value: Option<&str>) {
        self.edit_now("crm_attribute", |doc| {
            let nodes = doc
                .root
                .child_or_insert("configuration")
                .child_or_insert("nodes");
            let Some(n) = nodes.elements_mut().find(|e| {
                e.name == "node" && (e.attr("uname") == Some(node) || e.id() == Some(node))
            }) else {
                return Err(format!("node {node} does not exist"));
            };
            let node_id = n.id().unwrap_or(node).to_string();
            if n.child("instance_attributes").is_none() && value.is_some() {
                n.children.push(
                    Element::new("instance_attributes")
                        .with_attr("id", format!("nodes-{node_id}"))
                        .into(),
                );
            }
            let Some(set) = n.child_mut("instance_attributes") else {
                return Ok(());
            };
            let set_id = set.id().unwrap_or_default().to_string();
            match value {
                None => set
                    .children
                    .retain(|c| !matches!(c, Node::Element(e) if e.attr("name") == Some(name))),
                Some(v) => {
                    if let Some(nvp) = set.elements_mut().find(|e| e.attr("name") == Some(name)) {
                        nvp.set_attr("value", v);
                    } else {
                        set.children.push(
                            Element::new("nvpair")
                                .with_attr("id", format!("{set_id}-{name}"))
                                .with_attr("name", name)
                                .with_attr("value", v)
                                .into(),
                        );
                    }
                }
            }
            Ok(())
        });
    }

    fn node_attr_show(&mut self, node: &str, name: &str) {
        let Some(doc) = self.load_now() else { return };
        let value = find_node(&doc.root, node).and_then(|n| {
            n.children_named("instance_attributes")
                .flat_map(|s| s.children_named("nvpair"))
                .find(|e| e.attr("name") == Some(name))
                .and_then(|e| e.attr("value").map(str::to_string))
        });
        match value {
            Some(v) => self.print(&format!("scope=nodes  name={name} value={v}\n")),
            None => self.error(&format!("node {node}: attribute {name} not found")),
        }
    }

    /// `node show [NODE]`: `uname(id): type` and the node's attributes, as crmsh prints them.
    fn node_show(&mut self, which: Option<&str>) {
        let Some(doc) = self.load_now() else { return };
        let mut text = String::new();
        let nodes = doc.root.path(&["configuration", "nodes"]);
        for n in nodes.into_iter().flat_map(|n| n.children_named("node")) {
            let uname = n.attr("uname").or(n.id()).unwrap_or_default();
            if which.is_some_and(|w| w != uname) {
                continue;
            }
            let kind = n.attr("type").unwrap_or("member");
            text.push_str(&format!("{uname}({}): {kind}\n", n.id().unwrap_or(uname)));
            for set in n
                .elements()
                .filter(|s| s.name == "instance_attributes" || s.name == "utilization")
            {
                for nvp in set.children_named("nvpair") {
                    let prefix = if set.name == "utilization" {
                        "utilization: "
                    } else {
                        ""
                    };
                    text.push_str(&format!(
                        "\t{prefix}{}={}\n",
                        nvp.attr("name").unwrap_or_default(),
                        nvp.attr("value").unwrap_or_default()
                    ));
                }
            }
        }
        if let Some(w) = which
            && text.is_empty()
        {
            return self.error(&format!("node {w} does not exist"));
        }
        self.print(&text);
    }

    /// `ra classes|list CLASS [PROVIDER]|providers TYPE|info AGENT|meta AGENT`
    pub(super) fn ra(&mut self, args: &[String]) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["classes"] => {
                let providers = ra::all_providers().join(" ");
                let text: String = ra::classes()
                    .iter()
                    .map(|c| match c.as_str() {
                        "ocf" => format!("ocf / {providers}\n"),
                        other => format!("{other}\n"),
                    })
                    .collect();
                self.print(&text);
            }
            ["list", "ocf", rest @ ..] => {
                let mut agents: Vec<String> = match rest.first() {
                    Some(p) => ra::agents(p),
                    None => ra::all_providers()
                        .iter()
                        .flat_map(|p| ra::agents(p))
                        .collect(),
                };
                agents.sort();
                agents.dedup();
                let text = multicolumn(&agents, 80);
                self.print(&text);
            }
            ["list", class, ..] => self.error(&format!(
                "ra list: class {class} is not listed by hapx (only ocf)"
            )),
            ["providers", kind, ..] => {
                let text = format!("{}\n", ra::providers(kind).join(" "));
                self.print(&text);
            }
            ["info" | "meta", agent] => self.ra_info(agent),
            _ => self.error(&format!(
                "ra: unknown command or arguments: '{}'",
                a.join(" ")
            )),
        }
    }

    fn ra_info(&mut self, agent: &str) {
        let Some((class, provider, kind)) = ra::disambiguate(agent) else {
            return self.error(&format!("{agent}: bad resource agent specification"));
        };
        match ra::metadata(&class, provider.as_deref(), &kind) {
            Ok(meta) => {
                let name = ra::agent_name(&class, provider.as_deref(), &kind);
                let text = ra::pretty(&meta, &name, &kind);
                self.print(&format!("{text}\n"));
            }
            Err(e) => self.error(&e.to_string()),
        }
    }
}

/// crmsh's `multicolumn`: names in columns of equal width across `width` characters.
fn multicolumn(names: &[String], width: usize) -> String {
    let max_len = names.iter().map(String::len).max().unwrap_or(0).max(8);
    let cols = (width / (max_len + 2)).max(1);
    let col_len = width / cols;
    let mut out = String::new();
    for row in names.chunks(cols) {
        for (i, n) in row.iter().enumerate() {
            // crmsh pads every column but a full row's last.
            if i + 1 == cols {
                out.push_str(n);
            } else {
                out.push_str(&format!("{n:<col_len$}"));
            }
        }
        out.push('\n');
    }
    out
}

/// Whether Pacemaker's `crm_mon` is on the PATH.
fn crm_mon_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("crm_mon").is_file()))
}

fn local_node() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

fn resources(cib: &Element) -> Option<&Element> {
    cib.path(&["configuration", "resources"])
}

fn find_node<'a>(cib: &'a Element, node: &str) -> Option<&'a Element> {
    cib.path(&["configuration", "nodes"])?
        .children_named("node")
        .find(|n| n.attr("uname") == Some(node) || n.id() == Some(node))
}

fn list_into(e: &Element, depth: usize, out: &mut String) {
    for r in e.elements() {
        let indent = " ".repeat(2 + depth * 4);
        match r.name.as_str() {
            "primitive" => out.push_str(&format!(
                "{indent}* {}\t({})\n",
                r.id().unwrap_or_default(),
                ra::agent_name(
                    r.attr("class").unwrap_or_default(),
                    r.attr("provider"),
                    r.attr("type").unwrap_or_default()
                )
            )),
            "group" | "clone" | "master" | "bundle" => {
                let label = match r.name.as_str() {
                    "group" => "Resource Group",
                    "master" => "Clone Set (promotable)",
                    "bundle" => "Container bundle",
                    _ => "Clone Set",
                };
                out.push_str(&format!(
                    "{indent}* {label}: {}:\n",
                    r.id().unwrap_or_default()
                ));
                list_into(r, depth + 1, out);
            }
            _ => {}
        }
    }
}

fn resource_mut<'a>(doc: &'a mut Document, id: &str) -> Result<&'a mut Element, String> {
    doc.root
        .path_mut(&["configuration", "resources"])
        .and_then(|r| find_resource_mut(r, id))
        .ok_or_else(|| format!("resource {id} does not exist"))
}

fn find_resource_mut<'a>(e: &'a mut Element, id: &str) -> Option<&'a mut Element> {
    let is_rsc = |e: &Element| {
        matches!(
            e.name.as_str(),
            "primitive" | "group" | "clone" | "master" | "bundle"
        )
    };
    if e.id() == Some(id) && is_rsc(e) {
        return Some(e);
    }
    e.elements_mut()
        .filter(|c| is_rsc(c))
        .find_map(|c| find_resource_mut(c, id))
}

/// crm_resource's `--set-parameter` (with `--meta` for meta attributes): the first set of
/// that kind, created as `RSC-meta_attributes` (or `RSC-instance_attributes`) when missing;
/// the nvpair id is `SET-NAME`. `None` removes the attribute.
fn set_nvpair(rsc: &mut Element, set_tag: &str, name: &str, value: Option<&str>) {
    let rsc_id = rsc.id().unwrap_or_default().to_string();
    let Some(value) = value else {
        for set in rsc.elements_mut().filter(|e| e.name == set_tag) {
            set.children
                .retain(|n| !matches!(n, Node::Element(e) if e.attr("name") == Some(name)));
        }
        return;
    };
    if rsc.child(set_tag).is_none() {
        let set = Element::new(set_tag).with_attr("id", format!("{rsc_id}-{set_tag}"));
        // Pacemaker keeps attribute sets before the children of a container.
        let pos = rsc
            .children
            .iter()
            .position(|n| {
                matches!(n, Node::Element(e) if matches!(e.name.as_str(), "primitive" | "group" | "operations"))
            })
            .unwrap_or(rsc.children.len());
        rsc.children.insert(pos, set.into());
    }
    let Some(set) = rsc.child_mut(set_tag) else {
        return;
    };
    let set_id = set.id().unwrap_or_default().to_string();
    if let Some(nvp) = set
        .elements_mut()
        .find(|e| e.name == "nvpair" && e.attr("name") == Some(name))
    {
        nvp.set_attr("value", value);
        return;
    }
    set.children.push(
        Element::new("nvpair")
            .with_attr("id", format!("{set_id}-{name}"))
            .with_attr("name", name)
            .with_attr("value", value)
            .into(),
    );
}
