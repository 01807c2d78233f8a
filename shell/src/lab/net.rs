//! The lab's private network: [`crate::netns`] with the lab's naming and addressing.
//!
//! Namespaces are named `hapxl-<id>-<role>`, `<id>` being the pid of the `hapx lab up` that made
//! them; [`stale_namespaces`] finds those whose lab has no state file and whose `up` is gone.
//! Hosts get one IPv4 address in a /[`PREFIX_LEN`] network. Everything else (the bridge, ports,
//! addresses, processes per namespace) is [`crate::netns`]'s, re-exported here.

use std::collections::HashSet;
use std::io;

use crate::netns;
pub use crate::netns::{
    BRIDGE, INTERFACE, add_switch, addresses, enter, ip, kill_all_in, mac, neighbour, port_is_up,
    process_runs, processes_in, set_port, signal,
};

/// Every lab namespace's name starts with this.
pub const NAME_PREFIX: &str = "hapxl-";
/// The lab network's prefix length.
pub const PREFIX_LEN: u8 = 24;

/// The name of the lab namespace `role` of lab `id`.
pub fn netns_name(id: u32, role: &str) -> String {
    format!("{NAME_PREFIX}{id}-{role}")
}

/// Creates the namespace `netns` with `eth0` (address `address` in the lab network) plugged
/// into the switch's bridge through the port `port`; nothing is left behind on failure.
pub fn add_host(switch: &str, netns: &str, port: &str, address: &str) -> io::Result<()> {
    netns::add_host(switch, netns, port, &[&cidr(address)])
}

/// Puts a host's `eth0` back to its one address, as a machine that restarted has it.
pub fn reset_addresses(netns: &str, address: &str) -> io::Result<()> {
    netns::reset_addresses(netns, &cidr(address))
}

/// Deletes a namespace (which removes its interfaces); one already gone is fine.
pub fn delete_netns(netns: &str) -> io::Result<()> {
    netns::delete(netns)
}

/// Lab namespaces whose owner is gone: no state file records their lab (`live_ids`) and the
/// `hapx lab up` whose pid names them no longer runs.
pub fn stale_namespaces(live_ids: &HashSet<u32>) -> Vec<String> {
    netns::stale(NAME_PREFIX, |id| live_ids.contains(&id))
}

fn cidr(address: &str) -> String {
    format!("{address}/{PREFIX_LEN}")
}
