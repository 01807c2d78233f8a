//! The runtime API on the stats socket, as HAProxy's CLI speaks it: one line of commands
//! (several separated by `;`), each answer followed by an empty line (by the prompt in
//! interactive mode, which `prompt` turns on), then the connection closes. Answers and error
//! messages are HAProxy 2.6's, word for word.
//!
//! Commands: `help`, `show info`, `show stat`, `show servers state [BACKEND]`, `show backend`,
//! `enable|disable server B/S`, `set server B/S state ready|drain|maint`,
//! `set server B/S weight N[%]`, `set server B/S addr IP [port N]`, `get weight B/S`,
//! `enable|disable frontend F`, `prompt`, `quit`; and `_getsocks` (level admin with
//! `expose-fd listeners`), which hands this process's listening sockets to a new process
//! over SCM_RIGHTS for a reload without a refused connection.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::state::{Admin, State};
use super::stats;
use crate::config::model::{CliLevel, StatsSocket};

/// The listening sockets this process may hand over: address and a duplicate descriptor.
pub type Handover = Arc<Mutex<Vec<(SocketAddr, std::net::TcpListener)>>>;

const HELP: &str = "The following commands are valid at this level:
  help                                    : this message
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
  show info                               : report information about the running process
  show stat                               : report counters for each proxy and server
  show servers state [<backend>]          : dump volatile server information (all or for a single backend)
  show backend                            : list backends in the current running config
  get weight <bk>/<srv>                   : report a server's current weight
  enable server <bk>/<srv>                : re-enable a server in maintenance
  disable server <bk>/<srv>               : put a server in maintenance
  enable frontend <frontend>              : re-enable specific frontend
  disable frontend <frontend>             : temporarily disable specific frontend
  set server <bk>/<srv> state <state>     : set a server's state: ready, drain or maint
  set server <bk>/<srv> weight <w>[%]     : change a server's weight
  set server <bk>/<srv> addr <ip> [port <p>] : change a server's address
";

/// Accepts runtime API connections until the process exits.
pub async fn serve(state: Arc<State>, conf: StatsSocket, socket: UnixListener, handover: Handover) {
    loop {
        let Ok((stream, _)) = socket.accept().await else {
            continue;
        };
        let (state, conf, handover) = (state.clone(), conf.clone(), handover.clone());
        tokio::spawn(async move {
            let timeout = state
                .config
                .global
                .stats_timeout
                .unwrap_or(std::time::Duration::from_secs(10));
            let _ = tokio::time::timeout(timeout, session(state, conf, stream, handover)).await;
        });
    }
}

async fn session(
    state: Arc<State>,
    conf: StatsSocket,
    stream: UnixStream,
    handover: Handover,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut interactive = false;
    if interactive {
        write.write_all(b"> ").await?;
    }
    while let Some(line) = lines.next_line().await? {
        for cmd in line.split(';').map(str::trim) {
            if cmd == "_getsocks" {
                let reply = getsocks(&conf, &handover);
                let stream = lines
                    .into_inner()
                    .into_inner()
                    .reunite(write)
                    .map_err(|e| std::io::Error::other(e.to_string()));
                return match (reply, stream) {
                    (Ok(fds), Ok(stream)) => super::handover::send_fds(&stream, &fds).await,
                    (Err(msg), Ok(mut stream)) => stream.write_all(msg.as_bytes()).await,
                    (_, Err(e)) => Err(e),
                };
            }
            match cmd {
                "" => continue,
                "prompt" => interactive = !interactive,
                "quit" => return Ok(()),
                _ => {
                    write
                        .write_all(execute(&state, conf.level, cmd).await.as_bytes())
                        .await?
                }
            }
            // As HAProxy: every answer ends with an empty line, or the prompt.
            write.write_all(end_of_answer(interactive)).await?;
        }
        if !interactive {
            return Ok(());
        }
        if line.trim().is_empty() {
            write.write_all(end_of_answer(true)).await?;
        }
    }
    Ok(())
}

fn end_of_answer(interactive: bool) -> &'static [u8] {
    if interactive { b"\n> " } else { b"\n" }
}

/// Runs one command; the answer as HAProxy words it.
pub async fn execute(state: &State, level: CliLevel, cmd: &str) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let admin = level == CliLevel::Admin;
    let denied = || "Permission denied\n".to_string();
    match words.as_slice() {
        ["help"] => HELP.into(),
        ["show", "info", ..] => stats::info(state),
        ["show", "stat", ..] => stats::csv(state),
        ["show", "servers", "state"] => stats::servers_state(state, None).unwrap_or_else(|e| e),
        ["show", "servers", "state", b] => {
            stats::servers_state(state, Some(b)).unwrap_or_else(|e| e)
        }
        ["show", "backend"] => {
            let mut out = String::from("# name\n");
            for b in &state.backends {
                out.push_str(&b.name);
                out.push('\n');
            }
            out
        }
        ["get", "weight", spec] => match state.find_server(spec) {
            Ok((_, s)) => format!("{} (initial {})\n", s.weight.load(Relaxed), s.opts.weight),
            Err(e) => e.into(),
        },
        ["enable" | "disable", "server", spec] if admin => {
            let admin_state = if words[0] == "enable" {
                Admin::Ready
            } else {
                Admin::Maint
            };
            match state.find_server(spec) {
                Ok((_, s)) => {
                    s.set_admin(admin_state);
                    String::new()
                }
                Err(e) => e.into(),
            }
        }
        ["enable" | "disable", "frontend", name] if admin => match state.frontend(name) {
            Some(fe) => match (fe.set_paused(words[0] == "disable"), words[0]) {
                (true, _) => {
                    fe.settled().await;
                    String::new()
                }
                (false, "disable") => "All sockets are already disabled.\n".into(),
                (false, _) => "All sockets are already enabled.\n".into(),
            },
            None => "No such frontend.\n".into(),
        },
        ["set", "server", spec, rest @ ..] if admin => set_server(state, spec, rest),
        ["enable" | "disable" | "set", ..] => denied(),
        _ => format!(
            "Unknown command. Please enter one of the following commands only:\n{}",
            HELP.split_once('\n').map_or("", |(_, commands)| commands)
        ),
    }
}

fn set_server(state: &State, spec: &str, args: &[&str]) -> String {
    let (_, s) = match state.find_server(spec) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    match args {
        ["state", st, ..] if matches!(*st, "ready" | "drain" | "maint") => {
            s.set_admin(match *st {
                "ready" => Admin::Ready,
                "drain" => Admin::Drain,
                _ => Admin::Maint,
            });
            String::new()
        }
        ["state", ..] => "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into(),
        ["weight", w, ..] => match parse_weight(w, s.opts.weight) {
            Ok(v) => {
                s.weight.store(v, Relaxed);
                String::new()
            }
            Err(e) => e.into(),
        },
        ["addr", ip, rest @ ..] => {
            let Ok(ip) = ip.parse() else {
                return format!("Invalid addr '{ip}' by 'stats socket command'\n");
            };
            if let ["port", _] = rest {
                return "Changing the port at run time is not supported by hapx.\n".into();
            }
            let old = s.addr();
            if old == Some(ip) {
                return "no need to change the addr by 'stats socket command'\n".into();
            }
            s.set_addr(Some(ip));
            format!(
                "IP changed from '{}' to '{ip}' by 'stats socket command'\n",
                old.map_or("(none)".into(), |a| a.to_string())
            )
        }
        _ => "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n".into(),
    }
}

/// `set server B/S weight W[%]` as HAProxy reads it (strtol, then `%` relative to the
/// configured weight, capped at 256), with HAProxy's messages.
fn parse_weight(text: &str, initial: u32) -> Result<u32, &'static str> {
    let digits_at = usize::from(text.starts_with(['+', '-']));
    let end = text[digits_at..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(text.len(), |e| e + digits_at);
    if end == digits_at {
        return Err("Empty weight string empty or preceded by garbage");
    }
    let value: i64 = text[..end].parse().unwrap_or(i64::MAX);
    match &text[end..] {
        "%" if value < 0 => Err("Relative weight must be positive.\n"),
        "%" => Ok((i64::from(initial).saturating_mul(value) / 100).min(256) as u32),
        "" if (0..=256).contains(&value) => Ok(value as u32),
        "" => Err("Absolute weight can only be between 0 and 256 inclusive.\n"),
        _ => Err("Trailing garbage in weight string"),
    }
}

fn getsocks(conf: &StatsSocket, handover: &Handover) -> Result<Vec<(SocketAddr, OwnedFd)>, String> {
    if conf.level != CliLevel::Admin || !conf.expose_fd_listeners {
        return Err("Permission denied\n".into());
    }
    super::handover::duplicates(handover).map_err(|e| format!("{e}\n"))
}

/// Asks the process behind `path` for its listening sockets (`-x`), blocking; for start-up,
/// before the runtime exists.
pub fn fetch_listeners(path: &Path) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    use anyhow::Context;
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} to take its listeners over",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(b"_getsocks\n")?;
    super::handover::receive(&stream)
        .with_context(|| format!("receiving the listeners from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::parse_weight;

    #[test]
    fn weights_are_read_like_haproxy() {
        assert_eq!(parse_weight("10", 20), Ok(10));
        assert_eq!(parse_weight("+7", 20), Ok(7));
        assert_eq!(parse_weight("50%", 20), Ok(10));
        assert_eq!(parse_weight("3000%", 20), Ok(256));
        for (text, error) in [
            ("abc", "Empty weight string empty or preceded by garbage"),
            ("%", "Empty weight string empty or preceded by garbage"),
            ("5x", "Trailing garbage in weight string"),
            (
                "257",
                "Absolute weight can only be between 0 and 256 inclusive.\n",
            ),
            (
                "-1",
                "Absolute weight can only be between 0 and 256 inclusive.\n",
            ),
            ("-5%", "Relative weight must be positive.\n"),
        ] {
            assert_eq!(parse_weight(text, 20), Err(error), "{text}");
        }
    }
}
