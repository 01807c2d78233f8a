//! HAProxy's error snapshots and `show errors`: the last HTTP/1 request each frontend refused
//! and the last response each backend refused, kept with the bytes that came, where its
//! parser stopped and its state there, numbered by one event counter for the whole process,
//! and dumped as HAProxy 2.6 dumps them (`cli_io_handler_show_errors`, `dump_text_line`).
//!
//! Where HAProxy's H1 parser stops is found again here ([`locate`]) on the bytes hapx
//! refused: hapx's own parser says whether a message is valid, not where, and HAProxy
//! reports the parser's state and position there. The H1 multiplexer's connection and
//! stream flags are those its snapshots show for a message refused on a new stream.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::state::State;

/// HAProxy's `tune.bufsize`, from which a snapshot's free space is counted.
const BUFSIZE: usize = 16_384;

/// Where HAProxy's H1 input buffer wraps when its data starts at its beginning.
const WRAPS_AT: usize = 16_336;

/// HAProxy's `error_snapshot_id`: every capture takes the next number.
static EVENTS: AtomicU32 = AtomicU32::new(0);

/// The last snapshot of each proxy (by id) and side, in HAProxy's dump order.
static SNAPSHOTS: Mutex<BTreeMap<(usize, Side), Snapshot>> = Mutex::new(BTreeMap::new());

/// Which message a snapshot holds: a frontend's request or a backend's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Request,
    Response,
}

/// A proxy or server as a snapshot names it: its name and its id (`#N`).
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub id: i64,
}

impl Named {
    pub fn new(name: &str, id: usize) -> Named {
        Named {
            name: name.to_string(),
            id: id as i64,
        }
    }
}

/// What is known of a refused message where it was refused.
#[derive(Debug)]
pub struct Refused<'a> {
    pub side: Side,
    /// The frontend (a request) or the backend (a response) that refused it.
    pub proxy: Named,
    /// The other end: the backend of a request (none before one was chosen), the frontend
    /// of a response.
    pub other_end: Option<Named>,
    pub server: Option<Named>,
    /// The client's address.
    pub src: SocketAddr,
    /// The input buffer's bytes, from the message's first.
    pub bytes: &'a [u8],
    /// How many bytes of the buffer were consumed before (earlier messages of its read).
    pub consumed: usize,
    /// Whether an earlier request came on its connection.
    pub not_first: bool,
}

/// One captured error, as HAProxy's `struct error_snapshot` keeps it.
#[derive(Debug)]
struct Snapshot {
    when: SystemTime,
    event: u32,
    proxy: Named,
    other_end: Option<Named>,
    server: Option<Named>,
    src: SocketAddr,
    bytes: Vec<u8>,
    wraps_at: usize,
    stop: Stop,
    conn_flags: u32,
    stream_flags: u32,
}

/// Captures a message HAProxy's H1 parser refuses, if it is one (a message hapx refuses
/// for a reason HAProxy finds after its parser, it does not capture).
pub fn capture(refused: Refused<'_>) {
    let Some(stop) = locate(refused.bytes, refused.side == Side::Request) else {
        return;
    };
    // H1C_F_IS_BACK and the back side's state; a new front stream (H1S_F_NOT_FIRST after one).
    let (conn_flags, stream_flags) = match refused.side {
        Side::Request if refused.not_first => (0x0000_0100, 0x0000_0890),
        Side::Request => (0x0000_0100, 0x0000_0810),
        Side::Response => (0x8000_2200, 0x0000_4810),
    };
    let snapshot = Snapshot {
        when: SystemTime::now(),
        event: EVENTS.fetch_add(1, Relaxed),
        other_end: refused.other_end,
        server: refused.server,
        src: refused.src,
        bytes: refused.bytes[..refused.bytes.len().min(BUFSIZE)].to_vec(),
        wraps_at: WRAPS_AT.saturating_sub(refused.consumed),
        stop,
        conn_flags,
        stream_flags,
        proxy: refused.proxy,
    };
    let key = (snapshot.proxy.id as usize, refused.side);
    lock().insert(key, snapshot);
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<(usize, Side), Snapshot>> {
    SNAPSHOTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `show errors [PROXY|ID] [request|response]` (level operator, checked by the caller):
/// HAProxy's answer. A proxy is named, or given by its id; one that is neither is refused.
pub fn show(state: &State, args: &[&str]) -> String {
    let wanted = match args.first() {
        Some(&name) => match proxy_id(state, name) {
            Some(id) => Some(id),
            None => return "No such proxy.\n".into(),
        },
        None => None,
    };
    let only = match args.get(1) {
        Some(&"request") => Some(Side::Request),
        Some(&"response") => Some(Side::Response),
        _ => None,
    };
    let now = SystemTime::now();
    let mut out = format!(
        "Total events captured on [{}] : {}\n",
        Date(now),
        EVENTS.load(Relaxed)
    );
    for ((_, side), snapshot) in lock().iter() {
        if only.is_some_and(|only| only != *side) || !snapshot.concerns(wanted) {
            continue;
        }
        snapshot.dump(*side, &mut out);
    }
    out
}

/// The id a `show errors` argument names (-1: every proxy), as HAProxy reads it: a proxy's
/// name, else a number as `atoi` reads it; None for 0.
fn proxy_id(state: &State, arg: &str) -> Option<i64> {
    let by_name = state
        .frontends
        .iter()
        .map(|f| (&f.name, f.id))
        .chain(state.backends.iter().map(|b| (&b.name, b.id)))
        .find(|(name, _)| name.as_str() == arg);
    let id = match by_name {
        Some((_, id)) => id as i64,
        None => atoi(arg),
    };
    (id != 0).then_some(id)
}

/// C's `atoi`: an optional sign and the digits that follow, 0 for none.
fn atoi(text: &str) -> i64 {
    let text = text.trim_start();
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    sign * digits[..end].parse::<i64>().unwrap_or(0)
}

impl Snapshot {
    /// Whether `show errors` for `wanted` (an id; None or -1: all) shows it: its proxy's,
    /// or its other end's.
    fn concerns(&self, wanted: Option<i64>) -> bool {
        match wanted {
            None => true,
            Some(id) if id < 0 => true,
            Some(id) => self.proxy.id == id || self.other_end.as_ref().is_some_and(|o| o.id == id),
        }
    }

    fn dump(&self, side: Side, out: &mut String) {
        let none = Named {
            name: "<NONE>".into(),
            id: -1,
        };
        let other = self.other_end.as_ref().unwrap_or(&none);
        let server = self.server.as_ref().unwrap_or(&none);
        let _ = write!(out, " \n[{}]", Date(self.when));
        let _ = match side {
            Side::Request => write!(
                out,
                " frontend {} (#{}): invalid request\n  backend {} (#{})",
                self.proxy.name, self.proxy.id, other.name, other.id
            ),
            Side::Response => write!(
                out,
                " backend {} (#{}): invalid response\n  frontend {} (#{})",
                self.proxy.name, self.proxy.id, other.name, other.id
            ),
        };
        let len = self.bytes.len();
        let _ = write!(
            out,
            ", server {} (#{}), event #{}, src {}:{}\n  buffer starts at 0 (including 0 out), {} \
             free,\n  len {len}, wraps at {}, error at position {}\n",
            server.name,
            server.id,
            self.event,
            self.src.ip(),
            self.src.port(),
            BUFSIZE - len,
            self.wraps_at,
            self.stop.at,
        );
        let stop = &self.stop;
        let _ = write!(
            out,
            "  H1 connection flags 0x{:08x}, H1 stream flags 0x{:08x}\n  H1 msg state {}({}), \
             H1 msg flags 0x{:08x}\n  H1 chunk len {} bytes, H1 body len {} bytes :\n  \n",
            self.conn_flags,
            self.stream_flags,
            stop.state.name(),
            stop.state as u8,
            stop.flags,
            stop.body_len,
            stop.body_len,
        );
        let mut at = 0;
        while at < len {
            at = dump_text_line(out, &self.bytes, at);
        }
    }
}

/// A date as `show errors` writes it: local time with milliseconds.
struct Date(SystemTime);

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let date = super::log::LocalDate(since.as_secs());
        write!(f, "{date}.{:03}", since.subsec_millis())
    }
}

/// HAProxy's `dump_text_line`: from `at`, one line of at most 79 characters (offset and
/// escaped bytes), ending after a line feed or where the next byte would not fit; a line
/// that does not begin one of the message's is marked `+`. Returns where it stopped.
fn dump_text_line(out: &mut String, bytes: &[u8], mut at: usize) -> usize {
    const WIDTH: usize = 80;
    let begin = out.len();
    // A line goes on from the previous one unless that one ended with a line feed.
    let continued = at > 0 && bytes[at - 1] != b'\n';
    let _ = write!(out, "  {at:05}{} ", if continued { '+' } else { ' ' });
    while let Some(&c) = bytes.get(at) {
        let used = out.len() - begin;
        let escaped = match c {
            b'\t' => Some('t'),
            b'\n' => Some('n'),
            b'\r' => Some('r'),
            0x1b => Some('e'),
            b'\\' => Some('\\'),
            _ => None,
        };
        if let Some(letter) = escaped {
            if used > WIDTH - 3 {
                break;
            }
            out.push('\\');
            out.push(letter);
        } else if c.is_ascii_graphic() || c == b' ' {
            if used > WIDTH - 2 {
                break;
            }
            out.push(char::from(c));
        } else {
            if used > WIDTH - 5 {
                break;
            }
            let _ = write!(out, "\\x{c:02X}");
        }
        at += 1;
        if c == b'\n' {
            break;
        }
    }
    out.push('\n');
    at
}

/// HAProxy's H1 parser states (`enum h1m_state`), those a refused head stops in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum MsgState {
    RqBefore = 0,
    RqMeth = 2,
    RqMethSp = 3,
    RqUri = 4,
    RqUriSp = 5,
    RqVer = 6,
    RqLineEnd = 7,
    RpBefore = 8,
    RpVer = 10,
    RpVerSp = 11,
    RpCode = 12,
    RpLineEnd = 15,
    HdrName = 17,
    HdrL1Lf = 20,
    HdrL2Lf = 23,
    HdrL2Lws = 24,
    LastLf = 25,
    Data = 27,
}

impl MsgState {
    fn name(self) -> &'static str {
        match self {
            MsgState::RqBefore => "MSG_RQBEFORE",
            MsgState::RqMeth => "MSG_RQMETH",
            MsgState::RqMethSp => "MSG_RQMETH_SP",
            MsgState::RqUri => "MSG_RQURI",
            MsgState::RqUriSp => "MSG_RQURI_SP",
            MsgState::RqVer => "MSG_RQVER",
            MsgState::RqLineEnd => "MSG_RQLINE_END",
            MsgState::RpBefore => "MSG_RPBEFORE",
            MsgState::RpVer => "MSG_RPVER",
            MsgState::RpVerSp => "MSG_RPVER_SP",
            MsgState::RpCode => "MSG_RPCODE",
            MsgState::RpLineEnd => "MSG_RPLINE_END",
            MsgState::HdrName => "MSG_HDR_NAME",
            MsgState::HdrL1Lf => "MSG_HDR_L1_LF",
            MsgState::HdrL2Lf => "MSG_HDR_L2_LF",
            MsgState::HdrL2Lws => "MSG_HDR_L2_LWS",
            MsgState::LastLf => "MSG_LAST_LF",
            MsgState::Data => "MSG_DATA",
        }
    }
}

/// HAProxy's H1 message flags (`H1_MF_*`) a snapshot may show.
mod flag {
    pub const CLEN: u32 = 0x0000_0001;
    pub const CHNK: u32 = 0x0000_0002;
    pub const RESP: u32 = 0x0000_0004;
    pub const VER_11: u32 = 0x0000_0010;
    pub const CONN_CLO: u32 = 0x0000_0020;
    pub const CONN_KAL: u32 = 0x0000_0040;
    pub const CONN_UPG: u32 = 0x0000_0080;
    pub const XFER_ENC: u32 = 0x0000_0200;
    pub const NO_PHDR: u32 = 0x0000_0400;
    pub const CLEAN_CONN_HDR: u32 = 0x0000_1000;
    pub const TE_CHUNKED: u32 = 0x0001_0000;
    pub const TE_OTHER: u32 = 0x0002_0000;
}

/// Where HAProxy's H1 parser stops on a message it refuses, and what it knew then.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stop {
    state: MsgState,
    /// The offset of the refused byte.
    at: usize,
    flags: u32,
    /// The length its `Content-Length` announced, if it came before.
    body_len: u64,
}

/// HAProxy's `HTTP_IS_VER_TOKEN`: a letter, a digit, `/` or `.` (the version's syntax is
/// checked apart).
fn is_version_char(c: u8) -> bool {
    matches!(c, b'/' | b'.') || c.is_ascii_alphanumeric()
}

/// The parser's walk over a head's bytes (`h1_headers_to_hdr_list`), up to the first
/// refused byte: None when it finds none in what came.
fn locate(raw: &[u8], request: bool) -> Option<Stop> {
    let mut walk = Walk {
        raw,
        at: 0,
        stop: Stop {
            state: MsgState::RqBefore,
            at: 0,
            flags: flag::NO_PHDR | flag::CLEAN_CONN_HDR | if request { 0 } else { flag::RESP },
            body_len: 0,
        },
        host: None,
        bad_version: None,
    };
    let refused = if request {
        walk.request_line()
    } else {
        walk.status_line()
    };
    match refused {
        Err(Refusal::At(state, at)) => Some(walk.stopped(state, at)),
        Err(Refusal::Incomplete) => None,
        Ok(()) => match walk.headers() {
            Err(Refusal::At(state, at)) => Some(walk.stopped(state, at)),
            Err(Refusal::Incomplete) => None,
            // A request's version is checked once its head was parsed whole.
            Ok(()) => {
                let at = walk.bad_version?;
                Some(walk.stopped(MsgState::Data, at))
            }
        },
    }
}

/// Why a walk ended early: a refused byte (the state it was met in), or the end of what
/// came.
enum Refusal {
    At(MsgState, usize),
    Incomplete,
}

struct Walk<'a> {
    raw: &'a [u8],
    at: usize,
    stop: Stop,
    /// The first `Host` header's value.
    host: Option<&'a [u8]>,
    /// Where a request's version is, when it is no `HTTP/d.d`.
    bad_version: Option<usize>,
}

impl<'a> Walk<'a> {
    fn stopped(self, state: MsgState, at: usize) -> Stop {
        Stop {
            state,
            at,
            ..self.stop
        }
    }

    fn peek(&self) -> Result<u8, Refusal> {
        self.raw.get(self.at).copied().ok_or(Refusal::Incomplete)
    }

    /// Moves past the bytes `keep` takes; the first other one.
    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) -> Result<u8, Refusal> {
        loop {
            let c = self.peek()?;
            if !keep(c) {
                return Ok(c);
            }
            self.at += 1;
        }
    }

    /// The end of a line at a CR or LF: past it, or the byte after a CR that is no LF
    /// refused in `state`.
    fn line_end(&mut self, state: MsgState) -> Result<(), Refusal> {
        if self.peek()? == b'\r' {
            self.at += 1;
            if self.peek()? != b'\n' {
                return Err(Refusal::At(state, self.at));
            }
        }
        self.at += 1;
        Ok(())
    }

    fn request_line(&mut self) -> Result<(), Refusal> {
        let c = self.skip_while(|c| c == b'\r' || c == b'\n')?;
        if !super::http::is_tchar(c) {
            return Err(Refusal::At(MsgState::RqBefore, self.at));
        }
        if self.skip_while(super::http::is_tchar)? != b' ' {
            return Err(Refusal::At(MsgState::RqMeth, self.at));
        }
        let c = self.skip_while(|c| c == b' ')?;
        if c <= b' ' || c >= 0x7f {
            return Err(Refusal::At(MsgState::RqMethSp, self.at));
        }
        if self.skip_while(super::http::is_uri_byte)? != b' ' {
            return Err(Refusal::At(MsgState::RqUri, self.at));
        }
        let version = self.skip_while(|c| c == b' ')?;
        if !is_version_char(version) {
            return Err(Refusal::At(MsgState::RqUriSp, self.at));
        }
        let from = self.at;
        let c = self.skip_while(is_version_char)?;
        if c != b'\r' && c != b'\n' {
            return Err(Refusal::At(MsgState::RqVer, self.at));
        }
        self.version(&self.raw[from..self.at]);
        if !super::http::is_version(&self.raw[from..self.at]) {
            self.bad_version = Some(from);
        }
        self.line_end(MsgState::RqLineEnd)
    }

    fn status_line(&mut self) -> Result<(), Refusal> {
        let c = self.skip_while(|c| c == b'\r' || c == b'\n')?;
        if !is_version_char(c) {
            return Err(Refusal::At(MsgState::RpBefore, self.at));
        }
        let from = self.at;
        if self.skip_while(is_version_char)? != b' ' {
            return Err(Refusal::At(MsgState::RpVer, self.at));
        }
        self.version(&self.raw[from..self.at]);
        if !self.skip_while(|c| c == b' ')?.is_ascii_digit() {
            return Err(Refusal::At(MsgState::RpVerSp, self.at));
        }
        let code = self.at;
        let c = self.skip_while(|c| c.is_ascii_digit())?;
        if self.at - code != 3 || !matches!(c, b' ' | b'\r' | b'\n') {
            return Err(Refusal::At(MsgState::RpCode, self.at));
        }
        self.skip_while(|c| c != b'\r' && c != b'\n')?;
        self.line_end(MsgState::RpLineEnd)
    }

    /// HTTP/1.1 or later, as HAProxy reads the start line's version.
    fn version(&mut self, version: &[u8]) {
        if let [_, _, _, _, _, major, _, minor] = version
            && (*major > b'1' || (*major == b'1' && *minor >= b'1'))
        {
            self.stop.flags |= flag::VER_11;
        }
    }

    fn headers(&mut self) -> Result<(), Refusal> {
        loop {
            match self.peek()? {
                b'\r' | b'\n' => return self.line_end(MsgState::LastLf),
                _ => self.header()?,
            }
        }
    }

    /// One header line (and the lines folded into it), then what its value tells.
    fn header(&mut self) -> Result<(), Refusal> {
        let name_at = self.at;
        if self.skip_while(super::http::is_tchar)? != b':' || self.at == name_at {
            return Err(Refusal::At(MsgState::HdrName, self.at));
        }
        let name = &self.raw[name_at..self.at];
        self.at += 1;
        let value_at = self.at;
        loop {
            let line_at = self.at;
            let end = self.skip_while(|c| c != b'\r' && c != b'\n')?;
            let value_end = self.at;
            // A CR must end the line: in the value, or before any (HDR_L1_LF).
            let blank = self.raw[line_at..value_end]
                .iter()
                .all(|&c| c == b' ' || c == b'\t');
            let state = match blank && line_at == value_at {
                true => MsgState::HdrL1Lf,
                false => MsgState::HdrL2Lf,
            };
            if end == b'\r' {
                self.at += 1;
                if self.peek()? != b'\n' {
                    return Err(Refusal::At(state, self.at));
                }
            }
            self.at += 1;
            // A line beginning with a blank goes on with the value (obsolete folding).
            if !matches!(self.peek()?, b' ' | b'\t') {
                return self.known_header(name, value_at, value_end);
            }
        }
    }

    /// What the parser takes from a header as it stores it: the framing and connection
    /// flags, or a refusal of a bad length or a second, different `Host`.
    fn known_header(&mut self, name: &[u8], from: usize, to: usize) -> Result<(), Refusal> {
        let is_blank = |c: &u8| *c == b' ' || *c == b'\t';
        let start = from
            + self.raw[from..to]
                .iter()
                .take_while(|c| is_blank(c))
                .count();
        let value = self.raw[start..to].trim_ascii_end();
        let refused = Err(Refusal::At(MsgState::HdrL2Lws, start));
        if name.eq_ignore_ascii_case(b"content-length") {
            if self.stop.flags & flag::CHNK != 0 {
                return Ok(());
            }
            let Some(length) = content_length(value) else {
                return refused;
            };
            if self.stop.flags & flag::CLEN != 0 && self.stop.body_len != length {
                return refused;
            }
            self.stop.flags |= flag::CLEN;
            self.stop.body_len = length;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.stop.flags = (self.stop.flags | flag::XFER_ENC) & !flag::CLEN;
            self.stop.body_len = 0;
            let last = value.rsplit(|&c| c == b',').next().unwrap_or_default();
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                self.stop.flags |= flag::CHNK | flag::TE_CHUNKED;
            } else {
                self.stop.flags |= flag::TE_OTHER;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&c| c == b',').map(<[u8]>::trim_ascii) {
                self.stop.flags |= match token.to_ascii_lowercase().as_slice() {
                    b"close" => flag::CONN_CLO,
                    b"keep-alive" => flag::CONN_KAL,
                    b"upgrade" => flag::CONN_UPG,
                    _ => 0,
                };
            }
        } else if name.eq_ignore_ascii_case(b"host") && self.stop.flags & flag::RESP == 0 {
            match self.host {
                Some(first) if !first.eq_ignore_ascii_case(value) => return refused,
                Some(_) => {}
                None => self.host = Some(value),
            }
        }
        Ok(())
    }
}

/// A `Content-Length` value as HAProxy's `h1_parse_cont_len` takes it: digits, maybe the
/// same number again after commas (error pages are read with it too, see
/// `config::errors`).
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for part in value.split(|&c| c == b',').map(<[u8]>::trim_ascii) {
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = std::str::from_utf8(part).ok()?.parse::<u64>().ok()?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    length
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(raw: &[u8], request: bool) -> Option<(&'static str, usize, u32, u64)> {
        locate(raw, request).map(|s| (s.state.name(), s.at, s.flags, s.body_len))
    }

    #[test]
    fn refused_bytes_are_located_as_haproxy_locates_them() {
        let cases: [(&[u8], _); 8] = [
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: y\r\n\r\n",
                ("MSG_HDR_NAME", 28, 0x1410, 0),
            ),
            (b"GE\x01T / HTTP/1.1\r\n\r\n", ("MSG_RQMETH", 2, 0x1400, 0)),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                ("MSG_HDR_L2_LWS", 41, 0x1410, 0),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
                ("MSG_HDR_L2_LWS", 31, 0x1410, 0),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nA\x00b: c\r\n\r\n",
                ("MSG_HDR_NAME", 45, 0x1411, 5),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
                ("MSG_HDR_L2_LF", 30, 0x1410, 0),
            ),
            (
                b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
                ("MSG_DATA", 6, 0x1410, 0),
            ),
            (b"GET /\x80 HTTP/1.1\r\n\r\n", ("MSG_RQURI", 5, 0x1400, 0)),
        ];
        for (raw, expected) in cases {
            assert_eq!(stop(raw, true), Some(expected), "{raw:?}");
        }
        let chunked = b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
            Connection: close\r\nA b\r\n\r\n";
        assert_eq!(stop(chunked, true), Some(("MSG_HDR_NAME", 73, 0x11632, 0)));
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\nok";
        assert_eq!(stop(response, false), Some(("MSG_HDR_NAME", 39, 0x1415, 2)));
        assert_eq!(stop(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true), None);
        assert_eq!(stop(b"GET / HTTP/1.1\r\nHost: x", true), None);
    }

    #[test]
    fn lines_are_dumped_as_dump_text_line_does() {
        let long = format!("GET /{} HTTP/1.1\r\nA: \\\x01\r\n", "a".repeat(100));
        let mut out = String::new();
        let mut at = 0;
        while at < long.len() {
            at = dump_text_line(&mut out, long.as_bytes(), at);
        }
        let expected = format!(
            "  00000  GET /{}\n  00070+ {} HTTP/1.1\\r\\n\n  00116  A: \\\\\\x01\\r\\n\n",
            "a".repeat(65),
            "a".repeat(35)
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn proxy_ids_are_read_like_atoi() {
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("-1"), -1);
        assert_eq!(atoi("abc"), 0);
    }
}
