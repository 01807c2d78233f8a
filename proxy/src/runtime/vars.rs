//! HAProxy's variables in traffic rules: `set-var(NAME[,COND...]) EXPR`,
//! `set-var-fmt(NAME[,COND...]) FMT` and `unset-var(NAME)` actions, read by the
//! `var(NAME[,DEFAULT])` fetch, as HAProxy 2.6's `vars.c`.
//!
//! Scopes: `proc` variables are the process's (one store, shared by every thread, shown by
//! the runtime API's `get var`); `sess`, `txn`, `req` and `res` ones belong to the client
//! connection a task serves ([`STREAM`], a task-local set around each connection's task).
//! `sess` variables live as long as the connection. The others are a stream's (HAProxy's
//! `txn`, `vars_reqres`), which exists from the end of the `tcp-request session` rules
//! ([`stream_starts`]) and, in HTTP, from each request's head to its end
//! ([`stream_ends`]): before it (`tcp-request connection` rules, an HTTP error answered
//! before a request was read) they are neither set nor read, and a `var()` default does not
//! apply. `req` and `res` variables share one store that holds one scope at a time, as
//! HAProxy's: `req` during the request's analysis, `res` from the response's on
//! ([`response_starts`], which drops the `req` ones); a variable of the other scope is
//! neither set nor read (no default either).
//!
//! A value keeps its sample type (`bool`, `int`, `ip`, `str`, `bin`) and is cast as any
//! sample where it is read. The stores are maps created empty, which allocate nothing
//! until a variable is set: a configuration without variables costs a connection nothing.
//!
//! Sizes (`tune.vars.*-max-size`, as HAProxy's `var_accounting_add`): a variable counts
//! [`VAR_SIZE`] bytes, plus its value's for a string or binary one, in its scope and in
//! each enclosing one (`req`/`res` in `txn`, `txn` in `sess`, `sess` in `proc`, which
//! holds every variable of the process, against both `proc-max-size` and
//! `global-max-size`). A set that does not fit is refused silently: a new variable whose
//! [`VAR_SIZE`] does not fit is not created; one whose value does not fit is left a
//! boolean, as HAProxy leaves it (whose value is whatever its memory held: hapx says true).
//! Without any limit, nothing is counted (one relaxed load per set). A connection's
//! variables are given back when its task ends, just after its socket closed (HAProxy's
//! as it closes it).
//!
//! A health check run's variables ([`CheckStores`]) are counted as HAProxy 2.6 counts them
//! (verified against 2.6.12): a `check` one against `tune.vars.check-max-size`, and, as its
//! check's session encloses it, against `sess-max-size` with the run's `sess` ones; a
//! `sess` one against `sess-max-size` only (not `check-max-size`); both in `proc` (and
//! `global`), as the traffic's.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use super::sample::Sample;

/// The longest value `set-var-fmt` stores, in bytes: HAProxy renders a format into a
/// buffer of `tune.bufsize` bytes and keeps one for its final NUL.
pub const FORMAT_MAX: usize = super::BUFSIZE - 1;

/// The bytes a variable itself counts for, beside its value's: the size of HAProxy 2.6's
/// `struct var` on a 64-bit system.
pub const VAR_SIZE: usize = 80;

/// Which `tune.vars.*-max-size` limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Global,
    Proc,
    Sess,
    Txn,
    Reqres,
    Check,
}

/// The configured limits in bytes, 0 for none (`proc` and `global` are the same rule:
/// HAProxy holds the process's whole size against each).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub global: usize,
    pub proc: usize,
    pub sess: usize,
    pub txn: usize,
    pub reqres: usize,
    pub check: usize,
}

impl Limits {
    /// Whether the process's size is counted (HAProxy counts it only under a limit).
    fn counts_process(&self) -> bool {
        self.proc != 0 || self.global != 0
    }
}

/// The limits the configuration set so far: its `tune.vars` lines take effect as read, so
/// that a later global `set-var` (or a process variable a rule names) is held to them.
static LIMITS: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];
/// Whether any limit is set: without one, a set counts nothing.
static LIMITED: AtomicBool = AtomicBool::new(false);
/// The bytes of the process's variables of every scope, counted while a `proc` or
/// `global` limit is set.
static PROCESS_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Sets one limit (`tune.vars.*-max-size`), in bytes; 0 removes it.
pub fn set_limit(which: Limit, bytes: usize) {
    LIMITS[which as usize].store(bytes, Ordering::Relaxed);
    let any = LIMITS.iter().any(|l| l.load(Ordering::Relaxed) != 0);
    LIMITED.store(any, Ordering::Relaxed);
}

/// Forgets what a configuration's reading left: its limits and its process variables. A
/// master reads each reload's configuration in its own process, where HAProxy's executes
/// itself again and so starts every load from none.
pub fn reset_for_load() {
    for limit in &LIMITS {
        limit.store(0, Ordering::Relaxed);
    }
    LIMITED.store(false, Ordering::Relaxed);
    PROCESS_SIZE.store(0, Ordering::Relaxed);
    let mut store = proc_store();
    store.map.clear();
    store.size = 0;
}

/// The limits, None when none is set (one relaxed load: the cost of no limit).
fn limits() -> Option<Limits> {
    if !LIMITED.load(Ordering::Relaxed) {
        return None;
    }
    let at = |which: Limit| LIMITS[which as usize].load(Ordering::Relaxed);
    Some(Limits {
        global: at(Limit::Global),
        proc: at(Limit::Proc),
        sess: at(Limit::Sess),
        txn: at(Limit::Txn),
        reqres: at(Limit::Reqres),
        check: at(Limit::Check),
    })
}

/// The value of a `tune.vars.*-max-size` line as HAProxy reads it (`strtol`, kept in an
/// unsigned 32-bit integer: a negative size wraps), or its message.
pub fn parse_limit(keyword: &str, text: &str) -> Result<usize, String> {
    let invalid = || format!("{keyword}: '{text}' is an invalid size");
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if text.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // strtol saturates at the bounds of a long.
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    Ok(value as u32 as usize)
}

/// What a store's sets are held to: the limits, and how much the enclosing scopes hold
/// besides the store (innermost first: `reqres`, `txn`, `sess`; 0 and no limit for a
/// scope that does not enclose it). None: nothing is counted.
#[derive(Debug, Clone, Copy)]
struct Ledger {
    limits: Limits,
    /// Each enclosing scope's limit and the bytes its other stores hold.
    scopes: [(usize, usize); 3],
}

impl Ledger {
    /// The ledger of a `proc` variable.
    fn process(limits: Limits) -> Ledger {
        Ledger {
            limits,
            scopes: [(0, 0); 3],
        }
    }
}

/// Variables of one scope by their full name (`SCOPE.NAME`): a value, or none for one that
/// exists without a value (HAProxy's type `ANY`: created by a set its conditions refused,
/// or a `proc` one after `unset-var`).
#[derive(Debug, Default)]
pub struct Store {
    map: BTreeMap<Box<str>, Option<Sample<'static>>>,
    /// The bytes its variables count for, while a limit is set.
    size: usize,
    /// The process's store, whose sets are held to the process's limits.
    process: bool,
}

/// The bytes a value counts for besides its variable's.
fn value_size(value: Option<&Sample<'_>>) -> usize {
    match value {
        Some(Sample::Str(s)) => crate::bytestr::byte_len(s),
        Some(Sample::Bin(b)) => b.len(),
        _ => 0,
    }
}

impl Store {
    /// The value of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&Sample<'static>> {
        self.map.get(name).and_then(Option::as_ref)
    }

    /// Sets `name` to `value` if `conditions` allow it and it fits (a `proc` store: the
    /// process's limits; another: none).
    pub fn set(&mut self, name: &str, value: Sample<'_>, conditions: Conditions) {
        let ledger = self.own_ledger();
        self.set_within(name, value, conditions, ledger);
    }

    /// The ledger of a store that is not a stream's.
    fn own_ledger(&self) -> Option<Ledger> {
        limits().filter(|_| self.process).map(Ledger::process)
    }

    /// Sets `name` as HAProxy's `var_set`: a variable that `ifexists` does not stop is
    /// created (without a value) before the other conditions are tested, so that a later
    /// `ifexists` sees it; each step counts in `ledger` and is refused if it does not fit.
    fn set_within(
        &mut self,
        name: &str,
        value: Sample<'_>,
        conditions: Conditions,
        ledger: Option<Ledger>,
    ) {
        let current = self.map.get(name).map(Option::as_ref);
        let exists = current.is_some();
        if !conditions.allow_creation(exists) {
            return;
        }
        let current = current.flatten();
        let allowed = conditions.allow(current, &value);
        let old = value_size(current);
        if !exists {
            if !self.charge(ledger, VAR_SIZE) {
                return;
            }
            // Created before the other conditions: a refused set leaves it, without a value.
            self.map.insert(name.into(), None);
        }
        if !allowed {
            return;
        }
        self.refund(ledger, old);
        let value = if self.charge(ledger, value_size(Some(&value))) {
            value.into_owned()
        } else {
            // The value does not fit: HAProxy leaves the variable a boolean.
            Sample::Bool(true)
        };
        if let Some(slot) = self.map.get_mut(name) {
            *slot = Some(value);
        }
    }

    /// Counts `bytes` more in this store and the enclosing scopes if they fit all limits.
    fn charge(&mut self, ledger: Option<Ledger>, bytes: usize) -> bool {
        let Some(ledger) = ledger else {
            return true;
        };
        if bytes == 0 {
            return true;
        }
        let over = |limit: usize, held: usize| limit != 0 && held + bytes > limit;
        if (ledger.scopes.iter()).any(|&(limit, others)| over(limit, others + self.size)) {
            return false;
        }
        let limits = ledger.limits;
        if limits.counts_process() {
            let process = PROCESS_SIZE.load(Ordering::Relaxed);
            if over(limits.proc, process) || over(limits.global, process) {
                return false;
            }
            PROCESS_SIZE.fetch_add(bytes, Ordering::Relaxed);
        }
        self.size += bytes;
        true
    }

    /// Counts `bytes` less, as a value or a variable goes.
    fn refund(&mut self, ledger: Option<Ledger>, bytes: usize) {
        let Some(ledger) = ledger else {
            return;
        };
        if bytes == 0 {
            return;
        }
        self.size = self.size.saturating_sub(bytes);
        if ledger.limits.counts_process() {
            let _ = PROCESS_SIZE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            });
        }
    }

    /// Unsets `name`: gone, or kept without a value (`keep`).
    pub fn unset(&mut self, name: &str, keep: bool) {
        let ledger = self.own_ledger();
        self.unset_within(name, keep, ledger);
    }

    fn unset_within(&mut self, name: &str, keep: bool, ledger: Option<Ledger>) {
        let freed = if keep {
            match self.map.get_mut(name) {
                Some(v) => value_size(v.take().as_ref()),
                None => 0,
            }
        } else {
            match self.map.remove(name) {
                Some(v) => VAR_SIZE + value_size(v.as_ref()),
                None => 0,
            }
        };
        self.refund(ledger, freed);
    }

    /// Drops every variable (a stream's scope ends), and what they counted.
    fn clear(&mut self, ledger: Option<Ledger>) {
        if !self.map.is_empty() {
            self.map.clear();
            let size = std::mem::take(&mut self.size);
            self.refund(ledger, size);
        }
    }
}

/// What a health check's rules do with the variables of a scope: a plain [`Store`] (the
/// process's, an agent's empty ones), or a check run's [`CheckStores`], whose sets are
/// counted against their limits.
pub trait Variables {
    /// The value of `name`, if it has one.
    fn get(&self, name: &str) -> Option<&Sample<'static>>;
    /// Sets `name` to `value` if `conditions` allow it and it fits.
    fn set(&mut self, name: &str, value: Sample<'_>, conditions: Conditions);
    /// Unsets `name`: gone, or kept without a value (`keep`).
    fn unset(&mut self, name: &str, keep: bool);
}

impl Variables for Store {
    fn get(&self, name: &str) -> Option<&Sample<'static>> {
        Store::get(self, name)
    }

    fn set(&mut self, name: &str, value: Sample<'_>, conditions: Conditions) {
        Store::set(self, name, value, conditions);
    }

    fn unset(&mut self, name: &str, keep: bool) {
        Store::unset(self, name, keep);
    }
}

/// One health check run's `check` and `sess` variables, held to the limits as HAProxy's
/// `var_accounting_add` holds a check's: `check` ones to `check-max-size`, and with the
/// `sess` ones to `sess-max-size` (HAProxy counts a check's variables in its session's
/// size too); all of them in the process's size.
#[derive(Debug, Default)]
pub struct CheckStores {
    check: Store,
    sess: Store,
}

impl CheckStores {
    /// The store of `name`'s scope (the `sess` one for a name of neither scope: the
    /// caller routes only these two here) and its ledger (None: no limit is set).
    fn store(&mut self, name: &str) -> (&mut Store, Option<Ledger>) {
        let limits = limits();
        if Scope::of(name) == Some(Scope::Check) {
            let scopes = |l: Limits| [(l.check, 0), (l.sess, self.sess.size), (0, 0)];
            let ledger = limits.map(|limits| Ledger {
                limits,
                scopes: scopes(limits),
            });
            (&mut self.check, ledger)
        } else {
            let scopes = |l: Limits| [(l.sess, self.check.size), (0, 0), (0, 0)];
            let ledger = limits.map(|limits| Ledger {
                limits,
                scopes: scopes(limits),
            });
            (&mut self.sess, ledger)
        }
    }
}

impl Variables for CheckStores {
    fn get(&self, name: &str) -> Option<&Sample<'static>> {
        if Scope::of(name) == Some(Scope::Check) {
            self.check.get(name)
        } else {
            self.sess.get(name)
        }
    }

    fn set(&mut self, name: &str, value: Sample<'_>, conditions: Conditions) {
        let (store, ledger) = self.store(name);
        store.set_within(name, value, conditions, ledger);
    }

    fn unset(&mut self, name: &str, keep: bool) {
        let (store, ledger) = self.store(name);
        store.unset_within(name, keep, ledger);
    }
}

impl Drop for CheckStores {
    /// The run ends: what its variables counted in the process's size goes.
    fn drop(&mut self) {
        let held = self.check.size + self.sess.size;
        if held != 0 && limits().is_some_and(|l| l.counts_process()) {
            let _ = PROCESS_SIZE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(held))
            });
        }
    }
}

/// The process's `proc` variables.
static PROC: Mutex<Store> = Mutex::new(Store {
    map: BTreeMap::new(),
    size: 0,
    process: true,
});

/// Where a connection is in HAProxy's life of a stream, which decides the scopes it has.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No stream: only `sess` (and `proc`) variables.
    #[default]
    NoStream,
    /// The request's analysis: `txn` and `req`.
    Request,
    /// The response's: `txn` and `res`.
    Response,
}

/// One client connection's `sess` variables and its current stream's `txn`, `req`/`res`.
#[derive(Debug, Default)]
pub struct StreamVars {
    stores: RefCell<StreamStores>,
}

#[derive(Debug, Default)]
struct StreamStores {
    sess: Store,
    txn: Store,
    /// `req` or `res` ones, as `phase` says.
    reqres: Store,
    phase: Phase,
}

impl StreamStores {
    /// The store of `scope` now, None when the connection has none.
    fn of(&mut self, scope: Scope) -> Option<&mut Store> {
        match (scope, self.phase) {
            (Scope::Sess, _) => Some(&mut self.sess),
            (_, Phase::NoStream) => None,
            (Scope::Txn, _) => Some(&mut self.txn),
            (Scope::Req, Phase::Request) | (Scope::Res, Phase::Response) => Some(&mut self.reqres),
            _ => None,
        }
    }

    /// The ledger of `scope`'s store (None: no limit is set): the enclosing scopes hold
    /// the inner stores' bytes too (`txn` holds the `req`/`res` ones, `sess` both).
    fn ledger(&self, scope: Scope) -> Option<Ledger> {
        let limits = limits()?;
        let (sess, txn, reqres) = (self.sess.size, self.txn.size, self.reqres.size);
        let scopes = match scope {
            Scope::Req | Scope::Res => [
                (limits.reqres, 0),
                (limits.txn, txn),
                (limits.sess, txn + sess),
            ],
            Scope::Txn => [(limits.txn, reqres), (limits.sess, reqres + sess), (0, 0)],
            Scope::Sess => [(limits.sess, reqres + txn), (0, 0), (0, 0)],
            Scope::Proc | Scope::Check => [(0, 0); 3],
        };
        Some(Ledger { limits, scopes })
    }

    /// Runs `f` on `scope`'s store and its ledger, if the connection has the scope now.
    fn with<R>(
        &mut self,
        scope: Scope,
        f: impl FnOnce(&mut Store, Option<Ledger>) -> R,
    ) -> Option<R> {
        let ledger = self.ledger(scope);
        self.of(scope).map(|store| f(store, ledger))
    }

    /// Drops the stream's `txn` and `req`/`res` variables.
    fn clear_stream(&mut self) {
        let ledger = self.ledger(Scope::Txn);
        self.txn.clear(ledger);
        self.clear_reqres();
    }

    fn clear_reqres(&mut self) {
        let ledger = self.ledger(Scope::Req);
        self.reqres.clear(ledger);
    }
}

impl Drop for StreamStores {
    /// The connection ends: what its variables counted in the process's size goes.
    fn drop(&mut self) {
        let held = self.sess.size + self.txn.size + self.reqres.size;
        if held != 0 && limits().is_some_and(|l| l.counts_process()) {
            let _ = PROCESS_SIZE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(held))
            });
        }
    }
}

tokio::task_local! {
    /// The variables of the connection a task serves.
    pub static STREAM: StreamVars;
}

/// A variable's scope, the start of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Proc,
    Sess,
    Txn,
    Req,
    Res,
    Check,
}

impl Scope {
    /// The scope `name` (`SCOPE.NAME`) is in; the configuration checks every name has one.
    pub fn of(name: &str) -> Option<Scope> {
        Some(match name.split_once('.')?.0 {
            "proc" => Scope::Proc,
            "sess" => Scope::Sess,
            "txn" => Scope::Txn,
            "req" => Scope::Req,
            "res" => Scope::Res,
            "check" => Scope::Check,
            _ => return None,
        })
    }
}

/// The conditions of `set-var(NAME,COND...)`: each must hold for the value to be set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions(u8);

impl Conditions {
    const IFEXISTS: u8 = 1;
    const IFNOTEXISTS: u8 = 1 << 1;
    const IFEMPTY: u8 = 1 << 2;
    const IFNOTEMPTY: u8 = 1 << 3;
    const IFSET: u8 = 1 << 4;
    const IFNOTSET: u8 = 1 << 5;
    const IFGT: u8 = 1 << 6;
    const IFLT: u8 = 1 << 7;

    /// The conditions written `words` (after the name; an empty one is skipped, as
    /// HAProxy's), or HAProxy's message.
    pub fn parse<'w>(words: impl Iterator<Item = &'w str>) -> Result<Conditions, String> {
        let mut bits = 0;
        for w in words {
            bits |= match w {
                "" => 0,
                "ifexists" => Self::IFEXISTS,
                "ifnotexists" => Self::IFNOTEXISTS,
                "ifempty" => Self::IFEMPTY,
                "ifnotempty" => Self::IFNOTEMPTY,
                "ifset" => Self::IFSET,
                "ifnotset" => Self::IFNOTSET,
                "ifgt" => Self::IFGT,
                "iflt" => Self::IFLT,
                _ => return Err(format!("unknown condition \"{w}\"")),
            };
        }
        Ok(Conditions(bits))
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Whether a set goes as far as creating the variable (`exists`: it does already).
    fn allow_creation(self, exists: bool) -> bool {
        !(self.has(Self::IFEXISTS) && !exists || self.has(Self::IFNOTEXISTS) && exists)
    }

    /// Whether `value` may replace `current` (None: a variable without a value), the
    /// conditions tested once the variable exists, as HAProxy's `var_set`.
    fn allow(self, current: Option<&Sample<'_>>, value: &Sample<'_>) -> bool {
        if self.0 & !(Self::IFEXISTS | Self::IFNOTEXISTS) == 0 {
            return true;
        }
        let empty = match value {
            Sample::Str(s) => s.is_empty(),
            Sample::Bin(b) => b.is_empty(),
            // Scalars are never empty.
            _ => false,
        };
        let ints = match (current, value) {
            (Some(Sample::Int(old)), Sample::Int(new)) => Some((*old, *new)),
            _ => None,
        };
        !(self.has(Self::IFEMPTY) && !empty
            || self.has(Self::IFNOTEMPTY) && empty
            || self.has(Self::IFSET) && current.is_none()
            || self.has(Self::IFNOTSET) && current.is_some()
            // Between integers only; true otherwise.
            || self.has(Self::IFGT) && ints.is_some_and(|(old, new)| old <= new)
            || self.has(Self::IFLT) && ints.is_some_and(|(old, new)| old >= new))
    }
}

/// The process's variables, even after a thread panicked holding them (a store is never
/// left half-changed: each change is one map operation).
fn proc_store() -> std::sync::MutexGuard<'static, Store> {
    PROC.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on the store `name` is in and its ledger, if the task has it now (None:
/// HAProxy's "scope not available", where a `var()` default does not apply either).
fn with_store<R>(name: &str, f: impl FnOnce(&mut Store, Option<Ledger>) -> R) -> Option<R> {
    match Scope::of(name)? {
        Scope::Proc => {
            let mut store = proc_store();
            let ledger = store.own_ledger();
            Some(f(&mut store, ledger))
        }
        Scope::Check => None,
        scope => STREAM
            .try_with(|v| v.stores.borrow_mut().with(scope, f))
            .ok()
            .flatten(),
    }
}

/// The value of the variable `name`, if it has one where the task is.
pub fn get(name: &str) -> Option<Sample<'static>> {
    with_store(name, |s, _| s.get(name).cloned()).flatten()
}

/// `var(NAME,DEFAULT)`: the value of `name`, or `default` when its scope is there but the
/// variable has no value; nothing when its scope is not (HAProxy applies no default then).
pub fn fetch(name: &str, default: Option<&str>) -> Option<Sample<'static>> {
    with_store(name, |s, _| {
        (s.get(name).cloned()).or_else(|| default.map(|d| Sample::Str(d.to_string().into())))
    })
    .flatten()
}

/// Sets `name` to `value` if `conditions` allow it.
pub fn set(name: &str, value: Sample<'_>, conditions: Conditions) {
    with_store(name, |s, ledger| {
        s.set_within(name, value, conditions, ledger)
    });
}

/// Sets `name` to a rendered format (`set-var-fmt`), cut to HAProxy's [`FORMAT_MAX`].
pub fn set_format(name: &str, text: String, conditions: Conditions) {
    set(name, Sample::Str(cut_format(text).into()), conditions);
}

/// A rendered `set-var-fmt` value as HAProxy stores it: at most [`FORMAT_MAX`] bytes.
pub fn cut_format(text: String) -> String {
    if text.len() > FORMAT_MAX && crate::bytestr::byte_len(&text) > FORMAT_MAX {
        crate::bytestr::cut(&text, FORMAT_MAX)
    } else {
        text
    }
}

/// Makes `name`, if a `proc` variable, exist without a value unless it exists already, as
/// HAProxy registers every process variable the configuration names (a `var()` read, a
/// variable action: `VF_CREATEONLY | VF_PERMANENT`): an `ifexists` set of it succeeds from
/// the first, an `ifnotexists` one never does, and `get var` finds no value until one is set.
/// False when a new one does not fit the process's limits (HAProxy then refuses the
/// configuration).
pub fn declare(name: &str) -> bool {
    if Scope::of(name) != Some(Scope::Proc) {
        return true;
    }
    let mut store = proc_store();
    if store.map.contains_key(name) {
        return true;
    }
    let ledger = store.own_ledger();
    if !store.charge(ledger, VAR_SIZE) {
        return false;
    }
    store.map.insert(name.into(), None);
    true
}

/// Runs `f` on the process's variables (a health check's `proc` scope).
pub fn with_proc<R>(f: impl FnOnce(&mut Store) -> R) -> R {
    f(&mut proc_store())
}

/// Unsets `name`: a `proc` variable stays without a value (as HAProxy keeps it).
pub fn unset(name: &str) {
    let keep = Scope::of(name) == Some(Scope::Proc);
    with_store(name, |s, ledger| s.unset_within(name, keep, ledger));
}

/// Runs `f` on the connection's stores, if the task has them.
fn with_stream(f: impl FnOnce(&mut StreamStores)) {
    let _ = STREAM.try_with(|v| f(&mut v.stores.borrow_mut()));
}

/// A stream starts on the connection (a TCP connection's, past its session rules; each
/// HTTP request's): its `txn` and `req` scopes, empty.
pub fn stream_starts() {
    with_stream(|s| {
        s.clear_stream();
        s.phase = Phase::Request;
    });
}

/// The stream's response starts: its `req` variables go, its `res` scope begins.
pub fn response_starts() {
    with_stream(|s| {
        if s.phase == Phase::Request {
            s.clear_reqres();
            s.phase = Phase::Response;
        }
    });
}

/// The stream ended (an HTTP connection waits for its next request): only the session's
/// variables are left.
pub fn stream_ends() {
    with_stream(|s| {
        s.clear_stream();
        s.phase = Phase::NoStream;
    });
}

/// A `proc` variable for the runtime API's `get var`: HAProxy's line, or its message; and
/// whether one was shown (HAProxy 2.6 ends that answer without its empty line).
pub fn show_proc(name: &str) -> (String, bool) {
    if name.is_empty() {
        return ("Missing process-wide variable identifier.\n".into(), false);
    }
    let value = match Scope::of(name) {
        Some(Scope::Proc) => get(name),
        _ => None,
    };
    let Some(value) = value else {
        return ("Variable not found.\n".into(), false);
    };
    let kind = match &value {
        Sample::Bool(_) => "bool",
        Sample::Int(_) => "sint",
        Sample::Ip(ip) if ip.is_ipv4() => "ipv4",
        Sample::Ip(_) => "ipv6",
        Sample::Str(_) => "str",
        Sample::Bin(_) => "bin",
    };
    // HAProxy casts the value to text and shows each byte that is not printable as `.`.
    let text = value.to_text();
    let shown: String = (crate::bytestr::to_bytes(&text).iter())
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    (format!("{name}: type={kind} value=<{shown}>\n"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Sample<'static> {
        Sample::Int(n)
    }

    #[test]
    fn conditions_are_haproxys() {
        let c = |w: &str| Conditions::parse(w.split(',')).unwrap();
        assert_eq!(
            Conditions::parse(["ifzz"].into_iter()),
            Err("unknown condition \"ifzz\"".into())
        );
        assert_eq!(c("ifset,"), c("ifset"));
        assert!(c("ifnotexists").allow_creation(false));
        assert!(!c("ifnotexists").allow_creation(true));
        assert!(!c("ifexists").allow_creation(false));
        assert!(c("ifnotset").allow(None, &int(1)));
        assert!(!c("ifnotset").allow(Some(&int(1)), &int(1)));
        assert!(c("ifgt").allow(Some(&int(5)), &int(3)));
        assert!(!c("ifgt").allow(Some(&int(5)), &int(7)));
        assert!(c("iflt").allow(Some(&int(5)), &int(7)));
        // Not both integers: true.
        assert!(c("ifgt").allow(None, &int(7)));
        assert!(!c("ifempty").allow(None, &int(0)));
        assert!(c("ifempty").allow(None, &Sample::Str("".into())));
        assert!(!c("ifnotempty").allow(None, &Sample::Str("".into())));
    }

    #[test]
    fn a_declared_proc_variable_exists_without_a_value() {
        declare("proc.vars_test_declared");
        declare("txn.vars_test_declared");
        assert_eq!(get("proc.vars_test_declared"), None);
        let only_new = Conditions::parse(["ifnotexists"].into_iter()).unwrap();
        set("proc.vars_test_declared", int(1), only_new);
        assert_eq!(get("proc.vars_test_declared"), None);
        let only_old = Conditions::parse(["ifexists"].into_iter()).unwrap();
        set("proc.vars_test_declared", int(2), only_old);
        assert_eq!(get("proc.vars_test_declared"), Some(int(2)));
        // Declared again (a reload's parse): the value stays.
        declare("proc.vars_test_declared");
        assert_eq!(get("proc.vars_test_declared"), Some(int(2)));
    }

    #[test]
    fn a_refused_set_creates_the_variable() {
        let mut store = Store::default();
        let c = |w: &str| Conditions::parse(w.split(',')).unwrap();
        store.set("txn.a", int(1), c("ifset"));
        assert_eq!(store.get("txn.a"), None);
        store.set("txn.a", int(2), c("ifexists"));
        assert_eq!(store.get("txn.a"), Some(&int(2)));
        store.set("txn.b", int(1), c("ifexists"));
        store.set("txn.b", int(3), c("ifnotexists"));
        assert_eq!(store.get("txn.b"), Some(&int(3)));
    }

    #[tokio::test]
    async fn scopes_follow_the_stream() {
        STREAM
            .scope(StreamVars::default(), async {
                // No stream yet: only the session's.
                set("sess.a", int(1), Conditions::default());
                set("txn.b", int(2), Conditions::default());
                assert_eq!(fetch("txn.b", Some("d")), None);
                stream_starts();
                set("txn.b", int(2), Conditions::default());
                set("req.c", int(3), Conditions::default());
                set("res.d", int(4), Conditions::default());
                assert_eq!(get("txn.b"), Some(int(2)));
                assert_eq!(get("req.c"), Some(int(3)));
                assert_eq!(fetch("res.d", Some("d")), None);
                response_starts();
                assert_eq!(fetch("req.c", Some("d")), None);
                assert_eq!(fetch("res.d", Some("d")), Some(Sample::Str("d".into())));
                assert_eq!(get("txn.b"), Some(int(2)));
                stream_ends();
                assert_eq!(get("sess.a"), Some(int(1)));
                assert_eq!(get("txn.b"), None);
                unset("sess.a");
                assert_eq!(get("sess.a"), None);
            })
            .await;
        // Outside a connection's task: nothing set, nothing read.
        set("txn.z", int(1), Conditions::default());
        assert_eq!(get("txn.z"), None);
    }

    #[test]
    fn proc_variables_show_as_haproxys() {
        set("proc.vars_test_int", int(5), Conditions::default());
        assert_eq!(
            show_proc("proc.vars_test_int").0,
            "proc.vars_test_int: type=sint value=<5>\n"
        );
        let bin = Sample::Bin(b"AB\0C".to_vec());
        set("proc.vars_test_bin", bin, Conditions::default());
        assert_eq!(
            show_proc("proc.vars_test_bin"),
            ("proc.vars_test_bin: type=bin value=<AB>\n".into(), true)
        );
        let text = Sample::Str("a\tb\n\u{e9}".into());
        set("proc.vars_test_str", text, Conditions::default());
        assert_eq!(
            show_proc("proc.vars_test_str").0,
            "proc.vars_test_str: type=str value=<a.b...>\n"
        );
        unset("proc.vars_test_int");
        assert_eq!(show_proc("proc.vars_test_int").0, "Variable not found.\n");
        assert_eq!(show_proc("txn.a").0, "Variable not found.\n");
        assert_eq!(
            show_proc("").0,
            "Missing process-wide variable identifier.\n"
        );
    }

    /// A ledger for a `txn` store under `limits`, with `reqres`/`sess` other stores'
    /// bytes (no process limit: the process's size is not touched).
    fn txn_ledger(limits: Limits, reqres: usize, sess: usize) -> Option<Ledger> {
        let scopes = [(limits.txn, reqres), (limits.sess, reqres + sess), (0, 0)];
        Some(Ledger { limits, scopes })
    }

    #[test]
    fn sets_are_held_to_the_limits_of_their_scopes() {
        let limits = Limits {
            txn: 200,
            sess: 1000,
            ..Limits::default()
        };
        let ledger = txn_ledger(limits, 0, 0);
        let mut store = Store::default();
        let any = Conditions::default();
        let text = |s: &str| Sample::Str(s.to_string().into());
        store.set_within("txn.a", text("abcdefghij"), any, ledger);
        store.set_within("txn.c", int(5), any, ledger);
        assert_eq!(store.size, 2 * VAR_SIZE + 10);
        // A third variable does not fit: not created.
        store.set_within("txn.d", int(6), any, ledger);
        assert!(!store.map.contains_key("txn.d"));
        // A longer value replaces the shorter one's bytes; one that does not fit leaves a
        // boolean.
        store.set_within("txn.a", text(&"y".repeat(40)), any, ledger);
        assert_eq!(store.size, 2 * VAR_SIZE + 40);
        store.set_within("txn.a", text(&"z".repeat(41)), any, ledger);
        assert_eq!(store.get("txn.a"), Some(&Sample::Bool(true)));
        assert_eq!(store.size, 2 * VAR_SIZE);
        // The enclosing scopes hold the inner stores' bytes: `sess` is full.
        let crowded = txn_ledger(limits, 0, 1000 - 2 * VAR_SIZE);
        store.set_within("txn.e", int(1), any, crowded);
        assert!(!store.map.contains_key("txn.e"));
        store.unset_within("txn.c", false, ledger);
        assert_eq!(store.size, VAR_SIZE);
        store.clear(ledger);
        assert_eq!(store.size, 0);
        // Without a ledger nothing is counted.
        store.set_within("txn.f", text("abc"), any, None);
        assert_eq!(store.size, 0);
    }

    #[test]
    fn limits_are_read_as_haproxy_reads_them() {
        let kw = "tune.vars.txn-max-size";
        assert_eq!(parse_limit(kw, "200"), Ok(200));
        assert_eq!(parse_limit(kw, ""), Ok(0));
        assert_eq!(parse_limit(kw, " +7"), Ok(7));
        assert_eq!(parse_limit(kw, "-1"), Ok(u32::MAX as usize));
        assert_eq!(
            parse_limit(kw, "1x"),
            Err("tune.vars.txn-max-size: '1x' is an invalid size".into())
        );
    }

    #[test]
    fn a_format_value_is_cut_as_haproxys() {
        set_format(
            "proc.vars_test_long",
            "x".repeat(40_000),
            Conditions::default(),
        );
        let value = get("proc.vars_test_long").map(|v| v.to_text().len());
        assert_eq!(value, Some(FORMAT_MAX));
    }
}
