//! TLS connections to servers (`server ... ssl`, `check-ssl`, `connect ssl`): the handshake
//! over an established TCP connection, and TCP-mode traffic through it.
//!
//! The server socket stays owned by the session (which may reset it when the client failed),
//! so TLS runs over a [`Borrowed`] view of it. Traffic through TLS is copied in user space
//! ([`forward::forward_tls`]): the bytes have to be encrypted, splice(2) cannot apply.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::forward::{self, End, IdleTimeouts, Moved};
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
    match tokio::time::timeout(timeout, tls.connect(connector.server_name(ip), stream)).await {
        Ok(Ok(s)) => Ok(s),
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
    // Counted by the caller, as on plaintext connections.
    if let Err(e) = server.write_all(early).await {
        return End::Error(e);
    }
    forward::forward_tls(client, server, idle, moved).await
}
