//! Private test networks made of network namespaces.
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
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const NAME_PREFIX: &str = "hapxt-";
/// The bridge's name inside the switch namespace.
const BRIDGE: &str = "br0";

static NEXT_NETWORK: AtomicU32 = AtomicU32::new(0);

/// A switch and the hosts plugged into it; torn down on drop.
#[derive(Debug)]
pub struct Network {
    prefix: String,
    switch: String,
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
        remove_stale_namespaces();
        let seq = NEXT_NETWORK.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{NAME_PREFIX}{}-{seq}", std::process::id());
        let switch = format!("{prefix}-sw");
        let network = Network {
            prefix,
            switch: switch.clone(),
            hosts: Vec::new(),
            children: Vec::new(),
        };
        // From here on, `network`'s Drop cleans up whatever part of the set-up succeeded.
        ip(&["netns", "add", &switch])?;
        ip(&["-n", &switch, "link", "set", "lo", "up"])?;
        ip(&["-n", &switch, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", BRIDGE, "up"])?;
        Ok(network)
    }

    /// The prefix all of this network's namespace names start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace holding the bridge.
    pub fn switch_netns(&self) -> &str {
        &self.switch
    }

    /// The hosts added so far.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Adds a host named `name` with `addresses` (CIDR notation) on its `eth0`.
    pub fn add_host(&mut self, name: &str, addresses: &[&str]) -> io::Result<Host> {
        let netns = format!("{}-{name}", self.prefix);
        let port = format!("p{}", self.hosts.len());
        ip(&["netns", "add", &netns])?;
        let host = Host {
            name: name.to_string(),
            netns: netns.clone(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        };
        self.hosts.push(host.clone());
        let eth0 = Host::INTERFACE;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &netns,
            "link",
            "add",
            eth0,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch,
        ])?;
        ip(&["-n", &self.switch, "link", "set", &port, "master", BRIDGE])?;
        ip(&["-n", &self.switch, "link", "set", &port, "up"])?;
        for address in addresses {
            // nodad: an IPv6 address is usable at once instead of after duplicate detection.
            let mut args = vec!["-n", &netns, "address", "add", address, "dev", eth0];
            if address.contains(':') {
                args.push("nodad");
            }
            ip(&args)?;
        }
        ip(&["-n", &netns, "link", "set", eth0, "up"])?;
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
        let path = format!("/sys/class/net/{}/address", Host::INTERFACE);
        // /sys shows the namespace of the process reading it, so read it from inside.
        let out = self.run(host, &["cat", &path])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The namespace names this network created and still owns.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.hosts.iter().map(|h| h.netns.clone()).collect();
        names.push(self.switch.clone());
        names
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in &mut self.children {
            end_child(child);
        }
        for netns in self.namespaces() {
            let _ = ip(&["netns", "del", &netns]);
        }
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

/// Runs `ip ARGS`, turning a non-zero exit into an error that carries its stderr.
pub fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// All network namespaces whose name starts with the harness's prefix.
pub fn harness_namespaces() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(NAME_PREFIX))
        .map(str::to_string)
        .collect()
}

/// Deletes harness namespaces whose creating process no longer runs.
fn remove_stale_namespaces() {
    for name in harness_namespaces() {
        let pid = name[NAME_PREFIX.len()..].split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}
