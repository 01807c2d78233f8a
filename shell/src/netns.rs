//! Private networks of network namespaces: the one implementation behind `hapx demo`,
//! `hapx lab` and the test harness (`hapx_tests::netns`).
//!
//! A network is a *switch* (a namespace holding the bridge [`BRIDGE`]) and *hosts* (one
//! namespace each, with `lo` and an [`INTERFACE`] veth whose peer is a port of that bridge).
//! Nothing is created in the machine's own namespace, so nothing here can disturb the
//! machine's interfaces, and traffic between hosts never leaves namespaces the caller made.
//!
//! Names follow one scheme: `<scheme><pid>-...-<role>`, where `<scheme>` tells the owners apart
//! (`hapxt-` tests, `hapxd-` the demo, `hapxl-` the lab) and `<pid>` is the process that made
//! them. A process killed before it could clean up leaves names with a pid that no longer runs;
//! [`stale`] and [`remove_stale`] find and delete those.
//!
//! Two ways to use it:
//! - [`Network`]: RAII, for a network that lives as long as one process (the demo, tests):
//!   dropping it deletes every namespace it made, whatever part of the set-up succeeded.
//! - Free functions ([`add_switch`], [`add_host`], [`delete`], ...): for a network that outlives
//!   the process that built it (the lab records the names in its state file). Each set-up
//!   function removes what it made when one of its steps fails, so nothing is half-built.
//!
//! Plus what callers need around such networks: [`enter`] (move a thread into a namespace),
//! [`mac`], [`neighbour`], [`addresses`], bridge ports up or down ([`set_port`],
//! [`port_is_up`]), and the processes living in a namespace ([`processes_in`], [`kill_all_in`]).

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The bridge inside every switch namespace.
pub const BRIDGE: &str = "br0";
/// Every host's interface plugged into the switch.
pub const INTERFACE: &str = "eth0";
/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Runs `ip ARGS` and returns its standard output; a failure (to start, or a non-zero exit)
/// is an error naming the command and carrying its stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::other(format!("ip {}: {e}", args.join(" "))))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(io::Error::other(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Runs `steps`; when one fails, deletes namespace `netns` (which removes its interfaces and
/// the peers of its veths) before returning that error.
fn or_delete(netns: &str, steps: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    steps().inspect_err(|_| {
        let _ = delete(netns);
    })
}

/// Creates the switch namespace `switch` with `lo` and the bridge up. On failure nothing is
/// left behind.
pub fn add_switch(switch: &str) -> io::Result<()> {
    ip(&["netns", "add", switch])?;
    or_delete(switch, || {
        ip(&["-n", switch, "link", "set", "lo", "up"])?;
        ip(&["-n", switch, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", switch, "link", "set", BRIDGE, "up"])?;
        Ok(())
    })
}

/// Creates host namespace `netns`: `lo` up, and [`INTERFACE`] up with `addresses` (CIDR
/// notation, IPv4 or IPv6), plugged into `switch`'s bridge through the port `port`. IPv6
/// addresses get `nodad`, so they are usable at once instead of after duplicate detection.
/// On failure nothing is left behind (the namespace, and with it both ends of the veth).
pub fn add_host(switch: &str, netns: &str, port: &str, addresses: &[&str]) -> io::Result<()> {
    ip(&["netns", "add", netns])?;
    or_delete(netns, || {
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", netns, "link", "add", INTERFACE, "type", "veth", "peer", "name", port, "netns",
            switch,
        ])?;
        ip(&["-n", switch, "link", "set", port, "master", BRIDGE, "up"])?;
        for address in addresses {
            let mut args = vec!["-n", netns, "address", "add", address, "dev", INTERFACE];
            if address.contains(':') {
                args.push("nodad");
            }
            ip(&args)?;
        }
        ip(&["-n", netns, "link", "set", INTERFACE, "up"])?;
        Ok(())
    })
}

/// Deletes namespace `netns` (which removes its interfaces); one already gone is fine.
pub fn delete(netns: &str) -> io::Result<()> {
    if !Path::new(NETNS_DIR).join(netns).exists() {
        return Ok(());
    }
    ip(&["netns", "del", netns]).map(drop)
}

/// Every named namespace whose name starts with `scheme`, with the pid that follows `scheme`
/// in its name (`None` when none does).
pub fn list(scheme: &str) -> Vec<(String, Option<u32>)> {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let rest = name.strip_prefix(scheme)?;
            let pid = rest.split('-').next().and_then(|p| p.parse().ok());
            Some((name, pid))
        })
        .collect()
}

/// The namespaces of `scheme` whose owner is gone: the pid in their name no longer runs and
/// `keep` does not claim it (the lab keeps pids its state files still record).
pub fn stale(scheme: &str, keep: impl Fn(u32) -> bool) -> Vec<String> {
    list(scheme)
        .into_iter()
        .filter_map(|(name, pid)| pid.filter(|p| !keep(*p) && !process_runs(*p)).map(|_| name))
        .collect()
}

/// Deletes the namespaces of `scheme` whose owning process no longer runs.
pub fn remove_stale(scheme: &str) {
    for name in stale(scheme, |_| false) {
        let _ = delete(&name);
    }
}

/// A switch and its hosts, deleted on drop: for networks that live as long as one process.
#[derive(Debug)]
pub struct Network {
    prefix: String,
    switch: String,
    hosts: Vec<String>,
}

impl Network {
    /// Creates the switch namespace `<prefix>-sw` and its bridge. `prefix` is the scheme and
    /// the owner's pid (`hapxd-1234`), plus anything that makes it unique in that process.
    /// The caller removes stale namespaces of its scheme first ([`remove_stale`]).
    pub fn create(prefix: String) -> io::Result<Network> {
        let switch = format!("{prefix}-sw");
        add_switch(&switch)?;
        Ok(Network {
            prefix,
            switch,
            hosts: Vec::new(),
        })
    }

    /// The prefix every namespace name of this network starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace holding the bridge.
    pub fn switch(&self) -> &str {
        &self.switch
    }

    /// Adds host namespace `<prefix>-<role>` with `addresses` (CIDR) on its [`INTERFACE`];
    /// returns the namespace's name. The name counts as this network's even when a later step
    /// fails ([`add_host`] has removed it then, and its deletion on drop is a no-op), so
    /// callers can list what a failed set-up tried to make; a name that existed before is
    /// never claimed.
    pub fn add_host(&mut self, role: &str, addresses: &[&str]) -> io::Result<String> {
        let netns = format!("{}-{role}", self.prefix);
        let port = format!("p{}", self.hosts.len());
        let existed = Path::new(NETNS_DIR).join(&netns).exists();
        let made = add_host(&self.switch, &netns, &port, addresses);
        if !existed {
            self.hosts.push(netns.clone());
        }
        made.map(|()| netns)
    }

    /// Every namespace this network made (hosts, then the switch).
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = self.hosts.clone();
        all.push(self.switch.clone());
        all
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for netns in self.namespaces() {
            let _ = delete(&netns);
        }
    }
}

/// Sets bridge port `port` of `switch` up or down: down cuts its host off the network.
pub fn set_port(switch: &str, port: &str, up: bool) -> io::Result<()> {
    let state = if up { "up" } else { "down" };
    ip(&["-n", switch, "link", "set", port, state]).map(drop)
}

/// Whether bridge port `port` of `switch` is administratively up.
pub fn port_is_up(switch: &str, port: &str) -> io::Result<bool> {
    let out = ip(&["-n", switch, "-o", "link", "show", port])?;
    Ok(out
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP")))
}

/// The IPv4 addresses (without prefix length) on host `netns`'s [`INTERFACE`].
pub fn addresses(netns: &str) -> io::Result<Vec<String>> {
    let out = ip(&["-n", netns, "-o", "-4", "addr", "show", "dev", INTERFACE])?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next().map(str::to_string)
        })
        .collect())
}

/// Puts host `netns`'s [`INTERFACE`] back to the one address `cidr`, as a machine that
/// restarted has it.
pub fn reset_addresses(netns: &str, cidr: &str) -> io::Result<()> {
    ip(&["-n", netns, "addr", "flush", "dev", INTERFACE])?;
    ip(&["-n", netns, "addr", "add", cidr, "dev", INTERFACE]).map(drop)
}

/// The MAC address of host `netns`'s [`INTERFACE`].
pub fn mac(netns: &str) -> io::Result<String> {
    let out = ip(&["-n", netns, "-o", "link", "show", INTERFACE])?;
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .map(str::to_string)
        .ok_or_else(|| io::Error::other(format!("no MAC address on {INTERFACE} in {netns}")))
}

/// The MAC address host `netns` has in its neighbour table for `address`, if any.
pub fn neighbour(netns: &str, address: &str) -> io::Result<Option<String>> {
    let out = ip(&["-n", netns, "neigh", "show", address, "dev", INTERFACE])?;
    let mut words = out.split_whitespace();
    Ok(words
        .find(|w| *w == "lladdr")
        .and_then(|_| words.next())
        .map(str::to_string))
}

/// Moves the calling thread into network namespace `netns`: sockets it opens from then on
/// live there (only this thread, and threads it creates afterwards).
pub fn enter(netns: &str) -> io::Result<()> {
    let file = File::open(Path::new(NETNS_DIR).join(netns))?;
    nix::sched::setns(file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Whether `pid` is a process that has not exited (a zombie has).
pub fn process_runs(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !status.is_empty() && !status.contains("State:\tZ")
}

/// The processes (zombies included) whose network namespace is `netns`. Meant for namespaces
/// the caller made, where nothing else lives.
pub fn processes_in(netns: &str) -> Vec<u32> {
    let Ok(target) = fs::metadata(Path::new(NETNS_DIR).join(netns)) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
        .collect()
}

/// Sends `signal` to `pid`; a process already gone is fine.
pub fn signal(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Kills every running process in `netns` (SIGKILL) and waits, up to 5 s, until none runs.
pub fn kill_all_in(netns: &str) {
    for _ in 0..50 {
        let pids: Vec<u32> = processes_in(netns)
            .into_iter()
            .filter(|p| process_runs(*p))
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            signal(pid, Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
