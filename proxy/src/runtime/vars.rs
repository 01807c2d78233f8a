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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use super::sample::Sample;

/// The longest value `set-var-fmt` stores, in bytes: HAProxy renders a format into a
/// buffer of `tune.bufsize` bytes and keeps one for its final NUL.
pub const FORMAT_MAX: usize = super::BUFSIZE - 1;

/// Variables of one scope by their full name (`SCOPE.NAME`): a value, or none for one that
/// exists without a value (HAProxy's type `ANY`: created by a set its conditions refused,
/// or a `proc` one after `unset-var`).
#[derive(Debug, Default)]
pub struct Store {
    map: BTreeMap<Box<str>, Option<Sample<'static>>>,
}

impl Store {
    /// The value of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&Sample<'static>> {
        self.map.get(name).and_then(Option::as_ref)
    }

    /// Sets `name` to `value` if `conditions` allow it, as HAProxy's `var_set`: a variable
    /// that `ifexists` does not stop is created (without a value) before the other
    /// conditions are tested, so that a later `ifexists` sees it.
    pub fn set(&mut self, name: &str, value: Sample<'_>, conditions: Conditions) {
        let exists = self.map.contains_key(name);
        if !conditions.allow_creation(exists) {
            return;
        }
        if !exists {
            self.map.insert(name.into(), None);
        }
        let Some(slot) = self.map.get_mut(name) else {
            return;
        };
        if conditions.allow(slot.as_ref(), &value) {
            *slot = Some(value.into_owned());
        }
    }

    /// Unsets `name`: gone, or kept without a value (`keep`).
    pub fn unset(&mut self, name: &str, keep: bool) {
        if keep {
            if let Some(v) = self.map.get_mut(name) {
                *v = None;
            }
        } else {
            self.map.remove(name);
        }
    }

    fn clear(&mut self) {
        if !self.map.is_empty() {
            self.map.clear();
        }
    }
}

/// The process's `proc` variables.
static PROC: Mutex<Store> = Mutex::new(Store {
    map: BTreeMap::new(),
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

/// Runs `f` on the store `name` is in, if the task has it now (None: HAProxy's "scope not
/// available", where a `var()` default does not apply either).
fn with_store<R>(name: &str, f: impl FnOnce(&mut Store) -> R) -> Option<R> {
    match Scope::of(name)? {
        Scope::Proc => Some(f(&mut proc_store())),
        Scope::Check => None,
        scope => STREAM
            .try_with(|v| v.stores.borrow_mut().of(scope).map(f))
            .ok()
            .flatten(),
    }
}

/// The value of the variable `name`, if it has one where the task is.
pub fn get(name: &str) -> Option<Sample<'static>> {
    with_store(name, |s| s.get(name).cloned()).flatten()
}

/// `var(NAME,DEFAULT)`: the value of `name`, or `default` when its scope is there but the
/// variable has no value; nothing when its scope is not (HAProxy applies no default then).
pub fn fetch(name: &str, default: Option<&str>) -> Option<Sample<'static>> {
    with_store(name, |s| {
        (s.get(name).cloned()).or_else(|| default.map(|d| Sample::Str(d.to_string().into())))
    })
    .flatten()
}

/// Sets `name` to `value` if `conditions` allow it.
pub fn set(name: &str, value: Sample<'_>, conditions: Conditions) {
    with_store(name, |s| s.set(name, value, conditions));
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
pub fn declare(name: &str) {
    if Scope::of(name) == Some(Scope::Proc) {
        let mut store = proc_store();
        if !store.map.contains_key(name) {
            store.map.insert(name.into(), None);
        }
    }
}

/// Runs `f` on the process's variables (a health check's `proc` scope).
pub fn with_proc<R>(f: impl FnOnce(&mut Store) -> R) -> R {
    f(&mut proc_store())
}

/// Unsets `name`: a `proc` variable stays without a value (as HAProxy keeps it).
pub fn unset(name: &str) {
    let keep = Scope::of(name) == Some(Scope::Proc);
    with_store(name, |s| s.unset(name, keep));
}

/// Runs `f` on the connection's stores, if the task has them.
fn with_stream(f: impl FnOnce(&mut StreamStores)) {
    let _ = STREAM.try_with(|v| f(&mut v.stores.borrow_mut()));
}

/// A stream starts on the connection (a TCP connection's, past its session rules; each
/// HTTP request's): its `txn` and `req` scopes, empty.
pub fn stream_starts() {
    with_stream(|s| {
        s.txn.clear();
        s.reqres.clear();
        s.phase = Phase::Request;
    });
}

/// The stream's response starts: its `req` variables go, its `res` scope begins.
pub fn response_starts() {
    with_stream(|s| {
        if s.phase == Phase::Request {
            s.reqres.clear();
            s.phase = Phase::Response;
        }
    });
}

/// The stream ended (an HTTP connection waits for its next request): only the session's
/// variables are left.
pub fn stream_ends() {
    with_stream(|s| {
        s.txn.clear();
        s.reqres.clear();
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
