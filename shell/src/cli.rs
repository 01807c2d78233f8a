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
    /// Run the crm script in FILE (from the top level, like `crm -f FILE`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Answer yes to every question (`crm -F`): conflicting attributes are removed, `node
    /// clearstate` proceeds, each answer printed as `INFO: QUESTION [YES]`. Without it a script
    /// answers no.
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    /// crmsh's regression-test mode (`crm -R`): every line read from stdin is echoed as
    /// `.INP: LINE`, as crmsh's own test runner expects.
    #[arg(short = 'R', long = "regression-tests")]
    pub regression_tests: bool,
    /// After a commit to a live cluster, wait until the cluster has acted on it
    /// (`crm_resource --wait`), like `crm -w`.
    #[arg(short = 'w', long = "wait")]
    pub wait: bool,
    /// Without a command: read a crm script from stdin, or prompt on a terminal.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install or remove hapx's OCF agents (IPaddr2, haproxy) for Pacemaker.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// crm's configure level: `hapx configure CMD ...` runs one command (edits are committed);
    /// without a command, reads a crm script from stdin (`cat script | hapx configure`) or
    /// prompts on a terminal.
    Configure(CrmArgs),
    /// The cluster's status as `crm_mon -1 -r` prints it, as crmsh's `status` does (extra
    /// arguments go to crm_mon instead of `-r`).
    Status(CrmArgs),
    /// crm's resource level: start|stop|restart|manage|unmanage|maintenance|move|ban|clear|
    /// param|meta|utilization|trace|untrace|status|scores|cleanup|refresh|failcount.
    Resource(CrmArgs),
    /// crm's node level: show|standby|online|maintenance|ready|attribute|utilization|
    /// status-attr|clearstate|delete.
    Node(CrmArgs),
    /// crm's ra level: classes|list|providers|info (reads the agents' meta-data).
    Ra(CrmArgs),
    /// crm's options level: the user's preferences in ~/.config/crm/crm.conf
    /// (show|save|reset|editor|pager|user|skill-level|output|colorscheme|sort-elements|
    /// check-frequency|check-mode|wait|add-quotes|manage-children); a change is saved.
    Options(CrmArgs),
    /// The embedded single-node cluster's local driver: start | stop | status | cleanup.
    #[command(subcommand)]
    Cluster(crate::driver::control::ClusterCommand),
    /// The seed's scenario live in private network namespaces, as root: VIP, proxy, three
    /// backends, a client, and a recovery (--once: run it, print a verdict, clean up).
    Demo(crate::demo::DemoArgs),
    /// What Pacemaker's scheduler would do with a CIB, printed as crm_simulate prints it:
    /// -x FILE | -L, [-R|-S], what-if changes (-u/-d/-f NODE, -i/-F SPEC), -G FILE,
    /// --explain RSC.
    Simulate(crate::simulate::SimulateArgs),
    /// A two-node Corosync/Pacemaker lab with hapx on a private network: up [--script FILE]
    /// [--stack hapx|reference] | status | fail NODE | recover NODE | probe | down.
    Lab(crate::lab::LabArgs),
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

/// The words of a crm command, passed through to the crm language.
#[derive(Debug, Args)]
pub struct CrmArgs {
    /// A crm command and its arguments (for example `show`, or `primitive p Dummy`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub args: Vec<String>,
}

/// The clap command, for man pages and help.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
