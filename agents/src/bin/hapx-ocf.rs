//! `hapx-ocf`: the OCF agents' multi-call binary. See [`hapx_agents::cli`].
//!
//! Run as `IPaddr2` or `haproxy` (a link of that name, as Pacemaker runs it), the first argument
//! is the action; run as `hapx-ocf`, the agent name comes first. The agent path does nothing
//! before the action but read its environment: a monitor is a few system calls.

use std::ffi::OsStr;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use hapx_agents::cli::Cli;

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let invoked_as = Path::new(&argv0)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or("hapx-ocf")
        .to_string();
    let (agent, action) = match hapx_agents::agent(&invoked_as) {
        Some(agent) => (agent, args.next()),
        None => {
            let cli = Cli::parse();
            let agent =
                hapx_agents::agent(&cli.agent).expect("clap only accepts names from AGENT_NAMES");
            (agent, cli.action)
        }
    };
    let code = hapx_agents::agent::main(agent, action.as_deref());
    ExitCode::from(code.code() as u8)
}
