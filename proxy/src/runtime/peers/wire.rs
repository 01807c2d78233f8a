//! The peers protocol's encoding (HAProxy's `src/peers.c`, protocol 2.1): variable-length
//! integers, message headers, keys and the stored data of an entry.
//!
//! A message is two bytes (class, type); a stick-table message (type with bit 7 set) then
//! has its payload's length as a varint, and the payload.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::config::stick::{DataType, KeyType};
use crate::runtime::stick::{FreqCtr, Key, Value};

pub const CLASS_CONTROL: u8 = 0;
pub const CLASS_ERROR: u8 = 1;
pub const CLASS_STICKTABLE: u8 = 10;
pub const CLASS_RESERVED: u8 = 255;

pub const CTRL_RESYNC_REQUEST: u8 = 0;
pub const CTRL_RESYNC_FINISHED: u8 = 1;
pub const CTRL_RESYNC_PARTIAL: u8 = 2;
pub const CTRL_RESYNC_CONFIRM: u8 = 3;
pub const CTRL_HEARTBEAT: u8 = 4;

pub const ERR_PROTOCOL: u8 = 0;
pub const ERR_SIZE_LIMIT: u8 = 1;

pub const STKT_UPDATE: u8 = 0x80;
pub const STKT_INCUPDATE: u8 = 0x81;
pub const STKT_DEFINE: u8 = 0x82;
pub const STKT_SWITCH: u8 = 0x83;
pub const STKT_ACK: u8 = 0x84;
pub const STKT_UPDATE_TIMED: u8 = 0x85;
pub const STKT_INCUPDATE_TIMED: u8 = 0x86;

/// HAProxy's `intencode`: below 240 one byte; else the low 4 bits with 0xF0, then 7 bits a
/// byte with the high bit set on all but the last.
pub fn put_varint(out: &mut Vec<u8>, mut i: u64) {
    if i < 240 {
        out.push(i as u8);
        return;
    }
    out.push((i as u8) | 240);
    i = (i - 240) >> 4;
    while i >= 128 {
        out.push((i as u8) | 128);
        i = (i - 128) >> 7;
    }
    out.push(i as u8);
}

/// A reader over a message's payload; every read fails on a truncated message.
pub struct Cursor<'a> {
    pub buf: &'a [u8],
}

/// A message that does not parse: the session ends with a protocol error.
#[derive(Debug)]
pub struct Malformed;

impl Cursor<'_> {
    /// HAProxy's `intdecode`.
    pub fn varint(&mut self) -> Result<u64, Malformed> {
        let (&first, mut rest) = self.buf.split_first().ok_or(Malformed)?;
        let mut i = u64::from(first);
        if i >= 240 {
            let mut shift = 4u32;
            loop {
                let (&b, r) = rest.split_first().ok_or(Malformed)?;
                rest = r;
                if shift > 63 {
                    return Err(Malformed);
                }
                i = i.wrapping_add(u64::from(b) << shift);
                shift += 7;
                if b < 128 {
                    break;
                }
            }
        }
        self.buf = rest;
        Ok(i)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// A stick-table message: header, length, payload.
pub fn table_message(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![CLASS_STICKTABLE, kind];
    put_varint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// The key type's number on the wire (HAProxy's `peer_net_key_type`).
pub fn key_type_id(kind: KeyType) -> u64 {
    match kind {
        KeyType::Integer => 2,
        KeyType::Ip => 4,
        KeyType::Ipv6 => 5,
        KeyType::String => 6,
        KeyType::Binary => 7,
    }
}

/// The key's size HAProxy announces: a string's includes its NUL.
pub fn key_size(kind: KeyType, len: usize) -> u64 {
    match kind {
        KeyType::Integer | KeyType::Ip => 4,
        KeyType::Ipv6 => 16,
        KeyType::String => len as u64 + 1,
        KeyType::Binary => len as u64,
    }
}

pub fn put_key(out: &mut Vec<u8>, key: &Key) {
    match key {
        Key::Ip(ip) => out.extend_from_slice(&ip.octets()),
        Key::Ipv6(ip) => out.extend_from_slice(&ip.octets()),
        Key::Integer(n) => out.extend_from_slice(&n.to_be_bytes()),
        Key::String(s) => {
            let bytes = crate::bytestr::to_bytes(s);
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
        // The table's `len` bytes, as they are.
        Key::Binary(b) => out.extend_from_slice(b),
    }
}

pub fn get_key(c: &mut Cursor<'_>, kind: KeyType, len: usize) -> Result<Key, Malformed> {
    Ok(match kind {
        KeyType::Ip => {
            let b = c.bytes(4)?;
            Key::Ip(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        KeyType::Ipv6 => {
            let b: [u8; 16] = c.bytes(16)?.try_into().map_err(|_| Malformed)?;
            Key::Ipv6(Ipv6Addr::from(b))
        }
        KeyType::Integer => Key::Integer(c.u32()?),
        KeyType::String => {
            let n = c.varint()? as usize;
            let bytes = c.bytes(n)?;
            // As HAProxy: at most the table's length is kept, up to a NUL.
            let kept = &bytes[..n.min(len)];
            let kept = kept.split(|&b| b == 0).next().unwrap_or_default();
            Key::String(crate::bytestr::from_bytes(kept).into_owned())
        }
        KeyType::Binary => Key::Binary(c.bytes(len)?.to_vec()),
    })
}

/// How HAProxy stores a data type (its `std_type`), by wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdType {
    Sint,
    Uint,
    Ull,
    Frqp,
    Dict,
}

/// HAProxy 2.6's data types by number: how each is encoded and whether it is an array.
pub fn std_type(id: u32) -> Option<(StdType, bool)> {
    use StdType::*;
    Some(match id {
        0 => (Sint, false),
        1 | 2 | 4 | 6 | 7 | 9 | 11 | 17 | 20 => (Uint, false),
        3 | 5 | 8 | 10 | 12 | 14 | 16 | 18 | 21 => (Frqp, false),
        13 | 15 => (Ull, false),
        19 => (Dict, false),
        22 | 23 => (Uint, true),
        24 => (Frqp, true),
        _ => return None,
    })
}

/// A data type's wire number: HAProxy's, where `gpc1` and `gpc1_rate` (17, 18), which
/// hapx does not store, come before `server_key` and the `http_fail` pair.
pub fn data_id(data: DataType) -> u32 {
    match data {
        DataType::ServerKey => 19,
        DataType::HttpFailCnt => 20,
        DataType::HttpFailRate => 21,
        other => other as u32,
    }
}

pub fn data_of_id(id: u32) -> Option<DataType> {
    DataType::ALL.iter().copied().find(|&d| data_id(d) == id)
}

/// One value of an update; rates relative to `now`. A name goes through the session's
/// dictionary cache (`dict_ids`), always sent with its value.
pub fn put_value(out: &mut Vec<u8>, data: DataType, value: &Value, now: u32, dict_id: &mut u64) {
    match value {
        Value::Count(n) if data == DataType::ServerId => {
            // A signed 32-bit number, sign-extended as HAProxy's `intencode(int)`.
            put_varint(out, i64::from(*n as u32 as i32) as u64)
        }
        Value::Count(n) => put_varint(out, *n),
        Value::Rate(f) => {
            put_varint(out, u64::from(now.wrapping_sub(f.curr_tick)));
            put_varint(out, u64::from(f.curr_ctr));
            put_varint(out, u64::from(f.prev_ctr));
        }
        Value::Name(name) if name.is_empty() => put_varint(out, 0),
        Value::Name(name) => {
            // HAProxy's receivers keep 128 names; each id is sent with its value, so any
            // rotation of ids is understood.
            *dict_id = *dict_id % 128 + 1;
            let bytes = crate::bytestr::to_bytes(name);
            let mut entry = Vec::new();
            put_varint(&mut entry, *dict_id);
            put_varint(&mut entry, bytes.len() as u64);
            entry.extend_from_slice(&bytes);
            put_varint(out, entry.len() as u64);
            out.extend_from_slice(&entry);
        }
    }
}

/// Reads one value of wire type `id` (with `nbelem` elements for an array); Some for the
/// types hapx stores.
pub fn get_value(
    c: &mut Cursor<'_>,
    id: u32,
    nbelem: u64,
    now: u32,
    dict: &mut [Option<String>; 128],
) -> Result<Option<(DataType, Value)>, Malformed> {
    let (kind, array) = std_type(id).ok_or(Malformed)?;
    if array {
        for _ in 0..nbelem {
            skip_one(c, kind)?;
        }
        return Ok(None);
    }
    let value = match kind {
        StdType::Sint => Value::Count(u64::from(c.varint()? as u32)),
        StdType::Uint => Value::Count(u64::from(c.varint()? as u32)),
        StdType::Ull => Value::Count(c.varint()?),
        StdType::Frqp => {
            let ago = c.varint()? as u32;
            let curr_ctr = c.varint()? as u32;
            let prev_ctr = c.varint()? as u32;
            Value::Rate(FreqCtr {
                curr_tick: now.wrapping_sub(ago) & !1,
                curr_ctr,
                prev_ctr,
            })
        }
        StdType::Dict => match get_name(c, dict)? {
            Some(name) => Value::Name(name),
            None => return Ok(None),
        },
    };
    Ok(data_of_id(id).map(|d| (d, value)))
}

fn skip_one(c: &mut Cursor<'_>, kind: StdType) -> Result<(), Malformed> {
    let n = if kind == StdType::Frqp { 3 } else { 1 };
    for _ in 0..n {
        c.varint()?;
    }
    Ok(())
}

/// A dictionary entry: its length, its id, and its value unless the id is known.
fn get_name(
    c: &mut Cursor<'_>,
    dict: &mut [Option<String>; 128],
) -> Result<Option<String>, Malformed> {
    let len = c.varint()? as usize;
    if len == 0 {
        return Ok(None);
    }
    let mut inner = Cursor { buf: c.bytes(len)? };
    let id = inner.varint()? as usize;
    if id == 0 || id > dict.len() {
        return Err(Malformed);
    }
    if inner.is_empty() {
        return Ok(dict[id - 1].clone());
    }
    let n = inner.varint()? as usize;
    let bytes = inner.bytes(n)?;
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let name = crate::bytestr::from_bytes(bytes).into_owned();
    dict[id - 1] = Some(name.clone());
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_as_haproxy_encodes_them() {
        for n in [
            0u64,
            1,
            239,
            240,
            241,
            255,
            256,
            2287,
            2288,
            1 << 20,
            u32::MAX as u64,
            u64::MAX >> 1,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut c = Cursor { buf: &out };
            assert_eq!(c.varint().unwrap(), n, "{n}");
            assert!(c.is_empty());
        }
        // 240 is 0xF0 0x00 in HAProxy's encoding.
        let mut out = Vec::new();
        put_varint(&mut out, 240);
        assert_eq!(out, [0xF0, 0x00]);
    }

    #[test]
    fn each_data_type_has_haproxys_number_and_encoding() {
        let mut ids: Vec<u32> = DataType::ALL.iter().map(|&d| data_id(d)).collect();
        ids.dedup();
        assert_eq!(ids.len(), DataType::ALL.len(), "{ids:?}");
        assert_eq!(data_id(DataType::HttpFailCnt), 20);
        assert_eq!(data_id(DataType::HttpFailRate), 21);
        for data in DataType::ALL {
            let (kind, array) = std_type(data_id(data)).expect("a known number");
            let expected = match data {
                DataType::ServerId => StdType::Sint,
                DataType::ServerKey => StdType::Dict,
                DataType::BytesInCnt | DataType::BytesOutCnt => StdType::Ull,
                d if d.is_rate() => StdType::Frqp,
                _ => StdType::Uint,
            };
            assert_eq!((kind, array), (expected, false), "{}", data.name());
            assert_eq!(data_of_id(data_id(data)), Some(data));
        }
    }

    #[test]
    fn truncated_varint_is_malformed() {
        let mut c = Cursor { buf: &[0xF5, 0x80] };
        assert!(c.varint().is_err());
    }
}
