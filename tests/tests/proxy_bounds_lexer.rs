//! Two bounds HAProxy 2.6 has and hapx-proxy must keep, next to HAProxy:
//!
//! - Converters build their strings in a trash buffer of `tune.bufsize` (16384) bytes:
//!   `regsub` stops writing there (the matching goes on), `hex`, `url_enc` and `concat`
//!   stop at what fits, `base64`, `ub64enc` and `json` fail when their result does not fit,
//!   and `lower`, `upper`, `host_only` first copy a full buffer into a new one, less a byte.
//! - The configuration reader refuses a `$` inside double quotes that starts no variable
//!   (`"^/a$"`), an unknown pseudo-variable, an unclosed `${` and a bad `[*]`, worded as
//!   HAProxy words it, the line shown under the message with a caret.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, check_alike, exchange, get, side_by_side};
use hapx_tests::{bins, require};

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// The chains measured, each applied to header `x-c` and returned as one line of the body.
/// `regsub(.,\0\0\0\0,g)` makes a string four times as long as the header, so a header of
/// 4096 bytes fills a buffer.
const CHAINS: &[&str] = &[
    r"regsub(.,\0\0\0\0,g),length",
    r"regsub(.,\0\0\0\0,g),regsub(a,-\0+,g),length",
    r"regsub(.,\0\0\0\0,g),regsub(a,-\0+,g),crc32",
    r"regsub(.,\0\0\0\0,g),regsub(^,ab),length",
    r"regsub(.,\0\0\0\0,g),regsub(x*,-,g),crc32",
    r"regsub(.,\0\0\0\0,g),lower,length",
    r"regsub(.,\0\0\0\0,g),upper,length",
    r"regsub(.,\0\0\0\0,g),host_only,length",
    r"regsub(.,\0\0\0\0,g),hex,length",
    r"regsub(.,\0\0\0\0,g),concat(abc),length",
    r"regsub(.,\0\0\0\0,g),json,length",
    r"regsub(.,\0\0\0\0,g),field(1,:),length",
    r"regsub(.,\0\0\0,g),base64,length",
    r"regsub(.,\0\0\0,g),concat(a),base64,length",
    r"regsub(.,\0\0\0,g),concat(a),ub64enc,length",
    r"regsub(.,\0\0\0,g),concat(ab),ub64enc,length",
    r"regsub(.,\\x20,g),url_enc,length",
    r"regsub(.,\0\0\0\0,g),regsub(a{3}$,X\\x20,g),url_enc,crc32",
    r"regsub(.,\\x22\\x22,g),json,length",
    r"regsub(.,\\x01,g),json,length",
];

/// The header lengths sent: below, at and past the sizes where the chains above reach
/// 16384 bytes.
const LENGTHS: &[usize] = &[1, 2730, 2731, 4094, 4095, 4096, 4097, 5461, 5462, 8192];

/// What each chain gives for a header of `len` bytes, one line each (empty when it fails).
fn measure(addr: SocketAddr, len: usize) -> Vec<String> {
    let header = format!("x-c: {}\r\nconnection: close\r\n", "a".repeat(len));
    let responses = exchange(addr, &[get("/", &header)]);
    let body = responses
        .first()
        .cloned()
        .flatten()
        .unwrap_or_else(|| panic!("no response for a header of {len} bytes"))
        .body;
    body.lines().map(str::to_string).collect()
}

/// The chains' results on every length, through hapx-proxy and through HAProxy: the same
/// lengths and checksums; and hapx's own values where the bound shows.
#[test]
fn converters_stop_at_the_buffer_size() {
    let test = "converters_stop_at_the_buffer_size";
    let addr = front();
    let mut config = format!(
        "defaults\n  mode http\n  timeout client 10s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend f\n  bind {addr}\n"
    );
    let mut body = String::new();
    for (i, chain) in CHAINS.iter().enumerate() {
        config.push_str(&format!(
            "  http-request set-var(txn.v{i}) req.hdr(x-c),{chain}\n"
        ));
        body.push_str(&format!("%[var(txn.v{i})]\\n"));
    }
    config.push_str(&format!(
        "  http-request return status 200 content-type text/plain lf-string \"{body}\"\n"
    ));
    let traffic = |addr| {
        LENGTHS
            .iter()
            .map(|&len| (len, measure(addr, len)))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let value = |len: usize, chain: usize| {
        let (_, lines) = ours.iter().find(|(l, _)| *l == len).expect("a length sent");
        lines[chain].clone()
    };
    // A buffer's worth, and no more: 4097 × 4 bytes would be 16388.
    assert_eq!(value(4096, 0), "16384");
    assert_eq!(value(4097, 0), "16384");
    assert_eq!(value(4095, 0), "16380");
    // `-a+` for each `a` of 16384 bytes: three times as much, cut at the buffer.
    assert_eq!(value(4096, 1), "16384");
    assert_eq!(value(4095, 3), "16382");
    assert_eq!(value(4096, 3), "16384");
    // A copy of a full buffer loses a byte; a hex dump stops at two digits a byte.
    assert_eq!(value(4096, 5), "16383");
    assert_eq!(value(4096, 8), "16384");
    assert_eq!(value(4096, 9), "16383");
    // base64 of 12288 bytes would fill the buffer, leaving no room for its NUL: it fails.
    assert_eq!(value(4095, 12), "16380");
    assert_eq!(value(4096, 12), "", "no value");
    // url_enc writes an escape only with room for it and the NUL.
    assert_eq!(value(5461, 16), "16380");
    // json fails when its escapes do not fit.
    assert_eq!(value(4096, 18), "16384");
    assert_eq!(value(4097, 18), "", "no value");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `BINARY -c -f FILE` with `X=xv` in the environment: its exit code and its stderr lines
/// but the notices, pids removed (the lines that follow a message, the configuration line
/// and its caret, included).
fn check_output(binary: &Path, file: &Path) -> (i32, Vec<String>) {
    let out = Command::new(binary)
        .args(["-c", "-f"])
        .arg(file)
        .env("X", "xv")
        .env_remove("NOPE")
        .output()
        .expect("running the checker");
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|l| match (l.find('('), l.find(')')) {
            (Some(a), Some(b)) if l.starts_with('[') && a < b => {
                format!("{}{}", &l[..a], &l[b + 1..])
            }
            _ => l.to_string(),
        })
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// `http-request set-header x VALUE` in a frontend, checked by hapx-proxy and HAProxy:
/// both outputs, hapx's first.
fn check_value(test: &str, case: usize, value: &str) -> [(i32, Vec<String>); 2] {
    let dir = temp_dir(&format!("{test}-{case}"));
    let file = dir.join("d.cfg");
    let text = format!(
        "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:{}\n  http-request set-header x {value}\n",
        free_port()
    );
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_output(&bins::path("hapx-proxy"), &file);
    let theirs = if require::path(test, Path::new(HAPROXY), "HAProxy") {
        check_output(Path::new(HAPROXY), &file)
    } else {
        ours.clone()
    };
    [ours, theirs]
}

/// `$` inside double quotes must start a variable; single quotes, unquoted words and `\$`
/// keep it. The refusals read as HAProxy's, with the line and a caret under the fault.
#[test]
fn dollar_in_double_quotes_is_checked_as_haproxy_does() {
    let test = "dollar_in_double_quotes_is_checked_as_haproxy_does";
    let refused = [
        r#""^/a$""#,
        r#""$""#,
        r#""a$ b""#,
        r#""$1""#,
        r#""$$""#,
        r#""${}""#,
        r#""${X""#,
        r#""${X-a""#,
        r#""${X[x]}""#,
        r#""$.FOO" a"#,
        "\"$\"\u{e9}",
        "\u{e9}\"$\"",
    ];
    let accepted = [
        r#""${X}""#,
        r#""$X""#,
        r#""${X}a""#,
        r#""${NOPE-d}""#,
        r#""${X[*]}""#,
        r#""$X{""#,
        r#"'a$'"#,
        r#""a\$""#,
        "a$",
        "$X",
        r#""${.LINE}""#,
    ];
    for (case, value) in refused.iter().enumerate() {
        let [ours, theirs] = check_value(test, case, value);
        assert_eq!(ours.0, 1, "{value}: {ours:?}");
        assert!(
            ours.1
                .iter()
                .any(|l| l.contains(" environment variable name at position ")
                    || l.contains("invalid word expansion sequence at position ")),
            "{value}: {ours:?}"
        );
        assert!(
            ours.1.iter().any(|l| l.trim_end().ends_with('^')),
            "{value}: {ours:?}"
        );
        assert_eq!(ours, theirs, "{value}: hapx-proxy, then HAProxy");
    }
    for (case, value) in accepted.iter().enumerate() {
        let [ours, theirs] = check_value(test, refused.len() + case, value);
        assert_eq!(ours, (0, Vec::new()), "{value}");
        assert_eq!(ours, theirs, "{value}: hapx-proxy, then HAProxy");
    }
}

/// The first message of a refused `"^/a$"`, and a long line shown shifted around the error,
/// exactly as HAProxy prints them; the reading goes on after such a line.
#[test]
fn refused_lines_are_shown_as_haproxy_shows_them() {
    let test = "refused_lines_are_shown_as_haproxy_shows_them";
    let a = "a".repeat(100);
    let text = format!(
        "global\n\tdescription {a} \"x$\" {a}\n  description \"abc\n  description \\xZZ\n\
         defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:{}\n  acl p path -m reg \"^/a$\"\n",
        free_port()
    );
    let (code, messages) = check_alike(test, &text);
    assert_eq!(code, 1);
    assert!(
        messages[0].ends_with(
            "case.cfg:2]: forbidden first char in environment variable name at position 118:"
        ),
        "{messages:?}"
    );
    assert!(
        messages[1].ends_with("case.cfg:3]: unmatched quote at position 15:"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("case.cfg:12]: forbidden first char"))
    );
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    std::fs::write(&file, &text).expect("writing the configuration");
    let (_, ours) = check_output(&bins::path("hapx-proxy"), &file);
    assert_eq!(
        ours[1],
        format!("  ...{} \"x$\" {}...", "a".repeat(33), "a".repeat(35))
    );
    assert_eq!(ours[2], format!("{}^", " ".repeat(42)));
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, check_output(Path::new(HAPROXY), &file).1);
    }
}
