//! Health checks: every `inter` (or `fastinter` while changing state, `downinter` while
//! down), each server with `check` is probed. A server goes DOWN after `fall` failed checks in
//! a row and UP after `rise` good ones; DOWN servers get no new connections.
//!
//! Probes: a TCP connect (default); `tcp-check` rules (connect/send/expect); `option httpchk`
//! with its `http-check` rules (connect, send, then every expect in order, or 2xx/3xx);
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
use crate::config::model::{CheckConnect, HttpCheck, HttpExpectKind, TcpCheckRule};

/// Starts one check task per checked server.
pub fn spawn_all(state: &Arc<State>) {
    for backend in &state.backends {
        let checked: Vec<&Arc<Server>> = backend.servers.iter().filter(|s| s.opts.check).collect();
        let n = checked.len() as u32;
        for (k, server) in checked.into_iter().enumerate() {
            // Spread the first checks over the interval, as HAProxy does.
            let first = server.opts.inter.min(Duration::from_millis(500)) * (k as u32) / n.max(1);
            let spread = state.config.global.spread_checks;
            tokio::spawn(check_loop(backend.clone(), server.clone(), first, spread));
        }
    }
}

/// `spread`: `spread-checks`, the +/- percentage each interval varies by.
async fn check_loop(backend: Arc<Backend>, server: Arc<Server>, first: Duration, spread: u8) {
    tokio::time::sleep(first).await;
    // Seeded per server and start, so servers checked at one interval drift apart.
    let mut random = (now_secs() ^ ((server.id as u64) << 32)) | 1;
    loop {
        if server.admin() != Admin::Maint && server.addr().is_some() {
            let (ok, result) = probe(&backend, &server).await;
            let before = transitions::CheckBefore::of(&server);
            let changed = server.record_check(ok, result);
            if backend.conf.options.log_health_checks {
                transitions::report_check_result(&backend, &server, ok, &before);
            }
            if let Some(up) = changed {
                transitions::report_check(&backend, &server, up);
                shutdown::on_marked(&backend, &server, up);
                track::follow(&server, up);
            }
        }
        let jitter = super::balance::next_random(&mut random) as u32;
        let interval = spread_interval(next_interval(&server), spread, jitter);
        tokio::time::sleep(interval).await;
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
pub async fn probe(backend: &Backend, server: &Server) -> (bool, CheckResult) {
    let conf = &backend.conf;
    let timeout = conf.timeouts.check.unwrap_or(server.opts.inter);
    let connect_timeout = conf.timeouts.connect.map_or(timeout, |c| c.min(timeout));
    let started = Instant::now();
    let t = Timing {
        connect: connect_timeout,
        deadline: started + connect_timeout + timeout,
        check: timeout,
    };
    let outcome = if let Some(http) = &conf.options.httpchk {
        http_probe(server, http, &t).await
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
struct Timing {
    connect: Duration,
    check: Duration,
    deadline: Instant,
}

impl Timing {
    fn left(&self) -> Duration {
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
fn os_reason(e: &std::io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        return nix::errno::Errno::from_raw(code).desc().to_string();
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        _ => e.to_string(),
    }
}

/// The request an `option httpchk` check sends.
fn http_request(http: &HttpCheck) -> Vec<u8> {
    let mut req = format!("{} {} {}\r\n", http.method, http.uri, http.version);
    for (name, value) in &http.headers {
        req.push_str(&format!("{name}: {value}\r\n"));
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

async fn http_probe(server: &Server, http: &HttpCheck, t: &Timing) -> Result<Verdict, Verdict> {
    let mut conn = connect(server, http.connect.as_ref(), t).await?;
    let needs_body = http.expects.iter().any(|e| {
        matches!(
            e.kind,
            HttpExpectKind::String(_) | HttpExpectKind::RString(_)
        )
    });
    let exchange = async {
        conn.io.write_all(&http_request(http)).await?;
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
        Err(_) => return Err(("L7TOUT", None, "Layer7 timeout".into())),
    };
    let resp = Response::parse(&buf).ok_or(("L7RSP", None, "Layer7 invalid response".into()))?;
    http_verdict(http, &resp)
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

/// Runs the expectations in order, with HAProxy's statuses: a status or header mismatch is
/// L7STS (described by the reason phrase), a content mismatch L7RSP.
fn http_verdict(http: &HttpCheck, resp: &Response<'_>) -> Result<Verdict, Verdict> {
    let code = Some(resp.code);
    let wrong_status = || {
        (
            "L7STS",
            code,
            format!("Layer7 wrong status: {}", resp.reason()),
        )
    };
    if http.expects.is_empty() && !(200..400).contains(&resp.code) {
        return Err(wrong_status());
    }
    for expect in &http.expects {
        let body = String::from_utf8_lossy(resp.body);
        let matched = match &expect.kind {
            HttpExpectKind::Status(ranges) => ranges
                .iter()
                .any(|(low, high)| (*low..=*high).contains(&resp.code)),
            HttpExpectKind::RStatus(re) => re.is_match(&resp.code.to_string()),
            HttpExpectKind::String(s) => body.contains(s.as_str()),
            HttpExpectKind::RString(re) => re.is_match(&body),
            HttpExpectKind::Header { name, value } => resp.head.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name) && value.as_ref().is_none_or(|want| v == want)
            }),
        };
        if matched == expect.negate {
            let content = matches!(
                expect.kind,
                HttpExpectKind::String(_) | HttpExpectKind::RString(_)
            );
            return Err(match (content, expect.negate) {
                (true, false) => (
                    "L7RSP",
                    None,
                    "Layer7 invalid response: HTTP content check did not match".into(),
                ),
                (true, true) => (
                    "L7RSP",
                    None,
                    "Layer7 invalid response: HTTP check matched unwanted content".into(),
                ),
                (false, _) => wrong_status(),
            });
        }
    }
    Ok(("L7OK", code, "Layer7 check passed".into()))
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
    use crate::config::model::HttpExpect;

    fn expect(negate: bool, kind: HttpExpectKind) -> HttpExpect {
        HttpExpect { negate, kind }
    }

    fn verdict(expects: Vec<HttpExpect>, response: &[u8]) -> Result<Verdict, Verdict> {
        let mut http = HttpCheck::default_request();
        http.expects = expects;
        http_verdict(&http, &Response::parse(response).expect("a response"))
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
            name: name.into(),
            value: value.map(str::to_string),
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
        let mut http = HttpCheck::default_request();
        (http.method, http.uri) = ("POST".into(), "/healthz".into());
        http.headers.push(("Host".into(), "api.example".into()));
        http.body = Some("ping".into());
        assert_eq!(
            String::from_utf8(http_request(&http)).unwrap(),
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
