//! The man pages kept in `man/`, rendered from the binaries' clap definitions and, for the OCF
//! agents, from their meta-data descriptions.
//!
//! `man/` is checked in so that packagers and readers have the pages without building. The test
//! `man_pages` renders every page again and fails when a checked-in page differs; running it
//! with `HAPX_BLESS=1` writes the new pages instead.

use std::path::PathBuf;

/// One rendered page: its file name in `man/` and its roff text.
#[derive(Debug, Clone)]
pub struct ManPage {
    pub file_name: String,
    pub roff: Vec<u8>,
}

/// The `man/` directory of the workspace.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .join("man")
}

/// Every page hapx ships, freshly rendered.
pub fn render_all() -> std::io::Result<Vec<ManPage>> {
    let commands = [
        hapx_shell::cli::command(),
        hapx_proxy::cli::command(),
        hapx_agents::cli::command(),
    ];
    let mut pages = Vec::new();
    for command in commands {
        render_tree(command, &mut pages)?;
    }
    pages.extend(agent_pages());
    Ok(pages)
}

/// The agents' pages (`ocf_hapx_IPaddr2.7`, ...), rendered from the same description that
/// produces their meta-data, as resource-agents does for `ocf_heartbeat_IPaddr2.7`.
pub fn agent_pages() -> Vec<ManPage> {
    hapx_agents::specs()
        .into_iter()
        .map(|spec| ManPage {
            file_name: format!("ocf_hapx_{}.7", spec.name),
            roff: spec
                .man_page("hapx", &format!("hapx {}", env!("CARGO_PKG_VERSION")))
                .into_bytes(),
        })
        .collect()
}

/// Renders `command` and, as `NAME-SUB.1`, each of its subcommands, recursively.
fn render_tree(command: clap::Command, pages: &mut Vec<ManPage>) -> std::io::Result<()> {
    let mut command = command;
    command.build();
    let name = command
        .get_display_name()
        .unwrap_or(command.get_name())
        .replace(' ', "-");
    let mut roff = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name.clone())
        .source(format!("hapx {}", env!("CARGO_PKG_VERSION")))
        .manual("hapx manual")
        .render(&mut roff)?;
    pages.push(ManPage {
        file_name: format!("{name}.1"),
        roff,
    });
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        render_tree(
            sub.clone()
                .display_name(format!("{name}-{}", sub.get_name())),
            pages,
        )?;
    }
    Ok(())
}
