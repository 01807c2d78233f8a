//! Runtime DNS of hapx-proxy against HAProxy 2.6: the same configuration and the same DNS
//! answers, then `show servers state` compared. Two servers of a backend resolving the same
//! name must not share an address (HAProxy's default `prevent-dup-ip`) unless
//! `resolve-opts allow-dup-ip` says so. Loopback only.

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

#[test]
fn two_servers_on_one_name_do_not_share_an_address_like_haproxy() {
    let test = "two_servers_on_one_name_do_not_share_an_address_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("dns-dup");
    let dns = MultiDnsResponder::start();
    let mut running: Vec<(PathBuf, Proxy)> = Vec::new();
    for (name, binary) in [
        ("haproxy", PathBuf::from(HAPROXY)),
        ("hapx", bins::path("hapx-proxy")),
    ] {
        let sock = dir.join(format!("{name}.sock"));
        let port = free_port();
        let cfg = config(&sock, port, dns.addr);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        running.push((sock, Proxy::start_with(binary, &dir, name, &cfg, addr, &[])));
    }
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
            "'resolve-net' : expects an IP address",
        ),
        (
            "resolve-net nonsense",
            "'resolve-net' : expects an IP address",
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
