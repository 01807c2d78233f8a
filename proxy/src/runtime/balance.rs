//! Choosing a server: HAProxy's algorithms over the servers that may take a connection.
//!
//! Active servers are used while any is usable; otherwise the first usable backup (or all of
//! them with `option allbackups`). `roundrobin` is HAProxy's fast weighted round robin
//! ([`super::fwrr`]), server for server; `leastconn` HAProxy's tree of loads
//! ([`super::fwlc`]), ties included; `static-rr` turns over HAProxy's weighted map
//! (`lb_map`, the one the map-based hashes use, [`super::lbhash`]) and takes only a
//! server's initial weight or 0 at run time, as HAProxy's ([`static_weights`]). The
//! hashing algorithms (`source`, `uri`, `url_param`, `hdr`) pick exactly as HAProxy 2.6
//! does, in its map or on its ring
//! ([`super::lbhash`]), from a [`Key`] the caller takes from the connection or request,
//! whatever the servers' load: a client waits for a full server rather than go elsewhere.
//! Without a key (no such parameter or header) they take servers in turn from the same map
//! or ring, as HAProxy falls back.
//!
//! A server's changes (state, weight, address, `maxconn`) reach the balancer as they are
//! made ([`server_changed`], called by the server's setters once [`link`]ed), as HAProxy's
//! `srv_update_status` calls the algorithm's callbacks: `roundrobin`'s trees move at each
//! change, in the order of the changes, whether or not a connection comes in between.
//!
//! When every server is full a connection waits ([`pick_or_queue`] gives it a [`Ticket`]):
//! in its server's queue for a hash (refused at the server's `maxqueue`), else in the
//! backend's. Waiting is event-driven: a slot comes through the ticket, and a server's
//! change wakes the waiters ([`Ticket::recheck`]); a waiter of a server gone down or into
//! maintenance is balanced again only with `option redispatch`, as HAProxy's
//! `pendconn_redistribute` does. The queues are served as HAProxy's `pendconn`s: a
//! [`Slot`] given back goes at once, under the balancer's lock, to the oldest connection
//! waiting for that server, in its own queue or (when the server takes new connections) in
//! the backend's, as `process_srv_queue`: that server is handed to it, the balancer is not
//! asked again (its turn does not move, and the hand-off is no balancing decision counted
//! in `lbtot`). A server coming UP or out of maintenance takes the backend's waiters it has
//! room for, as `pendconn_grab_from_px`, and so does one whose `maxconn` grows (a slow
//! start's step, an agent); a server that only gets a weight back (out of drain, from
//! weight 0) takes them as its slots are freed, as in HAProxy. Under `roundrobin`,
//! `static-rr` and `first` a newcomer queues behind anyone waiting in the backend's queue,
//! even with a server idle (HAProxy's `assign_server` finds the backend full then); under
//! the other algorithms it takes any server with a free slot and no waiter of its own.
//! `leastconn` may also choose a full server whose `maxqueue` has room, and wait in that
//! server's queue, as HAProxy's `fwlc_get_next_server`. Only servers with a `maxconn` ever
//! have waiters, so a slot of a server without one is given back without the lock.
//! Each queue counts the connections that left it served, from which a waiting one knows
//! the position HAProxy logs (`%sq`, `%bq`).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, MutexGuard};

use tokio::sync::oneshot;

pub use super::lbhash::Key;
use super::lbhash::{self, Member};
use super::slowstart;
use super::state::{Backend, Server};
use crate::config::model::Balance;

/// Per-backend balancer memory.
#[derive(Debug)]
pub struct LbState {
    /// `roundrobin`'s trees, as HAProxy's.
    fwrr: super::fwrr::Fwrr,
    /// `leastconn`'s tree, as HAProxy's.
    fwlc: super::fwlc::Fwlc,
    /// Seeds `random`.
    turn: u64,
    /// The connections waiting: the backend's queue, then each server's (by index + 1).
    queues: Vec<VecDeque<Pending>>,
    /// Connections that left each queue served: HAProxy's `queue.idx`, from which the
    /// logged queue positions are derived.
    left_queue: Vec<u64>,
    /// Numbers the waiting connections in arrival order, across the queues.
    arrivals: u64,
    /// How many wait, in all the queues: a pick looks at no queue while none does.
    waiting: usize,
    /// The longest each queue was (`qmax` of the stats).
    longest: Vec<usize>,
    /// Connections that left each server's queue to be balanced again, since the server's
    /// last message about it going (see [`requeue_counts`]).
    requeued: Vec<usize>,
    /// The hashing algorithms' map or ring, rebuilt when the servers change.
    hash: lbhash::Table,
    /// The greatest common divisor of the configured weights (0: not computed yet).
    weights_gcd: u32,
    /// The servers a pick chooses among (indexes), kept from pick to pick so that a pick
    /// allocates nothing.
    free: Vec<usize>,
    /// Whether each server was usable when its last change was applied (see
    /// [`server_changed`]).
    usable: Vec<bool>,
}

impl LbState {
    pub fn new(servers: usize) -> Self {
        LbState {
            fwrr: super::fwrr::Fwrr::new(servers),
            fwlc: super::fwlc::Fwlc::new(servers),
            turn: 0x9E37_79B9_7F4A_7C15,
            queues: (0..=servers).map(|_| VecDeque::new()).collect(),
            left_queue: vec![0; servers + 1],
            arrivals: 0,
            waiting: 0,
            longest: vec![0; servers + 1],
            requeued: vec![0; servers + 1],
            hash: lbhash::Table::default(),
            weights_gcd: 0,
            free: Vec::with_capacity(servers),
            usable: vec![false; servers],
        }
    }

    fn has_waiters(&self) -> bool {
        self.waiting > 0
    }

    /// `look` at the [`candidates`], in the buffer kept for them.
    fn with_candidates<T>(&mut self, backend: &Backend, look: impl FnOnce(&[usize]) -> T) -> T {
        let mut free = std::mem::take(&mut self.free);
        candidates(backend, &mut free);
        let seen = look(&free);
        self.free = free;
        seen
    }

    fn push(&mut self, queue: usize, pending: Pending) {
        self.queues[queue].push_back(pending);
        self.waiting += 1;
        self.longest[queue] = self.longest[queue].max(self.queues[queue].len());
    }

    /// Where the connection numbered `arrival` is in `queue`: queues are in arrival order.
    fn find(&self, queue: usize, arrival: u64) -> Option<usize> {
        self.queues[queue]
            .binary_search_by_key(&arrival, |p| p.arrival)
            .ok()
    }

    fn pop(&mut self, queue: usize) -> Option<Pending> {
        let head = self.queues[queue].pop_front()?;
        self.waiting -= 1;
        Some(head)
    }

    /// Takes the connection numbered `arrival` out of `queue`, if it is still there.
    fn remove(&mut self, queue: usize, arrival: u64) -> Option<Pending> {
        let at = self.find(queue, arrival)?;
        let pending = self.queues[queue].remove(at)?;
        self.waiting -= 1;
        Some(pending)
    }
}

/// Each queue's current and longest length (`qcur`, `qmax`): the backend's, then each
/// server's (by index + 1).
pub fn queue_lengths(backend: &Backend) -> Vec<(usize, usize)> {
    let lb = lock(backend);
    lb.queues
        .iter()
        .zip(&lb.longest)
        .map(|(q, longest)| (q.len(), *longest))
        .collect()
}

/// Forgets how long `backend`'s queues were (`clear counters`, with or without `all`: HAProxy
/// zeroes each proxy's and server's `qmax` in both).
pub fn clear_longest_queues(backend: &Backend) {
    lock(backend).longest.fill(0);
}

/// For HAProxy's message about `server` gone (DOWN, maintenance): the connections its
/// queue sends to the balancer again (`option redispatch`, while another server may take
/// them; those that left already since the last such message included) and those left
/// waiting for it. Waiters leave lazily, each as it wakes up: counted here as HAProxy's
/// `pendconn_redistribute` counts them at once.
pub fn requeue_counts(backend: &Backend, server: &Server) -> (usize, usize) {
    let Some(i) = backend
        .servers
        .iter()
        .position(|s| std::ptr::eq(&**s, server))
    else {
        return (0, 0);
    };
    let mut lb = lock(backend);
    let queued = lb.queues[i + 1].len();
    let left = std::mem::take(&mut lb.requeued[i + 1]);
    let usable = lb.with_candidates(backend, |free| !free.is_empty());
    if backend.conf.options.redispatch && usable {
        (left + queued, 0)
    } else {
        (left, queued)
    }
}

/// The balancer's state, locked (a poisoned lock is taken as is: its state stays coherent).
fn lock(backend: &Backend) -> MutexGuard<'_, LbState> {
    backend.lb.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection waiting in a queue (HAProxy's `pendconn`), as the queue holds it.
#[derive(Debug)]
struct Pending {
    arrival: u64,
    /// How many had left the queue served when it joined.
    joined: u64,
    key: Key,
    /// Where its slot goes. The [`Ticket`] holding the other end leaves the queue, under
    /// the lock, before dropping it: a queued connection can always be given its slot.
    grant: oneshot::Sender<Granted>,
}

/// A slot given to a queued connection, and its position in the queue it left.
#[derive(Debug)]
pub struct Granted {
    slot: Slot,
    queue: usize,
    position: u64,
}

impl Granted {
    /// The slot, the position it was given at added to `positions`.
    pub fn take(self, positions: &mut QueuePositions) -> Slot {
        positions.add(self.queue, self.position);
        self.slot
    }
}

/// One connection slot of a server (its `maxconn`), held while the connection is (in HTTP,
/// while a request is in progress: an idle kept-alive connection holds none); given back on
/// drop, to the oldest waiting connection the server may take.
#[derive(Debug)]
pub struct Slot {
    /// How it counts on its server. One byte: a TCP session holds its slot for its life.
    held: Held,
    server: Arc<Server>,
    backend: Arc<Backend>,
    /// What the balancer was given to pick with: a redispatch picks with it again.
    key: Key,
}

/// How a [`Slot`] counts on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// In the server's `served`, and one of its sessions (`scur`).
    Session,
    /// In its `served` only, while a failed attempt waits to be retried
    /// ([`Slot::pause_session`]).
    Paused,
    /// Given back: counted nowhere.
    GivenBack,
}

impl Slot {
    /// `balanced`: the algorithm chose the server (counted in `lbtot`, as HAProxy counts
    /// its load-balancing decisions), rather than a connection kept to it.
    fn take(backend: &Arc<Backend>, server: &Arc<Server>, balanced: bool, key: Key) -> Slot {
        if balanced {
            server.lb_total.fetch_add(1, Relaxed);
            // HAProxy's TCP time means are over the balanced connections (`cum_lbconn`),
            // HTTP's over the requests.
            if backend.mode == crate::config::model::Mode::Tcp {
                backend.counters.count_balanced();
                server.counters.count_balanced();
            }
        }
        super::pool::count_server_slot(true);
        server.served.fetch_add(1, Relaxed);
        server.counters.count_open();
        server.counters.session_counted();
        Slot {
            held: Held::Session,
            server: server.clone(),
            backend: backend.clone(),
            key,
        }
    }

    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// The key the server was picked with.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Gives the slot back with the balancer's lock held already (no one is served here).
    fn give_back_locked(&mut self) {
        if self.give_back() {
            self.server.served.fetch_sub(1, Relaxed);
        }
    }

    /// Ends its count as a session of the server's, if it was one, and marks it given back;
    /// whether it was not given back already (its `served` is then the caller's to lower).
    fn give_back(&mut self) -> bool {
        match std::mem::replace(&mut self.held, Held::GivenBack) {
            Held::GivenBack => return false,
            Held::Session => self.server.counters.count_closed(),
            Held::Paused => {}
        }
        super::pool::count_server_slot(false);
        true
    }

    /// Its connection attempt failed: the slot is kept (the server's `maxconn` and
    /// `leastconn`'s load count it on), but no session of the server's until the next
    /// attempt ([`Slot::resume_session`]), as HAProxy's `cur_sess` drops on a connection
    /// error while `served` stays.
    pub fn pause_session(&mut self) {
        if self.held == Held::Session {
            self.held = Held::Paused;
            self.server.counters.count_closed();
        }
    }

    /// The next attempt on the same server begins: a session of the server's again (its
    /// `smax` follows, as HAProxy's `cur_sess_max` at each attempt).
    pub fn resume_session(&mut self) {
        if self.held == Held::Paused {
            self.held = Held::Session;
            self.server.counters.count_open();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.give_back() {
            return;
        }
        // Without a `maxconn` the server never had anyone wait for it: nothing to hand on,
        // and only `leastconn` follows the load.
        let leastconn = matches!(self.backend.balance, Balance::LeastConn);
        if self.server.maxconn().is_none() && !leastconn {
            self.server.served.fetch_sub(1, Relaxed);
            return;
        }
        // Given back under the lock that picks and queues: a connection that found the
        // server full is in a queue by now, and is served here.
        let backend = &self.backend;
        let mut lb = lock(backend);
        self.server.served.fetch_sub(1, Relaxed);
        if let Some(index) = index_of(backend, &self.server) {
            load_changed(backend, &mut lb, index);
            serve(backend, &mut lb, index);
        }
    }
}

/// What [`pick_or_queue`] got: a server's slot, or a place in a queue.
#[derive(Debug)]
pub enum Picked {
    Now(Slot),
    Queued(Ticket),
    /// The server it must wait for (a hash's, a kept one) has its `maxqueue` waiting
    /// already: refused, as HAProxy refuses it (503).
    Refused(Arc<Server>),
}

/// A connection's place in a queue. Dropping it leaves the queue (a slot given to it
/// meanwhile goes on to the next one).
#[derive(Debug)]
pub struct Ticket {
    backend: Arc<Backend>,
    /// 0: the backend's queue; i + 1: the queue of the backend's server i.
    queue: usize,
    arrival: u64,
    joined: u64,
    granted: oneshot::Receiver<Granted>,
    /// Left the queue already ([`Ticket::leave`], [`Ticket::recheck`]).
    left: bool,
}

/// What a waiting connection finds when a server changed ([`Ticket::recheck`]).
#[derive(Debug)]
pub enum Recheck {
    StillWaiting,
    Served(Slot),
    /// It left its server's queue: that server is not usable any more and `option
    /// redispatch` sends it to the balancer again (a redispatch, for the server left).
    ServerGone,
}

impl Ticket {
    /// The server whose own queue this is; None for the backend's.
    pub fn server(&self) -> Option<&Arc<Server>> {
        self.queue.checked_sub(1).map(|i| &self.backend.servers[i])
    }

    /// Waits for the slot a freed server gives this connection.
    pub async fn granted(&mut self) -> Option<Granted> {
        (&mut self.granted).await.ok()
    }

    /// Leaves the queue (`timeout queue`), its position added to `positions`: given up
    /// (None), unless a slot came meanwhile.
    pub fn leave(mut self, positions: &mut QueuePositions) -> Option<Slot> {
        let backend = self.backend.clone();
        let lb = lock(&backend);
        self.left = true;
        if lb.find(self.queue, self.arrival).is_none() {
            if let Ok(granted) = self.granted.try_recv() {
                return Some(granted.take(positions));
            }
        }
        self.give_up(lb, positions);
        None
    }

    /// After a server changed: whether this connection was served meanwhile (the change
    /// served the queues, see [`server_changed`]), or must leave its queue, where it can no
    /// longer be served.
    pub fn recheck(&mut self, positions: &mut QueuePositions) -> Recheck {
        let backend = self.backend.clone();
        let mut lb = lock(&backend);
        if lb.find(self.queue, self.arrival).is_none() {
            // Served just now (its slot waits in the channel).
            return match self.granted.try_recv() {
                Ok(granted) => {
                    self.left = true;
                    Recheck::Served(granted.take(positions))
                }
                Err(_) => Recheck::StillWaiting,
            };
        }
        // Its server is gone: as HAProxy's `pendconn_redistribute`, only `option redispatch`
        // sends it to the balancer again; otherwise it waits on in that server's queue until
        // `timeout queue`, or until the server, back, serves it. With no server usable at
        // all it waits on too.
        let usable = lb.with_candidates(&backend, |free| !free.is_empty());
        let redistributes = backend.conf.options.redispatch;
        if !usable || !redistributes || self.queue == 0 || backend.servers[self.queue - 1].usable()
        {
            return Recheck::StillWaiting;
        }
        lb.requeued[self.queue] += 1;
        self.give_up(lb, positions);
        Recheck::ServerGone
    }

    /// Leaves the queue unserved, at the position reached.
    fn give_up(&mut self, mut lb: MutexGuard<'_, LbState>, positions: &mut QueuePositions) {
        lb.remove(self.queue, self.arrival);
        self.left = true;
        positions.add(self.queue, lb.left_queue[self.queue] - self.joined + 1);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.left {
            lock(&self.backend).remove(self.queue, self.arrival);
        }
        // The receiver drops after the lock is released: a slot in it goes on from there.
    }
}

/// Positions in the queues a connection waited in, as HAProxy logs them (`%sq`, `%bq`):
/// in each, 1 plus the connections that left that queue while it waited; 0: never queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuePositions {
    pub server: u64,
    pub backend: u64,
}

impl QueuePositions {
    /// Adds a position in `queue` (0: the backend's, else a server's).
    fn add(&mut self, queue: usize, position: u64) {
        if queue == 0 {
            self.backend += position;
        } else {
            self.server += position;
        }
    }
}

/// Whether `backend`'s algorithm takes only a server's initial weight or 0 at run time
/// (HAProxy's algorithms without `BE_LB_PROP_DYN`: `static-rr` and the map-based hashes).
pub fn static_weights(backend: &Backend) -> bool {
    match backend.balance {
        Balance::StaticRr => true,
        ref b if b.hashes() => !backend.conf.hash_type.consistent,
        _ => false,
    }
}

/// The key of a connection from `src` for `backend`'s algorithm (`balance source`).
pub fn source_key(backend: &Backend, src: IpAddr) -> Key {
    Key::source(&backend.balance, backend.conf.hash_type, src)
}

/// The key of an HTTP request (its URI, headers, and for `balance url_param` the start of
/// a POST's body) from `src` for `backend`'s algorithm.
pub fn request_key<'h>(
    backend: &Backend,
    src: IpAddr,
    uri: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    body: Option<&[u8]>,
) -> Key {
    Key::request(
        &backend.balance,
        backend.conf.hash_type,
        src,
        uri,
        headers,
        body,
    )
}

/// Whether a request's server waits for its body, as HAProxy's `http_process_request`
/// holds a POST to a `balance url_param` backend until its body came (or filled the
/// buffer) for `get_server_ph_post`, with or without `check_post` (2.6 takes and ignores
/// it).
pub fn waits_for_body(backend: &Backend, method: &str) -> bool {
    matches!(backend.balance, Balance::UrlParam(_)) && method == "POST"
}

/// The key of `balance hash EXPR` in `ctx` (None: another algorithm): the expression's
/// last value cast to binary, hashed as `get_server_expr` does; no value, no key.
pub fn expr_key(backend: &Backend, ctx: &super::sample::Context<'_>) -> Option<Key> {
    let Balance::Hash(expr, _) = &backend.balance else {
        return None;
    };
    let value = super::sample::fetch_last(expr, ctx).map(super::convert::to_binary);
    Some(Key::of_bytes(backend.conf.hash_type, value.as_deref()))
}

/// The key of a TCP-mode connection for `backend`'s algorithm, `ctx` holding what the
/// client sent first (its `payload`), as HAProxy's `assign_server` sees it once the
/// content rules are done: `rdp-cookie` rewinds the request buffer and reads the cookie in
/// it, while `hash EXPR` reads the buffer as it is then, its content forwarded already (not
/// sent yet): the layer-6 fetches find it empty (`req.payload(0,N)` and `req.rdp_cookie`
/// find nothing and the server is taken in turn, `req.payload(0,0)` is the empty string),
/// while the HTTP fetches parse the whole buffer as a request head (`req.hdr(host)`,
/// `path`), as HAProxy's `smp_prefetch_htx` does for a TCP stream. Use a `stick` rule to
/// keep a client on a server by what it sent.
pub fn connection_key(backend: &Backend, ctx: &super::sample::Context<'_>) -> Key {
    let ht = backend.conf.hash_type;
    match &backend.balance {
        Balance::RdpCookie(name) => {
            let data = ctx.payload.unwrap_or_default();
            let value = super::rdp::value(data, name).map(|range| &data[range]);
            Key::of_bytes(ht, value)
        }
        Balance::Hash(fetch, _) => {
            let data = ctx.payload.unwrap_or_default();
            let needs_head = fetch.layer() == crate::config::acl::Layer::Request;
            let head = needs_head
                .then(|| super::http::find_head_end(data))
                .flatten()
                .and_then(|end| super::http::parse_head(&data[..end], true).ok());
            let forwarded = super::sample::Context {
                payload: Some(&[]),
                partial: false,
                request: head.as_ref(),
                ..*ctx
            };
            expr_key(backend, &forwarded).unwrap_or(Key::Missing)
        }
        _ => source_key(backend, ctx.src.ip()),
    }
}

/// Picks a server for a client with `key` (see [`source_key`], [`request_key`]), avoiding
/// `avoid` when another one is usable, and takes one of its slots in the same step (no
/// other pick sees the server free in between, so its `maxconn` holds); when every server
/// is full, queues the connection. None: no server is usable (down, in maintenance,
/// draining or without an address).
pub fn pick_or_queue(
    backend: &Arc<Backend>,
    key: Key,
    avoid: Option<&Arc<Server>>,
) -> Option<Picked> {
    // A `disabled` backend, reached by its name, has no server (HAProxy sets none up).
    if backend.conf.disabled {
        return None;
    }
    let mut lb = lock(backend);
    let queue = match choose(backend, &mut lb, key, avoid) {
        Choice::Free(server) => {
            let slot = Slot::take(backend, &server, true, key);
            if matches!(backend.balance, Balance::LeastConn) {
                if let Some(index) = index_of(backend, &server) {
                    load_changed(backend, &mut lb, index);
                }
            }
            return Some(Picked::Now(slot));
        }
        Choice::NoneUsable => return None,
        Choice::Full { queue } => queue,
    };
    // A hash chose a full server, to wait for: a balancing decision already, as HAProxy's
    // `assign_server` counts it (the slot, when it comes, is not counted again).
    if let Some(server) = queue.checked_sub(1).map(|i| &backend.servers[i]) {
        server.lb_total.fetch_add(1, Relaxed);
    }
    if let Some(server) = queue_is_full(backend, &lb, queue) {
        return Some(Picked::Refused(server));
    }
    Some(Picked::Queued(enqueue(backend, &mut lb, queue, key)))
}

/// A slot of `server` for another request on a connection kept to it, taken in the same
/// step as [`pick_or_queue`] takes one; when the server is full, a place at the end of its
/// own queue, behind every request already waiting for it. None: the balancer sends it no
/// requests now (not usable, drained, a backup while an active server is up), unless
/// `direct`: a persistence cookie named it, which takes it whatever the balancer thinks of
/// it, as HAProxy's `SF_DIRECT`. A server without a `maxconn` gives its slot at once,
/// without the lock, as it always may. `key` is the request's (see [`pick_or_queue`]): a
/// redispatch, or a waiter whose server went away, is balanced with it, as HAProxy's
/// `assign_server` hashes the request once `SF_DIRECT` is cleared.
pub fn take_or_queue(
    backend: &Arc<Backend>,
    server: &Arc<Server>,
    direct: bool,
    key: Key,
) -> Option<Picked> {
    let leastconn = matches!(backend.balance, Balance::LeastConn);
    if server.maxconn().is_none() && !leastconn {
        return Some(Picked::Now(Slot::take(backend, server, false, key)));
    }
    if server.maxconn().is_none() {
        let slot = Slot::take(backend, server, false, key);
        if let Some(index) = index_of(backend, server) {
            load_changed(backend, &mut lock(backend), index);
        }
        return Some(Picked::Now(slot));
    }
    let mut lb = lock(backend);
    let balanced = lb.with_candidates(backend, |free| {
        free.iter()
            .any(|&i| Arc::ptr_eq(&backend.servers[i], server))
    });
    if !balanced && !direct {
        return None;
    }
    let index = backend
        .servers
        .iter()
        .position(|s| Arc::ptr_eq(s, server))?;
    // Behind those already waiting for it, as HAProxy's `assign_server_and_queue`.
    if may_take(backend, &lb, index) {
        let slot = Slot::take(backend, server, false, key);
        load_changed(backend, &mut lb, index);
        return Some(Picked::Now(slot));
    }
    if queue_is_full(backend, &lb, index + 1).is_some() {
        return Some(Picked::Refused(server.clone()));
    }
    Some(Picked::Queued(enqueue(backend, &mut lb, index + 1, key)))
}

/// The server of `queue` (a server's own) when it has its `maxqueue` waiting already.
fn queue_is_full(backend: &Backend, lb: &LbState, queue: usize) -> Option<Arc<Server>> {
    let server = backend.servers.get(queue.checked_sub(1)?)?;
    let max = server.opts.maxqueue?;
    (lb.queues[queue].len() >= max).then(|| server.clone())
}

/// Puts a connection at the end of `queue`.
fn enqueue(backend: &Arc<Backend>, lb: &mut LbState, queue: usize, key: Key) -> Ticket {
    let (grant, granted) = oneshot::channel();
    let arrival = lb.arrivals;
    lb.arrivals += 1;
    let joined = lb.left_queue[queue];
    lb.push(
        queue,
        Pending {
            arrival,
            joined,
            key,
            grant,
        },
    );
    Ticket {
        backend: backend.clone(),
        queue,
        arrival,
        joined,
        granted,
        left: false,
    }
}

/// What the algorithm chose for a connection.
enum Choice {
    Free(Arc<Server>),
    /// Every server it may use is full: it waits in this queue (0: the backend's, i + 1:
    /// server i's).
    Full {
        queue: usize,
    },
    NoneUsable,
}

fn choose(backend: &Backend, lb: &mut LbState, key: Key, avoid: Option<&Arc<Server>>) -> Choice {
    if backend.balance.hashes() {
        return choose_hashed(backend, lb, key, avoid);
    }
    // HAProxy's `assign_server`: with these algorithms, anyone in the backend's queue
    // (while not every backend connection is queued) means every server is full.
    let waiting = lb.queues[0].len();
    if waiting > 0
        && waiting != backend.counters.cur.load(Relaxed)
        && matches!(
            backend.balance,
            Balance::RoundRobin | Balance::StaticRr | Balance::First
        )
    {
        return Choice::Full { queue: 0 };
    }
    match backend.balance {
        Balance::RoundRobin => return choose_fwrr(backend, lb, avoid),
        Balance::StaticRr => return choose_map_rr(backend, lb, avoid),
        Balance::LeastConn => return choose_fwlc(backend, lb, avoid),
        _ => {}
    }
    // Into the buffer kept for it: a pick is made for every HTTP request.
    let mut free = std::mem::take(&mut lb.free);
    candidates(backend, &mut free);
    if let Some(avoid) = avoid.filter(|_| free.len() > 1) {
        free.retain(|&i| !Arc::ptr_eq(&backend.servers[i], avoid));
    }
    let usable = free.len();
    free.retain(|&i| may_take(backend, lb, i));
    let choice = match backend.balance {
        _ if usable == 0 => Choice::NoneUsable,
        _ if free.is_empty() => Choice::Full { queue: 0 },
        Balance::First => Choice::Free(backend.servers[free[0]].clone()),
        Balance::Random(draws) => Choice::Free(random_draws(backend, lb, &free, draws)),
        // Sent to `choose_fwrr`, `choose_map_rr`, `choose_fwlc` and `choose_hashed` above.
        Balance::RoundRobin
        | Balance::LeastConn
        | Balance::StaticRr
        | Balance::Source
        | Balance::Uri(_)
        | Balance::UrlParam(_)
        | Balance::Hdr { .. }
        | Balance::Hash(..)
        | Balance::RdpCookie(_) => Choice::Free(backend.servers[free[0]].clone()),
    };
    lb.free = free;
    choice
}

/// `roundrobin`'s pick, as HAProxy's `fwrr_get_next_server`: servers with a `maxconn` and
/// waiters or no free slot are skipped in turn; `avoid` is taken only when nothing else is.
fn choose_fwrr(backend: &Backend, lb: &mut LbState, avoid: Option<&Arc<Server>>) -> Choice {
    let live = backend.servers.iter().map(|s| live(backend, s));
    lb.fwrr.sync(backend.conf.options.allbackups, live);
    let avoid = avoid.and_then(|a| backend.servers.iter().position(|s| Arc::ptr_eq(s, a)));
    let LbState { fwrr, queues, .. } = lb;
    let can_take = |i: usize| backend.servers[i].has_free_slot() && queues[i + 1].is_empty();
    match fwrr.next(avoid, can_take) {
        Some(i) if can_take(i) => Choice::Free(backend.servers[i].clone()),
        // Only the first backup alone (HAProxy's `fbck`) comes whatever its load: a full one
        // is waited for in its own queue (refused past its `maxqueue`), as HAProxy's
        // `assign_server_and_queue` does with the server `fwrr_get_next_server` returned.
        Some(i) => Choice::Full { queue: i + 1 },
        None if fwrr.any_usable() => Choice::Full { queue: 0 },
        None => Choice::NoneUsable,
    }
}

/// `leastconn`'s pick, as HAProxy's `fwlc_get_next_server`: the least loaded of the servers
/// in use that is not saturated, in the tree's order ([`super::fwlc`]); `avoid` only when
/// no other may. Saturated means its `maxqueue` is full too, so a full server with room in
/// its queue may be chosen: the connection then waits in that server's queue.
fn choose_fwlc(backend: &Backend, lb: &mut LbState, avoid: Option<&Arc<Server>>) -> Choice {
    let avoid = avoid.and_then(|a| index_of(backend, a));
    let LbState { fwlc, queues, .. } = lb;
    let not_saturated = |i: usize| {
        let s = &backend.servers[i];
        s.maxconn().is_none_or(|m| {
            s.served.load(Relaxed) + queues[i + 1].len()
                < slowstart::maxconn(s, m) + s.opts.maxqueue.unwrap_or(0)
        })
    };
    match fwlc.next(backend.conf.options.allbackups, avoid, not_saturated) {
        super::fwlc::Next::NoneUsable => Choice::NoneUsable,
        super::fwlc::Next::Saturated => Choice::Full { queue: 0 },
        super::fwlc::Next::Server(i) if !may_take(backend, lb, i) => Choice::Full { queue: i + 1 },
        super::fwlc::Next::Server(i) => Choice::Free(backend.servers[i].clone()),
    }
}

/// `static-rr`'s pick, as HAProxy's `map_get_server_rr`: the next server of the weighted
/// map (`recalc_server_map`, shared with the map-based hashes) that may take a connection.
fn choose_map_rr(backend: &Backend, lb: &mut LbState, avoid: Option<&Arc<Server>>) -> Choice {
    refresh_hash_table(backend, lb);
    if lb.hash.used == 0 {
        return Choice::NoneUsable;
    }
    let avoid = avoid.and_then(|a| backend.servers.iter().position(|s| Arc::ptr_eq(s, a)));
    let LbState { hash, queues, .. } = lb;
    let can_take = |i: usize| backend.servers[i].has_free_slot() && queues[i + 1].is_empty();
    match hash.next(avoid, can_take) {
        Some(i) => Choice::Free(backend.servers[i].clone()),
        None => Choice::Full { queue: 0 },
    }
}

/// A hashing algorithm's pick, as HAProxy's `assign_server`: the server of the hash
/// whatever its load (a full one is waited for, in its queue; `avoid` is skipped on the
/// consistent-hash ring only); without a key, the next server in turn that has a free slot
/// (none: the backend's queue). With one server in use nothing is hashed (hash 0), except
/// by `url_param`, as in `get_server_sh`, `get_server_uh` and `get_server_hh`.
fn choose_hashed(
    backend: &Backend,
    lb: &mut LbState,
    key: Key,
    avoid: Option<&Arc<Server>>,
) -> Choice {
    refresh_hash_table(backend, lb);
    let LbState { hash, queues, .. } = lb;
    if hash.used == 0 {
        return Choice::NoneUsable;
    }
    let avoid = avoid.and_then(|a| backend.servers.iter().position(|s| Arc::ptr_eq(s, a)));
    // `url_param` and `rdp-cookie` look for their key first: without it, they take
    // servers in turn even then.
    let keyed_first = matches!(
        backend.balance,
        Balance::UrlParam(_) | Balance::RdpCookie(_)
    );
    let unhashed = hash.used == 1 && !keyed_first;
    let hashed = match key {
        _ if unhashed => Some(0),
        Key::Hash(h) => Some(h),
        Key::Missing | Key::Unused => None,
    };
    if let Some(h) = hashed {
        // `hash-balance-factor`: servers over their share of the load are walked past.
        let factor = backend.conf.hash_balance_factor;
        let served = |s: &Server| s.served.load(Relaxed) as u64;
        let total: u64 = match factor {
            0 => 0,
            _ => backend.servers.iter().map(|s| served(s)).sum(),
        };
        let eligible = |i: usize| {
            factor == 0 || hash.within_bound(i, factor, total, served(&backend.servers[i]))
        };
        let Some(i) = hash.by_hash(h, avoid, eligible) else {
            return Choice::NoneUsable;
        };
        let server = &backend.servers[i];
        if !server.has_free_slot() {
            return Choice::Full { queue: i + 1 };
        }
        return Choice::Free(server.clone());
    }
    // `srv->maxconn && (queue or served >= maxconn)` skips a server.
    let can_take = |i: usize| backend.servers[i].has_free_slot() && queues[i + 1].is_empty();
    match hash.next(avoid, can_take) {
        Some(i) => Choice::Free(backend.servers[i].clone()),
        None => Choice::Full { queue: 0 },
    }
}

/// Rebuilds the hash map or ring when a server's usability or weight changed since it was
/// built (compared in place: no allocation while nothing changed).
fn refresh_hash_table(backend: &Backend, lb: &mut LbState) {
    let mut ht = backend.conf.hash_type;
    // `static-rr` always uses the map, whatever `hash-type` says.
    ht.consistent &= !matches!(backend.balance, Balance::StaticRr);
    if lb.weights_gcd == 0 {
        lb.weights_gcd = lbhash::weights_gcd(backend.conf.servers.iter().map(|s| s.opts.weight));
    }
    let gcd = lb.weights_gcd;
    let members = || {
        backend
            .servers
            .iter()
            .enumerate()
            .map(move |(index, s)| Member {
                index,
                puid: s.id as u32,
                backup: s.opts.backup,
                weight: if s.usable() {
                    lbhash::effective_weight(ht, s.lb_weight(), gcd)
                } else {
                    0
                },
            })
    };
    if lb.hash.is_stale(members()) {
        lb.hash
            .rebuild(members().collect(), ht, backend.conf.options.allbackups);
    }
}

/// The index of `server` in `backend`: the one it was [`link`]ed with (no search: read
/// for each connection), else found.
fn index_of(backend: &Backend, server: &Arc<Server>) -> Option<usize> {
    let linked = server.index().filter(|&i| {
        backend
            .servers
            .get(i)
            .is_some_and(|s| Arc::ptr_eq(s, server))
    });
    linked.or_else(|| backend.servers.iter().position(|s| Arc::ptr_eq(s, server)))
}

/// The connections server `index` serves and those waiting in its own queue (HAProxy's
/// `served + queue.length`, by which `leastconn` ranks it).
fn inflight(lb: &LbState, server: &Server, index: usize) -> usize {
    server.served.load(Relaxed) + lb.queues[index + 1].len()
}

/// After a connection started or ended on server `index`: `leastconn` moves it in its tree
/// when its load changed (HAProxy's `server_take_conn` and `server_drop_conn`).
fn load_changed(backend: &Backend, lb: &mut LbState, index: usize) {
    if matches!(backend.balance, Balance::LeastConn) {
        let inflight = inflight(lb, &backend.servers[index], index);
        lb.fwlc.reposition(index, inflight);
    }
}

/// Whether server `index` may take a connection now: a free slot and no connection
/// waiting for it in its own queue (HAProxy's `srv->maxconn && (srv->queue.length ||
/// srv->served >= maxconn)` skips it).
fn may_take(backend: &Backend, lb: &LbState, index: usize) -> bool {
    backend.servers[index].has_free_slot() && lb.queues[index + 1].is_empty()
}

/// The state `roundrobin` balances by: whether the server is a backup, whether it is
/// usable and its effective weight.
fn live(backend: &Backend, server: &Server) -> (bool, super::fwrr::Live) {
    let up = server.usable();
    let eweight = if up {
        slowstart::lb_eweight(backend, server)
    } else {
        0
    };
    (server.opts.backup, super::fwrr::Live { up, eweight })
}

/// Links `backend`'s servers to its balancer, so that each change of theirs is applied as
/// it is made ([`server_changed`]), and builds `roundrobin`'s trees from the servers'
/// states now, as HAProxy builds them at start-up.
pub fn link(backend: &Arc<Backend>) {
    for (index, server) in backend.servers.iter().enumerate() {
        server.link_balancer(Arc::downgrade(backend), index);
    }
    let mut lb = lock(backend);
    for (index, server) in backend.servers.iter().enumerate() {
        lb.usable[index] = server.usable();
    }
    match backend.balance {
        Balance::RoundRobin => {
            let live = backend.servers.iter().map(|s| live(backend, s));
            lb.fwrr.sync(backend.conf.options.allbackups, live);
        }
        // Into the tree in the servers' order, as HAProxy's `fwlc_init_server_tree`.
        Balance::LeastConn => {
            for (index, server) in backend.servers.iter().enumerate() {
                let (_, now) = live(backend, server);
                let inflight = inflight(&lb, server, index);
                lb.fwlc
                    .update(index, server.opts.backup, now.eweight, inflight);
            }
        }
        _ => {}
    }
}

/// Applies a change of server `index` (its state, weight, address or `maxconn`) the moment
/// it is made, as HAProxy's `srv_update_status`: `roundrobin`'s trees take it
/// (`fwrr_update_server_weight`); a server come UP or out of maintenance takes the waiting
/// connections it has room for (`pendconn_grab_from_px`), and so does one whose slots were
/// opened (`slots_opened`: a higher `maxconn`, a slow start's step).
pub fn server_changed(backend: &Arc<Backend>, index: usize, slots_opened: bool) {
    let Some(server) = backend.servers.get(index) else {
        return;
    };
    let mut lb = lock(backend);
    let (backup, now) = live(backend, server);
    match backend.balance {
        Balance::RoundRobin => lb.fwrr.update(index, backup, now),
        Balance::LeastConn => {
            let inflight = inflight(&lb, server, index);
            lb.fwlc.update(index, backup, now.eweight, inflight);
        }
        _ => {}
    }
    let was_usable = std::mem::replace(&mut lb.usable[index], now.up);
    let came_up = now.up && !was_usable;
    if came_up || slots_opened {
        serve(backend, &mut lb, index);
    }
}

/// Gives server `index`'s free slots to the connections waiting for it, as HAProxy's
/// `process_srv_queue`: each to the older of its own queue's head and, while the server
/// takes new connections (the balancer may choose it now), the backend queue's head,
/// whatever server that one failed on before. The server is handed to it: the balancer is
/// not asked (its turn stays), and nothing is counted in `lbtot`.
fn serve(backend: &Arc<Backend>, lb: &mut LbState, index: usize) {
    if !lb.has_waiters() {
        return;
    }
    let server = &backend.servers[index];
    let takes_new = lb.with_candidates(backend, |free| free.contains(&index));
    while server.has_free_slot() {
        let own = lb.queues[index + 1].front().map(|p| p.arrival);
        let shared = lb.queues[0]
            .front()
            .filter(|_| takes_new)
            .map(|p| p.arrival);
        let queue = match (own, shared) {
            (Some(own), Some(shared)) if shared < own => 0,
            (Some(_), _) => index + 1,
            (None, Some(_)) => 0,
            (None, None) => return,
        };
        let Some(pending) = lb.pop(queue) else {
            return;
        };
        let position = lb.left_queue[queue] - pending.joined + 1;
        lb.left_queue[queue] += 1;
        let slot = Slot::take(backend, server, false, pending.key);
        load_changed(backend, lb, index);
        let granted = Granted {
            slot,
            queue,
            position,
        };
        if let Err(mut refused) = pending.grant.send(granted) {
            // Cannot happen (a ticket leaves its queue before dropping its receiver); were
            // it to, the slot is given back here without the lock being taken again.
            refused.slot.give_back_locked();
        }
    }
}

/// Whether the retry after `failures` failed attempts redispatches (`option redispatch`),
/// as HAProxy 2.6 decides: the server is not usable; or the interval says so (every Nth
/// failure with N > 0; with N < 0, every (retries + 1 + N)th, by default -1: the last
/// retry); or, whatever the interval, the algorithm does not hash, more than one active
/// server may take the connection (any of them will do, so none is waited for) and no
/// cookie, stick entry or rule named the server ([`Direct::Named`]). Never after
/// `force-persist`.
pub fn redispatches(backend: &Backend, server: &Server, failures: u32, direct: Direct) -> bool {
    let conf = &backend.conf;
    if !conf.options.redispatch || direct == Direct::Forced {
        return false;
    }
    let failures = i64::from(failures);
    let every = match i64::from(conf.options.redispatch_after) {
        n if n < 0 => i64::from(conf.retries) + 1 + n,
        n => n,
    };
    // HAProxy divides by zero there (and crashes): never, here.
    let by_interval = every != 0 && failures % every == 0;
    let several = || {
        let active = backend
            .servers
            .iter()
            .filter(|s| !s.opts.backup && s.usable() && s.lb_weight() > 0);
        active.count() > 1
    };
    let named = direct == Direct::Named;
    !server.usable() || by_interval || (!named && !backend.balance.hashes() && several())
}

/// How a connection came to its server, as far as redispatching goes (HAProxy's
/// `SF_DIRECT` and `SF_FORCE_PRST`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direct {
    /// The balancer chose it (or a redispatch did).
    #[default]
    No,
    /// A persistence cookie, a stick entry or a `use-server` rule named it: retried before
    /// any redispatch, however many servers could take it.
    Named,
    /// `force-persist` matched: the connection never leaves its server.
    Forced,
}

impl Direct {
    /// For a connection that got a slot of `given`: `named` is the server a cookie, stick
    /// entry or rule named, `forced` whether `force-persist` matched.
    pub fn of(named: Option<&Arc<Server>>, forced: bool, given: &Arc<Server>) -> Direct {
        if forced {
            Direct::Forced
        } else if named.is_some_and(|n| Arc::ptr_eq(n, given)) {
            Direct::Named
        } else {
            Direct::No
        }
    }
}

/// Fills `free` with the usable servers with a weight (indexes): the actives if any, else
/// the first backup (all of them with `option allbackups`). Each server's state is read
/// once, and nothing allocated once `free` has room for every server.
fn candidates(backend: &Backend, free: &mut Vec<usize>) {
    free.clear();
    let mut actives = false;
    for (i, s) in backend.servers.iter().enumerate() {
        if s.usable() && s.lb_weight() > 0 {
            actives |= !s.opts.backup;
            free.push(i);
        }
    }
    if actives {
        free.retain(|&i| !backend.servers[i].opts.backup);
    } else if !backend.conf.options.allbackups {
        free.truncate(1);
    }
}

/// A server's connections per effective weight (16 per unit of weight, less in slow
/// start), to compare loads. The weight may have dropped to 0 (set to 0, drained, put in
/// maintenance) since [`candidates`] read it: it then counts as 1, which only ranks the
/// server as heavily loaded.
fn load(backend: &Backend, s: &Server) -> u64 {
    let eweight = slowstart::lb_eweight(backend, s).max(1);
    (s.served.load(Relaxed) as u64 + 1) * 4096 / u64::from(eweight)
}

/// The next number of a xorshift64 sequence kept in `state` (never 0): cheap randomness for
/// balancing and check jitter, where predictability does no harm.
pub(super) fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The least loaded (connections per weight) of `draws` servers drawn at random by weight.
fn random_draws(backend: &Backend, lb: &mut LbState, free: &[usize], draws: u32) -> Arc<Server> {
    (0..draws.max(1))
        .map(|_| by_weight(backend, free, next_random(&mut lb.turn)))
        .min_by_key(|s| load(backend, s))
        .unwrap_or(&backend.servers[free[0]])
        .clone()
}

fn by_weight<'a>(backend: &'a Backend, free: &[usize], hash: u64) -> &'a Arc<Server> {
    let weight = |i: usize| u64::from(slowstart::lb_eweight(backend, &backend.servers[i]));
    let total: u64 = free.iter().map(|&i| weight(i)).sum();
    let mut point = hash % total.max(1);
    for &i in free {
        let w = weight(i);
        if point < w {
            return &backend.servers[i];
        }
        point -= w;
    }
    &backend.servers[free[0]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Proxy, ProxyKind, Server as ServerConf, ServerOptions};

    /// A backend of servers `s0`, `s1`... with these options.
    fn backend_of(balance: Balance, servers: impl Iterator<Item = ServerOptions>) -> Backend {
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Default::default());
        p.balance = balance;
        for (i, opts) in servers.enumerate() {
            p.servers.push(ServerConf {
                name: format!("s{i}"),
                host: "127.0.0.1".into(),
                port: Some(1),
                opts,
                place: Default::default(),
                id: i + 1,
                addr: Some([127, 0, 0, 1].into()),
            });
        }
        Backend::new(1, &p)
    }

    fn backend(balance: Balance, weights: &[(u32, bool)]) -> Backend {
        let servers = weights.iter().map(|&(weight, backup)| ServerOptions {
            weight,
            backup,
            ..Default::default()
        });
        backend_of(balance, servers)
    }

    fn pick1(b: &Backend, src: IpAddr, avoid: Option<&Arc<Server>>) -> Arc<Server> {
        match choose(b, &mut lock(b), source_key(b, src), avoid) {
            Choice::Free(s) => s,
            _ => panic!("no free server"),
        }
    }

    fn counts(b: &Backend, n: usize) -> Vec<usize> {
        let mut c = vec![0; b.servers.len()];
        for i in 0..n {
            let src = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            let s = pick1(b, src, None);
            c[s.id - 1] += 1;
        }
        c
    }

    /// (retries, interval) -> which of the failures redispatch, on one server.
    fn redispatching(retries: u32, interval: Option<i32>) -> Vec<u32> {
        let mut b = backend(Balance::Source, &[(1, false), (1, false)]);
        b.conf.retries = retries;
        b.conf.options.redispatch = interval.is_some();
        b.conf.options.redispatch_after = interval.unwrap_or(0);
        (1..=retries)
            .filter(|&f| redispatches(&b, &b.servers[0], f, Direct::No))
            .collect()
    }

    #[test]
    fn redispatch_intervals_are_haproxys() {
        assert_eq!(redispatching(6, None), Vec::<u32>::new());
        // The default: the last retry.
        assert_eq!(redispatching(6, Some(-1)), [6]);
        assert_eq!(redispatching(6, Some(1)), [1, 2, 3, 4, 5, 6]);
        assert_eq!(redispatching(6, Some(2)), [2, 4, 6]);
        assert_eq!(redispatching(6, Some(4)), [4]);
        // -2: every (6 + 1 - 2)th failure.
        assert_eq!(redispatching(6, Some(-2)), [5]);
        assert_eq!(redispatching(6, Some(0)), Vec::<u32>::new());
        // Where HAProxy would divide by zero.
        assert_eq!(redispatching(6, Some(-7)), Vec::<u32>::new());
    }

    #[test]
    fn redispatch_from_a_down_server_or_among_several_whatever_the_interval() {
        let mut b = backend(Balance::Source, &[(1, false), (1, false)]);
        b.conf.options.redispatch = true;
        b.conf.options.redispatch_after = 0;
        b.conf.retries = 3;
        assert!(!redispatches(&b, &b.servers[0], 1, Direct::No));
        b.servers[0].set_up(false);
        assert!(redispatches(&b, &b.servers[0], 1, Direct::No));
        assert!(!redispatches(&b, &b.servers[0], 1, Direct::Forced));
        let mut rr = backend(Balance::RoundRobin, &[(1, false), (1, false), (1, true)]);
        rr.conf.options.redispatch = true;
        rr.conf.options.redispatch_after = 0;
        assert!(redispatches(&rr, &rr.servers[0], 1, Direct::No));
        // A server a cookie named is retried first (HAProxy's `SF_DIRECT`).
        assert!(!redispatches(&rr, &rr.servers[0], 1, Direct::Named));
        // One active server left: only the interval (here none) would.
        rr.servers[1].set_up(false);
        assert!(!redispatches(&rr, &rr.servers[0], 1, Direct::No));
    }

    #[test]
    fn avoiding_a_server_keeps_the_rotation() {
        let b = backend(Balance::RoundRobin, &[(1, false), (1, false), (1, false)]);
        let mut prev = pick1(&b, IpAddr::from([192, 0, 2, 1]), None);
        let mut seen = vec![prev.id];
        for _ in 0..4 {
            prev = pick1(&b, IpAddr::from([192, 0, 2, 1]), Some(&prev));
            seen.push(prev.id);
        }
        assert_eq!(seen, [1, 2, 3, 1, 2]);
    }

    #[test]
    fn leastconn_takes_idle_servers_in_turn_and_moves_one_set_to_a_weight() {
        let b = Arc::new(backend(
            Balance::LeastConn,
            &[(3, false), (2, false), (1, false)],
        ));
        link(&b);
        let mut seen = Vec::new();
        for round in 0..6 {
            if round == 3 {
                // The same weight again: out of the tree and in, behind its equals.
                b.servers[0].set_weight(1);
                b.servers[0].set_weight(3);
            }
            seen.push(slot_now(&b).server().id);
        }
        assert_eq!(seen, [1, 2, 3, 2, 3, 1]);
        // Two held: the idle one first, then the least loaded per weight.
        let held = [slot_now(&b), slot_now(&b)];
        assert_eq!(held.map(|s| s.server().id), [2, 3]);
        assert_eq!(slot_now(&b).server().id, 1);
    }

    /// A backend whose servers (weight 1) have these `maxconn`s.
    fn limited(balance: Balance, maxconns: &[usize]) -> Arc<Backend> {
        let servers = maxconns.iter().map(|&maxconn| ServerOptions {
            weight: 1,
            maxconn: Some(maxconn),
            ..Default::default()
        });
        Arc::new(backend_of(balance, servers))
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn slot_now(b: &Arc<Backend>) -> Slot {
        match pick_or_queue(b, source_key(b, CLIENT), None) {
            Some(Picked::Now(slot)) => slot,
            other => panic!("{other:?}"),
        }
    }

    fn queued(b: &Arc<Backend>) -> Ticket {
        match pick_or_queue(b, source_key(b, CLIENT), None) {
            Some(Picked::Queued(ticket)) => ticket,
            other => panic!("{other:?}"),
        }
    }

    /// The slot given to a ticket, if one was, with its position added to `positions`.
    fn claim(t: &mut Ticket, positions: &mut QueuePositions) -> Option<Slot> {
        t.granted.try_recv().ok().map(|g| g.take(positions))
    }

    #[test]
    fn a_slot_waiting_to_retry_is_kept_but_counts_no_session() {
        let b = limited(Balance::RoundRobin, &[1]);
        let server = &b.servers[0];
        let mut slot = slot_now(&b);
        slot.pause_session();
        // HAProxy's `cur_sess` 0, `served` 1: the server stays full.
        assert_eq!(server.counters.cur.load(Relaxed), 0);
        assert_eq!(server.served.load(Relaxed), 1);
        let mut waiting = queued(&b);
        slot.resume_session();
        assert_eq!(server.counters.cur.load(Relaxed), 1);
        assert_eq!(server.counters.max.load(Relaxed), 1);
        slot.pause_session();
        drop(slot);
        // Given back paused: counted once, and handed on.
        let mut positions = QueuePositions::default();
        let next = claim(&mut waiting, &mut positions).expect("served once freed");
        assert_eq!(server.counters.cur.load(Relaxed), 1);
        assert_eq!(server.served.load(Relaxed), 1);
        drop(next);
        assert_eq!(server.counters.cur.load(Relaxed), 0);
        assert_eq!(server.served.load(Relaxed), 0);
    }

    #[test]
    fn freed_slots_go_to_the_waiting_in_arrival_order() {
        let b = limited(Balance::RoundRobin, &[1]);
        let mut held = slot_now(&b);
        let mut tickets: Vec<Ticket> = (0..3).map(|_| queued(&b)).collect();
        let mut positions = [QueuePositions::default(); 4];
        for i in 0..3 {
            drop(held);
            // The slot went to the oldest at once: a newcomer finds the server full.
            assert_eq!(b.servers[0].counters.cur.load(Relaxed), 1);
            let mut newcomer = queued(&b);
            assert!(claim(&mut newcomer, &mut positions[3]).is_none());
            held = claim(&mut tickets[i], &mut positions[i]).expect("served in order");
            assert!(
                tickets[i + 1..]
                    .iter_mut()
                    .all(|t| t.granted.try_recv().is_err())
            );
            drop(newcomer);
        }
        // 1 plus those served while each waited.
        assert_eq!(
            positions.map(|p| (p.server, p.backend)),
            [(0, 1), (0, 2), (0, 3), (0, 0)]
        );
    }

    #[test]
    fn a_waiting_connection_that_gives_up_passes_its_slot_on() {
        let b = limited(Balance::RoundRobin, &[1]);
        let held = slot_now(&b);
        let (t1, t2, mut t3) = (queued(&b), queued(&b), queued(&b));
        let mut positions = [QueuePositions::default(); 3];
        // `timeout queue`: first in line, no one served meanwhile.
        assert!(t1.leave(&mut positions[0]).is_none());
        drop(held);
        // The slot went to t2, whose client left before taking it: t3 gets it.
        drop(t2);
        let slot = claim(&mut t3, &mut positions[2]).expect("the next one served");
        assert_eq!(b.servers[0].counters.cur.load(Relaxed), 1);
        drop(slot);
        assert_eq!(b.servers[0].counters.cur.load(Relaxed), 0);
        assert_eq!(positions.map(|p| p.backend), [1, 0, 2]);
    }

    #[test]
    fn a_server_serves_the_older_of_its_queue_and_the_backends() {
        // A hash waits for its server, in that server's queue.
        let b = limited(Balance::Source, &[1]);
        let mut held = slot_now(&b);
        let mut own = queued(&b);
        assert_eq!(own.queue, 1);
        let mut shared = enqueue(&b, &mut lock(&b), 0, Key::Unused);
        let mut own_later = queued(&b);
        let mut positions = QueuePositions::default();
        for t in [&mut own, &mut shared, &mut own_later] {
            drop(held);
            held = claim(t, &mut positions).expect("the oldest first");
        }
        assert_eq!((positions.server, positions.backend), (1 + 2, 1));
    }

    fn kept(b: &Arc<Backend>, server: usize) -> Option<Picked> {
        take_or_queue(b, &b.servers[server], false, Key::Unused)
    }

    #[test]
    fn a_kept_request_carries_its_key_into_its_slot_and_queue_place() {
        // The key a redispatch is balanced with again: the request's, not the connection's.
        let b = limited(Balance::Uri(Default::default()), &[1]);
        let key = Key::Hash(0x1234_5678);
        let Some(Picked::Now(held)) = take_or_queue(&b, &b.servers[0], true, key) else {
            panic!("a free server takes it");
        };
        assert_eq!(held.key(), key);
        let Some(Picked::Queued(mut waiting)) = take_or_queue(&b, &b.servers[0], true, key) else {
            panic!("a full server queues");
        };
        drop(held);
        let mut positions = QueuePositions::default();
        let slot = claim(&mut waiting, &mut positions).expect("served when freed");
        assert_eq!(slot.key(), key);
    }

    #[test]
    fn a_kept_connection_waits_for_its_server_behind_those_queued_before() {
        let b = limited(Balance::RoundRobin, &[1]);
        let held = slot_now(&b);
        let mut earlier = queued(&b);
        let Some(Picked::Queued(mut later)) = kept(&b, 0) else {
            panic!("a full server queues");
        };
        assert_eq!(later.queue, 1);
        let mut positions = QueuePositions::default();
        drop(held);
        let slot = claim(&mut earlier, &mut positions).expect("the older first");
        assert!(claim(&mut later, &mut positions).is_none());
        drop(slot);
        assert!(claim(&mut later, &mut positions).is_some());
        // First in its own queue; the one before it waited in the backend's.
        assert_eq!((positions.server, positions.backend), (1, 1));
    }

    #[test]
    fn a_kept_connection_gets_no_slot_of_a_server_taking_no_requests() {
        let b = limited(Balance::RoundRobin, &[1, 1]);
        assert!(matches!(kept(&b, 1), Some(Picked::Now(_))));
        b.servers[1].set_up(false);
        assert!(kept(&b, 1).is_none());
        // Without a `maxconn`, a slot at once, whatever the load.
        let b = Arc::new(backend(Balance::RoundRobin, &[(1, false)]));
        let slots: Vec<Picked> = (0..3).filter_map(|_| kept(&b, 0)).collect();
        assert!(slots.iter().all(|p| matches!(p, Picked::Now(_))));
        assert_eq!(b.servers[0].counters.cur.load(Relaxed), 3);
    }

    #[test]
    fn a_backend_queue_head_takes_a_slot_of_the_server_it_failed_on() {
        let b = limited(Balance::RoundRobin, &[1, 1]);
        let (first, second) = (slot_now(&b), slot_now(&b));
        let failed_on = first.server().clone();
        let Some(Picked::Queued(mut head)) =
            pick_or_queue(&b, source_key(&b, CLIENT), Some(&failed_on))
        else {
            panic!("both servers are full");
        };
        let mut next = queued(&b);
        let mut positions = QueuePositions::default();
        drop(first);
        // As HAProxy's queue: whichever server frees a slot serves the head.
        let slot = claim(&mut head, &mut positions).expect("the head is served");
        assert!(Arc::ptr_eq(slot.server(), &failed_on));
        drop(second);
        assert!(claim(&mut next, &mut positions).is_some());
    }

    /// A hash's waiter whose server goes down: whether it leaves that server's queue.
    fn leaves_a_down_server(redispatch: bool) -> bool {
        let mut b = backend_of(
            Balance::Source,
            (0..2).map(|_| ServerOptions {
                maxconn: Some(1),
                ..Default::default()
            }),
        );
        b.conf.options.redispatch = redispatch;
        let b = Arc::new(b);
        let held = slot_now(&b);
        let mut waiting = queued(&b);
        assert!(
            waiting
                .server()
                .is_some_and(|s| Arc::ptr_eq(s, held.server()))
        );
        held.server().set_up(false);
        let mut positions = QueuePositions::default();
        matches!(waiting.recheck(&mut positions), Recheck::ServerGone)
    }

    #[test]
    fn a_waiter_leaves_a_down_servers_queue_only_with_redispatch() {
        assert!(leaves_a_down_server(true));
        assert!(!leaves_a_down_server(false));
    }

    #[test]
    fn maxqueue_refuses_what_a_full_server_queue_cannot_take() {
        let b = Arc::new(backend_of(
            Balance::Source,
            std::iter::once(ServerOptions {
                maxconn: Some(1),
                maxqueue: Some(1),
                ..Default::default()
            }),
        ));
        let _held = slot_now(&b);
        let _waiting = queued(&b);
        assert!(matches!(
            pick_or_queue(&b, source_key(&b, CLIENT), None),
            Some(Picked::Refused(_))
        ));
    }

    #[test]
    fn lbtot_counts_the_balancers_decisions_only() {
        let b = Arc::new(backend(Balance::RoundRobin, &[(1, false)]));
        let _picked = slot_now(&b);
        let _kept = kept(&b, 0);
        assert_eq!(b.servers[0].lb_total.load(Relaxed), 1);
        assert_eq!(b.servers[0].counters.cur.load(Relaxed), 2);
    }

    #[test]
    fn roundrobin_follows_weights() {
        let b = backend(Balance::RoundRobin, &[(1, false), (3, false), (1, true)]);
        assert_eq!(counts(&b, 400), [100, 300, 0]);
    }

    #[test]
    fn backups_take_over_when_actives_are_gone() {
        let b = backend(Balance::RoundRobin, &[(1, false), (1, true), (1, true)]);
        b.servers[0].set_up(false);
        assert_eq!(counts(&b, 10), [0, 10, 0]);
    }

    #[test]
    fn source_is_sticky_and_first_fills_in_order() {
        let b = backend(Balance::Source, &[(1, false), (1, false)]);
        let ip = IpAddr::from([192, 0, 2, 7]);
        let first = pick1(&b, ip, None).id;
        assert!((0..20).all(|_| pick1(&b, ip, None).id == first));
        let b = backend(Balance::First, &[(1, false), (1, false)]);
        assert_eq!(counts(&b, 5), [5, 0]);
    }

    #[test]
    fn random_draws_by_weight_and_keeps_the_least_loaded() {
        let b = backend(Balance::Random(1), &[(1, false), (3, false)]);
        let c = counts(&b, 4000);
        assert!((800..1200).contains(&c[0]) && c[0] + c[1] == 4000, "{c:?}");
        let b = backend(Balance::Random(8), &[(1, false), (1, false)]);
        b.servers[0].served.fetch_add(100, Relaxed);
        let c = counts(&b, 400);
        assert!(c[1] >= 390, "{c:?}");
    }

    #[test]
    fn a_weight_dropping_to_zero_after_the_candidates_were_chosen_is_no_panic() {
        let b = backend(Balance::Random(2), &[(1, false), (1, false)]);
        let mut free = Vec::new();
        candidates(&b, &mut free);
        b.servers[0].weight.store(0, Relaxed);
        let mut lb = b.lb.lock().unwrap();
        let _ = random_draws(&b, &mut lb, &free, 2);
        // Counted as an effective weight of 1 (a sixteenth of a weight of 1).
        assert_eq!(load(&b, &b.servers[0]), 4096);
    }
}
