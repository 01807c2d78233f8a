//! The demo's private network: a [`crate::netns::Network`] (a switch namespace holding a
//! bridge, one namespace per host with an `eth0` plugged into it) whose namespaces are named
//! `hapxd-<pid>-<role>`. Dropping it deletes them; a demo that was killed outright leaves
//! names with a pid that no longer runs, and the next demo removes those first.

use std::io;

use crate::netns;
pub use crate::netns::{INTERFACE, Network, enter};

/// Every demo namespace's name starts with this.
const NAME_PREFIX: &str = "hapxd-";

/// Creates the demo's switch, after removing what dead demos left behind.
pub fn create() -> io::Result<Network> {
    netns::remove_stale(NAME_PREFIX);
    Network::create(format!("{NAME_PREFIX}{}", std::process::id()))
}
