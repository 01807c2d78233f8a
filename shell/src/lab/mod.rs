//! `hapx lab`: the seed's "Test High Availability" as a repeatable command. A two-node
//! Corosync + Pacemaker cluster, three backends and a client on a private network of
//! namespaces, configured by a crm script through hapx, for users to try their cluster
//! configuration (and hapx against the reference stack) before production.
//!
//! ```text
//!            switch namespace (bridge br0, 192.0.2.0/24)
//!   hapx-node01 .11   hapx-node02 .12   kube-mast01..03 .21-.23   client .100
//!   corosync+pacemaker (token 3000 ms)  TCP responders :6443       probe -> VIP .20:6443
//! ```
//!
//! - [`state`]: the state file under /run/hapx-lab/ recording every name and pid the lab made.
//! - [`net`]: the lab's naming (`hapxl-<id>-<role>`) and addressing over [`crate::netns`]
//!   (namespaces, the bridge, ports, addresses, processes per namespace).
//! - [`node`]: a Corosync + Pacemaker node in private namespaces (private mounts,
//!   corosync.conf, launch, `crm_mon`); the test harness's `PacemakerNode` uses it too.
//! - [`backend`]: the API server stand-ins.
//! - [`script`]: adapting the crm script and haproxy.cfg to the lab.
//! - [`probe`]: client requests through the VIP and their outage windows.
//! - [`up`]: building a lab; [`ops`]: status, fail, recover, down.

pub mod backend;
pub mod net;
pub mod node;
pub mod ops;
pub mod probe;
pub mod script;
pub mod state;
pub mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};

pub use state::Stack;

/// `hapx lab [--name LAB] COMMAND`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The lab's name: several labs may run at once; each has /run/hapx-lab/NAME.state.
    #[arg(long, global = true, value_name = "LAB", default_value = "lab")]
    pub name: String,
    #[command(subcommand)]
    pub command: LabCommand,
}

/// The lab's commands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the lab: network, backends, two cluster nodes; apply the crm script through hapx
    /// (live, on hapx-node01); wait until the floating address serves.
    Up(UpArgs),
    /// The lab's hosts and processes, who holds the VIP, and crm_mon's view.
    Status,
    /// Fail a node: `poweroff` kills everything on it and unplugs it (the seed's shutdown);
    /// `cut` only unplugs it (a network partition).
    Fail {
        /// hapx-node01 or hapx-node02.
        node: String,
        #[arg(long, value_enum, default_value = "poweroff")]
        mode: FailMode,
    },
    /// Bring a failed node back: plug it in and, after a poweroff, start its Corosync and
    /// Pacemaker again; waits until both nodes are online.
    Recover {
        /// hapx-node01 or hapx-node02.
        node: String,
    },
    /// Send a request through the VIP from the client every interval; print outage windows.
    Probe(ProbeArgs),
    /// Remove everything the lab created (processes, namespaces, files), from its state file;
    /// also removes lab namespaces left behind by labs whose owner is gone.
    Down,
    /// (internal) A backend: answer NAME to every connection on PORT.
    #[command(hide = true)]
    Backend {
        name: String,
        #[arg(long, default_value_t = backend::PORT)]
        port: u16,
    },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The crm script to apply [default: $HAPX_SEED_DIR/configure.crm, else the seed's
    /// configure.crm beside the repository].
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// The load balancer's configuration [default: haproxy.cfg beside the default script].
    #[arg(long, value_name = "FILE")]
    pub haproxy_cfg: Option<PathBuf>,
    /// hapx: hapx's agents and hapx-proxy; reference: resource-agents' IPaddr2 and HAProxy
    /// (under ocf:heartbeat:anything).
    #[arg(long, value_enum, default_value = "hapx")]
    pub stack: Stack,
    /// Seconds to wait for the cluster, and then for the VIP to serve.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Leave what was built in place when `up` fails (for a look; `hapx lab down` removes it).
    #[arg(long)]
    pub keep_on_failure: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// How long to probe, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Milliseconds between requests.
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
    /// Milliseconds a request may take (connect, then answer) before it counts as failed.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Also print every failed request: when it started, why it failed, and when.
    #[arg(long)]
    pub verbose: bool,
}

/// How `hapx lab fail` fails a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    /// Kill every process of the node, drop its addresses, unplug it.
    Poweroff,
    /// Unplug it: the node runs on, alone.
    Cut,
}

/// Runs `hapx lab ...`.
pub fn run(args: &LabArgs) -> Result<ExitCode> {
    match &args.command {
        LabCommand::Up(up_args) => up::up(&args.name, up_args),
        LabCommand::Status => ops::status(&args.name),
        LabCommand::Fail { node, mode } => ops::fail(&args.name, node, *mode),
        LabCommand::Recover { node } => ops::recover(&args.name, node),
        LabCommand::Probe(probe_args) => ops::probe(&args.name, probe_args),
        LabCommand::Down => ops::down(&args.name),
        LabCommand::Backend { name, port } => Ok(backend::serve(name, *port)?),
    }?;
    Ok(ExitCode::SUCCESS)
}
