//! The `resource` level, as crmsh 4.4.1 runs it.
//!
//! crmsh makes some changes itself and hands others to Pacemaker's tools; hapx makes the same
//! changes to the CIB natively, prints what those tools print, and commits through the
//! session's backend (a file, or `cibadmin` on a live cluster):
//! - `start|stop|restart|manage|unmanage|maintenance` are crmsh's own edits
//!   ([`crate::crm::meta::set_deep_meta_attr`]: topmost container, `manage-children`,
//!   the `maintenance`/`is-managed` conflict);
//! - `param|meta|utilization` are `crm_resource --set-parameter|--get-parameter|
//!   --delete-parameter` (with `--meta` or `--utilization`);
//! - `move|ban|clear` are `crm_resource --move|--ban|--clear` (`cli-prefer-RSC`,
//!   `cli-ban-RSC-on-NODE`, a lifetime as a `date_expression`);
//! - `trace|untrace` are crmsh's `trace_ra` operation attributes ([`crate::crm::trace`]);
//! - `cleanup|refresh|failcount|status` need the cluster's state: on a live cluster they run
//!   `crm_resource`/`crm_failcount` as crmsh does; on a file CIB, hapx's embedded driver's view.
//!
//! crmsh's aliases (`migrate`, `unmigrate`, `unmove`, `unban`, `reprobe`, `show`, `list`) work and
//! are reported as deprecated, as crmsh reports them.

use std::path::Path;
use std::process::Command;

use hapx_cib::xml::{Document, Element, Node};

use super::{Session, failcount};
use crate::crm::ids::IdStore;
use crate::crm::{meta, trace};
use crate::mon;

/// crmsh's aliases on the resource level: (alias, command).
const ALIASES: &[(&str, &str)] = &[
    ("show", "status"),
    ("list", "status"),
    ("migrate", "move"),
    ("unmove", "clear"),
    ("unban", "clear"),
    ("unmigrate", "clear"),
    ("reprobe", "refresh"),
];

/// The kind of attribute `param|meta|utilization` manage, with crm_resource's words.
#[derive(Debug, Clone, Copy)]
enum AttrKind {
    Param,
    Meta,
    Utilization,
}

impl AttrKind {
    fn set_tag(self) -> &'static str {
        match self {
            AttrKind::Param => "instance_attributes",
            AttrKind::Meta => "meta_attributes",
            AttrKind::Utilization => "utilization",
        }
    }
}

impl Session {
    /// The name a command was given as, reported when it is one of crmsh's aliases.
    pub(super) fn dealias(&self, word: &str, aliases: &[(&str, &'static str)]) -> String {
        match aliases.iter().find(|(alias, _)| *alias == word) {
            Some((alias, name)) => {
                self.diag(
                    "WARNING",
                    &format!("This command '{alias}' is deprecated, please use '{name}'"),
                );
                self.diag("INFO", &format!("\"{alias}\" is accepted as \"{name}\""));
                name.to_string()
            }
            None => word.to_string(),
        }
    }

    /// A Pacemaker tool's own failure message, passed on as crmsh passes it (no `ERROR:`
    /// prefix); the command failed.
    pub(super) fn tool_error(&mut self, text: &str) {
        eprintln!("{text}");
        self.errors += 1;
        self.failed.push(self.line.unwrap_or(0));
    }

    /// crmsh's `utils.ask`: yes with `-F` (saying so), a question on a terminal, no otherwise.
    pub(super) fn asker(&self) -> impl FnMut(&str) -> bool + use<> {
        let (force, interactive, line) = (self.force, self.interactive, self.line);
        move |question: &str| {
            if force {
                match line {
                    Some(n) => println!("INFO: {n}: {question} [YES]"),
                    None => println!("INFO: {question} [YES]"),
                }
                return true;
            }
            interactive && ask_terminal(question)
        }
    }

    /// `resource CMD ...`
    pub(super) fn resource(&mut self, args: &[String]) {
        let Some(first) = args.first() else {
            return self.error("resource: expected a command");
        };
        let cmd = self.dealias(first, ALIASES);
        let a: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        match (cmd.as_str(), a.as_slice()) {
            ("start" | "stop", []) => self.error("Expected at least one resource as argument"),
            ("start", ids) => self.deep_meta_now(ids, "target-role", "Started"),
            ("stop", ids) => self.deep_meta_now(ids, "target-role", "Stopped"),
            ("restart", ids) if !ids.is_empty() => self.restart(ids),
            ("manage", [id]) => self.deep_meta_now(&[id], "is-managed", "true"),
            ("unmanage", [id]) => self.deep_meta_now(&[id], "is-managed", "false"),
            ("maintenance", [id, rest @ ..]) if rest.len() <= 1 => {
                match rest.first().map(|v| v.to_ascii_lowercase()).as_deref() {
                    None | Some("on" | "true") => self.deep_meta_now(&[id], "maintenance", "true"),
                    Some("off" | "false") => self.deep_meta_now(&[id], "maintenance", "false"),
                    Some(_) => {
                        self.error("resource.maintenance: Expected <resource> [on|off|true|false]")
                    }
                }
            }
            ("param", [id, sub, name, value @ ..]) => {
                self.attr_command(AttrKind::Param, id, sub, name, value.first().copied())
            }
            ("meta", [id, sub, name, value @ ..]) => {
                self.attr_command(AttrKind::Meta, id, sub, name, value.first().copied())
            }
            ("utilization", [id, sub, name, value @ ..]) => {
                self.attr_command(AttrKind::Utilization, id, sub, name, value.first().copied())
            }
            ("move" | "ban", [id, rest @ ..]) => self.move_or_ban(&cmd, id, rest),
            ("clear", [id]) => self.clear_constraints(id),
            ("trace", [id, rest @ ..]) => self.trace_command(id, rest, true),
            ("untrace", [id, rest @ ..]) if rest.len() <= 2 => self.trace_command(id, rest, false),
            ("status", ids) => self.resource_status(ids),
            // crmsh's `locate` is `crm_resource --locate` for each: `status RSC...`'s output.
            ("locate", []) => {
                self.error("resource.locate: Expected at least one resource as argument")
            }
            ("locate", ids) => self.resource_status(ids),
            ("scores", []) => self.scores(),
            ("cleanup" | "refresh", rest) if rest.len() <= 3 => self.cleanup(&cmd, rest),
            ("failcount", rest) if self.backend.is_live() => self.failcount_live(rest),
            ("failcount", [rsc, sub, node, rest @ ..]) => self.failcount_file(rsc, sub, node, rest),
            _ => self.error(&format!(
                "resource: unknown command or arguments: '{}'",
                args.join(" ")
            )),
        }
    }

    /// crmsh's `restart`: stop, wait until the stop has happened, start. Nothing is started
    /// when the stop was not written or did not happen.
    fn restart(&mut self, ids: &[&str]) {
        self.diag("INFO", &format!("ordering {} to stop", ids.join(", ")));
        let before = self.errors;
        self.deep_meta_now(ids, "target-role", "Stopped");
        if self.errors != before {
            return;
        }
        if self.backend.is_live() {
            // crmsh's `wait4dc`: until the cluster has carried the stop out.
            self.wait_for_cluster();
        } else if let Some(path) = self.backend.file().map(Path::to_path_buf) {
            self.wait_for_driver_stop(&path, ids);
        }
        if self.errors != before {
            return;
        }
        self.diag("INFO", &format!("ordering {} to start", ids.join(", ")));
        self.deep_meta_now(ids, "target-role", "Started");
    }

    /// On a file CIB, until the status shows every one of `ids` stopped on every node, when
    /// the embedded cluster's driver runs for it (it holds the driver lock): the driver must see
    /// the stop before the start, or it sees neither. Gives up after the longest stop timeout
    /// of the resources plus a margin for the driver to notice the change. Without a driver
    /// nothing runs, so there is nothing to wait for.
    fn wait_for_driver_stop(&mut self, path: &Path, ids: &[&str]) {
        if crate::driver::lock::holder(path).is_none() {
            return self.diag(
                "INFO",
                &format!(
                    "no cluster driver runs for {}: not waiting for the stop",
                    path.display()
                ),
            );
        }
        let Some(doc) = self.load_now() else { return };
        let limit = stop_timeout(&doc, ids) + RESTART_MARGIN;
        let start = std::time::Instant::now();
        loop {
            let Some(doc) = self.load_now() else { return };
            let mut running = Vec::new();
            for id in ids {
                match mon::locate(&doc, id) {
                    Ok(Some(nodes)) if nodes.is_empty() => {}
                    Ok(Some(_)) => running.push(*id),
                    Ok(None) => return self.error(&format!("Resource '{id}' not found")),
                    Err(e) => {
                        return self.error(&format!(
                            "resource restart: cannot tell whether {id} has stopped ({e}); \
                             left stopped"
                        ));
                    }
                }
            }
            if running.is_empty() {
                return;
            }
            if start.elapsed() >= limit {
                return self.error(&format!(
                    "resource restart: {} did not stop within {}s; left stopped, not started",
                    running.join(", "),
                    limit.as_secs()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// crmsh's `set_deep_meta_attr` for each resource, committed at once.
    fn deep_meta_now(&mut self, ids: &[&str], attr: &str, value: &str) {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let manage = self.options.manage_children();
        let mut ask = self.asker();
        self.edit_now("cibadmin", |doc| {
            for id in &ids {
                meta::set_deep_meta_attr(&mut doc.root, id, attr, value, manage, &mut ask)?;
            }
            Ok(())
        });
    }

    /// `param|meta|utilization RSC set|delete|show|get NAME [VALUE]`: crm_resource's edits.
    fn attr_command(
        &mut self,
        kind: AttrKind,
        id: &str,
        sub: &str,
        name: &str,
        value: Option<&str>,
    ) {
        if self.backend.is_live() && matches!(sub, "set" | "delete" | "show" | "get") {
            // crm_resource itself, as crmsh runs it.
            let mut cmd = Command::new("crm_resource");
            match kind {
                AttrKind::Param => {}
                AttrKind::Meta => {
                    cmd.arg("--meta");
                }
                AttrKind::Utilization => {
                    cmd.arg("--utilization");
                }
            }
            cmd.args(["--resource", id]);
            match (sub, value) {
                ("set", Some(v)) => cmd.args(["--set-parameter", name, "--parameter-value", v]),
                ("delete", None) => cmd.args(["--delete-parameter", name]),
                (_, None) => cmd.args(["--get-parameter", name]),
                _ => return self.error(&format!("Bad usage: '{sub}' with a value")),
            };
            return self.run_command("crm_resource", cmd);
        }
        match (sub, value) {
            ("set", Some(value)) => self.set_attr_now(kind, id, name, Some(value)),
            ("delete", None) => self.set_attr_now(kind, id, name, None),
            ("show" | "get", None) => self.show_attr(kind, id, name),
            _ => self.error(&format!(
                "Bad usage: '{sub}', command: 'resource {} {id} {sub} {name}'",
                match kind {
                    AttrKind::Param => "param",
                    AttrKind::Meta => "meta",
                    AttrKind::Utilization => "utilization",
                }
            )),
        }
    }

    fn show_attr(&mut self, kind: AttrKind, id: &str, name: &str) {
        let Some(doc) = self.load_now() else { return };
        let Some(rsc) = find_resource(&doc.root, id) else {
            return self.error(&format!("crm_resource: Resource '{id}' not found"));
        };
        let value = rsc
            .children_named(kind.set_tag())
            .flat_map(|m| m.children_named("nvpair"))
            .find(|n| n.attr("name") == Some(name))
            .and_then(|n| n.attr("value").map(str::to_string));
        match value {
            Some(v) => self.print(&format!("{v}\n")),
            // crm_resource says so on stderr and succeeds.
            None => eprintln!("Attribute '{name}' not found for '{id}'"),
        }
    }

    /// crm_resource's `--set-parameter`/`--delete-parameter`: a meta attribute of a clone's
    /// child goes to the clone, as crm_resource says.
    fn set_attr_now(&mut self, kind: AttrKind, id: &str, name: &str, value: Option<&str>) {
        let mut report = String::new();
        self.edit_now("crm_resource", |doc| {
            let mut ids = IdStore::from_element(&doc.root);
            let mut target = id.to_string();
            if let (AttrKind::Meta, Some(parent)) = (kind, clone_parent(&doc.root, id)) {
                if value.is_some() {
                    report.push_str(&format!(
                        "Performing update of '{name}' on '{parent}', the parent of '{id}'\n"
                    ));
                }
                target = parent;
            }
            let rsc = resource_mut(doc, &target)?;
            report.push_str(&set_nvpair(rsc, kind.set_tag(), name, value, &mut ids));
            Ok(())
        });
        self.print(&report);
    }

    /// `move|ban RSC [NODE] [LIFETIME] [force]`: crm_resource's `--move`/`--ban`.
    fn move_or_ban(&mut self, action: &str, id: &str, rest: &[&str]) {
        let mut argl: Vec<&str> = rest.to_vec();
        let force = argl.contains(&"force") || self.force;
        argl.retain(|a| *a != "force");
        let usage =
            format!("resource.{action}: usage: {action} <rsc> [<node>] [<lifetime>] [force]");
        let Some(doc) = self.load_now() else { return };
        let is_node = |n: &str| find_node(&doc.root, n).is_some();
        let (node, lifetime) = match argl.as_slice() {
            [] => (None, None),
            [one] if is_node(one) => (Some(one.to_string()), None),
            [one] => (None, Some(one.to_string())),
            [node, life] if is_node(node) => (Some(node.to_string()), Some(life.to_string())),
            [node, _] => return self.error(&format!("resource.{action}: Not our node: {node}")),
            _ => return self.error(&usage),
        };
        let cap = if action == "move" { "Move" } else { "Ban" };
        let Some(node) = node else {
            if action == "move" && !force {
                return self.error(
                    "resource.move: No target node: Move requires either a target node or 'force'",
                );
            }
            // Without a node crm_resource bans or moves away from where the resource runs.
            let running = mon::locate(&doc, id).ok().flatten().unwrap_or_default();
            let Some(here) = running.first() else {
                return self.error(&format!(
                    "crm_resource: Resource '{id}' not moved: active in 0 locations.\n\
                     To prevent '{id}' from running on a specific location, specify a node."
                ));
            };
            return self.place(action, cap, id, here, lifetime.as_deref());
        };
        self.place(action, cap, id, &node, lifetime.as_deref());
    }

    fn place(&mut self, action: &str, cap: &str, id: &str, node: &str, lifetime: Option<&str>) {
        if self.backend.is_live() {
            let mut cmd = Command::new("crm_resource");
            if action == "move" {
                cmd.arg("--quiet");
            }
            cmd.args([&format!("--{action}"), "--resource", id, "--node", node]);
            if let Some(l) = lifetime {
                cmd.args(["--lifetime", l]);
            }
            if self.force {
                cmd.arg("--force");
            }
            let before = self.errors;
            self.run_command("crm_resource", cmd);
            if self.errors == before {
                self.constraint_created(cap, id, node);
            }
            return;
        }
        let end = match lifetime.map(lifetime_end).transpose() {
            Ok(end) => end,
            Err(e) => return self.error(&e),
        };
        let (cid, score) = if action == "move" {
            (format!("cli-prefer-{id}"), "INFINITY")
        } else {
            (format!("cli-ban-{id}-on-{node}"), "-INFINITY")
        };
        let ok = self.edit_now_ok("crm_resource", |doc| {
            resource_mut(doc, id)?;
            let constraints = doc
                .root
                .child_or_insert("configuration")
                .child_or_insert("constraints");
            constraints
                .children
                .retain(|n| !matches!(n, Node::Element(e) if e.id() == Some(cid.as_str())));
            constraints
                .children
                .push(location(&cid, id, node, score, end.as_deref()).into());
            Ok(())
        });
        if !ok {
            return;
        }
        if let (Some(end), "ban") = (&end, action) {
            // crm_resource says so unless --quiet (which crmsh gives `move`).
            println!("Migration will take effect until: {end}");
        }
        if action == "ban" {
            println!(
                "WARNING: Creating rsc_location constraint '{cid}' with a score of -INFINITY for \
                 resource {id} on {node}.\n\tThis will prevent {id} from running on {node} until \
                 the constraint is removed using the clear option or by editing the CIB with an \
                 appropriate tool\n\tThis will be the case even if {node} is the last node in the \
                 cluster"
            );
        }
        self.constraint_created(cap, id, node);
    }

    /// crmsh's report of a `move`/`ban`.
    fn constraint_created(&self, cap: &str, id: &str, node: &str) {
        self.diag(
            "INFO",
            &format!("{cap} constraint created for {id} to {node}"),
        );
        self.diag(
            "INFO",
            &format!("Use `crm resource clear {id}` to remove this constraint"),
        );
    }

    /// crm_resource's `--clear`: drops `cli-prefer-RSC` and `cli-ban-RSC-on-*`.
    fn clear_constraints(&mut self, id: &str) {
        if self.backend.is_live() {
            let mut cmd = Command::new("crm_resource");
            cmd.args(["--quiet", "--clear", "--resource", id]);
            let before = self.errors;
            self.run_command("crm_resource", cmd);
            if self.errors == before {
                self.diag("INFO", &format!("Removed migration constraints for {id}"));
            }
            return;
        }
        let ok = self.edit_now_ok("crm_resource", |doc| {
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
        if ok {
            self.diag("INFO", &format!("Removed migration constraints for {id}"));
        }
    }

    /// `trace RSC [OP] [INTERVAL] [DIR]` / `untrace RSC [OP] [INTERVAL]`.
    fn trace_command(&mut self, id: &str, rest: &[&str], on: bool) {
        let usage = if on {
            "resource.trace: usage: trace <rsc> [<op>] [<interval>] [<log-dir>]"
        } else {
            "resource.untrace: usage: untrace <rsc> [<op>] [<interval>]"
        };
        let mut args: Vec<&str> = rest.to_vec();
        args.retain(|a| *a != "force");
        if args.len() > 3 {
            return self.error(usage);
        }
        let (mut op, mut interval, mut dir) = (None, None, None);
        for arg in args {
            let slot = if arg.starts_with('/') && on {
                &mut dir
            } else if arg.bytes().all(|b| b.is_ascii_digit()) {
                &mut interval
            } else {
                &mut op
            };
            if slot.replace(arg.to_string()).is_some() {
                return self.error(usage);
            }
        }
        if op.as_deref() == Some("probe") {
            op = Some("monitor".into());
            interval.get_or_insert_with(|| "0".into());
        }
        let target = match (&op, &interval) {
            (None, _) => trace::Target::Resource,
            (Some(o), None) => trace::Target::Op(o.clone()),
            (Some(o), Some(i)) => trace::Target::OpInterval(o.clone(), i.clone()),
        };
        let mut kind = String::new();
        let ok = self.edit_now_ok("cibadmin", |doc| {
            let mut ids = IdStore::from_element(&doc.root);
            let promotable = promotable_parent(&doc.root, id);
            let rsc = resource_mut(doc, id).map_err(|_| format!("resource {id} does not exist"))?;
            if rsc.name != "primitive" {
                return Err(format!("element {id} is not a primitive resource"));
            }
            kind = rsc.attr("type").unwrap_or_default().to_string();
            let result = if on {
                trace::trace(rsc, &target, dir.as_deref(), promotable, &mut ids)
            } else {
                trace::untrace(rsc, &target)
            };
            result.map_err(|e| format!("resource.{}: {e}", if on { "trace" } else { "untrace" }))
        });
        if !ok {
            return;
        }
        let on_op = op.as_deref().map(|o| format!(":{o}")).unwrap_or_default();
        if !on {
            let what = op
                .map(|o| format!(" for operation {o}"))
                .unwrap_or_default();
            return self.diag("INFO", &format!("Stop tracing {id}{what}"));
        }
        self.diag(
            "INFO",
            &format!("Trace for {id}{on_op} is written to /var/lib/heartbeat/trace_ra/{kind}"),
        );
        match op.as_deref() {
            Some(o) if o != "monitor" => self.diag(
                "INFO",
                &format!("Trace set, restart {id} to trace the {o} operation"),
            ),
            _ => self.diag(
                "INFO",
                &format!("Trace set, restart {id} to trace non-monitor operations"),
            ),
        }
    }

    /// `cleanup|refresh [RSC] [NODE] [force]`: crm_resource on a live cluster; on a file CIB the
    /// embedded driver forgets the failures (cleanup) or the whole history (refresh) and probes
    /// again, as Pacemaker's controller does, saying what it cleaned.
    fn cleanup(&mut self, action: &str, rest: &[&str]) {
        let mut args: Vec<&str> = rest.to_vec();
        let force = args.contains(&"force");
        args.retain(|a| *a != "force");
        let (rsc, node) = (args.first().copied(), args.get(1).copied());
        if self.backend.is_live() {
            let mut cmd = Command::new("crm_resource");
            cmd.arg(format!("--{action}"));
            if let Some(r) = rsc {
                cmd.args(["--resource", r]);
            }
            if let Some(n) = node {
                cmd.args(["--node", n]);
            }
            if force {
                cmd.arg("--force");
            }
            return self.run_command("crm_resource", cmd);
        }
        let Some(path) = self.backend.file().map(Path::to_path_buf) else {
            return;
        };
        match crate::driver::control::cleanup_file(&path, rsc, node) {
            Ok(cleaned) => cleaned.iter().for_each(|r| println!("Cleaned up {r}")),
            Err(e) => self.error(&format!("resource {action}: {e:#}")),
        }
    }

    /// `scores`: `crm_simulate -sUL` on a live cluster; on a file CIB hapx's own scheduler
    /// prints the same allocation scores (`hapx simulate -s`).
    fn scores(&mut self) {
        let Some(path) = self.backend.file().map(Path::to_path_buf) else {
            let mut cmd = Command::new("crm_simulate");
            cmd.arg("-sUL");
            return self.run_command("crm_simulate", cmd);
        };
        let args = crate::simulate::SimulateArgs {
            xml_file: Some(path),
            live_check: false,
            run: false,
            simulate: false,
            show_scores: true,
            node_up: Vec::new(),
            node_down: Vec::new(),
            node_fail: Vec::new(),
            op_inject: Vec::new(),
            op_fail: Vec::new(),
            save_graph: None,
            explain: None,
            now: None,
        };
        if let Err(e) = crate::simulate::run(&args) {
            // What hapx's scheduler does not model yet (clones) Pacemaker's does, when installed.
            if super::top::crm_mon_installed() {
                let mut cmd = Command::new("crm_simulate");
                cmd.arg("-sUL")
                    .env("CIB_file", args.xml_file.unwrap_or_default());
                return self.run_command("crm_simulate", cmd);
            }
            self.error(&format!("resource scores: {e:#}"));
        }
    }

    fn failcount_live(&mut self, rest: &[&str]) {
        let mut cmd = Command::new("crm_failcount");
        match rest {
            [r, "show" | "get", n] => cmd.args(["-G", "-r", r, "-N", n]),
            [r, "delete", n] => cmd.args(["-D", "-r", r, "-N", n]),
            [r, "set", n, v] => cmd.args(["-v", v, "-r", r, "-N", n]),
            _ => {
                return self.error(
                    "usage: failcount <rsc> set <node> <value> [operation] [interval] | \
                     delete <node> | show <node>",
                );
            }
        };
        self.run_command("crm_failcount", cmd);
    }

    /// `resource failcount RSC show|delete|set NODE ...` on a file CIB (see `failcount`).
    fn failcount_file(&mut self, rsc: &str, cmd: &str, node: &str, rest: &[&str]) {
        let Some(path) = self.backend.file().map(Path::to_path_buf) else {
            return;
        };
        let result = match (cmd, rest) {
            ("show" | "get", []) => failcount::show(&path, rsc, node).map(|text| self.print(&text)),
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

    /// Runs a Pacemaker tool, passing its output on; a failure is an error naming the tool.
    pub(super) fn run_command(&mut self, tool: &str, mut cmd: Command) {
        match cmd.output() {
            Ok(out) => {
                self.print(&String::from_utf8_lossy(&out.stdout));
                // crmsh lets the tool's own messages through (`resource X is NOT running`).
                if out.status.success() && !out.stderr.is_empty() {
                    eprint!("{}", String::from_utf8_lossy(&out.stderr));
                }
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

    /// `resource status [RSC...]`: `crm_resource --list` / `--locate`, from crm_resource on a
    /// live cluster and rendered natively from a file CIB.
    fn resource_status(&mut self, ids: &[&str]) {
        if self.backend.is_live() {
            if ids.is_empty() {
                let mut cmd = Command::new("crm_resource");
                cmd.arg("--list");
                return self.run_command("crm_resource", cmd);
            }
            for id in ids {
                let mut cmd = Command::new("crm_resource");
                cmd.args(["--locate", "--resource", id]);
                self.run_command("crm_resource", cmd);
            }
            return;
        }
        let Some(doc) = self.load_now() else { return };
        // What the native rendering does not model (clones, bundles), crm_resource renders
        // from the same file when it is installed.
        let file = self.backend.file().map(|f| f.to_path_buf());
        let crm_resource = |args: &[&str]| {
            let mut cmd = Command::new("crm_resource");
            cmd.args(args);
            if let Some(file) = &file {
                cmd.env("CIB_file", file);
            }
            cmd
        };
        let fallback = super::top::tool_installed("crm_resource");
        if ids.is_empty() {
            match mon::list(doc) {
                Ok(text) => self.print(&text),
                Err(mon::MonError::Unsupported(_)) if fallback => {
                    let cmd = crm_resource(&["--list"]);
                    self.run_command("crm_resource", cmd)
                }
                Err(e) => self.error(&format!("resource status: {e}")),
            }
            return;
        }
        for id in ids {
            match mon::locate(&doc, id) {
                Err(mon::MonError::Unsupported(_)) if fallback => {
                    let cmd = crm_resource(&["--locate", "--resource", id]);
                    self.run_command("crm_resource", cmd)
                }
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
}

/// What `restart` allows the embedded cluster's driver beyond the stop timeout: time to notice
/// the change and schedule the stop.
const RESTART_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest stop timeout of the primitives `ids` name (a group: its members), as the
/// driver applies it.
fn stop_timeout(doc: &Document, ids: &[&str]) -> std::time::Duration {
    use crate::driver::action;
    let Ok(cib) = hapx_cib::model::Cib::from_document(doc.clone()) else {
        return action::DEFAULT_TIMEOUT;
    };
    let members: Vec<&str> = ids
        .iter()
        .flat_map(|id| match cib.groups.iter().find(|g| g.id == *id) {
            Some(g) => g.members.iter().map(String::as_str).collect(),
            None => vec![*id],
        })
        .collect();
    cib.primitives
        .iter()
        .filter(|p| members.contains(&p.id.as_str()))
        .map(|p| action::timeout(&cib, p, "stop", 0))
        .max()
        .unwrap_or(action::DEFAULT_TIMEOUT)
}

/// Asks on the terminal as crmsh does: `QUESTION (y/n)? `, until y or n (end of input is no).
fn ask_terminal(question: &str) -> bool {
    use std::io::{BufRead as _, Write as _};
    let prompt = match question.strip_suffix('?') {
        Some(q) => format!("{q} (y/n)? "),
        None => format!("{question} "),
    };
    loop {
        print!("{prompt}");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        match std::io::stdin().lock().read_line(&mut answer) {
            Ok(0) | Err(_) => return false,
            Ok(_) => match answer.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
                Some('y') => return true,
                Some('n') => return false,
                _ => {}
            },
        }
    }
}

/// crm_resource's lifetime: an ISO 8601 duration (`P1D`, `PT30M`) from now, written as
/// Pacemaker writes the constraint's end (`2024-01-02 03:04:05Z`).
fn lifetime_end(lifetime: &str) -> Result<String, String> {
    lifetime_end_at(lifetime, crate::mon::text::now())
}

/// [`lifetime_end`] from `now` (seconds since the epoch). As crm_time does, years and months
/// move the calendar date (the day clamped to the month's length: P1M from January 31st ends
/// on the last day of February), then weeks, days and time add seconds.
fn lifetime_end_at(lifetime: &str, now: i64) -> Result<String, String> {
    let bad =
        || format!("Invalid lifetime '{lifetime}' (an ISO 8601 duration such as P1D or PT30M)");
    let too_far = || format!("Invalid lifetime '{lifetime}': it ends after the year 9999");
    let spec = lifetime.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = spec.split_once('T').unwrap_or((spec, ""));
    let (mut years, mut months, mut seconds) = (0i64, 0i64, 0i64);
    for (part, is_time) in [(date, false), (time, true)] {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: i64 = number.parse().map_err(|_| bad())?;
            number.clear();
            let (total, unit) = match (is_time, c) {
                (false, 'Y') => (&mut years, 1),
                (false, 'M') => (&mut months, 1),
                (false, 'W') => (&mut seconds, 7 * 86400),
                (false, 'D') => (&mut seconds, 86400),
                (true, 'H') => (&mut seconds, 3600),
                (true, 'M') => (&mut seconds, 60),
                (true, 'S') => (&mut seconds, 1),
                _ => return Err(bad()),
            };
            *total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(too_far)?;
        }
        if !number.is_empty() {
            return Err(bad());
        }
    }
    if years == 0 && months == 0 && seconds == 0 {
        return Err(bad());
    }
    let (day, time_of_day) = (now.div_euclid(86400), now.rem_euclid(86400));
    let (y, m, d) = civil_from_days(day);
    let month_index = years
        .checked_mul(12)
        .and_then(|v| v.checked_add(months))
        .and_then(|v| v.checked_add(y * 12 + m - 1))
        .ok_or_else(too_far)?;
    let (y, m) = (month_index.div_euclid(12), month_index.rem_euclid(12) + 1);
    if y > 9999 {
        return Err(too_far());
    }
    let end = days_from_civil(y, m, d.min(days_in_month(y, m)))
        .checked_mul(86400)
        .and_then(|v| v.checked_add(time_of_day))
        .and_then(|v| v.checked_add(seconds))
        .filter(|end| *end < days_from_civil(10000, 1, 1) * 86400)
        .ok_or_else(too_far)?;
    Ok(utc(end))
}

/// Seconds since the epoch as Pacemaker writes a UTC time: `2024-01-02 03:04:05Z`.
fn utc(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86400), epoch.rem_euclid(86400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's `civil_from_days`: (year, month 1-12, day 1-31) of a day since the epoch.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Howard Hinnant's `days_from_civil`: the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// crm_resource's `cli-prefer-`/`cli-ban-` location: node and score, or with a lifetime a rule
/// that ends.
fn location(cid: &str, rsc: &str, node: &str, score: &str, end: Option<&str>) -> Element {
    let base = Element::new("rsc_location")
        .with_attr("id", cid)
        .with_attr("rsc", rsc)
        .with_attr("role", "Started");
    let Some(end) = end else {
        return base.with_attr("node", node).with_attr("score", score);
    };
    // crm_resource names the parts of the two kinds differently.
    let (rule_id, expr_id, end_id) = if score.starts_with('-') {
        (
            format!("{cid}-rule"),
            format!("{cid}-expr"),
            format!("{cid}-lifetime"),
        )
    } else {
        (
            format!("cli-prefer-rule-{rsc}"),
            format!("cli-prefer-expr-{rsc}"),
            format!("cli-prefer-lifetime-end-{rsc}"),
        )
    };
    let rule = Element::new("rule")
        .with_attr("id", rule_id)
        .with_attr("score", score)
        .with_attr("boolean-op", "and")
        .with_child(
            Element::new("expression")
                .with_attr("id", expr_id)
                .with_attr("attribute", "#uname")
                .with_attr("operation", "eq")
                .with_attr("value", node)
                .with_attr("type", "string"),
        )
        .with_child(
            Element::new("date_expression")
                .with_attr("id", end_id)
                .with_attr("operation", "lt")
                .with_attr("end", end),
        );
    base.with_child(rule)
}

const RESOURCE_TAGS: &[&str] = &["primitive", "group", "clone", "master", "bundle"];

fn find_resource<'a>(cib: &'a Element, id: &str) -> Option<&'a Element> {
    cib.path(&["configuration", "resources"])?
        .descendants()
        .find(|e| RESOURCE_TAGS.contains(&e.name.as_str()) && e.id() == Some(id))
}

pub(super) fn find_node<'a>(cib: &'a Element, node: &str) -> Option<&'a Element> {
    cib.path(&["configuration", "nodes"])?
        .children_named("node")
        .find(|n| n.attr("uname") == Some(node) || n.id() == Some(node))
}

/// The clone holding `id` directly, if any (crm_resource sets a clone child's meta there).
fn clone_parent(cib: &Element, id: &str) -> Option<String> {
    cib.path(&["configuration", "resources"])?
        .descendants()
        .find(|e| {
            matches!(e.name.as_str(), "clone" | "master")
                && e.elements()
                    .any(|c| c.id() == Some(id) && c.name == "primitive")
        })
        .and_then(|c| c.id().map(str::to_string))
}

/// Whether `id` is the primitive of a promotable clone (`ms`, or `promotable=true`).
fn promotable_parent(cib: &Element, id: &str) -> bool {
    let Some(resources) = cib.path(&["configuration", "resources"]) else {
        return false;
    };
    resources.descendants().any(|e| {
        let holds = e
            .descendants()
            .any(|d| d.name == "primitive" && d.id() == Some(id));
        holds
            && (e.name == "master"
                || (e.name == "clone"
                    && e.children_named("meta_attributes")
                        .flat_map(|m| m.children_named("nvpair"))
                        .any(|n| {
                            n.attr("name") == Some("promotable")
                                && crate::options::parse_bool(n.attr("value").unwrap_or_default())
                                    == Some(true)
                        })))
    })
}

pub(super) fn resource_mut<'a>(doc: &'a mut Document, id: &str) -> Result<&'a mut Element, String> {
    doc.root
        .path_mut(&["configuration", "resources"])
        .and_then(|r| find_resource_mut(r, id))
        .ok_or_else(|| format!("Resource not found: {id}"))
}

fn find_resource_mut<'a>(e: &'a mut Element, id: &str) -> Option<&'a mut Element> {
    let is_rsc = |e: &Element| RESOURCE_TAGS.contains(&e.name.as_str());
    if e.id() == Some(id) && is_rsc(e) {
        return Some(e);
    }
    e.elements_mut()
        .filter(|c| is_rsc(c))
        .find_map(|c| find_resource_mut(c, id))
}

/// crm_resource's `--set-parameter` (`--meta`, `--utilization`): the first set of that kind,
/// created as `RSC-meta_attributes` (`RSC-instance_attributes`, `RSC-utilization`) when
/// missing; the nvpair id is `SET-NAME`. `None` removes the attribute (the set stays, as
/// crm_resource leaves it). Returns crm_resource's report line.
fn set_nvpair(
    rsc: &mut Element,
    set_tag: &str,
    name: &str,
    value: Option<&str>,
    ids: &mut IdStore,
) -> String {
    let rsc_id = rsc.id().unwrap_or_default().to_string();
    let Some(value) = value else {
        let mut report = String::new();
        for set in rsc.elements_mut().filter(|e| e.name == set_tag) {
            set.children.retain(|n| match n {
                Node::Element(e) if e.attr("name") == Some(name) => {
                    report.push_str(&format!(
                        "Deleted '{rsc_id}' option: id={} name={name}\n",
                        e.id().unwrap_or_default()
                    ));
                    false
                }
                _ => true,
            });
        }
        return report;
    };
    if rsc.child(set_tag).is_none() {
        let mut set = Element::new(set_tag);
        let id = ids.new_id(&set, &rsc_id);
        set.set_attr("id", id);
        meta::insert_set(rsc, set);
    }
    let Some(set) = rsc.child_mut(set_tag) else {
        return String::new();
    };
    let set_id = set.id().unwrap_or_default().to_string();
    let existing = set
        .elements_mut()
        .find(|e| e.name == "nvpair" && e.attr("name") == Some(name))
        .map(|nvp| {
            nvp.set_attr("value", value);
            nvp.id().unwrap_or_default().to_string()
        });
    let nvp_id = match existing {
        Some(id) => id,
        None => {
            let probe = Element::new("nvpair").with_attr("name", name);
            let id = ids.new_id(&probe, &set_id);
            set.children.push(
                Element::new("nvpair")
                    .with_attr("id", id.clone())
                    .with_attr("name", name)
                    .with_attr("value", value)
                    .into(),
            );
            id
        }
    };
    format!("Set '{rsc_id}' option: id={nvp_id} set={set_id} name={name} value={value}\n")
}

#[cfg(test)]
mod tests {
    use super::{days_from_civil, lifetime_end, lifetime_end_at, utc};

    #[test]
    fn utc_is_written_as_pacemaker_writes_a_lifetime_end() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_795_647_129), "2026-11-25 22:52:09Z");
    }

    #[test]
    fn a_lifetime_is_an_iso8601_duration() {
        assert!(lifetime_end("P1D").is_ok());
        assert!(lifetime_end("PT30M").is_ok());
        assert!(lifetime_end("P1W2DT3H").is_ok());
        for bad in ["1D", "P", "PT", "P1X", "P1", "tomorrow"] {
            let err = lifetime_end(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn years_and_months_move_the_calendar_date() {
        let at = |y, m, d| days_from_civil(y, m, d) * 86400 + 3723;
        assert_eq!(
            lifetime_end_at("P2M", at(2026, 11, 26)).unwrap(),
            "2027-01-26 01:02:03Z"
        );
        // The day is clamped to the month's length, as crm_time clamps it.
        assert_eq!(
            lifetime_end_at("P1M", at(2027, 1, 31)).unwrap(),
            "2027-02-28 01:02:03Z"
        );
        assert_eq!(
            lifetime_end_at("P1Y", at(2028, 2, 29)).unwrap(),
            "2029-02-28 01:02:03Z"
        );
        assert_eq!(
            lifetime_end_at("P1Y1M1DT1H", at(2026, 11, 26)).unwrap(),
            "2027-12-27 02:02:03Z"
        );
    }

    #[test]
    fn an_absurd_lifetime_is_refused_not_overflowed() {
        let now = days_from_civil(2026, 11, 26) * 86400;
        for absurd in [
            "P9999999999999999Y",
            "P99999999999999999M",
            "PT9999999999999999999S",
            "P999999999999999W",
            "P8000Y",
            "PT9223372036854775807S",
        ] {
            let err = lifetime_end_at(absurd, now).unwrap_err();
            assert!(err.contains(&format!("'{absurd}'")), "{err}");
        }
        assert!(
            lifetime_end_at("P7973Y", now)
                .unwrap()
                .starts_with("9999-11-26")
        );
    }
}
