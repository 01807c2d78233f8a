//! `hash-balance-factor` (consistent hashing with bounded loads) beside HAProxy 2.6: the
//! same backend (`balance source`, `hash-type consistent`) behind hapx-proxy and then
//! HAProxy, the same connections from one address kept open one after the other. Without
//! a bound they all hash to one server; with `hash-balance-factor 150` a server over its
//! share of the load is walked past on the ring, and each connection must reach the server
//! HAProxy sends it to. The configuration errors are HAProxy's.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_both, side_by_side};

/// Opens `n` connections to `front`, one after the other, each kept open: the server each
/// reached (its first line).
fn held_connections(front: SocketAddr, n: usize) -> Vec<String> {
    let mut held = Vec::new();
    let mut names = Vec::new();
    for _ in 0..n {
        let Ok(conn) = TcpStream::connect(front) else {
            names.push(String::new());
            continue;
        };
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        names.push(line.trim().to_string());
        held.push(reader);
    }
    names
}

#[test]
fn bounded_loads_spread_connections_as_haproxy() {
    let hold = Duration::from_secs(20);
    let servers: Vec<NamedServer> = ["a", "b", "c"]
        .iter()
        .map(|n| NamedServer::start(n, Ipv4Addr::LOCALHOST, hold))
        .collect();
    for (factor, weights) in [(0, [1, 1, 1]), (150, [1, 1, 1]), (125, [1, 2, 3])] {
        let port = free_port();
        let bound = if factor == 0 {
            String::new()
        } else {
            format!("  hash-balance-factor {factor}\n")
        };
        let cfg = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}listen l\n  bind 127.0.0.1:{port}\n  balance source\n\
             \x20 hash-type consistent\n{bound}\
             \x20 server a {} weight {}\n  server b {} weight {}\n  server c {} weight {}\n",
            servers[0].addr, weights[0], servers[1].addr, weights[1], servers[2].addr, weights[2],
        );
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let (ours, theirs) = side_by_side("hash-bound", &cfg, front, |f| held_connections(f, 12));
        assert!(ours.iter().all(|s| !s.is_empty()), "{factor}: {ours:?}");
        let most = ["a", "b", "c"]
            .iter()
            .map(|n| ours.iter().filter(|s| s == n).count())
            .max()
            .unwrap_or(0);
        if factor == 0 {
            // One address, one hash: one server.
            assert_eq!(most, 12, "{ours:?}");
        } else {
            assert!(most < 12, "{factor}: {ours:?}");
        }
        if let Some(theirs) = theirs {
            assert_eq!(
                ours, theirs,
                "hash-balance-factor {factor}, weights {weights:?}"
            );
        }
    }
}

#[test]
fn configuration_errors_are_haproxys() {
    let dir = temp_dir("hash-bound-check");
    for (i, (value, refused)) in [
        ("", true),
        ("50", true),
        ("100", true),
        ("101", false),
        ("0", false),
        ("abc", false),
    ]
    .iter()
    .enumerate()
    {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}listen l\n  bind 127.0.0.1:1\n  balance source\n\
             \x20 hash-type consistent\n  hash-balance-factor {value}\n  server s 127.0.0.1:2\n"
        );
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        assert_eq!(ours.0 != 0, *refused, "{value:?}: {ours:?}");
        if Path::new(HAPROXY).exists() {
            assert_eq!(ours, theirs, "{value:?}");
        }
    }
}
