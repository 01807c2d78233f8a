//! HAProxy's strings are bytes; hapx keeps them in Rust `String`s, losslessly.
//!
//! A header value may hold any byte but CR and LF (a latin-1 `é` is the single byte 0xE9,
//! which is not UTF-8), and HAProxy forwards, logs, matches and rewrites such values byte for
//! byte. hapx carries every byte that is not part of valid UTF-8 as one private-use
//! character, U+10FF00 plus the byte ([`from_bytes`]), and writes it back as that byte
//! wherever a string leaves as bytes ([`to_bytes`]): on the wire, in log lines, into the
//! converters (which work on bytes). Valid UTF-8 stays as it is, so that ASCII comparisons,
//! configuration strings and the common case cost nothing; the characters of the reserved
//! range itself are carried as their four bytes, so that the mapping is one-to-one.
//!
//! **The rule: every ingress goes through [`from_bytes`] or [`from_vec`].** Configuration
//! files, pattern and case-adjust files, environment variables, the master CLI and the
//! runtime API's input, request and response heads: bytes from outside become strings only
//! through these two, never through `from_utf8_lossy` (which loses bytes) nor through a
//! plain `str::from_utf8`/`read_to_string` (which refuses them or, for a reserved character
//! written as its four UTF-8 bytes, would let [`canonical`] or [`to_bytes`] read it as the
//! byte it carries). A string built from such strings and [`carrier`]s keeps the invariant
//! that every reserved character in it is a carried byte, which [`canonical`] relies on.
//! Egress is the mirror: [`to_bytes`]/[`push_bytes`] wherever a string leaves as bytes.
//!
//! The cost on the hot path is one scan for the byte 0xF4 (the only lead byte of the reserved
//! range) per head parsed and per value written.

use std::borrow::Cow;

/// The first of the 256 characters that carry a raw byte each.
const BASE: u32 = 0x10FF00;
/// UTF-8's lead byte of every character from U+100000 up, the reserved ones included.
const LEAD: u8 = 0xF4;

/// The string that carries `raw`: borrowed when `raw` is UTF-8 without reserved characters.
pub fn from_bytes(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&LEAD)
        && let Ok(text) = std::str::from_utf8(raw)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_carrier(c) {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .for_each(|b| out.push(carrier(b)));
            } else {
                out.push(c);
            }
        }
        chunk.invalid().iter().for_each(|&b| out.push(carrier(b)));
    }
    Cow::Owned(out)
}

/// The bytes `s` carries: borrowed when it has no carried byte.
pub fn to_bytes(s: &str) -> Cow<'_, [u8]> {
    if !s.as_bytes().contains(&LEAD) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    push_bytes(&mut out, s);
    Cow::Owned(out)
}

/// Appends the bytes `s` carries to `out`.
pub fn push_bytes(out: &mut Vec<u8>, s: &str) {
    if !s.as_bytes().contains(&LEAD) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let mut buf = [0u8; 4];
    for c in s.chars() {
        match carried(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
}

/// The string that carries `raw`, owned.
pub fn from_vec(raw: Vec<u8>) -> String {
    match String::from_utf8(raw) {
        Ok(text) if !text.as_bytes().contains(&LEAD) => text,
        Ok(text) => from_bytes(text.as_bytes()).into_owned(),
        Err(e) => from_bytes(e.as_bytes()).into_owned(),
    }
}

/// How many bytes `s` carries (HAProxy's length of a string).
pub fn byte_len(s: &str) -> usize {
    if !s.as_bytes().contains(&LEAD) {
        return s.len();
    }
    s.chars()
        .map(|c| carried(c).map_or(c.len_utf8(), |_| 1))
        .sum()
}

/// The first `len` bytes of `s`, up to its first NUL byte: a captured header as HAProxy
/// keeps it (a C string of at most the capture's length, cut wherever that falls).
pub fn cut(s: &str, len: usize) -> String {
    let bytes = to_bytes(s);
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(bytes.len())
        .min(len);
    match bytes {
        Cow::Borrowed(b) if std::str::from_utf8(&b[..end]).is_ok() => s[..end].to_string(),
        b => from_vec(b[..end].to_vec()),
    }
}

/// The byte a character carries, if it is one of the reserved ones.
pub fn carried(c: char) -> Option<u8> {
    is_carrier(c).then(|| (u32::from(c) - BASE) as u8)
}

fn is_carrier(c: char) -> bool {
    u32::from(c) >= BASE
}

/// The character that carries byte `b`: itself when ASCII (a string built byte by byte from
/// these is then made [`canonical`]).
pub fn carrier(b: u8) -> char {
    if b.is_ascii() {
        return char::from(b);
    }
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// `s` as [`from_bytes`] would carry its bytes: carried bytes that form valid UTF-8 together
/// (`\xc3\xa9` in a configuration is `é`) become the characters they form.
///
/// `s` must hold the invariant of the module's rule (built from [`from_bytes`] strings and
/// [`carrier`]s): a reserved character that did not come in as a carried byte would be taken
/// for one here.
pub fn canonical(s: String) -> String {
    if !s.as_bytes().contains(&LEAD) {
        return s;
    }
    from_vec(to_bytes(&s).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_kept_as_it_is() {
        for text in ["", "plain", "caf\u{e9}", "\u{1F600}", "\u{10FEFF}"] {
            assert_eq!(from_bytes(text.as_bytes()), text);
            assert_eq!(*to_bytes(text), *text.as_bytes());
            assert_eq!(byte_len(text), text.len());
        }
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            from_bytes(b"caf\xc3\xa9"),
            Cow::Borrowed("caf\u{e9}")
        ));
        assert!(matches!(
            to_bytes("caf\u{e9}"),
            Cow::Borrowed(b"caf\xc3\xa9")
        ));
    }

    #[test]
    fn every_byte_string_goes_through_unchanged() {
        let cases: [&[u8]; 6] = [
            b"caf\xe9 ok",
            b"a\xffb\x80",
            b"\xf4\x8f\xbf\xa9",
            b"\xf4\x8f\xbc\x80x\xc3\xa9",
            b"\xf4",
            b"trailing \xc3",
        ];
        for raw in cases {
            let text = from_bytes(raw);
            assert_eq!(*to_bytes(&text), *raw, "{raw:?}");
            assert_eq!(byte_len(&text), raw.len(), "{raw:?}");
            assert_eq!(from_vec(raw.to_vec()), text);
            let mut out = b"x".to_vec();
            push_bytes(&mut out, &text);
            assert_eq!(&out[1..], raw);
        }
        // Each of the 256 bytes on its own.
        for b in 0..=255u8 {
            assert_eq!(*to_bytes(&from_bytes(&[b])), [b]);
        }
    }

    #[test]
    fn cuts_count_bytes_and_stop_at_nul() {
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("a\0b", 10), "a");
        let cut_e = cut("caf\u{e9}", 4);
        assert_eq!(*to_bytes(&cut_e), *b"caf\xc3");
        assert_eq!(*to_bytes(&cut(&from_bytes(b"\xe9\xff"), 1)), *b"\xe9");
    }

    #[test]
    fn carried_bytes_that_form_utf8_become_its_characters() {
        let built: String = [0x61, 0xc3, 0xa9, 0xe9].into_iter().map(carrier).collect();
        let text = canonical(built);
        assert!(text.starts_with("a\u{e9}"));
        assert_eq!(*to_bytes(&text), *b"a\xc3\xa9\xe9");
    }

    #[test]
    fn a_raw_byte_is_one_character() {
        let text = from_bytes(b"caf\xe9");
        assert_eq!(text.chars().count(), 4);
        assert_eq!(text.chars().last().and_then(carried), Some(0xe9));
        assert_ne!(text, "caf\u{e9}");
    }
}
