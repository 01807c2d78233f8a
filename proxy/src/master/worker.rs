//! A worker as the master sees it: a child process running this same program with the
//! configuration, linked to the master by a socket pair ([`crate::runtime::master_link`]).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Instant;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use crate::runtime::master_link::{ENV, READY, VERSION_TOLD_ENV};

/// A worker the master started.
#[derive(Debug)]
pub struct Worker {
    pub pid: u32,
    pub started: Instant,
    /// Reloads this worker lived through.
    pub reloads: u32,
    /// It said it was ready (its link closing first is a failed load).
    pub served: bool,
    /// Its readiness (or its link's end) has been read.
    pub reported: bool,
    /// Exited before its readiness was read: handled once it is.
    pub pending_exit: Option<ExitStatus>,
    /// The master's end of the link, for passing CLI sessions.
    pub link: std::sync::Arc<OwnedFd>,
}

/// A worker just started: it has not said it is ready yet.
#[derive(Debug)]
pub struct Started {
    pub worker: Worker,
    pub child: tokio::process::Child,
    /// The link, read until the worker says it is ready.
    pub readiness: UnixStream,
}

/// Set for the workers of a master in the background: such a worker points its standard
/// streams at /dev/null once its start has said what it has to (see
/// [`super::worker_of_background_master`]).
pub(super) const IN_BACKGROUND_ENV: &str = "HAPX_MASTER_IN_BACKGROUND";

/// Starts `exe` as a worker with `args`; `in_background`: the master is a daemon.
pub fn start(exe: &Path, args: Vec<OsString>, in_background: bool) -> io::Result<Started> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let fd = theirs.as_raw_fd();
    let mut command = tokio::process::Command::new(exe);
    command.args(args).env(ENV, fd.to_string());
    if in_background {
        command.env(IN_BACKGROUND_ENV, "1");
    } else {
        command.env_remove(IN_BACKGROUND_ENV);
    }
    if crate::process::version_told() {
        command.env(VERSION_TOLD_ENV, "1");
    } else {
        command.env_remove(VERSION_TOLD_ENV);
    }
    // SAFETY: between fork and exec only fcntl and sigaction, which are async-signal-safe:
    // the fcntl on a descriptor this process owns (the worker's end must survive the exec,
    // the master's must not); the stop signals the master came with ignored are ignored in
    // the worker, as HAProxy's workers inherit them.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            crate::process::ignore_inherited_in_child()
        });
    }
    let child = command.spawn()?;
    drop(theirs);
    let pid = child.id().unwrap_or_default();
    let readiness = std::os::unix::net::UnixStream::from(ours.try_clone()?);
    readiness.set_nonblocking(true)?;
    Ok(Started {
        worker: Worker {
            pid,
            started: Instant::now(),
            reloads: 0,
            served: false,
            reported: false,
            pending_exit: None,
            link: std::sync::Arc::new(ours),
        },
        child,
        readiness: UnixStream::from_std(readiness)?,
    })
}

/// Whether the worker says it is ready before its end of the link closes (it exited).
pub async fn ready(mut link: UnixStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while !seen.ends_with(READY) {
        match link.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// An exit status as HAProxy's master words it: the code (128 + signal when killed) and
/// "Exit" or the signal's description.
pub fn describe(status: ExitStatus) -> (i32, String) {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, "Exit".into()),
        (None, Some(sig)) => (128 + sig, signal_name(sig)),
        (None, None) => (255, "Exit".into()),
    }
}

fn signal_name(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a NUL-terminated string valid until the next
    // call; it is copied at once, and only the master's one thread calls it.
    let text = unsafe { libc::strsignal(sig) };
    if text.is_null() {
        return format!("signal {sig}");
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { std::ffi::CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}
