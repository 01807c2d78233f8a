//! What rules ask of a client's socket itself: its IP TOS and mark (`set-tos`,
//! `set-mark`), and an end the client never hears of (`silent-drop`), as HAProxy sets
//! them, failures ignored (a socket option the system refuses changes nothing else).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::net::TcpStream;

/// Sets the IP TOS (IPv4) or traffic class (IPv6) of what goes to the client.
pub fn set_tos(client: &TcpStream, tos: u32) {
    let socket = socket2::SockRef::from(client);
    let set = match client.peer_addr() {
        Ok(SocketAddr::V6(_)) => socket.set_tclass_v6(tos),
        _ => socket.set_tos_v4(tos),
    };
    drop(set);
}

/// Sets the socket's `SO_MARK` (needs `CAP_NET_ADMIN`).
pub fn set_mark(client: &TcpStream, mark: u32) {
    drop(socket2::SockRef::from(client).set_mark(mark));
}

/// Sets what the rules asked of `client`'s TOS and mark (`set-tos`, `set-mark`), if they
/// asked.
pub fn set_options(client: &TcpStream, tos: Option<u32>, mark: Option<u32>) {
    if let Some(tos) = tos {
        set_tos(client, tos);
    }
    if let Some(mark) = mark {
        set_mark(client, mark);
    }
}

/// Readies `client` for a close that sends it nothing, as HAProxy's
/// `tcp_exec_action_silent_drop`: what came is acknowledged first (not to have it sent
/// again to a closed socket, which would answer with a reset), then the socket goes to
/// `TCP_REPAIR` mode (root only), in which its close sends nothing, else its reset gets a
/// TTL of 1. The caller then drops it.
pub fn silent_drop(client: &TcpStream) {
    let socket = socket2::SockRef::from(client);
    drop(socket.set_tcp_quickack(true));
    if !tcp_repair(client) {
        let set = match client.peer_addr() {
            Ok(SocketAddr::V6(_)) => socket.set_unicast_hops_v6(1),
            _ => socket.set_ttl_v4(1),
        };
        drop(set);
    }
    drop(socket.set_linger(Some(Duration::ZERO)));
}

/// Puts `stream` in `TCP_REPAIR` mode; false when the system refuses (not root).
fn tcp_repair(stream: &TcpStream) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option of the size given.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_REPAIR,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    set == 0
}
