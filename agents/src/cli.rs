//! The command line of the multi-call binary `hapx-ocf`.

use clap::Parser;

use crate::AGENT_NAMES;

/// hapx's OCF resource agents in one binary.
///
/// Pacemaker runs an agent as `<ocf-root>/resource.d/PROVIDER/TYPE ACTION` with its parameters in
/// OCF_RESKEY_* environment variables. hapx-ocf is installed there as links named after the
/// agents (see `hapx agents install`) and acts as the agent its link is named after: run as
/// `IPaddr2 monitor` it is the IPaddr2 agent. Run under its own name, it takes the agent name
/// as the first argument.
#[derive(Debug, Parser)]
#[command(name = "hapx-ocf", version, max_term_width = 100)]
pub struct Cli {
    /// The agent to act as.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(AGENT_NAMES))]
    pub agent: String,
    /// The OCF action: start, stop, monitor, meta-data, validate-all, reload, ...
    pub action: Option<String>,
}

/// The clap command, for man pages and help.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
