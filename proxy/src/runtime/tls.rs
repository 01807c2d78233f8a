//! TLS on both sides of a session: connections to servers (`server ... ssl`, `check-ssl`,
//! `connect ssl`) and from clients (`bind ... ssl crt`): handshakes over established TCP
//! connections, and traffic through them.
//!
//! Sockets stay owned by their session (which may reset them when the other side failed),
//! so TLS runs over a [`Borrowed`] view of one. A client's handshake ([`accept`]) leaves a
//! `rustls::Connection` the session keeps (boxed: plaintext sessions do not grow), used
//! through [`Over`], async I/O over the session's socket and that state. Traffic through TLS
//! is copied in user space ([`forward::forward_streams`]): the bytes have to be encrypted,
//! splice(2) cannot apply.
//!
//! Also the runtime API's `show ssl crt-list [-n] [FILE]` answer ([`show_crt_list`]), for the
//! lists `runtime::ssl_cert` keeps.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use std::io::{Read, Write};

use rustls::Connection;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor, TlsConnector};

use super::forward::{self, End, IdleTimeouts, Moved};
use super::log::EarlyFailure;
use super::meter::Rate;
use crate::config::bind_tls::TlsServer;
use crate::config::tls::{Connector, TlsClient};

/// A TCP stream used through a shared reference: tokio's readiness for reads and writes is
/// kept apart, so one task may read while another writes.
#[derive(Debug, Clone, Copy)]
pub struct Borrowed<'a>(pub &'a TcpStream);

impl AsyncRead for Borrowed<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match self.0.try_read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Borrowed<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = socket2::SockRef::from(self.0).shutdown(std::net::Shutdown::Write);
        Poll::Ready(match done {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

/// Why a TLS handshake did not complete.
#[derive(Debug)]
pub enum HandshakeError {
    Timeout,
    /// The peer refused, sent something that is not TLS, or its certificate was refused.
    Failed(io::Error),
}

/// Whether a handshake failed because the certificate is not for the name checked (HAProxy
/// tells it apart from other failures).
pub fn wrong_name(e: &io::Error) -> bool {
    use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(
            NotValidForName | NotValidForNameContext { .. }
        ))
    )
}

/// HAProxy's process-wide TLS counts (`show info`'s `Ssl*`): connections with TLS (both
/// sides, from the start of their handshake, as HAProxy counts them from `ssl_sock_init`),
/// frontends' TLS sessions per second, and full handshakes (keys computed, not resumed) per
/// second on each side.
#[derive(Debug, Default)]
pub struct TlsCounts {
    /// `CurrSslConns`.
    pub current: AtomicUsize,
    /// `CumSslConns`.
    pub total: AtomicU64,
    /// `SslRate`: connections accepted on `bind ... ssl` listeners.
    pub frontend_sessions: Rate,
    /// `SslFrontendKeyRate`.
    pub frontend_keys: Rate,
    /// `SslBackendKeyRate`.
    pub backend_keys: Rate,
}

static COUNTS: LazyLock<TlsCounts> = LazyLock::new(TlsCounts::default);

/// The process's TLS counts.
pub fn counts() -> &'static TlsCounts {
    &COUNTS
}

/// One TLS connection in `CurrSslConns` while it lives.
#[derive(Debug)]
struct Counted(());

impl Counted {
    /// A new connection, counted in `CumSslConns` too.
    fn begin() -> Counted {
        COUNTS.total.fetch_add(1, Relaxed);
        Counted::carried()
    }

    /// A connection counted already (in [`handshake`]), held on by its new owner.
    fn carried() -> Counted {
        COUNTS.current.fetch_add(1, Relaxed);
        Counted(())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        COUNTS.current.fetch_sub(1, Relaxed);
    }
}

/// Counts a successful handshake's keys when it was a full one (not a resumed session).
fn count_keys(kind: Option<rustls::HandshakeKind>, keys: &Rate) {
    if kind != Some(rustls::HandshakeKind::Resumed) {
        keys.tick();
    }
}

/// Runs the TLS handshake over `stream` within `timeout`.
pub async fn handshake<S>(
    connector: &Connector,
    ip: IpAddr,
    stream: S,
    timeout: Duration,
) -> Result<TlsStream<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = TlsConnector::from(connector.config.clone());
    // The connection's owner counts it on from here ([`Session::client`], [`forward`]).
    let _counted = Counted::begin();
    match tokio::time::timeout(timeout, tls.connect(connector.server_name(ip), stream)).await {
        Ok(Ok(s)) => {
            count_keys(s.get_ref().1.handshake_kind(), &COUNTS.backend_keys);
            Ok(s)
        }
        Ok(Err(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

/// The TLS handshake of a `server ... ssl` connection (within `timeout`), over the session's
/// socket.
pub async fn handshake_server<'a>(
    server: &'a TcpStream,
    tls: &TlsClient,
    timeout: Duration,
) -> Result<TlsStream<Borrowed<'a>>, HandshakeError> {
    let ip = server.peer_addr().map_err(HandshakeError::Failed)?.ip();
    handshake(tls.traffic(), ip, Borrowed(server), timeout).await
}

/// TCP-mode traffic through a `server ... ssl` connection: what the client sent already,
/// then both ways until both sides are done.
pub async fn forward(
    client: &TcpStream,
    mut server: TlsStream<Borrowed<'_>>,
    early: &[u8],
    idle: IdleTimeouts,
    moved: &Moved,
) -> End {
    let _counted = Counted::carried();
    // Counted by the caller, as on plaintext connections.
    if server.write_all(early).await.is_err() {
        return End::Error(forward::Side::Server);
    }
    forward::forward_tls(client, server, idle, moved).await
}

/// A TLS connection's state once its handshake is done, and what it negotiated.
#[derive(Debug)]
pub struct Session {
    pub conn: Connection,
    /// Encrypted bytes read from the socket and not yet taken by rustls (see [`Staged`]).
    staged: Staged,
    /// Shared with each request's log facts (no copy per request).
    pub facts: Arc<ClientTls>,
    /// How long the handshake took (`%Th`).
    pub handshake: Duration,
    /// In `CurrSslConns` while it lives.
    _counted: Counted,
}

impl Session {
    /// A server connection's TLS state after its handshake (`server ... ssl`).
    pub fn client(conn: rustls::ClientConnection) -> Session {
        let conn = Connection::Client(conn);
        let facts = Arc::new(ClientTls::of(&conn));
        Session {
            conn,
            staged: Staged::default(),
            facts,
            handshake: Duration::ZERO,
            _counted: Counted::carried(),
        }
    }

    /// Whether bytes came after what was read: encrypted ones staged, decrypted ones waiting
    /// in rustls, or the peer's close_notify. A kept server connection must hold none (the
    /// next request would take them for its response); what is still in the socket is the
    /// caller's to look at.
    pub fn holds_data(&mut self) -> bool {
        if !self.staged.is_empty() {
            return true;
        }
        match self.conn.process_new_packets() {
            Ok(io) => io.plaintext_bytes_to_read() > 0 || io.peer_has_closed(),
            Err(_) => true,
        }
    }

    /// Async I/O through this session over its socket.
    pub fn over<'a>(&'a mut self, sock: &'a TcpStream) -> Over<'a> {
        Over {
            sock,
            tls: &mut self.conn,
            staged: &mut self.staged,
        }
    }
}

/// A TLS record holding a fatal `unrecognized_name` alert.
const UNRECOGNIZED_NAME: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112];

/// A fatal `protocol_version` alert (70) in a record of the client's version, when the
/// ClientHello already received asks for a TLS version older than TLSv1.2 (a client that
/// speaks TLSv1.3 says TLSv1.2 there). OpenSSL (HAProxy) answers such a client so;
/// rustls would first miss the `signature_algorithms` extension older clients do not send,
/// and answer `handshake_failure`. None when the first bytes are not a whole record header
/// and ClientHello version yet: rustls judges them. The socket's error (a reset) is the
/// handshake's: once read here, the next read would only see an end.
async fn older_than_tls12(client: &TcpStream) -> io::Result<Option<[u8; 7]>> {
    const HANDSHAKE: u8 = 0x16;
    const CLIENT_HELLO: u8 = 1;
    let mut head = [0u8; 11];
    // One look, without waiting for more: a ClientHello comes in one segment.
    let seen = client.peek(&mut head).await?;
    let client_version = u16::from_be_bytes([head[9], head[10]]);
    let old = seen == head.len()
        && head[0] == HANDSHAKE
        && head[5] == CLIENT_HELLO
        && (0x0300..0x0303).contains(&client_version);
    Ok(old.then_some([0x15, head[1], head[2], 0x00, 0x02, 0x02, 70]))
}

/// The TLS handshake of a client on a `bind ... ssl` listener, within `timeout` (the
/// frontend's `timeout client`; none: no limit). The connection's TLS state, boxed.
pub async fn accept(
    server: &TlsServer,
    client: &TcpStream,
    timeout: Option<Duration>,
) -> Result<Box<Session>, HandshakeError> {
    let started = std::time::Instant::now();
    COUNTS.frontend_sessions.tick();
    let counted = Counted::begin();
    let accepting = async {
        if let Some(alert) = older_than_tls12(client).await? {
            let _ = Borrowed(client).write_all(&alert).await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client speaks no TLS version from TLSv1.2",
            ));
        }
        if !server.reads_hello_first() {
            return TlsAcceptor::from(server.config().clone())
                .accept(Borrowed(client))
                .await;
        }
        // The ClientHello first, to choose the configuration by the name it asks for (a
        // crt-list line's options) and the ALPN it offers.
        let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), Borrowed(client));
        let start = hello.await?;
        let hello = start.client_hello();
        let Some(config) = server.config_for(hello.server_name(), hello.alpn()) else {
            // HAProxy's fatal `unrecognized_name` (112) alert, in clear: no keys yet.
            let _ = Borrowed(client).write_all(&UNRECOGNIZED_NAME).await;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no certificate for the name the client asked for (strict-sni)",
            ));
        };
        start.into_stream(config).await
    };
    let done = match timeout {
        Some(t) => tokio::time::timeout(t, accepting)
            .await
            .map_err(|_| HandshakeError::Timeout)?,
        None => accepting.await,
    };
    // What came after the handshake (a pipelined request) stays in rustls's buffers.
    let conn = Connection::Server(done.map_err(HandshakeError::Failed)?.into_inner().1);
    count_keys(conn.handshake_kind(), &COUNTS.frontend_keys);
    let facts = Arc::new(ClientTls::of(&conn));
    Ok(Box::new(Session {
        conn,
        staged: Staged::default(),
        facts,
        handshake: started.elapsed(),
        _counted: counted,
    }))
}

/// What the fetches and the log tell of a client's TLS connection (`ssl_fc_*`, `%sslv`,
/// `%sslc`), taken once after its handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The server name the client asked for.
    pub sni: Option<String>,
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: &'static str,
    /// The cipher suite under its OpenSSL name, as HAProxy shows it.
    pub cipher: &'static str,
    pub alpn: Option<String>,
    /// The client presented a certificate (it was verified, else no handshake).
    pub client_cert: bool,
    /// The certificates the client presented, its own first (DER), for the `ssl_c_*`
    /// fetches; shared, as the facts are cloned per request.
    pub client_chain: Arc<[rustls::pki_types::CertificateDer<'static>]>,
    /// The handshake resumed a session (`ssl_fc_is_resumed`).
    pub resumed: bool,
}

impl ClientTls {
    pub fn of(conn: &Connection) -> ClientTls {
        let sni = match conn {
            Connection::Server(s) => s.server_name().map(str::to_string),
            Connection::Client(_) => None,
        };
        ClientTls {
            sni,
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "",
            },
            cipher: conn
                .negotiated_cipher_suite()
                .map_or("", |s| openssl_name(s.suite())),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
            client_chain: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        }
    }
}

/// OpenSSL's name of a cipher suite rustls negotiates (HAProxy's `%sslc`, `ssl_fc_cipher`).
fn openssl_name(suite: rustls::CipherSuite) -> &'static str {
    use rustls::CipherSuite as C;
    match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "",
    }
}

/// Async I/O through a TLS connection's state over the session's socket: reads decrypt
/// what the socket has, writes encrypt and send what the socket takes (the rest waits in
/// rustls, sent on the next write or flush).
#[derive(Debug)]
pub struct Over<'a> {
    pub sock: &'a TcpStream,
    pub tls: &'a mut Connection,
    staged: &'a mut Staged,
}

/// How much is read from the socket at once: a whole TLS record (16 kB of data and its
/// header and tag). rustls reads 4 kB at a time: straight from the socket, that is four
/// system calls per record (measured: a third less throughput than HAProxy's).
const STAGE: usize = 16 * 1024 + 512;

/// Encrypted bytes read from the socket ahead of rustls: `buf[pos..]` is still to give it.
/// The buffer is taken by a read and given back when the socket has nothing more.
#[derive(Debug, Default)]
struct Staged {
    buf: Vec<u8>,
    pos: usize,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Gives the (empty) buffer back: taken again by the next read.
    fn release(&mut self) {
        if self.buf.capacity() > 0 {
            *self = Staged::default();
        }
    }

    /// Reads what the socket has (one system call); Ok(0) at its end.
    fn fill(&mut self, sock: &TcpStream) -> io::Result<usize> {
        self.buf.clear();
        self.buf.reserve_exact(STAGE);
        self.pos = 0;
        // Into the spare capacity: nothing to clear first.
        sock.try_read_buf(&mut self.buf)
    }

    /// Gives rustls what it takes of the staged bytes (it refuses more once it holds a whole
    /// record, until that is processed); how many it took.
    fn feed(&mut self, tls: &mut Connection) -> usize {
        let before = self.pos;
        while !self.is_empty() {
            let mut rest = &self.buf[self.pos..];
            match tls.read_tls(&mut rest) {
                Ok(n) if n > 0 => self.pos += n,
                _ => break,
            }
        }
        self.pos - before
    }
}

/// Lets rustls give back the record buffer it grew to a whole record's size (16 kB) while
/// reading: it shrinks it to its 4 kB minimum when it is asked to read while it holds no
/// partial record, and this read finds nothing. A reading connection keeps its buffer: rustls
/// shrinks only once the socket has run dry (measured: 16 kB less RSS per idle TLS client,
/// the difference with HAProxy's).
fn shrink_record_buffer(tls: &mut Connection) {
    struct Nothing;
    impl Read for Nothing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }
    // Err(WouldBlock) is the expected answer; any other refusal leaves the buffer as it was.
    let _ = tls.read_tls(&mut Nothing);
}

/// The socket as `std::io` for rustls: reads and writes that never wait (tokio's readiness
/// is cleared when one would block).
struct Sync<'a>(&'a TcpStream);

impl Read for Sync<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Sync<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.try_write(data)
    }
    /// rustls hands its records over together: one system call for all of them.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Over<'_> {
    /// Sends what rustls has to send; `WouldBlock` once the socket takes no more.
    fn send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut Sync(self.sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.sock.poll_write_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Plaintext already decrypted, without waiting: `None` when more has to come.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut *self).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(Some(rb.filled().len())),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(None),
        }
    }
}

impl AsyncRead for Over<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // rustls took nothing of the staged bytes last turn and gave no plaintext.
        let mut stuck = false;
        loop {
            match this.tls.reader().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the end of its data all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(e)),
            }
            // What rustls has to say meanwhile (tickets, alerts) goes when the socket takes
            // it; a full socket does not hold the read up.
            if let Poll::Ready(Err(e)) = this.send_pending(cx) {
                return Poll::Ready(Err(e));
            }
            if this.staged.is_empty() {
                let Poll::Ready(ready) = this.sock.poll_read_ready(cx) else {
                    // Waiting for the peer: an idle connection holds no staging buffer,
                    // and rustls no more than its smallest record buffer.
                    this.staged.release();
                    shrink_record_buffer(this.tls);
                    return Poll::Pending;
                };
                ready?;
                match this.staged.fill(this.sock) {
                    // The end of the stream: rustls's reader tells how it ended, next turn.
                    Ok(0) => {
                        this.tls.read_tls(&mut io::empty())?;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let took = this.staged.feed(this.tls);
            if took == 0 && std::mem::replace(&mut stuck, true) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS data rustls does not take",
                )));
            }
            if took > 0 {
                stuck = false;
            }
            if let Err(e) = this.tls.process_new_packets() {
                // The alert rustls prepared, if the socket takes it.
                let _ = this.tls.write_tls(&mut Sync(this.sock));
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
    }
}

impl AsyncWrite for Over<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            // rustls takes plaintext up to its buffer limit, then it must be sent first.
            let n = this.tls.writer().write(data)?;
            if n > 0 || data.is_empty() {
                // Sent as far as the socket takes it now; the rest on the next write/flush.
                return match this.send_pending(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Ok(n)),
                };
            }
            ready!(this.send_pending(cx))?;
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.send_pending(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What is left, a close_notify (rustls sends one only), then the FIN.
        ready!(self.send_pending(cx))?;
        self.tls.send_close_notify();
        ready!(self.send_pending(cx))?;
        Pin::new(&mut Borrowed(self.sock)).poll_shutdown(cx)
    }
}

/// HAProxy's words for a client's failed handshake in its connection error line.
pub fn handshake_failure(e: &HandshakeError) -> EarlyFailure {
    match e {
        HandshakeError::Timeout => EarlyFailure::null("Timeout during SSL handshake"),
        HandshakeError::Failed(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            EarlyFailure::null("Connection closed during SSL handshake")
        }
        HandshakeError::Failed(e) if client_certificate_refused(e) => {
            EarlyFailure::sent("SSL client certificate not trusted")
        }
        HandshakeError::Failed(_) => EarlyFailure::sent("SSL handshake failure"),
    }
}

/// Whether the client's certificate failed verification (the only certificate a
/// listener's handshake checks). HAProxy's `SSL client CA chain cannot be verified` (an
/// error deeper in the chain) is not told apart: rustls's error does not say where.
fn client_certificate_refused(e: &io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_))
    )
}

/// TCP-mode traffic from a TLS client (`bind ... ssl`) to its server, in clear or through
/// TLS again (`server ... ssl`): what the client sent with its handshake is in its TLS
/// state already, and goes first like the rest.
pub async fn forward_from_client(
    client: Over<'_>,
    server: &TcpStream,
    server_tls: Option<TlsStream<Borrowed<'_>>>,
    idle: IdleTimeouts,
    moved: &Moved,
) -> End {
    match server_tls {
        Some(secured) => forward::forward_streams(client, secured, idle, moved).await,
        None => forward::forward_streams(client, Borrowed(server), idle, moved).await,
    }
}

/// A TCP session whose backend has `tcp-response content` rules, with TLS on either side
/// (`client_tls`: its `bind ... ssl` session; `server_tls`: its `server ... ssl` stream):
/// the rules judge the server's plaintext as on plain sockets
/// ([`super::rules::forward_response_inspected_streams`]). `early`: what the client sent
/// before the server connection, still to send through a TLS server stream (a plain one
/// had it with the connection).
#[allow(clippy::too_many_arguments)]
pub async fn inspect_then_forward(
    ctx: super::sample::Context<'_>,
    server: &super::state::Server,
    client: &TcpStream,
    client_tls: Option<&mut Session>,
    server_sock: &TcpStream,
    server_tls: Option<TlsStream<Borrowed<'_>>>,
    early: &[u8],
    moved: &Moved,
    sticking: Option<&super::stick::Sticking>,
) -> End {
    use super::rules::forward_response_inspected_streams as inspected;
    // As [`forward`] and [`forward_from_client`] count the server's stream.
    let _counted = (server_tls.is_some() && client_tls.is_none()).then(Counted::carried);
    let from = Side::of(client, client_tls);
    match server_tls {
        Some(mut secured) => {
            // Counted by the caller, as on plaintext connections.
            if secured.write_all(early).await.is_err() {
                return End::Error(forward::Side::Server);
            }
            inspected(ctx, server, from, secured, moved, sticking).await
        }
        None => inspected(ctx, server, from, Borrowed(server_sock), moved, sticking).await,
    }
}

/// One side of a forwarding: a socket in clear, or a TLS session over it.
#[derive(Debug)]
pub enum Side<'a> {
    Plain(Borrowed<'a>),
    Tls(Over<'a>),
}

impl<'a> Side<'a> {
    pub fn of(sock: &'a TcpStream, tls: Option<&'a mut Session>) -> Side<'a> {
        match tls {
            None => Side::Plain(Borrowed(sock)),
            Some(tls) => Side::Tls(tls.over(sock)),
        }
    }
}

impl AsyncRead for Side<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Side::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Side<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_write(cx, data),
            Side::Tls(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_flush(cx),
            Side::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Side::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Side::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// `show ssl crt-list [-n] [FILE]` (level admin), as HAProxy 2.6 answers it: the crt-list
/// files the listeners loaded (in name order), or one file's certificates with their options
/// and filters (`-n`: and their line numbers).
pub fn show_crt_list<'a>(
    lists: impl Iterator<Item = &'a crate::config::crt_list::CrtList>,
    args: &[&str],
) -> String {
    let (numbered, name) = match args {
        ["-n", rest @ ..] => (true, rest.first().copied()),
        _ => (false, args.first().copied()),
    };
    if numbered && name.is_none() {
        return "'show ssl crt-list -n' expects a filename or a directory\n".into();
    }
    let mut lists: Vec<_> = lists.collect();
    lists.sort_by(|a, b| a.path.cmp(&b.path));
    lists.dedup_by(|a, b| a.path == b.path);
    let Some(name) = name else {
        return lists.iter().map(|l| format!("{}\n", l.path)).collect();
    };
    // HAProxy strips the trailing slashes of the name.
    let name = name.trim_end_matches('/');
    let Some(list) = lists.iter().find(|l| l.path == name) else {
        return "didn't find the specified filename\n".into();
    };
    let mut out = format!("# {}\n", list.path);
    for entry in &list.entries {
        out.push_str(&crate::config::crt_list::show_entry(entry, numbered));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(e: rustls::Error) -> &'static str {
        let e = HandshakeError::Failed(io::Error::new(io::ErrorKind::InvalidData, e));
        handshake_failure(&e).message
    }

    #[test]
    fn a_refused_client_certificate_has_haproxys_reason() {
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(failure(untrusted), "SSL client certificate not trusted");
        let none = rustls::Error::NoCertificatesPresented;
        assert_eq!(failure(none), "SSL handshake failure");
    }
}
