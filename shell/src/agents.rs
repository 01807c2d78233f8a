//! `hapx agents install|uninstall`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hapx_agents::install::{self, InstallTarget, Outcome};

use crate::cli::AgentsTarget;

/// Installs the agents and prints one line per agent saying what was done.
pub fn install(args: &AgentsTarget) -> Result<()> {
    let target = target(args)?;
    let outcomes = install::install(&target).with_context(|| {
        format!(
            "installing agents under {}",
            target.provider_dir().display()
        )
    })?;
    report(&outcomes);
    Ok(())
}

/// Removes the agents and prints one line per agent saying what was done.
pub fn uninstall(args: &AgentsTarget) -> Result<()> {
    let target = target(args)?;
    let outcomes = install::uninstall(&target)
        .with_context(|| format!("removing agents from {}", target.provider_dir().display()))?;
    report(&outcomes);
    Ok(())
}

fn target(args: &AgentsTarget) -> Result<InstallTarget> {
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => default_binary()?,
    };
    Ok(InstallTarget {
        ocf_root: args.ocf_root.clone(),
        provider: args.provider.clone(),
        binary,
    })
}

/// `hapx-ocf` beside the running `hapx` (how both are installed), else the first on PATH.
fn default_binary() -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hapx-ocf")));
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("hapx-ocf"))
            .collect::<Vec<_>>()
    });
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| Path::is_file(p))
        .map_or_else(
            || bail!("hapx-ocf not found beside hapx nor on PATH; name it with --binary PATH"),
            Ok,
        )
}

fn report(outcomes: &[Outcome]) {
    for outcome in outcomes {
        match outcome {
            Outcome::Linked { link } => println!("installed {}", link.display()),
            Outcome::AlreadyLinked { link } => println!("already installed {}", link.display()),
            Outcome::Replaced { link, saved_as } => println!(
                "installed {} (the agent it replaces is saved as {})",
                link.display(),
                saved_as.display()
            ),
            Outcome::Removed { link } => println!("removed {}", link.display()),
            Outcome::Restored { link } => println!("restored the original {}", link.display()),
            Outcome::NotOurs { path } => println!("left {} alone: not hapx's", path.display()),
        }
    }
}
