//! The runtime API's table commands, answered as HAProxy 2.6 words them: `show table`,
//! `show table NAME [data.TYPE OP VALUE]... [key K]`, `clear table NAME [key K | filters]`,
//! `set table NAME key K data.TYPE VALUE...`.

use super::{Filter, Op, Table, Tables};
use crate::config::stick::DataType;

/// `show table`: one header line per table.
pub fn list(tables: &Tables) -> String {
    tables.iter().map(|t| t.header(t.used())).collect()
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
                sel.key = Some(args.get(i + 1).ok_or("Missing key\n")?.to_string());
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
        Some(k) => match table.key_of_text(k) {
            // As HAProxy: a key not in the table shows nothing, not even the header.
            Some(key) if table.read_exists(&key) => table.dump(&sel.filters, Some(&key)),
            Some(_) => String::new(),
            None => "Invalid key\n".into(),
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
        Err(e) => return e,
    };
    let key = match sel.key.as_deref().map(|k| table.key_of_text(k)) {
        Some(None) => return "Invalid key\n".into(),
        Some(k) => k,
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
        ["key", k, rest @ ..] => (*k, rest),
        _ => return "Missing key\n".into(),
    };
    let Some(key) = table.key_of_text(key) else {
        return "Invalid key\n".into();
    };
    let mut changes = Vec::new();
    for pair in rest.chunks(2) {
        let Some(data) = pair[0].strip_prefix("data.").and_then(DataType::named) else {
            return "Unknown data type\n".into();
        };
        if !table.stores(data) {
            // HAProxy made the entry before it looked at the data.
            table.update(&key, |_| ());
            return "Data type not stored in this table\n".into();
        }
        let Some(value) = pair.get(1).and_then(|v| v.parse::<u64>().ok()) else {
            return "Require a valid integer value to store\n".into();
        };
        changes.push((data, value));
    }
    table.update(&key, |d| {
        for (data, value) in changes {
            d.put(data, value);
        }
    });
    String::new()
}
