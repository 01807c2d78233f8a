//! Distribution per balancing algorithm, weights, backups, maxconn queueing and redispatch,
//! through a real hapx-proxy on loopback.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, Proxy, ask, free_port, tally, temp_dir, wait_until};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn config(port: u16, backend: &str) -> String {
    format!(
        "defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n{backend}"
    )
}

fn servers(names: &[&str]) -> Vec<NamedServer> {
    names
        .iter()
        .map(|n| NamedServer::start(n, LO, Duration::from_secs(10)))
        .collect()
}

fn start(test: &str, backend: &str) -> (Proxy, SocketAddr) {
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let proxy = Proxy::start(&temp_dir(test), test, &config(port, backend), addr);
    (proxy, addr)
}

#[test]
fn roundrobin_follows_weights() {
    let s = servers(&["a", "b", "c"]);
    let be = format!(
        "  balance roundrobin\n  server a {} weight 1\n  server b {} weight 3\n  server c {} weight 0\n",
        s[0].addr, s[1].addr, s[2].addr
    );
    let (_p, addr) = start("rr", &be);
    let t = tally(addr, 40);
    assert_eq!(t.get("a"), Some(&10), "{t:?}");
    assert_eq!(t.get("b"), Some(&30), "{t:?}");
    assert_eq!(t.get("c"), None, "weight 0 gets nothing: {t:?}");
}

#[test]
fn static_rr_and_first() {
    let s = servers(&["a", "b"]);
    let be = format!(
        "  balance static-rr\n  server a {} weight 2\n  server b {}\n",
        s[0].addr, s[1].addr
    );
    let (_p, addr) = start("static-rr", &be);
    let t = tally(addr, 30);
    assert_eq!((t.get("a"), t.get("b")), (Some(&20), Some(&10)), "{t:?}");

    let s = servers(&["a", "b"]);
    let be = format!(
        "  balance first\n  server a {} maxconn 2\n  server b {} maxconn 2\n",
        s[0].addr, s[1].addr
    );
    let (_p, addr) = start("first", &be);
    // Sequential connections all fit in the first server.
    for _ in 0..5 {
        assert_eq!(ask(addr), "a");
        assert!(wait_until(Duration::from_secs(3), || s[0]
            .open
            .load(std::sync::atomic::Ordering::SeqCst)
            == 0));
    }
    // Two held connections fill it; the next goes to the second.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(wait_until(Duration::from_secs(3), || s[0]
        .open
        .load(std::sync::atomic::Ordering::SeqCst)
        == 2));
    assert_eq!(ask(addr), "b");
    drop(held);
}

#[test]
fn leastconn_prefers_the_least_busy() {
    let s = servers(&["a", "b"]);
    let be = format!(
        "  balance leastconn\n  server a {}\n  server b {}\n",
        s[0].addr, s[1].addr
    );
    let (_p, addr) = start("leastconn", &be);
    // Hold three connections: they spread 2/1 or 1/2; then every new one goes to the idler.
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(wait_until(Duration::from_secs(3), || {
        s[0].open.load(std::sync::atomic::Ordering::SeqCst)
            + s[1].open.load(std::sync::atomic::Ordering::SeqCst)
            == 3
    }));
    let busy_a = s[0].open.load(std::sync::atomic::Ordering::SeqCst);
    let idler = if busy_a < 2 { "a" } else { "b" };
    let (held_a, held_b) = (busy_a, 3 - busy_a);
    for _ in 0..4 {
        assert_eq!(ask(addr), idler);
        // Let the finished connection leave both the server and the proxy.
        assert!(wait_until(Duration::from_secs(3), || {
            s[0].open.load(std::sync::atomic::Ordering::SeqCst) == held_a
                && s[1].open.load(std::sync::atomic::Ordering::SeqCst) == held_b
        }));
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
}

#[test]
fn source_sticks_to_one_server() {
    let s = servers(&["a", "b", "c"]);
    let be = format!(
        "  balance source\n  server a {}\n  server b {}\n  server c {}\n",
        s[0].addr, s[1].addr, s[2].addr
    );
    let (_p, addr) = start("source", &be);
    let t = tally(addr, 12);
    assert_eq!(t.len(), 1, "one client address, one server: {t:?}");
}

#[test]
fn backups_serve_only_when_actives_are_gone() {
    let mut s = servers(&["a", "bk1", "bk2"]);
    let dead = free_port();
    let be = format!(
        "  balance roundrobin\n  server a {} check inter 200ms fall 1 rise 1\n  server dead 127.0.0.1:{dead} check inter 200ms fall 1 rise 1\n  server bk1 {} backup\n  server bk2 {} backup\n",
        s[0].addr, s[1].addr, s[2].addr
    );
    let (_p, addr) = start("backup", &be);
    assert!(wait_until(Duration::from_secs(5), || tally(addr, 4)
        .get("a")
        == Some(&4)));
    drop(s.remove(0));
    // Only the first backup takes over (no `option allbackups`).
    assert!(wait_until(Duration::from_secs(5), || tally(addr, 4)
        .get("bk1")
        == Some(&4)));
}

#[test]
fn maxconn_queues_until_a_slot_frees() {
    let s = servers(&["a"]);
    let be = format!("  timeout queue 5s\n  server a {} maxconn 1\n", s[0].addr);
    let (_p, addr) = start("maxconn", &be);
    let first = TcpStream::connect(addr).unwrap();
    assert!(wait_until(Duration::from_secs(3), || s[0]
        .open
        .load(std::sync::atomic::Ordering::SeqCst)
        == 1));
    let waiter = std::thread::spawn(move || ask(addr));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s[0].accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second connection must wait"
    );
    drop(first);
    assert_eq!(waiter.join().unwrap(), "a");
}

#[test]
fn dead_server_connection_is_redispatched() {
    let s = servers(&["alive"]);
    let dead = free_port();
    // No health checks: only retries and redispatch save the client.
    let be = format!(
        "  retries 1\n  option redispatch\n  balance roundrobin\n  server dead 127.0.0.1:{dead}\n  server alive {}\n",
        s[0].addr
    );
    let (_p, addr) = start("redispatch", &be);
    let t = tally(addr, 10);
    assert_eq!(t.get("alive"), Some(&10), "{t:?}");
}
