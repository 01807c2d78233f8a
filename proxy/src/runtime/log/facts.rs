//! What sessions tell the logger: the facts of a TCP session ([`TcpFacts`]) or an HTTP
//! request ([`HttpFacts`], [`HttpOutcome`]) gathered as they go, only when their frontend logs
//! (or sends unique ids), and turned into a [`Entry`] for the formats at logging time, with
//! HAProxy's timers, counts, captures and `%[fetch]` values.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::{Logger, next_request_number};
use crate::config::logging::Capture;
use crate::runtime::balance::QueuePositions;
use crate::runtime::http::Head;
use crate::runtime::logformat::{Arrival, Counts, Entry, Samples, Timers};
use crate::runtime::sample;
use crate::runtime::session::Connected;
use crate::runtime::state::{Backend, Frontend, Server, State};
use crate::runtime::tls::ClientTls;

/// What a TCP-mode session's line shows, gathered by the session as it goes
/// ([`Logger::log_tcp`]); only a frontend that logs traffic has them ([`TcpFacts::gather`]).
#[derive(Debug, Clone)]
pub struct TcpFacts<'a> {
    pub state: &'a State,
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub accepted: Instant,
    /// The wall-clock accept time.
    pub accept_date: SystemTime,
    pub backend: Option<&'a Backend>,
    pub server: Option<&'a Server>,
    /// The session holds a slot of `server` (it connected): counted in the server's
    /// connections until it ends. One that failed to connect, or waited in the server's
    /// queue, holds none.
    pub server_slot: bool,
    /// The server's connection: its peer and the proxy's end.
    pub server_addr: Option<SocketAddr>,
    pub source_addr: Option<SocketAddr>,
    /// Milliseconds queued and connecting; -1: not reached.
    pub queue_ms: i64,
    pub connect_ms: i64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub retries: u32,
    pub redispatched: bool,
    /// Where the session waited in the queues (`%sq`, `%bq`).
    pub queued: QueuePositions,
    /// `%rt`: the session's number, taken when it was accepted.
    pub number: u64,
    /// `bind ... ssl`: the client's TLS handshake took this long (`%Th`), and what it
    /// negotiated (`%sslv`, `%sslc`, `ssl_fc_*`).
    pub handshake_ms: i64,
    pub tls: Option<Arc<ClientTls>>,
    /// A `set-log-level` rule's severity for the line, in place of the target's.
    pub severity: Option<u8>,
}

impl<'a> TcpFacts<'a> {
    /// The server connection made for the session.
    pub fn connected(&mut self, conn: &'a Connected) {
        self.server = Some(&conn.server);
        self.server_slot = true;
        self.server_addr = conn.stream.peer_addr().ok();
        self.source_addr = conn.stream.local_addr().ok();
        self.queue_ms = conn.queue_time.as_millis() as i64;
        self.connect_ms = conn.connect_time.as_millis() as i64;
        (self.retries, self.redispatched) = (conn.retries, conn.redispatched);
        self.queued = conn.queued;
    }

    /// The facts known at accept time, when the frontend logs traffic: boxed, as the
    /// session holds them for its whole life, and a session without a log line holds none.
    pub fn gather(
        state: &'a State,
        fe: &Frontend,
        client: SocketAddr,
        local: SocketAddr,
        accepted: Instant,
    ) -> Option<Box<Self>> {
        // Every session takes its number, logged or not, as every HAProxy stream does.
        let number = next_request_number();
        if !fe.logger.logs_traffic() {
            return None;
        }
        Some(Box::new(TcpFacts {
            number,
            state,
            client,
            local,
            accepted,
            accept_date: SystemTime::now(),
            backend: None,
            server: None,
            server_slot: false,
            server_addr: None,
            source_addr: None,
            queue_ms: -1,
            connect_ms: -1,
            bytes_in: 0,
            bytes_out: 0,
            retries: 0,
            redispatched: false,
            queued: QueuePositions::default(),
            handshake_ms: 0,
            tls: None,
            severity: None,
        }))
    }
}

impl Logger {
    /// Logs a TCP-mode session that ended with termination state `term`; `None`: the
    /// frontend logs no traffic ([`TcpFacts::gather`]).
    pub fn log_tcp(&self, fe: &Frontend, f: Option<&TcpFacts<'_>>, term: &str) {
        let Some(f) = f.filter(|_| self.logs_traffic()) else {
            return;
        };
        // `option dontlognull`: HAProxy logs a stream only if its client sent something
        // (`req->total`), however it ended (refused, reset, timed out, no server...).
        if self.dontlognull && f.bytes_in == 0 {
            return;
        }
        let close = f.accepted.elapsed().as_millis() as i64;
        // Measured from the accept, the client's TLS handshake included, as HAProxy's.
        let hs = f.handshake_ms;
        let connect = if f.connect_ms >= 0 {
            hs + f.queue_ms.max(0) + f.connect_ms
        } else {
            -1
        };
        let timers = Timers {
            handshake: hs,
            queue: if f.queue_ms >= 0 { hs + f.queue_ms } else { -1 },
            connect,
            // In TCP mode, data flows from the connection on.
            data: connect,
            close,
            ..Timers::default()
        };
        // The session itself is no longer counted on its backend and server once it ended,
        // as in HAProxy; a line logged early counts it. `%sc` is the server's connections
        // (HAProxy's `cur_sess`): the session is one of them only when it holds a slot.
        let partial = self.logasap;
        let held = |n: usize| if partial { n } else { n.saturating_sub(1) };
        let counts = Counts {
            process: f.state.cur_conns.load(Relaxed),
            frontend: fe.counters.cur.load(Relaxed),
            backend: f.backend.map_or(0, |b| held(b.counters.cur.load(Relaxed))),
            server: f.server.map_or(0, |s| {
                let cur = s.counters.cur.load(Relaxed);
                if f.server_slot { held(cur) } else { cur }
            }),
            retries: f.retries,
            redispatched: f.redispatched,
            server_queue: f.queued.server as usize,
            backend_queue: f.queued.backend as usize,
        };
        // Declared captures show empty in TCP mode (`{|}`); none allocated when none are.
        let req_caps = vec![None; self.req_captures.len()];
        let resp_caps = vec![None; self.resp_captures.len()];
        let mut entry = Entry {
            backend: f.backend.map_or(fe.name.as_str(), |b| b.name.as_str()),
            server: f.server.map_or("<NOSRV>", |s| s.name.as_str()),
            server_addr: f.server_addr,
            source_addr: f.source_addr,
            timers,
            bytes_out: f.bytes_out,
            bytes_in: f.bytes_in,
            term,
            counts,
            req_captures: Some(&req_caps),
            resp_captures: Some(&resp_caps),
            request_counter: f.number,
            partial,
            ..Entry::at_accept(f.client, f.local, &fe.name, f.accept_date)
        };
        entry.tls = f.tls.as_deref();
        let ctx = sample::Context {
            backend: f.backend,
            tls: f.tls.as_deref(),
            ..sample::Context::new(f.state, fe, f.client, f.local)
        };
        if self.uses_samples() {
            entry.samples = Some(&ctx);
        }
        let id = self
            .line
            .as_ref()
            .filter(|l| l.uses_unique_id())
            .and_then(|_| self.unique_id(&entry));
        entry.unique_id = id.as_deref();
        self.log_traffic(&mut entry, f.severity);
    }
}

/// What an HTTP request's line shows beyond what the request loop keeps anyway, gathered
/// only when the frontend logs traffic or sends a unique id ([`HttpFacts::gather`]).
#[derive(Debug, Clone)]
pub struct HttpFacts {
    /// The frontend logs traffic lines: the other fields are gathered.
    pub logging: bool,
    pub client: SocketAddr,
    pub local: SocketAddr,
    /// The line went already (`option logasap`).
    pub logged: bool,
    /// The line goes while the request is still served (`option logasap`): the request
    /// is still counted on its backend (and its server, with [`HttpFacts::server_slot`]).
    pub early: bool,
    /// The process's connections when the request began (`%ac`).
    pub process_conns: usize,
    /// When the request began (wall clock), its wait for the head included: the
    /// connection's accept, or the end of the previous response on a kept-alive one.
    pub date: SystemTime,
    /// When its first byte (`%Ti`) and its complete head (`%Tq`) came.
    pub arrival: Arrival,
    /// `%rt`.
    pub request_number: u64,
    /// The request head was parsed: its captures are shown (not for `<BADREQ>`).
    pub parsed: bool,
    pub req_captures: Vec<Option<String>>,
    pub resp_captures: Vec<Option<String>>,
    /// Whether the request's and the response's version is 1.1 or later (`capture.req.ver`,
    /// `capture.res.ver`); None until their head was parsed.
    pub request_v11: Option<bool>,
    pub response_v11: Option<bool>,
    /// `capture cookie`'s request cookie (`%CC`) and response cookie (`%CS`).
    pub client_cookie: Option<String>,
    pub server_cookie: Option<String>,
    pub unique_id: Option<String>,
    pub server_addr: Option<SocketAddr>,
    pub source_addr: Option<SocketAddr>,
    /// The request holds a slot of its server when it is logged (the request loop says
    /// so): counted in the server's connections. One that failed to connect, or waited
    /// in the server's queue, holds none.
    pub server_slot: bool,
    /// Bytes the client sent (head and body).
    pub bytes_in: u64,
    pub retries: u32,
    pub redispatched: bool,
    /// Where the request waited in the queues (`%sq`, `%bq`).
    pub queued: QueuePositions,
    /// For `%[fetch]` at logging time (only kept when a format has one): the process and
    /// the request head (for `method`; as in HAProxy, the response is gone by then and
    /// `status` shows `-`).
    pub state: Option<Arc<State>>,
    pub request_head: Option<Head>,
    /// `bind ... ssl`: what the client connection's TLS negotiated (`%sslv`, `ssl_fc_*`),
    /// and on its first request the handshake's milliseconds (`%Th`), which the arrival's
    /// idle time includes.
    pub tls: Option<Arc<ClientTls>>,
    pub handshake_ms: i64,
    /// A status of 0 (no final response) is logged as 0, not -1: the log of a connection
    /// with no request of its own (an HTTP/2 connection error: HAProxy's session log without
    /// a stream), or of a request that got an interim response (HAProxy resets its
    /// transaction's status to 0 for the final one).
    pub status_zero_shown: bool,
}

impl HttpFacts {
    /// The facts of a request that arrived as `arrival` (measured whenever the frontend
    /// logs), gathered once its head arrived (or failed to): a kept-alive connection waiting
    /// for its next request holds none, and a frontend that neither logs traffic nor sends
    /// unique ids allocates none.
    pub fn gather(
        state: &Arc<State>,
        fe: &Frontend,
        client: SocketAddr,
        local: SocketAddr,
        arrival: Arrival,
    ) -> Option<Box<Self>> {
        let logging = fe.logger.logs_traffic();
        if !logging && !fe.logger.wants_unique_id() {
            return None;
        }
        let now = SystemTime::now();
        Some(Box::new(HttpFacts {
            logging,
            client,
            local,
            logged: false,
            early: false,
            process_conns: if logging {
                state.cur_conns.load(Relaxed)
            } else {
                0
            },
            date: if logging {
                now.checked_sub(arrival.head).unwrap_or(now)
            } else {
                UNIX_EPOCH
            },
            arrival,
            request_number: 0,
            parsed: false,
            req_captures: Vec::new(),
            resp_captures: Vec::new(),
            request_v11: None,
            response_v11: None,
            client_cookie: None,
            server_cookie: None,
            unique_id: None,
            server_addr: None,
            source_addr: None,
            server_slot: false,
            bytes_in: 0,
            retries: 0,
            redispatched: false,
            queued: QueuePositions::default(),
            state: fe.logger.uses_samples().then(|| state.clone()),
            request_head: None,
            tls: None,
            handshake_ms: 0,
            status_zero_shown: false,
        }))
    }

    /// What `%[fetch]` expressions read for this request, when a format has them.
    fn fetcher<'a>(
        &'a self,
        fe: &'a Frontend,
        backend: Option<&'a Backend>,
        client: SocketAddr,
    ) -> Option<sample::Context<'a>> {
        Some(sample::Context {
            backend,
            request: self.request_head.as_ref(),
            tls: self.tls.as_deref(),
            ..sample::Context::new(self.state.as_deref()?, fe, client, self.local)
        })
    }

    /// A parsed request: its number (`%rt`, which every request takes) and its captured
    /// headers. Its unique id is made later ([`HttpFacts::unique_id_for`]).
    pub fn request(&mut self, fe: &Frontend, head: &Head, number: u64) {
        let logger = &fe.logger;
        self.parsed = true;
        self.request_number = number;
        self.req_captures = capture(logger.request_captures(), head);
        self.request_v11 = Some(version_11(head));
        if let Some(c) = logger.cookie_capture() {
            self.client_cookie = capture_cookie(c, head, "cookie");
        }
        if self.state.is_some() && logger.line.as_ref().is_some_and(|l| l.uses_samples()) {
            self.request_head = Some(head.clone());
        }
    }

    /// The request's unique id, which goes to the server in `unique-id-header` (after the
    /// rules' headers, see `http::add_headers`): made as HAProxy's `http_process_request`
    /// makes it, once all the request rules ran, from `head` as they left it and the request
    /// line as it came (`line`, or `head`'s when the loop kept none). A request the proxy
    /// answered itself never gets here: its id is made when it is logged, without its
    /// headers (see [`Logger::log_http`]).
    pub fn unique_id_for(&mut self, fe: &Frontend, head: &Head, line: &str) -> Option<&str> {
        if self.unique_id.is_none() && self.parsed && fe.logger.wants_unique_id() {
            let built;
            let line = if line.is_empty() {
                built = format!("{} {} {}", head.first[0], head.first[1], head.first[2]);
                &built
            } else {
                line
            };
            let fetcher = self.state.as_deref().map(|state| sample::Context {
                request: Some(head),
                tls: self.tls.as_deref(),
                ..sample::Context::new(state, fe, self.client, self.local)
            });
            let entry = Entry {
                request_counter: self.request_number,
                request: line,
                samples: fetcher.as_ref().map(|f| f as &dyn Samples),
                ..Entry::at_accept(self.client, self.local, &fe.name, self.date)
            };
            self.unique_id = fe.logger.unique_id(&entry);
        }
        self.unique_id.as_deref()
    }

    /// The server's response head: its captured headers.
    pub fn response(&mut self, fe: &Frontend, head: &Head) {
        if self.logging {
            self.resp_captures = capture(fe.logger.response_captures(), head);
            self.response_v11 = Some(version_11(head));
        }
        if let Some(c) = fe.logger.cookie_capture() {
            self.server_cookie = capture_cookie(c, head, "set-cookie");
        }
    }

    /// Whether the line goes now, as the response head was forwarded (`option logasap`);
    /// the caller then marks it [`HttpFacts::logged`], not to log it again at the end.
    pub fn asap(&self, fe: &Frontend) -> bool {
        fe.logger.logs_asap() && !self.logged
    }

    /// The server connection the request goes on.
    pub fn connected(&mut self, stream: &tokio::net::TcpStream) {
        if self.logging {
            self.server_addr = stream.peer_addr().ok();
            self.source_addr = stream.local_addr().ok();
        }
    }
}

/// Whether `head`'s version is 1.1 or later, as HAProxy's `HTTP_MSGF_VER_11` says: an
/// HTTP/2 message is, an HTTP/1 one from `HTTP/1.1` on.
fn version_11(head: &Head) -> bool {
    let version = if head.first[0].starts_with("HTTP/") {
        &head.first[0]
    } else {
        &head.first[2]
    };
    head.h2.is_some() || version.strip_prefix("HTTP/").is_some_and(|v| v >= "1.1")
}

/// The values of `captures` in `head`: each header's last occurrence, cut to its length.
fn capture(captures: &[Capture], head: &Head) -> Vec<Option<String>> {
    captures
        .iter()
        .map(|c| {
            let value = head
                .headers
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(&c.name))?;
            Some(crate::bytestr::cut(&value.1, c.len))
        })
        .collect()
}

/// The first cookie of `head`'s `header` (`cookie` or `set-cookie`) whose name starts with
/// `c`'s, as HAProxy captures it: `name=value`, the blanks around `=` left out, cut to the
/// capture's length. A `set-cookie` holds one cookie, then its attributes.
fn capture_cookie(c: &Capture, head: &Head, header: &str) -> Option<String> {
    let per_header = header == "set-cookie";
    let values = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(header));
    values
        .flat_map(|(_, v)| {
            let cookies = v.split(';');
            cookies.take(if per_header { 1 } else { usize::MAX })
        })
        .find_map(|cookie| {
            let (name, value) = match cookie.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (cookie.trim(), None),
            };
            let text = match value {
                Some(v) => format!("{name}={v}"),
                None => name.to_string(),
            };
            if name.is_empty() || !text.starts_with(c.name.as_str()) {
                return None;
            }
            Some(crate::bytestr::cut(&text, c.len))
        })
}

/// An HTTP request's outcome as the request loop knows it ([`Logger::log_http`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpOutcome<'a> {
    pub client: SocketAddr,
    pub backend: Option<&'a Backend>,
    /// `<NOSRV>`, `<STATS>` or the server's name.
    pub server: &'a str,
    /// The request line, or `<BADREQ>`.
    pub line: &'a str,
    pub started: Instant,
    /// 0: none (a request dropped unanswered), logged as -1 (as 0 when `status_zero_shown`).
    pub status: u16,
    pub bytes_out: u64,
    /// Milliseconds to queue, connect, get the response; -1: the request did not get
    /// there. `request_ms`: -1 or 0, the time to receive the request being its
    /// [`Arrival`]'s.
    pub request_ms: i64,
    pub queue_ms: i64,
    pub connect_ms: i64,
    pub response_ms: i64,
    pub term: &'a str,
    /// The syslog level a rule's `set-log-level` gave the line (None: the usual one).
    pub severity: Option<u8>,
}

impl Logger {
    /// Logs one HTTP request.
    pub fn log_http(&self, fe: &Frontend, facts: &HttpFacts, o: &HttpOutcome<'_>) {
        if !self.logs_traffic() {
            return;
        }
        // HAProxy's timers are times since the start; the loop keeps durations.
        let mut timers = Timers::after_phases(
            facts.arrival,
            [o.request_ms, o.queue_ms, o.connect_ms, o.response_ms],
            o.started.elapsed().as_millis() as i64,
        );
        if facts.handshake_ms > 0 {
            timers.handshake = facts.handshake_ms;
            timers.idle = (timers.idle - facts.handshake_ms).max(0);
        }
        let server = o.backend.and_then(|b| b.server(o.server));
        // With logasap every line marks its total time and bytes as partial (HAProxy
        // drops the end-of-session items from what it logs).
        let partial = self.logasap;
        let held = |n: usize| if facts.early { n } else { n.saturating_sub(1) };
        // `%sc`: the server's connections (HAProxy's `cur_sess`), the request's own
        // only when it holds a slot.
        let counts = Counts {
            process: facts.process_conns,
            frontend: fe.counters.cur.load(Relaxed),
            backend: o.backend.map_or(0, |b| held(b.counters.cur.load(Relaxed))),
            server: server.map_or(0, |s| {
                let cur = s.counters.cur.load(Relaxed);
                if facts.server_slot { held(cur) } else { cur }
            }),
            retries: facts.retries,
            redispatched: facts.redispatched,
            server_queue: facts.queued.server as usize,
            backend_queue: facts.queued.backend as usize,
        };
        let mut entry = Entry {
            backend: o.backend.map_or(fe.name.as_str(), |b| b.name.as_str()),
            server: o.server,
            server_addr: facts.server_addr,
            source_addr: facts.source_addr,
            timers,
            status: (o.status != 0 || facts.status_zero_shown).then_some(o.status),
            // A request that could not be parsed is logged by HAProxy without a stream:
            // no bytes counted, no unique id.
            bytes_out: if facts.parsed { o.bytes_out } else { 0 },
            bytes_in: facts.bytes_in,
            term: o.term,
            counts,
            request: o.line,
            req_captures: facts.parsed.then_some(facts.req_captures.as_slice()),
            client_cookie: facts.client_cookie.as_deref(),
            server_cookie: facts.server_cookie.as_deref(),
            resp_captures: facts.parsed.then_some(facts.resp_captures.as_slice()),
            unique_id: facts.unique_id.as_deref(),
            request_counter: facts.request_number,
            partial,
            request_date: facts.arrival.first_byte_date(facts.date),
            tls: facts.tls.as_deref(),
            ..Entry::at_accept(o.client, facts.local, &fe.name, facts.date)
        };
        let kept = sample::Kept {
            line: facts.parsed.then_some(o.line),
            req_captures: &facts.req_captures,
            resp_captures: &facts.resp_captures,
            request_v11: facts.request_v11,
            response_v11: facts.response_v11,
        };
        let fetcher = (facts.fetcher(fe, o.backend, o.client)).map(|f| sample::Context {
            kept: Some(&kept),
            ..f
        });
        entry.samples = fetcher.as_ref().map(|f| f as &dyn Samples);
        let id;
        let headless;
        let method_only;
        if facts.parsed
            && entry.unique_id.is_none()
            && self.line.as_ref().is_some_and(|l| l.uses_unique_id())
        {
            // Made only now for a request the proxy answered itself: as HAProxy, which
            // makes it while logging, its headers are gone by then, its method not.
            let method = match &facts.request_head {
                Some(head) => Some(head.first[0].as_str()),
                None => o.line.split(' ').next().filter(|m| !m.starts_with('<')),
            };
            method_only = method.map(Head::method_only);
            headless = fetcher.map(|f| sample::Context {
                request: method_only.as_ref(),
                request_sent: true,
                ..f
            });
            entry.samples = headless.as_ref().map(|f| f as &dyn Samples);
            id = self.unique_id(&entry);
            entry.unique_id = id.as_deref();
            entry.samples = fetcher.as_ref().map(|f| f as &dyn Samples);
        }
        self.log_traffic(&mut entry, o.severity);
    }
}
