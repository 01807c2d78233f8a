//! The interactive shell on a terminal: crmsh's prompt (`crm(live/HOST)configure# `), line
//! editing and history (rustyline, kept in `~/.hapx_history`), backslash continuation, and
//! completion of commands, object ids, agent names and agent parameters.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context as _, Result};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};

use crate::ra;
use crate::session::{
    CONFIGURE_COMMANDS, Level, NODE_COMMANDS, RA_COMMANDS, RESOURCE_COMMANDS, Session, TOP_COMMANDS,
};

/// What completion knows about the session: its level and the CIB's object ids.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub level: Option<Level>,
    pub ids: Vec<String>,
    pub resource_ids: Vec<String>,
}

const PRIMITIVE_KEYWORDS: &[&str] = &["meta", "op", "params", "utilization"];

/// Every agent a primitive can name: `ocf:PROVIDER:TYPE`, heartbeat agents also bare.
fn agent_specs() -> Vec<String> {
    let mut out = Vec::new();
    for provider in ra::all_providers() {
        for agent in ra::agents(&provider) {
            if provider == "heartbeat" {
                out.push(agent.clone());
            }
            out.push(format!("ocf:{provider}:{agent}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Parameter names of an agent spec, as `name=` completions.
fn agent_params(spec: &str) -> Vec<String> {
    let Some((class, provider, kind)) = ra::disambiguate(spec) else {
        return Vec::new();
    };
    ra::metadata(&class, provider.as_deref(), &kind)
        .map(|m| {
            m.parameters
                .into_iter()
                .map(|p| format!("{}=", p.name))
                .collect()
        })
        .unwrap_or_default()
}

/// The candidates for the word being typed at `pos`: (start of that word, candidates).
pub fn complete(line: &str, pos: usize, ctx: &Context) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let partial = &before[start..];
    let words: Vec<&str> = before[..start].split_whitespace().collect();
    let mut words: Vec<&str> = words;
    let mut level = ctx.level.unwrap_or(Level::Top);
    // `configure primitive ...` typed at the top completes like the configure level.
    if level == Level::Top && words.first() == Some(&"configure") && !words.is_empty() {
        words.remove(0);
        level = Level::Configure;
        if words.is_empty() {
            return (
                start,
                filter(CONFIGURE_COMMANDS.iter().map(|s| s.to_string()), partial),
            );
        }
    }
    let candidates: Vec<String> = match (level, words.as_slice()) {
        (Level::Top, []) => TOP_COMMANDS.iter().map(|s| s.to_string()).collect(),
        (Level::Configure, []) => CONFIGURE_COMMANDS.iter().map(|s| s.to_string()).collect(),
        (Level::Top, ["resource"]) => RESOURCE_COMMANDS.iter().map(|s| s.to_string()).collect(),
        (Level::Top, ["resource", _, ..]) => ctx.resource_ids.clone(),
        (Level::Top, ["node"]) => NODE_COMMANDS.iter().map(|s| s.to_string()).collect(),
        (Level::Top, ["ra"]) => RA_COMMANDS.iter().map(|s| s.to_string()).collect(),
        (Level::Top, ["ra", "info" | "meta"]) | (Level::Ra, ["info" | "meta"]) => agent_specs(),
        (Level::Ra, []) => RA_COMMANDS.iter().map(|s| s.to_string()).collect(),
        (Level::Template, []) => crate::session::TEMPLATE_COMMANDS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        (Level::Template, ["new", _]) => crate::template::list_templates(),
        (Level::Template, ["load" | "apply" | "show" | "delete", ..]) => {
            crate::template::list_configs()
        }
        (Level::Top, ["cd"]) => vec![
            "configure".into(),
            "options".into(),
            "ra".into(),
            "..".into(),
        ],
        (Level::Options, []) | (Level::Top, ["options"]) => {
            crate::session::Session::options_commands()
                .into_iter()
                .map(String::from)
                .collect()
        }
        (Level::Options, [name]) | (Level::Top, ["options", name]) => crate::options::choices(name),
        (Level::Configure, ["primitive", _]) => agent_specs(),
        (Level::Configure, ["primitive", _, agent, rest @ ..]) => {
            let in_params = rest.iter().rev().find(|w| !w.contains('=')) == Some(&"params");
            let mut c: Vec<String> = PRIMITIVE_KEYWORDS.iter().map(|s| s.to_string()).collect();
            if in_params || rest.is_empty() {
                c.extend(agent_params(agent));
            }
            c
        }
        (Level::Configure, ["show", ..]) => {
            let mut c = ctx.ids.clone();
            c.extend(["xml".to_string(), "changed".to_string()]);
            c
        }
        (Level::Configure, ["delete" | "rename" | "edit", ..]) => ctx.ids.clone(),
        (Level::Configure, ["group" | "clone" | "ms" | "tag", _, ..]) => ctx.resource_ids.clone(),
        (Level::Configure, ["colocation" | "order" | "location", _, ..]) => {
            ctx.resource_ids.clone()
        }
        (Level::Configure, ["monitor"]) => ctx.resource_ids.clone(),
        _ => Vec::new(),
    };
    (start, filter(candidates.into_iter(), partial))
}

fn filter(candidates: impl Iterator<Item = String>, partial: &str) -> Vec<String> {
    let mut out: Vec<String> = candidates.filter(|c| c.starts_with(partial)).collect();
    out.sort();
    out.dedup();
    out
}

/// rustyline's view of the session.
struct CrmHelper {
    context: Rc<RefCell<Context>>,
}

impl Completer for CrmHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = complete(line, pos, &self.context.borrow());
        let pairs = words
            .into_iter()
            .map(|w| {
                // Complete whole words with a space after them, except `name=` pairs.
                let replacement = if w.ends_with('=') {
                    w.clone()
                } else {
                    format!("{w} ")
                };
                Pair {
                    display: w,
                    replacement,
                }
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for CrmHelper {
    type Hint = String;
}

impl Highlighter for CrmHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for CrmHelper {}

impl Helper for CrmHelper {}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HAPX_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".hapx_history")))
}

fn refresh(session: &mut Session, context: &RefCell<Context>) {
    let (ids, resource_ids) = session.completion_ids();
    let mut c = context.borrow_mut();
    c.level = Some(session.level);
    c.ids = ids;
    c.resource_ids = resource_ids;
}

/// Runs the session on the terminal until `quit` or end of input.
pub fn run(session: &mut Session) -> Result<()> {
    let context = Rc::new(RefCell::new(Context::default()));
    let mut editor: Editor<CrmHelper, DefaultHistory> =
        Editor::new().context("starting the line editor")?;
    editor.set_helper(Some(CrmHelper {
        context: Rc::clone(&context),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is the first session's normal state.
        let _ = editor.load_history(path);
    }
    refresh(session, &context);
    let mut number = 0;
    while !session.done {
        let prompt = crate::run::prompt(session.level);
        let mut text = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading from the terminal"),
        };
        number += 1;
        // A trailing backslash continues the command on the next line.
        while text.trim_end().ends_with('\\') {
            let head = text.trim_end().trim_end_matches('\\').to_string();
            match editor.readline("> ") {
                Ok(more) => text = format!("{head} {more}"),
                Err(_) => {
                    text = head;
                    break;
                }
            }
        }
        if !text.trim().is_empty() {
            let _ = editor.add_history_entry(text.as_str());
        }
        session.run_line(&text, Some(number));
        refresh(session, &context);
    }
    session.finish();
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(level: Level) -> Context {
        Context {
            level: Some(level),
            ids: vec!["vip".into(), "web".into(), "cib-bootstrap-options".into()],
            resource_ids: vec!["vip".into(), "web".into()],
        }
    }

    #[test]
    fn completes_commands_ids_and_agents() {
        let c = ctx(Level::Configure);
        assert_eq!(complete("prim", 4, &c), (0, vec!["primitive".to_string()]));
        assert_eq!(complete("show v", 6, &c), (5, vec!["vip".to_string()]));
        assert_eq!(
            complete("colocation c inf: w", 19, &c),
            (18, vec!["web".to_string()])
        );
        let (_, agents) = complete("primitive p ocf:pacemaker:Dum", 29, &c);
        if !ra::agents("pacemaker").is_empty() {
            assert_eq!(agents, vec!["ocf:pacemaker:Dummy".to_string()]);
        }
        let t = ctx(Level::Top);
        assert_eq!(complete("res", 3, &t), (0, vec!["resource".to_string()]));
        assert_eq!(
            complete("resource st", 11, &t).1,
            vec!["start", "status", "stop"]
        );
        assert_eq!(complete("configure sh", 12, &t).1, vec!["show"]);
        if ra::metadata("ocf", Some("heartbeat"), "Dummy").is_ok() {
            let line = "primitive p ocf:heartbeat:Dummy params st";
            assert_eq!(complete(line, line.len(), &c).1, vec!["state="]);
        }
    }
}
