//! The balancer's cost per pick, the work it does for every HTTP request: a server chosen
//! and a slot taken (then given back), per algorithm, over 4 servers of distinct weights.
//! No reference runs here (HAProxy's balancer cannot be called alone): the figures compare
//! hapx's versions with each other (e.g. before and after a change).
//!
//! Run: `cargo bench -p hapx-proxy --bench balance` (prints nanoseconds per pick, the best
//! of 7 rounds: the machine's other load only ever adds time).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hapx_proxy::runtime::balance::{self, Picked};
use hapx_proxy::runtime::state::Backend;

const PICKS: u32 = 400_000;
const ROUNDS: usize = 7;

fn backend(balance: &str, hash_type: &str) -> Arc<Backend> {
    let text = format!(
        "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         backend b\n  balance {balance}\n  hash-type {hash_type}\n\
         \x20 server s0 127.0.0.1:1 weight 1\n  server s1 127.0.0.1:2 weight 2\n\
         \x20 server s2 127.0.0.1:3 weight 3\n  server s3 127.0.0.1:4 weight 5\n"
    );
    let (config, diags) = hapx_proxy::config::load_text("bench.cfg", &text, &|_| None);
    assert!(!diags.has_errors(), "{diags:?}");
    let conf = config
        .proxies
        .iter()
        .find(|p| p.name == "b")
        .expect("the backend");
    Arc::new(Backend::new(1, conf))
}

/// Nanoseconds per pick of `backend` for requests with URI `/item/N`.
fn per_pick(backend: &Arc<Backend>) -> f64 {
    let src = IpAddr::from([192, 0, 2, 1]);
    let began = Instant::now();
    for i in 0..PICKS {
        let uri = ["/item/1", "/item/2", "/item/3", "/item/4"][(i % 4) as usize];
        let key = balance::request_key(backend, src, uri, [("host", "example")], None);
        match balance::pick_or_queue(backend, key, None) {
            Some(Picked::Now(slot)) => drop(std::hint::black_box(slot)),
            other => panic!("no free server: {other:?}"),
        }
    }
    began.elapsed().as_nanos() as f64 / f64::from(PICKS)
}

fn main() {
    for (balance, hash_type) in [
        ("roundrobin", "map-based"),
        ("leastconn", "map-based"),
        ("random", "map-based"),
        ("first", "map-based"),
        ("uri", "map-based"),
        ("uri", "consistent"),
    ] {
        let b = backend(balance, hash_type);
        let best = (0..ROUNDS).map(|_| per_pick(&b)).fold(f64::MAX, f64::min);
        println!("{balance:>10} {hash_type:>10}: {best:7.1} ns/pick");
    }
}
