//! hapx's integration-test harness.
//!
//! The tests in `tests/tests/` exercise the real parts: agents against the kernel in network
//! namespaces, the proxy over real sockets, the engine against Pacemaker's own suite. This
//! library holds what they share:
//!
//! - [`require`]: the skip-or-fail rule for tests that need root, namespaces or installed tools:
//!   on a laptop without them a test skips with a loud line; with `CI` set it fails instead, so a
//!   green CI means the test ran.
//! - [`netns`]: uniquely named network namespaces joined by a bridge, torn down on drop (RAII
//!   over the product's `hapx_shell::netns`).
//! - [`pacemaker`]: real Corosync + Pacemaker nodes in private namespaces (over the product's
//!   launcher, `hapx_shell::lab::node`).
//! - [`agents`]: hapx's agents in a provider directory, run in namespace hosts.
//! - [`wait`]: polling until a condition holds (`eventually`, `alive`).
//! - [`bins`]: the workspace's built binaries (`hapx`, `hapx-ocf`, `hapx-proxy`).
//! - [`executable`]: writing scripts and binaries that a test runs, without `ETXTBSY` races.
//! - [`man`]: rendering the man pages kept in `man/`.
//! - [`shell`]: crm scripts through hapx and crmsh on file CIBs, configuration comparisons, and
//!   crmsh's regression runner replaying its testcases through either shell.
//! - [`shell_try`]: crmsh's regression runner (`evaltest.sh`, `.TRY` blocks) replayed through hapx.

pub mod agents;
pub mod bins;
pub mod cib;
pub mod cib_gen;
pub mod driver;
pub mod executable;
pub mod man;
pub mod netns;
pub mod nghttpd;
pub mod pacemaker;
pub mod peers;
pub mod proxy;
pub mod proxy_balance;
pub mod proxy_dns;
pub mod proxy_lifecycle;
pub mod proxy_rules;
pub mod proxy_stick;
pub mod proxy_tls;
pub mod require;
pub mod shell;
pub mod shell_try;
pub mod wait;
