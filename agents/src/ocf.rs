//! The OCF resource-agent contract (OCF 1.1): exit codes and actions.

use std::fmt;
use std::str::FromStr;

/// What an agent answers, as its process exit code (OCF 1.1, "Return codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// The action succeeded; for `monitor`, the resource is running.
    Success = 0,
    /// A failure with no more precise code.
    ErrGeneric = 1,
    /// The agent was called with wrong arguments (an unknown action, bad parameter syntax).
    ErrArgs = 2,
    /// The action is not implemented by this agent.
    ErrUnimplemented = 3,
    /// Not enough privileges to perform the action.
    ErrPerm = 4,
    /// Something the agent needs is missing on this node.
    ErrInstalled = 5,
    /// The resource's configuration is wrong, on every node.
    ErrConfigured = 6,
    /// The resource is cleanly stopped.
    NotRunning = 7,
    /// The resource runs in the promoted role.
    RunningPromoted = 8,
    /// The resource failed in the promoted role.
    FailedPromoted = 9,
}

impl ExitCode {
    /// The numeric code as a process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The symbolic name ocf-shellfuncs gives this code (`OCF_SUCCESS`, `OCF_NOT_RUNNING`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Success => "OCF_SUCCESS",
            ExitCode::ErrGeneric => "OCF_ERR_GENERIC",
            ExitCode::ErrArgs => "OCF_ERR_ARGS",
            ExitCode::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            ExitCode::ErrPerm => "OCF_ERR_PERM",
            ExitCode::ErrInstalled => "OCF_ERR_INSTALLED",
            ExitCode::ErrConfigured => "OCF_ERR_CONFIGURED",
            ExitCode::NotRunning => "OCF_NOT_RUNNING",
            ExitCode::RunningPromoted => "OCF_RUNNING_PROMOTED",
            ExitCode::FailedPromoted => "OCF_FAILED_PROMOTED",
        }
    }

    /// The code for a numeric exit status, if it is one of the OCF codes 0..=9.
    pub fn from_code(code: i32) -> Option<ExitCode> {
        Some(match code {
            0 => ExitCode::Success,
            1 => ExitCode::ErrGeneric,
            2 => ExitCode::ErrArgs,
            3 => ExitCode::ErrUnimplemented,
            4 => ExitCode::ErrPerm,
            5 => ExitCode::ErrInstalled,
            6 => ExitCode::ErrConfigured,
            7 => ExitCode::NotRunning,
            8 => ExitCode::RunningPromoted,
            9 => ExitCode::FailedPromoted,
            _ => return None,
        })
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// An action an agent can be asked to perform (OCF 1.1, "Resource agent actions").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    /// The pre-OCF name of `monitor`, still sent by some tools.
    Status,
    MetaData,
    ValidateAll,
    Reload,
    ReloadAgent,
    Promote,
    Demote,
    Notify,
    MigrateTo,
    MigrateFrom,
    Recover,
    /// `usage` and `help`: print how to call the agent.
    Usage,
}

impl Action {
    /// Every action, for help texts and meta-data.
    pub const ALL: [Action; 15] = [
        Action::Start,
        Action::Stop,
        Action::Monitor,
        Action::Status,
        Action::MetaData,
        Action::ValidateAll,
        Action::Reload,
        Action::ReloadAgent,
        Action::Promote,
        Action::Demote,
        Action::Notify,
        Action::MigrateTo,
        Action::MigrateFrom,
        Action::Recover,
        Action::Usage,
    ];

    /// The action's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::Status => "status",
            Action::MetaData => "meta-data",
            Action::ValidateAll => "validate-all",
            Action::Reload => "reload",
            Action::ReloadAgent => "reload-agent",
            Action::Promote => "promote",
            Action::Demote => "demote",
            Action::Notify => "notify",
            Action::MigrateTo => "migrate_to",
            Action::MigrateFrom => "migrate_from",
            Action::Recover => "recover",
            Action::Usage => "usage",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not part of the OCF API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        if s == "help" {
            return Ok(Action::Usage);
        }
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_round_trip() {
        for code in 0..=9 {
            let exit = ExitCode::from_code(code).unwrap();
            assert_eq!(exit.code(), code);
        }
        assert_eq!(ExitCode::from_code(10), None);
        assert_eq!(ExitCode::NotRunning.to_string(), "OCF_NOT_RUNNING (7)");
    }

    #[test]
    fn actions_parse_by_their_names() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
        assert_eq!("help".parse::<Action>(), Ok(Action::Usage));
        assert!("bogus".parse::<Action>().is_err());
    }
}
