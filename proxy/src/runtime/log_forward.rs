//! `log-forward` sections: syslog received over UDP (`dgram-bind`, a message per datagram)
//! and TCP (`bind`, RFC 6587's octet counting or a line feed after each message) is read as
//! HAProxy reads it and re-emitted to the section's `log` targets with their formats
//! ([`super::log::Relay`]).
//!
//! A TCP connection ends at the first message framed neither way, at the client's close,
//! or once idle for `timeout client`; at most `maxconn` are served at once, the others
//! waiting in the listener's queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use super::log::Relay;
use crate::config::logging::LogForward;

/// HAProxy's receive buffer (`tune.bufsize`): a longer datagram is cut, a longer framed
/// message ends its connection.
const BUFSIZE: usize = 16384;

/// Binds every section's listeners and serves them until the process exits.
pub fn start(sections: &[LogForward]) -> anyhow::Result<()> {
    for section in sections {
        let relay = Arc::new(Relay::new(&section.logs, &section.rings));
        for (addr, place) in &section.dgram_binds {
            let socket =
                bind_datagrams(*addr).with_context(|| bind_error(&section.name, place, *addr))?;
            tokio::spawn(serve_datagrams(socket, relay.clone()));
        }
        let slots = Arc::new(Semaphore::new(section.maxconn));
        for (addr, place) in &section.binds {
            let listener = listen(*addr, section.backlog)
                .with_context(|| bind_error(&section.name, place, *addr))?;
            let timeout = section.timeout_client;
            tokio::spawn(serve_streams(
                listener,
                relay.clone(),
                slots.clone(),
                timeout,
            ));
        }
    }
    Ok(())
}

fn bind_error(name: &str, place: &crate::config::model::Place, addr: SocketAddr) -> String {
    format!("Binding [{place}] for log-forward {name}: cannot bind socket for [{addr}]")
}

/// A UDP socket at `addr`, shared with the process a reload replaces (SO_REUSEPORT, as
/// HAProxy binds its listeners) until it leaves.
fn bind_datagrams(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// A TCP listener at `addr`, shared as [`bind_datagrams`]'s socket is.
fn listen(addr: SocketAddr, backlog: Option<u32>) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.unwrap_or(1024))
}

async fn serve_datagrams(socket: tokio::net::UdpSocket, relay: Arc<Relay>) {
    let mut buf = vec![0; BUFSIZE];
    loop {
        if let Ok(n) = socket.recv(&mut buf).await {
            relay.send(&buf[..n]);
        }
    }
}

async fn serve_streams(
    listener: tokio::net::TcpListener,
    relay: Arc<Relay>,
    slots: Arc<Semaphore>,
    timeout: Option<Duration>,
) {
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            serve_stream(stream, &relay, timeout).await;
            drop(slot);
        });
    }
}

/// Reads framed messages until the client closes, idles too long or frames one badly.
async fn serve_stream(mut stream: tokio::net::TcpStream, relay: &Relay, timeout: Option<Duration>) {
    let mut buf = Vec::with_capacity(BUFSIZE);
    loop {
        loop {
            match next_frame(&buf) {
                Frame::Message { start, end, next } => {
                    relay.send(&buf[start..end]);
                    buf.drain(..next);
                }
                Frame::Incomplete => break,
                Frame::Invalid => return,
            }
        }
        if buf.len() >= BUFSIZE {
            return;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk);
        let n = match timeout {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(r) => r,
                Err(_) => return,
            },
            None => read.await,
        };
        match n {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The first message of a TCP stream's bytes.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// The message is `buf[start..end]`, the next frame starts at `next`.
    Message {
        start: usize,
        end: usize,
        next: usize,
    },
    Incomplete,
    Invalid,
}

/// A message framed as RFC 6587 allows: `<...` up to a line feed (a carriage return
/// before it dropped), or a length from 1 to the buffer's size, a space and that many
/// bytes.
fn next_frame(buf: &[u8]) -> Frame {
    match buf.first() {
        None => Frame::Incomplete,
        Some(b'<') => match buf.iter().position(|&c| c == b'\n') {
            Some(lf) => Frame::Message {
                start: 0,
                end: if buf[lf - 1] == b'\r' { lf - 1 } else { lf },
                next: lf + 1,
            },
            None if buf.len() >= BUFSIZE => Frame::Invalid,
            None => Frame::Incomplete,
        },
        Some(b'1'..=b'9') => {
            let Some(space) = buf.iter().position(|&c| c == b' ') else {
                return if buf.iter().all(u8::is_ascii_digit) && buf.len() < BUFSIZE {
                    Frame::Incomplete
                } else {
                    Frame::Invalid
                };
            };
            let Some(len) = std::str::from_utf8(&buf[..space])
                .ok()
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|&l| l <= BUFSIZE)
            else {
                return Frame::Invalid;
            };
            let start = space + 1;
            if buf.len() < start + len {
                return Frame::Incomplete;
            }
            Frame::Message {
                start,
                end: start + len,
                next: start + len,
            }
        }
        Some(_) => Frame::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_by_line_feeds_or_lengths() {
        let line = |start, end, next| Frame::Message { start, end, next };
        assert_eq!(next_frame(b"<1>a\nb"), line(0, 4, 5));
        assert_eq!(next_frame(b"<1>a\r\nb"), line(0, 4, 6));
        assert_eq!(next_frame(b"<1>a"), Frame::Incomplete);
        assert_eq!(next_frame(b"4 <1>ab"), line(2, 6, 6));
        assert_eq!(next_frame(b"40 <1>"), Frame::Incomplete);
        assert_eq!(next_frame(b"12"), Frame::Incomplete);
        assert_eq!(next_frame(b"x"), Frame::Invalid);
        assert_eq!(next_frame(b"0 a"), Frame::Invalid);
    }
}
