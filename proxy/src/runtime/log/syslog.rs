//! Syslog headers built from a message's metadata, and received syslog messages read into
//! metadata, as HAProxy 2.6's `build_log_header` and `parse_log_message` do: what rings
//! store and what `log-forward` sections re-emit.
//!
//! A field is absent when empty. A received message keeps its timestamp, host name, tag,
//! pid, message id and structured data through any format conversion (an RFC 3164 date
//! becomes an RFC 5424 one of the current year with an unknown zone, `-00:00`; an RFC 5424
//! date an RFC 3164 one); what a message lacks is filled with the current time, `localhost`
//! (RFC 3164's mandatory host) or RFC 5424's `-`.

use std::time::SystemTime;

use super::{IsoTime, MONTHS, SyslogTime, broken_down};
use crate::config::model::SyslogFormat;

/// RFC 3164's timestamp length: `Jan  1 00:00:00`.
const LEGACY_TIME_LEN: usize = 15;
/// The shortest RFC 5424 timestamp: `1970-01-01T00:00:00Z`.
const ISO_TIME_MIN_LEN: usize = 20;

/// What a syslog header is built from (HAProxy's `LOG_META_*` fields); empty: absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta<'a> {
    /// Whether the message came with a `<PRI>` (a format left unset then keeps it).
    pub prio: bool,
    pub time: &'a [u8],
    pub host: &'a [u8],
    pub tag: &'a [u8],
    pub pid: &'a [u8],
    pub msgid: &'a [u8],
    pub sd: &'a [u8],
}

/// A received message read as HAProxy reads it: its level and facility (None without a
/// `<PRI>`), its metadata and what follows the header.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub level: Option<u8>,
    pub facility: Option<u8>,
    pub meta: Meta<'a>,
    pub message: &'a [u8],
}

/// The format a header takes when none is set (a target without `format`): RFC 5424 for
/// a message with a host name and an ISO (or nil) date, RFC 3164 with a host name, the
/// local form (no host) with a tag, the bare priority with only that, else nothing.
fn resolve(format: SyslogFormat, meta: &Meta<'_>) -> SyslogFormat {
    if format != SyslogFormat::Default {
        return format;
    }
    if !meta.host.is_empty() {
        if meta.time == b"-" || meta.time.len() >= ISO_TIME_MIN_LEN {
            SyslogFormat::Rfc5424
        } else {
            SyslogFormat::Rfc3164
        }
    } else if !meta.tag.is_empty() {
        SyslogFormat::Local
    } else if meta.prio {
        SyslogFormat::Priority
    } else {
        SyslogFormat::Raw
    }
}

/// A header written element by element, as HAProxy's vector of strings: a datagram cut
/// within an element loses that element whole (see [`Header::cut`]).
#[derive(Debug)]
pub struct Header<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
    /// Where each element ends (offsets into `out`).
    ends: Vec<usize>,
}

impl<'o> Header<'o> {
    pub fn new(out: &'o mut Vec<u8>) -> Header<'o> {
        let start = out.len();
        Header {
            out,
            start,
            ends: Vec::new(),
        }
    }

    /// One element made of `parts`.
    fn push(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.out.extend_from_slice(part);
        }
        self.ends.push(self.out.len());
    }

    fn push_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        use std::io::Write as _;
        let _ = self.out.write_fmt(args);
        self.ends.push(self.out.len());
    }

    /// Appends `message` and cuts the whole to `max` bytes as HAProxy's `__do_send_log`
    /// does: a header element reaching the limit is left out with all that follows (its
    /// slot takes the final line feed), the message is cut at it.
    pub fn cut(self, message: &[u8], max: usize) {
        let mut room = max;
        let mut kept = self.start;
        for &end in &self.ends {
            let len = end - kept;
            if room <= len {
                self.out.truncate(kept);
                return;
            }
            room -= len;
            kept = end;
        }
        self.out
            .extend_from_slice(&message[..message.len().min(room)]);
    }
}

/// Writes the header `format` puts before a message into `out`.
pub fn build_header(
    format: SyslogFormat,
    level: u8,
    facility: u8,
    meta: &Meta<'_>,
    now: SystemTime,
    out: &mut Vec<u8>,
) {
    header_elements(format, level, facility, meta, now, &mut Header::new(out));
}

/// Writes the header `format` puts before a message, element by element.
pub fn header_elements(
    format: SyslogFormat,
    level: u8,
    facility: u8,
    meta: &Meta<'_>,
    now: SystemTime,
    h: &mut Header<'_>,
) {
    let format = resolve(format, meta);
    let pri = u32::from(facility) * 8 + u32::from(level);
    match format {
        SyslogFormat::Local
        | SyslogFormat::Rfc3164
        | SyslogFormat::Rfc5424
        | SyslogFormat::Priority => h.push_fmt(format_args!("<{pri}>")),
        SyslogFormat::Timed | SyslogFormat::Short => h.push_fmt(format_args!("<{level}>")),
        SyslogFormat::Iso | SyslogFormat::Raw | SyslogFormat::Default => {}
    }
    match format {
        SyslogFormat::Local | SyslogFormat::Rfc3164 => legacy_time(meta.time, now, h),
        SyslogFormat::Rfc5424 if meta.time == b"-" => {
            h.push(&[b"1 "]);
            h.push(&[b"-"]);
            h.push(&[b" "]);
        }
        SyslogFormat::Rfc5424 => {
            h.push(&[b"1 "]);
            iso_time(meta.time, now, h);
        }
        SyslogFormat::Timed | SyslogFormat::Iso => iso_time(meta.time, now, h),
        _ => {}
    }
    let field = |h: &mut Header<'_>, value: &[u8], absent: &[u8]| {
        if value.is_empty() {
            h.push(&[absent]);
        } else {
            h.push(&[value]);
            h.push(&[b" "]);
        }
    };
    match format {
        SyslogFormat::Rfc3164 | SyslogFormat::Local => {
            if format == SyslogFormat::Rfc3164 {
                field(h, meta.host, b"localhost ");
            }
            if !meta.tag.is_empty() {
                h.push(&[meta.tag]);
                if !meta.pid.is_empty() {
                    h.push(&[b"["]);
                    h.push(&[meta.pid]);
                    h.push(&[b"]"]);
                }
                h.push(&[b": "]);
            }
        }
        SyslogFormat::Rfc5424 => {
            for value in [meta.host, meta.tag, meta.pid, meta.msgid, meta.sd] {
                field(h, value, b"- ");
            }
        }
        _ => {}
    }
}

/// RFC 3164's date and a space: the message's own, or taken from its ISO date, else now.
fn legacy_time(time: &[u8], now: SystemTime, h: &mut Header<'_>) {
    if time.len() == LEGACY_TIME_LEN {
        h.push(&[time]);
        h.push(&[b" "]);
        return;
    }
    if time.len() >= ISO_TIME_MIN_LEN {
        let digit = |i: usize| u32::from(time[i].wrapping_sub(b'0'));
        let month = (10 * digit(5) + digit(6)).saturating_sub(1) as usize;
        if month <= 11 {
            let day_tens = if time[8] != b'0' { time[8] } else { b' ' };
            h.push(&[MONTHS[month].as_bytes(), b" ", &[day_tens, time[9]], b" "]);
            h.push(&[&time[11..19]]);
            h.push(&[b" "]);
            return;
        }
    }
    h.push_fmt(format_args!("{} ", SyslogTime(now)));
}

/// RFC 5424's date and a space: the message's own, or its RFC 3164 date in the current
/// year (the last one if its month is still to come) with an unknown zone, else now.
fn iso_time(time: &[u8], now: SystemTime, h: &mut Header<'_>) {
    if time.len() >= ISO_TIME_MIN_LEN {
        h.push(&[time]);
        h.push(&[b" "]);
        return;
    }
    if time.len() == LEGACY_TIME_LEN
        && let Some(month) = MONTHS.iter().position(|m| time.starts_with(m.as_bytes()))
    {
        let tm = broken_down(super::epoch_secs(now), true);
        let mut year = tm.tm_year + 1900;
        if (tm.tm_mon as usize) < month {
            year -= 1;
        }
        let day_tens = if time[4] != b' ' { time[4] } else { b'0' };
        let date = format!("{year:4}-{:02}-", month + 1);
        h.push(&[date.as_bytes(), &[day_tens, time[5]], b"T"]);
        h.push(&[&time[7..15]]);
        h.push(&[b"-00:00 "]);
        return;
    }
    h.push_fmt(format_args!("{} ", IsoTime(now)));
}

/// Reads a received message as HAProxy's `parse_log_message`: `<PRI>`, then an RFC 5424
/// header (`1 TIME HOST TAG PID MSGID SD `) or an RFC 3164 one (`Mmm dd hh:mm:ss HOST
/// [TAG[\[PID\]]: ]`). A header that does not parse is left in the message, its fields
/// (but the priority) absent.
pub fn parse_message(buf: &[u8]) -> Received<'_> {
    let mut received = Received {
        level: None,
        facility: None,
        meta: Meta::default(),
        message: buf,
    };
    let Some(after_pri) = read_pri(buf) else {
        return received;
    };
    let pri = after_pri.0;
    received.facility = Some((pri >> 3).min(255) as u8);
    received.level = Some((pri & 7) as u8);
    received.meta.prio = true;
    let rest = &buf[after_pri.1..];
    received.message = rest;
    let parsed = if rest.len() > 2 && rest.starts_with(b"1 ") {
        rfc5424(rest)
    } else if rest.len() > LEGACY_TIME_LEN {
        rfc3164(rest)
    } else {
        return received;
    };
    // On a bad header the message stays after the priority, as HAProxy leaves it.
    if let Some((meta, message)) = parsed {
        received.meta = Meta { prio: true, ..meta };
        received.message = message;
    }
    received
}

/// `<N>`: N and the offset after `>`; None when the message does not start so.
fn read_pri(buf: &[u8]) -> Option<(u32, usize)> {
    if buf.len() < 2 || buf[0] != b'<' {
        return None;
    }
    let mut pri: u32 = 0;
    for (i, &c) in buf.iter().enumerate().skip(1) {
        match c {
            b'>' => return Some((pri, i + 1)),
            b'0'..=b'9' => pri = pri.wrapping_mul(10).wrapping_add(u32::from(c - b'0')),
            _ => return None,
        }
    }
    None
}

/// A space-terminated field at `pos` (not starting with a space): its bytes (empty for
/// `-`) and the offset after its space.
fn word(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if pos >= buf.len() || buf[pos] == b' ' {
        return None;
    }
    let end = pos + buf[pos..].iter().position(|&c| c == b' ')?;
    let value = &buf[pos..end];
    Some((if value == b"-" { &[] } else { value }, end + 1))
}

/// An RFC 5424 header after the priority (`rest` starts with `1 `).
fn rfc5424(rest: &[u8]) -> Option<(Meta<'_>, &[u8])> {
    let mut meta = Meta::default();
    let mut p = 2;
    if rest.len() > p + 1 && rest[p] == b'-' && rest[p + 1] == b' ' {
        meta.time = &rest[p..p + 1];
        p += 2;
    } else {
        let start = p;
        p += 19;
        if rest.get(p) == Some(&b'.') {
            p += 1;
            while !matches!(rest.get(p)?, b'Z' | b'+' | b'-') {
                if !rest[p].is_ascii_digit() {
                    return None;
                }
                p += 1;
            }
        }
        p += if rest.get(p)? == &b'Z' { 1 } else { 6 };
        if rest.get(p)? != &b' ' {
            return None;
        }
        meta.time = &rest[start..p];
        p += 1;
    }
    (meta.host, p) = word(rest, p)?;
    (meta.tag, p) = word(rest, p)?;
    (meta.pid, p) = word(rest, p)?;
    (meta.msgid, p) = word(rest, p)?;
    let start = p;
    match rest.get(p)? {
        b'[' => {
            let mut in_element = false;
            loop {
                let c = *rest.get(p)?;
                if in_element {
                    // An escaped `]` stays within its element.
                    in_element = !(c == b']' && rest[p - 1] != b'\\');
                } else if c == b'[' {
                    in_element = true;
                } else if c == b' ' {
                    break;
                } else {
                    return None;
                }
                p += 1;
            }
            meta.sd = &rest[start..p];
        }
        b'-' if rest.get(p + 1)? == &b' ' => p += 1,
        _ => return None,
    }
    Some((meta, &rest[p + 1..]))
}

/// An RFC 3164 header after the priority: date, host, then an optional `TAG[PID]: `.
fn rfc3164(rest: &[u8]) -> Option<(Meta<'_>, &[u8])> {
    if !MONTHS.iter().any(|m| rest.starts_with(m.as_bytes())) {
        return None;
    }
    let mut meta = Meta {
        time: &rest[..LEGACY_TIME_LEN],
        ..Meta::default()
    };
    if rest.get(LEGACY_TIME_LEN)? != &b' ' {
        return None;
    }
    let host_at = LEGACY_TIME_LEN + 1;
    if rest.get(host_at)? == &b' ' {
        return None;
    }
    let host_end = host_at + rest[host_at..].iter().position(|&c| c == b' ')?;
    meta.host = &rest[host_at..host_end];
    let body = &rest[host_end + 1..];
    let Some(colon) = body.iter().position(|&c| c == b' ' || c == b':') else {
        return Some((meta, body));
    };
    if body[colon] != b':' || body.get(colon + 1) != Some(&b' ') {
        return Some((meta, body));
    }
    let head = &body[..colon];
    meta.tag = head;
    let mut pid_start = None;
    for (i, &c) in head.iter().enumerate() {
        if c == b'[' {
            meta.tag = &head[..i];
            pid_start = Some(i + 1);
        } else if let (b']', Some(start)) = (c, pid_start) {
            // A `]` that does not close the tag ends the reading there: the tag read so
            // far is kept, the message whole.
            if i + 1 != head.len() {
                return Some((meta, body));
            }
            meta.pid = &head[start..i];
        }
    }
    Some((meta, &body[colon + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn header(format: SyslogFormat, meta: &Meta<'_>) -> String {
        let mut out = Vec::new();
        build_header(format, 6, 3, meta, UNIX_EPOCH, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_rfc3164_message_is_read_into_its_fields() {
        let r = parse_message(b"<30>Nov 28 19:00:01 myhost myapp[123]: hello");
        assert_eq!((r.level, r.facility), (Some(6), Some(3)));
        assert_eq!(r.meta.time, b"Nov 28 19:00:01");
        assert_eq!(
            (r.meta.host, r.meta.tag, r.meta.pid),
            (&b"myhost"[..], &b"myapp"[..], &b"123"[..])
        );
        assert_eq!(r.message, b"hello");
        assert_eq!(
            header(SyslogFormat::Rfc5424, &r.meta),
            "<30>1 1969-11-28T19:00:01-00:00 myhost myapp 123 - - "
        );
    }

    #[test]
    fn an_rfc5424_message_is_read_into_its_fields() {
        // A `]` within a value is escaped.
        let text = b"<165>1 2026-11-28T19:00:02.123456+00:00 h app 12 ID47 [x@1 a=\"\\]\"] msg";
        let r = parse_message(text);
        assert_eq!(r.meta.sd, b"[x@1 a=\"\\]\"]");
        assert_eq!(r.meta.msgid, b"ID47");
        assert_eq!(r.message, b"msg");
        assert_eq!(
            header(SyslogFormat::Rfc3164, &r.meta),
            "<30>Nov 28 19:00:02 h app[12]: "
        );
    }

    #[test]
    fn without_a_format_the_header_follows_the_message() {
        let bare = parse_message(b"<13>no header");
        assert_eq!(header(SyslogFormat::Default, &bare.meta), "<30>");
        assert_eq!(bare.message, b"no header");
        let none = parse_message(b"plain");
        assert_eq!(header(SyslogFormat::Default, &none.meta), "");
        let nil = parse_message(b"<165>1 - - - - - - nil");
        assert_eq!(header(SyslogFormat::Default, &nil.meta), "<30>");
        assert_eq!(nil.message, b"nil");
    }
}
