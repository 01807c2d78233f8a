//! The stats page (HTML, `;csv`, auth, refresh, hide-version) and every runtime API command,
//! through a real hapx-proxy.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hapx_tests::proxy::{
    NamedServer, Proxy, ask, cli, free_port, http_get, stat_row, tally, temp_dir, wait_until,
};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

struct Setup {
    _proxy: Proxy,
    servers: Vec<NamedServer>,
    sock: std::path::PathBuf,
    tcp: SocketAddr,
    stats: SocketAddr,
    // Last: removed after the proxy has stopped.
    _dir: hapx_tests::proxy::TestDir,
}

fn setup(test: &str, level: &str) -> Setup {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let servers: Vec<NamedServer> = ["a", "b"]
        .iter()
        .map(|n| NamedServer::start(n, LO, Duration::from_secs(5)))
        .collect();
    let (port, stats_port) = (free_port(), free_port());
    let cfg = format!(
        "global\n  stats socket {} mode 600 level {level}\n  stats timeout 5s\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n  server a {} check inter 200ms\n  server b {}\n\
         listen stats\n  mode http\n  bind 127.0.0.1:{stats_port}\n  http-request use-service prometheus-exporter if {{ path /metrics }}\n  stats enable\n  stats uri /\n  stats refresh 5s\n  stats hide-version\n  stats auth admin:secret\n",
        sock.display(),
        servers[0].addr,
        servers[1].addr
    );
    let tcp = SocketAddr::from((LO, port));
    let proxy = Proxy::start(&dir, test, &cfg, tcp);
    Setup {
        _proxy: proxy,
        servers,
        sock,
        tcp,
        stats: SocketAddr::from((LO, stats_port)),
        _dir: dir,
    }
}

#[test]
fn stats_page_needs_auth_and_shows_servers() {
    let s = setup("stats-page", "admin");
    let (code, head, _) = http_get(s.stats, "/", None);
    assert_eq!(code, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm="),
        "{head}"
    );
    assert_eq!(http_get(s.stats, "/", Some("admin:wrong")).0, 401);
    tally(s.tcp, 4);
    let (code, head, body) = http_get(s.stats, "/", Some("admin:secret"));
    assert_eq!(code, 200);
    assert!(head.to_ascii_lowercase().contains("refresh: 5"), "{head}");
    assert!(body.contains("<html>") && body.contains("Statistics Report"));
    assert!(body.contains(">a<") && body.contains(">b<") && body.contains("BACKEND"));
    assert!(!body.contains(env!("CARGO_PKG_VERSION")), "hide-version");
    let (code, _, csv) = http_get(s.stats, "/;csv", Some("admin:secret"));
    assert_eq!(code, 200);
    assert!(csv.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"));
    let row = stat_row(&csv, "be", "b").unwrap();
    assert_eq!(row["stot"], "2");
    assert_eq!(row["status"], "no check");
}

#[test]
fn show_commands_use_haproxys_formats() {
    let s = setup("stats-show", "admin");
    let info = cli(&s.sock, "show info");
    for key in [
        "Name:",
        "Pid:",
        "Uptime_sec:",
        "CurrConns:",
        "CumConns:",
        "Maxconn:",
    ] {
        assert!(
            info.lines().any(|l| l.starts_with(key)),
            "{key} missing in\n{info}"
        );
    }
    let stat = cli(&s.sock, "show stat");
    let header = stat.lines().next().unwrap();
    assert_eq!(
        header.split(',').count(),
        129,
        "HAProxy 2.6 has 128 columns plus the trailing comma"
    );
    for line in stat.lines().skip(1).filter(|l| !l.is_empty()) {
        assert_eq!(line.split(',').count(), 129, "{line}");
    }
    assert!(wait_until(Duration::from_secs(3), || stat_row(
        &cli(&s.sock, "show stat"),
        "be",
        "a"
    )
    .unwrap()["status"]
        == "UP"));
    let state = cli(&s.sock, "show servers state");
    assert!(
        state.starts_with("1\n# be_id be_name srv_id srv_name srv_addr"),
        "{state}"
    );
    assert!(
        state.lines().any(|l| l.split(' ').nth(3) == Some("a")),
        "{state}"
    );
    assert!(cli(&s.sock, "show servers state nope").contains("Can't find backend"));
    assert!(cli(&s.sock, "show backend").lines().any(|l| l == "be"));
    assert!(cli(&s.sock, "help").contains("set server <bk>/<srv> state"));
    assert!(cli(&s.sock, "bogus").starts_with("Unknown command"));
}

#[test]
fn server_admin_commands_change_traffic() {
    let s = setup("stats-admin", "admin");
    assert_eq!(tally(s.tcp, 4).len(), 2);
    assert_eq!(cli(&s.sock, "disable server be/a"), "");
    assert_eq!(tally(s.tcp, 4).get("b"), Some(&4));
    assert_eq!(
        stat_row(&cli(&s.sock, "show stat"), "be", "a").unwrap()["status"],
        "MAINT"
    );
    assert_eq!(cli(&s.sock, "enable server be/a"), "");
    assert!(wait_until(Duration::from_secs(2), || tally(s.tcp, 4).len() == 2));
    cli(&s.sock, "set server be/b state drain");
    assert_eq!(
        stat_row(&cli(&s.sock, "show stat"), "be", "b").unwrap()["status"],
        "DRAIN"
    );
    assert_eq!(tally(s.tcp, 4).get("a"), Some(&4));
    cli(&s.sock, "set server be/b state maint");
    assert_eq!(
        stat_row(&cli(&s.sock, "show stat"), "be", "b").unwrap()["status"],
        "MAINT"
    );
    cli(&s.sock, "set server be/b state ready");
    cli(&s.sock, "set server be/b weight 3");
    assert_eq!(cli(&s.sock, "get weight be/b"), "3 (initial 1)\n");
    let t = tally(s.tcp, 8);
    assert_eq!((t.get("a"), t.get("b")), (Some(&2), Some(&6)), "{t:?}");
    assert!(cli(&s.sock, "set server be/b weight 50%").is_empty());
    assert_eq!(cli(&s.sock, "get weight be/b"), "0 (initial 1)\n");
    assert!(cli(&s.sock, "set server be/zz state ready").contains("No such server"));
    assert!(
        cli(&s.sock, "set server be/b state sleepy")
            .contains("expects 'ready', 'drain' and 'maint'")
    );
    assert!(cli(&s.sock, "set server be/b weight 999").contains("Require <weight>"));
    assert!(cli(&s.sock, "disable frontend nope").contains("No such frontend"));
    // A disabled frontend serves nobody; enabled again, it does.
    assert_eq!(cli(&s.sock, "disable frontend fe"), "");
    assert_eq!(ask(s.tcp), "");
    assert_eq!(
        stat_row(&cli(&s.sock, "show stat"), "fe", "FRONTEND").unwrap()["status"],
        "STOP"
    );
    assert_eq!(cli(&s.sock, "enable frontend fe"), "");
    assert_ne!(ask(s.tcp), "");
    // A server moved to another address: its traffic follows.
    let moved = NamedServer::start_on(
        "moved",
        SocketAddr::from(([127, 0, 0, 3], s.servers[1].port())),
        Duration::from_secs(5),
    );
    let answer = cli(&s.sock, "set server be/b addr 127.0.0.3");
    assert!(
        answer.contains("IP changed from '127.0.0.1' to '127.0.0.3'"),
        "{answer}"
    );
    cli(&s.sock, "set server be/b weight 1");
    assert!(tally(s.tcp, 4).contains_key("moved"));
    assert!(cli(&s.sock, "set server be/b addr not-an-ip").contains("Invalid addr"));
    drop(moved);
}

#[test]
fn operator_level_cannot_change_servers() {
    let s = setup("stats-level", "operator");
    assert_eq!(cli(&s.sock, "disable server be/a"), "Permission denied\n");
    assert!(cli(&s.sock, "show stat").starts_with("# pxname"));
}

#[test]
fn prometheus_exporter_reports_servers() {
    let s = setup("stats-prom", "admin");
    tally(s.tcp, 3);
    // No credentials needed: the exporter answers before the stats page's auth.
    let (code, head, body) = http_get(s.stats, "/metrics", None);
    assert_eq!(code, 200, "{head}");
    assert!(
        body.contains("# TYPE haproxy_server_status gauge"),
        "{body}"
    );
    assert!(
        body.contains("haproxy_server_status{proxy=\"be\",server=\"b\"} 1"),
        "{body}"
    );
    let total: u64 = ["a", "b"]
        .iter()
        .map(|srv| {
            let key = format!("haproxy_server_sessions_total{{proxy=\"be\",server=\"{srv}\"}} ");
            body.lines()
                .find_map(|l| l.strip_prefix(&key))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 3);
}
