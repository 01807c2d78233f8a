//! Stick tables as HAProxy 2.6 declares them: `stick-table type ip|ipv6|integer|string
//! [len N] size N [expire T] [nopurge] [peers P] [store ...]` in a frontend, backend or
//! listen section (the table takes the section's name), and the `track-scN KEY [table T]`
//! argument of `tcp-request` and `http-request` rules. The runtime side (entries, counters,
//! tracking) is [`crate::runtime::stick`].

use std::time::Duration;

use super::acl::{self, AclError, Fetch};
use super::values;

/// What a table's keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ip,
    Ipv6,
    Integer,
    /// Up to `len` bytes (32 by default).
    String,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::Ipv6 => "ipv6",
            KeyType::Integer => "integer",
            KeyType::String => "string",
        }
    }
}

/// A data type an entry stores, in HAProxy's order (`show table` lists them so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataType {
    ServerId,
    Gpt0,
    Gpc0,
    Gpc0Rate,
    ConnCnt,
    ConnRate,
    ConnCur,
    SessCnt,
    SessRate,
    HttpReqCnt,
    HttpReqRate,
    HttpErrCnt,
    HttpErrRate,
    BytesInCnt,
    BytesInRate,
    BytesOutCnt,
    BytesOutRate,
    /// The name of the server (stored with `server_id` by `stick` rules).
    ServerKey,
}

/// How many data types there are.
pub const DATA_TYPES: usize = 18;

impl DataType {
    pub const ALL: [DataType; DATA_TYPES] = [
        DataType::ServerId,
        DataType::Gpt0,
        DataType::Gpc0,
        DataType::Gpc0Rate,
        DataType::ConnCnt,
        DataType::ConnRate,
        DataType::ConnCur,
        DataType::SessCnt,
        DataType::SessRate,
        DataType::HttpReqCnt,
        DataType::HttpReqRate,
        DataType::HttpErrCnt,
        DataType::HttpErrRate,
        DataType::BytesInCnt,
        DataType::BytesInRate,
        DataType::BytesOutCnt,
        DataType::BytesOutRate,
        DataType::ServerKey,
    ];

    /// The name HAProxy gives it (`store`, `show table`, `data.NAME`).
    pub fn name(self) -> &'static str {
        match self {
            DataType::ServerId => "server_id",
            DataType::Gpt0 => "gpt0",
            DataType::Gpc0 => "gpc0",
            DataType::Gpc0Rate => "gpc0_rate",
            DataType::ConnCnt => "conn_cnt",
            DataType::ConnRate => "conn_rate",
            DataType::ConnCur => "conn_cur",
            DataType::SessCnt => "sess_cnt",
            DataType::SessRate => "sess_rate",
            DataType::HttpReqCnt => "http_req_cnt",
            DataType::HttpReqRate => "http_req_rate",
            DataType::HttpErrCnt => "http_err_cnt",
            DataType::HttpErrRate => "http_err_rate",
            DataType::BytesInCnt => "bytes_in_cnt",
            DataType::BytesInRate => "bytes_in_rate",
            DataType::BytesOutCnt => "bytes_out_cnt",
            DataType::BytesOutRate => "bytes_out_rate",
            DataType::ServerKey => "server_key",
        }
    }

    pub fn named(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// A rate over a period (`conn_rate(10s)`), else a plain number.
    pub fn is_rate(self) -> bool {
        self.name().ends_with("_rate")
    }
}

/// A data type stored, with its period for a rate (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store {
    pub data: DataType,
    pub period_ms: u32,
}

/// A `stick-table` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub key: KeyType,
    /// The key's size in bytes (a string's `len`).
    pub key_len: usize,
    pub size: usize,
    pub expire: Option<Duration>,
    pub nopurge: bool,
    /// The `peers` section named (hapx has none: the check refuses it as HAProxy refuses a
    /// section that does not exist).
    pub peers: Option<String>,
    /// The data stored, in HAProxy's order, each once.
    pub store: Vec<Store>,
    /// Where it is declared (`file:line`), for HAProxy's conflict message.
    pub declared_at: String,
}

impl TableSpec {
    /// The period of a stored data type; None when the table does not store it.
    pub fn stores(&self, data: DataType) -> Option<&Store> {
        self.store.iter().find(|s| s.data == data)
    }
}

/// Why a `stick-table` line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Worded after the line's place, as most messages (`parsing [f:l] : ...`).
    #[error("{0}")]
    Line(String),
    /// HAProxy words an expiry past its timers `parsing [f:l]: ...` (no space before the
    /// colon).
    #[error("{0}")]
    Unspaced(String),
}

/// The first character of `v` HAProxy's number parsers stop at (after the digits and one
/// of `units`).
fn unexpected_char(v: &str, units: &[&str]) -> char {
    let rest = v.trim_start_matches(|c: char| c.is_ascii_digit());
    let after = if rest.len() == v.len() {
        rest
    } else {
        units
            .iter()
            .find_map(|u| rest.strip_prefix(u))
            .unwrap_or(rest)
    };
    after.chars().chain(rest.chars()).next().unwrap_or('?')
}

/// Parses the words after `stick-table`; `warnings` gets what HAProxy warns about.
pub fn parse_table(args: &[String], warnings: &mut Vec<String>) -> Result<TableSpec, TableError> {
    let err = |m: String| TableError::Line(format!("stick-table: {m}."));
    let mut key = None;
    let mut key_len = None;
    let mut size = None;
    let mut spec_expire = None;
    let mut nopurge = false;
    let mut peers = None;
    let mut store: Vec<Store> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_str();
        let value = args.get(i + 1);
        let need = |what: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(format!("missing argument after '{what}'")))
        };
        match word {
            "type" => {
                let v = need(word)?;
                key = Some(match v.as_str() {
                    "ip" | "ipv4" => KeyType::Ip,
                    "ipv6" => KeyType::Ipv6,
                    "integer" => KeyType::Integer,
                    "string" => KeyType::String,
                    "binary" => {
                        return Err(err("type 'binary' is not implemented by hapx".into()));
                    }
                    other => return Err(err(format!("unknown type '{other}'"))),
                });
                i += 2;
                // A string's length comes right after its type, as in HAProxy (which reads
                // it as atol() does: 0 or no digits is no length).
                if key == Some(KeyType::String) && args.get(i).is_some_and(|w| w == "len") {
                    let v = args.get(i + 1).map_or("", String::as_str);
                    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
                    let n = v[..digits].parse::<usize>().unwrap_or(0);
                    if n == 0 {
                        return Err(err(format!("unknown type '{v}'")));
                    }
                    key_len = Some(n);
                    i += 2;
                }
            }
            "size" => {
                let v = need(word)?;
                let at = || unexpected_char(v, &["k", "K", "m", "M", "g", "G"]);
                let n = size_value(v).ok_or_else(|| {
                    err(format!(
                        "unexpected character '{}' in argument of 'size'",
                        at()
                    ))
                })?;
                // `size 0` is no size, as in HAProxy.
                size = Some(n).filter(|n| *n > 0);
                i += 2;
            }
            "expire" => {
                let v = need(word)?;
                let d = values::timer(v, "stick-table expire").map_err(|_| {
                    if values::long_duration(v).is_ok() {
                        TableError::Unspaced(format!(
                            "stick-table: timer overflow in argument <{v}> to <expire>, maximum value is 2147483647 ms (~24.8 days)."
                        ))
                    } else {
                        let c = unexpected_char(v, &["us", "ms", "s", "m", "h", "d"]);
                        err(format!("unexpected character '{c}' in argument of 'expire'"))
                    }
                })?;
                spec_expire = Some(d);
                i += 2;
            }
            "nopurge" => {
                nopurge = true;
                i += 1;
            }
            "peers" => {
                peers = Some(need(word)?.clone());
                i += 2;
            }
            "store" => {
                let v = need(word)?;
                // A last comma ends the list, as in HAProxy (`store gpc0, conn_cnt` then
                // has `conn_cnt` for its next argument).
                for item in v.strip_suffix(',').unwrap_or(v).split(',') {
                    let s = store_item(item).map_err(err)?;
                    if store.iter().any(|x| x.data == s.data) {
                        warnings.push(format!(
                            "stick-table: store option '{}' already enabled, ignored.",
                            s.data.name()
                        ));
                        continue;
                    }
                    store.push(s);
                }
                i += 2;
            }
            other => {
                return Err(err(format!("unknown argument '{other}'")));
            }
        }
    }
    let key = key.ok_or_else(|| err("missing type".into()))?;
    let size = size.ok_or_else(|| err("missing size".into()))?;
    let key_len = match key {
        KeyType::Ip => 4,
        KeyType::Ipv6 => 16,
        KeyType::Integer => 4,
        KeyType::String => key_len.unwrap_or(32),
    };
    store.sort_by_key(|s| s.data);
    Ok(TableSpec {
        key,
        key_len,
        size,
        expire: spec_expire,
        nopurge,
        peers,
        store,
        declared_at: String::new(),
    })
}

/// `100k`, `1m`, `2g`: HAProxy's sizes of stick tables.
fn size_value(v: &str) -> Option<usize> {
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => v.split_at(at),
        None => (v, ""),
    };
    let n: usize = digits.parse().ok()?;
    let mult = match unit {
        "" => 1,
        "k" | "K" => 1024,
        "m" | "M" => 1024 * 1024,
        "g" | "G" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// One item of `store`: `gpc0`, `http_req_rate(10s)`.
fn store_item(item: &str) -> Result<Store, String> {
    let (name, arg) = match item.split_once('(') {
        Some((n, rest)) => match rest.split_once(')') {
            Some((arg, _)) => (n, Some(arg)),
            None => {
                return Err(format!(
                    "missing closing parenthesis after store option '{n}'"
                ));
            }
        },
        None => (item, None),
    };
    let data = DataType::named(name).ok_or_else(|| format!("unknown store option '{name}'"))?;
    if name.starts_with("bytes_") {
        return Err(format!(
            "store option '{name}' is not implemented by hapx (the bytes of connections are not counted into tables)"
        ));
    }
    if !data.is_rate() {
        if arg.is_some() {
            return Err(format!("unexpected argument to store option '{name}'"));
        }
        return Ok(Store { data, period_ms: 0 });
    }
    let arg = arg
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("missing argument to store option '{name}'"))?;
    let period = values::timer(arg, name)
        .map_err(|_| format!("invalid argument to store option '{name}'"))?;
    Ok(Store {
        data,
        period_ms: u32::try_from(period.as_millis()).unwrap_or(u32::MAX).max(1),
    })
}

/// A `track-scN KEY [table T]` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// N: the stick counter (0, 1 or 2).
    pub slot: u8,
    pub key: Fetch,
    /// The table's proxy (the rule's own proxy when not named).
    pub table: String,
}

/// The N of a `track-scN` action named `name` (any number: [`parse_track`] refuses those
/// past the last slot as HAProxy); None for other names.
pub fn track_slot(name: &str) -> Option<u8> {
    let n = name.strip_prefix("track-sc")?;
    n.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| n.parse().ok())?
}

/// HAProxy's message for a `track-scN` past its last slot; None for a slot that exists.
pub fn slot_error(slot: u8) -> Option<String> {
    (slot > 2).then(|| format!("{slot} track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value"))
}

/// The arguments of `track-scN` (`args` after the action's name), in proxy `own`.
pub fn parse_track(slot: u8, args: &[String], own: &str) -> Result<Track, AclError> {
    if let Some(e) = slot_error(slot) {
        return Err(AclError::Bad(e));
    }
    let name = format!("track-sc{slot}");
    let key = args
        .first()
        .ok_or_else(|| AclError::Bad(format!("'{name}' expects a key")))?;
    let key = acl::parse_fetch(key)?;
    let table = match &args[1..] {
        [] => own.to_string(),
        [t, n] if t == "table" => n.clone(),
        [t] if t == "table" => {
            return Err(AclError::Bad(format!(
                "missing table name after 'table' in '{name}'"
            )));
        }
        [other, ..] => {
            return Err(AclError::Bad(format!(
                "'{name}' : unexpected keyword '{other}' (expects 'table' or 'if'/'unless')"
            )));
        }
    };
    Ok(Track { slot, key, table })
}

/// Whose entry a stick fetch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counter {
    /// `sc_*(N)`, `scN_*`: what slot N tracks.
    Slot(u8),
    /// `src_*`: the client address's entry.
    Src,
}

/// What a stick fetch gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Get(DataType),
    IncGpc0,
    ClrGpc0,
    /// `table_cnt`: the entries of the table.
    TableCnt,
}

/// A stick fetch: `sc_http_req_rate(0)`, `sc1_conn_cur`, `src_conn_rate(tbl)`, `table_cnt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickFetch {
    pub counter: Counter,
    /// The table named in the arguments (else the slot's, or the current proxy's).
    pub table: Option<String>,
    pub query: Query,
}

/// The stick fetch `name(args)`; None for other fetches.
pub fn parse_fetch(name: &str, args: &[&str]) -> Option<Result<StickFetch, String>> {
    if name == "table_cnt" {
        return Some(Ok(StickFetch {
            counter: Counter::Src,
            table: args.first().map(|t| t.to_string()),
            query: Query::TableCnt,
        }));
    }
    let (counter, what, table_arg) = if let Some(what) = name.strip_prefix("sc_") {
        let slot = match args.first() {
            Some(&n) => match n.parse::<u8>() {
                Ok(n) if n < 3 => n,
                _ => {
                    return Some(Err(format!(
                        "ACL keyword '{name}' : invalid stick counter '{n}' (expects 0, 1 or 2)"
                    )));
                }
            },
            None => return Some(Err(format!("ACL keyword '{name}' : missing argument"))),
        };
        (Counter::Slot(slot), what, args.get(1))
    } else if let Some(what) = name.strip_prefix("src_") {
        (Counter::Src, what, args.first())
    } else {
        let rest = name.strip_prefix("sc")?;
        let slot = rest.get(..1)?.parse::<u8>().ok().filter(|n| *n < 3)?;
        (
            Counter::Slot(slot),
            rest.get(1..)?.strip_prefix('_')?,
            args.first(),
        )
    };
    let query = match what {
        "get_gpc0" => Query::Get(DataType::Gpc0),
        "get_gpt0" => Query::Get(DataType::Gpt0),
        "inc_gpc0" => Query::IncGpc0,
        "clr_gpc0" => Query::ClrGpc0,
        "gpc0_rate" | "conn_cnt" | "conn_cur" | "conn_rate" | "sess_cnt" | "sess_rate"
        | "http_req_cnt" | "http_req_rate" | "http_err_cnt" | "http_err_rate" => {
            Query::Get(DataType::named(what)?)
        }
        _ => return None,
    };
    Some(Ok(StickFetch {
        counter,
        table: table_arg.map(|t| t.to_string()),
        query,
    }))
}

/// HAProxy's checks that each `track-scN` and `stick` rule names a table that exists; the
/// tables of `stick` rules store `server_id` and `server_key`, as in HAProxy.
pub fn check(config: &mut super::model::Config, diags: &mut super::diag::Diags) {
    let mut sticky = Vec::new();
    for p in &config.proxies {
        for r in &p.rules.stick {
            let table = config
                .proxies
                .iter()
                .position(|t| t.name == r.table && t.stick_table.is_some());
            match table {
                Some(i) => sticky.push(i),
                None => diags.global_alert(format!(
                    "Proxy '{}': unable to find stick-table '{}'.",
                    p.name, r.table
                )),
            }
        }
    }
    for i in sticky {
        if let Some(spec) = config.proxies[i].stick_table.as_mut() {
            for data in [DataType::ServerId, DataType::ServerKey] {
                if spec.stores(data).is_none() {
                    spec.store.push(Store { data, period_ms: 0 });
                }
            }
            spec.store.sort_by_key(|s| s.data);
        }
    }
    check_tracks(config, diags);
    for p in &config.proxies {
        if let Some(peers) = p.stick_table.as_ref().and_then(|s| s.peers.as_ref()) {
            diags.global_alert(format!(
                "Proxy '{}': unable to find sync peers '{peers}'.",
                p.name
            ));
        }
    }
}

/// Each `track-scN` names a table that exists.
fn check_tracks(config: &super::model::Config, diags: &mut super::diag::Diags) {
    use super::rules::{HttpAction, StickAction, TcpAction};
    let exists = |name: &str| {
        config
            .proxies
            .iter()
            .any(|p| p.name == name && p.stick_table.is_some())
    };
    for p in &config.proxies {
        let r = &p.rules;
        let tcp = r
            .tcp_connection
            .iter()
            .chain(&r.tcp_content)
            .filter_map(|t| match &t.action {
                TcpAction::Stick(StickAction::Track(t)) => Some(t),
                _ => None,
            });
        let http = r
            .http_request
            .iter()
            .chain(&r.http_response)
            .filter_map(|h| match &h.action {
                HttpAction::Stick(StickAction::Track(t)) => Some(t),
                _ => None,
            });
        for t in tcp.chain(http).filter(|t| !exists(&t.table)) {
            diags.global_alert(format!(
                "Proxy '{}': unable to find table '{}' referenced by track-sc{}.",
                p.name, t.table, t.slot
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn tables() {
        let t = parse_table(
            &words("type ip size 100k expire 30s store http_req_rate(10s),gpc0,conn_cur"),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(t.size, 102_400);
        assert_eq!(t.expire, Some(Duration::from_secs(30)));
        let kinds: Vec<_> = t.store.iter().map(|s| s.data).collect();
        assert_eq!(
            kinds,
            [DataType::Gpc0, DataType::ConnCur, DataType::HttpReqRate]
        );
        assert_eq!(t.stores(DataType::HttpReqRate).unwrap().period_ms, 10_000);
        let e = |s: &str| {
            parse_table(&words(s), &mut Vec::new())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("type ip size 10 store foo"),
            "stick-table: unknown store option 'foo'."
        );
        assert_eq!(e("type ip expire 10s"), "stick-table: missing size.");
        assert_eq!(
            e("type ip size 1 store conn_rate"),
            "stick-table: missing argument to store option 'conn_rate'."
        );
        assert_eq!(e("type foo size 1"), "stick-table: unknown type 'foo'.");
    }
}
