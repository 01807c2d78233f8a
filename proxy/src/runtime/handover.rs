//! Handing the listening sockets to the next process on reload, so that no connection waiting
//! in an accept queue is refused: the old and new processes share the very same sockets, and
//! the old one merely stops accepting on them.
//!
//! Two ways in: HAProxy's, `_getsocks` on a stats socket with `expose-fd listeners` (see
//! [`super::api`]), and a private channel that needs no configuration, used by `-sf`/`-st PID`
//! when no such stats socket exists: every process listens on the abstract unix socket
//! `hapx-proxy-listeners-PID` (Linux; it lives in the network namespace, not the filesystem).
//! Abstract sockets have no file permissions, so both ends check the other with
//! `SO_PEERCRED`, trusting only root and the user the process was *started* as
//! ([`note_starting_user`]), never the configured `user` it drops to: whoever else runs as
//! that user (`nobody`...) must not obtain the listeners. The channel is bound before the
//! process drops its privileges, so its credentials are those of the starting user, which
//! is what the next process checks (besides the pid it was told to replace).
//!
//! The message is the one `_getsocks` sends: `N ADDR...` with the descriptors attached
//! (SCM_RIGHTS), in batches of at most [`MAX_FDS_PER_MESSAGE`] (the kernel's SCM_MAX_FD), as
//! HAProxy sends them; the receiver reads until it holds N, and checks every one is a TCP
//! socket bound to the address announced for it.

use std::collections::BTreeSet;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg, sockopt};
use nix::unistd::Uid;
use tokio::net::UnixStream;

use super::api::Handover;
use super::state::State;

/// The most descriptors one message may carry (Linux's SCM_MAX_FD).
pub const MAX_FDS_PER_MESSAGE: usize = 253;

/// The real uid this process started as, before `user` dropped it.
static STARTING_UID: OnceLock<u32> = OnceLock::new();

/// Remembers the user this process runs as now as the one the hand-over trusts (with root);
/// to call before dropping privileges. Later calls change nothing.
pub fn note_starting_user() {
    STARTING_UID.get_or_init(|| Uid::current().as_raw());
}

/// Root, or the user this process was started as.
fn trusted_uid(uid: u32) -> bool {
    uid == 0 || uid == *STARTING_UID.get_or_init(|| Uid::current().as_raw())
}

/// The private channel's abstract name for process `pid`.
fn channel_name(pid: u32) -> String {
    format!("hapx-proxy-listeners-{pid}")
}

/// Binds this process's private channel; `None` (with a warning) when the name is taken. To
/// call before dropping privileges (see the module documentation).
pub fn bind_channel() -> Option<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let pid = std::process::id();
    let bound = std::os::unix::net::SocketAddr::from_abstract_name(channel_name(pid))
        .and_then(|a| std::os::unix::net::UnixListener::bind_addr(&a))
        .and_then(|l| l.set_nonblocking(true).map(|()| l));
    match bound {
        Ok(l) => Some(l),
        Err(e) => {
            crate::process::say!(
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
        let sent = match peer(&stream) {
            Ok((_, uid)) if trusted_uid(uid) => duplicates(&handover),
            Ok((pid, uid)) => Err(io::Error::other(format!(
                "refused to pid {pid}, uid {uid} (only root and uid {} may have them)",
                STARTING_UID.get().copied().unwrap_or(0)
            ))),
            Err(e) => Err(e),
        };
        let sent = match sent {
            Ok(fds) => send_fds(&stream, &fds).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            crate::process::say!(
                "[WARNING]  ({}) : hand-over of the listeners: {e}",
                state.pid
            );
        }
    }
}

/// The peer's pid and uid.
fn peer(stream: &impl AsFd) -> io::Result<(i32, u32)> {
    let cred = nix::sys::socket::getsockopt(stream, sockopt::PeerCredentials)?;
    Ok((cred.pid(), cred.uid()))
}

/// The listening sockets this process sent to another one, by inode (a socket's identity,
/// shared by every descriptor of it): recorded once a send completed, never forgotten,
/// since the other process may still listen on them.
static HANDED_OVER: std::sync::Mutex<BTreeSet<u64>> = std::sync::Mutex::new(BTreeSet::new());

/// A socket's inode; None if fstat(2) fails (never on a descriptor we hold).
fn inode(socket: &impl AsFd) -> Option<u64> {
    nix::sys::stat::fstat(socket.as_fd()).ok().map(|s| s.st_ino)
}

/// Whether another process may hold `socket` now: a pause (SIGTTOU) must then not shut it
/// down, since that would stop it listening there too; a socket never sent is shut down,
/// freeing its port.
pub fn handed_over(socket: &impl AsFd) -> bool {
    let sent = HANDED_OVER.lock().unwrap_or_else(|e| e.into_inner());
    inode(socket).is_some_and(|i| sent.contains(&i))
}

/// Records `fds` as handed over, once they went.
fn note_handed_over(fds: &[(SocketAddr, OwnedFd)]) {
    let mut sent = HANDED_OVER.lock().unwrap_or_else(|e| e.into_inner());
    sent.extend(fds.iter().filter_map(|(_, fd)| inode(fd)));
}

/// Duplicates of the sockets in `handover`, to send.
pub fn duplicates(handover: &Handover) -> io::Result<Vec<(SocketAddr, OwnedFd)>> {
    let list = handover.lock().unwrap_or_else(|e| e.into_inner());
    list.iter()
        .map(|(a, l)| l.try_clone().map(|c| (*a, OwnedFd::from(c))))
        .collect()
}

/// Sends "N addr...\n" with the first batch of descriptors, then one byte with each further
/// batch; the sockets count as handed over once all went.
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
    let mut batches = raw.chunks(MAX_FDS_PER_MESSAGE);
    let mut data = text.as_bytes();
    let mut batch = batches.next().unwrap_or(&[]);
    loop {
        let sent = send_some(stream, data, batch).await?;
        // The descriptors went with the first byte; the rest of the text goes alone.
        batch = &[];
        data = &data[sent..];
        if data.is_empty() {
            match batches.next() {
                Some(next) => (data, batch) = (b"+", next),
                None => {
                    note_handed_over(fds);
                    return Ok(());
                }
            }
        }
    }
}

/// One sendmsg(2) of `data` with `fds`; how many bytes went.
async fn send_some(stream: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    loop {
        stream.writable().await?;
        let res = stream.try_io(tokio::io::Interest::WRITABLE, || {
            let rights = [ControlMessage::ScmRights(fds)];
            let cmsg: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
            sendmsg::<()>(
                stream.as_raw_fd(),
                &[IoSlice::new(data)],
                cmsg,
                MsgFlags::empty(),
                None,
            )
            .map_err(io::Error::from)
        });
        match res {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes the listening sockets of process `pid` over through its private channel, blocking;
/// for start-up, before the runtime exists. The channel must belong to `pid`, and have been
/// opened by root or by this process's starting user.
pub fn fetch_from_pid(pid: u32) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(channel_name(pid))?;
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)
        .with_context(|| format!("process {pid} has no hand-over channel"))?;
    // Anyone may bind an abstract name: only the process we replace may hand us sockets.
    let (owner, uid) = peer(&stream).context("reading the channel's owner")?;
    if owner != pid as i32 || !trusted_uid(uid) {
        anyhow::bail!("the hand-over channel of {pid} belongs to pid {owner} (uid {uid})");
    }
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    receive(&stream).with_context(|| format!("receiving the listeners of process {pid}"))
}

/// Reads one "N addr..." message and its N descriptors, which may come in several batches.
pub fn receive(
    stream: &std::os::unix::net::UnixStream,
) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    let mut text = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut announced: Option<Vec<SocketAddr>> = None;
    loop {
        if let Some(addrs) = &announced
            && fds.len() >= addrs.len()
        {
            break;
        }
        let got = receive_some(stream, &mut fds)?;
        if got.is_empty() {
            anyhow::bail!(
                "the connection closed after {} descriptors: {}",
                fds.len(),
                String::from_utf8_lossy(&text).trim()
            );
        }
        if announced.is_none() {
            text.extend_from_slice(&got);
            if let Some(end) = text.iter().position(|&b| b == b'\n') {
                announced = Some(parse_announce(&String::from_utf8_lossy(&text[..end]))?);
            }
        }
    }
    let addrs = announced.unwrap_or_default();
    if fds.len() != addrs.len() {
        anyhow::bail!(
            "{} descriptors for {} announced sockets",
            fds.len(),
            addrs.len()
        );
    }
    addrs
        .into_iter()
        .zip(fds)
        .map(|(addr, fd)| check_socket(addr, &fd).map(|()| (addr, fd)))
        .collect()
}

/// One recvmsg(2): the bytes read (empty at the end), the descriptors added to `fds`.
fn receive_some(
    stream: &std::os::unix::net::UnixStream,
    fds: &mut Vec<OwnedFd>,
) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE]);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    for c in msg.cmsgs().context("reading the control message")? {
        if let ControlMessageOwned::ScmRights(list) = c {
            // SAFETY: the kernel just installed these descriptors in this process for us.
            fds.extend(
                list.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if truncated {
        anyhow::bail!("more than {MAX_FDS_PER_MESSAGE} descriptors in one message");
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok(buf)
}

/// The addresses of "N addr...", which must be N (none from a process without listeners:
/// a configuration of backends only, or a stats socket alone).
fn parse_announce(line: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let mut words = line.split_whitespace();
    let count: usize = words
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("answered without sockets: {}", line.trim()))?;
    let addrs = words
        .map(|a| {
            a.parse()
                .with_context(|| format!("'{a}' is not a socket address"))
        })
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    if addrs.len() != count {
        anyhow::bail!("announced {count} sockets but named {}", addrs.len());
    }
    Ok(addrs)
}

/// A received descriptor must be a TCP socket bound to the address announced for it, and
/// either listening or not connected at all (a listener the old process had paused with
/// `disable frontend`, which [`super::listener::adopt`] makes listen again).
fn check_socket(addr: SocketAddr, fd: &OwnedFd) -> anyhow::Result<()> {
    let socket = socket2::SockRef::from(fd);
    let what = || format!("the descriptor announced for {addr}");
    let tcp = socket.r#type().with_context(what)? == socket2::Type::STREAM
        && socket.protocol().with_context(what)? == Some(socket2::Protocol::TCP);
    if !tcp {
        anyhow::bail!("{} is not a TCP socket", what());
    }
    let local = socket.local_addr().with_context(what)?.as_socket();
    if local != Some(addr) {
        anyhow::bail!("{} is bound to {local:?}", what());
    }
    let listening = socket.is_listener().with_context(what)?;
    if !listening && socket.peer_addr().is_ok() {
        anyhow::bail!("{} is a connection, not a listener", what());
    }
    Ok(())
}
