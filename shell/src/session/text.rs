//! The configuration as text: `load`, `save`, `edit` and `filter`.
//!
//! Text comes back through the same parser as typed commands and lands as one edit of the
//! working copy: either every statement applies or nothing changes.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use hapx_cib::xml::{Document, Element};

use super::{EDIT_COMMANDS, Session, check_agent};
use crate::crm::config::Config;
use crate::crm::{lex, parse, show};
use crate::options::Options;

impl Session {
    /// `edit [ID...]`: the objects' crm text in `$EDITOR`; what comes back replaces them.
    pub(super) fn edit_in_editor(&mut self, args: &[&str]) {
        let Some(w) = self.working() else { return };
        let all = w.config.objects();
        let selected: Vec<show::Object<'_>> = all
            .iter()
            .filter(|o| args.is_empty() || args.contains(&o.id))
            .copied()
            .collect();
        let ids: Vec<String> = selected.iter().map(|o| o.id.to_string()).collect();
        let text = show::show(&selected, &w.config.doc.root);
        let tmp = std::env::temp_dir().join(format!("hapx-edit-{}.crm", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &text) {
            return self.error(&format!("edit: {e}"));
        }
        // The `editor` preference: crm.conf, else $EDITOR, else vim, vi, emacs or nano.
        let editor = Some(self.options.editor())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "vi".into());
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&tmp)
            .status();
        let edited = std::fs::read_to_string(&tmp);
        let _ = std::fs::remove_file(&tmp);
        match (status, edited) {
            (Ok(st), Ok(edited)) if st.success() => {
                if edited == text {
                    return;
                }
                let Some(w) = self.working.as_mut() else {
                    return;
                };
                // As crmsh's update of edited objects: each comes back in its place (a
                // clone's primitive stays in the clone), the ones left out are deleted.
                let mut next = w.config.clone();
                let result = parse_statements(&edited).and_then(|statements| {
                    let warnings = check_agents(&statements, &self.options)?;
                    let parsed = statements.into_iter().map(|(_, p)| p).collect();
                    next.replace_objects(&ids, parsed)
                        .map_err(|e| e.to_string())?;
                    Ok(warnings)
                });
                match result {
                    Ok(warnings) => {
                        next.notes.clear();
                        w.config = next;
                        for warning in warnings {
                            self.diag("WARNING", &warning);
                        }
                    }
                    Err(e) => self.error(&format!("edit: {e}; nothing changed")),
                }
            }
            (Ok(st), Ok(_)) => {
                self.error(&format!("edit: {editor} exited with {st}; nothing changed"))
            }
            (Err(e), _) | (_, Err(e)) => self.error(&format!("edit: {editor}: {e}")),
        }
    }

    /// `filter PROG [ID...]`: the objects' crm text, one per line, through a shell command;
    /// what comes out replaces them.
    pub(super) fn filter(&mut self, args: &[&str]) {
        let Some((program, ids)) = args.split_first() else {
            return self.error("filter: expected PROG [ID...]");
        };
        let program = program.to_string();
        let Some(w) = self.working() else { return };
        let all = w.config.objects();
        if let Some(missing) = ids.iter().find(|i| !all.iter().any(|o| o.id == **i)) {
            let message = format!("object {missing} does not exist");
            return self.error(&message);
        }
        let selected: Vec<show::Object<'_>> = all
            .iter()
            .filter(|o| ids.is_empty() || ids.contains(&o.id))
            .copied()
            .collect();
        let selected_ids: Vec<String> = selected.iter().map(|o| o.id.to_string()).collect();
        let text: String = selected
            .iter()
            .map(|o| {
                format!(
                    "{}\n",
                    show::object_cli(o, &w.config.doc.root).replace(" \\\n\t", " ")
                )
            })
            .collect();
        let output = run_filter(&program, &text);
        let output = match output {
            Ok(out) => out,
            Err(e) => return self.error(&format!("filter: {e}")),
        };
        let mut parsed = Vec::new();
        for line in lex::logical_lines(&output) {
            let tokens = match lex::split(&line.text) {
                Ok(t) => t,
                Err(e) => return self.error(&format!("filter: {e}")),
            };
            match parse::parse(&tokens) {
                Ok(p) => parsed.push(p),
                Err(e) => return self.error(&format!("filter: {e}")),
            }
        }
        // As `load`: applied in crmsh's processing order (members before their containers).
        parsed.sort_by_key(|p| processing_rank(&p.name));
        let Some(w) = self.working.as_mut() else {
            return;
        };
        if let Err(e) = w.config.replace_objects(&selected_ids, parsed) {
            self.error(&format!("filter: {e}"));
        }
    }

    /// `load [xml] replace|update|push FILE|-`: crm text or CIB XML (`xml`, or text that
    /// starts with `<`). As crmsh: `replace` erases every object but the nodes first, `update`
    /// replaces the objects it names and adds the others, `push` is an update that also
    /// deletes every object the text does not name.
    pub(super) fn load(&mut self, args: &[&str]) {
        let (xml, method, file) = match args {
            ["xml", method, file] => (true, *method, *file),
            [method, file] if *method != "xml" => (false, *method, *file),
            _ => return self.error("load: expected [xml] replace|update|push FILE|-"),
        };
        if !matches!(method, "replace" | "update" | "push") {
            return self.error(&format!(
                "load: unknown method {method}; expected replace, update or push"
            ));
        }
        let text = if file == "-" {
            let mut s = String::new();
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
                Ok(_) => s,
                Err(e) => return self.error(&format!("load: stdin: {e}")),
            }
        } else {
            match std::fs::read_to_string(file) {
                Ok(s) => s,
                Err(e) => return self.error(&format!("load: {file}: {e}")),
            }
        };
        let Some(w) = self.working() else { return };
        let mut next = w.config.clone();
        let result = if xml || text.trim_start().starts_with('<') {
            load_xml(&mut next, &text, method).map(|()| Vec::new())
        } else {
            load_cli(&mut next, &text, method, &self.options)
        };
        match result {
            Ok(warnings) => {
                for w in warnings {
                    self.diag("WARNING", &w);
                }
                if let Some(w) = self.working.as_mut() {
                    w.config = next;
                }
            }
            Err(e) => self.error(&format!("load: {e}")),
        }
    }

    /// `save [xml] FILE|-`
    pub(super) fn save(&mut self, args: &[&str]) {
        let (xml, file) = match args {
            ["xml", f] => (true, *f),
            [f] => (false, *f),
            _ => return self.error("save: expected [xml] FILE"),
        };
        let Some(w) = self.working() else { return };
        let text = if xml {
            w.config.doc.to_xml()
        } else {
            show::show(&w.config.objects(), &w.config.doc.root)
        };
        if file == "-" {
            self.print(&text);
        } else if let Err(e) = crate::backend::write_atomically(Path::new(file), &text) {
            self.error(&format!("save: {file}: {e}"));
        }
    }
}

/// Pipes `input` through `sh -c PROGRAM`, returning its stdout.
fn run_filter(program: &str, input: &str) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} exited with {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads crm text into `config`; Ok holds the warnings (agent checks under `check-mode
/// relaxed`).
pub(super) fn load_cli(
    config: &mut Config,
    text: &str,
    method: &str,
    options: &Options,
) -> Result<Vec<String>, String> {
    if method == "replace" {
        config.erase();
    }
    let statements = parse_statements(text)?;
    let warnings = check_agents(&statements, options)?;
    let named: Vec<&str> = statements
        .iter()
        .filter_map(|(_, parsed)| statement_id(parsed))
        .collect();
    let named: Vec<String> = named.into_iter().map(str::to_string).collect();
    let unnamed = |config: &Config, kinds: Option<&[&str]>| -> Vec<String> {
        config
            .objects()
            .iter()
            .filter(|o| !named.iter().any(|n| n == o.id))
            .filter(|o| kinds.is_none_or(|k| k.contains(&o.kind)))
            .map(|o| o.id.to_string())
            .collect()
    };
    // crmsh's `_cli_set_update`: for a push, the constraints and containers the text does not
    // name go first (their members stay, at the top level); then the new objects are created
    // and the existing ones updated; the other objects the text does not name go last.
    if method == "push" {
        let first = unnamed(
            config,
            Some(&[
                "location",
                "colocation",
                "order",
                "rsc_ticket",
                "group",
                "clone",
                "ms",
                "bundle",
            ]),
        );
        config.delete(&first).map_err(|e| e.to_string())?;
    }
    let (updates, creates): (Vec<_>, Vec<_>) = statements.into_iter().partition(|(_, parsed)| {
        method != "replace"
            && parsed.name != "cluster_property_set"
            && parsed
                .id()
                .or(parsed.attr("uname"))
                .is_some_and(|id| config.find(id).is_some())
    });
    for (number, parsed) in creates {
        config.add(parsed).map_err(|e| format!("{number}: {e}"))?;
    }
    for (number, parsed) in updates {
        let id = parsed
            .id()
            .or(parsed.attr("uname"))
            .unwrap_or_default()
            .to_string();
        config
            .update(&id, parsed)
            .map_err(|e| format!("{number}: {e}"))?;
    }
    if method == "push" {
        let rest = unnamed(config, None);
        config.delete(&rest).map_err(|e| e.to_string())?;
    }
    Ok(warnings)
}

/// Crm text as statements with their line numbers, in crmsh's processing order: crmsh parses
/// everything first and adds it nodes first, then primitives, containers, constraints..., so
/// a group may come before its members. `#` lines stay with the statement that follows them,
/// as XML comments.
fn parse_statements(text: &str) -> Result<Vec<(usize, Element)>, String> {
    let mut statements = Vec::new();
    let mut comments = Vec::new();
    for line in lex::logical_lines(text) {
        if line.text.starts_with('#') {
            comments.push(line.text.trim().to_string());
            continue;
        }
        let tokens = lex::split(&line.text).map_err(|e| format!("{}: {e}", line.number))?;
        let Some(first) = tokens.first() else {
            continue;
        };
        let first = first.to_ascii_lowercase();
        if !EDIT_COMMANDS.contains(&first.as_str()) {
            return Err(format!(
                "{}: {first}: not a configuration statement",
                line.number
            ));
        }
        let mut parsed = parse::parse(&tokens).map_err(|e| format!("{}: {e}", line.number))?;
        attach_comments(&mut parsed, std::mem::take(&mut comments));
        statements.push((line.number, parsed));
    }
    statements.sort_by_key(|(_, parsed)| processing_rank(&parsed.name));
    Ok(statements)
}

/// The primitives' agents and parameters, as when they are typed; Ok holds the warnings
/// (`check-mode relaxed`).
fn check_agents(statements: &[(usize, Element)], options: &Options) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for (number, parsed) in statements.iter().filter(|(_, p)| p.name == "primitive") {
        match check_agent(parsed, options) {
            Ok(found) => warnings.extend(found),
            Err(messages) => return Err(format!("{number}: {}", messages.join("; "))),
        }
    }
    Ok(warnings)
}

/// The id of the object a statement defines (a property or defaults statement without
/// `$id` goes into the default set).
fn statement_id(parsed: &Element) -> Option<&str> {
    let set = || parsed.elements().next().and_then(Element::id);
    match parsed.name.as_str() {
        "cluster_property_set" => parsed.id().or(Some("cib-bootstrap-options")),
        "rsc_defaults" => set().or(Some("rsc-options")),
        "op_defaults" => set().or(Some("op-options")),
        _ => parsed.id().or(parsed.attr("uname")),
    }
}

/// crmsh's `_sort_xml_order`, by the tag a statement parses to.
fn processing_rank(tag: &str) -> u32 {
    match tag {
        "node" => 0,
        "template" => 1,
        "primitive" => 2,
        "bundle" => 3,
        "group" => 4,
        "master" => 5,
        "clone" => 6,
        "op" => 7,
        "tag" => 8,
        "rsc_location" | "rsc_colocation" | "rsc_order" => 9,
        "rsc_ticket" | "fencing-topology" => 10,
        "cluster_property_set" => 11,
        "rsc_defaults" => 12,
        "op_defaults" => 13,
        "acl_role" => 14,
        "acl_target" | "acl_group" | "acl_user" => 15,
        "alert" => 16,
        _ => 1000,
    }
}

/// crmsh's `stuff_comments`: comments go first in the object (in a defaults statement, in its
/// attribute set).
fn attach_comments(parsed: &mut Element, comments: Vec<String>) {
    if comments.is_empty() {
        return;
    }
    let target = if matches!(parsed.name.as_str(), "rsc_defaults" | "op_defaults") {
        match parsed.elements_mut().next() {
            Some(set) => set,
            None => return,
        }
    } else {
        parsed
    };
    for (i, c) in comments.into_iter().enumerate() {
        target.children.insert(i, hapx_cib::xml::Node::Comment(c));
    }
}

fn load_xml(config: &mut Config, text: &str, method: &str) -> Result<(), String> {
    let doc = Document::parse(text).map_err(|e| e.to_string())?;
    let new_conf = if doc.root.name == "cib" {
        doc.root
            .child("configuration")
            .cloned()
            .ok_or("the CIB has no <configuration>")?
    } else if doc.root.name == "configuration" {
        doc.root
    } else {
        return Err(format!(
            "expected <cib> or <configuration>, found <{}>",
            doc.root.name
        ));
    };
    if method == "update" {
        let conf = config.doc.root.child_or_insert("configuration");
        for section in new_conf.elements() {
            let target = conf.child_or_insert(&section.name);
            for obj in section.elements() {
                let id = obj.id();
                target.children.retain(|n| !matches!(n, hapx_cib::xml::Node::Element(e) if id.is_some() && e.id() == id));
                target.children.push(obj.clone().into());
            }
        }
    } else {
        *config.doc.root.child_or_insert("configuration") = new_conf;
    }
    Ok(())
}
