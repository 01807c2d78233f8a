//! When the first health checks run, beside HAProxy 2.6: HAProxy spreads them over the
//! shortest check interval of at least a second among all the process's checks (check K of
//! N after `interval * K / N`), and global `max-spread-checks` bounds that spread; its
//! messages for a bad `max-spread-checks` value.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::{binaries, check_alike};
use hapx_tests::wait::eventually;

const WAIT: Duration = Duration::from_secs(10);

/// How many checks each server of the run saw, read once `done` holds of them.
struct Servers {
    /// Checked every 100 ms from the start (first of all the checks, at no delay).
    marker: NamedServer,
    /// Two servers checked once an hour.
    slow: [NamedServer; 2],
}

impl Servers {
    fn start() -> Servers {
        let server = |name| NamedServer::start(name, Ipv4Addr::LOCALHOST, Duration::ZERO);
        Servers {
            marker: server("m"),
            slow: [server("a"), server("b")],
        }
    }

    fn slow_checks(&self) -> [usize; 2] {
        self.slow
            .each_ref()
            .map(|s| s.accepted.load(Ordering::SeqCst))
    }
}

/// The checks wait for the server's name (any byte), so that each one is an accepted connection (a
/// bare connect check may be reset before the server accepts it).
fn config(port: u16, servers: &Servers, global: &str) -> String {
    let expect = "  option tcp-check\n  tcp-check expect rstring .\n";
    let [a, b] = &servers.slow;
    format!(
        "global\n{global}defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n  timeout check 5s\n\
         backend marker\n{}  server m {} check inter 100\n\
         backend slow\n{}  server a {} check inter 1h\n  server b {} check inter 1h\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend slow\n",
        expect, servers.marker.addr, expect, a.addr, b.addr,
    )
}

/// Runs `global` with each program; what `observe` saw of the servers.
fn runs<T>(test: &str, global: &str, observe: impl Fn(&Servers) -> T) -> Vec<(&'static str, T)> {
    binaries(test)
        .into_iter()
        .map(|(name, binary)| {
            let dir = temp_dir(&format!("{test}-{name}"));
            let servers = Servers::start();
            let port = free_port();
            let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let _proxy = Proxy::start_with(
                binary,
                Path::new(&*dir),
                name,
                &config(port, &servers, global),
                front,
                &[],
            );
            (name, observe(&servers))
        })
        .collect()
}

/// The marker's 100 ms interval is under the one-second threshold: the hour sets the
/// spread, so the slow servers' first checks come 20 and 40 minutes in, long after the
/// marker was checked five times.
#[test]
fn first_checks_spread_over_the_shortest_long_interval() {
    let test = "first_checks_spread_over_the_shortest_long_interval";
    let seen = runs(test, "", |servers| {
        assert!(
            eventually(WAIT, || servers.marker.accepted.load(Ordering::SeqCst) >= 5),
            "the marker server was not checked five times"
        );
        servers.slow_checks()
    });
    for (name, slow) in &seen {
        assert_eq!(
            *slow,
            [0, 0],
            "{name}: slow servers checked early: {seen:?}"
        );
    }
}

/// `max-spread-checks 300`: the slow servers' first checks come at 100 and 200 ms.
#[test]
fn max_spread_checks_bounds_the_spread() {
    let test = "max_spread_checks_bounds_the_spread";
    let seen = runs(test, "  max-spread-checks 300\n", |servers| {
        eventually(WAIT, || servers.slow_checks().iter().all(|&n| n >= 1))
    });
    for (name, checked) in &seen {
        assert!(
            *checked,
            "{name}: the slow servers were not checked: {seen:?}"
        );
    }
}

#[test]
fn max_spread_checks_values_are_read_as_haproxy_reads_them() {
    let test = "max_spread_checks_values_are_read_as_haproxy_reads_them";
    let cases = [
        ("", false),
        ("abc", false),
        ("10x", false),
        ("1.5s", false),
        ("99999999999", false),
        ("500 600", false),
        ("0", true),
        ("750", true),
        ("2s", true),
    ];
    for (value, valid) in cases {
        let text = format!(
            "global\n  max-spread-checks {value}\ndefaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend f\n  bind 127.0.0.1:1\n"
        );
        let (code, messages) = check_alike(test, &text);
        assert_eq!(code == 0, valid, "'{value}': {messages:?}");
        assert_eq!(messages.is_empty(), valid, "'{value}': {messages:?}");
    }
}
