//! Runtime DNS of hapx-proxy against HAProxy 2.6: the same configuration and the same DNS
//! answers, then `show servers state` compared. Two servers of a backend resolving the same
//! name must not share an address (HAProxy's default `prevent-dup-ip`) unless
//! `resolve-opts allow-dup-ip` says so. `server-template` slots filled from the answers, its
//! ranges checked; `set server ... fqdn` moving a server to another name. Loopback only.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::proxy_dns::MultiDnsResponder;
use hapx_tests::{bins, require};

const HAPROXY: &str = "/usr/sbin/haproxy";

fn config(sock: &Path, port: u16, dns: SocketAddr) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         resolvers dns\n  nameserver ns1 {dns}\n  resolve_retries 2\n  timeout retry 200ms\n  timeout resolve 100ms\n  hold valid 1s\n  accepted_payload_size 1232\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend dedup\n\
         backend dedup\n  default-server init-addr none\n  server s1 web:8080 resolvers dns resolve-prefer ipv4\n  server s2 web:8080 resolvers dns resolve-prefer ipv4\n\
         backend dup\n  default-server init-addr none\n  server s1 web:8080 resolvers dns resolve-prefer ipv4 resolve-opts allow-dup-ip\n  server s2 web:8080 resolvers dns resolve-prefer ipv4 resolve-opts allow-dup-ip\n\
         backend net\n  server s1 api:8080 resolvers dns resolve-prefer ipv4 init-addr none resolve-net 10.0.0.0/8,127.0.0.12/32\n",
        sock.display()
    )
}

/// Each server (`backend/server`) with its address, `-` for none.
fn addresses(state: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in state.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 7 {
            continue;
        }
        let admin: u32 = cols[6].parse().unwrap_or(0);
        // HAProxy keeps the old address of a server in resolution maintenance (0x20).
        let addr = if cols[4] == "-" || admin & 0x20 != 0 {
            "-".to_string()
        } else {
            cols[4].to_string()
        };
        out.push((format!("{}/{}", cols[1], cols[3]), addr));
    }
    out
}

/// The addresses once they have not changed for a second (ten resolutions).
fn settled(sock: &Path) -> Vec<(String, String)> {
    let start = Instant::now();
    let mut last = addresses(&cli(sock, "show servers state"));
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_secs(1) && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
        let now = addresses(&cli(sock, "show servers state"));
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// A runtime API socket, resolvers that answer fast (`dns`), and `fe` on `port` sending to
/// `web`, which `backends` defines.
fn quick_dns_config(sock: &Path, port: u16, dns: SocketAddr, backends: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         resolvers dns\n  nameserver ns1 {dns}\n  resolve_retries 2\n  timeout retry 200ms\n  timeout resolve 100ms\n  hold valid 1s\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend web\n{backends}",
        sock.display()
    )
}

/// HAProxy, then hapx, each with the configuration `config(stats socket, port)` gives, once
/// listening on 127.0.0.1:port; with their stats sockets.
fn start_both(dir: &Path, config: impl Fn(&Path, u16) -> String) -> Vec<(PathBuf, Proxy)> {
    [
        ("haproxy", PathBuf::from(HAPROXY)),
        ("hapx", bins::path("hapx-proxy")),
    ]
    .into_iter()
    .map(|(name, binary)| {
        let sock = dir.join(format!("{name}.sock"));
        let port = free_port();
        let cfg = config(&sock, port);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        (sock, Proxy::start_with(binary, dir, name, &cfg, addr, &[]))
    })
    .collect()
}

#[test]
fn two_servers_on_one_name_do_not_share_an_address_like_haproxy() {
    let test = "two_servers_on_one_name_do_not_share_an_address_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("dns-dup");
    let dns = MultiDnsResponder::start();
    let running = start_both(&dir, |sock, port| config(sock, port, dns.addr));
    // `net/s1` prefers the second address of `api`, inside its `resolve-net`.
    dns.set("api", &[ip("127.0.0.11"), ip("127.0.0.12")]);
    // Addresses of dedup/s1, dedup/s2, dup/s1, dup/s2, net/s1 after each answer for `web`.
    let phases: [(&[&str], [&str; 5]); 3] = [
        // One address: the first server of `dedup` takes it, the second gets none; in
        // `dup` both share it.
        (
            &["127.0.0.11"],
            ["127.0.0.11", "-", "127.0.0.11", "127.0.0.11", "127.0.0.12"],
        ),
        // A second address: the server without one takes it; the others keep theirs,
        // still answered.
        (
            &["127.0.0.11", "127.0.0.12"],
            [
                "127.0.0.11",
                "127.0.0.12",
                "127.0.0.11",
                "127.0.0.11",
                "127.0.0.12",
            ],
        ),
        // Only the second left: it is taken in `dedup`, so the first server has none.
        (
            &["127.0.0.12"],
            ["-", "127.0.0.12", "127.0.0.12", "127.0.0.12", "127.0.0.12"],
        ),
    ];
    let servers = ["dedup/s1", "dedup/s2", "dup/s1", "dup/s2", "net/s1"];
    for (answer, expected) in phases {
        dns.set("web", &answer.iter().map(|s| ip(s)).collect::<Vec<_>>());
        let reference = settled(&running[0].0);
        let ours = settled(&running[1].0);
        assert_eq!(ours, reference, "answer {answer:?}: hapx vs HAProxy");
        let expected: Vec<(String, String)> = servers
            .iter()
            .zip(expected)
            .map(|(s, a)| (s.to_string(), a.to_string()))
            .collect();
        assert_eq!(reference, expected, "answer {answer:?}");
    }
    // Every query, from both, carried EDNS0 with `accepted_payload_size`.
    assert_eq!(
        *dns.payloads.lock().unwrap(),
        std::collections::BTreeSet::from([Some(1232)])
    );
}

/// `BINARY -c` on a configuration whose server line (line 9) ends with `options`: whether
/// it passed, its standard error, and the file checked.
fn check(binary: &Path, dir: &Path, options: &str) -> (bool, String, PathBuf) {
    let cfg = format!(
        "resolvers dns\n  nameserver ns1 127.0.0.1:53\n\
         defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         backend be\n  server s1 web:80 resolvers dns init-addr none {options}\n\
         frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\n",
        free_port()
    );
    let path = dir.join("check.cfg");
    std::fs::write(&path, cfg).expect("writing the configuration");
    let out = std::process::Command::new(binary)
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("running the check");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stderr, path)
}

#[test]
fn resolve_options_are_checked_like_haproxy() {
    let dir = temp_dir("dns-opts");
    let hapx = bins::path("hapx-proxy");
    let haproxy = Path::new(HAPROXY).exists().then_some(Path::new(HAPROXY));
    let bad = [
        (
            "resolve-opts allow-dup-ip,bogus",
            "unknown resolve-opts option 'bogus'",
        ),
        (
            "resolve-net 192.0.2.0/33",
            "'resolve-net' invalid network '192.0.2.0/33'.",
        ),
        (
            "resolve-net nonsense",
            "'resolve-net' invalid network 'nonsense'.",
        ),
    ];
    for (options, message) in bad {
        let (ok, stderr, path) = check(&hapx, &dir, options);
        assert!(!ok, "{options}: accepted");
        assert!(
            stderr.contains(&format!("{}:9]", path.display())),
            "{options}: {stderr}"
        );
        assert!(stderr.contains(message), "{options}: {stderr}");
        if let Some(reference) = haproxy {
            assert!(
                !check(reference, &dir, options).0,
                "{options}: HAProxy accepts it"
            );
        }
    }
    // The good spellings pass, with no warning about them.
    let good = "resolve-opts allow-dup-ip,ignore-weight resolve-net 10.0.0.0/8,2001:db8::/32,192.0.2.0/255.255.255.0";
    let (ok, stderr, _) = check(&hapx, &dir, good);
    assert!(ok && !stderr.contains("resolve-"), "{stderr}");
    if let Some(reference) = haproxy {
        let (ok, stderr, _) = check(reference, &dir, good);
        assert!(ok, "HAProxy: {stderr}");
    }
}

/// Per server of `state` (`show servers state`): name, address (`-` in resolution
/// maintenance), operational and administrative states, FQDN and port.
fn server_rows(state: &str) -> Vec<String> {
    let named = addresses(state);
    state
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() > 18)
        .zip(named)
        .map(|(cols, (name, addr))| {
            format!(
                "{name} {addr} op={} admin={} fqdn={} port={}",
                cols[5], cols[6], cols[17], cols[18]
            )
        })
        .collect()
}

/// `server-template`: each slot takes one address of the answer, the others wait in
/// maintenance without one, as the answer grows and shrinks; `show servers state` as
/// HAProxy's.
#[test]
fn server_template_fills_slots_from_dns_like_haproxy() {
    let test = "server_template_fills_slots_from_dns_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("dns-template");
    let dns = MultiDnsResponder::start();
    let backends = "backend web\n  server-template srv 3 web:8080 resolvers dns resolve-prefer ipv4 init-addr none\n\
                    backend api\n  server-template api 2-3 api resolvers dns resolve-prefer ipv4 init-addr none\n";
    let running = start_both(&dir, |sock, port| {
        quick_dns_config(sock, port, dns.addr, backends)
    });
    dns.set("api", &[ip("127.0.0.21")]);
    let phases: [&[&str]; 4] = [
        &["127.0.0.11", "127.0.0.12"],
        &["127.0.0.11", "127.0.0.12", "127.0.0.13"],
        &["127.0.0.12", "127.0.0.13"],
        &["127.0.0.13"],
    ];
    let mut before: Vec<(String, String)> = Vec::new();
    for answer in phases {
        dns.set("web", &answer.iter().map(|s| ip(s)).collect::<Vec<_>>());
        let (reference, ours) = (settled(&running[0].0), settled(&running[1].0));
        // Which slot takes which address follows the order each walks its slots in, which
        // differs; the addresses used and the slots left without one must not.
        let used = |servers: &[(String, String)], backend: &str| -> Vec<String> {
            let mut list: Vec<String> = servers
                .iter()
                .filter(|(s, _)| s.starts_with(backend))
                .map(|(_, a)| a.clone())
                .collect();
            list.sort();
            list
        };
        for backend in ["web/", "api/"] {
            assert_eq!(
                used(&ours, backend),
                used(&reference, backend),
                "answer {answer:?}: {backend}"
            );
        }
        let mut expected: Vec<String> = answer.iter().map(|a| a.to_string()).collect();
        expected.resize(3, "-".into());
        expected.sort();
        assert_eq!(used(&ours, "web/"), expected, "answer {answer:?}");
        // A slot keeps an address that is still answered.
        for (server, addr) in &before {
            if answer.contains(&addr.as_str()) {
                assert!(
                    ours.contains(&(server.clone(), addr.clone())),
                    "answer {answer:?}: {server} left {addr}"
                );
            }
        }
        before = ours;
        // The rest of each slot's state (states, FQDN, port) by whether it has an address.
        let rows = |sock: &Path| {
            let mut rows: Vec<String> = server_rows(&cli(sock, "show servers state"))
                .iter()
                .map(|r| {
                    let mut w: Vec<&str> = r.split(' ').collect();
                    w[0] = w[0].split('/').next().unwrap_or_default();
                    w[1] = if w[1] == "-" { "none" } else { "some" };
                    w.join(" ")
                })
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(
            rows(&running[1].0),
            rows(&running[0].0),
            "answer {answer:?}"
        );
    }
}

/// `server-template` ranges as HAProxy reads them: a count or `low-high` from 1 up; any
/// other is refused with HAProxy's message at the line.
#[test]
fn server_template_ranges_are_checked_like_haproxy() {
    let dir = temp_dir("dns-template-ranges");
    let hapx = bins::path("hapx-proxy");
    let haproxy = Path::new(HAPROXY).exists().then_some(Path::new(HAPROXY));
    let run = |binary: &Path, range: &str| {
        let cfg = format!(
            "resolvers dns\n  nameserver ns1 127.0.0.1:53\n\
             defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             backend be\n  server-template srv {range} web:80 resolvers dns init-addr none\n\
             frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\n",
            free_port()
        );
        let path = dir.join("template.cfg");
        std::fs::write(&path, cfg).unwrap();
        let out = std::process::Command::new(binary)
            .args(["-c", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            path,
        )
    };
    for range in ["3", "2-4", "1-1", "0-2", "+2", "02"] {
        let (ok, stderr, _) = run(&hapx, range);
        assert!(ok, "{range}: {stderr}");
        if let Some(reference) = haproxy {
            assert!(run(reference, range).0, "{range}: HAProxy refuses it");
        }
    }
    for range in ["0", "4-2", "abc", "-3", "2-"] {
        let (ok, stderr, path) = run(&hapx, range);
        assert!(!ok, "{range}: accepted");
        let message = format!(
            "[{}:9] : Wrong server-template number or range arg '{range}'.",
            path.display()
        );
        assert!(stderr.contains(&message), "{range}: {stderr}");
        if let Some(reference) = haproxy {
            let (ok, their) = {
                let (ok, stderr, _) = run(reference, range);
                (ok, stderr)
            };
            assert!(
                !ok && their.contains(&message),
                "{range}: HAProxy said {their}"
            );
        }
    }
}

/// `set server B/S fqdn NAME` beside HAProxy: the answers, then the server resolving the new
/// name (its address and `show servers state`'s FQDN column).
#[test]
fn set_server_fqdn_resolves_the_new_name_like_haproxy() {
    let test = "set_server_fqdn_resolves_the_new_name_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("dns-fqdn");
    let dns = MultiDnsResponder::start();
    dns.set("web", &[ip("127.0.0.11")]);
    dns.set("other", &[ip("127.0.0.12")]);
    let backends = "backend web\n  server a web:8080 resolvers dns resolve-prefer ipv4 init-addr none\n  server b 127.0.0.1:8080\n";
    let running = start_both(&dir, |sock, port| {
        quick_dns_config(sock, port, dns.addr, backends)
    });
    for (sock, _) in &running {
        assert_eq!(
            settled(sock),
            [
                ("web/a".to_string(), "127.0.0.11".to_string()),
                ("web/b".into(), "127.0.0.1".into())
            ]
        );
    }
    for command in [
        "set server web/a fqdn other",
        "set server web/a fqdn other",
        "set server web/a fqdn OTHER",
        "set server web/a fqdn not_valid!",
        "set server web/a fqdn",
        "set server web/b fqdn other",
        "set server web/a fqdn 127.0.0.9",
        "set server web/a fqdn other",
    ] {
        let answers: Vec<String> = running.iter().map(|(sock, _)| cli(sock, command)).collect();
        assert_eq!(answers[1], answers[0], "{command}");
    }
    // The new name resolved: its address, and its name in the FQDN column.
    let fqdn = |sock: &Path| -> Vec<String> {
        cli(sock, "show servers state web")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| Some(l.split(' ').nth(17)?.to_string()))
            .collect()
    };
    for (sock, _) in &running {
        assert_eq!(
            settled(sock),
            [
                ("web/a".to_string(), "127.0.0.12".to_string()),
                ("web/b".into(), "127.0.0.1".into())
            ]
        );
        assert_eq!(fqdn(sock), ["other", "-"]);
    }
}

/// The queries `dns` receives over `window`.
fn queries_over(dns: &MultiDnsResponder, window: Duration) -> usize {
    let start = dns.queries.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(window);
    dns.queries.load(std::sync::atomic::Ordering::SeqCst) - start
}

/// `set server B/S fqdn` back and forth (to a name and back, and in other cases of the same
/// name) leaves one resolution querying for the server, as before the changes: one loop's
/// worth of queries per interval, not one more per command.
#[test]
fn changing_the_fqdn_back_and_forth_leaves_one_resolution() {
    let dir = temp_dir("dns-fqdn-loops");
    let dns = MultiDnsResponder::start();
    dns.set("web", &[ip("127.0.0.11")]);
    dns.set("other", &[ip("127.0.0.12")]);
    let backends =
        "backend web\n  server a web:8080 resolvers dns resolve-prefer ipv4 init-addr none\n";
    let sock = dir.join("hapx.sock");
    let port = free_port();
    let cfg = quick_dns_config(&sock, port, dns.addr, backends);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _hapx = Proxy::start_with(bins::path("hapx-proxy"), &dir, "hapx", &cfg, addr, &[]);
    assert_eq!(
        settled(&sock),
        [("web/a".to_string(), "127.0.0.11".to_string())]
    );
    // Ten resolutions or so (`timeout resolve 100ms`).
    let window = Duration::from_secs(1);
    let before = queries_over(&dns, window);
    for name in ["other", "OTHER", "Other", "web", "WEB", "other"] {
        let answer = cli(&sock, &format!("set server web/a fqdn {name}"));
        assert!(answer.contains("changed its FQDN"), "{name}: {answer}");
    }
    // Settling takes a second: a superseded resolution ends at its next turn.
    assert_eq!(
        settled(&sock),
        [("web/a".to_string(), "127.0.0.12".to_string())]
    );
    let after = queries_over(&dns, window);
    assert!(
        before > 0 && after <= before + before / 2 + 2,
        "{before} queries in {window:?} with one resolution, {after} after the changes"
    );
}
