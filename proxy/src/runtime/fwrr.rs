//! `balance roundrobin` as HAProxy 2.6's fast weighted round robin (`lb_fwrr.c`), so that
//! every connection goes to the server HAProxy would choose, in steady state and across
//! state and weight changes.
//!
//! Each group (actives, backups) has three trees: `curr` (servers ordered by their next
//! position `npos`), and `init`/`next` (servers waiting for the next turn, heaviest first),
//! which swap at the end of a turn. HAProxy moves servers between the trees when they go up
//! or down or change weight, at the moment each change is made (`srv_update_status`): so
//! does the balancer here ([`Fwrr::update`], called for every change of a server, under the
//! balancer's lock, in the order they come), with HAProxy's arithmetic (C `int` divisions):
//! a health flap or a weight set to 0 and back with no connection in between moves the
//! turn, as in HAProxy. A pick also compares every server with what was last applied
//! ([`Fwrr::sync`], the same O(n) read the other algorithms make), for what changes with
//! time alone (a slow start's weight between its steps). The trees are indexed binary heaps
//! keyed by (ebtree key, insertion number): the first of equal keys is the first inserted,
//! as in an ebtree with duplicates. A pick is O(log n) in the trees and allocates nothing.

/// HAProxy's `BE_WEIGHT_SCALE`, `SRV_EWGHT_MAX` and `SRV_UWGHT_RANGE`.
const SCALE: i64 = 16;
const EWGHT_MAX: i64 = 256 * SCALE;
const UWGHT_RANGE: i64 = 256;

/// A tree a server may be in (HAProxy's `lb_tree`): a group's current one or one of the
/// two that serve as `init` and `next` in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tree {
    Curr(usize),
    /// (group, 0 or 1: `t0` or `t1`).
    Wait(usize, usize),
}

/// The live state of a server, as read before a pick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    /// UP (or starting), out of maintenance, with an address.
    pub up: bool,
    /// Effective weight on HAProxy's scale (16 per unit, ramped in slow start; 0 drained).
    pub eweight: u32,
}

#[derive(Debug, Clone, Default)]
struct Srv {
    backup: bool,
    cur: Live,
    next: Live,
    npos: i64,
    lpos: i64,
    rweight: i64,
    /// Where HAProxy's `lb_tree` points (it may point to a tree the server was taken out of).
    tree: Option<Tree>,
}

impl Live {
    fn usable(self) -> bool {
        self.up && self.eweight > 0
    }
}

#[derive(Debug)]
struct Group {
    curr: Heap,
    wait: [Heap; 2],
    /// Which of `wait` is `init` (the other is `next`).
    init: usize,
    curr_pos: i64,
    curr_weight: i64,
    next_weight: i64,
}

/// The round-robin state of a backend.
#[derive(Debug)]
pub struct Fwrr {
    srv: Vec<Srv>,
    groups: [Group; 2],
    allbackups: bool,
    started: bool,
    /// Committed usable servers per group (`srv_act`, `srv_bck`).
    count: [usize; 2],
    /// The first usable backup without `allbackups` (`fbck`).
    fbck: Option<usize>,
    /// Insertion numbers, keeping equal keys in insertion order.
    seq: u64,
    /// Servers taken out for being full or avoided (`next_full`), kept between picks.
    full: Vec<usize>,
}

impl Fwrr {
    pub fn new(servers: usize) -> Self {
        let group = || Group {
            curr: Heap::new(servers),
            wait: [Heap::new(servers), Heap::new(servers)],
            init: 0,
            curr_pos: 0,
            curr_weight: 0,
            next_weight: 0,
        };
        Fwrr {
            srv: vec![Srv::default(); servers],
            groups: [group(), group()],
            allbackups: false,
            started: false,
            count: [0; 2],
            fbck: None,
            seq: 0,
            full: Vec::with_capacity(servers),
        }
    }

    /// Applies the servers' current states (`live`, by index, and whether each is a backup):
    /// the first time as HAProxy's `fwrr_init_server_groups`, then as its state and weight
    /// callbacks, in server order.
    pub fn sync(&mut self, allbackups: bool, live: impl Iterator<Item = (bool, Live)>) {
        if !self.started {
            for (s, (backup, now)) in self.srv.iter_mut().zip(live) {
                s.backup = backup;
                s.next = now;
            }
            self.start(allbackups);
            return;
        }
        for (i, (backup, now)) in live.enumerate() {
            self.update(i, backup, now);
        }
    }

    /// Applies server `i`'s state now (`now`, and whether it is a backup), as HAProxy's
    /// `fwrr_update_server_weight` (which goes up or down too) when it changed since last
    /// applied. Before the first [`Fwrr::sync`] it is only kept, for the start.
    pub fn update(&mut self, i: usize, backup: bool, now: Live) {
        let s = &mut self.srv[i];
        s.backup = backup;
        s.next = now;
        if self.started && s.cur != s.next {
            self.update_weight(i);
        }
    }

    fn start(&mut self, allbackups: bool) {
        self.started = true;
        self.allbackups = allbackups;
        let mut totals = [0i64; 2];
        for i in 0..self.srv.len() {
            let s = &mut self.srv[i];
            s.cur = s.next;
            if s.cur.usable() {
                let g = usize::from(s.backup);
                totals[g] += i64::from(s.cur.eweight);
                self.count[g] += 1;
                if g == 1 && self.fbck.is_none() && !allbackups {
                    self.fbck = Some(i);
                }
            }
        }
        for (g, total) in totals.into_iter().enumerate() {
            let grp = &mut self.groups[g];
            (grp.curr_pos, grp.curr_weight, grp.next_weight) = (total, total, total);
        }
        for i in 0..self.srv.len() {
            if self.srv[i].cur.usable() {
                let g = self.group(i);
                let init = Tree::Wait(g, self.groups[g].init);
                self.queue_by_weight(init, i);
            }
        }
    }

    /// Whether any server may be balanced to.
    pub fn any_usable(&self) -> bool {
        self.count[0] > 0 || self.count[1] > 0
    }

    fn group(&self, i: usize) -> usize {
        usize::from(self.srv[i].backup)
    }

    fn commit(&mut self, i: usize) {
        let s = &mut self.srv[i];
        s.cur = s.next;
    }

    fn set_down(&mut self, i: usize) {
        if self.srv[i].cur == self.srv[i].next {
            return;
        }
        if self.srv[i].next.usable() || !self.srv[i].cur.usable() {
            return self.commit(i);
        }
        let g = self.group(i);
        self.groups[g].next_weight -= i64::from(self.srv[i].cur.eweight);
        self.count[g] -= 1;
        if g == 1 && self.fbck == Some(i) {
            // The next usable backup after it (none before it was).
            self.fbck =
                (i + 1..self.srv.len()).find(|&j| self.srv[j].backup && self.srv[j].next.usable());
        }
        self.dequeue(i);
        self.srv[i].tree = None;
        self.commit(i);
    }

    fn set_up(&mut self, i: usize) {
        if self.srv[i].cur == self.srv[i].next {
            return;
        }
        if !self.srv[i].next.usable() || self.srv[i].cur.usable() {
            return self.commit(i);
        }
        let g = self.group(i);
        self.groups[g].next_weight += i64::from(self.srv[i].next.eweight);
        self.count[g] += 1;
        if g == 1 && !self.allbackups {
            // It replaces the first backup if it comes before it.
            if self.fbck.is_none_or(|f| i < f) {
                self.fbck = Some(i);
            }
        }
        self.get_srv(i);
        let grp = &self.groups[g];
        let eweight = i64::from(self.srv[i].next.eweight);
        self.srv[i].npos =
            grp.curr_pos + (grp.next_weight + grp.curr_weight - grp.curr_pos) / eweight;
        self.queue_srv(i);
        self.commit(i);
    }

    fn update_weight(&mut self, i: usize) {
        let (old, new) = (self.srv[i].cur.usable(), self.srv[i].next.usable());
        match (old, new) {
            (false, false) => return self.commit(i),
            (false, true) => return self.set_up(i),
            (true, false) => return self.set_down(i),
            (true, true) => {}
        }
        let g = self.group(i);
        let (cur_w, next_w) = (
            i64::from(self.srv[i].cur.eweight),
            i64::from(self.srv[i].next.eweight),
        );
        self.groups[g].next_weight = self.groups[g].next_weight - cur_w + next_w;
        let init = Tree::Wait(g, self.groups[g].init);
        match self.srv[i].tree {
            Some(t) if t == init => {
                self.dequeue(i);
                self.queue_by_weight(init, i);
            }
            None => {
                self.dequeue(i);
                self.get_srv(i);
                let grp = &self.groups[g];
                self.srv[i].npos =
                    grp.curr_pos + (grp.next_weight + grp.curr_weight - grp.curr_pos) / next_w;
                self.queue_srv(i);
            }
            Some(_) => {
                self.get_srv(i);
                let grp = &self.groups[g];
                let s = &mut self.srv[i];
                if next_w > 0 {
                    let prev_next = s.npos;
                    let step = grp.next_weight / next_w;
                    s.npos = s.lpos + step;
                    s.rweight = 0;
                    if s.npos > prev_next {
                        s.npos = prev_next;
                    }
                    if s.npos < grp.curr_pos + 2 {
                        s.npos = grp.curr_pos + step;
                    }
                } else {
                    s.npos = grp.curr_pos + grp.curr_weight;
                }
                self.dequeue(i);
                self.queue_srv(i);
            }
        }
        self.commit(i);
    }

    fn heap(&mut self, tree: Tree) -> &mut Heap {
        match tree {
            Tree::Curr(g) => &mut self.groups[g].curr,
            Tree::Wait(g, w) => &mut self.groups[g].wait[w],
        }
    }

    fn insert(&mut self, tree: Tree, i: usize, key: u32) {
        // In one tree at a time, as an ebtree node.
        self.dequeue(i);
        self.seq += 1;
        let seq = self.seq;
        self.heap(tree).insert(i, (key, seq));
        self.srv[i].tree = Some(tree);
    }

    /// Takes the server out of whichever tree holds it (`eb32_delete`; `lb_tree` unchanged).
    fn dequeue(&mut self, i: usize) {
        for g in &mut self.groups {
            g.curr.remove(i);
            g.wait[0].remove(i);
            g.wait[1].remove(i);
        }
    }

    fn queue_by_weight(&mut self, tree: Tree, i: usize) {
        let key = (EWGHT_MAX - i64::from(self.srv[i].next.eweight)) as u32;
        self.insert(tree, i, key);
    }

    fn queue_srv(&mut self, i: usize) {
        let g = self.group(i);
        let (curr_weight, next_weight) = (self.groups[g].curr_weight, self.groups[g].next_weight);
        let s = &self.srv[i];
        let eweight = i64::from(s.next.eweight);
        if !s.next.usable() {
            self.srv[i].tree = None;
        } else if eweight <= 0 || s.npos >= 2 * curr_weight || s.npos >= curr_weight + next_weight {
            self.srv[i].npos -= curr_weight;
            let next = Tree::Wait(g, 1 - self.groups[g].init);
            self.queue_by_weight(next, i);
        } else {
            // C: an int (wrapping) plus an unsigned division.
            let pos = (UWGHT_RANGE * s.npos) as i32 as u32;
            let rest = ((EWGHT_MAX + s.rweight - eweight) as i32 as u32) / SCALE as u32;
            self.insert(Tree::Curr(g), i, pos.wrapping_add(rest));
        }
    }

    fn get_srv(&mut self, i: usize) {
        let g = self.group(i);
        let grp = &self.groups[g];
        let s = &mut self.srv[i];
        match s.tree {
            Some(Tree::Wait(_, w)) if w == grp.init => (s.npos, s.rweight) = (0, 0),
            Some(Tree::Wait(..)) => s.npos += grp.curr_weight,
            None => s.npos = grp.curr_pos,
            Some(Tree::Curr(_)) => {}
        }
    }

    fn switch_trees(&mut self, g: usize) {
        let grp = &mut self.groups[g];
        grp.init = 1 - grp.init;
        grp.curr_weight = grp.next_weight;
        grp.curr_pos = grp.curr_weight;
    }

    fn group_head(&mut self, g: usize) -> Option<usize> {
        let grp = &self.groups[g];
        let s1 = grp.curr.first();
        if let Some(s) = s1 {
            if self.srv[s].cur.eweight > 0 && self.srv[s].npos <= grp.curr_pos {
                return Some(s);
            }
        }
        if let Some(s) = grp.wait[grp.init].first() {
            if self.srv[s].cur.eweight > 0 {
                (self.srv[s].npos, self.srv[s].rweight) = (0, 0);
                return Some(s);
            }
        }
        s1
    }

    fn update_position(&mut self, g: usize, i: usize) {
        let grp = &self.groups[g];
        let s = &mut self.srv[i];
        let eweight = i64::from(s.cur.eweight);
        if eweight == 0 {
            return;
        }
        if s.npos == 0 {
            s.npos = grp.curr_pos;
        }
        s.lpos = s.npos;
        s.npos += grp.next_weight / eweight;
        s.rweight += grp.next_weight % eweight;
        if s.rweight >= eweight {
            s.rweight -= eweight;
            s.npos += 1;
        }
    }

    /// The next server (`fwrr_get_next_server`): `can_take` says whether a server is not
    /// saturated (no `maxconn`, or none queued and a free slot); `avoid` is skipped unless
    /// nothing else may be taken. None: every server is saturated, or none is usable.
    pub fn next(
        &mut self,
        avoid: Option<usize>,
        can_take: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let g = if self.count[0] > 0 {
            0
        } else if let Some(f) = self.fbck {
            return Some(f);
        } else if self.count[1] > 0 {
            1
        } else {
            return None;
        };
        let mut switched = false;
        let mut avoided = None;
        self.full.clear();
        let chosen = loop {
            let grp = &mut self.groups[g];
            if grp.curr_weight == 0 {
                (grp.curr_pos, grp.curr_weight) = (grp.next_weight, grp.next_weight);
            }
            let srv = loop {
                if let Some(s) = self.group_head(g) {
                    break Some(s);
                }
                if switched {
                    break None;
                }
                switched = true;
                self.switch_trees(g);
            };
            let Some(srv) = srv else {
                break avoided.inspect(|&a| self.queue_srv(a));
            };
            self.update_position(g, srv);
            self.dequeue(srv);
            self.groups[g].curr_pos += 1;
            if can_take(srv) {
                if Some(srv) != avoid || avoided.is_some() {
                    self.queue_srv(srv);
                    break Some(srv);
                }
                avoided = Some(srv);
            }
            self.full.push(srv);
        };
        // Those taken out go back: by weight into `init` after a switch (their place was
        // lost), else as if they had been used. HAProxy chains them most recent first.
        let full = std::mem::take(&mut self.full);
        for &s in full.iter().rev().filter(|&&s| Some(s) != chosen) {
            if switched {
                let init = Tree::Wait(g, self.groups[g].init);
                self.queue_by_weight(init, s);
            } else {
                self.queue_srv(s);
            }
        }
        self.full = full;
        chosen
    }
}

/// A min-heap of server indexes by key, with each server's place kept so that any server
/// can be taken out in O(log n); its room is reserved once.
#[derive(Debug)]
struct Heap {
    items: Vec<(usize, (u32, u64))>,
    /// Each server's place in `items`, or `usize::MAX`.
    place: Vec<usize>,
}

impl Heap {
    fn new(servers: usize) -> Self {
        Heap {
            items: Vec::with_capacity(servers),
            place: vec![usize::MAX; servers],
        }
    }

    fn first(&self) -> Option<usize> {
        self.items.first().map(|&(i, _)| i)
    }

    fn insert(&mut self, i: usize, key: (u32, u64)) {
        self.remove(i);
        self.items.push((i, key));
        self.place[i] = self.items.len() - 1;
        self.up(self.items.len() - 1);
    }

    fn remove(&mut self, i: usize) {
        let at = self.place[i];
        if at == usize::MAX {
            return;
        }
        self.place[i] = usize::MAX;
        let last = self.items.len() - 1;
        if at != last {
            self.items.swap(at, last);
            self.items.pop();
            self.place[self.items[at].0] = at;
            self.down(at);
            self.up(at);
        } else {
            self.items.pop();
        }
    }

    fn set(&mut self, at: usize, item: (usize, (u32, u64))) {
        self.items[at] = item;
        self.place[item.0] = at;
    }

    fn up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.items[at].1 >= self.items[parent].1 {
                break;
            }
            let (a, p) = (self.items[at], self.items[parent]);
            self.set(at, p);
            self.set(parent, a);
            at = parent;
        }
    }

    fn down(&mut self, mut at: usize) {
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if l < self.items.len() && self.items[l].1 < self.items[least].1 {
                least = l;
            }
            if r < self.items.len() && self.items[r].1 < self.items[least].1 {
                least = r;
            }
            if least == at {
                return;
            }
            let (a, b) = (self.items[at], self.items[least]);
            self.set(at, b);
            self.set(least, a);
            at = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(weights: &[u32]) -> impl Iterator<Item = (bool, Live)> + '_ {
        weights.iter().map(|&w| {
            let eweight = w * SCALE as u32;
            (false, Live { up: w > 0, eweight })
        })
    }

    #[test]
    fn equal_keys_leave_the_heap_in_insertion_order() {
        let mut heap = Heap::new(4);
        for (i, seq) in [(2, 1), (0, 2), (3, 3), (1, 4)] {
            heap.insert(i, (7, seq));
        }
        heap.insert(3, (5, 5));
        let mut order = Vec::new();
        while let Some(i) = heap.first() {
            heap.remove(i);
            order.push(i);
        }
        assert_eq!(order, [3, 2, 0, 1]);
    }

    #[test]
    fn a_turn_gives_each_server_its_weight() {
        let weights = [5, 3, 1, 2];
        let mut rr = Fwrr::new(weights.len());
        let mut counts = [0; 4];
        for _ in 0..11 * 3 {
            rr.sync(false, live(&weights));
            counts[rr.next(None, |_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [15, 9, 3, 6]);
    }

    #[test]
    fn an_avoided_server_is_taken_only_when_alone() {
        let mut rr = Fwrr::new(2);
        rr.sync(false, live(&[1, 1]));
        assert_eq!(rr.next(Some(0), |_| true), Some(1));
        assert_eq!(rr.next(Some(0), |i| i == 0), Some(0));
        rr.sync(false, live(&[1, 0]));
        assert_eq!(rr.next(Some(0), |_| true), Some(0));
        rr.sync(false, live(&[0, 0]));
        assert_eq!(rr.next(None, |_| true), None);
        assert!(!rr.any_usable());
    }
}
