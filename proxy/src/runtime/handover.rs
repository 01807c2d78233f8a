//! Handing the listening sockets to the next process on reload, so that no connection waiting
//! in an accept queue is refused: the old and new processes share the very same sockets, and
//! the old one merely stops accepting on them.
//!
//! Two ways in: HAProxy's, `_getsocks` on a stats socket with `expose-fd listeners` (see
//! [`super::api`]), and a private channel that needs no configuration, used by `-sf`/`-st PID`
//! when no such stats socket exists: every process listens on the abstract unix socket
//! `hapx-proxy-listeners-PID` (Linux; it lives in the network namespace, not the filesystem).
//! Abstract sockets have no file permissions, so both ends check the other with
//! `SO_PEERCRED`: the old process serves only its own user or root, and the new process
//! accepts sockets only from the pid it was told to replace, running as root, as its own user
//! or as the configured `user`.
//!
//! The message is the one `_getsocks` sends: `N ADDR...` with the descriptors attached
//! (SCM_RIGHTS).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use anyhow::Context;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg, sockopt};
use nix::unistd::Uid;
use tokio::net::UnixStream;

use super::api::Handover;
use super::state::State;

/// The private channel's abstract name for process `pid`.
fn channel_name(pid: u32) -> String {
    format!("hapx-proxy-listeners-{pid}")
}

/// Binds this process's private channel; `None` (with a warning) when the name is taken.
pub fn bind_channel() -> Option<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let pid = std::process::id();
    let bound = std::os::unix::net::SocketAddr::from_abstract_name(channel_name(pid))
        .and_then(|a| std::os::unix::net::UnixListener::bind_addr(&a))
        .and_then(|l| l.set_nonblocking(true).map(|()| l));
    match bound {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!(
                "[WARNING]  ({pid}) : cannot open the listener hand-over channel: {e}; a reload without 'expose-fd listeners' will bind new sockets."
            );
            None
        }
    }
}

/// Serves the private channel until a soft stop: each trusted peer gets the listening sockets.
pub async fn serve_channel(
    state: Arc<State>,
    socket: std::os::unix::net::UnixListener,
    handover: Handover,
) {
    let Ok(socket) = tokio::net::UnixListener::from_std(socket) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            a = socket.accept() => a,
            () = state.soft_stopped() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let trusted = peer(&stream).is_ok_and(|(_, uid)| trusted_uid(uid));
        if !trusted {
            continue;
        }
        if let Ok(fds) = duplicates(&handover) {
            let _ = send_fds(&stream, &fds).await;
        }
    }
}

/// Root, or the user this process runs as.
fn trusted_uid(uid: u32) -> bool {
    uid == 0 || uid == Uid::effective().as_raw()
}

/// The peer's pid and uid.
fn peer(stream: &impl AsFd) -> io::Result<(i32, u32)> {
    let cred = nix::sys::socket::getsockopt(stream, sockopt::PeerCredentials)?;
    Ok((cred.pid(), cred.uid()))
}

/// Duplicates of the sockets in `handover`, to send.
pub fn duplicates(handover: &Handover) -> io::Result<Vec<(SocketAddr, OwnedFd)>> {
    let list = handover.lock().unwrap_or_else(|e| e.into_inner());
    list.iter()
        .map(|(a, l)| l.try_clone().map(|c| (*a, OwnedFd::from(c))))
        .collect()
}

/// Sends "N addr..." then the descriptors in one message.
pub async fn send_fds(stream: &UnixStream, fds: &[(SocketAddr, OwnedFd)]) -> io::Result<()> {
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
            .map_err(io::Error::from)
        });
        match res {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes the listening sockets of process `pid` over through its private channel, blocking;
/// for start-up, before the runtime exists. The channel must belong to `pid`, running as
/// root, as this process's user, or as `user` (the configuration's, which the old process
/// may have switched to).
pub fn fetch_from_pid(pid: u32, user: Option<Uid>) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(channel_name(pid))?;
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)
        .with_context(|| format!("process {pid} has no hand-over channel"))?;
    // Anyone may bind an abstract name: only the process we replace may hand us sockets.
    let (owner, uid) = peer(&stream).context("reading the channel's owner")?;
    if owner != pid as i32 || !(trusted_uid(uid) || user.is_some_and(|u| u.as_raw() == uid)) {
        anyhow::bail!("the hand-over channel of {pid} belongs to pid {owner} (uid {uid})");
    }
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    receive(&stream).with_context(|| format!("receiving the listeners of process {pid}"))
}

/// Reads one "N addr..." message with its descriptors.
pub fn receive(
    stream: &std::os::unix::net::UnixStream,
) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 253]);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs().context("reading the control message")? {
        if let ControlMessageOwned::ScmRights(list) = c {
            // SAFETY: the kernel just installed these descriptors in this process for us.
            fds.extend(
                list.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let n = msg.bytes;
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    if fds.is_empty() {
        anyhow::bail!("answered without sockets: {}", text.trim());
    }
    let addrs: Vec<SocketAddr> = text
        .split_whitespace()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    Ok(addrs.into_iter().zip(fds).collect())
}
