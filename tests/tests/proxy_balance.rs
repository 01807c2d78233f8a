//! Distribution per balancing algorithm, weights, backups, maxconn queueing and redispatch,
//! through a real hapx-proxy on loopback; where each retry goes with `option redispatch
//! [interval]`, beside HAProxy.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use hapx_tests::proxy::{
    NamedServer, Proxy, TestDir, ask, cli, free_port, stat_row, tally, temp_dir, wait_until,
};

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

/// A proxy with its runtime API, to see what the balancing reads: the connections the
/// proxy counts on each server.
struct Watched {
    _proxy: Proxy,
    addr: SocketAddr,
    sock: PathBuf,
    _dir: TestDir,
}

impl Watched {
    fn start(test: &str, backend: &str) -> Watched {
        let dir = temp_dir(test);
        let sock = dir.join("admin.sock");
        let port = free_port();
        let addr = SocketAddr::from((LO, port));
        let cfg = format!(
            "global\n  stats socket {}\n{}",
            sock.display(),
            config(port, backend)
        );
        let proxy = Proxy::start(&dir, test, &cfg, addr);
        Watched {
            _proxy: proxy,
            addr,
            sock,
            _dir: dir,
        }
    }

    /// Waits until the proxy counts `want` current connections on each server: a client
    /// that closed may still count until the proxy has ended both sides, after the server
    /// saw its end.
    fn wait_counts(&self, want: &[(&str, usize)]) {
        let counts = || {
            let csv = cli(&self.sock, "show stat");
            want.iter()
                .map(|(server, _)| {
                    let row = stat_row(&csv, "be", server).unwrap_or_default();
                    row.get("scur")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(usize::MAX)
                })
                .collect::<Vec<usize>>()
        };
        let wanted: Vec<usize> = want.iter().map(|(_, n)| *n).collect();
        assert!(
            wait_until(Duration::from_secs(5), || counts() == wanted),
            "the proxy counts {:?} connections on {want:?}",
            counts()
        );
    }
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
    let first = Watched::start("first", &be);
    let addr = first.addr;
    // Sequential connections all fit in the first server.
    for _ in 0..5 {
        assert_eq!(ask(addr), "a");
        first.wait_counts(&[("a", 0)]);
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
    let lb = Watched::start("leastconn", &be);
    let addr = lb.addr;
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
        // Let the finished connection leave the proxy's count, which leastconn reads.
        lb.wait_counts(&[("a", held_a), ("b", held_b)]);
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

/// Per server of `be`, then for the backend: connection errors, retries, redispatches.
fn retry_counters(sock: &std::path::Path) -> Vec<String> {
    let csv = cli(sock, "show stat");
    csv.lines()
        .filter(|l| l.starts_with("be,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            // svname, econ, wretr, wredis (columns 1, 13, 15, 16).
            format!("{} econ={} wretr={} wredis={}", f[1], f[13], f[15], f[16])
        })
        .collect()
}

/// Where each retry goes with `option redispatch [interval]`, beside HAProxy 2.6: one
/// connection through servers that all refuse, then which server each retry stayed on
/// (retries) or left (redispatches) and where the error was counted. HAProxy redispatches
/// by the interval (every Nth failure, or the Nth from the end), from a server that cannot
/// take it, and at every retry when the algorithm does not hash and several active servers
/// remain; a hash finds the same server again.
#[test]
fn redispatch_intervals_match_haproxy() {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !hapx_tests::require::path("redispatch_intervals_match_haproxy", haproxy, "HAProxy") {
        return;
    }
    let dir = temp_dir("redispatch-intervals");
    let refusing: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let three = format!(
        "  server a 127.0.0.1:{}\n  server b 127.0.0.1:{}\n  server c 127.0.0.1:{}\n",
        refusing[0], refusing[1], refusing[2]
    );
    let with_backup = format!(
        "  server a 127.0.0.1:{}\n  server b 127.0.0.1:{} backup\n",
        refusing[0], refusing[1]
    );
    let options = [
        "",
        "  option redispatch\n",
        "  option redispatch 1\n",
        "  option redispatch 2\n",
        "  option redispatch -2\n",
        "  option redispatch 0\n",
    ];
    let mut case = 0;
    for (balance, servers) in [
        ("roundrobin", &three),
        ("first", &three),
        ("leastconn", &three),
        ("source", &three),
        ("roundrobin", &with_backup),
    ] {
        for option in options {
            case += 1;
            let results = [hapx_tests::bins::path("hapx-proxy"), haproxy.to_path_buf()].map(
                |binary| {
                    let sock = dir.join(format!("{case}.sock"));
                    let (port, ready) = (free_port(), free_port());
                    // The retries' turn-around is the connect timeout here.
                    let cfg = format!(
                        "global\n  stats socket {} level admin\n\
                         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 50ms\n\
                         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
                         listen ready\n  mode http\n  bind 127.0.0.1:{ready}\n  stats enable\n\
                         backend be\n  balance {balance}\n  retries 4\n{option}{servers}",
                        sock.display()
                    );
                    let name = format!("{case}-{}", binary.file_name().unwrap().to_string_lossy());
                    // Ready once the stats listener listens: a probe of `fe` would count.
                    let ready = SocketAddr::from((LO, ready));
                    let _proxy = Proxy::start_with(binary, &dir, &name, &cfg, ready, &[]);
                    let mut client = TcpStream::connect(SocketAddr::from((LO, port))).unwrap();
                    client
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    // Closed once every attempt failed.
                    let _ = std::io::Read::read(&mut client, &mut [0u8; 16]);
                    retry_counters(&sock)
                },
            );
            // hapx's source hash is not HAProxy's server map: which server a client hashes
            // to differs, so only what happened to that server is compared.
            let shape = |counters: &[String]| -> Vec<String> {
                let mut list: Vec<String> = counters
                    .iter()
                    .map(|c| match balance {
                        "source" if !c.starts_with("BACKEND") => c
                            .split_once(' ')
                            .map_or(c.clone(), |(_, rest)| rest.to_string()),
                        _ => c.clone(),
                    })
                    .collect();
                if balance == "source" {
                    list.sort();
                }
                list
            };
            assert_eq!(
                shape(&results[0]),
                shape(&results[1]),
                "balance {balance}, {option:?}, servers:\n{servers}\nhapx {:?}\nHAProxy {:?}",
                results[0],
                results[1]
            );
        }
    }
}
