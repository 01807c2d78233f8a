//! hapx-proxy: a load balancer that runs HAProxy configurations.
//!
//! It reads HAProxy 2.6's configuration syntax and command line, so it can stand where HAProxy
//! stood: behind the `haproxy` OCF agent, with the same `haproxy.cfg`.
//!
//! - [`cli`]: HAProxy's command line (`-f`, `-c`, `-D`, `-p`, `-sf`/`-st PID...`, `-x`).
//! - [`config`]: the configuration language into a typed model, with file:line messages.
//! - [`runtime`]: the running proxy (listeners, balancing, forwarding, checks, DNS, stats,
//!   runtime API).
//! - [`limits`]: file descriptors: `maxsock`, the derived `maxconn`, raising `RLIMIT_NOFILE`.
//! - [`process`]: check mode, daemon, pid file, privileges, reload hand-over.
//! - [`master`]: master-worker mode (`-W`, `-Ws`): the master, its CLI, systemd notifications.
//! - [`bytestr`]: HAProxy's byte strings carried losslessly in Rust strings.
//! - [`crypt`]: `userlist` password hashes checked by the system's libcrypt (libxcrypt).
//! - [`env`]: the environment as HAProxy's process has it (its `HAPROXY_*` variables).

pub mod bytestr;
pub mod cli;
pub mod config;
pub mod crypt;
pub mod env;
pub mod limits;
pub mod master;
pub mod process;
pub mod runtime;
