//! `hapx-proxy`: see the library's documentation.

use clap::Parser;
use hapx_proxy::cli::{Cli, normalize_args};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(normalize_args(std::env::args_os()));
    anyhow::bail!(
        "hapx-proxy: the proxy itself is not built yet; {} configuration file(s) were named",
        cli.config.len()
    )
}
