//! `http-response track-scN`, side by side with HAProxy 2.6: the entry it tracks counts
//! the request being answered (`http_req_cnt`, `http_req_rate`), as an `http-request`
//! tracking does, and HAProxy's `http_res_get_intercept_rule` does; a slot already tracked
//! by the request's rules is left as it is.

use std::net::SocketAddr;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::wait::eventually;

fn front() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The data of each entry of table `be` behind `socket` (its key and counters, without
/// its expiry and address).
fn entries(socket: &std::path::Path) -> Vec<String> {
    let table = cli(socket, "show table be");
    (table.lines())
        .filter(|l| l.starts_with("0x"))
        .map(|l| {
            let words = l.split_whitespace().skip(1);
            let data = words.filter(|w| !w.starts_with("exp="));
            data.collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// A frontend whose backend tracks `src` in slot 1 with `tracking`, an origin answering
/// 200, 404 for /nf and 503 for /fail; each path of `paths` on its own connection.
fn run(test: &str, tracking: &str, paths: &[&str]) -> (Vec<String>, Option<Vec<String>>) {
    let (addr, origin) = (front(), front());
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let text = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 6s\n  timeout server 6s\n  timeout connect 1s\n\
         frontend f\n  bind {addr}\n  default_backend be\n\
         backend be\n\
         \x20 stick-table type ip size 10 store http_req_cnt,http_req_rate(10s),http_err_cnt\n\
         {tracking}\
         \x20 server s {origin}\n\
         listen origin\n  bind {origin}\n\
         \x20 http-request return status 404 if {{ path /nf }}\n\
         \x20 http-request return status 503 if {{ path /fail }}\n\
         \x20 http-request return status 200\n",
        socket.display()
    );
    side_by_side(test, &text, addr, |a| {
        for path in paths {
            let (status, _, _) = hapx_tests::proxy::http_get(a, path, None);
            assert_ne!(status, 0, "{test}: no answer to {path}");
        }
        // Once every stream let go of its entry (HAProxy's may still hold it just after
        // its response).
        let mut seen = entries(&socket);
        eventually(Duration::from_secs(5), || {
            seen = entries(&socket);
            seen.iter().all(|e| e.contains(" use=0 "))
        });
        seen
    })
}

#[test]
fn a_response_tracking_counts_the_request_it_answers() {
    let test = "a_response_tracking_counts_the_request_it_answers";
    let tracking = "  http-response track-sc1 src\n";
    let (ours, theirs) = run(test, tracking, &["/a", "/nf", "/fail", "/b"]);
    assert_eq!(
        ours,
        ["key=127.0.0.1 use=0 http_req_cnt=4 http_req_rate(10000)=4 http_err_cnt=1"],
        "hapx"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx, then HAProxy");
    }
}

#[test]
fn a_response_tracking_leaves_a_slot_the_request_tracks() {
    let test = "a_response_tracking_leaves_a_slot_the_request_tracks";
    let tracking = "  http-request track-sc1 src\n  http-response track-sc1 src\n";
    let (ours, theirs) = run(test, tracking, &["/a", "/b"]);
    assert_eq!(
        ours,
        ["key=127.0.0.1 use=0 http_req_cnt=2 http_req_rate(10000)=2 http_err_cnt=0"],
        "hapx"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx, then HAProxy");
    }
}
