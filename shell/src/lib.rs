//! hapx: a crm-compatible cluster shell.
//!
//! Users configure their cluster the way crmsh taught them (`crm configure`, piped scripts,
//! `crm status`); hapx speaks that language to a file-backed embedded single-node cluster by
//! default and to a real Pacemaker cluster when there is one. Installed as `crm` too, it behaves
//! the same.
//!
//! - [`cli`]: the command line.
//! - [`agents`]: `hapx agents install|uninstall`, placing hapx's OCF agents where Pacemaker
//!   looks for them.

pub mod agents;
pub mod cli;
