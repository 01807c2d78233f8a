//! The stats page (HTML, `;csv`, auth, refresh, hide-version) and every runtime API command,
//! through a real hapx-proxy; `set server ... addr/port/check-port` answers byte for byte
//! beside HAProxy.

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
    setup_with(&hapx_tests::bins::path("hapx-proxy"), test, level)
}

/// [`setup`] for hapx-proxy and for HAProxy, each with its own servers, once both see
/// server `a` UP; None (skipped) without HAProxy.
fn side_by_side(test: &str) -> Option<(Setup, Setup)> {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !hapx_tests::require::path(test, haproxy, "HAProxy") {
        return None;
    }
    let ours = setup(&format!("{test}-hapx"), "admin");
    let theirs = setup_with(haproxy, &format!("{test}-haproxy"), "admin");
    for s in [&ours, &theirs] {
        assert!(wait_until(Duration::from_secs(3), || {
            stat_row(&cli(&s.sock, "show stat"), "be", "a").unwrap()["status"] == "UP"
        }));
    }
    Some((ours, theirs))
}

/// The configuration of [`setup`] run by `binary` (hapx-proxy or HAProxy).
fn setup_with(binary: &std::path::Path, test: &str, level: &str) -> Setup {
    let servers: Vec<NamedServer> = ["a", "b"]
        .iter()
        .map(|n| NamedServer::start(n, LO, Duration::from_secs(5)))
        .collect();
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
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
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, test, &cfg, tcp, &[]);
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
    assert!(body.contains(">a<") && body.contains(">b<") && body.contains(">Backend<"));
    assert!(!body.contains(env!("CARGO_PKG_VERSION")), "hide-version");
    assert!(
        body.contains("href=\"/;norefresh\">Disable refresh"),
        "{body}"
    );
    // As HAProxy: `;norefresh` carries no refresh header, the CSV export does.
    let (code, head, _) = http_get(s.stats, "/;norefresh", Some("admin:secret"));
    assert_eq!(code, 200);
    assert!(!head.to_ascii_lowercase().contains("refresh:"), "{head}");
    let (code, head, csv) = http_get(s.stats, "/;csv", Some("admin:secret"));
    assert_eq!(code, 200);
    assert!(head.to_ascii_lowercase().contains("refresh: 5"), "{head}");
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
    // As HAProxy: every answer ends with an empty line, even an empty answer.
    assert_eq!(cli(&s.sock, "disable server be/a"), "\n");
    assert_eq!(tally(s.tcp, 4).get("b"), Some(&4));
    assert_eq!(
        stat_row(&cli(&s.sock, "show stat"), "be", "a").unwrap()["status"],
        "MAINT"
    );
    assert_eq!(cli(&s.sock, "enable server be/a"), "\n");
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
    assert_eq!(cli(&s.sock, "get weight be/b"), "3 (initial 1)\n\n");
    let t = tally(s.tcp, 8);
    assert_eq!((t.get("a"), t.get("b")), (Some(&2), Some(&6)), "{t:?}");
    assert_eq!(cli(&s.sock, "set server be/b weight 50%"), "\n");
    assert_eq!(cli(&s.sock, "get weight be/b"), "0 (initial 1)\n\n");
    assert!(cli(&s.sock, "set server be/zz state ready").contains("No such server"));
    assert!(
        cli(&s.sock, "set server be/b state sleepy")
            .contains("expects 'ready', 'drain' and 'maint'")
    );
    assert!(cli(&s.sock, "set server be/b weight 999").contains("between 0 and 256"));
    assert!(cli(&s.sock, "disable frontend nope").contains("No such frontend"));
    // A disabled frontend stops listening (connections are refused, as with HAProxy on
    // Linux); enabled again, it serves.
    assert_eq!(cli(&s.sock, "disable frontend fe"), "\n");
    let refused = std::net::TcpStream::connect(s.tcp).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        stat_row(&cli(&s.sock, "show stat"), "fe", "FRONTEND").unwrap()["status"],
        "PAUSED"
    );
    assert_eq!(
        cli(&s.sock, "disable frontend fe"),
        "All sockets are already disabled.\n\n"
    );
    assert_eq!(cli(&s.sock, "enable frontend fe"), "\n");
    assert_eq!(
        tally(s.tcp, 6).values().sum::<usize>(),
        6,
        "every connection served"
    );
    assert!(!tally(s.tcp, 2).contains_key(""));
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
    assert_eq!(cli(&s.sock, "disable server be/a"), "Permission denied\n\n");
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
        body.contains("haproxy_server_status{proxy=\"be\",server=\"b\",state=\"UP\"} 1"),
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

/// Runtime API commands whose answers must be HAProxy's, byte for byte, run in this order.
const SAME_ANSWERS: &[&str] = &[
    "get weight be/b",
    "set server be/b weight 3",
    "get weight be/b;get weight be/a",
    "set server be/b weight 999",
    "set server be/b weight abc",
    "set server be/b weight 5x",
    "set server be/b weight 200%",
    "get weight be/b",
    "set server be/zz state ready",
    "set server nope/b state ready",
    "set server be state ready",
    "set server be/b state sleepy",
    "set server be/b",
    "set server be/b addr not-an-ip",
    "disable frontend nope",
    "disable frontend fe",
    "disable frontend fe",
    "enable frontend fe",
    "enable frontend fe",
    "show servers state nope",
    "show backend",
    "set server be/b state drain",
    "disable server be/a",
    "enable server be/zz",
];

/// `show stat` columns that must agree once the servers settled (a in maintenance, b
/// draining without checks).
const SAME_COLUMNS: &[&str] = &[
    "status",
    "weight",
    "act",
    "bck",
    "uweight",
    "check_status",
    "check_code",
    "check_desc",
    "last_chk",
    "check_rise",
    "check_fall",
    "check_health",
    "stot",
    "lbtot",
    "connect",
    "cli_abrt",
    "srv_abrt",
];

#[test]
fn runtime_answers_match_haproxy() {
    let Some((ours, theirs)) = side_by_side("runtime_answers_match_haproxy") else {
        return;
    };
    for s in [&ours, &theirs] {
        assert_eq!(tally(s.tcp, 4).len(), 2);
    }
    for command in SAME_ANSWERS {
        assert_eq!(
            cli(&ours.sock, command),
            cli(&theirs.sock, command),
            "{command}"
        );
    }
    let (stat, their_stat) = (cli(&ours.sock, "show stat"), cli(&theirs.sock, "show stat"));
    assert!(stat.ends_with("\n\n") && their_stat.ends_with("\n\n"));
    for server in ["a", "b"] {
        let (row, their_row) = (
            stat_row(&stat, "be", server).unwrap(),
            stat_row(&their_stat, "be", server).unwrap(),
        );
        for col in SAME_COLUMNS {
            assert_eq!(row[*col], their_row[*col], "be/{server} {col}");
        }
    }
    // Measured columns: the same kind of value on both sides (times vary).
    for s in [&ours, &theirs] {
        let info = cli(&s.sock, "show info");
        let max_rate: u32 = info
            .lines()
            .find_map(|l| l.strip_prefix("MaxConnRate: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=4).contains(&max_rate), "{info}");
    }
    for csv in [&stat, &their_stat] {
        let fe = stat_row(csv, "fe", "FRONTEND").unwrap();
        let rate_max: u32 = fe["conn_rate_max"].parse().unwrap();
        assert!((1..=4).contains(&rate_max), "{fe:?}");
        assert_eq!(fe["conn_tot"], "4");
        let be = stat_row(csv, "be", "BACKEND").unwrap();
        let last: i64 = be["lastsess"].parse().unwrap();
        assert!((0..=5).contains(&last), "{be:?}");
        for col in ["qtime", "ctime", "ttime", "ttime_max"] {
            assert!(be[col].parse::<u64>().is_ok(), "{col}: {be:?}");
        }
    }
    // `show servers state`: the same fields, but for the seconds since the last change and
    // the ports (each proxy has its own servers).
    let fields = |s: &Setup| -> Vec<Vec<String>> {
        cli(&s.sock, "show servers state be")
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(' '))
            .map(|l| {
                l.split(' ')
                    .enumerate()
                    .filter(|(i, _)| ![9, 18].contains(i))
                    .map(|(_, f)| f.to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(fields(&ours), fields(&theirs));
}

/// One exposition: per metric name, its TYPE, HELP and samples' labels.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    labels: Vec<std::collections::BTreeMap<String, String>>,
}

fn parse_exposition(text: &str) -> std::collections::BTreeMap<String, Family> {
    let mut out = std::collections::BTreeMap::<String, Family>::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            out.entry(name.into()).or_default().help = help.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.entry(name.into()).or_default().kind = kind.into();
        } else if !line.is_empty() {
            let (series, _value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let labels = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            out.entry(name.into()).or_default().labels.push(labels);
        }
    }
    out
}

#[test]
fn prometheus_series_exist_in_haproxys_exporter() {
    let Some((ours, theirs)) = side_by_side("prometheus_series_exist_in_haproxys_exporter") else {
        return;
    };
    let mut expositions = Vec::new();
    for s in [&ours, &theirs] {
        tally(s.tcp, 4);
        // Every server state the exporter names, but NOLB, which hapx never has.
        cli(&s.sock, "set server be/b state drain");
        let metrics = || {
            let (code, _, body) = http_get(s.stats, "/metrics", None);
            assert_eq!(code, 200);
            body
        };
        let drain = metrics();
        cli(&s.sock, "disable server be/a");
        let maint = metrics();
        // A paused frontend is still UP to the exporter.
        cli(&s.sock, "disable frontend fe");
        expositions.push([drain, maint, metrics()]);
    }
    let (ours, theirs) = (&expositions[0], &expositions[1]);
    let reference = parse_exposition(&theirs[0]);
    for text in ours {
        let mine = parse_exposition(text);
        assert!(mine.len() > 80, "{} families", mine.len());
        for (name, family) in &mine {
            let Some(theirs) = reference.get(name) else {
                panic!("{name}: not in HAProxy's exporter");
            };
            assert_eq!(
                (&family.kind, &family.help),
                (&theirs.kind, &theirs.help),
                "{name}"
            );
            let keys = |l: &std::collections::BTreeMap<String, String>| -> Vec<String> {
                l.keys().cloned().collect()
            };
            let their_keys: Vec<Vec<String>> = theirs.labels.iter().map(keys).collect();
            for labels in &family.labels {
                assert!(their_keys.contains(&keys(labels)), "{name} {labels:?}");
            }
        }
    }
    // The state gauges: the same series with the same values, draining and in maintenance.
    let series = |text: &str, name: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
            .map(str::to_string)
            .collect()
    };
    for (i, (mine, reference)) in ours.iter().zip(theirs).enumerate() {
        for name in [
            "haproxy_server_status",
            "haproxy_backend_status",
            "haproxy_frontend_status",
            "haproxy_backend_agg_server_status",
            "haproxy_backend_active_servers",
            "haproxy_server_check_code",
        ] {
            let (a, b) = (series(mine, name), series(reference, name));
            // In maintenance, the one checked server reports no check code.
            assert!(!a.is_empty() || i > 0, "{name}");
            assert_eq!(a, b, "{name}");
        }
    }
}

/// `set server B/S addr IP [port P]` and `check-port` beside HAProxy: every answer byte for
/// byte (fixed ports, port maps, HAProxy's odd readings of numbers, refusals), `show servers
/// state` after them, and traffic going where the address and port (fixed or mapped) say.
#[test]
fn set_server_addr_and_ports_match_haproxy() {
    let haproxy = std::path::Path::new("/usr/sbin/haproxy");
    if !hapx_tests::require::path(
        "set_server_addr_and_ports_match_haproxy",
        haproxy,
        "HAProxy",
    ) {
        return;
    }
    // One server for both proxies, and ports nobody listens on: the commands, which name
    // them, are then the same on both sides.
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let (dead, dead_check) = (free_port(), free_port());
    let sides = [
        ("hapx", hapx_tests::bins::path("hapx-proxy")),
        ("haproxy", haproxy.to_path_buf()),
    ]
    .map(|(who, binary)| {
        let dir = temp_dir(&format!("setaddr-{who}"));
        let sock = dir.join("admin.sock");
        let port = free_port();
        let cfg = format!(
            "global\n  stats socket {} mode 600 level admin\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server a 127.0.0.1:{dead} check port {dead_check} disabled\n\
             \x20 server b 127.0.0.1:{dead}\n  server c 127.0.0.1 check port {dead_check} disabled\n",
            sock.display()
        );
        let addr = SocketAddr::from((LO, port));
        let proxy = Proxy::start_with(binary, &dir, who, &cfg, addr, &[]);
        (proxy, sock, addr, dir)
    });
    let commands = [
        "set server be/b addr 127.0.0.2",
        "set server be/b addr 127.0.0.2",
        "set server be/b addr 127.0.0.3 port 19000",
        "set server be/b addr 127.0.0.3 port 19000",
        "set server be/b addr 127.0.0.3 port 19001",
        "set server be/b addr 127.0.0.4 port abc",
        "set server be/b addr 127.0.0.4 port",
        "set server be/b addr 127.0.0.4 port 70000",
        "set server be/b addr 127.0.0.4 port 99999999999999999999",
        "set server be/b addr 127.0.0.4 port 12abc",
        "set server be/b addr 127.0.0.4 port -5",
        "set server be/b addr 127.0.0.4 foo 5",
        "set server be/b addr 1.2.3.4.5",
        "set server be/b addr 127.1",
        "set server be/b addr localhost",
        "set server be/b addr ::1 port 19006",
        "set server be/b addr ::ffff:1.2.3.4",
        "set server be/b addr",
        "set server be/b port 19005",
        "set server be/b check-port 19010",
        "set server be/a check-port abc",
        "set server be/a check-port 12x",
        "set server be/a check-port +7",
        "set server be/a check-port -1",
        "set server be/a check-port 65536",
        "set server be/a check-port",
        "set server be/a check-port 19010",
        "set server be/a check-port 0",
        "set server be/c check-port 0",
        "set server be/c check-port -",
        "set server be/c check-port 5",
        "set server be/a check-port 19011",
        "set server be/a addr 127.0.0.1 port +3",
        "set server be/a addr 127.0.0.1 port +3",
        "set server be/a addr 127.0.0.1 port -3",
        "set server be/a addr 127.0.0.1 port 5",
        "set server be/c addr 127.0.0.7 port 19002",
        "set server be/c addr 127.0.0.7 port +0",
        "set server be/a fqdn",
        "set server be/a fqdn other.example",
        "show servers state be",
    ];
    let [ours, theirs] = &sides;
    for command in commands {
        let (mine, reference) = (cli(&ours.1, command), cli(&theirs.1, command));
        if command.starts_with("show servers state") {
            // All but the seconds since the last change.
            let strip = |text: &str| -> Vec<String> {
                text.lines()
                    .map(|l| {
                        l.split(' ')
                            .enumerate()
                            .filter(|(i, _)| *i != 9 || l.starts_with('#'))
                            .map(|(_, f)| f)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect()
            };
            assert_eq!(strip(&mine), strip(&reference), "{command}");
        } else {
            assert_eq!(mine, reference, "{command}");
        }
    }
    // Traffic follows: to b's new fixed port, then through a port map (the client's port
    // moved by an offset, here down to the server's).
    for (who, (_, sock, addr, _)) in [("hapx", ours), ("HAProxy", theirs)] {
        cli(
            sock,
            &format!("set server be/b addr 127.0.0.1 port {}", srv.port()),
        );
        assert_eq!(ask(*addr), "s", "{who}: fixed port");
        // Server a (checked, so that it may have a port map) takes over.
        cli(sock, &format!("set server be/a check-port {}", srv.port()));
        cli(sock, "enable server be/a;disable server be/b");
        let offset = i32::from(srv.port()) - i32::from(addr.port());
        let answer = cli(
            sock,
            &format!("set server be/a addr 127.0.0.1 port {offset:+}"),
        );
        assert!(answer.contains("port changed"), "{who}: {answer}");
        assert_eq!(ask(*addr), "s", "{who}: mapped port");
    }
}

/// The syslog messages that come to `socket` until it has been quiet for a second, each as
/// `<PRI>message` (the date, tag and pid left out).
fn syslog_messages(socket: &std::net::UdpSocket) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]);
        let text = text.trim_end();
        let pri = text.split_once('>').map_or("", |(p, _)| p);
        let message = text.split_once("]: ").map_or(text, |(_, m)| m);
        out.push(format!("{pri}>{message}"));
    }
    out
}

/// A drained server that its checks take DOWN is a notice, not an alert, as HAProxy's
/// `srv_update_status` words it for a server that took no new traffic anyway.
#[test]
fn a_drained_server_going_down_is_a_notice_like_haproxy() {
    let test = "a_drained_server_going_down_is_a_notice_like_haproxy";
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    std::thread::spawn(move || for _ in up.incoming() {});
    let dead = free_port();
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n  log {} local0\n\
         defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server s1 {up_addr} check inter 100 fall 1\n  server s2 {up_addr}\n",
        sock.display(),
        syslog.local_addr().unwrap()
    );
    let status = || stat_row(&cli(&sock, "show stat"), "be", "s1").map(|r| r["status"].clone());
    let run = |_| {
        assert!(wait_until(Duration::from_secs(3), || status().as_deref() == Some("UP")));
        syslog_messages(&syslog);
        assert_eq!(cli(&sock, "set server be/s1 state drain").trim(), "");
        assert_eq!(
            cli(&sock, &format!("set server be/s1 check-port {dead}")).trim(),
            ""
        );
        assert!(wait_until(Duration::from_secs(3), || status().as_deref()
            == Some("DOWN")));
        // The check's duration is the host's.
        syslog_messages(&syslog)
            .iter()
            .map(|m| match m.split_once("check duration: ") {
                Some((head, tail)) => {
                    let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
                    format!("{head}check duration: N{rest}")
                }
                None => m.clone(),
            })
            .collect::<Vec<_>>()
    };
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = hapx_tests::proxy_rules::side_by_side(test, &config, front, run);
    let down = "<133>Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
    assert!(ours.iter().any(|m| m == down), "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A drained server is reminded of its drain each time HAProxy recomputes its status
/// without an admin change: its weight set by the CLI (`set server ... weight`, `set
/// weight`), to a new value or the same; not when nothing is recomputed (a drain asked
/// again) nor in maintenance. (An agent's weight goes the same way.)
#[test]
fn weight_changes_remind_a_drained_server_like_haproxy() {
    let test = "weight_changes_remind_a_drained_server_like_haproxy";
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    std::thread::spawn(move || for _ in up.incoming() {});
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n  log {} local0\n\
         defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server s1 {up_addr}\n  server s2 {up_addr}\n",
        sock.display(),
        syslog.local_addr().unwrap()
    );
    let commands = [
        "set server be/s1 state drain",
        "set server be/s1 weight 7",
        "set server be/s1 weight 7",
        "set weight be/s1 50%",
        "set server be/s1 state drain",
        "set server be/s1 state maint",
        "set server be/s1 weight 3",
        "set server be/s1 state ready",
        "set server be/s1 weight 2",
    ];
    let run = |_| {
        syslog_messages(&syslog);
        for command in commands {
            assert_eq!(cli(&sock, command).trim(), "", "{command}");
        }
        syslog_messages(&syslog)
    };
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = hapx_tests::proxy_rules::side_by_side(test, &config, front, run);
    let reminder = "<133>Server be/s1 remains in forced drain mode.";
    assert_eq!(
        ours.iter().filter(|m| *m == reminder).count(),
        3,
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// An operator's maintenance and drain changes (`disable`/`enable server`, `set server
/// ... state`), and the check verdicts around them, are logged with HAProxy's words and
/// levels: going DOWN for maintenance (notice from drain, alert otherwise), a server DOWN by
/// its checks entering maintenance, entering and leaving drain, leaving maintenance, the
/// servers left ("Running on backup."), and the emergency when none is left.
#[test]
fn admin_changes_are_logged_like_haproxy() {
    let test = "admin_changes_are_logged_like_haproxy";
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    std::thread::spawn(move || for _ in up.incoming() {});
    let dead = SocketAddr::from((LO, free_port()));
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n  log {} local0\n\
         defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  server s1 {up_addr} check inter 200\n  server s2 {up_addr}\n\
         \x20 server dead {dead} check inter 100 fall 1\n  server b1 {up_addr} backup\n",
        sock.display(),
        syslog.local_addr().unwrap()
    );
    let commands = [
        "disable server be/dead",
        "set server be/s1 state drain",
        "set server be/s1 state maint",
        "set server be/s2 state maint",
        "set server be/b1 state maint",
        "enable server be/dead",
        "set server be/s1 state ready",
        "set server be/s1 state drain",
        "set server be/s1 state ready",
        "set server be/s2 state drain",
        "set server be/s2 state ready",
    ];
    let run = |_| {
        assert!(wait_until(Duration::from_secs(3), || {
            let csv = cli(&sock, "show stat");
            let status = |s| stat_row(&csv, "be", s).map(|r| r["status"].clone());
            status("dead").as_deref() == Some("DOWN") && status("s1").as_deref() == Some("UP")
        }));
        syslog_messages(&syslog);
        for command in commands {
            assert_eq!(cli(&sock, command).trim(), "", "{command}");
            std::thread::sleep(Duration::from_millis(300));
        }
        syslog_messages(&syslog)
    };
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = hapx_tests::proxy_rules::side_by_side(test, &config, front, run);
    let expected_start = [
        "<133>Server be/dead was DOWN and now enters maintenance.",
        "<133>Server be/s1 enters drain state. 1 active and 1 backup servers online. 0 sessions requeued, 0 total in queue.",
        "<133>Server be/s1 is going DOWN for maintenance. 1 active and 1 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129>Server be/s2 is going DOWN for maintenance. 0 active and 1 backup servers left. Running on backup. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<129>Backup Server be/b1 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
        "<128>backend be has no server available!",
        "<133>Server be/dead is UP/READY (leaving forced maintenance).",
    ];
    assert_eq!(ours[..expected_start.len()], expected_start, "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
