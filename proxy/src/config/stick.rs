//! Stick tables as HAProxy 2.6 declares them: `stick-table type ip|ipv6|integer|string|binary
//! [len N] size N [expire T] [nopurge] [peers P] [store ...]` in a frontend, backend or
//! listen section (the table takes the section's name), and the `track-scN KEY [table T]`
//! argument of `tcp-request` and `http-request` rules. The runtime side (entries, counters,
//! tracking) is [`crate::runtime::stick`].
//!
//! Stick fetches (`src_*`, `sc_*`, `scN_*`, `table_cnt`) are parsed where they are written
//! ([`written_at`]: the rule line or log format, its proxy): a `src_*` or `table_cnt` fetch
//! without a table reads the table of that proxy, as HAProxy fixes it at parse time, and
//! every table a fetch names is checked once the proxies are ([`check_fetch_tables`]), in
//! HAProxy's words. So is a converter's regex that does not compile (`regsub(a**,b)`):
//! HAProxy compiles it then, and reports it with the other unresolved arguments.

use std::time::Duration;

use super::acl::{self, AclError, Fetch};
use super::diag::LineError;
use super::model::Place;
use super::values;

/// What a table's keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ip,
    Ipv6,
    Integer,
    /// Up to `len` bytes (31 by default: HAProxy's 32-byte key holds the NUL).
    String,
    /// Exactly `len` bytes (32 by default): shorter samples padded with zeros, longer ones
    /// cut.
    Binary,
}

impl KeyType {
    /// Whether HAProxy casts what `key` gives into a key of this type (its
    /// `stktable_compatible_sample`: a cast in `sample_casts` from the expression's output
    /// type, where `method` alone is a method, and addresses are declared IPv4).
    pub fn takes(self, key: &Fetch) -> bool {
        use super::converter::SampleType as T;
        let method = key.source == acl::Source::Method && key.converters.is_empty();
        match self {
            KeyType::String | KeyType::Binary => true,
            _ if method => false,
            KeyType::Ip | KeyType::Ipv6 => matches!(key.kind(), T::Int | T::Ip | T::Str),
            KeyType::Integer => key.kind() != T::Bin,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::Ipv6 => "ipv6",
            KeyType::Integer => "integer",
            KeyType::String => "string",
            KeyType::Binary => "binary",
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
    /// Responses that tell of a server's failure: 5xx but 501 and 505, and no response.
    HttpFailCnt,
    HttpFailRate,
}

/// How many data types there are.
pub const DATA_TYPES: usize = 20;

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
        DataType::HttpFailCnt,
        DataType::HttpFailRate,
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
            DataType::HttpFailCnt => "http_fail_cnt",
            DataType::HttpFailRate => "http_fail_rate",
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
    /// The key's size in bytes (a string's `len`, without HAProxy's NUL).
    pub key_len: usize,
    pub size: usize,
    pub expire: Option<Duration>,
    pub nopurge: bool,
    /// The `peers` section named: the table's entries are replicated to its members
    /// ([`crate::runtime::peers`]); one that does not exist is refused as HAProxy does.
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

/// A `stick-table` line as read so far.
#[derive(Debug, Default)]
struct TableWords {
    key: Option<KeyType>,
    key_len: Option<usize>,
    size: Option<usize>,
    expire: Option<Duration>,
    nopurge: bool,
    peers: Option<String>,
    store: Vec<Store>,
    /// Data types HAProxy stores and hapx does not (warned about, checked for conflicts).
    unimplemented: Vec<String>,
}

/// A `stick-table: ....` message about the line.
fn line_err(m: String) -> LineError {
    LineError::Line(format!("stick-table: {m}."))
}

/// Parses the words after `stick-table`; `warnings` gets what HAProxy warns about.
pub fn parse_table(args: &[String], warnings: &mut Vec<String>) -> Result<TableSpec, LineError> {
    let mut t = TableWords::default();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_str();
        let value = args
            .get(i + 1)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| line_err(format!("missing argument after '{word}'")));
        i += match word {
            "type" => t.key_type(value?, &args[i + 2..])?,
            "size" => {
                // `size 0` is no size, as in HAProxy.
                t.size = Some(size_of(value?)?).filter(|n| *n > 0);
                2
            }
            "expire" => {
                t.expire = Some(expire_of(value?)?);
                2
            }
            "nopurge" => {
                t.nopurge = true;
                1
            }
            "peers" => {
                t.peers = Some(value?.clone());
                2
            }
            "store" => {
                t.store_items(value?, warnings)?;
                2
            }
            "srvkey" => {
                server_key_kind(args.get(i + 1).map_or("", String::as_str), warnings)?;
                2
            }
            other => return Err(line_err(format!("unknown argument '{other}'"))),
        };
    }
    t.finish()
}

impl TableWords {
    /// `type T` (and a string's or binary's `len N` right after it, in `rest`); the words
    /// it took.
    fn key_type(&mut self, v: &str, rest: &[String]) -> Result<usize, LineError> {
        self.key = Some(match v {
            "ip" | "ipv4" => KeyType::Ip,
            "ipv6" => KeyType::Ipv6,
            "integer" => KeyType::Integer,
            "string" => KeyType::String,
            "binary" => KeyType::Binary,
            other => return Err(line_err(format!("unknown type '{other}'"))),
        });
        let sized = matches!(self.key, Some(KeyType::String | KeyType::Binary));
        if !sized || rest.first().is_none_or(|w| w != "len") {
            return Ok(2);
        }
        // Read as atol() does, as HAProxy: 0 or no digits is no length.
        let v = rest.get(1).map_or("", String::as_str);
        let digits = v.bytes().take_while(u8::is_ascii_digit).count();
        let n = v[..digits].parse::<usize>().unwrap_or(0);
        if n == 0 {
            return Err(line_err(format!("unknown type '{v}'")));
        }
        self.key_len = Some(n);
        Ok(4)
    }

    /// `store A,B(period),...`: each data type once (a repeated one warned about).
    fn store_items(&mut self, v: &str, warnings: &mut Vec<String>) -> Result<(), LineError> {
        // A last comma ends the list, as in HAProxy (`store gpc0, conn_cnt` then has
        // `conn_cnt` for its next argument).
        for item in store_list(v.strip_suffix(',').unwrap_or(v)) {
            if let Some(name) = unimplemented_store_item(item).map_err(line_err)? {
                warnings.push(format!(
                    "stick-table: store option '{name}' is not implemented by hapx and is ignored."
                ));
                self.unimplemented.push(name.to_string());
                continue;
            }
            let s = store_item(item).map_err(line_err)?;
            if self.store.iter().any(|x| x.data == s.data) {
                warnings.push(format!(
                    "stick-table: store option '{}' already enabled, ignored.",
                    s.data.name()
                ));
                continue;
            }
            self.store.push(s);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<TableSpec, LineError> {
        // In HAProxy's order: the size first.
        let size = self.size.ok_or_else(|| line_err("missing size".into()))?;
        let key = self.key.ok_or_else(|| line_err("missing type".into()))?;
        self.check_arrays()?;
        let key_len = match key {
            KeyType::Ip | KeyType::Integer => 4,
            KeyType::Ipv6 => 16,
            // HAProxy's default key is 32 bytes: a string's NUL is one of them.
            KeyType::String => self.key_len.unwrap_or(31),
            KeyType::Binary => self.key_len.unwrap_or(32),
        };
        self.store.sort_by_key(|s| s.data);
        Ok(TableSpec {
            key,
            key_len,
            size,
            expire: self.expire,
            nopurge: self.nopurge,
            peers: self.peers,
            store: self.store,
            declared_at: String::new(),
        })
    }
}

/// `size N[k|m|g]`, refused as HAProxy's `parse_size_err` refuses it: at the character it
/// stops at (past 32 bits, the digit or the unit that overflows).
fn size_of(v: &str) -> Result<usize, LineError> {
    let at = |c: Option<char>| {
        line_err(format!(
            "unexpected character '{}' in argument of 'size'",
            c.unwrap_or('?')
        ))
    };
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(at(v.chars().next()));
    }
    let mut n: u32 = 0;
    for (i, b) in v.bytes().take(digits).enumerate() {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(b - b'0')))
            .ok_or_else(|| at(v[i..].chars().next()))?;
    }
    let mut rest = v[digits..].chars();
    let unit = rest.next();
    let shift = match unit {
        None => 0,
        Some('k' | 'K') => 10,
        Some('m' | 'M') => 20,
        Some('g' | 'G') => 30,
        Some(_) => return Err(at(unit)),
    };
    if n > u32::MAX >> shift {
        return Err(at(unit));
    }
    if let Some(c) = rest.next() {
        return Err(at(Some(c)));
    }
    Ok((n << shift) as usize)
}

/// `expire T`: HAProxy's timer, in its words when refused.
fn expire_of(v: &str) -> Result<Duration, LineError> {
    values::timer(v, "stick-table expire").map_err(|_| {
        if values::long_duration(v).is_ok() {
            LineError::Unspaced(format!(
                "stick-table: timer overflow in argument <{v}> to <expire>, maximum value is 2147483647 ms (~24.8 days)."
            ))
        } else {
            let c = unexpected_char(v, &["us", "ms", "s", "m", "h", "d"]);
            line_err(format!("unexpected character '{c}' in argument of 'expire'"))
        }
    })
}

impl TableWords {
    /// HAProxy's arrays (`gpt(N)`, `gpc(N)`, `gpc_rate(N,T)`) replace the numbered counters:
    /// a table may not have both.
    fn check_arrays(&self) -> Result<(), LineError> {
        let names: Vec<&str> = (self.store.iter().map(|s| s.data.name()))
            .chain(self.unimplemented.iter().map(String::as_str))
            .collect();
        let conflicts = [
            ("gpt", &["gpt0"][..], "gpt0"),
            ("gpc", &["gpc0", "gpc1"][..], "gpc[0/1]"),
            ("gpc_rate", &["gpc0_rate", "gpc1_rate"][..], "gpc[0/1]_rate"),
        ];
        for (array, numbered, shown) in conflicts {
            if names.contains(&array) && numbered.iter().any(|n| names.contains(n)) {
                return Err(line_err(format!(
                    "simultaneous usage of '{array}' and '{shown}' in a same table is not permitted as '{array}' overrides '{shown}'"
                )));
            }
        }
        Ok(())
    }
}

/// `srvkey name|addr`: what `server_key` holds. hapx stores the name (HAProxy's default).
fn server_key_kind(v: &str, warnings: &mut Vec<String>) -> Result<(), LineError> {
    match v {
        "name" => Ok(()),
        "addr" => {
            warnings.push(
                "stick-table: 'srvkey addr' is not implemented by hapx and is ignored (server_key holds the server's name)."
                    .into(),
            );
            Ok(())
        }
        other => Err(LineError::Line(format!(
            "stick-table : unknown server key type '{other}'."
        ))),
    }
}

/// The items of a `store` list: split at commas outside parentheses (`gpc_rate(2,10s)`).
fn store_list(v: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0usize;
    v.split(move |c| {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        c == ',' && depth == 0
    })
}

/// HAProxy 2.6 data types hapx does not store: (name, argument it takes). `Some(name)` for
/// one of them written as HAProxy accepts it, so that it is warned about rather than unknown.
fn unimplemented_store_item(item: &str) -> Result<Option<&str>, String> {
    /// What the parenthesis after the name holds.
    enum Arg {
        None,
        Period,
        ArraySize,
        ArraySizeAndPeriod,
    }
    const KNOWN: &[(&str, Arg)] = &[
        ("gpc1", Arg::None),
        ("gpc1_rate", Arg::Period),
        ("server_name", Arg::None),
        ("gpt", Arg::ArraySize),
        ("gpc", Arg::ArraySize),
        ("gpc_rate", Arg::ArraySizeAndPeriod),
    ];
    let (name, arg) = match item.split_once('(') {
        Some((n, rest)) => (n, rest.strip_suffix(')')),
        None => (item, None),
    };
    let Some((_, kind)) = KNOWN.iter().find(|(k, _)| *k == name) else {
        return Ok(None);
    };
    let arg = arg.filter(|a| !a.is_empty());
    let array_size = |n: &str| match n.parse::<u32>() {
        Ok(1..=100) => Ok(()),
        _ => Err(format!(
            "array size is out of allowed range (1-100) for store option '{name}'"
        )),
    };
    let period = |p: &str| {
        values::timer(p, name)
            .map(drop)
            .map_err(|_| format!("error when processing store option '{name}'"))
    };
    match (kind, arg) {
        (Arg::None, None) => {}
        (Arg::None, Some(_)) => {
            return Err(format!("unexpected argument to store option '{name}'"));
        }
        (_, None) => return Err(format!("missing argument to store option '{name}'")),
        (Arg::Period, Some(p)) => period(p)?,
        (Arg::ArraySize, Some(n)) => array_size(n)?,
        (Arg::ArraySizeAndPeriod, Some(a)) => {
            let (n, p) = a
                .split_once(',')
                .ok_or_else(|| format!("missing argument to store option '{name}'"))?;
            array_size(n)?;
            period(p)?;
        }
    }
    Ok(Some(name))
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
        .map_err(|_| format!("error when processing store option '{name}'"))?;
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
    /// The section the rule is written in: a defaults section's rules are checked once,
    /// under its name, however many proxies run them.
    pub section: String,
}

/// The N of a `track-scN` action named `name` (any number: [`parse_track`] refuses those
/// past the last slot as HAProxy); None for other names.
pub fn track_slot(name: &str) -> Option<u32> {
    let n = name.strip_prefix("track-sc")?;
    n.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| n.parse().ok())?
}

/// HAProxy's message for a `track-scN` past its last slot; None for a slot that exists.
pub fn slot_error(slot: u32) -> Option<String> {
    (slot > 2).then(|| format!("{slot} track-sc number exceeding 2 (MAX_SESS_STKCTR-1) value"))
}

/// The arguments of `track-scN` (`args` after the action's name), in proxy `own`.
pub fn parse_track(slot: u32, args: &[String], own: &str) -> Result<Track, AclError> {
    if let Some(e) = slot_error(slot) {
        return Err(AclError::Bad(e));
    }
    let slot = slot as u8;
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
    Ok(Track {
        slot,
        key,
        table,
        section: own.to_string(),
    })
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
    /// `kbytes_in`, `kbytes_out`: a byte count in kilobytes (rounded down).
    Kilo(DataType),
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
        let fetch = StickFetch {
            counter: Counter::Src,
            table: args.first().map(|t| t.to_string()),
            query: Query::TableCnt,
        };
        return Some(Ok(written(fetch, name, 1)));
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
        (Counter::Slot(slot), what, args.get(1).map(|t| (t, 2)))
    } else if let Some(what) = name.strip_prefix("src_") {
        (Counter::Src, what, args.first().map(|t| (t, 1)))
    } else {
        let rest = name.strip_prefix("sc")?;
        let slot = rest.get(..1)?.parse::<u8>().ok().filter(|n| *n < 3)?;
        (
            Counter::Slot(slot),
            rest.get(1..)?.strip_prefix('_')?,
            args.first().map(|t| (t, 1)),
        )
    };
    let query = match what {
        "get_gpc0" => Query::Get(DataType::Gpc0),
        "get_gpt0" => Query::Get(DataType::Gpt0),
        "inc_gpc0" => Query::IncGpc0,
        "clr_gpc0" => Query::ClrGpc0,
        "gpc0_rate" | "conn_cnt" | "conn_cur" | "conn_rate" | "sess_cnt" | "sess_rate"
        | "http_req_cnt" | "http_req_rate" | "http_err_cnt" | "http_err_rate" | "http_fail_cnt"
        | "http_fail_rate" | "bytes_in_rate" | "bytes_out_rate" => {
            Query::Get(DataType::named(what)?)
        }
        "kbytes_in" => Query::Kilo(DataType::BytesInCnt),
        "kbytes_out" => Query::Kilo(DataType::BytesOutCnt),
        _ => return None,
    };
    let fetch = StickFetch {
        counter,
        table: table_arg.map(|(t, _)| t.to_string()),
        query,
    };
    Some(Ok(written(
        fetch,
        name,
        table_arg.map_or(1, |(_, arg)| arg),
    )))
}

/// An argument of a fetch or converter that HAProxy's `smp_resolve_args` resolves once the
/// proxies are read ([`check_fetch_tables`]): a table a fetch names, or a converter's regex
/// (compiled where it is written, its error reported there, as HAProxy does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgRef {
    pub place: Place,
    pub target: ArgTarget,
    /// Which argument names it (from 1).
    pub arg: usize,
    /// The fetch (for a converter's argument: the fetch it converts).
    pub keyword: String,
    /// Where HAProxy says the fetch is used: None in an ACL (`ACL keyword 'K'`), else the
    /// expression of a rule or a format (`sample fetch keyword 'K' in http-request
    /// expression`).
    pub within: Option<&'static str>,
    /// The section it is written in (a defaults section's are resolved once, in it).
    pub section: String,
    /// Whether that section is a defaults section (which has no table of its own).
    pub in_defaults: bool,
}

/// What an [`ArgRef`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgTarget {
    /// A table, which must exist.
    Table(String),
    /// No table named: the proxy's own, as HAProxy fixes it where the fetch is written
    /// (a defaults section has none to give).
    OwnTable(String),
    /// A regex argument of converter `converter` that does not compile, why as PCRE2 says.
    BadRegex {
        converter: String,
        pattern: String,
        why: String,
    },
}

impl ArgRef {
    /// HAProxy's message when this argument does not resolve (`config`'s proxies), None when
    /// it does.
    fn unresolved(&self, config: &super::model::Config) -> Option<String> {
        let proxy = &self.section;
        let fetch = match self.within {
            None => format!("ACL keyword '{}'", self.keyword),
            Some(w) => format!("sample fetch keyword '{}' in {w}", self.keyword),
        };
        let (place, arg) = (&self.place, self.arg);
        match &self.target {
            ArgTarget::OwnTable(_) if self.in_defaults => Some(format!(
                "parsing [{place}]: table name must be set in arg {arg} of {fetch} in proxy '{proxy}'."
            )),
            ArgTarget::Table(t) | ArgTarget::OwnTable(t) if has_table(config, t) => None,
            ArgTarget::Table(t) | ArgTarget::OwnTable(t) => Some(format!(
                "parsing [{place}]: unable to find table '{t}' referenced in arg {arg} of {fetch} in proxy '{proxy}'."
            )),
            ArgTarget::BadRegex {
                converter, pattern, ..
            } if pattern.is_empty() => Some(format!(
                "parsing [{place}]: missing regex in arg {arg} of conversion keyword '{converter}' for {fetch} in proxy '{proxy}'."
            )),
            ArgTarget::BadRegex {
                converter,
                pattern,
                why,
            } => Some(format!(
                "parsing [{place}]: error in regex '{pattern}' in arg {arg} of conversion keyword '{converter}' for {fetch} in proxy '{proxy}' : {why}."
            )),
        }
    }
}

/// Where the fetches being parsed are written: the proxy whose table a `src_*` or
/// `table_cnt` fetch without one reads (HAProxy fixes it at parse time, not where the rule
/// runs), the fetch whose converters are being read, and the arguments they left to
/// resolve.
#[derive(Debug)]
struct Site {
    proxy: String,
    place: Place,
    within: Option<&'static str>,
    fetch: Option<String>,
    refs: Vec<ArgRef>,
}

thread_local! {
    /// The site of the line being parsed ([`written_at`]); none outside of one.
    static SITE: std::cell::RefCell<Option<Site>> = const { std::cell::RefCell::new(None) };
}

/// Where the line being parsed was written (none outside of [`written_at`]).
pub fn current_place() -> Option<Place> {
    SITE.with_borrow(|site| site.as_ref().map(|s| s.place.clone()))
}

/// Runs `f`, which parses fetches written at `place` in proxy `proxy`, used `within` a
/// rule's expression (as HAProxy names it; None: in an ACL); the arguments its fetches left
/// to resolve.
pub fn written_at<R>(
    proxy: &str,
    place: &Place,
    within: Option<&'static str>,
    f: impl FnOnce() -> R,
) -> (R, Vec<ArgRef>) {
    let site = Site {
        proxy: proxy.to_string(),
        place: place.clone(),
        within,
        fetch: None,
        refs: Vec::new(),
    };
    let outer = SITE.replace(Some(site));
    let r = f();
    let site = SITE.replace(outer);
    (r, site.map(|s| s.refs).unwrap_or_default())
}

/// Runs `f`, which parses ACL expressions: their fetches are an ACL's.
pub fn in_acl<R>(f: impl FnOnce() -> R) -> R {
    let within = SITE.with_borrow_mut(|s| s.as_mut().map(|s| s.within.take()));
    let r = f();
    SITE.with_borrow_mut(|s| {
        if let (Some(s), Some(within)) = (s.as_mut(), within) {
            s.within = within;
        }
    });
    r
}

/// Runs `f`, which parses the converters of fetch `fetch`.
pub fn converting<R>(fetch: &str, f: impl FnOnce() -> R) -> R {
    let outer = SITE.with_borrow_mut(|s| s.as_mut().map(|s| s.fetch.replace(fetch.to_string())));
    let r = f();
    SITE.with_borrow_mut(|s| {
        if let (Some(s), Some(outer)) = (s.as_mut(), outer) {
            s.fetch = outer;
        }
    });
    r
}

/// Notes that the regex `pattern` in argument `arg` of converter `converter` does not
/// compile (`why`), for [`check_fetch_tables`] to report as HAProxy does after reading the
/// configuration. False outside of a site (a health check's format): the caller refuses
/// it at once.
pub fn defer_bad_regex(converter: &str, arg: usize, pattern: &str, why: String) -> bool {
    SITE.with_borrow_mut(|site| {
        let Some(site) = site.as_mut() else {
            return false;
        };
        site.refs.push(ArgRef {
            place: site.place.clone(),
            target: ArgTarget::BadRegex {
                converter: converter.to_string(),
                pattern: pattern.to_string(),
                why,
            },
            arg,
            keyword: site.fetch.clone().unwrap_or_default(),
            within: site.within,
            section: site.proxy.clone(),
            in_defaults: false,
        });
        true
    })
}

/// `fetch` (named `name`, its table in argument `arg`) as written at the current site: a
/// `src_*` or `table_cnt` fetch without a table reads its proxy's, and the table it names
/// is noted for the checks.
fn written(mut fetch: StickFetch, name: &str, arg: usize) -> StickFetch {
    SITE.with_borrow_mut(|site| {
        let Some(site) = site.as_mut() else { return };
        let target = match &fetch.table {
            Some(table) => ArgTarget::Table(table.clone()),
            None if fetch.counter == Counter::Src => {
                fetch.table = Some(site.proxy.clone());
                ArgTarget::OwnTable(site.proxy.clone())
            }
            None => return,
        };
        site.refs.push(ArgRef {
            place: site.place.clone(),
            target,
            arg,
            keyword: name.to_string(),
            within: site.within,
            section: site.proxy.clone(),
            in_defaults: false,
        });
    });
    fetch
}

/// Whether the stick table of proxy `name` takes the keys `key` gives (true without one:
/// its absence is reported on its own).
fn table_takes(config: &super::model::Config, name: &str, key: &Fetch) -> bool {
    let proxies = (config.proxies.iter())
        .filter(|p| p.name == name)
        .filter_map(|p| p.stick_table.as_ref());
    let sections = (config.peers.iter().flat_map(|s| &s.tables))
        .filter(|t| t.name == name)
        .map(|t| &t.spec);
    proxies
        .chain(sections)
        .next()
        .is_none_or(|s| s.key.takes(key))
}

/// The stick tables named `name`: a proxy's, a peers section's (`SECTION/NAME`).
fn tables_named<'a>(
    config: &'a mut super::model::Config,
    name: &'a str,
) -> impl Iterator<Item = &'a mut TableSpec> {
    let proxies = (config.proxies.iter_mut())
        .filter(move |p| p.name == name)
        .filter_map(|p| p.stick_table.as_mut());
    let sections = (config.peers.iter_mut().flat_map(|s| &mut s.tables))
        .filter(move |t| t.name == name)
        .map(|t| &mut t.spec);
    proxies.chain(sections)
}

/// Whether a proxy or a peers section has the stick table `name`.
fn has_table(config: &super::model::Config, name: &str) -> bool {
    (config.proxies.iter()).any(|p| p.name == name && p.stick_table.is_some())
        || super::peers::has_table(config, name)
}

/// An argument of a fetch naming what does not exist, HAProxy's `message` for it.
#[derive(Debug)]
pub struct Unresolved {
    pub place: Place,
    pub within: Option<&'static str>,
    pub message: String,
}

/// The arguments fetches and converters left to resolve ([`ArgRef`]) resolve, as HAProxy's
/// `smp_resolve_args` checks them after the proxies: per proxy one alert, or one listing them all when there are several.
pub fn check_fetch_tables(config: &super::model::Config, diags: &mut super::diag::Diags) {
    // The rules a proxy inherits are resolved once, in their defaults section, before the
    // first proxy that runs them.
    let mut inherited: Vec<(usize, &str)> = Vec::new();
    for (i, p) in config.proxies.iter().enumerate() {
        let tables = (p.rules.table_refs.iter())
            .filter(|r| r.section != p.name)
            .map(|r| r.section.as_str());
        for section in tables.chain(super::rules::inherited_ref_sections(p)) {
            if !inherited.iter().any(|(_, s)| *s == section) {
                inherited.push((i, section));
            }
        }
    }
    // The health-check rules of defaults sections without such rules first, once each, as
    // HAProxy resolves them; the others' with the section's rules.
    let mut held = Vec::new();
    for (section, checks) in super::rules::unresolved_defaults_refs(config) {
        if inherited.iter().any(|(_, s)| *s == section) {
            held.push((section, checks));
        } else {
            report_unresolved(&unresolved_args(config, &[], &section, checks), diags);
        }
    }
    for (i, p) in config.proxies.iter().enumerate() {
        let first_users = (inherited.iter()).filter(|(user, _)| *user == i);
        for (_, section) in first_users {
            let checks = match held.iter().position(|(s, _)| s == section) {
                Some(h) => held.swap_remove(h).1,
                None => Vec::new(),
            };
            let mut others = super::rules::unresolved_section_refs(p, section, config);
            others.extend(checks);
            let missing = unresolved_args(config, &p.rules.table_refs, section, others);
            report_unresolved(&missing, diags);
        }
        let others = super::rules::unresolved_refs(p, config);
        report_unresolved(
            &unresolved_args(config, &p.rules.table_refs, &p.name, others),
            diags,
        );
    }
}

/// HAProxy's messages for the arguments `refs` written in `section` (a proxy's own or its
/// defaults section's) that do not resolve, with `others` (its backend and server
/// references), in HAProxy's order.
fn unresolved_args(
    config: &super::model::Config,
    refs: &[ArgRef],
    section: &str,
    others: Vec<Unresolved>,
) -> Vec<String> {
    let mut missing: Vec<Unresolved> = (refs.iter())
        .filter(|r| r.section == section)
        .filter_map(|r| {
            Some(Unresolved {
                place: r.place.clone(),
                within: r.within,
                message: r.unresolved(config)?,
            })
        })
        .collect();
    missing.extend(others);
    // In HAProxy's order: as the lines came, then the log formats (parsed after),
    // then the unique-id format.
    missing.sort_by_key(|u| {
        let late = match u.within {
            Some("log-format string") => 1,
            Some("unique-id-format string") => 2,
            _ => 0,
        };
        (late, u.place.line)
    });
    missing.into_iter().map(|u| u.message).collect()
}

/// One proxy's argument resolution errors, as HAProxy groups them.
fn report_unresolved(missing: &[String], diags: &mut super::diag::Diags) {
    match missing {
        [] => {}
        [one] => diags.global_alert(one.clone()),
        all => diags.global_alert(format!(
            "multiple argument resolution errors:{}",
            all.iter()
                .map(|m| format!("\n        {m}"))
                .collect::<String>()
        )),
    }
}

/// HAProxy's checks that each `track-scN` and `stick` rule names a table that exists (a
/// proxy's, or a peers section's `SECTION/NAME`); the tables of `stick` rules store
/// `server_id` and `server_key`, as in HAProxy.
pub fn check(config: &mut super::model::Config, diags: &mut super::diag::Diags) {
    let mut sticky = Vec::new();
    for p in &config.proxies {
        // HAProxy checks the request's rules, then the response's (`storersp_rules`).
        let (response, request): (Vec<_>, Vec<_>) =
            p.rules.stick.iter().partition(|r| r.stores_response());
        for r in request.into_iter().chain(response) {
            if !has_table(config, &r.table) {
                diags.global_alert(format!(
                    "Proxy '{}': unable to find {} '{}'.",
                    p.name,
                    if r.stores_response() {
                        "store table"
                    } else {
                        "stick-table"
                    },
                    r.table
                ));
                continue;
            }
            if !table_takes(config, &r.table, &r.key) {
                diags.global_alert(format!(
                    "Proxy '{}': type of fetch not usable with type of stick-table '{}'.",
                    p.name, r.table
                ));
            }
            sticky.push(r.table.clone());
        }
    }
    for name in sticky {
        for spec in tables_named(config, &name) {
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
        let Some(peers) = p.stick_table.as_ref().and_then(|s| s.peers.as_ref()) else {
            continue;
        };
        if !config.peers.iter().any(|s| &s.name == peers) {
            diags.global_alert(format!(
                "Proxy '{}': unable to find sync peers '{peers}'.",
                p.name
            ));
        }
    }
    super::peers::check(config, diags);
}

/// Each `track-scN` names a table that exists. Those a proxy inherits are checked once,
/// under their defaults section's name, before the first proxy that runs them.
fn check_tracks(config: &super::model::Config, diags: &mut super::diag::Diags) {
    let mut checked_defaults: Vec<&str> = Vec::new();
    for p in &config.proxies {
        let r = &p.rules;
        let tcp = (r.tcp_connection.iter().chain(&r.tcp_content)).filter_map(|t| t.action.track());
        let http = (r.http_request.iter().chain(&r.http_response)).filter_map(|h| h.action.track());
        let tracks: Vec<&Track> = tcp.chain(http).collect();
        let mut sections: Vec<&str> = (tracks.iter())
            .map(|t| t.section.as_str())
            .filter(|s| *s != p.name && !checked_defaults.contains(s))
            .collect();
        sections.dedup();
        checked_defaults.extend(&sections);
        sections.push(&p.name);
        for section in sections {
            let missing = (tracks.iter()).filter(|t| t.section == section);
            for t in missing {
                if !has_table(config, &t.table) {
                    diags.global_alert(format!(
                        "Proxy '{section}': unable to find table '{}' referenced by track-sc{}.",
                        t.table, t.slot
                    ));
                } else if !table_takes(config, &t.table, &t.key) {
                    diags.global_alert(format!(
                        "Proxy '{section}': stick-table '{}' uses a type incompatible with the 'track-sc{}' rule.",
                        t.table, t.slot
                    ));
                }
            }
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
        assert_eq!(
            e("type binary len 0 size 1"),
            "stick-table: unknown type '0'."
        );
    }

    #[test]
    fn sized_keys_are_haproxys() {
        let len = |s: &str| parse_table(&words(s), &mut Vec::new()).unwrap().key_len;
        // HAProxy's default 32-byte key: a string's NUL is one of them.
        assert_eq!(len("type string size 1"), 31);
        assert_eq!(len("type string len 32 size 1"), 32);
        assert_eq!(len("type binary size 1"), 32);
        assert_eq!(len("type binary len 4 size 1"), 4);
    }
}
