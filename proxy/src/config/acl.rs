//! ACLs and conditions, HAProxy 2.6's way: `acl NAME CRITERION [FLAGS] [--] VALUES...` and the
//! `if|unless COND` that ends a rule, parsed once at load into typed values.
//!
//! - [`Fetch`]: a sample fetch (`src`, `path`, `req.hdr(host)`, `req.ssl_sni`, `nbsrv(be)` ...)
//!   with its converters (`lower`, `ipmask(24)`, `field(1,:)` ..., parsed and type-checked in
//!   [`super::converter`]); the converters' output type gives the default match method.
//! - [`Expr`]: a fetch, a [`Method`] (`-m str|beg|end|sub|reg|dir|dom|len|ip|int|bool|found`)
//!   and its [`Pattern`]s. ACL keywords like `path_beg` or `hdr_dom(host)` are a fetch with a
//!   method; `-f FILE` reads patterns from a file (`-M`: a map file, matched on its keys),
//!   `-i` ignores case, `-n` forbids DNS. As in HAProxy, each file and each expression's own
//!   patterns are a pattern reference ([`crate::runtime::map`]: one per file, shared with
//!   the maps, numbered with them and changed live by `add acl` ...): files are matched
//!   there; an expression's own patterns are compiled here too and matched without a lock
//!   until the runtime API changes them.
//! - [`Acl`]: the expressions declared under one name (any of them matching matches); the
//!   predefined ones (`TRUE`, `LOCALHOST`, `METH_GET`, `HTTP_1.1` ...) are built on first use.
//! - [`Condition`]: `if`/`unless` over suites of terms, a suite being an AND of (maybe negated)
//!   ACLs and the suites OR-ed (`||`, `or`); `{ ... }` is an anonymous ACL.
//!
//! Evaluation is in [`crate::runtime::sample`]; rule values with `%[fetch]` in them are log
//! formats ([`crate::runtime::logformat`]).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};

use super::pcre::Regex;

use super::converter;
pub use super::converter::{Converter, SampleType};
use super::keywords;
use super::model::Network;
use super::values;
use crate::runtime::map::{self as pattern_ref, KeyFlags, Match, PatternUse, Use};
use crate::runtime::vars::Conditions;

/// Why an ACL, a condition or a fetch was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclError {
    /// Wrong: an error with HAProxy's message.
    Bad(String),
    /// Right for HAProxy, but uses something hapx does not implement (named here): an ACL
    /// is then a warning, a rule using it an error (hapx refuses to run without it).
    Unsupported(String),
}

impl From<String> for AclError {
    fn from(m: String) -> Self {
        AclError::Bad(m)
    }
}

impl From<&str> for AclError {
    fn from(m: &str) -> Self {
        AclError::Bad(m.into())
    }
}

impl AclError {
    /// Rewords a [`AclError::Bad`] message with its context.
    pub fn context(self, f: impl FnOnce(String) -> String) -> AclError {
        match self {
            AclError::Bad(m) => AclError::Bad(f(m)),
            other => other,
        }
    }
}

/// Where a fetch finds its data, which decides where it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// Always there: connection addresses, proxy and server states.
    L4,
    /// The first bytes the client sent (TCP content inspection).
    L6,
    /// The first bytes the server sent (`tcp-response content` inspection).
    L6Res,
    /// The HTTP request.
    Request,
    /// The HTTP response.
    Response,
}

/// What a fetch (after its converters) returns, which gives its default matching method.
pub type Kind = SampleType;

/// A sample fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    AlwaysTrue,
    AlwaysFalse,
    /// True once the content being inspected is final (the inspect delay over, the buffer
    /// full, the peer closed); until then, no answer yet (HAProxy's `SMP_OPT_FINAL`).
    WaitEnd,
    Src,
    SrcPort,
    Dst,
    DstPort,
    FeName,
    BeName,
    /// `nbsrv([backend])`: usable servers of a backend (the current one if unnamed).
    Nbsrv(Option<String>),
    /// `srv_is_up(backend/server)`.
    SrvIsUp(String, String),
    /// `srv_is_up(server)`: a server of the section (named first) the fetch is written in,
    /// fixed when parsed as HAProxy's `smp_resolve_args` does (a listen section's rules
    /// look there even once a `use_backend` picked another backend).
    OwnSrvIsUp(String, String),
    Method,
    Path,
    Url,
    Query,
    /// `base`: the Host header followed by the path.
    Base,
    /// `req.ver`: `1.1`.
    ReqVer,
    /// `req.proto_http`.
    ProtoHttp,
    /// `capture.*`: what HAProxy keeps of a request for its log ([`KeptFact`]).
    Kept(KeptFact),
    /// `req.hdr`, `res.fhdr_cnt`, `hdr_ip` ...: a request's or a response's headers.
    Header(HeaderFetch),
    /// `req.cook(name)`: the values of a request cookie.
    ReqCook(String),
    /// `res.cook(name)`: the values of a cookie the response sets (`Set-Cookie`).
    ResCook(String),
    /// `url_param(name)`: the values of a query-string parameter.
    UrlParam(String),
    /// `env(NAME)`: an environment variable of the process.
    Env(String),
    Status,
    ReqLen,
    SslSni,
    SslVer,
    SslHelloType,
    /// `req.payload(offset,length)` (`payload`): bytes of what a TCP client sent, `length`
    /// of them from `offset` (0: all from `offset`); as HAProxy's arguments, negative ones
    /// taken as unsigned.
    Payload(u32, u32),
    /// `req.payload_lv(offset1,length1[,offset2])` (`payload_lv`): `length1` bytes at
    /// `offset1` give, big-endian, the length of the bytes to take, found right after them
    /// or at `offset2` ([`LvData`]).
    PayloadLv(u32, u32, LvData),
    /// `res.len`, `res.payload(offset,length)`, `res.payload_lv(...)`,
    /// `res.ssl_hello_type` (`rep_ssl_hello_type`): as the `req.` ones, on what the server
    /// sent (`tcp-response content` inspection).
    ResLen,
    ResPayload(u32, u32),
    ResPayloadLv(u32, u32, LvData),
    ResSslHelloType,
    /// `req.rdp_cookie([name])` (`rdp_cookie`): the value of the RDP connection request's
    /// cookie (whatever its name without one).
    RdpCookie(Option<String>),
    /// `req.rdp_cookie_cnt([name])` (`rdp_cookie_cnt`): 1 when there is such a cookie.
    RdpCookieCnt(Option<String>),
    /// The client connection's TLS (`bind ... ssl`): `ssl_fc`, `ssl_fc_sni`,
    /// `ssl_fc_protocol`, `ssl_fc_cipher`, `ssl_fc_alpn`, `ssl_c_used`, `ssl_c_verify`.
    SslFc,
    SslFcSni,
    SslFcProtocol,
    SslFcCipher,
    SslFcAlpn,
    SslCUsed,
    SslCVerify,
    /// `ssl_fc_has_crt`, `ssl_fc_has_sni`, `ssl_fc_is_resumed`: whether the client
    /// presented a certificate in this handshake (not on a resumed session: HAProxy's
    /// "verify done"), sent a server name, resumed a session.
    SslFcHasCrt,
    SslFcHasSni,
    SslFcIsResumed,
    /// `ssl_fc_use_keysize`, `ssl_fc_alg_keysize`: the cipher's key size in bits.
    SslFcKeysize,
    /// `ssl_c_err`, `ssl_c_ca_err`, `ssl_c_ca_err_depth`: the first verification error
    /// (and its depth); 0, as a certificate that did not verify ended the handshake.
    SslCVerifyError,
    /// `ssl_c_*`: a field of the client's certificate.
    SslClientCert(CertField),
    /// `sc_*`, `scN_*`, `src_*`, `table_cnt`: stick table counters ([`super::stick`]).
    Stick(super::stick::StickFetch),
    /// `http_auth(userlist)`: whether the request's Basic credentials are a user's.
    HttpAuth(String),
    /// `http_auth_group(userlist)`: the user whose credentials the request carries; as an
    /// ACL, whether that user is in one of the groups listed ([`Method::Auth`]).
    HttpAuthGroup(String),
    /// `http_auth_type`, `http_auth_user`, `http_auth_pass`: the request's `Authorization`
    /// scheme (`Basic`, `Bearer`) and Basic credentials, whether valid or not.
    HttpAuthType,
    HttpAuthUser,
    HttpAuthPass,
    /// `http_auth_bearer([header])`: a Bearer token, from `Authorization` or the header named.
    HttpAuthBearer(Option<String>),
    /// `srv_name`, `srv_id`, `be_id` (the checked server's name and id, its backend's id,
    /// which hapx knows only in a health check's formats: [`parse_check_fetch`]); and the
    /// variables and constants, which traffic rules read too.
    Checked(CheckedFact),
}

/// What the `capture.*` fetches read: what HAProxy keeps of a transaction for its log line
/// (`txn->uri`, the capture slots, the messages' versions), whatever the rules did since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptFact {
    /// `capture.req.hdr(N)`, `capture.res.hdr(N)`: the Nth capture slot (HAProxy's order:
    /// `capture request header` and `declare capture` ones as declared).
    RequestCapture(i64),
    ResponseCapture(i64),
    /// `capture.req.method`, `capture.req.uri`: the request line as it came.
    RequestMethod,
    RequestUri,
    /// `capture.req.ver`, `capture.res.ver`: `HTTP/1.1` from version 1.1 on, else `HTTP/1.0`.
    RequestVersion,
    ResponseVersion,
}

impl KeptFact {
    /// The fact of the `capture.*` fetch `name` with `args`; None for another name.
    fn parse(name: &str, args: &[&str]) -> Option<Result<KeptFact, String>> {
        let plain = |fact: KeptFact| match args {
            [] => Ok(fact),
            given => Err(format!(
                "fetch method '{name}' : expected ')' before '{})'",
                given.join(",")
            )),
        };
        Some(match name {
            "capture.req.hdr" => {
                integer_args::<1>(name, args).map(|[n]| KeptFact::RequestCapture(n))
            }
            "capture.res.hdr" => {
                integer_args::<1>(name, args).map(|[n]| KeptFact::ResponseCapture(n))
            }
            "capture.req.method" => plain(KeptFact::RequestMethod),
            "capture.req.uri" => plain(KeptFact::RequestUri),
            "capture.req.ver" => plain(KeptFact::RequestVersion),
            "capture.res.ver" => plain(KeptFact::ResponseVersion),
            _ => return None,
        })
    }

    /// Whether it reads the response (HAProxy's `SMP_USE_HRSHP`), else the request.
    pub fn of_response(self) -> bool {
        matches!(
            self,
            KeptFact::ResponseCapture(_) | KeptFact::ResponseVersion
        )
    }
}

/// What the `ssl_c_*` fetches take of the client's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertField {
    /// `ssl_c_s_dn([entry[,occ[,format]]])`, `ssl_c_i_dn(...)`.
    SubjectDn(DnPart),
    IssuerDn(DnPart),
    /// `ssl_c_serial`, `ssl_c_sha1`, `ssl_c_der`: binary.
    Serial,
    Sha1,
    Der,
    /// `ssl_c_chain_der`: the DER of the certificates the client sent after its own, one
    /// after the other (none on a resumed session, as HAProxy's).
    ChainDer,
    /// `ssl_c_notbefore`, `ssl_c_notafter`: `YYMMDDhhmmssZ`.
    NotBefore,
    NotAfter,
    /// `ssl_c_version`: 1 for X.509 v1 ... 3 for v3.
    Version,
    /// `ssl_c_sig_alg`, `ssl_c_key_alg`: OpenSSL's short name of the algorithm.
    SignatureAlgorithm,
    KeyAlgorithm,
}

/// What a DN fetch gives of a distinguished name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnPart {
    /// HAProxy's own one-line form, `/C=FR/O=Example/CN=name`.
    Whole,
    /// RFC 2253's form, `CN=name,O=Example,C=FR` (the format argument `rfc2253`).
    Rfc2253,
    /// The `occurrence`th value of attribute `entry` (a short name or dotted OID, any
    /// case): counted from the first from 1, from the last from -1 (0 finds none).
    /// Boxed, as every fetch is as big as the biggest.
    Entry(Box<(String, i64)>),
}

impl CertField {
    fn kind(&self) -> Kind {
        match self {
            CertField::Serial | CertField::Sha1 | CertField::Der | CertField::ChainDer => Kind::Bin,
            CertField::Version => Kind::Int,
            _ => Kind::Str,
        }
    }
}

/// The certificate fetch `name` (`ssl_c_*`) with `args`; None for another name.
fn cert_field(name: &str, args: &[String]) -> Option<Result<CertField, String>> {
    let plain = |field: CertField| match non_empty(args).as_slice() {
        [] => Ok(field),
        given => Err(format!(
            "fetch method '{name}' : expected ')' before '{})'",
            given.join(",")
        )),
    };
    Some(match name {
        "ssl_c_s_dn" => dn_part(name, args).map(CertField::SubjectDn),
        "ssl_c_i_dn" => dn_part(name, args).map(CertField::IssuerDn),
        "ssl_c_serial" => plain(CertField::Serial),
        "ssl_c_sha1" => plain(CertField::Sha1),
        "ssl_c_der" => plain(CertField::Der),
        "ssl_c_chain_der" => plain(CertField::ChainDer),
        "ssl_c_notbefore" => plain(CertField::NotBefore),
        "ssl_c_notafter" => plain(CertField::NotAfter),
        "ssl_c_version" => plain(CertField::Version),
        "ssl_c_sig_alg" => plain(CertField::SignatureAlgorithm),
        "ssl_c_key_alg" => plain(CertField::KeyAlgorithm),
        _ => return None,
    })
}

/// A DN fetch's `[entry[,occ[,format]]]`, as HAProxy's argument parser reads them: an
/// empty occurrence ends the list early (so `(,,rfc2253)` is an error); an entry wins over
/// the format, which must be `rfc2253` or empty (HAProxy's message ends in `..`).
fn dn_part(name: &str, args: &[String]) -> Result<DnPart, String> {
    let empty_occurrence = args.get(1).is_some_and(|occ| occ.is_empty());
    let unread = match args.len() {
        4.. => Some(3),
        3 if empty_occurrence => Some(2),
        _ => None,
    };
    if let Some(from) = unread {
        return Err(format!(
            "fetch method '{name}' : expected ')' before ',{})'",
            args[from..].join(",")
        ));
    }
    let occurrence = match args.get(1).filter(|occ| !occ.is_empty()) {
        None => 1,
        Some(occ) => match read_int64(occ) {
            Some(n) if !occ.trim_start_matches(['-', '+']).is_empty() => n,
            _ => {
                return Err(format!(
                    "fetch method '{name}' : failed to parse '{occ}' as type 'integer' at position 2"
                ));
            }
        },
    };
    let format = args.get(2).map_or("", String::as_str);
    if !matches!(format, "" | "rfc2253") {
        return Err(format!(
            "invalid args in fetch method '{name}' : only rfc2253 or a blank value are \
             currently supported as the format argument.."
        ));
    }
    Ok(match args.first().map_or("", String::as_str) {
        "" if format == "rfc2253" => DnPart::Rfc2253,
        "" => DnPart::Whole,
        entry => DnPart::Entry(Box::new((entry.to_string(), occurrence))),
    })
}

/// What a health check's format may fetch of the server it checks; and what every rule may
/// fetch without a client: variables (`var()`, of type ANY, read as any sample) and the
/// constants `int()`, `str()`, `bool()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedFact {
    ServerName,
    ServerId,
    BackendId,
    /// `int(N)`, `str(S)`, `bool(B)`.
    Int(i64),
    Str(Box<str>),
    Bool(bool),
    /// `var(SCOPE.NAME[,DEFAULT])`: a variable as a check sees it (`runtime::check_format`);
    /// boxed, as every fetch of the proxy's rules is as big as the biggest.
    Var(Box<(String, Option<String>)>),
}

/// A fetch and its converters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub source: Source,
    pub converters: Vec<Converter>,
}

impl Fetch {
    /// What the fetch gives after its converters.
    pub fn kind(&self) -> Kind {
        converter::output_type(&self.converters, self.source.kind())
    }

    pub fn layer(&self) -> Layer {
        use Source::*;
        match self.source {
            ReqLen | SslSni | SslVer | SslHelloType | Payload(..) | PayloadLv(..)
            | RdpCookie(_) | RdpCookieCnt(_) => Layer::L6,
            ResLen | ResPayload(..) | ResPayloadLv(..) | ResSslHelloType => Layer::L6Res,
            Header(HeaderFetch { response: true, .. }) | Status | ResCook(_) => Layer::Response,
            Kept(fact) if fact.of_response() => Layer::Response,
            Kept(_) => Layer::Request,
            Method | Path | Url | Query | Base | ReqVer | ProtoHttp | Header(_) | ReqCook(_)
            | UrlParam(_) | HttpAuth(_) | HttpAuthGroup(_) | HttpAuthType | HttpAuthUser
            | HttpAuthPass | HttpAuthBearer(_) => Layer::Request,
            _ => Layer::L4,
        }
    }
}

impl Source {
    /// What the fetch itself gives.
    pub fn kind(&self) -> Kind {
        use Source::*;
        match self {
            AlwaysTrue | AlwaysFalse | WaitEnd | SrvIsUp(..) | OwnSrvIsUp(..) | ProtoHttp
            | SslFc | SslCUsed | SslFcHasCrt | SslFcHasSni | SslFcIsResumed | HttpAuth(_) => {
                Kind::Bool
            }
            SslFcKeysize | SslCVerifyError => Kind::Int,
            SslClientCert(field) => field.kind(),
            Header(h) => h.value.kind(),
            SrcPort | DstPort | Nbsrv(_) | Status | ReqLen | SslVer | SslHelloType | SslCVerify
            | Stick(_) | RdpCookieCnt(_) | ResLen | ResSslHelloType => Kind::Int,
            Checked(CheckedFact::ServerId | CheckedFact::BackendId | CheckedFact::Int(_)) => {
                Kind::Int
            }
            Checked(CheckedFact::Bool(_)) => Kind::Bool,
            Src | Dst => Kind::Ip,
            Payload(..) | PayloadLv(..) | ResPayload(..) | ResPayloadLv(..) => Kind::Bin,
            _ => Kind::Str,
        }
    }
}

/// How a sample is compared with the patterns (`-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Found,
    Bool,
    Int,
    Ip,
    Str,
    Beg,
    End,
    Sub,
    Reg,
    Dir,
    Dom,
    Len,
    /// `-m bin`: the sample's bytes equal a pattern's (written in hex).
    Bin,
    /// `http_auth_group`'s own: the user is in one of the groups (HAProxy's `pat_match_auth`).
    Auth,
}

impl Method {
    fn named(name: &str) -> Option<Method> {
        Some(match name {
            "found" => Method::Found,
            "bool" => Method::Bool,
            "int" => Method::Int,
            "ip" => Method::Ip,
            "str" => Method::Str,
            "beg" => Method::Beg,
            "end" => Method::End,
            "sub" => Method::Sub,
            "reg" => Method::Reg,
            "dir" => Method::Dir,
            "dom" => Method::Dom,
            "len" => Method::Len,
            "bin" => Method::Bin,
            _ => return None,
        })
    }

    /// The method a sample of `kind` matches with by default; None for binary samples,
    /// which HAProxy matches only with a `-m` given.
    fn default_for(kind: Kind) -> Option<Method> {
        match kind {
            Kind::Bool => Some(Method::Bool),
            Kind::Int => Some(Method::Int),
            Kind::Ip => Some(Method::Ip),
            Kind::Str => Some(Method::Str),
            Kind::Bin => None,
        }
    }
}

/// One value to match against.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Already lower-cased under `-i`.
    Str(String),
    Reg(Regex),
    /// An inclusive integer range (an open end is `i64::MIN`/`MAX`).
    Int(i64, i64),
    Ip(Network),
    /// `-m bin`: bytes.
    Bin(Vec<u8>),
}

/// One ACL expression: `CRITERION [FLAGS] PATTERNS...`.
#[derive(Debug, Clone)]
pub struct Expr {
    pub fetch: Fetch,
    pub method: Method,
    pub ignore_case: bool,
    pub patterns: Vec<Pattern>,
    /// The criterion as written, for messages.
    pub keyword: String,
    /// The pattern files (`-f`), matched live: HAProxy's pattern references, shared with
    /// every ACL and map reading the same file and changed by the runtime API.
    pub files: Vec<PatternUse>,
    /// The reference of its own patterns (listed by `show acl`, changed by `add acl`...):
    /// until changed, `patterns` holds the same and is matched without its lock.
    pub inline: Option<PatternUse>,
}

/// A named (or anonymous) ACL: it matches when one of its expressions does.
#[derive(Debug, Clone)]
pub struct Acl {
    pub name: String,
    pub exprs: Vec<Expr>,
}

/// One ACL in a condition, maybe negated (`!`); `acl` indexes the proxy's [`Acl`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub negate: bool,
    pub acl: usize,
}

/// `if|unless` followed by suites of terms: a suite holds when all its terms do, the
/// condition when any suite does (then inverted for `unless`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub unless: bool,
    pub suites: Vec<Vec<Term>>,
}

/// HAProxy's predefined ACLs, as `acl` lines.
const PREDEFINED: &[(&str, &str)] = &[
    ("TRUE", "always_true"),
    ("FALSE", "always_false"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    ("HTTP", "req.proto_http"),
    ("HTTP_1.0", "req.ver 1.0"),
    ("HTTP_1.1", "req.ver 1.1"),
    ("HTTP_2.0", "req.ver 2.0"),
    ("HTTP_3.0", "req.ver 3.0"),
    ("HTTP_CONTENT", "req.hdr_val(content-length) gt 0"),
    ("HTTP_URL_ABS", "url_reg ^[^/:]*://"),
    ("HTTP_URL_SLASH", "url_beg /"),
    ("HTTP_URL_STAR", "url *"),
    ("METH_CONNECT", "method CONNECT"),
    ("METH_DELETE", "method DELETE"),
    ("METH_GET", "method GET HEAD"),
    ("METH_HEAD", "method HEAD"),
    ("METH_OPTIONS", "method OPTIONS"),
    ("METH_POST", "method POST"),
    ("METH_PUT", "method PUT"),
    ("METH_TRACE", "method TRACE"),
    ("RDP_COOKIE", "req.rdp_cookie_cnt gt 0"),
    ("REQ_CONTENT", "req.len gt 0"),
    ("WAIT_END", "wait_end"),
];

/// The ACLs of one proxy while its lines are read.
#[derive(Debug, Clone, Default)]
pub struct AclSet {
    pub acls: Vec<Acl>,
    /// ACLs declared with something hapx does not implement, and what.
    pub unsupported: Vec<(String, String)>,
    /// Where each named ACL is in `acls`, so that declaring one costs the same however
    /// many there are; an entry is checked against the name there (an inherited set
    /// renames its ACLs: [`super::rules::Rules::inherited`]).
    by_name: HashMap<String, usize>,
}

impl AclSet {
    /// `acl NAME CRITERION ...` (`words` after the keyword): adds to the ACL of that name.
    pub fn declare(
        &mut self,
        words: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<usize, AclError> {
        let name = words.first().map(String::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err("'acl' expects an ACL name and a criterion.".into());
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(format!("character '{c}' is not permitted in acl name '{name}'.").into());
        }
        match parse_expr(&words[1..], warnings) {
            Ok(expr) => Ok(self.add(name, expr)),
            Err(AclError::Unsupported(what)) => {
                self.unsupported.push((name.into(), what.clone()));
                Err(AclError::Unsupported(what))
            }
            Err(e) => {
                Err(e.context(|m| format!("error detected while parsing ACL '{name}' : {m}.")))
            }
        }
    }

    fn add(&mut self, name: &str, expr: Expr) -> usize {
        match self.named(name) {
            Some(i) => {
                self.acls[i].exprs.push(expr);
                i
            }
            None => {
                self.acls.push(Acl {
                    name: name.into(),
                    exprs: vec![expr],
                });
                self.by_name.insert(name.into(), self.acls.len() - 1);
                self.acls.len() - 1
            }
        }
    }

    /// The declared ACL named `name`.
    fn named(&self, name: &str) -> Option<usize> {
        let i = *self.by_name.get(name)?;
        (self.acls.get(i)?.name == name).then_some(i)
    }

    /// The ACL named `name`: declared ones first, then the predefined ones.
    fn find(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.named(name) {
            return Some(i);
        }
        let (_, line) = PREDEFINED.iter().find(|(n, _)| *n == name)?;
        let words: Vec<String> = line.split(' ').map(str::to_string).collect();
        let expr = parse_expr(&words, &mut Vec::new()).ok()?;
        Some(self.add(name, expr))
    }

    /// Parses `if|unless ...` from `words` (starting at the `if`/`unless`); the message of
    /// an error is HAProxy's text after its context.
    pub fn condition(
        &mut self,
        words: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<Condition, AclError> {
        let unless = match words.first().map(String::as_str) {
            Some("if") => false,
            Some("unless") => true,
            _ => return Err(AclError::Bad("expects 'if' or 'unless'".into())),
        };
        let mut cond = Condition {
            unless,
            suites: Vec::new(),
        };
        let mut suite: Option<Vec<Term>> = None;
        let mut negate = false;
        let mut i = 1;
        while i < words.len() {
            let mut word = words[i].as_str();
            i += 1;
            // As many '!' as written, each inverting; a lone one applies to the next word.
            while let Some(rest) = word.strip_prefix('!') {
                negate = !negate;
                word = rest;
            }
            match word {
                "" => continue,
                "||" | "or" => {
                    cond.suites.extend(suite.take());
                    negate = false;
                    continue;
                }
                _ => {}
            }
            let acl = if word == "{" {
                let end = words[i..]
                    .iter()
                    .position(|w| w == "}")
                    .ok_or("missing closing '}' in condition")?;
                let expr = parse_expr(&words[i..i + end], warnings)?;
                i += end + 1;
                self.acls.push(Acl {
                    name: String::new(),
                    exprs: vec![expr],
                });
                self.acls.len() - 1
            } else if let Some((_, what)) = self.unsupported.iter().find(|(n, _)| n == word) {
                return Err(AclError::Unsupported(what.clone()));
            } else {
                self.find(word)
                    .ok_or_else(|| format!("no such ACL : '{word}'"))?
            };
            suite
                .get_or_insert_with(Vec::new)
                .push(Term { negate, acl });
            negate = false;
        }
        cond.suites.extend(suite);
        Ok(cond)
    }

    /// The lowest layer every term of `cond` needs data from (to warn about fetches used
    /// where their data never is).
    pub fn layers(&self, cond: &Condition) -> impl Iterator<Item = (Layer, &Expr)> + '_ {
        let terms: Vec<Term> = cond.suites.iter().flatten().copied().collect();
        terms.into_iter().flat_map(move |t| {
            self.acls[t.acl]
                .exprs
                .iter()
                .map(|e| (e.fetch.layer(), e))
                .collect::<Vec<_>>()
        })
    }
}

/// Parses `CRITERION [FLAGS] [--] PATTERNS...`.
pub fn parse_expr(words: &[String], warnings: &mut Vec<String>) -> Result<Expr, AclError> {
    let keyword = words.first().map(String::as_str).unwrap_or_default();
    if keyword.is_empty() {
        return Err("missing fetch method in ACL expression ''".into());
    }
    let (fetch, derived) = parse_criterion(keyword)?;
    // A variable's type is known only when it is read (HAProxy's `any`): without a
    // converter to give it one, no method is implied.
    let typeless =
        matches!(fetch.source, Source::Checked(CheckedFact::Var(_))) && fetch.converters.is_empty();
    let mut method = derived.or_else(|| match typeless {
        true => None,
        false => Method::default_for(fetch.kind()),
    });
    let mut ignore_case = false;
    let mut no_dns = false;
    let mut as_map = false;
    // Opened as the flags are read, as HAProxy numbers its references in that order.
    let mut files = Vec::new();
    let mut i = 1;
    let mut explicit_end = false;
    while let Some(flag) = words.get(i).map(String::as_str) {
        if !flag.starts_with('-') {
            break;
        }
        i += 1;
        match flag {
            "-i" => ignore_case = true,
            "-n" => no_dns = true,
            "-u" => {}
            "--" => {
                explicit_end = true;
                break;
            }
            "-m" if !files.is_empty() => {
                return Err("'-m' must only be specified before patterns and files in parsing ACL expression".into());
            }
            "-m" => {
                let name = words.get(i).map(String::as_str).unwrap_or_default();
                method = Some(Method::named(name).ok_or_else(|| {
                    format!("unknown matching method '{name}' when parsing ACL expression")
                })?);
                i += 1;
            }
            "-f" => {
                let file = words
                    .get(i)
                    .ok_or("'-f' expects a file name when parsing ACL expression")?;
                let user = if as_map { Use::AclAsMap } else { Use::Acl };
                files.push(pattern_ref::open(file, as_map, user)?);
                i += 1;
            }
            "-M" => as_map = true,
            _ => {
                return Err(format!("'{flag}' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'").into());
            }
        }
    }
    let method = method.ok_or_else(|| {
        let (name, ..) = split_call(keyword).unwrap_or((keyword, Vec::new(), ""));
        format!("matching method must be specified first (using '-m') when using a sample fetch of this type ('{name}')")
    })?;
    let mut texts: Vec<String> = words[i..].to_vec();
    let no_value_needed = matches!(method, Method::Found | Method::Bool);
    if texts.is_empty() && files.is_empty() && !no_value_needed && !explicit_end {
        warnings.push(format!("parsing acl keyword '{keyword}' :\n  no pattern to match against were provided, so this ACL will never match.\n  If this is what you intended, please add '--' to get rid of this warning.\n  If you intended to match only for existence, please use '-m found'.\n  If you wanted to force an int to match as a bool, please use '-m bool'.\n"));
    }
    if fetch.source == Source::SslVer {
        if !files.is_empty() {
            return Err(AclError::Unsupported("pattern files of 'ssl_ver'".into()));
        }
        // Versions are written `3.1` (major.minor), fetched as major << 16 | minor.
        texts = texts.iter().map(|t| dotted_version(t)).collect();
    }
    if matches!(method, Method::Int | Method::Len) {
        texts = int_texts(&texts)?;
    }
    let kind = match_kind(method)
        .ok_or_else(|| AclError::Unsupported(format!("pattern files of '{keyword}'")));
    let flags = KeyFlags {
        ignore_case,
        no_dns,
    };
    let (name, ..) = split_call(keyword).unwrap_or((keyword, Vec::new(), ""));
    let place = crate::config::stick::current_place();
    let description = match &place {
        Some(p) => format!("acl '{name}' file '{}' line {}", p.file, p.line),
        None => format!("acl '{name}' file '' line 0"),
    };
    let own = pattern_ref::inline_ref(description, &texts);
    // The patterns are compiled (and names resolved) once, by their reference, and matched
    // from its copy until it changes. Without a match type of HAProxy's
    // (`http_auth_group`), they are only listed by the reference and compiled here.
    let (inline, patterns) = match kind.clone() {
        Ok(kind) => {
            let inline = PatternUse::new(own, kind, flags)?;
            let (patterns, complete) = match method {
                Method::Found | Method::Bool => (Vec::new(), true),
                _ => inline.patterns(method == Method::Bin),
            };
            if !complete {
                inline.read_live();
            }
            (Some(inline), patterns)
        }
        Err(_) => (None, text_patterns(&texts, ignore_case)),
    };
    let files = match files.is_empty() {
        true => Vec::new(),
        false => (files.into_iter())
            .map(|f| PatternUse::new(f, kind.clone()?, flags).map_err(AclError::Bad))
            .collect::<Result<_, _>>()?,
    };
    Ok(Expr {
        fetch,
        method,
        ignore_case,
        patterns,
        keyword: keyword.into(),
        files,
        inline,
    })
}

/// The pattern references' match type of `method`; None for `http_auth_group`'s own.
fn match_kind(method: Method) -> Option<Match> {
    Some(match method {
        Method::Found | Method::Bool => Match::Nothing,
        Method::Int => Match::Int,
        Method::Ip => Match::Ip,
        Method::Str => Match::Str,
        Method::Beg => Match::Beg,
        Method::End => Match::End,
        Method::Sub => Match::Sub,
        Method::Reg => Match::Reg,
        Method::Dir => Match::Dir,
        Method::Dom => Match::Dom,
        Method::Len => Match::Len,
        Method::Bin => Match::Bin,
        Method::Auth => return None,
    })
}

/// Integer patterns as HAProxy keeps them: `eq|ge|gt|le|lt` apply to the numbers after
/// them, each written as the range it stands for (`gt 5` is `6:`, `le 3` is `:3`); a text
/// with a `:` or a `-` is a range already.
fn int_texts(texts: &[String]) -> Result<Vec<String>, String> {
    let mut op = "eq";
    let mut out = Vec::new();
    for text in texts {
        if matches!(text.as_str(), "eq" | "ge" | "gt" | "le" | "lt") {
            op = text;
            continue;
        }
        if op == "eq" || text.contains([':', '-']) {
            out.push(text.clone());
            continue;
        }
        let n: i64 = text
            .parse()
            .map_err(|_| format!("'{text}' is not a number"))?;
        out.push(match op {
            "ge" => format!("{n}:"),
            "gt" => format!("{}:", n.saturating_add(1)),
            "le" => format!(":{n}"),
            _ => format!(":{}", n.saturating_sub(1)),
        });
    }
    Ok(out)
}

/// The patterns of an expression without a pattern reference's match type
/// (`http_auth_group`'s groups): texts, lower-cased under `-i`.
fn text_patterns(texts: &[String], ignore_case: bool) -> Vec<Pattern> {
    let text = |t: &String| match ignore_case {
        true => t.to_ascii_lowercase(),
        false => t.clone(),
    };
    texts.iter().map(|t| Pattern::Str(text(t))).collect()
}

/// A `-m bin` pattern: pairs of hex digits, as HAProxy's `parse_binary`.
pub(crate) fn hex_pattern(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 {
        return Err("an even number of hex digit is expected".into());
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .ok_or_else(|| format!("an hex digit is expected (found '{}')", char::from(c)))
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Ok((digit(pair[0])? << 4 | digit(pair[1])?) as u8))
        .collect()
}

/// `3.1` as `196609`; a range `3.0:3.3` end by end; anything else as it is.
fn dotted_version(text: &str) -> String {
    let one = |v: &str| match v.split_once('.') {
        Some((major, minor)) => match (major.parse::<i64>(), minor.parse::<i64>()) {
            (Ok(a), Ok(b)) => ((a << 16) | b).to_string(),
            _ => v.to_string(),
        },
        None => v.to_string(),
    };
    match text.split_once(':') {
        Some((low, high)) => format!("{}:{}", one(low), one(high)),
        None => one(text),
    }
}

pub(crate) fn ip_pattern(text: &str, no_dns: bool) -> Result<Network, String> {
    if let Some(net) = values::network(text) {
        return Ok(net);
    }
    let invalid = || format!("'{text}' is not a valid IPv4 or IPv6 address");
    if no_dns || text.contains('/') {
        return Err(invalid());
    }
    // HAProxy resolves a name once, at load (`-n` forbids it).
    let ip: IpAddr = (text, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(|a| a.is_ipv4()))
        .map(|a| a.ip())
        .ok_or_else(invalid)?;
    Ok(Network {
        addr: ip,
        prefix: if ip.is_ipv4() { 32 } else { 128 },
    })
}

/// `name(args),conv,...` into (name, args, the converters' text after the comma); the
/// arguments read as a converter's ([`converter::read_args`]: quotes, escapes), empty ones
/// kept (`req.hdr(,1)`: see [`non_empty`]).
fn split_call(text: &str) -> Result<(&str, Vec<String>, &str), String> {
    let name_end = text.find(['(', ',']).unwrap_or(text.len());
    let name = &text[..name_end];
    let (args, rest) = match text[name_end..].strip_prefix('(') {
        Some(inner) => {
            let (mut args, _, close) = converter::read_args(inner);
            let close = close.ok_or_else(|| format!("fetch method '{name}' : expected ')'"))?;
            // `req.hdr()` has one argument, empty, where `req.hdr` has none.
            if args.is_empty() {
                args.push(String::new());
            }
            (args, &inner[close + 1..])
        }
        None => (Vec::new(), &text[name_end..]),
    };
    Ok((name, args, rest.strip_prefix(',').unwrap_or(rest)))
}

/// The arguments that are not empty, as every fetch but the header ones reads them.
fn non_empty(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| !a.is_empty())
        .collect()
}

/// A header fetch: `req.hdr`, `req.fhdr`, `req.hdr_cnt`, `req.fhdr_cnt`, `req.hdr_val`,
/// `req.hdr_ip`, their `res.` forms, and the older `hdr*` (request) and `shdr*` (response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFetch {
    /// The response's headers (`res.`, `shdr`), else the request's.
    pub response: bool,
    /// `fhdr`: whole header lines, else their values split at commas.
    pub full: bool,
    pub value: HeaderValue,
    /// Lower case. None without an argument (`req.hdr`): every header for a count, nothing
    /// for the others; empty (`req.hdr()`): every header, as HAProxy's `http_find_header`
    /// with an empty name.
    pub name: Option<String>,
    /// Counts from 1, negative from the end; 0 for every value (the last where one value is
    /// wanted, as HAProxy's `smp_fetch_hdr`).
    pub occurrence: i32,
}

/// What a header fetch gives of the values it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue {
    Text,
    /// `_cnt`: how many there are.
    Count,
    /// `_val`: each as HAProxy's `strl2ic` reads a number.
    Int,
    /// `_ip`: each that is an address.
    Ip,
}

impl HeaderValue {
    fn kind(self) -> Kind {
        match self {
            HeaderValue::Text => Kind::Str,
            HeaderValue::Count | HeaderValue::Int => Kind::Int,
            HeaderValue::Ip => Kind::Ip,
        }
    }
}

impl HeaderFetch {
    /// Fetch `name` with its arguments as written (empty ones kept), if it is a header
    /// fetch; an error is HAProxy's message after its `fetch method 'NAME' : `.
    fn parse(name: &str, args: &[String]) -> Option<Result<HeaderFetch, String>> {
        let (response, rest) = match name {
            _ if name.starts_with("req.") => (false, &name[4..]),
            _ if name.starts_with("res.") => (true, &name[4..]),
            _ if name.starts_with("shdr") => (true, &name[1..]),
            _ if name.starts_with("hdr") => (false, name),
            _ => return None,
        };
        let short = !name.contains('.');
        let (full, value) = match rest {
            "hdr" => (false, HeaderValue::Text),
            "fhdr" if !short => (true, HeaderValue::Text),
            "hdr_cnt" => (false, HeaderValue::Count),
            "fhdr_cnt" if !short => (true, HeaderValue::Count),
            "hdr_val" => (false, HeaderValue::Int),
            "hdr_ip" => (false, HeaderValue::Ip),
            _ => return None,
        };
        let most = if value == HeaderValue::Count { 1 } else { 2 };
        Some(match args.get(most) {
            Some(_) => Err(format!(
                "expected ')' before ',{})'",
                args[most..].join(",")
            )),
            None => Self::occurrence(args.get(1)).map(|occurrence| HeaderFetch {
                response,
                full,
                value,
                name: args.first().map(|n| n.to_ascii_lowercase()),
                occurrence,
            }),
        })
    }

    /// The second argument as HAProxy reads an integer (empty: 0).
    fn occurrence(arg: Option<&String>) -> Result<i32, String> {
        let Some(arg) = arg.filter(|a| !a.is_empty()) else {
            return Ok(0);
        };
        let digits = arg.strip_prefix(['-', '+']).unwrap_or(arg);
        match read_int64(arg) {
            Some(n) if !digits.is_empty() => Ok(n as i32),
            _ => Err(format!(
                "failed to parse '{arg}' as type 'integer' at position 2"
            )),
        }
    }
}

/// A sample fetch as written in a rule or a `%[...]`: `req.hdr(host),lower`.
pub fn parse_fetch(text: &str) -> Result<Fetch, AclError> {
    let fetch = fetch_as(text, None, false)?;
    refuse_kept(&fetch)?;
    note_backend_ref(&fetch.source);
    Ok(fetch)
}

/// [`parse_fetch`] for a log format, where the `capture.*` fetches are read too (the
/// formats' compiler says at which stages: `runtime::logformat`).
pub fn parse_format_fetch(text: &str) -> Result<Fetch, AclError> {
    let fetch = fetch_as(text, None, false)?;
    note_backend_ref(&fetch.source);
    Ok(fetch)
}

/// hapx keeps what the `capture.*` fetches read only for the log line, so they are refused
/// wherever else a fetch is read (rules' expressions and ACLs) rather than found empty.
fn refuse_kept(fetch: &Fetch) -> Result<(), AclError> {
    match fetch.source {
        Source::Kept(_) => Err(AclError::Unsupported(
            "a 'capture.*' sample fetch outside of a log format".into(),
        )),
        _ => Ok(()),
    }
}

/// A backend (and server) a fetch outside of an ACL names (`nbsrv(b)`, `srv_is_up(b/s)`),
/// resolved once the proxies are known, as HAProxy's `smp_resolve_args` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    pub keyword: &'static str,
    /// Empty when the fetch names none (`nbsrv`, `srv_is_up(s)`): the proxy it is written
    /// in, as HAProxy fixes it there.
    pub backend: String,
    pub server: Option<String>,
    /// HAProxy words the error as an ACL's (`http-check send hdr`), see [`worded_as_acl`].
    pub acl_worded: bool,
}

impl BackendRef {
    /// The reference `source` makes, if it names a backend.
    pub fn of(source: &Source) -> Option<BackendRef> {
        let (keyword, backend, server) = match source {
            Source::Nbsrv(b) => ("nbsrv", b.clone().unwrap_or_default(), None),
            Source::SrvIsUp(b, s) => ("srv_is_up", b.clone(), Some(s.clone())),
            Source::OwnSrvIsUp(_, s) => ("srv_is_up", String::new(), Some(s.clone())),
            _ => return None,
        };
        Some(BackendRef {
            keyword,
            backend,
            server,
            acl_worded: ACL_WORDED.get(),
        })
    }
}

/// Sets the section the fetches parsed from now on are written in (see
/// [`Source::OwnSrvIsUp`]).
pub fn set_parsed_section(name: &str) {
    PARSED_SECTION.with_borrow_mut(|section| name.clone_into(section));
}

thread_local! {
    /// The section being parsed (see [`set_parsed_section`]).
    static PARSED_SECTION: std::cell::RefCell<String> =
        const { std::cell::RefCell::new(String::new()) };
    /// The backend references the fetches parsed by [`collect_backend_refs`] made; none
    /// outside of it (or in ACLs, whose references their rules note themselves).
    static BACKEND_REFS: std::cell::RefCell<Option<Vec<BackendRef>>> =
        const { std::cell::RefCell::new(None) };
    /// Whether the fetches being parsed have their errors worded as an ACL's.
    static ACL_WORDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, whose fetches HAProxy words the errors of as an ACL's although they are in a
/// format (those of `http-check send hdr`, which it parses as such).
pub fn worded_as_acl<R>(f: impl FnOnce() -> R) -> R {
    let outer = ACL_WORDED.replace(true);
    let r = f();
    ACL_WORDED.set(outer);
    r
}

/// Runs `f`, which parses fetches, and the backend references they made.
pub fn collect_backend_refs<R>(f: impl FnOnce() -> R) -> (R, Vec<BackendRef>) {
    let outer = BACKEND_REFS.replace(Some(Vec::new()));
    let r = f();
    let refs = BACKEND_REFS.replace(outer);
    (r, refs.unwrap_or_default())
}

/// Runs `f` without collecting backend references (an ACL's are noted by its rule).
pub fn uncollected<R>(f: impl FnOnce() -> R) -> R {
    let outer = BACKEND_REFS.take();
    let r = f();
    BACKEND_REFS.set(outer);
    r
}

fn note_backend_ref(source: &Source) {
    BACKEND_REFS.with_borrow_mut(|refs| {
        if let (Some(refs), Some(r)) = (refs.as_mut(), BackendRef::of(source)) {
            refs.push(r);
        }
    });
}

/// A sample fetch in a health check's format (`http-check send hdr`, `uri-lf`, `on-error`
/// ...) or rule (`set-var`, `status-code`): those of [`parse_fetch`], the checked server's
/// own (`srv_name`, `srv_id`, `be_id`), variables (`var`) and constants (`int`, `str`,
/// `bool`), which only health checks know in hapx.
pub fn parse_check_fetch(text: &str) -> Result<Fetch, AclError> {
    let (name, args, convs) = split_call(text)?;
    let args = non_empty(&args);
    let fact = match name {
        "srv_name" | "srv_id" | "be_id" if !args.is_empty() => {
            return Err(format!("fetch method '{name}' does not take any argument").into());
        }
        "srv_name" => CheckedFact::ServerName,
        "srv_id" => CheckedFact::ServerId,
        "be_id" => CheckedFact::BackendId,
        "int" | "str" | "bool" | "var" => checked_value(name, &args)?,
        _ => return parse_fetch(text),
    };
    let source = Source::Checked(fact);
    let converters = converter::parse_chain(convs, source.kind()).map_err(|e| {
        e.context(|m| match m.starts_with("unknown converter") {
            true => format!("ACL keyword '{name}' : {m}."),
            false => format!("{m} in ACL expression '{text}'"),
        })
    })?;
    Ok(Fetch { source, converters })
}

/// `int(N)`, `str(S)`, `bool(B)` or `var(NAME[,DEFAULT])`, refused with HAProxy's words.
fn checked_value(name: &str, args: &[&str]) -> Result<CheckedFact, String> {
    let most = if name == "var" { 2 } else { 1 };
    if args.len() > most {
        return Err(format!(
            "fetch method '{name}' : expected ')' before ',{})'",
            args[most..].join(",")
        ));
    }
    let arg = args.first().copied().unwrap_or_default();
    let integer = || {
        if arg.is_empty() {
            return Err(format!(
                "fetch method '{name}' : expected type 'integer' at position 1, but got nothing"
            ));
        }
        // HAProxy's integer argument: saturated when too large.
        read_int64(arg).ok_or_else(|| {
            format!(
                "fetch method '{name}' : failed to parse '{arg}' as type 'integer' at position 1"
            )
        })
    };
    // HAProxy's `smp_check_const_bool`, without regard to case.
    let boolean = || match arg.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "invalid args in fetch method '{name}' : Expects 'true', 'false', '0' or '1'"
        )),
    };
    Ok(match name {
        "int" => CheckedFact::Int(integer()?),
        "bool" => CheckedFact::Bool(boolean()?),
        "str" => CheckedFact::Str(arg.into()),
        _ => {
            check_var_name(arg).map_err(|m| format!("invalid args in fetch method 'var' : {m}"))?;
            CheckedFact::Var(Box::new((
                arg.to_string(),
                args.get(1).map(|d| d.to_string()),
            )))
        }
    })
}

/// The scopes a variable's name starts with, in HAProxy's order.
pub const VAR_SCOPES: [&str; 6] = ["proc", "sess", "txn", "req", "res", "check"];

/// A variable action's keyword, `set-var(NAME[,COND...])`, `set-var-fmt(NAME[,COND...])`
/// or `unset-var(NAME)`, as HAProxy reads it in traffic and check rules alike: the action,
/// the variable's name and the conditions of a set; or HAProxy's message, without its
/// full stop.
pub fn var_action(keyword: &str) -> Result<(&str, &str, Conditions), String> {
    const EXPECTS: &str =
        "Expects 'set-var(<var-name>)', 'set-var-fmt(<var-name>)' or 'unset-var(<var-name>)'";
    let Some((action, inner)) = keyword.split_once('(') else {
        return Err(format!(
            "invalid or incomplete action '{keyword}'. {EXPECTS}"
        ));
    };
    let inner = (inner.strip_suffix(')'))
        .ok_or_else(|| format!("incomplete argument after action '{keyword}'. {EXPECTS}"))?;
    let end = (inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_')))
        .unwrap_or(inner.len());
    let (name, rest) = inner.split_at(end);
    let conditions = match rest.strip_prefix(',') {
        _ if rest.is_empty() => Conditions::default(),
        Some("") => Conditions::default(),
        Some(_) if action == "unset-var" => {
            return Err("unset-var does not expect parameters after the variable name. Only \"set-var\" and \"set-var-fmt\" manage conditions".into());
        }
        Some(words) => Conditions::parse(words.split(','))?,
        None => return Err(format!("invalid syntax at char '{rest})'")),
    };
    check_var_name(name)?;
    Ok((action, name, conditions))
}

/// A variable's name (`SCOPE.NAME`) as HAProxy accepts it, or its message; a `proc` one
/// exists from then on ([`crate::runtime::vars::declare`]).
pub fn check_var_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Empty variable name cannot be accepted".into());
    }
    let scoped = (name.split_once('.'))
        .is_some_and(|(scope, rest)| VAR_SCOPES.contains(&scope) && !rest.is_empty());
    if !scoped {
        return Err(format!(
            "invalid variable name '{name}'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
        ));
    }
    // HAProxy registers a process variable as the configuration names it; one that does
    // not fit `tune.vars.proc-max-size` fails without a message of its own.
    if !crate::runtime::vars::declare(name) {
        return Err("(null)".into());
    }
    Ok(())
}

/// [`parse_fetch`] (`in_acl`: as an ACL's criterion), converter errors worded as HAProxy
/// does for the ACL keyword `acl_keyword`
/// (`ACL keyword 'path' : ...`) or, for a plain fetch, `... in ACL expression 'TEXT'` (which
/// log formats cut back to the message).
fn fetch_as(text: &str, acl_keyword: Option<&str>, in_acl: bool) -> Result<Fetch, AclError> {
    // A fetch's argument errors name the ACL expression in an ACL (not for an ACL keyword).
    let in_expression = |e: AclError| match (acl_keyword, in_acl) {
        (None, true) => e.context(|m| format!("{m} in ACL expression '{text}'")),
        _ => e,
    };
    let (name, args, convs) = split_call(text).map_err(|m| match acl_keyword {
        // An ACL keyword's fetch (`hdr_beg(host` reads `hdr(host`) is named as written.
        Some(kw) => AclError::from(format!("ACL keyword '{kw}' : expected ')'")),
        None => in_expression(m.into()),
    })?;
    let source = match HeaderFetch::parse(name, &args) {
        Some(Ok(header)) => Some(Source::Header(header)),
        Some(Err(m)) => {
            let who = acl_keyword.map_or_else(
                || format!("fetch method '{name}'"),
                |kw| format!("ACL keyword '{kw}'"),
            );
            return Err(in_expression(format!("{who} : {m}").into()));
        }
        // The DN fetches read their arguments by position, empty ones included.
        None => match cert_field(name, &args) {
            Some(field) => Some(Source::SslClientCert(
                field.map_err(|m| in_expression(m.into()))?,
            )),
            None => source(name, &non_empty(&args)).map_err(in_expression)?,
        },
    };
    let Some(source) = source else {
        if keywords::FETCHES.contains(&name) || keywords::ACL_KEYWORDS.contains(&name) {
            return Err(AclError::Unsupported(format!("the sample fetch '{name}'")));
        }
        return Err(format!("unknown fetch method '{name}' in ACL expression '{text}'").into());
    };
    let chain = super::stick::converting(name, || converter::parse_chain(convs, source.kind()));
    let converters = chain.map_err(|e| {
        e.context(
            |m| match (acl_keyword, m.starts_with("unknown converter")) {
                (_, true) => format!("ACL keyword '{name}' : {m}."),
                (Some(kw), false) => format!("ACL keyword '{kw}' : {m}."),
                (None, false) => format!("{m} in ACL expression '{text}'"),
            },
        )
    })?;
    Ok(Fetch { source, converters })
}

/// An ACL criterion: a fetch, or an ACL keyword that is a fetch with a method
/// (`path_beg`, `hdr_dom(host)`, `req_ssl_sni`).
fn parse_criterion(text: &str) -> Result<(Fetch, Option<Method>), AclError> {
    // Its arguments are read (and refused) with the fetch's.
    let name = &text[..text.find(['(', ',']).unwrap_or(text.len())];
    let acl_keyword = keywords::ACL_KEYWORDS.contains(&name).then_some(name);
    if name == "http_auth_group" {
        return Ok((fetch_as(text, acl_keyword, true)?, Some(Method::Auth)));
    }
    if name.starts_with("capture.") {
        let fetch = fetch_as(text, acl_keyword, true)?;
        refuse_kept(&fetch)?;
        return Ok((fetch, None));
    }
    if let Some((base, suffix)) = name.rsplit_once('_') {
        let method = match suffix {
            "beg" => Some(Method::Beg),
            "end" => Some(Method::End),
            "sub" => Some(Method::Sub),
            "reg" => Some(Method::Reg),
            "dir" => Some(Method::Dir),
            "dom" => Some(Method::Dom),
            "len" => Some(Method::Len),
            "ip" => Some(Method::Ip),
            _ => None,
        };
        // `hdr_ip` (`shdr_ip`, `req.hdr_ip`) is a fetch of its own, which reads addresses
        // as `url2ipv4` (`1.2.3.4:80`).
        let own_fetch = HeaderFetch::parse(name, &[]).is_some();
        let derivable = !own_fetch
            && matches!(
                base,
                "path" | "url" | "base" | "hdr" | "shdr" | "req.hdr" | "cook" | "urlp"
            );
        if let (Some(m), true) = (method, derivable) {
            let rest = &text[name.len()..];
            return Ok((
                fetch_as(&format!("{base}{rest}"), acl_keyword, true)?,
                Some(m),
            ));
        }
    }
    Ok((fetch_as(text, acl_keyword, true)?, None))
}

/// The fetch named `name` with `args`; None when no such fetch exists.
fn source(name: &str, args: &[&str]) -> Result<Option<Source>, AclError> {
    // Variables (`runtime::vars`) and constants, as a health check's.
    if matches!(name, "var" | "int" | "str" | "bool") {
        return Ok(Some(Source::Checked(checked_value(name, args)?)));
    }
    let arg = |i: usize| args.get(i).map(|a| a.to_string());
    let need_name = |kw: &str| -> Result<String, String> {
        arg(0).ok_or_else(|| format!("ACL keyword '{kw}' : missing argument"))
    };
    // HAProxy's cookie and parameter fetches take every one without a name; hapx reads
    // only the named one, and refuses the rest rather than answer otherwise.
    let named = |kw: &str| -> Result<String, AclError> {
        arg(0).ok_or_else(|| AclError::Unsupported(format!("'{kw}' without a name")))
    };
    Ok(Some(match name {
        "always_true" => Source::AlwaysTrue,
        "always_false" => Source::AlwaysFalse,
        "wait_end" => Source::WaitEnd,
        "src" => Source::Src,
        "src_port" => Source::SrcPort,
        "dst" => Source::Dst,
        "dst_port" => Source::DstPort,
        "fe_name" => Source::FeName,
        "be_name" => Source::BeName,
        "nbsrv" => Source::Nbsrv(arg(0)),
        "srv_is_up" => {
            let spec = need_name(name)?;
            match spec.split_once('/') {
                Some((b, s)) => Source::SrvIsUp(b.into(), s.into()),
                None => Source::OwnSrvIsUp(PARSED_SECTION.with_borrow(String::clone), spec),
            }
        }
        "method" => Source::Method,
        "path" => Source::Path,
        "url" => Source::Url,
        "query" => Source::Query,
        "base" => Source::Base,
        "req.ver" | "req_ver" => Source::ReqVer,
        "req.proto_http" | "req_proto_http" => Source::ProtoHttp,
        _ if name.starts_with("capture.") => match KeptFact::parse(name, args) {
            Some(fact) => Source::Kept(fact?),
            None => return Ok(None),
        },
        "req.cook" | "cook" => Source::ReqCook(named(name)?),
        "res.cook" | "scook" => Source::ResCook(named(name)?),
        "url_param" | "urlp" => Source::UrlParam(named(name)?),
        "env" => Source::Env(need_name(name)?),
        // A missing list is reported by the checks, as HAProxy does.
        "http_auth" => Source::HttpAuth(arg(0).unwrap_or_default()),
        "http_auth_group" => Source::HttpAuthGroup(arg(0).unwrap_or_default()),
        "http_auth_type" => Source::HttpAuthType,
        "http_auth_user" => Source::HttpAuthUser,
        "http_auth_pass" => Source::HttpAuthPass,
        "http_auth_bearer" => Source::HttpAuthBearer(arg(0)),
        "status" => Source::Status,
        "req.len" | "req_len" => Source::ReqLen,
        "req.ssl_sni" | "req_ssl_sni" => Source::SslSni,
        "req.ssl_ver" | "req_ssl_ver" => Source::SslVer,
        "req.ssl_hello_type" | "req_ssl_hello_type" => Source::SslHelloType,
        "req.payload" | "payload" => {
            let [offset, length] = integer_args::<2>(name, args)?;
            Source::Payload(offset as u32, length as u32)
        }
        "req.payload_lv" | "payload_lv" => payload_lv(name, args)?,
        "res.len" => Source::ResLen,
        "res.payload" => {
            let [offset, length] = integer_args::<2>(name, args)?;
            Source::ResPayload(offset as u32, length as u32)
        }
        "res.payload_lv" => match payload_lv(name, args)? {
            Source::PayloadLv(offset, size, at) => Source::ResPayloadLv(offset, size, at),
            _ => unreachable!("payload_lv parses a PayloadLv"),
        },
        "res.ssl_hello_type" | "rep_ssl_hello_type" => Source::ResSslHelloType,
        "req.rdp_cookie" | "rdp_cookie" => Source::RdpCookie(optional_string(name, args)?),
        "req.rdp_cookie_cnt" | "rdp_cookie_cnt" => {
            Source::RdpCookieCnt(optional_string(name, args)?)
        }
        "ssl_fc" => Source::SslFc,
        "ssl_fc_sni" => Source::SslFcSni,
        "ssl_fc_protocol" => Source::SslFcProtocol,
        "ssl_fc_cipher" => Source::SslFcCipher,
        "ssl_fc_alpn" => Source::SslFcAlpn,
        "ssl_c_used" => Source::SslCUsed,
        "ssl_c_verify" => Source::SslCVerify,
        "ssl_fc_has_crt" => Source::SslFcHasCrt,
        "ssl_fc_has_sni" => Source::SslFcHasSni,
        "ssl_fc_is_resumed" => Source::SslFcIsResumed,
        "ssl_fc_use_keysize" | "ssl_fc_alg_keysize" => Source::SslFcKeysize,
        "ssl_c_err" | "ssl_c_ca_err" | "ssl_c_ca_err_depth" => Source::SslCVerifyError,
        _ => match super::stick::parse_fetch(name, args) {
            Some(f) => Source::Stick(f?),
            None => return Ok(None),
        },
    }))
}

/// The `N` integer arguments of fetch `name`, all required, with HAProxy's messages (read
/// as its `read_int64`: a sign and digits, nothing else).
fn integer_args<const N: usize>(name: &str, args: &[&str]) -> Result<[i64; N], String> {
    let mut out = [0; N];
    if args.is_empty() {
        return Err(format!(
            "fetch method '{name}' : expected type 'integer' at position 1, but got nothing"
        ));
    }
    if args.len() > N {
        return Err(format!(
            "fetch method '{name}' : expected ')' before ',{})'",
            args[N..].join(",")
        ));
    }
    for (i, out) in out.iter_mut().enumerate() {
        let Some(arg) = args.get(i) else {
            return Err(format!(
                "fetch method '{name}' : missing arguments (got {i}/{N}), type 'integer' expected"
            ));
        };
        let digits = arg.strip_prefix(['-', '+']).unwrap_or(arg);
        // Saturated past 64 bits, as HAProxy's (`99999999999999999999` is accepted).
        *out = match read_int64(arg) {
            Some(n) if !digits.is_empty() => n,
            _ => {
                return Err(format!(
                    "fetch method '{name}' : failed to parse '{arg}' as type 'integer' at position {}",
                    i + 1
                ));
            }
        };
    }
    Ok(out)
}

/// Where `payload_lv` takes its bytes: HAProxy's `val_payload_lv` encoding of the third
/// argument kept as is, quirk included. A signed offset (`+N`, `-N`) is relative to the end
/// of the length field, stored as `N << 1 | 1`; an unsigned one is stored unshifted, yet
/// read back shifted like every other (`>> 1`), so `10` takes the bytes at 5 and an odd `11`
/// reads as relative `+5`. HAProxy 2.6 does exactly that on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LvData {
    /// Right after the length field.
    Follows,
    Encoded(i64),
}

impl LvData {
    /// The offset of the data, the length field being `size` bytes at `offset` (unsigned
    /// 32-bit arithmetic, as HAProxy's).
    pub fn offset(self, offset: u32, size: u32) -> u32 {
        let after = offset.wrapping_add(size);
        match self {
            LvData::Follows => after,
            LvData::Encoded(e) if e & 1 == 1 => after.wrapping_add((e >> 1) as u32),
            LvData::Encoded(e) => (e >> 1) as u32,
        }
    }
}

/// `payload_lv(offset1,length1[,offset2])` checked as HAProxy's `val_payload_lv`.
fn payload_lv(name: &str, args: &[&str]) -> Result<Source, String> {
    let third = args.get(2).copied().filter(|a| !a.is_empty());
    let [offset, length] =
        integer_args::<2>(name, args.get(..2).unwrap_or(args)).and_then(|v| match args.get(3) {
            Some(_) => Err(format!(
                "fetch method '{name}' : expected ')' before ',{})'",
                args[3..].join(",")
            )),
            None => Ok(v),
        })?;
    let invalid = |m: &str| format!("invalid args in fetch method '{name}' : {m}");
    if offset < 0 {
        return Err(invalid("payload offset1 must be positive"));
    }
    if length == 0 {
        return Err(invalid("payload length must be > 0"));
    }
    let data = match third {
        None => LvData::Follows,
        Some(text) => {
            let relative = text.starts_with(['+', '-']);
            let n = read_int64(text).ok_or_else(|| invalid("payload offset2 is not a number"))?;
            if offset.wrapping_add(length).wrapping_add(n) < 0 {
                return Err(invalid("payload offset2 too negative"));
            }
            LvData::Encoded(if relative { (n << 1) + 1 } else { n })
        }
    };
    Ok(Source::PayloadLv(offset as u32, length as u32, data))
}

/// HAProxy's `read_int64` on a whole argument: an optional sign then digits (none is 0);
/// None when anything else follows.
fn read_int64(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // HAProxy saturates to LLONG_MAX/LLONG_MIN on overflow and still reads every digit, so
    // `99999999999999999999` is a (too large) number and `99999999999999999999x` is not one.
    let mut n: Option<i64> = Some(0);
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n
            .and_then(|n| n.checked_mul(10))
            .and_then(|n| n.checked_add(i64::from(c - b'0')));
    }
    Some(match (n, negative) {
        (Some(n), true) => -n,
        (Some(n), false) => n,
        (None, true) => i64::MIN,
        (None, false) => i64::MAX,
    })
}

/// The one optional string argument of fetch `name`.
fn optional_string(name: &str, args: &[&str]) -> Result<Option<String>, String> {
    match args {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        [_, rest @ ..] => Err(format!(
            "fetch method '{name}' : expected ')' before ',{})'",
            rest.join(",")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_fetches_are_read_in_formats_only() {
        let uri = parse_format_fetch("capture.req.uri").map(|f| f.source);
        assert_eq!(uri, Ok(Source::Kept(KeptFact::RequestUri)));
        let slot = parse_format_fetch("capture.res.hdr(2)").map(|f| f.layer());
        assert_eq!(slot, Ok(Layer::Response));
        let unread = parse_format_fetch("capture.req.hdr").map(|f| f.source);
        assert!(matches!(unread, Err(AclError::Bad(m)) if m.contains("expected type 'integer'")));
        let extra = parse_format_fetch("capture.req.ver(1)").map(|f| f.source);
        assert!(matches!(extra, Err(AclError::Bad(m)) if m.contains("expected ')'")));
        for elsewhere in [
            parse_fetch("capture.req.uri"),
            parse_criterion("capture.req.method").map(|c| c.0),
        ] {
            assert!(
                matches!(elsewhere, Err(AclError::Unsupported(_))),
                "{elsewhere:?}"
            );
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn dn_fetches_read_their_arguments_by_position() {
        let part = |text: &str| match parse_fetch(text).map(|f| f.source) {
            Ok(Source::SslClientCert(CertField::SubjectDn(part))) => Ok(part),
            other => Err(format!("{other:?}")),
        };
        let entry =
            |name: &str, occurrence| DnPart::Entry(Box::new((name.to_string(), occurrence)));
        assert_eq!(part("ssl_c_s_dn"), Ok(DnPart::Whole));
        assert_eq!(part("ssl_c_s_dn()"), Ok(DnPart::Whole));
        assert_eq!(part("ssl_c_s_dn(cn)"), Ok(entry("cn", 1)));
        assert_eq!(part("ssl_c_s_dn(OU,-2)"), Ok(entry("OU", -2)));
        // An entry wins over the format.
        assert_eq!(part("ssl_c_s_dn(cn,1,rfc2253)"), Ok(entry("cn", 1)));
        assert_eq!(part("ssl_c_s_dn(,1,rfc2253)"), Ok(DnPart::Rfc2253));
        // An empty occurrence ends HAProxy's list: what follows is unexpected.
        assert!(
            part("ssl_c_s_dn(,,rfc2253)")
                .unwrap_err()
                .contains("expected ')' before ',rfc2253)'")
        );
        assert!(
            part("ssl_c_s_dn(cn,x)")
                .unwrap_err()
                .contains("failed to parse 'x'")
        );
        assert!(
            part("ssl_c_s_dn(cn,1,ldap)")
                .unwrap_err()
                .contains("only rfc2253")
        );
        assert!(parse_fetch("ssl_c_serial(1)").is_err());
        assert!(parse_fetch("ssl_c_serial()").is_ok());
    }

    #[test]
    fn binary_samples_match_hex_patterns_with_m_bin_only() {
        let parse = |l: &str| parse_expr(&words(l), &mut Vec::new());
        let e = parse("req.payload(0,2) -m bin 0300 16").unwrap();
        assert!(
            matches!(e.patterns.as_slice(), [Pattern::Bin(a), Pattern::Bin(b)] if a == &[3, 0] && b == &[0x16])
        );
        let bad = |l: &str| match parse(l) {
            Err(AclError::Bad(m)) => m,
            other => panic!("{l}: {other:?}"),
        };
        assert_eq!(
            bad("req.payload(0,2) 0300"),
            "matching method must be specified first (using '-m') when using a sample fetch of this type ('req.payload')"
        );
        assert_eq!(
            bad("req.payload(0,2) -m bin 030"),
            "an even number of hex digit is expected"
        );
        assert_eq!(
            bad("req.payload(0,2) -m bin 03zz"),
            "an hex digit is expected (found 'z')"
        );
        assert!(bad("req.payload(0) -m bin 03").contains("missing arguments (got 1/2)"));
        let rdp = parse("req.rdp_cookie_cnt(mstshash) gt 0").unwrap();
        assert_eq!(
            rdp.fetch.source,
            Source::RdpCookieCnt(Some("mstshash".into()))
        );
        assert_eq!(rdp.fetch.layer(), Layer::L6);
        let lv = |l: &str| parse(l).map(|e| e.fetch.source);
        assert_eq!(
            lv("req.payload_lv(0,2,+1) -m bin 41"),
            Ok(Source::PayloadLv(0, 2, LvData::Encoded(3)))
        );
        assert_eq!(
            lv("payload_lv(1,1,) -m bin 41"),
            Ok(Source::PayloadLv(1, 1, LvData::Follows))
        );
        for (args, m) in [
            ("-1,1", "payload offset1 must be positive"),
            ("0,0", "payload length must be > 0"),
            ("0,1,+1x", "payload offset2 is not a number"),
            ("0,1,-2", "payload offset2 too negative"),
            // read_int64 saturates: LLONG_MAX + 1 wraps negative in HAProxy's check.
            ("0,1,99999999999999999999", "payload offset2 too negative"),
            ("0,1,-99999999999999999999", "payload offset2 too negative"),
            (
                "0,1,99999999999999999999x",
                "payload offset2 is not a number",
            ),
        ] {
            let e = bad(&format!("req.payload_lv({args}) -m bin 41"));
            assert!(
                e.contains(&format!(
                    "invalid args in fetch method 'req.payload_lv' : {m}"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn criteria_and_flags() {
        let e = parse_expr(&words("hdr_beg(host) -i WWW."), &mut Vec::new()).unwrap();
        let host = HeaderFetch::parse("hdr", &["host".into()]);
        assert_eq!(
            Some(e.fetch.source),
            host.map(|h| Source::Header(h.unwrap()))
        );
        assert_eq!(e.method, Method::Beg);
        assert!(matches!(&e.patterns[..], [Pattern::Str(s)] if s == "www."));
        let e = parse_expr(&words("dst_port 80 1024: lt 10"), &mut Vec::new()).unwrap();
        assert!(matches!(
            e.patterns[..],
            [
                Pattern::Int(80, 80),
                Pattern::Int(1024, i64::MAX),
                Pattern::Int(i64::MIN, 9)
            ]
        ));
        let e = parse_expr(&words("path,lower -m reg ^/a"), &mut Vec::new()).unwrap();
        assert_eq!(e.fetch.converters, [Converter::Lower]);
        let bad = |w: &str| match parse_expr(&words(w), &mut Vec::new()) {
            Err(AclError::Bad(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(bad("nosuch x").contains("unknown fetch method 'nosuch'"));
        assert!(bad("src 300.1.1.1").contains("is not a valid IPv4 or IPv6 address"));
        assert_eq!(
            parse_expr(&words("ssl_bc"), &mut Vec::new()).unwrap_err(),
            AclError::Unsupported("the sample fetch 'ssl_bc'".into())
        );
        let mut w = Vec::new();
        parse_expr(&words("path_beg"), &mut w).unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn integer_operators_become_haproxys_ranges() {
        let texts = words("gt 5 le 3 7:9 eq 4 lt 2 ge 1 -5");
        assert_eq!(
            parse_expr(&words("req.hdr_val(x) -5"), &mut Vec::new()).map(|_| ()),
            Err(AclError::Bad("'-5' is not a valid ACL option. Please use '--' before any pattern beginning with a '-'".into()))
        );
        assert_eq!(
            int_texts(&texts).expect("numbers"),
            ["6:", ":3", "7:9", "4", ":1", "1:", "-5"]
        );
        assert!(int_texts(&words("gt x")).is_err());
        let e = parse_expr(&words("req.hdr_val(x) -- gt 5 -5"), &mut Vec::new()).expect("parses");
        assert!(matches!(
            e.patterns[..],
            [Pattern::Int(6, i64::MAX), Pattern::Int(i64::MIN, 5)]
        ));
    }

    #[test]
    fn conditions() {
        let mut set = AclSet::default();
        set.declare(&words("a path /a"), &mut Vec::new()).unwrap();
        let c = set
            .condition(
                &words("if a !METH_GET || { src 10.0.0.0/8 } or"),
                &mut Vec::new(),
            )
            .unwrap();
        assert_eq!(c.suites.len(), 2);
        assert_eq!(c.suites[0].len(), 2);
        assert!(c.suites[0][1].negate);
        assert_eq!(set.acls[c.suites[0][1].acl].name, "METH_GET");
        assert_eq!(
            set.condition(&words("if nope"), &mut Vec::new()),
            Err(AclError::Bad("no such ACL : 'nope'".into()))
        );
        assert!(matches!(
            set.condition(&words("if { path /x"), &mut Vec::new()),
            Err(AclError::Bad(m)) if m.contains("missing closing '}'")
        ));
    }
}
