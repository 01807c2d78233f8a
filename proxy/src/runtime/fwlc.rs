//! `balance leastconn` as HAProxy 2.6's `lb_fwlc.c`, so that each connection goes to the
//! server HAProxy would choose, ties included.
//!
//! HAProxy keeps the usable servers in a tree keyed by their load: 0 for an idle server,
//! else `(inflight + 1) * SRV_EWGHT_MAX / eweight` (`inflight`: the connections it serves
//! plus those waiting in its own queue). Servers of equal key leave the tree in the order
//! they entered it: a server is moved (to the end of its new key's servers) only when its
//! key changes, when a connection starts or ends on it (`fwlc_srv_reposition`), or when it
//! goes up, or its weight changes (`fwlc_update_server_weight` takes it out and in again,
//! whatever the key). So idle servers take connections in turn, whatever their weights, and
//! a server set to the same weight again goes behind its equals. The pick walks the tree
//! from the least loaded, skipping saturated servers and the one to avoid
//! (`fwlc_get_next_server`).
//!
//! Here the tree is a [`BTreeSet`] of `(key, entry number, server)` per group (actives,
//! backups), as HAProxy's two eb32 trees: a pick walks it from its first entry, and a
//! connection starting or ending moves one entry, each in O(log n). The tree is the
//! balancer's own record: each change of a server reaches it as it is made
//! ([`Fwlc::update`], from `balance::server_changed`), as in HAProxy, so a pick reads no
//! other server's state than those it walks past.

use std::collections::BTreeSet;

/// HAProxy's `SRV_EWGHT_MAX` (256 user weights on its scale of 16).
const EWGHT_MAX: u64 = 256 * 16;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// In its group's tree (usable, with a weight).
    queued: bool,
    backup: bool,
    key: u32,
    /// When it entered the tree with this key: equal keys leave in this order.
    seq: u64,
    /// The effective weight it was queued with (`cur_eweight`).
    eweight: u32,
}

impl Entry {
    fn node(&self, i: usize) -> (u32, u64, usize) {
        (self.key, self.seq, i)
    }
}

/// The leastconn state of a backend.
#[derive(Debug)]
pub struct Fwlc {
    entries: Vec<Entry>,
    /// The actives' tree and the backups' (HAProxy's `fwlc.act`, `fwlc.bck`).
    trees: [BTreeSet<(u32, u64, usize)>; 2],
    seq: u64,
}

/// What a pick found ([`Fwlc::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Server(usize),
    /// Every server in use is saturated.
    Saturated,
    /// No server is in use (none usable with a weight).
    NoneUsable,
}

/// HAProxy's key of a server with `inflight` connections and effective weight `eweight`.
fn key(inflight: usize, eweight: u32) -> u32 {
    if inflight == 0 || eweight == 0 {
        return 0;
    }
    ((inflight as u64 + 1) * EWGHT_MAX / u64::from(eweight)).min(u64::from(u32::MAX)) as u32
}

impl Fwlc {
    pub fn new(servers: usize) -> Self {
        Fwlc {
            entries: vec![Entry::default(); servers],
            trees: [BTreeSet::new(), BTreeSet::new()],
            seq: 0,
        }
    }

    /// Takes server `i` out of its tree, if it is in one.
    fn dequeue(&mut self, i: usize) {
        let entry = &mut self.entries[i];
        if std::mem::take(&mut entry.queued) {
            self.trees[usize::from(entry.backup)].remove(&entry.node(i));
        }
    }

    /// Puts server `i` at the end of its key's servers in its group's tree.
    fn insert(&mut self, i: usize, backup: bool, inflight: usize, eweight: u32) {
        self.dequeue(i);
        self.seq += 1;
        let entry = Entry {
            queued: true,
            backup,
            key: key(inflight, eweight),
            seq: self.seq,
            eweight,
        };
        self.entries[i] = entry;
        self.trees[usize::from(backup)].insert(entry.node(i));
    }

    /// Server `i` (a backup or not) is now usable with effective weight `eweight` (0: not
    /// usable), serving `inflight`: as HAProxy's `fwlc_set_server_status_up/down` and
    /// `fwlc_update_server_weight`, called at each change of the server, in order.
    pub fn update(&mut self, i: usize, backup: bool, eweight: u32, inflight: usize) {
        let entry = self.entries[i];
        match (entry.queued, eweight > 0) {
            (false, false) => {}
            (true, false) => self.dequeue(i),
            (false, true) => self.insert(i, backup, inflight, eweight),
            (true, true) if entry.eweight != eweight || entry.backup != backup => {
                self.insert(i, backup, inflight, eweight)
            }
            (true, true) => {}
        }
    }

    /// A connection started or ended on server `i`, now serving `inflight`
    /// (`fwlc_srv_reposition`): it moves behind its equals only if its key changed.
    pub fn reposition(&mut self, i: usize, inflight: usize) {
        let entry = self.entries[i];
        if entry.queued && entry.key != key(inflight, entry.eweight) {
            self.insert(i, entry.backup, inflight, entry.eweight);
        }
    }

    /// As HAProxy's `fwlc_get_next_server`: the first server of the group in use (the
    /// actives while any is in the tree; else every backup with `allbackups`) in the tree's
    /// order that `can_take` says is not saturated, other than `avoid` unless no other may
    /// be taken. Without `allbackups`, once no active is in use, the first backup by
    /// position, whatever its load or `avoid`.
    pub fn next(
        &self,
        allbackups: bool,
        avoid: Option<usize>,
        can_take: impl Fn(usize) -> bool,
    ) -> Next {
        let tree = match &self.trees {
            [act, _] if !act.is_empty() => act,
            [_, bck] if !bck.is_empty() => bck,
            _ => return Next::NoneUsable,
        };
        let backups_only = std::ptr::eq(tree, &self.trees[1]);
        if backups_only && !allbackups {
            // The first backup alone (HAProxy's `fbck`), whatever its load: a full one is
            // waited for in its own queue (refused past its `maxqueue`), as HAProxy's
            // `fwlc_get_next_server` returns `fbck` before any saturation check.
            let first = tree.iter().map(|&(_, _, i)| i).min();
            return first.map_or(Next::Saturated, Next::Server);
        }
        let mut avoided = None;
        for &(_, _, i) in tree {
            if !can_take(i) {
                continue;
            }
            if Some(i) != avoid {
                return Next::Server(i);
            }
            avoided = Some(i);
        }
        avoided.map_or(Next::Saturated, Next::Server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Servers of `weights` (on the user's scale), active, in the tree in their order.
    fn tree_of(weights: &[u32]) -> Fwlc {
        let mut lc = Fwlc::new(weights.len());
        for (i, w) in weights.iter().enumerate() {
            lc.update(i, false, w * 16, 0);
        }
        lc
    }

    /// Picks among the servers, with their `loads`, and counts the pick.
    fn pick(lc: &mut Fwlc, loads: &mut [usize]) -> usize {
        let Next::Server(i) = lc.next(false, None, |_| true) else {
            panic!("a server");
        };
        loads[i] += 1;
        lc.reposition(i, loads[i]);
        i
    }

    #[test]
    fn idle_servers_take_turns_whatever_their_weights() {
        let mut lc = tree_of(&[3, 2, 1]);
        let mut loads = [0; 3];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let i = pick(&mut lc, &mut loads);
            seen.push(i);
            // Ended before the next: idle again, behind the others.
            loads[i] -= 1;
            lc.reposition(i, loads[i]);
        }
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    fn busy_servers_are_ranked_by_load_per_weight() {
        let mut lc = tree_of(&[3, 1]);
        let mut loads = [0; 2];
        let seen: Vec<usize> = (0..7).map(|_| pick(&mut lc, &mut loads)).collect();
        // Keys: s0 (n+1)*4096/48, s1 (n+1)*4096/16; at 512 both, s1 entered first.
        assert_eq!(seen, [0, 1, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn the_avoided_server_is_taken_only_alone() {
        let lc = tree_of(&[1, 1]);
        assert_eq!(lc.next(false, Some(0), |_| true), Next::Server(1));
        assert_eq!(lc.next(false, Some(0), |i| i == 0), Next::Server(0));
        assert_eq!(lc.next(false, None, |_| false), Next::Saturated);
    }

    #[test]
    fn backups_serve_only_once_no_active_is_in_use() {
        let mut lc = Fwlc::new(4);
        assert_eq!(lc.next(false, None, |_| true), Next::NoneUsable);
        // Backups 2 and 1 (entered in that order), active 3.
        lc.update(2, true, 16, 0);
        lc.update(1, true, 16, 0);
        lc.update(3, false, 16, 0);
        assert_eq!(lc.next(false, None, |_| true), Next::Server(3));
        lc.update(3, false, 0, 0);
        // The first backup by position alone, or all of them in the tree's order.
        assert_eq!(lc.next(false, None, |_| true), Next::Server(1));
        // The first backup is taken full as well (it is waited for, in its own queue).
        assert_eq!(lc.next(false, None, |i| i != 1), Next::Server(1));
        assert_eq!(lc.next(true, None, |_| true), Next::Server(2));
        assert_eq!(lc.next(true, None, |i| i != 2), Next::Server(1));
    }
}
