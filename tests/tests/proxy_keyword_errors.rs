//! `-c` on `bind`, `server` and `default-server` keywords written without their argument or
//! with a value HAProxy refuses: hapx-proxy's alerts read as HAProxy 2.6.12's, word for word
//! (`'bind X' in section 'frontend' : 'kw' : ...`, `[file:line] : 'server b/s' : ... .`), and
//! so does the runtime API's answer for the same option on an added crt-list line.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_text, side_by_side};
use hapx_tests::proxy_tls::site_certificate;
use hapx_tests::require;

/// Where the keyword goes (`{}`): each template puts it on line 7, or 3 for `default-server`.
const FRONTEND: &str = "frontend f\n  bind 127.0.0.1:1 {}\n";
const LISTEN: &str = "listen l\n  bind 127.0.0.1:1 {}\n";
const SERVER: &str = "backend b\n  server s 127.0.0.1:1 {}\n";
const DEFAULT_SERVER: &str = "@defaults";

/// The cases: where, and the keyword with its (missing or refused) value.
const CASES: &[(&str, &str)] = &[
    (FRONTEND, "alpn"),
    (FRONTEND, "ssl-min-ver TLSv9"),
    (FRONTEND, "ssl-max-ver"),
    (FRONTEND, "verify"),
    (FRONTEND, "verify sometimes"),
    (FRONTEND, "crt"),
    (FRONTEND, "crt-list"),
    (FRONTEND, "crt-list /nonexistent/sites.list"),
    (FRONTEND, "ca-file"),
    (FRONTEND, "ca-file /nonexistent/ca.pem"),
    (FRONTEND, "crl-file /nonexistent/crl.pem"),
    (FRONTEND, "backlog"),
    (FRONTEND, "backlog -1"),
    (FRONTEND, "id"),
    (FRONTEND, "id x"),
    (FRONTEND, "id 0"),
    (FRONTEND, "proto"),
    (FRONTEND, "ciphers"),
    (FRONTEND, "name"),
    (LISTEN, "alpn"),
    (LISTEN, "ssl-max-ver TLSv9"),
    (SERVER, "sni"),
    (SERVER, "ssl-min-ver TLSv9"),
    (SERVER, "ssl-max-ver"),
    (SERVER, "inter"),
    (SERVER, "inter x"),
    (SERVER, "fastinter 1x"),
    (SERVER, "rise"),
    (SERVER, "rise x"),
    (SERVER, "fall 0"),
    (SERVER, "weight 300"),
    (SERVER, "weight -1"),
    (SERVER, "slowstart"),
    (SERVER, "on-marked-down"),
    (SERVER, "on-marked-up x"),
    (SERVER, "on-error x"),
    (SERVER, "observe x"),
    (SERVER, "verify x"),
    (SERVER, "verifyhost"),
    (SERVER, "crt"),
    (SERVER, "check-sni"),
    (SERVER, "alpn"),
    (SERVER, "check-alpn"),
    (SERVER, "proto x"),
    (SERVER, "resolve-prefer x"),
    (SERVER, "init-addr x"),
    (SERVER, "resolve-net x"),
    (SERVER, "resolve-net"),
    (SERVER, "addr x"),
    (SERVER, "id x"),
    (SERVER, "usesrc x"),
    (SERVER, "pool-purge-delay x"),
    (SERVER, "pool-max-conn -2"),
    (SERVER, "error-limit"),
    (SERVER, "agent-inter"),
    (SERVER, "cookie"),
    (SERVER, "track"),
    (SERVER, "curves x"),
    (SERVER, "chekc"),
    (DEFAULT_SERVER, "sni"),
    (DEFAULT_SERVER, "inter x"),
    (DEFAULT_SERVER, "ssl-max-ver TLSv9"),
    (DEFAULT_SERVER, "rise"),
    (DEFAULT_SERVER, "chekc"),
];

/// The configuration of a case.
fn case_text(place: &str, keyword: &str) -> String {
    if place == DEFAULT_SERVER {
        return format!("defaults\n  mode http\n  default-server {keyword}\n{TIMEOUTS}");
    }
    format!(
        "defaults\n  mode http\n{TIMEOUTS}{}",
        place.replace("{}", keyword)
    )
}

/// hapx-proxy's own answers for a few cases, so that the test says something without
/// HAProxy too: HAProxy's texts, measured (`FILE` for the configuration file).
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        FRONTEND,
        "alpn",
        "ALERT: parsing [FILE:7] : 'bind 127.0.0.1:1' in section 'frontend' : 'alpn' : missing the comma-delimited ALPN protocol suite",
    ),
    (
        FRONTEND,
        "ssl-min-ver TLSv9",
        "ALERT: parsing [FILE:7] : 'bind 127.0.0.1:1' in section 'frontend' : 'TLSv9' : unknown ssl/tls version",
    ),
    (
        SERVER,
        "sni",
        "ALERT: [FILE:7] : 'server b/s' : 'sni' : missing sni expression.",
    ),
    (
        SERVER,
        "ssl-min-ver TLSv9",
        "ALERT: [FILE:7] : 'server b/s' : 'TLSv9' : unknown ssl/tls version.",
    ),
    (
        SERVER,
        "rise x",
        "ALERT: [FILE:7] : 'server b/s' : 'rise' has to be > 0..",
    ),
    (
        DEFAULT_SERVER,
        "chekc",
        "ALERT: [FILE:3] : unknown keyword 'chekc'; did you mean 'check' maybe ? Hint: no address was expected for this server.",
    ),
];

#[test]
fn keyword_argument_errors_read_as_haproxys() {
    let test = "proxy_keyword_errors";
    let dir = temp_dir(test);
    let with_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let mut differ = Vec::new();
    for (case, (place, keyword)) in CASES.iter().enumerate() {
        let text = case_text(place, keyword);
        let file = dir.join(format!("case{case}.cfg"));
        let [hapx, haproxy] = check_text(&dir, case, &text);
        if let Some((_, _, expected)) = EXPECTED.iter().find(|(p, k, _)| p == place && k == keyword)
        {
            let expected = expected.replace("FILE", &file.display().to_string());
            assert_eq!(hapx.1, [expected], "{keyword} in:\n{text}");
        }
        assert_ne!(hapx.0, 0, "{keyword} is refused: {hapx:?}");
        if with_haproxy && hapx != haproxy {
            differ.push(format!(
                "{keyword} in:\n{text}hapx:    {hapx:?}\nHAProxy: {haproxy:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}

/// A command with a payload (`COMMAND <<`, its line, an empty line), as `socat` sends it.
fn cli_payload(sock: &Path, command: &str, payload: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("{command} <<\n{payload}\n\n").as_bytes())
        .expect("sending the command");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `add ssl crt-list` with a line whose version option is unknown: the same words as the
/// configuration's, in HAProxy's runtime answer.
#[test]
fn crt_list_line_with_an_unknown_version_is_refused_as_in_haproxy() {
    let test = "proxy_keyword_errors_crt_list";
    let dir = temp_dir(test);
    let d = dir.display();
    site_certificate(&dir.join("a.pem"), &["a.example"], false);
    site_certificate(&dir.join("b.pem"), &["b.example"], false);
    let list = dir.join("sites.list");
    std::fs::write(&list, format!("{d}/a.pem\n")).unwrap();
    let sock = dir.join("admin.sock");
    let (port, other) = (free_port(), free_port());
    // The added line's certificate must be loaded already: `other` loads it.
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{port} ssl crt-list {list}\n  default_backend be\n\
         frontend other\n  bind 127.0.0.1:{other} ssl crt {d}/b.pem\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        sock = sock.display(),
        list = list.display(),
    );
    let add = format!("add ssl crt-list {}", list.display());
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        vec![
            cli_payload(
                &sock,
                &add,
                &format!("{d}/b.pem [ssl-min-ver TLSv9] x.example"),
            ),
            cli_payload(
                &sock,
                &add,
                &format!("{d}/b.pem [ssl-max-ver SSLv9] x.example"),
            ),
        ]
    });
    assert_eq!(
        ours,
        [
            "Can't edit the crt-list: 'TLSv9' : unknown ssl/tls version\n\n",
            "Can't edit the crt-list: 'SSLv9' : unknown ssl/tls version\n\n",
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// Server numbers HAProxy reads with atol take a word as 0 without a word (`maxconn bogus`:
/// no limit): hapx reads them the same way, so the configuration loads as HAProxy's does,
/// and warns with what it read.
#[test]
fn words_given_as_server_numbers_are_warned_about() {
    let test = "proxy_keyword_words_as_numbers";
    let dir = temp_dir(test);
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}  default-server weight 1x\n\
         backend b\n  server s 127.0.0.1:1 maxconn bogus weight 12 port -3\n"
    );
    let [hapx, haproxy] = check_text(&dir, 0, &text);
    let file = dir.join("case0.cfg");
    let warned = |line: usize, who: &str, kw: &str, v: &str, n: i64| {
        format!(
            "WARNING: parsing [{}:{line}] : '{who}' : '{kw}' : '{v}' is not a number: read as {n}, as HAProxy does.",
            file.display()
        )
    };
    let lines = TIMEOUTS.lines().count();
    assert_eq!(
        hapx.1,
        [
            warned(3 + lines, "default-server", "weight", "1x", 1),
            warned(5 + lines, "server s", "maxconn", "bogus", 0),
        ],
        "{text}"
    );
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(hapx.0, haproxy.0, "both load it: {haproxy:?}");
    }
}
