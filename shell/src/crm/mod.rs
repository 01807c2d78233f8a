//! The crm configure language: lexing, parsing, ids, editing and showing.
//!
//! - [`lex`]: logical lines (backslash continuation) and shell-like tokens.
//! - [`parse`]: one command's tokens to the XML crmsh would build.
//! - [`ids`]: crmsh's generated ids (`RSC-instance_attributes`, `RSC-monitor-20`).
//! - [`config`]: a CIB under edit; adding, deleting and renaming objects.
//! - [`show`]: objects back to crm text, formatted like `crm configure show`.
//! - [`meta`]: meta and node attributes set the way crmsh's resource and node levels set them.
//! - [`trace`]: `trace_ra` operation attributes (`resource trace|untrace`).

pub mod config;
pub mod ids;
pub mod lex;
pub mod meta;
pub mod parse;
pub mod show;
pub mod trace;
