//! HAProxy's pattern references: map files, ACL pattern files and ACLs' own patterns; the
//! `map(<file>[,<default>])` converter and its `map_<match>[_<output>]` family; the
//! `show|get|add|set|del|clear map` and `show|get|add|del|clear acl` commands of the
//! runtime API.
//!
//! - [`MapFile`]: HAProxy's pattern reference: one per file however many converters and
//!   ACLs use it (a file is read either as `key value` lines, for maps and ACLs' `-M`, or
//!   as a pattern a line, and only that way), or one per ACL expression for its own
//!   patterns ([`inline_ref`]); the entries in file order, and one [`Expr`] per way it is
//!   matched (match type, flags, output type or an ACL's), so a change made on the CLI
//!   reaches every converter and ACL at their next lookup. Files are read once, at load,
//!   as HAProxy's `pat_ref_read_from_file[_smp]`.
//! - [`MapConv`]: one converter: its file, which of its expressions, its default.
//! - [`PatternUse`]: an ACL's file or own patterns, matched by [`acl_matches`].
//! - [`command`]: the runtime API's map and ACL commands with HAProxy 2.6's answers,
//!   versions included: `prepare map` starts one, `add map @N` fills it unseen, `commit
//!   map @N` makes it the one lookups see (entries carry their version; every version is
//!   indexed, as in HAProxy's trees, and only the current one's match). [`add_payload`]:
//!   `add map MAP <<` and its lines (the session reader in [`super::api`] gathers them).
//! - [`FileRef`] and [`MapFile::add_if_missing`], [`MapFile::set_or_add`],
//!   [`MapFile::delete_key`]: the `add-acl`, `set-map`, `del-acl`/`del-map` rule actions
//!   (run by [`super::rules`]), with HAProxy's semantics (an entry keeps whether it has a
//!   value: `add-acl` on a map's file adds one without, which `show map` lists bare and
//!   converters answer with true; `set-map` on an ACL file gives one that `show acl` lists).
//!
//! Lookups follow HAProxy's indexes: `str` an exact key (the first written wins), `beg` and
//! `ip` the longest key (prefix or network) that matches, the others (and `str`/`beg`
//! without case) the first entry in order (`sub`, `dir`, `dom`, `end`, `reg`, `regm`,
//! `int`, `len`, `bin`; `sub`, `end`, `reg` answer through the per-thread lookup
//! [`cache`]). Adding or deleting an entry touches only its own place in the lists and
//! indexes; big clears and commits delete in batches, releasing the lock between them. The
//! process's references are kept in one registry, as HAProxy's `pattern_reference` list,
//! which numbers them all in one sequence for `show map` and `show acl`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::config::acl::{Expr as AclExpr, Method, Pattern};
use crate::config::converter::SampleType;
use crate::config::model::{Network, Place};
use crate::config::pcre::{self, Flags, Regex};
use crate::runtime::sample::Sample;

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
    /// ACLs' `-m len`: the sample's length in integer ranges.
    Len,
    /// ACLs' `-m bin`: the sample's bytes equal a key (written in hex).
    Bin,
    /// ACLs' `-m found` and `-m bool`, which read no pattern.
    Nothing,
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
            Match::Len => "len",
            Match::Bin => "bin",
            Match::Nothing => "found",
        }
    }

    /// The match types HAProxy reads and indexes keys the same way for (its parse and index
    /// functions), which share one expression of a reference: `sub`, `dir`, `dom` and
    /// `end`; `int` and `len`.
    fn family(self) -> Match {
        match self {
            Match::Sub | Match::Dir | Match::Dom | Match::End => Match::Sub,
            Match::Len => Match::Int,
            other => other,
        }
    }
}

/// How an expression reads its keys besides its match type: HAProxy's `mflags`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyFlags {
    /// `-i`: keys and samples compared without case (keys are lower-cased).
    pub ignore_case: bool,
    /// `-n`: an address key is never resolved as a name.
    pub no_dns: bool,
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

/// HAProxy's `pat_parse_*` of `text` for `kind`, with its message; names are resolved
/// only while the configuration loads (`resolve`), as HAProxy's `MODE_STARTING`.
fn parse_key(kind: Match, flags: KeyFlags, text: &str, resolve: bool) -> Result<Key, String> {
    Ok(match kind {
        Match::Reg | Match::Regm => {
            let re = if kind == Match::Regm {
                Flags::CAPTURE
            } else {
                Flags::MATCH
            };
            let re = re.ignoring_case(flags.ignore_case);
            Key::Regex(Regex::new(text, re).map_err(|e| e.to_string())?)
        }
        Match::Int | Match::Len => int_range(text)?,
        Match::Bin => Key::Bytes(crate::config::acl::hex_pattern(text)?),
        // An empty mask (`10.0.0.0/`) is refused by HAProxy's `str2net`.
        Match::Ip => match crate::config::values::network(text).filter(|_| !text.ends_with('/')) {
            Some(net) => Key::Net(masked(net.addr, net.prefix), net.prefix),
            None => match odd_mask(text) {
                Some(key) => key,
                // A name, resolved once (`acl::ip_pattern`), unless `-n`.
                None if resolve && !flags.no_dns && !text.contains('/') => {
                    let net = crate::config::acl::ip_pattern(text, false)?;
                    Key::Net(masked(net.addr, net.prefix), net.prefix)
                }
                None => return Err(format!("'{text}' is not a valid IPv4 or IPv6 address")),
            },
        },
        _ if flags.ignore_case => Key::Bytes(crate::bytestr::to_bytes(text).to_ascii_lowercase()),
        _ => Key::Bytes(crate::bytestr::to_bytes(text).into_owned()),
    })
}

/// HAProxy's `pat_parse_int` of `text`: the inclusive range it stands for.
/// `N`, or a range around the first `:` or `-` (`N:M`, `:M`, `N:`, so `-5` is "up to
/// 5"), each number read by [`key_number`].
pub fn int_key(text: &str) -> Result<(i64, i64), String> {
    let Some(at) = text.find([':', '-']) else {
        let n = key_number(text).ok_or_else(|| format!("'{text}' is not a number"))?;
        return Ok((n, n));
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
    Ok((low, high))
}

fn int_range(text: &str) -> Result<Key, String> {
    let (low, high) = int_key(text)?;
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
    /// HAProxy's `sample`: none for a pattern (an ACL file's line, `add acl`, `add-acl`),
    /// which `show` then does not write.
    value: Option<String>,
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
    flags: KeyFlags,
    /// An ACL's: its entries' values are not read.
    acl: bool,
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
    fn new(kind: Match, out: Output, flags: KeyFlags, acl: bool) -> Expr {
        static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Expr {
            kind,
            out,
            flags,
            acl,
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            revision: 0,
            current: 0,
            compiled: BTreeMap::new(),
            by_key: HashMap::new(),
            lengths: BTreeMap::new(),
        }
    }

    /// Whether it compiles and indexes its keys as `kind` does.
    fn serves(&self, kind: Match) -> bool {
        self.kind.family() == kind.family()
    }

    /// HAProxy's indexed expressions (the others are lists, read in order); keys compared
    /// without case are listed.
    fn indexed(&self) -> bool {
        match self.kind {
            Match::Str | Match::Beg => !self.flags.ignore_case,
            Match::Ip => true,
            _ => false,
        }
    }

    /// `e` for this expression (`resolve`: while the configuration loads).
    fn compile(&self, e: &Entry, resolve: bool) -> Result<Compiled, String> {
        let key = parse_key(self.kind, self.flags, &e.key, resolve)?;
        let value = match self.acl {
            true => Value::Str(Vec::new()),
            // A map's entry without a sample (`add-acl` on a map's file): HAProxy's
            // converters answer it with the boolean true, which is 1.
            false => match &e.value {
                None => Value::Int(1),
                Some(v) => {
                    Value::parse(self.out, v).ok_or_else(|| format!("unable to parse '{v}'"))?
                }
            },
        };
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
        if !self.indexed() {
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
        if !self.indexed() {
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

    /// The id of the entry `input` matches with `kind` (the expression's own, or another
    /// of its [`Match::family`]), if any.
    fn find(&self, kind: Match, input: Input<'_>) -> Option<u64> {
        let first_live = |hit: &dyn Fn(&Key) -> bool| {
            self.compiled
                .iter()
                .find(|(_, c)| c.version == self.current && hit(&c.key))
                .map(|(&id, _)| id)
        };
        match (kind, input) {
            (Match::Str, Input::Bytes(s)) if self.indexed() => self.first(s),
            // The longest key first: HAProxy's prefix tree.
            (Match::Beg, Input::Bytes(s)) if self.indexed() => self
                .lengths
                .keys()
                .rev()
                .find_map(|&(_, len)| self.first(s.get(..len)?)),
            (Match::Ip, Input::Ip(ip)) => self.find_ip(ip),
            (Match::Int | Match::Len, Input::Int(n)) => {
                first_live(&|k| matches!(*k, Key::Range(lo, hi) if lo <= n && n <= hi))
            }
            (Match::Bin, Input::Bytes(s)) => first_live(&|k| matches!(k, Key::Bytes(b) if b == s)),
            (Match::Nothing, _) => None,
            // HAProxy's list matchers that keep their answers in its LRU cache.
            // Answers are kept per match type: unlike HAProxy's, whose `sub` and `end` on one
            // expression share them.
            (Match::Sub | Match::End | Match::Reg, Input::Bytes(s)) => {
                cache::lookup(self.uid * 16 + kind as u64, self.revision, s, || {
                    first_live(&|k| matches_text(kind, k, s))
                })
            }
            (_, Input::Bytes(s)) => first_live(&|k| matches_text(kind, k, s)),
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
/// scan thousands of keys again. Keyed by the expression and the match type (`map_sub` and
/// `map_end` on one file share an expression, as in HAProxy, but unlike HAProxy not each
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
pub fn match_word(s: &[u8], word: &[u8], delims: &[u8]) -> bool {
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
    /// Who uses the file and where they were written, in order (HAProxy's description of
    /// the reference names them).
    users: Vec<(Use, Place)>,
    /// Listed by `show map` (a map converter or `-M` uses it).
    map_listed: bool,
    /// Listed by `show acl` (an ACL uses it).
    acl_listed: bool,
}

/// What uses a pattern reference, as its description names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Map,
    Acl,
    /// An ACL reading its file as a map (`-M`): described as a map's, listed as both.
    AclAsMap,
}

/// HAProxy's pattern reference: a map or ACL file, or an ACL's own patterns.
#[derive(Debug)]
pub struct MapFile {
    /// The file as named in the configuration (empty for an ACL's own patterns).
    pub name: String,
    /// HAProxy's `unique_id`, for `#<id>`.
    pub id: usize,
    /// Entries are `key value` (a map's file) rather than a pattern a line.
    two_columns: bool,
    /// For an ACL's own patterns: HAProxy's description, `acl 'KW' file 'F' line N`.
    inline: Option<String>,
    /// Set once the runtime API changed it: until then an ACL may match the patterns it
    /// compiled itself, without the lock.
    changed: AtomicBool,
    content: RwLock<Content>,
}

/// The process's maps, in the order they were made; a map lives while a converter uses it.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());

/// The pattern references in id order, and the files among them by name: adding one costs
/// the same however many there are (an ACL expression adds one for its own patterns).
struct Registry {
    /// In id order (ids grow), dead ones included until the next sweep.
    all: Vec<Weak<MapFile>>,
    /// The files by name (an ACL's own patterns have none).
    files: Option<HashMap<String, Weak<MapFile>>>,
    /// How many of `all` lived at the last sweep: the next comes when `all` doubles that.
    swept: usize,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            all: Vec::new(),
            files: None,
            swept: 0,
        }
    }

    /// Drops the dead references once enough were added since the last sweep (amortized
    /// constant per addition).
    fn sweep_if_due(&mut self) {
        if self.all.len() >= 2 * self.swept.max(8) {
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        self.all.retain(|w| w.strong_count() > 0);
        if let Some(files) = self.files.as_mut() {
            files.retain(|_, w| w.strong_count() > 0);
        }
        self.swept = self.all.len();
    }

    /// HAProxy's next `unique_id`: one more than the highest a live reference has. Ids
    /// grow along `all`, so the dead at its end are dropped and the last alive has it.
    fn next_id(&mut self) -> usize {
        while let Some(last) = self.all.last() {
            match last.upgrade() {
                Some(map) => return map.id + 1,
                None => {
                    self.all.pop();
                }
            }
        }
        0
    }

    /// The live reference of file `name`.
    fn file(&self, name: &str) -> Option<Arc<MapFile>> {
        self.files.as_ref()?.get(name)?.upgrade()
    }
}

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
    reg.sweep();
    reg.all.iter().filter_map(Weak::upgrade).collect()
}

/// The pattern reference of file `name` for `user` (read as `key value` lines when
/// `two_columns`), read now if nothing uses it yet; as HAProxy's `pattern_read_from_file`,
/// one file is read one way only.
pub fn open(name: &str, two_columns: bool, user: Use) -> Result<Arc<MapFile>, String> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let found = reg.file(name);
    let map = match found {
        Some(map) if map.two_columns != two_columns => {
            let (is, wanted) = match two_columns {
                true => ("one", "two"),
                false => ("two", "one"),
            };
            return Err(format!(
                "The file \"{name}\" is already used as {is} column file and cannot be used by as {wanted} column file."
            ));
        }
        Some(map) => map,
        None => {
            let entries = read_file(name, two_columns)?.into_iter().collect();
            register(&mut reg, name.to_string(), two_columns, None, entries)
        }
    };
    map.note_user(user);
    Ok(map)
}

/// A new pattern reference for an ACL's own patterns (`texts`, as HAProxy keeps them),
/// described as `description`.
pub fn inline_ref(description: String, texts: &[String]) -> Arc<MapFile> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let entries = texts.iter().map(|t| Entry {
        id: next_entry_id(),
        line: 0,
        version: 0,
        key: t.clone(),
        value: None,
    });
    let map = register(
        &mut reg,
        String::new(),
        false,
        Some(description),
        entries.collect(),
    );
    map.content
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .acl_listed = true;
    map
}

/// Adds a pattern reference to the registry, numbered after the others.
fn register(
    reg: &mut Registry,
    name: String,
    two_columns: bool,
    inline: Option<String>,
    entries: Entries,
) -> Arc<MapFile> {
    reg.sweep_if_due();
    let id = reg.next_id();
    let map = Arc::new(MapFile {
        name,
        id,
        two_columns,
        inline,
        changed: AtomicBool::new(false),
        content: RwLock::new(Content::default()),
    });
    map.content
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entries = entries;
    reg.all.push(Arc::downgrade(&map));
    if map.inline.is_none() {
        let files = reg.files.get_or_insert_with(HashMap::new);
        files.insert(map.name.clone(), Arc::downgrade(&map));
    }
    map
}

/// A pattern file's entries with their line numbers: `key value` lines, or a pattern a
/// line.
fn read_file(name: &str, two_columns: bool) -> Result<Vec<Entry>, String> {
    let bytes = std::fs::read(name).map_err(|_| format!("failed to open pattern file <{name}>"))?;
    let lines = match two_columns {
        true => parse_lines(&bytes),
        false => parse_pattern_lines(&bytes),
    };
    Ok(lines
        .into_iter()
        .map(|(line, key, value)| Entry {
            id: next_entry_id(),
            line,
            version: 0,
            key: crate::bytestr::from_vec(key.to_vec()),
            value: two_columns.then(|| crate::bytestr::from_vec(value.to_vec())),
        })
        .collect())
}

/// HAProxy's reading of a map file: a `#` in the first column comments the line, leading
/// blanks are skipped, a blank line is ignored, the key ends at a blank, the value is the
/// rest of the line after the blanks that follow, trailing blanks (and CR) dropped; lines
/// are cut as [`numbered_lines`] cuts them.
fn parse_lines(bytes: &[u8]) -> Vec<(usize, &[u8], &[u8])> {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes) {
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
        out.push((n, &line[..key_end], &value[..value_end]));
    }
    out
}

/// A file's lines as HAProxy reads them with `fgets` into a buffer of `tune.bufsize` bytes,
/// numbered from 1 (each with its `\n`): a longer line is cut every 16383 bytes, each piece
/// read (and numbered) as a line of its own.
fn numbered_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let pieces = bytes
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|line| line.chunks(crate::runtime::BUFSIZE - 1));
    (1..).zip(pieces)
}

/// HAProxy's `pat_ref_read_from_file`: a pattern a line, after its leading blanks up to
/// the end of the line or a CR (trailing blanks kept); a `#` in the first column comments
/// the line, a blank line is ignored; lines are cut as [`numbered_lines`] cuts them.
fn parse_pattern_lines(bytes: &[u8]) -> Vec<(usize, &[u8], &[u8])> {
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let mut out = Vec::new();
    for (n, line) in numbered_lines(bytes) {
        if line.first() == Some(&b'#') {
            continue;
        }
        let start = line.iter().position(|c| !blank(c)).unwrap_or(line.len());
        let line = &line[start..];
        let end = (line.iter())
            .position(|&c| matches!(c, b'\n' | b'\r' | 0))
            .unwrap_or(line.len());
        if end > 0 {
            out.push((n, &line[..end], &b""[..]));
        }
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
        let map = open(file, true, Use::Map)?;
        let expr = map.expr_for(kind, out, KeyFlags::default(), false)?;
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
        let found = expr.find(self.kind, input);
        let Some(found) = found.and_then(|id| expr.compiled.get(&id)) else {
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
    /// Records who uses the reference, where (the line being parsed), and so which
    /// listings show it.
    fn note_user(&self, user: Use) {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        content.map_listed |= user != Use::Acl;
        content.acl_listed |= user != Use::Map;
        if let Some(place) = crate::config::stick::current_place() {
            content.users.push((user, place));
        }
    }

    /// The expression matching `kind` (with `flags`) and giving `out` (an ACL's gives
    /// nothing), compiled from the entries now if nothing had it yet.
    fn expr_for(
        &self,
        kind: Match,
        out: Output,
        flags: KeyFlags,
        acl: bool,
    ) -> Result<usize, String> {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = (content.exprs.iter())
            .position(|e| e.serves(kind) && e.out == out && e.flags == flags && e.acl == acl)
        {
            return Ok(at);
        }
        let mut expr = Expr::new(kind, out, flags, acl);
        expr.current = content.current;
        for entry in content.entries.iter() {
            // An ACL's own patterns are named by the ACL's line, as HAProxy's `pat_ref_add`.
            let c = expr.compile(entry, true).map_err(|why| match self.inline {
                Some(_) => why,
                None => format!("{why} at line {} of file '{}'", entry.line, self.name),
            })?;
            expr.insert(entry.id, c);
        }
        content.count = content.count.wrapping_add(content.entries.len() as u64);
        content.exprs.push(expr);
        Ok(content.exprs.len() - 1)
    }
}

/// An ACL's use of a pattern reference: the reference and the expression it matches with.
#[derive(Debug, Clone)]
pub struct PatternUse {
    pub pat_ref: Arc<MapFile>,
    expr: usize,
    kind: Match,
}

impl PatternUse {
    /// The ACL use of `pat_ref`, matching with `kind` and `flags`; the error is HAProxy's
    /// for the first entry refused.
    pub fn new(pat_ref: Arc<MapFile>, kind: Match, flags: KeyFlags) -> Result<PatternUse, String> {
        let expr = pat_ref.expr_for(kind, Output::Str, flags, true)?;
        Ok(PatternUse {
            pat_ref,
            expr,
            kind,
        })
    }

    /// Whether the runtime API changed the reference.
    pub fn changed(&self) -> bool {
        self.pat_ref.changed.load(Ordering::Relaxed)
    }

    /// Makes the ACL read the reference from now on rather than the patterns it compiled
    /// (which miss some).
    pub fn read_live(&self) {
        self.pat_ref.changed.store(true, Ordering::Relaxed);
    }

    /// The keys its expression compiled, as an ACL matches its own patterns without the
    /// reference (byte keys as `bin` bytes when `bytes`, else as text), in entry order,
    /// and whether they are all there: an IPv4 network with a mask that is not a prefix has
    /// no [`Pattern`], and is matched in the reference only.
    pub fn patterns(&self, bytes: bool) -> (Vec<Pattern>, bool) {
        let content = self
            .pat_ref
            .content
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let compiled = content.exprs[self.expr].compiled.values();
        let mut complete = true;
        let mut out = Vec::with_capacity(compiled.len());
        for c in compiled {
            out.push(match &c.key {
                Key::Bytes(b) if bytes => Pattern::Bin(b.clone()),
                Key::Bytes(b) => Pattern::Str(crate::bytestr::from_bytes(b).into_owned()),
                Key::Regex(re) => Pattern::Reg(re.clone()),
                Key::Range(low, high) => Pattern::Int(*low, *high),
                Key::Net(addr, prefix) => Pattern::Ip(Network {
                    addr: *addr,
                    prefix: *prefix,
                }),
                Key::Masked(..) => {
                    complete = false;
                    continue;
                }
            });
        }
        (out, complete)
    }

    /// Whether `input` (lower-cased by the caller under `-i`) matches an entry.
    pub fn finds(&self, input: Input<'_>) -> bool {
        let content = self
            .pat_ref
            .content
            .read()
            .unwrap_or_else(|e| e.into_inner());
        content.exprs[self.expr].find(self.kind, input).is_some()
    }
}

/// Whether sample `v` matches ACL expression `e`: its own patterns (compiled by itself and
/// matched by `own` until the runtime API changes their reference, which is then read),
/// or its files'. An expression without files whose patterns were never changed costs
/// one atomic load more than `own`.
pub fn acl_matches(e: &AclExpr, v: &Sample<'_>, own: fn(&AclExpr, &Sample<'_>) -> bool) -> bool {
    if matches!(e.method, Method::Found | Method::Bool | Method::Auth) {
        return own(e, v);
    }
    let live_inline = e.inline.as_ref().filter(|i| i.changed());
    if live_inline.is_none() {
        if own(e, v) {
            return true;
        }
        if e.files.is_empty() {
            return false;
        }
    }
    let mut uses = live_inline.into_iter().chain(&e.files);
    let mut finds = |input: Input<'_>| uses.any(|u| u.finds(input));
    let mut digits = TextBuf::new();
    match e.method {
        Method::Int => v.as_int().is_some_and(|n| finds(Input::Int(n))),
        Method::Len => finds(Input::Int(text_bytes(v, &mut digits).len() as i64)),
        Method::Bin => match v {
            Sample::Str(s) => finds(Input::Bytes(&crate::bytestr::to_bytes(s))),
            Sample::Bin(b) => finds(Input::Bytes(b)),
            other => finds(Input::Bytes(&crate::runtime::convert::to_binary(
                other.clone(),
            ))),
        },
        Method::Ip => v.as_ip().is_some_and(|ip| finds(Input::Ip(ip))),
        _ => {
            let text = text_bytes(v, &mut digits);
            // Keys under `-i` are lower-cased (regexes compiled without case).
            if !e.ignore_case || e.method == Method::Reg || !text.iter().any(u8::is_ascii_uppercase)
            {
                return finds(Input::Bytes(&text));
            }
            let mut lower = LowerBuf::default();
            finds(Input::Bytes(lower.of(&text)))
        }
    }
}

/// A number or an address written as text, on the stack (an IPv6 address is at most 45
/// characters, an integer 20).
struct TextBuf([u8; 48]);

impl TextBuf {
    fn new() -> TextBuf {
        TextBuf([0; 48])
    }

    fn write(&mut self, value: impl std::fmt::Display) -> &[u8] {
        use std::io::Write;
        let mut out = &mut self.0[..];
        // Only a bug (a longer number or address) makes this fail: it would be cut.
        let _ = write!(out, "{value}");
        let len = 48 - out.len();
        &self.0[..len]
    }
}

/// The bytes of sample `v` as text, as HAProxy casts it for a string match (binary up to
/// its first NUL byte): borrowed from the sample, numbers and addresses written in `buf`,
/// so that matching allocates nothing.
fn text_bytes<'a>(v: &'a Sample<'_>, buf: &'a mut TextBuf) -> std::borrow::Cow<'a, [u8]> {
    use std::borrow::Cow;
    match v {
        Sample::Str(s) => crate::bytestr::to_bytes(s),
        Sample::Bin(b) => Cow::Borrowed(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]),
        Sample::Bool(b) => Cow::Borrowed(buf.write(u8::from(*b))),
        Sample::Int(n) => Cow::Borrowed(buf.write(n)),
        Sample::Ip(ip) => Cow::Borrowed(buf.write(ip)),
    }
}

/// A sample lower-cased for a `-i` match: on the stack when short, as most are.
#[derive(Default)]
struct LowerBuf {
    short: Option<[u8; 256]>,
    long: Vec<u8>,
}

impl LowerBuf {
    fn of(&mut self, text: &[u8]) -> &[u8] {
        match text.len() <= 256 {
            true => {
                let short = self.short.insert([0; 256]);
                let out = &mut short[..text.len()];
                out.copy_from_slice(text);
                out.make_ascii_lowercase();
                out
            }
            false => {
                self.long = text.to_ascii_lowercase();
                &self.long
            }
        }
    }
}

/// Which listing a command works on: `... map` or `... acl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Map,
    Acl,
}

impl Listing {
    /// The word HAProxy's messages name a reference with.
    fn noun(self) -> &'static str {
        match self {
            Listing::Map => "map",
            Listing::Acl => "ACL",
        }
    }

    fn lists(self, content: &Content) -> bool {
        match self {
            Listing::Map => content.map_listed,
            Listing::Acl => content.acl_listed,
        }
    }
}

/// Whether `verb map|acl ...` is a command of that listing (ACLs have no `set`).
pub fn is_command(listing: Listing, verb: &str) -> bool {
    match verb {
        "show" | "get" | "add" | "del" | "clear" | "prepare" | "commit" => true,
        "set" => listing == Listing::Map,
        _ => false,
    }
}

/// `#<id>` or a file name, as HAProxy's `pat_ref_lookup_ref`, among the references the
/// listing shows (an ACL's own patterns have no file name).
fn find(listing: Listing, spec: &str) -> Option<Arc<MapFile>> {
    let listed =
        |m: &Arc<MapFile>| listing.lists(&m.content.read().unwrap_or_else(|e| e.into_inner()));
    let all = maps().into_iter().filter(listed);
    match spec.strip_prefix('#') {
        Some(id) => {
            let id: usize = id.parse().ok()?;
            all.into_iter().find(|m| m.id == id)
        }
        None => all
            .into_iter()
            .find(|m| m.inline.is_none() && m.name == spec),
    }
}

/// Runs `verb map|acl args...`; HAProxy 2.6 lets every level run them.
pub fn command(listing: Listing, verb: &str, args: &[&str]) -> String {
    let noun = listing.noun();
    // `show`, `add`, `clear` and `commit` take a version first (`@N`).
    let (version, rest) = match args.split_first() {
        Some((v, rest)) if v.starts_with('@') => (Some(version_number(&v[1..])), rest),
        _ => (None, args),
    };
    let with = |spec: &str, f: &dyn Fn(&MapFile) -> String| match find(listing, spec) {
        Some(map) => f(&map),
        None => format!("Unknown {noun} identifier. Please use #<id> or <file>.\n"),
    };
    match (verb, rest) {
        ("show", []) if version.is_none() => list(listing),
        ("show", spec) => with(spec.first().copied().unwrap_or_default(), &|m| show(m, version)),
        ("get", [spec, key, ..]) => with(spec, &|m| get(listing, m, key)),
        ("get", _) => format!("Missing {noun} identifier and/or key.\n"),
        ("add", [spec, key, value, ..]) if listing == Listing::Map => {
            with(spec, &|m| add(m, listing, version, key, value))
        }
        ("add", _) if listing == Listing::Map => "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n".into(),
        ("add", [spec, pattern, ..]) => with(spec, &|m| match m.two_columns {
            true => "This ACL is shared with a map containing samples. You must use the command 'add map' to add values.\n".into(),
            false => add(m, listing, version, pattern, ""),
        }),
        ("add", _) => "'add acl' expects two parameters: ACL identifier and pattern.\n".into(),
        ("set", [spec, key, value, ..]) => with(spec, &|m| set(m, key, value)),
        ("set", _) => "'set map' expects three parameters: map identifier, key and value.\n".into(),
        ("del", [spec, key, ..]) => with(spec, &|m| del(m, key)),
        ("del", _) => format!("This command expects two parameters: {noun} identifier and key.\n"),
        ("prepare", spec) => with(spec.first().copied().unwrap_or_default(), &prepare),
        ("commit", _) if version.is_none() => "Missing version number.\n".into(),
        ("commit", [spec, ..]) => with(spec, &|m| commit(m, version.unwrap_or_default())),
        ("clear", [spec, ..]) => with(spec, &|m| clear(m, version)),
        _ => format!("Missing {noun} identifier.\n"),
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
    let Some(map) = find(Listing::Map, spec) else {
        return "Unknown map identifier. Please use #<id> or <file>.\n".into();
    };
    let mut rest = payload;
    while !rest.is_empty() {
        let Some(key_end) = rest.find([' ', '\t']) else {
            return format!("Missing value for key '{rest}'.\n");
        };
        let key = &rest[..key_end];
        let after = rest[key_end + 1..].trim_start_matches([' ', '\t']);
        let value_end = after.find('\n').unwrap_or(after.len());
        rest = after.get(value_end + 1..).unwrap_or_default();
        let answer = add(&map, Listing::Map, version, key, &after[..value_end]);
        if !answer.is_empty() {
            return answer;
        }
    }
    String::new()
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

/// `show map|acl`: `id (file) description` per reference the listing shows.
fn list(listing: Listing) -> String {
    let mut out = String::from("# id (file) description\n");
    for map in maps() {
        let content = map.content.read().unwrap_or_else(|e| e.into_inner());
        if !listing.lists(&content) {
            continue;
        }
        let description = match &map.inline {
            Some(description) => description.clone(),
            None => {
                let users: Vec<String> = (content.users.iter())
                    .map(|(user, p)| {
                        let by = if *user == Use::Acl { "acl" } else { "map" };
                        format!("{by} at file '{}' line {}", p.file, p.line)
                    })
                    .collect();
                let users = match users.is_empty() {
                    true => "map".to_string(),
                    false => users.join(", by "),
                };
                format!("pattern loaded from file '{}' used by {users}", map.name)
            }
        };
        out.push_str(&format!(
            "{} ({}) {description}. curr_ver={} next_ver={} entry_cnt={}\n",
            map.id, map.name, content.current, content.next, content.count
        ));
    }
    out
}

/// The entries of a version (the current one by default).
fn show(map: &MapFile, version: Option<u32>) -> String {
    let content = map.content.read().unwrap_or_else(|e| e.into_inner());
    let version = version.unwrap_or(content.current);
    (content.entries.iter())
        .filter(|e| e.version == version)
        .map(|e| match &e.value {
            Some(value) => format!("{:#x} {} {value}\n", e.id, e.key),
            None => format!("{:#x} {}\n", e.id, e.key),
        })
        .collect()
}

/// `get map|acl`: for each way the reference is matched, whether `key` matches and what,
/// worded for the listing asked (an ACL's way has no value to show).
fn get(listing: Listing, map: &MapFile, key: &str) -> String {
    let content = map.content.read().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for expr in &content.exprs {
        let bytes = crate::bytestr::to_bytes(key);
        let folded;
        let input = match expr.kind {
            // As HAProxy's `sample_convert` casts a string to an integer, then to an address.
            Match::Int => crate::runtime::convert::str_to_int(&bytes).map(Input::Int),
            Match::Len => Some(Input::Int(bytes.len() as i64)),
            Match::Ip => map_ip_value(key).map(Input::Ip),
            Match::Reg | Match::Regm => Some(Input::Bytes(&bytes)),
            _ if expr.flags.ignore_case => {
                folded = bytes.to_ascii_lowercase();
                Some(Input::Bytes(&folded))
            }
            _ => Some(Input::Bytes(&bytes)),
        };
        let case = match expr.flags.ignore_case {
            true => "insensitive",
            false => "sensitive",
        };
        out.push_str(&format!("type={}, case={case}, ", expr.kind.name()));
        let found = input
            .and_then(|i| expr.find(expr.kind, i))
            .and_then(|id| Some((expr.compiled.get(&id)?, content.entries.get(id)?)));
        let Some((c, entry)) = found else {
            out.push_str(match listing {
                Listing::Map => "found=no\n",
                Listing::Acl => "match=no\n",
            });
            continue;
        };
        // Odd masks are kept out of HAProxy's tree.
        let tree = expr.indexed() && !matches!(c.key, Key::Masked(..));
        let idx = if tree { "tree" } else { "list" };
        // An ACL's way, or an entry without a sample (`add-acl` on a map's file), has no
        // value to show.
        let valueless = expr.acl || entry.value.is_none();
        let value = match (&c.value, valueless) {
            (_, true) => "none".to_string(),
            (Value::Str(b), _) => format!("\"{}\"", crate::bytestr::from_vec(b.clone())),
            (Value::Int(n), _) => format!("\"{n}\""),
            (Value::Ip(ip), _) => format!("\"{ip}\""),
        };
        match (listing, valueless) {
            (Listing::Acl, _) => out.push_str(&format!(
                "match=yes, idx={idx}, pattern=\"{}\"\n",
                entry.key
            )),
            (Listing::Map, true) => out.push_str(&format!(
                "found=yes, idx={idx}, key=\"{}\", value={value}\n",
                entry.key
            )),
            (Listing::Map, false) => out.push_str(&format!(
                "found=yes, idx={idx}, key=\"{}\", value={value}, type=\"{}\"\n",
                entry.key,
                c.value.type_name()
            )),
        }
    }
    out
}

/// Compiles `entry` for every expression, or HAProxy's message for the first refusal and
/// how many expressions took it before.
fn compile_all(content: &Content, entry: &Entry) -> Result<Vec<Compiled>, (String, usize)> {
    let mut out = Vec::new();
    for expr in &content.exprs {
        out.push(expr.compile(entry, false).map_err(|why| (why, out.len()))?);
    }
    Ok(out)
}

fn add(map: &MapFile, listing: Listing, version: Option<u32>, key: &str, value: &str) -> String {
    let mut content = map.content.write().unwrap_or_else(|e| e.into_inner());
    // `add acl` adds a pattern, without a sample.
    let value = (listing == Listing::Map).then_some(value);
    add_entry(map, &mut content, listing, version, key, value)
}

/// [`add`] with the map's content already locked.
fn add_entry(
    map: &MapFile,
    content: &mut Content,
    listing: Listing,
    version: Option<u32>,
    key: &str,
    value: Option<&str>,
) -> String {
    let version = version.unwrap_or(content.current);
    if after(version, content.next) {
        let noun = listing.noun().to_ascii_lowercase();
        return format!("Version number in the future, please use 'prepare {noun}' before.\n");
    }
    let entry = Entry {
        id: next_entry_id(),
        line: 0,
        version,
        key: key.to_string(),
        value: value.map(str::to_string),
    };
    match compile_all(content, &entry) {
        Err((why, taken)) => {
            // HAProxy pushed it into the expressions before, then deleted it.
            content.count = content.count.wrapping_add(taken as u64).wrapping_sub(1);
            format!("{why}.\n")
        }
        Ok(compiled) => {
            map.changed.store(true, Ordering::Relaxed);
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
    set_value(&mut content, &targets, value)
}

/// Gives entries `targets` `value` (the content locked), or HAProxy's message when an
/// expression cannot read it (then none changes).
fn set_value(content: &mut Content, targets: &[u64], value: &str) -> String {
    let mut values = Vec::new();
    for expr in &content.exprs {
        match (expr.acl, Value::parse(expr.out, value)) {
            (true, _) => values.push(Value::Str(Vec::new())),
            (false, Some(v)) => values.push(v),
            (false, None) => return format!("unable to parse '{value}'.\n"),
        }
    }
    for &id in targets {
        if let Some(e) = content.entries.get_mut(id) {
            e.value = Some(value.to_string());
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
    map.changed.store(true, Ordering::Relaxed);
    for id in targets {
        remove(&mut content, id);
    }
    String::new()
}

/// A pattern reference named by its file in a rule (`http-request set-map(FILE)` ...),
/// looked up when first used: HAProxy's actions look theirs up by name (`pat_ref_lookup`)
/// each time they run, and a name no map or ACL file has is no error, the action doing
/// nothing. References are all made while the configuration loads, so one look-up is
/// every look-up's answer.
#[derive(Debug, Clone)]
pub struct FileRef {
    name: String,
    found: Arc<std::sync::OnceLock<Option<Arc<MapFile>>>>,
}

impl FileRef {
    pub fn new(name: String) -> FileRef {
        FileRef {
            name,
            found: Arc::default(),
        }
    }

    /// The file as the rule names it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The map or ACL file of that name (never an ACL's own patterns, which have none).
    pub fn get(&self) -> Option<&MapFile> {
        let found = self.found.get_or_init(|| {
            (maps().into_iter()).find(|m| m.inline.is_none() && m.name == self.name)
        });
        found.as_deref()
    }
}

impl PartialEq for FileRef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for FileRef {}

impl MapFile {
    /// `add-acl(FILE) KEY`: `key` added to the current version unless an entry of any
    /// version has it, as HAProxy's action (`pat_ref_find_elt`, then `pat_ref_add`); an
    /// expression refusing it leaves it out.
    pub fn add_if_missing(&self, key: &str) {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        if content.entries.with_key(key).is_empty() {
            add_entry(self, &mut content, Listing::Acl, None, key, None);
        }
    }

    /// `set-map(FILE) KEY VALUE`: every entry with `key` (of any version) takes `value`,
    /// or, without one, `key value` is added to the current version; a value an
    /// expression cannot read changes nothing, as HAProxy's `pat_ref_set`/`pat_ref_add`.
    pub fn set_or_add(&self, key: &str, value: &str) {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        let targets = content.entries.with_key(key).to_vec();
        if targets.is_empty() {
            add_entry(self, &mut content, Listing::Map, None, key, Some(value));
        } else {
            set_value(&mut content, &targets, value);
        }
    }

    /// `del-acl(FILE) KEY`, `del-map(FILE) KEY`: every entry with `key` deleted, whatever
    /// its version (HAProxy's `pat_ref_delete`; the key is never an `#<id>`).
    pub fn delete_key(&self, key: &str) {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        let targets = content.entries.with_key(key).to_vec();
        if targets.is_empty() {
            return;
        }
        self.changed.store(true, Ordering::Relaxed);
        for id in targets {
            remove(&mut content, id);
        }
    }
}

/// Deletes every entry of a version (the current one by default).
fn clear(map: &MapFile, version: Option<u32>) -> String {
    let version = {
        let content = map.content.read().unwrap_or_else(|e| e.into_inner());
        version.unwrap_or(content.current)
    };
    map.changed.store(true, Ordering::Relaxed);
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
    map.changed.store(true, Ordering::Relaxed);
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
    fn references_are_numbered_after_the_highest_alive() {
        let mut reg = Registry::new();
        let add =
            |reg: &mut Registry| register(reg, String::new(), false, None, Entries::default());
        let (a, b, c) = (add(&mut reg), add(&mut reg), add(&mut reg));
        assert_eq!((a.id, b.id, c.id), (0, 1, 2));
        drop(b);
        let d = add(&mut reg);
        assert_eq!(d.id, 3, "a hole below the highest is not reused");
        let kept: Vec<_> = (0..100).map(|_| add(&mut reg)).collect();
        assert_eq!(kept.last().map(|m| m.id), Some(103));
        drop(kept);
        assert_eq!(add(&mut reg).id, 4, "the dead at the top are forgotten");
        assert!(
            reg.all.len() < 16,
            "dead references are swept: {}",
            reg.all.len()
        );
        drop((a, c, d));
    }

    #[test]
    fn samples_are_matched_as_their_text_without_copies() {
        let mut buf = TextBuf::new();
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(&*text_bytes(&Sample::Ip(ip), &mut buf), b"2001:db8::1");
        let mut buf = TextBuf::new();
        assert_eq!(
            &*text_bytes(&Sample::Int(i64::MIN), &mut buf),
            b"-9223372036854775808"
        );
        let mut buf = TextBuf::new();
        assert_eq!(
            &*text_bytes(&Sample::Bin(b"ab\0cd".to_vec()), &mut buf),
            b"ab"
        );
        let text = Sample::Str("A\u{10FFE9}b".into());
        let mut buf = TextBuf::new();
        assert_eq!(&*text_bytes(&text, &mut buf), b"A\xE9b");
        let long = "X".repeat(300);
        for text in ["MiXed", long.as_str()] {
            let mut lower = LowerBuf::default();
            assert_eq!(
                lower.of(text.as_bytes()),
                text.to_ascii_lowercase().as_bytes()
            );
        }
    }

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
    fn pattern_lines_keep_trailing_blanks() {
        let text = b"/a\n  /b  \n#c\n #d\n\n/e\r\n\t\n";
        let got: Vec<(usize, &[u8])> = (parse_pattern_lines(text).into_iter())
            .map(|(n, k, _)| (n, k))
            .collect();
        let want: [(usize, &[u8]); 4] = [(1, b"/a"), (2, b"/b  "), (4, b"#d"), (6, b"/e")];
        assert_eq!(got, want);
    }

    #[test]
    fn acl_uses_share_one_reference_per_file() {
        let path = std::env::temp_dir().join(format!("hapx-acl-unit-{}.acl", std::process::id()));
        std::fs::write(&path, "/X\n10\n").expect("a pattern file");
        let file = path.display().to_string();
        let folded = KeyFlags {
            ignore_case: true,
            no_dns: false,
        };
        let beg = PatternUse::new(
            open(&file, false, Use::Acl).expect("opens"),
            Match::Beg,
            folded,
        )
        .expect("compiles");
        let again = open(&file, false, Use::Acl).expect("opens");
        assert!(Arc::ptr_eq(&beg.pat_ref, &again));
        assert!(open(&file, true, Use::Map).is_err(), "one column only");
        assert!(beg.finds(Input::Bytes(b"/x/y")));
        assert!(!beg.finds(Input::Bytes(b"/y")));
        assert!(!beg.changed());
        let spec = format!("#{}", again.id);
        assert_eq!(command(Listing::Acl, "add", &[&spec, "/Y"]), "");
        assert!(beg.changed() && beg.finds(Input::Bytes(b"/y")));
        let int = PatternUse::new(again, Match::Int, KeyFlags::default());
        assert_eq!(
            int.expect_err("/X is no integer"),
            format!("'/X' is not a number at line 1 of file '{file}'")
        );
        std::fs::remove_file(&path).ok();
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
