//! Harness for the balancing tests (`tests/tests/proxy_balance*.rs`): TCP clients that
//! connect from a chosen loopback source address and send their first bytes, and the RDP
//! Connection Requests that `balance rdp-cookie` and `persist rdp-cookie` read.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// The servers' weights in the hash tests: distinct, their greatest common divisor 1 but for
/// the map's reduction by it.
pub const WEIGHTS: [u32; 4] = [1, 2, 3, 5];

/// The `hash-type` lines compared: both methods, each hash function, with and without
/// `avalanche`.
pub const HASH_TYPES: &[&str] = &[
    "map-based",
    "map-based djb2",
    "map-based wt6",
    "map-based crc32",
    "map-based sdbm avalanche",
    "map-based djb2 avalanche",
    "consistent",
    "consistent sdbm",
    "consistent djb2",
    "consistent wt6 avalanche",
    "consistent crc32",
];

/// Part of [`HASH_TYPES`], for tests that run many algorithms on each: both methods with
/// their default function, and each with another one (one with `avalanche`).
pub const SOME_HASH_TYPES: &[&str] = &[
    "map-based",
    "map-based djb2 avalanche",
    "consistent",
    "consistent crc32",
];

/// The `global` section (an admin-level stats socket at `sock`) and the `defaults` section
/// (`mode` when not empty, the timeouts) the balancing tests' configurations start with.
pub fn config_head(sock: &Path, mode: &str) -> String {
    let mode = if mode.is_empty() {
        String::new()
    } else {
        format!("  mode {mode}\n")
    };
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n{mode}  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n",
        sock.display()
    )
}

/// `server sK ADDR weight W` lines for `addrs`, with the [`WEIGHTS`] in turn.
pub fn servers_lines(addrs: &[SocketAddr]) -> String {
    (addrs.iter().zip(WEIGHTS).enumerate())
        .map(|(i, (a, w))| format!("  server s{i} {a} weight {w}\n"))
        .collect()
}

/// Connects from loopback address `src` to `front`, sends `data` and reads the first line
/// the server writes (its name, from a [`crate::proxy::NamedServer`]); "" on failure.
pub fn ask_from(src: Ipv4Addr, front: SocketAddr, data: &[u8]) -> String {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a socket");
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))
        .expect("binding a loopback source address");
    let SocketAddr::V4(v4) = front else {
        panic!("an IPv4 frontend")
    };
    if connect(fd.as_raw_fd(), &SockaddrIn::from(v4)).is_err() {
        return String::new();
    }
    let mut conn = TcpStream::from(fd);
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if !data.is_empty() && conn.write_all(data).is_err() {
        return String::new();
    }
    let mut line = String::new();
    let _ = BufReader::new(conn).read_line(&mut line);
    line.trim().to_string()
}

/// An RDP Connection Request: a TPKT header, an X.224 CR TPDU, the line
/// `Cookie: COOKIE\r\n` when there is a cookie, then an RDP Negotiation Request (TLS).
pub fn rdp_request(cookie: Option<&str>) -> Vec<u8> {
    let mut user_data = cookie.map_or_else(Vec::new, |c| format!("Cookie: {c}\r\n").into_bytes());
    user_data.extend_from_slice(&[0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00]);
    // Length indicator (the TPDU header after it), CR code, DST-REF, SRC-REF, class 0.
    let mut tpdu = vec![6 + user_data.len() as u8, 0xe0, 0, 0, 0, 0, 0];
    tpdu.extend(user_data);
    let mut request = vec![3, 0];
    request.extend_from_slice(&(4 + tpdu.len() as u16).to_be_bytes());
    request.extend(tpdu);
    request
}

/// The `msts` routing token naming server `addr`, as a terminal server farm issues it and
/// HAProxy decodes it: the address's 32 bits as they lie in memory and the port in
/// network order, each as a decimal number, then a reserved field.
pub fn routing_token(addr: SocketAddrV4) -> String {
    let ip = u32::from_ne_bytes(addr.ip().octets());
    let port = u16::from_ne_bytes(addr.port().to_be_bytes());
    format!("msts={ip}.{port}.0000")
}
