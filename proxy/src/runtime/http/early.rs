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
//! - once the response went whole, a client that stops sending is timed out by
//!   `timeout client` from its last bytes (`cD--`), whether or not the server's connection
//!   stays open (else a client could hold both connections forever).
//!
//! - the body's first bytes that came with the request's head go to the server in one
//!   write with it (a server answering and resetting on the head alone then had them);
//! - an interim response (`100 Continue`, `103`) goes to the client at once and the body
//!   goes on, until the final response or the body's end.
//!
//! [`BodyRelay`] keeps where the body stands, so that its relay starts after the bytes the
//! head took along, stops where the server answered, and goes on after the response. A
//! chunked body goes framed anew, as HAProxy's HTTP/1 layer writes it
//! ([`chunked::Decoder::reframe`]).

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{Conn, Framing, Stop, chunked, h1::CaseMap};

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
    /// A chunked body's `ready` bytes framed anew: what goes in their place.
    reframed: Vec<u8>,
    /// Of what goes for `ready` ([`output`]), the bytes written already (a relay both ways,
    /// [`both_ways`], through TLS maybe not flushed yet; a chunked body's write the
    /// server's answer interrupted): the next write goes on after them.
    written: usize,
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
    /// After the response: the client's reads are bounded by `client` from the client's
    /// last bytes.
    End { client: Option<Duration> },
}

/// What a wait for the client saw first.
enum Woke {
    Client(std::io::Result<usize>),
    Server(Heard),
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

/// Whether the server said something, else `cx` is woken when it may have: a plain or TLS
/// connection's socket readable, then what it has ([`hear`]); an HTTP/2 server's stream
/// read through its connection's task, which wakes `cx` (the socket is the connection's,
/// all its streams': its readiness tells nothing of this one).
fn poll_heard(server: &mut Conn, cx: &mut std::task::Context<'_>) -> Poll<Heard> {
    if server.h2_up.is_some() {
        return match server.poll_fill(cx) {
            Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(Heard::End),
            Poll::Ready(Ok(_)) => Poll::Ready(Heard::Data),
            Poll::Pending => Poll::Pending,
        };
    }
    match server.stream.poll_read_ready(cx) {
        Poll::Ready(_) => Poll::Ready(hear(server)),
        Poll::Pending => Poll::Pending,
    }
}

impl BodyRelay {
    pub(super) fn new(framing: Framing) -> BodyRelay {
        BodyRelay {
            framing,
            taken: 0,
            decoder: chunked::Decoder::default(),
            ready: 0,
            reframed: Vec::new(),
            written: 0,
            seen_end: framing == Framing::None,
            moved: 0,
        }
    }

    /// Relays the body from `client` to `server` (`case`: its `h1-case-adjust` map) until
    /// its end, or (`Watch::Answer`) until the server sends something; writes are bounded
    /// by `write` (`timeout server`).
    pub(super) async fn run(
        &mut self,
        client: &mut Conn,
        (server, case): (&mut Conn, Option<&CaseMap>),
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
                self.check(client, case)?;
            }
            if self.ready > 0 {
                let data = output(self.framing, &self.reframed, self.ready, client);
                let whole = data.len();
                let from = std::mem::take(&mut self.written);
                let wrote = write_watching(server, (data, from), write, watch, &mut watching);
                let wrote = wrote.await;
                let n = match wrote {
                    Ok(n) => n,
                    // A server that answered and closed: its answer first, as HAProxy
                    // reads it before it finds the write failed (the rest fails again).
                    Err(_) if answering(watch) && matches!(hear(server), Heard::Data) => {
                        self.written = from;
                        return Ok(Relayed::Answered);
                    }
                    Err(e) => return Err(Stop::writing(&e)),
                };
                if n == whole {
                    self.went(client);
                    continue;
                }
                if self.framing == Framing::Chunked {
                    // Its bytes stay in the buffer until all their framing went.
                    self.written = n;
                } else {
                    client.buf.consume(n);
                    self.ready -= n;
                }
                return Ok(Relayed::Answered);
            }
            let deadline = match watch {
                Watch::Answer { read } => read.and_then(|t| Instant::now().checked_add(t)),
                Watch::End { client } => client.and_then(|t| last_read.checked_add(t)),
            };
            let woke = match client.try_fill() {
                Ok(Some(n)) => Woke::Client(Ok(n)),
                Ok(None) if watching => read_or_server(client, server, deadline).await,
                Ok(None) => Woke::Client(client.fill_until(deadline).await),
                Err(e) => Woke::Client(Err(e)),
            };
            match woke {
                Woke::Server(heard) => match (heard, watch) {
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

    /// The body's bytes the client's buffer holds already, checked (a chunked body's framed
    /// anew), for the request's head to take along (none when the checking failed: the
    /// relay finds it).
    pub(super) fn first_bytes<'a>(
        &'a mut self,
        client: &'a Conn,
        case: Option<&CaseMap>,
    ) -> &'a [u8] {
        if self.check(client, case).is_err() {
            *self = BodyRelay::new(self.framing);
        }
        output(self.framing, &self.reframed, self.ready, client)
    }

    /// The [`BodyRelay::first_bytes`] went with the head: they leave the client's buffer.
    /// Whether there were any (else the relay starts as new).
    pub(super) fn first_sent(&mut self, client: &mut Conn) -> bool {
        let sent = self.ready > 0;
        self.went(client);
        sent
    }

    /// All that goes for the `ready` bytes went: they leave the client's buffer.
    fn went(&mut self, client: &mut Conn) {
        client.buf.consume(self.ready);
        (self.ready, self.written) = (0, 0);
        self.reframed.clear();
    }

    /// One turn of a relay of this body from `src` to `dst` that waits for nothing: what
    /// can go goes, and `cx` is woken when more can. Ready once the body went whole, or
    /// stopped; `moves` tells what the turn read and wrote.
    fn poll_relay(
        &mut self,
        cx: &mut std::task::Context<'_>,
        (src, dst, case): (&mut Conn, &mut Conn, Option<&CaseMap>),
        moves: &mut Moves,
    ) -> Poll<Result<(), Stop>> {
        loop {
            if self.ready == 0 {
                if self.seen_end {
                    return Poll::Ready(Ok(()));
                }
                if let Err(stop) = self.check(src, case) {
                    return Poll::Ready(Err(stop));
                }
            }
            if self.ready > 0 {
                // The buffer's start stays as it is until all of it went: nothing is read
                // into it meanwhile.
                let before = self.written;
                let data = output(self.framing, &self.reframed, self.ready, src);
                let polled = dst.poll_write_all(cx, data, &mut self.written);
                moves.wrote |= self.written > before;
                match polled {
                    Poll::Ready(Ok(())) => {
                        self.went(src);
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Stop::writing(&e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.seen_end {
                continue;
            }
            match src.poll_fill(cx) {
                Poll::Ready(Ok(0)) if self.framing == Framing::UntilClose => self.seen_end = true,
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Err(Stop::SrcClosed)),
                Poll::Ready(Ok(_)) => moves.read = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Checks what of the client's buffer is body, making it ready to write (a chunked
    /// body's trailers named as `case` says).
    fn check(&mut self, client: &Conn, case: Option<&CaseMap>) -> Result<(), Stop> {
        let bytes = (client.buf.bytes(), self.taken);
        let reframed = Some((&mut self.reframed, case));
        let part = super::body_part(self.framing, &mut self.decoder, bytes, reframed);
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

/// What goes for the `ready` checked bytes at the start of `src`'s buffer: those bytes, or a
/// chunked body's `reframed` ones.
fn output<'a>(framing: Framing, reframed: &'a [u8], ready: usize, src: &'a Conn) -> &'a [u8] {
    match framing {
        Framing::Chunked => reframed,
        _ => &src.buf.bytes()[..ready],
    }
}

/// Waits for the client's next bytes (until `deadline`) or for the server to say something
/// ([`poll_heard`]), whichever comes first.
async fn read_or_server(client: &mut Conn, server: &mut Conn, deadline: Option<Instant>) -> Woke {
    let mut fill = std::pin::pin!(client.fill_until(deadline));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(read) = fill.as_mut().poll(cx) {
            return Poll::Ready(Woke::Client(read));
        }
        poll_heard(server, cx).map(Woke::Server)
    })
    .await
}

/// Writes `data` (after its first `written` bytes, which went already) to `server` within
/// the inactivity `timeout`, watching the server's socket
/// as `watch` says meanwhile; how much went (less than all: the server answered, see
/// [`Watch::Answer`]).
async fn write_watching(
    server: &mut Conn,
    (data, mut written): (&[u8], usize),
    timeout: Option<Duration>,
    watch: Watch,
    watching: &mut bool,
) -> std::io::Result<usize> {
    let mut seen = written;
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
            if *watching && let Poll::Ready(heard) = poll_heard(server, cx) {
                match (heard, watch) {
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

/// What a turn of [`BodyRelay::poll_relay`] did.
#[derive(Debug, Default, Clone, Copy)]
struct Moves {
    read: bool,
    wrote: bool,
}

/// Where a relay both ways ([`both_ways`]) stopped before the response's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Broke {
    /// The response's relay, so.
    Response(Stop),
    /// The request body's relay, so.
    Body(Stop),
}

impl Broke {
    /// HAProxy's termination flags for the exchange it ended.
    pub(super) fn flags(self) -> &'static str {
        match self {
            Broke::Response(stop) => stop.flags(false),
            Broke::Body(stop) => stop.flags(true),
        }
    }
}

/// Relays the rest of a `response`'s body from `server` to `client` and, at the same time,
/// the rest of the request's `body` the other way, as HAProxy relays both directions of a
/// stream at once (a server streaming its answer while it reads the body, an echo, would
/// otherwise wait for the body that waits for the response); until the response's end, the
/// body maybe still going then ([`BodyRelay::run`] goes on with it).
///
/// Timeouts as HAProxy's: `server`'s while the server neither sends nor takes anything
/// (its writes refresh its reads' timeout, HAProxy's streams not being independent) and
/// the response does not wait for the client; `client`'s while the response waits for the
/// client to take it. The client sending nothing more of its body is not timed out while
/// the server's response goes on. `cases`: the `h1-case-adjust` maps of the server and
/// of the client.
pub(super) async fn both_ways(
    body: &mut BodyRelay,
    response: &mut BodyRelay,
    (client, server): (&mut Conn, &mut Conn),
    (server_case, client_case): (Option<&CaseMap>, Option<&CaseMap>),
    (server_timeout, client_timeout): (Option<Duration>, Option<Duration>),
) -> Result<(), Broke> {
    let mut body_whole = false;
    let mut server_idle = std::pin::pin!(server_timeout.map(tokio::time::sleep));
    let mut client_idle = std::pin::pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        let mut to_server = Moves::default();
        if !body_whole {
            let way = (&mut *client, &mut *server, server_case);
            match body.poll_relay(cx, way, &mut to_server) {
                Poll::Ready(Ok(())) => body_whole = true,
                Poll::Ready(Err(stop)) => return Poll::Ready(Err(Broke::Body(stop))),
                Poll::Pending => {}
            }
        }
        let mut to_client = Moves::default();
        let way = (&mut *server, &mut *client, client_case);
        match response.poll_relay(cx, way, &mut to_client) {
            Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
            Poll::Ready(Err(stop)) => return Poll::Ready(Err(Broke::Response(stop))),
            Poll::Pending => {}
        }
        let waits_for_client = response.ready > 0;
        if let (Some(t), Some(timer)) = (server_timeout, server_idle.as_mut().as_pin_mut())
            && (to_server.wrote || to_client.read || waits_for_client)
        {
            timer.reset(tokio::time::Instant::now() + t);
        }
        match client_timeout.filter(|_| waits_for_client) {
            Some(t) if to_client.wrote || client_idle.is_none() => {
                client_idle.set(Some(tokio::time::sleep(t)));
            }
            Some(_) => {}
            None => client_idle.set(None),
        }
        if fired(client_idle.as_mut(), cx) {
            return Poll::Ready(Err(Broke::Response(Stop::DstTimeout)));
        }
        if fired(server_idle.as_mut(), cx) {
            // The server's: it took none of the body, or sent none of the response.
            return Poll::Ready(Err(if body.ready > 0 {
                Broke::Body(Stop::DstTimeout)
            } else {
                Broke::Response(Stop::SrcTimeout)
            }));
        }
        Poll::Pending
    })
    .await
}

/// Whether an armed `timer` went off (else `cx` is woken when it does).
fn fired(
    timer: std::pin::Pin<&mut Option<tokio::time::Sleep>>,
    cx: &mut std::task::Context<'_>,
) -> bool {
    timer.as_pin_mut().is_some_and(|t| t.poll(cx).is_ready())
}
