//! The `options` level: the user's preferences ([`crate::options`]).
//!
//! `options` enters the level; `options CMD ARGS` from elsewhere runs one command and saves,
//! as crmsh saves when a command only passes through the level. Inside the level, changes last
//! for the session until `save`. Refused values are reported the way crmsh's regression
//! transcripts show them: `ERROR: message`, without the line number.

use super::{Level, Session};
use crate::options::{SETTINGS, setting};

/// The level's own commands besides one per setting.
const OPTIONS_COMMANDS: &[&str] = &["show", "list", "save", "reset"];

impl Session {
    /// `options [CMD ARGS]` at the top level.
    pub(super) fn options_level(&mut self, tokens: &[String]) {
        let Some(cmd) = tokens.get(1) else {
            self.level = Level::Options;
            return;
        };
        let cmd = cmd.to_ascii_lowercase();
        let before = self.errors;
        self.options_command(&cmd, &tokens[1..]);
        if self.errors == before && self.options.changed {
            self.save_options();
        }
    }

    /// One command of the options level; `tokens[0]` is the command.
    pub(super) fn options_command(&mut self, cmd: &str, tokens: &[String]) {
        match cmd {
            "show" | "list" => {
                let text = self.options.show();
                self.print(&text);
            }
            "save" => self.save_options(),
            "reset" => self.options.reset(),
            "help" => {
                let text = format!(
                    "options commands: {}\n",
                    Session::options_commands().join(" ")
                );
                self.print(&text);
            }
            _ => self.set_option(cmd, &tokens[1..]),
        }
    }

    fn set_option(&mut self, cmd: &str, args: &[String]) {
        let Some(s) = setting(cmd) else {
            return self.error(&format!("options.{cmd}: No such command"));
        };
        if cmd != s.name {
            self.diag(
                "WARNING",
                &format!(
                    "This command '{cmd}' is deprecated, please use '{}'",
                    s.name
                ),
            );
            self.diag("INFO", &format!("\"{cmd}\" is accepted as \"{}\"", s.name));
        }
        // `user` alone clears the user; every other setting takes exactly one value.
        let value = match args {
            [value] => value.as_str(),
            [] if s.name == "user" => "",
            _ => {
                return self.error(&format!(
                    "options.{}: takes exactly 1 argument ({} given)",
                    s.name,
                    args.len()
                ));
            }
        };
        if let Err(e) = self.options.set(s, value) {
            let line = self.line.take();
            self.error(&e.to_string());
            self.line = line;
        }
    }

    fn save_options(&mut self) {
        if let Err(e) = self.options.save() {
            self.error(&format!("options.save: {e}"));
        }
    }

    /// Every command of the options level (help, completion, the man page).
    pub fn options_commands() -> Vec<&'static str> {
        OPTIONS_COMMANDS
            .iter()
            .copied()
            .chain(SETTINGS.iter().map(|s| s.name))
            .collect()
    }
}
