//! The Prometheus exporter's queue, denial, error, interception and connection families
//! side by side with HAProxy 2.6's `prometheus-exporter`, after the same traffic: requests
//! queued behind a full server (`maxconn 1`, `maxqueue`), requests denied in a frontend
//! and a backend, a response denied, a redirect, an invalid response, connections and
//! sessions rejected by `tcp-request` rules, keep-alive requests to a server; and the
//! process's rate limits and peer counts. Each family hapx exports must have HAProxy's
//! HELP, TYPE, series and values. Loopback only.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{
    HttpServer, NamedServer, Proxy, cli, free_port, http_get, kept_alive_client, read_response,
    silent_server, stat_row, temp_dir, wait_until,
};
use hapx_tests::{bins, require};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// The families this test compares, by name without `haproxy_`.
const FAMILIES: &[&str] = &[
    "frontend_limit_session_rate",
    "frontend_requests_denied_total",
    "frontend_responses_denied_total",
    "frontend_denied_connections_total",
    "frontend_denied_sessions_total",
    "frontend_failed_header_rewriting_total",
    "frontend_internal_errors_total",
    "frontend_intercepted_requests_total",
    "backend_current_queue",
    "backend_max_queue",
    "backend_requests_denied_total",
    "backend_responses_denied_total",
    "backend_response_errors_total",
    "backend_failed_header_rewriting_total",
    "backend_internal_errors_total",
    "backend_connection_reuses_total",
    "server_current_queue",
    "server_max_queue",
    "server_queue_limit",
    "server_current_throttle",
    "server_responses_denied_total",
    "server_response_errors_total",
    "server_failed_header_rewriting_total",
    "server_internal_errors_total",
    "server_connection_reuses_total",
    "server_idle_connections_current",
    "server_idle_connections_limit",
    "server_unsafe_idle_connections_current",
    "server_safe_idle_connections_current",
    "server_used_connections_current",
    "server_need_connections_current",
    "process_active_peers",
    "process_connected_peers",
    "process_limit_connection_rate",
    "process_limit_session_rate",
    "process_busy_polling_enabled",
    "process_max_memory_bytes",
    // Its value is measured: HELP and TYPE only (see `families`).
    "process_idle_time_percent",
];

/// The listening ports of one side.
#[derive(Clone, Copy)]
struct Ports {
    web: u16,
    refused: u16,
    rejected: u16,
    metrics: u16,
}

impl Ports {
    fn free() -> Ports {
        Ports {
            web: free_port(),
            refused: free_port(),
            rejected: free_port(),
            metrics: free_port(),
        }
    }

    fn web(self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.web).into()
    }
}

/// The servers both sides send to.
struct Servers {
    ok: SocketAddr,
    busy: SocketAddr,
    bad: SocketAddr,
}

/// Both proxies' configuration. Idle server connections are never purged during the test
/// (`pool-purge-delay 1h`): a purge, 5 s after the first one is kept, would change the idle
/// and needed connection counts of whichever proxy a slow machine let reach it.
fn config(sock: &Path, ports: Ports, servers: &Servers) -> String {
    let Ports {
        web,
        refused,
        rejected,
        metrics,
    } = ports;
    format!(
        "global\n  stats socket {sock} level admin\n  maxconnrate 5000\n  maxsessrate 4000\n\
         defaults\n  mode http\n  timeout connect 20s\n  timeout client 20s\n  timeout server 20s\n  timeout queue 20s\n  \
         default-server pool-purge-delay 1h\n\
         frontend fe\n  bind 127.0.0.1:{web}\n  bind 127.0.0.1:{refused}\n  bind 127.0.0.1:{rejected}\n  \
         rate-limit sessions 1000\n  \
         tcp-request connection reject if {{ dst_port {refused} }}\n  \
         tcp-request session reject if {{ dst_port {rejected} }}\n  \
         http-request deny if {{ path /deny }}\n  \
         http-request redirect location /elsewhere if {{ path /redirect }}\n  \
         use_backend busy if {{ path_beg /busy }}\n  use_backend bad if {{ path /bad }}\n  \
         use_backend strict if {{ path_beg /strict }}\n  default_backend ok\n\
         backend ok\n  server s1 {ok}\n\
         backend strict\n  http-request deny if {{ path /strict/deny }}\n  http-request set-var(txn.refuse) bool(true) if {{ path /strict/refuse }}\n  http-response deny if {{ var(txn.refuse) -m bool }}\n  server s1 {ok}\n\
         backend busy\n  server s1 {busy} maxconn 1 maxqueue 10\n\
         backend bad\n  server s1 {bad}\n\
         frontend prom\n  bind 127.0.0.1:{metrics}\n  http-request use-service prometheus-exporter if {{ path /metrics }}\n",
        sock = sock.display(),
        ok = servers.ok,
        busy = servers.busy,
        bad = servers.bad,
    )
}

struct Side {
    sock: PathBuf,
    ports: Ports,
    _proxy: Proxy,
}

fn start(dir: &Path, name: &str, binary: PathBuf, servers: &Servers) -> Side {
    let sock = dir.join(format!("{name}.sock"));
    let ports = Ports::free();
    let cfg = config(&sock, ports, servers);
    let proxy = Proxy::start_with(binary, dir, name, &cfg, ports.web(), &[]);
    Side {
        sock,
        ports,
        _proxy: proxy,
    }
}

/// A request that opens its connection and leaves it open (the proxy queues it).
fn held_request(front: SocketAddr, path: &str) -> TcpStream {
    let mut conn = TcpStream::connect(front).expect("connecting");
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    conn.write_all(request.as_bytes()).expect("sending");
    conn
}

/// A request to a listener whose rules reject it: written if the connection lasts long
/// enough, then read until the proxy closes.
fn refused_request(addr: SocketAddr) {
    let mut conn = TcpStream::connect(addr).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    let _ = std::io::Read::read_to_end(&mut conn, &mut Vec::new());
}

/// The same traffic on one side; the connections it leaves open (queued requests).
fn traffic(side: &Side) -> Vec<TcpStream> {
    let front = side.ports.web();
    for path in [
        "/deny",
        "/redirect",
        "/bad",
        "/strict/deny",
        "/strict/refuse",
    ] {
        http_get(front, path, None);
    }
    // Keep-alive requests on one connection, then on another: the server connection
    // stays idle in between.
    let mut client = kept_alive_client(front);
    for _ in 0..2 {
        client
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("sending");
        read_response(&mut client);
    }
    drop(client);
    // Its end seen by the proxy first: the server connection is idle, not in use.
    let closed = || {
        let row = stat_row(&cli(&side.sock, "show stat"), "fe", "FRONTEND");
        row.and_then(|r| r.get("scur").cloned()).unwrap_or_default() == "0"
    };
    assert!(wait_until(Duration::from_secs(10), closed), "never closed");
    http_get(front, "/", None);
    for port in [side.ports.refused, side.ports.rejected] {
        refused_request((Ipv4Addr::LOCALHOST, port).into());
    }
    // One request on the busy server, two queued behind it.
    let held: Vec<TcpStream> = (0..3)
        .map(|i| held_request(front, &format!("/busy/{i}")))
        .collect();
    let queued = || {
        let row = stat_row(&cli(&side.sock, "show stat"), "busy", "BACKEND");
        row.and_then(|r| r.get("qcur").cloned()).unwrap_or_default() == "2"
    };
    assert!(wait_until(Duration::from_secs(10), queued), "never queued");
    held
}

/// The compared families of an exposition: name → its HELP, TYPE and sample lines.
fn families(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let name = line
            .trim_start_matches("# HELP ")
            .trim_start_matches("# TYPE ")
            .split([' ', '{'])
            .next()
            .unwrap_or_default()
            .trim_start_matches("haproxy_");
        // The metrics frontend's own series depend on its scrapes, not the traffic.
        let measured = name == "process_idle_time_percent" && !line.starts_with('#');
        if FAMILIES.contains(&name) && !line.contains("proxy=\"prom\"") && !measured {
            out.entry(name.to_string())
                .or_default()
                .push(line.to_string());
        }
    }
    out
}

#[test]
fn queue_denial_error_and_connection_families_match_haproxys_exporter() {
    let test = "queue_denial_error_and_connection_families_match_haproxys_exporter";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("prom-values");
    let ok = HttpServer::start("ok");
    let bad = NamedServer::start("not-http", Ipv4Addr::LOCALHOST, Duration::from_secs(30));
    let servers = Servers {
        ok: ok.addr,
        busy: silent_server(),
        bad: bad.addr,
    };
    let sides = [
        start(&dir, "haproxy", PathBuf::from(HAPROXY), &servers),
        start(&dir, "hapx", bins::path("hapx-proxy"), &servers),
    ];
    let expositions: Vec<BTreeMap<String, Vec<String>>> = sides
        .iter()
        .map(|side| {
            let _held = traffic(side);
            let metrics = (Ipv4Addr::LOCALHOST, side.ports.metrics).into();
            let (code, _, body) = http_get(metrics, "/metrics", None);
            assert_eq!(code, 200);
            families(&body)
        })
        .collect();
    let [theirs, ours] = [&expositions[0], &expositions[1]];
    assert_eq!(
        theirs.len(),
        FAMILIES.len(),
        "HAProxy's families: {theirs:#?}"
    );
    // The traffic did what it is for, on HAProxy's side.
    for (family, series) in [
        ("backend_current_queue", "{proxy=\"busy\"} 2"),
        ("frontend_denied_connections_total", "{proxy=\"fe\"} 1"),
        ("frontend_denied_sessions_total", "{proxy=\"fe\"} 1"),
        ("frontend_intercepted_requests_total", "{proxy=\"fe\"} 1"),
        ("backend_requests_denied_total", "{proxy=\"strict\"} 1"),
        ("backend_responses_denied_total", "{proxy=\"strict\"} 1"),
        (
            "server_response_errors_total",
            "{proxy=\"bad\",server=\"s1\"} 1",
        ),
    ] {
        let line = format!("haproxy_{family}{series}");
        assert!(
            theirs[family].contains(&line),
            "{line}: {:#?}",
            theirs[family]
        );
    }
    for name in FAMILIES {
        assert_eq!(ours.get(*name), theirs.get(*name), "{name}");
    }
}
