//! Receiving the PROXY protocol (`bind ... accept-proxy`): the header a load balancer in front
//! sends first, v1 (text) or v2 (binary), naming the real client. The header is consumed and
//! the client address it names replaces the TCP peer's. Also the header a health check
//! sends first ([`check_header`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line (spec: 107 bytes with CRLF).
const V1_MAX: usize = 107;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProxyHeaderError {
    #[error("no PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header")]
    Malformed,
    #[error("timeout waiting for the PROXY protocol header")]
    Timeout,
    #[error("connection closed before the PROXY protocol header")]
    Closed,
}

/// What a complete header says: its length and the source (None for LOCAL/UNKNOWN).
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub len: usize,
    pub source: Option<SocketAddr>,
}

/// Parses a header at the start of `data`; `Ok(None)` when more bytes are needed.
pub fn parse(data: &[u8]) -> Result<Option<Header>, ProxyHeaderError> {
    if data.len() >= 12 && data.starts_with(V2_SIGNATURE) {
        return parse_v2(data);
    }
    if V2_SIGNATURE.starts_with(&data[..data.len().min(12)]) && data.len() < 12 {
        return Ok(None);
    }
    if !b"PROXY ".starts_with(&data[..data.len().min(6)]) {
        return Err(ProxyHeaderError::Missing);
    }
    let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
        return if data.len() >= V1_MAX {
            Err(ProxyHeaderError::Malformed)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&data[..end]).map_err(|_| ProxyHeaderError::Malformed)?;
    let words: Vec<&str> = line.split(' ').collect();
    let source = match words.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip: IpAddr = src.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            // The destination must be valid too, as HAProxy checks it.
            let dst: IpAddr = dst.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            if ip.is_ipv4() != (*fam == "TCP4") || dst.is_ipv4() != ip.is_ipv4() {
                return Err(ProxyHeaderError::Malformed);
            }
            let port: u16 = sport.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            dport
                .parse::<u16>()
                .map_err(|_| ProxyHeaderError::Malformed)?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyHeaderError::Malformed),
    };
    Ok(Some(Header {
        len: end + 2,
        source,
    }))
}

fn parse_v2(data: &[u8]) -> Result<Option<Header>, ProxyHeaderError> {
    if data.len() < 16 {
        return Ok(None);
    }
    let (ver_cmd, family) = (data[12], data[13]);
    let len = 16 + usize::from(u16::from_be_bytes([data[14], data[15]]));
    if ver_cmd >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed);
    }
    if data.len() < len {
        return Ok(None);
    }
    let body = &data[16..len];
    let source = match (ver_cmd & 0x0f, family) {
        (0, _) => None, // LOCAL: the connection is the proxy's own (health check)
        (1, 0x11) if body.len() >= 12 => {
            let ip: [u8; 4] = body[0..4]
                .try_into()
                .map_err(|_| ProxyHeaderError::Malformed)?;
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[8], body[9]]),
            ))
        }
        (1, 0x21) if body.len() >= 36 => {
            let ip: [u8; 16] = body[0..16]
                .try_into()
                .map_err(|_| ProxyHeaderError::Malformed)?;
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[32], body[33]]),
            ))
        }
        (1, _) => None, // UNSPEC or UNIX: no usable address
        _ => return Err(ProxyHeaderError::Malformed),
    };
    Ok(Some(Header { len, source }))
}

/// The header a health check's connection starts with (the server's `send-proxy`, or
/// `check-send-proxy`), as HAProxy 2.6's `conn_send_proxy` makes it for a connection with no
/// client: v1 names the check's own connection (`local` to `peer`); v2 is a LOCAL command
/// without addresses (16 bytes), since the connection is the proxy's own.
pub fn check_header(version: u8, local: SocketAddr, peer: SocketAddr) -> Vec<u8> {
    if version >= 2 {
        let mut header = V2_SIGNATURE.to_vec();
        // Version 2, LOCAL command; family and transport UNSPEC; no address block.
        header.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        return header;
    }
    let family = match (local, peer) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => "TCP4",
        (SocketAddr::V6(_), SocketAddr::V6(_)) => "TCP6",
        _ => return b"PROXY UNKNOWN\r\n".to_vec(),
    };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        local.ip(),
        peer.ip(),
        local.port(),
        peer.port()
    )
    .into_bytes()
}

/// Reads the header from `stream` within `timeout`, consuming exactly its bytes.
pub async fn read(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 232];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, stream.peek(&mut buf)).await {
            Err(_) => return Err(ProxyHeaderError::Timeout),
            Ok(Err(_)) | Ok(Ok(0)) => return Err(ProxyHeaderError::Closed),
            Ok(Ok(n)) => n,
        };
        if let Some(h) = parse(&buf[..n])? {
            let mut sink = vec![0u8; h.len];
            stream
                .read_exact(&mut sink)
                .await
                .map_err(|_| ProxyHeaderError::Closed)?;
            return Ok(h.source);
        }
        // Part of the header is there: the rest comes in the next segment.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2() {
        let h = parse(b"PROXY TCP4 192.0.2.1 198.51.100.2 5000 443\r\nGET /")
            .unwrap()
            .unwrap();
        assert_eq!(h.len, 44);
        assert_eq!(h.source, Some("192.0.2.1:5000".parse().unwrap()));
        assert_eq!(parse(b"PROXY TCP4 192.0.2.1 198.5"), Ok(None));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap().source, None);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyHeaderError::Missing));
        assert_eq!(
            parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"),
            Err(ProxyHeaderError::Malformed)
        );
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 192, 0, 2, 1, 198, 51, 100, 2, 0x13, 0x88, 1, 187,
        ]);
        let h = parse(&v2).unwrap().unwrap();
        assert_eq!(
            (h.len, h.source),
            (28, Some("192.0.2.1:5000".parse().unwrap()))
        );
        assert_eq!(parse(&v2[..20]), Ok(None));
    }

    #[test]
    fn a_check_names_its_own_connection() {
        let (local, peer) = (
            "127.0.0.1:35884".parse().unwrap(),
            "127.0.0.1:29101".parse().unwrap(),
        );
        assert_eq!(
            check_header(1, local, peer),
            b"PROXY TCP4 127.0.0.1 127.0.0.1 35884 29101\r\n"
        );
        assert_eq!(
            check_header(2, local, peer),
            b"\r\n\r\n\0\r\nQUIT\n\x20\0\0\0".to_vec()
        );
        // What a receiver makes of it: a LOCAL connection, no client address.
        let header = parse(&check_header(2, local, peer)).unwrap().unwrap();
        assert_eq!((header.len, header.source), (16, None));
    }
}
