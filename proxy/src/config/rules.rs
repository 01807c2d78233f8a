//! Content switching and request rules of a proxy, parsed from HAProxy 2.6's keywords:
//! `acl`, `use_backend`, `tcp-request connection|session|content|inspect-delay`,
//! `tcp-response content|inspect-delay`, `http-request`,
//! `http-response`, `http-after-response`, `monitor-uri` and `monitor fail`; with the whole-configuration checks
//! HAProxy runs on them ([`check`]). The runtime side is [`crate::runtime::rules`].

use std::time::Duration;

use super::acl::{AclError, AclSet, Condition, Layer};
use super::diag::Diags;
use super::model::{Mode, Place, Proxy, ProxyKind, VarAction};
use super::values;
use crate::runtime::logformat::{LogFormat, Stage};

/// Every rule of one proxy, in the order each list is evaluated.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub acls: AclSet,
    pub use_backends: Vec<UseBackend>,
    pub tcp_connection: Vec<TcpRule>,
    pub tcp_content: Vec<TcpRule>,
    /// `tcp-request inspect-delay`: how long content rules may wait for data.
    pub inspect_delay: Option<Duration>,
    /// `tcp-response content`: a backend's rules on what its server sends first.
    pub tcp_response: Vec<TcpRule>,
    /// `tcp-response inspect-delay`: how long they may wait for the server's data.
    pub response_inspect_delay: Option<Duration>,
    pub http_request: Vec<HttpRule>,
    pub http_response: Vec<HttpRule>,
    /// `http-after-response`: run on every response, the proxy's own replies included,
    /// after the `http-response` rules (the backend's, then the frontend's).
    pub http_after_response: Vec<HttpRule>,
    /// `tcp-request session`: run once a connection's handshakes are over (PROXY header,
    /// TLS), before the content rules.
    pub tcp_session: Vec<TcpRule>,
    /// The `redirect` keyword's rules (run after the `http-request` ones).
    pub redirects: Vec<HttpRule>,
    pub monitor_uri: Option<String>,
    pub monitor_fail: Vec<Condition>,
    /// `stick on|match|store-request`: persistence by stick table (a backend's).
    pub stick: Vec<StickRule>,
    /// `use-server NAME if|unless COND`: a backend's server chosen by a condition.
    pub use_servers: Vec<UseServer>,
    /// `force-persist` and `ignore-persist`, in order: the first matching one counts.
    pub persist: Vec<PersistRule>,
    /// A request rule's value shows the request line (`%r`, `%HU` ...), which HAProxy
    /// shows as the client sent it: the request loop keeps it before the rules run.
    pub values_read_line: bool,
    /// A rule's value shows a timer (`%Ti`, `%Tq`, `%tr` ...): the request loop measures
    /// when each request arrived even if nothing logs.
    pub values_use_timers: bool,
    /// A rule's value shows what HAProxy knows at the end of a session
    /// ([`LogFormat::uses_session_end`]), which tells whether `%Tt` ... are marked `+`.
    pub values_use_session_end: bool,
    /// Backends and servers named in fetches (`nbsrv(b)`, `srv_is_up(b/s)`), for [`check`].
    references: Vec<Reference>,
    /// Userlists named in fetches (`http_auth(L)`), checked by [`super::userlist`].
    pub userlist_references: Vec<super::userlist::Reference>,
    /// Tables named in stick fetches (`src_conn_rate(T)`) and converters' regexes, checked
    /// by [`super::stick::check_fetch_tables`].
    pub table_refs: Vec<super::stick::ArgRef>,
    /// Where L6 fetches were used (ignored in HTTP proxies, with a warning).
    l6_places: Vec<Place>,
    /// The last rule line that parsed a log format (a header's value, a redirection's
    /// target, a reply's header or body, `set-var-fmt`): HAProxy remembers it as the
    /// proxy's log format's line (`conf.lfs_line`), which its checks name (see
    /// `parse::note_log_format_line`).
    pub format_place: Option<Place>,
    /// Whether a rule's log format reads an HTTP fetch: out of HTTP mode, HAProxy's check
    /// warns once, naming the log format's line (see `check::check`).
    pub formats_use_http: bool,
    /// Which rule kinds came already, for HAProxy's "placed after" warnings.
    seen: Seen,
    /// How many `tcp-request connection` and `session` rules came from the defaults
    /// section (see [`Rules::settle_inherited`]).
    inherited_layer4: [usize; 2],
    /// How many `http-request`, `http-response` and `http-after-response` rules came from
    /// the defaults section: HAProxy's "action is final" warning looks at the proxy's own.
    inherited_http: [usize; 3],
}

impl Rules {
    /// Whether a `stick store-response` rule stores responses' keys.
    pub fn stores_response(&self) -> bool {
        self.stick.iter().any(StickRule::stores_response)
    }

    /// Whether a (named) defaults section defines rules its proxies run before their own,
    /// which HAProxy restricts the use of (see `parse::Parser::check_defaults_use`).
    pub fn defines_inherited_rules(&self) -> bool {
        self.defines_layer4_rules()
            || !self.tcp_content.is_empty()
            || !self.tcp_response.is_empty()
            || !self.http_request.is_empty()
            || !self.http_response.is_empty()
            || !self.http_after_response.is_empty()
    }

    /// Whether there are `tcp-request connection` or `session` rules (frontends' alone).
    pub fn defines_layer4_rules(&self) -> bool {
        !self.tcp_connection.is_empty() || !self.tcp_session.is_empty()
    }

    /// The rules a proxy starts with from its defaults section: the section's rules, which
    /// run before the proxy's own as they come first in each list. The section's ACLs stay
    /// in the list (the inherited conditions index them) under names no condition can
    /// write, as HAProxy's proxies do not see the ACLs of their defaults section; the
    /// placement warnings look at the proxy's own rules alone.
    pub fn inherited(&self) -> Rules {
        let mut rules = self.clone();
        for acl in &mut rules.acls.acls {
            acl.name.insert(0, '\0');
        }
        rules.acls.unsupported.clear();
        rules.seen = Seen::default();
        rules.inherited_layer4 = [self.tcp_connection.len(), self.tcp_session.len()];
        // HAProxy starts the defaults' list and then the proxy's own in strict mode.
        let lists = [
            &mut rules.http_request,
            &mut rules.http_response,
            &mut rules.http_after_response,
        ];
        let sets_mode = |r: &HttpRule| matches!(r.action, HttpAction::StrictMode(_));
        for list in lists {
            if list.iter().any(sets_mode) {
                list.push(HttpRule {
                    action: HttpAction::StrictMode(true),
                    cond: None,
                });
            }
        }
        rules.inherited_http = [
            rules.http_request.len(),
            rules.http_response.len(),
            rules.http_after_response.len(),
        ];
        rules
    }

    /// Whether the last of the proxy's own rules of `kw`'s list (`http-request`,
    /// `http-response`, `http-after-response`) ends its evaluation whatever the message:
    /// rules after it never run.
    fn http_list_ends(&self, kw: &str) -> bool {
        let (list, inherited) = match kw {
            "http-request" => (&self.http_request, self.inherited_http[0]),
            "http-response" => (&self.http_response, self.inherited_http[1]),
            _ => (&self.http_after_response, self.inherited_http[2]),
        };
        let own = list.get(inherited..).unwrap_or_default();
        own.last()
            .is_some_and(|r| r.cond.is_none() && r.action.is_final())
    }

    /// Once a proxy is read: HAProxy runs the inherited `tcp-request connection` (and
    /// `session`) rules only on the frontends with rules of that kind of their own (its
    /// listeners evaluate a list only when the proxy's own is not empty), so without any
    /// they are dropped.
    pub fn settle_inherited(&mut self) {
        let [connection, session] = std::mem::take(&mut self.inherited_layer4);
        if self.tcp_connection.len() == connection {
            self.tcp_connection.clear();
        }
        if self.tcp_session.len() == session {
            self.tcp_session.clear();
        }
    }

    /// Whether the proxy has no rule at all (connections then cost nothing more).
    pub fn is_empty(&self) -> bool {
        self.use_backends.is_empty()
            && self.tcp_connection.is_empty()
            && self.tcp_content.is_empty()
            && self.http_request.is_empty()
            && self.http_response.is_empty()
            && self.http_after_response.is_empty()
            && self.tcp_session.is_empty()
            && self.redirects.is_empty()
            && self.monitor_uri.is_none()
    }
}

#[derive(Debug, Clone, Default)]
struct Seen([bool; RUNNING_ORDER.len()]);

/// Rule kinds in the order HAProxy runs them, as its warnings name them.
const RUNNING_ORDER: [(&str, &str); 7] = [
    ("tcp-request connection", "a 'tcp-request connection'"),
    ("tcp-request session", "a 'tcp-request session'"),
    ("tcp-request content", "a 'tcp-request content'"),
    ("monitor fail", "a 'monitor fail'"),
    ("http-request", "an 'http-request'"),
    ("redirect", "a 'redirect'"),
    ("use_backend", "a 'use_backend'"),
];

#[derive(Debug, Clone)]
struct Reference {
    place: Place,
    named: super::acl::BackendRef,
    /// Where HAProxy says the fetch is used, as [`super::stick::TableRef::within`].
    within: Option<&'static str>,
    /// The defaults section (its name) whose rule made it: HAProxy resolves those once, in
    /// that section, however many proxies inherit them.
    defaults: Option<String>,
    /// Whether a health-check rule made it (see [`unresolved_defaults_refs`]).
    health_check: bool,
}

/// `use_backend NAME [if|unless COND]`.
#[derive(Debug, Clone)]
pub struct UseBackend {
    /// The name as written: a backend's, or a log format when `dynamic` is set.
    pub backend: String,
    /// The name's format when it is one (HAProxy's dynamic rule): rendered per stream, the
    /// backend of that name (none: the default backend) is chosen.
    pub dynamic: Option<LogFormat>,
    /// Why the name does not compile as a log format, which [`check`] reports where
    /// HAProxy does (with the whole-configuration checks).
    pub invalid: Option<String>,
    pub cond: Option<Condition>,
    pub place: Place,
}

impl UseBackend {
    /// The backend a static rule names (none for a dynamic or invalid one).
    pub fn static_name(&self) -> Option<&str> {
        (self.dynamic.is_none() && self.invalid.is_none()).then_some(self.backend.as_str())
    }
}

/// Whether `name`, compiled as `format`, is a dynamic backend name for HAProxy 2.6: its
/// parsed format is more than one text node. HAProxy starts a text node at the second `%`
/// of each `%%`, so text before a `%%` makes two nodes (`be_%%` is dynamic, `%%` is not).
fn dynamic_name(name: &str, format: &LogFormat) -> bool {
    if format.literal().is_none() {
        return true;
    }
    let mut pieces = name.split("%%");
    let first = pieces.next().unwrap_or_default();
    let more = pieces.count();
    usize::from(!first.is_empty()) + more > 1
}

/// `use-server NAME if|unless COND`.
#[derive(Debug, Clone)]
pub struct UseServer {
    /// The name as written: a server's, or a log format when `dynamic` is set.
    pub server: String,
    /// The name's format when it is one (HAProxy's dynamic rule), rendered per request.
    pub dynamic: Option<LogFormat>,
    /// Why the name does not compile as a log format, reported by [`check`].
    pub invalid: Option<String>,
    pub cond: Condition,
    pub place: Place,
}

/// A rule's target name (`use_backend`, `use-server`) read as HAProxy 2.6 reads it: a log
/// format when it has a `%`, dynamic when that format is more than one text
/// ([`dynamic_name`]); else, or when it does not compile (the error kept for [`check`]),
/// the name as written. A fetch hapx lacks is the error returned.
fn target_name(name: &str, mode: Mode) -> Result<(Option<LogFormat>, Option<String>), String> {
    if !name.contains('%') {
        return Ok((None, None));
    }
    match LogFormat::compile_var_format(name, mode, Stage::TcpContent) {
        Ok(f) => Ok((dynamic_name(name, &f).then_some(f), None)),
        Err(AclError::Bad(m)) => Ok((None, Some(m.trim_end_matches('.').to_string()))),
        Err(AclError::Unsupported(what)) => Err(what),
    }
}

/// `force-persist if|unless COND` (`force`) or `ignore-persist if|unless COND`.
#[derive(Debug, Clone)]
pub struct PersistRule {
    pub force: bool,
    pub cond: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAction {
    Accept,
    Reject,
    /// `tcp-response content close`: the server connection is closed at once (reset), what
    /// it sent so far still goes to the client.
    Close,
    /// `track-scN KEY [table T]`, `sc-inc-gpc0(N)`, `sc-set-gpt0(N) V`: go on after it.
    Stick(StickAction),
    /// `set-var(NAME[,COND...]) EXPR`, `unset-var(NAME)`: go on after it.
    Var(Box<VarRule>),
    /// `tcp-request connection expect-proxy layer4`: the connection starts with a PROXY
    /// header, read once every connection rule ran (as `bind ... accept-proxy`); go on
    /// after it.
    ExpectProxy,
    /// `tcp-request connection|session|content set-tos V`, `set-mark V`: the client
    /// socket's IP TOS or `SO_MARK`, set at once; go on after it.
    SetTos(u32),
    SetMark(u32),
    /// `tcp-request connection|session|content silent-drop`: the connection ends without a
    /// word to the client, not even a reset that would reach it.
    SilentDrop,
    /// `tcp-request content set-log-level LEVEL|silent`: the stream's log line goes at that
    /// level, or not at all; go on after it.
    SetLogLevel(LogLevel),
    /// `tcp-request session|content set-src EXPR`: the client address (its port kept) the
    /// rest of the stream sees, when the expression gives one; go on after it.
    SetSrc(Box<super::acl::Fetch>),
    /// `tcp-request session|content set-src-port EXPR`: the client port likewise, when the
    /// expression gives an integer (cut to 16 bits).
    SetSrcPort(Box<super::acl::Fetch>),
}

/// A traffic rule's `set-var(NAME[,COND...]) EXPR`, `set-var-fmt(NAME[,COND...]) FMT` or
/// `unset-var(NAME)` (`runtime::vars`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRule {
    pub action: VarAction,
    pub conditions: crate::runtime::vars::Conditions,
}

/// Whether `name` is one of the other actions HAProxy 2.6 takes in `tcp-request session`,
/// which hapx does not run.
fn is_session_only(name: &str) -> bool {
    const OTHERS: [&str; 4] = ["capture", "expect-netscaler-cip", "set-dst", "set-dst-port"];
    OTHERS.contains(&name)
}

/// A `tcp-request` action on the client's socket or the stream's log (`set-tos`,
/// `set-mark`, `silent-drop`, `set-log-level`, `set-src`, `set-src-port`) with its argument
/// `arg`, read as HAProxy's parsers of them (their errors its words). What follows `arg` is
/// the caller's.
fn stream_socket_action(name: &str, arg: Option<&str>) -> Result<TcpAction, ActionError> {
    Ok(match name {
        "silent-drop" => TcpAction::SilentDrop,
        "set-log-level" => match arg.and_then(LogLevel::parse) {
            Some(level) => TcpAction::SetLogLevel(level),
            None => return Err(set_log_level_usage()),
        },
        "set-src" | "set-src-port" => {
            let arg: Vec<String> = arg.map(str::to_string).into_iter().collect();
            let expr = Box::new(address_expr("tcp-request", name, &arg)?);
            match name {
                "set-src" => TcpAction::SetSrc(expr),
                _ => TcpAction::SetSrcPort(expr),
            }
        }
        _ => {
            let text = arg.ok_or_else(|| ActionError::Rule(SOCKET_OPTION_USAGE.into()))?;
            let value = socket_option_number(text).map_err(ActionError::Rule)?;
            match name {
                "set-tos" => TcpAction::SetTos(value),
                _ => TcpAction::SetMark(value),
            }
        }
    })
}

/// `tcp-request WHICH expect-proxy layer4` (`words`), checked as HAProxy's
/// `tcp_parse_request_rule`: `layer4` is the only layer, and only connection rules run
/// before the header would be read.
fn expect_proxy(words: &[String], which: &str, kind: &str, k: &str) -> Result<TcpAction, String> {
    let layer = words.get(3).map_or("", String::as_str);
    if layer != "layer4" {
        return Err(format!(
            "'tcp-request {which} expect-proxy' only supports 'layer4' in {kind} '{k}' (got '{layer}')"
        ));
    }
    if which != "connection" {
        return Err(format!(
            "'expect-proxy layer4' is not allowed in 'tcp-request {which}' rules in {kind} '{k}'"
        ));
    }
    Ok(TcpAction::ExpectProxy)
}

/// Whether `name` is a variable action (HAProxy writes the variable in the keyword).
fn is_var_action(name: &str) -> bool {
    ["set-var", "set-var-fmt", "unset-var"].iter().any(|k| {
        name.strip_prefix(k)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('('))
    })
}

/// What `expr` reads, as HAProxy names it in its messages (`status` is the response
/// itself, not its headers).
fn fetch_part(expr: &super::acl::Fetch) -> &'static str {
    match expr.layer() {
        _ if expr.source == super::acl::Source::Status => "HTTP response",
        Layer::L4 => "internal process state",
        Layer::L6 => "request buffer",
        Layer::L6Res => "response buffer",
        Layer::Request => "HTTP request headers",
        Layer::Response => "HTTP response headers",
    }
}

/// Compiles a rule's log-format value where the rule runs.
type CompileFormat<'c> = &'c mut dyn FnMut(&str) -> Result<LogFormat, ActionError>;

/// A variable action `name` with its `args` (up to its condition), whose expression may
/// read the `allowed` layers; `format` compiles a `set-var-fmt` value (None: not
/// implemented there). Errors are HAProxy's words.
fn var_rule(
    name: &str,
    args: &[String],
    allowed: &[Layer],
    format: Option<CompileFormat<'_>>,
) -> Result<(VarRule, usize), ActionError> {
    let (action, var, conditions) = super::acl::var_action(name).map_err(ActionError::Rule)?;
    let name = var.to_string();
    let (action, taken) = match action {
        "set-var" => {
            let text = (args.first().filter(|t| !t.is_empty()))
                .ok_or_else(|| ActionError::Rule("missing fetch method".into()))?;
            let expr = super::acl::parse_fetch(text)?;
            if !allowed.contains(&expr.layer()) {
                return Err(ActionError::Rule(format!(
                    "fetch method 'set-var({var})' extracts information from '{}', none of which is available here",
                    fetch_part(&expr)
                )));
            }
            (VarAction::Set { name, expr }, 1)
        }
        "set-var-fmt" => {
            let Some(format) = format else {
                return Err(ActionError::Unsupported(format!(
                    "the action '{action}' here"
                )));
            };
            let text = args.first().map_or("", String::as_str);
            (
                VarAction::SetFormat {
                    name,
                    format: format(text)?,
                },
                1,
            )
        }
        _ => (VarAction::Unset { name }, 0),
    };
    Ok((VarRule { action, conditions }, taken))
}

/// [`var_rule`] for a TCP rule, whose `set-var-fmt` format renders at `stage` in a proxy in
/// `mode`. `Err`: a format's message, which HAProxy writes alone for these rules.
fn tcp_var_rule(
    name: &str,
    args: &[String],
    allowed: &[Layer],
    (p, stage): (&Proxy, Stage),
    uses_http: &mut bool,
) -> Result<Result<(VarRule, usize), ActionError>, String> {
    let mut format_error = None;
    let mut compile = |text: &str| {
        let format = LogFormat::compile_var_format(text, p.mode, stage);
        *uses_http |= format.as_ref().is_ok_and(LogFormat::uses_http_fetches);
        format.map_err(|e| match e {
            AclError::Bad(m) => {
                let m = m.strip_suffix('.').unwrap_or(&m).to_string();
                format_error = Some(m.clone());
                ActionError::Rule(m)
            }
            unsupported => ActionError::from(unsupported),
        })
    };
    let rule = var_rule(name, args, allowed, Some(&mut compile));
    match format_error {
        Some(m) => Err(m),
        None => Ok(rule),
    }
}

/// [`var_rule`] for `set-var`/`set-var-fmt` in the global section ([`super::global_vars`]),
/// which checks itself what its expression reads; `compile` compiles a format.
pub(super) fn global_var_rule(
    name: &str,
    args: &[String],
    compile: &mut dyn FnMut(&str) -> Result<LogFormat, AclError>,
) -> Result<(VarRule, usize), AclError> {
    let every_layer = [
        Layer::L4,
        Layer::L6,
        Layer::L6Res,
        Layer::Request,
        Layer::Response,
    ];
    let mut compile = |text: &str| compile(text).map_err(ActionError::from);
    var_rule(name, args, &every_layer, Some(&mut compile)).map_err(|e| match e {
        ActionError::Rule(m) | ActionError::Unknown(m) => AclError::Bad(m),
        ActionError::Unsupported(what) => AclError::Unsupported(what),
    })
}

/// What a rule does with stick counters ([`super::stick`]); the rule list goes on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickAction {
    Track(super::stick::Track),
    IncGpc0(u8),
    SetGpt0(u8, i64),
}

impl StickAction {
    /// The `track-scN` this action is, if it is one.
    pub fn track(&self) -> Option<&super::stick::Track> {
        match self {
            StickAction::Track(t) => Some(t),
            _ => None,
        }
    }
}

impl TcpAction {
    /// The `track-scN` this action is, if it is one.
    pub fn track(&self) -> Option<&super::stick::Track> {
        match self {
            TcpAction::Stick(s) => s.track(),
            _ => None,
        }
    }
}

/// The stick action named `name` with `args` (up to the condition), in proxy `own`; None
/// for other actions.
fn stick_action(name: &str, args: &[String], own: &str) -> Option<Result<StickAction, AclError>> {
    if let Some(slot) = super::stick::track_slot(name) {
        return Some(super::stick::parse_track(slot, args, own).map(StickAction::Track));
    }
    // `ACTION(N)`, or slot 0 without `(N)` as in HAProxy; a slot past the last one refused
    // in HAProxy's words (`sc-set-gpt0` names itself in them).
    let slot_of = |action: &str| -> Option<Result<u8, AclError>> {
        let rest = name.strip_prefix(action)?;
        if rest.is_empty() {
            return Some(Ok(0));
        }
        let n: u32 = rest.strip_prefix('(')?.strip_suffix(')')?.parse().ok()?;
        let named = match action {
            "sc-set-gpt0" => format!(" '{name}'"),
            _ => String::new(),
        };
        Some(u8::try_from(n).ok().filter(|n| *n < 3).ok_or_else(|| {
            AclError::Bad(format!(
                "invalid stick table track ID{named}. The max allowed ID is 2"
            ))
        }))
    };
    if let Some(slot) = slot_of("sc-inc-gpc0") {
        let slot = match slot {
            Ok(slot) => slot,
            Err(e) => return Some(Err(e)),
        };
        if let Some(w) = args.first() {
            return Some(Err(AclError::Bad(format!(
                "'{name}' : unexpected keyword '{w}' (expects 'if' or 'unless')"
            ))));
        }
        return Some(Ok(StickAction::IncGpc0(slot)));
    }
    let slot = match slot_of("sc-set-gpt0")? {
        Ok(slot) => slot,
        Err(e) => return Some(Err(e)),
    };
    Some(match args {
        [v] => v
            .parse::<i64>()
            .map(|v| StickAction::SetGpt0(slot, v))
            .map_err(|_| AclError::Unsupported(format!("'{name}' with a non-integer value"))),
        _ => Err(AclError::Bad(format!(
            "'{name}' expects exactly one integer value"
        ))),
    })
}

/// `tcp-request connection|content accept|reject [COND]`.
#[derive(Debug, Clone)]
pub struct TcpRule {
    pub action: TcpAction,
    pub cond: Option<Condition>,
}

/// Where a redirection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectTo {
    /// `location L`: exactly there.
    Location(LogFormat),
    /// `prefix P`: P followed by the request's URI.
    Prefix(LogFormat),
    /// `scheme S`: S://Host followed by the URI.
    Scheme(LogFormat),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub to: RedirectTo,
    pub code: u16,
    pub drop_query: bool,
    pub append_slash: bool,
    /// The `set-cookie` header value of `set-cookie NAME[=VALUE]` (`NAME=VALUE; path=/;`)
    /// or `clear-cookie NAME[=]` (`NAME=; path=/; Max-Age=0;`), the last one written; the
    /// cookie is taken as written, not as a log format.
    pub cookie: Option<String>,
    /// `ignore-empty`: a `location` format that renders nothing skips the rule, which is
    /// then not final.
    pub ignore_empty: bool,
}

/// What an `http-request`/`http-response` rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAction {
    Allow,
    /// `deny [deny_status N] [reply options]`: `http-response deny` answers 502.
    Deny(Reply),
    /// `tarpit [deny_status N] [reply options]`: held for `timeout tarpit`, then answered
    /// (500).
    Tarpit(Reply),
    /// `auth [realm R]`: 401 (the realm defaults to the proxy's name).
    Auth(Option<String>),
    Redirect(Redirect),
    /// `return [status N] [content-type T] [string S | file F | errorfile F]`.
    Return(Reply),
    SetHeader(String, LogFormat),
    AddHeader(String, LogFormat),
    /// `del-header NAME [-m str|beg|end|sub|reg]`: removes every header whose name matches.
    DelHeader(String, NameMatch),
    /// `set-method|set-path|set-query|set-uri FMT`.
    Set(Part, LogFormat),
    /// `http-response set-status CODE [reason TEXT]`.
    SetStatus(u16, Option<String>),
    /// `replace-path|replace-uri REGEX FMT`, `replace-header|replace-value NAME REGEX FMT`.
    Replace(Part, Replace),
    /// `track-scN`, `sc-inc-gpc0(N)`, `sc-set-gpt0(N)`.
    Stick(StickAction),
    /// `set-var(NAME[,COND...]) EXPR`, `set-var-fmt(NAME[,COND...]) FMT`, `unset-var(NAME)`.
    Var(Box<VarRule>),
    /// `strict-mode on|off`: whether a rewrite that fails after it, in the same rule list,
    /// ends the message with a 500 (on, where every list starts) or is only counted.
    StrictMode(bool),
    /// `add-acl(FILE) KEY`, `del-acl(FILE) KEY`, `set-map(FILE) KEY VALUE`,
    /// `del-map(FILE) KEY`.
    Pattern(Box<PatternEdit>),
    /// `set-log-level LEVEL|silent`: the request's log line goes at that level, or not at
    /// all.
    SetLogLevel(LogLevel),
    /// `http-request reject`: the connection closes at once, unanswered (counted as denied).
    Reject,
    /// `silent-drop`: the connection closes unanswered, as quietly as the system allows.
    SilentDrop,
    /// `set-nice N` (clamped to -1024..=1024 as HAProxy): the request's scheduling
    /// priority, which hapx's scheduler (tokio's, first come first served) has no use for.
    SetNice(i32),
    /// `set-tos N`: the client connection's IP TOS (IPv4) or traffic class (IPv6).
    SetTos(u32),
    /// `set-mark N`: the client connection's `SO_MARK`.
    SetMark(u32),
    /// `http-request capture EXPR len N|id N`, `http-response capture EXPR id N`.
    Capture(Box<CaptureRule>),
    /// `http-request set-src EXPR`: the client address the rest of the request sees (its
    /// port kept), when the expression gives one.
    SetSrc(Box<super::acl::Fetch>),
    /// `http-request early-hint NAME FMT`: a `103 Early Hints` response with this header,
    /// sent to an HTTP/1.1 client before the final response.
    EarlyHint(String, LogFormat),
}

/// A rule capturing a sample into one of the frontend's capture slots, shown in the log
/// line as `capture request|response header` values are (`%hr`, `%hs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRule {
    pub expr: super::acl::Fetch,
    /// The slot: an index into the frontend's request (or response) captures, as
    /// HAProxy's `int` (a negative one, which HAProxy's check lets through, captures
    /// nothing here).
    pub slot: i64,
    /// A response's (`http-response capture`).
    pub response: bool,
}

/// What `set-log-level` makes of a request's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `silent`: no line.
    Silent,
    /// A syslog severity, 0 (`emerg`) to 7 (`debug`).
    Severity(u8),
}

/// The syslog severities by name, as HAProxy reads them.
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl LogLevel {
    /// `silent` or a severity's name.
    fn parse(word: &str) -> Option<LogLevel> {
        if word == "silent" {
            return Some(LogLevel::Silent);
        }
        let severity = SEVERITIES.iter().position(|s| *s == word)?;
        u8::try_from(severity).ok().map(LogLevel::Severity)
    }
}

/// How `del-header -m` compares header names with its own: as HAProxy, which holds them
/// lower-cased, so that all but `reg` ignore case and `reg` sees them lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    /// `str` (the default): the whole name.
    Exact,
    /// `beg`: the name starts with it.
    Prefix,
    /// `end`: the name ends with it.
    Suffix,
    /// `sub`: the name contains it.
    Substring,
    /// `reg`: the regex (case-sensitive) matches the lower-cased name.
    Regex(super::pcre::Regex),
}

impl NameMatch {
    /// Whether header name `name` matches `pattern` so.
    pub fn matches(&self, pattern: &str, name: &str) -> bool {
        let (name_b, pattern_b) = (name.as_bytes(), pattern.as_bytes());
        let at = |i: usize| name_b[i..i + pattern_b.len()].eq_ignore_ascii_case(pattern_b);
        match self {
            NameMatch::Exact => name.eq_ignore_ascii_case(pattern),
            NameMatch::Prefix => name_b.len() >= pattern_b.len() && at(0),
            NameMatch::Suffix => {
                name_b.len() >= pattern_b.len() && at(name_b.len() - pattern_b.len())
            }
            NameMatch::Substring => {
                name_b.len() >= pattern_b.len() && (0..=name_b.len() - pattern_b.len()).any(at)
            }
            NameMatch::Regex(re) => re.is_match_text(&name.to_ascii_lowercase()),
        }
    }
}

/// An action changing a pattern reference (a map or ACL file) at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternEdit {
    pub edit: Edit,
    /// The file, as HAProxy takes it from the action's name.
    pub file: crate::runtime::map::FileRef,
    pub key: LogFormat,
}

/// What a [`PatternEdit`] does with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// `add-acl`: adds it unless an entry has it.
    Add,
    /// `set-map`: sets every entry with it to the value, or adds it with the value.
    Set(LogFormat),
    /// `del-acl`, `del-map`: deletes every entry with it.
    Delete,
}

impl HttpAction {
    /// Whether the action ends its rule list's evaluation (HAProxy's `ACT_FLG_FINAL`).
    pub fn is_final(&self) -> bool {
        match self {
            HttpAction::Redirect(r) => !r.ignore_empty,
            action => matches!(
                action,
                HttpAction::Allow
                    | HttpAction::Deny(_)
                    | HttpAction::Tarpit(_)
                    | HttpAction::Auth(_)
                    | HttpAction::Return(_)
            ),
        }
    }

    /// The `track-scN` this action is, if it is one.
    pub fn track(&self) -> Option<&super::stick::Track> {
        match self {
            HttpAction::Stick(s) => s.track(),
            _ => None,
        }
    }

    /// The log formats of the action's values.
    pub fn values(&self) -> Vec<&LogFormat> {
        match self {
            HttpAction::SetHeader(_, f)
            | HttpAction::AddHeader(_, f)
            | HttpAction::EarlyHint(_, f)
            | HttpAction::Set(_, f)
            | HttpAction::Replace(_, Replace { with: f, .. }) => vec![f],
            HttpAction::Redirect(r) => vec![r.to.target()],
            HttpAction::Var(v) => match &v.action {
                VarAction::SetFormat { format, .. } => vec![format],
                _ => Vec::new(),
            },
            HttpAction::Deny(r) | HttpAction::Tarpit(r) | HttpAction::Return(r) => {
                r.headers.iter().map(|(_, f)| f).chain(&r.lf_body).collect()
            }
            HttpAction::Pattern(p) => match &p.edit {
                Edit::Set(value) => vec![&p.key, value],
                _ => vec![&p.key],
            },
            _ => Vec::new(),
        }
    }

    /// The reply the action answers with (`deny`, `tarpit`, `return`).
    pub fn reply_mut(&mut self) -> Option<&mut Reply> {
        match self {
            HttpAction::Deny(r) | HttpAction::Tarpit(r) | HttpAction::Return(r) => Some(r),
            _ => None,
        }
    }
}

impl RedirectTo {
    /// The format of the target.
    pub fn target(&self) -> &LogFormat {
        match self {
            RedirectTo::Location(f) | RedirectTo::Prefix(f) | RedirectTo::Scheme(f) => f,
        }
    }
}

/// What `deny`, `tarpit` and `return` answer: a status and maybe their own payload (without
/// one, an empty body), or the proxy's error page for the status ([`Reply::error_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The proxy's error page for the status (its `http-error` reply, its `errorfile`, or
    /// HAProxy's own), as at run time: `default-errorfiles`, and a `deny` or `tarpit`
    /// given no reply option but `deny_status N` (HAProxy's legacy form). A `deny status
    /// N` without a payload answers an empty body, as HAProxy's.
    pub error_page: bool,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
    /// `lf-string`, `lf-file`: a body rendered for each answer.
    pub lf_body: Option<LogFormat>,
    /// `errorfile`, `errorfiles NAME` once resolved: a page sent instead of a built reply,
    /// prepared when loaded.
    pub page: Option<super::errors::Page>,
    /// `hdr NAME FMT`: headers before the others (then the reply has no error page: an
    /// empty body if it has no payload).
    pub headers: Vec<(String, LogFormat)>,
    /// `errorfiles NAME`: the page of `http-errors` section NAME for the status, taken
    /// once the sections are read ([`super::errors::resolve`]); None after.
    pub errorfiles: Option<String>,
}

/// The part of a message a `set-*`/`replace-*` action rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Method,
    Path,
    Query,
    Uri,
    /// Each whole value of this header.
    Header(String),
    /// Each comma-separated value of this header.
    Value(String),
}

/// A regex and what a match becomes: the format's text with `\N` standing for group N
/// (HAProxy's `exp_replace`).
#[derive(Debug, Clone)]
pub struct Replace {
    /// With groups, case-sensitive (HAProxy's `regex_comp(p, 1, 1)`).
    pub re: super::pcre::Regex,
    pub with: LogFormat,
}

impl PartialEq for Replace {
    fn eq(&self, other: &Self) -> bool {
        self.re == other.re && self.with == other.with
    }
}

impl Eq for Replace {}

#[derive(Debug, Clone)]
pub struct HttpRule {
    pub action: HttpAction,
    pub cond: Option<Condition>,
}

/// The status codes HAProxy has a message for (others answer with its 500 page).
pub const STATUS_CODES: [u16; 19] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504,
];

/// What a `stick` rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickKind {
    /// `stick on`: both of the others.
    On,
    /// `stick match`: a request whose key has an entry goes to the entry's server.
    Match,
    /// `stick store-request`: the request's key gets the server that serves it.
    StoreRequest,
    /// `stick store-response`: the response's key gets the server that sent it.
    StoreResponse,
}

/// A request-side `stick` rule's key (`name` its fetch) must be known while the request is
/// (HAProxy's `SMP_VAL_BE_SET_SRV`).
fn stick_request_key(key: &super::acl::Fetch, name: &str) -> Result<(), String> {
    let part = match (key.layer(), &key.source) {
        (Layer::L6Res, _) => "response buffer",
        (_, super::acl::Source::Status) => "HTTP response",
        (Layer::Response, _) => "HTTP response headers",
        _ => return Ok(()),
    };
    Err(format!(
        "'stick': fetch method '{name}' extracts information from '{part}', none of which is available during request."
    ))
}

/// Whether `fetch` reads what HAProxy keeps of a request once its head is gone (its
/// `SMP_USE_HRQHP`: the method, `req.proto_http`), so that response rules may use it.
fn kept_past_request(fetch: &super::acl::Fetch) -> bool {
    use super::acl::Source;
    matches!(fetch.source, Source::Method | Source::ProtoHttp)
}

/// A `stick store-response` key (`name` its fetch, `text` as written) must be known when
/// the response comes (HAProxy's `SMP_VAL_BE_STO_RUL`): not the request's buffer, nor its
/// headers but the method and `req.proto_http`, which stay ([`kept_past_request`]). A `hdr*` fetch reads the
/// response's headers there, as HAProxy's does in the response's direction.
fn stick_response_key(key: &mut super::acl::Fetch, name: &str, text: &str) -> Result<(), String> {
    use super::acl::Source;
    let part = match (key.layer(), &mut key.source) {
        (Layer::Request, Source::Header(h)) if text.starts_with("hdr") => {
            h.response = true;
            return Ok(());
        }
        (Layer::Request, Source::Method | Source::ProtoHttp) => return Ok(()),
        (Layer::L6, _) => "request buffer",
        (Layer::Request, _) => "HTTP request headers",
        _ => return Ok(()),
    };
    Err(format!(
        "'stick': fetch method '{name}' extracts information from '{part}', none of which is available for 'store-response'."
    ))
}

/// `stick on|match|store-request|store-response KEY [table T] [if|unless COND]`.
#[derive(Debug, Clone)]
pub struct StickRule {
    pub kind: StickKind,
    pub key: super::acl::Fetch,
    /// The table's proxy (the rule's own when not named).
    pub table: String,
    pub cond: Option<Condition>,
}

impl StickRule {
    /// Whether a request's key finds its server (`stick on`, `stick match`).
    pub fn matches(&self) -> bool {
        matches!(self.kind, StickKind::On | StickKind::Match)
    }

    /// Whether a request's key stores its server (`stick on`, `stick store-request`).
    pub fn stores(&self) -> bool {
        matches!(self.kind, StickKind::On | StickKind::StoreRequest)
    }

    /// Whether a response's key stores its server (`stick store-response`).
    pub fn stores_response(&self) -> bool {
        self.kind == StickKind::StoreResponse
    }
}

/// The keywords [`parse_line`] handles.
pub const KEYWORDS: [&str; 15] = [
    "stick",
    "acl",
    "use_backend",
    "tcp-request",
    "http-request",
    "http-response",
    "redirect",
    "monitor-uri",
    "monitor",
    "http-after-response",
    "tcp-response",
    "use-server",
    "force-persist",
    "ignore-persist",
    "declare",
];

/// The actions HAProxy 2.6 takes in `http-after-response`, as its error lists them.
const AFTER_RESPONSE_ACTIONS: [&str; 13] = [
    "ot-group",
    "add-header",
    "allow",
    "capture",
    "del-header",
    "replace-header",
    "replace-value",
    "set-header",
    "set-status",
    "strict-mode",
    "set-var-fmt(*)",
    "set-var(*)",
    "unset-var(*)",
];

/// The actions HAProxy 2.6 takes in `http-request`, as its error lists them.
const HTTP_REQUEST_ACTIONS: [&str; 57] = [
    "wait-for-handshake",
    "ot-group",
    "set-log-level",
    "set-nice",
    "use-service",
    "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)",
    "sc-inc-gpc1(*)",
    "sc-set-gpt(*)",
    "sc-set-gpt0(*)",
    "send-spoe-group",
    "do-resolve(*)",
    "cache-use",
    "add-acl(*)",
    "add-header",
    "allow",
    "auth",
    "capture",
    "del-acl(*)",
    "del-header",
    "del-map(*)",
    "deny",
    "disable-l7-retry",
    "early-hint",
    "normalize-uri",
    "redirect",
    "reject",
    "replace-header",
    "replace-path",
    "replace-pathq",
    "replace-uri",
    "replace-value",
    "return",
    "set-header",
    "set-map(*)",
    "set-method",
    "set-path",
    "set-pathq",
    "set-query",
    "set-uri",
    "strict-mode",
    "tarpit",
    "track-sc(*)",
    "set-timeout",
    "wait-for-body",
    "set-var-fmt(*)",
    "set-var(*)",
    "unset-var(*)",
    "set-dst",
    "set-dst-port",
    "set-mark",
    "set-src",
    "set-src-port",
    "set-tos",
    "silent-drop",
    "set-priority-class",
    "set-priority-offset",
];

/// The actions HAProxy 2.6 takes in `http-response`, as its error lists them.
const HTTP_RESPONSE_ACTIONS: [&str; 34] = [
    "ot-group",
    "set-log-level",
    "set-nice",
    "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)",
    "sc-inc-gpc1(*)",
    "sc-set-gpt(*)",
    "sc-set-gpt0(*)",
    "send-spoe-group",
    "cache-store",
    "add-acl(*)",
    "add-header",
    "allow",
    "capture",
    "del-acl(*)",
    "del-header",
    "del-map(*)",
    "deny",
    "redirect",
    "replace-header",
    "replace-value",
    "return",
    "set-header",
    "set-map(*)",
    "set-status",
    "strict-mode",
    "track-sc(*)",
    "wait-for-body",
    "set-var-fmt(*)",
    "set-var(*)",
    "unset-var(*)",
    "set-mark",
    "set-tos",
    "silent-drop",
];

/// The actions HAProxy 2.6 takes in `tcp-request content`, as its error lists them after
/// its fixed part ([`TCP_REQUEST_FIXED`]).
const TCP_CONTENT_ACTIONS: [&str; 24] = [
    "ot-group",
    "set-log-level",
    "set-nice",
    "switch-mode",
    "use-service",
    "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)",
    "sc-inc-gpc1(*)",
    "sc-set-gpt(*)",
    "sc-set-gpt0(*)",
    "send-spoe-group",
    "do-resolve(*)",
    "set-var-fmt(*)",
    "set-var(*)",
    "unset-var(*)",
    "set-src",
    "set-src-port",
    "set-dst",
    "set-dst-port",
    "set-mark",
    "set-tos",
    "silent-drop",
    "set-priority-class",
    "set-priority-offset",
];

/// The same for `tcp-request connection` and `tcp-request session` (one list in HAProxy).
const TCP_CONNECTION_ACTIONS: [&str; 15] = [
    "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)",
    "sc-inc-gpc1(*)",
    "sc-set-gpt(*)",
    "sc-set-gpt0(*)",
    "set-var-fmt(*)",
    "set-var(*)",
    "unset-var(*)",
    "set-dst",
    "set-dst-port",
    "set-mark",
    "set-src",
    "set-src-port",
    "set-tos",
    "silent-drop",
];

/// The start of HAProxy's list of `tcp-request` actions, written as it is.
const TCP_REQUEST_FIXED: &str = "'accept', 'reject', 'capture', 'expect-proxy', 'expect-netscaler-cip', 'track-sc0' ... 'track-sc2'";

/// The actions of [`TCP_REQUEST_FIXED`], one by one.
const TCP_REQUEST_FIXED_ACTIONS: [&str; 8] = [
    "accept",
    "reject",
    "capture",
    "expect-proxy",
    "expect-netscaler-cip",
    "track-sc0",
    "track-sc1",
    "track-sc2",
];

/// The words HAProxy's `tcp-request` suggestions try after the keywords (its `extra`).
const TCP_REQUEST_EXTRA: [&str; 6] = [
    "accept",
    "reject",
    "capture",
    "track-sc",
    "expect-proxy",
    "expect-netscaler-cip",
];

/// HAProxy's `Did you mean` hint for an unknown action `name` among `actions` (as its
/// errors list them, a prefix keyword with `(*)`, in its order) then `extra` words, with
/// the space before it; empty without a close one. As HAProxy 2.6's `action_suggest`: the
/// first closest of them by [`fingerprint_distance`] of the whole word (a prefix keyword
/// by its name, `set-var` for `set-var(*)`), unless that distance is over twice the
/// length of the word or of the suggestion (three times for a prefix keyword, whose
/// written form carries an argument).
fn action_hint<'a>(
    name: &str,
    actions: impl IntoIterator<Item = &'a str>,
    extra: &[&'a str],
) -> String {
    use crate::config::keywords::fingerprint_distance;
    let listed = actions.into_iter().map(|a| match a.strip_suffix("(*)") {
        Some(prefix) => (prefix, 3),
        None => (a, 2),
    });
    let extra = extra.iter().map(|e| (*e, 2));
    let mut best: Option<(&str, usize, usize)> = None;
    for (word, tolerance) in listed.chain(extra) {
        let distance = fingerprint_distance(name, word);
        if best.is_none_or(|(_, d, _)| distance < d) {
            best = Some((word, distance, tolerance));
        }
    }
    match best {
        Some((word, d, tolerance))
            if !name.is_empty() && d <= tolerance * word.len() && d <= tolerance * name.len() =>
        {
            format!(" Did you mean '{word}' maybe ?")
        }
        _ => String::new(),
    }
}

/// HAProxy's message for an action `name` that `kw` (`http-request`, `http-response`,
/// `http-after-response`) does not take, which it writes as `parsing [FILE:LINE]: ...`.
fn unknown_http_action(kw: &str, actions: &[&str], name: &str) -> String {
    let list = actions
        .iter()
        .map(|a| format!("'{a}', "))
        .collect::<String>();
    let missing = if name.is_empty() {
        " (missing argument)"
    } else {
        ""
    };
    let hint = action_hint(name, actions.iter().copied(), &[]);
    format!("'{kw}' expects {list}but got '{name}'{missing}.{hint}")
}

/// HAProxy's message for an action `name` that `tcp-request {which}` does not take in a
/// `kind` proxy `proxy` (it ends with a line break, which HAProxy writes as a blank line).
fn unknown_tcp_request_action(which: &str, name: &str, kind: &str, proxy: &str) -> String {
    let actions = tcp_request_actions(which);
    let list = actions
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = action_hint(name, actions.iter().copied(), &TCP_REQUEST_EXTRA);
    format!(
        "'tcp-request {which}' expects {TCP_REQUEST_FIXED}, {list} in {kind} '{proxy}' (got '{name}').{hint}\n"
    )
}

/// HAProxy's actions of `tcp-request {which}` after [`TCP_REQUEST_FIXED`].
fn tcp_request_actions(which: &str) -> &'static [&'static str] {
    match which {
        "content" => &TCP_CONTENT_ACTIONS,
        _ => &TCP_CONNECTION_ACTIONS,
    }
}

/// Whether HAProxy takes `name` in `tcp-request {which}`.
fn is_tcp_request_action(which: &str, name: &str) -> bool {
    TCP_REQUEST_FIXED_ACTIONS.contains(&name) || haproxy_takes(tcp_request_actions(which), name)
}

/// Whether HAProxy's action lookup finds `name` among `actions` (as its errors list them):
/// a `NAME(*)` action is any word starting with NAME (`track-sc5`, `set-varx(txn.a)`,
/// refused by the action's own parser then), the others the word itself.
fn haproxy_takes(actions: &[&str], name: &str) -> bool {
    actions.iter().any(|a| match a.strip_suffix("(*)") {
        Some(prefix) => name.starts_with(prefix),
        None => name == *a,
    })
}

/// The actions HAProxy 2.6 takes in `tcp-response content`, as its error lists them.
const TCP_RESPONSE_ACTIONS: [&str; 18] = [
    "accept",
    "close",
    "reject",
    "ot-group",
    "set-log-level",
    "set-nice",
    "sc-inc-gpc(*)",
    "sc-inc-gpc0(*)",
    "sc-inc-gpc1(*)",
    "sc-set-gpt(*)",
    "sc-set-gpt0(*)",
    "send-spoe-group",
    "set-var-fmt(*)",
    "set-var(*)",
    "unset-var(*)",
    "set-mark",
    "set-tos",
    "silent-drop",
];

/// Whether HAProxy takes `name` as a `tcp-response content` action (`set-var(txn.x)` is
/// `set-var(*)`; `sc-inc-gpc0` without its counter too).
fn is_tcp_response_action(name: &str) -> bool {
    is_listed_action(&TCP_RESPONSE_ACTIONS, name)
}

/// Whether `name` is one of `actions` as HAProxy lists them (`set-var(*)` for any variable).
fn is_listed_action(actions: &[&str], name: &str) -> bool {
    actions.iter().any(|a| match a.strip_suffix("(*)") {
        Some(prefix) => name
            .strip_prefix(prefix)
            .is_some_and(|r| r.is_empty() || r.starts_with('(')),
        None => name == *a,
    })
}

/// `tcp-response inspect-delay`'s value; Err: what HAProxy adds to its message (maybe
/// nothing).
fn response_inspect_delay(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err(String::new());
    }
    match values::duration(text) {
        Ok(d) => Ok(d),
        Err(e) if e.starts_with("timer overflow") => Err(format!(
            " (timer overflow in '{text}', maximum value is 2147483647 ms or ~24.8 days)"
        )),
        Err(_) => {
            let digits = text.bytes().take_while(u8::is_ascii_digit).count();
            let bad = text[digits..].chars().next().unwrap_or_default();
            Err(format!(" (unexpected character '{bad}')"))
        }
    }
}

/// `tcp-request` without a known word after it, as HAProxy words it (a defaults section,
/// named or not, is "defaults section").
fn tcp_request_word_error(p: &Proxy, which: &str) -> String {
    let place = match p.kind {
        ProxyKind::Defaults => "defaults section".to_string(),
        kind => format!("{} '{}'", kind.type_str(), p.name),
    };
    if which.is_empty() {
        return format!("missing argument for 'tcp-request' in {place}");
    }
    format!(
        "'tcp-request' expects 'inspect-delay', 'connection', or 'content' in {place} (got '{which}')"
    )
}

/// `tcp-response` without a known word after it, as HAProxy words it.
fn tcp_response_word_error(p: &Proxy, which: &str) -> String {
    let (kind, name) = (p.kind.type_str(), &p.name);
    if which.is_empty() {
        return format!("missing argument for 'tcp-response' in {kind} '{name}'");
    }
    format!(
        "'tcp-response' expects 'inspect-delay' or 'content' in {kind} '{name}' (got '{which}')"
    )
}

/// Keywords HAProxy refuses in any `defaults` section, named or not.
const NOT_IN_DEFAULTS: [&str; 6] = [
    "redirect",
    "use_backend",
    "stick",
    "use-server",
    "force-persist",
    "ignore-persist",
];

/// Handles one of the rule keywords in a proxy section; false if `words[0]` is none.
pub fn parse_line(
    p: &mut Proxy,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<bool, String> {
    let kw = words[0].as_str();
    if !KEYWORDS.contains(&kw) {
        return Ok(false);
    }
    if kw == "declare" {
        declare(p, words)?;
        return Ok(true);
    }
    let named_defaults = p.kind == ProxyKind::Defaults && !p.name.is_empty();
    if kw == "tcp-response" && !(p.kind.is_backend() || named_defaults) {
        if let Some(which) = words
            .get(1)
            .filter(|w| *w == "inspect-delay" || *w == "content")
        {
            return Err(format!(
                "tcp-response {which} is only allowed in 'backend' sections or 'defaults' section with a name"
            ));
        }
    }
    // In an unnamed defaults section HAProxy reads the word after these keywords first.
    if p.kind == ProxyKind::Defaults && p.name.is_empty() && kw.starts_with("tcp-re") {
        let which = words.get(1).map_or("", String::as_str);
        return Err(match (kw, which) {
            ("tcp-request", "inspect-delay" | "connection" | "session" | "content") => {
                format!("tcp-request {which} is not allowed in anonymous 'defaults' sections")
            }
            ("tcp-request", _) => tcp_request_word_error(p, which),
            // `inspect-delay` and `content` were refused above.
            _ => tcp_response_word_error(p, which),
        });
    }
    // A named section's ACLs and rules are its own; the proxies that start from it run its
    // rules first ([`Rules::inherited`]).
    let refused_in_defaults =
        p.name.is_empty() || NOT_IN_DEFAULTS.contains(&kw) || kw.starts_with("monitor");
    if p.kind == ProxyKind::Defaults && refused_in_defaults {
        let anonymous = if p.name.is_empty() && !NOT_IN_DEFAULTS.contains(&kw) {
            "anonymous "
        } else {
            ""
        };
        return Err(format!(
            "'{kw}' not allowed in {anonymous}'defaults' section."
        ));
    }
    let own = p.name.clone();
    let mut ctx = Ctx {
        p,
        place,
        diags,
        warnings: Vec::new(),
    };
    let expression = within(words);
    let ((result, table_refs), backend_refs) = super::acl::collect_backend_refs(|| {
        super::stick::written_at(&own, place, expression, || match kw {
            "acl" => ctx.acl(words),
            "use_backend" => ctx.use_backend(words),
            "tcp-request" => ctx.tcp_request(words),
            "tcp-response" => ctx.tcp_response(words),
            "http-request" | "http-response" | "http-after-response" => ctx.http_rule(words),
            "redirect" => ctx.redirect(words),
            "monitor-uri" => ctx.monitor_uri(words),
            "stick" => ctx.stick(words),
            "use-server" => ctx.use_server(words),
            "force-persist" | "ignore-persist" => ctx.persist_rule(words),
            _ => ctx.monitor(words),
        })
    });
    let in_defaults = ctx.p.kind == ProxyKind::Defaults;
    let table_refs = table_refs
        .into_iter()
        .map(|r| super::stick::ArgRef { in_defaults, ..r });
    ctx.p.rules.table_refs.extend(table_refs);
    let defaults = in_defaults.then(|| own.clone());
    let noted = noted_refs(backend_refs, place, expression, defaults);
    ctx.p.rules.references.extend(noted);
    let Ctx {
        diags, warnings, ..
    } = ctx;
    for w in warnings {
        diags.warn(place, w);
    }
    result.map(|()| true)
}

/// `stats admin if|unless COND` (`words` from `stats`): the condition under which the stats
/// page takes actions, read with the proxy's ACLs as an `http-request` rule's.
pub fn stats_admin(
    p: &mut Proxy,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    if p.kind == ProxyKind::Defaults {
        return Err("'stats admin' not allowed in 'defaults' section.".into());
    }
    if !words.get(2).is_some_and(|w| w == "if" || w == "unless") {
        return Err(
            "'stats admin' requires either 'if' or 'unless' followed by a condition.".into(),
        );
    }
    let mut ctx = Ctx {
        p,
        place,
        diags,
        warnings: Vec::new(),
    };
    let usage = Usage {
        allowed: &[Layer::L4, Layer::L6, Layer::Request],
        name: "http-request header rule".into(),
        within: "",
        side: None,
        checked: Checked::ConflictsOnly,
    };
    let result = match ctx.condition(&words[2..], &usage, |e| {
        format!("error detected while parsing a 'stats admin' rule : {e}.")
    }) {
        Ok(cond) => {
            ctx.p.stats.enabled = true;
            ctx.p.stats.admin.extend(cond);
            Ok(())
        }
        Err(e) => ctx.refuse(e, words),
    };
    let Ctx {
        diags, warnings, ..
    } = ctx;
    for w in warnings {
        diags.warn(place, w);
    }
    result
}

/// How HAProxy names the expressions of a rule line when a table they name is missing
/// (its `ARGC_*` contexts; the fetches of its ACLs are an ACL's).
fn within(words: &[String]) -> Option<&'static str> {
    let word = |i: usize| words.get(i).map_or("", String::as_str);
    Some(match word(0) {
        "tcp-request" if word(2).starts_with("track-sc") => "tracking rule",
        "tcp-request" => match word(1) {
            "connection" => "tcp-request connection expression",
            "session" => "tcp-request session expression",
            _ => "tcp-request content expression",
        },
        "http-request" if word(1) == "redirect" => "redirect format string",
        "http-request" => "http-request expression",
        "http-response" | "http-after-response" => "http-response response",
        "use_backend" => "use_backend expression",
        "redirect" => "redirect format string",
        "stick" => "stick rule",
        "use-server" => "use-server expression",
        _ => return None,
    })
}

/// How HAProxy names the rules checked where a server is picked (`SMP_VAL_BE_SET_SRV`):
/// `use-server`, `stick on|match|store-request`.
const SET_SERVER_RULE: &str = "use-server, balance or stick-match rule";

/// Whether `source` reads a connection's raw bytes (HAProxy's `SMP_USE_L6REQ|L6RES`),
/// which an HTTP proxy's rules never see.
fn reads_raw_bytes(source: &super::acl::Source) -> bool {
    use super::acl::Source;
    matches!(
        source,
        Source::ReqLen
            | Source::SslSni
            | Source::SslVer
            | Source::SslHelloType
            | Source::Payload(..)
            | Source::PayloadLv(..)
            | Source::RdpCookie(_)
            | Source::RdpCookieCnt(_)
            | Source::ResLen
            | Source::ResPayload(..)
            | Source::ResPayloadLv(..)
            | Source::ResSslHelloType
    )
}

/// HAProxy's alerts for the `capture ... id N` rules of `p` naming a slot it lacks; a
/// backend's are not checked (HAProxy checks frontends' alone).
fn unknown_capture_ids(p: &Proxy) -> Vec<String> {
    if !p.kind.is_frontend() {
        return Vec::new();
    }
    let lists = [
        (
            &p.rules.http_request,
            p.log.req_captures.len(),
            "http-request",
        ),
        (
            &p.rules.http_response,
            p.log.resp_captures.len(),
            "http-response",
        ),
        // HAProxy names these by the `http-response` parser they share.
        (
            &p.rules.http_after_response,
            p.log.resp_captures.len(),
            "http-response",
        ),
    ];
    let mut alerts = Vec::new();
    for (rules, slots, kw) in lists {
        for rule in rules {
            if let HttpAction::Capture(c) = &rule.action
                && c.slot >= slots as i64
            {
                alerts.push(format!(
                    "Proxy '{}': unable to find capture id '{}' referenced by {kw} capture rule.",
                    p.name, c.slot
                ));
            }
        }
    }
    alerts
}

/// The alert for a rule using `what`, which hapx does not implement.
fn unevaluable(words: &[String], what: &str) -> String {
    let rule = words
        .iter()
        .take_while(|w| *w != "if" && *w != "unless")
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "'{rule}' uses {what}, which is not implemented by hapx; hapx refuses to run without this rule."
    )
}

struct Ctx<'a> {
    p: &'a mut Proxy,
    place: &'a Place,
    diags: &'a mut Diags,
    warnings: Vec<String>,
}

/// Where a condition is used: which layers its fetches may read, and how HAProxy names it.
struct Usage {
    allowed: &'static [Layer],
    name: String,
    /// `in 'tcp-request connection' ` in the never-match warning.
    within: &'static str,
    /// The proxy side HAProxy names in that warning when the rule's check fixes it
    /// (`tcp-response content`: always the backend's); none: the proxy's own.
    side: Option<&'static str>,
    /// What HAProxy checks of this rule's condition.
    checked: Checked,
}

/// What HAProxy's configuration check warns about in a rule's condition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    /// ACLs that cannot match where the rule runs (`warnif_cond_conflicts`), and, in an
    /// HTTP proxy, raw-byte fetches (`L6 sample fetches ignored`, at the rule, per rule).
    All,
    /// The ACLs that cannot match only (`redirect`, `stats admin`, `stick
    /// store-response`, `force-persist`/`ignore-persist`).
    ConflictsOnly,
    /// Nothing (`monitor fail`).
    Nothing,
}

impl Ctx<'_> {
    fn side(&self) -> &'static str {
        if self.p.kind.is_frontend() {
            "frontend"
        } else {
            "backend"
        }
    }

    /// Warns as HAProxy does when the proxy has no frontend side. Like HAProxy, the rule
    /// is kept anyway (a backend's `use_backend` is then a loop, `monitor-uri` unused).
    fn warn_unless_frontend(&mut self, kw: &str) {
        if !self.p.kind.is_frontend() {
            self.warnings.push(format!(
                "'{kw}' ignored because {} '{}' has no frontend capability.",
                self.p.kind.keyword(),
                self.p.name
            ));
        }
    }

    fn acl(&mut self, words: &[String]) -> Result<(), String> {
        let declared = super::acl::uncollected(|| {
            super::stick::in_acl(|| self.p.rules.acls.declare(&words[1..], &mut self.warnings))
        });
        match declared {
            Ok(acl) => {
                if let Some(e) = self.p.rules.acls.acls[acl].exprs.last().cloned() {
                    self.note_fetch(&e.fetch.source);
                }
                Ok(())
            }
            Err(AclError::Bad(m)) => Err(m),
            Err(AclError::Unsupported(what)) => {
                self.warnings.push(format!(
                    "acl '{}' uses {what}, which is not implemented by hapx; a rule using it is refused.",
                    words[1]
                ));
                Ok(())
            }
        }
    }

    /// An error for a bad rule, and also for one using what hapx does not implement: a
    /// rule hapx cannot evaluate must not be dropped (a dropped `deny` lets everything
    /// through), so the configuration is refused.
    /// A TCP rule's variable action (`set-var`, `set-var-fmt`, `unset-var` named `name`, its
    /// arguments up to `end`) and how many words it took; its errors as HAProxy's TCP rule
    /// parsers write an action's (an expression's as outside of an ACL).
    fn tcp_var_action(
        &mut self,
        name: &str,
        words: &[String],
        end: usize,
        allowed: &[Layer],
        stage: Stage,
    ) -> Result<(TcpAction, usize), String> {
        let args = &words[3.min(end)..end];
        let at = (&*self.p, stage);
        let mut uses_http = false;
        let rule = tcp_var_rule(name, args, allowed, at, &mut uses_http)?;
        self.p.rules.formats_use_http |= uses_http;
        match rule {
            Ok((rule, taken)) => Ok((TcpAction::Var(Box::new(rule)), taken)),
            Err(ActionError::Rule(m) | ActionError::Unknown(m)) => {
                Err(crate::runtime::logformat::sample_error(m))
            }
            Err(ActionError::Unsupported(what)) => Err(unevaluable(words, &what)),
        }
    }

    fn refuse(&mut self, e: AclError, words: &[String]) -> Result<(), String> {
        match e {
            AclError::Bad(m) => Err(m),
            AclError::Unsupported(what) => Err(unevaluable(words, &what)),
        }
    }

    /// Records what checks need to know about a fetch.
    fn note_fetch(&mut self, source: &super::acl::Source) {
        use super::acl::Source;
        if let Some(named) = super::acl::BackendRef::of(source) {
            let defaults = (self.p.kind == ProxyKind::Defaults).then(|| self.p.name.clone());
            self.p.rules.references.push(Reference {
                place: self.place.clone(),
                named,
                within: None,
                defaults,
                health_check: false,
            });
            return;
        }
        match source {
            Source::HttpAuth(list) | Source::HttpAuthGroup(list) => {
                let keyword = match source {
                    Source::HttpAuth(_) => "http_auth",
                    _ => "http_auth_group",
                };
                self.p
                    .rules
                    .userlist_references
                    .push(super::userlist::Reference {
                        place: self.place.clone(),
                        keyword,
                        userlist: list.clone(),
                    });
            }
            _ => {}
        }
    }

    /// Parses the condition in `words` (from its `if`/`unless`), wording errors with
    /// `context`, and warns about ACLs that cannot match where they are used.
    fn condition(
        &mut self,
        words: &[String],
        usage: &Usage,
        context: impl Fn(String) -> String,
    ) -> Result<Option<Condition>, AclError> {
        if words.is_empty() {
            return Ok(None);
        }
        let before = self.p.rules.acls.acls.len();
        let cond = super::acl::uncollected(|| {
            super::stick::in_acl(|| self.p.rules.acls.condition(words, &mut self.warnings))
        })
        .map_err(|e| e.context(&context))?;
        // Fetches of anonymous ACLs made here.
        let fresh: Vec<_> = self.p.rules.acls.acls[before..]
            .iter()
            .flat_map(|a| a.exprs.iter().map(|e| e.fetch.source.clone()))
            .collect();
        for source in fresh {
            self.note_fetch(&source);
        }
        let acls = &self.p.rules.acls.acls;
        let raw = (cond.suites.iter().flatten()).any(|t| {
            acls[t.acl]
                .exprs
                .iter()
                .any(|e| reads_raw_bytes(&e.fetch.source))
        });
        if raw && usage.checked == Checked::All {
            self.p.rules.l6_places.push(self.place.clone());
        }
        let warning = (usage.checked != Checked::Nothing)
            .then(|| self.conflict(&cond, usage))
            .flatten();
        if let Some(warning) = warning {
            self.warnings.push(warning);
        }
        Ok(Some(cond))
    }

    /// HAProxy's warning for a condition using fetches the rule cannot (its
    /// `warnif_cond_conflicts`, one per condition): the first ACL none of whose fetches it
    /// can use never matches; else the first ACL with one it cannot use is named.
    fn conflict(&self, cond: &Condition, usage: &Usage) -> Option<String> {
        let usable = |e: &super::acl::Expr| {
            usage.allowed.contains(&e.fetch.layer())
                || (usage.allowed.contains(&Layer::Response) && kept_past_request(&e.fetch))
        };
        let keyword =
            |e: &super::acl::Expr| e.keyword.split('(').next().unwrap_or_default().to_string();
        let acls = || {
            cond.suites
                .iter()
                .flatten()
                .map(|t| &self.p.rules.acls.acls[t.acl])
        };
        let place = format!(
            "'{} {}'",
            usage.side.unwrap_or_else(|| self.side()),
            usage.name
        );
        let within = usage.within;
        if let Some(acl) = acls().find(|a| !a.exprs.iter().any(usable)) {
            return Some(match acl.exprs.first() {
                Some(e) if acl.name.is_empty() => format!(
                    "anonymous acl will never match {within}because it uses keyword '{}' which is incompatible with {place}",
                    keyword(e)
                ),
                _ => format!(
                    "acl '{}' will never match {within}because it only involves keywords that are incompatible with {place}",
                    acl.name
                ),
            });
        }
        let (acl, e) = acls().find_map(|a| a.exprs.iter().find(|e| !usable(e)).map(|e| (a, e)))?;
        // HAProxy's TCP rules (those naming where they are) say "keyword", the others
        // "keywords".
        let keywords = if within.is_empty() {
            "keywords"
        } else {
            "keyword"
        };
        Some(if acl.name.is_empty() {
            format!(
                "anonymous acl involves keyword '{}' which is incompatible with {place}",
                keyword(e)
            )
        } else {
            format!(
                "acl '{}' involves {keywords} '{}' which is incompatible with {place}",
                acl.name,
                keyword(e)
            )
        })
    }

    fn use_backend(&mut self, words: &[String]) -> Result<(), String> {
        self.warn_unless_frontend("use_backend");
        let name = words
            .get(1)
            .ok_or("'use_backend' expects a backend name.")?;
        let (dynamic, invalid) =
            target_name(name, self.p.mode).map_err(|what| unevaluable(words, &what))?;
        let rest = &words[2..];
        if let Some(w) = rest.first().filter(|w| *w != "if" && *w != "unless") {
            return Err(format!(
                "unexpected keyword '{w}' after switching rule, only 'if' and 'unless' are allowed."
            ));
        }
        let usage = Usage {
            allowed: &[Layer::L4, Layer::L6, Layer::Request],
            // HAProxy's name of its check (`SMP_VAL_FE_SET_BCK`, a frontend's).
            name: "use-backend rule".into(),
            within: "",
            side: Some("frontend"),
            checked: Checked::All,
        };
        let cond = match self.condition(rest, &usage, |e| {
            format!("error detected while parsing switching rule : {e}.")
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        self.placed_after("use_backend", "use_backend");
        self.p.rules.use_backends.push(UseBackend {
            backend: name.clone(),
            dynamic,
            invalid,
            cond,
            place: self.place.clone(),
        });
        Ok(())
    }

    /// HAProxy's warning for a rule of `kind` written after rules that run after it (the
    /// first such kind in running order); then `kind` counts as seen. `kw` names the rule.
    fn placed_after(&mut self, kw: &str, kind: &str) {
        let at = RUNNING_ORDER
            .iter()
            .position(|(k, _)| *k == kind)
            .unwrap_or_default();
        let seen = &mut self.p.rules.seen.0;
        let after = (at + 1..RUNNING_ORDER.len()).find(|&i| seen[i]);
        seen[at] = true;
        if let Some(i) = after {
            self.warnings.push(format!(
                "a '{kw}' rule placed after {} rule will still be processed before.",
                RUNNING_ORDER[i].1
            ));
        }
    }

    fn tcp_request(&mut self, words: &[String]) -> Result<(), String> {
        let which = words.get(1).map(String::as_str).unwrap_or_default();
        let (kind, k) = (self.p.kind.keyword(), self.p.name.clone());
        match which {
            "inspect-delay" => {
                let v = words.get(2).ok_or_else(|| {
                    format!("'tcp-request inspect-delay' expects a positive delay in milliseconds, in {kind} '{k}'")
                })?;
                let d = values::timer(v, "tcp-request inspect-delay")?;
                self.p.rules.inspect_delay = (!d.is_zero()).then_some(d);
                return Ok(());
            }
            "connection" | "content" | "session" => {}
            _ => return Err(tcp_request_word_error(self.p, which)),
        }
        // Rules that run before the session's streams: they read the connection alone.
        let connection = which != "content";
        // A defaults section has both sides (its users are checked when they start from it).
        if connection && !self.p.kind.is_frontend() && self.p.kind != ProxyKind::Defaults {
            return Err(format!(
                "tcp-request {which} is not allowed because {kind} {k} is not a frontend"
            ));
        }
        self.placed_after("tcp-request", &format!("tcp-request {which}"));
        // HAProxy words this one after the rule's action, as its `tcp-request` parser does.
        let name = words.get(2).map_or("", String::as_str);
        if let Some(e) = super::stick::track_slot(name).and_then(super::stick::slot_error) {
            return Err(format!("'tcp-request {which} {name}' : {e}"));
        }
        let end = words
            .iter()
            .position(|w| w == "if" || w == "unless")
            .unwrap_or(words.len())
            .max(3);
        let stick = words
            .get(2)
            .and_then(|name| stick_action(name, &words[3.min(end)..end], &k));
        let mut var_taken = 0;
        let action = match words.get(2).map(String::as_str) {
            _ if stick.is_some() => match stick.unwrap_or_else(|| unreachable!()) {
                Ok(a) => TcpAction::Stick(a),
                Err(e) => return self.refuse(e, words),
            },
            Some("accept") => TcpAction::Accept,
            Some("reject") => TcpAction::Reject,
            Some("expect-proxy") => expect_proxy(words, which, kind, &k)?,
            Some(
                name @ ("set-tos" | "set-mark" | "silent-drop" | "set-log-level" | "set-src"
                | "set-src-port"),
            ) if (name != "set-log-level" || which == "content")
                && (!name.starts_with("set-src") || which != "connection") =>
            {
                match stream_socket_action(name, words.get(3).map(String::as_str)) {
                    Ok(action) => action,
                    // HAProxy's bare messages here, without the rule's context.
                    Err(ActionError::Rule(m) | ActionError::Unknown(m)) => return Err(m),
                    Err(ActionError::Unsupported(what)) => {
                        return self.refuse(AclError::Unsupported(what), words);
                    }
                }
            }
            Some(name) if which == "session" && is_session_only(name) => {
                return self.refuse(AclError::Unsupported(format!("the action '{name}'")), words);
            }
            Some(name) if is_var_action(name) => {
                let allowed: &[Layer] = match connection {
                    true => &[Layer::L4],
                    false => &[Layer::L4, Layer::L6, Layer::Request],
                };
                let stage = match connection {
                    true => Stage::TcpConnection,
                    false => Stage::TcpContent,
                };
                let (action, taken) = self.tcp_var_action(name, words, end, allowed, stage)?;
                var_taken = taken;
                action
            }
            Some(name) if is_tcp_request_action(which, name) => {
                return self.refuse(AclError::Unsupported(format!("the action '{name}'")), words);
            }
            other => {
                let name = other.unwrap_or_default();
                return Err(unknown_tcp_request_action(which, name, kind, &k));
            }
        };
        let rest = &words[match action {
            TcpAction::Stick(_) => end,
            TcpAction::ExpectProxy
            | TcpAction::SetTos(_)
            | TcpAction::SetMark(_)
            | TcpAction::SetLogLevel(_)
            | TcpAction::SetSrc(_)
            | TcpAction::SetSrcPort(_) => 4.min(words.len()),
            _ => (3 + var_taken).min(words.len()),
        }..];
        if let Some(w) = rest.first().filter(|w| *w != "if" && *w != "unless") {
            if let TcpAction::Var(_)
            | TcpAction::ExpectProxy
            | TcpAction::SetTos(_)
            | TcpAction::SetMark(_)
            | TcpAction::SilentDrop
            | TcpAction::SetLogLevel(_)
            | TcpAction::SetSrc(_)
            | TcpAction::SetSrcPort(_) = action
            {
                return Err(format!(
                    "'tcp-request {which} {}' only accepts 'if' or 'unless', in {kind} '{k}' (got '{w}')",
                    words[2]
                ));
            }
            return Err(format!(
                "'tcp-request {which} {}' : unexpected keyword '{w}' (expects 'if' or 'unless').",
                words[2]
            ));
        }
        let usage = if which == "session" {
            Usage {
                allowed: &[Layer::L4],
                name: "tcp-request session rule".into(),
                within: "in 'tcp-request session' ",
                side: None,
                checked: Checked::All,
            }
        } else if connection {
            Usage {
                allowed: &[Layer::L4],
                name: "tcp-request connection rule".into(),
                within: "in 'tcp-request connection' ",
                side: None,
                checked: Checked::All,
            }
        } else {
            Usage {
                allowed: &[Layer::L4, Layer::L6, Layer::Request],
                name: "tcp-request content rule".into(),
                within: "in 'tcp-request content' ",
                side: None,
                checked: Checked::All,
            }
        };
        let rule_name = format!("tcp-request {which} {}", words[2]);
        let cond = match self.condition(rest, &usage, |e| {
            format!(
                "'{rule_name}' : error detected in {kind} '{k}' while parsing '{}' condition : {e}",
                rest[0]
            )
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        let rule = TcpRule { action, cond };
        if which == "session" {
            self.p.rules.tcp_session.push(rule);
        } else if connection {
            self.p.rules.tcp_connection.push(rule);
        } else {
            self.p.rules.tcp_content.push(rule);
        }
        Ok(())
    }

    /// `tcp-response inspect-delay T` and `tcp-response content ACTION [if|unless COND]`
    /// of a backend (checked as HAProxy's `tcp_parse_tcp_rep`).
    fn tcp_response(&mut self, words: &[String]) -> Result<(), String> {
        let (kind, k) = (self.p.kind.type_str(), self.p.name.clone());
        match words.get(1).map_or("", String::as_str) {
            "inspect-delay" => {
                let delay = response_inspect_delay(words.get(2).map_or("", String::as_str))
                    .map_err(|detail| {
                        format!("'tcp-response inspect-delay' expects a positive delay in milliseconds, in {kind} '{k}'{detail}")
                    })?;
                if self.p.rules.response_inspect_delay.is_some() {
                    self.warnings.push(format!(
                        "ignoring tcp-response inspect-delay (was already defined) in {kind} '{k}'"
                    ));
                } else {
                    self.p.rules.response_inspect_delay = (!delay.is_zero()).then_some(delay);
                }
                Ok(())
            }
            "content" => self.tcp_response_content(words),
            other => Err(tcp_response_word_error(self.p, other)),
        }
    }

    fn tcp_response_content(&mut self, words: &[String]) -> Result<(), String> {
        let (kind, k) = (self.p.kind.type_str(), self.p.name.clone());
        let name = words.get(2).map_or("", String::as_str);
        let end = (words.iter().position(|w| w == "if" || w == "unless"))
            .unwrap_or(words.len())
            .max(3);
        let stick = (is_tcp_response_action(name))
            .then(|| stick_action(name, &words[3.min(end)..end], &k))
            .flatten();
        let mut var_taken = 0;
        let action = match name {
            "accept" => TcpAction::Accept,
            "reject" => TcpAction::Reject,
            "close" => TcpAction::Close,
            _ if stick.is_some() => match stick.unwrap_or_else(|| unreachable!()) {
                Ok(a) => TcpAction::Stick(a),
                Err(e) => return self.refuse(e, words),
            },
            _ if is_var_action(name) => {
                let allowed = &[Layer::L4, Layer::L6Res, Layer::Response];
                let stage = Stage::TcpResponse;
                let (action, taken) = self.tcp_var_action(name, words, end, allowed, stage)?;
                var_taken = taken;
                action
            }
            _ if is_tcp_response_action(name) => {
                return Err(format!(
                    "'tcp-response content {name}' is not implemented by hapx (only 'accept', 'close', 'reject', 'sc-inc-gpc0', 'sc-set-gpt0', 'set-var', 'set-var-fmt' and 'unset-var' are); hapx refuses to run without this rule."
                ));
            }
            _ => {
                // HAProxy's own three (listed first) are its extra words, tried last.
                let keywords = TCP_RESPONSE_ACTIONS[3..].iter().copied();
                let hint = action_hint(name, keywords, &["accept", "reject", "close"]);
                return Err(format!(
                    "'tcp-response content' expects {} in {kind} '{k}' (got '{name}').{hint}",
                    TCP_RESPONSE_ACTIONS.map(|a| format!("'{a}'")).join(", ")
                ));
            }
        };
        let rest = match action {
            TcpAction::Stick(_) => &words[end..],
            _ => &words[(3 + var_taken).min(words.len())..],
        };
        if let Some(w) = rest.first().filter(|w| *w != "if" && *w != "unless") {
            return Err(format!(
                "'tcp-response content {name}' only accepts 'if' or 'unless', in {kind} '{k}' (got '{w}')"
            ));
        }
        let usage = Usage {
            allowed: &[Layer::L4, Layer::L6Res, Layer::Response],
            name: "tcp-response content rule".into(),
            within: "in 'tcp-response content' ",
            // HAProxy checks them as `SMP_VAL_BE_RES_CNT`, a listen section's too.
            side: Some("backend"),
            checked: Checked::All,
        };
        let kind = self.p.kind.keyword();
        let cond = match self.condition(rest, &usage, |e| {
            format!(
                "'tcp-response content {name}' : error detected in {kind} '{k}' while parsing '{}' condition : {e}",
                rest[0]
            )
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        let rule = TcpRule { action, cond };
        self.p.rules.tcp_response.push(rule);
        Ok(())
    }

    fn http_rule(&mut self, words: &[String]) -> Result<(), String> {
        let kw = words[0].as_str();
        // HAProxy warns before reading the rule, `parsing [file:line]:` without its space.
        if self.p.rules.http_list_ends(kw) {
            self.diags.global_warn(format!(
                "parsing [{}]: previous '{kw}' action is final and has no condition attached, further entries are NOOP.",
                self.place
            ));
        }
        let response = kw != "http-request";
        let after = kw == "http-after-response";
        let name = words.get(1).map(String::as_str).unwrap_or_default();
        let actions: &[&str] = match kw {
            "http-request" => &HTTP_REQUEST_ACTIONS,
            "http-response" => &HTTP_RESPONSE_ACTIONS,
            _ => &AFTER_RESPONSE_ACTIONS,
        };
        if !haproxy_takes(actions, name) {
            // Worded `parsing [file:line]: ...`, without HAProxy's usual space.
            let m = unknown_http_action(kw, actions, name);
            self.diags
                .global_alert(format!("parsing [{}]: {m}", self.place));
            return Ok(());
        }
        if after {
            if let Err(e) = after_response_action(name) {
                return self.refuse(e, words);
            }
        }
        if !response {
            self.placed_after("http-request", "http-request");
        }
        let (kind, k) = (self.p.kind.keyword(), self.p.name.clone());
        let rule_err = |e: String| {
            // HAProxy adds its period to the message's own: a message ending in one (its
            // text as HAProxy words it) is written here with both.
            let e = e.strip_suffix('.').unwrap_or(&e);
            format!("error detected in {kind} '{k}' while parsing '{kw} {name}' rule : {e}.")
        };
        let words = read_words(name, words);
        let end = words
            .iter()
            .skip(2)
            .position(|w| w == "if" || w == "unless")
            .map_or(words.len(), |i| i + 2);
        let args = &words[2.min(words.len())..end];
        // The `len` form adds a capture slot to the proxy.
        let capture = (name == "capture").then(|| capture_rule(kw, args, self.p));
        let mut values = Values {
            action: format!("{kw} {name}"),
            mode: self.p.mode,
            stage: if response {
                Stage::Response
            } else {
                Stage::Request
            },
            warnings: &mut self.warnings,
            uses_http: &mut self.p.rules.formats_use_http,
        };
        let stick = stick_action(name, args, &k).map(|a| a.map(HttpAction::Stick));
        let var = is_var_action(name).then(|| {
            let allowed: &[Layer] = match response {
                true => &[Layer::L4, Layer::L6Res, Layer::Response],
                false => &[Layer::L4, Layer::L6, Layer::Request],
            };
            // HAProxy parses a `set-var-fmt` format without the HTTP options of the other
            // rules' values (quoted samples, L6 fetches kept), as in the TCP rules.
            let (mode, stage) = (values.mode, values.stage);
            let uses_http = &mut *values.uses_http;
            let mut compile = |t: &str| {
                let format = LogFormat::compile_var_format(t, mode, stage);
                *uses_http |= format.as_ref().is_ok_and(LogFormat::uses_http_fetches);
                format.map_err(ActionError::from)
            };
            let (rule, taken) = var_rule(name, args, allowed, Some(&mut compile))?;
            match args.get(taken) {
                Some(w) => Err(ActionError::Unknown(format!(
                    "'{kw} {name}' expects either 'if' or 'unless' followed by a condition but found '{w}'."
                ))),
                None => Ok(HttpAction::Var(Box::new(rule))),
            }
        });
        let stick = stick.map(|a| a.map_err(ActionError::from));
        let action = match var
            .or(stick)
            .or(capture)
            .unwrap_or_else(|| http_action(kw, name, args, &mut values))
        {
            Ok(a) => a,
            // Worded `parsing [file:line]: ...`, without HAProxy's usual space.
            Err(ActionError::Unknown(m)) => {
                self.diags
                    .global_alert(format!("parsing [{}]: {m}", self.place));
                return Ok(());
            }
            Err(ActionError::Rule(m)) => return Err(rule_err(m)),
            Err(ActionError::Unsupported(what)) => {
                return self.refuse(AclError::Unsupported(what), words);
            }
        };
        let usage = Usage {
            allowed: if response {
                &[Layer::L4, Layer::L6Res, Layer::Response]
            } else {
                &[Layer::L4, Layer::L6, Layer::Request]
            },
            // HAProxy checks these as `http-response` rules (`SMP_VAL_FE_HRS_HDR`); a
            // listen section's are named by the backend's check, which comes first.
            name: format!("{} header rule", if after { "http-response" } else { kw }),
            within: "",
            side: (response && self.p.kind.is_backend()).then_some("backend"),
            checked: Checked::All,
        };
        let cond = match self.condition(&words[end..], &usage, |e| {
            format!("error detected while parsing an '{kw} {name}' condition : {e}.")
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        if !response {
            self.p.rules.values_read_line |= action
                .values()
                .into_iter()
                .any(LogFormat::uses_request_line);
        }
        let values = action.values();
        self.p.rules.values_use_timers |= values.iter().any(|f| f.uses_timers());
        self.p.rules.values_use_session_end |= values.iter().any(|f| f.uses_session_end());
        let rule = HttpRule { action, cond };
        if after {
            self.p.rules.http_after_response.push(rule);
        } else if response {
            self.p.rules.http_response.push(rule);
        } else {
            self.p.rules.http_request.push(rule);
        }
        Ok(())
    }

    /// The `redirect` keyword: `redirect location|prefix|scheme ... [if|unless COND]`.
    fn redirect(&mut self, words: &[String]) -> Result<(), String> {
        self.placed_after("redirect", "redirect");
        let (kind, k) = (self.p.kind.keyword(), self.p.name.clone());
        let rule_err = |m: String| {
            format!("error detected in {kind} '{k}' while parsing redirect rule : {m}.")
        };
        let end = words
            .iter()
            .position(|w| w == "if" || w == "unless")
            .unwrap_or(words.len());
        let args = &words[1..end];
        if let Some(w) = args
            .first()
            .filter(|w| !matches!(w.as_str(), "location" | "prefix" | "scheme"))
        {
            return Err(rule_err(format!(
                "expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash' (was '{w}')"
            )));
        }
        let r = match redirect(args, None) {
            Ok(r) => r,
            Err(ActionError::Unsupported(what)) => {
                return self.refuse(AclError::Unsupported(what), words);
            }
            Err(ActionError::Rule(m) | ActionError::Unknown(m)) => return Err(rule_err(m)),
        };
        let usage = Usage {
            allowed: &[Layer::L4, Layer::L6, Layer::Request],
            name: "http-request header rule".into(),
            within: "",
            side: None,
            checked: Checked::ConflictsOnly,
        };
        let cond = match self.condition(&words[end..], &usage, |e| {
            format!("error detected in {kind} '{k}' while parsing redirect rule : error in condition: {e}.")
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        self.p.rules.redirects.push(HttpRule {
            action: HttpAction::Redirect(r),
            cond,
        });
        Ok(())
    }

    fn monitor_uri(&mut self, words: &[String]) -> Result<(), String> {
        self.warn_unless_frontend("monitor-uri");
        let uri = words.get(1).ok_or("'monitor-uri' expects an URI.")?;
        self.p.rules.monitor_uri = Some(uri.clone());
        Ok(())
    }

    /// `stick on|match|store-request|store-response KEY [table T] [if|unless COND]`, in
    /// HAProxy's words (`cfg_parse_listen`).
    fn stick(&mut self, words: &[String]) -> Result<(), String> {
        if !self.p.kind.is_backend() {
            self.warnings.push(format!(
                "'stick' ignored because {} '{}' has no backend capability.",
                self.p.kind.keyword(),
                self.p.name
            ));
            return Ok(());
        }
        let kind = match words.get(1).map(String::as_str) {
            Some("on") => StickKind::On,
            Some("match") => StickKind::Match,
            Some("store-request") => StickKind::StoreRequest,
            Some("store-response") => StickKind::StoreResponse,
            _ => return Err("'stick' expects 'on', 'match', or 'store'.".into()),
        };
        let key = words
            .get(2)
            .filter(|k| !k.is_empty())
            .ok_or("'stick' expects a fetch method.")?;
        let mut key = match super::acl::parse_fetch(key) {
            Ok(f) => f,
            // HAProxy's sample expression parser names no ACL expression.
            Err(AclError::Bad(m)) => {
                let m = m.split(" in ACL expression").next().unwrap_or_default();
                return Err(format!("'stick': {m}"));
            }
            Err(e) => return self.refuse(e, words),
        };
        let name = words[2].split(['(', ',']).next().unwrap_or_default();
        if kind == StickKind::StoreResponse {
            stick_response_key(&mut key, name, &words[2])?;
        } else {
            stick_request_key(&key, name)?;
        }
        let mut rest = &words[3..];
        let mut table = self.p.name.clone();
        if rest.first().is_some_and(|w| w == "table") {
            // A missing name is an empty one: no table has it.
            table = rest.get(1).cloned().unwrap_or_default();
            rest = rest.get(2..).unwrap_or_default();
        }
        if let Some(w) = rest.first().filter(|w| *w != "if" && *w != "unless") {
            return Err(format!("'stick': unknown keyword '{w}'."));
        }
        let usage = match kind {
            StickKind::StoreResponse => Usage {
                allowed: &[Layer::L4, Layer::L6Res, Layer::Response],
                name: "stick-store rule".into(),
                within: "",
                side: Some("backend"),
                checked: Checked::ConflictsOnly,
            },
            // HAProxy checks these where it picks a server (`SMP_VAL_BE_SET_SRV`).
            _ => Usage {
                allowed: &[Layer::L4, Layer::L6, Layer::Request],
                name: SET_SERVER_RULE.into(),
                within: "",
                side: Some("backend"),
                checked: Checked::All,
            },
        };
        let cond = match self.condition(rest, &usage, |e| {
            format!("'stick': error detected while parsing sticking condition : {e}.")
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        self.p.rules.stick.push(StickRule {
            kind,
            key,
            table,
            cond,
        });
        Ok(())
    }

    /// `use-server NAME if|unless COND`, parsed as HAProxy's `cfg_parse_listen`.
    fn use_server(&mut self, words: &[String]) -> Result<(), String> {
        self.warn_unless_backend("use-server");
        let name = words
            .get(1)
            .filter(|n| !n.is_empty())
            .ok_or("'use-server' expects a server name.")?;
        let usage = Usage {
            allowed: &[Layer::L4, Layer::L6, Layer::Request],
            name: SET_SERVER_RULE.into(),
            within: "",
            side: Some("backend"),
            checked: Checked::All,
        };
        let cond = self.required_condition(words, 2, usage, |e| {
            format!("error detected while parsing switching rule : {e}.")
        })?;
        let (dynamic, invalid) =
            target_name(name, self.p.mode).map_err(|what| unevaluable(words, &what))?;
        if let Some(cond) = cond {
            self.p.rules.use_servers.push(UseServer {
                server: name.clone(),
                dynamic,
                invalid,
                cond,
                place: self.place.clone(),
            });
        }
        Ok(())
    }

    /// HAProxy's `warnifnotcap(PR_CAP_BE)`: the rule is kept, and never used.
    fn warn_unless_backend(&mut self, kw: &str) {
        if !self.p.kind.is_backend() {
            self.warnings.push(format!(
                "'{kw}' ignored because {} '{}' has no backend capability.",
                self.p.kind.keyword(),
                self.p.name
            ));
        }
    }

    /// `force-persist|ignore-persist if|unless COND`.
    fn persist_rule(&mut self, words: &[String]) -> Result<(), String> {
        let kw = words[0].as_str();
        self.warn_unless_backend(kw);
        // HAProxy checks these with the backend's content rules (`SMP_VAL_BE_REQ_CNT`).
        let usage = Usage {
            allowed: &[Layer::L4, Layer::L6, Layer::Request],
            name: "tcp-request content rule".into(),
            within: "",
            side: Some("backend"),
            checked: Checked::ConflictsOnly,
        };
        let cond = self.required_condition(words, 1, usage, |e| {
            format!("error detected while parsing a '{kw}' rule : {e}.")
        })?;
        if let Some(cond) = cond {
            let force = kw == "force-persist";
            self.p.rules.persist.push(PersistRule { force, cond });
        }
        Ok(())
    }

    /// The condition from `words[at]` on of a rule that requires one (`if|unless ...`),
    /// named `name` in HAProxy's warnings, its errors worded by `context`. None: the rule
    /// uses what hapx does not implement, which [`Ctx::refuse`] words (an `Err`).
    fn required_condition(
        &mut self,
        words: &[String],
        at: usize,
        usage: Usage,
        context: impl Fn(String) -> String,
    ) -> Result<Option<Condition>, String> {
        if !words.get(at).is_some_and(|w| w == "if" || w == "unless") {
            return Err(format!(
                "'{}' requires either 'if' or 'unless' followed by a condition.",
                words[0]
            ));
        }
        match self.condition(&words[at..], &usage, context) {
            Ok(cond) => Ok(cond),
            Err(e) => self.refuse(e, words).map(|()| None),
        }
    }

    fn monitor(&mut self, words: &[String]) -> Result<(), String> {
        if words.get(1).map(String::as_str) != Some("fail") {
            return Err("'monitor' only supports 'fail'.".into());
        }
        // HAProxy names the keyword alone here.
        self.warn_unless_frontend("monitor");
        self.placed_after("monitor fail", "monitor fail");
        let rest = &words[2..];
        if !rest.first().is_some_and(|w| w == "if" || w == "unless") {
            return Err(
                "'monitor fail' requires either 'if' or 'unless' followed by a condition.".into(),
            );
        }
        let usage = Usage {
            allowed: &[Layer::L4, Layer::Request],
            name: "monitor-fail rule".into(),
            within: "",
            side: None,
            checked: Checked::Nothing,
        };
        let cond = match self.condition(rest, &usage, |e| {
            format!("error detected while parsing a 'monitor fail' condition : {e}.")
        }) {
            Ok(c) => c,
            Err(e) => return self.refuse(e, words),
        };
        self.p.rules.monitor_fail.extend(cond);
        Ok(())
    }
}

enum ActionError {
    /// No such action: HAProxy's message as it is.
    Unknown(String),
    /// A bad argument: worded in the rule's context.
    Rule(String),
    /// Valid for HAProxy, not implemented by hapx (what).
    Unsupported(String),
}

impl From<AclError> for ActionError {
    fn from(e: AclError) -> Self {
        match e {
            AclError::Bad(m) => ActionError::Rule(m),
            AclError::Unsupported(w) => ActionError::Unsupported(w),
        }
    }
}

fn status_arg(v: Option<&String>) -> Result<u16, ActionError> {
    let v = v.ok_or_else(|| ActionError::Rule("missing status code".into()))?;
    // Read with `atol` as HAProxy reads it, and named as read (`abc` is 0, `42x` 42).
    let code = super::values::atol_int(v);
    u16::try_from(code)
        .ok()
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| ActionError::Rule(format!("Unexpected status code '{code}'")))
}

/// Compiles the values of a proxy's rules, which HAProxy 2.6 reads as log formats rendered
/// where the rule runs.
struct Values<'a> {
    /// The rule, for messages (`http-request return`).
    action: String,
    mode: Mode,
    stage: Stage,
    /// HAProxy's warnings about them.
    warnings: &'a mut Vec<String>,
    /// Set when one reads an HTTP fetch ([`Rules::formats_use_http`]).
    uses_http: &'a mut bool,
}

impl Values<'_> {
    fn compile(&mut self, text: &str) -> Result<LogFormat, ActionError> {
        let format = LogFormat::compile_value(text, self.mode, self.stage, self.warnings);
        *self.uses_http |= format.as_ref().is_ok_and(LogFormat::uses_http_fetches);
        format.map_err(ActionError::from)
    }
}

fn http_action(
    kw: &str,
    name: &str,
    args: &[String],
    values: &mut Values<'_>,
) -> Result<HttpAction, ActionError> {
    let response = kw != "http-request";
    Ok(match name {
        "allow" => HttpAction::Allow,
        "deny" | "tarpit" => {
            let status = if response {
                502
            } else if name == "tarpit" {
                500
            } else {
                403
            };
            let (status, args) = deny_status(args, status)?;
            let mut reply = reply(args, status, values)?;
            reply.error_page |= args.is_empty();
            if name == "tarpit" {
                HttpAction::Tarpit(reply)
            } else {
                HttpAction::Deny(reply)
            }
        }
        "auth" if !response => {
            let realm = match args {
                [] => None,
                [r, realm] if r == "realm" => Some(realm.clone()),
                [r] if r == "realm" => {
                    return Err(ActionError::Rule("missing realm value.\n".into()));
                }
                _ => {
                    return Err(ActionError::Rule(format!(
                        "expects 'realm' (got '{}')",
                        args[0]
                    )));
                }
            };
            HttpAction::Auth(realm)
        }
        "redirect" if !response => HttpAction::Redirect(redirect(args, Some(values))?),
        "return" => HttpAction::Return(reply(args, 200, values)?),
        "set-status" if response => {
            let code = status_arg(args.first())?;
            match &args[1..] {
                [] => HttpAction::SetStatus(code, None),
                [r, text] if r == "reason" => HttpAction::SetStatus(code, Some(text.clone())),
                _ => {
                    return Err(ActionError::Rule(
                        "expects 'reason' followed by a text".into(),
                    ));
                }
            }
        }
        "set-header" | "add-header" => {
            let [h, v, ..] = args else {
                return Err(ActionError::Rule("expects exactly 2 arguments".into()));
            };
            if let Some(w) = args.get(2) {
                return Err(not_condition(kw, name, w));
            }
            if name == "set-header" {
                HttpAction::SetHeader(h.clone(), values.compile(v)?)
            } else {
                HttpAction::AddHeader(h.clone(), values.compile(v)?)
            }
        }
        "set-method" | "set-path" | "set-query" | "set-uri" if !response => {
            let [v] = args else {
                return Err(ActionError::Rule(
                    "expects exactly 1 argument <format>".into(),
                ));
            };
            let part = match name {
                "set-method" => Part::Method,
                "set-path" => Part::Path,
                "set-query" => Part::Query,
                _ => Part::Uri,
            };
            HttpAction::Set(part, values.compile(v)?)
        }
        "replace-path" | "replace-uri" if !response => {
            let [re, with] = args else {
                return Err(ActionError::Rule(
                    "expects exactly 2 arguments <match-regex> and <replace-format>".into(),
                ));
            };
            let part = if name == "replace-path" {
                Part::Path
            } else {
                Part::Uri
            };
            // HAProxy words these regexes' errors so.
            HttpAction::Replace(
                part,
                replace(re, with, values, "failed to parse the regex : ")?,
            )
        }
        "replace-header" | "replace-value" => {
            let [h, re, with, ..] = args else {
                return Err(ActionError::Rule("expects exactly 3 arguments".into()));
            };
            if let Some(w) = args.get(3) {
                return Err(not_condition(kw, name, w));
            }
            let part = if name == "replace-header" {
                Part::Header(h.clone())
            } else {
                Part::Value(h.clone())
            };
            HttpAction::Replace(part, replace(re, with, values, "")?)
        }
        "del-header" => del_header(kw, args)?,
        "set-log-level" => match args {
            [level] => match LogLevel::parse(level) {
                Some(level) => HttpAction::SetLogLevel(level),
                None => return Err(set_log_level_usage()),
            },
            [] => return Err(set_log_level_usage()),
            [_, w, ..] => return Err(not_condition(kw, name, w)),
        },
        "reject" if !response => no_argument(kw, name, args, HttpAction::Reject)?,
        "early-hint" if !response => match args {
            [h, v] => HttpAction::EarlyHint(h.clone(), values.compile(v)?),
            [_, _, w, ..] => return Err(not_condition(kw, name, w)),
            _ => return Err(ActionError::Rule("expects exactly 2 arguments".into())),
        },
        "set-src" if !response => HttpAction::SetSrc(Box::new(address_expr(kw, name, args)?)),
        "silent-drop" => no_argument(kw, name, args, HttpAction::SilentDrop)?,
        "set-nice" => match args {
            // Read with `atoi` and clamped, as HAProxy (`x` is 0).
            [n] => HttpAction::SetNice(super::values::atol_int(n).clamp(-1024, 1024)),
            [] => {
                return Err(ActionError::Rule(
                    "expects exactly 1 argument (integer value)".into(),
                ));
            }
            [_, w, ..] => return Err(not_condition(kw, name, w)),
        },
        "set-tos" | "set-mark" => {
            let value = socket_option_value(kw, name, args)?;
            if name == "set-tos" {
                HttpAction::SetTos(value)
            } else {
                HttpAction::SetMark(value)
            }
        }
        "strict-mode" => match args {
            [] => return Err(ActionError::Rule("expects exactly 1 arguments".into())),
            [mode] if mode.eq_ignore_ascii_case("on") => HttpAction::StrictMode(true),
            [mode] if mode.eq_ignore_ascii_case("off") => HttpAction::StrictMode(false),
            [mode] => {
                return Err(ActionError::Rule(format!(
                    "Unexpected value '{mode}'. Only 'on' and 'off' are supported"
                )));
            }
            [_, w, ..] => return Err(not_condition(kw, name, w)),
        },
        _ if pattern_edit_name(name).is_some() => pattern_edit(kw, name, args, values)?,
        // One HAProxy takes ([`haproxy_takes`], checked before) that hapx does not run.
        _ => return Err(ActionError::Unsupported(format!("the action '{name}'"))),
    })
}

/// `http-request capture EXPR len N|id N` and `http-response|http-after-response capture
/// EXPR id N`, read as HAProxy's `parse_http_req_capture` and `parse_http_res_capture`: the `len` form adds a
/// request capture slot to the frontend `p` (after those already declared, as HAProxy
/// numbers them); an `id` is checked once the proxy is read ([`check`]).
fn capture_rule(kw: &str, args: &[String], p: &mut Proxy) -> Result<HttpAction, ActionError> {
    // `http-after-response capture` is HAProxy's `http-response` one.
    let response = kw != "http-request";
    let usage = match response {
        true => "expects <expression> id <idx>",
        false => "expects <expression> [ 'len' <length> | id <idx> ]",
    };
    let words = args.iter().take_while(|w| !w.is_empty()).count();
    if words < 3 {
        return Err(ActionError::Rule(usage.into()));
    }
    // HAProxy's sample expression parser words its errors as in a format.
    let expr = super::acl::parse_fetch(&args[0]).map_err(|e| match e {
        AclError::Bad(m) => ActionError::Rule(crate::runtime::logformat::sample_error(m)),
        unsupported => ActionError::from(unsupported),
    })?;
    let allowed: &[Layer] = match response {
        true => &[Layer::L4, Layer::L6Res, Layer::Response],
        false => &[Layer::L4, Layer::L6, Layer::Request],
    };
    if !allowed.contains(&expr.layer()) {
        return Err(ActionError::Rule(format!(
            "fetch method '{}' extracts information from '{}', none of which is available here",
            args[0],
            fetch_part(&expr)
        )));
    }
    let slot = match args[1].as_str() {
        "len" if !response => new_capture_slot(&args[2], p)?,
        "id" => capture_id(&args[2])?,
        other if response => {
            return Err(ActionError::Rule(format!("expects 'id', found '{other}'")));
        }
        other => {
            return Err(ActionError::Rule(format!(
                "expects 'len' or 'id', found '{other}'"
            )));
        }
    };
    if let Some(w) = args.get(3) {
        return Err(not_condition(kw, "capture", w));
    }
    Ok(HttpAction::Capture(Box::new(CaptureRule {
        expr,
        slot,
        response,
    })))
}

/// The request capture slot of `len N` (`atoi`, positive), added to the frontend `p`.
fn new_capture_slot(len: &str, p: &mut Proxy) -> Result<i64, ActionError> {
    if !p.kind.is_frontend() {
        return Err(ActionError::Rule(format!(
            "proxy '{}' has no frontend capability",
            p.name
        )));
    }
    let len = usize::try_from(values::atol_int(len))
        .ok()
        .filter(|&l| l > 0)
        .ok_or_else(|| ActionError::Rule("length must be > 0".into()))?;
    // A slot no header fills: only rules write it.
    p.log.req_captures.push(super::logging::Capture {
        name: String::new(),
        len,
    });
    Ok(p.log.req_captures.len() as i64 - 1)
}

/// `declare capture request|response len N`: a capture slot of a frontend that only
/// `capture` rules fill, numbered after those declared before it (HAProxy's
/// `cfg_parse_listen`, its messages).
fn declare(p: &mut Proxy, words: &[String]) -> Result<(), String> {
    let arg = |i: usize| words.get(i).map_or("", String::as_str);
    if p.kind == ProxyKind::Defaults {
        return Err("'declare' not available in default section".into());
    }
    if !p.kind.is_frontend() {
        return Err("'declare' only available in frontend or listen section".into());
    }
    match arg(1) {
        "capture" => {}
        "" => {
            return Err(
                "'declare' needs a second keyword that specify the type of declaration ('capture')"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "unknown declaration type '{other}' (supports 'capture')"
            ));
        }
    }
    let response = match arg(2) {
        "request" => false,
        "response" => true,
        _ => {
            return Err("'declare capture' requires a direction ('request' or 'response')".into());
        }
    };
    if arg(3) != "len" {
        return Err("'declare capture' requires a capture length ('len')".into());
    }
    let len = match arg(4) {
        "" => {
            return Err(
                "'declare capture': 'len' requires a numeric value that represents the capture length"
                    .into(),
            );
        }
        text => {
            capture_id(text).map_err(|_| "'declare capture': cannot parse the length 'len'.")?
        }
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l > 0)
        .ok_or("length must be > 0")?;
    // A slot no header fills: only rules write it.
    let slot = super::logging::Capture {
        name: String::new(),
        len,
    };
    match response {
        true => p.log.resp_captures.push(slot),
        false => p.log.req_captures.push(slot),
    }
    Ok(())
}

/// `id N`, read whole in decimal as HAProxy's `strtol(.., 10)`.
fn capture_id(text: &str) -> Result<i64, ActionError> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    match valid {
        true => Ok(super::values::atol(text).clamp(i64::from(i32::MIN), i64::from(i32::MAX))),
        false => Err(ActionError::Rule(format!("cannot parse id '{text}'"))),
    }
}

/// The expression of `set-src EXPR` (an address), as HAProxy's `tcp_parse_set_src_dst`
/// reads it.
fn address_expr(kw: &str, name: &str, args: &[String]) -> Result<super::acl::Fetch, ActionError> {
    let text = (args.first().filter(|t| !t.is_empty()))
        .ok_or_else(|| ActionError::Rule("missing fetch method".into()))?;
    let expr = super::acl::parse_fetch(text).map_err(|e| match e {
        AclError::Bad(m) => ActionError::Rule(crate::runtime::logformat::sample_error(m)),
        unsupported => ActionError::from(unsupported),
    })?;
    if !([Layer::L4, Layer::L6, Layer::Request]).contains(&expr.layer()) {
        return Err(ActionError::Rule(format!(
            "fetch method '{text}' extracts information from '{}', none of which is available here",
            fetch_part(&expr)
        )));
    }
    match args.get(1) {
        Some(w) => Err(not_condition(kw, name, w)),
        None => Ok(expr),
    }
}

/// `set-log-level`'s usage, as HAProxy words any error in it.
fn set_log_level_usage() -> ActionError {
    ActionError::Rule("expects exactly 1 argument (log level name or 'silent')".into())
}

/// An action without arguments: `action` unless a word that starts no condition follows.
fn no_argument(
    kw: &str,
    name: &str,
    args: &[String],
    action: HttpAction,
) -> Result<HttpAction, ActionError> {
    match args.first() {
        Some(w) => Err(not_condition(kw, name, w)),
        None => Ok(action),
    }
}

/// `del-header NAME [-m METHOD]`, checked as HAProxy's `parse_http_del_header`.
fn del_header(kw: &str, args: &[String]) -> Result<HttpAction, ActionError> {
    let (header, rest) = match args {
        [] => return Err(ActionError::Rule("expects at least 1 argument".into())),
        [h, rest @ ..] => (h, rest),
    };
    let (matching, rest) = match rest {
        [m, rest @ ..] if m == "-m" => {
            let Some((method, rest)) = rest.split_first().filter(|(w, _)| !w.is_empty()) else {
                return Err(ActionError::Rule(
                    "-m flag expects exactly 1 argument".into(),
                ));
            };
            let matching = match method.as_str() {
                "str" => NameMatch::Exact,
                "beg" => NameMatch::Prefix,
                "end" => NameMatch::Suffix,
                "sub" => NameMatch::Substring,
                "reg" => NameMatch::Regex(
                    super::pcre::Regex::new(header, super::pcre::Flags::CAPTURE)
                        .map_err(|e| ActionError::Rule(e.to_string()))?,
                ),
                other => {
                    return Err(ActionError::Rule(format!(
                        "-m with unsupported matching method '{other}'"
                    )));
                }
            };
            (matching, rest)
        }
        rest => (NameMatch::Exact, rest),
    };
    match rest.first() {
        Some(w) => Err(not_condition(kw, "del-header", w)),
        None => Ok(HttpAction::DelHeader(header.clone(), matching)),
    }
}

/// The value of `set-tos N`/`set-mark N`, read whole with `strtoul(.., 0)` as HAProxy
/// (`0x` hexadecimal, `0` octal), truncated to an `unsigned int` as there.
fn socket_option_value(kw: &str, name: &str, args: &[String]) -> Result<u32, ActionError> {
    let text = match args {
        [v] => v,
        [] => return Err(ActionError::Rule(SOCKET_OPTION_USAGE.into())),
        [_, w, ..] => return Err(not_condition(kw, name, w)),
    };
    socket_option_number(text).map_err(ActionError::Rule)
}

/// HAProxy's refusal of a `set-tos` or `set-mark` without its value.
const SOCKET_OPTION_USAGE: &str = "expects exactly 1 argument (integer/hex value)";

/// The value of a `set-tos` or `set-mark`, read as HAProxy's `strtoul` (decimal, octal or
/// hexadecimal, cut to 32 bits).
fn socket_option_number(text: &str) -> Result<u32, String> {
    match super::values::strtoul(text) {
        (value, "") => Ok(value as u32),
        (_, rest) => Err(format!(
            "invalid character starting at '{rest}' (integer/hex value expected)"
        )),
    }
}

/// The actions HAProxy reads word by word until an empty one, which ends the line there
/// (`http-request set-header x ""` lacks its value; `... x y "" if FALSE` has no condition).
const READ_TO_EMPTY_WORD: &[&str] = &[
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "replace-value",
    "set-method",
    "set-path",
    "set-query",
    "set-uri",
    "replace-path",
    "replace-uri",
];

/// The words of an HTTP rule running action `name` as HAProxy reads them.
fn read_words<'w>(name: &str, words: &'w [String]) -> &'w [String] {
    if !READ_TO_EMPTY_WORD.contains(&name) && pattern_edit_name(name).is_none() {
        return words;
    }
    let end = (words.iter().skip(2).position(String::is_empty)).map_or(words.len(), |i| i + 2);
    &words[..end]
}

/// The edit of a pattern action `name` and its file, as HAProxy's `parse_http_set_map`
/// reads them: the kind from the name's start, the file from its ninth character to the
/// one before its last, whatever they are (`set-mapx(F)` names `(F`; a name too short for
/// a file names none).
fn pattern_edit_name(name: &str) -> Option<(&'static str, &str)> {
    let kind = ["add-acl", "del-acl", "set-map", "del-map"]
        .into_iter()
        .find(|k| name.starts_with(k))?;
    let file = name
        .get(8..name.len().saturating_sub(1))
        .unwrap_or_default();
    Some((kind, file))
}

/// `add-acl(F) KEY`, `del-acl(F) KEY`, `set-map(F) KEY VALUE`, `del-map(F) KEY`, with
/// HAProxy's messages. A file no map or ACL uses is no error (the action does nothing).
fn pattern_edit(
    kw: &str,
    name: &str,
    args: &[String],
    values: &mut Values<'_>,
) -> Result<HttpAction, ActionError> {
    let Some((kind, file)) = pattern_edit_name(name) else {
        return Err(ActionError::Unsupported(format!("the action '{name}'")));
    };
    let taken = if kind == "set-map" { 2 } else { 1 };
    if args.len() < taken {
        return Err(ActionError::Rule(format!(
            "expects exactly {taken} arguments"
        )));
    }
    if let Some(w) = args.get(taken) {
        return Err(not_condition(kw, name, w));
    }
    let key = values.compile(&args[0])?;
    let edit = match kind {
        "add-acl" => Edit::Add,
        "set-map" => Edit::Set(values.compile(&args[1])?),
        _ => Edit::Delete,
    };
    Ok(HttpAction::Pattern(Box::new(PatternEdit {
        edit,
        file: crate::runtime::map::FileRef::new(file.to_string()),
        key,
    })))
}

/// HAProxy's refusal of a word `w` past an action's arguments that starts no condition.
fn not_condition(kw: &str, name: &str, w: &str) -> ActionError {
    ActionError::Unknown(format!(
        "'{kw} {name}' expects either 'if' or 'unless' followed by a condition but found '{w}'."
    ))
}

/// Refuses as not implemented an `http-after-response` action HAProxy takes that hapx does
/// not run there.
fn after_response_action(name: &str) -> Result<(), AclError> {
    match name {
        "ot-group" => Err(AclError::Unsupported(format!("the action '{name}'"))),
        _ => Ok(()),
    }
}

/// `re` (its error after `context`) and the format `with` of a `replace-*` action.
fn replace(
    re: &str,
    with: &str,
    values: &mut Values<'_>,
    context: &str,
) -> Result<Replace, ActionError> {
    let re = super::pcre::Regex::new(re, super::pcre::Flags::CAPTURE)
        .map_err(|e| ActionError::Rule(format!("{context}{e}")))?;
    Ok(Replace {
        re,
        with: values.compile(with)?,
    })
}

/// A redirection's options; its target a log format (`http-request redirect`), or as
/// written without `values` (HAProxy's `redirect` keyword takes no format).
fn redirect(args: &[String], mut values: Option<&mut Values<'_>>) -> Result<Redirect, ActionError> {
    let kind = args.first().map(String::as_str).unwrap_or_default();
    let mut value = |k: &str| {
        let v = args
            .get(1)
            .ok_or_else(|| ActionError::Rule(format!("missing argument for '{k}'")))?;
        match values.as_deref_mut() {
            Some(values) => values.compile(v),
            None => Ok(LogFormat::text(v)),
        }
    };
    let to = match kind {
        "location" => RedirectTo::Location(value(kind)?),
        "prefix" => RedirectTo::Prefix(value(kind)?),
        "scheme" => RedirectTo::Scheme(value(kind)?),
        _ => {
            return Err(ActionError::Rule(
                "redirection type expected ('prefix', 'location', or 'scheme')".into(),
            ));
        }
    };
    let mut r = Redirect {
        to,
        code: 302,
        drop_query: false,
        append_slash: false,
        cookie: None,
        ignore_empty: false,
    };
    let mut i = 2;
    while let Some(opt) = args.get(i) {
        match opt.as_str() {
            "code" => {
                let v = args.get(i + 1).map(String::as_str).unwrap_or_default();
                r.code = v
                    .parse()
                    .ok()
                    .filter(|c| matches!(c, 301 | 302 | 303 | 307 | 308))
                    .ok_or_else(|| {
                        ActionError::Rule(format!(
                            "'code': unsupported HTTP code '{v}' (must be one of 301, 302, 303, 307 or 308)"
                        ))
                    })?;
                i += 1;
            }
            "drop-query" => r.drop_query = true,
            "append-slash" => r.append_slash = true,
            "ignore-empty" => r.ignore_empty = true,
            "set-cookie" | "clear-cookie" => {
                let cookie = args
                    .get(i + 1)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| ActionError::Rule(format!("missing argument for '{opt}'")))?;
                // HAProxy's attributes, bytes as it writes them.
                let attributes = match opt.as_str() {
                    "set-cookie" => "; path=/;",
                    _ => "; path=/; Max-Age=0;",
                };
                r.cookie = Some(format!("{cookie}{attributes}"));
                i += 1;
            }
            other => {
                return Err(ActionError::Unsupported(format!(
                    "the '{other}' option of redirects"
                )));
            }
        }
        i += 1;
    }
    Ok(r)
}

/// `http-error status N ...` ([`super::errors`]): the options `return` reads, worded
/// without a rule's context.
pub fn error_reply(
    args: &[String],
    p: &Proxy,
    warnings: &mut Vec<String>,
) -> Result<Reply, String> {
    let mut values = Values {
        action: "http-error".into(),
        mode: p.mode,
        stage: Stage::ErrorReply,
        warnings,
        // Not a rule's: no log format line of the proxy is noted for it.
        uses_http: &mut false,
    };
    reply(args, 200, &mut values).map_err(|e| match e {
        ActionError::Unknown(m) | ActionError::Rule(m) => m,
        ActionError::Unsupported(what) => format!("{what} is not implemented by hapx."),
    })
}

/// The `deny_status N` that `deny` and `tarpit` take before their reply options, and those
/// options. As HAProxy's, the status without options answers with the default error page,
/// which only HAProxy's error statuses have.
fn deny_status(args: &[String], default: u16) -> Result<(u16, &[String]), ActionError> {
    let (status, options) = match args {
        [first, rest @ ..] if first == "deny_status" => {
            let Some((v, options)) = rest.split_first() else {
                return Err(ActionError::Rule(
                    "'status' expects <status_code> as argument".into(),
                ));
            };
            // HAProxy reads it with `atol`: the leading digits, 0 without any.
            let digits = v.len() - v.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let code = v[..digits].parse::<u64>().unwrap_or(0);
            let status = u16::try_from(code)
                .ok()
                .filter(|s| (200..=599).contains(s))
                .ok_or_else(|| ActionError::Rule(format!("Unexpected status code '{code}'")))?;
            (status, options)
        }
        _ => (default, args),
    };
    if options.is_empty() && !super::errors::ERROR_CODES.contains(&status) {
        return Err(ActionError::Rule(format!(
            "status code '{status}' not handled by default with 'default-errorfiles' argument.."
        )));
    }
    Ok((status, options))
}

/// The reply options of `deny`, `tarpit` and `return` (and `http-error`); a word that is
/// none ends them, as in HAProxy, where only a condition may follow.
fn reply(args: &[String], mut status: u16, values: &mut Values<'_>) -> Result<Reply, ActionError> {
    let mut content_type = None;
    let mut body = None;
    let mut lf_body = None;
    let mut page = None;
    let mut error_page = false;
    let mut errorfile = false;
    let mut headers = Vec::new();
    let mut errorfiles_section = None;
    // The payload option given, HAProxy's `act_arg`: they exclude each other.
    let mut payload: Option<&str> = None;
    let mut i = 0;
    while let Some(opt) = args.get(i) {
        let v = args.get(i + 1);
        let need = |what: &str| ActionError::Rule(format!("'{opt}' expects <{what}> as argument"));
        let payload_option = matches!(
            opt.as_str(),
            "errorfiles"
                | "default-errorfiles"
                | "errorfile"
                | "file"
                | "string"
                | "lf-file"
                | "lf-string"
        );
        if payload_option {
            if let Some(first) = payload {
                return Err(ActionError::Rule(format!(
                    "unexpected '{opt}' argument, '{first}' already defined"
                )));
            }
            payload = Some(opt);
        }
        match opt.as_str() {
            "status" => status = status_arg(v)?,
            "content-type" => content_type = Some(v.ok_or_else(|| need("ctype"))?.clone()),
            "string" => body = Some(v.ok_or_else(|| need("str"))?.as_bytes().to_vec()),
            "lf-string" => lf_body = Some(values.compile(v.ok_or_else(|| need("fmt"))?)?),
            "lf-file" => {
                let f = v.ok_or_else(|| need("file"))?;
                let text = std::fs::read(f)
                    .map_err(|_| ActionError::Rule(format!("error opening file '{f}'")))?;
                lf_body = Some(values.compile(&crate::bytestr::from_vec(text))?);
            }
            "hdr" => {
                let (Some(name), Some(value)) = (v, args.get(i + 2)) else {
                    return Err(ActionError::Rule(
                        "'hdr' expects <name> and <value> as arguments".into(),
                    ));
                };
                let value = values.compile(value)?;
                // HAProxy writes these from the payload itself.
                let framing = ["content-length", "content-type", "transfer-encoding"];
                if framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                    values
                        .warnings
                        .push(format!("header '{name}' always ignored by the http reply."));
                } else {
                    headers.push((name.to_ascii_lowercase(), value));
                }
                i += 3;
                continue;
            }
            "file" => {
                let f = v.ok_or_else(|| need("file"))?;
                // HAProxy's words, whatever the system's reason.
                body = Some(
                    std::fs::read(f)
                        .map_err(|_| ActionError::Rule(format!("error opening file '{f}'")))?,
                );
            }
            "errorfile" => {
                let f = v.ok_or_else(|| need("fmt"))?;
                let text = std::fs::read(f)
                    .map_err(|_| ActionError::Rule(format!("error opening file '{f}'.")))?;
                // Without a period of its own: a rule's message gets one, `http-error`'s not.
                if let Some(e) = super::errors::framing_error(f, &text) {
                    return Err(ActionError::Rule(e));
                }
                page = Some(super::errors::Page::raw(&text));
                errorfile = true;
            }
            "errorfiles" => {
                errorfiles_section = Some(v.ok_or_else(|| need("name"))?.clone());
                errorfile = true;
            }
            "default-errorfiles" => {
                error_page = true;
                errorfile = true;
                i += 1;
                continue;
            }
            other if values.stage == Stage::ErrorReply => {
                return Err(ActionError::Rule(format!("unknown keyword '{other}'.")));
            }
            other => {
                return Err(ActionError::Unknown(format!(
                    "'{}' expects either 'if' or 'unless' followed by a condition but found '{other}'.",
                    values.action
                )));
            }
        }
        i += 2;
    }
    // A page taken from the proxy's or a section's: only for the statuses HAProxy has one.
    if let Some(kind @ ("errorfiles" | "default-errorfiles")) = payload {
        if !super::errors::ERROR_CODES.contains(&status) {
            return Err(ActionError::Rule(format!(
                "status code '{status}' not handled by default with '{kind}' argument.."
            )));
        }
    }
    if lf_body.is_some() && content_type.is_none() {
        return Err(ActionError::Rule(
            "a content type must be defined with a log-format payload".into(),
        ));
    }
    if body.is_some() && content_type.is_none() && !errorfile {
        return Err(ActionError::Rule(
            "a 'content-type' must be set when a payload is defined".into(),
        ));
    }
    if let (true, Some(t)) = (errorfile, &content_type) {
        values.warnings.push(format!(
            "content-type '{t}' ignored by the http reply when used with an erorrfile."
        ));
        content_type = None;
    }
    if errorfile && !headers.is_empty() {
        values
            .warnings
            .push("hdr parameters ignored by the http reply when used with an erorrfile.".into());
        headers.clear();
    }
    Ok(Reply {
        status,
        error_page,
        content_type,
        body,
        lf_body,
        page,
        headers,
        errorfiles: errorfiles_section,
    })
}

/// Notes the backends and servers `refs` names, made by the fetches of a line at `place`
/// used `within` (as HAProxy names it), for [`check`].
pub fn note_backend_refs(
    rules: &mut Rules,
    place: &Place,
    within: Option<&'static str>,
    refs: Vec<super::acl::BackendRef>,
) {
    rules
        .references
        .extend(noted_refs(refs, place, within, None));
}

/// The references `refs` of a line at `place`, used `within`, written in defaults section
/// `defaults` (resolved there once, see [`unresolved_defaults_refs`]) or in their proxy.
fn noted_refs(
    refs: Vec<super::acl::BackendRef>,
    place: &Place,
    within: Option<&'static str>,
    defaults: Option<String>,
) -> impl Iterator<Item = Reference> {
    refs.into_iter().map(move |named| Reference {
        place: place.clone(),
        within: within.filter(|_| !named.acl_worded),
        named,
        defaults: defaults.clone(),
        health_check: false,
    })
}

/// [`note_backend_refs`] for a `tcp-check` or `http-check` line of `p`, `within` as HAProxy
/// names where it is ("server directive", or "tcp-check expression" for a variable rule's),
/// kept as its defaults section's when `p` is one.
pub fn note_check_refs(
    p: &mut Proxy,
    place: &Place,
    refs: Vec<super::acl::BackendRef>,
    within: &'static str,
) {
    let defaults = (p.kind == ProxyKind::Defaults).then(|| p.name.clone());
    let noted = refs.into_iter().map(|named| Reference {
        place: place.clone(),
        within: Some(within).filter(|_| !named.acl_worded),
        named,
        defaults: defaults.clone(),
        health_check: true,
    });
    p.rules.references.extend(noted);
}

/// The unresolved references of the health-check rules written in defaults sections, each
/// once (the proxies inheriting them all carry them), grouped by section as they came and
/// named as that section's: (section, messages).
pub fn unresolved_defaults_refs(
    config: &super::model::Config,
) -> Vec<(String, Vec<super::stick::Unresolved>)> {
    let mut sections: Vec<(String, Vec<super::stick::Unresolved>)> = Vec::new();
    let mut seen: Vec<(&Place, &super::acl::BackendRef)> = Vec::new();
    let mut refs: Vec<&Reference> = (config.proxies.iter())
        .flat_map(|p| &p.rules.references)
        .filter(|r| r.defaults.is_some() && r.health_check)
        .collect();
    refs.sort_by(|a, b| (&a.place.file, a.place.line).cmp(&(&b.place.file, b.place.line)));
    for r in refs {
        if seen.contains(&(&r.place, &r.named)) {
            continue;
        }
        seen.push((&r.place, &r.named));
        let section = r.defaults.clone().unwrap_or_default();
        let Some(message) = unresolved(r, &section, config) else {
            continue;
        };
        let message = super::stick::Unresolved {
            place: r.place.clone(),
            within: r.within,
            message,
        };
        match sections.last_mut().filter(|(name, _)| *name == section) {
            Some((_, messages)) => messages.push(message),
            None => sections.push((section, vec![message])),
        }
    }
    sections
}

/// Whether `p` has a `use_backend` rule whose name is rendered per stream.
pub fn dynamic_switching(p: &Proxy) -> bool {
    p.rules.use_backends.iter().any(|u| u.dynamic.is_some())
}

/// The defaults sections whose rules `p` runs with backend references in them.
pub fn inherited_ref_sections(p: &Proxy) -> impl Iterator<Item = &str> {
    (p.rules.references.iter())
        .filter(|r| !r.health_check)
        .filter_map(|r| r.defaults.as_deref())
}

/// [`unresolved_refs`] for the rules `p` inherits from defaults section `section`, named as
/// that section's (HAProxy resolves them once, in it).
pub fn unresolved_section_refs(
    p: &Proxy,
    section: &str,
    config: &super::model::Config,
) -> Vec<super::stick::Unresolved> {
    (p.rules.references.iter())
        .filter(|r| !r.health_check && r.defaults.as_deref() == Some(section))
        .filter_map(|r| {
            let message = unresolved(r, section, config)?;
            Some(super::stick::Unresolved {
                place: r.place.clone(),
                within: r.within,
                message,
            })
        })
        .collect()
}

/// HAProxy's messages for the backends and servers `p`'s fetches name that do not exist,
/// with where and how each was used, for [`super::stick::check_fetch_tables`] to group
/// with the tables they name (HAProxy resolves them together after the proxies).
pub fn unresolved_refs(p: &Proxy, config: &super::model::Config) -> Vec<super::stick::Unresolved> {
    (p.rules.references.iter())
        .filter(|r| r.defaults.is_none())
        .filter_map(|r| {
            let message = unresolved(r, &p.name, config)?;
            Some(super::stick::Unresolved {
                place: r.place.clone(),
                within: r.within,
                message,
            })
        })
        .collect()
}

/// HAProxy's message when the backend or server reference `r` (in proxy `proxy`) names
/// does not exist.
fn unresolved(r: &Reference, proxy: &str, config: &super::model::Config) -> Option<String> {
    let named = &r.named;
    let what = match r.within {
        None => format!("ACL keyword '{}'", named.keyword),
        Some(w) => format!("sample fetch keyword '{}' in {w}", named.keyword),
    };
    // HAProxy words these `parsing [file:line]: ...`, without its usual space.
    let at = format!("parsing [{}]:", r.place);
    if named.backend.is_empty() {
        return unresolved_own_proxy(r, &what, proxy, config).map(|m| format!("{at} {m}"));
    }
    let found = (config.proxies.iter()).find(|b| b.name == named.backend && b.kind.is_backend());
    let missing = match (found, &named.server) {
        // srv_is_up names any proxy; nbsrv a backend.
        (None, Some(_)) => format!("proxy '{}'", named.backend),
        (None, None) => format!("backend '{}'", named.backend),
        (Some(b), Some(s)) if !b.servers.iter().any(|bs| bs.name == *s) => {
            format!("server '{s}' in proxy '{}',", named.backend)
        }
        (Some(_), _) => return None,
    };
    Some(format!(
        "{at} unable to find {missing} referenced in arg 1 of {what} in proxy '{proxy}'."
    ))
}

/// HAProxy's message (after `parsing [place]:`) when `r`, used as `what`, names no proxy,
/// which is then `proxy`, the one it is written in: a defaults section cannot be one
/// (`nbsrv` wants a backend, `srv_is_up(s)` a backend named), nor a frontend a backend.
fn unresolved_own_proxy(
    r: &Reference,
    what: &str,
    proxy: &str,
    config: &super::model::Config,
) -> Option<String> {
    let own = || config.proxies.iter().filter(|p| p.name == proxy);
    let in_defaults = r.defaults.is_some();
    match &r.named.server {
        Some(_) if in_defaults => Some(format!(
            "backend name must be set in arg 1 of {what} in proxy '{proxy}'."
        )),
        Some(s) => (!own().flat_map(|p| &p.servers).any(|bs| bs.name == *s)).then(|| {
            format!("unable to find server '{s}' in proxy '{proxy}', referenced in arg 1 of {what} in proxy '{proxy}'.")
        }),
        None => (in_defaults || !own().any(|p| p.kind.is_backend())).then(|| {
            format!("proxy '{proxy}', referenced in arg 1 of {what} in proxy '{proxy}', has not backend capability.")
        }),
    }
}

/// Whole-configuration checks on `p`'s rules, HAProxy's messages: backends that do not
/// exist, mode mismatches, rules a mode ignores, references in fetches.
pub fn check(
    p: &mut Proxy,
    proxies: &[(String, ProxyKind, Mode, Place, Vec<String>)],
    diags: &mut Diags,
) {
    let backend = |name: &str| {
        proxies
            .iter()
            .find(|(n, k, ..)| n == name && k.is_backend())
    };
    let (kind, name) = (p.kind.keyword(), p.name.clone());
    // A frontend's rules are checked too (it has no server), as HAProxy does.
    let own = proxies.iter().find(|(n, k, ..)| *n == name && *k == p.kind);
    if let Some((.., servers)) = own {
        for u in &p.rules.use_servers {
            if let Some(m) = &u.invalid {
                diags.global_alert(format!(
                    "Parsing [{}]; use-server rule failed to parse log-format '{}' : {m}.",
                    u.place, u.server
                ));
            } else if u.dynamic.is_none() && !servers.contains(&u.server) {
                diags.global_alert(format!(
                    "{kind} '{name}' : unable to find server '{}' referenced in a 'use-server' rule.",
                    u.server
                ));
            }
        }
    }
    for u in &p.rules.use_backends {
        if let Some(m) = &u.invalid {
            diags.global_alert(format!(
                "Parsing [{}]: failed to parse use_backend rule '{}' : {m}.",
                u.place, u.backend
            ));
            continue;
        }
        let Some(static_name) = u.static_name() else {
            continue;
        };
        match backend(static_name) {
            None => diags.global_alert(format!(
                "Proxy '{name}': unable to find required use_backend: '{}'.",
                u.backend
            )),
            Some((bname, bkind, ..)) if *bname == name && *bkind == p.kind => {
                diags.global_alert(format!("Proxy '{name}': loop detected for use_backend: '{bname}'."))
            }
            Some((bname, _, Mode::Tcp, bplace, _)) if p.mode == Mode::Http => diags.global_alert(format!(
                "http frontend '{name}' ({}) tries to use incompatible tcp backend '{bname}' ({bplace}) in a 'use_backend' rule (see 'mode').",
                p.place
            )),
            Some(_) => {}
        }
    }
    for alert in unknown_capture_ids(p) {
        diags.global_alert(alert);
    }
    if p.mode == Mode::Http {
        for place in std::mem::take(&mut p.rules.l6_places) {
            diags.global_warn(format!(
                "Proxy '{name}': L6 sample fetches ignored on HTTP proxies (declared at {place})."
            ));
        }
        return;
    }
    // HAProxy names a listen `proxy` in these.
    let kind = p.kind.type_str();
    if p.rules.monitor_uri.take().is_some() {
        diags.global_warn(format!(
            "monitor-uri will be ignored for {kind} '{name}' (needs 'mode http')."
        ));
    }
}

/// The HTTP-only rules and options of a proxy that is not in HTTP mode, warned about as
/// HAProxy warns, after its `stats` and log format warnings (see `check::check`).
pub fn warn_http_only(p: &mut Proxy, diags: &mut Diags) {
    if p.mode == Mode::Http {
        return;
    }
    // HAProxy names a listen `proxy` in these.
    let (kind, name) = (p.kind.type_str(), &p.name);
    // Kept despite the warning, as HAProxy keeps them: a connection an HTTP backend turns
    // to HTTP runs them on each of its requests ([`crate::runtime::http::serve_upgraded`]);
    // a TCP connection never does.
    for (empty, which) in [
        (p.rules.http_request.is_empty(), "http-request"),
        (p.rules.http_response.is_empty(), "http-response"),
        (
            p.rules.http_after_response.is_empty(),
            "http-after-response",
        ),
        (p.rules.redirects.is_empty(), "redirect"),
    ] {
        if !empty {
            diags.global_warn(format!(
                "'{which}' rules ignored for {kind} '{name}' as they require HTTP mode."
            ));
        }
    }
    // Dropped, as HAProxy drops it: a TCP frontend's connection turned to HTTP by its
    // backend gets the header only from the backend's option.
    if p.options.forwardfor.take().is_some() {
        diags.global_warn(format!(
            "'option forwardfor' ignored for {kind} '{name}' as it requires HTTP mode."
        ));
    }
    // Cleared, as HAProxy clears its HTTP-mode options: a connection turned to HTTP still
    // has its first request's silence answered 408 and its close logged.
    if std::mem::take(&mut p.options.http_ignore_probes) {
        diags.global_warn(format!(
            "'option http-ignore-probes' ignored for {kind} '{name}' as it requires HTTP mode."
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules of a frontend made of `lines`, with the warnings; or the first error.
    fn frontend(lines: &[&str]) -> Result<(Rules, Vec<String>), String> {
        let mut p = Proxy::new("f".into(), ProxyKind::Frontend, Place::default());
        p.mode = Mode::Http;
        let mut diags = Diags::default();
        for line in lines {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            assert!(parse_line(&mut p, &words, &Place::default(), &mut diags)?);
        }
        let warnings = diags.list.iter().map(|d| d.message.clone()).collect();
        Ok((p.rules, warnings))
    }

    /// Rules of a TCP backend made of `lines`, with the warnings; or the first error.
    fn tcp_backend(lines: &[&str]) -> Result<(Rules, Vec<String>), String> {
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Place::default());
        let mut diags = Diags::default();
        for line in lines {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            assert!(parse_line(&mut p, &words, &Place::default(), &mut diags)?);
        }
        let warnings = diags.list.iter().map(|d| d.message.clone()).collect();
        Ok((p.rules, warnings))
    }

    #[test]
    fn tcp_response_rules_are_a_backends() {
        let (rules, warnings) = tcp_backend(&[
            "tcp-response inspect-delay 2s",
            "tcp-response content reject if { res.payload(0,3) -m bin 535348 }",
            "tcp-response content sc-inc-gpc0(1)",
            "tcp-response content close unless { res.len gt 4 }",
            "tcp-response content accept",
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(rules.response_inspect_delay, Some(Duration::from_secs(2)));
        let actions: Vec<&TcpAction> = rules.tcp_response.iter().map(|r| &r.action).collect();
        assert_eq!(
            actions,
            [
                &TcpAction::Reject,
                &TcpAction::Stick(StickAction::IncGpc0(1)),
                &TcpAction::Close,
                &TcpAction::Accept
            ]
        );
        assert!(rules.tcp_content.is_empty());
        // A frontend has none, as in HAProxy.
        let err = frontend(&["tcp-response content accept"]).unwrap_err();
        assert_eq!(
            err,
            "tcp-response content is only allowed in 'backend' sections or 'defaults' section with a name"
        );
    }

    #[test]
    fn connection_rules_take_expect_proxy_and_the_socket_actions() {
        let (rules, warnings) = frontend(&[
            "tcp-request connection expect-proxy layer4 if { src 127.0.0.1 }",
            "tcp-request connection set-mark 0x2a",
            "tcp-request connection set-tos 010",
            "tcp-request connection silent-drop unless { src 127.0.0.1 }",
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let actions: Vec<&TcpAction> = rules.tcp_connection.iter().map(|r| &r.action).collect();
        assert_eq!(
            actions,
            [
                &TcpAction::ExpectProxy,
                &TcpAction::SetMark(42),
                &TcpAction::SetTos(8),
                &TcpAction::SilentDrop
            ]
        );
        // Only connection rules come before the header, and `layer4` is the only layer.
        for (line, message) in [
            (
                "tcp-request session expect-proxy layer4",
                "'expect-proxy layer4' is not allowed in 'tcp-request session' rules in frontend 'f'",
            ),
            (
                "tcp-request connection expect-proxy layer7",
                "'tcp-request connection expect-proxy' only supports 'layer4' in frontend 'f' (got 'layer7')",
            ),
            (
                "tcp-request connection set-mark",
                "expects exactly 1 argument (integer/hex value)",
            ),
        ] {
            assert_eq!(frontend(&[line]).unwrap_err(), message, "{line}");
        }
    }

    #[test]
    fn content_and_session_rules_take_the_stream_actions() {
        let (rules, _) = frontend(&[
            "tcp-request content set-log-level err if { src 127.0.0.1 }",
            "tcp-request content set-log-level silent",
            "tcp-request content set-src src",
            "tcp-request content set-tos 0x10",
            "tcp-request content silent-drop",
            "tcp-request session set-mark 7",
            "tcp-request session set-src src",
            "tcp-request session silent-drop",
        ])
        .unwrap();
        let content: Vec<&TcpAction> = rules.tcp_content.iter().map(|r| &r.action).collect();
        assert_eq!(content[0], &TcpAction::SetLogLevel(LogLevel::Severity(3)));
        assert_eq!(content[1], &TcpAction::SetLogLevel(LogLevel::Silent));
        assert!(matches!(content[2], TcpAction::SetSrc(_)));
        assert_eq!(
            content[3..],
            [&TcpAction::SetTos(16), &TcpAction::SilentDrop]
        );
        let session: Vec<&TcpAction> = rules.tcp_session.iter().map(|r| &r.action).collect();
        assert_eq!(session[0], &TcpAction::SetMark(7));
        assert!(matches!(session[1], TcpAction::SetSrc(_)));
        assert_eq!(session[2], &TcpAction::SilentDrop);
        // HAProxy's words, bare; `set-log-level` is no session action.
        for (line, message) in [
            (
                "tcp-request content set-log-level bogus",
                "expects exactly 1 argument (log level name or 'silent')",
            ),
            (
                "tcp-request content set-src src x",
                "'tcp-request content set-src' only accepts 'if' or 'unless', in frontend 'f' (got 'x')",
            ),
            ("tcp-request session set-src", "missing fetch method"),
        ] {
            assert_eq!(frontend(&[line]).unwrap_err(), message, "{line}");
        }
        let err = frontend(&["tcp-request session set-log-level err"]).unwrap_err();
        assert!(err.starts_with("'tcp-request session' expects"), "{err}");
    }

    #[test]
    fn tcp_response_actions_hapx_lacks_are_refused_and_unknown_ones_listed() {
        let err = tcp_backend(&["tcp-response content silent-drop"]).unwrap_err();
        assert!(err.contains("is not implemented by hapx"), "{err}");
        assert!(tcp_backend(&["tcp-response content set-var-fmt(txn.x) %[res.len]"]).is_ok());
        let err = tcp_backend(&["tcp-response content set-var-fmt(txn.x) %[req.len]"]).unwrap_err();
        assert_eq!(
            err,
            "sample fetch <req.len]> may not be reliably used here because it needs 'request buffer' which is not available here"
        );
        assert!(tcp_backend(&["tcp-response content set-var(txn.x) res.len"]).is_ok());
        let err = tcp_backend(&["tcp-response content track-sc0 src"]).unwrap_err();
        assert!(
            err.starts_with(
                "'tcp-response content' expects 'accept', 'close', 'reject', 'ot-group'"
            ),
            "{err}"
        );
        assert!(is_tcp_response_action("sc-inc-gpc1(0)"));
        assert!(is_tcp_response_action("unset-var(txn.x)"));
        assert!(!is_tcp_response_action("set-varx"));
    }

    #[test]
    fn tcp_response_inspect_delay_is_checked_as_haproxy() {
        assert_eq!(response_inspect_delay("10"), Ok(Duration::from_millis(10)));
        assert_eq!(response_inspect_delay(""), Err(String::new()));
        assert_eq!(
            response_inspect_delay("-1"),
            Err(" (unexpected character '-')".into())
        );
        assert_eq!(
            response_inspect_delay("5q"),
            Err(" (unexpected character 'q')".into())
        );
        assert!(
            response_inspect_delay("25d")
                .unwrap_err()
                .contains("timer overflow")
        );
    }

    #[test]
    fn http_actions_are_typed() {
        let (rules, warnings) = frontend(&[
            "http-request deny deny_status 429 if { path /x }",
            // Conditional: rules after an unconditional final one warn.
            "http-request redirect prefix /v2 code 308 drop-query if { path /y }",
            "http-request return status 404 content-type text/plain string gone if { path /z }",
            "http-request set-header X-Src %[src]",
            "http-response del-header Server",
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let actions: Vec<&HttpAction> = rules.http_request.iter().map(|r| &r.action).collect();
        assert!(matches!(
            actions[0],
            HttpAction::Deny(Reply {
                status: 429,
                body: None,
                ..
            })
        ));
        assert!(matches!(
            actions[1],
            HttpAction::Redirect(Redirect {
                code: 308,
                drop_query: true,
                ..
            })
        ));
        assert!(
            matches!(actions[2], HttpAction::Return(Reply { status: 404, body: Some(b), .. }) if b == b"gone")
        );
        assert!(
            matches!(actions[3], HttpAction::SetHeader(h, f) if h == "X-Src" && f.literal().is_none())
        );
        assert!(rules.http_request[0].cond.is_some());
        assert_eq!(
            rules.http_response[0].action,
            HttpAction::DelHeader("Server".into(), NameMatch::Exact)
        );
    }

    #[test]
    fn more_actions_are_typed() {
        let (rules, warnings) = frontend(&[
            "http-request set-log-level silent if { path /health }",
            "http-request set-log-level err",
            "http-request del-header x- -m beg",
            "http-request del-header ^x[0-9]$ -m reg",
            "http-request set-nice 5000",
            "http-request set-tos 0x10",
            "http-request set-mark 010",
            "http-request reject if { path /r }",
            "http-request silent-drop if { path /d }",
            "http-response set-log-level debug",
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let actions: Vec<&HttpAction> = rules.http_request.iter().map(|r| &r.action).collect();
        assert_eq!(actions[0], &HttpAction::SetLogLevel(LogLevel::Silent));
        assert_eq!(actions[1], &HttpAction::SetLogLevel(LogLevel::Severity(3)));
        assert_eq!(
            actions[2],
            &HttpAction::DelHeader("x-".into(), NameMatch::Prefix)
        );
        assert!(matches!(
            actions[3],
            HttpAction::DelHeader(_, NameMatch::Regex(_))
        ));
        assert_eq!(actions[4], &HttpAction::SetNice(1024));
        assert_eq!(actions[5], &HttpAction::SetTos(16));
        assert_eq!(actions[6], &HttpAction::SetMark(8));
        assert_eq!(actions[7], &HttpAction::Reject);
        assert_eq!(actions[8], &HttpAction::SilentDrop);
        assert_eq!(
            rules.http_response[0].action,
            HttpAction::SetLogLevel(LogLevel::Severity(7))
        );
        for (line, error) in [
            (
                "http-request set-log-level loud",
                "log level name or 'silent'",
            ),
            (
                "http-request del-header x -m any",
                "unsupported matching method 'any'",
            ),
            (
                "http-request set-tos 1z",
                "invalid character starting at 'z'",
            ),
            (
                "http-request set-nice",
                "expects exactly 1 argument (integer value)",
            ),
        ] {
            let e = frontend(&[line]).unwrap_err();
            assert!(e.contains(error), "{line}: {e}");
        }
    }

    /// `capture ... len N` and `declare capture` add slots after those before them; `id N`
    /// names one, checked once the proxy is read.
    #[test]
    fn capture_rules_take_slots_in_order() {
        let mut p = Proxy::new("f".into(), ProxyKind::Frontend, Place::default());
        p.mode = Mode::Http;
        let mut diags = Diags::default();
        for line in [
            "http-request capture req.hdr(host) len 5",
            "declare capture request len 3",
            "declare capture response len 7",
            "http-request capture path id 1",
            "http-response capture status id 0",
            "http-response capture status id 1",
        ] {
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            assert!(parse_line(&mut p, &words, &Place::default(), &mut diags).unwrap());
        }
        let lens: Vec<usize> = p.log.req_captures.iter().map(|c| c.len).collect();
        assert_eq!(lens, [5, 3]);
        assert_eq!(p.log.resp_captures.len(), 1);
        let slots: Vec<(i64, bool)> = (p.rules.http_request.iter())
            .chain(&p.rules.http_response)
            .filter_map(|r| match &r.action {
                HttpAction::Capture(c) => Some((c.slot, c.response)),
                _ => None,
            })
            .collect();
        assert_eq!(slots, [(0, false), (1, false), (0, true), (1, true)]);
        assert_eq!(
            unknown_capture_ids(&p),
            ["Proxy 'f': unable to find capture id '1' referenced by http-response capture rule."]
        );
        let mut backend = Proxy::new("b".into(), ProxyKind::Backend, Place::default());
        let words: Vec<String> = ["declare", "capture", "request", "len", "1"]
            .map(String::from)
            .to_vec();
        let e = parse_line(&mut backend, &words, &Place::default(), &mut diags).unwrap_err();
        assert_eq!(e, "'declare' only available in frontend or listen section");
    }

    /// `del-header -m` compares names as HAProxy's lower-cased ones.
    #[test]
    fn header_names_match_as_haproxys() {
        let regex = |p| {
            NameMatch::Regex(
                super::super::pcre::Regex::new(p, super::super::pcre::Flags::CAPTURE).unwrap(),
            )
        };
        for (matching, pattern, name, matches) in [
            (NameMatch::Exact, "X-A", "x-a", true),
            (NameMatch::Exact, "x-a", "x-ab", false),
            (NameMatch::Prefix, "X-", "x-a", true),
            (NameMatch::Prefix, "x-ab", "x-a", false),
            (NameMatch::Suffix, "-END", "a-end", true),
            (NameMatch::Suffix, "a-end", "end", false),
            (NameMatch::Substring, "MID", "amidb", true),
            (NameMatch::Substring, "mid", "mi", false),
            (regex("^r[0-9]$"), "", "R1", true),
            (regex("^R[0-9]$"), "", "R1", false),
        ] {
            assert_eq!(
                matching.matches(pattern, name),
                matches,
                "{matching:?} {pattern} {name}"
            );
        }
    }

    /// Values are log formats read where the rule runs, with HAProxy's messages.
    #[test]
    fn values_are_log_formats() {
        let (rules, warnings) = frontend(&[
            "http-request set-header X-Client %ci:%cp",
            "http-request return status 200 hdr X %b hdr Content-Length 1 if { path /r }",
            "http-request set-header X-L6 %[req.len]",
            "redirect location /a%ci",
        ])
        .unwrap();
        assert!(
            rules.http_request[0]
                .action
                .values()
                .iter()
                .all(|f| f.literal().is_none())
        );
        let HttpAction::Return(reply) = &rules.http_request[1].action else {
            panic!("{:?}", rules.http_request[1]);
        };
        assert_eq!(reply.headers.len(), 1);
        assert_eq!(
            warnings,
            [
                "header 'Content-Length' always ignored by the http reply.",
                "L6 sample fetch <req.len]> ignored in HTTP log-format string."
            ]
        );
        // The `redirect` keyword takes its target as written.
        let HttpAction::Redirect(r) = &rules.redirects[0].action else {
            panic!("{:?}", rules.redirects[0]);
        };
        assert_eq!(r.to.target().literal(), Some("/a%ci"));
        assert_eq!(
            frontend(&["http-response set-header X %[path]"]).unwrap_err(),
            "error detected in frontend 'f' while parsing 'http-response set-header' rule : sample fetch <path]> may not be reliably used here because it needs 'HTTP request headers' which is not available here."
        );
        assert_eq!(
            frontend(&["http-request set-path /%zz"]).unwrap_err(),
            "error detected in frontend 'f' while parsing 'http-request set-path' rule : no such format variable 'zz'. If you wanted to emit the '%' character verbatim, you need to use '%%'."
        );
    }

    #[test]
    fn rules_after_an_unconditional_final_one_warn() {
        let (_, warnings) = frontend(&[
            "http-request deny if { path /x }",
            "http-request set-header a b",
            "http-request allow",
            "http-response allow",
            "http-request deny",
            "http-response set-header a b",
        ])
        .unwrap();
        let warned = |kw: &str| {
            format!(
                "parsing [:0]: previous '{kw}' action is final and has no condition attached, further entries are NOOP."
            )
        };
        assert_eq!(warnings, [warned("http-request"), warned("http-response")]);
    }

    #[test]
    fn misplaced_rules_warn() {
        let (rules, warnings) = frontend(&[
            "use_backend b if { path /b }",
            "http-request deny if { path /x }",
            "acl tls ssl_bc",
        ])
        .unwrap();
        assert_eq!(rules.use_backends.len(), 1);
        assert_eq!(rules.http_request.len(), 1);
        assert_eq!(
            warnings[0],
            "a 'http-request' rule placed after a 'use_backend' rule will still be processed before."
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("acl 'tls' uses the sample fetch 'ssl_bc'"))
        );
    }

    /// A rule hapx cannot evaluate is refused, never dropped: a dropped `deny` fails open.
    #[test]
    fn after_response_rules_take_haproxy_actions() {
        let (rules, _) = frontend(&[
            "http-after-response set-header x-a b",
            "http-after-response set-status 299 reason Yo if { status 404 }",
            "http-after-response set-var(txn.a) str(x)",
        ])
        .unwrap();
        assert_eq!(rules.http_after_response.len(), 3);
        assert!(rules.http_response.is_empty());
        let (rules, messages) = frontend(&["http-after-response deny"]).unwrap();
        assert!(rules.http_after_response.is_empty());
        assert!(
            messages[0].ends_with("]: 'http-after-response' expects 'ot-group', 'add-header', 'allow', 'capture', 'del-header', 'replace-header', 'replace-value', 'set-header', 'set-status', 'strict-mode', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', but got 'deny'."),
            "{messages:?}"
        );
        // Checked as `http-response` rules: request headers are gone by then.
        let (_, warnings) = frontend(&["http-after-response del-header a if { path /x }"]).unwrap();
        assert!(
            warnings[0].ends_with("incompatible with 'frontend http-response header rule'"),
            "{warnings:?}"
        );
    }

    #[test]
    fn session_rules_run_on_frontends_only() {
        let (rules, _) = frontend(&[
            "tcp-request session track-sc0 src",
            "tcp-request session reject if { src 10.0.0.1 }",
        ])
        .unwrap();
        assert_eq!(rules.tcp_session.len(), 2);
        let (_, warnings) =
            frontend(&["tcp-request content accept", "tcp-request session accept"]).unwrap();
        assert_eq!(
            warnings,
            [
                "a 'tcp-request' rule placed after a 'tcp-request content' rule will still be processed before."
            ]
        );
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Place::default());
        let words: Vec<String> = ["tcp-request", "session", "accept"]
            .map(String::from)
            .into();
        let e = parse_line(&mut p, &words, &Place::default(), &mut Diags::default()).unwrap_err();
        assert_eq!(
            e,
            "tcp-request session is not allowed because backend b is not a frontend"
        );
    }

    #[test]
    fn unimplemented_rules_are_refused() {
        for (lines, what) in [
            (&["http-request cache-use c"][..], "the action 'cache-use'"),
            (
                &["acl tls ssl_bc", "http-request deny if !tls"][..],
                "the sample fetch 'ssl_bc'",
            ),
            (
                &["acl tls ssl_bc", "use_backend c if tls"][..],
                "the sample fetch 'ssl_bc'",
            ),
            (
                &["tcp-request session set-dst-port int(1)"][..],
                "the action 'set-dst-port'",
            ),
        ] {
            let e = frontend(lines).unwrap_err();
            assert!(
                e.contains(what) && e.ends_with("hapx refuses to run without this rule."),
                "{e}"
            );
        }
    }

    /// As HAProxy's `action_suggest`: a prefix keyword (`set-var(*)`, compared by its
    /// name) is suggested up to three times the lengths away, any other word up to twice;
    /// the first closest wins.
    #[test]
    fn action_hints_allow_prefix_keywords_more() {
        let hint = |name, actions: &[&'static str], extra: &[&'static str]| {
            action_hint(name, actions.iter().copied(), extra)
        };
        let set_var = " Did you mean 'set-var' maybe ?";
        // `sv(a)` is 15 away from `set-var`, its length 5.
        assert_eq!(hint("sv(a)", &["set-var(*)"], &[]), set_var);
        assert_eq!(hint("sv(a)", &["set-var"], &[]), "");
        assert_eq!(hint("sv(a)", &[], &["set-var"]), "");
        assert_eq!(
            hint("set-vax(txn.x)", &["deny", "set-var(*)"], &[]),
            set_var
        );
        // Ties keep the first: the keywords before the extra words.
        assert_eq!(
            hint("ab", &["ba", "ab-"], &["-ab"]),
            " Did you mean 'ab-' maybe ?"
        );
        assert_eq!(hint("", &["set-var(*)"], &[]), "");
    }

    #[test]
    fn errors_name_the_rule() {
        assert_eq!(
            frontend(&["http-request deny deny_status 99"]).unwrap_err(),
            "error detected in frontend 'f' while parsing 'http-request deny' rule : Unexpected status code '99'."
        );
        assert_eq!(
            frontend(&["use_backend b if nope"]).unwrap_err(),
            "error detected while parsing switching rule : no such ACL : 'nope'."
        );
        // An unknown action is HAProxy's alert, written as `parsing [FILE:LINE]: ...`.
        let (_, alerts) = frontend(&["http-request frobnicate"]).unwrap();
        assert!(alerts[0].ends_with(", 'set-priority-offset', but got 'frobnicate'."));
        let (_, alerts) = frontend(&["http-response den"]).unwrap();
        assert!(alerts[0].ends_with("but got 'den'. Did you mean 'deny' maybe ?"));
    }
}
