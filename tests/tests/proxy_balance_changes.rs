//! Server changes reach the balancer the moment they happen, as in HAProxy 2.6, beside it:
//! changes that cancel out with no connection in between (a health flap, a weight set to
//! 0 and back, maintenance and back) still move `roundrobin`'s turn, and several changes
//! between two connections apply in the order they were made. And a connection waiting in
//! the backend's queue is handed the server whose slot was freed, without going through
//! the balancer again: the turn of `roundrobin` (and of `static-rr`, `leastconn`'s ties)
//! goes on afterwards as if it had never waited, and the hand-off is no balancing decision
//! (`lbtot`).

use hapx_tests::proxy_balance::Step::{Ask, Column, Dequeued, Free, Hold, Queue, Release};
use hapx_tests::proxy_balance::{Cli, Seeded, all_back, change, same_as_haproxy};

#[test]
fn a_health_flap_between_two_connections_moves_the_turn() {
    let servers = [
        ("s1", "weight 5"),
        ("s2", "weight 3"),
        ("s3", ""),
        ("s4", "weight 2"),
    ];
    let script = [
        Ask(3),
        Cli("set server {b}/s1 health down"),
        Cli("set server {b}/s1 health up"),
        Ask(4),
        Cli("set server {b}/s2 health down"),
        Cli("set server {b}/s2 health up"),
        Ask(2),
        Cli("set server {b}/s4 health down"),
        Cli("set server {b}/s4 health up"),
        Ask(1),
        Cli("set server {b}/s3 health down"),
        Cli("set server {b}/s3 health up"),
        Ask(22),
    ];
    same_as_haproxy("changes-flap", "", &servers, &script);
}

#[test]
fn a_weight_set_to_zero_and_back_moves_the_turn() {
    let servers = [("s1", "weight 4"), ("s2", "weight 2"), ("s3", "weight 3")];
    let script = [
        Ask(3),
        Cli("set server {b}/s1 weight 0"),
        Cli("set server {b}/s1 weight 4"),
        Ask(4),
        Cli("set server {b}/s3 weight 0"),
        Cli("set server {b}/s3 weight 3"),
        Ask(2),
        Cli("set server {b}/s2 weight 7"),
        Cli("set server {b}/s2 weight 2"),
        Ask(14),
    ];
    same_as_haproxy("changes-weight", "", &servers, &script);
}

#[test]
fn maintenance_and_drain_in_and_out_move_the_turn() {
    let servers = [("s1", ""), ("s2", "weight 2"), ("s3", ""), ("b1", "backup")];
    let script = [
        Ask(1),
        Cli("disable server {b}/s2"),
        Cli("enable server {b}/s2"),
        Ask(3),
        Cli("set server {b}/s1 state drain"),
        Cli("set server {b}/s1 state ready"),
        Ask(2),
        Cli("set server {b}/s3 state maint"),
        Cli("set server {b}/s3 state ready"),
        Ask(3),
        // Every active gone and back: the backup never took a connection.
        Cli("disable server {b}/s1"),
        Cli("disable server {b}/s2"),
        Cli("disable server {b}/s3"),
        Cli("enable server {b}/s3"),
        Cli("enable server {b}/s1"),
        Cli("enable server {b}/s2"),
        Ask(10),
    ];
    same_as_haproxy("changes-maint", "", &servers, &script);
}

/// Several changes between two connections apply in the order made, not in server order.
#[test]
fn changes_between_two_connections_apply_in_their_order() {
    let servers = [
        ("s1", "weight 2"),
        ("s2", "weight 3"),
        ("s3", ""),
        ("s4", ""),
    ];
    let script = [
        Ask(3),
        Cli("set server {b}/s4 weight 5"),
        Cli("set server {b}/s1 weight 6"),
        Ask(4),
        Cli("set server {b}/s3 health down"),
        Cli("set server {b}/s2 weight 1"),
        Cli("set server {b}/s1 health down"),
        Cli("set server {b}/s3 health up"),
        Ask(3),
        Cli("set server {b}/s4 state maint"),
        Cli("set server {b}/s1 health up"),
        Cli("set server {b}/s4 state ready"),
        Ask(20),
    ];
    same_as_haproxy("changes-order", "", &servers, &script);
}

/// A seeded sequence of bursts of changes (one to four, no connection in between), each
/// burst followed by a few connections.
#[test]
fn random_bursts_of_changes() {
    let names = ["s1", "s2", "s3", "s4", "b1"];
    let servers = [
        ("s1", "weight 3"),
        ("s2", ""),
        ("s3", "weight 5"),
        ("s4", "weight 2"),
        ("b1", "backup weight 2"),
    ];
    let mut seeded = Seeded::new(0x9e37_79b9_7f4a_7c15);
    let mut script = Vec::new();
    for _ in 0..40 {
        for _ in 0..=seeded.below(4) {
            let server = names[seeded.below(names.len() as u64) as usize];
            // Back to ready and up twice as often as away. s2 only changes weight, never
            // to 0: some server always takes the connections.
            let roll = if server == "s2" {
                0
            } else {
                [0, 1, 2, 3, 3, 4, 5, 5][seeded.below(8) as usize]
            };
            let least = u64::from(server == "s2");
            script.push(change(server, roll, || seeded.below(5) + least));
        }
        script.push(Ask(seeded.below(4) as usize + 1));
    }
    script.extend(all_back(&names));
    script.push(Ask(24));
    same_as_haproxy("changes-random", "", &servers, &script);
}

/// Full servers (`maxconn 1`), connections queued in the backend's queue, slots freed one
/// by one: each waiter gets the freed server, and the turn goes on as HAProxy's.
fn queue_handoff_script() -> Vec<hapx_tests::proxy_balance::Step> {
    vec![
        Ask(2),
        Hold(3),
        Queue(3),
        Free("s2"),
        Free("s3"),
        Free("s1"),
        Free("s2"),
        Free("s3"),
        Free("s1"),
        Release,
        Column("lbtot"),
        Ask(9),
        Column("lbtot"),
    ]
}

const LIMITED: [(&str, &str); 3] = [
    ("s1", "maxconn 1 weight 3"),
    ("s2", "maxconn 1 weight 2"),
    ("s3", "maxconn 1"),
];

#[test]
fn a_queued_connection_gets_the_freed_server_roundrobin() {
    let backend = "  timeout queue 30s\n";
    same_as_haproxy("handoff-rr", backend, &LIMITED, &queue_handoff_script());
}

#[test]
fn a_queued_connection_gets_the_freed_server_static_rr() {
    let backend = "  timeout queue 30s\n  balance static-rr\n";
    same_as_haproxy("handoff-static", backend, &LIMITED, &queue_handoff_script());
}

#[test]
fn a_queued_connection_gets_the_freed_server_leastconn_and_first() {
    for (case, balance) in [("handoff-lc", "leastconn"), ("handoff-first", "first")] {
        let backend = format!("  timeout queue 30s\n  balance {balance}\n");
        same_as_haproxy(case, &backend, &LIMITED, &queue_handoff_script());
    }
}

/// A drained server's freed slot serves no one from the backend's queue; a server coming
/// out of maintenance takes the waiters at once; with `option redispatch`.
#[test]
fn a_queued_connection_waits_for_a_server_taking_connections() {
    let backend = "  timeout queue 30s\n  option redispatch\n";
    let script = [
        Hold(3),
        Cli("disable server {b}/s3"),
        Queue(2),
        Cli("set server {b}/s2 state drain"),
        Free("s2"),
        Free("s1"),
        Cli("set server {b}/s2 state ready"),
        Free("s1"),
        Release,
        Cli("enable server {b}/s3"),
        Column("lbtot"),
        Ask(6),
        Hold(3),
        Queue(2),
        Cli("set server {b}/s1 weight 0"),
        Cli("set server {b}/s1 weight 3"),
        Free("s3"),
        Free("s2"),
        Release,
        Ask(6),
        Column("lbtot"),
    ];
    same_as_haproxy("handoff-drain", backend, &LIMITED, &script);
}

/// `leastconn` as HAProxy's tree: idle servers in turn whatever their weights, busy ones by
/// load per weight, ties in the order they last moved, across weight and state changes.
#[test]
fn leastconn_chooses_as_haproxy_across_loads_and_changes() {
    let servers = [
        ("s1", "weight 3"),
        ("s2", "weight 2"),
        ("s3", ""),
        ("s4", "weight 2 maxconn 2"),
    ];
    let script = [
        Ask(5),
        Hold(6),
        Ask(4),
        Free("s1"),
        Hold(2),
        Release,
        Cli("set server {b}/s2 weight 2"),
        Ask(3),
        Cli("set server {b}/s3 health down"),
        Cli("set server {b}/s3 health up"),
        Ask(3),
        Hold(5),
        Cli("set server {b}/s1 state drain"),
        Ask(3),
        Cli("set server {b}/s1 state ready"),
        Hold(4),
        Release,
        Ask(6),
    ];
    same_as_haproxy("leastconn", "  balance leastconn\n", &servers, &script);
}

/// Two servers (`maxconn 1`) for the waiters' tests.
const TWO_LIMITED: [(&str, &str); 2] = [("s1", "maxconn 1"), ("s2", "maxconn 1")];

/// A server coming back takes the backend's waiter each time it comes back, not only the
/// first (HAProxy's `pendconn_grab_from_px` at every return): every server gone, the waiter
/// waits; the server back, it is served at once, and again after a second return.
#[test]
fn a_server_back_again_takes_the_waiters_each_time() {
    for (algo, off, on) in [
        ("roundrobin", "state maint", "state ready"),
        ("leastconn", "health down", "health up"),
    ] {
        let backend = format!("  balance {algo}\n  timeout queue 30s\n");
        let script = [
            Hold(2),
            Queue(2),
            Cli(format!("set server {{b}}/s1 {off}")),
            Cli(format!("set server {{b}}/s2 {off}")),
            Free("s1"),
            Free("s2"),
            Cli(format!("set server {{b}}/s1 {on}")),
            Dequeued,
            Cli(format!("set server {{b}}/s1 {off}")),
            Free("s1"),
            Cli(format!("set server {{b}}/s1 {on}")),
            Dequeued,
            Column("qcur"),
        ];
        same_as_haproxy(&format!("comeback-{algo}"), &backend, &TWO_LIMITED, &script);
    }
}

/// Under `roundrobin`, `static-rr` and `first`, a newcomer queues behind a connection
/// waiting in the backend's queue even with a server idle (HAProxy's `assign_server`); under
/// `leastconn` it takes the idle server.
#[test]
fn a_newcomer_queues_behind_the_backends_waiters() {
    let three = [
        ("s1", "maxconn 1"),
        ("s2", "maxconn 1"),
        ("s3", "maxconn 1"),
    ];
    for algo in ["roundrobin", "static-rr", "first", "leastconn"] {
        let backend = format!("  balance {algo}\n  timeout queue 30s\n");
        let newcomer = if algo == "leastconn" {
            Hold(1)
        } else {
            Queue(1)
        };
        let script = [
            Cli("set server {b}/s3 weight 0"),
            Hold(2),
            Queue(1),
            Cli("set server {b}/s3 weight 1"),
            Dequeued,
            newcomer,
            Column("qcur"),
            Free("s1"),
            Free("s2"),
            Column("lbtot"),
        ];
        same_as_haproxy(&format!("newcomer-{algo}"), &backend, &three, &script);
    }
}

/// `leastconn` with `maxqueue`: a full server whose queue has room is chosen, and the
/// connection waits in that server's queue (HAProxy's `fwlc_get_next_server`).
#[test]
fn leastconn_queues_in_a_full_servers_queue_within_its_maxqueue() {
    let servers = [
        ("s1", "maxconn 1 maxqueue 3"),
        ("s2", "maxconn 1 maxqueue 3"),
    ];
    let backend = "  balance leastconn\n  timeout queue 30s\n";
    let script = [
        Hold(2),
        Queue(2),
        Column("qcur"),
        Free("s2"),
        Free("s1"),
        Free("s1"),
        Release,
        Column("lbtot"),
        Ask(4),
    ];
    same_as_haproxy("leastconn-maxqueue", backend, &servers, &script);
}

/// `set maxconn server`: the answers of HAProxy 2.6, and the waiters take the room given.
#[test]
fn set_maxconn_server_gives_the_waiters_the_room() {
    let script = [
        Hold(2),
        Queue(2),
        Cli("set maxconn server {b}/s1 3"),
        Dequeued,
        Dequeued,
        Column("qcur"),
        Column("slim"),
        Cli("set maxconn server {b}/s1"),
        Cli("set maxconn server {b}/s1 x"),
        Cli("set maxconn server {b}/s1 2x"),
        Cli("set maxconn server {b}/nope 2"),
        Cli("set maxconn server {b} 2"),
        Cli("set maxconn server {b}/s2 0"),
        Column("slim"),
        Cli("set maxconn server {b}/s2 -3"),
        Column("slim"),
    ];
    let backend = "  timeout queue 30s\n";
    same_as_haproxy("set-maxconn", backend, &TWO_LIMITED, &script);
}
