//! `hapx` (and `crm`): see the library's documentation.

use anyhow::Result;
use clap::Parser;
use hapx_shell::cli::{AgentsCommand, Cli, Command};

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Agents(AgentsCommand::Install(target)) => hapx_shell::agents::install(target),
        Command::Agents(AgentsCommand::Uninstall(target)) => hapx_shell::agents::uninstall(target),
    }
}
