//! Stick tables at work, as HAProxy 2.6 keeps them.
//!
//! A [`Table`] maps keys (an address, an integer, a string, bytes) to entries of counters. Each
//! write touches the entry: its expiry moves to now + `expire`, and the entry becomes the
//! most recently used. Expired entries go when the table is next used; when the table is
//! full, a new key first trashes the `size / 256 + 1` least recently used entries not in use
//! (none with `nopurge`: the new key is then not stored), as HAProxy's
//! `stktable_trash_oldest` does. Rates are HAProxy's `freq_ctr` ([`FreqCtr`]): the events of
//! the current period plus the previous period's weighted by what remains of the current
//! one, in milliseconds, so the values read are HAProxy's.
//!
//! A connection's tracked entries are its [`Counters`]: `tcp-request connection track-scN`
//! fills its session slots, `tcp-request content`/`http-request track-scN` its stream slots
//! (emptied at each HTTP request). Tracking counts the connection (`conn_cnt`, `conn_cur`,
//! `conn_rate`); the end of tracking (a [`Tracked`] dropped) gives `conn_cur` back. The
//! counters reach the rules through a task-local ([`SESSION`]) set only when the process has
//! stick tables, so connections of a configuration without any pay nothing.

pub mod cli;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use super::sample::{Context, Sample};
use super::state::{Backend, Server};
use crate::config::rules::StickAction;
use crate::config::stick::{Counter, DATA_TYPES, DataType, KeyType, Query, StickFetch, TableSpec};

/// HAProxy's `now_ms`: a wrapping millisecond clock. It starts far from 0 so that a counter
/// never updated (tick 0) is seen as periods behind, as in HAProxy.
pub fn now_ms() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed().as_millis() as u32;
    elapsed.wrapping_add(0x8000_0000)
}

/// HAProxy's `freq_ctr`: events of the current period and of the previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreqCtr {
    pub(crate) curr_tick: u32,
    pub(crate) curr_ctr: u32,
    pub(crate) prev_ctr: u32,
}

impl FreqCtr {
    /// `update_freq_ctr_period`: adds `inc` events at `now`.
    pub fn update(&mut self, period: u32, inc: u32, now: u32) {
        if now.wrapping_sub(self.curr_tick) < period {
            self.curr_ctr = self.curr_ctr.wrapping_add(inc);
            return;
        }
        self.prev_ctr = self.curr_ctr;
        self.curr_ctr = inc;
        let mut tick = self.curr_tick.wrapping_add(period);
        if now.wrapping_sub(tick) >= period {
            // At least two periods missed.
            self.prev_ctr = 0;
            tick = now;
        }
        self.curr_tick = tick & !1;
    }

    /// `read_freq_ctr_period`: the events over the last `period` at `now`.
    pub fn read(&self, period: u32, now: u32) -> u32 {
        let (mut curr, mut past) = (u64::from(self.curr_ctr), u64::from(self.prev_ctr));
        let mut remain = self.curr_tick.wrapping_add(period).wrapping_sub(now) as i32;
        if remain < 0 {
            // Past the current period: maybe part of the last one still counts.
            remain = remain.wrapping_add(period as i32);
            past = if remain >= 0 { curr } else { 0 };
            curr = 0;
        }
        // Flapping correction at very low rates.
        if curr == 0 && past <= 1 {
            return past as u32;
        }
        let total = past * remain as u64 + curr * u64::from(period);
        (total / u64::from(period)) as u32
    }
}

/// A key of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Ip(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Integer(u32),
    String(String),
    /// Exactly the table's `len` bytes.
    Binary(Vec<u8>),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Ip(ip) => ip.fmt(f),
            Key::Ipv6(ip) => ip.fmt(f),
            Key::Integer(n) => n.fmt(f),
            Key::String(s) => escape_key(f, s),
            // As HAProxy's `dump_binary`: every byte in uppercase hex.
            Key::Binary(b) => b.iter().try_for_each(|b| write!(f, "{b:02X}")),
        }
    }
}

/// A string key as HAProxy's `dump_text` shows it in `show table`: bytes that are not
/// printable ASCII as `\xHH`, and `\t \n \r \e`, the space, `=` and `\` escaped by a
/// backslash (an entry line stays one line of `name=value` words).
fn escape_key(f: &mut std::fmt::Formatter<'_>, key: &str) -> std::fmt::Result {
    for &b in crate::bytestr::to_bytes(key).iter() {
        match b {
            b'\\' | b' ' | b'=' => write!(f, "\\{}", char::from(b))?,
            b'\t' => f.write_str("\\t")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            0x1b => f.write_str("\\e")?,
            0x21..=0x7e => write!(f, "{}", char::from(b))?,
            _ => write!(f, "\\x{b:02X}")?,
        }
    }
    Ok(())
}

impl Key {
    /// The key of a table of `kind` (of `len` bytes for a string or binary one) for a
    /// sample, as HAProxy's `smp_to_stkey`: the sample cast to the table's type as its
    /// `sample_casts` does, then sized. None where HAProxy has no cast (a boolean or binary
    /// sample for an address table, binary for an integer one, IPv6 for an integer one) or
    /// the cast fails (text that is no address, an IPv6 address mapping no IPv4 one).
    pub fn of_sample(kind: KeyType, sample: &Sample<'_>, len: usize) -> Option<Key> {
        match sample {
            Sample::Ip(ip) => Key::of_ip(kind, *ip, len),
            Sample::Bool(b) => Key::of_int(kind, i64::from(*b), true, len),
            Sample::Int(n) => Key::of_int(kind, *n, false, len),
            Sample::Str(s) => Key::of_bytes(kind, &crate::bytestr::to_bytes(s), true, len),
            Sample::Bin(b) => Key::of_bytes(kind, b, false, len),
        }
    }

    /// The key for an address (`c_ip2int`, `c_ip2ipv6`, `c_ipv62ip`, `c_ip2str`,
    /// `c_addr2bin`): an IPv6 address has an IPv4 key only when it maps one, and no
    /// integer key.
    pub fn of_ip(kind: KeyType, ip: IpAddr, len: usize) -> Option<Key> {
        match (kind, ip) {
            (KeyType::Ip, IpAddr::V4(v4)) => Some(Key::Ip(v4)),
            (KeyType::Ip, IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(Key::Ip),
            (KeyType::Ipv6, IpAddr::V4(v4)) => Some(Key::Ipv6(v4.to_ipv6_mapped())),
            (KeyType::Ipv6, IpAddr::V6(v6)) => Some(Key::Ipv6(v6)),
            (KeyType::String, ip) => Some(Key::of_str(&ip.to_string(), len)),
            (KeyType::Integer, IpAddr::V4(v4)) => Some(Key::Integer(u32::from(v4))),
            (KeyType::Integer, IpAddr::V6(_)) => None,
            (KeyType::Binary, IpAddr::V4(v4)) => binary(&v4.octets(), len),
            (KeyType::Binary, IpAddr::V6(v6)) => binary(&v6.octets(), len),
        }
    }

    /// The key for an integer, or a boolean when `boolean` (`c_int2ip`, `c_int2ipv6`,
    /// `c_int2str`, `c_int2bin`: 8 bytes, big-endian); an integer key keeps the low 32
    /// bits, as HAProxy's.
    fn of_int(kind: KeyType, n: i64, boolean: bool, len: usize) -> Option<Key> {
        match kind {
            KeyType::Ip | KeyType::Ipv6 if boolean => None,
            KeyType::Ip => Some(Key::Ip(Ipv4Addr::from(n as u32))),
            KeyType::Ipv6 => Some(Key::Ipv6(Ipv4Addr::from(n as u32).to_ipv6_mapped())),
            KeyType::Integer => Some(Key::Integer(n as u32)),
            KeyType::String => Some(Key::of_str(&n.to_string(), len)),
            KeyType::Binary => binary(&n.to_be_bytes(), len),
        }
    }

    /// The key for text (`text`) or binary bytes (`c_str2ip`'s `buf2ip`, `c_str2ipv6`,
    /// `c_str2int`, `c_bin2str`: up to the first NUL); binary has no address or integer.
    fn of_bytes(kind: KeyType, bytes: &[u8], text: bool, len: usize) -> Option<Key> {
        match kind {
            KeyType::Binary => binary(bytes, len),
            KeyType::String => {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                let end = end.min(len);
                Some(Key::String(
                    crate::bytestr::from_bytes(&bytes[..end]).into_owned(),
                ))
            }
            _ if !text => None,
            KeyType::Ip => super::map::buf2ip(bytes).map(Key::Ip),
            KeyType::Ipv6 => buf2ip6(bytes).map(Key::Ipv6),
            KeyType::Integer => super::convert::str_to_int(bytes).map(|n| Key::Integer(n as u32)),
        }
    }

    /// The order of HAProxy's key tree, which `show table` walks: the bytes of the key as
    /// stored (a string's raw bytes), an integer's in the host's (little-endian) order.
    fn tree_order(&self, other: &Key) -> std::cmp::Ordering {
        match (self, other) {
            (Key::Integer(a), Key::Integer(b)) => a.to_le_bytes().cmp(&b.to_le_bytes()),
            (Key::String(a), Key::String(b)) => {
                crate::bytestr::to_bytes(a).cmp(&crate::bytestr::to_bytes(b))
            }
            _ => self.cmp(other),
        }
    }

    /// A string key: at most `len` bytes (wherever that cuts), up to a NUL byte.
    pub fn of_str(text: &str, len: usize) -> Key {
        Key::String(crate::bytestr::cut(text, len))
    }
}

/// HAProxy's `buf2ip6`: text shorter than its 46-byte buffer that `inet_pton` reads as an
/// IPv6 address.
fn buf2ip6(bytes: &[u8]) -> Option<Ipv6Addr> {
    const INET6_ADDRSTRLEN: usize = 46;
    if bytes.len() >= INET6_ADDRSTRLEN {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// A binary key of `len` bytes: `bytes` cut to it, or padded with zeros as HAProxy pads
/// a shorter sample, in a buffer of `tune.bufsize` bytes (no key past that size).
fn binary(bytes: &[u8], len: usize) -> Option<Key> {
    if bytes.len() < len && len > super::BUFSIZE {
        return None;
    }
    let mut key = bytes[..bytes.len().min(len)].to_vec();
    key.resize(len, 0);
    Some(Key::Binary(key))
}

/// The byte counters: client to server (`bytes_in`), then server to client (`bytes_out`),
/// each a count and a rate.
const BYTES: [[DataType; 2]; 2] = [
    [DataType::BytesInCnt, DataType::BytesInRate],
    [DataType::BytesOutCnt, DataType::BytesOutRate],
];

/// A stored value: a count, a rate, or a server's name (`server_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Count(u64),
    Rate(FreqCtr),
    Name(String),
}

#[derive(Debug)]
struct Entry {
    /// One per stored data type, in the table's order.
    values: Vec<Value>,
    /// Trackers holding it: an entry in use neither expires nor is trashed.
    refs: u32,
    /// Tick it expires at.
    expire: u32,
    /// Its place in the use order.
    seq: u64,
    /// Its last local change's number in [`Inner::updates`] (0: learned from a peer, or
    /// never changed here): what peers are sent.
    update: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Entries from the least recently used: where a full table looks for one to trash.
    order: BTreeMap<u64, Key>,
    /// The same, for expiry (touch order is expiry order: `expire` is the same for all),
    /// less the entries found expired while tracked: they wait out of it until touched
    /// again or released (the last release of one still expired removes it), so that expiry does not walk them on every
    /// access.
    expiry: BTreeMap<u64, Key>,
    seq: u64,
    /// Replicated tables: the entries changed here, by change number (HAProxy's update
    /// tree), each entry under its last number only.
    updates: BTreeMap<u64, Key>,
    /// The last change number given (HAProxy's `localupdate`, which is 32 bits on the
    /// wire: 64 here so that the order survives its wrapping).
    local_update: u64,
}

/// A proxy's stick table.
#[derive(Debug)]
pub struct Table {
    /// The proxy's name, or `SECTION/NAME` for a peers section's `table`.
    pub name: String,
    pub spec: TableSpec,
    /// Where each data type is in an entry's values.
    slot: [Option<u8>; DATA_TYPES],
    expire_ms: u32,
    inner: Mutex<Inner>,
    /// Replicated tables (`peers`): wakes the peer sessions after local changes.
    pub changes: Option<Changes>,
}

/// A coalescing signal of local changes: a burst of writes wakes the peer sessions once
/// (a write notifies only when a session looked since the last notification), and it is
/// given outside the table's lock.
#[derive(Debug, Default)]
pub struct Changes {
    notify: tokio::sync::Notify,
    signalled: std::sync::atomic::AtomicBool,
}

impl Changes {
    fn signal(&self) {
        if !self
            .signalled
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.notify.notify_waiters();
        }
    }

    /// Waits for a change after this call. A session registers before it looks at the
    /// table: `notified` is enabled and the signal re-armed here, so a change made while
    /// it looks wakes it.
    pub fn listen(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut notified = Box::pin(self.notify.notified());
        notified.as_mut().enable();
        self.signalled
            .store(false, std::sync::atomic::Ordering::SeqCst);
        notified
    }
}

/// A data filter of `show table`/`clear table`: `data.TYPE op VALUE`.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    pub data: DataType,
    pub op: Op,
    /// Compared as HAProxy does, in signed 64 bits (`data.server_id eq -1` finds -1).
    pub value: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn named(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            _ => return None,
        })
    }

    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// Whether tick `t` is at or before `now`.
fn reached(t: u32, now: u32) -> bool {
    now.wrapping_sub(t) as i32 >= 0
}

impl Table {
    pub fn new(name: String, spec: TableSpec) -> Table {
        let mut slot = [None; DATA_TYPES];
        for (i, s) in spec.store.iter().enumerate() {
            slot[s.data as usize] = Some(i as u8);
        }
        let expire_ms = spec.expire.map_or(0, |d| {
            u32::try_from(d.as_millis()).unwrap_or(i32::MAX as u32)
        });
        Table {
            name,
            slot,
            expire_ms,
            changes: spec.peers.is_some().then(Changes::default),
            spec,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn key_type(&self) -> KeyType {
        self.spec.key
    }

    /// The key of this table for an address (a `src_*` fetch's).
    pub fn key_of_ip(&self, ip: IpAddr) -> Option<Key> {
        Key::of_ip(self.spec.key, ip, self.spec.key_len)
    }

    /// The key of this string table for text (a runtime command's).
    pub fn key_of_text(&self, text: &str) -> Key {
        Key::of_str(text, self.spec.key_len)
    }

    /// The key of this table for a sample ([`Key::of_sample`]); None for no sample or one
    /// that makes no key.
    pub fn key_of_sample(&self, sample: Option<Sample<'_>>) -> Option<Key> {
        Key::of_sample(self.spec.key, &sample?, self.spec.key_len)
    }

    /// The table, expired entries gone.
    fn lock(&self, now: u32) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.spec.expire.is_some() {
            let Inner {
                entries,
                order,
                expiry,
                updates,
                ..
            } = &mut *inner;
            while let Some(entry) = expiry.first_entry() {
                match entries.get(entry.get()) {
                    Some(e) if !reached(e.expire, now) => break,
                    Some(e) if e.refs > 0 => {
                        entry.remove();
                    }
                    _ => {
                        let (seq, key) = entry.remove_entry();
                        order.remove(&seq);
                        if let Some(e) = entries.remove(&key) {
                            updates.remove(&e.update);
                        }
                    }
                }
            }
        }
        inner
    }

    fn new_values(&self) -> Vec<Value> {
        self.spec
            .store
            .iter()
            .map(|s| match s.data {
                DataType::ServerKey => Value::Name(String::new()),
                d if d.is_rate() => Value::Rate(FreqCtr::default()),
                _ => Value::Count(0),
            })
            .collect()
    }

    /// Runs `f` on `key`'s entry (made if `create`, trashing the oldest when full), which it
    /// touches; None if there is none (or no room).
    fn with_entry<R>(
        &self,
        key: &Key,
        create: bool,
        f: impl FnOnce(&mut Data<'_>) -> R,
    ) -> Option<R> {
        let now = now_ms();
        let mut guard = self.lock(now);
        let inner = &mut *guard;
        if !inner.entries.contains_key(key) {
            if !create || !self.make_room(inner) {
                return None;
            }
            inner.entries.insert(
                key.clone(),
                Entry {
                    values: self.new_values(),
                    refs: 0,
                    expire: now,
                    seq: 0,
                    update: 0,
                },
            );
        }
        inner.seq += 1;
        let seq = inner.seq;
        let entry = inner.entries.get_mut(key)?;
        inner.order.remove(&entry.seq);
        inner.order.insert(seq, key.clone());
        inner.expiry.remove(&entry.seq);
        inner.expiry.insert(seq, key.clone());
        entry.seq = seq;
        entry.expire = now.wrapping_add(self.expire_ms);
        let mut data = Data {
            table: self,
            entry,
            now,
        };
        let result = f(&mut data);
        if let Some(changes) = &self.changes {
            // A local change: the peers are sent it (HAProxy's `stktable_touch_local`),
            // under a new number (the key moves: no copy of it when it was queued).
            let queued = inner.updates.remove(&entry.update);
            inner.local_update += 1;
            entry.update = inner.local_update;
            let key = queued.unwrap_or_else(|| key.clone());
            inner.updates.insert(entry.update, key);
            drop(guard);
            changes.signal();
        }
        Some(result)
    }

    /// Room for one more entry: HAProxy trashes `size / 256 + 1` unused entries from the
    /// least recently used, looking at fewer than twice as many (its `max_search`: a table
    /// full of tracked entries is not walked whole on every new key).
    fn make_room(&self, inner: &mut Inner) -> bool {
        if inner.entries.len() < self.spec.size {
            return true;
        }
        if self.spec.nopurge {
            return false;
        }
        let batch = (self.spec.size >> 8) + 1;
        let victims: Vec<(u64, Key)> = inner
            .order
            .iter()
            .take(batch * 2 - 1)
            .filter(|(_, k)| inner.entries.get(*k).is_some_and(|e| e.refs == 0))
            .take(batch)
            .map(|(s, k)| (*s, k.clone()))
            .collect();
        for (seq, key) in &victims {
            inner.order.remove(seq);
            inner.expiry.remove(seq);
            if let Some(e) = inner.entries.remove(key) {
                inner.updates.remove(&e.update);
            }
        }
        inner.entries.len() < self.spec.size
    }

    /// Reads `data` of `key` without touching it: None if the table does not store it,
    /// Some(0) if there is no such entry (as `src_*` fetches answer).
    pub fn read(&self, key: &Key, data: DataType) -> Option<u64> {
        self.slot[data as usize]?;
        let now = now_ms();
        let inner = self.lock(now);
        Some(inner.entries.get(key).map_or(0, |e| {
            Data::value_of(self, &e.values, data, now).unwrap_or(0)
        }))
    }

    /// Updates `key`'s entry with `f` (made if missing); None if there is no room.
    pub fn update<R>(&self, key: &Key, f: impl FnOnce(&mut Data<'_>) -> R) -> Option<R> {
        self.with_entry(key, true, f)
    }

    /// Starts tracking `key`: counts the connection (`conn_cnt`, `conn_cur`, `conn_rate`);
    /// false if the table has no room.
    fn acquire(&self, key: &Key) -> bool {
        self.with_entry(key, true, |d| {
            d.entry.refs += 1;
            d.add(DataType::ConnCnt, 1);
            d.add(DataType::ConnCur, 1);
            d.add(DataType::ConnRate, 1);
        })
        .is_some()
    }

    /// Ends tracking `key`: `conn_cur` goes down again. As HAProxy's
    /// `stream_store_counters`, only that change touches the entry (its expiry, and an update
    /// for the peers); a table without `conn_cur` just lets it go, and an entry expired
    /// meanwhile goes with its last tracker (`stksess_kill_if_expired`).
    fn release(&self, key: &Key) {
        if self.stores(DataType::ConnCur) {
            self.with_entry(key, false, |d| {
                d.entry.refs = d.entry.refs.saturating_sub(1);
                d.sub(DataType::ConnCur, 1);
            });
            return;
        }
        let now = now_ms();
        let mut guard = self.lock(now);
        let inner = &mut *guard;
        let Some(entry) = inner.entries.get_mut(key) else {
            return;
        };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs == 0 && self.spec.expire.is_some() && reached(entry.expire, now) {
            let (seq, update) = (entry.seq, entry.update);
            inner.order.remove(&seq);
            inner.expiry.remove(&seq);
            inner.updates.remove(&update);
            inner.entries.remove(key);
        }
    }

    /// Entries in use.
    pub fn used(&self) -> usize {
        self.lock(now_ms()).entries.len()
    }

    /// `show table NAME`: the header line and one line per entry matching.
    pub fn dump(&self, filters: &[Filter], only: Option<&Key>) -> String {
        let now = now_ms();
        let inner = self.lock(now);
        let mut out = self.header(inner.entries.len());
        let mut keys: Vec<(&Key, &Entry)> = match only {
            Some(k) => inner.entries.get_key_value(k).into_iter().collect(),
            None => inner.entries.iter().collect(),
        };
        keys.sort_by(|(a, _), (b, _)| a.tree_order(b));
        for (key, e) in keys {
            if !self.matches(&e.values, filters, now) {
                continue;
            }
            let exp = if self.spec.expire.is_some() {
                e.expire.wrapping_sub(now) as i32
            } else {
                0
            }
            .max(0);
            let _ = write!(
                out,
                "{:#x}: key={key} use={} exp={exp}",
                e as *const Entry as usize, e.refs
            );
            for (s, value) in self.spec.store.iter().zip(&e.values) {
                let v = Data::value_of(self, &e.values, s.data, now).unwrap_or(0);
                if let Value::Name(name) = value {
                    // HAProxy shows an entry without a server's name `-`.
                    let name = if name.is_empty() { "-" } else { name };
                    let _ = write!(out, " {}={name}", s.data.name());
                } else if s.data.is_rate() {
                    let _ = write!(out, " {}({})={v}", s.data.name(), s.period_ms);
                } else if s.data == DataType::ServerId {
                    // A signed 32-bit number in HAProxy (`set table` may store -1).
                    let _ = write!(out, " {}={}", s.data.name(), v as u32 as i32);
                } else {
                    let _ = write!(out, " {}={v}", s.data.name());
                }
            }
            out.push('\n');
        }
        out
    }

    /// `# table: NAME, type: ip, size:N, used:N`.
    pub fn header(&self, used: usize) -> String {
        format!(
            "# table: {}, type: {}, size:{}, used:{used}\n",
            self.name,
            self.spec.key.name(),
            self.spec.size
        )
    }

    fn matches(&self, values: &[Value], filters: &[Filter], now: u32) -> bool {
        filters.iter().all(|f| {
            Data::value_of(self, values, f.data, now).is_some_and(|v| {
                // `server_id` is a signed 32-bit number, the others unsigned.
                let v = match f.data {
                    DataType::ServerId => i64::from(v as u32 as i32),
                    _ => v as i64,
                };
                f.op.holds(v, f.value)
            })
        })
    }

    /// `clear table NAME [key K | data filters]`: removes the entries not in use; how many.
    pub fn clear(&self, filters: &[Filter], only: Option<&Key>) -> usize {
        let now = now_ms();
        let mut inner = self.lock(now);
        let Inner {
            entries,
            order,
            expiry,
            updates,
            ..
        } = &mut *inner;
        let gone: Vec<(u64, Key)> = entries
            .iter()
            .filter(|(k, e)| {
                e.refs == 0 && only.is_none_or(|o| o == *k) && self.matches(&e.values, filters, now)
            })
            .map(|(k, e)| (e.seq, k.clone()))
            .collect();
        for (seq, key) in &gone {
            order.remove(seq);
            expiry.remove(seq);
            if let Some(e) = entries.remove(key) {
                updates.remove(&e.update);
            }
        }
        gone.len()
    }

    /// Runs `f` on `key`'s entry, if there is one, and touches it (a `stick match` found it).
    pub fn touch<R>(&self, key: &Key, f: impl FnOnce(&mut Data<'_>) -> R) -> Option<R> {
        self.with_entry(key, false, f)
    }

    /// Whether `key` has an entry.
    pub fn read_exists(&self, key: &Key) -> bool {
        self.lock(now_ms()).entries.contains_key(key)
    }

    /// Whether the table stores `data`.
    pub fn stores(&self, data: DataType) -> bool {
        self.slot[data as usize].is_some()
    }

    /// Whether the table stores a byte count or rate.
    fn stores_bytes(&self) -> bool {
        BYTES.iter().flatten().any(|&d| self.stores(d))
    }
}

/// An entry as the peers protocol sends it ([`super::peers`]).
#[derive(Debug, Clone)]
pub struct Exported {
    /// Its last local change number (0 for an entry only ever learned from a peer).
    pub update: u64,
    pub key: Key,
    /// Milliseconds before it expires.
    pub expire_in: u32,
    /// The stored data, in HAProxy's order.
    pub values: Vec<(DataType, Value)>,
}

/// Replication: what peers are sent, and what they teach.
impl Table {
    /// The last local change number.
    pub fn local_update(&self) -> u64 {
        self.lock(now_ms()).local_update
    }

    fn export(&self, key: &Key, e: &Entry, now: u32) -> Exported {
        Exported {
            update: e.update,
            key: key.clone(),
            expire_in: (e.expire.wrapping_sub(now) as i32).max(0) as u32,
            values: (self.spec.store.iter().map(|s| s.data))
                .zip(e.values.iter().cloned())
                .collect(),
        }
    }

    /// The entries changed here after change `after`, in change order, at most `max`, and
    /// the last change number then.
    pub fn changed_after(&self, after: u64, max: usize) -> (Vec<Exported>, u64) {
        let now = now_ms();
        let inner = self.lock(now);
        let range = inner.updates.range(after.saturating_add(1)..);
        let changed = range
            .filter_map(|(_, k)| Some(self.export(k, inner.entries.get(k)?, now)))
            .take(max)
            .collect();
        (changed, inner.local_update)
    }

    /// For a full resync, taught in pieces: at most `max` entries used after position
    /// `after` in the use order, least recently used first, with the position of the last
    /// (an entry touched meanwhile moves on, and comes again).
    pub fn export_used_after(&self, after: u64, max: usize) -> (Vec<Exported>, u64) {
        let now = now_ms();
        let inner = self.lock(now);
        let mut last = after;
        let piece = (inner.order.range(after.saturating_add(1)..))
            .take(max)
            .filter_map(|(seq, k)| {
                last = *seq;
                Some(self.export(k, inner.entries.get(k)?, now))
            })
            .collect();
        (piece, last)
    }

    /// An entry a peer sent: made if missing (when there is room), its data the peer's for
    /// the types both store, its expiry `expire_in` ms (the table's by default). It is not
    /// a local change: it is not sent on to other peers. A local change of the entry that
    /// stays queued keeps its number, so a peer that has not acknowledged it still gets it,
    /// with the learned data (HAProxy's `stktable_touch_remote` leaves an entry in the
    /// update tree where it is).
    pub fn learn(&self, key: &Key, expire_in: Option<u32>, values: Vec<(DataType, Value)>) {
        let now = now_ms();
        let mut inner = self.lock(now);
        let inner = &mut *inner;
        if !inner.entries.contains_key(key) {
            if !self.make_room(inner) {
                return;
            }
            let values = self.new_values();
            let entry = Entry {
                values,
                refs: 0,
                expire: now,
                seq: 0,
                update: 0,
            };
            inner.entries.insert(key.clone(), entry);
        }
        inner.seq += 1;
        let seq = inner.seq;
        let Some(entry) = inner.entries.get_mut(key) else {
            return;
        };
        inner.order.remove(&entry.seq);
        inner.order.insert(seq, key.clone());
        inner.expiry.remove(&entry.seq);
        inner.expiry.insert(seq, key.clone());
        entry.seq = seq;
        entry.expire = now.wrapping_add(expire_in.unwrap_or(self.expire_ms));
        for (data, value) in values {
            let Some(i) = self.slot[data as usize] else {
                continue;
            };
            let slot = &mut entry.values[i as usize];
            // Only a value of the kind stored (a peer's table may differ).
            if std::mem::discriminant(slot) == std::mem::discriminant(&value) {
                *slot = value;
            }
        }
    }
}

/// An entry being written.
#[derive(Debug)]
pub struct Data<'a> {
    table: &'a Table,
    entry: &'a mut Entry,
    now: u32,
}

impl Data<'_> {
    fn value_of(table: &Table, values: &[Value], data: DataType, now: u32) -> Option<u64> {
        let i = table.slot[data as usize]?;
        let period = table.spec.store[i as usize].period_ms;
        match &values[i as usize] {
            Value::Count(n) => Some(*n),
            Value::Rate(f) => Some(u64::from(f.read(period, now))),
            Value::Name(_) => None,
        }
    }

    /// Whether the table stores `data`.
    pub fn stores(&self, data: DataType) -> bool {
        self.table.stores(data)
    }

    /// The value of `data`; None if the table does not store it.
    pub fn get(&self, data: DataType) -> Option<u64> {
        Data::value_of(self.table, &self.entry.values, data, self.now)
    }

    /// One more HTTP request (`http_req_cnt`, `http_req_rate`).
    fn count_request(&mut self) {
        self.add(DataType::HttpReqCnt, 1);
        self.add(DataType::HttpReqRate, 1);
    }

    /// One more HTTP error (`http_err_cnt`, `http_err_rate`).
    fn count_error(&mut self) {
        self.add(DataType::HttpErrCnt, 1);
        self.add(DataType::HttpErrRate, 1);
    }

    /// One more HTTP failure (`http_fail_cnt`, `http_fail_rate`).
    fn count_failure(&mut self) {
        self.add(DataType::HttpFailCnt, 1);
        self.add(DataType::HttpFailRate, 1);
    }

    /// Counts `n` bytes into a count and a rate (HAProxy's `stkctr_inc_bytes_in_ctr`: a
    /// rate counts at most 2^32 - 1 per update).
    fn add_bytes(&mut self, [count, rate]: [DataType; 2], n: u64) {
        if n == 0 {
            return;
        }
        if let Some(i) = self.table.slot[count as usize] {
            if let Value::Count(c) = &mut self.entry.values[i as usize] {
                *c = c.wrapping_add(n);
            }
        }
        self.add(rate, n as u32);
    }

    /// Counts `n` events of `data` (a rate or a count), if stored.
    pub fn add(&mut self, data: DataType, n: u32) {
        let Some(i) = self.table.slot[data as usize] else {
            return;
        };
        let period = self.table.spec.store[i as usize].period_ms;
        match &mut self.entry.values[i as usize] {
            Value::Count(c) => *c = c.wrapping_add(u64::from(n)),
            Value::Rate(f) => f.update(period, n, self.now),
            Value::Name(_) => {}
        }
    }

    fn sub(&mut self, data: DataType, n: u64) {
        if let Some(i) = self.table.slot[data as usize] {
            if let Value::Count(c) = &mut self.entry.values[i as usize] {
                *c = c.saturating_sub(n);
            }
        }
    }

    /// `set table`: a count becomes `v`; a rate starts a period now with `v` events.
    pub fn put(&mut self, data: DataType, v: u64) {
        let Some(i) = self.table.slot[data as usize] else {
            return;
        };
        let slot = &mut self.entry.values[i as usize];
        match slot {
            Value::Count(_) => *slot = Value::Count(v),
            Value::Rate(_) => {
                *slot = Value::Rate(FreqCtr {
                    curr_tick: self.now & !1,
                    curr_ctr: v as u32,
                    prev_ctr: 0,
                });
            }
            Value::Name(_) => {}
        }
    }

    /// Sets a count (`set table`, `sc-set-gpt0`, `sc_clr_gpc0`); false if not stored or a rate.
    pub fn set(&mut self, data: DataType, v: u64) -> bool {
        let Some(i) = self.table.slot[data as usize] else {
            return false;
        };
        match &mut self.entry.values[i as usize] {
            Value::Count(c) => {
                *c = v;
                true
            }
            Value::Rate(_) | Value::Name(_) => false,
        }
    }

    /// The server of `backend` the entry names: by its name (`server_key`), else by its id
    /// (`server_id`), as HAProxy 2.6's `process_sticking_rules` looks (an entry a peer
    /// taught names the same server whatever the order of the servers here).
    pub fn server(&self, backend: &Backend) -> Option<Arc<Server>> {
        let named = (self.table.slot[DataType::ServerKey as usize]).and_then(|i| {
            match &self.entry.values[i as usize] {
                Value::Name(name) => backend.servers.iter().find(|s| &s.name == name),
                _ => None,
            }
        });
        let id = || {
            let id = self.get(DataType::ServerId).filter(|&id| id > 0)?;
            backend.servers.iter().find(|s| s.id as u64 == id)
        };
        named.or_else(id).cloned()
    }

    /// Remembers the server of a `stick` rule: its id and its name.
    pub fn set_server(&mut self, id: u64, name: &str) {
        self.set(DataType::ServerId, id);
        if let Some(i) = self.table.slot[DataType::ServerKey as usize] {
            self.entry.values[i as usize] = Value::Name(name.to_string());
        }
    }
}

/// The stick tables of the process, by proxy name.
#[derive(Debug, Default)]
pub struct Tables {
    tables: Vec<Arc<Table>>,
    /// Some table stores byte counts or rates: streams count their bytes into them.
    counts_bytes: bool,
}

impl Tables {
    pub fn new(config: &crate::config::model::Config) -> Tables {
        // The proxies' and the peers sections' (`table` lines), as declared.
        let tables: Vec<Arc<Table>> = (crate::config::peers::declared_tables(config).into_iter())
            .map(|(name, spec)| Arc::new(Table::new(name, spec)))
            .collect();
        let counts_bytes = tables.iter().any(|t| t.stores_bytes());
        Tables {
            tables,
            counts_bytes,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Table>> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Table>> {
        self.tables.iter()
    }

    /// A stream of the current connection moved `to_server` bytes from its client and
    /// `to_client` back: the entries of its stick counters count them (nothing to do, and
    /// nothing looked at, unless a table stores bytes).
    pub fn count_bytes(&self, to_server: u64, to_client: u64) {
        if self.counts_bytes && (to_server | to_client) != 0 {
            if let Some(c) = current() {
                c.count_bytes(to_server, to_client);
            }
        }
    }
}

/// A tracked entry; dropping it ends the tracking.
#[derive(Debug)]
pub struct Tracked {
    pub table: Arc<Table>,
    pub key: Key,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.table.release(&self.key);
    }
}

impl Tracked {
    pub fn update<R>(&self, f: impl FnOnce(&mut Data<'_>) -> R) -> Option<R> {
        self.table.with_entry(&self.key, false, f)
    }

    pub fn read(&self, data: DataType) -> Option<u64> {
        self.table.read(&self.key, data)
    }
}

type Slots = [Option<Arc<Tracked>>; 3];

/// The stick counters of a connection: its session's (from `tcp-request connection`) and
/// its current stream's (`tcp-request content`, `http-request`).
#[derive(Debug, Default)]
pub struct Counters {
    session: Mutex<Slots>,
    stream: Mutex<Slots>,
}

/// Which slots a tracking rule fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Session,
    Stream,
}

fn locked(m: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counters {
    /// `track-scN`: tracks `key` of `table` in slot `slot` unless that slot tracks already;
    /// the new tracking, if any.
    pub fn track(
        &self,
        level: Level,
        slot: u8,
        table: &Arc<Table>,
        key: Key,
    ) -> Option<Arc<Tracked>> {
        let i = usize::from(slot);
        // A stream starts with its session's counters (HAProxy's stream_new copies them):
        // a slot its session tracks is taken for the stream's rules too.
        if level == Level::Stream && locked(&self.session)[i].is_some() {
            return None;
        }
        let mut slots = locked(match level {
            Level::Session => &self.session,
            Level::Stream => &self.stream,
        });
        let at = &mut slots[i];
        if at.is_some() || !table.acquire(&key) {
            return None;
        }
        let tracked = Arc::new(Tracked {
            table: table.clone(),
            key,
        });
        *at = Some(tracked.clone());
        Some(tracked)
    }

    /// What slot `slot` tracks: the stream's, else the session's (as HAProxy's fetches).
    pub fn get(&self, slot: u8) -> Option<Arc<Tracked>> {
        let i = usize::from(slot);
        locked(&self.stream)[i]
            .clone()
            .or_else(|| locked(&self.session)[i].clone())
    }

    /// The connection became a session (its `tcp-request connection` rules let it in, its
    /// PROXY header and TLS handshake over, as HAProxy counts it): the session's entries
    /// count it (`sess_cnt`, `sess_rate`).
    pub fn session_accepted(&self) {
        for t in locked(&self.session).iter().flatten() {
            t.update(|d| {
                d.add(DataType::SessCnt, 1);
                d.add(DataType::SessRate, 1);
            });
        }
    }

    /// The stream trackers end (outside the lock: ending one locks its table).
    pub fn end_stream(&self) {
        let ended = std::mem::take(&mut *locked(&self.stream));
        drop(ended);
    }

    /// An HTTP request the frontend's content rules let in (HAProxy's
    /// `stream_inc_http_req_ctr`, in `http_wait_for_request`): each slot's entry counts it,
    /// the stream's tracker else the session's, so a `tcp-request content` tracking made
    /// just before counts it too.
    pub fn count_request(&self) {
        self.update_each_slot(|d| d.count_request());
    }

    /// Updates each slot's entry: the stream's tracker, else the session's.
    fn update_each_slot(&self, update: impl Fn(&mut Data<'_>)) {
        for t in (0..3).filter_map(|n| self.get(n)) {
            t.update(&update);
        }
    }

    /// Which stream slots track now: [`Counters::count_request_since`] takes it.
    pub fn stream_tracking(&self) -> [bool; 3] {
        locked(&self.stream).each_ref().map(Option::is_some)
    }

    /// The trackings a backend's `tcp-request content` rules made since `before`
    /// ([`Counters::stream_tracking`]) count the HTTP request, as HAProxy's
    /// `stream_inc_be_http_req_ctr` counts the backend's trackers before its `http-request`
    /// rules (which count their own when they track).
    pub fn count_request_since(&self, before: [bool; 3]) {
        // Cloned: updating an entry locks its table, not to be done under the slots' lock.
        let slots = locked(&self.stream).clone();
        let new = slots
            .iter()
            .zip(before)
            .filter_map(|(t, was)| t.as_ref().filter(|_| !was));
        for t in new {
            t.update(|d| d.count_request());
        }
    }

    /// A request refused before any stream: the session's entries count it, and an error
    /// when `error`.
    pub fn failed_request(&self, error: bool) {
        for t in locked(&self.session).iter().flatten() {
            t.update(|d| {
                d.count_request();
                if error {
                    d.count_error();
                }
            });
        }
    }

    /// The bytes of a stream, client to server and back: each slot's entry (the stream's
    /// tracker, else the session's) counts them, as HAProxy's `stream_process_counters`;
    /// an entry of a table storing no bytes is not touched.
    pub fn count_bytes(&self, to_server: u64, to_client: u64) {
        for t in (0..3).filter_map(|n| self.get(n)) {
            if t.table.stores_bytes() {
                t.update(|d| {
                    d.add_bytes(BYTES[0], to_server);
                    d.add_bytes(BYTES[1], to_client);
                });
            }
        }
    }

    /// A response with a 4xx status: each slot's entry counts an HTTP error once (the
    /// stream's tracker, else the session's, as HAProxy's stream counters).
    pub fn http_error(&self) {
        self.update_each_slot(|d| d.count_error());
    }

    /// A server's failure (a 5xx from it but 501 and 505, or no valid response): each
    /// slot's entry counts an HTTP failure once, as HAProxy's `stream_inc_http_fail_ctr`.
    pub fn http_failure(&self) {
        self.update_each_slot(|d| d.count_failure());
    }
}

/// The table a fetch or action names, else the current proxy's (the backend's once
/// chosen).
fn table_for<'a>(ctx: &Context<'a>, named: Option<&str>) -> Option<&'a Arc<Table>> {
    let name = named.unwrap_or_else(|| ctx.backend.map_or(&ctx.frontend.name, |b| &b.name));
    ctx.state.tables.get(name)
}

/// The value of a stick fetch in `ctx`; None when it fails (nothing tracked in the slot, or
/// the data not stored), as HAProxy's fetch then gives no sample.
pub fn fetch(f: &StickFetch, ctx: &Context<'_>) -> Option<i64> {
    if f.query == Query::TableCnt {
        return Some(table_for(ctx, f.table.as_deref())?.used() as i64);
    }
    let (table, key) = match f.counter {
        Counter::Slot(n) => {
            // A log line's context has no counters: the connection's task has them.
            let tracked = match ctx.stick {
                Some(c) => c.get(n)?,
                None => current()?.get(n)?,
            };
            match f.table.as_deref() {
                // Another table: the tracked key's entry there.
                Some(name) => (ctx.state.tables.get(name)?.clone(), tracked.key.clone()),
                None => (tracked.table.clone(), tracked.key.clone()),
            }
        }
        Counter::Src => {
            let table = table_for(ctx, f.table.as_deref())?;
            (table.clone(), table.key_of_ip(ctx.src.ip())?)
        }
    };
    let v = match f.query {
        Query::Get(data) => table.read(&key, data)?,
        Query::Kilo(data) => table.read(&key, data)? >> 10,
        Query::IncGpc0 => {
            if !table.stores(DataType::Gpc0) && !table.stores(DataType::Gpc0Rate) {
                return None;
            }
            table.update(&key, |d| {
                d.add(DataType::Gpc0Rate, 1);
                d.add(DataType::Gpc0, 1);
                d.get(DataType::Gpc0).unwrap_or(0)
            })?
        }
        Query::ClrGpc0 => {
            if !table.stores(DataType::Gpc0) {
                return None;
            }
            table.update(&key, |d| {
                let was = d.get(DataType::Gpc0).unwrap_or(0);
                d.set(DataType::Gpc0, 0);
                was
            })?
        }
        Query::TableCnt => 0,
    };
    Some(v as i64)
}

/// Whether a stick action waits for more of the request before it acts: a `track-scN`
/// whose key may still change while the inspection goes on, as HAProxy's yields.
pub fn waits(action: &StickAction, ctx: &Context<'_>) -> bool {
    match action {
        StickAction::Track(t) => ctx.partial && super::sample::fetch(&t.key, ctx).may_change,
        _ => false,
    }
}

/// The rules a `track-scN` runs in, which say what its new entry counts at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackedBy {
    /// `tcp-request`/`tcp-response` rules: nothing (an HTTP request is counted as it comes,
    /// [`Counters::count_request`]).
    Tcp,
    /// `http-request` rules: the request (HAProxy's "first time we do it").
    HttpRequest,
    /// `http-response` rules: the request being answered, and an HTTP error for a 4xx
    /// response, which the stream counted before the entry was tracked (HAProxy's
    /// `http_res_get_intercept_rule`).
    HttpResponse,
}

/// Runs a rule's stick action in `ctx` (nothing without counters); `level` says which slots
/// `track-scN` fills, `by` what a new tracking counts.
pub fn act(action: &StickAction, ctx: &Context<'_>, level: Level, by: TrackedBy) {
    let Some(counters) = ctx.stick else { return };
    match action {
        StickAction::Track(t) => {
            let Some(table) = ctx.state.tables.get(&t.table) else {
                return;
            };
            let Some(key) = table.key_of_sample(super::sample::fetch_last(&t.key, ctx)) else {
                return;
            };
            if let Some(tracked) = counters.track(level, t.slot, table, key) {
                count_tracked(&tracked, ctx, by);
            }
        }
        StickAction::IncGpc0(slot) => {
            if let Some(t) = counters.get(*slot) {
                t.update(|d| {
                    d.add(DataType::Gpc0Rate, 1);
                    d.add(DataType::Gpc0, 1);
                });
            }
        }
        StickAction::SetGpt0(slot, v) => {
            if let Some(t) = counters.get(*slot) {
                // gpt0 is 32 bits in HAProxy: -1 is 4294967295.
                t.update(|d| d.set(DataType::Gpt0, u64::from(*v as u32)));
            }
        }
    }
}

/// What a tracking `by` some rules counts on its new entry at once (see [`TrackedBy`]).
fn count_tracked(tracked: &Tracked, ctx: &Context<'_>, by: TrackedBy) {
    let client_error = || {
        let status = ctx.response.and_then(|r| r.first[1].parse::<u16>().ok());
        status.is_some_and(|s| (400..500).contains(&s))
    };
    match by {
        TrackedBy::Tcp => {}
        TrackedBy::HttpRequest => {
            tracked.update(|d| d.count_request());
        }
        TrackedBy::HttpResponse => {
            let error = client_error();
            tracked.update(|d| {
                d.count_request();
                if error {
                    d.count_error();
                }
            });
        }
    }
}

/// What a backend's `stick` rules decided for a request.
#[derive(Debug, Default)]
pub struct Sticking {
    /// The server an entry names: the request goes there, whatever the balancer thinks.
    pub direct: Option<Arc<Server>>,
    /// The entries to remember the server that serves the request in.
    store: Vec<(Arc<Table>, Key)>,
}

/// Runs `backend`'s `stick` rules in `ctx` (the request known) as HAProxy's
/// `process_sticking_rules`: the first entry found by a matching rule names the server (by
/// name, else by id: [`Data::server`]; if it is usable, or with `option persist`), and the keys of storing rules wait for the server
/// ([`Sticking::on_response`]); a table counts once. `over`: a `use-server` server comes
/// first (the entries are not read), `force-persist` lets them name a server that is down;
/// `ignore-persist` does not concern them (HAProxy 2.6 applies it to cookies only).
pub fn on_request(
    ctx: &Context<'_>,
    backend: &Backend,
    over: &super::persist::Overrides,
) -> Sticking {
    let mut out = Sticking::default();
    let acls = &backend.conf.rules.acls.acls;
    let request_rules = (backend.conf.rules.stick.iter()).filter(|r| !r.stores_response());
    for rule in request_rules {
        let Some(table) = ctx.state.tables.get(&rule.table) else {
            continue;
        };
        if out.store.iter().any(|(t, _)| Arc::ptr_eq(t, table)) {
            continue;
        }
        if super::sample::eval(rule.cond.as_ref(), acls, ctx) != super::sample::Test::Pass {
            continue;
        }
        let Some(key) = table.key_of_sample(super::sample::fetch_last(&rule.key, ctx)) else {
            continue;
        };
        if rule.matches() {
            // The entry found is touched (its expiry starts again) whether or not it names
            // the server, as HAProxy's `stktable_touch_local` after a match.
            let server = table.touch(&key, |d| d.server(backend)).flatten();
            if out.direct.is_none() && over.server.is_none() {
                out.direct = server.filter(|s| over.may_use(backend, s));
            }
        }
        if rule.stores() {
            out.store.push((table.clone(), key));
        }
    }
    out
}

/// How many entries a stream stores at most, its request's and its response's (HAProxy's
/// `s->store`).
const STORES: usize = 8;

impl Sticking {
    /// `server` answered (`ctx` has its response: the head, or in TCP what the
    /// `tcp-response content` inspection read, else nothing yet): the entries of the
    /// request's keys name it, then `backend`'s `stick store-response` rules store theirs,
    /// as HAProxy's `process_store_rules` does when its response analysers run (a request
    /// whose server never answers stores nothing). The first response rule of a table that
    /// gives a key stores it (a table the request's rules stored in takes one more), up to
    /// [`STORES`] entries with the request's. A `non-stick` server stores none. The rules
    /// read the response and, of the request, only what HAProxy keeps once it is sent
    /// ([`Context::request_sent`]).
    pub fn on_response(&self, ctx: &Context<'_>, backend: &Backend, server: &Server) {
        // A `non-stick` server is named by no entry, as HAProxy frees the entries then.
        if server.opts.non_stick {
            return;
        }
        for (table, key) in &self.store {
            table.update(key, |d| d.set_server(server.id as u64, &server.name));
        }
        if !backend.conf.rules.stores_response() {
            return;
        }
        let acls = &backend.conf.rules.acls.acls;
        // The rules read the request as HAProxy still knows it once the head went to the
        // server: its method only (a `hdr_cnt()` or `path` of the condition finds nothing).
        let ctx = &Context {
            request_sent: true,
            ..*ctx
        };
        let mut stored: Vec<&Arc<Table>> = Vec::new();
        for rule in (backend.conf.rules.stick.iter()).filter(|r| r.stores_response()) {
            let Some(table) = ctx.state.tables.get(&rule.table) else {
                continue;
            };
            if stored.iter().any(|t| Arc::ptr_eq(t, table)) {
                continue;
            }
            if super::sample::eval(rule.cond.as_ref(), acls, ctx) != super::sample::Test::Pass {
                continue;
            }
            let Some(key) = table.key_of_sample(super::sample::fetch_last(&rule.key, ctx)) else {
                continue;
            };
            if self.store.len() + stored.len() >= STORES {
                continue;
            }
            let set = |d: &mut Data<'_>| d.set_server(server.id as u64, &server.name);
            // A full table without room (`nopurge`) takes nothing: a later rule may store.
            if table.update(&key, set).is_some() {
                stored.push(table);
            }
        }
    }
}

tokio::task_local! {
    /// The stick counters of the connection a task serves (set only when the process has
    /// stick tables).
    pub static SESSION: Arc<Counters>;
}

/// The current request is over: its stream trackers end.
pub fn end_stream() {
    if let Some(c) = current() {
        c.end_stream();
    }
}

/// Ends the current request's stream trackers when dropped: every request's, however it
/// ends (forwarded, answered by a rule, the stats page).
#[derive(Debug)]
pub struct StreamEnd;

impl Drop for StreamEnd {
    fn drop(&mut self) {
        end_stream();
    }
}

/// The current connection became a session (its handshakes, TLS and PROXY header, over).
pub fn session_accepted() {
    if let Some(c) = current() {
        c.session_accepted();
    }
}

/// A request refused before it became a stream (malformed, timed out, or a connection
/// closed before its first request): the session's entries count it, as HAProxy's H1 layer.
pub fn failed_request(error: bool) {
    if let Some(c) = current() {
        c.failed_request(error);
    }
}

/// A 4xx response on the current connection: its tracked entries count an HTTP error.
pub fn http_error() {
    if let Some(c) = current() {
        c.http_error();
    }
}

/// A server's response status, as it came: a 4xx counts as an HTTP error of the current
/// connection's tracked entries, a 5xx as a failure but 501 and 505, which a client's
/// request brings about (HAProxy's `http_wait_for_response`).
pub fn server_status(status: u16) {
    let Some(c) = current() else {
        return;
    };
    match status {
        400..=499 => c.http_error(),
        501 | 505 => {}
        500..=599 => c.http_failure(),
        _ => {}
    }
}

/// No valid response from the server (it closed, timed out, or sent what is not HTTP):
/// the current connection's tracked entries count an HTTP failure.
pub fn server_failed() {
    if let Some(c) = current() {
        c.http_failure();
    }
}

/// The current connection's counters, if any.
pub fn current() -> Option<Arc<Counters>> {
    SESSION.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::stick::parse_table;

    fn table(spec: &str) -> Table {
        let words: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
        Table::new("t".into(), parse_table(&words, &mut Vec::new()).unwrap())
    }

    #[test]
    fn samples_key_tables_as_haproxy_casts_them() {
        let key = |kind, sample: Sample<'_>, len| Key::of_sample(kind, &sample, len);
        let text = |s: &'static str| Sample::Str(s.into());
        assert_eq!(
            key(KeyType::Binary, Sample::Bin(b"ab".to_vec()), 4),
            Some(Key::Binary(b"ab\0\0".to_vec()))
        );
        assert_eq!(
            key(KeyType::Binary, text("abcdef"), 4),
            Some(Key::Binary(b"abcd".to_vec()))
        );
        assert_eq!(
            key(KeyType::Binary, Sample::Int(258), 8),
            Some(Key::Binary(vec![0, 0, 0, 0, 0, 0, 1, 2]))
        );
        assert_eq!(
            key(KeyType::Integer, text("12abc"), 4),
            Some(Key::Integer(12))
        );
        assert_eq!(key(KeyType::Integer, text(""), 4), None);
        assert_eq!(
            key(KeyType::Integer, Sample::Int(-1), 4),
            Some(Key::Integer(u32::MAX))
        );
        assert_eq!(
            key(KeyType::Ip, text("01.2.3.4xyz"), 4),
            Some(Key::Ip(Ipv4Addr::new(1, 2, 3, 4)))
        );
        assert_eq!(key(KeyType::Ip, Sample::Bool(true), 4), None);
        assert_eq!(key(KeyType::Ipv6, text("1.2.3.4"), 16), None);
        assert_eq!(
            key(KeyType::String, Sample::Bin(b"ab\0cd".to_vec()), 31),
            Some(Key::String("ab".into()))
        );
        assert_eq!(Key::Binary(vec![0xab, 1]).to_string(), "AB01");
        // HAProxy's tree holds integers in the host's byte order.
        let (a, b) = (Key::Integer(0x0100), Key::Integer(0x02));
        assert_eq!(a.tree_order(&b), std::cmp::Ordering::Less);
    }

    #[test]
    fn freq_ctr_is_haproxys() {
        let mut f = FreqCtr::default();
        let t0 = 0x8000_0000u32;
        for _ in 0..4 {
            f.update(10_000, 1, t0);
        }
        assert_eq!(f.read(10_000, t0 + 5), 4);
        // Half the next period later: the previous period counts for half.
        f.update(10_000, 1, t0 + 15_000);
        assert_eq!(f.read(10_000, t0 + 15_000), 1 + 4 / 2);
        // Two periods later nothing is left.
        assert_eq!(f.read(10_000, t0 + 40_000), 0);
    }

    #[test]
    fn lru_trashes_the_least_recently_used() {
        let t = table("type integer size 2 store gpc0");
        for k in [1, 2] {
            t.update(&Key::Integer(k), |d| d.add(DataType::Gpc0, 1));
        }
        t.update(&Key::Integer(1), |d| d.add(DataType::Gpc0, 1));
        t.update(&Key::Integer(3), |d| d.add(DataType::Gpc0, 1));
        assert_eq!(t.read(&Key::Integer(1), DataType::Gpc0), Some(2));
        assert_eq!(t.read(&Key::Integer(2), DataType::Gpc0), Some(0));
        assert_eq!(t.used(), 2);
        let n = table("type integer size 1 nopurge store gpc0");
        n.update(&Key::Integer(1), |_| ());
        assert!(n.update(&Key::Integer(2), |_| ()).is_none());
    }

    #[test]
    fn expired_tracked_entries_leave_the_expiry_walk_until_released() {
        let t = Arc::new(table("type integer size 10 expire 1ms store conn_cur"));
        let c = Counters::default();
        let key = Key::Integer(1);
        assert!(c.track(Level::Session, 0, &t, key.clone()).is_some());
        std::thread::sleep(std::time::Duration::from_millis(5));
        // Kept while tracked, but out of the order the expiry walks.
        assert_eq!(t.used(), 1);
        assert!(t.lock(now_ms()).expiry.is_empty());
        assert_eq!(t.lock(now_ms()).order.len(), 1);
        drop(c);
        assert_eq!(t.lock(now_ms()).expiry.len(), 1);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(t.used(), 0);
    }

    #[test]
    fn tracking_counts_connections() {
        let t = Arc::new(table("type ip size 10 store conn_cur,conn_cnt"));
        let c = Counters::default();
        let key = Key::Ip(Ipv4Addr::LOCALHOST);
        assert!(c.track(Level::Session, 0, &t, key.clone()).is_some());
        assert!(c.track(Level::Session, 0, &t, key.clone()).is_none());
        // The session's slot is the stream's too (HAProxy's stream_new copies it).
        assert!(c.track(Level::Stream, 0, &t, key.clone()).is_none());
        assert!(c.track(Level::Stream, 1, &t, key.clone()).is_some());
        c.end_stream();
        assert_eq!(t.read(&key, DataType::ConnCur), Some(1));
        drop(c);
        assert_eq!(t.read(&key, DataType::ConnCur), Some(0));
        assert_eq!(t.read(&key, DataType::ConnCnt), Some(2));
    }

    #[test]
    fn failures_count_once_per_slot_in_tables_that_store_them() {
        let failing = Arc::new(table(
            "type ip size 10 store http_fail_cnt,http_fail_rate(10s)",
        ));
        let other = Arc::new(table("type ip size 10 store http_err_cnt"));
        let c = Counters::default();
        let key = Key::Ip(Ipv4Addr::LOCALHOST);
        assert!(c.track(Level::Session, 0, &failing, key.clone()).is_some());
        assert!(c.track(Level::Session, 1, &other, key.clone()).is_some());
        c.http_failure();
        c.http_failure();
        c.http_error();
        assert_eq!(failing.read(&key, DataType::HttpFailCnt), Some(2));
        assert_eq!(failing.read(&key, DataType::HttpFailRate), Some(2));
        assert_eq!(other.read(&key, DataType::HttpErrCnt), Some(1));
        assert_eq!(other.read(&key, DataType::HttpFailCnt), None);
    }
}
