//! The `template` level under `configure`: configurations made from crmsh's templates
//! ([`crate::template`]) and applied to the working configuration.
//!
//! `new NAME TEMPLATE... [params k=v...]` writes `~/.config/crm/crmconf/NAME` and makes it
//! current;
//! `load [NAME]` picks the current one; `apply [replace|update] [NAME]` loads the crm text it
//! generates (replace: after an `erase`); `show [NAME]` prints that text; `list
//! [configs|templates]`; `delete NAME`. `up` goes back to `configure`.

use super::Session;
use crate::template::{self, Diagnostics};

/// The level's commands (help, completion, the man page).
pub const TEMPLATE_COMMANDS: &[&str] = &["apply", "delete", "list", "load", "new", "show"];

impl Session {
    /// One command of the template level; `tokens[0]` is the command.
    pub(super) fn template_command(&mut self, cmd: &str, tokens: &[String]) {
        let args: Vec<&str> = tokens[1..].iter().map(String::as_str).collect();
        let mut d = Diagnostics::default();
        match (cmd, args.as_slice()) {
            ("new", [name, ..]) => {
                if let Some(made) = template::new_config(name, &tokens[2..], &mut d) {
                    self.template_config = Some(made);
                }
            }
            ("load", []) => self.template_config = None,
            ("load", [name]) => {
                if template::config_exists(name, &mut d) {
                    self.template_config = Some(name.to_string());
                }
            }
            ("apply", rest) => {
                let (method, rest) = match rest {
                    [m @ ("replace" | "update"), rest @ ..] => (*m, rest),
                    _ => ("replace", rest),
                };
                if let Some(text) = self.template_text(rest.first().copied(), &mut d) {
                    self.report(d);
                    return self.apply_template(method, &text);
                }
            }
            ("show", rest) => {
                if let Some(text) = self.template_text(rest.first().copied(), &mut d) {
                    self.print(&format!("{text}\n"));
                }
            }
            ("list", rest) => {
                let columns = |names: Vec<String>| super::top::multicolumn(&names, 80);
                let text = match rest {
                    ["templates"] => columns(template::list_templates()),
                    ["configs"] => columns(template::list_configs()),
                    _ => format!(
                        "Templates:\n{}\nConfigurations:\n{}",
                        columns(template::list_templates()),
                        columns(template::list_configs())
                    ),
                };
                self.print(&text);
            }
            ("delete", [name, force @ ..]) => {
                if template::config_exists(name, &mut d) {
                    let current = self.template_config.as_deref() == Some(*name);
                    if current && force.is_empty() && !self.force {
                        d.error(format!(
                            "config {name} is in use; `delete {name} force` removes it"
                        ));
                    } else {
                        if current {
                            self.template_config = None;
                        }
                        if let Err(e) = std::fs::remove_file(template::configs_dir().join(name)) {
                            d.error(format!("delete: {e}"));
                        }
                    }
                }
            }
            ("help", _) => {
                let text = format!("template commands: {}\n", TEMPLATE_COMMANDS.join(" "));
                self.print(&text);
            }
            _ if TEMPLATE_COMMANDS.contains(&cmd) => d.error(format!(
                "template.{cmd}: wrong arguments: {}",
                args.join(" ")
            )),
            _ => d.error(format!("template.{cmd}: No such command")),
        }
        self.report(d);
    }

    /// The crm text of configuration `name`, else of the current one.
    fn template_text(&mut self, name: Option<&str>, d: &mut Diagnostics) -> Option<String> {
        let name = match name {
            Some(n) => {
                if !template::config_exists(n, d) {
                    return None;
                }
                n.to_string()
            }
            None => match &self.template_config {
                Some(n) => n.clone(),
                None => {
                    d.error("please load a config first".into());
                    return None;
                }
            },
        };
        template::process(&name, d)
    }

    /// The generated text into the working configuration (`replace`: after an erase).
    fn apply_template(&mut self, method: &str, text: &str) {
        let options = self.options.clone();
        let Some(w) = self.working() else { return };
        let mut next = w.config.clone();
        if method == "replace" {
            next.erase();
        }
        match super::text::load_cli(&mut next, text, "update", &options) {
            Ok(warnings) => {
                if let Some(w) = self.working.as_mut() {
                    w.config = next;
                }
                for warning in warnings {
                    self.diag("WARNING", &warning);
                }
            }
            Err(e) => self.error(&format!("apply: {e}")),
        }
    }

    fn report(&mut self, d: Diagnostics) {
        for (level, message) in d.lines {
            if level == "ERROR" {
                self.error(&message);
            } else {
                self.diag(level, &message);
            }
        }
    }
}
