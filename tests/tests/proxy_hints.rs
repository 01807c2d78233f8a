//! The "did you mean ... maybe ?" hints of `-c`, hapx-proxy next to HAProxy 2.6: for
//! misspelled global and proxy keywords, `option` names, `bind` and `server` keywords and
//! the actions of `http-request`, `http-response`, `tcp-request` and `tcp-response`, both
//! suggest the same word (or none). Many of these misspellings are ties or near cut-offs
//! of HAProxy's fingerprint distance, where a different candidate order, candidate set or
//! cut-off shows. On the runtime API, an unknown command gets the same list of close
//! commands from both, at each level.

use std::path::Path;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_text};
use hapx_tests::require;

/// Where a misspelled word goes: the configuration with `{}` for the word.
const GLOBAL: &str = "global\n  {}\n";
const PROXY: &str = "frontend f\n  bind 127.0.0.1:1\n  {} x\n";
const OPTION: &str = "backend b\n  option {}\n";
const BIND: &str = "frontend f\n  bind 127.0.0.1:1 {}\n";
const SERVER: &str = "backend b\n  server s 127.0.0.1:1 {}\n";
const HTTP_REQUEST: &str = "frontend f\n  bind 127.0.0.1:1\n  http-request {} str(a)\n";
const HTTP_RESPONSE: &str = "frontend f\n  bind 127.0.0.1:1\n  http-response {}\n";
const TCP_CONTENT: &str = "frontend f\n  bind 127.0.0.1:1\n  tcp-request content {}\n";
const TCP_CONNECTION: &str = "frontend f\n  bind 127.0.0.1:1\n  tcp-request connection {}\n";
const TCP_RESPONSE: &str = "backend b\n  tcp-response content {}\n";

/// The misspellings, each in its place.
const CASES: &[(&str, &str)] = &[
    (GLOBAL, "suer"),
    (GLOBAL, "lgo"),
    (GLOBAL, "nospl"),
    (GLOBAL, "ctr-base"),
    (GLOBAL, "profilig.memory"),
    (GLOBAL, "fdhard-limit"),
    (GLOBAL, "h2-workarould-bogus-websocket-clients"),
    (GLOBAL, "zzzzzz"),
    // Misspelled `tune.*` and `ssl-*` keywords are unknown, with a hint.
    (GLOBAL, "tune.bufsiz"),
    (GLOBAL, "tune.ssl.lifetme"),
    (GLOBAL, "ssl-default-bind-cipher"),
    (GLOBAL, "ssl-engin"),
    (GLOBAL, "profiling.memory"),
    (PROXY, "bnid"),
    (PROXY, "bala"),
    (PROXY, "nos"),
    (PROXY, "olg"),
    (PROXY, "grae"),
    (PROXY, "maxque"),
    (OPTION, "ctplog"),
    (OPTION, "forwar"),
    (OPTION, "http-buff"),
    (OPTION, "forcedlose"),
    (OPTION, "orginalto"),
    (OPTION, "httpslo"),
    (BIND, "transpa"),
    (BIND, "in"),
    (BIND, "gd"),
    (BIND, "maxc"),
    (BIND, "no-ssl"),
    (SERVER, "chekc"),
    (SERVER, "o-check"),
    (SERVER, "in"),
    (SERVER, "agent"),
    (SERVER, "curvse"),
    (SERVER, "renegotiatw"),
    (SERVER, "no-verifzhost"),
    (HTTP_REQUEST, "set-"),
    (HTTP_REQUEST, "sc-in"),
    (HTTP_REQUEST, "dney"),
    (HTTP_REQUEST, "redi"),
    (HTTP_REQUEST, "set-vax(txn.x)"),
    (HTTP_REQUEST, "st-var(txn.x)"),
    (HTTP_REQUEST, "xx"),
    (HTTP_RESPONSE, "edny"),
    (HTTP_RESPONSE, "sc-in"),
    (TCP_CONTENT, "set-l"),
    (TCP_CONTENT, "set-priori"),
    (TCP_CONTENT, "acept"),
    (TCP_CONNECTION, "set-dstp-ort"),
    (TCP_CONNECTION, "expect-proxi"),
    (TCP_RESPONSE, "clse"),
    (TCP_RESPONSE, "set-va(txn.x)"),
];

/// The hint of the first message about `word`: `None` without one, the suggested word
/// otherwise; the outer `None` when no message names the word.
fn hint(messages: &[String], word: &str) -> Option<Option<String>> {
    let quoted = format!("'{word}'");
    let message = messages.iter().find(|m| m.contains(&quoted))?;
    let lower = message.to_ascii_lowercase();
    Some(lower.find("did you mean '").map(|at| {
        let rest = &message[at + "did you mean '".len()..];
        rest.split('\'').next().unwrap_or_default().to_string()
    }))
}

#[test]
fn misspellings_get_haproxys_hints() {
    let test = "proxy_hints";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let mut hinted = 0;
    for (case, (place, word)) in CASES.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}{}",
            place.replace("{}", word)
        );
        let [(_, hapx), (_, haproxy)] = check_text(&dir, case, &text);
        let theirs = hint(&haproxy, word);
        assert!(
            theirs.is_some(),
            "HAProxy has no message about {word}: {haproxy:?}"
        );
        assert_eq!(
            hint(&hapx, word),
            theirs,
            "hint for '{word}' in:\n{text}\nhapx: {hapx:?}\nHAProxy: {haproxy:?}"
        );
        hinted += usize::from(theirs.is_some_and(|h| h.is_some()));
    }
    // Both kinds of answers are compared: most cases get a hint, a few none.
    assert!(hinted >= 30 && hinted < CASES.len(), "{hinted} hints");
}

/// Known global keywords of HAProxy 2.6.12 are not unknown: one hapx does not implement is
/// a warning, and `tune.chksize` is HAProxy's own refusal, word for word.
#[test]
fn known_global_keywords_are_not_misspellings() {
    let test = "proxy_hints_known";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let text = format!("global\n  tune.ssl.keylog on\ndefaults\n  mode http\n{TIMEOUTS}");
    let [(hapx_code, hapx), (haproxy_code, haproxy)] = check_text(&dir, 0, &text);
    // Valid for both (exit 2: nothing listens), HAProxy silently.
    assert_eq!(hapx_code, haproxy_code, "{hapx:?} {haproxy:?}");
    assert!(haproxy.is_empty(), "{haproxy:?}");
    assert!(
        hapx.iter()
            .any(|m| m.starts_with("WARNING: ")
                && m.contains("'tune.ssl.keylog' is not implemented")),
        "{hapx:?}"
    );
    let text = format!("global\n  tune.chksize 1\ndefaults\n  mode http\n{TIMEOUTS}");
    let [(hapx_code, hapx), (haproxy_code, haproxy)] = check_text(&dir, 1, &text);
    assert_ne!(haproxy_code, 0);
    assert_eq!(hapx_code, haproxy_code);
    assert_eq!(hapx, haproxy);
}

/// Runtime API commands HAProxy 2.6 does not know, and known ones it keeps from a socket
/// (expert and experimental mode commands), a few misspelled words in or after a known
/// first one, each typed on a `user`, `operator` and `admin` stats socket.
const CLI_CASES: &[&str] = &[
    "show sta",
    "SHOW sta",
    "shw info",
    "show servers stat",
    "show tabel",
    "get wieght b/s",
    "disable servr b/s",
    "set maxconn srv b/s 1",
    "show proc",
    "show",
    "zzz",
    "a b c d e f g",
    "help show servers",
    "help zzz",
    "debug dev bug",
    "set var proc.x int(1)",
    // Known, above the user and operator levels: refused there.
    "disable server b/s",
    "quit now",
];

const LEVELS: [&str; 3] = ["user", "operator", "admin"];

/// A configuration with a stats socket of each level in `dir`, named `PREFIX-LEVEL.sock`,
/// and a frontend on `port` to know it is up.
fn cli_config(dir: &Path, prefix: &str, port: u16) -> String {
    let sockets: String = LEVELS
        .iter()
        .map(|level| {
            let path = dir.join(format!("{prefix}-{level}.sock"));
            format!("  stats socket {} level {level}\n", path.display())
        })
        .collect();
    format!(
        "global\n{sockets}defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:1\n"
    )
}

#[test]
fn unknown_cli_commands_get_haproxys_close_commands() {
    let test = "proxy_hints_cli";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let started = |prefix: &str, binary: Option<&str>| {
        let port = free_port();
        let ready = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let config = cli_config(&dir, prefix, port);
        match binary {
            None => Proxy::start(&dir, prefix, &config, ready),
            Some(b) => Proxy::start_with(b.into(), &dir, prefix, &config, ready, &[]),
        }
    };
    let _hapx = started("hapx", None);
    let _haproxy = started("haproxy", Some(HAPROXY));
    let mut proposals = 0;
    for level in LEVELS {
        for command in CLI_CASES {
            let ask = |prefix: &str| cli(&dir.join(format!("{prefix}-{level}.sock")), command);
            let theirs = ask("haproxy");
            assert_eq!(
                ask("hapx"),
                theirs,
                "'{command}' on a socket of level {level}"
            );
            proposals += usize::from(theirs.starts_with("Unknown command, but maybe"));
        }
    }
    // Most cases are proposals, at every level; the others are refusals.
    assert_eq!(proposals, 3 * 12, "proposals");
}
