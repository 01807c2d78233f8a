//! Cookie persistence (`cookie NAME ...` on a backend, `cookie VALUE` on its servers), as
//! HAProxy 2.6's `http_manage_client_side_cookies` and `http_manage_server_side_cookies`
//! (`src/http_ana.c`) do it:
//!
//! - A request whose cookie names a server that is up goes to that server, bypassing the
//!   balancer (a server down, or in maintenance, is balanced, unless `option persist`). With
//!   `insert indirect` the cookie is taken out of the request; with `prefix` its `VALUE~` is.
//! - A response with the backend's cookie from the server: left (`preserve`, or no mode),
//!   deleted (`insert`: hapx sets its own), given the server's value (`rewrite`) or prefixed
//!   with it (`prefix`).
//! - `insert`: a response to a client that did not come with its server's cookie gets
//!   `Set-Cookie: NAME=VALUE; path=/` (plus `domain`, `HttpOnly`, `Secure`, `attr`), only to
//!   POST requests with `postonly`, not over the server's own with `preserve`; a server
//!   without a `cookie` value gets the cookie deleted (expired); with `nocache` a cacheable
//!   response also gets `Cache-control: private`.
//! - Cookies are delimited as HAProxy does: in a Cookie header by `;` or `,` (outside
//!   quotes), every header and every occurrence looked at, the first naming a server that
//!   may take the request winning; in a Set-Cookie the value ends at `;` or `,`. A header is
//!   edited in place, only where something is taken out (`$` attributes go with the cookie
//!   before them).
//! - What happened shows in the 3rd and 4th characters of the log's termination state
//!   (HAProxy's `sess_cookie` "NIDVEOU" and `sess_set_cookie` "NPDIRU").
//!
//! - A backend's `force-persist` and `ignore-persist` rules (the first matching one counts)
//!   and its `use-server` rules ([`overrides`]) come first, as HAProxy's
//!   `process_switching_rules` and `process_server_rules`: a `use-server` server (up, or
//!   with `option persist` or `force-persist`) takes the request past the balancer, and the
//!   cookie is then still read and taken out, but chooses nothing (`U` in the log); with
//!   `ignore-persist` the cookie chooses nothing either, the server's `Set-Cookie` is left
//!   alone and none is inserted; `force-persist` lets a cookie, a stick entry or a
//!   `use-server` rule name a server that is down, and keeps the request on its server
//!   through failed connections (no redispatch, as HAProxy's `SF_FORCE_PRST`).
//! - A server a cookie, stick entry or `use-server` rule named is retried before any
//!   redispatch ([`super::balance::Direct`]); a request redispatched away from its cookie's
//!   server logs the cookie as naming a server down (`D`).
//!
//! - Dates (`maxidle`, `maxlife`), as HAProxy: an inserted cookie's value is followed by
//!   `|LAST` (when it was last seen, with either) and `|FIRST` (when it was first set, with
//!   `maxlife`), each the date in 4-second units, 30 bits in 5 base64 characters
//!   ([`s30_to_b64`]). A request's cookie has its dates read after its first `|` (in every
//!   mode but `prefix`, whatever the configuration): one first set longer than `maxlife`
//!   ago (`O`ld in the log) or last seen longer than `maxidle` ago (`E`xpired), or more
//!   than a day ahead, names no server; a response refreshes the cookie (`U`pdated in the
//!   log) when its last date is past, or when its dates are not what the configuration
//!   asks for.
//! - Dynamic cookies (`cookie ... dynamic` and `dynamic-cookie-key KEY`): a server without
//!   a `cookie` value has for one the XXH64 of the key, its address (4 or 16 bytes) and its
//!   port (4 bytes, big-endian), in 16 hexadecimal digits, as HAProxy's
//!   `srv_set_dyncookie`; the runtime API's `set dynamic-cookie-key backend B KEY`,
//!   `enable|disable dynamic-cookie backend B` change them ([`DynCookie`]).

use std::net::IpAddr;
use std::sync::Arc;

use super::http::Head;
use super::sample::{Context, Test, eval};
use super::state::{Backend, Server, now_secs};
use crate::config::model::{CookieMode, CookiePersist, Proxy};

/// HAProxy's `Expires` of a deleted cookie.
const EXPIRED: &str = "Expires=Thu, 01-Jan-1970 00:00:01 GMT";

/// What the persistence cookie did for one request.
#[derive(Debug, Clone, Default)]
pub struct Persist {
    /// The server the client's cookie sends the request to.
    pub direct: Option<Arc<Server>>,
    /// The 3rd and 4th characters of the termination state (None: the backend has no
    /// cookie that hapx sets or reads, which logs `--`).
    pub term: Option<[u8; 2]>,
    /// The request allows a cacheable response (`nocache` then marks it private).
    cacheable: bool,
    /// `ignore-persist` matched: the response's cookies are left alone.
    ignore: bool,
    /// The dates the request's cookie came with (seconds since the epoch, 4-second
    /// precision; 0: none, or dropped as expired): HAProxy's `cookie_first_date` and
    /// `cookie_last_date`.
    dates: Dates,
}

/// A persistence cookie's dates, in seconds since the epoch (0: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dates {
    pub first: u32,
    pub last: u32,
}

/// A backend's dynamic cookies: on (`cookie ... dynamic`, `enable dynamic-cookie`) and
/// the key (`dynamic-cookie-key`, `set dynamic-cookie-key`).
#[derive(Debug, Clone, Default)]
pub struct DynCookie {
    pub enabled: bool,
    pub key: Option<Arc<str>>,
}

impl DynCookie {
    /// As the configuration of backend `conf` has them.
    pub fn of(conf: &Proxy) -> Self {
        DynCookie {
            enabled: conf.cookie.as_ref().is_some_and(|c| c.dynamic),
            key: conf.dynamic_cookie_key.as_deref().map(Arc::from),
        }
    }
}

/// The runtime API's `set dynamic-cookie-key backend B KEY` (`enable`: None) and
/// `enable|disable dynamic-cookie backend B`, `args` from `B` on; HAProxy's answers.
pub fn cli_dyncookie(state: &super::state::State, args: &[&str], enable: Option<bool>) -> String {
    let Some(name) = args.first() else {
        return "A backend name is expected.\n".into();
    };
    let Some(backend) = state.backend(name) else {
        return "No such backend.\n".into();
    };
    let mut dyn_ = backend.dyncookie.write().unwrap_or_else(|e| e.into_inner());
    match (enable, args.get(1)) {
        (Some(on), _) => dyn_.enabled = on,
        (None, Some(key)) => dyn_.key = Some(Arc::from(*key)),
        (None, None) => return "String value expected.\n".into(),
    }
    String::new()
}

/// The cookie value naming `server` of `backend`: its `cookie`, else its dynamic one when
/// the backend has dynamic cookies with a key and the server an address.
pub fn server_cookie<'a>(backend: &Backend, server: &'a Server) -> Option<ServerCookie<'a>> {
    if let Some(c) = server.opts.cookie.as_deref() {
        return Some(ServerCookie::Fixed(c));
    }
    let dyn_ = backend.dyncookie.read().unwrap_or_else(|e| e.into_inner());
    let key = dyn_.key.as_ref().filter(|_| dyn_.enabled)?;
    let (addr, port) = (server.addr()?, server.service_port().number());
    Some(ServerCookie::Dynamic(
        server.dynamic_cookie.get(key, addr, port),
    ))
}

/// A server's cookie value: its own, or its dynamic one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCookie<'a> {
    Fixed(&'a str),
    Dynamic(Arc<str>),
}

impl ServerCookie<'_> {
    pub fn into_owned(self) -> String {
        self.to_string()
    }
}

impl std::ops::Deref for ServerCookie<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            ServerCookie::Fixed(c) => c,
            ServerCookie::Dynamic(c) => c,
        }
    }
}

impl std::fmt::Display for ServerCookie<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// A server's dynamic cookie, computed once for a key, address and port (HAProxy computes
/// it when one of them changes) rather than for every request carrying a cookie: a new
/// key (a new `Arc`), address or port makes the next reader compute it again.
#[derive(Debug, Default)]
pub struct DynamicCookieCache(std::sync::RwLock<Option<CachedCookie>>);

#[derive(Debug)]
struct CachedCookie {
    key: Arc<str>,
    addr: IpAddr,
    port: u16,
    value: Arc<str>,
}

impl DynamicCookieCache {
    fn get(&self, key: &Arc<str>, addr: IpAddr, port: u16) -> Arc<str> {
        let fresh = |c: &CachedCookie| Arc::ptr_eq(&c.key, key) && c.addr == addr && c.port == port;
        if let Some(c) = &*self.0.read().unwrap_or_else(|e| e.into_inner()) {
            if fresh(c) {
                return c.value.clone();
            }
        }
        let value: Arc<str> = dynamic_cookie(key, addr, port).into();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(CachedCookie {
            key: key.clone(),
            addr,
            port,
            value: value.clone(),
        });
        value
    }
}

/// HAProxy's `srv_set_dyncookie` value: XXH64 (seed 0) of `key`, the address's bytes and
/// the port as 4 big-endian bytes, in 16 lowercase hexadecimal digits.
pub fn dynamic_cookie(key: &str, addr: IpAddr, port: u16) -> String {
    let mut buf = Vec::with_capacity(key.len() + 20);
    buf.extend_from_slice(key.as_bytes());
    match addr {
        IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
    }
    buf.extend_from_slice(&u32::from(port).to_be_bytes());
    format!("{:016x}", xxhash_rust::xxh64::xxh64(&buf, 0))
}

/// The alphabet of HAProxy's `s30tob64` and `b64tos30`.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The low 30 bits of `v` in 5 base64 characters, most significant first (HAProxy's
/// `s30tob64`).
pub fn s30_to_b64(v: u32) -> [u8; 5] {
    std::array::from_fn(|i| B64[((v >> (24 - 6 * i)) & 0x3f) as usize])
}

/// The 30-bit value of the 5 characters `s30_to_b64` makes; None if any is not one of its
/// alphabet (HAProxy's `b64tos30`, which also refuses the padding `=`).
pub fn b64_to_s30(s: &[u8]) -> Option<u32> {
    let chars = s.get(..5)?;
    chars.iter().try_fold(0u32, |acc, c| {
        let v = B64.iter().position(|b| b == c)?;
        Some((acc << 6) | v as u32)
    })
}

/// The dates after the `|` at `bar` of a cookie value `v`, read as HAProxy reads them: 5
/// characters at least for the last-seen date, then 5 at least after a second `|` for the
/// first date; an unreadable (or zero) date is none.
fn read_dates(v: &[u8], bar: usize) -> Dates {
    let decode = |s: &[u8]| b64_to_s30(s).filter(|v| *v > 0).map_or(0, |v| v << 2);
    let rest = &v[bar + 1..];
    let mut dates = Dates::default();
    if rest.len() >= 5 {
        dates.last = decode(rest);
    }
    if let Some(i) = rest.iter().position(|&b| b == b'|') {
        let after = &rest[i + 1..];
        if after.len() >= 5 {
            dates.first = decode(after);
        }
    }
    dates
}

/// What a backend's `force-persist`, `ignore-persist` and `use-server` rules decided for a
/// request (HAProxy's `SF_FORCE_PRST`, `SF_IGNORE_PRST`, and a server assigned).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The server a `use-server` rule sends the request to, past the balancer.
    pub server: Option<Arc<Server>>,
    /// `force-persist`: a server that is down may be named.
    pub force: bool,
    /// `ignore-persist`: the cookie names no server (stick entries still do, as in HAProxy).
    pub ignore: bool,
}

impl Overrides {
    /// Whether `server` may take a request that names it (HAProxy: not stopped, or
    /// `option persist`, or `force-persist`).
    pub fn may_use(&self, backend: &Backend, server: &Server) -> bool {
        server.usable() || backend.conf.options.persist || self.force
    }
}

/// Runs `backend`'s `force-persist`/`ignore-persist` rules (the first matching one counts)
/// then its `use-server` rules in `ctx`: the first matching rule whose server may take the
/// request assigns it; a rule naming a server that is down is passed over. Without such
/// rules, nothing is evaluated.
pub fn overrides(ctx: &Context<'_>, backend: &Backend) -> Overrides {
    let rules = &backend.conf.rules;
    let acls = &rules.acls.acls;
    let mut out = Overrides::default();
    if rules.use_servers.is_empty() && rules.persist.is_empty() {
        return out;
    }
    if let Some(r) = (rules.persist.iter()).find(|r| eval(Some(&r.cond), acls, ctx) == Test::Pass) {
        out.force = r.force;
        out.ignore = !r.force;
    }
    for rule in &rules.use_servers {
        if eval(Some(&rule.cond), acls, ctx) != Test::Pass {
            continue;
        }
        let named = match &rule.dynamic {
            None => backend.servers.iter().find(|s| s.name == rule.server),
            // HAProxy stops at a rendered name that is empty or no server's.
            Some(format) => {
                let name = super::rules::render_at_accept(format, ctx, None);
                let found = (backend.servers.iter()).find(|s| !name.is_empty() && s.name == name);
                match found {
                    Some(server) => Some(server),
                    None => break,
                }
            }
        };
        if let Some(server) = named.filter(|s| out.may_use(backend, s)) {
            out.server = Some(server.clone());
            break;
        }
    }
    out
}

impl Persist {
    /// The termination state `flags` (4 characters) with the cookie's characters in.
    pub fn term(&self, flags: &str) -> [u8; 4] {
        let mut out = [b'-'; 4];
        for (o, b) in out.iter_mut().zip(flags.bytes()) {
            *o = b;
        }
        if let Some(chars) = self.term {
            out[2..].copy_from_slice(&chars);
        }
        out
    }

    /// The request went to another server than its cookie's after failed connections
    /// (`option redispatch`): a valid cookie is then logged as naming a server down (`D`),
    /// as HAProxy's `TX_CK_DOWN`.
    pub fn redispatched(&mut self) {
        if let Some(t) = self.term.as_mut().filter(|t| t[0] == b'V') {
            t[0] = b'D';
        }
    }

    fn set_client(&mut self, c: u8) {
        if let Some(t) = self.term.as_mut() {
            t[0] = c;
        }
    }

    fn set_server(&mut self, c: u8) {
        if let Some(t) = self.term.as_mut() {
            t[1] = c;
        }
    }
}

/// The backend's cookie when it is one hapx acts on (HAProxy's `PR_CK_ANY`: a mode or
/// `indirect`); a passive cookie without `indirect` is only read.
fn acting(c: &CookiePersist) -> bool {
    c.mode != CookieMode::Passive || c.indirect
}

/// Reads the request's cookies for `backend`: the server its persistence cookie names, if
/// that one may take it; takes the cookie (or its prefix) out of `head` as the mode says.
/// Every cookie of every Cookie header is looked at, as HAProxy's
/// `http_manage_client_side_cookies` does: the first naming a server that may take the
/// request wins, and each occurrence of the cookie is edited.
/// `over`: what the `use-server` and persistence rules decided, which comes first.
pub fn on_request(backend: &Backend, head: &mut Head, over: &Overrides) -> Persist {
    let Some(c) = backend.conf.cookie.as_ref() else {
        return Persist {
            direct: over.server.clone(),
            ..Persist::default()
        };
    };
    let mut persist = Persist {
        term: acting(c).then_some([b'N', b'N']),
        cacheable: request_cacheable(head),
        ignore: over.ignore,
        ..Persist::default()
    };
    let mut client = ClientCookie {
        backend,
        conf: c,
        state: b'N',
        assigned: false,
        direct: None,
        over,
        dates: Dates::default(),
        // 32 bits, as HAProxy compares the dates (`unsigned int`).
        now: now_secs() as u32,
    };
    let mut emptied = false;
    for (name, value) in head.headers.iter_mut() {
        if name.eq_ignore_ascii_case("cookie") {
            client.edit(value);
            emptied |= value.is_empty();
        }
    }
    if client.state != b'N' {
        persist.set_client(client.state);
    }
    persist.dates = client.dates;
    persist.direct = client.direct.or_else(|| over.server.clone());
    // A Cookie header left empty goes.
    if emptied {
        head.headers
            .retain(|(n, v)| !(n.eq_ignore_ascii_case("cookie") && v.is_empty()));
    }
    persist
}

/// The scan of a request's Cookie headers: what the persistence cookie said so far.
struct ClientCookie<'a> {
    backend: &'a Backend,
    conf: &'a CookiePersist,
    /// HAProxy's `TX_CK_*` as the log shows it: `N`one, `I`nvalid, `D`own, `V`alid.
    state: u8,
    /// A server was chosen (HAProxy's `SF_ASSIGNED`): later cookies are not looked at.
    assigned: bool,
    direct: Option<Arc<Server>>,
    over: &'a Overrides,
    /// The dates read so far (a later cookie's replace them, as HAProxy's).
    dates: Dates,
    /// Seconds since the epoch, 32 bits as HAProxy compares them.
    now: u32,
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Where a cookie value starting at `at` ends: the first `;` or `,` outside a quoted string
/// (HAProxy's `http_find_cookie_value_end`).
fn cookie_value_end(bytes: &[u8], at: usize) -> usize {
    super::h1::unquoted_end(bytes, at, |b| b == b';' || b == b',')
}

/// Removes the cookies from the delimiter at `from` to the one at `next`, keeping one
/// delimiter (HAProxy's `http_del_hdr_value`); how many bytes went.
fn delete_cookies(buf: &mut Vec<u8>, mut from: usize, mut next: usize) -> usize {
    let end = buf.len();
    if from == 0 {
        // The first cookies: the delimiter after them and its spaces go too.
        if next < end {
            next += 1;
        }
    } else {
        while from > 0 && is_space(buf[from - 1]) {
            from -= 1;
        }
        if next < end {
            buf[from] = buf[next];
            from += 1;
            next += 1;
            if from < next {
                buf[from] = b' ';
                from += 1;
            }
        }
    }
    while next < end && is_space(buf[next]) {
        next += 1;
    }
    let gone = next.saturating_sub(from);
    buf.drain(from..from + gone);
    gone
}

/// One cookie of a Cookie header, as HAProxy delimits it: `NAME = VALUE ;`.
struct Span {
    att_beg: usize,
    att_end: usize,
    /// The `=`, or where the cookie ends when it has none.
    equal: usize,
    val_beg: usize,
    val_end: usize,
    /// The delimiter after it (`;`, `,`) or the end.
    next: usize,
}

impl Span {
    /// The cookie after the delimiter at `prev` (at `prev` itself for the first).
    /// `comma`: a `,` ends a valueless cookie's name (Cookie, not Set-Cookie).
    fn at(buf: &[u8], prev: usize, first: bool, comma: bool) -> Span {
        let mut att_beg = if first { prev } else { prev + 1 };
        while att_beg < buf.len() && is_space(buf[att_beg]) {
            att_beg += 1;
        }
        let (mut equal, mut att_end) = (att_beg, att_beg);
        while equal < buf.len()
            && !(matches!(buf[equal], b'=' | b';') || comma && buf[equal] == b',')
        {
            equal += 1;
            if !is_space(buf[equal - 1]) {
                att_end = equal;
            }
        }
        let mut span = Span {
            att_beg,
            att_end,
            equal,
            val_beg: equal,
            val_end: equal,
            next: equal,
        };
        if equal < buf.len() && buf[equal] == b'=' {
            span.val_beg = equal + 1;
            while span.val_beg < buf.len() && is_space(buf[span.val_beg]) {
                span.val_beg += 1;
            }
            span.next = cookie_value_end(buf, span.val_beg);
            span.val_end = span.next;
            while span.val_end > span.val_beg && is_space(buf[span.val_end - 1]) {
                span.val_end -= 1;
            }
        }
        span
    }

    /// Takes out the spaces around the `=`, as HAProxy does.
    fn strip_spaces(&mut self, buf: &mut Vec<u8>) {
        let after = self.val_beg - (self.equal + 1);
        let before = self.equal - self.att_end;
        if after + before == 0 {
            return;
        }
        buf.drain(self.equal + 1..self.val_beg);
        buf.drain(self.att_end..self.equal);
        self.equal = self.att_end;
        self.val_beg = self.equal + 1;
        self.val_end -= after + before;
        self.next -= after + before;
    }
}

impl ClientCookie<'_> {
    /// One Cookie header's value, edited in place (only when the mode takes something out).
    fn edit(&mut self, value: &mut String) {
        let mut buf = std::mem::take(value).into_bytes();
        let mut del_from: Option<usize> = None;
        let mut preserve = false;
        let mut prev = 0;
        let mut first = true;
        while prev < buf.len() {
            let mut span = Span::at(&buf, prev, first, true);
            first = false;
            // `$Version`, `$Path`...: attributes of the cookie before, which go with it.
            if buf.get(span.att_beg) == Some(&b'$') {
                prev = span.next;
                continue;
            }
            if span.equal != span.next {
                span.strip_spaces(&mut buf);
            }
            let ours = span.equal != span.next
                && buf[span.att_beg..span.att_end] == *self.conf.name.as_bytes();
            if !ours {
                // Kept: the cookies of ours before it go, not the header.
                preserve = true;
                if let Some(from) = del_from.take() {
                    span.next -= delete_cookies(&mut buf, from, prev);
                }
                prev = span.next;
                continue;
            }
            let Span {
                val_beg, val_end, ..
            } = span;
            let value = &buf[val_beg..val_end];
            let delim = match self.conf.mode {
                CookieMode::Prefix => value
                    .iter()
                    .position(|&b| b == b'~')
                    .map_or(val_end, |i| val_beg + i),
                // `VALUE|LAST|FIRST`: the dates after the server's value.
                _ => match value.iter().position(|&b| b == b'|') {
                    Some(bar) => {
                        let dates = read_dates(value, bar);
                        if dates.last != 0 {
                            self.dates.last = dates.last;
                        }
                        if dates.first != 0 {
                            self.dates.first = dates.first;
                        }
                        val_beg + bar
                    }
                    None => val_end,
                },
            };
            self.choose(&buf[val_beg..delim]);
            if self.conf.mode == CookieMode::Prefix && delim != val_end {
                // The server's `VALUE~` out; the application's cookie stays.
                buf.drain(val_beg..=delim);
                span.next -= delim + 1 - val_beg;
                del_from = None;
                preserve = true;
            } else if del_from.is_none()
                && self.conf.mode == CookieMode::Insert
                && self.conf.indirect
            {
                del_from = Some(prev);
            }
            prev = span.next;
        }
        if let Some(from) = del_from {
            buf.truncate(if preserve { from } else { 0 });
        }
        // Only whole ASCII delimiters and spaces were taken out.
        *value = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }

    /// Whether the dates read so far make the cookie too old (`O`) or idle too long (`E`),
    /// as HAProxy checks them: first the first date against `maxlife`, then the last one
    /// against `maxidle`; a date more than a day ahead counts as expired too.
    fn expired(&self) -> Option<u8> {
        // HAProxy's 32-bit signed differences, wrapping as its do.
        let past = |date: u32, max: u32| {
            let ago = self.now.wrapping_sub(date) as i32;
            let ahead = date.wrapping_sub(self.now) as i32;
            date != 0 && max != 0 && (ago > max as i32 || ahead > 86400)
        };
        if past(self.dates.first, self.conf.maxlife) {
            Some(b'O')
        } else if past(self.dates.last, self.conf.maxidle) {
            Some(b'E')
        } else {
            None
        }
    }

    /// The server a persistence cookie's value `named` sends the request to, as HAProxy's
    /// scan of the servers: the first one with that cookie that may take it.
    fn choose(&mut self, mut named: &[u8]) {
        // An expired cookie is as if it named no server, its dates forgotten.
        if let Some(state) = self.expired() {
            self.state = state;
            self.dates = Dates::default();
            named = &[];
        }
        // A `use-server` server, `ignore-persist`, or a server chosen already by an earlier
        // cookie: this one chooses nothing.
        let unused = self.over.ignore || self.over.server.is_some() || self.assigned;
        let mut server = None;
        if !named.is_empty() && !unused {
            for s in &self.backend.servers {
                if server_cookie(self.backend, s).as_deref().map(str::as_bytes) != Some(named) {
                    continue;
                }
                if self.over.may_use(self.backend, s) {
                    self.state = if s.usable() { b'V' } else { b'D' };
                    self.assigned = true;
                    self.direct = Some(s.clone());
                    server = Some(s);
                    break;
                }
                self.state = b'D';
            }
        }
        // HAProxy's `TX_CK_*` is a value, and what its test of `DOWN|EXPIRED|OLD` lets
        // through is only `NONE`: any state already set stays (the chosen one's too).
        if server.is_none() && self.state == b'N' {
            self.state = if unused { b'U' } else { b'I' };
        }
    }
}

/// HAProxy's `http_check_request_for_cacheability`, as far as `nocache` needs it: a GET or
/// HEAD without `Authorization`, `Cache-Control: no-cache|no-store`, or (without
/// Cache-Control) `Pragma: no-cache`.
fn request_cacheable(head: &Head) -> bool {
    let method = head.first[0].as_str();
    if method != "GET" && method != "HEAD" {
        return false;
    }
    let value_starts = |name: &str, prefixes: &[&str]| {
        head.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && prefixes.iter().any(|p| starts_ci(v, p)))
    };
    let has = |name: &str| {
        head.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if has("authorization") || value_starts("cache-control", &["no-cache", "no-store"]) {
        return false;
    }
    has("cache-control") || !value_starts("pragma", &["no-cache"])
}

fn starts_ci(value: &str, prefix: &str) -> bool {
    value
        .trim_start()
        .get(..prefix.len())
        .is_some_and(|v| v.eq_ignore_ascii_case(prefix))
}

/// Handles the response's `Set-Cookie`s from `server` for `backend` (a `method` request),
/// then inserts the persistence cookie when the mode and the request call for it.
pub fn on_response(
    backend: &Backend,
    server: &Arc<Server>,
    method: &str,
    status: u16,
    resp: &mut Head,
    persist: &mut Persist,
) {
    let Some(c) = backend.conf.cookie.as_ref() else {
        return;
    };
    if persist.ignore {
        return;
    }
    let value = server_cookie(backend, server);
    let found = server_cookies(c, value.as_deref(), resp, persist);
    let direct = persist
        .direct
        .as_ref()
        .is_some_and(|d| Arc::ptr_eq(d, server));
    let now = now_secs() as u32;
    let inserts = c.mode == CookieMode::Insert
        && !(found && c.preserve)
        && (!direct || needs_new_dates(c, persist.dates, now))
        && (!c.postonly || method == "POST");
    if !inserts {
        return;
    }
    let dated = value
        .as_deref()
        .map(|v| dated_value(c, v, persist.dates, now));
    resp.headers
        .push(("Set-Cookie".into(), set_cookie(c, dated.as_deref())));
    // The same server again: only the dates changed.
    persist.set_server(if direct && value.is_some() {
        b'U'
    } else {
        b'I'
    });
    if c.nocache && persist.cacheable && response_cacheable(status, resp) {
        resp.headers
            .push(("Cache-control".into(), "private".into()));
    }
}

/// The server's own `Set-Cookie`s of the backend's cookie, as the mode says; whether there
/// was one. As HAProxy's `http_manage_server_side_cookies`: only the first cookie of each
/// header counts (the attributes follow it), its value ends at `;` or `,`, and one without
/// a value is not looked at.
fn server_cookies(
    c: &CookiePersist,
    ours: Option<&str>,
    resp: &mut Head,
    persist: &mut Persist,
) -> bool {
    let mut found = false;
    resp.headers.retain_mut(|(name, value)| {
        if !name.eq_ignore_ascii_case("set-cookie") {
            return true;
        }
        let mut buf = std::mem::take(value).into_bytes();
        let mut span = Span::at(&buf, 0, true, false);
        let named =
            span.equal != span.val_end && buf[span.att_beg..span.att_end] == *c.name.as_bytes();
        if span.equal != span.val_end {
            span.strip_spaces(&mut buf);
        }
        let mut keep = true;
        if named {
            found = true;
            match (c.mode, ours) {
                _ if c.preserve => persist.set_server(b'P'),
                (CookieMode::Insert, _) => {
                    keep = false;
                    persist.set_server(b'D');
                }
                (CookieMode::Rewrite, Some(ours)) => {
                    buf.splice(span.val_beg..span.val_end, ours.bytes());
                    persist.set_server(b'R');
                }
                (CookieMode::Prefix, Some(ours)) => {
                    let prefix = ours.bytes().chain(std::iter::once(b'~'));
                    buf.splice(span.val_beg..span.val_beg, prefix);
                    persist.set_server(b'R');
                }
                _ => persist.set_server(b'P'),
            }
        }
        *value = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        keep
    });
    found
}

/// Whether a client that came with its server's cookie gets it again for its dates
/// (HAProxy's test): its last date is past (or missing where `maxidle` wants one), or it
/// lacks the first date `maxlife` wants, or has one `maxlife` does not want.
fn needs_new_dates(c: &CookiePersist, dates: Dates, now: u32) -> bool {
    // HAProxy compares the date as a signed 32-bit number with its 64-bit clock: one with
    // bit 31 set is past.
    let last_past = (c.maxidle != 0 || dates.last != 0)
        && (dates.last == 0 || i64::from(dates.last as i32) < i64::from(now));
    last_past || (c.maxlife != 0) == (dates.first == 0)
}

/// The server's cookie value `v` with the dates the configuration asks for: `|LAST` (now)
/// with `maxidle` or `maxlife`, then `|FIRST` (the cookie's own, else now) with `maxlife`.
fn dated_value(c: &CookiePersist, v: &str, dates: Dates, now: u32) -> String {
    let mut out = v.to_string();
    // In 4-second units: now rounded up, a date that came as it came.
    let mut push = |units: u32| {
        out.push('|');
        out.extend(s30_to_b64(units).iter().map(|&b| char::from(b)));
    };
    let now_units = now.wrapping_add(3) >> 2;
    if c.maxidle != 0 || c.maxlife != 0 {
        push(now_units);
        if c.maxlife != 0 {
            push(if dates.first != 0 {
                dates.first >> 2
            } else {
                now_units
            });
        }
    }
    out
}

/// The `Set-Cookie` value `insert` adds for a server whose cookie value is `value` (none:
/// the cookie is deleted, as HAProxy does for a server without one).
fn set_cookie(c: &CookiePersist, value: Option<&str>) -> String {
    let mut out = match value {
        Some(v) => format!("{}={v}; path=/", c.name),
        None => format!("{}=; {EXPIRED}; path=/", c.name),
    };
    for d in &c.domains {
        out.push_str("; domain=");
        out.push_str(d);
    }
    if c.httponly {
        out.push_str("; HttpOnly");
    }
    if c.secure {
        out.push_str("; Secure");
    }
    for a in &c.attrs {
        out.push_str("; ");
        out.push_str(a);
    }
    out
}

/// HAProxy's `http_check_response_for_cacheability`, as far as `nocache` needs it: a
/// cacheable status, no `Cache-Control` (or `Pragma`) forbidding a shared cache, and, as
/// RFC 7234 section 3 wants, an expiration time (`Expires`, `max-age`, `s-maxage`) or a
/// validator (`ETag`, `Last-Modified`).
fn response_cacheable(status: u16, resp: &Head) -> bool {
    let status_ok = matches!(
        status,
        200 | 203 | 204 | 206 | 300 | 301 | 404 | 405 | 410 | 414 | 501
    );
    let values = |name: &'static str| {
        resp.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
    };
    let forbids = values("cache-control").any(|d| {
        ["private", "no-cache", "no-store"]
            .iter()
            .any(|p| starts_ci(d, p))
    }) || values("pragma").any(|d| starts_ci(d, "no-cache"));
    let fresh = values("expires").next().is_some()
        || values("cache-control").any(|d| starts_ci(d, "max-age=") || starts_ci(d, "s-maxage="));
    let validated = values("etag").next().is_some() || values("last-modified").next().is_some();
    status_ok && !forbids && (fresh || validated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Proxy, ProxyKind, Server as ServerConf, ServerOptions};

    fn backend(cookie: &str) -> Backend {
        let words: Vec<String> = cookie.split_whitespace().map(String::from).collect();
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Default::default());
        p.cookie = Some(crate::config::balance::parse_cookie(&words).unwrap());
        for (i, value) in [Some("a"), Some("b"), None].into_iter().enumerate() {
            p.servers.push(ServerConf {
                name: format!("s{i}"),
                host: "127.0.0.1".into(),
                port: Some(1),
                opts: ServerOptions {
                    cookie: value.map(String::from),
                    ..Default::default()
                },
                place: Default::default(),
                id: i + 1,
                addr: Some([127, 0, 0, 1].into()),
            });
        }
        Backend::new(1, &p)
    }

    fn request(cookie: Option<&str>) -> Head {
        let mut headers = vec![("host".to_string(), "x".to_string())];
        if let Some(c) = cookie {
            headers.push(("Cookie".into(), c.into()));
        }
        Head {
            first: ["GET".into(), "/".into(), "HTTP/1.1".into()],
            headers,
            framing: super::super::http::Framing::None,
            dropped_length: false,
            conn: Default::default(),
            h2: None,
        }
    }

    #[test]
    fn the_cookie_names_the_server_and_indirect_takes_it_out() {
        let b = backend("cookie SRV insert indirect nocache");
        let mut head = request(Some("x=1; SRV=b; y=2"));
        let p = on_request(&b, &mut head, &Overrides::default());
        assert!(p.direct.as_ref().is_some_and(|s| s.name == "s1"));
        assert_eq!(&p.term(""), b"--VN");
        assert_eq!(head.header("cookie"), Some("x=1; y=2"));
        let mut alone = request(Some("SRV=a"));
        on_request(&b, &mut alone, &Overrides::default());
        assert_eq!(alone.header("cookie"), None);
        let mut invalid = request(Some("SRV=zz"));
        let p = on_request(&b, &mut invalid, &Overrides::default());
        assert!(p.direct.is_none());
        assert_eq!(&p.term("----"), b"--IN");
        b.servers[0].set_up(false);
        let p = on_request(&b, &mut request(Some("SRV=a")), &Overrides::default());
        assert!(p.direct.is_none());
        assert_eq!(&p.term("----"), b"--DN");
    }

    #[test]
    fn overrides_leave_the_cookie_unused() {
        let b = backend("cookie SRV insert indirect nocache");
        // `ignore-persist`: nothing chosen, the cookie still taken out, no cookie set.
        let ignore = Overrides {
            ignore: true,
            ..Overrides::default()
        };
        let mut head = request(Some("SRV=a"));
        let mut p = on_request(&b, &mut head, &ignore);
        assert!(p.direct.is_none());
        assert_eq!(head.header("cookie"), None);
        assert_eq!(&p.term("----"), b"--UN");
        let mut resp = response(Some("SRV=from-app"));
        on_response(&b, &b.servers[1], "GET", 200, &mut resp, &mut p);
        assert_eq!(resp.header("set-cookie"), Some("SRV=from-app"));
        // A `use-server` server: it is chosen, the cookie is unused.
        let chosen = Overrides {
            server: Some(b.servers[1].clone()),
            ..Overrides::default()
        };
        let p = on_request(&b, &mut request(Some("SRV=a")), &chosen);
        assert_eq!(p.direct.as_ref().map(|s| s.name.as_str()), Some("s1"));
        assert_eq!(&p.term("----"), b"--UN");
        // `force-persist`: a cookie may name a server that is down.
        b.servers[0].set_up(false);
        let force = Overrides {
            force: true,
            ..Overrides::default()
        };
        let p = on_request(&b, &mut request(Some("SRV=a")), &force);
        assert_eq!(p.direct.as_ref().map(|s| s.name.as_str()), Some("s0"));
        assert_eq!(&p.term("----"), b"--DN");
    }

    #[test]
    fn every_occurrence_counts_and_a_comma_ends_a_cookie() {
        let b = backend("cookie SRV insert indirect nocache");
        let cases = [
            // (Cookie header, server chosen, what is passed on, log characters)
            ("SRV=zz; SRV=b", Some("s1"), None, *b"VN"),
            ("SRV=b;SRV=a", Some("s1"), None, *b"VN"),
            ("x=1, SRV=b", Some("s1"), Some("x=1"), *b"VN"),
            (
                "SRV=b; $Path=/; x=1; SRV=a; $Version=1",
                Some("s1"),
                Some("x=1"),
                *b"VN",
            ),
            ("a = 1 ;SRV = b ; c=2", Some("s1"), Some("a=1; c=2"), *b"VN"),
            ("q=\"a;b\"; SRV=zz", None, Some("q=\"a;b\""), *b"IN"),
        ];
        for (cookie, server, passed, term) in cases {
            let mut head = request(Some(cookie));
            let p = on_request(&b, &mut head, &Overrides::default());
            assert_eq!(
                p.direct.as_ref().map(|s| s.name.as_str()),
                server,
                "{cookie}"
            );
            assert_eq!(head.header("cookie"), passed, "{cookie}");
            assert_eq!(&p.term("--")[2..], &term, "{cookie}");
        }
        // Without `indirect` nothing is taken out: the header stays as it came.
        let b = backend("cookie SRV insert");
        let mut head = request(Some("SRV=b;SRV=a"));
        on_request(&b, &mut head, &Overrides::default());
        assert_eq!(head.header("cookie"), Some("SRV=b;SRV=a"));
        // A server's cookie: its value ends at a comma.
        let b = backend("cookie SRV rewrite");
        let mut p = on_request(&b, &mut request(None), &Overrides::default());
        let mut resp = response(Some("SRV=x, OTHER=y; Path=/"));
        on_response(&b, &b.servers[0], "GET", 200, &mut resp, &mut p);
        assert_eq!(resp.header("set-cookie"), Some("SRV=a, OTHER=y; Path=/"));
    }

    fn response(set_cookie: Option<&str>) -> Head {
        let mut head = request(None);
        head.first = ["HTTP/1.1".into(), "200".into(), "OK".into()];
        head.headers.clear();
        if let Some(v) = set_cookie {
            head.headers.push(("Set-Cookie".into(), v.into()));
        }
        head
    }

    #[test]
    fn insert_sets_the_cookie_of_the_balanced_server() {
        let b = backend("cookie SRV insert indirect nocache httponly domain .example.com");
        let mut p = on_request(&b, &mut request(None), &Overrides::default());
        let mut resp = response(Some("SRV=server-said; path=/x"));
        resp.headers
            .push(("Cache-Control".into(), "max-age=60".into()));
        on_response(&b, &b.servers[1], "GET", 200, &mut resp, &mut p);
        let set: Vec<&str> = resp
            .headers
            .iter()
            .filter(|(n, _)| n == "Set-Cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(set, ["SRV=b; path=/; domain=.example.com; HttpOnly"]);
        let cache_control: Vec<&str> = resp
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cache_control, ["max-age=60", "private"]);
        assert_eq!(&p.term("----"), b"--NI");
        // A server without a cookie value: the client's cookie is deleted.
        let mut p = on_request(&b, &mut request(None), &Overrides::default());
        let mut resp = response(None);
        on_response(&b, &b.servers[2], "GET", 200, &mut resp, &mut p);
        assert!(
            resp.header("set-cookie")
                .is_some_and(|v| v.starts_with("SRV=; Expires="))
        );
    }

    #[test]
    fn dynamic_cookies_are_haproxys_values() {
        // As HAProxy 2.6 computed them (`show stat`) for these keys and servers.
        let cases = [
            ("abc", "127.0.0.1", 18001, "e07255d4e091ed0a"),
            ("abc", "::1", 18003, "0d465537ae7740f2"),
            ("newkey", "127.0.0.1", 18001, "afcbb59834b7b3b1"),
            ("newkey", "::1", 18003, "1e6fcf00fac62ecf"),
        ];
        for (key, addr, port, value) in cases {
            assert_eq!(dynamic_cookie(key, addr.parse().unwrap(), port), value);
        }
        let b = backend("cookie SRV insert dynamic");
        assert_eq!(server_cookie(&b, &b.servers[0]).as_deref(), Some("a"));
        // No key yet: the server without a value has none.
        assert_eq!(server_cookie(&b, &b.servers[2]), None);
        b.dyncookie.write().unwrap().key = Some("abc".into());
        let expected = dynamic_cookie("abc", [127, 0, 0, 1].into(), 1);
        assert_eq!(
            server_cookie(&b, &b.servers[2]).as_deref(),
            Some(&*expected)
        );
        b.dyncookie.write().unwrap().enabled = false;
        assert_eq!(server_cookie(&b, &b.servers[2]), None);
    }

    #[test]
    fn dynamic_cookies_are_computed_once_per_key_address_and_port() {
        let b = backend("cookie SRV insert dynamic");
        b.dyncookie.write().unwrap().key = Some("abc".into());
        let value = |b: &Backend| match server_cookie(b, &b.servers[2]) {
            Some(ServerCookie::Dynamic(v)) => v,
            other => panic!("no dynamic cookie: {other:?}"),
        };
        let first = value(&b);
        assert!(Arc::ptr_eq(&first, &value(&b)), "computed again");
        // A new address, port or key: a new value.
        b.servers[2].set_addr(Some([127, 0, 0, 2].into()));
        let moved = value(&b);
        assert_eq!(*moved, dynamic_cookie("abc", [127, 0, 0, 2].into(), 1));
        b.servers[2].set_service_port(crate::runtime::state::ServicePort::Fixed(2));
        assert_eq!(*value(&b), dynamic_cookie("abc", [127, 0, 0, 2].into(), 2));
        b.dyncookie.write().unwrap().key = Some("abc".into());
        let rekeyed = value(&b);
        assert!(!Arc::ptr_eq(&rekeyed, &moved));
        b.dyncookie.write().unwrap().key = Some("new".into());
        assert_eq!(*value(&b), dynamic_cookie("new", [127, 0, 0, 2].into(), 2));
    }

    #[test]
    fn dates_are_30_bits_in_5_base64_characters() {
        assert_eq!(&s30_to_b64(0), b"AAAAA");
        assert_eq!(&s30_to_b64((1 << 30) - 1), b"/////");
        for v in [1, 63, 64, 444_000_000, (1 << 30) - 1] {
            assert_eq!(b64_to_s30(&s30_to_b64(v)), Some(v));
        }
        assert_eq!(b64_to_s30(b"AAA=A"), None);
        assert_eq!(b64_to_s30(b"AAAA"), None);
        assert_eq!(read_dates(b"a|AAAAB|AAAAC", 1), Dates { first: 8, last: 4 });
        assert_eq!(read_dates(b"a|AAAAB|AAAA", 1), Dates { first: 0, last: 4 });
        assert_eq!(read_dates(b"a|@AAAB|AAAAC", 1), Dates { first: 8, last: 0 });
    }

    fn dated(now: u32, last_ago: i64, first_ago: i64) -> String {
        let enc = |ago: i64| {
            let secs = (i64::from(now) - ago) as u32;
            String::from_utf8(s30_to_b64(secs >> 2).to_vec()).unwrap()
        };
        format!("SRV=b|{}|{}", enc(last_ago), enc(first_ago))
    }

    #[test]
    fn expired_cookies_name_no_server_and_fresh_ones_get_new_dates() {
        let b = backend("cookie SRV insert indirect maxidle 20 maxlife 60");
        let now = u32::try_from(now_secs()).unwrap();
        let cases = [
            // (last seen, first set, seconds ago; log characters)
            (8, 12, *b"VU"),
            (40, 44, *b"EI"),
            (8, 100, *b"OI"),
            (-2 * 86400, 8, *b"EI"),
        ];
        for (last, first, term) in cases {
            let cookie = dated(now, last, first);
            let mut p = on_request(&b, &mut request(Some(&cookie)), &Overrides::default());
            assert_eq!(p.direct.is_some(), term[0] == b'V', "{cookie}");
            let mut resp = response(None);
            on_response(&b, &b.servers[1], "GET", 200, &mut resp, &mut p);
            assert_eq!(&p.term("--")[2..], &term, "{cookie}");
            let set = resp.header("set-cookie").unwrap();
            let value = set.split(';').next().unwrap();
            let fields: Vec<&str> = value.split('|').collect();
            assert_eq!(fields.len(), 3, "{set}");
            let decoded: Vec<u32> = fields[1..]
                .iter()
                .map(|f| b64_to_s30(f.as_bytes()).unwrap() << 2)
                .collect();
            // The last date is now (rounded up to 4 seconds); the first is kept when valid.
            assert!(decoded[0] >= now && decoded[0] <= now + 8, "{set}");
            if term[0] == b'V' {
                assert_eq!(fields[2], cookie.rsplit('|').next().unwrap());
            } else {
                assert!(decoded[1] >= now && decoded[1] <= now + 8, "{set}");
            }
        }
    }

    #[test]
    fn rewrite_and_prefix_edit_the_servers_cookie() {
        let b = backend("cookie JSESSIONID prefix");
        let mut head = request(Some("JSESSIONID=a~12345"));
        let mut p = on_request(&b, &mut head, &Overrides::default());
        assert_eq!(head.header("cookie"), Some("JSESSIONID=12345"));
        let mut resp = response(Some("JSESSIONID=777; Path=/"));
        on_response(&b, &b.servers[0], "GET", 200, &mut resp, &mut p);
        assert_eq!(resp.header("set-cookie"), Some("JSESSIONID=a~777; Path=/"));
        assert_eq!(&p.term("----"), b"--VR");
        let b = backend("cookie SRV rewrite");
        let mut p = on_request(&b, &mut request(None), &Overrides::default());
        let mut resp = response(Some("SRV=anything"));
        on_response(&b, &b.servers[1], "GET", 200, &mut resp, &mut p);
        assert_eq!(resp.header("set-cookie"), Some("SRV=b"));
    }
}
