//! Applying converters to a fetched sample, as HAProxy 2.6 does: each converter takes its
//! input type, the sample is cast to it first (HAProxy's `sample_casts`), and a converter
//! that fails (`b64dec` of invalid base64, `ipmask` of an IPv6 address without an IPv6
//! mask, `field` past the last field) drops the sample, as if the fetch found nothing.
//!
//! Strings are bytes inside the chain (`b64dec,length` counts bytes; a binary cast to a
//! string stops at its first NUL byte, as in HAProxy) and become text at the end.
//! The converters themselves are parsed in [`crate::config::converter`].

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::lbhash::{crc32, djb2, full_hash, sdbm, wt6};
use super::sample::Sample;
use crate::config::converter::{Arith, Converter, Hash, JsonInput, RegSub, SampleType, Split};
use crate::config::pcre;

/// A sample between converters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Bool(bool),
    Int(i64),
    Ip(IpAddr),
    Str(Vec<u8>),
    Bin(Vec<u8>),
}

impl Value {
    fn of(sample: Sample<'_>) -> Value {
        match sample {
            Sample::Bool(b) => Value::Bool(b),
            Sample::Int(n) => Value::Int(n),
            Sample::Ip(ip) => Value::Ip(ip),
            // The bytes the string carries (see `bytestr`).
            Sample::Str(s) => Value::Str(crate::bytestr::to_bytes(&s).into_owned()),
            Sample::Bin(b) => Value::Bin(b),
        }
    }
}

/// `sample` through `chain`; None when a converter fails or a cast does not exist.
pub fn apply<'a>(sample: Sample<'a>, chain: &[Converter]) -> Option<Sample<'a>> {
    if chain.is_empty() {
        return Some(sample);
    }
    let mut value = Value::of(sample);
    for conv in chain {
        let input = cast(value, conv.types().0)?;
        value = convert(conv, input)?;
    }
    Some(match value {
        Value::Bool(b) => Sample::Bool(b),
        Value::Int(n) => Sample::Int(n),
        Value::Ip(ip) => Sample::Ip(ip),
        Value::Str(s) => Sample::Str(Cow::Owned(crate::bytestr::from_vec(s))),
        Value::Bin(b) => Sample::Bin(b),
    })
}

/// `sample` as HAProxy's cast to binary gives it (`balance hash`): integers as 8 bytes and
/// addresses as 4 or 16, in network order; strings as their bytes.
pub fn to_binary(sample: Sample<'_>) -> Vec<u8> {
    match cast(Value::of(sample), SampleType::Bin) {
        Some(Value::Bin(b)) => b,
        // Every sample type has a cast to binary.
        _ => Vec::new(),
    }
}

/// `sample` as HAProxy casts it to an integer (an ACL's `-m int`, `-m bool`): a string's
/// leading digits, an IPv4 address's number; None where it has no such cast.
pub fn to_int(sample: &Sample<'_>) -> Option<i64> {
    let value = match sample {
        Sample::Str(s) => return str_to_int(&crate::bytestr::to_bytes(s)),
        other => cast(Value::of(other.clone()), SampleType::Int)?,
    };
    match value {
        Value::Int(n) => Some(n),
        _ => None,
    }
}

/// HAProxy's cast of `v` to `to`, None where it has none.
fn cast(v: Value, to: SampleType) -> Option<Value> {
    use SampleType as T;
    Some(match (v, to) {
        (Value::Bool(b), T::Bool) => Value::Bool(b),
        (Value::Bool(b), T::Int) => Value::Int(i64::from(b)),
        (Value::Bool(b), T::Str) => Value::Str(u8::from(b).to_string().into_bytes()),
        (Value::Bool(b), T::Bin) => Value::Bin(i64::from(b).to_be_bytes().to_vec()),
        (Value::Int(n), T::Bool) => Value::Bool(n != 0),
        (Value::Int(n), T::Int) => Value::Int(n),
        (Value::Int(n), T::Ip) => Value::Ip(IpAddr::V4(Ipv4Addr::from(n as u32))),
        (Value::Int(n), T::Str) => Value::Str(n.to_string().into_bytes()),
        (Value::Int(n), T::Bin) => Value::Bin(n.to_be_bytes().to_vec()),
        (Value::Ip(IpAddr::V4(ip)), T::Int) => Value::Int(i64::from(u32::from(ip))),
        (Value::Ip(ip), T::Ip) => Value::Ip(ip),
        (Value::Ip(ip), T::Str) => Value::Str(ip.to_string().into_bytes()),
        (Value::Ip(IpAddr::V4(ip)), T::Bin) => Value::Bin(ip.octets().to_vec()),
        (Value::Ip(IpAddr::V6(ip)), T::Bin) => Value::Bin(ip.octets().to_vec()),
        (Value::Str(s), T::Bool) => Value::Bool(str_to_int(&s)? != 0),
        (Value::Str(s), T::Int) => Value::Int(str_to_int(&s)?),
        (Value::Str(s), T::Ip) => Value::Ip(str_to_ip(&s)?),
        (Value::Str(s) | Value::Bin(s), T::Bin) => Value::Bin(s),
        (Value::Str(s), T::Str) => Value::Str(s),
        (Value::Bin(mut b), T::Str) => {
            b.truncate(b.iter().position(|&c| c == 0).unwrap_or(b.len()));
            Value::Str(b)
        }
        _ => return None,
    })
}

/// HAProxy's string to integer (`c_str2int`): [`read_int64`] of the leading sign and
/// digits (`12ab` is 12, `ab` is 0); an empty string has no value.
pub(crate) fn str_to_int(s: &[u8]) -> Option<i64> {
    (!s.is_empty()).then(|| read_int64(s).0)
}

/// HAProxy's `read_int64`: an optional sign and the digits that follow, saturated at the
/// 64-bit bounds (`read_uint64` stops at `u64::MAX`, then the sign caps it to `i64`);
/// with how many bytes were read.
pub(crate) fn read_int64(s: &[u8]) -> (i64, usize) {
    let (neg, sign) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = s[sign..].iter().take_while(|c| c.is_ascii_digit()).count();
    let magnitude = s[sign..sign + digits].iter().fold(0u64, |n, c| {
        n.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    });
    let n = match neg {
        true => 0i64.checked_sub_unsigned(magnitude).unwrap_or(i64::MIN),
        false => i64::try_from(magnitude).unwrap_or(i64::MAX),
    };
    (n, sign + digits)
}

/// [`read_int64`] of a whole text (HAProxy's integer arguments and map values); None when
/// something else follows the digits.
pub(crate) fn read_whole_int64(s: &str) -> Option<i64> {
    let (n, read) = read_int64(s.as_bytes());
    (read == s.len()).then_some(n)
}

/// HAProxy's `c_str2addr`: `buf2ip` (four octets, what follows them ignored), else IPv6.
pub(crate) fn str_to_ip(s: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = super::map::buf2ip(s) {
        return Some(IpAddr::V4(v4));
    }
    let text = std::str::from_utf8(s).ok()?;
    text.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
}

/// One converter on an input already cast to its type.
fn convert(conv: &Converter, v: Value) -> Option<Value> {
    use Converter as C;
    let (bytes, int) = match &v {
        Value::Str(s) | Value::Bin(s) => (s.as_slice(), 0),
        Value::Int(n) => (&[][..], *n),
        _ => (&[][..], 0),
    };
    let text = |s: Vec<u8>| Some(Value::Str(s));
    match conv {
        C::Lower => text(writable(bytes).to_ascii_lowercase()),
        C::Upper => text(writable(bytes).to_ascii_uppercase()),
        C::IpMask { v4, v6 } => match v {
            Value::Ip(IpAddr::V4(ip)) => Some(Value::Ip(IpAddr::V4((u32::from(ip) & v4).into()))),
            // HAProxy's `c_ipv62ip` first: an IPv4-mapped address is masked as IPv4.
            Value::Ip(IpAddr::V6(ip)) if let Some(ip) = ip.to_ipv4_mapped() => {
                Some(Value::Ip(IpAddr::V4((u32::from(ip) & v4).into())))
            }
            Value::Ip(IpAddr::V6(ip)) => {
                let mask = (*v6)?;
                Some(Value::Ip(IpAddr::V6((u128::from(ip) & mask).into())))
            }
            _ => None,
        },
        // Two digits a byte while they fit in the buffer.
        C::Hex => text(
            bytes[..bytes.len().min(TRASH / 2)]
                .iter()
                .flat_map(|b| format!("{b:02X}").into_bytes())
                .collect(),
        ),
        C::Base64 => text(base64_bounded(bytes)?.into_bytes()),
        C::Ub64Enc => {
            let b64 = base64_bounded(bytes)?;
            let url = b64
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_");
            text(url.into_bytes())
        }
        C::B64Dec => base64_decode(bytes).map(Value::Bin),
        C::Length => Some(Value::Int(bytes.len() as i64)),
        C::Bytes { offset, length } => {
            let start = usize::try_from(*offset).ok()?.min(bytes.len());
            let rest = &bytes[start..];
            let n = length
                .and_then(|l| usize::try_from(l).ok())
                .map_or(rest.len(), |l| l.min(rest.len()));
            Some(Value::Bin(rest[..n].to_vec()))
        }
        C::Field(split) => span(bytes, split, false).map(|s| Value::Str(s.to_vec())),
        C::Word(split) => {
            // A word that is not there gives an empty string (a missing field, nothing).
            text(span(bytes, split, true).unwrap_or_default().to_vec())
        }
        C::RegSub(r) => text(regsub(r, bytes)),
        C::UrlDec { in_form } => url_decode(bytes, *in_form).map(Value::Str),
        // HAProxy fails the conversion when the escaped text does not fit in its buffer.
        C::Json(input) => json(bytes, *input)
            .filter(|s| s.len() <= TRASH)
            .map(|s| Value::Str(s.into_bytes())),
        C::Arith(op, arg) => Some(Value::Int(arith(*op, int, *arg))),
        C::Neg => Some(Value::Int(int.saturating_neg())),
        C::Cpl => Some(Value::Int(!int)),
        C::Not => Some(Value::Bool(int == 0)),
        C::Bool => Some(Value::Bool(int != 0)),
        C::Even => Some(Value::Bool(int & 1 == 0)),
        C::Odd => Some(Value::Bool(int & 1 == 1)),
        C::Hash { hash, avalanche } => {
            let h = match hash {
                Hash::Crc32 => crc32(bytes),
                Hash::Djb2 => djb2(bytes),
                Hash::Sdbm => sdbm(bytes),
                Hash::Wt6 => wt6(bytes),
            };
            Some(Value::Int(i64::from(if *avalanche {
                full_hash(h)
            } else {
                h
            })))
        }
        C::Xxh32(seed) => Some(Value::Int(i64::from(xxh32(bytes, *seed)))),
        C::Xxh64(seed) => Some(Value::Int(xxh64(bytes, *seed) as i64)),
        C::Ltrim(chars) => {
            let from = bytes.iter().position(|b| !chars.contains(b));
            text(from.map_or(Vec::new(), |i| bytes[i..].to_vec()))
        }
        C::Rtrim(chars) => {
            let to = bytes.iter().rposition(|b| !chars.contains(b));
            text(to.map_or(Vec::new(), |i| bytes[..=i].to_vec()))
        }
        C::Concat(tail) => {
            let mut out = [writable(bytes), &crate::bytestr::to_bytes(tail)].concat();
            out.truncate(TRASH - 1);
            text(out)
        }
        C::UrlEnc => text(url_encode(bytes)),
        C::HostOnly => text(host_port(writable(bytes)).0.to_vec()),
        C::PortOnly => {
            // HAProxy adds up the port's characters as digits, whatever they are.
            let port = host_port(bytes).1.unwrap_or_default();
            let n = port.iter().fold(0i64, |n, &c| {
                n.wrapping_mul(10)
                    .wrapping_add(i64::from(c) - i64::from(b'0'))
            });
            Some(Value::Int(n))
        }
        C::Map(m) => map_lookup(m, v),
    }
}

/// A map converter on its input (a string, an integer or an address, as it takes).
fn map_lookup(m: &crate::runtime::map::MapConv, v: Value) -> Option<Value> {
    use crate::runtime::map::{Input, Value as Found};
    let input = match &v {
        Value::Str(s) | Value::Bin(s) => Input::Bytes(s),
        Value::Int(n) => Input::Int(*n),
        Value::Ip(ip) => Input::Ip(*ip),
        Value::Bool(_) => return None,
    };
    Some(match m.lookup(input)? {
        Found::Str(s) => Value::Str(s),
        Found::Int(n) => Value::Int(n),
        Found::Ip(ip) => Value::Ip(ip),
    })
}

/// The size of HAProxy's trash buffers (`tune.bufsize`, which hapx keeps at its default):
/// the converters that build a new string build it in one, so none yields more.
const TRASH: usize = super::BUFSIZE;

/// `s` as HAProxy's `smp_make_rw` leaves it before a converter changes it in place
/// (`lower`, `upper`, `host_only`) or appends to it (`concat`): a string that fills a whole
/// buffer is copied into a new one, less the byte kept for its final NUL.
fn writable(s: &[u8]) -> &[u8] {
    &s[..s.len().min(TRASH - 1)]
}

/// `base64`/`ub64enc`'s encoding, None when it (padding and final NUL included) does not fit
/// in a buffer: HAProxy's `a2base64` then fails the conversion.
fn base64_bounded(s: &[u8]) -> Option<String> {
    (s.len().div_ceil(3) * 4 < TRASH).then(|| base64_encode(s))
}

/// `field`/`word`: the bytes from the `index`th part to `count` parts on (towards the end,
/// or the start for a negative index); a count of 0 or beyond the parts reaches the end.
/// Fields are between any two delimiters; words are non-empty runs between them.
fn span<'b>(s: &'b [u8], split: &Split, words: bool) -> Option<&'b [u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, b) in s.iter().enumerate() {
        if split.delims.contains(b) {
            parts.push((start, i));
            start = i + 1;
        }
    }
    parts.push((start, s.len()));
    if words {
        parts.retain(|(a, b)| a < b);
    }
    let n = parts.len() as i64;
    let count = split.count.max(0);
    if split.index > 0 {
        let first = split.index - 1;
        let (from, _) = *parts.get(usize::try_from(first).ok()?)?;
        let last = first.saturating_add(count - 1);
        let to = if count == 0 || last >= n {
            s.len()
        } else {
            parts[last as usize].1
        };
        Some(&s[from..to])
    } else {
        let last = n.saturating_add(split.index);
        let (_, to) = *parts.get(usize::try_from(last).ok()?)?;
        let first = last.saturating_sub(count - 1);
        let from = if count == 0 || first < 0 {
            0
        } else {
            parts[first as usize].0
        };
        Some(&s[from..to])
    }
}

/// A Host value split at its last `:` when no `]` follows it (`[::1]:80`, `a:1:2`).
fn host_port(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match s.iter().rposition(|&c| c == b':') {
        Some(p) if !s[p..].contains(&b']') => (&s[..p], Some(&s[p + 1..])),
        _ => (s, None),
    }
}

/// `url_enc`: every byte but `A-Za-z0-9-._~` as `%HH`, as HAProxy's `encode_chunk` writes
/// it into a buffer: it stops at the first byte that does not fit, keeping one byte for the
/// final NUL and, before an escape, one more.
fn url_encode(s: &[u8]) -> Vec<u8> {
    let stop = TRASH - 1;
    let mut out = Vec::with_capacity(s.len().min(stop));
    for &c in s {
        if out.len() >= stop {
            break;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else if out.len() + 3 < stop {
            out.extend_from_slice(format!("%{c:02X}").as_bytes());
        } else {
            break;
        }
    }
    out
}

/// `regsub`, HAProxy's loop: the first match (every one with `g`) replaced by `subst`
/// (`exp_replace`'s `\N`, `\xHH`, `\c`). After a match the rest is a new subject that does
/// not start a line (look-behind sees nothing before it), and an empty match at its start
/// lets one byte through. The result is built in a trash buffer: each piece (the text before
/// a match, the replacement, the byte after an empty match) is cut to the room left, so the
/// result stops at `tune.bufsize` bytes while the matching goes on.
fn regsub(r: &RegSub, input: &[u8]) -> Vec<u8> {
    let subst = crate::bytestr::to_bytes(&r.subst);
    let mut out = Vec::with_capacity(input.len().min(TRASH));
    let mut replacement = Vec::new();
    let mut start = 0;
    let mut first = true;
    loop {
        let rest = &input[start..];
        if !r.global && !first {
            append_bounded(&mut out, rest);
            return out;
        }
        let Some(groups) = r.regex.captures(rest, !first) else {
            append_bounded(&mut out, rest);
            return out;
        };
        let Some((from, to)) = groups[0] else {
            append_bounded(&mut out, rest);
            return out;
        };
        append_bounded(&mut out, &rest[..from]);
        // A replacement cut short gives what it wrote (HAProxy copies an undefined tail).
        replacement.clear();
        let _ = pcre::expand(&subst, rest, &groups, &mut replacement);
        append_bounded(&mut out, &replacement);
        if rest.is_empty() {
            return out;
        }
        let mut advance = to;
        if advance == 0 {
            append_bounded(&mut out, &rest[..1]);
            advance = 1;
        }
        start += advance;
        first = false;
    }
}

/// Appends what fits of `piece` in a trash buffer holding `out`.
fn append_bounded(out: &mut Vec<u8>, piece: &[u8]) {
    let room = TRASH.saturating_sub(out.len());
    out.extend_from_slice(&piece[..piece.len().min(room)]);
}

/// HAProxy's `url_decode`: `%HH` decoded (a bad one fails), `+` a space in a form or after
/// a `?`.
pub(super) fn url_decode(s: &[u8], mut in_form: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' if in_form => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(
                    u8::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| hex.bytes().all(|c| c.is_ascii_hexdigit()))?,
                );
                i += 2;
            }
            b'?' => {
                in_form = true;
                out.push(b'?');
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// `json`: the sample escaped for a JSON string, characters outside printable ASCII as
/// `\u00XX` (HAProxy reads only UTF-8 up to three bytes; longer ones are invalid).
fn json(s: &[u8], input: JsonInput) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let (c, len) = match input {
            JsonInput::Ascii => (u32::from(s[i]), 1),
            _ => match utf8_next(&s[i..]) {
                Some(decoded) => decoded,
                None if input == JsonInput::Utf8Skip => {
                    i += 1;
                    continue;
                }
                None => return None,
            },
        };
        i += len;
        match c {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x2f => out.push_str("\\/"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x0d => out.push_str("\\r"),
            0x0a => out.push_str("\\n"),
            0x09 => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(c as u8)),
            _ => out.push_str(&format!("\\u{c:04x}")),
        }
    }
    Some(out)
}

/// One UTF-8 character of at most three bytes: its code point and length.
fn utf8_next(s: &[u8]) -> Option<(u32, usize)> {
    let len = match s[0] {
        0x00..=0x7f => return Some((u32::from(s[0]), 1)),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => return None,
    };
    let c = std::str::from_utf8(s.get(..len)?).ok()?.chars().next()?;
    Some((u32::from(c), len))
}

fn arith(op: Arith, a: i64, b: i64) -> i64 {
    match op {
        Arith::Add => haproxy_add(a, b),
        // HAProxy adds the opposite, with i64::MAX standing for -i64::MIN.
        Arith::Sub if b == i64::MIN => haproxy_add(a, i64::MAX).saturating_add(1),
        Arith::Sub => haproxy_add(a, -b),
        Arith::Mul => a.saturating_mul(b),
        // HAProxy gives the largest integer for a division by zero, 0 for its remainder.
        Arith::Div => a.checked_div(b).unwrap_or(i64::MAX),
        Arith::Mod => a.checked_rem(b).unwrap_or(0),
        Arith::And => a & b,
        Arith::Or => a | b,
        Arith::Xor => a ^ b,
    }
}

/// HAProxy 2.6's capped addition (`arith_add`), quirk included: its overflow check for two
/// negative numbers overflows itself, so their sum is i64::MAX (`-17,sub(7)` gives
/// 9223372036854775807 in HAProxy 2.6, and in hapx).
fn haproxy_add(a: i64, b: i64) -> i64 {
    if (a ^ b) >= 0 {
        if a < 0 && i64::MIN.wrapping_sub(a) > b {
            return i64::MIN;
        }
        if i64::MAX.wrapping_sub(a) < b {
            return i64::MAX;
        }
    }
    a.wrapping_add(b)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len().div_ceil(3) * 4);
    for chunk in s.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// HAProxy 2.6's `base64dec`, shared by the `b64dec` converter, the `http_auth*` fetches and
/// `stats auth`: standard base64 read in quanta of four characters, the input's length a
/// multiple of four. Padding ends a quantum, not the input: `YTo=YjE=` is `a:` then `b1`.
/// Inside a quantum, padding runs to its end and cannot start before the second character
/// (`X===` gives nothing, `====` and `XX=X` are refused); anything else refuses the whole.
pub(crate) fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for quantum in s.chunks(4) {
        let (mut n, mut pad) = (0u32, 0usize);
        for (i, &c) in quantum.iter().enumerate() {
            let value = match c {
                b'=' if i >= 1 => {
                    pad += 1;
                    0
                }
                // After padding, only padding.
                _ if pad > 0 => return None,
                _ => B64.iter().position(|&b| b == c)? as u32,
            };
            n = n << 6 | value;
        }
        // Three bytes less one per padding character (none for `X===`).
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

const P32: [u32; 5] = [
    0x9E37_79B1,
    0x85EB_CA77,
    0xC2B2_AE3D,
    0x27D4_EB2F,
    0x1656_67B1,
];

fn xxh32(s: &[u8], seed: u32) -> u32 {
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round = |acc: u32, v: u32| {
        acc.wrapping_add(v.wrapping_mul(P32[1]))
            .rotate_left(13)
            .wrapping_mul(P32[0])
    };
    let mut rest = s;
    let mut h = if s.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P32[0]).wrapping_add(P32[1]),
            seed.wrapping_add(P32[1]),
            seed,
            seed.wrapping_sub(P32[0]),
        ];
        while rest.len() >= 16 {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, word(&rest[4 * i..]));
            }
            rest = &rest[16..];
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P32[4])
    };
    h = h.wrapping_add(s.len() as u32);
    while rest.len() >= 4 {
        h = h
            .wrapping_add(word(rest).wrapping_mul(P32[2]))
            .rotate_left(17)
            .wrapping_mul(P32[3]);
        rest = &rest[4..];
    }
    for &b in rest {
        h = h
            .wrapping_add(u32::from(b).wrapping_mul(P32[4]))
            .rotate_left(11)
            .wrapping_mul(P32[0]);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P32[1]);
    h ^= h >> 13;
    h = h.wrapping_mul(P32[2]);
    h ^ (h >> 16)
}

const P64: [u64; 5] = [
    0x9E37_79B1_85EB_CA87,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
    0x27D4_EB2F_1656_67C5,
];

fn xxh64(s: &[u8], seed: u64) -> u64 {
    let word64 = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let word32 = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let round = |acc: u64, v: u64| {
        acc.wrapping_add(v.wrapping_mul(P64[1]))
            .rotate_left(31)
            .wrapping_mul(P64[0])
    };
    let merge = |h: u64, v: u64| (h ^ round(0, v)).wrapping_mul(P64[0]).wrapping_add(P64[3]);
    let mut rest = s;
    let mut h = if s.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P64[0]).wrapping_add(P64[1]),
            seed.wrapping_add(P64[1]),
            seed,
            seed.wrapping_sub(P64[0]),
        ];
        while rest.len() >= 32 {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, word64(&rest[8 * i..]));
            }
            rest = &rest[32..];
        }
        let h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        v.iter().fold(h, |h, &acc| merge(h, acc))
    } else {
        seed.wrapping_add(P64[4])
    };
    h = h.wrapping_add(s.len() as u64);
    while rest.len() >= 8 {
        h = (h ^ round(0, word64(rest)))
            .rotate_left(27)
            .wrapping_mul(P64[0])
            .wrapping_add(P64[3]);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h = (h ^ word32(rest).wrapping_mul(P64[0]))
            .rotate_left(23)
            .wrapping_mul(P64[1])
            .wrapping_add(P64[2]);
        rest = &rest[4..];
    }
    for &b in rest {
        h = (h ^ u64::from(b).wrapping_mul(P64[4]))
            .rotate_left(11)
            .wrapping_mul(P64[0]);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P64[1]);
    h ^= h >> 29;
    h = h.wrapping_mul(P64[2]);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::converter::parse_chain;

    /// `input` (a string) through the chain written `chain`, as text.
    fn run(input: &str, chain: &str) -> Option<String> {
        let chain = parse_chain(chain, SampleType::Str).expect("a valid chain");
        apply(Sample::Str(Cow::Borrowed(input)), &chain).map(|s| s.to_text())
    }

    fn one(input: &str, chain: &str) -> String {
        run(input, chain).unwrap_or_else(|| panic!("{chain} on {input:?} failed"))
    }

    /// Expected values were rendered by HAProxy 2.6.12 (`%[req.fhdr(x-a),CHAIN]`).
    #[test]
    fn hashes_match_haproxy() {
        let cases = [
            ("crc32", "1243066710"),
            ("crc32(1)", "1404468991"),
            ("djb2", "2272792705"),
            ("djb2(1)", "231570861"),
            ("sdbm", "3372807300"),
            ("sdbm(1)", "1975300275"),
            ("wt6", "530152375"),
            ("wt6(1)", "1155562669"),
            ("xxh32", "2986153710"),
            ("xxh32(5)", "2883948335"),
            ("xxh64", "7148569436472236994"),
            ("xxh64(5)", "-587343727175272655"),
        ];
        for (chain, want) in cases {
            assert_eq!(one("Hello World", chain), want, "{chain}");
        }
        let long = "The quick brown fox jumps over the lazy dog, twice over.";
        assert_ne!(one(long, "xxh64"), one(long, "xxh64(1)"));
    }

    #[test]
    fn fields_and_words_match_haproxy() {
        let s = ":aa::bb.cc:dd:";
        let cases = [
            ("field(2,:)", "aa"),
            ("field(3,:)", ""),
            ("field(-2,:)", "dd"),
            ("field(2,.:)", "aa"),
            ("field(2,:,2)", "aa:"),
            ("field(2,:,0)", "aa::bb.cc:dd:"),
            ("field(-2,:,2)", "bb.cc:dd"),
            ("field(-3,:,0)", ":aa::bb.cc"),
            ("field(2,:,9)", "aa::bb.cc:dd:"),
            ("field(-2,:,9)", ":aa::bb.cc:dd"),
            ("word(2,:)", "bb.cc"),
            ("word(-1,:)", "dd"),
            ("word(1,:,2)", "aa::bb.cc"),
            ("word(-2,:,0)", ":aa::bb.cc"),
            ("word(2,:,5)", "bb.cc:dd:"),
            ("word(-3,:,2)", ":aa"),
            ("word(9,:)", ""),
        ];
        for (chain, want) in cases {
            assert_eq!(one(s, chain), want, "{chain}");
        }
        assert_eq!(run(s, "field(9,:)"), None);
        assert_eq!(run(s, "field(-9,:)"), None);
    }

    #[test]
    fn casts_and_encodings() {
        assert_eq!(one("Hello World", "hex"), "48656C6C6F20576F726C64");
        assert_eq!(one("Hello World", "base64"), "SGVsbG8gV29ybGQ=");
        assert_eq!(one("SGVsbG8gV29ybGQ=", "b64dec"), "Hello World");
        // A binary sample cast to a string stops at its first NUL, as in HAProxy.
        assert_eq!(one("QQBC", "b64dec"), "A");
        assert_eq!(one("QQBC", "b64dec,hex"), "410042");
        assert_eq!(one("/a/b", "b64dec,length"), "3");
        assert_eq!(run("Hello World", "b64dec"), None);
        // HAProxy's quanta: padding ends a quantum, not the input.
        assert_eq!(one("YTo=YjE=", "b64dec"), "a:b1");
        assert_eq!(one("Y===", "b64dec,length"), "0");
        for refused in ["YTpi====", "YT=pi===", "====", "YT=p", "=YTp", "YTp"] {
            assert_eq!(run(refused, "b64dec"), None, "{refused}");
        }
        assert_eq!(one("Hello World", "bytes(2,3)"), "llo");
        assert_eq!(one("Hello World", "bytes(8,10)"), "rld");
        assert_eq!(one("12abc", "add(1)"), "13");
        assert_eq!(one("abc", "add(1)"), "1");
        assert_eq!(one("-7", "add(1)"), "-6");
        assert_eq!(run("", "add(1)"), None);
        assert_eq!(one("10.1.2.3", "ipmask(16)"), "10.1.0.0");
        assert_eq!(one("2001:db8::1", "ipmask(8,32)"), "2001:db8::");
        assert_eq!(run("2001:db8::1", "ipmask(8)"), None);
        assert_eq!(one("5", "div(0)"), i64::MAX.to_string());
        assert_eq!(one("5", "sub(7)"), "-2");
        assert_eq!(one("0", "add(-20)"), "-20");
        assert_eq!(one("-17", "sub(7)"), i64::MAX.to_string());
        assert_eq!(one("-17", "sub(-7)"), "-10");
        assert_eq!(one("5", "mod(0)"), "0");
        assert_eq!(one("5", "not"), "0");
        assert_eq!(one("5", "bool,cpl"), "-2");
        let sample = Sample::Int(0xd198);
        let chain = parse_chain("hex", SampleType::Int).unwrap();
        assert_eq!(
            apply(sample, &chain).map(|s| s.to_text()).as_deref(),
            Some("000000000000D198")
        );
    }

    #[test]
    fn text_converters_match_haproxy() {
        // Strings are built in a buffer of `tune.bufsize` bytes (measured with HAProxy 2.6.12).
        let x105 = "X".repeat(105);
        let full = "a".repeat(16384);
        assert_eq!(
            one(&"a".repeat(300), &format!("regsub(.,{x105},g),length")),
            "16384"
        );
        assert_eq!(one(&full, "regsub(^,ab),length"), "16384");
        assert_eq!(one(&full, "lower,length"), "16383");
        assert_eq!(one(&full, "concat(abc),length"), "16383");
        assert_eq!(one(&full, "hex,length"), "16384");
        assert_eq!(one(&full, "json,length"), "16384");
        assert_eq!(run(&format!("{full}\""), "json"), None);
        assert_eq!(one(&"a".repeat(12285), "base64,length"), "16380");
        assert_eq!(run(&"a".repeat(12286), "ub64enc"), None);
        assert_eq!(one(&" ".repeat(5461), "url_enc,length"), "16380");
        assert_eq!(one(":aa::bb.cc:dd:", "ltrim(:a)"), "bb.cc:dd:");
        assert_eq!(one(":aa::bb.cc:dd:", "rtrim(:d)"), ":aa::bb.cc");
        assert_eq!(one(":aa::bb.cc:dd:", "regsub(a,X,g)"), ":XX::bb.cc:dd:");
        assert_eq!(one(":aa::bb.cc:dd:", "regsub(A,Y,gi)"), ":YY::bb.cc:dd:");
        assert_eq!(
            one(":aa::bb.cc:dd:", "regsub(b+.,<\\0>)"),
            ":aa::<bb.>cc:dd:"
        );
        // The argument reader makes `\\` one `\`, which `exp_replace` reads as an escape.
        assert_eq!(one("ab-cd", "regsub(b.c,\\x2c\\0\\\\\\\\)"), "a,b-c\\d");
        assert_eq!(one("xaax", "regsub('(a)','<\\1>',g)"), "x<a><a>x");
        assert_eq!(one("x.y", "regsub('\\.',\" \\\" \")"), "x \" y");
        assert_eq!(one(":a:", "regsub(x*,-,g)"), "-:-a-:-");
        assert_eq!(one("/a%20b+c?x=1+2%41", "url_dec"), "/a b+c?x=1 2A");
        assert_eq!(one("a+b", "url_dec(1)"), "a b");
        assert_eq!(run("%zz", "url_dec"), None);
        assert_eq!(
            one("a\"b\\c/é\td<", "json"),
            "a\\\"b\\\\c\\/\\u00c3\\u00a9\\td<"
        );
        assert_eq!(
            one("a\"b\\c/é\td<", "json(utf8)"),
            "a\\\"b\\\\c\\/\\u00e9\\td<"
        );
        assert_eq!(run("x😀y", "json(utf8)"), None);
        assert_eq!(one("x😀y", "json(utf8s)"), "xy");
        assert_eq!(one("Hello World", "concat(<,,>)"), "Hello World<>");
        assert_eq!(one("AbC", "lower"), "abc");
        assert_eq!(one("Hello World?>", "ub64enc"), "SGVsbG8gV29ybGQ_Pg");
        assert_eq!(one("/a?b=c%20d", "url_enc"), "%2Fa%3Fb%3Dc%2520d");
        for (host, only, port) in [
            ("host:8080", "host", "8080"),
            ("[2001:db8::1]", "[2001:db8::1]", "0"),
            ("[::1]x:5", "[::1]x", "5"),
            ("a:1:2", "a:1", "2"),
            ("example.com:abc", "example.com", "5451"),
        ] {
            assert_eq!(one(host, "host_only"), only, "{host}");
            assert_eq!(one(host, "port_only"), port, "{host}");
        }
    }
}
