//! How TCP sessions end early, beside HAProxy 2.6: a client that leaves while its server
//! connection is being retried is logged with the retries counted so far (`%rc`), and one
//! that sent more than a buffer to a backend with no usable server is closed with a FIN
//! (what it sent drained), not a reset.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, stat_row, temp_dir, wait_until};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// hapx-proxy, then HAProxy when installed (skipped loudly without it, failed under CI=1).
fn binaries(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    list
}

/// A TCP-mode configuration logging to `log`, with a stats socket at `socket`, whose
/// frontend listens at `front` and whose backend `be` is `backend` (its lines).
fn config(log: &Path, socket: &Path, front: SocketAddr, backend: &str) -> String {
    format!(
        "global\n  log {} local0\n  stats socket {} level admin\ndefaults\n  mode tcp\n  log global\n  \
         option tcplog\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n  retries 3\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n{backend}",
        log.display(),
        socket.display()
    )
}

/// A log socket at `path`, waiting up to 10 s for a line.
fn log_socket(path: &Path) -> std::os::unix::net::UnixDatagram {
    let sock = std::os::unix::net::UnixDatagram::bind(path).expect("a log socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock
}

/// The next log line, from the frontend's name on, its timers masked (only whether each is
/// -1, never reached, is kept).
fn next_line(sock: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).expect("a log line");
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = words.iter().position(|w| *w == "fe").unwrap_or(0);
    words[from..]
        .iter()
        .map(|w| {
            let timers = w.split('/').count() == 3
                && w.chars()
                    .all(|c| c.is_ascii_digit() || c == '/' || c == '-');
            if timers {
                let masked: Vec<&str> = w
                    .split('/')
                    .map(|t| if t == "-1" { "-1" } else { "T" })
                    .collect();
                masked.join("/")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The log line of a client that closed (a FIN, nothing sent) once the server, refusing,
/// had been retried three times: the third retry's turn-around (`timeout connect`, a second)
/// is under way, the last attempt not made yet.
fn leave_in_retries(binary: PathBuf, dir: &Path, name: &str) -> String {
    let refusing = SocketAddr::from((LO, free_port()));
    let front = SocketAddr::from((LO, free_port()));
    let log = dir.join(format!("{name}.log"));
    let log_sock = log_socket(&log);
    let socket = dir.join(format!("{name}.sock"));
    let cfg = config(&log, &socket, front, &format!("  server s1 {refusing}\n"));
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    let mut client = TcpStream::connect(front).expect("a client");
    let retries = || {
        stat_row(&cli(&socket, "show stat"), "be", "s1")
            .map(|r| r["wretr"].clone())
            .unwrap_or_default()
    };
    assert!(
        wait_until(Duration::from_secs(10), || retries() == "3"),
        "{name}: three retries"
    );
    client.shutdown(Shutdown::Write).unwrap();
    let line = next_line(&log_sock);
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    drop(proxy);
    line
}

/// Left during the last turn-around: `CC`, the three retries counted (`%rc`), as HAProxy
/// logs it; the whole line alike but for its timers' values.
#[test]
fn a_client_leaving_while_retried_logs_its_retries() {
    let test = "session-ends-retries";
    let dir = temp_dir(test);
    let mut lines = Vec::new();
    for (name, binary) in binaries(test) {
        let line = leave_in_retries(binary, &dir, name);
        assert!(line.contains(" CC "), "{name}: {line}");
        assert!(line.ends_with("/3 0/0"), "{name}: %rc 3 in {line}");
        lines.push(line);
    }
    if let [hapx, haproxy] = &lines[..] {
        assert_eq!(hapx, haproxy, "hapx-proxy, then HAProxy");
    }
}

/// How a client that sent `sent` at once ended with a backend of `backend` (no usable
/// server): what its read returned (0, or the error's kind), and the log line.
fn refused_at_once(
    binary: PathBuf,
    dir: &Path,
    name: &str,
    backend: &str,
    sent: &[u8],
) -> (Result<usize, ErrorKind>, String) {
    let front = SocketAddr::from((LO, free_port()));
    let log = dir.join(format!("{name}.log"));
    let log_sock = log_socket(&log);
    let socket = dir.join(format!("{name}.sock"));
    let cfg = config(&log, &socket, front, backend);
    let proxy = Proxy::start_with(binary, dir, name, &cfg, front, &[]);
    let mut client = TcpStream::connect(front).expect("a client");
    client.write_all(sent).expect("sent at once");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let read = client.read(&mut buf).map_err(|e| e.kind());
    let line = next_line(&log_sock);
    drop(proxy);
    (read, line)
}

/// More than a buffer (HAProxy's 16 kB) sent at once to a disabled backend and to one
/// whose only server is in maintenance: HAProxy drains it and closes with a FIN (the
/// client reads 0), logging `SC` with no server.
#[test]
fn a_client_refused_for_want_of_a_server_gets_a_fin() {
    let test = "session-ends-fin";
    let dir = temp_dir(test);
    let sent = vec![b'x'; 100_000];
    let backends = [
        ("disabled", "  disabled\n  server s1 127.0.0.1:9\n"),
        ("maint", "  server s1 127.0.0.1:9 disabled\n"),
    ];
    for (case, backend) in backends {
        let mut seen = Vec::new();
        for (name, binary) in binaries(test) {
            let run = format!("{name}-{case}");
            let (read, line) = refused_at_once(binary, &dir, &run, backend, &sent);
            assert_eq!(read, Ok(0), "{run}: a FIN, not a reset");
            assert!(line.contains("be/<NOSRV> -1/-1/T 0 SC "), "{run}: {line}");
            seen.push(line);
        }
        if let [hapx, haproxy] = &seen[..] {
            assert_eq!(hapx, haproxy, "{case}: hapx-proxy, then HAProxy");
        }
    }
}
