//! One TCP-mode connection: choose a server, connect (with retries and redispatch), forward
//! both ways, count, log. A connection whose rules choose an HTTP backend turns to HTTP, as
//! HAProxy's stream does: it goes to [`super::http::serve_upgraded`] with what was read.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::model::{ConnSource, UseSrc};
use crate::config::rules::LogLevel;

pub use super::balance::Slot;
use super::balance::{self, Direct, Picked, QueuePositions, Recheck, Ticket};
use super::forward::{self, End, Moved};
use super::log;
use super::rules;
use super::state::{Backend, Frontend, Server, SessionTimes, State};
use super::tls::{Borrowed, HandshakeError};
use crate::config::bind_tls::TlsServer;
use crate::config::tls::TlsClient;

/// The limit of a wait that has none: without `timeout connect` (and `timeout queue`),
/// HAProxy bounds neither the connection attempts nor the queue (it only warns). Thirty
/// years, tokio's own "far future".
const ETERNITY: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A connected server.
#[derive(Debug)]
pub struct Connected {
    pub server: Arc<Server>,
    pub stream: TcpStream,
    pub slot: Slot,
    /// `%Tc`: from the first attempt (retries and their pauses included, as HAProxy's) to
    /// this one's connection, its TLS handshake included.
    pub connect_time: Duration,
    /// This attempt's own TCP connection time: what remains of `timeout connect` after it is
    /// the TLS handshake's.
    attempt_time: Duration,
    pub queue_time: Duration,
    /// Where it waited in the queues (`%sq`, `%bq`).
    pub queued: QueuePositions,
    /// Attempts made before this one (`%rc`), and whether one went to another server.
    pub retries: u32,
    pub redispatched: bool,
    /// How the connection came to its server (kept for a retry after a failed handshake).
    direct: Direct,
    /// Its server's [`KillSwitch::firings`](super::shutdown::KillSwitch::firings) when
    /// this attempt began: the stream is the server's from then on, and a firing since
    /// kills it (its TLS handshake, its registration).
    pub kill_since: u64,
}

impl Connected {
    /// The error of a connection killed with its server's sessions before it was ready
    /// (in its TLS handshake, its PROXY header's sending): closed with its slot.
    pub fn killed(self, why: super::shutdown::Killed) -> ConnectError {
        ConnectError::Killed {
            server: self.server,
            why,
            retries: self.retries,
        }
    }

    /// The error of a connection whose client left (`left`) before it was ready (in its
    /// TLS handshake): closed with its slot.
    pub fn client_left(self, left: Left) -> ConnectError {
        ConnectError::ClientLeft(self.server, left, self.retries)
    }
}

/// Why no server connection could be made.
#[derive(Debug)]
pub enum ConnectError {
    NoServer,
    /// Every server stayed full for `timeout queue`: where and how long the connection
    /// waited; `server`: the server whose queue it was (the log line names it), none in
    /// the backend's.
    QueueTimeout {
        queued: QueuePositions,
        waited: Duration,
        server: Option<Arc<Server>>,
    },
    /// The server's queue was at its `maxqueue`: refused at once, without waiting (`SQ`,
    /// no queue time), naming the server.
    QueueFull(Arc<Server>),
    /// Every attempt failed; the server tried last (which the log line names) and its
    /// error; `waited`: the time before the last server was picked (`%Tw`: the queue's,
    /// then each redispatch's failed attempts), `redispatched`: a redispatch moved it on
    /// the way (`%rc`'s `+`).
    Failed {
        server: Arc<Server>,
        err: io::Error,
        waited: Duration,
        redispatched: bool,
    },
    /// The server's sessions were killed while it connected ([`super::shutdown`]: as in
    /// HAProxy, a session is its server's from its connection slot on), after `retries`.
    Killed {
        server: Arc<Server>,
        why: super::shutdown::Killed,
        retries: u32,
    },
    /// The client left (see [`Watch`]) while its server was connected to: the attempt is
    /// abandoned, as HAProxy's `back_handle_st_con` does (`CC`; `CD` in TCP mode after a
    /// reset), after the retries counted last (a retry's turn-around included).
    ClientLeft(Arc<Server>, Left, u32),
    /// The client left (see [`Watch`]) while it waited in a queue: it leaves the queue at
    /// once, as HAProxy's `back_handle_st_que` does (`CQ`; `CD` in TCP mode after a reset),
    /// after `waited` where `queued` says; `server`: the server whose queue it was (the log
    /// line names it), none in the backend's.
    ClientLeftQueue {
        queued: QueuePositions,
        waited: Duration,
        server: Option<Arc<Server>>,
        left: Left,
    },
    /// No address to leave from: a `usesrc hdr_ip` whose header the request lacks (or out
    /// of HTTP mode), HAProxy's `SF_ERR_INTERNAL`, failed at once without a retry (`IC`,
    /// HTTP's 500), after `retries`.
    Internal {
        server: Arc<Server>,
        retries: u32,
    },
}

/// How a client left while its connection waited for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// It closed its side (a FIN).
    Closed,
    /// It reset the connection, or (HTTP) closed it before its request's body ended:
    /// HAProxy's read error on the request, counted as the client's abort (`cli_abrt`) of
    /// the backend and of the server it waited for.
    Aborted,
    /// A TCP-mode client that sent nothing for `timeout client` since its accept: HAProxy's
    /// read timeout on the request, which ends the attempts too (`cC`), counted as the
    /// client's abort.
    TimedOut,
}

/// A TCP-mode client as [`tcp_watch`] watches it while it waits for its server.
#[derive(Debug, Clone, Copy)]
pub struct TcpClient<'c> {
    pub stream: &'c TcpStream,
    /// It sent data already (read, waiting to be forwarded).
    pub has_data: bool,
    /// When its `timeout client` ends it, if it sends nothing until then (counted from its
    /// accept, HAProxy's last read); None once it sent something, or without the timeout.
    pub silent_until: Option<Instant>,
}

/// What ends a wait for a server early: a future ready when the client left, as HAProxy's
/// `check_req_may_abort` and `back_handle_st_con` decide. Borrowed, so that one watch
/// spans the queue and the connection attempts; it exists only while the connection
/// waits. [`tcp_watch`] is TCP mode's; HTTP mode has its own, which reads the request's
/// body meanwhile.
pub type Watch<'w> = Pin<&'w mut (dyn Future<Output = Left> + Send + 'w)>;

/// `watch` lent for one step of the wait.
pub fn reborrow<'a>(watch: &'a mut Option<Watch<'_>>) -> Option<Watch<'a>> {
    match watch {
        Some(watch) => Some(watch.as_mut()),
        None => None,
    }
}

impl ConnectError {
    /// Where the connection waited in the queues before it failed.
    pub fn queued(&self) -> QueuePositions {
        match self {
            ConnectError::QueueTimeout { queued, .. }
            | ConnectError::ClientLeftQueue { queued, .. } => *queued,
            _ => QueuePositions::default(),
        }
    }

    /// How long the connection waited in the queue before it gave up (`%Tw`), or until
    /// its last server was picked when every attempt failed (a redispatch's failed
    /// attempts count in, as HAProxy's `Tw` counts them).
    pub fn queue_time(&self) -> Option<Duration> {
        match self {
            ConnectError::QueueTimeout { waited, .. }
            | ConnectError::ClientLeftQueue { waited, .. }
            | ConnectError::Failed { waited, .. } => Some(*waited),
            _ => None,
        }
    }

    /// The server tried last, if any (the one the log line names).
    pub fn server(&self) -> Option<&Arc<Server>> {
        match self {
            ConnectError::Failed { server, .. }
            | ConnectError::Killed { server, .. }
            | ConnectError::Internal { server, .. }
            | ConnectError::ClientLeft(server, ..) => Some(server),
            ConnectError::ClientLeftQueue { server, .. }
            | ConnectError::QueueTimeout { server, .. } => server.as_ref(),
            ConnectError::QueueFull(server) => Some(server),
            _ => None,
        }
    }

    /// A redispatch moved the connection to another server before its attempts all failed
    /// (`%rc` starts with `+`).
    pub fn redispatched(&self) -> bool {
        matches!(
            self,
            ConnectError::Failed {
                redispatched: true,
                ..
            }
        )
    }

    /// The retries made (`%rc`): all of `backend`'s when every attempt failed.
    pub fn retries(&self, backend: &Backend) -> u32 {
        match self {
            ConnectError::Failed { .. } => backend.conf.retries,
            ConnectError::Killed { retries, .. }
            | ConnectError::Internal { retries, .. }
            | ConnectError::ClientLeft(.., retries) => *retries,
            _ => 0,
        }
    }

    /// The termination state HAProxy logs: `sQ` after the queue, `SQ` for a full one, `sC`
    /// when the attempts timed out, the kill's code in the connection phase (`KC`) when
    /// killed, else `SC`; for a client that left, `CQ` in the queue, `CC` while connecting,
    /// and in TCP mode `CD` after its reset (HAProxy's read error is a data-phase abort there).
    pub fn term(&self) -> &'static str {
        match self {
            ConnectError::Killed { why, .. } => why.connecting_flags(),
            ConnectError::ClientLeft(_, Left::Aborted, _)
            | ConnectError::ClientLeftQueue {
                left: Left::Aborted,
                ..
            } => "CD--",
            ConnectError::ClientLeft(_, Left::TimedOut, _) => "cC--",
            ConnectError::ClientLeftQueue {
                left: Left::TimedOut,
                ..
            } => "cQ--",
            ConnectError::ClientLeft(..) => "CC--",
            ConnectError::ClientLeftQueue { .. } => "CQ--",
            ConnectError::QueueTimeout { .. } => "sQ--",
            ConnectError::QueueFull(_) => "SQ--",
            ConnectError::Internal { .. } => "IC--",
            ConnectError::Failed { err, .. } if err.kind() == io::ErrorKind::TimedOut => "sC--",
            ConnectError::NoServer | ConnectError::Failed { .. } => "SC--",
        }
    }

    /// The status of HTTP's answer: HAProxy's 500 for an internal error, else 503.
    pub fn http_status(&self) -> u16 {
        match self {
            ConnectError::Internal { .. } => 500,
            _ => 503,
        }
    }
}

/// Whom a server connection is for, as `usesrc` reads it (HAProxy's `alloc_bind_address`):
/// the client's address, and in HTTP mode the request whose header `hdr_ip` reads.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A TCP-mode session's client.
    Client(SocketAddr),
    /// An HTTP request (as sent to the server) and its client.
    Request(SocketAddr, &'a super::http::Head),
}

impl Origin<'_> {
    fn client(&self) -> SocketAddr {
        match *self {
            Origin::Client(client) | Origin::Request(client, _) => client,
        }
    }
}

/// A `usesrc hdr_ip` that has no address for a connection (see [`foreign_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoHeaderAddress;

/// Where a connection from `source` for `origin` is bound instead of `source`'s address
/// (`usesrc`; port 0: any), None without `usesrc`; `Err` when there is no such address (an
/// `hdr_ip` the request lacks, with occurrence 0, or out of HTTP mode: HAProxy's internal
/// error).
pub fn foreign_address(
    source: Option<&ConnSource>,
    origin: Origin<'_>,
) -> Result<Option<SocketAddr>, NoHeaderAddress> {
    let Some(usesrc) = source.and_then(|s| s.usesrc.as_ref()) else {
        return Ok(None);
    };
    let client = origin.client();
    let foreign = match usesrc {
        UseSrc::Addr(addr) => *addr,
        UseSrc::Client => client,
        UseSrc::ClientIp => SocketAddr::new(client.ip(), 0),
        UseSrc::Header { name, occurrence } => {
            let Origin::Request(_, head) = origin else {
                return Err(NoHeaderAddress);
            };
            let value = header_occurrence(head, name, *occurrence).ok_or(NoHeaderAddress)?;
            SocketAddr::new(inetaddr_host_lim(value.as_bytes()).into(), 0)
        }
    };
    Ok(Some(foreign))
}

/// Whether connections to `server` leave from an address that follows their client
/// (`usesrc client`, `clientip`, `hdr_ip`): HAProxy reuses such a connection only for a
/// request that would bind the same address, hapx keeps it with its client connection.
pub fn source_follows_client(server: &Server) -> bool {
    let usesrc = server.opts.source.as_ref().and_then(|s| s.usesrc.as_ref());
    matches!(
        usesrc,
        Some(UseSrc::Client | UseSrc::ClientIp | UseSrc::Header { .. })
    )
}

/// Whether `stream`, a connection to `server`, leaves from where a new one for `origin`
/// would (always when its address does not follow the client): a request whose `hdr_ip`
/// names another address does not reuse it.
pub fn leaves_as(stream: &TcpStream, server: &Server, origin: Origin<'_>) -> bool {
    if !source_follows_client(server) {
        return true;
    }
    let Ok(Some(wanted)) = foreign_address(server.opts.source.as_ref(), origin) else {
        return false;
    };
    stream.local_addr().is_ok_and(|bound| {
        bound.ip() == wanted.ip() && (wanted.port() == 0 || bound.port() == wanted.port())
    })
}

/// Occurrence `occurrence` of header `name`'s comma-separated values (HAProxy's
/// `http_get_htx_hdr`): N from the first, -N from the last (up to -10); 0 finds none
/// (`alloc_bind_address` refuses it).
fn header_occurrence<'h>(
    head: &'h super::http::Head,
    name: &str,
    occurrence: i32,
) -> Option<&'h str> {
    let mut values = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| super::h1::list_elements(v))
        .map(|v| v.trim_end_matches([' ', '\t']));
    match occurrence {
        0 | ..-10 => None,
        1.. => values.nth(occurrence as usize - 1),
        _ => {
            let all: Vec<&str> = values.collect();
            let from_last = occurrence.unsigned_abs() as usize;
            all.len().checked_sub(from_last).map(|i| all[i])
        }
    }
}

/// HAProxy's `inetaddr_host_lim`: an IPv4 address read without checks, as `hdr_ip` reads
/// one. Up to four dot-separated groups of digits, each group's last three digits weighed
/// 100, 10 and 1 in its byte (so `300` carries into the byte before), missing ones zero.
fn inetaddr_host_lim(text: &[u8]) -> std::net::Ipv4Addr {
    let zero = u32::from_be_bytes([b'0'; 4]);
    let (mut ones, mut tens, mut hundreds) = (zero, zero, zero);
    let (mut shift, mut start, mut at) = (24, 0, 0);
    loop {
        while text.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = &text[start..at];
        for (place, &digit) in [&mut ones, &mut tens, &mut hundreds]
            .into_iter()
            .zip(digits.iter().rev())
        {
            *place |= u32::from(digit) << shift;
        }
        if shift == 0 || text.get(at) != Some(&b'.') {
            break;
        }
        shift -= 8;
        at += 1;
        start = at;
    }
    let (ones, tens, hundreds) = (ones - zero, tens - zero, hundreds - zero);
    let host = hundreds
        .wrapping_mul(10)
        .wrapping_add(tens)
        .wrapping_mul(10)
        .wrapping_add(ones);
    std::net::Ipv4Addr::from(host)
}

/// Picks a server for a client with `key` (see [`balance::connection_key`]) and connects
/// to it, retrying `retries` times; with `option redispatch`
/// some retries go to another server (see [`next_attempt`]); the connection error counts
/// once, for the server of the last attempt. `stuck`: the server a `stick` rule names goes
/// first, past the balancer; balanced when that server takes nothing now (a queue timeout
/// stays an error), and is retried before any redispatch (see [`Direct`]); `forced`:
/// `force-persist` matched, and the connection is never redispatched.
///
/// `has_data`: the caller holds data to send at once (a request, what the client sent).
/// With `option tcp-smart-connect` the ACK that completes the handshake then waits to leave
/// with that data, as in HAProxy; a PROXY header counts as data too. Without data the ACK
/// goes at once, so a server that speaks first is never kept waiting for it.
///
/// `client` is watched ([`tcp_watch`]) while the connection waits in a queue and while its
/// server is connected to: when it leaves, the queue is left
/// ([`ConnectError::ClientLeftQueue`]) or the attempt abandoned ([`ConnectError::ClientLeft`])
/// at once, as HAProxy's `back_handle_st_que` and `back_handle_st_con` abort. A failed
/// connection's client is left nothing unread (see the end).
pub async fn connect(
    backend: &Arc<Backend>,
    stuck: Option<&Arc<Server>>,
    forced: bool,
    key: balance::Key,
    (peer, local): (SocketAddr, SocketAddr),
    client: TcpClient<'_>,
    listed: &super::shutdown::Registration,
) -> Result<Connected, ConnectError> {
    let has_data = client.has_data;
    let queued = Instant::now();
    let mut positions = QueuePositions::default();
    // Boxed: the watch lives only while the connection waits, not in the session's task.
    let mut watch = Box::pin(tcp_watch(client, backend.conf.options.abortonclose));
    let watching = Some(watch.as_mut() as Watch<'_>);
    let connected = match slot_for(backend, stuck, true, key, &mut positions, watching).await {
        Err(e) => Err(e),
        Ok(slot) => {
            let direct = Direct::of(stuck, forced, slot.server());
            let waited = (queued.elapsed(), positions);
            let server = slot.server().clone();
            let origin = Origin::Client(peer);
            let tally = AtomicU32::new(0);
            let progress = Progress {
                listed: Some(listed),
                ..Progress::new(waited, direct, &tally)
            };
            progress.assigned(&slot);
            // Boxed: the attempts' state is not part of the session's task for its life.
            let ends = (origin, local);
            let connecting = Box::pin(attempts(backend, ends, has_data, slot, progress));
            tokio::select! {
                biased;
                connected = connecting => connected,
                left = watch.as_mut() => {
                    Err(ConnectError::ClientLeft(server, left, tally.load(Relaxed)))
                }
            }
        }
    };
    connected.map_err(|e| connect_failed(backend, e))
}

/// A TCP-mode connection that failed (`e`): a reset while connecting counted as the
/// client's abort, as HAProxy counts it. (What the client sent is read at the session's
/// end: see [`Unconnected::count_received`].)
fn connect_failed(backend: &Backend, e: ConnectError) -> ConnectError {
    if let ConnectError::ClientLeft(server, Left::Aborted | Left::TimedOut, _) = &e {
        server.counters.client_aborts.fetch_add(1, Relaxed);
        backend.counters.client_aborts.fetch_add(1, Relaxed);
    }
    e
}

/// What HAProxy's request buffer takes of a client before the server connection is made:
/// `tune.bufsize` (16384) less the `tune.maxrewrite` (1024) it keeps free until data may
/// leave (`channel_recv_limit`). The rest waits in the socket, never counted.
const UNCONNECTED_REQUEST_LIMIT: u64 = 16384 - 1024;

/// Drops all that `client` has received, without waiting, as HAProxy's `sock_drain` does
/// before a close (with MSG_TRUNC on Linux: all of it at once, whatever its size). The
/// number of bytes dropped.
fn discard_unread(client: &TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
    // SAFETY: with MSG_TRUNC a TCP socket's data is dropped, never copied to the buffer, so
    // a null one of any length is never written; `client` keeps the fd open meanwhile.
    let fd = client.as_raw_fd();
    let n = unsafe { libc::recv(fd, std::ptr::null_mut(), i32::MAX as usize, flags) };
    if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT) {
        // A kernel that copies anyway: one buffer's worth, HAProxy's fallback.
        return forward::read_early(client).map_or(0, |data| data.len() as u64);
    }
    u64::try_from(n).unwrap_or(0)
}

/// How many bytes wait to be read on `client` (a look that reads nothing).
fn unread_len(client: &TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `waiting`, which outlives the call; `client`
    // keeps the fd open meanwhile.
    let ok = unsafe { libc::ioctl(client.as_raw_fd(), libc::FIONREAD, &raw mut waiting) } == 0;
    if ok {
        u64::try_from(waiting).unwrap_or(0)
    } else {
        0
    }
}

/// A TCP session that ends without a server connection (refused, timed out in the
/// queue, no server, its client gone...): where its client's bytes count.
struct Unconnected<'s> {
    state: &'s State,
    fe: &'s Frontend,
    backend: &'s Backend,
    client: &'s TcpStream,
    /// What the session read of the client already (for content rules, `tcp-smart-connect`).
    read: usize,
    /// The client speaks TLS: what waits in its socket is ciphertext, none of it counted.
    tls: bool,
}

impl Unconnected<'_> {
    /// Drains the client's socket and counts what the client sent as HAProxy does, which
    /// read it into its request buffer (up to [`UNCONNECTED_REQUEST_LIMIT`]) while it
    /// waited, and counts it as received (`req->total`): in the frontend's, the backend's
    /// and the `server`'s `bin` (the one it was for, if any), and in its tracked entries.
    /// Draining makes the close a FIN, where unread data would make it a reset.
    fn count_received(&self, server: Option<&Server>) -> u64 {
        let unread = discard_unread(self.client);
        let unread = if self.tls { 0 } else { unread };
        let received = (self.read as u64 + unread).min(UNCONNECTED_REQUEST_LIMIT);
        let backend = Some(self.backend);
        count_request_bytes(self.state, self.fe, backend, server, received);
        received
    }
}

/// Counts `received` bytes of a client that no forwarding counted (its session ended
/// before a server connection), as HAProxy's `stream_process_counters` counts its request
/// channel's: in the `bin` of its frontend, of its backend and server if it had them, and
/// in its tracked entries.
fn count_request_bytes(
    state: &State,
    fe: &Frontend,
    backend: Option<&Backend>,
    server: Option<&Server>,
    received: u64,
) {
    let entered = backend.map(|b| &b.counters).into_iter();
    let counters = entered.chain(server.map(|s| &s.counters));
    for c in std::iter::once(&fe.counters).chain(counters) {
        c.bytes_in.fetch_add(received, Relaxed);
    }
    state.tables.count_bytes(received, 0);
}

/// `work`, a step of a TCP-mode connection attempt past [`connect`] (the TLS handshake to
/// a `server ... ssl`, its retries), abandoned when the client leaves as [`tcp_watch`]
/// sees it: HAProxy's connect phase (`back_handle_st_con`) covers the handshake too.
async fn unless_client_leaves<F: Future>(
    client: TcpClient<'_>,
    abortonclose: bool,
    work: F,
) -> Result<F::Output, Left> {
    tokio::select! {
        biased;
        done = work => Ok(done),
        left = tcp_watch(client, abortonclose) => Err(left),
    }
}

/// A TCP-mode client's [`Watch`]: ready at its reset ([`Left::Aborted`]), or at its FIN
/// ([`Left::Closed`]) when nothing it sent waits (`has_data`: data read already; else
/// none unread) or with `option abortonclose`, as HAProxy aborts a connection whose
/// request channel is shut and empty (or any, with the option). Once a client that sent
/// data closed, the connection goes on with that data: nothing more is watched (HAProxy
/// reads no more from it). Nothing is read: the data stays for the forwarding. A client
/// silent until its `silent_until` times out ([`Left::TimedOut`]).
async fn tcp_watch(client: TcpClient<'_>, abortonclose: bool) -> Left {
    let closed = tcp_closed(client.stream, client.has_data, abortonclose);
    let Some(deadline) = client.silent_until else {
        return closed.await;
    };
    tokio::pin!(closed);
    tokio::select! {
        biased;
        left = &mut closed => return left,
        () = tokio::time::sleep_until(deadline.into()) => {}
    }
    // What came meanwhile HAProxy read, its timer then started anew: the client is no
    // longer silent.
    if sent_nothing(client.stream) {
        return Left::TimedOut;
    }
    closed.await
}

/// Whether `client` has nothing waiting to be read and is still open (a look that reads
/// nothing, without waiting).
fn sent_nothing(client: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT;
    // SAFETY: one byte at most is written into `byte`, which outlives the call; `client`
    // keeps the fd open meanwhile.
    let n = unsafe { libc::recv(client.as_raw_fd(), (&raw mut byte).cast(), 1, flags) };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// [`tcp_watch`]'s wait for the client's close.
async fn tcp_closed(client: &TcpStream, has_data: bool, abortonclose: bool) -> Left {
    use tokio::io::Interest;
    // Tokio counts a socket whose read side closed (a FIN, a reset) as ready for PRIORITY
    // on Linux, and the reset's error for ERROR; unlike READABLE, neither is set by data,
    // so this waits for the close alone, without consuming anything (or clearing the
    // readiness the forwarding will wait on).
    loop {
        let Ok(ready) = client.ready(Interest::PRIORITY | Interest::ERROR).await else {
            return Left::Aborted;
        };
        if ready.is_read_closed() || ready.is_error() {
            break;
        }
        // Urgent data (TCP's out-of-band byte) is no close: its readiness is cleared.
        let urgent_only = || Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock));
        let _ = client.try_io(Interest::PRIORITY, urgent_only);
    }
    if !matches!(client.take_error(), Ok(None)) {
        return Left::Aborted;
    }
    if abortonclose || (!has_data && nothing_unread(client)) {
        return Left::Closed;
    }
    std::future::pending().await
}

/// Whether nothing waits to be read on `client` (a look that reads nothing).
fn nothing_unread(client: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::uninit(); 1];
    matches!(socket2::SockRef::from(client).peek(&mut byte), Ok(0))
}

/// [`connect`] with a slot the balancer gave already, after `waited`: the time it waited
/// for it and where (`%Tw`, `%sq`, `%bq`); `direct`: how it came to that slot's server;
/// `origin`: whom it is for (`usesrc`).
pub async fn connect_from(
    backend: &Arc<Backend>,
    origin: Origin<'_>,
    local: SocketAddr,
    has_data: bool,
    slot: Slot,
    waited: (Duration, QueuePositions),
    direct: Direct,
) -> Result<Connected, ConnectError> {
    let tally = AtomicU32::new(0);
    let progress = Progress::new(waited, direct, &tally);
    attempts(backend, (origin, local), has_data, slot, progress).await
}

/// Where a connection's attempts stand: carried from one attempt to the next, including
/// across a failed TLS handshake (see [`retry_after_handshake`]).
#[derive(Debug, Clone, Copy)]
struct Progress<'t> {
    queue_time: Duration,
    positions: QueuePositions,
    /// When the first attempt began (`%Tc` counts from there).
    began: Instant,
    /// The attempt about to be made (0: the first).
    attempt: u32,
    redispatched: bool,
    direct: Direct,
    /// `attempt`, seen by whoever may abandon the attempts: a client that leaves during a
    /// retry's turn-around is logged with the retries counted so far (`%rc`), as HAProxy's.
    tally: &'t AtomicU32,
    /// Its TCP session's `show sess` entry, which names the server each attempt goes to.
    listed: Option<&'t super::shutdown::Registration>,
}

impl<'t> Progress<'t> {
    /// Before the first attempt, after `waited` for its slot (`%Tw`, `%sq`, `%bq`).
    fn new(waited: (Duration, QueuePositions), direct: Direct, tally: &'t AtomicU32) -> Self {
        let (queue_time, positions) = waited;
        Progress {
            queue_time,
            positions,
            began: Instant::now(),
            attempt: 0,
            redispatched: false,
            direct,
            tally,
            listed: None,
        }
    }

    /// The attempts go to `slot`'s server from now on.
    fn assigned(&self, slot: &Slot) {
        if let Some(listed) = self.listed {
            listed.assigned(slot.server());
        }
    }

    /// On to the next attempt: a retry counted.
    fn advance(&mut self) {
        self.attempt += 1;
        self.tally.store(self.attempt, Relaxed);
    }
}

/// How long one attempt may take, TCP connect and TLS handshake together (HAProxy's one
/// connect timer).
fn connect_timeout(backend: &Backend) -> Duration {
    backend.conf.timeouts.connect.unwrap_or(ETERNITY)
}

/// The attempts from `progress.attempt` on, up to `retries`.
async fn attempts(
    backend: &Arc<Backend>,
    (origin, local): (Origin<'_>, SocketAddr),
    has_data: bool,
    mut slot: Slot,
    mut progress: Progress<'_>,
) -> Result<Connected, ConnectError> {
    let conf = &backend.conf;
    let timeout = connect_timeout(backend);
    let mut last_err = io::Error::other("no connection attempt");
    while progress.attempt <= conf.retries {
        let server = slot.server().clone();
        let Some(addr) = server.socket_addr(local.port()) else {
            let key = slot.key();
            drop(slot);
            slot =
                wait_for_server(backend, key, Some(&server), &mut progress.positions, None).await?;
            progress.assigned(&slot);
            progress.advance();
            continue;
        };
        let started = Instant::now();
        let delayed_ack =
            conf.options.tcp_smart_connect && (has_data || server.opts.send_proxy.is_some());
        let keepalive = conf.options.srvtcpka.then_some(&conf.srvtcpka);
        // HAProxy's `connect` column: each attempt, on the server it goes to.
        server.idle.connects.fetch_add(1, Relaxed);
        if backend.mode == crate::config::model::Mode::Tcp {
            super::pool::note_tcp_attempt(&server);
        }
        let source = server.opts.source.as_ref();
        let Ok(foreign) = foreign_address(source, origin) else {
            return Err(internal(backend, slot, progress.attempt));
        };
        let opening = open_connection(addr, (source, foreign), delayed_ack, keepalive);
        // Killed with its server's sessions meanwhile: no error of the server's. Boxed: the
        // kill's wait would otherwise grow every session's task, for its whole life.
        let kill_since = server.kill.firings();
        let guarded =
            (server.kill).unless_fired_since(kill_since, tokio::time::timeout(timeout, opening));
        let opened = match Box::pin(guarded).await {
            Ok(opened) => opened,
            Err(why) => {
                let retries = progress.attempt;
                return Err(ConnectError::Killed {
                    server,
                    why,
                    retries,
                });
            }
        };
        super::observe::connection(backend, &server, matches!(opened, Ok(Ok(_))));
        match opened {
            Ok(Ok(stream)) => {
                return Ok(Connected {
                    server,
                    stream,
                    slot,
                    connect_time: progress.began.elapsed(),
                    attempt_time: started.elapsed(),
                    queue_time: progress.queue_time,
                    queued: progress.positions,
                    retries: progress.attempt,
                    redispatched: progress.redispatched,
                    direct: progress.direct,
                    kill_since,
                });
            }
            Ok(Err(e)) => {
                if let Some(failure) = SourceError::of(&e) {
                    failure.report(backend);
                }
                last_err = e;
            }
            Err(_) => last_err = io::Error::new(io::ErrorKind::TimedOut, "connect timeout"),
        }
        if progress.attempt == conf.retries {
            break;
        }
        slot = next_attempt(backend, slot, &last_err, &mut progress).await?;
    }
    Err(failed(backend, slot, last_err, &progress))
}

/// After attempt `progress.attempt` failed with `err`: the slot for the next one, on the
/// same server or, with `option redispatch`, another (see [`balance::redispatches`]). As in
/// HAProxy, a retry that stays on its server waits for the connect timeout (a second at
/// most) after an error, keeping its slot meanwhile (so the server's `maxconn` holds), and
/// goes at once after a timeout (the time is spent already); one that changes server gives
/// the slot back and goes through the queue again. A redispatch counts for the server left,
/// a retry otherwise.
async fn next_attempt(
    backend: &Arc<Backend>,
    mut slot: Slot,
    err: &io::Error,
    progress: &mut Progress<'_>,
) -> Result<Slot, ConnectError> {
    let server = slot.server().clone();
    // No session of the server's until the next attempt (see `Slot::pause_session`).
    slot.pause_session();
    progress.advance();
    if balance::redispatches(backend, &server, progress.attempt, progress.direct) {
        // Picked with the same key: a map-based hash goes to the same server again (it
        // avoids none, as HAProxy's), a consistent one to the next on its ring. Balanced
        // from now on (HAProxy drops `SF_DIRECT`).
        progress.direct = Direct::No;
        let key = slot.key();
        drop(slot);
        let slot =
            wait_for_server(backend, key, Some(&server), &mut progress.positions, None).await?;
        progress.assigned(&slot);
        // As HAProxy's: the time until this new server came counts in `%Tw`, `%Tc` only
        // from there.
        progress.queue_time += progress.began.elapsed();
        progress.began = Instant::now();
        let counters = if Arc::ptr_eq(slot.server(), &server) {
            (&server.counters.retries, &backend.counters.retries)
        } else {
            progress.redispatched = true;
            (
                &server.counters.redispatches,
                &backend.counters.redispatches,
            )
        };
        counters.0.fetch_add(1, Relaxed);
        counters.1.fetch_add(1, Relaxed);
        return Ok(slot);
    }
    server.counters.retries.fetch_add(1, Relaxed);
    backend.counters.retries.fetch_add(1, Relaxed);
    if err.kind() != io::ErrorKind::TimedOut && SourceError::of(err).is_none() {
        // HAProxy's turn-around before retrying the same server (none after a local
        // resource error, `SF_ERR_RESOURCE`).
        tokio::time::sleep(connect_timeout(backend).min(Duration::from_secs(1))).await;
    }
    // HAProxy counts each attempt as a session of the server's (`stot`, the session rate,
    // `lastsess`; its slot counted the first) as it is made: not one whose client left
    // during the turn-around.
    slot.resume_session();
    server.counters.session_counted();
    Ok(slot)
}

/// The end of an attempt that had no address to leave from ([`ConnectError::Internal`]):
/// a connection error of the server, as HAProxy counts it.
fn internal(backend: &Backend, slot: Slot, retries: u32) -> ConnectError {
    let server = slot.server().clone();
    drop(slot);
    server.counters.conn_errors.fetch_add(1, Relaxed);
    backend.counters.conn_errors.fetch_add(1, Relaxed);
    ConnectError::Internal { server, retries }
}

/// The end of the attempts (where `progress` left them): the connection error counts
/// once, for the server of the last attempt.
fn failed(backend: &Backend, slot: Slot, err: io::Error, progress: &Progress<'_>) -> ConnectError {
    let server = slot.server().clone();
    drop(slot);
    server.counters.conn_errors.fetch_add(1, Relaxed);
    backend.counters.conn_errors.fetch_add(1, Relaxed);
    ConnectError::Failed {
        server,
        err,
        waited: progress.queue_time,
        redispatched: progress.redispatched,
    }
}

/// After the TLS handshake over `conn` failed with `err` (a refusal, or the rest of the
/// connect timeout run out): as HAProxy, which counts the handshake in the connection
/// attempt, the next attempt per `retries` and `option redispatch`, else the connection
/// error. `conn` is closed first. `tally`: see [`Progress::tally`].
async fn retry_after_handshake(
    backend: &Arc<Backend>,
    ends: (Origin<'_>, SocketAddr),
    (has_data, tally): (bool, &AtomicU32),
    conn: Connected,
    err: io::Error,
) -> Result<Connected, ConnectError> {
    let Connected {
        stream,
        slot,
        connect_time,
        queue_time,
        queued,
        retries,
        redispatched,
        direct,
        ..
    } = conn;
    drop(stream);
    let mut progress = Progress {
        queue_time,
        positions: queued,
        began: Instant::now()
            .checked_sub(connect_time)
            .unwrap_or_else(Instant::now),
        attempt: retries,
        redispatched,
        direct,
        tally,
        listed: None,
    };
    if retries >= backend.conf.retries {
        return Err(failed(backend, slot, err, &progress));
    }
    let slot = next_attempt(backend, slot, &err, &mut progress).await?;
    attempts(backend, ends, has_data, slot, progress).await
}

/// [`retry_after_handshake`] in TCP mode, abandoned when the client leaves
/// ([`unless_client_leaves`]).
async fn retry_unless_client_leaves(
    backend: &Arc<Backend>,
    ends: (Origin<'_>, SocketAddr),
    client: TcpClient<'_>,
    conn: Connected,
    err: io::Error,
) -> Result<Connected, ConnectError> {
    let server = conn.server.clone();
    let tally = AtomicU32::new(conn.retries);
    let retried = retry_after_handshake(backend, ends, (client.has_data, &tally), conn, err);
    let abortonclose = backend.conf.options.abortonclose;
    match unless_client_leaves(client, abortonclose, retried).await {
        Ok(retried) => retried,
        Err(left) => {
            let left = ConnectError::ClientLeft(server, left, tally.load(Relaxed));
            Err(connect_failed(backend, left))
        }
    }
}

/// A new server connection of an HTTP backend made ready for requests: with `server ...
/// ssl`, the TLS handshake ([`handshake`]), a failed one retried as a refused connection, as
/// in TCP mode. The connection's TLS state (None in clear; the PROXY header is then the
/// caller's to send with the request).
pub async fn secure(
    backend: &Arc<Backend>,
    origin: Origin<'_>,
    local: SocketAddr,
    mut conn: Connected,
) -> Result<(Connected, Option<Box<super::tls::Session>>), ConnectError> {
    let peer = origin.client();
    loop {
        let Some(client) = tls_client(&conn.server) else {
            return Ok((conn, None));
        };
        let header = proxy_header(&conn.server, peer, local);
        let shaking = handshake(backend, &conn.stream, conn.attempt_time, header, &client);
        // Part of the attempt: killed with the sessions of the server connected to.
        let guarded = (conn.server.kill).unless_fired_since(conn.kill_since, shaking);
        let (shaken, took) = match guarded.await {
            Ok(shaken) => shaken,
            Err(why) => return Err(conn.killed(why)),
        };
        conn.connect_time += took;
        match shaken {
            Ok(s) => {
                let session = super::tls::Session::client(s.into_inner().1);
                return Ok((conn, Some(Box::new(session))));
            }
            Err(err) => {
                let ends = (origin, local);
                let tally = AtomicU32::new(conn.retries);
                let retried = retry_after_handshake(backend, ends, (true, &tally), conn, err);
                conn = Box::pin(retried).await?;
            }
        }
    }
}

/// The TLS configuration of a `server ... ssl` (None for a server in clear).
fn tls_client(server: &Server) -> Option<Arc<TlsClient>> {
    let tls = &server.opts.tls;
    tls.client.clone().filter(|_| tls.ssl)
}

/// The TLS handshake of a connection attempt to a `server ... ssl` over `stream`, after
/// `header` (its PROXY header, in clear): within what remains of `timeout connect` after the
/// attempt's TCP connection (`spent`), HAProxy's one connect timer covering both. An error
/// is the attempt's, retried as a refused connection ([`retry_after_handshake`]). Also how
/// long it took, which counts in `%Tc`.
async fn handshake<'s>(
    backend: &Backend,
    stream: &'s TcpStream,
    spent: Duration,
    header: Vec<u8>,
    tls: &TlsClient,
) -> (io::Result<TlsStream<Borrowed<'s>>>, Duration) {
    let started = Instant::now();
    let left = connect_timeout(backend).saturating_sub(spent);
    let shaken = match Borrowed(stream).write_all(&header).await {
        Err(e) => Err(e),
        Ok(()) => match super::tls::handshake_server(stream, tls, left).await {
            Ok(s) => Ok(s),
            Err(HandshakeError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "SSL handshake timeout",
            )),
            Err(HandshakeError::Failed(e)) => Err(e),
        },
    };
    (shaken, started.elapsed())
}

/// Connects to `addr` with TCP_NODELAY set, HAProxy's way: socket, setsockopt, connect.
/// `delayed_ack`: TCP_QUICKACK off, so the handshake's last ACK leaves with the first data.
///
/// Unlike tokio's `TcpStream::connect`, a successful connection costs no SO_ERROR query:
/// epoll reports a failed one as an error or hang-up, and only then is the error fetched.
/// `keepalive`: TCP keep-alive probes (`option srvtcpka`). `source`: bound there first, or
/// at its foreign address (`usesrc`, see [`bind_and_connect`]).
///
/// As HAProxy's `FD_LINGER_RISK`, the socket is closed with a reset (SO_LINGER 0) so that
/// closing it first leaves no TIME_WAIT to hold its port (a `source` range would run out);
/// [`end_linger_risk`] restores a normal close where a session ends cleanly.
/// `option nolinger` keeps the reset in any case.
async fn open_connection(
    addr: SocketAddr,
    source: (Option<&ConnSource>, Option<SocketAddr>),
    delayed_ack: bool,
    keepalive: Option<&crate::config::model::Keepalive>,
) -> io::Result<TcpStream> {
    let prepare = |socket: &socket2::Socket| {
        let _ = socket.set_tcp_nodelay(true);
        if delayed_ack {
            // Only a saved packet is at stake: on failure the ACK goes on its own, as usual.
            let _ = socket.set_tcp_quickack(false);
        }
        if let Some(ka) = keepalive {
            // Probes only detect dead peers sooner: a failure leaves the connection usable.
            let _ = super::listener::set_keepalive(socket2::SockRef::from(socket), ka);
        }
        socket.set_linger(Some(Duration::ZERO))
    };
    let socket = bind_and_connect(addr, source, prepare)?;
    let stream = TcpStream::from_std(socket.into())?;
    let ready = stream.ready(tokio::io::Interest::WRITABLE).await?;
    if ready.is_write_closed() || ready.is_error() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        return Err(stream.take_error()?.unwrap_or_else(refused));
    }
    Ok(stream)
}

/// `stream` ends cleanly (the server closed its side, or the proxy shuts its own cleanly):
/// it closes normally again unless `nolinger` (HAProxy's `conn_sock_read0` and clean
/// shutdowns clear `FD_LINGER_RISK`; `option nolinger` resets only what the proxy shuts
/// first: a connection whose server closed first ends with a FIN even so).
pub(super) fn end_linger_risk(stream: &TcpStream, nolinger: bool) {
    if !nolinger {
        // Only the close's manner is at stake: on failure it stays a reset.
        let _ = socket2::SockRef::from(stream).set_linger(None);
    }
}

/// How many ports of a `source` range one connection tries (HAProxy's `attempts = 10`).
const SOURCE_PORT_ATTEMPTS: u32 = 10;

/// Why a connection could not leave from its `source`: HAProxy's `SF_ERR_RESOURCE`, which
/// is retried at once (no turn-around) and reported with an alert and a log line.
#[derive(Debug)]
pub enum SourceError {
    /// Binding failed (`CO_ER_CANT_BIND`); with a range, on the last port tried.
    CantBind(io::Error),
    /// The socket could not be made transparent, or binding to its `usesrc` address failed
    /// (`CO_ER_CANT_BIND` too, HAProxy's "tproxy" alert).
    CantBindForeign(io::Error),
    /// Every port of the range tried is taken by a connection to the same server
    /// (`CO_ER_PORT_RANGE`: HAProxy's ring has no free port).
    RangeExhausted,
    /// connect() found no free local port (EADDRNOTAVAIL, EAGAIN: `CO_ER_FREE_PORTS`).
    NoFreePorts,
    /// connect() found the local address in use (EADDRINUSE: `CO_ER_ADDR_INUSE`).
    AddrInUse,
}

impl std::fmt::Display for SourceError {
    /// As HAProxy's `conn_err_code_str`, with the system's reason for a bind failure (as
    /// its checks report it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::CantBind(e) | SourceError::CantBindForeign(e) => {
                let reason = e
                    .raw_os_error()
                    .map(|c| nix::errno::Errno::from_raw(c).desc());
                match reason {
                    Some(reason) => write!(f, "Can't bind to source address ({reason})"),
                    None => write!(f, "Can't bind to source address ({e})"),
                }
            }
            SourceError::RangeExhausted => f.write_str("Source port range exhausted"),
            SourceError::NoFreePorts => f.write_str("Out of local source ports on the system"),
            SourceError::AddrInUse => f.write_str("Local source address already in use"),
        }
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    /// The `SourceError` carried by `err`, if that is what it is.
    pub fn of(err: &io::Error) -> Option<&SourceError> {
        err.get_ref()?.downcast_ref::<SourceError>()
    }

    /// HAProxy's alert (stderr) and log line (to `backend`'s logs) for this failure, as
    /// `tcp_connect_server` words them.
    pub fn report(&self, backend: &Backend) {
        let pid = std::process::id();
        let name = &backend.name;
        match self {
            SourceError::CantBind(_) | SourceError::RangeExhausted => {
                crate::process::say!(
                    "[ALERT]    ({pid}) : Cannot bind to source address before connect() for backend {name}. Aborting."
                );
                let msg =
                    format!("Cannot bind to source address before connect() for backend {name}.");
                backend.logger.send(super::log::LOG_EMERG, &msg);
            }
            SourceError::CantBindForeign(_) => {
                crate::process::say!(
                    "[ALERT]    ({pid}) : Cannot bind to tproxy source address before connect() for backend {name}. Aborting."
                );
                let msg = format!(
                    "Cannot bind to tproxy source address before connect() for backend {name}."
                );
                backend.logger.send(super::log::LOG_EMERG, &msg);
            }
            SourceError::NoFreePorts | SourceError::AddrInUse => {
                let what = match self {
                    SourceError::AddrInUse => "local address already in use",
                    _ => "no free ports",
                };
                let msg = format!("Connect() failed for backend {name}: {what}.");
                crate::process::say!("{msg}");
                backend.logger.send(super::log::LOG_ERR, &msg);
            }
        }
    }
}

/// A socket to `addr`, `prepare`d, bound to `source` and connecting (or connected), as
/// HAProxy's `tcp_connect_server`: SO_BINDTODEVICE for its `interface` (a failure ignored,
/// as HAProxy does); SO_REUSEADDR on every source bind; with a port range, the range's
/// ports in turn, at most [`SOURCE_PORT_ATTEMPTS`] of them, a port being skipped when
/// bind() fails or when connect() finds it in use toward this server; without a port,
/// IP_BIND_ADDRESS_NO_PORT, so that the port is chosen at connect time with the server's
/// address (not one per source address). With a `foreign` address (`usesrc`, see
/// [`foreign_address`]), the socket is made transparent and bound there instead of the
/// source's address (not at all when its address is unspecified). Source failures are
/// [`SourceError`]s.
pub(super) fn bind_and_connect(
    addr: SocketAddr,
    (source, foreign): (Option<&ConnSource>, Option<SocketAddr>),
    prepare: impl Fn(&socket2::Socket) -> io::Result<()>,
) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut attempts = 0;
    loop {
        attempts += 1;
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        prepare(&socket)?;
        let range = source.and_then(|s| s.ports.as_ref());
        if let Some(source) = source {
            if let Some(device) = &source.interface {
                // Needs CAP_NET_RAW: without it the connection leaves by its route.
                let _ = socket.bind_device(Some(device.as_bytes()));
            }
            let bound = match foreign {
                Some(foreign) => bind_foreign(&socket, source, foreign),
                None => bind_source(&socket, source, range),
            };
            if let Err(e) = bound {
                if range.is_some() && attempts < SOURCE_PORT_ATTEMPTS {
                    continue;
                }
                return Err(e);
            }
        }
        let Err(e) = socket.connect(&addr.into()) else {
            return Ok(socket);
        };
        let failure = match e.raw_os_error() {
            Some(libc::EINPROGRESS) => return Ok(socket),
            Some(libc::EADDRNOTAVAIL | libc::EAGAIN) if range.is_some() => {
                if attempts < SOURCE_PORT_ATTEMPTS {
                    continue;
                }
                SourceError::RangeExhausted
            }
            Some(libc::EADDRNOTAVAIL | libc::EAGAIN) => SourceError::NoFreePorts,
            Some(libc::EADDRINUSE) => SourceError::AddrInUse,
            _ => return Err(e),
        };
        return Err(io::Error::other(failure));
    }
}

/// Binds `socket` to `source`'s address, on the next port of its `range` if it has one.
fn bind_source(
    socket: &socket2::Socket,
    source: &ConnSource,
    range: Option<&crate::config::model::PortRange>,
) -> io::Result<()> {
    let bound = socket.set_reuse_address(true).and_then(|()| {
        let port = range.map_or(source.addr.port(), |r| r.next_port());
        if port == 0 {
            // Only the number of ports at hand is at stake: without it, bind
            // chooses one.
            let no_port = nix::sys::socket::sockopt::IpBindAddressNoPort;
            let _ = nix::sys::socket::setsockopt(socket, no_port, &true);
        }
        socket.bind(&SocketAddr::new(source.addr.ip(), port).into())
    });
    bound.map_err(|e| io::Error::other(SourceError::CantBind(e)))
}

/// Binds `socket` to `foreign`, an address of another host (`usesrc`), as HAProxy's
/// `tcp_bind_socket` does: transparent first (IP_TRANSPARENT or IPV6_TRANSPARENT as
/// `source`'s address is, else IP_FREEBIND, with which only a local address would
/// connect), then SO_REUSEADDR, then bound unless `foreign`'s address is unspecified.
fn bind_foreign(
    socket: &socket2::Socket,
    source: &ConnSource,
    foreign: SocketAddr,
) -> io::Result<()> {
    let transparent = match source.addr {
        SocketAddr::V4(_) => socket.set_ip_transparent_v4(true),
        SocketAddr::V6(_) => socket.set_ip_transparent_v6(true),
    };
    let made_foreign = transparent.or_else(|_| socket.set_freebind_v4(true));
    let cant = |e| io::Error::other(SourceError::CantBindForeign(e));
    made_foreign.map_err(cant)?;
    let _ = socket.set_reuse_address(true);
    if foreign.ip().is_unspecified() {
        return Ok(());
    }
    if foreign.port() == 0 {
        // As for a source address: the port is chosen with the server's address.
        let no_port = nix::sys::socket::sockopt::IpBindAddressNoPort;
        let _ = nix::sys::socket::setsockopt(socket, no_port, &true);
    }
    socket.bind(&foreign.into()).map_err(cant)
}

/// A slot of a server for a client with `key` (see [`balance::source_key`],
/// [`balance::request_key`]), waiting in the queue while all are full (`timeout queue`,
/// else `timeout connect`); the position it had there adds to `positions`.
pub async fn wait_for_server(
    backend: &Arc<Backend>,
    key: balance::Key,
    avoid: Option<&Arc<Server>>,
    positions: &mut QueuePositions,
    watch: Option<Watch<'_>>,
) -> Result<Slot, ConnectError> {
    match balance::pick_or_queue(backend, key, avoid) {
        Some(Picked::Now(slot)) => Ok(slot),
        // Boxed: the wait's state (timers, notification) would otherwise be part of every
        // connection's future, for the whole life of the connection.
        Some(Picked::Queued(ticket)) => {
            let queued = Queued { ticket, watch };
            Box::pin(wait_in_queue(backend, key, avoid, queued, positions)).await
        }
        Some(Picked::Refused(server)) => Err(queue_full(backend, &server)),
        None => Err(no_server(backend)),
    }
}

/// No server to take the connection (all down, in maintenance, full without a queue): a
/// connection error of the backend, as HAProxy's `srv_redispatch_connect` counts it.
fn no_server(backend: &Backend) -> ConnectError {
    backend.counters.conn_errors.fetch_add(1, Relaxed);
    ConnectError::NoServer
}

/// A slot on `preferred` (a stick entry's, a persistence cookie's, a kept connection's
/// server) when it takes the request, now or from its queue; else one the balancer gives
/// for `key`. A queue timeout on `preferred` stays an error. `direct`: past the balancer
/// (HAProxy's `SF_DIRECT`), see [`reserve`]. The queue is left when `watch` sees the
/// client leave ([`ConnectError::ClientLeftQueue`]).
pub async fn slot_for(
    backend: &Arc<Backend>,
    preferred: Option<&Arc<Server>>,
    direct: bool,
    key: balance::Key,
    positions: &mut QueuePositions,
    mut watch: Option<Watch<'_>>,
) -> Result<Slot, ConnectError> {
    if let Some(server) = preferred {
        let watching = reborrow(&mut watch);
        let reserved = reserve(backend, server, direct, key, positions, watching).await;
        match reserved {
            Ok(slot) => return Ok(slot),
            Err(e @ (ConnectError::QueueTimeout { .. } | ConnectError::ClientLeftQueue { .. })) => {
                return Err(e);
            }
            // The balancer sends it nothing now (drained, a backup...).
            Err(_) => {}
        }
    }
    wait_for_server(backend, key, None, positions, watch).await
}

/// A slot of `server` for the next request on a connection kept to it: at once, else in
/// that server's queue (`timeout queue`). `NoServer` when the balancer sends that server no
/// requests now (unless `direct`: see [`balance::take_or_queue`]). A slot of another server
/// may come instead, when this one stopped being usable while the request waited (see
/// [`Recheck::ServerGone`]), or on a redispatch: picked with `key`, the request's.
async fn reserve(
    backend: &Arc<Backend>,
    server: &Arc<Server>,
    direct: bool,
    key: balance::Key,
    positions: &mut QueuePositions,
    watch: Option<Watch<'_>>,
) -> Result<Slot, ConnectError> {
    match balance::take_or_queue(backend, server, direct, key) {
        Some(Picked::Now(slot)) => Ok(slot),
        Some(Picked::Queued(ticket)) => {
            let queued = Queued { ticket, watch };
            Box::pin(wait_in_queue(backend, key, None, queued, positions)).await
        }
        Some(Picked::Refused(server)) => Err(queue_full(backend, &server)),
        None => Err(ConnectError::NoServer),
    }
}

/// A connection refused because `server`'s queue is at its `maxqueue`: logged as a queue
/// failure (`SQ`, 503 in HTTP) and counted as a connection error, as HAProxy does.
fn queue_full(backend: &Backend, server: &Arc<Server>) -> ConnectError {
    server.counters.conn_errors.fetch_add(1, Relaxed);
    backend.counters.conn_errors.fetch_add(1, Relaxed);
    ConnectError::QueueFull(server.clone())
}

/// A connection that left the queue without a slot, after `waited` where `queued` says: a
/// connection error of the backend, and of `server` when it waited in that server's queue
/// (HAProxy's `failed_conns` after `timeout queue`).
fn queue_failed(
    backend: &Backend,
    server: Option<&Arc<Server>>,
    queued: QueuePositions,
    waited: Duration,
) -> ConnectError {
    if let Some(server) = server {
        server.counters.conn_errors.fetch_add(1, Relaxed);
    }
    backend.counters.conn_errors.fetch_add(1, Relaxed);
    ConnectError::QueueTimeout {
        queued,
        waited,
        server: server.cloned(),
    }
}

/// A connection in a queue: its ticket, and its client's [`Watch`] when watched.
struct Queued<'a> {
    ticket: Ticket,
    watch: Option<Watch<'a>>,
}

/// Waits with `ticket` until a server gives the connection a slot, or the queue's timeout,
/// or (watched) its client leaves: it leaves the queue then, its place counted, as
/// HAProxy's `back_handle_st_que` (`check_req_may_abort`) unlinks it; an abort
/// ([`Left::Aborted`]) counts as the client's for the backend and the queue's server.
async fn wait_in_queue(
    backend: &Arc<Backend>,
    key: balance::Key,
    avoid: Option<&Arc<Server>>,
    queued: Queued<'_>,
    positions: &mut QueuePositions,
) -> Result<Slot, ConnectError> {
    let Queued { mut ticket, watch } = queued;
    let client_left = async {
        match watch {
            Some(watch) => watch.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(client_left);
    let conf = &backend.conf;
    let limit = conf
        .timeouts
        .queue
        .or(conf.timeouts.connect)
        .unwrap_or(ETERNITY);
    let began = Instant::now();
    let deadline = tokio::time::Instant::from_std(began + limit);
    loop {
        // Enabled before the look, so that a change (and its `notify_waiters`) after it is
        // not missed; one before it, the look sees.
        let changed = backend.servers_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match ticket.recheck(positions) {
            Recheck::StillWaiting => {}
            Recheck::Served(slot) => return Ok(slot),
            // Its server's queue is no place to wait any more: picked for again.
            Recheck::ServerGone => {
                let left = ticket.server().cloned();
                let picked = balance::pick_or_queue(backend, key, avoid);
                if let (Some(left), Some(_)) = (left, &picked) {
                    left.counters.redispatches.fetch_add(1, Relaxed);
                    backend.counters.redispatches.fetch_add(1, Relaxed);
                }
                match picked {
                    Some(Picked::Now(slot)) => return Ok(slot),
                    // A new ticket: looked at again under a new registration.
                    Some(Picked::Queued(next)) => {
                        ticket = next;
                        continue;
                    }
                    Some(Picked::Refused(server)) => return Err(queue_full(backend, &server)),
                    None => return Err(no_server(backend)),
                }
            }
        }
        tokio::select! {
            granted = ticket.granted() => {
                return granted
                    .map(|g| g.take(positions))
                    .ok_or_else(|| no_server(backend));
            }
            () = tokio::time::sleep_until(deadline) => {
                let server = ticket.server().cloned();
                return ticket.leave(positions).ok_or_else(|| {
                    queue_failed(backend, server.as_ref(), *positions, began.elapsed())
                });
            }
            // Every change that may let it be served notifies (state, weight, address);
            // a freed slot comes through the ticket.
            () = changed => {}
            left = client_left.as_mut() => {
                let server = ticket.server().cloned();
                // A slot that came meanwhile goes on to the next in the queue.
                drop(ticket.leave(positions));
                if left == Left::Aborted {
                    let counters = server.iter().map(|s| &s.counters);
                    for c in counters.chain([&backend.counters]) {
                        c.client_aborts.fetch_add(1, Relaxed);
                    }
                }
                return Err(ConnectError::ClientLeftQueue {
                    queued: *positions,
                    waited: began.elapsed(),
                    server,
                    left,
                });
            }
        }
    }
}

/// The PROXY protocol header (v1 text or v2 binary) describing the client connection, when
/// the server wants one (`send-proxy`, `send-proxy-v2`): the first bytes it must receive.
pub fn proxy_header(server: &Server, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    match server.opts.send_proxy {
        None => Vec::new(),
        Some(1) => proxy_v1(src, dst).into_bytes(),
        Some(_) => proxy_v2(src, dst),
    }
}

fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> String {
    let (src, dst) = (canonical(src), canonical(dst));
    let family = if src.is_ipv4() && dst.is_ipv4() {
        "TCP4"
    } else {
        "TCP6"
    };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
}

fn proxy_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = (canonical(src), canonical(dst));
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY command
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.ip().octets());
            h.extend_from_slice(&d.ip().octets());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
                SocketAddr::V6(v6) => *v6.ip(),
            };
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(s).octets());
            h.extend_from_slice(&v6(d).octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// What the client sent already, read at once for `tcp-smart-connect` (nothing otherwise).
fn smart_connect_data(backend: &Backend, client: &TcpStream) -> io::Result<Vec<u8>> {
    if backend.conf.options.tcp_smart_connect {
        forward::read_early(client)
    } else {
        Ok(Vec::new())
    }
}

/// Serves one TCP-mode client connection to its end.
// Not an `async fn` (clippy's suggestion): see the block's comment.
#[allow(clippy::manual_async_fn)]
pub fn serve_tcp(
    state: Arc<State>,
    fe: Arc<Frontend>,
    client: TcpStream,
    mut peer: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<TlsServer>>,
) -> impl std::future::Future<Output = ()> {
    // A block, not an `async fn`: an async fn keeps a second copy of its arguments in its
    // future, and this one lives as long as the connection.
    async move {
        let accepted = Instant::now();
        // The log line's facts (none when the frontend logs no traffic).
        let mut facts = log::TcpFacts::gather(&state, &fe, peer, local, accepted);
        let fe_session = super::open_session(&fe, tls.is_some());
        // `bind ... ssl`: the client's handshake comes first, as in HAProxy (its TLS state is
        // boxed, and the handshake too: a plaintext session's task does not grow).
        let mut secure_client = None;
        if let Some(server) = tls {
            match Box::pin(super::tls::accept(
                &server,
                &client,
                fe.conf.timeouts.client,
            ))
            .await
            {
                Ok(conn) => {
                    let addrs = (peer, local);
                    if !super::tls_session_accepted(&state, &fe, &client, addrs, &conn.facts) {
                        return;
                    }
                    if let Some(f) = facts.as_deref_mut() {
                        f.handshake_ms = accepted.elapsed().as_millis() as i64;
                        f.tls = Some(conn.facts.clone());
                    }
                    secure_client = Some(conn);
                    if !state.tables.is_empty() {
                        super::stick::session_accepted();
                    }
                }
                Err(e) => return handshake_failed(&fe, peer, local, &e),
            }
        }
        fe.logger
            .log_connect(&fe.name, false, peer, || rules::local_addr(&client, local));
        // Its server connection, once made: declared before the registration, which is
        // dropped before it (see `runtime::shutdown`).
        let mut conn: Connected;
        // A stream from now on, as HAProxy's: listed by `show sess`, killed alone by `shutdown
        // session` (see `runtime::shutdown`). Declared after the sockets: dropped first.
        let mut registration = super::shutdown::Registration::accepted(
            client.as_fd(),
            fe.backend
                .as_ref()
                .filter(|_| !rules::tcp_applies(&fe))
                .map_or(0, |b| b.id),
            shown(&fe, peer, local, accepted),
        );
        // The blocks below end what they bind: a local moved out of would otherwise keep its
        // room in the task's future, beside the forwarding, for the connection's whole life.
        let (backend, early) = {
            // Content rules and `use_backend` (nothing to do, and nothing read, without them).
            let (backend, inspected) = if !rules::tcp_applies(&fe) {
                (fe.backend.clone(), None)
            } else {
                let dst = rules::local_addr(&client, local);
                // Boxed: its state (contexts, inspection buffers) would otherwise be part of
                // every connection's future, rules or not, for the whole life of the connection.
                let tls = secure_client.as_deref().map(|s| &*s.facts);
                let mut asked = rules::StreamAsked::default();
                let routing = rules::route_tcp(&state, &fe, &client, (peer, dst), tls, &mut asked);
                let routed = Box::pin(routing).await;
                // The rest of the session, its log line included, sees the address `set-src`
                // gave; `set-log-level silent` leaves it without a line.
                peer = asked.client(peer);
                if asked.log_level == Some(LogLevel::Silent) {
                    facts = None;
                }
                if let Some(f) = facts.as_deref_mut() {
                    f.client = peer;
                    if let Some(LogLevel::Severity(severity)) = asked.log_level {
                        f.severity = Some(severity);
                    }
                }
                match routed {
                    Ok(rules::TcpRouted::Backend(b, data)) => (b, Some(data)),
                    Ok(rules::TcpRouted::Rejected(rejecting, read, end)) => {
                        // A backend's rules rejected: the session entered it (logged there).
                        let _be_session = rejecting.as_ref().map(|b| b.counters.open());
                        if let Some(f) = facts.as_deref_mut() {
                            f.backend = rejecting.as_deref();
                        }
                        count_content_denial(&fe, rejecting.as_deref(), &client, end);
                        let received = (read as u64).min(UNCONNECTED_REQUEST_LIMIT);
                        let backend = rejecting.as_deref();
                        count_request_bytes(&state, &fe, backend, None, received);
                        if let Some(f) = facts.as_deref_mut() {
                            f.bytes_in = received;
                        }
                        fe.logger.log_tcp(&fe, facts.as_deref(), "PR");
                        return;
                    }
                    Err(_) => return,
                }
            };
            let Some(backend) = backend else {
                return;
            };
            // Content rules read the socket, which behind TLS holds ciphertext: refused by the
            // configuration check; were any read, the connection ends rather than passing
            // them on, to the server or to the HTTP parser.
            let inspected = match inspected {
                Some(data) if secure_client.is_some() && !data.is_empty() => return,
                inspected => inspected,
            };
            if backend.conf.mode == crate::config::model::Mode::Http {
                // An HTTP backend turns the connection to HTTP, as HAProxy's stream upgrades
                // on switching to it: the HTTP loop serves it from now on, each request a
                // stream of its own (listed and logged there). Boxed: only such a
                // connection's task holds it.
                // Its stream stays listed in `show sess`, in its backend now, until its first
                // request is ruled: the HTTP loop lists each request's stream from then on.
                // Listed as an HTTP stream waiting, which a kill only marks: HAProxy's goes
                // on waiting for its request all the same (to its timeout: 408, `PR`).
                drop(registration);
                let listing = super::shutdown::Registration::waiting(
                    std::os::fd::AsRawFd::as_raw_fd(&client),
                    backend.id,
                    shown(&fe, peer, local, accepted),
                );
                let upgrade = Box::new(super::http::Upgrade {
                    backend,
                    early: inspected.unwrap_or_default(),
                    tls: secure_client,
                    session: Some(fe_session),
                    accepted,
                    listing: Some(listing),
                });
                let http = super::http::serve_upgraded(state, fe, client, (peer, local), upgrade);
                return Box::pin(http).await;
            }
            // With tcp-smart-connect, what the client sent already leaves with the handshake's
            // ACK. (Through TLS, what the client sent already stays in its TLS state until
            // forwarded.)
            let early = match inspected {
                Some(data) => Ok(data),
                None if secure_client.is_some() => Ok(Vec::new()),
                None => smart_connect_data(&backend, &client),
            };
            let Ok(early) = early else {
                return;
            };
            (backend, early)
        };
        let _be_session = backend.counters.open();
        if let Some(f) = facts.as_deref_mut() {
            f.backend = Some(&backend);
        }
        // The session's end without a server connection, made where it ends: a macro, as
        // a value kept from here would take room in the task's future for the session's
        // whole life.
        macro_rules! unconnected {
            () => {
                Unconnected {
                    state: &state,
                    fe: &fe,
                    backend: &backend,
                    client: &client,
                    read: early.len(),
                    tls: secure_client.is_some(),
                }
            };
        }
        if rules::tcp_applies(&fe) {
            // Killed in its rules (`shutdown session`): it ends as they end.
            if registration.killed_alone() {
                let received = unconnected!().count_received(None);
                if let Some(f) = facts.as_deref_mut() {
                    f.bytes_in = received;
                }
                return fe.logger.log_tcp(&fe, facts.as_deref(), "KR");
            }
            registration.routed(backend.id);
        }
        let has_data = !early.is_empty();
        let silent_for = fe.conf.timeouts.client.filter(|_| !has_data);
        let watched = TcpClient {
            stream: &client,
            has_data,
            silent_until: silent_for.and_then(|t| accepted.checked_add(t)),
        };
        let mut response_sticking = None;
        conn = {
            let ctx = || super::sample::Context {
                backend: Some(&backend),
                payload: Some(&early),
                ..super::sample::Context::new(&state, &fe, peer, local)
            };
            // `force-persist`, `ignore-persist` and `use-server` rules, `persist rdp-cookie`,
            // then `stick` rules (none: nothing done): the server they name goes first.
            let over = super::persist::overrides(&ctx(), &backend);
            let over = super::rdp::persist(over, &backend, &early);
            let sticking = (!backend.conf.rules.stick.is_empty())
                .then(|| super::stick::on_request(&ctx(), &backend, &over));
            let stuck = (over.server.as_ref())
                .or_else(|| sticking.as_ref().and_then(|s| s.direct.as_ref()));
            let key = balance::connection_key(&backend, &ctx());
            let ends = (peer, local);
            let listed = &registration;
            let conn = connect(&backend, stuck, over.force, key, ends, watched, listed);
            let conn = match conn.await {
                Ok(c) => c,
                Err(e) => {
                    let killed = registration.killed_alone();
                    return log_connect_end(&unconnected!(), facts.as_deref_mut(), &e, killed);
                }
            };
            // `stick` rules store their entries when HAProxy's response analysers run: as
            // the connection is made (nothing of the response yet), else past the
            // `tcp-response content` inspection, on what it read (boxed: rare, kept along).
            let inspected = !backend.conf.rules.tcp_response.is_empty();
            match sticking {
                Some(s) if inspected => response_sticking = Some(Box::new(s)),
                Some(s) => s.on_response(&ctx(), &backend, &conn.server),
                None => {}
            }
            conn
        };
        // The PROXY header and what the client sent already, in one packet (in clear); with
        // `ssl`, the header goes in clear before the handshake, the early data through TLS.
        // The handshake is part of the connection attempt, as in HAProxy: it gets what remains
        // of `timeout connect`, its time counts in %Tc, and a failed one is retried per
        // `retries` and `option redispatch`, like a refused connection.
        //
        // The session is its server's from its connection on (HAProxy's `srv_conn`):
        // registered at once, so that a kill (`on-marked-down`, `on-marked-up`, an
        // operator's `shutdown sessions`: see `runtime::shutdown`) shuts both its sockets
        // down and ends its header's sending, its handshake or its forwarding at once.
        registration.connected(&conn.server, conn.stream.as_fd(), conn.kill_since);
        let secured = loop {
            let Some(tls) = tls_client(&conn.server) else {
                // In a block, so that this buffer does not stay in the future.
                let sent = {
                    let mut first = proxy_header(&conn.server, peer, local);
                    first.extend_from_slice(&early);
                    conn.stream.write_all(&first).await
                };
                if sent.is_err() {
                    if let Some(why) = registration.killed(&conn.server) {
                        registration.disconnected();
                        let e = conn.killed(why);
                        return log_connect_error(&unconnected!(), facts.as_deref_mut(), &e);
                    }
                    return;
                }
                break None;
            };
            let header = proxy_header(&conn.server, peer, local);
            // Boxed, as the forwarding below: TLS state would otherwise grow every TCP
            // session's task, plaintext ones included (idle memory per connection).
            // Under the client's watch, as the queue and the connection before it.
            let shaking = handshake(&backend, &conn.stream, conn.attempt_time, header, &tls);
            let abortonclose = backend.conf.options.abortonclose;
            let shaking = unless_client_leaves(watched, abortonclose, shaking);
            let (shaken, took) = match Box::pin(shaking).await {
                Ok(shaken) => shaken,
                Err(left) => {
                    // A kill shuts the client's reading too: it came first.
                    let killed = registration.killed(&conn.server);
                    registration.disconnected();
                    let e = match killed {
                        Some(why) => conn.killed(why),
                        None => connect_failed(&backend, conn.client_left(left)),
                    };
                    return log_connect_error(&unconnected!(), facts.as_deref_mut(), &e);
                }
            };
            conn.connect_time += took;
            let err = match shaken {
                Ok(s) => break Some(Box::new(s)),
                Err(e) => e,
            };
            // Out of the registry before its socket closes (a kill failed the handshake: no
            // retry, logged in the connection phase, `KC`).
            let killed = registration.killed(&conn.server);
            registration.disconnected();
            if let Some(why) = killed {
                let e = conn.killed(why);
                return log_connect_error(&unconnected!(), facts.as_deref_mut(), &e);
            }
            // Boxed too: rare, and its state (a whole connection attempt) would otherwise grow
            // every session's task.
            let ends = (Origin::Client(peer), local);
            let retried = retry_unless_client_leaves(&backend, ends, watched, conn, err);
            conn = match Box::pin(retried).await {
                Ok(c) => c,
                // Killed alone meanwhile, as the first attempt (`KC`).
                Err(e) => {
                    let killed = registration.killed_alone();
                    return log_connect_end(&unconnected!(), facts.as_deref_mut(), &e, killed);
                }
            };
            registration.connected(&conn.server, conn.stream.as_fd(), conn.kill_since);
        };
        let sent_early = early.len() as u64;
        // `option logasap`: the line goes now, with the times and bytes so far.
        if let Some(f) = facts.as_deref_mut().filter(|_| fe.logger.logs_asap()) {
            f.connected(&conn);
            // What HAProxy's buffer holds by now: what was read, and what waits to be.
            let waiting = if secure_client.is_some() {
                0
            } else {
                unread_len(&client)
            };
            f.bytes_in = (sent_early + waiting).min(UNCONNECTED_REQUEST_LIMIT);
            fe.logger.log_tcp(&fe, Some(f), "--");
        }
        // Connected: the response's analysis starts (`req` variables go, `res` ones come).
        super::vars::response_starts();
        let moved = Moved::default();
        moved.to_server.fetch_add(sent_early, Relaxed);
        // The timeouts are made in each call, so that they are not kept beside the
        // forwarding's own copy in the task.
        // Killed before it was connected (in its queue): it ends now, nothing forwarded; what
        // its client sent is read, as into HAProxy's buffer (its close a FIN).
        let killed_early = registration.killed(&conn.server).is_some();
        if killed_early {
            let read = forward::read_early(&client).map_or(0, |data| data.len());
            moved.to_server.fetch_add(read as u64, Relaxed);
        }
        let end = match (secured, secure_client) {
            _ if killed_early => End::Done,
            (None, None) if backend.conf.rules.tcp_response.is_empty() => {
                let idle = forward::IdleTimeouts::new(&fe.conf.timeouts, &backend.conf.timeouts);
                let splicing = state.splicing(&fe, &backend);
                forward::forward(&client, &conn.stream, idle, splicing, &moved).await
            }
            // `tcp-response content` rules first: boxed (their state would otherwise grow
            // every session's task).
            (None, None) => {
                let inspecting = rules::inspect_then_forward(
                    super::sample::Context {
                        backend: Some(&backend),
                        ..super::sample::Context::new(&state, &fe, peer, local)
                    },
                    &conn.server,
                    &client,
                    &conn.stream,
                    &moved,
                    response_sticking.as_deref(),
                );
                inspecting.await
            }
            // `tcp-response content` rules with TLS on either side: boxed too.
            (server, mut client_tls) if !backend.conf.rules.tcp_response.is_empty() => {
                let facts = client_tls.as_ref().map(|t| t.facts.clone());
                let inspecting = super::tls::inspect_then_forward(
                    super::sample::Context {
                        backend: Some(&backend),
                        tls: facts.as_deref(),
                        ..super::sample::Context::new(&state, &fe, peer, local)
                    },
                    &conn.server,
                    &client,
                    client_tls.as_deref_mut(),
                    &conn.stream,
                    server.map(|s| *s),
                    &early,
                    &moved,
                    response_sticking.as_deref(),
                );
                Box::pin(inspecting).await
            }
            // TLS on either side: boxed (its state would grow every session's task).
            (Some(server), None) => {
                let idle = forward::IdleTimeouts::new(&fe.conf.timeouts, &backend.conf.timeouts);
                Box::pin(super::tls::forward(&client, *server, &early, idle, &moved)).await
            }
            (server, Some(mut tls)) => {
                let idle = forward::IdleTimeouts::new(&fe.conf.timeouts, &backend.conf.timeouts);
                let from = tls.over(&client);
                let to = server.map(|s| *s);
                let forwarding =
                    super::tls::forward_from_client(from, &conn.stream, to, idle, &moved);
                Box::pin(forwarding).await
            }
        };
        let killed = registration.killed(&conn.server);
        drop(registration);
        let failed = killed.is_none() && matches!(end, End::Error(..));
        let ended_cleanly = !failed || moved.server_closed.load(Relaxed);
        if ended_cleanly && !moved.server_killed.load(Relaxed) {
            // A TCP session's end shuts the server's side cleanly (HAProxy's clean `shutw`),
            // so it closes normally. Otherwise the reset of `open_connection` stays: a
            // connection that failed (the client reset it) is reset on the server side too,
            // instead of ending with a FIN the server would take for a clean end of request;
            // and a server connection a rule closed is killed, as HAProxy kills it.
            let server_closed = moved.server_closed.load(Relaxed);
            end_linger_risk(
                &conn.stream,
                backend.conf.options.nolinger && !server_closed,
            );
        }
        let (up, down) = (moved.to_server.load(Relaxed), moved.to_client.load(Relaxed));
        for c in [&fe.counters, &backend.counters, &conn.server.counters] {
            c.bytes_in.fetch_add(up, Relaxed);
            c.bytes_out.fetch_add(down, Relaxed);
        }
        state.bytes_out.fetch_add(down, Relaxed);
        state.tables.count_bytes(up, down);
        // Who ended it and how: `sD` for the server's timeout, `CD` for a reset by the
        // client... (cli_abrt, srv_abrt follow).
        let flags = killed.map_or_else(|| end.flags(), super::shutdown::Killed::flags);
        let times = SessionTimes {
            queue: Some(conn.queue_time),
            connect: Some(conn.connect_time),
            response: None,
            total: accepted.elapsed(),
        };
        for c in [&backend.counters, &conn.server.counters] {
            c.record_balanced_session(&times, flags);
            // As HAProxy: a failed server connection (a reset) is a response error.
            if killed.is_none() && matches!(end, End::Error(forward::Side::Server)) {
                c.resp_errors.fetch_add(1, Relaxed);
            }
        }
        if let Some(f) = facts.as_deref_mut().filter(|_| !fe.logger.logs_asap()) {
            f.connected(&conn);
            (f.bytes_in, f.bytes_out) = (up, down);
            fe.logger.log_tcp(&fe, Some(f), flags);
        }
    }
}

/// Counts a TCP stream its content rules ended (`end`, `reject` or `silent-drop`) in the
/// frontend's `dreq`, as HAProxy; a `silent-drop` once the stream is in its `backend` in
/// the backend's too, and it readies the client's socket to close without a word.
fn count_content_denial(
    fe: &Frontend,
    backend: Option<&Backend>,
    client: &TcpStream,
    end: rules::Layer4End,
) {
    fe.counters.denied_req.fetch_add(1, Relaxed);
    if end == rules::Layer4End::SilentDrop {
        if let Some(b) = backend {
            b.counters.denied_req.fetch_add(1, Relaxed);
        }
        super::client_socket::silent_drop(client);
    }
}

/// What `show sess` prints of a TCP session of `fe` from `peer` to `local`, accepted then.
fn shown(
    fe: &Frontend,
    peer: SocketAddr,
    local: SocketAddr,
    accepted: Instant,
) -> super::shutdown::Stream {
    super::shutdown::Stream {
        frontend: fe.id,
        src: peer,
        local,
        started: accepted,
    }
}

/// A client's TLS handshake that failed: logged as HAProxy logs a connection that never
/// became a session (its words for the reason), not counted as a session.
fn handshake_failed(
    fe: &Frontend,
    peer: SocketAddr,
    local: SocketAddr,
    e: &super::tls::HandshakeError,
) {
    fe.logger
        .log_conn_failure(fe, peer, local, super::tls::handshake_failure(e));
}

/// Ends a session that got no server connection: counts what its client sent and logs
/// it, `SC` (`sC` when the attempts timed out, as HAProxy), `sQ` after the queue, naming
/// the server tried last.
fn log_connect_error<'a>(
    ended: &Unconnected<'_>,
    facts: Option<&mut log::TcpFacts<'a>>,
    e: &'a ConnectError,
) {
    log_connect_failure(ended, facts, e, &e.term()[..2]);
}

/// [`log_connect_error`], or for a stream killed alone while it waited (`killed`: by
/// `shutdown session`) the kill's code `K` in its phase (`KQ`, `KC`), as HAProxy's
/// `SF_ERR_KILLED`, its first error, logs it.
fn log_connect_end<'a>(
    ended: &Unconnected<'_>,
    facts: Option<&mut log::TcpFacts<'a>>,
    e: &'a ConnectError,
    killed: bool,
) {
    if killed {
        let flags = ["K", &e.term()[1..2]].concat();
        return log_connect_failure(ended, facts, e, &flags);
    }
    log_connect_error(ended, facts, e);
}

/// [`log_connect_error`] with its termination `flags`.
fn log_connect_failure<'a>(
    ended: &Unconnected<'_>,
    facts: Option<&mut log::TcpFacts<'a>>,
    e: &'a ConnectError,
    flags: &str,
) {
    let (fe, backend) = (ended.fe, ended.backend);
    let received = ended.count_received(e.server().map(|s| &**s));
    // A failed connection ends the request's analysis too (`res` variables, not `req`).
    super::vars::response_starts();
    let logged = facts.map(|f| {
        f.bytes_in = received;
        if let Some(server) = e.server() {
            f.server = Some(server);
            f.server_addr = server.socket_addr(f.local.port());
        }
        (f.retries, f.redispatched) = (e.retries(backend), e.redispatched());
        // HAProxy's `Tw` stays unset (-1) when no server was assigned (none usable, a
        // `disabled` backend) or the server's full queue refused the session, as in HTTP.
        let unqueued = matches!(e, ConnectError::NoServer | ConnectError::QueueFull(_));
        f.queue_ms = match e.queue_time() {
            Some(waited) => waited.as_millis() as i64,
            None if unqueued => -1,
            None => 0,
        };
        f.queued = e.queued();
        &*f
    });
    fe.logger.log_tcp(fe, logged, flags);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the futures an async fn taking these arguments returns.
    fn future_size<A, B, C, D, E, F, Fut>(_: impl Fn(A, B, C, D, E, F) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every connection's task holds its session's future for its whole life: 5,000 idle
    /// connections hold 5,000 of them. TLS state lives in boxes, only on TLS sessions (held
    /// inline, it once tripled the size of every session's future, plaintext ones
    /// included); a local moved out of still takes its room (blocks end them), and so do a
    /// nested future's and an `async fn`'s copies of their arguments (the sessions are
    /// functions returning `async move` blocks). A task's memory grows by steps of 128 bytes
    /// (tokio aligns its cells so), so a few bytes more can cost 128 per connection: the
    /// session-lifecycle work once took serve_tcp from 1952 to 2064 bytes, 0.9 MB more with
    /// 5,000 idle connections, until its forwarding was awaited directly again; an HTTP
    /// request rules' `async fn` awaited inline took http::serve to 1776 (its answers and
    /// password checks are boxed now, the decision a plain function). Measured now (debug):
    /// 1992 (watching the client while connecting: +24) and 1672 bytes; TCP and HTTP
    /// connections are tasks of their own types, each sized by its own session.
    #[test]
    fn session_tasks_stay_small() {
        let tcp = future_size(serve_tcp);
        let http = future_size(super::super::http::serve);
        eprintln!("serve_tcp future: {tcp} bytes, http::serve future: {http} bytes");
        // (serve_tcp: +24 for a silent client's `timeout client` while it waits for its
        // server; http::serve: +16 for the second timeout of a kept-alive connection's head.)
        assert!(tcp <= 2024, "serve_tcp's future grew to {tcp} bytes");
        assert!(http <= 1776, "http::serve's future grew to {http} bytes");
    }

    #[test]
    fn header_addresses_are_read_as_haproxy_reads_them() {
        let ip = |text: &str| inetaddr_host_lim(text.as_bytes()).to_string();
        assert_eq!(ip("192.0.2.77"), "192.0.2.77");
        assert_eq!(ip("192.0.2.77:8080"), "192.0.2.77");
        // Missing groups are zero; each group's last three digits count.
        assert_eq!(ip("1.2.3"), "1.2.3.0");
        assert_eq!(ip("1.2.1003.4"), "1.2.3.4");
        assert_eq!(ip("abc"), "0.0.0.0");
    }

    #[test]
    fn header_occurrences_count_comma_separated_values() {
        let head = crate::runtime::http::Head {
            headers: vec![
                ("X-Src".into(), "192.0.2.1, 192.0.2.2".into()),
                ("x-src".into(), "192.0.2.3".into()),
            ],
            first: ["GET".into(), "/".into(), "HTTP/1.1".into()],
            framing: crate::runtime::http::Framing::None,
            dropped_length: false,
            conn: Default::default(),
            h2: None,
        };
        let at = |occ| header_occurrence(&head, "x-src", occ);
        assert_eq!(at(1), Some("192.0.2.1"));
        assert_eq!(at(3), Some("192.0.2.3"));
        assert_eq!(at(4), None);
        assert_eq!(at(-1), Some("192.0.2.3"));
        assert_eq!(at(-3), Some("192.0.2.1"));
        assert_eq!(at(-4), None);
        assert_eq!(at(0), None);
        let client: SocketAddr = "192.0.2.9:4000".parse().unwrap();
        let source = |usesrc| ConnSource {
            addr: "0.0.0.0:0".parse().unwrap(),
            ports: None,
            usesrc: Some(usesrc),
            interface: None,
        };
        let header = source(UseSrc::Header {
            name: "x-src".into(),
            occurrence: -1,
        });
        let foreign = |s: &ConnSource, origin| foreign_address(Some(s), origin);
        let request = Origin::Request(client, &head);
        assert_eq!(foreign(&header, request), Ok("192.0.2.3:0".parse().ok()));
        let tcp = Origin::Client(client);
        assert_eq!(foreign(&header, tcp), Err(NoHeaderAddress));
        let clientip = source(UseSrc::ClientIp);
        assert_eq!(foreign(&clientip, request), Ok("192.0.2.9:0".parse().ok()));
        let whole = source(UseSrc::Client);
        assert_eq!(foreign(&whole, request), Ok(Some(client)));
    }

    #[test]
    fn proxy_headers() {
        let src: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let dst: SocketAddr = "[::ffff:198.51.100.2]:443".parse().unwrap();
        assert_eq!(
            proxy_v1(src, dst),
            "PROXY TCP4 192.0.2.1 198.51.100.2 5000 443\r\n"
        );
        let v2 = proxy_v2(src, dst);
        assert_eq!(v2.len(), 16 + 12);
        assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
    }
}
