//! `hapx-proxy`: see the library's documentation.

use std::process::ExitCode;

use clap::Parser;
use hapx_proxy::cli::{Cli, normalize_args};

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_args(std::env::args_os()));
    if !cli.soft_finish.is_empty() || !cli.terminate.is_empty() {
        hapx_proxy::runtime::peers::set_replacing();
    }
    if let Some(name) = &cli.local_peer {
        hapx_proxy::config::peers::set_local_peer_override(name.clone());
    }
    match hapx_proxy::process::main(cli) {
        Ok(code) => code,
        Err(e) => {
            // An error ends the start: an alert, after the version notices as HAProxy's.
            hapx_proxy::process::tell_version();
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}
