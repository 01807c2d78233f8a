//! Configuration keywords that change what the sockets do, checked on real sockets with hapx
//! and HAProxy side by side: `backlog` (the listen queue `ss` reports), `option clitcpka`/
//! `srvtcpka` with `*tcpka-idle` (the keep-alive timer `ss` reports), `option forwardfor
//! except/if-none` (what the server receives), `id` (the ids `show stat` reports).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hapx_tests::proxy::{
    HttpServer, NamedServer, Proxy, TestDir, cli, free_port, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::binaries;
use hapx_tests::require;

const HAPROXY: &str = "/usr/sbin/haproxy";
const LO: [u8; 4] = [127, 0, 0, 1];

/// Starts `binary` on `cfg` in its own directory, once `ready_port` accepts.
fn start(binary: &Path, name: &str, cfg: &str, ready_port: u16) -> (Proxy, TestDir) {
    let dir = temp_dir(name);
    let ready = SocketAddr::from((LO, ready_port));
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, name, cfg, ready, &[]);
    (proxy, dir)
}

/// `ss` lines (no header) for a filter such as `sport = :80`.
fn ss(args: &[&str], filter: &str) -> Vec<String> {
    let out = Command::new("ss")
        .args(args)
        .arg(filter)
        .output()
        .expect("running ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The listen queue sizes of the sockets listening on `port` (ss's Send-Q column).
fn backlogs(port: u16) -> Vec<u32> {
    let mut sizes: Vec<u32> = ss(&["-ltnH"], &format!("sport = :{port}"))
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    sizes.dedup();
    sizes
}

#[test]
fn backlog_sizes_the_listen_queue() {
    let test = "backlog_sizes_the_listen_queue";
    if !require::command(test, "ss") {
        return;
    }
    for (_, binary) in binaries(test) {
        let ports = [free_port(), free_port(), free_port()];
        let cfg = format!(
            "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             listen by_proxy\n  bind 127.0.0.1:{}\n  backlog 77\n  maxconn 500\n  server s 127.0.0.1:1\n\
             listen by_maxconn\n  bind 127.0.0.1:{}\n  maxconn 33\n  server s 127.0.0.1:1\n\
             listen by_bind\n  bind 127.0.0.1:{} backlog 12\n  backlog 77\n  server s 127.0.0.1:1\n",
            ports[0], ports[1], ports[2]
        );
        let _proxy = start(&binary, "cfg-backlog", &cfg, ports[2]);
        let got: Vec<Vec<u32>> = ports.iter().map(|p| backlogs(*p)).collect();
        assert_eq!(got, [vec![77], vec![33], vec![12]], "{}", binary.display());
    }
}

/// The keep-alive timer of the established sockets `filter` selects, e.g.
/// `timer:(keepalive,29sec,0)`.
fn keepalive_timers(filter: &str) -> Vec<String> {
    ss(&["-tnoH", "state", "established"], filter)
        .iter()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("timer:")))
        .map(str::to_string)
        .collect()
}

#[test]
fn tcp_keepalive_on_both_sides() {
    let test = "tcp_keepalive_on_both_sides";
    if !require::command(test, "ss") {
        return;
    }
    for (_, binary) in binaries(test) {
        let server = NamedServer::start("s", LO.into(), Duration::from_secs(10));
        let port = free_port();
        let cfg = format!(
            "defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
             listen l\n  bind 127.0.0.1:{port}\n  option clitcpka\n  clitcpka-idle 40\n  \
             option srvtcpka\n  srvtcpka-idle 50s\n  srvtcpka-intvl 3\n  server s {}\n",
            server.addr
        );
        let _proxy = start(&binary, "cfg-tcpka", &cfg, port);
        let client = TcpStream::connect(SocketAddr::from((LO, port))).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut line = String::new();
        BufReader::new(&client).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "s");
        // The proxy's side of the client connection, and its connection to the server.
        let client_side = keepalive_timers(&format!("sport = :{port}"));
        let server_side = keepalive_timers(&format!("dport = :{}", server.port()));
        let seconds = |timers: &[String]| -> Vec<u64> {
            timers
                .iter()
                .filter_map(|t| {
                    let rest = t.strip_prefix("timer:(keepalive,")?;
                    let (value, _) = rest.split_once(',')?;
                    let secs = value.trim_end_matches("sec");
                    secs.split_once("min").map_or(secs.parse().ok(), |(m, s)| {
                        Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().unwrap_or(0))
                    })
                })
                .collect()
        };
        let (c, s) = (seconds(&client_side), seconds(&server_side));
        assert!(
            c.len() == 1 && (35..=40).contains(&c[0]),
            "{}: client side {client_side:?}",
            binary.display()
        );
        assert!(
            s.len() == 1 && (45..=50).contains(&s[0]),
            "{}: server side {server_side:?}",
            binary.display()
        );
        drop(client);
    }
}

/// One request through `addr` with these extra header lines; the X-Forwarded-For the server
/// saw last.
fn seen_xff(addr: SocketAddr, headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    let mut reader = BufReader::new(s);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("x-seen-xff:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn forwardfor_except_and_if_none() {
    let test = "forwardfor_except_and_if_none";
    for (_, binary) in binaries(test) {
        let web = HttpServer::start("web");
        let ports = [free_port(), free_port(), free_port()];
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
             listen plain\n  bind 127.0.0.1:{}\n  option forwardfor\n  server web {addr}\n\
             listen except_lo\n  bind 127.0.0.1:{}\n  option forwardfor except 127.0.0.0/8\n  server web {addr}\n\
             listen if_none\n  bind 127.0.0.1:{}\n  option forwardfor if-none\n  server web {addr}\n",
            ports[0],
            ports[1],
            ports[2],
            addr = web.addr
        );
        let at = |i: usize| SocketAddr::from((LO, ports[i]));
        let _proxy = start(&binary, "cfg-forwardfor", &cfg, ports[2]);
        assert!(wait_until(Duration::from_secs(5), || TcpStream::connect(
            at(0)
        )
        .is_ok()));
        let given = "X-Forwarded-For: 192.0.2.9\r\n";
        let name = binary.display();
        assert_eq!(seen_xff(at(0), ""), "127.0.0.1", "{name}");
        // Without if-none the proxy adds its own line, which the server reads last.
        assert_eq!(seen_xff(at(0), given), "127.0.0.1", "{name}");
        assert_eq!(seen_xff(at(1), ""), "", "{name}");
        assert_eq!(seen_xff(at(2), ""), "127.0.0.1", "{name}");
        assert_eq!(seen_xff(at(2), given), "192.0.2.9", "{name}");
    }
}

/// Custom and automatic ids of proxies and servers, as `show stat` reports them (pxname,
/// svname, iid, sid), are HAProxy's.
#[test]
fn ids_are_numbered_like_haproxy() {
    let test = "ids_are_numbered_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let mut tables = Vec::new();
    for (_, binary) in binaries(test) {
        let ports = [free_port(), free_port()];
        let socket =
            std::env::temp_dir().join(format!("hapx-ids-{}-{}.sock", std::process::id(), ports[0]));
        let cfg = format!(
            "global\n  stats socket {}\n\
             defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend f1\n  bind 127.0.0.1:{}\n  default_backend b1\n\
             backend b1\n  id 3\n  server s1 127.0.0.1:1\n  server s2 127.0.0.1:2 id 1\n  \
             server s3 127.0.0.1:3\n\
             listen l1\n  bind 127.0.0.1:{}\n  id 9\n  server s1 127.0.0.1:1 id 5\n  \
             server s2 127.0.0.1:2\n\
             backend b2\n  server s1 127.0.0.1:1\n",
            socket.display(),
            ports[0],
            ports[1]
        );
        let (_proxy, _dir) = start(&binary, "cfg-ids", &cfg, ports[1]);
        assert!(wait_until(Duration::from_secs(5), || socket.exists()));
        let csv = cli(&socket, "show stat");
        let ids: Vec<String> = csv
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() > 28).then(|| format!("{},{},{},{}", f[0], f[1], f[27], f[28]))
            })
            .collect();
        assert!(ids.len() >= 10, "{}: {csv}", binary.display());
        tables.push(ids);
        let _ = std::fs::remove_file(&socket);
    }
    assert_eq!(tables[0], tables[1], "hapx, then HAProxy");
}
