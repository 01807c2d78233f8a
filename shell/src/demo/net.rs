//! The demo's private network: a switch namespace holding a bridge, and one namespace per host
//! with an `eth0` plugged into it. Nothing is created in the machine's own namespace, so the
//! demo never touches the host's interfaces, and its traffic stays inside namespaces it made.
//!
//! Namespaces are named `hapxd-<pid>-<role>`. Dropping the [`Network`] deletes them (which
//! removes their interfaces); a demo that was killed outright leaves names with a pid that no
//! longer runs, and the next demo removes those first.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;

const NAME_PREFIX: &str = "hapxd-";
const BRIDGE: &str = "br0";

/// The interface of every host.
pub const INTERFACE: &str = "eth0";

/// A switch and its hosts; deleted on drop.
#[derive(Debug)]
pub struct Network {
    prefix: String,
    switch: String,
    hosts: Vec<String>,
}

/// Runs `ip ARGS`; a failure carries its stderr.
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

impl Network {
    /// Creates the switch, after removing what dead demos left behind.
    pub fn new() -> io::Result<Network> {
        remove_stale_namespaces();
        let prefix = format!("{NAME_PREFIX}{}", std::process::id());
        let switch = format!("{prefix}-sw");
        let network = Network {
            prefix,
            switch: switch.clone(),
            hosts: Vec::new(),
        };
        // From here on, dropping `network` removes whatever part was made.
        ip(&["netns", "add", &switch])?;
        ip(&["-n", &switch, "link", "set", "lo", "up"])?;
        ip(&["-n", &switch, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", BRIDGE, "up"])?;
        Ok(network)
    }

    /// Adds a host namespace with `address` (CIDR) on its `eth0`; returns the namespace name.
    pub fn add_host(&mut self, role: &str, address: &str) -> io::Result<String> {
        let netns = format!("{}-{role}", self.prefix);
        let port = format!("p{}", self.hosts.len());
        ip(&["netns", "add", &netns])?;
        self.hosts.push(netns.clone());
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &netns,
            "link",
            "add",
            INTERFACE,
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
        ip(&["-n", &netns, "address", "add", address, "dev", INTERFACE])?;
        ip(&["-n", &netns, "link", "set", INTERFACE, "up"])?;
        Ok(netns)
    }

    /// Every namespace this network made.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = self.hosts.clone();
        all.push(self.switch.clone());
        all
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for netns in self.namespaces() {
            let _ = ip(&["netns", "del", &netns]);
        }
    }
}

/// Moves the calling thread into network namespace `netns`: sockets it opens from then on
/// live there.
pub fn enter(netns: &str) -> io::Result<()> {
    let file = File::open(Path::new("/run/netns").join(netns))?;
    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Deletes demo namespaces whose process no longer runs.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NAME_PREFIX))
    {
        let pid = name[NAME_PREFIX.len()..].split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
