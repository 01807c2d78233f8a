//! What HAProxy 2.6 refuses in an error page read from a file (its `http_str_to_htx`): a
//! head its HTTP/1 response parser (`h1_headers_to_hdr_list`) does not take, with the
//! offset where it stopped, a version that is not 8 characters long, an interim status, a
//! chunked body, a body after a head that announces none, a body whose size is not the
//! `content-length` announced, or a body too large for the buffer that holds the page.

use std::fmt;

/// HAProxy's buffer size (`tune.bufsize`): a longer file is truncated to it.
pub const BUFSIZE: usize = 16384;

/// The header fields HAProxy's parser indexes (`tune.http.maxhdr`), its end marker included.
const MAX_HEADERS: usize = 101;

/// The room for a page's payload: the buffer less HAProxy's HTX overhead (its message
/// header and start-line descriptor, 68 bytes, and one 8-byte block for each of the start
/// line, the end of headers and the payload, plus the end of headers' byte), from which
/// the start line's words and each header (8 bytes, name and value) take their share.
const PAYLOAD_ROOM: usize = BUFSIZE - 68 - 3 * 8 - 1;

/// Why HAProxy refuses a page, worded as its alert says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// The head does not parse: the offset of the byte at fault, -2 when it ends early.
    Headers(i64),
    Version(String),
    Status(u16),
    Chunked,
    PayloadNotExpected,
    Length {
        body: usize,
        announced: u64,
    },
    TooLarge,
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::Headers(at) => write!(f, "unable to parse headers (error offset: {at})"),
            PageError::Version(v) => write!(f, "invalid http version ({v})"),
            PageError::Status(s) => {
                write!(f, "invalid http status code for an error message ({s})")
            }
            PageError::Chunked => f.write_str("chunk-encoded payload not supported"),
            PageError::PayloadNotExpected => f.write_str("message payload not expected"),
            PageError::Length { body, announced } => write!(
                f,
                "payload size does not match the announced content-length ({body} != {announced})"
            ),
            PageError::TooLarge => f.write_str("unable to add payload into the HTX message"),
        }
    }
}

/// A parsed response head.
struct Head<'a> {
    version: &'a [u8],
    status: u16,
    /// Its size, up to the payload.
    len: usize,
    content_length: Option<u64>,
    chunked: bool,
    /// What the start line and the indexed headers take of the page's buffer.
    htx_bytes: usize,
}

/// Checks `page` (already truncated to [`BUFSIZE`]) as HAProxy loads an error page; an
/// empty page is taken (HAProxy then closes without a reply).
pub fn check(page: &[u8]) -> Result<(), PageError> {
    if page.is_empty() {
        return Ok(());
    }
    let head = parse_head(page).map_err(PageError::Headers)?;
    if head.version.len() != 8 {
        return Err(PageError::Version(
            String::from_utf8_lossy(head.version).into_owned(),
        ));
    }
    if head.status < 200 && (head.status == 100 || head.status >= 102) {
        return Err(PageError::Status(head.status));
    }
    // A 204 or 304 has no body, whatever its head says.
    let (length, chunked) = if matches!(head.status, 204 | 304) {
        (Some(0), false)
    } else {
        (head.content_length, head.chunked)
    };
    if chunked {
        return Err(PageError::Chunked);
    }
    let body = page.len() - head.len;
    if body > 0 && length == Some(0) {
        return Err(PageError::PayloadNotExpected);
    }
    if let Some(announced) = length.filter(|&l| l != body as u64) {
        return Err(PageError::Length { body, announced });
    }
    if body > 0 && body + head.htx_bytes > PAYLOAD_ROOM {
        return Err(PageError::TooLarge);
    }
    Ok(())
}

/// The byte classes of HAProxy's parser.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_version_char(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'/' || c == b'.'
}

fn is_sp_ht(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_crlf(c: u8) -> bool {
    c == b'\r' || c == b'\n'
}

fn is_lws(c: u8) -> bool {
    is_sp_ht(c) || is_crlf(c)
}

/// A cursor over the page; running out of bytes is HAProxy's "missing data" (offset -2).
struct Cursor<'a> {
    page: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8, i64> {
        self.page.get(self.at).copied().ok_or(-2)
    }

    fn bump(&mut self) -> Result<u8, i64> {
        self.at += 1;
        self.peek()
    }

    /// An error at the current byte.
    fn fault<T>(&self) -> Result<T, i64> {
        Err(self.at as i64)
    }

    /// Expects a LF here (after a CR) and steps over it.
    fn lf(&mut self) -> Result<(), i64> {
        if self.peek()? != b'\n' {
            return self.fault();
        }
        self.at += 1;
        Ok(())
    }

    /// Steps over a line end: CR LF or a lone LF.
    fn line_end(&mut self) -> Result<(), i64> {
        if self.peek()? == b'\r' {
            self.at += 1;
        }
        self.lf()
    }
}

/// HAProxy's `h1_headers_to_hdr_list` on a response, as `http_str_to_htx` calls it.
fn parse_head(page: &[u8]) -> Result<Head<'_>, i64> {
    let mut c = Cursor { page, at: 0 };
    // Blank lines before the message are skipped.
    loop {
        match c.peek()? {
            b'\n' => c.at += 1,
            b'\r' => {
                c.at += 1;
                c.lf()?;
            }
            b if is_token(b) => break,
            _ => return c.fault(),
        }
    }
    let version_start = c.at;
    while is_version_char(c.peek()?) {
        c.at += 1;
    }
    if !is_sp_ht(c.peek()?) {
        return c.fault();
    }
    let version = &page[version_start..c.at];
    while is_sp_ht(c.bump()?) {}
    if is_crlf(c.peek()?) {
        return c.fault();
    }
    let code_start = c.at;
    let mut status: u16 = 0;
    while let digit @ b'0'..=b'9' = c.peek()? {
        status = status
            .wrapping_mul(10)
            .wrapping_add(u16::from(digit - b'0'));
        c.at += 1;
    }
    if !is_lws(c.peek()?) {
        return c.fault();
    }
    let code_len = c.at - code_start;
    while is_sp_ht(c.peek()?) {
        c.at += 1;
    }
    let reason_start = c.at;
    while !is_crlf(c.peek()?) {
        c.at += 1;
    }
    let reason_len = c.at - reason_start;
    c.line_end()?;
    let mut head = Head {
        version,
        status,
        len: 0,
        content_length: None,
        chunked: false,
        htx_bytes: version.len() + code_len + reason_len,
    };
    let mut fields = Fields::default();
    while !is_crlf(c.peek()?) {
        let (name, (start, end)) = header_line(&mut c)?;
        // No room left for this field: an error where its line ends.
        if fields.count >= MAX_HEADERS {
            return c.fault();
        }
        fields.index(name, &page[start..end], start, &mut head)?;
    }
    c.line_end()?;
    // The end marker takes a place too.
    if fields.count >= MAX_HEADERS {
        return c.fault();
    }
    if fields.transfer_encoding {
        head.content_length = None;
    }
    head.len = c.at;
    Ok(head)
}

/// One header line, folded continuation lines included: its name and its value's bounds
/// (trimmed), the cursor left at the next line.
fn header_line<'a>(c: &mut Cursor<'a>) -> Result<(&'a [u8], (usize, usize)), i64> {
    let name_start = c.at;
    loop {
        let b = c.peek()?;
        if b == b':' {
            break;
        }
        if !is_token(b) {
            return c.fault();
        }
        c.at += 1;
    }
    if c.at == name_start {
        return c.fault();
    }
    let name = &c.page[name_start..c.at];
    c.at += 1;
    let value_start = c.at;
    loop {
        while !is_crlf(c.peek()?) {
            c.at += 1;
        }
        c.line_end()?;
        // A line starting with a blank continues the value (obs-fold).
        if !is_sp_ht(c.peek()?) {
            break;
        }
    }
    let mut end = c.at;
    while end > value_start && is_lws(c.page[end - 1]) {
        end -= 1;
    }
    let mut start = value_start;
    while start < end && is_lws(c.page[start]) {
        start += 1;
    }
    Ok((name, (start, end)))
}

/// What the header fields seen so far say.
#[derive(Default)]
struct Fields {
    /// Indexed fields (a repeated equal `content-length` or an empty `connection` is not).
    count: usize,
    transfer_encoding: bool,
    chunked_seen: bool,
}

impl Fields {
    /// Takes field `name` whose value is `text`, found at offset `at` of the page; a bad
    /// `content-length` or `transfer-encoding` is an error there.
    fn index(
        &mut self,
        name: &[u8],
        text: &[u8],
        at: usize,
        head: &mut Head<'_>,
    ) -> Result<(), i64> {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.transfer_encoding = true;
            head.chunked = false;
            for word in text.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if word.is_empty() {
                    continue;
                }
                head.chunked = word.eq_ignore_ascii_case(b"chunked");
                // Chunked twice is refused (RFC 7230 3.3.1).
                if head.chunked && std::mem::replace(&mut self.chunked_seen, true) {
                    head.chunked = false;
                    return Err(at as i64);
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let length = crate::runtime::error_capture::content_length(text).ok_or(at as i64)?;
            match head.content_length {
                Some(known) if known != length => return Err(at as i64),
                Some(_) => return Ok(()),
                None => head.content_length = Some(length),
            }
        } else if name.eq_ignore_ascii_case(b"connection") && text.is_empty() {
            return Ok(());
        }
        self.count += 1;
        head.htx_bytes += 8 + name.len() + text.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HAProxy 2.6.12's verdicts on these pages (`haproxy -c` with each as an errorfile).
    #[test]
    fn pages_are_judged_as_haproxy_judges_them() {
        let cases: &[(&[u8], Result<(), PageError>)] = &[
            (b"not http at all\n", Err(PageError::Headers(0))),
            (b"HTTP/1.0 403 Forbidden\nContent-Length: 2\n\nok", Ok(())),
            (
                b"HTTP/1.0 403 Forbidden\r\nContent-Length: 2\r\n",
                Err(PageError::Headers(-2)),
            ),
            (
                b"HTTP/1.0 403 Forbidden\r\nbad header line\r\n\r\n",
                Err(PageError::Headers(27)),
            ),
            (
                b"HTTP/1.0 403 F\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
                Err(PageError::Headers(51)),
            ),
            (
                b"HTTP/1 403 Forbidden\r\n\r\n",
                Err(PageError::Version("HTTP/1".into())),
            ),
            (b"HTTP/1.1 102 P\r\n\r\n", Err(PageError::Status(102))),
            (b"HTTP/1.1 101 P\r\n\r\n", Ok(())),
            (
                b"HTTP/1.1 204 No\r\nContent-Length: 3\r\n\r\nabc",
                Err(PageError::PayloadNotExpected),
            ),
            (b"HTTP/1.1 204 No\r\nContent-Length: 3\r\n\r\n", Ok(())),
            (
                b"HTTP/1.0 403 F\r\nContent-Length: 5\r\n\r\n",
                Err(PageError::Length {
                    body: 0,
                    announced: 5,
                }),
            ),
            (
                b"HTTP/1.1 403 F\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Err(PageError::Chunked),
            ),
            (b"\r\n\nHTTP/1.0 403 F\r\nX-A: 1\r\n  more\r\n\r\n", Ok(())),
        ];
        for (page, verdict) in cases {
            assert_eq!(&check(page), verdict, "{}", String::from_utf8_lossy(page));
        }
    }

    #[test]
    fn a_payload_fits_haproxys_buffer_or_not() {
        let page = |size: usize| {
            let mut page = b"HTTP/1.0 403 F\r\n\r\n".to_vec();
            page.resize(page.len() + size, b'a');
            page
        };
        // The largest HAProxy 2.6.12 took, then one byte more.
        assert_eq!(check(&page(16279)), Ok(()));
        assert_eq!(check(&page(16280)), Err(PageError::TooLarge));
    }
}
