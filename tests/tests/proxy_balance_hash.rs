//! Hash-based balancing beside HAProxy 2.6: the same backends (four servers of distinct
//! weights on loopback, each answering its name) behind hapx-proxy and then HAProxy, for
//! every `hash-type` (map-based and consistent, each hash function, with and without
//! avalanche) and every hashing algorithm (`source` over TCP from many loopback source
//! addresses, `uri` plain and with its options, `url_param`, `hdr()` plain and with
//! `use_domain_only`). Every key must land on the same server name in both, before and after
//! a server is disabled through the runtime API; and requests without the key (no such
//! parameter or header) must take servers in the same turn as HAProxy's fallback. A last
//! test goes through state changes one by one (each server disabled then enabled again, a
//! weight raised past the initial one and lowered back), with keyed and keyless requests
//! after each, on a map and on a ring.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, temp_dir};
use hapx_tests::proxy_balance::{HASH_TYPES, ask_from, config_head, servers_lines};
use hapx_tests::proxy_rules::{EchoServer, get, read_response, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The HTTP algorithms compared, one frontend each: (balance line, requests for key `i`).
/// The request carrying key `i`.
type Request = fn(usize) -> String;

fn http_algorithms() -> Vec<(&'static str, Request)> {
    vec![
        ("uri", |i| {
            get(&format!("/item/{i}/view?session={}", i * 7), "")
        }),
        ("uri whole depth 2 len 20", |i| {
            get(&format!("/a{}/b{i}/c?q={i}", i % 5), "")
        }),
        ("uri path-only", |i| {
            // (The Host header names the URI's authority, as HAProxy requires.)
            let authority = format!("host{}.example:8080", i % 9);
            format!("GET http://{authority}/doc/{i}?lang=en HTTP/1.1\r\nhost: {authority}\r\n\r\n")
        }),
        ("url_param id", |i| {
            get(&format!("/p?x=1&id=user{i}&y=2"), "")
        }),
        ("hdr(X-Key)", |i| {
            get("/", &format!("x-key: client-{i}, other\r\n"))
        }),
        ("hdr(Host) use_domain_only", |i| {
            // The label before the last dot is hashed: `site{i}` (or all of a name
            // without a dot).
            let host = match i % 4 {
                0 => format!("host{i}"),
                k => format!("www{k}.site{i}.com"),
            };
            format!("GET / HTTP/1.1\r\nhost: {host}\r\n\r\n")
        }),
    ]
}

/// A configuration with a frontend per HTTP algorithm (at `ports`), and a TCP one for
/// `source` after them, each with its own backend of the same servers.
fn config(
    hash_type: &str,
    ports: &[u16],
    sock: &Path,
    http: &[SocketAddr],
    tcp: &[SocketAddr],
) -> String {
    let mut cfg = config_head(sock, "");
    let servers = servers_lines;
    for (k, (balance, _)) in http_algorithms().iter().enumerate() {
        cfg += &format!(
            "listen h{k}\n  mode http\n  bind 127.0.0.1:{}\n  balance {balance}\n  hash-type {hash_type}\n{}",
            ports[k],
            servers(http)
        );
    }
    let tcp_port = ports[http_algorithms().len()];
    cfg += &format!(
        "listen t\n  mode tcp\n  bind 127.0.0.1:{tcp_port}\n  balance source\n  hash-type {hash_type}\n{}",
        servers(tcp)
    );
    cfg
}

/// `n` free ports, one per frontend ([`free_port`] never gives one twice in a process).
fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

/// The loopback source addresses `source` is tried from.
fn sources() -> Vec<Ipv4Addr> {
    (0..120u32)
        .map(|i| {
            Ipv4Addr::new(
                127,
                (i % 7) as u8,
                (i * 37 % 251) as u8,
                (1 + i * 13 % 250) as u8,
            )
        })
        .collect()
}

const KEYS: usize = 120;

/// What one proxy did: per frontend, the server of each key; the same after `s1` is
/// disabled, and after `s2`'s weight was set to 1 (what the runtime API answered: a
/// map-based hash, static, refuses it); and the servers taken in turn by requests without
/// the key.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    keyed: Vec<Vec<String>>,
    after_disable: Vec<Vec<String>>,
    weight_answers: Vec<String>,
    after_weight: Vec<Vec<String>>,
    fallback: Vec<String>,
}

/// The server of each request, sent in turn on one kept-alive connection ("" for a
/// request without a response).
fn servers_of(front: SocketAddr, requests: Vec<String>) -> Vec<String> {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return vec![String::new(); requests.len()];
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().expect("a clone of the stream"));
    requests
        .iter()
        .map(|request| {
            conn.write_all(request.as_bytes()).ok();
            read_response(&mut reader)
                .map(|r| r.server().to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// Every key through every frontend (at `ports`).
fn all_keys(ports: &[u16]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = http_algorithms()
        .iter()
        .enumerate()
        .map(|(k, (_, request))| {
            let front = SocketAddr::from((LO, ports[k]));
            servers_of(front, (0..KEYS).map(request).collect())
        })
        .collect();
    let tcp = SocketAddr::from((LO, ports[http_algorithms().len()]));
    out.push(
        sources()
            .into_iter()
            .map(|src| ask_from(src, tcp, b""))
            .collect(),
    );
    out
}

/// Runs `command` (with `{}` for the proxy's name) on every proxy; the answers.
fn on_every_proxy(sock: &Path, command: &str) -> Vec<String> {
    let proxies = (0..http_algorithms().len()).map(|k| format!("h{k}"));
    proxies
        .chain(["t".to_string()])
        .map(|proxy| cli(sock, &command.replace("{}", &proxy)))
        .collect()
}

fn traffic(ports: &[u16], sock: &Path) -> Seen {
    let keyed = all_keys(ports);
    // Without the key: `url_param` without the parameter, `hdr` without the header.
    let at = |name: &str| {
        let k = http_algorithms()
            .iter()
            .position(|(b, _)| b.starts_with(name));
        SocketAddr::from((LO, ports[k.expect("a frontend of that algorithm")]))
    };
    let mut fallback = servers_of(
        at("url_param"),
        (0..12).map(|_| get("/p?x=1", "")).collect(),
    );
    fallback.extend(servers_of(
        at("hdr(X-Key)"),
        (0..12).map(|_| get("/", "")).collect(),
    ));
    on_every_proxy(sock, "disable server {}/s1");
    let after_disable = all_keys(ports);
    let weight_answers = on_every_proxy(sock, "set server {}/s2 weight 1");
    let after_weight = all_keys(ports);
    Seen {
        keyed,
        after_disable,
        weight_answers,
        after_weight,
        fallback,
    }
}

#[test]
fn every_key_lands_on_the_same_server_as_with_haproxy() {
    let http: Vec<EchoServer> = (0..4)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let tcp: Vec<NamedServer> = (0..4)
        .map(|i| NamedServer::start(&format!("tcp{i}"), LO, Duration::from_millis(50)))
        .collect();
    let http_addrs: Vec<SocketAddr> = http.iter().map(|s| s.addr).collect();
    let tcp_addrs: Vec<SocketAddr> = tcp.iter().map(|s| s.addr).collect();
    let dir = temp_dir("balance-hash");
    let sock = dir.join("admin.sock");
    for hash_type in HASH_TYPES {
        let ports = free_ports(http_algorithms().len() + 1);
        let cfg = config(hash_type, &ports, &sock, &http_addrs, &tcp_addrs);
        // Ready once the last frontend (the TCP one) listens.
        let last = SocketAddr::from((LO, ports[http_algorithms().len()]));
        let consistent = hash_type.starts_with("consistent");
        let (ours, theirs) = side_by_side("balance-hash", &cfg, last, |_| traffic(&ports, &sock));
        // Sound on its own: every key was served, none by the disabled server, and the
        // HTTP keys by several servers (the loopback sources, close numbers, may all hash
        // near one point of the ring without avalanche, with HAProxy too).
        for (k, servers) in ours.keyed.iter().enumerate() {
            assert!(
                servers.iter().all(|s| !s.is_empty()),
                "{hash_type} frontend {k}: {servers:?}"
            );
            let distinct: std::collections::BTreeSet<&String> = servers.iter().collect();
            let http = k < http_algorithms().len();
            assert!(
                !http || distinct.len() > 1,
                "{hash_type} frontend {k}: one server for all keys"
            );
        }
        for servers in &ours.after_disable {
            assert!(
                servers.iter().all(|s| !s.is_empty() && !s.ends_with('1')),
                "{hash_type}: {servers:?}"
            );
        }
        let Some(theirs) = theirs else { continue };
        let names: Vec<&str> = http_algorithms()
            .iter()
            .map(|(b, _)| *b)
            .chain(["source"])
            .collect();
        for (k, name) in names.iter().enumerate() {
            assert_eq!(
                ours.keyed[k], theirs.keyed[k],
                "hash-type {hash_type}, balance {name}"
            );
            assert_eq!(
                ours.after_disable[k], theirs.after_disable[k],
                "hash-type {hash_type}, balance {name}, s1 disabled"
            );
            assert_eq!(
                ours.after_weight[k], theirs.after_weight[k],
                "hash-type {hash_type}, balance {name}, s2's weight set to 1"
            );
        }
        assert_eq!(ours.weight_answers, theirs.weight_answers, "{hash_type}");
        // Consistent hashing takes the new weight; a map-based hash refuses it.
        let refused = ours
            .weight_answers
            .iter()
            .all(|a| a.contains("static LB algorithm"));
        assert_eq!(
            refused, !consistent,
            "{hash_type}: {:?}",
            ours.weight_answers
        );
        assert_eq!(
            ours.fallback, theirs.fallback,
            "hash-type {hash_type}: without the key"
        );
    }
}

/// Backups take over once the active servers are disabled: the first backup alone, or all
/// of them with `option allbackups`, as HAProxy's map (whose size is then the first backup's
/// weight, filled from every backup) and ring pick them.
#[test]
fn backups_take_the_keys_as_with_haproxy() {
    let web: Vec<EchoServer> = (0..4)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let dir = temp_dir("balance-hash-backup");
    let sock = dir.join("admin.sock");
    let variants = [
        ("map-based", ""),
        ("map-based", "  option allbackups\n"),
        ("consistent", ""),
        ("consistent", "  option allbackups\n"),
    ];
    let ports = free_ports(variants.len());
    let mut cfg = config_head(&sock, "http");
    for (k, (hash_type, option)) in variants.iter().enumerate() {
        cfg += &format!(
            "listen h{k}\n  bind 127.0.0.1:{}\n  balance uri\n  hash-type {hash_type}\n{option}\
             \x20 server s0 {} weight 1\n  server s1 {} weight 2\n\
             \x20 server s2 {} weight 2 backup\n  server s3 {} weight 5 backup\n",
            ports[k], web[0].addr, web[1].addr, web[2].addr, web[3].addr
        );
    }
    let last = SocketAddr::from((LO, ports[variants.len() - 1]));
    let traffic = |_| {
        for k in 0..variants.len() {
            cli(&sock, &format!("disable server h{k}/s0"));
            cli(&sock, &format!("disable server h{k}/s1"));
        }
        (0..variants.len())
            .map(|k| {
                let front = SocketAddr::from((LO, ports[k]));
                servers_of(
                    front,
                    (0..KEYS).map(|i| get(&format!("/k{i}"), "")).collect(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side("balance-hash-backup", &cfg, last, traffic);
    for (k, servers) in ours.iter().enumerate() {
        assert!(
            servers.iter().all(|s| s == "web2" || s == "web3"),
            "{:?}: {servers:?}",
            variants[k]
        );
    }
    if let Some(theirs) = theirs {
        for k in 0..variants.len() {
            assert_eq!(ours[k], theirs[k], "{:?}", variants[k]);
        }
    }
}

/// Through each state change (a server disabled, enabled again; a weight raised above the
/// initial one, lowered back), keyed requests land where HAProxy's do and keyless ones
/// take the same turns along the map or ring (where HAProxy's round robin moved on when
/// the point it reached was taken out, or its server's points re-allocated).
#[test]
fn keys_and_turns_follow_state_changes_as_with_haproxy() {
    let web: Vec<EchoServer> = (0..4)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let dir = temp_dir("balance-hash-changes");
    let sock = dir.join("admin.sock");
    let hash_types = ["map-based", "consistent"];
    let ports = free_ports(hash_types.len());
    let mut cfg = config_head(&sock, "http");
    for (k, hash_type) in hash_types.iter().enumerate() {
        cfg += &format!(
            "listen h{k}\n  bind 127.0.0.1:{}\n  balance hdr(X-Key)\n  hash-type {hash_type}\n",
            ports[k]
        );
        for (i, w) in [1, 2, 3, 2].iter().enumerate() {
            cfg += &format!("  server s{i} {} weight {w}\n", web[i].addr);
        }
    }
    let last = SocketAddr::from((LO, ports[hash_types.len() - 1]));
    let traffic = |_| {
        let mut seen: Vec<Vec<Vec<String>>> = vec![Vec::new(); hash_types.len()];
        let step = |seen: &mut Vec<Vec<Vec<String>>>, keyless: usize| {
            for (k, out) in seen.iter_mut().enumerate() {
                let front = SocketAddr::from((LO, ports[k]));
                out.push(servers_of(
                    front,
                    (0..keyless).map(|_| get("/", "")).collect(),
                ));
                let keyed = (0..30).map(|i| get("/", &format!("x-key: k{i}\r\n")));
                out.push(servers_of(front, keyed.collect()));
            }
        };
        let on_all = |command: &str| {
            let answers: Vec<String> = (0..hash_types.len())
                .map(|k| cli(&sock, &command.replace("{}", &format!("h{k}"))))
                .collect();
            vec![answers]
        };
        let mut answers = Vec::new();
        for server in ["s1", "s2", "s0", "s3"] {
            step(&mut seen, 5);
            answers.extend(on_all(&format!("disable server {{}}/{server}")));
            step(&mut seen, 7);
            answers.extend(on_all(&format!("enable server {{}}/{server}")));
            step(&mut seen, 7);
        }
        for _ in 0..4 {
            step(&mut seen, 5);
            step(&mut seen, 7);
            answers.extend(on_all("set server {}/s3 weight 5"));
            step(&mut seen, 5);
            step(&mut seen, 7);
            answers.extend(on_all("set server {}/s3 weight 2"));
        }
        (seen, answers)
    };
    let (ours, theirs) = side_by_side("balance-hash-changes", &cfg, last, traffic);
    // Sound on its own: every request served; the keyless ones spread over the servers.
    for (k, steps) in ours.0.iter().enumerate() {
        assert!(
            steps.iter().flatten().all(|s| s.starts_with("web")),
            "{}",
            hash_types[k]
        );
        let keyless = steps.iter().step_by(2).flatten();
        let distinct: std::collections::BTreeSet<&String> = keyless.collect();
        assert!(distinct.len() > 2, "{}: {steps:?}", hash_types[k]);
    }
    let Some(theirs) = theirs else { return };
    assert_eq!(ours.1, theirs.1, "runtime API answers");
    for (k, hash_type) in hash_types.iter().enumerate() {
        for (i, (a, b)) in ours.0[k].iter().zip(&theirs.0[k]).enumerate() {
            let what = if i % 2 == 0 { "keyless" } else { "keyed" };
            assert_eq!(a, b, "{hash_type}, step {}, {what}", i / 2);
        }
    }
}
