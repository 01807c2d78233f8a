//! Hash-based balancing as HAProxy 2.6 does it, bit for bit: the hash functions
//! (`src/hash.c`, `full_hash`), the keys the algorithms hash (`src/backend.c`:
//! `get_server_sh`, `get_server_uh`, `get_server_ph`, `get_server_hh`), the weighted server
//! map of `hash-type map-based` (`src/lb_map.c`) and the ring of `hash-type consistent`
//! (`src/lb_chash.c`). The same configuration sends every key to the same server as
//! HAProxy, so both can run side by side, or one replace the other, without moving clients.

use std::net::IpAddr;

use crate::config::model::{Balance, HashFunction, HashType, UriHash};

/// HAProxy's `SRV_EWGHT_RANGE` (`SRV_UWGHT_RANGE` 256 times `BE_WEIGHT_SCALE` 16): the
/// room each server id has for its ring points' keys.
const SRV_EWGHT_RANGE: u32 = 256 * BE_WEIGHT_SCALE;
/// HAProxy's `BE_WEIGHT_SCALE`: a consistent-hash server has 16 points per unit of weight.
const BE_WEIGHT_SCALE: u32 = 16;

/// HAProxy's `full_hash` (Bob Jenkins' 4-byte integer avalanche, then a multiplication by a
/// prime close to 3/4 of 2^32 to spread values around the tree).
pub fn full_hash(a: u32) -> u32 {
    let mut a = a;
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

/// `hash_sdbm` of HAProxy's `hash.c`.
pub fn sdbm(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |h, &c| {
        u32::from(c)
            .wrapping_add(h << 6)
            .wrapping_add(h << 16)
            .wrapping_sub(h)
    })
}

/// `hash_djb2` of HAProxy's `hash.c`.
pub fn djb2(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &c| {
        (h << 5).wrapping_add(h).wrapping_add(u32::from(c))
    })
}

/// `hash_wt6` of HAProxy's `hash.c`.
pub fn wt6(key: &[u8]) -> u32 {
    let (mut h0, mut h1): (u32, u32) = (0xa53c_965a, 0x5ca6_953a);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &c in key {
        let t = u32::from(c);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// `hash_crc32` of HAProxy's `hash.c` (the Ethernet/zlib CRC-32).
pub fn crc32(key: &[u8]) -> u32 {
    let mut hash = !0u32;
    for &c in key {
        hash ^= u32::from(c);
        for _ in 0..8 {
            hash = (hash >> 1) ^ if hash & 1 != 0 { 0xedb8_8320 } else { 0 };
        }
    }
    !hash
}

/// HAProxy's `gen_hash`, then `full_hash` with `avalanche`.
fn hash(ht: HashType, key: &[u8]) -> u32 {
    let h = match ht.function {
        HashFunction::Sdbm => sdbm(key),
        HashFunction::Djb2 => djb2(key),
        HashFunction::Wt6 => wt6(key),
        HashFunction::Crc32 => crc32(key),
    };
    avalanche(ht, h)
}

fn avalanche(ht: HashType, h: u32) -> u32 {
    if ht.avalanche { full_hash(h) } else { h }
}

/// What a hashing algorithm found to hash, as a hash; `Missing` when the request lacks it
/// (no such parameter, header): the server is then taken in turn from the map or ring,
/// as HAProxy's `map_get_server_rr` / `chash_get_next_server` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Not a hashing algorithm: the key is not looked at.
    Unused,
    Hash(u32),
    Missing,
}

impl Key {
    /// The key of a connection from `src` (`balance source`; any other algorithm: unused).
    /// As `get_server_sh`: the address's 32-bit words in network order, XORed together (an
    /// IPv6 address folds into one word), through `full_hash` with `avalanche` only (the
    /// hash function is not applied).
    pub fn source(balance: &Balance, ht: HashType, src: IpAddr) -> Key {
        if *balance != Balance::Source {
            return Key::Unused;
        }
        let folded = match src {
            IpAddr::V4(v4) => u32::from(v4),
            IpAddr::V6(v6) => v6
                .octets()
                .chunks_exact(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |h, w| h ^ w),
        };
        Key::Hash(avalanche(ht, folded))
    }

    /// The key of `bytes` (`balance hash`'s sample as binary), as `gen_hash`; none: missing.
    pub fn of_bytes(ht: HashType, bytes: Option<&[u8]>) -> Key {
        bytes.map_or(Key::Missing, |b| Key::Hash(hash(ht, b)))
    }

    /// The key of an HTTP request: its URI (the request line's, as received), headers and
    /// (`balance url_param`, a POST) the start of its body as it was buffered.
    pub fn request<'h>(
        balance: &Balance,
        ht: HashType,
        src: IpAddr,
        uri: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        body: Option<&[u8]>,
    ) -> Key {
        let found = match balance {
            Balance::Uri(opts) => Some(uri_part(uri.as_bytes(), *opts)),
            Balance::UrlParam(name) => url_param(uri.as_bytes(), name.as_bytes())
                .or_else(|| body.and_then(|b| url_param_in_body(b, name.as_bytes()))),
            Balance::Hdr { name, domain_only } => {
                header_value(headers, name).map(|v| if *domain_only { domain(v) } else { v })
            }
            _ => return Key::source(balance, ht, src),
        };
        found.map_or(Key::Missing, |k| Key::Hash(hash(ht, k)))
    }
}

/// The part of `uri` `balance uri` hashes, as `get_server_uh` (with `path-only`, after
/// `http_get_path`).
fn uri_part(uri: &[u8], opts: UriHash) -> &[u8] {
    let uri = if opts.path_only { path(uri) } else { uri };
    let uri = if opts.len > 0 && uri.len() > opts.len {
        &uri[..opts.len]
    } else {
        uri
    };
    let mut slashes = 0;
    let end = uri
        .iter()
        .position(|&c| {
            if c == b'/' {
                slashes += 1;
                opts.depth > 0 && slashes == opts.depth + 1
            } else {
                c == b'?' && !opts.whole
            }
        })
        .unwrap_or(uri.len());
    &uri[..end]
}

/// HAProxy's `http_get_path`: from the first `/` after an absolute URI's scheme and
/// authority (an origin-form URI is all path); empty when there is none.
fn path(uri: &[u8]) -> &[u8] {
    let mut at = 0;
    match uri.first() {
        None | Some(b'*') => return b"",
        Some(c) if c.is_ascii_alphabetic() => {
            at = 1;
            while uri
                .get(at)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            {
                at += 1;
            }
            if uri.get(at..at + 3) != Some(b"://") {
                return b"";
            }
            at += 3;
        }
        Some(_) => {}
    }
    match uri[at..].iter().position(|&c| c == b'/') {
        Some(slash) => &uri[at + slash..],
        None => b"",
    }
}

/// The value of query parameter `name`, as `get_server_ph` finds it: after the `?`, at
/// the start of the query or after a `&`, `name=` then up to the next `&` (may be empty).
fn url_param<'u>(uri: &'u [u8], name: &[u8]) -> Option<&'u [u8]> {
    let question = uri.iter().position(|&c| c == b'?')?;
    let mut params = &uri[question + 1..];
    while params.len() > name.len() {
        if params[name.len()] == b'=' && params.starts_with(name) {
            let value = &params[name.len() + 1..];
            let end = value.iter().position(|&c| c == b'&').unwrap_or(value.len());
            return Some(&value[..end]);
        }
        let amp = params.iter().position(|&c| c == b'&')?;
        params = &params[amp + 1..];
    }
    None
}

/// The value of parameter `name` in a POST's `body` (what of it was buffered), as
/// `get_server_ph_post` reads it: the value runs to the next `&` or the body's end, unless
/// its first byte is not a token character (then: a blank ends it there, empty; anything
/// else is no parameter at all, the body not being a form). Nothing else of the body is
/// checked, its content type neither.
fn url_param_in_body<'b>(body: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    let mut params = body;
    while params.len() > name.len() {
        if params[name.len()] == b'=' && params.starts_with(name) {
            let value = &params[name.len() + 1..];
            let end = value.iter().position(|&c| c == b'&').unwrap_or(value.len());
            return match value.first() {
                Some(&c) if end > 0 && !super::http::is_tchar(c) => {
                    matches!(c, b' ' | b'\t' | b'\r' | b'\n').then_some(&value[..0])
                }
                _ => Some(&value[..end]),
            };
        }
        let amp = params.iter().position(|&c| c == b'&')?;
        params = &params[amp + 1..];
    }
    None
}

/// The first value of header `name` (HAProxy's `http_find_header` without `full`: values
/// split at commas, blanks trimmed); None when absent or empty, as `get_server_hh` falls
/// back to round robin then.
fn header_value<'h>(
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    name: &str,
) -> Option<&'h [u8]> {
    let (_, value) = headers
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    let first = value.split(',').next().unwrap_or("");
    let first = first.trim_matches([' ', '\t']);
    (!first.is_empty()).then_some(first.as_bytes())
}

/// `use_domain_only`, as `get_server_hh` walks the value backwards: the label before the
/// last dot ("example" of "www.example.com"); the whole value without a dot.
fn domain(v: &[u8]) -> &[u8] {
    let (mut at, mut end, mut in_domain) = (v.len(), v.len(), false);
    while at > 0 {
        if in_domain {
            if v[at - 1] == b'.' {
                break;
            }
        } else if v.get(at) == Some(&b'.') {
            end = at;
            in_domain = true;
        }
        at -= 1;
    }
    &v[at..end]
}

/// A server as the hash tables see it: its index in the backend, id (HAProxy's `puid`),
/// and whether it is a backup; `weight`: its effective weight when usable, else 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub index: usize,
    pub puid: u32,
    pub backup: bool,
    pub weight: u32,
}

/// The servers a hash may pick and the table it picks in, rebuilt when a server's state or
/// weight changes (HAProxy's `recount_servers`, `update_backend_weight`, then
/// `recalc_server_map` or the ring's updates).
#[derive(Debug, Default)]
pub struct Table {
    /// The members the table was built from (compared to decide a rebuild).
    members: Vec<Member>,
    /// `tot_used`: how many servers the group in use has (1: nothing is hashed).
    pub used: usize,
    /// `lbprm.fbck`: the first usable backup, used alone without `option allbackups`.
    first_backup: Option<usize>,
    /// Map-based: `map.srv`, `tot_weight` entries of server indexes.
    map: Vec<usize>,
    /// `map.rr_idx`: where round robin over the map goes on.
    rr_idx: usize,
    /// Consistent: the ring's points, sorted by key.
    ring: Vec<Point>,
    /// `chash.last`: the point round robin over the ring reached.
    last: Option<Point>,
    /// Each server's most points on the ring so far (HAProxy's `lb_nodes_tot`, by index):
    /// growing past it, HAProxy takes all of the server's points out and puts them back.
    most_points: Vec<u32>,
}

/// One point of the consistent-hash ring (HAProxy's `tree_occ`): ordered by key, then by
/// server and point number (key collisions are rare and resolved alike every time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    key: u32,
    server: usize,
    node: u32,
}

impl Table {
    /// Whether `members` differ from those the table was built from.
    pub fn is_stale(&self, members: impl ExactSizeIterator<Item = Member>) -> bool {
        members.len() != self.members.len() || members.zip(&self.members).any(|(a, b)| a != *b)
    }

    /// Builds the table from every server of the backend, usable or not, in order.
    pub fn rebuild(&mut self, members: Vec<Member>, ht: HashType, allbackups: bool) {
        let usable = |backup: bool| {
            members
                .iter()
                .filter(move |m| m.backup == backup && m.weight > 0)
        };
        let actives = usable(false).count();
        let backups = usable(true).count();
        self.first_backup = usable(true).next().filter(|_| !allbackups).map(|m| m.index);
        // `update_backend_weight`: actives, else the first backup alone, else all backups.
        let (group_backup, used, tot): (bool, usize, u32) = if actives > 0 {
            (false, actives, usable(false).map(|m| m.weight).sum())
        } else if let Some(first) = usable(true).next().filter(|_| !allbackups) {
            (true, 1, first.weight)
        } else {
            (true, backups, usable(true).map(|m| m.weight).sum())
        };
        self.used = used;
        let group: Vec<Member> = usable(group_backup).copied().collect();
        if ht.consistent {
            self.ring = ring(&group);
            self.map.clear();
            self.move_last(&group);
        } else {
            self.map = server_map(&group, tot as usize);
            self.ring.clear();
        }
        self.members = members;
    }

    /// Moves `last` as HAProxy's ring updates do (`chash_dequeue_srv`,
    /// `chash_queue_dequeue_srv`): off a point taken out, to the next one that stays; off
    /// every point of a server that grew past its most points (all taken out, then
    /// re-allocated).
    fn move_last(&mut self, group: &[Member]) {
        if let Some(last) = self.last {
            let most = self.most_points.get(last.server).copied().unwrap_or(0);
            let regrown = group
                .iter()
                .any(|m| m.index == last.server && m.weight > most);
            let n = self.ring.len();
            let after = self.ring.partition_point(|p| *p <= last);
            self.last = if self.ring.binary_search(&last).is_ok() && !regrown {
                Some(last)
            } else {
                (0..n)
                    .map(|k| self.ring[(after + k) % n])
                    .find(|p| !(regrown && p.server == last.server))
            };
        }
        for m in group {
            if self.most_points.len() <= m.index {
                self.most_points.resize(m.index + 1, 0);
            }
            self.most_points[m.index] = self.most_points[m.index].max(m.weight);
        }
    }

    /// The server (index) for `hash` (None: no server is usable); `avoid`, and servers not
    /// `eligible` (`hash-balance-factor`, see [`Table::within_bound`]), are skipped on the
    /// ring, as `chash_get_server_hash` does (the map skips none).
    pub fn by_hash(
        &self,
        hash: u32,
        avoid: Option<usize>,
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if self.map.is_empty() && self.ring.is_empty() {
            return None;
        }
        if self.ring.is_empty() {
            // `map_get_server_hash`
            return Some(self.map[hash as usize % self.map.len()]);
        }
        if let Some(first) = self.first_backup.filter(|_| self.is_backup_ring()) {
            return Some(first);
        }
        Some(self.ring[self.closest(hash, avoid, eligible)].server)
    }

    /// HAProxy's `chash_server_is_eligible`: whether server `index`, serving `served`
    /// requests while its backend serves `backend_served`, is under its share of `factor`
    /// percent of the load. The slots, `(backend_served + 1) * factor / 100` rounded up, are
    /// shared by effective weight, the remainder by the server's place in the cumulated
    /// weights of its group (`recount_servers`' `cumulative_weight`); at least one each.
    pub fn within_bound(
        &self,
        index: usize,
        factor: u32,
        backend_served: u64,
        served: u64,
    ) -> bool {
        let Some(me) = self.members.iter().find(|m| m.index == index) else {
            return true;
        };
        let group = || (self.members.iter()).filter(|m| m.backup == me.backup && m.weight > 0);
        let before: u64 = group()
            .take_while(|m| m.index != index)
            .map(|m| u64::from(m.weight))
            .sum();
        let total: u64 = group().map(|m| u64::from(m.weight)).sum::<u64>().max(1);
        let weight = u64::from(me.weight);
        let slots = ((backend_served + 1) * u64::from(factor)).div_ceil(100);
        let (per_weight, remainder) = (slots / total, slots % total);
        let mine = weight * per_weight + (before + weight) * remainder / total
            - before * remainder / total;
        served < mine.max(1)
    }

    /// Whether the ring holds backups: with only the first backup in use, HAProxy's
    /// `chash_get_server_hash` returns it without looking at the ring.
    fn is_backup_ring(&self) -> bool {
        !self.members.iter().any(|m| !m.backup && m.weight > 0)
    }

    /// `chash_get_server_hash`: the point closest to `hash` (the one before it on a tie),
    /// then on along the ring past the points of `avoid` and of servers not `eligible`.
    fn closest(&self, hash: u32, avoid: Option<usize>, eligible: impl Fn(usize) -> bool) -> usize {
        let n = self.ring.len();
        let next = self.ring.partition_point(|p| p.key < hash) % n;
        let prev = (next + n - 1) % n;
        let dp = hash.wrapping_sub(self.ring[prev].key);
        let dn = self.ring[next].key.wrapping_sub(hash);
        let mut at = if dp <= dn { prev } else { next };
        let mut wrapped = 0;
        while Some(self.ring[at].server) == avoid || !eligible(self.ring[at].server) {
            at += 1;
            if at == n {
                at = 0;
                wrapped += 1;
                // HAProxy's protection against looping.
                if wrapped > 1 {
                    break;
                }
            }
        }
        at
    }

    /// The next server in turn when there is nothing to hash, skipping those `can_take`
    /// refuses and `avoid` (taken last, if nothing else): `map_get_server_rr` over the map,
    /// `chash_get_next_server` along the ring.
    pub fn next(
        &mut self,
        avoid: Option<usize>,
        can_take: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if self.ring.is_empty() {
            return self.next_in_map(avoid, can_take);
        }
        if let Some(first) = self.first_backup.filter(|_| self.is_backup_ring()) {
            return Some(first);
        }
        self.next_on_ring(avoid, can_take)
    }

    fn next_in_map(
        &mut self,
        avoid: Option<usize>,
        can_take: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let tot = self.map.len();
        if tot == 0 {
            return None;
        }
        if self.rr_idx >= tot {
            self.rr_idx = 0;
        }
        let mut at = self.rr_idx;
        let mut avoided = None;
        loop {
            let server = self.map[at];
            at += 1;
            if can_take(server) {
                avoided = Some((server, at));
                if Some(server) != avoid {
                    self.rr_idx = at;
                    return Some(server);
                }
            }
            if at == tot {
                at = 0;
            }
            if at == self.rr_idx {
                break;
            }
        }
        let (server, at) = avoided?;
        self.rr_idx = at;
        Some(server)
    }

    fn next_on_ring(
        &mut self,
        avoid: Option<usize>,
        can_take: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let n = self.ring.len();
        // Where `last` is ([`Table::move_last`] keeps it on the ring); the walk starts after.
        let mut at = self
            .last
            .map(|last| self.ring.partition_point(|p| *p < last) % n);
        let mut stop = at;
        let mut avoided = None;
        loop {
            let node = match at {
                Some(i) => (i + 1) % n,
                None => 0,
            };
            at = Some(node);
            self.last = Some(self.ring[node]);
            let stop_at = *stop.get_or_insert(node);
            let server = self.ring[node].server;
            if can_take(server) {
                if Some(server) != avoid {
                    return Some(server);
                }
                avoided = Some(node);
            }
            if node == stop_at {
                break;
            }
        }
        let node = avoided?;
        self.last = Some(self.ring[node]);
        Some(self.ring[node].server)
    }
}

/// HAProxy's `recalc_server_map`: `tot` entries, each to the server whose accumulated
/// weight is the highest, declaration order breaking ties, which interleaves the servers
/// in proportion to their weights.
fn server_map(group: &[Member], tot: usize) -> Vec<usize> {
    if group.is_empty() || tot == 0 {
        return Vec::new();
    }
    let tot_i = tot as i64;
    let mut score = vec![0i64; group.len()];
    let mut map = Vec::with_capacity(tot);
    for _ in 0..tot {
        if tot == 1 {
            map.push(group[0].index);
            break;
        }
        let mut best: Option<(usize, i64)> = None;
        for (i, m) in group.iter().enumerate() {
            score[i] += i64::from(m.weight);
            let v = (score[i] + tot_i) / tot_i;
            if best.is_none_or(|(_, max)| v > max) {
                best = Some((i, v));
            }
        }
        let (i, _) = best.unwrap_or((0, 0));
        map.push(group[i].index);
        score[i] -= tot_i;
    }
    map
}

/// HAProxy's consistent-hash ring (`chash_init_server_tree`, `chash_queue_dequeue_srv`):
/// each server has its effective weight in points, point `n` of server id `puid` at key
/// `full_hash(puid * SRV_EWGHT_RANGE + n)`.
fn ring(group: &[Member]) -> Vec<Point> {
    let mut points: Vec<Point> = group
        .iter()
        .flat_map(|m| {
            (0..m.weight).map(move |node| Point {
                key: full_hash(m.puid.wrapping_mul(SRV_EWGHT_RANGE).wrapping_add(node)),
                server: m.index,
                node,
            })
        })
        .collect();
    points.sort_unstable();
    points
}

/// A server's effective weight in the table for user weight `weight` (HAProxy's `eweight`):
/// 16 points per unit on the ring; on the map, the weight divided by the greatest common
/// divisor of the configured weights `gcd` (`init_server_map`'s `wmult`), rounded up.
pub fn effective_weight(ht: HashType, weight: u32, gcd: u32) -> u32 {
    if ht.consistent {
        weight * BE_WEIGHT_SCALE
    } else {
        weight.div_ceil(gcd.max(1))
    }
}

/// `init_server_map`'s `wmult`: the greatest common divisor of the non-zero configured
/// weights (1 without any).
pub fn weights_gcd(weights: impl IntoIterator<Item = u32>) -> u32 {
    let mut weights = weights.into_iter().skip_while(|&w| w == 0);
    let Some(mut pgcd) = weights.next() else {
        return 1;
    };
    for mut w in weights {
        if pgcd <= 1 {
            break;
        }
        while w != 0 {
            (pgcd, w) = (w, pgcd % w);
        }
    }
    pgcd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known values, computed with HAProxy 2.6's C definitions (`hash.c`, `full_hash`).
    #[test]
    fn hash_functions_match_haproxys_c() {
        assert_eq!(sdbm(b""), 0);
        assert_eq!(djb2(b""), 5381);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        for (key, s, d, w, c) in KNOWN {
            assert_eq!(
                (sdbm(key), djb2(key), wt6(key), crc32(key)),
                (*s, *d, *w, *c),
                "{key:?}"
            );
        }
        for (input, out) in KNOWN_FULL_HASH {
            assert_eq!(full_hash(*input), *out, "{input}");
        }
    }

    /// Computed by a C program with HAProxy 2.6's definitions of `hash_sdbm`, `hash_djb2`,
    /// `hash_wt6`, `hash_crc32` (`src/hash.c`) and `full_hash`: (key, sdbm, djb2, wt6, crc32).
    const KNOWN: &[(&[u8], u32, u32, u32, u32)] = &[
        (b"a", 0x00000061, 0x0002b606, 0x714bf225, 0xe8b7be43),
        (b"/", 0x0000002f, 0x0002b5d4, 0x7073cea5, 0x79d3d2d4),
        (
            b"/index.html",
            0x33242976,
            0xe114b9cf,
            0x3101077e,
            0xea224b42,
        ),
        (
            b"/static/img/logo.png?v=3",
            0xa8f5f2f1,
            0xbe037c00,
            0x62e2b472,
            0x19b71834,
        ),
        (
            b"www.example.com",
            0xa204b186,
            0xa9788331,
            0x248109f7,
            0x2ed642bb,
        ),
        (
            b"user-12345",
            0xac01a751,
            0x4c5c2150,
            0x00175584,
            0x6fdd6d8e,
        ),
        (
            b"\xff\x80 binary",
            0x1beed2a0,
            0xa686bb49,
            0x68e4cbdc,
            0x44e2ec05,
        ),
    ];
    const KNOWN_FULL_HASH: &[(u32, u32)] = &[
        (0x00000000, 0xab4ed927),
        (0x00000001, 0x348681b6),
        (0x00001000, 0x49c2008b),
        (0x00001001, 0xa4972c87),
        (0x7f000001, 0x8a1b584b),
        (0xffffffff, 0x7e64c182),
        (0x075bcd15, 0x99ab9e21),
    ];

    fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Member {
                index: i,
                puid: i as u32 + 1,
                backup: false,
                weight: w,
            })
            .collect()
    }

    #[test]
    fn the_map_interleaves_servers_by_weight() {
        // The maps `recalc_server_map` fills (its loop run in C for these weights).
        assert_eq!(server_map(&members(&[1, 2, 3]), 6), [0, 2, 1, 2, 1, 2]);
        assert_eq!(server_map(&members(&[1, 1]), 2), [0, 1]);
        assert_eq!(
            server_map(&members(&[1, 2, 3, 5]), 11),
            [0, 1, 3, 2, 3, 1, 3, 2, 3, 2, 3]
        );
    }

    #[test]
    fn the_keys_are_found_as_haproxy_finds_them() {
        let all = UriHash::default();
        assert_eq!(uri_part(b"/a/b?x=1", all), b"/a/b");
        let whole = UriHash { whole: true, ..all };
        assert_eq!(uri_part(b"/a/b?x=1", whole), b"/a/b?x=1");
        let depth = UriHash { depth: 1, ..all };
        assert_eq!(uri_part(b"/a/b/c", depth), b"/a");
        let len = UriHash { len: 3, ..all };
        assert_eq!(uri_part(b"/abcdef", len), b"/ab");
        let path_only = UriHash {
            path_only: true,
            ..all
        };
        assert_eq!(uri_part(b"http://h:80/p?q", path_only), b"/p");
        assert_eq!(uri_part(b"http://h", path_only), b"");
        assert_eq!(url_param(b"/p?a=1&id=42&b", b"id"), Some(&b"42"[..]));
        assert_eq!(url_param(b"/p?id=&b", b"id"), Some(&b""[..]));
        assert_eq!(url_param(b"/p?xid=1", b"id"), None);
        assert_eq!(url_param(b"/p?id", b"id"), None);
        // A POST's body, as `get_server_ph_post` reads it.
        assert_eq!(url_param_in_body(b"a=1&id=42&b", b"id"), Some(&b"42"[..]));
        assert_eq!(url_param_in_body(b"id=4 2", b"id"), Some(&b"4 2"[..]));
        assert_eq!(url_param_in_body(b"id=\x01b", b"id"), None);
        assert_eq!(url_param_in_body(b"id= b", b"id"), Some(&b""[..]));
        assert_eq!(url_param_in_body(b"id=&x", b"id"), Some(&b""[..]));
        assert_eq!(url_param_in_body(b"id=", b"id"), Some(&b""[..]));
        assert_eq!(url_param_in_body(b"x=1", b"id"), None);
        assert_eq!(domain(b"www.example.com"), b"example");
        assert_eq!(domain(b"example.com"), b"example");
        assert_eq!(domain(b"localhost"), b"localhost");
        let headers = [("X-Key", " a , b")];
        assert_eq!(header_value(headers, "x-key"), Some(&b"a"[..]));
        assert_eq!(header_value([("X-Key", "")], "x-key"), None);
    }

    #[test]
    fn a_source_address_is_hashed_as_get_server_sh_does() {
        let plain = HashType::default();
        let v4 = IpAddr::from([192, 0, 2, 7]);
        assert_eq!(
            Key::source(&Balance::Source, plain, v4),
            Key::Hash(0xc000_0207)
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            Key::source(&Balance::Source, plain, v6),
            Key::Hash(0x2001_0db9)
        );
        let aval = HashType {
            avalanche: true,
            ..plain
        };
        assert_eq!(
            Key::source(&Balance::Source, aval, v6),
            Key::Hash(full_hash(0x2001_0db9))
        );
        assert_eq!(Key::source(&Balance::RoundRobin, plain, v4), Key::Unused);
    }

    /// Round robin on the ring until the point it reached is one of `server`'s.
    fn walk_to(t: &mut Table, server: usize) -> Point {
        while t.next(None, |_| true) != Some(server) {}
        t.last.expect("a point reached")
    }

    #[test]
    fn round_robin_moves_on_as_haproxys_ring_updates_move_it() {
        let ht = HashType {
            consistent: true,
            ..Default::default()
        };
        let mut t = Table::default();
        t.rebuild(members(&[16, 16, 16]), ht, false);
        // Its point taken out (the server disabled): on to the next point that stays,
        // and the walk goes on after that one, even once the server is back.
        let last = walk_to(&mut t, 1);
        t.rebuild(members(&[16, 0, 16]), ht, false);
        let moved = t.last.expect("moved, not lost");
        assert_eq!(
            moved,
            *t.ring.iter().find(|p| **p > last).unwrap_or(&t.ring[0])
        );
        t.rebuild(members(&[16, 16, 16]), ht, false);
        assert_eq!(t.last, Some(moved));
        let at = t.ring.binary_search(&moved).expect("on the ring");
        let then = t.ring[(at + 1) % t.ring.len()].server;
        assert_eq!(t.next(None, |_| true), Some(then));
        // A weight raised past the server's most points: off all of its points.
        let last = walk_to(&mut t, 2);
        t.rebuild(members(&[16, 16, 32]), ht, false);
        let moved = t.last.expect("moved, not lost");
        let n = t.ring.len();
        let from = t.ring.partition_point(|p| *p <= last);
        let expected = (0..n)
            .map(|k| t.ring[(from + k) % n])
            .find(|p| p.server != 2);
        assert_eq!(Some(moved), expected);
        // Back to a weight it had: its remaining points stay where they were.
        let last = walk_to(&mut t, 2);
        t.rebuild(members(&[16, 16, 16]), ht, false);
        if last.node < 16 {
            assert_eq!(t.last, Some(last));
        }
    }

    #[test]
    fn the_ring_walks_on_past_an_avoided_server() {
        let mut t = Table::default();
        let ht = HashType {
            consistent: true,
            ..Default::default()
        };
        let ms = members(&[16, 32]);
        t.rebuild(ms, ht, false);
        for h in [0, 1 << 20, u32::MAX / 3, u32::MAX] {
            let s = t.by_hash(h, None, |_| true).unwrap();
            assert_ne!(t.by_hash(h, Some(s), |_| true), Some(s));
        }
        // Round robin along the ring visits both.
        let seen: std::collections::BTreeSet<usize> =
            (0..200).filter_map(|_| t.next(None, |_| true)).collect();
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn bounded_loads_share_slots_by_weight_as_chash_server_is_eligible() {
        let mut t = Table::default();
        let ht = HashType {
            consistent: true,
            ..HashType::default()
        };
        // Weights 1, 1, 2 (16 points each per unit).
        t.rebuild(members(&[16, 16, 32]), ht, false);
        // Nothing served: one slot for the first request, shared by weight (at least one).
        assert!((0..3).all(|i| t.within_bound(i, 150, 0, 0)));
        assert!(!t.within_bound(0, 150, 0, 1));
        // 7 served, factor 150: 12 slots over 64 of weight, remainder by cumulated weight:
        // 3, 3 and 6.
        assert!(t.within_bound(0, 150, 7, 2) && !t.within_bound(0, 150, 7, 3));
        assert!(t.within_bound(1, 150, 7, 2) && !t.within_bound(1, 150, 7, 3));
        assert!(t.within_bound(2, 150, 7, 5) && !t.within_bound(2, 150, 7, 6));
        // The walk skips servers over their bound.
        let h = 0x1234_5678;
        let first = t.by_hash(h, None, |_| true).unwrap();
        let next = t.by_hash(h, None, |i| i != first).unwrap();
        assert_ne!(first, next);
    }
}
