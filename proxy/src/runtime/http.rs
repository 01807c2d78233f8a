//! HTTP mode: an HTTP/1.1 reverse proxy with keep-alive on both sides.
//!
//! Each request head is read (within `timeout http-request`), checked (a malformed one gets
//! 400 and the connection closes), given `X-Forwarded-For` with `option forwardfor`, and sent
//! to a server balanced for each request, as HAProxy 2.6 does, over an idle connection to it
//! when `http-reuse` allows one ([`super::pool`]), else a new one. Heads go out as
//! HAProxy's HTTP/1 layer writes them ([`super::h1`]: lower-case names, a `Connection`
//! header per hop); bodies are relayed by their framing (Content-Length, chunked, until
//! close), each read and write within HAProxy's timeout for it (`timeout server` for the
//! whole exchange with the server, the request body included; `timeout client` for writes
//! to the client); a relay that stops short says which side and how (`Stop`: the log's
//! `cD`, `CD`, `sD`, `SD`). A server's answer that comes while the request's body is still
//! going out reaches the client at once, the rest of the body going to the server after it
//! (`early`). A POST to a `balance url_param` backend waits for its body before its
//! server is chosen, unless its cookie chose it (`wait_for_body`); a request held so, or
//! in a tarpit, is listed by `show sess`. A request hapx answers itself has its body read
//! and dropped first, never taken for the next request.
//! Errors use the proxy's `errorfile`s or HAProxy's default pages; each request is logged
//! with `option httplog`. The stats page is served here for proxies with `stats enable`.
//! A proxy's rules ([`super::rules`]: `monitor-uri`, `http-request`, `use_backend`,
//! `http-response`) run on each request and response when it has any. A request in
//! progress on a server whose sessions are killed (`on-marked-down` / `on-marked-up`, an
//! operator's `shutdown sessions`) ends as HAProxy ends it ([`super::shutdown::Attached`]).
//! A TCP frontend's connection whose backend is HTTP comes here from [`super::session`]
//! ([`Upgrade`]): its first request goes to that backend, later ones through the frontend's
//! rules again, each logged in the frontend's format.
//!
//! A connection (`Conn`) is its socket, in clear, or with its TLS state boxed beside it
//! (`bind ... ssl` on the client side, `server ... ssl` on the server side): reads and
//! writes go through rustls then ([`super::tls::Over`]), and a plaintext connection pays
//! one pointer for it and no copy or allocation.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::balance::{Direct, QueuePositions};
use super::forward;
use super::log;
use super::logformat::Arrival;
use super::observe::{self, HttpOutcome};
use super::session::{self, ConnectError, Left, Slot};
use super::state::{Backend, Frontend, Server, SessionTimes, State};
use super::{chunked, h1, meter, pool, prometheus, rules, shutdown, stats, stats_admin, target};
use crate::config::bind_tls::TlsServer;
use crate::config::errors::Page;
use crate::config::model::{HttpReuse, MuxProto, Proxy, StatsPage, Timeouts};
use crate::config::rules::LogLevel;

mod early;
mod inspect;

/// Largest request or response head: HAProxy's default buffer (`tune.bufsize` 16384) less
/// the room it keeps for rewrites (`tune.maxrewrite` 1024). A head that has not ended
/// within it is refused, whatever one read brought.
const MAX_HEAD: usize = 16 * 1024 - 1024;
const READ_CHUNK: usize = 16 * 1024;

/// A parsed message head.
#[derive(Debug, Clone)]
pub struct Head {
    /// Request: method, URI, version; response: version, status, reason.
    pub first: [String; 3],
    pub headers: Vec<(String, String)>,
    /// The body framing the headers announce (see [`frame`]); a response's status and its
    /// request's method may still rule the body out ([`response_framing`]).
    pub framing: Framing,
    /// Transfer-Encoding and Content-Length both came: the length was dropped, and a
    /// connection carrying such a request closes after the response (HAProxy's answer to
    /// request smuggling).
    pub dropped_length: bool,
    /// The `Connection` tokens that came, which HTTP/1 keeps to each hop: `close` and
    /// `keep-alive` are gone from the headers (see [`h1`]).
    pub conn: h1::ConnTokens,
    /// An HTTP/2 request (None: HTTP/1): `first` holds the HTTP/1.1 origin form sent to the
    /// server, the fetches read HAProxy's internal form from it (absolute URI, `2.0`).
    pub h2: Option<super::h2::UriForm>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Whether the client connection closes after the response to this request, as the
    /// request asks: `close`, or HTTP/1.0 without `keep-alive`.
    fn asks_close(&self) -> bool {
        self.conn.close || (!h1::is_http11(&self.first[2]) && !self.conn.keep_alive)
    }
    /// The head's size as HAProxy counts it in its logs and stats (`%B`, `%U`, `bout`,
    /// `bin`): the size of its internal (HTX) form, not of the wire's. A start line is 20
    /// bytes of fixed fields and its three parts; a header, its name and value; the end of
    /// the head, one byte. (`Connection`'s `close` and `keep-alive` were dropped already, as
    /// HAProxy's HTTP/1 layer drops them.)
    pub(crate) fn logged_size(&self) -> u64 {
        let line = 20 + self.first.iter().map(String::len).sum::<usize>();
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        (line + headers + 1) as u64
    }

    /// What HAProxy still knows of a request once its head is gone (sent to its server,
    /// or the request answered and being logged): its method only, as `%[method]` reads
    /// it then (`txn->meth`); the other request fetches find nothing. Built on rare paths.
    pub(crate) fn method_only(method: &str) -> Head {
        Head {
            first: [method.to_string(), String::new(), String::new()],
            headers: Vec::new(),
            framing: Framing::None,
            dropped_length: false,
            conn: h1::ConnTokens::default(),
            h2: None,
        }
    }
}

/// The logged size of the part of the body of response `resp` (to a `method` request) that
/// is in `buf` already.
fn buffered_size(resp: &Head, method: &str, buf: &Buf) -> u64 {
    match response_framing(resp, method) {
        Framing::None => 0,
        Framing::Length(n) => (buf.len() as u64).min(n),
        Framing::UntilClose => buf.len() as u64,
        Framing::Chunked => {
            let mut decoder = chunked::Decoder::default();
            // A malformed part is not counted (HAProxy would not parse it either).
            let _ = decoder.advance(buf.bytes());
            decoder.logged_size()
        }
    }
}

/// [`Head::logged_size`] of a whole response hapx makes (an error page, a rule's answer),
/// its body included.
fn logged_size(message: &[u8]) -> u64 {
    let parsed = find_head_end(message)
        .and_then(|end| Some((parse_head(&message[..end], false).ok()?, end)));
    match parsed {
        Some((head, end)) => head.logged_size() + (message.len() - end) as u64,
        None => message.len() as u64,
    }
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed before sending anything.
    Closed,
    /// Timed out before the peer sent anything: a client's first request gets HAProxy's 408
    /// (unless `option http-ignore-probes`), a kept-alive one is closed quietly, a server's
    /// silence is a 504.
    IdleTimeout,
    /// Timed out with a partial head.
    Timeout,
    /// The peer closed with a partial head (HAProxy's `CR` for a client: it aborted).
    Truncated,
    Malformed(&'static str),
    /// A transfer coding hapx does not implement (only `chunked` is): HAProxy's 422.
    Unsupported(&'static str),
    /// A body on an HTTP/1.0 GET, HEAD or DELETE: HAProxy's 413.
    PayloadNotAllowed,
    TooLarge,
}

impl ReadError {
    /// The status HAProxy answers a client whose request head failed this way.
    fn status(&self) -> u16 {
        match self {
            ReadError::Timeout | ReadError::IdleTimeout => 408,
            ReadError::Unsupported(_) => 422,
            ReadError::PayloadNotAllowed => 413,
            _ => 400,
        }
    }
}

/// A read buffer: `data[start..end]` holds unread bytes; space is reused, not reallocated.
#[derive(Debug, Default)]
struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
    fn len(&self) -> usize {
        self.end - self.start
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
    /// Room for at least a quarter chunk after the data (taken on first use).
    fn spare(&mut self) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = chunk_pool::take();
        }
        if self.data.len() - self.end < READ_CHUNK / 4 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.data.len() - self.end < READ_CHUNK / 4 {
                self.data.resize(self.data.len() + READ_CHUNK, 0);
            }
        }
        &mut self.data[self.end..]
    }
    fn extend(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            self.end += n;
            bytes = &bytes[n..];
        }
    }
    fn take(&mut self) -> Vec<u8> {
        let out = self.bytes().to_vec();
        self.consume(self.len());
        out
    }
    /// Frees the space of an empty buffer: a connection waiting for its next message holds
    /// none (a chunk each; HAProxy's idle connections hold no buffer either).
    fn release_if_empty(&mut self) {
        if self.is_empty() {
            chunk_pool::give_back(std::mem::take(&mut self.data));
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        chunk_pool::give_back(std::mem::take(&mut self.data));
    }
}

/// Each thread's spare read chunks. Buffers are given back before every keep-alive wait (an
/// idle connection holds none), so a busy connection takes one or two per request: from this
/// pool that costs neither an allocation nor clearing 16 KB (their old bytes are never read:
/// a [`Buf`] only reads what it received). Bounded, so a burst leaves at most
/// `KEPT` chunks per thread behind.
mod chunk_pool {
    use super::READ_CHUNK;
    use std::cell::RefCell;

    const KEPT: usize = 64;

    thread_local! {
        static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take() -> Vec<u8> {
        SPARE
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| vec![0; READ_CHUNK])
    }

    /// Keeps `chunk` for reuse if it is one of ours and the pool has room.
    pub(super) fn give_back(chunk: Vec<u8>) {
        if chunk.len() == READ_CHUNK {
            // At thread exit the pool is gone: the chunk is then simply freed.
            let _ = SPARE.try_with(|p| {
                let mut pool = p.borrow_mut();
                if pool.len() < KEPT {
                    pool.push(chunk);
                }
            });
        }
    }
}

/// A socket with its read buffer.
#[derive(Debug)]
struct Conn {
    /// A server connection's socket in the kill registry while a stream uses it
    /// ([`shutdown::Registration`]). Declared before `stream`, so that it drops first: a
    /// registered socket number is always this open socket.
    registered: Option<shutdown::Registration>,
    stream: Socket,
    buf: Buf,
    /// Whether [`Conn::first_byte`] is kept and each request's [`Arrival`] measured: on a
    /// client connection whose frontend logs or whose rules' values show timers
    /// ([`rules::values_use_timers`]); it costs clock reads per request.
    stamps_first_byte: bool,
    /// When the next request's first byte came into the empty buffer (`%Ti`); None: it
    /// was there already (pipelined), or nobody reads it.
    first_byte: Option<Instant>,
    /// The address a client connected to as rules see it, once one needed it: a wildcard
    /// bind's costs a getsockname(2), once per connection.
    dst: Option<SocketAddr>,
    /// A server connection's responses so far (one that served two is HAProxy's "safe").
    served: u32,
    /// A server connection that authenticated its client connection (see
    /// [`authenticates_connection`]): it stays that client connection's.
    private: bool,
    /// A server connection whose last response was read whole, and that the server keeps
    /// open: set only at the end of [`respond`], cleared when a request takes it. Only such
    /// a connection is kept for another request ([`Upstream::detach`]), so none ever goes
    /// to another request with (part of) a response still to come.
    response_complete: bool,
    /// A server connection's [`Server::conn_generation`] when it was opened.
    generation: u64,
    /// A server connection that closes with a reset (HAProxy's `FD_LINGER_RISK`) until the
    /// server's close is read (`conn_sock_read0`): normally from then on, `option nolinger`
    /// or not, as HAProxy (see [`session::end_linger_risk`]).
    linger_risk: bool,
    /// `bind ... ssl`: the client connection's TLS state; its I/O goes through it.
    tls: Option<Box<super::tls::Session>>,
    /// A stream of an HTTP/2 client connection ([`super::h2`]): the request is read from
    /// it and the response written to it, not to `stream` (the connection's socket, kept
    /// for its addresses).
    h2: Option<Box<super::h2::Stream>>,
    /// A server connection that speaks HTTP/2 ([`super::h2_server`]): requests are written
    /// to it and responses read from it, its socket (`stream`) shared with its task.
    h2_up: Option<Box<super::h2_server::Link>>,
    /// An HTTP/1 connection (not an HTTP/2 one nor a stream of one) in its frontend's or
    /// backend's [`h1::Counters`]: its reads and writes counted there.
    h1: Option<h1::Link>,
}

/// A connection's socket: its own, or, for a stream of an HTTP/2 connection, the
/// connection's, shared (its addresses for the rules and logs, its number for the kill
/// registry: neither read nor written through the stream, no descriptor of its own).
#[derive(Debug)]
enum Socket {
    Own(TcpStream),
    Shared(Arc<TcpStream>),
}

impl std::ops::Deref for Socket {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        match self {
            Socket::Own(s) => s,
            Socket::Shared(s) => s,
        }
    }
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Conn::over(Socket::Own(stream))
    }

    fn over(stream: Socket) -> Self {
        Conn {
            registered: None,
            stream,
            buf: Buf::default(),
            stamps_first_byte: false,
            first_byte: None,
            dst: None,
            served: 0,
            private: false,
            response_complete: false,
            generation: 0,
            linger_risk: false,
            tls: None,
            h2: None,
            h2_up: None,
            h1: None,
        }
    }

    /// Counts `n` bytes read from the connection (an HTTP/1 one's).
    fn read_counted(&self, n: usize) {
        if let Some(link) = &self.h1 {
            link.read(n);
        }
    }

    /// Counts `n` bytes written to the connection (an HTTP/1 one's).
    fn written_counted(&self, n: usize) {
        if let Some(link) = &self.h1 {
            link.wrote(n);
        }
    }

    /// A request begins on an HTTP/1 connection (its stream, in its proxy's counters).
    fn stream_starts(&mut self) {
        if let Some(link) = &mut self.h1 {
            link.start_stream();
        }
    }

    /// The request on an HTTP/1 connection is over.
    fn stream_ends(&mut self) {
        if let Some(link) = &mut self.h1 {
            link.end_stream();
        }
    }

    /// Whether a kept server connection to `server` may take a request: of the server's
    /// current generation, with nothing buffered, and not closed by the server meanwhile
    /// (one look, as at an idle connection of the pool).
    fn reusable_for(&mut self, server: &Server) -> bool {
        if let Some(link) = self.h2_up.as_deref() {
            // Its socket is read by its task: the link knows whether it is still up.
            return self.generation == server.conn_generation() && link.is_idle();
        }
        self.generation == server.conn_generation()
            && self.drained()
            && pool::is_quiet(&self.stream)
    }

    /// Nothing read and not taken: in the buffer, and through TLS in its staged bytes or
    /// decrypted in rustls.
    fn drained(&mut self) -> bool {
        self.buf.is_empty() && !self.tls.as_deref_mut().is_some_and(|t| t.holds_data())
    }

    /// How the request whose head was just read, begun at `started`, arrived (zero when
    /// nothing shows it).
    fn arrival(&mut self, started: Instant) -> Arrival {
        let first_byte = self.first_byte.take();
        if self.stamps_first_byte {
            Arrival::now(started, first_byte)
        } else {
            Arrival::default()
        }
    }

    /// The address the client connected to ([`rules::local_addr`] of the listener's
    /// `bound` one), resolved on the connection's first call.
    fn dst(&mut self, bound: SocketAddr) -> SocketAddr {
        *self
            .dst
            .get_or_insert_with(|| rules::local_addr(&self.stream, bound))
    }

    /// Reads more into the buffer; Ok(0) at end of stream. Tries the socket before waiting
    /// (an answer is often there already), and before arming a timer, which costs a clock
    /// read and a timer entry.
    async fn fill(&mut self, timeout: Option<Duration>) -> std::io::Result<usize> {
        if let Some(n) = self.try_fill()? {
            return Ok(n);
        }
        self.fill_until(timeout.and_then(|t| Instant::now().checked_add(t)))
            .await
    }

    /// Reads what the socket has now, without waiting; `None` if nothing came yet.
    fn try_fill(&mut self) -> std::io::Result<Option<usize>> {
        // A chunk comes from the thread's pool for the attempt and goes back if nothing
        // came: a connection that sends nothing holds no buffer.
        let waited = |read: std::io::Result<Option<usize>>| match read {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(std::io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e),
        };
        let read = match (self.tls.as_deref_mut(), self.h2.as_deref_mut()) {
            _ if self.h2_up.is_some() => {
                let link = self.h2_up.as_deref_mut().expect("checked just above");
                waited(link.try_read(self.buf.spare()))
            }
            (None, None) => forward::read_drain(&self.stream, self.buf.spare()),
            (Some(tls), _) => waited(tls.over(&self.stream).try_read(self.buf.spare())),
            (None, Some(h2)) => waited(h2.try_read(self.buf.spare())),
        };
        match read {
            Ok(n) => {
                self.buf.end += n;
                self.read_counted(n);
                self.note_end(n);
                Ok(Some(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.buf.release_if_empty();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// [`Conn::try_fill`] as a poll: what came is read, else `cx` is woken when more comes.
    fn poll_fill(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::{Poll, ready};
        // A stream of an HTTP/2 connection (or to an HTTP/2 server): its frames' task
        // wakes it.
        let polled = match (self.h2.as_deref_mut(), self.h2_up.as_deref_mut()) {
            (Some(h2), _) => Some(h2.poll_read(cx, self.buf.spare())),
            (None, Some(link)) => Some(link.poll_read(cx, self.buf.spare())),
            (None, None) => None,
        };
        if let Some(polled) = polled {
            let Poll::Ready(read) = polled else {
                self.buf.release_if_empty();
                return Poll::Pending;
            };
            let n = read?;
            self.buf.end += n;
            return Poll::Ready(Ok(n));
        }
        loop {
            if let Some(n) = self.try_fill()? {
                return Poll::Ready(Ok(n));
            }
            // The read found nothing and cleared the socket's readiness: this registers
            // `cx` for the next.
            ready!(self.stream.poll_read_ready(cx))?;
        }
    }

    /// After a read of `n` bytes: at the end of a server connection's stream, the server
    /// closed first, and the connection closes cleanly from now on.
    fn note_end(&mut self, n: usize) {
        if n == 0 && std::mem::take(&mut self.linger_risk) {
            session::end_linger_risk(&self.stream, false);
        }
    }

    /// Whether an idle server connection a client connection owns stays open: one the server
    /// closed (a FIN, or through TLS its close_notify) is closed at once with a FIN (through
    /// TLS after a close_notify), as HAProxy closes it on its read0; stray bytes or an error
    /// end it too (a reset). Until then `cx` is woken by the poller at its next close or data.
    fn stays_idle(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        if let Some(link) = self.h2_up.as_deref() {
            return link.poll_idle(cx);
        }
        let Some(tls) = self.tls.as_deref_mut() else {
            return match pool::look(&self.stream, cx.waker()) {
                pool::Look::Quiet => true,
                pool::Look::Closed => {
                    self.note_end(0);
                    false
                }
                pool::Look::Stray => false,
            };
        };
        let mut byte = [0; 1];
        let mut read = tokio::io::ReadBuf::new(&mut byte);
        let mut over = tls.over(&self.stream);
        match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut over), cx, &mut read) {
            std::task::Poll::Pending => true,
            std::task::Poll::Ready(Ok(())) if read.filled().is_empty() => {
                // HAProxy answers with its own close_notify before the FIN.
                let _ = tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut over), cx);
                self.note_end(0);
                false
            }
            std::task::Poll::Ready(_) => false,
        }
    }

    /// [`Conn::fill`] with a deadline (`None`: none), once [`Conn::try_fill`] found nothing:
    /// it waits before it reads.
    async fn fill_until(&mut self, deadline: Option<Instant>) -> std::io::Result<usize> {
        let Conn {
            stream,
            buf,
            tls,
            h2,
            h2_up,
            ..
        } = self;
        let read = async {
            if let Some(h2) = h2.as_deref_mut() {
                return std::future::poll_fn(|cx| h2.poll_read(cx, buf.spare())).await;
            }
            if let Some(link) = h2_up.as_deref_mut() {
                return std::future::poll_fn(|cx| link.poll_read(cx, buf.spare())).await;
            }
            // Through TLS too, the wait holds no buffer (an idle kept-alive connection
            // would keep a chunk): readiness first, then a read that does not wait.
            if let Some(tls) = tls.as_deref_mut() {
                loop {
                    buf.release_if_empty();
                    stream.readable().await?;
                    if let Some(n) = tls.over(stream).try_read(buf.spare())? {
                        return Ok(n);
                    }
                }
            }
            loop {
                stream.readable().await?;
                match forward::read_drain(stream, buf.spare()) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        };
        let n = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), read)
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"))??,
            None => read.await?,
        };
        self.buf.end += n;
        self.read_counted(n);
        self.note_end(n);
        Ok(n)
    }

    /// Writes `data` whole (through TLS on a `bind ... ssl` client connection). A plain
    /// future over [`Conn::poll_write_all`]: an async wrapper around the two ways would
    /// add its own state to every connection's task (measured: 24 bytes more per idle
    /// HTTP connection).
    fn write_all<'a>(
        &'a mut self,
        data: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + 'a {
        let mut written = 0;
        std::future::poll_fn(move |cx| self.poll_write_all(cx, data, &mut written))
    }

    /// [`Conn::write_all`] within an inactivity `timeout` (`TimedOut` when the peer took
    /// nothing for that long; `None`: none), as HAProxy bounds writes with the receiving
    /// side's timeout. A write that goes at once costs no clock read, timer entry nor
    /// allocation; once the socket is full, the rest waits in [`Conn::write_rest`], boxed:
    /// its timer would otherwise take room in every connection's task.
    async fn write_within(
        &mut self,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        use std::task::Poll;
        let mut written = 0;
        let first =
            std::future::poll_fn(|cx| Poll::Ready(self.poll_write_all(cx, data, &mut written)));
        if let Poll::Ready(done) = first.await {
            return done;
        }
        Box::pin(self.write_rest(data, written, timeout)).await
    }

    /// Writes `data[written..]` within `timeout`, a timer pushed back as the peer takes
    /// bytes (an inactivity timeout, as HAProxy's).
    async fn write_rest(
        &mut self,
        data: &[u8],
        mut written: usize,
        timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        use std::task::Poll;
        let Some(timeout) = timeout else {
            return std::future::poll_fn(|cx| self.poll_write_all(cx, data, &mut written)).await;
        };
        let timer = tokio::time::sleep(timeout);
        tokio::pin!(timer);
        let mut seen = written;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(done) = self.poll_write_all(cx, data, &mut written) {
                return Poll::Ready(done);
            }
            if written != seen {
                seen = written;
                timer.as_mut().reset(tokio::time::Instant::now() + timeout);
            }
            timer
                .as_mut()
                .poll(cx)
                .map(|()| Err(std::io::ErrorKind::TimedOut.into()))
        })
        .await
    }

    /// [`Conn::write_within`] of two parts, one after the other: in one writev(2) when the
    /// socket takes them at once (no copy of the second after the first), else each part's
    /// rest in turn.
    async fn write_two_within(
        &mut self,
        (first, second): (&[u8], &[u8]),
        timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        if second.is_empty() {
            return self.write_within(first, timeout).await;
        }
        if self.tls.is_some() || self.h2.is_some() || self.h2_up.is_some() {
            // Joined: rustls makes one record of them, sent at once (an HTTP/2 stream takes
            // them whole too).
            return self.write_within(&[first, second].concat(), timeout).await;
        }
        let parts = [std::io::IoSlice::new(first), std::io::IoSlice::new(second)];
        let done = match self.stream.try_write_vectored(&parts) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        self.written_counted(done);
        let (in_first, in_second) = (done.min(first.len()), done.saturating_sub(first.len()));
        if in_first < first.len() {
            self.write_within(&first[in_first..], timeout).await?;
        }
        if in_second < second.len() {
            self.write_within(&second[in_second..], timeout).await?;
        }
        Ok(())
    }

    /// Writes `data[*written..]`, then (through TLS) sends what rustls holds.
    fn poll_write_all(
        &mut self,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
        written: &mut usize,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::pin::Pin;
        use std::task::{Poll, ready};
        use tokio::io::AsyncWrite;
        if let Some(h2) = self.h2.as_deref_mut() {
            while *written < data.len() {
                *written += ready!(h2.poll_write(cx, &data[*written..]))?;
            }
            return h2.poll_flush(cx);
        }
        if let Some(link) = self.h2_up.as_deref_mut() {
            while *written < data.len() {
                *written += ready!(link.poll_write(cx, &data[*written..]))?;
            }
            return link.poll_flush(cx);
        }
        while *written < data.len() {
            let rest = &data[*written..];
            let n = match self.tls.as_deref_mut() {
                None => match &mut self.stream {
                    Socket::Own(s) => ready!(Pin::new(s).poll_write(cx, rest))?,
                    // (An HTTP/2 stream writes through `h2`, above.)
                    Socket::Shared(_) => {
                        return Poll::Ready(Err(std::io::ErrorKind::Unsupported.into()));
                    }
                },
                Some(tls) => ready!(Pin::new(&mut tls.over(&self.stream)).poll_write(cx, rest))?,
            };
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            self.written_counted(n);
        }
        match self.tls.as_deref_mut() {
            None => Poll::Ready(Ok(())),
            Some(tls) => Pin::new(&mut tls.over(&self.stream)).poll_flush(cx),
        }
    }

    async fn read_head(
        &mut self,
        timeout: Option<Duration>,
        request: bool,
    ) -> Result<Head, ReadError> {
        self.read_head_within(HeadWait::same(timeout), request)
            .await
    }

    /// [`Conn::read_head`], with one timeout while nothing of the head came and another
    /// once its first byte did, both counted from the start of the wait.
    async fn read_head_within(&mut self, wait: HeadWait, request: bool) -> Result<Head, ReadError> {
        // An HTTP/2 stream's came whole, built from its frames.
        if let Some(head) = self
            .h2
            .as_deref_mut()
            .and_then(super::h2::Stream::take_head)
        {
            if self.stamps_first_byte {
                self.first_byte = Some(Instant::now());
            }
            return head;
        }
        // Read when the head is first waited for (a head already there costs no clock
        // read).
        let mut waiting_since = None;
        // How much of the buffer was searched for the head's end, in vain.
        let mut searched = 0;
        loop {
            let bytes = self.buf.bytes();
            let found = find_head_end_from(bytes, searched);
            let previously_searched = std::mem::replace(&mut searched, bytes.len());
            match found {
                Some(end) if end > MAX_HEAD => return Err(ReadError::TooLarge),
                Some(end) => {
                    let head = parse_head(&self.buf.bytes()[..end], request)?;
                    if request && head.first[0] == "PRI" {
                        return Err(ReadError::Malformed(PRI_METHOD));
                    }
                    self.buf.consume(end);
                    return Ok(head);
                }
                None if self.buf.len() >= MAX_HEAD => return Err(ReadError::TooLarge),
                None if has_bare_cr(bytes, previously_searched) => {
                    return Err(ReadError::Malformed("bare CR"));
                }
                None => {}
            }
            let was_empty = self.buf.is_empty();
            let filled = match self.try_fill() {
                Ok(Some(n)) => Ok(n),
                Ok(None) => {
                    let since = match waiting_since {
                        // Re-armed by the bytes that came since.
                        Some(_) if wait.begun_rearms && !was_empty => Instant::now(),
                        _ => *waiting_since.get_or_insert_with(Instant::now),
                    };
                    // None when it lies beyond what `Instant` holds: the timeout never fires.
                    let deadline = wait.limit(was_empty).and_then(|t| since.checked_add(t));
                    self.fill_until(deadline).await
                }
                Err(e) => Err(e),
            };
            match filled {
                Ok(0) if self.buf.is_empty() => return Err(ReadError::Closed),
                Ok(0) => return Err(ReadError::Truncated),
                Ok(_) if was_empty && self.stamps_first_byte => {
                    self.first_byte = Some(Instant::now());
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(if self.buf.is_empty() {
                        ReadError::IdleTimeout
                    } else {
                        ReadError::Timeout
                    });
                }
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }
}

/// How long a head may take to arrive: HAProxy's H1
/// multiplexer gives a kept-alive connection `timeout http-keep-alive` only while no byte
/// of its next request came; from the first one on, `timeout http-request` (or `client`).
/// The timeouts in milliseconds ([`head_wait_ms`]): small, since every kept-alive
/// connection's task holds its copies.
#[derive(Debug, Clone, Copy)]
struct HeadWait {
    /// While nothing of the head came.
    idle: Option<u32>,
    /// Once its first byte came.
    begun: Option<u32>,
    /// Whether `begun` counts from the last byte received rather than from the wait's
    /// start: HAProxy's `timeout client` is a read timeout that each read arms again, its
    /// `timeout http-request` a deadline for the whole head.
    begun_rearms: bool,
}

impl HeadWait {
    /// One timeout, whether the head began or not, counted from the wait's start.
    fn same(timeout: Option<Duration>) -> Self {
        HeadWait {
            idle: head_wait_ms(timeout),
            begun: head_wait_ms(timeout),
            begun_rearms: false,
        }
    }

    /// A client's request head: `idle` before its first byte, then `timeout http-request`
    /// from the wait's start or, without one, `timeout client` from each read.
    fn request(idle: Option<Duration>, t: &crate::config::model::Timeouts) -> Self {
        HeadWait {
            idle: head_wait_ms(idle),
            begun: head_wait_ms(t.http_request.or(t.client)),
            begun_rearms: t.http_request.is_none(),
        }
    }

    /// The wait, `waited` of it spent already before anything came: its idle timeout comes
    /// that much sooner (the head's own, once it begins, counts from its first bytes, as
    /// HAProxy's stream begins with them).
    fn less(self, waited: Duration) -> Self {
        let waited = u32::try_from(waited.as_millis()).unwrap_or(u32::MAX);
        HeadWait {
            idle: self.idle.map(|ms| ms.saturating_sub(waited)),
            ..self
        }
    }

    /// The timeout that applies, with nothing of the head come yet or with some.
    fn limit(self, nothing_came: bool) -> Option<Duration> {
        let ms = if nothing_came { self.idle } else { self.begun };
        ms.map(|ms| Duration::from_millis(u64::from(ms)))
    }
}

/// A head wait's timeout in milliseconds, rounded up: a time left of zero (a deadline
/// passed) stays zero, and fires at once.
fn head_wait_ms(timeout: Option<Duration>) -> Option<u32> {
    let d = timeout?;
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    Some(u32::try_from(ms).unwrap_or(u32::MAX))
}

/// The length of the head including its final empty line.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    find_head_end_from(buf, 0)
}

/// [`find_head_end`], for a buffer whose first `seen` bytes were searched already, in vain:
/// a head that arrives a few bytes at a time is searched once, not once per read (a client
/// sending its head byte by byte would otherwise cost a quadratic search).
fn find_head_end_from(buf: &[u8], seen: usize) -> Option<usize> {
    // The head ends at its first empty line, "\n" or "\r\n" after an LF, whatever ended
    // the line before it (HAProxy's parser takes either ending on every line). An LF among
    // the last bytes searched may complete one only now.
    let mut at = seen.saturating_sub(2);
    while let Some(i) = h1::find_byte(&buf[at..], b'\n').map(|p| at + p) {
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => return Some(i + 2),
            Some([b'\r', b'\n', ..]) => return Some(i + 3),
            _ => at = i + 1,
        }
    }
    None
}

/// Whether the bytes from `seen` on (less one, whose CR may be followed only now) hold a CR
/// not followed by LF: HAProxy's parser refuses the message as soon as it meets one (a CR
/// ends a line or nothing), without waiting for the head's end. Asked only of a head still
/// incomplete: a complete one is refused by [`parse_head`] all the same.
fn has_bare_cr(buf: &[u8], seen: usize) -> bool {
    let mut at = seen.saturating_sub(1);
    while let Some(i) = h1::find_byte(&buf[at..], b'\r').map(|p| at + p) {
        match buf.get(i + 1) {
            Some(b'\n') | None => at = i + 1,
            Some(_) => return true,
        }
    }
    false
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A character of an RFC 9110 token (methods, header names).
pub(super) fn is_tchar(b: u8) -> bool {
    TCHARS[usize::from(b)]
}

/// [`is_tchar`] by byte: a table, as every byte of every header name is checked.
const TCHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let specials = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < specials.len() {
        table[specials[i] as usize] = true;
        i += 1;
    }
    table
};

/// Why a client's request whose method is `PRI` is refused: HAProxy's HTTP/1 parser takes
/// it (as [`parse_head`] does, for the fetches of a TCP stream), and its analysis refuses it
/// (it is HTTP/2's preface), with a 400 of its own (see [`refuse_pri`]).
const PRI_METHOD: &str = "the PRI method (HTTP/2's preface)";

/// Parses and checks a head the way HAProxy rejects requests with 400.
pub fn parse_head(raw: &[u8], request: bool) -> Result<Head, ReadError> {
    // Any byte but CR and LF may come in a header value (see `bytestr`), and folded lines
    // are joined (see `h1::unfold`).
    let raw = h1::unfold(raw);
    let text = crate::bytestr::from_bytes(&raw);
    let mut lines = h1::lines(&text);
    let first = lines.next().unwrap_or_default();
    // Parts are separated by runs of blanks (HAProxy's parser skips them); a reason phrase
    // is the rest of the line.
    // A request line's parts, up to one too many (no allocation: one per message).
    let mut found = [""; 4];
    let parts: &[&str] = if request {
        // Blanks separate the parts; none may come before the method or after the
        // version (HAProxy's 400).
        let edges = [first.bytes().next(), first.bytes().last()];
        if edges.into_iter().flatten().any(h1::is_blank) {
            return Err(ReadError::Malformed(
                "blank before the method or after the version",
            ));
        }
        let mut words = h1::words(first);
        let n = found
            .iter_mut()
            .zip(&mut words)
            .map(|(at, w)| *at = w)
            .count();
        &found[..n]
    } else {
        let (version, rest) = h1::split_at_blank(first).unwrap_or((first, ""));
        let rest = h1::trim_start_blanks(rest);
        let (code, reason) = h1::split_at_blank(rest).unwrap_or((rest, ""));
        found[..3].copy_from_slice(&[version, code, h1::trim_start_blanks(reason)]);
        &found[..3]
    };
    let first: [String; 3] = match (request, parts) {
        (true, [m, u, v]) if is_token(m) && !u.is_empty() && is_version(v.as_bytes()) => {
            // A `#` too: fragments never go on the wire, and one would steer `path`
            // matches (HAProxy's fix for CVE-2023-45539, in Debian's 2.6.12).
            if u.bytes().any(|b| !is_uri_byte(b)) {
                return Err(ReadError::Malformed("bad URI"));
            }
            [m.to_string(), u.to_string(), v.to_string()]
        }
        (false, [v, s, rest @ ..])
            if v.starts_with("HTTP/1.")
                && s.len() == 3
                && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            [
                v.to_string(),
                s.to_string(),
                rest.first().unwrap_or(&"").to_string(),
            ]
        }
        _ => return Err(ReadError::Malformed("bad start line")),
    };
    let mut fields = Fields::default();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        // By bytes, not `char` patterns (':' and CR are ASCII: the cuts are boundaries).
        let colon = h1::find_byte(line.as_bytes(), b':');
        let colon = colon.ok_or(ReadError::Malformed("header without colon"))?;
        fields.push(&line[..colon], &line[colon + 1..], request)?;
    }
    fields.into_head(first, request)
}

/// Whether `b` may stand in an HTTP/1 request's URI, as HAProxy's H1 parser reads it: a
/// visible ASCII character other than `#`.
pub(crate) fn is_uri_byte(b: u8) -> bool {
    b > b' ' && b < 0x7f && b != b'#'
}

/// `HTTP/d.d`, any version HAProxy's HTTP/1 parser takes on a request line (`HTTP/2.0`
/// too: it goes on as HTTP/1.1, see `h1::write_request`).
pub(crate) fn is_version(v: &[u8]) -> bool {
    matches!(v, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// A request head from the parts an HTTP/2 stream gives ([`super::h2`]): its start line
/// in HTTP/1.1's origin form and its headers (`host` first, from `:authority`), checked
/// and normalized as [`parse_head`] does the same head in HTTP/1.1's bytes.
pub(crate) fn request_head<'a>(
    first: [String; 3],
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Head, ReadError> {
    let uri = first[1].as_bytes();
    if !is_token(&first[0]) || uri.is_empty() || uri.iter().any(|&b| b <= b' ' || b >= 0x7f) {
        return Err(ReadError::Malformed("bad start line"));
    }
    // The head's size in HTTP/1.1, its CRLFs included, bounded as a head read is.
    let mut size = first.iter().map(|p| p.len() + 1).sum::<usize>() + 1 + 2;
    if size > MAX_HEAD {
        return Err(ReadError::TooLarge);
    }
    let mut fields = Fields::default();
    for (name, value) in headers {
        size += name.len() + 2 + value.len() + 2;
        if size > MAX_HEAD {
            return Err(ReadError::TooLarge);
        }
        fields.push(name, &crate::bytestr::from_bytes(value), true)?;
    }
    fields.into_head(first, true)
}

/// The headers of a head being read, and what they told so far.
#[derive(Default)]
struct Fields {
    headers: Vec<(String, String)>,
    /// The tokens of its `Connection` headers.
    conn: h1::ConnTokens,
    /// Where its `Host` header is.
    host: Option<usize>,
}

impl Fields {
    /// Takes one header of a message (`request` or response), refused as HAProxy's h1
    /// parser refuses it.
    fn push(&mut self, name: &str, value: &str, request: bool) -> Result<(), ReadError> {
        if !is_token(name) {
            return Err(ReadError::Malformed("bad header name"));
        }
        if value.as_bytes().contains(&b'\r') {
            return Err(ReadError::Malformed("bad header value"));
        }
        // HAProxy trims blanks only (a form feed or a no-break space stays).
        let value = h1::trim_blanks(value);
        // Several `Host` headers: the same one again is dropped, another one is refused.
        if request && name.eq_ignore_ascii_case("host") {
            match self.host {
                Some(at) if value.eq_ignore_ascii_case(&self.headers[at].1) => return Ok(()),
                Some(_) => return Err(ReadError::Malformed("conflicting host headers")),
                None => self.host = Some(self.headers.len()),
            }
        }
        let value = if name.eq_ignore_ascii_case("connection") {
            match self.conn.clean(value) {
                cleaned if cleaned.is_empty() => return Ok(()),
                cleaned => cleaned,
            }
        } else {
            value.into()
        };
        self.headers.push((name.to_string(), value.into_owned()));
        Ok(())
    }

    /// The head of start line `first` and these headers, its target checked and its body
    /// framing found.
    fn into_head(self, mut first: [String; 3], request: bool) -> Result<Head, ReadError> {
        let Fields {
            mut headers,
            conn,
            host,
        } = self;
        if conn.upgrade && !websocket_key_valid(&headers, request) {
            return Err(ReadError::Malformed(
                "websocket upgrade without a valid key",
            ));
        }
        if request {
            let host_value = host.map(|at| headers[at].1.as_str());
            let normalized =
                target::check(&first[0], &first[1], host_value).map_err(ReadError::Malformed)?;
            if let Some(uri) = normalized.uri {
                first[1] = uri;
            }
            if let (Some(value), Some(at)) = (normalized.host, host) {
                headers[at].1 = value;
            }
        }
        let mut head = Head {
            first,
            headers,
            framing: Framing::None,
            dropped_length: false,
            conn,
            h2: None,
        };
        head.framing = frame(&mut head, request)?;
        // HTTP/1.0 gives GET, HEAD and DELETE no body: HAProxy refuses one with 413.
        let body = matches!(head.framing, Framing::Chunked | Framing::Length(1..));
        let bodyless_method = matches!(head.first[0].as_str(), "GET" | "HEAD" | "DELETE");
        if request && body && bodyless_method && head.first[2] == "HTTP/1.0" {
            return Err(ReadError::PayloadNotAllowed);
        }
        Ok(head)
    }
}

/// Whether a message asking `Connection: upgrade` may go on: unless its last `Upgrade`
/// header names `websocket`, yes; if it does, a request only with a `Sec-WebSocket-Key`
/// of 24 characters (a base64 nonce of 16 bytes), a response only with a
/// `Sec-WebSocket-Accept` (any value: HAProxy verifies it only against a key it made
/// itself, for an h2 client), as HAProxy's h1 parser checks them (it refuses the request
/// with 400, the response with 502). Only asked for messages naming `upgrade`.
fn websocket_key_valid(headers: &[(String, String)], request: bool) -> bool {
    let upgrade = headers.iter().rev().find(|h| is_named(h, "upgrade"));
    let websocket = upgrade.is_some_and(|(_, value)| {
        value.split(',').any(|word| {
            word.trim_matches([' ', '\t'])
                .eq_ignore_ascii_case("websocket")
        })
    });
    !websocket
        || headers.iter().any(|h| match request {
            true => is_named(h, "sec-websocket-key") && h.1.len() == 24,
            false => is_named(h, "sec-websocket-accept"),
        })
}

fn is_named(header: &(String, String), name: &str) -> bool {
    header.0.eq_ignore_ascii_case(name)
}

/// Decides a message's body framing by RFC 9112 section 6.3, as HAProxy 2.6 does, and
/// leaves the head with one unambiguous framing header to forward:
/// - Transfer-Encoding wins over Content-Length, which is removed (`dropped_length`);
/// - the codings must end in one `chunked`; others before it are refused as unsupported;
/// - every Content-Length must be digits and agree; the first header alone goes on, as
///   written when it gave one value (see [`content_length`]);
/// - neither: a request has no body, a response runs until the server closes.
fn frame(head: &mut Head, request: bool) -> Result<Framing, ReadError> {
    let chunked = transfer_codings(head)?;
    let length = content_length(head)?;
    if chunked {
        head.dropped_length = length.is_some();
        head.headers.retain(|h| !is_named(h, "content-length"));
        return Ok(Framing::Chunked);
    }
    Ok(match (length, request) {
        (Some(length), _) => {
            // The kept header holds its last word alone; the common case, one plain
            // value, is forwarded as it is (no rewrite to pay).
            let first = &mut head.headers[length.first].1;
            if length.word.len() != first.len() {
                *first = first[length.word].to_string();
            }
            if length.several {
                let mut seen = 0;
                head.headers.retain(|h| {
                    seen += usize::from(is_named(h, "content-length"));
                    !is_named(h, "content-length") || seen == 1
                });
            }
            Framing::Length(length.n)
        }
        (None, true) => Framing::None,
        (None, false) => Framing::UntilClose,
    })
}

/// Whether Transfer-Encoding headers say `chunked`: they must list it once and last, and
/// nothing else (hapx, like HAProxy, decodes no other coding).
fn transfer_codings(head: &Head) -> Result<bool, ReadError> {
    if !head
        .headers
        .iter()
        .any(|h| is_named(h, "transfer-encoding"))
    {
        return Ok(false);
    }
    let codings: Vec<&str> = head
        .headers
        .iter()
        .filter(|h| is_named(h, "transfer-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect();
    if codings.is_empty() {
        return Ok(false);
    }
    let is_chunked = |c: &&str| c.eq_ignore_ascii_case("chunked");
    if codings.iter().filter(|c| is_chunked(c)).count() > 1 {
        return Err(ReadError::Malformed("chunked applied twice"));
    }
    if !codings.last().is_some_and(is_chunked) {
        return Err(ReadError::Malformed(
            "transfer-encoding not ending in chunked",
        ));
    }
    if codings.len() > 1 {
        return Err(ReadError::Unsupported("transfer coding other than chunked"));
    }
    Ok(true)
}

/// The Content-Length all headers agree on, if any, read as HAProxy's
/// `h1_parse_cont_len_header` reads it: each header is a list of digit words separated by
/// commas and blanks (space, tab), all equal; the first header is kept, holding its last word
/// as written (`01` stays `01`), and later ones are dropped.
fn content_length(head: &Head) -> Result<Option<ContentLength>, ReadError> {
    let mut length: Option<ContentLength> = None;
    let headers = head.headers.iter().enumerate();
    for (at, (_, v)) in headers.filter(|(_, h)| is_named(h, "content-length")) {
        let bad = ReadError::Malformed("bad content-length");
        let bytes = v.as_bytes();
        let mut i = 0;
        let mut last_word = None;
        while i < bytes.len() {
            if h1::is_blank(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            let mut n: u64 = 0;
            while let Some(digit) = bytes
                .get(i)
                .and_then(|b| b.checked_sub(b'0'))
                .filter(|d| *d <= 9)
            {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(digit)))
                    .ok_or(ReadError::Malformed("bad content-length"))?;
                i += 1;
            }
            if i == start {
                return Err(bad);
            }
            let word = start..i;
            while i < bytes.len() && h1::is_blank(bytes[i]) {
                i += 1;
            }
            // A comma announces one more word.
            match bytes.get(i) {
                None => {}
                Some(b',') if bytes[i + 1..].iter().any(|b| !h1::is_blank(*b)) => i += 1,
                Some(_) => return Err(bad),
            }
            match &mut length {
                Some(l) if l.n != n => {
                    return Err(ReadError::Malformed("conflicting content-length"));
                }
                Some(l) => l.several |= l.first != at,
                None => {}
            }
            last_word = Some((n, word));
        }
        let Some((n, word)) = last_word else {
            return Err(ReadError::Malformed("empty content-length"));
        };
        if length.is_none() {
            length = Some(ContentLength {
                n,
                first: at,
                word,
                several: false,
            });
        }
    }
    Ok(length)
}

/// A message's Content-Length, as [`content_length`] reads it.
struct ContentLength {
    n: u64,
    /// The index of the first header giving it, the one kept.
    first: usize,
    /// Where its last word lies in that header's value: what is forwarded.
    word: std::ops::Range<usize>,
    /// Whether another header gave it too.
    several: bool,
}

/// A response's framing: none for HEAD, 1xx, 204 and 304, whatever its headers say.
pub(super) fn response_framing(resp: &Head, method: &str) -> Framing {
    let status: u16 = resp.first[1].parse().unwrap_or(0);
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return Framing::None;
    }
    resp.framing
}

/// HAProxy's default error pages (they close the connection).
fn default_error(code: u16) -> Vec<u8> {
    rules::message(code).write(false, rules::Asker::default()).0
}

/// What HAProxy's HTTP/1 layer itself answers a request it could not parse (or that came
/// too slowly): its built-in message as it is written in HAProxy's source, capitalised
/// names and all (never an `errorfile`), `Connection: close` for 400 and 408 only.
fn h1_error(code: u16) -> Vec<u8> {
    let page = default_error(code);
    let end = find_head_end(&page).unwrap_or(page.len());
    let status_line = page.split(|&b| b == b'\r').next().unwrap_or_default();
    let body = &page[end..];
    let connection = if matches!(code, 400 | 408) {
        "Connection: close\r\n"
    } else {
        ""
    };
    let mut out = status_line.to_vec();
    out.extend_from_slice(
        format!(
            "\r\nContent-length: {}\r\nCache-Control: no-cache\r\n{connection}Content-Type: text/html\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

fn error_page(proxy: &Proxy, code: u16) -> Vec<u8> {
    proxy
        .errorfiles
        .get(&code)
        .map(|page| page.write(false, rules::Asker::default()).0)
        .unwrap_or_else(|| default_error(code))
}

/// Per-request facts for the log line.
struct Req {
    line: String,
    /// `%rt`: every parsed request takes its number (HAProxy's `global.req_count`).
    number: u64,
    started: Instant,
    /// `started` in epoch milliseconds, for the counters ([`meter::ms_at`]).
    started_ms: u64,
    /// When its first byte and its complete head came, if anything shows it.
    arrival: Arrival,
    /// What only the log line shows ([`log::HttpFacts::gather`]: none when nothing logs).
    log: Option<Box<log::HttpFacts>>,
    server: Served,
    status: u16,
    /// The response's size as the logs and stats count it ([`Head::logged_size`]).
    bytes: u64,
    /// The interim responses' part of `bytes`: an error page hapx sends after them counts
    /// with them, as HAProxy counts both.
    interim: u64,
    /// The request head's logged size as it arrived: HAProxy counts each message as it
    /// comes in, before its rules edit it.
    received_head: u64,
    connect_ms: i64,
    /// When its server connection was had (HAProxy's `t_connect`), from which `Tr` counts
    /// to the final response's head: the body's upload is in it.
    connected: Option<Instant>,
    response_ms: i64,
    /// `TR` and `Tw` of the log line: -1 when the request never got that far.
    request_ms: i64,
    queue_ms: i64,
    /// The client connection closes after this response: the request asks for it, or hapx
    /// decides so (see [`Head::dropped_length`]).
    close: bool,
    /// What the persistence cookie did (`cookie`).
    persist: super::persist::Persist,
    /// How hapx's own replies go to this request ([`Page::write`]).
    asker: rules::Asker,
    /// What its rules asked of its log line and of the client connection.
    effects: rules::Effects,
}

impl Req {
    /// A request that began at `started` and came so (`arrival`), before anything else is
    /// known of it: unnumbered, no line, no server nor status yet, not queued.
    fn arrived(
        state: &Arc<State>,
        fe: &Frontend,
        (peer, local): (SocketAddr, SocketAddr),
        started: Instant,
        arrival: Arrival,
    ) -> Req {
        Req {
            line: String::new(),
            number: 0,
            started,
            started_ms: meter::ms_at(started),
            arrival,
            log: log::HttpFacts::gather(state, fe, peer, local, arrival),
            server: Served::NoServer,
            status: 0,
            bytes: 0,
            interim: 0,
            received_head: 0,
            connect_ms: -1,
            connected: None,
            response_ms: -1,
            request_ms: 0,
            queue_ms: 0,
            close: false,
            persist: Default::default(),
            asker: rules::Asker::default(),
            effects: rules::Effects::default(),
        }
    }

    /// What the rules' samples know of the request (and of its client's TLS session).
    fn facts<'a>(&'a self, client: &'a Conn) -> rules::Facts<'a> {
        let log = self.log.as_deref();
        let h2_tls = || client.h2.as_deref().and_then(|h2| h2.tls.as_deref());
        rules::Facts {
            tls: client.tls.as_deref().map(|s| &*s.facts).or_else(h2_tls),
            effects: Some(&self.effects),
            ..rules::Facts::request(self.started, self.arrival, &self.line, log, self.number)
        }
    }
}

/// Keeps a request head HAProxy's H1 parser refuses for `show errors` (an HTTP/1 one: an
/// HTTP/2 stream's head came in frames).
fn capture_refused_request(fe: &Frontend, client: &Conn, peer: SocketAddr, first: bool) {
    if client.h2.is_some() || client.h2_up.is_some() {
        return;
    }
    super::error_capture::capture(super::error_capture::Refused {
        side: super::error_capture::Side::Request,
        proxy: super::error_capture::Named::new(&fe.name, fe.id),
        other_end: None,
        server: None,
        src: peer,
        bytes: client.buf.bytes(),
        consumed: client.buf.start,
        not_first: !first,
    });
}

/// A request head hapx could not read: HAProxy's error for it (400, 408...), counted in the
/// frontend and in the tracked entries, and logged (`<BADREQ>`) unless `dontlognull` leaves
/// out a connection that sent nothing; the connection closes after it. `upgraded`: the
/// backend of a connection its TCP frontend turned to HTTP, whose first request this was
/// (see [`refused_in_backend`]).
async fn refuse_request(
    state: &Arc<State>,
    fe: &Frontend,
    client: &mut Conn,
    e: ReadError,
    req: Req,
    peer: SocketAddr,
    upgraded: Option<&Backend>,
) {
    let code = e.status();
    // Tracked entries count it as HAProxy: a request, an error unless a timeout.
    if !state.tables.is_empty() {
        super::stick::failed_request(code != 408);
    }
    // HAProxy counts the invalid request among the requests too.
    fe.counters.request_at(req.started_ms);
    fe.counters.req_errors.fetch_add(1, Relaxed);
    if let Some(backend) = upgraded {
        refused_in_backend(fe, backend, req.started_ms);
    }
    // A client that sent nothing and closed gets no answer (though HAProxy counts its 400
    // when it had no stream yet); one that closed mid-head (maybe only its sending side)
    // gets the 400 and counts it, as HAProxy writes it anyway.
    if !matches!(e, ReadError::Closed) {
        fe.counters.count_status(code);
        // HAProxy's HTTP/1 layer writes its own page, whatever the frontend's `errorfile`
        // for the status, unless that file is empty: then nothing.
        let silent = (fe.conf.errorfiles.get(&code)).is_some_and(|p| p.is_silent());
        if !silent {
            let _ = client
                .write_within(&h1_error(code), fe.conf.timeouts.client)
                .await;
        }
    } else if upgraded.is_none() {
        fe.counters.count_status(code);
    }
    let mut req = Req {
        line: "<BADREQ>".into(),
        // HAProxy's H1 layer refuses it before any stream (and number) exists.
        number: 0,
        status: code,
        // That layer writes the error itself: no stream forwarded it, `%B` is 0.
        bytes: 0,
        request_ms: -1,
        queue_ms: -1,
        ..req
    };
    // Its connection's TLS shows in the line (`fe~`), as for any request.
    if let (Some(facts), Some(tls)) = (req.log.as_deref_mut(), client.tls.as_deref()) {
        facts.tls = Some(tls.facts.clone());
    }
    // `dontlognull` leaves out a connection that sent nothing.
    let sent_nothing = matches!(e, ReadError::IdleTimeout | ReadError::Closed);
    if sent_nothing && fe.conf.options.dontlognull {
        return;
    }
    let flags = match e {
        // HAProxy's stream, in its backend already, ends on its HTTP layer's error.
        _ if upgraded.is_some() => "PR--",
        // The client closed before or in the head: its abort, not a parse error.
        ReadError::Truncated | ReadError::Closed => "CR--",
        _ if code == 408 => "cR--",
        _ => "PR--",
    };
    http_log(fe, None, peer, &req, flags);
}

/// The first request of a connection turned to HTTP failed before its head was whole
/// (closed, timed out, malformed): HAProxy's stream had entered `backend` already, and
/// counts a session and a client abort there, and the request's error twice in the
/// frontend (its HTTP layer's and its stream's).
fn refused_in_backend(fe: &Frontend, backend: &Backend, started_ms: u64) {
    drop(backend.counters.open_at(started_ms));
    backend.counters.client_aborts.fetch_add(1, Relaxed);
    fe.counters.req_errors.fetch_add(1, Relaxed);
}

/// Serves one HTTP-mode client connection.
pub fn serve(
    state: Arc<State>,
    fe: Arc<Frontend>,
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<TlsServer>>,
) -> impl std::future::Future<Output = ()> {
    serve_proto(state, fe, client, (peer, local), tls, None)
}

/// [`serve`] for a listener whose `bind ... proto` says which HTTP version its connections
/// speak: `h2` from their first byte, `h1` never HTTP/2 (None: as each begins).
///
/// Until a plaintext connection sends its first bytes, its task holds only its socket and
/// that wait ([`first_bytes`]), as HAProxy holds no buffer and no stream for it: what its
/// requests need (a few kilobytes, boxed) comes with them, so thousands of connections
/// that sent nothing cost little more than their sockets. Its session and its HTTP/1
/// connection are counted from the accept all the same, and its first request's idle time
/// (`%Ti`) and idle timeout count from there. Between two requests, a kept-alive
/// connection comes back to such a wait ([`between_requests`]), its state machine freed.
pub fn serve_proto(
    state: Arc<State>,
    fe: Arc<Frontend>,
    client: TcpStream,
    (peer, local): (SocketAddr, SocketAddr),
    tls: Option<Arc<TlsServer>>,
    proto: Option<MuxProto>,
) -> impl std::future::Future<Output = ()> + Send {
    // The wait for the first bytes: the first request's, before anything of it came.
    let t = &fe.conf.timeouts;
    let first_wait = t.http_request.or(t.client);
    // A block, not an `async fn`: an async fn keeps a second copy of its arguments in its
    // future, and this one lives as long as the connection.
    async move {
        // A TLS connection's handshake comes first, with its own buffers.
        let arriving = if tls.is_some() {
            Arriving::Accepted { tls, proto }
        } else {
            let since = Instant::now();
            let session = super::open_session(&fe, false);
            let h1 = (proto != Some(MuxProto::H2)).then(|| h1::Link::open(&fe.h1));
            let deadline = first_wait.and_then(|d| since.checked_add(d));
            first_bytes(&client, deadline).await;
            Arriving::Waited {
                proto,
                since,
                session,
                h1,
            }
        };
        let (mut conn, mut arriving) = (Conn::new(client), arriving);
        // One wait for the soft stop for all the waits between requests (registering costs
        // a lock on the stop's wake-up list), made by the first of them. What the waits
        // hold is boxed: this task stays as small as a silent connection's.
        let mut stopped = None;
        loop {
            let serving = serve_client(state.clone(), fe.clone(), conn, peer, local, arriving);
            let Some(mut idle) = Box::pin(serving).await else {
                break;
            };
            let stopped = stopped.get_or_insert_with(|| Box::pin(state.soft_stopped()));
            let timeout = keep_alive_timeout(&fe.conf.timeouts);
            let deadline = timeout.and_then(|d| idle.kept.since.checked_add(d));
            let (client, owned) = (&idle.client.stream, &mut idle.kept.up.owned);
            between_requests(&state, stopped.as_mut(), client, owned, deadline).await;
            let Idle { client, kept } = *idle;
            (conn, arriving) = (client, Arriving::Kept(kept));
        }
    }
}

/// A kept-alive connection waits for its next request without read buffers, its own or
/// its idle server connections'.
fn release_idle_buffers(client: &mut Conn, owned: &mut [(Arc<Server>, Conn)]) {
    client.buf.release_if_empty();
    for (_, conn) in owned {
        conn.buf.release_if_empty();
    }
}

/// How long a kept-alive connection waits for its next request.
fn keep_alive_timeout(t: &crate::config::model::Timeouts) -> Option<Duration> {
    t.http_keep_alive.or(t.http_request).or(t.client)
}

/// A kept-alive connection's wait for its next request, in [`serve_proto`]'s task: until
/// `client` has something to read (bytes, its end, an error), `deadline`, or the soft
/// stop (`stopped`, never polled once over: the stop is seen first), the idle server
/// connections it owns closed as their servers close them. What follows reads which, as
/// the wait in [`next_request`] it stands in for.
async fn between_requests(
    state: &State,
    stopped: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    client: &TcpStream,
    owned: &mut Vec<(Arc<Server>, Conn)>,
    deadline: Option<Instant>,
) {
    if state.stopping.load(Relaxed) {
        return;
    }
    // The last request's reads may have left tokio's readiness set with nothing to read: a
    // peek that would block clears it (one system call, as the read it stands in for).
    let mut byte = [std::mem::MaybeUninit::uninit()];
    let peeked = client.try_io(tokio::io::Interest::READABLE, || {
        socket2::SockRef::from(client).peek(&mut byte)
    });
    if !matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
        return;
    }
    let readable = std::future::poll_fn(|cx| client.poll_read_ready(cx));
    let wait = async {
        tokio::select! {
            biased;
            _ = readable => {}
            () = stopped => {}
            never = watch_owned(owned) => match never {},
        }
    };
    match deadline {
        Some(at) => drop(tokio::time::timeout_at(at.into(), wait).await),
        None => wait.await,
    }
}

/// Waits until `client` has something to read (bytes, its end or an error: what follows
/// reads which), or until `deadline`, without a buffer. Bytes there already cost one
/// `recv(MSG_PEEK)` rather than a turn through the reactor.
async fn first_bytes(client: &TcpStream, deadline: Option<Instant>) {
    let mut byte = [std::mem::MaybeUninit::uninit()];
    if !matches!(
        socket2::SockRef::from(client).peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    ) {
        return;
    }
    // Polled in place, with no readiness future of its own to keep in the task.
    let readable = std::future::poll_fn(|cx| client.poll_read_ready(cx));
    // Timed out or readable: the first request's read tells which, and answers it.
    let _ = match deadline {
        Some(at) => tokio::time::timeout_at(at.into(), readable).await.ok(),
        None => Some(readable.await),
    };
}

/// A TCP frontend's connection that its backend turns to HTTP, as HAProxy 2.6 upgrades a
/// stream that switches to an HTTP backend ([`session::serve_tcp`] hands it over): its
/// session and TLS state go on, and so does what its content rules read.
#[derive(Debug)]
pub struct Upgrade {
    /// The backend the frontend's rules chose for the first request (its own rules have
    /// not run yet: they run on that request's head).
    pub backend: Arc<Backend>,
    /// The client's first bytes, read by the frontend's content rules.
    pub early: Vec<u8>,
    /// `bind ... ssl`: the connection's TLS state, its handshake done.
    pub tls: Option<Box<super::tls::Session>>,
    /// The frontend's session, counted at the accept (None once taken).
    pub session: Option<super::state::SessionGuard>,
    /// When the connection was accepted: the first request's start, as HAProxy's stream.
    pub accepted: Instant,
    /// The stream's entry in `show sess` since the accept, in its backend already: kept
    /// while its first request is read and ruled, then left for the request's own (see
    /// [`shutdown::Registration::waiting`]), as HAProxy lists the stream it upgraded.
    pub listing: Option<shutdown::Registration>,
}

/// Serves a TCP frontend's connection that its backend turned to HTTP (see [`Upgrade`]):
/// each later request a stream of its own that the frontend's content rules and backend
/// choice see anew, logged in the frontend's format, as HAProxy's. HTTP/2 when its TLS
/// negotiated `h2` or it starts with the preface, as HAProxy installs the mux the
/// connection calls for: its TCP stream then ends unlogged, and each HTTP/2 stream is a
/// request of the frontend's, as on an HTTP frontend.
pub fn serve_upgraded(
    state: Arc<State>,
    fe: Arc<Frontend>,
    client: TcpStream,
    (peer, local): (SocketAddr, SocketAddr),
    upgrade: Box<Upgrade>,
) -> impl std::future::Future<Output = ()> + Send {
    let serving = serve_client(
        state,
        fe,
        Conn::new(client),
        peer,
        local,
        Arriving::Upgraded(upgrade),
    );
    async move { drop(serving.await) }
}

/// How a connection comes to [`serve_client`].
enum Arriving {
    /// Accepted by an HTTP frontend's listener: its `bind ... ssl` handshake to make, and
    /// the HTTP version its `bind ... proto` forces.
    Accepted {
        tls: Option<Arc<TlsServer>>,
        proto: Option<MuxProto>,
    },
    /// Accepted by a plaintext listener `since`, its first bytes waited for in
    /// [`serve_proto`]: its session and its HTTP/1 connection (none on a `proto h2`
    /// bind) counted there.
    Waited {
        proto: Option<MuxProto>,
        since: Instant,
        session: super::state::SessionGuard,
        h1: Option<h1::Link>,
    },
    /// A plaintext HTTP/1 connection back from [`between_requests`] for its next request.
    Kept(KeptAlive),
    /// A stream of an HTTP/2 connection, with the server connections its connection's
    /// streams share.
    Stream(Arc<super::h2::Session<Conn>>),
    /// Handed over by a TCP frontend whose backend turned it to HTTP, its TLS handshake
    /// made: HTTP/2 if that negotiated `h2`.
    Upgraded(Box<Upgrade>),
}

/// A plaintext HTTP/1 connection between two requests, handed back by [`serve_client`] to
/// wait for the next one in [`serve_proto`]'s task.
struct Idle {
    /// Its socket, its read buffer released.
    client: Conn,
    kept: KeptAlive,
}

/// What a plaintext HTTP/1 connection keeps between two requests, besides its socket, for
/// its next one ([`Arriving::Kept`]).
struct KeptAlive {
    /// Its server side: the idle server connections it owns.
    up: Box<Upstream>,
    /// Its session, open since the accept.
    session: Option<super::state::SessionGuard>,
    /// When its last request ended: the next one's start, and its idle time's.
    since: Instant,
}

/// Serves a client connection, or one stream of an HTTP/2 connection (`client.h2`: its
/// one request, in the connection's session), or a TCP frontend's connection turned to
/// HTTP. A plaintext HTTP/1 connection from [`serve_proto`] is handed back, with what it
/// keeps, once a request is over and the next one has not begun to come.
fn serve_client(
    state: Arc<State>,
    fe: Arc<Frontend>,
    mut client: Conn,
    peer: SocketAddr,
    local: SocketAddr,
    arriving: Arriving,
) -> impl std::future::Future<Output = Option<Box<Idle>>> + Send {
    let mut session = None;
    // A connection whose first bytes were waited for: its session, and its accept's time
    // (or its last request's end, back for its next one).
    let (mut opened, mut accepted, mut resumed) = (None, None, None);
    let hands_back = matches!(arriving, Arriving::Waited { .. } | Arriving::Kept(_));
    // Back for its next request: it waited already, and is not handed back before it.
    let mut back = matches!(arriving, Arriving::Kept(_));
    let (tls, proto, mut upgrade) = match arriving {
        Arriving::Accepted { tls, proto } => (tls, proto, None),
        Arriving::Waited {
            proto,
            since,
            session,
            h1,
        } => {
            (opened, accepted, client.h1) = (Some(session), Some(since), h1);
            (None, proto, None)
        }
        Arriving::Kept(kept) => {
            (opened, accepted, resumed) = (kept.session, Some(kept.since), Some(kept.up));
            (None, None, None)
        }
        Arriving::Stream(shared) => {
            session = Some(shared);
            (None, None, None)
        }
        Arriving::Upgraded(up) => {
            let alpn = up.tls.as_deref().and_then(|t| t.facts.alpn.as_deref());
            (None, (alpn == Some("h2")).then_some(MuxProto::H2), Some(up))
        }
    };
    // The connection turns to HTTP/2 ([`super::h2`]): its `bind`, its ALPN, or its
    // preface (`detects_h2`).
    let mut speaks_h2 = proto == Some(MuxProto::H2);
    let detects_h2 = proto.is_none() && client.h2.is_none();
    async move {
        // An HTTP/2 stream is in its connection's session, counted once; a connection turned
        // to HTTP is in the session its TCP frontend opened, with what it read already.
        let mut session_guard = match upgrade.as_deref_mut() {
            Some(up) => {
                client.buf.extend(&std::mem::take(&mut up.early));
                client.tls = up.tls.take();
                up.session.take()
            }
            None if opened.is_some() || resumed.is_some() => opened.take(),
            None => client
                .h2
                .is_none()
                .then(|| super::open_session(&fe, tls.is_some())),
        };
        // Declared after the session's, and in the task (not in `upgrade`), so that it leaves
        // the registry before the client's socket closes.
        let mut listing = upgrade.as_deref_mut().and_then(|up| up.listing.take());
        // `bind ... ssl`: the handshake first, within `timeout client` (boxed, as the TLS state
        // it leaves: a plaintext connection's task does not grow).
        if let Some(server) = tls {
            let handshake = super::tls::accept(&server, &client.stream, fe.conf.timeouts.client);
            match Box::pin(handshake).await {
                Ok(session) => {
                    let (stream, addrs) = (&client.stream, (peer, local));
                    if !super::tls_session_accepted(&state, &fe, stream, addrs, &session.facts) {
                        return None;
                    }
                    speaks_h2 |= detects_h2 && session.facts.alpn.as_deref() == Some("h2");
                    client.tls = Some(session);
                    if !state.tables.is_empty() {
                        super::stick::session_accepted();
                    }
                }
                Err(e) => {
                    let message = super::tls::handshake_failure(&e);
                    fe.logger.log_conn_failure(&fe, peer, local, message);
                    return None;
                }
            }
        }
        client.stamps_first_byte = fe.logger.logs_traffic() || rules::values_use_timers(&fe);
        // HAProxy's H1 multiplexer serves it (an HTTP/2 client with prior knowledge too, until
        // its preface is seen), unless its `bind` or its ALPN chose HTTP/2.
        if !speaks_h2 && client.h2.is_none() && client.h1.is_none() {
            client.h1 = Some(h1::Link::open(&fe.h1));
        }
        // Its server connections: the one of the request in progress, and idle ones it owns
        // (boxed: a server connection's state would otherwise grow every connection's task).
        let mut up = resumed.unwrap_or_else(|| {
            Box::new(Upstream {
                session,
                most_owned: fe.conf.max_session_srv_conns,
                ..Upstream::default()
            })
        });
        // When a kept-alive connection handed back began to wait for its next request.
        let mut idle_since = None;
        // The requests, to the connection's end (here, not in a function of their own: a nested
        // future would keep its own copies of the arguments in every idle connection's task).
        // Every way out of the loop is a `break`, so that what follows runs.
        {
            let client = &mut client;
            // One wait for the soft stop for all the requests served here, not one per
            // kept-alive request: registering costs a lock on the stop's wake-up list.
            let stopped = state.soft_stopped();
            tokio::pin!(stopped);
            let t = &fe.conf.timeouts;
            let mut first = !speaks_h2 && !back;
            // An HTTP/2 connection's streams are served by its driver, after this loop.
            while !speaks_h2 {
                // Between two requests, with nothing of the next one read: the wait goes on
                // in `serve_proto`'s small task, without this state machine.
                if hands_back && !first && !std::mem::take(&mut back) && client.buf.is_empty() {
                    // The last request's stream is over, as below.
                    client.stream_ends();
                    super::vars::stream_ends();
                    release_idle_buffers(client, &mut up.owned);
                    idle_since = Some(Instant::now());
                    break;
                }
                let idle = if first {
                    t.http_request.or(t.client)
                } else {
                    keep_alive_timeout(t)
                };
                // Less the time its first bytes were waited for, from the accept.
                let waited = accepted.map_or(Duration::ZERO, |since| since.elapsed());
                let wait = HeadWait::request(idle, t).less(waited);
                let first_request = std::mem::replace(&mut first, false);
                client.stream_ends();
                // An HTTP/2 stream carries one request.
                if !first_request && client.h2.is_some() {
                    break;
                }
                // A TLS connection's first request began at the accept, before its handshake
                // (%Th), and so did a connection's turned to HTTP (its first stream's: its
                // `upgrade` is there until its first request's rules, and no later).
                let started = match client.tls.as_deref().filter(|_| first_request) {
                    _ if upgrade.is_some() => upgrade.as_deref().map(|up| up.accepted),
                    Some(tls) => Instant::now().checked_sub(tls.handshake),
                    None => accepted.take(),
                }
                .unwrap_or_else(Instant::now);
                let started_ms = meter::ms_at(started);
                // The last request's stream is over: until this one's head is read (an error
                // answered before it), only the session's variables are there. A connection
                // turned to HTTP is still in the stream its TCP frontend's rules filled: its
                // first request is that stream, as in HAProxy.
                if upgrade.is_none() {
                    super::vars::stream_ends();
                }
                let next = if first_request {
                    client.read_head_within(wait, true).await
                } else {
                    release_idle_buffers(client, &mut up.owned);
                    next_request(&state, stopped.as_mut(), client, &mut up.owned, wait).await
                };
                let next = next.and_then(|head| check_body_start(head, &client.buf));
                let arrival = client.arrival(started);
                let mut head = match next {
                    Ok(h) => h,
                    // A connection turned to HTTP fails its first request however it ends (its
                    // stream exists since the accept, in its backend: see below).
                    // A client closing before its first request is refused as a bad one (see
                    // `refuse_request`), unless told to ignore such probes.
                    Err(ReadError::Closed)
                        if upgrade.is_none()
                            && (!first_request || fe.conf.options.http_ignore_probes) =>
                    {
                        // HAProxy counts a connection closed before its first request as a failed
                        // request of its tracked entries.
                        if first_request && !state.tables.is_empty() {
                            super::stick::failed_request(true);
                        }
                        break;
                    }
                    // A connection that never sent a request: HAProxy answers it 408, unless told
                    // to ignore such probes (browsers' pre-connects); a kept-alive one just closes.
                    Err(ReadError::IdleTimeout)
                        if upgrade.is_none()
                            && (!first_request || fe.conf.options.http_ignore_probes) =>
                    {
                        break;
                    }
                    // HTTP/2 with prior knowledge: the whole preface, nothing less.
                    Err(ReadError::Malformed(_))
                        if first_request
                            && detects_h2
                            && client.tls.is_none()
                            && client.buf.bytes().starts_with(super::h2::PREFACE_HEAD) =>
                    {
                        // HAProxy's H1 multiplexer hands the connection over to its HTTP/2 one.
                        client.h1 = None;
                        speaks_h2 = true;
                        break;
                    }
                    Err(ReadError::Malformed(why)) if why == PRI_METHOD && upgrade.is_none() => {
                        client.stream_starts();
                        let bytes = client.buf.bytes();
                        let head = find_head_end(bytes)
                            .and_then(|end| parse_head(&bytes[..end], true).ok());
                        let received = head.map_or(0, |h| h.logged_size());
                        refuse_pri(&state, &fe, client, (peer, local), received).await;
                        break;
                    }
                    Err(e) => {
                        // HAProxy's H1 multiplexer makes a stream of whatever came, to answer it.
                        if !matches!(e, ReadError::IdleTimeout | ReadError::Closed) {
                            client.stream_starts();
                        }
                        if matches!(e, ReadError::Malformed(_)) {
                            capture_refused_request(&fe, client, peer, first_request);
                        }
                        let upgraded = upgrade.as_deref().map(|up| &*up.backend);
                        let req = Req::arrived(&state, &fe, (peer, local), started, arrival);
                        // Boxed: rare, and its state would otherwise grow every connection's task.
                        let refusing = refuse_request(&state, &fe, client, e, req, peer, upgraded);
                        Box::pin(refusing).await;
                        break;
                    }
                };
                head.h2 = client.h2.as_deref().map(|h2| h2.uri_form);
                client.stream_starts();
                // Each request is a stream: its variables start anew, the session's stay.
                if upgrade.is_none() {
                    super::vars::stream_starts();
                }
                // The request's stick counters end with it (HAProxy's stream), however it is answered.
                let _stream_end = (!state.tables.is_empty()).then_some(super::stick::StreamEnd);
                let keep_client = !head.asks_close();
                // Each request is a stream of its own in HAProxy (a connection turned to HTTP
                // logged its first one at its accept, in its TCP frontend's mode).
                if upgrade.is_none() {
                    let http = fe.conf.mode == crate::config::model::Mode::Http;
                    fe.logger.log_connect(&fe.name, http, peer, || {
                        rules::local_addr(&client.stream, local)
                    });
                }
                let mut req = Req {
                    number: log::next_request_number(),
                    // Only a log line shows it: not built for every request when nothing logs.
                    line: if fe.logger.is_empty() {
                        String::new()
                    } else if let Some(h2) = client.h2.as_deref() {
                        h2.line.clone()
                    } else {
                        format!("{} {} {}", head.first[0], head.first[1], head.first[2])
                    },
                    received_head: head.logged_size()
                        + client.h2.as_deref().map_or(0, |h2| h2.longer_uri()),
                    asker: rules::Asker::of(&head),
                    ..Req::arrived(&state, &fe, (peer, local), started, arrival)
                };
                if let Some(facts) = req.log.as_deref_mut() {
                    facts.request(&fe, &head, req.number);
                    facts.bytes_in = req.received_head;
                    if let Some(tls) = client.tls.as_deref() {
                        facts.tls = Some(tls.facts.clone());
                        if first_request {
                            facts.handshake_ms = tls.handshake.as_millis() as i64;
                        }
                    } else if let Some(h2) = client.h2.as_deref() {
                        facts.tls.clone_from(&h2.tls);
                    }
                }
                // The proxy's rules (none: nothing to do, nothing parsed). A connection turned
                // to HTTP has its first backend chosen: the frontend's HTTP rules and that
                // backend's are left.
                let mut routed = None;
                let ruled = if let Some(up) = upgrade.take() {
                    let (head, req) = (&mut head, &mut req);
                    let addrs = (peer, local);
                    // Its passwords are hashed off this thread too, as below.
                    Some(if head.header("authorization").is_some() {
                        let ruled = upgraded_with_credentials(
                            &state,
                            &fe,
                            client,
                            head,
                            req,
                            addrs,
                            &up.backend,
                        );
                        *Box::pin(ruled).await
                    } else {
                        upgraded_rules(&state, &fe, client, head, req, addrs, &up.backend)
                    })
                } else if rules::http_applies(&fe) {
                    // The passwords `http_auth` checks are hashed off this thread, around the
                    // rules (boxed: only a request with credentials may need it, and its
                    // state would otherwise grow every connection's task). The decision is a
                    // plain function, its rare answer a boxed future: an awaited `async fn`
                    // would keep its own state in every connection's task.
                    Some(if head.header("authorization").is_some() {
                        let (head, req) = (&mut head, &mut req);
                        let ruled =
                            rules_with_credentials(&state, &fe, client, head, req, peer, local);
                        *Box::pin(ruled).await
                    } else {
                        checked_rules(&state, &fe, client, &mut head, &mut req, (peer, local))
                    })
                } else {
                    // Counted in the frontend's requests by its rules when it has some (after
                    // its content rules, as HAProxy), here otherwise.
                    fe.counters.request_at(started_ms);
                    None
                };
                // A connection turned to HTTP: its first request is ruled, its stream listed
                // as any request's from now on.
                drop(listing.take());
                // The rest of the request sees the client address `set-src` gave.
                let peer = req.effects.client(peer);
                if let Some(ruled) = ruled {
                    if !matches!(ruled, Ruled::Refused)
                        && !send_early_hints(&state, &fe, client, &mut req).await
                    {
                        break;
                    }
                    let answering = match ruled {
                        Ruled::Backend(b) => {
                            routed = Some(b);
                            None
                        }
                        Ruled::Refused => break,
                        // Resumed above: resumed rules choose no backend again.
                        Ruled::Precheck(..) => unreachable!("a precheck after a resumed route"),
                        Ruled::Answered(answer, by, keep) => Some(Box::pin(answer_request(
                            &state,
                            &fe,
                            client,
                            &mut req,
                            (peer, local),
                            (answer, by),
                            keep,
                        ))),
                    };
                    if let Some(answering) = answering {
                        if answering.await {
                            continue;
                        }
                        break;
                    }
                }
                if asks_metrics(&fe, &head) {
                    // Boxed: its state would otherwise grow every connection's task.
                    let served = serve_metrics(&state, &fe, client, head.framing, &mut req, peer);
                    let served = Box::pin(served).await;
                    if !served || !keep_client {
                        break;
                    }
                    continue;
                }
                if fe.conf.stats.enabled && head.first[1].starts_with(fe.conf.stats.uri()) {
                    // Boxed: its state would otherwise grow every connection's task.
                    let served = serve_stats(&state, &fe, client, &head, &mut req, (peer, local));
                    if !Box::pin(served).await || !keep_client {
                        break;
                    }
                    continue;
                }
                let backend = match routed.unwrap_or_else(|| fe.backend.clone()) {
                    Some(b) if !b.conf.disabled => b,
                    // Boxed: rare, and its state would otherwise grow every connection's task.
                    unusable => {
                        let answer = no_backend(
                            &state,
                            &fe,
                            unusable,
                            client,
                            &head,
                            &mut req,
                            (peer, local),
                        );
                        if Box::pin(answer).await && keep_client {
                            continue;
                        }
                        break;
                    }
                };
                if client.h2.as_deref().is_some_and(|h2| h2.aborted) {
                    // Reset with its head (see `h2::Stream::aborted`): no server, HAProxy's
                    // `CR--` with its invalid-request count; a session and a request of its
                    // backend, gone from it (`%bc`) when logged.
                    fe.counters.req_errors.fetch_add(1, Relaxed);
                    drop(backend.counters.open_at(req.started_ms));
                    backend.counters.request_at(req.started_ms);
                    req.queue_ms = -1;
                    http_log(&fe, Some(&backend), peer, &req, "CR--");
                    break;
                }
                // The request counts in its backend until it is logged (`%bc`, as HAProxy logs it).
                let be_session = backend.counters.open_at(req.started_ms);
                // HAProxy's HTTP/2 streams are never a connection's first request (its h2
                // mux marks each SE_FL_NOT_FIRST): `http-reuse safe` lets them reuse.
                up.first = first_request && client.h2.is_none();
                // Boxed: the exchange's state (connecting, relaying) lives while a request is
                // served, not in every connection's future while it waits for its next request.
                let route = Route {
                    state: &state,
                    fe: &fe,
                    backend: &backend,
                    peer,
                    local,
                };
                let outcome = Box::pin(exchange(route, client, &mut up, head, &mut req)).await;
                if let Some(facts) = req.log.as_deref_mut() {
                    // Counted in its server's connections (`%sc`) only with a slot held.
                    facts.server_slot = up.current.as_ref().is_some_and(|c| c.2.is_some());
                }
                log_exchange(&state, &fe, &backend, peer, &mut req, &outcome, be_session);
                up.detach(&backend);
                if !outcome.keep || !keep_client {
                    break;
                }
            }
        }
        if let Some(since) = idle_since {
            let session = session_guard.take();
            let kept = KeptAlive { up, session, since };
            return Some(Box::new(Idle { client, kept }));
        }
        drop(up);
        // HTTP/2's streams are listed as they come (the TCP stream ended with its upgrade).
        drop(listing);
        if speaks_h2 {
            if let Some(up) = upgrade.take() {
                // HAProxy's TCP stream had entered its backend before the HTTP/2 mux took
                // its place (unlogged): a session there.
                drop(up.backend.counters.open_at(meter::ms_at(up.accepted)));
            }
            // Boxed: only an HTTP/2 connection's task holds its driver.
            client = Box::pin(serve_h2(&state, &fe, client, peer, local)).await;
        }
        // Every way the connection ends comes here: a TLS client is told it ended (boxed: a
        // plaintext connection's task does not grow).
        if client.tls.is_some() {
            Box::pin(close_tls(&mut client)).await;
        }
        drop(session_guard);
        None
    }
}

/// Whether a connection whose first bytes are not an HTTP/1 request line starts with the
/// whole HTTP/2 preface (waiting within `wait` for the rest of a part of it), as HAProxy's
/// prior-knowledge detection.
async fn h2_preface(client: &mut Conn, wait: Option<Duration>) -> bool {
    let preface = super::h2::PREFACE;
    let deadline = wait.and_then(|t| Instant::now().checked_add(t));
    loop {
        let have = client.buf.bytes();
        let n = have.len().min(preface.len());
        if have[..n] != preface[..n] {
            return false;
        }
        if n == preface.len() {
            return true;
        }
        if !matches!(client.fill_until(deadline).await, Ok(1..)) {
            return false;
        }
    }
}

/// Serves an HTTP/2 client connection ([`super::h2::drive`]): each stream in a task of its
/// own, by [`serve_client`], in the connection's session, sharing its socket. Gives the
/// connection back to be closed.
async fn serve_h2(
    state: &Arc<State>,
    fe: &Arc<Frontend>,
    mut client: Conn,
    peer: SocketAddr,
    local: SocketAddr,
) -> Conn {
    let t = &fe.conf.timeouts;
    // Taken for HTTP/2 on its first line: the rest of the preface must follow, or the
    // request is HTTP/1's bad one.
    if !client.buf.is_empty() && !h2_preface(&mut client, t.http_request.or(t.client)).await {
        // Its logged size as a head ([`Head::logged_size`]): fixed fields, the three words
        // of its line, no header, the end of the head.
        let received = (20 + ["PRI", "*", "HTTP/2.0"].concat().len() + 1) as u64;
        refuse_pri(state, fe, &mut client, (peer, local), received).await;
        return client;
    }
    let socket = match client.stream {
        Socket::Own(s) => Arc::new(s),
        Socket::Shared(s) => s,
    };
    client.stream = Socket::Shared(socket.clone());
    let idle = super::h2::Idle {
        first: t.client,
        later: t.http_keep_alive.or(t.http_request).or(t.client),
    };
    let tls = client.tls.as_deref().map(|s| s.facts.clone());
    let streams = StreamTasks {
        state,
        fe,
        socket,
        addrs: (peer, local),
        tls: tls.clone(),
        session: Arc::new(super::h2::Session::new(fe.conf.max_session_srv_conns)),
    };
    let io = super::h2::Prefixed {
        read: client.buf.take(),
        io: super::tls::Side::of(&client.stream, client.tls.as_deref_mut()),
    };
    let stopped = state.soft_stopped();
    let counters = fe.h2.clone();
    let ended = super::h2::drive(io, tls.is_some(), idle, stopped, streams, counters).await;
    // A connection error hapx found (a bad preface, a frame out of place): GOAWAY went out.
    if ended.is_err_and(|e| e.is_go_away() && e.is_library()) {
        log_h2_refusal(state, fe, (peer, local));
    }
    client
}

/// An HTTP/2 connection error, or a stream refused before it was a request: HAProxy logs
/// it as a bad request of no status (0: no stream), counted nowhere.
fn log_h2_refusal(state: &Arc<State>, fe: &Frontend, (peer, local): (SocketAddr, SocketAddr)) {
    let mut req = Req {
        line: "<BADREQ>".into(),
        request_ms: -1,
        queue_ms: -1,
        ..Req::arrived(state, fe, (peer, local), Instant::now(), Arrival::default())
    };
    if let Some(facts) = req.log.as_deref_mut() {
        facts.status_zero_shown = true;
    }
    http_log(fe, None, peer, &req, "PR--");
}

/// A request whose method is `PRI` (`PRI * HTTP/2.0` without the rest of HTTP/2's preface,
/// or any other): HAProxy's HTTP/1 parser takes it for a request head (counted in, its
/// size `received`), which its analysis refuses: a 400 in HAProxy's internal form
/// (lower-case names, `connection: close` last; counted out and logged with its size), a
/// request error, logged `<BADREQ>`; the connection closes.
async fn refuse_pri(
    state: &Arc<State>,
    fe: &Frontend,
    client: &mut Conn,
    (peer, local): (SocketAddr, SocketAddr),
    received: u64,
) {
    let page = error_page(&fe.conf, 400);
    let Some(end) = find_head_end(&page) else {
        return;
    };
    let Ok(head) = parse_head(&page[..end], false) else {
        return;
    };
    let mut reply = format!("{} {} {}\r\n", head.first[0], head.first[1], head.first[2]);
    for (name, value) in head.headers.iter().filter(|h| !is_named(h, "connection")) {
        reply.push_str(&format!("{}: {value}\r\n", name.to_ascii_lowercase()));
    }
    reply.push_str("connection: close\r\n\r\n");
    let mut reply = crate::bytestr::to_bytes(&reply).into_owned();
    reply.extend_from_slice(&page[end..]);
    let now = Instant::now();
    fe.counters.request_at(meter::ms_at(now));
    fe.counters.req_errors.fetch_add(1, Relaxed);
    fe.counters.count_status(400);
    // A request to the session's tracked entries (its head was parsed, as HAProxy's
    // `http_wait_for_request` counts it), but no HTTP error: HAProxy counts none for it.
    super::stick::failed_request(false);
    // (`connection: close` counts too: HAProxy adds it to its internal form.)
    let sent = logged_size(&reply) + ("connection".len() + "close".len()) as u64;
    count_stream_bytes(state, fe, received, sent);
    let _ = client.write_within(&reply, fe.conf.timeouts.client).await;
    let mut req = Req {
        line: "<BADREQ>".into(),
        status: 400,
        bytes: sent,
        request_ms: -1,
        queue_ms: -1,
        ..Req::arrived(state, fe, (peer, local), now, client.arrival(now))
    };
    // Its head was parsed (as HAProxy's was): its size shows.
    if let Some(facts) = req.log.as_deref_mut() {
        facts.parsed = true;
    }
    http_log(fe, None, peer, &req, "PR--");
}

/// How an HTTP/2 connection's streams are served: a task each, with the connection's
/// socket (shared: its addresses for the rules and logs).
struct StreamTasks<'a> {
    state: &'a Arc<State>,
    fe: &'a Arc<Frontend>,
    socket: Arc<TcpStream>,
    addrs: (SocketAddr, SocketAddr),
    tls: Option<Arc<super::tls::ClientTls>>,
    /// The server connections the streams share.
    session: Arc<super::h2::Session<Conn>>,
}

impl super::h2::Streams for StreamTasks<'_> {
    fn spawn(&self, mut stream: super::h2::Stream, live: super::h2::Live) {
        stream.tls.clone_from(&self.tls);
        let client = Conn {
            h2: Some(Box::new(stream)),
            ..Conn::over(Socket::Shared(self.socket.clone()))
        };
        let (peer, local) = self.addrs;
        let (state, fe) = (self.state.clone(), self.fe.clone());
        // Boxed: the task's future is moved a few times as it is spawned, a pointer only.
        let stream = Arriving::Stream(self.session.clone());
        let serving = serve_client(state, fe, client, peer, local, stream);
        let task = Box::pin(serving);
        let task = async move {
            task.await;
            drop(live);
        };
        let vars = super::vars::StreamVars::default();
        match super::stick::current() {
            Some(c) => drop(tokio::spawn(
                super::vars::STREAM.scope(vars, super::stick::SESSION.scope(c, task)),
            )),
            None => drop(tokio::spawn(super::vars::STREAM.scope(vars, task))),
        }
    }

    fn refused(&self) {
        log_h2_refusal(self.state, self.fe, self.addrs);
    }
}

/// A request its frontend has no backend for, or only a `disabled` one (`backend`, which
/// HAProxy's `use_backend` finds by name but which has no server): HAProxy's 503 (or the
/// `http-error` reply, rendered with the request still at hand), logged with no timer but
/// the total, as HAProxy logs it; whether the connection stays open.
async fn no_backend(
    state: &State,
    fe: &Frontend,
    backend: Option<Arc<Backend>>,
    client: &mut Conn,
    head: &Head,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
) -> bool {
    let keeps = errors_keep(state, fe, head.asks_close());
    let (keep, body) = keep_after_error(client, head, keeps);
    let ctx = super::sample::Context {
        request: Some(head),
        ..super::sample::Context::new(state, fe, peer, local)
    };
    let rendered = rendered_failure(client, req, &ctx, 503);
    let after = Some((&ctx, &*client));
    (req.request_ms, req.queue_ms) = (-1, -1);
    let (page, keep) = counted_error(fe, backend.as_deref(), 503, req, keep, rendered, after);
    // The request and the page count in the frontend's bytes, as HAProxy counts its stream's.
    count_stream_bytes(state, fe, req.received_head + body, req.bytes);
    let kept = client
        .write_within(&page, fe.conf.timeouts.client)
        .await
        .is_ok()
        && keep;
    http_log(fe, backend.as_deref(), peer, req, "SC--");
    kept
}

/// Counts `received` and `sent` bytes of a stream no backend relayed in its frontend and
/// in the entries it tracks: HAProxy's `stream_process_counters` adds a stream's bytes to
/// its frontend and to its stick counters alike, so a tracked entry counts the requests
/// hapx answers itself as the frontend counts them.
fn count_stream_bytes(state: &State, fe: &Frontend, received: u64, sent: u64) {
    fe.counters.bytes_in.fetch_add(received, Relaxed);
    fe.counters.bytes_out.fetch_add(sent, Relaxed);
    state.tables.count_bytes(received, sent);
}

/// What a proxy's request rules made of a request.
enum Ruled {
    /// It goes on, to the backend they decided (as [`rules::Routed::Backend`]).
    Backend(Option<Arc<Backend>>),
    /// They refused it (logged): the connection ends.
    Refused,
    /// They answered it: the answer to send ([`send_local`]), whose rules made it, and
    /// whether the connection may go on after it.
    Answered(rules::Local, rules::AnsweredBy, bool),
    /// They chose a backend whose passwords must be hashed before its rules run
    /// ([`rules::Routed::Precheck`]), then [`resume_rules`].
    Precheck(Arc<Backend>, Option<String>),
}

/// Runs the proxy's request rules (`http-request`, `use_backend`...) on a request (the
/// verdicts of [`super::auth::precheck`] held meanwhile): a refusal is counted and logged
/// here, an answer left to send.
fn request_rules(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
) -> Ruled {
    let seen = RuleInputs::of(client, head, req, (peer, local));
    let (src, dst) = seen.addrs;
    let routed = rules::route_request(state, fe, head, src, dst, seen.keep_answer, seen.facts);
    after_rules(state, fe, client, head, req, peer, routed)
}

/// What the request rules see of a request beyond its head, the same for the frontend's
/// rules ([`request_rules`]) and for the backend's resumed after their passwords were hashed
/// ([`resume_rules`]).
struct RuleInputs<'a> {
    /// The client's address and the one it connected to (as `dst` reads it).
    addrs: (SocketAddr, SocketAddr),
    /// Whether an answer of the proxy's own may keep the connection: as HAProxy's, only when
    /// the request's whole body came already (it is then drained); the reply says
    /// `connection: close` when it closes.
    keep_answer: bool,
    facts: rules::Facts<'a>,
}

impl<'a> RuleInputs<'a> {
    fn of(
        client: &'a mut Conn,
        head: &Head,
        req: &'a Req,
        (peer, local): (SocketAddr, SocketAddr),
    ) -> RuleInputs<'a> {
        let dst = client.dst(local);
        let client = &*client;
        let body = BodyIn::of(head.framing, &client.buf);
        RuleInputs {
            // A frontend's `set-src` holds for the backend's rules (resumed after it).
            addrs: (req.effects.client(peer), dst),
            keep_answer: !head.asks_close() && body.whole.is_some(),
            facts: rules::Facts {
                request_body: body.received,
                ..req.facts(client)
            },
        }
    }
}

/// [`request_rules`] for a request with credentials: the passwords that the frontend's rules,
/// then those that the chosen backend's rules may check are hashed off this thread first
/// ([`super::auth::precheck`], [`super::auth::precheck_backend`]), their verdicts held
/// while the rules run. Boxed, as an awaited value stays in the awaiting future.
async fn rules_with_credentials(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
    peer: SocketAddr,
    local: SocketAddr,
) -> Box<Ruled> {
    let addrs = (peer, local);
    let verdicts = super::auth::precheck(&state.config, fe, head).await;
    let ruled = match request_rules(state, fe, client, head, req, addrs) {
        Ruled::Precheck(b, line) => {
            let more = super::auth::precheck_backend(&state.config, &b, head).await;
            let ruled = resume_rules(state, fe, client, head, req, addrs, (b, line));
            drop(more);
            ruled
        }
        ruled => ruled,
    };
    drop(verdicts);
    Box::new(ruled)
}

/// [`request_rules`] for a request without credentials (a rule may give it some: they are
/// then checked inline, as any a rule rewrote).
fn checked_rules(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
    addrs: (SocketAddr, SocketAddr),
) -> Ruled {
    match request_rules(state, fe, client, head, req, addrs) {
        Ruled::Precheck(b, line) => resume_rules(state, fe, client, head, req, addrs, (b, line)),
        ruled => ruled,
    }
}

/// [`request_rules`] resumed at the backend the frontend's rules chose (`resumed`: it and
/// the request line the frontend's values kept), its passwords hashed.
fn resume_rules(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
    (backend, line): (Arc<Backend>, Option<String>),
) -> Ruled {
    let seen = RuleInputs::of(client, head, req, (peer, local));
    let (addrs, keep) = (seen.addrs, seen.keep_answer);
    let routed = rules::route_backend(state, fe, head, addrs, keep, seen.facts, backend, line);
    after_rules(state, fe, client, head, req, peer, routed)
}

/// [`upgraded_rules`] for a request with credentials: the passwords the frontend's and the
/// chosen backend's rules may check are hashed off this thread first, their verdicts held
/// while the rules run (as [`rules_with_credentials`]).
async fn upgraded_with_credentials(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
    addrs: (SocketAddr, SocketAddr),
    backend: &Arc<Backend>,
) -> Box<Ruled> {
    let verdicts = super::auth::precheck(&state.config, fe, head).await;
    let more = super::auth::precheck_backend(&state.config, backend, head).await;
    let ruled = upgraded_rules(state, fe, client, head, req, addrs, backend);
    drop((verdicts, more));
    Box::new(ruled)
}

/// The rules of a connection's first request after its TCP frontend's rules chose
/// `backend`, an HTTP one ([`rules::route_upgraded`]).
fn upgraded_rules(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
    backend: &Arc<Backend>,
) -> Ruled {
    let seen = RuleInputs::of(client, head, req, (peer, local));
    let (addrs, keep, chosen) = (seen.addrs, seen.keep_answer, backend.clone());
    let routed = rules::route_upgraded(state, fe, head, addrs, keep, seen.facts, chosen);
    after_rules(state, fe, client, head, req, peer, routed)
}

/// What the request rules' `routed` means for the request: a refusal is counted and
/// logged, an answer left to send.
fn after_rules(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &Head,
    req: &mut Req,
    peer: SocketAddr,
    routed: rules::Routed,
) -> Ruled {
    let body = buffered_body(head, &client.buf);
    let keep_answer = !head.asks_close() && body.is_some();
    // What HAProxy had read of a refused or answered request: it counts in the frontend's
    // bytes in (and in its stream's backend's, when it has one).
    let read = req.received_head + body.unwrap_or(0) as u64;
    apply_socket_effects(client, &req.effects);
    match routed {
        rules::Routed::Backend(b) => Ruled::Backend(b),
        rules::Routed::Precheck(b, line) => Ruled::Precheck(b, line),
        rules::Routed::Rejected(backend, abort) => {
            fe.counters.denied_req.fetch_add(1, Relaxed);
            count_stream_bytes(state, fe, read, 0);
            // Refused in the backend: HAProxy's stream had entered it (a session and a
            // request there) and logs its line under it, with its request line.
            if let Some(b) = &backend {
                b.counters.request_at(req.started_ms);
                drop(b.counters.open_at(req.started_ms));
                b.counters.bytes_in.fetch_add(read, Relaxed);
                // HAProxy's HTTP actions and silent-drop count the denial in the stream's
                // backend too.
                if abort != rules::Abort::Content {
                    b.counters.denied_req.fetch_add(1, Relaxed);
                }
            } else if abort.before_http() && !req.line.is_empty() {
                req.line = "<BADREQ>".into();
            }
            // Logged as HAProxy does: no status, no timer but the total.
            (req.request_ms, req.queue_ms) = (-1, -1);
            http_log(fe, backend.as_deref(), peer, req, "PR--");
            end_unanswered(client, abort);
            Ruled::Refused
        }
        rules::Routed::Answered(answer, by) => {
            client.buf.consume(body.unwrap_or(0));
            count_stream_bytes(state, fe, read, 0);
            if let Some(b) = by.backend() {
                b.counters.bytes_in.fetch_add(read, Relaxed);
            }
            let request_ms = if answer.internal_error { -1 } else { 0 };
            (req.request_ms, req.queue_ms) = (request_ms, -1);
            Ruled::Answered(answer, by, keep_answer)
        }
    }
}

/// Whether the request is for the frontend's Prometheus exporter (`http-request
/// use-service prometheus-exporter`: its path, or every request without one).
fn asks_metrics(fe: &Frontend, head: &Head) -> bool {
    fe.conf.prometheus.as_ref().is_some_and(|path| {
        path.is_empty() || head.first[1].split('?').next() == Some(path.as_str())
    })
}

/// Answers with the Prometheus metrics, then drains the request's body and logs it as
/// HAProxy logs its service (`<PROMEX>`, `LR--`); false when the connection ends with it.
/// The request's head, its body and the answer count in the frontend's bytes, as HAProxy
/// counts its service's stream.
async fn serve_metrics(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    framing: Framing,
    req: &mut Req,
    peer: SocketAddr,
) -> bool {
    // A service's answer is an intercepted request, counted before the exposition is
    // rendered (HAProxy's first scrape already shows itself: intercepted 1).
    fe.counters.intercepted.fetch_add(1, Relaxed);
    req.server = Served::Metrics;
    // A service's request skips HAProxy's cookie capture, as the stats page's does.
    if let Some(facts) = req.log.as_deref_mut() {
        facts.client_cookie = None;
    }
    let body = prometheus::render(state);
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncache-control: no-cache\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    (req.status, req.bytes) = (200, logged_size(resp.as_bytes()));
    // Attached at once, its headers sent at once, as the stats applet's.
    (req.connect_ms, req.response_ms) = (0, 0);
    fe.counters.count_status(200);
    count_stream_bytes(state, fe, req.received_head, req.bytes);
    let timeout = fe.conf.timeouts.client;
    if client.write_within(resp.as_bytes(), timeout).await.is_err() {
        return false;
    }
    let mut body_read = 0;
    let drained = drain_body(client, framing, timeout, &mut body_read).await;
    count_stream_bytes(state, fe, body_read, 0);
    if let Some(facts) = req.log.as_deref_mut() {
        facts.bytes_in += body_read;
    }
    http_log(fe, None, peer, req, "LR--");
    drained
}

/// A request its backend served is logged, then ends in the backend (`be_session`: `%bc`
/// counts it in the line) and its times and termination go to the stats.
fn log_exchange(
    state: &State,
    fe: &Frontend,
    backend: &Backend,
    peer: SocketAddr,
    req: &mut Req,
    outcome: &Outcome,
    be_session: super::state::SessionGuard,
) {
    if let Some(facts) = req.log.as_deref_mut() {
        // `%ac`: the process's connections when the line is written, not when the
        // request came (a queued request's came when there were fewer).
        facts.process_conns = state.cur_conns.load(Relaxed);
    }
    if outcome.flags != ABORTED_KEEP_ALIVE {
        http_log(fe, Some(backend), peer, req, outcome.flags);
    }
    drop(be_session);
    if outcome.flags != ABORTED_KEEP_ALIVE {
        record_times(backend, req, outcome.flags);
    } else {
        // HAProxy counts a backend's request when its stream ends with a status: not this
        // one (its rate keeps it: it did arrive).
        backend.counters.http_reqs.fetch_sub(1, Relaxed);
    }
}

/// How long a TLS client's close_notify may wait for room in the socket: HAProxy tries
/// once and closes; a little patience lets a full socket drain.
const CLOSE_NOTIFY_WAIT: Duration = Duration::from_millis(500);

/// Sends a TLS client what is left, its close_notify and the FIN, within
/// [`CLOSE_NOTIFY_WAIT`] (a client that reads nothing does not hold the connection).
async fn close_tls(client: &mut Conn) {
    use tokio::io::AsyncWriteExt;
    if let Some(tls) = client.tls.as_deref_mut() {
        let mut over = tls.over(&client.stream);
        let _ = tokio::time::timeout(CLOSE_NOTIFY_WAIT, over.shutdown()).await;
    }
}

/// Whether the client connection stays open after an error reply to `head` (`keeps`: the
/// reply itself would keep it), and how many body bytes were dropped for it. As HAProxy
/// does, only a request whose whole body came already (or that has none) leaves the
/// connection ready for the next: that body is dropped; one still coming closes it.
fn keep_after_error(client: &mut Conn, head: &Head, keeps: bool) -> (bool, u64) {
    match buffered_body(head, &client.buf).filter(|_| keeps) {
        Some(body) => {
            client.buf.consume(body);
            (true, body as u64)
        }
        None => (false, 0),
    }
}

/// How many of the buffered bytes are the whole body of the request `head`, if all of it
/// came already (0 without a body).
fn buffered_body(head: &Head, buf: &Buf) -> Option<usize> {
    whole_body(head.framing, buf)
}

/// What of a body with some framing is in a buffer (what follows its head), from one pass
/// over a chunked one.
struct BodyIn {
    /// How many bytes the whole body takes, if all of it came.
    whole: Option<usize>,
    /// How much of it came, as HAProxy's HTX holds it once it parsed what came (`req.len`):
    /// no more than its length, chunks decoded (see [`chunked::Decoder::logged_size`]).
    received: u64,
}

impl BodyIn {
    fn of(framing: Framing, buf: &Buf) -> BodyIn {
        let (whole, received) = match framing {
            Framing::None => (Some(0), 0),
            Framing::Length(n) => (
                usize::try_from(n).ok().filter(|&n| n <= buf.len()),
                n.min(buf.len() as u64),
            ),
            Framing::Chunked => {
                let mut decoder = chunked::Decoder::default();
                // A malformed chunk was refused with the head (`check_body_start`): what
                // came before it is what HAProxy parsed.
                let whole = decoder.advance(buf.bytes()).ok();
                (whole.filter(|_| decoder.is_done()), decoder.logged_size())
            }
            Framing::UntilClose => (None, buf.len() as u64),
        };
        BodyIn { whole, received }
    }
}

/// [`buffered_body`] of a body with this `framing`.
fn whole_body(framing: Framing, buf: &Buf) -> Option<usize> {
    BodyIn::of(framing, buf).whole
}

/// The start of a chunked body that arrived with its head is checked before anything is
/// forwarded: a malformed one is refused like a malformed head (HAProxy parses both at once).
fn check_body_start(head: Head, buf: &Buf) -> Result<Head, ReadError> {
    if head.framing == Framing::Chunked && !chunked::prefix_is_valid(buf.bytes()) {
        return Err(ReadError::Malformed("malformed chunked body"));
    }
    Ok(head)
}

/// Waits on a kept-alive connection for its next request. On a soft stop the connection
/// closes at once if the client sent nothing yet (HAProxy's way, so that the old process
/// exits); a request already arriving is read and served (with `Connection: close`).
/// `stopped` is the connection's [`State::soft_stopped`], not polled again once the stop
/// began. Meanwhile the idle server connections it `owned` are watched ([`watch_owned`]).
async fn next_request(
    state: &State,
    stopped: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    client: &mut Conn,
    owned: &mut Vec<(Arc<Server>, Conn)>,
    wait: HeadWait,
) -> Result<Head, ReadError> {
    if !state.stopping.load(Relaxed) {
        tokio::select! {
            // The request first: when both are ready, a request that arrived is served.
            biased;
            head = client.read_head_within(wait, true) => return head,
            () = stopped => {}
            never = watch_owned(owned) => match never {},
        }
    }
    // One last look at the socket: a request in the kernel's buffer but not yet in ours
    // was sent before the stop was seen, and closing on it would reset the connection. A
    // plain recv(2): tokio's readiness may not know of those bytes yet.
    if client.buf.is_empty() {
        if client.tls.is_some() {
            let _ = client.try_fill();
        } else if let Ok(early) = forward::read_early(&client.stream) {
            client.buf.extend(&early);
            client.read_counted(early.len());
        }
    }
    if client.buf.is_empty() {
        // The connection's end goes out now, right after that look: a request arriving from
        // now on meets an orderly end (which its client sends again on a new connection),
        // where one arriving unread by the time the socket closes would reset it.
        if client.tls.is_none() {
            let _ = socket2::SockRef::from(&*client.stream).shutdown(std::net::Shutdown::Write);
        }
        return Err(ReadError::Closed);
    }
    client.read_head_within(wait, true).await
}

/// Closes, as their servers close them, the idle server connections a client connection
/// owns while it waits for its next request (HAProxy's stay subscribed to reads); never
/// ends.
fn watch_owned(
    owned: &mut Vec<(Arc<Server>, Conn)>,
) -> impl std::future::Future<Output = std::convert::Infallible> + '_ {
    std::future::poll_fn(move |cx| {
        owned.retain_mut(|(_, conn)| conn.stays_idle(cx));
        std::task::Poll::Pending
    })
}

/// The request's times for the backend's and its server's stats (`qtime` ... `ttime`); a
/// request that never reached a server counts in the total time only.
fn record_times(backend: &Backend, req: &Req, flags: &str) {
    let ms = |v: i64| u64::try_from(v).ok().map(Duration::from_millis);
    let connect = ms(req.connect_ms);
    let times = SessionTimes {
        // `%Tw`, for a request that reached a server.
        queue: connect.and(ms(req.queue_ms)),
        connect,
        response: ms(req.response_ms),
        total: req.started.elapsed(),
    };
    backend.counters.record_session(&times, flags);
    if let Served::Server(server) = &req.server {
        server.counters.record_session(&times, flags);
    }
}

/// The server a request's log line names (`%s`): none (yet), the stats page, or the one
/// that took it, kept by reference (no name copied per request, nor looked up by name).
#[derive(Debug, Clone, Default)]
enum Served {
    #[default]
    NoServer,
    Stats,
    /// The Prometheus exporter (`use-service prometheus-exporter`).
    Metrics,
    Server(Arc<Server>),
}

impl Served {
    fn name(&self) -> &str {
        match self {
            Served::NoServer => "<NOSRV>",
            Served::Stats => "<STATS>",
            Served::Metrics => "<PROMEX>",
            Served::Server(s) => &s.name,
        }
    }
}

struct Outcome {
    keep: bool,
    /// The log's termination flags; [`ABORTED_KEEP_ALIVE`]: nothing is logged.
    flags: &'static str,
}

/// The flags of a kept-alive client connection closed without a response, as HAProxy's
/// `abort_keep_alive` closes it (the client is to send its request again): not logged.
const ABORTED_KEEP_ALIVE: &str = "";

/// Sends a response a rule made, adds its size to the request's logged bytes, and logs it;
/// false when the connection ends with it.
async fn send_local(
    fe: &Frontend,
    backend: Option<&Backend>,
    client: &mut Conn,
    req: &mut Req,
    peer: SocketAddr,
    answer: rules::Local,
    keep: bool,
) -> bool {
    if answer.denied {
        fe.counters.denied_req.fetch_add(1, Relaxed);
    }
    fe.counters.count_status(answer.status);
    req.status = answer.status;
    // HAProxy counts its own 4xx answers (`auth`) as HTTP errors of the tracked entries,
    // but those its rule counted (`deny`, `tarpit`) or that are none (`return`).
    if (400..500).contains(&answer.status) && !answer.error_counted {
        super::stick::http_error();
    }
    req.bytes += answer.logged_size;
    if answer.close_counted {
        req.bytes += ("connection".len() + "close".len()) as u64;
    }
    let sent = client
        .write_within(&answer.bytes, fe.conf.timeouts.client)
        .await
        .is_ok();
    // Logged under the stream's backend when it has one (a backend's rules answered).
    if answer.logged {
        http_log(fe, backend, peer, req, answer.flags);
    }
    sent && keep && !answer.close
}

/// Holds a tarpitted request for its `delay`, listed by `show sess` meanwhile (in
/// `backend`, its id, 0 for none) as HAProxy lists it; whether it was killed meanwhile
/// (`shutdown session`): as HAProxy's, it is held all the same, then answered, logged
/// `KT--`.
async fn tarpit(
    client: &Conn,
    req: &mut Req,
    (backend, stream): (usize, shutdown::Stream),
    delay: Duration,
) -> bool {
    let client_fd = client.stream.as_fd().as_raw_fd();
    let listed = shutdown::Registration::waiting(client_fd, backend, stream);
    let held = Instant::now();
    tokio::time::sleep(delay).await;
    (req.request_ms, req.queue_ms) = (-1, held.elapsed().as_millis() as i64);
    listed.killed_alone()
}

/// [`send_local`] for a request the proxy's request rules answered, its answer counted in
/// the frontend's bytes out as HAProxy counts its own; a backend's answer counts in the
/// backend as HAProxy counts it (a session and a request, its status, its denial), a
/// `listen`'s in its backend's bytes.
async fn answer_request(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
    (mut answer, by): (rules::Local, rules::AnsweredBy),
    keep: bool,
) -> bool {
    if let Some(delay) = answer.delay {
        let stream = shutdown::Stream {
            frontend: fe.id,
            src: peer,
            local,
            started: req.started,
        };
        let backend = by.backend().map_or(0, |b| b.id);
        if tarpit(client, req, (backend, stream), delay).await {
            answer.flags = "KT--";
        }
    }
    // HAProxy captures the request's cookie (`capture cookie`) once its rules let it
    // through, or on their `deny` or `tarpit`: an answer they made themselves (`return`,
    // `redirect`, `auth`, which it counts as intercepted) leaves it uncaptured.
    if answer.intercepted
        && let Some(facts) = req.log.as_deref_mut()
    {
        facts.client_cookie = None;
    }
    let denied = answer.denied;
    let session = match &by {
        rules::AnsweredBy::Backend(b) => {
            b.counters.request_at(req.started_ms);
            Some(b.counters.open_at(req.started_ms))
        }
        rules::AnsweredBy::Frontend(_) => None,
    };
    let stream_backend = by.backend().map(|b| &**b);
    let kept = send_local(fe, stream_backend, client, req, peer, answer, keep).await;
    count_stream_bytes(state, fe, 0, req.bytes);
    if let Some(b) = by.backend() {
        b.counters.bytes_out.fetch_add(req.bytes, Relaxed);
    }
    if let rules::AnsweredBy::Backend(b) = &by {
        b.counters.count_status(req.status);
        if denied {
            b.counters.denied_req.fetch_add(1, Relaxed);
        }
    }
    drop(session);
    kept
}

/// Whether the client connection may stay open after hapx's own error page: where a
/// response would keep it (a request that did not ask to close, an HTTP/1.0 one asking for
/// `keep-alive`, a frontend not in `httpclose`, a process not stopping), as HAProxy keeps it.
fn errors_keep(state: &State, fe: &Frontend, asks_close: bool) -> bool {
    !asks_close && !fe.conf.options.httpclose && !state.stopping.load(Relaxed)
}

/// Answers with HAProxy's page for `code` (or the `errorfile`); whether the client
/// connection stays open: when `keep` (the request was read whole and the client did not ask
/// to close), as HAProxy 2.6 keeps it after its own 502, 503 and 504; else the page says
/// `connection: close`.
async fn send_error(
    fe: &Frontend,
    client: &mut Conn,
    code: u16,
    req: &mut Req,
    keep: bool,
) -> bool {
    let (page, keep) = counted_error(fe, None, code, req, keep, None, None);
    let timeout = fe.conf.timeouts.client;
    client.write_within(&page, timeout).await.is_ok() && keep
}

/// The page [`send_error`] sends for `code`, counted in the frontend and the request, and
/// whether the connection stays open after it. `rendered`: the `http-error` reply rendered
/// for this request ([`rules::rendered_error`]), sent instead. `after`: where the request
/// is, for the `http-after-response` rules the page goes through (its status then counted).
/// (Apart from the sending, so that the futures awaiting it stay small.)
fn counted_error(
    fe: &Frontend,
    backend: Option<&Backend>,
    code: u16,
    req: &mut Req,
    keep: bool,
    rendered: Option<Page>,
    after: Option<(&super::sample::Context<'_>, &Conn)>,
) -> (Vec<u8>, bool) {
    // An `errorfile` page goes as HAProxy's HTTP/1 layer writes it out again
    // ([`Page::write`]), the connection open only when it frames itself. As HAProxy's
    // `http_error_message`, the stream's backend's page comes first, then the frontend's.
    let mut proxies = backend.map(|b| &b.conf).into_iter().chain([&fe.conf]);
    let errorfile = proxies
        .find(|p| p.errorfiles.contains_key(&code) || p.error_replies.contains_key(&code))
        .and_then(|p| p.errorfiles.get(&code));
    // Counted as HAProxy built or loaded it (a page's own `connection` header included).
    let page = match (rendered, errorfile) {
        (Some(page), _) => Cow::Owned(page),
        (None, Some(page)) => Cow::Borrowed(page),
        (None, None) => Cow::Owned(rules::message(code)),
    };
    let (mut page, keep, bytes) = {
        let (sent, keep) = page.write(keep, req.asker);
        (sent, keep, page.logged_size(req.asker))
    };
    req.status = code;
    req.bytes = req.interim + bytes;
    if let Some((ctx, client)) = after.filter(|_| rules::has_after_response(fe, backend)) {
        after_error(ctx, client, req, &mut page);
    }
    fe.counters.count_status(req.status);
    (page, keep)
}

/// Runs the `http-after-response` rules on hapx's own `page` for `req` (see
/// [`rules::after_reply`]): its status and logged size become what they made of it.
fn after_error(ctx: &super::sample::Context<'_>, client: &Conn, req: &mut Req, page: &mut Vec<u8>) {
    let facts = rules::Facts {
        rules_done: true,
        ..req.facts(client)
    };
    let done = rules::after_reply(*ctx, ctx.backend, page, &facts);
    if let Some((status, grown)) = done {
        req.status = status;
        req.bytes = req.bytes.saturating_add_signed(grown);
    }
}

/// The `http-error` reply rendered for a request its backend (`ctx`'s) could not serve,
/// if the backend or the frontend has one for `code` ([`rules::rendered_error`]). As in
/// HAProxy, `ctx` has the request only while it was not sent: once it went to a server
/// (a 502 or 504), its headers are gone.
fn rendered_failure(
    client: &Conn,
    req: &Req,
    ctx: &super::sample::Context<'_>,
    code: u16,
) -> Option<Page> {
    let facts = rules::Facts {
        rules_done: true,
        ..req.facts(client)
    };
    let fe = &ctx.frontend.conf;
    let proxies: [&Proxy; 2] = [ctx.backend.map_or(fe, |b| &b.conf), fe];
    rules::rendered_error(&proxies, code, ctx, &facts).map(Cow::into_owned)
}

/// [`send_error`] for a request its backend took: counted in the backend too (HAProxy
/// counts each stream's status in its frontend and its backend), the exchange's end.
async fn fail(
    route: Route<'_>,
    client: &mut Conn,
    req: &mut Req,
    code: u16,
    flags: &'static str,
    keep: bool,
) -> Outcome {
    fail_with(route, client, req, (code, flags, keep), None).await
}

/// [`fail`] with the `http-error` reply rendered for the request, if there is one.
async fn fail_with(
    route: Route<'_>,
    client: &mut Conn,
    req: &mut Req,
    (code, flags, keep): (u16, &'static str, bool),
    rendered: Option<Page>,
) -> Outcome {
    let (fe, backend) = (route.fe, &**route.backend);
    let after = (&route.context(), &*client);
    let (page, keep) = counted_error(fe, Some(backend), code, req, keep, rendered, Some(after));
    // Counted before it goes: a client reading the stats after it sees it counted.
    backend.counters.count_status(req.status);
    let timeout = fe.conf.timeouts.client;
    let sent = client.write_within(&page, timeout).await;
    // The page counts in the bytes out, as HAProxy counts it on the stream's proxies and
    // server.
    let server = match &req.server {
        Served::Server(s) => Some(&s.counters),
        _ => None,
    };
    for c in [&fe.counters, &backend.counters].into_iter().chain(server) {
        c.bytes_out.fetch_add(req.bytes, Relaxed);
    }
    route.state.tables.count_bytes(0, req.bytes);
    if sent
        .as_ref()
        .is_err_and(|e| e.kind() != std::io::ErrorKind::TimedOut)
    {
        // A client gone meanwhile (reset): HAProxy's error on the client side, counted as
        // its abort by the backend and the server.
        for c in [&backend.counters].into_iter().chain(server) {
            c.client_aborts.fetch_add(1, Relaxed);
        }
    }
    Outcome {
        keep: sent.is_ok() && keep,
        flags,
    }
}

/// [`fail_with`] for a request that went to its server: the `http-error` reply, if any,
/// rendered as HAProxy renders it then, the request's method alone known
/// ([`Head::method_only`]).
async fn fail_sent(
    route: Route<'_>,
    client: &mut Conn,
    req: &mut Req,
    method: &str,
    (code, flags, keep): (u16, &'static str, bool),
) -> Outcome {
    // No valid response (the server closed, timed out, or sent no HTTP): an HTTP failure
    // of the tracked stick entries, as HAProxy's 502 and 504 then.
    if matches!(code, 502 | 504) {
        super::stick::server_failed();
    }
    let page = sent_failure(route, client, req, method, code);
    fail_with(route, client, req, (code, flags, keep), page).await
}

/// The `http-error` reply [`fail_sent`] sends, if the backend or the frontend has one.
fn sent_failure(
    route: Route<'_>,
    client: &Conn,
    req: &Req,
    method: &str,
    code: u16,
) -> Option<Page> {
    let proxies = [&route.backend.conf, &route.fe.conf];
    if !proxies.iter().any(|p| p.error_replies.contains_key(&code)) {
        return None;
    }
    let head = Head::method_only(method);
    let ctx = super::sample::Context {
        request: Some(&head),
        request_sent: true,
        ..route.context()
    };
    rendered_failure(client, req, &ctx, code)
}

/// A request its backend took, and where it came from: what serving it needs besides the
/// connections and the request itself.
#[derive(Clone, Copy)]
struct Route<'a> {
    state: &'a State,
    fe: &'a Frontend,
    backend: &'a Arc<Backend>,
    peer: SocketAddr,
    local: SocketAddr,
}

impl<'a> Route<'a> {
    /// The `h1-case-adjust` map of names going to the backend's HTTP/1 servers.
    fn server_case(&self) -> Option<&'a h1::CaseMap> {
        let options = &self.backend.conf.options;
        case_map(self.state, options.h1_case_adjust_bogus_server)
    }

    /// The `h1-case-adjust` map of names going to the frontend's HTTP/1 clients.
    fn client_case(&self) -> Option<&'a h1::CaseMap> {
        case_map(self.state, self.fe.conf.options.h1_case_adjust_bogus_client)
    }

    /// What the samples of its rules and error replies see (no request yet).
    fn context(&self) -> super::sample::Context<'a> {
        super::sample::Context {
            backend: Some(self.backend),
            ..super::sample::Context::new(self.state, self.fe, self.peer, self.local)
        }
    }
}

/// A client connection's server connection for the request in progress, with its server
/// and the server's slot ([`Upstream::current`]).
type Current = Option<Taken>;

/// A request's server connection with its server and that server's slot.
type Taken = (Arc<Server>, Conn, Option<Slot>);

/// Serves a request its backend took: balanced, sent to its server, its response relayed
/// ([`run_exchange`]). Its server's kill may end it meanwhile ([`shutdown::Attached`]):
/// its end is then logged as HAProxy logs a killed stream.
async fn exchange(
    route: Route<'_>,
    client: &mut Conn,
    up: &mut Upstream,
    head: Head,
    req: &mut Req,
) -> Outcome {
    let mut attached = None;
    let mut outcome = run_exchange(route, client, up, head, req, &mut attached).await;
    if let Some(killed) = attached.as_ref().and_then(shutdown::Attached::killed) {
        outcome.flags = killed.http_flags(outcome.flags, ABORTED_KEEP_ALIVE);
    }
    // Its server connection may stay registered until detached: no one looks at its kill.
    if let Some(kept) = up
        .current
        .as_mut()
        .and_then(|(_, c, _)| c.registered.as_mut())
    {
        kept.detach();
    }
    outcome
}

/// Most bytes [`close_reading`] drops: a client sending faster than it reads them does not
/// hold the task.
const MOST_DRAINED: usize = 16 << 20;

/// Before a client connection closes after an exchange that may have ended before its
/// request's body did: the connection's end is sent (a plain connection's: TLS sends its
/// own later), and what came of the body is read and dropped, as HAProxy drains a socket
/// it closes, so that the close is an end the client reads after the answer, not a reset
/// that may destroy the answer before the client read it (measured against HAProxy 2.6.12:
/// a server answering 413 and closing during a 1 MiB upload, the client reads the answer,
/// then the connection's end).
fn close_reading(client: &mut Conn) {
    if client.h2.is_some() {
        return;
    }
    if client.tls.is_none() {
        let _ = socket2::SockRef::from(&*client.stream).shutdown(std::net::Shutdown::Write);
    }
    client.buf.consume(client.buf.len());
    let mut scratch = [0; READ_CHUNK];
    let mut dropped = 0;
    while dropped < MOST_DRAINED {
        match client.stream.try_read(&mut scratch) {
            Ok(n) if n > 0 => {
                dropped += n;
                client.read_counted(n);
            }
            _ => break,
        }
    }
}

/// Before a wait for a request's body ([`wait_for_body`]): a client that announced
/// `Expect: 100-continue` in an HTTP/1.1 request is told to send it, as HAProxy's
/// `http_handle_expect_hdr` tells it (whether or not the body came already: measured
/// against HAProxy 2.6.12), and the header goes, as HAProxy removes it: the server is not
/// asked again. The answer counts in the response's size, as HAProxy counts it. The
/// exchange's end when the client is gone.
async fn continue_first(
    fe: &Frontend,
    client: &mut Conn,
    head: &mut Head,
    req: &mut Req,
) -> Result<(), Outcome> {
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    // (An HTTP/2 stream's head reads as HTTP/1.1, as HAProxy's: its `100` goes as a
    // HEADERS frame of its own.)
    if !h1::is_http11(&head.first[2]) || !expects_continue(head, head.framing) {
        return Ok(());
    }
    let asked = client.write_within(CONTINUE, fe.conf.timeouts.client).await;
    if asked.is_err() {
        req.queue_ms = -1;
        return Err(Outcome {
            keep: false,
            flags: "CR--",
        });
    }
    let size = logged_size(CONTINUE);
    req.bytes += size;
    req.interim += size;
    head.headers.retain(|(name, value)| {
        !(name.eq_ignore_ascii_case("expect") && value.eq_ignore_ascii_case("100-continue"))
    });
    Ok(())
}

/// [`exchange`]'s work: the request's headers and persistence, then up to two attempts
/// ([`send_head`], [`relay_exchange`]) at a server connection. `attached`: the stream on
/// its server while it may be killed, for [`exchange`] to see whether it was.
async fn run_exchange<'r>(
    route: Route<'r>,
    client: &mut Conn,
    up: &mut Upstream,
    mut head: Head,
    req: &mut Req,
    attached: &mut Option<shutdown::Attached<'r>>,
) -> Outcome {
    let Route {
        state,
        fe,
        backend,
        peer,
        ..
    } = route;
    backend.counters.request_at(req.started_ms);
    add_headers(fe, backend, &mut head, req, peer);
    let base = route.context();
    let persisted = persistence(&base, backend, &mut head, req);
    req.close = head.dropped_length || head.asks_close();
    // `balance url_param`: a POST's server is chosen once its body came, unless its cookie
    // chose it (HAProxy's `SF_DIRECT` then; its stick rules come after this wait).
    let waits = !persisted.by_cookie
        && head.framing != Framing::None
        && super::balance::waits_for_body(backend, &head.first[0]);
    if waits && let Err(end) = Box::pin(continue_first(fe, client, &mut head, req)).await {
        return end;
    }
    let (bytes, hop) = request_for_server(state, fe, backend, &head);
    // What a hashing algorithm hashes, taken once the request is final, as HAProxy's
    // `assign_server` does.
    let headers = head.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let with_request = super::sample::Context {
        request: Some(&head),
        ..base
    };
    let body = if waits {
        match Box::pin(wait_for_body(route, client, &head, req)).await {
            Ok(body) => Some(body),
            Err(end) => return end,
        }
    } else {
        None
    };
    let key = super::balance::expr_key(backend, &with_request).unwrap_or_else(|| {
        let body = body.as_deref();
        super::balance::request_key(backend, peer.ip(), &head.first[1], headers, body)
    });
    let request = Request {
        head: &head,
        bytes: &bytes,
        hop,
        key,
        persisted: &persisted,
        error_keeps: errors_keep(state, fe, req.close),
    };
    // A reused server connection the server closed before it took any of the request (the
    // write fails at once): a new connection is made once. Once any of it was written, the
    // server may have acted on it: it is never sent again (as HAProxy without `retry-on`).
    for retry in [false, true] {
        // A kill of the first attempt's server is not this attempt's.
        *attached = None;
        match send_head(route, client, up, &request, req, attached, retry).await {
            Ok(body) => {
                let attached = attached.as_ref();
                let relay = relay_exchange(route, client, up, &request, req, body, attached);
                let outcome = relay.await;
                // A kill's close is its own (HAProxy's kill resets).
                if !outcome.keep && head.framing != Framing::None && !outcome.flags.starts_with('K')
                {
                    close_reading(client);
                }
                return outcome;
            }
            Err(Tried::Ended(outcome)) => return outcome,
            Err(Tried::Retry) => {}
        }
    }
    fail_sent(route, client, req, &head.first[0], (502, "SH--", false)).await
}

/// Waits for the body of `head` before its server is chosen, as HAProxy's
/// `http_wait_for_request_body`: until all of it came or it fills the buffer (HAProxy's
/// buffer less its rewrite reserve, holding the head in its internal form), within the
/// backend's `timeout http-request` (else the client's), counted from now. The start of the
/// body as HAProxy holds it then (a chunked body's data joined, as its buffer joins them);
/// the exchange's end when the client went (`CR--`, no answer) or was too slow (408,
/// `cR--`).
///
/// Listed by `show sess` meanwhile, in its backend, as HAProxy lists it. Killed (`shutdown
/// session`), it waits on as HAProxy's: its end is then logged `KR--`, and a body that came
/// whole ends at the wait's deadline with no answer, logged `K---`.
async fn wait_for_body(
    route: Route<'_>,
    client: &mut Conn,
    head: &Head,
    req: &mut Req,
) -> Result<Vec<u8>, Outcome> {
    let client_fd = client.stream.as_fd().as_raw_fd();
    let listed = shutdown::Registration::waiting(client_fd, route.backend.id, shown(route, req));
    let timeout = (route.backend.conf.timeouts.http_request).or(route.fe.conf.timeouts.client);
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let waited = body_came(route, client, head, req, deadline, &listed).await;
    if !listed.killed_alone() || waited.is_err() {
        return waited;
    }
    // Its request whole but its stream killed: no server, no answer.
    req.request_ms = req.started.elapsed().as_millis() as i64;
    req.queue_ms = -1;
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
    Err(Outcome {
        keep: false,
        flags: "K---",
    })
}

/// [`wait_for_body`]'s wait, until `deadline`; `listed`: its stream's listing, which may
/// have been killed.
async fn body_came(
    route: Route<'_>,
    client: &mut Conn,
    head: &Head,
    req: &mut Req,
    deadline: Option<Instant>,
    listed: &shutdown::Registration,
) -> Result<Vec<u8>, Outcome> {
    // HAProxy's buffer less `tune.maxrewrite` and 45 bytes (its HTX header and the end of
    // headers' byte: measured against HAProxy 2.6.12 with two head sizes, to the byte),
    // then the head and the body's block index.
    const ROOM: usize = super::BUFSIZE - 1024 - 45;
    let room = ROOM.saturating_sub(rules::htx_size(head) + 8);
    // A kill is the stream's first error: it names the end.
    let or_killed = |flags| if listed.killed_alone() { "KR--" } else { flags };
    loop {
        let (mut data, whole) = body_start(head.framing, client.buf.bytes());
        if whole || data.len() >= room {
            data.truncate(room);
            return Ok(data);
        }
        let read = match client.try_fill() {
            Ok(Some(n)) => Ok(n),
            Ok(None) => client.fill_until(deadline).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                req.queue_ms = -1;
                return Err(fail(route, client, req, 408, or_killed("cR--"), false).await);
            }
            // Gone: no answer, its wait in the request's time, as HAProxy logs it.
            _ => {
                req.request_ms = req.started.elapsed().as_millis() as i64;
                req.queue_ms = -1;
                return Err(Outcome {
                    keep: false,
                    flags: or_killed("CR--"),
                });
            }
        }
    }
}

/// The body data at the start of `buf` (a chunked body's data without its framing), and
/// whether it is all of the body.
fn body_start(framing: Framing, buf: &[u8]) -> (Vec<u8>, bool) {
    match framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            (buf[..n.min(buf.len())].to_vec(), buf.len() >= n)
        }
        Framing::Chunked => {
            let mut data = Vec::new();
            let mut decoder = chunked::Decoder::default();
            // A malformed body goes no further here: its relay refuses it.
            let checked = decoder.advance_with(buf, |d| data.extend_from_slice(d));
            (data, checked.is_err() || decoder.is_done())
        }
        Framing::None | Framing::UntilClose => (Vec::new(), true),
    }
}

/// A request as it goes to its server, the same for each attempt.
struct Request<'h> {
    head: &'h Head,
    /// Its head as written to the server.
    bytes: &'h [u8],
    hop: Hop,
    /// What a hashing algorithm balances it by.
    key: super::balance::Key,
    persisted: &'h Persisted,
    /// HAProxy's error pages would keep the client connection ([`errors_keep`]).
    error_keeps: bool,
}

/// How an attempt at a server ended.
enum Tried {
    Ended(Outcome),
    /// A reused connection failed before it took any of the request: another one.
    Retry,
}

/// One attempt at sending `request`'s head: a server connection ([`server_for`]), the
/// stream attached to its server, the head sent (with the body's first bytes, when some
/// came: their relay then, to go on with); how it ended when it did not go (`retry`: the
/// second attempt, which is not retried).
async fn send_head<'r>(
    route: Route<'r>,
    client: &mut Conn,
    up: &mut Upstream,
    request: &Request<'_>,
    req: &mut Req,
    attached: &mut Option<shutdown::Attached<'r>>,
    retry: bool,
) -> Result<Option<Box<early::BodyRelay>>, Tried> {
    let Route {
        fe,
        backend,
        peer,
        local,
        ..
    } = route;
    let Upstream {
        current: server,
        owned,
        first,
        prefer_last,
        session,
        ..
    } = up;
    let Request {
        head,
        persisted,
        error_keeps,
        ..
    } = *request;
    let assignment = Assignment::default();
    let needs = Needs {
        assignment: &assignment,
        first: *first,
        prefer_last: *prefer_last,
        session: session.as_deref(),
        key: request.key,
        direct: persisted.direct.as_ref(),
        forced: persisted.over.force,
        request: head,
    };
    // A new server connection starts with the PROXY header, when the server wants one.
    // The stream is its server's since its slot or connection was taken (a kill since
    // ends it once attached: see `shutdown::Attached::to_since`).
    let kill_since;
    // HAProxy's frontend reads on after a whole request only with the option (its H1
    // layer's), and its backend aborts the wait only with its own.
    let abortonclose = fe.conf.options.abortonclose && backend.conf.options.abortonclose;
    // Listed by `show sess` while it waits (the watch borrows the client meanwhile).
    let listing = (
        client.stream.as_fd().as_raw_fd(),
        backend.id,
        shown(route, req),
    );
    // Boxed, and only when the client may end the wait (see `client_watch`).
    let mut watch = (abortonclose || buffered_body(head, &client.buf).is_none())
        .then(|| Box::pin(client_watch(client, head.framing, abortonclose)));
    let watching = watch.as_mut().map(|w| w.as_mut() as session::Watch<'_>);
    let waiting = server_for(backend, owned, needs, (peer, local), watching);
    let (ready, listed) = listed_while_waiting(waiting, listing, &assignment).await;
    drop(watch);
    // Killed alone (`shutdown session`) while it waited: it ends as its wait ends.
    let killed_waiting = listed.is_some_and(|l| l.killed_alone());
    let mut header = match ready {
        Ok(ready) => {
            let session = session.as_deref().map(|s| &s.h2);
            let (taken, header, since) =
                connection_taken(req, ready, backend, (peer, local), session);
            req.connected = Some(Instant::now());
            *server = Some(taken);
            kill_since = since;
            header
        }
        Err(Unready::Failed(e)) => {
            let ended = no_server(route, client, request, req, e, killed_waiting);
            return Err(Tried::Ended(ended.await));
        }
        Err(Unready::Killed(srv, killed)) => {
            // Closed without a response, as HAProxy closes it (no connect time).
            req.server = Served::Server(srv);
            return Err(Tried::Ended(killed_stream(server, killed)));
        }
        Err(Unready::Gone(gone)) => return Err(Tried::Ended(client_gone(route, req, *gone))),
    };
    let Some((srv, sconn, _)) = server.as_mut() else {
        return Err(Tried::Retry);
    };
    req.server = Served::Server(srv.clone());
    // From here the stream is the server's: killed with its sessions. Its socket is
    // registered in the server connection (see `Conn::registered`); the stream borrows its
    // server from the backend (one of the backend's, as `server_for` took it).
    if let Some(own) = shutdown::in_backend(backend, srv) {
        let shown = shown(route, req);
        // An HTTP/2 connection's socket is its other streams' too: a kill resets the stream.
        let socket = (sconn.stream.as_fd(), sconn.h2_up.is_some());
        let (stream, registration) =
            shutdown::Attached::to_since(own, socket, client.stream.as_fd(), kill_since, shown);
        sconn.registered = Some(registration);
        *attached = Some(stream);
    }
    if let Some(facts) = req.log.as_deref_mut() {
        facts.connected(&sconn.stream);
    }
    if killed_waiting {
        // As HAProxy's: connected, it ends at once with a 502 logged `KH--`, its client
        // connection kept as after any error page. Its server connection and slot go once
        // it is logged: the next waiter does not count in `%sc` yet (HAProxy's `cur_sess`
        // counts a dequeued stream once its task runs).
        let (keep, _) = keep_after_error(client, head, error_keeps);
        let with_request = super::sample::Context {
            request: Some(head),
            ..route.context()
        };
        let page = rendered_failure(client, req, &with_request, 502);
        let ended = fail_with(route, client, req, (502, "KH--", keep), page);
        return Err(Tried::Ended(ended.await));
    }
    // The body's first bytes, when some came already, go with the head, as HAProxy sends
    // them (a server answering at once then has them: see [`early`]).
    let mut body = (head.framing != Framing::None && sconn.h2_up.is_none())
        .then(|| Box::new(early::BodyRelay::new(head.framing)));
    let case = route.server_case();
    let first_bytes = (body.as_mut()).map_or(&[][..], |b| b.first_bytes(client, case));
    let sending = async {
        if header.is_empty() {
            send_request(sconn, (request.bytes, first_bytes)).await
        } else {
            header.extend_from_slice(request.bytes);
            send_request(sconn, (&header, first_bytes)).await
        }
    };
    // A kill from the attach on ends the stream: no response, the client connection closed.
    // Pinned here: the kill's wait moves only a pointer, not the future, through its layers.
    let sent = shutdown::unless_killed(attached.as_ref(), std::pin::pin!(sending)).await;
    match sent {
        Ok(Ok(())) => {}
        Err(killed) => return Err(Tried::Ended(killed_stream(server, killed))),
        Ok(Err(untouched)) => {
            if let Some(killed) = attached.as_ref().and_then(shutdown::Attached::killed) {
                return Err(Tried::Ended(killed_stream(server, killed)));
            }
            let reused = sconn.served > 0;
            *server = None;
            if !retry && untouched && reused {
                return Err(Tried::Retry);
            }
            let (keep, _) = keep_after_error(client, head, error_keeps);
            let page = rendered_failure(client, req, &route.context(), 502);
            let failure = (502, "SH--", keep);
            return Err(Tried::Ended(
                fail_with(route, client, req, failure, page).await,
            ));
        }
    }
    // The body's relay goes on after its first bytes.
    Ok(body.and_then(|mut b| b.first_sent(client).then_some(b)))
}

/// What `show sess` tells of a request's stream: its frontend, its client's addresses, when
/// it began.
fn shown(route: Route<'_>, req: &Req) -> shutdown::Stream {
    shutdown::Stream {
        frontend: route.fe.id,
        src: route.peer,
        local: route.local,
        started: req.started,
    }
}

/// Awaits `waiting` (a request's wait for its server connection). One not done at once (in
/// a queue, connecting) is listed by `show sess` meanwhile, as HAProxy lists every stream:
/// registered over its client connection's socket, in its backend, with no server
/// ([`shutdown::Registration::waiting`]); that registration, to see whether it was killed.
/// A request served at once costs no registration.
async fn listed_while_waiting<F: std::future::Future>(
    waiting: F,
    (client, backend, stream): (std::os::fd::RawFd, usize, shutdown::Stream),
    assignment: &Assignment,
) -> (F::Output, Option<shutdown::Registration>) {
    let mut waiting = std::pin::pin!(waiting);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(waiting.as_mut().poll(cx)));
    if let std::task::Poll::Ready(ready) = first.await {
        return (ready, None);
    }
    let listed = shutdown::Registration::waiting(client, backend, stream);
    // Its server named from its assignment on (connecting, waiting to retry), as HAProxy's
    // `show sess` names a stream's target: looked at after each step of the wait.
    let mut named = None;
    assignment.name_in(&listed, &mut named);
    let ready = std::future::poll_fn(|cx| {
        let polled = waiting.as_mut().poll(cx);
        if polled.is_pending() {
            assignment.name_in(&listed, &mut named);
        }
        polled
    });
    (ready.await, Some(listed))
}

/// The server a request's wait for its connection assigned it ([`server_for`]), shared
/// with its `show sess` listing ([`listed_while_waiting`]), which polls that wait.
#[derive(Debug, Default)]
struct Assignment(std::sync::Mutex<Option<Arc<Server>>>);

impl Assignment {
    fn assign(&self, server: &Arc<Server>) {
        let mut assigned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *assigned = Some(server.clone());
    }

    /// Names the assigned server in `listed` unless `named` (what it names already) is it.
    fn name_in(&self, listed: &shutdown::Registration, named: &mut Option<Arc<Server>>) {
        let assigned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(server) = assigned.as_ref() else {
            return;
        };
        if named.as_ref().is_none_or(|n| !Arc::ptr_eq(n, server)) {
            listed.assigned(server);
            *named = Some(server.clone());
        }
    }
}

/// The rest of an exchange once its request's head went to the server connection in
/// `up`: the body relayed (after the server's `100 Continue` when asked; on from `body`
/// when its first bytes went with the head), the response relayed back.
async fn relay_exchange(
    route: Route<'_>,
    client: &mut Conn,
    up: &mut Upstream,
    request: &Request<'_>,
    req: &mut Req,
    body: Option<Box<early::BodyRelay>>,
    attached: Option<&shutdown::Attached<'_>>,
) -> Outcome {
    let Route {
        state,
        fe,
        backend,
        peer,
        local,
    } = route;
    let (server, first) = (&mut up.current, up.first);
    let Request { head, mut hop, .. } = *request;
    let req_framing = head.framing;
    let Some((srv, sconn, _)) = server.as_mut() else {
        return fail(route, client, req, 502, "SH--", false).await;
    };
    // `Expect: 100-continue` with none of the body sent yet: the server's answer first (a
    // kill meanwhile fails its read: the body's relay then sees the kill).
    let mut early = None;
    if body.is_none() && expects_continue(head, req_framing) && client.drained() {
        let timeout = backend.conf.timeouts.server;
        let wait = await_continue(state, fe, hop, client, sconn, timeout, req);
        match Box::pin(wait).await {
            Ok(answer) => early = answer,
            Err(end) => {
                *server = None;
                return end;
            }
        }
    }
    // After an early final answer, the body the client sends anyway still goes to the
    // server (an HTTP/2 server's on its stream), both ways at once with the response, as
    // after any early answer (HAProxy forwards request data whenever it comes).
    let mut rest = if early.is_some() {
        // (The head's bytes count as sent, as [`send_body`] counts them.)
        count_sent(route, srv, req.received_head);
        Some(Box::new(early::BodyRelay::new(req_framing)))
    } else {
        let to = (&**srv, &mut *sconn);
        let sent = send_body(route, client, to, (req_framing, body), req, attached);
        match sent.await {
            Ok(rest) => rest,
            Err(unsent) => {
                let method = &head.first[0];
                let end = unsent_end(route, client, server, req, method, unsent, attached);
                return Box::pin(end).await;
            }
        }
    };
    hop.body_follows = rest.is_some();
    // The backend's `tcp-response content` rules, as HAProxy runs them on its HTX message
    // (see [`inspect`]); a `reject` ends the exchange without a response.
    let mut inspected = None;
    // `timeout server` for the response head, less the silence an inspection counted.
    let mut head_wait = backend.conf.timeouts.server;
    if !backend.conf.rules.tcp_response.is_empty()
        && let Some((srv, sconn, _)) = server.as_mut()
    {
        super::vars::response_starts();
        let verdict = inspect::inspect(&route, srv, sconn, &head.first[0]).await;
        if verdict.verdict == rules::ResponseVerdict::Reject {
            inspect::count_rejection(&route, srv, verdict.held);
            (req.bytes, req.response_ms) = (verdict.held, -1);
            for c in [&fe.counters, &backend.counters] {
                c.count_status(0);
            }
            *server = None;
            return Outcome {
                keep: false,
                flags: "PD--",
            };
        }
        (inspected, head_wait) = (Some(verdict), verdict.head_wait);
    }
    let body = (&mut rest, attached, head_wait);
    let resp = read_response(route, client, server, early, hop, req, request, first, body).await;
    // (The body may have gone whole after an interim response.)
    hop.body_follows = rest.is_some();
    let mut resp = match resp {
        Ok(resp) => resp,
        Err(end) => return end,
    };
    // The response's analysis: `req` variables go, `res` ones may be set.
    super::vars::response_starts();
    let Some((srv, sconn, _)) = server.as_mut() else {
        return fail(route, client, req, 502, "SH--", false).await;
    };
    // Counted as it arrived, before the rules edit it (as HAProxy counts it); its server
    // counts its status as it came too ([`respond`]). An HTTP/2 server's, as its HEADERS.
    req.bytes += resp.logged_size();
    if let Some(link) = sconn.h2_up.as_deref() {
        req.bytes -= link.head_added();
    }
    req.status = resp.first[1].parse().unwrap_or(0);
    // A server's 4xx counts as an HTTP error of the tracked stick entries, its 5xx as a
    // failure, before the response rules see them, as HAProxy's `http_wait_for_response`.
    if !state.tables.is_empty() {
        super::stick::server_status(req.status);
    }
    // The `stick` rules store their entries now, as HAProxy's once the response came (none
    // without one); `store-response` ones see it as it came, before the rules edit it.
    if let Some(s) = &request.persisted.sticking {
        let ctx = super::sample::Context {
            backend: Some(backend),
            request: Some(head),
            response: Some(&resp),
            ..route.context()
        };
        s.on_response(&ctx, backend, srv);
    }
    if rules::has_response_rules(fe, backend) {
        let to = (&**srv, &*sconn);
        let addrs = (peer, local);
        let refused = response_rules(state, fe, backend, client, to, head, &mut resp, req, addrs);
        apply_socket_effects(client, &req.effects);
        if let Some(abort) = refused.as_ref().and_then(|answer| answer.abort) {
            // `silent-drop`: nothing more goes to the client, nor to the server.
            let srv = srv.clone();
            *server = None;
            end_unanswered(client, abort);
            for c in [&fe.counters, &backend.counters, &srv.counters] {
                c.bytes_out.fetch_add(req.bytes, Relaxed);
            }
            state.tables.count_bytes(0, req.bytes);
            return Outcome {
                keep: false,
                flags: "PR--",
            };
        }
        if let Some(answer) = refused {
            // The server's response is dropped; its connection stays for another request
            // if the response came whole (as HAProxy's H1 mux keeps it idle), else goes.
            // The client's stays as it asked.
            let srv = srv.clone();
            if hop.body_follows || !keep_after_refusal(sconn, &resp, &head.first[0], hop) {
                *server = None;
            }
            // (A body still coming is not read: the connection closes after the answer,
            // its rest never taken for a request.)
            let keep_client = !head.asks_close() && !hop.body_follows;
            let keep = send_local(fe, None, client, req, peer, answer, keep_client).await;
            // The dropped response and the answer count in the bytes out, as HAProxy
            // counts both on the stream's proxies and server.
            for c in [&fe.counters, &backend.counters, &srv.counters] {
                c.bytes_out.fetch_add(req.bytes, Relaxed);
            }
            state.tables.count_bytes(0, req.bytes);
            return Outcome {
                keep,
                flags: "PH--",
            };
        }
    }
    let method = head.first[0].as_str();
    let relaying = (attached, rest.as_deref_mut());
    let outcome = respond(route, client, server, resp, method, hop, req, relaying).await;
    if inspected.is_some_and(|i| i.verdict == rules::ResponseVerdict::Close) {
        // Killed by the rule, as HAProxy kills it: never kept for another request.
        *server = None;
    }
    match rest {
        Some(rest) => {
            let finish = finish_body(route, client, server, rest, req, outcome, attached);
            Box::pin(finish).await
        }
        None => outcome,
    }
}

/// Whether the server connection of a response a rule refused stays for another request:
/// all of the response came already (dropped now), nothing after it, and the server keeps
/// the connection open. Marked [`Conn::response_complete`] then.
fn keep_after_refusal(sconn: &mut Conn, resp: &Head, method: &str, hop: Hop) -> bool {
    let framing = response_framing(resp, method);
    let whole = whole_body(framing, &sconn.buf).filter(|&n| n == sconn.buf.len());
    let server_keeps = !resp.conn.close
        && (h1::is_http11(&resp.first[0]) || resp.conn.keep_alive)
        && !hop.server_close;
    // HAProxy drops the response whole only when it all came in its buffer (less the
    // `tune.maxrewrite` reserve) in its internal form: the head, then the body as one
    // block. Measured against HAProxy 2.6.12 (with a margin of reads' timing, a few bytes).
    const ROOM: usize = super::BUFSIZE - 1024 - 40;
    let fits = |body: &usize| rules::htx_size(resp) + body + 8 <= ROOM;
    let Some(body) = whole.filter(fits).filter(|_| server_keeps) else {
        return false;
    };
    sconn.buf.consume(body);
    sconn.response_complete = sconn.drained();
    sconn.response_complete
}

/// The end of a stream its server's kill ended before any response: the server connection
/// dropped, the client connection closed without a response, as HAProxy closes it.
fn killed_stream(server: &mut Current, killed: shutdown::Killed) -> Outcome {
    *server = None;
    Outcome {
        keep: false,
        flags: killed.phaseless_flags(),
    }
}

/// The end of a request no server could take (`e`): HAProxy's 503 (or the `http-error`
/// reply), counted and logged with the queue's and the connection's facts.
async fn no_server(
    route: Route<'_>,
    client: &mut Conn,
    request: &Request<'_>,
    req: &mut Req,
    e: ConnectError,
    killed: bool,
) -> Outcome {
    let Route { backend, .. } = route;
    if e.server().is_some_and(|s| !s.may_speak_h2()) {
        backend.h1.failed_attempts(failed_attempts(&e, backend));
    }
    req.server = e
        .server()
        .map_or(Served::NoServer, |s| Served::Server(s.clone()));
    if let Some(facts) = req.log.as_deref_mut() {
        facts.queued = e.queued();
        (facts.retries, facts.redispatched) = (e.retries(backend), e.redispatched());
    }
    // HAProxy's `Tw` stays unset (-1) when no server was assigned and nothing queued, or
    // when the server's full queue refused the request.
    let refused = matches!(e, ConnectError::QueueFull(_));
    match e.queue_time() {
        Some(waited) => req.queue_ms = waited.as_millis() as i64,
        None if e.server().is_none() || refused => req.queue_ms = -1,
        None => {}
    }
    // (Counted before the error's handling takes the body from the buffer.)
    let body_in = BodyIn::of(request.head.framing, &client.buf).received;
    count_unsent(route, req, req.received_head + body_in);
    let (keep, _) = keep_after_error(client, request.head, request.error_keeps);
    let with_request = super::sample::Context {
        request: Some(request.head),
        ..route.context()
    };
    let status = e.http_status();
    let page = rendered_failure(client, req, &with_request, status);
    let flags = if killed {
        killed_term(e.term())
    } else {
        e.term()
    };
    fail_with(route, client, req, (status, flags, keep), page).await
}

/// Counts the `received` bytes of a request no server took (its head, what came of its
/// body) in the bytes in: the proxies', the server's it was assigned, the tracked
/// entries', as HAProxy's stream counts what it received, sent or not.
fn count_unsent(route: Route<'_>, req: &Req, received: u64) {
    let Route {
        state, fe, backend, ..
    } = route;
    let server = match &req.server {
        Served::Server(s) => Some(&s.counters),
        _ => None,
    };
    for c in [&fe.counters, &backend.counters].into_iter().chain(server) {
        c.bytes_in.fetch_add(received, Relaxed);
    }
    state.tables.count_bytes(received, 0);
}

/// The connection attempts a request's failure to connect made: its retries, and the last
/// one unless it failed before connecting (no address to leave from) or never began (the
/// queues).
fn failed_attempts(e: &ConnectError, backend: &Backend) -> u32 {
    match e {
        ConnectError::Failed { .. }
        | ConnectError::Killed { .. }
        | ConnectError::ClientLeft(..) => e.retries(backend) + 1,
        ConnectError::Internal { retries, .. } => *retries,
        _ => 0,
    }
}

/// The flags of a request killed alone (`shutdown session`) while it waited for a server
/// that then failed it as `term` says: the kill's code in that phase, as HAProxy logs it
/// (`KQ--` at its queue's timeout).
fn killed_term(term: &'static str) -> &'static str {
    match term.as_bytes().get(1) {
        Some(b'Q') => "KQ--",
        Some(b'C') => "KC--",
        _ => term,
    }
}

/// A request's body still going to its server once the server began answering ([`early`]).
type BodyLeft = Option<Box<early::BodyRelay>>;

/// [`BodyLeft`] lent to the response's relay.
type BodyGoing<'a> = Option<&'a mut early::BodyRelay>;

/// Reads the server's final response head (`early`: one that came already), forwarding
/// the interim ones to the client; the exchange's end when none came. `first`: the request
/// is its client connection's first. `rest`: the request's body, when the server answered
/// before it went whole: after an interim response it goes on (as HAProxy relays both
/// ways at once), until it went whole (then none) or the server sends more. `head_wait`:
/// how long the first head may take (`timeout server` less what an inspection waited).
#[allow(clippy::too_many_arguments)]
async fn read_response(
    route: Route<'_>,
    client: &mut Conn,
    server: &mut Current,
    mut early: Option<Head>,
    hop: Hop,
    req: &mut Req,
    request: &Request<'_>,
    first: bool,
    (rest, attached, mut head_wait): (
        &mut BodyLeft,
        Option<&shutdown::Attached<'_>>,
        Option<Duration>,
    ),
) -> Result<Head, Outcome> {
    let Route {
        state, fe, backend, ..
    } = route;
    let Some((srv, sconn, _)) = server.as_mut() else {
        return Err(fail(route, client, req, 502, "SH--", false).await);
    };
    let connected = req.connected.unwrap_or_else(Instant::now);
    loop {
        let next = match early.take() {
            Some(r) => Ok(r),
            // (After an interim response, the whole `timeout server` again.)
            None => {
                let wait = std::mem::replace(&mut head_wait, backend.conf.timeouts.server);
                sconn.read_head(wait, false).await
            }
        };
        match next {
            Ok(r) => {
                // As HAProxy, a server counts each response head it sent, interim ones
                // included.
                srv.counters.request_at(req.started_ms);
                observe::http(backend, srv, HttpOutcome::Response(&r.first[1]));
                if !is_interim(&r) {
                    // `Tr` ends at the final head (after a tcp-response hold: HAProxy's
                    // head goes on past those rules), from the connection's start.
                    req.response_ms = connected.elapsed().as_millis() as i64;
                    return Ok(r);
                }
                if let Err(end) = forward_interim(state, fe, hop, client, &r, req).await {
                    // Its final response is still to come: the connection goes.
                    *server = None;
                    return Err(end);
                }
                // The body goes on, unless the server sent more already.
                let Some(relay) = rest.as_deref_mut().filter(|_| sconn.drained()) else {
                    continue;
                };
                match resume_body(route, client, (srv, sconn), relay, req, attached).await {
                    Ok(early::Relayed::Whole) => *rest = None,
                    Ok(early::Relayed::Answered) => {}
                    Err(unsent) => {
                        let method = &request.head.first[0];
                        let end = unsent_end(route, client, server, req, method, unsent, attached);
                        return Err(Box::pin(end).await);
                    }
                }
            }
            // The server closed (or reset) without a response, after the request went
            // whole: it may have acted on it, so it is not sent again. As HAProxy does for
            // a request that is not its client connection's first, the client connection
            // closes without a response, for the client to decide.
            Err(ReadError::Closed) if !first => {
                *server = None;
                return Err(Outcome {
                    keep: false,
                    flags: ABORTED_KEEP_ALIVE,
                });
            }
            Err(e) => {
                // No response head: no response time (`Tr` -1), as HAProxy logs it.
                req.response_ms = -1;
                // The connection and its slot go once the request is logged, as HAProxy's
                // stream logs before the next waiter takes its server (`%sc`, log order).
                let failed = server.as_ref().map(|(s, ..)| s.clone());
                srv_error(backend, failed.as_deref());
                if let (Some(srv), Some(lost)) = (failed.as_deref(), HttpOutcome::lost(&e)) {
                    observe::http(backend, srv, lost);
                }
                if matches!(e, ReadError::Malformed(_))
                    && let Some((srv, sconn, _)) = server.as_ref()
                {
                    capture_refused_response(route, srv, sconn);
                }
                let (code, flags) = match e {
                    ReadError::Timeout | ReadError::IdleTimeout => (504, "sH--"),
                    // A response HAProxy's parser refuses: its `PH`.
                    ReadError::Malformed(_) | ReadError::Unsupported(_) | ReadError::TooLarge => {
                        (502, "PH--")
                    }
                    _ => (502, "SH--"),
                };
                // The request went whole to the server: the client may send another. Not
                // while its body is still coming: its rest would be read as a request.
                let failure = (code, flags, request.error_keeps && rest.is_none());
                let method = &request.head.first[0];
                return Err(fail_sent(route, client, req, method, failure).await);
            }
        }
    }
}

/// Keeps a response head HAProxy's H1 parser refuses for `show errors`, in its backend.
fn capture_refused_response(route: Route<'_>, srv: &Server, sconn: &Conn) {
    if sconn.h2_up.is_some() {
        return;
    }
    use super::error_capture::Named;
    super::error_capture::capture(super::error_capture::Refused {
        side: super::error_capture::Side::Response,
        proxy: Named::new(&route.backend.name, route.backend.id),
        other_end: Some(Named::new(&route.fe.name, route.fe.id)),
        server: Some(Named::new(&srv.name, srv.id)),
        src: route.peer,
        bytes: sconn.buf.bytes(),
        consumed: sconn.buf.start,
        not_first: false,
    });
}

/// After a response that came before the request's body went whole (see [`early`]): the
/// rest of the body goes to the server as HAProxy relays it, and ends the exchange as it
/// ends (a failed response relay already ended it).
async fn finish_body(
    route: Route<'_>,
    client: &mut Conn,
    server: &mut Current,
    mut rest: Box<early::BodyRelay>,
    req: &mut Req,
    outcome: Outcome,
    attached: Option<&shutdown::Attached<'_>>,
) -> Outcome {
    let ended = |flags| Outcome { keep: false, flags };
    let Some((srv, sconn, _)) = server.as_mut().filter(|_| outcome.flags == "----") else {
        *server = None;
        return ended(outcome.flags);
    };
    let before = rest.moved;
    let watch = early::Watch::End {
        client: route.fe.conf.timeouts.client,
    };
    let timeout = route.backend.conf.timeouts.server;
    let run = rest.run(client, (sconn, route.server_case()), timeout, watch);
    let relayed = shutdown::unless_killed(attached, run).await;
    let more = rest.moved - before;
    if let Some(facts) = req.log.as_deref_mut() {
        facts.bytes_in += more;
    }
    count_sent(route, srv, more);
    match relayed {
        Ok(Ok(_)) => {
            // Kept only when the server keeps it and sent nothing more.
            if !sconn.response_complete || !sconn.drained() {
                *server = None;
            }
            outcome
        }
        Ok(Err(stop)) => {
            *server = None;
            ended(stop.flags(true))
        }
        Err(killed) => {
            *server = None;
            ended(killed.phaseless_flags())
        }
    }
}

/// Adds the headers the request takes on its way to the server: the unique id after those
/// the rules set, then `X-Forwarded-For` (`option forwardfor`), as HAProxy adds them.
fn add_headers(fe: &Frontend, backend: &Backend, head: &mut Head, req: &mut Req, peer: SocketAddr) {
    let line = req.line.as_str();
    let unique_id = (req.log.as_deref_mut()).and_then(|l| l.unique_id_for(fe, head, line));
    if let (Some(name), Some(id)) = (fe.logger.unique_id_header(), unique_id) {
        head.headers.push((name.to_string(), id.to_string()));
    }
    forwardfor(
        head,
        fe.conf.options.forwardfor.as_ref(),
        backend.conf.options.forwardfor.as_ref(),
        peer.ip().to_canonical(),
    );
}

/// Where a request's persistence sends it.
struct Persisted {
    /// What the `force-persist`, `ignore-persist` and `use-server` rules decided.
    over: super::persist::Overrides,
    /// The `stick` rules' work (none without rules).
    sticking: Option<super::stick::Sticking>,
    /// The server the request goes to first (its cookie's, its stick entry's).
    direct: Option<Arc<Server>>,
    /// `direct` is its persistence cookie's.
    by_cookie: bool,
}

/// Applies the backend's persistence to a request: the override rules (none: nothing
/// evaluated), its persistence cookie, then its `stick` rules (none: nothing done), as in
/// HAProxy; what they decided is noted in `req.persist` too.
fn persistence(
    base: &super::sample::Context<'_>,
    backend: &Backend,
    head: &mut Head,
    req: &mut Req,
) -> Persisted {
    let over = super::persist::overrides(
        &super::sample::Context {
            request: Some(head),
            ..*base
        },
        backend,
    );
    req.persist = super::persist::on_request(backend, head, &over);
    let by_cookie = req.persist.direct.is_some();
    let sticking = (!backend.conf.rules.stick.is_empty()).then(|| {
        let ctx = super::sample::Context {
            request: Some(head),
            ..*base
        };
        super::stick::on_request(&ctx, backend, &over)
    });
    let direct =
        (req.persist.direct.clone()).or_else(|| sticking.as_ref().and_then(|s| s.direct.clone()));
    // A stick entry's server is direct too (HAProxy's `SF_DIRECT`): no cookie is inserted
    // for a request it sent to that server.
    req.persist.direct.clone_from(&direct);
    Persisted {
        over,
        sticking,
        direct,
        by_cookie,
    }
}

/// The request head as it goes to the server (HAProxy's HTTP/1 layer writes it: see
/// [`h1::write_request`]), and what it decided for the response's way back.
fn request_for_server(
    state: &State,
    fe: &Frontend,
    backend: &Backend,
    head: &Head,
) -> (Vec<u8>, Hop) {
    let options = (&fe.conf.options, &backend.conf.options);
    let to_server = h1::ToServer {
        close_mode: options.0.httpclose
            || options.0.http_server_close
            || options.1.httpclose
            || options.1.http_server_close,
        case: case_map(state, options.1.h1_case_adjust_bogus_server),
    };
    let mut bytes = Vec::with_capacity(512);
    let server_close = h1::write_request(head, to_server, &mut bytes);
    let hop = Hop {
        request_http11: h1::is_http11(&head.first[2]),
        server_close,
        body_follows: false,
    };
    (bytes, hop)
}

/// A request's server connection, reused or new, noted in its facts (times in queue and to
/// connect, retries); with the PROXY header a new plaintext connection starts with (empty
/// else: through TLS, it went before the handshake); and its server's kill switch's firings
/// when it became the server's.
fn connection_taken(
    req: &mut Req,
    ready: Ready,
    backend: &Backend,
    (peer, local): (SocketAddr, SocketAddr),
    session: Option<&Arc<super::h2_server::Private>>,
) -> (Taken, Vec<u8>, u64) {
    match ready {
        Ready::Reused {
            server,
            conn,
            slot,
            waited,
            queued,
            kill_since,
        } => {
            req.connect_ms = 0;
            req.queue_ms = waited.as_millis() as i64;
            if let Some(facts) = req.log.as_deref_mut() {
                facts.queued = queued;
            }
            let mut conn = conn;
            conn.stream_starts();
            ((server, conn, Some(slot)), Vec::new(), kill_since)
        }
        Ready::New(c, generation, tls) => {
            req.connect_ms = c.connect_time.as_millis() as i64;
            req.queue_ms = c.queue_time.as_millis() as i64;
            if let Some(facts) = req.log.as_deref_mut() {
                (facts.retries, facts.redispatched) = (c.retries, c.redispatched);
                facts.queued = c.queued;
            }
            if c.redispatched {
                req.persist.redispatched();
            }
            let mut header = match tls {
                None => session::proxy_header(&c.server, peer, local),
                Some(_) => Vec::new(),
            };
            let alpn = tls.as_deref().and_then(|t| t.facts.alpn.as_deref());
            let conn = if c.server.opts.proto_h2 || alpn == Some("h2") {
                // HTTP/2: its task owns the socket's I/O, the PROXY header first; other
                // requests may share it, unless it is private: then only its client
                // connection's (an HTTP/2 one's other streams at once).
                let sock = Arc::new(c.stream);
                let preface = std::mem::take(&mut header);
                let owner = match session {
                    _ if !private(backend, &c.server) => {
                        let key = super::h2_server::session_key(session.map(|s| &**s));
                        super::h2_server::Owner::Any(key)
                    }
                    Some(session) => super::h2_server::Owner::Session(session),
                    None => super::h2_server::Owner::Client,
                };
                let io = (sock.clone(), tls);
                let link = super::h2_server::Link::start(&c.server, io, preface, owner);
                Conn {
                    generation,
                    h2_up: Some(Box::new(link)),
                    ..Conn::over(Socket::Shared(sock))
                }
            } else {
                backend.h1.failed_attempts(c.retries);
                Conn {
                    generation,
                    tls,
                    linger_risk: true,
                    h1: Some(h1::Link::open(&backend.h1)),
                    ..Conn::new(c.stream)
                }
            };
            let mut conn = conn;
            conn.stream_starts();
            let kill_since = c.kill_since;
            ((c.server, conn, Some(c.slot)), header, kill_since)
        }
    }
}

/// Runs the proxy's response rules (`http-response`) on a server's response: the answer
/// that replaces it when they refuse it, counted as HAProxy counts it (the refused
/// response's status and as much of it as was read, `dresp`, the answer's status in the
/// backend), to be sent and logged by the exchange.
#[allow(clippy::too_many_arguments)]
fn response_rules(
    state: &State,
    fe: &Frontend,
    backend: &Backend,
    client: &mut Conn,
    (srv, sconn): (&Server, &Conn),
    head: &Head,
    resp: &mut Head,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
) -> Option<rules::Local> {
    let dst = client.dst(local);
    let keep = !head.asks_close();
    let phases = [
        req.request_ms,
        req.queue_ms,
        req.connect_ms,
        req.response_ms,
    ];
    let request = req.facts(client);
    let log = req.log.as_deref();
    let facts = rules::Facts::response(request, head, srv, &sconn.stream, phases, log);
    let answer = rules::route_response(state, fe, backend, resp, peer, dst, keep, &facts)?;
    srv.counters
        .count_status(resp.first[1].parse().unwrap_or(0));
    if answer.abort.is_some() {
        // HAProxy counts a response's `silent-drop` as a denied request, and logs the
        // server's status and what it read of the response.
        for c in [&fe.counters, &backend.counters] {
            c.denied_req.fetch_add(1, Relaxed);
        }
        req.bytes += buffered_size(resp, &head.first[0], &sconn.buf);
        req.response_ms = -1;
        return Some(answer);
    }
    // A failed rewrite's 500 is an internal error, not a refusal.
    if !answer.internal_error {
        for c in [&fe.counters, &backend.counters, &srv.counters] {
            c.denied_resp.fetch_add(1, Relaxed);
        }
    }
    // HAProxy counts the refused response too, as much of it as it read.
    req.bytes += buffered_size(resp, &head.first[0], &sconn.buf);
    backend.counters.count_status(answer.status);
    req.response_ms = -1;
    // Logged by the exchange's caller, with the backend; counted in `dresp` here.
    Some(rules::Local {
        logged: false,
        denied: false,
        ..answer
    })
}

/// Why a request's body did not reach its server whole.
enum Unsent {
    /// The relay stopped so.
    Stopped(Stop),
    /// The server's kill ended it ([`shutdown`]).
    Killed(shutdown::Killed),
}

/// Relays a request's body to its server, and counts what went (all of it, or what moved
/// before it stopped) in the bytes in. As in HAProxy, the server's timeout bounds it (the
/// whole exchange with the server): a client that stops mid-body gets HAProxy's 504 once
/// it passed (the client's does not apply meanwhile). A stream killed meanwhile ends at
/// once: the relay may be waiting for the client, which the server's shutdown does not
/// wake. A server answering before the body went whole stops the relay there: the relay
/// comes back, to go on once the response went to the client ([`early`]).
async fn send_body(
    route: Route<'_>,
    client: &mut Conn,
    (srv, sconn): (&Server, &mut Conn),
    (framing, started): (Framing, Option<Box<early::BodyRelay>>),
    req: &mut Req,
    attached: Option<&shutdown::Attached<'_>>,
) -> Result<Option<Box<early::BodyRelay>>, Unsent> {
    let timeout = route.backend.conf.timeouts.server;
    let mut moved = 0;
    let relayed = if framing == Framing::None {
        let timeouts = RelayTimeouts {
            read: timeout,
            write: timeout,
        };
        // (No body: nothing is framed.)
        let relay = relay_body(client, (Some(sconn), None), framing, timeouts, &mut moved);
        // Pinned here: the kill's wait moves only a pointer, not the relay, through its
        // layers.
        let relayed = shutdown::unless_killed(attached, std::pin::pin!(relay)).await;
        relayed.map(|r| r.map(|()| None))
    } else {
        // Boxed: a body's relay is not part of every request's future.
        let mut relay = started.unwrap_or_else(|| Box::new(early::BodyRelay::new(framing)));
        let watch = early::Watch::Answer { read: timeout };
        let run = Box::pin(relay.run(client, (sconn, route.server_case()), timeout, watch));
        let relayed = shutdown::unless_killed(attached, run).await;
        moved = relay.moved;
        relayed.map(|r| r.map(|ended| (ended == early::Relayed::Answered).then_some(relay)))
    };
    let sent = req.received_head + moved;
    if let Some(facts) = req.log.as_deref_mut() {
        facts.bytes_in = sent;
    }
    count_sent(route, srv, sent);
    match relayed {
        Ok(relayed) => relayed.map_err(Unsent::Stopped),
        Err(killed) => Err(Unsent::Killed(killed)),
    }
}

/// Goes on relaying a request's body after an interim response its server sent before
/// the body went whole (see [`read_response`]), as [`send_body`] relays it: until its end
/// or the server's next bytes.
async fn resume_body(
    route: Route<'_>,
    client: &mut Conn,
    (srv, sconn): (&Server, &mut Conn),
    relay: &mut early::BodyRelay,
    req: &mut Req,
    attached: Option<&shutdown::Attached<'_>>,
) -> Result<early::Relayed, Unsent> {
    let timeout = route.backend.conf.timeouts.server;
    let before = relay.moved;
    let watch = early::Watch::Answer { read: timeout };
    let run = Box::pin(relay.run(client, (sconn, route.server_case()), timeout, watch));
    let relayed = shutdown::unless_killed(attached, run).await;
    let more = relay.moved - before;
    if let Some(facts) = req.log.as_deref_mut() {
        facts.bytes_in += more;
    }
    count_sent(route, srv, more);
    match relayed {
        Ok(relayed) => relayed.map_err(Unsent::Stopped),
        Err(killed) => Err(Unsent::Killed(killed)),
    }
}

/// The exchange's end when its request's body did not reach its server whole: a kill of
/// the stream meanwhile ends it as killed, else as [`body_failed`] says; the server
/// connection goes.
async fn unsent_end(
    route: Route<'_>,
    client: &mut Conn,
    server: &mut Current,
    req: &mut Req,
    method: &str,
    unsent: Unsent,
    attached: Option<&shutdown::Attached<'_>>,
) -> Outcome {
    let killed = attached.and_then(shutdown::Attached::killed);
    let unsent = killed.map_or(unsent, Unsent::Killed);
    let failed = server.take().map(|(s, ..)| s);
    // No final response (an interim one may have come): no response time, as HAProxy.
    req.response_ms = -1;
    body_failed(route, client, req, method, failed.as_deref(), unsent).await
}

/// Counts `sent` more bytes of the request in the bytes in (the proxies' and server's, the
/// tracked entries').
fn count_sent(route: Route<'_>, srv: &Server, sent: u64) {
    let Route {
        state, fe, backend, ..
    } = route;
    for c in [&fe.counters, &backend.counters, &srv.counters] {
        c.bytes_in.fetch_add(sent, Relaxed);
    }
    state.tables.count_bytes(sent, 0);
}

/// The exchange's end when its request's body did not reach `failed` (its server) whole.
async fn body_failed(
    route: Route<'_>,
    client: &mut Conn,
    req: &mut Req,
    method: &str,
    failed: Option<&Server>,
    unsent: Unsent,
) -> Outcome {
    let Route { fe, backend, .. } = route;
    match unsent {
        // Killed: the client connection closes without a response, as in HAProxy.
        Unsent::Killed(killed) => Outcome {
            keep: false,
            flags: killed.phaseless_flags(),
        },
        Unsent::Stopped(Stop::SrcClosed) => Outcome {
            keep: false,
            flags: "CD--",
        },
        // Bad framing later in the body: the server connection is dropped with its half
        // request, and the client, who got nothing yet, gets 400.
        Unsent::Stopped(Stop::Invalid) => {
            fe.counters.req_errors.fetch_add(1, Relaxed);
            fail_sent(route, client, req, method, (400, "PH--", false)).await
        }
        Unsent::Stopped(Stop::SrcTimeout | Stop::DstTimeout) => {
            srv_error(backend, failed);
            fail_sent(route, client, req, method, (504, "sH--", false)).await
        }
        Unsent::Stopped(Stop::DstFailed) => {
            srv_error(backend, failed);
            fail_sent(route, client, req, method, (502, "SH--", false)).await
        }
    }
}

/// Whether the request announces `Expect: 100-continue` for a body it has.
fn expects_continue(head: &Head, framing: Framing) -> bool {
    framing != Framing::None
        && head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// An interim response (1xx but a protocol switch), which a final one follows.
fn is_interim(resp: &Head) -> bool {
    resp.first[1].starts_with('1') && resp.first[1] != "101"
}

/// For a request announcing `Expect: 100-continue`, sent without its body: the client waits
/// for the server's interim answer, which goes to it first (else it would send its body only
/// after its own delay). The server's final answer if it gave one instead (a body the
/// client sends anyway then goes on to the server, see [`relay_exchange`]); none when the
/// client sends first or the server failed (the relay and the response's read see either);
/// the exchange's end if the client could not take the interim answer.
async fn await_continue(
    state: &State,
    fe: &Frontend,
    hop: Hop,
    client: &mut Conn,
    sconn: &mut Conn,
    timeout: Option<Duration>,
    req: &mut Req,
) -> Result<Option<Head>, Outcome> {
    let answer = tokio::select! {
        biased;
        // A head read in part stays in the server connection's buffer for the next read.
        head = sconn.read_head(timeout, false) => head.ok(),
        () = client_sends(client) => None,
    };
    match answer {
        Some(r) if is_interim(&r) => forward_interim(state, fe, hop, client, &r, req)
            .await
            .map(|()| None),
        other => Ok(other),
    }
}

/// Waits until the client of an `Expect: 100-continue` request sends something: on a plain
/// or TLS connection its socket's readiness (nothing read); on an HTTP/2 stream its next
/// DATA, read into its buffer for the body's relay (the connection's socket carries other
/// streams' frames too, and the client's own WINDOW_UPDATE or PING).
async fn client_sends(client: &mut Conn) {
    if client.h2.is_some() {
        let _ = client.fill(None).await;
    } else {
        let _ = client.stream.readable().await;
    }
}

/// Sends an interim response on to the client, within the client's timeout, counted in the
/// request's response size as HAProxy counts it; the exchange's end if the client failed.
async fn forward_interim(
    state: &State,
    fe: &Frontend,
    hop: Hop,
    client: &mut Conn,
    interim: &Head,
    req: &mut Req,
) -> Result<(), Outcome> {
    let mut bytes = Vec::new();
    h1::write_response(interim, to_client(state, fe, hop, false, false), &mut bytes);
    match client.write_within(&bytes, fe.conf.timeouts.client).await {
        Ok(()) => {
            req.bytes += interim.logged_size();
            req.interim += interim.logged_size();
            interim_sent(req);
            Ok(())
        }
        Err(e) => Err(Outcome {
            keep: false,
            flags: Stop::writing(&e).flags(false),
        }),
    }
}

/// After an interim response went to the client: as HAProxy's `http_wait_for_response`
/// resets its transaction for the final one (`txn->status = 0`, `t_data = -1`), the request
/// has no response time, and no final response, its status is logged 0, not -1 (a status
/// hapx gives it later, an error's, is logged as any).
fn interim_sent(req: &mut Req) {
    req.response_ms = -1;
    if let Some(facts) = req.log.as_deref_mut() {
        facts.status_zero_shown = true;
    }
}

/// Why no server connection is ready for a request.
enum Unready {
    /// None could be had (no server, a full queue's timeout, failed connections).
    Failed(ConnectError),
    /// Its server's kill ended the stream while it connected to that server.
    Killed(Arc<Server>, shutdown::Killed),
    /// The client left while the request waited (boxed: rare).
    Gone(Box<Gone>),
}

impl From<ConnectError> for Unready {
    fn from(e: ConnectError) -> Unready {
        match e {
            ConnectError::Killed { server, why, .. } => Unready::Killed(server, why),
            ConnectError::ClientLeftQueue {
                queued,
                waited,
                server,
                ..
            } => Unready::Gone(Box::new(Gone {
                server,
                waited,
                queued,
                connecting: false,
            })),
            e => Unready::Failed(e),
        }
    }
}

/// A request whose client left while it waited for a server ([`client_watch`]).
struct Gone {
    /// The server waited for: the one connected to, or whose queue it was (an abort in
    /// its queue counted already, see `session::wait_in_queue`; HAProxy counts none while
    /// connecting in HTTP mode).
    server: Option<Arc<Server>>,
    /// How long it waited in the queues, and where (`%Tw`, `%sq`, `%bq`).
    waited: Duration,
    queued: QueuePositions,
    /// It left while its server was connected to (`CC`), not in a queue (`CQ`).
    connecting: bool,
}

/// Waits until the client of a request with this body `framing` leaves while the request
/// waits for a server (in a queue or while connecting), as HAProxy's `check_req_may_abort`
/// and `back_handle_st_con` see it: its FIN or reset with `option abortonclose`, else only
/// while its body is still to come (a FIN then truncates it). Meanwhile the body is read
/// into the client's buffer, as HAProxy reads it into its channel; once it is whole
/// (without the option), or the buffer full, HAProxy reads no more and sees nothing: nor
/// does this. A body that becomes whole during the wait ends the watch even with the
/// option: HAProxy's H1 layer does not read past the end of a message it streamed in, and
/// the request is sent. A reset or a truncated body is an abort ([`Left::Aborted`]).
async fn client_watch(client: &mut Conn, framing: Framing, abortonclose: bool) -> Left {
    // Only a request whole when the wait began is watched past its end (with the option).
    let reads_past_end = abortonclose && whole_body(framing, &client.buf).is_some();
    loop {
        let complete = whole_body(framing, &client.buf).is_some();
        if (complete && !reads_past_end) || client.buf.len() >= READ_CHUNK {
            return std::future::pending().await;
        }
        match client.fill(None).await {
            Ok(0) if complete => return Left::Closed,
            Ok(0) | Err(_) => return Left::Aborted,
            Ok(_) => {}
        }
    }
}

/// The end of a request whose client left while it waited for a server (`gone`): as
/// HAProxy's `http_return_srv_error` after a queue or connection abort, no response and
/// no status (-1, counted among the other statuses), `CQ` or `CC`; the connection closes.
fn client_gone(route: Route<'_>, req: &mut Req, gone: Gone) -> Outcome {
    let Route { fe, backend, .. } = route;
    req.server = gone.server.map_or(Served::NoServer, Served::Server);
    req.queue_ms = gone.waited.as_millis() as i64;
    if let Some(facts) = req.log.as_deref_mut() {
        facts.queued = gone.queued;
    }
    fe.counters.count_status(0);
    backend.counters.count_status(0);
    let flags = if gone.connecting { "CC--" } else { "CQ--" };
    Outcome { keep: false, flags }
}

/// A server connection ready for a request, with a slot of its server.
enum Ready {
    /// An idle connection (the client connection's own, or from the server's pool), its
    /// server's slot taken after `waited` in the queues.
    Reused {
        server: Arc<Server>,
        conn: Conn,
        slot: Slot,
        waited: Duration,
        queued: QueuePositions,
        /// Its server's kill switch's firings when the slot was taken.
        kill_since: u64,
    },
    /// A new connection, with the [`Server::conn_generation`] of its server it began in,
    /// and its TLS state with `server ... ssl`.
    New(session::Connected, u64, Option<Box<super::tls::Session>>),
}

/// A client connection's server side: the connection of the request in progress, and the
/// idle connections private to it.
#[derive(Default)]
struct Upstream {
    /// The server connection of the request in progress, with its server's slot.
    current: Option<(Arc<Server>, Conn, Option<Slot>)>,
    /// Idle connections only this client connection's requests reuse (see [`private`]).
    owned: Vec<(Arc<Server>, Conn)>,
    /// The most idle connections it owns: its frontend's `max-session-srv-conns` (HAProxy's
    /// default 5, measured: an HTTP/1.1 client's requests balanced over seven servers with
    /// `http-reuse never` keep five connections, the sixth and seventh close after each).
    most_owned: usize,
    /// The request is the client connection's first (`http-reuse safe` gives it a new
    /// server connection).
    first: bool,
    /// A server connection authenticated this client connection: its requests go to the
    /// server of the connections it owns, as with `option prefer-last-server`.
    prefer_last: bool,
    /// An HTTP/2 stream's: the connections its client connection owns, which all its
    /// streams share (in place of `owned`).
    session: Option<Arc<super::h2::Session<Conn>>>,
}

impl Upstream {
    /// The request is over: its server connection, still usable, goes to the client
    /// connection's own idle ones (private) or to its server's pool for any later request;
    /// then its slot goes to the next request waiting for the server.
    fn detach(&mut self, backend: &Backend) {
        let Some((server, mut conn, slot)) = self.current.take() else {
            return;
        };
        // An idle connection is no stream's: out of the kill registry before it is kept.
        conn.registered = None;
        conn.stream_ends();
        conn.served += 1;
        // Only a connection whose response was read whole goes on, and only in its server's
        // current generation; bytes after the response: not reused (as HAProxy kills it).
        let keep = std::mem::take(&mut conn.response_complete)
            && conn.generation == server.conn_generation()
            && conn.drained();
        if keep {
            self.prefer_last |= conn.private;
            let private = conn.private || private(backend, &server);
            // The pool keeps sockets: a TLS connection stays with its client connection.
            let linked = conn.tls.is_some() || conn.h2_up.is_some();
            if conn.h2_up.is_some() && (!private || self.session.is_some()) {
                // A shared HTTP/2 connection stays listed for its server's requests, this
                // client connection's next one included, as HAProxy's stream detaches from
                // it (dropping the link ends only the link); so does a private one in its
                // session's list.
            } else if private || linked {
                if let Some(session) = &self.session {
                    session.keep(server, conn);
                } else if self.owned.len() < self.most_owned {
                    self.owned.push((server, conn));
                }
            } else {
                let Conn {
                    stream,
                    served,
                    generation,
                    ..
                } = conn;
                // (A server connection's socket is its own.)
                if let Socket::Own(stream) = stream {
                    pool::put(&server, stream, served, generation);
                }
            }
        }
        drop(slot);
    }
}

/// Whether connections to `server` belong to their client connection: `http-reuse never`,
/// or a PROXY header describing that client or a source address following it (HAProxy
/// reuses such a connection only for the same client addresses).
fn private(backend: &Backend, server: &Server) -> bool {
    backend.conf.http_reuse == HttpReuse::Never
        || server.opts.send_proxy.is_some()
        || session::source_follows_client(server)
}

/// What decides a request's server connection.
#[derive(Debug, Clone, Copy)]
struct Needs<'a> {
    /// Where the request's server is told from its assignment on, for `show sess`.
    assignment: &'a Assignment,
    /// The client connection's first request (`http-reuse`).
    first: bool,
    /// The client connection was authenticated by a connection it owns.
    prefer_last: bool,
    /// An HTTP/2 stream's connections shared with its connection's other streams.
    session: Option<&'a super::h2::Session<Conn>>,
    /// What the balancer picks the server with (a hash of the request for `uri`...).
    key: super::balance::Key,
    /// The server the request's persistence cookie names.
    direct: Option<&'a Arc<Server>>,
    /// `force-persist` matched: never redispatched.
    forced: bool,
    /// The request, whose header `usesrc hdr_ip` may read.
    request: &'a Head,
}

/// A server and a connection to it for a request. The server is balanced for each request,
/// as HAProxy does; with `option prefer-last-server` or [`Needs::prefer_last`] (not for
/// hashing algorithms) it is the server of a connection the client connection owns while
/// that one takes requests, waiting in its queue when it is full. The connection is the
/// client connection's own to that server, else an idle one of its pool as `http-reuse`
/// allows, else a new one. `watch`: the client, when its leaving ends the wait (in the
/// queue, or while its new connection is made).
async fn server_for(
    backend: &Arc<Backend>,
    owned: &mut Vec<(Arc<Server>, Conn)>,
    needs: Needs<'_>,
    (peer, local): (SocketAddr, SocketAddr),
    mut watch: Option<session::Watch<'_>>,
) -> Result<Ready, Unready> {
    let began = Instant::now();
    let mut queued = QueuePositions::default();
    let origin = session::Origin::Request(peer, needs.request);
    let prefers = needs.prefer_last || backend.conf.options.prefer_last_server;
    let preferred = (prefers && !backend.balance.hashes())
        .then(|| {
            owned
                .iter()
                .find(|(s, _)| s.usable() && backend.servers.iter().any(|b| Arc::ptr_eq(b, s)))
        })
        .flatten()
        .map(|(s, _)| s.clone());
    // A persistence cookie's server first, as HAProxy's `SF_DIRECT`.
    let direct = needs.direct.is_some();
    let preferred = needs.direct.cloned().or(preferred);
    let watching = session::reborrow(&mut watch);
    let slot = session::slot_for(
        backend,
        preferred.as_ref(),
        direct,
        needs.key,
        &mut queued,
        watching,
    );
    let slot = slot.await?;
    let waited = began.elapsed();
    let server = slot.server().clone();
    needs.assignment.assign(&server);
    // The stream is the server's from its slot on (HAProxy's `srv_conn`).
    let kill_since = server.kill.firings();
    // The client connection's own, looked at as an idle one of the pool is (one that
    // cannot serve is closed), else one of the pool.
    let owned_conn = owned
        .iter()
        .position(|(s, _)| Arc::ptr_eq(s, &server))
        .map(|i| owned.swap_remove(i).1)
        .and_then(|mut conn| conn.reusable_for(&server).then_some(conn))
        .filter(|conn| session::leaves_as(&conn.stream, &server, origin))
        .or_else(|| session_conn(needs.session?, &server, origin));
    // HAProxy counts a private connection in use only as it opens (`conn_new`, then
    // `conn_set_private`), not as a later request takes it: the pool's need stays at one.
    let is_private = private(backend, &server);
    let conn = match owned_conn {
        Some(conn) => {
            if !is_private {
                pool::note_use(&server);
            }
            Some(conn)
        }
        None if is_private => {
            pool::note_private_attempt(&server);
            None
        }
        None => shared_h2(backend, &server, needs).or_else(|| {
            pool::take(&server, backend.conf.http_reuse, needs.first).map(|stream| Conn {
                // Pooled after a response at least, in the server's current generation.
                served: 1,
                generation: server.conn_generation(),
                linger_risk: true,
                // Counted open in the pool until now.
                h1: Some(h1::Link::adopt(&backend.h1)),
                ..Conn::new(stream)
            })
        }),
    };
    if conn.is_some() {
        // A new connection counts per attempt, on the server tried (`runtime::session`).
        server.idle.reuses.fetch_add(1, Relaxed);
    }
    match conn {
        Some(conn) => Ok(Ready::Reused {
            server,
            conn,
            slot,
            waited,
            queued,
            kill_since,
        }),
        None => {
            // Read before the connection is made: an address changed meanwhile retires it.
            let generation = server.conn_generation();
            let direct = Direct::of(needs.direct, needs.forced, &server);
            // Boxed: connecting and a TLS handshake take kilobytes of future, which would
            // otherwise be in every request's exchange (moved into its box per request) when
            // most requests of a kept-alive connection reuse one.
            let connecting = Box::pin(async {
                let waited = (waited, queued);
                let c = session::connect_from(backend, origin, local, true, slot, waited, direct);
                // With `server ... ssl`, the TLS handshake (and the PROXY header before it).
                session::secure(backend, origin, local, c.await?).await
            });
            // Each attempt and its TLS handshake are their server's (HAProxy's `srv_conn`):
            // a kill of that server ends them, not one of a server left by a redispatch (a
            // queued stream is no server's). The client leaving abandons them.
            let (c, tls) = match watch {
                None => connecting.await?,
                Some(watch) => tokio::select! {
                    biased;
                    connected = connecting => connected?,
                    _ = watch => {
                        let gone = Gone {
                            server: Some(server),
                            waited,
                            queued,
                            connecting: true,
                        };
                        return Err(Unready::Gone(Box::new(gone)));
                    }
                },
            };
            let generation = if Arc::ptr_eq(&c.server, &server) {
                generation
            } else {
                c.server.conn_generation()
            };
            Ok(Ready::New(c, generation, tls))
        }
    }
}

/// A stream on an HTTP/2 connection to `server` other requests opened, as `http-reuse`
/// allows ([`super::h2_server::Link::shared`]), unless connections to it are private.
fn shared_h2(backend: &Backend, server: &Arc<Server>, needs: Needs<'_>) -> Option<Conn> {
    // A server that never speaks HTTP/2 has none: its requests do not look (nor lock).
    if !server.may_speak_h2() || private(backend, server) {
        return None;
    }
    let session = super::h2_server::session_key(needs.session.map(|s| &*s.h2));
    let reuse = backend.conf.http_reuse;
    let link = super::h2_server::Link::shared(server, reuse, needs.first, session)?;
    // Counted in use as the pool counts a connection it gives (once per connection).
    pool::note_use(server);
    Some(linked_conn(server, link))
}

/// A request's connection over `link`, a stream of an HTTP/2 connection to `server`.
fn linked_conn(server: &Server, link: super::h2_server::Link) -> Conn {
    let sock = Socket::Shared(link.socket());
    Conn {
        served: 1,
        generation: server.conn_generation(),
        h2_up: Some(Box::new(link)),
        ..Conn::over(sock)
    }
}

/// One of the connections to `server` an HTTP/2 stream's client connection owns: a stream
/// on one of its HTTP/2 ones with room, else an idle one, looked at as the client
/// connection's own are.
fn session_conn(
    owned: &super::h2::Session<Conn>,
    server: &Arc<Server>,
    origin: session::Origin<'_>,
) -> Option<Conn> {
    if server.may_speak_h2()
        && let Some(link) = owned.h2.link(server)
    {
        return Some(linked_conn(server, link));
    }
    owned.take(server, |conn| {
        conn.reusable_for(server) && session::leaves_as(&conn.stream, server, origin)
    })
}

/// A response that failed (none, a timeout, a malformed one): an error of the response
/// (`eresp`) for the backend and the server, as HAProxy's `failed_resp`.
fn srv_error(backend: &Backend, server: Option<&Server>) {
    if let Some(server) = server {
        server.counters.resp_errors.fetch_add(1, Relaxed);
    }
    backend.counters.resp_errors.fetch_add(1, Relaxed);
}

/// Relays the server's response `resp` (its head, then its body, or a tunnel after a
/// protocol switch) to the client, counted in the stats; `attached`: the stream, when its
/// server's kill may end it. `body`: the request's body, when it still goes: it goes on
/// while the response's body is relayed ([`early::both_ways`]).
#[allow(clippy::too_many_arguments)]
async fn respond(
    route: Route<'_>,
    client: &mut Conn,
    server: &mut Current,
    mut resp: Head,
    method: &str,
    hop: Hop,
    req: &mut Req,
    (attached, body): (Option<&shutdown::Attached<'_>>, BodyGoing<'_>),
) -> Outcome {
    let Route {
        state, fe, backend, ..
    } = route;
    let framing = response_framing(&resp, method);
    if framing == Framing::Chunked {
        if let Some((_, sconn, _)) = server.as_ref() {
            if !chunked::prefix_is_valid(sconn.buf.bytes()) {
                // Nothing reached the client yet: it gets 502, like a malformed head.
                let failed = server.take().map(|(s, ..)| s);
                srv_error(backend, failed.as_deref());
                let keep = errors_keep(state, fe, req.close);
                return fail_sent(route, client, req, method, (502, "PH--", keep)).await;
            }
        }
    }
    let status: u16 = resp.first[1].parse().unwrap_or(0);
    // The status the server sent, before the response rules (`set-status`) changed it.
    let served = std::mem::replace(&mut req.status, status);
    if let Some(facts) = req.log.as_deref_mut() {
        facts.response(fe, &resp);
    }
    fe.counters.count_status(status);
    backend.counters.count_status(status);
    let Some((srv, sconn, _)) = server.as_mut() else {
        return Outcome {
            keep: false,
            flags: "SH--",
        };
    };
    super::persist::on_response(backend, srv, method, status, &mut resp, &mut req.persist);
    srv.counters.count_status(served);
    sconn.private |= authenticates_connection(&resp, status);
    let framing = if status == 101 {
        Framing::None
    } else {
        framing
    };
    // A soft stop: this response is the connection's last.
    req.close |= state.stopping.load(Relaxed);
    let buffered = match framing {
        Framing::Length(n) => (sconn.buf.len() as u64).min(n) as usize,
        _ => 0,
    };
    let (wrote, client_close) = if let Some(h2) = client.h2.as_deref_mut() {
        // An HTTP/2 stream: the head goes as HEADERS, the stream's end closes nothing.
        let body = &sconn.buf.bytes()[..buffered];
        let wrote = match h2.respond(&resp, framing) {
            Ok(()) => client.write_within(body, fe.conf.timeouts.client).await,
            Err(e) => Err(e),
        };
        (wrote, true)
    } else {
        // The head and the body bytes already read go out in one write (vectored: the body
        // is not copied after the head).
        let mut head = Vec::with_capacity(512);
        let until_close = framing == Framing::UntilClose;
        let client_close = h1::write_response(
            &resp,
            to_client(state, fe, hop, req.close, until_close),
            &mut head,
        );
        let first = (&head[..], &sconn.buf.bytes()[..buffered]);
        let wrote = client
            .write_two_within(first, fe.conf.timeouts.client)
            .await;
        (wrote, client_close)
    };
    // A client that failed the head's write: HAProxy had taken for it what it read of the
    // body with the head (its response channel's total), which counts.
    let taken = match wrote {
        Err(_) => buffered_size(&resp, method, &sconn.buf),
        Ok(()) => 0,
    };
    sconn.buf.consume(buffered);
    let framing = match framing {
        Framing::Length(n) => Framing::Length(n - buffered as u64),
        other => other,
    };
    let mut moved = 0;
    let relayed = match wrote {
        Err(e) => {
            req.bytes += taken;
            Err(early::Broke::Response(Stop::writing(&e)))
        }
        Ok(()) => {
            req.bytes += buffered as u64;
            // `option logasap`: the line goes now, with the times and bytes so far.
            let asap = req.log.as_deref_mut().filter(|f| f.asap(fe));
            let asap = asap.map(|f| {
                // Logged while it is served: counted on its backend and its server.
                (f.early, f.server_slot) = (true, true);
                f.client
            });
            if let Some(client) = asap {
                http_log(fe, Some(backend), client, req, "----");
                if let Some(facts) = req.log.as_deref_mut() {
                    facts.logged = true;
                }
            }
            // (An HTTP/2 stream has no tunnel: its socket is the whole connection's.)
            if status == 101 && client.h2.is_none() {
                // Boxed: a tunnel's state would otherwise be part of every request's future.
                // Its server's kill ends it at once, both ways, as a TCP session's.
                let tunneled = forward::SplicedMoved::default();
                let tunnel = Box::pin(tunnel(state, fe, backend, client, sconn, &tunneled));
                let moved = &tunneled.moved;
                let ended = shutdown::unless_killed(attached, tunnel).await;
                req.bytes += moved.to_client.load(Relaxed);
                // What the client sent through the tunnel counts in, as HAProxy counts it.
                let sent = moved.to_server.load(Relaxed);
                for c in [&fe.counters, &backend.counters, &srv.counters] {
                    c.bytes_out.fetch_add(req.bytes, Relaxed);
                    c.bytes_in.fetch_add(sent, Relaxed);
                }
                state.tables.count_bytes(sent, req.bytes);
                *server = None;
                return Outcome {
                    keep: false,
                    flags: ended.map_or_else(shutdown::Killed::phaseless_flags, tunnel_flags),
                };
            }
            // Reads within the server's timeout, writes within the client's, as HAProxy.
            let timeouts = RelayTimeouts {
                read: backend.conf.timeouts.server,
                write: fe.conf.timeouts.client,
            };
            // A kill of an HTTP/2 stream ends it as its server's close would: its socket is
            // not shut down (the connection's other streams go on). Any other kill shuts the
            // server socket down, and the relay ends on that as HAProxy's stream does.
            if let Some(body) = body {
                let both = relay_both(route, client, (srv, sconn), body, framing, req);
                let (relayed, response_moved) = Box::pin(both).await;
                moved = response_moved;
                relayed
            } else {
                let shared = attached.filter(|_| sconn.h2_up.is_some());
                let to_client = (Some(&mut *client), route.client_case());
                let relay = relay_body(sconn, to_client, framing, timeouts, &mut moved);
                let relayed = shutdown::unless_killed(shared, std::pin::pin!(relay)).await;
                let relayed = relayed.unwrap_or(Err(Stop::SrcClosed));
                relayed.map_err(early::Broke::Response)
            }
        }
    };
    // What reached the client counts, all of it or what moved before the relay stopped.
    req.bytes += moved;
    for c in [&fe.counters, &backend.counters, &srv.counters] {
        c.bytes_out.fetch_add(req.bytes, Relaxed);
    }
    state.tables.count_bytes(0, req.bytes);
    if let Err(broke) = relayed {
        *server = None;
        return Outcome {
            keep: false,
            flags: broke.flags(),
        };
    }
    // A body until the server's close that a kill cut: its end was the kill's.
    let until_close = framing == Framing::UntilClose;
    let killed = attached
        .filter(|_| until_close)
        .and_then(shutdown::Attached::killed);
    if let Some(killed) = killed {
        *server = None;
        return Outcome {
            keep: false,
            flags: killed.phaseless_flags(),
        };
    }
    // The server's own say: it closes, or speaks HTTP/1.0 without keep-alive.
    let server_keeps = framing != Framing::UntilClose
        && !resp.conn.close
        && (h1::is_http11(&resp.first[0]) || resp.conn.keep_alive)
        && !hop.server_close;
    if server_keeps {
        sconn.response_complete = true;
    } else if !hop.body_follows {
        *server = None;
    }
    Outcome {
        keep: !client_close,
        flags: "----",
    }
}

/// The rest of a response's body (`framing`) relayed to the client while the rest of the
/// request's `body` goes to the server ([`early::both_ways`]), the body's bytes counted as
/// they went; with the response's size so far as the logs count it. A kill shuts the
/// server's socket down: both ways end on that, as HAProxy's stream ends.
async fn relay_both(
    route: Route<'_>,
    client: &mut Conn,
    (srv, sconn): (&Server, &mut Conn),
    body: &mut early::BodyRelay,
    framing: Framing,
    req: &mut Req,
) -> (Result<(), early::Broke>, u64) {
    let mut response = early::BodyRelay::new(framing);
    let before = body.moved;
    let (server, client_side) = (&route.backend.conf.timeouts, &route.fe.conf.timeouts);
    let timeouts = (server.server, client_side.client);
    let cases = (route.server_case(), route.client_case());
    let both = early::both_ways(body, &mut response, (client, sconn), cases, timeouts);
    let relayed = both.await;
    let more = body.moved - before;
    if let Some(facts) = req.log.as_deref_mut() {
        facts.bytes_in += more;
    }
    count_sent(route, srv, more);
    (relayed, response.moved)
}

/// The termination flags of a tunnel that ended as `end` says, as HAProxy logs an upgraded
/// stream: a timeout (`timeout tunnel`, or the side's own) or an error in the data phase,
/// charged to its side (`cD--`, `SD--`...).
fn tunnel_flags(end: forward::End) -> &'static str {
    use forward::{End, Side};
    match end {
        End::Done => "----",
        End::Timeout(Side::Client) => "cD--",
        End::Timeout(Side::Server) => "sD--",
        End::Error(Side::Client) => "CD--",
        End::Error(Side::Server) => "SD--",
        End::Denied => "PD--",
    }
}

/// After a protocol switch (WebSocket...): a tunnel between the client and the server until
/// either side ends, counting in `moved` what it moves (the bytes that came with the
/// response's head included); how it ended.
async fn tunnel(
    state: &State,
    fe: &Frontend,
    backend: &Backend,
    client: &mut Conn,
    sconn: &mut Conn,
    counted: &forward::SplicedMoved,
) -> forward::End {
    let moved = &counted.moved;
    let early = sconn.buf.take();
    if client.write_all(&early).await.is_ok() {
        moved.to_client.fetch_add(early.len() as u64, Relaxed);
    }
    let sent = client.buf.take();
    if sconn.write_all(&sent).await.is_ok() {
        moved.to_server.fetch_add(sent.len() as u64, Relaxed);
    }
    let idle = forward::IdleTimeouts::new(&fe.conf.timeouts, &backend.conf.timeouts);
    let before = tunneled(counted);
    let end = match (client.tls.as_deref_mut(), sconn.tls.as_deref_mut()) {
        (None, None) => {
            let splicing = state.splicing(fe, backend);
            forward::forward(&client.stream, &sconn.stream, idle, splicing, counted).await
        }
        (client_tls, server_tls) => {
            let from = super::tls::Side::of(&client.stream, client_tls);
            let to = super::tls::Side::of(&sconn.stream, server_tls);
            forward::forward_streams(from, to, idle, moved).await
        }
    };
    // The tunnel's bytes in its connections' HTTP/1 counters, as HAProxy's H1 multiplexer
    // goes on counting them: once at its end, not per transfer.
    let after = tunneled(counted);
    let [up, down, spliced_up, spliced_down] = std::array::from_fn(|i| after[i] - before[i]);
    if let Some(link) = &client.h1 {
        link.tunneled((up, down), (spliced_up, spliced_down));
    }
    if let Some(link) = &sconn.h1 {
        link.tunneled((down, up), (spliced_down, spliced_up));
    }
    end
}

/// What a tunnel moved so far: to the server, to the client, and of each what splice(2) did.
fn tunneled(counted: &forward::SplicedMoved) -> [u64; 4] {
    [
        &counted.moved.to_server,
        &counted.moved.to_client,
        &counted.spliced_to_server,
        &counted.spliced_to_client,
    ]
    .map(|count| count.load(Relaxed))
}

/// Whether a response asks for NTLM or Negotiate authentication, which authenticates the
/// connection rather than the request: as HAProxy does then, the server connection stays
/// with its client connection, whose later requests go to that server (`SESS_FL_PREFER_LAST`).
fn authenticates_connection(resp: &Head, status: u16) -> bool {
    let header = match status {
        401 => "www-authenticate",
        407 => "proxy-authenticate",
        _ => return false,
    };
    resp.headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(header))
        .flat_map(|(_, value)| h1::list_elements(value))
        .any(|value| {
            let scheme = value.as_bytes().get(..4).unwrap_or_default();
            scheme.eq_ignore_ascii_case(b"nego") || scheme.eq_ignore_ascii_case(b"ntlm")
        })
}

/// What the request decided for the response's way back.
#[derive(Debug, Clone, Copy)]
struct Hop {
    request_http11: bool,
    /// The server connection closes after this exchange ([`h1::write_request`]).
    server_close: bool,
    /// The server answered before the request's body went whole: its connection stays
    /// for the rest of the body after the response ([`early`]).
    body_follows: bool,
}

/// How a response to a request goes to the client: `close`, hapx closes the connection
/// after it; `until_close`, its body ends where the server closes.
fn to_client<'a>(
    state: &'a State,
    fe: &'a Frontend,
    hop: Hop,
    close: bool,
    until_close: bool,
) -> h1::ToClient<'a> {
    let options = &fe.conf.options;
    h1::ToClient {
        close,
        request_http11: hop.request_http11,
        httpclose: options.httpclose,
        until_close,
        case: case_map(state, options.h1_case_adjust_bogus_client),
    }
}

/// The global `h1-case-adjust` map, for a proxy with the matching `option` set.
fn case_map(state: &State, enabled: bool) -> Option<&h1::CaseMap> {
    let map = &state.config.global.h1_case_adjust;
    (enabled && !map.is_empty()).then_some(map)
}

/// Why a body relay stopped before the body's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The sending side sent nothing for its timeout.
    SrcTimeout,
    /// The sending side closed or failed before the body's end.
    SrcClosed,
    /// The receiving side took nothing for its timeout.
    DstTimeout,
    /// Writing to the receiving side failed.
    DstFailed,
    /// The body's chunked framing is malformed.
    Invalid,
}

impl Stop {
    /// How a write to the receiving side failed (`TimedOut`: [`Conn::write_within`]'s).
    fn writing(e: &std::io::Error) -> Stop {
        if e.kind() == std::io::ErrorKind::TimedOut {
            Stop::DstTimeout
        } else {
            Stop::DstFailed
        }
    }

    /// HAProxy's termination flags for a body from the client (`from_client`) or from the
    /// server that stopped so: the side at fault (`C`/`c` client, `S`/`s` server; lower
    /// case a timeout) in the data phase (`D`).
    fn flags(self, from_client: bool) -> &'static str {
        match (self, from_client) {
            (Stop::SrcTimeout, true) | (Stop::DstTimeout, false) => "cD--",
            (Stop::SrcClosed, true) | (Stop::DstFailed, false) => "CD--",
            (Stop::SrcTimeout, false) | (Stop::DstTimeout, true) => "sD--",
            (Stop::SrcClosed, false) | (Stop::DstFailed, true) => "SD--",
            // Refused before any response: the proxy's, in the headers phase.
            (Stop::Invalid, true) => "PH--",
            (Stop::Invalid, false) => "SD--",
        }
    }
}

/// The timeouts of a body relay: of the sending side, for each read (HAProxy's `timeout
/// client` or `timeout server` of that side), and of the receiving side, for each write.
#[derive(Debug, Clone, Copy)]
struct RelayTimeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

/// Relays a body from `src` (its buffer first) to `dst` (`None`: it is read and dropped;
/// `case`: its `h1-case-adjust` map, for a chunked body's trailers), keeping in `moved` its size so far as the logs count it (the bytes taken for `dst`, the
/// part whose write failed included, but for a chunked body:
/// [`chunked::Decoder::logged_size`]): kept by the caller, it counts what
/// moved before a stop, or before the relay was dropped (a killed stream). Where it
/// stopped, when before the body's end.
async fn relay_body(
    src: &mut Conn,
    (mut dst, case): (Option<&mut Conn>, Option<&h1::CaseMap>),
    framing: Framing,
    timeouts: RelayTimeouts,
    moved: &mut u64,
) -> Result<(), Stop> {
    let mut written = 0;
    let mut decoder = chunked::Decoder::default();
    if framing == Framing::None {
        return Ok(());
    }
    // A chunked body's checked part framed anew for `dst` (see [`chunked::Decoder::reframe`]).
    let mut reframed = Vec::new();
    loop {
        // What of the buffer is body, and whether the body ends with it.
        let out = dst.is_some().then_some((&mut reframed, case));
        let part = body_part(framing, &mut decoder, (src.buf.bytes(), written), out);
        if framing == Framing::Chunked {
            *moved = logged(&decoder, written);
        }
        let (n, done) = part?;
        if n > 0 {
            // Counted once taken for `dst`, as HAProxy counts what it forwards (its
            // channel's total): a write that then fails does not take it back.
            if framing != Framing::Chunked {
                written += n as u64;
            }
            *moved = logged(&decoder, written);
            if let Some(dst) = dst.as_deref_mut() {
                let body = match framing {
                    Framing::Chunked => &reframed[..],
                    _ => &src.buf.bytes()[..n],
                };
                let wrote = dst.write_within(body, timeouts.write);
                wrote.await.map_err(|e| Stop::writing(&e))?;
            }
            src.buf.consume(n);
            reframed.clear();
        }
        if done {
            break;
        }
        match src.fill(timeouts.read).await {
            Ok(0) if framing == Framing::UntilClose => break,
            Ok(0) => return Err(Stop::SrcClosed),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Stop::SrcTimeout),
            Err(_) => return Err(Stop::SrcClosed),
        }
    }
    Ok(())
}

/// What of `buf` is body (`taken`: the body bytes before it, `decoder`: a chunked body's
/// state), and whether the body ends with it. A chunked body's part is framed anew into
/// `reframed` when given (for forwarding, its trailers' names spelled by the case map; else
/// it is only checked).
fn body_part(
    framing: Framing,
    decoder: &mut chunked::Decoder,
    (buf, taken): (&[u8], u64),
    reframed: Option<(&mut Vec<u8>, Option<&h1::CaseMap>)>,
) -> Result<(usize, bool), Stop> {
    Ok(match framing {
        Framing::None => (0, true),
        Framing::Length(left) => {
            let n = (buf.len() as u64).min(left - taken) as usize;
            (n, taken + n as u64 == left)
        }
        Framing::UntilClose => (buf.len(), false),
        Framing::Chunked => {
            let advanced = match reframed {
                Some((out, case)) => decoder.reframe(buf, out, case),
                None => decoder.advance(buf),
            };
            (advanced.map_err(|_| Stop::Invalid)?, decoder.is_done())
        }
    })
}

/// A relayed body's logged size: `moved` bytes, or what a chunked body's decoder counted.
fn logged(decoder: &chunked::Decoder, moved: u64) -> u64 {
    moved.max(decoder.logged_size())
}

/// Reads and drops the body of a request hapx answered itself, within the client's
/// `timeout`, as HAProxy drains it: the connection's next request starts after it (its
/// bytes are never taken for one), keeping its logged size in `dropped`. False when it did
/// not come whole: the connection closes.
/// A plain function returning the boxed relay: a request without a body pays nothing, and
/// the relay's state is not part of every connection's task.
fn drain_body<'a>(
    client: &'a mut Conn,
    framing: Framing,
    timeout: Option<Duration>,
    dropped: &'a mut u64,
) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
    if framing == Framing::None {
        return Box::pin(std::future::ready(true));
    }
    let timeouts = RelayTimeouts {
        read: timeout,
        write: None,
    };
    let relay = relay_body(client, (None, None), framing, timeouts, dropped);
    Box::pin(async move { relay.await.is_ok() })
}

/// Writes a request's head and the start of its body (`body`, maybe none) to its server
/// connection, in one write as HAProxy sends what its buffer holds (a plain connection's
/// in one writev(2)); on failure, whether none of it was written (then the server can not
/// have seen it, and it may go on another connection).
async fn send_request(dst: &mut Conn, (head, body): (&[u8], &[u8])) -> Result<(), bool> {
    if dst.h2_up.is_some() || dst.tls.is_some() {
        let joined;
        let data = if body.is_empty() {
            head
        } else {
            joined = [head, body].concat();
            &joined
        };
        return match dst.write_all(data).await {
            Ok(()) => Ok(()),
            // Untouched when the connection failed before the request's stream opened.
            Err(e) if dst.h2_up.is_some() => Err(e.kind() == std::io::ErrorKind::NotConnected),
            // What rustls took is not known to be unsent: never sent again.
            Err(_) => Err(false),
        };
    }
    let (link, dst) = (dst.h1.as_ref(), &dst.stream);
    let total = head.len() + body.len();
    let mut off = 0;
    while off < total {
        dst.writable().await.map_err(|_| off == 0)?;
        let (in_head, in_body) = (off.min(head.len()), off.saturating_sub(head.len()));
        let parts = [
            std::io::IoSlice::new(&head[in_head..]),
            std::io::IoSlice::new(&body[in_body..]),
        ];
        match dst.try_write_vectored(&parts) {
            Ok(n) => {
                off += n;
                if let Some(link) = link {
                    link.wrote(n);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(off == 0),
        }
    }
    Ok(())
}

/// Answers a request for the stats page (logged as HAProxy logs it); whether the
/// connection may serve another request.
async fn serve_stats(
    state: &State,
    fe: &Frontend,
    client: &mut Conn,
    head: &Head,
    req: &mut Req,
    (peer, local): (SocketAddr, SocketAddr),
) -> bool {
    let t = &fe.conf.timeouts;
    req.server = Served::Stats;
    fe.counters.intercepted.fetch_add(1, Relaxed);
    // An applet's request skips HAProxy's cookie capture, as its rules' own answers do.
    if let Some(facts) = req.log.as_deref_mut() {
        facts.client_cookie = None;
    }
    // `stats auth` first: a client without the credentials is answered at once, its body
    // not awaited (HAProxy checks them before it waits for the body).
    let authorized = stats_authorized(&fe.conf.stats, head);
    let admin = authorized && stats_admin::allowed(state, fe, head, peer, client.dst(local));
    let form = if admin && head.first[0] == "POST" {
        match read_stats_form(client, head, t).await {
            Ok(form) => Some(form),
            Err(unread) => {
                stats_form_unread(fe, client, req, peer, unread).await;
                return false;
            }
        }
    } else {
        None
    };
    // The stream's backend: the proxy itself when it is one.
    let own_backend = fe
        .conf
        .kind
        .is_backend()
        .then(|| state.backend(&fe.name))
        .flatten();
    // HAProxy's stats applet marks its backend's last session (no session counted) before
    // the page shows it.
    if let Some(b) = own_backend {
        b.counters
            .last_session
            .store(super::meter::now_ms() / 1000, Relaxed);
    }
    let (resp, status) = stats_response(state, &fe.conf, head, authorized, admin, form);
    let (mut resp, logged) = stats_framing(resp, status, req.asker);
    req.status = status;
    req.bytes = logged;
    if rules::has_after_response(fe, None) {
        let ctx = super::sample::Context::new(state, fe, peer, client.dst(local));
        after_error(&ctx, client, req, &mut resp);
    }
    fe.counters.count_status(req.status);
    // HAProxy's stats applet is attached (connected, in no time) before the credentials are
    // checked, and its response headers come at once.
    (req.connect_ms, req.response_ms) = (0, 0);
    if status == 401 {
        // Then the `stats auth` rule answers 401 and HAProxy 2.6's applet, attached still,
        // fails on the request the rule consumed: the line says 400, and counts that page
        // too, which never leaves (the connection closes after the 401).
        (req.status, req.response_ms) = (400, -1);
        req.bytes += rules::message(400).logged_size(rules::Asker::default());
    }
    // The stream's bytes, on the frontend and on the proxy as the stream's backend.
    let counters = || {
        [&fe.counters]
            .into_iter()
            .chain(own_backend.map(|b| &b.counters))
    };
    for c in counters() {
        c.bytes_in.fetch_add(req.received_head, Relaxed);
        c.bytes_out.fetch_add(req.bytes, Relaxed);
    }
    state.tables.count_bytes(req.received_head, req.bytes);
    if client.write_within(&resp, t.client).await.is_err() {
        return false;
    }
    if status == 401 {
        // HAProxy closes the connection after its 401, the body unread.
        http_log(fe, None, peer, req, "LR--");
        return false;
    }
    // Logged once the body is read, as HAProxy logs it; the body (the admin form, or one
    // the page ignores) counts in the bytes in as HAProxy counts what its applet consumed.
    let mut body = 0;
    let drained = drain_body(client, head.framing, t.client, &mut body).await;
    for c in counters() {
        c.bytes_in.fetch_add(body, Relaxed);
    }
    state.tables.count_bytes(body, 0);
    if let Some(facts) = req.log.as_deref_mut() {
        facts.bytes_in += body;
    }
    http_log(fe, None, peer, req, "LR--");
    drained
}

/// The form a POST to the stats page carries, read whole if HAProxy's buffer would hold it
/// (see [`stats_admin::FormReader`]); its bytes stay buffered, drained once the page
/// answered. A client announcing `Expect: 100-continue` is told to send it first, as
/// HAProxy tells it. The body must come within `timeout http-request` (from now) if set,
/// each read within `timeout client`.
async fn read_stats_form(
    client: &mut Conn,
    head: &Head,
    t: &Timeouts,
) -> Result<stats_admin::Form, stats_admin::Unread> {
    use stats_admin::Unread;
    // (HTTP/1.1 only, as HAProxy's `http_handle_expect_hdr`.)
    if expects_continue(head, head.framing) && h1::is_http11(&head.first[2]) && client.drained() {
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        client
            .write_within(CONTINUE, t.client)
            .await
            .map_err(|_| Unread::Aborted)?;
    }
    let whole_by = t.http_request.and_then(|d| Instant::now().checked_add(d));
    let mut reader = stats_admin::FormReader::default();
    loop {
        if let Some(form) = reader.read(head, client.buf.bytes())? {
            return Ok(form);
        }
        let next_read = t.client.and_then(|d| Instant::now().checked_add(d));
        let deadline = match (whole_by, next_read) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match client.fill_until(deadline).await {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Unread::TimedOut),
            _ => return Err(Unread::Aborted),
        }
    }
}

/// A stats POST whose form did not come whole, answered as HAProxy answers it: 408 when
/// the client stopped sending, 400 for a broken chunked body, nothing when it closed; the
/// connection then closes (what is left of the body is not awaited).
async fn stats_form_unread(
    fe: &Frontend,
    client: &mut Conn,
    req: &mut Req,
    peer: SocketAddr,
    unread: stats_admin::Unread,
) {
    use stats_admin::Unread;
    let (code, flags) = match unread {
        Unread::TimedOut => (Some(408), "cD--"),
        Unread::Malformed => (Some(400), "PR--"),
        Unread::Aborted => (None, "CD--"),
    };
    if let Some(code) = code {
        send_error(fe, client, code, req, false).await;
    }
    http_log(fe, None, peer, req, flags);
}

/// The stats page, its CSV, the answer to an admin form's POST (`admin`: a `stats admin`
/// condition holds; `form`: what the POST carried), or 401 when not `authorized` (see
/// [`stats_authorized`]).
fn stats_response(
    state: &State,
    proxy: &Proxy,
    head: &Head,
    authorized: bool,
    admin: bool,
    form: Option<stats_admin::Form>,
) -> (Vec<u8>, u16) {
    let s = &proxy.stats;
    if !authorized {
        let realm = s
            .realm
            .clone()
            .unwrap_or_else(|| "HAProxy Statistics".into());
        let body = "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n";
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nwww-authenticate: Basic realm=\"{realm}\"\r\n\r\n{body}",
            body.len()
        );
        return (resp.into_bytes(), 401);
    }
    // A POST carries the admin page's actions: taken when `stats admin` allows them, then
    // the client is sent back to the page, told how it went.
    if head.first[0] == "POST" {
        let resp = stats_admin::post(state, s, &head.first[1], admin, form.as_ref());
        return (resp, 303);
    }
    let path = &head.first[1];
    let csv = path.contains(";csv");
    // `;norefresh` (the page's "Disable refresh" link) does not refresh; the CSV export
    // does, as HAProxy's.
    let refresh = s
        .refresh
        .filter(|_| !path.contains(";norefresh"))
        .map(|r| r.as_secs());
    let (body, ctype) = if csv {
        (stats::csv_page(state, path.contains(";up")), "text/plain")
    } else {
        (
            stats::html(state, &stats::PageView::of(s, path, admin)),
            "text/html",
        )
    };
    let refresh = refresh
        .map(|r| format!("refresh: {r}\r\n"))
        .unwrap_or_default();
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncache-control: no-cache\r\ncontent-length: {}\r\n{refresh}\r\n{body}",
        body.len()
    );
    (resp.into_bytes(), 200)
}

/// The stats page as it goes to a client (`asker`), and its size as HAProxy logs it.
/// HAProxy's stats applet streams its 200 page with `transfer-encoding: chunked` (none in
/// its answer to `HEAD`, the head only), which its counts include; hapx's page has a
/// `content-length` instead, which goes on the wire but not in the counts.
fn stats_framing(resp: Vec<u8>, status: u16, asker: rules::Asker) -> (Vec<u8>, u64) {
    const LENGTH: &[u8] = b"\r\ncontent-length: ";
    let found = (status == 200)
        .then(|| resp.windows(LENGTH.len()).position(|w| w == LENGTH))
        .flatten();
    let Some(at) = found else {
        let resp = asker.cut(resp);
        let size = logged_size(&resp);
        return (resp, size);
    };
    let value_end = resp[at + LENGTH.len()..]
        .iter()
        .position(|&b| b == b'\r')
        .map_or(resp.len(), |e| at + LENGTH.len() + e);
    let length = (value_end - at - LENGTH.len() + "content-length".len()) as u64;
    if !asker.head_only {
        let chunked = ("transfer-encoding".len() + "chunked".len()) as u64;
        let size = logged_size(&resp) - length + chunked;
        return (resp, size);
    }
    let mut head = asker.cut(resp);
    head.drain(at..value_end);
    let size = logged_size(&head);
    (head, size)
}

/// Whether the request carries credentials `stats auth` accepts (any, when it has none).
fn stats_authorized(page: &StatsPage, head: &Head) -> bool {
    page.auth.is_empty() || super::auth::stats_allowed(&page.auth, head)
}

fn http_log(fe: &Frontend, backend: Option<&Backend>, peer: SocketAddr, req: &Req, flags: &str) {
    let Some(facts) = req.log.as_deref().filter(|f| !f.logged) else {
        return;
    };
    let peer = req.effects.client(peer);
    let captured = req.effects.captured_into(facts);
    let facts = captured.as_ref().unwrap_or(facts);
    let severity = match req.effects.log_level.get() {
        Some(LogLevel::Silent) => return,
        Some(LogLevel::Severity(severity)) => Some(severity),
        None => None,
    };
    // The cookie's characters (3rd and 4th) are the persistence's.
    let term = req.persist.term(flags);
    let outcome = log::HttpOutcome {
        client: peer,
        backend,
        server: req.server.name(),
        line: &req.line,
        started: req.started,
        status: req.status,
        bytes_out: req.bytes,
        request_ms: req.request_ms,
        queue_ms: req.queue_ms,
        connect_ms: req.connect_ms,
        response_ms: req.response_ms,
        term: std::str::from_utf8(&term).unwrap_or(flags),
        severity,
    };
    // However it was answered, the response's analysis started (`res` variables, not `req`).
    super::vars::response_starts();
    fe.logger.log_http(fe, facts, &outcome);
}

/// Sends the `103 Early Hints` responses the request's rules made (`early-hint`), one per
/// rule as HAProxy 2.6 sends them, counted in the response's size as interim responses
/// are; false when the client could not take them (the connection ends).
async fn send_early_hints(state: &State, fe: &Frontend, client: &mut Conn, req: &mut Req) -> bool {
    let hints = std::mem::take(&mut *req.effects.early_hints.borrow_mut());
    for (name, value) in hints {
        let hint = Head {
            first: ["HTTP/1.1".into(), "103".into(), "Early Hints".into()],
            headers: vec![(name, value)],
            ..Head::method_only("")
        };
        let mut bytes = Vec::new();
        let to = h1::ToClient {
            close: false,
            request_http11: true,
            httpclose: false,
            until_close: false,
            case: case_map(state, fe.conf.options.h1_case_adjust_bogus_client),
        };
        h1::write_response(&hint, to, &mut bytes);
        if client
            .write_within(&bytes, fe.conf.timeouts.client)
            .await
            .is_err()
        {
            return false;
        }
        req.bytes += hint.logged_size();
        req.interim += hint.logged_size();
    }
    true
}

/// Sets the client socket's IP TOS and mark as the rules asked (`set-tos`, `set-mark`),
/// as HAProxy sets them at once, failures ignored. An HTTP/2 stream's connection is
/// shared with its other streams: left alone.
fn apply_socket_effects(client: &Conn, effects: &rules::Effects) {
    if client.h2.is_some() {
        return;
    }
    if let Some(tos) = effects.tos.get() {
        super::client_socket::set_tos(&client.stream, tos);
    }
    if let Some(mark) = effects.mark.get() {
        super::client_socket::set_mark(&client.stream, mark);
    }
}

/// Ends the client connection of a request the rules left unanswered, for `silent-drop`:
/// without a word to the client ([`super::client_socket::silent_drop`]). Otherwise the
/// caller closes it (`reject`, as `tcp-request content reject`: HAProxy's client sees the
/// same end of stream).
fn end_unanswered(client: &Conn, abort: rules::Abort) {
    if !abort.silent() || client.h2.is_some() {
        return;
    }
    super::client_socket::silent_drop(&client.stream);
}

/// `option forwardfor` as HAProxy applies it when the frontend or the backend sets it: the
/// backend's header name first; none for a client in either side's `except` network; with
/// `if-none` on every side that sets it, none when the request carries that header already.
fn forwardfor(
    head: &mut Head,
    fe: Option<&crate::config::model::Forwardfor>,
    be: Option<&crate::config::model::Forwardfor>,
    client: std::net::IpAddr,
) {
    // Borrowed: the name is copied only into a header that is added.
    let Some(header) = be.or(fe).map(|f| f.header.as_str()) else {
        return;
    };
    let sides = || fe.into_iter().chain(be);
    let always = sides().any(|f| !f.if_none);
    if !always
        && head
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(header))
    {
        return;
    }
    if sides().any(|f| f.except.is_some_and(|net| net.contains(client))) {
        return;
    }
    head.headers.push((header.to_string(), client.to_string()));
}

#[cfg(test)]
mod tests {
    /// The head's end found by an incremental search, whatever the reads' sizes, is the
    /// one a whole search finds: the first "\n\n" or "\n\r\n".
    #[test]
    fn head_end_is_found_across_reads() {
        let cases: [&[u8]; 7] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest",
            b"GET / HTTP/1.1\nHost: a\n\nrest",
            b"GET / HTTP/1.1\r\nHost: a\r\n\nrest",
            b"GET / HTTP/1.1\r\nHost: a\n\r\nrest",
            b"GET / HTTP/1.1\r\nX: \r\r\n\r\n",
            b"\n\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n",
        ];
        for case in cases {
            let whole = windows_search(case);
            assert_eq!(
                find_head_end(case),
                whole,
                "{:?}",
                String::from_utf8_lossy(case)
            );
            for step in 1..=4 {
                let mut searched = 0;
                let mut found = None;
                for len in (step..case.len() + step).step_by(step) {
                    let part = &case[..len.min(case.len())];
                    found = find_head_end_from(part, searched);
                    searched = part.len();
                    if found.is_some() {
                        break;
                    }
                }
                assert_eq!(
                    found,
                    whole,
                    "step {step}: {:?}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    /// The plain definition: the earliest end of "\n\r\n" or "\n\n".
    fn windows_search(buf: &[u8]) -> Option<usize> {
        let crlf = buf.windows(3).position(|w| w == b"\n\r\n").map(|p| p + 3);
        let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
        [crlf, lf].into_iter().flatten().min()
    }

    use super::*;

    /// A soft stop seen while a request sits in the kernel's buffer, before tokio learnt the
    /// socket is readable: the request is served, not reset.
    #[test]
    fn a_request_arriving_at_a_soft_stop_is_read() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let budget = crate::limits::Budget {
                maxconn: 1,
                maxpipes: 0,
                maxsock: 30,
                fd_limit: 30,
            };
            let state = State::new(Default::default(), budget);
            state.stop_softly();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (accepted, _) = listener.accept().await.unwrap();
            // tokio learns the socket is not readable; no await follows the request, so its
            // event stays unharvested, as when a stop wakes the task first.
            let idle = accepted.try_read(&mut [0u8; 1]).unwrap_err();
            assert_eq!(idle.kind(), std::io::ErrorKind::WouldBlock);
            std::io::Write::write_all(&mut client, b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            // Let the bytes reach the accepted socket's buffer (loopback: at once).
            std::thread::sleep(Duration::from_millis(50));
            let mut conn = Conn::new(accepted);
            let stopped = state.soft_stopped();
            tokio::pin!(stopped);
            let head = next_request(
                &state,
                stopped,
                &mut conn,
                &mut Vec::new(),
                HeadWait::same(None),
            )
            .await
            .unwrap();
            assert_eq!(head.first[1], "/late");
        });
    }

    #[test]
    fn heads_are_checked() {
        let ok = parse_head(
            b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(ok.header("host"), Some("a"));
        assert_eq!(ok.framing, Framing::Length(3));
        for bad in [
            &b"GET /x\r\n\r\n"[..],
            b"GET /x HTTP/2\r\n\r\n",
            b"GET /x HTTP/2.0x\r\n\r\n",
            b"GET /x HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /x HTTP/1.1\r\n folded: x\r\nA: b\r\n\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nA\xe9: b\r\n\r\n",
            b"GET /x HTTP/1.1\r\nA: b\rc\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(
                parse_head(bad, true).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Any byte but CR and LF in a value, kept as it came (HAProxy's strings are bytes);
    /// folded lines joined with their CR and LF made spaces; blanks alone trimmed.
    #[test]
    fn values_keep_their_bytes() {
        let head = parse_head(
            b"GET /x HTTP/1.1\r\nA: caf\xe9 \x01\x7f\x00\r\nB: b\r\n\tc\nC: \x0cd\xc2\xa0 \r\n\r\n",
            true,
        )
        .unwrap();
        let bytes = |name| crate::bytestr::to_bytes(head.header(name).unwrap()).into_owned();
        assert_eq!(bytes("a"), b"caf\xe9 \x01\x7f\x00");
        assert_eq!(bytes("b"), b"b  \tc");
        assert_eq!(bytes("c"), b"\x0cd\xc2\xa0");
        let mut out = Vec::new();
        h1::write_request(
            &head,
            h1::ToServer {
                close_mode: false,
                case: None,
            },
            &mut out,
        );
        let sent = b"a: caf\xe9 \x01\x7f\x00\r\nb: b  \tc\r\nc: \x0cd\xc2\xa0\r\n";
        assert!(out.windows(sent.len()).any(|w| w == sent), "{out:?}");
    }

    fn request(raw: &str) -> Result<Head, ReadError> {
        parse_head(raw.as_bytes(), true)
    }

    fn names(head: &Head) -> Vec<String> {
        head.headers
            .iter()
            .map(|(n, v)| format!("{}: {v}", n.to_ascii_lowercase()))
            .collect()
    }

    #[test]
    fn transfer_encoding_wins_over_content_length() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        ] {
            let head = request(raw).unwrap();
            assert_eq!(head.framing, Framing::Chunked);
            assert!(head.dropped_length);
            assert_eq!(names(&head), ["transfer-encoding: chunked"]);
        }
        let plain = request("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(plain.framing, Framing::Chunked);
        assert!(!plain.dropped_length);
        // A response keeps its connection: only the Content-Length goes.
        let resp = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(resp.framing, Framing::Chunked);
        assert_eq!(names(&resp), ["transfer-encoding: chunked"]);
    }

    #[test]
    fn duplicate_lengths_become_one_header() {
        for raw in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nA: b\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nA: b\r\n\r\n",
        ] {
            let head = request(raw).unwrap();
            assert_eq!(head.framing, Framing::Length(3));
            assert_eq!(names(&head), ["content-length: 3", "a: b"]);
        }
        let resp = parse_head(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap();
        assert_eq!(resp.framing, Framing::UntilClose);
        assert_eq!(response_framing(&resp, "HEAD"), Framing::None);
    }

    #[test]
    fn transfer_codings_are_checked_like_haproxy() {
        // HAProxy 2.6: 400 for what cannot be framed, 422 for a coding it does not decode.
        for (te, status) in [
            ("gzip", 400),
            ("chunked, gzip", 400),
            ("chunked, chunked", 400),
            ("chunked\r\nTransfer-Encoding: chunked", 400),
            ("", 400),
            ("identity, chunked", 422),
            ("gzip\r\nTransfer-Encoding: chunked", 422),
        ] {
            let raw = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n");
            let err = request(&raw).unwrap_err();
            assert_eq!(err.status(), status, "{te:?}: {err:?}");
        }
        for cl in [
            "5\r\nContent-Length: 6",
            "+3",
            "3 4",
            "99999999999999999999999",
        ] {
            let raw = format!(
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: {cl}\r\n\r\n"
            );
            assert_eq!(request(&raw).unwrap_err().status(), 400, "{cl:?}");
        }
    }

    #[test]
    fn sizes_are_logged_as_haproxy_logs_them() {
        // `%B` and `%U` of HAProxy for these messages (the connection's tokens, the wire's
        // separators and line ends do not count).
        let sent = rules::message(403).write(false, rules::Asker::default()).0;
        assert_eq!(logged_size(&sent), 192);
        for (raw, size) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
                58,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello",
                54,
            ),
            ("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", 47),
            ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 51),
        ] {
            assert_eq!(logged_size(raw.as_bytes()), size, "{raw:?}");
        }
        let head = request(
            "GET /a HTTP/1.1\r\nHost: t\r\nX-Some:   v  \r\nConnection: keep-alive, close\r\n\r\n",
        );
        assert_eq!(head.map(|h| h.logged_size()), Ok(46));
    }

    #[test]
    fn start_lines_hosts_and_old_bodies_are_read_like_haproxy() {
        let head = request("GET\t/a  HTTP/1.1\r\nHost: x\r\nHOST: X\r\n\r\n").unwrap();
        assert_eq!(head.first, ["GET", "/a", "HTTP/1.1"]);
        assert_eq!(names(&head), ["host: x"]);
        let err = request("GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 400);
        let err = request("GET /a HTTP/1.0\r\nContent-Length: 3\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(request("POST /a HTTP/1.0\r\nContent-Length: 3\r\n\r\n").is_ok());
        let resp = parse_head(b"HTTP/1.1  200 \t Fine  ok\r\n\r\n", false).unwrap();
        assert_eq!(resp.first, ["HTTP/1.1", "200", "Fine  ok"]);
        let page = h1_error(400);
        assert!(page.starts_with(b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html>"));
    }

    /// As HAProxy's `http_find_header` yields a header's values: split on commas outside
    /// quoted strings, leading blanks dropped.
    #[test]
    fn connection_authentication_is_found_in_any_value() {
        let auth = |status: u16, name: &str, value: &str| {
            let raw = format!("HTTP/1.1 {status} X\r\n{name}: {value}\r\n\r\n");
            let resp = parse_head(raw.as_bytes(), false).unwrap();
            authenticates_connection(&resp, status)
        };
        assert!(auth(401, "WWW-Authenticate", "NTLM"));
        assert!(auth(401, "www-authenticate", r#"Basic realm="x", NTLM"#));
        assert!(auth(
            401,
            "www-authenticate",
            "Basic realm=x,Negotiate abc=="
        ));
        assert!(auth(407, "proxy-authenticate", "Basic, ntlm"));
        assert!(!auth(401, "www-authenticate", r#"Basic realm="a, NTLM""#));
        assert!(!auth(401, "www-authenticate", r#"Basic realm="a\", NTLM""#));
        assert!(!auth(401, "proxy-authenticate", "NTLM"));
        assert!(!auth(200, "www-authenticate", "NTLM"));
        let values: Vec<&str> = h1::list_elements(r#"a, "b,c" ,	d"#).collect();
        assert_eq!(values, ["a", r#""b,c" "#, "d"]);
    }

    /// HAProxy's h1 parser refuses a WebSocket handshake (`Connection: upgrade`, a last
    /// `Upgrade` naming `websocket`) without a `Sec-WebSocket-Key` of 24 characters.
    #[test]
    fn websocket_handshakes_need_a_key() {
        let handshake = |headers: &str| request(&format!("GET / HTTP/1.1\r\n{headers}\r\n"));
        let key = "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let refused = Err(ReadError::Malformed(
            "websocket upgrade without a valid key",
        ));
        for headers in [
            "connection: upgrade\r\nupgrade: websocket\r\n",
            "connection: keep-alive, Upgrade\r\nupgrade: h2c, WebSocket\r\nsec-websocket-key: x\r\n",
        ] {
            assert_eq!(handshake(headers).map(|_| ()), refused, "{headers}");
        }
        for headers in [
            format!("connection: upgrade\r\nupgrade: websocket\r\n{key}"),
            "upgrade: websocket\r\n".into(),
            "connection: upgrade\r\nupgrade: websocket\r\nupgrade: h2c\r\n".into(),
            "connection: upgrade\r\nupgrade: websocket/13\r\n".into(),
        ] {
            assert!(handshake(&headers).is_ok(), "{headers}");
        }
    }
}
