//! Choosing a server: HAProxy's algorithms over the servers that may take a connection.
//!
//! Active servers are used while any is usable; otherwise the first usable backup (or all of
//! them with `option allbackups`). Weighted round robin is the smooth variant (each pick adds
//! every weight to its server's credit and takes the richest), which spreads a server's turns
//! evenly instead of in bursts; `static-rr` is the same here since weights change only by
//! operator command. `source` hashes over the usable servers whatever their load, as
//! HAProxy's map-based hash does: its client waits for a full server rather than go
//! elsewhere.
//!
//! When every server is full a connection waits: in its server's queue for a hash, else in
//! the backend's. Each queue counts the connections that left it, from which a waiting one
//! knows the position HAProxy logs (`%sq`, `%bq`): [`join_queue`], [`leave_queue`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::state::{Backend, Server};
use crate::config::model::Balance;

/// Per-backend balancer memory.
#[derive(Debug)]
pub struct LbState {
    /// Smooth round-robin credit per server (by index).
    credit: Vec<i64>,
    /// Seeds `random`.
    turn: u64,
    /// Rotates leastconn's ties, from the first server as HAProxy starts.
    ties: u64,
    /// Connections that left the backend's queue, then each server's (by index) for a
    /// server: HAProxy's `queue.idx`, from which the logged queue positions are derived.
    left_queue: Vec<u64>,
}

impl LbState {
    pub fn new(servers: usize) -> Self {
        LbState {
            credit: vec![0; servers],
            turn: 0x9E37_79B9_7F4A_7C15,
            ties: 0,
            left_queue: vec![0; servers + 1],
        }
    }
}

/// Positions in the queues a connection waited in, as HAProxy logs them (`%sq`, `%bq`):
/// in each, 1 plus the connections that left that queue while it waited; 0: never queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuePositions {
    pub server: u64,
    pub backend: u64,
}

/// A connection waiting for a server at its `maxconn`: which queue it is in (HAProxy's
/// `pendconn`) and how many had left that queue when it joined.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    /// 0: the backend's queue; i + 1: the queue of the backend's server i.
    queue: usize,
    joined: u64,
}

/// Joins the queue a client from `src` waits in when every server is full: as in HAProxy,
/// a hashing algorithm's client waits for its own server (which a hash picks whatever its
/// load), the others in the backend's queue.
pub fn join_queue(backend: &Backend, src: IpAddr) -> Waiting {
    let queue = match backend.balance {
        Balance::Source => {
            let all = candidates(backend, None);
            let chosen = (!all.is_empty()).then(|| by_hash(&all, hash_ip(src)));
            chosen
                .and_then(|c| backend.servers.iter().position(|s| Arc::ptr_eq(s, &c)))
                .map_or(0, |i| i + 1)
        }
        _ => 0,
    };
    let lb = backend.lb.lock().unwrap_or_else(|e| e.into_inner());
    Waiting {
        queue,
        joined: lb.left_queue[queue],
    }
}

/// Leaves the queue, served (`true`) or given up (`timeout queue`), adding the position
/// HAProxy logs to `positions`: a connection served counts as having left the queue.
pub fn leave_queue(backend: &Backend, w: Waiting, served: bool, positions: &mut QueuePositions) {
    let mut lb = backend.lb.lock().unwrap_or_else(|e| e.into_inner());
    let left = &mut lb.left_queue[w.queue];
    let position = *left - w.joined + 1;
    if served {
        *left += 1;
    }
    if w.queue == 0 {
        positions.backend += position;
    } else {
        positions.server += position;
    }
}

/// Why no server was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoServer {
    /// Every server is down, in maintenance, draining or without an address.
    NoneUsable,
    /// Usable servers exist but all are at their `maxconn`.
    AllFull,
}

/// Picks a server for a client from `src`, avoiding `avoid` when another one is usable,
/// and `take`s what the connection holds of it (its slot) in the same step: no other pick
/// sees the server free in between, so its `maxconn` holds.
pub fn pick<T>(
    backend: &Backend,
    src: IpAddr,
    avoid: Option<&Arc<Server>>,
    take: impl FnOnce(&Arc<Server>) -> T,
) -> Result<(Arc<Server>, T), NoServer> {
    // Round robin and leastconn's ties keep their rotation when avoiding a server: they skip
    // the server's turn (as HAProxy's trees do), rather than turning among the others.
    let rotates = matches!(
        backend.balance,
        Balance::RoundRobin | Balance::StaticRr | Balance::LeastConn
    );
    let mut lb = backend.lb.lock().unwrap_or_else(|e| e.into_inner());
    let candidates = candidates(backend, avoid.filter(|_| !rotates));
    if candidates.is_empty() {
        return Err(NoServer::NoneUsable);
    }
    let free: Vec<(usize, &Arc<Server>)> = candidates
        .iter()
        .copied()
        .filter(|(_, s)| s.has_free_slot())
        .collect();
    let chosen = match backend.balance {
        // HAProxy's map-based hash picks among the usable servers whatever their load: a
        // client whose server is full waits for it (in its queue, see [`join_queue`]).
        Balance::Source => {
            let chosen = by_hash(&candidates, hash_ip(src));
            if !chosen.has_free_slot() {
                return Err(NoServer::AllFull);
            }
            chosen
        }
        _ if free.is_empty() => return Err(NoServer::AllFull),
        Balance::RoundRobin | Balance::StaticRr => {
            let turn = smooth_rr(&mut lb, &free);
            match avoid {
                Some(a) if free.len() > 1 && Arc::ptr_eq(&turn, a) => smooth_rr(&mut lb, &free),
                _ => turn,
            }
        }
        Balance::LeastConn => least_conn(&mut lb, &free, avoid),
        Balance::First => free[0].1.clone(),
        Balance::Random(draws) => random_draws(&mut lb, &free, draws),
    };
    chosen.lb_total.fetch_add(1, Relaxed);
    let taken = take(&chosen);
    Ok((chosen, taken))
}

/// Whether the retry after `failures` failed attempts redispatches (`option redispatch`),
/// as HAProxy 2.6 decides: the server is not usable; or the interval says so (every Nth
/// failure with N > 0; with N < 0, every (retries + 1 + N)th, by default -1: the last
/// retry); or, whatever the interval, the algorithm does not hash and more than one active
/// server may take the connection (any of them will do, so none is waited for).
pub fn redispatches(backend: &Backend, server: &Server, failures: u32) -> bool {
    let conf = &backend.conf;
    if !conf.options.redispatch {
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
    !server.usable() || by_interval || (backend.balance != Balance::Source && several())
}

/// The usable servers with a weight, actives first, else backups; `(index, server)`.
fn candidates<'a>(
    backend: &'a Backend,
    avoid: Option<&Arc<Server>>,
) -> Vec<(usize, &'a Arc<Server>)> {
    let usable = |backup: bool| -> Vec<(usize, &'a Arc<Server>)> {
        backend
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.opts.backup == backup && s.usable() && s.lb_weight() > 0)
            .collect()
    };
    let mut list = usable(false);
    if list.is_empty() {
        list = usable(true);
        if !backend.conf.options.allbackups {
            list.truncate(1);
        }
    }
    if let Some(avoid) = avoid {
        if list.len() > 1 {
            list.retain(|(_, s)| !Arc::ptr_eq(s, avoid));
        }
    }
    list
}

fn smooth_rr(lb: &mut LbState, free: &[(usize, &Arc<Server>)]) -> Arc<Server> {
    let total: i64 = free.iter().map(|(_, s)| i64::from(s.lb_weight())).sum();
    let mut best = free[0];
    for &(i, s) in free {
        lb.credit[i] += i64::from(s.lb_weight());
        if lb.credit[i] > lb.credit[best.0] {
            best = (i, s);
        }
    }
    lb.credit[best.0] -= total;
    best.1.clone()
}

fn least_conn(
    lb: &mut LbState,
    free: &[(usize, &Arc<Server>)],
    avoid: Option<&Arc<Server>>,
) -> Arc<Server> {
    let start = (lb.ties % free.len() as u64) as usize;
    lb.ties = lb.ties.wrapping_add(1);
    let avoided = |s: &Arc<Server>| free.len() > 1 && avoid.is_some_and(|a| Arc::ptr_eq(s, a));
    // Lowest connections per weight; the rotation breaks ties round-robin.
    (0..free.len())
        .map(|k| free[(start + k) % free.len()].1)
        .filter(|s| !avoided(s))
        .min_by_key(|s| load(s))
        .map(|s| (*s).clone())
        .unwrap_or_else(|| free[0].1.clone())
}

/// A server's connections per weight, to compare loads. The weight may have dropped to 0
/// (set to 0, drained, put in maintenance) since [`candidates`] read it: it then counts as
/// 1, which only ranks the server as heavily loaded.
fn load(s: &Server) -> u64 {
    (s.counters.cur.load(Relaxed) as u64 + 1) * 256 / u64::from(s.lb_weight().max(1))
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
fn random_draws(lb: &mut LbState, free: &[(usize, &Arc<Server>)], draws: u32) -> Arc<Server> {
    (0..draws.max(1))
        .map(|_| by_hash(free, next_random(&mut lb.turn)))
        .min_by_key(|s| load(s))
        .unwrap_or_else(|| free[0].1.clone())
}

fn by_hash(free: &[(usize, &Arc<Server>)], hash: u64) -> Arc<Server> {
    let total: u64 = free.iter().map(|(_, s)| u64::from(s.lb_weight())).sum();
    let mut point = hash % total.max(1);
    for (_, s) in free {
        let w = u64::from(s.lb_weight());
        if point < w {
            return (*s).clone();
        }
        point -= w;
    }
    free[0].1.clone()
}

/// A well-mixed hash of a client address (FNV-1a then a final avalanche).
fn hash_ip(ip: IpAddr) -> u64 {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Proxy, ProxyKind, Server as ServerConf, ServerOptions};

    fn backend(balance: Balance, weights: &[(u32, bool)]) -> Backend {
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Default::default());
        p.balance = balance;
        for (i, (w, backup)) in weights.iter().enumerate() {
            p.servers.push(ServerConf {
                name: format!("s{i}"),
                host: "127.0.0.1".into(),
                port: Some(1),
                opts: ServerOptions {
                    weight: *w,
                    backup: *backup,
                    ..Default::default()
                },
                place: Default::default(),
                id: i + 1,
                addr: Some([127, 0, 0, 1].into()),
            });
        }
        Backend::new(1, &p)
    }

    fn pick1(b: &Backend, src: IpAddr, avoid: Option<&Arc<Server>>) -> Arc<Server> {
        pick(b, src, avoid, |_| ()).unwrap().0
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
            .filter(|&f| redispatches(&b, &b.servers[0], f))
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
        assert!(!redispatches(&b, &b.servers[0], 1));
        b.servers[0].set_up(false);
        assert!(redispatches(&b, &b.servers[0], 1));
        let mut rr = backend(Balance::RoundRobin, &[(1, false), (1, false), (1, true)]);
        rr.conf.options.redispatch = true;
        rr.conf.options.redispatch_after = 0;
        assert!(redispatches(&rr, &rr.servers[0], 1));
        // One active server left: only the interval (here none) would.
        rr.servers[1].set_up(false);
        assert!(!redispatches(&rr, &rr.servers[0], 1));
    }

    #[test]
    fn avoiding_a_server_keeps_the_rotation() {
        for balance in [Balance::RoundRobin, Balance::LeastConn] {
            let b = backend(balance, &[(1, false), (1, false), (1, false)]);
            let mut prev = pick1(&b, IpAddr::from([192, 0, 2, 1]), None);
            let mut seen = vec![prev.id];
            for _ in 0..4 {
                prev = pick1(&b, IpAddr::from([192, 0, 2, 1]), Some(&prev));
                seen.push(prev.id);
            }
            assert_eq!(seen, [1, 2, 3, 1, 2], "{balance:?}");
        }
    }

    #[test]
    fn queue_positions_count_those_served_while_waiting() {
        let b = backend(Balance::RoundRobin, &[(1, false)]);
        let ip = IpAddr::from([192, 0, 2, 1]);
        let (w1, w2, w3) = (join_queue(&b, ip), join_queue(&b, ip), join_queue(&b, ip));
        let mut p = [QueuePositions::default(); 3];
        leave_queue(&b, w2, true, &mut p[1]);
        // Given up (`timeout queue`): its place, but no one counts it as served before them.
        leave_queue(&b, w1, false, &mut p[0]);
        leave_queue(&b, w3, true, &mut p[2]);
        assert_eq!(p.map(|q| (q.server, q.backend)), [(0, 2), (0, 1), (0, 2)]);
        // A hash waits for its own server, in that server's queue.
        let b = backend(Balance::Source, &[(1, false)]);
        let mut q = QueuePositions::default();
        let w = join_queue(&b, ip);
        leave_queue(&b, w, true, &mut q);
        assert_eq!((q.server, q.backend), (1, 0));
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
        b.servers[0].counters.cur.fetch_add(100, Relaxed);
        let c = counts(&b, 400);
        assert!(c[1] >= 390, "{c:?}");
    }

    #[test]
    fn a_weight_dropping_to_zero_after_the_candidates_were_chosen_is_no_panic() {
        for balance in [Balance::LeastConn, Balance::Random(2)] {
            let b = backend(balance, &[(1, false), (1, false)]);
            let free = candidates(&b, None);
            b.servers[0].weight.store(0, Relaxed);
            let mut lb = b.lb.lock().unwrap();
            let _ = least_conn(&mut lb, &free, None);
            let _ = random_draws(&mut lb, &free, 2);
            assert_eq!(load(&b.servers[0]), 256);
        }
    }
}
