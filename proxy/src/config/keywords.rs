//! Every keyword HAProxy 2.6 knows in each place, and what hapx does with it.
//!
//! The parser handles the implemented ones itself; these tables say which other words are
//! HAProxy keywords (so they get a "not implemented" warning instead of an "unknown keyword"
//! error) and feed the "did you mean" suggestions. The runtime API's answer to a command
//! HAProxy does not know, its list of close commands, is here too ([`cli_refusal`]).

/// What hapx does with a keyword HAProxy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Implemented.
    Yes,
    /// Accepted without effect, silently: it only matters for a feature that is itself
    /// reported when used (e.g. SSL defaults without any `ssl` bind). Each one is listed with
    /// its reason in the `every_silently_accepted_keyword_has_a_reason` test.
    Accepted,
    /// Known to HAProxy, not implemented by hapx: a warning names the line.
    No,
    /// Known to HAProxy 2.6 only to reject it: the error it prints.
    Removed(&'static str),
}

use Support::{Accepted, No, Removed, Yes};

use super::hint_words::{self, CliKeyword};

pub const SECTIONS: &[(&str, Support)] = &[
    ("global", Yes),
    ("defaults", Yes),
    ("frontend", Yes),
    ("backend", Yes),
    ("listen", Yes),
    ("resolvers", Yes),
    ("peers", Yes),
    ("userlist", Yes),
    ("mailers", No),
    ("program", No),
    ("http-errors", Yes),
    ("ring", Yes),
    ("log-forward", Yes),
    ("cache", No),
    ("fcgi-app", No),
];

pub const GLOBAL: &[(&str, Support)] = &[
    ("daemon", Yes),
    ("chroot", Yes),
    ("user", Yes),
    ("group", Yes),
    ("uid", Yes),
    ("gid", Yes),
    ("pidfile", Yes),
    ("maxconn", Yes),
    ("ulimit-n", Yes),
    ("nbthread", Yes),
    ("stats", Yes),
    ("log", Yes),
    ("log-tag", Yes),
    ("nosplice", Yes),
    ("hard-stop-after", Yes),
    ("node", Yes),
    ("description", Yes),
    ("ca-base", Yes),
    ("crt-base", Yes),
    ("ssl-default-bind-ciphers", Yes),
    ("ssl-default-bind-ciphersuites", Yes),
    ("ssl-default-bind-options", Yes),
    ("ssl-default-bind-curves", Yes),
    ("ssl-default-server-ciphers", Accepted),
    ("ssl-default-server-ciphersuites", Accepted),
    ("ssl-default-server-options", Yes),
    ("ssl-dh-param-file", Accepted),
    ("ssl-server-verify", Yes),
    ("tune.ssl.default-dh-param", Accepted),
    ("spread-checks", Yes),
    ("max-spread-checks", Yes),
    ("log-send-hostname", Yes),
    ("master-worker", Yes),
    (
        "nbproc",
        Removed(
            "nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available.",
        ),
    ),
    ("cpu-map", No),
    ("maxconnrate", Yes),
    ("maxsessrate", Yes),
    ("maxpipes", Yes),
    ("server-state-file", Yes),
    ("server-state-base", Yes),
    ("lua-load", No),
    ("setenv", Yes),
    ("presetenv", Yes),
    ("unsetenv", Yes),
    ("resetenv", Yes),
    ("localpeer", Yes),
    ("expose-experimental-directives", No),
    ("insecure-fork-wanted", No),
    ("external-check", No),
    ("tune.bufsize", No),
    ("tune.maxrewrite", No),
    ("tune.pipesize", No),
    ("quiet", Yes),
    ("busy-polling", No),
    ("noepoll", No),
    ("nopoll", No),
    ("nokqueue", No),
    ("noevports", No),
    ("nogetaddrinfo", No),
    ("noreuseport", No),
    ("set-dumpable", No),
    ("strict-limits", Yes),
    ("h1-case-adjust", Yes),
    ("unix-bind", No),
    ("profiling.tasks", No),
    ("default-path", No),
    ("zero-warning", No),
    ("numa-cpu-mapping", No),
    ("pp2-never-send-local", No),
    ("issuers-chain-path", No),
    ("thread-group", No),
    ("thread-groups", No),
    ("h2-workaround-bogus-websocket-clients", No),
    ("grace", No),
    ("mworker-max-reloads", Yes),
    ("cluster-secret", No),
    ("close-spread-time", No),
    ("fd-hard-limit", No),
    ("h1-accept-payload-with-any-method", No),
    ("h1-case-adjust-file", Yes),
    ("insecure-setuid-wanted", No),
    ("maxsslconn", No),
    ("maxsslrate", No),
    ("maxcomprate", No),
    ("maxcompcpuusage", No),
    ("maxzlibmem", No),
    ("no-memory-trimming", No),
    ("set-var", Yes),
    ("set-var-fmt", Yes),
    ("tune.vars.global-max-size", Yes),
    ("tune.vars.proc-max-size", Yes),
    ("tune.vars.sess-max-size", Yes),
    ("tune.vars.txn-max-size", Yes),
    ("tune.vars.reqres-max-size", Yes),
    ("tune.vars.check-max-size", Yes),
    ("tune.pattern.cache-size", Yes),
    ("tune.pool-low-fd-ratio", Yes),
    ("tune.pool-high-fd-ratio", Yes),
];

pub const PROXY: &[(&str, Support)] = &[
    ("mode", Yes),
    ("bind", Yes),
    ("default_backend", Yes),
    ("balance", Yes),
    ("server", Yes),
    ("default-server", Yes),
    ("option", Yes),
    ("no", Yes),
    ("timeout", Yes),
    ("retries", Yes),
    ("maxconn", Yes),
    ("errorfile", Yes),
    ("stats", Yes),
    ("log", Yes),
    ("tcp-check", Yes),
    ("http-check", Yes),
    ("description", Yes),
    ("disabled", Yes),
    ("enabled", Yes),
    ("id", Yes),
    ("backlog", Yes),
    ("clitcpka-cnt", Yes),
    ("clitcpka-idle", Yes),
    ("clitcpka-intvl", Yes),
    ("srvtcpka-cnt", Yes),
    ("srvtcpka-idle", Yes),
    ("srvtcpka-intvl", Yes),
    ("fullconn", Yes),
    ("hash-type", Yes),
    ("hash-balance-factor", Yes),
    ("bind-process", No),
    ("retry-on", No),
    ("dynamic-cookie-key", Yes),
    ("use-fcgi-app", No),
    ("error-log-format", Yes),
    ("max-session-srv-conns", Yes),
    ("transparent", No),
    (
        "clitimeout",
        Removed(
            "the 'clitimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout client'.",
        ),
    ),
    (
        "contimeout",
        Removed(
            "the 'contimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout connect'.",
        ),
    ),
    (
        "srvtimeout",
        Removed(
            "the 'srvtimeout' directive is not supported anymore since HAProxy 2.1. Use 'timeout server'.",
        ),
    ),
    // HAProxy 2.1 and older keywords, refused with HAProxy 2.6's words (sic).
    (
        "appsession",
        Removed("'appsession' is not supported anymore since HAProxy 1.6."),
    ),
    (
        "block",
        Removed(
            "The 'block' directive is not supported anymore since HAProxy 2.1. Use 'http-request deny' which uses the exact same syntax.",
        ),
    ),
    (
        "redispatch",
        Removed(
            "keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'.",
        ),
    ),
    (
        "reqadd",
        Removed(
            "The 'reqadd' directive is not supported anymore since HAProxy 2.1. Use 'http-request add-header' instead.",
        ),
    ),
    (
        "reqallow",
        Removed(
            "The 'reqallow' directive is not supported anymore since HAProxy 2.1. Use 'http-request allow' instead.",
        ),
    ),
    (
        "reqdel",
        Removed(
            "The 'reqdel' directive is not supported anymore since HAProxy 2.1. Use 'http-request del-header' instead.",
        ),
    ),
    (
        "reqdeny",
        Removed(
            "The 'reqdeny' not supported anymore since HAProxy 2.1. Use 'http-request deny' instead.",
        ),
    ),
    (
        "reqiallow",
        Removed(
            "The 'reqiallow' directive is not supported anymore since HAProxy 2.1. Use 'http-request allow' instead.",
        ),
    ),
    (
        "reqidel",
        Removed(
            "The 'reqidel' directive is not supported anymore since HAProxy 2.1. Use 'http-request del-header' instead.",
        ),
    ),
    (
        "reqideny",
        Removed(
            "The 'reqideny' directive is not supported anymore since HAProxy 2.1. Use 'http-request deny' instead.",
        ),
    ),
    (
        "reqirep",
        Removed(
            "The 'reqirep' directive is not supported anymore since HAProxy 2.1. Use 'http-request replace-header' instead.",
        ),
    ),
    (
        "reqitarpit",
        Removed(
            "The 'reqitarpit' directive is not supported anymore since HAProxy 2.1. Use 'http-request tarpit' instead.",
        ),
    ),
    (
        "reqpass",
        Removed("The 'reqpass' not supported anymore since HAProxy 2.1."),
    ),
    (
        "reqrep",
        Removed(
            "The 'reqrep' directive is not supported anymore since HAProxy 2.1. Use 'http-request replace-path', 'http-request replace-uri' or 'http-request replace-header' instead.",
        ),
    ),
    (
        "reqtarpit",
        Removed(
            "The 'reqtarpit' directive is not supported anymore since HAProxy 2.1. Use 'http-request tarpit' instead.",
        ),
    ),
    (
        "rspadd",
        Removed(
            "The 'rspadd' directive is not supported anymore since HAProxy 2.1. Use 'http-response add-header' instead.",
        ),
    ),
    (
        "rspdel",
        Removed(
            "The 'rspdel' directive is not supported anymore since HAProxy 2.1. Use 'http-response del-header' .",
        ),
    ),
    (
        "rspdeny",
        Removed(
            "The 'rspdeny' directive is not supported anymore since HAProxy 2.1. Use 'http-response deny' instead.",
        ),
    ),
    (
        "rspidel",
        Removed(
            "The 'rspidel' directive is not supported anymore since HAProxy 2.1. Use 'http-response del-header' instead.",
        ),
    ),
    (
        "rspideny",
        Removed(
            "The 'rspideny' directive is not supported anymore since HAProxy 2.1. Use 'http-response deny' instead.",
        ),
    ),
    (
        "rspirep",
        Removed(
            "The 'rspirep' directive is not supported anymore since HAProxy 2.1. Use 'http-response replace-header' instead.",
        ),
    ),
    (
        "rsprep",
        Removed(
            "The 'rsprep' directive is not supported anymore since HAProxy 2.1. Use 'http-response replace-header' instead.",
        ),
    ),
    ("use_backend", Yes),
    ("acl", Yes),
    ("http-request", Yes),
    ("http-response", Yes),
    ("http-after-response", Yes),
    ("tcp-request", Yes),
    ("tcp-response", Yes),
    ("capture", Yes),
    ("cookie", Yes),
    ("compression", No),
    ("redirect", Yes),
    ("monitor-uri", Yes),
    ("monitor", Yes),
    ("unique-id-format", Yes),
    ("unique-id-header", Yes),
    ("log-format", Yes),
    ("log-format-sd", Yes),
    ("log-tag", Yes),
    ("rate-limit", Yes),
    ("http-reuse", Yes),
    ("server-template", Yes),
    ("filter", No),
    ("stick-table", Yes),
    ("stick", Yes),
    ("persist", Yes),
    ("dispatch", No),
    ("source", Yes),
    ("usesrc", Yes),
    ("errorloc", Yes),
    ("errorloc302", Yes),
    ("errorloc303", Yes),
    ("errorfiles", Yes),
    ("http-error", Yes),
    ("email-alert", No),
    ("external-check", No),
    ("load-server-state-from-file", Yes),
    ("server-state-file-name", Yes),
    ("use-server", Yes),
    ("force-persist", Yes),
    ("ignore-persist", Yes),
    ("max-keep-alive-queue", No),
    ("declare", Yes),
    ("http-send-name-header", No),
    ("maxqueue", No),
];

pub const OPTIONS: &[(&str, Support)] = &[
    ("httplog", Yes),
    ("tcplog", Yes),
    ("dontlognull", Yes),
    ("forwardfor", Yes),
    ("redispatch", Yes),
    ("tcp-check", Yes),
    ("httpchk", Yes),
    ("allbackups", Yes),
    ("http-server-close", Yes),
    ("httpclose", Yes),
    ("http-keep-alive", Yes),
    ("splice-auto", Yes),
    ("splice-request", Yes),
    ("splice-response", Yes),
    ("log-health-checks", Yes),
    ("tcpka", Yes),
    ("clitcpka", Yes),
    ("srvtcpka", Yes),
    ("contstats", No),
    ("socket-stats", No),
    ("abortonclose", Yes),
    ("dontlog-normal", Yes),
    ("log-separate-errors", Yes),
    ("http-buffer-request", No),
    ("persist", Yes),
    ("http-no-delay", Yes),
    ("prefer-last-server", Yes),
    ("independent-streams", No),
    ("nolinger", Yes),
    ("transparent", No),
    ("http-pretend-keepalive", No),
    ("accept-invalid-http-request", No),
    ("accept-invalid-http-response", No),
    ("checkcache", No),
    ("http-use-proxy-header", No),
    ("httpslog", No),
    ("mysql-check", Yes),
    ("pgsql-check", Yes),
    ("redis-check", Yes),
    ("smtpchk", Yes),
    ("ssl-hello-chk", Yes),
    ("ldap-check", Yes),
    ("spop-check", No),
    ("external-check", No),
    ("originalto", No),
    ("disable-h2-upgrade", No),
    ("idle-close-on-response", No),
    ("http-ignore-probes", Yes),
    ("http-restrict-req-hdr-names", No),
    ("logasap", Yes),
    ("h1-case-adjust-bogus-client", Yes),
    ("h1-case-adjust-bogus-server", Yes),
    ("tcp-smart-accept", Yes),
    ("tcp-smart-connect", Yes),
];

/// Server keywords: name, how many arguments follow, support.
pub const SERVER: &[(&str, usize, Support)] = &[
    ("check", 0, Yes),
    ("no-check", 0, Yes),
    ("inter", 1, Yes),
    ("fastinter", 1, Yes),
    ("downinter", 1, Yes),
    ("rise", 1, Yes),
    ("fall", 1, Yes),
    ("weight", 1, Yes),
    ("backup", 0, Yes),
    ("no-backup", 0, Yes),
    ("maxconn", 1, Yes),
    ("resolvers", 1, Yes),
    ("resolve-prefer", 1, Yes),
    ("init-addr", 1, Yes),
    ("disabled", 0, Yes),
    ("enabled", 0, Yes),
    ("send-proxy", 0, Yes),
    ("send-proxy-v2", 0, Yes),
    ("no-send-proxy", 0, Yes),
    ("port", 1, Yes),
    ("addr", 1, Yes),
    ("id", 1, Yes),
    ("no-send-proxy-v2", 0, Yes),
    // hapx never speaks TLS nor uses TCP Fast Open to servers: these ask for exactly that.
    ("no-ssl", 0, Yes),
    ("no-tfo", 0, Yes),
    ("no-check-send-proxy", 0, Yes),
    ("no-send-proxy-v2-ssl", 0, No),
    ("no-send-proxy-v2-ssl-cn", 0, No),
    ("resolve-opts", 1, Yes),
    ("resolve-net", 1, Yes),
    ("maxqueue", 1, Yes),
    ("minconn", 1, No),
    ("slowstart", 1, Yes),
    ("on-marked-down", 1, Yes),
    ("on-marked-up", 1, Yes),
    ("on-error", 1, Yes),
    ("error-limit", 1, Yes),
    ("observe", 1, Yes),
    ("ssl", 0, Yes),
    ("verify", 1, Yes),
    ("verifyhost", 1, Yes),
    ("sni", 1, Yes),
    ("ca-file", 1, Yes),
    ("crt", 1, Yes),
    ("check-ssl", 0, Yes),
    ("check-sni", 1, Yes),
    ("check-send-proxy", 0, Yes),
    ("agent-check", 0, Yes),
    ("agent-port", 1, Yes),
    ("agent-inter", 1, Yes),
    ("agent-send", 1, Yes),
    ("cookie", 1, Yes),
    ("track", 1, Yes),
    ("source", 1, Yes),
    ("namespace", 1, No),
    ("proto", 1, Yes),
    ("alpn", 1, Yes),
    ("pool-max-conn", 1, Yes),
    ("pool-purge-delay", 1, Yes),
    ("redir", 1, No),
    ("tfo", 0, No),
    ("socks4", 1, No),
    ("check-via-socks4", 0, No),
    ("check-proto", 1, Yes),
    ("check-alpn", 1, Yes),
    ("crl-file", 1, Yes),
    ("ciphers", 1, Yes),
    ("ciphersuites", 1, Yes),
    ("no-ssl-reuse", 0, Yes),
    ("no-tls-tickets", 0, No),
    ("no-sslv3", 0, Yes),
    ("no-tlsv10", 0, Yes),
    ("no-tlsv11", 0, Yes),
    ("no-tlsv12", 0, Yes),
    ("no-tlsv13", 0, Yes),
    ("ssl-min-ver", 1, Yes),
    ("ssl-max-ver", 1, Yes),
    ("ssl-reuse", 0, Yes),
    ("tls-tickets", 0, No),
    ("force-sslv3", 0, Yes),
    ("force-tlsv10", 0, Yes),
    ("force-tlsv11", 0, Yes),
    ("force-tlsv12", 0, Yes),
    ("force-tlsv13", 0, Yes),
    ("allow-0rtt", 0, No),
    ("npn", 1, No),
    ("ws", 1, No),
    ("usesrc", 1, Yes),
    ("tcp-ut", 1, No),
    ("max-reuse", 1, No),
    ("log-proto", 1, No),
    ("non-stick", 0, Yes),
    ("stick", 0, Yes),
    ("no-agent-check", 0, Yes),
    ("no-check-ssl", 0, Yes),
    ("no-verifyhost", 0, Yes),
    ("send-proxy-v2-ssl", 0, No),
    ("send-proxy-v2-ssl-cn", 0, No),
    ("proxy-v2-options", 1, No),
    // (HAProxy 2.6 has no `curves`, `sigalgs`, `client-sigalgs` nor `set-proxy-v2-tlv-fmt`
    // on servers: unknown keywords there, as here.)
    ("agent-addr", 1, Yes),
    ("pool-low-conn", 1, No),
    ("renegotiate", 0, No),
];

/// Bind keywords: name, how many arguments follow, support.
pub const BIND: &[(&str, usize, Support)] = &[
    ("v6only", 0, Yes),
    ("v4v6", 0, Yes),
    ("backlog", 1, Yes),
    ("accept-proxy", 0, Yes),
    ("transparent", 0, Yes),
    ("name", 1, Accepted),
    ("id", 1, Accepted),
    ("maxconn", 1, Yes),
    ("interface", 1, Yes),
    ("ssl", 0, Yes),
    ("crt", 1, Yes),
    ("crt-list", 1, Yes),
    ("ca-file", 1, Yes),
    ("alpn", 1, Yes),
    ("process", 1, No),
    ("thread", 1, No),
    ("defer-accept", 0, Yes),
    ("tfo", 0, No),
    ("mss", 1, No),
    ("nice", 1, No),
    ("mode", 1, No),
    ("user", 1, No),
    ("group", 1, No),
    ("uid", 1, No),
    ("gid", 1, No),
    ("level", 1, No),
    ("expose-fd", 1, No),
    ("namespace", 1, No),
    ("proto", 1, Yes),
    ("npn", 1, No),
    ("verify", 1, Yes),
    ("ciphers", 1, Yes),
    ("strict-sni", 0, Yes),
    ("accept-netscaler-cip", 1, No),
    ("severity-output", 1, No),
    ("shards", 1, No),
    ("tcp-ut", 1, No),
    ("allow-0rtt", 0, No),
    ("ca-ignore-err", 1, Yes),
    ("ca-sign-file", 1, No),
    ("ca-sign-pass", 1, No),
    ("ca-verify-file", 1, No),
    ("ciphersuites", 1, Yes),
    ("crl-file", 1, Yes),
    ("crt-ignore-err", 1, Yes),
    ("curves", 1, Yes),
    ("ecdhe", 1, No),
    ("force-sslv3", 0, Yes),
    ("force-tlsv10", 0, Yes),
    ("force-tlsv11", 0, Yes),
    ("force-tlsv12", 0, Yes),
    ("force-tlsv13", 0, Yes),
    ("generate-certificates", 0, No),
    ("no-ca-names", 0, No),
    ("no-sslv3", 0, Yes),
    ("no-tls-tickets", 0, No),
    ("no-tlsv10", 0, Yes),
    ("no-tlsv11", 0, Yes),
    ("no-tlsv12", 0, Yes),
    ("no-tlsv13", 0, Yes),
    ("prefer-client-ciphers", 0, No),
    ("ssl-max-ver", 1, Yes),
    ("ssl-min-ver", 1, Yes),
    ("tls-ticket-keys", 1, No),
];

pub const RESOLVERS: &[(&str, Support)] = &[
    ("nameserver", Yes),
    ("resolve_retries", Yes),
    ("timeout", Yes),
    ("hold", Yes),
    ("accepted_payload_size", Yes),
    ("parse-resolv-conf", Yes),
];

/// Where a keyword is written: which table answers for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Section,
    Global,
    /// A line in a defaults, frontend, backend or listen section.
    Proxy,
    /// `option NAME` in a proxy.
    Option,
    /// An option on a `bind` line.
    Bind,
    /// An option on a `server` or `default-server` line.
    Server,
    Resolvers,
}

/// What hapx does with `word` written at `scope`; `None` when HAProxy 2.6 does not know it
/// either (an error).
pub fn support(scope: Scope, word: &str) -> Option<Support> {
    let in_args = |table: &[(&str, usize, Support)]| lookup_args(table, word).map(|(_, s)| s);
    match scope {
        Scope::Section => lookup(SECTIONS, word),
        // Any other of HAProxy 2.6.12's own (`tune.bufsize`, `ssl-engine` ...) is known, not
        // implemented; a misspelled one is unknown, as there.
        Scope::Global => {
            lookup(GLOBAL, word).or_else(|| hint_words::GLOBAL.contains(&word).then_some(No))
        }
        Scope::Proxy => lookup(PROXY, word),
        Scope::Option => lookup(OPTIONS, word),
        Scope::Bind => in_args(BIND),
        Scope::Server => in_args(SERVER),
        Scope::Resolvers => lookup(RESOLVERS, word),
    }
}

/// Every keyword of every table, with where it is written.
pub fn all() -> Vec<(Scope, &'static str, Support)> {
    let plain = |scope: Scope, table: &'static [(&'static str, Support)]| {
        table.iter().map(move |(n, s)| (scope, *n, *s))
    };
    let args = |scope: Scope, table: &'static [(&'static str, usize, Support)]| {
        table.iter().map(move |(n, _, s)| (scope, *n, *s))
    };
    plain(Scope::Section, SECTIONS)
        .chain(plain(Scope::Global, GLOBAL))
        .chain(plain(Scope::Proxy, PROXY))
        .chain(plain(Scope::Option, OPTIONS))
        .chain(args(Scope::Bind, BIND))
        .chain(args(Scope::Server, SERVER))
        .chain(plain(Scope::Resolvers, RESOLVERS))
        .collect()
}

/// HAProxy's `cfg_find_best_match`, `proxy_find_best_option`, `bind_find_best_kw` and
/// `srv_find_best_kw`: the first of `candidates` closest to `word` by
/// [`fingerprint_distance`], unless that distance is over twice the length of the word or
/// of the candidate (then nothing looks close enough).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for candidate in candidates {
        let d = fingerprint_distance(word, candidate);
        if best.is_none_or(|(_, best_d)| d < best_d) {
            best = Some((candidate, d));
        }
    }
    best.filter(|(c, d)| *d <= 2 * word.len() && *d <= 2 * c.len())
        .map(|(c, _)| c)
}

/// HAProxy's `word_fingerprint_distance` of two words' `make_word_fingerprint`s: the sum
/// of the differences of their [`fingerprint`] bytes. HAProxy's action, keyword and CLI
/// suggestions pick the candidate closest by it.
pub fn fingerprint_distance(a: &str, b: &str) -> usize {
    counts_distance(&fingerprint([a]), &fingerprint([b]))
}

/// HAProxy's `word_fingerprint_distance`: the sum of the differences of two fingerprints'
/// bytes.
fn counts_distance(a: &[u8; 1024], b: &[u8; 1024]) -> usize {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| usize::from(x.abs_diff(*y)))
        .sum()
}

/// HAProxy 2.6's `update_word_fingerprint` of each of `words` on a zeroed array (one word:
/// its `make_word_fingerprint`; several: the CLI's fingerprint of a command's words):
/// 1024 bytes indexed `32 * from + to`, counting each transition between character
/// classes (1-26 a letter whatever its case, 27 a digit, 28 any other byte and also each
/// word's start and end), with row 0 marking which classes occur at all. The counts are
/// bytes that wrap past 255, as HAProxy's `uint8_t`s, so a long word compares as there.
fn fingerprint<'a>(words: impl IntoIterator<Item = &'a str>) -> [u8; 1024] {
    let mut counts = [0u8; 1024];
    for word in words {
        update_fingerprint(&mut counts, word);
    }
    counts
}

/// Adds one word's transitions to `counts` (see [`fingerprint`]).
fn update_fingerprint(counts: &mut [u8; 1024], word: &str) {
    const OTHER: usize = 28;
    let mut from = OTHER;
    for byte in word.bytes() {
        let to = match byte.to_ascii_lowercase() {
            c @ b'a'..=b'z' => usize::from(c - b'a') + 1,
            b'0'..=b'9' => 27,
            _ => OTHER,
        };
        counts[to] = 1;
        counts[32 * from + to] = counts[32 * from + to].wrapping_add(1);
        from = to;
    }
    counts[32 * from + OTHER] = counts[32 * from + OTHER].wrapping_add(1);
}

/// Looks a keyword up in a `(name, support)` table.
pub fn lookup(table: &[(&str, Support)], word: &str) -> Option<Support> {
    table.iter().find(|(n, _)| *n == word).map(|(_, s)| *s)
}

/// Looks a keyword up in a `(name, args, support)` table.
pub fn lookup_args(table: &[(&str, usize, Support)], word: &str) -> Option<(usize, Support)> {
    table
        .iter()
        .find(|(n, _, _)| *n == word)
        .map(|(_, a, s)| (*a, *s))
}

/// The `ACCESS_*` bits of a stats socket's (or a worker's master-passed) CLI session,
/// beside its level: no master bits, and never in expert or experimental mode.
pub const WORKER_CLI: u16 = 0;
/// The master CLI's session bits (HAProxy's `ACCESS_MASTER | ACCESS_MASTER_ONLY`).
pub const MASTER_CLI: u16 = hint_words::MASTER | hint_words::MASTER_ONLY;

/// How many words name a CLI keyword at most, and are compared (`CLI_PREFIX_KW_NB`).
const CLI_PREFIX_KW_NB: usize = 5;
/// How many close keywords the CLI proposes at most (`CLI_MAX_MATCHES`).
const CLI_MAX_MATCHES: usize = 5;

/// HAProxy 2.6's `cli_find_kw`: the first CLI keyword whose words begin the command's.
pub fn cli_keyword(args: &[&str]) -> Option<&'static CliKeyword> {
    hint_words::CLI.iter().find(|kw| args.starts_with(kw.words))
}

/// What HAProxy 2.6's `cli_parse_request` answers a session with `access` bits
/// ([`WORKER_CLI`], [`MASTER_CLI`]) to the command `args` before running it: the list of
/// close commands ([`cli_usage`]) when it names no keyword this session sees, the
/// expert/experimental mode refusal; None when the command runs (its level is checked by
/// the command itself, "Permission denied").
pub fn cli_refusal(args: &[&str], access: u16) -> Option<String> {
    use hint_words::{EXPERIMENTAL, EXPERT, MASTER_ONLY};
    let Some(kw) = cli_keyword(args).filter(|kw| {
        kw.access & !access & MASTER_ONLY == 0 && !hidden_from_master(kw.access, access)
    }) else {
        return Some(cli_usage(args, access));
    };
    let missing = kw.access & !access;
    if missing & EXPERT != 0 {
        Some("This command is restricted to expert mode only.\n".into())
    } else if missing & EXPERIMENTAL != 0 {
        Some("This command is restricted to experimental mode only.\n".into())
    } else {
        None
    }
}

/// Whether the master CLI leaves out a keyword with these `ACCESS_*` bits: one of a
/// worker only (neither `ACCESS_MASTER` nor `ACCESS_MASTER_ONLY`).
fn hidden_from_master(kw_access: u16, access: u16) -> bool {
    let master = hint_words::MASTER | hint_words::MASTER_ONLY;
    access & !kw_access & master == master
}

/// Whether a session with `access` bits sees a keyword (in `help` and the proposals): not
/// one of the master only, expert or experimental mode unless it is so, nor one of a
/// worker only on the master CLI.
fn cli_visible(kw: &CliKeyword, access: u16) -> bool {
    use hint_words::{EXPERIMENTAL, EXPERT, MASTER_ONLY};
    kw.access & !access & (MASTER_ONLY | EXPERT | EXPERIMENTAL) == 0
        && !hidden_from_master(kw.access, access)
}

/// How many of the first words (at most [`CLI_PREFIX_KW_NB`]) a keyword and a command share.
fn shared_words(kw: &[&str], args: &[&str]) -> usize {
    kw.iter()
        .zip(args)
        .take(CLI_PREFIX_KW_NB)
        .take_while(|(k, a)| k == a)
        .count()
}

/// HAProxy 2.6's `cli_gen_usage_msg`: the answer to `help [WORDS]` or to an unknown
/// command. Of the keywords the session sees that share the command's longest run of
/// exact first words, those whose remaining words (up to the fifth) are close to the
/// command's: their fingerprint (all the words' transitions together) at a distance under
/// 5/2 of both sides' summed lengths, the [`CLI_MAX_MATCHES`] closest (the first ones on a
/// tie) within 5/2 of the best; when none is close, all of them. Listed by their usage
/// line, then `help`, `prompt` and `quit`.
pub fn cli_usage(args: &[&str], access: u16) -> String {
    let (help, args) = match args {
        ["help", rest @ ..] => (true, rest),
        _ => (false, args),
    };
    let visible = || hint_words::CLI.iter().filter(|kw| cli_visible(kw, access));
    let length = visible()
        .map(|kw| shared_words(kw.words, args))
        .max()
        .unwrap_or(0);
    let header = if help {
        "The following commands are valid at this level:"
    } else if length == 0 && args.is_empty() {
        "Unknown command. Please enter one of the following commands only:"
    } else {
        "Unknown command, but maybe one of the following ones is a better match:"
    };
    let candidates: Vec<(&CliKeyword, &str)> = visible()
        .filter(|kw| kw.words.len() >= length && kw.words[..length] == args[..length])
        .filter_map(|kw| Some((kw, kw.usage?)))
        .collect();
    let mut usages: Vec<&str> = match closest_cli_keywords(&candidates, args, length) {
        close if close.is_empty() => candidates.iter().map(|(_, usage)| *usage).collect(),
        close => close,
    };
    usages.sort_unstable();
    let mut out = format!("{header}\n");
    for usage in usages {
        out.push_str(&format!("  {usage}\n"));
    }
    out.push_str(concat!(
        "  help [<command>]                        : list matching or all commands\n",
        "  prompt                                  : toggle interactive mode with prompt\n",
        "  quit                                    : disconnect\n",
    ));
    out
}

/// The usage lines of the `candidates` (keyword, usage) whose words past the `shared`
/// first ones are close to the command's (see [`cli_usage`]); none when the command has no
/// more words.
fn closest_cli_keywords<'a>(
    candidates: &[(&CliKeyword, &'a str)],
    args: &[&str],
    shared: usize,
) -> Vec<&'a str> {
    let typed = &args[shared..args.len().min(CLI_PREFIX_KW_NB).max(shared)];
    if typed.is_empty() {
        return Vec::new();
    }
    let typed_print = fingerprint(typed.iter().copied());
    let typed_len: usize = typed.iter().map(|w| w.len()).sum();
    // The closest first; an equally close one after those already kept, as HAProxy's
    // insertion keeps them.
    let mut closest: Vec<(usize, &str)> = Vec::with_capacity(CLI_MAX_MATCHES + 1);
    for (kw, usage) in candidates {
        let own = &kw.words[shared..];
        let dist = counts_distance(&typed_print, &fingerprint(own.iter().copied()));
        let total_len = typed_len + own.iter().map(|w| w.len()).sum::<usize>();
        if dist >= 5 * total_len / 2 {
            continue;
        }
        let at = closest.partition_point(|(d, _)| *d <= dist);
        if at < CLI_MAX_MATCHES {
            closest.insert(at, (dist, usage));
            closest.truncate(CLI_MAX_MATCHES);
        }
    }
    let best = closest.first().map_or(0, |(d, _)| *d);
    closest
        .into_iter()
        .take_while(|(d, _)| *d <= 5 * best / 2)
        .map(|(_, usage)| usage)
        .collect()
}

/// Every sample fetch HAProxy 2.6 registers (`haproxy -dKsmp`): one hapx does not implement is
/// a warning, not an unknown word.
pub const FETCHES: &[&str] = &[
    "always_false",
    "always_true",
    "avg_queue",
    "base",
    "base32",
    "base32+src",
    "baseq",
    "bc_dst",
    "bc_dst_port",
    "bc_err",
    "bc_err_str",
    "bc_http_major",
    "bc_src",
    "bc_src_port",
    "be_conn",
    "be_conn_free",
    "be_id",
    "be_name",
    "be_server_timeout",
    "be_sess_rate",
    "be_tunnel_timeout",
    "bin",
    "bool",
    "capture.req.hdr",
    "capture.req.method",
    "capture.req.uri",
    "capture.req.ver",
    "capture.res.hdr",
    "capture.res.ver",
    "connslots",
    "cook",
    "cook_cnt",
    "cook_val",
    "cookie",
    "cpu_calls",
    "cpu_ns_avg",
    "cpu_ns_tot",
    "cur_server_timeout",
    "cur_tunnel_timeout",
    "date",
    "date_us",
    "distcc_body",
    "distcc_param",
    "dst",
    "dst_conn",
    "dst_is_local",
    "dst_port",
    "env",
    "fc_dst",
    "fc_dst_is_local",
    "fc_dst_port",
    "fc_err",
    "fc_err_str",
    "fc_fackets",
    "fc_http_major",
    "fc_lost",
    "fc_pp_authority",
    "fc_pp_unique_id",
    "fc_rcvd_proxy",
    "fc_reordering",
    "fc_retrans",
    "fc_rtt",
    "fc_rttvar",
    "fc_sacked",
    "fc_src",
    "fc_src_is_local",
    "fc_src_port",
    "fc_unacked",
    "fcgi.docroot",
    "fcgi.index",
    "fe_client_timeout",
    "fe_conn",
    "fe_defbe",
    "fe_id",
    "fe_name",
    "fe_req_rate",
    "fe_sess_rate",
    "hdr",
    "hdr_cnt",
    "hdr_ip",
    "hdr_val",
    "hostname",
    "http_auth",
    "http_auth_bearer",
    "http_auth_group",
    "http_auth_pass",
    "http_auth_type",
    "http_auth_user",
    "http_first_req",
    "int",
    "internal.htx.data",
    "internal.htx.free",
    "internal.htx.free_data",
    "internal.htx.has_eom",
    "internal.htx.nbblks",
    "internal.htx.size",
    "internal.htx.used",
    "internal.htx_blk.data",
    "internal.htx_blk.hdrname",
    "internal.htx_blk.hdrval",
    "internal.htx_blk.size",
    "internal.htx_blk.start_line",
    "internal.htx_blk.type",
    "internal.strm.is_htx",
    "ipv4",
    "ipv6",
    "last_rule_file",
    "last_rule_line",
    "lat_ns_avg",
    "lat_ns_tot",
    "meth",
    "method",
    "nbproc",
    "nbsrv",
    "path",
    "pathq",
    "payload",
    "payload_lv",
    "prio_class",
    "prio_offset",
    "proc",
    "query",
    "queue",
    "rand",
    "rdp_cookie",
    "rdp_cookie_cnt",
    "rep_ssl_hello_type",
    "req.body",
    "req.body_len",
    "req.body_param",
    "req.body_size",
    "req.cook",
    "req.cook_cnt",
    "req.cook_val",
    "req.fhdr",
    "req.fhdr_cnt",
    "req.hdr",
    "req.hdr_cnt",
    "req.hdr_ip",
    "req.hdr_names",
    "req.hdr_val",
    "req.hdrs",
    "req.hdrs_bin",
    "req.len",
    "req.payload",
    "req.payload_lv",
    "req.proto_http",
    "req.rdp_cookie",
    "req.rdp_cookie_cnt",
    "req.ssl_alpn",
    "req.ssl_ec_ext",
    "req.ssl_hello_type",
    "req.ssl_sni",
    "req.ssl_st_ext",
    "req.ssl_ver",
    "req.ver",
    "req_len",
    "req_proto_http",
    "req_ssl_hello_type",
    "req_ssl_sni",
    "req_ssl_ver",
    "req_ver",
    "res.body",
    "res.body_len",
    "res.body_size",
    "res.cache_hit",
    "res.cache_name",
    "res.comp",
    "res.comp_algo",
    "res.cook",
    "res.cook_cnt",
    "res.cook_val",
    "res.fhdr",
    "res.fhdr_cnt",
    "res.hdr",
    "res.hdr_cnt",
    "res.hdr_ip",
    "res.hdr_names",
    "res.hdr_val",
    "res.hdrs",
    "res.hdrs_bin",
    "res.len",
    "res.payload",
    "res.payload_lv",
    "res.ssl_hello_type",
    "res.ver",
    "resp_ver",
    "sc0_bytes_in_rate",
    "sc0_bytes_out_rate",
    "sc0_clr_gpc0",
    "sc0_clr_gpc1",
    "sc0_conn_cnt",
    "sc0_conn_cur",
    "sc0_conn_rate",
    "sc0_get_gpc0",
    "sc0_get_gpc1",
    "sc0_get_gpt0",
    "sc0_gpc0_rate",
    "sc0_gpc1_rate",
    "sc0_http_err_cnt",
    "sc0_http_err_rate",
    "sc0_http_fail_cnt",
    "sc0_http_fail_rate",
    "sc0_http_req_cnt",
    "sc0_http_req_rate",
    "sc0_inc_gpc0",
    "sc0_inc_gpc1",
    "sc0_kbytes_in",
    "sc0_kbytes_out",
    "sc0_sess_cnt",
    "sc0_sess_rate",
    "sc0_tracked",
    "sc0_trackers",
    "sc1_bytes_in_rate",
    "sc1_bytes_out_rate",
    "sc1_clr_gpc",
    "sc1_clr_gpc0",
    "sc1_clr_gpc1",
    "sc1_conn_cnt",
    "sc1_conn_cur",
    "sc1_conn_rate",
    "sc1_get_gpc0",
    "sc1_get_gpc1",
    "sc1_get_gpt0",
    "sc1_gpc0_rate",
    "sc1_gpc1_rate",
    "sc1_http_err_cnt",
    "sc1_http_err_rate",
    "sc1_http_fail_cnt",
    "sc1_http_fail_rate",
    "sc1_http_req_cnt",
    "sc1_http_req_rate",
    "sc1_inc_gpc0",
    "sc1_inc_gpc1",
    "sc1_kbytes_in",
    "sc1_kbytes_out",
    "sc1_sess_cnt",
    "sc1_sess_rate",
    "sc1_tracked",
    "sc1_trackers",
    "sc2_bytes_in_rate",
    "sc2_bytes_out_rate",
    "sc2_clr_gpc0",
    "sc2_clr_gpc1",
    "sc2_conn_cnt",
    "sc2_conn_cur",
    "sc2_conn_rate",
    "sc2_get_gpc0",
    "sc2_get_gpc1",
    "sc2_get_gpt0",
    "sc2_gpc0_rate",
    "sc2_gpc1_rate",
    "sc2_http_err_cnt",
    "sc2_http_err_rate",
    "sc2_http_fail_cnt",
    "sc2_http_fail_rate",
    "sc2_http_req_cnt",
    "sc2_http_req_rate",
    "sc2_inc_gpc0",
    "sc2_inc_gpc1",
    "sc2_kbytes_in",
    "sc2_kbytes_out",
    "sc2_sess_cnt",
    "sc2_sess_rate",
    "sc2_tracked",
    "sc2_trackers",
    "sc_bytes_in_rate",
    "sc_bytes_out_rate",
    "sc_clr_gpc",
    "sc_clr_gpc0",
    "sc_clr_gpc1",
    "sc_conn_cnt",
    "sc_conn_cur",
    "sc_conn_rate",
    "sc_get_gpc",
    "sc_get_gpc0",
    "sc_get_gpc1",
    "sc_get_gpt",
    "sc_get_gpt0",
    "sc_gpc0_rate",
    "sc_gpc1_rate",
    "sc_gpc_rate",
    "sc_http_err_cnt",
    "sc_http_err_rate",
    "sc_http_fail_cnt",
    "sc_http_fail_rate",
    "sc_http_req_cnt",
    "sc_http_req_rate",
    "sc_inc_gpc",
    "sc_inc_gpc0",
    "sc_inc_gpc1",
    "sc_kbytes_in",
    "sc_kbytes_out",
    "sc_sess_cnt",
    "sc_sess_rate",
    "sc_tracked",
    "sc_trackers",
    "scook",
    "scook_cnt",
    "scook_val",
    "shdr",
    "shdr_cnt",
    "shdr_ip",
    "shdr_val",
    "so_id",
    "so_name",
    "src",
    "src_bytes_in_rate",
    "src_bytes_out_rate",
    "src_clr_gpc",
    "src_clr_gpc0",
    "src_clr_gpc1",
    "src_conn_cnt",
    "src_conn_cur",
    "src_conn_rate",
    "src_get_gpc",
    "src_get_gpc0",
    "src_get_gpc1",
    "src_get_gpt",
    "src_get_gpt0",
    "src_gpc0_rate",
    "src_gpc1_rate",
    "src_gpc_rate",
    "src_http_err_cnt",
    "src_http_err_rate",
    "src_http_fail_cnt",
    "src_http_fail_rate",
    "src_http_req_cnt",
    "src_http_req_rate",
    "src_inc_gpc",
    "src_inc_gpc0",
    "src_inc_gpc1",
    "src_is_local",
    "src_kbytes_in",
    "src_kbytes_out",
    "src_port",
    "src_sess_cnt",
    "src_sess_rate",
    "src_updt_conn_cnt",
    "srv_conn",
    "srv_conn_free",
    "srv_id",
    "srv_is_up",
    "srv_iweight",
    "srv_name",
    "srv_queue",
    "srv_sess_rate",
    "srv_uweight",
    "srv_weight",
    "ssl_bc",
    "ssl_bc_alg_keysize",
    "ssl_bc_alpn",
    "ssl_bc_cipher",
    "ssl_bc_client_random",
    "ssl_bc_err",
    "ssl_bc_err_str",
    "ssl_bc_is_resumed",
    "ssl_bc_npn",
    "ssl_bc_protocol",
    "ssl_bc_server_random",
    "ssl_bc_session_id",
    "ssl_bc_session_key",
    "ssl_bc_unique_id",
    "ssl_bc_use_keysize",
    "ssl_c_ca_err",
    "ssl_c_ca_err_depth",
    "ssl_c_chain_der",
    "ssl_c_der",
    "ssl_c_err",
    "ssl_c_i_dn",
    "ssl_c_key_alg",
    "ssl_c_notafter",
    "ssl_c_notbefore",
    "ssl_c_s_dn",
    "ssl_c_serial",
    "ssl_c_sha1",
    "ssl_c_sig_alg",
    "ssl_c_used",
    "ssl_c_verify",
    "ssl_c_version",
    "ssl_f_der",
    "ssl_f_i_dn",
    "ssl_f_key_alg",
    "ssl_f_notafter",
    "ssl_f_notbefore",
    "ssl_f_s_dn",
    "ssl_f_serial",
    "ssl_f_sha1",
    "ssl_f_sig_alg",
    "ssl_f_version",
    "ssl_fc",
    "ssl_fc_alg_keysize",
    "ssl_fc_alpn",
    "ssl_fc_cipher",
    "ssl_fc_cipherlist_bin",
    "ssl_fc_cipherlist_hex",
    "ssl_fc_cipherlist_str",
    "ssl_fc_cipherlist_xxh",
    "ssl_fc_client_early_traffic_secret",
    "ssl_fc_client_handshake_traffic_secret",
    "ssl_fc_client_random",
    "ssl_fc_client_traffic_secret_0",
    "ssl_fc_early_exporter_secret",
    "ssl_fc_ecformats_bin",
    "ssl_fc_eclist_bin",
    "ssl_fc_err",
    "ssl_fc_err_str",
    "ssl_fc_exporter_secret",
    "ssl_fc_extlist_bin",
    "ssl_fc_has_crt",
    "ssl_fc_has_early",
    "ssl_fc_has_sni",
    "ssl_fc_is_resumed",
    "ssl_fc_npn",
    "ssl_fc_protocol",
    "ssl_fc_protocol_hello_id",
    "ssl_fc_server_handshake_traffic_secret",
    "ssl_fc_server_random",
    "ssl_fc_server_traffic_secret_0",
    "ssl_fc_session_id",
    "ssl_fc_session_key",
    "ssl_fc_sni",
    "ssl_fc_unique_id",
    "ssl_fc_use_keysize",
    "ssl_s_chain_der",
    "ssl_s_der",
    "ssl_s_i_dn",
    "ssl_s_key_alg",
    "ssl_s_notafter",
    "ssl_s_notbefore",
    "ssl_s_s_dn",
    "ssl_s_serial",
    "ssl_s_sha1",
    "ssl_s_sig_alg",
    "ssl_s_version",
    "status",
    "stopping",
    "str",
    "table_avl",
    "table_cnt",
    "thread",
    "unique-id",
    "url",
    "url32",
    "url32+src",
    "url_ip",
    "url_param",
    "url_port",
    "urlp",
    "urlp_val",
    "uuid",
    "var",
    "wait_end",
];

/// Every converter HAProxy 2.6 registers (`haproxy -dKcnv`).
pub const CONVERTERS: &[&str] = &[
    "add",
    "add_item",
    "aes_gcm_dec",
    "and",
    "b64dec",
    "base64",
    "be2dec",
    "be2hex",
    "bool",
    "bytes",
    "capture-req",
    "capture-res",
    "concat",
    "cpl",
    "crc32",
    "crc32c",
    "cut_crlf",
    "debug",
    "digest",
    "div",
    "djb2",
    "even",
    "field",
    "fix_is_valid",
    "fix_tag_value",
    "hex",
    "hex2i",
    "hmac",
    "host_only",
    "htonl",
    "http_date",
    "iif",
    "in_table",
    "ipmask",
    "json",
    "json_query",
    "jwt_header_query",
    "jwt_payload_query",
    "jwt_verify",
    "language",
    "length",
    "lower",
    "ltime",
    "ltrim",
    "map",
    "map_beg",
    "map_beg_int",
    "map_beg_ip",
    "map_dir",
    "map_dir_int",
    "map_dir_ip",
    "map_dom",
    "map_dom_int",
    "map_dom_ip",
    "map_end",
    "map_end_int",
    "map_end_ip",
    "map_int",
    "map_int_int",
    "map_int_ip",
    "map_ip",
    "map_ip_int",
    "map_ip_ip",
    "map_reg",
    "map_reg_int",
    "map_reg_ip",
    "map_regm",
    "map_str",
    "map_str_int",
    "map_str_ip",
    "map_sub",
    "map_sub_int",
    "map_sub_ip",
    "mod",
    "mqtt_field_value",
    "mqtt_is_valid",
    "mul",
    "nbsrv",
    "neg",
    "not",
    "odd",
    "or",
    "port_only",
    "protobuf",
    "regsub",
    "rtrim",
    "sdbm",
    "secure_memcmp",
    "set-var",
    "sha1",
    "sha2",
    "srv_queue",
    "strcmp",
    "sub",
    "table_bytes_in_rate",
    "table_bytes_out_rate",
    "table_conn_cnt",
    "table_conn_cur",
    "table_conn_rate",
    "table_expire",
    "table_gpc",
    "table_gpc0",
    "table_gpc0_rate",
    "table_gpc1",
    "table_gpc1_rate",
    "table_gpc_rate",
    "table_gpt",
    "table_gpt0",
    "table_http_err_cnt",
    "table_http_err_rate",
    "table_http_fail_cnt",
    "table_http_fail_rate",
    "table_http_req_cnt",
    "table_http_req_rate",
    "table_idle",
    "table_kbytes_in",
    "table_kbytes_out",
    "table_server_id",
    "table_sess_cnt",
    "table_sess_rate",
    "table_trackers",
    "ub64dec",
    "ub64enc",
    "ungrpc",
    "unset-var",
    "upper",
    "url_dec",
    "url_enc",
    "utime",
    "word",
    "wt6",
    "xor",
    "xxh3",
    "xxh32",
    "xxh64",
];

/// The `http-request`/`http-response` actions HAProxy 2.6 knows (`(*)` forms by their stem).
pub const HTTP_ACTIONS: &[&str] = &[
    "wait-for-handshake",
    "ot-group",
    "set-log-level",
    "set-nice",
    "use-service",
    "sc-inc-gpc",
    "sc-inc-gpc0",
    "sc-inc-gpc1",
    "sc-set-gpt",
    "sc-set-gpt0",
    "send-spoe-group",
    "do-resolve",
    "cache-use",
    "add-acl",
    "add-header",
    "allow",
    "auth",
    "capture",
    "del-acl",
    "del-header",
    "del-map",
    "deny",
    "disable-l7-retry",
    "early-hint",
    "normalize-uri",
    "redirect",
    "reject",
    "replace-header",
    "replace-path",
    "replace-pathq",
    "replace-uri",
    "replace-value",
    "return",
    "set-header",
    "set-map",
    "set-method",
    "set-path",
    "set-pathq",
    "set-query",
    "set-uri",
    "strict-mode",
    "tarpit",
    "track-sc0",
    "track-sc1",
    "track-sc2",
    "set-timeout",
    "wait-for-body",
    "set-var-fmt",
    "set-var",
    "unset-var",
    "set-dst",
    "set-dst-port",
    "set-mark",
    "set-src",
    "set-src-port",
    "set-tos",
    "silent-drop",
    "set-priority-class",
    "set-priority-offset",
];

/// The ACL keywords HAProxy 2.6 registers besides its fetches (`haproxy -dKacl`).
pub const ACL_KEYWORDS: &[&str] = &[
    "base",
    "base_beg",
    "base_dir",
    "base_dom",
    "base_end",
    "base_len",
    "base_reg",
    "base_sub",
    "cook",
    "cook_beg",
    "cook_dir",
    "cook_dom",
    "cook_end",
    "cook_len",
    "cook_reg",
    "cook_sub",
    "hdr",
    "hdr_beg",
    "hdr_dir",
    "hdr_dom",
    "hdr_end",
    "hdr_len",
    "hdr_reg",
    "hdr_sub",
    "http_auth_group",
    "method",
    "path",
    "path_beg",
    "path_dir",
    "path_dom",
    "path_end",
    "path_len",
    "path_reg",
    "path_sub",
    "payload",
    "payload_lv",
    "req.ssl_ver",
    "req_rdp_cookie",
    "req_rdp_cookie_cnt",
    "req_ssl_sni",
    "req_ssl_ver",
    "req_ver",
    "resp_ver",
    "scook",
    "scook_beg",
    "scook_dir",
    "scook_dom",
    "scook_end",
    "scook_len",
    "scook_reg",
    "scook_sub",
    "shdr",
    "shdr_beg",
    "shdr_dir",
    "shdr_dom",
    "shdr_end",
    "shdr_len",
    "shdr_reg",
    "shdr_sub",
    "ssl_fc_sni_end",
    "ssl_fc_sni_reg",
    "url",
    "url_beg",
    "url_dir",
    "url_dom",
    "url_end",
    "url_len",
    "url_reg",
    "url_sub",
    "urlp",
    "urlp_beg",
    "urlp_dir",
    "urlp_dom",
    "urlp_end",
    "urlp_len",
    "urlp_reg",
    "urlp_sub",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_counts_wrap_as_haproxys_bytes() {
        // 39 999 `a`→`a` transitions: 63 mod 256, against none in `a`, one in `aa`.
        let long = "a".repeat(40_000);
        assert_eq!(fingerprint_distance(&long, "a"), 63);
        assert_eq!(fingerprint_distance("aa", &long), 62);
        // 256 transitions wrap to none: the word counts as `a`.
        assert_eq!(fingerprint_distance(&"a".repeat(257), "a"), 0);
        assert_eq!(fingerprint_distance("set-var", "set-var"), 0);
        assert_eq!(fingerprint_distance("ab", "ba"), 6);
    }

    /// HAProxy 2.6's classes: letters of either case alike, digits as one, and any other
    /// byte as the word's start and end (so `-` differs from the empty word only by its
    /// presence and one more start/end transition), each class's presence counted once.
    #[test]
    fn fingerprint_classes_are_haproxys() {
        assert_eq!(fingerprint_distance("Set-VAR", "set-var"), 0);
        assert_eq!(fingerprint_distance("-", ""), 2);
        assert_eq!(fingerprint_distance("a1", "a9"), 0);
        assert_eq!(fingerprint_distance("a1", "a-"), 6);
        // `aa` and `a` differ by one `a`->`a` transition; presence counts once.
        assert_eq!(fingerprint_distance("aa", "a"), 1);
    }

    /// HAProxy's answers (2.6.12) among its own candidates, in its order.
    #[test]
    fn suggests_close_keywords_only() {
        use crate::config::hint_words;
        let proxy = || hint_words::PROXY.iter().copied();
        assert_eq!(suggest("balanse", proxy()), Some("balance"));
        assert_eq!(suggest("bala", proxy()), Some("balance"));
        assert_eq!(suggest("defualt_backend", proxy()), Some("default_backend"));
        assert_eq!(suggest("zzzzzz", proxy()), None);
        // The best one is over twice the word's length away.
        assert_eq!(suggest("nos", proxy()), None);
        let bind = || hint_words::BIND.iter().copied();
        assert_eq!(suggest("gd", bind()), Some("gid"));
        assert_eq!(suggest("in", bind()), None);
        let server = || hint_words::SERVER.iter().copied();
        assert_eq!(suggest("agent", server()), Some("agent-addr"));
        assert_eq!(suggest("", server()), None);
    }

    /// HAProxy 2.6.12's stats socket answers (measured): the words after the exact ones
    /// are compared together; a master-only command is unknown on a worker.
    #[test]
    fn unknown_cli_commands_list_close_ones() {
        let usage = |cmd: &str| cli_usage(&cmd.split(' ').collect::<Vec<_>>(), WORKER_CLI);
        let sta = usage("show sta");
        assert!(sta.starts_with("Unknown command, but maybe"), "{sta}");
        assert_eq!(sta.lines().count(), 5, "{sta}");
        assert!(sta.contains("\n  show stat [desc|json|no-maint|typed|up]*: report"));
        let disable = usage("disable servr b/s");
        assert!(
            disable.contains("\n  disable server (DEPRECATED)  "),
            "{disable}"
        );
        assert_eq!(disable.lines().count(), 5, "{disable}");
        // The header, five of many equally close keywords (the first ones registered, in
        // the order of their usage), then help, prompt and quit.
        let zzz = usage("zzz");
        assert_eq!(zzz.lines().count(), 1 + 5 + 3, "{zzz}");
        assert!(
            zzz.contains("\n  add acl ") && zzz.contains("\n  user  "),
            "{zzz}"
        );
        assert_eq!(
            cli_refusal(&["show", "proc"], WORKER_CLI),
            Some(usage("show proc"))
        );
        assert_eq!(cli_refusal(&["show", "proc"], MASTER_CLI), None);
        assert_eq!(cli_refusal(&["show", "stat", "typed"], WORKER_CLI), None);
        assert_eq!(
            cli_refusal(&["debug", "dev", "bug"], WORKER_CLI).as_deref(),
            Some("This command is restricted to expert mode only.\n")
        );
    }

    /// HAProxy 2.6.12's master CLI answers (measured): only the master's commands.
    #[test]
    fn master_cli_lists_master_commands() {
        let answer = |cmd: &str| {
            let args: Vec<&str> = cmd.split(' ').collect();
            cli_refusal(&args, MASTER_CLI)
        };
        let show_sta = concat!(
            "Unknown command, but maybe one of the following ones is a better match:\n",
            "  show cli level                          : display the level of the current CLI session\n",
            "  show cli sockets                        : dump list of cli sockets\n",
            "  show proc                               : show processes status\n",
            "  show version                            : show version of the current process\n",
            "  help [<command>]                        : list matching or all commands\n",
            "  prompt                                  : toggle interactive mode with prompt\n",
            "  quit                                    : disconnect\n",
        );
        assert_eq!(answer("show sta").as_deref(), Some(show_sta));
        let zzz = concat!(
            "Unknown command, but maybe one of the following ones is a better match:\n",
            "  @!<pid>                                 : send a command to the <pid> process\n",
            "  @master                                 : send a command to the master process\n",
            "  operator                                : lower the level of the current CLI session to operator\n",
            "  reload                                  : reload haproxy\n",
            "  user                                    : lower the level of the current CLI session to user\n",
            "  help [<command>]                        : list matching or all commands\n",
            "  prompt                                  : toggle interactive mode with prompt\n",
            "  quit                                    : disconnect\n",
        );
        assert_eq!(answer("zzz").as_deref(), Some(zzz));
        assert_eq!(answer("show proc"), None);
    }

    /// Only the global and proxy parsers turn `Removed` into an error; elsewhere it would
    /// be dropped silently.
    #[test]
    fn removed_keywords_are_where_they_are_rejected() {
        for (scope, name, support) in all() {
            if matches!(support, Removed(_)) {
                assert!(
                    matches!(scope, Scope::Global | Scope::Proxy),
                    "{scope:?} {name}"
                );
            }
        }
    }
}
