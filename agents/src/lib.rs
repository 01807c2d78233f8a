//! hapx-agents: OCF resource agents for a floating IP and its load balancer.
//!
//! Pacemaker runs resource agents as executables that follow the Open Cluster Framework (OCF)
//! resource-agent API: the action is the first argument (`start`, `stop`, `monitor`, ...), the
//! parameters arrive as `OCF_RESKEY_<name>` environment variables, and the exit code is the
//! answer. This crate holds:
//!
//! - the contract as types: [`ocf`] (exit codes, actions), [`spec`] (one description per agent,
//!   from which meta-data, the man page and usage are generated), [`params`] (typed
//!   `OCF_RESKEY_*` reading with errors naming the parameter), [`log`] (ocf-shellfuncs-style
//!   logging), [`agent`] (dispatch and the failure → exit-reason rule);
//! - [`exec`]: running any OCF agent with a timeout, as Pacemaker's executor does;
//! - the agents: [`ipaddr2`] (netlink, [`arp`], [`ndisc`]; no programs run) and [`haproxy`];
//! - [`install`]: placing the agents where Pacemaker looks for them
//!   (`<ocf-root>/resource.d/<provider>/<type>`), as links to the multi-call binary `hapx-ocf`.
//!
//! The binary `hapx-ocf` dispatches on the name it was invoked by, so one executable serves as
//! `IPaddr2` and as `haproxy`.

#![deny(unsafe_code)]

pub mod agent;
pub mod arp;
pub mod cli;
pub mod exec;
pub mod haproxy;
pub mod install;
pub mod ipaddr2;
pub mod log;
pub mod ndisc;
pub mod netlink;
pub mod ocf;
pub mod params;
pub mod spec;
mod sys;

/// The agents `hapx-ocf` implements, by the type name Pacemaker knows them under.
pub const AGENT_NAMES: [&str; 2] = ["IPaddr2", "haproxy"];

/// The agent named `name` (one of [`AGENT_NAMES`]).
pub fn agent(name: &str) -> Option<&'static dyn agent::Agent> {
    match name {
        "IPaddr2" => Some(&ipaddr2::IpAddr2),
        "haproxy" => Some(&haproxy::Haproxy),
        _ => None,
    }
}

/// Every agent's description, for man pages and listings.
pub fn specs() -> [&'static spec::AgentSpec; 2] {
    [&ipaddr2::SPEC, &haproxy::SPEC]
}
