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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{self, Framing, Head};
use super::state::{Admin, Backend, CheckResult, Server, State, now_secs};
use super::{shutdown, tls, track, transitions};
use crate::config::model::{
    CheckConnect, HttpCheck, HttpCheckGroup, HttpExpect, HttpExpectKind, TcpCheckRule,
};

/// Starts one check task per checked server.
pub fn spawn_all(state: &Arc<State>) {
    let node: Arc<str> = match &state.config.global.node {
        Some(node) => node.as_str().into(),
        None => super::log::cached_hostname().into(),
    };
    for backend in &state.backends {
        let checked: Vec<&Arc<Server>> = backend.servers.iter().filter(|s| s.opts.check).collect();
        let n = checked.len() as u32;
        for (k, server) in checked.into_iter().enumerate() {
            // Spread the first checks over the interval, as HAProxy does.
            let first = server.opts.inter.min(Duration::from_millis(500)) * (k as u32) / n.max(1);
            let spread = state.config.global.spread_checks;
            let task = check_loop(backend.clone(), server.clone(), node.clone(), first, spread);
            tokio::spawn(task);
        }
    }
    super::agent::spawn_all(state);
}

/// `node`: the process's name in `http-check send-state`'s header; `spread`:
/// `spread-checks`, the +/- percentage each interval varies by.
async fn check_loop(
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
            let (ok, result) = probe(&backend, &server, &node).await;
            let before = transitions::CheckBefore::of(&server);
            let was = transitions::HealthBefore::of(&backend, &server);
            let changed = server.record_check(ok, result);
            if backend.conf.options.log_health_checks {
                transitions::report_check_result(&backend, &server, ok, &before);
            }
            let check = server.check.lock().map(|c| c.clone()).unwrap_or_default();
            let why = transitions::check_reason(&backend, &check);
            if let Some(up) = transitions::report_health(&backend, &server, was, &why) {
                shutdown::on_marked(&backend, &server, up);
            }
            if let Some(up) = changed {
                track::follow(&server, up);
            }
        }
        let jitter = super::balance::next_random(&mut random) as u32;
        let interval = spread_interval(next_interval(&server), spread, jitter);
        pause(&server, interval).await;
    }
}

/// Waits `interval` before the next check, or less when the server leaves maintenance (as
/// HAProxy, it starts UP at `rise` and is checked at once) or when `observe` saw errors:
/// the next check then comes `fastinter` from now if that is sooner (HAProxy's
/// `__health_adjust`).
async fn pause(server: &Server, interval: Duration) {
    let mut deadline = tokio::time::Instant::now() + interval;
    let in_maint = server.admin() == Admin::Maint;
    let changed = server.queue_waker();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            () = changed.notified() => {
                if in_maint && server.admin() != Admin::Maint {
                    return;
                }
            }
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

/// One probe: whether it passed, and the result for the stats page.
pub async fn probe(backend: &Backend, server: &Server, node: &str) -> (bool, CheckResult) {
    let conf = &backend.conf;
    let started = Instant::now();
    let t = Timing::starting(backend, server.opts.inter);
    let outcome = if let Some(http) = &conf.options.httpchk {
        let state =
            (conf.options.http_check_send_state).then(|| server_state(backend, server, node));
        // HAProxy takes a 404 as "stopping" only from a server not DOWN.
        let nolb_on_404 = conf.options.http_check_disable_on_404 && server.is_up();
        http_probe(server, http, state.as_deref(), nolb_on_404, &t).await
    } else if conf.options.ssl_hello_chk {
        ssl_hello_probe(server, &t).await
    } else if conf.options.tcp_check && !conf.tcp_checks.is_empty() {
        tcp_check_probe(server, &conf.tcp_checks, &t).await
    } else {
        connect(server, None, &t)
            .await
            .map(|_| ("L4OK", None, "Layer4 check passed".to_string()))
    };
    let duration_ms = Some(started.elapsed().as_millis() as u64);
    let (ok, (status, code, desc)) = match outcome {
        Ok(pass) => (true, pass),
        Err(fail) => (false, fail),
    };
    (
        ok,
        CheckResult {
            status: status.into(),
            code,
            duration_ms,
            desc,
            at: now_secs(),
        },
    )
}

/// (status, code, description) of a probe.
type Verdict = (&'static str, Option<u16>, String);

/// A check's time limits: `timeout connect` (at most the check's), and the check's own
/// (`timeout check`, else `inter`) for what follows, up to `deadline`.
#[derive(Debug)]
pub(super) struct Timing {
    pub(super) connect: Duration,
    check: Duration,
    deadline: Instant,
}

impl Timing {
    /// The limits of a check (or an agent's) run every `inter`, starting now.
    pub(super) fn starting(backend: &Backend, inter: Duration) -> Timing {
        let timeouts = &backend.conf.timeouts;
        let check = timeouts.check.unwrap_or(inter);
        let connect = timeouts.connect.map_or(check, |c| c.min(check));
        Timing {
            connect,
            check,
            deadline: Instant::now() + connect + check,
        }
    }

    pub(super) fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A check's connection, plain or TLS.
trait CheckIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> CheckIo for T {}

/// A connected check; the socket is reset on drop unless the rule said `linger`, as
/// HAProxy closes its checks.
struct CheckConn {
    io: Box<dyn CheckIo>,
}

fn check_addr(server: &Server, rule: Option<&CheckConnect>) -> Option<SocketAddr> {
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

/// Connects as `rule` says (none: as the server says), with TLS when the rule has `ssl`, or
/// when the server's checks use TLS (`check-ssl`, `ssl`) and the rule is implicit or
/// `default`.
async fn connect(
    server: &Server,
    rule: Option<&CheckConnect>,
    t: &Timing,
) -> Result<CheckConn, Verdict> {
    let addr = check_addr(server, rule).ok_or((
        "L4CON",
        None,
        "No port available for the TCP connection".to_string(),
    ))?;
    let stream = match tokio::time::timeout(t.connect, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err((
                "L4CON",
                None,
                format!("Layer4 connection problem: {}", os_reason(&e)),
            ));
        }
        Err(_) => return Err(("L4TOUT", None, "Layer4 timeout".into())),
    };
    if !rule.is_some_and(|r| r.linger) {
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    let tls = &server.opts.tls;
    let server_default = rule.is_none_or(|r| r.default);
    let use_tls = rule.is_some_and(|r| r.ssl) || (server_default && tls.check_uses_ssl());
    if !use_tls {
        return Ok(CheckConn {
            io: Box::new(stream),
        });
    }
    let Some(client) = &tls.client else {
        return Err((
            "L6RSP",
            None,
            "Layer6 invalid response: SSL handshake failure".into(),
        ));
    };
    let sni = rule
        .and_then(|r| r.sni.as_deref())
        .or(tls.check_sni.as_deref());
    let alpn = rule
        .and_then(|r| r.alpn.as_deref())
        .or(tls.check_alpn.as_deref());
    let connector = client.connector(sni, alpn);
    match tls::handshake(&connector, addr.ip(), stream, t.check.min(t.left())).await {
        Ok(s) => Ok(CheckConn { io: Box::new(s) }),
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

/// The request an `option httpchk` check group sends; `state`: `http-check send-state`'s
/// header value.
fn http_request(http: &HttpCheckGroup, state: Option<&str>) -> Vec<u8> {
    let mut req = format!("{} {} {}\r\n", http.method, http.uri, http.version);
    for (name, value) in &http.headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(state) = state {
        req.push_str(&format!("X-Haproxy-Server-State: {state}\r\n"));
    }
    if let Some(body) = &http.body {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    if let Some(body) = &http.body {
        req.push_str(body);
    }
    req.into_bytes()
}

/// The most of a response a check reads (HAProxy's buffer size).
const RESPONSE_MAX: usize = 16 * 1024;

/// Runs the groups in order, each on its own connection; the first failure is the check's,
/// and when all pass the last one's verdict is. `nolb_on_404`: `http-check disable-on-404`
/// for a server UP (see [`http_verdict`]).
async fn http_probe(
    server: &Server,
    http: &HttpCheck,
    state: Option<&str>,
    nolb_on_404: bool,
    t: &Timing,
) -> Result<Verdict, Verdict> {
    let mut last = Err(("L7RSP", None, "Layer7 invalid response".to_string()));
    for group in &http.groups {
        last = Ok(http_group(server, group, state, nolb_on_404, t).await?);
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
    server: &Server,
    group: &HttpCheckGroup,
    state: Option<&str>,
    nolb_on_404: bool,
    t: &Timing,
) -> Result<Verdict, Verdict> {
    let mut conn = connect(server, group.connect.as_ref(), t).await?;
    let needs_body = group.expects.iter().any(|e| {
        matches!(
            e.kind,
            HttpExpectKind::String(_) | HttpExpectKind::RString(_)
        )
    });
    let exchange = async {
        conn.io.write_all(&http_request(group, state)).await?;
        conn.io.flush().await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        while buf.len() < RESPONSE_MAX && !Response::complete(&buf, needs_body) {
            let n = match conn.io.read(&mut chunk).await {
                Ok(n) => n,
                // A TLS server closing without close_notify: what came is the response.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(t.left(), exchange).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(socket_error(&e)),
        // The first expectation is the rule waiting for the response.
        Err(_) => {
            let status = (group.expects.first())
                .and_then(|e| e.tout_status)
                .unwrap_or("L7TOUT");
            return Err(verdict(status, None, ""));
        }
    };
    let resp = Response::parse(&buf).ok_or(("L7RSP", None, "Layer7 invalid response".into()))?;
    http_verdict(group, &resp, nolb_on_404)
}

/// A check's HTTP response: its head, parsed and checked by the proxy's own parser (as
/// HAProxy's checks use its HTTP/1 parser: a status line alone, a head cut by the close or a
/// malformed header line is an invalid response), and as much of the body as was read.
#[derive(Debug)]
struct Response<'a> {
    code: u16,
    head: Head,
    body: &'a [u8],
}

impl<'a> Response<'a> {
    /// Whether `buf` holds what the expectations need: the whole head, and the body to its
    /// Content-Length when a body is checked (else to the close). A head that cannot be
    /// parsed is judged at once.
    fn complete(buf: &[u8], needs_body: bool) -> bool {
        let Some(end) = http::find_head_end(buf) else {
            return false;
        };
        if !needs_body {
            return true;
        }
        match Response::parse(buf) {
            Some(r) => match r.head.framing {
                Framing::Length(len) => (buf.len() - end) as u64 >= len,
                _ => false,
            },
            None => true,
        }
    }

    fn parse(buf: &'a [u8]) -> Option<Self> {
        let end = http::find_head_end(buf)?;
        let head = http::parse_head(&buf[..end], false).ok()?;
        let code = head.first[1].parse().ok()?;
        Some(Response {
            code,
            head,
            body: &buf[end..],
        })
    }

    fn reason(&self) -> &str {
        &self.head.first[2]
    }
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

/// Runs the expectations in order, with HAProxy's statuses: a status or header mismatch is
/// L7STS (described by the reason phrase), a content mismatch L7RSP; the rule's
/// `error-status`, `on-error` and `comment` change what a failure reports, the last rule's
/// `ok-status` and `on-success` what a pass does. With `nolb_on_404` (`http-check
/// disable-on-404`, the server UP) a 404 skips the expectations and passes conditionally,
/// L7OKC without information, as HAProxy's `tcpcheck_main` ends such a check.
fn http_verdict(
    group: &HttpCheckGroup,
    resp: &Response<'_>,
    nolb_on_404: bool,
) -> Result<Verdict, Verdict> {
    let code = Some(resp.code);
    if nolb_on_404 && resp.code == 404 {
        return Ok(verdict("L7OKC", code, ""));
    }
    if group.expects.is_empty() && !(200..400).contains(&resp.code) {
        return Err(verdict("L7STS", code, resp.reason()));
    }
    for expect in &group.expects {
        if expect_matches(expect, resp) == expect.negate {
            return Err(expect_failure(expect, resp));
        }
    }
    let last = group.expects.last();
    let status = last.and_then(|e| e.ok_status).unwrap_or("L7OK");
    let info = last.and_then(|e| e.on_success.as_deref()).unwrap_or("");
    Ok(verdict(status, code, info))
}

fn expect_matches(expect: &HttpExpect, resp: &Response<'_>) -> bool {
    let body = || String::from_utf8_lossy(resp.body);
    match &expect.kind {
        HttpExpectKind::Status(ranges) => ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&resp.code)),
        HttpExpectKind::RStatus(re) => re.is_match(&resp.code.to_string()),
        HttpExpectKind::String(s) => body().contains(s.as_str()),
        HttpExpectKind::RString(re) => re.is_match(&body()),
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
fn expect_failure(expect: &HttpExpect, resp: &Response<'_>) -> Verdict {
    let content = matches!(
        expect.kind,
        HttpExpectKind::String(_) | HttpExpectKind::RString(_)
    );
    let (status, info) = match (content, expect.negate) {
        (true, false) => ("L7RSP", "HTTP content check did not match"),
        (true, true) => ("L7RSP", "HTTP check matched unwanted content"),
        (false, _) => ("L7STS", resp.reason()),
    };
    let status = expect.error_status.unwrap_or(status);
    let mut info = expect.on_error.as_deref().unwrap_or(info).to_string();
    if let Some(comment) = &expect.comment {
        info.push_str(&format!(" comment: {comment}"));
    }
    verdict(status, Some(resp.code), &info)
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
    let mut conn = connect(server, None, t).await?;
    let exchange = async {
        conn.io
            .write_all(&sslv3_client_hello(now_secs() as u32))
            .await?;
        conn.io.flush().await?;
        let mut got = Vec::new();
        let mut chunk = [0u8; 512];
        while got.len() < 5 {
            let n = conn.io.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
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

async fn tcp_check_probe(
    server: &Server,
    rules: &[TcpCheckRule],
    t: &Timing,
) -> Result<Verdict, Verdict> {
    let mut conn = None;
    let mut received: Vec<u8> = Vec::new();
    let mut last = ("L4OK", None, "Layer4 check passed: (tcp-check)".to_string());
    // Without a leading connect rule, the check connects to the server first.
    if !matches!(rules.first(), Some(TcpCheckRule::Connect(_))) {
        conn = Some(connect(server, None, t).await?);
    }
    for (step, rule) in rules.iter().enumerate() {
        let step = step + 1;
        match rule {
            TcpCheckRule::Connect(c) => {
                conn = Some(connect(server, Some(c), t).await?);
                received.clear();
            }
            TcpCheckRule::Send(bytes) => {
                let c = conn.as_mut().ok_or((
                    "L7RSP",
                    None,
                    format!("TCPCHK send at step {step}: not connected"),
                ))?;
                let sent = async {
                    c.io.write_all(bytes).await?;
                    c.io.flush().await
                };
                sent.await
                    .map_err(|e| ("L7RSP", None, format!("TCPCHK send at step {step}: {e}")))?;
            }
            TcpCheckRule::ExpectString {
                text: pattern,
                negate,
            }
            | TcpCheckRule::ExpectBinary {
                bytes: pattern,
                negate,
            } => {
                let c = conn.as_mut().ok_or((
                    "L7RSP",
                    None,
                    format!("TCPCHK expect at step {step}: not connected"),
                ))?;
                let found = read_until(&mut c.io, &mut received, pattern, t.deadline).await;
                let found = match found {
                    Some(f) => f,
                    None if *negate => false,
                    None => {
                        return Err((
                            "L7TOUT",
                            None,
                            format!("Layer7 timeout: at step {step} of tcp-check (expect)"),
                        ));
                    }
                };
                if found == *negate {
                    let shown = match rule {
                        TcpCheckRule::ExpectString { .. } => {
                            String::from_utf8_lossy(pattern).into_owned()
                        }
                        _ => pattern.iter().map(|b| format!("{b:02X}")).collect(),
                    };
                    let what = if *negate {
                        "matched unwanted"
                    } else {
                        "did not match"
                    };
                    return Err((
                        "L7RSP",
                        None,
                        format!(
                            "Layer7 invalid response: TCPCHK {what} content '{shown}' at step {step}"
                        ),
                    ));
                }
                last = ("L7OK", Some(0), "Layer7 check passed: (tcp-check)".into());
            }
        }
    }
    Ok(last)
}

/// Reads until `received` contains `pattern` (Some(true)), the peer closes (Some(false)), or
/// the deadline passes (None).
async fn read_until(
    s: &mut Box<dyn CheckIo>,
    received: &mut Vec<u8>,
    pattern: &[u8],
    deadline: Instant,
) -> Option<bool> {
    let contains =
        |hay: &[u8]| pattern.is_empty() || hay.windows(pattern.len()).any(|w| w == pattern);
    let mut chunk = [0u8; 1024];
    while !contains(received) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(false),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
        if received.len() > 64 * 1024 {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::TextMatch;

    fn expect(negate: bool, kind: HttpExpectKind) -> HttpExpect {
        HttpExpect::new(negate, kind)
    }

    fn verdict(expects: Vec<HttpExpect>, response: &[u8]) -> Result<Verdict, Verdict> {
        let group = HttpCheckGroup {
            expects,
            ..HttpCheckGroup::default()
        };
        http_verdict(
            &group,
            &Response::parse(response).expect("a response"),
            false,
        )
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
        let rstatus = HttpExpectKind::RStatus(regex::Regex::new("^2").unwrap());
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
        assert_eq!(
            http_verdict(&group, &not_found, true),
            Ok((
                "L7OKC",
                Some(404),
                "Layer7 check conditionally passed".into()
            ))
        );
        // Without it (or for a server DOWN), a 404 is the expectation's failure.
        assert_eq!(
            http_verdict(&group, &not_found, false).unwrap_err().0,
            "L7STS"
        );
        // Any other answer is judged as usual.
        let ok = Response::parse(OK).expect("a response");
        assert_eq!(http_verdict(&group, &ok, true).map(|v| v.0), Ok("L7OK"));
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
    fn a_response_is_complete_when_the_expectations_can_be_judged() {
        // The whole head, even when only the status is judged.
        assert!(!Response::complete(b"HTTP/1.1 200 OK\r\n", false));
        assert!(!Response::complete(b"HTTP/1.1 200 OK\r\nx-a: 1\r\n", false));
        assert!(Response::complete(b"HTTP/1.1 200 OK\r\n\r\n", false));
        assert!(!Response::complete(b"HTTP/1.1 200 OK\r\n\r\n", true));
        assert!(Response::complete(OK, true));
        assert!(!Response::complete(&OK[..OK.len() - 1], true));
        // Not HTTP, or a head cut short: invalid, judged at once.
        assert!(Response::complete(
            b"HTTP/1.1 200 OK\r\nbad line\r\n\r\n",
            true
        ));
        assert!(Response::parse(b"HTTP/1.1 200 OK\r\nbad line\r\n\r\n").is_none());
        assert!(Response::parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
        assert!(Response::parse(b"HTTP/1.1 200 OK\r\n").is_none());
    }

    #[test]
    fn the_request_carries_headers_and_body() {
        let mut http = HttpCheckGroup::default();
        (http.method, http.uri) = ("POST".into(), "/healthz".into());
        http.headers.push(("Host".into(), "api.example".into()));
        http.body = Some("ping".into());
        assert_eq!(
            String::from_utf8(http_request(&http, None)).unwrap(),
            "POST /healthz HTTP/1.0\r\nHost: api.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping"
        );
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
