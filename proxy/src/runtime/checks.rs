//! Health checks: every `inter` (or `fastinter` while changing state, `downinter` while
//! down), each server with `check` is probed. A server goes DOWN after `fall` failed checks in
//! a row and UP after `rise` good ones; DOWN servers get no new connections.
//!
//! Probes: a TCP connect (default); `tcp-check` rules (connect/send/expect); `option httpchk`
//! with its `http-check` rules: one or more groups (connect, send, then every expect in
//! order, or 2xx/3xx), each on its own connection, the first failure ending the check;
//! `option ssl-hello-chk` (an SSLv3 ClientHello, a TLS record back). A check connects with
//! TLS when the server says so (`check-ssl`, or `ssl` without `no-check-ssl`) or its connect
//! rule does (`connect ssl`); a failed handshake is HAProxy's L6RSP, a slow one L6TOUT.
//! An HTTP check speaks HTTP/2 when `check-proto h2`, the server's `proto h2` or its own
//! ALPN says so ([`speaks_h2`]): its request, written in HTTP/1.1, goes as one stream and
//! its response comes back as HTTP/1.1 bytes through the traffic's conversions
//! (`h2_server`), then is judged as any other.
//!
//! Log-format parts (`uri-lf`, `hdr`, `body-lf`, `send-lf`, `send-binary-lf`, `string-lf`,
//! `binary-lf`, `on-success`, `on-error`) are rendered per check by [`check_format`], which
//! also keeps each run's variables (`set-var`, `set-var-fmt`, `unset-var` rules, run in
//! their place: a `tcp-check` step, or before an `http-check` group's request or after one
//! of its expects). An expect rule reads as HAProxy's does ([`read_answer`], which the
//! agent checks share): until what it needs came (the pattern's length, `min-recv`, a whole
//! HTTP head), the peer closed, or the check's time ran out ([`Timing`]: `timeout check`
//! counted once from the connection, else `inter`); with `min-recv` a mismatch is final at
//! once, without it a content match (`string`, `rstring`, `rbinary` on the hexadecimal of
//! what came) waits for more. HTTP expect rules are judged one after the other as the
//! response grows, each at its own `min-recv`, on the de-chunked body: a body match is final
//! at once, a mismatch waits for the whole message; an answer whose head or chunked framing
//! cannot be HTTP is judged at once (at its first bad byte, as HAProxy's parser; the status
//! line read as HAProxy's check reads it, [`lenient_status_line`]); a body rule waits for its
//! pattern's length as well as its `min-recv`. A format pattern is rendered once data came;
//! an expect rule's `status-code` sets the check's code when it reports (cast as HAProxy
//! casts it, kept in a C `short`). A tcp-check that ran all its rules reports from its last
//! rule ([`tcp_success`]); its connection failures name their step. Regexes have PCRE's
//! meaning: PCRE2 on bytes (`config::pcre`).

mod protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use self::protocol::{AnswerWords, Verdict};
use super::check_format::{self, CheckContext};
use super::http::{self, Framing, Head};
use super::logformat::Samples;
use super::state::{Backend, CheckResult, Server, ServicePort, State, now_secs};
use super::{chunked, h2_server, shutdown, tls, track, transitions};
use crate::config::model::{
    CheckConnect, CheckRegex, ExpectReport, HttpCheck, HttpCheckGroup, HttpExpect, HttpExpectKind,
    TcpCheckRule, TcpExpect, TcpPattern,
};

/// Starts one check task per checked server.
pub fn spawn_all(state: &Arc<State>) {
    let node: Arc<str> = match &state.config.global.node {
        Some(node) => node.as_str().into(),
        None => super::log::cached_hostname().into(),
    };
    let spread = state.config.global.spread_checks;
    for first in first_runs(state) {
        match first.kind {
            CheckKind::Health => {
                let task = check_loop(
                    state.clone(),
                    first.backend,
                    first.server,
                    node.clone(),
                    first.delay,
                    spread,
                );
                tokio::spawn(task);
            }
            CheckKind::Agent => super::agent::spawn(first.backend, first.server, first.delay),
        }
    }
}

/// HAProxy's `SRV_CHK_INTER_THRES`: a check interval shorter than this does not set the
/// spread of the first checks (those servers start on their own schedule).
const SPREAD_INTERVAL_THRESHOLD: Duration = Duration::from_secs(1);

/// A server's health check, or its agent check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    Health,
    Agent,
}

/// When one check runs first (see [`first_runs`]).
#[derive(Debug)]
pub struct FirstRun {
    pub backend: Arc<Backend>,
    pub server: Arc<Server>,
    pub kind: CheckKind,
    pub delay: Duration,
}

/// When every check of the process runs first, as HAProxy's `start_checks` spreads them so
/// that the servers of one host are not all checked at once: the checks, in configuration
/// order (a server's health check, then its agent check), take positions 0..N, and check K
/// starts after `spread * K / N`, where `spread` is the shortest interval of at least a
/// second among them all (or the check's own, when longer), at most `max-spread-checks`.
pub fn first_runs(state: &State) -> Vec<FirstRun> {
    let checks: Vec<(&Arc<Backend>, &Arc<Server>, CheckKind)> = state
        .backends
        .iter()
        .flat_map(|backend| backend.servers.iter().map(move |server| (backend, server)))
        .flat_map(|(backend, server)| {
            let health = server
                .opts
                .check
                .then_some((backend, server, CheckKind::Health));
            let agent = server
                .agent
                .configured()
                .then_some((backend, server, CheckKind::Agent));
            health.into_iter().chain(agent)
        })
        .collect();
    let intervals: Vec<Duration> = checks
        .iter()
        .map(|(_, server, kind)| starting_interval(server, *kind))
        .collect();
    let delays = first_delays(&intervals, state.config.global.max_spread_checks);
    checks
        .into_iter()
        .zip(delays)
        .map(|((backend, server, kind), delay)| FirstRun {
            backend: backend.clone(),
            server: server.clone(),
            kind,
            delay,
        })
        .collect()
}

/// A check's interval when the process starts (HAProxy's `srv_getinter` on a server that
/// starts up with `rise` of `rise + fall - 1` health: `fastinter` unless `fall` is 1).
fn starting_interval(server: &Server, kind: CheckKind) -> Duration {
    let o = &server.opts;
    match kind {
        CheckKind::Agent => o.agent.inter.unwrap_or(o.inter),
        CheckKind::Health if o.fall > 1 => o.fastinter.unwrap_or(o.inter),
        CheckKind::Health => o.inter,
    }
}

/// The first delay of each check from their starting intervals (see [`first_runs`]).
fn first_delays(intervals: &[Duration], max_spread: Option<Duration>) -> Vec<Duration> {
    let shortest = intervals
        .iter()
        .copied()
        .filter(|&i| i >= SPREAD_INTERVAL_THRESHOLD)
        .min()
        .unwrap_or(Duration::ZERO);
    let count = u32::try_from(intervals.len()).unwrap_or(u32::MAX);
    (0..count)
        .zip(intervals)
        .map(|(position, &own)| {
            let spread = shortest.max(own);
            let spread = max_spread.map_or(spread, |max| spread.min(max));
            spread * position / count
        })
        .collect()
}

/// `node`: the process's name in `http-check send-state`'s header; `spread`:
/// `spread-checks`, the +/- percentage each interval varies by.
async fn check_loop(
    state: Arc<State>,
    backend: Arc<Backend>,
    server: Arc<Server>,
    node: Arc<str>,
    first: Duration,
    spread: u8,
) {
    tokio::time::sleep(first).await;
    // Seeded per server and start, so servers checked at one interval drift apart.
    let mut random = (now_secs() ^ ((server.id as u64) << 32)) | 1;
    loop {
        // Disabled (`disable health`) or paused (maintenance), the checks wait on: the
        // server keeps its state.
        if server.checks_running() && server.addr().is_some() {
            let ctx = CheckContext::new(&state, &backend, &server);
            start_check(&server);
            let Probe {
                ok,
                result,
                desc_after_report,
            } = probe(&ctx, &node).await;
            let before = transitions::CheckBefore::of(&server);
            let was = transitions::HealthBefore::of(&backend, &server);
            let changed = server.record_check(ok, result);
            // After the result: a check shown ended shows its result.
            server.set_check_in_progress(false);
            if backend.conf.options.log_health_checks {
                transitions::report_check_result(&backend, &server, ok, &before);
            }
            if let Some(desc) = desc_after_report {
                server.check.lock().unwrap_or_else(|e| e.into_inner()).desc = desc;
            }
            let check = server.check.lock().map(|c| c.clone()).unwrap_or_default();
            let why = transitions::check_reason(&backend, &check);
            if let Some(up) = transitions::report_health(&backend, &server, was, &why) {
                shutdown::on_marked(&backend, &server, up);
            }
            if changed.is_some() {
                track::follow(&server);
            }
        }
        let jitter = super::balance::next_random(&mut random) as u32;
        let interval = spread_interval(next_interval(&server), spread, jitter);
        pause(&server, interval).await;
    }
}

/// HAProxy's `srv_update_check_addr_port` for a port, for the runtime API
/// (`set server B/S check-port`) and a state file: refused while the checks are not
/// enabled, or to unset the port of a server whose port follows the client's.
pub fn update_port(server: &Server, text: &str) -> Result<(), &'static str> {
    if !server.checks_enabled() {
        return Err("health checks are not enabled on this server");
    }
    let port = super::api::cli_port(text)?;
    if port == 0 && matches!(server.service_port(), ServicePort::Mapped(_)) {
        return Err("can't unset 'port' since MAPPORTS is in use");
    }
    server.set_check_port(port);
    Ok(())
}

/// A check starts: as HAProxy's `HCHK_STATUS_START`, the last result keeps its status, code
/// and duration but loses its detail until this one ends (`show stat` marks it under way).
fn start_check(server: &Server) {
    let mut check = server.check.lock().unwrap_or_else(|e| e.into_inner());
    check.desc = described(&check.status, "");
    server.set_check_in_progress(true);
}

/// Waits `interval` before the next check, or less when `observe` saw errors: the next
/// check then comes `fastinter` from now if that is sooner (HAProxy's `__health_adjust`).
/// Leaving maintenance does not cut the wait short: HAProxy's paused check keeps its
/// schedule, so the server, back at `rise`, is checked at its next tick.
async fn pause(server: &Server, interval: Duration) {
    let mut deadline = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            () = server.check_soon.notified() => {
                if server.fastinter_next.swap(false, Relaxed) {
                    let o = &server.opts;
                    let soon = tokio::time::Instant::now() + o.fastinter.unwrap_or(o.inter);
                    deadline = deadline.min(soon);
                }
            }
        }
    }
}

/// `interval` moved by up to +/- `percent`% (HAProxy's `spread-checks`), `random` choosing
/// where in that range.
fn spread_interval(interval: Duration, percent: u8, random: u32) -> Duration {
    let reach = interval * u32::from(percent) / 100;
    let offset = reach.mul_f64(2.0 * f64::from(random) / f64::from(u32::MAX));
    (interval + reach).saturating_sub(offset)
}

fn next_interval(server: &Server) -> Duration {
    let o = &server.opts;
    // Errors seen by `observe` hasten the next check.
    if server.fastinter_next.swap(false, Relaxed) {
        return o.fastinter.unwrap_or(o.inter);
    }
    let health = server.health.load(Relaxed);
    let settled = if server.is_up() {
        health == o.rise + o.fall - 1
    } else {
        health == 0
    };
    match (server.is_up(), settled) {
        (false, true) => o.downinter.unwrap_or(o.inter),
        (_, false) => o.fastinter.unwrap_or(o.inter),
        (true, true) => o.inter,
    }
}

/// What one probe found.
#[derive(Debug)]
pub struct Probe {
    /// It passed.
    pub ok: bool,
    /// Its result, as reported (in the check's log line).
    pub result: CheckResult,
    /// The description the result keeps once reported, when not its own: HAProxy reports a
    /// protocol check that an `expect custom` rule passed with that rule's information (the
    /// MySQL server's version, LDAP's "Success"), then ends the check without any.
    pub desc_after_report: Option<String>,
}

/// One probe: whether it passed, and the result for the stats page.
pub async fn probe(ctx: &CheckContext<'_>, node: &str) -> Probe {
    // Each run starts without variables, as HAProxy's (see `check_format::CheckVars`).
    let vars = check_format::CheckVars::default();
    let ctx = &ctx.with_vars(&vars);
    let (backend, server) = (ctx.backend, ctx.server);
    let conf = &backend.conf;
    let started = Instant::now();
    let t = Timing::starting(backend, server.opts.inter);
    let mut desc_after_report = None;
    let outcome = if let Some(http) = &conf.options.httpchk {
        let state =
            (conf.options.http_check_send_state).then(|| server_state(backend, server, node));
        // HAProxy takes a 404 as "stopping" only from a server not DOWN.
        let nolb_on_404 = conf.options.http_check_disable_on_404 && server.is_up();
        http_probe(ctx, http, state.as_deref(), nolb_on_404, &t).await
    } else if conf.options.ssl_hello_chk {
        ssl_hello_probe(server, &t).await
    } else if let Some(check) = &conf.options.protocol_check {
        let ruleset = protocol::Ruleset::of(check);
        let outcome = tcp_check_probe(ctx, &ruleset.rules, &ruleset.words, &t).await;
        if let Ok((status, ..)) = &outcome {
            if ruleset.words.iter().any(|w| w.custom.is_some()) {
                desc_after_report = Some(described(status, ""));
            }
        }
        outcome
    } else if conf.options.tcp_check {
        // Without rules too: its implicit connect reports failures with its step.
        tcp_check_probe(ctx, &conf.tcp_checks, &[], &t).await
    } else {
        // A TLS handshake that passed is a layer 6 success, as HAProxy reports it.
        connect(server, None, false, &t)
            .await
            .map(|conn| verdict(if conn.tls { "L6OK" } else { "L4OK" }, None, ""))
    };
    let duration_ms = Some(started.elapsed().as_millis() as u64);
    let (ok, (status, code, desc)) = match outcome {
        Ok(pass) => (true, pass),
        Err(fail) => (false, fail),
    };
    Probe {
        ok,
        result: CheckResult {
            status: status.into(),
            code,
            duration_ms,
            desc,
            at: now_secs(),
        },
        desc_after_report,
    }
}

/// A check's time limits, as HAProxy 2.6 sets its check task's expiry: each connection may
/// take `inter` (`timeout connect` if sooner, only when `timeout check` is set); once it is
/// established (its TLS handshake done), `timeout check`, when set, is what the rest of the
/// check has, once for all its rules; without it the check runs to the `inter` its
/// connection started.
#[derive(Debug)]
pub(super) struct Timing {
    inter: Duration,
    connect: Option<Duration>,
    check: Option<Duration>,
    deadline: std::sync::Mutex<Instant>,
}

impl Timing {
    /// The limits of a check (or an agent's) run every `inter`, starting now.
    pub(super) fn starting(backend: &Backend, inter: Duration) -> Timing {
        let timeouts = &backend.conf.timeouts;
        Timing {
            inter,
            connect: timeouts.connect,
            check: timeouts.check,
            deadline: std::sync::Mutex::new(Instant::now() + inter),
        }
    }

    fn set_deadline(&self, at: Instant) {
        if let Ok(mut deadline) = self.deadline.lock() {
            *deadline = at;
        }
    }

    /// A connection starts: how long it (and its TLS handshake) may take.
    pub(super) fn connecting(&self) -> Duration {
        let limit = match (self.check, self.connect) {
            (Some(_), Some(connect)) => connect.min(self.inter),
            _ => self.inter,
        };
        self.set_deadline(Instant::now() + limit);
        limit
    }

    /// The connection is established: with `timeout check`, the rest of the check has that
    /// long from now.
    pub(super) fn connected(&self) {
        if let Some(check) = self.check {
            self.set_deadline(Instant::now() + check);
        }
    }

    /// What is left before the check (or its connection) times out.
    pub(super) fn left(&self) -> Duration {
        let deadline = self.deadline.lock().map_or_else(|_| Instant::now(), |d| *d);
        deadline.saturating_duration_since(Instant::now())
    }
}

/// A check's connection, plain or TLS.
trait CheckIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> CheckIo for T {}

/// A connected check; the socket is reset on drop unless the rule said `linger`, as
/// HAProxy closes its checks.
struct CheckConn {
    io: Box<dyn CheckIo>,
    /// Where it connected: a check's `%si`/`%sp`.
    addr: SocketAddr,
    /// Whether it speaks TLS (a tcp-check ending at its connect passes as L6OK then).
    tls: bool,
    /// Its TLS handshake chose `h2` by ALPN.
    alpn_h2: bool,
}

/// Where a check connects: the connect rule's address and port, else `check addr` and
/// `port`, else the server's.
pub(super) fn check_addr(server: &Server, rule: Option<&CheckConnect>) -> Option<SocketAddr> {
    let ip = rule
        .and_then(|c| c.addr)
        .or(server.opts.check_addr)
        .or_else(|| server.addr())?;
    let port = rule
        .and_then(|c| c.port)
        .or(server.check_port())
        .or(server.port())?;
    Some(SocketAddr::new(ip, port))
}

/// A check's (or an agent's) connection to `addr`, bound to the server's `source` if it has
/// one, as HAProxy's checks connect the way its traffic does (a failure there is a
/// [`SourceError`](super::session::SourceError), see [`connect_failure`]): its address and
/// `interface`, never its `usesrc` (a check has no client, and HAProxy gives it no foreign
/// address, not even a fixed one).
pub(super) async fn connect_from(
    source: Option<&crate::config::model::ConnSource>,
    addr: SocketAddr,
) -> std::io::Result<TcpStream> {
    open(source, addr, false).await
}

/// [`connect_from`]; with `delayed_ack`, TCP_QUICKACK off, as HAProxy connects a check
/// whose connection is not followed by an expect (`CONNECT_DELACK_ALWAYS`): the handshake's
/// last ACK leaves with the first data, and a check that sends none is reset before the
/// server ever accepts it.
async fn open(
    source: Option<&crate::config::model::ConnSource>,
    addr: SocketAddr,
    delayed_ack: bool,
) -> std::io::Result<TcpStream> {
    if source.is_none() && !delayed_ack {
        return TcpStream::connect(addr).await;
    }
    let prepare = |socket: &socket2::Socket| {
        if delayed_ack {
            // Only a saved packet is at stake: on failure the ACK goes on its own.
            let _ = socket.set_tcp_quickack(false);
        }
        Ok(())
    };
    let socket = super::session::bind_and_connect(addr, (source, None), prepare)?;
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// A check's (or an agent's) failed connection, as HAProxy's `chk_report_conn_err` words
/// it: a layer 4 problem, its detail a source failure's own text or the system's reason.
pub(super) fn connect_failure(e: &std::io::Error) -> String {
    let detail = match super::session::SourceError::of(e) {
        Some(failure) => failure.to_string(),
        None => os_reason(e),
    };
    format!("Layer4 connection problem: {detail}")
}

/// Connects as `rule` says (none: as the server says), with TLS when the rule has `ssl`, or
/// when the server's checks use TLS (`check-ssl`, `ssl`) and the rule is implicit or
/// `default`. `expect_next`: the server speaks first (see [`open`]).
async fn connect(
    server: &Server,
    rule: Option<&CheckConnect>,
    expect_next: bool,
    t: &Timing,
) -> Result<CheckConn, Verdict> {
    let addr = check_addr(server, rule).ok_or((
        "L4CON",
        None,
        "No port available for the TCP connection".to_string(),
    ))?;
    // In use while it opens (even refused), as HAProxy's `conn_new` counts a check's
    // connection before `conn_set_private` takes it out of the server's use.
    let in_use = super::pool::CheckUse::new(server);
    let connecting = open(server.opts.source.as_ref(), addr, !expect_next);
    let mut stream = match tokio::time::timeout(t.connecting(), connecting).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(("L4CON", None, connect_failure(&e))),
        Err(_) => return Err(("L4TOUT", None, "Layer4 timeout".into())),
    };
    drop(in_use);
    if !rule.is_some_and(|r| r.linger) {
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    let server_default = rule.is_none_or(|r| r.default);
    if let Some(version) = proxy_header_version(server, rule) {
        send_proxy_header(&mut stream, version, addr, t).await?;
    }
    let tls = &server.opts.tls;
    let use_tls = rule.is_some_and(|r| r.ssl) || (server_default && tls.check_uses_ssl());
    if !use_tls {
        t.connected();
        return Ok(CheckConn {
            io: Box::new(stream),
            addr,
            tls: false,
            alpn_h2: false,
        });
    }
    let Some(client) = &tls.client else {
        return Err((
            "L6RSP",
            None,
            "Layer6 invalid response: SSL handshake failure".into(),
        ));
    };
    // The server's `check-sni` and `check-alpn` belong to the implicit (or `default`)
    // connect only: an explicit `connect ssl` without its own sends none (HAProxy's
    // `TCPCHK_OPT_DEFAULT_CONNECT`).
    let server_sni = tls.check_sni.as_deref().filter(|_| server_default);
    let server_alpn = tls.check_alpn.as_deref().filter(|_| server_default);
    let sni = rule.and_then(|r| r.sni.as_deref()).or(server_sni);
    let alpn = rule.and_then(|r| r.alpn.as_deref()).or(server_alpn);
    let connector = client.connector(sni, alpn);
    match tls::handshake(&connector, addr.ip(), stream, t.left()).await {
        Ok(s) => {
            t.connected();
            let alpn_h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
            Ok(CheckConn {
                io: Box::new(s),
                addr,
                tls: true,
                alpn_h2,
            })
        }
        Err(tls::HandshakeError::Timeout) => Err(("L6TOUT", None, "Layer6 timeout".into())),
        // HAProxy's words: the name came from the SNI ("expected") or `verifyhost`.
        Err(tls::HandshakeError::Failed(e)) if tls::wrong_name(&e) => Err((
            "L6RSP",
            None,
            format!(
                "Layer6 invalid response: Server presented an SSL certificate different from the {} one",
                if sni.is_some() {
                    "expected"
                } else {
                    "configured"
                }
            ),
        )),
        Err(tls::HandshakeError::Failed(_)) => Err((
            "L6RSP",
            None,
            "Layer6 invalid response: SSL handshake failure".into(),
        )),
    }
}

/// The PROXY protocol version a check's connection starts with, if any: as HAProxy's
/// `init_srv_check`, the server's `send-proxy`/`send-proxy-v2` applies to its checks only
/// when they go where its traffic goes (no `port`, no `addr`), `check-send-proxy` always;
/// both only to the implicit (or `default`) connect, while a connect rule's `send-proxy`
/// asks for it itself; agent checks never send it.
fn proxy_header_version(server: &Server, rule: Option<&CheckConnect>) -> Option<u8> {
    let o = &server.opts;
    let follows_traffic = o.check_port.is_none() && o.check_addr.is_none();
    let server_wants = o.check_send_proxy || (follows_traffic && o.send_proxy.is_some());
    let server_default = rule.is_none_or(|r| r.default);
    let wanted = rule.is_some_and(|r| r.send_proxy) || (server_default && server_wants);
    // HAProxy's `make_proxy_line` picks v2 only from the server's `send-proxy-v2`.
    wanted.then(|| o.send_proxy.unwrap_or(1))
}

/// Sends the PROXY header first, before any TLS, as HAProxy's connection handshake does: the
/// connection counts as established only once it left.
async fn send_proxy_header(
    stream: &mut TcpStream,
    version: u8,
    peer: SocketAddr,
    t: &Timing,
) -> Result<(), Verdict> {
    let local = stream
        .local_addr()
        .map_err(|e| ("L4CON", None, connect_failure(&e)))?;
    let header = super::proxyproto::check_header(version, local, peer);
    match tokio::time::timeout(t.left(), stream.write_all(&header)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(("L4CON", None, connect_failure(&e))),
        Err(_) => Err(("L4TOUT", None, "Layer4 timeout".into())),
    }
}

/// A connection that failed while the check talked: HAProxy's SOCKERR, with the system's
/// reason, or "SSL fatal error" when TLS failed (an alert, a bad record).
fn socket_error(e: &std::io::Error) -> Verdict {
    let tls = e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    let reason = if tls {
        "SSL fatal error".to_string()
    } else {
        os_reason(e)
    };
    ("SOCKERR", None, format!("Socket error: {reason}"))
}

/// The system's words for an error, without Rust's "(os error N)".
pub(super) fn os_reason(e: &std::io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        return nix::errno::Errno::from_raw(code).desc().to_string();
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        _ => e.to_string(),
    }
}

/// The request an `option httpchk` check group sends, its formats rendered for `ctx`;
/// `state`: `http-check send-state`'s header value. Written as HAProxy 2.6's H1 layer writes
/// its check's request: header names in lower case; the length of the body (a `Content-Length`
/// or `Transfer-Encoding` written in `hdr` gives way to it; a `body-lf` rendered empty is an
/// empty chunked body in HTTP/1.1, nothing in HTTP/1.0); the connection header last, as
/// [`connection_header`] gives it.
fn http_request(http: &HttpCheckGroup, state: Option<&str>, ctx: &CheckContext<'_>) -> Vec<u8> {
    // As HAProxy: a URI rendered empty is `/`, a header whose value is is not sent.
    let uri = match &http.uri_format {
        Some(format) => Some(ctx.render(format)).filter(|u| !u.is_empty()),
        None => Some(http.uri.clone()),
    };
    let uri = uri.as_deref().unwrap_or("/");
    // `option httpchk METH URI VER\r\nHDR: V\r\n\r\nBODY`: HAProxy's deprecated hidden
    // headers and body, sent as `http-check send` ones unless such ones replace them.
    let (version, hidden) = http
        .version
        .split_once("\r\n")
        .unwrap_or((&http.version, ""));
    let (hidden_headers, hidden_body) = hidden.split_once("\r\n\r\n").unwrap_or((hidden, ""));
    let hidden_headers = (hidden_headers.split("\r\n"))
        .filter(|_| http.headers.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim_start().to_string()));
    let written = (http.headers.iter()).map(|(name, value)| (name.as_str(), ctx.render(value)));
    let mut req = format!("{} {uri} {version}\r\n", http.method);
    let mut connection = ConnectionTokens::default();
    for (name, mut value) in hidden_headers.chain(written) {
        let name = name.to_ascii_lowercase();
        if name == "connection" {
            value = connection.take(&value);
        }
        if !value.is_empty() && name != "content-length" && name != "transfer-encoding" {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if let Some(state) = state {
        req.push_str(&format!("x-haproxy-server-state: {state}\r\n"));
    }
    let version_11 = is_version_11(version);
    let body = http.body.as_ref().map(|b| ctx.render(b));
    let body = body.as_deref().unwrap_or(hidden_body);
    if !body.is_empty() {
        let length = crate::bytestr::byte_len(body);
        req.push_str(&format!("content-length: {length}\r\n"));
    }
    if let Some(value) = connection_header(&connection, version_11) {
        req.push_str(&format!("connection: {value}\r\n"));
    }
    if body.is_empty() && version_11 && http.body.is_some() {
        req.push_str("transfer-encoding: chunked\r\n\r\n0\r\n\r\n");
    } else {
        req.push_str("\r\n");
        req.push_str(body);
    }
    // Bytes the configuration carried that are not UTF-8 go out as they were written.
    crate::bytestr::to_bytes(&req).into_owned()
}

/// What the check's `Connection` headers asked for (HAProxy's H1 layer takes `close` and
/// `keep-alive` out of them and writes its own header last).
#[derive(Debug, Default)]
struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
    upgrade: bool,
}

impl ConnectionTokens {
    /// Notes the tokens of a `Connection` value; what is left of it, written in place.
    fn take(&mut self, value: &str) -> String {
        let mut kept = Vec::new();
        for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token.to_ascii_lowercase().as_str() {
                "close" => self.close = true,
                "keep-alive" => self.keep_alive = true,
                other => {
                    self.upgrade |= other == "upgrade";
                    kept.push(token);
                }
            }
        }
        kept.join(", ")
    }
}

/// The `Connection` header HAProxy's H1 layer ends a check's request with: the check closes
/// unless a `keep-alive` (without `close`) was asked for; what is a version's default is not
/// written, nor anything once an `Upgrade` was asked for.
fn connection_header(tokens: &ConnectionTokens, version_11: bool) -> Option<&'static str> {
    let keep_alive = tokens.keep_alive && !tokens.close;
    match (tokens.upgrade, keep_alive, version_11) {
        (true, ..) => None,
        (false, false, true) => Some("close"),
        (false, true, false) => Some("keep-alive"),
        _ => None,
    }
}

/// Whether HAProxy takes `version` as HTTP/1.1 or later (`HTTP/x.y`, x.y >= 1.1).
fn is_version_11(version: &str) -> bool {
    let v = version.as_bytes();
    v.len() == 8 && (v[5] > b'1' || (v[5] == b'1' && v[7] >= b'1'))
}

/// The most of a response a check reads (HAProxy's buffer size).
const RESPONSE_MAX: usize = 16 * 1024;

/// Runs the groups in order, each on its own connection; the first failure is the check's,
/// and when all pass the last one's verdict is. `nolb_on_404`: `http-check disable-on-404`
/// for a server UP (see [`http_verdict`]).
async fn http_probe(
    ctx: &CheckContext<'_>,
    http: &HttpCheck,
    state: Option<&str>,
    nolb_on_404: bool,
    t: &Timing,
) -> Result<Verdict, Verdict> {
    let mut last = Err(("L7RSP", None, "Layer7 invalid response".to_string()));
    for group in &http.groups {
        last = Ok(http_group(ctx, group, state, nolb_on_404, t).await?);
    }
    last
}

/// HAProxy's `X-Haproxy-Server-State` value: `UP 2/3; address=A; port=P; name=B/S;
/// node=N; weight=W/TOTAL; scur=CUR/BACKEND; qcur=Q[; throttle=T%]`, the counts saying
/// how far a server going down or up is (none once settled).
fn server_state(backend: &Backend, server: &Server, node: &str) -> String {
    let (health, rise, fall) = (
        server.health.load(Relaxed),
        server.opts.rise,
        server.opts.fall,
    );
    let state = match (server.is_up(), health) {
        (true, h) if h >= rise + fall - 1 => "UP".to_string(),
        (true, h) => format!("UP {}/{fall}", (h + 1).saturating_sub(rise)),
        (false, 0) => "DOWN".to_string(),
        (false, h) => format!("DOWN {h}/{rise}"),
    };
    let addr = server.addr().map(|ip| ip.to_string()).unwrap_or_default();
    let port = server.port().map(|p| p.to_string()).unwrap_or_default();
    let at = backend
        .servers
        .iter()
        .position(|s| std::ptr::eq(&**s, server));
    let queues = super::balance::queue_lengths(backend);
    let queued = |i: usize| queues.get(i).map_or(0, |q| q.0);
    let sessions = backend.counters.cur.load(Relaxed);
    let mut header = format!(
        "{state}; address={addr}; port={port}; name={}/{}; node={node}; weight={}/{}; scur={}/{}; qcur={}",
        backend.name,
        server.name,
        super::slowstart::weight_column(backend, server),
        super::stats::backend_weight(backend),
        server.counters.cur.load(Relaxed),
        sessions.saturating_sub(queued(0)),
        at.map_or(0, |i| queued(i + 1)),
    );
    if let Some(percent) = super::slowstart::throttle(backend, server) {
        header.push_str(&format!("; throttle={percent}%"));
    }
    header
}

async fn http_group(
    ctx: &CheckContext<'_>,
    group: &HttpCheckGroup,
    state: Option<&str>,
    nolb_on_404: bool,
    t: &Timing,
) -> Result<Verdict, Verdict> {
    let mut conn = connect(ctx.server, group.connect.as_ref(), false, t).await?;
    let ctx = &ctx.connected_to(conn.addr);
    run_http_vars(group, None, ctx);
    let request = http_request(group, state, ctx);
    if speaks_h2(ctx.server, &conn) {
        // The response is read whole over HTTP/2, then judged as an HTTP/1.1 one.
        let io = std::mem::replace(&mut conn.io, Box::new(std::io::Cursor::new(Vec::new())));
        let exchanged = h2_exchange(io, &request);
        let response = match tokio::time::timeout(t.left(), exchanged).await {
            Ok(response) => response?,
            Err(_) => return Err(http_timeout(group.expects.first())),
        };
        conn.io = Box::new(std::io::Cursor::new(response));
    } else {
        let sent = async {
            conn.io.write_all(&request).await?;
            conn.io.flush().await
        };
        match tokio::time::timeout(t.left(), sent).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(socket_error(&e)),
            Err(_) => return Err(http_timeout(group.expects.first())),
        }
    }
    // The head first; then, as HAProxy, each expectation judged in turn once the response
    // holds what it needs, a failure being final.
    run_http_vars(group, Some(0), ctx);
    let mut buf = Vec::with_capacity(1024);
    let first = group.expects.first();
    http_read(&mut conn.io, &mut buf, first, ctx, t).await?;
    let resp = http_response(&buf, first, ctx)?;
    if let Some(decided) = head_verdict(group, &resp, nolb_on_404) {
        return decided;
    }
    for (done, expect) in group.expects.iter().enumerate() {
        http_read(&mut conn.io, &mut buf, Some(expect), ctx, t).await?;
        let resp = http_response(&buf, Some(expect), ctx)?;
        let ctx = &ctx.with_response(&resp.head);
        judge_expect(expect, &resp, ctx)?;
        run_http_vars(group, Some(done + 1), ctx);
    }
    let resp = http_response(&buf, first, ctx)?;
    http_success(group, &resp, &ctx.with_response(&resp.head))
}

/// Whether a check of `server` on `conn` speaks HTTP/2, as HAProxy picks its check's mux:
/// `check-proto`, else the server's `proto`, else what the check's own TLS handshake chose
/// by ALPN (`check-alpn`: a check without it offers none, so speaks HTTP/1.1).
fn speaks_h2(server: &Server, conn: &CheckConn) -> bool {
    (server.opts.check_proto_h2).unwrap_or(server.opts.proto_h2 || conn.alpn_h2)
}

/// Sends the HTTP/1.1 `request` an HTTP check wrote as one HTTP/2 stream on `io` (through
/// the traffic's conversion, [`h2_server::request`]), and gives back its response as
/// HTTP/1.1 bytes ([`h2_server::response_head`], the body in chunks when it has no
/// length), at most [`RESPONSE_MAX`] of them. A stream reset or a connection that fails
/// is HAProxy's bare "Socket error".
async fn h2_exchange(io: Box<dyn CheckIo>, request: &[u8]) -> Result<Vec<u8>, Verdict> {
    let invalid = || ("L7RSP", None, "Layer7 invalid response".to_string());
    let end = http::find_head_end(request).ok_or_else(invalid)?;
    let head = http::parse_head(&request[..end], true).map_err(|_| invalid())?;
    // A check's body has a length, or is empty (`0` chunk).
    let body = match head.framing {
        Framing::Length(_) => bytes::Bytes::copy_from_slice(&request[end..]),
        _ => bytes::Bytes::new(),
    };
    let to_send = h2_server::request(&head).map_err(|_| invalid())?;
    let (send, connection) =
        (h2_server::client().handshake::<_, bytes::Bytes>(io).await).map_err(|e| h2_failure(&e))?;
    let driver = AbortOnDrop(tokio::spawn(connection));
    let mut send = send.ready().await.map_err(|e| h2_failure(&e))?;
    let ends = body.is_empty();
    let (response, mut stream) = (send.send_request(to_send, ends)).map_err(|e| h2_failure(&e))?;
    if !ends {
        stream.send_data(body, true).map_err(|e| h2_failure(&e))?;
    }
    let response = response.await.map_err(|e| h2_failure(&e))?;
    let (parts, mut recv) = response.into_parts();
    let ended = recv.is_end_stream();
    let (mut out, chunked, _) = h2_server::response_head(&parts, ended, head.first[0] == "HEAD");
    while out.len() < RESPONSE_MAX {
        let Some(data) = recv.data().await else {
            if chunked {
                out.extend_from_slice(b"0\r\n\r\n");
            }
            break;
        };
        let data = data.map_err(|e| h2_failure(&e))?;
        let _ = recv.flow_control().release_capacity(data.len());
        if chunked && !data.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&data);
        }
    }
    drop(driver);
    Ok(out)
}

/// An HTTP/2 check's failure: the system's error when the socket failed, else (a reset
/// stream, a GOAWAY, a protocol error) HAProxy's "Socket error" without a reason.
fn h2_failure(e: &h2::Error) -> Verdict {
    match e.get_io() {
        Some(io) => socket_error(io),
        None => ("SOCKERR", None, "Socket error".to_string()),
    }
}

/// A task aborted once its handle is dropped: an HTTP/2 check's connection ends with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the group's variable rules that come at `after_expects` (none: before its request
/// is built; else once that many of its expects passed).
fn run_http_vars(group: &HttpCheckGroup, after_expects: Option<usize>, ctx: &CheckContext<'_>) {
    (group.vars.iter())
        .filter(|v| v.after_expects == after_expects)
        .for_each(|v| ctx.run_var_rule(&v.rule));
}

/// Reads the response until `expect` (none: the head alone) can be judged
/// ([`Response::ready`]), the peer closes or the check's time runs out.
async fn http_read(
    io: &mut Box<dyn CheckIo>,
    buf: &mut Vec<u8>,
    expect: Option<&HttpExpect>,
    ctx: &CheckContext<'_>,
    t: &Timing,
) -> Result<(), Verdict> {
    let read = read_answer(io, buf, RESPONSE_MAX, |buf| {
        Response::ready(buf, expect, ctx)
    });
    match tokio::time::timeout(t.left(), read).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(socket_error(&e)),
        Err(_) => Err(http_timeout(expect)),
    }
}

/// A check timing out while `expect` waits: its `tout-status`, else L7TOUT.
fn http_timeout(expect: Option<&HttpExpect>) -> Verdict {
    let status = expect.and_then(|e| e.report.tout_status);
    verdict(status.unwrap_or("L7TOUT"), None, "")
}

/// The response in `buf`, or HAProxy's invalid response (none, cut, not HTTP), with the
/// rule's `on-error` and comment.
fn http_response<'b>(
    buf: &'b [u8],
    expect: Option<&HttpExpect>,
    ctx: &CheckContext<'_>,
) -> Result<Response<'b>, Verdict> {
    Response::parse(buf).ok_or_else(|| {
        let info = expect.map_or(String::new(), |e| failure_info(&e.report, ctx, ""));
        verdict("L7RSP", None, &info)
    })
}

/// Whether `expect` matches the body (`string`, `rstring`, `string-lf`).
fn matches_body(expect: &HttpExpect) -> bool {
    matches!(
        expect.kind,
        HttpExpectKind::String(_) | HttpExpectKind::RString(_) | HttpExpectKind::StringFormat(_)
    )
}

/// A check's HTTP response: its head, parsed and checked by the proxy's own parser (as
/// HAProxy's checks use its HTTP/1 parser: a status line alone, a head cut by the close or a
/// malformed header line is an invalid response), and as much of the body as was read,
/// chunks decoded (HAProxy matches its HTX message's data).
#[derive(Debug)]
struct Response<'a> {
    code: u16,
    head: Head,
    body: std::borrow::Cow<'a, [u8]>,
    /// The whole message came (its Content-Length, its last chunk, or no body at all).
    complete: bool,
}

impl<'a> Response<'a> {
    /// Whether `buf` holds what `expect` (none: the head alone) needs judged, as HAProxy
    /// decides after each read: the whole head; for a body match, the whole message, or
    /// once some body came, `min-recv` bytes of it, or without `min-recv` a match (a match
    /// is final, a mismatch waits for more). A response that cannot be HTTP (a line of its
    /// head, or its chunked framing, invalid) is judged at once.
    fn ready(buf: &[u8], expect: Option<&HttpExpect>, ctx: &CheckContext<'_>) -> bool {
        if http::find_head_end(buf).is_none() {
            return head_is_invalid_so_far(buf);
        }
        let Some(expect) = expect.filter(|e| matches_body(e)) else {
            return true;
        };
        let Some(r) = Response::parse(buf) else {
            return true;
        };
        if r.complete {
            return true;
        }
        if r.body.is_empty() {
            return false;
        }
        // As HAProxy: a string waits for its own length as well as for `min-recv`; a format
        // rendered empty is a failure at once.
        let pattern_len = match &expect.kind {
            HttpExpectKind::String(s) => s.len(),
            HttpExpectKind::StringFormat(format) => match ctx.render(format).len() {
                0 => return true,
                n => n,
            },
            _ => 0,
        };
        if r.body.len() < expect.report.min_recv.unwrap_or(0).max(pattern_len) {
            return false;
        }
        expect.report.min_recv.is_some() || expect_matches(expect, &r, ctx)
    }

    fn parse(buf: &'a [u8]) -> Option<Self> {
        let end = http::find_head_end(buf)?;
        let (lines, code) = lenient_status_line(&buf[..end])?;
        let head = http::parse_head(&lines, false).ok()?;
        let rest = &buf[end..];
        let (body, complete) = match head.framing {
            Framing::Length(len) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                (rest[..rest.len().min(len)].into(), rest.len() >= len)
            }
            Framing::Chunked => {
                let mut decoder = chunked::Decoder::default();
                let mut data = Vec::new();
                decoder
                    .advance_with(rest, |piece| data.extend_from_slice(piece))
                    .ok()?;
                (data.into(), decoder.is_done())
            }
            Framing::None => (rest[..0].into(), true),
            Framing::UntilClose => (rest.into(), false),
        };
        Some(Response {
            code,
            head,
            body,
            complete,
        })
    }

    fn reason(&self) -> &str {
        &self.head.first[2]
    }
}

/// Whether a head still coming already cannot be HTTP (HAProxy's parser fails at the first
/// byte it refuses, without waiting for the rest): its complete lines refused by the
/// proxy's parser, or its incomplete last line going wrong ([`partial_line_is_invalid`]).
fn head_is_invalid_so_far(buf: &[u8]) -> bool {
    let Some(last) = buf.iter().rposition(|b| *b == b'\n') else {
        return partial_line_is_invalid(buf, true);
    };
    if partial_line_is_invalid(&buf[last + 1..], false) {
        return true;
    }
    let mut lines = buf[..=last].to_vec();
    lines.extend_from_slice(b"\r\n");
    lenient_status_line(&lines).is_none_or(|(lines, _)| http::parse_head(&lines, false).is_err())
}

/// A check's response head with its status line as HAProxy's check accepts it (a version of
/// `[A-Z0-9./]` written `XXXX/D.D`, as `h1_process_res_vsn` wants it; a code of any number
/// of digits) rewritten for the proxy's parser, which wants `HTTP/1.x` and three digits;
/// and the code. None: not a status line.
fn lenient_status_line(head: &[u8]) -> Option<(std::borrow::Cow<'_, [u8]>, u16)> {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let line = &head[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let is_version = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"./".contains(b);
    let version = line.iter().take_while(|b| is_version(b)).count();
    let v = &line[..version];
    let digit = |i: usize| v.get(i).is_some_and(u8::is_ascii_digit);
    if version != 8 || v[4] != b'/' || !digit(5) || v[6] != b'.' || !digit(7) {
        return None;
    }
    if line.get(version) != Some(&b' ') {
        return None;
    }
    let rest = &line[version..];
    let rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits).is_some_and(|b| !matches!(b, b' ' | b'\t')) {
        return None;
    }
    let code: u16 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    if line.starts_with(b"HTTP/1.") && digits == 3 {
        return Some((head.into(), code));
    }
    // Framed as a 200 unless the code is one with its own framing rules.
    let shown = if digits == 3 { code } else { 200 };
    // HTTP/1.1 or later, else 1.0, as HAProxy flags it.
    let minor = if (v[5], v[7]) >= (b'1', b'1') { 1 } else { 0 };
    let mut rewritten = format!("HTTP/1.{minor} {shown}").into_bytes();
    rewritten.extend_from_slice(&rest[digits..]);
    rewritten.extend_from_slice(&head[line.len()..]);
    Some((rewritten.into(), code))
}

/// Whether the start of a head line (no line end yet) is already wrong, as HAProxy's H1
/// parser judges each byte: a status line's version is made of `[A-Z0-9./]` up to a space
/// and its code of digits; a header's name of token characters up to its colon (a space
/// there is an error). A folded header line (starting with a blank) waits.
fn partial_line_is_invalid(line: &[u8], status_line: bool) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if status_line {
        let is_version = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"./".contains(b);
        let version = line.iter().take_while(|b| is_version(b)).count();
        let Some(&after) = line.get(version) else {
            return false;
        };
        if after != b' ' || version == 0 {
            return true;
        }
        let rest = &line[version..];
        let mut code = rest.iter().skip_while(|b| **b == b' ');
        let after_code = code.find(|b| !b.is_ascii_digit());
        return after_code.is_some_and(|b| *b != b' ');
    }
    if line.first().is_none_or(|b| matches!(b, b' ' | b'\t')) {
        return false;
    }
    let name = line.iter().take_while(|b| http::is_tchar(**b)).count();
    line.get(name).is_some_and(|b| *b != b':')
}

/// `status` with its description and `info` after it, as the stats page splits them; a
/// code only for the statuses HAProxy shows one with.
fn verdict(status: &'static str, code: Option<u16>, info: &str) -> Verdict {
    let code = code.filter(|_| matches!(status, "L7OK" | "L7OKC" | "L7STS"));
    (status, code, described(status, info))
}

/// The most of a check's or agent's information kept (HAProxy's `HCHK_DESC_LEN` less its
/// NUL): a hostile server's long answer is not carried into every stats row and log line.
const INFO_MAX: usize = 127;

/// A check's or agent's result as kept: `status`'s description, then `info` (cut to
/// [`INFO_MAX`] bytes) after a colon.
pub(super) fn described(status: &str, info: &str) -> String {
    let mut end = info.len().min(INFO_MAX);
    while !info.is_char_boundary(end) {
        end -= 1;
    }
    let info = &info[..end];
    match (super::stats::check_status_description(status), info) {
        (d, "") => d.to_string(),
        ("", i) => i.to_string(),
        (d, i) => format!("{d}: {i}"),
    }
}

/// Runs the expectations in order on a whole response, with HAProxy's statuses: a status
/// or header mismatch is L7STS (described by the reason phrase), a content mismatch L7RSP;
/// the rule's `error-status`, `on-error` and `comment` change what a failure reports, the
/// last rule's `ok-status` and `on-success` what a pass does. With `nolb_on_404` (`http-check
/// disable-on-404`, the server UP) a 404 skips the expectations and passes conditionally,
/// L7OKC without information, as HAProxy's `tcpcheck_main` ends such a check.
#[cfg(test)]
fn http_verdict(
    group: &HttpCheckGroup,
    resp: &Response<'_>,
    nolb_on_404: bool,
    ctx: &CheckContext<'_>,
) -> Result<Verdict, Verdict> {
    if let Some(decided) = head_verdict(group, resp, nolb_on_404) {
        return decided;
    }
    for expect in &group.expects {
        judge_expect(expect, resp, ctx)?;
    }
    http_success(group, resp, ctx)
}

/// What the head alone decides: a 404 under `disable-on-404` (a conditional pass), and
/// without expectations, a status other than 2xx/3xx (L7STS).
fn head_verdict(
    group: &HttpCheckGroup,
    resp: &Response<'_>,
    nolb_on_404: bool,
) -> Option<Result<Verdict, Verdict>> {
    let code = Some(resp.code);
    if nolb_on_404 && resp.code == 404 {
        return Some(Ok(verdict("L7OKC", code, "")));
    }
    if group.expects.is_empty() && !(200..400).contains(&resp.code) {
        return Some(Err(verdict("L7STS", code, resp.reason())));
    }
    None
}

/// One expectation judged on `resp`: a content match on an empty body is HAProxy's "could
/// not find a response body", whichever way it is meant.
fn judge_expect(
    expect: &HttpExpect,
    resp: &Response<'_>,
    ctx: &CheckContext<'_>,
) -> Result<(), Verdict> {
    if matches_body(expect) && resp.body.is_empty() {
        let status = expect.report.error_status.unwrap_or("L7RSP");
        let info = failure_info(
            &expect.report,
            ctx,
            "HTTP content check could not find a response body",
        );
        let code = expect_code(&expect.report, ctx, Some(resp.code));
        return Err(verdict(status, code, &info));
    }
    if let HttpExpectKind::StringFormat(format) = &expect.kind
        && ctx.render(format).is_empty()
    {
        let info = failure_info(
            &expect.report,
            ctx,
            "log-format string evaluated to an empty string",
        );
        let code = expect_code(&expect.report, ctx, Some(resp.code));
        return Err(verdict("L7RSP", code, &info));
    }
    if expect_matches(expect, resp, ctx) == expect.negate {
        return Err(expect_failure(expect, resp, ctx));
    }
    Ok(())
}

/// A group passed: the last rule's `ok-status` and `on-success`.
fn http_success(
    group: &HttpCheckGroup,
    resp: &Response<'_>,
    ctx: &CheckContext<'_>,
) -> Result<Verdict, Verdict> {
    let last = group.expects.last().map(|e| &e.report);
    let status = last.and_then(|r| r.ok_status).unwrap_or("L7OK");
    let info = last.map_or(String::new(), |r| success_info(r, ctx, ""));
    let code = match last {
        Some(report) => expect_code(report, ctx, Some(resp.code)),
        None => Some(resp.code),
    };
    Ok(verdict(status, code, &info))
}

fn expect_matches(expect: &HttpExpect, resp: &Response<'_>, ctx: &CheckContext<'_>) -> bool {
    let body = || String::from_utf8_lossy(&resp.body);
    match &expect.kind {
        HttpExpectKind::Status(ranges) => ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&resp.code)),
        HttpExpectKind::RStatus(re) => re.is_match(resp.code.to_string().as_bytes()),
        HttpExpectKind::String(s) => body().contains(s.as_str()),
        HttpExpectKind::StringFormat(format) => {
            let wanted = ctx.render(format);
            !wanted.is_empty() && body().contains(wanted.as_str())
        }
        HttpExpectKind::RString(re) => re.is_match(&resp.body),
        HttpExpectKind::Header { name, value, full } => {
            let values = |v: &str| -> Vec<String> {
                if *full {
                    vec![v.to_string()]
                } else {
                    v.split(',').map(|x| x.trim().to_string()).collect()
                }
            };
            (resp.head.headers.iter()).any(|(n, v)| {
                name.matches(&n.to_ascii_lowercase())
                    && value
                        .as_ref()
                        .is_none_or(|want| values(v).iter().any(|x| want.matches(x)))
            })
        }
    }
}

/// What a failed expectation reports, as HAProxy's `tcpcheck_expect_onerror_message`: its
/// `on-error` text or HAProxy's information, then its comment.
fn expect_failure(expect: &HttpExpect, resp: &Response<'_>, ctx: &CheckContext<'_>) -> Verdict {
    let (status, info) = match (matches_body(expect), expect.negate) {
        (true, false) => ("L7RSP", "HTTP content check did not match"),
        (true, true) => ("L7RSP", "HTTP check matched unwanted content"),
        (false, _) => ("L7STS", resp.reason()),
    };
    let status = expect.report.error_status.unwrap_or(status);
    let info = failure_info(&expect.report, ctx, info);
    let code = expect_code(&expect.report, ctx, Some(resp.code));
    verdict(status, code, &info)
}

/// The check's code when an expect rule reports: its `status-code` expression's value cast
/// as HAProxy casts a sample to an integer ([`read_int64`]; an empty string gives nothing),
/// then kept in a C `short` (its bits here: the stats and logs print it signed); else
/// `code`, which HAProxy keeps when the expression gives nothing.
fn expect_code(report: &ExpectReport, ctx: &CheckContext<'_>, code: Option<u16>) -> Option<u16> {
    let value = report.status_code.as_ref().and_then(|expr| ctx.text(expr));
    value
        .filter(|v| !v.is_empty())
        .map(|v| read_int64(&v) as i16 as u16)
        .or(code)
}

/// HAProxy's `read_int64`, its string-to-integer cast: an optional sign, then the leading
/// digits (none: 0), saturating at the `i64` bounds; no blanks skipped.
fn read_int64(text: &str) -> i64 {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = (rest.bytes())
        .take_while(u8::is_ascii_digit)
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
    match negative {
        true => 0i64.checked_sub_unsigned(magnitude).unwrap_or(i64::MIN),
        false => i64::try_from(magnitude).unwrap_or(i64::MAX),
    }
}

/// A failed expect rule's information: its `on-error` format rendered, else `default`,
/// then ` comment: TEXT` (HAProxy's `tcpcheck_expect_onerror_message`).
fn failure_info(report: &ExpectReport, ctx: &CheckContext<'_>, default: &str) -> String {
    let mut info = match &report.on_error {
        Some(format) => ctx.render(format),
        None => default.to_string(),
    };
    if let Some(comment) = &report.comment {
        info.push_str(&format!(" comment: {comment}"));
    }
    info
}

/// The last expect rule's information when the check passes: its `on-success` format
/// rendered, else `default` (HAProxy's `tcpcheck_expect_onsuccess_message`).
fn success_info(report: &ExpectReport, ctx: &CheckContext<'_>, default: &str) -> String {
    match &report.on_success {
        Some(format) => ctx.render(format),
        None => default.to_string(),
    }
}

/// The SSLv3 ClientHello `option ssl-hello-chk` sends (HAProxy's packet): its random is
/// `HAPROXYSSLCHK\n` twice, after the current time; 39 common cipher suites, no compression.
fn sslv3_client_hello(now: u32) -> Vec<u8> {
    let mut hello = vec![
        0x16, 0x03, 0x00, 0x00, 0x79, 0x01, 0x00, 0x00, 0x75, 0x03, 0x00,
    ];
    hello.extend_from_slice(&now.to_be_bytes());
    hello.extend_from_slice(b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n");
    hello.extend_from_slice(&[0x00, 0x00, 0x4e]);
    for suite in (0x01u16..=0x1b).chain(0x2f..=0x3a) {
        hello.extend_from_slice(&suite.to_be_bytes());
    }
    hello.extend_from_slice(&[0x01, 0x00]);
    hello
}

/// `option ssl-hello-chk`: the ClientHello, then a TLS record header back whose type is a
/// handshake (0x16) or an alert (0x15): Layer6 passed.
async fn ssl_hello_probe(server: &Server, t: &Timing) -> Result<Verdict, Verdict> {
    let mut conn = connect(server, None, false, t).await?;
    let exchange = async {
        conn.io
            .write_all(&sslv3_client_hello(now_secs() as u32))
            .await?;
        conn.io.flush().await?;
        let mut got = Vec::new();
        read_answer(&mut conn.io, &mut got, RESPONSE_MAX, |got| got.len() >= 5).await?;
        Ok::<_, std::io::Error>(got)
    };
    match tokio::time::timeout(t.left(), exchange).await {
        Ok(Ok(got)) if got.len() >= 5 && matches!(got[0], 0x15 | 0x16) => {
            Ok(("L6OK", None, "Layer6 check passed".into()))
        }
        Ok(_) => Err(("L6RSP", None, "Layer6 invalid response".into())),
        Err(_) => Err(("L6TOUT", None, "Layer6 timeout".into())),
    }
}

/// Whether the first of `rules[from..]` that does something (no comment, no variable
/// rule) is an expect: HAProxy's `get_next_tcpcheck_rule` after a connect.
fn expect_follows(rules: &[TcpCheckRule], from: usize) -> bool {
    let next = (rules.iter().skip(from))
        .find(|r| !matches!(r, TcpCheckRule::Comment(_) | TcpCheckRule::Var(_)));
    matches!(next, Some(TcpCheckRule::Expect(_)))
}

/// Runs tcp-check `rules`; `words`, for a protocol check's ruleset, how each rule words its
/// answer (empty: as the rules' own options say).
async fn tcp_check_probe(
    ctx: &CheckContext<'_>,
    rules: &[TcpCheckRule],
    words: &[AnswerWords],
    t: &Timing,
) -> Result<Verdict, Verdict> {
    let server = ctx.server;
    // HAProxy names the step of a connection failure in a plain tcp-check only.
    let protocol = !words.is_empty();
    let at_step = |failure: Verdict, at: ConnectStep<'_>| match protocol {
        true => failure,
        false => with_step(failure, at),
    };
    // `%si`/`%sp` are where the check connected.
    let mut ctx = *ctx;
    let mut conn: Option<CheckConn> = None;
    let mut received: Vec<u8> = Vec::new();
    // The last rule run that is not a variable or comment rule: the success is built from
    // it once all rules ran, as HAProxy's `tcpcheck_main` does.
    let mut last = LastStep::ImplicitConnect { tls: false };
    // Without a leading connect rule (comments and variable rules aside), the check
    // connects to the server first.
    let first =
        (rules.iter()).find(|r| !matches!(r, TcpCheckRule::Comment(_) | TcpCheckRule::Var(_)));
    if !matches!(first, Some(TcpCheckRule::Connect(_))) {
        let c = connect(server, None, expect_follows(rules, 0), t)
            .await
            .map_err(|e| at_step(e, ConnectStep::Initial))?;
        ctx = ctx.connected_to(c.addr);
        last = LastStep::ImplicitConnect { tls: c.tls };
        conn = Some(c);
    }
    for (step, rule) in rules.iter().enumerate() {
        let step = step + 1;
        let not_connected = |what: &str| {
            let info = format!("TCPCHK {what} at step {step}: not connected");
            ("L7RSP", None, info)
        };
        match rule {
            TcpCheckRule::Connect(rule) => {
                let c = connect(server, Some(rule), expect_follows(rules, step), t)
                    .await
                    .map_err(|e| at_step(e, ConnectStep::Rule { step, rule }))?;
                ctx = ctx.connected_to(c.addr);
                last = LastStep::Connect { tls: c.tls };
                conn = Some(c);
                received.clear();
            }
            TcpCheckRule::Send(_) | TcpCheckRule::SendFormat { .. } => {
                let c = conn.as_mut().ok_or_else(|| not_connected("send"))?;
                // As HAProxy: the next expect judges what comes after this send only.
                received.clear();
                let data = tcp_data(rule, &ctx, step)?;
                let sent = async {
                    c.io.write_all(&data).await?;
                    c.io.flush().await
                };
                sent.await
                    .map_err(|e| ("L7RSP", None, format!("TCPCHK send at step {step}: {e}")))?;
                last = LastStep::Send;
            }
            TcpCheckRule::Expect(expect) => {
                let c = conn.as_mut().ok_or_else(|| not_connected("expect"))?;
                let words = words.get(step - 1).copied().unwrap_or_default();
                if let Some(judge) = words.custom {
                    let judging = CustomExpect {
                        judge,
                        last_rule: rules.get(step).is_none(),
                        step,
                    };
                    if let Some(pass) = custom_expect(&mut c.io, &mut received, &judging, t).await?
                    {
                        last = LastStep::Judged(pass);
                    }
                    continue;
                }
                let rule = ExpectRule {
                    expect,
                    words,
                    step,
                    protocol,
                };
                tcp_expect(&mut c.io, &mut received, &rule, &ctx, t).await?;
                last = LastStep::Expect(expect, words);
            }
            TcpCheckRule::Var(rule) => ctx.run_var_rule(rule),
            TcpCheckRule::Comment(_) => {}
        }
    }
    Ok(tcp_success(last, &received, &ctx))
}

/// The last tcp-check rule run that is not a variable or comment rule.
enum LastStep<'r> {
    /// The connection opened before the rules; `tls`: with TLS.
    ImplicitConnect {
        tls: bool,
    },
    Connect {
        tls: bool,
    },
    Send,
    Expect(&'r TcpExpect, AnswerWords),
    /// A protocol check's `expect custom` that passed the check itself.
    Judged(Verdict),
}

/// An expect rule as it runs: its step (from 1) and, in a protocol check, its wording.
struct ExpectRule<'r> {
    expect: &'r TcpExpect,
    words: AnswerWords,
    step: usize,
    /// Part of a protocol check: its failures to read name no step.
    protocol: bool,
}

impl ExpectRule<'_> {
    /// The information of a failure to read (`reason`: the system's, or none).
    fn unread(&self, reason: &str) -> String {
        match self.protocol {
            true => reason.to_string(),
            false => step_info(reason, self.step, self.expect),
        }
    }
}

/// A tcp-check that ran all its rules, as HAProxy reports it from the last one: an expect's
/// `ok-status`, `on-success` and `status-code` (evaluated now, after any variable rule that
/// followed it); a connect's L4OK (L6OK over TLS), "(tcp-check)" unless it was implicit; a
/// send's L7OK "(tcp-check)".
fn tcp_success(last: LastStep<'_>, received: &[u8], ctx: &CheckContext<'_>) -> Verdict {
    let connected = |tls: bool| if tls { "L6OK" } else { "L4OK" };
    match last {
        LastStep::ImplicitConnect { tls } => verdict(connected(tls), None, ""),
        LastStep::Connect { tls } => verdict(connected(tls), None, "(tcp-check)"),
        LastStep::Send => verdict("L7OK", Some(0), "(tcp-check)"),
        LastStep::Judged(pass) => pass,
        LastStep::Expect(expect, words) => {
            let report = &expect.report;
            let status = report.ok_status.unwrap_or("L7OK");
            let info = match words.on_success {
                Some(say) => say(received),
                None => success_info(report, ctx, "(tcp-check)"),
            };
            verdict(status, answer_code(report, words, received, ctx), &info)
        }
    }
}

/// Which connect of a tcp-check failed, for HAProxy's `chk_report_conn_err` words.
enum ConnectStep<'r> {
    /// The connection the check opens before its rules (step 0).
    Initial,
    Rule {
        step: usize,
        rule: &'r CheckConnect,
    },
}

/// A tcp-check's failed connection with HAProxy's step information after the reason:
/// " at initial connection step of tcp-check", or " at step N of tcp-check (connect[ port
/// P])" with the rule's comment quoted.
fn with_step((status, code, desc): Verdict, at: ConnectStep<'_>) -> Verdict {
    let suffix = match at {
        ConnectStep::Initial => " at initial connection step of tcp-check".to_string(),
        ConnectStep::Rule { step, rule } => {
            let port = rule.port.map_or(String::new(), |p| format!(" port {p}"));
            let mut suffix = format!(" at step {step} of tcp-check (connect{port})");
            if let Some(comment) = &rule.comment {
                suffix.push_str(&format!(" comment: '{comment}'"));
            }
            suffix
        }
    };
    // The step is the information of a bare reason (`Layer4 timeout`): HAProxy's log then
    // reads `reason: Layer4 timeout, info: " at initial connection step of tcp-check"`.
    let separator = if desc.contains(": ") { "" } else { ": " };
    (status, code, format!("{desc}{separator}{suffix}"))
}

/// The bytes a send rule sends: as written, or its format rendered (`send-binary-lf`: as
/// hexadecimal text, which must be; rendered empty, nothing is sent).
fn tcp_data(rule: &TcpCheckRule, ctx: &CheckContext<'_>, step: usize) -> Result<Vec<u8>, Verdict> {
    match rule {
        TcpCheckRule::Send(bytes) => Ok(bytes.clone()),
        TcpCheckRule::SendFormat { format, binary } => {
            let text = ctx.render(format);
            if !binary {
                return Ok(text.into_bytes());
            }
            check_format::unhex(&text).ok_or_else(|| {
                let info =
                    format!("tcp-check send : failed to build log-format string at step {step}");
                verdict("L7RSP", None, &info)
            })
        }
        _ => Ok(Vec::new()),
    }
}

/// Evaluates a `tcp-check expect` on what the connection sent so far, reading more while
/// HAProxy would wait: nothing came yet, less than the pattern or `min-recv` came, or
/// (without `min-recv`) the pattern is not there yet. A format pattern is rendered only once
/// there is something to match (HAProxy evaluates it when it judges). The peer closing, or
/// the buffer filling up, ends the wait; the check's time running out is L7TOUT (even for a
/// `!` rule: nothing was judged), a connection failing before anything came SOCKERR. Every
/// failure has code 0 (HAProxy's tcp-check rules reset it) unless its `status-code` sets one;
/// a pass is reported by [`tcp_success`] once all rules ran.
async fn tcp_expect(
    io: &mut Box<dyn CheckIo>,
    received: &mut Vec<u8>,
    rule: &ExpectRule<'_>,
    ctx: &CheckContext<'_>,
    t: &Timing,
) -> Result<(), Verdict> {
    let (expect, step) = (rule.expect, rule.step);
    let report = &expect.report;
    let timed_out = || {
        let status = report.tout_status.unwrap_or("L7TOUT");
        Err(verdict(status, Some(0), &rule.unread("")))
    };
    let first = report.min_recv.unwrap_or(0).max(1);
    let read = read_answer(io, received, RESPONSE_MAX, |got| got.len() >= first);
    match tokio::time::timeout(t.left(), read).await {
        Err(_) => return timed_out(),
        Ok(Err(e)) if received.is_empty() => {
            let info = rule.unread(&os_reason(&e));
            return Err(verdict("SOCKERR", Some(0), &info));
        }
        Ok(_) => {}
    }
    // Closed with nothing sent: HAProxy's empty response (its comment quoted there).
    if received.is_empty() {
        let mut info = format!("TCPCHK got an empty response at step {step}");
        if let Some(comment) = &report.comment {
            info.push_str(&format!(" comment: '{comment}'"));
        }
        return Err(verdict(
            report.error_status.unwrap_or("L7RSP"),
            Some(0),
            &info,
        ));
    }
    let pattern = tcp_pattern(&expect.pattern, ctx).map_err(|info| {
        let info = failure_info(
            &ExpectReport {
                on_error: None,
                ..report.clone()
            },
            ctx,
            info,
        );
        verdict("L7RSP", Some(0), &info)
    })?;
    let min = report.min_recv.unwrap_or(0).max(pattern.min_len());
    let found = |got: &[u8]| pattern.found(got);
    let judged = |got: &[u8]| got.len() >= min && (found(got) || report.min_recv.is_some());
    // A connection failing once data came: what came is judged, as HAProxy does.
    let read = read_answer(io, received, RESPONSE_MAX, judged);
    if tokio::time::timeout(t.left(), read).await.is_err() {
        return timed_out();
    }
    let found = found(received);
    if found == expect.negate {
        let what = if expect.negate {
            "matched unwanted"
        } else {
            "did not match"
        };
        let shown = match &expect.pattern {
            TcpPattern::Bytes {
                bytes,
                binary: false,
            } => {
                format!(" '{}'", String::from_utf8_lossy(bytes))
            }
            TcpPattern::Bytes { binary: true, .. } => " (binary)".into(),
            TcpPattern::Format { binary: false, .. } => " (log-format string)".into(),
            TcpPattern::Format { binary: true, .. } => " (log-format binary)".into(),
            TcpPattern::Regex { binary: false, .. } => " (regex)".into(),
            TcpPattern::Regex { binary: true, .. } => " (binary regex)".into(),
        };
        let default = format!("TCPCHK {what} content{shown} at step {step}");
        let status = report.error_status.unwrap_or("L7RSP");
        let info = match rule.words.on_error {
            Some(say) => say(received),
            None => failure_info(report, ctx, &default),
        };
        let code = answer_code(report, rule.words, received, ctx);
        return Err(verdict(status, code, &info));
    }
    Ok(())
}

/// An `expect custom` rule of a protocol check as it runs.
struct CustomExpect {
    judge: protocol::Custom,
    /// No rule follows it.
    last_rule: bool,
    /// Its step (from 1).
    step: usize,
}

/// Runs an `expect custom` rule: reads until its judgement is made, as HAProxy calls its
/// custom functions on each read, with the answer as it is once the server closed (or
/// failed) if it had not decided before. Its verdict when it passed the check.
async fn custom_expect(
    io: &mut Box<dyn CheckIo>,
    received: &mut Vec<u8>,
    rule: &CustomExpect,
    t: &Timing,
) -> Result<Option<Verdict>, Verdict> {
    let decided = |got: &[u8]| (rule.judge)(got, false, rule.last_rule) != protocol::Judged::Wait;
    let read = read_answer(io, received, RESPONSE_MAX, decided);
    let outcome = match tokio::time::timeout(t.left(), read).await {
        Err(_) => return Err(verdict("L7TOUT", Some(0), "")),
        Ok(outcome) => outcome,
    };
    if received.is_empty() {
        return Err(match outcome {
            Err(e) => verdict("SOCKERR", Some(0), &os_reason(&e)),
            Ok(()) => {
                let info = format!("TCPCHK got an empty response at step {}", rule.step);
                verdict("L7RSP", Some(0), &info)
            }
        });
    }
    let last_read = !decided(received);
    match (rule.judge)(received, last_read, rule.last_rule) {
        protocol::Judged::Wait | protocol::Judged::Continue => Ok(None),
        protocol::Judged::Pass((status, code, info)) => Ok(Some(verdict(status, code, &info))),
        protocol::Judged::Fail((status, code, info)) => Err(verdict(status, code, &info)),
    }
}

/// The code an expect rule reports: a protocol check's from the answer, else its
/// `status-code`'s, else 0 (HAProxy's tcp-check rules reset it).
fn answer_code(
    report: &ExpectReport,
    words: AnswerWords,
    received: &[u8],
    ctx: &CheckContext<'_>,
) -> Option<u16> {
    match words.status_code {
        // Kept in a C `short`, as HAProxy's `check->code`.
        Some(code) => Some(code(received).unwrap_or(0) as i16 as u16),
        None => expect_code(report, ctx, Some(0)),
    }
}

/// HAProxy's information when a tcp-check expect rule could not judge (`chk_report_conn_err`):
/// `reason` (the system's, or none on a timeout), the step and the rule, its comment quoted.
fn step_info(reason: &str, step: usize, expect: &TcpExpect) -> String {
    let mut info = format!(
        "{reason} at step {step} of tcp-check (expect {})",
        expect_name(expect)
    );
    if let Some(comment) = &expect.report.comment {
        info.push_str(&format!(" comment: '{comment}'"));
    }
    info
}

/// What an expect rule looks for, as it judges what came.
enum Wanted<'p> {
    /// These bytes somewhere (written, or a format rendered for this check).
    Bytes(std::borrow::Cow<'p, [u8]>),
    /// A match of the regex on the bytes as they came (`rstring`).
    Regex(&'p CheckRegex),
    /// A match of the regex on the bytes written as upper-case hexadecimal (HAProxy's
    /// `rbinary` matches its `dump_binary` of the buffer).
    HexRegex {
        regex: &'p CheckRegex,
        dump: std::sync::Mutex<HexDump>,
    },
}

/// The upper-case hexadecimal of what came, extended as more comes (each byte written
/// once), up to the [`HEX_DUMP_MAX`] bytes HAProxy's dump holds.
#[derive(Default)]
struct HexDump {
    hex: Vec<u8>,
}

/// The bytes HAProxy's `dump_binary` writes into its 16 KiB trash buffer: two characters
/// each and a NUL, so 8191.
const HEX_DUMP_MAX: usize = 8191;

impl HexDump {
    /// The dump of `got` (which only grows while one rule reads).
    fn of(&mut self, got: &[u8]) -> &[u8] {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let done = self.hex.len() / 2;
        let upto = got.len().min(HEX_DUMP_MAX);
        for b in got.get(done..upto).unwrap_or_default() {
            self.hex.push(DIGITS[usize::from(b >> 4)]);
            self.hex.push(DIGITS[usize::from(b & 0xf)]);
        }
        &self.hex
    }
}

impl Wanted<'_> {
    /// The bytes HAProxy waits for before judging at all: a string's length (a regex can
    /// match any amount).
    fn min_len(&self) -> usize {
        match self {
            Wanted::Bytes(bytes) => bytes.len(),
            Wanted::Regex(_) | Wanted::HexRegex { .. } => 0,
        }
    }

    fn found(&self, got: &[u8]) -> bool {
        match self {
            Wanted::Bytes(bytes) => {
                bytes.is_empty() || got.windows(bytes.len()).any(|w| w == &**bytes)
            }
            Wanted::Regex(regex) => regex.is_match(got),
            Wanted::HexRegex { regex, dump } => {
                let mut dump = dump.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                regex.is_match(dump.of(got))
            }
        }
    }
}

/// What an expect rule looks for, its format rendered for this check; HAProxy's
/// information when the rendering gives nothing to look for.
fn tcp_pattern<'p>(
    pattern: &'p TcpPattern,
    ctx: &CheckContext<'_>,
) -> Result<Wanted<'p>, &'static str> {
    match pattern {
        TcpPattern::Bytes { bytes, .. } => Ok(Wanted::Bytes(bytes.as_slice().into())),
        TcpPattern::Regex {
            regex,
            binary: false,
        } => Ok(Wanted::Regex(regex)),
        TcpPattern::Regex {
            regex,
            binary: true,
        } => Ok(Wanted::HexRegex {
            regex,
            dump: Default::default(),
        }),
        TcpPattern::Format { format, binary } => {
            let text = ctx.render(format);
            if text.is_empty() {
                return Err("log-format string evaluated to an empty string");
            }
            if !binary {
                return Ok(Wanted::Bytes(text.into_bytes().into()));
            }
            check_format::unhex(&text)
                .map(|bytes| Wanted::Bytes(bytes.into()))
                .ok_or("Failed to parse hexastring resulting of eval of a log-format string")
        }
    }
}

/// How HAProxy names an expect rule in a timeout's information: `string 'TEXT'`, `binary
/// 'BYTES'` (the bytes themselves, printed as a C string: up to the first NUL),
/// `log-format string`, `log-format binary`.
fn expect_name(expect: &TcpExpect) -> String {
    match &expect.pattern {
        TcpPattern::Bytes { bytes, binary } => {
            let kind = if *binary { "binary" } else { "string" };
            let shown = bytes.split(|b| *b == 0).next().unwrap_or_default();
            format!("{kind} '{}'", String::from_utf8_lossy(shown))
        }
        TcpPattern::Format { binary: false, .. } => "log-format string".into(),
        TcpPattern::Format { binary: true, .. } => "log-format binary".into(),
        TcpPattern::Regex { binary: false, .. } => "regex".into(),
        TcpPattern::Regex { binary: true, .. } => "binary regex".into(),
    }
}

/// Reads a check's (or an agent's) answer into `buf` until `enough` says it holds what is
/// judged, the peer closes (a TLS peer without close_notify too), or `max` bytes came.
/// HAProxy's checks read into one buffer the same way, judging after each read.
pub(super) async fn read_answer<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    enough: impl Fn(&[u8]) -> bool,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    while buf.len() < max && !enough(buf) {
        let room = (max - buf.len()).min(chunk.len());
        let n = match io.read(&mut chunk[..room]).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// The runtime state of `sections` after HTTP defaults, loaded as `hapx-proxy -f` loads a
/// file (for the tests of the modules the checks drive).
#[cfg(test)]
pub(super) fn loaded_state(sections: &str) -> State {
    static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FILES.fetch_add(1, Relaxed);
    let path = std::env::temp_dir().join(format!("hapx-checks-{}-{n}.cfg", std::process::id()));
    let defaults = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n";
    let text = format!("{defaults}  timeout server 1s\n{sections}");
    std::fs::write(&path, text).expect("writing a configuration");
    let (config, diags) = crate::config::load(std::slice::from_ref(&path));
    let _ = std::fs::remove_file(&path);
    assert!(!diags.has_errors(), "{diags:?}");
    let budget = crate::limits::Budget {
        maxconn: 10,
        maxpipes: 0,
        maxsock: 100,
        fd_limit: 100,
    };
    State::new(config, budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::TextMatch;
    use crate::runtime::logformat::LogFormat;

    fn expect(negate: bool, kind: HttpExpectKind) -> HttpExpect {
        HttpExpect::new(negate, kind)
    }

    /// Runs `f` with the check of server `s` (at 127.0.0.1:1) of backend `be`, whose
    /// other lines are `lines`, the configuration loaded as `hapx-proxy -f` loads it.
    fn with_check<R>(lines: &str, f: impl FnOnce(&CheckContext<'_>) -> R) -> R {
        let state = loaded_state(&format!(
            "backend be\n{lines}\n  server s 127.0.0.1:1 check\n"
        ));
        let backend = state.backend("be").expect("backend be");
        f(&CheckContext::new(&state, backend, &backend.servers[0]))
    }

    fn verdict(expects: Vec<HttpExpect>, response: &[u8]) -> Result<Verdict, Verdict> {
        let group = HttpCheckGroup {
            expects,
            ..HttpCheckGroup::default()
        };
        with_check("", |ctx| {
            let resp = Response::parse(response).expect("a response");
            http_verdict(&group, &resp, false, &ctx.with_response(&resp.head))
        })
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";

    #[test]
    fn http_expectations_give_haproxy_statuses() {
        let status = |c| HttpExpectKind::Status(vec![(c, c)]);
        assert_eq!(verdict(vec![], OK).map(|v| v.0), Ok("L7OK"));
        assert_eq!(
            verdict(vec![], b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
            Err((
                "L7STS",
                Some(500),
                "Layer7 wrong status: Internal Server Error".into()
            ))
        );
        assert_eq!(
            verdict(vec![expect(false, status(200))], OK).map(|v| v.0),
            Ok("L7OK")
        );
        assert_eq!(
            verdict(vec![expect(true, status(200))], OK).unwrap_err().0,
            "L7STS"
        );
        let body = |s: &str| HttpExpectKind::String(s.into());
        assert_eq!(
            verdict(
                vec![expect(false, status(200)), expect(false, body("nope"))],
                OK
            ),
            Err((
                "L7RSP",
                None,
                "Layer7 invalid response: HTTP content check did not match".into()
            ))
        );
        assert_eq!(
            verdict(vec![expect(true, body("ok"))], OK).unwrap_err().2,
            "Layer7 invalid response: HTTP check matched unwanted content"
        );
        let rstatus = HttpExpectKind::RStatus(
            crate::config::model::CheckRegex::new("^2", crate::config::pcre::Flags::MATCH).unwrap(),
        );
        assert!(verdict(vec![expect(false, rstatus)], OK).is_ok());
        let header = |name: &str, value: Option<&str>| HttpExpectKind::Header {
            name: TextMatch::Str(name.to_ascii_lowercase()),
            value: value.map(|v| TextMatch::Str(v.into())),
            full: true,
        };
        assert!(verdict(vec![expect(false, header("content-type", None))], OK).is_ok());
        assert!(
            verdict(
                vec![expect(false, header("Content-Type", Some("text/plain")))],
                OK
            )
            .is_ok()
        );
        assert!(
            verdict(
                vec![expect(false, header("content-type", Some("text/html")))],
                OK
            )
            .is_err()
        );
    }

    #[test]
    fn disable_on_404_passes_a_404_conditionally() {
        let group = HttpCheckGroup {
            expects: vec![expect(false, HttpExpectKind::Status(vec![(200, 200)]))],
            ..HttpCheckGroup::default()
        };
        let not_found = Response::parse(b"HTTP/1.1 404 Not Found\r\n\r\n").expect("a response");
        let judge =
            |resp: &Response<'_>, nolb| with_check("", |ctx| http_verdict(&group, resp, nolb, ctx));
        assert_eq!(
            judge(&not_found, true),
            Ok((
                "L7OKC",
                Some(404),
                "Layer7 check conditionally passed".into()
            ))
        );
        // Without it (or for a server DOWN), a 404 is the expectation's failure.
        assert_eq!(judge(&not_found, false).unwrap_err().0, "L7STS");
        // Any other answer is judged as usual.
        let ok = Response::parse(OK).expect("a response");
        assert_eq!(judge(&ok, true).map(|v| v.0), Ok("L7OK"));
    }

    #[test]
    fn a_conditional_pass_puts_the_server_in_nolb_and_a_pass_ends_it() {
        use crate::config::model::{Server as ServerConf, ServerOptions};
        let conf = ServerConf {
            name: "s".into(),
            host: "127.0.0.1".into(),
            port: Some(1),
            opts: ServerOptions {
                check: true,
                rise: 2,
                fall: 2,
                weight: 1,
                ..Default::default()
            },
            place: Default::default(),
            id: 1,
            addr: Some([127, 0, 0, 1].into()),
        };
        let s = Server::new(1, "b", &conf, Arc::default());
        let result = |status: &str| CheckResult {
            status: status.into(),
            ..CheckResult::default()
        };
        // UP: NOLB at once, still usable by persistence, given nothing by the balancer.
        assert_eq!(s.record_check(true, result("L7OKC")), None);
        assert!(s.is_stopping() && s.usable() && s.lb_weight() == 0);
        assert_eq!(s.record_check(true, result("L7OK")), None);
        assert!(!s.is_stopping() && s.lb_weight() == 1);
        // DOWN, then straight into NOLB at `rise` conditional passes.
        s.record_check(true, result("L7OKC"));
        assert_eq!(s.record_check(false, result("L7STS")), None);
        assert_eq!(s.record_check(false, result("L7STS")), Some(false));
        assert!(!s.is_stopping());
        assert_eq!(s.record_check(true, result("L7OKC")), None);
        assert!(!s.is_stopping());
        assert_eq!(s.record_check(true, result("L7OKC")), Some(true));
        assert!(s.is_stopping());
    }

    #[test]
    fn a_response_is_ready_when_the_expectation_can_be_judged() {
        with_check("", |ctx| {
            let body = expect(false, HttpExpectKind::String("ok".into()));
            let ready = |buf: &[u8], e: Option<&HttpExpect>| Response::ready(buf, e, ctx);
            // The whole head, even when only the status is judged.
            assert!(!ready(b"HTTP/1.1 200 OK\r\n", None));
            assert!(!ready(b"HTTP/1.1 200 OK\r\nx-a: 1\r\n", None));
            assert!(ready(b"HTTP/1.1 200 OK\r\n\r\n", None));
            assert!(!ready(b"HTTP/1.1 200 OK\r\n\r\n", Some(&body)));
            assert!(ready(OK, Some(&body)));
            assert!(!ready(&OK[..OK.len() - 2], Some(&body)));
            // Not HTTP, or a head cut short: invalid, judged at once.
            assert!(ready(b"HTTP/1.1 200 OK\r\nbad line\r\n\r\n", Some(&body)));
            assert!(Response::parse(b"HTTP/1.1 200 OK\r\nbad line\r\n\r\n").is_none());
            assert!(Response::parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
            assert!(Response::parse(b"HTTP/1.1 200 OK\r\n").is_none());
            // A status line that cannot be HTTP is judged without waiting for the head's end.
            assert!(ready(b"garbage\n", None));
            assert!(!ready(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n", Some(&body)));
            // A match is final before the message ends; a mismatch waits for its end.
            let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok";
            assert!(ready(cut, Some(&body)));
            let chunk = |data: &[u8]| {
                [
                    &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                    data,
                ]
                .concat()
            };
            assert!(ready(&chunk(b"2\r\nok\r\n"), Some(&body)));
            assert!(!ready(&chunk(b"2\r\nno\r\n"), Some(&body)));
            assert!(ready(&chunk(b"2\r\nno\r\n0\r\n\r\n"), Some(&body)));
            let chunks = chunk(b"2\r\nno\r\n3\r\nk!\n\r\n0\r\n\r\n");
            let whole = Response::parse(&chunks).expect("a chunked response");
            assert_eq!((&*whole.body, whole.complete), (&b"nok!\n"[..], true));
            // Chunked framing that is not: invalid, judged at once.
            assert!(ready(&chunk(b"zz\r\n"), Some(&body)));
            assert!(Response::parse(&chunk(b"zz\r\n")).is_none());
        });
    }

    #[test]
    fn the_request_carries_headers_and_body() {
        let mut http = HttpCheckGroup::default();
        (http.method, http.uri) = ("POST".into(), "/healthz".into());
        http.headers
            .push(("Host".into(), LogFormat::text("api.example")));
        http.body = Some(LogFormat::text("ping"));
        let request = with_check("", |ctx| http_request(&http, None, ctx));
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "POST /healthz HTTP/1.0\r\nhost: api.example\r\ncontent-length: 4\r\n\r\nping"
        );
    }

    /// `uri-lf`, `hdr` and `body-lf` rendered per check, as HAProxy 2.6 renders them for
    /// server `s` (id 1) of backend `be` (id 1: no `stats socket` takes it): absent values
    /// write nothing (`""` quoted).
    #[test]
    fn the_request_formats_are_rendered_for_the_checked_server() {
        let lines = "  option httpchk\n  http-check send meth GET uri-lf /h?b=%b&s=%s&ci=%ci&q=%{+Q}ci \
                     hdr X-Srv \"%[srv_name] %[be_name] %[srv_id] %[be_id] %[nbsrv]\" \
                     body-lf \"at %si:%sp %[srv_name,upper]\"";
        let request = with_check(lines, |ctx| {
            let http = ctx.backend.conf.options.httpchk.as_ref().expect("httpchk");
            http_request(&http.groups[0], None, ctx)
        });
        assert_eq!(
            String::from_utf8(request).unwrap(),
            "GET /h?b=be&s=s&ci=&q=\"\" HTTP/1.0\r\nx-srv: s be 1 1 1\r\n\
             content-length: 16\r\n\r\nat 127.0.0.1:1 S"
        );
    }

    /// `on-success`/`on-error` become the check's information, with the response's fetches.
    #[test]
    fn expect_messages_are_rendered_with_the_response() {
        let lines = "  option httpchk\n  http-check expect status 200 on-success \"ok %[srv_name] %[status]\" \
                     on-error \"bad %[res.hdr(x-why)] on %s\" comment c1";
        let judge = |response: &[u8]| {
            with_check(lines, |ctx| {
                let http = ctx.backend.conf.options.httpchk.as_ref().expect("httpchk");
                let resp = Response::parse(response).expect("a response");
                http_verdict(
                    &http.groups[0],
                    &resp,
                    false,
                    &ctx.with_response(&resp.head),
                )
            })
        };
        assert_eq!(
            judge(OK),
            Ok(("L7OK", Some(200), "Layer7 check passed: ok s 200".into()))
        );
        assert_eq!(
            judge(b"HTTP/1.1 503 Busy\r\nX-Why: full\r\n\r\n"),
            Err((
                "L7STS",
                Some(503),
                "Layer7 wrong status: bad full on s comment: c1".into()
            ))
        );
    }

    /// `min-recv` on a body expectation: it is judged once that much body came, and at
    /// least the pattern's length (`min-recv 0` too), each rule at its own.
    #[test]
    fn min_recv_ends_the_wait_for_a_body_per_rule() {
        let with_min = |n| {
            let mut e = expect(false, HttpExpectKind::String("ok".into()));
            e.report.min_recv = Some(n);
            e
        };
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        let with = |body: &[u8]| [&head[..], body].concat();
        let (two, five, zero) = (with_min(2), with_min(5), with_min(0));
        with_check("", |ctx| {
            let ready = |buf: &[u8], e: &HttpExpect| Response::ready(buf, Some(e), ctx);
            assert!(!ready(&with(b"1234"), &five));
            assert!(ready(&with(b"12345"), &five));
            assert!(ready(&with(b"12"), &two));
            assert!(!ready(&with(b""), &zero));
            assert!(!ready(&with(b"1"), &zero));
            assert!(ready(&with(b"12"), &zero));
            assert!(!ready(&with(b"1"), &with_min(1)));
            let status = expect(false, HttpExpectKind::Status(vec![(200, 200)]));
            assert!(ready(&with(b""), &status));
            let whole = expect(false, HttpExpectKind::String("ok".into()));
            assert!(!ready(&with(b"12345"), &whole));
        });
    }

    /// A content match on an empty body, either way, is HAProxy's "could not find a
    /// response body".
    #[test]
    fn an_empty_body_has_no_content_to_match() {
        let empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for negate in [false, true] {
            let body = expect(negate, HttpExpectKind::String("ok".into()));
            assert_eq!(
                verdict(vec![body], empty),
                Err((
                    "L7RSP",
                    None,
                    "Layer7 invalid response: HTTP content check could not find a response body"
                        .into()
                ))
            );
        }
    }

    #[test]
    fn the_ssl_hello_is_haproxys_packet() {
        let hello = sslv3_client_hello(0x01020304);
        // A record header and 0x79 bytes of handshake: type 1, 0x75 bytes of ClientHello.
        assert_eq!(hello.len(), 5 + 0x79);
        assert_eq!(&hello[..11], &[0x16, 3, 0, 0, 0x79, 1, 0, 0, 0x75, 3, 0]);
        assert_eq!(&hello[11..15], &[1, 2, 3, 4]);
        assert_eq!(&hello[15..43], b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n");
        assert_eq!(&hello[43..46], &[0, 0, 0x4e]);
        assert_eq!(&hello[hello.len() - 2..], &[1, 0]);
    }

    /// HAProxy 2.6.12's first checks, measured: three servers at `inter 4s` start at 0,
    /// 1333 and 2667 ms (0, 200, 400 under `max-spread-checks 600`); servers at 3s, 2s,
    /// 500ms and 6s at 0, 500, 1000 and 4500 ms (0, 250, 500, 750 under 1s).
    #[test]
    fn first_checks_spread_as_haproxys() {
        let ms = Duration::from_millis;
        let delays = |inters: &[u64], max: Option<u64>| {
            let inters: Vec<Duration> = inters.iter().map(|&i| ms(i)).collect();
            first_delays(&inters, max.map(ms))
                .iter()
                .map(Duration::as_millis)
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(&[4000; 3], None), [0, 1333, 2666]);
        assert_eq!(delays(&[4000; 3], Some(600)), [0, 200, 400]);
        assert_eq!(delays(&[3000, 2000, 500, 6000], None), [0, 500, 1000, 4500]);
        assert_eq!(
            delays(&[3000, 2000, 500, 6000], Some(1000)),
            [0, 250, 500, 750]
        );
        // Below the threshold only: each check spreads over its own interval.
        assert_eq!(delays(&[500, 100], None), [0, 50]);
        assert!(delays(&[], None).is_empty());
    }

    #[test]
    fn spread_checks_stay_within_the_percentage() {
        let inter = Duration::from_secs(2);
        assert_eq!(spread_interval(inter, 0, 12345), inter);
        assert_eq!(spread_interval(inter, 10, 0), Duration::from_millis(2200));
        assert_eq!(
            spread_interval(inter, 10, u32::MAX),
            Duration::from_millis(1800)
        );
        let mid = spread_interval(inter, 50, u32::MAX / 2);
        assert!(mid.abs_diff(inter) < Duration::from_millis(1), "{mid:?}");
    }
}
