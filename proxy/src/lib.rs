//! hapx-proxy: a load balancer that runs HAProxy configurations.
//!
//! It reads HAProxy 2.6's configuration syntax and command line, so it can stand where HAProxy
//! stood: behind the `haproxy` OCF agent, with the same `haproxy.cfg`.
//!
//! - [`cli`]: HAProxy's command line (`-f`, `-c`, `-D`, `-p`, `-sf`/`-st PID...`).

pub mod cli;
