//! `balance`, `hash-type` and `cookie`: which algorithm picks a server, how a hash maps to
//! one, and the cookie that keeps a client on its server.
//!
//! Arguments and messages follow HAProxy 2.6's `backend_parse_balance` and the
//! `hash-type` and `cookie` parsers of `cfgparse-listen.c`.

use super::acl::Source;
use super::diag::LineError;
use super::model::{Balance, CookieMode, CookiePersist, HashFunction, HashType, UriHash};

/// `balance ALGO [ARGS...]` (`words[0]` is `balance`): the algorithm, and a warning when
/// hapx runs another one instead.
pub fn parse_balance(words: &[String]) -> Result<(Balance, Option<String>), String> {
    // None is HAProxy's default, `roundrobin`.
    let Some(algo) = words.get(1).map(String::as_str).filter(|a| !a.is_empty()) else {
        return Ok((Balance::RoundRobin, None));
    };
    let args = &words[2..];
    let balance = match algo {
        "roundrobin" => Balance::RoundRobin,
        "static-rr" => Balance::StaticRr,
        "leastconn" => Balance::LeastConn,
        "first" => Balance::First,
        "source" => Balance::Source,
        // HAProxy's `strncmp(arg, "random", 6)`: any word that starts so.
        a if a.starts_with("random") => random(&a["random".len()..])?,
        "uri" => Balance::Uri(uri(args)?),
        "url_param" => return url_param(args),
        a if a.starts_with("hdr(") => hdr(a, args)?,
        "hash" => hash(args)?,
        // Arguments after it are ignored, as HAProxy does.
        a if a.starts_with("rdp-cookie") => Balance::RdpCookie(
            rdp_cookie_name(a, "mstshash")
                .ok_or("balance rdp-cookie : missing cookie name.")?,
        ),
        _ => return Err("balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.".into()),
    };
    Ok((balance, None))
}

/// The cookie name of `rdp-cookie`, `rdp-cookie(NAME)` (anything after the `)` ignored) or
/// `default`; None when a name is missing, as HAProxy's `strncmp(arg, "rdp-cookie", 10)`
/// reads it (`rdp-cookie()`, `rdp-cookie(x`, `rdp-cookiex`).
pub fn rdp_cookie_name(arg: &str, default: &str) -> Option<String> {
    let rest = arg.strip_prefix("rdp-cookie")?;
    if rest.is_empty() {
        return Some(default.into());
    }
    let inner = rest.strip_prefix('(')?;
    let end = inner.find(')').filter(|&end| end > 0)?;
    Some(inner[..end].into())
}

/// `persist rdp-cookie[(NAME)]` (`words[0]` is `persist`): the cookie name (`msts` by
/// default), with HAProxy's messages.
pub fn parse_persist(words: &[String]) -> Result<String, String> {
    let method = words
        .get(1)
        .filter(|m| !m.is_empty())
        .ok_or("missing persist method.")?;
    if !method.starts_with("rdp-cookie") {
        return Err("unknown persist method.".into());
    }
    let name = rdp_cookie_name(method, "msts")
        .ok_or("persist rdp-cookie(name)' requires an rdp cookie name.")?;
    // As HAProxy: only a named cookie is followed by nothing.
    if let Some(extra) = words.get(2).filter(|_| method.len() > "rdp-cookie".len()) {
        return Err(format!(
            "'persist' cannot handle unexpected argument '{extra}'."
        ));
    }
    Ok(name)
}

/// What follows `random`: `(N)` draws, 2 without (or with `()` or anything else), read
/// as HAProxy's `strtol(.., 0)` into an `int`.
fn random(rest: &str) -> Result<Balance, String> {
    let Some(draws) = rest.strip_prefix('(').filter(|d| !d.starts_with(')')) else {
        return Ok(Balance::Random(2));
    };
    let (n, end) = super::values::strtol(draws);
    match end.chars().next() {
        None => return Err("balance random : missing closing parenthesis.".into()),
        Some(')') => {}
        Some(c) => {
            return Err(format!(
                "balance random : unexpected character '{c}' after argument."
            ));
        }
    }
    // Kept in an `int`, as HAProxy's.
    match u32::try_from(n as i32) {
        Ok(n) if n >= 1 => Ok(Balance::Random(n)),
        _ => Err("balance random : number of draws must be at least 1.".into()),
    }
}

/// `uri [whole] [len N] [depth N] [path-only]`, in any order.
fn uri(args: &[String]) -> Result<UriHash, String> {
    let mut hash = UriHash::default();
    let mut i = 0;
    while let Some(arg) = args.get(i).map(String::as_str) {
        match arg {
            "len" | "depth" => {
                let value = args.get(i + 1).map_or("", String::as_str);
                let n = usize::try_from(super::parse::atoi(value))
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        format!("balance uri : '{arg}' expects a positive integer (got '{value}').")
                    })?;
                if arg == "len" {
                    hash.len = n;
                } else {
                    hash.depth = n;
                }
                i += 2;
            }
            "whole" => {
                hash.whole = true;
                i += 1;
            }
            "path-only" => {
                hash.path_only = true;
                i += 1;
            }
            other => {
                return Err(format!(
                    "balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got '{other}')."
                ));
            }
        }
    }
    Ok(hash)
}

/// `url_param NAME [check_post [...]]`: as in HAProxy 2.6, `check_post` is taken and what
/// follows it ignored; a POST's body is looked into whether it is there or not.
fn url_param(args: &[String]) -> Result<(Balance, Option<String>), String> {
    let name = args
        .first()
        .filter(|n| !n.is_empty())
        .ok_or("balance url_param requires an URL parameter name.")?;
    match args.get(1).map(String::as_str) {
        None | Some("check_post") => Ok((Balance::UrlParam(name.clone()), None)),
        Some(other) => Err(format!(
            "balance url_param only accepts 'check_post' modifier (got '{other}')."
        )),
    }
}

/// `hash EXPR`: one sample expression (a fetch and its converters), nothing after it.
fn hash(args: &[String]) -> Result<Balance, String> {
    let expr = args
        .first()
        .filter(|e| !e.is_empty())
        .ok_or("balance hash requires a sample expression.")?;
    if let Some(extra) = args.get(1) {
        return Err(format!(
            "balance hash takes no other argument (got '{extra}')."
        ));
    }
    let fetch = super::acl::parse_fetch(expr).map_err(|e| {
        let m = match e {
            super::acl::AclError::Bad(m) => m,
            super::acl::AclError::Unsupported(what) => {
                format!("{what} is not implemented by hapx")
            }
        };
        // (HAProxy's words, its empty "in" included.)
        format!("failed to parse 'balance hash' expression '{expr}' in : {m}.")
    })?;
    // HAProxy's words for what is not there when the server is chosen.
    let missing = match fetch.source {
        Source::Header(ref h) if h.response => Some("HTTP response headers"),
        Source::Status => Some("HTTP response"),
        _ => None,
    };
    if let Some(what) = missing {
        return Err(format!(
            "error detected while parsing 'balance hash' expression '{expr}' which requires information from {what}, which is not available here."
        ));
    }
    Ok(Balance::Hash(Box::new(fetch), expr.clone()))
}

/// `hdr(NAME) [use_domain_only]`: the name ends at the first `)`.
fn hdr(algo: &str, args: &[String]) -> Result<Balance, String> {
    let inner = &algo["hdr(".len()..];
    let name = match inner.find(')') {
        Some(end) if end > 0 => &inner[..end],
        _ => return Err("balance hdr requires an http header field name.".into()),
    };
    let domain_only = match args.first().map(String::as_str) {
        None => false,
        Some("use_domain_only") => true,
        Some(other) => {
            return Err(format!(
                "balance {algo} only accepts 'use_domain_only' modifier (got '{other}')."
            ));
        }
    };
    Ok(Balance::Hdr {
        name: name.to_string(),
        domain_only,
    })
}

/// `hash-balance-factor N`: 0 (unbounded) or more than 100 (percent of the average load a
/// server of the consistent-hash ring may take). Read as C's `atol`, as HAProxy does: a
/// value that is no number is 0.
pub fn parse_hash_balance_factor(words: &[String]) -> Result<u32, String> {
    let v = words
        .get(1)
        .filter(|v| !v.is_empty())
        .ok_or("'hash-balance-factor' expects an integer argument.")?;
    let v = v.trim_start();
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    // atol(3): saturated at the long's bounds; then stored in an int, as HAProxy's (so
    // 99999999999999999999 is -1, refused like any negative factor).
    let n = match digits[..end].parse::<i64>() {
        Ok(n) if negative => -n,
        Ok(n) => n,
        Err(_) if end == 0 => 0,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    };
    let factor = n as i32;
    if factor != 0 && factor <= 100 {
        return Err("'hash-balance-factor' must be 0 or greater than 100.".into());
    }
    Ok(factor.unsigned_abs())
}

/// `hash-type <map-based|consistent> [sdbm|djb2|wt6|crc32] [avalanche]`. Without a
/// function: sdbm, with avalanche for `consistent` (as HAProxy 2.6).
pub fn parse_hash_type(words: &[String]) -> Result<HashType, String> {
    let arg = |i: usize| words.get(i).map(String::as_str);
    let consistent = match arg(1) {
        Some("map-based") => false,
        Some("consistent") => true,
        Some("avalanche") => {
            return Err("experimental feature 'hash-type avalanche' is not supported anymore, please use 'hash-type map-based sdbm avalanche' instead.".into());
        }
        _ => return Err("'hash-type' only supports 'consistent' and 'map-based'.".into()),
    };
    let (function, avalanche) = match arg(2) {
        None => (HashFunction::Sdbm, consistent),
        Some(f) => {
            let function = match f {
                "sdbm" => HashFunction::Sdbm,
                "djb2" => HashFunction::Djb2,
                "wt6" => HashFunction::Wt6,
                "crc32" => HashFunction::Crc32,
                _ => {
                    return Err("'hash-type' only supports 'sdbm', 'djb2', 'crc32', or 'wt6' hash functions.".into());
                }
            };
            let avalanche = match arg(3) {
                None => false,
                Some("avalanche") => true,
                Some(_) => {
                    return Err(
                        "'hash-type' only supports 'avalanche' as a modifier for hash functions."
                            .into(),
                    );
                }
            };
            (function, avalanche)
        }
    };
    Ok(HashType {
        consistent,
        function,
        avalanche,
    })
}

/// `maxidle`/`maxlife` `v`: a time in seconds unless it has a unit, refused as HAProxy's
/// `parse_time_err` refuses it, at the first character that is neither a digit nor a
/// unit (HAProxy only warns about what follows a unit); a part of a second counts as one.
fn cookie_seconds(arg: &str, v: &str) -> Result<u32, LineError> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &v[digits..];
    // Longest first: `ms` is not `m`.
    let units: [(&str, u64, u64); 6] = [
        ("us", 1, 1_000_000),
        ("ms", 1, 1_000),
        ("s", 1, 1),
        ("m", 60, 1),
        ("h", 3600, 1),
        ("d", 86400, 1),
    ];
    let known = units.iter().find(|(u, ..)| unit.starts_with(u));
    let overflow = || {
        LineError::Unspaced(format!(
            "timer overflow in argument <{v}> to <{arg}> (maximum value is 2147483647 s or ~68 years)."
        ))
    };
    if digits > 0 && (unit.is_empty() || known.is_some()) {
        let (_, mult, div) = known.copied().unwrap_or(("", 1, 1));
        let n: u64 = v[..digits].parse().map_err(|_| overflow())?;
        let secs = n.saturating_mul(mult).div_ceil(div);
        return u32::try_from(secs)
            .ok()
            .filter(|s| *s <= i32::MAX as u32)
            .ok_or_else(overflow);
    }
    let c = unit.chars().next().unwrap_or('?');
    Err(LineError::Unspaced(format!(
        "unexpected character '{c}' in argument to <{arg}>."
    )))
}

/// `cookie NAME [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve]
/// [httponly] [secure] [domain D]* [maxidle T] [maxlife T] [dynamic] [attr V]*`.
pub fn parse_cookie(words: &[String]) -> Result<CookiePersist, LineError> {
    let name = words
        .get(1)
        .filter(|n| !n.is_empty())
        .ok_or("'cookie' expects <cookie_name> as argument.")?;
    let mut c = CookiePersist {
        name: name.clone(),
        ..Default::default()
    };
    let mut i = 2;
    while let Some(arg) = words.get(i).map(String::as_str) {
        let value = || {
            words
                .get(i + 1)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let mode = match arg {
            "rewrite" => Some(CookieMode::Rewrite),
            "insert" => Some(CookieMode::Insert),
            "prefix" => Some(CookieMode::Prefix),
            _ => None,
        };
        if let Some(mode) = mode {
            if c.mode != CookieMode::Passive && c.mode != mode {
                return Err(
                    "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible.".into(),
                );
            }
            c.mode = mode;
            i += 1;
            continue;
        }
        match arg {
            "indirect" => c.indirect = true,
            "nocache" => c.nocache = true,
            "postonly" => c.postonly = true,
            "preserve" => c.preserve = true,
            "httponly" => c.httponly = true,
            "secure" => c.secure = true,
            "domain" | "attr" | "maxidle" | "maxlife" => {
                let what = match arg {
                    "domain" => "<domain>",
                    "attr" => "<value>",
                    "maxidle" => "<idletime> in seconds",
                    _ => "<lifetime> in seconds",
                };
                let v = value().ok_or_else(|| format!("'{arg}' expects {what} as argument."))?;
                match arg {
                    "domain" => c.domains.push(v.to_string()),
                    "attr" if v.contains(';') => {
                        return Err("character '%x3B' is not permitted in attribute value.".into());
                    }
                    "attr" => c.attrs.push(v.to_string()),
                    "maxidle" => c.maxidle = cookie_seconds(arg, v)?,
                    _ => c.maxlife = cookie_seconds(arg, v)?,
                }
                i += 1;
            }
            "dynamic" => c.dynamic = true,
            _ => return Err("'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options.".into()),
        }
        i += 1;
    }
    if c.preserve && c.mode != CookieMode::Insert && !c.indirect {
        return Err("cookie 'preserve' requires at least 'insert' or 'indirect'.".into());
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn balance_arguments_are_haproxys() {
        let uri = parse_balance(&words("balance uri len 12 whole depth 2 path-only")).unwrap();
        let expected = UriHash {
            whole: true,
            path_only: true,
            len: 12,
            depth: 2,
        };
        assert_eq!(uri, (Balance::Uri(expected), None));
        assert!(parse_balance(&words("balance uri len 0")).is_err());
        assert!(parse_balance(&words("balance uri depth")).is_err());
        assert!(parse_balance(&words("balance uri deep")).is_err());
        assert_eq!(
            parse_balance(&words("balance hdr(Host) use_domain_only"))
                .unwrap()
                .0,
            Balance::Hdr {
                name: "Host".into(),
                domain_only: true
            }
        );
        assert!(parse_balance(&words("balance hdr()")).is_err());
        assert!(parse_balance(&words("balance hdr(Host) other")).is_err());
        assert_eq!(
            parse_balance(&words("balance url_param id check_post"))
                .unwrap()
                .0,
            Balance::UrlParam("id".into())
        );
        let check_post = parse_balance(&words("balance url_param id check_post 10")).unwrap();
        assert!(check_post.1.is_none());
        assert!(
            parse_balance(&words("balance url_param id"))
                .unwrap()
                .1
                .is_none()
        );
        assert!(parse_balance(&words("balance url_param")).is_err());
    }

    #[test]
    fn rdp_cookie_names_are_read_as_haproxy_reads_them() {
        let balance = |l: &str| parse_balance(&words(l)).map(|(b, _)| b);
        let rdp = |name: &str| Ok(Balance::RdpCookie(name.into()));
        assert_eq!(balance("balance rdp-cookie"), rdp("mstshash"));
        assert_eq!(balance("balance rdp-cookie(user)"), rdp("user"));
        // After the name, and after the algorithm, anything is ignored.
        assert_eq!(balance("balance rdp-cookie(a)b c"), rdp("a"));
        let missing = Err("balance rdp-cookie : missing cookie name.".to_string());
        for bad in ["rdp-cookie()", "rdp-cookie(a", "rdp-cookiex"] {
            assert_eq!(balance(&format!("balance {bad}")), missing, "{bad}");
        }
        let persist = |l: &str| parse_persist(&words(l));
        assert_eq!(persist("persist rdp-cookie"), Ok("msts".into()));
        assert_eq!(persist("persist rdp-cookie(tok)"), Ok("tok".into()));
        assert_eq!(persist("persist"), Err("missing persist method.".into()));
        assert_eq!(
            persist("persist cookie"),
            Err("unknown persist method.".into())
        );
        assert!(persist("persist rdp-cookie()").is_err_and(|e| e.contains("requires")));
        assert!(persist("persist rdp-cookie(a) x").is_err_and(|e| e.contains("'x'")));
        assert_eq!(persist("persist rdp-cookie x"), Ok("msts".into()));
    }

    #[test]
    fn cookie_options_are_haproxys() {
        let line = "cookie SRV insert indirect nocache httponly secure domain .a.example domain .b.example attr SameSite=Lax";
        let c = parse_cookie(&words(line)).unwrap();
        assert_eq!((c.name.as_str(), c.mode), ("SRV", CookieMode::Insert));
        assert!(c.indirect && c.nocache && c.httponly && c.secure && !c.dynamic);
        assert_eq!(c.domains, [".a.example", ".b.example"]);
        assert_eq!(c.attrs, ["SameSite=Lax"]);
        assert!(parse_cookie(&words("cookie")).is_err());
        assert!(parse_cookie(&words("cookie S insert prefix")).is_err());
        assert!(parse_cookie(&words("cookie S preserve")).is_err());
        assert!(parse_cookie(&words("cookie S domain")).is_err());
        assert!(parse_cookie(&words("cookie S bogus")).is_err());
        let dated = parse_cookie(&words("cookie S insert maxidle 1h maxlife 1500ms dynamic"));
        let dated = dated.unwrap();
        assert_eq!(
            (dated.maxidle, dated.maxlife, dated.dynamic),
            (3600, 2, true)
        );
        assert!(parse_cookie(&words("cookie S insert maxidle 10x")).is_err());
        assert!(parse_cookie(&words("cookie S insert maxlife 99999999999")).is_err());
    }

    #[test]
    fn hash_type_defaults_are_haproxys() {
        let ht = |l: &str| parse_hash_type(&words(l));
        assert_eq!(ht("hash-type map-based").unwrap(), HashType::default());
        let consistent = ht("hash-type consistent").unwrap();
        assert!(consistent.consistent && consistent.avalanche);
        let plain = ht("hash-type consistent djb2").unwrap();
        assert_eq!(
            (plain.function, plain.avalanche),
            (HashFunction::Djb2, false)
        );
        assert!(ht("hash-type map-based wt6 avalanche").unwrap().avalanche);
        assert!(ht("hash-type consistent none").is_err());
        assert!(ht("hash-type").is_err());
        assert!(ht("hash-type map-based crc32 mix").is_err());
    }

    #[test]
    fn hash_balance_factors_are_read_as_haproxy_reads_them() {
        let f = |l: &str| parse_hash_balance_factor(&words(l));
        assert_eq!(f("hash-balance-factor 150"), Ok(150));
        assert_eq!(f("hash-balance-factor 0"), Ok(0));
        assert_eq!(f("hash-balance-factor abc"), Ok(0));
        assert_eq!(f("hash-balance-factor 125x"), Ok(125));
        let refused = Err("'hash-balance-factor' must be 0 or greater than 100.".to_string());
        assert_eq!(f("hash-balance-factor 100"), refused);
        assert_eq!(f("hash-balance-factor 1"), refused);
        assert_eq!(f("hash-balance-factor -1"), refused);
        assert_eq!(f("hash-balance-factor 99999999999999999999"), refused);
        assert!(f("hash-balance-factor").is_err());
    }
}
