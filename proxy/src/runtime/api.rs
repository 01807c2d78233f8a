//! The runtime API on the stats socket, as HAProxy's CLI speaks it: one line of commands
//! (several separated by `;`), the answer, then the connection closes — unless `prompt`
//! turned on interactive mode.
//!
//! Commands: `help`, `show info`, `show stat`, `show servers state [BACKEND]`, `show backend`,
//! `enable|disable server B/S`, `set server B/S state ready|drain|maint`,
//! `set server B/S weight N[%]`, `set server B/S addr IP [port N]`, `get weight B/S`,
//! `enable|disable frontend F`, `prompt`, `quit`; and `_getsocks` (level admin with
//! `expose-fd listeners`), which hands this process's listening sockets to a new process
//! over SCM_RIGHTS for a reload without a refused connection.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
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
                    (Ok(fds), Ok(stream)) => send_fds(&stream, &fds).await,
                    (Err(msg), Ok(mut stream)) => stream.write_all(msg.as_bytes()).await,
                    (_, Err(e)) => Err(e),
                };
            }
            match cmd {
                "" => {}
                "prompt" => interactive = !interactive,
                "quit" => return Ok(()),
                _ => {
                    write
                        .write_all(execute(&state, conf.level, cmd).as_bytes())
                        .await?
                }
            }
        }
        if !interactive {
            return Ok(());
        }
        write.write_all(b"\n> ").await?;
    }
    Ok(())
}

/// Runs one command; the answer as HAProxy words it.
pub fn execute(state: &State, level: CliLevel, cmd: &str) -> String {
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
            out.push('\n');
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
            Some(fe) => {
                fe.paused.store(words[0] == "disable", Relaxed);
                String::new()
            }
            None => "No such frontend.\n".into(),
        },
        ["set", "server", spec, rest @ ..] if admin => set_server(state, spec, rest),
        ["enable" | "disable" | "set", ..] => denied(),
        _ => format!("Unknown command: '{cmd}'\n\n{HELP}"),
    }
}

fn set_server(state: &State, spec: &str, args: &[&str]) -> String {
    let (_, s) = match state.find_server(spec) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    match args {
        ["state", st] => {
            let admin = match *st {
                "ready" => Admin::Ready,
                "drain" => Admin::Drain,
                "maint" => Admin::Maint,
                _ => return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into(),
            };
            s.set_admin(admin);
            String::new()
        }
        ["weight", w] => {
            let parsed = match w.strip_suffix('%') {
                Some(pct) => pct.parse::<u32>().ok().map(|p| s.opts.weight * p / 100),
                None => w.parse::<u32>().ok(),
            };
            match parsed {
                Some(v) if v <= 256 => {
                    s.weight.store(v, Relaxed);
                    String::new()
                }
                _ => "Require <weight> or <weight%>.\n".into(),
            }
        }
        ["addr", ip, rest @ ..] => {
            let Ok(ip) = ip.parse() else {
                return "Invalid addr\n".into();
            };
            if let ["port", _] = rest {
                return "Changing the port at run time is not supported by hapx.\n".into();
            }
            let old = s.addr();
            s.set_addr(Some(ip));
            format!(
                "IP changed from '{}' to '{ip}' by 'stats socket command'\n",
                old.map_or("(none)".into(), |a| a.to_string())
            )
        }
        _ => "'set server <srv>' only supports 'agent', 'health', 'state', 'weight', 'addr', 'fqdn' and 'check-port'.\n".into(),
    }
}

fn getsocks(conf: &StatsSocket, handover: &Handover) -> Result<Vec<(SocketAddr, OwnedFd)>, String> {
    if conf.level != CliLevel::Admin || !conf.expose_fd_listeners {
        return Err("Permission denied\n".into());
    }
    let list = handover.lock().unwrap_or_else(|e| e.into_inner());
    list.iter()
        .map(|(a, l)| {
            l.try_clone()
                .map(|c| (*a, OwnedFd::from(c)))
                .map_err(|e| format!("{e}\n"))
        })
        .collect()
}

/// Sends "N addr..." then the descriptors in one message.
async fn send_fds(stream: &UnixStream, fds: &[(SocketAddr, OwnedFd)]) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let text = format!(
        "{} {}\n",
        fds.len(),
        fds.iter()
            .map(|(a, _)| a.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let raw: Vec<RawFd> = fds.iter().map(|(_, f)| f.as_raw_fd()).collect();
    loop {
        stream.writable().await?;
        let res = stream.try_io(tokio::io::Interest::WRITABLE, || {
            let cmsg = [ControlMessage::ScmRights(&raw)];
            sendmsg::<()>(
                stream.as_raw_fd(),
                &[IoSlice::new(text.as_bytes())],
                &cmsg,
                MsgFlags::empty(),
                None,
            )
            .map_err(std::io::Error::from)
        });
        match res {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Asks the process behind `path` for its listening sockets (`-x`), blocking; for start-up,
/// before the runtime exists.
pub fn fetch_listeners(path: &Path) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    use anyhow::Context;
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} to take its listeners over",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(b"_getsocks\n")?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 253]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the listeners")?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs().context("reading the control message")? {
        if let ControlMessageOwned::ScmRights(list) = c {
            // SAFETY: the kernel just installed these descriptors in this process for us.
            fds.extend(
                list.into_iter()
                    .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }),
            );
        }
    }
    let n = msg.bytes;
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    if fds.is_empty() {
        anyhow::bail!(
            "{} answered without sockets: {}",
            path.display(),
            text.trim()
        );
    }
    let addrs: Vec<SocketAddr> = text
        .split_whitespace()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    Ok(addrs.into_iter().zip(fds).collect())
}
