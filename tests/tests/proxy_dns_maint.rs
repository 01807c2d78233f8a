//! A server's resolution maintenance (HAProxy's RMAINT) side by side with HAProxy 2.6: the
//! first answer for a server started without an address (`init-addr none`), a name gone
//! (NXDOMAIN) once its `hold nx` is over, and the name back, each logged in the same words,
//! at the same levels and in the same order, with the backend's alert when no server is
//! left; `show stat` shows the servers `MAINT (resolution)` meanwhile. An address an
//! operator sets (`set server ... addr`) stays while DNS keeps giving the same answer.
//! Loopback only.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{DnsResponder, Proxy, cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_lifecycle::{CheckPort, status};
use hapx_tests::{bins, require};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// A UDP syslog sink keeping each message's priority: `<PRI>message`.
struct Syslog {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl Syslog {
    fn bind() -> Syslog {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a syslog socket");
        let addr = socket.local_addr().expect("its address");
        Syslog { socket, addr }
    }

    /// The next `count` messages about backend `be` and its servers, `<PRI>` then the
    /// text after the header; fewer if they do not come within 10 seconds.
    fn about_be(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = Vec::new();
        while found.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.socket.set_read_timeout(Some(left)).expect("a timeout");
            let mut buf = [0u8; 4096];
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let raw = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            let priority = raw.split_inclusive('>').next().unwrap_or_default();
            let text = raw.split_once("]: ").map_or(raw.as_str(), |(_, t)| t);
            if text.starts_with("be/") || text.contains(" be/") || text.contains("backend be ") {
                found.push(format!("{priority}{text}"));
            }
        }
        found
    }
}

/// Servers `s1` and `s2` of `be` on `host`, health-checked on `check`, with `options`.
fn servers(host: &str, check: u16, options: &str) -> String {
    let server =
        format!("{host}:{check} check inter 200ms resolvers dns resolve-prefer ipv4 {options}");
    format!("  server s1 {server}\n  server s2 {server}\n")
}

fn config(sock: &Path, syslog: SocketAddr, port: u16, dns: SocketAddr, servers: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n  log {syslog} local0\n\
         resolvers dns\n  nameserver ns1 {dns}\n  resolve_retries 1\n  timeout retry 200ms\n  timeout resolve 100ms\n  hold nx 1s\n  hold valid 1s\n\
         defaults\n  mode tcp\n  log global\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n{servers}",
        sock.display()
    )
}

/// `show stat`'s `column` of `be/server`.
fn stat_of(sock: &Path, server: &str, column: &str) -> String {
    stat_row(&cli(sock, "show stat"), "be", server)
        .and_then(|r| r.get(column).cloned())
        .unwrap_or_default()
}

/// What a server in maintenance shows that does not depend on time: `show servers state`'s
/// operational and admin states, check result, health and state, and `show stat`'s
/// `chkdown` and `check_status`.
fn maint_fields(sock: &Path, server: &str) -> Vec<String> {
    let state = cli(sock, "show servers state be");
    let row: Vec<String> = state
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
        .find(|f| f.get(3).is_some_and(|n| n == server))
        .unwrap_or_default();
    let mut fields: Vec<String> = [5, 6, 11, 12, 13]
        .iter()
        .map(|&i| row.get(i).cloned().unwrap_or_default())
        .collect();
    fields.push(stat_of(sock, server, "chkdown"));
    fields.push(stat_of(sock, server, "check_status"));
    fields
}

struct Side {
    sock: PathBuf,
    syslog: Syslog,
    _proxy: Proxy,
}

fn start(dir: &Path, name: &str, binary: PathBuf, dns: SocketAddr, servers: &str) -> Side {
    let sock = dir.join(format!("{name}.sock"));
    let syslog = Syslog::bind();
    let port = free_port();
    let cfg = config(&sock, syslog.addr, port, dns, servers);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = Proxy::start_with(binary, dir, name, &cfg, addr, &[]);
    Side {
        sock,
        syslog,
        _proxy: proxy,
    }
}

fn both_in(sides: &[Side], state: &str) -> bool {
    sides
        .iter()
        .all(|s| ["s1", "s2"].iter().all(|srv| status(&s.sock, srv) == state))
}

#[test]
fn resolution_maintenance_is_logged_like_haproxy() {
    let test = "resolution_maintenance_is_logged_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("dns-maint");
    let dns = DnsResponder::start();
    dns.set("kube", Some(Ipv4Addr::LOCALHOST));
    let check = free_port();
    let _target = CheckPort::open(check);
    let servers = servers("kube", check, "init-addr none resolve-opts allow-dup-ip");
    let sides = [
        start(&dir, "haproxy", PathBuf::from(HAPROXY), dns.addr, &servers),
        start(&dir, "hapx", bins::path("hapx-proxy"), dns.addr, &servers),
    ];
    let [reference, ours] = &sides;

    // First answer: per server, its new address, `resolves again`, `administratively READY`.
    let first = reference.syslog.about_be(6);
    assert_eq!(first.len(), 6, "HAProxy's first resolution: {first:?}");
    assert_eq!(ours.syslog.about_be(6), first, "first resolution");
    assert!(first[0].ends_with("by dns/ns1."), "{first:?}");
    assert!(first[3].ends_with("by DNS cache."), "{first:?}");
    assert!(wait_until(Duration::from_secs(10), || both_in(
        &sides, "UP"
    )));

    // The name goes: after `hold nx`, each server goes down for maintenance, then the alert.
    dns.set("kube", None);
    let gone_at = Instant::now();
    let gone = reference.syslog.about_be(3);
    assert_eq!(gone.len(), 3, "HAProxy's NX: {gone:?}");
    assert_eq!(ours.syslog.about_be(3), gone, "NX");
    assert!(gone[0].contains("(DNS NX status). 1 active"), "{gone:?}");
    assert!(gone[2].contains("has no server available!"), "{gone:?}");
    assert!(wait_until(Duration::from_secs(10), || both_in(
        &sides,
        "MAINT (resolution)"
    )));
    let admin = |side: &Side| {
        cli(&side.sock, "show servers state be")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').nth(6).map(String::from))
            .collect::<Vec<_>>()
    };
    assert_eq!(admin(ours), admin(reference), "admin state in maintenance");
    // As any maintenance: a stop counted, its clock restarted, the checks paused.
    for server in ["s1", "s2"] {
        assert_eq!(
            maint_fields(&ours.sock, server),
            maint_fields(&reference.sock, server),
            "{server} in resolution maintenance"
        );
        for side in &sides {
            let since: u64 = stat_of(&side.sock, server, "lastchg")
                .parse()
                .unwrap_or(u64::MAX);
            assert!(
                since <= gone_at.elapsed().as_secs(),
                "{server}: lastchg {since}"
            );
        }
    }

    // The name back: the three lines of the first answer again.
    dns.set("kube", Some(Ipv4Addr::LOCALHOST));
    let back = reference.syslog.about_be(6);
    assert_eq!(back.len(), 6, "HAProxy's recovery: {back:?}");
    assert_eq!(ours.syslog.about_be(6), back, "recovery");
    assert!(wait_until(Duration::from_secs(10), || both_in(
        &sides, "UP"
    )));

    // An operator moves s1: the same answers keep coming, and s1 stays where it was put.
    for side in &sides {
        let said = cli(&side.sock, "set server be/s1 addr 127.0.0.2");
        assert!(said.contains("changed from"), "{said}");
    }
    let asked = dns.queries.load(Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(10), || {
        dns.queries.load(Ordering::SeqCst) >= asked + 20
    }));
    let addresses = |side: &Side| {
        cli(&side.sock, "show servers state be")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .collect::<Vec<_>>()
    };
    assert_eq!(addresses(reference), ["127.0.0.2", "127.0.0.1"], "HAProxy");
    assert_eq!(
        addresses(ours),
        addresses(reference),
        "after set server addr"
    );
}

#[test]
fn an_address_from_init_addr_is_no_duplicate_like_haproxy() {
    let test = "an_address_from_init_addr_is_no_duplicate_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("dns-dup-init");
    let dns = DnsResponder::start();
    dns.set("localhost", Some(Ipv4Addr::LOCALHOST));
    let check = free_port();
    let _target = CheckPort::open(check);
    // Both start on 127.0.0.1 from the system's resolver (`init-addr last,libc`).
    let servers = servers("localhost", check, "");
    let sides = [
        start(&dir, "haproxy", PathBuf::from(HAPROXY), dns.addr, &servers),
        start(&dir, "hapx", bins::path("hapx-proxy"), dns.addr, &servers),
    ];
    let [reference, ours] = &sides;
    // The first server takes the answer's only address; the second finds it taken.
    let lines = reference.syslog.about_be(1);
    assert_eq!(lines.len(), 1, "HAProxy: {lines:?}");
    assert!(
        lines[0].contains("be/s2 is going DOWN for maintenance (No IP for server ). 1 active"),
        "{lines:?}"
    );
    assert_eq!(ours.syslog.about_be(1), lines);
    let rows = |side: &Side| {
        cli(&side.sock, "show servers state be")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(' ').skip(3).take(4).collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rows(reference),
        ["s1 127.0.0.1 2 0", "s2 - 0 32"],
        "HAProxy"
    );
    assert_eq!(rows(ours), rows(reference));
}
