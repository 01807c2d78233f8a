//! Health checks' formats rendered per check, as HAProxy 2.6 renders them with the check's
//! own session (`sess_build_logline` without a stream): `http-check send uri-lf`, `hdr`,
//! `body-lf`, `tcp-check send-lf`/`send-binary-lf`, and the `on-success`/`on-error`
//! messages of the expect rules.
//!
//! What a check knows: its backend and server (`%b`, `%s`, `be_name`, `be_id`, `srv_name`,
//! `srv_id`, where the check connects `%si:%sp`: its `check addr`/`port`, a connect
//! rule's), the process (`%H`, `%pid`, `env()`), the
//! other backends' states (`nbsrv`, `srv_is_up`), and once a response came, its status
//! and headers (`status`, `res.hdr()`). Its frontend is HAProxy's `CHECKS-FE`; it has no
//! client nor request, which the configuration check refuses as HAProxy does
//! ([`LogFormat::compile_check`]).
//!
//! Variables ([`CheckVars`]): a check's `set-var`, `set-var-fmt` and `unset-var` rules and
//! its `var()` fetches see the `check` and `sess` scopes of its run (HAProxy gives each run
//! a new session and prunes the check's variables when it starts, so a run never sees the
//! last one's), and the process's `proc` scope, the traffic rules' ([`super::vars`]); a
//! check has no stream, so `txn`, `req` and `res` variables are neither set nor read there
//! (nor does a `var()` default apply, as HAProxy's). A set its conditions refuse still
//! creates the variable, as the traffic rules' ([`vars::Store`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::convert;
use super::http::Head;
use super::logformat::{Entry, LogFormat, Samples};
use super::sample::{self, Sample};
use super::state::{Backend, Server, State};
use super::vars::{self, Conditions, Scope, Store};
use crate::config::acl::{CheckedFact, Fetch, Source};
use crate::config::model::VarAction;
use crate::config::rules::VarRule;

/// HAProxy's internal proxy for checks, a check's `%f`.
const CHECKS_FRONTEND: &str = "CHECKS-FE";

/// What one check's formats may show.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    pub state: &'a State,
    pub backend: &'a Backend,
    pub server: &'a Server,
    /// The response being judged (an expect's message), once it came.
    pub response: Option<&'a Head>,
    /// Where the check connected (`%si`/`%sp`), once it did; before, where it will.
    pub target: Option<SocketAddr>,
    /// The variables of this run (none: no variable is set, only `proc` ones are read).
    pub vars: Option<&'a CheckVars>,
}

/// One check run's variables: its `check` and `sess` scopes.
#[derive(Debug, Default)]
pub struct CheckVars {
    run: Mutex<vars::CheckStores>,
}

impl CheckVars {
    /// Runs `f` on the store `name` is in for a check (none: a context without a run's
    /// variables, as an agent's: its `check` and `sess` scopes are empty, the process's
    /// are the process's); None where a check has
    /// no such scope (`txn`, `req`, `res`: a stream's), where a `var()` default does not
    /// apply either, as HAProxy's.
    fn with_store<R>(
        run: Option<&CheckVars>,
        name: &str,
        f: impl FnOnce(&mut dyn vars::Variables) -> R,
    ) -> Option<R> {
        match Scope::of(name)? {
            Scope::Check | Scope::Sess => match run {
                Some(run) => Some(f(&mut *run
                    .run
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner))),
                // The scope is there, without a variable.
                None => Some(f(&mut Store::default())),
            },
            Scope::Proc => Some(vars::with_proc(|s| f(s))),
            Scope::Txn | Scope::Req | Scope::Res => None,
        }
    }

    /// `var(NAME,DEFAULT)` for the run with these variables.
    fn fetch(
        run: Option<&CheckVars>,
        name: &str,
        default: Option<&str>,
    ) -> Option<Sample<'static>> {
        Self::with_store(run, name, |s| {
            (s.get(name).cloned()).or_else(|| default.map(|d| Sample::Str(d.to_string().into())))
        })
        .flatten()
    }

    /// Sets `name` to `value` if `conditions` allow it.
    fn set(&self, name: &str, value: Sample<'_>, conditions: Conditions) {
        Self::with_store(Some(self), name, |s| s.set(name, value, conditions));
    }

    fn unset(&self, name: &str) {
        let keep = Scope::of(name) == Some(Scope::Proc);
        Self::with_store(Some(self), name, |s| s.unset(name, keep));
    }
}

impl<'a> CheckContext<'a> {
    pub fn new(state: &'a State, backend: &'a Backend, server: &'a Server) -> Self {
        CheckContext {
            state,
            backend,
            server,
            response: None,
            target: None,
            vars: None,
        }
    }

    /// The same check, with the variables of its run.
    pub fn with_vars(self, vars: &'a CheckVars) -> Self {
        CheckContext {
            vars: Some(vars),
            ..self
        }
    }

    /// Runs a variable rule of the check: a value set when its conditions allow it (an
    /// expression without one leaves the variable as it was, as HAProxy's `set-var`), a
    /// variable unset.
    pub fn run_var_rule(&self, rule: &VarRule) {
        let Some(vars) = self.vars else { return };
        match &rule.action {
            VarAction::Set { name, expr } => {
                let value = self.raw(&expr.source);
                if let Some(value) = value.and_then(|v| convert::apply(v, &expr.converters)) {
                    vars.set(name, value, rule.conditions);
                }
            }
            VarAction::SetFormat { name, format } => {
                let text = vars::cut_format(self.render(format));
                vars.set(name, Sample::Str(text.into()), rule.conditions);
            }
            VarAction::Unset { name } => vars.unset(name),
        }
    }

    /// The same check, connected to `target`.
    pub fn connected_to(self, target: SocketAddr) -> Self {
        CheckContext {
            target: Some(target),
            ..self
        }
    }

    /// The same check, judging `response`.
    pub fn with_response(self, response: &'a Head) -> Self {
        CheckContext {
            response: Some(response),
            ..self
        }
    }

    /// `format` rendered for this check.
    pub fn render(&self, format: &LogFormat) -> String {
        if let Some(text) = format.literal() {
            return text.to_string();
        }
        // A check has no client: its addresses are never shown ([`LogFormat::compile_check`]).
        let nowhere = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut entry = Entry::at_accept(nowhere, nowhere, CHECKS_FRONTEND, SystemTime::now());
        entry.backend = &self.backend.name;
        entry.server = &self.server.name;
        entry.server_addr = (self.target).or_else(|| super::checks::check_addr(self.server, None));
        entry.samples = Some(self);
        let mut out = String::new();
        format.render(&entry, &mut out);
        out
    }

    fn raw(&self, source: &Source) -> Option<Sample<'a>> {
        let text = |s: &str| Some(Sample::Str(s.to_string().into()));
        let int = |n: usize| Some(Sample::Int(n as i64));
        match source {
            Source::AlwaysTrue => Some(Sample::Bool(true)),
            Source::AlwaysFalse => Some(Sample::Bool(false)),
            Source::BeName => text(&self.backend.name),
            Source::Checked(CheckedFact::ServerName) => text(&self.server.name),
            Source::Checked(CheckedFact::ServerId) => int(self.server.id),
            Source::Checked(CheckedFact::BackendId) => int(self.backend.id),
            Source::Checked(CheckedFact::Int(n)) => Some(Sample::Int(*n)),
            Source::Checked(CheckedFact::Str(s)) => text(s),
            Source::Checked(CheckedFact::Bool(b)) => Some(Sample::Bool(*b)),
            Source::Checked(CheckedFact::Var(var)) => {
                let (name, default) = &**var;
                CheckVars::fetch(self.vars, name, default.as_deref())
            }
            Source::Nbsrv(None) => Some(sample::nbsrv(self.backend)),
            Source::Nbsrv(Some(name)) => self.state.backend(name).map(|b| sample::nbsrv(b)),
            // Unnamed, the checked server's backend: a check's rules are written there.
            Source::SrvIsUp(b, s) | Source::OwnSrvIsUp(b, s) if b.is_empty() => {
                self.backend.server(s).map(|s| Sample::Bool(s.usable()))
            }
            Source::SrvIsUp(b, s) | Source::OwnSrvIsUp(b, s) => (self.state.backend(b))
                .and_then(|b| b.server(s))
                .map(|s| Sample::Bool(s.usable())),
            Source::Env(name) => sample::env(self.state, name),
            Source::Status => (self.response?.first[1].parse().ok()).map(Sample::Int),
            Source::Header(h) if h.response => {
                sample::header_fetch(self.response?, h, true).values.pop()
            }
            // What a check has not (a client, its request): no value.
            _ => None,
        }
    }
}

impl Samples for CheckContext<'_> {
    fn text(&self, fetch: &Fetch) -> Option<String> {
        let value = self.raw(&fetch.source)?;
        convert::apply(value, &fetch.converters).map(|s| s.to_text())
    }
}

/// `send-binary-lf`'s rendered text as bytes: pairs of hexadecimal digits (None when it is
/// not such text, HAProxy's "Failed to parse hexastring").
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unhex;

    #[test]
    fn hexadecimal_text_becomes_bytes() {
        assert_eq!(unhex("414243"), Some(b"ABC".to_vec()));
        assert_eq!(unhex("0d0A"), Some(b"\r\n".to_vec()));
        assert_eq!(unhex(""), Some(Vec::new()));
        assert_eq!(unhex("4"), None);
        assert_eq!(unhex("zz"), None);
    }
}
