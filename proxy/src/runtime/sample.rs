//! Sample fetches and ACL matching against one connection or request, as HAProxy 2.6 does.
//!
//! A [`Context`] says what is known at the point of evaluation: addresses, proxies, the
//! request and response heads, the bytes a TCP client sent so far. [`fetch`] gives every value
//! of a [`Fetch`] there (`req.hdr(x)` has one per comma-separated value), [`fetch_last`] the
//! one a log-format `%[fetch]` shows, [`eval`] the outcome of a condition with HAProxy's
//! three-valued logic: a fetch on data that may still grow (a TLS ClientHello not complete
//! yet) makes the ACL [`Test::Miss`], and a rule waits for more data instead of deciding.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use super::http::Head;
use super::state::{Backend, Frontend, State};
use super::{convert, h1};

mod cert;
use crate::config::acl::{
    Acl, Condition, Expr, Fetch, HeaderFetch, HeaderValue, KeptFact, Method, Pattern, Source,
};

/// What is known where a rule runs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub state: &'a State,
    pub frontend: &'a Frontend,
    /// The backend once chosen (else `be_name` is the frontend's, as in HAProxy).
    pub backend: Option<&'a Backend>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub request: Option<&'a Head>,
    /// The request's head went to its server (or the request was answered) before the
    /// rule runs: HAProxy's start line is gone from its buffer then, and of the request
    /// only `txn->meth` is left, one of its known methods ([`known_method`]); every other
    /// request fetch finds nothing (`smp_prefetch_htx` with its `vol` set).
    pub request_sent: bool,
    pub response: Option<&'a Head>,
    /// What a TCP client sent so far (content inspection).
    pub payload: Option<&'a [u8]>,
    /// What a TCP server sent so far (`tcp-response content` inspection).
    pub response_payload: Option<&'a [u8]>,
    /// `response_payload` stands for HAProxy's internal (HTX) message of an HTTP response:
    /// only its size counts (`res.len`); the fetches reading its bytes find nothing there,
    /// for good (HAProxy's "meaningless for HTX buffers").
    pub response_internal: bool,
    /// More payload may still come: fetches on it may change.
    pub partial: bool,
    /// `bind ... ssl`: the client connection's TLS (`ssl_fc` ...); None in clear.
    pub tls: Option<&'a super::tls::ClientTls>,
    /// The connection's stick counters (only with stick tables).
    pub stick: Option<&'a super::stick::Counters>,
    /// The size of the request's body already received with its head, as HAProxy's HTX
    /// holds it (chunks' data, trailers, end of trailers: see
    /// [`super::chunked::Decoder::logged_size`]), which its `req.len` counts.
    pub request_body: u64,
    /// What is kept of the transaction for its log line (`capture.*`); None where hapx
    /// keeps nothing of it.
    pub kept: Option<&'a Kept<'a>>,
}

/// What HAProxy keeps of a transaction for its log line, which the `capture.*` fetches
/// read: the request line as it came (its `txn->uri`), the captured headers, the
/// messages' versions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kept<'a> {
    /// The request line as the client sent it; None for a request never parsed.
    pub line: Option<&'a str>,
    pub req_captures: &'a [Option<String>],
    pub resp_captures: &'a [Option<String>],
    /// Whether the request's and the response's version is 1.1 or later; None until
    /// their head was parsed.
    pub request_v11: Option<bool>,
    pub response_v11: Option<bool>,
}

impl<'a> Context<'a> {
    /// A context with the connection only.
    pub fn new(state: &'a State, frontend: &'a Frontend, src: SocketAddr, dst: SocketAddr) -> Self {
        Context {
            state,
            frontend,
            backend: None,
            src,
            dst,
            request: None,
            request_sent: false,
            response: None,
            payload: None,
            response_payload: None,
            response_internal: false,
            partial: false,
            tls: None,
            stick: None,
            request_body: 0,
            kept: None,
        }
    }
}

impl<'a> Context<'a> {
    /// The bytes the server sent so far, for the fetches reading them: none in HAProxy's
    /// internal message (see [`Context::response_internal`]).
    fn response_bytes(&self) -> Option<&'a [u8]> {
        self.response_payload.filter(|_| !self.response_internal)
    }
}

/// One fetched value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample<'a> {
    Bool(bool),
    Int(i64),
    Ip(IpAddr),
    Str(Cow<'a, str>),
    /// Bytes from a converter (`b64dec`, `bytes`).
    Bin(Vec<u8>),
}

impl Sample<'_> {
    /// The value as text (`%[fetch]` in a header value): [`text_of`]'s, owned.
    pub fn to_text(&self) -> String {
        text_of(self, &mut NumberText::default()).into_owned()
    }

    /// The value as an integer, as HAProxy casts a sample for an integer or boolean match
    /// (`12abc` is 12, an IPv4 address its number; no value for binary, IPv6, an empty
    /// string).
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Sample::Bool(b) => Some(i64::from(*b)),
            Sample::Int(n) => Some(*n),
            other => convert::to_int(other),
        }
    }

    /// The value kept beyond what it was read from (a variable's).
    pub fn into_owned(self) -> Sample<'static> {
        match self {
            Sample::Bool(b) => Sample::Bool(b),
            Sample::Int(n) => Sample::Int(n),
            Sample::Ip(ip) => Sample::Ip(ip),
            Sample::Str(s) => Sample::Str(Cow::Owned(s.into_owned())),
            Sample::Bin(b) => Sample::Bin(b),
        }
    }

    pub(crate) fn as_ip(&self) -> Option<IpAddr> {
        match self {
            Sample::Ip(ip) => Some(ip.to_canonical()),
            // HAProxy's string to address cast (`c_str2addr`).
            Sample::Str(s) => convert::str_to_ip(&crate::bytestr::to_bytes(s)),
            _ => None,
        }
    }
}

/// The values of a fetch; `may_change` when they depend on data still to come.
#[derive(Debug, Default)]
pub struct Fetched<'a> {
    pub values: Vec<Sample<'a>>,
    pub may_change: bool,
}

impl<'a> Fetched<'a> {
    fn one(s: Sample<'a>) -> Self {
        Fetched {
            values: vec![s],
            may_change: false,
        }
    }
    fn later() -> Self {
        Fetched {
            values: Vec::new(),
            may_change: true,
        }
    }
}

/// Every value of `fetch` in `ctx`, converters applied (a value a converter fails on is
/// dropped).
pub fn fetch<'a>(f: &Fetch, ctx: &Context<'a>) -> Fetched<'a> {
    fetch_values(f, ctx, false)
}

/// [`fetch`], or where `single`, as one value is fetched (see [`header_fetch`]).
fn fetch_values<'a>(f: &Fetch, ctx: &Context<'a>, single: bool) -> Fetched<'a> {
    // An HTTP fetch on a TCP stream whose request head has not come whole (see
    // `rules::stream_head`) may find it later, as HAProxy's `smp_prefetch_htx` waits (a
    // whole head that is not HTTP is final).
    if ctx.request.is_none() && ctx.partial && f.layer() == crate::config::acl::Layer::Request {
        let awaiting = ctx
            .payload
            .is_some_and(|d| super::http::find_head_end(d).is_none() && may_start_request(d));
        if awaiting {
            return Fetched::later();
        }
    }
    let mut out = raw_fetch(&f.source, ctx, single);
    if !f.converters.is_empty() {
        out.values = std::mem::take(&mut out.values)
            .into_iter()
            .filter_map(|v| convert::apply(v, &f.converters))
            .collect();
    }
    out
}

/// Whether `data` (a head not whole yet) may still become an HTTP request, as HAProxy's
/// HTTP/1 parser reads a raw buffer byte by byte and gives up at the first byte no request
/// could hold: a method of token characters ended by a space, a URI without control
/// characters, a version line, then header names of token characters (a line beginning
/// with a blank continues the one before). So a client speaking another protocol (a TLS
/// hello, an SSH banner) is not kept waiting for a head that will not come.
fn may_start_request(data: &[u8]) -> bool {
    use super::http::is_tchar;
    // Empty lines before a request are skipped.
    let start = data.iter().position(|&b| b != b'\r' && b != b'\n');
    let Some(start) = start else {
        return true;
    };
    let data = &data[start..];
    let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let line = &data[..line_end];
    let method_end = line
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(line.len());
    let rest = &line[method_end..];
    let Some((&after_method, rest)) = rest.split_first() else {
        return line_end == data.len();
    };
    if after_method != b' ' || method_end == 0 {
        return false;
    }
    let uri_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let control = |b: &u8| *b < b' ' || *b == 0x7f;
    if rest[..uri_end].iter().any(control) {
        return false;
    }
    let version = rest.get(uri_end + 1..).unwrap_or_default();
    let version = version.strip_suffix(b"\r").unwrap_or(version);
    if version.iter().any(control) {
        return false;
    }
    if line_end == data.len() {
        return true;
    }
    // The header lines so far (the last one perhaps partial).
    data[line_end + 1..]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && l != b"\r" && !matches!(l[0], b' ' | b'\t'))
        .all(|l| {
            let name_end = l.iter().position(|&b| !is_tchar(b)).unwrap_or(l.len());
            name_end > 0 && l.get(name_end).is_none_or(|&b| b == b':')
        })
}

/// A `capture.*` fetch on what is kept for the log, as HAProxy's `smp_fetch_capture_*`.
fn kept_fetch<'a>(kept: &Kept<'a>, fact: KeptFact) -> Fetched<'a> {
    let slot = |slots: &'a [Option<String>], n: i64| {
        let slot = usize::try_from(n).ok().and_then(|n| slots.get(n));
        slot.and_then(Option::as_deref)
    };
    let version = |v11: Option<bool>| v11.map(|v11| if v11 { "HTTP/1.1" } else { "HTTP/1.0" });
    let method = || kept.line.map(|line| line.split(' ').next().unwrap_or(line));
    // The path (and query) of the URI, the line's second word; none without a space
    // before it, nor for an absolute URI without a path.
    let uri = || {
        let (_, rest) = kept.line?.split_once(' ')?;
        http_get_path(rest.split(' ').next().unwrap_or(rest))
    };
    let value = match fact {
        KeptFact::RequestCapture(n) => slot(kept.req_captures, n),
        KeptFact::ResponseCapture(n) => slot(kept.resp_captures, n),
        KeptFact::RequestMethod => method(),
        KeptFact::RequestUri => uri(),
        KeptFact::RequestVersion => version(kept.request_v11),
        KeptFact::ResponseVersion => version(kept.response_v11),
    };
    value.map_or_else(Fetched::default, |v| {
        Fetched::one(Sample::Str(Cow::Borrowed(v)))
    })
}

/// The value `%[fetch]` shows: the last one (the last occurrence of a header).
pub fn fetch_last<'a>(f: &Fetch, ctx: &Context<'a>) -> Option<Sample<'a>> {
    fetch_values(f, ctx, true).values.pop()
}

/// The backend `name`, or unnamed (`nbsrv`) the current backend: once chosen, that one;
/// before, the proxy itself when it is a backend (a listen section).
fn rule_backend<'a>(ctx: &Context<'a>, name: &str) -> Option<&'a Backend> {
    if !name.is_empty() {
        return ctx.state.backend(name).map(|b| &**b);
    }
    ctx.backend.or_else(|| {
        let fe = ctx.frontend;
        (fe.conf.kind.is_backend())
            .then(|| ctx.state.backend(&fe.name).map(|b| &**b))
            .flatten()
    })
}

/// `nbsrv`: the backend's usable active servers, else its usable backups.
pub(super) fn nbsrv(b: &Backend) -> Sample<'static> {
    let active = b.active_count();
    let n = if active > 0 { active } else { b.backup_count() };
    Sample::Int(n as i64)
}

/// `env(NAME)`: the variable as the process sees it (`setenv`, `presetenv` ... applied).
pub(super) fn env(state: &State, name: &str) -> Option<Sample<'static>> {
    let environment = &state.config.global.environment;
    let value = if environment.is_untouched() {
        crate::env::var(name)
    } else {
        environment.get(name, &crate::env::var)
    };
    value.map(|v| Sample::Str(Cow::Owned(v)))
}

/// The key size in bits of a cipher suite rustls negotiates, by its OpenSSL name
/// (`SSL_CIPHER_get_bits`, both its values being the same for these).
fn cipher_key_bits(cipher: &str) -> Option<i64> {
    if cipher.contains("AES_128") || cipher.contains("AES128") {
        Some(128)
    } else if cipher.contains("AES_256") || cipher.contains("AES256") || cipher.contains("CHACHA20")
    {
        Some(256)
    } else {
        None
    }
}

fn raw_fetch<'a>(source: &Source, ctx: &Context<'a>, single: bool) -> Fetched<'a> {
    use Source::*;
    let req = ctx.request.filter(|_| !ctx.request_sent);
    let none = Fetched::default;
    let text = |s: &'a str| Fetched::one(Sample::Str(Cow::Borrowed(s)));
    match source {
        AlwaysTrue => Fetched::one(Sample::Bool(true)),
        AlwaysFalse => Fetched::one(Sample::Bool(false)),
        WaitEnd if ctx.partial => Fetched::later(),
        WaitEnd => Fetched::one(Sample::Bool(true)),
        Src => Fetched::one(Sample::Ip(ctx.src.ip().to_canonical())),
        SrcPort => Fetched::one(Sample::Int(i64::from(ctx.src.port()))),
        Dst => Fetched::one(Sample::Ip(ctx.dst.ip().to_canonical())),
        DstPort => Fetched::one(Sample::Int(i64::from(ctx.dst.port()))),
        FeName => text(&ctx.frontend.name),
        BeName => text(ctx.backend.map_or(&ctx.frontend.name, |b| &b.name)),
        // Unnamed: the current backend; before switching that is the proxy itself, which
        // has servers only when it is a listen section.
        Nbsrv(name) => rule_backend(ctx, name.as_deref().unwrap_or_default())
            .map_or_else(none, |b| Fetched::one(nbsrv(b))),
        SrvIsUp(b, s) | OwnSrvIsUp(b, s) => match rule_backend(ctx, b).and_then(|b| b.server(s)) {
            Some(server) => Fetched::one(Sample::Bool(server.usable())),
            None => none(),
        },
        Method if ctx.request_sent => (ctx.request)
            .map(|h| h.first[0].as_str())
            .filter(|m| known_method(m))
            .map_or_else(none, text),
        Method => req.map_or_else(none, |h| text(&h.first[0])),
        Url => req.map_or_else(none, |h| {
            // An HTTP/2 request's URI is absolute in HAProxy's form.
            let scheme = h.h2.and_then(super::h2::UriForm::scheme_prefix);
            match (scheme, h.header("host")) {
                (Some(scheme), Some(host)) => Fetched::one(Sample::Str(Cow::Owned(format!(
                    "{scheme}{host}{}",
                    h.first[1]
                )))),
                _ => text(&h.first[1]),
            }
        }),
        Path => req.map_or_else(none, |h| {
            http_get_path(&h.first[1]).map_or_else(none, |p| text(until_query(p)))
        }),
        Query => req.map_or_else(none, |h| match h.first[1].split_once('?') {
            Some((_, q)) => text(q),
            None => none(),
        }),
        // HAProxy's `smp_fetch_base`: without a Host value, the path alone.
        Base => req.map_or_else(none, |h| {
            let path = http_get_path(&h.first[1]).map(until_query);
            match h.header("host").filter(|host| !host.is_empty()) {
                Some(host) => Fetched::one(Sample::Str(Cow::Owned(format!(
                    "{host}{}",
                    path.unwrap_or_default()
                )))),
                None => path.map_or_else(none, text),
            }
        }),
        // HAProxy's `smp_fetch_rqver`: what follows the first `/`, if anything.
        ReqVer if req.is_some_and(|h| h.h2.is_some()) => text("2.0"),
        ReqVer => req.map_or_else(none, |h| match h.first[2].split_once('/') {
            Some((_, v)) if !v.is_empty() => text(v),
            _ => none(),
        }),
        Kept(fact) => ctx.kept.map_or_else(none, |kept| kept_fetch(kept, *fact)),
        ProtoHttp => match (req, ctx.payload) {
            (Some(_), _) => Fetched::one(Sample::Bool(true)),
            (None, Some(data)) => looks_like_http(data, ctx.partial),
            (None, None) => none(),
        },
        Header(header) => {
            let head = if header.response { ctx.response } else { req };
            head.map_or_else(none, |h| header_fetch(h, header, single))
        }
        ReqCook(name) => req.map_or_else(none, |h| cookie_values(h, name)),
        ResCook(name) => (ctx.response).map_or_else(none, |h| set_cookie_values(h, name)),
        UrlParam(name) => req.map_or_else(none, |h| url_params(&h.first[1], name)),
        Env(name) => env(ctx.state, name).map_or_else(none, Fetched::one),
        Status => ctx
            .response
            .map_or_else(none, |h| match h.first[1].parse::<i64>() {
                Ok(s) => Fetched::one(Sample::Int(s)),
                Err(_) => none(),
            }),
        ReqLen => match (ctx.payload, req) {
            (Some(data), _) => Fetched {
                values: vec![Sample::Int(data.len() as i64)],
                may_change: ctx.partial,
            },
            // An HTTP request (HAProxy's HTX stream) measures its internal form: its head's
            // and its body's received so far.
            (None, Some(head)) => {
                let size = head.logged_size() + ctx.request_body;
                Fetched::one(Sample::Int(size as i64))
            }
            (None, None) => none(),
        },
        SslSni | SslVer | SslHelloType => match ctx.payload {
            Some(data) => tls_fetch(source, data, ctx.partial),
            None => none(),
        },
        Payload(offset, length) => ctx
            .payload
            .map_or_else(none, |data| payload(data, *offset, *length, ctx.partial)),
        PayloadLv(offset, size, at) => ctx.payload.map_or_else(none, |data| {
            payload_lv(data, *offset, *size, *at, ctx.partial)
        }),
        ResLen => match ctx.response_payload {
            Some(data) => Fetched {
                values: vec![Sample::Int(data.len() as i64)],
                may_change: ctx.partial,
            },
            None => none(),
        },
        ResSslHelloType => match ctx.response_bytes() {
            Some(data) => tls_fetch(&SslHelloType, data, ctx.partial),
            None => none(),
        },
        ResPayload(offset, length) => ctx
            .response_bytes()
            .map_or_else(none, |data| payload(data, *offset, *length, ctx.partial)),
        ResPayloadLv(offset, size, at) => ctx.response_bytes().map_or_else(none, |data| {
            payload_lv(data, *offset, *size, *at, ctx.partial)
        }),
        RdpCookie(name) | RdpCookieCnt(name) => match ctx.payload {
            Some(data) => rdp_cookie(source, data, name.as_deref(), ctx.partial),
            None => none(),
        },
        SslFc => Fetched::one(Sample::Bool(ctx.tls.is_some())),
        SslFcSni => ctx
            .tls
            .and_then(|t| t.sni.as_deref())
            .map_or_else(none, text),
        SslFcProtocol => ctx.tls.map_or_else(none, |t| text(t.version)),
        SslFcCipher => ctx.tls.map_or_else(none, |t| text(t.cipher)),
        SslFcAlpn => ctx
            .tls
            .and_then(|t| t.alpn.as_deref())
            .map_or_else(none, text),
        SslCUsed => ctx
            .tls
            .map_or_else(none, |t| Fetched::one(Sample::Bool(t.client_cert))),
        // A certificate that did not verify ended the handshake: what is left verified.
        SslCVerify => ctx.tls.map_or_else(none, |_| Fetched::one(Sample::Int(0))),
        SslCVerifyError => ctx.tls.map_or_else(none, |_| Fetched::one(Sample::Int(0))),
        SslFcHasCrt => ctx.tls.map_or_else(none, |t| {
            Fetched::one(Sample::Bool(t.client_cert && !t.resumed))
        }),
        SslFcHasSni => ctx
            .tls
            .map_or_else(none, |t| Fetched::one(Sample::Bool(t.sni.is_some()))),
        SslFcIsResumed => ctx
            .tls
            .map_or_else(none, |t| Fetched::one(Sample::Bool(t.resumed))),
        SslFcKeysize => ctx
            .tls
            .and_then(|t| cipher_key_bits(t.cipher))
            .map_or_else(none, |bits| Fetched::one(Sample::Int(bits))),
        SslClientCert(crate::config::acl::CertField::ChainDer) => ctx
            .tls
            .filter(|t| !t.resumed)
            .map(|t| {
                let issuers = t.client_chain.get(1..).unwrap_or_default();
                issuers
                    .iter()
                    .flat_map(|c| c.iter().copied())
                    .collect::<Vec<u8>>()
            })
            .filter(|chain| !chain.is_empty())
            .map_or_else(none, |chain| Fetched::one(Sample::Bin(chain))),
        SslClientCert(field) => ctx
            .tls
            .and_then(|t| t.client_chain.first())
            .and_then(|der| cert::field(der, field))
            .map_or_else(none, Fetched::one),
        Stick(f) => super::stick::fetch(f, ctx).map_or_else(none, |n| Fetched::one(Sample::Int(n))),
        HttpAuth(list) => req
            .and_then(|h| super::auth::check(ctx.state.config.userlist(list), h))
            .map_or_else(none, |ok| Fetched::one(Sample::Bool(ok))),
        HttpAuthGroup(list) => req
            .and_then(|h| super::auth::user(ctx.state.config.userlist(list), h))
            .map_or_else(none, |user| Fetched::one(Sample::Str(Cow::Owned(user)))),
        HttpAuthType => req
            .and_then(super::auth::authorization)
            .map_or_else(none, |a| text(a.scheme())),
        HttpAuthUser | HttpAuthPass => {
            req.and_then(super::auth::credentials)
                .map_or_else(none, |(user, pass)| {
                    let value = if *source == HttpAuthUser { user } else { pass };
                    Fetched::one(Sample::Str(Cow::Owned(value)))
                })
        }
        // Variables and constants; the checked server's facts are a health check's only
        // (`runtime::check_format` renders them).
        Checked(fact) => checked(fact),
        HttpAuthBearer(header) => req
            .and_then(|h| super::auth::bearer(h, header.as_deref()))
            .map_or_else(none, text),
    }
}

/// One of the methods HAProxy 2.6 knows by number (`enum http_meth_t`, `find_http_meth`,
/// case-sensitive): only such a method stays known once the request's head is gone.
fn known_method(method: &str) -> bool {
    matches!(
        method,
        "OPTIONS" | "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "TRACE" | "CONNECT"
    )
}

/// HAProxy's `http_get_path`: the path of a request URI (from its first `/` on, query
/// included) past an absolute URI's scheme and authority; None for `*`, for an authority
/// alone (`host:443`) and for an absolute URI without a path.
fn http_get_path(uri: &str) -> Option<&str> {
    let bytes = uri.as_bytes();
    let mut at = 0;
    match bytes.first()? {
        b'*' => return None,
        b if b.is_ascii_alphabetic() => {
            at = 1 + bytes[1..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
                .count();
            if !bytes[at..].starts_with(b"://") {
                return None;
            }
            at += 3;
        }
        _ => {}
    }
    let slash = at + bytes[at..].iter().position(|&b| b == b'/')?;
    Some(&uri[slash..])
}

/// A path without its query string.
fn until_query(path: &str) -> &str {
    path.split('?').next().unwrap_or_default()
}

/// A variable (`var(NAME[,DEFAULT])`, the default as text) or a constant (`int`, `str`,
/// `bool`) in traffic.
fn checked<'a>(fact: &crate::config::acl::CheckedFact) -> Fetched<'a> {
    use crate::config::acl::CheckedFact;
    let value = match fact {
        CheckedFact::Var(var) => {
            let (name, default) = &**var;
            super::vars::fetch(name, default.as_deref())
        }
        CheckedFact::Int(n) => Some(Sample::Int(*n)),
        CheckedFact::Str(s) => Some(Sample::Str(Cow::Owned(s.to_string()))),
        CheckedFact::Bool(b) => Some(Sample::Bool(*b)),
        CheckedFact::ServerName | CheckedFact::ServerId | CheckedFact::BackendId => None,
    };
    value.map_or_else(Fetched::default, Fetched::one)
}

/// The path of a request URI: without the query, and without scheme and authority when
/// absolute.
pub fn path_of(uri: &str) -> &str {
    let uri = uri.split('?').next().unwrap_or_default();
    match uri.find("://") {
        Some(at) if !uri[..at].contains('/') => {
            let rest = &uri[at + 3..];
            rest.find('/').map_or("", |p| &rest[p..])
        }
        _ => uri,
    }
}

/// A header fetch on head `h`; `single` where one value is wanted (a log format, a
/// variable), which without an occurrence is the last, as HAProxy's `smp_fetch_hdr` takes
/// it: a `req.hdr_ip` whose last value is no address has no value then, while an ACL
/// goes through every value.
pub(super) fn header_fetch<'a>(h: &'a Head, header: &HeaderFetch, single: bool) -> Fetched<'a> {
    let name = match (&header.name, header.value) {
        (Some(name), _) => name.as_str(),
        // Without an argument only the counts look (at every header).
        (None, HeaderValue::Count) => "",
        (None, _) => return Fetched::default(),
    };
    let split = !header.full;
    if header.value == HeaderValue::Count {
        let count = header_elements(h, name, split).count();
        return Fetched::one(Sample::Int(count as i64));
    }
    let occurrence = match header.occurrence {
        0 if single => -1,
        n => n,
    };
    let mut fetched = header_values(h, name, occurrence, split);
    match header.value {
        HeaderValue::Int => {
            for value in &mut fetched.values {
                if let Sample::Str(text) = value {
                    *value = Sample::Int(strl2ic(&crate::bytestr::to_bytes(text)));
                }
            }
        }
        HeaderValue::Ip => fetched.values.retain_mut(|value| match value {
            Sample::Str(text) => match header_ip(text) {
                Some(ip) => {
                    *value = Sample::Ip(ip);
                    true
                }
                None => false,
            },
            _ => true,
        }),
        HeaderValue::Text | HeaderValue::Count => {}
    }
    fetched
}

/// HAProxy's `strl2ic`, quirks kept: a leading `-` negates, and the reading stops at the
/// first byte above `9` only, so a byte below `0` (`.`, a space, a byte of 0x80 and up as a
/// signed char) is a negative digit (`1.2` is 82); 32-bit arithmetic.
fn strl2ic(bytes: &[u8]) -> i64 {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let mut n: i32 = 0;
    for &b in digits {
        let digit = i32::from(b as i8) - i32::from(b'0');
        if digit > 9 {
            break;
        }
        n = match negative {
            true => n.wrapping_mul(10).wrapping_sub(digit),
            false => n.wrapping_mul(10).wrapping_add(digit),
        };
    }
    i64::from(n)
}

/// A header value as HAProxy's `smp_fetch_hdr_ip` reads an address: an IPv4 one as
/// `url2ipv4` (from the start, up to the first byte that is neither a digit nor a dot:
/// `1.2.3.4:80` is 1.2.3.4), else the whole value as an IPv6 one.
fn header_ip(text: &str) -> Option<IpAddr> {
    url2ipv4(text.as_bytes())
        .map(IpAddr::V4)
        .or_else(|| text.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
}

/// HAProxy's `url2ipv4`: four octets of at most 255 separated by single dots, leading zeros
/// allowed, read until a byte that is neither a digit nor a dot.
fn url2ipv4(bytes: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut count, mut in_octet) = (0, false);
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                if !in_octet {
                    count += 1;
                    if count > 4 {
                        return None;
                    }
                    in_octet = true;
                }
                let octet = &mut octets[count - 1];
                *octet = u8::try_from(u32::from(*octet) * 10 + u32::from(b - b'0')).ok()?;
            }
            b'.' if in_octet && count < 4 => in_octet = false,
            b'.' => return None,
            _ => break,
        }
    }
    (count == 4).then(|| std::net::Ipv4Addr::from(octets))
}

/// The elements of the headers named `name` (every header for an empty name, as HAProxy's
/// `http_find_header`): their values split at commas, or whole.
fn header_elements<'a>(h: &'a Head, name: &str, split: bool) -> impl Iterator<Item = &'a str> {
    h.headers
        .iter()
        .filter(move |(n, _)| name.is_empty() || n.eq_ignore_ascii_case(name))
        .flat_map(move |(_, v)| {
            // HAProxy's http_find_header: a comma inside a quoted string does not split,
            // and only blanks are trimmed (a form feed or a no-break space stays).
            let (elements, whole) = match split {
                true => (Some(h1::list_elements(v)), None),
                false => (None, Some(v.as_str())),
            };
            let elements = elements.into_iter().flatten();
            elements
                .map(|p| p.trim_end_matches([' ', '\t']))
                .chain(whole)
        })
}

/// Values of header `name` (every header's if empty): split at commas (`req.hdr`) or whole
/// lines (`req.fhdr`); `occ` 0 for all, N for the Nth, -N for the Nth from the end.
fn header_values<'a>(h: &'a Head, name: &str, occ: i32, split: bool) -> Fetched<'a> {
    let all: Vec<&str> = header_elements(h, name, split).collect();
    let pick = match occ {
        0 => all,
        n if n > 0 => all.get(n as usize - 1).copied().into_iter().collect(),
        n => all
            .len()
            .checked_sub(n.unsigned_abs() as usize)
            .and_then(|i| all.get(i).copied())
            .into_iter()
            .collect(),
    };
    Fetched {
        values: pick
            .into_iter()
            .map(|s| Sample::Str(Cow::Borrowed(s)))
            .collect(),
        may_change: false,
    }
}

/// The values of cookie `name` in the request's Cookie headers.
fn cookie_values<'a>(h: &'a Head, name: &str) -> Fetched<'a> {
    let values = h
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| Sample::Str(Cow::Borrowed(v)))
        .collect();
    Fetched {
        values,
        may_change: false,
    }
}

/// The values of the cookie `name` a response sets, as HAProxy 2.6's `smp_fetch_cookie`
/// reads `Set-Cookie` lines (measured): each value, split at the commas outside quotes,
/// sets the first `NAME=VALUE` of each part (the rest are its attributes); an empty value
/// is none.
fn set_cookie_values<'a>(h: &'a Head, name: &str) -> Fetched<'a> {
    let values = (h.headers.iter())
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .flat_map(|(_, v)| split_unquoted_commas(v))
        .filter_map(|part| part.split(';').next()?.split_once('='))
        .filter(|(n, v)| n.trim() == name && !v.trim().is_empty())
        .map(|(_, v)| Sample::Str(Cow::Borrowed(v.trim())))
        .collect();
    Fetched {
        values,
        may_change: false,
    }
}

/// `v` split at its commas outside double quotes.
fn split_unquoted_commas(v: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    v.split(move |c| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ',' && !quoted
    })
}

/// The values of query-string parameter `name` (`a=1&b=2`).
fn url_params<'a>(uri: &'a str, name: &str) -> Fetched<'a> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    let values = query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .filter(|(n, _)| !n.is_empty() && *n == name)
        .map(|(_, v)| Sample::Str(Cow::Borrowed(v)))
        .collect();
    Fetched {
        values,
        may_change: false,
    }
}

/// `req.proto_http` of a TCP payload whose request head did not parse (see
/// `rules::stream_head`): false once its request line or its whole head is refused, else
/// undecided while more may come.
fn looks_like_http<'a>(data: &[u8], partial: bool) -> Fetched<'a> {
    let line_whole = data.contains(&b'\n');
    let refused = (line_whole && super::rules::stream_request_line(data).is_none())
        || super::http::find_head_end(data).is_some();
    if partial && !refused {
        Fetched::later()
    } else {
        Fetched::one(Sample::Bool(false))
    }
}

/// HAProxy's `tune.bufsize`: `req.payload` never matches past it.
const BUFSIZE: u32 = super::BUFSIZE as u32;

/// `req.payload(offset,length)` in `data`, as HAProxy's `smp_fetch_payload` (its unsigned
/// arithmetic included): `length` 0 takes all from `offset`, a value that may still grow.
fn payload<'a>(data: &[u8], offset: u32, length: u32, partial: bool) -> Fetched<'a> {
    let end = offset.wrapping_add(length);
    if length > BUFSIZE || end > BUFSIZE {
        return Fetched::default();
    }
    if end as usize > data.len() {
        return if partial {
            Fetched::later()
        } else {
            Fetched::default()
        };
    }
    let end = if length == 0 {
        data.len()
    } else {
        end as usize
    };
    // (A wrapped `end` below `offset`: HAProxy reads out of its buffer; nothing here.)
    let Some(bytes) = data.get(offset as usize..end) else {
        return Fetched::default();
    };
    Fetched {
        values: vec![Sample::Bin(bytes.to_vec())],
        may_change: length == 0 && partial,
    }
}

/// `req.payload_lv(offset,size[,at])` in `data`, as HAProxy's `smp_fetch_payload_lv`: the
/// `size` bytes at `offset` are a big-endian length (kept to 32 bits), the bytes taken that
/// many from `at`; a length of 0 or past the buffer never matches, data not there yet may.
fn payload_lv<'a>(
    data: &[u8],
    offset: u32,
    size: u32,
    at: crate::config::acl::LvData,
    partial: bool,
) -> Fetched<'a> {
    let too_short = || {
        if partial {
            Fetched::later()
        } else {
            Fetched::default()
        }
    };
    let field_end = offset.wrapping_add(size);
    if field_end as usize > data.len() {
        return too_short();
    }
    // (A wrapped field end: HAProxy reads out of its buffer; nothing here.)
    let Some(field) = data.get(offset as usize..field_end as usize) else {
        return Fetched::default();
    };
    let length = field
        .iter()
        .fold(0u32, |n, &b| (n << 8).wrapping_add(u32::from(b)));
    let start = at.offset(offset, size);
    let end = start.wrapping_add(length);
    if length == 0 || length > BUFSIZE || end > BUFSIZE {
        return Fetched::default();
    }
    if end as usize > data.len() {
        return too_short();
    }
    match data.get(start as usize..end as usize) {
        Some(bytes) => Fetched::one(Sample::Bin(bytes.to_vec())),
        None => Fetched::default(),
    }
}

/// `req.rdp_cookie([name])` (its value) and `req.rdp_cookie_cnt([name])` (1 when there is
/// one, 0 when there is none), nothing while the request is incomplete.
fn rdp_cookie<'a>(
    source: &Source,
    data: &'a [u8],
    name: Option<&str>,
    partial: bool,
) -> Fetched<'a> {
    use super::rdp::Cookie;
    let found = match super::rdp::cookie(data, name.map(str::as_bytes)) {
        Cookie::Incomplete if partial => return Fetched::later(),
        Cookie::Incomplete => return Fetched::default(),
        Cookie::Absent => None,
        Cookie::Found(range) => Some(range),
    };
    match (source, found) {
        (Source::RdpCookieCnt(_), found) => Fetched::one(Sample::Int(i64::from(found.is_some()))),
        (_, Some(range)) => Fetched::one(Sample::Str(crate::bytestr::from_bytes(&data[range]))),
        (_, None) => Fetched::default(),
    }
}

/// `req.ssl_sni`, `req.ssl_ver`, `req.ssl_hello_type` from a TLS ClientHello.
fn tls_fetch<'a>(source: &Source, data: &[u8], partial: bool) -> Fetched<'a> {
    let later = || {
        if partial {
            Fetched::later()
        } else {
            Fetched::default()
        }
    };
    if matches!(source, Source::SslHelloType) {
        return match hello_type(data) {
            Ok(Some(t)) => Fetched::one(Sample::Int(t)),
            Ok(None) => Fetched::default(),
            Err(Incomplete) => later(),
        };
    }
    if matches!(source, Source::SslVer) {
        return match hello_version(data) {
            Ok(Some(version)) => Fetched::one(Sample::Int(version)),
            Ok(None) => Fetched::default(),
            Err(Incomplete) => later(),
        };
    }
    if data.is_empty() {
        return later();
    }
    // A TLS handshake record: type 22, version 3.x.
    if data[0] != 0x16 || data.get(1).is_some_and(|&v| v != 3) {
        return Fetched::default();
    }
    if data.len() < 6 {
        return later();
    }
    match client_hello_sni(data) {
        Ok(Some(name)) => Fetched::one(Sample::Str(Cow::Owned(name))),
        Ok(None) => Fetched::default(),
        Err(Incomplete) => later(),
    }
}

/// The handshake type of `data`'s first message, as HAProxy's `smp_fetch_ssl_hello_type`
/// reads it: a record of any SSLv3 type (20 to 23, or 255), version 3.0 at least, long
/// enough for a message header; the type only once the whole first message is in.
/// `Ok(None)`: not such a record; `Err`: more may make it one.
fn hello_type(data: &[u8]) -> Result<Option<i64>, Incomplete> {
    let Some(&kind) = data.first() else {
        return Err(Incomplete);
    };
    if !matches!(kind, 0x14..=0x17 | 0xff) {
        return Ok(None);
    }
    let [_, major, minor, len_hi, len_lo, message, l1, l2, l3, ..] = *data else {
        return Err(Incomplete);
    };
    let version = (u32::from(major) << 16) + u32::from(minor);
    if version < 0x03_0000 || u16::from_be_bytes([len_hi, len_lo]) < 4 {
        return Ok(None);
    }
    let message_len = u32::from_be_bytes([0, l1, l2, l3]) as usize;
    if data.len() < 9 + message_len {
        return Err(Incomplete);
    }
    Ok(Some(i64::from(message)))
}

/// The protocol version a client asks for, as HAProxy's `smp_fetch_req_ssl_ver` reads it
/// (major << 16 | minor): from an SSLv3-format record (types 20 to 23, or 255, version 3.0
/// at least, 6 to 18432 bytes long) the ClientHello's own version, not the record layer's
/// (TLS 1.2 and 1.3 clients say 3.1 there, 3.3 in the hello); from an SSLv2 hello its
/// version. Only once the whole record is in (up to what a buffer takes).
/// `Ok(None)`: not SSL; `Err`: more may make it one.
fn hello_version(data: &[u8]) -> Result<Option<i64>, Incomplete> {
    let Some(&first) = data.first() else {
        return Err(Incomplete);
    };
    let version = |major: u8, minor: u8| (i64::from(major) << 16) + i64::from(minor);
    let (hello_version, message_len, header_len) = if matches!(first, 0x14..=0x17 | 0xff) {
        let [
            _,
            major,
            minor,
            len_hi,
            len_lo,
            _,
            _,
            _,
            _,
            hello_major,
            hello_minor,
            ..,
        ] = *data
        else {
            return Err(Incomplete);
        };
        let record_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if version(major, minor) < 0x03_0000 || !(6..=(1 << 14) + 2048).contains(&record_len) {
            return Ok(None);
        }
        (version(hello_major, hello_minor), record_len, 5)
    } else {
        match sslv2_hello(data)? {
            Some(hello) => hello,
            None => return Ok(None),
        }
    };
    // HAProxy waits for the whole message, but no longer than its buffer can hold.
    let wanted = message_len.min(super::INSPECT_LIMIT);
    if data.len() - header_len < wanted {
        return Err(Incomplete);
    }
    Ok(Some(hello_version))
}

/// An SSLv2 CLIENT-HELLO's version, the length of what follows its fixed part and where
/// that starts (HAProxy's reading, after the 2.0 specification); `Ok(None)` when it is not
/// one.
fn sslv2_hello(data: &[u8]) -> Result<Option<(i64, usize, usize)>, Incomplete> {
    // A short header (high bit set): 15 bits of length; else 14 bits and a padding length.
    let (record_len, padding, header_len) = if data[0] & 0x80 != 0 {
        let [first, second, _, ..] = *data else {
            return Err(Incomplete);
        };
        (usize::from(first & 0x7f) << 8 | usize::from(second), 0, 2)
    } else {
        let [first, second, padding, _, ..] = *data else {
            return Err(Incomplete);
        };
        let len = usize::from(first & 0x3f) << 8 | usize::from(second);
        (len, usize::from(padding), 3)
    };
    if data[header_len] != 0x01 {
        return Ok(None);
    }
    let fixed = &data[header_len + 1..];
    let [major, minor, c1, c2, s1, s2, h1, h2, ..] = *fixed else {
        return Err(Incomplete);
    };
    let be16 = |hi: u8, lo: u8| usize::from(u16::from_be_bytes([hi, lo]));
    let (ciphers, session_id, challenge) = (be16(c1, c2), be16(s1, s2), be16(h1, h2));
    let well_formed = ciphers % 3 == 0
        && matches!(session_id, 0 | 16)
        && (16..=32).contains(&challenge)
        && record_len == 9 + ciphers + session_id + challenge;
    if !well_formed {
        return Ok(None);
    }
    let version = (i64::from(major) << 16) + i64::from(minor);
    let rest = ciphers + session_id + challenge + padding;
    Ok(Some((version, rest, header_len + 1 + 8)))
}

struct Incomplete;

/// The server name of a ClientHello record; `Err` while it is incomplete.
fn client_hello_sni(data: &[u8]) -> Result<Option<String>, Incomplete> {
    let get = |at: usize, n: usize| data.get(at..at + n).ok_or(Incomplete);
    let be16 = |at: usize| get(at, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let record_len = be16(3)?;
    if get(5, 1)?[0] != 1 {
        return Ok(None);
    }
    let end = 5 + record_len;
    // Handshake header (4), client version (2), random (32), then the session id.
    let mut at = 5 + 4 + 2 + 32;
    at += 1 + usize::from(get(at, 1)?[0]);
    at += 2 + be16(at)?;
    at += 1 + usize::from(get(at, 1)?[0]);
    if at >= end {
        return Ok(None);
    }
    let ext_end = (at + 2 + be16(at)?).min(end);
    at += 2;
    while at + 4 <= ext_end {
        let (kind, len) = (be16(at)?, be16(at + 2)?);
        at += 4;
        if kind == 0 {
            // server_name: list length, then entries (type 0 = host name).
            let mut p = at + 2;
            while p + 3 <= at + len {
                let (t, n) = (get(p, 1)?[0], be16(p + 1)?);
                if t == 0 {
                    let name = get(p + 3, n)?;
                    return Ok(Some(crate::bytestr::from_bytes(name).into_owned()));
                }
                p += 3 + n;
            }
            return Ok(None);
        }
        at += len;
    }
    if ext_end > data.len() {
        return Err(Incomplete);
    }
    Ok(None)
}

/// An ACL's outcome, with HAProxy's values so that AND is `&` and OR is `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    Fail = 0,
    /// Not decidable yet: data may still come.
    Miss = 1,
    Pass = 3,
}

impl Test {
    fn from_bits(b: u8) -> Test {
        match b {
            0 => Test::Fail,
            3 => Test::Pass,
            _ => Test::Miss,
        }
    }
    fn and(self, o: Test) -> Test {
        Test::from_bits(self as u8 & o as u8)
    }
    fn or(self, o: Test) -> Test {
        Test::from_bits(self as u8 | o as u8)
    }
    pub fn negate(self) -> Test {
        match self {
            Test::Pass => Test::Fail,
            Test::Fail => Test::Pass,
            Test::Miss => Test::Miss,
        }
    }
}

/// A condition's outcome (`unless` inverted); no condition passes.
pub fn eval(cond: Option<&Condition>, acls: &[Acl], ctx: &Context<'_>) -> Test {
    let Some(cond) = cond else {
        return Test::Pass;
    };
    let mut result = Test::Fail;
    for suite in &cond.suites {
        let mut suite_result = Test::Pass;
        for term in suite {
            let mut r = match acls.get(term.acl) {
                Some(acl) => acl_test(acl, ctx),
                None => Test::Fail,
            };
            if term.negate {
                r = r.negate();
            }
            suite_result = suite_result.and(r);
            if suite_result == Test::Fail {
                break;
            }
        }
        result = result.or(suite_result);
        if result == Test::Pass {
            break;
        }
    }
    if cond.unless { result.negate() } else { result }
}

/// An ACL: any of its expressions.
fn acl_test(acl: &Acl, ctx: &Context<'_>) -> Test {
    let mut result = Test::Fail;
    for e in &acl.exprs {
        result = result.or(expr_test(e, ctx));
        if result == Test::Pass {
            break;
        }
    }
    result
}

fn expr_test(e: &Expr, ctx: &Context<'_>) -> Test {
    let fetched = fetch(&e.fetch, ctx);
    if e.method == Method::Found {
        return match (fetched.values.is_empty(), fetched.may_change) {
            (false, _) => Test::Pass,
            (true, true) => Test::Miss,
            (true, false) => Test::Fail,
        };
    }
    if let (Method::Auth, Source::HttpAuthGroup(list)) = (e.method, &e.fetch.source) {
        let list = ctx.state.config.userlist(list);
        let groups = || {
            e.patterns.iter().filter_map(|p| match p {
                Pattern::Str(g) => Some(g.as_str()),
                _ => None,
            })
        };
        let any = (fetched.values.iter())
            .any(|user| super::auth::in_groups(list, &user.to_text(), groups()));
        return if any { Test::Pass } else { Test::Fail };
    }
    if fetched.values.iter().any(|v| matches(e, v)) {
        return Test::Pass;
    }
    if fetched.may_change {
        Test::Miss
    } else {
        Test::Fail
    }
}

/// Whether one value matches any of the expression's patterns, its own or its files'.
fn matches(e: &Expr, v: &Sample<'_>) -> bool {
    crate::runtime::map::acl_matches(e, v, own_patterns_match)
}

/// Whether one value matches any of the patterns the expression compiled itself.
fn own_patterns_match(e: &Expr, v: &Sample<'_>) -> bool {
    match e.method {
        Method::Found => true,
        Method::Bool => v.as_int().is_some_and(|n| n != 0),
        Method::Int => v.as_int().is_some_and(|n| in_ranges(&e.patterns, n)),
        // In bytes, as HAProxy counts (see `bytestr`).
        Method::Len => {
            let mut number = NumberText::default();
            let len = crate::bytestr::byte_len(&text_of(v, &mut number));
            in_ranges(&e.patterns, len as i64)
        }
        Method::Bin => {
            let bytes = convert::to_binary(v.clone());
            (e.patterns.iter()).any(|p| matches!(p, Pattern::Bin(b) if *b == bytes))
        }
        // HAProxy's `pat_match_ip`: in the address's family, else in the other one.
        Method::Ip => v.as_ip().is_some_and(|ip| {
            let other = crate::runtime::map::other_family(ip);
            e.patterns.iter().any(|p| match p {
                Pattern::Ip(net) => net.contains(ip) || other.is_some_and(|o| net.contains(o)),
                _ => false,
            })
        }),
        _ => {
            let mut number = NumberText::default();
            let text = text_of(v, &mut number);
            // `-i` folds ASCII letters only, as HAProxy's strncasecmp; the patterns were
            // lower-cased when compiled, regexes compiled without case.
            let mut folded = Folded::default();
            let compared = match e.ignore_case && e.method != Method::Reg {
                true => folded.of(&text),
                false => &text,
            };
            e.patterns.iter().any(|p| match p {
                Pattern::Reg(re) => re.is_match_text(&text),
                Pattern::Str(pat) => str_match(e.method, compared, pat),
                _ => false,
            })
        }
    }
}

/// Sample `v` as text for a string match, without allocating for what is text already
/// (binary up to its first NUL byte, as HAProxy casts it) or a number or address (written
/// in `number`).
fn text_of<'a>(v: &'a Sample<'_>, number: &'a mut NumberText) -> Cow<'a, str> {
    match v {
        Sample::Str(s) => Cow::Borrowed(s),
        // As HAProxy casts binary to text: up to the first NUL byte.
        Sample::Bin(b) => {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            crate::bytestr::from_bytes(&b[..end])
        }
        Sample::Bool(b) => Cow::Borrowed(number.write(u8::from(*b))),
        Sample::Int(n) => Cow::Borrowed(number.write(n)),
        Sample::Ip(ip) => Cow::Borrowed(number.write(ip)),
    }
}

/// A number or an address written as text on the stack (an IPv6 address is at most 45
/// characters, an integer 20).
struct NumberText([u8; 48]);

impl Default for NumberText {
    fn default() -> Self {
        NumberText([0; 48])
    }
}

impl NumberText {
    fn write(&mut self, value: impl std::fmt::Display) -> &str {
        use std::io::Write;
        let mut out = &mut self.0[..];
        // Only a bug (a longer number or address) makes this fail: it would be cut.
        let _ = write!(out, "{value}");
        let len = 48 - out.len();
        // ASCII digits, dots and colons only.
        std::str::from_utf8(&self.0[..len]).unwrap_or_default()
    }
}

/// A sample's text with ASCII letters lower-cased for a `-i` match: borrowed when it has
/// no capital, on the stack when short (as most are), allocated only beyond.
#[derive(Default)]
struct Folded {
    short: Option<[u8; 256]>,
    long: String,
}

impl Folded {
    fn of<'a>(&'a mut self, text: &'a str) -> &'a str {
        if !text.bytes().any(|c| c.is_ascii_uppercase()) {
            return text;
        }
        if text.len() > 256 {
            self.long = text.to_ascii_lowercase();
            return &self.long;
        }
        let short = self.short.insert([0; 256]);
        let out = &mut short[..text.len()];
        out.copy_from_slice(text.as_bytes());
        out.make_ascii_lowercase();
        // Folding ASCII letters keeps UTF-8 valid: only a bug fails here.
        std::str::from_utf8(out).unwrap_or_default()
    }
}

fn in_ranges(patterns: &[Pattern], n: i64) -> bool {
    patterns
        .iter()
        .any(|p| matches!(p, Pattern::Int(low, high) if (*low..=*high).contains(&n)))
}

fn str_match(method: Method, text: &str, pat: &str) -> bool {
    match method {
        Method::Beg => text.starts_with(pat),
        Method::End => text.ends_with(pat),
        Method::Sub => text.contains(pat),
        Method::Dir => crate::runtime::map::match_word(text.as_bytes(), pat.as_bytes(), b"/?"),
        Method::Dom => crate::runtime::map::match_word(text.as_bytes(), pat.as_bytes(), b"/?.:"),
        _ => text == pat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_facts_read_the_request_line_as_it_came_and_the_slots() {
        let slots = [Some("one".to_string()), None];
        let kept = |line| Kept {
            line,
            req_captures: &slots,
            request_v11: Some(false),
            ..Kept::default()
        };
        fn value<'a>(kept: &Kept<'a>, fact: KeptFact) -> Option<Sample<'a>> {
            kept_fetch(kept, fact).values.pop()
        }
        let text = |s: &'static str| Some(Sample::Str(Cow::Borrowed(s)));
        let origin = kept(Some("GET /a?b HTTP/1.0"));
        assert_eq!(value(&origin, KeptFact::RequestMethod), text("GET"));
        assert_eq!(value(&origin, KeptFact::RequestUri), text("/a?b"));
        assert_eq!(value(&origin, KeptFact::RequestVersion), text("HTTP/1.0"));
        assert_eq!(value(&origin, KeptFact::ResponseVersion), None);
        assert_eq!(value(&origin, KeptFact::RequestCapture(0)), text("one"));
        for empty in [1, 2, -1] {
            assert_eq!(value(&origin, KeptFact::RequestCapture(empty)), None);
        }
        let absolute = kept(Some("GET http://h.example/p HTTP/1.1"));
        assert_eq!(value(&absolute, KeptFact::RequestUri), text("/p"));
        let no_path = kept(Some("GET http://h.example HTTP/1.1"));
        assert_eq!(value(&no_path, KeptFact::RequestUri), None);
        let unparsed = kept(None);
        assert_eq!(value(&unparsed, KeptFact::RequestMethod), None);
        assert_eq!(value(&unparsed, KeptFact::RequestUri), None);
    }

    #[test]
    fn folding_borrows_text_without_capitals_and_keeps_short_ones_on_the_stack() {
        let mut folded = Folded::default();
        let plain = "www.example.org";
        assert!(std::ptr::eq(folded.of(plain), plain));
        assert_eq!(folded.of("WWW.Example.ORG/É"), "www.example.org/É");
        assert!(folded.long.is_empty(), "a short text needs no allocation");
        let long = "A".repeat(300);
        assert_eq!(folded.of(&long), "a".repeat(300));
        let mut number = NumberText::default();
        assert_eq!(text_of(&Sample::Int(-42), &mut number), "-42");
        let ip = Sample::Ip("2001:db8::1".parse().unwrap());
        assert!(matches!(
            text_of(&ip, &mut number),
            Cow::Borrowed("2001:db8::1")
        ));
        let bin = Sample::Bin(b"abc\0def".to_vec());
        assert!(matches!(text_of(&bin, &mut number), Cow::Borrowed("abc")));
    }

    #[test]
    fn heads_not_whole_yet_may_become_requests_until_a_byte_says_otherwise() {
        let waiting: [&[u8]; 8] = [
            b"",
            b"\r\n",
            b"GE",
            b"GET /x",
            b"GET /x HTTP/1.",
            b"GET /x HTTP/1.1\r\nhost: a",
            b"GET /x HTTP/1.1\r\nhost: a\r\n folded\r\nx-y",
            b"hello world",
        ];
        for data in waiting {
            assert!(may_start_request(data), "{data:?}");
        }
        let given_up: [&[u8]; 7] = [
            b"\x00\x01",
            b"\x16\x03\x01\x02\x00",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b" GET / HTTP/1.1",
            b"GET /\x01 HTTP/1.1",
            b"GET / HTTP/1.1\r\nbad header",
            b"GET\n",
        ];
        for data in given_up {
            assert!(!may_start_request(data), "{data:?}");
        }
    }

    /// A ClientHello for `name` (the test harness has the same builder, out of reach of
    /// unit tests: hapx-tests depends on this crate).
    fn client_hello(name: &str) -> Vec<u8> {
        let mut sni = vec![0, 0];
        let list_len = (3 + name.len()) as u16;
        let ext_len = 2 + list_len;
        sni.extend_from_slice(&ext_len.to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name.as_bytes());
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        body.extend_from_slice(&sni);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn payload_lv_reads_the_length_then_the_data_as_haproxy() {
        use crate::config::acl::LvData::{Encoded, Follows};
        let bin = |b: &[u8]| vec![Sample::Bin(b.to_vec())];
        let data: &[u8] = b"\x00\x03abcdefgh";
        assert_eq!(payload_lv(data, 0, 2, Follows, false).values, bin(b"abc"));
        // `+1`: relative to the field's end; `10` (unsigned): HAProxy's halved 5.
        assert_eq!(
            payload_lv(data, 0, 2, Encoded(3), false).values,
            bin(b"bcd")
        );
        assert_eq!(
            payload_lv(data, 0, 2, Encoded(10), false).values,
            bin(b"def")
        );
        // A length 0 never matches; data still to come may.
        let zero = payload_lv(b"\x00\x00ab", 0, 2, Follows, true);
        assert!(zero.values.is_empty() && !zero.may_change);
        let short = payload_lv(b"\x00\x09ab", 0, 2, Follows, true);
        assert!(short.values.is_empty() && short.may_change);
        assert!(!payload_lv(b"\x00", 0, 2, Follows, false).may_change);
    }

    #[test]
    fn payload_and_rdp_cookie_fetches_are_haproxys() {
        let data: &[u8] = b"\x03\x00\x00\x22\x1d\xe0\0\0\0\0\0Cookie: mstshash=bob\r\n";
        let bin = |b: &[u8]| vec![Sample::Bin(b.to_vec())];
        assert_eq!(payload(data, 0, 2, false).values, bin(&[3, 0]));
        // Past what came: later while more may come, else nothing.
        let short = payload(data, 30, 10, true);
        assert!(short.values.is_empty() && short.may_change);
        assert!(!payload(data, 30, 10, false).may_change);
        // Length 0: all from the offset, which may still grow.
        let rest = payload(data, 11, 0, true);
        assert_eq!((rest.values, rest.may_change), (bin(&data[11..]), true));
        assert_eq!(payload(&[], 0, 0, false).values, bin(&[]));
        // Past the buffer's size: never.
        let never = payload(data, 0, BUFSIZE + 1, true);
        assert!(never.values.is_empty() && !never.may_change);
        // A negative offset wraps (HAProxy then reads out of its buffer): nothing.
        assert!(payload(data, u32::MAX, 2, false).values.is_empty());

        fn count(d: &[u8], partial: bool) -> Fetched<'_> {
            rdp_cookie(&Source::RdpCookieCnt(None), d, None, partial)
        }
        assert_eq!(count(data, false).values, [Sample::Int(1)]);
        let no_cookie = b"\x03\x00\x00\x13\x0e\xe0\0\0\0\0\0\x01\x00\x08\x00\x03\x00\x00\x00";
        assert_eq!(count(no_cookie, false).values, [Sample::Int(0)]);
        let cut = count(&data[..20], true);
        assert!(cut.values.is_empty() && cut.may_change);
        assert!(count(&data[..20], false).values.is_empty());
        let named = Source::RdpCookie(Some("MSTSHASH".into()));
        let value = rdp_cookie(&named, data, Some("MSTSHASH"), false);
        assert_eq!(value.values, [Sample::Str("bob".into())]);
        assert!(
            rdp_cookie(&named, data, Some("msts"), false)
                .values
                .is_empty()
        );
    }

    #[test]
    fn sni_from_a_client_hello() {
        let hello = client_hello("api.example");
        assert_eq!(
            client_hello_sni(&hello).ok().flatten().as_deref(),
            Some("api.example")
        );
        for cut in [6, 20, 50, hello.len() - 1] {
            assert!(client_hello_sni(&hello[..cut]).is_err(), "{cut}");
            let f = tls_fetch(&Source::SslSni, &hello[..cut], true);
            assert!(f.may_change && f.values.is_empty());
        }
        let f = tls_fetch(&Source::SslSni, b"GET / HTTP/1.1\r\n", true);
        assert!(!f.may_change && f.values.is_empty());
    }

    #[test]
    fn ssl_ver_is_the_hellos_version_once_the_record_is_in() {
        // Record layer 3.1, ClientHello 3.3: a TLS 1.2/1.3 client, as HAProxy reports it.
        let hello = client_hello("api.example");
        let f = tls_fetch(&Source::SslVer, &hello, true);
        assert_eq!(f.values, [Sample::Int(3 << 16 | 3)]);
        for cut in [0, 5, 10, 11, hello.len() - 1] {
            let f = tls_fetch(&Source::SslVer, &hello[..cut], true);
            assert!(f.may_change && f.values.is_empty(), "{cut}");
        }
        // Any SSLv3 record type is read; record version 2.x or a bad length is not SSL.
        let mut alert = hello.clone();
        alert[0] = 0x15;
        assert_eq!(hello_version(&alert).ok().flatten(), Some(3 << 16 | 3));
        let mut old = hello.clone();
        old[1] = 2;
        assert_eq!(hello_version(&old).ok(), Some(None));
        let mut tiny = hello.clone();
        tiny[3..5].copy_from_slice(&[0, 5]);
        assert_eq!(hello_version(&tiny).ok(), Some(None));
        let f = tls_fetch(&Source::SslVer, b"GET / HTTP/1.1\r\n", true);
        assert!(!f.may_change && f.values.is_empty());
    }

    #[test]
    fn ssl_ver_reads_an_sslv2_hello() {
        // Short header, CLIENT-HELLO asking for 3.1, 3 ciphers (9 bytes), 16-byte challenge.
        let mut hello = vec![0x80, 9 + 9 + 16, 0x01, 3, 1, 0, 9, 0, 0, 0, 16];
        hello.extend_from_slice(&[0; 9 + 16]);
        assert_eq!(hello_version(&hello).ok().flatten(), Some(3 << 16 | 1));
        assert!(hello_version(&hello[..hello.len() - 1]).is_err());
        assert!(hello_version(&hello[..2]).is_err());
        // A length that does not add up, or a challenge too short, is not SSL.
        let mut wrong = hello.clone();
        wrong[1] += 1;
        assert_eq!(hello_version(&wrong).ok(), Some(None));
        let mut short_challenge = hello.clone();
        short_challenge[10] = 15;
        assert_eq!(hello_version(&short_challenge).ok(), Some(None));
        // Long header: 14 bits of length and a padding length, which it waits for too.
        let mut long = vec![0x00, 9 + 9 + 16, 2, 0x01, 3, 0, 0, 9, 0, 0, 0, 16];
        long.extend_from_slice(&[0; 9 + 16]);
        assert!(hello_version(&long).is_err());
        long.extend_from_slice(&[0; 2]);
        assert_eq!(hello_version(&long).ok().flatten(), Some(3 << 16));
    }

    #[test]
    fn string_methods() {
        assert!(str_match(Method::Dir, "/api/v1/x", "v1"));
        assert!(str_match(Method::Dir, "/api/v1", "/v1/"));
        assert!(!str_match(Method::Dir, "/api/v10", "v1"));
        assert!(str_match(Method::Dom, "www.example.com", "example"));
        assert!(!str_match(Method::Dom, "www.myexample.com", "example"));
        // HAProxy's `pat_match_dom` delimits with ':' too (a Host with its port).
        assert!(str_match(Method::Dom, "example.com:8080", "com"));
        assert_eq!(path_of("http://h:80/a/b?q"), "/a/b");
        assert_eq!(path_of("/a?b"), "/a");
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(Test::Pass.and(Test::Miss), Test::Miss);
        assert_eq!(Test::Fail.and(Test::Miss), Test::Fail);
        assert_eq!(Test::Fail.or(Test::Miss), Test::Miss);
        assert_eq!(Test::Pass.or(Test::Miss), Test::Pass);
        assert_eq!(Test::Miss.negate(), Test::Miss);
    }

    /// `hdr_val` and `hdr_ip` readings, as HAProxy 2.6.12 gave them (`req.hdr_val(x)`,
    /// `req.hdr_ip(x)` of these values).
    #[test]
    fn header_numbers_and_addresses_read_as_haproxy() {
        for (text, n) in [
            ("12abc", 12),
            ("a", 0),
            ("1.2.3.4:80", 818284),
            ("-127.0.0.5", -126797985),
            ("99999999999", 1215752191),
        ] {
            assert_eq!(strl2ic(text.as_bytes()), n, "{text}");
        }
        for (text, ip) in [
            ("1.2.3.4:80", Some("1.2.3.4")),
            ("01.2.3.4", Some("1.2.3.4")),
            ("1.2.3.256", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("1..2.3", None),
            ("::1", Some("::1")),
            ("9", None),
        ] {
            let expected = ip.map(|ip| ip.parse::<IpAddr>().unwrap());
            assert_eq!(header_ip(text), expected, "{text}");
        }
    }
}
