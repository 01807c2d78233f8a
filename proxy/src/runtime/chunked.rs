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
//! [`Decoder::advance`] consumes only complete elements, so its caller forwards exactly the
//! bytes that were checked and reads more for the rest.

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

impl Decoder {
    /// Checks as much of `input` as forms complete elements and returns how many bytes that
    /// is (those may be forwarded as they are); the rest needs more input.
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
                        0 => Stage::Trailers,
                        n => Stage::Data(n),
                    };
                    (line.len(), next)
                }
                Stage::Data(_) if rest.is_empty() => return Ok(at),
                Stage::Data(left) => {
                    let n = (rest.len() as u64).min(left);
                    self.logged += n;
                    data(&rest[..n as usize]);
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
                        Stage::Done
                    } else {
                        self.logged += trailer(line)?;
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
