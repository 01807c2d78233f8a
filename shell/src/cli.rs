//! hapx's command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A crm-compatible shell for Pacemaker clusters and hapx's embedded single-node cluster.
///
/// hapx speaks crmsh's language: `hapx configure`, `hapx status`, and piped crm scripts. Invoked
/// through a link named `crm`, it behaves exactly the same.
#[derive(Debug, Parser)]
#[command(name = "hapx", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install or remove hapx's OCF agents (IPaddr2, haproxy) for Pacemaker.
    #[command(subcommand)]
    Agents(AgentsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Link the agents into OCF-ROOT/resource.d/PROVIDER, so that the CIB can name
    /// ocf:PROVIDER:IPaddr2 and ocf:PROVIDER:haproxy.
    ///
    /// With --provider heartbeat, an existing CIB that names ocf:heartbeat:IPaddr2 runs hapx's
    /// agent; the shell agent it replaces is kept in OCF-ROOT/hapx-saved/heartbeat and put back
    /// by `hapx agents uninstall --provider heartbeat`.
    Install(AgentsTarget),
    /// Remove the links `install` made and restore any agent it replaced.
    Uninstall(AgentsTarget),
}

#[derive(Debug, Args)]
pub struct AgentsTarget {
    /// The OCF provider directory to install under.
    #[arg(long, default_value = "hapx")]
    pub provider: String,
    /// The OCF root directory.
    #[arg(long, value_name = "DIR", default_value = "/usr/lib/ocf")]
    pub ocf_root: PathBuf,
    /// The hapx-ocf binary the agents link to [default: hapx-ocf beside this hapx, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

/// The clap command, for man pages and help.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
