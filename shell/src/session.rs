//! A crm session: the levels (`configure`, top), the commands, and the commit discipline.
//!
//! Every input - a piped script, `-f FILE`, one-shot arguments, an interactive line - goes
//! through [`Session::run_line`]. Edits collect in a working copy of the CIB; `commit` writes it
//! through the backend. In a script (anything not typed at a terminal), one error poisons the
//! session: a later `commit` is refused and the exit status is non-zero, so nothing from a failed
//! script reaches the CIB. Diagnostics go to stderr as `ERROR: LINE: message`, the way crmsh
//! prints them in its regression mode.

use std::io::Write;
use std::process::Command;

use hapx_cib::xml::{Document, Element};

use crate::backend::{Backend, Version};
use crate::crm::config::Config;
use crate::crm::{lex, parse, show};
use crate::ra;

mod failcount;
mod select;
mod text;
mod top;

const TOP_HELP: &str = "Levels and commands:
  configure [CMD ...]   the configuration (crm configure language)
  status                the cluster's status (crm_mon -1)
  resource CMD ...      start|stop|restart|manage|unmanage|maintenance|move|clear|param|meta|list|status|cleanup|failcount
  node CMD ...          standby|online|maintenance|ready|show|attribute
  ra CMD ...            classes|list|providers|info
  quit                  leave
";

/// Where commands are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Top,
    Configure,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Top => "",
            Level::Configure => "configure",
        }
    }
}

/// The loaded CIB and the edits made to it since.
#[derive(Debug)]
struct Working {
    base: Document,
    version: Version,
    config: Config,
}

/// One crm session over one backend.
#[derive(Debug)]
pub struct Session {
    backend: Backend,
    working: Option<Working>,
    pub level: Level,
    /// Typed at a terminal: errors do not poison later commits.
    pub interactive: bool,
    /// Lines of the errors seen so far.
    failed: Vec<usize>,
    errors: usize,
    /// `quit` was given.
    pub done: bool,
    line: Option<usize>,
    /// Output destination of `show` and friends.
    pub out: Vec<u8>,
    /// Write output as it comes (the binary) rather than collecting it (tests).
    pub stream: bool,
    /// After a live commit, wait for the cluster to settle (`crm -w`).
    pub wait: bool,
}

/// Commands that edit the configuration.
const EDIT_COMMANDS: &[&str] = &[
    "node",
    "primitive",
    "group",
    "clone",
    "ms",
    "master",
    "location",
    "colocation",
    "collocation",
    "order",
    "rsc_ticket",
    "monitor",
    "property",
    "rsc_defaults",
    "op_defaults",
    "tag",
    "alert",
    "fencing_topology",
    "fencing-topology",
];

/// The commands of the top level (for help, completion and the man page).
pub const TOP_COMMANDS: &[&str] = &[
    "bye",
    "cd",
    "configure",
    "exit",
    "help",
    "node",
    "quit",
    "ra",
    "resource",
    "status",
    "up",
];
/// `resource` subcommands.
pub const RESOURCE_COMMANDS: &[&str] = &[
    "cleanup",
    "clear",
    "failcount",
    "list",
    "maintenance",
    "manage",
    "meta",
    "migrate",
    "move",
    "param",
    "restart",
    "start",
    "status",
    "stop",
    "unmanage",
    "unmigrate",
];
/// `node` subcommands.
pub const NODE_COMMANDS: &[&str] = &[
    "attribute",
    "maintenance",
    "online",
    "ready",
    "show",
    "standby",
];
/// `ra` subcommands.
pub const RA_COMMANDS: &[&str] = &["classes", "info", "list", "providers"];

/// Every command of the configure level (for help and completion).
pub const CONFIGURE_COMMANDS: &[&str] = &[
    "node",
    "primitive",
    "group",
    "clone",
    "ms",
    "master",
    "location",
    "colocation",
    "collocation",
    "order",
    "rsc_ticket",
    "monitor",
    "property",
    "rsc_defaults",
    "op_defaults",
    "tag",
    "alert",
    "fencing_topology",
    "set",
    "show",
    "edit",
    "filter",
    "commit",
    "verify",
    "delete",
    "rename",
    "erase",
    "load",
    "save",
    "up",
    "end",
    "cd",
    "quit",
    "exit",
    "bye",
    "help",
];

impl Session {
    pub fn new(backend: impl Into<Backend>, level: Level, interactive: bool) -> Self {
        Session {
            backend: backend.into(),
            working: None,
            level,
            interactive,
            failed: Vec::new(),
            errors: 0,
            done: false,
            line: None,
            out: Vec::new(),
            stream: false,
            wait: false,
        }
    }

    /// How many errors the session reported.
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// Uncommitted edits exist.
    pub fn has_changes(&self) -> bool {
        self.working
            .as_ref()
            .is_some_and(|w| w.config.doc.root != w.base.root)
    }

    fn print(&mut self, text: &str) {
        if self.stream {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        } else {
            self.out.extend_from_slice(text.as_bytes());
        }
    }

    fn diag(&self, level: &str, message: &str) {
        match self.line {
            Some(n) => eprintln!("{level}: {n}: {message}"),
            None => eprintln!("{level}: {message}"),
        }
    }

    fn error(&mut self, message: &str) {
        self.diag("ERROR", message);
        self.errors += 1;
        if let Some(n) = self.line {
            self.failed.push(n);
        } else {
            self.failed.push(0);
        }
    }

    fn working(&mut self) -> Option<&mut Working> {
        if self.working.is_none() {
            match self.backend.load() {
                Ok(doc) => {
                    self.working = Some(Working {
                        version: Version::of(&doc.root),
                        config: Config::new(doc.clone()),
                        base: doc,
                    })
                }
                Err(e) => {
                    self.error(&e.to_string());
                    return None;
                }
            }
        }
        self.working.as_mut()
    }

    /// Object ids and resource ids of the working configuration, for completion.
    pub fn completion_ids(&mut self) -> (Vec<String>, Vec<String>) {
        let Some(w) = self
            .working
            .as_ref()
            .map(|w| &w.config)
            .cloned()
            .or_else(|| self.backend.load().ok().map(Config::new))
        else {
            return (Vec::new(), Vec::new());
        };
        let ids = w.objects().iter().map(|o| o.id.to_string()).collect();
        (ids, w.resource_ids())
    }

    /// Runs a whole script (piped input or `-f FILE`).
    pub fn run_script(&mut self, text: &str) {
        for line in lex::logical_lines(text) {
            if self.done {
                break;
            }
            self.run_line(&line.text, Some(line.number));
        }
        self.finish();
    }

    /// At the end of input (or `quit`): like crmsh's `end_game`, a script's pending edits are
    /// committed, unless the script had errors; on a terminal they are dropped with a warning.
    pub fn finish(&mut self) {
        if !self.has_changes() {
            return;
        }
        self.line = None;
        if !self.interactive && self.failed.is_empty() {
            self.commit(false);
        } else {
            self.diag("WARNING", "uncommitted changes were discarded (no commit)");
        }
    }

    /// Runs one logical line.
    pub fn run_line(&mut self, text: &str, number: Option<usize>) {
        self.line = number;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return;
        }
        match lex::split(text) {
            Ok(tokens) => self.run_tokens(&tokens),
            Err(e) => self.error(&format!("{e} parsing '{text}'")),
        }
    }

    /// Runs one command at the current level.
    pub fn run_tokens(&mut self, tokens: &[String]) {
        let Some(first) = tokens.first() else { return };
        let cmd = first.to_ascii_lowercase();
        match cmd.as_str() {
            "quit" | "exit" | "q" => {
                self.done = true;
                return;
            }
            "bye" => {
                self.diag(
                    "WARNING",
                    "This command 'bye' is deprecated, please use 'quit'",
                );
                self.diag("INFO", "\"bye\" is accepted as \"quit\"");
                self.done = true;
                return;
            }
            "up" | "end" | "back" => {
                self.level = Level::Top;
                return;
            }
            "cd" => {
                match tokens.get(1).map(String::as_str) {
                    None | Some("..") | Some("/") => self.level = Level::Top,
                    Some("configure") => self.level = Level::Configure,
                    Some(other) => self.error(&format!("cd: no such level {other}")),
                }
                return;
            }
            _ => {}
        }
        match self.level {
            Level::Top => self.top(&cmd, tokens),
            Level::Configure => self.configure(&cmd, tokens),
        }
        let notes = self
            .working
            .as_mut()
            .map(|w| std::mem::take(&mut w.config.notes))
            .unwrap_or_default();
        for note in notes {
            self.diag("INFO", &note);
        }
    }

    fn top(&mut self, cmd: &str, tokens: &[String]) {
        match cmd {
            "configure" => {
                if tokens.len() == 1 {
                    self.level = Level::Configure;
                    return;
                }
                // `configure CMD ...` from the top runs CMD and commits an edit right away.
                let rest = &tokens[1..];
                let before = self.errors;
                self.configure(&rest[0].to_ascii_lowercase(), rest);
                let edit = EDIT_COMMANDS.contains(&rest[0].to_ascii_lowercase().as_str())
                    || matches!(rest[0].as_str(), "delete" | "rename" | "erase" | "load");
                if edit && self.errors == before {
                    self.commit(false);
                }
            }
            "resource" => self.resource(&tokens[1..]),
            "node" => self.node(&tokens[1..]),
            "ra" => self.ra(&tokens[1..]),
            "status" => self.status(&tokens[1..]),
            "help" => self.print(TOP_HELP),
            _ => self.error(&format!("{cmd}: No such command")),
        }
    }

    fn configure(&mut self, cmd: &str, tokens: &[String]) {
        if EDIT_COMMANDS.contains(&cmd) {
            self.edit(cmd, tokens);
            return;
        }
        let args: Vec<&str> = tokens[1..].iter().map(String::as_str).collect();
        match cmd {
            "show" => self.show(&args),
            "commit" => self.commit(args.first() == Some(&"force")),
            "verify" => self.verify(),
            "delete" => self.delete(&args),
            "rename" => self.rename(&args),
            "erase" => self.erase(&args),
            "load" => self.load(&args),
            "save" => self.save(&args),
            "set" => self.set(&args),
            "edit" => self.edit_in_editor(&args),
            "filter" => self.filter(&args),
            "help" => {
                let text = format!("configure commands: {}\n", CONFIGURE_COMMANDS.join(" "));
                self.print(&text);
            }
            _ => self.error(&format!("configure.{cmd}: No such command")),
        }
    }

    /// node, primitive, group, ...: parse, check against agents, add.
    fn edit(&mut self, cmd: &str, tokens: &[String]) {
        let mut tokens = tokens.to_vec();
        match cmd {
            "collocation" => {
                self.diag(
                    "WARNING",
                    "This command 'collocation' is deprecated, please use 'colocation'",
                );
                self.diag("INFO", "\"collocation\" is accepted as \"colocation\"");
                tokens[0] = "colocation".into();
            }
            "master" => {
                self.diag(
                    "WARNING",
                    "This command 'master' is deprecated, please use 'ms'",
                );
                self.diag("INFO", "\"master\" is accepted as \"ms\"");
                tokens[0] = "ms".into();
            }
            _ => {}
        }
        if tokens[0].eq_ignore_ascii_case("ms") && tokens.len() >= 3 {
            // crmsh suggests the equivalent clone, keeping the given arguments.
            let rest = tokens[3..].join(" ");
            let meta = if rest.is_empty() {
                "meta promotable=true".to_string()
            } else {
                format!("{rest} promotable=true")
            };
            self.diag(
                "WARNING",
                &format!(
                    "\"ms\" is deprecated. Please use \"clone {} {} {meta}\"",
                    tokens[1], tokens[2]
                ),
            );
        }
        let parsed = match parse::parse(&tokens) {
            Ok(p) => p,
            Err(e) => return self.error(&e.to_string()),
        };
        if parsed.name == "primitive"
            && let Err(messages) = check_agent(&parsed)
        {
            for m in messages {
                self.error(&m);
            }
            return;
        }
        let Some(w) = self.working() else { return };
        if let Err(e) = w.config.add(parsed) {
            self.error(&e.to_string());
        }
    }

    /// `show [xml] [changed] [ID|type:KIND|tag:TAG ...]`, with crmsh's `and`/`or`.
    fn show(&mut self, args: &[&str]) {
        let Some(w) = self.working() else { return };
        let xml = args.first() == Some(&"xml");
        let specs: Vec<&str> = args.iter().copied().skip(usize::from(xml)).collect();
        let base_objects: Vec<(String, Element)> = Config::new(w.base.clone())
            .objects()
            .iter()
            .map(|o| (o.id.to_string(), o.element.clone()))
            .collect();
        let config = &w.config;
        let all = config.objects();
        let changed = |o: &show::Object<'_>| {
            !base_objects
                .iter()
                .any(|(id, e)| id == o.id && e == o.element)
        };
        let selected = match select::filter(&all, &specs, changed) {
            Ok(indexes) => indexes.into_iter().map(|i| all[i]).collect::<Vec<_>>(),
            Err(missing) => {
                return self.error(&format!("object {missing} does not exist"));
            }
        };
        let text = if xml {
            show_xml(config, &selected)
        } else {
            show::show(&selected, &config.doc.root)
        };
        self.print(&text);
    }

    /// Writes the working copy, unless this script already failed.
    fn commit(&mut self, force: bool) {
        if !self.interactive && !self.failed.is_empty() {
            let lines: Vec<String> = self
                .failed
                .iter()
                .filter(|n| **n > 0)
                .map(|n| n.to_string())
                .collect();
            let where_ = if lines.is_empty() {
                String::new()
            } else {
                format!(" (line {})", lines.join(", "))
            };
            self.error(&format!(
                "commit refused: this input had errors{where_}; nothing was written"
            ));
            return;
        }
        let Some(w) = self.working() else { return };
        if w.config.doc.root == w.base.root {
            return;
        }
        let (doc, version) = (w.config.doc.clone(), w.version);
        let problems = w.config.verify_errors();
        if !problems.is_empty() {
            if force {
                self.diag("INFO", "commit forced");
            } else {
                for p in problems {
                    self.error(&p);
                }
                self.error("crm_verify: Errors found during check: config not valid");
                return;
            }
        }
        match self.backend.commit(&doc, version) {
            Ok(version) => {
                if let Some(w) = self.working.as_mut() {
                    w.config
                        .doc
                        .root
                        .set_attr("epoch", version.epoch.to_string());
                    w.config.doc.root.set_attr("num_updates", "0");
                    w.base = w.config.doc.clone();
                    w.version = version;
                }
                if self.wait && self.backend.is_live() {
                    self.wait_for_cluster();
                }
            }
            Err(e) => self.error(&e.to_string()),
        }
    }

    /// `crm_resource --wait`: until the cluster has no pending actions.
    fn wait_for_cluster(&mut self) {
        match Command::new("crm_resource").arg("--wait").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => self.error(&format!(
                "crm_resource --wait: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => self.error(&format!("crm_resource --wait: {e}")),
        }
    }

    /// Runs `crm_verify` on the working copy when Pacemaker's tools are installed.
    fn verify(&mut self) {
        let Some(w) = self.working() else { return };
        let text = w.config.doc.to_xml();
        let tmp = std::env::temp_dir().join(format!("hapx-verify-{}.xml", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, text) {
            return self.error(&format!("verify: {e}"));
        }
        let output = Command::new("crm_verify")
            .arg("--xml-file")
            .arg(&tmp)
            .output();
        let _ = std::fs::remove_file(&tmp);
        match output {
            Ok(out) => {
                for line in String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                {
                    let level = if line.contains("error") {
                        "ERROR"
                    } else {
                        "WARNING"
                    };
                    self.diag(level, line.trim());
                }
                if !out.status.success() {
                    self.error("verify: the configuration is not valid");
                }
            }
            Err(_) => self.diag(
                "WARNING",
                "crm_verify is not installed; only the syntax was checked",
            ),
        }
    }

    fn delete(&mut self, args: &[&str]) {
        if args.is_empty() {
            return self.error("delete: expected at least one id");
        }
        let ids: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let Some(w) = self.working() else { return };
        if let Err(e) = w.config.delete(&ids) {
            self.error(&e.to_string());
        }
    }

    fn set(&mut self, args: &[&str]) {
        let [path, value] = args else {
            return self.error("set: expected ID.[OP.][INTERVAL.]NAME VALUE");
        };
        let (path, value) = (path.to_string(), value.to_string());
        let Some(w) = self.working() else { return };
        if let Err(e) = w.config.set_path(&path, &value) {
            self.error(&e.to_string());
        }
    }

    fn rename(&mut self, args: &[&str]) {
        let [old, new] = args else {
            return self.error("rename: expected OLD NEW");
        };
        let (old, new) = (old.to_string(), new.to_string());
        let Some(w) = self.working() else { return };
        if let Err(e) = w.config.rename(&old, &new) {
            self.error(&e.to_string());
        }
    }

    fn erase(&mut self, args: &[&str]) {
        let nodes = args.first() == Some(&"nodes");
        let Some(w) = self.working() else { return };
        w.config.erase(nodes);
    }
}

/// `show xml`: crmsh's `obj_set2cib` - a `<cib>` with the CIB's attributes, the required
/// sections, and the top-level objects holding the selected ones.
fn show_xml(config: &Config, selected: &[show::Object<'_>]) -> String {
    let mut root = Element::new("cib");
    root.attributes = config.doc.root.attributes.clone();
    let mut configuration = Element::new("configuration");
    for section in ["crm_config", "nodes", "resources", "constraints"] {
        configuration.children.push(Element::new(section).into());
    }
    let Some(source) = config.configuration() else {
        return String::new();
    };
    // crmsh reads objects in its `_sort_xml_order` (tags, fencing, defaults, ACLs, alerts),
    // which orders the sections it prints.
    let xml_rank = |tag: &str| match tag {
        "tags" => 8,
        "fencing-topology" => 10,
        "rsc_defaults" => 12,
        "op_defaults" => 13,
        "acls" => 14,
        "alerts" => 16,
        _ => 0,
    };
    let mut sections: Vec<&Element> = source.elements().collect();
    sections.sort_by_key(|e| xml_rank(&e.name));
    for section in sections {
        let mut tops: Vec<Element> = Vec::new();
        if section.name == "fencing-topology" {
            if selected.iter().any(|o| o.kind == "fencing_topology") {
                configuration.children.push(section.clone().into());
            }
            continue;
        }
        for top in section.elements() {
            let holds = selected.iter().any(|o| {
                std::ptr::eq(o.element, top)
                    || top.descendants().any(|d| std::ptr::eq(o.element, d))
            });
            if holds {
                tops.push(top.clone());
            }
        }
        if tops.is_empty() {
            continue;
        }
        let target = configuration.child_or_insert(&section.name);
        for top in tops {
            target.children.push(top.into());
        }
    }
    root.children.push(configuration.into());
    format!(
        "<?xml version=\"1.0\" ?>\n{}\n",
        Document::new(root).to_xml()
    )
}

/// Checks a new primitive against its agent's meta-data (crmsh's diagnostics).
fn check_agent(prim: &Element) -> Result<(), Vec<String>> {
    let (Some(class), Some(kind)) = (prim.attr("class"), prim.attr("type")) else {
        return Ok(());
    };
    if !matches!(class, "ocf" | "stonith") {
        return Ok(());
    }
    let provider = prim.attr("provider");
    let meta = ra::metadata(class, provider, kind).map_err(|e| vec![e.to_string()])?;
    let names: Vec<String> = prim
        .children_named("instance_attributes")
        .flat_map(|set| set.children_named("nvpair"))
        .filter_map(|nvp| nvp.attr("name").map(str::to_string))
        .collect();
    let id = prim.id().unwrap_or_default();
    let errors = ra::check_params(id, &meta, &names, class, kind);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
