//! A proxy's rules at work, in HAProxy 2.6's order:
//!
//! 1. `tcp-request connection` at accept ([`accept_connection`]): a rejected connection is
//!    reset, counted (`denied_conn`) and not logged; `tcp-request session` once its PROXY
//!    header was read ([`accept_session`]): a rejected session likewise (`denied_sess`).
//! 2. `tcp-request content` ([`inspect`]): in TCP mode the client's first bytes are read for
//!    up to `tcp-request inspect-delay` while a rule cannot decide yet (a ClientHello still
//!    incomplete for `req.ssl_sni`); in HTTP mode they run on each request, before its HTTP
//!    rules. Their `set-tos`, `set-mark`, `set-log-level`, `set-src(-port)` and
//!    `silent-drop` act as the HTTP rules' ones ([`Effects`]; in TCP mode, [`StreamAsked`]).
//! 3. HTTP: `monitor-uri` ([`monitor`]), then the frontend's `http-request` rules, the
//!    backend choice ([`choose_backend`]: the first `use_backend` whose condition holds,
//!    else `default_backend`; a log-format name is rendered then, and one naming no
//!    backend falls to `default_backend`), the backend's `http-request` rules
//!    ([`http_request`]); on the response, the backend's then the frontend's `http-response` rules ([`http_response`]),
//!    then their `http-after-response` rules ([`after_response`]), which hapx's own replies
//!    go through too ([`after_local`], [`after_reply`]: the reply's head parsed back,
//!    rewritten and its logged size and status updated).
//! 4. TCP: a backend's `tcp-response content` rules ([`forward_response_inspected`]) on what
//!    its server sends first, up to `tcp-response inspect-delay`, before the forwarding.
//!
//! Rule values (`set-header` values, redirect targets, `set-path` ...) are log formats, as in
//! HAProxy 2.6: rendered from the log facts known where the rule runs ([`Facts`], turned into
//! a [`Entry`] only for a value with variables; a literal one is copied). What costs a
//! system call or a clock read is had only where a value shows it: the request's arrival
//! (`%Ti %TR %Tq ...`) is measured for frontends whose values or whose backends' show timers
//! ([`values_use_timers`]), the server connection's addresses are read for a value showing
//! them, and a wildcard bind's address once per connection.
//!
//! A proxy without rules costs nothing here: each entry point is behind an emptiness test.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;

use super::http::{Framing, Head};
use super::log::{self, HttpFacts};
use super::logformat::{Arrival, Counts, Entry, LogFormat, Timers};
use super::sample::{self, Context, Test};
use super::state::{Backend, Frontend, Server, State};
use super::{stick, vars};
use crate::config::acl::{Acl, Condition};
use crate::config::errors::Page;
use crate::config::model::{Mode, Proxy, VarAction};
use crate::config::pcre::{self, Regex};
use crate::config::rules::{
    CaptureRule, Edit, HttpAction, LogLevel, Part, PatternEdit, Redirect, RedirectTo, Replace,
    Rules, TcpAction, TcpRule, VarRule,
};

/// The most of a TCP client's first bytes the rules see (HAProxy's buffer less its reserve).
const MAX_INSPECT: usize = super::INSPECT_LIMIT;

/// A `use_backend` rule with its backend resolved (once, at start), or its name's format.
#[derive(Debug)]
pub struct Switch {
    pub cond: Option<Condition>,
    pub target: Target,
}

/// What a `use_backend` rule names.
#[derive(Debug)]
pub enum Target {
    /// A backend named in the configuration.
    Backend(Arc<Backend>),
    /// A log format rendered per stream (HAProxy's dynamic rule), looked up in `backends`
    /// (every proxy with a backend, by name, shared by the frontend's rules).
    Named {
        format: LogFormat,
        backends: Arc<std::collections::HashMap<String, Arc<Backend>>>,
    },
}

impl Switch {
    /// The backends the rule may choose.
    pub fn backends(&self) -> Box<dyn Iterator<Item = &Arc<Backend>> + '_> {
        match &self.target {
            Target::Backend(b) => Box::new(std::iter::once(b)),
            Target::Named { backends, .. } => Box::new(backends.values()),
        }
    }
}

/// A frontend's `use_backend` rules, in order, each with its backend.
pub fn switching(p: &Proxy, backends: &[Arc<Backend>]) -> Vec<Switch> {
    let mut by_name: Option<Arc<std::collections::HashMap<String, Arc<Backend>>>> = None;
    p.rules
        .use_backends
        .iter()
        .map(|u| {
            let target = match &u.dynamic {
                Some(format) => Target::Named {
                    format: format.clone(),
                    backends: by_name
                        .get_or_insert_with(|| {
                            Arc::new(
                                backends
                                    .iter()
                                    .map(|b| (b.name.clone(), b.clone()))
                                    .collect(),
                            )
                        })
                        .clone(),
                },
                None => Target::Backend(
                    backends
                        .iter()
                        .find(|b| b.name == u.backend)
                        .cloned()
                        // The configuration check refuses a `use_backend` naming no backend.
                        .expect("a checked use_backend names a backend"),
                ),
            };
            Switch {
                cond: u.cond.clone(),
                target,
            }
        })
        .collect()
}

/// The address a client connected to: the listener's, or the socket's own for a wildcard
/// bind (one getsockname(2), only for proxies with rules).
pub fn local_addr(client: &TcpStream, bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        client.local_addr().unwrap_or(bound)
    } else {
        bound
    }
}

/// How a connection's `tcp-request connection|session|content` rules ended it, or let it
/// go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layer4End {
    /// The connection goes on.
    #[default]
    Accept,
    /// `reject`: reset at once (connection and session rules, not logged), or closed
    /// (content rules, logged).
    Reject,
    /// `silent-drop`: closed without a word to the client.
    SilentDrop,
}

/// What a connection's `tcp-request connection` rules decided, and what they asked of its
/// socket on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionVerdict {
    pub end: Layer4End,
    /// An `expect-proxy layer4` rule applied: the connection starts with a PROXY header.
    pub expect_proxy: bool,
    /// `set-tos`, `set-mark`: the last value each rule that ran set.
    pub tos: Option<u32>,
    pub mark: Option<u32>,
    /// `set-src`, `set-src-port` (session rules): the client address and port the session
    /// goes on with.
    pub src: Option<IpAddr>,
    pub src_port: Option<u16>,
}

impl ConnectionVerdict {
    /// The client address as the rules left it: `peer` with what `set-src` and
    /// `set-src-port` gave.
    pub fn client(&self, peer: SocketAddr) -> SocketAddr {
        moved_client(peer, self.src, self.src_port)
    }
}

/// `peer` with the address `ip` and the port `port` a rule gave, if one did.
fn moved_client(peer: SocketAddr, ip: Option<IpAddr>, port: Option<u16>) -> SocketAddr {
    SocketAddr::new(ip.unwrap_or(peer.ip()), port.unwrap_or(peer.port()))
}

/// The port a `set-src-port` expression gives: its value as an integer, cut to 16 bits as
/// HAProxy stores it.
fn port(sample: sample::Sample<'_>) -> Option<u16> {
    sample.as_int().map(|n| n as u16)
}

/// `tcp-request connection` rules: whether the connection goes on, whether it must start
/// with a PROXY header, and the socket options to set. `stick`: the connection's stick
/// counters, which `track-scN` fills.
pub fn accept_connection(
    state: &State,
    fe: &Frontend,
    src: SocketAddr,
    dst: SocketAddr,
    stick: Option<&stick::Counters>,
) -> ConnectionVerdict {
    let ctx = Context {
        stick,
        ..Context::new(state, fe, src, dst)
    };
    run_layer4_rules(&fe.conf.rules.tcp_connection, &fe.conf.rules, &ctx)
}

/// `tcp-request session` rules, once the connection's PROXY header was read (and its TLS
/// handshake made, whose facts `tls` gives the `ssl_fc_*` fetches): whether the session
/// goes on, and what they asked of its socket and client address. `stick`: the
/// connection's stick counters, which `track-scN` fills.
pub fn accept_session(
    state: &State,
    fe: &Frontend,
    (src, dst): (SocketAddr, SocketAddr),
    stick: Option<&stick::Counters>,
    tls: Option<&super::tls::ClientTls>,
) -> ConnectionVerdict {
    let ctx = Context {
        stick,
        tls,
        ..Context::new(state, fe, src, dst)
    };
    // The configuration takes `expect-proxy` in connection rules alone.
    run_layer4_rules(&fe.conf.rules.tcp_session, &fe.conf.rules, &ctx)
}

/// Rules that decide on addresses alone (`tcp-request connection|session`), in order:
/// counters, variables and socket options are set as met, `expect-proxy` is noted and
/// the rules go on (as HAProxy's, whose later rules still see the real peer); `set-src`
/// changes the address the later rules see; the first accept, reject or silent-drop
/// decides; none: accepted.
fn run_layer4_rules(list: &[TcpRule], rules: &Rules, ctx: &Context<'_>) -> ConnectionVerdict {
    let mut verdict = ConnectionVerdict::default();
    let mut ctx = *ctx;
    for rule in list {
        if sample::eval(rule.cond.as_ref(), &rules.acls.acls, &ctx) != Test::Pass {
            continue;
        }
        match &rule.action {
            TcpAction::Stick(a) => {
                stick::act(a, &ctx, stick::Level::Session, stick::TrackedBy::Tcp)
            }
            TcpAction::Var(v) => set_tcp_var(v, &ctx, None),
            TcpAction::ExpectProxy => verdict.expect_proxy = true,
            TcpAction::SetTos(tos) => verdict.tos = Some(*tos),
            TcpAction::SetMark(mark) => verdict.mark = Some(*mark),
            TcpAction::SetSrc(expr) => {
                if let Some(ip) = sample::fetch_last(expr, &ctx).and_then(address) {
                    verdict.src = Some(ip);
                    ctx.src = SocketAddr::new(ip, ctx.src.port());
                }
            }
            TcpAction::SetSrcPort(expr) => {
                if let Some(port) = sample::fetch_last(expr, &ctx).and_then(port) {
                    verdict.src_port = Some(port);
                    ctx.src.set_port(port);
                }
            }
            // A content rule's (refused here by the configuration).
            TcpAction::SetLogLevel(_) => {}
            TcpAction::Accept => return verdict,
            TcpAction::SilentDrop => {
                verdict.end = Layer4End::SilentDrop;
                return verdict;
            }
            // `close` is a response rule's (refused here by the configuration).
            TcpAction::Reject | TcpAction::Close => {
                verdict.end = Layer4End::Reject;
                return verdict;
            }
        }
    }
    verdict
}

/// The first `tcp-request content` rule that accepts, rejects or drops decides; none:
/// accepted. `None` while a rule needs data that may still come (only when `ctx.partial`).
/// What the rules ask of the stream's socket, log line and client address goes to
/// `effects` (`set-src` changes the address the later rules see too).
fn content_verdict(
    acls: &[Acl],
    rules: &[crate::config::rules::TcpRule],
    ctx: &Context<'_>,
    effects: &Effects,
) -> Option<Layer4End> {
    let mut ctx = *ctx;
    for rule in rules {
        match sample::eval(rule.cond.as_ref(), acls, &ctx) {
            Test::Miss if ctx.partial => return None,
            Test::Pass => match &rule.action {
                TcpAction::Stick(a) if stick::waits(a, &ctx) => return None,
                TcpAction::Stick(a) => {
                    stick::act(a, &ctx, stick::Level::Stream, stick::TrackedBy::Tcp)
                }
                TcpAction::Var(v) => set_tcp_var(v, &ctx, None),
                TcpAction::SetLogLevel(level) => effects.log_level.set(Some(*level)),
                TcpAction::SetTos(tos) => effects.tos.set(Some(*tos)),
                TcpAction::SetMark(mark) => effects.mark.set(Some(*mark)),
                TcpAction::SetSrc(expr) => {
                    if let Some(ip) = sample::fetch_last(expr, &ctx).and_then(address) {
                        effects.src.set(Some(ip));
                        ctx.src = effects.client(ctx.src);
                    }
                }
                TcpAction::SetSrcPort(expr) => {
                    if let Some(port) = sample::fetch_last(expr, &ctx).and_then(port) {
                        effects.src_port.set(Some(port));
                        ctx.src = effects.client(ctx.src);
                    }
                }
                // A connection rule's (refused here by the configuration).
                TcpAction::ExpectProxy => {}
                TcpAction::Accept => return Some(Layer4End::Accept),
                TcpAction::SilentDrop => return Some(Layer4End::SilentDrop),
                TcpAction::Reject | TcpAction::Close => return Some(Layer4End::Reject),
            },
            _ => {}
        }
    }
    Some(Layer4End::Accept)
}

/// What a backend's `tcp-response content` rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseVerdict {
    /// What the server sent goes on to the client, and the forwarding with it.
    Accept,
    /// The session ends, both sides closed, nothing sent to the client (`PD`).
    Reject,
    /// What the server sent goes to the client, then the server connection is reset and
    /// the client's closed.
    Close,
}

/// The first `tcp-response content` rule that applies decides (stick actions go on);
/// none: accepted. `None` while a rule needs data that may still come (`ctx.partial`).
/// `server`: the one answering, which a `set-var-fmt` may show (`%s`).
pub fn response_verdict(
    ctx: &Context<'_>,
    rules: &Rules,
    server: Option<&str>,
) -> Option<ResponseVerdict> {
    for rule in &rules.tcp_response {
        match sample::eval(rule.cond.as_ref(), &rules.acls.acls, ctx) {
            Test::Miss if ctx.partial => return None,
            Test::Pass => match &rule.action {
                TcpAction::Stick(a) => {
                    stick::act(a, ctx, stick::Level::Stream, stick::TrackedBy::Tcp)
                }
                TcpAction::Var(v) => set_tcp_var(v, ctx, server),
                TcpAction::Accept => return Some(ResponseVerdict::Accept),
                TcpAction::Reject => return Some(ResponseVerdict::Reject),
                TcpAction::Close => return Some(ResponseVerdict::Close),
                // `tcp-request` rules alone (the configuration refuses them here).
                TcpAction::ExpectProxy
                | TcpAction::SetTos(_)
                | TcpAction::SetMark(_)
                | TcpAction::SilentDrop
                | TcpAction::SetLogLevel(_)
                | TcpAction::SetSrc(_)
                | TcpAction::SetSrcPort(_) => {}
            },
            _ => {}
        }
    }
    Some(ResponseVerdict::Accept)
}

/// [`forward_response_inspected`] with the session's timeouts and splicing, boxed (its
/// state would otherwise grow every TCP session's task) and built here, so that the
/// session's task holds nothing of it but the box.
pub fn inspect_then_forward<'a>(
    ctx: Context<'a>,
    server: &'a Server,
    client: &'a TcpStream,
    server_conn: &'a TcpStream,
    moved: &'a super::forward::Moved,
    sticking: Option<&'a stick::Sticking>,
) -> std::pin::Pin<Box<impl Future<Output = super::forward::End> + 'a>> {
    Box::pin(forward_response_inspected(
        ctx,
        server,
        client,
        server_conn,
        moved,
        sticking,
    ))
}

/// A TCP session whose backend (`ctx.backend`, always set for a TCP session) has
/// `tcp-response content` rules: they rule on what `server_conn` sends first
/// ([`super::forward::inspect_response`]), then the session is forwarded as any other, its
/// idle timeouts counting from the inspection's last transfer. What the server sent counts
/// as sent to the client whatever the verdict (HAProxy's `bytes_out`); a rejection counts in
/// `dresp` of the frontend, the backend and `server`. Past a rejection, `sticking`'s
/// `stick store-response` rules store what they find in what was inspected.
pub async fn forward_response_inspected(
    ctx: Context<'_>,
    server: &Server,
    client: &TcpStream,
    server_conn: &TcpStream,
    moved: &super::forward::Moved,
    sticking: Option<&stick::Sticking>,
) -> super::forward::End {
    use super::forward::{self, Activity, End, IdleTimeouts};
    let backend = ctx.backend.expect("a TCP session's backend");
    let (fe_timeouts, be_timeouts) = (&ctx.frontend.conf.timeouts, &backend.conf.timeouts);
    let (decide, times) = (response_decider(ctx, server), hold_times(&ctx));
    let activity = Activity::new();
    let inspecting =
        forward::inspect_response(client, server_conn, times, &activity, moved, decide);
    let inspected = match inspecting.await {
        Ok(i) => i,
        Err(end) => return end,
    };
    if inspected.verdict == ResponseVerdict::Reject {
        let failed = inspected.server_failed;
        count_rejection(&ctx, server, inspected.data.len(), failed, moved);
        forward::refuse(client, server_conn);
        return End::Denied;
    }
    held_response_passes(ctx, server, &inspected.data, moved, sticking);
    if let Err(end) = forward::pass_on(client, server_conn, &inspected).await {
        return end;
    }
    if inspected.verdict == ResponseVerdict::Close {
        // Reset when the session drops it, as HAProxy kills the server connection (the
        // session keeps the reset its server sockets start with).
        moved.server_killed.store(true, Relaxed);
        let _ = forward::shutdown_write(client);
        return End::Done;
    }
    let idle = IdleTimeouts::new(fe_timeouts, be_timeouts);
    let splicing = ctx.state.splicing(ctx.frontend, backend);
    forward::forward_after(client, server_conn, idle, splicing, moved, &activity).await
}

/// [`forward_response_inspected`] between streams of which one at least is TLS (see
/// [`super::tls::inspect_then_forward`]): the same rules, counters and ends, on the
/// server's plaintext; no splicing.
pub async fn forward_response_inspected_streams<C, S>(
    ctx: Context<'_>,
    server: &Server,
    mut client: C,
    mut server_io: S,
    moved: &super::forward::Moved,
    sticking: Option<&stick::Sticking>,
) -> super::forward::End
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use super::forward::{self, Activity, End, IdleTimeouts};
    let backend = ctx.backend.expect("a TCP session's backend");
    let (fe_timeouts, be_timeouts) = (&ctx.frontend.conf.timeouts, &backend.conf.timeouts);
    let (decide, times) = (response_decider(ctx, server), hold_times(&ctx));
    let activity = Activity::new();
    let inspecting = forward::inspect_response_streams(
        &mut client,
        &mut server_io,
        times,
        &activity,
        moved,
        decide,
    );
    let inspected = match inspecting.await {
        Ok(i) => i,
        Err(end) => return end,
    };
    let verdict = inspected.verdict;
    let failed = inspected.server_failed;
    if verdict == ResponseVerdict::Reject {
        count_rejection(&ctx, server, inspected.data.len(), failed, moved);
        forward::refuse_streams(&mut client, &mut server_io);
        return End::Denied;
    }
    held_response_passes(ctx, server, &inspected.data, moved, sticking);
    if let Err(end) = forward::pass_on_streams(&mut client, &mut server_io, &inspected).await {
        return end;
    }
    if verdict == ResponseVerdict::Close {
        moved.server_killed.store(true, Relaxed);
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut client).await;
        return End::Done;
    }
    let idle = IdleTimeouts::new(fe_timeouts, be_timeouts);
    forward::forward_streams_after(client, server_io, idle, moved, &activity).await
}

/// A held response (`data`) the rules let through, before it goes on: its bytes count as
/// sent to the client (HAProxy's `bytes_out`), and `sticking`'s `stick store-response` rules
/// store what they find in it.
fn held_response_passes(
    ctx: Context<'_>,
    server: &Server,
    data: &[u8],
    moved: &super::forward::Moved,
    sticking: Option<&stick::Sticking>,
) {
    moved.to_client.fetch_add(data.len() as u64, Relaxed);
    if let (Some(s), Some(backend)) = (sticking, ctx.backend) {
        let ctx = Context {
            response_payload: Some(data),
            ..ctx
        };
        s.on_response(&ctx, backend, server);
    }
}

/// The backend's `tcp-response content` rules as a held response's judge: on what the server
/// sent so far, and whether more may come; `None` while a rule waits for more.
fn response_decider<'a>(
    ctx: Context<'a>,
    server: &'a Server,
) -> impl FnMut(&[u8], bool) -> Option<ResponseVerdict> + 'a {
    let rules = &ctx.backend.expect("a TCP session's backend").conf.rules;
    // Stick actions act on the session's tracked counters.
    let counters = (!ctx.state.tables.is_empty())
        .then(stick::current)
        .flatten();
    move |data: &[u8], partial: bool| {
        let ctx = Context {
            response_payload: Some(data),
            partial,
            stick: counters.as_deref(),
            ..ctx
        };
        response_verdict(&ctx, rules, Some(&server.name))
    }
}

/// How long a held response waits: the backend's inspect-delay, and the sides' timeouts.
fn hold_times(ctx: &Context<'_>) -> super::forward::HoldTimes {
    let backend = ctx.backend.expect("a TCP session's backend");
    super::forward::HoldTimes {
        delay: backend.conf.rules.response_inspect_delay,
        client: ctx.frontend.conf.timeouts.client,
        server: backend.conf.timeouts.server,
    }
}

/// Counts a `tcp-response content reject`: what the server sent as sent to the client
/// (HAProxy's `bytes_out`), the denial in `dresp` of the frontend, the backend and
/// `server`, and a server that failed before the verdict as a response error.
fn count_rejection(
    ctx: &Context<'_>,
    server: &Server,
    held: usize,
    server_failed: bool,
    moved: &super::forward::Moved,
) {
    let backend = ctx.backend.expect("a TCP session's backend");
    moved.to_client.fetch_add(held as u64, Relaxed);
    for c in [&ctx.frontend.counters, &backend.counters, &server.counters] {
        c.denied_resp.fetch_add(1, Relaxed);
    }
    if server_failed {
        for c in [&backend.counters, &server.counters] {
            c.resp_errors.fetch_add(1, Relaxed);
        }
    }
}

/// What TCP content inspection read and decided.
#[derive(Debug)]
pub struct Inspected {
    /// The client's first bytes, to send to the server first.
    pub data: Vec<u8>,
    pub end: Layer4End,
}

/// Runs a proxy's `tcp-request content` rules (`rules`: the frontend's, or the chosen
/// backend's) on what a TCP client sends, after `data` read already, waiting for more (up to
/// the proxy's `tcp-request inspect-delay`) while a rule cannot decide. The socket options
/// the rules that ran ask for are set; their log level and client address go to `asked`.
pub async fn inspect(
    base: Context<'_>,
    rules: &Rules,
    client: &TcpStream,
    mut data: Vec<u8>,
    asked: &mut StreamAsked,
) -> std::io::Result<Inspected> {
    let deadline = rules.inspect_delay.map(|d| Instant::now() + d);
    data.extend_from_slice(&super::forward::read_early(client)?);
    let mut closed = false;
    let mut buf = vec![0u8; 4096];
    loop {
        let expired = deadline.is_none_or(|d| Instant::now() >= d);
        // HAProxy's analysers see no more than its buffer holds; the rest follows after.
        let seen = &data[..data.len().min(MAX_INSPECT)];
        let head = stream_head(rules, seen);
        let ctx = Context {
            payload: Some(seen),
            partial: !(closed || expired || seen.len() >= MAX_INSPECT),
            request: head.as_ref(),
            ..base
        };
        // Made again on each try: a rule that waits runs the rules before it again.
        let effects = Effects::default();
        if let Some(end) = content_verdict(&rules.acls.acls, &rules.tcp_content, &ctx, &effects) {
            super::client_socket::set_options(client, effects.tos.get(), effects.mark.get());
            asked.take(&effects);
            return Ok(Inspected { data, end });
        }
        let Some(deadline) = deadline else { continue };
        let read = async {
            loop {
                client.readable().await?;
                match client.try_read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => return other,
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), read).await {
            Err(_) => {}
            Ok(Ok(0)) => closed = true,
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// The HTTP request head a TCP client's first bytes hold, for the HTTP fetches of rules
/// that inspect a TCP stream (`req.hdr(host)`, `path`, `method`), as HAProxy 2.6 parses its
/// raw buffer then (`smp_prefetch_htx`); None until the head is whole, or when it is not
/// HTTP. Parsed only for rules that use such fetches.
pub fn stream_head(rules: &Rules, data: &[u8]) -> Option<Head> {
    use crate::config::acl::Layer;
    let wanted = (rules.acls.acls.iter())
        .flat_map(|a| &a.exprs)
        .any(|e| e.fetch.layer() == Layer::Request);
    if !wanted {
        return None;
    }
    let end = super::http::find_head_end(data)?;
    let line = stream_request_line(data)?;
    // The headers are read as an HTTP request's; the version, which HTTP mode holds to 1.0
    // and 1.1, is the stream parser's.
    let mut checked = [&line.method[..], b" ", &line.uri[..], b" HTTP/1.1"].concat();
    checked.extend_from_slice(&data[line.end..end]);
    let mut head = super::http::parse_head(&checked, true).ok()?;
    head.first[2] = crate::bytestr::from_bytes(&line.version).into_owned();
    Some(head)
}

/// A request line as HAProxy 2.6's H1 parser reads a TCP stream's first bytes
/// (`h1_headers_to_hdr_list`, for `smp_prefetch_htx`): method, URI and version split by
/// runs of blanks; the version any run of upper-case letters, digits, `.` and `/`
/// (`HTTP/2.0`, the HTTP/2 preface's `PRI * HTTP/2.0`, even `FOO`: HTTP mode's checks of it
/// are its multiplexer's, not the parser's); none after the URI is HTTP/0.9, read as
/// `HTTP/1.0`. `end`: where the line's end of line begins.
#[derive(Debug)]
pub struct StreamRequestLine {
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    pub version: Vec<u8>,
    pub end: usize,
}

/// The request line `data` starts with, as [`StreamRequestLine`] says; None when it is not
/// whole yet or not one.
pub fn stream_request_line(data: &[u8]) -> Option<StreamRequestLine> {
    if data.first().is_some_and(|b| b" \t".contains(b)) {
        return None;
    }
    let end = data.iter().position(|&b| b == b'\n')?;
    let end = if end > 0 && data[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    let mut parts = data[..end]
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|p| !p.is_empty());
    let (method, uri) = (parts.next()?, parts.next()?);
    let version = match (parts.next(), parts.next()) {
        // HTTP/0.9, which HAProxy's parser reads as HTTP/1.0.
        (None, _) => b"HTTP/1.0".as_slice(),
        (Some(v), None) => v,
        (Some(_), Some(_)) => return None,
    };
    let version_char = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"./".contains(b);
    version.iter().all(version_char).then(|| StreamRequestLine {
        method: method.to_vec(),
        uri: uri.to_vec(),
        version: version.to_vec(),
        end,
    })
}

/// `tcp-request content` rules on an HTTP request (no waiting: the head is complete): how
/// they end it, if they do; what they ask of the stream goes to `effects` (when the request
/// has some to apply).
fn content_ends(ctx: &Context<'_>, rules: &Rules, effects: Option<&Effects>) -> Option<Abort> {
    let unused = Effects::default();
    let effects = effects.unwrap_or(&unused);
    match content_verdict(&rules.acls.acls, &rules.tcp_content, ctx, effects) {
        None | Some(Layer4End::Accept) => None,
        Some(Layer4End::Reject) => Some(Abort::Content),
        Some(Layer4End::SilentDrop) => Some(Abort::ContentDrop),
    }
}

/// Whether a TCP connection to `fe` meets any content rule or backend choice (without any,
/// nothing is read before connecting).
pub fn tcp_applies(fe: &Frontend) -> bool {
    !fe.conf.rules.tcp_content.is_empty()
        || !fe.switching.is_empty()
        || fe
            .backend
            .as_ref()
            .is_some_and(|b| !b.conf.rules.tcp_content.is_empty())
}

/// Whether an HTTP request to `fe` meets any rule (without any, nothing is evaluated).
pub fn http_applies(fe: &Frontend) -> bool {
    !fe.conf.rules.is_empty()
        || fe.backend.as_ref().is_some_and(|b| {
            let r = &b.conf.rules;
            !r.http_request.is_empty() || !r.redirects.is_empty() || !r.tcp_content.is_empty()
        })
}

/// Whether a value of `fe`'s rules, or of a backend it may choose, shows timers (`%Ti`,
/// `%Tq` ...): its HTTP requests' [`Arrival`] is then measured even when nothing logs.
/// Asked once per connection.
pub fn values_use_timers(fe: &Frontend) -> bool {
    let chosen = fe.switching.iter().flat_map(Switch::backends);
    fe.conf.rules.values_use_timers
        || fe
            .backend
            .iter()
            .chain(chosen)
            .any(|b| b.conf.rules.values_use_timers)
}

/// A backend that is not the frontend's own listen section (whose rules ran as the
/// frontend's already).
fn other_backend<'a>(fe: &Frontend, backend: Option<&'a Arc<Backend>>) -> Option<&'a Arc<Backend>> {
    backend.filter(|b| !(b.name == fe.name && fe.conf.kind.is_backend()))
}

/// The backend of a connection or request: the first `use_backend` whose condition holds,
/// else the default one. A dynamic rule whose rendered name is no backend's ends the
/// search on the default one, as HAProxy's does. `facts`: the HTTP request's log facts,
/// which a dynamic name may show (a TCP connection's are those known at accept).
pub fn choose_backend(ctx: &Context<'_>, facts: Option<&Facts<'_>>) -> Option<Arc<Backend>> {
    let fe = ctx.frontend;
    let acls = &fe.conf.rules.acls.acls;
    for rule in &fe.switching {
        if sample::eval(rule.cond.as_ref(), acls, ctx) == Test::Pass {
            return match &rule.target {
                Target::Backend(b) => Some(b.clone()),
                Target::Named { format, backends } => {
                    let name = match facts {
                        Some(facts) => render(format, ctx, facts),
                        None => render_at_accept(format, ctx, None),
                    };
                    backends.get(&name).or(fe.backend.as_ref()).cloned()
                }
            };
        }
    }
    fe.backend.clone()
}

/// An HTTP request sent to a TCP backend by a dynamic `use_backend`: HAProxy closes the
/// connection without an answer and logs status 500, `IR--`.
fn incompatible_backend() -> Local {
    Local {
        status: 500,
        bytes: Vec::new(),
        flags: "IR--",
        close: true,
        delay: None,
        denied: false,
        intercepted: false,
        logged: true,
        logged_size: 0,
        close_counted: false,
        internal_error: true,
        error_counted: false,
        abort: None,
    }
}

/// A response the proxy makes itself.
#[derive(Debug)]
pub struct Local {
    pub status: u16,
    pub bytes: Vec<u8>,
    /// Termination flags of the log line (`PR--`, `LR--`, `PT--`).
    pub flags: &'static str,
    /// The client connection closes after it.
    pub close: bool,
    /// `tarpit`: held this long before it is sent.
    pub delay: Option<Duration>,
    /// Denied by a rule (counted in `dreq`).
    pub denied: bool,
    /// A request rule's `return`, `redirect` or `auth`: counted in the frontend's
    /// `intercepted` when the frontend's rules made it (HAProxy counts it while the stream's
    /// backend is still the frontend).
    pub intercepted: bool,
    /// Logged (monitor requests are not, as in HAProxy).
    pub logged: bool,
    /// Its size as logged and counted ([`Page::logged_size`]).
    pub logged_size: u64,
    /// Its `connection: close` is part of the message, so the logged size counts it (a
    /// redirect closing on a request with a body: HAProxy's redirect adds the header itself;
    /// other answers get it from the HTTP/1 layer, which the counts leave out).
    pub close_counted: bool,
    /// The internal error a failed rewrite ends in: HAProxy logs no request time (`TR`
    /// -1) for it, having left its request analysis before the end.
    pub internal_error: bool,
    /// The tracked entries count no HTTP error when it is sent, whatever its status: its
    /// rule counted it (`deny`, `tarpit`, before their page is rendered, as HAProxy), or it
    /// is none (`return`, a response's `deny`).
    pub error_counted: bool,
    /// `reject`, `silent-drop`: no answer at all, the connection ends so.
    pub abort: Option<Abort>,
}

/// How a request's connection ends unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// `tcp-request content reject`: closed; a request line not parsed yet logs as
    /// `<BADREQ>`.
    Content,
    /// `http-request reject`: closed.
    Reject,
    /// `silent-drop`: closed without a word to the client where the system allows it
    /// (`TCP_REPAIR`), else with a reset that should not get far (TTL 1).
    SilentDrop,
    /// `tcp-request content silent-drop`: as `SilentDrop`, before the HTTP analysis (a
    /// request line not parsed yet logs as `<BADREQ>`, as `Content`'s).
    ContentDrop,
}

impl Abort {
    /// Whether the client hears nothing of the end.
    pub fn silent(self) -> bool {
        matches!(self, Abort::SilentDrop | Abort::ContentDrop)
    }

    /// Whether the request ends before HAProxy's HTTP analysis began (a content rule's).
    pub fn before_http(self) -> bool {
        matches!(self, Abort::Content | Abort::ContentDrop)
    }
}

/// The [`Local`] of a request the rules end unanswered (`reject`, `silent-drop`): logged
/// as HAProxy's, `PR--` with no status, counted as denied.
fn aborted(abort: Abort) -> Local {
    Local {
        status: 0,
        bytes: Vec::new(),
        flags: "PR--",
        close: true,
        delay: None,
        denied: true,
        intercepted: false,
        logged: true,
        logged_size: 0,
        close_counted: false,
        internal_error: false,
        error_counted: true,
        abort: Some(abort),
    }
}

/// What a request's rules asked of its connection and of its log line, for the request
/// loop to apply once they ran (the rules see the request through shared references).
#[derive(Debug, Default)]
pub struct Effects {
    /// `set-log-level`: the last one that ran.
    pub log_level: Cell<Option<LogLevel>>,
    /// `set-tos`, `set-mark`: the client socket's IP TOS and `SO_MARK`, to set.
    pub tos: Cell<Option<u32>>,
    pub mark: Cell<Option<u32>>,
    /// `capture`: the values the rules captured, in the order they ran.
    pub captures: RefCell<Vec<Captured>>,
    /// `set-src`: the client address the rest of the request sees (HAProxy 2.6 changes
    /// its stream's, not its connection's: the next request has the real one again).
    pub src: Cell<Option<IpAddr>>,
    /// `set-src-port` (`tcp-request content`): the client port likewise.
    pub src_port: Cell<Option<u16>>,
    /// `early-hint`: each rule's header (name, value), for a `103 Early Hints` response of
    /// its own, as HAProxy 2.6 sends them.
    pub early_hints: RefCell<Vec<(String, String)>>,
}

/// A value a `capture` rule took, cut to its slot's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// A response capture slot (else a request one).
    pub response: bool,
    pub slot: usize,
    /// How many slots of its kind the frontend has.
    pub slots: usize,
    pub value: String,
}

impl Effects {
    /// The client address as the rules left it: `peer` with the address `set-src` and
    /// the port `set-src-port` gave.
    pub fn client(&self, peer: SocketAddr) -> SocketAddr {
        moved_client(peer, self.src.get(), self.src_port.get())
    }

    /// `facts` with the rules' captures in their slots (a slot the log does not have is
    /// left out), or None when the rules captured nothing.
    pub fn captured_into(&self, facts: &HttpFacts) -> Option<HttpFacts> {
        let captures = self.captures.borrow();
        if captures.is_empty() {
            return None;
        }
        let mut facts = facts.clone();
        for c in captures.iter() {
            let slots = match c.response {
                true => &mut facts.resp_captures,
                false => &mut facts.req_captures,
            };
            // A reply of the proxy's own has no response captures yet: all empty but this.
            if slots.len() < c.slots {
                slots.resize(c.slots, None);
            }
            if let Some(slot) = slots.get_mut(c.slot) {
                *slot = Some(c.value.clone());
            }
        }
        Some(facts)
    }
}

/// Runs a `capture` rule where `ctx` is: its expression's value as text, cut to the
/// frontend's slot's length (the frontend's slots, whichever proxy's rule it is, as
/// HAProxy's); nothing when it has no value or the slot does not exist.
fn capture(rule: &CaptureRule, ctx: &Context<'_>, effects: &Effects) {
    let log = &ctx.frontend.conf.log;
    let slots = match rule.response {
        true => &log.resp_captures,
        false => &log.req_captures,
    };
    let Some((slot, len)) = usize::try_from(rule.slot)
        .ok()
        .and_then(|i| Some((i, slots.get(i)?.len)))
    else {
        return;
    };
    let Some(value) = sample::fetch_last(&rule.expr, ctx) else {
        return;
    };
    effects.captures.borrow_mut().push(Captured {
        response: rule.response,
        slot,
        slots: slots.len(),
        value: crate::bytestr::cut(&value.to_text(), len),
    });
}

/// `monitor-uri`: the request for it gets 200, or 503 when a `monitor fail` condition
/// holds (the frontend's `http-error` reply for it rendered with the request, as HAProxy
/// renders it); `None` for other requests.
pub fn monitor(ctx: &Context<'_>, head: &Head, keep: bool, facts: &Facts<'_>) -> Option<Local> {
    let rules = &ctx.frontend.conf.rules;
    let uri = rules.monitor_uri.as_deref()?;
    if head.first[1] != uri {
        return None;
    }
    let fail = rules
        .monitor_fail
        .iter()
        .any(|c| sample::eval(Some(c), &rules.acls.acls, ctx) == Test::Pass);
    let status = if fail { 503 } else { 200 };
    ctx.frontend.counters.intercepted.fetch_add(1, Relaxed);
    let fe = &ctx.frontend.conf;
    let page = rendered_error(&[fe], status, ctx, facts).unwrap_or_else(|| error_reply(fe, status));
    let asker = Asker::of(head);
    let (bytes, kept) = page.write(keep, asker);
    Some(Local {
        status,
        bytes,
        logged_size: page.logged_size(asker),
        flags: "LR--",
        close: !kept,
        delay: None,
        denied: false,
        // Counted above.
        intercepted: false,
        logged: false,
        close_counted: false,
        internal_error: false,
        error_counted: false,
        abort: None,
    })
}

/// Runs `proxy`'s `http-request` rules on `head` (header actions edit it); the response
/// when a rule answers.
pub fn http_request(
    proxy: &Proxy,
    ctx: Context<'_>,
    head: &mut Head,
    keep: bool,
    facts: &Facts<'_>,
) -> Option<Local> {
    run(
        proxy,
        &proxy.rules.http_request,
        ctx,
        head,
        false,
        keep,
        facts,
    )
}

/// Runs `proxy`'s `http-response` rules on `resp` (the request is in `ctx`); the response
/// that replaces it when a rule denies it.
pub fn http_response(
    proxy: &Proxy,
    ctx: Context<'_>,
    resp: &mut Head,
    keep: bool,
    facts: &Facts<'_>,
) -> Option<Local> {
    run(
        proxy,
        &proxy.rules.http_response,
        ctx,
        resp,
        true,
        keep,
        facts,
    )
}

fn run(
    proxy: &Proxy,
    rules: &[crate::config::rules::HttpRule],
    base: Context<'_>,
    head: &mut Head,
    response: bool,
    keep: bool,
    facts: &Facts<'_>,
) -> Option<Local> {
    let acls = &proxy.rules.acls.acls;
    // `set-src` changes the client address the next rules see.
    let mut base = base;
    // Each rule list starts in strict mode, as HAProxy's.
    let mut strict = true;
    for rule in rules {
        let value;
        {
            let ctx = with_head(base, head, response);
            if sample::eval(rule.cond.as_ref(), acls, &ctx) != Test::Pass {
                continue;
            }
            value = match &rule.action {
                HttpAction::StrictMode(on) => {
                    strict = *on;
                    continue;
                }
                HttpAction::SetHeader(_, f)
                | HttpAction::AddHeader(_, f)
                | HttpAction::EarlyHint(_, f)
                | HttpAction::Set(_, f)
                | HttpAction::Replace(_, Replace { with: f, .. }) => render(f, &ctx, facts),
                _ => String::new(),
            };
        }
        let asked = (base, response, keep, facts);
        match run_one(proxy, rule, asked, head, value) {
            Ok(Next::Rule) => {
                if let Some(effects) = facts.effects {
                    base.src = effects.client(base.src);
                }
            }
            Ok(Next::Stop(answer)) => return answer,
            Err(RewriteFailed) => {
                let ctx = with_head(base, head, response);
                count_failed_rewrite(&ctx, facts, strict);
                if strict {
                    return Some(failed_rewrite(proxy, &ctx, facts, response));
                }
            }
        }
    }
    None
}

/// What follows a rule.
enum Next {
    /// The next rule.
    Rule,
    /// No more rules: `allow`, or the answer a rule made.
    Stop(Option<Local>),
}

/// Runs one rule whose condition holds, `value` its rendered value if it has one: the
/// answer it makes, if any, or the rewrite it failed.
fn run_one(
    proxy: &Proxy,
    rule: &crate::config::rules::HttpRule,
    (base, response, keep, facts): (Context<'_>, bool, bool, &Facts<'_>),
    head: &mut Head,
    value: String,
) -> Result<Next, RewriteFailed> {
    match &rule.action {
        HttpAction::Allow => return Ok(Next::Stop(None)),
        HttpAction::Stick(a) => {
            let ctx = with_head(base, head, response);
            let by = match response {
                true => stick::TrackedBy::HttpResponse,
                false => stick::TrackedBy::HttpRequest,
            };
            stick::act(a, &ctx, stick::Level::Stream, by);
        }
        HttpAction::Var(v) => {
            let ctx = with_head(base, head, response);
            set_var(v, &ctx, Some(facts));
        }
        // A header that does not fit is not added; those `set-header` removed stay removed.
        HttpAction::SetHeader(name, _) => {
            head.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            head.headers.push((name.clone(), value));
            rewritten(head).inspect_err(|_| drop(head.headers.pop()))?;
        }
        HttpAction::AddHeader(name, _) => {
            head.headers.push((name.clone(), value));
            rewritten(head).inspect_err(|_| drop(head.headers.pop()))?;
        }
        HttpAction::DelHeader(name, matching) => {
            head.headers.retain(|(n, _)| !matching.matches(name, n));
        }
        HttpAction::SetLogLevel(level) => {
            if let Some(effects) = facts.effects {
                effects.log_level.set(Some(*level));
            }
        }
        // Accepted for HAProxy's configurations: tokio's scheduler has no priorities.
        HttpAction::SetNice(_) => {}
        HttpAction::SetTos(tos) => {
            if let Some(effects) = facts.effects {
                effects.tos.set(Some(*tos));
            }
        }
        HttpAction::SetMark(mark) => {
            if let Some(effects) = facts.effects {
                effects.mark.set(Some(*mark));
            }
        }
        HttpAction::Capture(c) => {
            if let Some(effects) = facts.effects {
                capture(c, &with_head(base, head, response), effects);
            }
        }
        HttpAction::SetSrc(expr) => {
            let ip = sample::fetch_last(expr, &with_head(base, head, response)).and_then(address);
            if let (Some(ip), Some(effects)) = (ip, facts.effects) {
                effects.src.set(Some(ip));
            }
        }
        // HAProxy sends hints to HTTP/1.1 clients only (and HTTP/2 ones, not here).
        HttpAction::EarlyHint(name, _) if head.h2.is_none() && head.first[2] == "HTTP/1.1" => {
            if let Some(effects) = facts.effects {
                effects
                    .early_hints
                    .borrow_mut()
                    .push((name.to_ascii_lowercase(), value));
            }
        }
        HttpAction::EarlyHint(..) => {}
        HttpAction::Reject => return Ok(Next::Stop(Some(aborted(Abort::Reject)))),
        HttpAction::SilentDrop => return Ok(Next::Stop(Some(aborted(Abort::SilentDrop)))),
        // A request line that does not fit stays as it was.
        HttpAction::Set(part, _) => set_part(head, part, value)?,
        HttpAction::SetStatus(code, reason) => {
            head.first[1] = code.to_string();
            head.first[2] = reason.clone().unwrap_or_else(|| self::reason(*code).into());
        }
        HttpAction::Replace(part, r) => replace_part(head, part, &r.re, &value)?,
        HttpAction::Pattern(p) => edit_patterns(p, &with_head(base, head, response), facts),
        HttpAction::Redirect(r)
            if r.ignore_empty
                && renders_no_location(r, &with_head(base, head, response), facts) => {}
        action => {
            let ctx = with_head(base, head, response);
            let answer = answer(proxy, action, &ctx, head, response, keep, facts);
            return Ok(Next::Stop(Some(answer)));
        }
    }
    Ok(Next::Rule)
}

/// A sample as an address, as HAProxy casts it (`SMP_T_ADDR`): an address, a string that
/// reads as one, an integer as an IPv4 address.
fn address(sample: sample::Sample<'_>) -> Option<IpAddr> {
    match sample {
        sample::Sample::Ip(ip) => Some(ip),
        sample::Sample::Str(text) => text.trim_end_matches('\0').parse().ok(),
        sample::Sample::Int(n) => Some(IpAddr::V4(Ipv4Addr::from(n as u32))),
        _ => None,
    }
}

/// Runs `add-acl`, `del-acl`, `set-map` or `del-map` on its file, its key (and value)
/// rendered where the rule runs; a file no map or ACL uses is left alone, as HAProxy's.
fn edit_patterns(p: &PatternEdit, ctx: &Context<'_>, facts: &Facts<'_>) {
    let Some(file) = p.file.get() else {
        return;
    };
    let key = render(&p.key, ctx, facts);
    match &p.edit {
        Edit::Add => file.add_if_missing(&key),
        Edit::Set(value) => file.set_or_add(&key, &render(value, ctx, facts)),
        Edit::Delete => file.delete_key(&key),
    }
}

/// HAProxy's rewrites fail when the message no longer fits its buffer in HAProxy's
/// internal form (HTX): measured against HAProxy 2.6.12, a head's [`htx_size`] may reach
/// `HTX_ROOM` bytes, not one more.
fn rewritten(head: &Head) -> Result<(), RewriteFailed> {
    fits(htx_size(head))
}

/// Whether a head of [`htx_size`] `size` fits HAProxy's buffer (see [`rewritten`]).
fn fits(size: usize) -> Result<(), RewriteFailed> {
    const HTX_ROOM: usize = super::BUFSIZE - 45;
    match size <= HTX_ROOM {
        true => Ok(()),
        false => Err(RewriteFailed),
    }
}

/// Puts `new` in place of `old` (a part of `head`) if the head then still fits its buffer
/// ([`rewritten`]); else `old` stays, as HAProxy's HTX leaves a block it cannot grow.
fn replace_if_fits(head_size: usize, old: &mut String, new: String) -> Result<(), RewriteFailed> {
    fits(head_size - old.len() + new.len())?;
    *old = new;
    Ok(())
}

/// A head's size in HAProxy's HTX: its start line (a 24-byte descriptor with its three
/// parts), its headers (names and values) and the end of headers, each a block with 8
/// bytes of index.
pub(super) fn htx_size(head: &Head) -> usize {
    const BLOCK: usize = 8;
    let start_line = BLOCK + 24 + head.first.iter().map(String::len).sum::<usize>();
    let headers = head.headers.iter().map(|(n, v)| BLOCK + n.len() + v.len());
    start_line + headers.sum::<usize>() + BLOCK
}

/// Runs a variable action where `ctx` is (`facts`: what a `set-var-fmt` renders with,
/// which only HTTP rules have). An expression without a value leaves the variable as it
/// was, as HAProxy's `set-var`.
fn set_var(rule: &VarRule, ctx: &Context<'_>, facts: Option<&Facts<'_>>) {
    match &rule.action {
        VarAction::Set { name, expr } => {
            if let Some(value) = sample::fetch_last(expr, ctx) {
                vars::set(name, value, rule.conditions);
            }
        }
        VarAction::SetFormat { name, format } => {
            if let Some(facts) = facts {
                let text = render(format, ctx, facts);
                vars::set_format(name, text, rule.conditions);
            }
        }
        VarAction::Unset { name } => vars::unset(name),
    }
}

/// Runs a TCP rule's variable action where `ctx` is: a `set-var-fmt` renders with what the
/// connection knows then (its addresses, proxies, `server` once one answers, the payload and
/// variables through `%[...]`; the date is the rule's).
fn set_tcp_var(rule: &VarRule, ctx: &Context<'_>, server: Option<&str>) {
    let VarAction::SetFormat { name, format } = &rule.action else {
        return set_var(rule, ctx, None);
    };
    vars::set_format(name, render_at_accept(format, ctx, server), rule.conditions);
}

/// A TCP rule's value where `ctx` is: what the connection knows then (its addresses,
/// proxies, `server` once one answers, the payload and variables through `%[...]`; the
/// date is the rule's).
pub fn render_at_accept(format: &LogFormat, ctx: &Context<'_>, server: Option<&str>) -> String {
    if let Some(text) = format.literal() {
        return text.to_string();
    }
    let fe = ctx.frontend;
    let mut entry = Entry::at_accept(ctx.src, ctx.dst, &fe.name, SystemTime::now());
    entry.backend = ctx.backend.map_or(fe.name.as_str(), |b| b.name.as_str());
    entry.server = server.unwrap_or("<NOSRV>");
    entry.samples = Some(ctx);
    entry.tls = ctx.tls;
    let mut out = String::new();
    format.render(&entry, &mut out);
    out
}

/// `set-method|path|query|uri`: that part of the request line becomes `value`.
fn set_part(head: &mut Head, part: &Part, value: String) -> Result<(), RewriteFailed> {
    let size = htx_size(head);
    let uri = &head.first[1];
    let (before_query, query) = match uri.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (uri.as_str(), None),
    };
    let new_uri = match part {
        Part::Method => return replace_if_fits(size, &mut head.first[0], value),
        Part::Uri => value,
        Part::Path => {
            // An absolute URI keeps its scheme and authority.
            let prefix = &before_query[..before_query.len() - sample::path_of(uri).len()];
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{prefix}{value}{query}")
        }
        Part::Query => match value.strip_prefix('?').unwrap_or(&value) {
            "" => before_query.to_string(),
            q => format!("{before_query}?{q}"),
        },
        Part::Header(_) | Part::Value(_) => return Ok(()),
    };
    replace_if_fits(size, &mut head.first[1], new_uri)
}

/// A rewrite HAProxy fails: its `exp_replace` could not expand the replacement (it ends
/// inside an escape, or its result would not fit a buffer). Counted in `wrew`; in strict
/// mode (HAProxy's default; `strict-mode off` until the rule list ends or `strict-mode on`)
/// the message then ends with a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RewriteFailed;

/// `replace-*`: where `re` matches, the part becomes `with` with `\N` replaced by group N.
/// A failed expansion, or a result that no longer fits the buffer, leaves the part (the
/// header value) as it was; values replaced before it stay, as in HAProxy.
fn replace_part(head: &mut Head, part: &Part, re: &Regex, with: &str) -> Result<(), RewriteFailed> {
    match part {
        Part::Path => {
            let path = sample::path_of(&head.first[1]).to_string();
            // As HAProxy: an empty path is not matched.
            if path.is_empty() {
                return Ok(());
            }
            if let Some(new) = expand(re, &path, with)? {
                set_part(head, &Part::Path, new)?;
            }
        }
        Part::Uri => {
            if let Some(new) = expand(re, &head.first[1], with)? {
                replace_if_fits(htx_size(head), &mut head.first[1], new)?;
            }
        }
        Part::Header(name) | Part::Value(name) => {
            let split = matches!(part, Part::Value(_));
            let mut size = htx_size(head);
            for (_, v) in head
                .headers
                .iter_mut()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                let new = if split {
                    // As HAProxy: a replaced value loses the blanks before it, the others
                    // stay as they were.
                    let items = v.split(',').map(|item| {
                        let trimmed = item.trim_matches([' ', '\t']);
                        Ok(expand(re, trimmed, with)?.unwrap_or_else(|| item.to_string()))
                    });
                    items.collect::<Result<Vec<_>, RewriteFailed>>()?.join(",")
                } else {
                    match expand(re, v, with)? {
                        Some(new) => new,
                        None => continue,
                    }
                };
                let grown = new.len() as isize - v.len() as isize;
                replace_if_fits(size, v, new)?;
                size = size.saturating_add_signed(grown);
            }
        }
        Part::Method | Part::Query => {}
    }
    Ok(())
}

/// When `re` matches `text`, `with` through HAProxy's `exp_replace` (`\N` group N, empty
/// when it took no part; `\xHH` a byte; `\c` c), on the bytes they carry; None when it does
/// not match. Fails as `exp_replace` fails: `with` ends inside an escape, or the result
/// would not fit HAProxy's buffer (a trash chunk of `tune.bufsize`).
fn expand(re: &Regex, text: &str, with: &str) -> Result<Option<String>, RewriteFailed> {
    let subject = crate::bytestr::to_bytes(text);
    let Some(groups) = re.captures(&subject, false) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(subject.len() + with.len());
    pcre::expand(&crate::bytestr::to_bytes(with), &subject, &groups, &mut out)
        .map_err(|_| RewriteFailed)?;
    if out.len() >= super::BUFSIZE {
        return Err(RewriteFailed);
    }
    Ok(Some(crate::bytestr::from_vec(out)))
}

/// HAProxy's `fail_rewrite`: `wrew` of the frontend, of the backend once the request has
/// one and, for a response, of its server; in strict mode also `eint`, counted by the
/// internal-error path it takes then ([`failed_rewrite`]).
fn count_failed_rewrite(ctx: &Context<'_>, facts: &Facts<'_>, strict: bool) {
    let server = facts.answered.map(|a| &a.server.counters);
    let backend = ctx.backend.map(|b| &b.counters);
    for counters in [Some(&ctx.frontend.counters), backend, server]
        .into_iter()
        .flatten()
    {
        counters.failed_rewrites.fetch_add(1, Relaxed);
        if strict && !ON_ERROR_REPLY.get() {
            counters.internal_errors.fetch_add(1, Relaxed);
        }
    }
}

thread_local! {
    /// Whether the rules run on the 500 that replaced a message after a failed rewrite
    /// ([`error_after_rules`]): the request's internal error is counted already.
    static ON_ERROR_REPLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A rewrite failed in strict mode ([`count_failed_rewrite`]): the message ends with the
/// proxy's 500 (`PR--`, `PH--` for a response), closing.
fn failed_rewrite(proxy: &Proxy, ctx: &Context<'_>, facts: &Facts<'_>, response: bool) -> Local {
    let asker = ctx.request.map(Asker::of).unwrap_or_default();
    let page = rendered_error(&[proxy, &ctx.frontend.conf], 500, ctx, facts)
        .unwrap_or_else(|| error_reply(proxy, 500));
    let (bytes, _) = page.write(false, asker);
    Local {
        status: 500,
        bytes,
        logged_size: page.logged_size(asker),
        flags: if response { "PH--" } else { "PR--" },
        close: true,
        delay: None,
        denied: false,
        intercepted: false,
        logged: true,
        close_counted: false,
        internal_error: true,
        error_counted: false,
        abort: None,
    }
}

fn with_head<'a>(base: Context<'a>, head: &'a Head, response: bool) -> Context<'a> {
    if response {
        Context {
            response: Some(head),
            ..base
        }
    } else {
        Context {
            request: Some(head),
            ..base
        }
    }
}

/// The log facts a rule's value may show beyond its sample [`Context`]: what HAProxy's
/// stream knows where the rule runs, given by the request loop.
#[derive(Debug)]
pub struct Facts<'a> {
    /// When the request began, its wait for the head included (`%t`, `%Ts` ...).
    pub started: Instant,
    /// When its first byte and its complete head came (`%Ti`, `%tr`, `%Tq` ...): measured
    /// when a value of the frontend or of its backends shows timers.
    pub arrival: Arrival,
    /// The request line as the client sent it (`%r`, `%HU` ...), when known before the
    /// rules rewrite it; else it is read from the request as it is then.
    pub line: Option<Cow<'a, str>>,
    /// `%rt`: the request's number (every request takes one, as every HAProxy stream).
    pub number: u64,
    /// The captured request headers (`%hr`), when the frontend logs.
    pub req_captures: Option<&'a [Option<String>]>,
    /// Known once the server answered (`http-response` rules).
    pub answered: Option<Answered<'a>>,
    /// `bind ... ssl`: the client connection's TLS (`ssl_fc` ...); None in clear.
    pub tls: Option<&'a super::tls::ClientTls>,
    /// `%ID`: the request's unique id once it was made (after all its request rules, see
    /// `HttpFacts::unique_id_for`); empty in the request rules' own values, as in HAProxy.
    pub unique_id: Option<&'a str>,
    /// All the request rules ran: HAProxy has made the unique id by then, even when
    /// nothing but a value shows it (see [`render`]).
    pub rules_done: bool,
    /// What the request's body already received weighs in HAProxy's internal form (see
    /// [`super::sample::Context::request_body`]).
    pub request_body: u64,
    /// Where the rules leave what the request loop applies after them (none: nothing
    /// applies them, as for hapx's own replies).
    pub effects: Option<&'a Effects>,
}

/// What the values of `http-response` rules show more than those of request rules.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The request, as the server got it.
    pub request: &'a Head,
    pub server: &'a Server,
    /// The server connection: its addresses (`%si`, `%bi` ...) are read only for a value
    /// that shows them.
    pub conn: &'a TcpStream,
    pub timers: Timers,
    pub unique_id: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// A request's facts once its head arrived: `line` the request line if the loop built
    /// it (empty if not), `log` the frontend's log facts if it gathers them.
    pub fn request(
        started: Instant,
        arrival: Arrival,
        line: &'a str,
        log: Option<&'a HttpFacts>,
        number: u64,
    ) -> Self {
        let log = log.filter(|l| l.parsed);
        Facts {
            started,
            arrival,
            line: (!line.is_empty()).then_some(Cow::Borrowed(line)),
            number,
            req_captures: log.map(|l| l.req_captures.as_slice()),
            answered: None,
            tls: None,
            unique_id: log.and_then(|l| l.unique_id.as_deref()),
            rules_done: false,
            request_body: 0,
            effects: None,
        }
    }

    /// A response's facts: `server` answered `head` on `conn` after `phases`, the
    /// milliseconds the request then took to be taken (-1 or 0), queued, connected and
    /// answered (-1: not reached), as [`Timers::after_phases`] reads them.
    pub fn response(
        request: Facts<'a>,
        head: &'a Head,
        server: &'a Server,
        conn: &'a TcpStream,
        phases: [i64; 4],
        log: Option<&'a HttpFacts>,
    ) -> Self {
        Facts {
            answered: Some(Answered {
                request: head,
                server,
                conn,
                // As in HAProxy, the end of the request is not known yet (`%Tt` is 0).
                timers: Timers::after_phases(request.arrival, phases, 0),
                unique_id: log.and_then(|l| l.unique_id.as_deref()),
            }),
            ..request
        }
    }

    /// The request line a value shows: the one kept, else the request's as it is now.
    fn line<'b>(&'b self, ctx: &Context<'_>, built: &'b mut String) -> &'b str {
        if let Some(line) = &self.line {
            return line;
        }
        let head = self.answered.map(|a| a.request).or(ctx.request);
        *built = head.map(request_line).unwrap_or_default();
        built
    }

    /// Keeps the request line as it is now, if `proxy`'s values show it and the loop did
    /// not give it.
    fn keep_line(&mut self, proxy: &Proxy, head: &Head) {
        if self.line.is_none() && proxy.rules.values_read_line {
            self.line = Some(Cow::Owned(request_line(head)));
        }
    }

    /// The log entry of the request where `ctx` is, for a value rendering `format`.
    fn entry<'b>(&'b self, format: &LogFormat, ctx: &'b Context<'b>, line: &'b str) -> Entry<'b> {
        let fe = ctx.frontend;
        let now = SystemTime::now();
        let date = now.checked_sub(self.started.elapsed()).unwrap_or(now);
        let number = self.number;
        let answered = self.answered.as_ref();
        // Two system calls: only for a value that shows them, or may (a unique id made now).
        let addrs = answered
            .filter(|_| format.uses_server_addrs() || format.uses_unique_id())
            .map(|a| (a.conn.peer_addr().ok(), a.conn.local_addr().ok()));
        // Known with the response: the server's, or hapx's own reply in the
        // `http-after-response` rules.
        let status = ctx.response.and_then(|r| r.first[1].parse().ok());
        Entry {
            client: ctx.src,
            frontend_addr: ctx.dst,
            frontend: &fe.name,
            backend: ctx.backend.map_or(fe.name.as_str(), |b| b.name.as_str()),
            server: answered.map_or("<NOSRV>", |a| a.server.name.as_str()),
            server_addr: addrs.and_then(|a| a.0),
            source_addr: addrs.and_then(|a| a.1),
            accept_date: date,
            request_date: self.arrival.first_byte_date(date),
            // Before the server answered, HAProxy knows only the idle time: the request's
            // own (`%TR`, `%Tq`) is set once its rules ran.
            timers: answered.map_or(
                Timers {
                    idle: self.arrival.idle_ms(),
                    ..Timers::default()
                },
                |a| a.timers,
            ),
            status,
            bytes_out: 0,
            bytes_in: 0,
            term: "----",
            counts: Counts {
                process: ctx.state.cur_conns.load(Relaxed),
                frontend: fe.counters.cur.load(Relaxed),
                backend: answered
                    .and(ctx.backend)
                    .map_or(0, |b| b.counters.cur.load(Relaxed)),
                server: answered.map_or(0, |a| a.server.counters.cur.load(Relaxed)),
                ..Counts::default()
            },
            request: line,
            req_captures: self.req_captures,
            resp_captures: None,
            unique_id: answered.and_then(|a| a.unique_id).or(self.unique_id),
            request_counter: number,
            log_counter: 0,
            hostname: log::cached_hostname(),
            pid: std::process::id(),
            samples: Some(ctx),
            partial: format.uses_partial_marks() && logs_no_session_end(fe),
            client_cookie: None,
            server_cookie: None,
            tls: ctx.tls,
        }
    }
}

/// Whether `fe` shows no end of sessions, as HAProxy's `to_log` without `LW_BYTES`: with
/// `option logasap`, or when none of its formats (its log line's, unique id's, rule values')
/// shows a variable of the end ([`LogFormat::uses_session_end`]). HAProxy then marks
/// `%Ta %Tt %Tu %B` with `+` in every value rendered for its requests, a backend's too.
fn logs_no_session_end(fe: &Frontend) -> bool {
    let log = &fe.conf.log;
    let c = &log.compiled;
    let formats = [&c.line, &c.sd, &c.error, &c.unique_id];
    log.logasap
        || !(fe.conf.rules.values_use_session_end
            || formats
                .iter()
                .filter_map(|f| f.as_deref())
                .any(LogFormat::uses_session_end))
}

/// `METHOD URI VERSION` of `head`.
fn request_line(head: &Head) -> String {
    format!("{} {} {}", head.first[0], head.first[1], head.first[2])
}

/// A value's text for the request where `ctx` is: a literal one is copied, another rendered
/// from the log facts.
fn render(f: &LogFormat, ctx: &Context<'_>, facts: &Facts<'_>) -> String {
    if let Some(text) = f.literal() {
        return text.to_string();
    }
    let mut built = String::new();
    let line = facts.line(ctx, &mut built);
    let mut entry = facts.entry(f, ctx, line);
    // Once the request rules ran (and so once the server answered), HAProxy has made the
    // unique id (`unique-id-format`) even if neither the log nor a header wants it, which
    // is when hapx makes it only now.
    let id;
    let made = facts.answered.is_some() || facts.rules_done;
    if made && entry.unique_id.is_none() && f.uses_unique_id() {
        id = ctx.frontend.logger.unique_id(&entry);
        entry.unique_id = id.as_deref();
    }
    let mut out = String::new();
    f.render(&entry, &mut out);
    out
}

/// The response of a final action.
/// How long `http-request tarpit` holds a request in `proxy`: its `timeout tarpit`, else
/// (HAProxy copies it at load time, only into proxies that can be backends) its `timeout
/// connect`; a frontend without `timeout tarpit` answers at once.
fn tarpit_delay(proxy: &Proxy) -> Duration {
    let t = &proxy.timeouts;
    let fallback = t.connect.filter(|_| proxy.kind.is_backend());
    t.tarpit.or(fallback).unwrap_or_default()
}

fn answer(
    proxy: &Proxy,
    action: &HttpAction,
    ctx: &Context<'_>,
    head: &Head,
    response: bool,
    keep: bool,
    facts: &Facts<'_>,
) -> Local {
    // A response rule answers the request that is still known (its method at least).
    let asker = match response {
        false => Asker::of(head),
        true => ctx.request.map(Asker::of).unwrap_or_default(),
    };
    let local_kept = |status: u16, page: &Page, flags: &'static str, keep: bool| {
        let (bytes, kept) = page.write(keep, asker);
        Local {
            status,
            bytes,
            logged_size: page.logged_size(asker),
            flags,
            close: !kept,
            delay: None,
            denied: false,
            intercepted: false,
            logged: true,
            close_counted: false,
            internal_error: false,
            error_counted: false,
            abort: None,
        }
    };
    let local =
        |status: u16, page: &Page, flags: &'static str| local_kept(status, page, flags, keep);
    // A request's `deny` or `tarpit` counts an HTTP error before its page is rendered.
    if !response && matches!(action, HttpAction::Deny(_) | HttpAction::Tarpit(_)) {
        if let Some(c) = ctx.stick {
            c.http_error();
        }
    }
    match action {
        HttpAction::Deny(r) => Local {
            denied: true,
            error_counted: true,
            ..local(
                r.status,
                &reply_page(proxy, r, ctx, facts),
                if response { "PH--" } else { "PR--" },
            )
        },
        HttpAction::Tarpit(r) => Local {
            denied: true,
            error_counted: true,
            delay: Some(tarpit_delay(proxy)),
            ..local(r.status, &reply_page(proxy, r, ctx, facts), "PT--")
        },
        HttpAction::Auth(realm) => {
            let realm = realm.as_deref().unwrap_or(&proxy.name);
            let realm = format!("Basic realm=\"{realm}\"");
            let authenticate = |page: Page| page.with_header("www-authenticate", &realm);
            // A proxy's own `errorfile` for 401 goes as it is.
            let page = rendered_error(&[proxy, &ctx.frontend.conf], 401, ctx, facts)
                .map(|page| Cow::Owned(authenticate(page.into_owned())))
                .unwrap_or_else(|| match proxy.errorfiles.get(&401) {
                    Some(page) => Cow::Borrowed(page),
                    None => Cow::Owned(authenticate(message(401))),
                });
            Local {
                intercepted: true,
                ..local(401, &page, "LR--")
            }
        }
        HttpAction::Redirect(r) => {
            let location = redirect_location(r, ctx, head, facts);
            // HAProxy closes after redirecting a request with a body, even a drained one.
            let has_body = !response && head.framing != Framing::None;
            let keep = keep && !has_body;
            Local {
                close_counted: has_body,
                intercepted: !response,
                ..local_kept(
                    r.code,
                    &redirect_reply(r.code, &location, r.cookie.as_deref()),
                    "LR--",
                    keep,
                )
            }
        }
        HttpAction::Return(r) => Local {
            intercepted: !response,
            error_counted: true,
            ..local(r.status, &reply_page(proxy, r, ctx, facts), "LR--")
        },
        // Header actions and `allow` never get here.
        _ => local(500, &error_reply(proxy, 500), "PR--"),
    }
}

/// A `deny`, `tarpit` or `return` answer: its page if it has one (loaded with it), the
/// proxy's error page if it asks for it, else its own payload (`lf-string` rendered, an
/// empty body without one) with its `hdr` headers first, values as rendered.
fn reply_page<'a>(
    proxy: &'a Proxy,
    r: &'a crate::config::rules::Reply,
    ctx: &'a Context<'_>,
    facts: &Facts<'_>,
) -> Cow<'a, Page> {
    if let Some(page) = &r.page {
        return Cow::Borrowed(page);
    }
    if r.error_page {
        return rendered_error(&[proxy, &ctx.frontend.conf], r.status, ctx, facts)
            .unwrap_or_else(|| error_reply(proxy, r.status));
    }
    // Values are byte strings (see `bytestr`): the reply carries their bytes.
    let rendered = r
        .lf_body
        .as_ref()
        .map(|f| crate::bytestr::to_bytes(&render(f, ctx, facts)).into_owned());
    let body = rendered.as_deref().or(r.body.as_deref());
    let values: Vec<String> = r
        .headers
        .iter()
        .map(|(_, v)| render(v, ctx, facts))
        .collect();
    // HAProxy's `http_reply_to_htx` leaves out a header whose value renders empty.
    let headers: Vec<(&str, &str)> = (r.headers.iter().zip(&values))
        .filter(|(_, v)| !v.is_empty())
        .map(|((n, _), v)| (n.as_str(), v.as_str()))
        .collect();
    Cow::Owned(return_reply(
        r.status,
        &headers,
        r.content_type.as_deref(),
        body,
    ))
}

/// The `http-error` reply rendered for `status` ([`Proxy::error_replies`], with `ctx` and
/// `facts` where the request is), when the first of `proxies` with a page for `status` (the
/// backend's before the frontend's, as HAProxy's `http_error_message`) has one rendered
/// per request; None when that page is a fixed one, or HAProxy's own.
pub fn rendered_error<'a>(
    proxies: &[&'a Proxy],
    status: u16,
    ctx: &'a Context<'_>,
    facts: &Facts<'_>,
) -> Option<Cow<'a, Page>> {
    let proxy = proxies
        .iter()
        .find(|p| p.errorfiles.contains_key(&status) || p.error_replies.contains_key(&status))?;
    // An `http-error status N default-errorfiles` is the fixed page.
    let reply = (proxy.error_replies.get(&status)).filter(|r| !r.error_page || r.page.is_some())?;
    Some(reply_page(proxy, reply, ctx, facts))
}

/// Where a redirect sends the client.
fn redirect_location(r: &Redirect, ctx: &Context<'_>, head: &Head, facts: &Facts<'_>) -> String {
    let uri = head.first[1].as_str();
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let mut rest = path.to_string();
    if r.append_slash && !rest.ends_with('/') {
        rest.push('/');
    }
    if let (Some(q), false) = (query, r.drop_query) {
        rest.push('?');
        rest.push_str(q);
    }
    match &r.to {
        RedirectTo::Location(f) => render(f, ctx, facts),
        RedirectTo::Prefix(f) => {
            let prefix = render(f, ctx, facts);
            // "prefix /" keeps the URI as it is.
            let prefix = if prefix == "/" { "" } else { prefix.as_str() };
            format!("{prefix}{rest}")
        }
        RedirectTo::Scheme(f) => {
            let host = head.header("host").unwrap_or_default();
            format!("{}://{host}{rest}", render(f, ctx, facts))
        }
    }
}

/// Whether a `location` redirect's format renders nothing (`ignore-empty` then skips the
/// rule; HAProxy looks at no other kind of redirect for it).
fn renders_no_location(r: &Redirect, ctx: &Context<'_>, facts: &Facts<'_>) -> bool {
    matches!(&r.to, RedirectTo::Location(f) if render(f, ctx, facts).is_empty())
}

/// HAProxy's redirect response: no body; `cache-control: no-cache` for temporary ones,
/// then the rule's `set-cookie`, if any.
fn redirect_reply(code: u16, location: &str, cookie: Option<&str>) -> Page {
    let mut headers = vec![("content-length", "0"), ("location", location)];
    if !matches!(code, 301 | 308) {
        headers.push(("cache-control", "no-cache"));
    }
    if let Some(cookie) = cookie {
        headers.push(("set-cookie", cookie));
    }
    let line = format!("HTTP/1.1 {code} {}", reason(code));
    Page::built(&line, &headers, Vec::new(), false)
}

/// A reply the proxy builds: `headers` before its own, as HAProxy.
pub fn return_reply(
    status: u16,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Page {
    let body = body.unwrap_or_default().to_vec();
    let length = body.len().to_string();
    let mut all = headers.to_vec();
    all.push(("content-length", &length));
    if let Some(t) = content_type {
        all.push(("content-type", t));
    }
    Page::built(
        &format!("HTTP/1.1 {status} {}", reason(status)),
        &all,
        body,
        false,
    )
}

/// What of the request shapes how HAProxy's HTTP/1 layer writes a local reply to it: a
/// `HEAD` request gets the head only (its `content-length` as for `GET`), and an HTTP/1.0
/// client a connection kept open is told so (`connection: keep-alive`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asker {
    pub head_only: bool,
    pub http10: bool,
}

impl Asker {
    pub fn of(request: &Head) -> Asker {
        Asker {
            head_only: request.first[0] == "HEAD",
            http10: request.first[2] == "HTTP/1.0",
        }
    }

    /// `page` as it goes to this client: without its body for `HEAD`.
    pub fn cut(self, mut page: Vec<u8>) -> Vec<u8> {
        if self.head_only {
            if let Some(end) = super::http::find_head_end(&page) {
                page.truncate(end);
            }
        }
        page
    }
}

/// The proxy's `errorfile` for `status`, else HAProxy's message for it.
pub fn error_reply(proxy: &Proxy, status: u16) -> Cow<'_, Page> {
    match proxy.errorfiles.get(&status) {
        Some(page) => Cow::Borrowed(page),
        None => Cow::Owned(message(status)),
    }
}

/// HAProxy 2.6's own message for `status` (its 500 for a status it has none for); 400 and
/// 408 always close the connection.
pub fn message(status: u16) -> Page {
    let (status, (reason, text)) = match message_text(status) {
        Some(t) => (status, t),
        None => (
            500,
            (
                "Internal Server Error",
                "An internal server error occurred.",
            ),
        ),
    };
    let body = format!("<html><body><h1>{status} {reason}</h1>\n{text}\n</body></html>\n");
    let length = body.len().to_string();
    let headers = [
        ("content-length", length.as_str()),
        ("cache-control", "no-cache"),
        ("content-type", "text/html"),
    ];
    let line = format!("HTTP/1.1 {status} {reason}");
    Page::built(
        &line,
        &headers,
        body.into_bytes(),
        matches!(status, 400 | 408),
    )
}

/// The reason phrase and text of HAProxy's message for `status`.
fn message_text(status: u16) -> Option<(&'static str, &'static str)> {
    Some(match status {
        200 => ("OK", "Service ready."),
        400 => ("Bad request", "Your browser sent an invalid request."),
        401 => (
            "Unauthorized",
            "You need a valid user and password to access this content.",
        ),
        403 => ("Forbidden", "Request forbidden by administrative rules."),
        404 => ("Not Found", "The resource could not be found."),
        405 => (
            "Method Not Allowed",
            "A request was made of a resource using a request method not supported by that resource",
        ),
        407 => (
            "Unauthorized",
            "You need a valid user and password to access this content.",
        ),
        408 => (
            "Request Time-out",
            "Your browser didn't send a complete request in time.",
        ),
        410 => (
            "Gone",
            "The resource is no longer available and will not be available again.",
        ),
        413 => (
            "Payload Too Large",
            "The request entity exceeds the maximum allowed.",
        ),
        421 => (
            "Misdirected Request",
            "Request sent to a non-authoritative server.",
        ),
        422 => (
            "Unprocessable Content",
            "The server cannot process the contained instructions.",
        ),
        425 => ("Too Early", "Your browser sent early data."),
        429 => (
            "Too Many Requests",
            "You have sent too many requests in a given amount of time.",
        ),
        500 => (
            "Internal Server Error",
            "An internal server error occurred.",
        ),
        501 => (
            "Not Implemented",
            "The server does not support the functionality required to fulfill the request.",
        ),
        502 => (
            "Bad Gateway",
            "The server returned an invalid or incomplete response.",
        ),
        503 => (
            "Service Unavailable",
            "No server is available to handle this request.",
        ),
        504 => ("Gateway Time-out", "The server didn't respond in time."),
        _ => return None,
    })
}

/// The reason phrase HAProxy gives a status in responses it builds (`return`, redirects,
/// `set-status`): its `http_get_reason()` table, else the status class.
pub fn reason(status: u16) -> &'static str {
    named_reason(status).unwrap_or(match status {
        100..=199 => "Informational",
        200..=299 => "Success",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Other",
    })
}

fn named_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        210 => "Content Different",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        310 => "Too many Redirects",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Time-out",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested range unsatisfiable",
        417 => "Expectation failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Method failure",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        449 => "Retry With",
        450 => "Blocked by Windows Parental Controls",
        451 => "Unavailable For Legal Reasons",
        456 => "Unrecoverable Error",
        499 => "client has closed connection",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway or Proxy Error",
        503 => "Service Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version not supported",
        506 => "Variant also negotiate",
        507 => "Insufficient storage",
        508 => "Loop detected",
        509 => "Bandwidth Limit Exceeded",
        510 => "Not extended",
        511 => "Network authentication required",
        520 => "Web server is returning an unknown error",
        _ => return None,
    })
}

/// Where the request rules of an HTTP request lead.
#[derive(Debug)]
pub enum Routed {
    /// To this backend (none: no backend, 503).
    Backend(Option<Arc<Backend>>),
    /// Answered by the proxy: by the frontend's rules, or by the backend's (HAProxy counts
    /// that answer in the backend too: its session, request, status, denial and bytes).
    Answered(Local, AnsweredBy),
    /// `tcp-request content reject`, `http-request reject|silent-drop`: the connection
    /// closes without an answer, as [`Abort`] says. With the backend whose rules rejected
    /// it (HAProxy's stream had entered it: it counts a session, a request and the bytes
    /// read there), none for the frontend's.
    Rejected(Option<Arc<Backend>>, Abort),
    /// The rules chose this backend, whose rules may check passwords the loop has not
    /// hashed (it hashes the frontend's lists only): it hashes them off the thread, then
    /// resumes at the backend ([`route_backend`]) with the request line the frontend's
    /// values kept, if any.
    Precheck(Arc<Backend>, Option<String>),
}

/// Whose rules answered a request, for the counters.
#[derive(Debug)]
pub enum AnsweredBy {
    /// The frontend's; with the backend of a `listen` (the stream's backend from its
    /// start in HAProxy, which counts the answer's bytes in it).
    Frontend(Option<Arc<Backend>>),
    /// This backend's, which HAProxy counts as one of its sessions and requests.
    Backend(Arc<Backend>),
}

impl AnsweredBy {
    /// The backend the answer's bytes count in.
    pub fn backend(&self) -> Option<&Arc<Backend>> {
        match self {
            AnsweredBy::Frontend(own) => own.as_ref(),
            AnsweredBy::Backend(b) => Some(b),
        }
    }
}

/// [`AnsweredBy::Frontend`] for `fe`'s own answers.
fn by_frontend(fe: &Frontend) -> AnsweredBy {
    let own = fe
        .backend
        .as_ref()
        .filter(|b| other_backend(fe, Some(b)).is_none());
    AnsweredBy::Frontend(own.cloned())
}

/// Runs the request side of an HTTP frontend's rules on `head`: `tcp-request content`,
/// `monitor-uri`, the frontend's `http-request` rules, the backend choice and the chosen
/// backend's `http-request` rules.
pub fn route_request(
    state: &State,
    fe: &Frontend,
    head: &mut Head,
    src: SocketAddr,
    dst: SocketAddr,
    keep: bool,
    mut facts: Facts<'_>,
) -> Routed {
    let counters = stream_counters(state);
    // The last request's stream trackers end; this one's start with its content rules.
    if let Some(c) = &counters {
        c.end_stream();
    }
    let base = Context {
        tls: facts.tls,
        request_body: facts.request_body,
        stick: counters.as_deref(),
        ..Context::new(state, fe, src, dst)
    };
    let rules = &fe.conf.rules;
    if !rules.tcp_content.is_empty() {
        let ctx = Context {
            request: Some(head),
            ..base
        };
        if let Some(abort) = content_ends(&ctx, rules, facts.effects) {
            return Routed::Rejected(None, abort);
        }
    }
    // The HTTP rules see the address a content rule's `set-src` gave.
    let base = Context {
        src: facts.effects.map_or(base.src, |e| e.client(base.src)),
        ..base
    };
    // A request the frontend's content rules let in counts in its requests (HAProxy's
    // `cum_req`, in `http_wait_for_request`, after them), and in its tracked entries (those
    // rules' trackings too): before its HTTP rules, whose fetches see it.
    fe.counters.request_at(super::meter::ms_at(facts.started));
    if let Some(c) = &counters {
        c.count_request();
    }
    if rules.monitor_uri.is_some() {
        let ctx = Context {
            request: Some(head),
            ..base
        };
        if let Some(local) = monitor(&ctx, head, keep, &facts) {
            return Routed::Answered(after_local(base, None, local, &facts), by_frontend(fe));
        }
    }
    facts.keep_line(&fe.conf, head);
    if let Some(answered) = frontend_http_rules(fe, base, head, keep, &facts) {
        return answered;
    }
    // The backend choice and the backend's rules see the address `set-src` gave.
    let base = Context {
        src: facts.effects.map_or(base.src, |e| e.client(base.src)),
        ..base
    };
    let backend = choose_backend(
        &Context {
            request: Some(head),
            ..base
        },
        Some(&facts),
    );
    if let Some(b) = backend.as_ref().filter(|b| b.conf.mode != Mode::Http) {
        // Only a dynamic rule gets here (the check refuses a static one), or a TCP
        // frontend's kept-alive connection that an HTTP backend turned to HTTP: HAProxy's
        // stream cannot take a TCP backend, and ends without an answer, logged as its
        // internal error.
        return Routed::Answered(incompatible_backend(), AnsweredBy::Backend(b.clone()));
    }
    if let Some(b) = other_backend(fe, backend.as_ref())
        && super::auth::checked_after_choice(b, head)
    {
        return Routed::Precheck(b.clone(), facts.line.take().map(Cow::into_owned));
    }
    backend_rules(base, backend, head, keep, &mut facts, None)
}

/// The frontend's `http-request` rules, then its `redirect` ones: their answer, if one
/// answers the request.
fn frontend_http_rules(
    fe: &Frontend,
    base: Context<'_>,
    head: &mut Head,
    keep: bool,
    facts: &Facts<'_>,
) -> Option<Routed> {
    let rules = &fe.conf.rules;
    let local = http_request(&fe.conf, base, head, keep, facts)
        .or_else(|| run(&fe.conf, &rules.redirects, base, head, false, keep, facts))?;
    if let Some(abort) = local.abort {
        return Some(Routed::Rejected(None, abort));
    }
    if local.intercepted {
        fe.counters.intercepted.fetch_add(1, Relaxed);
    }
    Some(Routed::Answered(
        after_local(base, None, local, facts),
        by_frontend(fe),
    ))
}

/// The stream's stick counters: they only exist with stick tables, so a proxy without any
/// looks nothing up.
fn stream_counters(state: &State) -> Option<Arc<stick::Counters>> {
    (!state.tables.is_empty()).then(stick::current).flatten()
}

/// The first request of a TCP frontend's connection that `backend` (chosen by its TCP
/// rules) turned to HTTP: HAProxy's stream goes on in HTTP, through the frontend's
/// `http-request` and `redirect` rules (its content rules and backend choice made
/// already), then the backend's. It counts in the frontend's requests.
pub fn route_upgraded(
    state: &State,
    fe: &Frontend,
    head: &mut Head,
    (src, dst): (SocketAddr, SocketAddr),
    keep: bool,
    mut facts: Facts<'_>,
    backend: Arc<Backend>,
) -> Routed {
    let counters = stream_counters(state);
    let base = Context {
        tls: facts.tls,
        request_body: facts.request_body,
        stick: counters.as_deref(),
        ..Context::new(state, fe, src, dst)
    };
    fe.counters.request_at(super::meter::ms_at(facts.started));
    // The stream's TCP trackings, and the session's, count it as the request turns HTTP.
    if let Some(c) = &counters {
        c.count_request();
    }
    // The stream is in its backend already: HAProxy marks the frontend's `http-request`
    // trackings as the backend's, which count the request once more with the backend's.
    let tracked_before = counters.as_deref().map(stick::Counters::stream_tracking);
    facts.keep_line(&fe.conf, head);
    // The frontend's answer is the stream's, in its backend already: HAProxy counts it
    // there (a session, a request, its status and denial) and logs it under it.
    match frontend_http_rules(fe, base, head, keep, &facts) {
        Some(Routed::Answered(answer, _)) => {
            return Routed::Answered(answer, AnsweredBy::Backend(backend));
        }
        Some(routed) => return routed,
        None => {}
    }
    let backend = Some(backend);
    backend_rules(base, backend, head, keep, &mut facts, tracked_before)
}

/// Resumes [`route_request`] at `backend` (its [`Routed::Precheck`]): the chosen backend's
/// rules, the frontend's having run; `line` the request line they kept.
#[allow(clippy::too_many_arguments)]
pub fn route_backend(
    state: &State,
    fe: &Frontend,
    head: &mut Head,
    (src, dst): (SocketAddr, SocketAddr),
    keep: bool,
    mut facts: Facts<'_>,
    backend: Arc<Backend>,
    line: Option<String>,
) -> Routed {
    let counters = stream_counters(state);
    let base = Context {
        tls: facts.tls,
        request_body: facts.request_body,
        stick: counters.as_deref(),
        ..Context::new(state, fe, src, dst)
    };
    if let Some(line) = line {
        facts.line = Some(Cow::Owned(line));
    }
    backend_rules(base, Some(backend), head, keep, &mut facts, None)
}

/// The chosen backend's `tcp-request content` and `http-request` rules (none for the
/// frontend's own `listen` section, whose rules ran as the frontend's). The stream slots
/// tracked since `tracked_before` (None: since now) count the request before the backend's
/// `http-request` rules, as HAProxy's `stream_inc_be_http_req_ctr`.
fn backend_rules(
    base: Context<'_>,
    backend: Option<Arc<Backend>>,
    head: &mut Head,
    keep: bool,
    facts: &mut Facts<'_>,
    tracked_before: Option<[bool; 3]>,
) -> Routed {
    let fe = base.frontend;
    if let Some(b) = other_backend(fe, backend.as_ref()) {
        let ctx = Context {
            backend: Some(b),
            ..base
        };
        let b_rules = &b.conf.rules;
        let tracked_before = tracked_before.or_else(|| base.stick.map(|c| c.stream_tracking()));
        if !b_rules.tcp_content.is_empty() {
            let content = Context {
                request: Some(head),
                ..ctx
            };
            if let Some(abort) = content_ends(&content, b_rules, facts.effects) {
                return Routed::Rejected(Some(b.clone()), abort);
            }
        }
        // The backend's HTTP rules see the address its content rules' `set-src` gave.
        let ctx = Context {
            src: facts.effects.map_or(ctx.src, |e| e.client(ctx.src)),
            ..ctx
        };
        // The backend's trackings count the request, which the frontend counted before.
        if let (Some(c), Some(before)) = (base.stick, tracked_before) {
            c.count_request_since(before);
        }
        // After the frontend's rewrites, unlike HAProxy, if only the backend shows it.
        facts.keep_line(&b.conf, head);
        let backends = http_request(&b.conf, ctx, head, keep, facts)
            .or_else(|| run(&b.conf, &b_rules.redirects, ctx, head, false, keep, facts));
        if let Some(local) = backends {
            if let Some(abort) = local.abort {
                return Routed::Rejected(Some(b.clone()), abort);
            }
            let by = AnsweredBy::Backend(b.clone());
            return Routed::Answered(after_local(ctx, Some(b), local, facts), by);
        }
    }
    Routed::Backend(backend)
}

/// Runs the backend's then the frontend's `http-response` rules on `resp`; the answer that
/// replaces it when one denies it.
#[allow(clippy::too_many_arguments)]
pub fn route_response(
    state: &State,
    fe: &Frontend,
    backend: &Backend,
    resp: &mut Head,
    src: SocketAddr,
    dst: SocketAddr,
    keep: bool,
    facts: &Facts<'_>,
) -> Option<Local> {
    let counters = stream_counters(state);
    let base = Context {
        backend: Some(backend),
        tls: facts.tls,
        request_body: facts.request_body,
        stick: counters.as_deref(),
        ..Context::new(state, fe, src, dst)
    };
    let own = backend.name == fe.name && fe.conf.kind.is_backend();
    let refused = match own {
        false => http_response(&backend.conf, base, resp, keep, facts),
        true => None,
    };
    let refused = refused.or_else(|| http_response(&fe.conf, base, resp, keep, facts));
    match refused {
        // `silent-drop` sends nothing for the after-response rules to run on.
        Some(local) if local.abort.is_some() => Some(local),
        Some(local) => Some(after_local(base, Some(backend), local, facts)),
        // A failed rewrite's 500 replaces the response; it goes through the rules once
        // more, as HAProxy's `http_reply_and_close` sends it.
        None => after_response(base, Some(backend), resp, facts)
            .map(|error| error_after_rules(base, Some(backend), error, facts)),
    }
}

/// Whether requests through `fe` to `backend` run any rule at all.
pub fn has_response_rules(fe: &Frontend, backend: &Backend) -> bool {
    let (f, b) = (&fe.conf.rules, &backend.conf.rules);
    !(f.http_response.is_empty()
        && b.http_response.is_empty()
        && f.http_after_response.is_empty()
        && b.http_after_response.is_empty())
}

/// Runs the `http-after-response` rules on `resp`, the response going to the client: the
/// stream's `backend`'s (if it is not the frontend itself), then the frontend's, as HAProxy
/// runs them. They take no final action (`allow` ends a proxy's list); a rewrite they fail
/// ends with the 500 returned.
pub fn after_response(
    base: Context<'_>,
    backend: Option<&Backend>,
    resp: &mut Head,
    facts: &Facts<'_>,
) -> Option<Local> {
    // A reply of the proxy's own starts the response's analysis too.
    vars::response_starts();
    let fe = base.frontend;
    let own = backend.is_some_and(|b| b.name == fe.name && fe.conf.kind.is_backend());
    let proxies = backend.filter(|_| !own).map(|b| &b.conf).into_iter();
    for proxy in proxies.chain([&fe.conf]) {
        let rules = &proxy.rules.http_after_response;
        if !rules.is_empty() {
            let ctx = Context { backend, ..base };
            if let Some(failed) = run(proxy, rules, ctx, resp, true, true, facts) {
                return Some(failed);
            }
        }
    }
    None
}

/// Whether `fe` or `backend` has `http-after-response` rules, which the proxy's own
/// replies go through too.
pub fn has_after_response(fe: &Frontend, backend: Option<&Backend>) -> bool {
    !fe.conf.rules.http_after_response.is_empty()
        || backend.is_some_and(|b| !b.conf.rules.http_after_response.is_empty())
}

/// The proxy's own reply `local` once the `http-after-response` rules ran on it
/// ([`after_response`]); its logged size changes as its head does (HAProxy counts its
/// internal form), its status as `set-status` set it; a rewrite failing on it in strict
/// mode replaces it with the 500.
pub fn after_local(
    base: Context<'_>,
    backend: Option<&Backend>,
    mut local: Local,
    facts: &Facts<'_>,
) -> Local {
    if !has_after_response(base.frontend, backend) {
        return local;
    }
    match after_own_reply(base, backend, &mut local.bytes, facts) {
        Some(AfterReply::Rewritten(status, grown)) => {
            local.status = status;
            local.logged_size = local.logged_size.saturating_add_signed(grown);
        }
        Some(AfterReply::Failed(error)) => {
            // The proxy ended it at the same stage as the reply it replaces (`LR--` or
            // `PR--` become `PR--`), as HAProxy logs it.
            let stage = if local.flags.as_bytes().get(1) == Some(&b'H') {
                "PH--"
            } else {
                "PR--"
            };
            local = Local {
                flags: stage,
                intercepted: local.intercepted,
                denied: local.denied,
                logged: local.logged,
                ..error
            };
        }
        None => {}
    }
    local
}

/// The 500 `error` of a rewrite that failed, once through the `http-after-response` rules
/// (a failure again leaves it as it is: HAProxy's `TX_CONST_REPLY`).
fn error_after_rules(
    base: Context<'_>,
    backend: Option<&Backend>,
    mut error: Local,
    facts: &Facts<'_>,
) -> Local {
    let outer = ON_ERROR_REPLY.replace(true);
    let rewritten = rewrite_reply(base, backend, &mut error.bytes, facts);
    ON_ERROR_REPLY.set(outer);
    if let Some((status, grown, _)) = rewritten {
        error.status = status;
        error.logged_size = error.logged_size.saturating_add_signed(grown);
    }
    error
}

/// What the `http-after-response` rules made of a reply of hapx's own.
enum AfterReply {
    /// Rewritten in place: its status then, and how much its logged size grew.
    Rewritten(u16, i64),
    /// A rewrite failed in strict mode: the reply became this 500, as HAProxy's
    /// `http_reply_and_close` replaces it (the 500 went through the rules too).
    Failed(Local),
}

/// [`after_response`] on the serialized reply `bytes` (rewritten in place, or replaced by
/// the 500 of a failed rewrite): its status then, and how much its logged size grew. None
/// if `bytes` holds no head.
pub fn after_reply(
    base: Context<'_>,
    backend: Option<&Backend>,
    bytes: &mut Vec<u8>,
    facts: &Facts<'_>,
) -> Option<(u16, i64)> {
    let before = reply_logged_size(bytes)?;
    match after_own_reply(base, backend, bytes, facts)? {
        AfterReply::Rewritten(status, grown) => Some((status, grown)),
        AfterReply::Failed(error) => {
            *bytes = error.bytes;
            let after = reply_logged_size(bytes)?;
            Some((error.status, after as i64 - before as i64))
        }
    }
}

/// A serialized reply's size as logged: its head as HAProxy counts it, and the body it
/// carries (none for a `HEAD` request, as its logged size counts none).
fn reply_logged_size(bytes: &[u8]) -> Option<u64> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = reply_head(std::str::from_utf8(&bytes[..end]).ok()?)?;
    Some(head_logged_size(&head) + (bytes.len() - end - 4) as u64)
}

/// [`after_reply`]'s work. A failed rewrite (strict mode) replaces the reply with the 500,
/// which goes through the rules once more, as HAProxy's; a second failure leaves that 500
/// as it is (HAProxy's `TX_CONST_REPLY`).
fn after_own_reply(
    base: Context<'_>,
    backend: Option<&Backend>,
    bytes: &mut Vec<u8>,
    facts: &Facts<'_>,
) -> Option<AfterReply> {
    let (status, grown, failed) = rewrite_reply(base, backend, bytes, facts)?;
    Some(match failed {
        Some(error) => AfterReply::Failed(error_after_rules(base, backend, error, facts)),
        None => AfterReply::Rewritten(status, grown),
    })
}

/// One run of [`after_response`] on the serialized reply `bytes`: its status then, how much
/// its logged size grew, and the 500 of a failed rewrite. `bytes` is rewritten unless one
/// failed.
fn rewrite_reply(
    base: Context<'_>,
    backend: Option<&Backend>,
    bytes: &mut Vec<u8>,
    facts: &Facts<'_>,
) -> Option<(u16, i64, Option<Local>)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let mut head = reply_head(std::str::from_utf8(&bytes[..end]).ok()?)?;
    let before = head_logged_size(&head);
    if let Some(failed) = after_response(base, backend, &mut head, facts) {
        return Some((failed.status, 0, Some(failed)));
    }
    let grown = head_logged_size(&head) as i64 - before as i64;
    let mut out = format!("{} {} {}\r\n", head.first[0], head.first[1], head.first[2]);
    // HAProxy's HTTP/1 layer writes the names in lower case (its HTX message keeps them so).
    for (name, value) in &head.headers {
        let name = name.to_ascii_lowercase();
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut rewritten = out.into_bytes();
    rewritten.extend_from_slice(&bytes[end + 4..]);
    *bytes = rewritten;
    Some((head.first[1].parse().ok()?, grown, None))
}

/// The head of a reply hapx wrote itself (status line and headers, as they are).
fn reply_head(text: &str) -> Option<Head> {
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.splitn(3, ' ');
    let first = [(); 3].map(|()| first.next().unwrap_or_default().to_string());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim_start().to_string()))
        .collect();
    Some(Head {
        first,
        headers,
        framing: Framing::None,
        dropped_length: false,
        conn: Default::default(),
        h2: None,
    })
}

/// A head's size as HAProxy counts it (its internal form: 20 bytes of start line beside its
/// parts, each header's name and value, one byte for the end).
fn head_logged_size(head: &Head) -> u64 {
    let line = 20 + head.first.iter().map(String::len).sum::<usize>();
    let headers: usize = head.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    (line + headers + 1) as u64
}

/// What a TCP-mode connection's rules decided.
#[derive(Debug)]
pub enum TcpRouted {
    /// To this backend, the client's first bytes read already.
    Backend(Option<Arc<Backend>>, Vec<u8>),
    /// By the frontend's rules (None) or by the chosen backend's, where the session then
    /// counts as HAProxy counts it on entering the backend; with the number of bytes the
    /// rules had read of the client (its `req->total`), and how (`reject`, `silent-drop`).
    Rejected(Option<Arc<Backend>>, usize, Layer4End),
}

/// What a TCP stream's content rules asked for its log line (`set-log-level`) and its
/// client address (`set-src`, `set-src-port`), the last rule that ran for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamAsked {
    pub log_level: Option<LogLevel>,
    pub src: Option<IpAddr>,
    pub src_port: Option<u16>,
}

impl StreamAsked {
    /// What the rules that ran asked, over what rules before them did.
    fn take(&mut self, effects: &Effects) {
        self.log_level = effects.log_level.get().or(self.log_level);
        self.src = effects.src.get().or(self.src);
        self.src_port = effects.src_port.get().or(self.src_port);
    }

    /// The client address as the rules left it: `peer` with what `set-src` and
    /// `set-src-port` gave.
    pub fn client(&self, peer: SocketAddr) -> SocketAddr {
        moved_client(peer, self.src, self.src_port)
    }
}

/// Runs a TCP frontend's content rules and backend choice on a new connection; what they
/// asked for the stream's log line and client address goes to `asked`.
pub async fn route_tcp(
    state: &State,
    fe: &Frontend,
    client: &TcpStream,
    (src, dst): (SocketAddr, SocketAddr),
    tls: Option<&super::tls::ClientTls>,
    asked: &mut StreamAsked,
) -> std::io::Result<TcpRouted> {
    let counters = stream_counters(state);
    let mut base = Context {
        tls,
        stick: counters.as_deref(),
        ..Context::new(state, fe, src, dst)
    };
    let mut data = Vec::new();
    if !fe.conf.rules.tcp_content.is_empty() {
        let inspected = inspect(base, &fe.conf.rules, client, data, asked).await?;
        if inspected.end != Layer4End::Accept {
            let read = inspected.data.len();
            return Ok(TcpRouted::Rejected(None, read, inspected.end));
        }
        data = inspected.data;
        // The backend choice and the backend's rules see the address `set-src` gave.
        base.src = asked.client(base.src);
    }
    let head = stream_head(&fe.conf.rules, &data);
    let backend = choose_backend(
        &Context {
            payload: Some(&data),
            request: head.as_ref(),
            ..base
        },
        None,
    );
    // Then the chosen backend's own content rules; an HTTP backend's run on the request
    // it turns the connection to ([`super::http::serve_upgraded`]), as in HAProxy.
    if let Some(b) = other_backend(fe, backend.as_ref()) {
        if b.conf.mode == Mode::Tcp && !b.conf.rules.tcp_content.is_empty() {
            let ctx = Context {
                backend: Some(b),
                ..base
            };
            let inspected = inspect(ctx, &b.conf.rules, client, data, asked).await?;
            if inspected.end != Layer4End::Accept {
                let (read, end) = (inspected.data.len(), inspected.end);
                return Ok(TcpRouted::Rejected(Some(b.clone()), read, end));
            }
            data = inspected.data;
        }
    }
    Ok(TcpRouted::Backend(backend, data))
}
