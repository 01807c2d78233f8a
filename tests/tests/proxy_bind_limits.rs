//! Per-listener settings of `bind` lines, beside HAProxy 2.6:
//!
//! - `maxconn N`: the listener stops accepting while N of its connections are open (the
//!   others wait in the kernel's queue) and takes the next one when one closes; the
//!   frontend's other listeners are not bounded by it. Compared through `show info` and the
//!   frontend's `show stat` row.
//! - `interface NAME`: the listener's sockets are bound to that device (SO_BINDTODEVICE), so
//!   a connection arriving through another one is refused; a device that does not exist
//!   gets HAProxy's warning and the listener serves every interface.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, is_listening, silent_server, stat_row, temp_dir};
use hapx_tests::proxy_rules::{binaries, check_alike, side_by_side};
use hapx_tests::{require, wait};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const TIMEOUTS: &str = "  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n";

/// What the runtime API says of the frontend: `CurrConns`, then its row's `scur` and `stot`.
fn frontend_counts(socket: &Path) -> (String, String, String) {
    let info = cli(socket, "show info");
    let conns = info
        .lines()
        .find_map(|l| l.strip_prefix("CurrConns: "))
        .unwrap_or_default()
        .to_string();
    let row = stat_row(&cli(socket, "show stat"), "fe", "FRONTEND").unwrap_or_default();
    let field = |name: &str| row.get(name).cloned().unwrap_or_default();
    (conns, field("scur"), field("stot"))
}

/// Waits until the frontend's counts are `want` (`CurrConns`, `scur`, `stot`); the counts
/// seen last.
fn settled_counts(socket: &Path, want: (&str, &str, &str)) -> (String, String, String) {
    let mut seen = Default::default();
    wait::eventually(Duration::from_secs(10), || {
        seen = frontend_counts(socket);
        (seen.0.as_str(), seen.1.as_str(), seen.2.as_str()) == want
    });
    seen
}

/// A server on a free loopback port that holds each connection until its client closes it,
/// then closes too: a session through the proxy ends when its client leaves.
fn closing_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink);
            });
        }
    });
    addr
}

#[test]
fn a_bind_maxconn_holds_its_listener_at_n_connections() {
    let test = "a_bind_maxconn_holds_its_listener_at_n_connections";
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let (capped, free) = (
        SocketAddr::from((LO, free_port())),
        SocketAddr::from((LO, free_port())),
    );
    let config = format!(
        "global\n  stats socket {}\ndefaults\n  mode tcp\n{TIMEOUTS}\
         frontend fe\n  bind {capped} maxconn 2\n  bind {free}\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        socket.display(),
        closing_server()
    );
    let traffic = |front: SocketAddr| {
        let mut on_capped: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(front).expect("connecting (the kernel queues it)"))
            .collect();
        let _other = TcpStream::connect(free).expect("connecting to the other listener");
        // Two on the capped listener, one on the other; two wait in the kernel's queue.
        let full = settled_counts(&socket, ("3", "3", "3"));
        // One leaves: the listener takes exactly one of those waiting.
        drop(on_capped.remove(0));
        let one_more = settled_counts(&socket, ("3", "3", "4"));
        (full, one_more)
    };
    let (ours, theirs) = side_by_side(test, &config, capped, traffic);
    let expected = |s: &str, c: &str, t: &str| (s.to_string(), c.to_string(), t.to_string());
    assert_eq!(
        ours,
        (expected("3", "3", "3"), expected("3", "3", "4")),
        "hapx-proxy: CurrConns, scur, stot at the cap, then after one left"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn bind_maxconn_values_are_judged_as_haproxy_does() {
    let test = "bind_maxconn_values_are_judged_as_haproxy_does";
    for (value, refused) in [("-3", true), ("", true), ("0", false), ("abc", false)] {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:1 maxconn {value}\n\
             \x20 default_backend be\nbackend be\n  server s1 127.0.0.1:2\n"
        );
        let (code, messages) = check_alike(test, &text);
        assert_eq!(code != 0, refused, "maxconn '{value}': {messages:?}");
        assert!(
            messages.iter().all(|m| !m.contains("not implemented")),
            "{messages:?}"
        );
    }
}

/// A network interface of this machine other than loopback, if there is one.
fn other_interface() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Runs `binary` on `config` until `ready` listens; whether a connection to each of
/// `probes` is accepted, and the `[WARNING]` lines it printed (without their pid).
fn bound_devices(
    binary: &Path,
    dir: &Path,
    config: &str,
    ready: SocketAddr,
    probes: &[SocketAddr],
) -> (Vec<bool>, Vec<String>) {
    let cfg = dir.join("devices.cfg");
    let err = dir.join("devices.err");
    std::fs::write(&cfg, config).expect("writing the configuration");
    let mut child = Command::new(binary)
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("a stderr file"))
        .spawn()
        .expect("starting the proxy");
    let up = wait::eventually(Duration::from_secs(10), || {
        probes.iter().chain([&ready]).all(|&a| is_listening(a))
    });
    let accepted = probes
        .iter()
        .map(|&addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "{} did not listen on every address", binary.display());
    let mut text = String::new();
    std::fs::File::open(&err)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("reading its stderr");
    let warnings = text
        .lines()
        .filter(|l| l.starts_with("[WARNING]"))
        .filter_map(|l| l.split_once(") : ").map(|(_, m)| m.to_string()))
        .collect();
    (accepted, warnings)
}

#[test]
fn a_bind_interface_binds_its_sockets_to_that_device() {
    let test = "a_bind_interface_binds_its_sockets_to_that_device";
    if !require::is_root() {
        require::skip(test, "binding sockets to a device needs root");
        return;
    }
    let Some(other) = other_interface() else {
        require::skip(test, "no network interface besides loopback");
        return;
    };
    let ports: Vec<SocketAddr> = (0..3)
        .map(|_| SocketAddr::from((LO, free_port())))
        .collect();
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}frontend fe\n  bind {} interface lo\n\
         \x20 bind {} interface {other}\n  bind {} interface hapx-none0\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        ports[0],
        ports[1],
        ports[2],
        silent_server()
    );
    let mut results = Vec::new();
    // One directory: the warnings name the configuration's path.
    let dir = temp_dir(test);
    for (name, binary) in binaries(test) {
        let (accepted, warnings) = bound_devices(&binary, &dir, &config, ports[0], &ports);
        // Loopback traffic arrives through `lo`: the other device's listener refuses it;
        // the missing device's listener was warned about and serves every interface.
        assert_eq!(
            accepted,
            [true, false, true],
            "{name}: accepted per listener"
        );
        assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
        assert!(
            warnings[0].contains("cannot bind receiver to device 'hapx-none0' (No such device)"),
            "{name}: {warnings:?}"
        );
        results.push((accepted, warnings));
    }
    if let [ours, theirs] = results.as_slice() {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
