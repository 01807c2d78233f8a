//! The master CLI (`-S PATH[,mode,MODE,user,USER,group,GROUP]`), HAProxy's: `show proc`,
//! `reload`, `show version`, levels, and commands sent on to a worker's runtime API with a
//! prefix: `@1 show info` (the current worker), `@!PID show stat` (any worker, former ones
//! included), `@master show proc`. A connection takes command lines until its client
//! closes it or sends `quit` (with or without `prompt`, which only adds the prompt), with
//! no idle timeout, as HAProxy 2.6's master CLI, and ten at once (more wait to be
//! accepted); a prefix alone (`@1`) makes that worker, by its pid, the target of the
//! commands that follow (the prompt its pid) until `@master` alone, as in HAProxy;
//! `prompt`, `quit`, `operator` and `user` are the master's whatever the target. A reload
//! ends every session, as HAProxy's master executing itself again closes them.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::UnboundedSender;

use super::{Event, Registry};
use crate::config::keywords;
use crate::config::model::CliLevel;
use crate::runtime::master_link::level_byte;

const HELP: &str = "\
The following commands are valid at this level:
  @!<pid>                                 : send a command to the <pid> process
  @<relative pid>                         : send a command to the <relative pid> process
  @master                                 : send a command to the master process
  operator                                : lower the level of the current CLI session to operator
  reload                                  : reload haproxy
  show cli level                          : display the level of the current CLI session
  show proc                               : show processes status
  show version                            : show version of the current process
  user                                    : lower the level of the current CLI session to user
  help [<command>]                        : list matching or all commands
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
";

/// How long a worker has to answer a command sent on (HAProxy's default `stats timeout`).
/// A client may take its time: HAProxy's master CLI sessions have no idle timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest command line (HAProxy's buffer size).
const MAX_LINE: usize = 16 * 1024;
/// Sessions at once (HAProxy's master proxy `maxconn`): the next connection waits in the
/// listener's backlog until one ends, as HAProxy's, so idle clients cannot pile up tasks
/// and descriptors in the master.
const MAX_SESSIONS: usize = 10;

/// One `-S` argument: where, and who may connect.
#[derive(Debug, PartialEq, Eq)]
pub struct Spec {
    pub path: PathBuf,
    pub mode: Option<u32>,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Spec {
    /// Reads `PATH[,mode,MODE][,user,USER][,group,GROUP]` (`unix@PATH` too), HAProxy's
    /// comma-separated bind options.
    pub fn parse(text: &str) -> anyhow::Result<Spec> {
        let mut words = text.split(',');
        let first = words.next().unwrap_or_default();
        let path = first.strip_prefix("unix@").unwrap_or(first);
        if path.is_empty() || !path.starts_with(['/', '.']) && path.contains('@') {
            bail!("-S '{text}': hapx's master CLI listens on a UNIX socket path only");
        }
        let mut spec = Spec {
            path: path.into(),
            mode: None,
            user: None,
            group: None,
        };
        while let Some(option) = words.next() {
            let Some(value) = words.next() else {
                bail!("-S '{text}': '{option}' expects a value");
            };
            match option {
                "mode" => {
                    spec.mode = Some(u32::from_str_radix(value, 8).with_context(|| {
                        format!("-S '{text}': mode '{value}' is not an octal number")
                    })?)
                }
                "user" | "uid" => spec.user = Some(value.into()),
                "group" | "gid" => spec.group = Some(value.into()),
                _ => bail!(
                    "-S '{text}': unknown option '{option}' (hapx knows mode, user, uid, group, gid)"
                ),
            }
        }
        Ok(spec)
    }

    /// Binds the socket (replacing a stale file) with its mode and owner.
    pub fn bind(&self) -> anyhow::Result<std::os::unix::net::UnixListener> {
        let shown = self.path.display();
        let _ = std::fs::remove_file(&self.path);
        let socket = std::os::unix::net::UnixListener::bind(&self.path)
            .with_context(|| format!("cannot bind the master CLI socket '{shown}'"))?;
        if let Some(mode) = self.mode {
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set the mode of '{shown}'"))?;
        }
        let uid = match &self.user {
            Some(u) => Some(user_id(u)?),
            None => None,
        };
        let gid = match &self.group {
            Some(g) => Some(group_id(g)?),
            None => None,
        };
        if uid.is_some() || gid.is_some() {
            nix::unistd::chown(&self.path, uid, gid)
                .with_context(|| format!("cannot change the owner of '{shown}'"))?;
        }
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
}

fn user_id(name: &str) -> anyhow::Result<nix::unistd::Uid> {
    if let Ok(n) = name.parse() {
        return Ok(nix::unistd::Uid::from_raw(n));
    }
    Ok(nix::unistd::User::from_name(name)?
        .with_context(|| format!("unknown user '{name}'"))?
        .uid)
}

fn group_id(name: &str) -> anyhow::Result<nix::unistd::Gid> {
    if let Ok(n) = name.parse() {
        return Ok(nix::unistd::Gid::from_raw(n));
    }
    Ok(nix::unistd::Group::from_name(name)?
        .with_context(|| format!("unknown group '{name}'"))?
        .gid)
}

/// Accepts master CLI connections until the master exits; each ends at the next reload
/// `reloads` counts.
pub async fn serve(
    socket: std::os::unix::net::UnixListener,
    registry: Arc<Mutex<Registry>>,
    events: UnboundedSender<Event>,
    reloads: tokio::sync::watch::Receiver<u64>,
) {
    let Ok(socket) = UnixListener::from_std(socket) else {
        return;
    };
    let sessions = Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    loop {
        // A place first, then the connection: beyond the cap one waits in the backlog.
        let Ok(place) = sessions.clone().acquire_owned().await else {
            return;
        };
        match socket.accept().await {
            Ok((stream, _)) => {
                let mut reloaded = reloads.clone();
                reloaded.mark_unchanged();
                let session = session(stream, registry.clone(), events.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = session => {}
                        _ = reloaded.changed() => {}
                    }
                    drop(place);
                });
            }
            // Out of descriptors, most likely: try again later rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// What a command line asks of the session.
enum Next {
    Continue,
    /// Closes at once (`reload`, a target not found).
    Close,
    /// Closes after the prompt (`quit`, as HAProxy's).
    Quit,
}

async fn session(
    stream: UnixStream,
    registry: Arc<Mutex<Registry>>,
    events: UnboundedSender<Event>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut session = Session {
        level: CliLevel::Admin,
        interactive: false,
        target: None,
        registry,
        events,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut line).await? {
            0 => return Ok(()),
            _ if line.len() > MAX_LINE => {
                return write.write_all(b"Command line too long.\n").await;
            }
            _ => {}
        }
        let line = crate::bytestr::from_bytes(&line);
        // Every command of the line, empty ones too (HAProxy answers those with its help).
        for cmd in line
            .trim_end_matches(['\n', '\r'])
            .split(';')
            .map(str::trim)
        {
            let (answer, next) = session.run(cmd).await;
            write.write_all(&crate::bytestr::to_bytes(&answer)).await?;
            if let Next::Close = next {
                return Ok(());
            }
            // After each command's answer and its own empty line, as HAProxy's.
            if session.interactive {
                write.write_all(session.prompt().as_bytes()).await?;
            }
            if let Next::Quit = next {
                return Ok(());
            }
        }
    }
}

struct Session {
    level: CliLevel,
    interactive: bool,
    /// Where a command without a prefix goes once `@1` or `@!PID` came alone: the pid of
    /// the worker the prefix named then (HAProxy's `pcli_next_pid`, `@1` not read again);
    /// None: the master (or `@master` alone).
    target: Option<u32>,
    registry: Arc<Mutex<Registry>>,
    events: UnboundedSender<Event>,
}

impl Session {
    /// The interactive prompt: the default target's name.
    fn prompt(&self) -> String {
        match self.target {
            Some(pid) => format!("{pid}> "),
            None => "master> ".into(),
        }
    }

    /// Runs one command: its answer (with the empty line that ends an answer) and whether the
    /// connection goes on.
    async fn run(&mut self, mut cmd: &str) -> (String, Next) {
        // `@master CMD` is CMD here (any number of times); `@master` alone makes the master
        // the session's default target again.
        let mut to_master = false;
        while let Some(rest) = cmd.strip_prefix("@master") {
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                break;
            }
            cmd = rest.trim_start();
            to_master = true;
        }
        if to_master && cmd.is_empty() {
            self.target = None;
            return (String::new(), Next::Continue);
        }
        if let Some(rest) = cmd.strip_prefix('@') {
            let (target, command) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            return self.forward(target, command.trim()).await;
        }
        let words: Vec<&str> = cmd.split_whitespace().collect();
        if let Some(next) = self.session_keyword(&words) {
            return (String::new(), next);
        }
        if let Some(pid) = self.target.filter(|_| !to_master) {
            return self.forward_to_pinned(pid, cmd).await;
        }
        let answer = match words.as_slice() {
            [] => format!(
                "Unknown command. Please enter one of the following commands only:\n{}",
                HELP.split_once('\n').map_or("", |(_, commands)| commands)
            ),
            ["help"] => HELP.to_string(),
            ["help", ..] => keywords::cli_usage(&words, keywords::MASTER_CLI),
            ["reload"] => {
                // As HAProxy 2.6: the reload starts and the connection closes, no answer.
                let _ = self.events.send(Event::Reload);
                return (String::new(), Next::Close);
            }
            ["show", "cli", "level"] => format!("{}\n", level_name(self.level)),
            ["show", "version"] => format!("{}\n", env!("CARGO_PKG_VERSION")),
            ["show", "proc"] => self.registry.lock().map_or_else(
                |_| String::new(),
                |r| r.show_proc(env!("CARGO_PKG_VERSION")),
            ),
            // HAProxy's closest master commands (a known one hapx does not run: all of them).
            _ => keywords::cli_refusal(&words, keywords::MASTER_CLI).unwrap_or_else(|| {
                format!(
                    "Unknown command, but maybe one of the following ones is a better match:\n{}",
                    HELP.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n"
                )
            }),
        };
        (answer + "\n", Next::Continue)
    }

    /// The session's own keywords, which HAProxy's master handles whatever the default
    /// target (`pcli_find_and_exec_kw`, by the first word alone); None for any other command.
    fn session_keyword(&mut self, words: &[&str]) -> Option<Next> {
        Some(match *words.first()? {
            "prompt" => {
                self.interactive = !self.interactive;
                Next::Continue
            }
            "quit" => Next::Quit,
            "operator" => self.lower(CliLevel::Operator),
            "user" => self.lower(CliLevel::User),
            _ => return None,
        })
    }

    fn lower(&mut self, to: CliLevel) -> Next {
        self.level = self.level.min(to);
        Next::Continue
    }

    /// `@1 CMD`, `@!PID CMD`; the prefix alone makes that worker the session's default
    /// target, as HAProxy's (its prompt then the worker's pid).
    async fn forward(&mut self, target: &str, command: &str) -> (String, Next) {
        let found = self.registry.lock().ok().and_then(|r| r.link_for(target));
        let Some((pid, link)) = found else {
            return (
                format!("Can't find the target PID matching the prefix '@{target}'\n"),
                Next::Close,
            );
        };
        if command.is_empty() {
            self.target = Some(pid);
            return (String::new(), Next::Continue);
        }
        self.ask(&link, command).await
    }

    /// A command for the default target: the worker named then, even if no longer the
    /// current one; gone, HAProxy's master answers that it cannot connect, and closes.
    async fn forward_to_pinned(&mut self, pid: u32, command: &str) -> (String, Next) {
        let found = self
            .registry
            .lock()
            .ok()
            .and_then(|r| r.link_for(&format!("!{pid}")));
        match found {
            Some((_, link)) => self.ask(&link, command).await,
            None => ("Can't connect to the target CLI!\n".into(), Next::Close),
        }
    }

    /// Runs `command` on a worker: its answer, or why there is none.
    async fn ask(&self, link: &OwnedFd, command: &str) -> (String, Next) {
        match tokio::time::timeout(TIMEOUT, ask_worker(link, self.level, command)).await {
            Ok(Ok(answer)) => (answer, Next::Continue),
            Ok(Err(e)) => (
                format!("The worker did not answer: {e}\n\n"),
                Next::Continue,
            ),
            Err(_) => (
                "The worker did not answer in time.\n\n".into(),
                Next::Continue,
            ),
        }
    }
}

fn level_name(level: CliLevel) -> &'static str {
    match level {
        CliLevel::Admin => "admin",
        CliLevel::Operator => "operator",
        CliLevel::User => "user",
    }
}

/// Passes a fresh connection to the worker over its link and runs `command` on it.
async fn ask_worker(link: &OwnedFd, level: CliLevel, command: &str) -> std::io::Result<String> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let fds = [theirs.as_raw_fd()];
    let level = [level_byte(level)];
    let iov = [std::io::IoSlice::new(&level)];
    // One byte and one descriptor on a socket that carries nothing else: there is room, or
    // the worker stopped reading it and the command fails rather than blocks the master.
    sendmsg::<()>(
        link.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    drop(theirs);
    ours.set_nonblocking(true)?;
    let mut stream = UnixStream::from_std(ours)?;
    // Both ways as bytes: a command or an answer may carry any byte (see `bytestr`).
    let mut line = crate::bytestr::to_bytes(command).into_owned();
    line.push(b'\n');
    stream.write_all(&line).await?;
    stream.shutdown().await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(crate::bytestr::from_vec(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_haproxys_bind_options() {
        let spec = Spec::parse("/run/haproxy-master.sock,mode,600,user,root").unwrap();
        assert_eq!(spec.path, PathBuf::from("/run/haproxy-master.sock"));
        assert_eq!(spec.mode, Some(0o600));
        assert_eq!(spec.user.as_deref(), Some("root"));
        assert_eq!(
            Spec::parse("unix@/x.sock").unwrap().path,
            PathBuf::from("/x.sock")
        );
        for bad in [
            "ipv4@127.0.0.1:9999",
            "/x,mode",
            "/x,mode,9z",
            "/x,level,admin",
            "",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }
}
