//! HAProxy's maps: the `map(<file>[,<default>])` converter and its `map_<match>[_<output>]`
//! family, their files, and the `show|get|add|set|del|clear map` commands of the runtime API.
//!
//! - [`MapFile`]: HAProxy's pattern reference: one per file however many converters use it,
//!   the `key value` entries in file order, and one [`Expr`] per way it is matched (match
//!   type and output type), so a change made on the CLI reaches every converter at their
//!   next lookup. Files are read once, at load, as HAProxy's `pat_ref_read_from_file_smp`.
//! - [`MapConv`]: one converter: its file, which of its expressions, its default.
//! - [`command`]: the runtime API's map commands with HAProxy 2.6's answers, versions
//!   included: `prepare map` starts one, `add map @N` fills it unseen, `commit map @N`
//!   makes it the one lookups see (entries carry their version; every version is indexed,
//!   as in HAProxy's trees, and only the current one's match). [`add_payload`]: `add map MAP <<` and its lines (the session
//!   reader in [`super::api`] gathers them).
//!
//! Lookups follow HAProxy's indexes: `str` an exact key (the first written wins), `beg` and
//! `ip` the longest key (prefix or network) that matches, the others the first entry in order
//! (`sub`, `dir`, `dom`, `end`, `reg`, `regm`, `int`; `sub`, `end`, `reg` answer through
//! the per-thread lookup [`cache`]). Adding or deleting an entry touches only its own place
//! in the lists and indexes; big clears and commits delete in batches, releasing the lock
//! between them. The process's maps are kept in one
//! registry, as HAProxy's `pattern_reference` list, which numbers them for `show map`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::config::converter::SampleType;
use crate::config::model::Place;
use crate::config::pcre::{self, Flags, Regex};

/// How a converter matches its input against the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Str,
    Beg,
    Sub,
    Dir,
    Dom,
    End,
    Reg,
    /// `map_regm`: a regex whose groups the value refers to as `\1`...
    Regm,
    Int,
    Ip,
}

impl Match {
    fn name(self) -> &'static str {
        match self {
            Match::Str => "str",
            Match::Beg => "beg",
            Match::Sub => "sub",
            Match::Dir => "dir",
            Match::Dom => "dom",
            Match::End => "end",
            Match::Reg => "reg",
            Match::Regm => "regm",
            Match::Int => "int",
            Match::Ip => "ip",
        }
    }

    /// HAProxy's indexed match types (the others are lists, read in order).
    fn indexed(self) -> bool {
        matches!(self, Match::Str | Match::Beg | Match::Ip)
    }
}

/// What a converter gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Str,
    Int,
    Ip,
}

/// A value of a map entry, or a converter's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Vec<u8>),
    Int(i64),
    Ip(IpAddr),
}

impl Value {
    /// HAProxy's `map_parse_str|int|ip`; None: "unable to parse".
    fn parse(out: Output, text: &str) -> Option<Value> {
        Some(match out {
            Output::Str => Value::Str(crate::bytestr::to_bytes(text).into_owned()),
            Output::Int => Value::Int(parse_int_value(text)?),
            Output::Ip => Value::Ip(map_ip_value(text)?),
        })
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "str",
            Value::Int(_) => "sint",
            Value::Ip(IpAddr::V4(_)) => "ipv4",
            Value::Ip(IpAddr::V6(_)) => "ipv6",
        }
    }
}

/// HAProxy's `map_parse_ip`: `buf2ip` (four decimal octets, anything after them ignored),
/// else an IPv6 address.
fn map_ip_value(text: &str) -> Option<IpAddr> {
    buf2ip(text.as_bytes())
        .map(IpAddr::V4)
        .or_else(|| text.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
}

/// HAProxy's `buf2ip`: digits and dots up to the first other byte, exactly four octets of
/// at most 255 (leading zeros allowed).
pub fn buf2ip(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut count, mut saw_digit) = (0usize, false);
    for &c in text {
        match c {
            b'0'..=b'9' => {
                if !saw_digit {
                    count += 1;
                    if count > 4 {
                        return None;
                    }
                    saw_digit = true;
                }
                let n = u32::from(octets[count - 1]) * 10 + u32::from(c - b'0');
                octets[count - 1] = u8::try_from(n).ok()?;
            }
            b'.' if saw_digit && count < 4 => saw_digit = false,
            b'.' => return None,
            _ => break,
        }
    }
    (count == 4).then(|| Ipv4Addr::from(octets))
}

/// The IPv4 address HAProxy's `pat_match_ip` looks an IPv6 one up as among IPv4 patterns:
/// `::ffff:a.b.c.d`, `::a.b.c.d` (so `::1` is 0.0.0.1) and 6to4's `2002:AABB:CCDD::`.
pub fn v6_as_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = a.to_bits();
    let low = (bits & 0xffff_ffff) as u32;
    match bits >> 32 {
        0 | 0xffff => Some(Ipv4Addr::from(low)),
        _ if bits >> 112 == 0x2002 => Some(Ipv4Addr::from((bits >> 80) as u32)),
        _ => None,
    }
}

/// The address `ip` is also looked up as in the other family's patterns, as HAProxy's
/// `pat_match_ip`: IPv4 as `::ffff:a.b.c.d`, IPv6 by [`v6_as_v4`].
pub fn other_family(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => Some(IpAddr::V6(a.to_ipv6_mapped())),
        IpAddr::V6(a) => v6_as_v4(a).map(IpAddr::V4),
    }
}

/// HAProxy's `map_parse_int`: `read_int64` (a sign and digits, saturated at the 64-bit
/// bounds; empty is 0), which must read the whole text.
fn parse_int_value(text: &str) -> Option<i64> {
    crate::runtime::convert::read_whole_int64(text)
}

/// What a converter looks up.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    Ip(IpAddr),
}

/// A key compiled for one match type.
#[derive(Debug, Clone)]
enum Key {
    Bytes(Vec<u8>),
    Regex(Regex),
    Range(i64, i64),
    Net(IpAddr, u8),
    /// An IPv4 network with a mask that is not a prefix (`10.0.0.0/255.0.255.0`): HAProxy
    /// keeps it out of its tree, in a list read after it.
    Masked(u32, u32),
}

/// HAProxy's `pat_parse_*` of `text` for `kind`, with its message.
fn parse_key(kind: Match, text: &str) -> Result<Key, String> {
    Ok(match kind {
        Match::Reg | Match::Regm => {
            let flags = if kind == Match::Regm {
                Flags::CAPTURE
            } else {
                Flags::MATCH
            };
            Key::Regex(Regex::new(text, flags).map_err(|e| e.to_string())?)
        }
        Match::Int => int_range(text)?,
        // An empty mask (`10.0.0.0/`) is refused by HAProxy's `str2net`.
        Match::Ip => match crate::config::values::network(text).filter(|_| !text.ends_with('/')) {
            Some(net) => Key::Net(masked(net.addr, net.prefix), net.prefix),
            None => odd_mask(text)
                .ok_or_else(|| format!("'{text}' is not a valid IPv4 or IPv6 address"))?,
        },
        _ => Key::Bytes(crate::bytestr::to_bytes(text).into_owned()),
    })
}

/// HAProxy's `pat_parse_int`: `N`, or a range around the first `:` or `-` (`N:M`, `:M`,
/// `N:`, so `-5` is "up to 5"), each number read by [`key_number`].
fn int_range(text: &str) -> Result<Key, String> {
    let Some(at) = text.find([':', '-']) else {
        let n = key_number(text).ok_or_else(|| format!("'{text}' is not a number"))?;
        return Ok(Key::Range(n, n));
    };
    let bad = || format!("'{text}' is not a valid number range");
    let (low, high) = (&text[..at], &text[at + 1..]);
    let low = match low {
        "" if !high.is_empty() => i64::MIN,
        l => key_number(l).ok_or_else(bad)?,
    };
    let high = match high {
        "" => i64::MAX,
        h => key_number(h).ok_or_else(bad)?,
    };
    if low > high {
        return Err(bad());
    }
    Ok(Key::Range(low, high))
}

/// HAProxy's `strl2llrc`: an optional `-` and at least one digit, nothing else.
fn key_number(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `a.b.c.d/m.m.m.m` with a mask that is not a prefix.
fn odd_mask(text: &str) -> Option<Key> {
    let (addr, mask) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let mask = mask.parse::<Ipv4Addr>().ok()?.to_bits();
    Some(Key::Masked(addr.to_bits() & mask, mask))
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(a.to_bits() & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(a.to_bits() & mask))
        }
    }
}

/// One line of a map: HAProxy's `pat_ref_elt`.
#[derive(Debug, Clone)]
struct Entry {
    /// Shown by `show map` as HAProxy shows an element's address.
    id: u64,
    /// Its line in the file (0: added on the CLI), to name it in errors.
    line: usize,
    /// The version it belongs to (`prepare map`).
    version: u32,
    key: String,
    value: String,
}

/// One entry compiled for an [`Expr`].
#[derive(Debug, Clone)]
struct Compiled {
    key: Key,
    value: Value,
    /// Its entry's version: only those of the expression's current one match.
    version: u32,
}

/// An indexed key's length: whether it is an IPv6 network, and its length or prefix.
type Length = (bool, usize);

/// The file matched one way: HAProxy's pattern expression, with its index.
#[derive(Debug)]
struct Expr {
    kind: Match,
    out: Output,
    /// Names the expression in the lookup cache (unique in the process).
    uid: u64,
    /// Bumped whenever which entry an input finds may change (HAProxy's `revision`), so
    /// cached answers of an older revision are not used.
    revision: u64,
    /// The map's version lookups see: switching it is a commit, as HAProxy's `curr_gen`
    /// (indexes hold every version, as HAProxy's trees do, and skip the others).
    current: u32,
    /// The file's entries compiled, by entry id (ids grow, so this is the file's order):
    /// adding or deleting one touches only its own place, as in HAProxy's lists.
    compiled: BTreeMap<u64, Compiled>,
    /// `str`/`beg`: the entries of each key; `ip`: of each network; (id, version) in id
    /// order, the first of the current version wins, so deleting it exposes the next as
    /// HAProxy's tree does.
    by_key: HashMap<Vec<u8>, Vec<(u64, u32)>>,
    /// `beg` key lengths, `ip` prefixes (with the family), each with how many entries have
    /// it: the longest is tried first.
    lengths: BTreeMap<Length, usize>,
}

impl Expr {
    fn new(kind: Match, out: Output) -> Expr {
        static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Expr {
            kind,
            out,
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            revision: 0,
            current: 0,
            compiled: BTreeMap::new(),
            by_key: HashMap::new(),
            lengths: BTreeMap::new(),
        }
    }

    /// `e` for this expression.
    fn compile(&self, e: &Entry) -> Result<Compiled, String> {
        let key = parse_key(self.kind, &e.key)?;
        let value = Value::parse(self.out, &e.value)
            .ok_or_else(|| format!("unable to parse '{}'", e.value))?;
        Ok(Compiled {
            key,
            value,
            version: e.version,
        })
    }

    fn index_key(key: &Key) -> Option<(std::borrow::Cow<'_, [u8]>, Length)> {
        match key {
            Key::Bytes(b) => Some((b.into(), (false, b.len()))),
            Key::Net(ip, prefix) => Some((
                net_bytes(*ip, *prefix).into(),
                (ip.is_ipv6(), usize::from(*prefix)),
            )),
            _ => None,
        }
    }

    /// Adds entry `id`, compiled as `c`, to the list and to the index.
    fn insert(&mut self, id: u64, c: Compiled) {
        self.revision += 1;
        self.index(id, c.version, &c.key);
        self.compiled.insert(id, c);
    }

    /// Removes entry `id` from the list and the index.
    fn remove(&mut self, id: u64) {
        self.revision += 1;
        if let Some(c) = self.compiled.remove(&id) {
            self.unindex(id, &c.key);
        }
    }

    /// Makes `version` the one lookups see.
    fn switch(&mut self, version: u32) {
        self.revision += 1;
        self.current = version;
    }

    fn index(&mut self, id: u64, version: u32, key: &Key) {
        if !self.kind.indexed() {
            return;
        }
        let Some((bytes, len)) = Expr::index_key(key) else {
            return;
        };
        let ids = self.by_key.entry(bytes.into_owned()).or_default();
        // Ids are mostly added in order; a commit may index older ones.
        if let Err(at) = ids.binary_search_by_key(&id, |&(i, _)| i) {
            ids.insert(at, (id, version));
            *self.lengths.entry(len).or_default() += 1;
        }
    }

    fn unindex(&mut self, id: u64, key: &Key) {
        if !self.kind.indexed() {
            return;
        }
        let Some((bytes, len)) = Expr::index_key(key) else {
            return;
        };
        let Some(ids) = self.by_key.get_mut(&*bytes) else {
            return;
        };
        let Ok(at) = ids.binary_search_by_key(&id, |&(i, _)| i) else {
            return;
        };
        ids.remove(at);
        if ids.is_empty() {
            self.by_key.remove(&*bytes);
        }
        if let Some(count) = self.lengths.get_mut(&len) {
            *count -= 1;
            if *count == 0 {
                self.lengths.remove(&len);
            }
        }
    }

    /// The first entry of the current version indexed under `bytes`.
    fn first(&self, bytes: &[u8]) -> Option<u64> {
        let ids = self.by_key.get(bytes)?;
        let (id, _) = ids.iter().find(|&&(_, v)| v == self.current)?;
        Some(*id)
    }

    /// The id of the entry `input` matches, if any.
    fn find(&self, input: Input<'_>) -> Option<u64> {
        let first_live = |hit: &dyn Fn(&Key) -> bool| {
            self.compiled
                .iter()
                .find(|(_, c)| c.version == self.current && hit(&c.key))
                .map(|(&id, _)| id)
        };
        match (self.kind, input) {
            (Match::Str, Input::Bytes(s)) => self.first(s),
            // The longest key first: HAProxy's prefix tree.
            (Match::Beg, Input::Bytes(s)) => self
                .lengths
                .keys()
                .rev()
                .find_map(|&(_, len)| self.first(s.get(..len)?)),
            (Match::Ip, Input::Ip(ip)) => self.find_ip(ip),
            (Match::Int, Input::Int(n)) => {
                first_live(&|k| matches!(*k, Key::Range(lo, hi) if lo <= n && n <= hi))
            }
            // HAProxy's list matchers that keep their answers in its LRU cache.
            (Match::Sub | Match::End | Match::Reg, Input::Bytes(s)) => {
                cache::lookup(self.uid, self.revision, s, || {
                    first_live(&|k| matches_text(self.kind, k, s))
                })
            }
            (_, Input::Bytes(s)) => first_live(&|k| matches_text(self.kind, k, s)),
            _ => None,
        }
    }

    /// The longest network holding `ip`, else the longest holding it in the other family
    /// ([`other_family`]), else the first odd mask holding its IPv4 form.
    fn find_ip(&self, ip: IpAddr) -> Option<u64> {
        let other = other_family(ip);
        let longest = |ip: IpAddr| {
            self.lengths
                .keys()
                .rev()
                .filter(|(v6, _)| *v6 == ip.is_ipv6())
                .find_map(|&(_, prefix)| {
                    // At most 128.
                    let prefix = prefix as u8;
                    self.first(&net_bytes(masked(ip, prefix), prefix))
                })
        };
        let v4 = match ip {
            IpAddr::V4(a) => Some(a.to_bits()),
            IpAddr::V6(a) => v6_as_v4(a).map(Ipv4Addr::to_bits),
        };
        let odd = || {
            let v4 = v4?;
            self.compiled
                .iter()
                .find(|(_, c)| {
                    c.version == self.current
                        && matches!(c.key, Key::Masked(net, mask) if v4 & mask == net)
                })
                .map(|(&id, _)| id)
        };
        longest(ip).or_else(|| other.and_then(longest)).or_else(odd)
    }
}

/// HAProxy's pattern cache (`tune.pattern.cache-size`, 10000 by default, one per
/// thread): the entry an input found in a list expression, so that repeated inputs do not
/// scan thousands of keys again. Keyed by the expression (hence by its match type: unlike
/// HAProxy, whose `map_sub` and `map_end` on one file share an expression and so each
/// other's answers) and the input, valid for one revision of the expression. Least
/// recently used entries go first, by generations: the recent half and the older half.
pub mod cache {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SIZE: AtomicUsize = AtomicUsize::new(10_000);

    /// `tune.pattern.cache-size`: how many answers each thread keeps (0: none).
    pub fn set_size(entries: usize) {
        SIZE.store(entries, Ordering::Relaxed);
    }

    struct Slot {
        expr: u64,
        input: Box<[u8]>,
        revision: u64,
        found: Option<u64>,
    }

    #[derive(Default)]
    struct Lru {
        hasher: RandomState,
        recent: HashMap<u64, Slot>,
        older: HashMap<u64, Slot>,
    }

    impl Lru {
        fn take(&mut self, hash: u64, expr: u64, input: &[u8], revision: u64) -> Option<Slot> {
            let fits = |s: &Slot| s.expr == expr && s.revision == revision && &*s.input == input;
            match self.recent.get(&hash) {
                Some(s) if fits(s) => return self.recent.remove(&hash),
                _ => {}
            }
            self.older.remove(&hash).filter(fits)
        }

        fn put(&mut self, hash: u64, slot: Slot, size: usize) {
            if self.recent.len() >= size.div_ceil(2) {
                self.older = std::mem::take(&mut self.recent);
            }
            self.recent.insert(hash, slot);
        }
    }

    thread_local! {
        static LRU: RefCell<Lru> = RefCell::new(Lru::default());
    }

    /// The entry `input` finds in expression `expr` at `revision`: the cached answer, else
    /// `scan`'s, then cached.
    pub(super) fn lookup(
        expr: u64,
        revision: u64,
        input: &[u8],
        scan: impl FnOnce() -> Option<u64>,
    ) -> Option<u64> {
        let size = SIZE.load(Ordering::Relaxed);
        if size == 0 {
            return scan();
        }
        LRU.with(|lru| {
            let mut lru = lru.borrow_mut();
            let hash = lru.hasher.hash_one((expr, input));
            let slot = match lru.take(hash, expr, input, revision) {
                Some(slot) => slot,
                None => Slot {
                    expr,
                    input: input.into(),
                    revision,
                    found: scan(),
                },
            };
            let found = slot.found;
            lru.put(hash, slot, size);
            found
        })
    }
}

fn net_bytes(ip: IpAddr, prefix: u8) -> Vec<u8> {
    let mut b = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    b.push(prefix);
    b
}

/// The list match types on a string sample.
fn matches_text(kind: Match, key: &Key, s: &[u8]) -> bool {
    match (kind, key) {
        (Match::Sub, Key::Bytes(k)) => {
            k.is_empty() || s.windows(k.len()).any(|w| w == k.as_slice())
        }
        (Match::End, Key::Bytes(k)) => s.ends_with(k),
        (Match::Beg, Key::Bytes(k)) => s.starts_with(k),
        (Match::Str, Key::Bytes(k)) => s == k.as_slice(),
        (Match::Dir, Key::Bytes(k)) => match_word(s, k, b"/?"),
        (Match::Dom, Key::Bytes(k)) => match_word(s, k, b"/?.:"),
        (Match::Reg | Match::Regm, Key::Regex(r)) => r.is_match(s),
        _ => false,
    }
}

/// HAProxy's `match_word`: `word`, its delimiters trimmed, found in `s` between delimiters
/// (or its ends).
fn match_word(s: &[u8], word: &[u8], delims: &[u8]) -> bool {
    let is_delim = |c: u8| delims.contains(&c);
    let start = word
        .iter()
        .position(|&c| !is_delim(c))
        .unwrap_or(word.len());
    let end = word
        .iter()
        .rposition(|&c| !is_delim(c))
        .map_or(start, |e| e + 1);
    let word = &word[start..end.max(start)];
    // HAProxy then compares the input with the pattern's terminating NUL: never a match.
    if word.is_empty() || word.len() > s.len() {
        return false;
    }
    let last = s.len() - word.len();
    let mut may_match = true;
    for at in 0..=last {
        if s.get(at).is_some_and(|&c| is_delim(c)) {
            may_match = true;
            continue;
        }
        if !may_match {
            continue;
        }
        if s[at..].starts_with(word)
            && (at == last || s.get(at + word.len()).is_some_and(|&c| is_delim(c)))
        {
            return true;
        }
        may_match = false;
    }
    false
}

/// A map's entries in file order, by id, with the ids of each key: HAProxy's list of
/// elements, where adding, finding or deleting one does not walk the others.
#[derive(Debug, Default)]
struct Entries {
    by_id: BTreeMap<u64, Entry>,
    by_name: HashMap<String, Vec<u64>>,
}

impl Entries {
    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.by_id.values()
    }

    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn get(&self, id: u64) -> Option<&Entry> {
        self.by_id.get(&id)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.by_id.get_mut(&id)
    }

    /// Adds `e` after the others (its id is the newest).
    fn push(&mut self, e: Entry) {
        let ids = self.by_name.entry(e.key.clone()).or_default();
        if let Err(at) = ids.binary_search(&e.id) {
            ids.insert(at, e.id);
        }
        self.by_id.insert(e.id, e);
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.by_id.remove(&id)?;
        if let Some(ids) = self.by_name.get_mut(&e.key) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_name.remove(&e.key);
            }
        }
        Some(e)
    }

    /// The ids of the entries whose key is `key`, in order.
    fn with_key(&self, key: &str) -> &[u64] {
        self.by_name.get(key).map_or(&[], Vec::as_slice)
    }
}

impl FromIterator<Entry> for Entries {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Entries {
        let mut out = Entries::default();
        for e in iter {
            out.push(e);
        }
        out
    }
}

/// What a map holds, behind its lock.
#[derive(Debug, Default)]
struct Content {
    entries: Entries,
    exprs: Vec<Expr>,
    /// HAProxy's `entry_cnt`, as it keeps it: one per entry pushed into an expression,
    /// less one per entry deleted (or refused), wrapping below 0 as HAProxy's does.
    count: u64,
    /// The version lookups see, and the last one prepared.
    current: u32,
    next: u32,
    /// Where each converter using the map was written, in order (HAProxy's description of
    /// the reference names them).
    users: Vec<Place>,
}

/// One map file: HAProxy's pattern reference.
#[derive(Debug)]
pub struct MapFile {
    /// The file as named in the configuration.
    pub name: String,
    /// HAProxy's `unique_id`, for `#<id>`.
    pub id: usize,
    content: RwLock<Content>,
}

/// The process's maps, in the order they were made; a map lives while a converter uses it.
static REGISTRY: Mutex<Vec<Weak<MapFile>>> = Mutex::new(Vec::new());
/// Where entry ids start: they stand for HAProxy's element addresses (`#0x...` names one
/// in `set map`/`del map`), so small numbers a user may try name none, as in HAProxy.
const ENTRY_BASE: u64 = 0x5500_0000_0000;
/// Entry ids, unique in the process.
static NEXT_ENTRY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(ENTRY_BASE);

fn next_entry_id() -> u64 {
    NEXT_ENTRY.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The live maps in id order.
fn maps() -> Vec<Arc<MapFile>> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|w| w.strong_count() > 0);
    reg.iter().filter_map(Weak::upgrade).collect()
}

/// The map read from `name`, read now if no converter uses it yet.
fn open(name: &str) -> Result<Arc<MapFile>, String> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|w| w.strong_count() > 0);
    if let Some(map) = reg
        .iter()
        .filter_map(Weak::upgrade)
        .find(|m| m.name == name)
    {
        return Ok(map);
    }
    let entries = read_file(name)?.into_iter().collect();
    let id = reg
        .iter()
        .filter_map(Weak::upgrade)
        .map(|m| m.id + 1)
        .max()
        .unwrap_or(0);
    let map = Arc::new(MapFile {
        name: name.to_string(),
        id,
        content: RwLock::new(Content {
            entries,
            exprs: Vec::new(),
            count: 0,
            current: 0,
            next: 0,
            users: Vec::new(),
        }),
    });
    reg.push(Arc::downgrade(&map));
    Ok(map)
}

/// A map file's entries with their line numbers.
fn read_file(name: &str) -> Result<Vec<Entry>, String> {
    let bytes = std::fs::read(name).map_err(|_| format!("failed to open pattern file <{name}>"))?;
    Ok(parse_lines(&bytes)
        .into_iter()
        .map(|(line, key, value)| Entry {
            id: next_entry_id(),
            line,
            version: 0,
            key: crate::bytestr::from_vec(key.to_vec()),
            value: crate::bytestr::from_vec(value.to_vec()),
        })
        .collect())
}

/// HAProxy's reading of a map file: a `#` in the first column comments the line, leading
/// blanks are skipped, a blank line is ignored, the key ends at a blank, the value is the
/// rest of the line after the blanks that follow, trailing blanks (and CR) dropped. HAProxy
/// reads lines with `fgets` into a buffer of `tune.bufsize` bytes: a longer line is cut
/// every 16383 bytes, each piece read (and numbered) as a line of its own.
fn parse_lines(bytes: &[u8]) -> Vec<(usize, &[u8], &[u8])> {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let pieces = bytes
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|line| line.chunks(crate::runtime::BUFSIZE - 1));
    let mut out = Vec::new();
    for (n, line) in pieces.enumerate() {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.first() == Some(&b'#') {
            continue;
        }
        let line = line
            .split(|&b| b == b'\r' || b == 0)
            .next()
            .unwrap_or_default();
        let start = line.iter().position(|c| !blank(c)).unwrap_or(line.len());
        let line = &line[start..];
        if line.is_empty() {
            continue;
        }
        let key_end = line.iter().position(blank).unwrap_or(line.len());
        let rest = &line[key_end..];
        let value_start = rest.iter().position(|c| !blank(c)).unwrap_or(rest.len());
        let value = &rest[value_start..];
        let value_end = value.iter().rposition(|c| !blank(c)).map_or(0, |e| e + 1);
        out.push((n + 1, &line[..key_end], &value[..value_end]));
    }
    out
}

/// One `map*` converter.
#[derive(Debug, Clone)]
pub struct MapConv {
    pub map: Arc<MapFile>,
    expr: usize,
    pub kind: Match,
    pub out: Output,
    pub default: Option<Value>,
}

impl PartialEq for MapConv {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.map, &o.map) && self.expr == o.expr && self.default == o.default
    }
}

impl Eq for MapConv {}

/// The match and output types a converter name gives, for the names HAProxy 2.6 has.
pub fn named(conv: &str) -> Option<(Match, Output)> {
    let rest = conv.strip_prefix("map")?;
    if rest.is_empty() {
        return Some((Match::Str, Output::Str));
    }
    let rest = rest.strip_prefix('_')?;
    let (kind, out) = match rest.split_once('_') {
        None => (rest, Output::Str),
        Some((kind, "int")) => (kind, Output::Int),
        Some((kind, "ip")) => (kind, Output::Ip),
        Some(_) => return None,
    };
    let kind = match kind {
        "str" => Match::Str,
        "beg" => Match::Beg,
        "sub" => Match::Sub,
        "dir" => Match::Dir,
        "dom" => Match::Dom,
        "end" => Match::End,
        "reg" => Match::Reg,
        "regm" if out == Output::Str => Match::Regm,
        "int" => Match::Int,
        "ip" => Match::Ip,
        _ => return None,
    };
    Some((kind, out))
}

impl MapConv {
    /// Opens `file` for a converter matching `kind` and giving `out`, with an optional
    /// `default` (already checked as an integer for integer outputs). The error is
    /// HAProxy's, without the converter's name.
    pub fn load(
        kind: Match,
        out: Output,
        file: &str,
        default: Option<&str>,
    ) -> Result<MapConv, String> {
        let map = open(file)?;
        let expr = map.expr_for(kind, out)?;
        if let Some(place) = crate::config::stick::current_place() {
            let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
            content.users.push(place);
        }
        let default = match default {
            None => None,
            // An address default is read by `inet_pton`, stricter than the file's values.
            Some(text) if out == Output::Ip => {
                Some(Value::Ip(text.parse().map_err(|_| {
                    format!("map: cannot parse default ip <{text}>.")
                })?))
            }
            Some(text) => Some(
                Value::parse(out, text)
                    .ok_or_else(|| format!("map: cannot parse default value <{text}>."))?,
            ),
        };
        Ok(MapConv {
            map,
            expr,
            kind,
            out,
            default,
        })
    }

    /// What the converter takes and gives.
    pub fn types(&self) -> (SampleType, SampleType) {
        let input = match self.kind {
            Match::Int => SampleType::Int,
            Match::Ip => SampleType::Ip,
            _ => SampleType::Str,
        };
        let output = match self.out {
            Output::Str => SampleType::Str,
            Output::Int => SampleType::Int,
            Output::Ip => SampleType::Ip,
        };
        (input, output)
    }

    /// The value `input` maps to, else the default; None without one.
    pub fn lookup(&self, input: Input<'_>) -> Option<Value> {
        let content = self.map.content.read().unwrap_or_else(|e| e.into_inner());
        let expr = &content.exprs[self.expr];
        let Some(found) = expr.find(input).and_then(|id| expr.compiled.get(&id)) else {
            return self.default.clone();
        };
        match (&found.key, &found.value, input) {
            (Key::Regex(re), Value::Str(template), Input::Bytes(s)) if self.kind == Match::Regm => {
                let groups = re.captures(s, false)?;
                let mut out = Vec::new();
                pcre::expand(template, s, &groups, &mut out).ok()?;
                Some(Value::Str(out))
            }
            _ => Some(found.value.clone()),
        }
    }
}

impl MapFile {
    /// The expression matching `kind` and giving `out`, compiled from the entries now if
    /// no converter had it yet.
    fn expr_for(&self, kind: Match, out: Output) -> Result<usize, String> {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = content
            .exprs
            .iter()
            .position(|e| e.kind == kind && e.out == out)
        {
            return Ok(at);
        }
        let mut expr = Expr::new(kind, out);
        expr.current = content.current;
        for entry in content.entries.iter() {
            let c = expr
                .compile(entry)
                .map_err(|why| format!("{why} at line {} of file '{}'", entry.line, self.name))?;
            expr.insert(entry.id, c);
        }
        content.count = content.count.wrapping_add(content.entries.len() as u64);
        content.exprs.push(expr);
        Ok(content.exprs.len() - 1)
    }
}

/// Whether `verb map ...` is a map command.
pub fn is_command(verb: &str) -> bool {
    matches!(
        verb,
        "show" | "get" | "add" | "set" | "del" | "clear" | "prepare" | "commit"
    )
}

const UNKNOWN_MAP: &str = "Unknown map identifier. Please use #<id> or <file>.\n";

/// `#<id>` or a file name, as HAProxy's `pat_ref_lookup_ref`.
fn find(spec: &str) -> Option<Arc<MapFile>> {
    let all = maps();
    match spec.strip_prefix('#') {
        Some(id) => {
            let id: usize = id.parse().ok()?;
            all.into_iter().find(|m| m.id == id)
        }
        None => all.into_iter().find(|m| m.name == spec),
    }
}

/// Runs `verb map args...`; HAProxy 2.6 lets every level run them.
pub fn command(verb: &str, args: &[&str]) -> String {
    // `show`, `add`, `clear` and `commit` take a version first (`@N`).
    let (version, rest) = match args.split_first() {
        Some((v, rest)) if v.starts_with('@') => (Some(version_number(&v[1..])), rest),
        _ => (None, args),
    };
    match (verb, rest) {
        ("show", []) if version.is_none() => list(),
        ("show", spec) => with_map(spec.first().copied().unwrap_or_default(), |m| show(m, version)),
        ("get", [spec, key, ..]) => with_map(spec, |m| get(m, key)),
        ("get", _) => "Missing map identifier and/or key.\n".into(),
        ("add", [spec, key, value, ..]) => with_map(spec, |m| add(m, version, key, value)),
        ("add", _) => "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n".into(),
        ("set", [spec, key, value, ..]) => with_map(spec, |m| set(m, key, value)),
        ("set", _) => "'set map' expects three parameters: map identifier, key and value.\n".into(),
        ("del", [spec, key, ..]) => with_map(spec, |m| del(m, key)),
        ("del", _) => "This command expects two parameters: map identifier and key.\n".into(),
        ("prepare", spec) => with_map(spec.first().copied().unwrap_or_default(), prepare),
        ("commit", []) | ("clear", []) => "Missing map identifier.\n".into(),
        ("commit", [spec, ..]) => match version {
            None => "Missing version number.\n".into(),
            Some(v) => with_map(spec, |m| commit(m, v)),
        },
        ("clear", [spec, ..]) => with_map(spec, |m| clear(m, version)),
        _ => "Missing map identifier.\n".into(),
    }
}

/// `add map [@N] MAP <<` and its payload: a `key value` entry a line, read as HAProxy
/// 2.6's `cli_parse_add_map` reads it (the key ends at a space or tab, so a line without
/// one runs into the next; the value at the line's end), added in order up to the first
/// refused one, whose answer is the command's.
pub fn add_payload(args: &[&str], payload: &str) -> String {
    let (version, rest) = match args.split_first() {
        Some((v, rest)) if v.starts_with('@') => (Some(version_number(&v[1..])), rest),
        _ => (None, args),
    };
    let Some(spec) = rest.first() else {
        return "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n".into();
    };
    with_map(spec, |map| {
        let mut rest = payload;
        while !rest.is_empty() {
            let Some(key_end) = rest.find([' ', '\t']) else {
                return format!("Missing value for key '{rest}'.\n");
            };
            let key = &rest[..key_end];
            let after = rest[key_end + 1..].trim_start_matches([' ', '\t']);
            let value_end = after.find('\n').unwrap_or(after.len());
            rest = after.get(value_end + 1..).unwrap_or_default();
            let answer = add(map, version, key, &after[..value_end]);
            if !answer.is_empty() {
                return answer;
            }
        }
        String::new()
    })
}

/// `@N`'s number as HAProxy's `strtoul` reads it into an `unsigned int`: the leading digits
/// (none is 0), a `-` negating them.
fn version_number(text: &str) -> u32 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
    let n = if negative { n.wrapping_neg() } else { n };
    n as u32
}

/// Whether version `a` comes after `b`, as HAProxy compares them (wrapping).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn with_map(spec: &str, f: impl FnOnce(&MapFile) -> String) -> String {
    match find(spec) {
        Some(map) => f(&map),
        None => UNKNOWN_MAP.into(),
    }
}

/// `show map`: `id (file) description` per map.
fn list() -> String {
    let mut out = String::from("# id (file) description\n");
    for map in maps() {
        let content = map.content.read().unwrap_or_else(|e| e.into_inner());
        let users: Vec<String> = (content.users.iter())
            .map(|p| format!("map at file '{}' line {}", p.file, p.line))
            .collect();
        let users = match users.is_empty() {
            true => "map".to_string(),
            false => users.join(", by "),
        };
        out.push_str(&format!(
            "{} ({}) pattern loaded from file '{}' used by {users}. curr_ver={} next_ver={} entry_cnt={}\n",
            map.id, map.name, map.name, content.current, content.next, content.count
        ));
    }
    out
}

/// The entries of a version (the current one by default).
fn show(map: &MapFile, version: Option<u32>) -> String {
    let content = map.content.read().unwrap_or_else(|e| e.into_inner());
    let version = version.unwrap_or(content.current);
    content
        .entries
        .iter()
        .filter(|e| e.version == version)
        .map(|e| format!("{:#x} {} {}\n", e.id, e.key, e.value))
        .collect()
}

/// `get map`: for each way the map is matched, whether `key` matches and what.
fn get(map: &MapFile, key: &str) -> String {
    let content = map.content.read().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for expr in &content.exprs {
        let bytes = crate::bytestr::to_bytes(key);
        let input = match expr.kind {
            // As HAProxy's `sample_convert` casts a string to an integer, then to an address.
            Match::Int => crate::runtime::convert::str_to_int(&bytes).map(Input::Int),
            Match::Ip => map_ip_value(key).map(Input::Ip),
            _ => Some(Input::Bytes(&bytes)),
        };
        let head = format!("type={}, case=sensitive, found=", expr.kind.name());
        let found = input
            .and_then(|i| expr.find(i))
            .and_then(|id| Some((expr.compiled.get(&id)?, content.entries.get(id)?)));
        match found {
            None => out.push_str(&format!("{head}no\n")),
            Some((c, entry)) => {
                // Odd masks are kept out of HAProxy's tree.
                let tree = expr.kind.indexed() && !matches!(c.key, Key::Masked(..));
                let idx = if tree { "tree" } else { "list" };
                let value = match &c.value {
                    Value::Str(b) => crate::bytestr::from_vec(b.clone()),
                    Value::Int(n) => n.to_string(),
                    Value::Ip(ip) => ip.to_string(),
                };
                out.push_str(&format!(
                    "{head}yes, idx={idx}, key=\"{}\", value=\"{value}\", type=\"{}\"\n",
                    entry.key,
                    c.value.type_name()
                ));
            }
        }
    }
    out
}

/// Compiles `entry` for every expression, or HAProxy's message for the first refusal and
/// how many expressions took it before.
fn compile_all(content: &Content, entry: &Entry) -> Result<Vec<Compiled>, (String, usize)> {
    let mut out = Vec::new();
    for expr in &content.exprs {
        out.push(expr.compile(entry).map_err(|why| (why, out.len()))?);
    }
    Ok(out)
}

fn add(map: &MapFile, version: Option<u32>, key: &str, value: &str) -> String {
    let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
    let version = version.unwrap_or(content.current);
    if after(version, content.next) {
        return "Version number in the future, please use 'prepare map' before.\n".into();
    }
    let entry = Entry {
        id: next_entry_id(),
        line: 0,
        version,
        key: key.to_string(),
        value: value.to_string(),
    };
    match compile_all(&content, &entry) {
        Err((why, taken)) => {
            // HAProxy pushed it into the expressions before, then deleted it.
            content.count = content.count.wrapping_add(taken as u64).wrapping_sub(1);
            format!("{why}.\n")
        }
        Ok(compiled) => {
            for (expr, c) in content.exprs.iter_mut().zip(compiled) {
                expr.insert(entry.id, c);
            }
            content.entries.push(entry);
            content.count = content.count.wrapping_add(content.exprs.len() as u64);
            String::new()
        }
    }
}

/// `set map`: every entry with `key` (or `#<id>`) takes `value`.
fn set(map: &MapFile, key: &str, value: &str) -> String {
    let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
    let targets = match matching(&content.entries, key) {
        Ok(targets) => targets,
        Err(malformed) => return malformed.into(),
    };
    if targets.is_empty() {
        return match key.starts_with("#0x") {
            true => "key or pattern not found.\n".into(),
            false => "entry not found.\n".into(),
        };
    }
    let mut values = Vec::new();
    for expr in &content.exprs {
        match Value::parse(expr.out, value) {
            Some(v) => values.push(v),
            None => return format!("unable to parse '{value}'.\n"),
        }
    }
    for &id in &targets {
        if let Some(e) = content.entries.get_mut(id) {
            e.value = value.to_string();
        }
        for (expr, v) in content.exprs.iter_mut().zip(&values) {
            if let Some(c) = expr.compiled.get_mut(&id) {
                c.value = v.clone();
            }
        }
    }
    String::new()
}

/// The ids of the entries `key` names: `#<id>` one, else those with that key.
/// As HAProxy, only `#0x` starts an id, which must be all hexadecimal (`strtoul`); any other
/// `#...` is a key.
fn matching(entries: &Entries, key: &str) -> Result<Vec<u64>, &'static str> {
    let Some(hex) = key.strip_prefix("#0x") else {
        return Ok(entries.with_key(key).to_vec());
    };
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Malformed identifier. Please use #<id> or <file>.\n");
    }
    // `strtoul` saturates: such an id names no entry.
    let id = u64::from_str_radix(hex, 16).unwrap_or(u64::MAX);
    Ok(entries.get(id).map(|e| e.id).into_iter().collect())
}

fn del(map: &MapFile, key: &str) -> String {
    let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
    let targets = match matching(&content.entries, key) {
        Ok(targets) => targets,
        Err(malformed) => return malformed.into(),
    };
    if targets.is_empty() {
        return "Key not found.\n".into();
    }
    for id in targets {
        remove(&mut content, id);
    }
    String::new()
}

/// Deletes every entry of a version (the current one by default).
fn clear(map: &MapFile, version: Option<u32>) -> String {
    let version = {
        let content = map.content.read().unwrap_or_else(|e| e.into_inner());
        version.unwrap_or(content.current)
    };
    purge(map, |v| v == version);
    String::new()
}

/// `prepare map`: a new version, empty, to fill and commit.
fn prepare(map: &MapFile) -> String {
    let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
    content.next = content.next.wrapping_add(1);
    format!("New version created: {}\n", content.next)
}

/// `commit map @N`: version N becomes the one lookups see; the older ones are deleted.
fn commit(map: &MapFile, version: u32) -> String {
    let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
    if !after(version, content.current) || after(version, content.next) {
        return "Version number out of range.\n".into();
    }
    content.current = version;
    // Lookups switch versions at once; the older entries are then deleted a batch at a time.
    for expr in &mut content.exprs {
        expr.switch(version);
    }
    drop(content);
    purge(map, |v| after(version, v));
    String::new()
}

/// Deletes entry `id` from the list and every expression.
fn remove(content: &mut Content, id: u64) {
    if content.entries.remove(id).is_some() {
        content.count = content.count.wrapping_sub(1);
        for expr in &mut content.exprs {
            expr.remove(id);
        }
    }
}

/// How many entries `purge` deletes under the lock before letting lookups in, as HAProxy's
/// purges yield every 100 entries.
const PURGE_BATCH: usize = 100;

/// Deletes the entries whose version `doomed` accepts, in batches, so that lookups
/// (and other commands) are never held for long behind a big clear or commit.
fn purge(map: &MapFile, doomed: impl Fn(u32) -> bool) {
    let mut from = 0u64;
    loop {
        let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
        let mut batch = Vec::new();
        let mut scanned = None;
        for (&id, e) in content.entries.by_id.range(from..) {
            scanned = Some(id);
            if doomed(e.version) {
                batch.push(id);
                if batch.len() == PURGE_BATCH {
                    break;
                }
            }
        }
        for &id in &batch {
            remove(&mut content, id);
        }
        match scanned {
            Some(last) if batch.len() == PURGE_BATCH => from = last + 1,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_as_haproxy_reads_them() {
        let text = b"# c\n  a.com   be1  x \n\n\tb.com be2\nc.com\n #x y\r\n";
        let got: Vec<_> = parse_lines(text)
            .into_iter()
            .map(|(n, k, v)| {
                (
                    n,
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let want = [
            (2, "a.com", "be1  x"),
            (4, "b.com", "be2"),
            (5, "c.com", ""),
            (6, "#x", "y"),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0, g.1.as_str(), g.2.as_str()), w);
        }
    }

    #[test]
    fn words_match_between_delimiters() {
        assert!(match_word(b"/a/b/c", b"b", b"/?"));
        assert!(match_word(b"/a/b/c", b"/b/", b"/?"));
        assert!(!match_word(b"/a/bb/c", b"b", b"/?"));
        assert!(match_word(b"www.example.com", b"example.com", b"/?.:"));
        assert!(!match_word(b"www.myexample.com", b"example.com", b"/?.:"));
        assert!(match_word(b"example.com:80", b"example.com", b"/?.:"));
        for input in [&b""[..], b"/", b"/a/b/", b"x"] {
            assert!(!match_word(input, b"/", b"/?"));
            assert!(!match_word(input, b".:", b"/?.:"));
        }
    }

    #[test]
    fn names_are_haproxys() {
        assert_eq!(named("map"), Some((Match::Str, Output::Str)));
        assert_eq!(named("map_regm"), Some((Match::Regm, Output::Str)));
        assert_eq!(named("map_ip_int"), Some((Match::Ip, Output::Int)));
        for refused in [
            "map_rege",
            "map_regm_int",
            "map_str_str",
            "map_len",
            "map_str_bool",
        ] {
            assert_eq!(named(refused), None, "{refused}");
        }
    }

    #[test]
    fn prefixes_and_networks_take_the_longest() {
        let long = "/x".repeat(200);
        let path = std::env::temp_dir().join(format!("hapx-map-unit-{}.map", std::process::id()));
        std::fs::write(&path, format!("/x short\n{long} long\n")).expect("a map file");
        let file = path.display().to_string();
        let beg = MapConv::load(Match::Beg, Output::Str, &file, None).expect("loads");
        let found = |s: &str| beg.lookup(Input::Bytes(s.as_bytes()));
        assert_eq!(
            found(&format!("{long}/y")),
            Some(Value::Str(b"long".to_vec()))
        );
        assert_eq!(found("/x/y"), Some(Value::Str(b"short".to_vec())));
        assert_eq!(found("/y"), None);
        std::fs::write(&path, "10.0.0.0/8 8\n10.1.0.0/16 16\n").expect("a map file");
        let ip_file = format!("{file}.ip");
        std::fs::rename(&path, &ip_file).expect("renamed");
        let ip = MapConv::load(Match::Ip, Output::Int, &ip_file, Some("0")).expect("loads");
        let at = |a: &str| ip.lookup(Input::Ip(a.parse().expect("an address")));
        assert_eq!(at("10.1.2.3"), Some(Value::Int(16)));
        assert_eq!(at("10.2.2.3"), Some(Value::Int(8)));
        assert_eq!(at("::ffff:10.1.0.1"), Some(Value::Int(16)));
        assert_eq!(at("::10.1.0.1"), Some(Value::Int(16)));
        assert_eq!(at("2002:0a01:0203::"), Some(Value::Int(16)));
        assert_eq!(at("2003:0a01:0203::"), Some(Value::Int(0)));
        assert_eq!(at("::1:10.1.0.1"), Some(Value::Int(0)));
        assert_eq!(at("11.0.0.1"), Some(Value::Int(0)));
        std::fs::remove_file(&ip_file).ok();
    }

    #[test]
    fn integer_values_are_strict() {
        assert_eq!(parse_int_value("-12"), Some(-12));
        assert_eq!(parse_int_value("+3"), Some(3));
        assert_eq!(parse_int_value(""), Some(0));
        assert_eq!(parse_int_value("12abc"), None);
        assert_eq!(parse_int_value("9223372036854775808"), Some(i64::MAX));
        assert_eq!(parse_int_value("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int_value("18446744073709551617"), Some(i64::MAX));
        assert_eq!(parse_int_value("-99999999999999999999"), Some(i64::MIN));
    }
}
