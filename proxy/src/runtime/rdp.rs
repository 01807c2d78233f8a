//! RDP cookies, read from a TCP client's first bytes as HAProxy 2.6 reads them
//! (`fetch_rdp_cookie_name` of `src/payload.c`, `tcp_persist_rdp_cookie` of
//! `src/backend.c`).
//!
//! An RDP client opens with a Connection Request: a TPKT header (4 bytes), an X.224 CR
//! TPDU (7 bytes), then, optionally, one line `Cookie: NAME=VALUE\r\n`. HAProxy checks
//! nothing of the headers: the line is looked for at byte 11, and only the first cookie
//! counts. Its value feeds `balance rdp-cookie` (the `mstshash` user name, hashed), the
//! `req.rdp_cookie` fetches, and `persist rdp-cookie`: a `msts` routing token,
//! `ADDR.PORT.RESERVED`, is the address and port of the server that holds the client's
//! session, each a decimal number of its bytes in network order, which HAProxy reads with
//! `strtoul` and compares with the servers' addresses in memory ([`token_server`]).

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::sync::Arc;

use super::persist::Overrides;
use super::state::{Backend, Server};

/// Where the cookie line starts: after the TPKT header and the X.224 CR TPDU.
const COOKIE_AT: usize = 11;

/// What the first bytes of a connection say of an RDP cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cookie {
    /// The value's place in the bytes (maybe empty).
    Found(Range<usize>),
    /// There is none, and more bytes would not change that.
    Absent,
    /// Too few bytes to tell yet.
    Incomplete,
}

/// The RDP cookie `name` (case-insensitive; any cookie for None) in `data`, the bytes a
/// client sent first, byte for byte as `fetch_rdp_cookie_name`.
pub fn cookie(data: &[u8], name: Option<&[u8]>) -> Cookie {
    if data.len() <= COOKIE_AT + 7 {
        return Cookie::Incomplete;
    }
    if !data[COOKIE_AT..COOKIE_AT + 7].eq_ignore_ascii_case(b"Cookie:") {
        return Cookie::Absent;
    }
    let mut at = COOKIE_AT + 7;
    while data.get(at) == Some(&b' ') {
        at += 1;
    }
    match name.filter(|n| !n.is_empty()) {
        Some(name) => {
            if data.len() - at <= name.len() {
                return Cookie::Incomplete;
            }
            let named = data[at..at + name.len()].eq_ignore_ascii_case(name);
            if data[at + name.len()] != b'=' || !named {
                return Cookie::Absent;
            }
            at += name.len() + 1;
        }
        None => {
            // Any name: up to the first '=', on this line.
            match data[at..]
                .iter()
                .position(|&c| matches!(c, b'=' | b'\r' | b'\n'))
            {
                Some(i) if data[at + i] == b'=' => at += i + 1,
                Some(_) => return Cookie::Absent,
                None => return Cookie::Incomplete,
            }
        }
    }
    let start = at;
    let end = data[at..]
        .iter()
        .position(|&c| c == b'\r')
        .map_or(data.len(), |i| at + i);
    match data.get(end..end + 2) {
        None => Cookie::Incomplete,
        Some(b"\r\n") => Cookie::Found(start..end),
        Some(_) => Cookie::Absent,
    }
}

/// The value of `name` when found and not empty: what `balance rdp-cookie` hashes and
/// `persist rdp-cookie` decodes (an empty one counts as none).
pub fn value(data: &[u8], name: &str) -> Option<Range<usize>> {
    match cookie(data, Some(name.as_bytes())) {
        Cookie::Found(range) if !range.is_empty() => Some(range),
        _ => None,
    }
}

/// `over` (what a backend's `use-server` rules decided), with the server the routing token
/// in `data` names when no rule named one (`persist rdp-cookie`, HAProxy's
/// `tcp_persist_rdp_cookie`, which runs when no server is assigned yet).
pub fn persist(mut over: Overrides, backend: &Backend, data: &[u8]) -> Overrides {
    if over.server.is_none() {
        over.server = token_server(backend, data);
    }
    over
}

/// `persist rdp-cookie`: the server the backend's routing-token cookie names in `data`, the
/// first with that IPv4 address and service port that is usable (or any with `option
/// persist`); None without such a cookie or server.
pub fn token_server(backend: &Backend, data: &[u8]) -> Option<Arc<Server>> {
    let name = backend.conf.persist_rdp_cookie.as_deref()?;
    let range = value(data, name)?;
    // As HAProxy, the numbers are read from the buffer, the value's end not being marked:
    // what follows it ("\r\n") ends them.
    let (addr, port) = routing_token(&data[range.start..])?;
    let persist = backend.conf.options.persist;
    backend
        .servers
        .iter()
        .find(|s| {
            s.addr() == Some(IpAddr::V4(addr))
                && s.service_port().number() == port
                && (s.usable() || persist)
        })
        .cloned()
}

/// `ADDR.PORT.` at the start of `text` as `tcp_persist_rdp_cookie` reads it on this host:
/// `ADDR` taken as an `in_addr`'s 32 bits in memory, `PORT` as a port in network order
/// (`ntohs`), each number truncated to its type as C does.
fn routing_token(text: &[u8]) -> Option<(Ipv4Addr, u16)> {
    let (addr, rest) = strtoul(text);
    let rest = rest.strip_prefix(b".")?;
    let (port, rest) = strtoul(rest);
    if rest.first() != Some(&b'.') {
        return None;
    }
    let addr = Ipv4Addr::from((addr as u32).to_ne_bytes());
    Some((addr, u16::from_be(port as u16)))
}

/// C's `strtoul(text, &end, 10)`: leading white space, a sign (a minus negates, modulo
/// 2^64), the digits (saturated at the maximum); the value and what follows it (all of
/// `text` when there is no digit).
fn strtoul(text: &[u8]) -> (u64, &[u8]) {
    let mut at = text
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(text.len());
    let negative = match text.get(at) {
        Some(b'-') => {
            at += 1;
            true
        }
        Some(b'+') => {
            at += 1;
            false
        }
        _ => false,
    };
    let digits = text[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return (0, text);
    }
    let parsed = text[at..at + digits].iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let value = match parsed {
        None => u64::MAX,
        Some(n) if negative => n.wrapping_neg(),
        Some(n) => n,
    };
    (value, &text[at + digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Connection Request (TPKT, X.224 CR) with `line` after the TPDU header.
    fn request(line: &[u8]) -> Vec<u8> {
        let mut tpdu = vec![6 + line.len() as u8, 0xe0, 0, 0, 0, 0, 0];
        tpdu.extend_from_slice(line);
        let mut out = vec![3, 0];
        out.extend_from_slice(&(4 + tpdu.len() as u16).to_be_bytes());
        out.extend(tpdu);
        out
    }

    fn found<'d>(data: &'d [u8], name: Option<&str>) -> Option<&'d [u8]> {
        match cookie(data, name.map(str::as_bytes)) {
            Cookie::Found(r) => Some(&data[r]),
            _ => None,
        }
    }

    #[test]
    fn the_first_cookie_is_read_as_haproxy_reads_it() {
        let data = request(b"Cookie: mstshash=alice\r\n\x01\x00\x08\x00\x03\x00\x00\x00");
        assert_eq!(found(&data, Some("mstshash")), Some(&b"alice"[..]));
        // The name in any case; any name without one.
        assert_eq!(found(&data, Some("MSTSHASH")), Some(&b"alice"[..]));
        assert_eq!(found(&data, None), Some(&b"alice"[..]));
        assert_eq!(cookie(&data, Some(b"msts")), Cookie::Absent);
        // Spaces after the colon; the keyword in any case.
        let data = request(b"cOOKIE:   msts=1.2.3\r\n");
        assert_eq!(found(&data, Some("msts")), Some(&b"1.2.3"[..]));
        // No cookie line, or a line not ended by CRLF.
        assert_eq!(
            cookie(&request(b"\x01\x00\x08\x00\x03\x00\x00\x00"), None),
            Cookie::Absent
        );
        assert_eq!(cookie(&request(b"Cookie: a=b\rx"), None), Cookie::Absent);
        assert_eq!(cookie(&request(b"Cookie: ab\r\n"), None), Cookie::Absent);
    }

    #[test]
    fn a_truncated_request_is_incomplete_until_the_line_ends() {
        let data = request(b"Cookie: mstshash=alice\r\n");
        for cut in 0..data.len() - 1 {
            assert_eq!(
                cookie(&data[..cut], Some(b"mstshash")),
                Cookie::Incomplete,
                "{cut} bytes"
            );
        }
        assert!(matches!(cookie(&data, None), Cookie::Found(_)));
    }

    #[test]
    fn any_bytes_give_a_value_on_one_line_or_none() {
        let base = request(b"Cookie: msts=16777343.15629.0000\r\n\x01\x00\x08\x00");
        for at in 0..base.len() {
            for byte in [0, b'\r', b'\n', b'=', b' ', b'.', b'-', b'9', 0xff] {
                let mut data = base.clone();
                data[at] = byte;
                for name in [None, Some(&b"msts"[..]), Some(&b"x"[..])] {
                    for len in [at, data.len()] {
                        let data = &data[..len];
                        if let Cookie::Found(r) = cookie(data, name) {
                            assert!(r.end + 2 <= data.len(), "{data:?}");
                            assert!(!data[r.clone()].contains(&b'\r'), "{data:?}");
                            assert_eq!(&data[r.end..r.end + 2], b"\r\n");
                            let _ = routing_token(&data[r.start..]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn routing_tokens_decode_as_strtoul_and_the_host_order_make_them() {
        // 127.0.0.1 is 0x0100007f read from memory on a little-endian host; port 3389
        // (0x0d3d) in network order, read as a number, 0x3d0d.
        let addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let port = 3389u16.to_be();
        let token = format!("{addr}.{port}.0000\r\n");
        assert_eq!(
            routing_token(token.as_bytes()),
            Some((Ipv4Addr::new(127, 0, 0, 1), 3389))
        );
        assert_eq!(routing_token(b"1.2"), None);
        assert_eq!(routing_token(b"x.2.3"), None);
        // A number too large for its type keeps its low bits, as C's conversions.
        let wide = u64::from(addr) + (7 << 32);
        let token = format!("{wide}.{}.", u64::from(port) + (1 << 16));
        assert_eq!(
            routing_token(token.as_bytes()),
            Some((Ipv4Addr::new(127, 0, 0, 1), 3389))
        );
        assert_eq!(strtoul(b" -1."), (u64::MAX, &b"."[..]));
        assert_eq!(strtoul(b"99999999999999999999999x"), (u64::MAX, &b"x"[..]));
        assert_eq!(strtoul(b" +x"), (0, &b" +x"[..]));
    }
}
