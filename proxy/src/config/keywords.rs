//! Every keyword HAProxy 2.6 knows in each place, and what hapx does with it.
//!
//! The parser handles the implemented ones itself; these tables say which other words are
//! HAProxy keywords (so they get a "not implemented" warning instead of an "unknown keyword"
//! error) and feed the "did you mean" suggestions.

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

pub const SECTIONS: &[(&str, Support)] = &[
    ("global", Yes),
    ("defaults", Yes),
    ("frontend", Yes),
    ("backend", Yes),
    ("listen", Yes),
    ("resolvers", Yes),
    ("peers", No),
    ("userlist", No),
    ("mailers", No),
    ("program", No),
    ("http-errors", No),
    ("ring", No),
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
    ("description", No),
    ("ca-base", Accepted),
    ("crt-base", Accepted),
    ("ssl-default-bind-ciphers", Accepted),
    ("ssl-default-bind-ciphersuites", Accepted),
    ("ssl-default-bind-options", Accepted),
    ("ssl-default-bind-curves", Accepted),
    ("ssl-default-server-ciphers", Accepted),
    ("ssl-default-server-ciphersuites", Accepted),
    ("ssl-default-server-options", Accepted),
    ("ssl-dh-param-file", Accepted),
    ("ssl-server-verify", Accepted),
    ("tune.ssl.default-dh-param", Accepted),
    ("spread-checks", Yes),
    ("max-spread-checks", No),
    ("log-send-hostname", No),
    ("master-worker", No),
    (
        "nbproc",
        Removed(
            "nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available.",
        ),
    ),
    ("cpu-map", No),
    ("maxconnrate", No),
    ("maxsessrate", No),
    ("maxpipes", No),
    ("server-state-file", No),
    ("server-state-base", No),
    ("lua-load", No),
    ("setenv", No),
    ("presetenv", No),
    ("unsetenv", No),
    ("resetenv", No),
    ("localpeer", No),
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
    ("h1-case-adjust", No),
    ("unix-bind", No),
    ("profiling.tasks", No),
    ("profiling.memory", No),
    ("default-path", No),
    ("zero-warning", No),
    ("numa-cpu-mapping", No),
    ("pp2-never-send-local", No),
    ("issuers-chain-path", No),
    ("thread-group", No),
    ("thread-groups", No),
    ("h2-workaround-bogus-websocket-clients", No),
    ("grace", No),
    ("mworker-max-reloads", No),
    ("cluster-secret", No),
    ("close-spread-time", No),
    ("fd-hard-limit", No),
    ("h1-accept-payload-with-any-method", No),
    ("h1-case-adjust-file", No),
    ("insecure-setuid-wanted", No),
    ("maxsslconn", No),
    ("maxsslrate", No),
    ("maxcomprate", No),
    ("maxcompcpuusage", No),
    ("maxzlibmem", No),
    ("no-memory-trimming", No),
    ("set-var", No),
    ("set-var-fmt", No),
];

/// Families of global keywords HAProxy 2.6 knows by prefix (`tune.bufsize`, `ssl-engine` ...).
pub const GLOBAL_PREFIXES: &[&str] = &["tune.", "ssl-", "profiling.", "lua-", "httpclient."];

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
    ("description", No),
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
    ("fullconn", Accepted),
    ("hash-type", No),
    ("hash-balance-factor", No),
    ("bind-process", No),
    ("retry-on", No),
    ("dynamic-cookie-key", No),
    ("use-fcgi-app", No),
    ("error-log-format", No),
    ("max-session-srv-conns", No),
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
    ("use_backend", No),
    ("acl", No),
    ("http-request", No),
    ("http-response", No),
    ("http-after-response", No),
    ("tcp-request", No),
    ("tcp-response", No),
    ("capture", No),
    ("cookie", No),
    ("compression", No),
    ("redirect", No),
    ("monitor-uri", No),
    ("monitor", No),
    ("unique-id-format", No),
    ("unique-id-header", No),
    ("log-format", No),
    ("log-format-sd", No),
    ("log-tag", No),
    ("rate-limit", No),
    ("grace", No),
    ("http-reuse", No),
    ("server-template", No),
    ("filter", No),
    ("stick-table", No),
    ("stick", No),
    ("persist", No),
    ("dispatch", No),
    ("source", No),
    ("errorloc", No),
    ("errorloc302", No),
    ("errorloc303", No),
    ("errorfiles", No),
    ("http-error", No),
    ("email-alert", No),
    ("external-check", No),
    ("load-server-state-from-file", No),
    ("server-state-file-name", No),
    ("use-server", No),
    ("force-persist", No),
    ("ignore-persist", No),
    ("max-keep-alive-queue", No),
    ("declare", No),
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
    ("log-health-checks", No),
    ("tcpka", Yes),
    ("clitcpka", Yes),
    ("srvtcpka", Yes),
    ("contstats", No),
    ("socket-stats", No),
    ("abortonclose", No),
    ("dontlog-normal", No),
    ("log-separate-errors", No),
    ("http-buffer-request", No),
    ("persist", No),
    ("forceclose", No),
    ("http-no-delay", No),
    ("prefer-last-server", No),
    ("independent-streams", No),
    ("nolinger", No),
    ("transparent", No),
    ("http-pretend-keepalive", No),
    ("accept-invalid-http-request", No),
    ("accept-invalid-http-response", No),
    ("checkcache", No),
    ("http-use-proxy-header", No),
    ("httpslog", No),
    ("mysql-check", No),
    ("pgsql-check", No),
    ("redis-check", No),
    ("smtpchk", No),
    ("ssl-hello-chk", No),
    ("ldap-check", No),
    ("spop-check", No),
    ("external-check", No),
    ("originalto", No),
    ("disable-h2-upgrade", No),
    ("idle-close-on-response", No),
    ("http-ignore-probes", No),
    ("http-restrict-req-hdr-names", No),
    ("logasap", No),
    ("h1-case-adjust-bogus-client", No),
    ("h1-case-adjust-bogus-server", No),
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
    ("no-check-send-proxy", 0, No),
    ("no-send-proxy-v2-ssl", 0, No),
    ("no-send-proxy-v2-ssl-cn", 0, No),
    ("resolve-opts", 1, Yes),
    ("resolve-net", 1, Yes),
    ("maxqueue", 1, No),
    ("minconn", 1, No),
    ("slowstart", 1, No),
    ("on-marked-down", 1, No),
    ("on-marked-up", 1, No),
    ("on-error", 1, No),
    ("error-limit", 1, No),
    ("observe", 1, No),
    ("ssl", 0, No),
    ("verify", 1, No),
    ("verifyhost", 1, No),
    ("sni", 1, No),
    ("ca-file", 1, No),
    ("crt", 1, No),
    ("check-ssl", 0, No),
    ("check-sni", 1, No),
    ("check-send-proxy", 0, No),
    ("agent-check", 0, No),
    ("agent-port", 1, No),
    ("agent-inter", 1, No),
    ("agent-send", 1, No),
    ("cookie", 1, No),
    ("track", 1, No),
    ("source", 1, No),
    ("namespace", 1, No),
    ("proto", 1, No),
    ("alpn", 1, No),
    ("pool-max-conn", 1, No),
    ("pool-purge-delay", 1, No),
    ("redir", 1, No),
    ("tfo", 0, No),
    ("socks4", 1, No),
    ("check-via-socks4", 0, No),
    ("check-proto", 1, No),
    ("check-alpn", 1, No),
    ("crl-file", 1, No),
    ("ciphers", 1, No),
    ("ciphersuites", 1, No),
    ("no-ssl-reuse", 0, No),
    ("no-tls-tickets", 0, No),
    ("no-sslv3", 0, No),
    ("no-tlsv10", 0, No),
    ("no-tlsv11", 0, No),
    ("no-tlsv12", 0, No),
    ("no-tlsv13", 0, No),
    ("ssl-min-ver", 1, No),
    ("ssl-max-ver", 1, No),
    ("ssl-reuse", 0, No),
    ("tls-tickets", 0, No),
    ("force-sslv3", 0, No),
    ("force-tlsv10", 0, No),
    ("force-tlsv11", 0, No),
    ("force-tlsv12", 0, No),
    ("force-tlsv13", 0, No),
    ("allow-0rtt", 0, No),
    ("npn", 1, No),
    ("ws", 1, No),
    ("usesrc", 1, No),
    ("tcp-ut", 1, No),
    ("max-reuse", 1, No),
    ("log-proto", 1, No),
    ("non-stick", 0, No),
    ("stick", 0, No),
    ("no-agent-check", 0, No),
    ("no-check-ssl", 0, No),
    ("no-verifyhost", 0, No),
    ("send-proxy-v2-ssl", 0, No),
    ("send-proxy-v2-ssl-cn", 0, No),
    ("proxy-v2-options", 1, No),
    ("set-proxy-v2-tlv-fmt", 1, No),
    ("agent-addr", 1, No),
    ("curves", 1, No),
    ("sigalgs", 1, No),
    ("client-sigalgs", 1, No),
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
    ("maxconn", 1, No),
    ("interface", 1, No),
    ("ssl", 0, No),
    ("crt", 1, No),
    ("crt-list", 1, No),
    ("ca-file", 1, No),
    ("alpn", 1, No),
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
    ("proto", 1, No),
    ("npn", 1, No),
    ("verify", 1, No),
    ("ciphers", 1, No),
    ("strict-sni", 0, No),
    ("accept-netscaler-cip", 1, No),
    ("severity-output", 1, No),
    ("shards", 1, No),
    ("tcp-ut", 1, No),
    ("allow-0rtt", 0, No),
    ("ca-ignore-err", 1, No),
    ("ca-sign-file", 1, No),
    ("ca-sign-pass", 1, No),
    ("ca-verify-file", 1, No),
    ("ciphersuites", 1, No),
    ("crl-file", 1, No),
    ("crt-ignore-err", 1, No),
    ("curves", 1, No),
    ("ecdhe", 1, No),
    ("force-sslv3", 0, No),
    ("force-tlsv10", 0, No),
    ("force-tlsv11", 0, No),
    ("force-tlsv12", 0, No),
    ("force-tlsv13", 0, No),
    ("generate-certificates", 0, No),
    ("no-ca-names", 0, No),
    ("no-sslv3", 0, No),
    ("no-tls-tickets", 0, No),
    ("no-tlsv10", 0, No),
    ("no-tlsv11", 0, No),
    ("no-tlsv12", 0, No),
    ("no-tlsv13", 0, No),
    ("prefer-client-ciphers", 0, No),
    ("ssl-max-ver", 1, No),
    ("ssl-min-ver", 1, No),
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
        Scope::Global => lookup(GLOBAL, word).or_else(|| {
            GLOBAL_PREFIXES
                .iter()
                .any(|p| word.starts_with(p))
                .then_some(No)
        }),
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

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance (optimal string alignment is not needed for keyword typos).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keywords_only() {
        let names = PROXY.iter().map(|(n, _)| *n);
        assert_eq!(suggest("balanse", names.clone()), Some("balance"));
        assert_eq!(
            suggest("defualt_backend", names.clone()),
            Some("default_backend")
        );
        assert_eq!(suggest("zzzzzz", names), None);
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
