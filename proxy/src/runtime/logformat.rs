//! HAProxy 2.6's custom log formats (`log-format`, `unique-id-format`, `log-format-sd`,
//! `error-log-format`; configuration manual section 8.2.4), compiled once and rendered per
//! log line.
//!
//! A format is compiled at configuration check into a list of [`Node`]s: literal text,
//! separators (each space; one is written only after something that is not a space, so runs
//! merge and leading ones vanish, as in HAProxy) and `%` variables with their `%{+Q,+X,+E}` flags.
//! `option tcplog`, `option httplog` and `option httplog clf` are HAProxy's own predefined
//! format strings compiled by the same engine ([`TCP_LOG`], [`HTTP_LOG`], [`CLF_HTTP_LOG`]).
//!
//! Rendering reads an [`Entry`] (the facts of one connection or request, borrowed from the
//! session) into a caller's reused `String`: nothing is allocated per line once the buffer
//! has grown. Values are written the way HAProxy 2.6 writes them: `-` for an absent text
//! (`""` when quoted), request lines and URIs with `"` `#` and control bytes as `#XX`,
//! captured headers with `"#{|}` too, `+E` escaping `"` `\` `]` with a backslash, `+X`
//! printing addresses, ports and counters in upper-case hexadecimal.
//!
//! The same compiler reads the values of rules (`http-request set-header X-Client %ci:%cp`,
//! `redirect location`, `set-path` ...), which HAProxy 2.6 also takes as log formats, with its
//! `LOG_OPT_HTTP` differences ([`LogFormat::compile_value`]): spaces are kept as written, an
//! absent value writes nothing (not `-`), and a fetched sample is written as a header value
//! may hold it (control bytes as `%XX`, never quoted). A value without `%` is a
//! [`LogFormat::literal`], which costs nothing per request.
//!
//! Health checks' formats ([`LogFormat::compile_check`], rendered by
//! [`super::check_format`]) are read as HAProxy 2.6 reads them there: spaces kept, absent
//! values writing nothing, the fetches a check has (the checked server's `srv_name`,
//! `srv_id`, `be_id` among them) and a few variables (`%b %s %f %H %pid %Ts %si %sp`, and
//! `%ci %cp %ID`, which a check never has).
//!
//! `%[fetch,converter...]` expressions are parsed by the ACL module
//! ([`crate::config::acl::parse_fetch`]) and evaluated by whoever renders through a
//! [`Samples`] source ([`super::sample`] on the session's connection and messages); a fetch
//! with no value shows as `-`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::acl::{self, Fetch};
use crate::config::model::Mode;

/// Evaluates `%[fetch]` expressions for one line.
pub trait Samples: std::fmt::Debug {
    /// The fetch's last value as text, if it has one.
    fn text(&self, fetch: &Fetch) -> Option<String>;
}

/// `%[fetch]` where rules run or a session logs: the fetch's last value there.
impl Samples for crate::runtime::sample::Context<'_> {
    fn text(&self, fetch: &Fetch) -> Option<String> {
        crate::runtime::sample::fetch_last(fetch, self).map(|s| s.to_text())
    }
}

/// `option tcplog`.
pub const TCP_LOG: &str = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";
/// `option httplog`.
pub const HTTP_LOG: &str = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
/// `option httplog clf`: the Common Log Format followed by HAProxy's fields.
pub const CLF_HTTP_LOG: &str = "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl";
/// The structured-data part of RFC 5424 lines when `log-format-sd` is not set.
pub const DEFAULT_SD: &str = "- ";

/// A compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    nodes: Vec<Node>,
    /// The `%[...]` expressions, which [`Node::Sample`] index.
    fetches: Vec<Fetch>,
    /// A rule's value (HAProxy's `LOG_OPT_HTTP`): samples are written as header values.
    value: bool,
}

/// One piece of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    /// A run of spaces in a format that merges them: one space, never two in a row nor
    /// at the start of the line.
    Separator,
    Var(Var, Flags),
    Sample(usize, Flags),
    /// A variable that never has a value where the format is rendered (a health check's
    /// client address, unique id): written as an absent text.
    Absent(Flags),
}

/// A variable's `%{...}` options (HAProxy's `LOG_OPT_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `+Q`: the value between double quotes.
    pub quote: bool,
    /// `+X`: addresses, ports and counters in hexadecimal.
    pub hex: bool,
    /// `+E`: `"`, `\` and `]` escaped with a backslash.
    pub escape: bool,
    /// `+M`: an absent value is written `-` (on in log lines, off in rule values).
    pub mandatory: bool,
}

/// The variables HAProxy 2.6 knows (the `%o` pseudo-variable only sets defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ClientIp,
    ClientPort,
    FrontendIp,
    FrontendPort,
    ServerIp,
    ServerPort,
    BackendIp,
    BackendPort,
    Frontend,
    FrontendXprt,
    Backend,
    Server,
    Hostname,
    UniqueId,
    Status,
    BytesOut,
    BytesIn,
    Ta,
    Tc,
    Td,
    Th,
    Ti,
    Tq,
    Tr,
    TR,
    Tt,
    Tu,
    Tw,
    Timestamp,
    Millis,
    Date,
    DateGmt,
    DateLocal,
    ReqDate,
    ReqDateGmt,
    ReqDateLocal,
    Pid,
    RequestCounter,
    LogCounter,
    TermState,
    TermStateCookie,
    ActConn,
    FeConn,
    BeConn,
    SrvConn,
    Retries,
    SrvQueue,
    BckQueue,
    ReqHeaders,
    RespHeaders,
    ReqHeaderList,
    RespHeaderList,
    Request,
    Method,
    Uri,
    Path,
    PathOnly,
    Query,
    Version,
    ClientCookie,
    ServerCookie,
    /// `%sslc`, `%sslv`: the client connection's TLS cipher and version.
    SslCipher,
    SslVersion,
}

/// Name, variable, and whether only HTTP-mode proxies may use it (HAProxy's table).
const VARS: &[(&str, Var, bool)] = &[
    ("B", Var::BytesOut, false),
    ("CC", Var::ClientCookie, true),
    ("CS", Var::ServerCookie, true),
    ("H", Var::Hostname, false),
    ("HM", Var::Method, true),
    ("HP", Var::Path, true),
    ("HPO", Var::PathOnly, true),
    ("HQ", Var::Query, true),
    ("HU", Var::Uri, true),
    ("HV", Var::Version, true),
    ("ID", Var::UniqueId, false),
    ("ST", Var::Status, false),
    ("T", Var::DateGmt, false),
    ("Ta", Var::Ta, true),
    ("Tc", Var::Tc, false),
    ("Td", Var::Td, false),
    ("Th", Var::Th, false),
    ("Ti", Var::Ti, true),
    ("Tl", Var::DateLocal, false),
    ("Tq", Var::Tq, true),
    ("TR", Var::TR, true),
    ("Tr", Var::Tr, true),
    ("Ts", Var::Timestamp, false),
    ("Tt", Var::Tt, false),
    ("Tu", Var::Tu, false),
    ("Tw", Var::Tw, false),
    ("U", Var::BytesIn, false),
    ("ac", Var::ActConn, false),
    ("b", Var::Backend, false),
    ("bc", Var::BeConn, false),
    ("bi", Var::BackendIp, false),
    ("bp", Var::BackendPort, false),
    ("bq", Var::BckQueue, false),
    ("ci", Var::ClientIp, false),
    ("cp", Var::ClientPort, false),
    ("f", Var::Frontend, false),
    ("fc", Var::FeConn, false),
    ("fi", Var::FrontendIp, false),
    ("fp", Var::FrontendPort, false),
    ("ft", Var::FrontendXprt, false),
    ("hr", Var::ReqHeaders, false),
    ("hrl", Var::ReqHeaderList, false),
    ("hs", Var::RespHeaders, false),
    ("hsl", Var::RespHeaderList, false),
    ("lc", Var::LogCounter, false),
    ("ms", Var::Millis, false),
    ("pid", Var::Pid, false),
    ("r", Var::Request, true),
    ("rc", Var::Retries, false),
    ("rt", Var::RequestCounter, false),
    ("s", Var::Server, false),
    ("sc", Var::SrvConn, false),
    ("si", Var::ServerIp, false),
    ("sp", Var::ServerPort, false),
    ("sq", Var::SrvQueue, false),
    ("sslc", Var::SslCipher, false),
    ("sslv", Var::SslVersion, false),
    ("t", Var::Date, false),
    ("tr", Var::ReqDate, true),
    ("trg", Var::ReqDateGmt, true),
    ("trl", Var::ReqDateLocal, true),
    ("ts", Var::TermState, false),
    ("tsc", Var::TermStateCookie, false),
];

/// The variables' names, for the documentation and tests.
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    VARS.iter().map(|v| v.0)
}

impl LogFormat {
    /// Compiles `text` for a proxy in `mode`, rendered at the end of a session; the error
    /// reads as HAProxy's, after "failed to parse log-format : ".
    pub fn compile(text: &str, mode: Mode) -> Result<LogFormat, String> {
        Self::compile_at(text, mode, Stage::LogEnd)
    }

    /// [`LogFormat::compile`] for a format rendered at `stage`.
    pub fn compile_at(text: &str, mode: Mode, stage: Stage) -> Result<LogFormat, String> {
        Compiler::new(mode, stage, false, true).run(text)
    }

    /// [`LogFormat::compile_at`], and whether the format holds anything, compiled or not:
    /// HAProxy keeps what it read of a format before an error in it, and warns about a
    /// proxy that has no log address for a format that holds something.
    pub fn compile_kept(text: &str, mode: Mode, stage: Stage) -> (Result<LogFormat, String>, bool) {
        let mut compiler = Compiler::new(mode, stage, false, true);
        let format = compiler.run(text);
        let kept = match &format {
            Ok(f) => !f.is_empty(),
            Err(_) => !compiler.nodes.is_empty(),
        };
        (format, kept)
    }

    /// Compiles `unique-id-format`, which HAProxy 2.6 reads with `LOG_OPT_HTTP |
    /// LOG_OPT_MERGE_SPACES`: spaces merge as in a log line, but an absent value writes
    /// nothing (not `-`, nor `""` when quoted) and samples are written as header values.
    /// HAProxy's warnings (an L6 fetch) go to `warnings`.
    pub fn compile_unique_id(
        text: &str,
        mode: Mode,
        warnings: &mut Vec<String>,
    ) -> Result<LogFormat, String> {
        let mut compiler = Compiler::new(mode, Stage::Request, true, true);
        let format = compiler.run(text);
        warnings.append(&mut compiler.warnings);
        format
    }

    /// Compiles a rule's value rendered at `stage` (`http-request set-header`, `redirect
    /// location`, `set-path` ...: HAProxy's `LOG_OPT_HTTP`); HAProxy's warnings (an L6 fetch
    /// in an HTTP value) go to `warnings`. A bad value's error reads as HAProxy's, after the
    /// rule's context; a fetch or converter hapx does not implement is
    /// [`acl::AclError::Unsupported`], naming it.
    pub fn compile_value(
        text: &str,
        mode: Mode,
        stage: Stage,
        warnings: &mut Vec<String>,
    ) -> Result<LogFormat, acl::AclError> {
        let mut compiler = Compiler::new(mode, stage, true, false);
        let format = compiler.run(text);
        warnings.append(&mut compiler.warnings);
        format.map_err(|m| match compiler.unsupported.take() {
            Some(what) => acl::AclError::Unsupported(what),
            None => acl::AclError::Bad(m),
        })
    }

    /// Compiles a `set-var-fmt` format of a traffic rule or of the global section rendered at
    /// `stage`, which HAProxy 2.6 reads without options: spaces kept as written, an absent
    /// value writing nothing (`""` when quoted), samples written as they are (`+Q` quotes
    /// them). Errors as [`LogFormat::compile_value`]'s.
    pub fn compile_var_format(
        text: &str,
        mode: Mode,
        stage: Stage,
    ) -> Result<LogFormat, acl::AclError> {
        let mut compiler = Compiler::new(mode, stage, false, false);
        compiler.defaults.mandatory = false;
        compiler.l6_read = true;
        let format = compiler.run(text);
        format.map_err(|m| match compiler.unsupported.take() {
            Some(what) => acl::AclError::Unsupported(what),
            None => acl::AclError::Bad(m),
        })
    }

    /// Compiles a health check's format (`http-check send uri-lf`, `hdr`, `body-lf`,
    /// `tcp-check send-lf`, an expect's `on-success`/`on-error`), which HAProxy 2.6 reads
    /// without options: spaces kept as written, an absent value writing nothing (`""`
    /// when quoted). Fetches are those a check has (HAProxy's `SMP_VAL_BE_CHK_RUL`, with
    /// the checked server's `srv_name`, `srv_id`, `be_id`); the variables hapx renders
    /// there are the proxy's and server's names and address, the host name, the pid and
    /// the date, and the client's address and unique id, which a check has not.
    pub fn compile_check(text: &str, mode: Mode) -> Result<LogFormat, acl::AclError> {
        let mut compiler = Compiler::new(mode, Stage::Check, false, false);
        compiler.defaults.mandatory = false;
        let format = compiler.run(text);
        format.map_err(|m| match compiler.unsupported.take() {
            Some(what) => acl::AclError::Unsupported(what),
            None => acl::AclError::Bad(m),
        })
    }

    /// A format writing `text` as it is.
    pub fn text(text: &str) -> LogFormat {
        LogFormat {
            nodes: if text.is_empty() {
                Vec::new()
            } else {
                vec![Node::Text(text.into())]
            },
            fetches: Vec::new(),
            value: true,
        }
    }

    /// The text of a format without variables (rendered by copying it).
    pub fn literal(&self) -> Option<&str> {
        match self.nodes.as_slice() {
            [] => Some(""),
            [Node::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// Whether rendering reads the request line (`%r`, `%HU` ...), which HAProxy shows as
    /// the client sent it, before rules rewrote it.
    pub fn uses_request_line(&self) -> bool {
        self.uses(|v| {
            matches!(
                v,
                Var::Request
                    | Var::Method
                    | Var::Uri
                    | Var::Path
                    | Var::PathOnly
                    | Var::Query
                    | Var::Version
            )
        })
    }

    /// Whether rendering shows a timer or the request's date (`%Ti`, `%Tq`, `%tr` ...),
    /// which need the request's [`Arrival`] measured.
    pub fn uses_timers(&self) -> bool {
        self.uses(|v| {
            matches!(
                v,
                Var::Th
                    | Var::Ti
                    | Var::Tq
                    | Var::TR
                    | Var::Tw
                    | Var::Tc
                    | Var::Tr
                    | Var::Td
                    | Var::Ta
                    | Var::Tt
                    | Var::Tu
                    | Var::ReqDate
                    | Var::ReqDateGmt
                    | Var::ReqDateLocal
            )
        })
    }

    /// Whether the format shows what HAProxy knows at the end of a session (its `LW_BYTES`
    /// variables: timers, byte counts, connection counts, termination state, unique id). A
    /// frontend none of whose formats does (or with `option logasap`) marks `%Ta %Tt %Tu %B`
    /// with `+` wherever they show ([`Entry::partial`]), rule values included.
    pub fn uses_session_end(&self) -> bool {
        self.uses(|v| {
            matches!(
                v,
                Var::UniqueId
                    | Var::Ta
                    | Var::Tc
                    | Var::Th
                    | Var::Ti
                    | Var::Tq
                    | Var::Tr
                    | Var::TR
                    | Var::Td
                    | Var::Tt
                    | Var::Tu
                    | Var::Tw
                    | Var::BytesOut
                    | Var::BytesIn
                    | Var::ActConn
                    | Var::BeConn
                    | Var::BckQueue
                    | Var::FeConn
                    | Var::Retries
                    | Var::SrvConn
                    | Var::SrvQueue
                    | Var::TermState
            )
        })
    }

    /// Whether the format shows a value HAProxy may mark partial with `+` (`%Ta %Tt %Tu %B`).
    pub fn uses_partial_marks(&self) -> bool {
        self.uses(|v| matches!(v, Var::Ta | Var::Tt | Var::Tu | Var::BytesOut))
    }

    /// Whether rendering shows the server connection's addresses (`%si %sp %bi %bp`).
    pub fn uses_server_addrs(&self) -> bool {
        self.uses(|v| {
            matches!(
                v,
                Var::ServerIp | Var::ServerPort | Var::BackendIp | Var::BackendPort
            )
        })
    }

    /// Whether a variable of the format is one `wanted`.
    fn uses(&self, wanted: impl Fn(Var) -> bool) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n, Node::Var(v, _) if wanted(*v)))
    }

    /// Appends a separator (HAProxy ends `log-format-sd` with one).
    pub fn push_separator(&mut self) {
        self.nodes.push(Node::Separator);
    }

    /// Whether the format writes nothing at all (`log-format ""`).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether a `%[...]` reads the HTTP request or response (HAProxy warns about such a
    /// format in a proxy not in HTTP mode).
    pub fn uses_http_fetches(&self) -> bool {
        (self.fetches.iter())
            .any(|f| matches!(f.layer(), acl::Layer::Request | acl::Layer::Response))
    }

    /// Whether rendering evaluates `%[fetch]` expressions.
    pub fn uses_samples(&self) -> bool {
        !self.fetches.is_empty()
    }

    /// Whether rendering shows the request's number (`%rt`).
    pub fn uses_request_counter(&self) -> bool {
        self.uses(|v| v == Var::RequestCounter)
    }

    /// Whether rendering needs the unique id (`%ID`).
    pub fn uses_unique_id(&self) -> bool {
        self.uses(|v| v == Var::UniqueId)
    }

    /// Appends the line for `entry` to `out`.
    pub fn render(&self, entry: &Entry<'_>, out: &mut String) {
        // As HAProxy: a separator is written only after something that is not a space.
        let mut last_is_space = true;
        for node in &self.nodes {
            match node {
                Node::Separator => {
                    if !last_is_space {
                        out.push(' ');
                        last_is_space = true;
                    }
                }
                Node::Text(t) => {
                    out.push_str(t);
                    last_is_space = false;
                }
                Node::Var(var, flags) => {
                    let before = out.len();
                    render_var(*var, *flags, entry, out);
                    if out.len() > before {
                        last_is_space = false;
                    }
                }
                Node::Sample(i, flags) => {
                    let value = entry.samples.and_then(|s| s.text(&self.fetches[*i]));
                    if self.value {
                        header_value(value.as_deref().unwrap_or_default(), *flags, out);
                    } else {
                        text(value.as_deref(), *flags, out);
                    }
                    last_is_space = false;
                }
                Node::Absent(flags) => text(None, *flags, out),
            }
        }
    }
}

/// When a format is rendered, which decides the `%[fetch]`es it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// With the request head (`unique-id-format`, `http-request` rules).
    Request,
    /// With the response head (`http-response` rules): the request's headers are not
    /// fetched any more, its method is.
    Response,
    /// At the end (log lines): the messages are gone, as in HAProxy; only what the session
    /// keeps (addresses, proxies, the method) may be fetched, and `status`, accepted but
    /// empty then.
    LogEnd,
    /// An `http-error` reply, rendered wherever the proxy answers with it: HAProxy 2.6
    /// accepts any HTTP fetch there (an absent message gives nothing) and only warns about
    /// L6 ones, which are ignored.
    ErrorReply,
    /// A health check's request, data or message ([`LogFormat::compile_check`]).
    Check,
    /// `tcp-request connection` rules: the connection only.
    TcpConnection,
    /// `tcp-request content` rules: the connection, what the client sent, its HTTP request.
    TcpContent,
    /// `tcp-response content` rules: the connection, what the server sent, its HTTP response
    /// (and the request's method).
    TcpResponse,
    /// `set-var-fmt` in the global section, rendered while the configuration is read: no
    /// client, no traffic ([`crate::config::global_vars`]).
    Global,
}

struct Compiler {
    nodes: Vec<Node>,
    fetches: Vec<Fetch>,
    stage: Stage,
    /// Flags set by `%{...}o`, the start of every later variable's.
    defaults: Flags,
    mode: Mode,
    /// A rule's value (`LOG_OPT_HTTP`): samples written as header values, nothing for an
    /// absent one.
    value: bool,
    /// Runs of spaces merge into one separator (`LOG_OPT_MERGE_SPACES`); else they are text.
    merge_spaces: bool,
    /// An HTTP rule's `set-var-fmt`: HAProxy takes its L6 fetches at the rule's stage
    /// silently (no `LOG_OPT_HTTP`, so no "ignored" warning) and evaluates them.
    l6_read: bool,
    warnings: Vec<String>,
    /// What hapx lacks, when that is why the format failed.
    unsupported: Option<String>,
}

impl Compiler {
    /// A compiler for a log line's format, or a value's (`value`: HAProxy's `LOG_OPT_HTTP`,
    /// whose variables write nothing when absent, where a line's write `-`), its runs of
    /// spaces merged or kept as text.
    fn new(mode: Mode, stage: Stage, value: bool, merge_spaces: bool) -> Compiler {
        Compiler {
            nodes: Vec::new(),
            fetches: Vec::new(),
            defaults: Flags {
                mandatory: !value,
                ..Flags::default()
            },
            mode,
            stage,
            value,
            merge_spaces,
            l6_read: false,
            warnings: Vec::new(),
            unsupported: None,
        }
    }

    fn run(&mut self, text: &str) -> Result<LogFormat, String> {
        let bytes = text.as_bytes();
        let mut literal = String::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b' ' if self.merge_spaces => {
                    self.flush(&mut literal);
                    self.nodes.push(Node::Separator);
                    i += 1;
                }
                b'%' => {
                    self.flush(&mut literal);
                    i = self.percent(text, i + 1, &mut literal)?;
                }
                _ => {
                    // Copy the run of plain characters up to the next special one.
                    let special: &[char] = if self.merge_spaces {
                        &['%', ' ']
                    } else {
                        &['%']
                    };
                    let next = i + text[i..].chars().next().map_or(1, char::len_utf8);
                    let end = text[next..].find(special).map_or(text.len(), |n| next + n);
                    literal.push_str(&text[i..end]);
                    i = end;
                }
            }
        }
        self.flush(&mut literal);
        Ok(LogFormat {
            nodes: std::mem::take(&mut self.nodes),
            fetches: std::mem::take(&mut self.fetches),
            value: self.value,
        })
    }

    /// Ends a run of text; one that follows text (`%%` between) joins it.
    fn flush(&mut self, literal: &mut String) {
        if literal.is_empty() {
            return;
        }
        match self.nodes.last_mut() {
            Some(Node::Text(t)) => t.push_str(literal),
            _ => self.nodes.push(Node::Text(std::mem::take(literal))),
        }
        literal.clear();
    }

    /// Reads what follows a `%` at `at`; returns where reading goes on.
    fn percent(&mut self, text: &str, at: usize, literal: &mut String) -> Result<usize, String> {
        let bytes = text.as_bytes();
        let mut i = at;
        let mut args = None;
        match bytes.get(i) {
            None => return Err("truncated line after '%'.".into()),
            Some(b'%') => {
                literal.push('%');
                return Ok(i + 1);
            }
            Some(b'{') => {
                let close = text[i..]
                    .find('}')
                    .ok_or_else(|| format!("truncated line after '{}'.", &text[i + 1..]))?;
                args = Some(&text[i + 1..i + close]);
                i += close + 1;
                match bytes.get(i) {
                    Some(b'[') => {}
                    Some(c) if c.is_ascii_alphanumeric() => {}
                    _ => {
                        return Err(format!(
                            "parse argument modifier without variable name near '%{{{}}}'.",
                            args.unwrap_or_default()
                        ));
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || *c == b' ' || *c == b'\t' => {
                return Err(format!(
                    "unexpected variable name near '{}' at position {at} line : '{text}'. Maybe you want to write a single '%', use the syntax '%%'",
                    *c as char
                ));
            }
            Some(b'[') => {}
            Some(c) if c.is_ascii_alphabetic() => {}
            // HAProxy drops a '%' followed by anything else and keeps the rest as text.
            Some(_) => return Ok(i),
        }
        if bytes.get(i) == Some(&b'[') {
            // HAProxy names the expression with the rest of the format after it.
            let expr = &text[i + 1..];
            let (n, end) = sample_end(expr);
            let parse = match self.stage {
                Stage::Check => acl::parse_check_fetch,
                _ => acl::parse_format_fetch,
            };
            let failed =
                |why: String| format!("failed to parse sample expression <{expr}> : {why}.");
            if n == 0 {
                return Err(failed("missing fetch method".into()));
            }
            let fetch = parse(&expr[..n]).map_err(|e| {
                failed(match e {
                    acl::AclError::Bad(m) => sample_error(m),
                    acl::AclError::Unsupported(what) => {
                        let why = format!("{what} is not implemented by hapx");
                        self.unsupported = Some(what);
                        why
                    }
                })
            })?;
            if end == SampleEnd::EmptyConverter {
                return Err(failed("unknown converter ''".into()));
            }
            match self.unavailable(&fetch) {
                Some(Needs::Missing(needs)) => {
                    return Err(format!(
                        "sample fetch <{expr}> may not be reliably used here because it needs '{needs}' which is not available here."
                    ));
                }
                Some(Needs::IgnoredL6) => self.warnings.push(format!(
                    "L6 sample fetch <{expr}> ignored in HTTP log-format string."
                )),
                Some(Needs::Unimplemented(what)) => {
                    self.unsupported = Some(what.to_string());
                    return Err(format!(
                        "sample fetch <{expr}> reads {what}, which is not implemented by hapx."
                    ));
                }
                None => {}
            }
            let mut flags = self.defaults;
            if let Some(args) = args {
                apply_args(args, &mut flags);
            }
            self.nodes.push(Node::Sample(self.fetches.len(), flags));
            self.fetches.push(fetch);
            // The expression parsed (and added, as HAProxy adds it first: see
            // `LogFormat::compile_kept`), it must end at its `]`.
            return match expr.as_bytes().get(n) {
                Some(b']') => Ok(i + 1 + n + 1),
                Some(&c) if (b' '..=b'~').contains(&c) => Err(format!(
                    "expected ']' after '{}', but found '{}'.",
                    &expr[..n],
                    c as char
                )),
                _ => Err(format!("missing ']' after '{}'.", &expr[..n])),
            };
        }
        let end = text[i..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(text.len(), |n| i + n);
        let name = &text[i..end];
        let mut flags = self.defaults;
        if let Some(args) = args {
            apply_args(args, &mut flags);
        }
        if name == "o" {
            self.defaults = flags;
            return Ok(end);
        }
        let (_, var, http_only) = VARS.iter().find(|v| v.0 == name).ok_or_else(|| {
            format!(
                "no such format variable '{name}'. If you wanted to emit the '%' character verbatim, you need to use '%%'."
            )
        })?;
        if self.stage == Stage::Check {
            return self.check_var(name, *var, flags, end);
        }
        if *http_only && self.mode != Mode::Http {
            return Err(format!(
                "format variable '{name}' is reserved for HTTP mode."
            ));
        }
        let node = match (self.stage, var) {
            // Read while the configuration is: no client, no connection, no request.
            (
                Stage::Global,
                Var::ClientIp
                | Var::ClientPort
                | Var::FrontendIp
                | Var::FrontendPort
                | Var::BackendIp
                | Var::BackendPort
                | Var::ServerIp
                | Var::ServerPort
                | Var::UniqueId,
            ) => Node::Absent(flags),
            _ => Node::Var(*var, flags),
        };
        self.nodes.push(node);
        Ok(end)
    }
}

impl Compiler {
    /// A variable in a health check's format: rendered, absent (a check has no client nor
    /// unique id), or one hapx does not render there (HAProxy shows its session's
    /// timers and counters, which a check has not).
    fn check_var(
        &mut self,
        name: &str,
        var: Var,
        flags: Flags,
        end: usize,
    ) -> Result<usize, String> {
        let node = match var {
            Var::Backend
            | Var::Server
            | Var::Frontend
            | Var::Hostname
            | Var::Pid
            | Var::Timestamp
            | Var::ServerIp
            | Var::ServerPort => Node::Var(var, flags),
            Var::ClientIp | Var::ClientPort | Var::UniqueId => Node::Absent(flags),
            _ => {
                self.unsupported = Some(format!("the format variable '%{name}' in a health check"));
                return Err(format!(
                    "format variable '{name}' is not implemented by hapx in health checks."
                ));
            }
        };
        self.nodes.push(node);
        Ok(end)
    }

    /// What `fetch` needs that is gone when the format is rendered, HAProxy's words.
    fn unavailable(&self, fetch: &Fetch) -> Option<Needs> {
        use acl::{Layer, Source};
        let missing = |what| Some(Needs::Missing(what));
        if self.stage == Stage::Check {
            return Self::unavailable_in_check(fetch);
        }
        if let Source::Kept(fact) = fetch.source {
            return self.kept_unavailable(fact);
        }
        if self.stage == Stage::Global {
            return crate::config::global_vars::unavailable(fetch).map(Needs::Missing);
        }
        match (fetch.layer(), self.stage, &fetch.source) {
            (Layer::L4, ..) => None,
            (Layer::L6 | Layer::Request, Stage::TcpContent, _) => None,
            (Layer::L6Res | Layer::Response, Stage::TcpResponse, _) => None,
            (_, Stage::TcpResponse, Source::Method) => None,
            (Layer::L6, Stage::Request, _) | (Layer::L6Res, Stage::Response, _) if self.l6_read => {
                None
            }
            (Layer::Response, Stage::TcpConnection | Stage::TcpContent, Source::Status) => {
                missing("HTTP response")
            }
            // HAProxy takes them in an HTTP request's rules, with a warning.
            (Layer::L6, Stage::Request | Stage::ErrorReply, _) if self.value => {
                Some(Needs::IgnoredL6)
            }
            (Layer::L6Res, Stage::Response, _) if self.value => Some(Needs::IgnoredL6),
            (_, Stage::ErrorReply, _) => None,
            (Layer::L6, ..) => missing("request buffer"),
            (Layer::L6Res, ..) => missing("response buffer"),
            (Layer::Request, Stage::Request, _) => None,
            (_, Stage::LogEnd, Source::Method | Source::Status) => None,
            (_, Stage::Response, Source::Method) => None,
            (Layer::Request, ..) => missing("HTTP request headers"),
            (Layer::Response, Stage::Request, Source::Status) => missing("HTTP response"),
            (Layer::Response, Stage::Response, _) => None,
            (Layer::Response, ..) => missing("HTTP response headers"),
        }
    }
}

impl Compiler {
    /// What a `capture.*` fetch lacks at the format's stage: HAProxy's `SMP_USE_HRQHP`
    /// (`HRSHP` for the response's), available from the request's (the response's) rules on
    /// and in the log line. hapx keeps what they read for the log line only.
    fn kept_unavailable(&self, fact: acl::KeptFact) -> Option<Needs> {
        match self.stage {
            Stage::LogEnd => None,
            Stage::TcpConnection | Stage::TcpContent | Stage::Global if fact.of_response() => {
                Some(Needs::Missing("HTTP response"))
            }
            Stage::TcpConnection | Stage::Global => Some(Needs::Missing("HTTP request")),
            Stage::Request if fact.of_response() => Some(Needs::Missing("HTTP response")),
            _ => Some(Needs::Unimplemented(
                "what HAProxy keeps for the log line (a 'capture.*' fetch) outside of a log format",
            )),
        }
    }

    /// What a health check lacks for `fetch` (HAProxy's `SMP_VAL_BE_CHK_RUL`): a frontend,
    /// a client connection, what a client sent; the server's response is there.
    fn unavailable_in_check(fetch: &Fetch) -> Option<Needs> {
        use acl::{Layer, Source};
        let missing = |what| Some(Needs::Missing(what));
        match (&fetch.source, fetch.layer()) {
            (Source::FeName, _) => missing("frontend"),
            (
                Source::SslFc
                | Source::SslFcSni
                | Source::SslFcProtocol
                | Source::SslFcCipher
                | Source::SslFcAlpn
                | Source::SslCUsed
                | Source::SslCVerify,
                _,
            ) => missing("client-side connection"),
            (Source::Method | Source::ProtoHttp, _) => missing("HTTP request"),
            // HAProxy reads them from the server's response there.
            (_, Layer::L6Res) | (Source::Payload(..) | Source::PayloadLv(..), _) => Some(
                Needs::Unimplemented("the response's payload in a health check"),
            ),
            (_, Layer::L6) => missing("request buffer"),
            (_, Layer::Request) => missing("HTTP request headers"),
            _ => None,
        }
    }
}

/// What `fetch`, an expression of a health check's rule (`set-var`, `status-code`), needs
/// that a check has not: HAProxy's name of it, or (`Err`) what hapx does not read there.
pub(crate) fn missing_in_check(fetch: &Fetch) -> Option<Result<&'static str, &'static str>> {
    match Compiler::unavailable_in_check(fetch)? {
        Needs::Missing(what) => Some(Ok(what)),
        Needs::Unimplemented(what) => Some(Err(what)),
        Needs::IgnoredL6 => None,
    }
}

/// Why a fetch may not be used where a format is rendered.
enum Needs {
    /// HAProxy's name of the data it needs.
    Missing(&'static str),
    /// An L6 fetch in an HTTP rule's value: accepted with a warning.
    IgnoredL6,
    /// Valid there in HAProxy, not implemented by hapx: what it is.
    Unimplemented(&'static str),
}

/// Where the `%[...]` expression at the start of `expr` ends, as HAProxy's sample parser
/// finds it (`sample_parse_expr`'s end pointer), before its `]` is looked for: a fetch's
/// name (HAProxy's identifier characters), its arguments, then each converter after its
/// commas with its arguments; the first other character ends it. So the expression is
/// parsed (and its errors reported) before a missing or wrong terminator is, as in
/// HAProxy. Arguments end at the first `)` outside quotes, as `make_arg_list` reads them
/// (`regsub('(a)',x)`, `"\""`): a `(` within them opens nothing. Arguments never closed
/// run to the end, for the sample parser to refuse.
///
/// An empty fetch name ends it at 0. Commas followed by something that starts no name end
/// it there ([`SampleEnd::EmptyConverter`]: HAProxy's unknown converter `''`, reported once
/// what comes before parsed).
fn sample_end(expr: &str) -> (usize, SampleEnd) {
    let bytes = expr.as_bytes();
    let name_end = |from: usize| {
        let len = bytes[from..]
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || b"._-+:".contains(&c))
            .count();
        from + len
    };
    let mut at = name_end(0);
    if at == 0 {
        return (0, SampleEnd::Expression);
    }
    loop {
        if bytes.get(at) == Some(&b'(') {
            at = arguments_end(expr, at + 1);
        }
        if bytes.get(at) != Some(&b',') {
            return (at, SampleEnd::Expression);
        }
        let commas = at;
        while bytes.get(at) == Some(&b',') {
            at += 1;
        }
        let name = name_end(at);
        if name == at && at < bytes.len() {
            return (commas, SampleEnd::EmptyConverter);
        }
        at = name;
    }
}

/// How [`sample_end`] found an expression's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleEnd {
    /// After the expression: its `]` is expected there.
    Expression,
    /// At commas that something other than a converter's name follows.
    EmptyConverter,
}

/// Where the arguments starting at `from` (after their `(`) end: after their `)`, or at
/// the end of `expr` when it never comes.
fn arguments_end(expr: &str, from: usize) -> usize {
    let (mut squote, mut dquote) = (false, false);
    let mut chars = expr[from..].char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' if !squote => dquote = !dquote,
            '\'' if !dquote => squote = !squote,
            '\\' if !squote => {
                // Only these escapes take the next character (`\)` still ends them).
                let next = chars.clone().next().map(|(_, n)| n);
                if next.is_some_and(|n| "\\ \"'".contains(n)) {
                    chars.next();
                }
            }
            ')' if !squote && !dquote => return from + at + 1,
            _ => {}
        }
    }
    expr.len()
}

/// The ACL parser's message for a bad fetch, as HAProxy words it in a format.
pub(crate) fn sample_error(m: String) -> String {
    if let Some(at) = m.find(" in ACL expression") {
        return m[..at].to_string();
    }
    match m.find(": unknown converter") {
        Some(at) => m[at + 2..].trim_end_matches('.').to_string(),
        None => m,
    }
}

/// Applies `+Q,-X,...` to `flags`; unknown names are ignored, as by HAProxy.
fn apply_args(args: &str, flags: &mut Flags) {
    for arg in args.split(',') {
        let (on, name) = match arg.as_bytes().first() {
            Some(b'+') => (true, &arg[1..]),
            Some(b'-') => (false, &arg[1..]),
            _ => continue,
        };
        match name {
            "Q" => flags.quote = on,
            "X" => flags.hex = on,
            "E" => flags.escape = on,
            "M" => flags.mandatory = on,
            _ => {}
        }
    }
}

/// Milliseconds since the session was accepted at which each phase ended, HAProxy's
/// `logs.t_*`; -1: the phase was not reached.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// The handshake (`Th`).
    pub handshake: i64,
    /// Waiting for the first byte of the request (`Ti`), -1 if none.
    pub idle: i64,
    /// The complete request head was received (`Tq` = Th + Ti + TR); -1 in TCP mode.
    pub request: i64,
    /// The queue was left.
    pub queue: i64,
    /// The server connection was established.
    pub connect: i64,
    /// Data started flowing: the response head in HTTP, the connection in TCP.
    pub data: i64,
    /// The end of the session or request (`Tt`).
    pub close: i64,
}

/// How an HTTP request arrived, from its start (the connection's accept, or the end of the
/// previous response on a kept-alive one): when its first byte came (`%Ti`) and when its head
/// was complete. Measured only where a log line or a rule's value shows timers (a clock read
/// per request); zero elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrival {
    pub idle: Duration,
    pub head: Duration,
}

impl Arrival {
    /// The arrival of a head complete now, of a request that began at `started` and whose
    /// first byte came at `first_byte` (None: with the start, as a pipelined one).
    pub fn now(started: Instant, first_byte: Option<Instant>) -> Arrival {
        Arrival {
            idle: first_byte.map_or(Duration::ZERO, |t| t.saturating_duration_since(started)),
            head: started.elapsed(),
        }
    }

    /// `%Ti` in milliseconds.
    pub fn idle_ms(&self) -> i64 {
        self.idle.as_millis() as i64
    }

    /// The date of the first byte (`%tr`) of a request that began at `start`: HAProxy adds
    /// the idle time in whole milliseconds (and the handshake's, none without TLS).
    pub fn first_byte_date(&self, start: SystemTime) -> SystemTime {
        start + Duration::from_millis(self.idle_ms() as u64)
    }
}

impl Timers {
    /// HAProxy's timers of an HTTP request that arrived as `arrival` once taken (`taken`
    /// -1: it was not, as one a `tcp-request content` rule rejected), after the milliseconds
    /// it then took to be queued, connected and answered (-1: that phase was not reached),
    /// ending `close` ms after its start.
    pub fn after_phases(
        arrival: Arrival,
        [taken, queue, connect, response]: [i64; 4],
        close: i64,
    ) -> Timers {
        let after = |base: i64, d: i64| if d >= 0 { base.max(0) + d } else { -1 };
        let request = after(arrival.head.as_millis() as i64, taken);
        let queue = after(request, queue);
        let connect = after(queue, connect);
        let data = if connect >= 0 {
            after(connect, response)
        } else {
            -1
        };
        Timers {
            idle: arrival.idle_ms(),
            request,
            queue,
            connect,
            data,
            close,
            ..Timers::default()
        }
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            handshake: 0,
            idle: -1,
            request: -1,
            queue: -1,
            connect: -1,
            data: -1,
            close: 0,
        }
    }
}

/// Connection counts at logging time, as HAProxy's `%ac/%fc/%bc/%sc/%rc %sq/%bq`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub process: usize,
    pub frontend: usize,
    pub backend: usize,
    pub server: usize,
    pub retries: u32,
    /// The connection was redispatched: `%rc` starts with `+`.
    pub redispatched: bool,
    pub server_queue: usize,
    pub backend_queue: usize,
}

/// The facts one log line may show.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub client: SocketAddr,
    /// The address the client connected to.
    pub frontend_addr: SocketAddr,
    pub frontend: &'a str,
    /// The backend's name, or the frontend's when none was chosen.
    pub backend: &'a str,
    /// The server's name, or `<NOSRV>`, `<STATS>`.
    pub server: &'a str,
    pub server_addr: Option<SocketAddr>,
    /// The proxy's end of the server connection.
    pub source_addr: Option<SocketAddr>,
    pub accept_date: SystemTime,
    /// When the request began (HTTP), else the accept date.
    pub request_date: SystemTime,
    pub timers: Timers,
    /// The HTTP status; None (shown as -1) for a request nothing answered; 0 in TCP mode.
    pub status: Option<u16>,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// HAProxy's termination state, 2 or 4 characters (`--`, `SC`, `CD--`...).
    pub term: &'a str,
    pub counts: Counts,
    /// The request line (`<BADREQ>` for an invalid one); empty in TCP mode.
    pub request: &'a str,
    /// Captured request headers, one per `capture request header`; None: not captured
    /// (an invalid request).
    pub req_captures: Option<&'a [Option<String>]>,
    pub resp_captures: Option<&'a [Option<String>]>,
    pub unique_id: Option<&'a str>,
    /// `%rt`: the request's number in the process.
    pub request_counter: u64,
    /// `%lc`: lines this frontend logged before.
    pub log_counter: u64,
    pub hostname: &'a str,
    pub pid: u32,
    /// Evaluates `%[fetch]`; None: they show as `-`.
    pub samples: Option<&'a dyn Samples>,
    /// Logged before the end (`option logasap`), or shown by a frontend that logs no end
    /// of sessions ([`LogFormat::uses_session_end`]): `%Ta`, `%Tt`, `%Tu` and `%B` are
    /// marked `+`.
    pub partial: bool,
    /// `capture cookie`: the request's and the response's cookie (`%CC`, `%CS`).
    pub client_cookie: Option<&'a str>,
    pub server_cookie: Option<&'a str>,
    /// The client connection's TLS (`%sslc`, `%sslv`, `%ft`); None in clear.
    pub tls: Option<&'a super::tls::ClientTls>,
}

impl<'a> Entry<'a> {
    /// What is known of a connection when it is accepted: the rest is empty, absent or -1.
    pub fn at_accept(
        client: SocketAddr,
        frontend_addr: SocketAddr,
        frontend: &'a str,
        date: SystemTime,
    ) -> Self {
        Entry {
            client,
            frontend_addr,
            frontend,
            backend: frontend,
            server: "<NOSRV>",
            server_addr: None,
            source_addr: None,
            accept_date: date,
            request_date: date,
            timers: Timers::default(),
            status: Some(0),
            bytes_out: 0,
            bytes_in: 0,
            term: "----",
            counts: Counts::default(),
            request: "",
            req_captures: None,
            resp_captures: None,
            unique_id: None,
            request_counter: 0,
            log_counter: 0,
            hostname: super::log::cached_hostname(),
            pid: std::process::id(),
            samples: None,
            partial: false,
            client_cookie: None,
            server_cookie: None,
            tls: None,
        }
    }
}

fn render_var(var: Var, flags: Flags, e: &Entry<'_>, out: &mut String) {
    let t = &e.timers;
    // HAProxy's derived timers (sess_build_logline).
    let tq = t.request;
    let minus = |a: i64, b: i64| if a >= 0 { a - b } else { -1 };
    let idle = t.idle.max(0);
    match var {
        Var::ClientIp => ip(Some(e.client), flags, out),
        Var::ClientPort => port(Some(e.client), flags, out),
        Var::FrontendIp => ip(Some(e.frontend_addr), flags, out),
        Var::FrontendPort => port(Some(e.frontend_addr), flags, out),
        Var::ServerIp => ip(e.server_addr, flags, out),
        Var::ServerPort => port(e.server_addr, flags, out),
        Var::BackendIp => ip(e.source_addr, flags, out),
        Var::BackendPort => port(e.source_addr, flags, out),
        Var::Frontend => text(Some(e.frontend), flags, out),
        // HAProxy marks a TLS connection's frontend with a `~`.
        Var::FrontendXprt => match e.tls {
            Some(_) => text(Some(&format!("{}~", e.frontend)), flags, out),
            None => text(Some(e.frontend), flags, out),
        },
        Var::SslCipher => text(e.tls.map(|t| t.cipher), flags, out),
        Var::SslVersion => text(e.tls.map(|t| t.version), flags, out),
        Var::Backend => text(Some(e.backend), flags, out),
        Var::Server => text(Some(e.server), flags, out),
        Var::Hostname => text(Some(e.hostname), flags, out),
        Var::UniqueId => text(e.unique_id, flags, out),
        Var::ClientCookie => text(e.client_cookie, flags, out),
        Var::ServerCookie => text(e.server_cookie, flags, out),
        Var::Status => number(e.status.map_or(-1, i64::from), out),
        Var::BytesOut => {
            plus(e, out);
            number(e.bytes_out as i64, out)
        }
        Var::BytesIn => number(e.bytes_in as i64, out),
        Var::Th => number(t.handshake, out),
        Var::Ti => number(t.idle, out),
        Var::Tq => number(tq, out),
        Var::TR => number(minus(tq, t.idle.max(0) + t.handshake), out),
        // With no request phase (TCP mode) HAProxy subtracts -1: kept for identical lines.
        Var::Tw => number(minus(t.queue, tq), out),
        Var::Tc => number(minus(t.connect, t.queue), out),
        Var::Tr => number(minus(t.data, t.connect), out),
        Var::Td => number(if t.data >= 0 { t.close - t.data } else { -1 }, out),
        Var::Ta => {
            plus(e, out);
            number(
                t.close - if t.idle >= 0 { idle + t.handshake } else { 0 },
                out,
            )
        }
        Var::Tt => {
            plus(e, out);
            number(t.close, out)
        }
        Var::Tu => {
            plus(e, out);
            number(t.close - idle, out)
        }
        Var::Timestamp => counter(epoch(e.accept_date).0, flags, out),
        Var::Millis => {
            let _ = write!(out, "{:03}", epoch(e.accept_date).1);
        }
        Var::Date => date(e.accept_date, DateStyle::Millis, out),
        Var::DateGmt => date(e.accept_date, DateStyle::Gmt, out),
        Var::DateLocal => date(e.accept_date, DateStyle::Local, out),
        Var::ReqDate => date(e.request_date, DateStyle::Millis, out),
        Var::ReqDateGmt => date(e.request_date, DateStyle::Gmt, out),
        Var::ReqDateLocal => date(e.request_date, DateStyle::Local, out),
        Var::Pid => counter(u64::from(e.pid), flags, out),
        Var::RequestCounter => counter(e.request_counter, flags, out),
        Var::LogCounter => counter(e.log_counter, flags, out),
        Var::TermState => out.push_str(e.term.get(..2).unwrap_or(e.term)),
        Var::TermStateCookie => {
            out.push_str(e.term);
            for _ in e.term.len()..4 {
                out.push('-');
            }
        }
        Var::ActConn => number(e.counts.process as i64, out),
        Var::FeConn => number(e.counts.frontend as i64, out),
        Var::BeConn => number(e.counts.backend as i64, out),
        Var::SrvConn => number(e.counts.server as i64, out),
        Var::Retries => {
            if e.counts.redispatched {
                out.push('+');
            }
            number(i64::from(e.counts.retries), out);
        }
        Var::SrvQueue => number(e.counts.server_queue as i64, out),
        Var::BckQueue => number(e.counts.backend_queue as i64, out),
        Var::ReqHeaders => captures_braced(e.req_captures, flags, out),
        Var::RespHeaders => captures_braced(e.resp_captures, flags, out),
        Var::ReqHeaderList => captures_listed(e.req_captures, flags, out),
        Var::RespHeaderList => captures_listed(e.resp_captures, flags, out),
        Var::Request => quoted(flags, out, |out| encode(e.request, URL, flags, out)),
        Var::Method | Var::Uri | Var::Path | Var::PathOnly | Var::Version | Var::Query => {
            let part = request_part(var, e.request);
            quoted(flags, out, |out| encode(part, URL, flags, out));
        }
    }
}

/// `+` before a value that is partial: the line goes early (`option logasap`), or the
/// frontend logs no end of sessions ([`Entry::partial`]).
fn plus(e: &Entry<'_>, out: &mut String) {
    if e.partial {
        out.push('+');
    }
}

/// A part of the request line, cut as HAProxy cuts it (`<BADREQ>` when it is missing).
fn request_part(var: Var, line: &str) -> &str {
    const BAD: &str = "<BADREQ>";
    if line == BAD {
        return BAD;
    }
    let space = |c: char| c == ' ' || c == '\t';
    let Some((method, rest)) = line.split_once(space) else {
        return if var == Var::Query { "" } else { BAD };
    };
    let rest = rest.trim_start_matches(space);
    let uri = rest.split(space).next().unwrap_or_default();
    match var {
        Var::Method => method,
        Var::Uri => uri,
        Var::Path => uri.split('?').next().unwrap_or_default(),
        Var::PathOnly => {
            let path = uri.split('?').next().unwrap_or_default();
            // An absolute URI: its path after scheme://authority.
            match path.split_once("://") {
                Some((_, after)) => after.find('/').map_or("", |n| &after[n..]),
                None => path,
            }
        }
        Var::Query => uri.find('?').map_or("", |n| &uri[n..]),
        _ => match rest[uri.len()..].trim_start_matches(space) {
            "" => BAD,
            version => version,
        },
    }
}

fn quoted(flags: Flags, out: &mut String, body: impl FnOnce(&mut String)) {
    if flags.quote {
        out.push('"');
    }
    body(out);
    if flags.quote {
        out.push('"');
    }
}

/// A text value as HAProxy's `lf_text`: when absent or empty, `-` if mandatory (as in log
/// lines), `""` when quoted, else nothing.
fn text(value: Option<&str>, flags: Flags, out: &mut String) {
    quoted(flags, out, |out| match value.filter(|v| !v.is_empty()) {
        Some(v) if flags.escape => escape_into(v, out),
        Some(v) => out.push_str(v),
        None if !flags.quote && flags.mandatory => out.push('-'),
        None => {}
    });
}

/// A fetched sample in a rule's value, as HAProxy's `LOG_OPT_HTTP` writes it: never quoted,
/// the bytes a header value may not hold (controls but the tab, DEL) as `%XX`, and with `+E`
/// `"`, `\` and `]` escaped with a backslash.
fn header_value(value: &str, flags: Flags, out: &mut String) {
    for c in value.chars() {
        if (c < ' ' && c != '\t') || c == '\x7f' {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            if flags.escape && matches!(c, '"' | '\\' | ']') {
                out.push('\\');
            }
            out.push(c);
        }
    }
}

/// `"`, `\` and `]` with a backslash before them (`+E`, RFC 5424's structured-data rule).
fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Which bytes are written as `#XX`.
type EncodeMap = fn(u8) -> bool;
/// Request lines and URIs: `"`, `#` and what is not printable ASCII.
const URL: EncodeMap = |b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'#';
/// Captured headers: also `{`, `|` and `}`, which frame them.
const HEADER: EncodeMap = |b| URL(b) || matches!(b, b'{' | b'|' | b'}');

fn encode(value: &str, map: EncodeMap, flags: Flags, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // The bytes the value carries (see `bytestr`): every byte a header came with.
    for &b in crate::bytestr::to_bytes(value).iter() {
        if map(b) {
            out.push('#');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        } else {
            if flags.escape && matches!(b, b'"' | b'\\' | b']') {
                out.push('\\');
            }
            out.push(b as char);
        }
    }
}

/// `%hr`/`%hs`: `{a|b|c}`; nothing when no header is captured.
fn captures_braced(caps: Option<&[Option<String>]>, flags: Flags, out: &mut String) {
    let Some(caps) = caps.filter(|c| !c.is_empty()) else {
        return;
    };
    quoted(flags, out, |out| {
        out.push('{');
        for (i, cap) in caps.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            if let Some(v) = cap {
                encode(v, HEADER, flags, out);
            }
        }
        out.push('}');
    });
}

/// `%hrl`/`%hsl`: each capture on its own, space-separated, `-` (or `""`) when missing.
fn captures_listed(caps: Option<&[Option<String>]>, flags: Flags, out: &mut String) {
    let Some(caps) = caps else {
        return;
    };
    for (i, cap) in caps.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        quoted(flags, out, |out| match cap {
            Some(v) => encode(v, HEADER, flags, out),
            None if !flags.quote => out.push('-'),
            None => {}
        });
    }
}

fn number(n: i64, out: &mut String) {
    let _ = write!(out, "{n}");
}

/// A counter or timestamp: `+X` writes it as four or more hexadecimal digits.
fn counter(n: u64, flags: Flags, out: &mut String) {
    let _ = if flags.hex {
        write!(out, "{n:04X}")
    } else {
        write!(out, "{n}")
    };
}

fn ip(addr: Option<SocketAddr>, flags: Flags, out: &mut String) {
    let Some(addr) = addr else {
        return text(None, flags, out);
    };
    match (addr.ip().to_canonical(), flags.hex) {
        (std::net::IpAddr::V4(v4), true) => {
            for b in v4.octets() {
                let _ = write!(out, "{b:02X}");
            }
        }
        (std::net::IpAddr::V6(v6), true) => {
            for b in v6.octets() {
                let _ = write!(out, "{b:02X}");
            }
        }
        (ip, false) => quoted(flags, out, |out| {
            let _ = write!(out, "{ip}");
        }),
    }
}

fn port(addr: Option<SocketAddr>, flags: Flags, out: &mut String) {
    match addr {
        Some(a) if flags.hex => {
            let _ = write!(out, "{:04X}", a.port());
        }
        Some(a) => number(i64::from(a.port()), out),
        None => text(None, flags, out),
    }
}

/// Seconds and milliseconds since the epoch.
fn epoch(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_millis())
}

/// `%t`: local time with milliseconds, `26/Nov/2026:03:11:27.272`.
pub fn accept_date(t: SystemTime, out: &mut String) {
    date(t, DateStyle::Millis, out);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateStyle {
    /// Local time with milliseconds: `26/Nov/2026:03:11:27.272`.
    Millis,
    /// UTC: `26/Nov/2026:03:11:27 +0000`.
    Gmt,
    /// Local time with its offset: `26/Nov/2026:04:11:27 +0100`.
    Local,
}

fn date(t: SystemTime, style: DateStyle, out: &mut String) {
    let (secs, ms) = epoch(t);
    let tm = super::log::broken_down(secs, style != DateStyle::Gmt);
    let _ = write!(
        out,
        "{:02}/{}/{}:{:02}:{:02}:{:02}",
        tm.tm_mday,
        super::log::MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    );
    match style {
        DateStyle::Millis => {
            let _ = write!(out, ".{ms:03}");
        }
        DateStyle::Gmt => out.push_str(" +0000"),
        DateStyle::Local => {
            let off = tm.tm_gmtoff / 60;
            let sign = if off < 0 { '-' } else { '+' };
            let _ = write!(out, " {sign}{:02}{:02}", off.abs() / 60, off.abs() % 60);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: "192.0.2.1:50000".parse().unwrap(),
            frontend_addr: "198.51.100.2:80".parse().unwrap(),
            frontend: "fe",
            backend: "be",
            server: "s1",
            server_addr: Some("198.51.100.3:8080".parse().unwrap()),
            source_addr: None,
            accept_date: UNIX_EPOCH + std::time::Duration::from_millis(1_795_662_687_272),
            request_date: UNIX_EPOCH + std::time::Duration::from_millis(1_795_662_687_272),
            timers: Timers {
                handshake: 0,
                idle: 0,
                request: 1,
                queue: 1,
                connect: 3,
                data: 10,
                close: 12,
            },
            status: Some(200),
            bytes_out: 72,
            bytes_in: 57,
            term: "----",
            counts: Counts::default(),
            request: "GET /a\"b?q=1 HTTP/1.1",
            req_captures: Some(&[]),
            resp_captures: Some(&[]),
            unique_id: None,
            request_counter: 7,
            log_counter: 0,
            hostname: "vm",
            pid: 12552,
            samples: None,
            partial: false,
            client_cookie: None,
            server_cookie: None,
            tls: None,
        }
    }

    fn line(format: &str, e: &Entry<'_>) -> String {
        let f = LogFormat::compile(format, Mode::Http).unwrap();
        let mut out = String::new();
        f.render(e, &mut out);
        out
    }

    #[test]
    fn separators_merge_and_follow_only_written_values() {
        let e = entry();
        assert_eq!(line("  %f   %hr %b  ", &e), "fe be ");
        assert_eq!(line("%f%%%b", &e), "fe%be");
        assert_eq!(line(" a  b %ci ", &e), "a b 192.0.2.1 ");
    }

    #[test]
    fn flags_quote_hex_and_escape_as_haproxy() {
        let e = entry();
        assert_eq!(
            line(
                "%{+Q}o %ci %cp %b %ID %{-Q}b %{+X}ci:%{+X}cp %{+X}pid %{+X}rt",
                &e
            ),
            "\"192.0.2.1\" 50000 \"be\" \"\" be C0000201:C350 3108 0007"
        );
        assert_eq!(
            line("%{+Q}r %HM %{+Q}HU %HP %HQ %HV", &e),
            "\"GET /a#22b?q=1 HTTP/1.1\" GET \"/a#22b?q=1\" /a#22b ?q=1 HTTP/1.1"
        );
        let mut odd = entry();
        odd.request = "GET /a\\b] HTTP/1.1";
        assert_eq!(line("%{+E}r", &odd), "GET /a\\\\b\\] HTTP/1.1");
    }

    #[test]
    fn timers_derive_as_haproxy() {
        let e = entry();
        assert_eq!(
            line("%Th/%Ti/%TR/%Tq/%Tw/%Tc/%Tr/%Td/%Ta/%Tt/%Tu", &e),
            "0/0/1/1/0/2/7/2/12/12/12"
        );
    }

    /// An HTTP request's timers from its arrival and phases, as HAProxy 2.6 shows them in
    /// a response rule's value (`Tt` 0: the end is not known yet) for a request whose first
    /// byte came after 300 ms and its head 200 ms later.
    #[test]
    fn timers_after_an_arrival_and_phases() {
        let arrival = Arrival {
            idle: Duration::from_micros(300_400),
            head: Duration::from_micros(500_900),
        };
        let mut e = entry();
        e.timers = Timers::after_phases(arrival, [0, 0, 1, 0], 0);
        let all = "%Th/%Ti/%TR/%Tq/%Tw/%Tc/%Tr/%Td/%Ta/%Tt/%Tu";
        assert_eq!(line(all, &e), "0/300/200/500/0/1/0/-501/-300/0/-300");
        // Not taken (rejected): no request time, nor any after it.
        e.timers = Timers::after_phases(arrival, [-1, -1, -1, -1], 7);
        assert_eq!(line(all, &e), "0/300/-1/-1/-1/-1/-1/-1/-293/7/-293");
        // `%tr`: the start and the idle time in whole milliseconds.
        assert_eq!(
            arrival.first_byte_date(e.accept_date),
            e.accept_date + Duration::from_millis(300)
        );
    }

    /// Which values need what the request loop measures or asks the system for.
    #[test]
    fn formats_tell_what_they_show() {
        let value = |f: &str| {
            LogFormat::compile_value(f, Mode::Http, Stage::Response, &mut Vec::new()).unwrap()
        };
        // Timers, server addresses, HAProxy's `LW_BYTES` variables, `+` marks.
        for (f, shows) in [
            ("a b", [false, false, false, false]),
            ("%ci %t %Ts %ms %rt %[src] %b %s %ST", [false; 4]),
            ("x%Ti", [true, false, true, false]),
            ("%{+Q}tr", [true, false, false, false]),
            ("%Tu", [true, false, true, true]),
            ("%si", [false, true, false, false]),
            ("%{+X}bp-%TR", [true, true, true, false]),
            ("%ac %ID %ts %U", [false, false, true, false]),
            ("%B", [false, false, true, true]),
        ] {
            let f = value(f);
            let got = [
                f.uses_timers(),
                f.uses_server_addrs(),
                f.uses_session_end(),
                f.uses_partial_marks(),
            ];
            assert_eq!(got, shows, "{f:?}");
        }
    }

    /// Partial values (`option logasap`, or a frontend logging no end of sessions): `+`
    /// before `%Ta %Tt %Tu %B` only, as HAProxy writes them.
    #[test]
    fn partial_values_are_marked() {
        let mut e = entry();
        e.partial = true;
        assert_eq!(
            line("%Ta/%Tt/%Tu/%B/%Td/%Tq/%U", &e),
            "+12/+12/+12/+72/2/1/57"
        );
    }

    #[test]
    fn captures() {
        let mut e = entry();
        let caps = [Some("h\"{|}x".to_string()), None];
        e.req_captures = Some(&caps);
        assert_eq!(
            line("%hr %{+Q}hr %hrl %{+Q}hrl %hs", &e),
            // %hs has nothing to show: the separator before it stays, as in HAProxy.
            "{h#22#7B#7C#7Dx|} \"{h#22#7B#7C#7Dx|}\" h#22#7B#7C#7Dx - \"h#22#7B#7C#7Dx\" \"\" "
        );
    }

    #[test]
    fn errors_read_as_haproxy() {
        let err = |f: &str, mode| LogFormat::compile(f, mode).unwrap_err();
        assert!(err("%zz", Mode::Http).starts_with("no such format variable 'zz'."));
        assert_eq!(err("%{+Q ci", Mode::Http), "truncated line after '+Q ci'.");
        assert_eq!(err("%", Mode::Http), "truncated line after '%'.");
        assert_eq!(
            err("%{+Q}", Mode::Http),
            "parse argument modifier without variable name near '%{+Q}'."
        );
        assert_eq!(
            err("%r", Mode::Tcp),
            "format variable 'r' is reserved for HTTP mode."
        );
        assert!(err("%[nosuch]", Mode::Tcp).contains("unknown fetch method 'nosuch'"));
        assert_eq!(err("%[src", Mode::Tcp), "missing ']' after 'src'.");
        assert!(err("%[req.hdr(host)]", Mode::Http).contains("needs 'HTTP request headers'"));
        LogFormat::compile("%[src] %[method] %[status]", Mode::Http).unwrap();
        LogFormat::compile_at("%[req.hdr(host)]", Mode::Http, Stage::Request).unwrap();
        // Every predefined format compiles.
        for f in [TCP_LOG, HTTP_LOG, CLF_HTTP_LOG] {
            LogFormat::compile(f, Mode::Http).unwrap();
        }
    }

    #[derive(Debug)]
    struct Fixed;
    impl Samples for Fixed {
        fn text(&self, fetch: &Fetch) -> Option<String> {
            (fetch.source == acl::Source::Src).then(|| "192.0.2.1".to_string())
        }
    }

    #[test]
    fn samples_come_from_the_renderer() {
        let mut e = entry();
        assert_eq!(line("%[src] %{+Q}[dst]", &e), "- \"\"");
        e.samples = Some(&Fixed);
        assert_eq!(
            line("%[src] %{+Q}[src] %{+Q}[dst]", &e),
            "192.0.2.1 \"192.0.2.1\" \"\""
        );
    }

    /// Returns the same text for every fetch.
    #[derive(Debug)]
    struct Same(&'static str);
    impl Samples for Same {
        fn text(&self, _: &Fetch) -> Option<String> {
            Some(self.0.to_string())
        }
    }

    fn value(format: &str, stage: Stage, e: &Entry<'_>) -> String {
        let f = LogFormat::compile_value(format, Mode::Http, stage, &mut Vec::new()).unwrap();
        let mut out = String::new();
        f.render(e, &mut out);
        out
    }

    /// Rule values as HAProxy's `LOG_OPT_HTTP` writes them: spaces kept, nothing for an
    /// absent value, samples never quoted and with control bytes as `%XX`.
    #[test]
    fn rule_values_as_haproxy_writes_them() {
        let mut e = entry();
        assert_eq!(
            value(
                "a  b <%ID|%{+Q}ID|%CC|%[src]|%{+Q}[src]|%{+M}ID>",
                Stage::Request,
                &e
            ),
            // `+M` writes `-` for an absent value, as in log lines.
            "a  b <|\"\"||||->"
        );
        e.samples = Some(&Same("a\"b]\tc\u{1}\u{7f}é"));
        assert_eq!(
            value("%[src] %{+Q}[src] %{+E}[src] %{+Q}ci", Stage::Request, &e),
            "a\"b]\tc%01%7Fé a\"b]\tc%01%7Fé a\\\"b\\]\tc%01%7Fé \"192.0.2.1\""
        );
        let literal = |f: &str| {
            LogFormat::compile_value(f, Mode::Http, Stage::Request, &mut Vec::new())
                .unwrap()
                .literal()
                .map(str::to_string)
        };
        assert_eq!(literal("100%% of  it").as_deref(), Some("100% of  it"));
        assert_eq!(literal("").as_deref(), Some(""));
        assert_eq!(literal("%ci"), None);
        assert_eq!(LogFormat::text("/a%ci").literal(), Some("/a%ci"));
    }

    /// `unique-id-format` (`LOG_OPT_HTTP | LOG_OPT_MERGE_SPACES`): spaces merge as in a log
    /// line, an absent sample writes nothing, quoted or not; samples as header values.
    #[test]
    fn unique_ids_merge_spaces_and_leave_absent_samples_empty() {
        let mut e = entry();
        let id = |format: &str, e: &Entry<'_>| {
            let f = LogFormat::compile_unique_id(format, Mode::Http, &mut Vec::new()).unwrap();
            let mut out = String::new();
            f.render(e, &mut out);
            out
        };
        assert_eq!(id("a  b-%[src]-%{+Q}[src]-%ci", &e), "a b---192.0.2.1");
        e.samples = Some(&Same("x\u{1}"));
        assert_eq!(id("%[src] %{+Q}[src]", &e), "x%01 x%01");
        let mut warnings = Vec::new();
        LogFormat::compile_unique_id("%[req.len]", Mode::Http, &mut warnings).unwrap();
        assert_eq!(
            warnings,
            ["L6 sample fetch <req.len]> ignored in HTTP log-format string."]
        );
    }

    /// `http-error` values may fetch from either message, as HAProxy lets them.
    #[test]
    fn error_replies_fetch_from_both_messages() {
        let compile =
            |f: &str| LogFormat::compile_value(f, Mode::Http, Stage::ErrorReply, &mut Vec::new());
        for f in ["%[req.hdr(host)]", "%[status]", "%[res.hdr(x)]", "%[path]"] {
            assert!(compile(f).is_ok(), "{f}");
        }
        let mut warnings = Vec::new();
        LogFormat::compile_value("%[req.len]", Mode::Http, Stage::ErrorReply, &mut warnings)
            .unwrap();
        assert_eq!(warnings.len(), 1);
    }
    /// What a rule's value may fetch depends on where it runs, as in HAProxy.
    #[test]
    fn rule_values_fetch_what_their_stage_has() {
        let compile = |f: &str, stage, warnings: &mut Vec<String>| {
            LogFormat::compile_value(f, Mode::Http, stage, warnings)
        };
        let err = |f: &str, stage| match compile(f, stage, &mut Vec::new()) {
            Err(acl::AclError::Bad(m)) => m,
            other => panic!("{other:?}"),
        };
        // What hapx lacks is told apart: a rule using it is refused, not dropped.
        assert_eq!(
            compile("%[ssl_bc]", Stage::Request, &mut Vec::new()),
            Err(acl::AclError::Unsupported(
                "the sample fetch 'ssl_bc'".into()
            ))
        );
        assert!(
            err("%[status]", Stage::Request)
                .ends_with("needs 'HTTP response' which is not available here.")
        );
        assert!(err("%[res.hdr(a)]", Stage::Request).contains("needs 'HTTP response headers'"));
        assert!(err("%[path] x", Stage::Response).starts_with("sample fetch <path] x> may not"));
        assert!(err("%[req.len]", Stage::Response).contains("needs 'request buffer'"));
        assert_eq!(
            err("%[src b]", Stage::Request),
            "expected ']' after 'src', but found ' '."
        );
        assert_eq!(
            err("%[src,nosuch]", Stage::Request),
            "failed to parse sample expression <src,nosuch]> : unknown converter 'nosuch'."
        );
        let mut warnings = Vec::new();
        compile(
            "%[method] %[status] %[res.hdr(a)]",
            Stage::Response,
            &mut warnings,
        )
        .unwrap();
        compile("%[req.len]", Stage::Request, &mut warnings).unwrap();
        assert_eq!(
            warnings,
            ["L6 sample fetch <req.len]> ignored in HTTP log-format string."]
        );
    }

    /// Every short string over the format's special characters compiles or fails with a
    /// message, and what compiles renders: no panic.
    #[test]
    fn no_format_panics() {
        const ALPHABET: [&str; 11] = ["%", "{", "}", "[", "]", "+Q", "ci", " ", "é", "1", ","];
        let e = entry();
        let mut stack = vec![String::new()];
        while let Some(text) = stack.pop() {
            if let Ok(f) = LogFormat::compile(&text, Mode::Http) {
                let mut out = String::new();
                f.render(&e, &mut out);
            }
            if text.chars().count() < 6 {
                stack.extend(ALPHABET.iter().map(|a| format!("{text}{a}")));
            }
        }
    }

    #[test]
    fn request_parts_of_odd_lines() {
        assert_eq!(request_part(Var::Method, "<BADREQ>"), "<BADREQ>");
        assert_eq!(request_part(Var::Query, "<BADREQ>"), "<BADREQ>");
        assert_eq!(request_part(Var::Query, "GET"), "");
        assert_eq!(
            request_part(Var::PathOnly, "GET http://h/p?q HTTP/1.1"),
            "/p"
        );
        assert_eq!(request_part(Var::Version, "GET /"), "<BADREQ>");
    }
}
