//! Health checks: every `inter` (or `fastinter` while changing state, `downinter` while
//! down), each server with `check` is probed. A server goes DOWN after `fall` failed checks in
//! a row and UP after `rise` good ones; DOWN servers get no new connections.
//!
//! Probes: a TCP connect (default); `tcp-check` rules (connect/send/expect); `option httpchk`
//! (request, then the status line against `http-check expect status` or 2xx/3xx).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::log;
use super::state::{Admin, Backend, CheckResult, Server, State, now_secs};
use crate::config::model::{HttpCheck, TcpCheckRule};

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
            if let Some(up) = server.record_check(ok, result) {
                report_transition(&backend, &server, up);
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

fn report_transition(backend: &Backend, server: &Server, up: bool) {
    let check = server.check.lock().map(|c| c.clone()).unwrap_or_default();
    let state = if up { "UP" } else { "DOWN" };
    let msg = format!(
        "Server {}/{} is {state}, reason: {}, check duration: {}ms. {} active and {} backup servers online. 0 sessions requeued, 0 total in queue.",
        backend.name,
        server.name,
        check.desc,
        check.duration_ms.unwrap_or(0),
        backend.active_count(),
        backend.backup_count(),
    );
    backend
        .logger
        .send(if up { log::LOG_NOTICE } else { log::LOG_ALERT }, &msg);
    eprintln!("[WARNING]  ({}) : {msg}", std::process::id());
    if !up && !backend.is_up() {
        backend.down_transitions.fetch_add(1, Relaxed);
        backend.last_change.store(now_secs(), Relaxed);
        let msg = format!("backend '{}' has no server available!", backend.name);
        backend.logger.send(log::LOG_ALERT, &msg);
        eprintln!("[ALERT]    ({}) : {msg}", std::process::id());
    }
}

/// One probe: whether it passed, and the result for the stats page.
pub async fn probe(backend: &Backend, server: &Server) -> (bool, CheckResult) {
    let conf = &backend.conf;
    let timeout = conf.timeouts.check.unwrap_or(server.opts.inter);
    let connect_timeout = conf.timeouts.connect.map_or(timeout, |c| c.min(timeout));
    let started = Instant::now();
    let outcome = if let Some(http) = &conf.options.httpchk {
        http_probe(server, http, connect_timeout, timeout).await
    } else if conf.options.tcp_check && !conf.tcp_checks.is_empty() {
        tcp_check_probe(server, &conf.tcp_checks, connect_timeout, timeout).await
    } else {
        connect(server, None, connect_timeout)
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

fn check_addr(server: &Server, port: Option<u16>) -> Option<SocketAddr> {
    let ip = server.opts.check_addr.or_else(|| server.addr())?;
    let port = port.or(server.check_port()).or(server.port())?;
    Some(SocketAddr::new(ip, port))
}

async fn connect(
    server: &Server,
    port: Option<u16>,
    timeout: Duration,
) -> Result<TcpStream, Verdict> {
    let addr = check_addr(server, port).ok_or((
        "L4CON",
        None,
        "No port available for the TCP connection".to_string(),
    ))?;
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err((
            "L4CON",
            None,
            format!("Layer4 connection problem: {}", os_reason(&e)),
        )),
        Err(_) => Err(("L4TOUT", None, "Layer4 timeout".into())),
    }
}

fn os_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        _ => e.to_string(),
    }
}

async fn http_probe(
    server: &Server,
    http: &HttpCheck,
    ct: Duration,
    timeout: Duration,
) -> Result<Verdict, Verdict> {
    let mut stream = connect(server, None, ct).await?;
    let mut req = format!("{} {} {}\r\n", http.method, http.uri, http.version);
    if let Some(host) = &http.host {
        req.push_str(&format!("Host: {host}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    let exchange = async {
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        while !buf.contains(&b'\n') && buf.len() < 4096 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(("L7RSP", None, format!("Layer7 invalid response: {e}"))),
        Err(_) => return Err(("L7TOUT", None, "Layer7 timeout".into())),
    };
    let line = String::from_utf8_lossy(&buf);
    let code = line
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or(("L7RSP", None, "Layer7 invalid response".to_string()))?;
    let good = match &http.expect_status {
        Some(ranges) => ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&code)),
        None => (200..400).contains(&code),
    };
    if good {
        Ok(("L7OK", Some(code), "Layer7 check passed".into()))
    } else {
        Err(("L7STS", Some(code), "Layer7 wrong status".into()))
    }
}

async fn tcp_check_probe(
    server: &Server,
    rules: &[TcpCheckRule],
    ct: Duration,
    timeout: Duration,
) -> Result<Verdict, Verdict> {
    let deadline = Instant::now() + timeout;
    let mut stream = None;
    let mut received: Vec<u8> = Vec::new();
    let mut last = ("L4OK", None, "Layer4 check passed".to_string());
    // Without a leading connect rule, the check connects to the server first.
    if !matches!(rules.first(), Some(TcpCheckRule::Connect { .. })) {
        stream = Some(connect(server, None, ct).await?);
    }
    for (step, rule) in rules.iter().enumerate() {
        let step = step + 1;
        match rule {
            TcpCheckRule::Connect { port } => {
                stream = Some(connect(server, *port, ct).await?);
                received.clear();
            }
            TcpCheckRule::Send(bytes) => {
                let s = stream.as_mut().ok_or((
                    "L7RSP",
                    None,
                    format!("TCPCHK send at step {step}: not connected"),
                ))?;
                s.write_all(bytes)
                    .await
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
                let s = stream.as_mut().ok_or((
                    "L7RSP",
                    None,
                    format!("TCPCHK expect at step {step}: not connected"),
                ))?;
                let found = read_until(s, &mut received, pattern, deadline).await;
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
                    return Err((
                        "L7RSP",
                        None,
                        format!("TCPCHK did not match content at step {step}"),
                    ));
                }
                last = ("L7OK", None, "Layer7 check passed".into());
            }
        }
    }
    Ok(last)
}

/// Reads until `received` contains `pattern` (Some(true)), the peer closes (Some(false)), or
/// the deadline passes (None).
async fn read_until(
    s: &mut TcpStream,
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
