//! The round-6 review of descriptor and pipe limits and of clients leaving while waiting:
//! each finding's case run through hapx-proxy, then HAProxy 2.6 when installed, with the
//! same assertions (HAProxy's behaviour is what they assert).
//!
//! - Descriptors at `maxconn`: with health checks, agent checks and log targets, under a
//!   low starting soft limit, every connection up to `maxconn` fits beside them: no check
//!   fails for want of a descriptor (no server goes DOWN) and the process stays below its
//!   limit.
//! - TCP mode, a `server ... ssl` that never answers the TLS handshake: a client's FIN
//!   ends the attempt at once (`CC`), not after the retries.
//! - `option splice-*` splices the streams of its own proxy only, in the direction it says
//!   (`PipesFree` after one download: a pipe was used or not).
//! - HTTP with `option abortonclose`: a body that becomes whole while queued, then a FIN:
//!   the request still goes to the server.
//! - The idle pool keeps server connections as HAProxy's `srv_add_to_idle_list` does when
//!   checks hold connections: the same `idle_conn_cur` and `need_conn_est`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hapx_tests::executable::write_executable;
use hapx_tests::proxy::soft_limit;
use hapx_tests::proxy::{
    Proxy, cli, free_port, no_connection_open, silent_server, stat_row, temp_dir, wait_until,
};
use hapx_tests::proxy_rules::{Syslog, binaries};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One `show info` field.
fn info_field(sock: &Path, name: &str) -> Option<u64> {
    let info = cli(sock, "show info");
    let prefix = format!("{name}: ");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A script named as `binary` (the harness recognises hapx-proxy by its name) that starts
/// it with the soft open-files limit lowered to `soft`: the process must raise it itself.
fn under_soft_limit(dir: &Path, who: &str, binary: &Path, soft: u32) -> PathBuf {
    let wrapper_dir = dir.join(format!("{who}-bin"));
    std::fs::create_dir_all(&wrapper_dir).expect("a directory for the wrapper");
    let name = binary.file_name().expect("a file name");
    let wrapper = wrapper_dir.join(name);
    let script = format!(
        "#!/bin/bash\nulimit -S -n {soft} || exit 99\nexec {} \"$@\"\n",
        binary.display()
    );
    write_executable(&wrapper, script.as_bytes());
    wrapper
}

// ---------------------------------------------------------------------------------------
// 1. Descriptors at maxconn.

const MAXCONN: usize = 120;
const SERVERS: usize = 40;

#[test]
fn connections_up_to_maxconn_fit_beside_checks_agents_and_log_targets() {
    let test = "connections_up_to_maxconn_fit_beside_checks_agents_and_log_targets";
    let dir = temp_dir("limits-review-fds");
    let silent = silent_server();
    // Log targets that read nothing: datagrams to them are simply queued.
    let sinks: Vec<Syslog> = (0..5).map(|_| Syslog::bind()).collect();
    for (who, binary) in binaries(test) {
        let sock = dir.join(format!("{who}.sock"));
        let binds: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut config = format!("global\n  maxconn {MAXCONN}\n  nbthread 4\n");
        config += &format!("  stats socket {}\n", sock.display());
        for sink in &sinks {
            config += &format!("  log {} local0\n", sink.addr);
        }
        config += "defaults\n  mode tcp\n  log global\n  timeout connect 1s\n  \
                   timeout client 20s\n  timeout server 20s\n  timeout check 1s\n\
                   frontend fe\n";
        for port in &binds {
            config += &format!("  bind 127.0.0.1:{port}\n");
        }
        config += "  default_backend be\nbackend be\n";
        for n in 1..=SERVERS {
            config += &format!(
                "  server s{n} {silent} check inter 200 agent-check agent-port {} \
                 agent-inter 200\n",
                silent.port()
            );
        }
        let wrapper = under_soft_limit(&dir, who, &binary, 100);
        let front = SocketAddr::from((LO, binds[0]));
        let proxy = Proxy::start_with(wrapper, &dir, who, &config, front, &[]);
        let pid = proxy.pid();
        let servers_up = || {
            let csv = cli(&sock, "show stat");
            (1..=SERVERS).all(|n| {
                stat_row(&csv, "be", &format!("s{n}")).is_some_and(|r| r["status"] == "UP")
            })
        };
        assert!(
            wait_until(Duration::from_secs(10), servers_up),
            "{who}: the servers did not come UP"
        );
        // Every connection the process takes but one (HAProxy counts the runtime API's
        // among them), each holding a server connection.
        let taken = MAXCONN - 1;
        let clients: Vec<TcpStream> = (0..taken)
            .map(|i| {
                let mut c = TcpStream::connect((LO, binds[i % binds.len()])).expect("a client");
                c.write_all(b"hello").expect("sending");
                c
            })
            .collect();
        assert!(
            wait_until(Duration::from_secs(10), || {
                let current = info_field(&sock, "CurrConns").unwrap_or(0);
                current >= taken as u64
            }),
            "{who}: not all the clients were taken"
        );
        // Several agent and check rounds at maxconn (each agent waits its full `timeout
        // check` on the silent server, so they all hold a descriptor at once).
        let limit = soft_limit(pid);
        let mut peak = 0;
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            peak = peak.max(open_fds(pid));
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{who}: peak {peak} of {limit} descriptors at maxconn");
        let csv = cli(&sock, "show stat");
        let downs: Vec<String> = (1..=SERVERS)
            .filter_map(|n| stat_row(&csv, "be", &format!("s{n}")))
            .filter(|r| r["status"] != "UP" || r["chkdown"] != "0")
            .map(|r| format!("{} {} chkdown={}", r["svname"], r["status"], r["chkdown"]))
            .collect();
        assert!(
            downs.is_empty(),
            "{who}: checks failed at maxconn: {downs:?}"
        );
        assert!(
            (peak as u64) < limit,
            "{who}: {peak} descriptors open at maxconn, limit {limit}"
        );
        drop(clients);
    }
}

// ---------------------------------------------------------------------------------------
// 2. TCP mode: a client's FIN during the TLS handshake to a server.

#[test]
fn tcp_client_fin_during_the_server_tls_handshake_ends_it_cc() {
    let test = "tcp_client_fin_during_the_server_tls_handshake_ends_it_cc";
    let dir = temp_dir("limits-review-tls-fin");
    let silent = silent_server();
    for (who, binary) in binaries(test) {
        let syslog = Syslog::bind();
        let port = free_port();
        let config = format!(
            "defaults\n  mode tcp\n  log {} local0\n  option tcplog\n  timeout connect 8s\n  \
             timeout client 20s\n  timeout server 20s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server s {silent} ssl verify none\n",
            syslog.addr
        );
        let front = SocketAddr::from((LO, port));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        let mut client = TcpStream::connect(front).expect("connecting");
        // Once the attempt is at its handshake (the server accepted it at once).
        thread::sleep(Duration::from_millis(300));
        client.shutdown(Shutdown::Write).expect("the FIN");
        let fin_sent = Instant::now();
        client
            .set_read_timeout(Some(Duration::from_secs(6)))
            .expect("a read timeout");
        let mut buf = [0u8; 64];
        let got = client.read(&mut buf);
        assert!(
            matches!(got, Ok(0)),
            "{who}: the client was not let go after its FIN: {got:?} after {:?}",
            fin_sent.elapsed()
        );
        assert!(
            fin_sent.elapsed() < Duration::from_secs(4),
            "{who}: let go only after {:?}",
            fin_sent.elapsed()
        );
        let lines = syslog.lines(1);
        let line = lines
            .first()
            .unwrap_or_else(|| panic!("{who}: no log line"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.contains(&"be/s") && words.contains(&"CC"),
            "{who}: {line}"
        );
        // No retry: the retries field (the last of `1/1/0/0/0`) is 0.
        let counts = words
            .iter()
            .find(|w| w.matches('/').count() == 4 && !w.contains(':'))
            .unwrap_or_else(|| panic!("{who}: no connection counts in {line}"));
        assert!(counts.ends_with("/0"), "{who}: retried: {line}");
    }
}

// ---------------------------------------------------------------------------------------
// 3. Splicing per proxy and direction.

const DOWNLOAD: usize = 4 << 20;

/// A server that reads one line, then sends [`DOWNLOAD`] bytes and closes.
fn bulk_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut conn = reader.into_inner();
                let chunk = vec![b'x'; 64 << 10];
                for _ in 0..DOWNLOAD / chunk.len() {
                    if conn.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Downloads through `front`: the bytes received.
fn download(front: SocketAddr) -> usize {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(20))).ok();
    c.write_all(b"go\n").expect("asking");
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    got.len()
}

#[test]
fn only_the_proxies_asking_for_it_splice_in_the_directions_they_name() {
    let test = "only_the_proxies_asking_for_it_splice_in_the_directions_they_name";
    let dir = temp_dir("limits-review-splice");
    let bulk = bulk_server();
    // The option of the proxy downloaded through, and the pipes its one download leaves
    // in the pool (HAProxy 2.6.12: one when a direction spliced, none else). Another
    // proxy has `option splice-auto` throughout.
    let cases = [
        ("", 0),
        ("  option splice-response\n", 1),
        ("  option splice-request\n", 1),
    ];
    for (who, binary) in binaries(test) {
        for (option, pipes) in cases {
            let sock = dir.join(format!("{who}.sock"));
            let (plain, other) = (free_port(), free_port());
            let config = format!(
                "global\n  stats socket {}\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
                 timeout client 20s\n  timeout server 20s\n\
                 listen downloads\n  bind 127.0.0.1:{plain}\n{option}  server s {bulk}\n\
                 listen other\n  bind 127.0.0.1:{other}\n  option splice-auto\n  \
                 server s {bulk}\n",
                sock.display()
            );
            let front = SocketAddr::from((LO, plain));
            let _proxy = Proxy::start_with(binary.clone(), &dir, who, &config, front, &[]);
            assert_eq!(download(front), DOWNLOAD, "{who} {option:?}");
            // The download ends with the client's close, which the proxy reads on the
            // request side: spliced with `splice-request`, it takes a pipe there. The pool
            // is read once the session ended (no connection open), not while that close
            // may still be on its way.
            assert!(
                no_connection_open(&sock),
                "{who} {option:?}: the session stayed"
            );
            let used = info_field(&sock, "PipesUsed").expect("PipesUsed");
            let free = info_field(&sock, "PipesFree").expect("PipesFree");
            assert_eq!(
                used + free,
                pipes,
                "{who} {option:?}: pipes used, then free"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 4. HTTP, abortonclose: a body finished while queued, then a FIN.

/// The requests a [`Recorder`] read: first line and body.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An HTTP server recording each request (its first line and body); `/hold` is answered
/// only once released.
struct Recorder {
    addr: SocketAddr,
    seen: Requests,
    release: Arc<(Mutex<bool>, Condvar)>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind((LO, 0)).expect("binding a server");
        let addr = listener.local_addr().expect("its address");
        let seen: Requests = Arc::default();
        let release: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let (s, r) = (seen.clone(), release.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, r) = (s.clone(), r.clone());
                thread::spawn(move || serve_recorded(conn, &s, &r));
            }
        });
        Recorder {
            addr,
            seen,
            release,
        }
    }

    fn release(&self) {
        let (lock, cv) = &*self.release;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }

    fn saw(&self, line: &str) -> Option<Vec<u8>> {
        let seen = self.seen.lock().unwrap();
        seen.iter().find(|(l, _)| l == line).map(|(_, b)| b.clone())
    }
}

fn serve_recorded(
    conn: TcpStream,
    seen: &Mutex<Vec<(String, Vec<u8>)>>,
    release: &(Mutex<bool>, Condvar),
) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first).map_or(true, |n| n == 0) {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).map_or(true, |n| n == 0) {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let line = first.trim_end().to_string();
        seen.lock().unwrap().push((line.clone(), body));
        if line.contains("/hold") {
            let (lock, cv) = release;
            let mut released = lock.lock().unwrap();
            while !*released {
                released = cv.wait(released).unwrap();
            }
        }
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if reader.get_mut().write_all(resp).is_err() {
            return;
        }
    }
}

#[test]
fn abortonclose_sends_a_body_finished_while_queued_then_closed() {
    let test = "abortonclose_sends_a_body_finished_while_queued_then_closed";
    let dir = temp_dir("limits-review-bodyfin");
    for (who, binary) in binaries(test) {
        let server = Recorder::start();
        let sock = dir.join(format!("{who}.sock"));
        let port = free_port();
        let config = format!(
            "global\n  stats socket {}\ndefaults\n  mode http\n  option abortonclose\n  \
             timeout connect 5s\n  timeout client 20s\n  timeout server 20s\n  \
             timeout queue 15s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server s {} maxconn 1\n",
            sock.display(),
            server.addr
        );
        let front = SocketAddr::from((LO, port));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        let mut holder = TcpStream::connect(front).expect("connecting");
        holder
            .write_all(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("sending");
        assert!(
            wait_until(Duration::from_secs(5), || server
                .saw("GET /hold HTTP/1.1")
                .is_some()),
            "{who}: the holding request did not reach the server"
        );
        let mut client = TcpStream::connect(front).expect("connecting");
        client
            .write_all(b"POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")
            .expect("sending");
        let queued = || {
            stat_row(&cli(&sock, "show stat"), "be", "BACKEND").is_some_and(|r| r["qcur"] == "1")
        };
        assert!(
            wait_until(Duration::from_secs(5), queued),
            "{who}: the request was not queued"
        );
        client.write_all(b"defghij").expect("the rest of the body");
        // The rest read before the FIN comes (both proxies read it at once).
        thread::sleep(Duration::from_millis(300));
        client.shutdown(Shutdown::Write).expect("the FIN");
        thread::sleep(Duration::from_millis(300));
        server.release();
        assert!(
            wait_until(Duration::from_secs(5), || server
                .saw("POST /p HTTP/1.1")
                .is_some()),
            "{who}: the request finished while queued was not sent"
        );
        assert_eq!(
            server.saw("POST /p HTTP/1.1").as_deref(),
            Some(&b"abcdefghij"[..]),
            "{who}"
        );
        let mut rest = Vec::new();
        holder.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut buf = [0u8; 256];
        if let Ok(n) = holder.read(&mut buf) {
            rest.extend_from_slice(&buf[..n]);
        }
        assert!(
            rest.starts_with(b"HTTP/1.1 200"),
            "{who}: holder got {rest:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 5. The idle pool beside a check that holds its connection.

/// An HTTP server whose check path (`/chk`) is never answered (the check holds its
/// connection open) and whose other requests are answered after a short delay (so that
/// requests sent together are in use together). Records the first lines it read.
fn slow_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = seen.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let recorded = recorded.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
                            return;
                        }
                        if line.trim_end().is_empty() {
                            break;
                        }
                        head.push(line.trim_end().to_string());
                    }
                    let first = head.first().cloned().unwrap_or_default();
                    recorded.lock().unwrap().push(first.clone());
                    if first.contains("/chk") {
                        // Held until the test process ends.
                        let mut sink = Vec::new();
                        let _ = reader.read_to_end(&mut sink);
                        return;
                    }
                    thread::sleep(Duration::from_millis(300));
                    let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if reader.get_mut().write_all(resp).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// One request on a new client connection, its response read, the connection closed.
fn one_request(front: SocketAddr) {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    c.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("sending");
    let mut buf = [0u8; 512];
    let n = c.read(&mut buf).expect("a response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
}

#[test]
fn the_idle_pool_sizes_itself_on_the_requests_not_on_a_check_in_progress() {
    let test = "the_idle_pool_sizes_itself_on_the_requests_not_on_a_check_in_progress";
    let dir = temp_dir("limits-review-pool");
    for (who, binary) in binaries(test) {
        let (server, seen) = slow_server();
        let sock = dir.join(format!("{who}.sock"));
        let port = free_port();
        let config = format!(
            "global\n  nbthread 1\n  stats socket {}\ndefaults\n  mode http\n  \
             timeout connect 5s\n  timeout client 20s\n  timeout server 20s\n  \
             timeout check 60s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  option httpchk GET /chk\n  server s {server} check inter 60s\n",
            sock.display()
        );
        let front = SocketAddr::from((LO, port));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        let checking = || seen.lock().unwrap().iter().any(|l| l.contains("/chk"));
        assert!(
            wait_until(Duration::from_secs(10), checking),
            "{who}: no check came"
        );
        let columns = || {
            let row = stat_row(&cli(&sock, "show stat"), "be", "s").expect("the server's row");
            let get = |c: &str| row[c].parse::<u64>().unwrap_or(u64::MAX);
            (get("idle_conn_cur"), get("need_conn_est"), get("connect"))
        };
        // Three requests in use at once, beside the check's connection.
        let together: Vec<_> = (0..3)
            .map(|_| thread::spawn(move || one_request(front)))
            .collect();
        for t in together {
            t.join().expect("a request");
        }
        assert!(
            wait_until(Duration::from_secs(5), || columns().0 == 3),
            "{who}: {:?}",
            columns()
        );
        assert_eq!(columns(), (3, 3, 3), "{who}: idle, need, connect");
        // A client connection's first request opens its own connection; the pool, at the
        // need already, does not keep it.
        one_request(front);
        assert!(
            wait_until(Duration::from_secs(5), || columns().2 == 4),
            "{who}: {:?}",
            columns()
        );
        assert_eq!(columns(), (3, 3, 4), "{who}: idle, need, connect");
    }
}
