//! The runtime API's table commands, answered as HAProxy 2.6 words them (its
//! `cli_parse_table_req`, `table_process_entry_per_key`, `table_prepare_data_request`):
//! `show table`, `show table NAME [data.TYPE OP VALUE]...`, `show table NAME key K`,
//! `clear table NAME [key K | data filters]`, `set table NAME key K [data.TYPE VALUE]...`
//! (no key of a binary table: HAProxy 2.6 has no syntax for one).
//!
//! Levels are HAProxy's, per action: anyone lists the tables and reads a table's header;
//! its entries are shown, cleared or set from level `operator` on. Below it, a command on a
//! key is refused once the key is read (`Permission denied`), `show table NAME` says the
//! contents are not dumped, and `clear table NAME` does nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Filter, Key, Op, Table, Tables};
use crate::config::model::CliLevel;
use crate::config::stick::{DataType, KeyType};

/// What a table command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Show,
    Clear,
    Set,
}

impl Action {
    /// The action of a command's verb (`show`, `clear`, `set`).
    pub fn named(verb: &str) -> Option<Action> {
        Some(match verb {
            "show" => Action::Show,
            "clear" => Action::Clear,
            "set" => Action::Set,
            _ => return None,
        })
    }

    /// HAProxy's answer to arguments the action does not take.
    fn usage(self) -> String {
        match self {
            Action::Show => "Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>\n",
            Action::Clear => "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n",
            Action::Set => "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n",
        }
        .into()
    }
}

/// How many data filters a command takes (HAProxy's `STKTABLE_FILTER_LEN`).
const FILTERS: usize = 4;

/// `ACTION table ARGS...` at `level`: the answer.
pub fn command(tables: &Tables, level: CliLevel, action: Action, args: &[&str]) -> String {
    let Some(name) = args.first() else {
        return match action {
            Action::Show => list(tables),
            _ => action.usage(),
        };
    };
    let Some(table) = tables.get(name) else {
        return "No such table\n".into();
    };
    let operator = level != CliLevel::User;
    let rest = &args[1..];
    match rest.first() {
        Some(&"key") => per_key(table, operator, action, &rest[1..]),
        Some(w) if w.starts_with("data.") => {
            if action == Action::Set {
                return "content-based lookup is only supported with the \"show\" and \"clear\" actions\n".into();
            }
            match filters(table, rest) {
                Ok(filters) => whole(table, operator, action, &filters),
                Err(e) => e,
            }
        }
        Some(_) => action.usage(),
        None => whole(table, operator, action, &[]),
    }
}

/// `show table`: one header line per table, the last declared first (as HAProxy lists
/// them).
fn list(tables: &Tables) -> String {
    let all: Vec<&std::sync::Arc<Table>> = tables.iter().collect();
    all.into_iter().rev().map(|t| t.header(t.used())).collect()
}

/// A command on the entries that pass `filters` (all without any).
fn whole(table: &Table, operator: bool, action: Action, filters: &[Filter]) -> String {
    match action {
        Action::Show if operator => table.dump(filters, None),
        Action::Show => {
            table.header(table.used()) + "# contents not dumped due to insufficient privileges\n"
        }
        Action::Clear if operator => {
            table.clear(filters, None);
            String::new()
        }
        Action::Clear | Action::Set => String::new(),
    }
}

/// A command on one key (`rest`: the words after `key`; words after the key are ignored
/// by `show` and `clear`, as in HAProxy).
fn per_key(table: &Table, operator: bool, action: Action, rest: &[&str]) -> String {
    let Some(text) = rest.first().filter(|t| !t.is_empty()) else {
        return "Key value expected\n".into();
    };
    let key = match command_key(table, action, text) {
        Ok(key) => key,
        Err(e) => return e,
    };
    if !operator {
        return "Permission denied\n".into();
    }
    match action {
        // A key not in the table shows nothing, not even the header.
        Action::Show if table.read_exists(&key) => table.dump(&[], Some(&key)),
        Action::Show => String::new(),
        Action::Clear => {
            table.clear(&[], Some(&key));
            String::new()
        }
        Action::Set => set(table, &key, &rest[1..]),
    }
}

/// The key a command names, read as HAProxy's CLI reads it: an IPv4 address as its
/// `inetaddr_host` does (whatever the text), an IPv6 one as `inet_pton`, an integer as
/// `strtoul` within 32 bits, a string cut at the table's length. HAProxy 2.6 names no key
/// of a binary table: the command is refused, in its words for `action`.
fn command_key(table: &Table, action: Action, text: &str) -> Result<Key, String> {
    let invalid = || "Invalid key\n".to_string();
    match table.key_type() {
        KeyType::Binary => Err(match action {
            Action::Show => "Showing keys from tables of type other than ip, ipv6, string and integer is not supported\n",
            Action::Clear => "Removing keys from tables of type other than ip, ipv6, string and integer is not supported\n",
            Action::Set => "Inserting keys into tables of type other than ip, ipv6, string and integer is not supported\n",
        }
        .into()),
        KeyType::Ip => Ok(Key::Ip(inetaddr_host(text))),
        KeyType::Ipv6 => text
            .parse::<Ipv6Addr>()
            .map(Key::Ipv6)
            .map_err(|_| invalid()),
        KeyType::Integer => integer_key(text).map(Key::Integer).ok_or_else(invalid),
        KeyType::String => Ok(table.key_of_text(text)),
    }
}

/// HAProxy's `inetaddr_host`: up to four dot-separated parts, each the value of its last
/// three digits (what is not a digit ends a part, what follows a fourth part is ignored),
/// the parts summed in 8-bit lanes that carry into the part before (`1.300.1.1` is
/// 2.44.1.1); text without digits is 0.0.0.0.
fn inetaddr_host(text: &str) -> Ipv4Addr {
    const ZERO: u32 = 0x3030_3030;
    let b = text.as_bytes();
    let digit = |i: usize| u32::from(b[i]);
    let (mut d1, mut d10, mut d100) = (ZERO, ZERO, ZERO);
    let (mut shift, mut start, mut p) = (24u32, 0usize, 0usize);
    loop {
        while b.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        let part = p - start;
        if part >= 1 {
            d1 |= digit(p - 1) << shift;
        }
        if part >= 2 {
            d10 |= digit(p - 2) << shift;
        }
        if part >= 3 {
            d100 |= digit(p - 3) << shift;
        }
        if shift == 0 || b.get(p) != Some(&b'.') {
            break;
        }
        shift -= 8;
        p += 1;
        start = p;
    }
    let (d1, d10, d100) = (d1 - ZERO, d10 - ZERO, d100 - ZERO);
    Ipv4Addr::from(
        d100.wrapping_mul(10)
            .wrapping_add(d10)
            .wrapping_mul(10)
            .wrapping_add(d1),
    )
}

/// strtoul's reading of a key: leading digits (after an optional sign), at most 32 bits;
/// a negative one wraps past them, so only `-0` is one.
fn integer_key(text: &str) -> Option<u32> {
    let t = text.trim_start();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = t[..digits].parse().ok()?;
    match (negative, u32::try_from(n)) {
        (false, Ok(n)) => Some(n),
        (true, _) if n == 0 => Some(0),
        _ => None,
    }
}

/// HAProxy's `strl2llrc`: an optional `-` then digits only (`-` alone is 0), wrapping.
fn strl2llrc(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if text.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.bytes().fold(0i64, |n, b| {
        n.wrapping_mul(10).wrapping_add(i64::from(b - b'0'))
    });
    Some(if negative { n.wrapping_neg() } else { n })
}

/// The data filters of `show|clear table NAME data.TYPE OP VALUE...`, read as HAProxy's
/// `table_prepare_data_request`: the type of each filter after the first is whatever
/// follows the first five characters of its word (`data.` or not).
fn filters(table: &Table, args: &[&str]) -> Result<Vec<Filter>, String> {
    let mut out = Vec::new();
    for i in 0..FILTERS {
        let word = args.get(3 * i).copied().unwrap_or("");
        if i > 0 && word.is_empty() {
            break;
        }
        let n = i + 1;
        let data = (word.get(5..).and_then(DataType::named))
            .ok_or_else(|| format!("Filter entry #{n}: Unknown data type\n"))?;
        if !table.stores(data) {
            return Err(format!(
                "Filter entry #{n}: Data type not stored in this table\n"
            ));
        }
        let op = (args.get(3 * i + 1).and_then(|o| Op::named(o))).ok_or_else(|| {
            format!("Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n")
        })?;
        let value = (args.get(3 * i + 2).and_then(|v| strl2llrc(v))).ok_or_else(|| {
            format!("Filter entry #{n}: Require a valid integer value to compare against\n")
        })?;
        out.push(Filter { data, op, value });
    }
    if args.len() > 3 * FILTERS {
        // Counted from the command's first word (`show table NAME` before the filters).
        return Err(format!(
            "Detected extra data in filter, {}th word of input, after '{}'\n",
            3 * FILTERS + 4,
            args[3 * FILTERS - 1]
        ));
    }
    Ok(out)
}

/// `set table NAME key K data.TYPE VALUE...`: the entry is made if missing, then each
/// value is stored in turn, up to the first the command gets wrong (HAProxy keeps the
/// ones before it).
fn set(table: &Table, key: &Key, data: &[&str]) -> String {
    if table.update(key, |_| ()).is_none() {
        return "Unable to allocate a new entry\n".into();
    }
    table
        .update(key, |d| {
            for pair in data.chunks(2) {
                let Some(name) = pair[0].strip_prefix("data.") else {
                    return "\"data.<type>\" followed by a value expected\n".into();
                };
                let Some(data) = DataType::named(name) else {
                    return "Unknown data type\n".into();
                };
                if !d.stores(data) {
                    return "Data type not stored in this table\n".into();
                }
                let Some(value) = pair.get(1).and_then(|v| strl2llrc(v)) else {
                    return "Require a valid integer value to store\n".into();
                };
                d.put(data, stored(data, value));
            }
            String::new()
        })
        .unwrap_or_default()
}

/// A value as HAProxy stores it for `data`: the byte counts in 64 bits, the other counts
/// (and a rate's events) in 32, wrapping.
fn stored(data: DataType, value: i64) -> u64 {
    match data {
        DataType::BytesInCnt | DataType::BytesOutCnt => value as u64,
        _ => u64::from(value as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_keys_are_read_as_haproxys_inetaddr_host() {
        for (text, ip) in [
            ("1.2.3.4", "1.2.3.4"),
            ("1.2.3", "1.2.3.0"),
            ("abc", "0.0.0.0"),
            ("::1", "0.0.0.0"),
            ("1.2.3.4.5", "1.2.3.4"),
            ("300.1.1.1", "44.1.1.1"),
            ("1.300.1.1", "2.44.1.1"),
            ("1234.5.6.7", "234.5.6.7"),
        ] {
            assert_eq!(inetaddr_host(text).to_string(), ip, "{text}");
        }
    }

    #[test]
    fn values_are_read_as_strl2llrc() {
        assert_eq!(strl2llrc("-1"), Some(-1));
        assert_eq!(strl2llrc("-"), Some(0));
        assert_eq!(strl2llrc("+5"), None);
        assert_eq!(strl2llrc(""), None);
        assert_eq!(strl2llrc("12x"), None);
    }
}
