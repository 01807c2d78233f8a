//! TCP-mode hashing beside HAProxy 2.6: `balance rdp-cookie`, `balance hash EXPR` and
//! `persist rdp-cookie`, with synthetic RDP Connection Requests (TPKT, X.224 CR, a
//! `Cookie:` line) sent over loopback to hapx-proxy and then to HAProxy running the same
//! configuration. Every frontend waits for the cookie as HAProxy's documentation says
//! (`tcp-request inspect-delay` and `tcp-request content accept if RDP_COOKIE`).
//!
//! - Many distinct cookie values (each from its own loopback source address), requests
//!   without a cookie and truncated ones (before the cookie line ends: served in turn once
//!   the inspect delay is over; after it: by the cookie),
//!   and the same after a server is disabled, for map-based and consistent hashing: every
//!   connection must reach the server HAProxy's reaches. `balance hash` is tried with `src`
//!   and with the request's content, which HAProxy has forwarded already when it picks
//!   (so `req.payload(0,N)` and `req.rdp_cookie` find nothing and take servers in turn),
//!   and with HTTP fetches (`req.hdr(host)`, `path`, `url_param`), which parse that
//!   forwarded request as HAProxy's do.
//! - The checker (`-c`) refuses, warns about and accepts the lines of these algorithms and
//!   fetches as HAProxy's does, in its words.
//! - `persist rdp-cookie`: a `msts` routing token naming each server sends the connection
//!   there; an unknown, malformed or disabled server's token is balanced (unless `option
//!   persist`); a cookie of another name is no token.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, temp_dir};
use hapx_tests::proxy_balance::{
    SOME_HASH_TYPES, ask_from, config_head, rdp_request, routing_token, servers_lines,
};
use hapx_tests::proxy_rules::{HAPROXY, check_messages, side_by_side};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The algorithms compared, a frontend each.
const ALGORITHMS: &[&str] = &[
    "rdp-cookie",
    // The cookie's name is not case-sensitive.
    "rdp-cookie(MSTSHASH)",
    "hash src",
    "hash req.payload(0,0)",
    "hash req.payload(0,30)",
    "hash req.rdp_cookie(mstshash)",
];
const KEYS: usize = 40;
/// How long the frontends wait for a cookie: what a request without one costs.
const INSPECT: &str = "200ms";

/// Four servers `tcp0`..`tcp3` on loopback, each writing its name, and their addresses.
fn named_servers() -> (Vec<NamedServer>, Vec<SocketAddr>) {
    let servers: Vec<NamedServer> = (0..4)
        .map(|i| NamedServer::start(&format!("tcp{i}"), LO, Duration::from_millis(50)))
        .collect();
    let addrs = servers.iter().map(|s| s.addr).collect();
    (servers, addrs)
}

/// The loopback source address of client `i`.
fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        (i % 5 + 1) as u8,
        (i * 37 % 251) as u8,
        (1 + i * 13 % 250) as u8,
    )
}

/// The user name of key `i`, as a client sends it in `mstshash`.
fn user(i: usize) -> String {
    format!("CORP\\u{:04x}{i}", i * 40503 % 65536)
}

/// A configuration (runtime API at `sock`) of TCP listen sections `{prefix}K` waiting for
/// what ACL `until` says is there (an RDP cookie, as HAProxy's documentation has it), each
/// on its port with its own lines, then `servers`.
fn tcp_listens(
    sock: &Path,
    prefix: &str,
    until: &str,
    listens: &[(u16, String)],
    servers: &[SocketAddr],
) -> String {
    let mut cfg = config_head(sock, "tcp");
    for (k, (port, lines)) in listens.iter().enumerate() {
        cfg += &format!(
            "listen {prefix}{k}\n  bind 127.0.0.1:{port}\n  tcp-request inspect-delay {INSPECT}\n\
             \x20 tcp-request content accept if {until}\n{lines}{}",
            servers_lines(servers)
        );
    }
    cfg
}

fn config(hash_type: &str, ports: &[u16], sock: &Path, servers: &[SocketAddr]) -> String {
    let listens: Vec<(u16, String)> = (ports.iter().zip(ALGORITHMS))
        .map(|(&port, balance)| {
            (
                port,
                format!("  balance {balance}\n  hash-type {hash_type}\n"),
            )
        })
        .collect();
    tcp_listens(sock, "h", "RDP_COOKIE", &listens, servers)
}

/// What one frontend did: the server of each key, of the first keys again (from other
/// sources), of requests without a cookie and truncated ones, and of the keys after `s1`
/// was disabled.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    keyed: Vec<String>,
    again: Vec<String>,
    keyless: Vec<String>,
    truncated: Vec<String>,
    after_disable: Vec<String>,
}

fn keyed(front: SocketAddr, first_source: usize) -> Vec<String> {
    (0..KEYS)
        .map(|i| {
            let request = rdp_request(Some(&format!("mstshash={}", user(i))));
            ask_from(source(first_source + i), front, &request)
        })
        .collect()
}

fn frontend_traffic(front: SocketAddr, sock: &Path, proxy: &str) -> Seen {
    let keyed_first = keyed(front, 0);
    let again = keyed(front, KEYS)[..10].to_vec();
    let keyless = (0..4)
        .map(|i| ask_from(source(i), front, &rdp_request(None)))
        .collect();
    let whole = rdp_request(Some("mstshash=someone"));
    let truncated = [15, 24, whole.len() - 1]
        .iter()
        .map(|&cut| ask_from(source(0), front, &whole[..cut]))
        .collect();
    cli(sock, &format!("disable server {proxy}/s1"));
    let after_disable = keyed(front, 0);
    Seen {
        keyed: keyed_first,
        again,
        keyless,
        truncated,
        after_disable,
    }
}

/// Every frontend's traffic, the frontends in parallel (each one's connections in order).
fn traffic(ports: &[u16], sock: &Path) -> Vec<Seen> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(k, &port)| {
                let front = SocketAddr::from((LO, port));
                scope.spawn(move || frontend_traffic(front, sock, &format!("h{k}")))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a frontend's traffic"))
            .collect()
    })
}

#[test]
fn rdp_cookies_and_tcp_hashes_reach_the_server_haproxy_chooses() {
    let (_servers, addrs) = named_servers();
    let dir = temp_dir("balance-tcp-hash");
    let sock = dir.join("admin.sock");
    for hash_type in SOME_HASH_TYPES {
        let ports: Vec<u16> = ALGORITHMS.iter().map(|_| free_port()).collect();
        let cfg = config(hash_type, &ports, &sock, &addrs);
        let last = SocketAddr::from((LO, ports[ALGORITHMS.len() - 1]));
        let (ours, theirs) =
            side_by_side("balance-tcp-hash", &cfg, last, |_| traffic(&ports, &sock));
        // Sound on its own: every connection served, none by the disabled server; a
        // cookie keeps its server; the keys spread, but over the empty payload HAProxy's
        // balancer sees (one key for every connection).
        for (seen, balance) in ours.iter().zip(ALGORITHMS) {
            let all = [
                &seen.keyed,
                &seen.keyless,
                &seen.truncated,
                &seen.after_disable,
            ];
            assert!(
                all.iter().copied().flatten().all(|s| s.starts_with("tcp")),
                "{hash_type}, {balance}: {seen:?}"
            );
            assert!(
                seen.after_disable.iter().all(|s| s != "tcp1"),
                "{hash_type}, {balance}: {seen:?}"
            );
            let distinct: std::collections::BTreeSet<&String> = seen.keyed.iter().collect();
            let one_key = *balance == "hash req.payload(0,0)";
            assert_eq!(
                distinct.len() == 1,
                one_key,
                "{hash_type}, {balance}: {seen:?}"
            );
            if balance.starts_with("rdp-cookie") {
                assert_eq!(seen.again, seen.keyed[..10], "{hash_type}, {balance}");
            }
        }
        let Some(theirs) = theirs else { continue };
        for (k, balance) in ALGORITHMS.iter().enumerate() {
            assert_eq!(
                ours[k], theirs[k],
                "hash-type {hash_type}, balance {balance}"
            );
        }
    }
}

/// `persist rdp-cookie` (default name `msts`), with `option persist`, and with a cookie
/// named `tok`; each balancing by `rdp-cookie` when no token names a server.
#[test]
fn routing_tokens_reach_their_server_as_with_haproxy() {
    let (_servers, addrs) = named_servers();
    let dir = temp_dir("balance-rdp-persist");
    let sock = dir.join("admin.sock");
    let variants = [
        "  persist rdp-cookie\n",
        "  persist rdp-cookie\n  option persist\n",
        "  persist rdp-cookie(tok)\n",
    ];
    let ports: Vec<u16> = variants.iter().map(|_| free_port()).collect();
    let listens: Vec<(u16, String)> = (ports.iter().zip(variants))
        .map(|(&port, persist)| (port, format!("{persist}  balance rdp-cookie\n")))
        .collect();
    let cfg = tcp_listens(&sock, "p", "RDP_COOKIE", &listens, &addrs);
    let token = |i: usize| match addrs[i] {
        SocketAddr::V4(a) => routing_token(a),
        SocketAddr::V6(_) => unreachable!("servers on 127.0.0.1"),
    };
    let unknown = routing_token("127.0.0.1:1".parse().expect("an address"));
    let cookies = |k: usize| -> Vec<String> {
        let mut c: Vec<String> = (0..4).map(token).collect();
        c.extend([unknown.clone(), "msts=abc.1.0000".into(), "msts=1.2".into()]);
        c.push(format!("mstshash={}", user(3)));
        if k == 2 {
            // The named cookie carries the token; `msts` is then no token.
            c = c
                .into_iter()
                .map(|t| t.replacen("msts=", "tok=", 1))
                .collect();
            c.push(token(2));
        }
        c
    };
    let ask_all = |k: usize, front: SocketAddr| -> Vec<String> {
        cookies(k)
            .iter()
            .enumerate()
            .map(|(i, c)| ask_from(source(i), front, &rdp_request(Some(c))))
            .collect()
    };
    let last = SocketAddr::from((LO, ports[variants.len() - 1]));
    let traffic = |_| {
        let mut seen = Vec::new();
        for (k, &port) in ports.iter().enumerate() {
            let front = SocketAddr::from((LO, port));
            let before = ask_all(k, front);
            cli(&sock, &format!("disable server p{k}/s1"));
            seen.push((before, ask_all(k, front)));
        }
        seen
    };
    let (ours, theirs) = side_by_side("balance-rdp-persist", &cfg, last, traffic);
    for (k, (before, after)) in ours.iter().enumerate() {
        let named = |i: usize| format!("tcp{i}");
        // Each token reaches its server; the disabled one's only with `option persist`.
        for i in 0..4 {
            assert_eq!(before[i], named(i), "{}: {before:?}", variants[k]);
            if i != 1 || k == 1 {
                assert_eq!(after[i], named(i), "{}: {after:?}", variants[k]);
            }
        }
        assert!(
            before.iter().chain(after).all(|s| s.starts_with("tcp")),
            "{}: {before:?} {after:?}",
            variants[k]
        );
        if k != 1 {
            assert!(
                after.iter().all(|s| s != "tcp1"),
                "{}: {after:?}",
                variants[k]
            );
        }
    }
    if let Some(theirs) = theirs {
        for (k, variant) in variants.iter().enumerate() {
            assert_eq!(ours[k], theirs[k], "{variant}");
        }
    }
}

/// A message without where it was found (HAProxy places some of these errors on the
/// proxy's line, hapx on the line that has the mistake).
fn what(message: &str) -> &str {
    let text = message
        .split_once("] : ")
        .or_else(|| message.split_once("]: "));
    text.map_or(message, |(_, t)| t)
}

#[test]
fn lines_are_checked_like_haproxy() {
    let test = "balance_tcp_hash_lines_are_checked_like_haproxy";
    let dir = temp_dir(test);
    let port = free_port();
    type Case = (&'static str, &'static [&'static str]);
    let refused: &[Case] = &[
        ("tcp", &["balance rdp-cookie()"]),
        ("tcp", &["balance rdp-cookie(user"]),
        ("tcp", &["balance rdp-cookiex"]),
        ("tcp", &["persist"]),
        ("tcp", &["persist cookie"]),
        ("tcp", &["persist rdp-cookie()"]),
        ("tcp", &["persist rdp-cookie(tok) extra"]),
        ("tcp", &["balance hash req.payload(0)"]),
        ("tcp", &["balance hash req.payload(a,1)"]),
        ("tcp", &["balance hash req.payload"]),
        ("tcp", &["balance hash req.payload(1,2,3)"]),
        ("tcp", &["balance hash req.rdp_cookie(a,b)"]),
        ("tcp", &["balance hash res.hdr(x)"]),
        ("tcp", &["balance hash status"]),
    ];
    let accepted: &[Case] = &[
        ("tcp", &["balance rdp-cookie", "persist rdp-cookie"]),
        (
            "tcp",
            &["balance rdp-cookie(user) extra", "persist rdp-cookie extra"],
        ),
        ("tcp", &["balance hash req.payload(0,8)"]),
        ("tcp", &["balance hash req.rdp_cookie,lower"]),
        ("tcp", &["balance hash rdp_cookie_cnt"]),
        ("tcp", &["balance hash dst_port"]),
        (
            "tcp",
            &[
                "tcp-request inspect-delay 5s",
                "tcp-request content accept if RDP_COOKIE { req.rdp_cookie(mstshash) -m found }",
            ],
        ),
        // HTTP fetches find nothing in TCP mode, as in HAProxy.
        ("tcp", &["balance hash req.hdr(host)"]),
    ];
    let warned: &[Case] = &[
        // Content an HTTP proxy does not see, HTTP an TCP proxy does not parse.
        ("http", &["balance hash req.payload(0,3)"]),
        ("http", &["balance hash req.rdp_cookie"]),
        ("tcp", &["balance uri"]),
    ];
    let cases = (refused.iter().map(|c| (c, 1, 1)))
        .chain(accepted.iter().map(|c| (c, 0, 0)))
        .chain(warned.iter().map(|c| (c, 0, 1)));
    // (case, exit code, messages: one error, one warning, or nothing)
    for (i, ((mode, lines), expected, said)) in cases.enumerate() {
        let mut text = format!(
            "defaults\n  mode {mode}\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             listen l\n  bind 127.0.0.1:{port}\n"
        );
        for line in *lines {
            text += &format!("  {line}\n");
        }
        text += "  server s1 127.0.0.1:2\n";
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, &text).expect("writing the configuration");
        let (code, ours) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_eq!(code, expected, "{lines:?}: {ours:#?}");
        assert_eq!(ours.len(), said, "{lines:?}: {ours:#?}");
        if !require::path(test, Path::new(HAPROXY), "HAProxy") {
            continue;
        }
        let (their_code, theirs) = check_messages(Path::new(HAPROXY), &file);
        assert_eq!(their_code, code, "{lines:?}: {theirs:#?}");
        let ours: Vec<&str> = ours.iter().map(|m| what(m)).collect();
        let theirs: Vec<&str> = theirs.iter().map(|m| what(m)).collect();
        assert_eq!(ours, theirs, "{lines:?}");
    }
}

/// `balance hash` in TCP mode with HTTP fetches: HAProxy parses the request buffer (its
/// content forwarded already, but not sent) as an HTTP request head; without one (an RDP
/// request), the servers are taken in turn.
#[test]
fn http_fetches_hash_a_tcp_clients_request_as_with_haproxy() {
    let (_servers, addrs) = named_servers();
    let dir = temp_dir("balance-tcp-http-hash");
    let sock = dir.join("admin.sock");
    let expressions = [
        "req.hdr(host)",
        "path",
        "url_param(id)",
        "req.hdr(host),lower",
    ];
    let mut listens = Vec::new();
    for hash_type in ["map-based", "consistent"] {
        for expr in expressions {
            let lines = format!("  balance hash {expr}\n  hash-type {hash_type}\n");
            listens.push((free_port(), lines));
        }
    }
    let cfg = tcp_listens(&sock, "t", "HTTP", &listens, &addrs);
    let request = |i: usize| {
        let host = format!("Site{}.example", i % 7);
        format!(
            "GET /p{}/x?id=u{i}&k=1 HTTP/1.1\r\nhost: {host}\r\n\r\n",
            i % 5
        )
    };
    let last = SocketAddr::from((LO, listens[listens.len() - 1].0));
    let traffic = |_| {
        let mut seen = Vec::new();
        for (port, _) in &listens {
            let front = SocketAddr::from((LO, *port));
            let keyed: Vec<String> = (0..30)
                .map(|i| ask_from(source(i), front, request(i).as_bytes()))
                .collect();
            let unparsed: Vec<String> = (0..3)
                .map(|i| ask_from(source(i), front, &rdp_request(Some("mstshash=x"))))
                .collect();
            seen.push((keyed, unparsed));
        }
        seen
    };
    let (ours, theirs) = side_by_side("balance-tcp-http-hash", &cfg, last, traffic);
    for (k, (keyed, unparsed)) in ours.iter().enumerate() {
        let all = keyed.iter().chain(unparsed);
        assert!(all.clone().all(|s| s.starts_with("tcp")), "{k}: {keyed:?}");
        let distinct: std::collections::BTreeSet<&String> = keyed.iter().collect();
        assert!(distinct.len() > 1, "{}: {keyed:?}", listens[k].1);
    }
    if let Some(theirs) = theirs {
        for (k, (_, lines)) in listens.iter().enumerate() {
            assert_eq!(ours[k], theirs[k], "{lines}");
        }
    }
}

/// The RDP and payload fetches in a TCP frontend's rules and a backend's `stick on`: a TLS
/// hello refused by its first byte, administrators routed by their cookie, requests
/// without one by their TPKT header, users kept on their server by a stick table.
#[test]
fn rdp_fetches_route_and_stick_as_with_haproxy() {
    let (_servers, addrs) = named_servers();
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  tcp-request inspect-delay {INSPECT}\n\
         \x20 tcp-request content reject if {{ req.payload(0,1) -m bin 16 }}\n\
         \x20 tcp-request content accept if RDP_COOKIE\n\
         \x20 use_backend admins if {{ req.rdp_cookie(mstshash) -m beg admin }}\n\
         \x20 use_backend tpkt if {{ req.payload(0,2) -m bin 0300 }} {{ req.rdp_cookie_cnt eq 0 }}\n\
         \x20 default_backend users\n\
         backend admins\n  server a0 {}\n\
         backend tpkt\n  server t0 {}\n\
         backend users\n  stick-table type string size 1k\n  stick on req.rdp_cookie(mstshash)\n\
         \x20 server u0 {}\n  server u1 {}\n",
        addrs[0], addrs[1], addrs[2], addrs[3]
    );
    let front = SocketAddr::from((LO, port));
    let users: Vec<String> = (0..6).map(user).collect();
    let traffic = |_| {
        let ask = |i: usize, data: &[u8]| ask_from(source(i), front, data);
        let admin = ask(0, &rdp_request(Some("mstshash=admin7")));
        let no_cookie = ask(1, &rdp_request(None));
        let tls = ask(2, &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0, 0, 1, 0]);
        let round = |first: usize| -> Vec<String> {
            (users.iter().enumerate())
                .map(|(i, u)| ask(first + i, &rdp_request(Some(&format!("mstshash={u}")))))
                .collect()
        };
        let (first, second) = (round(10), round(20));
        (admin, no_cookie, tls, first, second)
    };
    let (ours, theirs) = side_by_side("balance-rdp-rules", &cfg, front, traffic);
    let (admin, no_cookie, tls, first, second) = &ours;
    assert_eq!(
        (admin.as_str(), no_cookie.as_str(), tls.as_str()),
        ("tcp0", "tcp1", "")
    );
    assert!(
        first.iter().all(|s| s == "tcp2" || s == "tcp3"),
        "{first:?}"
    );
    assert!(
        first.contains(&"tcp2".into()) && first.contains(&"tcp3".into()),
        "{first:?}"
    );
    assert_eq!(
        first, second,
        "the stick table keeps each user on its server"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
