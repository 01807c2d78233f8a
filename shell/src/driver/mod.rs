//! The local driver: hapx's embedded single-node cluster.
//!
//! Without Pacemaker, `hapx cluster start` makes this machine match the file CIB the way
//! Pacemaker's controller and executor would on a one-node cluster: it schedules the CIB with
//! hapx-cib, runs each action of the transition through the OCF executor of hapx-agents in the
//! transition's order and with each operation's timeout, and records every result in the CIB's
//! status section exactly where and how Pacemaker records it, so `crm_mon`, `crm_simulate -x`
//! and `crm_verify -x` read the same story.
//!
//! - [`run`]: the loop (schedule, execute, record, watch; recurring monitors; failure-timeout;
//!   shutdown in reverse order).
//! - [`action`]: one operation through the executor (agent path, parameters, timeout, outcome).
//! - [`history`]: the status section as the controller writes it (`lrm_rsc_op`, fail counts,
//!   `resource cleanup`).
//! - [`reload`]: agent reloads (`reload-agent`, legacy `reload`) and the restart digests that
//!   let the engine choose a reload over a restart.
//! - [`inflight`]: waiting for the operations a killed driver left running.
//! - [`store`]: locked read-modify-write of the CIB file.
//! - [`lock`]: one driver per CIB.
//! - [`control`]: `hapx cluster start|stop|status`.
//!
//! Failures are handled the way Pacemaker handles them because the decisions are the engine's:
//! the driver records a failed operation and its fail count, and the next schedule applies
//! on-fail (restart, stop, block, ignore, standby), migration-threshold and failure-timeout.

pub mod action;
pub mod control;
pub mod history;
pub mod inflight;
pub mod lock;
pub mod reload;
pub mod run;
pub mod store;

pub use run::{Driver, DriverConfig, DriverError};
