//! `man/hapx-crm.7` documents the crm language hapx implements: every command of every level
//! has an entry, and every example in it is valid input.

use hapx_shell::crm::{lex, parse};
use hapx_shell::session::{
    CONFIGURE_COMMANDS, NODE_COMMANDS, RA_COMMANDS, RESOURCE_COMMANDS, Session, TEMPLATE_COMMANDS,
    TOP_COMMANDS,
};
use hapx_tests::man::{self, plain};

fn page() -> String {
    std::fs::read_to_string(man::dir().join("hapx-crm.7")).expect("man/hapx-crm.7 exists")
}

fn words(entry: &str) -> impl Iterator<Item = &str> {
    entry.split(|c: char| c.is_whitespace() || c == '|')
}

#[test]
fn every_command_has_an_entry() {
    let text = plain(&page());
    let entries: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(".B ").or_else(|| l.strip_prefix(".BR ")))
        .collect();
    for cmd in CONFIGURE_COMMANDS.iter().chain(TOP_COMMANDS) {
        assert!(
            entries.iter().any(|e| words(e).any(|w| w == *cmd)),
            "{cmd} is not documented in man/hapx-crm.7"
        );
    }
    let options = Session::options_commands();
    for (level, subs) in [
        ("resource", RESOURCE_COMMANDS),
        ("node", NODE_COMMANDS),
        ("ra", RA_COMMANDS),
        ("options", options.as_slice()),
        ("template", TEMPLATE_COMMANDS),
    ] {
        for sub in subs {
            assert!(
                entries
                    .iter()
                    .any(|e| e.starts_with(level) && words(e).any(|w| w == *sub)),
                "{level} {sub} is not documented in man/hapx-crm.7"
            );
        }
    }
}

#[test]
fn every_example_parses() {
    let text = plain(&page());
    let mut examples = 0;
    let mut in_example = false;
    let mut block = String::new();
    for line in text.lines() {
        match line {
            ".EX" => in_example = true,
            ".EE" => {
                in_example = false;
                for logical in lex::logical_lines(&block) {
                    let tokens = lex::split(&logical.text).unwrap();
                    let command: Vec<String> = match tokens.first().map(String::as_str) {
                        // The shell around the crm text, and one-shot `hapx configure CMD`.
                        Some("cat" | "EOF") => continue,
                        Some("hapx") if tokens.get(1).map(String::as_str) == Some("configure") => {
                            tokens[2..].to_vec()
                        }
                        Some("hapx") => continue,
                        _ => tokens,
                    };
                    if matches!(
                        command.first().map(String::as_str),
                        Some("commit" | "bye" | "show")
                    ) {
                        continue;
                    }
                    parse::parse(&command)
                        .unwrap_or_else(|e| panic!("example `{}`: {e}", logical.text));
                    examples += 1;
                }
                block.clear();
            }
            _ if in_example => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    assert!(examples >= 10, "only {examples} examples checked");
}
