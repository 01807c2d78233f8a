//! hapx-cib: Pacemaker's Cluster Information Base (CIB) as Rust values, and a scheduler that
//! decides what Pacemaker 2.1.5's scheduler decides.
//!
//! The CIB is the XML document Pacemaker keeps on every node: the cluster's configuration
//! (options, nodes, resources, constraints) and its status (which operations ran where, with what
//! result). hapx reads and writes it losslessly and schedules it the way Pacemaker's scheduler
//! does, so that `hapx simulate` prints what `crm_simulate` prints.
//!
//! This crate is pure: no processes, sockets, files or wall clock are touched inside it. Callers
//! hand it text and (for scheduling) the current time.
//!
//! The layers, bottom up:
//! - [`xml`]: a lossless element tree with source line numbers, so that every element or
//!   attribute the engine does not understand survives a read–write round trip, and errors can
//!   name the line they come from.
//! - [`score`]: Pacemaker's saturating INFINITY arithmetic.
//! - [`model`]: typed views of the configuration (options, nodes, primitives, constraints).
//! - [`digest`]: Pacemaker's operation digests, to tell when a resource's parameters changed.
//! - [`status`]: unpacking the status section: node states, what runs where, failures.
//! - [`schedule`]: placement and the actions (with orderings) that get there: a [`schedule::Transition`].
//! - [`execute`]: running a transition the way `crm_simulate` does, recording results in the CIB.
//! - [`render`]: `crm_simulate`'s text output.
//! - [`inject`]: what-if changes (nodes up/down/failed, injected operation results).
//! - [`simulate`]: the whole `crm_simulate -S` pipeline.

#![forbid(unsafe_code)]

pub mod digest;
pub mod execute;
pub mod inject;
pub mod model;
pub mod render;
pub mod schedule;
pub mod score;
pub mod simulate;
pub mod status;
pub mod xml;
