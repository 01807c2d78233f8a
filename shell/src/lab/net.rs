//! The lab's private network: a switch namespace holding a bridge, and one namespace per host
//! with an `eth0` plugged into it through a veth pair. Nothing is created in the machine's own
//! namespace, so the lab never touches the host's interfaces and its traffic stays inside
//! namespaces it made.
//!
//! Namespaces are named `hapxl-<id>-<role>`, `<id>` being the pid of the `hapx lab up` that made
//! them; [`stale_namespaces`] finds those whose lab has no state file and whose `up` is gone.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Every lab namespace's name starts with this.
pub const NAME_PREFIX: &str = "hapxl-";
/// The bridge inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// Every host's interface.
pub const INTERFACE: &str = "eth0";
/// The lab network's prefix length.
pub const PREFIX_LEN: u8 = 24;

/// Runs `ip ARGS`; a failure carries its stderr.
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

/// The name of the lab namespace `role` of lab `id`.
pub fn netns_name(id: u32, role: &str) -> String {
    format!("{NAME_PREFIX}{id}-{role}")
}

/// Creates the switch namespace and its bridge.
pub fn add_switch(switch: &str) -> io::Result<()> {
    ip(&["netns", "add", switch])?;
    ip(&["-n", switch, "link", "set", "lo", "up"])?;
    ip(&["-n", switch, "link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["-n", switch, "link", "set", BRIDGE, "up"])?;
    Ok(())
}

/// Creates the namespace `netns` with `eth0` (address `address`) plugged into the switch's
/// bridge through the port `port`.
pub fn add_host(switch: &str, netns: &str, port: &str, address: &str) -> io::Result<()> {
    ip(&["netns", "add", netns])?;
    ip(&["-n", netns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n", switch, "link", "add", port, "type", "veth", "peer", "name", INTERFACE, "netns",
        netns,
    ])?;
    ip(&["-n", switch, "link", "set", port, "master", BRIDGE, "up"])?;
    let cidr = format!("{address}/{PREFIX_LEN}");
    ip(&["-n", netns, "addr", "add", &cidr, "dev", INTERFACE])?;
    ip(&["-n", netns, "link", "set", INTERFACE, "up"])?;
    Ok(())
}

/// Sets a host's bridge port up or down: down cuts the host off the lab network.
pub fn set_port(switch: &str, port: &str, up: bool) -> io::Result<()> {
    ip(&[
        "-n",
        switch,
        "link",
        "set",
        port,
        if up { "up" } else { "down" },
    ])
    .map(drop)
}

/// Whether a host's bridge port is administratively up.
pub fn port_is_up(switch: &str, port: &str) -> io::Result<bool> {
    let out = ip(&["-n", switch, "-o", "link", "show", port])?;
    Ok(out
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP")))
}

/// The IPv4 addresses on a host's `eth0`.
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

/// Puts a host's `eth0` back to its one address, as a machine that restarted has it.
pub fn reset_addresses(netns: &str, address: &str) -> io::Result<()> {
    ip(&["-n", netns, "addr", "flush", "dev", INTERFACE])?;
    let cidr = format!("{address}/{PREFIX_LEN}");
    ip(&["-n", netns, "addr", "add", &cidr, "dev", INTERFACE]).map(drop)
}

/// The MAC address of a host's `eth0`.
pub fn mac(netns: &str) -> io::Result<String> {
    let out = ip(&["-n", netns, "-o", "link", "show", INTERFACE])?;
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .map(str::to_string)
        .ok_or_else(|| io::Error::other(format!("no MAC address on {INTERFACE} in {netns}")))
}

/// The MAC address `netns` has in its neighbour table for `address`, if any.
pub fn neighbour(netns: &str, address: &str) -> io::Result<Option<String>> {
    let out = ip(&["-n", netns, "neigh", "show", address, "dev", INTERFACE])?;
    let mut words = out.split_whitespace();
    Ok(words
        .find(|w| *w == "lladdr")
        .and_then(|_| words.next())
        .map(str::to_string))
}

/// Deletes a namespace (which removes its interfaces); one already gone is fine.
pub fn delete_netns(netns: &str) -> io::Result<()> {
    if !Path::new("/run/netns").join(netns).exists() {
        return Ok(());
    }
    ip(&["netns", "del", netns]).map(drop)
}

/// The namespaces named by the lab naming scheme, with the id in their name.
pub fn lab_namespaces() -> Vec<(String, u32)> {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let id = name
                .strip_prefix(NAME_PREFIX)?
                .split('-')
                .next()?
                .parse()
                .ok()?;
            Some((name, id))
        })
        .collect()
}

/// Lab namespaces whose owner is gone: no state file records their lab (`live_ids`) and the
/// `hapx lab up` whose pid names them no longer runs.
pub fn stale_namespaces(live_ids: &HashSet<u32>) -> Vec<String> {
    lab_namespaces()
        .into_iter()
        .filter(|(_, id)| !live_ids.contains(id) && !process_runs(*id))
        .map(|(name, _)| name)
        .collect()
}

/// Whether `pid` is a process that has not exited (a zombie has).
pub fn process_runs(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !status.is_empty() && !status.contains("State:\tZ")
}

/// The processes running in network namespace `netns`: everything the lab started for that
/// host (the namespace is the lab's own, so nothing else lives there).
pub fn processes_in(netns: &str) -> Vec<u32> {
    let Ok(target) = fs::metadata(Path::new("/run/netns").join(netns)) else {
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

/// Kills every process in `netns` (SIGKILL) and waits until they are gone.
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

/// Moves the calling thread into network namespace `netns` (only this thread, and threads it
/// creates afterwards).
pub fn enter(netns: &str) -> io::Result<()> {
    let file = File::open(Path::new("/run/netns").join(netns))?;
    nix::sched::setns(file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}
