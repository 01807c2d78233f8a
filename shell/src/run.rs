//! The binary's crm entry points: piped scripts, `-f FILE`, one-shot commands, a terminal.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, Result};

use crate::backend::Backend;
use crate::session::{Level, Session};

/// How a crm run ended: the process exit status.
pub fn exit_code(session: &Session) -> std::process::ExitCode {
    if session.errors() == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

static WAIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-w`: sessions started from now on wait for the cluster after each live commit.
pub fn set_wait(wait: bool) {
    WAIT.store(wait, std::sync::atomic::Ordering::Relaxed);
}

static FORCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static REGRESSION_TESTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-F`: sessions started from now on answer yes to every question.
pub fn set_force(force: bool) {
    FORCE.store(force, std::sync::atomic::Ordering::Relaxed);
}

/// `-R`: sessions started from now on echo their input lines as `.INP: LINE`.
pub fn set_regression_tests(on: bool) {
    REGRESSION_TESTS.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn new_session(level: Level, interactive: bool) -> Session {
    let mut session = Session::new(Backend::detect(), level, interactive);
    session.stream = true;
    session.wait = WAIT.load(std::sync::atomic::Ordering::Relaxed);
    session.force = FORCE.load(std::sync::atomic::Ordering::Relaxed);
    session.echo_input = REGRESSION_TESTS.load(std::sync::atomic::Ordering::Relaxed);
    session
}

/// A one-shot command's words as crmsh reads them: quoted again where they hold a space
/// (crmsh's `add_quotes`, when the `add-quotes` option is on), joined into one line and split
/// by the crm lexer, so `crm node attribute n1 set a "1 2 3"` means the same from any shell.
fn one_shot(session: &mut Session, words: Vec<String>) {
    let quoted: Vec<String> = words
        .into_iter()
        .map(|w| {
            if !session.options.add_quotes() || !w.contains(' ') {
                return w;
            }
            let q = if w.contains('"') { '\'' } else { '"' };
            if w.contains(q) {
                w
            } else {
                format!("{q}{w}{q}")
            }
        })
        .collect();
    session.run_line(&quoted.join(" "), None);
}

/// `hapx configure [CMD...]` (and `hapx` alone): a one-shot command, else stdin as a script or,
/// on a terminal, an interactive session.
pub fn crm(level: Level, args: &[String]) -> Result<std::process::ExitCode> {
    if !args.is_empty() {
        let mut session = new_session(Level::Top, false);
        let mut words = Vec::new();
        if level == Level::Configure {
            words.push("configure".to_string());
        }
        words.extend(args.iter().cloned());
        one_shot(&mut session, words);
        return Ok(exit_code(&session));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let mut session = new_session(level, true);
        interactive(&mut session)?;
        return Ok(exit_code(&session));
    }
    let mut script = String::new();
    stdin
        .lock()
        .read_to_string(&mut script)
        .context("reading the crm script from stdin")?;
    let mut session = new_session(level, false);
    session.run_script(&script);
    Ok(exit_code(&session))
}

/// A top-level command given as arguments: `hapx status`, `hapx resource stop vip`.
pub fn top(word: &str, args: &[String]) -> Result<std::process::ExitCode> {
    let mut session = new_session(Level::Top, false);
    let mut words = vec![word.to_string()];
    words.extend(args.iter().cloned());
    one_shot(&mut session, words);
    Ok(exit_code(&session))
}

/// `hapx -f FILE`: the file as a script at the top level.
pub fn file(path: &Path) -> Result<std::process::ExitCode> {
    let script =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut session = new_session(Level::Top, false);
    session.run_script(&script);
    Ok(exit_code(&session))
}

/// The prompt crmsh shows: `crm(live/HOST)configure# `.
pub fn prompt(level: Level) -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!("crm(live/{host}){}# ", level.name())
}

/// A session on a terminal.
fn interactive(session: &mut Session) -> Result<()> {
    crate::interactive::run(session)
}
