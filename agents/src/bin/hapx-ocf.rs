//! `hapx-ocf`: the OCF agents' multi-call binary. See [`hapx_agents::cli`].

use std::ffi::OsStr;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use hapx_agents::AGENT_NAMES;
use hapx_agents::cli::Cli;
use hapx_agents::ocf::{self, Action};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(OsStr::to_str)
        .unwrap_or("hapx-ocf");
    let (agent, action) = if AGENT_NAMES.contains(&invoked_as) {
        (invoked_as.to_string(), args.get(1).cloned())
    } else {
        let cli = Cli::parse();
        (cli.agent, cli.action)
    };
    ExitCode::from(run(&agent, action.as_deref()).code() as u8)
}

/// Runs one action of one agent. The agents themselves arrive with their own issue; until then
/// every action answers OCF_ERR_UNIMPLEMENTED so that Pacemaker treats them as absent, not as
/// successful.
fn run(agent: &str, action: Option<&str>) -> ocf::ExitCode {
    let Some(action) = action else {
        eprintln!("{agent}: usage: {agent} {{start|stop|monitor|meta-data|validate-all}}");
        return ocf::ExitCode::ErrArgs;
    };
    match action.parse::<Action>() {
        Ok(action) => {
            eprintln!("{agent}: action {action} is not implemented yet");
            ocf::ExitCode::ErrUnimplemented
        }
        Err(e) => {
            eprintln!("{agent}: {e}");
            ocf::ExitCode::ErrUnimplemented
        }
    }
}
