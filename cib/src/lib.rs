//! hapx-cib: Pacemaker's Cluster Information Base (CIB) as Rust values.
//!
//! The CIB is the XML document Pacemaker keeps on every node: the cluster's configuration
//! (options, nodes, resources, constraints) and its status (which operations ran where, with what
//! result). hapx reads and writes it losslessly and, in later layers, schedules it the way
//! Pacemaker 2.1.5's scheduler does.
//!
//! This crate is pure: no processes, sockets, files or wall clock are touched inside it. Callers
//! hand it text and (for scheduling) the current time.
//!
//! The layers, bottom up:
//! - [`xml`]: a lossless element tree with source line numbers, so that every element or
//!   attribute the engine does not understand survives a read–write round trip, and errors can
//!   name the line they come from.

#![forbid(unsafe_code)]

pub mod xml;
