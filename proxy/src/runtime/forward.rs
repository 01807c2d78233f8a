//! Moving bytes both ways between a client and a server until both sides are done.
//!
//! Small messages are copied through a per-thread buffer (fewest system calls). Once a read
//! fills that buffer the direction is a bulk transfer and, on Linux, switches to splice(2):
//! socket -> pipe -> socket, never entering user space (HAProxy's `splice-auto`). Pipes come
//! from a process-wide pool and are held only while a direction has data in flight, so idle
//! connections cost no pipe, no buffer and no extra file descriptors (5,000 idle connections
//! would otherwise need 20,000 more). At most `maxpipes` pipes (see `limits`). Only the
//! directions a stream's frontend or backend asks to splice (`option splice-*`, see
//! [`Splicing`]) ever do, as in HAProxy; `nosplice` (or `HAPX_NO_SPLICE`) keeps copying.
//!
//! Half-close: when one side finishes sending, the other side's write half is shut down and the
//! opposite direction goes on. The connection ends when both directions have ended, or when
//! a timeout armed expires, nothing having moved meanwhile. The timeouts are per side and
//! per what each direction waits for, as HAProxy arms them per channel ([`IdleTimeouts`]):
//! a direction waiting for data is bounded by its source's timeout (its `-fin` one once it
//! was sent our FIN), one waiting for its destination to take data by the destination's.
//! Measured against HAProxy 2.6.12 (tests/tests/proxy_tcp_timeouts.rs): a client that does
//! not read ends on `timeout client` (`cD`, or `K-` after a kill) even when the server
//! closed or was shut down, a server that does not read on `timeout server` (`sD`).
//!
//! When epoll reported a side's FIN before its last data was read, that data is sent with
//! MSG_MORE and the shutdown follows at once, so data and FIN leave in one packet (as with
//! HAProxy): for a short connection, one packet less to send and one less for the peer to
//! acknowledge.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::config::model::{SpliceOptions, Timeouts};

/// The pipe capacity asked for (F_SETPIPE_SZ), and so how much one splice call moves at
/// most: fewer, larger calls for bulk transfers. Pages are only held while data is in flight.
const PIPE_CHUNK: usize = 512 * 1024;
/// The user-space copy buffer.
const COPY_BUF: usize = 16 * 1024;
/// The buffer of each direction of a TLS forwarding: one full TLS record (16 kB of
/// plaintext). Measured (bench/proxy-tls.sh) against 64 kB: the same throughput within the
/// noise, some 6-10% more proxy CPU per GB moved, and a third of the memory per open
/// connection (46 kB instead of 134 kB; HAProxy's: 49 kB).
const STREAM_BUF: usize = 16 * 1024;
const _: () = assert!(
    STREAM_BUF <= COPY_BUF,
    "TLS forwarding reads into the copy buffer"
);
/// Free pipes kept for reuse.
const POOL_MAX: usize = 256;

/// A pipe: read end and write end.
#[derive(Debug)]
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

static POOL: Mutex<Vec<Pipe>> = Mutex::new(Vec::new());
static PIPES_USED: AtomicU64 = AtomicU64::new(0);
/// Pipes open at most (in use and pooled): the `maxpipes` of the descriptor budget.
static PIPES_MAX: AtomicU64 = AtomicU64::new(u64::MAX);

/// Caps the pipes open at once; beyond it, bulk transfers are copied (HAProxy's `maxpipes`).
pub fn set_max_pipes(n: usize) {
    PIPES_MAX.store(n as u64, Relaxed);
}

/// Pipes in use and pipes kept free, for `show info`.
pub fn pipe_counts() -> (u64, usize) {
    let free = POOL.lock().map_or(0, |p| p.len());
    (PIPES_USED.load(Relaxed), free)
}

/// A pipe in use, counted in `PIPES_USED` until it is given back or dropped: a forwarding
/// dropped while it holds one (a timeout, `on-marked-down`) closes it and uncounts it, so
/// the count, and `maxpipes` with it, stay true.
#[derive(Debug)]
struct UsedPipe(Option<Pipe>);

impl UsedPipe {
    fn fds(&self) -> (RawFd, RawFd) {
        let pipe = self.0.as_ref().expect("a pipe in use until given back");
        (pipe.r.as_raw_fd(), pipe.w.as_raw_fd())
    }

    /// Returns an empty pipe to the pool (a pipe with data left in it is closed instead).
    fn give_back(mut self, empty: bool) {
        let Some(pipe) = self.0.take().filter(|_| empty) else {
            return;
        };
        if let Ok(mut pool) = POOL.lock() {
            if pool.len() < POOL_MAX {
                pool.push(pipe);
            }
        }
    }
}

impl Drop for UsedPipe {
    fn drop(&mut self) {
        PIPES_USED.fetch_sub(1, Relaxed);
    }
}

impl Pipe {
    fn take() -> io::Result<UsedPipe> {
        let pooled = POOL.lock().ok().and_then(|mut p| p.pop());
        let pipe = match pooled {
            Some(p) => p,
            // The pool is empty, so every open pipe is in use.
            None if PIPES_USED.load(Relaxed) >= PIPES_MAX.load(Relaxed) => {
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            None => {
                let mut fds = [0 as RawFd; 2];
                // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
                let rc =
                    unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
                if rc < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
                let pipe = unsafe {
                    Pipe {
                        r: OwnedFd::from_raw_fd(fds[0]),
                        w: OwnedFd::from_raw_fd(fds[1]),
                    }
                };
                // SAFETY: fcntl on a descriptor we own. Failure (a lower pipe-max-size) leaves
                // the default 64 kB, which only means more calls.
                unsafe {
                    libc::fcntl(
                        pipe.w.as_raw_fd(),
                        libc::F_SETPIPE_SZ,
                        PIPE_CHUNK as libc::c_int,
                    )
                };
                pipe
            }
        };
        PIPES_USED.fetch_add(1, Relaxed);
        Ok(UsedPipe(Some(pipe)))
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are open for the duration of the call; null offsets are allowed
    // for pipes and sockets.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// When data last moved, in milliseconds since `base`.
#[derive(Debug)]
pub struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
    fn touch(&self) {
        self.last_ms
            .store(self.base.elapsed().as_millis() as u64, Relaxed);
    }
    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Relaxed));
        self.base.elapsed().saturating_sub(last)
    }

    /// Resolves once nothing moved for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let idle = self.idle();
            if idle >= timeout {
                return;
            }
            tokio::time::sleep(timeout - idle).await;
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// One side of a forwarding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Side {
    #[default]
    Client,
    Server,
}

/// How a forwarding ended.
#[derive(Debug)]
pub enum End {
    /// Both sides finished.
    Done,
    /// Nothing moved for the idle timeout of that side.
    Timeout(Side),
    /// A read or a write on that side's connection failed (a reset...).
    Error(Side),
    /// A `tcp-response content reject` rule ended it (HAProxy's `PD`).
    Denied,
}

impl End {
    /// The first two characters of the termination state HAProxy logs for it: who ended
    /// the session (`c`/`s` a timeout, `C`/`S` an error on that side) and that it was in
    /// the data phase.
    pub fn flags(&self) -> &'static str {
        match self {
            End::Done => "--",
            End::Timeout(Side::Client) => "cD",
            End::Timeout(Side::Server) => "sD",
            End::Error(Side::Client) => "CD",
            End::Error(Side::Server) => "SD",
            End::Denied => "PD",
        }
    }
}

/// Where a direction failed: on the connection it reads from or on the one it writes to
/// ([`both_ways`] tells the client from the server); or splice(2) cannot serve it ([`one_way`]
/// copies instead). The error itself is not kept: only its side is logged, and a result
/// this small keeps every connection's task small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Source,
    Destination,
    Unspliceable,
}

impl Fault {
    fn source(_: io::Error) -> Fault {
        Fault::Source
    }

    fn destination(_: io::Error) -> Fault {
        Fault::Destination
    }

    /// An error of the splice(2) path, at `at`: [`Fault::Unspliceable`] when splice refused
    /// these sockets or no pipe is left.
    fn spliced(at: Fault) -> impl Fn(io::Error) -> Fault {
        move |e| match e.raw_os_error() {
            Some(libc::EINVAL | libc::EMFILE | libc::ENFILE) => Fault::Unspliceable,
            _ => at,
        }
    }

    /// The side that failed, for a direction from `source`.
    fn side(self, source: Side) -> Side {
        match (self, source) {
            (Fault::Destination, Side::Client) => Side::Server,
            (Fault::Destination, Side::Server) => Side::Client,
            _ => source,
        }
    }
}

/// The inactivity timeouts of a forwarding, per side, as HAProxy arms them per channel: a
/// side's timeout (`timeout client`, `timeout server`; `timeout tunnel` replacing both when
/// set) bounds both reading from it and writing to it; its `-fin` timeout (`timeout
/// client-fin`, `timeout server-fin`) replaces it for reading once its connection was shut
/// down toward it (the FIN sent to it). In milliseconds, `None` for none (HAProxy's
/// `timeout ... 0` too): four words, not four `Option<Duration>`s, in every session's task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleTimeouts {
    client: Option<NonZeroU32>,
    server: Option<NonZeroU32>,
    client_fin: Option<NonZeroU32>,
    server_fin: Option<NonZeroU32>,
}

impl IdleTimeouts {
    /// HAProxy's timeouts for a stream between a frontend and a backend: `timeout client`
    /// and `client-fin` are the frontend's, `timeout server`, `server-fin` and `tunnel` the
    /// backend's; a `-fin` timeout unset is the side's own.
    pub fn new(frontend: &Timeouts, backend: &Timeouts) -> Self {
        let client = millis(backend.tunnel.or(frontend.client));
        let server = millis(backend.tunnel.or(backend.server));
        IdleTimeouts {
            client,
            server,
            client_fin: millis(frontend.client_fin).or(client),
            server_fin: millis(backend.server_fin).or(server),
        }
    }

    /// The timeout that expires first in `phase`, and whose it is (the client's on a tie, as
    /// HAProxy, which looks at the client's channel first). Armed, as HAProxy's: a side's
    /// read while a direction waits for data from it (its `-fin` timeout once it was sent
    /// our FIN), a side's write while a direction waits for it to take data. A direction
    /// waiting to write does not read: a client that does not read its data ends on
    /// `timeout client` whatever the server's, even after the server closed or a kill.
    fn first(&self, phase: u8) -> Option<(Duration, Side)> {
        let reads = |way: Way| phase & (way.writing() | way.ended()) == 0;
        let read_timeout = |way: Way, plain, fin| {
            // The FIN sent to the side this direction reads: the other direction ended.
            if phase & way.other().ended() != 0 {
                fin
            } else {
                plain
            }
        };
        let client = shorter(
            reads(Way::Up)
                .then(|| read_timeout(Way::Up, self.client, self.client_fin))
                .flatten(),
            (phase & Way::Down.writing() != 0)
                .then_some(self.client)
                .flatten(),
        );
        let server = shorter(
            reads(Way::Down)
                .then(|| read_timeout(Way::Down, self.server, self.server_fin))
                .flatten(),
            (phase & Way::Up.writing() != 0)
                .then_some(self.server)
                .flatten(),
        );
        let as_duration = |ms: NonZeroU32| Duration::from_millis(u64::from(ms.get()));
        match (client, server) {
            (Some(c), Some(s)) if s < c => Some((as_duration(s), Side::Server)),
            (Some(c), _) => Some((as_duration(c), Side::Client)),
            (None, s) => s.map(|s| (as_duration(s), Side::Server)),
        }
    }

    /// The shortest of all the timeouts: how long a wait goes before it looks at the phase
    /// again (see [`expiry`]).
    fn shortest(&self) -> Option<Duration> {
        let all = [self.client, self.server, self.client_fin, self.server_fin];
        let ms = all.into_iter().flatten().min()?;
        Some(Duration::from_millis(u64::from(ms.get())))
    }
}

/// A configured timeout in milliseconds (rounded up, at most `u32::MAX`); 0 is none, as in
/// HAProxy.
fn millis(timeout: Option<Duration>) -> Option<NonZeroU32> {
    let d = timeout?;
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    NonZeroU32::new(u32::try_from(ms).unwrap_or(u32::MAX))
}

fn shorter(a: Option<NonZeroU32>, b: Option<NonZeroU32>) -> Option<NonZeroU32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A direction of a forwarding: `Up` from the client to the server, `Down` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Up,
    Down,
}

impl Way {
    /// Its bit in a [`Phase`] while it waits for its destination to take data.
    fn writing(self) -> u8 {
        match self {
            Way::Up => 1,
            Way::Down => 2,
        }
    }

    /// Its bit in a [`Phase`] once it ended (its source's end passed on to its destination).
    fn ended(self) -> u8 {
        match self {
            Way::Up => 4,
            Way::Down => 8,
        }
    }

    fn other(self) -> Way {
        match self {
            Way::Up => Way::Down,
            Way::Down => Way::Up,
        }
    }
}

/// What the two directions of a forwarding are doing ([`Way`]'s bits), which tells the
/// timeouts that are armed ([`IdleTimeouts::first`]). One byte in the task. Every change
/// of it comes with a transfer or an end, which touches the forwarding's [`Activity`]:
/// [`expiry`] relies on that.
#[derive(Debug, Default)]
struct Phase(AtomicU8);

impl Phase {
    fn get(&self) -> u8 {
        self.0.load(Relaxed)
    }

    fn writing(&self, way: Way, on: bool) {
        if on {
            self.0.fetch_or(way.writing(), Relaxed);
        } else {
            self.0.fetch_and(!way.writing(), Relaxed);
        }
    }

    /// Marks `way` ended; true when the other direction had ended already.
    fn end(&self, way: Way) -> bool {
        self.0.fetch_or(way.ended(), Relaxed) & way.other().ended() != 0
    }
}

/// Resolves, with its side, once the timeout armed in `phase` expired (counted from the
/// last transfer); never without timeouts. A wait lasts at most the shortest timeout, so
/// that a change of phase (which touches `activity`) is seen before a shorter timeout that
/// it arms would expire.
async fn expiry(activity: &Activity, phase: &Phase, idle: IdleTimeouts) -> Side {
    let Some(recheck) = idle.shortest() else {
        return std::future::pending().await;
    };
    loop {
        let quiet = activity.idle();
        let wait = match idle.first(phase.get()) {
            Some((timeout, side)) if quiet >= timeout => return side,
            Some((timeout, _)) => (timeout - quiet).min(recheck),
            None => recheck,
        };
        tokio::time::sleep(wait).await;
    }
}

/// How one direction of a forwarding uses splice(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Splice {
    /// Never: copies through user space.
    #[default]
    Never,
    /// Once a read fills the copy buffer (a bulk transfer): HAProxy's `splice-auto`.
    Bulk,
    /// From the first byte: HAProxy's `splice-request` / `splice-response`.
    Always,
}

/// How the two directions of a forwarding splice: as HAProxy decides per stream, where the
/// frontend's or the backend's `option splice-*` counts (`splice-request` the client's
/// direction, `splice-response` the server's, from the first byte; `splice-auto` both, for
/// bulk transfers), and only when the process splices at all (no `nosplice`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Splicing {
    /// Client to server.
    pub request: Splice,
    /// Server to client.
    pub response: Splice,
}

impl Splicing {
    /// How a stream through frontend options `fe` and backend options `be` splices, in a
    /// process that splices (`process`).
    pub fn of(process: bool, fe: SpliceOptions, be: SpliceOptions) -> Splicing {
        let auto = fe.auto || be.auto;
        let direction = |always: bool| {
            if !process {
                Splice::Never
            } else if always {
                Splice::Always
            } else if auto {
                Splice::Bulk
            } else {
                Splice::Never
            }
        };
        Splicing {
            request: direction(fe.request || be.request),
            response: direction(fe.response || be.response),
        }
    }
}

/// Forwards both ways until both directions end, or until a timeout armed expires (see
/// [`IdleTimeouts`]).
pub async fn forward(
    client: &TcpStream,
    server: &TcpStream,
    idle: IdleTimeouts,
    splicing: Splicing,
    moved: &impl Tally,
) -> End {
    let activity = Activity::new();
    let phase = Phase::default();
    let (up, down) = directions(client, server, splicing, moved, &activity, &phase);
    tokio::pin!(up, down);
    both_ways(up, down, &activity, &phase, idle).await
}

/// [`forward`] after an inspection: the idle timeouts count from `activity`'s last
/// transfer. (Not [`forward`] with an optional `activity`: that grows every session's task.)
pub async fn forward_after(
    client: &TcpStream,
    server: &TcpStream,
    idle: IdleTimeouts,
    splicing: Splicing,
    moved: &Moved,
    activity: &Activity,
) -> End {
    let phase = Phase::default();
    let (up, down) = directions(client, server, splicing, moved, activity, &phase);
    tokio::pin!(up, down);
    both_ways(up, down, activity, &phase, idle).await
}

/// The two directions of a forwarding, client to server and server to client, for
/// [`both_ways`].
fn directions<'a>(
    client: &'a TcpStream,
    server: &'a TcpStream,
    splicing: Splicing,
    moved: &'a impl Tally,
    activity: &'a Activity,
    phase: &'a Phase,
) -> (
    impl Future<Output = Result<(), Fault>> + 'a,
    impl Future<Output = Result<(), Fault>> + 'a,
) {
    let up = one_way(
        (client, server, Way::Up),
        splicing.request,
        activity,
        moved,
        phase,
    );
    let down = async move {
        let way = (server, client, Way::Down);
        let sent = one_way(way, splicing.response, activity, moved, phase).await;
        moved.moved().server_closed.store(sent.is_ok(), Relaxed);
        sent
    };
    (up, down)
}

/// Runs the two directions of a forwarding until both end, or until a timeout armed in
/// their `phase` expires ([`expiry`]).
/// The directions stay pinned in the caller: moved in, they would take their room twice in
/// every connection's task (the caller's locals and this future), which idle memory shows.
/// `up` reads the client, `down` the server: a [`Fault`] of either says which side failed.
async fn both_ways(
    mut up: Pin<&mut impl Future<Output = Result<(), Fault>>>,
    mut down: Pin<&mut impl Future<Output = Result<(), Fault>>>,
    activity: &Activity,
    phase: &Phase,
    idle: IdleTimeouts,
) -> End {
    let (first, up_ended) = tokio::select! {
        r = &mut up => (r.map_err(|f| f.side(Side::Client)), true),
        r = &mut down => (r.map_err(|f| f.side(Side::Server)), false),
        side = expiry(activity, phase, idle) => return End::Timeout(side),
    };
    if let Err(side) = first {
        return End::Error(side);
    }
    let rest = async {
        if up_ended {
            (&mut down).await.map_err(|f| f.side(Side::Server))
        } else {
            (&mut up).await.map_err(|f| f.side(Side::Client))
        }
    };
    let result = tokio::select! {
        r = rest => r,
        side = expiry(activity, phase, idle) => return End::Timeout(side),
    };
    match result {
        Ok(()) => End::Done,
        Err(side) => End::Error(side),
    }
}

/// Forwards between a plain client and a TLS server stream (`server ... ssl` in TCP mode).
pub async fn forward_tls<S>(client: &TcpStream, server: S, idle: IdleTimeouts, moved: &Moved) -> End
where
    S: AsyncRead + AsyncWrite,
{
    forward_streams(super::tls::Borrowed(client), server, idle, moved).await
}

/// Forwards between two streams of which one at least is TLS, both ways, copying in user
/// space; half-close as on plain connections: the end of one side shuts the other side's
/// sending down (for TLS, a close_notify and a FIN).
pub async fn forward_streams<C, S>(client: C, server: S, idle: IdleTimeouts, moved: &Moved) -> End
where
    C: AsyncRead + AsyncWrite,
    S: AsyncRead + AsyncWrite,
{
    forward_streams_after(client, server, idle, moved, &Activity::new()).await
}

/// [`forward_streams`] after an inspection: the idle timeouts count from `activity`'s last
/// transfer.
pub async fn forward_streams_after<C, S>(
    client: C,
    server: S,
    idle: IdleTimeouts,
    moved: &Moved,
    activity: &Activity,
) -> End
where
    C: AsyncRead + AsyncWrite,
    S: AsyncRead + AsyncWrite,
{
    let phase = Phase::default();
    let (server_r, server_w) = tokio::io::split(server);
    let (client_r, client_w) = tokio::io::split(client);
    let watch = (activity, &phase);
    let up = copy_stream(client_r, server_w, Way::Up, watch, &moved.to_server);
    let down = async {
        let sent = copy_stream(server_r, client_w, Way::Down, watch, &moved.to_client).await;
        moved.server_closed.store(sent.is_ok(), Relaxed);
        sent
    };
    tokio::pin!(up, down);
    both_ways(up, down, activity, &phase, idle).await
}

/// One direction through async streams, until the source ends; then the destination's
/// sending is shut down. A TLS peer that closes without close_notify ends the same way.
/// Reads go through the thread's copy buffer (an idle connection holds none); what the
/// destination does not take at once is kept aside until it does. Its waits to write and
/// its end are marked in the phase (`watch`), as [`one_way`]'s.
async fn copy_stream<R, W>(
    mut src: R,
    mut dst: W,
    way: Way,
    (activity, phase): (&Activity, &Phase),
    count: &AtomicU64,
) -> Result<(), Fault>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut held = Vec::new();
    loop {
        let n = std::future::poll_fn(|cx| read_and_send(cx, &mut src, &mut dst, &mut held)).await?;
        activity.touch();
        if n == 0 {
            phase.writing(way, true);
            let shut = match dst.shutdown().await {
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                other => other.map_err(Fault::destination),
            };
            phase.writing(way, false);
            phase.end(way);
            activity.touch();
            return shut;
        }
        phase.writing(way, true);
        if !held.is_empty() {
            dst.write_all(&held).await.map_err(Fault::destination)?;
            held = Vec::new();
        }
        let flushed = dst.flush().await.map_err(Fault::destination);
        phase.writing(way, false);
        flushed?;
        count.fetch_add(n as u64, Relaxed);
        super::meter::count_sent(n as u64);
        activity.touch();
    }
}

/// One read from `src` into the thread's copy buffer (0 at its end), written to `dst` as
/// far as it takes it now; the rest is appended to `held`. The buffer is borrowed within
/// this poll only, never across a wait.
fn read_and_send<R, W>(
    cx: &mut std::task::Context<'_>,
    src: &mut R,
    dst: &mut W,
    held: &mut Vec<u8>,
) -> std::task::Poll<Result<usize, Fault>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use std::task::Poll;
    COPY.with(|b| {
        let mut buf = b.borrow_mut();
        let mut read = tokio::io::ReadBuf::new(&mut buf[..STREAM_BUF]);
        match Pin::new(&mut *src).poll_read(cx, &mut read) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Poll::Ready(Ok(0));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(Fault::source(e))),
            Poll::Ready(Ok(())) => {}
        }
        let data = read.filled();
        let mut sent = 0;
        while sent < data.len() {
            match Pin::new(&mut *dst).poll_write(cx, &data[sent..]) {
                Poll::Ready(Ok(0)) => {
                    let e = io::ErrorKind::WriteZero.into();
                    return Poll::Ready(Err(Fault::destination(e)));
                }
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Fault::destination(e))),
                Poll::Pending => break,
            }
        }
        held.extend_from_slice(&data[sent..]);
        Poll::Ready(Ok(data.len()))
    })
}

/// Bytes moved (client to server, server to client), updated while forwarding, whether
/// the server ended its side (its FIN read and everything before it passed on), and whether
/// a rule ended the server connection on purpose (`tcp-response content close`), which
/// closes with a reset as HAProxy's kill does.
#[derive(Debug, Default)]
pub struct Moved {
    pub to_server: AtomicU64,
    pub to_client: AtomicU64,
    pub server_closed: AtomicBool,
    pub server_killed: AtomicBool,
}

impl Moved {
    /// The bytes moved one way.
    fn of(&self, way: Way) -> &AtomicU64 {
        match way {
            Way::Up => &self.to_server,
            Way::Down => &self.to_client,
        }
    }
}

/// What a forwarding counts: its [`Moved`], and maybe apart the bytes splice(2) moved. A
/// TCP session's [`Moved`] alone: its task does not grow by what only HTTP's tunnels count
/// (HAProxy's H1 multiplexer's spliced bytes).
pub trait Tally: Sync {
    fn moved(&self) -> &Moved;

    /// `n` bytes spliced one way.
    fn spliced(&self, _way: Way, _n: u64) {}
}

impl Tally for Moved {
    fn moved(&self) -> &Moved {
        self
    }
}

/// A [`Moved`] that also counts the bytes splice(2) moved each way.
#[derive(Debug, Default)]
pub struct SplicedMoved {
    pub moved: Moved,
    pub spliced_to_server: AtomicU64,
    pub spliced_to_client: AtomicU64,
}

impl Tally for SplicedMoved {
    fn moved(&self) -> &Moved {
        &self.moved
    }

    fn spliced(&self, way: Way, n: u64) {
        let count = match way {
            Way::Up => &self.spliced_to_server,
            Way::Down => &self.spliced_to_client,
        };
        count.fetch_add(n, Relaxed);
    }
}

/// The sockets of one direction, and which direction it is.
type Leg<'a> = (&'a TcpStream, &'a TcpStream, Way);

/// One direction, as `splice` says: copies through a per-thread buffer while messages are
/// small, and switches to splice(2) once a read fills the whole buffer, i.e. for bulk
/// transfers, as HAProxy's `option splice-auto` does; or splices from the first byte; or
/// only copies. Its waits to write are marked in `phase` (the timeouts armed change), and
/// so is its end.
async fn one_way(
    leg: Leg<'_>,
    splice: Splice,
    activity: &Activity,
    moved: &impl Tally,
    phase: &Phase,
) -> Result<(), Fault> {
    if splice != Splice::Always {
        let may_splice = splice == Splice::Bulk;
        // (Not a local: every session's task would keep it.)
        let copied =
            copy_one_way(leg, may_splice, activity, moved.moved().of(leg.2), phase).await?;
        if copied == Copied::Eof {
            return Ok(());
        }
    }
    match splice_one_way(leg, activity, moved, phase).await {
        // splice(2) refused these sockets, or no pipe is left (before any data entered one):
        // copy instead.
        Err(Fault::Unspliceable) => {
            copy_one_way(leg, false, activity, moved.moved().of(leg.2), phase)
                .await
                .map(|_| ())
        }
        other => other,
    }
}

/// Ends a direction at its source's end: shuts the write side of `dst` down, unless the
/// other direction ended already (the connection closes right after, which says the same).
/// The peer's FIN is activity, as HAProxy's read of it (the timeouts armed from now on, a
/// `-fin` one among them, count from it); the end of a source shut down here (a kill) is
/// not, and the client's `timeout client` goes on counting from the last write to it.
fn finish((src, dst, way): Leg<'_>, phase: &Phase, activity: &Activity) -> Result<(), Fault> {
    if peer_closed(src) {
        activity.touch();
    }
    if phase.end(way) {
        return Ok(());
    }
    shutdown_write(dst).map_err(Fault::destination)
}

/// Whether the peer of `s` sent its FIN (its TCP state says so): not when only this end
/// shut its reading down (a kill), its connection still established.
fn peer_closed(s: &TcpStream) -> bool {
    let mut state = 0u8;
    let mut len = 1 as libc::socklen_t;
    // SAFETY: one byte of `tcp_info` (its first field, `tcpi_state`) into `state`, whose
    // length is passed; the descriptor is open while `s` lives.
    let ok = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut state).cast(),
            &mut len,
        )
    } == 0;
    // TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2: no FIN from the peer yet.
    !ok || !matches!(state, 1 | 4 | 5)
}

async fn splice_one_way(
    (src, dst, way): Leg<'_>,
    activity: &Activity,
    moved: &impl Tally,
    phase: &Phase,
) -> Result<(), Fault> {
    let (sfd, dfd) = (src.as_raw_fd(), dst.as_raw_fd());
    loop {
        src.readable()
            .await
            .map_err(Fault::spliced(Fault::Source))?;
        // No pipe left: the direction falls back to copying (see `one_way`).
        let pipe = Pipe::take().map_err(Fault::spliced(Fault::Source))?;
        let (pipe_r, pipe_w) = pipe.fds();
        let mut pending = 0usize;
        let result: Result<bool, Fault> = async {
            loop {
                let n = match src.try_io(Interest::READABLE, || splice(sfd, pipe_w, PIPE_CHUNK)) {
                    Ok(0) => return Ok(true),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(Fault::spliced(Fault::Source)(e)),
                };
                activity.touch();
                // Counted as read (see `copy_one_way`).
                moved.moved().of(way).fetch_add(n as u64, Relaxed);
                super::meter::count_sent(n as u64);
                pending += n;
                while pending > 0 {
                    match dst.try_io(Interest::WRITABLE, || splice(pipe_r, dfd, pending)) {
                        Ok(m) => {
                            pending -= m;
                            moved.spliced(way, m as u64);
                            activity.touch();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // Inline, not a helper `async fn`: its copies of the arguments
                            // would take room in every session's task.
                            phase.writing(way, true);
                            let ready = dst.writable().await;
                            phase.writing(way, false);
                            ready.map_err(Fault::spliced(Fault::Destination))?;
                        }
                        Err(e) => return Err(Fault::spliced(Fault::Destination)(e)),
                    }
                }
            }
        }
        .await;
        pipe.give_back(pending == 0);
        if result? {
            return finish((src, dst, way), phase, activity);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Copied {
    Eof,
    /// A read filled the buffer: a bulk transfer, better spliced.
    Bulk,
}

thread_local! {
    /// The copy buffer: one per thread, used only between awaits.
    static COPY: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; COPY_BUF]);
}

async fn copy_one_way(
    (src, dst, way): Leg<'_>,
    may_splice: bool,
    activity: &Activity,
    count: &AtomicU64,
    phase: &Phase,
) -> Result<Copied, Fault> {
    loop {
        // The peer's FIN, when epoll already reported it (EPOLLRDHUP) before the read below.
        let ready = src.ready(Interest::READABLE).await.map_err(Fault::source)?;
        let fin_seen = ready.is_read_closed() && !ready.is_error();
        loop {
            // Read and write through the thread's buffer; whatever the destination cannot
            // take now is kept aside for after the wait.
            let step = COPY.with(|b| -> Result<Option<(usize, bool, Vec<u8>)>, Fault> {
                let mut buf = b.borrow_mut();
                let n = match read_drain(src, &mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    Err(e) => return Err(Fault::source(e)),
                };
                // Counted as read, as HAProxy counts what its buffer took (`req->total`,
                // `res->total`): also what the destination then fails to take.
                count.fetch_add(n as u64, Relaxed);
                super::meter::count_sent(n as u64);
                // A short read after the FIN was seen drained everything the peer sent: this
                // is the last data. Sent with MSG_MORE, it waits in the socket for the FIN
                // that `finish` (or the close) adds right after, and both leave in one packet
                // (HAProxy does the same): one packet less each way for short connections.
                let last = fin_seen && n > 0 && n < buf.len();
                let mut off = 0;
                while off < n {
                    match send(dst, &buf[off..n], last) {
                        Ok(m) => off += m,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(Fault::destination(e)),
                    }
                }
                Ok(Some((n, last, buf[off..n].to_vec())))
            })?;
            let Some((n, last, rest)) = step else { break };
            if n == 0 {
                finish((src, dst, way), phase, activity)?;
                return Ok(Copied::Eof);
            }
            activity.touch();
            let mut off = 0;
            while off < rest.len() {
                phase.writing(way, true);
                let ready = dst.writable().await;
                phase.writing(way, false);
                ready.map_err(Fault::destination)?;
                match dst.try_write(&rest[off..]) {
                    Ok(m) => {
                        off += m;
                        activity.touch();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(Fault::destination(e)),
                }
            }
            if last {
                finish((src, dst, way), phase, activity)?;
                return Ok(Copied::Eof);
            }
            if n < COPY_BUF {
                // Drained (read_drain cleared the readiness): wait for more.
                break;
            }
            if may_splice {
                return Ok(Copied::Bulk);
            }
        }
    }
}

/// Reads into `buf`. A short read means the socket is drained: its read readiness is cleared
/// then (tokio keeps it if data arrived meanwhile), which saves the EAGAIN read that the next
/// wait would otherwise cost. `WouldBlock` when there is nothing to read.
pub fn read_drain(s: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let fd = s.as_raw_fd();
    let len = buf.len();
    let mut got = 0usize;
    let result = s.try_io(Interest::READABLE, || {
        // SAFETY: `buf` is valid for `len` bytes and `fd` is open while `s` lives.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), len, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        got = n as usize;
        if got > 0 && got < len {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(got)
        }
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// What the peer of a just-accepted socket has sent already, without waiting: empty when
/// nothing has arrived yet or the peer closed (its FIN stays to be read by [`forward`]).
///
/// A plain recv(2), not tokio's `try_io`: tokio knows nothing of a new socket's readiness
/// until its driver has polled, and would answer "would block" without asking the kernel.
pub fn read_early(s: &TcpStream) -> io::Result<Vec<u8>> {
    let fd = s.as_raw_fd();
    COPY.with(|b| {
        let mut buf = b.borrow_mut();
        // SAFETY: `buf` is valid for its length and `fd` is open while `s` lives.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        match n {
            n if n >= 0 => Ok(buf[..n as usize].to_vec()),
            _ => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::WouldBlock => Ok(Vec::new()),
                e => Err(e),
            },
        }
    })
}

/// What a server sent while its backend's `tcp-response content` rules inspected it, what
/// they decided, and what is left to do of the client's side.
#[derive(Debug)]
pub struct InspectedResponse<V> {
    pub verdict: V,
    pub data: Vec<u8>,
    /// What the client sent that the server has not taken yet.
    pub to_server: Vec<u8>,
    /// The client ended its side; the server's is shut down once `to_server` is sent.
    pub client_ended: bool,
    /// The server's connection failed (a reset) after it sent `data`: HAProxy takes that as
    /// the end of the response, rules on what came, passes it on and ends with `SD`.
    pub server_failed: bool,
    /// When `timeout server` ends the wait for the server to take `to_server`: its timers
    /// run on from the inspection's.
    server_deadline: Option<tokio::time::Instant>,
}

/// How long a held response waits: the inspect-delay, and each side's inactivity timeout
/// (`timeout client`, `timeout server`; not yet `timeout tunnel`, which HAProxy applies only
/// once no analyser is left on the stream).
#[derive(Debug, Clone, Copy, Default)]
pub struct HoldTimes {
    pub delay: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
}

/// The state of a held response, with HAProxy's per-direction timers: the client's read
/// (`timeout client`, armed while the client may send), the server's read (`timeout
/// server`) and the server's write (`timeout server`, armed while client bytes wait for
/// the server).
struct Hold {
    data: Vec<u8>,
    to_server: Vec<u8>,
    client_open: bool,
    server_ended: bool,
    server_failed: bool,
    client_read_at: tokio::time::Instant,
    server_read_at: tokio::time::Instant,
    server_write_at: tokio::time::Instant,
}

impl Hold {
    fn new() -> Self {
        let now = tokio::time::Instant::now();
        Hold {
            data: Vec::new(),
            to_server: Vec::new(),
            client_open: true,
            server_ended: false,
            server_failed: false,
            client_read_at: now,
            server_read_at: now,
            server_write_at: now,
        }
    }

    /// The client is read only while the server has taken all it sent before (HAProxy stops
    /// reading a side whose buffer is full).
    fn reads_client(&self) -> bool {
        self.client_open && self.to_server.is_empty() && !self.server_failed
    }

    /// The first inactivity timeout to expire, and whose it is (the client's on a tie, as
    /// HAProxy looks at the request channel first).
    fn next_timeout(&self, t: &HoldTimes) -> Option<(tokio::time::Instant, Side)> {
        let client = (t.client.filter(|_| self.reads_client())).map(|d| self.client_read_at + d);
        let read = t.server.map(|d| self.server_read_at + d);
        let write =
            (t.server.filter(|_| !self.to_server.is_empty())).map(|d| self.server_write_at + d);
        let server = match (read, write) {
            (Some(r), Some(w)) => Some(r.min(w)),
            (r, w) => r.or(w),
        };
        match (client, server) {
            (Some(c), Some(s)) if s < c => Some((s, Side::Server)),
            (Some(c), _) => Some((c, Side::Client)),
            (None, s) => s.map(|s| (s, Side::Server)),
        }
    }

    fn read_server(&mut self, server: &TcpStream, buf: &mut [u8], activity: &Activity) {
        let room = (super::INSPECT_LIMIT - self.data.len()).min(buf.len());
        match server.try_read(&mut buf[..room]) {
            Ok(0) => self.server_ended = true,
            Ok(n) => {
                self.data.extend_from_slice(&buf[..n]);
                self.server_read_at = tokio::time::Instant::now();
                activity.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => self.server_failed = true,
        }
    }

    /// Reads what the client sent and passes it on as far as the server takes it now.
    fn read_client(
        &mut self,
        client: &TcpStream,
        server: &TcpStream,
        buf: &mut [u8],
        activity: &Activity,
        moved: &Moved,
    ) -> Result<(), End> {
        match client.try_read(buf) {
            Ok(0) => {
                self.client_open = false;
                self.flush(server, activity);
            }
            Ok(n) => self.pass_to_server(&buf[..n], server, activity, moved),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(End::Error(Side::Client)),
        }
        Ok(())
    }

    /// What the client sent already, read without waiting and passed on before the rules
    /// run: HAProxy forwards what it read of the request in the same pass as it runs the
    /// response's analysers.
    fn read_client_now(
        &mut self,
        client: &TcpStream,
        server: &TcpStream,
        activity: &Activity,
        moved: &Moved,
    ) -> Result<(), End> {
        if self.reads_client() {
            let sent = read_early(client).map_err(|_| End::Error(Side::Client))?;
            if !sent.is_empty() {
                self.pass_to_server(&sent, server, activity, moved);
            }
        }
        Ok(())
    }

    fn pass_to_server(
        &mut self,
        bytes: &[u8],
        server: &TcpStream,
        activity: &Activity,
        moved: &Moved,
    ) {
        let now = tokio::time::Instant::now();
        self.client_read_at = now;
        self.server_write_at = now;
        activity.touch();
        moved.to_server.fetch_add(bytes.len() as u64, Relaxed);
        self.to_server.extend_from_slice(bytes);
        self.flush(server, activity);
    }

    /// Sends the server what it takes of the client's bytes now, and its FIN after the last
    /// of them once the client ended its side. A failure is the server's: the end of the
    /// response.
    fn flush(&mut self, server: &TcpStream, activity: &Activity) {
        while !self.to_server.is_empty() {
            match send(server, &self.to_server, false) {
                Ok(n) => {
                    self.to_server.drain(..n);
                    self.server_write_at = tokio::time::Instant::now();
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.server_failed = true;
                    self.to_server.clear();
                    return;
                }
            }
        }
        if !self.client_open && shutdown_write(server).is_err() {
            self.server_failed = true;
        }
    }

    fn into_inspected<V>(self, verdict: V, times: &HoldTimes) -> InspectedResponse<V> {
        let last = self.server_read_at.max(self.server_write_at);
        InspectedResponse {
            server_deadline: times.server.map(|d| last + d),
            verdict,
            data: self.data,
            to_server: self.to_server,
            client_ended: !self.client_open,
            server_failed: self.server_failed,
        }
    }
}

/// Holds what the server sends (up to `super::INSPECT_LIMIT`) for `decide` to rule on, as
/// HAProxy's `tcp_inspect_response`: first on nothing (the connection just established),
/// then again as data comes, until it decides or until `times.delay` is over, the server
/// ended its side (a FIN or a reset) or the buffer is full (then `decide` is told no more
/// can come: its second argument is false). Meanwhile what the client sends goes on to the
/// server, its end too, and the sides' inactivity timeouts apply. `activity` is touched on
/// each transfer, for the forwarding that follows. `Err`: how the session ended meanwhile.
pub async fn inspect_response<V>(
    client: &TcpStream,
    server: &TcpStream,
    times: HoldTimes,
    activity: &Activity,
    moved: &Moved,
    mut decide: impl FnMut(&[u8], bool) -> Option<V>,
) -> Result<InspectedResponse<V>, End> {
    let mut hold = Hold::new();
    let deadline = times.delay.map(|d| tokio::time::Instant::now() + d);
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        hold.read_client_now(client, server, activity, moved)?;
        let now = tokio::time::Instant::now();
        let expired = deadline.is_none_or(|d| now >= d);
        let full = hold.data.len() >= super::INSPECT_LIMIT;
        let more_may_come = !(hold.server_ended || hold.server_failed || expired || full);
        if let Some(verdict) = decide(&hold.data, more_may_come) {
            return Ok(hold.into_inspected(verdict, &times));
        }
        // Undecided only while more may come, so only with a delay.
        let Some(deadline) = deadline else { continue };
        let timeout = hold.next_timeout(&times);
        if let Some((_, side)) = timeout.filter(|(at, _)| *at <= now) {
            // What was held goes to the client as far as it takes it now (measured: HAProxy
            // passes it on, and counts it), then both sides are shut down (a FIN each).
            if let Ok(n) = send(client, &hold.data, false) {
                moved.to_client.fetch_add(n as u64, Relaxed);
            }
            let _ = shutdown_write(client);
            let _ = shutdown_write(server);
            return Err(End::Timeout(side));
        }
        let wake = timeout.map_or(deadline, |(at, _)| at.min(deadline));
        tokio::select! {
            ready = server.readable() => match ready {
                Ok(()) => hold.read_server(server, &mut buf, activity),
                Err(_) => hold.server_failed = true,
            },
            ready = client.readable(), if hold.reads_client() => {
                ready.map_err(|_| End::Error(Side::Client))?;
                hold.read_client(client, server, &mut buf, activity, moved)?;
            }
            ready = server.writable(), if !hold.to_server.is_empty() => match ready {
                Ok(()) => hold.flush(server, activity),
                Err(_) => hold.server_failed = true,
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// After a verdict that lets the session go on: sends the client what the server sent, the
/// server what the client sent that it had not taken yet (within `timeout server`), and the
/// server's FIN when the client had ended its side.
pub async fn pass_on<V>(
    client: &TcpStream,
    server: &TcpStream,
    inspected: &InspectedResponse<V>,
) -> Result<(), End> {
    send_all(client, &inspected.data)
        .await
        .map_err(|_| End::Error(Side::Client))?;
    if inspected.server_failed {
        return Err(End::Error(Side::Server));
    }
    let sending = send_all(server, &inspected.to_server);
    let sent = match inspected.server_deadline {
        Some(at) => match tokio::time::timeout_at(at, sending).await {
            Ok(sent) => sent,
            Err(_) => {
                let _ = shutdown_write(client);
                let _ = shutdown_write(server);
                return Err(End::Timeout(Side::Server));
            }
        },
        None => sending.await,
    };
    sent.map_err(|_| End::Error(Side::Server))?;
    if inspected.client_ended && !inspected.to_server.is_empty() {
        shutdown_write(server).map_err(|_| End::Error(Side::Server))?;
    }
    Ok(())
}

/// Ends a rejected session as HAProxy does: a FIN to each side, after reading what each had
/// sent already (HAProxy has it in its buffers), so that closing the sockets then resets
/// neither.
pub fn refuse(client: &TcpStream, server: &TcpStream) {
    for side in [client, server] {
        let _ = shutdown_write(side);
        drain(side);
    }
}

/// Reads and drops what `s` has received, without waiting.
fn drain(s: &TcpStream) {
    // A bound, for a peer that sends faster than this reads.
    for _ in 0..64 {
        match read_early(s) {
            Ok(d) if !d.is_empty() => {}
            _ => return,
        }
    }
}

/// Sends all of `data`, waiting for room as needed.
pub async fn send_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        dst.writable().await?;
        match send(dst, data, false) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends what the socket takes now; `more` = MSG_MORE (hold it for what follows at once).
fn send(dst: &TcpStream, data: &[u8], more: bool) -> io::Result<usize> {
    let fd = dst.as_raw_fd();
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    dst.try_io(Interest::WRITABLE, || {
        // SAFETY: `data` is valid for its length and `fd` is open while `dst` lives.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// Ends the sending side of `s` (a FIN), as a forwarding does when the other side ended.
pub fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// Polls `f` once, without waiting: its output if it is ready now. (A TLS side has no
/// `try_read`: its plaintext may wait in its session while the socket has nothing.)
fn now<F: Future>(f: F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// [`inspect_response`] between streams of which one at least is TLS (`bind ... ssl`,
/// `server ... ssl`): the same hold, its rules run on the server's plaintext. What the
/// client sends goes on to the server meanwhile, as on plain sockets.
pub async fn inspect_response_streams<C, S, V>(
    client: &mut C,
    server: &mut S,
    times: HoldTimes,
    activity: &Activity,
    moved: &Moved,
    mut decide: impl FnMut(&[u8], bool) -> Option<V>,
) -> Result<InspectedResponse<V>, End>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut hold = Hold::new();
    let deadline = times.delay.map(|d| tokio::time::Instant::now() + d);
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut server_r, mut server_w) = tokio::io::split(server);
    let (mut from_client, mut from_server) = (vec![0u8; COPY_BUF], vec![0u8; COPY_BUF]);
    loop {
        // What the client sent already goes on before the rules run, as on plain sockets.
        if hold.reads_client()
            && let Some(read) = now(client_r.read(&mut from_client))
        {
            hold.took_from_client(read, &from_client, activity, moved)?;
            hold.write_to_server(&mut server_w, activity).await;
        }
        let now = tokio::time::Instant::now();
        let expired = deadline.is_none_or(|d| now >= d);
        let full = hold.data.len() >= super::INSPECT_LIMIT;
        let more_may_come = !(hold.server_ended || hold.server_failed || expired || full);
        if let Some(verdict) = decide(&hold.data, more_may_come) {
            return Ok(hold.into_inspected(verdict, &times));
        }
        let Some(deadline) = deadline else { continue };
        let timeout = hold.next_timeout(&times);
        if let Some((_, side)) = timeout.filter(|(at, _)| *at <= now) {
            // As on plain sockets: what was held goes first, as far as it goes now.
            if let Some(Ok(n)) = self::now(client_w.write(&hold.data)) {
                moved.to_client.fetch_add(n as u64, Relaxed);
            }
            let _ = self::now(client_w.shutdown());
            let _ = self::now(server_w.shutdown());
            return Err(End::Timeout(side));
        }
        let wake = timeout.map_or(deadline, |(at, _)| at.min(deadline));
        let room = super::INSPECT_LIMIT - hold.data.len();
        tokio::select! {
            read = server_r.read(&mut from_server[..room.min(COPY_BUF)]) => match read {
                Ok(0) => hold.server_ended = true,
                Ok(n) => {
                    hold.data.extend_from_slice(&from_server[..n]);
                    hold.server_read_at = tokio::time::Instant::now();
                    activity.touch();
                }
                Err(_) => hold.server_failed = true,
            },
            read = client_r.read(&mut from_client), if hold.reads_client() => {
                hold.took_from_client(read, &from_client, activity, moved)?;
                hold.write_to_server(&mut server_w, activity).await;
            }
            wrote = server_w.write(&hold.to_server), if !hold.to_server.is_empty() => {
                hold.wrote_to_server(wrote, activity);
                hold.write_to_server(&mut server_w, activity).await;
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

impl Hold {
    /// What a read of the client's stream gave (`buf` holds it): its end, or bytes for the
    /// server (counted, waiting in `to_server`).
    fn took_from_client(
        &mut self,
        read: io::Result<usize>,
        buf: &[u8],
        activity: &Activity,
        moved: &Moved,
    ) -> Result<(), End> {
        match read {
            Ok(0) => self.client_open = false,
            Ok(n) => {
                let now = tokio::time::Instant::now();
                self.client_read_at = now;
                self.server_write_at = now;
                activity.touch();
                moved.to_server.fetch_add(n as u64, Relaxed);
                self.to_server.extend_from_slice(&buf[..n]);
            }
            Err(_) => return Err(End::Error(Side::Client)),
        }
        Ok(())
    }

    /// What a write to the server's stream took of `to_server`; a failure is the server's.
    fn wrote_to_server(&mut self, wrote: io::Result<usize>, activity: &Activity) {
        match wrote {
            Ok(n) => {
                self.to_server.drain(..n);
                self.server_write_at = tokio::time::Instant::now();
                activity.touch();
            }
            Err(_) => {
                self.server_failed = true;
                self.to_server.clear();
            }
        }
    }

    /// Gives the server's stream what it takes of `to_server` now, and its end (for TLS, a
    /// close_notify and a FIN) after the last of it once the client ended its side.
    async fn write_to_server<W: AsyncWrite + Unpin>(
        &mut self,
        server: &mut W,
        activity: &Activity,
    ) {
        while !self.to_server.is_empty() && !self.server_failed {
            let Some(wrote) = now(server.write(&self.to_server)) else {
                break;
            };
            self.wrote_to_server(wrote, activity);
        }
        // A TLS stream holds what it encrypted until the socket takes it.
        if !self.server_failed && now(server.flush()).is_some_and(|f| f.is_err()) {
            self.server_failed = true;
        }
        if !self.client_open && self.to_server.is_empty() && !self.server_failed {
            // Ends as soon as the socket takes it: a close_notify is small.
            if server.shutdown().await.is_err() {
                self.server_failed = true;
            }
        }
    }
}

/// [`pass_on`] between streams (see [`inspect_response_streams`]).
pub async fn pass_on_streams<C, S, V>(
    client: &mut C,
    server: &mut S,
    inspected: &InspectedResponse<V>,
) -> Result<(), End>
where
    C: AsyncWrite + Unpin,
    S: AsyncWrite + Unpin,
{
    let sent = async {
        client.write_all(&inspected.data).await?;
        client.flush().await
    };
    sent.await.map_err(|_| End::Error(Side::Client))?;
    if inspected.server_failed {
        return Err(End::Error(Side::Server));
    }
    let sending = async {
        server.write_all(&inspected.to_server).await?;
        server.flush().await?;
        if inspected.client_ended && !inspected.to_server.is_empty() {
            server.shutdown().await?;
        }
        Ok::<(), io::Error>(())
    };
    let sent = match inspected.server_deadline {
        Some(at) => match tokio::time::timeout_at(at, sending).await {
            Ok(sent) => sent,
            Err(_) => {
                let _ = now(client.shutdown());
                let _ = now(server.shutdown());
                return Err(End::Timeout(Side::Server));
            }
        },
        None => sending.await,
    };
    sent.map_err(|_| End::Error(Side::Server))
}

/// [`refuse`] between streams: each side's end (for TLS, a close_notify and a FIN), after
/// reading what each had sent already, without waiting.
pub fn refuse_streams<C, S>(client: &mut C, server: &mut S)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let _ = now(client.shutdown());
    let _ = now(server.shutdown());
    let mut buf = vec![0u8; COPY_BUF];
    // A bound, for a peer that sends faster than this reads.
    for _ in 0..64 {
        match (now(client.read(&mut buf)), now(server.read(&mut buf))) {
            (Some(Ok(1..)), _) | (_, Some(Ok(1..))) => {}
            _ => return,
        }
    }
}
