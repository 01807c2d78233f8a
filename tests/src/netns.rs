//! Private test networks made of network namespaces: the RAII harness over the product's
//! [`hapx_shell::netns`], which `hapx demo` and `hapx lab` use too.
//!
//! A [`Network`] is a switch (a namespace holding a bridge) and hosts (one namespace each, with
//! an `eth0` veth whose peer is a port of that bridge). Nothing is created in the machine's own
//! namespace, so no test can disturb its interfaces, and traffic between hosts never leaves the
//! namespaces the test made.
//!
//! Every namespace is named `hapxt-<pid>-<seq>-<role>`, unique per process and network. Dropping
//! the [`Network`] ends the processes it started (by their pid) and deletes its namespaces, which
//! removes their interfaces with them. A test process that was killed before it could drop its
//! networks leaves namespaces named after a pid that no longer runs; the next [`Network::new`]
//! removes those.
//!
//! Addresses in tests come from the documentation ranges (192.0.2.0/24, 2001:db8::/32), which
//! never name a real host.

use std::io;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use hapx_shell::netns;
pub use hapx_shell::netns::ip;

const NAME_PREFIX: &str = "hapxt-";

static NEXT_NETWORK: AtomicU32 = AtomicU32::new(0);

/// A switch and the hosts plugged into it; torn down on drop.
#[derive(Debug)]
pub struct Network {
    /// The namespaces; deleted when this is dropped, after `children` are ended.
    inner: netns::Network,
    hosts: Vec<Host>,
    children: Vec<Child>,
}

/// One host of a [`Network`]: a namespace with `lo` and `eth0` up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The short name the test gave it (`client`, `node1`).
    pub name: String,
    /// The namespace's name, for `ip netns exec` or `ip -n`.
    pub netns: String,
    /// The addresses given at creation, with their prefix lengths (`192.0.2.10/24`).
    pub addresses: Vec<String>,
}

impl Host {
    /// The interface plugged into the switch, inside the host's namespace.
    pub const INTERFACE: &'static str = "eth0";

    /// The first address without its prefix length.
    pub fn ip(&self) -> &str {
        self.addresses
            .first()
            .and_then(|a| a.split('/').next())
            .unwrap_or("")
    }
}

impl Network {
    /// Creates the switch namespace and its bridge, after removing namespaces left behind by
    /// test processes that died.
    pub fn new() -> io::Result<Network> {
        netns::remove_stale(NAME_PREFIX);
        let seq = NEXT_NETWORK.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{NAME_PREFIX}{}-{seq}", std::process::id());
        Ok(Network {
            inner: netns::Network::create(prefix)?,
            hosts: Vec::new(),
            children: Vec::new(),
        })
    }

    /// The prefix all of this network's namespace names start with.
    pub fn prefix(&self) -> &str {
        self.inner.prefix()
    }

    /// The namespace holding the bridge.
    pub fn switch_netns(&self) -> &str {
        self.inner.switch()
    }

    /// The hosts added so far.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Adds a host named `name` with `addresses` (CIDR notation; IPv6 ones usable at once,
    /// without duplicate detection) on its `eth0`.
    pub fn add_host(&mut self, name: &str, addresses: &[&str]) -> io::Result<Host> {
        let netns = self.inner.add_host(name, addresses)?;
        let host = Host {
            name: name.to_string(),
            netns,
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        };
        self.hosts.push(host.clone());
        Ok(host)
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn command(&self, host: &Host, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.netns]).arg(program);
        cmd
    }

    /// Runs `args` inside `host`'s namespace to completion and returns its output.
    pub fn run(&self, host: &Host, args: &[&str]) -> io::Result<Output> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        self.command(host, program).args(rest).output()
    }

    /// Starts `command` (usually made by [`Network::command`]) and keeps it, to be ended by pid
    /// when the network is dropped. Returns its pid.
    pub fn spawn(&mut self, mut command: Command) -> io::Result<u32> {
        let child = command.stdin(Stdio::null()).spawn()?;
        let pid = child.id();
        self.children.push(child);
        Ok(pid)
    }

    /// The MAC address of `host`'s `eth0`.
    pub fn mac(&self, host: &Host) -> io::Result<String> {
        netns::mac(&host.netns)
    }

    /// The namespace names this network created and still owns (including those of hosts
    /// whose set-up failed).
    pub fn namespaces(&self) -> Vec<String> {
        self.inner.namespaces()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in &mut self.children {
            end_child(child);
        }
        // `inner` drops after this, deleting the namespaces.
    }
}

/// SIGTERM, a short grace period, then SIGKILL; always reaped. Only our own children get here.
fn end_child(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // The child is not reaped yet, so its pid cannot have been reused by another process.
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// All network namespaces whose name starts with the harness's prefix.
pub fn harness_namespaces() -> Vec<String> {
    netns::list(NAME_PREFIX)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}
