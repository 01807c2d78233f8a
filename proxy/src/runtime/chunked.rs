//! Strict chunked framing (RFC 9112 section 7.1), parsed the way HAProxy 2.6 parses it.
//!
//! A loose parser is a request-smuggling hole: if hapx and the server disagree on where a
//! body ends, the rest of it becomes a second request only the server sees. So every size
//! line, every CRLF after chunk data and every trailer field is checked before its bytes are
//! forwarded, and anything HAProxy refuses is refused here:
//! - a size is 1 or more hex digits whose value stays below 2^52 (HAProxy's bound, which
//!   also keeps `size + CRLF` arithmetic far from overflowing), then optional blanks, then
//!   optional `;extensions`, then CRLF (or a bare LF); no sign, no leading blank;
//! - chunk data must be followed by CRLF (or LF);
//! - trailers are header fields (`token ":" value`, no control characters), ended by an
//!   empty line.
//!
//! [`Decoder::advance`] consumes only complete elements, so its caller reads more for the
//! rest. What it checked is not forwarded as it came: [`Decoder::reframe`] writes it again
//! as HAProxy's HTTP/1 layer does (HAProxy decodes a body and encodes it anew), so that a
//! peer parsing bare LFs, extensions or odd trailers its own way sees only plain framing:
//! - the data of each call (what one read brought) goes as one chunk, its size in upper-case
//!   hex without leading zeros, every line ended by CRLF, no extensions;
//! - the last chunk is `0`, each trailer `name: value` with its name lower-cased (or
//!   spelled as an `h1-case-adjust` map says) and its value trimmed, then the empty line.

use super::h1::CaseMap;

/// Chunk sizes from 2^52 on are refused (HAProxy: never trust sizes that some languages
/// would hold in a float).
const SIZE_LIMIT: u64 = 1 << 52;

/// Longest size or trailer line accepted (HAProxy's default buffer size).
const MAX_LINE: usize = 16 * 1024;

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("malformed chunk size line")]
    Size,
    #[error("chunk size of 2^52 or more")]
    TooLarge,
    #[error("chunk data not followed by CRLF")]
    DataEnd,
    #[error("malformed trailer field")]
    Trailer,
    #[error("chunk or trailer line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

/// Where the decoder stands in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// An incremental checker of one chunked body.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    stage: Stage,
    /// [`Decoder::logged_size`] of what was checked so far.
    logged: u64,
}

/// One element of a chunked body, as [`Decoder::elements`] checks it.
enum Element<'a> {
    /// A piece of a chunk's data.
    Data(&'a [u8]),
    /// The last chunk's size line: the data ended.
    LastChunk,
    /// A trailer field's line, without its line end.
    Trailer(&'a [u8]),
    /// The empty line ending the trailers: the body ended.
    End,
}

impl Decoder {
    /// Checks as much of `input` as forms complete elements and returns how many bytes that
    /// is; the rest needs more input.
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        self.advance_with(input, |_| {})
    }

    /// [`Decoder::advance`], handing each piece of chunk data checked to `data` (for a
    /// caller that keeps the body itself, as the stats page keeps its admin form).
    pub fn advance_with(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        self.elements(input, |element| {
            if let Element::Data(piece) = element {
                data(piece);
            }
        })
    }

    /// [`Decoder::advance_with`], handing each trailer field checked to `trailer` too, as
    /// its name and its value without the blanks around it.
    pub fn advance_with_trailers(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
        mut trailer: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize, ChunkError> {
        self.elements(input, |element| match element {
            Element::Data(piece) => data(piece),
            Element::Trailer(line) => {
                let (name, value) = split_trailer(line);
                trailer(name, value);
            }
            Element::LastChunk | Element::End => {}
        })
    }

    /// [`Decoder::advance`], appending what it checked to `out` framed anew, as HAProxy's
    /// HTTP/1 layer frames a body it forwards (see the module's doc): the data checked by
    /// this call as one chunk, then the last chunk and trailers if they came, their names
    /// spelled as `case` says if given. Nothing is appended when the input is refused. The
    /// data is copied once; framing costs one size line per call.
    pub fn reframe(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        case: Option<&CaseMap>,
    ) -> Result<usize, ChunkError> {
        // The chunk's size goes first: a first pass on a copy of the state measures the
        // data (it reads size lines and trailers only, not the data), and finds an error
        // before anything is appended.
        let mut run = 0;
        self.clone().elements(input, |element| {
            if let Element::Data(piece) = element {
                run += piece.len();
            }
        })?;
        // Once, what this call may append: the input's length bounds it but for the new
        // size line and line ends (the input's own framing takes at least as much), so
        // that the copy does not grow the buffer again and again from empty.
        out.reserve(input.len() + SIZE_LINE_MAX + 4);
        if run > 0 {
            push_size_line(out, run);
        }
        let mut open = run > 0;
        self.elements(input, |element| match element {
            Element::Data(piece) => out.extend_from_slice(piece),
            Element::LastChunk => {
                if std::mem::take(&mut open) {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
            }
            Element::Trailer(line) => push_trailer(out, line, case),
            Element::End => out.extend_from_slice(b"\r\n"),
        })
        .inspect(|_| {
            if open {
                out.extend_from_slice(b"\r\n");
            }
        })
    }

    /// Checks as much of `input` as forms complete elements, handing each to `on`, and
    /// returns how many bytes that is.
    fn elements(
        &mut self,
        input: &[u8],
        mut on: impl FnMut(Element<'_>),
    ) -> Result<usize, ChunkError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            let (used, next) = match self.stage {
                Stage::Done => return Ok(at),
                Stage::Size => {
                    let Some(line) = line(rest)? else {
                        return Ok(at);
                    };
                    let next = match size(line)? {
                        0 => {
                            on(Element::LastChunk);
                            Stage::Trailers
                        }
                        n => Stage::Data(n),
                    };
                    (line.len(), next)
                }
                Stage::Data(_) if rest.is_empty() => return Ok(at),
                Stage::Data(left) => {
                    let n = (rest.len() as u64).min(left);
                    self.logged += n;
                    on(Element::Data(&rest[..n as usize]));
                    let next = if n == left {
                        Stage::DataEnd
                    } else {
                        Stage::Data(left - n)
                    };
                    (n as usize, next)
                }
                Stage::DataEnd => match rest {
                    [b'\n', ..] => (1, Stage::Size),
                    [b'\r', b'\n', ..] => (2, Stage::Size),
                    [] | [b'\r'] => return Ok(at),
                    _ => return Err(ChunkError::DataEnd),
                },
                Stage::Trailers => {
                    let Some(line) = line(rest)? else {
                        return Ok(at);
                    };
                    let next = if matches!(line, b"\r\n" | b"\n") {
                        self.logged += 1;
                        on(Element::End);
                        Stage::Done
                    } else {
                        self.logged += trailer(line)?;
                        on(Element::Trailer(content(line)));
                        Stage::Trailers
                    };
                    (line.len(), next)
                }
            };
            at += used;
            self.stage = next;
        }
    }

    /// Whether the whole body (through the empty line after the trailers) was seen.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The size HAProxy counts for the body checked so far in its logs and stats: the size
    /// of its internal form, not of the wire's framing: the chunks' data, each trailer's
    /// name and value, and one byte for the end of the trailers.
    pub fn logged_size(&self) -> u64 {
        self.logged
    }
}

/// Whether the start of a chunked body, as far as it arrived, is well formed: a request or
/// response failing this is refused before any of it is forwarded.
pub fn prefix_is_valid(input: &[u8]) -> bool {
    Decoder::default().advance(input).is_ok()
}

/// A chunk's size line, as HAProxy writes it: upper-case hex, no leading zeros.
/// The longest size line [`push_size_line`] writes: 16 hex digits and CRLF.
const SIZE_LINE_MAX: usize = 18;

fn push_size_line(out: &mut Vec<u8>, size: usize) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{size:X}\r\n");
}

/// A trailer field (its line checked by [`trailer`], without its line end) as HAProxy writes
/// it: `name: value`, the name lower-cased (or as `case` spells it), the value without the
/// blanks around it.
fn push_trailer(out: &mut Vec<u8>, line: &[u8], case: Option<&CaseMap>) {
    let (name, value) = split_trailer(line);
    let start = out.len();
    out.extend(name.iter().map(u8::to_ascii_lowercase));
    // A name is a token: ASCII, so the lower-cased bytes are its text.
    let spelled = case.and_then(|map| map.get(std::str::from_utf8(&out[start..]).ok()?));
    if let Some(spelled) = spelled {
        out.truncate(start);
        out.extend_from_slice(spelled.as_bytes());
    }
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A trailer field's line (checked by [`trailer`]) as its name and its trimmed value.
fn split_trailer(line: &[u8]) -> (&[u8], &[u8]) {
    let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    let (name, value) = line.split_at(colon);
    (name, value.get(1..).unwrap_or_default().trim_ascii())
}

/// The first line of `rest` with its LF, if complete.
fn line(rest: &[u8]) -> Result<Option<&[u8]>, ChunkError> {
    match rest.iter().position(|&b| b == b'\n') {
        Some(p) if p < MAX_LINE => Ok(Some(&rest[..=p])),
        Some(_) => Err(ChunkError::LineTooLong),
        None if rest.len() >= MAX_LINE => Err(ChunkError::LineTooLong),
        None => Ok(None),
    }
}

/// The line without its LF and the CR before it; a CR anywhere else is an error.
fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `1*HEXDIG *(SP / HTAB) [ ";" extensions ] CRLF`.
fn size(line: &[u8]) -> Result<u64, ChunkError> {
    let text = content(line);
    let digits = text.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ChunkError::Size);
    }
    let mut size = 0u64;
    for &b in &text[..digits] {
        // Below 2^52 before the shift, so the shift cannot overflow.
        size = size << 4 | u64::from(char::from(b).to_digit(16).unwrap_or(0));
        if size >= SIZE_LIMIT {
            return Err(ChunkError::TooLarge);
        }
    }
    let after = &text[digits..];
    let blanks = after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match &after[blanks..] {
        [] => Ok(size),
        [b';', ext @ ..] if !ext.contains(&b'\r') => Ok(size),
        _ => Err(ChunkError::Size),
    }
}

/// `field-name ":" field-value`, the name a token, the value free of control characters;
/// its logged size (name and value without the blanks around it).
fn trailer(line: &[u8]) -> Result<u64, ChunkError> {
    let text = content(line);
    let colon = text
        .iter()
        .position(|&b| b == b':')
        .ok_or(ChunkError::Trailer)?;
    let (name, value) = (&text[..colon], &text[colon + 1..]);
    let vchar = |b: &u8| *b == b'\t' || (*b >= 0x20 && *b != 0x7f);
    if name.is_empty()
        || !name.iter().copied().all(super::http::is_tchar)
        || !value.iter().all(vchar)
    {
        return Err(ChunkError::Trailer);
    }
    Ok((name.len() + value.trim_ascii().len()) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &str) -> Result<(usize, bool), ChunkError> {
        let mut d = Decoder::default();
        let n = d.advance(body.as_bytes())?;
        Ok((n, d.is_done()))
    }

    #[test]
    fn well_formed_bodies_are_consumed_whole() {
        for body in [
            "3\r\nabc\r\n0\r\n\r\n",
            "3 \t;ext=1\r\nabc\r\n0\r\n\r\n",
            "A\nabcdefghij\n0\n\n",
            "0003\r\nabc\r\n0\r\nx-sum: 1\r\nTag:\r\n\r\n",
        ] {
            assert_eq!(whole(body), Ok((body.len(), true)), "{body:?}");
        }
    }

    #[test]
    fn malformed_bodies_are_refused_like_haproxy() {
        for (body, err) in [
            ("3\r\nabcXX0\r\n\r\n", ChunkError::DataEnd),
            ("+3\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            (" 3 \r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            ("-3\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            ("0x3\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            ("3\rx\nabc\r\n0\r\n\r\n", ChunkError::Size),
            ("3;a\rb\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            ("\r\n", ChunkError::Size),
            ("ffffffffffffffff\r\nX\r\n0\r\n\r\n", ChunkError::TooLarge),
            ("10000000000000\r\nX\r\n", ChunkError::TooLarge),
            ("0\r\nbad trailer\r\n\r\n", ChunkError::Trailer),
            ("0\r\n: empty name\r\n\r\n", ChunkError::Trailer),
            ("0\r\nx-a: b\x01c\r\n\r\n", ChunkError::Trailer),
        ] {
            assert_eq!(whole(body), Err(err), "{body:?}");
        }
        let long = "1".repeat(MAX_LINE);
        assert_eq!(whole(&long), Err(ChunkError::LineTooLong));
    }

    #[test]
    fn logged_sizes_count_data_and_trailers_like_haproxy() {
        // HAProxy logged these bodies' responses as 67 and 68 bytes: 58 for the head
        // (`HTTP/1.1 200 OK`, `transfer-encoding: chunked`), and these.
        for (body, logged) in [
            ("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", 9),
            ("5\r\nhello\r\n0\r\nX-T:  1 \r\n\r\n", 10),
        ] {
            let mut d = Decoder::default();
            d.advance(body.as_bytes()).unwrap();
            assert_eq!(d.logged_size(), logged, "{body:?}");
        }
    }

    #[test]
    fn chunk_data_is_handed_over_as_checked() {
        let body = b"4\r\ns=s1\r\n3;x=y\r\n&b=\r\n0\r\n\r\n";
        let (mut d, mut data) = (Decoder::default(), Vec::new());
        let mut fed = 0;
        for end in 1..=body.len() {
            fed += d
                .advance_with(&body[fed..end], |piece| data.extend_from_slice(piece))
                .unwrap();
        }
        assert!(d.is_done());
        assert_eq!(data, b"s=s1&b=");
        // Data not followed by its CRLF is refused, handed over or not.
        let mut d = Decoder::default();
        assert_eq!(
            d.advance_with(b"2\r\nabX", |_| {}),
            Err(ChunkError::DataEnd)
        );
    }

    /// `body` reframed, fed in pieces ending at `cuts` (then the rest).
    fn reframed(body: &[u8], cuts: &[usize]) -> Vec<u8> {
        let (mut d, mut out, mut fed) = (Decoder::default(), Vec::new(), 0);
        for &end in cuts.iter().chain([&body.len()]) {
            fed += d.reframe(&body[fed..end], &mut out, None).unwrap();
        }
        assert!(d.is_done(), "{body:?}");
        out
    }

    #[test]
    fn bodies_are_reframed_as_haproxy_writes_them() {
        // HAProxy 2.6.12 forwarded these, each sent in one piece, as shown.
        for (body, framed) in [
            (
                &b"3;ext=1\nabc\n00A\r\n0123456789\r\n1\r\nx\r\n0;e\r\nX-Sum: 1\r\nFoo-Bar:  baz \r\n\r\n"[..],
                &b"E\r\nabc0123456789x\r\n0\r\nx-sum: 1\r\nfoo-bar: baz\r\n\r\n"[..],
            ),
            (b"0\r\n\r\n", b"0\r\n\r\n"),
            (b"0\n\n", b"0\r\n\r\n"),
            (
                b"1b \t;a=b\nyyyyyyyyyyyyyyyyyyyyyyyyyyy\n",
                b"1B\r\nyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
            ),
        ] {
            let (mut d, mut out) = (Decoder::default(), Vec::new());
            let used = d.reframe(body, &mut out, None).unwrap();
            assert_eq!(used, body.len());
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(framed)
            );
        }
    }

    #[test]
    fn each_call_s_data_is_one_chunk() {
        let body = b"5\r\nhello\r\n3\nabc\n0\r\nT: v\r\n\r\n";
        // Cut inside a chunk's data, after a data's CRLF alone, inside the trailers.
        assert_eq!(
            reframed(body, &[6, 10, 12, 20, 22]),
            b"3\r\nhel\r\n2\r\nlo\r\n3\r\nabc\r\n0\r\nt: v\r\n\r\n"
        );
        // Byte by byte: the same data and trailers, whatever the cuts.
        let cuts: Vec<usize> = (1..body.len()).collect();
        let out = reframed(body, &cuts);
        let mut d = Decoder::default();
        let mut data = Vec::new();
        assert_eq!(
            d.advance_with(&out, |p| data.extend_from_slice(p)),
            Ok(out.len())
        );
        assert_eq!(data, b"helloabc");
        assert!(out.ends_with(b"\r\n0\r\nt: v\r\n\r\n"));
    }

    #[test]
    fn trailer_names_are_spelled_as_a_case_map_says() {
        let case = CaseMap::from([("x-sum".to_string(), "X-Sum".to_string())]);
        let (mut d, mut out) = (Decoder::default(), Vec::new());
        let body = b"0\r\nX-SUM: 1\r\nX-Other: 2\r\n\r\n";
        assert_eq!(d.reframe(body, &mut out, Some(&case)), Ok(body.len()));
        assert_eq!(out, b"0\r\nX-Sum: 1\r\nx-other: 2\r\n\r\n");
    }

    #[test]
    fn a_refused_body_appends_nothing() {
        let (mut d, mut out) = (Decoder::default(), Vec::new());
        assert_eq!(
            d.reframe(b"3\r\nabc\r\n2\r\nxyZ", &mut out, None),
            Err(ChunkError::DataEnd)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn the_largest_size_below_the_bound_is_accepted() {
        let mut d = Decoder::default();
        assert_eq!(d.advance(b"fffffffffffff\r\nab"), Ok(17));
        assert!(!d.is_done());
    }

    #[test]
    fn split_input_resumes_where_it_stopped() {
        let body = b"5;x\r\nhello\r\n0\r\nx-t: 1\r\n\r\n";
        let mut d = Decoder::default();
        let mut fed = 0;
        // One byte more at a time: only whole elements are consumed, never more than given.
        for end in 1..=body.len() {
            let n = d.advance(&body[fed..end]).unwrap();
            fed += n;
            assert!(fed <= end);
        }
        assert_eq!(fed, body.len());
        assert!(d.is_done());
        assert!(prefix_is_valid(b"5\r\nhel"));
        assert!(!prefix_is_valid(b"5\r\nhelloXY"));
    }
}
