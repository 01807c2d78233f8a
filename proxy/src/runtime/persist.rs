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
//! Not done: the dates of `maxidle` and `maxlife` (warned about at start).

use std::sync::Arc;

use super::http::Head;
use super::sample::{Context, Test, eval};
use super::state::{Backend, Server};
use crate::config::model::{CookieMode, CookiePersist};

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
        let named = backend.servers.iter().find(|s| s.name == rule.server);
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
            let delim = match self.conf.mode {
                CookieMode::Prefix => buf[val_beg..val_end]
                    .iter()
                    .position(|&b| b == b'~')
                    .map_or(val_end, |i| val_beg + i),
                _ => val_end,
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

    /// The server a persistence cookie's value `named` sends the request to, as HAProxy's
    /// scan of the servers: the first one with that cookie that may take it.
    fn choose(&mut self, named: &[u8]) {
        // HAProxy 2.6.12 leaves the state of the chosen one (its log shows it).
        if self.assigned {
            return;
        }
        // A `use-server` server, or `ignore-persist`: the cookie chooses nothing (HAProxy's
        // `TX_CK_UNUSED`, unless it named a server found down already).
        if self.over.ignore || self.over.server.is_some() {
            if self.state != b'D' {
                self.state = b'U';
            }
            return;
        }
        let mut server = None;
        if !named.is_empty() {
            for s in &self.backend.servers {
                if s.opts.cookie.as_deref().map(str::as_bytes) != Some(named) {
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
        if server.is_none() && self.state != b'D' {
            self.state = b'I';
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
    let found = server_cookies(c, server, resp, persist);
    let direct = persist
        .direct
        .as_ref()
        .is_some_and(|d| Arc::ptr_eq(d, server));
    let inserts = c.mode == CookieMode::Insert
        && !(found && c.preserve)
        && !direct
        && (!c.postonly || method == "POST");
    if !inserts {
        return;
    }
    resp.headers.push((
        "Set-Cookie".into(),
        set_cookie(c, server.opts.cookie.as_deref()),
    ));
    persist.set_server(b'I');
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
    server: &Server,
    resp: &mut Head,
    persist: &mut Persist,
) -> bool {
    let mut found = false;
    let ours = server.opts.cookie.as_deref();
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
        p.cookie = Some(crate::config::balance::parse_cookie(&words).unwrap().0);
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
