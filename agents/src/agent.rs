//! What every agent shares: dispatching an action, the failure type, and the one place where a
//! failure becomes Pacemaker's exit-reason line and exit code.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::log::Logger;
use crate::ocf::{Action, ExitCode};
use crate::params::{ParamError, Params};
use crate::spec::AgentSpec;

/// An action did not succeed: the OCF code to exit with and the reason, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Failure {
    pub code: ExitCode,
    pub reason: String,
}

impl Failure {
    pub fn new(code: ExitCode, reason: impl Into<String>) -> Failure {
        Failure {
            code,
            reason: reason.into(),
        }
    }

    /// OCF_ERR_CONFIGURED: the configuration is wrong.
    pub fn configured(reason: impl Into<String>) -> Failure {
        Failure::new(ExitCode::ErrConfigured, reason)
    }

    /// OCF_ERR_ARGS: a parameter is wrong for this host (an interface or file it names is not
    /// here). OCF 1.1 recommends this code for such cases, so that the cluster may try
    /// another node.
    pub fn args(reason: impl Into<String>) -> Failure {
        Failure::new(ExitCode::ErrArgs, reason)
    }

    /// OCF_ERR_GENERIC.
    pub fn generic(reason: impl Into<String>) -> Failure {
        Failure::new(ExitCode::ErrGeneric, reason)
    }

    /// OCF_ERR_INSTALLED: something this node needs is missing.
    pub fn installed(reason: impl Into<String>) -> Failure {
        Failure::new(ExitCode::ErrInstalled, reason)
    }
}

impl From<ParamError> for Failure {
    fn from(e: ParamError) -> Failure {
        Failure::new(e.exit_code(), e.to_string())
    }
}

/// The answer of an action: a code that is not a failure (0, 7, 8), or a failure.
pub type Outcome = Result<ExitCode, Failure>;

/// Everything an action gets.
#[derive(Debug)]
pub struct Context {
    pub action: Action,
    pub params: Params,
    pub log: Logger,
}

impl Context {
    /// `OCF_CHECK_LEVEL`, the depth of a monitor (0 when unset or not a number).
    pub fn check_level(&self) -> u32 {
        std::env::var("OCF_CHECK_LEVEL")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A probe: a monitor with interval 0 (ocf_is_probe).
    pub fn is_probe(&self) -> bool {
        matches!(self.action, Action::Monitor | Action::Status)
            && self.params.meta("interval") == Some("0")
    }
}

/// An agent: its description and its actions.
pub trait Agent {
    fn spec(&self) -> &'static AgentSpec;
    /// Runs `ctx.action`, which the spec advertises and is neither meta-data nor usage.
    fn run(&self, ctx: &Context) -> Outcome;
}

/// Runs `action` (the first command-line argument) of `agent` the way Pacemaker expects and
/// returns the exit code.
pub fn main(agent: &dyn Agent, action: Option<&str>) -> ExitCode {
    let spec = agent.spec();
    let Some(action) = action else {
        eprintln!("{}", spec.usage());
        return ExitCode::ErrArgs;
    };
    let action = match action.parse::<Action>() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}: {e}; {}", spec.name, spec.usage());
            return ExitCode::ErrUnimplemented;
        }
    };
    match action {
        Action::MetaData => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(spec.meta_data().as_bytes());
            return ExitCode::Success;
        }
        Action::Usage => {
            println!("{}", spec.usage());
            return ExitCode::Success;
        }
        _ => {}
    }
    if !spec.supports(action) {
        return ExitCode::ErrUnimplemented;
    }
    let began = Instant::now();
    let ctx = Context {
        action,
        params: Params::from_env(spec),
        log: Logger::from_env(spec.name),
    };
    ctx.log.debug(&format!("{action}: begins"));
    let code = match agent.run(&ctx) {
        Ok(code) => code,
        Err(failure) => {
            ctx.log.exit_reason(&failure.reason);
            failure.code
        }
    };
    log_duration(&ctx, code, began.elapsed());
    code
}

/// How long the action took, for failover timelines (Pacemaker's log says when the executor
/// started the agent and when it exited; this says how much of that was the agent's own work).
/// At info level for a successful action that changes what runs; at debug level otherwise: a
/// failure has its one exit-reason line, and monitors are frequent.
fn log_duration(ctx: &Context, code: ExitCode, took: Duration) {
    let line = format!(
        "{}: {} in {:.1} ms",
        ctx.action,
        code.name(),
        took.as_secs_f64() * 1000.0
    );
    let changes_what_runs = matches!(
        ctx.action,
        Action::Start
            | Action::Stop
            | Action::Reload
            | Action::ReloadAgent
            | Action::Promote
            | Action::Demote
            | Action::MigrateTo
            | Action::MigrateFrom
    );
    if changes_what_runs && code == ExitCode::Success {
        ctx.log.info(&line);
    } else {
        ctx.log.debug(&line);
    }
}
