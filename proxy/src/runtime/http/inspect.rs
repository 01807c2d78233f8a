//! `tcp-response content` rules in an HTTP backend, as HAProxy 2.6 runs them there: on its
//! internal (HTX) message, although its configuration check warns that L6 fetches are
//! ignored on HTTP proxies. Measured against HAProxy 2.6.12:
//!
//! - The rules run once the request went to its server, on nothing yet (`res.len` 0): with
//!   no `tcp-response inspect-delay` they decide then, whatever the response.
//! - With a delay, while a rule cannot decide, they run again as the response comes: HAProxy's
//!   HTX holds nothing until the head is whole, then the head and the body that came with
//!   it, `res.len` being their logged size ([`super::Head::logged_size`], the body's bytes
//!   decoded). More may come until the message is whole, the server closed, the buffer is
//!   full or the delay is over.
//! - `res.payload`, `res.payload_lv` and `res.ssl_hello_type` find nothing in HTX, at once
//!   and for good (no wait for more), whatever came (the configuration check warns that L6
//!   fetches are ignored on HTTP proxies).
//! - `reject`: no response, the client connection closed, logged `PD--` with status -1 and
//!   the size held, counted in `dresp` and in `bout`. `close`: the server connection is
//!   dropped; what came of the response still goes to the client.
//! - `timeout server` runs through the inspection: the server's silence since the request
//!   went (or since its last bytes) counts, the wait for the response head that follows has
//!   only what is left of it ([`Inspected::head_wait`]). A server silent past it gets its
//!   504 (`sH--`) then, delay over or not, as HAProxy's read timeout is one timer.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::{Conn, Framing, Route, Server, chunked, find_head_end, parse_head, response_framing};
use crate::runtime::rules::{self, ResponseVerdict};
use crate::runtime::sample::Context;
use crate::runtime::stick;

/// HAProxy's HTX message stands in the rules' view as this many bytes: `res.len` counts
/// them, no fetch reads them ([`Context::response_internal`]).
static HELD: [u8; crate::runtime::BUFSIZE] = [0; crate::runtime::BUFSIZE];

/// What the rules decided, and the logged size of what the response had brought then.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inspected {
    pub verdict: ResponseVerdict,
    pub held: u64,
    /// What is left of `timeout server` for the response head (none: no timeout), the
    /// server's silence during the inspection counted: zero when it ran out.
    pub head_wait: Option<Duration>,
}

/// Runs the backend's `tcp-response content` rules on the response of a `method` request
/// to `server` through `sconn`, reading into its buffer (for the response's reading that
/// follows) while a rule waits for more.
pub(super) async fn inspect(
    route: &Route<'_>,
    server: &Server,
    sconn: &mut Conn,
    method: &str,
) -> Inspected {
    let rules = &route.backend.conf.rules;
    let start = Instant::now();
    let deadline = rules.response_inspect_delay.map(|d| start + d);
    // Stick actions act on the stream's tracked counters.
    let counters = (!route.state.tables.is_empty())
        .then(stick::current)
        .flatten();
    let server_timeout = route.backend.conf.timeouts.server;
    // When the server's silence began: the request went, or its bytes last came.
    let mut heard = start;
    let late = |heard: Instant| server_timeout.and_then(|t| heard.checked_add(t));
    let mut server_ended = false;
    loop {
        let (held, whole) = held_message(sconn.buf.bytes(), method);
        let expired = deadline.is_none_or(|d| Instant::now() >= d);
        let full = sconn.buf.len() >= crate::runtime::INSPECT_LIMIT;
        let ctx = Context {
            response_payload: Some(&HELD[..held.min(HELD.len())]),
            response_internal: true,
            partial: !(expired || whole || server_ended || full),
            stick: counters.as_deref(),
            ..route.context()
        };
        let verdict = rules::response_verdict(&ctx, rules, Some(&server.name));
        let verdict = match verdict {
            Some(v) => v,
            None => match wait_for_more(sconn, deadline, late(heard)).await {
                More::Came => {
                    heard = Instant::now();
                    continue;
                }
                More::Ended => {
                    server_ended = true;
                    continue;
                }
                // The rules run once more, on what came.
                More::DelayOver => continue,
                // HAProxy's read timeout aborts the analysis; the response's reading
                // that follows reports it at once (`sH`, 504: no time left).
                More::ServerLate => ResponseVerdict::Accept,
            },
        };
        if verdict == ResponseVerdict::Close {
            stop_reading(sconn);
        }
        let silent = heard.elapsed();
        return Inspected {
            verdict,
            held: held as u64,
            head_wait: server_timeout.map(|t| t.saturating_sub(silent)),
        };
    }
}

/// What waiting for more of a held response brought.
enum More {
    Came,
    /// The server closed (or its connection failed).
    Ended,
    DelayOver,
    /// Nothing came within `timeout server`.
    ServerLate,
}

/// Reads what more the server sent into `sconn`'s buffer, waiting until `delay_over` or
/// until the server is `late`, whichever comes first.
async fn wait_for_more(
    sconn: &mut Conn,
    delay_over: Option<Instant>,
    late: Option<Instant>,
) -> More {
    let wake = match (delay_over, late) {
        (Some(d), Some(l)) => Some(d.min(l)),
        (d, l) => d.or(l),
    };
    let read = match sconn.try_fill() {
        Ok(None) => sconn.fill_until(wake).await.map(Some),
        other => other,
    };
    match read {
        Ok(Some(0)) => More::Ended,
        Ok(_) => More::Came,
        Err(e) if e.kind() != std::io::ErrorKind::TimedOut => More::Ended,
        Err(_) if delay_over.is_some_and(|d| Instant::now() >= d) => More::DelayOver,
        Err(_) => More::ServerLate,
    }
}

/// After a `close`: the response ends with what came of it already, as HAProxy kills the
/// server connection: both ways shut down, what the server sends next resets it and reads
/// as its end (`SD` if the message was not whole; a read shut down alone would still
/// deliver it). A connection shared by HTTP/2 streams is left to the others.
fn stop_reading(sconn: &Conn) {
    if sconn.h2_up.is_none() {
        let _ = socket2::SockRef::from(&*sconn.stream).shutdown(std::net::Shutdown::Both);
    }
}

/// The logged size of what HAProxy's HTX holds of a response whose first bytes are `bytes`
/// (nothing until its head is whole), and whether the message is whole.
fn held_message(bytes: &[u8], method: &str) -> (usize, bool) {
    let Some(end) = find_head_end(bytes) else {
        return (0, false);
    };
    let Ok(head) = parse_head(&bytes[..end], false) else {
        return (0, false);
    };
    let body = &bytes[end..];
    let (size, whole) = match response_framing(&head, method) {
        Framing::None => (0, true),
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            (body.len().min(n), body.len() >= n)
        }
        Framing::UntilClose => (body.len(), false),
        Framing::Chunked => {
            let mut decoder = chunked::Decoder::default();
            let _ = decoder.advance(body);
            let size = usize::try_from(decoder.logged_size()).unwrap_or(usize::MAX);
            (size, decoder.is_done())
        }
    };
    (head.logged_size() as usize + size, whole)
}

/// Counts a rejected response as HAProxy does: in `dresp` and, for what it held, in the
/// bytes out of the frontend, the backend and `server`.
pub(super) fn count_rejection(route: &Route<'_>, server: &Server, held: u64) {
    for c in [
        &route.fe.counters,
        &route.backend.counters,
        &server.counters,
    ] {
        c.denied_resp.fetch_add(1, Relaxed);
        c.bytes_out.fetch_add(held, Relaxed);
    }
    route.state.tables.count_bytes(0, held);
}

#[cfg(test)]
mod tests {
    use super::held_message;

    #[test]
    fn nothing_is_held_until_the_head_is_whole() {
        assert_eq!(
            held_message(b"HTTP/1.1 200 OK\r\nContent-Le", "GET"),
            (0, false)
        );
    }

    #[test]
    fn the_head_and_the_body_that_came_are_held() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n";
        // 20 + "HTTP/1.1" "200" "OK" + "content-length" "5" + "x-a" "b" + 1, as measured.
        assert_eq!(held_message(head, "GET"), (53, false));
        let whole = [&head[..], b"hello"].concat();
        assert_eq!(held_message(&whole, "GET"), (58, true));
        assert_eq!(held_message(&whole, "HEAD"), (53, true));
    }
}
