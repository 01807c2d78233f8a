//! Listening sockets: bound with `SO_REUSEADDR`, `SO_REUSEPORT` (so a new process can bind
//! beside an old one during a reload) and `IP_FREEBIND` (so the VIP can be bound before the
//! IPaddr2 agent moves it to this node, as with `net.ipv4.ip_nonlocal_bind=1`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::model::Bind;

/// Backlog when the bind line does not say.
const DEFAULT_BACKLOG: i32 = 1024;

/// Binds and listens on `bind`'s address.
pub fn open(bind: &Bind) -> io::Result<std::net::TcpListener> {
    let addr = bind.addr;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(bind.v6only)?;
    }
    set_freebind(&socket, addr);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let backlog = bind
        .backlog
        .map_or(DEFAULT_BACKLOG, |b| i32::try_from(b).unwrap_or(i32::MAX));
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A listening socket received from an old process, as a std listener.
pub fn adopt(fd: OwnedFd) -> io::Result<std::net::TcpListener> {
    let socket = Socket::from(fd);
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The local address of a listening socket.
pub fn local_addr(fd: &OwnedFd) -> Option<SocketAddr> {
    socket2::SockRef::from(fd).local_addr().ok()?.as_socket()
}

fn set_freebind(socket: &Socket, addr: SocketAddr) {
    let (level, name) = if addr.is_ipv6() {
        (libc::IPPROTO_IPV6, libc::IPV6_FREEBIND)
    } else {
        (libc::IPPROTO_IP, libc::IP_FREEBIND)
    };
    let one: libc::c_int = 1;
    // SAFETY: a valid socket, a pointer to an int and its size. Failure is harmless: binding
    // a local address works without it.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
