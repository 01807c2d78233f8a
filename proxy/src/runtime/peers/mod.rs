//! Stick-table replication with the members of `peers` sections, speaking HAProxy 2.6's
//! peers protocol (2.1) over TCP, so that hapx and HAProxy replicate with each other.
//!
//! Each section that runs (neither disabled nor removed, with tables or without, as in
//! HAProxy) and whose local member has an address listens there; this process connects to
//! every other member that has one, again 5 s after a session ends or a connection fails
//! (a random 50 ms to 2 s after a collision: when a member connects while a session with it
//! runs, the new session replaces the old one, as HAProxy does). After the handshake
//! (`HAProxyS 2.1`, the member's name, ours with our pid; a status line, 200 on success),
//! both sides send the entries changed locally (a table definition before a table's
//! updates, then updates, acknowledged by number), and a heartbeat after 3 s without
//! sending; a session that hears nothing for 5 s ends. A process that starts asks the first
//! member it reaches for a full resync (`RESYNC REQUEST`): the member sends every entry,
//! with its expiry (every table defined, even empty, as HAProxy teaches), then `RESYNC
//! FINISHED` (or `PARTIAL` when it was not complete itself),
//! which is confirmed; then, as HAProxy, the entries changed since what the member had
//! acknowledged come again as plain updates (a full expiry). After 5 s without a complete
//! lesson, the process counts as complete. A lesson is sent in pieces, the table locked
//! once per piece of 200 entries; local changes wake the sessions through a coalescing
//! signal given outside the table's lock, and a session writes what is pending at once.
//!
//! At a reload (`-sf`/`-st`), the new process binds and listens at its peers address
//! (SO_REUSEPORT, beside the old one's listener) before it tells the old process to stop,
//! as HAProxy does (an address that cannot be bound fails the start, with HAProxy's
//! alerts: [`bind_listeners`]); replication runs on a thread of its own, started before the
//! frontends accept ([`start`]), and waits up to 5 s for the old one's lesson before asking
//! another member. The old process, told to stop softly
//! (and complete itself: taught, or past its own 5 s wait, as HAProxy 2.6), closes its
//! listener, ends its sessions, connects to the local member's address, says hello as the
//! local member itself and sends every entry, then `RESYNC FINISHED`. A refused connection
//! or session means that no successor listens there (its configuration dropped or moved
//! the local member): the process stops without teaching, at once (HAProxy's retries its
//! connection for 3 s first). Once the lesson is confirmed (at most 5 s), the session
//! pushes on the changes its draining connections make, and the new process adds what
//! each count of an entry grew by there to its own ([`Predecessor`]); it pushes nothing
//! to the old process. The protocol sends values: taken as they come, the old process's
//! counts would overwrite what the new one counted on the same entries since the lesson.
//! (HAProxy's old process closes the session at the confirmation and sends nothing more:
//! what it counts while it drains is lost.) The process exits once they are
//! drained and every change is written and acknowledged, or the successor is silent for
//! 5 s ([`lesson_running`]); a table the successor lacks is not waited for: one taught and
//! not acknowledged when it confirms the lesson (it acknowledges what it learned first),
//! and, from a hapx successor, which defines every table it has before it confirms
//! (`Session::define_all`), one it did not define, even one empty at the lesson. The new
//! process takes that session as its lesson (HAProxy's `init_accepted_peer`), and learns
//! what the old process sent before closing even when its own writes fail.
//!
//! `show peers` ([`show`]) reports each section, its members and their tables as HAProxy's.
//!
//! `show info` counts the sessions ([`session_counts`]), as HAProxy's `ActivePeers` and
//! `ConnectedPeers`.
//!
//! TLS (`Link`): a section whose listener has `ssl crt` ([`PeersSection::listen_tls`])
//! takes members' connections through a TLS handshake (the frontends' `bind ... ssl`
//! handshake, [`super::tls::accept`]), and a member whose line has `ssl` is connected to
//! through one (a `server ... ssl`'s, [`super::tls::handshake`]), the local member's line
//! too for the lesson to a successor; the peers protocol then runs inside, as HAProxy's.
//!
//! Not done: shards.

mod show;
mod wire;

pub use show::show;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::state::State;
use super::stats::InnerSession;
use super::stick::{Key, Table, Value, now_ms};
use crate::config::bind_tls::TlsServer;
use crate::config::peers::PeersSection;
use crate::config::stick::DataType;
use crate::config::tls::TlsClient;
use wire::*;

const RECONNECT: Duration = Duration::from_secs(5);
const HEARTBEAT: Duration = Duration::from_secs(3);
/// The peers frontend's client and server timeouts in HAProxy.
const SILENCE: Duration = Duration::from_secs(5);
const CONNECT: Duration = Duration::from_secs(1);
const RESYNC: Duration = Duration::from_secs(5);
/// Entries taken from a table under one lock (updates pushed, or a piece of a lesson).
const BATCH: usize = 200;
/// Bytes gathered before a write: a session drains its pending updates in writes of this
/// size, and gives back a larger buffer after writing it.
const WRITE_CHUNK: usize = 64 * 1024;
/// Names a session's dictionary cache holds (HAProxy's `PEER_STKT_CACHE_MAX_ENTRIES`).
const DICT_ENTRIES: usize = 128;
/// The largest stick-table message accepted (HAProxy's buffer size).
const MAX_MESSAGE: usize = 16384;

/// Status codes of the handshake.
const SUCCESS: u32 = 200;
const ERR_PROTO: u32 = 501;
const ERR_VERSION: u32 = 502;
const ERR_HOST: u32 = 503;
const ERR_PEER: u32 = 504;

/// One section at work.
struct Section {
    name: String,
    /// When replication started (HAProxy's `last_change`, which `show peers` dates).
    started: std::time::SystemTime,
    /// The resync state's events so far, as HAProxy's `PEERS_F_*` bits ([`flags`]).
    events: std::sync::atomic::AtomicU32,
    /// When the wait for a lesson (the old process's, then a member's) ends.
    resync_deadline: std::sync::Mutex<tokio::time::Instant>,
    /// The times the section's state changed (sessions, timers): `show peers`' analogue of
    /// HAProxy's sync task calls.
    task_calls: AtomicU64,
    /// Every member, the local one too, as the section lists them.
    members: Vec<Arc<Remote>>,
    /// Per table, the entries learned from members (HAProxy counts them in `update`).
    learned: Vec<AtomicU64>,
    local_name: String,
    /// Where the local member listens, and its TLS side (`bind ... ssl crt`).
    listen: Option<SocketAddr>,
    listen_tls: Option<Arc<TlsServer>>,
    tables: Vec<Arc<Table>>,
    remotes: Vec<Arc<Remote>>,
    /// Our tables are complete: a member taught us, or nobody did in time.
    resynced: AtomicBool,
    /// A session is learning the whole tables from its member.
    learning: AtomicBool,
    /// Waiting for the old process's lesson: no member is asked meanwhile.
    waiting_local: AtomicBool,
    /// The local member as the old process (a reload) is seen: its sessions teach us.
    local: Arc<Remote>,
    /// The process stops: sessions end, nobody is connected to again.
    stopping: watch::Sender<bool>,
    /// A stopping process's session to its successor, past the lesson: it pushes on the
    /// changes its draining connections make, and the process waits for them to be sent.
    teacher_live: AtomicBool,
    /// Per table, the last change that session wrote.
    teacher_pushed: Vec<AtomicU64>,
    /// Per table, the number of the last update that session sent (0: none since the
    /// lesson): the process waits for the successor to acknowledge it.
    teacher_sent: Vec<AtomicU64>,
    /// When the successor last acknowledged something (or confirmed the lesson): one that
    /// stays silent this long is not waited for.
    teacher_heard: std::sync::Mutex<tokio::time::Instant>,
    /// Per table, the successor has none of that name and key (its configuration renamed or
    /// dropped it): it ignores the table's updates, so its acknowledgements are not waited
    /// for. Known once it confirms a lesson that taught entries of the table without
    /// acknowledging any ([`Session::confirmed`]).
    successor_lacks: Vec<AtomicBool>,
    /// Our listener is open: a stopping process teaches once it is closed, so that its
    /// connection reaches the successor's listener, not its own.
    listening: watch::Sender<bool>,
}

/// A session's reading side: the connection's, in clear or through TLS.
type Reader = BufReader<Box<dyn AsyncRead + Send + Unpin>>;
/// A session's writing side.
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection to or from a member, in clear or through TLS, split for a session.
enum Link {
    Clear(TcpStream),
    /// Accepted on a TLS listener: the socket and its TLS state.
    Accepted(AcceptedTls),
    /// Boxed: a client's TLS state is large, and short-lived here (split at once).
    Connected(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Link {
    fn split(self) -> (Reader, Writer) {
        fn halves<S: AsyncRead + AsyncWrite + Send + 'static>(s: S) -> (Reader, Writer) {
            let (read, write) = tokio::io::split(s);
            (BufReader::new(Box::new(read)), Box::new(write))
        }
        match self {
            Link::Clear(stream) => {
                let (read, write) = stream.into_split();
                (BufReader::new(Box::new(read)), Box::new(write))
            }
            Link::Accepted(tls) => halves(tls),
            Link::Connected(tls) => halves(*tls),
        }
    }

    /// Connects to `remote` at `addr`, through TLS when its line has `ssl`; the error says
    /// why the connection or the handshake failed (`TimedOut` past [`CONNECT`]).
    async fn connect(addr: SocketAddr, tls: Option<&TlsClient>) -> std::io::Result<Link> {
        let stream = tokio::time::timeout(CONNECT, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        let _ = stream.set_nodelay(true);
        match tls {
            None => Ok(Link::Clear(stream)),
            Some(tls) => super::tls::handshake(tls.traffic(), addr.ip(), stream, SILENCE)
                .await
                .map(|tls| Link::Connected(Box::new(tls)))
                .map_err(|e| match e {
                    super::tls::HandshakeError::Timeout => std::io::ErrorKind::TimedOut.into(),
                    super::tls::HandshakeError::Failed(e) => e,
                }),
        }
    }
}

/// A connection accepted on a TLS listener, owning its socket: the session's reads and
/// writes go through the TLS state as a frontend's do ([`super::tls::Session::over`]).
struct AcceptedTls {
    sock: TcpStream,
    tls: Box<super::tls::Session>,
}

impl AsyncRead for AcceptedTls {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::pin::Pin::new(&mut this.tls.over(&this.sock)).poll_read(cx, buf)
    }
}

impl AsyncWrite for AcceptedTls {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::pin::Pin::new(&mut this.tls.over(&this.sock)).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::pin::Pin::new(&mut this.tls.over(&this.sock)).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::pin::Pin::new(&mut this.tls.over(&this.sock)).poll_shutdown(cx)
    }
}

/// Another member.
struct Remote {
    name: String,
    addr: Option<SocketAddr>,
    /// `ssl` on its line: connected to through TLS.
    tls: Option<Arc<TlsClient>>,
    /// What `show peers` reports of it.
    stats: std::sync::Mutex<show::PeerStats>,
    /// What changes at every turn of its session's loop, for `show peers`.
    live: show::Live,
    /// Its session's dictionary caches.
    dicts: std::sync::Mutex<show::Dicts>,
    /// The running session's number (0: none); a new session replaces the old one.
    session: watch::Sender<u64>,
    /// Per table, the last update the member acknowledged (HAProxy's `st->update`).
    acked: std::sync::Mutex<Vec<u32>>,
    /// It answered a resync with `PARTIAL`: it is not asked again.
    not_up_to_date: AtomicBool,
    /// The next connection waits this long (a collision's random delay) instead of 5 s.
    backoff_ms: AtomicU64,
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// HAProxy's `active_peers` (`show info`'s `ActivePeers`): the sessions with members, an
/// outgoing one from its connection attempt on, an incoming one from its hello on.
static ACTIVE: AtomicU64 = AtomicU64::new(0);

/// HAProxy's `connected_peers` (`ConnectedPeers`): the sessions past their handshake.
static CONNECTED: AtomicU64 = AtomicU64::new(0);

/// `show info`'s `ActivePeers` and `ConnectedPeers`.
pub fn session_counts() -> (u64, u64) {
    (
        ACTIVE.load(Ordering::Relaxed),
        CONNECTED.load(Ordering::Relaxed),
    )
}

/// One session counted in [`ACTIVE`] or [`CONNECTED`] while it lives.
struct Counted(&'static AtomicU64);

impl Counted {
    fn new(count: &'static AtomicU64) -> Counted {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This process replaces others (`-sf`/`-st`): it first waits for their lesson.
static REPLACING: AtomicBool = AtomicBool::new(false);

/// Sections that may still teach a successor: counted when replication starts (so that a
/// drain looking at once after the stop sees them), given back once the lesson is
/// confirmed or not given.
static LESSONS: AtomicU64 = AtomicU64::new(0);

/// The sections at work, for the drain at a soft stop.
static SECTIONS: std::sync::Mutex<Vec<Arc<Section>>> = std::sync::Mutex::new(Vec::new());

/// Records that this process replaces older ones (before the runtime starts).
pub fn set_replacing() {
    REPLACING.store(true, Ordering::Relaxed);
}

/// The value a process replacing this one queues with the SIGUSR1 it sends
/// ([`finish_for_successor`]): "hapx" in ASCII.
const SUCCESSOR_MARK: usize = 0x6861_7078;

/// The soft stop came from a hapx successor ([`finish_for_successor`]): a lesson that
/// fails otherwise than by a refusal is tried again (a plain SIGUSR1, a lone soft stop,
/// tries once), and the successor's table definitions name every table it has (see
/// `Session::confirmed`), even when it defines none.
static REPLACED: AtomicBool = AtomicBool::new(false);

/// Tells the old process `pid` to finish softly as its successor does (`-sf`): SIGUSR1,
/// queued with [`SUCCESSOR_MARK`] so that it knows a successor is coming.
pub fn finish_for_successor(pid: u32) -> nix::Result<()> {
    unsafe extern "C" {
        /// glibc's and musl's sigqueue(3), which the libc crate does not declare on Linux.
        fn sigqueue(pid: libc::pid_t, sig: libc::c_int, value: libc::sigval) -> libc::c_int;
    }
    let value = libc::sigval {
        sival_ptr: SUCCESSOR_MARK as *mut libc::c_void,
    };
    // SAFETY: sigqueue(3) takes plain values; the pointer is a number, never dereferenced.
    let queued = unsafe { sigqueue(pid as libc::pid_t, libc::SIGUSR1, value) };
    nix::errno::Errno::result(queued).map(drop)
}

/// Notes a successor's SIGUSR1 ([`REPLACED`]), beside the runtime's own handling of it.
fn watch_successor_signal() {
    let action = |info: &libc::siginfo_t| {
        // SAFETY: `si_value` is the queued value when `si_code` is SI_QUEUE.
        let queued = info.si_code == libc::SI_QUEUE
            && unsafe { info.si_value() }.sival_ptr as usize == SUCCESSOR_MARK;
        if queued {
            REPLACED.store(true, Ordering::SeqCst);
        }
    };
    // SAFETY: the action only reads its argument and stores an atomic (signal-safe).
    unsafe { signal_hook_registry::register_sigaction(libc::SIGUSR1, action) }
        .expect("SIGUSR1 takes a handler");
}

/// Whether a stopping process still teaches its successor, or has changes not yet sent to
/// it (it waits before exiting).
pub fn lesson_running() -> bool {
    if LESSONS.load(Ordering::SeqCst) > 0 {
        return true;
    }
    let sections = SECTIONS.lock().unwrap_or_else(|e| e.into_inner());
    sections.iter().any(|s| s.successor_behind())
}

/// The sections that run (neither disabled nor removed), with the tables naming them. As in
/// HAProxy, one without tables runs too: it listens, and its members are connected to.
fn replicating(state: &State) -> impl Iterator<Item = (&PeersSection, Vec<Arc<Table>>)> {
    let sections = state.config.peers.iter().filter(|s| s.active());
    sections.map(|section| {
        let (mut own, proxies): (Vec<Arc<Table>>, Vec<Arc<Table>>) = (state.tables.iter())
            .filter(|t| t.spec.peers.as_deref() == Some(section.name.as_str()))
            .cloned()
            .partition(|t| wire_name(t, &section.name) != t.name);
        // In HAProxy's order, which numbers them (on the wire and in `show peers`): the
        // section's own tables, last declared first, then the proxies', as declared.
        own.reverse();
        own.extend(proxies);
        (section, own)
    })
}

/// The listeners of the sections that run: one per local member with an address, which
/// HAProxy counts among its listeners (`show info`).
pub fn listener_count(state: &State) -> usize {
    replicating(state)
        .filter(|(section, _)| section.listen_addr().is_some())
        .count()
}

/// The peers listeners bound, and listening, before the processes this one replaces are
/// told to stop ([`bind_listeners`]); each section takes its own when it starts ([`start_section`]).
static PREPARED: std::sync::Mutex<Vec<(SocketAddr, socket2::Socket)>> =
    std::sync::Mutex::new(Vec::new());

/// The peers listeners' accept queue.
const BACKLOG: i32 = 64;

/// Binds, and listens, where the local member of every section that replicates listens, as
/// HAProxy binds it with the frontends' listeners: before the processes this one replaces
/// are told to stop. An address that cannot be bound (HAProxy's alert) fails the start while
/// the old process still serves; and the old process, whose lesson connects to its own
/// address once its listener is closed, finds this one there even before this process
/// accepts (the connection waits in the queue): a refusal then means that no successor
/// listens at that address (its configuration dropped or moved the local member), and the
/// old process stops at once instead of waiting for a listener that never comes.
pub fn bind_listeners(state: &State) -> anyhow::Result<()> {
    let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    for (section, _) in replicating(state) {
        let Some(addr) = section.listen_addr() else {
            continue;
        };
        let socket = bind(addr)
            .and_then(|s| s.listen(BACKLOG).map(|()| s))
            .map_err(|e| {
                let argv0 = std::env::args().next().unwrap_or_default();
                anyhow::anyhow!(
                    "Binding [{}] for proxy {}: cannot bind socket ({}) for [{addr}]\n\
                     [ALERT]    ({}) : [{argv0}.main()] Some protocols failed to start their listeners! Exiting.",
                    section.listen_place(),
                    section.local_name().unwrap_or_default(),
                    super::errno_text(&e),
                    std::process::id(),
                )
            })?;
        prepared.push((addr, socket));
    }
    Ok(())
}

/// The listener [`bind_listeners`] prepared at `addr`, else one bound now.
fn listener_at(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let prepared = {
        let mut prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
        let found = prepared.iter().position(|(a, _)| *a == addr);
        found.map(|i| prepared.swap_remove(i).1)
    };
    let socket = match prepared {
        Some(socket) => socket,
        None => {
            let socket = bind(addr)?;
            socket.listen(BACKLOG)?;
            socket
        }
    };
    TcpListener::from_std(socket.into())
}

/// Starts replication for every running section on a thread of its own, before any
/// frontend accepts; a soft stop (`stop`) gives the successor its lesson.
///
/// Why a thread: at a reload, the old process's values overwrite what the new one counts
/// on an entry until the lesson reaches it (the protocol carries values), and the old
/// process closes its clients' connections at the stop, so they come to the new process
/// while the lesson is on its way: every hop of the lesson (the connect, the hello, the
/// status, the pieces) waited behind the connections of the thread it ran on, a few
/// milliseconds each on a busy process, where HAProxy's lands within one. On a thread of
/// its own, mostly asleep, each hop runs as soon as its socket is ready.
pub fn start(state: &Arc<State>, stop: watch::Receiver<super::Stop>) -> anyhow::Result<()> {
    if replicating(state).next().is_none() {
        return Ok(());
    }
    let rt = super::single_runtime()?;
    // Registered here, before the caller goes on: a stop that comes at once finds every
    // section counted in `LESSONS`.
    {
        let _in_runtime = rt.enter();
        spawn_all(state, stop);
    }
    std::thread::Builder::new()
        .name("hapx-peers".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .context("starting the peers thread")?;
    Ok(())
}

/// Starts replication for every running section (on the current runtime); a soft stop
/// (`stop`) gives the successor its lesson.
fn spawn_all(state: &Arc<State>, stop: watch::Receiver<super::Stop>) {
    if listener_count(state) > 0 {
        watch_successor_signal();
    }
    for (section, tables) in replicating(state) {
        let section = start_section(section, tables);
        if section.listen.is_some() {
            LESSONS.fetch_add(1, Ordering::SeqCst);
        }
        (SECTIONS.lock().unwrap_or_else(|e| e.into_inner())).push(section.clone());
        tokio::spawn(on_stop(section, stop.clone()));
    }
}

/// At a soft stop: no more sessions, and the successor is taught.
async fn on_stop(section: Arc<Section>, mut stop: watch::Receiver<super::Stop>) {
    while *stop.borrow_and_update() == super::Stop::Running {
        if stop.changed().await.is_err() {
            return;
        }
    }
    section.stopping.send_replace(true);
    let Some(addr) = section.listen else {
        return;
    };
    // As HAProxy: only a process whose tables are complete teaches (one still waiting for
    // its own lesson would teach a partial table as complete).
    let complete = section.resynced.load(Ordering::Relaxed);
    if *stop.borrow() == super::Stop::Soft && complete {
        let mut listening = section.listening.subscribe();
        let closed = listening.wait_for(|open| !open);
        let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
        let (confirmed, confirmation) = tokio::sync::oneshot::channel();
        let replaced = REPLACED.load(Ordering::SeqCst);
        let teacher = tokio::spawn(teach_successor(section.clone(), addr, replaced, confirmed));
        // Confirmed: the session pushes on until the process exits.
        if !matches!(tokio::time::timeout(RESYNC, confirmation).await, Ok(Ok(()))) {
            teacher.abort();
        }
    }
    LESSONS.fetch_sub(1, Ordering::SeqCst);
}

impl Section {
    /// Records a resync event (`PEERS_F_*` bits) for `show peers`.
    fn event(&self, bits: u32) {
        self.events.fetch_or(bits, Ordering::Relaxed);
        self.task_calls.fetch_add(1, Ordering::Relaxed);
    }

    fn set_resync_deadline(&self, at: tokio::time::Instant) {
        *self
            .resync_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// The session to the successor has not written every local change yet, or the
    /// successor has not acknowledged every update written (unless it has been silent for
    /// 5 s). Written is not enough: a process that exits with unread data in its socket
    /// (the successor's acknowledgements) resets the connection, and the kernel drops what
    /// it had not sent yet.
    fn successor_behind(&self) -> bool {
        if !self.teacher_live.load(Ordering::SeqCst) {
            return false;
        }
        let unwritten = (self.tables.iter().zip(&self.teacher_pushed))
            .any(|(t, pushed)| t.local_update() > pushed.load(Ordering::SeqCst));
        if unwritten {
            return true;
        }
        let acked = (self.local.acked.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let sent = self.tables.iter().zip(&self.teacher_sent);
        let unacked =
            (sent.zip(acked).zip(&self.successor_lacks)).any(|(((t, sent), acked), lacks)| {
                !lacks.load(Ordering::SeqCst)
                    && sent.load(Ordering::SeqCst) > unwrap_update(t.local_update(), acked)
            });
        let heard = *self.teacher_heard.lock().unwrap_or_else(|e| e.into_inner());
        unacked && heard.elapsed() < SILENCE
    }

    /// The successor acknowledged updates, or confirmed the lesson.
    fn heard_from_successor(&self) {
        *self.teacher_heard.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
    }
}

/// Connects to our own address (the new process listens there now; ours is closed) and
/// teaches it every entry, then pushes the changes made here while the process drains.
/// A refusal, of the connection or of the session (a status other than 200), means that no
/// successor takes the lesson there: a successor listens before it tells us to stop
/// ([`bind_listeners`]), so its configuration dropped or moved our local member, or it
/// failed; the process then stops without teaching, as HAProxy's gives up on those. A
/// successor that does not answer in time (a full accept queue, a connection closed
/// before the status) is tried again every 10 ms, within the wait of [`on_stop`]; without
/// a successor (`replaced` false: a lone soft stop), once.
async fn teach_successor(
    section: Arc<Section>,
    addr: SocketAddr,
    replaced: bool,
    confirmed: tokio::sync::oneshot::Sender<()>,
) {
    let local = &section.local;
    let mut confirmed = Some(confirmed);
    loop {
        local.connecting();
        let _active = Counted::new(&ACTIVE);
        let _session = InnerSession::begin();
        let (mut read, mut write) = match Link::connect(addr, local.tls.as_deref()).await {
            Ok(link) => link.split(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            Err(_) if !replaced => return,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        local.with_stats(|st| st.status = show::CONNECTED);
        let hello = hello(&local.name, &section.local_name);
        let status = match write.write_all(hello.as_bytes()).await {
            Ok(()) => line(&mut read).await,
            Err(_) => None,
        };
        match status {
            Some(status) if local.answered(&status) => {
                let role = Role::Teacher(confirmed.take());
                run(section.clone(), local.clone(), read, write, role, None).await;
                return;
            }
            // The successor refused the session.
            Some(_) => return,
            None if !replaced => return,
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Waits for the process to stop (forever if the sender is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    while !*stopping.borrow_and_update() {
        if stopping.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn hello(remote: &str, local: &str) -> String {
    format!("HAProxyS 2.1\n{remote}\n{local} {} 1\n", std::process::id())
}

impl Remote {
    fn new(
        name: &str,
        addr: Option<SocketAddr>,
        tls: Option<Arc<TlsClient>>,
        tables: usize,
    ) -> Arc<Remote> {
        Arc::new(Remote {
            name: name.to_string(),
            addr,
            tls,
            stats: std::sync::Mutex::new(show::PeerStats::new(tables)),
            live: show::Live::new(),
            dicts: std::sync::Mutex::new(show::Dicts::new()),
            session: watch::channel(0).0,
            acked: std::sync::Mutex::new(vec![0; tables]),
            not_up_to_date: AtomicBool::new(false),
            backoff_ms: AtomicU64::new(0),
        })
    }

    fn with_stats<R>(&self, f: impl FnOnce(&mut show::PeerStats) -> R) -> R {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A connection to the member is being made (HAProxy's session creation).
    fn connecting(&self) {
        self.with_stats(|st| {
            st.new_conn += 1;
            st.status = show::CONNECTING;
            st.last_hdshk = Some(tokio::time::Instant::now());
        });
    }

    /// The member's status line: whether it accepts the session.
    fn answered(&self, status: &str) -> bool {
        let code = status.trim().parse::<u32>().ok();
        if let Some(code) = code {
            self.with_stats(|st| st.status = code);
        }
        code == Some(SUCCESS)
    }
}

fn start_section(conf: &PeersSection, tables: Vec<Arc<Table>>) -> Arc<Section> {
    let n = tables.len();
    let local_name = conf.local_name().unwrap_or_default().to_string();
    let replacing = REPLACING.load(Ordering::Relaxed);
    let local_tls = (conf.members.iter())
        .find(|m| m.local)
        .and_then(|m| m.tls.clone());
    let local = Remote::new(&local_name, conf.listen_addr(), local_tls, n);
    let members: Vec<Arc<Remote>> = (conf.members.iter())
        .map(|m| match m.local {
            true => local.clone(),
            false => Remote::new(&m.name, m.addr, m.tls.clone(), n),
        })
        .collect();
    // Not replacing a process: nothing to learn from one (HAProxy's start).
    let events = match replacing {
        true => 0,
        false => show::RESYNC_LOCAL_TIMEOUT,
    };
    let section = Arc::new(Section {
        name: conf.name.clone(),
        started: std::time::SystemTime::now(),
        events: std::sync::atomic::AtomicU32::new(events),
        resync_deadline: std::sync::Mutex::new(tokio::time::Instant::now() + RESYNC),
        task_calls: AtomicU64::new(1),
        remotes: (members.iter())
            .filter(|m| !Arc::ptr_eq(m, &local))
            .cloned()
            .collect(),
        members,
        learned: (0..n).map(|_| AtomicU64::new(0)).collect(),
        local,
        local_name,
        listen: conf.listen_addr(),
        listen_tls: conf.listen_tls().cloned(),
        tables,
        resynced: AtomicBool::new(false),
        learning: AtomicBool::new(false),
        waiting_local: AtomicBool::new(replacing),
        stopping: watch::channel(false).0,
        teacher_live: AtomicBool::new(false),
        teacher_pushed: (0..n).map(|_| AtomicU64::new(0)).collect(),
        teacher_sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
        teacher_heard: std::sync::Mutex::new(tokio::time::Instant::now()),
        successor_lacks: (0..n).map(|_| AtomicBool::new(false)).collect(),
        listening: watch::channel(false).0,
    });
    let listener = section.listen.map(listener_at);
    match listener {
        Some(Ok(listener)) => {
            section.listening.send_replace(true);
            drop(tokio::spawn(listen(section.clone(), listener)));
        }
        // Refused by the poller (or, not prepared, taken): alerted, and the proxy serves on.
        Some(Err(e)) => crate::process::say!(
            "[ALERT]    ({}) : peers section '{}': cannot listen: {}",
            std::process::id(),
            conf.name,
            super::errno_text(&e)
        ),
        None => {}
    }
    for remote in &section.remotes {
        if remote.addr.is_some() {
            tokio::spawn(connect_loop(section.clone(), remote.clone()));
        }
    }
    // The old process did not teach us in time: ask the members; nobody taught us in
    // time: our tables are what they are.
    let s = section.clone();
    tokio::spawn(async move {
        if replacing {
            tokio::time::sleep(RESYNC).await;
            if s.waiting_local.swap(false, Ordering::Relaxed) {
                s.event(show::RESYNC_LOCAL_TIMEOUT);
            }
            s.set_resync_deadline(tokio::time::Instant::now() + RESYNC);
        }
        tokio::time::sleep(RESYNC).await;
        if !s.resynced.swap(true, Ordering::Relaxed) {
            s.event(show::RESYNC_REMOTE_TIMEOUT);
        }
    });
    section
}

async fn listen(section: Arc<Section>, listener: TcpListener) {
    let mut stopping = section.stopping.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                tokio::spawn(accept(section.clone(), stream));
            }
            // A stopping process listens no more: its successor does.
            _ = stopped(&mut stopping) => {
                drop(listener);
                section.listening.send_replace(false);
                return;
            }
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    // Beside the process this one replaces, until it stops listening.
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A member connecting to us: its hello, our status, then the session.
async fn accept(section: Arc<Section>, stream: TcpStream) {
    // HAProxy's session from the accept on, whatever the hello.
    let _session = InnerSession::begin();
    if *section.stopping.borrow() {
        // Our listener, not closed yet: the successor must get this connection (our own
        // lesson waits for our listener to close).
        return;
    }
    let _ = stream.set_nodelay(true);
    let ends = stream.peer_addr().ok().zip(stream.local_addr().ok());
    let link = match &section.listen_tls {
        None => Link::Clear(stream),
        Some(server) => match super::tls::accept(server, &stream, Some(SILENCE)).await {
            Ok(tls) => Link::Accepted(AcceptedTls { sock: stream, tls }),
            Err(_) => return,
        },
    };
    let accepted = ends.map(|(src, dst)| show::Accepted {
        src,
        dst,
        ssl: section.listen_tls.is_some(),
    });
    let (mut read, mut write) = link.split();
    let hello = tokio::time::timeout(SILENCE, read_hello(&mut read, &section)).await;
    let remote = match hello {
        Ok(Ok(remote)) => remote,
        Ok(Err(Some(status))) => {
            let _ = write.write_all(format!("{status}\n").as_bytes()).await;
            return;
        }
        _ => return,
    };
    let _active = Counted::new(&ACTIVE);
    if write
        .write_all(format!("{SUCCESS}\n").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let collision = *remote.session.borrow() != 0;
    if collision {
        // A collision: ours gives way, and our next try waits a random while.
        let delay = 50 + super::balance::next_random(&mut seed()) % 2000;
        remote.backoff_ms.store(delay, Ordering::Relaxed);
    }
    remote.with_stats(|st| {
        st.status = SUCCESS;
        st.last_hdshk = Some(tokio::time::Instant::now());
        st.coll += u32::from(collision);
    });
    let role = match Arc::ptr_eq(&remote, &section.local) {
        true => {
            section.event(show::RESYNC_LOCAL_ASSIGN);
            Role::Successor
        }
        false => Role::Member,
    };
    run(section, remote, read, write, role, accepted).await;
}

/// A seed that differs between processes started in the same millisecond.
fn seed() -> u64 {
    let nanos = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH))
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 32) ^ u64::from(now_ms())) | 1
}

/// Reads `HAProxyS 2.1`, our name, and `NAME PID RELPID`: the member, or the status refusing.
async fn read_hello(read: &mut Reader, section: &Section) -> Result<Arc<Remote>, Option<u32>> {
    let version = line(read).await.ok_or(None)?;
    let Some(v) = version.strip_prefix("HAProxyS ") else {
        return Err(Some(ERR_PROTO));
    };
    let ok = v
        .split_once('.')
        .and_then(|(maj, min)| Some((maj.parse::<u32>().ok()?, min.parse::<u32>().ok()?)))
        .is_some_and(|(maj, min)| maj == 2 && min <= 1);
    if !ok {
        return Err(Some(ERR_VERSION));
    }
    if line(read).await.ok_or(None)? != section.local_name {
        return Err(Some(ERR_HOST));
    }
    let last = line(read).await.ok_or(None)?;
    let Some((name, _)) = last.split_once(' ') else {
        return Err(Some(ERR_PROTO));
    };
    // The local member's name: the process this one replaces.
    (section.remotes.iter())
        .chain(std::iter::once(&section.local))
        .find(|r| r.name == name)
        .cloned()
        .ok_or(Some(ERR_PEER))
}

/// One line, without its `\r\n` or `\n`; None at the end or past 1 KB.
async fn line(read: &mut Reader) -> Option<String> {
    let mut buf = Vec::new();
    (&mut *read)
        .take(1024)
        .read_until(b'\n', &mut buf)
        .await
        .ok()?;
    if buf.pop() != Some(b'\n') {
        return None;
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Connects to `remote` whenever no session with it runs.
async fn connect_loop(section: Arc<Section>, remote: Arc<Remote>) {
    let Some(addr) = remote.addr else { return };
    let mut sessions = remote.session.subscribe();
    let stopping = section.stopping.subscribe();
    loop {
        // Wait for no session.
        while *sessions.borrow_and_update() != 0 {
            if sessions.changed().await.is_err() {
                return;
            }
        }
        if *stopping.borrow() {
            return;
        }
        remote.connecting();
        section.task_calls.fetch_add(1, Ordering::Relaxed);
        let active = Counted::new(&ACTIVE);
        // HAProxy's session for the attempt, from before its connection.
        let session = InnerSession::begin();
        if let Ok(link) = Link::connect(addr, remote.tls.as_deref()).await {
            remote.with_stats(|st| st.status = show::CONNECTED);
            let (mut read, mut write) = link.split();
            let hello = hello(&remote.name, &section.local_name);
            if write.write_all(hello.as_bytes()).await.is_ok() {
                let status = tokio::time::timeout(SILENCE, line(&mut read)).await;
                if let Ok(Some(status)) = status {
                    if remote.answered(&status) {
                        let (s, r) = (section.clone(), remote.clone());
                        run(s, r, read, write, Role::Member, None).await;
                    }
                }
            }
        }
        drop((active, session));
        let backoff = remote.backoff_ms.swap(0, Ordering::Relaxed);
        let wait = match backoff {
            0 => RECONNECT,
            ms => Duration::from_millis(ms),
        };
        remote.with_stats(|st| st.reconnect = Some(tokio::time::Instant::now() + wait));
        tokio::time::sleep(wait).await;
    }
}

/// Per table, what a session knows.
struct Shared {
    table: Arc<Table>,
    /// The last change pushed (sent, or gone before it was).
    last_pushed: u64,
    /// The number of the last update sent since the lesson (0: none).
    last_sent: u64,
    /// What the member had acknowledged when its lesson began: pushing starts there again
    /// once the member confirms it (HAProxy's `teaching_origin`), so that it gets the taught
    /// entries as plain updates, with a full expiry.
    teaching_origin: u64,
    /// The member's id for its table of the same name, and the data it stores.
    remote_id: Option<u64>,
    remote_data: u64,
    /// Array sizes of the member's array data types.
    remote_nbelem: [u64; 64],
    /// The last update received, and the last acknowledged.
    last_get: u32,
    last_acked: u32,
    /// The lesson we gave the member taught entries of the table.
    taught: bool,
    /// The member acknowledged updates of the table: it has one of that name and key.
    heard_ack: bool,
}

impl Shared {
    /// What `show peers` reports of the table.
    fn view(&self) -> show::SharedView {
        show::SharedView {
            remote_id: self.remote_id.unwrap_or(0),
            remote_data: self.remote_data,
            last_acked: self.last_acked,
            last_pushed: self.last_pushed as u32,
            last_get: self.last_get,
            teaching_origin: self.teaching_origin as u32,
        }
    }
}

/// What a session is for.
#[derive(Debug)]
enum Role {
    /// With another member.
    Member,
    /// From the process this one replaces: it teaches us.
    Successor,
    /// To the process replacing this one: we teach it (told here once it is confirmed),
    /// then push our changes until we exit.
    Teacher(Option<tokio::sync::oneshot::Sender<()>>),
}

impl Role {
    fn teacher(&self) -> bool {
        matches!(self, Role::Teacher(_))
    }
}

/// What the new process knows of the old one's counts at a reload (the session of
/// [`Role::Successor`]). After its lesson, the old process still sends the entries its
/// draining connections change, each with its counts as they are there; the new process
/// counts on the same entries meanwhile. So once the lesson is over, a cumulative count
/// that comes grows ours by what it grew by since the old process last sent it, instead of
/// replacing ours (which would lose our counts made since, as each such update did at a
/// reload under load: 0.05–1% of a shared entry's requests).
#[derive(Default)]
struct Predecessor {
    /// The lesson is over: counts that come are added.
    taught: bool,
    /// Per table, the cumulative counts of each entry as the old process last sent them.
    sent: Vec<HashMap<Key, Vec<(DataType, u64)>>>,
}

impl Predecessor {
    /// Counts that only grow (but when cleared), which the two processes count apart.
    fn cumulative(data: DataType) -> bool {
        use DataType::*;
        matches!(
            data,
            Gpc0 | ConnCnt
                | SessCnt
                | HttpReqCnt
                | HttpErrCnt
                | HttpFailCnt
                | BytesInCnt
                | BytesOutCnt
        )
    }

    /// `values` of `key` in `table` (our table `i`) as the old process sent them: after
    /// the lesson, each cumulative count becomes ours plus its growth there since it last
    /// came (the whole count when it went down: cleared there, or the entry made again).
    fn merge(&mut self, i: usize, table: &Table, key: &Key, values: &mut [(DataType, Value)]) {
        if self.sent.len() <= i {
            self.sent.resize_with(i + 1, HashMap::new);
        }
        let last = self.sent[i].entry(key.clone()).or_default();
        for (data, value) in values.iter_mut() {
            let Value::Count(theirs) = *value else {
                continue;
            };
            if !Predecessor::cumulative(*data) {
                continue;
            }
            let before = match last.iter_mut().find(|(d, _)| d == data) {
                Some((_, before)) => std::mem::replace(before, theirs),
                None => {
                    last.push((*data, theirs));
                    0
                }
            };
            if self.taught {
                // Read, then learned under the lock again: a count made here in between
                // (microseconds) is overwritten, where a whole push's delay was before.
                let growth = theirs.checked_sub(before).unwrap_or(theirs);
                let ours = table.read(key, *data).unwrap_or(0);
                *value = Value::Count(ours.wrapping_add(growth));
            }
        }
    }
}

/// A full resync being sent, a piece at a time.
struct Lesson {
    /// The table being taught, and the use-order position taught up to in it.
    table: usize,
    after: u64,
    /// Entries taught so far (they number those never changed here).
    count: u32,
}

/// An established session.
struct Session {
    /// Its number in [`Remote::session`] while it is the member's session.
    id: u64,
    role: Role,
    section: Arc<Section>,
    remote: Arc<Remote>,
    tables: Vec<Shared>,
    /// Our table the member's updates are for now.
    remote_table: Option<usize>,
    /// Our table the last definition we sent is of.
    last_defined: Option<usize>,
    /// We asked for a resync and wait for its end.
    learning: bool,
    /// We teach the whole tables, or taught them and wait for the confirmation.
    teaching: bool,
    /// What remains to be taught.
    lesson: Option<Lesson>,
    dict_tx: u64,
    out: Vec<u8>,
    /// An accepted session's ends: the member's address and ours.
    accepted: Option<show::Accepted>,
    /// The member defined tables of its own (a successor defines every one before it
    /// confirms a lesson: [`Session::define_all`]).
    heard_definitions: bool,
    /// Turns of its loop (`show peers`' task calls).
    calls: u32,
    /// From the process this one replaces: its counts as it sent them.
    predecessor: Option<Predecessor>,
    /// A message came from the member.
    alive: bool,
    /// What `show peers` was last told of the session and its tables: it is told again
    /// only when that changes.
    shown: Option<show::SessionView>,
    shown_tables: Vec<show::SharedView>,
}

async fn run(
    section: Arc<Section>,
    remote: Arc<Remote>,
    mut read: Reader,
    mut write: Writer,
    role: Role,
    accepted: Option<show::Accepted>,
) {
    let id = SESSIONS.fetch_add(1, Ordering::Relaxed);
    let _connected = Counted::new(&CONNECTED);
    section.task_calls.fetch_add(1, Ordering::Relaxed);
    remote.session.send_replace(id);
    let acked = (remote.acked.lock())
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let predecessor = matches!(role, Role::Successor).then(Predecessor::default);
    let mut s = Session {
        id,
        role,
        tables: (section.tables.iter().zip(acked))
            .map(|(t, acked)| Shared {
                table: t.clone(),
                last_pushed: unwrap_update(t.local_update(), acked),
                last_sent: 0,
                teaching_origin: 0,
                remote_id: None,
                remote_data: 0,
                remote_nbelem: [0; 64],
                last_get: 0,
                last_acked: 0,
                taught: false,
                heard_ack: false,
            })
            .collect(),
        section,
        remote: remote.clone(),
        remote_table: None,
        last_defined: None,
        learning: false,
        teaching: false,
        lesson: None,
        dict_tx: 0,
        out: Vec::new(),
        accepted,
        heard_definitions: false,
        calls: 0,
        predecessor,
        alive: false,
        shown: None,
        shown_tables: Vec::new(),
    };
    // A new session starts with empty dictionaries.
    *remote.dicts.lock().unwrap_or_else(|e| e.into_inner()) = show::Dicts::new();
    s.learning = s.lesson_expected();
    // Reading runs apart: a message half read must not be lost to the session's other work.
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let reader = tokio::spawn(async move {
        loop {
            let message = read_message(&mut read).await;
            let end = message.is_err();
            if tx.send(message).await.is_err() || end {
                return;
            }
        }
    });
    let end = s.serve(&mut rx, &mut write).await;
    let end = match end {
        // What the member sent before it closed is learned still.
        Err(End::Unwritable) => {
            s.learn_the_rest(&mut rx).await;
            Err(End::Closed)
        }
        end => end,
    };
    reader.abort();
    remote.with_stats(|st| {
        match end {
            Err(End::Protocol | End::SizeLimit) => st.proto_err += 1,
            Err(End::Silent) => st.no_hbt += 1,
            _ => {}
        }
        // Unless a new session replaced this one.
        if *remote.session.borrow() == id {
            st.session = None;
        }
    });
    if s.role.teacher() {
        s.section.teacher_live.store(false, Ordering::SeqCst);
    }
    if s.learning {
        s.section.learning.store(false, Ordering::Relaxed);
    }
    remote.session.send_if_modified(|current| {
        let mine = *current == id;
        if mine {
            *current = 0;
        }
        mine
    });
}

/// Why a session ends.
#[derive(Debug)]
enum End {
    Closed,
    /// Writing failed: the member closed or reset the connection, maybe after sending
    /// more than was read yet.
    Unwritable,
    /// Nothing heard for 5 s (HAProxy's missing heartbeats).
    Silent,
    Replaced,
    /// Malformed data (HAProxy's error 0).
    Protocol,
    /// A message longer than HAProxy's buffer (its error 1).
    SizeLimit,
}

impl From<std::io::Error> for End {
    fn from(_: std::io::Error) -> End {
        End::Closed
    }
}

impl From<Malformed> for End {
    fn from(_: Malformed) -> End {
        End::Protocol
    }
}

impl Session {
    async fn serve(
        &mut self,
        messages: &mut tokio::sync::mpsc::Receiver<Result<Message, End>>,
        write: &mut Writer,
    ) -> Result<(), End> {
        let mut sessions = self.remote.session.subscribe();
        let mut stopping = self.section.stopping.subscribe();
        if self.role.teacher() {
            self.teach();
        }
        let tables: Vec<Arc<Table>> = self.tables.iter().map(|t| t.table.clone()).collect();
        let mut last_read = tokio::time::Instant::now();
        let mut last_write = tokio::time::Instant::now();
        loop {
            // Listening before looking: a change made meanwhile wakes us.
            let changes = (tables.iter()).filter_map(|t| t.changes.as_ref().map(|c| c.listen()));
            let any_change = futures_select_all(changes);
            self.maybe_learn();
            // A write's worth of lesson, the table locked once per piece.
            while self.lesson.is_some() && self.out.len() < WRITE_CHUNK {
                self.next_lesson_piece();
            }
            self.push();
            if !self.out.is_empty() {
                write
                    .write_all(&self.out)
                    .await
                    .map_err(|_| End::Unwritable)?;
                self.out.clear();
                if self.out.capacity() > WRITE_CHUNK {
                    self.out = Vec::new();
                }
                last_write = tokio::time::Instant::now();
            }
            self.record_pushed();
            self.publish(last_read, last_write);
            tokio::select! {
                biased;
                message = messages.recv() => {
                    let result = match message.ok_or(End::Closed)? {
                        Ok((head, payload)) => {
                            self.alive = true;
                            self.handle(head, &payload)
                        }
                        Err(e) => Err(e),
                    };
                    last_read = tokio::time::Instant::now();
                    // HAProxy's error message before it closes.
                    let code = match result {
                        Err(End::Protocol) => Some(ERR_PROTOCOL),
                        Err(End::SizeLimit) => Some(ERR_SIZE_LIMIT),
                        _ => None,
                    };
                    if let Some(code) = code {
                        let _ = write.write_all(&[CLASS_ERROR, code]).await;
                    }
                    result?;
                }
                _ = sessions.changed() => {
                    if *sessions.borrow() != self.id {
                        return Err(End::Replaced);
                    }
                }
                // The teacher stops too: it ends with the process.
                _ = stopped(&mut stopping), if !self.role.teacher() => {
                    return Err(End::Closed);
                }
                // The next piece of a lesson.
                _ = std::future::ready(()), if self.lesson.is_some() => {}
                _ = any_change => {
                    // Once the other tasks ready have run: a burst of requests is
                    // written at once.
                    tokio::task::yield_now().await;
                }
                _ = tokio::time::sleep_until(last_write + HEARTBEAT) => {
                    self.out.extend_from_slice(&[CLASS_CONTROL, CTRL_HEARTBEAT]);
                    self.remote.with_stats(|st| st.tx_hbt += 1);
                }
                _ = tokio::time::sleep_until(last_read + SILENCE) => return Err(End::Silent),
            }
        }
    }

    /// Handles the messages the member sent before our write failed (it closed or reset the
    /// connection: the reader ends at the close, after them), for at most 5 s, while this
    /// is still the member's session: once a new one runs, they are stale (it sends what
    /// was not acknowledged again, and what we changed since must not be overwritten).
    async fn learn_the_rest(
        &mut self,
        messages: &mut tokio::sync::mpsc::Receiver<Result<Message, End>>,
    ) {
        let deadline = tokio::time::Instant::now() + SILENCE;
        while let Ok(Some(Ok((head, payload)))) =
            tokio::time::timeout_at(deadline, messages.recv()).await
        {
            if *self.remote.session.borrow() != self.id || self.handle(head, &payload).is_err() {
                break;
            }
        }
        self.out.clear();
    }

    /// What `show peers` reports of the session, as it is now: the turn and the timers in
    /// atomics; the rest, under the member's lock, only when it changed.
    fn publish(&mut self, last_read: tokio::time::Instant, last_write: tokio::time::Instant) {
        self.calls += 1;
        self.remote.live.record(self.calls, last_read, last_write);
        let view = self.view();
        let tables = self.tables.iter().map(Shared::view);
        let same_tables = self.shown_tables.len() == self.tables.len()
            && tables.clone().eq(self.shown_tables.iter().copied());
        if self.shown == Some(view) && same_tables {
            return;
        }
        self.shown = Some(view);
        self.shown_tables.clear();
        self.shown_tables.extend(tables);
        self.remote.with_stats(|st| {
            st.session = Some(view);
            for (v, shown) in st.tables.iter_mut().zip(&self.shown_tables) {
                *v = *shown;
            }
        });
    }

    /// The session's state for `show peers`.
    fn view(&self) -> show::SessionView {
        let mut flags = 0;
        if self.lesson.is_some() {
            flags |= show::TEACH_PROCESS;
        } else if self.teaching {
            flags |= show::TEACH_FINISHED;
        }
        if self.learning {
            flags |= show::LEARN_ASSIGN;
        }
        if self.alive {
            flags |= show::ALIVE;
        }
        show::SessionView {
            id: std::ptr::from_ref(self) as usize,
            accepted: self.accepted,
            flags,
            remote_table: self.remote_table,
            last_local_table: self.last_defined,
        }
    }

    /// A confirmed teacher tells the drain how far it wrote.
    fn record_pushed(&self) {
        if self.role.teacher() && !self.teaching {
            let section = &self.section;
            let records = section.teacher_pushed.iter().zip(&section.teacher_sent);
            for (t, (pushed, sent)) in self.tables.iter().zip(records) {
                pushed.store(t.last_pushed, Ordering::SeqCst);
                sent.store(t.last_sent, Ordering::SeqCst);
            }
        }
    }

    /// The old process connected to us while we wait for its lesson: the session is
    /// assigned that lesson as if we had asked for it (HAProxy's `init_accepted_peer`).
    fn lesson_expected(&self) -> bool {
        let section = &self.section;
        matches!(self.role, Role::Successor)
            && section.waiting_local.load(Ordering::Relaxed)
            && !section.resynced.load(Ordering::Relaxed)
            && !section.learning.swap(true, Ordering::Relaxed)
    }

    /// Asks this member for the whole tables when nobody taught us yet.
    fn maybe_learn(&mut self) {
        let section = &self.section;
        if self.learning
            || !matches!(self.role, Role::Member)
            || section.waiting_local.load(Ordering::Relaxed)
            || section.resynced.load(Ordering::Relaxed)
            || self.remote.not_up_to_date.load(Ordering::Relaxed)
            || section.learning.swap(true, Ordering::Relaxed)
        {
            return;
        }
        self.learning = true;
        self.section.event(show::RESYNC_REMOTE_ASSIGN);
        self.out
            .extend_from_slice(&[CLASS_CONTROL, CTRL_RESYNC_REQUEST]);
    }

    /// Acknowledgements due, then the entries changed here not sent yet (none while
    /// learning from this member or teaching it, none to the process we replace: its
    /// counts must stay its own, see [`Predecessor`]), up to a write's worth.
    fn push(&mut self) {
        self.acknowledge();
        for i in 0..self.tables.len() {
            if self.learning || self.teaching || self.predecessor.is_some() {
                continue;
            }
            while self.out.len() < WRITE_CHUNK {
                let t = &self.tables[i];
                let (changed, newest) = t.table.changed_after(t.last_pushed, BATCH);
                let drained = changed.len() < BATCH;
                let mut first = true;
                for e in changed {
                    let consecutive = !first && e.update == self.tables[i].last_pushed + 1;
                    self.define(i);
                    self.update(&e, e.update as u32, consecutive, false);
                    self.tables[i].last_pushed = e.update;
                    self.tables[i].last_sent = e.update;
                    first = false;
                }
                if drained {
                    // Changes of entries gone since count as sent.
                    let t = &mut self.tables[i];
                    t.last_pushed = t.last_pushed.max(newest);
                    break;
                }
            }
        }
    }

    /// The acknowledgements due: the last update received in each table.
    fn acknowledge(&mut self) {
        for t in &mut self.tables {
            if t.last_get != t.last_acked {
                if let Some(remote_id) = t.remote_id {
                    let mut p = Vec::new();
                    put_varint(&mut p, remote_id);
                    p.extend_from_slice(&t.last_get.to_be_bytes());
                    self.out.extend(table_message(STKT_ACK, &p));
                }
                t.last_acked = t.last_get;
            }
        }
    }

    /// The table definition message, before updates of another table than the last.
    fn define(&mut self, i: usize) {
        if self.last_defined == Some(i) {
            return;
        }
        self.last_defined = Some(i);
        let table = &self.tables[i].table;
        let spec = &table.spec;
        let mut p = Vec::new();
        put_varint(&mut p, i as u64 + 1);
        let name = wire_name(table, &self.section.name);
        put_varint(&mut p, name.len() as u64);
        p.extend_from_slice(name.as_bytes());
        put_varint(&mut p, key_type_id(spec.key));
        put_varint(&mut p, key_size(spec.key, spec.key_len));
        let mut bits = 0u64;
        let mut params = Vec::new();
        let mut stored: Vec<_> = spec.store.iter().collect();
        stored.sort_by_key(|s| data_id(s.data));
        for s in stored {
            let id = data_id(s.data);
            bits |= 1 << id;
            if s.data.is_rate() {
                put_varint(&mut params, u64::from(id));
                put_varint(&mut params, u64::from(s.period_ms));
            }
        }
        put_varint(&mut p, bits);
        let expire = spec.expire.map_or(0, |d| d.as_millis() as u64);
        put_varint(&mut p, expire);
        p.extend_from_slice(&params);
        self.out.extend(table_message(STKT_DEFINE, &p));
    }

    /// Every table's definition, for the old process that taught us: it waits for our
    /// acknowledgements only in the tables we define, so that it stops as soon as it has
    /// pushed its last changes to a table our configuration dropped (whose updates we
    /// ignore), even one it had nothing to teach of. A definition without updates is a
    /// valid message to HAProxy, which merely notes our table's id.
    fn define_all(&mut self) {
        for i in 0..self.tables.len() {
            self.define(i);
        }
    }

    /// An update message for `e`, numbered `id` on the wire.
    fn update(&mut self, e: &super::stick::Exported, id: u32, consecutive: bool, timed: bool) {
        let kind = match (consecutive, timed) {
            (true, false) => STKT_INCUPDATE,
            (false, false) => STKT_UPDATE,
            (true, true) => STKT_INCUPDATE_TIMED,
            (false, true) => STKT_UPDATE_TIMED,
        };
        let mut p = Vec::new();
        if !consecutive {
            p.extend_from_slice(&id.to_be_bytes());
        }
        if timed {
            p.extend_from_slice(&e.expire_in.to_be_bytes());
        }
        put_key(&mut p, &e.key);
        let now = now_ms();
        let mut values: Vec<_> = e.values.iter().collect();
        values.sort_by_key(|(d, _)| data_id(*d));
        for (data, value) in values {
            put_value(&mut p, *data, value, now, &mut self.dict_tx);
            if let super::stick::Value::Name(name) = value
                && !name.is_empty()
            {
                // The name went with the id just given.
                let slot = (self.dict_tx as usize).saturating_sub(1);
                let mut dicts = self.remote.dicts.lock().unwrap_or_else(|e| e.into_inner());
                if dicts.tx[slot].as_ref() != Some(name) {
                    dicts.tx[slot] = Some(name.clone());
                }
            }
        }
        self.out.extend(table_message(kind, &p));
    }

    /// Begins a full resync: every entry of every table, with its expiry, then the end of
    /// the lesson, sent a piece at a time ([`Session::next_lesson_piece`]).
    fn teach(&mut self) {
        self.teaching = true;
        let acked = (self.remote.acked.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (t, acked) in self.tables.iter_mut().zip(acked) {
            // What the member acknowledged (HAProxy's `st->update`).
            t.teaching_origin = unwrap_update(t.table.local_update(), acked);
            if self.role.teacher() {
                // The lesson covers the changes so far; pushing goes on after them.
                t.last_pushed = t.table.local_update();
            }
        }
        self.lesson = Some(Lesson {
            table: 0,
            after: 0,
            count: 0,
        });
    }

    /// The next piece of the lesson: the table's lock is taken once per piece, so that
    /// requests on it are not held up and the lesson is not kept whole in memory.
    fn next_lesson_piece(&mut self) {
        let Some(lesson) = &mut self.lesson else {
            return;
        };
        let Some(shared) = self.tables.get(lesson.table) else {
            self.lesson = None;
            let done = match self.section.resynced.load(Ordering::Relaxed) {
                true => CTRL_RESYNC_FINISHED,
                false => CTRL_RESYNC_PARTIAL,
            };
            self.out.extend_from_slice(&[CLASS_CONTROL, done]);
            return;
        };
        let (piece, last) = shared.table.export_used_after(lesson.after, BATCH);
        let (i, first) = (lesson.table, lesson.count);
        match piece.len() < BATCH {
            true => {
                *lesson = Lesson {
                    table: i + 1,
                    after: 0,
                    ..*lesson
                }
            }
            false => lesson.after = last,
        }
        lesson.count += piece.len() as u32;
        self.tables[i].taught |= !piece.is_empty();
        // Every table is defined, even without entries, as HAProxy teaches.
        self.define(i);
        for (n, e) in piece.iter().enumerate() {
            // Numbers for the lesson (the member acknowledges them; they are ignored).
            let id = match e.update {
                0 => 0x8000_0000 | first.wrapping_add(n as u32),
                local => local as u32,
            };
            self.update(e, id, false, true);
        }
    }

    /// The member confirmed the lesson: a successor gets our changes from the lesson's
    /// snapshot on; a member gets the taught entries again, as plain updates.
    fn confirmed(&mut self) {
        self.teaching = false;
        if self.role.teacher() {
            // A successor acknowledges a lesson's entries before it confirms it (see
            // `handle`): a table taught and not acknowledged is one it lacks. A hapx
            // successor also defines every table it has before it confirms (the one that
            // signalled us is one): a table it did not define, even one empty at the
            // lesson, is one it lacks, whose later updates it ignores.
            let defines_all = self.heard_definitions || REPLACED.load(Ordering::SeqCst);
            for (t, lacks) in self.tables.iter().zip(&self.section.successor_lacks) {
                let undefined = defines_all && t.remote_id.is_none();
                lacks.store((t.taught && !t.heard_ack) || undefined, Ordering::SeqCst);
            }
            self.record_pushed();
            self.section.heard_from_successor();
            self.section.teacher_live.store(true, Ordering::SeqCst);
            if let Role::Teacher(Some(confirmed)) =
                std::mem::replace(&mut self.role, Role::Teacher(None))
            {
                let _ = confirmed.send(());
            }
            return;
        }
        for t in &mut self.tables {
            t.last_pushed = t.teaching_origin;
        }
    }

    fn handle(&mut self, head: [u8; 2], payload: &[u8]) -> Result<(), End> {
        let mut c = Cursor { buf: payload };
        match head {
            [CLASS_CONTROL, CTRL_RESYNC_REQUEST] => {
                self.section.event(show::RESYNC_REQUESTED);
                self.teach();
            }
            [CLASS_CONTROL, CTRL_HEARTBEAT] => self.remote.with_stats(|st| st.rx_hbt += 1),
            [
                CLASS_CONTROL,
                done @ (CTRL_RESYNC_FINISHED | CTRL_RESYNC_PARTIAL),
            ] => {
                let finished = done == CTRL_RESYNC_FINISHED;
                if matches!(self.role, Role::Successor) {
                    // The old process's lesson: complete if it was complete. Its counts
                    // that come from now on add to ours.
                    if std::mem::take(&mut self.learning) {
                        self.section.learning.store(false, Ordering::Relaxed);
                    }
                    self.section.waiting_local.store(false, Ordering::Relaxed);
                    if let Some(predecessor) = &mut self.predecessor {
                        predecessor.taught = true;
                    }
                    if finished {
                        self.section.resynced.store(true, Ordering::Relaxed);
                    }
                    self.section.event(match finished {
                        true => show::RESYNC_LOCAL_FINISHED,
                        false => show::RESYNC_LOCAL_PARTIAL,
                    });
                } else if self.learning {
                    self.learning = false;
                    self.section.learning.store(false, Ordering::Relaxed);
                    if finished {
                        self.section.resynced.store(true, Ordering::Relaxed);
                    } else {
                        self.remote.not_up_to_date.store(true, Ordering::Relaxed);
                    }
                    self.section.event(match finished {
                        true => show::RESYNC_REMOTE_FINISHED,
                        false => show::RESYNC_REMOTE_PARTIAL,
                    });
                }
                // What the lesson taught is acknowledged before it is confirmed: its teacher
                // takes a table taught and not acknowledged by then for one we lack.
                self.acknowledge();
                if matches!(self.role, Role::Successor) {
                    self.define_all();
                }
                self.out
                    .extend_from_slice(&[CLASS_CONTROL, CTRL_RESYNC_CONFIRM]);
            }
            [CLASS_CONTROL, CTRL_RESYNC_CONFIRM] if self.teaching && self.lesson.is_none() => {
                self.confirmed();
            }
            [CLASS_CONTROL, _] => {}
            [CLASS_ERROR, _] => return Err(End::Closed),
            [CLASS_RESERVED, _] => return Err(End::Protocol),
            [CLASS_STICKTABLE, STKT_DEFINE] => {
                self.heard_definitions = true;
                self.defined(&mut c)?;
            }
            [CLASS_STICKTABLE, STKT_SWITCH] => {
                let id = c.varint()?;
                self.remote_table = self.tables.iter().position(|t| t.remote_id == Some(id));
            }
            [CLASS_STICKTABLE, STKT_ACK] => {
                let id = c.varint()?;
                let update = c.u32()?;
                let table = id.checked_sub(1).map(|i| i as usize);
                if let Some(t) = table.and_then(|i| self.tables.get_mut(i)) {
                    t.heard_ack = true;
                }
                let lacks = table.and_then(|i| self.section.successor_lacks.get(i));
                if let Some(lacks) = lacks.filter(|_| self.role.teacher()) {
                    lacks.store(false, Ordering::SeqCst);
                }
                if !self.teaching {
                    if let Some(i) = table {
                        if let Ok(mut acked) = self.remote.acked.lock() {
                            if let Some(a) = acked.get_mut(i) {
                                *a = update;
                            }
                        }
                    }
                    if self.role.teacher() {
                        self.section.heard_from_successor();
                    }
                }
            }
            [
                CLASS_STICKTABLE,
                kind @ (STKT_UPDATE..=STKT_INCUPDATE | STKT_UPDATE_TIMED..=STKT_INCUPDATE_TIMED),
            ] => {
                let numbered = matches!(kind, STKT_UPDATE | STKT_UPDATE_TIMED);
                let timed = matches!(kind, STKT_UPDATE_TIMED | STKT_INCUPDATE_TIMED);
                self.updated(&mut c, numbered, timed)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A table definition: ours of that name, if its key matches, receives what follows.
    fn defined(&mut self, c: &mut Cursor<'_>) -> Result<(), Malformed> {
        let id = c.varint()?;
        let len = c.varint()? as usize;
        let name = c.bytes(len)?.to_vec();
        self.remote_table = None;
        for t in &mut self.tables {
            if t.remote_id == Some(id) {
                t.remote_id = None;
            }
        }
        let key_type = c.varint()?;
        let key_len = c.varint()?;
        let data = c.varint()?;
        let section = &self.section.name;
        let ours = |t: &Shared| wire_name(&t.table, section).as_bytes() == name;
        let Some(i) = self.tables.iter().position(ours) else {
            return Ok(());
        };
        let spec = &self.tables[i].table.spec;
        if key_type != key_type_id(spec.key) || key_len != key_size(spec.key, spec.key_len) {
            return Ok(());
        }
        let mut nbelem = [0u64; 64];
        // The expiry, then each rate's and array's parameters.
        if c.varint().is_ok() {
            for bit in (0..64).filter(|b| data & (1 << b) != 0) {
                let Some((kind, array)) = std_type(bit) else {
                    return Ok(());
                };
                if array || kind == StdType::Frqp {
                    if c.varint()? != u64::from(bit) {
                        return Ok(());
                    }
                    if array {
                        nbelem[bit as usize] = c.varint()?;
                    }
                    if kind == StdType::Frqp {
                        c.varint()?;
                    }
                }
            }
        }
        let t = &mut self.tables[i];
        t.remote_id = Some(id);
        t.remote_data = data;
        t.remote_nbelem = nbelem;
        self.remote_table = Some(i);
        Ok(())
    }

    /// An entry from the member, into the table its last definition named.
    fn updated(
        &mut self,
        c: &mut Cursor<'_>,
        numbered: bool,
        timed: bool,
    ) -> Result<(), Malformed> {
        let Some(i) = self.remote_table else {
            return Ok(());
        };
        let t = &mut self.tables[i];
        t.last_get = match numbered {
            true => c.u32()?,
            false => t.last_get.wrapping_add(1),
        };
        let expire = if timed { Some(c.u32()?) } else { None };
        let spec = &t.table.spec;
        let key = get_key(c, spec.key, spec.key_len)?;
        let now = now_ms();
        let mut values = Vec::new();
        let mut dicts = self.remote.dicts.lock().unwrap_or_else(|e| e.into_inner());
        for bit in (0..64u32).filter(|b| t.remote_data & (1 << b) != 0) {
            let nbelem = t.remote_nbelem[bit as usize];
            values.extend(get_value(c, bit, nbelem, now, &mut dicts.rx)?);
        }
        drop(dicts);
        if let Some(predecessor) = &mut self.predecessor {
            predecessor.merge(i, &t.table, &key, &mut values);
        }
        t.table.learn(&key, expire, values);
        self.section.learned[i].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A table's name in the peers protocol: a proxy's goes by the proxy's name, a section's
/// by `/NAME`, its name less the section's (HAProxy 2.6's `nid`, which keeps the slash).
fn wire_name<'a>(table: &'a Table, section: &str) -> &'a str {
    (table.name.strip_prefix(section))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(&table.name)
}

/// The local change number a member's 32-bit acknowledgement `acked` stands for: the latest
/// one at or before `local` with those low bits (0 for nothing acknowledged).
fn unwrap_update(local: u64, acked: u32) -> u64 {
    match acked {
        0 => 0,
        _ => local.saturating_sub(u64::from((local as u32).wrapping_sub(acked))),
    }
}

/// Waits for the first of `futures` (none: forever).
async fn futures_select_all<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    if futures.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A message's two header bytes and, for a stick-table message, its payload.
type Message = ([u8; 2], Vec<u8>);

/// Reads one message.
async fn read_message(read: &mut Reader) -> Result<Message, End> {
    let mut head = [0u8; 2];
    read.read_exact(&mut head).await?;
    if head[1] & 0x80 == 0 {
        return Ok((head, Vec::new()));
    }
    // The length: a varint of at most 5 bytes.
    let mut len_bytes = Vec::new();
    loop {
        let b = read.read_u8().await?;
        len_bytes.push(b);
        let complete = (len_bytes.len() == 1 && b < 240) || (len_bytes.len() > 1 && b < 128);
        if complete {
            break;
        }
        if len_bytes.len() >= 5 {
            return Err(End::Protocol);
        }
    }
    let len = Cursor { buf: &len_bytes }.varint()? as usize;
    if len > MAX_MESSAGE {
        return Err(End::SizeLimit);
    }
    let mut payload = vec![0u8; len];
    read.read_exact(&mut payload).await?;
    Ok((head, payload))
}

#[cfg(test)]
mod tests {
    use super::{DataType, Key, Predecessor, Table, Value, unwrap_update};
    use crate::config::stick::parse_table;

    /// A table storing `http_req_cnt` and `gpt0`.
    fn table() -> Table {
        let words: Vec<String> = "type string len 16 size 10 store http_req_cnt,gpt0"
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Table::new("t".into(), parse_table(&words, &mut Vec::new()).unwrap())
    }

    /// What `predecessor` makes of the old process's `shared` counted `requests` times,
    /// its `gpt0` set to `gpt0`, learned into `table`.
    fn merged(predecessor: &mut Predecessor, table: &Table, requests: u64, gpt0: u64) -> Vec<u64> {
        let key: Key = table.key_of_text("shared");
        let mut values = vec![
            (DataType::HttpReqCnt, Value::Count(requests)),
            (DataType::Gpt0, Value::Count(gpt0)),
        ];
        predecessor.merge(0, table, &key, &mut values);
        table.learn(&key, None, values.clone());
        let counts = values.into_iter().map(|(_, v)| match v {
            Value::Count(n) => n,
            _ => unreachable!("only counts were sent"),
        });
        counts.collect()
    }

    #[test]
    fn a_predecessors_counts_add_to_ours_after_its_lesson() {
        let table = table();
        let mut predecessor = Predecessor::default();
        // The lesson's values are taken as they are.
        assert_eq!(merged(&mut predecessor, &table, 100, 7), [100, 7]);
        predecessor.taught = true;
        // We counted 5 more, the old process 2 more: both kept; a set value is theirs.
        let key = table.key_of_text("shared");
        table.update(&key, |d| d.add(DataType::HttpReqCnt, 5));
        assert_eq!(merged(&mut predecessor, &table, 102, 9), [107, 9]);
        // Cleared there, then counted once: that one is added.
        assert_eq!(merged(&mut predecessor, &table, 1, 9), [108, 9]);
    }

    #[test]
    fn acknowledgements_map_to_the_latest_matching_change() {
        assert_eq!(unwrap_update(10, 0), 0);
        assert_eq!(unwrap_update(10, 7), 7);
        assert_eq!(unwrap_update(10, 10), 10);
        // Past a wrap of the 32-bit numbers.
        let local = (1u64 << 32) + 5;
        assert_eq!(unwrap_update(local, 3), (1 << 32) + 3);
        assert_eq!(unwrap_update(local, u32::MAX), (1 << 32) - 1);
    }
}
