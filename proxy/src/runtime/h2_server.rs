//! HTTP/2 to servers (`server ... proto h2`, or `ssl` with ALPN choosing `h2`), as HAProxy
//! 2.6 speaks it: each request is one stream of the server connection.
//!
//! The per-request code of [`super::http`] writes a request in HTTP/1.1 and reads its
//! response in HTTP/1.1 whatever the server speaks, so a server connection that speaks
//! HTTP/2 is a [`Link`] inside its `Conn`: the request's head written to it is parsed back
//! and sent as HEADERS (its target as `:path` and `host` as a header, as HAProxy's
//! `h2s_bck_make_req_headers` sends an origin-form request: see [`request`]; lower-case
//! names; the connection's own headers dropped),
//! its body, in its HTTP/1 framing, goes as DATA (the data of its chunks), as the stream's
//! window allows, and a chunked body's trailers as a last HEADERS. The response's 1xx
//! interim HEADERS are relayed as HTTP/1.1 heads; its final HEADERS are read as an HTTP/1.1
//! head, its `content-length` kept, else `transfer-encoding: chunked` with each DATA frame
//! a chunk and its trailers in the last one (as HAProxy's H1 layer writes a body of unknown
//! length to an HTTP/1.1 client, even one that ends with its HEADERS: then its last chunk
//! at once). So rules, logs, counters and errors are the HTTP/1 code's (the
//! logged size less those added framing fields: [`Link::head_added`]).
//!
//! The connection's frames (SETTINGS, flow control, HPACK, PING, GOAWAY) are the `h2`
//! crate's, driven by a task of their own that owns the socket's I/O (through TLS when
//! it is a `server ... ssl` one); the `Conn` keeps the socket shared, for its addresses
//! and the kill registry (a kill shuts the socket: the streams on it fail). A new stream
//! waits for the server's `SETTINGS_MAX_CONCURRENT_STREAMS` (the crate's `poll_ready`).
//! The connection's receive window is opened wide after the preface, as HAProxy's: only a
//! stream's own window (65535) bounds what it holds, so a slow client does not stall the
//! connection's other streams. A stream reset by the server, a GOAWAY or a connection
//! closed before the response came are read errors to the per-request code, as a closed
//! HTTP/1 connection is. A new stream refused (a GOAWAY, even a graceful one) ends the
//! connection's use for new streams: the request was not sent, and its retry takes another.
//!
//! Connections are shared as HAProxy shares them ([`Link::shared`]): a new one is listed
//! (unless private: `http-reuse never`, `send-proxy`, a source following the client) once
//! connected, and offered to other requests to the same server as HAProxy's lists offer it
//! ([`Connection::is_offered`]): with `always` at once, to any request; with `aggressive`
//! once a stream of it ended; with `safe` (the default) only while idle, never to a client
//! connection's first request, and then it is the taking client connection's while its
//! streams are open (HAProxy attaches it to that session, as HTTP/2 risks head-of-line
//! blocking): an HTTP/2 client's other streams join it, no other client's request does.
//! Several requests go at once on one connection (each link takes its stream slot when
//! made). A client connection
//! does not keep a listed one between its requests: its next request finds it in the list,
//! as HAProxy's stream detaches from it. A private connection is its client connection's:
//! an HTTP/1 one keeps it between its requests, an HTTP/2 one's streams all share it
//! ([`Private`], HAProxy's session list), several at once.
//!
//! A listed connection whose last stream ended, whatever ended it (a whole response, the
//! client gone, the server's RST_STREAM, an error: HAProxy's `h2_detach`), is idle: the
//! server's pool ([`pool`]) decides whether it stays, as for an HTTP/1 connection (the
//! thread's first, or within the recent need), else it closes at once; the pool counts it
//! (`srv_icur`, `safe_conn_cur`) and closes half of those beyond the need every
//! `pool-purge-delay` ([`close_idle`]). One with streams open counts in use once
//! (`used_conn_cur`). The server's address changing, its going down or into maintenance
//! close the idle ones at once, the others as their last stream ends ([`retire`]).
//!
//! A kill of one stream (`shutdown session`) leaves the socket alone (`shutdown` registers
//! it as shared): the stream's exchange ends, its dropped stream is reset with CANCEL.
//!
//! Not as HAProxy: an origin-form request's `:scheme` is `http` where HAProxy's is `https`
//! (the `h2` crate's, for a URI without an authority: see [`request`]); a server's shared
//! list is the process's, not one per thread.

use std::future::Future;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::chunked;
use super::http::{Framing, Head, find_head_end, parse_head};
use super::pool;
use super::state::Server;
use super::tls::Session;
use crate::config::model::HttpReuse;

/// Headers that are the HTTP/1 connection's and never go in an HTTP/2 message (RFC 9113
/// 8.2.2); `host` goes unless the target is absolute ([`request`]). `te` goes: the HTTP/1 head already has
/// it as HAProxy's H2 layer keeps it, `trailers` or nothing (`h1::edited_headers`).
const NOT_SENT: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The socket's I/O for the connection's task: plain, or through its TLS state.
struct Io {
    sock: Arc<TcpStream>,
    tls: Option<Box<Session>>,
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Io { sock, tls } = self.get_mut();
        if let Some(tls) = tls.as_deref_mut() {
            return Pin::new(&mut tls.over(sock)).poll_read(cx, buf);
        }
        loop {
            ready!(sock.poll_read_ready(cx))?;
            let room = buf.remaining();
            let mut read = 0;
            // Into the buffer's unfilled part as it is: the crate's read buffer is
            // uninitialised capacity, which zeroing first (`initialize_unfilled`) would
            // write whole on every read. A short read took all there was: the readiness
            // goes with it (a WouldBlock from the closure), as tokio's own `poll_read`
            // does, rather than after one more read that only says EAGAIN.
            let drained = sock.try_io(tokio::io::Interest::READABLE, || {
                read = sock.try_read_buf(buf)?;
                if read > 0 && read < room {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match drained {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && read == 0 => {}
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Poll::Ready(Err(e)),
                _ => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let Io { sock, tls } = self.get_mut();
        if let Some(tls) = tls.as_deref_mut() {
            return Pin::new(&mut tls.over(sock)).poll_write(cx, data);
        }
        loop {
            ready!(sock.poll_write_ready(cx))?;
            match sock.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Io { sock, tls } = self.get_mut();
        match tls.as_deref_mut() {
            Some(tls) => Pin::new(&mut tls.over(sock)).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Io { sock, tls } = self.get_mut();
        match tls.as_deref_mut() {
            Some(tls) => Pin::new(&mut tls.over(sock)).poll_shutdown(cx),
            // The socket closes once its `Conn` and this task let it go.
            None => Poll::Ready(Ok(())),
        }
    }
}

/// An HTTP/2 server connection, shared by the requests' [`Link`]s on it and, unless it is
/// private to its client connection, listed for other requests to the same server.
struct Connection {
    sock: Arc<TcpStream>,
    /// The server's address (`Arc::as_ptr`) and [`super::state::Server::conn_generation`]
    /// when it was opened: its requests' server, and whether it is still current.
    server: usize,
    generation: u64,
    /// Who else may open streams on it.
    listing: Listing,
    /// `https` for the `:scheme` of a TLS connection's requests.
    tls: bool,
    /// The connection's task ended (closed, GOAWAY, an error): no new stream.
    closed: AtomicBool,
    /// Streams open on it (requests between their HEADERS and their response's end).
    streams: AtomicUsize,
    /// A stream of it ended, whatever ended it: HAProxy lists a connection for other
    /// requests (its server's safe list) once its first stream detached, not before
    /// (unless `http-reuse always`).
    served: AtomicBool,
    /// With `http-reuse safe`, the HTTP/2 client connection ([`session_key`]) that opened
    /// it or took it while it was idle: only that one's streams join it while streams are
    /// open on it (HAProxy's `session_add_conn`); 0, none (an HTTP/1 client's: no other
    /// stream joins).
    taker: AtomicUsize,
    ready: Mutex<Handshake>,
}

/// Which requests may open streams on a connection besides the one that opened it.
enum Listing {
    /// Any request to its server, as `http-reuse` allows: in the shared list, its server
    /// kept for the pool's decisions once it is idle (servers live as long as the process).
    Shared(Arc<Server>),
    /// The streams of the HTTP/2 client connection it is private to ([`Private`]).
    Session(Weak<Private>),
    /// The later requests of the HTTP/1 client connection it is private to, which keeps it
    /// (its link) between them.
    Client,
}

/// Who a new connection serves besides the request that opened it ([`Link::start`]).
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// Any request to its server, as `http-reuse` allows; with `safe`, its streams are
    /// the given HTTP/2 client connection's ([`session_key`]; 0: none) while any are open,
    /// as HAProxy 2.6 attaches a new connection to the session that opened it.
    Any(usize),
    /// The streams of one HTTP/2 client connection, which own it together.
    Session(&'a Arc<Private>),
    /// One HTTP/1 client connection, which keeps it between its requests.
    Client,
}

/// The HTTP/2 server connections private to one HTTP/2 client connection (`http-reuse
/// never`, `send-proxy`, a source following the client), which all its streams share, as
/// HAProxy 2.6 keeps them in its session's list (`session_get_conn`): a stream takes one to
/// its server once it is connected and while it has room for a stream, whether other
/// streams are open on it or not (measured: one stream, then ten at once, then five, go on
/// one server connection; ten at once from the start open ten). One whose last stream
/// ended stays while the session holds fewer idle connections than its most
/// (`max-session-srv-conns`, HAProxy's `session_check_idle_conn`), else it closes.
#[derive(Default)]
pub struct Private {
    conns: Mutex<Vec<Arc<Connection>>>,
    /// The session's other idle connections (those serving one request at a time), which
    /// count against `most_idle` too.
    others_idle: AtomicUsize,
    most_idle: usize,
}

impl std::fmt::Debug for Private {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Private")
            .field("most_idle", &self.most_idle)
            .finish_non_exhaustive()
    }
}

impl Private {
    /// A session's list, which keeps at most `most_idle` idle connections.
    pub fn new(most_idle: usize) -> Private {
        Private {
            most_idle,
            ..Private::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Connection>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A link on one of the session's connections to `server` with room for a stream.
    pub fn link(&self, server: &Server) -> Option<Link> {
        let key = std::ptr::from_ref(server) as usize;
        let generation = server.conn_generation();
        let mut conns = self.lock();
        prune(&mut conns, server);
        let found = conns
            .iter()
            .find(|c| c.is_usable(key, generation) && c.has_room())?;
        Some(Link::on(found.clone()))
    }

    /// The session's HTTP/2 connections with no stream open.
    pub fn idle(&self) -> usize {
        self.lock()
            .iter()
            .filter(|c| c.is_idle() && !c.closed.load(Relaxed))
            .count()
    }

    /// The session's other idle connections are `idle` now.
    pub fn set_others_idle(&self, idle: usize) {
        self.others_idle.store(idle, Relaxed);
    }

    /// The most idle connections the session keeps.
    pub fn most_idle(&self) -> usize {
        self.most_idle
    }

    /// `conn`'s last stream ended: it stays unless the session holds its most idle
    /// connections already.
    fn went_idle(&self, conn: &Arc<Connection>) {
        let mut conns = self.lock();
        conns.retain(|c| !c.closed.load(Relaxed));
        let others = (conns.iter())
            .filter(|c| !Arc::ptr_eq(c, conn) && c.is_idle())
            .count();
        if !conn.is_idle() || others + self.others_idle.load(Relaxed) < self.most_idle {
            return;
        }
        conns.retain(|c| !Arc::ptr_eq(c, conn));
        drop(conns);
        conn.ended(false);
    }
}

/// The connection's handle once its preface went, and the links waiting for it (or, idle
/// with their client connections, for its end: [`Link::poll_idle`]).
#[derive(Default)]
struct Handshake {
    send: Option<h2::client::SendRequest<Bytes>>,
    failed: bool,
    waiting: Vec<Waker>,
}

impl Connection {
    fn is_usable(&self, server: usize, generation: u64) -> bool {
        self.server == server && self.generation == generation && !self.closed.load(Relaxed)
    }

    /// Whether `http-reuse` lets a request of client connection `session` ([`session_key`])
    /// open a stream on it, as HAProxy 2.6's lists offer it: with `always`, any; with
    /// `aggressive`, one whose stream ended already (in its server's safe list when none
    /// is left open, in its available list when others are); with `safe`, an idle one to a
    /// later request only, which is then the taking session's while streams are open on it
    /// (HAProxy attaches it to that session, `MX_FL_HOL_RISK`): other sessions never share
    /// it, that session's other streams do.
    fn is_offered(&self, reuse: HttpReuse, first: bool, session: usize) -> bool {
        match reuse {
            HttpReuse::Always => true,
            HttpReuse::Safe => {
                (!first && self.is_idle())
                    || (session != 0
                        && self.streams.load(Relaxed) > 0
                        && self.taker.load(Relaxed) == session)
            }
            _ => self.served.load(Relaxed),
        }
    }

    /// Whether it is idle in HAProxy's sense: listed, served, and no stream open on it.
    fn is_idle(&self) -> bool {
        self.served.load(Relaxed) && self.streams.load(Relaxed) == 0
    }

    /// Whether another stream fits within the server's `SETTINGS_MAX_CONCURRENT_STREAMS`.
    fn has_room(&self) -> bool {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        let most = ready
            .send
            .as_ref()
            .map_or(usize::MAX, |s| s.current_max_send_streams());
        self.streams.load(Relaxed) < most
    }

    /// Its last stream just ended, whatever ended it (a whole response, the client gone,
    /// the server's RST_STREAM, an error), as HAProxy's `h2_detach` decides then: a listed
    /// connection stays for later requests if it is current and its server's pool wants it
    /// ([`pool::keep_h2`]), else it leaves the list and closes; a session's as its session
    /// decides ([`Private::went_idle`]).
    fn offer_idle(self: &Arc<Self>) {
        let server = match &self.listing {
            Listing::Shared(server) => server,
            Listing::Session(session) => {
                if let Some(session) = session.upgrade() {
                    session.went_idle(self);
                }
                return;
            }
            Listing::Client => return,
        };
        if !self.is_idle() || self.closed.load(Relaxed) {
            return;
        }
        let current = self.generation == server.conn_generation();
        if current && pool::keep_h2(server) {
            return;
        }
        // Unless a request took it meanwhile (the list's lock orders the two; a retired
        // one is in no list, and no request finds it).
        let mut list = shared_list(server);
        if !self.is_idle() {
            return;
        }
        list.retain(|c| !Arc::ptr_eq(c, self));
        drop(list);
        self.ended(false);
    }

    /// A new stream was refused (the server's GOAWAY, a connection error): the request
    /// was not sent, and no later one goes on this connection, so the retry of the
    /// per-request code takes another (as HAProxy opens a new one after a graceful GOAWAY).
    fn refused(&self, e: h2::Error) -> io::Error {
        self.closed.store(true, Relaxed);
        unused(e)
    }

    /// Takes it out of the list that offers it to later requests (a private one of an
    /// HTTP/1 client connection is in none: that connection holds its link).
    fn unlist(self: &Arc<Self>) {
        let unlisted = |conns: &mut Vec<Arc<Connection>>| conns.retain(|c| !Arc::ptr_eq(c, self));
        match &self.listing {
            Listing::Shared(server) => unlisted(&mut shared_list(server)),
            Listing::Session(session) => {
                if let Some(session) = session.upgrade() {
                    unlisted(&mut session.lock());
                }
            }
            Listing::Client => {}
        }
    }

    fn ended(&self, failed: bool) {
        self.closed.store(true, Relaxed);
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        ready.failed |= failed;
        ready.send = None;
        ready.waiting.drain(..).for_each(Waker::wake);
    }
}

/// A server's shared HTTP/2 connections (in its pool, `pool::IdlePool::h2`), of every
/// thread: a request takes one whatever thread made it (each connection's task stays on
/// its thread's runtime).
#[derive(Default)]
pub struct SharedList(Mutex<Vec<Arc<Connection>>>);

impl std::fmt::Debug for SharedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedList").finish_non_exhaustive()
    }
}

/// The list of `server`'s shared connections (a panic while it was held left it
/// consistent: each change is one `retain` or `push`).
fn shared_list(server: &Server) -> std::sync::MutexGuard<'_, Vec<Arc<Connection>>> {
    (server.idle.h2.0.lock()).unwrap_or_else(|e| e.into_inner())
}

/// The shared connections to `server` with no stream open that served a response: the
/// stats count them in `srv_icur` and `safe_conn_cur`, as HAProxy's safe list holds them.
pub fn idle_connections(server: &Server) -> usize {
    connections(server).0
}

/// The current shared connections to `server`: idle ([`idle_connections`]), and with
/// streams open (each in use once, however many streams it carries).
pub fn connections(server: &Server) -> (usize, usize) {
    let key = std::ptr::from_ref(server) as usize;
    let generation = server.conn_generation();
    let list = shared_list(server);
    let current = list.iter().filter(|c| c.is_usable(key, generation));
    current.fold((0, 0), |(idle, busy), c| match c.streams.load(Relaxed) {
        0 if c.served.load(Relaxed) => (idle + 1, busy),
        0 => (idle, busy),
        _ => (idle, busy + 1),
    })
}

/// Closes up to `most` of the idle shared connections to `server`, the oldest first: the
/// pool's purge ([`pool`]). Once out of the list and without a handle, a connection's
/// task sends GOAWAY and closes it.
pub fn close_idle(server: &Server, most: usize) {
    let mut closing = Vec::new();
    shared_list(server).retain(|c| {
        let close = closing.len() < most && c.is_idle();
        if close {
            closing.push(c.clone());
        }
        !close
    });
    // Outside the list's lock.
    closing.iter().for_each(|c| c.ended(false));
}

/// Closes the idle shared connections to `server` at once and unlists the others, which
/// close as their last stream ends ([`Connection::offer_idle`]): its address changed, it
/// went down or into maintenance (as HAProxy's `srv_cleanup_connections`).
pub fn retire(server: &Server) {
    let unlisted = std::mem::take(&mut *shared_list(server));
    // Outside the list's lock.
    (unlisted.iter())
        .filter(|c| c.streams.load(Relaxed) == 0)
        .for_each(|c| c.ended(false));
}

/// The key of an HTTP/2 client connection's requests for [`Link::shared`] (its session's
/// address, which lives as long as its streams); 0 for an HTTP/1 one.
pub fn session_key<T>(session: Option<&T>) -> usize {
    session.map_or(0, |s| std::ptr::from_ref(s) as usize)
}

/// Keeps the list to live, current connections (a dropped one closes once its streams
/// ended); how many idle ones stay is the pool's decision ([`Connection::offer_idle`]).
fn prune(list: &mut Vec<Arc<Connection>>, server: &Server) {
    let key = std::ptr::from_ref(server) as usize;
    let generation = server.conn_generation();
    list.retain(|c| c.server != key || c.is_usable(key, generation));
}

/// A server connection that speaks HTTP/2, as its `Conn` writes requests and reads
/// responses in HTTP/1.1 (see the module's comment). One request at a time: a `Conn`
/// serves one exchange at a time; other `Conn`s may have links on the same connection.
pub struct Link {
    conn: Arc<Connection>,
    /// The connection's handle, once its preface went.
    send: Option<h2::client::SendRequest<Bytes>>,
    exchange: Exchange,
    /// The handles of the link's last stream, over, until its next stream opens.
    spent: Option<Spent>,
    /// [`Link::head_added`] of the last response.
    head_added: u64,
    /// The stream slot taken when the link was made, for its first request: requests
    /// arriving together each see the others' and take another connection rather than
    /// all wait behind the server's stream limit on one.
    reserved: Option<StreamCount>,
}

/// A stream's handles after its exchange: the crate wakes the connection's task when a
/// closed stream's last handle goes, and the next request's HEADERS wake it anyway, so
/// they go just before those (one poll of the connection per request, not two).
struct Spent {
    _send: h2::SendStream<Bytes>,
    _recv: Option<h2::RecvStream>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("tls", &self.conn.tls).finish()
    }
}

/// The connection's task: the preface (after the PROXY header), then its frames until it
/// ends. It holds the connection weakly: once no link and no list holds it, the handles
/// are gone and the crate closes it (GOAWAY) when its streams ended.
async fn drive(conn: Weak<Connection>, mut io: Io, proxy_header: Vec<u8>) {
    let fail = |conn: &Weak<Connection>| {
        if let Some(conn) = conn.upgrade() {
            conn.ended(true);
            conn.unlist();
        }
    };
    if !proxy_header.is_empty()
        && tokio::io::AsyncWriteExt::write_all(&mut io, &proxy_header)
            .await
            .is_err()
    {
        return fail(&conn);
    }
    let shaken = client().handshake::<_, Bytes>(io).await;
    let Ok((send, connection)) = shaken else {
        return fail(&conn);
    };
    {
        let Some(shared) = conn.upgrade() else { return };
        let mut ready = shared.ready.lock().unwrap_or_else(|e| e.into_inner());
        ready.send = Some(send);
        ready.waiting.drain(..).for_each(Waker::wake);
    }
    let _ = connection.await;
    // The server closed it (a GOAWAY, its FIN) or it failed, idle or not: out of its list
    // at once, its socket closed as soon as no link holds it, as HAProxy's mux releases a
    // closed connection from its server's or its session's list then, not when a later
    // request would have taken it. Shut down now whoever holds it (an HTTP/1 client
    // connection's own link, found dead only at its next request): the server does not
    // wait for its FIN.
    if let Some(conn) = conn.upgrade() {
        conn.ended(false);
        conn.unlist();
        let _ = socket2::SockRef::from(&*conn.sock).shutdown(std::net::Shutdown::Both);
    }
}

/// The client side of an HTTP/2 server connection (a health check's too).
pub(super) fn client() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    // HAProxy sends no push: the crate refuses promised streams.
    builder.enable_push(false);
    // As HAProxy's WINDOW_UPDATE on stream 0 after its preface: only a stream's own window
    // (65535) bounds what it buffers, so a slow reader on one stream does not hold the
    // whole connection's window and stall its other streams.
    builder.initial_connection_window_size(i32::MAX as u32);
    builder
}

/// Where the request of the exchange in progress is.
enum Exchange {
    /// No request, or its head's bytes so far.
    Head(Vec<u8>),
    /// The head parsed, its stream not opened yet (the connection's handshake, or the
    /// server's stream limit, waits).
    Opening(Box<http::Request<()>>, Body),
    /// The stream is open: its request body going, its response coming.
    Open(Box<Stream>),
}

/// A stream open on a connection, counted in [`Connection::streams`] while it lives (and
/// a shared connection's streams beyond its first in its server's pool, which counts
/// connections in use: [`pool::h2_streams_joined`]).
struct StreamCount(Arc<Connection>);

impl StreamCount {
    fn new(conn: &Arc<Connection>) -> StreamCount {
        let before = conn.streams.fetch_add(1, Relaxed);
        if let Listing::Shared(server) = &conn.listing
            && before > 0
        {
            pool::h2_streams_joined(server, true);
        }
        StreamCount(conn.clone())
    }
}

impl Drop for StreamCount {
    /// The connection's last stream gone, by whatever path: its idle decision.
    fn drop(&mut self) {
        let conn = &self.0;
        let before = conn.streams.fetch_sub(1, Relaxed);
        if let Listing::Shared(server) = &conn.listing
            && before > 1
        {
            pool::h2_streams_joined(server, false);
        }
        if before == 1 {
            conn.served.store(true, Relaxed);
            conn.offer_idle();
        }
    }
}

/// A request body's state: its framing, the data taken and not sent yet.
struct Body {
    framing: Framing,
    left: u64,
    decoder: chunked::Decoder,
    /// A chunk's size line cut between two writes.
    unparsed: Vec<u8>,
    out: Vec<u8>,
    ended: bool,
    /// The request's method, which says whether the response has a body.
    head_request: bool,
    /// A chunked body's bytes since its last data: its last-chunk line and trailer
    /// section once it ended.
    since_data: Vec<u8>,
    /// Its trailer fields, which go as a HEADERS ending the stream (as HAProxy sends them).
    trailers: Option<Box<http::HeaderMap>>,
}

struct Stream {
    _counted: StreamCount,
    send: h2::SendStream<Bytes>,
    body: Body,
    /// The request's end was sent (or, once the server asked for no more, taken).
    sent: bool,
    /// The server asked for no more of the request (see [`Stream::poll_send`]): the rest
    /// of its body is taken and dropped.
    refused: bool,
    response: Response,
    /// The response's body handle once its stream ended (see [`Spent`]).
    ended_recv: Option<h2::RecvStream>,
    /// [`Link::head_added`] of its response.
    head_added: u64,
}

enum Response {
    /// The final response to come; the HTTP/1.1 heads of the 1xx interim responses that
    /// came before it and were not read yet.
    Waiting(h2::client::ResponseFuture, Vec<u8>),
    /// The response's HTTP/1.1 bytes not read yet; its body still to come (None: ended).
    Relaying {
        pending: Vec<u8>,
        taken: usize,
        body: Option<h2::RecvStream>,
        chunked: bool,
    },
    /// The stream failed after bytes before it were read: the error for the next read.
    Failed(Option<io::Error>),
    Done,
}

impl Link {
    /// Starts HTTP/2 on a new server connection to `server`: a task sends the preface and
    /// SETTINGS (after `proxy_header`, the PROXY header of a plaintext `send-proxy` one),
    /// then drives the connection; listed for the later requests `owner` says.
    pub fn start(
        server: &Arc<Server>,
        (sock, tls): (Arc<TcpStream>, Option<Box<Session>>),
        proxy_header: Vec<u8>,
        owner: Owner<'_>,
    ) -> Link {
        let listing = match owner {
            Owner::Any(_) => Listing::Shared(server.clone()),
            Owner::Session(session) => Listing::Session(Arc::downgrade(session)),
            Owner::Client => Listing::Client,
        };
        let conn = Arc::new(Connection {
            sock: sock.clone(),
            server: Arc::as_ptr(server) as usize,
            generation: server.conn_generation(),
            listing,
            tls: tls.is_some(),
            closed: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            taker: AtomicUsize::new(match owner {
                Owner::Any(session) => session,
                _ => 0,
            }),
            ready: Mutex::new(Handshake::default()),
        });
        let io = Io { sock, tls };
        tokio::spawn(drive(Arc::downgrade(&conn), io, proxy_header));
        // Its stream slot taken before others may find it.
        let link = Link::on(conn.clone());
        match owner {
            Owner::Any(_) => {
                let mut list = shared_list(server);
                prune(&mut list, server);
                list.push(conn);
            }
            Owner::Session(session) => {
                let mut conns = session.lock();
                prune(&mut conns, server);
                conns.push(conn);
            }
            Owner::Client => {}
        }
        link
    }

    fn on(conn: Arc<Connection>) -> Link {
        Link {
            reserved: Some(StreamCount::new(&conn)),
            conn,
            send: None,
            exchange: Exchange::Head(Vec::new()),
            spent: None,
            head_added: 0,
        }
    }

    /// A link on a shared connection to `server` with room for a stream, as `http-reuse`
    /// allows a request of client connection `session` ([`session_key`],
    /// [`Connection::is_offered`]): none for `never` (connections are private). With
    /// `safe`, the session's own first (HAProxy's `session_get_conn`), then an idle one,
    /// which becomes the session's.
    pub fn shared(server: &Server, reuse: HttpReuse, first: bool, session: usize) -> Option<Link> {
        if reuse == HttpReuse::Never {
            return None;
        }
        let key = std::ptr::from_ref(server) as usize;
        let generation = server.conn_generation();
        let mut list = shared_list(server);
        prune(&mut list, server);
        let offered = |c: &&Arc<Connection>| {
            c.is_usable(key, generation) && c.is_offered(reuse, first, session) && c.has_room()
        };
        let owned = |c: &&Arc<Connection>| c.streams.load(Relaxed) > 0;
        let found = match reuse {
            HttpReuse::Safe if session != 0 => list
                .iter()
                .filter(offered)
                .find(owned)
                .or_else(|| list.iter().find(offered)),
            _ => list.iter().find(offered),
        }?;
        if reuse == HttpReuse::Safe && found.is_idle() {
            found.taker.store(session, Relaxed);
        }
        Some(Link::on(found.clone()))
    }

    /// The connection's socket, shared with its task.
    pub fn socket(&self) -> Arc<TcpStream> {
        self.conn.sock.clone()
    }

    /// Whether a new request may go: the connection is up, no exchange in progress.
    pub fn is_idle(&self) -> bool {
        !self.conn.closed.load(Relaxed)
            && match &self.exchange {
                Exchange::Head(raw) => raw.is_empty(),
                Exchange::Opening(..) => false,
                Exchange::Open(stream) => stream.is_over(),
            }
    }

    /// [`Link::is_idle`] for an idle link its client connection holds between requests;
    /// until it is not, `cx` is woken when the connection ends, for the client connection
    /// to drop it then (its socket closes with it), as HAProxy releases a server connection
    /// its server closed at once, not at its session's next request.
    pub fn poll_idle(&self, cx: &mut Context<'_>) -> bool {
        let mut ready = self.conn.ready.lock().unwrap_or_else(|e| e.into_inner());
        // Seen under the lock [`Connection::ended`] takes after it marks the end: either
        // the end shows here, or that end wakes the waker left here.
        if self.conn.closed.load(Relaxed) {
            return false;
        }
        if !ready.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            ready.waiting.push(cx.waker().clone());
        }
        drop(ready);
        self.is_idle()
    }

    /// Takes HTTP/1.1 request bytes: the head, then its body in its framing.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_flush(cx))?;
        self.take(data)?;
        Poll::Ready(Ok(data.len()))
    }

    fn take(&mut self, data: &[u8]) -> io::Result<()> {
        if matches!(&self.exchange, Exchange::Open(stream) if stream.is_over()) {
            self.end_exchange();
        }
        match &mut self.exchange {
            Exchange::Head(raw) => {
                // A head written whole, as it usually is, is read where it is.
                if raw.is_empty()
                    && let Some(end) = find_head_end(data)
                {
                    return self.opening(&data[..end], &data[end..]);
                }
                raw.extend_from_slice(data);
                let Some(end) = find_head_end(raw) else {
                    return Ok(());
                };
                let raw = std::mem::take(raw);
                self.opening(&raw[..end], &raw[end..])
            }
            Exchange::Opening(_, body) => body.take(data),
            Exchange::Open(stream) => stream.body.take(data),
        }
    }

    /// The request's `head` came whole, with the start of its body (`rest`): its stream
    /// opens next.
    fn opening(&mut self, head: &[u8], rest: &[u8]) -> io::Result<()> {
        let head = parse_head(head, true).map_err(|_| invalid())?;
        let request = request(&head)?;
        let mut body = Body::new(head.framing, head.first[0] == "HEAD");
        body.take(rest)?;
        self.exchange = Exchange::Opening(Box::new(request), body);
        Ok(())
    }

    /// Opens the stream once it may, then sends the body taken so far as the stream's
    /// window allows, and the stream's end once the body ended.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if matches!(self.exchange, Exchange::Opening(..)) {
            ready!(self.poll_open(cx))?;
        }
        let Exchange::Open(stream) = &mut self.exchange else {
            return Poll::Ready(Ok(()));
        };
        stream.poll_send(cx)
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.send.is_none() {
            let mut ready = self.conn.ready.lock().unwrap_or_else(|e| e.into_inner());
            match &ready.send {
                Some(send) => self.send = Some(send.clone()),
                None if ready.failed || self.conn.closed.load(Relaxed) => {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                }
                None => {
                    ready.waiting.push(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        let send = self.send.as_mut().expect("taken just above");
        let conn = &self.conn;
        ready!(send.poll_ready(cx)).map_err(|e| conn.refused(e))?;
        let Exchange::Opening(request, body) =
            std::mem::replace(&mut self.exchange, Exchange::Head(Vec::new()))
        else {
            unreachable!("opened from Opening only")
        };
        let ends = body.framing == Framing::None;
        self.spent = None;
        let (response, send) = (send.send_request(*request, ends)).map_err(|e| conn.refused(e))?;
        self.exchange = Exchange::Open(Box::new(Stream {
            _counted: (self.reserved.take()).unwrap_or_else(|| StreamCount::new(&self.conn)),
            send,
            body,
            sent: ends,
            refused: false,
            response: Response::Waiting(response, Vec::new()),
            ended_recv: None,
            head_added: 0,
        }));
        Poll::Ready(Ok(()))
    }

    /// Reads the response as HTTP/1.1; Pending once it was read whole (the connection
    /// stays for another request); an error when the stream or the connection failed.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let Exchange::Open(stream) = &mut self.exchange else {
            if self.conn.closed.load(Relaxed) {
                return Poll::Ready(Ok(0));
            }
            return Poll::Pending;
        };
        // The request's body still going: sent as the server takes it.
        if !stream.sent {
            let _ = stream.poll_send(cx)?;
        }
        let done = ready!(stream.poll_response(cx, out))?;
        self.head_added = stream.head_added;
        if stream.is_over() {
            // Its stream's count goes: the connection's idle decision if it was the last.
            self.end_exchange();
        }
        if done == 0 {
            return Poll::Pending;
        }
        Poll::Ready(Ok(done))
    }

    /// After a stream's exchange: it no longer counts against the server's limit; its
    /// handles are kept (see [`Spent`]).
    fn end_exchange(&mut self) {
        let ended = std::mem::replace(&mut self.exchange, Exchange::Head(Vec::new()));
        if let Exchange::Open(stream) = ended {
            let Stream {
                send, ended_recv, ..
            } = *stream;
            self.spent = Some(Spent {
                _send: send,
                _recv: ended_recv,
            });
        }
    }

    /// The logged size (see `Head::logged_size`) of the header fields the last response's
    /// HTTP/1.1 head has that its HEADERS had not (its framing): HAProxy's logs and stats
    /// count the HTTP/2 message as it came, not as its HTTP/1 layer writes it.
    pub fn head_added(&self) -> u64 {
        self.head_added
    }

    /// [`Link::poll_read`] without waiting; `None`: nothing yet.
    pub fn try_read(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_read(&mut cx, out) {
            Poll::Ready(r) => r.map(Some),
            Poll::Pending => Ok(None),
        }
    }
}

impl Body {
    fn new(framing: Framing, head_request: bool) -> Body {
        Body {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            decoder: chunked::Decoder::default(),
            unparsed: Vec::new(),
            out: Vec::new(),
            ended: matches!(framing, Framing::None | Framing::Length(0)),
            head_request,
            since_data: Vec::new(),
            trailers: None,
        }
    }

    /// Takes request body bytes as their HTTP/1 framing delimits them.
    fn take(&mut self, body: &[u8]) -> io::Result<()> {
        match self.framing {
            Framing::Length(_) => {
                let n = (body.len() as u64).min(self.left) as usize;
                self.out.extend_from_slice(&body[..n]);
                self.left -= n as u64;
                self.ended = self.left == 0;
            }
            Framing::Chunked => {
                let joined;
                let input = if self.unparsed.is_empty() {
                    body
                } else {
                    self.unparsed.extend_from_slice(body);
                    joined = std::mem::take(&mut self.unparsed);
                    &joined[..]
                };
                let out = &mut self.out;
                // Where the last data piece of `input` ended (its pieces are parts of it).
                let mut data_end = None;
                let used = (self.decoder)
                    .advance_with(input, |piece| {
                        out.extend_from_slice(piece);
                        data_end =
                            Some(piece.as_ptr() as usize - input.as_ptr() as usize + piece.len());
                    })
                    .map_err(|_| invalid())?;
                if let Some(end) = data_end {
                    self.since_data.clear();
                    self.since_data.extend_from_slice(&input[end..used]);
                } else {
                    self.since_data.extend_from_slice(&input[..used]);
                }
                // Trailers beyond a buffer, as HAProxy's, are not taken.
                if self.since_data.len() > super::BUFSIZE {
                    return Err(invalid());
                }
                self.unparsed.extend_from_slice(&input[used..]);
                self.ended = self.decoder.is_done();
                if self.ended {
                    self.trailers = trailers(&self.since_data)?;
                }
            }
            Framing::UntilClose => self.out.extend_from_slice(body),
            Framing::None => {}
        }
        Ok(())
    }
}

/// Why a request body's DATA could not go.
enum SendFailure {
    /// The stream or its connection failed (a reset, a GOAWAY, an I/O error).
    Stream(h2::Error),
    /// The stream's handle no longer takes data.
    Gone,
}

/// Sends `body`'s data taken so far on `send` as its window allows, and the stream's end
/// once the body ended: whether the end went.
fn send_body(
    send: &mut h2::SendStream<Bytes>,
    body: &mut Body,
    cx: &mut Context<'_>,
) -> Poll<Result<bool, SendFailure>> {
    while !body.out.is_empty() {
        send.reserve_capacity(body.out.len());
        match ready!(send.poll_capacity(cx)) {
            Some(Ok(0)) => continue,
            Some(Ok(n)) => {
                let n = n.min(body.out.len());
                let last = body.ended && body.trailers.is_none() && n == body.out.len();
                let piece = Bytes::copy_from_slice(&body.out[..n]);
                body.out.drain(..n);
                send.send_data(piece, last).map_err(SendFailure::Stream)?;
                if last {
                    return Poll::Ready(Ok(true));
                }
            }
            Some(Err(e)) => return Poll::Ready(Err(SendFailure::Stream(e))),
            None => return Poll::Ready(Err(SendFailure::Gone)),
        }
    }
    if !body.ended {
        return Poll::Ready(Ok(false));
    }
    match body.trailers.take() {
        Some(trailers) => send.send_trailers(*trailers),
        None => send.send_data(Bytes::new(), true),
    }
    .map_err(SendFailure::Stream)?;
    Poll::Ready(Ok(true))
}

/// Whether the server reset the stream as it does after an early answer, asking for no more
/// of the request: with NO_ERROR (RFC 9113 8.1), or with CANCEL, which HAProxy 2.6 and nginx
/// send after a whole response to a request they did not read to its end. The response is
/// then read as usual: relayed if it came whole before the reset, else the reset's error.
/// (Once reset, the stream takes no data: its capacity ends, or its DATA fail.)
fn is_early_answer_reset(send: &mut h2::SendStream<Bytes>, cx: &mut Context<'_>) -> bool {
    matches!(
        send.poll_reset(cx),
        Poll::Ready(Ok(h2::Reason::NO_ERROR | h2::Reason::CANCEL))
    )
}

impl Stream {
    /// Its request sent and its response read whole.
    fn is_over(&self) -> bool {
        self.sent && matches!(self.response, Response::Done)
    }

    /// Sends the body's data taken so far, and its end once it ended. A server that answered
    /// and then reset the stream with NO_ERROR or CANCEL asks for no more of the body (RFC
    /// 9113 8.1, an early answer such as a 413 to an upload: [`is_early_answer_reset`]): the rest is taken to its end and
    /// dropped, not an error, so that the answer is read and relayed, as HAProxy relays it
    /// (the body's end still awaited: no later request's bytes are taken for it).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Stream {
            send,
            body,
            sent,
            refused,
            ..
        } = self;
        if *sent || *refused {
            body.out.clear();
            *sent |= body.ended;
            return Poll::Ready(Ok(()));
        }
        match ready!(send_body(send, body, cx)) {
            Ok(ended) => *sent = ended,
            Err(_) if is_early_answer_reset(send, cx) => {
                *refused = true;
                body.out.clear();
                *sent = body.ended;
            }
            Err(SendFailure::Stream(e)) => return Poll::Ready(Err(io::Error::other(e))),
            Err(SendFailure::Gone) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
        Poll::Ready(Ok(()))
    }

    /// The response's HTTP/1.1 bytes into `out`; Ok(0) once it was read whole.
    fn poll_response(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        // As much as `out` takes of what came: the head with the body's data that came
        // with it, which then go to the client in one write as an HTTP/1 server's would.
        let mut written = 0;
        let Stream {
            response: state,
            body: request_body,
            ended_recv,
            head_added,
            ..
        } = self;
        loop {
            match state {
                Response::Waiting(future, interim) => {
                    // Each 1xx goes to the client as its own HTTP/1.1 head before the final
                    // one, as HAProxy relays them (a `100` lets an `Expect` upload go).
                    if !interim.is_empty() {
                        let n = (out.len() - written).min(interim.len());
                        out[written..written + n].copy_from_slice(&interim[..n]);
                        interim.drain(..n);
                        return Poll::Ready(Ok(written + n));
                    }
                    // An error here is the final response's too, reported just below.
                    if let Poll::Ready(Some(Ok(informational))) = future.poll_informational(cx) {
                        (*interim, ..) = response_head(&informational.into_parts().0, true, false);
                        continue;
                    }
                    let response = ready!(Pin::new(future).poll(cx)).map_err(io::Error::other)?;
                    (*state, *ended_recv, *head_added) =
                        relaying(response, request_body.head_request);
                }
                Response::Relaying {
                    pending,
                    taken,
                    body,
                    chunked,
                } => {
                    if *taken < pending.len() {
                        let n = (out.len() - written).min(pending.len() - *taken);
                        out[written..written + n].copy_from_slice(&pending[*taken..*taken + n]);
                        *taken += n;
                        written += n;
                        if *taken < pending.len() {
                            return Poll::Ready(Ok(written));
                        }
                    }
                    pending.clear();
                    *taken = 0;
                    let Some(recv) = body.as_mut() else {
                        // Read whole: the connection may take another request at once.
                        *state = Response::Done;
                        continue;
                    };
                    if written == out.len() {
                        return Poll::Ready(Ok(written));
                    }
                    let data = match recv.poll_data(cx) {
                        Poll::Ready(data) => data,
                        Poll::Pending if written > 0 => return Poll::Ready(Ok(written)),
                        Poll::Pending => return Poll::Pending,
                    };
                    match data {
                        Some(Ok(data)) => {
                            let _ = recv.flow_control().release_capacity(data.len());
                            if data.is_empty() {
                                continue;
                            }
                            if *chunked {
                                let _ = write!(pending, "{:x}\r\n", data.len());
                                pending.extend_from_slice(&data);
                                pending.extend_from_slice(b"\r\n");
                            } else {
                                pending.extend_from_slice(&data);
                            }
                            // The stream's end came with its last DATA: the response is
                            // whole once these bytes are read.
                            if recv.is_end_stream() {
                                *ended_recv = body.take();
                                if *chunked {
                                    pending.extend_from_slice(b"0\r\n\r\n");
                                    *head_added += LAST_CHUNK_LOGGED;
                                }
                            }
                        }
                        Some(Err(e)) if written > 0 => {
                            // The bytes before it go first; the error at the next read.
                            *state = Response::Failed(Some(io::Error::other(e)));
                            return Poll::Ready(Ok(written));
                        }
                        Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                        None => {
                            // The stream ended with a HEADERS: its trailers, which end the
                            // chunked body as HAProxy's H1 layer writes them.
                            let trailers = match recv.poll_trailers(cx) {
                                Poll::Ready(Ok(trailers)) => trailers,
                                Poll::Ready(Err(e)) if written > 0 => {
                                    *state = Response::Failed(Some(io::Error::other(e)));
                                    return Poll::Ready(Ok(written));
                                }
                                Poll::Ready(Err(e)) => {
                                    return Poll::Ready(Err(io::Error::other(e)));
                                }
                                Poll::Pending if written > 0 => return Poll::Ready(Ok(written)),
                                Poll::Pending => return Poll::Pending,
                            };
                            *ended_recv = body.take();
                            if *chunked {
                                pending.extend_from_slice(b"0\r\n");
                                for (name, value) in trailers.iter().flatten() {
                                    pending.extend_from_slice(name.as_str().as_bytes());
                                    pending.extend_from_slice(b": ");
                                    pending.extend_from_slice(value.as_bytes());
                                    pending.extend_from_slice(b"\r\n");
                                }
                                pending.extend_from_slice(b"\r\n");
                            }
                        }
                    }
                }
                Response::Failed(e) => {
                    let e = e.take().unwrap_or_else(|| io::ErrorKind::BrokenPipe.into());
                    return Poll::Ready(Err(e));
                }
                Response::Done => return Poll::Ready(Ok(written)),
            }
        }
    }
}

/// What the per-request code logs for a chunked body's end without trailers (the byte of
/// HAProxy's end-of-trailers block, `chunked::Decoder::logged_size`), which an HTTP/2
/// response ended by its HEADERS or its last DATA has not in HAProxy's count: taken off
/// with [`Link::head_added`].
const LAST_CHUNK_LOGGED: u64 = 1;

/// The response's head as HTTP/1.1 bytes and how its body follows.
/// The body's handle comes apart when the HEADERS ended the stream (see [`Spent`]); the
/// last, [`Link::head_added`].
fn relaying(
    response: http::Response<h2::RecvStream>,
    head_request: bool,
) -> (Response, Option<h2::RecvStream>, u64) {
    let (parts, body) = response.into_parts();
    let ended = body.is_end_stream();
    let (mut pending, chunked, mut added) = response_head(&parts, ended, head_request);
    if ended && chunked {
        pending.extend_from_slice(b"0\r\n\r\n");
        added += LAST_CHUNK_LOGGED;
    }
    let (body, ended_body) = if ended {
        (None, Some(body))
    } else {
        (Some(body), None)
    };
    let relaying = Response::Relaying {
        pending,
        taken: 0,
        body,
        chunked,
    };
    (relaying, ended_body, added)
}

/// A response's head as HTTP/1.1 bytes, whether its body follows in chunks (also when its
/// HEADERS ended the stream: the caller writes the last chunk then), and the logged size
/// of the framing header it added. (`_ended`, whether the HEADERS ended the stream, no
/// longer changes the head: HAProxy's is chunked either way.)
pub(super) fn response_head(
    parts: &http::response::Parts,
    _ended: bool,
    head_request: bool,
) -> (Vec<u8>, bool, u64) {
    let status = parts.status.as_u16();
    let mut pending = Vec::with_capacity(256);
    // HTTP/2 has no reason phrase: HAProxy's HTTP/1 status line has an empty one.
    pending.extend_from_slice(b"HTTP/1.1 ");
    pending.extend_from_slice(parts.status.as_str().as_bytes());
    pending.extend_from_slice(b" \r\n");
    for (name, value) in &parts.headers {
        pending.extend_from_slice(name.as_str().as_bytes());
        pending.extend_from_slice(b": ");
        pending.extend_from_slice(value.as_bytes());
        pending.extend_from_slice(b"\r\n");
    }
    let has_length = parts.headers.contains_key(http::header::CONTENT_LENGTH);
    let bodiless = head_request || status < 200 || status == 204 || status == 304;
    // Chunked even when the HEADERS ended the stream (then its last chunk at once), as
    // HAProxy 2.6's H1 layer writes a response of unknown length (measured: a HEADERS
    // with END_STREAM and no `content-length` reaches an HTTP/1.1 client as
    // `transfer-encoding: chunked` and `0`).
    let chunked = !has_length && !bodiless;
    let added: &[u8] = match chunked {
        true => b"transfer-encoding: chunked\r\n",
        false => b"",
    };
    pending.extend_from_slice(added);
    pending.extend_from_slice(b"\r\n");
    // Its name and value: less the ": " and the CRLF.
    let added_size = added.len().saturating_sub(4) as u64;
    (pending, chunked, added_size)
}

/// The request `head` (HTTP/1.1, as the per-request code wrote it) for HTTP/2, as HAProxy
/// 2.6's `h2s_bck_make_req_headers` sends it (measured with `nghttpd -v`): an origin-form
/// (or `*`) target goes as `:path` as it is, with `host` an ordinary header and no
/// `:authority`; an absolute-form one gives `:scheme`, `:authority` and `:path`, and its
/// `host` is not sent. (HAProxy's `:scheme` of an origin-form request is `https`; the `h2`
/// crate sends `http` for a URI without an authority (h2 0.4.20 `client.rs`,
/// `Peer::convert_send_message`) and takes the scheme from the URI alone, which the `http`
/// crate cannot build with a scheme and no authority (`Uri::from_parts`: AuthorityMissing).)
pub(super) fn request(head: &Head) -> io::Result<http::Request<()>> {
    let [method, target, _] = &head.first;
    let uri = http::Uri::try_from(&*crate::bytestr::to_bytes(target)).map_err(|_| invalid())?;
    let absolute = uri.authority().is_some();
    let mut request = http::Request::new(());
    *request.method_mut() = http::Method::from_bytes(method.as_bytes()).map_err(|_| invalid())?;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.reserve(head.headers.len());
    for (name, value) in &head.headers {
        if NOT_SENT.iter().any(|n| name.eq_ignore_ascii_case(n))
            || (absolute && name.eq_ignore_ascii_case("host"))
        {
            continue;
        }
        // `from_bytes` lower-cases the name as HTTP/2 wants it.
        let name = http::HeaderName::from_bytes(name.as_bytes());
        let value = http::HeaderValue::from_bytes(&crate::bytestr::to_bytes(value));
        match (name, value) {
            (Ok(name), Ok(value)) => drop(headers.append(name, value)),
            _ => return Err(invalid()),
        }
    }
    Ok(request)
}

/// The trailer fields of a chunked body from its bytes after its last data (`since_data`:
/// the CRLF ending that data if any, the last-chunk line, the trailer section, the empty
/// line), all checked by the decoder already; `None` if there are none.
fn trailers(since_data: &[u8]) -> io::Result<Option<Box<http::HeaderMap>>> {
    let mut lines = since_data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    // The CRLF after the last data, then the last-chunk line (`0`, maybe extensions).
    let mut last_chunk = lines.next();
    if last_chunk == Some(b"") {
        last_chunk = lines.next();
    }
    debug_assert!(last_chunk.is_some_and(|l| l.starts_with(b"0")));
    let mut map = http::HeaderMap::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(invalid());
        };
        let name = &line[..colon];
        if NOT_SENT
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        let name = http::HeaderName::from_bytes(name).map_err(|_| invalid())?;
        let value = http::HeaderValue::from_bytes(value).map_err(|_| invalid())?;
        map.append(name, value);
    }
    Ok((!map.is_empty()).then(|| Box::new(map)))
}

fn invalid() -> io::Error {
    io::ErrorKind::InvalidData.into()
}

/// The connection failed before this request's stream was opened: the request was not
/// sent, and another connection may take it.
fn unused(e: h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, e)
}
