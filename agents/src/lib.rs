//! hapx-agents: OCF resource agents for a floating IP and its load balancer.
//!
//! Pacemaker runs resource agents as executables that follow the Open Cluster Framework (OCF)
//! resource-agent API: the action is the first argument (`start`, `stop`, `monitor`, ...), the
//! parameters arrive as `OCF_RESKEY_<name>` environment variables, and the exit code is the
//! answer. This crate holds:
//!
//! - [`ocf`]: that contract as types (exit codes, actions);
//! - [`install`]: placing the agents where Pacemaker looks for them
//!   (`<ocf-root>/resource.d/<provider>/<type>`), as links to the multi-call binary `hapx-ocf`.
//!
//! The binary `hapx-ocf` dispatches on the name it was invoked by, so one executable serves as
//! `IPaddr2` and as `haproxy`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod install;
pub mod ocf;

/// The agents `hapx-ocf` implements, by the type name Pacemaker knows them under.
pub const AGENT_NAMES: [&str; 2] = ["IPaddr2", "haproxy"];
