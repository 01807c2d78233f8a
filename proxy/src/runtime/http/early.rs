//! A request body relayed to its server while the server may answer before it is whole.
//!
//! HAProxy 2.6 forwards a server's response as soon as it comes, also while the request's
//! body is still on its way (a server refusing a large or slow upload at once with 413 or
//! 401), and goes on relaying that body to the server after the response; the request is
//! logged once both ended. Measured against HAProxy 2.6.12:
//! - the response reaches the client at once, whether the body is waiting for the client or
//!   blocked on a server that stopped reading;
//! - the rest of the body still goes to the server; when it went whole the exchange ends as
//!   any other (`----`, the client connection kept as the response says);
//! - a server that takes no more of it for `timeout server` ends it `sD--`, one whose
//!   connection fails (closed after its answer) `SD--`, a client closing `CD--`;
//! - a client that stops sending is not timed out while the server's connection stays
//!   open; once the server closed it, `timeout client` (from the client's last bytes) ends
//!   it `cD--`, at once if it passed already.
//!
//! [`BodyRelay`] keeps where the body stands, so that its relay stops where the server
//! answered and goes on after the response.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{Conn, Framing, Stop, chunked};

/// How far a request body went to its server.
#[derive(Debug)]
pub(super) struct BodyRelay {
    framing: Framing,
    /// Body bytes taken from the client's buffer so far (not counting a chunked body).
    taken: u64,
    decoder: chunked::Decoder,
    /// Bytes at the start of the client's buffer that are checked body, not written yet
    /// (the rest of a write the server's answer interrupted).
    ready: usize,
    /// The body's end was seen (in `ready`, or written).
    seen_end: bool,
    /// The body's size so far as the logs count it (see [`super::relay_body`]).
    pub(super) moved: u64,
}

/// Where a relay stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relayed {
    /// The body went whole.
    Whole,
    /// The server sent something (in its buffer) before the body went whole.
    Answered,
}

/// What the server side of a relay looks out for while the body goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Watch {
    /// Before any response: the server's first bytes stop the relay ([`Relayed::Answered`]);
    /// the client's reads are bounded by `read` (HAProxy's `timeout server` for the whole
    /// exchange). A server that closed without sending anything is not watched further:
    /// the writes find out.
    Answer { read: Option<Duration> },
    /// After the response: the client's reads are not bounded until the server's
    /// connection ended, then by `client` from the client's last bytes.
    End { client: Option<Duration> },
}

/// What a wait for the client saw first.
enum Woke {
    Client(std::io::Result<usize>),
    Server,
}

/// What the server's socket had when it was found readable.
enum Heard {
    /// Bytes (in its buffer).
    Data,
    /// Its end (or an error): nothing more will come.
    End,
    /// Nothing for the application (a TLS record, a spurious wake).
    Nothing,
}

fn answering(watch: Watch) -> bool {
    matches!(watch, Watch::Answer { .. })
}

/// Reads what the server's socket has now.
fn hear(server: &mut Conn) -> Heard {
    match server.try_fill() {
        Ok(Some(0)) | Err(_) => Heard::End,
        Ok(Some(_)) => Heard::Data,
        Ok(None) => Heard::Nothing,
    }
}

impl BodyRelay {
    pub(super) fn new(framing: Framing) -> BodyRelay {
        BodyRelay {
            framing,
            taken: 0,
            decoder: chunked::Decoder::default(),
            ready: 0,
            seen_end: framing == Framing::None,
            moved: 0,
        }
    }

    /// Relays the body from `client` to `server` until its end, or (`Watch::Answer`) until
    /// the server sends something; writes are bounded by `write` (`timeout server`).
    pub(super) async fn run(
        &mut self,
        client: &mut Conn,
        server: &mut Conn,
        write: Option<Duration>,
        watch: Watch,
    ) -> Result<Relayed, Stop> {
        // Whether the server's socket is still watched: before its answer, until it closed
        // without one; after it, until its connection ended.
        let mut watching = true;
        let mut last_read = Instant::now();
        loop {
            if self.ready == 0 {
                if self.seen_end {
                    return Ok(Relayed::Whole);
                }
                self.check(client)?;
            }
            if self.ready > 0 {
                let data = &client.buf.bytes()[..self.ready];
                let wrote = write_watching(server, data, write, watch, &mut watching).await;
                let n = match wrote {
                    Ok(n) => n,
                    // A server that answered and closed: its answer first, as HAProxy
                    // reads it before it finds the write failed (the rest fails again).
                    Err(_) if answering(watch) && matches!(hear(server), Heard::Data) => {
                        return Ok(Relayed::Answered);
                    }
                    Err(e) => return Err(Stop::writing(&e)),
                };
                client.buf.consume(n);
                self.ready -= n;
                if self.ready > 0 {
                    return Ok(Relayed::Answered);
                }
                continue;
            }
            let deadline = match watch {
                Watch::Answer { read } => read.and_then(|t| Instant::now().checked_add(t)),
                Watch::End { client } if !watching => client.and_then(|t| last_read.checked_add(t)),
                Watch::End { .. } => None,
            };
            let woke = match client.try_fill() {
                Ok(Some(n)) => Woke::Client(Ok(n)),
                Ok(None) if watching => read_or_server(client, server, deadline).await,
                Ok(None) => Woke::Client(client.fill_until(deadline).await),
                Err(e) => Woke::Client(Err(e)),
            };
            match woke {
                Woke::Server => match (hear(server), watch) {
                    (Heard::Data, Watch::Answer { .. }) => return Ok(Relayed::Answered),
                    (Heard::Nothing, _) => {}
                    // Its end, or bytes after its response: it is done with this exchange.
                    _ => watching = false,
                },
                Woke::Client(Ok(0)) if self.framing == Framing::UntilClose => {
                    self.seen_end = true;
                }
                Woke::Client(Ok(0)) => return Err(Stop::SrcClosed),
                Woke::Client(Ok(_)) => {
                    if matches!(watch, Watch::End { .. }) {
                        last_read = Instant::now();
                    }
                }
                Woke::Client(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(Stop::SrcTimeout);
                }
                Woke::Client(Err(_)) => return Err(Stop::SrcClosed),
            }
        }
    }

    /// Checks what of the client's buffer is body, making it ready to write.
    fn check(&mut self, client: &Conn) -> Result<(), Stop> {
        let bytes = client.buf.bytes();
        let part = super::body_part(self.framing, &mut self.decoder, bytes, self.taken);
        self.moved = super::logged(&self.decoder, self.taken);
        let (n, end) = part?;
        if self.framing != Framing::Chunked {
            self.taken += n as u64;
        }
        self.moved = super::logged(&self.decoder, self.taken);
        self.ready = n;
        self.seen_end = end;
        Ok(())
    }
}

/// Waits for the client's next bytes (until `deadline`) or for the server's socket to be
/// readable, whichever comes first.
async fn read_or_server(client: &mut Conn, server: &Conn, deadline: Option<Instant>) -> Woke {
    let mut fill = std::pin::pin!(client.fill_until(deadline));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(read) = fill.as_mut().poll(cx) {
            return Poll::Ready(Woke::Client(read));
        }
        match server.stream.poll_read_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Woke::Server),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Writes `data` to `server` within the inactivity `timeout`, watching the server's socket
/// as `watch` says meanwhile; how much went (less than all: the server answered, see
/// [`Watch::Answer`]).
async fn write_watching(
    server: &mut Conn,
    data: &[u8],
    timeout: Option<Duration>,
    watch: Watch,
    watching: &mut bool,
) -> std::io::Result<usize> {
    let mut written = 0;
    let mut seen = 0;
    // Armed once the socket is full: a write that goes at once reads no clock.
    let mut timer = std::pin::pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(done) = server.poll_write_all(cx, data, &mut written) {
                return Poll::Ready(done.map(|()| written));
            }
            if let Some(t) = timeout {
                if timer.is_none() || written != seen {
                    seen = written;
                    timer.set(Some(tokio::time::sleep(t)));
                }
            }
            if *watching && server.stream.poll_read_ready(cx).is_ready() {
                match (hear(server), watch) {
                    (Heard::Data, Watch::Answer { .. }) => return Poll::Ready(Ok(written)),
                    // Looked again: the next readiness wakes this task.
                    (Heard::Nothing, _) => continue,
                    _ => *watching = false,
                }
            }
            if timer
                .as_mut()
                .as_pin_mut()
                .is_some_and(|t| t.poll(cx).is_ready())
            {
                return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
            }
            return Poll::Pending;
        }
    })
    .await
}
