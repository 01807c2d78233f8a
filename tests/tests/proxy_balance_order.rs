//! `balance roundrobin` chooses the same server as HAProxy for every connection, beside it:
//! the same scripts of sequential connections and runtime commands (weights, maintenance,
//! drain, health, backups, full servers) run through hapx-proxy and /usr/sbin/haproxy, and
//! the servers that answered, in order, must be the same.

use hapx_tests::proxy_balance::Step::{Ask, Hold, Release};
use hapx_tests::proxy_balance::{Cli, Seeded, all_back, change, same_as_haproxy};

#[test]
fn equal_weights_in_order() {
    let servers = [("s1", ""), ("s2", ""), ("s3", "")];
    same_as_haproxy("rr-equal", "", &servers, &[Ask(10)]);
}

#[test]
fn unequal_weights_in_order() {
    let servers = [
        ("s1", "weight 5"),
        ("s2", "weight 3"),
        ("s3", "weight 1"),
        ("s4", "weight 2"),
    ];
    same_as_haproxy("rr-unequal", "", &servers, &[Ask(33)]);
}

#[test]
fn leaving_and_returning_from_maintenance() {
    let servers = [("s1", ""), ("s2", ""), ("s3", "")];
    let script = [
        Ask(2),
        Cli("disable server {b}/s1"),
        Ask(3),
        Cli("enable server {b}/s1"),
        Ask(7),
        Cli("set server {b}/s2 state maint"),
        Ask(4),
        Cli("set server {b}/s3 state maint"),
        Ask(2),
        Cli("set server {b}/s2 state ready"),
        Cli("set server {b}/s3 state ready"),
        Ask(8),
    ];
    same_as_haproxy("rr-maint", "", &servers, &script);
}

#[test]
fn draining_and_weights_set_at_run_time() {
    let servers = [("s1", "weight 3"), ("s2", "weight 2"), ("s3", "weight 1")];
    let script = [
        Ask(4),
        Cli("set server {b}/s1 weight 1"),
        Ask(5),
        Cli("set server {b}/s3 weight 7"),
        Ask(11),
        Cli("set server {b}/s2 state drain"),
        Ask(5),
        Cli("set server {b}/s2 state ready"),
        Ask(6),
        Cli("set server {b}/s3 weight 0"),
        Ask(4),
        Cli("set server {b}/s3 weight 2"),
        Ask(9),
    ];
    same_as_haproxy("rr-weights", "", &servers, &script);
}

#[test]
fn health_going_down_and_up() {
    let servers = [("s1", "weight 2"), ("s2", ""), ("s3", "weight 3")];
    let script = [
        Ask(3),
        Cli("set server {b}/s3 health down"),
        Ask(4),
        Cli("set server {b}/s1 health down"),
        Ask(2),
        Cli("set server {b}/s3 health up"),
        Ask(5),
        Cli("set server {b}/s1 health up"),
        Ask(12),
    ];
    same_as_haproxy("rr-health", "", &servers, &script);
}

#[test]
fn backups_take_over_in_order() {
    let servers = [
        ("a1", ""),
        ("a2", ""),
        ("b1", "backup weight 2"),
        ("b2", "backup"),
        ("b3", "backup weight 3"),
    ];
    let script = [
        Ask(2),
        Cli("disable server {b}/a1"),
        Cli("disable server {b}/a2"),
        Ask(3),
        Cli("disable server {b}/b1"),
        Ask(3),
        Cli("enable server {b}/b1"),
        Ask(3),
        Cli("enable server {b}/a2"),
        Ask(3),
    ];
    same_as_haproxy("rr-backup", "", &servers, &script);
    same_as_haproxy("rr-allbackups", "  option allbackups\n", &servers, &script);
}

#[test]
fn full_servers_are_skipped_in_turn() {
    let servers = [
        ("s1", "maxconn 1"),
        ("s2", "weight 2 maxconn 2"),
        ("s3", ""),
    ];
    let script = [
        Hold(5),
        Ask(6),
        Release,
        Ask(5),
        Hold(3),
        Ask(4),
        Release,
        Ask(4),
    ];
    same_as_haproxy("rr-maxconn", "", &servers, &script);
}

#[test]
fn a_redispatched_connection_avoids_the_server_it_failed_on() {
    let servers = [
        ("s1", ""),
        ("dead2", "weight 2"),
        ("s3", ""),
        ("s4", "weight 3"),
    ];
    let backend = "  option redispatch\n  retries 2\n";
    same_as_haproxy("rr-redispatch", backend, &servers, &[Ask(12)]);
}

/// Within its first seconds back, a server in slow start has the smallest step of its
/// weight (`weight * (16 * 0 + S) / S`), here constant for 3 seconds.
#[test]
fn a_server_in_slow_start_takes_its_first_share() {
    let servers = [
        ("s1", "weight 4 slowstart 60s"),
        ("s2", "weight 4"),
        ("s3", "weight 2"),
    ];
    let script = [
        Ask(3),
        Cli("disable server {b}/s1"),
        Ask(2),
        Cli("enable server {b}/s1"),
        Ask(30),
    ];
    same_as_haproxy("rr-slowstart", "", &servers, &script);
}

/// A long seeded sequence of weight and state changes between connections.
#[test]
fn random_changes_between_connections() {
    let names = ["s1", "s2", "s3", "s4", "b1", "b2"];
    let servers = [
        ("s1", "weight 3"),
        ("s2", ""),
        ("s3", "weight 5"),
        ("s4", "weight 2"),
        ("b1", "backup weight 2"),
        ("b2", "backup"),
    ];
    let mut seeded = Seeded::new(0x2545_f491_4f6c_dd1d);
    let mut script = Vec::new();
    for _ in 0..60 {
        let server = names[seeded.below(names.len() as u64) as usize];
        let roll = seeded.below(6);
        script.push(change(server, roll, || seeded.below(7)));
        script.push(Ask(seeded.below(6) as usize + 1));
    }
    // Everything back, then a few full turns.
    script.extend(all_back(&names));
    script.push(Ask(30));
    same_as_haproxy("rr-random", "", &servers, &script);
    same_as_haproxy(
        "rr-random-allbackups",
        "  option allbackups\n",
        &servers,
        &script,
    );
}

/// `static-rr` turns over HAProxy's weighted map, also across maintenance and weights set
/// to 0 and back (the only ones it takes at run time).
#[test]
fn static_rr_in_order() {
    let servers = [
        ("s1", "weight 5"),
        ("s2", "weight 3"),
        ("s3", "weight 1"),
        ("s4", "weight 2 maxconn 1"),
    ];
    let script = [
        Ask(15),
        Cli("disable server {b}/s1"),
        Ask(5),
        Cli("enable server {b}/s1"),
        Ask(12),
        Cli("set server {b}/s2 weight 0"),
        Ask(6),
        Cli("set server {b}/s2 weight 3"),
        Hold(4),
        Ask(7),
        Release,
        Ask(11),
    ];
    same_as_haproxy("static-rr", "  balance static-rr\n", &servers, &script);
}
