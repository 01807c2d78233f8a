//! The man pages kept in `man/`, rendered from the binaries' clap definitions and, for the OCF
//! agents, from their meta-data descriptions.
//!
//! `man/` is checked in so that packagers and readers have the pages without building. The test
//! `man_pages` renders every page again and fails when a checked-in page differs; running it
//! with `HAPX_BLESS=1` writes the new pages instead.
//!
//! The hand-written pages (`hapx-crm.7`, `hapx-proxy.cfg.5`) are read back as [`entries`] by
//! the tests that keep them complete against the code's own tables.

use std::path::PathBuf;

/// One entry of a hand-written page: the bold tag line after a `.TP` or `.TQ`, in plain text,
/// with the `.SH` section and `.SS` subsection it is under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub subsection: String,
    pub text: String,
}

impl Entry {
    /// The entry's words: split at blanks and at `|` (alternatives).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.text
            .split(|c: char| c.is_whitespace() || c == '|')
            .filter(|w| !w.is_empty())
    }
}

/// Roff text with font escapes and the usual character escapes removed.
pub fn plain(text: &str) -> String {
    text.replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\(dq", "\"")
        .replace("\\e", "\\")
}

/// The entries of a hand-written page (`.TP` or `.TQ` followed by a `.B` line).
pub fn entries(roff: &str) -> Vec<Entry> {
    let (mut section, mut subsection) = (String::new(), String::new());
    let mut tagged = false;
    let mut out = Vec::new();
    for line in roff.lines() {
        let heading = |l: &str, macro_: &str| {
            l.strip_prefix(macro_)
                .map(|h| plain(h).trim_matches('"').to_string())
        };
        if let Some(h) = heading(line, ".SH ") {
            (section, subsection) = (h, String::new());
        } else if let Some(h) = heading(line, ".SS ") {
            subsection = h;
        } else if let Some(tag) = line.strip_prefix(".B ").filter(|_| tagged) {
            out.push(Entry {
                section: section.clone(),
                subsection: subsection.clone(),
                text: plain(tag),
            });
        }
        tagged = matches!(line, ".TP" | ".TQ");
    }
    out
}

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
