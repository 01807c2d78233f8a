//! HTTP/2 on HTTP frontends, as HAProxy 2.6 serves it: a connection speaks it when its TLS
//! handshake chose ALPN `h2`, when its first bytes are the whole 24-byte client preface
//! (prior knowledge in clear), or when its `bind` says `proto h2`.
//!
//! The connection's frames (HPACK, flow control, SETTINGS, GOAWAY) are the `h2` crate's;
//! [`drive`] accepts its streams, at most 100 at once as HAProxy (the 101st is refused with
//! `REFUSED_STREAM`), and hands each to the per-request code of [`super::http`] as a
//! [`Stream`], in a task of its own with the connection's socket shared (for its addresses
//! and the kill registry: no descriptor of its own, as HAProxy's streams). The request's
//! head is built from the crate's `http::Request` straight into the `Head` that HTTP/1's
//! parser would give for it in HTTP/1.1 (origin form, `host` from `:authority` first,
//! `transfer-encoding: chunked` for a body without a length, as HAProxy sends it to an
//! HTTP/1.1 server: [`super::http::request_head`]); its body is read from the stream as
//! HTTP/1.1 bytes (re-framed as chunked when it has no length). The server's response head
//! goes straight to HEADERS ([`Stream::respond`], without the hop-by-hop headers), its body
//! bytes, written in their HTTP/1 framing, go as DATA (the data of its chunks). The answers
//! hapx makes itself (errors, rules' replies, interim responses) are written as HTTP/1.1
//! bytes, parsed back. So rules, ACLs, logs, balancing, errors and counters are the same
//! code for both versions. The session's counters are the connection's, once; each stream
//! is a request (a stream in HAProxy).
//!
//! An idle connection closes with GOAWAY at `timeout client` before its first stream, at
//! `timeout http-keep-alive` after it; a soft stop sends GOAWAY at once and lets the
//! streams in progress end.
//!
//! The request head of a stream is HTTP/1.1's, flagged ([`UriForm`] in `Head::h2`) so
//! that the fetches read HAProxy's form of it: `url` absolute, `req.ver` 2.0. The crumbs of
//! a split `cookie` go joined, after the other headers, as HAProxy sends them. The streams
//! the crate refuses itself (the 101st at once, a header block with HTTP/1's connection
//! headers), and those whose head is bigger than HAProxy's internal form takes
//! ([`MAX_HTX_HEAD`]), are found in the RST_STREAM frames sent for streams never handed out
//! ([`ResetScan`]) and logged `<BADREQ>` as HAProxy logs them; a stream the crate hands
//! out already reset (its DATA, come with its HEADERS, contradicting its length) is a
//! request aborted by the client (`CR--`, no server, [`Stream::aborted`]). The frames
//! clients send are counted for `show stat` ([`Counters`], [`FrameScan`]). The server
//! connections the client connection owns (private ones: `http-reuse never`...) are its
//! streams' together ([`Session`]), as HAProxy's session list.
//!
//! Not as HAProxy: an upper-case header name is a connection error to the crate (GOAWAY
//! PROTOCOL_ERROR), a stream error to HAProxy (RST_STREAM): the crate's HPACK decoder
//! (h2 0.4.20 `hpack/header.rs`, `Header::new`) refuses the name
//! (`HeaderName::from_lowercase`) in the middle of the block as `DecoderError::InvalidUtf8`
//! and stops decoding there, its dynamic table left unknown, so `codec/framed_read.rs`
//! answers any HPACK error but `NeedMore` with GOAWAY (only a `MalformedMessage`, found
//! after the whole block was decoded, resets the stream alone); no setting or API changes
//! that. The
//! protocol-error columns of `show stat` are not counted. A header block too big for
//! HAProxy's HPACK decoding buffer (about 16 KiB decoded) is a connection error to HAProxy
//! (GOAWAY); hapx resets that stream alone, as a head merely over [`MAX_HTX_HEAD`].

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::http::{Framing, Head, ReadError, find_head_end, parse_head, request_head};
use super::state::Server;
use super::{chunked, h1, h2_server};

/// The client connection preface (RFC 9113 3.4): the whole of it, or HTTP/1.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The preface's first part, which HTTP/1 reads as a request head of its own.
pub const PREFACE_HEAD: &[u8] = b"PRI * HTTP/2.0\r\n\r\n";

/// HAProxy's `tune.h2.max-concurrent-streams`.
const MAX_STREAMS: u32 = 100;

/// The most a request head may take in HAProxy's internal form (HTX) when it comes from an
/// HTTP/2 stream: a 16384-byte buffer less its 1024-byte reserve (`tune.maxrewrite`) and
/// the 85 bytes of the HTX structures a request takes whatever its size. Measured against
/// HAProxy 2.6.12 with five shapes of head (one long header; it after a 100-byte one, after
/// ten short ones, under a 52-byte name; a long path): each fits at this size, not a byte
/// more. A bigger head's stream is reset (PROTOCOL_ERROR) and logged as a bad request.
const MAX_HTX_HEAD: usize = 15275;

/// What HAProxy's internal form adds to each header: the block's index entry.
const HTX_BLOCK: usize = 8;

/// Headers that are the HTTP/1 connection's and never go in an HTTP/2 message.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// How HAProxy's internal form of an HTTP/2 request reads its URI, which the fetches
/// (`url`, `req.ver`) see: `scheme://authority` then the path, or the path alone when no
/// `:authority` came. The authority is the request's `host` (from `:authority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriForm {
    Origin,
    Http,
    Https,
}

impl UriForm {
    /// The scheme and `://` before the authority (None: the path alone).
    pub fn scheme_prefix(self) -> Option<&'static str> {
        match self {
            UriForm::Origin => None,
            UriForm::Http => Some("http://"),
            UriForm::Https => Some("https://"),
        }
    }
}

/// One stream of an HTTP/2 connection, as the per-request code reads and writes it.
pub struct Stream {
    /// The request's head, until the per-request code takes it.
    head: Option<Result<Head, ReadError>>,
    /// Request body bytes translated and not read yet.
    pending: Vec<u8>,
    taken: usize,
    /// The request body still to come (None: it ended, and its end was translated).
    body: Option<h2::RecvStream>,
    /// The body has no `content-length`: it goes to the server chunked.
    chunked: bool,
    /// `%r`'s request line: the absolute URI and `HTTP/2.0`.
    pub line: String,
    /// How the request's URI reads in HAProxy's form, for the fetches.
    pub uri_form: UriForm,
    /// The length of the request line in HTTP/1.1 (without its CRLF).
    pending_line: usize,
    /// The connection's TLS session, as the rules and logs see it.
    pub tls: Option<Arc<super::tls::ClientTls>>,
    /// The request's method (a response to HEAD has no body).
    method: String,
    reply: Reply,
    /// The crate reset the stream before handing it out (its DATA, come with its HEADERS,
    /// contradicted its `content-length`): HAProxy's stream meets that error before it
    /// connects, and ends as the client's abort (`CR--`), without a server.
    pub aborted: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("line", &self.line).finish()
    }
}

/// Where the response written so far stands.
enum Reply {
    /// Its head is being written (the bytes so far).
    Head(h2::server::SendResponse<Bytes>, Vec<u8>),
    /// Its body: the DATA to send as the peer's window allows, and how the HTTP/1 framing
    /// ends it.
    Body {
        send: h2::SendStream<Bytes>,
        out: Vec<u8>,
        framing: Framing,
        /// Body bytes still to come of a `Length` framing.
        left: u64,
        decoder: chunked::Decoder,
        /// Chunked framing read but not parsed yet (a size line in part).
        unparsed: Vec<u8>,
        /// A chunked body's trailer fields, sent as a last HEADERS once the body ended (as
        /// HAProxy's mux sends them).
        trailers: http::HeaderMap,
        ended: bool,
    },
    /// Sent whole (or given up).
    Done,
}

impl Stream {
    /// A stream whose request head came (`request`), its head made the per-request code's
    /// (an HTTP/1.1 request's); `tls`: the connection is `https`.
    fn new(
        request: http::Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
        tls: bool,
    ) -> Stream {
        let mut cx = Context::from_waker(Waker::noop());
        let aborted = respond.poll_reset(&mut cx).is_ready();
        let (parts, body) = request.into_parts();
        let authority = parts.uri.authority().map(|a| a.as_str()).unwrap_or("");
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let method = parts.method.as_str().to_string();
        let scheme = parts
            .uri
            .scheme_str()
            .unwrap_or(if tls { "https" } else { "http" });
        let (line, uri_form) = if authority.is_empty() {
            (format!("{method} {path} HTTP/2.0"), UriForm::Origin)
        } else {
            let form = if scheme.eq_ignore_ascii_case("https") {
                UriForm::Https
            } else {
                UriForm::Http
            };
            (
                // An asterisk-form target (`OPTIONS *`) shows no path after the authority.
                format!(
                    "{method} {scheme}://{authority}{} HTTP/2.0",
                    if path == "*" { "" } else { path }
                ),
                form,
            )
        };
        let ended = body.is_end_stream();
        let has_length = parts.headers.contains_key(http::header::CONTENT_LENGTH);
        let chunked = !ended && !has_length;
        let first = [method.clone(), path.to_string(), "HTTP/1.1".to_string()];
        let pending_line = first.iter().map(String::len).sum::<usize>() + 2;
        // `host` comes as `:authority` (which wins when both came), first.
        let host = (!authority.is_empty()).then_some(("host", authority.as_bytes()));
        // The crumbs of a split `cookie` go as one header, joined by "; " (RFC 9113 8.2.3),
        // after the others, as HAProxy's `h2_make_htx_request` places it.
        let crumbs = parts.headers.get_all(http::header::COOKIE).iter();
        let crumbs: Vec<&[u8]> = crumbs.map(|c| c.as_bytes()).collect();
        let joined = crumbs.join(&b"; "[..]);
        let cookie = (!crumbs.is_empty()).then_some(("cookie", joined.as_slice()));
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| host.is_none() || *name != http::header::HOST)
            .filter(|(name, _)| *name != http::header::COOKIE)
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let framing = chunked.then_some(("transfer-encoding", &b"chunked"[..]));
        let headers: Vec<_> = host.into_iter().chain(headers).chain(cookie).collect();
        // Its start line is `%r` without its blanks; its headers have no framing yet.
        let htx_size = (line.len() - 2)
            + (headers.iter())
                .map(|(name, value)| name.len() + value.len() + HTX_BLOCK)
                .sum::<usize>();
        let head = match htx_size > MAX_HTX_HEAD {
            true => Err(ReadError::TooLarge),
            false => request_head(first, headers.into_iter().chain(framing)),
        };
        Stream {
            head: Some(head),
            pending: Vec::new(),
            taken: 0,
            body: (!ended).then_some(body),
            chunked,
            line,
            uri_form,
            pending_line,
            tls: None,
            method,
            reply: Reply::Head(respond, Vec::new()),
            aborted,
        }
    }

    /// Whether its head is larger than HAProxy takes ([`MAX_HTX_HEAD`]).
    fn oversized(&self) -> bool {
        matches!(self.head, Some(Err(ReadError::TooLarge)))
    }

    /// Resets the stream before anything was answered.
    fn reset(mut self, reason: h2::Reason) {
        if let Reply::Head(respond, _) = &mut self.reply {
            respond.send_reset(reason);
        }
        self.reply = Reply::Done;
    }

    /// The request's head, once: as [`super::http::parse_head`] reads the same head in
    /// HTTP/1.1 (origin form, `host` from `:authority` first, `transfer-encoding: chunked`
    /// for a body without a length, as HAProxy sends it to an HTTP/1.1 server).
    pub fn take_head(&mut self) -> Option<Result<Head, ReadError>> {
        self.head.take()
    }

    /// How much longer the request's URI is in HAProxy's internal form (absolute) than in
    /// the HTTP/1.1 head read from the stream (origin form): its logged size counts it.
    pub fn longer_uri(&self) -> u64 {
        (self.line.len() - self.pending_line) as u64
    }

    /// Reads what is there without waiting; `None`: nothing yet.
    pub fn try_read(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_read(&mut cx, out) {
            Poll::Ready(r) => r.map(Some),
            Poll::Pending => Ok(None),
        }
    }

    /// Reads the request's body as HTTP/1.1 (its head is [`Stream::take_head`]'s); Ok(0)
    /// once the response was sent whole (the stream's end: it carries one request). Past
    /// the request, before that, nothing comes.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if self.taken < self.pending.len() {
                let n = out.len().min(self.pending.len() - self.taken);
                out[..n].copy_from_slice(&self.pending[self.taken..self.taken + n]);
                self.taken += n;
                return Poll::Ready(Ok(n));
            }
            self.pending.clear();
            self.taken = 0;
            let Some(body) = self.body.as_mut() else {
                return match self.reply {
                    Reply::Done => Poll::Ready(Ok(0)),
                    _ => Poll::Pending,
                };
            };
            match std::task::ready!(body.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        self.pending
                            .extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
                        self.pending.extend_from_slice(&data);
                        self.pending.extend_from_slice(b"\r\n");
                    } else {
                        self.pending.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => {
                    // A chunked body ends with the trailers the stream ended with, as
                    // HAProxy's H1 layer writes them (a body with a length has no room
                    // for them: HAProxy drops them too).
                    let trailers = match self.chunked {
                        true => std::task::ready!(body.poll_trailers(cx)),
                        false => Ok(None),
                    };
                    let trailers = trailers.map_err(io::Error::other)?;
                    self.body = None;
                    if self.chunked {
                        push_last_chunk(&mut self.pending, trailers.as_ref());
                    }
                }
            }
        }
    }

    /// Takes HTTP/1 response bytes: the head becomes a HEADERS frame, the body DATA frames
    /// (the data of its chunks), sent as the peer's window allows.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_flush(cx))?;
        self.take(data)?;
        Poll::Ready(Ok(data.len()))
    }

    fn take(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.reply {
            Reply::Head(respond, raw) => {
                raw.extend_from_slice(data);
                let Some(end) = find_head_end(raw) else {
                    return Ok(());
                };
                let head = parse_head(&raw[..end], false).map_err(invalid)?;
                let rest = raw.split_off(end);
                if head.first[1].starts_with('1') {
                    raw.clear();
                    // An interim response (`100 Continue`, `103 Early Hints`) goes as its
                    // own HEADERS without END_STREAM, as HAProxy's mux sends it: a client
                    // holding its body for the `100` sends it at once.
                    if head.first[1] != "101" {
                        respond
                            .send_informational(response(&head)?)
                            .map_err(io::Error::other)?;
                    }
                    return self.take(&rest);
                }
                let framing = super::http::response_framing(&head, &self.method);
                self.respond(&head, framing)?;
                self.take_body(&rest)
            }
            Reply::Body { .. } => self.take_body(data),
            Reply::Done => Ok(()),
        }
    }

    /// Sends the final response's head as HEADERS (ending the stream when no body follows:
    /// `framing`, the body's HTTP/1 framing, says none or an empty one), straight from the
    /// per-request code or from the HTTP/1 bytes written; the body's bytes come after, in
    /// that framing.
    pub fn respond(&mut self, head: &Head, framing: Framing) -> io::Result<()> {
        let Reply::Head(mut respond, _) = std::mem::replace(&mut self.reply, Reply::Done) else {
            return Err(io::Error::other("a second response on a stream"));
        };
        let response = response(head)?;
        // `content-length: 0` too: no body byte will come to end the stream later (HAProxy's
        // HEADERS end the stream then, the length kept).
        let ends = matches!(framing, Framing::None | Framing::Length(0));
        let send = respond
            .send_response(response, ends)
            .map_err(io::Error::other)?;
        if !ends {
            let left = match framing {
                Framing::Length(n) => n,
                _ => 0,
            };
            self.reply = Reply::Body {
                send,
                out: Vec::new(),
                framing,
                left,
                decoder: chunked::Decoder::default(),
                unparsed: Vec::new(),
                trailers: http::HeaderMap::new(),
                ended: false,
            };
        }
        Ok(())
    }

    /// Takes body bytes of the response, as its HTTP/1 framing delimits them: their data
    /// goes to the DATA still to send.
    fn take_body(&mut self, body: &[u8]) -> io::Result<()> {
        let Reply::Body {
            out,
            framing,
            left,
            decoder,
            unparsed,
            trailers,
            ended,
            ..
        } = &mut self.reply
        else {
            return Ok(());
        };
        match framing {
            Framing::Length(_) => {
                let n = (body.len() as u64).min(*left) as usize;
                out.extend_from_slice(&body[..n]);
                *left -= n as u64;
                *ended = *left == 0;
            }
            Framing::Chunked => {
                // A chunk's size line cut between two writes waits for its end.
                let joined;
                let input = if unparsed.is_empty() {
                    body
                } else {
                    unparsed.extend_from_slice(body);
                    joined = std::mem::take(unparsed);
                    &joined[..]
                };
                let used = decoder
                    .advance_with_trailers(
                        input,
                        |piece| out.extend_from_slice(piece),
                        |name, value| add_trailer(trailers, name, value),
                    )
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
                unparsed.extend_from_slice(&input[used..]);
                *ended = decoder.is_done();
            }
            Framing::UntilClose => out.extend_from_slice(body),
            Framing::None => *ended = true,
        }
        Ok(())
    }

    /// Sends the DATA taken so far, as the peer's window allows, and the stream's end once
    /// the body ended.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Reply::Body {
            send,
            out,
            trailers,
            ended,
            ..
        } = &mut self.reply
        else {
            return Poll::Ready(Ok(()));
        };
        while !out.is_empty() {
            send.reserve_capacity(out.len());
            match std::task::ready!(send.poll_capacity(cx)) {
                Some(Ok(0)) => continue,
                Some(Ok(n)) => {
                    let n = n.min(out.len());
                    let last = *ended && trailers.is_empty() && n == out.len();
                    let piece = Bytes::copy_from_slice(&out[..n]);
                    out.drain(..n);
                    send.send_data(piece, last).map_err(io::Error::other)?;
                    if last {
                        self.reply = Reply::Done;
                        return Poll::Ready(Ok(()));
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
        if *ended {
            let sent = match trailers.is_empty() {
                true => send.send_data(Bytes::new(), true),
                false => send.send_trailers(std::mem::take(trailers)),
            };
            sent.map_err(io::Error::other)?;
            self.reply = Reply::Done;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    /// A response the per-request code left unfinished: a body that lasted until the close
    /// ends there; anything else resets the stream: with nothing sent yet (a stream killed
    /// by `shutdown session`, a request given no answer), REFUSED_STREAM, which lets the
    /// client retry, as HAProxy's `h2_do_shutr`.
    fn drop(&mut self) {
        match &mut self.reply {
            Reply::Done => {}
            Reply::Body {
                send,
                out,
                framing: Framing::UntilClose,
                ..
            } if out.is_empty() => {
                let _ = send.send_data(Bytes::new(), true);
            }
            Reply::Body { send, .. } => send.send_reset(h2::Reason::INTERNAL_ERROR),
            Reply::Head(respond, _) => respond.send_reset(h2::Reason::REFUSED_STREAM),
        }
    }
}

/// The last chunk of a chunked HTTP/1 body, with its `trailers` (names in lower case, as
/// HTTP/2 has them) and the empty line ending them.
fn push_last_chunk(out: &mut Vec<u8>, trailers: Option<&http::HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Keeps a trailer field of an HTTP/1 body for the HEADERS ending the stream: its name in
/// lower case; one HTTP/2 forbids (an HTTP/1 connection's own) or cannot carry is dropped.
fn add_trailer(trailers: &mut http::HeaderMap, name: &[u8], value: &[u8]) {
    let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(name),
        http::HeaderValue::from_bytes(value),
    ) else {
        return;
    };
    let connection_specific = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
    ];
    if !connection_specific.contains(&name.as_str()) {
        trailers.append(name, value);
    }
}

fn invalid(e: ReadError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}"))
}

/// The HTTP/2 response of an HTTP/1 head: its status and headers as an HTTP/1 client
/// gets them ([`h1::response_headers`]), names in lower case, without the HTTP/1
/// connection's own.
fn response(head: &Head) -> io::Result<http::Response<()>> {
    let status = http::StatusCode::from_bytes(head.first[1].as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    let mut invalid = false;
    let headers = response.headers_mut();
    h1::response_headers(head, |name, value| {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return;
        }
        // (The name's case is lowered as it is parsed.)
        let name = http::HeaderName::from_bytes(name.as_bytes());
        let value = http::HeaderValue::from_bytes(&crate::bytestr::to_bytes(value));
        match (name, value) {
            (Ok(name), Ok(value)) => drop(headers.append(name, value)),
            _ => invalid = true,
        }
    });
    if invalid {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    Ok(response)
}

/// The server connections an HTTP/2 client connection owns, which its streams share: those
/// private to it (`http-reuse never`, `send-proxy`, a source following the client) and the
/// TLS ones the server pool does not keep, as HAProxy 2.6's session list holds them for all
/// its streams (`session_get_conn`). Its HTTP/2 ones are [`h2_server::Private`]'s, taken by
/// several streams at once; the others (`C`: a server connection that serves one request at
/// a time) are idle here, taken by one stream and given back after its response. The
/// session keeps at most `max-session-srv-conns` idle (5, HAProxy's `MAX_SRV_LIST`): a
/// connection going idle beyond that closes, as `session_check_idle_conn` (measured with
/// an HTTP/1.1 server: twenty streams at once, then twenty more, open 20 + 15).
pub struct Session<C> {
    /// Idle connections that serve one request at a time, with their server.
    idle: Mutex<Vec<(Arc<Server>, C)>>,
    /// Its HTTP/2 server connections, with streams open on them or none.
    pub h2: Arc<h2_server::Private>,
}

impl<C> std::fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl<C> Session<C> {
    /// A session's list, which keeps at most `most_idle` idle connections.
    pub fn new(most_idle: usize) -> Session<C> {
        Session {
            idle: Mutex::new(Vec::new()),
            h2: Arc::new(h2_server::Private::new(most_idle)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Arc<Server>, C)>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection to `server` that `usable` takes, the oldest first; those it
    /// refuses are closed.
    pub fn take(&self, server: &Arc<Server>, mut usable: impl FnMut(&mut C) -> bool) -> Option<C> {
        let mut idle = self.lock();
        let mut refused = Vec::new();
        let mut found = None;
        while let Some(at) = idle.iter().position(|(s, _)| Arc::ptr_eq(s, server)) {
            let (_, mut conn) = idle.remove(at);
            if usable(&mut conn) {
                found = Some(conn);
                break;
            }
            refused.push(conn);
        }
        self.h2.set_others_idle(idle.len());
        drop(idle);
        // Closed outside the lock.
        drop(refused);
        found
    }

    /// Keeps `conn`, its request served, for the later streams to `server`, unless the
    /// session holds its most idle connections already: then it closes.
    pub fn keep(&self, server: Arc<Server>, conn: C) {
        let mut idle = self.lock();
        if idle.len() + self.h2.idle() >= self.h2.most_idle() {
            drop(idle);
            drop(conn);
            return;
        }
        idle.push((server, conn));
        self.h2.set_others_idle(idle.len());
    }
}

/// What [`drive`] needs of its caller: how a stream is served.
pub trait Streams {
    /// Serves `stream` in a task of its own; `live` lives as long as it.
    fn spawn(&self, stream: Stream, live: Live);
    /// A stream the `h2` crate refused before it was a request (the 101st at once, a
    /// malformed header block): reset, and logged by HAProxy as a bad request.
    fn refused(&self);
}

/// A frontend's HTTP/2 counters, HAProxy's h2 stats module (`show stat`'s `h2_*`
/// columns): the frames of the kinds counted that its clients sent, its connections and
/// streams. (The protocol errors and the RST_STREAM and GOAWAY sent on them are the `h2`
/// crate's, which does not report them: not counted.)
#[derive(Debug, Default)]
pub struct Counters {
    headers_rcvd: AtomicU64,
    data_rcvd: AtomicU64,
    settings_rcvd: AtomicU64,
    rst_stream_rcvd: AtomicU64,
    goaway_rcvd: AtomicU64,
    open_conns: AtomicU64,
    open_streams: AtomicU64,
    total_conns: AtomicU64,
    total_streams: AtomicU64,
}

impl Counters {
    /// The columns counted, by their `show stat` names.
    pub fn columns(&self) -> [(&'static str, u64); 9] {
        let get = |c: &AtomicU64| c.load(Relaxed);
        [
            ("h2_headers_rcvd", get(&self.headers_rcvd)),
            ("h2_data_rcvd", get(&self.data_rcvd)),
            ("h2_settings_rcvd", get(&self.settings_rcvd)),
            ("h2_rst_stream_rcvd", get(&self.rst_stream_rcvd)),
            ("h2_goaway_rcvd", get(&self.goaway_rcvd)),
            ("h2_open_connections", get(&self.open_conns)),
            ("h2_backend_open_streams", get(&self.open_streams)),
            ("h2_total_connections", get(&self.total_conns)),
            ("h2_backend_total_streams", get(&self.total_streams)),
        ]
    }

    /// Counts a frame the client sent, by its type.
    fn received(&self, frame_type: u8) {
        let counter = match frame_type {
            0x0 => &self.data_rcvd,
            0x1 => &self.headers_rcvd,
            0x3 => &self.rst_stream_rcvd,
            0x4 => &self.settings_rcvd,
            0x7 => &self.goaway_rcvd,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// An open HTTP/2 connection, counted while it lasts.
struct OpenConn(Arc<Counters>);

impl OpenConn {
    fn new(counters: Arc<Counters>) -> OpenConn {
        counters.total_conns.fetch_add(1, Relaxed);
        counters.open_conns.fetch_add(1, Relaxed);
        OpenConn(counters)
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open_conns.fetch_sub(1, Relaxed);
    }
}

/// A 9-byte frame header gathered across reads, for the scanners below.
#[derive(Debug, Default)]
struct HeaderRead {
    /// The part read so far.
    header: [u8; 9],
    got: usize,
}

impl HeaderRead {
    /// Takes what of `data` the header still lacks: how many bytes it took, and the header
    /// with its payload length once complete (ready then for the next one).
    fn take(&mut self, data: &[u8]) -> (usize, Option<([u8; 9], usize)>) {
        let n = (self.header.len() - self.got).min(data.len());
        self.header[self.got..self.got + n].copy_from_slice(&data[..n]);
        self.got += n;
        if self.got < self.header.len() {
            return (n, None);
        }
        self.got = 0;
        let h = self.header;
        let payload = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        (n, Some((h, payload)))
    }
}

/// Finds the frames in what a client sends (after its 24-byte preface), to count them:
/// each frame's 9-byte header gives its length and type.
#[derive(Debug)]
struct FrameScan {
    /// Bytes of the preface still to pass.
    preface: usize,
    header: HeaderRead,
    /// Payload bytes of the current frame still to pass.
    payload: usize,
    /// No frame came yet.
    first: bool,
}

impl FrameScan {
    fn new() -> FrameScan {
        FrameScan {
            preface: PREFACE.len(),
            header: HeaderRead::default(),
            payload: 0,
            first: true,
        }
    }

    fn scan(&mut self, mut data: &[u8], counters: &Counters) {
        while !data.is_empty() {
            let skip = if self.preface > 0 {
                let n = self.preface.min(data.len());
                self.preface -= n;
                n
            } else if self.payload > 0 {
                let n = self.payload.min(data.len());
                self.payload -= n;
                n
            } else {
                let (n, header) = self.header.take(data);
                if let Some((h, payload)) = header {
                    self.payload = payload;
                    counters.received(h[3]);
                    // HAProxy counts the SETTINGS that must come first twice: as it
                    // checks the preface's, then as it processes it.
                    if std::mem::replace(&mut self.first, false) && h[3] == 0x4 {
                        counters.received(h[3]);
                    }
                }
                n
            };
            data = &data[skip..];
        }
    }
}

/// Finds the RST_STREAM frames of what is sent to a client, with their stream and error
/// code: those the `h2` crate sends for streams it never handed out are its refusals.
#[derive(Debug, Default)]
struct ResetScan {
    header: HeaderRead,
    /// Payload bytes of the current frame still to pass.
    payload: usize,
    /// The current frame is a RST_STREAM: its stream, and its error code so far.
    reset: Option<(u32, [u8; 4])>,
}

impl ResetScan {
    /// Calls `found(stream, code)` for each RST_STREAM completed in `data`.
    fn scan(&mut self, mut data: &[u8], mut found: impl FnMut(u32, u32)) {
        while !data.is_empty() {
            let n = if self.payload > 0 {
                let n = self.payload.min(data.len());
                if let Some((stream, code)) = &mut self.reset {
                    // The code is the payload's 4 bytes.
                    let at = 4 - self.payload;
                    code[at..at + n].copy_from_slice(&data[..n]);
                    if self.payload == n {
                        found(*stream, u32::from_be_bytes(*code));
                    }
                }
                self.payload -= n;
                n
            } else {
                let (n, header) = self.header.take(data);
                if let Some((h, payload)) = header {
                    self.payload = payload;
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    self.reset = (h[3] == 0x3 && self.payload == 4).then_some((stream, [0; 4]));
                }
                n
            };
            data = &data[n..];
        }
    }
}

/// The connection's I/O, its incoming frames counted, the streams refused found in what
/// it sends.
struct Counted<T> {
    io: T,
    scan: FrameScan,
    counters: Arc<Counters>,
    resets: ResetScan,
    streaming: Arc<Streaming>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(std::pin::Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.scan.scan(&buf.filled()[before..], &this.counters);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = std::task::ready!(std::pin::Pin::new(&mut this.io).poll_write(cx, data))?;
        let streaming = &this.streaming;
        this.resets.scan(&data[..n], |stream, code| {
            let refusal = code == u32::from(h2::Reason::PROTOCOL_ERROR)
                || code == u32::from(h2::Reason::REFUSED_STREAM);
            // Streams are handed out in the order of their ids, each after the frames
            // that came before it were answered: a later one was never handed out.
            if refusal && stream > streaming.last_served.load(Relaxed) {
                lock(&streaming.refused).push(stream);
                streaming.ended.notify_one();
            }
        });
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Held by each stream's task: the connection knows when the last one ended (its idle
/// timeout starts then, and its session may end).
#[derive(Debug)]
pub struct Live(Arc<Streaming>);

/// The streams of a connection still served, and a wake-up when one ends (or one was
/// refused).
#[derive(Debug)]
struct Streaming {
    count: std::sync::atomic::AtomicUsize,
    ended: tokio::sync::Notify,
    counters: Arc<Counters>,
    /// The id of the last stream handed out.
    last_served: std::sync::atomic::AtomicU32,
    /// The streams the crate reset before handing them out, not logged yet: refused, unless
    /// handed out after all (a stream reset for a body contradicting its length, which
    /// came with its head, is: it is a request, logged as such).
    refused: std::sync::Mutex<Vec<u32>>,
}

/// The refused streams' list, even if a thread panicked while holding it.
fn lock(refused: &std::sync::Mutex<Vec<u32>>) -> std::sync::MutexGuard<'_, Vec<u32>> {
    refused
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Streaming {
    fn new(counters: Arc<Counters>) -> Streaming {
        Streaming {
            count: Default::default(),
            ended: Default::default(),
            counters,
            last_served: Default::default(),
            refused: Default::default(),
        }
    }
}

impl Streaming {
    fn any(&self) -> bool {
        self.count.load(std::sync::atomic::Ordering::Acquire) > 0
    }
}

impl Live {
    fn new(streaming: &Arc<Streaming>, stream: u32) -> Live {
        streaming
            .count
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        streaming.counters.total_streams.fetch_add(1, Relaxed);
        streaming.counters.open_streams.fetch_add(1, Relaxed);
        streaming.last_served.fetch_max(stream, Relaxed);
        Live(streaming.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.counters.open_streams.fetch_sub(1, Relaxed);
        self.0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.ended.notify_one();
    }
}

/// The idle timeouts of an HTTP/2 connection: before its first stream, and after one.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    pub first: Option<Duration>,
    pub later: Option<Duration>,
}

/// Serves an HTTP/2 connection over `io` (its preface not read yet) to its end: its
/// streams through `streams`, an idle connection closed with GOAWAY at its timeout, a soft
/// stop (`stopped`) answered with GOAWAY and the streams in progress let end; counted in
/// `counters`.
pub async fn drive<T, S>(
    io: T,
    tls: bool,
    idle: Idle,
    stopped: impl std::future::Future<Output = ()>,
    streams: S,
    counters: Arc<Counters>,
) -> Result<(), h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Streams,
{
    let _open = OpenConn::new(counters.clone());
    let streaming = Arc::new(Streaming::new(counters.clone()));
    let io = Counted {
        io,
        scan: FrameScan::new(),
        counters,
        resets: ResetScan::default(),
        streaming: streaming.clone(),
    };
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_STREAMS)
        .enable_connect_protocol();
    let handshake = builder.handshake::<Counted<T>, Bytes>(io);
    let mut conn = match idle.first {
        Some(t) => tokio::time::timeout(t, handshake)
            .await
            .map_err(|_| h2::Error::from(h2::Reason::NO_ERROR))??,
        None => handshake.await?,
    };
    tokio::pin!(stopped);
    let mut stopping = false;
    let mut first = true;
    let log_refused = || {
        let refused = std::mem::take(&mut *lock(&streaming.refused));
        for _ in refused {
            streams.refused();
        }
    };
    let ended = loop {
        log_refused();
        let idle_for = if streaming.any() {
            None
        } else if first {
            idle.first
        } else {
            idle.later
        };
        let timer = async {
            match idle_for {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    first = false;
                    let id = u32::from(respond.stream_id());
                    lock(&streaming.refused).retain(|&refused| refused != id);
                    let stream = Stream::new(request, respond, tls);
                    if stream.oversized() {
                        // HAProxy resets it before it is a stream: found in what goes out and
                        // logged as the crate's own refusals ([`ResetScan`]).
                        stream.reset(h2::Reason::PROTOCOL_ERROR);
                    } else {
                        streams.spawn(stream, Live::new(&streaming, id));
                    }
                }
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            () = &mut stopped, if !stopping => {
                stopping = true;
                conn.graceful_shutdown();
            }
            () = timer => {
                conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                // The GOAWAY goes out, then the connection ends.
                while let Some(Ok(_)) = conn.accept().await {}
                break Ok(());
            }
            () = streaming.ended.notified() => {}
        }
    };
    log_refused();
    // The session lasts as long as its streams: each is logged within it.
    while streaming.any() {
        streaming.ended.notified().await;
    }
    ended
}

/// An I/O whose first bytes were read already (the preface, in clear).
#[derive(Debug)]
pub struct Prefixed<T> {
    pub read: Vec<u8>,
    pub io: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.read.is_empty() {
            let n = buf.remaining().min(this.read.len());
            buf.put_slice(&this.read[..n]);
            this.read.drain(..n);
            return Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
