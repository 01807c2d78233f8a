//! `set-var proc.NAME EXPR` and `set-var-fmt proc.NAME FMT` in the global section, as
//! HAProxy 2.6's `vars_parse_global_set_var`: the line is read as the action
//! `set-var(proc.NAME)` (so its name, conditions and expression errors are the traffic
//! rules' own), and run at once, while the configuration is read, so that a later line (or
//! a rule) sees the value. Only `proc` variables may be set there, and only with what is
//! known before any traffic: constants, `env()`, variables (`var()`); a format renders with
//! HAProxy's configuration pseudo-proxy `CFG` as its frontend and backend, no server and
//! no client (addresses absent).
//!
//! Each process reads its configuration (a reload starts a new one), so a process starts
//! with these values, as HAProxy's does.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::SystemTime;

use super::acl::{AclError, CheckedFact, Fetch, Source};
use super::model::{Mode, VarAction};
use super::stick::{self, Counter};
use super::values::Environment;
use crate::runtime::convert;
use crate::runtime::logformat::{self, Entry, LogFormat, Samples, Stage};
use crate::runtime::sample::Sample;
use crate::runtime::vars;

/// The proxy HAProxy renders a global format for (`%f`, `%b`).
const CONFIG_PROXY: &str = "CFG";

/// Runs `set-var`/`set-var-fmt` (`words[0]`) of the global section: the process variable
/// is set (or left as its conditions say). Errors are HAProxy's messages; a fetch or
/// converter hapx lacks is [`AclError::Unsupported`].
pub fn run(words: &[String], environment: &Environment) -> Result<(), AclError> {
    let kw = words[0].as_str();
    let format = kw == "set-var-fmt";
    let (var, first) = match (words.get(1), words.get(2)) {
        (Some(var), Some(first)) if !var.is_empty() && !first.is_empty() => (var, first),
        _ => {
            let what = if format {
                "a format string"
            } else {
                "a sample expression"
            };
            return Err(format!(
                "'{kw}' requires a process-wide variable name ('proc.<name>') and {what}."
            )
            .into());
        }
    };
    let mut compile = |text: &str| {
        LogFormat::compile_var_format(text, Mode::Tcp, Stage::Global).map_err(|e| match e {
            AclError::Bad(m) => AclError::Bad(m.strip_suffix('.').unwrap_or(&m).into()),
            unsupported => unsupported,
        })
    };
    // HAProxy takes one argument, whatever follows it.
    let args = std::slice::from_ref(first);
    let (rule, _) = super::rules::global_var_rule(&format!("{kw}({var})"), args, &mut compile)
        .map_err(|e| match e {
            // The variable does not fit: HAProxy 2.6.12 crashes, hapx says why.
            AclError::Bad(m) if m == "(null)" => too_big(kw, var.split(',').next().unwrap_or(var)),
            // An expression's error, as HAProxy words it outside of an ACL.
            AclError::Bad(m) => AclError::Bad(logformat::sample_error(m)),
            unsupported => unsupported,
        })?;
    if let VarAction::Set { expr, .. } = &rule.action
        && let Some(needs) = unavailable(expr)
    {
        return Err(format!(
            "fetch method 'set-var({var})' extracts information from '{needs}', none of which is available here"
        )
        .into());
    }
    let name = match &rule.action {
        VarAction::Set { name, .. } | VarAction::SetFormat { name, .. } => name,
        VarAction::Unset { name } => name,
    };
    if !name.starts_with("proc.") {
        return Err(format!(
            "'{kw}': cannot set variable '{var}', only scope 'proc' is permitted in the global section."
        )
        .into());
    }
    exist(kw, name)?;
    let start = AtStart { environment };
    match &rule.action {
        VarAction::Set { expr, .. } => {
            if let Some(value) = start.value(expr) {
                vars::set(name, value, rule.conditions);
            }
        }
        VarAction::SetFormat { format, .. } => {
            vars::set_format(name, start.render(format), rule.conditions)
        }
        VarAction::Unset { .. } => {}
    }
    Ok(())
}

/// Makes the process variable `name` exist, without a value if it has none: HAProxy's
/// process variables exist once the configuration names them (a global `ifexists` set
/// succeeds on a variable never set, `ifnotexists` never does).
fn exist(kw: &str, name: &str) -> Result<(), AclError> {
    match vars::declare(name) {
        true => Ok(()),
        false => Err(too_big(kw, name)),
    }
}

/// A process variable that does not fit `tune.vars.proc-max-size` (or
/// `global-max-size`): HAProxy 2.6.12 crashes on such a line, hapx refuses it.
fn too_big(kw: &str, name: &str) -> AclError {
    format!(
        "'{kw}': variable '{name}' does not fit in the size limit of process variables (tune.vars.proc-max-size, tune.vars.global-max-size)."
    )
    .into()
}

/// `tune.vars.{global,proc,sess,txn,reqres,check}-max-size` (`kw`) with its argument: the
/// limit holds from this line on, as HAProxy's (a process variable set earlier was not
/// counted).
pub fn limit(kw: &str, size: Option<&str>) -> Result<(), String> {
    let which = match kw {
        "tune.vars.global-max-size" => vars::Limit::Global,
        "tune.vars.proc-max-size" => vars::Limit::Proc,
        "tune.vars.sess-max-size" => vars::Limit::Sess,
        "tune.vars.txn-max-size" => vars::Limit::Txn,
        "tune.vars.check-max-size" => vars::Limit::Check,
        _ => vars::Limit::Reqres,
    };
    // A missing size is HAProxy's empty word: 0, no limit.
    vars::set_limit(which, vars::parse_limit(kw, size.unwrap_or(""))?);
    Ok(())
}

/// What `fetch` reads that the configuration's reading has not (HAProxy's name of it, as
/// its `SMP_VAL_CFG_PARSER` check words it); None for what it has: constants, the
/// environment, variables.
pub fn unavailable(fetch: &Fetch) -> Option<&'static str> {
    use Source::*;
    Some(match &fetch.source {
        AlwaysTrue | AlwaysFalse | Env(_) => return None,
        Checked(CheckedFact::Int(_) | CheckedFact::Str(_) | CheckedFact::Bool(_)) => return None,
        Checked(CheckedFact::Var(_)) => return None,
        Checked(_) => "server",
        Src | SrcPort | Dst | DstPort => "client address",
        FeName => "frontend",
        BeName => "backend",
        Nbsrv(_) | SrvIsUp(..) | OwnSrvIsUp(..) => "internal state",
        Stick(s) if s.counter == Counter::Src && s.query != stick::Query::TableCnt => {
            "client address"
        }
        Stick(_) => "internal state",
        Method | ProtoHttp => "HTTP request",
        Status => "HTTP response",
        Header(h) if h.response => "HTTP response headers",
        SslFc | SslFcSni | SslFcProtocol | SslFcCipher | SslFcAlpn | SslCUsed | SslCVerify => {
            "client-side connection"
        }
        _ => match fetch.layer() {
            super::acl::Layer::L6 => "request buffer",
            super::acl::Layer::L6Res => "response buffer",
            _ => "HTTP request headers",
        },
    })
}

/// What the configuration's reading fetches from: the environment as `setenv` and its kin
/// left it so far, and the process variables.
#[derive(Debug)]
struct AtStart<'a> {
    environment: &'a Environment,
}

impl AtStart<'_> {
    fn value(&self, fetch: &Fetch) -> Option<Sample<'static>> {
        let text = |s: &str| Some(Sample::Str(s.to_string().into()));
        let raw = match &fetch.source {
            Source::AlwaysTrue => Some(Sample::Bool(true)),
            Source::AlwaysFalse => Some(Sample::Bool(false)),
            Source::Env(name) => (self.environment)
                .get(name, &crate::env::var)
                .and_then(|v| text(&v)),
            Source::Checked(CheckedFact::Int(n)) => Some(Sample::Int(*n)),
            Source::Checked(CheckedFact::Str(s)) => text(s),
            Source::Checked(CheckedFact::Bool(b)) => Some(Sample::Bool(*b)),
            // Outside of traffic only `proc` variables are there: no default for the others.
            Source::Checked(CheckedFact::Var(var)) => vars::fetch(&var.0, var.1.as_deref()),
            // [`unavailable`] refused the others.
            _ => None,
        };
        convert::apply(raw?, &fetch.converters)
    }

    fn render(&self, format: &LogFormat) -> String {
        if let Some(text) = format.literal() {
            return text.to_string();
        }
        // No client: the addresses are absent ([`Stage::Global`]).
        let nowhere = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut entry = Entry::at_accept(nowhere, nowhere, CONFIG_PROXY, SystemTime::now());
        entry.samples = Some(self);
        let mut out = String::new();
        format.render(&entry, &mut out);
        out
    }
}

impl Samples for AtStart<'_> {
    fn text(&self, fetch: &Fetch) -> Option<String> {
        self.value(fetch).map(|s| s.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_line(line: &str) -> Result<(), String> {
        let words: Vec<String> = line.split(' ').map(String::from).collect();
        run(&words, &Environment::default()).map_err(|e| match e {
            AclError::Bad(m) | AclError::Unsupported(m) => m,
        })
    }

    #[test]
    fn global_variables_are_set_at_once_in_order() {
        run_line("set-var proc.gv_test_a int(5)").unwrap();
        run_line("set-var-fmt proc.gv_test_b %[var(proc.gv_test_a)]-%f-%b-%s-%ci-").unwrap();
        assert_eq!(vars::get("proc.gv_test_a"), Some(Sample::Int(5)));
        assert_eq!(
            vars::get("proc.gv_test_b"),
            Some(Sample::Str("5-CFG-CFG-<NOSRV>--".into()))
        );
        // Named by the configuration, a process variable exists before it is set.
        run_line("set-var proc.gv_test_c,ifnotexists int(7)").unwrap();
        assert_eq!(vars::get("proc.gv_test_c"), None);
        run_line("set-var proc.gv_test_d,ifexists int(7)").unwrap();
        assert_eq!(vars::get("proc.gv_test_d"), Some(Sample::Int(7)));
    }

    #[test]
    fn global_variable_errors_are_haproxys() {
        assert_eq!(
            run_line("set-var txn.a int(1)").unwrap_err(),
            "'set-var': cannot set variable 'txn.a', only scope 'proc' is permitted in the global section."
        );
        assert_eq!(
            run_line("set-var proc.a").unwrap_err(),
            "'set-var' requires a process-wide variable name ('proc.<name>') and a sample expression."
        );
        assert_eq!(
            run_line("set-var proc.a src").unwrap_err(),
            "fetch method 'set-var(proc.a)' extracts information from 'client address', none of which is available here"
        );
        assert_eq!(
            run_line("set-var-fmt proc.a %[nbsrv(x)]").unwrap_err(),
            "sample fetch <nbsrv(x)]> may not be reliably used here because it needs 'internal state' which is not available here"
        );
    }
}
