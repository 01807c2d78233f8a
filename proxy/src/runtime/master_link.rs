//! A worker's link to its master in master-worker mode (`-W`, `-Ws`, global `master-worker`;
//! the master side is [`crate::master`]).
//!
//! The link is one end of a UNIX socket pair the master made for this worker; its descriptor
//! number comes in the environment variable [`ENV`], which is also what makes a process a
//! worker. Over it:
//!
//! - the worker writes [`READY`] once it listens (bound or taken over its sockets, dropped its
//!   privileges): the master then counts the load a success;
//! - the master passes runtime API connections for its CLI's `@N` / `@!PID` commands: one end
//!   of a fresh socket pair each (SCM_RIGHTS) with one byte naming the session's level, which
//!   the worker serves as a stats socket session;
//! - when the master is gone, even killed, the link reads end-of-file and the worker stops at
//!   once, as HAProxy's workers do: nobody would be left to reload or stop it.

use std::io::{self, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use anyhow::Context;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use tokio::io::Interest;
use tokio::sync::watch;

use super::Stop;
use super::state::State;
use crate::config::model::CliLevel;

/// The environment variable naming the link's descriptor in a worker.
pub const ENV: &str = "HAPX_MASTER_FD";
/// Set to `1` in a worker's environment when its master already said the version notices
/// (see [`crate::process::tell_version`]): HAProxy's worker, a fork, remembers it.
pub const VERSION_TOLD_ENV: &str = "HAPX_VERSION_TOLD";
/// What a worker writes when it serves.
pub const READY: &[u8] = b"READY\n";

/// The worker's end of the link.
#[derive(Debug)]
pub struct Link(UnixStream);

impl Link {
    /// The link this process was started with, if it is a worker. The descriptor must be a
    /// socket: anything else in the variable is an error, not a silently ignored link.
    pub fn from_env() -> anyhow::Result<Option<Link>> {
        let Some(value) = std::env::var_os(ENV) else {
            return Ok(None);
        };
        let fd: RawFd = value
            .to_str()
            .and_then(|v| v.parse().ok())
            .filter(|fd| *fd > 2)
            .with_context(|| format!("{ENV}={value:?} is not a descriptor number"))?;
        // SAFETY: fstat only writes the zeroed struct it is given; a closed descriptor is an
        // error (EBADF), not undefined behaviour.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut stat) } < 0
            || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK
        {
            anyhow::bail!("{ENV}={fd} is not an open socket");
        }
        // SAFETY: the master left this descriptor open for us alone, and it is a socket.
        let stream = unsafe { UnixStream::from_raw_fd(fd) };
        // Neither the descriptor nor its number are for anything this process might start.
        // SAFETY: called at the start of `process::main`, before any thread exists.
        unsafe { std::env::remove_var(ENV) };
        nix::fcntl::fcntl(
            &stream,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
        Ok(Some(Link(stream)))
    }

    /// Tells the master this worker serves.
    pub fn ready(&mut self) -> io::Result<()> {
        self.0.write_all(READY)
    }
}

/// Whether the master said the version notices before starting this worker; the variable
/// is removed, like the link's.
pub fn version_told() -> bool {
    let told = std::env::var_os(VERSION_TOLD_ENV).is_some_and(|v| v == "1");
    // SAFETY: called at the start of `process::main`, before any thread exists.
    unsafe { std::env::remove_var(VERSION_TOLD_ENV) };
    told
}

/// The level byte the master sends with a session.
pub fn level_byte(level: CliLevel) -> u8 {
    match level {
        CliLevel::User => b'u',
        CliLevel::Operator => b'o',
        CliLevel::Admin => b'a',
    }
}

fn level_of(byte: u8) -> CliLevel {
    match byte {
        b'a' => CliLevel::Admin,
        b'o' => CliLevel::Operator,
        _ => CliLevel::User,
    }
}

/// Serves the link: runtime API sessions from the master, passed to `sessions` (which
/// [`super::api::serve`] takes as it takes its sockets' connections, within `stats maxconn`), and
/// a hard stop when it is gone.
pub async fn serve(
    link: Link,
    state: Arc<State>,
    stop: Arc<watch::Sender<Stop>>,
    sessions: tokio::sync::mpsc::UnboundedSender<(CliLevel, tokio::net::UnixStream)>,
) {
    let stream = match link
        .0
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(link.0))
    {
        Ok(s) => s,
        Err(e) => {
            crate::process::say!("[ALERT]    ({}) : master link: {e}", state.pid);
            return;
        }
    };
    loop {
        let received = stream
            .async_io(Interest::READABLE, || receive(stream.as_raw_fd()))
            .await;
        match received {
            Ok(Some((level, fd))) => {
                let session = std::os::unix::net::UnixStream::from(fd);
                let ok = session.set_nonblocking(true).is_ok();
                if let (true, Ok(session)) = (ok, tokio::net::UnixStream::from_std(session)) {
                    // The runtime API is gone only as the process stops.
                    let _ = sessions.send((level, session));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => continue,
            // End of file, or the link broke: the master is gone.
            Ok(None) | Err(_) => {
                crate::process::say!(
                    "[WARNING]  ({}) : the master process is gone; exiting.",
                    state.pid
                );
                stop.send_replace(Stop::Hard);
                return;
            }
        }
    }
}

/// One message: a level byte and a descriptor (`None` at end of file).
fn receive(fd: RawFd) -> io::Result<Option<(CliLevel, OwnedFd)>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    if msg.bytes == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(list) = cmsg {
            // SAFETY: the kernel just installed these descriptors in this process for us.
            fds.extend(
                list.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let mut fds = fds.into_iter();
    match fds.next() {
        Some(fd) => Ok(Some((level_of(byte[0]), fd))),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a message without a descriptor",
        )),
    }
}
