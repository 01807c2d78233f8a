//! Reading configuration lines into the model, section by section.
//!
//! Each keyword is handled where HAProxy handles it; a word that is no keyword is an error with
//! a suggestion, a keyword hapx does not implement is a warning naming the line (see
//! [`super::keywords`]). Checks that need the whole configuration are in [`super::check`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::acl::AclError;
use super::bind_tls::{BindTlsOptions, ClientVerify, CrtSource};
use super::check_order::{RuleAction, StepKind};
use super::diag::{Diag, Diags, Severity};
use super::hint_words;
use super::keywords::{self, Support};
use super::lexer::{self, Place as LexPlace};
use super::logging::{ParsedLog, RingLog};
use super::model::*;
use super::values;
use crate::runtime::logformat::LogFormat;

/// The words of a line that HAProxy's address parser reads, which expands variables in them
/// even outside double quotes (`bind :$PORT`, `server s $HOST:6443`): the line's address
/// and the values of its `addr`, `source` and `usesrc` options. Nothing else on such a line
/// is expanded (`stats auth admin:$PW` keeps its `$`, as in HAProxy).
fn address_words(words: &[String]) -> Vec<usize> {
    let first = match words.first().map(String::as_str) {
        Some("bind" | "log" | "dispatch") => Some(1),
        Some("server" | "nameserver" | "peer") => Some(2),
        Some("server-template") => Some(3),
        Some("stats") if words.get(1).is_some_and(|w| w == "socket") => Some(2),
        Some("source") => Some(1),
        _ => None,
    };
    let options = matches!(
        words.first().map(String::as_str),
        Some(
            "server" | "default-server" | "server-template" | "source" | "tcp-check" | "http-check"
        )
    );
    let mut at: Vec<usize> = first.filter(|&i| i < words.len()).into_iter().collect();
    if options {
        at.extend(
            words
                .iter()
                .enumerate()
                .filter(|(_, w)| matches!(w.as_str(), "addr" | "source" | "usesrc"))
                .map(|(i, _)| i + 1)
                .filter(|&i| i < words.len()),
        );
    }
    at
}

/// A refused line's error as HAProxy words it: the usual one is the line's error (`Err`);
/// an unspaced one is an alert of its own, and the line is skipped.
fn report_line_error(
    e: super::diag::LineError,
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    match e {
        super::diag::LineError::Line(m) => Err(m),
        super::diag::LineError::Unspaced(m) => {
            diags.global_alert(format!("parsing [{place}]: {m}"));
            Ok(())
        }
    }
}

/// The section being read.
#[derive(Debug)]
enum Section {
    None,
    Global,
    Defaults(Proxy),
    Proxy(Proxy),
    Resolvers(Resolvers),
    /// `userlist`: its lines fill the list declared last ([`super::userlist`]).
    Userlist,
    /// `http-errors NAME`: its `errorfile` lines fill the section declared last.
    HttpErrors,
    /// `peers NAME`: its lines fill the section declared last ([`super::peers`]).
    Peers,
    /// `ring NAME`: its lines fill the ring declared last ([`super::logging::Ring`]).
    Ring,
    /// `log-forward NAME`: its lines are read and not acted on.
    LogForward,
    /// A section hapx does not implement: its lines are skipped (one warning at its header).
    Skipped,
}

/// One frame of `.if`/`.elif`/`.else`/`.endif` nesting.
#[derive(Debug)]
struct Cond {
    /// Lines in this branch are read.
    active: bool,
    /// Some branch of this block was taken already.
    taken: bool,
    /// The enclosing block is active.
    parent_active: bool,
}

/// Reads configuration files one after another into one [`Config`].
pub struct Parser<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    pub diags: Diags,
    config: Config,
    defaults: Proxy,
    named_defaults: HashMap<String, Proxy>,
    /// The side (frontend or backend) first inheriting the rules of a defaults section,
    /// by the section's place: HAProxy lets only one side use such a section.
    defaults_users: HashMap<String, ProxyKind>,
    /// How each named defaults section (by its place) was used: (by `from`, as the last
    /// defaults), for HAProxy's alert on mixing both.
    defaults_refs: HashMap<String, (bool, bool)>,
    /// An error HAProxy stops reading at (its `ERR_ABORT`): no later line or file is read.
    aborted: bool,
    section: Section,
    section_name: String,
    conds: Vec<Cond>,
}

impl std::fmt::Debug for Parser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser")
            .field("section", &self.section)
            .finish()
    }
}

/// The words of one line, with its place.
struct Line<'a> {
    words: &'a [String],
    place: &'a Place,
}

impl Line<'_> {
    fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }
}

type Outcome = Result<(), String>;

impl<'e> Parser<'e> {
    pub fn new(env: &'e dyn Fn(&str) -> Option<String>) -> Self {
        Parser {
            env,
            diags: Diags::default(),
            config: Config::default(),
            defaults: Proxy::new(String::new(), ProxyKind::Defaults, Place::default()),
            named_defaults: HashMap::new(),
            defaults_users: HashMap::new(),
            defaults_refs: HashMap::new(),
            aborted: false,
            section: Section::None,
            section_name: String::new(),
            conds: Vec::new(),
        }
    }

    /// Reads one file's text; `file` names it in messages.
    pub fn parse_text(&mut self, file: &Path, text: &str) {
        // HAProxy exits at once after a file it stopped reading.
        if self.aborted {
            return;
        }
        let errors_before = self.diags.list.iter().filter(|d| d.is_error()).count();
        self.read_lines(file, text);
        if self.diags.list.iter().filter(|d| d.is_error()).count() > errors_before {
            self.diags.global_alert(format!(
                "Error(s) found in configuration file : {}",
                file.display()
            ));
        }
    }

    fn read_lines(&mut self, file: &Path, text: &str) {
        self.config.files.push(file.to_path_buf());
        let name: Arc<str> = Arc::from(file.display().to_string());
        for (i, raw) in text.lines().enumerate() {
            let place = Place {
                file: name.clone(),
                line: i + 1,
            };
            let mut lex_place = LexPlace {
                file: &name,
                line: i + 1,
                section: &self.section_name,
                unquoted_vars: false,
            };
            let environment = &self.config.global.environment;
            let env = |name: &str| environment.get(name, self.env);
            let mut split = lexer::split_line(raw, lex_place, &env);
            // HAProxy expands variables in addresses itself, quoted or not: those words are
            // taken from the line read with unquoted variables expanded (when that reading
            // has the same words; otherwise they stay as written, and an address with a `$`
            // is refused where it is read).
            if let Ok(words) = &mut split {
                let addresses = address_words(words);
                if !addresses.is_empty() {
                    lex_place.unquoted_vars = true;
                    if let Ok(expanded) = lexer::split_line(raw, lex_place, &env) {
                        if expanded.len() == words.len() {
                            for i in addresses {
                                words[i] = expanded[i].clone();
                            }
                        }
                    }
                }
            }
            let words = match split {
                Ok(w) => w,
                Err(e) => {
                    // Worded as HAProxy's reader words it: no space before the colon, and
                    // the line shown under the message.
                    let shown = e.render(raw);
                    self.diags
                        .global_alert(format!("parsing [{place}]: {shown}"));
                    continue;
                }
            };
            if words.is_empty() {
                continue;
            }
            if words[0].starts_with('.') && self.directive(&words, &place) {
                if self.aborted {
                    break;
                }
                continue;
            }
            if self.conds.last().is_some_and(|c| !c.active) {
                continue;
            }
            let line = Line {
                words: &words,
                place: &place,
            };
            let aborts = self.aborts_on_error(&words);
            let diags_before = self.diags.list.len();
            if let Err(message) = self.line(&line) {
                self.diags.alert(&place, message);
            }
            self.timer_warnings(&line, diags_before);
            if aborts && self.diags.list[diags_before..].iter().any(haproxy_refuses) {
                self.aborted = true;
            }
            if self.aborted {
                break;
            }
        }
        if let Some(_open) = self.conds.last() {
            let place = Place {
                file: name,
                line: text.lines().count(),
            };
            self.diags.alert(&place, "missing '.endif' at end of file");
            self.conds.clear();
        }
        self.finish_section();
    }

    /// Ends reading: the configuration and every message.
    pub fn finish(mut self) -> (Config, Diags) {
        self.finish_section();
        add_implicit_default_resolvers(&mut self.config);
        self.diags.stopped = self.aborted;
        (self.config, self.diags)
    }

    /// Handles conditional blocks and `.diag`-style messages; false when `words[0]` is no
    /// directive.
    fn directive(&mut self, words: &[String], place: &Place) -> bool {
        let active = self.conds.last().is_none_or(|c| c.active);
        let rest = words[1..].join(" ");
        match words[0].as_str() {
            ".if" => {
                let value = active && self.condition(&words[1..], place);
                self.conds.push(Cond {
                    active: value,
                    taken: value,
                    parent_active: active,
                });
            }
            ".elif" | ".else" => {
                let value = words[0] == ".else" || self.condition(&words[1..], place);
                match self.conds.last_mut() {
                    Some(c) => {
                        c.active = c.parent_active && !c.taken && value;
                        c.taken |= c.active;
                    }
                    None => self
                        .diags
                        .alert(place, format!("'{}' without '.if'", words[0])),
                }
            }
            ".endif" => {
                if self.conds.pop().is_none() {
                    self.diags.alert(place, "'.endif' without '.if'");
                }
            }
            // As HAProxy's: the words quoted, `parsing [F:L]:` without a space; `.diag`
            // only in diagnostic mode (`-dD`, which hapx has not); `.alert` stops the reading.
            ".diag" | ".notice" | ".warning" | ".alert" if active && words.len() > 2 => {
                self.diags.global_alert(format!(
                    "parsing [{place}]: Unexpected argument '{}' for '{}'. Use quotes if the message should contain spaces.",
                    words[2], words[0]
                ));
            }
            ".notice" | ".warning" | ".alert" if active => {
                let text = format!("parsing [{place}]: '{rest}'.");
                match words[0].as_str() {
                    ".notice" => self.diags.global_notice(text),
                    ".warning" => self.diags.global_warn(text),
                    _ => {
                        self.diags.global_alert(text);
                        self.aborted = true;
                    }
                }
            }
            ".diag" | ".notice" | ".warning" | ".alert" => {}
            _ => return false,
        }
        true
    }

    /// Evaluates a `.if` condition: a number, or one of HAProxy's predicates.
    fn condition(&mut self, words: &[String], place: &Place) -> bool {
        let text = words.join(" ");
        let text = text.trim();
        let (negate, term) = match text.strip_prefix('!') {
            Some(t) => (true, t.trim()),
            None => (false, text),
        };
        let value = if let Ok(n) = term.parse::<i64>() {
            n != 0
        } else if let Some((func, args)) = term.strip_suffix(')').and_then(|t| t.split_once('(')) {
            let args: Vec<&str> = args.split(',').map(str::trim).collect();
            match (func.trim(), args.as_slice()) {
                ("defined", [name]) => self.config.global.environment.get(name, self.env).is_some(),
                ("feature", [_]) => false,
                ("streq", [a, b]) => a == b,
                ("strneq", [a, b]) => a != b,
                ("version_atleast", [v]) => version_cmp("2.6", v) >= std::cmp::Ordering::Equal,
                ("version_before", [v]) => version_cmp("2.6", v) == std::cmp::Ordering::Less,
                _ => {
                    self.diags
                        .alert(place, format!("unparsable conditional expression '{text}'"));
                    false
                }
            }
        } else if term.is_empty() {
            false
        } else {
            self.diags
                .alert(place, format!("unparsable conditional expression '{text}'"));
            false
        };
        value != negate
    }

    /// HAProxy's warnings about characters after a timer's unit (`20sec`), printed as the
    /// timer is read, so before the line's other messages (`at`: where those start). On a
    /// server line they name it as HAProxy's server parser does.
    fn timer_warnings(&mut self, line: &Line<'_>, at: usize) {
        let warnings = values::take_timer_warnings();
        if warnings.is_empty() {
            return;
        }
        let prefix = match (&self.section, line.words[0].as_str()) {
            (Section::Proxy(p), "server" | "server-template") => format!(
                "[{}] : 'server {}/{}' : ",
                line.place,
                p.name,
                line.arg(1).unwrap_or_default()
            ),
            (Section::Defaults(_) | Section::Proxy(_), "default-server") => {
                format!("[{}] : ", line.place)
            }
            _ => String::new(),
        };
        let diags: Vec<Diag> = warnings
            .into_iter()
            .map(|w| Diag {
                severity: Severity::Warning,
                place: None,
                while_parsing: false,
                message: format!("{prefix}{w}"),
            })
            .collect();
        self.diags.list.splice(at..at, diags);
    }

    fn line(&mut self, line: &Line<'_>) -> Outcome {
        let kw = line.words[0].as_str();
        if keywords::lookup(keywords::SECTIONS, kw).is_some() {
            return self.start_section(line);
        }
        match &mut self.section {
            Section::None => Err(format!("unknown keyword '{kw}' out of section.")),
            Section::Skipped => Ok(()),
            Section::Global if matches!(kw, "setenv" | "presetenv" | "unsetenv" | "resetenv") => {
                // HAProxy ignores a third argument to `setenv` and refuses a fourth.
                if let Some(extra) = line
                    .arg(4)
                    .filter(|_| kw.ends_with("setenv") && kw != "unsetenv")
                {
                    return Err(format!(
                        "'{kw}' cannot handle unexpected argument '{extra}'."
                    ));
                }
                if let Err(e) = self.config.global.environment.apply(line.words, self.env) {
                    // Worded `parsing [file:line]: ...`, without HAProxy's usual space.
                    self.diags
                        .global_alert(format!("parsing [{}]: {e}", line.place));
                }
                Ok(())
            }
            Section::Global => global(&mut self.config.global, line, &mut self.diags),
            Section::Resolvers(r) => resolvers(r, line, &mut self.diags),
            Section::HttpErrors => match self.config.http_errors.last_mut() {
                Some(section) => {
                    if let Some(w) = super::errors::truncation_warning(line.words) {
                        self.diags.global_warn(w);
                    }
                    super::errors::line(section, line.words)
                }
                None => Ok(()),
            },
            Section::Peers => {
                let local = super::peers::local_peer_name(&self.config);
                let global = &self.config.global;
                match self.config.peers.last_mut() {
                    Some(section) => super::peers::line(
                        section,
                        global,
                        &local,
                        line.words,
                        line.place,
                        &mut self.diags,
                    ),
                    None => Ok(()),
                }
            }
            Section::Ring => match self.config.rings.last_mut() {
                Some(ring) => {
                    super::logging::ring_line(ring, line.words, line.place, &mut self.diags)
                }
                None => Ok(()),
            },
            Section::LogForward => match self.config.log_forwards.last_mut() {
                Some(section) => super::logging::log_forward_line(
                    section,
                    line.words,
                    line.place,
                    &self.config.global,
                ),
                None => Ok(()),
            },
            Section::Userlist => {
                let list = self.config.userlists.last_mut();
                super::userlist::line(list, line.words, line.place, &mut self.diags);
                Ok(())
            }
            Section::Defaults(p) | Section::Proxy(p) => {
                proxy(p, &self.config.global, line, &mut self.diags)
            }
        }
    }

    fn start_section(&mut self, line: &Line<'_>) -> Outcome {
        self.finish_section();
        let kw = line.words[0].as_str();
        let name = line.arg(1).unwrap_or_default().to_string();
        self.section_name = kw.to_string();
        let place = line.place.clone();
        self.section = match kw {
            "global" => Section::Global,
            "defaults" => {
                // "A defaults section resets all settings": it starts afresh unless it
                // names another with `from`.
                let base = match line.arg(2) {
                    None => Proxy::new(String::new(), ProxyKind::Defaults, place.clone()),
                    Some(_) => self.base_defaults(line, 2)?,
                };
                self.note_defaults_ref(&base, true, &place);
                self.check_defaults_use(&base, ProxyKind::Defaults, &place);
                Section::Defaults(Proxy::from_defaults(
                    &base,
                    name,
                    ProxyKind::Defaults,
                    place,
                ))
            }
            "frontend" | "backend" | "listen" => {
                if name.is_empty() {
                    self.section = Section::Skipped;
                    return Err(format!("'{kw}' expects <name> as an argument."));
                }
                check_name(&name, kw)?;
                let kind = match kw {
                    "frontend" => ProxyKind::Frontend,
                    "backend" => ProxyKind::Backend,
                    _ => ProxyKind::Listen,
                };
                if let Some(other) = self.config.proxies.iter().find(|p| p.name == name) {
                    let clash = other.kind.is_frontend() && kind.is_frontend()
                        || other.kind.is_backend() && kind.is_backend();
                    if clash {
                        self.section = Section::Skipped;
                        // Worded without HAProxy's usual space before the colon.
                        self.diags.global_alert(format!(
                            "Parsing [{place}]: {} '{name}' has the same name as {} '{name}' declared at {}.",
                            kind.type_str(),
                            other.kind.type_str(),
                            other.place
                        ));
                        return Ok(());
                    }
                }
                let base = self.base_defaults(line, 2)?;
                self.note_defaults_ref(&base, line.arg(2).is_some(), &place);
                self.check_defaults_use(&base, kind, &place);
                super::acl::set_parsed_section(&name);
                Section::Proxy(Proxy::from_defaults(&base, name, kind, place))
            }
            "resolvers" => {
                if name.is_empty() {
                    self.section = Section::Skipped;
                    return Err("missing name for resolvers section.".into());
                }
                if self.config.resolvers(&name).is_some() {
                    self.section = Section::Skipped;
                    return Err(format!(
                        "resolvers section '{name}' has the same name as another resolvers section."
                    ));
                }
                Section::Resolvers(Resolvers::new(name, place))
            }
            "http-errors" => {
                let sections = &mut self.config.http_errors;
                match super::errors::start(sections, line.words, line.place, &mut self.diags) {
                    true => Section::HttpErrors,
                    // A refused header's lines go nowhere.
                    false => Section::Skipped,
                }
            }
            "peers" => {
                let (config, diags) = (&mut self.config, &mut self.diags);
                match super::peers::start(config, line.words, line.place, diags) {
                    super::peers::Start::Section => Section::Peers,
                    super::peers::Start::Skip => Section::Skipped,
                    super::peers::Start::Abort => {
                        self.aborted = true;
                        Section::Skipped
                    }
                }
            }
            "ring" => {
                if let Err(e) =
                    super::logging::ring_start(&mut self.config.rings, line.words, line.place)
                {
                    self.section = Section::Skipped;
                    return Err(e);
                }
                Section::Ring
            }
            "log-forward" => {
                let sections = &mut self.config.log_forwards;
                if let Err(e) = super::logging::log_forward_start(sections, line.words, line.place)
                {
                    // HAProxy stops reading the configuration there.
                    self.section = Section::Skipped;
                    self.aborted = true;
                    return Err(e);
                }
                Section::LogForward
            }
            "userlist" => {
                // Even a refused header starts the section: its lines go to the last list.
                self.section = Section::Userlist;
                let lists = &mut self.config.userlists;
                super::userlist::start(lists, line.words, line.place, &mut self.diags);
                return Ok(());
            }
            _ => {
                if kw == "mailers" {
                    self.config.mailers.push(name.clone());
                }
                self.diags.warn(
                    line.place,
                    format!(
                        "'{kw}' sections are not implemented by hapx; this section is ignored."
                    ),
                );
                Section::Skipped
            }
        };
        Ok(())
    }

    /// Whether an error on this line makes HAProxy stop reading (`ERR_ABORT`): a rule
    /// `http-request`, `http-response` or `http-after-response` it could not parse.
    fn aborts_on_error(&self, words: &[String]) -> bool {
        let in_proxy = match &self.section {
            Section::Proxy(_) => true,
            // In an anonymous defaults section they are refused without stopping.
            Section::Defaults(d) => !d.name.is_empty(),
            _ => false,
        };
        in_proxy
            && matches!(
                words[0].as_str(),
                "http-request" | "http-response" | "http-after-response"
            )
    }

    /// HAProxy's limits on using a defaults section that defines rules (its proxies run
    /// them before their own): no defaults or listen section may start from it, only
    /// frontends or only backends may, backends only without `tcp-request connection` or
    /// `session` rules, frontends only without `tcp-response content` rules. A breach
    /// stops reading, as in HAProxy.
    fn check_defaults_use(&mut self, base: &Proxy, kind: ProxyKind, place: &Place) {
        if base.kind != ProxyKind::Defaults || !base.rules.defines_inherited_rules() {
            return;
        }
        let at = &base.place;
        let refusal = match kind {
            ProxyKind::Defaults => Some(format!(
                "a defaults section cannot inherit from a defaults section defining TCP/HTTP rules (defaults section at {at})."
            )),
            ProxyKind::Listen => Some(
                "a listen section cannot inherit from a defaults section defining TCP/HTTP rules."
                    .to_string(),
            ),
            _ => match self.defaults_users.get(&at.to_string()) {
                Some(first) if *first != kind => Some(format!(
                    "frontends and backends cannot inherit from the same defaults section if it defines TCP/HTTP rules (defaults section at {at})."
                )),
                _ if kind == ProxyKind::Backend && base.rules.defines_layer4_rules() => {
                    Some(format!(
                        "a backend section cannot inherit from a defaults section defining 'tcp-request connection' or 'tcp-request session' rules (defaults section at {at})."
                    ))
                }
                _ if kind == ProxyKind::Frontend && !base.rules.tcp_response.is_empty() => {
                    Some(format!(
                        "a frontend section cannot inherit from a defaults section defining 'tcp-response content' rules (defaults section at {at})."
                    ))
                }
                _ => {
                    self.defaults_users.insert(at.to_string(), kind);
                    None
                }
            },
        };
        if let Some(message) = refusal {
            // Worded `parsing [file:line]: ...`, without HAProxy's usual space.
            self.diags
                .global_alert(format!("parsing [{place}]: {message}"));
            self.aborted = true;
        }
    }

    /// Notes that the section at `place` starts from `base`, named with `from` (`explicit`)
    /// or as the last defaults section. As HAProxy, a named defaults section used both ways
    /// gets an alert at each use after the first of the other way, which refuses nothing.
    fn note_defaults_ref(&mut self, base: &Proxy, explicit: bool, place: &Place) {
        if base.kind != ProxyKind::Defaults || base.name.is_empty() {
            return;
        }
        let refs = self
            .defaults_refs
            .entry(base.place.to_string())
            .or_default();
        let mixed = if explicit { refs.1 } else { refs.0 };
        if explicit {
            refs.0 = true;
        } else {
            refs.1 = true;
        }
        if mixed {
            self.diags.non_fatal_alert(
                place,
                format!(
                    "defaults section '{}' (declared at {}) is explicitly referenced by another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always use explicit references.",
                    base.name, base.place
                ),
            );
        }
    }

    /// The defaults a section starts from: `from NAME` at `words[at..]`, else the last defaults.
    fn base_defaults(&self, line: &Line<'_>, at: usize) -> Result<Proxy, String> {
        let base = match (line.arg(at), line.arg(at + 1)) {
            (None, _) => Ok(self.defaults.clone()),
            (Some("from"), Some(name)) => self.named_defaults.get(name).cloned().ok_or_else(|| {
                format!(
                    "defaults section '{name}' not found for '{}'.",
                    line.words[0]
                )
            }),
            (Some(other), _) => Err(format!(
                "unexpected argument '{other}' (only 'from <defaults>' may follow the name)"
            )),
        };
        base.map(|mut base| {
            // HAProxy copies a defaults' `source` but not its `usesrc hdr_ip`'s header name
            // and occurrence (`proxy_defproxy_cpy`): such connections always fail.
            if let Some(UseSrc::Header { name, occurrence }) =
                base.source.as_mut().and_then(|s| s.usesrc.as_mut())
            {
                name.clear();
                *occurrence = 0;
            }
            base
        })
    }

    /// Out of HTTP mode, `usesrc hdr_ip` has no request to read: HAProxy warns and sets its
    /// occurrence to 0, which fails each connection (`check_config_validity`).
    fn header_sources_need_http(&mut self, p: &mut Proxy) {
        if p.mode == Mode::Http {
            return;
        }
        let what = format!("{} '{}'", p.kind.type_str(), p.name);
        let backend_source = p.source.as_mut().map(|s| (None, s));
        let server_sources = (p.servers.iter_mut()).filter_map(|s| {
            s.opts
                .source
                .as_mut()
                .map(|src| (Some(s.name.as_str()), src))
        });
        for (server, source) in backend_source.into_iter().chain(server_sources) {
            let Some(UseSrc::Header { name, occurrence }) = source.usesrc.as_mut() else {
                continue;
            };
            if *occurrence == 0 {
                continue;
            }
            *occurrence = 0;
            let message = match server {
                None => {
                    format!("{what} : ignoring use of header {name} as source IP in non-HTTP mode.")
                }
                Some(s) => format!(
                    "{what} : server {s} cannot use header {name} as source IP in non-HTTP mode."
                ),
            };
            self.diags.global_warn(message);
        }
    }

    fn finish_section(&mut self) {
        match std::mem::replace(&mut self.section, Section::None) {
            Section::Defaults(d) => {
                if !d.name.is_empty() {
                    self.named_defaults.insert(d.name.clone(), d.clone());
                }
                self.defaults = d;
            }
            Section::Proxy(mut p) => {
                p.rules.settle_inherited();
                self.header_sources_need_http(&mut p);
                // HAProxy binds to a server's `source`, else to its backend's.
                for server in &mut p.servers {
                    server.opts.source = server.opts.source.take().or(p.source.clone());
                }
                self.config.proxies.push(p);
            }
            Section::Resolvers(r) => self.config.resolvers.push(r),
            Section::None
            | Section::Global
            | Section::Userlist
            | Section::Peers
            | Section::Ring
            | Section::LogForward
            | Section::HttpErrors
            | Section::Skipped => {}
        }
        self.section_name.clear();
    }
}

/// Whether `d` is an error HAProxy makes too: not one of hapx's refusals of what it does
/// not implement (HAProxy reads such a line, and the lines after it).
fn haproxy_refuses(d: &super::diag::Diag) -> bool {
    d.is_error() && !d.message.contains("not implemented by hapx")
}

fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    parts(a).cmp(&parts(b))
}

fn check_name(name: &str, kw: &str) -> Outcome {
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        Some(c) => Err(format!(
            "character '{c}' is not permitted in '{kw}' name '{name}'."
        )),
        None => Ok(()),
    }
}

/// The one argument `kw` needs, or HAProxy's message.
/// The global `stats timeout`, with HAProxy's messages (a missing value names the end of
/// the text, which HAProxy prints as nothing).
fn stats_timeout(text: &str) -> Result<std::time::Duration, String> {
    let stray = |c: Option<char>| {
        let c = c.map(String::from).unwrap_or_default();
        format!("'stats timeout' : unexpected character '{c}")
    };
    if text.is_empty() {
        return Err(stray(None));
    }
    if let Some(c) = values::duration_stray_char(text) {
        return Err(stray(Some(c)) + "'");
    }
    let timeout = values::duration(text)?;
    if timeout.is_zero() {
        return Err("'stats timeout' expects a positive value".into());
    }
    Ok(timeout)
}

/// Why HAProxy 2.6 refuses an option it once had, in its words.
fn removed_option(name: &str) -> Option<&'static str> {
    Some(match name {
        "forceclose" => {
            "is not supported any more since HAProxy 2.0, please just remove it, or use 'option httpclose' if absolutely needed."
        }
        "http-tunnel" => {
            "is not supported any more since HAProxy 2.1, please just remove it, it shouldn't be needed."
        }
        "http_proxy" => {
            "is not supported any more since HAProxy 2.5. This option stopped working in HAProxy 1.9 and usually had nasty side effects. It can be more reliably implemented with combinations of 'http-request set-dst' and 'http-request set-uri', and even 'http-request do-resolve' if DNS resolution is desired."
        }
        _ => return None,
    })
}

/// HAProxy 2.6's thread limit (`MAX_THREADS` of Debian's build).
const MAX_THREADS: i64 = 64;

/// `nbthread N`, between 1 and [`MAX_THREADS`], with HAProxy's messages.
fn nbthread(line: &Line<'_>) -> Result<usize, String> {
    let text = line.arg(1).unwrap_or_default();
    let (n, rest) = values::strtol(text);
    if text.is_empty() || !rest.is_empty() {
        return Err(format!(
            "'nbthread' passed a missing or unparsable integer value in '{text}'"
        ));
    }
    usize::try_from(n)
        .ok()
        .filter(|_| (1..=MAX_THREADS).contains(&n))
        .ok_or_else(|| format!("'nbthread' value must be between 1 and {MAX_THREADS} (was {n})"))
}

/// `name`, if the system knows such a user: HAProxy looks it up as it reads the line, so
/// `-c` refuses an unknown one, with `getpwnam`'s errno (0 when the name is just absent).
fn known_user(name: &str) -> Result<&str, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(_)) => Ok(name),
        looked_up => Err(format!(
            "cannot find user id for '{name}' ({})",
            errno_text(looked_up.err())
        )),
    }
}

/// As [`known_user`], for `group` (`getgrnam`).
fn known_group(name: &str) -> Result<&str, String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(_)) => Ok(name),
        looked_up => Err(format!(
            "cannot find group id for '{name}' ({})",
            errno_text(looked_up.err())
        )),
    }
}

/// C's `errno` as HAProxy prints it after a look-up: `NUMBER:strerror`, `0:Success` when
/// the look-up set none.
fn errno_text(errno: Option<nix::errno::Errno>) -> String {
    match errno {
        Some(e) => format!("{}:{}", e as i32, e.desc()),
        None => "0:Success".into(),
    }
}

/// The argument of a count HAProxy reads with `atol` into an `int`: any text is a number
/// (`abc` reads 0, `10k` 10), only a missing one is refused.
fn atol_arg(line: &Line<'_>) -> Result<i32, String> {
    match line.arg(1) {
        Some(text) if !text.is_empty() => Ok(values::atol_int(text)),
        _ => Err(format!("'{}' expects an integer argument.", line.words[0])),
    }
}

/// A proxy's `maxconn` or `fullconn` as HAProxy uses its `int`: 0 is "not set" (the global
/// figure, or the computed one, applies), a negative one reads as the unsigned it is
/// printed as (`show stat` shows `maxconn -5` as 4294967291).
fn unsigned_count(n: i32) -> Option<usize> {
    (n != 0).then_some(n as u32 as usize)
}

/// `retries N`, read with `atol`: a negative count retries nothing, as HAProxy's attempt
/// counter is at once past it.
fn retries(line: &Line<'_>) -> Result<u32, String> {
    match line.arg(1) {
        Some(text) if !text.is_empty() => Ok(u32::try_from(values::atol_int(text)).unwrap_or(0)),
        _ => Err("'retries' expects an integer argument (dispatch counts for one).".into()),
    }
}

fn one<'a>(line: &'a Line<'_>, what: &str) -> Result<&'a str, String> {
    line.arg(1)
        .ok_or_else(|| format!("'{}' expects {what} as an argument.", line.words[0]))
}

/// Global `max-spread-checks DELAY` (milliseconds unless a unit says otherwise), as
/// HAProxy reads it (`parse_time_err`); 0 bounds nothing. The error is HAProxy's.
fn max_spread_checks(line: &Line<'_>) -> Result<Option<std::time::Duration>, String> {
    const KW: &str = "max-spread-checks";
    let text = match line.arg(1) {
        Some(text) if !text.is_empty() => text,
        _ => return Err(format!("'{KW}' expects an integer argument (0..50).")),
    };
    match values::duration(text) {
        Ok(delay) => Ok((!delay.is_zero()).then_some(delay)),
        Err(_) if values::is_duration_syntax(text) => Err(format!(
            "timer overflow in argument <{text}> to <{KW}>, maximum value is 2147483647 ms (~24.8 days)."
        )),
        Err(_) => Err(format!(
            "unsupported character '{}' in '{KW}' (wants an integer delay).",
            values::duration_stray_char(text).unwrap_or(' ')
        )),
    }
}

/// Global `server-state-file FILE` and `server-state-base DIR`: a second one is refused
/// (HAProxy alerts, keeps the first and goes on).
fn server_state_path(g: &mut Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let kw = line.words[0].as_str();
    let (slot, what) = match kw {
        "server-state-file" => (&mut g.server_state_file, "expect one argument: a file path"),
        _ => (
            &mut g.server_state_base,
            "expects one argument: a directory path",
        ),
    };
    if slot.is_some() {
        diags.non_fatal_alert(line.place, format!("'{kw}' already specified. Continuing."));
        return Ok(());
    }
    let Some(path) = line.arg(1) else {
        return Err(format!("'{kw}' {what}."));
    };
    *slot = Some(path.into());
    Ok(())
}

fn unknown(kw: &str, section: &str, known: impl IntoIterator<Item = &'static str>) -> String {
    let mut msg = format!("unknown keyword '{kw}' in '{section}' section");
    if let Some(s) = keywords::suggest(kw, known) {
        msg.push_str(&format!("; did you mean '{s}' maybe ?"));
    }
    msg
}

/// Whether a rule line has HAProxy parse a log format as it reads it: a header's value
/// (`set-header`, `add-header`, `replace-header`, `replace-value`, `early-hint`), an
/// `http-request|response redirect` (not the `redirect` keyword's), a map or ACL file's
/// key and value (`set-map`, `del-map`, `add-acl`, `del-acl`), a reply's `hdr` or
/// `lf-string`/`lf-file`, or a `set-var-fmt`; each makes HAProxy note the line as its
/// proxy's log format's (measured with 2.6.12's 'option httplog' warning).
fn parses_log_format(words: &[String]) -> bool {
    let (options, action) = match words.first().map(String::as_str) {
        Some("http-request" | "http-response" | "http-after-response") => (2, words.get(1)),
        Some("tcp-request" | "tcp-response") => (3, words.get(2)),
        _ => return false,
    };
    let Some(action) = action else { return false };
    let name = action.split('(').next().unwrap_or_default();
    // The action's words: after its options, before a condition (`http-request if` has a
    // condition where its action should be: none, the rule's own check refuses it).
    let first = options.min(words.len());
    let condition = words.iter().position(|w| w == "if" || w == "unless");
    let args = &words[first..condition.unwrap_or(words.len()).max(first)];
    match name {
        "set-var-fmt" => true,
        "set-header" | "add-header" | "replace-header" | "replace-value" | "early-hint"
        | "redirect" | "set-map" | "del-map" | "add-acl" | "del-acl" => options == 2,
        "return" | "deny" | "tarpit" => {
            let formats = ["hdr", "lf-string", "lf-file"];
            options == 2 && args.iter().any(|a| formats.contains(&a.as_str()))
        }
        _ => false,
    }
}

/// HAProxy keeps one line for a proxy's log format, which `log-format` and `option
/// httplog|tcplog` set, and so does every rule that parses a log format
/// ([`parses_log_format`]): its checks of the log format name that last line.
fn note_log_format_line(p: &mut Proxy, place: &Place) {
    p.rules.format_place = Some(place.clone());
    if let Some(format) = p.log.format.as_mut() {
        format.place = place.clone();
    }
    for noted in [&mut p.options.httplog, &mut p.options.tcplog] {
        if let Some(at) = noted.as_mut() {
            *at = place.clone();
        }
    }
}

/// A known keyword hapx does not act on: a warning (or nothing, for accepted ones).
fn not_implemented(support: Support, what: &str, place: &Place, diags: &mut Diags) {
    if support == Support::No {
        diags.warn(
            place,
            format!("{what} is not implemented by hapx and is ignored."),
        );
    }
}

/// The global keywords HAProxy refuses with more arguments than these (its
/// `alertif_too_many_args`): a stray word is an error, never silently dropped.
const GLOBAL_MAX_ARGS: &[(&str, usize)] = &[
    ("busy-polling", 0),
    ("ca-base", 1),
    ("chroot", 1),
    ("crt-base", 1),
    ("daemon", 0),
    ("gid", 1),
    ("group", 1),
    ("h1-case-adjust-file", 1),
    ("external-check", 0),
    ("insecure-fork-wanted", 0),
    ("log-tag", 1),
    ("maxconn", 1),
    ("mworker-max-reloads", 1),
    ("nbthread", 1),
    ("node", 1),
    ("noepoll", 0),
    ("nosplice", 0),
    ("pidfile", 1),
    ("quiet", 0),
    ("set-dumpable", 0),
    ("spread-checks", 1),
    ("ssl-server-verify", 1),
    ("strict-limits", 0),
    ("tune.bufsize", 1),
    ("tune.ssl.default-dh-param", 1),
    ("uid", 1),
    ("ulimit-n", 1),
    ("user", 1),
    ("zero-warning", 0),
];

/// The proxy keywords HAProxy refuses with more arguments than these.
const PROXY_MAX_ARGS: &[(&str, usize)] = &[
    ("backlog", 1),
    ("default_backend", 1),
    ("disabled", 0),
    ("dispatch", 1),
    ("enabled", 0),
    ("fullconn", 1),
    ("http-reuse", 1),
    ("id", 1),
    ("maxconn", 1),
    ("mode", 1),
    ("monitor-uri", 1),
    ("retries", 1),
];

/// HAProxy's error for a word past what keyword `line` takes (`table`), as
/// `alertif_too_many_args` words it (`http-reuse` names its mode too).
fn too_many_args(table: &[(&str, usize)], line: &Line<'_>) -> Outcome {
    let kw = line.words[0].as_str();
    let Some(&(_, max)) = table.iter().find(|(name, _)| *name == kw) else {
        return Ok(());
    };
    let Some(extra) = line.arg(max + 1) else {
        return Ok(());
    };
    let named = match kw {
        "http-reuse" => format!("{kw} {}", line.arg(1).unwrap_or_default()),
        _ => kw.to_string(),
    };
    Err(format!(
        "'{named}' cannot handle unexpected argument '{extra}'."
    ))
}

fn global(g: &mut Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let kw = line.words[0].as_str();
    too_many_args(GLOBAL_MAX_ARGS, line)?;
    match kw {
        "daemon" => g.daemon = true,
        "chroot" => g.chroot = Some(one(line, "a directory")?.into()),
        "user" => g.user = Some(known_user(one(line, "a user name")?)?.into()),
        "group" => g.group = Some(known_group(one(line, "a group name")?)?.into()),
        "uid" => g.uid = Some(values::number(one(line, "an integer")?, kw)?),
        "gid" => g.gid = Some(values::number(one(line, "an integer")?, kw)?),
        "pidfile" => g.pidfile = Some(one(line, "a file name")?.into()),
        "external-check" => g.external_check = true,
        "insecure-fork-wanted" => g.insecure_fork_wanted = true,
        // Read with `atol`, 0 (or less) leaving the limit computed.
        "maxconn" => g.maxconn = usize::try_from(atol_arg(line)?).ok().filter(|&n| n > 0),
        "ulimit-n" => g.ulimit_n = u64::try_from(atol_arg(line)?).ok().filter(|&n| n > 0),
        "maxpipes" => g.maxpipes = Some(values::number(one(line, "an integer")?, kw)?),
        "nbthread" => g.nbthread = Some(nbthread(line)?),
        "nosplice" => g.nosplice = true,
        "strict-limits" => g.lax_limits = false,
        "no" if line.words.get(1).map(String::as_str) == Some("strict-limits") => {
            g.lax_limits = true
        }
        "hard-stop-after" => g.hard_stop_after = Some(values::timer(one(line, "a duration")?, kw)?),
        "node" => g.node = Some(one(line, "a name")?.into()),
        "localpeer" => super::peers::localpeer(g, line.words, line.place, diags)?,
        "description" => g.description = description(line, diags),
        "maxconnrate" => g.max_conn_rate = rate_limit(line)?,
        "maxsessrate" => g.max_sess_rate = rate_limit(line)?,
        "log-tag" => g.log_tag = Some(one(line, "a tag")?.into()),
        "quiet" => g.quiet = true,
        "master-worker" => match line.arg(1) {
            None => g.master_worker = true,
            Some("no-exit-on-failure") => {
                g.master_worker = true;
                g.master_stays_on_failure = true;
            }
            Some(other) => {
                return Err(format!(
                    "'master-worker' only supports 'no-exit-on-failure' option (got '{other}')."
                ));
            }
        },
        "mworker-max-reloads" => {
            g.mworker_max_reloads = Some(values::number(one(line, "an integer")?, kw)?)
        }
        "spread-checks" => {
            // Read with `atol`; refused without HAProxy's usual space before the colon.
            match u8::try_from(atol_arg(line)?).ok().filter(|&p| p <= 50) {
                Some(percent) => g.spread_checks = percent,
                None => diags.global_alert(format!(
                    "parsing [{}]: 'spread-checks' needs a positive value in range 0..50.",
                    line.place
                )),
            }
        }
        "max-spread-checks" => {
            // This one is worded with a space before the colon, as a line's usual error.
            if let Some(extra) = line.arg(2) {
                return Err(format!("'{kw}' cannot handle unexpected argument '{extra}'."));
            }
            match max_spread_checks(line) {
                Ok(delay) => g.max_spread_checks = delay,
                // Worded without a space before the colon, as HAProxy's delay errors are.
                Err(message) => diags.global_alert(format!("parsing [{}]: {message}", line.place)),
            }
        }
        "log-send-hostname" => {
            g.log_send_hostname = Some(super::logging::send_hostname(line.words))
        }
        "log" => match log_target(line, true)? {
            ParsedLog::Target(t) => g.logs.push(t),
            ParsedLog::Ring(ring, target) => g.ring_logs.push(RingLog {
                ring,
                target,
                place: line.place.clone(),
            }),
            ParsedLog::Global => {}
        },
        "stats" => global_stats(g, line, diags)?,
        "h1-case-adjust" => match (line.arg(1), line.arg(2)) {
            (Some(from), Some(to)) => case_adjust(g, from, to)?,
            _ => return Err("'h1-case-adjust' expects <from> and <to> as argument.".into()),
        },
        "h1-case-adjust-file" => case_adjust_file(g, one(line, "<file>")?)?,
        "server-state-file" | "server-state-base" => server_state_path(g, line, diags)?,
        "ca-base" => g.ca_base = Some(one(line, "a directory")?.into()),
        "crt-base" => g.crt_base = Some(one(line, "a directory")?.into()),
        "ssl-default-server-options" => ssl_default_server_options(g, line, diags)?,
        "ssl-default-bind-options" => ssl_default_bind_options(g, line, diags)?,
        "ssl-default-bind-ciphers" | "ssl-default-bind-ciphersuites" | "ssl-default-bind-curves" => {
            let list = kw.trim_start_matches("ssl-default-bind-");
            // HAProxy's words (its grammar too).
            let v = line.arg(1).ok_or_else(|| match list {
                "curves" => format!("global statement '{kw}' expects a curves suite as an arguments."),
                _ => format!("global statement '{kw}' expects a cipher suite as an argument."),
            })?;
            // Warned about where an `ssl` bind takes it.
            let lists = &mut g.ssl_default_bind.ciphers;
            let mut only = super::bind_tls::ciphers::CipherLists::default();
            *only.named(list) = Some(v.to_string());
            *lists = only.with_defaults(lists);
        }
        "set-var" | "set-var-fmt" => {
            super::global_vars::run(line.words, &g.environment).map_err(|e| match e {
                super::acl::AclError::Bad(m) => m,
                super::acl::AclError::Unsupported(what) => format!(
                    "'{}' uses {what}, which is not implemented by hapx; hapx refuses to run without it.",
                    line.words.join(" ")
                ),
            })?
        }
        "tune.vars.global-max-size"
        | "tune.vars.proc-max-size"
        | "tune.vars.sess-max-size"
        | "tune.vars.txn-max-size"
        | "tune.vars.reqres-max-size"
        | "tune.vars.check-max-size" => super::global_vars::limit(kw, line.arg(1))?,
        "tune.pattern.cache-size" => pattern_cache_size(line)?,
        "tune.pool-low-fd-ratio" => g.pool_fd_ratios.0 = Some(fd_ratio(line)?),
        "tune.pool-high-fd-ratio" => g.pool_fd_ratios.1 = Some(fd_ratio(line)?),
        // Refused by HAProxy 2.6's own reader, worded without a space before the colon.
        "tune.chksize" => {
            let refused = "option 'tune.chksize' is not supported any more (tune.bufsize is used instead).";
            return report_line_error(
                super::diag::LineError::Unspaced(refused.into()),
                line.place,
                diags,
            );
        }
        "ssl-server-verify" => {
            g.ssl_server_verify_none = match one(line, "'none' or 'required'")? {
                "none" => true,
                "required" => false,
                other => {
                    return Err(format!(
                        "'ssl-server-verify' expects 'none' or 'required' (got '{other}')."
                    ));
                }
            }
        }
        _ => match keywords::lookup(keywords::GLOBAL, kw) {
            Some(Support::Removed(message)) => return Err(message.into()),
            Some(s) => not_implemented(s, &format!("'{kw}'"), line.place, diags),
            // Another of HAProxy 2.6.12's keywords (a `tune.*` or `ssl-*` one ...): known.
            None if hint_words::GLOBAL.contains(&kw) => {
                not_implemented(Support::No, &format!("'{kw}'"), line.place, diags)
            }
            None => return Err(unknown(kw, "global", hint_words::GLOBAL.iter().copied())),
        },
    }
    Ok(())
}

/// `tune.pool-{low,high}-fd-ratio PERCENT`, read as HAProxy's `atoi` (digits up to the
/// first other character, none: 0), between 0 and 100.
/// `tune.pattern.cache-size N`, read by `atoi` as HAProxy does (`abc` is 0: no cache);
/// empty or negative is refused.
fn pattern_cache_size(line: &Line<'_>) -> Result<(), String> {
    let refused = || format!("'{}' expects a positive numeric value", line.words[0]);
    let text = line.arg(1).filter(|t| !t.is_empty()).ok_or_else(refused)?;
    let text = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (n, _) = crate::runtime::convert::read_int64(text.as_bytes());
    let n = usize::try_from(n).map_err(|_| refused())?;
    crate::runtime::map::cache::set_size(n);
    Ok(())
}

fn fd_ratio(line: &Line<'_>) -> Result<u8, String> {
    let kw = &line.words[0];
    let out_of_range = || format!("'{kw}' expects an integer argument between 0 and 100.");
    let text = line
        .arg(1)
        .filter(|t| !t.is_empty())
        .ok_or_else(out_of_range)?;
    let text = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let value: u64 = rest[..digits]
        .parse()
        .unwrap_or(if digits == 0 { 0 } else { u64::MAX });
    match u8::try_from(value) {
        Ok(v) if v <= 100 && !(negative && v != 0) => Ok(v),
        _ => Err(out_of_range()),
    }
}

/// One `h1-case-adjust` entry: the spelling `to` for header `from` (HAProxy's checks).
fn case_adjust(g: &mut Global, from: &str, to: &str) -> Outcome {
    if !from.eq_ignore_ascii_case(to) {
        return Err("<from> and <to> must not differ execpt the case".into());
    }
    // Names are looked up in lower case: as in HAProxy, a FROM that is not never matches.
    if g.h1_case_adjust.contains_key(from) {
        return Err(format!("duplicate entry '{from}'"));
    }
    g.h1_case_adjust.insert(from.to_string(), to.to_string());
    Ok(())
}

/// `h1-case-adjust-file`: one `FROM TO` pair per line; blank lines and `#` comments skipped.
fn case_adjust_file(g: &mut Global, path: &str) -> Outcome {
    let text = std::fs::read(path)
        .map(crate::bytestr::from_vec)
        .map_err(|e| format!("h1-headers-case-adjust-file '{path}': failed to open file ({e})."))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (from, to) = (words.next().unwrap_or_default(), words.next());
        let to = to.ok_or_else(|| {
            format!(
                "h1-headers-case-adjust-file '{path}' : expect <to> at line {}.",
                n + 1
            )
        })?;
        case_adjust(g, from, to).map_err(|e| {
            format!(
                "h1-headers-case-adjust-file '{path}' : {e} at line {}.",
                n + 1
            )
        })?;
    }
    Ok(())
}

fn global_stats(g: &mut Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    match line.arg(1) {
        Some("socket") => {
            g.cli_maxconn.get_or_insert(crate::limits::CLI_MAXCONN);
            let path = line
                .arg(2)
                .ok_or("'stats socket' expects an address or a path as an argument.")?;
            let (family, path) = values::strip_family(path);
            if family.is_some_and(|f| f != "unix") {
                diags.warn(line.place, "'stats socket' on an IP address is not implemented by hapx; only UNIX sockets are.");
                return Ok(());
            }
            let mut socket = StatsSocket {
                path: path.into(),
                mode: None,
                level: CliLevel::Operator,
                expose_fd_listeners: false,
                place: line.place.clone(),
            };
            let mut i = 3;
            while let Some(opt) = line.arg(i) {
                let value = line.arg(i + 1);
                let need = || format!("'{opt}' expects an argument in 'stats socket'.");
                match opt {
                    "mode" => {
                        let v = value.unwrap_or_default();
                        socket.mode = Some(u32::from_str_radix(v, 8).map_err(|_| {
                            format!("'stats socket' : ''mode' : missing or invalid mode '{v}' (octal integer expected)'")
                        })?);
                    }
                    "level" => {
                        socket.level = match value.ok_or_else(need)? {
                            "user" => CliLevel::User,
                            "operator" => CliLevel::Operator,
                            "admin" => CliLevel::Admin,
                            v => {
                                return Err(format!(
                                    "'level' only supports 'user', 'operator', and 'admin' (got '{v}')."
                                ));
                            }
                        }
                    }
                    "expose-fd" => socket.expose_fd_listeners = value == Some("listeners"),
                    "user" | "group" | "uid" | "gid" | "process" | "thread" | "name" => {
                        not_implemented(
                            Support::No,
                            &format!("'stats socket ... {opt}'"),
                            line.place,
                            diags,
                        )
                    }
                    _ => return Err(format!("'stats socket' unknown keyword '{opt}'.")),
                }
                i += 2;
            }
            g.stats_sockets.push(socket);
        }
        Some("timeout") => {
            g.stats_timeout = Some(stats_timeout(line.arg(2).unwrap_or_default())?);
            g.cli_maxconn.get_or_insert(crate::limits::CLI_MAXCONN);
        }
        Some("maxconn") => {
            // HAProxy's `int maxconn = atol(args[2])`: the number the text starts with.
            let maxconn = atoi(line.arg(2).unwrap_or_default()) as i32;
            let positive = usize::try_from(maxconn).ok().filter(|&n| n > 0);
            g.cli_maxconn = Some(positive.ok_or("'stats maxconn' expects a positive value")?);
        }
        Some("bind-process") => not_implemented(
            Support::No,
            &format!("'stats {}'", line.words[1]),
            line.place,
            diags,
        ),
        other => {
            return Err(format!(
                "'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' (got '{}').",
                other.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// `log global` (the caller copies the global targets), a target, or a ring.
fn log_target(line: &Line<'_>, in_global: bool) -> Result<ParsedLog, String> {
    super::logging::log_target(line.words, in_global)
}

fn resolvers(r: &mut Resolvers, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let kw = line.words[0].as_str();
    match kw {
        "nameserver" => {
            let (Some(name), Some(addr)) = (line.arg(1), line.arg(2)) else {
                return Err("'nameserver' expects <name> and <addr>[:<port>] as arguments.".into());
            };
            let (family, hp) = values::strip_family(addr);
            if family.is_some_and(|f| !matches!(f, "udp" | "ipv4" | "ipv6" | "udp4" | "udp6")) {
                return Err(format!(
                    "nameserver '{name}': only UDP nameservers are supported by hapx (got '{addr}')."
                ));
            }
            let prefer_v6 = matches!(family, Some("ipv6" | "udp6"));
            let addr = values::nameserver_addr(hp, prefer_v6, addr)
                .map_err(|e| format!("'nameserver {name}' : {e}"))?;
            r.nameservers.push(Nameserver {
                name: name.into(),
                addr,
                place: line.place.clone(),
            });
        }
        "resolve_retries" => r.resolve_retries = values::number(one(line, "an integer")?, kw)?,
        "accepted_payload_size" => {
            r.accepted_payload_size = values::number(one(line, "an integer")?, kw)?
        }
        "parse-resolv-conf" => {
            r.parse_resolv_conf = true;
            parse_resolv_conf(r, line.place, diags);
        }
        "timeout" => {
            let d = values::duration(
                line.arg(2)
                    .ok_or("'timeout' expects 'retry' or 'resolve' and <time> as arguments.")?,
            )?;
            match line.arg(1) {
                Some("retry") => r.timeout_retry = d,
                Some("resolve") => r.timeout_resolve = d,
                other => {
                    return Err(format!(
                        "'timeout' supports 'retry' and 'resolve' (got '{}').",
                        other.unwrap_or_default()
                    ));
                }
            }
        }
        "hold" => {
            let (Some(status), Some(time)) = (line.arg(1), line.arg(2)) else {
                return Err("'hold' expects <status> and <time> as arguments.".into());
            };
            if !matches!(
                status,
                "nx" | "other" | "refused" | "timeout" | "valid" | "obsolete"
            ) {
                return Err(format!(
                    "'{status}' unknown in 'hold' (expects 'nx', 'timeout', 'refused', 'other', 'obsolete' or 'valid')."
                ));
            }
            if let Some(c) = stray_before_unit(time) {
                let refused = format!("unexpected character '{c}' in argument to <hold>.");
                return report_line_error(
                    super::diag::LineError::Unspaced(refused),
                    line.place,
                    diags,
                );
            }
            r.hold.insert(status.into(), values::duration(time)?);
        }
        _ => {
            // HAProxy's resolvers parser suggests no keyword.
            return Err(unknown(kw, "resolvers", []));
        }
    }
    Ok(())
}

/// `parse-resolv-conf`: the nameservers of /etc/resolv.conf join the section where the line
/// stands, as HAProxy reads them then, its messages worded as HAProxy's (no space before
/// the colon, the file's warnings one per indented line).
fn parse_resolv_conf(r: &mut Resolvers, place: &Place, diags: &mut Diags) {
    let Ok(text) = std::fs::read_to_string(RESOLV_CONF) else {
        diags.global_alert(format!("parsing [{place}]: failed to open {RESOLV_CONF}."));
        return;
    };
    let warnings = r.add_resolv_conf(&text, &system_resolver);
    if !warnings.is_empty() {
        let indented = warnings.join("\n        ");
        diags.global_warn(format!("parsing [{place}]: \n        {indented}"));
    }
}

/// A nameserver of resolv.conf written as a host name, looked up as HAProxy's `str2ip2`
/// does (`gethostbyname`: IPv4 first).
fn system_resolver(host: &str) -> Option<std::net::IpAddr> {
    super::check::resolve_libc(host, false)
}

/// HAProxy 2.6's implicit resolvers section `default` (from /etc/resolv.conf) when the
/// configuration declares none by that name.
fn add_implicit_default_resolvers(config: &mut Config) {
    if config.resolvers(DEFAULT_RESOLVERS).is_some() {
        return;
    }
    let resolv_conf = std::fs::read_to_string(RESOLV_CONF).ok();
    if let Some(section) = Resolvers::implicit_default(resolv_conf.as_deref(), &system_resolver) {
        config.resolvers.push(section);
    }
}

/// The side of a proxy a keyword acts on.
#[derive(Debug, Clone, Copy)]
enum Capability {
    Frontend,
    Backend,
}

/// Whether `p` lacks the capability `kw` needs; if so, warns as HAProxy does (the keyword
/// is then ignored). A defaults section has both.
fn lacks(p: &Proxy, cap: Capability, kw: &str, line: &Line<'_>, diags: &mut Diags) -> bool {
    let (has, name) = match cap {
        Capability::Frontend => (p.kind.is_frontend(), "frontend"),
        Capability::Backend => (p.kind.is_backend(), "backend"),
    };
    if has || p.kind == ProxyKind::Defaults {
        return false;
    }
    diags.warn(
        line.place,
        format!(
            "'{kw}' ignored because {} '{}' has no {name} capability.",
            p.kind.keyword(),
            p.name
        ),
    );
    true
}

fn proxy(p: &mut Proxy, g: &Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let kw = line.words[0].as_str();
    let section = p.kind.keyword();
    if p.kind == ProxyKind::Defaults && matches!(kw, "bind" | "server" | "server-template" | "id") {
        return Err(format!("'{kw}' not allowed in 'defaults' section."));
    }
    if matches!(kw, "server" | "server-template" | "default-server")
        && !p.kind.is_backend()
        && p.kind != ProxyKind::Defaults
    {
        // An error, not a warning as for other backend keywords; HAProxy names the line
        // twice, and reads on.
        diags.check_alert(
            line.place,
            format!(
                "parsing [{}] : '{kw}' not allowed because {} '{}' has no backend capability.",
                line.place,
                p.kind.type_str(),
                p.name
            ),
        );
        return Ok(());
    }
    let needs = match kw {
        "bind" | "default_backend" | "backlog" => Some(Capability::Frontend),
        "balance"
        | "dispatch"
        | "hash-type"
        | "cookie"
        | "http-reuse"
        | "dynamic-cookie-key"
        | "load-server-state-from-file"
        | "server-state-file-name" => Some(Capability::Backend),
        _ => None,
    };
    if needs.is_some_and(|cap| lacks(p, cap, kw, line, diags)) {
        // HAProxy still reads the `balance` it ignores, and refuses a wrong one.
        if kw == "balance" {
            super::balance::parse_balance(line.words)?;
        }
        return Ok(());
    }
    if super::logging::proxy_keyword(p, line.words, line.place, diags)? {
        return Ok(());
    }
    too_many_args(PROXY_MAX_ARGS, line)?;
    match kw {
        "mode" => {
            p.mode = match one(line, "one of 'tcp', 'http'")? {
                "tcp" => Mode::Tcp,
                "http" => Mode::Http,
                "health" => {
                    return Err(
                        "'mode health' was removed from HAProxy; hapx does not support it.".into(),
                    );
                }
                m => return Err(format!("unknown proxy mode '{m}'.")),
            }
        }
        "bind" => bind(p, g, line, diags)?,
        "default_backend" => {
            p.default_backend = Some((one(line, "a backend name")?.into(), line.place.clone()))
        }
        "balance" => balance(p, line, diags)?,
        "persist" => p.persist_rdp_cookie = Some(super::balance::parse_persist(line.words)?),
        "load-server-state-from-file" => {
            p.load_server_state = match line.arg(1).unwrap_or("") {
                "global" => ServerStateSource::Global,
                "local" => ServerStateSource::Local,
                "none" => ServerStateSource::None,
                other => {
                    return Err(format!(
                        "'{kw}' expects 'global', 'local' or 'none'. Got '{other}'"
                    ));
                }
            }
        }
        "server-state-file-name" => {
            if let Some(extra) = line.arg(2) {
                return Err(format!(
                    "'{kw}' cannot handle unexpected argument '{extra}'."
                ));
            }
            // HAProxy does not copy it from a defaults section (checked with 2.6.12: a
            // backend there reads the file named after itself, whatever the defaults say).
            if p.kind == ProxyKind::Defaults {
                return Ok(());
            }
            // No name, or `use-backend-name`: the backend's own.
            p.server_state_file_name = Some(match line.arg(1) {
                None | Some("use-backend-name") => p.name.clone(),
                Some(name) => name.into(),
            });
        }
        "hash-type" => p.hash_type = super::balance::parse_hash_type(line.words)?,
        "hash-balance-factor" => {
            p.hash_balance_factor = super::balance::parse_hash_balance_factor(line.words)?
        }
        "cookie" => match super::balance::parse_cookie(line.words) {
            Ok(cookie) => p.cookie = Some(cookie),
            Err(e) => return report_line_error(e, line.place, diags),
        },
        "dynamic-cookie-key" => {
            p.dynamic_cookie_key = Some(one(line, "<secret_key>")?.into());
        }
        "http-reuse" => {
            p.http_reuse = match one(line, "one of 'never', 'safe', 'aggressive', 'always'")? {
                "never" => HttpReuse::Never,
                "safe" => HttpReuse::Safe,
                "aggressive" => HttpReuse::Aggressive,
                "always" => HttpReuse::Always,
                _ => {
                    return Err(
                        "'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'."
                            .into(),
                    );
                }
            }
        }
        "server" | "server-template" => {
            let servers = match kw {
                "server" => server(p, line, diags).map(|s| vec![s]),
                _ => server_template(p, line, diags),
            };
            let servers = match servers {
                Ok(servers) => servers,
                Err(e) => return report_server_error(e, server_label(p, line), line.place, diags),
            };
            // A name used twice is refused after reading (`check::duplicate_servers`).
            p.servers.extend(servers);
        }
        "default-server" => {
            let mut opts = p.default_server.clone();
            if let Err(e) = server_options(&mut opts, line, 1, diags) {
                return report_server_error(e, String::new(), line.place, diags);
            }
            if opts.forced_id.is_some() {
                return Err("'id' option is not accepted in default-server sections".into());
            }
            p.default_server = opts;
        }
        // `no log`: no log target, those `log global` or `defaults` gave included.
        "no" if line.arg(1) == Some("log") => match line.arg(2) {
            Some(_) => return Err("log : 'no log' does not expect arguments".into()),
            None => p.logs.clear(),
        },
        "option" | "no" => option(p, line, diags)?,
        "timeout" => timeout(p, line, diags)?,
        "retries" => {
            // HAProxy warns, then reads (and checks) the value all the same.
            lacks(p, Capability::Backend, kw, line, diags);
            p.retries = retries(line)?;
        }
        "maxconn" => {
            // HAProxy warns, then reads the value all the same (a backend never uses it).
            if !p.kind.is_frontend() && p.kind != ProxyKind::Defaults {
                diags.warn(
                    line.place,
                    format!(
                        "'{kw}' ignored because {section} '{}' has no frontend capability. Maybe you want 'fullconn' instead ?",
                        p.name
                    ),
                );
            }
            p.maxconn = unsigned_count(atol_arg(line)?);
        }
        "fullconn" => {
            if !p.kind.is_backend() && p.kind != ProxyKind::Defaults {
                diags.warn(
                    line.place,
                    format!(
                        "'{kw}' ignored because {section} '{}' has no backend capability. Maybe you want 'maxconn' instead ?",
                        p.name
                    ),
                );
            }
            p.fullconn = unsigned_count(atol_arg(line)?);
        }
        "max-session-srv-conns" => max_session_srv_conns(p, line, diags),
        "rate-limit" => rate_limit_sessions(p, line, diags)?,
        "errorfile" => {
            if let Some(w) = super::errors::truncation_warning(line.words) {
                diags.global_warn(w);
            }
            super::errors::errorfile(p, line.words)?
        }
        "errorloc" | "errorloc302" | "errorloc303" => super::errors::errorloc(p, line.words)?,
        "errorfiles" => super::errors::errorfiles(p, line.words, line.place)?,
        "http-error" => super::errors::http_error(p, line.words, diags, line.place)?,
        "stats" => stats(p, line, diags)?,
        "log" => match log_target(line, false)? {
            ParsedLog::Target(t) => p.logs.push(t),
            ParsedLog::Ring(ring, target) => p.log.rings.push(RingLog {
                ring,
                target,
                place: line.place.clone(),
            }),
            ParsedLog::Global => {
                p.logs.extend(g.logs.iter().cloned());
                p.log.rings.extend(g.ring_logs.iter().cloned());
            }
        },
        "tcp-check" | "http-check" => {
            // Out of a backend, warned about and still read, as HAProxy's (whose
            // `tcp-check` parser then prints its empty message as "(null)").
            if lacks(p, Capability::Backend, kw, line, diags) && kw == "tcp-check" {
                diags.warn(line.place, "(null)");
            }
            // HAProxy names the expressions of health checks' formats so.
            let (parsed, refs) = super::acl::collect_backend_refs(|| match kw {
                "tcp-check" => tcp_check(p, line, diags),
                _ => http_check(p, line, diags),
            });
            // A variable rule's references are "in tcp-check expression" (http-check's too).
            let within = match line.arg(1) {
                Some(k) if is_var_action(k) => "tcp-check expression",
                _ => "server directive",
            };
            super::rules::note_check_refs(p, line.place, refs, within);
            parsed?
        }
        "http-request" if line.arg(1) == Some("use-service") => prometheus(p, line)?,
        "stick-table" => stick_table(p, line, diags)?,
        "external-check" => external_check(p, line)?,
        "email-alert" => email_alert(p, line)?,
        _ if super::rules::KEYWORDS.contains(&kw) => {
            super::rules::parse_line(p, line.words, line.place, diags)?;
            if parses_log_format(line.words) {
                note_log_format_line(p, line.place);
            }
        }
        "id" => p.forced_id = Some(positive_id(one(line, "an integer")?, kw)?),
        "backlog" => p.backlog = Some(values::number(one(line, "an integer")?, kw)?),
        "clitcpka-cnt" | "clitcpka-idle" | "clitcpka-intvl" | "srvtcpka-cnt" | "srvtcpka-idle"
        | "srvtcpka-intvl" => tcp_keepalive(p, line, diags)?,
        "disabled" => p.disabled = true,
        "enabled" => p.disabled = false,
        "description" if p.kind == ProxyKind::Defaults => diags.global_alert(format!(
            "parsing [{}]: 'description' not allowed in 'defaults' section.",
            line.place
        )),
        "description" => p.description = description(line, diags),
        "source" => p.source = Some(source(p, line, diags)?),
        "usesrc" => return Err("'usesrc' only allowed after a 'source' statement.".into()),
        // Ignored by hapx anyway; out of a backend, HAProxy's own warning says so.
        "max-keep-alive-queue" if !p.kind.is_backend() && p.kind != ProxyKind::Defaults => {
            diags.warn(
                line.place,
                format!(
                    "{kw} will be ignored because {} '{}' has no backend capability",
                    p.kind.type_str(),
                    p.name
                ),
            );
        }
        "max-keep-alive-queue" => diags.warn(
            line.place,
            "'max-keep-alive-queue' is not implemented by hapx and is ignored: a request that stays with its connection's server waits in that server's queue whatever its length (HAProxy's default, -1).",
        ),
        "monitor-net" => {
            return Err(format!(
                "'monitor-net' doesn't exist anymore. Please use 'http-request return status 200 if {{ src {} }}' instead.",
                line.arg(1).unwrap_or_default()
            ));
        }
        "grace" => {
            let refused =
                "the 'grace' keyword is not supported any more since HAProxy version 2.5.";
            return report_line_error(
                super::diag::LineError::Unspaced(refused.into()),
                line.place,
                diags,
            );
        }
        _ => match keywords::lookup(keywords::PROXY, kw) {
            Some(Support::Removed(message)) => return Err(message.into()),
            Some(s) => not_implemented(s, &format!("'{kw}'"), line.place, diags),
            None => return Err(unknown(kw, section, hint_words::PROXY.iter().copied())),
        },
    }
    Ok(())
}

/// `source ADDR[:PORT] [usesrc ADDR2] [interface NAME]`: where the proxy's connections to
/// servers are bound, warned about (and still read) out of a backend, as HAProxy does. A
/// `source` replaces its `defaults`' whole, `usesrc` and `interface` included.
fn source(p: &Proxy, line: &Line<'_>, diags: &mut Diags) -> Result<ConnSource, String> {
    let Some(addr) = line.arg(1) else {
        return Err("'source' expects <addr>[:<port>], and optionally 'usesrc' <addr>, and 'interface' <name>.".into());
    };
    let mut source =
        values::source_addr(addr, false).map_err(|e| format!("'source {addr}' : {e}"))?;
    lacks(p, Capability::Backend, "source", line, diags);
    let mut i = 2;
    while let Some(option) = line.arg(i) {
        let value = line.arg(i + 1);
        match (option, value) {
            ("usesrc", None) => {
                return Err(
                    "'usesrc' expects <addr>[:<port>], 'client', or 'clientip' as argument.".into(),
                );
            }
            ("usesrc", Some(v)) => source.usesrc = Some(usesrc(v)?),
            ("interface", None) => return Err("'source' : missing interface name.".into()),
            ("interface", Some(v)) => source.interface = Some(v.into()),
            _ => {
                return Err(
                    "'source' only supports optional keywords 'interface' and 'usesrc'.".into(),
                );
            }
        }
        i += 2;
    }
    Ok(source)
}

/// The value of `usesrc` (`client`, `clientip`, `hdr_ip(NAME[,OCC])` or `ADDR[:PORT]`), as
/// HAProxy's `source` keywords read it, with their messages.
fn usesrc(value: &str) -> Result<UseSrc, String> {
    match value {
        "client" => Ok(UseSrc::Client),
        "clientip" => Ok(UseSrc::ClientIp),
        _ => match value.strip_prefix("hdr_ip(") {
            Some(args) => usesrc_header(args),
            None => values::source_addr(value, false)
                .map(|s| UseSrc::Addr(s.addr))
                .map_err(|e| format!("'usesrc {value}' : {e}")),
        },
    }
}

/// `hdr_ip(` then `args`, read as HAProxy does: the name up to a blank, a comma or `)`,
/// then after blanks an optional comma and occurrence (an optional `-` and digits, read by
/// `strl2ic`; none: -1, the last); the rest is ignored.
fn usesrc_header(args: &str) -> Result<UseSrc, String> {
    let args = args.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let name_len = args
        .find(|c: char| c.is_ascii_whitespace() || c == ',' || c == ')')
        .unwrap_or(args.len());
    let (name, rest) = args.split_at(name_len);
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let occurrence = match rest.strip_prefix(',') {
        None => -1,
        Some(number) => {
            let sign = usize::from(number.starts_with('-'));
            let digits = number[sign..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(number.len() - sign);
            strl2ic(&number[..sign + digits])
        }
    };
    // HAProxy's MAX_HDR_HISTORY: the occurrences it remembers from the end.
    if occurrence < -10 {
        return Err(
            "usesrc hdr_ip(name,num) does not support negative occurrences values smaller than 10."
                .into(),
        );
    }
    Ok(UseSrc::Header {
        name: name.into(),
        occurrence,
    })
}

/// HAProxy's `strl2ic`: an optional `-` then digits, in wrapping 32-bit arithmetic.
fn strl2ic(text: &str) -> i32 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    digits.bytes().fold(0i32, |n, d| {
        let digit = i32::from(d - b'0');
        match negative {
            true => n.wrapping_mul(10).wrapping_sub(digit),
            false => n.wrapping_mul(10).wrapping_add(digit),
        }
    })
}

/// `stick-table ...`: the proxy's one table ([`super::stick`]).
fn stick_table(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    if p.kind == ProxyKind::Defaults {
        return Err("'stick-table' is not supported in 'defaults' section.".into());
    }
    if let Some(first) = &p.stick_table {
        return Err(format!(
            "stick-table name '{}' conflicts with table declared in {} '{}' at {}.",
            p.name,
            p.kind.keyword(),
            p.name,
            first.declared_at
        ));
    }
    let mut warnings = Vec::new();
    let mut spec = match super::stick::parse_table(&line.words[1..], &mut warnings) {
        Ok(spec) => spec,
        Err(e) => return report_line_error(e, line.place, diags),
    };
    for w in warnings {
        diags.warn(line.place, w);
    }
    spec.declared_at = line.place.to_string();
    p.stick_table = Some(spec);
    Ok(())
}

/// `http-request use-service prometheus-exporter [if { path /metrics }]`, the one service
/// hapx provides.
fn prometheus(p: &mut Proxy, line: &Line<'_>) -> Outcome {
    let words: Vec<&str> = line.words[2..].iter().map(String::as_str).collect();
    let path = match words.as_slice() {
        ["prometheus-exporter"] => String::new(),
        ["prometheus-exporter", "if", "{", "path", path, "}"] => (*path).to_string(),
        ["prometheus-exporter", ..] => {
            return Err("'http-request use-service prometheus-exporter' supports only 'if { path <path> }' as a condition in hapx.".into());
        }
        [other, ..] => {
            return Err(format!(
                "'http-request use-service' : unknown service '{other}' (hapx provides 'prometheus-exporter')."
            ));
        }
        [] => return Err("'http-request use-service' expects a service name.".into()),
    };
    if p.mode != Mode::Http {
        return Err("'http-request use-service' needs 'mode http'.".into());
    }
    p.prometheus = Some(path);
    Ok(())
}

fn bind(p: &mut Proxy, g: &Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let spec = one(line, "<addr1>[:<port1>][,<addr2>...]")?;
    // HAProxy reads the addresses before the options, so their errors come first; a comma
    // ending the list ends it.
    let addrs = (spec.strip_suffix(',').unwrap_or(spec))
        .split(',')
        .map(|part| Ok((part, values::bind_addrs(part)?)))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| format!("'bind' : {e}"))?;
    let mut tls = BindTlsOptions::default();
    let mut v6only = false;
    let mut backlog = None;
    let mut accept_proxy = false;
    let mut defer_accept = false;
    let mut proto = None;
    let mut maxconn = None;
    let mut interface = None;
    // HAProxy's prefix to a bind keyword's error.
    let at = format!("'bind {spec}' in section '{}' : ", p.kind.keyword());
    let mut i = 2;
    while let Some(opt) = line.arg(i) {
        let (nargs, support) = keywords::lookup_args(keywords::BIND, opt).ok_or_else(|| {
            let section = p.kind.keyword();
            let m = format!("'bind {spec}' in section '{section}': unknown keyword '{opt}'");
            match keywords::suggest(opt, hint_words::BIND.iter().copied()) {
                Some(s) => format!("{m}; did you mean '{s}' maybe ?"),
                None => format!("{m}."),
            }
        })?;
        let value = line.arg(i + 1);
        if nargs > 0 && value.is_none() {
            return Err(format!("{at}{}", bind_missing_argument(opt)));
        }
        match opt {
            "v6only" => v6only = true,
            "v4v6" => v6only = false,
            "backlog" => {
                backlog = bind_backlog(value.unwrap_or_default()).map_err(|e| format!("{at}{e}"))?
            }
            "id" => bind_id(value.unwrap_or_default()).map_err(|e| format!("{at}{e}"))?,
            "maxconn" => {
                maxconn = bind_maxconn(value.unwrap_or_default()).map_err(|e| format!("{at}{e}"))?
            }
            "interface" => interface = value.map(str::to_string),
            "accept-proxy" => accept_proxy = true,
            "defer-accept" => defer_accept = true,
            "proto" => {
                let name = value.unwrap_or_default();
                proto = Some(
                    MuxProto::parse(name)
                        .ok_or_else(|| format!("{at}'proto' :  unknown MUX protocol '{name}'"))?,
                );
            }
            // Every hapx listener may bind an address that is not local yet (IP_FREEBIND).
            "transparent" => {}
            // Refused, as ignoring it would let in what the listener is meant to keep out
            // (another namespace's clients).
            "namespace" => {
                return Err(format!(
                    "{at}'{opt}' is not implemented by hapx (ignoring it would let in connections it is meant to refuse)."
                ));
            }
            _ if bind_tls_option(&mut tls, opt, value.unwrap_or_default(), line.place, diags)
                .map_err(|e| format!("{at}{e}"))? => {}
            _ => not_implemented(support, &format!("'bind ... {opt}'"), line.place, diags),
        }
        i += 1 + nargs;
    }
    if tls.ssl
        && tls
            .with_defaults(&g.ssl_default_bind)
            .ignores_version_flags()
    {
        diags.global_warn(format!(
            "Proxy '{}': no-sslv3/no-tlsv1x are ignored for bind '{spec}' at [{}]. Use only 'ssl-min-ver' and 'ssl-max-ver' to fix.",
            p.name, line.place
        ));
    }
    if tls.ssl {
        let inherited = tls.ciphers.inherited(&g.ssl_default_bind.ciphers);
        for warning in inherited.check("ssl-default-bind-").unwrap_or_default() {
            diags.warn(line.place, format!("{at}{warning}"));
        }
    }
    let tls = bind_tls_server(&tls, g, spec, &at, line.place, diags)?;
    for (part, addrs) in addrs {
        p.binds.extend(addrs.into_iter().map(|addr| Bind {
            addr,
            spec: part.into(),
            v6only,
            backlog,
            accept_proxy,
            defer_accept,
            tls: tls.clone(),
            proto,
            maxconn,
            interface: interface.clone(),
            place: line.place.clone(),
        }));
    }
    Ok(())
}

/// A bind line's TLS server side from its options (`at`: HAProxy's prefix to its errors;
/// `spec`: its address, naming it in crt-list messages): None when it serves in clear.
pub(super) fn bind_tls_server(
    tls: &BindTlsOptions,
    g: &Global,
    spec: &str,
    at: &str,
    place: &Place,
    diags: &mut Diags,
) -> Result<Option<Arc<super::bind_tls::TlsServer>>, String> {
    super::bind_tls::check_ca_files(tls, g.ca_base.as_deref())
        .map_err(|e| ca_file_error(e, at, diags))?;
    // As HAProxy, `crt` without `ssl` loads its certificates (and fails on bad ones) for a
    // listener that serves in clear.
    if !tls.ssl && tls.crts.is_empty() {
        return Ok(None);
    }
    let bases = super::bind_tls::Bases {
        ca: g.ca_base.as_deref(),
        crt: g.crt_base.as_deref(),
    };
    let tls = tls.with_defaults(&g.ssl_default_bind);
    let lists =
        crt_lists(&tls, bases, spec, place, diags).map_err(|e| format!("{at}'crt-list' : {e}"))?;
    let server = super::bind_tls::build(&tls, bases, &lists).map_err(|e| format!("{at}{e}"))?;
    for warning in server.warnings() {
        diags.global_warn(warning.clone());
    }
    Ok(tls.ssl.then(|| Arc::new(server)))
}

/// `bind ... backlog N`: read with atol as HAProxy does (0, or no number: the default).
fn bind_backlog(v: &str) -> Result<Option<u32>, String> {
    match atoi(v) {
        n if n < 0 => Err(format!("'backlog' : invalid value {n}, must be > 0")),
        0 => Ok(None),
        n => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
    }
}

/// `bind ... maxconn N`: read with atol as HAProxy does; 0 (or no number) leaves the
/// listener bounded by its frontend's `maxconn` alone.
fn bind_maxconn(v: &str) -> Result<Option<usize>, String> {
    match atoi(v) {
        n if n < 0 => Err(format!("'maxconn' : invalid value {n}, must be >= 0")),
        n => Ok(usize::try_from(n).ok().filter(|&n| n > 0)),
    }
}

/// `bind ... id N`: hapx has no listener ids to show, but refuses what HAProxy refuses.
fn bind_id(v: &str) -> Result<(), String> {
    let id: i64 = v
        .parse()
        .map_err(|_| format!("'id' : expects an integer argument, found '{v}'"))?;
    if id <= 0 {
        return Err("'id' : custom id has to be > 0".into());
    }
    Ok(())
}

/// A bind's unreadable `ca-file` or `crl-file`: HAProxy first alerts why it could not open
/// it (calling either a ca-file), then refuses the line.
fn ca_file_error(e: super::bind_tls::BindTlsError, at: &str, diags: &mut Diags) -> String {
    use super::bind_tls::BindTlsError::{CaFile, CrlFile};
    let (keyword, path, why) = match &e {
        CaFile(path, why) => ("ca-file", path, why),
        CrlFile(path, why) => ("crl-file", path, why),
        _ => return format!("{at}{e}"),
    };
    diags.global_alert(format!("Couldn't open the ca-file '{path}' ({why})."));
    format!("{at}'{keyword}' : unable to load {path}")
}

/// Reads the crt-lists of a bind line, in order; each line's options over the bind line's,
/// with the bind line's warnings for what hapx does not implement.
fn crt_lists(
    tls: &BindTlsOptions,
    bases: super::bind_tls::Bases<'_>,
    spec: &str,
    place: &Place,
    diags: &mut Diags,
) -> Result<Vec<Arc<super::crt_list::CrtList>>, super::crt_list::CrtListError> {
    let mut lists = Vec::new();
    for source in &tls.crts {
        let CrtSource::List(path) = source else {
            continue;
        };
        // Warned after the list's own warnings, naming the list's line.
        let mut options_diags = Diags::default();
        let mut apply = |at: usize, options: &mut BindTlsOptions, kw: &str, v: &str| {
            let mut warnings = Diags::default();
            if !bind_tls_option(options, kw, v, place, &mut warnings)? {
                warnings.warn(
                    place,
                    format!("'{kw}' is not implemented by hapx and is ignored."),
                );
            }
            for warning in warnings.list {
                options_diags.warn(
                    place,
                    format!(
                        "'bind {spec}' : 'crt-list' : parsing [{path}:{at}]: {}",
                        warning.message
                    ),
                );
            }
            Ok(())
        };
        let (list, malformed) = super::crt_list::read(path, bases, tls, &mut apply)?;
        for warning in malformed {
            diags.warn(place, format!("'bind {spec}' : 'crt-list' : {warning}"));
        }
        diags.list.extend(options_diags.list);
        lists.push(Arc::new(list));
    }
    Ok(lists)
}

fn balance(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let (balance, warning) = super::balance::parse_balance(line.words)?;
    if let Some(warning) = warning {
        diags.warn(line.place, warning);
    }
    p.balance = balance;
    Ok(())
}

/// `max-session-srv-conns N`, read as HAProxy 2.6 reads it: warned about outside a
/// frontend yet read; a missing value is an alert with HAProxy's own wording ("parsine");
/// any other text is C's `atoi` into an `int` (so `abc` is 0, extra words are ignored), and
/// a value below 1 keeps no idle connection (`session_check_idle_conn` compares
/// `idle_conns >= max_out_conns`).
fn max_session_srv_conns(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) {
    let kw = line.words[0].as_str();
    if !p.kind.is_frontend() && p.kind != ProxyKind::Defaults {
        diags.warn(
            line.place,
            format!(
                "'{kw}' ignored because {} '{}' has no frontend capability.",
                p.kind.keyword(),
                p.name
            ),
        );
    }
    let Some(value) = line.arg(1) else {
        let place = line.place;
        diags.global_alert(format!(
            "parsine [{place}] : '{kw}' expects a number. Got no argument"
        ));
        return;
    };
    // C's `(int)strtol()`: the low 32 bits.
    let as_int = atoi(value) as i32;
    p.max_session_srv_conns = usize::try_from(as_int).unwrap_or(0);
}

/// `rate-limit sessions N`, read as HAProxy 2.6 reads it: `sessions` is the only setting,
/// the value is C's `strtoul(N, &end, 0)` into an `unsigned int` with nothing after it, and
/// outside a frontend it is warned about yet read.
fn rate_limit_sessions(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let kw = line.words[0].as_str();
    let setting = line.arg(1).unwrap_or("");
    if setting != "sessions" {
        return Err(format!("'{kw}' only supports 'sessions' (got '{setting}')"));
    }
    let value = match line.arg(2) {
        Some(v) if !v.is_empty() => v,
        _ => {
            return Err(format!(
                "'{kw} {setting}' expects expects an integer value (in sessions/second)"
            ));
        }
    };
    let (rate, rest) = values::strtoul(value);
    if let Some(stray) = rest.chars().next() {
        return Err(format!(
            "'{kw} {setting}' : unexpected character '{stray}' in integer value '{value}'"
        ));
    }
    if !p.kind.is_frontend() && p.kind != ProxyKind::Defaults {
        diags.warn(
            line.place,
            format!(
                "{kw} {setting} will be ignored because {} '{}' has no frontend capability",
                p.kind.keyword(),
                p.name
            ),
        );
    }
    // The low 32 bits, as C's conversion to `unsigned int`.
    p.rate_limit_sessions = rate as u32;
    Ok(())
}

/// C's atoi: leading blanks, a sign, the digits that follow (0 without any).
pub(super) fn atoi(text: &str) -> i64 {
    let t = text.trim_start();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit);
    sign * digits.fold(0i64, |n, d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    })
}

/// `server-template <prefix> <num | low-high> <fqdn>[:<port>] [params*]`: the servers
/// `<prefix>1` to `<prefix><num>` (or `<prefix><low>` to `<prefix><high>`), each a `server`
/// line of its own on the same name; with `resolvers`, each takes one address of the answer
/// (HAProxy's `prevent-dup-ip`), the others wait in maintenance without one.
fn server_template(
    p: &Proxy,
    line: &Line<'_>,
    diags: &mut Diags,
) -> Result<Vec<Server>, ServerError> {
    let range = line.arg(2).unwrap_or_default();
    // HAProxy's reading, with atoi(): `N` is 1 to N; `LOW-HIGH` may start at 0.
    // The low end is read from the whole argument (so "-3" is -3).
    let (low, high) = match range.split_once('-') {
        Some((_, high)) => (atoi(range), atoi(high)),
        None => (1, atoi(range)),
    };
    if low < 0 || high < low {
        return Err(ServerError::Line(format!(
            "Wrong server-template number or range arg '{range}'."
        )));
    }
    let (Some(prefix), Some(_)) = (line.arg(1), line.arg(3)) else {
        return Err(ServerError::Line(
            "'server-template' expects <prefix> <num | range> <fqdn>[:<port>] as arguments.".into(),
        ));
    };
    (low..=high)
        .map(|n| {
            // The line a `server` of this template would have: name, address, parameters.
            let mut words = vec!["server".to_string(), format!("{prefix}{n}")];
            words.extend_from_slice(&line.words[3..]);
            let one = Line {
                words: &words,
                place: line.place,
            };
            server(p, &one, diags)
        })
        .collect()
}

fn server(p: &Proxy, line: &Line<'_>, diags: &mut Diags) -> Result<Server, ServerError> {
    let (Some(name), Some(addr)) = (line.arg(1), line.arg(2)) else {
        return Err(ServerError::Line(
            "'server' expects <name> and <addr>[:<port>] as arguments.".into(),
        ));
    };
    check_name(name, "server").map_err(ServerError::Line)?;
    let (family, hp) = values::strip_family(addr);
    if family.is_some_and(|f| !matches!(f, "ipv4" | "ipv6" | "tcp" | "tcp4" | "tcp6")) {
        return Err(ServerError::Line(format!(
            "'server {}/{name}' : address family of '{addr}' is not supported by hapx.",
            p.name
        )));
    }
    let (host, port) = values::split_host_port(hp);
    let port = match port {
        "" => None,
        p if p.starts_with('+') || p.starts_with('-') => {
            return Err(ServerError::Line(format!(
                "'server {name}' : port offsets ('{p}') are not supported by hapx."
            )));
        }
        p => Some(
            p.parse::<u16>()
                .map_err(|_| ServerError::Line(format!("'server {name}' : invalid port '{p}'.")))?,
        ),
    };
    if host.is_empty() {
        return Err(ServerError::Line(format!(
            "'server {name}' : missing address."
        )));
    }
    let mut opts = p.default_server.clone();
    server_options(&mut opts, line, 3, diags)?;
    if opts.check && opts.track.is_some() {
        return Err(ServerError::Line(format!(
            "'server {}/{name}' : unable to enable checks and tracking at the same time!",
            p.name
        )));
    }
    Ok(Server {
        name: name.into(),
        host: host.into(),
        port,
        opts,
        place: line.place.clone(),
        id: 0,
        addr: None,
    })
}

/// Why a `server`, `server-template` or `default-server` line is refused.
enum ServerError {
    /// The line's own error, worded as other lines' (`parsing [f:l] : ...`).
    Line(String),
    /// A keyword's: HAProxy's `display_parser_err` words it `[f:l] : 'server b/s' : MSG.`
    /// (no `parsing`, no server for `default-server`, a full stop added to the keyword's
    /// own message).
    Keyword(String),
    /// An unknown keyword: as a keyword's, but worded whole (no full stop added).
    Whole(String),
    /// An error in what follows `source` (`usesrc`, `interface`, the keyword): worded whole,
    /// then HAProxy's wrapper, without a message to show, says which word it was at.
    Source(String, &'static str),
}

/// A keyword's error, the usual kind in [`server_options`].
impl From<String> for ServerError {
    fn from(m: String) -> Self {
        ServerError::Keyword(m)
    }
}

impl From<&str> for ServerError {
    fn from(m: &str) -> Self {
        ServerError::Keyword(m.into())
    }
}

/// `'server b/s' : `: how HAProxy names the server a keyword error is about.
fn server_label(p: &Proxy, line: &Line<'_>) -> String {
    let (statement, name) = (&line.words[0], line.arg(1).unwrap_or_default());
    format!("'{statement} {}/{name}' : ", p.name)
}

/// Reports a refused server line: a keyword's error is an alert of its own (the line is
/// skipped, the configuration fails), the line's own is the line's error.
fn report_server_error(e: ServerError, label: String, place: &Place, diags: &mut Diags) -> Outcome {
    match e {
        ServerError::Line(m) => Err(m),
        ServerError::Keyword(m) => {
            diags.global_alert(format!("[{place}] : {label}{m}."));
            Ok(())
        }
        ServerError::Whole(m) => {
            diags.global_alert(format!("[{place}] : {label}{m}"));
            Ok(())
        }
        ServerError::Source(m, keyword) => {
            diags.global_alert(format!("[{place}] : {label}{m}"));
            diags.global_alert(format!("error encountered while processing '{keyword}'."));
            Ok(())
        }
    }
}

/// `server ... proto NAME` (or `check-proto NAME`, `keyword`): whether its connections (its
/// checks) speak HTTP/2 (`h1`: HTTP/1.1). HAProxy's other muxes (`fcgi`, `none`) are not
/// hapx's.
fn server_proto(keyword: &str, name: &str) -> Result<bool, String> {
    match MuxProto::parse(name) {
        Some(MuxProto::H2) => Ok(true),
        Some(MuxProto::H1) => Ok(false),
        Some(_) => Err(format!(
            "'{keyword}' : MUX protocol '{name}' is not implemented by hapx for servers"
        )),
        None => Err(format!("'{keyword}' :  unknown MUX protocol '{name}'")),
    }
}

/// Server numbers HAProxy reads with C's atol, so that a word is taken as 0 without a word
/// of warning (`maxconn bogus`: no limit). hapx takes them as HAProxy does, and warns.
const ATOL_NUMBERS: [&str; 7] = [
    "weight",
    "maxconn",
    "maxqueue",
    "pool-max-conn",
    "port",
    "agent-port",
    "minconn",
];

/// Warns about a value of `opt` that is not a whole decimal number, naming what it is read as.
fn warn_not_a_number(opt: &str, v: &str, line: &Line<'_>, diags: &mut Diags) {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let who = match line.arg(0) {
            Some("server") => format!("server {}", server_name(line)),
            _ => "default-server".into(),
        };
        diags.warn(
            line.place,
            format!(
                "'{who}' : '{opt}' : '{v}' is not a number: read as {}, as HAProxy does.",
                atoi(v)
            ),
        );
    }
}

fn server_options(
    o: &mut ServerOptions,
    line: &Line<'_>,
    from: usize,
    diags: &mut Diags,
) -> Result<(), ServerError> {
    let mut i = from;
    while let Some(opt) = line.arg(i) {
        let (nargs, support) = keywords::lookup_args(keywords::SERVER, opt).ok_or_else(|| {
            let mut m = format!("unknown keyword '{opt}'");
            match keywords::suggest(opt, hint_words::SERVER.iter().copied()) {
                Some(s) => m.push_str(&format!("; did you mean '{s}' maybe ?")),
                None => m.push('.'),
            }
            if line.words[0] == "default-server" {
                m.push_str(" Hint: no address was expected for this server.");
            }
            ServerError::Whole(m)
        })?;
        let v = line.arg(i + 1).unwrap_or_default();
        if ATOL_NUMBERS.contains(&opt) && line.arg(i + 1).is_some() {
            warn_not_a_number(opt, v, line, diags);
        }
        if nargs > 0 && line.arg(i + 1).is_none() {
            if let Some(m) = server_missing_argument(opt) {
                return Err(m.into());
            }
        }
        // HAProxy reads these with atol: leading digits, else 0 (refused).
        let positive = |v: &str| -> Result<u32, String> {
            u32::try_from(atoi(v))
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("'{opt}' has to be > 0."))
        };
        match opt {
            "check" => o.check = true,
            "no-check" => o.check = false,
            "inter" => o.inter = check_interval(opt, v, line)?,
            "fastinter" => o.fastinter = Some(check_interval(opt, v, line)?),
            "downinter" => o.downinter = Some(check_interval(opt, v, line)?),
            "rise" => o.rise = positive(v)?,
            "fall" => o.fall = positive(v)?,
            // HAProxy reads these numbers with atol (no digits: 0).
            "weight" => {
                let w = atoi(v);
                o.weight = u32::try_from(w).ok().filter(|&w| w <= 256).ok_or_else(|| {
                    let name = server_name(line);
                    format!("weight of server {name} is not within 0 and 256 ({w}).")
                })?;
            }
            "backup" => o.backup = true,
            "no-backup" => o.backup = false,
            "non-stick" => o.non_stick = true,
            "stick" => o.non_stick = false,
            "cookie" => o.cookie = Some(v.into()),
            // 0: no limit, as in HAProxy.
            "maxconn" => o.maxconn = usize::try_from(atoi(v)).ok().filter(|&n| n > 0),
            "maxqueue" => o.maxqueue = usize::try_from(atoi(v)).ok().filter(|&n| n > 0),
            "resolvers" => o.resolvers = Some(v.into()),
            "resolve-prefer" => {
                o.resolve_prefer_v6 = match v {
                    "ipv4" => false,
                    "ipv6" => true,
                    _ => {
                        return Err(
                            "'resolve-prefer' expects either ipv4 or ipv6 as argument.".into()
                        );
                    }
                }
            }
            "resolve-opts" => o.resolve_allow_dup_ip = resolve_opts(v, o.resolve_allow_dup_ip)?,
            "resolve-net" => o.resolve_nets = resolve_nets(v)?,
            "init-addr" => o.init_addr = init_addr(v)?,
            "disabled" => o.disabled = true,
            "enabled" => o.disabled = false,
            "proto" | "check-proto" => {
                let h2 = server_proto(opt, v)?;
                match opt {
                    "proto" => o.proto_h2 = h2,
                    _ => o.check_proto_h2 = Some(h2),
                }
            }
            "pool-max-conn" => {
                o.pool_max_conn = match atoi(v) {
                    -1 => None,
                    n if n < -1 => return Err("'pool-max-conn' must be >= -1".into()),
                    n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                }
            }
            "pool-purge-delay" => o.pool_purge_delay = pool_purge_delay(v)?,
            "slowstart" => o.slowstart_secs = slowstart(v, line)?,
            "observe" => {
                o.observe = match v {
                    "none" => None,
                    "layer4" => Some(Observe::Layer4),
                    "layer7" => Some(Observe::Layer7),
                    _ => {
                        return Err(format!(
                            "'observe' expects one of 'none', 'layer4', 'layer7' but got '{v}'"
                        )
                        .into());
                    }
                }
            }
            "error-limit" => {
                o.error_limit = v
                    .parse()
                    .ok()
                    .filter(|&n: &u32| n > 0)
                    .ok_or("error-limit has to be > 0.")?
            }
            "on-error" => {
                o.on_error = match v {
                    "fastinter" => OnError::FastInter,
                    "fail-check" => OnError::FailCheck,
                    "sudden-death" => OnError::SuddenDeath,
                    "mark-down" => OnError::MarkDown,
                    _ => {
                        return Err(format!(
                            "'on-error' expects one of 'fastinter', 'fail-check', 'sudden-death' or 'mark-down' but got '{v}'"
                        )
                        .into());
                    }
                }
            }
            "track" => {
                o.track = Some(match v.split_once('/') {
                    Some((proxy, server)) => (Some(proxy.into()), server.into()),
                    None => (None, v.into()),
                })
            }
            "on-marked-down" => o.shutdown_on_down = one_action(opt, v, "shutdown-sessions")?,
            "on-marked-up" => {
                o.shutdown_backups_on_up = one_action(opt, v, "shutdown-backup-sessions")?
            }
            "send-proxy" => o.send_proxy = Some(1),
            "send-proxy-v2" => o.send_proxy = Some(2),
            "no-send-proxy" => o.send_proxy = None,
            "no-send-proxy-v2" if o.send_proxy == Some(2) => o.send_proxy = None,
            "no-send-proxy-v2" | "no-tfo" => {}
            "check-send-proxy" => o.check_send_proxy = true,
            "no-check-send-proxy" => o.check_send_proxy = false,
            "id" => {
                // As `positive` (atol), in the words of HAProxy's `srv_parse_id`.
                o.forced_id = Some(
                    usize::try_from(atoi(v))
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("'id' : custom id has to be > 0")?,
                )
            }
            "agent-check" => o.agent.enabled = true,
            "no-agent-check" => o.agent.enabled = false,
            // HAProxy reads it with atol: leading digits, else 0 (no port).
            "agent-port" => o.agent.port = Some(atol_port(v)).filter(|&p| p != 0),
            "agent-inter" => o.agent.inter = Some(check_interval(opt, v, line)?),
            "agent-send" => o.agent.send = Some(v.into()),
            "agent-addr" => {
                o.agent.addr = Some(super::check::resolve_libc(v, false).ok_or_else(|| {
                    format!("parsing agent-addr failed. Check if '{v}' is correct address.")
                })?)
            }
            // Read as `agent-port` (atol), 0 being no port of its own.
            "port" => o.check_port = Some(atol_port(v)).filter(|&p| p != 0),
            "source" => {
                let source = values::source_addr(v, true);
                let mut source = source.map_err(|e| format!("'source {v}' : {e}."))?;
                // HAProxy's `srv_parse_source` sets the address (and range) only: a `usesrc`
                // or an `interface` from `default-server` stays.
                if let Some(before) = o.source.take() {
                    (source.usesrc, source.interface) = (before.usesrc, before.interface);
                }
                o.source = Some(source);
                // HAProxy's `srv_parse_source` reads these after the address.
                while let Some(kw @ ("usesrc" | "interface")) = line.arg(i + 2) {
                    let Some(value) = line.arg(i + 3) else {
                        return Err(match kw {
                            "usesrc" => ServerError::Source("'usesrc' expects <addr>[:<port>], 'client', 'clientip', or 'hdr_ip(name,#)' as argument.".into(), "usesrc"),
                            _ => ServerError::Source(format!("'{}' : missing interface name.", line.words[0]), "interface"),
                        });
                    };
                    let source = o.source.as_mut().expect("set just above");
                    match kw {
                        "usesrc" => {
                            source.usesrc =
                                Some(usesrc(value).map_err(|e| ServerError::Source(e, "usesrc"))?)
                        }
                        _ => source.interface = Some(value.into()),
                    }
                    i += 2;
                }
            }
            "usesrc" => return Err("'usesrc' only allowed after a 'source' statement.".into()),
            "addr" => {
                o.check_addr = Some(
                    v.parse()
                        .map_err(|_| format!("'addr' : invalid address: '{v}' in '{v}'"))?,
                )
            }
            _ if server_tls_option(&mut o.tls, opt, v, line.place, diags)? => {}
            _ => not_implemented(
                support,
                &format!("server option '{opt}'"),
                line.place,
                diags,
            ),
        }
        i += 1 + nargs;
    }
    Ok(())
}

/// HAProxy's words for a server keyword written without its argument (each keyword's
/// parser's own); `None` where HAProxy reads the missing one as an empty value.
fn server_missing_argument(opt: &str) -> Option<String> {
    let what = match opt {
        "inter" | "fastinter" | "downinter" | "agent-inter" => "a delay",
        "rise" | "fall" | "error-limit" => {
            return Some(format!("'{opt}' expects an integer argument."));
        }
        "port" | "agent-port" => "a port number",
        "addr" => "<ipv4|ipv6>",
        "observe" => "<mode>",
        "agent-send" => "a string",
        "cookie" => "<value>",
        "track" => "[<proxy>/]<server>",
        "source" => {
            "<addr>[:<port>[-<port>]], and optionally 'usesrc' <addr>, and 'interface' <name>"
        }
        "pool-max-conn" | "pool-purge-delay" | "max-reuse" | "pool-low-conn" => "<value>",
        "redir" => "<prefix>",
        "socks4" => "<addr>:<port>",
        "agent-addr" => "an address",
        "resolve-net" => return Some("'resolve-net' expects a list of networks.".into()),
        "id" => return Some("'id' : expects an integer argument".into()),
        "namespace" => return Some("'namespace' : expects <name> as argument".into()),
        "verifyhost" => return Some("'verifyhost' : missing hostname to verify against".into()),
        "sni" => return Some("'sni' : missing sni expression".into()),
        "crt" => return Some("'crt' : missing certificate file path".into()),
        "check-sni" => return Some("'check-sni' : missing SNI".into()),
        // Those HAProxy reads with an empty value: its answer for that value.
        "on-marked-down" | "on-marked-up" | "on-error" | "slowstart" | "ws" | "usesrc"
        | "log-proto" | "proxy-v2-options" | "resolve-prefer" | "weight" | "maxconn"
        | "maxqueue" | "minconn" | "init-addr" | "resolve-opts" => {
            return None;
        }
        _ => return tls_missing_argument(opt),
    };
    Some(format!("'{opt}' expects {what} as argument."))
}

/// HAProxy's words for a TLS (or mux) keyword of a bind or server line written without its
/// argument; `None` for one that is not such a keyword.
fn tls_missing_argument(opt: &str) -> Option<String> {
    let what = match opt {
        "verify" => "missing verify method",
        "ca-file" | "ca-sign-file" | "ca-verify-file" => "missing CAfile path",
        "crl-file" => "missing CRLfile path",
        "alpn" | "check-alpn" => "missing the comma-delimited ALPN protocol suite",
        "npn" => "missing the comma-delimited NPN protocol suite",
        "ciphers" | "ciphersuites" => "missing cipher suite",
        "ssl-min-ver" | "ssl-max-ver" => "missing the ssl/tls version",
        "proto" | "check-proto" => "missing value",
        "tcp-ut" => "missing TCP User Timeout value",
        "curves" => "missing curve suite",
        _ => return None,
    };
    Some(format!("'{opt}' : {what}"))
}

/// HAProxy's words for a bind keyword written without its argument (each keyword's
/// parser's own).
fn bind_missing_argument(opt: &str) -> String {
    let what = match opt {
        "backlog" | "maxconn" | "nice" | "uid" | "gid" | "accept-netscaler-cip" | "shards" => {
            "missing value"
        }
        "name" => "missing name",
        "id" => "expects an integer argument",
        "interface" => "missing interface name",
        "crt" | "crt-list" => "missing certificate location",
        "mss" => "missing MSS value",
        "mode" => "missing or invalid mode '' (octal integer expected)",
        "user" => "missing user name",
        "group" => "missing group name",
        "level" => "missing level",
        "expose-fd" => "missing fd type",
        "namespace" => "missing namespace id",
        "severity-output" => "missing severity format",
        "ca-ignore-err" | "crt-ignore-err" => "missing error IDs list",
        "ca-sign-pass" => "missing CAkey password",
        "ecdhe" => "missing named curve",
        "tls-ticket-keys" => "missing TLS ticket keys file path",
        "process" => "'' is not a valid number/range. It supports numbers from 1 to 1.",
        "thread" => {
            return "'' : '' is not a valid number/range. It supports numbers from 1 to 64.".into();
        }
        _ => {
            return tls_missing_argument(opt).unwrap_or_else(|| format!("'{opt}' : missing value"));
        }
    };
    format!("'{opt}' : {what}")
}

/// `slowstart TIME`: in whole seconds (rounded up), as HAProxy keeps it; its messages name
/// the server (`default-server` on that line).
fn slowstart(v: &str, line: &Line<'_>) -> Result<u32, String> {
    let name = server_name(line);
    time_syntax(v, "slowstart", name)?;
    let ms = values::duration(v)
        .ok()
        .map(|d| d.as_millis())
        .filter(|&ms| ms <= i32::MAX as u128)
        .ok_or_else(|| {
            format!(
                "overflow in argument <{v}> to <slowstart> of server {name}, maximum value is 2147483647 ms (~24.8 days)."
            )
        })?;
    Ok(ms.div_ceil(1000) as u32)
}

/// The server a `server` line names (`default-server` on that line), as HAProxy's
/// messages about its values say.
fn server_name<'a>(line: &'a Line<'_>) -> &'a str {
    match line.arg(0) {
        Some("server") => line.arg(1).unwrap_or_default(),
        _ => "default-server",
    }
}

/// A server keyword's time: digits, then an optional unit, in HAProxy's words otherwise.
fn time_syntax(v: &str, opt: &str, name: &str) -> Result<(), String> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &v[digits..];
    // What follows a unit only gets a warning (see `values::timer_unit`).
    if digits == 0 || values::timer_unit(unit).is_none() {
        // HAProxy prints the offending character with %c: a missing one is the string's
        // NUL, which ends the message there.
        let Some(c) = unit.chars().next() else {
            return Err("unexpected character '".into());
        };
        return Err(format!(
            "unexpected character '{c}' in '{opt}' argument of server {name}."
        ));
    }
    Ok(())
}

/// `inter`, `fastinter`, `downinter`, `agent-inter` (`kw`): a time above zero (a zero
/// interval would re-arm the check at once, for ever), in HAProxy's words otherwise, naming
/// the server or `default-server`. HAProxy 2.6 names `agent-inter` in the syntax error of
/// all of them (its `srv_parse_check_inter` shares that text).
fn check_interval(kw: &str, v: &str, line: &Line<'_>) -> Result<std::time::Duration, String> {
    let name = server_name(line);
    time_syntax(v, "agent-inter", name)?;
    // The syntax is right: only an overflow is left to fail.
    let interval = values::duration(v).map_err(|_| {
        format!(
            "timer overflow in argument <{v}> to <{kw}> of server {name}, maximum value is 2147483647 ms (~24.8 days)."
        )
    })?;
    if interval.is_zero() {
        return Err(format!(
            "invalid value 0 for argument '{kw}' of server {name}."
        ));
    }
    Ok(interval)
}

/// `pool-purge-delay TIME`, in HAProxy's words when it is not one.
fn pool_purge_delay(v: &str) -> Result<std::time::Duration, String> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    values::duration(v).map_err(|_| {
        let c = v[digits..].chars().next().unwrap_or_default();
        format!("unexpected character '{c}' in argument to <pool-purge-delay>.")
    })
}

/// C's atol, kept to 16 bits as HAProxy stores a port: the leading digits (none: 0).
fn atol_port(v: &str) -> u16 {
    v.bytes().take_while(u8::is_ascii_digit).fold(0u16, |n, d| {
        n.wrapping_mul(10).wrapping_add(u16::from(d - b'0'))
    })
}

/// `on-marked-down` and `on-marked-up`: their one action, in HAProxy's words otherwise.
fn one_action(opt: &str, v: &str, action: &str) -> Result<bool, String> {
    if v == action {
        Ok(true)
    } else {
        Err(format!("'{opt}' expects '{action}' but got '{v}'"))
    }
}

/// `ssl-default-server-options OPT...`: the version options servers start from
/// (`no-tls-tickets` concerns TLSv1.2 tickets, which changes nothing for hapx).
fn ssl_default_server_options(g: &mut Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let t = &mut g.ssl_default_server.versions;
    ssl_default_options(line, |opt, value| match opt {
        "ssl-min-ver" => min_version_low_warns(t, value, line.place, diags).map(|()| true),
        "no-tls-tickets" => Ok(true),
        _ => version_option(t, opt, value),
    })
}

/// `ssl-default-bind-options OPT...`: the version options `ssl` binds start from (the
/// others concern OpenSSL features rustls does not have, or has always on). A minimum below
/// TLSv1.2 is a warning, as on binds and servers: TLSv1.2 it is.
fn ssl_default_bind_options(g: &mut Global, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let defaults = &mut g.ssl_default_bind;
    let (t, flags) = (&mut defaults.versions, &mut defaults.version_flags);
    ssl_default_options(line, |opt, value| match opt {
        "ssl-min-ver" => min_version_low_warns(t, value, line.place, diags).map(|()| true),
        // HAProxy refuses the bind-only `strict-sni`, `no-ca-names` and `allow-0rtt` here.
        "no-tls-tickets" | "prefer-client-ciphers" => Ok(true),
        _ => {
            *flags |= is_version_flag(opt);
            version_option(t, opt, value)
        }
    })
}

/// `no-sslv3`, `no-tlsv1x`: what HAProxy ignores beside `ssl-min-ver`/`ssl-max-ver`.
fn is_version_flag(opt: &str) -> bool {
    matches!(
        opt,
        "no-sslv3" | "no-tlsv10" | "no-tlsv11" | "no-tlsv12" | "no-tlsv13"
    )
}

/// `ciphers`, `ciphersuites` or `curves` (`list`), on a bind line or as a global default:
/// a warning for the names rustls lacks. A list OpenSSL refuses whole is HAProxy's error
/// where an `ssl` bind uses it (`bind_tls::build`), as HAProxy refuses it there.
fn cipher_list(
    lists: &mut super::bind_tls::ciphers::CipherLists,
    list: &str,
    v: &str,
    place: &Place,
    diags: &mut Diags,
) {
    let mut only = super::bind_tls::ciphers::CipherLists::default();
    *only.named(list) = Some(v.to_string());
    for warning in only.check("").unwrap_or_default() {
        diags.warn(place, warning);
    }
    *lists = only.with_defaults(lists);
}

/// The options of an `ssl-default-*-options` line, each given to `option` with its value
/// (`ssl-min-ver`/`ssl-max-ver` take one); one it does not know (false) is an error.
fn ssl_default_options(
    line: &Line<'_>,
    mut option: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Outcome {
    let statement = line.words[0].as_str();
    let mut i = 1;
    while let Some(opt) = line.arg(i) {
        let takes_value = matches!(opt, "ssl-min-ver" | "ssl-max-ver");
        let value = line.arg(i + 1).filter(|_| takes_value).unwrap_or_default();
        if takes_value && line.arg(i + 1).is_none() {
            return Err(format!(
                "'{opt}' : missing the ssl/tls version on global statement '{statement}'."
            ));
        }
        if !option(opt, value)? {
            return Err(format!(
                "unknown option '{opt}' on global statement '{statement}'."
            ));
        }
        i += 1 + usize::from(takes_value);
    }
    Ok(())
}

/// A bind's TLS option (false: `opt` is not one). rustls cannot serve below TLSv1.2: a
/// lower `ssl-min-ver` warns (TLSv1.2 and up are a subset of what was allowed, as on
/// servers), a lower maximum or forced version is refused.
pub(super) fn bind_tls_option(
    t: &mut BindTlsOptions,
    opt: &str,
    v: &str,
    place: &Place,
    diags: &mut Diags,
) -> Result<bool, String> {
    match opt {
        "ssl" => t.ssl = true,
        "crt" => t.crts.push(CrtSource::File(v.into())),
        "crt-list" => t.crts.push(CrtSource::List(v.into())),
        "ca-file" => t.ca_file = Some(v.into()),
        "crl-file" => t.crl_file = Some(v.into()),
        "verify" => {
            t.verify = match v {
                "none" => ClientVerify::None,
                "optional" => ClientVerify::Optional,
                "required" => ClientVerify::Required,
                _ => {
                    return Err(format!(
                        "'verify' : unknown verify method '{v}', only 'none', 'optional', and 'required' are supported"
                    ));
                }
            }
        }
        "alpn" => t.alpn = Some(alpn_list(v)),
        "strict-sni" => t.strict_sni = true,
        "ssl-min-ver" => min_version_low_warns(&mut t.versions, v, place, diags)?,
        "ciphers" | "ciphersuites" | "curves" => cipher_list(&mut t.ciphers, opt, v, place, diags),
        "ca-ignore-err" | "crt-ignore-err" => {
            let ignored = super::bind_tls::client_verify::IgnoredErrors::parse(v)
                .map_err(|e| format!("'{opt}' : {e}"))?;
            match opt {
                "ca-ignore-err" => t.ca_ignore_err = ignored,
                _ => t.crt_ignore_err = ignored,
            }
        }
        _ => {
            t.version_flags |= is_version_flag(opt);
            return version_option(&mut t.versions, opt, v);
        }
    }
    Ok(true)
}

/// Applies one option of a crt-list line given to the runtime API (`add ssl crt-list`)
/// over `options`, as a line of a crt-list file is read: HAProxy's error for a value it
/// refuses. What the configuration loader warns about (an option hapx ignores) is taken
/// without a word, as HAProxy takes it: the runtime API has no warnings to give.
pub(crate) fn crt_list_line_option(
    options: &mut BindTlsOptions,
    kw: &str,
    v: &str,
) -> Result<(), String> {
    let mut unsaid = Diags::default();
    bind_tls_option(options, kw, v, &Place::default(), &mut unsaid).map(|_| ())
}

/// The version options servers and binds share (false: `opt` is not one). A minimum below
/// TLSv1.2 is left to the caller: what it means differs.
fn version_option(t: &mut TlsVersions, opt: &str, v: &str) -> Result<bool, String> {
    const ONLY: &str = "hapx speaks TLSv1.2 and TLSv1.3 only (rustls has no older protocol).";
    match opt {
        "ssl-max-ver" => {
            t.max = Some(tls_version(v)?.ok_or_else(|| format!("'{opt} {v}' : {ONLY}"))?)
        }
        "no-tlsv12" => t.disabled.push(TlsVersion::Tls12),
        "no-tlsv13" => t.disabled.push(TlsVersion::Tls13),
        "force-tlsv12" => (t.min, t.max) = (Some(TlsVersion::Tls12), Some(TlsVersion::Tls12)),
        "force-tlsv13" => (t.min, t.max) = (Some(TlsVersion::Tls13), Some(TlsVersion::Tls13)),
        // rustls never speaks SSLv3, TLSv1.0 or TLSv1.1: disabling them changes nothing.
        "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
        "force-sslv3" | "force-tlsv10" | "force-tlsv11" => {
            return Err(format!("'{opt}' : {ONLY}"));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A server's TLS option (false: `opt` is not one).
pub(super) fn server_tls_option(
    t: &mut ServerTls,
    opt: &str,
    v: &str,
    place: &Place,
    diags: &mut Diags,
) -> Result<bool, String> {
    match opt {
        "ssl" => t.ssl = true,
        "no-ssl" => t.ssl = false,
        "check-ssl" => t.check_ssl = Some(true),
        "no-check-ssl" => t.check_ssl = Some(false),
        "verify" => {
            t.verify = Some(match v {
                "none" => Verify::None,
                "required" => Verify::Required,
                _ => {
                    return Err(format!(
                        "'verify' : unknown verify method '{v}', only 'none' and 'required' are supported"
                    ));
                }
            })
        }
        "verifyhost" => t.verifyhost = Some(v.into()),
        "no-verifyhost" => t.verifyhost = None,
        "ca-file" => t.ca_file = Some(v.into()),
        "crl-file" => t.crl_file = Some(v.into()),
        "crt" => t.crt = Some(v.into()),
        "sni" => t.sni = Some(sni_expression(v)?),
        "check-sni" => t.check_sni = Some(v.into()),
        "alpn" => t.alpn = Some(alpn_list(v)),
        "check-alpn" => t.check_alpn = Some(alpn_list(v)),
        "ssl-min-ver" => min_version_low_warns(&mut t.versions, v, place, diags)?,
        "ssl-reuse" => t.no_reuse = false,
        "no-ssl-reuse" => t.no_reuse = true,
        "ciphers" | "ciphersuites" => diags.warn(
            place,
            format!("server option '{opt}' is not implemented by hapx and is ignored: rustls offers its own safe cipher suites."),
        ),
        _ => return version_option(&mut t.versions, opt, v),
    }
    Ok(true)
}

/// `ssl-min-ver` where a version below TLSv1.2 is only a warning (servers, defaults): hapx
/// then starts at TLSv1.2, as rustls does.
fn min_version_low_warns(
    t: &mut TlsVersions,
    v: &str,
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    match tls_version(v)? {
        Some(min) => t.min = Some(min),
        None => diags.warn(
            place,
            format!("'ssl-min-ver {v}' : hapx speaks TLSv1.2 and TLSv1.3 only, so TLSv1.2 is the minimum."),
        ),
    }
    Ok(())
}

/// `sni EXPR`: a sample expression in HAProxy, of which hapx evaluates only the constant
/// `str(NAME)`. As in HAProxy, a bare word is a fetch name, not a host name (`sni api.example`
/// is an unknown fetch); a real fetch (`ssl_fc_sni`, `req.hdr(host)`) is refused by name
/// rather than sent as a literal name.
fn sni_expression(v: &str) -> Result<String, String> {
    const WHILE: &str = "error detected while parsing sni expression";
    let name_end = v.find(['(', ',']).unwrap_or(v.len());
    let fetch = &v[..name_end];
    let known = fetch == "str" || keywords::FETCHES.contains(&fetch);
    if !known {
        return Err(format!("{WHILE} : unknown fetch method '{fetch}'"));
    }
    if v[name_end..].starts_with('(') && !v[name_end..].contains(')') {
        return Err(format!("{WHILE} : fetch method '{fetch}' : expected ')'"));
    }
    match v.strip_prefix("str(").and_then(|r| r.strip_suffix(')')) {
        Some(name) if !name.contains([')', ',']) => Ok(name.to_string()),
        _ => Err(format!(
            "'sni {v}' : hapx supports only a constant name (str(...)) in 'sni'."
        )),
    }
}

/// `h2,http/1.1`: ALPN protocol names.
fn alpn_list(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A version name; `None` for the ones before TLSv1.2, which rustls does not speak.
fn tls_version(v: &str) -> Result<Option<TlsVersion>, String> {
    match v {
        "TLSv1.2" => Ok(Some(TlsVersion::Tls12)),
        "TLSv1.3" => Ok(Some(TlsVersion::Tls13)),
        "SSLv3" | "TLSv1.0" | "TLSv1.1" => Ok(None),
        _ => Err(format!("'{v}' : unknown ssl/tls version")),
    }
}

/// `resolve-opts`: whether duplicate addresses are allowed afterwards. `ignore-weight` only
/// concerns SRV records, which hapx does not query, so it changes nothing.
fn resolve_opts(v: &str, mut allow_dup_ip: bool) -> Result<bool, String> {
    // HAProxy splits with strtok: empty options are none.
    for opt in v.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "allow-dup-ip" => allow_dup_ip = true,
            "prevent-dup-ip" => allow_dup_ip = false,
            "ignore-weight" => {}
            _ => {
                return Err(format!(
                    "'resolve-opts' : unknown resolve-opts option '{opt}', supported methods are 'allow-dup-ip', 'ignore-weight', and 'prevent-dup-ip'."
                ));
            }
        }
    }
    Ok(allow_dup_ip)
}

/// `resolve-net NET[,NET...]`, each `ADDR[/PREFIX]` (an IPv4 prefix may be a dotted mask).
fn resolve_nets(v: &str) -> Result<Vec<Network>, String> {
    v.split(',')
        .map(|net| {
            values::network(net).ok_or_else(|| format!("'resolve-net' invalid network '{net}'."))
        })
        .collect()
}

/// A custom `id`: a positive integer.
fn positive_id(v: &str, kw: &str) -> Result<usize, String> {
    match values::number::<usize>(v, kw)? {
        0 => Err("custom id has to be > 0.".into()),
        n => Ok(n),
    }
}

/// `clitcpka-cnt|idle|intvl` and `srvtcpka-...`: a count, or a time in seconds by default.
fn tcp_keepalive(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let kw = line.words[0].as_str();
    let (side, setting) = kw.split_once("tcpka-").unwrap_or_default();
    let cap = if side == "cli" {
        Capability::Frontend
    } else {
        Capability::Backend
    };
    if lacks(p, cap, kw, line, diags) {
        return Ok(());
    }
    let v = one(line, "a value")?;
    let ka = if side == "cli" {
        &mut p.clitcpka
    } else {
        &mut p.srvtcpka
    };
    let seconds = |v: &str| match v.parse::<u64>() {
        Ok(n) => Ok(std::time::Duration::from_secs(n)),
        Err(_) => values::long_duration(v).map_err(|e| format!("'{kw}' : {e}")),
    };
    match setting {
        "cnt" => ka.count = Some(values::number(v, kw)?),
        "idle" => ka.idle = Some(seconds(v)?),
        _ => ka.interval = Some(seconds(v)?),
    }
    Ok(())
}

fn init_addr(v: &str) -> Result<Vec<InitAddr>, String> {
    // HAProxy splits with strtok: empty methods are none.
    v.split(',')
        .filter(|m| !m.is_empty())
        .map(|m| match m {
            "last" => Ok(InitAddr::Last),
            "libc" => Ok(InitAddr::Libc),
            "none" => Ok(InitAddr::None),
            ip => ip
                .parse()
                .map(InitAddr::Ip)
                .map_err(|_| format!("'init-addr' : unknown init-addr method '{ip}', supported methods are 'libc', 'last', 'none'.")),
        })
        .collect()
}

/// The options that are flags, on or off (`no option`), with no argument: HAProxy's
/// options tables and its three HTTP connection modes, as far as hapx implements them.
const FLAG_OPTIONS: &[&str] = &[
    "abortonclose",
    "allbackups",
    "checkcache",
    "clitcpka",
    "dontlog-normal",
    "dontlognull",
    "h1-case-adjust-bogus-client",
    "h1-case-adjust-bogus-server",
    "http-ignore-probes",
    "http-keep-alive",
    "http-no-delay",
    "http-server-close",
    "httpclose",
    "log-health-checks",
    "log-separate-errors",
    "logasap",
    "nolinger",
    "persist",
    "prefer-last-server",
    "splice-auto",
    "splice-request",
    "splice-response",
    "srvtcpka",
    "tcp-smart-accept",
    "tcp-smart-connect",
];

fn option(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    let negate = line.words[0] == "no";
    let at = if negate {
        if line.arg(1) != Some("option") {
            return Err("'no' expects 'option' as an argument.".into());
        }
        2
    } else {
        1
    };
    let name = line.arg(at).ok_or("'option' expects an option name.")?;
    if let Some(why) = removed_option(name) {
        // Worded without HAProxy's usual space before the colon.
        diags.global_alert(format!("parsing [{}]: option '{name}' {why}", line.place));
        return Ok(());
    }
    let arg = |i: usize| line.arg(at + i);
    // A flag takes no argument: refused before its capability is looked at, as HAProxy's
    // `alertif_too_many_args_idx` on its options tables (and on its three HTTP modes).
    if FLAG_OPTIONS.contains(&name)
        && let Some(extra) = arg(1)
    {
        return Err(format!(
            "'option {name}' cannot handle unexpected argument '{extra}'."
        ));
    }
    // Only flags and `redispatch` take `no`; HAProxy refuses it on every other option it
    // knows, unknown ones included (worded without its usual space before the colon).
    // (`external-check` is a check type, which HAProxy never negates.)
    let negatable = FLAG_OPTIONS.contains(&name)
        || name == "redispatch"
        || keywords::lookup(keywords::OPTIONS, name) == Some(Support::No)
            && name != "external-check";
    if negate && !negatable {
        diags.global_alert(format!(
            "parsing [{}]: negation/default is not supported for option '{name}'.",
            line.place
        ));
        return Ok(());
    }
    let needs = match name {
        "tcp-smart-accept"
        | "clitcpka"
        | "h1-case-adjust-bogus-client"
        | "http-ignore-probes"
        | "dontlognull"
        | "dontlog-normal"
        | "log-separate-errors"
        | "logasap" => Some(Capability::Frontend),
        "tcp-smart-connect"
        | "srvtcpka"
        | "h1-case-adjust-bogus-server"
        | "prefer-last-server"
        | "abortonclose"
        | "redispatch"
        | "allbackups"
        | "log-health-checks"
        | "persist"
        | "checkcache"
        | "http-pretend-keepalive"
        | "smtpchk"
        | "pgsql-check"
        | "mysql-check"
        | "ldap-check"
        | "redis-check"
        | "spop-check" => Some(Capability::Backend),
        _ => None,
    };
    if needs.is_some_and(|cap| lacks(p, cap, name, line, diags)) {
        return Ok(());
    }
    // A check option out of a backend is only warned about, and still read (its
    // arguments checked), as HAProxy's check option parsers do.
    if matches!(name, "httpchk" | "tcp-check" | "ssl-hello-chk") {
        lacks(p, Capability::Backend, name, line, diags);
    }
    let o = &mut p.options;
    let place = Some(line.place.clone());
    match name {
        // One log format per proxy: the last of httplog/tcplog wins.
        "httplog" => {
            match (arg(1), arg(2)) {
                (None, _) | (Some("clf"), None) => {}
                (Some("clf"), Some(extra)) => {
                    return Err(format!(
                        "'option httplog' cannot handle unexpected argument '{extra}'."
                    ));
                }
                (Some(_), _) => return Err("keyword 'httplog' only supports option 'clf'.".into()),
            }
            o.httplog = (!negate).then_some(place).flatten();
            o.tcplog = None;
            p.log.format = None;
            p.log.clf = arg(1) == Some("clf");
        }
        "tcplog" | "tcpka" | "tcp-check" | "ssl-hello-chk" if arg(1).is_some() => {
            let extra = arg(1).unwrap_or_default();
            return Err(format!(
                "'option {name}' cannot handle unexpected argument '{extra}'."
            ));
        }
        "httpchk" if arg(4).is_some() => {
            let extra = arg(4).unwrap_or_default();
            return Err(format!(
                "'option httpchk' cannot handle unexpected argument '{extra}'."
            ));
        }
        "tcplog" => {
            o.tcplog = (!negate).then_some(place).flatten();
            o.httplog = None;
            p.log.format = None;
        }
        "dontlognull" => o.dontlognull = !negate,
        "http-ignore-probes" => o.http_ignore_probes = !negate,
        "dontlog-normal" => p.log.dontlog_normal = !negate,
        "logasap" => p.log.logasap = !negate,
        "log-separate-errors" => p.log.separate_errors = !negate,
        "redispatch" => {
            // `option redispatch <interval>`: every Nth failed attempt redispatches, or with
            // N < 0 the one -N attempts from the end; none by the interval with 0 (HAProxy
            // still redispatches from a down server, and among several active servers).
            // Read as C's atol() into an int, as HAProxy does: words read as 0, the
            // digits before anything else count.
            let interval = arg(1).filter(|_| !negate).map(|v| atoi(v) as i32);
            o.redispatch = !negate;
            o.redispatch_after = interval.unwrap_or(-1);
        }
        "allbackups" => o.allbackups = !negate,
        "log-health-checks" => o.log_health_checks = !negate,
        "persist" => o.persist = !negate,
        "prefer-last-server" => o.prefer_last_server = !negate,
        "abortonclose" => o.abortonclose = !negate,
        // One HTTP connection mode: the last one set wins; `no` only unsets its own.
        "http-server-close" if !negate => (o.http_server_close, o.httpclose) = (true, false),
        "http-server-close" => o.http_server_close = false,
        "httpclose" if !negate => (o.httpclose, o.http_server_close) = (true, false),
        "httpclose" => o.httpclose = false,
        "http-keep-alive" if !negate => {
            o.httpclose = false;
            o.http_server_close = false;
        }
        "http-keep-alive" => {}
        "h1-case-adjust-bogus-client" => o.h1_case_adjust_bogus_client = !negate,
        "h1-case-adjust-bogus-server" => o.h1_case_adjust_bogus_server = !negate,
        "splice-auto" => o.splice.auto = !negate,
        "splice-request" => o.splice.request = !negate,
        "splice-response" => o.splice.response = !negate,
        "tcp-check" => {
            o.tcp_check = !negate;
            o.ssl_hello_chk &= negate;
            if !negate {
                o.external_check = None;
                o.protocol_check = None;
                drop_http_check_rules(o);
                o.tcp_check_without_option = false;
            }
        }
        "tcp-smart-accept" => o.tcp_smart_accept = Some(!negate),
        "tcp-smart-connect" => o.tcp_smart_connect = !negate,
        "tcpka" => (o.clitcpka, o.srvtcpka) = (!negate, !negate),
        "clitcpka" => o.clitcpka = !negate,
        "srvtcpka" => o.srvtcpka = !negate,
        "nolinger" => o.nolinger = !negate,
        "forwardfor" => {
            o.forwardfor = if negate {
                None
            } else {
                let mut ff = Forwardfor {
                    header: "X-Forwarded-For".into(),
                    except: None,
                    if_none: false,
                };
                let mut i = 1;
                while let Some(a) = arg(i) {
                    match (a, arg(i + 1)) {
                        ("header", Some(h)) => ff.header = h.into(),
                        ("header", None) => {
                            return Err(
                                "'option forwardfor header' expects <header_name> as argument."
                                    .into(),
                            );
                        }
                        ("except", n) => {
                            ff.except = Some(n.and_then(values::network).ok_or(
                                "'option forwardfor except' expects <address>[/mask] as argument.",
                            )?)
                        }
                        ("if-none", _) => {
                            ff.if_none = true;
                            i += 1;
                            continue;
                        }
                        _ => return Err("'option forwardfor' only supports optional values: 'except', 'header' and 'if-none'.".into()),
                    }
                    i += 2;
                }
                Some(ff)
            }
        }
        "httpchk" => {
            let (method, uri, version) = match (arg(1), arg(2), arg(3)) {
                (None, _, _) => ("OPTIONS", "/", "HTTP/1.0"),
                (Some(uri), None, _) => ("OPTIONS", uri, "HTTP/1.0"),
                (Some(m), Some(uri), v) => (m, uri, v.unwrap_or("HTTP/1.0")),
            };
            if version.contains("\r\n") {
                diags.global_warn(format!(
                    "parsing [{}]: 'option httpchk' : hiding headers or body at the end of the version string is deprecated. Please, consider to use 'http-check send' directive instead.",
                    line.place
                ));
            }
            // `http-check` rules read before keep applying.
            let mut chk = o.httpchk.take().unwrap_or_else(HttpCheck::default_request);
            let first = chk.first();
            (first.method, first.uri, first.version) = (method.into(), uri.into(), version.into());
            chk.order.option_httpchk(&p.place);
            o.http_check_without_httpchk = false;
            o.ssl_hello_chk = false;
            o.protocol_check = None;
            o.external_check = None;
            // Another check type: HAProxy forgets the unused `tcp-check` rules.
            o.tcp_check_without_option &= negate;
            o.httpchk = (!negate).then_some(chk);
        }
        "ssl-hello-chk" => {
            o.ssl_hello_chk = !negate;
            if !negate {
                o.external_check = None;
                o.protocol_check = None;
                drop_http_check_rules(o);
                o.tcp_check = false;
                o.tcp_check_without_option = false;
            }
        }
        "mysql-check" | "pgsql-check" | "redis-check" | "smtpchk" | "ldap-check" | "spop-check"
            if !negate =>
        {
            drop_http_check_rules(o);
            o.tcp_check = false;
            o.tcp_check_without_option = false;
            o.ssl_hello_chk = false;
            o.external_check = None;
            let args: Vec<&str> = (1..).map_while(arg).collect();
            o.protocol_check = match super::check::protocol::ProtocolCheck::parse(name, &args) {
                Some(check) => Some(check?),
                None => {
                    let support = keywords::lookup(keywords::OPTIONS, name).unwrap_or(Support::No);
                    not_implemented(support, &format!("'option {name}'"), line.place, diags);
                    None
                }
            };
        }
        // hapx always behaves so: accepted sockets and server sockets have TCP_NODELAY,
        // and HTTP data is written as soon as it is read, never held with MSG_MORE for
        // more to come (only the last data before a FIN, which follows at once).
        "http-no-delay" => {}
        "checkcache" if !negate => diags.warn(
            line.place,
            "'option checkcache' is not implemented by hapx and is ignored: a cacheable response carrying a cookie is forwarded, not refused with a 502.",
        ),
        "checkcache" => {}
        // The proxy's check type, as HAProxy's: judged once the configuration is read
        // (`config::check::external_check`).
        "external-check" if !negate => {
            drop_http_check_rules(o);
            o.tcp_check = false;
            o.tcp_check_without_option = false;
            o.ssl_hello_chk = false;
            o.protocol_check = None;
            o.external_check = Some(line.place.clone());
        }
        _ => match keywords::lookup(keywords::OPTIONS, name) {
            Some(s) => not_implemented(s, &format!("'option {name}'"), line.place, diags),
            None => {
                let mut m = format!("unknown option '{name}'.");
                if let Some(s) = keywords::suggest(name, hint_words::OPTIONS.iter().copied()) {
                    m = format!("unknown option '{name}'; did you mean '{s}' maybe ?");
                }
                return Err(m);
            }
        },
    }
    Ok(())
}

/// `email-alert from|to|mailers|myhostname|level VALUE`, as HAProxy 2.6 reads them (its
/// missing-value check looks at the subcommand, so an empty value passes; its level
/// message names the words the other way round).
fn email_alert(p: &mut Proxy, line: &Line<'_>) -> Outcome {
    let what = line.arg(1).ok_or("missing argument after 'email-alert'.")?;
    let value = line.arg(2).unwrap_or_default();
    let alert = &mut p.email_alert;
    match what {
        "from" => alert.from = Some(value.into()),
        "to" => alert.to = Some(value.into()),
        "mailers" => alert.mailers = Some(value.into()),
        "myhostname" => {}
        "level" => {
            if super::logging::level(value).is_none() {
                return Err(format!("unknown log level '{what}' after '{value}'"));
            }
        }
        _ => return Err(format!("email-alert: unknown argument '{what}'.")),
    }
    alert.set = true;
    alert.place.get_or_insert_with(|| line.place.clone());
    Ok(())
}

/// `external-check command CMD` or `external-check path PATH`, as HAProxy reads them.
fn external_check(p: &mut Proxy, line: &Line<'_>) -> Outcome {
    let what = line
        .arg(1)
        .ok_or("missing argument after 'external-check'.")?;
    if what != "command" && what != "path" {
        return Err(format!(
            "'external-check' only supports 'command' and 'path'. but got '{what}'."
        ));
    }
    let value = line
        .arg(2)
        .ok_or_else(|| format!("missing argument after '{what}'."))?;
    if let Some(extra) = line.arg(3) {
        return Err(format!(
            "'external-check' cannot handle unexpected argument '{extra}'."
        ));
    }
    if what == "command" {
        p.external_check_command = Some(value.into());
    }
    Ok(())
}

/// A check option other than `option httpchk` replaces the proxy's check ruleset, as
/// HAProxy's: the `http-check` rules read before it are dropped (and warned about no more).
fn drop_http_check_rules(o: &mut Options) {
    o.httpchk = None;
    o.http_check_without_httpchk = false;
}

fn timeout(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    use Capability::{Backend, Frontend};
    let which = line.arg(1).unwrap_or_default();
    let (kind, name) = (p.kind, p.name.clone());
    let t = &mut p.timeouts;
    // The side each timer serves (none: both).
    let (slot, side) = match which {
        "client" => (&mut t.client, Some(Frontend)),
        "server" => (&mut t.server, Some(Backend)),
        "connect" => (&mut t.connect, Some(Backend)),
        "check" => (&mut t.check, Some(Backend)),
        "queue" => (&mut t.queue, Some(Backend)),
        "http-request" => (&mut t.http_request, None),
        "http-keep-alive" => (&mut t.http_keep_alive, None),
        "tunnel" => (&mut t.tunnel, Some(Backend)),
        "client-fin" => (&mut t.client_fin, Some(Frontend)),
        "server-fin" => (&mut t.server_fin, Some(Backend)),
        "tarpit" => (&mut t.tarpit, None),
        _ => {
            return Err(format!(
                "'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{which}')"
            ));
        }
    };
    let value = line
        .arg(2)
        .ok_or_else(|| format!("'timeout {which}' expects an integer value (in milliseconds)"))?;
    if let Some(c) = stray_before_unit(value) {
        return Err(format!("unexpected character '{c}' in 'timeout {which}'"));
    }
    let d = values::timer(value, &format!("timeout {which}"))?;
    if let Some(extra) = line.arg(3) {
        return Err(format!(
            "'timeout {which}' : unexpected extra argument '{extra}' after value '{value}'."
        ));
    }
    // HAProxy warns, and keeps the value all the same (the proxy never uses it).
    let lacking = match side {
        Some(Frontend) if !kind.is_frontend() => Some("frontend"),
        Some(Backend) if !kind.is_backend() => Some("backend"),
        _ => None,
    };
    if let Some(side) = lacking.filter(|_| kind != ProxyKind::Defaults) {
        diags.warn(
            line.place,
            format!(
                "'timeout {which}' will be ignored because {} '{name}' has no {side} capability",
                kind.type_str()
            ),
        );
    }
    *slot = (!d.is_zero()).then_some(d);
    Ok(())
}

/// The character a timer is refused at, as HAProxy's `parse_time_err` finds it: the first
/// one when there is no digit, else the first after the digits when no unit starts there
/// (characters after a known unit are only warned about, see [`values::timer`]).
fn stray_before_unit(text: &str) -> Option<char> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &text[digits..];
    if digits > 0 && values::timer_unit(rest).is_some() {
        return None;
    }
    rest.chars().next()
}

/// `maxconnrate|maxsessrate N`, read as HAProxy's atol() reads it: 0 (or no number) for no
/// limit.
fn rate_limit(line: &Line<'_>) -> Result<Option<u32>, String> {
    let kw = &line.words[0];
    let value = line
        .arg(1)
        .ok_or_else(|| format!("'{kw}' expects an integer argument."))?;
    if let Some(extra) = line.arg(2) {
        return Err(format!(
            "'{kw}' cannot handle unexpected argument '{extra}'."
        ));
    }
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap_or(0);
    Ok((n > 0).then(|| u32::try_from(n).unwrap_or(u32::MAX)))
}

/// `description TEXT...`: the words joined by single spaces, as HAProxy keeps them; None
/// (with HAProxy's message, worded without its usual space) when there are none.
fn description(line: &Line<'_>, diags: &mut Diags) -> Option<String> {
    if line.words.len() < 2 {
        diags.global_alert(format!(
            "parsing [{}]: 'description' expects a string argument.",
            line.place
        ));
        return None;
    }
    Some(line.words[1..].join(" "))
}

fn stats(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    if line.arg(1) == Some("admin") {
        return super::rules::stats_admin(p, line.words, line.place, diags);
    }
    let s = &mut p.stats;
    let arg = line.arg(2);
    let need = |what: &str| format!("'stats {}' needs {what}.", line.words[1]);
    match line.arg(1) {
        Some("enable") => s.enabled = true,
        Some("uri") => {
            s.enabled = true;
            s.uri = Some(arg.ok_or_else(|| need("an URI prefix"))?.into());
        }
        Some("realm") => {
            s.enabled = true;
            s.realm = Some(arg.ok_or_else(|| need("a realm"))?.into());
        }
        Some("auth") => {
            s.enabled = true;
            let cred = arg.ok_or_else(|| need("a user:password"))?;
            // Without a colon, HAProxy's user has an empty password.
            let (user, pass) = cred.split_once(':').unwrap_or((cred, ""));
            s.auth.push((user.into(), pass.into()));
        }
        Some("refresh") => {
            s.enabled = true;
            s.refresh = Some(values::duration(arg.ok_or_else(|| need("a delay"))?)?);
        }
        Some("hide-version") => {
            s.enabled = true;
            s.hide_version = true;
        }
        Some("show-node") => {
            s.enabled = true;
            s.show_node = Some(arg.unwrap_or_default().into());
        }
        Some("show-desc") => {
            s.enabled = true;
            s.show_desc = Some(line.words[2..].join(" "));
        }
        Some("show-legends") => {
            s.enabled = true;
            s.show_legends = true;
        }
        Some("show-modules") => {
            // It enables the page, as in HAProxy; hapx has no extra statistics modules.
            s.enabled = true;
            not_implemented(Support::No, "'stats show-modules'", line.place, diags);
        }
        Some("scope" | "http-request" | "bind-process") => not_implemented(
            Support::No,
            &format!("'stats {}'", line.words[1]),
            line.place,
            diags,
        ),
        // The global section's `stats` keywords too, in HAProxy's words (without its usual
        // space before the colon).
        other => {
            const EXPECTED: &str = "expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'.";
            let refused = match other {
                Some(word) if !word.is_empty() => {
                    format!("unknown stats parameter '{word}', {EXPECTED}")
                }
                _ => format!("missing keyword in 'stats', {EXPECTED}"),
            };
            return report_line_error(super::diag::LineError::Unspaced(refused), line.place, diags);
        }
    }
    Ok(())
}

/// Decodes `send-binary`/`expect binary` hex text.
fn hex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err(format!(
            "'{text}' is not an even number of hexadecimal digits"
        ));
    }
    crate::runtime::check_format::unhex(text).ok_or_else(|| format!("'{text}' is not hexadecimal"))
}

fn tcp_check(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    p.options.tcp_check_without_option |= !p.options.tcp_check;
    let rule = match line.arg(1) {
        Some("connect") => TcpCheckRule::Connect(check_connect(line, "tcp-check", diags)?),
        Some("send") => TcpCheckRule::Send(
            line.arg(2)
                .ok_or("'tcp-check send' expects a string.")?
                .as_bytes()
                .to_vec(),
        ),
        Some("send-binary") => TcpCheckRule::Send(hex(line
            .arg(2)
            .ok_or("'tcp-check send-binary' expects hexadecimal text.")?)?),
        Some(k @ ("send-lf" | "send-binary-lf")) => {
            let rule = format!("'tcp-check {k}'");
            let text = line
                .arg(2)
                .ok_or_else(|| format!("{rule} : 'string' expects a {k} as argument."))?;
            TcpCheckRule::SendFormat {
                format: check_format(text, p.mode, &rule, true)?,
                binary: k == "send-binary-lf",
            }
        }
        Some("expect") => TcpCheckRule::Expect(Box::new(tcp_expect(line, p.mode, diags)?)),
        Some("comment") => TcpCheckRule::Comment(check_comment(line, "tcp-check")?),
        Some(k) if is_var_action(k) => {
            TcpCheckRule::Var(Box::new(var_rule(line, "tcp-check", p.mode)?))
        }
        other => {
            return Err(format!(
                "'tcp-check' expects 'comment', 'connect', 'send', 'send-binary', 'expect' (got '{}').",
                other.unwrap_or_default()
            ));
        }
    };
    // As HAProxy: a connect must come first, only comments and variable rules before it.
    let first = (p.tcp_checks.iter())
        .find(|r| !matches!(r, TcpCheckRule::Comment(_) | TcpCheckRule::Var(_)));
    if matches!(rule, TcpCheckRule::Connect(_))
        && first.is_some_and(|r| !matches!(r, TcpCheckRule::Connect(_)))
    {
        return Err("'tcp-check connect' : first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a 'comment', when there is a 'connect' step in the tcp-check ruleset.".into());
    }
    p.tcp_checks.push(rule);
    Ok(())
}

/// A health check's format `text` for `rule` (its message's start, `'tcp-check send-lf'`),
/// refused with HAProxy's words when it cannot be rendered in a check; `quoted`: whether
/// the message names the format (as HAProxy's does, but for `hdr` values).
fn check_format(text: &str, mode: Mode, rule: &str, quoted: bool) -> Result<LogFormat, String> {
    LogFormat::compile_check(text, mode).map_err(|e| match e {
        AclError::Bad(m) if quoted => format!(
            "{rule} : '{text}' invalid log-format string ({}).",
            m.trim_end_matches('.')
        ),
        AclError::Bad(m) => format!("{rule} : {m}"),
        AclError::Unsupported(what) => {
            format!("{rule} : '{text}' uses {what}, which is not implemented by hapx.")
        }
    })
}

/// `tcp-check expect [!] string|binary|string-lf|binary-lf|rstring|rbinary PATTERN` with the
/// options of an expect line anywhere.
fn tcp_expect(line: &Line<'_>, mode: Mode, diags: &mut Diags) -> Result<TcpExpect, String> {
    let (report, rest) = expect_options(line, "tcp-check", mode, diags)?;
    let negate = rest.first() == Some(&"!");
    let words = &rest[usize::from(negate)..];
    let (kind, pattern) = (words.first().copied(), words.get(1).copied());
    // HAProxy's message for a word that is neither a match, its pattern nor an option.
    let unexpected = |word: &str| {
        format!(
            "'tcp-check expect' : 'only supports min-recv, '[!]binary', '[!]string', '[!]rstring', \
             '[!]string-lf''[!]rbinary', '[!]binary-lf' or comment but got '{word}' as argument.."
        )
    };
    let known = [
        "string",
        "binary",
        "string-lf",
        "binary-lf",
        "rstring",
        "rbinary",
    ];
    if let Some(k) = kind.filter(|k| !known.contains(k)) {
        return Err(unexpected(k));
    }
    if let Some(extra) = words.get(2) {
        return Err(unexpected(extra));
    }
    let kind = kind.ok_or(NO_MATCH_TCP)?;
    let pattern = pattern
        .ok_or_else(|| format!("'tcp-check expect' : '{kind}' expects a <pattern> as argument."))?;
    let kind = Some(kind);
    let rule = "'tcp-check expect'";
    let pattern = match kind {
        Some("string") => TcpPattern::Bytes {
            bytes: pattern.as_bytes().to_vec(),
            binary: false,
        },
        Some("binary") => TcpPattern::Bytes {
            bytes: hex(pattern)?,
            binary: true,
        },
        Some(k @ ("string-lf" | "binary-lf")) => TcpPattern::Format {
            format: check_format(pattern, mode, rule, true)?,
            binary: k == "binary-lf",
        },
        Some(k @ ("rstring" | "rbinary")) => TcpPattern::Regex {
            regex: check_regex(pattern, rule)?,
            binary: k == "rbinary",
        },
        other => {
            return Err(format!(
                "'tcp-check expect' : unknown match type '{}'.",
                other.unwrap_or_default()
            ));
        }
    };
    Ok(TcpExpect {
        pattern,
        negate,
        report,
    })
}

/// HAProxy's message for an expect line without a match.
const NO_MATCH_TCP: &str = "'tcp-check expect' : expects at least a matching pattern as arguments.";

/// A check rule's regular expression, refused as HAProxy words it.
fn check_regex(pattern: &str, rule: &str) -> Result<CheckRegex, String> {
    CheckRegex::new(pattern, super::pcre::Flags::MATCH).map_err(|e| format!("{rule} : {e}."))
}

/// The expression of a check rule (`set-var`, `status-code`), refused with HAProxy's
/// words (without their full stop): as an expression, or as one reading what a check has
/// not, the fetch then named `name` (HAProxy names the action's keyword for `set-var`).
fn check_expr(text: &str, name: &str) -> Result<super::acl::Fetch, String> {
    let expr = super::acl::parse_check_fetch(text).map_err(|e| match e {
        AclError::Bad(m) => {
            let m = m.split(" in ACL expression").next().unwrap_or_default();
            // HAProxy's sample expressions name no ACL keyword before a converter's error.
            let m = match m.split_once("' : unknown converter") {
                Some((acl, rest)) if acl.starts_with("ACL keyword '") => {
                    format!("unknown converter{rest}")
                }
                _ => m.to_string(),
            };
            m.trim_end_matches('.').to_string()
        }
        AclError::Unsupported(what) => {
            format!("'{text}' uses {what}, which is not implemented by hapx")
        }
    })?;
    match crate::runtime::logformat::missing_in_check(&expr) {
        None => Ok(expr),
        Some(Ok(needs)) => Err(format!(
            "fetch method '{name}' extracts information from '{needs}', none of which is available here"
        )),
        Some(Err(what)) => Err(format!(
            "'{text}' reads {what}, which is not implemented by hapx"
        )),
    }
}

/// `200,201,300-399`: status codes and inclusive ranges.
fn status_ranges(codes: &str) -> Result<Vec<(u16, u16)>, String> {
    codes
        .split(',')
        .map(|c| {
            let bad = || format!("'http-check expect status' : invalid status '{c}'.");
            let (low, high) = c.split_once('-').unwrap_or((c, c));
            let low: u16 = low.parse().map_err(|_| bad())?;
            let high: u16 = high.parse().map_err(|_| bad())?;
            if low > high {
                return Err(bad());
            }
            Ok((low, high))
        })
        .collect()
}

/// `tcp-check connect` / `http-check connect` options.
fn check_connect(line: &Line<'_>, rules: &str, diags: &mut Diags) -> Result<CheckConnect, String> {
    let mut c = CheckConnect::default();
    let mut i = 2;
    while let Some(opt) = line.arg(i) {
        let value = || {
            line.arg(i + 1)
                .ok_or_else(|| format!("'{rules} connect' : '{opt}' expects an argument."))
        };
        let mut used = 1;
        match opt {
            "default" => c.default = true,
            "ssl" => c.ssl = true,
            "linger" => c.linger = true,
            "send-proxy" => c.send_proxy = true,
            "port" => {
                c.port = Some(values::number(value()?, "port")?);
                used = 2;
            }
            "addr" => {
                let v = value()?;
                c.addr = Some(v.parse().map_err(|_| {
                    format!("'{rules} connect' : 'addr' expects an IP address (got '{v}').")
                })?);
                used = 2;
            }
            "sni" => {
                c.sni = Some(value()?.into());
                used = 2;
            }
            "alpn" => {
                c.alpn = Some(alpn_list(value()?));
                used = 2;
            }
            "comment" => {
                let text = line.arg(i + 1).ok_or_else(|| {
                    format!("'{rules} connect' : 'comment' expects a string as argument..")
                })?;
                c.comment = Some(text.into());
                used = 2;
            }
            "proto" => {
                let v = value()?;
                if v != "h1" {
                    not_implemented(
                        Support::No,
                        &format!("'{rules} connect proto {v}'"),
                        line.place,
                        diags,
                    );
                }
                used = 2;
            }
            "via-socks4" => not_implemented(
                Support::No,
                &format!("'{rules} connect {opt}'"),
                line.place,
                diags,
            ),
            _ => {
                return Err(format!(
                    "'{rules} connect' expects 'comment', 'port', 'addr', 'send-proxy', 'via-socks4', 'ssl', 'sni', 'alpn', 'proto', 'linger' or 'default' but got '{opt}' as argument."
                ));
            }
        }
        i += used;
    }
    Ok(c)
}

fn http_check(p: &mut Proxy, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    if p.options.httpchk.is_none() {
        p.options.http_check_without_httpchk = true;
    }
    let mode = p.mode;
    let chk = p
        .options
        .httpchk
        .get_or_insert_with(HttpCheck::default_request);
    // A variable rule runs before the group's request is built unless a send came since
    // the last connect.
    let after_send = chk.order.sent_since_connect();
    let step = match line.arg(1) {
        Some("connect") => Some(StepKind::Connect),
        Some("send") => Some(StepKind::Send),
        Some("expect") => Some(StepKind::Expect),
        Some(k) if k == "comment" || is_var_action(k) => Some(StepKind::Comment),
        _ => None,
    };
    if let Some(step) = step {
        chk.order.add(step, &p.place)?;
    }
    match line.arg(1) {
        Some("expect") => {
            let mut expect = http_expect(line, mode, diags)?;
            let comment = chk.order.comments.next(RuleAction::Expect, None);
            expect.report.comment = expect.report.comment.or(comment);
            chk.current().expects.push(expect)
        }
        Some("send") => {
            chk.order.comments.next(RuleAction::Send, None);
            http_send(chk.current(), mode, line, diags)?
        }
        Some("connect") => {
            let mut connect = check_connect(line, "http-check", diags)?;
            let comment = chk.order.comments.next(RuleAction::Connect, None);
            connect.comment = connect.comment.or(comment);
            // A connect after another group's rules opens the next group.
            let group = chk.current();
            if group.connect.is_some() || !group.expects.is_empty() {
                chk.groups.push(HttpCheckGroup::default());
            }
            chk.current().connect = Some(connect);
        }
        Some("comment") => {
            let text = check_comment(line, "http-check")?;
            chk.order.comments.next(RuleAction::Comment, Some(&text));
        }
        Some("send-state") => p.options.http_check_send_state = true,
        Some("disable-on-404") => p.options.http_check_disable_on_404 = true,
        Some(k) if is_var_action(k) => {
            let rule = var_rule(line, "http-check", mode)?;
            chk.order.comments.next(RuleAction::Var, None);
            let group = chk.current();
            // A rule after an expect runs after it, whether the send was explicit or
            // `option httpchk`'s implicit one.
            let after_expects =
                (after_send || !group.expects.is_empty()).then_some(group.expects.len());
            group.vars.push(HttpVarRule {
                after_expects,
                rule,
            });
        }
        other => {
            return Err(format!(
                "'http-check' expects 'comment', 'connect', 'disable-on-404', 'expect', 'send', 'send-state' (got '{}').",
                other.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// A `tcp-check comment TEXT` or `http-check comment TEXT` rule's text.
fn check_comment(line: &Line<'_>, rules: &str) -> Result<String, String> {
    let text = line.arg(2).filter(|t| !t.is_empty());
    text.map(str::to_string)
        .ok_or_else(|| format!("'{rules} comment' : expects a string as argument."))
}

/// `set-var(NAME)`, `set-var-fmt(NAME)`, `unset-var(NAME)`, the check rules' variable
/// actions (HAProxy writes the variable's name into the keyword).
fn is_var_action(keyword: &str) -> bool {
    ["set-var", "set-var-fmt", "unset-var"].iter().any(|k| {
        keyword
            .strip_prefix(k)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('('))
    })
}

/// A `tcp-check` or `http-check` (`rules`) variable rule: `set-var(NAME[,COND...]) EXPR`,
/// `set-var-fmt(NAME[,COND...]) FMT` or `unset-var(NAME)`, refused with HAProxy's words (it
/// reads nothing after what the action takes: `if COND` is not one of a check's).
fn var_rule(line: &Line<'_>, rules: &str, mode: Mode) -> Result<super::rules::VarRule, String> {
    let keyword = line.arg(1).unwrap_or_default();
    let rule = format!("'{rules} {keyword}'");
    let action = keyword
        .split_once('(')
        .map_or(keyword, |(action, _)| action);
    let refused = |m: &str| format!("{rule} : '{action}' : {m}.");
    let (action, name, conditions) = super::acl::var_action(keyword).map_err(|m| refused(&m))?;
    let name = name.to_string();
    let action = match action {
        "set-var" => {
            let text = (line.arg(2).filter(|t| !t.is_empty()))
                .ok_or_else(|| format!("{rule} : '{action}' : missing fetch method."))?;
            let expr = check_expr(text, keyword).map_err(|m| refused(&m))?;
            VarAction::Set { name, expr }
        }
        "set-var-fmt" => {
            let text = line.arg(2).unwrap_or_default();
            VarAction::SetFormat {
                name,
                format: check_format(text, mode, &rule, true)?,
            }
        }
        _ => VarAction::Unset { name },
    };
    Ok(super::rules::VarRule { action, conditions })
}

/// `http-check send [meth M] [uri U | uri-lf FMT] [ver V] [hdr NAME FMT]* [body STRING |
/// body-lf FMT]`.
fn http_send(chk: &mut HttpCheckGroup, mode: Mode, line: &Line<'_>, diags: &mut Diags) -> Outcome {
    const RULE: &str = "'http-check send'";
    let mut i = 2;
    while let Some(k) = line.arg(i) {
        // HAProxy's words ("..": its full stop, then the caller's); empty is missing.
        let v = (line.arg(i + 1).filter(|v| !v.is_empty()))
            .ok_or_else(|| format!("{RULE} : '{k}' expects a string as argument.."))?;
        match k {
            "meth" => chk.method = v.into(),
            "uri" => (chk.uri, chk.uri_format) = (v.into(), None),
            "uri-lf" => chk.uri_format = Some(check_format(v, mode, RULE, true)?),
            "ver" => chk.version = v.into(),
            "hdr" => {
                let value = line.arg(i + 2).filter(|v| !v.is_empty()).ok_or_else(|| {
                    format!("{RULE} : 'hdr' expects <name> and <value> as arguments.")
                })?;
                // HAProxy parses a header's value as an ACL's, and words its errors so.
                let format = super::acl::worded_as_acl(|| check_format(value, mode, RULE, false));
                chk.headers.push((v.into(), format?));
                i += 1;
            }
            "body" => chk.body = Some(LogFormat::text(v)),
            "body-lf" => chk.body = Some(check_format(v, mode, RULE, true)?),
            "comment" => {}
            _ => not_implemented(Support::No, &format!("{RULE} {k}"), line.place, diags),
        }
        i += 2;
    }
    Ok(())
}

/// `http-check expect [!] status|rstatus|string|rstring|hdr ...` with its options
/// (`comment`, `ok-status`, `error-status`, `tout-status`, `on-success`, `on-error`,
/// `min-recv`) anywhere on the line, as HAProxy reads them.
fn http_expect(line: &Line<'_>, mode: Mode, diags: &mut Diags) -> Result<HttpExpect, String> {
    let (report, rest) = expect_options(line, "http-check", mode, diags)?;
    let negate = rest.first() == Some(&"!");
    let words = &rest[usize::from(negate)..];
    let mut expect = HttpExpect::new(negate, expect_kind(words, line, mode, diags)?);
    expect.report = report;
    Ok(expect)
}

/// The options of an `http-check` or `tcp-check` (`rules`) expect line, each with one
/// argument, and the line's other words after `expect`.
fn expect_options<'l>(
    line: &'l Line<'_>,
    rules: &str,
    mode: Mode,
    diags: &mut Diags,
) -> Result<(ExpectReport, Vec<&'l str>), String> {
    let mut report = ExpectReport::default();
    let mut rest: Vec<&str> = Vec::new();
    let mut i = 2;
    while let Some(word) = line.arg(i) {
        if !EXPECT_OPTIONS.contains(&word) {
            rest.push(word);
            i += 1;
            continue;
        }
        let value = line.arg(i + 1).filter(|v| !v.is_empty()).ok_or_else(|| {
            // HAProxy's words, "a integer" included; empty is missing.
            let what = match word {
                "min-recv" => "a integer",
                "status-code" => "an expression",
                _ => "a string",
            };
            format!("'{rules} expect' : '{word}' expects {what} as argument.")
        })?;
        expect_option(&mut report, rules, word, value, mode, line.place, diags)?;
        i += 2;
    }
    Ok((report, rest))
}

/// The options an expect line may carry, each with one argument.
const EXPECT_OPTIONS: [&str; 8] = [
    "min-recv",
    "comment",
    "ok-status",
    "error-status",
    "tout-status",
    "on-success",
    "on-error",
    "status-code",
];

/// Sets one option of an expect line of `rules` (`http-check`, `tcp-check`).
fn expect_option(
    report: &mut ExpectReport,
    rules: &str,
    option: &str,
    value: &str,
    mode: Mode,
    place: &Place,
    diags: &mut Diags,
) -> Outcome {
    // HAProxy's accepted statuses for each option, in its message's order.
    let status = |allowed: &[&'static str]| {
        allowed.iter().copied().find(|s| *s == value).ok_or_else(|| {
            let quoted: Vec<String> = allowed.iter().map(|s| format!("'{s}'")).collect();
            let (last, others) = quoted.split_last().unwrap_or((&quoted[0], &[]));
            // HAProxy's message ends in "..": its own full stop, then the caller's.
            format!(
                "'{rules} expect' : '{option}' only supports {} or {last} status (got '{value}')..",
                others.join(", ")
            )
        })
    };
    let rule = format!("'{rules} expect'");
    match option {
        // L7OKC, a conditional pass, puts the server in NOLB (`runtime::checks`).
        "ok-status" => report.ok_status = Some(status(&["L4OK", "L6OK", "L7OK", "L7OKC"])?),
        "error-status" => {
            report.error_status = Some(status(&["L4CON", "L6RSP", "L7RSP", "L7STS"])?)
        }
        "tout-status" => report.tout_status = Some(status(&["L4TOUT", "L6TOUT", "L7TOUT"])?),
        "on-success" => report.on_success = Some(check_format(value, mode, &rule, true)?),
        "on-error" => report.on_error = Some(check_format(value, mode, &rule, true)?),
        "comment" => report.comment = Some(value.into()),
        // HAProxy's atol (leading digits, 0 without any, saturating): -1 leaves it unset,
        // what is not an int from -1 is refused.
        "min-recv" => {
            report.min_recv = match leading_integer(value) {
                -1 => None,
                n => Some(
                    usize::try_from(n)
                        .ok()
                        .filter(|n| *n <= i32::MAX as usize)
                        .ok_or_else(|| {
                            format!(
                                "{rule} : 'min-recv' expects -1 or an integer from 0 to INT_MAX."
                            )
                        })?,
                ),
            }
        }
        "status-code" => {
            // HAProxy's message has two spaces before a fetch a check cannot read.
            let expr = check_expr(value, value).map_err(|m| {
                let gap = match m.ends_with("none of which is available here") {
                    true => "  ",
                    false => " ",
                };
                format!("{rule} : error detected while parsing status-code expression :{gap}{m}.")
            })?;
            report.status_code = Some(Box::new(expr));
        }
        _ => not_implemented(Support::No, &format!("{rule} {option}"), place, diags),
    }
    Ok(())
}

/// The integer at the start of `text`, as C's `atol` reads it (0 when there is none, the
/// nearest `i64` when it does not fit).
fn leading_integer(text: &str) -> i64 {
    let text = text.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let digits = &digits[..end];
    match digits.parse::<i64>() {
        Ok(n) => sign * n,
        Err(_) if digits.is_empty() => 0,
        Err(_) if sign < 0 => i64::MIN,
        Err(_) => i64::MAX,
    }
}

/// The match of an `http-check expect` line: `KIND PATTERN`, or `hdr ...`.
fn expect_kind(
    words: &[&str],
    line: &Line<'_>,
    mode: Mode,
    diags: &mut Diags,
) -> Result<HttpExpectKind, String> {
    let i = 0;
    let arg = |k: usize| words.get(k).copied();
    let kind =
        arg(i).ok_or("'http-check expect' : expects at least a matching pattern as arguments.")?;
    let known = [
        "status",
        "rstatus",
        "string",
        "rstring",
        "string-lf",
        "hdr",
        "fhdr",
    ];
    // HAProxy's internal `custom` match takes no pattern.
    let pattern = arg(i + 1).or((kind == "custom").then_some(""));
    let pattern = pattern.ok_or_else(|| match kind {
        _ if !known.contains(&kind) => unexpected_word(kind),
        "hdr" | "fhdr" => format!(
            "'http-check expect' : '{kind}' expects at the name keyword as first argument followed by a pattern."
        ),
        _ => format!("'http-check expect' : '{kind}' expects a <pattern> as argument."),
    })?;
    let regex = |p: &str| check_regex(p, "'http-check expect'");
    let unexpected = unexpected_word;
    if let Some(extra) = words.get(2).filter(|_| !matches!(kind, "hdr" | "fhdr")) {
        return Err(unexpected(extra));
    }
    let kind = match kind {
        "status" => HttpExpectKind::Status(status_ranges(pattern)?),
        "rstatus" => HttpExpectKind::RStatus(regex(pattern)?),
        "string" => HttpExpectKind::String(pattern.into()),
        "rstring" => HttpExpectKind::RString(regex(pattern)?),
        "hdr" => {
            // hdr name [-m meth] NAME [value [-m meth] VALUE]
            header_expect(&words[i + 1..], false)?
        }
        "fhdr" => header_expect(&words[i + 1..], true)?,
        "string-lf" => {
            HttpExpectKind::StringFormat(check_format(pattern, mode, "'http-check expect'", true)?)
        }
        // 2.6 reads `rstring-lf` as a word it does not know.
        "rstring-lf" => return Err(unexpected(kind)),
        "custom" => {
            not_implemented(
                Support::No,
                &format!("'http-check expect {kind}'"),
                line.place,
                diags,
            );
            HttpExpectKind::Status(vec![(0, 999)])
        }
        other => return Err(unexpected(other)),
    };
    Ok(kind)
}

/// HAProxy's message for a word of an `http-check expect` line that is neither a match, its
/// pattern nor an option.
fn unexpected_word(word: &str) -> String {
    format!(
        "'http-check expect' : 'only supports min-recv, [!]string', '[!]rstring', \
         '[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but got \
         '{word}' as argument.."
    )
}

/// `name [-m METH] NAME [value [-m METH] VALUE]`, METH one of `str` (the default), `beg`,
/// `end`, `sub`, `reg`; `full`: `fhdr`, the value matched whole instead of each of its
/// comma-separated values.
fn header_expect(words: &[&str], full: bool) -> Result<HttpExpectKind, String> {
    let kw = if full { "fhdr" } else { "hdr" };
    let mut name = None;
    let mut value = None;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let (slot, names) = match *w {
            "name" => (&mut name, true),
            "value" => (&mut value, false),
            other => return Err(format!("'http-check expect {kw}' : unexpected '{other}'.")),
        };
        i += 1;
        let mut method = "str";
        if words.get(i) == Some(&"-m") {
            method = words.get(i + 1).copied().unwrap_or_default();
            i += 2;
        }
        let pattern = words
            .get(i)
            .ok_or_else(|| format!("'http-check expect {kw}' : '{w}' expects a pattern."))?;
        *slot = Some(text_match(method, pattern, names, kw)?);
        i += 1;
    }
    let name = name.ok_or(format!(
        "'http-check expect {kw}' expects 'name <pattern>'."
    ))?;
    Ok(HttpExpectKind::Header { name, value, full })
}

/// A `-m METH PATTERN` of a header expectation (of `kw`); header names compare without case.
fn text_match(method: &str, pattern: &str, name: bool, kw: &str) -> Result<TextMatch, String> {
    let text = if name {
        pattern.to_ascii_lowercase()
    } else {
        pattern.to_string()
    };
    Ok(match method {
        "str" => TextMatch::Str(text),
        "beg" => TextMatch::Beg(text),
        "end" => TextMatch::End(text),
        "sub" => TextMatch::Sub(text),
        // HAProxy's `regex_comp(p, !name, 0)`, its error without the keyword.
        "reg" => TextMatch::Reg(
            CheckRegex::new(pattern, super::pcre::Flags::MATCH.ignoring_case(name))
                .map_err(|e| format!("'http-check expect' : {e}."))?,
        ),
        other => {
            return Err(format!(
                "'http-check expect {kw}' : unknown matching method '{other}' (expects 'str', 'beg', 'end', 'sub' or 'reg')."
            ));
        }
    })
}
