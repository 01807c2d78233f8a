//! Runtime DNS for servers with `resolvers NAME`: a small DNS client over UDP to the section's
//! nameservers (A/AAAA queries, `resolve_retries` attempts of `timeout retry` each), re-run
//! every `timeout resolve`. A new answer moves the server to the new address; after a failure
//! the last good address is kept for the section's `hold <status>` period, then the server
//! loses its address (MAINT (resolution)) until a resolution succeeds again.
//!
//! Hand-written rather than a resolver crate because HAProxy's semantics (these nameservers
//! only, these retries and holds, no system configuration) are the whole point, and the wire
//! format for two record types is small.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::UdpSocket;

use super::state::{Server, State};
use crate::config::model::Resolvers;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_CNAME: u16 = 5;

/// Why a resolution failed; the names are the `hold` statuses.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    #[error("NX domain")]
    Nx,
    #[error("query refused")]
    Refused,
    #[error("timeout")]
    Timeout,
    #[error("invalid or empty response")]
    Other,
}

impl DnsError {
    pub fn hold_status(self) -> &'static str {
        match self {
            DnsError::Nx => "nx",
            DnsError::Refused => "refused",
            DnsError::Timeout => "timeout",
            DnsError::Other => "other",
        }
    }
}

/// Starts one resolution task per server that names a resolvers section.
pub fn spawn_all(state: &Arc<State>) {
    for backend in &state.backends {
        for server in &backend.servers {
            let Some(name) = &server.opts.resolvers else {
                continue;
            };
            let Some(resolvers) = state.config.resolvers(name).cloned() else {
                continue;
            };
            if server.host.parse::<IpAddr>().is_ok() {
                continue;
            }
            tokio::spawn(resolve_loop(state.clone(), resolvers, server.clone()));
        }
    }
}

async fn resolve_loop(state: Arc<State>, resolvers: Resolvers, server: Arc<Server>) {
    let mut last_valid = Instant::now();
    let nameservers = nameservers(&resolvers);
    loop {
        match resolve(
            &nameservers,
            &resolvers,
            &server.host,
            server.opts.resolve_prefer_v6,
        )
        .await
        {
            Ok(ips) => {
                last_valid = Instant::now();
                let current = server.addr();
                // Keep the current address while it is still in the answer.
                if current.is_none_or(|c| !ips.contains(&c)) {
                    let new = ips[0];
                    eprintln!(
                        "[NOTICE]   ({}) : {}/{} changed its IP from {} to {new} by DNS resolution.",
                        std::process::id(),
                        server.backend,
                        server.name,
                        current.map_or("(none)".to_string(), |c| c.to_string())
                    );
                    server.set_addr(Some(new));
                }
            }
            Err(e) => {
                state.failed_resolutions.fetch_add(1, Relaxed);
                if server.addr().is_some()
                    && last_valid.elapsed() >= resolvers.hold(e.hold_status())
                {
                    eprintln!(
                        "[WARNING]  ({}) : {}/{} is going DOWN for maintenance ({}).",
                        std::process::id(),
                        server.backend,
                        server.name,
                        e
                    );
                    server.set_addr(None);
                }
            }
        }
        tokio::time::sleep(resolvers.timeout_resolve).await;
    }
}

fn nameservers(r: &Resolvers) -> Vec<SocketAddr> {
    let mut list: Vec<SocketAddr> = r.nameservers.iter().map(|(_, a)| *a).collect();
    if r.parse_resolv_conf {
        if let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") {
            list.extend(text.lines().filter_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("nameserver"))
                    .then(|| w.next()?.parse::<IpAddr>().ok())
                    .flatten()
                    .map(|ip| SocketAddr::new(ip, 53))
            }));
        }
    }
    list
}

/// Resolves `host`: the preferred family first, the other when it has no address.
pub async fn resolve(
    nameservers: &[SocketAddr],
    r: &Resolvers,
    host: &str,
    prefer_v6: bool,
) -> Result<Vec<IpAddr>, DnsError> {
    let order = if prefer_v6 {
        [TYPE_AAAA, TYPE_A]
    } else {
        [TYPE_A, TYPE_AAAA]
    };
    let mut first_err = DnsError::Other;
    for (i, qtype) in order.into_iter().enumerate() {
        match query_with_retries(nameservers, r, host, qtype).await {
            Ok(ips) if !ips.is_empty() => return Ok(ips),
            Ok(_) => {}
            Err(e) if i == 0 => first_err = e,
            Err(_) => {}
        }
    }
    Err(first_err)
}

async fn query_with_retries(
    nameservers: &[SocketAddr],
    r: &Resolvers,
    host: &str,
    qtype: u16,
) -> Result<Vec<IpAddr>, DnsError> {
    let mut err = DnsError::Timeout;
    for attempt in 0..r.resolve_retries.max(1) {
        for ns in nameservers {
            let id = (std::process::id() as u16)
                ^ (attempt as u16).wrapping_mul(7919)
                ^ (Instant::now().elapsed().subsec_nanos() as u16);
            match query(*ns, host, qtype, id, r.timeout_retry).await {
                Ok(ips) => return Ok(ips),
                Err(e @ (DnsError::Nx | DnsError::Refused)) => return Err(e),
                Err(e) => err = e,
            }
        }
    }
    Err(err)
}

/// One query to one nameserver.
pub async fn query(
    ns: SocketAddr,
    host: &str,
    qtype: u16,
    id: u16,
    timeout: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let bind: SocketAddr = if ns.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).await.map_err(|_| DnsError::Other)?;
    sock.connect(ns).await.map_err(|_| DnsError::Other)?;
    let packet = encode_query(id, host, qtype).ok_or(DnsError::Other)?;
    sock.send(&packet).await.map_err(|_| DnsError::Other)?;
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return Err(DnsError::Refused),
            Err(_) => return Err(DnsError::Timeout),
        };
        match decode_response(&buf[..n], id, qtype) {
            Some(result) => return result,
            None => continue, // not our answer: keep waiting
        }
    }
}

/// A standard recursive query for one name.
pub fn encode_query(id: u16, host: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut p = Vec::with_capacity(32 + host.len());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in host.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    Some(p)
}

/// The addresses of a response to query `id`; `None` when the packet is not that response.
pub fn decode_response(p: &[u8], id: u16, qtype: u16) -> Option<Result<Vec<IpAddr>, DnsError>> {
    if p.len() < 12 || u16::from_be_bytes([p[0], p[1]]) != id || p[2] & 0x80 == 0 {
        return None;
    }
    match p[3] & 0x0f {
        0 => {}
        3 => return Some(Err(DnsError::Nx)),
        5 => return Some(Err(DnsError::Refused)),
        _ => return Some(Err(DnsError::Other)),
    }
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(p, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        at = skip_name(p, at)?;
        let field = |i: usize| {
            p.get(at + i..at + i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let (rtype, len) = (field(0)?, usize::from(field(8)?));
        let data = p.get(at + 10..at + 10 + len)?;
        match (rtype, len) {
            (TYPE_A, 4) if qtype == TYPE_A => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?))
            }
            (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                ips.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?))
            }
            (TYPE_CNAME, _) | (_, _) => {}
        }
        at += 10 + len;
    }
    Some(Ok(ips))
}

/// The offset just after the (possibly compressed) name at `at`.
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_handmade_answer() {
        let q = encode_query(0x1234, "kube-mast01", TYPE_A).unwrap();
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1; // one answer
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10]);
        assert_eq!(
            decode_response(&r, 0x1234, TYPE_A),
            Some(Ok(vec![IpAddr::from([192, 0, 2, 10])]))
        );
        assert_eq!(decode_response(&r, 0x9999, TYPE_A), None);
        r[3] = 0x83;
        assert_eq!(decode_response(&r, 0x1234, TYPE_A), Some(Err(DnsError::Nx)));
        assert!(encode_query(1, "a..b", TYPE_A).is_none());
    }
}
