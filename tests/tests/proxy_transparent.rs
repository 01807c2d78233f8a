//! How hapx-proxy binds and closes its server connections, beside HAProxy: transparent
//! proxying (`source ... usesrc client|clientip|hdr_ip(...)`), `interface`, health checks
//! that leave from the proxy's own address, and a server connection the server closed
//! first closing with a FIN, not a reset.
//!
//! The `usesrc` tests run in private network namespaces (see [`Lab`]): a client, the proxy
//! and a server, each in its own namespace on one bridge, the client and the server in
//! different subnets routed through the proxy's host, which delivers the server's answers
//! to the client's address to its own transparent sockets (`ip rule` and a `local` route in
//! a table of their own). Every namespace is removed when the test ends, panics included.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::netns::{Host, Network};
use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::{binaries, check_alike, check_messages};
use hapx_tests::require;
use hapx_tests::wait::eventually;

/// The client's address, in the client's subnet (the lower half of 192.0.2.0/24).
const CLIENT: &str = "192.0.2.10";
/// The proxy's addresses: where clients connect, and its own in the servers' subnet.
const PROXY_FRONT: &str = "192.0.2.1";
const PROXY_BACK: &str = "192.0.2.129";
/// The server's address, in the servers' subnet (the upper half).
const SERVER: &str = "192.0.2.130";
/// The routing table of the proxy host's `local` route (any number of its own).
const TPROXY_TABLE: &str = "100";

/// Answers each request (a head ending with a blank line) with `HTTP/1.1 200` and a body
/// naming the address the connection came from, and appends that address to LOG for every
/// connection (health checks included). Writes READY once listening.
const SERVER_SCRIPT: &str = r#"
import socket, sys, threading
port, log, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('0.0.0.0', port)); l.listen(64)
lock = threading.Lock()
open(ready, 'w').close()
def serve(c, a):
    with lock:
        with open(log, 'a') as f: f.write('%s:%d\n' % a)
    c.settimeout(5)
    data = b''
    try:
        while b'\r\n\r\n' not in data:
            d = c.recv(4096)
            if not d: break
            data += d
        if data:
            body = ('%s:%d\n' % a).encode()
            c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' % len(body) + body)
    except OSError:
        pass
    c.close()
while True:
    c, a = l.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"#;

/// Connects to HOST:PORT (retrying while the proxy starts), sends a GET of PATH with the
/// extra header lines given, and prints `LOCAL ip:port` (its own address) then the response.
const CLIENT_SCRIPT: &str = r#"
import socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
extra = ''.join(h + '\r\n' for h in sys.argv[4:])
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection((host, port), 2); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.05)
s.settimeout(10)
s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n' % (path, extra)).encode())
resp = b''
while True:
    d = s.recv(4096)
    if not d: break
    resp += d
print('LOCAL %s:%d' % s.getsockname())
sys.stdout.write(resp.decode(errors='replace'))
"#;

/// Three namespaces: a client (192.0.2.10/25, routed through the proxy), the proxy
/// (192.0.2.1/25 and 192.0.2.129/25, delivering the server's packets locally whatever
/// their destination) and a server (192.0.2.130/25, routed through the proxy).
struct Lab {
    net: Network,
    client: Host,
    proxy: Host,
    server: Host,
    dir: hapx_tests::proxy::TestDir,
}

impl Lab {
    /// The namespaces and their routes; None (after a loud skip, a failure under CI) without
    /// root, `ip` or python3.
    fn new(test: &str) -> Option<Lab> {
        if !require::network_namespaces(test) || !require::command(test, "python3") {
            return None;
        }
        let mut net = Network::new().expect("a private network");
        let client = net.add_host("client", &["192.0.2.10/25"]).unwrap();
        let front = format!("{PROXY_FRONT}/25");
        let back = format!("{PROXY_BACK}/25");
        let proxy = net.add_host("proxy", &[&front, &back]).unwrap();
        let server = net.add_host("server", &["192.0.2.130/25"]).unwrap();
        let lab = Lab {
            net,
            client,
            proxy,
            server,
            dir: temp_dir(test),
        };
        lab.ip(
            &lab.client,
            &["route", "add", "default", "via", PROXY_FRONT],
        );
        lab.ip(&lab.server, &["route", "add", "default", "via", PROXY_BACK]);
        // The server's answers to a client's address reach the transparent sockets.
        let table = ["table", TPROXY_TABLE];
        lab.ip(
            &lab.proxy,
            &[&["rule", "add", "from", SERVER][..], &table].concat(),
        );
        let local = ["route", "add", "local", "0.0.0.0/0", "dev", "lo"];
        lab.ip(&lab.proxy, &[&local[..], &table].concat());
        Some(lab)
    }

    /// `ip ARGS` inside `host`'s namespace, which must succeed.
    fn ip(&self, host: &Host, args: &[&str]) {
        let out = self.net.run(host, &[&["ip"][..], args].concat()).unwrap();
        assert!(
            out.status.success(),
            "ip {args:?} in {}: {out:?}",
            host.name
        );
    }

    /// Starts the server on `port`; the file where it logs where its connections came from.
    fn start_server(&mut self, port: u16) -> PathBuf {
        let log = self.dir.join(format!("server-{port}.log"));
        let ready = self.dir.join(format!("server-{port}.ready"));
        let mut cmd = self.net.command(&self.server, "python3");
        cmd.args(["-c", SERVER_SCRIPT, &port.to_string()])
            .arg(&log)
            .arg(&ready);
        self.net.spawn(cmd).unwrap();
        assert!(
            eventually(Duration::from_secs(10), || ready.exists()),
            "the server on {port} did not start"
        );
        log
    }

    /// Starts `binary` with `config` in the proxy's namespace (ended with the network).
    fn start_proxy(&mut self, label: &str, binary: &Path, config: &str) {
        let path = self.dir.join(format!("{label}.cfg"));
        std::fs::write(&path, config).unwrap();
        let mut cmd = self.net.command(&self.proxy, binary);
        cmd.arg("-db").arg("-f").arg(&path);
        self.net.spawn(cmd).unwrap();
    }

    /// A request for `path` from the client to the proxy's `port`, with `headers`: the
    /// client's own address and the response.
    fn get(&self, port: u16, path: &str, headers: &[&str]) -> (SocketAddr, String) {
        let port = port.to_string();
        let script = ["python3", "-c", CLIENT_SCRIPT, PROXY_FRONT, &port, path];
        let args = [&script[..], headers].concat();
        let out = self.net.run(&self.client, &args).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "client: {out:?}");
        let (first, response) = text.split_once('\n').unwrap_or((&text, ""));
        let local = first.strip_prefix("LOCAL ").expect("the client's address");
        (local.parse().unwrap(), response.to_string())
    }
}

/// The address in the body of the server's response (where the connection came from).
fn seen_by_server(response: &str) -> Option<SocketAddr> {
    let body = response.split_once("\r\n\r\n")?.1;
    body.trim().parse().ok()
}

/// The status code of `response`.
fn status(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

/// Each binary (hapx, then HAProxy when installed) started with the configuration `config`
/// makes for its frontend port and its server's port (each its own server).
fn each_binary(test: &str, lab: &mut Lab, config: impl Fn(u16, u16) -> String) -> Vec<Run> {
    let mut runs = Vec::new();
    for (i, (label, binary)) in binaries(test).into_iter().enumerate() {
        let offset = u16::try_from(i).unwrap();
        let (front, back) = (8080 + offset, 9000 + offset);
        let log = lab.start_server(back);
        lab.start_proxy(label, &binary, &config(front, back));
        runs.push(Run { label, front, log });
    }
    runs
}

/// One binary's proxy in a [`Lab`]: its frontend port, its server's connection log.
struct Run {
    label: &'static str,
    front: u16,
    log: PathBuf,
}

impl Run {
    /// Where the server's connections came from so far.
    fn server_peers(&self) -> Vec<SocketAddr> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|l| l.parse().ok()).collect()
    }
}

/// The timeouts of every configuration here (none missing, so no warning).
const TIMEOUTS: &str = "  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n";

#[test]
fn usesrc_client_connects_from_the_clients_address_and_port() {
    let test = "usesrc_client_connects_from_the_clients_address_and_port";
    let Some(mut lab) = Lab::new(test) else {
        return;
    };
    let runs = each_binary(test, &mut lab, |front, back| {
        format!(
            "defaults\n  mode tcp\n{TIMEOUTS}\
             frontend fe\n  bind {PROXY_FRONT}:{front}\n  default_backend be\n\
             backend be\n  source 0.0.0.0 usesrc client\n  server s {SERVER}:{back}\n"
        )
    });
    for run in &runs {
        let (client, response) = lab.get(run.front, "/", &[]);
        assert_eq!(status(&response), Some(200), "{}: {response}", run.label);
        assert_eq!(client.ip().to_string(), CLIENT, "{}", run.label);
        assert_eq!(
            seen_by_server(&response),
            Some(client),
            "{}: the server saw another address than the client's own",
            run.label
        );
    }
}

#[test]
fn usesrc_clientip_and_hdr_ip_in_http_mode_and_checks_from_the_proxy() {
    let test = "usesrc_clientip_and_hdr_ip_in_http_mode_and_checks_from_the_proxy";
    let Some(mut lab) = Lab::new(test) else {
        return;
    };
    // `ip` routes to the server binding the client's address; `hdr` a header's address
    // (the last occurrence by default; a server's own `source` keeps its default-server's
    // `usesrc`, as in HAProxy); `hdr0` takes its `usesrc` from the defaults, which
    // copy no header name: its connections always fail, as HAProxy's. The checks of `ip`
    // leave from the proxy's own address (HTTP checks: HAProxy's plain connect checks
    // delay the handshake's last ACK and reset, so the server never accepts them).
    let runs = each_binary(test, &mut lab, |front, back| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}\
             frontend fe\n  bind {PROXY_FRONT}:{front}\n\
               use_backend hdr0 if {{ hdr(x-zero) -m found }}\n\
               use_backend hdr if {{ hdr(x-src) -m found }}\n  default_backend ip\n\
             backend ip\n  option httpchk\n\
               server s {SERVER}:{back} check inter 300 source 0.0.0.0 usesrc clientip\n\
             backend hdr\n  default-server source 0.0.0.0 usesrc hdr_ip(x-src)\n\
               server s {SERVER}:{back} source 0.0.0.0\n\
             defaults d2\n  mode http\n{TIMEOUTS}  source 0.0.0.0 usesrc hdr_ip(x-src)\n\
             backend hdr0 from d2\n  server s {SERVER}:{back}\n"
        )
    });
    for run in &runs {
        let label = run.label;
        let (client, response) = lab.get(run.front, "/", &[]);
        assert_eq!(status(&response), Some(200), "{label}: {response}");
        let seen = seen_by_server(&response).expect("the server's answer");
        assert_eq!(seen.ip(), client.ip(), "{label}: clientip");
        assert_ne!(
            seen.port(),
            client.port(),
            "{label}: clientip keeps no port"
        );

        let headers = ["x-src: 192.0.2.66", "x-src: 192.0.2.77"];
        let (_, response) = lab.get(run.front, "/", &headers);
        assert_eq!(status(&response), Some(200), "{label}: {response}");
        let seen = seen_by_server(&response).expect("the server's answer");
        assert_eq!(seen.ip().to_string(), "192.0.2.77", "{label}: hdr_ip, last");

        // No such header: HAProxy's internal error, 500.
        let (_, response) = lab.get(run.front, "/", &["x-zero: 1", "x-src: 192.0.2.77"]);
        assert_eq!(status(&response), Some(500), "{label}: {response}");

        // Checks come from the proxy's own address, never the client's.
        let proxy_ip: std::net::IpAddr = PROXY_BACK.parse().unwrap();
        assert!(
            eventually(Duration::from_secs(10), || {
                run.server_peers().iter().any(|p| p.ip() == proxy_ip)
            }),
            "{label}: no check from {PROXY_BACK}: {:?}",
            run.server_peers()
        );
        let peers = run.server_peers();
        let foreign: Vec<_> = peers
            .iter()
            .filter(|p| p.ip() != proxy_ip)
            .map(|p| p.ip().to_string())
            .collect();
        assert_eq!(foreign, [CLIENT, "192.0.2.77"], "{label}: {peers:?}");
    }
}

#[test]
fn interface_binds_connections_to_a_device() {
    let test = "interface_binds_connections_to_a_device";
    let Some(mut lab) = Lab::new(test) else {
        return;
    };
    // Through `lo` the server cannot be reached; through `eth0` it can.
    let runs = each_binary(test, &mut lab, |front, back| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}  retries 0\n\
             frontend fe\n  bind {PROXY_FRONT}:{front}\n\
               use_backend lo if {{ path_beg /lo }}\n  default_backend eth\n\
             backend eth\n  server s {SERVER}:{back} source 0.0.0.0 interface eth0\n\
             backend lo\n  source 0.0.0.0 interface lo\n  server s {SERVER}:{back}\n"
        )
    });
    for run in &runs {
        let (_, response) = lab.get(run.front, "/", &[]);
        assert_eq!(status(&response), Some(200), "{}: {response}", run.label);
        let (_, response) = lab.get(run.front, "/lo", &[]);
        assert_eq!(status(&response), Some(503), "{}: {response}", run.label);
    }
}

/// Serves one HTTP exchange on `listener`: a response framed by the close (no length),
/// then the server's side shut; then reads until the proxy closes its side: `FIN` when it
/// closed cleanly, `RST` when it reset the connection.
fn close_first_and_watch(listener: TcpListener) -> String {
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclosed by the server\n")
        .unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => "FIN".into(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "RST".into(),
        Err(e) => format!("{e}"),
    }
}

#[test]
fn a_server_connection_the_server_closed_first_closes_cleanly() {
    let test = "a_server_connection_the_server_closed_first_closes_cleanly";
    let dir = temp_dir(test);
    // HAProxy clears its reset-on-close (`FD_LINGER_RISK`) once it read the server's close;
    // `option nolinger` resets only a connection the proxy closes first.
    let cases = ["http", "tcp"]
        .into_iter()
        .flat_map(|mode| [(mode, ""), (mode, "  option nolinger\n")]);
    for (mode, option) in cases {
        for (label, binary) in binaries(test) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let server = listener.local_addr().unwrap();
            let watching = std::thread::spawn(move || close_first_and_watch(listener));
            let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let config = format!(
                "defaults\n  mode {mode}\n{TIMEOUTS}\
                 frontend fe\n  bind {front}\n  default_backend be\n\
                 backend be\n{option}  server s {server}\n"
            );
            let _proxy = Proxy::start_with(binary.clone(), &dir, label, &config, front, &[]);
            let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
            let response = hapx_tests::proxy::http_raw(front, request, Duration::from_secs(10));
            assert!(
                response.contains("closed by the server"),
                "{label}: {response}"
            );
            let seen = watching.join().unwrap();
            let what = format!("{label}, {mode} mode {option:?}: the proxy's close as seen");
            assert_eq!(seen, "FIN", "{what}");
        }
    }
}

/// A backend holding `line` (and a server `t`), in `mode`, for `-c`.
fn backend_with(mode: &str, line: &str) -> String {
    format!(
        "defaults\n  mode {mode}\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\n\
         backend be\n  {line}\n  server t 127.0.0.1:1\n",
        free_port()
    )
}

#[test]
fn usesrc_and_interface_lines_are_checked_as_haproxy_does() {
    let test = "usesrc_and_interface_lines_are_checked_as_haproxy_does";
    // Backend lines: the same messages, word for word.
    for (mode, line, code) in [
        ("http", "source 0.0.0.0 usesrc client interface lo", 0),
        ("http", "source 0.0.0.0 usesrc 192.0.2.1:80", 0),
        (
            "http",
            "source 0.0.0.0 usesrc hdr_ip(x-forwarded-for,-10)",
            0,
        ),
        ("http", "source 0.0.0.0 usesrc", 1),
        ("http", "source 0.0.0.0 usesrc 192.0.2.1:5-6", 1),
        ("http", "source 0.0.0.0 usesrc 192.0.2.1:+5", 1),
        ("http", "source 0.0.0.0 usesrc hdr_ip(x,-11)", 1),
        ("http", "source 0.0.0.0 interface", 1),
        ("http", "source 0.0.0.0 usesrc client foo bar", 1),
        ("http", "usesrc client", 1),
        ("tcp", "source 0.0.0.0 usesrc hdr_ip(x-src)", 0),
        (
            "tcp",
            "server s 127.0.0.1:1 source 0.0.0.0 usesrc hdr_ip(x-src,2)",
            0,
        ),
        ("tcp", "source 0.0.0.0 usesrc hdr_ip(x-src,0)", 0),
    ] {
        let (exit, messages) = check_alike(test, &backend_with(mode, line));
        assert_eq!(exit, code, "{line}: {messages:?}");
        if mode == "tcp" && !line.ends_with(",0)") {
            assert!(
                messages.iter().any(|m| m.contains("in non-HTTP mode")),
                "{line}: {messages:?}"
            );
        }
    }
    // Server lines: the exit codes and the messages, word for word.
    let dir = temp_dir(test);
    for line in [
        "server s 127.0.0.1:1 source 0.0.0.0 usesrc clientip interface lo",
        "server s 127.0.0.1:1 source 0.0.0.0 usesrc",
        "server s 127.0.0.1:1 source 0.0.0.0 usesrc 192.0.2.1:1-5",
        "server s 127.0.0.1:1 source 0.0.0.0 usesrc hdr_ip(x,-11)",
        "server s 127.0.0.1:1 source 0.0.0.0 interface",
        "default-server source 0.0.0.0 interface",
        "server s 127.0.0.1:1 usesrc client",
    ] {
        let file = dir.join("server.cfg");
        std::fs::write(&file, backend_with("http", line)).unwrap();
        let ours = check_messages(&hapx_tests::bins::path("hapx-proxy"), &file);
        let Some((_, haproxy)) = binaries(test).into_iter().nth(1) else {
            continue;
        };
        let theirs = check_messages(&haproxy, &file);
        assert_eq!(
            ours, theirs,
            "{line}: hapx-proxy (left) and HAProxy (right)"
        );
    }
}

/// Connections waiting in `listener`'s queue (accepted and closed).
fn accepted_now(listener: &TcpListener) -> usize {
    let mut count = 0;
    while listener.accept().is_ok() {
        count += 1;
    }
    count
}

#[test]
fn a_plain_connect_check_ends_before_the_server_accepts_it() {
    let test = "a_plain_connect_check_ends_before_the_server_accepts_it";
    let dir = temp_dir(test);
    for (label, binary) in binaries(test) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let server = listener.local_addr().unwrap();
        let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let sock = dir.join(format!("{label}.sock"));
        let config = format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode tcp\n{TIMEOUTS}\
             frontend fe\n  bind {front}\n  default_backend be\n\
             backend be\n  server s {server} check inter 100\n",
            sock.display()
        );
        let _proxy = Proxy::start_with(binary.clone(), &dir, label, &config, front, &[]);
        let passed = || {
            let csv = hapx_tests::proxy::cli(&sock, "show stat");
            let row = hapx_tests::proxy::stat_row(&csv, "be", "s").unwrap_or_default();
            row.get("check_status").is_some_and(|s| s == "L4OK")
                && row.get("chkfail").is_some_and(|n| n == "0")
        };
        assert!(
            eventually(Duration::from_secs(10), passed),
            "{label}: no passing check"
        );
        // Several checks later, none reached the server's accept: the handshake's last ACK
        // waited for data that never came, and the reset came first (HAProxy's
        // `CONNECT_DELACK_ALWAYS` for a connect no expect follows).
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            accepted_now(&listener),
            0,
            "{label}: checks the server accepted"
        );
    }
}
