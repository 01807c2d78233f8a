//! The `node` level, as crmsh 4.4.1 runs it.
//!
//! - `show [NODE]` (alias `list`): crmsh's listing from the configuration and the status.
//! - `standby|online [NODE]`: crmsh's own edit of the node's `standby` attribute.
//! - `maintenance [NODE]`: crmsh's `update_xml_node` ([`crate::crm::meta::update_node_attr`]),
//!   which offers to drop the resources' own `maintenance`/`is-managed`; `ready [NODE]` is
//!   `crm_attribute ... -n maintenance -v off`.
//! - `attribute|utilization|status-attr NODE set|delete|show NAME [VALUE]`: `crm_attribute -t
//!   nodes` (`-z` for utilization, `-t status` for the status section's transient attributes).
//! - `clearstate NODE` (asks; `-F` answers yes) and `delete NODE`.
//!
//! On a file CIB hapx edits the CIB as those tools would; on a live cluster the attribute
//! commands run `crm_attribute` itself, as crmsh does, and `clearstate` runs `stonith_admin
//! --confirm` or `crm_resource --cleanup --node`.

use std::process::Command;

use hapx_cib::xml::{Element, Node};

use super::Session;
use super::resource::find_node;
use crate::crm::ids::IdStore;
use crate::crm::meta;

/// Which attributes `attribute|utilization|status-attr` manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Nodes,
    Utilization,
    Status,
}

impl Scope {
    /// crm_attribute's options for this scope.
    fn args(self) -> &'static [&'static str] {
        match self {
            Scope::Nodes => &["-t", "nodes"],
            Scope::Utilization => &["-z", "-t", "nodes"],
            Scope::Status => &["-t", "status"],
        }
    }

    fn word(self) -> &'static str {
        match self {
            Scope::Status => "status",
            _ => "nodes",
        }
    }
}

impl Session {
    /// `node CMD ...`
    pub(super) fn node(&mut self, args: &[String]) {
        let Some(first) = args.first() else {
            return self.error("node: expected a command");
        };
        let cmd = self.dealias(first, &[("list", "show")]);
        let a: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        let here = local_node();
        let node_or_here = |rest: &[&str]| rest.first().map_or(here.clone(), |n| n.to_string());
        match (cmd.as_str(), a.as_slice()) {
            ("show", rest) if rest.len() <= 1 => self.node_show(rest.first().copied()),
            ("standby", [.., "reboot"]) if a.len() <= 2 => {
                // Until the node reboots: a transient attribute in the status section.
                let node = node_or_here(&a[..a.len() - 1]);
                let before = self.errors;
                self.attr_set(Scope::Status, &node, "standby", Some("on"));
                if self.errors == before {
                    self.diag("INFO", &format!("standby node {node}"));
                }
            }
            ("standby", [.., "forever"]) if a.len() <= 2 => {
                self.standby(&node_or_here(&a[..a.len() - 1]), "on")
            }
            ("standby", rest) if rest.len() <= 1 => self.standby(&node_or_here(rest), "on"),
            ("online", rest) if rest.len() <= 1 => self.standby(&node_or_here(rest), "off"),
            ("maintenance", rest) if rest.len() <= 1 => {
                let node = node_or_here(rest);
                let manage = self.options.manage_children();
                let mut ask = self.asker();
                self.edit_now("cibadmin", |doc| {
                    meta::update_node_attr(
                        &mut doc.root,
                        &node,
                        "maintenance",
                        "true",
                        manage,
                        &mut ask,
                    )
                    .map_err(|e| format!("{e}\nERROR: Failed to update node attributes for {node}"))
                });
            }
            ("ready", rest) if rest.len() <= 1 => self.attr_set(
                Scope::Nodes,
                &node_or_here(rest),
                "maintenance",
                Some("off"),
            ),
            ("attribute" | "utilization" | "status-attr", [node, sub, name, value @ ..]) => {
                let scope = match cmd.as_str() {
                    "attribute" => Scope::Nodes,
                    "utilization" => Scope::Utilization,
                    _ => Scope::Status,
                };
                match (*sub, value) {
                    ("set", [v]) => self.attr_set(scope, node, name, Some(v)),
                    ("delete", []) => self.attr_set(scope, node, name, None),
                    ("show" | "get", []) => self.attr_show(scope, node, name),
                    _ => self.error(&format!(
                        "Bad usage: '{sub}', command: 'node {cmd} {}'",
                        a.join(" ")
                    )),
                }
            }
            ("clearstate", rest) if rest.len() <= 1 => self.clearstate(&node_or_here(rest)),
            ("delete", [node]) => self.delete_node(node),
            _ => self.error(&format!(
                "node: unknown command or arguments: '{}'",
                args.join(" ")
            )),
        }
    }

    /// crmsh's `standby`/`online`: the node's `standby` nvpair (its instance attributes made as
    /// `NODE-instance_attributes` when missing); `online` only turns an existing one off.
    fn standby(&mut self, node: &str, value: &str) {
        let ok = self.edit_now_ok("cibadmin", |doc| {
            let mut ids = IdStore::from_element(&doc.root);
            let n = node_mut(&mut doc.root, node)?;
            let existing = n
                .elements_mut()
                .filter(|s| s.name == "instance_attributes")
                .flat_map(|s| s.elements_mut())
                .find(|e| e.name == "nvpair" && e.attr("name") == Some("standby"));
            match existing {
                Some(nvp) => nvp.set_attr("value", value),
                None if value == "on" => {
                    if n.child("instance_attributes").is_none() {
                        let mut set = Element::new("instance_attributes");
                        let id = ids.new_id(&set, n.id().unwrap_or_default());
                        set.set_attr("id", id);
                        n.children.push(set.into());
                    }
                    meta::set_in_sets(n, "instance_attributes", "standby", value, &mut ids);
                }
                None => {}
            }
            Ok(())
        });
        if ok {
            let word = if value == "on" { "standby" } else { "online" };
            self.diag("INFO", &format!("{word} node {node}"));
        }
    }

    /// `crm_attribute [-z] -t nodes|status -N NODE -n NAME -v VALUE` (or `-D`).
    fn attr_set(&mut self, scope: Scope, node: &str, name: &str, value: Option<&str>) {
        if self.backend.is_live() {
            let mut cmd = Command::new("crm_attribute");
            if value.is_none() {
                cmd.arg("-D");
            }
            cmd.args(scope.args()).args(["-N", node, "-n", name]);
            if let Some(v) = value {
                cmd.args(["-v", v]);
            }
            return self.run_command("crm_attribute", cmd);
        }
        let mut report = String::new();
        let edit = |doc: &mut hapx_cib::xml::Document| {
            let (holder, tag, set_id) =
                attr_holder(&mut doc.root, scope, node, name, value.is_some())?;
            let Some(holder) = holder else { return Ok(()) };
            let found = holder
                .elements_mut()
                .filter(|s| s.name == tag)
                .flat_map(|s| s.elements_mut())
                .find(|e| e.name == "nvpair" && e.attr("name") == Some(name));
            match (found, value) {
                (Some(nvp), Some(v)) => nvp.set_attr("value", v),
                (None, None) => {}
                (Some(_), None) => {
                    for set in holder.elements_mut().filter(|s| s.name == tag) {
                        let Some(pos) = set.children.iter().position(
                            |n| matches!(n, Node::Element(e) if e.name == "nvpair" && e.attr("name") == Some(name)),
                        ) else {
                            continue;
                        };
                        if let Node::Element(e) = set.children.remove(pos) {
                            report.push_str(&format!(
                                "Deleted {} attribute: id={} name={name}\n",
                                scope.word(),
                                e.id().unwrap_or_default()
                            ));
                        }
                        break;
                    }
                }
                (None, Some(v)) => {
                    // crm_attribute's own set, made beside any other the node has.
                    if !holder
                        .elements()
                        .any(|s| s.name == tag && s.id() == Some(&set_id))
                    {
                        holder
                            .children
                            .push(Element::new(tag).with_attr("id", set_id.clone()).into());
                    }
                    if let Some(set) = holder
                        .elements_mut()
                        .find(|s| s.name == tag && s.id() == Some(&set_id))
                    {
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
        };
        // Transient attributes live in the status section, which a configuration commit
        // leaves as the file has it.
        let ok = match scope {
            Scope::Status => self.edit_status_now("crm_attribute", edit),
            Scope::Nodes | Scope::Utilization => self.edit_now_ok("crm_attribute", edit),
        };
        if ok {
            self.print(&report);
        }
    }

    /// `crm_attribute -G ...`: `scope=nodes  name=NAME value=VALUE`.
    fn attr_show(&mut self, scope: Scope, node: &str, name: &str) {
        if self.backend.is_live() {
            let mut cmd = Command::new("crm_attribute");
            cmd.arg("-G")
                .args(scope.args())
                .args(["-N", node, "-n", name]);
            return self.run_command("crm_attribute", cmd);
        }
        let Some(mut doc) = self.load_now() else {
            return;
        };
        let value = match attr_holder(&mut doc.root, scope, node, name, false) {
            Ok((Some(holder), tag, _)) => holder
                .children_named(tag)
                .flat_map(|s| s.children_named("nvpair"))
                .find(|e| e.attr("name") == Some(name))
                .and_then(|e| e.attr("value").map(str::to_string)),
            _ => None,
        };
        match value {
            Some(v) => self.print(&format!("scope={}  name={name} value={v}\n", scope.word())),
            None => self
                .tool_error("crm_attribute: Error performing operation: No such device or address"),
        }
    }

    /// `show [NODE]`: `uname: type` (`uname(id): type` when they differ), `(offline)` when
    /// the status says so, other node attributes, and each instance attribute set on a line.
    fn node_show(&mut self, which: Option<&str>) {
        let Some(doc) = self.load_now() else { return };
        let configured: Vec<&Element> = doc
            .root
            .path(&["configuration", "nodes"])
            .into_iter()
            .flat_map(|n| n.children_named("node"))
            .collect();
        let states: Vec<&Element> = doc
            .root
            .child("status")
            .into_iter()
            .flat_map(|s| s.children_named("node_state"))
            .collect();
        let mut unames: Vec<&str> = configured
            .iter()
            .chain(&states)
            .filter_map(|n| n.attr("uname"))
            .collect();
        unames.sort_unstable();
        unames.dedup();
        let mut text = String::new();
        for uname in unames.into_iter().filter(|u| which.is_none_or(|w| w == *u)) {
            let state = states
                .iter()
                .find(|n| n.attr("uname") == Some(uname))
                .copied();
            let config = configured
                .iter()
                .find(|n| n.attr("uname") == Some(uname))
                .copied();
            let Some(n) = config.or(state) else { continue };
            let offline = state.is_some_and(|s| s.attr("crmd") == Some("offline"));
            text.push_str(&print_node(n, offline));
        }
        self.print(&text);
    }

    /// `clearstate NODE`: asks first; then the cluster forgets the node's state.
    fn clearstate(&mut self, node: &str) {
        let mut ask = self.asker();
        if !self.force
            && !ask(&format!(
                "Do you really want to drop state for node {node}?"
            ))
        {
            // Declined (a script always declines): nothing done, and the command failed, as
            // crmsh's exit status says.
            self.errors += 1;
            return;
        }
        let Some(doc) = self.load_now() else { return };
        let state = doc
            .root
            .child("status")
            .into_iter()
            .flat_map(|s| s.children_named("node_state"))
            .find(|s| s.attr("uname") == Some(node));
        let attr = |name: &str| state.and_then(|s| s.attr(name)).map(str::to_string);
        if attr("crmd").as_deref() == Some("online") {
            if self.backend.is_live() {
                let mut cmd = Command::new("crm_resource");
                cmd.args(["--cleanup", "--node", node]);
                return self.run_command("crm_resource", cmd);
            }
            if let Some(path) = self.backend.file().map(std::path::Path::to_path_buf) {
                match crate::driver::control::cleanup_file(&path, None, Some(node)) {
                    Ok(cleaned) => cleaned.iter().for_each(|r| println!("Cleaned up {r}")),
                    Err(e) => self.error(&format!("node clearstate: {e:#}")),
                }
            }
            return;
        }
        if attr("in_ccm").as_deref() == Some("true") {
            return self.diag(
                "WARNING",
                &format!(
                    "Node is offline according to Pacemaker, but online according to corosync. \
                     First shut down node '{node}'"
                ),
            );
        }
        if self.backend.is_live() {
            let mut cmd = Command::new("stonith_admin");
            cmd.args(["--confirm", node]);
            return self.run_command("stonith_admin", cmd);
        }
        // A file CIB: what a confirmed fencing leaves, the node's state gone.
        self.edit_status_now("stonith_admin", |doc| {
            drop_node_state(doc, node);
            Ok(())
        });
    }

    /// `delete NODE`: the node and its state leave the CIB (`cibadmin -D`); on a live cluster
    /// `crm_node --force -R` removes it from the membership first.
    fn delete_node(&mut self, node: &str) {
        let Some(doc) = self.load_now() else { return };
        if find_node(&doc.root, node).is_none() {
            return self.error(&format!("node {node} not found in the CIB"));
        }
        if self.backend.is_live() {
            let out = Command::new("crm_node")
                .args(["--force", "-R", node])
                .output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                return self.error(&format!("crm_node --force -R {node} failed"));
            }
        }
        let ok = self.edit_now_ok("cibadmin", |doc| {
            if let Some(nodes) = doc.root.path_mut(&["configuration", "nodes"]) {
                nodes.children.retain(
                    |n| !matches!(n, Node::Element(e) if e.name == "node" && e.attr("uname") == Some(node)),
                );
            }
            Ok(())
        });
        // The node's state is the status section's: on a file CIB written as a status update,
        // as the configuration commit leaves the status as the file has it (on a live cluster
        // `crm_node -R` has removed it).
        let ok = ok
            && (self.backend.is_live()
                || self.edit_status_now("cibadmin", |doc| {
                    drop_node_state(doc, node);
                    Ok(())
                }));
        if ok {
            self.diag("INFO", &format!("node {node} deleted"));
        }
    }
}

/// Removes `node`'s `node_state` from the status section.
fn drop_node_state(doc: &mut hapx_cib::xml::Document, node: &str) {
    if let Some(status) = doc.root.child_mut("status") {
        status.children.retain(
            |n| !matches!(n, Node::Element(e) if e.name == "node_state" && e.attr("uname") == Some(node)),
        );
    }
}

/// crmsh's `print_node`.
fn print_node(n: &Element, offline: bool) -> String {
    let uname = n.attr("uname").unwrap_or_default();
    let id = n.id().unwrap_or_default();
    let kind = n.attr("type").unwrap_or("member");
    let offline = if offline { "(offline)" } else { "" };
    let mut text = if uname == id {
        format!("{uname}: {kind}{offline}\n")
    } else {
        format!("{uname}({id}): {kind}{offline}\n")
    };
    for (k, v) in &n.attributes {
        if !matches!(k.as_str(), "type" | "uname" | "id") {
            text.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    for set in n.children_named("instance_attributes") {
        let pairs: Vec<String> = set
            .children_named("nvpair")
            .map(|p| {
                let value = p.attr("value").unwrap_or_default();
                let value = if value.contains(char::is_whitespace) {
                    format!("\"{value}\"")
                } else {
                    value.to_string()
                };
                format!("{}={value}", p.attr("name").unwrap_or_default())
            })
            .collect();
        text.push_str(&format!("\t{}\n", pairs.join(" ")));
    }
    text
}

fn node_mut<'a>(cib: &'a mut Element, node: &str) -> Result<&'a mut Element, String> {
    cib.path_mut(&["configuration", "nodes"])
        .and_then(|nodes| {
            nodes.elements_mut().find(|e| {
                e.name == "node" && (e.attr("uname") == Some(node) || e.id() == Some(node))
            })
        })
        .ok_or_else(|| format!("crm_attribute: Could not map name={node} to a UUID"))
}

/// Where crm_attribute looks: the node's configuration element (`instance_attributes`, or
/// `utilization` with `-z`) or, in the status, its `transient_attributes` (made when `create`);
/// with the set tag and the id of the set crm_attribute makes (`nodes-ID`,
/// `nodes-ID-utilization`, `status-ID`).
fn attr_holder<'a>(
    cib: &'a mut Element,
    scope: Scope,
    node: &str,
    name: &str,
    create: bool,
) -> Result<(Option<&'a mut Element>, &'static str, String), String> {
    let node_id = find_node(cib, node)
        .and_then(|n| n.id().map(str::to_string))
        .ok_or_else(|| format!("crm_attribute: Could not map name={node} to a UUID"))?;
    let (tag, set_id) = match scope {
        Scope::Nodes => ("instance_attributes", format!("nodes-{node_id}")),
        Scope::Utilization => ("utilization", format!("nodes-{node_id}-utilization")),
        Scope::Status => ("instance_attributes", format!("status-{node_id}")),
    };
    if scope != Scope::Status {
        return Ok((Some(node_mut(cib, node)?), tag, set_id));
    }
    let state = cib
        .child_mut("status")
        .and_then(|s| {
            s.elements_mut()
                .find(|e| e.name == "node_state" && e.id() == Some(node_id.as_str()))
        })
        .ok_or_else(|| {
            format!(
                "Error setting {name} (section=status, set=status-{node_id}): No such device or address"
            )
        })?;
    if state.child("transient_attributes").is_none() && create {
        state.children.push(
            Element::new("transient_attributes")
                .with_attr("id", node_id.clone())
                .into(),
        );
    }
    Ok((state.child_mut("transient_attributes"), tag, set_id))
}

fn local_node() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}
