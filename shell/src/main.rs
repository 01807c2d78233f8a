//! `hapx` (and `crm`): see the library's documentation.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use hapx_shell::cli::{AgentsCommand, Cli, Command};
use hapx_shell::session::Level;

fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    hapx_shell::run::set_wait(cli.wait);
    hapx_shell::run::set_force(cli.force);
    hapx_shell::run::set_regression_tests(cli.regression_tests);
    let Some(command) = &cli.command else {
        return match &cli.file {
            Some(path) => hapx_shell::run::file(path),
            None => hapx_shell::run::crm(Level::Top, &[]),
        };
    };
    match command {
        Command::Agents(AgentsCommand::Install(target)) => {
            hapx_shell::agents::install(target).map(|()| ExitCode::SUCCESS)
        }
        Command::Agents(AgentsCommand::Uninstall(target)) => {
            hapx_shell::agents::uninstall(target).map(|()| ExitCode::SUCCESS)
        }
        Command::Configure(args) => hapx_shell::run::crm(Level::Configure, &args.args),
        Command::Status(args) => hapx_shell::run::top("status", &args.args),
        Command::Resource(args) => hapx_shell::run::top("resource", &args.args),
        Command::Node(args) => hapx_shell::run::top("node", &args.args),
        Command::Ra(args) => hapx_shell::run::top("ra", &args.args),
        Command::Options(args) => hapx_shell::run::top("options", &args.args),
        Command::Cluster(command) => hapx_shell::driver::control::run(command),
        Command::Demo(args) => hapx_shell::demo::run(args),
        Command::Simulate(args) => hapx_shell::simulate::run(args),
        Command::Lab(args) => hapx_shell::lab::run(args),
    }
}
