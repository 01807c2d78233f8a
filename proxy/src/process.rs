//! The process around the proxy, HAProxy's way: check mode (`-c`), binding before detaching
//! (so a bind error is reported by the starting command), `-D`/`daemon`, the pid file,
//! `chroot`/`user`/`group`, taking listeners over from an old process (`-x`, or the old
//! process's stats socket with `expose-fd listeners` when `-sf`/`-st` name it), and telling
//! old processes to finish (`-sf`: SIGUSR1, soft stop) or to stop (`-st`: SIGTERM).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid};

use crate::cli::Cli;
use crate::config::{self, Diags};
use crate::runtime::{self, Prepared, api, state::State};

/// Runs the command line; the exit code HAProxy would give.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &cli.chdir {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot change to {}", dir.display()))?;
    }
    let (config, diags) = config::load(&cli.config);
    report(&diags, cli.quiet);
    let pid = std::process::id();
    if diags.has_errors() {
        eprintln!("[ALERT]    ({pid}) : config : Fatal errors found in configuration.");
        return Ok(ExitCode::from(1));
    }
    if cli.check {
        if diags.list.iter().any(|d| !d.is_error()) {
            println!("Warnings were found.");
        }
        println!("Configuration file is valid");
        return Ok(ExitCode::SUCCESS);
    }
    let state = Arc::new(State::new(config));
    let mut inherited = take_over(&cli, &state);
    let listeners = runtime::bind_listeners(&state, &mut inherited).map_err(|e| alert(&e))?;
    let clis = runtime::bind_clis(&state).map_err(|e| alert(&e))?;
    drop(inherited);
    let global = &state.config.global;
    let daemon = (cli.daemon || global.daemon) && !cli.debug && !cli.no_background;
    let pidfile = cli.pidfile.clone().or_else(|| global.pidfile.clone());
    if daemon {
        // SAFETY: no thread has been started yet, so the child may do anything.
        match unsafe { nix::unistd::fork() }.context("fork")? {
            ForkResult::Parent { child } => {
                if let Some(p) = &pidfile {
                    write_pidfile(p, child.as_raw() as u32)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            ForkResult::Child => detach()?,
        }
    } else if let Some(p) = &pidfile {
        write_pidfile(p, std::process::id())?;
    }
    drop_privileges(&state).map_err(|e| alert(&e))?;
    signal_old(&cli.soft_finish, Signal::SIGUSR1);
    signal_old(&cli.terminate, Signal::SIGTERM);
    let state = Arc::new(State {
        pid: std::process::id(),
        ..Arc::try_unwrap(state).map_err(|_| anyhow::anyhow!("state still shared"))?
    });
    runtime::run(Prepared {
        state,
        listeners,
        clis,
    })?;
    Ok(ExitCode::SUCCESS)
}

fn report(diags: &Diags, quiet: bool) {
    let pid = std::process::id();
    for d in &diags.list {
        if d.is_error() || !quiet {
            eprintln!("{}", d.render(pid));
        }
    }
}

fn alert(e: &anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("[ALERT]    ({}) : {e:#}", std::process::id())
}

/// The old process's listening sockets: from `-x`, or from its stats socket when reloading.
fn take_over(cli: &Cli, state: &State) -> Vec<(std::net::SocketAddr, std::os::fd::OwnedFd)> {
    let reloading = !cli.soft_finish.is_empty() || !cli.terminate.is_empty();
    let path = cli.takeover_socket.clone().or_else(|| {
        reloading
            .then(|| {
                state.config.global.stats_sockets.iter().find(|s| {
                    s.expose_fd_listeners && s.level == crate::config::model::CliLevel::Admin
                })
            })
            .flatten()
            .map(|s| s.path.clone())
    });
    let Some(path) = path else { return Vec::new() };
    match api::fetch_listeners(&path) {
        Ok(fds) => fds,
        Err(e) => {
            eprintln!(
                "[WARNING]  ({}) : Failed to get the sockets from the old process: {e:#}; binding new ones.",
                std::process::id()
            );
            Vec::new()
        }
    }
}

fn write_pidfile(path: &Path, pid: u32) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path)
        .with_context(|| format!("[ALERT] cannot create pidfile {}", path.display()))?;
    writeln!(f, "{pid}")?;
    Ok(())
}

/// Becomes a background process: new session, standard streams on /dev/null.
fn detach() -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    nix::unistd::setsid().context("setsid")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
    Ok(())
}

fn drop_privileges(state: &State) -> anyhow::Result<()> {
    use nix::unistd::{Gid, Group, Uid, User, setgid, setgroups, setuid};
    let g = &state.config.global;
    let uid = match (&g.user, g.uid) {
        (Some(name), _) => Some(
            User::from_name(name)?
                .with_context(|| format!("unknown user '{name}'"))?
                .uid,
        ),
        (None, Some(u)) => Some(Uid::from_raw(u)),
        _ => None,
    };
    let gid = match (&g.group, g.gid) {
        (Some(name), _) => Some(
            Group::from_name(name)?
                .with_context(|| format!("unknown group '{name}'"))?
                .gid,
        ),
        (None, Some(id)) => Some(Gid::from_raw(id)),
        _ => None,
    };
    if let Some(dir) = &g.chroot {
        nix::unistd::chroot(dir).with_context(|| format!("cannot chroot to {}", dir.display()))?;
        std::env::set_current_dir("/")?;
    }
    if let Some(gid) = gid {
        setgroups(&[gid]).context("setgroups")?;
        setgid(gid).context("setgid")?;
    }
    if let Some(uid) = uid {
        setuid(uid).context("setuid")?;
    }
    Ok(())
}

fn signal_old(pids: &[u32], sig: Signal) {
    for &pid in pids {
        if let Err(e) = kill(Pid::from_raw(pid as i32), sig) {
            eprintln!(
                "[WARNING]  ({}) : cannot signal old process {pid}: {e}",
                std::process::id()
            );
        }
    }
}
