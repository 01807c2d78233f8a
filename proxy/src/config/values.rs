//! HAProxy's value syntaxes: durations (`20s`, `1500` = ms), sizes, addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A network, `ADDR[/PREFIX]` (an IPv4 prefix may be a dotted mask); `None` if malformed.
pub fn network(text: &str) -> Option<super::model::Network> {
    let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        "" => max,
        p => match (p.parse::<u8>(), p.parse::<Ipv4Addr>()) {
            (Ok(n), _) if n <= max => n,
            (_, Ok(mask))
                if addr.is_ipv4()
                    && mask.to_bits().leading_ones() == mask.to_bits().count_ones() =>
            {
                mask.to_bits().leading_ones() as u8
            }
            _ => return None,
        },
    };
    Some(super::model::Network { addr, prefix })
}

/// HAProxy's largest timer: 2^31-1 ms (its timers are signed 32-bit milliseconds). A
/// larger one is refused at parse time, so that no deadline computed from a timer can
/// overflow later.
pub const MAX_TIMER_MS: u64 = i32::MAX as u64;

/// Why a duration was refused.
enum BadDuration {
    Syntax(String),
    Overflow,
}

/// A duration with HAProxy's units (`us`, `ms`, `s`, `m`, `h`, `d`); no unit means ms.
/// Beyond [`MAX_TIMER_MS`] it is a "timer overflow".
pub fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| match e {
        BadDuration::Syntax(message) => message,
        BadDuration::Overflow => format!("timer overflow in argument '{text}' ({TIMER_RANGE})"),
    })
}

/// A duration given to keyword `what`, with HAProxy's messages naming it.
pub fn timer(text: &str, what: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| match e {
        BadDuration::Syntax(message) => format!("'{what}' : {message}"),
        BadDuration::Overflow => {
            format!("timer overflow in argument '{text}' to '{what}' ({TIMER_RANGE})")
        }
    })
}

const TIMER_RANGE: &str = "maximum value is 2147483647 ms or ~24.8 days";

/// A duration that is no timer (a TCP keep-alive setting in seconds...): only a value past
/// what a duration holds is refused. HAProxy bounds these in their own unit.
pub fn long_duration(text: &str) -> Result<Duration, String> {
    let parsed = parse_duration_within(text, u64::MAX);
    if parsed.is_ok() {
        warn_stray_after_unit(text);
    }
    parsed.map_err(|e| match e {
        BadDuration::Syntax(message) => message,
        BadDuration::Overflow => format!("value overflow in argument '{text}'"),
    })
}

/// Whether `text` is shaped as a duration (digits, then an optional unit), however large.
pub fn is_duration_syntax(text: &str) -> bool {
    matches!(
        parse_duration_within(text, u64::MAX),
        Ok(_) | Err(BadDuration::Overflow)
    )
}

/// The first character of `text` that is not part of a duration (digits, then a unit): the
/// one HAProxy's `parse_time_err` stops at. None when there is none.
pub fn duration_stray_char(text: &str) -> Option<char> {
    const UNITS: [&str; 6] = ["us", "ms", "s", "m", "h", "d"];
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &text[digits..];
    let unit = match digits {
        0 => 0,
        _ => UNITS
            .iter()
            .find(|u| rest.starts_with(*u))
            .map_or(0, |u| u.len()),
    };
    rest[unit..].chars().next()
}

thread_local! {
    /// HAProxy's warnings about characters after a timer's unit, since the last
    /// [`take_timer_warnings`].
    static STRAY_AFTER_UNIT: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The warnings about characters after a timer's unit read since the last call (HAProxy's
/// `parse_time_err` prints them as it reads, whichever keyword the timer belongs to).
pub fn take_timer_warnings() -> Vec<String> {
    STRAY_AFTER_UNIT.with_borrow_mut(std::mem::take)
}

fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let parsed = parse_duration_within(text, MAX_TIMER_MS * 1_000);
    if parsed.is_ok() {
        warn_stray_after_unit(text);
    }
    parsed
}

/// A timer's unit at the start of `rest` (after its digits): its length and microseconds,
/// `ms` when there is none. HAProxy's `parse_time_err` reads this far.
pub fn timer_unit(rest: &str) -> Option<(usize, u64)> {
    const UNITS: [(&str, u64); 6] = [
        ("us", 1),
        ("ms", 1_000),
        ("s", 1_000_000),
        ("m", 60_000_000),
        ("h", 3_600_000_000),
        ("d", 86_400_000_000),
    ];
    match UNITS.iter().find(|(u, _)| rest.starts_with(u)) {
        Some((u, micros)) => Some((u.len(), *micros)),
        None => rest.is_empty().then_some((0, 1_000)),
    }
}

/// Remembers HAProxy's warning when characters follow a timer's unit (HAProxy 2.6 reads a
/// timer as far as its unit, `20sec` as 20 s, `1h30m` as 1 h, and only warns about the
/// rest), for the line's reader ([`take_timer_warnings`]).
fn warn_stray_after_unit(text: &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &text[digits..];
    let Some((unit_len, _)) = timer_unit(rest) else {
        return;
    };
    if let Some(stray) = rest[unit_len..].chars().next() {
        STRAY_AFTER_UNIT.with_borrow_mut(|found| {
            found.push(format!(
                "unexpected character '{stray}' after the timer value '{text}', only \
                 (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are \
                 supported. This will be reported as an error in next versions."
            ))
        });
    }
}

fn parse_duration_within(text: &str, max_micros: u64) -> Result<Duration, BadDuration> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    if digits == 0 {
        return Err(BadDuration::Syntax(format!(
            "'{text}' is not a duration (a number with an optional unit)"
        )));
    }
    let Some((_, micros_per_unit)) = timer_unit(unit) else {
        return Err(BadDuration::Syntax(format!(
            "unexpected character '{unit}' in duration '{text}' (units: us, ms, s, m, h, d)"
        )));
    };
    // Digits only, so a failed parse is a number too large for u64.
    let micros = num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(micros_per_unit))
        .filter(|&us| us <= max_micros)
        .ok_or(BadDuration::Overflow)?;
    Ok(Duration::from_micros(micros))
}

/// A plain unsigned number.
pub fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("'{what}' expects an integer argument (got '{text}')"))
}

/// C's `atol(text)`: leading blanks, a sign, then decimal digits as far as they go (0 when
/// there are none, `abc` included), saturated at the bounds of `i64` as glibc's.
pub fn atol(text: &str) -> i64 {
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i128, |n, d| (n * 10 + i128::from(d - b'0')).min(1 << 64));
    let value = if negative { -magnitude } else { magnitude };
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// HAProxy's `int` fields set with `atol`: the `long` truncated to 32 bits, as C's
/// assignment does.
pub fn atol_int(text: &str) -> i32 {
    atol(text) as i32
}

/// C's `strtoul(text, &end, 0)`: the number and the text after it (all of `text` when it
/// starts with no number). Leading blanks and a sign are read, `0x` starts hexadecimal and
/// `0` octal; `-N` wraps as C's does, and a value past `u64` is `u64::MAX` whatever its sign.
pub fn strtoul(text: &str) -> (u64, &str) {
    match c_integer(text) {
        None => (0, text),
        Some((true, Some(m), rest)) => (m.wrapping_neg(), rest),
        Some((false, Some(m), rest)) => (m, rest),
        Some((_, None, rest)) => (u64::MAX, rest),
    }
}

/// C's `strtol(text, &end, 0)`: the number (saturated) and the text after it; all of
/// `text` when it starts with no number.
pub fn strtol(text: &str) -> (i64, &str) {
    match c_integer(text) {
        None => (0, text),
        Some((negative, magnitude, rest)) => {
            let m = i128::from(magnitude.unwrap_or(u64::MAX));
            let n = if negative { -m } else { m };
            let n = n.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
            (n as i64, rest)
        }
    }
}

/// What C's `strto*l(text, &end, 0)` read: the sign, the magnitude (None past `u64`) and
/// the text after the number; None when `text` starts with no number. Leading blanks and a
/// sign are read, `0x` starts hexadecimal and `0` octal.
fn c_integer(text: &str) -> Option<(bool, Option<u64>, &str)> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let hex = t.len() > 2
        && (t.starts_with("0x") || t.starts_with("0X"))
        && t.as_bytes()[2].is_ascii_hexdigit();
    let (radix, digits) = match () {
        _ if hex => (16, &t[2..]),
        _ if t.starts_with('0') => (8, t),
        _ => (10, t),
    };
    let len = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if len == 0 {
        return None;
    }
    let magnitude = digits[..len]
        .chars()
        .filter_map(|d| d.to_digit(radix))
        .try_fold(0u64, |n, d| {
            n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))
        });
    Some((negative, magnitude, &digits[len..]))
}

/// Splits `host:port` (IPv6 as `[::1]:80` or `::1:80`, HAProxy's way: the last colon
/// separates the port). Returns the host and the port text (maybe empty).
pub fn split_host_port(text: &str) -> (&str, &str) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').unwrap_or(after));
        }
    }
    match text.rfind(':') {
        // A bare IPv6 address with no port has several colons and parses as an address.
        Some(_) if text.parse::<Ipv6Addr>().is_ok() => (text, ""),
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    }
}

/// Strips HAProxy's address family prefixes (`ipv4@`, `ipv6@`, `udp@` ...).
pub fn strip_family(text: &str) -> (Option<&str>, &str) {
    match text.split_once('@') {
        Some((family, rest)) => (Some(family), rest),
        None => (None, text),
    }
}

/// The socket addresses of one listening address (`*:80`, `:::443`, `[::1]:80`,
/// `ipv4@1.2.3.4:80-81`, `localhost:80`), read as HAProxy's `str2sa_range` reads a `bind`
/// address: the last colon ends the host (unless in brackets), the port is mandatory and may be
/// a range of numbers read as C's `atoi` reads them, a host name is resolved now. Errors are
/// worded as HAProxy words them.
pub fn bind_addrs(text: &str) -> Result<Vec<SocketAddr>, String> {
    if text.is_empty() {
        return Err("'' resolves to an empty address (environment variable missing?)".into());
    }
    let (family, rest) = match strip_family(text) {
        (Some(f), rest) => match ListenFamily::of_prefix(f, text)? {
            Some(family) => (family, rest),
            // Not a prefix HAProxy knows: the whole text is the host and port.
            None => (ListenFamily::Any, text),
        },
        (None, rest) if rest.starts_with('/') => {
            return Err(ListenFamily::unsupported("unix"));
        }
        (None, rest) => (ListenFamily::Any, rest),
    };
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':').unwrap_or("")),
            None => (rest, ""),
        },
        None => rest.rsplit_once(':').unwrap_or((rest, "")),
    };
    let ports = listen_ports(port, text)?;
    let ip = family.host(host, text)?;
    Ok(ports.map(|p| SocketAddr::new(ip, p)).collect())
}

/// A `nameserver` address after its family prefix (`udp@`, `ipv4@` ...), as HAProxy's
/// `str2sa_range` reads one there: the last colon ends the host (an IPv6 address needs
/// brackets), the port is mandatory and single, a host name is resolved now. `text` is the
/// whole address, for the messages, worded as HAProxy's (two end in a newline, which
/// HAProxy prints as an empty line).
pub fn nameserver_addr(rest: &str, prefer_v6: bool, text: &str) -> Result<SocketAddr, String> {
    let (host, port) = match rest.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':').unwrap_or("")),
            None => (rest, ""),
        },
        None => rest.rsplit_once(':').unwrap_or((rest, "")),
    };
    if port.starts_with(|c: char| c.is_ascii_digit()) && port.contains('-') {
        return Err(format!("port range not permitted here in '{text}'"));
    }
    let port = match listen_ports(port, text) {
        Ok(ports) => *ports.start(),
        Err(e) if e.starts_with("invalid character") => return Err(e + "\n"),
        Err(e) => return Err(e),
    };
    let ip = match host {
        "" | "*" => Some(Ipv4Addr::UNSPECIFIED.into()),
        _ => (host.parse().ok()).or_else(|| super::check::resolve_libc(host, prefer_v6)),
    };
    ip.map(|ip| SocketAddr::new(ip, port))
        .ok_or_else(|| format!("invalid address: '{host}' in '{text}'\n"))
}

/// The address family a `bind` address's prefix asks for.
#[derive(Clone, Copy)]
enum ListenFamily {
    Any,
    V4,
    V6,
}

impl ListenFamily {
    /// The family of a prefix (`ipv4@`, `tcp6@` ...); None for a word HAProxy does not know
    /// as a prefix, an error for one it knows that hapx does not listen on.
    fn of_prefix(prefix: &str, text: &str) -> Result<Option<Self>, String> {
        Ok(Some(match prefix {
            "tcp" => Self::Any,
            "ipv4" | "tcp4" => Self::V4,
            "ipv6" | "tcp6" => Self::V6,
            "udp" | "udp4" | "udp6" => {
                return Err(format!("dgram-type address not acceptable in '{text}'"));
            }
            "unix" | "abns" | "uxst" | "uxdg" | "fd" | "sockpair" | "quic4" | "quic6" => {
                return Err(Self::unsupported(prefix));
            }
            _ => return Ok(None),
        }))
    }

    fn unsupported(prefix: &str) -> String {
        format!("address family '{prefix}@' is not supported by hapx")
    }

    /// The address to listen on for `host` (empty or `*`: every address of the family).
    fn host(self, host: &str, text: &str) -> Result<IpAddr, String> {
        let fits = |ip: &IpAddr| match self {
            Self::Any => true,
            Self::V4 => ip.is_ipv4(),
            Self::V6 => ip.is_ipv6(),
        };
        let ip = match host {
            "" | "*" if matches!(self, Self::V6) => Some(Ipv6Addr::UNSPECIFIED.into()),
            "" | "*" => Some(Ipv4Addr::UNSPECIFIED.into()),
            _ => host
                .parse()
                .ok()
                .or_else(|| super::check::resolve_libc(host, matches!(self, Self::V6))),
        };
        ip.filter(fits)
            .ok_or_else(|| format!("invalid address: '{host}' in '{text}'"))
    }
}

/// A `bind` address's port or `LOW-HIGH` range, as HAProxy reads it: digits first (then
/// `atoi`), no offset, never 0 nor above 65535.
fn listen_ports(port: &str, text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    match port.chars().next() {
        Some(c) if c.is_ascii_digit() => {
            let (low, high) = port.split_once('-').unwrap_or((port, port));
            let number = |p: &str| {
                u16::try_from(atoi(p))
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("invalid port '{p}'"))
            };
            let (low, high) = (number(low)?, number(high)?);
            if low > high {
                return Err(format!("invalid port range '{low}-{high}'"));
            }
            Ok(low..=high)
        }
        Some('+' | '-') => Err(format!("port offset not permitted here in '{text}'")),
        Some(c) => Err(format!(
            "invalid character '{c}' in port number '{port}' in '{text}'"
        )),
        None => Err(format!("missing port specification in '{text}'")),
    }
}

/// A `source` address as HAProxy's `str2sa_range` reads one to connect from: an IPv4
/// address, an IPv6 one in brackets (the last colon ends the host) or a name resolved now,
/// then `:PORT`, or `:LOW-HIGH` where `ranges` (a server's); errors as HAProxy words them
/// after its `'source ADDR' : `.
pub fn source_addr(text: &str, ranges: bool) -> Result<super::model::ConnSource, String> {
    let (family, rest) = strip_family(text);
    if let Some(f) = family.filter(|f| !matches!(*f, "ipv4" | "ipv6")) {
        return Err(format!("address family '{f}@' is not supported by hapx"));
    }
    let (host, port) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((host, after)) => (host, after.strip_prefix(':').unwrap_or(after)),
        None => rest.rsplit_once(':').unwrap_or((rest, "")),
    };
    let (port, range) = source_port(text, port, ranges)?;
    let ip = match host {
        "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h => (h.parse().ok())
            .or_else(|| super::check::resolve_libc(h, family == Some("ipv6")))
            .ok_or_else(|| format!("invalid address: '{h}' in '{text}'"))?,
    };
    let addr = SocketAddr::new(ip, if range.is_some() { 0 } else { port });
    Ok(super::model::ConnSource {
        addr,
        ports: range,
        usesrc: None,
        interface: None,
    })
}

/// The port part of a `source` address, as HAProxy's `str2sa_range` reads it: no offset
/// (`+N`, `-N`); a range `LOW-HIGH` (where `ranges`) of numbers read as `atoi` reads them,
/// LOW == HIGH being the fixed port; else digits only. Port 0: the kernel's choice.
fn source_port(
    text: &str,
    port: &str,
    ranges: bool,
) -> Result<(u16, Option<super::model::PortRange>), String> {
    if port.starts_with(['+', '-']) {
        return Err(format!("port offset not permitted here in '{text}'"));
    }
    let in_range =
        |p: u64, written: &str| u16::try_from(p).map_err(|_| format!("invalid port '{written}'"));
    if let Some((low, high)) = port.split_once('-') {
        if !ranges {
            return Err(format!("port range not permitted here in '{text}'"));
        }
        let (low_n, high_n) = (atoi(low), atoi(high));
        let (low, high) = (in_range(low_n, low)?, in_range(high_n, high)?);
        if low > high {
            return Err(format!("invalid port range '{low}-{high}'"));
        }
        let range = (low != high).then(|| super::model::PortRange::new(low, high));
        return Ok((low, range));
    }
    if let Some(bad) = port.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!(
            "invalid character '{bad}' in port number '{port}' in '{text}'"
        ));
    }
    Ok((in_range(atoi(port), port)?, None))
}

/// The number C's `atoi` reads at the start of `text` (saturating: only "too big" matters).
fn atoi(text: &str) -> u64 {
    let digits = text.bytes().take_while(u8::is_ascii_digit);
    digits.fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atol_reads_as_c_does() {
        assert_eq!(atol("abc"), 0);
        assert_eq!(atol("10k"), 10);
        assert_eq!(atol("  -5x"), -5);
        assert_eq!(atol("+7"), 7);
        assert_eq!(atol("0x10"), 0);
        assert_eq!(atol("99999999999999999999"), i64::MAX);
        assert_eq!(atol("-99999999999999999999"), i64::MIN);
        assert_eq!(atol_int("4294967301"), 5);
    }

    #[test]
    fn duration_stray_characters_are_found_where_haproxy_stops() {
        assert_eq!(duration_stray_char("abc"), Some('a'));
        assert_eq!(duration_stray_char("10x"), Some('x'));
        assert_eq!(duration_stray_char("1.5s"), Some('.'));
        assert_eq!(duration_stray_char("5mx"), Some('x'));
        assert_eq!(duration_stray_char("20ms"), None);
        assert!(is_duration_syntax("99999999999999999999999s"));
        assert!(!is_duration_syntax("10x"));
    }

    #[test]
    fn strtoul_reads_as_c_does() {
        assert_eq!(strtoul("10"), (10, ""));
        assert_eq!(strtoul("0x10"), (16, ""));
        assert_eq!(strtoul("010"), (8, ""));
        assert_eq!(strtoul("-1"), (u64::MAX, ""));
        assert_eq!(strtoul("10x"), (10, "x"));
        assert_eq!(strtoul("abc"), (0, "abc"));
        assert_eq!(strtoul("99999999999999999999999"), (u64::MAX, ""));
        assert_eq!(strtoul("-99999999999999999999999"), (u64::MAX, ""));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(duration("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("5x").is_err());
        assert!(duration("s").is_err());
    }

    #[test]
    fn timers_beyond_haproxys_range_overflow() {
        assert_eq!(
            duration("2147483647"),
            Ok(Duration::from_millis(2_147_483_647))
        );
        assert_eq!(duration("24d"), Ok(Duration::from_secs(24 * 86400)));
        for text in [
            "2147483648",
            "25d",
            "2147484s",
            "999999999999999999d",
            "18446744073709551615s",
            "99999999999999999999",
        ] {
            assert_eq!(
                timer(text, "timeout client"),
                Err(format!(
                    "timer overflow in argument '{text}' to 'timeout client' (maximum value is 2147483647 ms or ~24.8 days)"
                ))
            );
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(split_host_port("kube:6443"), ("kube", "6443"));
        assert_eq!(split_host_port("[::1]:80"), ("::1", "80"));
        assert_eq!(split_host_port("::1"), ("::1", ""));
        assert_eq!(split_host_port("kube"), ("kube", ""));
        assert_eq!(
            bind_addrs("*:6443").unwrap(),
            ["0.0.0.0:6443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            bind_addrs(":::80").unwrap(),
            ["[::]:80".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(bind_addrs("127.0.0.1:80-81").unwrap().len(), 2);
        assert!(bind_addrs("*").is_err());
        assert!(bind_addrs("nothost.invalid:80").is_err());
    }

    #[test]
    fn bind_addresses_are_read_as_haproxy_reads_them() {
        let one = |text| bind_addrs(text).map(|a| a[0].to_string());
        // The last colon ends the host; digits then whatever C's atoi ignores.
        assert_eq!(one("127.0.0.1:81a"), Ok("127.0.0.1:81".into()));
        assert_eq!(one("tcp6@:81"), Ok("[::]:81".into()));
        assert_eq!(one("[1.2.3.4]:80"), Ok("1.2.3.4:80".into()));
        assert_eq!(
            one("::1"),
            Err("invalid address: ':' in '::1'".into()),
            "no special case for a bare IPv6 address"
        );
        assert_eq!(
            one("[::1]80"),
            Err("missing port specification in '[::1]80'".into())
        );
        assert_eq!(
            one("ipv4@::1:80"),
            Err("invalid address: '::1' in 'ipv4@::1:80'".into())
        );
        assert_eq!(
            one("foo@bar"),
            Err("missing port specification in 'foo@bar'".into()),
            "an unknown prefix is part of the host"
        );
        assert_eq!(one("127.0.0.1:5-0"), Err("invalid port '0'".into()));
        assert_eq!(one("127.0.0.1:6-5"), Err("invalid port range '6-5'".into()));
        assert!(
            one("unix@/run/x.sock")
                .unwrap_err()
                .contains("not supported by hapx")
        );
    }
}

/// The environment as the configuration changes it while it is read: the global `setenv`,
/// `presetenv`, `unsetenv` and `resetenv` (in file order, as HAProxy changes its own
/// environment) over the process environment, which stays untouched. Variables expand
/// through [`Environment::get`]; the runtime's `env()` fetch sees the result too.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Names set (Some) or unset (None) by the configuration.
    changed: std::collections::BTreeMap<String, Option<String>>,
    /// After `resetenv`: a name not in `changed` is unset.
    cleared: bool,
}

impl Environment {
    /// Whether the configuration changed nothing (lookups then go to the process directly).
    pub fn is_untouched(&self) -> bool {
        self.changed.is_empty() && !self.cleared
    }

    /// The value of `name`: as the configuration set it, else from `base`.
    pub fn get(&self, name: &str, base: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        match self.changed.get(name) {
            Some(v) => v.clone(),
            None if self.cleared => None,
            None => base(name),
        }
    }

    /// The names the configuration set or unset, in name order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.changed.keys().map(String::as_str)
    }

    /// Sets `name` as HAProxy's own `setenv(name, value, 1)` does while it reads the
    /// configuration (`localpeer` sets `HAPROXY_LOCALPEER`).
    pub fn set(&mut self, name: &str, value: String) {
        self.changed.insert(name.to_string(), Some(value));
    }

    /// One of the four keywords, `words` its whole line; HAProxy's messages.
    pub fn apply(
        &mut self,
        words: &[String],
        base: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        let kw = words[0].as_str();
        // setenv(3) and unsetenv(3) refuse these names.
        let invalid = |name: &str| {
            (name.is_empty() || name.contains('='))
                .then(|| format!("'{kw}' failed on variable '{name}' : Invalid argument."))
        };
        match kw {
            "setenv" | "presetenv" => {
                let (Some(name), Some(value)) =
                    (words.get(1), words.get(2).filter(|v| !v.is_empty()))
                else {
                    return Err(format!("'{kw}' expects a name and a value."));
                };
                if let Some(e) = invalid(name) {
                    return Err(e);
                }
                if kw == "setenv" || self.get(name, base).is_none() {
                    self.changed.insert(name.clone(), Some(value.clone()));
                }
            }
            "unsetenv" => {
                if words.len() < 2 {
                    return Err(format!("'{kw}' expects at least one variable name."));
                }
                for name in &words[1..] {
                    if let Some(e) = invalid(name) {
                        return Err(e);
                    }
                    self.changed.insert(name.clone(), None);
                }
            }
            _ => {
                // `resetenv [NAME...]`: every variable but those named is gone.
                let kept = (words[1..].iter())
                    .filter_map(|n| self.get(n, base).map(|v| (n.clone(), Some(v))))
                    .collect();
                self.changed = kept;
                self.cleared = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod environment_tests {
    use super::Environment;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn changes_apply_in_order_over_the_process_environment() {
        let base = |n: &str| match n {
            "HOME" => Some("/root".to_string()),
            "PATH" => Some("/bin".to_string()),
            _ => None,
        };
        let mut env = Environment::default();
        assert!(env.is_untouched());
        for line in [
            "setenv X one",
            "presetenv X two",
            "presetenv Y y",
            "presetenv HOME /h",
        ] {
            env.apply(&words(line), &base).unwrap();
        }
        assert_eq!(env.get("X", &base).as_deref(), Some("one"));
        assert_eq!(env.get("Y", &base).as_deref(), Some("y"));
        assert_eq!(env.get("HOME", &base).as_deref(), Some("/root"));
        env.apply(&words("unsetenv X PATH"), &base).unwrap();
        assert_eq!(env.get("X", &base), None);
        assert_eq!(env.get("PATH", &base), None);
        env.apply(&words("resetenv HOME Y NOPE"), &base).unwrap();
        assert_eq!(env.get("HOME", &base).as_deref(), Some("/root"));
        assert_eq!(env.get("Y", &base).as_deref(), Some("y"));
        assert_eq!(env.get("NOPE", &base), None);
        env.apply(&words("setenv X again"), &base).unwrap();
        assert_eq!(env.get("X", &base).as_deref(), Some("again"));
    }

    #[test]
    fn bad_lines_read_like_haproxy() {
        let base = |_: &str| None;
        let mut env = Environment::default();
        let err = |env: &mut Environment, l: &str| env.apply(&words(l), &base).unwrap_err();
        assert_eq!(
            err(&mut env, "setenv A"),
            "'setenv' expects a name and a value."
        );
        assert_eq!(
            err(&mut env, "presetenv"),
            "'presetenv' expects a name and a value."
        );
        assert_eq!(
            err(&mut env, "setenv A=B x"),
            "'setenv' failed on variable 'A=B' : Invalid argument."
        );
        assert_eq!(
            err(&mut env, "unsetenv"),
            "'unsetenv' expects at least one variable name."
        );
        assert!(env.is_untouched(), "nothing half-applied");
    }
}
