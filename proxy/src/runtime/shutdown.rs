//! Sessions ended on purpose: by a server's change of state, as HAProxy's `on-marked-down
//! shutdown-sessions` and `on-marked-up shutdown-backup-sessions` end them (when the checks
//! mark a server DOWN, its established sessions are closed, logged with termination code
//! `D`; when an active server with `on-marked-up` comes UP, every session on the backend's
//! backup servers is closed, code `U`), and by an operator: the runtime API's `shutdown
//! sessions server B/S` and the stats page's `shutdown` action kill every session of one
//! server ([`kill_sessions`], code `K`, HAProxy's `SF_ERR_KILLED`).
//!
//! In HTTP mode, as in HAProxy, what is killed is a request's stream, not its client
//! connection: a request in progress on the server is cut ([`Attached`]), while a kept-alive
//! client connection waiting between requests stays open (its next request goes to a server
//! again). The stream's server socket is shut down, so that the exchange ends as one whose
//! server failed, logged with the kill's code ([`Killed::http_flags`]): no response yet, the
//! client gets HAProxy's 502 (`DH--`/`KH--`, or nothing on a kept-alive connection's later
//! request, which the client is to send again); a response under way is cut and its client
//! connection closed (`DD--`/`KD--`, a server abort); any other end (a close-delimited
//! response the kill cut, a client that stopped reading) is HAProxy's phaseless `D---`. The
//! waits the server's shutdown does not end (the request's sending, an `Expect:
//! 100-continue` answer, a request body coming from the client, a tunnel after a protocol
//! switch) are run under the kill ([`Attached::unless_killed`], which also sees a kill that
//! came before the wait began) and end at once, with the client connection (`D---`).
//!
//! A TCP session's two sockets are registered while it forwards: a kill shuts its server
//! socket down both ways and its client socket's reading (HAProxy's `stream_shutdown`: both
//! channels shut, what the stream holds for its client still sent), so that its forwarding
//! sees both ends closed, sends its client what it holds, and ends, logged `K-` (`D-`, `U-`),
//! its client closed with a FIN, as HAProxy. A client that does not read keeps the session
//! (listed) until `timeout client` counted from the last write to it (whatever `timeout
//! server` and `client-fin` say: `forward`'s per-side timeouts), then gets its FIN. A session still connecting to its server is its
//! server's too (HAProxy's from its connection slot on): each attempt, and its TLS
//! handshake with a `server ... ssl`, runs under the switch of the server it goes to
//! ([`KillSwitch::unless_fired_since`], from the attempt's start: a redispatched stream is
//! the new server's only) and a kill ends it, logged `KC` (`DC`, `UC`), its client closed,
//! no connection error counted. A TCP session is registered from its start (its accept, its
//! TLS handshake done: [`Registration::accepted`]), with no server and no server socket
//! until it connects ([`Registration::connected`]; [`Registration::disconnected`] before a
//! retry), so that `show sess` lists it in its rules and its queue, as HAProxy. Such a
//! stream killed alone (no server's kill reaches it) has its client socket's reading shut
//! down ([`Entry::stop_reading`]): as HAProxy's (`check_req_may_abort`), one in its queue
//! or connecting whose client has nothing pending ends at once (`KQ`, `KC`), its client's
//! close seen by the watch on its wait; one holding its client's data waits on (with
//! `option abortonclose`, ends at once too), to `timeout queue` (`KQ`), the end of its
//! attempts (`KC`) or, given a connection, ends nothing forwarded (`K-`); one in its rules
//! at their end (`KR`; HAProxy 2.6.12 never ends it, a leak not copied). The CLI's own
//! stream killed ([`Registration::cli`]) reads its end and closes, as HAProxy's.
//!
//! An HTTP request that waits for its server (queued, connecting a new connection) is
//! registered meanwhile too ([`Registration::waiting`], no server, listed in its backend);
//! killed alone it is only marked, and ends as its wait ends, as HAProxy's.
//!
//! A stream is registered with the firing count read when it became its server's (its
//! slot, its connection taken: [`KillSwitch::firings`]), not the count when it registers:
//! a firing from another thread in between shuts it down as it registers.
//!
//! Cost: since an operator may kill any server's sessions, every stream is registered,
//! each once ([`Attached`], [`Registration`]): one short lock on a slab of socket numbers
//! when it starts (an HTTP request's sending) and one when it ends; a TCP session (one per
//! connection) takes it also when it connects, and when its rules chose its backend. The slab is the process's, not a server's ([`REGISTRY`]: each stream's entry names
//! its server's switch and count), in 16 shards, one per thread (`thread_shard`), so that
//! the runtime's threads seldom meet on one lock or on one another's memory; a firing (rare: an operator's command, a server's
//! change of state) counts, then looks through one shard at a time under that shard's lock
//! only, shutting down its entries older than the count. A registration holds no reference to its server and an
//! [`Attached`] borrows it: no reference count bounces between the runtime's threads for
//! each request. No fd of its own, no allocation once a shard has grown to its peak of
//! streams, 16 bytes in a TCP session's task. Only the waits named above (and an HTTP
//! stream's connecting) look at the switch's `Notify`, and only when they do wait (not
//! when their work ends at its first poll).
//!
//! One stream alone is killed by the runtime API's `shutdown session ID` ([`kill_stream`], as
//! HAProxy's `stream_shutdown(SF_ERR_KILLED)`, code `K` as above): its entry is marked, its
//! sockets shut down, and its server's waiters woken to look whether it is theirs
//! ([`KillSwitch::wake`]); the stream sees it when it looks at its kill
//! ([`Registration::killed`], [`Attached::killed`]: one atomic load of a process-wide count
//! of such kills, [`ALONE_KILLS`]; its shard's lock only when that count changed since the
//! stream registered, i.e. after some `shutdown session`). An HTTP stream may look after its
//! registration left (its server connection closed by the kill): a killed one's number is
//! then kept in its shard ([`Sockets::killed`]) until its [`Attached`] drops, however many
//! were killed at once. `show sess` lists the registered streams, the CLI's own too
//! ([`Registration::cli`], HAProxy's `GLOBAL` frontend's)
//! ([`streams`]): each entry also says what the stream is ([`Stream`]: its frontend, its
//! listener's address, when it began; its client socket, whose peer and local addresses are
//! shown) and has a number of its own ([`StreamId`]:
//! its shard, its slot and the slot's generation, never 0 and not soon the same again, so
//! that a stale number finds no stream and a lookup needs no search).
//!
//! Limitation: an HTTP stream's task dropped (its client gone) at the very moment its stream
//! is killed alone, between the drops of its [`Attached`] and of its [`Registration`], leaves
//! its number (8 bytes) in its shard's [`Sockets::killed`].
//!
//! Limitation: a switch keeps the reason of its last firing; a stream killed by two firings
//! at once with different reasons (a backup server with `on-marked-down` going DOWN as an
//! active server comes UP) may be logged with either code. HAProxy logs the first.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::Instant;

use super::state::{Backend, Server};

/// Why a session was killed: its termination code in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Killed {
    /// Its server went DOWN (`on-marked-down shutdown-sessions`).
    Down,
    /// An active server came UP (`on-marked-up shutdown-backup-sessions` on a backup).
    Up,
    /// An operator killed the server's sessions (`shutdown sessions server`, the stats
    /// page's `shutdown`).
    Admin,
}

impl Killed {
    /// The session's termination flags, as HAProxy logs a session it killed.
    pub fn flags(self) -> &'static str {
        match self {
            Killed::Down => "D-",
            Killed::Up => "U-",
            Killed::Admin => "K-",
        }
    }

    /// The flags of an HTTP exchange its server's kill ended, as HAProxy logs it (its kill
    /// is the stream's first error): a server's failure before the response (`SH--`)
    /// becomes `DH--`, during it (`SD--`) `DD--`; a complete response (`----`) and a
    /// kept-alive connection's aborted request (`abort`, not logged) keep theirs; any
    /// other end (the client's, a timeout) is [`Killed::phaseless_flags`].
    pub fn http_flags(self, flags: &'static str, abort: &'static str) -> &'static str {
        match (self, flags) {
            (_, "----") => flags,
            (_, f) if f == abort => flags,
            (Killed::Down, "SH--") => "DH--",
            (Killed::Down, "SD--") => "DD--",
            (Killed::Up, "SH--") => "UH--",
            (Killed::Up, "SD--") => "UD--",
            (Killed::Admin, "SH--") => "KH--",
            (Killed::Admin, "SD--") => "KD--",
            _ => self.phaseless_flags(),
        }
    }

    /// The flags of a TCP session killed while it connected to its server, as HAProxy logs
    /// them (`KC`: the kill's code in the connection phase).
    pub fn connecting_flags(self) -> &'static str {
        match self {
            Killed::Down => "DC--",
            Killed::Up => "UC--",
            Killed::Admin => "KC--",
        }
    }

    /// The flags of an HTTP stream killed while its request was being sent or its body
    /// relayed (its client connection closes without a response), or in a tunnel after a
    /// protocol switch, as HAProxy logs them: the kill's code, in no phase.
    pub fn phaseless_flags(self) -> &'static str {
        match self {
            Killed::Down => "D---",
            Killed::Up => "U---",
            Killed::Admin => "K---",
        }
    }

    fn from_code(code: u8) -> Killed {
        match code {
            2 => Killed::Up,
            3 => Killed::Admin,
            _ => Killed::Down,
        }
    }
}

/// Ends the sessions registered on one server.
#[derive(Debug, Default)]
pub struct KillSwitch {
    /// The reason of the last firing ([`Killed`] as 1, 2 or 3).
    why: AtomicU8,
    fired: tokio::sync::Notify,
    /// How many times it fired: an [`Attached`] stream was killed when this changed.
    firings: AtomicU64,
}

/// The streams registered now ([`Registration`]), every server's, in shards, one per
/// thread ([`thread_shard`]): streams starting and ending at once on the runtime's threads
/// seldom meet on one lock (a contended lock costs a futex call).
static REGISTRY: [Shard; SHARDS] = [const { Shard(Mutex::new(Sockets::new())) }; SHARDS];

/// A registered stream: its server's switch (by address: only compared, never followed),
/// the switch's firings when the stream became the server's (a firing since kills it), and
/// its sockets (a TCP session's client and server sockets, an HTTP stream's server socket
/// and [`NO_SOCKET`]).
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Its server's switch, [`NO_SERVER`] while it has none (a TCP session in its rules, its
    /// queue, its connection attempts; the CLI's own stream).
    switch: usize,
    firings: u64,
    /// The switch of the server its connection attempts go to ([`NO_SERVER`]: none yet), for
    /// `show sess`: HAProxy's stream names its server from its assignment on, while its
    /// server's kills reach it only through its attempts (see `session::attempts`).
    target: usize,
    /// While it has no server: the id of the backend it goes to (0: none yet).
    backend: usize,
    /// The CLI's own stream: the number of its `stats socket` (from 1), 0 for any other.
    cli: usize,
    fds: [RawFd; 2],
    /// Its client socket, open while it is registered (a TCP session's first socket, an HTTP
    /// stream's client connection, the CLI's connection), for `show sess` to read its
    /// addresses from (not the CLI's), and a kill to stop its reading.
    client: RawFd,
    /// Its number ([`StreamId`]).
    id: u64,
    /// What it is, for `show sess`.
    stream: Stream,
    /// Killed alone, by `shutdown session` ([`kill_stream`]).
    killed: bool,
    /// Its server socket carries other streams too (an HTTP/2 connection): a kill ends it
    /// by its mark and the switch's wake-up, never by shutting that socket down (HAProxy
    /// resets the one stream).
    shared_socket: bool,
    /// An HTTP stream waiting for its server ([`Registration::waiting`]): a kill marks it
    /// only.
    waiting: bool,
}

/// What `show sess` tells of a stream, given when it registers.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// Its frontend's id.
    pub frontend: usize,
    /// Its client's address as the logs give it (a PROXY header's source, when it sent
    /// one): `show sess` shows its socket's peer, as HAProxy, and this only when the socket
    /// no longer says.
    pub src: SocketAddr,
    /// Its listener's address (a wildcard one's: shown when its socket no longer says).
    pub local: SocketAddr,
    /// When it began: a TCP session's accept, an HTTP stream's request's first byte.
    pub started: Instant,
}

/// A registered stream's number, as `show sess` prints it (HAProxy prints a pointer there):
/// `(generation << SLOT_BITS | slot) * SHARDS + shard`, the generation counted per shard
/// from 1 each time a slot is taken.
pub type StreamId = u64;

/// How many bits of a [`StreamId`] (above its shard) number its slot.
const SLOT_BITS: u32 = 24;

impl Entry {
    /// Shuts its server socket down both ways and its client socket's reading: as HAProxy's
    /// `stream_shutdown`, what the stream holds for its client still goes to it (a client
    /// that does not read has it until `timeout client`), then its close.
    ///
    /// Only under its shard's lock, the entry in it: a number in the registry is an open
    /// socket (see `Registration`: it leaves the registry, under this lock, before its
    /// socket closes), so this shuts down the stream's socket and no other.
    fn shut_down(&self) {
        // A TCP session's first socket is its client's (an HTTP stream's only one its
        // server's). The server's goes first: from then on what the server sends is
        // refused (the kernel resets a connection shut both ways that gets data), so that
        // no answer to a close its forwarding makes once the client's reading ends (a TLS
        // close_notify) reaches the client, as none passes HAProxy's killed stream.
        let session = self.fds[1] != NO_SOCKET;
        for (at, fd) in (self.fds.into_iter().enumerate().rev())
            .filter(|&(_, fd)| fd != NO_SOCKET && !self.shared_socket)
        {
            let how = if session && at == 0 {
                libc::SHUT_RD
            } else {
                libc::SHUT_RDWR
            };
            // SAFETY: an open socket of this stream's (see above).
            unsafe { libc::shutdown(fd, how) };
        }
    }

    /// Shuts down the reading of the client socket of a stream with no server (a TCP
    /// session in its queue or connecting, the CLI's own), so that what waits on that
    /// socket sees the kill as its client's close. A TCP session waiting for its server
    /// then ends at once (`KQ`, `KC`) when its client has nothing pending, and waits on
    /// otherwise (its data still readable), as HAProxy's `check_req_may_abort` aborts a
    /// killed stream (`CF_SHUTW_NOW`) whose request channel is empty, or any with `option
    /// abortonclose`; the CLI's session reads its end and closes, as HAProxy closes it.
    /// Under its shard's lock only (see [`Entry::shut_down`]).
    fn stop_reading(&self) {
        // SAFETY: an open socket of this stream's, as in `shut_down`.
        unsafe { libc::shutdown(self.client, libc::SHUT_RD) };
    }

    /// The local and remote addresses of its server socket (a TCP session's second, an
    /// HTTP stream's only one). Under its shard's lock only (see [`Entry::shut_down`]).
    fn server_socket(&self) -> Option<(SocketAddr, SocketAddr)> {
        let fd = if self.fds[1] == NO_SOCKET {
            self.fds[0]
        } else {
            self.fds[1]
        };
        // SAFETY: an open socket of this stream's, as in `shut_down`, borrowed meanwhile.
        let socket = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&socket);
        let local = socket.local_addr().ok()?.as_socket()?;
        Some((local, socket.peer_addr().ok()?.as_socket()?))
    }

    /// Its client socket's peer address and, when `local`, its local one (a system call
    /// each). Under its shard's lock only (see [`Entry::shut_down`]).
    fn client_addresses(&self, local: bool) -> (Option<SocketAddr>, Option<SocketAddr>) {
        // SAFETY: an open socket of this stream's, as in `shut_down`, borrowed meanwhile.
        let client = unsafe { BorrowedFd::borrow_raw(self.client) };
        let client = socket2::SockRef::from(&client);
        let peer = client.peer_addr().ok().and_then(|a| a.as_socket());
        let local = local.then(|| client.local_addr().ok()?.as_socket());
        (peer, local.flatten())
    }
}

/// The entries of one shard, by slot: a freed slot is taken again, so that registering and
/// unregistering cost O(1) under the lock whatever the concurrency, and allocate nothing
/// once the slab has grown to its peak of streams.
#[derive(Debug)]
struct Sockets {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// How many slots were taken so far: the next entry's generation ([`StreamId`]).
    taken: u64,
    /// The HTTP streams killed alone ([`kill_stream`]) whose registration left while their
    /// [`Attached`] lives on (it looks at its kill after its server connection closed):
    /// each until its [`Attached`] drops.
    killed: Vec<StreamId>,
}

/// How many streams were killed alone ([`kill_stream`]) so far: a stream registered when it
/// was the same was not, and looks at no lock to know it.
static ALONE_KILLS: AtomicU64 = AtomicU64::new(0);

impl Sockets {
    const fn new() -> Sockets {
        Sockets {
            slots: Vec::new(),
            free: Vec::new(),
            taken: 0,
            killed: Vec::new(),
        }
    }

    /// The number of the entry about to be put in `slot` of shard `index`.
    fn next_id(&mut self, index: usize, slot: usize) -> StreamId {
        self.taken += 1;
        let generation = self.taken & ((1 << (64 - SLOT_BITS - SHARDS.ilog2())) - 1);
        // A shard's slots stay far below 2^SLOT_BITS (one per open stream of its thread).
        debug_assert!(slot < 1 << SLOT_BITS, "slot {slot} overflows its bits");
        (((generation << SLOT_BITS) | slot as u64) << SHARDS.ilog2()) | index as u64
    }

    /// The slot the next [`Sockets::take`] fills.
    fn next_slot(&self) -> usize {
        self.free.last().copied().unwrap_or(self.slots.len())
    }

    /// The entry numbered `id`, if it is still registered.
    fn find(&mut self, id: StreamId) -> Option<&mut Entry> {
        let entry = self.slots.get_mut(slot_of(id))?.as_mut()?;
        (entry.id == id).then_some(entry)
    }

    /// Puts `entry` in a slot, a freed one first; its number.
    fn take(&mut self, entry: Entry) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        }
    }

    fn release(&mut self, slot: usize) {
        self.slots[slot] = None;
        self.free.push(slot);
    }
}

/// The slot of the stream numbered `id` in its shard ([`StreamId`]).
fn slot_of(id: StreamId) -> usize {
    (id >> SHARDS.ilog2()) as usize & ((1 << SLOT_BITS) - 1)
}

/// How many shards the registry has.
const SHARDS: usize = 16;

/// The shard the calling thread registers in: one per thread (round robin over the shards
/// as threads first register), so that a stream registers and, mostly, unregisters in
/// memory its own thread last touched. Sharding by socket number had each request take a
/// shard another thread held last: a cache line crossing cores twice per request.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// One shard of the registry, on a cache line of its own.
#[derive(Debug)]
#[repr(align(64))]
struct Shard(Mutex<Sockets>);

fn shard(index: usize) -> MutexGuard<'static, Sockets> {
    REGISTRY[index].0.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shard of the stream numbered `id`.
fn shard_of(id: StreamId) -> MutexGuard<'static, Sockets> {
    shard(id as usize % SHARDS)
}

/// Whether the stream numbered `id`, registered when [`ALONE_KILLS`] was `since`, was killed
/// alone ([`kill_stream`]), registered still or not: no lock unless some stream was since.
fn killed_alone(id: StreamId, since: u64) -> Option<Killed> {
    if ALONE_KILLS.load(SeqCst) == since {
        return None;
    }
    let mut streams = shard_of(id);
    let killed = match streams.find(id) {
        Some(entry) => entry.killed,
        None => streams.killed.contains(&id),
    };
    killed.then_some(Killed::Admin)
}

/// A slot's second number when its stream has one socket only.
const NO_SOCKET: RawFd = -1;

/// An entry's switch while its stream has no server: no switch has this address.
const NO_SERVER: usize = 0;

/// The frontend id of the CLI's own streams (HAProxy's `GLOBAL` proxy, id 0).
pub const GLOBAL: usize = 0;

impl KillSwitch {
    /// Ends every stream running in [`KillSwitch::unless_fired`] or
    /// [`Attached::unless_killed`] now, and shuts down the sockets of the registered ones
    /// (a TCP session's both, an HTTP stream's server socket).
    pub fn fire(&self, why: Killed) {
        self.why.store(why as u8 + 1, Relaxed);
        // Counted first, then each shard in turn under its own lock (the runtime's threads
        // register and unregister in the others meanwhile): a stream registering after the
        // count reads it under its shard's lock and shuts itself down if it became the
        // server's before it (`Attached::register`); one registered before is shut down here
        // (its entry's count is older), or is gone (its socket about to close).
        let now = self.firings.fetch_add(1, SeqCst) + 1;
        let me = self.address();
        for index in 0..SHARDS {
            let streams = shard(index);
            let before = streams.slots.iter().flatten();
            for entry in before.filter(|e| e.switch == me && e.firings < now) {
                entry.shut_down();
            }
        }
        self.fired.notify_waiters();
    }

    /// Runs `work` to its end, unless the switch fires first: then `work` is dropped (its
    /// sockets with it) and the reason returned.
    pub async fn unless_fired<F: Future>(&self, work: F) -> Result<F::Output, Killed> {
        self.unless_fired_since(self.firings.load(SeqCst), work)
            .await
    }

    /// How many times it fired so far: a stream that becomes its server's now (takes its
    /// slot, its connection) is killed by a firing after this count
    /// ([`KillSwitch::unless_fired_since`], [`Attached::to_since`]).
    pub fn firings(&self) -> u64 {
        self.firings.load(SeqCst)
    }

    /// Runs `work` to its end, unless the switch fired since its count was `firings` or
    /// fires meanwhile.
    pub async fn unless_fired_since<F: Future>(
        &self,
        firings: u64,
        work: F,
    ) -> Result<F::Output, Killed> {
        self.unless_killed_since(firings, None, work).await
    }

    /// Runs `work` to its end, unless the switch fired since its count was `firings` or
    /// fires meanwhile, or the stream numbered `alone` (if any) is killed alone
    /// ([`kill_stream`]). A `work` that ends at its first poll (most: a request sent whole
    /// at once) never touches the switch's `Notify`, whose lock every stream of the server
    /// shares: only a wait registers there.
    async fn unless_killed_since<F: Future>(
        &self,
        firings: u64,
        alone: Option<(StreamId, u64)>,
        work: F,
    ) -> Result<F::Output, Killed> {
        if let Some(killed) = self.killed_since(firings) {
            return Err(killed);
        }
        let mut work = std::pin::pin!(work);
        if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
            return Ok(out);
        }
        let killed = || {
            self.killed_since(firings)
                .or_else(|| alone.and_then(|(id, since)| killed_alone(id, since)))
        };
        let fired = self.fired.notified();
        tokio::pin!(fired);
        loop {
            // Registered first, looked at after: a kill is either seen already or wakes it.
            fired.as_mut().enable();
            if let Some(killed) = killed() {
                return Err(killed);
            }
            tokio::select! {
                biased;
                // A wake-up for another stream killed alone waits again.
                () = &mut fired => fired.set(self.fired.notified()),
                out = &mut work => return Ok(out),
            }
        }
    }

    /// Wakes the streams waiting on this switch, to look whether they were killed alone
    /// ([`kill_stream`]): those that were not wait again.
    pub fn wake(&self) {
        self.fired.notify_waiters();
    }

    /// Whether `address` (from [`kill_stream`], [`Shown::switch`]) names this switch.
    pub fn is_named(&self, address: usize) -> bool {
        self.address() == address
    }

    /// The name [`kill_stream`] and [`Shown::switch`] give this switch.
    pub fn name(&self) -> usize {
        self.address()
    }

    /// Why a stream registered at `firings` was killed, if the switch fired since.
    fn killed_since(&self, firings: u64) -> Option<Killed> {
        (self.firings.load(SeqCst) != firings).then(|| Killed::from_code(self.why.load(Relaxed)))
    }

    /// What names the switch in the registry's entries.
    fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

/// A stream on a server (a TCP session forwarding, an HTTP stream from its request's
/// sending to the exchange's end): whether the server's [`KillSwitch`] fired since
/// ([`Attached::killed`]). Its sockets are registered meanwhile ([`Registration`]), so that
/// a firing shuts them down both ways: a TCP session's forwarding sees both ends closed and
/// ends at once; an HTTP exchange's reads and writes to the server fail, as if the server
/// had gone.
#[derive(Debug)]
pub struct Attached<'s> {
    kill: &'s KillSwitch,
    firings: u64,
    id: StreamId,
    /// [`ALONE_KILLS`] when it registered.
    alone_kills: u64,
}

/// A stream's sockets in its switch's registry, until this is dropped.
///
/// The invariant that makes a bare socket number safe to shut down (no `dup`, no fd of its
/// own): the registration must be dropped before its sockets close. The HTTP exchange keeps
/// it in the server connection's state, declared before the socket (struct fields drop in
/// order), and takes it out before the connection goes idle; a TCP session drops it when
/// its forwarding ends, and holds it in a variable declared after its sockets' (dropped
/// first should the task be dropped meanwhile). Dropping it takes the lock
/// [`KillSwitch::fire`] shuts sockets down under: a number is thus never shut down after its
/// socket closed (when the kernel may give it to another socket).
#[derive(Debug)]
pub struct Registration {
    /// Its number: its shard and its slot there ([`StreamId`]).
    id: StreamId,
    /// The switch's firings when it was made, for [`Registration::killed`].
    firings: u64,
    /// [`ALONE_KILLS`] when it was made, and in its top bit ([`ATTACHED`]) whether an
    /// [`Attached`] looks at its stream's kill still (until [`Registration::detach`]): a
    /// stream killed alone is remembered once this is dropped. One word, not two: a TCP
    /// session's task holds it from its accept on (see `session_tasks_stay_small`).
    alone_kills: u64,
}

/// The bit of [`Registration::alone_kills`] that says its stream is attached (the count of
/// kills never comes near it).
const ATTACHED: u64 = 1 << 63;

impl Registration {
    /// Registers a TCP session of `server` between `client` and its server `socket` (a
    /// stream that needs no [`Attached`] beside: it waits on nothing the kill must end),
    /// the server's since its switch had fired `firings` times (see
    /// [`KillSwitch::firings`]): a firing since shuts both sockets down at once. It must be
    /// dropped before either socket closes (see above).
    #[cfg(test)]
    pub fn session(
        server: &Server,
        client: BorrowedFd<'_>,
        socket: BorrowedFd<'_>,
        firings: u64,
        stream: Stream,
    ) -> Registration {
        let fds = [client.as_raw_fd(), socket.as_raw_fd()];
        let mut registration = Attached::register(server, (fds, false), fds[0], firings, stream).1;
        registration.detach();
        registration
    }

    /// Registers a TCP session from its start (its accept, its TLS handshake done), before
    /// it has a server: listed by `show sess`, killed alone by `shutdown session` (which
    /// ends it at its next step, see [`kill_stream`]), by no server's kill until
    /// [`Registration::connected`]. `backend`: its backend's id when known already (0: its
    /// rules choose it, [`Registration::routed`]). It must be dropped before `client`
    /// closes.
    pub fn accepted(client: BorrowedFd<'_>, backend: usize, stream: Stream) -> Registration {
        Registration::without_server(client.as_raw_fd(), backend, 0, stream, false)
    }

    /// Registers an HTTP stream waiting for its server in `backend` (its id: in a queue,
    /// connecting) over its client connection's socket `client`, for `show sess` to list
    /// it, as HAProxy lists every stream. A kill (`shutdown session`) only marks it
    /// ([`Registration::killed_alone`]): HAProxy's killed HTTP stream waits on, its request
    /// in its channel, and ends as its wait ends (`KQ`, `KC`, or at once once connected),
    /// its client connection kept. Taken as a number (the caller's watch of the client
    /// borrows the socket meanwhile): it must be dropped before `client` closes.
    pub fn waiting(client: RawFd, backend: usize, stream: Stream) -> Registration {
        Registration::without_server(client, backend, 0, stream, true)
    }

    /// Registers the CLI's own stream, on its `stats socket` number `listener` (from 1), as
    /// HAProxy lists it (`fe=GLOBAL`), over its connection's `socket`, whose reading a kill
    /// shuts down ([`kill_stream`]; its addresses are never read). It must be dropped before
    /// `socket` closes.
    pub fn cli(listener: usize, socket: BorrowedFd<'_>) -> Registration {
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        let stream = Stream {
            frontend: GLOBAL,
            src: nowhere,
            local: nowhere,
            started: Instant::now(),
        };
        Registration::without_server(socket.as_raw_fd(), 0, listener, stream, false)
    }

    fn without_server(
        client: RawFd,
        backend: usize,
        cli: usize,
        stream: Stream,
        waiting: bool,
    ) -> Registration {
        let index = thread_shard();
        let mut streams = shard(index);
        // Read under the lock a kill of this stream takes: one counts after it.
        let alone_kills = ALONE_KILLS.load(SeqCst);
        let slot = streams.next_slot();
        let id = streams.next_id(index, slot);
        streams.take(Entry {
            switch: NO_SERVER,
            firings: 0,
            target: NO_SERVER,
            backend,
            cli,
            fds: [client, NO_SOCKET],
            client,
            id,
            stream,
            killed: false,
            shared_socket: false,
            waiting,
        });
        Registration {
            id,
            firings: 0,
            alone_kills,
        }
    }

    /// Its stream's rules chose its backend (`backend`: its id), for `show sess`; killed
    /// since their end, its client's reading is shut down now, as [`kill_stream`] does.
    pub fn routed(&self, backend: usize) {
        if let Some(entry) = shard_of(self.id).find(self.id) {
            entry.backend = backend;
            if entry.killed {
                entry.stop_reading();
            }
        }
    }

    /// Its stream's connection attempts go to `server` (assigned by the balancer or a rule;
    /// a TCP session's, an HTTP stream's waiting): `show sess` names it from now on, as
    /// HAProxy's, before any connection.
    pub fn assigned(&self, server: &Server) {
        if let Some(entry) = shard_of(self.id).find(self.id) {
            entry.target = server.kill.address();
        }
    }

    /// Whether its stream was killed alone ([`kill_stream`]): one with no server sees it at
    /// its next step. No lock unless some stream was killed alone since it registered.
    pub fn killed_alone(&self) -> bool {
        killed_alone(self.id, self.alone_kills & !ATTACHED).is_some()
    }

    /// Its TCP session (registered [`Registration::accepted`]) connected to `server` over
    /// `socket`, the server's since its switch had fired `firings` times (see
    /// [`KillSwitch::firings`]): from now on both its sockets are shut down by a firing
    /// since, or at once when it was killed so or alone before. It must then be dropped, or
    /// [`Registration::disconnected`], before `socket` closes.
    pub fn connected(&mut self, server: &Server, socket: BorrowedFd<'_>, firings: u64) {
        self.firings = firings;
        if let Some(entry) = shard_of(self.id).find(self.id) {
            entry.switch = server.kill.address();
            entry.firings = firings;
            entry.fds[1] = socket.as_raw_fd();
            // Under the lock a firing shuts sockets down under (see `Attached::register`).
            if entry.killed || server.kill.firings.load(SeqCst) != firings {
                entry.shut_down();
            }
        }
    }

    /// Its TCP session's server connection is about to close (another attempt follows):
    /// its stream has no server again.
    pub fn disconnected(&mut self) {
        if let Some(entry) = shard_of(self.id).find(self.id) {
            entry.switch = NO_SERVER;
            entry.fds[1] = NO_SOCKET;
        }
    }

    /// Its stream's [`Attached`] is about to drop (its exchange is over, its server
    /// connection kept): no one looks at a kill from now on.
    pub fn detach(&mut self) {
        self.alone_kills &= !ATTACHED;
    }

    /// Why its stream was killed, if its `server`'s switch fired since it was registered,
    /// or it was killed alone ([`kill_stream`]).
    pub fn killed(&self, server: &Server) -> Option<Killed> {
        server
            .kill
            .killed_since(self.firings)
            .or_else(|| killed_alone(self.id, self.alone_kills & !ATTACHED))
    }
}

impl<'s> Attached<'s> {
    /// Attaches an HTTP stream of `server` over its server `socket`, the server's from now
    /// on. The [`Registration`] must be dropped before `socket` closes (see there).
    #[cfg(test)]
    pub fn to(server: &'s Server, socket: BorrowedFd<'_>) -> (Attached<'s>, Registration) {
        let firings = server.kill.firings();
        Attached::to_since(server, (socket, false), socket, firings, tests::stream())
    }

    /// Attaches an HTTP stream of `server` over its server `socket`, the server's since its
    /// switch had fired `firings` times (its slot, its connection taken then: see
    /// [`KillSwitch::firings`]); a firing since kills it at once. `client`: its client
    /// connection's socket, which must stay open while it is registered. `shared`: the
    /// server socket carries other streams too (see [`Entry::shared_socket`]).
    pub fn to_since(
        server: &'s Server,
        (socket, shared): (BorrowedFd<'_>, bool),
        client: BorrowedFd<'_>,
        firings: u64,
        stream: Stream,
    ) -> (Attached<'s>, Registration) {
        let fds = [socket.as_raw_fd(), NO_SOCKET];
        Attached::register(server, (fds, shared), client.as_raw_fd(), firings, stream)
    }

    fn register(
        server: &'s Server,
        (fds, shared_socket): ([RawFd; 2], bool),
        client: RawFd,
        firings: u64,
        stream: Stream,
    ) -> (Attached<'s>, Registration) {
        let kill = &server.kill;
        let index = thread_shard();
        // Under the lock, where a firing would shut it down: one counted already but not
        // yet here (or done here before it came) is caught now.
        let (id, alone_kills) = {
            let mut streams = shard(index);
            // Read under the lock a kill of this stream takes: one counts after it.
            let alone_kills = ALONE_KILLS.load(SeqCst);
            let slot = streams.next_slot();
            let id = streams.next_id(index, slot);
            let entry = Entry {
                switch: kill.address(),
                firings,
                target: kill.address(),
                backend: 0,
                cli: 0,
                fds,
                client,
                id,
                stream,
                killed: false,
                shared_socket,
                waiting: false,
            };
            if kill.firings.load(SeqCst) != firings {
                entry.shut_down();
            }
            streams.take(entry);
            (id, alone_kills)
        };
        let attached = Attached {
            kill,
            firings,
            id,
            alone_kills,
        };
        let registration = Registration {
            id,
            firings,
            alone_kills: alone_kills | ATTACHED,
        };
        (attached, registration)
    }

    /// Why the stream was killed, if its server's switch fired since it attached or it was
    /// killed alone ([`kill_stream`]; its registration may be gone: its number is not
    /// another's).
    pub fn killed(&self) -> Option<Killed> {
        (self.kill.killed_since(self.firings)).or_else(|| killed_alone(self.id, self.alone_kills))
    }

    /// Runs `work` to its end, unless the stream is killed first, or was already (a firing
    /// before the wait began reached no waiter): then `work` is dropped and the reason
    /// returned.
    pub async fn unless_killed<F: Future>(&self, work: F) -> Result<F::Output, Killed> {
        let alone = Some((self.id, self.alone_kills));
        self.kill
            .unless_killed_since(self.firings, alone, work)
            .await
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        // Its number, if its registration left killed, is no one's to look at any more.
        if ALONE_KILLS.load(SeqCst) != self.alone_kills {
            let mut streams = shard_of(self.id);
            if let Some(at) = streams.killed.iter().position(|&id| id == self.id) {
                streams.killed.swap_remove(at);
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = shard_of(self.id);
        let killed = streams.find(self.id).is_some_and(|e| e.killed);
        if killed && self.alone_kills & ATTACHED != 0 {
            streams.killed.push(self.id);
        }
        streams.release(slot_of(self.id));
    }
}

/// A registered stream as `show sess` shows it ([`streams`]).
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: StreamId,
    pub stream: Stream,
    /// Its server's switch ([`KillSwitch::is_named`]); while it connects, the switch of the
    /// server its attempts go to, if any.
    pub switch: usize,
    /// Its client's address, as its socket says (else [`Stream::src`]).
    pub src: SocketAddr,
    /// The address its client connected to, when asked for: its socket's local one (a
    /// wildcard listener's connection's own), else [`Stream::local`].
    pub local: SocketAddr,
    /// Its server connection's local and remote addresses, when asked for and known.
    pub server_socket: Option<(SocketAddr, SocketAddr)>,
    /// While it has no server ([`Shown::switch`] names none): the id of its backend, when
    /// it has one yet.
    pub backend: Option<usize>,
    /// The CLI's own stream: the number of its `stats socket`.
    pub cli: Option<usize>,
}

/// The registered streams, oldest first; with their server connections' addresses when
/// `addresses` (two system calls per stream).
pub fn streams(addresses: bool) -> Vec<Shown> {
    let mut shown = Vec::new();
    for index in 0..SHARDS {
        let streams = shard(index);
        for entry in streams.slots.iter().flatten() {
            let cli = (entry.cli != 0).then_some(entry.cli);
            let (src, local) = match cli {
                Some(_) => (None, None),
                None => entry.client_addresses(addresses),
            };
            let connected = entry.switch != NO_SERVER;
            shown.push(Shown {
                id: entry.id,
                stream: entry.stream,
                switch: if connected {
                    entry.switch
                } else {
                    entry.target
                },
                src: src.unwrap_or(entry.stream.src),
                local: local.unwrap_or(entry.stream.local),
                server_socket: (addresses && connected)
                    .then(|| entry.server_socket())
                    .flatten(),
                backend: (!connected && entry.backend != 0).then_some(entry.backend),
                cli,
            });
        }
    }
    shown.sort_by_key(|s| s.stream.started);
    shown
}

/// Kills the stream numbered `id` alone, as HAProxy's `shutdown session` (logged with code
/// `K`): its sockets are shut down. One with no server has its client socket's reading shut
/// down (see [`Entry::stop_reading`]). Its server's switch (to [`KillSwitch::wake`] its
/// waiters with), if it is registered.
pub fn kill_stream(id: StreamId) -> Option<usize> {
    let mut streams = shard_of(id);
    let entry = streams.find(id)?;
    // Counted before its sockets shut down: a stream that sees them shut sees the count.
    ALONE_KILLS.fetch_add(1, SeqCst);
    entry.killed = true;
    if entry.switch != NO_SERVER {
        entry.shut_down();
    } else if entry.waiting {
        // An HTTP stream waiting for its server sees its mark as its wait ends.
    } else if entry.cli != 0 || entry.backend != 0 {
        // The CLI's own, or a TCP session past its rules (in its queue, connecting).
        entry.stop_reading();
    }
    // One in its rules waits on: ended at their end (`KR`; see `Registration::routed`).
    Some(entry.switch)
}

/// `server` as `backend` holds it, for an [`Attached`] to borrow for as long as the backend
/// (found by its index, with no reference counted).
pub fn in_backend<'b>(backend: &'b Backend, server: &Server) -> Option<&'b Server> {
    let same = |s: &&'b std::sync::Arc<Server>| std::ptr::eq(&***s, server);
    let by_index = server.index().and_then(|i| backend.servers.get(i));
    by_index
        .filter(same)
        .or_else(|| backend.servers.iter().find(same))
        .map(|s| &**s)
}

/// Runs `work` under `attached` when there is one (see [`Attached::unless_killed`]), else
/// to its end.
pub async fn unless_killed<F: Future>(
    attached: Option<&Attached<'_>>,
    work: F,
) -> Result<F::Output, Killed> {
    match attached {
        Some(attached) => attached.unless_killed(work).await,
        None => Ok(work.await),
    }
}

/// Kills every session of `server` now, as HAProxy's `shutdown sessions server` and its
/// stats page's `shutdown` action (logged with code `K`).
pub fn kill_sessions(server: &Server) {
    server.kill.fire(Killed::Admin);
}

/// Acts on a server's change of state by its checks (`up`: it came UP).
pub fn on_marked(backend: &Backend, server: &Server, up: bool) {
    if !up {
        if server.opts.shutdown_on_down {
            server.kill.fire(Killed::Down);
        }
        return;
    }
    // As HAProxy: only an active server with a weight takes the traffic back.
    if server.opts.shutdown_backups_on_up && !server.opts.backup && server.lb_weight() > 0 {
        for backup in backend.servers.iter().filter(|s| s.opts.backup) {
            backup.kill.fire(Killed::Up);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Proxy, ProxyKind, Server as ServerConf, ServerOptions};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    /// A backend with one server `s` with `on-marked-down shutdown-sessions`.
    fn backend() -> Backend {
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Default::default());
        p.servers.push(ServerConf {
            name: "s".into(),
            host: "127.0.0.1".into(),
            port: Some(1),
            opts: ServerOptions {
                shutdown_on_down: true,
                ..Default::default()
            },
            place: Default::default(),
            id: 1,
            addr: Some([127, 0, 0, 1].into()),
        });
        Backend::new(1, &p)
    }

    /// What a test stream is (for `show sess`).
    pub(super) fn stream() -> Stream {
        Stream {
            frontend: 1,
            src: ([127, 0, 0, 2], 1000).into(),
            local: ([127, 0, 0, 1], 80).into(),
            started: Instant::now(),
        }
    }

    /// A connected pair of sockets on loopback: (ours, the peer's).
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (ours, listener.accept().unwrap().0)
    }

    /// How many streams are registered on `server` (the registry is the process's: other
    /// tests' streams are in it too).
    fn registered(server: &Server) -> usize {
        let me = server.kill.address();
        (0..SHARDS)
            .map(|index| {
                let s = shard(index);
                s.slots.iter().flatten().filter(|e| e.switch == me).count()
            })
            .sum()
    }

    /// A TCP session's client socket's reading was shut down (what it holds for its client
    /// still goes), and its server socket both ways.
    fn assert_shut_down(client: &mut TcpStream, socket: &mut TcpStream) {
        use std::io::Read;
        assert_eq!(
            client.read(&mut [0; 1]).ok(),
            Some(0),
            "the client's reading ended"
        );
        client
            .write_all(b"x")
            .expect("the client's writing still goes");
        assert!(socket.write_all(b"x").is_err(), "the server side shut down");
    }

    #[test]
    fn a_registration_leaves_the_registry() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, _pa) = pair(&listener);
        let (b, _pb) = pair(&listener);
        let (_, first) = Attached::to(server, a.as_fd());
        let (_, second) = Attached::to(server, b.as_fd());
        assert_eq!(registered(server), 2);
        drop(first);
        assert_eq!(registered(server), 1);
        let (_, again) = Attached::to(server, a.as_fd());
        assert_eq!(registered(server), 2);
        drop((second, again));
        assert_eq!(registered(server), 0);
    }

    #[test]
    fn a_stream_killed_alone_is_shut_down_and_no_other() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let [(mut client, _pc), (mut socket, _ps)] = [(); 2].map(|()| pair(&listener));
        let [(mut other, _po), (mut other_socket, _pos)] = [(); 2].map(|()| pair(&listener));
        let since = server.kill.firings();
        let one = Registration::session(server, client.as_fd(), socket.as_fd(), since, stream());
        let two =
            Registration::session(server, other.as_fd(), other_socket.as_fd(), since, stream());
        let listed = streams(true);
        let shown = listed.iter().find(|s| s.id == one.id).expect("listed");
        assert!(server.kill.is_named(shown.switch));
        assert_eq!(
            shown.server_socket.map(|(_, peer)| peer),
            Some(listener.local_addr().unwrap())
        );
        assert_eq!(kill_stream(one.id), Some(shown.switch));
        assert_eq!(one.killed(server), Some(Killed::Admin));
        assert_eq!(two.killed(server), None, "the other stream lives");
        assert_shut_down(&mut client, &mut socket);
        other.write_all(b"x").expect("untouched");
        other_socket.write_all(b"x").expect("untouched");
        let id = one.id;
        drop(one);
        assert_eq!(kill_stream(id), None, "gone: its number finds nothing");
        // Its slot is taken again under another number.
        let again = Registration::session(server, client.as_fd(), socket.as_fd(), since, stream());
        assert_ne!(again.id, id);
        assert_ne!(again.id, 0);
        assert_eq!(again.killed(server), None);
        drop((two, again));
    }

    #[test]
    fn http_streams_killed_alone_at_once_know_it_after_their_registrations_left() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // More than any ring would keep, on one thread's shard, killed before any looks.
        let pairs: Vec<_> = (0..100).map(|_| pair(&listener)).collect();
        let streams: Vec<_> = pairs
            .iter()
            .map(|(s, _)| Attached::to(server, s.as_fd()))
            .collect();
        let (mut living, _peer) = pair(&listener);
        let (alive, _kept) = Attached::to(server, living.as_fd());
        for (attached, _) in &streams {
            assert!(kill_stream(attached.id).is_some());
        }
        let ids: Vec<_> = streams.iter().map(|(a, _)| a.id).collect();
        let mut attached = Vec::new();
        for (stream, registration) in streams {
            drop(registration);
            attached.push(stream);
        }
        for stream in &attached {
            assert_eq!(stream.killed(), Some(Killed::Admin), "{:x}", stream.id);
        }
        assert_eq!(alive.killed(), None);
        living.write_all(b"x").expect("untouched");
        drop(attached);
        let kept = (0..SHARDS).flat_map(|i| shard(i).killed.clone());
        assert!(
            kept.filter(|id| ids.contains(id)).count() == 0,
            "forgotten once dropped"
        );
    }

    #[tokio::test]
    async fn a_wait_ends_when_its_stream_is_killed_alone() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (stream_a, _pa) = pair(&listener);
        let (stream_b, _pb) = pair(&listener);
        let (a, _ra) = Attached::to(server, stream_a.as_fd());
        let (b, _rb) = Attached::to(server, stream_b.as_fd());
        let waiting_a = a.unless_killed(std::future::pending::<()>());
        let waiting_b = b.unless_killed(tokio::time::sleep(std::time::Duration::from_millis(300)));
        let kill = async {
            tokio::task::yield_now().await;
            kill_stream(a.id);
            server.kill.wake();
        };
        let (ended_a, ended_b, ()) = tokio::join!(waiting_a, waiting_b, kill);
        assert_eq!(ended_a, Err(Killed::Admin));
        assert_eq!(ended_b, Ok(()), "the other waits on to its end");
    }

    #[test]
    fn a_freed_slot_is_taken_again() {
        let mut sockets = Sockets::new();
        let entry = |fd| Entry {
            switch: 1,
            firings: 0,
            target: 1,
            backend: 0,
            cli: 0,
            fds: [fd, NO_SOCKET],
            client: fd,
            id: 0,
            stream: stream(),
            killed: false,
            shared_socket: false,
            waiting: false,
        };
        let (first, second) = (sockets.take(entry(3)), sockets.take(entry(4)));
        sockets.release(first);
        assert_eq!(sockets.take(entry(5)), first);
        assert_eq!(sockets.slots.len(), 2, "no slot added");
        sockets.release(second);
        assert_eq!(sockets.slots.iter().flatten().count(), 1);
    }

    #[test]
    fn a_socket_number_reused_after_its_registration_is_never_shut_down() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (stream, _peer) = pair(&listener);
        let number = stream.as_raw_fd();
        let (attached, registration) = Attached::to(server, stream.as_fd());
        // As in a server connection: the registration goes first, then the socket.
        drop(registration);
        drop(stream);
        // The kernel gives the lowest free number again (another test's thread may take
        // it first: more pairs until one has it).
        let mut pairs = Vec::new();
        while !pairs
            .iter()
            .any(|(a, b): &(TcpStream, TcpStream)| [a.as_raw_fd(), b.as_raw_fd()].contains(&number))
        {
            assert!(pairs.len() < 100, "socket number {number} never came back");
            pairs.push(pair(&listener));
        }
        server.kill.fire(Killed::Down);
        assert_eq!(attached.killed(), Some(Killed::Down));
        for (a, b) in &mut pairs {
            a.write_all(b"alive")
                .expect("a new socket was not shut down");
            b.write_all(b"alive").expect("nor its peer");
        }
    }

    #[test]
    fn a_firing_shuts_down_the_streams_attached_before_it_only() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut before, _pb) = pair(&listener);
        let (attached, _registration) = Attached::to(server, before.as_fd());
        server.kill.fire(Killed::Up);
        let (mut after, _pa) = pair(&listener);
        let (later, _later_registration) = Attached::to(server, after.as_fd());
        assert_eq!(attached.killed(), Some(Killed::Up));
        assert_eq!(later.killed(), None);
        assert!(before.write_all(b"x").is_err(), "shut down");
        after
            .write_all(b"x")
            .expect("attached after the firing: untouched");
    }

    #[test]
    fn a_firing_shuts_down_both_sockets_of_a_tcp_session() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let [(mut client, _pc), (mut socket, _ps)] = [(); 2].map(|()| pair(&listener));
        let since = server.kill.firings();
        let registration =
            Registration::session(server, client.as_fd(), socket.as_fd(), since, stream());
        assert_eq!(registration.killed(server), None);
        kill_sessions(server);
        assert_eq!(registration.killed(server), Some(Killed::Admin));
        assert_eq!(Killed::Admin.flags(), "K-");
        assert_shut_down(&mut client, &mut socket);
        drop(registration);
        assert_eq!(registered(server), 0);
    }

    #[test]
    fn a_stream_taken_before_a_firing_and_registered_after_it_is_shut_down_at_once() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let [(mut client, _pc), (mut socket, _ps)] = [(); 2].map(|()| pair(&listener));
        // Its slot taken, then a firing from another thread, then its registration.
        let since = server.kill.firings();
        kill_sessions(server);
        let registration =
            Registration::session(server, client.as_fd(), socket.as_fd(), since, stream());
        assert_eq!(registration.killed(server), Some(Killed::Admin));
        assert_shut_down(&mut client, &mut socket);
        // One taken after the firing is untouched.
        let (mut later, _pl) = pair(&listener);
        let now = server.kill.firings();
        let (attached, _kept) =
            Attached::to_since(server, (later.as_fd(), false), later.as_fd(), now, stream());
        assert_eq!(attached.killed(), None);
        later
            .write_all(b"x")
            .expect("taken after the firing: untouched");
    }

    #[test]
    fn a_stream_with_no_server_is_listed_and_its_kill_stops_its_clients_reading() {
        use std::io::Read;
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let [(mut client, mut peer), (mut socket, _ps)] = [(); 2].map(|()| pair(&listener));
        let (mut cli_socket, _cli_peer) = pair(&listener);
        let mut registration = Registration::accepted(client.as_fd(), 7, stream());
        let cli = Registration::cli(2, cli_socket.as_fd());
        let listed = streams(false);
        let shown = listed
            .iter()
            .find(|s| s.id == registration.id)
            .expect("listed");
        assert_eq!(
            (shown.switch, shown.backend, shown.cli),
            (NO_SERVER, Some(7), None)
        );
        let own = listed
            .iter()
            .find(|s| s.id == cli.id)
            .expect("the CLI's listed");
        assert_eq!((own.cli, own.stream.frontend), (Some(2), GLOBAL));
        peer.write_all(b"pending").unwrap();
        assert_eq!(kill_stream(registration.id), Some(NO_SERVER));
        assert!(registration.killed_alone());
        let mut pending = [0; 7];
        client.read_exact(&mut pending).expect("what it held stays");
        assert_eq!(client.read(&mut [0; 1]).ok(), Some(0), "then its end");
        client.write_all(b"x").expect("its writing goes on");
        assert_eq!(kill_stream(cli.id), Some(NO_SERVER));
        assert_eq!(cli_socket.read(&mut [0; 1]).ok(), Some(0), "the CLI's too");
        // Once connected, at once.
        registration.connected(server, socket.as_fd(), server.kill.firings());
        assert_eq!(registration.killed(server), Some(Killed::Admin));
        assert_shut_down(&mut client, &mut socket);
        drop((registration, cli));
    }

    #[test]
    fn a_disconnected_session_is_no_longer_its_servers() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let [(client, _pc), (mut socket, _ps)] = [(); 2].map(|()| pair(&listener));
        let mut registration = Registration::accepted(client.as_fd(), 0, stream());
        registration.connected(server, socket.as_fd(), server.kill.firings());
        assert_eq!(registered(server), 1);
        registration.disconnected();
        assert_eq!(registered(server), 0);
        server.kill.fire(Killed::Down);
        socket
            .write_all(b"x")
            .expect("not shut down after its disconnection");
        drop(registration);
    }

    #[tokio::test]
    async fn a_wait_begun_after_a_kill_ends_at_once() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (stream, _peer) = pair(&listener);
        let (attached, _registration) = Attached::to(server, stream.as_fd());
        server.kill.fire(Killed::Down);
        let waited = attached.unless_killed(std::future::pending::<()>()).await;
        assert_eq!(waited, Err(Killed::Down));
    }
}
