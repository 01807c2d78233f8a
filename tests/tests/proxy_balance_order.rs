//! `balance roundrobin` chooses the same server as HAProxy for every connection, beside it:
//! the same scripts of sequential connections and runtime commands (weights, maintenance,
//! drain, health, backups, full servers) run through hapx-proxy and /usr/sbin/haproxy, and
//! the servers that answered, in order, must be the same.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, Proxy, TestDir, ask, cli, free_port, temp_dir};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// One step of a script.
#[derive(Debug, Clone)]
enum Step {
    /// This many connections, one after the other, each closed before the next.
    Ask(usize),
    /// This many connections, kept open (until [`Step::Release`]).
    Hold(usize),
    /// Closes the kept connections, then waits until the proxy counts none on the servers.
    Release,
    /// A runtime API command (`{b}` stands for the backend's name).
    Cli(String),
}

use Step::{Ask, Hold, Release};

/// A runtime API command step.
#[allow(non_snake_case)]
fn Cli(command: impl Into<String>) -> Step {
    Step::Cli(command.into())
}

/// Runs `script` through `binary` in front of `names` servers (each answering with its
/// name), with `servers` the backend's server options by name; the names answered in order.
fn run(
    binary: &Path,
    dir: &TestDir,
    case: &str,
    backend: &str,
    servers: &[(&str, &str)],
    script: &[Step],
) -> Vec<String> {
    // A server named `dead...` refuses connections: nothing listens on its port.
    let live: Vec<Option<NamedServer>> = servers
        .iter()
        .map(|(n, _)| {
            (!n.starts_with("dead")).then(|| NamedServer::start(n, LO, Duration::from_secs(30)))
        })
        .collect();
    let lines: String = servers
        .iter()
        .zip(&live)
        .map(|((n, opts), s)| {
            let port = s.as_ref().map_or_else(free_port, NamedServer::port);
            format!("  server {n} 127.0.0.1:{port} {opts}\n")
        })
        .collect();
    let tag = binary.file_name().unwrap().to_string_lossy();
    let sock = dir.join(format!("{case}-{tag}.sock"));
    let (port, ready) = (free_port(), free_port());
    let cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout client 30s\n  timeout server 30s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         listen ready\n  mode http\n  bind 127.0.0.1:{ready}\n  stats enable\n\
         backend be\n  balance roundrobin\n{backend}{lines}",
        sock.display()
    );
    let ready = SocketAddr::from((LO, ready));
    let _proxy = Proxy::start_with(
        binary.to_path_buf(),
        dir,
        &format!("{case}-{tag}"),
        &cfg,
        ready,
        &[],
    );
    let front = SocketAddr::from((LO, port));
    let mut seen = Vec::new();
    let mut held: Vec<TcpStream> = Vec::new();
    for step in script {
        match step {
            Ask(n) => {
                for _ in 0..*n {
                    seen.push(ask(front));
                    // A closed connection counts on its server until the proxy has ended
                    // it: a full server would be skipped by chance.
                    wait_served(&sock, servers, held.len());
                }
            }
            Hold(n) => {
                for _ in 0..*n {
                    let (name, conn) = ask_kept(front);
                    seen.push(name);
                    held.push(conn);
                    wait_served(&sock, servers, held.len());
                }
            }
            Release => {
                held.clear();
                wait_served(&sock, servers, 0);
            }
            Step::Cli(command) => {
                let answer = cli(&sock, &command.replace("{b}", "be"));
                seen.push(format!("[{command}: {}]", answer.trim()));
            }
        }
    }
    seen
}

/// Connects, reads the server's name, and keeps the connection.
fn ask_kept(front: SocketAddr) -> (String, TcpStream) {
    let conn = TcpStream::connect_timeout(&front, Duration::from_secs(3)).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut reader, &mut line);
    (line.trim().to_string(), conn)
}

/// Waits until the proxy counts `want` current connections on the servers in all.
fn wait_served(sock: &Path, servers: &[(&str, &str)], want: usize) {
    let served = || {
        let csv = cli(sock, "show stat");
        let current = servers.iter().map(|(n, _)| {
            hapx_tests::proxy::stat_row(&csv, "be", n)
                .and_then(|row| row.get("scur")?.parse::<usize>().ok())
                .unwrap_or(usize::MAX / 8)
        });
        current.sum::<usize>() == want
    };
    assert!(
        hapx_tests::proxy::wait_until(Duration::from_secs(10), served),
        "not {want} connections counted on the servers"
    );
}

/// Runs the script through both and compares.
fn same_as_haproxy(case: &str, backend: &str, servers: &[(&str, &str)], script: &[Step]) {
    if !hapx_tests::require::path(case, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(case);
    let [hapx, haproxy] = [hapx_tests::bins::path("hapx-proxy"), PathBuf::from(HAPROXY)]
        .map(|binary| run(&binary, &dir, case, backend, servers, script));
    eprintln!("{case}: {hapx:?}");
    assert!(
        hapx.iter().all(|s| !s.is_empty()),
        "a connection failed: {hapx:?}"
    );
    assert_eq!(
        hapx, haproxy,
        "{case}: hapx (left) and HAProxy (right) differ"
    );
}

#[test]
fn equal_weights_in_order() {
    let servers = [("s1", ""), ("s2", ""), ("s3", "")];
    same_as_haproxy("rr-equal", "", &servers, &[Ask(10)]);
}

#[test]
fn unequal_weights_in_order() {
    let servers = [
        ("s1", "weight 5"),
        ("s2", "weight 3"),
        ("s3", "weight 1"),
        ("s4", "weight 2"),
    ];
    same_as_haproxy("rr-unequal", "", &servers, &[Ask(33)]);
}

#[test]
fn leaving_and_returning_from_maintenance() {
    let servers = [("s1", ""), ("s2", ""), ("s3", "")];
    let script = [
        Ask(2),
        Cli("disable server {b}/s1"),
        Ask(3),
        Cli("enable server {b}/s1"),
        Ask(7),
        Cli("set server {b}/s2 state maint"),
        Ask(4),
        Cli("set server {b}/s3 state maint"),
        Ask(2),
        Cli("set server {b}/s2 state ready"),
        Cli("set server {b}/s3 state ready"),
        Ask(8),
    ];
    same_as_haproxy("rr-maint", "", &servers, &script);
}

#[test]
fn draining_and_weights_set_at_run_time() {
    let servers = [("s1", "weight 3"), ("s2", "weight 2"), ("s3", "weight 1")];
    let script = [
        Ask(4),
        Cli("set server {b}/s1 weight 1"),
        Ask(5),
        Cli("set server {b}/s3 weight 7"),
        Ask(11),
        Cli("set server {b}/s2 state drain"),
        Ask(5),
        Cli("set server {b}/s2 state ready"),
        Ask(6),
        Cli("set server {b}/s3 weight 0"),
        Ask(4),
        Cli("set server {b}/s3 weight 2"),
        Ask(9),
    ];
    same_as_haproxy("rr-weights", "", &servers, &script);
}

#[test]
fn health_going_down_and_up() {
    let servers = [("s1", "weight 2"), ("s2", ""), ("s3", "weight 3")];
    let script = [
        Ask(3),
        Cli("set server {b}/s3 health down"),
        Ask(4),
        Cli("set server {b}/s1 health down"),
        Ask(2),
        Cli("set server {b}/s3 health up"),
        Ask(5),
        Cli("set server {b}/s1 health up"),
        Ask(12),
    ];
    same_as_haproxy("rr-health", "", &servers, &script);
}

#[test]
fn backups_take_over_in_order() {
    let servers = [
        ("a1", ""),
        ("a2", ""),
        ("b1", "backup weight 2"),
        ("b2", "backup"),
        ("b3", "backup weight 3"),
    ];
    let script = [
        Ask(2),
        Cli("disable server {b}/a1"),
        Cli("disable server {b}/a2"),
        Ask(3),
        Cli("disable server {b}/b1"),
        Ask(3),
        Cli("enable server {b}/b1"),
        Ask(3),
        Cli("enable server {b}/a2"),
        Ask(3),
    ];
    same_as_haproxy("rr-backup", "", &servers, &script);
    same_as_haproxy("rr-allbackups", "  option allbackups\n", &servers, &script);
}

#[test]
fn full_servers_are_skipped_in_turn() {
    let servers = [
        ("s1", "maxconn 1"),
        ("s2", "weight 2 maxconn 2"),
        ("s3", ""),
    ];
    let script = [
        Hold(5),
        Ask(6),
        Release,
        Ask(5),
        Hold(3),
        Ask(4),
        Release,
        Ask(4),
    ];
    same_as_haproxy("rr-maxconn", "", &servers, &script);
}

#[test]
fn a_redispatched_connection_avoids_the_server_it_failed_on() {
    let servers = [
        ("s1", ""),
        ("dead2", "weight 2"),
        ("s3", ""),
        ("s4", "weight 3"),
    ];
    let backend = "  option redispatch\n  retries 2\n";
    same_as_haproxy("rr-redispatch", backend, &servers, &[Ask(12)]);
}

/// Within its first seconds back, a server in slow start has the smallest step of its
/// weight (`weight * (16 * 0 + S) / S`), here constant for 3 seconds.
#[test]
fn a_server_in_slow_start_takes_its_first_share() {
    let servers = [
        ("s1", "weight 4 slowstart 60s"),
        ("s2", "weight 4"),
        ("s3", "weight 2"),
    ];
    let script = [
        Ask(3),
        Cli("disable server {b}/s1"),
        Ask(2),
        Cli("enable server {b}/s1"),
        Ask(30),
    ];
    same_as_haproxy("rr-slowstart", "", &servers, &script);
}

/// A long seeded sequence of weight and state changes between connections.
#[test]
fn random_changes_between_connections() {
    let names = ["s1", "s2", "s3", "s4", "b1", "b2"];
    let servers = [
        ("s1", "weight 3"),
        ("s2", ""),
        ("s3", "weight 5"),
        ("s4", "weight 2"),
        ("b1", "backup weight 2"),
        ("b2", "backup"),
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut script = Vec::new();
    for _ in 0..60 {
        let server = names[next(names.len() as u64) as usize];
        script.push(match next(6) {
            0 => Cli(format!("set server {{b}}/{server} weight {}", next(7))),
            1 => Cli(format!("set server {{b}}/{server} state maint")),
            2 => Cli(format!("set server {{b}}/{server} state drain")),
            3 => Cli(format!("set server {{b}}/{server} state ready")),
            4 => Cli(format!("set server {{b}}/{server} health down")),
            _ => Cli(format!("set server {{b}}/{server} health up")),
        });
        script.push(Ask(next(6) as usize + 1));
    }
    // Everything back, then a few full turns.
    for server in names {
        script.push(Cli(format!("set server {{b}}/{server} state ready")));
        script.push(Cli(format!("set server {{b}}/{server} health up")));
    }
    script.push(Ask(30));
    same_as_haproxy("rr-random", "", &servers, &script);
    same_as_haproxy(
        "rr-random-allbackups",
        "  option allbackups\n",
        &servers,
        &script,
    );
}

/// `static-rr` turns over HAProxy's weighted map, also across maintenance and weights set
/// to 0 and back (the only ones it takes at run time).
#[test]
fn static_rr_in_order() {
    let servers = [
        ("s1", "weight 5"),
        ("s2", "weight 3"),
        ("s3", "weight 1"),
        ("s4", "weight 2 maxconn 1"),
    ];
    let script = [
        Ask(15),
        Cli("disable server {b}/s1"),
        Ask(5),
        Cli("enable server {b}/s1"),
        Ask(12),
        Cli("set server {b}/s2 weight 0"),
        Ask(6),
        Cli("set server {b}/s2 weight 3"),
        Hold(4),
        Ask(7),
        Release,
        Ask(11),
    ];
    same_as_haproxy("static-rr", "  balance static-rr\n", &servers, &script);
}
