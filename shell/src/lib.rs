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
//! - [`crm`]: the crm configure language (lexer, parser, ids, editing, `show`).
//! - [`session`]: levels, commands and the commit discipline of a crm session.
//! - [`backend`]: the CIB's home (a locked, atomically written file; epoch checks).
//! - [`ra`]: resource agent names and meta-data parameter checks.
//! - [`options`]: the user's preferences (crmsh's `options` level and crm.conf).
//! - [`template`]: crmsh's configuration templates (`configure template`).
//! - [`interactive`]: the terminal shell (rustyline: history, completion, crmsh's prompt).
//! - [`run`]: the binary's entry points (piped, `-f FILE`, one-shot, terminal).
//! - [`mon`]: `hapx status` without Pacemaker: crm_mon's text rendered from the CIB.
//! - [`simulate`]: `hapx simulate`, crm_simulate's output from hapx-cib's scheduler.
//! - [`lab`]: `hapx lab`, a two-node Corosync/Pacemaker lab on a private network of namespaces.
//! - [`netns`]: private networks of namespaces joined by a bridge (used by `hapx demo`,
//!   `hapx lab` and the test harness).

pub mod agents;
pub mod backend;
pub mod cli;
pub mod crm;
pub mod demo;
pub mod driver;
pub mod interactive;
pub mod lab;
pub mod mon;
pub mod netns;
pub mod options;
pub mod ra;
pub mod run;
pub mod session;
pub mod simulate;
pub mod template;
