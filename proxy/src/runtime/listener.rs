//! Listening sockets: bound with `SO_REUSEADDR`, `SO_REUSEPORT` (so a new process can bind
//! beside an old one during a reload) and `IP_FREEBIND` (so the VIP can be bound before the
//! IPaddr2 agent moves it to this node, as with `net.ipv4.ip_nonlocal_bind=1`), and tuned
//! for what the frontend's clients do first ([`AcceptTuning`]).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::model::{Bind, Keepalive, Proxy};

/// The listen() queue of `bind` in `proxy`, as HAProxy sizes it: the bind line's `backlog`,
/// else the proxy's `backlog`, else its `maxconn`, else the process's `maxconn`.
pub fn backlog(bind: &Bind, proxy: &Proxy, process_maxconn: usize) -> i32 {
    let conns = bind
        .backlog
        .or(proxy.backlog)
        .map(|b| b as usize)
        .or(proxy.maxconn)
        .unwrap_or(process_maxconn);
    i32::try_from(conns).unwrap_or(i32::MAX)
}

/// How a listening socket treats new connections, set on every socket of a bind (new or
/// inherited from an old process, whose configuration may have said otherwise). Accepted
/// connections always get TCP_NODELAY, as HAProxy sets it on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptTuning {
    /// `option tcp-smart-accept` (automatic in HTTP mode): the ACK of a client's request is
    /// delayed (TCP_QUICKACK off, which accepted sockets inherit) so that it leaves with the
    /// response instead of in a packet of its own; the kernel still sends it after 40 ms.
    pub delayed_ack: bool,
    /// `defer-accept`: a connection is accepted once data arrives (TCP_DEFER_ACCEPT, 1 s).
    pub defer_accept: bool,
    /// `option nolinger`: SO_LINGER 0, which accepted sockets inherit, so a connection
    /// closed before the client closed resets instead (as HAProxy sets it on its listeners).
    pub nolinger: bool,
}

impl AcceptTuning {
    /// The tuning a frontend's configuration asks for on one of its bind lines.
    pub fn new(frontend: &Proxy, bind: &Bind) -> Self {
        AcceptTuning {
            delayed_ack: frontend.smart_accept(),
            defer_accept: bind.defer_accept,
            nolinger: frontend.options.nolinger,
        }
    }

    fn apply(self, socket: &Socket) -> io::Result<()> {
        // Accepted sockets inherit TCP_NODELAY: one setsockopt(2) here instead of one per
        // connection (HAProxy makes that one per connection).
        socket.set_tcp_nodelay(true)?;
        socket.set_tcp_quickack(!self.delayed_ack)?;
        // Also undoes the linger an old process's configuration set on an inherited socket.
        socket.set_linger(self.nolinger.then_some(std::time::Duration::ZERO))?;
        // HAProxy's one second: the kernel rounds it up to its next SYN-ACK retransmission.
        let defer_secs = libc::c_int::from(self.defer_accept);
        set_int(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            defer_secs,
        )
    }
}

/// Turns TCP keep-alive probes on for a connection (`option clitcpka`/`srvtcpka`), with the
/// `*tcpka-cnt/idle/intvl` settings that are given (the others stay the system's).
pub fn set_keepalive(socket: socket2::SockRef<'_>, ka: &Keepalive) -> io::Result<()> {
    socket.set_keepalive(true)?;
    let mut params = socket2::TcpKeepalive::new();
    if let Some(idle) = ka.idle {
        params = params.with_time(idle);
    }
    if let Some(interval) = ka.interval {
        params = params.with_interval(interval);
    }
    if let Some(count) = ka.count {
        params = params.with_retries(count);
    }
    if *ka != Keepalive::default() {
        socket.set_tcp_keepalive(&params)?;
    }
    Ok(())
}

/// Binds and listens on `bind`'s address with a queue of `backlog` (see [`backlog`]).
pub fn open(bind: &Bind, backlog: i32, tuning: AcceptTuning) -> io::Result<std::net::TcpListener> {
    let addr = bind.addr;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(bind.v6only)?;
    }
    set_freebind(&socket, addr);
    // A failure was warned about once for the bind (`warn_device`): as HAProxy, the
    // listener then serves every interface.
    if let Some(interface) = &bind.interface {
        let _ = socket.bind_device(Some(interface.as_bytes()));
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    tuning.apply(&socket)?;
    Ok(socket.into())
}

/// `bind ... interface NAME`: HAProxy's warning when its sockets cannot be bound to that
/// device (no such interface, no privilege), printed once per bind. The same setsockopt(2)
/// is tried on a throwaway socket, so the error is the one `open` meets.
pub fn warn_device(bind: &Bind, owner: &Proxy) {
    let Some(interface) = &bind.interface else {
        return;
    };
    let probe = Socket::new(Domain::for_address(bind.addr), Type::STREAM, None)
        .and_then(|socket| socket.bind_device(Some(interface.as_bytes())));
    if let Err(e) = probe {
        crate::process::say!(
            "[WARNING]  ({}) : Binding [{}] for {} {}: cannot bind receiver to device '{interface}' ({}) for [{}:{}]",
            std::process::id(),
            bind.place,
            owner.kind.type_str(),
            owner.name,
            super::errno_text(&e),
            bind.addr.ip(),
            bind.addr.port(),
        );
    }
}

/// Readies a socket received from an old process to serve here: non-blocking, this
/// configuration's tuning, and listen(2) with this configuration's `backlog`. On a listening
/// socket that only changes the queue's size; a socket the old process had paused
/// (`disable frontend` shuts it down) listens again. It stays the caller's until every
/// socket is ready, then becomes a listener with `TcpListener::from`.
pub fn adopt(fd: &OwnedFd, backlog: i32, tuning: AcceptTuning) -> io::Result<()> {
    let socket = socket2::SockRef::from(fd);
    socket.set_nonblocking(true)?;
    socket.listen(backlog)?;
    tuning.apply(&socket)
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
    // Failure is harmless: binding a local address works without it.
    let _ = set_int(socket, level, name, 1);
}

/// Accepts one connection from a non-blocking listening socket, the new socket already
/// non-blocking and close-on-exec (accept4(2), one call as tokio's own accept), with the
/// peer's address. `WouldBlock` when none is queued.
pub fn accept(listener: &std::net::TcpListener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    let fd = listener.as_raw_fd();
    // SAFETY: accept4 on a valid socket writes at most `len` bytes of address into the
    // storage socket2 hands over, and a descriptor it returns is new and ours alone.
    let (stream, peer) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            let conn = libc::accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if conn < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(std::net::TcpStream::from(OwnedFd::from_raw_fd(conn)))
            }
        })
    }?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::other("accepted a connection with no IP address"))?;
    Ok((stream, peer))
}

/// Whether a connection waits in a listening socket's accept queue (poll(2), nothing taken).
pub fn has_queued(listener: &std::net::TcpListener) -> bool {
    let mut fds = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    // An error says nothing: count it as queued, accept(2) tells.
    n != 0 && (n < 0 || fds.revents & libc::POLLIN != 0)
}

/// setsockopt(2) of an int option socket2 has no setter for.
fn set_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid socket, a pointer to an int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
