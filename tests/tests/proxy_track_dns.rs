//! A server tracking one that DNS takes out of service (its name stops resolving: HAProxy's
//! resolution maintenance, RMAINT, admin flag 32) follows it into maintenance and back,
//! down the chain, side by side with HAProxy 2.6.12: the trackers shown `MAINT (via
//! be/s)`, admin state 2 in `show servers state`, the log lines (the cause passed on:
//! `... is going DOWN for maintenance (DNS NX status) via be/s.`, then `... is UP/READY
//! (leaving maintenance).`), and at start-up a tracker of a server not resolved yet
//! (`init-addr none`) starts in it too. DNS on loopback only.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, wait_until};
use hapx_tests::proxy_dns::MultiDnsResponder;
use hapx_tests::proxy_lifecycle::{Lab, agree, messages, status};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The messages about the servers' states, in order.
const PREFIXES: [&str; 2] = ["Server be/", "be/s changed"];

/// The `show stat` status, and the operational and admin states of `show servers state`,
/// of each of `be`'s servers.
fn states(sock: &Path) -> Vec<String> {
    let state = cli(sock, "show servers state be");
    ["s", "t", "u"]
        .iter()
        .map(|name| {
            let line = state.lines().find(|l| l.split(' ').nth(3) == Some(name));
            let words: Vec<&str> = line.map_or(Vec::new(), |l| l.split(' ').collect());
            let (op, admin) = (words.get(5), words.get(6));
            let (op, admin) = (op.copied().unwrap_or("?"), admin.copied().unwrap_or("?"));
            format!("{name} {} {op} {admin}", status(sock, name))
        })
        .collect()
}

/// `be`: `s` resolved by `dns` (checked), `t` tracking it, `u` tracking `t`.
fn backend(server: &NamedServer, dns: &MultiDnsResponder) -> String {
    format!(
        "  server s s.test:{0} resolvers r init-addr none check inter 100ms\n\
         \x20 server t 127.0.0.1:{0} track s\n  server u 127.0.0.1:{0} track t\n\
         resolvers r\n  nameserver ns {1}\n  timeout resolve 100ms\n  timeout retry 100ms\n  hold nx 100ms\n  hold valid 100ms\n",
        server.addr.port(),
        dns.addr
    )
}

/// Whether each of `be`'s servers is UP and READY.
fn all_up(sock: &Path) -> bool {
    states(sock)
        .iter()
        .all(|s| s.contains("UP") && s.ends_with(" 2 0"))
}

/// Whether each of `be`'s servers is in maintenance.
fn all_in_maint(sock: &Path) -> bool {
    states(sock).iter().all(|s| s.contains("MAINT"))
}

#[test]
fn trackers_follow_a_server_into_and_out_of_dns_maintenance() {
    let test = "trackers_follow_a_server_into_and_out_of_dns_maintenance";
    let server = NamedServer::start("x", LO, Duration::from_secs(30));
    let dns = MultiDnsResponder::start();
    let lab = Lab::new(test, "tcp", ());
    let backend = backend(&server, &dns);
    let resolved = [IpAddr::from(LO)];
    let (ours, theirs) = lab.run(test, &backend, |_front| {
        dns.set("s.test", &resolved);
        let up = || {
            states(&lab.sock)
                .iter()
                .all(|s| s.contains("UP") && s.ends_with(" 2 0"))
        };
        assert!(
            wait_until(Duration::from_secs(10), up),
            "{:?}",
            states(&lab.sock)
        );
        let started = messages(&lab.syslog, &PREFIXES, 5);
        dns.set("s.test", &[]);
        let maint = || states(&lab.sock).iter().all(|s| s.contains("MAINT"));
        assert!(
            wait_until(Duration::from_secs(10), maint),
            "{:?}",
            states(&lab.sock)
        );
        let in_maint = states(&lab.sock);
        let entered = messages(&lab.syslog, &PREFIXES, 3);
        dns.set("s.test", &resolved);
        assert!(
            wait_until(Duration::from_secs(10), up),
            "{:?}",
            states(&lab.sock)
        );
        let left = messages(&lab.syslog, &PREFIXES, 5);
        (started, in_maint, entered, left)
    });
    let (started, in_maint, entered, left) = &ours;
    assert_eq!(
        *in_maint,
        [
            "s MAINT (resolution) 0 32",
            "t MAINT (via be/s) 0 2",
            "u MAINT (via be/t) 0 2"
        ]
    );
    assert_eq!(started, left, "leaving it at start-up and later alike");
    assert_eq!(entered.len(), 3, "{entered:?}");
    assert_eq!(left[2], "Server be/t is UP/READY (leaving maintenance).");
    assert!(
        entered[1].starts_with(
            "Server be/t is going DOWN for maintenance (DNS NX status) via be/s. 1 active"
        ),
        "{entered:?}"
    );
    agree(ours.clone(), theirs, ours);
}

/// An operator's commands on servers in DNS maintenance or inheriting it, as HAProxy's
/// `srv_set_admin_flag`/`srv_clr_admin_flag` take them: silently, but for leaving the forced
/// maintenance (`... is leaving forced maintenance but remains in maintenance.`); once the
/// name resolves again, the trackers leave the inherited maintenance in the states forced
/// on them meanwhile (`... remains in forced drain mode.`); a tracker forced into
/// maintenance under an inherited one `remains in forced maintenance` when that one ends.
#[test]
fn commands_during_dns_maintenance_are_taken_as_haproxy_takes_them() {
    let test = "commands_during_dns_maintenance_are_taken_as_haproxy_takes_them";
    let server = NamedServer::start("x", LO, Duration::from_secs(30));
    let dns = MultiDnsResponder::start();
    let lab = Lab::new(test, "tcp", ());
    let resolved = [IpAddr::from(LO)];
    let run = |commands: &[&str]| {
        for command in commands {
            assert_eq!(cli(&lab.sock, command).trim(), "", "{command}");
        }
    };
    let (ours, theirs) = lab.run(test, &backend(&server, &dns), |_front| {
        dns.set("s.test", &resolved);
        assert!(wait_until(Duration::from_secs(10), || all_up(&lab.sock)));
        let started = messages(&lab.syslog, &PREFIXES, 5).len();
        // Inherited maintenance: a tracker forced into it too.
        run(&["set server be/s state maint", "set server be/t state maint"]);
        run(&["set server be/s state ready", "set server be/t state ready"]);
        let inherited = messages(&lab.syslog, &PREFIXES, 7);
        assert!(wait_until(Duration::from_secs(10), || all_up(&lab.sock)));
        // DNS maintenance.
        dns.set("s.test", &[]);
        assert!(wait_until(Duration::from_secs(10), || all_in_maint(
            &lab.sock
        )));
        let entered = messages(&lab.syslog, &PREFIXES, 3);
        run(&["set server be/s state maint", "set server be/s state drain"]);
        run(&["set server be/s state ready", "set server be/t state drain"]);
        let commanded = messages(&lab.syslog, &PREFIXES, 1);
        let in_maint = states(&lab.sock);
        dns.set("s.test", &resolved);
        // Back, and its checks settled (no `UP 1/3` on the way).
        let back = || {
            states(&lab.sock)
                .iter()
                .all(|s| !s.contains("MAINT") && !s.contains('/'))
        };
        assert!(wait_until(Duration::from_secs(10), back));
        let left = messages(&lab.syslog, &PREFIXES, 7);
        (
            started,
            inherited,
            entered,
            commanded,
            in_maint,
            left,
            states(&lab.sock),
        )
    });
    let (_, inherited, entered, commanded, in_maint, left, after) = &ours;
    assert_eq!((inherited.len(), entered.len(), left.len()), (7, 3, 7));
    assert!(
        inherited.contains(&"Server be/t remains in forced maintenance.".to_string()),
        "{inherited:?}"
    );
    assert_eq!(
        *commanded,
        ["Server be/s is leaving forced maintenance but remains in maintenance."]
    );
    assert_eq!(
        *in_maint,
        [
            "s MAINT (resolution) 0 32",
            "t MAINT (via be/s) 0 10",
            "u MAINT (via be/t) 0 18"
        ]
    );
    assert!(
        left.contains(&"Server be/t remains in forced drain mode.".to_string()),
        "{left:?}"
    );
    assert_eq!(*after, ["s UP 2 0", "t DRAIN 2 8", "u DRAIN 2 16"]);
    agree(ours.clone(), theirs, ours);
}
