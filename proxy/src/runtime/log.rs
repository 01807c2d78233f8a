//! Log lines to syslog targets (`log /dev/log local0`, `log 127.0.0.1:514 len 2048 format
//! rfc5424 sample 1:10 local1 notice`, `log stdout ...`), framed byte for byte as HAProxy 2.6
//! frames them.
//!
//! A frontend's [`Logger`] holds its targets and its compiled formats
//! ([`crate::config::logging::Compiled`]): [`Logger::log_traffic`] renders one traffic line
//! into a per-thread buffer reused from line to line and sends it to every target that wants
//! it, each with its own header (`format`), length limit (`len`), severity (`minlevel`) and
//! sampling (`sample`). Losing a log line never blocks or fails traffic. A frontend with
//! targets but no traffic format logs HAProxy's `Connect from` line for each stream instead
//! ([`Logger::log_connect`]).
//!
//! Sessions hand what they know to the logger through [`TcpFacts`] and [`HttpFacts`]
//! ([`facts`]).

use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use super::logformat::{Entry, LogFormat};
use super::state::Frontend;
use crate::config::logging::{Capture, ProxyLog};

mod facts;
pub mod syslog;
use crate::config::logging::RingLog;
use crate::config::model::{Global, LogDest, LogTarget, Proxy, SyslogFormat};
pub use facts::{HttpFacts, HttpOutcome, TcpFacts};

pub const LOG_INFO: u8 = 6;
pub const LOG_ERR: u8 = 3;
pub const LOG_NOTICE: u8 = 5;
pub const LOG_WARNING: u8 = 4;
pub const LOG_ALERT: u8 = 1;
pub const LOG_EMERG: u8 = 0;

/// Sends lines to a proxy's log targets.
#[derive(Debug)]
pub struct Logger {
    targets: Vec<Target>,
    tag: String,
    /// `log-send-hostname`.
    host: Option<String>,
    /// The traffic line's format; None: the proxy logs no traffic.
    line: Option<Arc<LogFormat>>,
    /// RFC 5424 structured data, followed by its separator.
    sd: Arc<LogFormat>,
    unique_id: Option<Arc<LogFormat>>,
    /// `error-log-format`, for connections that fail before becoming sessions.
    error: Option<Arc<LogFormat>>,
    unique_id_header: Option<String>,
    req_captures: Vec<Capture>,
    resp_captures: Vec<Capture>,
    /// `capture cookie`.
    cookie_capture: Option<Capture>,
    dontlognull: bool,
    dontlog_normal: bool,
    separate_errors: bool,
    logasap: bool,
    /// Traffic lines logged so far (`%lc`).
    logged: AtomicU64,
}

#[derive(Debug)]
struct Target {
    conf: LogTarget,
    sink: Option<Sink>,
    /// A `log ring@NAME` line's ring, found once the rings are installed.
    ring: Option<RingRef>,
    /// Lines offered so far, for `sample`.
    offered: AtomicU64,
}

/// A ring named by a `log` line, looked up when first written to (the loggers are made
/// before the rings are installed).
#[derive(Debug)]
struct RingRef {
    name: String,
    ring: std::sync::OnceLock<Arc<super::ring::Ring>>,
}

impl RingRef {
    fn get(&self) -> Option<&Arc<super::ring::Ring>> {
        if let Some(ring) = self.ring.get() {
            return Some(ring);
        }
        let found = super::ring::find(&self.name)?;
        Some(self.ring.get_or_init(|| found))
    }
}

#[derive(Debug)]
enum Sink {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

thread_local! {
    /// The rendered message and the datagram, reused from line to line.
    static BUFFERS: RefCell<(String, String, Vec<u8>)> = const {
        RefCell::new((String::new(), String::new(), Vec::new()))
    };
}

/// A connection that failed before it became a session: HAProxy's words for why, and
/// whether it is a "null" connection `option dontlognull` leaves out. HAProxy's
/// `session_kill_embryonic` leaves out a client that closed or aborted during its PROXY
/// header or TLS handshake (`CO_ER_*_EMPTY`, `CO_ER_*_ABORT`), and one that timed out
/// there (its error is set only after that test); a client that sent something refused is
/// logged.
#[derive(Debug, Clone, Copy)]
pub struct EarlyFailure {
    pub message: &'static str,
    pub null: bool,
}

impl EarlyFailure {
    pub fn null(message: &'static str) -> EarlyFailure {
        EarlyFailure {
            message,
            null: true,
        }
    }

    pub fn sent(message: &'static str) -> EarlyFailure {
        EarlyFailure {
            message,
            null: false,
        }
    }
}

impl Logger {
    /// A logger for lines that are not traffic (health checks, alerts).
    pub fn new(targets: &[LogTarget], tag: Option<&str>) -> Self {
        Logger {
            targets: targets.iter().map(Target::open).collect(),
            tag: tag.unwrap_or("haproxy").to_string(),
            host: None,
            line: None,
            sd: default_sd(),
            unique_id: None,
            error: None,
            unique_id_header: None,
            req_captures: Vec::new(),
            resp_captures: Vec::new(),
            cookie_capture: None,
            dontlognull: false,
            dontlog_normal: false,
            separate_errors: false,
            logasap: false,
            logged: AtomicU64::new(0),
        }
    }

    /// The logger of a proxy with its checked configuration: its formats, captures, tag.
    pub fn for_proxy(conf: &Proxy, global: &Global) -> Self {
        let log: &ProxyLog = &conf.log;
        let tag = log.tag.as_deref().or(global.log_tag.as_deref());
        let sd = log.compiled.sd.as_ref().map(|f| {
            let mut f = LogFormat::clone(f);
            f.push_separator();
            Arc::new(f)
        });
        Logger {
            host: global.log_send_hostname.clone(),
            line: log.compiled.line.clone(),
            sd: sd.unwrap_or_else(default_sd),
            unique_id: log.compiled.unique_id.clone(),
            error: log.compiled.error.clone(),
            unique_id_header: log.unique_id_header.clone(),
            req_captures: log.req_captures.clone(),
            resp_captures: log.resp_captures.clone(),
            cookie_capture: log.cookie_capture.clone(),
            dontlognull: conf.options.dontlognull,
            dontlog_normal: log.dontlog_normal,
            separate_errors: log.separate_errors,
            logasap: log.logasap,
            ..Logger::new(&conf.logs, tag).with_rings(&log.rings)
        }
    }

    /// Adds the targets of `log ring@NAME` lines.
    pub fn with_rings(mut self, rings: &[RingLog]) -> Self {
        self.targets.extend(rings.iter().map(Target::ring));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Whether traffic lines are logged: targets and a format. When not, sessions skip
    /// gathering what a line would show.
    pub fn logs_traffic(&self) -> bool {
        self.line.is_some() && !self.targets.is_empty()
    }

    /// Whether the line or the unique id evaluates `%[fetch]` expressions.
    fn uses_samples(&self) -> bool {
        let line = self.line.as_ref().is_some_and(|l| l.uses_samples());
        line || self.unique_id.as_ref().is_some_and(|u| u.uses_samples())
    }

    /// Whether a target may show the structured data: an RFC 5424 one, or a ring (whose
    /// own format decides).
    fn wants_structured_data(&self) -> bool {
        (self.targets.iter()).any(|t| t.conf.format == SyslogFormat::Rfc5424 || t.ring.is_some())
    }

    /// Whether traffic is logged as soon as possible (`option logasap`).
    pub fn logs_asap(&self) -> bool {
        self.logasap && self.logs_traffic()
    }

    /// Whether requests need a unique id: for the line or for a header to the server.
    pub fn wants_unique_id(&self) -> bool {
        self.unique_id.is_some()
            && (self.unique_id_header.is_some()
                || self
                    .line
                    .as_ref()
                    .is_some_and(|l| l.uses_unique_id() && !self.targets.is_empty()))
    }

    /// The unique id for `entry` (`unique-id-format`), if one is configured.
    pub fn unique_id(&self, entry: &Entry<'_>) -> Option<String> {
        let format = self.unique_id.as_ref()?;
        let mut id = String::new();
        format.render(entry, &mut id);
        Some(id)
    }

    /// `unique-id-header`: the header carrying the unique id to the server.
    pub fn unique_id_header(&self) -> Option<&str> {
        self.unique_id_header.as_deref()
    }

    /// `capture request header`s, in declaration order.
    pub fn request_captures(&self) -> &[Capture] {
        &self.req_captures
    }

    /// `capture response header`s, in declaration order.
    pub fn response_captures(&self) -> &[Capture] {
        &self.resp_captures
    }

    /// `capture cookie`, when the traffic lines are logged.
    pub fn cookie_capture(&self) -> Option<&Capture> {
        self.cookie_capture.as_ref().filter(|_| self.logs_traffic())
    }

    /// Logs one connection or request, unless `option dontlognull` leaves out a connection
    /// on which the client sent nothing and nothing failed (TCP mode has its own rule: see
    /// [`Logger::log_tcp`]; HTTP's bad requests theirs, in `http::refuse_request`).
    /// `severity`: the line's syslog level when a rule's `set-log-level` gave one.
    pub fn log_traffic(&self, entry: &mut Entry<'_>, severity: Option<u8>) {
        let Some(format) = self.line.as_ref().filter(|_| !self.targets.is_empty()) else {
            return;
        };
        if self.dontlognull && entry.bytes_in == 0 && entry.term.starts_with("--") {
            return;
        }
        let error = is_error(entry);
        if self.dontlog_normal && !error {
            return;
        }
        let level = match severity {
            Some(severity) => severity,
            None if error && self.separate_errors => LOG_ERR,
            None => LOG_INFO,
        };
        entry.log_counter = self.logged.fetch_add(1, Relaxed);
        BUFFERS.with_borrow_mut(|(msg, sd, dgram)| {
            msg.clear();
            format.render(entry, msg);
            sd.clear();
            if self.wants_structured_data() {
                self.sd.render(entry, sd);
            }
            self.emit(level, msg, sd, dgram);
        });
    }

    /// A connection refused before it became a session (an invalid PROXY header on an
    /// `accept-proxy` bind), logged as HAProxy logs it when the proxy logs traffic:
    /// `error-log-format`, else `CLIENT [DATE] FRONTEND/BIND: MESSAGE`.
    pub fn log_conn_error(
        &self,
        fe: &Frontend,
        client: SocketAddr,
        local: SocketAddr,
        error: &super::proxyproto::ProxyHeaderError,
    ) {
        use super::proxyproto::ProxyHeaderError as E;
        let failure = match error {
            E::Missing => EarlyFailure::sent(
                "Received something which does not look like a PROXY protocol header",
            ),
            E::Malformed => EarlyFailure::sent("Received an invalid PROXY protocol header"),
            E::Timeout => EarlyFailure::null("Timeout while waiting for PROXY protocol header"),
            E::Closed => {
                EarlyFailure::null("Connection closed while waiting for PROXY protocol header")
            }
        };
        self.log_conn_failure(fe, client, local, failure);
    }

    /// Logs a connection that failed before becoming a session (a PROXY header, a TLS
    /// handshake), with HAProxy's words, unless `option dontlognull` leaves it out.
    pub fn log_conn_failure(
        &self,
        fe: &Frontend,
        client: SocketAddr,
        local: SocketAddr,
        failure: EarlyFailure,
    ) {
        if self.targets.is_empty() || self.line.is_none() && self.error.is_none() {
            return;
        }
        if failure.null && self.dontlognull {
            return;
        }
        let message = failure.message;
        let mut entry = Entry {
            term: "PR--",
            ..Entry::at_accept(client, local, &fe.name, SystemTime::now())
        };
        entry.log_counter = self.logged.fetch_add(1, Relaxed);
        BUFFERS.with_borrow_mut(|(msg, sd, dgram)| {
            msg.clear();
            match &self.error {
                Some(format) => format.render(&entry, msg),
                None => {
                    // HAProxy numbers a frontend's listeners from 1.
                    let bind = fe
                        .conf
                        .binds
                        .iter()
                        .position(|b| {
                            b.addr.port() == local.port()
                                && (b.addr.ip() == local.ip() || b.addr.ip().is_unspecified())
                        })
                        .map_or(1, |i| i + 1);
                    use std::fmt::Write as _;
                    let _ = write!(msg, "{}:{} [", client.ip(), client.port());
                    super::logformat::accept_date(entry.accept_date, msg);
                    let _ = write!(msg, "] {}/{bind}: {message}", fe.name);
                }
            }
            sd.clear();
            if self.wants_structured_data() {
                self.sd.render(&entry, sd);
            }
            self.emit(LOG_INFO, msg, sd, dgram);
        });
    }

    /// HAProxy's line for each stream of a frontend that logs (`log` targets) without a
    /// traffic format (no `option httplog|tcplog`, no `log-format`): sent when the stream
    /// starts, as its `strm_log`-less `stream_new` does: once per TCP connection (after a
    /// TLS handshake), once per HTTP request. `src` and `dst` as the socket gave them (an
    /// IPv4 client of an IPv6 listener shows as `::ffff:a.b.c.d`); `dst` asked only then.
    pub fn log_connect(
        &self,
        fe: &str,
        http: bool,
        src: SocketAddr,
        dst: impl FnOnce() -> SocketAddr,
    ) {
        if self.line.is_some() || self.targets.is_empty() {
            return;
        }
        let dst = dst();
        let mode = if http { "HTTP" } else { "TCP" };
        self.send(
            LOG_INFO,
            &format!(
                "Connect from {}:{} to {}:{} ({fe}/{mode})",
                src.ip(),
                src.port(),
                dst.ip(),
                dst.port()
            ),
        );
    }

    /// Sends `msg` at `level` to every target that wants it.
    pub fn send(&self, level: u8, msg: &str) {
        BUFFERS.with_borrow_mut(|(_, sd, dgram)| {
            sd.clear();
            sd.push_str("- ");
            self.emit(level, msg, sd, dgram);
        });
    }

    fn emit(&self, level: u8, msg: &str, sd: &str, dgram: &mut Vec<u8>) {
        let now = SystemTime::now();
        for t in &self.targets {
            if level > t.conf.level || !t.sampled_in() {
                continue;
            }
            if let Some(ring) = &t.ring {
                self.write_ring(t, ring, level, msg, sd);
                continue;
            }
            dgram.clear();
            self.header(&t.conf, level.max(t.conf.min_level), now, sd, dgram);
            // Structured data that does not fit whole is left out, and the message with
            // it, as HAProxy does: a cut one would not parse.
            if !(t.conf.format == SyslogFormat::Rfc5424 && dgram.len() >= t.conf.max_len) {
                // With every byte the message's values came with (see `bytestr`).
                crate::bytestr::push_bytes(dgram, msg);
            } else {
                dgram.truncate(dgram.len() - sd.len());
            }
            // HAProxy cuts the header and message to `len`, the line feed after; a raw
            // line, and any line to standard output or error (its file descriptor sink),
            // keeps room for the line feed within `len`.
            let to_stream = matches!(t.conf.dest, LogDest::Stdout | LogDest::Stderr);
            let max = match t.conf.format {
                _ if to_stream => t.conf.max_len - 1,
                SyslogFormat::Raw => t.conf.max_len - 1,
                _ => t.conf.max_len,
            };
            dgram.truncate(max);
            dgram.push(b'\n');
            t.send(dgram);
        }
    }

    /// Stores a line in a ring, with the line's metadata for the ring's format: as
    /// HAProxy, the message is cut to the `log` line's `len`, the header is the ring's.
    fn write_ring(&self, t: &Target, ring: &RingRef, level: u8, msg: &str, sd: &str) {
        let Some(ring) = ring.get() else {
            return;
        };
        let pid = std::process::id().to_string();
        let sd = sd.strip_suffix(' ').unwrap_or(sd);
        let meta = syslog::Meta {
            prio: false,
            time: b"",
            host: self.host.as_deref().unwrap_or_default().as_bytes(),
            tag: self.tag.as_bytes(),
            pid: pid.as_bytes(),
            msgid: b"",
            sd: if sd == "-" { b"" } else { sd.as_bytes() },
        };
        let mut bytes = Vec::with_capacity(msg.len());
        crate::bytestr::push_bytes(&mut bytes, msg);
        bytes.truncate(t.conf.max_len);
        ring.write(level.max(t.conf.min_level), t.conf.facility, &meta, &bytes);
    }

    /// The header `format` puts before the message, written into `out`.
    fn header(&self, t: &LogTarget, level: u8, now: SystemTime, sd: &str, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let pri = u16::from(t.facility) * 8 + u16::from(level);
        let pid = std::process::id();
        let tag = &self.tag;
        let _ = match t.format {
            SyslogFormat::Default => match &self.host {
                Some(host) => write!(out, "<{pri}>{} {host} {tag}[{pid}]: ", SyslogTime(now)),
                None => write!(out, "<{pri}>{} {tag}[{pid}]: ", SyslogTime(now)),
            },
            SyslogFormat::Local => write!(out, "<{pri}>{} {tag}[{pid}]: ", SyslogTime(now)),
            SyslogFormat::Rfc3164 => {
                let host = self.host.as_deref().unwrap_or("localhost");
                write!(out, "<{pri}>{} {host} {tag}[{pid}]: ", SyslogTime(now))
            }
            SyslogFormat::Rfc5424 => {
                let host = self.host.as_deref().unwrap_or("-");
                write!(out, "<{pri}>1 {} {host} {tag} {pid} - {sd}", IsoTime(now))
            }
            SyslogFormat::Short => write!(out, "<{level}>"),
            SyslogFormat::Raw => Ok(()),
            SyslogFormat::Iso => write!(out, "{} ", IsoTime(now)),
            SyslogFormat::Timed => write!(out, "<{level}>{} ", IsoTime(now)),
            SyslogFormat::Priority => write!(out, "<{pri}>"),
        };
    }
}

/// Whether a session counts as an error for `dontlog-normal` and `log-separate-errors`, as
/// HAProxy decides: redispatched, ended by anything but the client or hapx itself (`-`, `L`),
/// retried, or answered with a 5xx status.
fn is_error(e: &Entry<'_>) -> bool {
    let cause = e.term.as_bytes().first().copied().unwrap_or(b'-');
    e.counts.redispatched
        || !matches!(cause, b'-' | b'L')
        || (cause == b'-' && e.counts.retries > 0)
        || e.status.is_some_and(|s| s >= 500)
}

/// RFC 5424's structured data when `log-format-sd` is not set: `-`, then the separator.
fn default_sd() -> Arc<LogFormat> {
    static SD: std::sync::OnceLock<Arc<LogFormat>> = std::sync::OnceLock::new();
    SD.get_or_init(|| {
        let mut f = LogFormat::compile("-", crate::config::model::Mode::Tcp)
            .expect("the default structured data compiles");
        f.push_separator();
        Arc::new(f)
    })
    .clone()
}

impl Target {
    fn open(conf: &LogTarget) -> Target {
        let sink = match &conf.dest {
            LogDest::Unix(_) => UnixDatagram::unbound().ok().map(Sink::Unix),
            LogDest::Udp(a) => {
                let any = if a.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
                UdpSocket::bind(any).ok().map(Sink::Udp)
            }
            LogDest::Stdout | LogDest::Stderr => None,
        };
        if let Some(s) = &sink {
            let _ = match s {
                Sink::Unix(u) => u.set_nonblocking(true),
                Sink::Udp(u) => u.set_nonblocking(true),
            };
        }
        Target {
            conf: conf.clone(),
            sink,
            ring: None,
            offered: AtomicU64::new(0),
        }
    }

    fn ring(log: &RingLog) -> Target {
        Target {
            conf: log.target.clone(),
            sink: None,
            ring: Some(RingRef {
                name: log.ring.clone(),
                ring: std::sync::OnceLock::new(),
            }),
            offered: AtomicU64::new(0),
        }
    }

    /// Sends a received message (`log-forward`) with its own metadata, as HAProxy's
    /// `process_send_log`: a message without a priority passes every level filter and
    /// takes the target's facility and minimum level.
    fn relay(&self, received: &syslog::Received<'_>, now: SystemTime, out: &mut Vec<u8>) {
        let level = received.level;
        if level.is_some_and(|l| l > self.conf.level) || !self.sampled_in() {
            return;
        }
        let level = level.map_or(self.conf.min_level, |l| l.max(self.conf.min_level));
        let facility = received.facility.unwrap_or(self.conf.facility);
        let mut message = received.message;
        while let [rest @ .., b'\n' | 0] = message {
            message = rest;
        }
        if let Some(ring) = &self.ring {
            if let Some(ring) = ring.get() {
                let cut = &message[..message.len().min(self.conf.max_len)];
                ring.write(level, facility, &received.meta, cut);
            }
            return;
        }
        out.clear();
        let mut header = syslog::Header::new(out);
        let meta = &received.meta;
        syslog::header_elements(self.conf.format, level, facility, meta, now, &mut header);
        let to_stream = matches!(self.conf.dest, LogDest::Stdout | LogDest::Stderr);
        let max = if to_stream {
            self.conf.max_len - 1
        } else {
            self.conf.max_len
        };
        header.cut(message, max);
        out.push(b'\n');
        self.send(out);
    }

    /// Whether `sample` lets the next line through: line n (from 1, cycling over the
    /// sample size) goes when a range holds n.
    fn sampled_in(&self) -> bool {
        let Some(sample) = &self.conf.sample else {
            return true;
        };
        let n = (self.offered.fetch_add(1, Relaxed) % u64::from(sample.size)) as u32 + 1;
        sample.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
    }

    fn send(&self, dgram: &[u8]) {
        use std::io::Write as _;
        match (&self.conf.dest, &self.sink) {
            (LogDest::Unix(path), Some(Sink::Unix(u))) => {
                let _ = u.send_to(dgram, path);
            }
            (LogDest::Udp(addr), Some(Sink::Udp(u))) => {
                let _ = u.send_to(dgram, addr);
            }
            (LogDest::Stdout, _) => {
                let _ = std::io::stdout().write_all(dgram);
            }
            (LogDest::Stderr, _) => {
                let _ = std::io::stderr().write_all(dgram);
            }
            _ => {}
        }
    }
}

/// The targets of a `log-forward` section, which received syslog messages are sent to.
#[derive(Debug)]
pub struct Relay {
    targets: Vec<Target>,
}

impl Relay {
    pub fn new(logs: &[LogTarget], rings: &[RingLog]) -> Relay {
        let targets = logs.iter().map(Target::open);
        Relay {
            targets: targets.chain(rings.iter().map(Target::ring)).collect(),
        }
    }

    /// Reads one received message and sends it to every target that wants it.
    pub fn send(&self, message: &[u8]) {
        let received = syslog::parse_message(message);
        let now = SystemTime::now();
        BUFFERS.with_borrow_mut(|(_, _, out)| {
            for t in &self.targets {
                t.relay(&received, now, out);
            }
        });
    }
}

/// Month names as HAProxy's dates write them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Local time (seconds since the epoch) as HAProxy's logs and runtime dumps write a date:
/// `26/Nov/2026:04:11:27`.
#[derive(Debug, Clone, Copy)]
pub struct LocalDate(pub u64);

impl std::fmt::Display for LocalDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tm = broken_down(self.0, true);
        write!(
            f,
            "{:02}/{}/{:04}:{:02}:{:02}:{:02}",
            tm.tm_mday,
            MONTHS[tm.tm_mon.clamp(0, 11) as usize],
            tm.tm_year + 1900,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

/// Local time as syslog wants it: `Nov 25 20:11:02`.
pub(super) struct SyslogTime(pub(super) SystemTime);

impl std::fmt::Display for SyslogTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tm = broken_down(epoch_secs(self.0), true);
        write!(
            f,
            "{} {:2} {:02}:{:02}:{:02}",
            MONTHS[tm.tm_mon.clamp(0, 11) as usize],
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

/// Local time as RFC 5424 wants it: `2026-11-26T03:13:18.481646+00:00`.
pub(super) struct IsoTime(pub(super) SystemTime);

impl std::fmt::Display for IsoTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tm = broken_down(epoch_secs(self.0), true);
        let micros = self
            .0
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_micros();
        let off = tm.tm_gmtoff / 60;
        let sign = if off < 0 { '-' } else { '+' };
        write!(
            f,
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}{sign}{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            off.abs() / 60,
            off.abs() % 60
        )
    }
}

pub(super) fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// `secs` since the epoch as local time (`local`) or UTC.
pub fn broken_down(secs: u64, local: bool) -> libc::tm {
    let secs = secs as libc::time_t;
    // SAFETY: zeroed is a valid libc::tm; localtime_r/gmtime_r only write into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    unsafe {
        if local {
            libc::localtime_r(&secs, &mut tm);
        } else {
            libc::gmtime_r(&secs, &mut tm);
        }
    }
    tm
}

/// This machine's host name (`%H`, `log-send-hostname` without a name).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // or the last byte stays 0.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The host name, looked up once.
pub fn cached_hostname() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(hostname)
}

/// The request counter behind `%rt` (HAProxy's `global.req_count`).
pub fn next_request_number() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    COUNT.fetch_add(1, Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::LogSample;

    fn target(format: SyslogFormat, max_len: usize) -> LogTarget {
        LogTarget {
            dest: LogDest::Stdout,
            facility: 16,
            level: 7,
            min_level: 0,
            max_len,
            format,
            sample: None,
        }
    }

    fn header(format: SyslogFormat) -> String {
        let logger = Logger::new(&[], None);
        let mut out = Vec::new();
        logger.header(&target(format, 1024), 6, UNIX_EPOCH, "- ", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn headers_per_format() {
        let pid = std::process::id();
        assert!(header(SyslogFormat::Default).ends_with(&format!(" haproxy[{pid}]: ")));
        assert!(header(SyslogFormat::Rfc3164).ends_with(&format!(" localhost haproxy[{pid}]: ")));
        let rfc5424 = header(SyslogFormat::Rfc5424);
        assert!(rfc5424.starts_with("<134>1 19"), "{rfc5424}");
        assert!(
            rfc5424.ends_with(&format!(" - haproxy {pid} - - ")),
            "{rfc5424}"
        );
        assert_eq!(header(SyslogFormat::Short), "<6>");
        assert_eq!(header(SyslogFormat::Raw), "");
        assert_eq!(header(SyslogFormat::Priority), "<134>");
    }

    #[test]
    fn sampling_picks_ranges_of_each_cycle() {
        let mut conf = target(SyslogFormat::Raw, 1024);
        conf.sample = Some(LogSample {
            ranges: vec![(1, 2), (4, 4)],
            size: 5,
        });
        let t = Target::open(&conf);
        let picked: Vec<bool> = (0..10).map(|_| t.sampled_in()).collect();
        let expected = [true, true, false, true, false];
        assert_eq!(picked, [expected, expected].concat());
    }
}
