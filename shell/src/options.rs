//! crmsh's user preferences: the `options` level and `~/.config/crm/crm.conf`.
//!
//! Twelve settings (`editor`, `pager`, `user`, `skill-level`, `output`, `colorscheme`,
//! `sort-elements`, `check-frequency`, `check-mode`, `wait`, `add-quotes`, `manage-children`)
//! live in one table, [`SETTINGS`], which drives validation (with crmsh's messages), `show`
//! and persistence. Values are kept as typed (`wait off` shows as `"off"`, as crmsh shows it);
//! typed accessors ([`Options::sort_elements`], [`Options::check_mode`],
//! [`Options::manage_children`] ...) are what the rest of the shell reads.
//!
//! The file is crmsh's own: an INI file with `[core]` and `[color]` sections and underscore
//! keys (`sort_elements = no`), read from `/etc/crm/crm.conf` (system-wide) and then the user's
//! file, which is `CRM_CONFIG_FILE`, else `$XDG_CONFIG_HOME/crm/crm.conf`, else
//! `$HOME/.config/crm/crm.conf`. `save` rewrites the user's file, keeping every key hapx does
//! not know, so crmsh and hapx can share it.

use std::path::{Path, PathBuf};

/// A rejected setting, worded as crmsh words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

/// How a setting's value is checked.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A program on the PATH (its first word); `$VAR` names an environment variable.
    Program(&'static str, &'static [&'static str]),
    /// Any text.
    Text,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// yes/no and their spellings (true/false, on/off, 1/0).
    Boolean,
    /// Six comma-separated colour names.
    ColorScheme,
}

/// One user preference.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The command and the name `show` prints (`skill-level`).
    pub name: &'static str,
    /// The crm.conf section and key (`core`, `skill_level`).
    section: &'static str,
    key: &'static str,
    kind: Kind,
    default: &'static str,
}

const COLORS: &[&str] = &[
    "black", "blue", "green", "cyan", "red", "magenta", "yellow", "white", "normal",
];

/// Every setting, in the order `show` prints them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "editor",
        section: "core",
        key: "editor",
        kind: Kind::Program("EDITOR", &["vim", "vi", "emacs", "nano"]),
        default: "",
    },
    Setting {
        name: "pager",
        section: "core",
        key: "pager",
        kind: Kind::Program("PAGER", &["less", "more", "pg"]),
        default: "",
    },
    Setting {
        name: "user",
        section: "core",
        key: "user",
        kind: Kind::Text,
        default: "",
    },
    Setting {
        name: "skill-level",
        section: "core",
        key: "skill_level",
        kind: Kind::Choice(&["operator", "administrator", "expert"]),
        default: "expert",
    },
    Setting {
        name: "output",
        section: "color",
        key: "style",
        kind: Kind::Choice(&["plain", "color", "uppercase"]),
        default: "color",
    },
    Setting {
        name: "colorscheme",
        section: "color",
        key: "colorscheme",
        kind: Kind::ColorScheme,
        default: "yellow,normal,cyan,red,green,magenta",
    },
    Setting {
        name: "sort-elements",
        section: "core",
        key: "sort_elements",
        kind: Kind::Boolean,
        default: "yes",
    },
    Setting {
        name: "check-frequency",
        section: "core",
        key: "check_frequency",
        kind: Kind::Choice(&["always", "on-verify", "never"]),
        default: "always",
    },
    Setting {
        name: "check-mode",
        section: "core",
        key: "check_mode",
        kind: Kind::Choice(&["strict", "relaxed"]),
        default: "strict",
    },
    Setting {
        name: "wait",
        section: "core",
        key: "wait",
        kind: Kind::Boolean,
        default: "no",
    },
    Setting {
        name: "add-quotes",
        section: "core",
        key: "add_quotes",
        kind: Kind::Boolean,
        default: "yes",
    },
    Setting {
        name: "manage-children",
        section: "core",
        key: "manage_children",
        kind: Kind::Choice(&["ask", "never", "always"]),
        default: "ask",
    },
];

/// The setting a command names: `sort-elements` or its old spelling `sort_elements`.
pub fn setting(name: &str) -> Option<&'static Setting> {
    let name = name.replace('_', "-");
    SETTINGS.iter().find(|s| s.name == name)
}

/// The values a setting's completion offers (choices, yes/no, colours).
pub fn choices(name: &str) -> Vec<String> {
    let words: &[&str] = match setting(name).map(|s| s.kind) {
        Some(Kind::Choice(choices)) => choices,
        Some(Kind::Boolean) => &["yes", "no"],
        Some(Kind::ColorScheme) => COLORS,
        Some(Kind::Program(_, programs)) => programs,
        _ => &[],
    };
    words.iter().map(|w| w.to_string()).collect()
}

/// Who the user says they are: commands need at least a given level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkillLevel {
    Operator,
    Administrator,
    Expert,
}

impl SkillLevel {
    pub fn name(self) -> &'static str {
        match self {
            SkillLevel::Operator => "operator",
            SkillLevel::Administrator => "administrator",
            SkillLevel::Expert => "expert",
        }
    }
}

/// When crmsh checks the configuration's semantics (agent parameters, references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFrequency {
    /// At every change on a terminal, at commit and verify otherwise.
    Always,
    /// Only at commit and verify.
    OnVerify,
    /// Never (crm_verify still runs at commit).
    Never,
}

/// Whether failed semantic checks stop a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMode {
    /// They are errors.
    Strict,
    /// They are warnings.
    Relaxed,
}

/// What `resource`/`node` commands do with the children of a group or clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageChildren {
    /// Ask on a terminal (no in a script).
    Ask,
    Never,
    Always,
}

/// crmsh's `is_boolean_true` / `verify_boolean`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// An INI file as crmsh's configparser reads and writes it: sections of `key = value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ini {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Ini {
    fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                ini.sections.push((name.trim().to_string(), Vec::new()));
            } else if let Some((k, v)) = line.split_once('=').or_else(|| line.split_once(':'))
                && let Some((_, entries)) = ini.sections.last_mut()
            {
                entries.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        ini
    }

    fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(s, _)| s == section)
            .flat_map(|(_, entries)| entries.iter())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .next_back()
    }

    fn set(&mut self, section: &str, key: &str, value: &str) {
        let index = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let entries = &mut self.sections[index].1;
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => entries.push((key.to_string(), value.to_string())),
        }
    }

    fn remove(&mut self, section: &str, key: &str) {
        for (s, entries) in &mut self.sections {
            if s == section {
                entries.retain(|(k, _)| k != key);
            }
        }
    }

    /// configparser's layout: `[section]`, `key = value` lines, a blank line after each.
    fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, entries) in &self.sections {
            out.push_str(&format!("[{name}]\n"));
            for (k, v) in entries {
                out.push_str(&format!("{k} = {v}\n"));
            }
            out.push('\n');
        }
        out
    }
}

/// The user's preferences: defaults, then `/etc/crm/crm.conf`, then the user's file, then what
/// this session set.
#[derive(Debug, Clone)]
pub struct Options {
    system: Ini,
    user: Ini,
    /// Where `save` writes.
    pub path: PathBuf,
    /// Set since the last load or save.
    pub changed: bool,
}

impl Default for Options {
    /// Defaults only, saved nowhere unless `path` is set.
    fn default() -> Self {
        Options {
            system: Ini::default(),
            user: Ini::default(),
            path: PathBuf::new(),
            changed: false,
        }
    }
}

/// The user's crm.conf: `CRM_CONFIG_FILE`, else in [`config_home`].
pub fn user_file() -> PathBuf {
    if let Some(file) = std::env::var_os("CRM_CONFIG_FILE").filter(|f| !f.is_empty()) {
        return PathBuf::from(file);
    }
    config_home().join("crm.conf")
}

/// crmsh's `CONFIG_HOME`: `$XDG_CONFIG_HOME/crm`, else `$HOME/.config/crm`.
pub fn config_home() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/root/.config"))
        .join("crm")
}

/// The system-wide file crmsh reads before the user's.
pub const SYSTEM_FILE: &str = "/etc/crm/crm.conf";

impl Options {
    /// The preferences as crmsh would load them now.
    pub fn load() -> Options {
        Options::load_from(Path::new(SYSTEM_FILE), &user_file())
    }

    /// Reads `system` and `user` (missing files count as empty).
    pub fn load_from(system: &Path, user: &Path) -> Options {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map(|t| Ini::parse(&t))
                .unwrap_or_default()
        };
        Options {
            system: read(system),
            user: read(user),
            path: user.to_path_buf(),
            changed: false,
        }
    }

    /// The value of a setting as typed (`"off"`), or its default.
    pub fn raw(&self, s: &Setting) -> String {
        if let Some(v) = self
            .user
            .get(s.section, s.key)
            .or_else(|| self.system.get(s.section, s.key))
        {
            return v.to_string();
        }
        match s.kind {
            Kind::Program(var, programs) => program_default(var, programs),
            _ => s.default.to_string(),
        }
    }

    fn value(&self, name: &str) -> String {
        let s = setting(name).expect("a setting of the table");
        self.raw(s)
    }

    fn flag(&self, name: &str) -> bool {
        let s = setting(name).expect("a setting of the table");
        parse_bool(&self.raw(s))
            .or_else(|| parse_bool(s.default))
            .unwrap_or(false)
    }

    /// Checks `value` for `s` and keeps it (not yet saved).
    pub fn set(&mut self, s: &Setting, value: &str) -> Result<(), OptionError> {
        validate(s, value)?;
        self.user.set(s.section, s.key, value);
        self.changed = true;
        Ok(())
    }

    /// Every setting back to its default (system-wide values apply again).
    pub fn reset(&mut self) {
        for s in SETTINGS {
            self.user.remove(s.section, s.key);
        }
        self.changed = true;
    }

    /// Writes the user's file (creating its directory), keeping keys hapx does not know.
    pub fn save(&mut self) -> Result<(), OptionError> {
        let fail = |e: std::io::Error| OptionError(format!("{}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self.path.with_extension("conf.tmp");
        std::fs::write(&tmp, self.user.to_text()).map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        self.changed = false;
        Ok(())
    }

    /// `show`: every setting as `name "value"`, one a line.
    pub fn show(&self) -> String {
        SETTINGS
            .iter()
            .map(|s| format!("{} \"{}\"\n", s.name, self.raw(s)))
            .collect()
    }

    /// `configure show` orders objects by kind and then id; `no`: by kind, then as created.
    pub fn sort_elements(&self) -> bool {
        self.flag("sort-elements")
    }

    /// Wait for the cluster to settle after a commit (`crm -w`).
    pub fn wait(&self) -> bool {
        self.flag("wait")
    }

    /// Quote arguments with spaces in one-shot commands.
    pub fn add_quotes(&self) -> bool {
        self.flag("add-quotes")
    }

    pub fn check_frequency(&self) -> CheckFrequency {
        match self.value("check-frequency").as_str() {
            "on-verify" => CheckFrequency::OnVerify,
            "never" => CheckFrequency::Never,
            _ => CheckFrequency::Always,
        }
    }

    pub fn check_mode(&self) -> CheckMode {
        match self.value("check-mode").as_str() {
            "relaxed" => CheckMode::Relaxed,
            _ => CheckMode::Strict,
        }
    }

    pub fn manage_children(&self) -> ManageChildren {
        match self.value("manage-children").as_str() {
            "never" => ManageChildren::Never,
            "always" => ManageChildren::Always,
            _ => ManageChildren::Ask,
        }
    }

    pub fn skill_level(&self) -> SkillLevel {
        match self.value("skill-level").as_str() {
            "operator" => SkillLevel::Operator,
            "administrator" => SkillLevel::Administrator,
            _ => SkillLevel::Expert,
        }
    }

    pub fn editor(&self) -> String {
        self.value("editor")
    }

    pub fn pager(&self) -> String {
        self.value("pager")
    }
}

/// crmsh's `opt_program` default: the environment variable, else the first program found.
fn program_default(var: &str, programs: &[&str]) -> String {
    if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return v;
    }
    programs
        .iter()
        .find_map(|p| find_program(p))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// An executable file named `prog` on the PATH (or the path itself when absolute).
fn find_program(prog: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(prog))
        .find(|p| executable(p))
}

/// crmsh's checks and messages for each kind of setting.
fn validate(s: &Setting, value: &str) -> Result<(), OptionError> {
    let fail = |m: String| Err(OptionError(m));
    match s.kind {
        Kind::Text => Ok(()),
        Kind::Program(..) => {
            let prog = value.split_whitespace().next().unwrap_or_default();
            if prog.starts_with('$') || find_program(prog).is_some() {
                Ok(())
            } else {
                fail(format!("{value} does not exist or is not a program"))
            }
        }
        Kind::Choice(choices) if choices.contains(&value) => Ok(()),
        Kind::Choice(choices) => fail(format!(
            "{value} not valid (choose one from {})",
            choices.join(",")
        )),
        Kind::Boolean if parse_bool(value).is_some() => Ok(()),
        Kind::Boolean => fail(format!("{value} not valid (yes or no are valid)")),
        Kind::ColorScheme => {
            let colors: Vec<&str> = value.split(',').collect();
            if colors.len() != 6 {
                return fail(format!("bad color scheme: {value}"));
            }
            match colors.iter().find(|c| !COLORS.contains(c)) {
                Some(c) => fail(format!("{c} is not a recognized color")),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hapx-options-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn crmsh_messages_for_bad_values() {
        let mut o = Options::default();
        let err = |o: &mut Options, n: &str, v: &str| o.set(setting(n).unwrap(), v).unwrap_err().0;
        assert_eq!(
            err(&mut o, "check-mode", "nosuchever"),
            "nosuchever not valid (choose one from strict,relaxed)"
        );
        assert_eq!(
            err(&mut o, "colorscheme", "normal,yellow,cyan,red"),
            "bad color scheme: normal,yellow,cyan,red"
        );
        assert_eq!(
            err(&mut o, "colorscheme", "normal,yellow,cyan,red,green,pink"),
            "pink is not a recognized color"
        );
        assert_eq!(
            err(&mut o, "pager", "nosuchprogram"),
            "nosuchprogram does not exist or is not a program"
        );
        assert_eq!(
            err(&mut o, "wait", "happy"),
            "happy not valid (yes or no are valid)"
        );
        assert!(!o.changed, "a refused value changes nothing");
    }

    #[test]
    fn values_are_shown_as_typed_and_read_typed() {
        let mut o = Options::default();
        o.set(setting("sort_elements").unwrap(), "false").unwrap();
        o.set(setting("check-mode").unwrap(), "relaxed").unwrap();
        o.set(setting("manage-children").unwrap(), "never").unwrap();
        assert!(!o.sort_elements());
        assert_eq!(o.check_mode(), CheckMode::Relaxed);
        assert_eq!(o.manage_children(), ManageChildren::Never);
        assert!(
            o.show().contains("sort-elements \"false\"\n"),
            "{}",
            o.show()
        );
        o.reset();
        assert!(o.sort_elements());
        assert_eq!(o.check_frequency(), CheckFrequency::Always);
    }

    #[test]
    fn saved_in_crmsh_layout_keeping_unknown_keys() {
        let dir = scratch("save");
        let user = dir.join("crm/crm.conf");
        std::fs::create_dir_all(user.parent().unwrap()).unwrap();
        std::fs::write(&user, "[core]\ndebug = yes\n[path]\nocf_root = /x\n").unwrap();
        let mut o = Options::load_from(&dir.join("none"), &user);
        o.set(setting("wait").unwrap(), "off").unwrap();
        o.set(setting("output").unwrap(), "plain").unwrap();
        o.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&user).unwrap(),
            "[core]\ndebug = yes\nwait = off\n\n[path]\nocf_root = /x\n\n[color]\nstyle = plain\n\n"
        );
        let again = Options::load_from(&dir.join("none"), &user);
        assert_eq!(again.raw(setting("wait").unwrap()), "off");
        assert!(!again.wait());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn system_file_under_the_users() {
        let dir = scratch("layers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("sys"),
            "[core]\ncheck_mode = relaxed\nwait = yes\n",
        )
        .unwrap();
        std::fs::write(dir.join("user"), "[core]\nwait = no\n").unwrap();
        let o = Options::load_from(&dir.join("sys"), &dir.join("user"));
        assert_eq!(o.check_mode(), CheckMode::Relaxed);
        assert!(!o.wait());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
