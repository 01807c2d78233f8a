//! Real Corosync + Pacemaker nodes for tests: a harness over the product's launcher
//! ([`hapx_shell::lab::node`], which `hapx lab` uses for its nodes).
//!
//! A [`PacemakerNode`] runs `corosync -f` and `pacemakerd -f` inside a network namespace (a host
//! of a [`Network`]) and a private mount and UTS namespace of its own: `/run`, `/dev/shm`,
//! `/var/lib/pacemaker`, `/var/log/pacemaker` and `/etc/corosync` are private to the node, its
//! hostname is its node name, and Pacemaker's IPC (abstract unix sockets) is private to its
//! network namespace. So several tests, or several nodes of one test, run Pacemaker at once
//! without seeing each other, and nothing of the machine's own cluster configuration is touched.
//!
//! Cluster tools for the node (`crm_mon`, `cibadmin`, `crm`, `ip`) run through
//! [`PacemakerNode::command`], which enters the node's namespaces with `nsenter`.
//!
//! Dropping the node stops Pacemaker (which stops its resources first), then Corosync, by the
//! pids the harness started, and removes the node's directory; namespaces go with the
//! [`Network`].
//!
//! Start-up takes about 25 s: the controller waits out its election timer before it becomes DC.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hapx_shell::lab::node::{self, NodeSpec};
use hapx_shell::netns;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns::{Host, Network};
use crate::require;

static NEXT_NODE: AtomicU32 = AtomicU32::new(0);

/// Corosync's cluster name for test nodes.
const CLUSTER_NAME: &str = "hapxtest";

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's name in the cluster (and its hostname).
    pub name: String,
    /// The address Corosync binds to; loopback for a one-node cluster.
    pub ring_address: String,
    /// Every node of the cluster as (name, ring address); empty means just this one.
    pub members: Vec<(String, String)>,
    /// OCF provider directories to show the node at `/usr/lib/ocf/resource.d/PROVIDER`.
    pub ocf_providers: Vec<(String, PathBuf)>,
    /// How long to wait for the node to be online with a DC.
    pub startup_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            name: "node1".into(),
            ring_address: "127.0.0.1".into(),
            members: Vec::new(),
            ocf_providers: Vec::new(),
            startup_timeout: Duration::from_secs(120),
        }
    }
}

/// A running Pacemaker node; stopped on drop.
#[derive(Debug)]
pub struct PacemakerNode {
    /// Name, namespace, directory, members and binds, as launched.
    spec: NodeSpec,
    pacemakerd: Child,
    /// The network this node made for itself, if [`PacemakerNode::start`] made one. Dropped
    /// after the daemons are stopped.
    own_network: Option<Network>,
}

/// The tools a node needs on this machine.
const TOOLS: [&str; 5] = ["corosync", "pacemakerd", "crm_mon", "nsenter", "unshare"];

impl PacemakerNode {
    /// Starts a one-node cluster in a network of its own (host `pcmk`, `eth0` 192.0.2.1/24,
    /// loopback for Corosync) and waits until it is online with a DC.
    ///
    /// Returns `None` (after a loud SKIPPED line) when this machine cannot run it; under `CI`
    /// that panics instead. A start that fails on a machine that has everything panics with the
    /// node's logs: that is a real failure.
    pub fn start(test: &str, options: NodeOptions) -> Option<PacemakerNode> {
        if !Self::available(test) {
            return None;
        }
        let mut network = Network::new().expect("create the node's network");
        let host = network
            .add_host("pcmk", &["192.0.2.1/24"])
            .expect("add the node's host");
        let mut node = Self::start_in(&host, options).unwrap_or_else(|e| panic!("{test}: {e}"));
        node.own_network = Some(network);
        Some(node)
    }

    /// Whether this machine can run a node; skips (or fails under CI) when it cannot.
    pub fn available(test: &str) -> bool {
        require::network_namespaces(test) && TOOLS.iter().all(|tool| require::command(test, tool))
    }

    /// Starts a node inside `host`'s network namespace and waits until it is online with a DC.
    /// For clusters of several nodes, give every node the same `members`.
    pub fn start_in(host: &Host, options: NodeOptions) -> io::Result<PacemakerNode> {
        let seq = NEXT_NODE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "hapxt-pcmk-{}-{seq}-{}",
            std::process::id(),
            options.name
        ));
        let members = if options.members.is_empty() {
            vec![(options.name.clone(), options.ring_address.clone())]
        } else {
            options.members.clone()
        };
        let spec = NodeSpec {
            name: options.name.clone(),
            netns: host.netns.clone(),
            dir,
            members,
            cluster_name: CLUSTER_NAME.to_string(),
            binds: ocf_binds(&options.ocf_providers)?,
        };
        // A directory left by an earlier run with this pid and sequence number is stale.
        let _ = fs::remove_dir_all(&spec.dir);
        spec.prepare()?;
        let pacemakerd = spec.spawn(false)?;
        let node = PacemakerNode {
            spec,
            pacemakerd,
            own_network: None,
        };
        node.wait_until(options.startup_timeout, |xml| {
            node::all_online(xml, &[node.name()])
        })
        .map_err(|last| {
            io::Error::other(format!(
                "node {} not online with a DC after {:?}; last crm_mon: {last}\n{}",
                node.name(),
                options.startup_timeout,
                node.log_tail(40)
            ))
        })?;
        Ok(node)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The network namespace the node runs in.
    pub fn netns(&self) -> &str {
        &self.spec.netns
    }

    /// The pid of `pacemakerd`, whose namespaces [`PacemakerNode::command`] enters.
    pub fn pid(&self) -> u32 {
        self.pacemakerd.id()
    }

    /// The node's private directory (its `/var/lib/pacemaker` is `DIR/lib`, logs in `DIR/log`).
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    /// The network the node made for itself with [`PacemakerNode::start`].
    pub fn network(&self) -> Option<&Network> {
        self.own_network.as_ref()
    }

    /// A command running `program` inside the node's network, mount and UTS namespaces
    /// (standard input null unless the caller sets it).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        node::command(self.pid(), program)
    }

    /// Runs `args` inside the node to completion.
    pub fn run(&self, args: &[&str]) -> io::Result<Output> {
        node::run(self.pid(), args)
    }

    /// `crm_mon --one-shot --output-as=xml`, as text.
    pub fn crm_mon_xml(&self) -> io::Result<String> {
        node::crm_mon_xml(self.pid())
    }

    /// Polls `crm_mon` until `ready` accepts its XML; returns that XML, or the last one seen.
    pub fn wait_until(
        &self,
        timeout: Duration,
        ready: impl FnMut(&str) -> bool,
    ) -> Result<String, String> {
        node::wait_until(self.pid(), timeout, ready)
    }

    /// The last `lines` lines of Pacemaker's and Corosync's logs, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.spec.log_tail(lines)
    }

    /// Stops Pacemaker (it stops its resources first), then Corosync.
    fn stop(&mut self) {
        if self.pacemakerd.try_wait().ok().flatten().is_none() {
            if let Ok(pid) = i32::try_from(self.pacemakerd.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            if !wait_child(&mut self.pacemakerd, Duration::from_secs(90)) {
                let _ = self.pacemakerd.kill();
                let _ = self.pacemakerd.wait();
            }
        }
        // Corosync was started by the node's launch script, so its pid is ours to end.
        if let Some(pid) = self.spec.corosync_pid() {
            let Ok(raw) = i32::try_from(pid) else { return };
            if kill(Pid::from_raw(raw), Signal::SIGTERM).is_ok() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && netns::process_runs(pid) {
                    thread::sleep(Duration::from_millis(50));
                }
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for PacemakerNode {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "Pacemaker node {} logs:\n{}",
                self.name(),
                self.log_tail(60)
            );
        }
        let _ = fs::remove_dir_all(&self.spec.dir);
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The bind mounts showing `providers` at `/usr/lib/ocf/resource.d/PROVIDER`. A mount point
/// must exist in the shared file system, so missing ones are created (an empty directory there
/// is harmless).
fn ocf_binds(providers: &[(String, PathBuf)]) -> io::Result<Vec<(PathBuf, PathBuf)>> {
    providers
        .iter()
        .map(|(provider, source)| {
            if provider.is_empty() || provider.contains('/') || provider.starts_with('.') {
                return Err(io::Error::other(format!(
                    "bad OCF provider name {provider:?}"
                )));
            }
            let target = Path::new("/usr/lib/ocf/resource.d").join(provider);
            fs::create_dir_all(&target)?;
            Ok((source.clone(), target))
        })
        .collect()
}
