//! crmsh's skill levels (`options skill-level operator|administrator|expert`): commands that
//! change or inspect the configuration need `administrator`, ACL and resource-test commands
//! `expert`; below that, crmsh refuses them with `LEVEL.CMD: ACL administrator skill level
//! required`. The tables are crmsh 4.4.1's `@skill_level` decorations.

use super::{Level, Session};
use crate::options::SkillLevel;

const CONFIGURE_ADMIN: &[&str] = &[
    "_keywords",
    "_objects",
    "_regtest",
    "_test",
    "alert",
    "clone",
    "colocation",
    "collocation",
    "commit",
    "delete",
    "edit",
    "erase",
    "fencing_topology",
    "fencing-topology",
    "filter",
    "get_property",
    "graph",
    "group",
    "load",
    "location",
    "master",
    "modgroup",
    "monitor",
    "ms",
    "node",
    "op_defaults",
    "order",
    "primitive",
    "property",
    "refresh",
    "rename",
    "rsc_defaults",
    "rsc_template",
    "rsc_ticket",
    "save",
    "schema",
    "set",
    "show",
    "tag",
    "upgrade",
    "validate-all",
    "xml",
    "verify",
];
const CONFIGURE_EXPERT: &[&str] = &["acl_target", "role", "rsctest", "user"];
const RESOURCE_ADMIN: &[&str] = &[
    "ban",
    "cleanup",
    "clear",
    "unmigrate",
    "meta",
    "move",
    "migrate",
    "param",
    "secret",
    "utilization",
];
const RA_ADMIN: &[&str] = &["info", "list", "providers", "validate"];
const TEMPLATE_ADMIN: &[&str] = &["apply", "delete", "edit", "load", "new"];

/// The skill a command needs (level name and command, as crmsh names them).
pub fn required(level: &str, cmd: &str) -> Option<SkillLevel> {
    let table: &[(&[&str], SkillLevel)] = match level {
        "configure" => &[
            (CONFIGURE_ADMIN, SkillLevel::Administrator),
            (CONFIGURE_EXPERT, SkillLevel::Expert),
        ],
        "resource" => &[(RESOURCE_ADMIN, SkillLevel::Administrator)],
        "ra" => &[(RA_ADMIN, SkillLevel::Administrator)],
        "template" => &[(TEMPLATE_ADMIN, SkillLevel::Administrator)],
        _ => &[],
    };
    table
        .iter()
        .find(|(cmds, _)| cmds.contains(&cmd))
        .map(|(_, skill)| *skill)
}

impl Session {
    /// The level and command `tokens` run at the current level (`configure primitive` typed at
    /// the top is `configure`'s `primitive`).
    fn qualified(&self, tokens: &[String]) -> Option<(&'static str, String)> {
        let word = |i: usize| tokens.get(i).map(|t| t.to_ascii_lowercase());
        match self.level {
            Level::Configure if word(0).as_deref() == Some("template") => {
                word(1).map(|c| ("template", c))
            }
            Level::Configure => word(0).map(|c| ("configure", c)),
            Level::Ra => word(0).map(|c| ("ra", c)),
            Level::Template => word(0).map(|c| ("template", c)),
            Level::Top => match word(0).as_deref() {
                Some(level @ ("configure" | "resource" | "ra")) => {
                    let level = match level {
                        "configure" => "configure",
                        "resource" => "resource",
                        _ => "ra",
                    };
                    word(1).map(|c| (level, c))
                }
                _ => None,
            },
            Level::Options => None,
        }
    }

    /// False (and crmsh's error said) when the user's skill level is below the command's.
    pub(super) fn skilled_enough(&mut self, tokens: &[String]) -> bool {
        let Some((level, cmd)) = self.qualified(tokens) else {
            return true;
        };
        let Some(needed) = required(level, &cmd) else {
            return true;
        };
        if self.options.skill_level() >= needed {
            return true;
        }
        self.error(&format!(
            "{level}.{cmd}: ACL {} skill level required",
            needed.name()
        ));
        false
    }
}
