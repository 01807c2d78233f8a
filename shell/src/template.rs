//! crmsh's configuration templates (`configure template`): a template from crmsh's template
//! directory (`/usr/share/crmsh/templates`: `virtual-ip`, `apache`, `filesystem`...) becomes a
//! named configuration file in `~/.config/crm/crmconf` (`new NAME TEMPLATE... params k=v`), which
//! generates crm text (`apply`) that is loaded into the working configuration.
//!
//! A template is `%name`, `%depends_on OTHER`, then `%required`/`%optional` parameter lines
//! (`%% ip`), then `%generate` and the crm text, where `%_` is the configuration's prefix,
//! `%_:ip` a parameter, a line starting `opt` is dropped when its parameter is not set, and
//! `%if %_:p` ... `%else` ... `%fi` keep lines by whether `p` is set. This is a port of
//! crmsh's `template.py` and `ui_template.py`, with the same messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// crmsh's `path.sharedir` + `/templates` (`[path] sharedir` in crm.conf is not consulted).
pub fn templates_dir() -> PathBuf {
    ["/usr/share/crmsh", "/usr/local/share/crmsh", "/opt/crmsh"]
        .iter()
        .map(|d| Path::new(d).join("templates"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("/usr/share/crmsh/templates"))
}

/// crmsh's `CRMCONF_DIR` (after its move to the XDG layout): `crmconf` in crmsh's config home
/// (`~/.config/crm/crmconf`), where configurations made from templates live.
pub fn configs_dir() -> PathBuf {
    crate::options::config_home().join("crmconf")
}

/// What a template operation says: INFO/WARNING/ERROR lines, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub lines: Vec<(&'static str, String)>,
}

impl Diagnostics {
    pub fn info(&mut self, m: String) {
        self.lines.push(("INFO", m));
    }
    pub fn warning(&mut self, m: String) {
        self.lines.push(("WARNING", m));
    }
    pub fn error(&mut self, m: String) {
        self.lines.push(("ERROR", m));
    }
    pub fn has_errors(&self) -> bool {
        self.lines.iter().any(|(l, _)| *l == "ERROR")
    }
}

/// The templates available.
pub fn list_templates() -> Vec<String> {
    list_files(&templates_dir())
}

/// The configurations made so far.
pub fn list_configs() -> Vec<String> {
    list_files(&configs_dir())
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// crmsh's `is_filename_sane`.
pub fn sane_name(name: &str, d: &mut Diagnostics) -> bool {
    if name.contains(['\'', '`', '/', '#', '*', '?', '$', '[', ']', ';']) {
        d.error(format!("{name}: bad filename"));
        return false;
    }
    true
}

/// crmsh's `LoadTemplate`: templates (and what they depend on) merged into one configuration.
#[derive(Debug, Default)]
struct LoadTemplate {
    name: String,
    pre_gen: Vec<String>,
    post_gen: Vec<String>,
    prefixes: Vec<String>,
    /// The templates being pulled in, outermost first: a `%depends_on` on one of them is a
    /// cycle, refused rather than followed forever.
    loading: Vec<String>,
    /// Where the templates are; [`templates_dir`] when unset.
    dir: Option<PathBuf>,
}

const EDIT_INSTRUCTIONS: &str = "# Edit instructions:
#
# Add content only at the end of lines starting with '%%'.
# Only add content, don't remove or replace anything.
# The parameters following '%required' are not optional,
# unlike those following '%optional'.
# You may also add comments for future reference.";

fn first_word_is(l: &[String], key: &str) -> bool {
    l.iter().any(|s| s.split_whitespace().next() == Some(key))
}

fn var(l: &[String], key: &str) -> Option<String> {
    l.iter().find_map(|s| {
        let a: Vec<&str> = s.split_whitespace().collect();
        (a.len() == 2 && a[0] == key).then(|| a[1].to_string())
    })
}

impl LoadTemplate {
    fn new_prefix(&mut self, name: &str) -> String {
        let mut prefix = name.to_string();
        let mut i = 1;
        while self.prefixes.contains(&prefix) {
            prefix = format!("{name}_{i}");
            i += 1;
        }
        self.prefixes.push(prefix.clone());
        prefix
    }

    /// Pulls in template `tmpl`; its prefix, or None (with an error said).
    fn load(&mut self, tmpl: &str, d: &mut Diagnostics) -> Option<String> {
        if self.loading.iter().any(|t| t == tmpl) {
            let chain = [&self.loading[..], &[tmpl.to_string()]]
                .concat()
                .join(" -> ");
            d.error(format!(
                "template {tmpl}: %depends_on makes a cycle ({chain})"
            ));
            return None;
        }
        self.loading.push(tmpl.to_string());
        let prefix = self.load_one(tmpl, d);
        self.loading.pop();
        prefix
    }

    fn load_one(&mut self, tmpl: &str, d: &mut Diagnostics) -> Option<String> {
        let path = self.dir.clone().unwrap_or_else(templates_dir).join(tmpl);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                d.error(format!("open: {e}: '{}'", path.display()));
                return None;
            }
        };
        let l: Vec<String> = text.split('\n').map(str::to_string).collect();
        let Some(g) = l.iter().position(|s| s == "%generate") else {
            d.error("invalid template: missing '%generate'".into());
            return None;
        };
        if var(&l, "%name").is_none() {
            d.error("invalid template: missing '%name'".into());
            return None;
        }
        if !(first_word_is(&l[..g], "%required") || first_word_is(&l[..g], "%optional")) {
            d.error("invalid template: missing '%required' or '%optional'".into());
            return None;
        }
        d.info(format!("pulling in template {tmpl}"));
        let mut pre_gen = l[..g].to_vec();
        let mut post_gen = l[g + 1..].to_vec();
        let name = var(&pre_gen, "%name").unwrap_or_default();
        for s in &l[..g] {
            if !s.starts_with("%depends_on") {
                continue;
            }
            let a: Vec<&str> = s.split_whitespace().collect();
            if a.len() != 2 {
                d.warning(format!("{s}: wrong usage"));
                continue;
            }
            if let Some(dep) = self.load(a[1], d) {
                replace_all(&mut post_gen, &format!("%{}", a[1]), &format!("%{dep}"));
            }
        }
        let prefix = self.new_prefix(&name);
        replace_all(&mut post_gen, "%_:", &format!("%{prefix}:"));
        replace_all(&mut post_gen, "%_", &prefix);
        let at = pre_gen
            .iter()
            .position(|s| s == "%required")
            .or_else(|| pre_gen.iter().position(|s| s == "%optional"))
            .unwrap_or(0);
        pre_gen.insert(at, format!("%pfx {prefix}"));
        self.pre_gen.extend(pre_gen);
        self.post_gen.extend(post_gen);
        Some(prefix)
    }

    /// Parameters filled in, `%PREFIX` references resolved, `%if` blocks decided.
    fn post_process(&mut self, params: &BTreeMap<String, String>) {
        for (n, v) in params {
            replace_all(
                &mut self.pre_gen,
                &format!("%% {n}"),
                &format!("%% {n}  {v}"),
            );
        }
        // `%PFX` not followed by `:` is the prefix itself.
        for line in &mut self.post_gen {
            for p in &self.prefixes {
                *line = replace_bare_prefix(line, p);
            }
        }
        let mut keep = Vec::new();
        let (mut in_if, mut outcome) = (false, false);
        for s in std::mem::take(&mut self.post_gen) {
            let a: Vec<&str> = s.split_whitespace().collect();
            if in_if {
                match a.first() {
                    Some(&"%fi") => in_if = false,
                    Some(&"%else") => outcome = !outcome,
                    _ if outcome => keep.push(s),
                    _ => {}
                }
                continue;
            }
            if a.len() == 2 && a[0] == "%if" {
                // A parameter left unreplaced (still `%...`) is not set.
                outcome = !a[1].starts_with('%');
                in_if = true;
                continue;
            }
            keep.push(s);
        }
        self.post_gen = keep;
    }

    fn generate(&self) -> String {
        [
            format!("# Configuration: {}", self.name),
            String::new(),
            EDIT_INSTRUCTIONS.to_string(),
            String::new(),
            self.pre_gen.join("\n"),
            "# Don't edit anything below this line.".to_string(),
            String::new(),
            "%generate".to_string(),
            self.post_gen.join("\n"),
        ]
        .join("\n")
    }
}

fn replace_all(lines: &mut [String], from: &str, to: &str) {
    for l in lines {
        *l = l.replace(from, to);
    }
}

/// crmsh's `re.sub('%(PFX)([^:]|$)', r'\1\2')`.
fn replace_bare_prefix(line: &str, prefix: &str) -> String {
    let pat = format!("%{prefix}");
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(&pat) {
        let after = &rest[at + pat.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(':') {
            out.push_str(&pat);
        } else {
            out.push_str(prefix);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `new NAME [TEMPLATE...] [params k=v...]`: writes the configuration; its name (crmsh names
/// it `TEMPLATE-N` when NAME is itself a template and no other is given).
pub fn new_config(name: &str, args: &[String], d: &mut Diagnostics) -> Option<String> {
    if !sane_name(name, d) {
        return None;
    }
    let dir = configs_dir();
    if dir.join(name).is_file() {
        d.error(format!("config {name} exists; delete it first"));
        return None;
    }
    let mut lt = LoadTemplate {
        name: name.to_string(),
        ..LoadTemplate::default()
    };
    let mut params = BTreeMap::from([("id".to_string(), name.to_string())]);
    let (mut in_params, mut loaded, mut ok) = (false, false, true);
    for s in args {
        if !in_params && s == "params" {
            in_params = true;
        } else if in_params {
            match s.split('=').collect::<Vec<_>>().as_slice() {
                [k, v] => {
                    params.insert(k.to_string(), v.to_string());
                }
                _ => {
                    d.error(format!("syntax in new: {}", args.join(" ")));
                    ok = false;
                }
            }
        } else if lt.load(s, d).is_some() {
            loaded = true;
        } else {
            ok = false;
        }
    }
    let mut name = name.to_string();
    if !loaded {
        if !list_templates().contains(&name) {
            d.error("Expected template argument".into());
            return None;
        }
        let tmpl = name.clone();
        name = (0..99)
            .map(|n| format!("{tmpl}-{n}"))
            .find(|c| !dir.join(c).is_file())?;
        lt = LoadTemplate {
            name: name.clone(),
            ..LoadTemplate::default()
        };
        lt.load(&tmpl, d);
    }
    if !ok {
        return None;
    }
    lt.post_process(&params);
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(&name), format!("{}\n", lt.generate())));
    if let Err(e) = written {
        d.error(format!("open: {e}"));
        return None;
    }
    Some(name)
}

/// crmsh's `config_exists`.
pub fn config_exists(name: &str, d: &mut Diagnostics) -> bool {
    if !sane_name(name, d) {
        return false;
    }
    if !configs_dir().join(name).is_file() {
        d.error(format!("{name}: no such config"));
        return false;
    }
    true
}

/// crmsh's `Template.process`: the crm text a configuration generates (None after errors).
pub fn process(name: &str, d: &mut Diagnostics) -> Option<String> {
    let text = match std::fs::read_to_string(configs_dir().join(name)) {
        Ok(t) => t,
        Err(e) => {
            d.error(format!("open: {e}"));
            return None;
        }
    };
    #[derive(PartialEq, Debug, Clone, Copy)]
    enum State {
        Start,
        Prefix,
        Data,
        Generate,
    }
    let mut state = State::Start;
    let (mut prefix, mut required, mut ok) = (String::new(), false, true);
    let mut user_data: BTreeMap<String, String> = BTreeMap::new();
    let mut pieces: Vec<Vec<Vec<String>>> = Vec::new();
    let mut piece: Vec<Vec<String>> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.starts_with('#') {
            continue;
        }
        let inp = raw.trim();
        let Ok(s) = crate::crm::lex::split(inp) else {
            d.error(format!("{}: No closing quotation", n + 1));
            continue;
        };
        let wrong_state = |d: &mut Diagnostics, state: &State| {
            let number = *state as u8;
            d.error(format!("{}: input ({inp}) in wrong state {number}", n + 1));
        };
        let first = s.first().map(String::as_str);
        match first {
            None => {
                if state == State::Generate && !piece.is_empty() {
                    pieces.push(std::mem::take(&mut piece));
                }
            }
            Some("%name" | "%depends_on" | "%suggests") => {}
            Some("%pfx") => {
                if matches!(state, State::Start | State::Data) && s.len() == 2 {
                    prefix = s[1].clone();
                    state = State::Prefix;
                } else if !matches!(state, State::Start | State::Data) {
                    wrong_state(d, &state);
                }
            }
            Some("%required") if state == State::Prefix => {
                state = State::Data;
                required = true;
            }
            Some("%optional") if matches!(state, State::Prefix | State::Data) => {
                state = State::Data;
                required = false;
            }
            Some("%required" | "%optional") => wrong_state(d, &state),
            Some("%%") => match s.len() {
                1 => d.warning(format!("{}: parameter name missing", n + 1)),
                2 if required => {
                    d.error(format!("{}: required parameter {} not set", n + 1, s[1]));
                    ok = false;
                }
                2 => {}
                3 => {
                    user_data.insert(format!("{prefix}:{}", s[1]), s[2].clone());
                }
                _ => d.error(format!("{}: {inp}: syntax error", n + 1)),
            },
            Some("%generate") if state == State::Data => {
                state = State::Generate;
                piece.clear();
            }
            _ if state == State::Generate => piece.push(s),
            _ => d.error(format!("{}: <{inp}> unexpected", n + 1)),
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    ok.then(|| generate(pieces, &user_data))
}

/// crmsh's `Template.generate`: parameters replaced, `opt` lines kept only when replaced, each
/// statement's lines joined as crm continuation lines.
fn generate(pieces: Vec<Vec<Vec<String>>>, user_data: &BTreeMap<String, String>) -> String {
    let mut out = Vec::new();
    for piece in pieces {
        let lines: Vec<String> = piece
            .into_iter()
            .filter_map(|words| replace_params(words, user_data))
            .map(|words| words.join(" "))
            .collect();
        if !lines.is_empty() {
            out.push(lines.join(" \\\n\t"));
        }
    }
    out.join("\n")
}

fn replace_params(
    mut words: Vec<String>,
    user_data: &BTreeMap<String, String>,
) -> Option<Vec<String>> {
    let mut changed = false;
    for word in &mut words {
        for (p, v) in user_data {
            let pat = format!("%{p}");
            let Some(pos) = word.find(&pat) else { continue };
            let end = pos + pat.len();
            if word[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                continue;
            }
            let value = if v.contains(' ') || word[..pos].ends_with('=') {
                format!("\"{v}\"")
            } else {
                v.clone()
            };
            *word = word.replace(&pat, &value);
            changed = true;
        }
    }
    match words.iter().position(|w| w == "opt") {
        Some(_) if !changed => None,
        Some(i) => {
            words.remove(i);
            Some(words)
        }
        None => Some(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_depends_on_cycle_is_an_error_not_a_stack_overflow() {
        let dir = std::env::temp_dir().join(format!("hapx-template-cycle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let template = |name: &str, dep: &str| {
            format!("%name {name}\n%depends_on {dep}\n%required\n%generate\nprimitive %_ Dummy\n")
        };
        std::fs::write(dir.join("selfish"), template("selfish", "selfish")).unwrap();
        std::fs::write(dir.join("ping"), template("ping", "pong")).unwrap();
        std::fs::write(dir.join("pong"), template("pong", "ping")).unwrap();
        for (tmpl, chain) in [
            ("selfish", "selfish -> selfish"),
            ("ping", "ping -> pong -> ping"),
        ] {
            let mut lt = LoadTemplate {
                dir: Some(dir.clone()),
                ..LoadTemplate::default()
            };
            let mut d = Diagnostics::default();
            lt.load(tmpl, &mut d);
            assert!(
                d.lines
                    .iter()
                    .any(|(level, m)| *level == "ERROR" && m.contains(chain)),
                "{tmpl}: {:?}",
                d.lines
            );
            assert!(lt.loading.is_empty());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn opt_lines_need_their_parameter_and_values_after_equals_are_quoted() {
        let data = BTreeMap::from([("vip:ip".to_string(), "10.0.0.1".to_string())]);
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            replace_params(words("params ip=%vip:ip"), &data),
            Some(words("params ip=\"10.0.0.1\""))
        );
        assert_eq!(
            replace_params(words("opt cidr_netmask=%vip:netmask"), &data),
            None
        );
        assert_eq!(
            replace_bare_prefix("primitive %vip x %vip:ip", "vip"),
            "primitive vip x %vip:ip"
        );
    }
}
