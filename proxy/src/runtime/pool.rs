//! Idle server connections kept for reuse by HTTP requests, as HAProxy 2.6 keeps them.
//!
//! After its response a server connection goes to its server's pool, where any later
//! request balanced to that server may take it (`http-reuse`): with `safe` (the default) a
//! client connection's first request never takes one (it opens its own, so that a server
//! closing an idle connection at the wrong time only ever fails a request the client can
//! retry), later requests take the idle ones first, then the "safe" ones (those that served
//! a second request already); `aggressive` lets a first request take a safe one, `always`
//! any. Connections `http-reuse never` makes private stay with their client connection
//! instead (see `runtime::http`; an HTTP/2 client's streams share them, `h2::Session`),
//! counted in use only as they open ([`note_private_attempt`]).
//!
//! Only a connection whose response was read whole is offered (`runtime::http` checks),
//! and each pooled one carries its server's [`Server::conn_generation`]: a new address,
//! maintenance or a server going down retire the idle connections (as HAProxy closes
//! them), so none is taken to the old address or to a server out of the balance.
//!
//! An idle connection stays watched, as HAProxy's stay subscribed to reads: the poller wakes
//! the pool's purge task ([`CloseWatch`]) when one is closed by its server (or sends stray
//! bytes), and the task closes it and drops it from the pool at once. One its server closed
//! first is closed with a FIN, not the reset a server connection is otherwise closed with
//! (HAProxy's `conn_sock_read0` clears `FD_LINGER_RISK`, see `session::end_linger_risk`).
//! A client connection's own idle connections (private, TLS) are watched the same way by
//! that connection while it waits for its next request ([`look`]).
//!
//! How many stay is HAProxy's estimate: a connection is kept when there is not one of its
//! kind (or better) per thread yet, or when the server's connections in use and idle stay
//! within the most it needed at once recently (`est_need_conns`); every `pool-purge-delay`
//! half the excess is closed and the estimate moves towards the recent use. `pool-max-conn`
//! caps the pool. In use means HAProxy's `curr_used_conns`: the requests' connections; a
//! check's connection counts only as it opens (it raises the need, see [`CheckUse`]).
//!
//! Descriptors bound the pool as HAProxy's `tune.pool-low-fd-ratio` (20% of `maxsock` by
//! default) and `tune.pool-high-fd-ratio` (25%) do: at or above the high count no
//! connection is kept, at or above the low one only a thread's first of its kind; and each
//! connection a request makes to a server above the high count closes one of that server's
//! idle connections. The descriptors in use are counted as HAProxy's `ha_used_fds`
//! ([`used_descriptors`]): its listening sockets and pollers' pipes, the client
//! connections, the servers' connections in use (their slots) and idle.
//!
//! Shared HTTP/2 server connections stay in their own list (`runtime::h2_server`), but one
//! with no stream open counts here as a safe idle connection: in the decision to keep it
//! ([`keep_h2`]), in the stats and in the purge, as HAProxy's safe list holds them; one
//! with streams open counts in use once, however many requests it carries.
//!
//! Each thread runs its own runtime and has its own lists (as HAProxy's are per thread), so
//! that requests on different threads do not contend for one lock: a thread takes its own
//! connections first, then another thread's, which it moves to its runtime (HAProxy's
//! "takeover"). The counts the estimate uses are shared.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};
use std::thread::ThreadId;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::state::Server;
use crate::config::model::{HttpReuse, Mode};

/// Lists per pool: threads beyond share them (a thread's are found by [`shard`]).
const SHARDS: usize = 16;

/// A server's idle connections and its recent need of connections.
#[derive(Debug, Default)]
pub struct IdlePool {
    shards: [Mutex<Lists>; SHARDS],
    /// Idle connections in all the lists, and the safe ones among them.
    total: AtomicUsize,
    safe_total: AtomicUsize,
    /// The most connections the server had in use at once recently (`est_need_conns`).
    est_need: AtomicUsize,
    /// The most in use since the last purge (`max_used_conns`).
    max_used: AtomicUsize,
    /// Health and agent check connections open (or opening), for the stats. HAProxy counts
    /// a check's connection in use only as it opens (`conn_new`), then releases it at once
    /// (`conn_set_private` after its connect): it raises the need, never the use.
    checking: Arc<AtomicUsize>,
    /// Requests on a shared HTTP/2 connection beside its first stream: they hold a slot of
    /// the server (`counters.cur`) but no connection of their own ([`in_use`]).
    h2_joined: AtomicUsize,
    /// A purge task runs (while the pool holds anything).
    purging: AtomicBool,
    /// The server's shared HTTP/2 connections (`runtime::h2_server`).
    pub h2: super::h2_server::SharedList,
    /// Woken by the poller when an idle connection has something to read: a close, mostly.
    watch: Arc<CloseWatch>,
    /// HTTP requests that opened a connection (`connect` of the stats), and that reused
    /// one (`reuse`).
    pub connects: AtomicU64,
    pub reuses: AtomicU64,
}

/// What the stats show of a pool: `idle_conn_cur`, `safe_conn_cur`, `need_conn_est`, and
/// the check connections open (in `used_conn_cur`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub idle: usize,
    pub safe: usize,
    pub need: usize,
    pub checks: usize,
}

/// One thread's idle connections.
#[derive(Debug, Default)]
struct Lists {
    /// Served one request: HAProxy's idle list.
    idle: VecDeque<Idle>,
    /// Served several: HAProxy's safe list.
    safe: VecDeque<Idle>,
}

#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    /// The thread (and so the runtime) whose reactor the socket is registered with.
    thread: ThreadId,
    /// The server's [`Server::conn_generation`] when it was pooled.
    generation: u64,
}

/// The waker the poller calls when an idle connection of a pool becomes readable: it tells
/// the pool's purge task to look at its connections (a stored permit if the task is busy,
/// so that no close goes unnoticed).
#[derive(Debug, Default)]
struct CloseWatch(Notify);

impl std::task::Wake for CloseWatch {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

/// What an idle connection holds, looked at without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Open, nothing to read: reusable.
    Quiet,
    /// The server closed it (a FIN, nothing before it).
    Closed,
    /// Bytes nobody asked for, or an error (a reset).
    Stray,
}

/// How many idle connections a refused offer looks at for ones the server closed: a
/// bounded cost per request; the purge task looks at them all.
const PRUNE_ON_OFFER: usize = 4;

/// An idle list: HAProxy's idle (served one request) or safe (served several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idle,
    Safe,
}

/// The process's threads (`nbthread`): HAProxy's pools are per thread, each keeping a
/// first connection of each kind whatever the estimate.
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of threads the pools are shared by.
pub fn set_threads(threads: usize) {
    THREADS.store(threads.max(1), Relaxed);
}

/// The descriptors HAProxy holds whatever the traffic: its listening sockets (one per
/// address, the runtime API's included) and its pollers' pipes (two per thread).
static FIXED_DESCRIPTORS: AtomicUsize = AtomicUsize::new(0);
/// Client connections open.
static CLIENTS: AtomicUsize = AtomicUsize::new(0);
/// Server connections in use: the servers' slots held.
static SERVER_SLOTS: AtomicUsize = AtomicUsize::new(0);
/// Idle connections in every pool.
static IDLE_ALL: AtomicUsize = AtomicUsize::new(0);
/// HAProxy's `pool_low_count` and `pool_high_count`: no bound until [`bound_descriptors`].
static LOW_COUNT: AtomicUsize = AtomicUsize::new(usize::MAX);
static HIGH_COUNT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// HAProxy's default `tune.pool-low-fd-ratio` and `tune.pool-high-fd-ratio`.
pub const DEFAULT_FD_RATIOS: (u8, u8) = (20, 25);

/// Sets the bounds of the pools: `ratios` (low, high, in percent) of `maxsock`, rounded up
/// as HAProxy's; `listening` sockets, and `threads`' pipes, always in use.
pub fn bound_descriptors(maxsock: usize, ratios: (u8, u8), listening: usize, threads: usize) {
    LOW_COUNT.store(ratio_count(maxsock, ratios.0), Relaxed);
    HIGH_COUNT.store(ratio_count(maxsock, ratios.1), Relaxed);
    FIXED_DESCRIPTORS.store(listening + 2 * threads.max(1), Relaxed);
}

/// `ratio` percent of `maxsock`, rounded up (HAProxy's `pool_*_count`).
fn ratio_count(maxsock: usize, ratio: u8) -> usize {
    maxsock.saturating_mul(usize::from(ratio)).div_ceil(100)
}

/// HAProxy's `ha_used_fds`, as hapx counts it (see the module's doc).
fn used_descriptors() -> usize {
    FIXED_DESCRIPTORS.load(Relaxed)
        + CLIENTS.load(Relaxed)
        + SERVER_SLOTS.load(Relaxed)
        + IDLE_ALL.load(Relaxed)
}

/// A client connection opened, or closed (`open` false).
pub fn count_client(open: bool) {
    count(&CLIENTS, open);
}

/// A server's slot taken (a connection of it in use), or given back (`taken` false).
pub fn count_server_slot(taken: bool) {
    count(&SERVER_SLOTS, taken);
}

fn count(gauge: &AtomicUsize, up: bool) {
    if up {
        gauge.fetch_add(1, Relaxed);
    } else {
        gauge.fetch_sub(1, Relaxed);
    }
}

/// This thread's lists in every pool (threads are numbered as they first use a pool), and
/// its id, kept with them: `std::thread::current()` would cost a reference count per call.
fn shard() -> (usize, ThreadId) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: (usize, ThreadId) =
            (NEXT.fetch_add(1, Relaxed) % SHARDS, std::thread::current().id());
    }
    SHARD.with(|own| *own)
}

impl IdlePool {
    fn lock(&self, shard: usize) -> MutexGuard<'_, Lists> {
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn counts(&self) -> PoolCounts {
        let safe = self.safe_total.load(Relaxed);
        PoolCounts {
            idle: self.total.load(Relaxed).saturating_sub(safe),
            safe,
            need: self.est_need.load(Relaxed),
            checks: self.checking.load(Relaxed),
        }
    }

    /// Records `used` connections in use (`srv_use_conn`).
    fn note(&self, used: usize) {
        self.max_used.fetch_max(used, Relaxed);
        self.est_need.fetch_max(used, Relaxed);
    }

    /// Whether any idle connection of the kinds in `order` may be there.
    fn holds_any(&self, order: &[Kind]) -> bool {
        let (total, safe) = (self.total.load(Relaxed), self.safe_total.load(Relaxed));
        order.iter().any(|kind| match kind {
            Kind::Idle => total > safe,
            Kind::Safe => safe > 0,
        })
    }

    /// Takes one from `lists`, from its lists in `order`.
    fn pop(&self, lists: &mut Lists, order: &[Kind]) -> Option<Idle> {
        let (conn, kind) = order.iter().find_map(|&kind| {
            let list = match kind {
                Kind::Idle => &mut lists.idle,
                Kind::Safe => &mut lists.safe,
            };
            Some((list.pop_front()?, kind))
        })?;
        if kind == Kind::Safe {
            self.safe_total.fetch_sub(1, Relaxed);
        }
        self.total.fetch_sub(1, Relaxed);
        IDLE_ALL.fetch_sub(1, Relaxed);
        Some(conn)
    }

    /// The waker that tells this pool's purge task an idle connection became readable.
    fn waker(&self) -> Waker {
        Waker::from(self.watch.clone())
    }

    /// Closes the connections of `lists` the server closed (or sent stray bytes on) while
    /// idle, or that belong to an older `generation`, looking at `most` of each list at the
    /// front (the oldest); those kept stay watched. A connection the server closed first is
    /// closed with a FIN, as HAProxy's.
    fn prune(&self, lists: &mut Lists, generation: u64, most: usize) {
        let waker = self.waker();
        let mut gone = [0; 2];
        for (list, gone) in [&mut lists.idle, &mut lists.safe]
            .into_iter()
            .zip(&mut gone)
        {
            let mut seen = 0;
            list.retain(|c| {
                seen += 1;
                if seen > most {
                    return true;
                }
                let look = look(&c.stream, &waker);
                if look == Look::Closed {
                    super::session::end_linger_risk(&c.stream, false);
                }
                let keep = c.generation == generation && look == Look::Quiet;
                *gone += usize::from(!keep);
                keep
            });
        }
        self.safe_total.fetch_sub(gone[1], Relaxed);
        self.total.fetch_sub(gone[0] + gone[1], Relaxed);
        IDLE_ALL.fetch_sub(gone[0] + gone[1], Relaxed);
    }

    /// Closes every idle connection: its server changed address, went down or into
    /// maintenance, or the process stops softly (as HAProxy does then).
    pub fn clear(&self) {
        let mut closing = Vec::new();
        for at in 0..SHARDS {
            let mut lists = self.lock(at);
            while let Some(conn) = self.pop(&mut lists, &[Kind::Idle, Kind::Safe]) {
                closing.push(conn);
            }
        }
        // Closed outside the locks.
        drop(closing);
    }
}

/// Whether an idle connection is still open with nothing to read, as a live idle one is.
///
/// The poller first, as HAProxy's idle connections: a connection's read readiness is
/// cleared when its response was read to the end (a short read, see
/// [`forward::read_drain`](super::forward::read_drain)) and set again when the poller sees
/// data or a close, so without it nothing came since and no system call is needed (HAProxy
/// made 2 `recv` per kept-alive request where hapx made 3). With it, one recv(2) with
/// MSG_PEEK tells; a readiness it finds stale (nothing to read) is cleared, so that the next
/// look needs no system call either. A close the poller has not reported yet
/// is HAProxy's window too: the request then meets a closed connection, and one without a
/// body is retried on a new one.
pub fn is_quiet(stream: &TcpStream) -> bool {
    look(stream, Waker::noop()) == Look::Quiet
}

/// What `stream` holds, as [`is_quiet`] tells; when quiet, `waker` is woken as soon as the
/// poller sees data or a close on it (until the next look or read replaces it). A readiness
/// the peek finds stale is cleared so that the waker can be registered. Also how a client
/// connection watches the idle server connections it owns (`runtime::http`), as HAProxy's
/// stay subscribed to reads in the session's list.
pub fn look(stream: &TcpStream, waker: &Waker) -> Look {
    let mut cx = Context::from_waker(waker);
    // Twice at most: once with a stale readiness, once more to register the waker.
    for _ in 0..2 {
        if stream.poll_read_ready(&mut cx).is_pending() {
            return Look::Quiet;
        }
        // The socket is non-blocking: a live idle one has nothing to peek at.
        let mut probe = [std::mem::MaybeUninit::uninit()];
        let peeked = stream.try_io(Interest::READABLE, || {
            socket2::SockRef::from(stream).peek(&mut probe)
        });
        match peeked {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Ok(0) => return Look::Closed,
            _ => return Look::Stray,
        }
    }
    // Readable again at once, yet with nothing to read: quiet, if unwatched until the next
    // look (at the next purge or use).
    Look::Quiet
}

/// Records that `server` has one more connection in use (a request holds one of its slots
/// now, counted in `counters.cur`): the need the pool is sized by.
pub fn note_use(server: &Server) {
    server.idle.note(in_use(server));
    shed_if_crowded(server);
}

/// A request's connection to `server` is made while more descriptors than the high count
/// are in use: one of the server's idle connections is closed, as HAProxy's
/// `connect_server` does: from this thread's idle list, else another's idle, then safe one.
fn shed_if_crowded(server: &Server) {
    if used_descriptors() <= HIGH_COUNT.load(Relaxed) {
        return;
    }
    let pool = &server.idle;
    if !pool.holds_any(&[Kind::Idle, Kind::Safe]) {
        return;
    }
    let own = shard().0;
    let closed = pool.pop(&mut pool.lock(own), &[Kind::Idle]).or_else(|| {
        (1..SHARDS)
            .map(|k| (own + k) % SHARDS)
            .find_map(|at| pool.pop(&mut pool.lock(at), &[Kind::Idle, Kind::Safe]))
    });
    // Closed outside the lock.
    drop(closed);
}

/// A TCP session's connection attempt to `server`: HAProxy counts it in use as it opens,
/// and no more once the session runs (its connection is private then), nor are the
/// checks' (see [`CheckUse`]).
pub fn note_tcp_attempt(server: &Server) {
    server.idle.note(1);
    shed_if_crowded(server);
}

/// A request's connection attempt to `server` that will be private to its client
/// connection (`http-reuse never`...): HAProxy counts it in use as it opens (`conn_new`),
/// then no more (`conn_set_private`), nor as that client connection's later requests take
/// it, so that the server's need stays at one whatever the requests in progress.
pub fn note_private_attempt(server: &Server) {
    server.idle.note(1);
    shed_if_crowded(server);
}

/// The connections `server` has in use, HAProxy's `curr_used_conns`: its requests', a
/// shared HTTP/2 connection with streams open counted once ([`h2_streams_joined`]). Not
/// the checks': HAProxy releases a check's connection as soon as it connects (see
/// [`CheckUse`]), so its keep and purge decisions never count them.
pub fn in_use(server: &Server) -> usize {
    let requests = server.counters.cur.load(Relaxed);
    requests.saturating_sub(server.idle.h2_joined.load(Relaxed))
}

/// A stream opened (`joined`) or ended on a shared HTTP/2 connection to `server` that had
/// (has) other streams open: its request uses no connection of its own.
pub fn h2_streams_joined(server: &Server, joined: bool) {
    count(&server.idle.h2_joined, joined);
}

/// A check connection of a server while it opens (the stats show it in `used_conn_cur`).
/// As HAProxy's `conn_new` then `conn_set_private`, it counts in use only as it opens: the
/// need (`est_need_conns`) and the recent use take it in then; once connected it is the
/// check's own. The sessions of a TCP backend hold no connection in use meanwhile (theirs
/// are private once open, see [`note_tcp_attempt`]): a check during one needs no second.
#[derive(Debug)]
pub struct CheckUse(Arc<AtomicUsize>);

impl CheckUse {
    pub fn new(server: &Server) -> CheckUse {
        let checking = server.idle.checking.clone();
        checking.fetch_add(1, Relaxed);
        let tcp = server
            .balancer()
            .is_some_and(|(backend, _)| backend.mode == Mode::Tcp);
        let requests = if tcp { 0 } else { in_use(server) };
        server.idle.note(requests + 1);
        CheckUse(checking)
    }
}

impl Drop for CheckUse {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// The lists a request may take an idle connection from, in the order HAProxy 2.6's
/// `connect_server` tries them (`first`: the first request of its client connection):
///
/// | reuse      | first request | later requests |
/// |------------|---------------|----------------|
/// | safe       | none          | idle, safe     |
/// | aggressive | safe          | idle, safe     |
/// | always     | safe, idle    | idle, safe     |
fn allowed(reuse: HttpReuse, first: bool) -> &'static [Kind] {
    match (reuse, first) {
        (HttpReuse::Never, _) | (HttpReuse::Safe, true) => &[],
        (HttpReuse::Aggressive, true) => &[Kind::Safe],
        (HttpReuse::Always, true) => &[Kind::Safe, Kind::Idle],
        _ => &[Kind::Idle, Kind::Safe],
    }
}

/// An idle connection of `server` for a request, by the `reuse` rules (`first`: the first
/// request of its client connection), the use noted as [`note_use`] does. Each is looked
/// at before it is taken: one the server closed meanwhile (or that holds stray bytes), or
/// of an older generation of the server, is closed and the next one tried.
pub fn take(server: &Server, reuse: HttpReuse, first: bool) -> Option<TcpStream> {
    let taken = reuse_one(server, reuse, first);
    shed_if_crowded(server);
    taken
}

fn reuse_one(server: &Server, reuse: HttpReuse, first: bool) -> Option<TcpStream> {
    server.idle.note(in_use(server));
    let order = allowed(reuse, first);
    let pool = &server.idle;
    let (own, here) = shard();
    let generation = server.conn_generation();
    // This thread's first, then the others' (taken over).
    for k in 0..SHARDS {
        if !pool.holds_any(order) {
            return None;
        }
        let at = (own + k) % SHARDS;
        loop {
            let Some(found) = pool.pop(&mut pool.lock(at), order) else {
                break;
            };
            if let Some(stream) = revive(found, here, generation) {
                return Some(stream);
            }
        }
    }
    None
}

/// The pooled connection ready for use on this thread, if it is of the server's current
/// `generation` and the server did not close it.
fn revive(conn: Idle, here: ThreadId, generation: u64) -> Option<TcpStream> {
    if conn.generation != generation || !is_quiet(&conn.stream) {
        return None;
    }
    if conn.thread == here {
        return Some(conn.stream);
    }
    // Registered with another thread's runtime: moved to this one's.
    let std = conn.stream.into_std().ok()?;
    TcpStream::from_std(std).ok()
}

/// Offers a server connection that just finished a request (`served`: how many it served),
/// opened or pooled in the server's `generation`, to `server`'s pool; false when the pool
/// does not want it (the caller closes it). Called while the request still holds its slot,
/// as HAProxy counts the connection in use then.
pub fn put(server: &Arc<Server>, stream: TcpStream, served: u32, generation: u64) -> bool {
    let opts = &server.opts;
    let current = server.conn_generation();
    if opts.pool_purge_delay.is_zero() || generation != current {
        return false;
    }
    let pool = &server.idle;
    let safe = served > 1;
    let wanted = || wanted(server, safe);
    // Watched from now on; one the server closed already is not kept.
    match look(&stream, &pool.waker()) {
        Look::Quiet => {}
        Look::Closed => {
            super::session::end_linger_risk(&stream, false);
            return false;
        }
        Look::Stray => return false,
    }
    let (at, here) = shard();
    let mut lists = pool.lock(at);
    if !wanted() {
        // Perhaps only because of connections the server closed meanwhile.
        pool.prune(&mut lists, current, PRUNE_ON_OFFER);
        if !wanted() {
            return false;
        }
    }
    let conn = Idle {
        stream,
        thread: here,
        generation,
    };
    if safe {
        lists.safe.push_back(conn);
        pool.safe_total.fetch_add(1, Relaxed);
    } else {
        lists.idle.push_back(conn);
    }
    pool.total.fetch_add(1, Relaxed);
    IDLE_ALL.fetch_add(1, Relaxed);
    drop(lists);
    purge_from_now(server);
    true
}

/// Whether `server`'s pool takes one more idle connection (`safe`: one that served several
/// requests), as HAProxy's `srv_add_to_idle_list` decides. HAProxy keeps a thread's first idle connection (or first safe one) whatever
/// the estimate: here, while there are fewer than one per thread (a client connection's
/// thread is the kernel's choice here, not a rotation as in HAProxy). Descriptors: none
/// kept from the high count on, only a first of its kind from the low one on. In use is
/// HAProxy's `curr_used_conns`, the count the purge uses too.
fn wanted(server: &Server, safe: bool) -> bool {
    wanted_among(server, safe, in_use(server), h2_idle(server))
}

/// [`wanted`], with `used` connections in use and `h2` idle HTTP/2 connections.
fn wanted_among(server: &Server, safe: bool, used: usize, h2: usize) -> bool {
    let pool = &server.idle;
    let threads = THREADS.load(Relaxed);
    let descriptors = used_descriptors();
    // HTTP/2 connections with no stream are in HAProxy's safe list.
    let total = pool.total.load(Relaxed) + h2;
    let safes = pool.safe_total.load(Relaxed) + h2;
    let first_of_kind = safes < threads && (safe || total < threads);
    let under_max = server.opts.pool_max_conn.is_none_or(|max| total < max);
    let needed = descriptors < LOW_COUNT.load(Relaxed)
        && used + total <= used.max(pool.est_need.load(Relaxed));
    descriptors < HIGH_COUNT.load(Relaxed) && under_max && (first_of_kind || needed)
}

/// The idle HTTP/2 connections of `server` (none, without a lock, for one that never
/// speaks HTTP/2).
fn h2_idle(server: &Server) -> usize {
    if server.may_speak_h2() {
        super::h2_server::idle_connections(server)
    } else {
        0
    }
}

/// A shared HTTP/2 connection to `server` whose last stream just ended (and so idle,
/// counted by [`h2_idle`]): whether it stays for later requests, as [`put`] decides for a
/// connection of the pool; the purge task counts it from then on. In use are the
/// connections with streams open and this one (HAProxy's `curr_used_conns` before it goes
/// idle), not the requests: one that holds a slot of the server but has not taken its
/// connection yet (perhaps an idle one, counted idle) is not using one.
pub fn keep_h2(server: &Arc<Server>) -> bool {
    if server.opts.pool_purge_delay.is_zero() {
        return false;
    }
    let (idle, busy) = super::h2_server::connections(server);
    if !wanted_among(server, true, busy + 1, idle.saturating_sub(1)) {
        return false;
    }
    purge_from_now(server);
    true
}

/// Starts the pool's purge task unless it runs (on this thread's runtime: none when an
/// HTTP/2 connection's last stream ends as the process stops, and nothing stays then).
fn purge_from_now(server: &Arc<Server>) {
    if server.idle.purging.swap(true, Relaxed) {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(purge_every(server.clone()))),
        Err(_) => server.idle.purging.store(false, Relaxed),
    }
}

/// Every `pool-purge-delay` while the pool holds connections: closes half of those beyond
/// the recent need, and moves the estimate of the need towards the recent use. In between,
/// closes at once those the poller reports readable and found closed ([`CloseWatch`]).
async fn purge_every(server: Arc<Server>) {
    let pool = &server.idle;
    let delay = server.opts.pool_purge_delay;
    let mut tick = std::pin::pin!(tokio::time::sleep(delay));
    loop {
        tokio::select! {
            () = &mut tick => tick.as_mut().reset(tokio::time::Instant::now() + delay),
            () = pool.watch.0.notified() => {
                let generation = server.conn_generation();
                for at in 0..SHARDS {
                    pool.prune(&mut pool.lock(at), generation, usize::MAX);
                }
                continue;
            }
        }
        let used = in_use(&server);
        let (est, max_used) = (pool.est_need.load(Relaxed), pool.max_used.load(Relaxed));
        pool.est_need
            .store(((est + max_used) / 2).max(max_used), Relaxed);
        pool.max_used.store(used, Relaxed);
        let generation = server.conn_generation();
        for at in 0..SHARDS {
            pool.prune(&mut pool.lock(at), generation, usize::MAX);
        }
        let idle = pool.total.load(Relaxed) + h2_idle(&server);
        let excess = (used + idle).saturating_sub(max_used.max(est));
        let mut to_close = excess.div_ceil(2);
        let mut closing = Vec::new();
        for at in 0..SHARDS {
            let mut lists = pool.lock(at);
            while to_close > 0 {
                let Some(conn) = pool.pop(&mut lists, &[Kind::Idle, Kind::Safe]) else {
                    break;
                };
                closing.push(conn);
                to_close -= 1;
            }
        }
        // Closed outside the locks.
        drop(closing);
        if to_close > 0 && server.may_speak_h2() {
            super::h2_server::close_idle(&server, to_close);
        }
        // A connection pooled meanwhile finds `purging` set, and this loop goes on for it.
        let idle = || pool.total.load(Relaxed) + h2_idle(&server);
        if idle() == 0 {
            pool.purging.store(false, Relaxed);
            if idle() == 0 || pool.purging.swap(true, Relaxed) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_haproxys_rounded_up_counts() {
        // Measured: maxconn 20, without then with a runtime API socket.
        assert_eq!((ratio_count(54, 20), ratio_count(54, 25)), (11, 14));
        assert_eq!((ratio_count(65, 20), ratio_count(65, 25)), (13, 17));
        assert_eq!(ratio_count(usize::MAX, 100), usize::MAX.div_ceil(100));
    }
}
