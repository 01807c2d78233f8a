//! `man/hapx-proxy.cfg.5` documents the configuration language hapx-proxy implements, checked
//! against the code's own tables both ways: every keyword the parser implements
//! (`Support::Yes` in `hapx_proxy::config::keywords`) has an entry in the page's section for
//! its place, and every keyword entry names one it implements (no stale documentation); the
//! same for the ACL fetches, converters, match methods and predefined ACLs (each documented
//! one must parse), the log-format variables, and the runtime API commands a running
//! hapx-proxy lists in its `help`. The documented timeouts, algorithms and options load, the
//! example configuration loads cleanly, what NOT IMPLEMENTED names is not implemented, and the
//! page renders without a groff or man warning.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use hapx_proxy::config::acl::{self, AclError, AclSet};
use hapx_proxy::config::keywords::{self, Scope, Support};
use hapx_proxy::runtime::logformat;
use hapx_tests::man::{self, Entry};
use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::require;

const PAGE: &str = "hapx-proxy.cfg.5";

fn page() -> String {
    std::fs::read_to_string(man::dir().join(PAGE)).expect("man/hapx-proxy.cfg.5 exists")
}

/// The page's sections whose entries are keywords of `scope`.
fn sections_of(scope: Scope) -> &'static [&'static str] {
    match scope {
        Scope::Section => &["SECTIONS"],
        Scope::Global => &["GLOBAL SECTION"],
        Scope::Proxy => &["PROXY KEYWORDS", "RULES", "LOGGING", "HEALTH CHECKS"],
        Scope::Option => &["PROXY OPTIONS"],
        Scope::Bind => &["BIND OPTIONS"],
        Scope::Server => &["SERVER OPTIONS"],
        Scope::Resolvers => &["RESOLVERS SECTION"],
    }
}

const SCOPES: [Scope; 7] = [
    Scope::Section,
    Scope::Global,
    Scope::Proxy,
    Scope::Option,
    Scope::Bind,
    Scope::Server,
    Scope::Resolvers,
];

/// The keyword an entry of a `scope` section documents: its first word, or for options the
/// word after `[no] option`.
fn keyword(scope: Scope, entry: &Entry) -> String {
    let mut words = entry.words().peekable();
    if scope == Scope::Option {
        words.next_if_eq(&"no");
        words.next_if_eq(&"option");
    }
    words.next().unwrap_or_default().to_string()
}

fn entries_of(scope: Scope, entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| sections_of(scope).contains(&e.section.as_str()))
        .cloned()
        .collect()
}

#[test]
fn every_implemented_keyword_has_an_entry_in_its_section() {
    let entries = man::entries(&page());
    let mut checked = 0;
    for (scope, name, support) in keywords::all() {
        if support != Support::Yes {
            continue;
        }
        let documented = entries_of(scope, &entries)
            .iter()
            .any(|e| keyword(scope, e) == name);
        assert!(
            documented,
            "{scope:?} keyword '{name}' is implemented but has no entry in {:?} of man/{PAGE}",
            sections_of(scope)
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} implemented keywords");
}

#[test]
fn every_keyword_entry_is_implemented() {
    let entries = man::entries(&page());
    let mut checked = 0;
    for scope in SCOPES {
        for entry in entries_of(scope, &entries) {
            let kw = keyword(scope, &entry);
            assert_eq!(
                keywords::support(scope, &kw),
                Some(Support::Yes),
                "man/{PAGE} documents `{}` in {}, but '{kw}' is not implemented there",
                entry.text,
                entry.section
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} entries");
}

/// The keywords NOT IMPLEMENTED names (its one-word bold items) are not implemented in any
/// place HAProxy knows them.
#[test]
fn keywords_said_not_implemented_are_not() {
    let text = page();
    let section = text
        .split(".SH NOT IMPLEMENTED\n")
        .nth(1)
        .and_then(|rest| rest.split("\n.SH ").next())
        .expect("man/hapx-proxy.cfg.5 has a NOT IMPLEMENTED section");
    let mut checked = 0;
    for line in section.lines() {
        let word = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            [".B", word] | [".BR", word, ..] => man::plain(word),
            _ => continue,
        };
        let known: Vec<(Scope, Support)> = SCOPES
            .iter()
            .filter_map(|&scope| keywords::support(scope, &word).map(|s| (scope, s)))
            .collect();
        assert!(
            known.iter().all(|(_, s)| *s != Support::Yes),
            "man/{PAGE} says '{word}' is not implemented, but it is: {known:?}"
        );
        checked += usize::from(!known.is_empty());
    }
    assert!(checked >= 5, "only {checked} keywords checked");
}

/// Loads `text` as a configuration; the messages that say something is not there.
fn refusals(text: &str) -> Vec<String> {
    let (_, diags) = hapx_proxy::config::load_text("man.cfg", text, &|_| None);
    diags
        .list
        .iter()
        .filter(|d| d.is_error() || d.message.contains("not implemented"))
        .map(|d| d.text())
        .collect()
}

/// The documented timeouts, balance algorithms and options are taken by the parser as they
/// are written in their entry.
#[test]
fn documented_timeouts_algorithms_and_options_are_accepted() {
    let entries = man::entries(&page());
    let head =
        "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";
    let mut checked = 0;
    for entry in &entries {
        let words: Vec<&str> = entry.words().collect();
        let line = match (entry.section.as_str(), words.as_slice()) {
            ("PROXY KEYWORDS", ["timeout", which, ..]) => format!("timeout {which} 2s"),
            // The algorithm with its required arguments (up to the optional ones).
            ("PROXY KEYWORDS", ["balance", args @ ..]) => {
                let required = args.iter().take_while(|w| !w.starts_with('['));
                let algo = args[0].split('[').next().unwrap_or_default();
                let rest: Vec<&str> = required.skip(1).copied().collect();
                format!("balance {algo} {}", rest.join(" "))
            }
            // The option with its required arguments, a placeholder (`NAME`) given a value.
            ("PROXY OPTIONS", ["option", name, args @ ..]) => {
                let required = args.iter().take_while(|w| !w.starts_with('['));
                let placeholder = |w: &str| w.chars().all(|c| c.is_ascii_uppercase());
                let values: Vec<&str> = required
                    .map(|w| if placeholder(w) { "x" } else { w })
                    .collect();
                format!("option {name} {}", values.join(" "))
            }
            _ => continue,
        };
        let text = format!("{head}  {line}\n");
        let refused = refusals(&text);
        assert!(
            refused.is_empty(),
            "man/{PAGE} documents `{}`, but `{line}` gives {refused:?}",
            entry.text
        );
        checked += 1;
    }
    assert!(checked > 30, "only {checked} entries checked");
}

fn subsection<'a>(entries: &'a [Entry], name: &str) -> Vec<&'a Entry> {
    let found: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.section == "ACLS" && e.subsection == name)
        .collect();
    assert!(!found.is_empty(), "man/{PAGE} has no ACLS/{name} entries");
    found
}

fn first_word(entry: &Entry) -> &str {
    entry.words().next().unwrap_or_default()
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn parses(criterion: &[&str]) -> Result<(), AclError> {
    acl::parse_expr(&strings(criterion), &mut Vec::new()).map(|_| ())
}

/// Each documented fetch, converter, match method and predefined ACL is one hapx takes
/// (an unimplemented one would be an `AclError::Unsupported`).
#[test]
fn documented_acl_parts_are_implemented() {
    let entries = man::entries(&page());
    for entry in subsection(&entries, "Fetches") {
        let written = first_word(entry);
        let name = written.split(['(', '[']).next().unwrap_or_default();
        // A fetch with arguments gets a placeholder one (`req.hdr(x)`, `nbsrv(x)`), or as
        // many numbers as it is written with (0s, else 1s: `req.payload_lv` refuses a
        // length of 0), and a method (`req.payload(0,0) -m found`: a binary sample has no
        // default one).
        let (with_args, numbered) = if written.len() > name.len() {
            let count = written[name.len()..].matches(',').count() + 1;
            let numbers = |n: &str| format!("{name}({})", vec![n; count].join(","));
            (format!("{name}(x)"), [numbers("0"), numbers("1")])
        } else {
            (name.to_string(), [name.to_string(), name.to_string()])
        };
        let parsed = parses(&[&with_args, "--"])
            .or_else(|_| parses(&[&numbered[0], "-m", "found"]))
            .or_else(|_| parses(&[&numbered[1], "-m", "found"]));
        assert_eq!(parsed, Ok(()), "documented fetch `{}`", entry.text);
    }
    let documented: BTreeSet<&str> = subsection(&entries, "Converters")
        .iter()
        .map(|e| first_word(e).split('(').next().unwrap_or_default())
        .collect();
    // Implemented: taken, or refused only for its (missing) arguments.
    let implemented = |conv: &str| match acl::parse_fetch(&format!("path,{conv}")) {
        Ok(_) => true,
        Err(AclError::Bad(m)) => !m.contains("unknown converter"),
        Err(AclError::Unsupported(what)) => !what.starts_with("the converter"),
    };
    for conv in &documented {
        assert!(implemented(conv), "documented converter `{conv}`");
    }
    for conv in keywords::CONVERTERS {
        assert_eq!(
            documented.contains(conv),
            implemented(conv),
            "converter `{conv}`: documented iff implemented"
        );
    }
    for entry in subsection(&entries, "Match methods") {
        let method = entry.words().nth(1).unwrap_or_default();
        assert_eq!(
            parses(&["path", "-m", method, "--"]),
            Ok(()),
            "documented match method `{method}`"
        );
    }
    for entry in subsection(&entries, "Predefined ACLs") {
        let name = first_word(entry);
        let cond = AclSet::default().condition(&strings(&["if", name]), &mut Vec::new());
        assert!(cond.is_ok(), "documented predefined ACL `{name}`: {cond:?}");
    }
}

#[test]
fn every_log_format_variable_has_an_entry() {
    let entries = man::entries(&page());
    let documented: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.section == "LOG-FORMAT VARIABLES")
        .filter_map(|e| first_word(e).strip_prefix('%'))
        .collect();
    let known: BTreeSet<&str> = logformat::variable_names().collect();
    let missing: Vec<_> = known.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&known).collect();
    assert!(missing.is_empty(), "undocumented variables: {missing:?}");
    assert!(stale.is_empty(), "documented, but unknown: {stale:?}");
}

/// A help line's command: its words that are not placeholders (`<bk>/<srv>`, `[<backend>]`).
fn command_words(line: &str) -> Option<Vec<&str>> {
    let (command, _) = line.split_once(" : ")?;
    Some(
        command
            .split_whitespace()
            .filter(|w| !w.starts_with('<') && !w.starts_with('['))
            .collect(),
    )
}

/// Whether `entry` spells `command` (its words in order, with whatever in between).
fn spells(entry: &Entry, command: &[&str]) -> bool {
    let mut words = entry.words();
    entry.words().next() == command.first().copied()
        && command.iter().all(|c| words.any(|w| w == *c))
}

/// The commands a running hapx-proxy lists in `help`, each with an entry in RUNTIME API, and
/// each entry there one of them.
#[test]
fn every_runtime_api_command_has_an_entry() {
    let dir = temp_dir("man-api");
    let sock = dir.join("admin.sock");
    let ready = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {} mode 600 level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind {ready}\n  default_backend be\n\
         backend be\n  server a 127.0.0.1:9\n",
        sock.display()
    );
    let _proxy = Proxy::start(&dir, "man", &config, ready);
    let help = cli(&sock, "help");
    let commands: Vec<Vec<&str>> = help.lines().filter_map(command_words).collect();
    assert!(commands.len() > 10, "help lists too few commands:\n{help}");
    let entries: Vec<Entry> = man::entries(&page())
        .into_iter()
        .filter(|e| e.section == "RUNTIME API")
        .collect();
    for command in &commands {
        assert!(
            entries.iter().any(|e| spells(e, command)),
            "runtime API command `{}` has no entry in man/{PAGE}",
            command.join(" ")
        );
    }
    for entry in &entries {
        assert!(
            commands.iter().any(|c| spells(entry, c)),
            "man/{PAGE} documents `{}`, which `help` does not list",
            entry.text
        );
    }
}

/// The example configurations (`.EX` blocks starting with `global`) load without an error or
/// a "not implemented" warning.
#[test]
fn examples_load_cleanly() {
    let text = page();
    let mut examples = 0;
    for block in text.split(".EX\n").skip(1) {
        let example = man::plain(block.split(".EE").next().unwrap_or_default());
        if !example.starts_with("global") {
            continue;
        }
        let refused = refusals(&example);
        assert!(refused.is_empty(), "example:\n{example}\ngives {refused:?}");
        examples += 1;
    }
    assert!(examples >= 1, "no example configuration in man/{PAGE}");
}

/// Runs `program args... PAGE`; its stderr, which must be empty.
fn warnings(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(man::dir().join(PAGE))
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "80")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program} failed: {out:?}");
    assert!(
        !out.stdout.is_empty() || args.contains(&"-z"),
        "{program} printed nothing"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn page_renders_without_warnings() {
    let test = "page_renders_without_warnings";
    if !require::command(test, "groff") || !require::command(test, "man") {
        return;
    }
    // -ww: every warning groff has; -z: check only, no output.
    assert_eq!(warnings("groff", &["-man", "-Tutf8", "-ww", "-z"]), "");
    assert_eq!(warnings("man", &["--warnings", "-l"]), "");
}
