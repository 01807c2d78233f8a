//! The runtime API's table commands, answered as HAProxy 2.6 words them: `show table`,
//! `show table NAME [data.TYPE OP VALUE]... [key K]`, `clear table NAME [key K | filters]`,
//! `set table NAME key K data.TYPE VALUE...`.

use std::net::Ipv4Addr;

use super::{Filter, Key, Op, Table, Tables};
use crate::config::stick::{DataType, KeyType};

/// `show table`: one header line per table, the last declared first (as HAProxy lists
/// them).
pub fn list(tables: &Tables) -> String {
    let all: Vec<&std::sync::Arc<Table>> = tables.iter().collect();
    all.into_iter().rev().map(|t| t.header(t.used())).collect()
}

/// What `clear table` says without a table or with arguments it does not know.
const CLEAR_USAGE: &str = "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n";

/// What `set table` says without a table.
pub const SET_USAGE: &str =
    "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n";

/// `clear table` without a table.
pub fn clear_usage() -> String {
    CLEAR_USAGE.into()
}

/// The key a command names, read as HAProxy's CLI reads it: an error for an integer it
/// refuses (strtoul's reading, within 32 bits); None for an address that is none, which
/// HAProxy answers with nothing.
fn command_key(table: &Table, text: &str) -> Result<Option<Key>, String> {
    if text.is_empty() {
        return Err("Key value expected\n".into());
    }
    match table.key_type() {
        KeyType::Integer => integer_key(text)
            .map(|n| Some(Key::Integer(n)))
            .ok_or_else(|| "Invalid key\n".into()),
        KeyType::Ip => Ok(table
            .key_of_text(text)
            .or_else(|| short_ipv4(text).map(Key::Ip))),
        _ => Ok(table.key_of_text(text)),
    }
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

/// An IPv4 address missing its last parts (`1.2.3` is 1.2.3.0), as HAProxy's CLI takes it.
fn short_ipv4(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// What follows the table name: filters and maybe a key.
struct Selection {
    filters: Vec<Filter>,
    key: Option<String>,
}

fn selection(table: &Table, args: &[&str]) -> Result<Selection, String> {
    let mut sel = Selection {
        filters: Vec::new(),
        key: None,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "key" => {
                sel.key = Some(args.get(i + 1).unwrap_or(&"").to_string());
                i += 2;
            }
            w if w.starts_with("data.") => {
                let n = sel.filters.len() + 1;
                let data = DataType::named(&w["data.".len()..])
                    .ok_or_else(|| format!("Filter entry #{n}: Unknown data type\n"))?;
                if !table.stores(data) {
                    return Err(format!(
                        "Filter entry #{n}: Data type not stored in this table\n"
                    ));
                }
                let op = args.get(i + 1).and_then(|o| Op::named(o)).ok_or_else(|| {
                    format!("Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n")
                })?;
                let value = args
                    .get(i + 2)
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "Filter entry #{n}: Require a valid integer value to compare against\n"
                        )
                    })?;
                sel.filters.push(Filter { data, op, value });
                i += 3;
            }
            _ => {
                return Err("Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>\n".into());
            }
        }
    }
    Ok(sel)
}

/// `show table NAME ...`.
pub fn show(tables: &Tables, name: &str, args: &[&str]) -> String {
    let Some(table) = tables.get(name) else {
        return "No such table\n".into();
    };
    let sel = match selection(table, args) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match &sel.key {
        None => table.dump(&sel.filters, None),
        Some(k) => match command_key(table, k) {
            // As HAProxy: a key not in the table shows nothing, not even the header.
            Ok(Some(key)) if table.read_exists(&key) => table.dump(&sel.filters, Some(&key)),
            Ok(_) => String::new(),
            Err(e) => e,
        },
    }
}

/// `clear table NAME [key K | filters]`: entries in use stay.
pub fn clear(tables: &Tables, name: &str, args: &[&str]) -> String {
    let Some(table) = tables.get(name) else {
        return "No such table\n".into();
    };
    let sel = match selection(table, args) {
        Ok(s) => s,
        Err(e) if e.starts_with("Optional") => return clear_usage(),
        Err(e) => return e,
    };
    let key = match sel.key.as_deref().map(|k| command_key(table, k)) {
        Some(Err(e)) => return e,
        // An address that is none: nothing cleared.
        Some(Ok(None)) => return String::new(),
        Some(Ok(k)) => k,
        None => None,
    };
    table.clear(&sel.filters, key.as_ref());
    String::new()
}

/// `set table NAME key K data.TYPE VALUE...`: the entry is made if missing.
pub fn set(tables: &Tables, name: &str, args: &[&str]) -> String {
    let Some(table) = tables.get(name) else {
        return "No such table\n".into();
    };
    let (key, rest) = match args {
        [] => return String::new(),
        ["key"] => return "Key value expected\n".into(),
        ["key", k, rest @ ..] => (*k, rest),
        [w, ..] if w.starts_with("data.") => {
            return "content-based lookup is only supported with the \"show\" and \"clear\" actions\n".into();
        }
        _ => return SET_USAGE.into(),
    };
    let key = match command_key(table, key) {
        Ok(Some(key)) => key,
        Ok(None) => return String::new(),
        Err(e) => return e,
    };
    // HAProxy makes the entry before it looks at the data (which may then be refused).
    if table.update(&key, |_| ()).is_none() {
        return "Unable to allocate a new entry\n".into();
    }
    let mut changes = Vec::new();
    for pair in rest.chunks(2) {
        let Some(data) = pair[0].strip_prefix("data.").and_then(DataType::named) else {
            return "Unknown data type\n".into();
        };
        if !table.stores(data) {
            return "Data type not stored in this table\n".into();
        }
        let Some(value) = pair.get(1).and_then(|v| v.parse::<i64>().ok()) else {
            return "Require a valid integer value to store\n".into();
        };
        // HAProxy's counters are 32 bits: a value past them (or below 0) wraps.
        changes.push((data, u64::from(value as u32)));
    }
    table.update(&key, |d| {
        for (data, value) in changes {
            d.put(data, value);
        }
    });
    String::new()
}
