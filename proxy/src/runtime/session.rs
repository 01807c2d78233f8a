//! One TCP-mode connection: choose a server, connect (with retries and redispatch), forward
//! both ways, count, log.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::balance::{self, NoServer};
use super::forward::{self, End, Moved};
use super::log;
use super::state::{Backend, Frontend, Server, SessionGuard, SessionTimes, State};

/// How long a connection attempt may take when `timeout connect` is not set.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A server connection slot; frees queued connections when dropped.
#[derive(Debug)]
pub struct Slot {
    _guard: SessionGuard,
    backend: Arc<Backend>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.backend.slot_freed.notify_waiters();
    }
}

/// A connected server.
#[derive(Debug)]
pub struct Connected {
    pub server: Arc<Server>,
    pub stream: TcpStream,
    pub slot: Slot,
    pub connect_time: Duration,
    pub queue_time: Duration,
}

/// Why no server connection could be made.
#[derive(Debug)]
pub enum ConnectError {
    NoServer,
    QueueTimeout,
    /// Every attempt failed; the server tried last (which the log line names) and its error.
    Failed(Arc<Server>, io::Error),
}

impl ConnectError {
    /// The server the log line names: the one tried last, else `<NOSRV>`.
    pub fn server_name(&self) -> &str {
        match self {
            ConnectError::Failed(server, _) => &server.name,
            _ => "<NOSRV>",
        }
    }
}

/// Picks a server and connects to it, retrying `retries` times; with `option redispatch`
/// the last retry (or any retry once the server is known down) goes to another server.
///
/// `has_data`: the caller holds data to send at once (a request, what the client sent).
/// With `option tcp-smart-connect` the ACK that completes the handshake then waits to leave
/// with that data, as in HAProxy; a PROXY header counts as data too. Without data the ACK
/// goes at once, so a server that speaks first is never kept waiting for it.
pub async fn connect(
    backend: &Arc<Backend>,
    peer: SocketAddr,
    local: SocketAddr,
    has_data: bool,
) -> Result<Connected, ConnectError> {
    let conf = &backend.conf;
    let timeout = conf.timeouts.connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let queued = Instant::now();
    let mut server = wait_for_server(backend, peer, None).await?;
    let queue_time = queued.elapsed();
    let mut last_err = io::Error::other("no connection attempt");
    for attempt in 0..=conf.retries {
        let slot = Slot {
            _guard: server.counters.open(),
            backend: backend.clone(),
        };
        let Some(addr) = server.socket_addr(local.port()) else {
            drop(slot);
            server = wait_for_server(backend, peer, Some(&server)).await?;
            continue;
        };
        let started = Instant::now();
        let delayed_ack =
            conf.options.tcp_smart_connect && (has_data || server.opts.send_proxy.is_some());
        let keepalive = conf.options.srvtcpka.then_some(&conf.srvtcpka);
        let opening = open_connection(addr, delayed_ack, keepalive);
        match tokio::time::timeout(timeout, opening).await {
            Ok(Ok(stream)) => {
                return Ok(Connected {
                    server,
                    stream,
                    slot,
                    connect_time: started.elapsed(),
                    queue_time,
                });
            }
            Ok(Err(e)) => last_err = e,
            Err(_) => last_err = io::Error::new(io::ErrorKind::TimedOut, "connect timeout"),
        }
        drop(slot);
        server.counters.conn_errors.fetch_add(1, Relaxed);
        if attempt == conf.retries {
            break;
        }
        let last_retry = attempt + 1 == conf.retries;
        if conf.options.redispatch && (last_retry || !server.usable()) {
            let next = wait_for_server(backend, peer, Some(&server)).await?;
            if !Arc::ptr_eq(&next, &server) {
                server.counters.redispatches.fetch_add(1, Relaxed);
                backend.counters.redispatches.fetch_add(1, Relaxed);
            }
            server = next;
        } else {
            server.counters.retries.fetch_add(1, Relaxed);
            backend.counters.retries.fetch_add(1, Relaxed);
            // HAProxy's turn-around before retrying the same server.
            tokio::time::sleep(timeout.min(Duration::from_secs(1))).await;
        }
    }
    backend.counters.conn_errors.fetch_add(1, Relaxed);
    Err(ConnectError::Failed(server, last_err))
}

/// Connects to `addr` with TCP_NODELAY set, HAProxy's way: socket, setsockopt, connect.
/// `delayed_ack`: TCP_QUICKACK off, so the handshake's last ACK leaves with the first data.
///
/// Unlike tokio's `TcpStream::connect`, a successful connection costs no SO_ERROR query:
/// epoll reports a failed one as an error or hang-up, and only then is the error fetched.
/// `keepalive`: TCP keep-alive probes (`option srvtcpka`).
async fn open_connection(
    addr: SocketAddr,
    delayed_ack: bool,
    keepalive: Option<&crate::config::model::Keepalive>,
) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    let _ = socket.set_tcp_nodelay(true);
    if delayed_ack {
        // Only a saved packet is at stake: on failure the ACK goes on its own, as usual.
        let _ = socket.set_tcp_quickack(false);
    }
    if let Some(ka) = keepalive {
        // Probes only detect dead peers sooner: a failure leaves the connection usable.
        let _ = super::listener::set_keepalive(socket2::SockRef::from(&socket), ka);
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(socket.into())?;
    let ready = stream.ready(tokio::io::Interest::WRITABLE).await?;
    if ready.is_write_closed() || ready.is_error() {
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        return Err(stream.take_error()?.unwrap_or_else(refused));
    }
    Ok(stream)
}

/// A server for the client, waiting in the queue while all are full (`timeout queue`).
async fn wait_for_server(
    backend: &Arc<Backend>,
    peer: SocketAddr,
    avoid: Option<&Arc<Server>>,
) -> Result<Arc<Server>, ConnectError> {
    let conf = &backend.conf;
    let limit = conf
        .timeouts
        .queue
        .or(conf.timeouts.connect)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let deadline = Instant::now() + limit;
    loop {
        let freed = backend.slot_freed.notified();
        match balance::pick(backend, peer.ip(), avoid) {
            Ok(s) => return Ok(s),
            Err(NoServer::NoneUsable) => return Err(ConnectError::NoServer),
            Err(NoServer::AllFull) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ConnectError::QueueTimeout);
                }
                // A freed slot wakes us; the short cap covers a wake-up that raced the pick.
                let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), freed).await;
            }
        }
    }
}

/// The PROXY protocol header (v1 text or v2 binary) describing the client connection, when
/// the server wants one (`send-proxy`, `send-proxy-v2`): the first bytes it must receive.
pub fn proxy_header(server: &Server, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    match server.opts.send_proxy {
        None => Vec::new(),
        Some(1) => proxy_v1(src, dst).into_bytes(),
        Some(_) => proxy_v2(src, dst),
    }
}

fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> String {
    let (src, dst) = (canonical(src), canonical(dst));
    let family = if src.is_ipv4() && dst.is_ipv4() {
        "TCP4"
    } else {
        "TCP6"
    };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
}

fn proxy_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = (canonical(src), canonical(dst));
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY command
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.ip().octets());
            h.extend_from_slice(&d.ip().octets());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
                SocketAddr::V6(v6) => *v6.ip(),
            };
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(s).octets());
            h.extend_from_slice(&v6(d).octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

/// IPv4-mapped IPv6 addresses as plain IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// Serves one TCP-mode client connection to its end.
pub async fn serve_tcp(
    state: Arc<State>,
    fe: Arc<Frontend>,
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) {
    let accepted = Instant::now();
    let date = if fe.logger.is_empty() {
        String::new()
    } else {
        log::accept_date()
    };
    let _fe_session = fe.counters.open();
    let Some(backend) = fe.backend.clone() else {
        return;
    };
    let _be_session = backend.counters.open();
    // With tcp-smart-connect, what the client sent already leaves with the handshake's ACK.
    let early = if backend.conf.options.tcp_smart_connect {
        match forward::read_early(&client) {
            Ok(data) => data,
            Err(_) => return,
        }
    } else {
        Vec::new()
    };
    let mut conn = match connect(&backend, peer, local, !early.is_empty()).await {
        Ok(c) => c,
        Err(e) => {
            let flags = match e {
                ConnectError::NoServer => "SC",
                ConnectError::QueueTimeout => "sQ",
                ConnectError::Failed(..) => "SC",
            };
            tcp_log(
                &fe,
                &backend.name,
                e.server_name(),
                peer,
                &date,
                accepted,
                -1,
                0,
                flags,
            );
            return;
        }
    };
    // The PROXY header and what the client sent already, in one packet.
    let mut first = proxy_header(&conn.server, peer, local);
    first.extend_from_slice(&early);
    if conn.stream.write_all(&first).await.is_err() {
        return;
    }
    let idle = forward::IdleTimeouts::new(&fe.conf.timeouts, &backend.conf.timeouts);
    let moved = Moved::default();
    moved.to_server.fetch_add(early.len() as u64, Relaxed);
    let end = forward::forward(&client, &conn.stream, idle, state.splice, &moved).await;
    if matches!(end, End::Error(_)) && !moved.server_closed.load(Relaxed) {
        // As HAProxy: a connection that failed (the client reset it) is reset on the server
        // side too, instead of ending with a FIN the server would take for a clean end of
        // request; and the proxy's source port is not held in TIME_WAIT.
        let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
    }
    let (up, down) = (moved.to_server.load(Relaxed), moved.to_client.load(Relaxed));
    for c in [&fe.counters, &backend.counters, &conn.server.counters] {
        c.bytes_in.fetch_add(up, Relaxed);
        c.bytes_out.fetch_add(down, Relaxed);
    }
    state.bytes_out.fetch_add(down, Relaxed);
    let flags = match end {
        End::Done => "--",
        End::Timeout => "cD",
        End::Error(_) => "SD",
    };
    let times = SessionTimes {
        queue: Some(conn.queue_time),
        connect: Some(conn.connect_time),
        response: None,
        total: accepted.elapsed(),
    };
    for c in [&backend.counters, &conn.server.counters] {
        c.record_session(&times, flags);
    }
    let ct = conn.connect_time.as_millis() as i64;
    tcp_log(
        &fe,
        &backend.name,
        &conn.server.name,
        peer,
        &date,
        accepted,
        ct,
        down,
        flags,
    );
}

#[allow(clippy::too_many_arguments)]
fn tcp_log(
    fe: &Frontend,
    backend: &str,
    server: &str,
    peer: SocketAddr,
    date: &str,
    accepted: Instant,
    connect_ms: i64,
    bytes: u64,
    flags: &str,
) {
    if fe.logger.is_empty() || fe.conf.options.tcplog.is_none() && fe.conf.options.httplog.is_none()
    {
        return;
    }
    if fe.conf.options.dontlognull && bytes == 0 && flags == "--" {
        return;
    }
    let total = accepted.elapsed().as_millis();
    let line = format!(
        "{}:{} [{date}] {} {backend}/{server} 0/{connect_ms}/{total} {bytes} {flags} {}/{}/0/0/0 0/0",
        peer.ip(),
        peer.port(),
        fe.name,
        fe.counters.cur.load(Relaxed),
        fe.counters.cur.load(Relaxed),
    );
    fe.logger.send(log::LOG_INFO, &line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_headers() {
        let src: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let dst: SocketAddr = "[::ffff:198.51.100.2]:443".parse().unwrap();
        assert_eq!(
            proxy_v1(src, dst),
            "PROXY TCP4 192.0.2.1 198.51.100.2 5000 443\r\n"
        );
        let v2 = proxy_v2(src, dst);
        assert_eq!(v2.len(), 16 + 12);
        assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
    }
}
