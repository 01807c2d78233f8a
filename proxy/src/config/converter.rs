//! Converters: the `,name(args)` chain after a sample fetch (`%[src,ipmask(24)]`,
//! `req.hdr(host),field(1,:),lower`), parsed once at load with HAProxy 2.6's argument rules
//! and messages.
//!
//! - [`Converter`]: one converter and its checked arguments.
//! - [`SampleType`]: what a sample is between converters (boolean, integer, address, string,
//!   binary) and which casts HAProxy has between them: a converter that cannot take what the
//!   previous step gives is refused at load ("converter 'add' cannot be applied").
//! - [`parse_chain`]: `,conv(args),conv...` into converters.
//!
//! Arguments (a fetch's too: [`read_args`]) follow HAProxy 2.6's `make_arg_list`
//! ([`read_arg`]): split at `,`, ended by a
//! `)`, either of them kept within `'...'` or `"..."` quotes (`regsub('(a)',x)`). A converter
//! HAProxy has but hapx does not (or one whose argument is a variable) is
//! [`AclError::Unsupported`]: refused, never half-applied. Evaluation is in
//! [`crate::runtime::convert`].

use super::pcre::{Flags, Regex};

use super::acl::AclError;
use super::keywords;

/// What a sample is, for HAProxy's casts between fetches and converters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    Bool,
    Int,
    /// An IPv4 or IPv6 address (HAProxy's `ipv4`/`ipv6`/`addr`).
    Ip,
    Str,
    Bin,
}

impl SampleType {
    /// Whether HAProxy 2.6 casts `self` into `to` (its `sample_casts` table, where address
    /// fetches are declared IPv4: `src,add(1)` loads, and fails at run time on IPv6).
    pub fn casts_to(self, to: SampleType) -> bool {
        use SampleType::*;
        matches!(
            (self, to),
            (Str, _)
                | (Bool, Bool | Int | Str | Bin)
                | (Int, Bool | Int | Ip | Str | Bin)
                | (Ip, Int | Ip | Str | Bin)
                | (Bin, Str | Bin)
        )
    }
}

/// How `json` reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonInput {
    /// Bytes, each above 0x7e escaped as `\u00XX`.
    Ascii,
    /// UTF-8: an invalid sequence fails the conversion (`utf8`, `utf8p`).
    Utf8,
    /// UTF-8, invalid sequences skipped (`utf8s`, `utf8ps`).
    Utf8Skip,
}

/// An integer operation with a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
}

/// A hash of the sample's bytes, as an unsigned 32-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Crc32,
    Djb2,
    Sdbm,
    Wt6,
}

/// `field`/`word` arguments: the 1-based index (negative from the end), the delimiter
/// bytes, and how many fields to take (0: all up to the end, or the start if negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub index: i64,
    pub delims: Vec<u8>,
    pub count: i64,
}

/// `regsub(regex,subst[,flags])`: `\N` in `subst` is group N.
#[derive(Debug, Clone)]
pub struct RegSub {
    pub regex: Regex,
    pub subst: String,
    /// Flag `g`: every match, not only the first.
    pub global: bool,
}

impl PartialEq for RegSub {
    fn eq(&self, o: &Self) -> bool {
        self.regex == o.regex && self.subst == o.subst && self.global == o.global
    }
}

impl Eq for RegSub {}

/// A converter with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    Lower,
    Upper,
    /// `ipmask(mask4[,mask6])`: IPv6 addresses pass only with a `mask6`.
    IpMask {
        v4: u32,
        v6: Option<u128>,
    },
    Hex,
    Base64,
    /// `ub64enc`: base64url, without padding.
    Ub64Enc,
    B64Dec,
    Length,
    Bytes {
        offset: i64,
        length: Option<i64>,
    },
    Field(Split),
    Word(Split),
    RegSub(RegSub),
    /// `url_dec([in_form])`: `+` is a space in a form, or after a `?` otherwise.
    UrlDec {
        in_form: bool,
    },
    Json(JsonInput),
    Arith(Arith, i64),
    Neg,
    Cpl,
    Not,
    Bool,
    Even,
    Odd,
    Hash {
        hash: Hash,
        avalanche: bool,
    },
    Xxh32(u32),
    Xxh64(u64),
    Ltrim(Vec<u8>),
    Rtrim(Vec<u8>),
    /// `concat(start,,end)` with literals only: the text appended.
    Concat(String),
    /// `url_enc([query])`: everything but `A-Za-z0-9-._~` as `%HH`.
    UrlEnc,
    /// A Host value without its port.
    HostOnly,
    /// The port of a Host value (0 without one).
    PortOnly,
    /// `map*(file[,default])`: see [`crate::runtime::map`].
    Map(crate::runtime::map::MapConv),
}

impl Converter {
    /// What the converter takes (anything else is cast to it) and gives.
    pub fn types(&self) -> (SampleType, SampleType) {
        use Converter::*;
        use SampleType as T;
        match self {
            Lower
            | Upper
            | Field(_)
            | Word(_)
            | RegSub(_)
            | UrlDec { .. }
            | Json(_)
            | Ltrim(_)
            | Rtrim(_)
            | Concat(_)
            | UrlEnc
            | HostOnly => (T::Str, T::Str),
            PortOnly => (T::Str, T::Int),
            IpMask { .. } => (T::Ip, T::Ip),
            Hex | Base64 | Ub64Enc => (T::Bin, T::Str),
            B64Dec => (T::Str, T::Bin),
            Length => (T::Str, T::Int),
            Bytes { .. } => (T::Bin, T::Bin),
            Arith(..) | Neg | Cpl => (T::Int, T::Int),
            Not | Bool | Even | Odd => (T::Int, T::Bool),
            Hash { .. } | Xxh32(_) | Xxh64(_) => (T::Bin, T::Int),
            Map(m) => m.types(),
        }
    }
}

/// The arguments of one converter as read, for checks and messages.
struct Args<'a> {
    conv: &'a str,
    /// None without parentheses; each argument unquoted and unescaped.
    list: Option<Vec<String>>,
    /// The text from each argument to the end, for "expected ')'" messages.
    from: Vec<&'a str>,
    /// Whether the text ended before the `)` closing them.
    unclosed: bool,
}

impl<'a> Args<'a> {
    fn len(&self) -> usize {
        self.list.as_ref().map_or(0, Vec::len)
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.list
            .as_ref()
            .and_then(|l| l.get(i).map(String::as_str))
    }

    fn invalid(&self, pos: usize, why: String) -> AclError {
        AclError::Bad(format!(
            "invalid arg {pos} in converter '{}' : {why}",
            self.conv
        ))
    }

    fn invalid_args(&self, why: &str) -> AclError {
        AclError::Bad(format!("invalid args in converter '{}' : {why}", self.conv))
    }

    /// Checks the count: `min` required of `max`, the first missing one of type `ty`.
    fn count(&self, min: usize, max: usize, missing_ty: &str) -> Result<(), AclError> {
        let n = self.len();
        if n > max {
            let why = format!("expected ')' before '{}'", self.from[max]);
            return Err(self.invalid(missing_paren_arg(max), why));
        }
        if n < min {
            let why = if n == 0 {
                format!("expected type '{missing_ty}' at position 1, but got nothing")
            } else {
                format!("missing arguments (got {n}/{min}), type '{missing_ty}' expected")
            };
            return Err(self.invalid(n + 1, why));
        }
        Ok(())
    }

    /// Argument `i` (0-based) as an integer, if given.
    fn int(&self, i: usize) -> Result<Option<i64>, AclError> {
        // HAProxy's `read_int64`, saturating, over the whole argument.
        self.typed(i, "integer", |t| {
            (!t.is_empty())
                .then(|| crate::runtime::convert::read_whole_int64(t))
                .flatten()
        })
    }

    fn typed<T>(
        &self,
        i: usize,
        ty: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, AclError> {
        match self.get(i) {
            None => Ok(None),
            Some(text) => parse(text).map(Some).ok_or_else(|| {
                let pos = i + 1;
                self.invalid(
                    pos,
                    format!("failed to parse '{text}' as type '{ty}' at position {pos}"),
                )
            }),
        }
    }
}

/// Splits `name(a,b),rest` into the name, its arguments and what follows the next comma.
fn split_one(text: &str) -> (Args<'_>, &str) {
    let name_end = text.find(['(', ',']).unwrap_or(text.len());
    let conv = &text[..name_end];
    let Some(inner) = text[name_end..].strip_prefix('(') else {
        let rest = text[name_end..].strip_prefix(',').unwrap_or("");
        let args = Args {
            conv,
            list: None,
            from: Vec::new(),
            unclosed: false,
        };
        return (args, rest);
    };
    let (list, from, close) = read_args(inner);
    let rest = close.map_or("", |close| &inner[close + 1..]);
    let rest = rest.strip_prefix(',').unwrap_or(rest);
    let args = Args {
        conv,
        list: Some(list),
        from,
        unclosed: close.is_none(),
    };
    (args, rest)
}

/// The arguments of a fetch or converter as HAProxy 2.6's `make_arg_list` reads them from
/// `inner`, the text after their `(`: each one ([`read_arg`]), the text from each (from the
/// comma before it, as HAProxy shows an extra one), and where their `)` is (None: missing).
pub(super) fn read_args(inner: &str) -> (Vec<String>, Vec<&str>, Option<usize>) {
    let mut list = Vec::new();
    let mut from = Vec::new();
    let mut at = 0;
    let close = loop {
        let (arg, end) = read_arg(&inner[at..]);
        let end = at + end;
        let next = inner[end..].chars().next();
        if next == Some(')') && list.is_empty() && end == 0 {
            break Some(end);
        }
        list.push(arg);
        from.push(&inner[at.saturating_sub(1)..]);
        match next {
            Some(')') => break Some(end),
            Some(_) => at = end + 1,
            None => break None,
        }
    };
    (list, from, close)
}

/// One argument as HAProxy 2.6's `make_arg_list` reads it from `text`: up to a `,` or `)`
/// outside quotes, `'...'` and `"..."` quoting (the quotes removed), and outside single
/// quotes `\\`, `\ `, `\"`, `\'` giving the character, `\r`, `\n`, `\t` a control
/// character, any other `\` kept. The argument and where it ends in `text` (at the `,` or
/// `)`, or the end of `text` when neither comes).
fn read_arg(text: &str) -> (String, usize) {
    let (mut squote, mut dquote) = (false, false);
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' if !squote => dquote = !dquote,
            '\'' if !dquote => squote = !squote,
            '\\' if !squote => match chars.peek().map(|&(_, next)| next) {
                Some(next @ ('\\' | ' ' | '"' | '\'')) => {
                    out.push(next);
                    chars.next();
                }
                Some(next @ ('r' | 'n' | 't')) => {
                    out.push(match next {
                        'r' => '\r',
                        'n' => '\n',
                        _ => '\t',
                    });
                    chars.next();
                }
                _ => out.push('\\'),
            },
            ',' | ')' if !squote && !dquote => return (out, i),
            c => out.push(c),
        }
    }
    (out, text.len())
}

/// Parses `conv(args),conv...` (the text after the fetch's comma), each converter checked
/// against the type the previous step gives (`input`, the fetch's).
pub fn parse_chain(mut text: &str, input: SampleType) -> Result<Vec<Converter>, AclError> {
    let mut out = Vec::new();
    let mut ty = input;
    // HAProxy's address output (`map_*_ip`) is its pseudo-type `addr`, cast to nothing.
    let mut addr_output = false;
    while !text.is_empty() {
        let (args, rest) = split_one(text);
        text = rest;
        if args.conv.is_empty() {
            continue;
        }
        let conv = parse_one(&args);
        if args.unclosed {
            return Err(unclosed(&args, conv.err()));
        }
        let conv = conv?;
        let (takes, gives) = conv.types();
        if !ty.casts_to(takes) || addr_output {
            return Err(AclError::Bad(format!(
                "converter '{}' cannot be applied",
                args.conv
            )));
        }
        addr_output =
            matches!(&conv, Converter::Map(m) if m.out == crate::runtime::map::Output::Ip);
        ty = gives;
        out.push(conv);
    }
    Ok(out)
}

/// Why converter `a`, whose `)` never came, is refused: as HAProxy's `make_arg_list`, an
/// error in reading an argument (`invalid arg N`: its type, a missing one) before the
/// missing `)`, which comes before the converter's own checks (`error`, if it failed).
fn unclosed(a: &Args<'_>, error: Option<AclError>) -> AclError {
    match error {
        Some(AclError::Bad(m)) if m.starts_with("invalid arg ") => AclError::Bad(m),
        _ => a.invalid(missing_paren_arg(a.len()), "expected ')'".into()),
    }
}

/// The argument HAProxy names when its `)` is missing after `read` arguments: the last
/// one read, but the next after none or one (`make_arg_list` steps back past the first).
fn missing_paren_arg(read: usize) -> usize {
    if read > 1 { read } else { read + 1 }
}

/// The type a chain ends with, from the fetch's.
pub fn output_type(chain: &[Converter], input: SampleType) -> SampleType {
    chain.last().map_or(input, |c| c.types().1)
}

/// The converters that take no argument.
const WITHOUT_ARGUMENTS: &[(&str, Converter)] = &[
    ("lower", Converter::Lower),
    ("upper", Converter::Upper),
    ("hex", Converter::Hex),
    ("base64", Converter::Base64),
    ("ub64enc", Converter::Ub64Enc),
    ("host_only", Converter::HostOnly),
    ("port_only", Converter::PortOnly),
    ("b64dec", Converter::B64Dec),
    ("length", Converter::Length),
    ("neg", Converter::Neg),
    ("cpl", Converter::Cpl),
    ("not", Converter::Not),
    ("bool", Converter::Bool),
    ("even", Converter::Even),
    ("odd", Converter::Odd),
];

fn parse_one(a: &Args<'_>) -> Result<Converter, AclError> {
    use Converter as C;
    if let Some((_, conv)) = WITHOUT_ARGUMENTS.iter().find(|(n, _)| *n == a.conv) {
        a.count(0, 0, "")?;
        return Ok(conv.clone());
    }
    Ok(match a.conv {
        "ipmask" => ipmask(a)?,
        "bytes" => {
            a.count(1, 2, "integer")?;
            let offset = a.int(0)?.unwrap_or_default();
            C::Bytes {
                offset,
                length: a.int(1)?,
            }
        }
        "field" => C::Field(split(a)?),
        "word" => C::Word(split(a)?),
        "regsub" => regsub(a)?,
        "url_dec" => {
            a.count(0, 1, "integer")?;
            C::UrlDec {
                in_form: a.int(0)?.is_some_and(|n| n != 0),
            }
        }
        "json" => {
            a.count(0, 1, "string")?;
            C::Json(match a.get(0).unwrap_or("") {
                "" | "ascii" => JsonInput::Ascii,
                "utf8" | "utf8p" => JsonInput::Utf8,
                "utf8s" | "utf8ps" => JsonInput::Utf8Skip,
                _ => {
                    return Err(a.invalid_args(
                        "Unexpected input code type. Allowed value are 'ascii', 'utf8', 'utf8s', 'utf8p' and 'utf8ps'",
                    ));
                }
            })
        }
        "add" | "sub" | "mul" | "div" | "mod" | "and" | "or" | "xor" => arith(a)?,
        "crc32" | "djb2" | "sdbm" | "wt6" => {
            a.count(0, 1, "integer")?;
            let hash = match a.conv {
                "crc32" => Hash::Crc32,
                "djb2" => Hash::Djb2,
                "sdbm" => Hash::Sdbm,
                _ => Hash::Wt6,
            };
            C::Hash {
                hash,
                avalanche: a.int(0)?.is_some_and(|n| n != 0),
            }
        }
        "xxh32" => {
            a.count(0, 1, "integer")?;
            C::Xxh32(a.int(0)?.unwrap_or_default() as u32)
        }
        "xxh64" => {
            a.count(0, 1, "integer")?;
            C::Xxh64(a.int(0)?.unwrap_or_default() as u64)
        }
        "ltrim" | "rtrim" => {
            a.count(1, 1, "string")?;
            let chars = crate::bytestr::to_bytes(a.get(0).unwrap_or_default()).into_owned();
            if a.conv == "ltrim" {
                C::Ltrim(chars)
            } else {
                C::Rtrim(chars)
            }
        }
        "concat" => concat(a)?,
        "url_enc" => {
            a.count(0, 1, "string")?;
            if a.get(0).is_some_and(|t| t != "query") {
                return Err(a.invalid_args("Unexpected encode type. Allowed value is 'query'"));
            }
            C::UrlEnc
        }
        name if crate::runtime::map::named(name).is_some() => map(a)?,
        other if keywords::CONVERTERS.contains(&other) => {
            return Err(AclError::Unsupported(format!("the converter '{other}'")));
        }
        other => return Err(AclError::Bad(format!("unknown converter '{other}'"))),
    })
}

/// `map*(file[,default])`: as HAProxy, an integer output's default is read as an integer
/// argument, and the file is read before the other defaults are checked.
fn map(a: &Args<'_>) -> Result<Converter, AclError> {
    use crate::runtime::map::{MapConv, Output, named};
    a.count(0, 2, "string")?;
    let Some((kind, out)) = named(a.conv) else {
        return Err(AclError::Bad(format!("unknown converter '{}'", a.conv)));
    };
    if out == Output::Int {
        a.int(1)?;
    }
    let file = a.get(0).unwrap_or_default();
    MapConv::load(kind, out, file, a.get(1))
        .map(Converter::Map)
        .map_err(|why| a.invalid_args(&why))
}

fn ipmask(a: &Args<'_>) -> Result<Converter, AclError> {
    a.count(1, 2, "IPv4 mask")?;
    let v4 = a.typed(0, "IPv4 mask", ipv4_mask)?.unwrap_or(u32::MAX);
    let v6 = a.typed(1, "IPv6 mask", |t| {
        let bits: u32 = t.parse().ok().filter(|b| *b <= 128)?;
        Some(u128::MAX.checked_shl(128 - bits).unwrap_or(0))
    })?;
    Ok(Converter::IpMask { v4, v6 })
}

/// An IPv4 mask: a prefix length (0-32) or a dotted mask (any bits, as HAProxy takes it).
fn ipv4_mask(t: &str) -> Option<u32> {
    if let Ok(bits) = t.parse::<u32>() {
        return (bits <= 32).then(|| u32::MAX.checked_shl(32 - bits).unwrap_or(0));
    }
    t.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn split(a: &Args<'_>) -> Result<Split, AclError> {
    a.count(2, 3, "string")?;
    let index = a.int(0)?.unwrap_or_default();
    let delims = crate::bytestr::to_bytes(a.get(1).unwrap_or_default()).into_owned();
    let count = a.int(2)?.unwrap_or(1);
    if index == 0 {
        return Err(a.invalid_args("Unexpected value 0 for index"));
    }
    if delims.is_empty() {
        return Err(a.invalid_args("Empty separators list"));
    }
    Ok(Split {
        index,
        delims,
        count,
    })
}

fn regsub(a: &Args<'_>) -> Result<Converter, AclError> {
    a.count(2, 3, "string")?;
    let (mut global, mut icase) = (false, false);
    for flag in a.get(2).unwrap_or_default().chars() {
        match flag {
            'g' => global = true,
            'i' => icase = true,
            other => {
                return Err(a.invalid_args(&format!(
                    "invalid regex flag '{other}', only 'i' and 'g' are supported"
                )));
            }
        }
    }
    let pattern = a.get(0).unwrap_or_default();
    // HAProxy's `regex_comp(p, !i, 1)`: with groups for `\N`. It compiles the regex once the
    // configuration is read, and reports an error then, with the others of its kind.
    let flags = Flags::CAPTURE.ignoring_case(icase);
    let regex = match Regex::new(pattern, flags) {
        // HAProxy's `smp_resolve_args` refuses an empty regex once the configuration is
        // read (noted with no error: the checks word it "missing regex").
        _ if pattern.is_empty() => match super::stick::defer_bad_regex(a.conv, 1, "", "".into()) {
            true => refused_regex(flags),
            false => return Err(a.invalid_args("missing regex")),
        },
        Ok(regex) => regex,
        Err(e) if super::stick::defer_bad_regex(a.conv, 1, pattern, e.to_string()) => {
            refused_regex(flags)
        }
        Err(e) => return Err(a.invalid_args(&e.to_string())),
    };
    Ok(Converter::RegSub(RegSub {
        regex,
        subst: a.get(1).unwrap_or_default().to_string(),
        global,
    }))
}

/// What stands for a regex that does not compile, noted for the checks: they refuse the
/// configuration, so it never runs. It matches nothing.
fn refused_regex(flags: Flags) -> Regex {
    Regex::new("(*FAIL)", flags).expect("PCRE2 compiles (*FAIL)")
}

/// Whether `name` is a variable reference (`txn.x`): hapx has no variables.
fn is_variable(name: &str) -> bool {
    ["proc.", "sess.", "txn.", "req.", "res."]
        .iter()
        .any(|scope| name.len() > scope.len() && name.starts_with(scope))
}

fn arith(a: &Args<'_>) -> Result<Converter, AclError> {
    a.count(0, 1, "string")?;
    let op = match a.conv {
        "add" => Arith::Add,
        "sub" => Arith::Sub,
        "mul" => Arith::Mul,
        "div" => Arith::Div,
        "mod" => Arith::Mod,
        "and" => Arith::And,
        "or" => Arith::Or,
        _ => Arith::Xor,
    };
    match a.get(0) {
        Some(t) => match t.parse::<i64>() {
            Ok(n) => Ok(Converter::Arith(op, n)),
            Err(_) if is_variable(t) => Err(AclError::Unsupported(format!(
                "variables (as argument of the converter '{}')",
                a.conv
            ))),
            Err(_) => Err(a.invalid_args("expects an integer or a variable name")),
        },
        // HAProxy takes it and reads an unset variable at run time.
        None => Err(AclError::Unsupported(format!(
            "variables (the converter '{}' without an argument reads an unset one)",
            a.conv
        ))),
    }
}

fn concat(a: &Args<'_>) -> Result<Converter, AclError> {
    a.count(0, 3, "string")?;
    if let Some(var) = a.get(1).filter(|v| !v.is_empty()) {
        if is_variable(var) {
            return Err(AclError::Unsupported(
                "variables (as argument of the converter 'concat')".into(),
            ));
        }
        return Err(a.invalid_args(&format!("failed to register variable name '{var}'")));
    }
    let start = a.get(0).unwrap_or_default();
    let end = a.get(2).unwrap_or_default();
    Ok(Converter::Concat(format!("{start}{end}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> String {
        match parse_chain(text, SampleType::Str) {
            Err(AclError::Bad(m)) => m,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn chains_parse_with_their_arguments() {
        let c = parse_chain("field(2,:.,0),lower,ipmask(24,64)", SampleType::Str).unwrap();
        assert_eq!(
            c[0],
            Converter::Field(Split {
                index: 2,
                delims: b":.".to_vec(),
                count: 0
            })
        );
        assert_eq!(c[1], Converter::Lower);
        assert_eq!(
            c[2],
            Converter::IpMask {
                v4: 0xffff_ff00,
                v6: Some(u128::MAX << 64)
            }
        );
        assert_eq!(
            parse_chain("ipmask(255.0.255.0)", SampleType::Ip).unwrap(),
            [Converter::IpMask {
                v4: 0xff00_ff00,
                v6: None
            }]
        );
        assert_eq!(
            parse_chain("concat(<,,>)", SampleType::Str).unwrap(),
            [Converter::Concat("<>".into())]
        );
    }

    #[test]
    fn argument_errors_read_like_haproxys() {
        assert_eq!(
            bad("ipmask(33)"),
            "invalid arg 1 in converter 'ipmask' : failed to parse '33' as type 'IPv4 mask' at position 1"
        );
        assert_eq!(
            bad("ipmask"),
            "invalid arg 1 in converter 'ipmask' : expected type 'IPv4 mask' at position 1, but got nothing"
        );
        assert_eq!(
            bad("field(1)"),
            "invalid arg 2 in converter 'field' : missing arguments (got 1/2), type 'string' expected"
        );
        assert_eq!(
            bad("field(0,:)"),
            "invalid args in converter 'field' : Unexpected value 0 for index"
        );
        assert_eq!(
            bad("hex(1)"),
            "invalid arg 1 in converter 'hex' : expected ')' before '1)'"
        );
        assert_eq!(
            bad("regsub(a,b,x)"),
            "invalid args in converter 'regsub' : invalid regex flag 'x', only 'i' and 'g' are supported"
        );
        assert_eq!(
            bad("add(x)"),
            "invalid args in converter 'add' : expects an integer or a variable name"
        );
        assert_eq!(bad("b64dec,add(1)"), "converter 'add' cannot be applied");
        assert_eq!(bad("len"), "unknown converter 'len'");
        assert_eq!(
            bad("url_enc(query,1)"),
            "invalid arg 2 in converter 'url_enc' : expected ')' before ',1)'"
        );
    }

    #[test]
    fn arguments_are_quoted_and_escaped_as_haproxys() {
        let subst = |text: &str| match parse_chain(text, SampleType::Str).unwrap().remove(0) {
            Converter::RegSub(r) => (r.regex.as_str().to_string(), r.subst),
            other => panic!("{other:?}"),
        };
        assert_eq!(subst("regsub('(a)',<\\1>)"), ("(a)".into(), "<\\1>".into()));
        assert_eq!(
            subst("regsub(\"a,\\)\",'\\\\')"),
            ("a,\\)".into(), "\\\\".into())
        );
        assert_eq!(
            subst("regsub(a,\\ \\\\\\t\\\"\\')"),
            ("a".into(), " \\\t\"'".into())
        );
        assert_eq!(
            bad("regsub((a),b)"),
            "invalid arg 2 in converter 'regsub' : missing arguments (got 1/2), type 'string' expected"
        );
        assert_eq!(
            bad("regsub(a,b,g"),
            "invalid arg 3 in converter 'regsub' : expected ')'"
        );
        assert_eq!(
            bad("ltrim(a"),
            "invalid arg 2 in converter 'ltrim' : expected ')'"
        );
        assert_eq!(
            bad("bytes('1]"),
            "invalid arg 1 in converter 'bytes' : failed to parse '1]' as type 'integer' at position 1"
        );
        assert_eq!(
            bad("bytes(1,2,3)"),
            "invalid arg 2 in converter 'bytes' : expected ')' before ',3)'"
        );
    }

    #[test]
    fn what_hapx_lacks_stays_refused() {
        for text in ["sha1", "add(txn.x)", "concat(,txn.x)", "add", "ub64dec"] {
            assert!(
                matches!(
                    parse_chain(text, SampleType::Str),
                    Err(AclError::Unsupported(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn casts_follow_haproxys_table() {
        assert!(SampleType::Ip.casts_to(SampleType::Int));
        assert!(!SampleType::Bin.casts_to(SampleType::Int));
        assert!(!SampleType::Bool.casts_to(SampleType::Ip));
        assert!(SampleType::Int.casts_to(SampleType::Ip));
    }
}
