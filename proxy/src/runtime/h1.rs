//! The HTTP/1 layer's edits to a message head, as HAProxy 2.6's H1 multiplexer makes them.
//!
//! HAProxy does not forward a head as it came: it parses it into its internal form and writes
//! a new one for the other side. What the other side then sees, and hapx reproduces here:
//! - header names in lower case (HAProxy keeps them so internally), unless the global
//!   `h1-case-adjust` map renames them for a proxy with `option h1-case-adjust-bogus-client`
//!   (responses to clients) or `-bogus-server` (requests to servers);
//! - `Connection` without its `close` and `keep-alive` tokens, which belong to each hop (a
//!   header left empty goes); each side then gets the one its own connection mode needs,
//!   after every other header: `connection: keep-alive` to an HTTP/1.0 peer kept alive,
//!   `connection: close` to an HTTP/1.1 peer about to be closed, nothing otherwise, and no
//!   change at all when the message asks for an `upgrade`;
//! - `TE` reduced to `trailers` when it lists them, removed otherwise;
//! - no `Transfer-Encoding` or `Content-Length` on 1xx and 204 responses, and no
//!   `Connection` on 1xx ones.
//!
//! Values are written trimmed, after `": "`, with every byte they came with (see
//! [`crate::bytestr`]); start lines as they came.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::http::Head;

/// A frontend's or a backend's HTTP/1 connections, as HAProxy 2.6's H1 multiplexer counts
/// them (its `h1` stats module, `show stat`'s h1 columns; its exporter has none): the
/// connections it served in HTTP/1 (an HTTP/2 client with prior knowledge among them: its
/// preface is read as HTTP/1 first), the requests on them (streams: heads read whole from a
/// client, requests given to a server connection), and the raw bytes read and written on
/// them (through TLS: the plaintext), one relaxed addition per read or write. TCP
/// connections, HTTP/2 ones and listeners or servers are none of its.
#[derive(Debug, Default)]
pub struct Counters {
    open_conns: AtomicU64,
    open_streams: AtomicU64,
    total_conns: AtomicU64,
    total_streams: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    spliced_in: AtomicU64,
    spliced_out: AtomicU64,
}

impl Counters {
    /// The columns, by their `show stat` names; `idle` open connections counted elsewhere
    /// (a backend's in its servers' pools, which keep sockets, not [`Link`]s).
    pub fn columns(&self, idle: u64) -> [(&'static str, u64); 8] {
        let get = |c: &AtomicU64| c.load(Relaxed);
        [
            ("h1_open_connections", get(&self.open_conns) + idle),
            ("h1_open_streams", get(&self.open_streams)),
            ("h1_total_connections", get(&self.total_conns)),
            ("h1_total_streams", get(&self.total_streams)),
            ("h1_bytes_in", get(&self.bytes_in)),
            ("h1_bytes_out", get(&self.bytes_out)),
            ("h1_spliced_bytes_in", get(&self.spliced_in)),
            ("h1_spliced_bytes_out", get(&self.spliced_out)),
        ]
    }

    /// Bytes moved by splice(2) (a tunnel's): HAProxy counts them in both totals.
    pub fn spliced(&self, read: u64, written: u64) {
        self.spliced_in.fetch_add(read, Relaxed);
        self.spliced_out.fetch_add(written, Relaxed);
        self.count(read, written);
    }

    /// Connection attempts to a server that failed, as many connections (HAProxy installs
    /// its multiplexer, and the request's stream on it, as it begins connecting).
    pub fn failed_attempts(&self, attempts: u32) {
        if attempts > 0 {
            self.total_conns.fetch_add(attempts.into(), Relaxed);
            self.total_streams.fetch_add(attempts.into(), Relaxed);
        }
    }

    fn count(&self, read: u64, written: u64) {
        if read > 0 {
            self.bytes_in.fetch_add(read, Relaxed);
        }
        if written > 0 {
            self.bytes_out.fetch_add(written, Relaxed);
        }
    }
}

/// One HTTP/1 connection in its proxy's [`Counters`]: open until dropped, with at most one
/// stream at a time.
#[derive(Debug)]
pub struct Link {
    counters: Arc<Counters>,
    in_stream: bool,
}

impl Link {
    /// A new connection.
    pub fn open(counters: &Arc<Counters>) -> Link {
        counters.total_conns.fetch_add(1, Relaxed);
        Link::adopt(counters)
    }

    /// A connection counted already, coming back from where it was counted otherwise (a
    /// server's pool).
    pub fn adopt(counters: &Arc<Counters>) -> Link {
        counters.open_conns.fetch_add(1, Relaxed);
        Link {
            counters: counters.clone(),
            in_stream: false,
        }
    }

    pub fn read(&self, n: usize) {
        self.counters.bytes_in.fetch_add(n as u64, Relaxed);
    }

    pub fn wrote(&self, n: usize) {
        self.counters.bytes_out.fetch_add(n as u64, Relaxed);
        super::meter::count_sent(n as u64);
    }

    /// Bytes a tunnel moved past the connection's buffers: `read` from it, `written` to it,
    /// of which `spliced` (read, written) by splice(2).
    pub fn tunneled(&self, (read, written): (u64, u64), spliced: (u64, u64)) {
        self.counters.count(read - spliced.0, written - spliced.1);
        self.counters.spliced(spliced.0, spliced.1);
    }

    /// A request begins on the connection.
    pub fn start_stream(&mut self) {
        if !std::mem::replace(&mut self.in_stream, true) {
            self.counters.open_streams.fetch_add(1, Relaxed);
            self.counters.total_streams.fetch_add(1, Relaxed);
        }
    }

    /// The request is over.
    pub fn end_stream(&mut self) {
        if std::mem::take(&mut self.in_stream) {
            self.counters.open_streams.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.end_stream();
        self.counters.open_conns.fetch_sub(1, Relaxed);
    }
}

/// The `Connection` tokens the HTTP/1 layer acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnTokens {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

impl ConnTokens {
    /// Notes the tokens of a `Connection` value and returns it without `close` and
    /// `keep-alive` (empty when nothing else is left), rewritten the way HAProxy rewrites it:
    /// kept as it is up to the first removed token, the later tokens then joined with `,`.
    pub fn clean<'a>(&mut self, value: &'a str) -> Cow<'a, str> {
        let bytes = value.as_bytes();
        let is_lws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        // While nothing was removed, the value is kept as it came up to `kept`; after a
        // removal, the tokens that follow are appended to `rewritten`.
        let mut kept = 0;
        let mut rewritten: Option<String> = None;
        let mut previous_end = 0;
        let mut at = 0;
        while at < bytes.len() {
            if is_lws(bytes[at]) {
                at += 1;
                continue;
            }
            let end = token_end(bytes, at);
            let mut len = end - at;
            while len > 0 && is_lws(bytes[at + len - 1]) {
                len -= 1;
            }
            let token = &value[at..at + len];
            let removed = if token.eq_ignore_ascii_case("keep-alive") {
                self.keep_alive = true;
                true
            } else if token.eq_ignore_ascii_case("close") {
                self.close = true;
                true
            } else {
                self.upgrade |= token.eq_ignore_ascii_case("upgrade");
                false
            };
            if !removed {
                match &mut rewritten {
                    None if kept == previous_end => kept = end,
                    _ => {
                        let out = rewritten.get_or_insert_with(|| value[..kept].to_string());
                        if !out.is_empty() {
                            out.push(',');
                        }
                        out.push_str(token);
                    }
                }
            }
            previous_end = end;
            at = end + 1;
        }
        match rewritten {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(&value[..kept]),
        }
    }
}

/// The elements of a comma-separated header value, leading blanks trimmed, as HAProxy's
/// `http_find_header` yields them: a comma inside a quoted string does not separate.
pub fn list_elements(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at;
        (start <= bytes.len()).then(|| {
            let end = token_end(bytes, start);
            at = end + 1;
            value[start..end].trim_start_matches([' ', '\t'])
        })
    })
}

/// Where the element of a comma-separated value starting at `at` ends: the next comma outside
/// a quoted string, or the end.
fn token_end(bytes: &[u8], at: usize) -> usize {
    unquoted_end(bytes, at, |b| b == b',')
}

/// The first byte from `at` that `ends` outside a quoted string (escapes inside quotes
/// skipped), or the end.
pub(super) fn unquoted_end(bytes: &[u8], at: usize, ends: impl Fn(u8) -> bool) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate().skip(at) {
        if escaped {
            escaped = false;
        } else if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if ends(b) {
            return i;
        }
    }
    bytes.len()
}

/// What a `TE` header becomes: `trailers` when the value holds that word followed by nothing
/// or a comma (HAProxy's exact, case-sensitive test), else nothing.
fn te_value(value: &str) -> Option<&'static str> {
    let rest = &value.as_bytes()[value.find("trailers")?..];
    (rest.len() == 8 || rest[8] == b',').then_some("trailers")
}

/// A head with its folded header lines (obsolete line folding: a line starting with a blank
/// continues the previous header) joined as HAProxy joins them: the CR and LF before the
/// blank become spaces each. A folded line right after the start line is left as it is (a
/// header name cannot start with a blank: it is refused).
pub fn unfold(raw: &[u8]) -> Cow<'_, [u8]> {
    let is_fold = |at: usize| raw[at] == b'\n' && matches!(raw.get(at + 1), Some(b' ' | b'\t'));
    let start_line_end = find_byte(raw, b'\n').unwrap_or(raw.len());
    // From LF to LF (every head is searched, and nearly none is folded).
    let mut from = start_line_end + 1;
    let first = loop {
        let rest = raw.get(from..).unwrap_or_default();
        let Some(lf) = find_byte(rest, b'\n').map(|at| from + at) else {
            return Cow::Borrowed(raw);
        };
        if is_fold(lf) {
            break lf;
        }
        from = lf + 1;
    };
    let mut out = raw.to_vec();
    for at in first..raw.len() {
        if is_fold(at) {
            out[at] = b' ';
            if at > 0 && raw[at - 1] == b'\r' {
                out[at - 1] = b' ';
            }
        }
    }
    Cow::Owned(out)
}

/// Where the first `byte` of `hay` is: eight bytes at a time, as a head's lines are searched
/// for every message (a byte-at-a-time search costs several instructions a byte).
pub fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let pattern = ONES * u64::from(byte);
    let mut words = hay.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let word: [u8; 8] = word.try_into().expect("chunks of eight");
        // A byte equal to `byte` is a zero byte here; the lowest bit set below is the first
        // zero byte's (a borrow can mark a byte only above a zero one).
        let zeroed = u64::from_le_bytes(word) ^ pattern;
        let found = zeroed.wrapping_sub(ONES) & !zeroed & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = words.remainder().iter().position(|&b| b == byte);
    rest.map(|i| at + i)
}

/// The lines of a head, their CR (before the LF) left out. Split by a byte search rather than
/// a `char` pattern: a head's few short lines are split for every message.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let line = match find_byte(text.as_bytes(), b'\n') {
            // LF is ASCII: both slices are cut at character boundaries.
            Some(at) => {
                rest = Some(&text[at + 1..]);
                &text[..at]
            }
            None => {
                rest = None;
                text
            }
        };
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Whether `b` is a blank (space, tab), which separates the parts of a start line.
pub fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The words of a request line: its parts between runs of blanks. By bytes rather than a
/// `char` pattern, as every request line is split (blanks are ASCII: the cuts are character
/// boundaries).
pub fn words(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && is_blank(bytes[at]) {
            at += 1;
        }
        let start = at;
        while at < bytes.len() && !is_blank(bytes[at]) {
            at += 1;
        }
        (start < at).then(|| &s[start..at])
    })
}

/// `s` cut at its first blank, which neither part keeps (as `str::split_once` with a blank
/// pattern, by bytes).
pub fn split_at_blank(s: &str) -> Option<(&str, &str)> {
    let at = s.bytes().position(is_blank)?;
    Some((&s[..at], &s[at + 1..]))
}

/// `s` without its leading blanks.
pub fn trim_start_blanks(s: &str) -> &str {
    let start = s.bytes().position(|b| !is_blank(b)).unwrap_or(s.len());
    &s[start..]
}

/// `s` without its leading and trailing blanks (space, tab), which HAProxy trims from a
/// header value, and nothing else (a form feed or a no-break space stays).
pub fn trim_blanks(s: &str) -> &str {
    let bytes = s.as_bytes();
    let Some(start) = bytes.iter().position(|&b| !is_blank(b)) else {
        return "";
    };
    let end = bytes
        .iter()
        .rposition(|&b| !is_blank(b))
        .map_or(start, |at| at + 1);
    // Blanks are ASCII: both ends are character boundaries.
    &s[start..end]
}

/// `h1-case-adjust`: lower-case header names and the spelling to send instead.
pub type CaseMap = HashMap<String, String>;

/// Writes a head line by line, naming headers as HAProxy's H1 layer names them.
struct Out<'a> {
    out: &'a mut Vec<u8>,
    case: Option<&'a CaseMap>,
}

impl Out<'_> {
    fn start_line(&mut self, first: &[String; 3]) {
        self.start_line_of(first.each_ref().map(String::as_str));
    }

    fn start_line_of(&mut self, first: [&str; 3]) {
        for (i, part) in first.iter().enumerate() {
            if i > 0 {
                self.out.push(b' ');
            }
            crate::bytestr::push_bytes(self.out, part);
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// One header: its name lowercased as it is copied (or as the case map spells it).
    fn header(&mut self, name: &str, value: &str) {
        match self.case {
            None => self
                .out
                .extend(name.bytes().map(|b| b.to_ascii_lowercase())),
            Some(map) => {
                let lower = name.to_ascii_lowercase();
                let spelled = map.get(&lower).unwrap_or(&lower);
                self.out.extend_from_slice(spelled.as_bytes());
            }
        }
        self.out.extend_from_slice(b": ");
        // Byte for byte as it came (see `bytestr`).
        crate::bytestr::push_bytes(self.out, value);
        self.out.extend_from_slice(b"\r\n");
    }

    /// The headers of `head`, with the edits every message gets ([`edited_headers`]).
    fn headers(&mut self, head: &Head, framing_headers: bool) -> (ConnTokens, bool) {
        edited_headers(head, framing_headers, |name, value| {
            self.header(name, value)
        })
    }

    /// The hop's own `Connection` header, if any (none when the message asks for an
    /// upgrade), then the end of the head.
    fn finish(&mut self, tokens: ConnTokens, connection: Option<&str>) {
        if let Some(value) = connection.filter(|_| !tokens.upgrade) {
            self.header("connection", value);
        }
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Gives `each` the headers of `head` with the edits every message gets (`Connection`
/// without `close` and `keep-alive`, `TE` as HAProxy keeps it); `framing_headers`: whether
/// Transfer-Encoding and Content-Length go out. The `Connection` tokens met, and whether a
/// Transfer-Encoding went out.
fn edited_headers(
    head: &Head,
    framing_headers: bool,
    mut each: impl FnMut(&str, &str),
) -> (ConnTokens, bool) {
    let mut tokens = ConnTokens::default();
    let mut encoded = false;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("connection") {
            let cleaned = tokens.clean(value);
            if !cleaned.is_empty() {
                each(name, &cleaned);
            }
        } else if name.eq_ignore_ascii_case("te") {
            if let Some(value) = te_value(value) {
                each(name, value);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if framing_headers {
                encoded = true;
                each(name, value);
            }
        } else if !framing_headers && name.eq_ignore_ascii_case("content-length") {
            // Dropped from a response that can have no body.
        } else {
            each(name, value);
        }
    }
    (tokens, encoded)
}

/// Gives `each` the headers of response `head` as [`write_response`] writes them.
pub fn response_headers(head: &Head, each: impl FnMut(&str, &str)) {
    let status: u16 = head.first[1].parse().unwrap_or(0);
    edited_headers(head, status >= 200 && status != 204, each);
}

/// How a request goes to a server.
#[derive(Debug, Clone, Copy)]
pub struct ToServer<'a> {
    /// `option httpclose` or `option http-server-close` on the frontend or the backend: the
    /// server connection closes after the response, unless the request says `keep-alive`.
    pub close_mode: bool,
    /// The backend's names for headers (`option h1-case-adjust-bogus-server`).
    pub case: Option<&'a CaseMap>,
}

/// Appends request `head` as a server gets it; whether the server connection closes after
/// this exchange (on hapx's side: the server may still close it).
pub fn write_request(head: &Head, to: ToServer<'_>, out: &mut Vec<u8>) -> bool {
    let mut w = Out { out, case: to.case };
    let http11 = is_http11(&head.first[2]);
    // A later version (`HTTP/2.0` on an HTTP/1 connection) goes as HTTP/1.1, an earlier
    // one as written, as HAProxy's HTTP/1 layer writes the request line.
    let version = if http11 { "HTTP/1.1" } else { &head.first[2] };
    w.start_line_of([&head.first[0], &head.first[1], version]);
    let (tokens, encoded) = w.headers(head, true);
    // A chunked HTTP/1.0 request closes the server connection after it.
    let close = tokens.close || (!tokens.keep_alive && to.close_mode) || (encoded && !http11);
    // The header says what differs from the version's default.
    let connection = match (close, http11) {
        (false, false) => Some("keep-alive"),
        (true, true) => Some("close"),
        _ => None,
    };
    w.finish(tokens, connection);
    close
}

/// How a response goes to a client.
#[derive(Debug, Clone, Copy)]
pub struct ToClient<'a> {
    /// The client connection closes after this response: the request asked for it (or was
    /// HTTP/1.0 without keep-alive), or hapx decided so (a soft stop, a request smuggling
    /// attempt).
    pub close: bool,
    /// The request was HTTP/1.1.
    pub request_http11: bool,
    /// The frontend's `option httpclose`.
    pub httpclose: bool,
    /// The response's body ends where the server closes: so does the client connection.
    pub until_close: bool,
    /// The frontend's names for headers (`option h1-case-adjust-bogus-client`).
    pub case: Option<&'a CaseMap>,
}

/// Appends response `head` as a client gets it; whether the client connection closes after
/// it. An interim (1xx) response says nothing about the connection; a 101 hands it over.
pub fn write_response(head: &Head, to: ToClient<'_>, out: &mut Vec<u8>) -> bool {
    let status: u16 = head.first[1].parse().unwrap_or(0);
    let mut w = Out { out, case: to.case };
    w.start_line(&head.first);
    let (tokens, encoded) = w.headers(head, status >= 200 && status != 204);
    if status < 200 {
        w.out.extend_from_slice(b"\r\n");
        return false;
    }
    let http11 = is_http11(&head.first[0]);
    let close = to.close
        || to.until_close
        || tokens.close
        || (!tokens.keep_alive && to.httpclose)
        || (encoded && !http11);
    // Keep-alive is spelled out unless both sides speak HTTP/1.1; close, in an HTTP/1.1
    // response only (with HTTP/1.0, closing is the default).
    let connection = match close {
        false if !http11 || !to.request_http11 => Some("keep-alive"),
        true if http11 => Some("close"),
        _ => None,
    };
    w.finish(tokens, connection);
    close
}

/// Whether a version is HTTP/1.1 or later (as HAProxy reads it: `HTTP/x.y`, x.y >= 1.1).
pub fn is_http11(version: &str) -> bool {
    let v = version.as_bytes();
    v.len() == 8 && (v[5] > b'1' || (v[5] == b'1' && v[7] >= b'1'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(value: &str) -> (String, ConnTokens) {
        let mut t = ConnTokens::default();
        let out = t.clean(value).into_owned();
        (out, t)
    }

    #[test]
    fn connection_values_are_cleaned_like_haproxy() {
        // What HAProxy 2.6 forwarded for each value.
        for (value, want) in [
            ("close", ""),
            ("keep-alive , close", ""),
            ("a ,b,", "a ,b"),
            ("close, X-Foo", "X-Foo"),
            ("X-Foo,keep-alive", "X-Foo"),
            ("a, close, b", "a,b"),
            ("Upgrade, close", "Upgrade"),
            ("TE", "TE"),
            ("\"x,close\", close", "\"x,close\""),
        ] {
            assert_eq!(cleaned(value).0, want, "{value:?}");
        }
        let (_, t) = cleaned("Keep-Alive, UPGRADE");
        assert_eq!(
            t,
            ConnTokens {
                close: false,
                keep_alive: true,
                upgrade: true
            }
        );
        assert!(cleaned("x, Close").1.close);
    }

    #[test]
    fn te_keeps_only_trailers() {
        for (value, want) in [
            ("trailers", Some("trailers")),
            ("gzip, trailers", Some("trailers")),
            ("trailers,gzip", Some("trailers")),
            ("x;q=trailers", Some("trailers")),
            ("trailers ,gzip", None),
            ("Trailers", None),
            ("gzip", None),
        ] {
            assert_eq!(te_value(value), want, "{value:?}");
        }
    }

    fn request(raw: &str, close_mode: bool) -> (String, bool) {
        let head = super::super::http::parse_head(raw.as_bytes(), true).unwrap();
        let mut out = Vec::new();
        let to = ToServer {
            close_mode,
            case: None,
        };
        let close = write_request(&head, to, &mut out);
        (String::from_utf8(out).unwrap(), close)
    }

    fn response(raw: &str, request_http11: bool, close: bool) -> (String, bool) {
        let head = super::super::http::parse_head(raw.as_bytes(), false).unwrap();
        let mut out = Vec::new();
        let to = ToClient {
            close,
            request_http11,
            httpclose: false,
            until_close: false,
            case: None,
        };
        let close = write_response(&head, to, &mut out);
        (String::from_utf8(out).unwrap(), close)
    }

    #[test]
    fn each_hop_gets_its_own_connection_header() {
        // What HAProxy 2.6 sent its server for these requests.
        let (out, close) = request(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Foo\r\n\r\n",
            false,
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: X-Foo\r\n\r\n"
        );
        assert!(!close);
        let (out, close) = request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true);
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        );
        assert!(close);
        let (out, _) = request(
            "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
            true,
        );
        assert_eq!(out, "GET / HTTP/1.0\r\nhost: x\r\n\r\n");
        let (out, _) = request(
            "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: w\r\n\r\n",
            false,
        );
        assert_eq!(
            out,
            "GET / HTTP/1.0\r\nconnection: Upgrade\r\nupgrade: w\r\n\r\n"
        );
        // And its clients for these responses.
        let (out, close) = response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", true, false);
        assert_eq!(
            out,
            "HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
        );
        assert!(!close);
        let (out, close) = response(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            true,
            false,
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert!(!close);
        let (out, close) = response(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            true,
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        assert!(close);
        let (out, _) = response(
            "HTTP/1.1 100 Continue\r\nConnection: keep-alive\r\n\r\n",
            false,
            true,
        );
        assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
        let (out, _) = response(
            "HTTP/1.1 204 No\r\nContent-Length: 0\r\nX: y\r\n\r\n",
            true,
            false,
        );
        assert_eq!(out, "HTTP/1.1 204 No\r\nx: y\r\n\r\n");
    }

    #[test]
    fn case_map_spells_names() {
        let map: CaseMap = [("host".to_string(), "HOST".to_string())].into();
        let head =
            super::super::http::parse_head(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n", true)
                .unwrap();
        let mut out = Vec::new();
        let to = ToServer {
            close_mode: false,
            case: Some(&map),
        };
        write_request(&head, to, &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\nHOST: x\r\nx-a: 1\r\n\r\n");
    }

    #[test]
    fn later_versions_go_to_servers_as_http11() {
        let mut head = super::super::http::parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true)
            .expect("a request head");
        let to = ToServer {
            close_mode: false,
            case: None,
        };
        // What HAProxy 2.6 sent its server for `GET / HTTP/V` on an HTTP/1 connection.
        for (version, sent) in [
            ("HTTP/2.0", "GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
            ("HTTP/1.2", "GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
            (
                "HTTP/0.9",
                "GET / HTTP/0.9\r\nhost: x\r\nconnection: keep-alive\r\n\r\n",
            ),
        ] {
            head.first[2] = version.to_string();
            let mut out = Vec::new();
            write_request(&head, to, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), sent, "{version}");
        }
    }

    #[test]
    fn versions() {
        assert!(is_http11("HTTP/1.1"));
        assert!(is_http11("HTTP/2.0"));
        assert!(!is_http11("HTTP/1.0"));
        assert!(!is_http11("HTTP/1"));
    }

    #[test]
    fn bytes_lines_and_blanks_are_found_as_by_str() {
        // Every position, within the eight-byte words and in the rest after them.
        for len in 0..20 {
            for at in 0..len {
                let mut hay = vec![b'a'; len];
                hay[at] = b'\n';
                if at + 2 < len {
                    hay[at + 2] = b'\n';
                }
                assert_eq!(find_byte(&hay, b'\n'), Some(at), "{len} {at}");
                // A byte just above or below the one searched is not it.
                hay[at] = b'\x0b';
                assert_eq!(find_byte(&hay[..at + 1], b'\n'), None);
                hay[at] = 0x8a;
                assert_eq!(find_byte(&hay[..at + 1], b'\n'), None);
            }
            assert_eq!(find_byte(&vec![0xff; len], 0xff), (len > 0).then_some(0));
        }
        for text in ["", "a", "a\n", "a\r\nb\r\n\r\n", "\n\n", "x\ry\n\r"] {
            let by_str: Vec<&str> = text
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect();
            assert_eq!(lines(text).collect::<Vec<_>>(), by_str, "{text:?}");
        }
        for line in [
            "",
            " ",
            "GET / HTTP/1.1",
            " \tGET  \t/x\u{a0}y \t HTTP/1.1 \t",
            "a\u{c}b c",
        ] {
            let by_str: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            assert_eq!(words(line).collect::<Vec<_>>(), by_str, "{line:?}");
            assert_eq!(
                split_at_blank(line),
                line.split_once([' ', '\t']),
                "{line:?}"
            );
            assert_eq!(
                trim_start_blanks(line),
                line.trim_start_matches([' ', '\t'])
            );
        }
        for value in ["", " ", " \t a b\t ", "\u{a0}x\u{c}", "x"] {
            assert_eq!(
                trim_blanks(value),
                value.trim_matches([' ', '\t']),
                "{value:?}"
            );
        }
    }
}
