//! The top level besides `configure`: `status` and `ra`, and the immediate edits that the
//! `resource` and `node` levels (in their own modules) make.
//!
//! Resource and node commands change the CIB at once, through the session's backend; on a live
//! cluster the commit goes through `cibadmin`. `status` is `crm_mon -1` on a live cluster, as in
//! crmsh; on a file CIB (the embedded cluster, `CIB_file`) hapx renders the same text itself
//! ([`crate::mon`]), so no Pacemaker is needed.

use std::process::Command;

use hapx_cib::xml::Document;

use super::Session;
use crate::backend::Version;
use crate::mon;
use crate::ra;

impl Session {
    /// `status [crm_mon options]`: on a live cluster `crm_mon -1`; on a file CIB (the embedded
    /// cluster, `CIB_file`) crm_mon's text rendered natively, so no Pacemaker is needed.
    pub(super) fn status(&mut self, args: &[String]) {
        // crmsh's `status` alone is `crm_mon -1 -r`: stopped resources are listed too.
        let inactive = ["-r".to_string()];
        let args = if args.is_empty() { &inactive[..] } else { args };
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
    pub(super) fn edit_now(
        &mut self,
        client: &str,
        edit: impl FnOnce(&mut Document) -> Result<(), String>,
    ) {
        self.edit_now_ok(client, edit);
    }

    /// [`Session::edit_now`], saying whether the change was made.
    pub(super) fn edit_now_ok(
        &mut self,
        client: &str,
        edit: impl FnOnce(&mut Document) -> Result<(), String>,
    ) -> bool {
        if self.refused_after_errors() {
            return false;
        }
        let mut doc = match self.backend.load() {
            Ok(doc) => doc,
            Err(e) => {
                self.error(&e.to_string());
                return false;
            }
        };
        let version = Version::of(&doc.root);
        if let Err(e) = edit(&mut doc) {
            self.error(&e);
            return false;
        }
        if let Err(e) = self.backend.commit_by(&doc, version, client) {
            self.error(&e.to_string());
            return false;
        }
        // An unedited working copy is reloaded; an edited one keeps its base version and so is
        // refused at commit, as any concurrent change is.
        if !self.has_changes() {
            self.working = None;
        }
        true
    }

    /// A script that had errors writes nothing more: says so, and whether it is refused.
    fn refused_after_errors(&mut self) -> bool {
        let refused = !self.interactive && !self.failed.is_empty();
        if refused {
            self.error("refused: this input had errors; nothing was written");
        }
        refused
    }

    /// A change to a file CIB's status section (what the cluster knows, not its
    /// configuration), made under the CIB's lock as a status update (`num_updates` + 1);
    /// saying whether it was written. `client` names the tool that would make the change.
    pub(super) fn edit_status_now(
        &mut self,
        client: &str,
        edit: impl FnOnce(&mut Document) -> Result<(), String>,
    ) -> bool {
        if self.refused_after_errors() {
            return false;
        }
        let Some(path) = self.backend.file().map(std::path::Path::to_path_buf) else {
            self.error(&format!(
                "{client}: the status section is written only on a file CIB here"
            ));
            return false;
        };
        let store = crate::driver::store::Store::new(path);
        let mut failure = None;
        let written = store.update(crate::driver::store::Bump::Status, |doc| {
            edit(doc).map_err(|e| failure = Some(e)).ok()
        });
        match (written, failure) {
            (_, Some(e)) => self.error(&e),
            (Err(e), None) => self.error(&e.to_string()),
            (Ok(_), None) => return true,
        }
        false
    }

    pub(super) fn load_now(&mut self) -> Option<Document> {
        match self.backend.load() {
            Ok(doc) => Some(doc),
            Err(e) => {
                self.error(&e.to_string());
                None
            }
        }
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
pub(super) fn multicolumn(names: &[String], width: usize) -> String {
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
pub(super) fn crm_mon_installed() -> bool {
    tool_installed("crm_mon")
}

/// Whether Pacemaker's command-line tool `name` is on the PATH.
pub(super) fn tool_installed(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}
