//! What the `peers` tests (`proxy_peers*`) share: the binaries side by side, members
//! started as a named local peer, their stats sockets, whether their tables are complete,
//! `-c` messages in a comparable form, and runs at the same time.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proxy::{Proxy, cli, free_port, http_get, http_raw};

pub const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// The hapx-proxy binary under test.
pub fn hapx() -> PathBuf {
    crate::bins::path("hapx-proxy")
}

/// Whether HAProxy 2.6 is installed (else `test` skips, or fails under CI).
pub fn have_haproxy(test: &str) -> bool {
    crate::require::path(test, Path::new(HAPROXY), "HAProxy 2.6")
}

/// Member `n{i}`'s stats socket in `dir`.
pub fn socket(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("n{i}.sock"))
}

/// Starts `binary` on `config` (written as `LOCAL.cfg` in `dir`) as the local member
/// `local` (`-L`), up once its HTTP frontend at `http` listens; `replacing` an old process
/// (`-sf PID`, the configuration written as `LOCAL-new.cfg`).
pub fn start_member(
    binary: &Path,
    dir: &Path,
    local: &str,
    config: &str,
    http: u16,
    replacing: Option<u32>,
) -> Proxy {
    let mut args = vec!["-L".to_string(), local.to_string()];
    let mut name = local.to_string();
    if let Some(pid) = replacing {
        args.extend(["-sf".to_string(), pid.to_string()]);
        name += "-new";
    }
    let front = SocketAddr::from((LO, http));
    Proxy::start_with(binary.into(), dir, &name, config, front, &args)
}

/// Two free ports on loopback (see [`free_port`]).
pub fn two_ports() -> [u16; 2] {
    [free_port(), free_port()]
}

/// A GET of `path` on the HTTP frontend at `http`, which must answer 200.
pub fn get(http: u16, path: &str) {
    let (status, _, _) = http_get(SocketAddr::from((LO, http)), path, None);
    assert_eq!(status, 200, "GET {path} on port {http}");
}

/// Whether the process behind the stats socket `sock` has complete tables: learned, or past
/// the wait for a lesson (`PEERS_F_RESYNC_REMOTE` in the first section's flags).
pub fn complete(sock: &Path) -> bool {
    const RESYNC_REMOTE: u32 = 0x2;
    (cli(sock, "show peers").split_whitespace())
        .find_map(|w| w.strip_prefix("flags=0x"))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .is_some_and(|flags| flags & RESYNC_REMOTE != 0)
}

/// Whether the table `table` behind `sock` holds `key` counted `count` times.
pub fn holds(sock: &Path, table: &str, key: &str, count: u32) -> bool {
    let want = format!("key={key} use=0 ");
    (cli(sock, &format!("show table {table}")).lines())
        .any(|l| l.contains(&want) && l.ends_with(&format!(" http_req_cnt={count}")))
}

/// The value of the data type `data` (as `show table` names it: `gpc0`, `http_req_cnt`)
/// of `key` in the table `table` behind `sock`, if the table holds the key.
pub fn stored(sock: &Path, table: &str, key: &str, data: &str) -> Option<u64> {
    let want = format!("key={key} ");
    let prefix = format!("{data}=");
    let dump = cli(sock, &format!("show table {table}"));
    let line = dump.lines().find(|l| l.contains(&want))?;
    (line.split_whitespace())
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// The status of a GET of `path` on the HTTP frontend at `http`, with `x-k: KEY`.
pub fn get_keyed(http: u16, path: &str, key: &str) -> String {
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nx-k: {key}\r\nconnection: close\r\n\r\n");
    let answer = http_raw(
        SocketAddr::from((LO, http)),
        request.as_bytes(),
        std::time::Duration::from_secs(10),
    );
    answer.lines().next().unwrap_or_default().to_string()
}

/// The messages of `-c -L n0` on `config` (stderr, then stdout; the process id masked,
/// the notices left out), and its exit status.
pub fn check_output(binary: &Path, config: &Path) -> (Vec<String>, Option<i32>) {
    let out = Command::new(binary)
        .args(["-c", "-L", "n0", "-f"])
        .arg(config)
        .output()
        .expect("running the check");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let lines = (text.lines())
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|l| match l.split_once(") : ") {
            Some((level, rest)) => format!("{} {rest}", level.split('(').next().unwrap_or("")),
            None => l.to_string(),
        })
        .collect();
    (lines, out.status.code())
}

/// `runs` at the same time (each its own directory, ports and processes): what each gave,
/// in order; the first failure is raised again.
pub fn at_once<'a, T: Send + 'a>(runs: Vec<Box<dyn FnOnce() -> T + Send + 'a>>) -> Vec<T> {
    std::thread::scope(|scope| {
        let running: Vec<_> = runs.into_iter().map(|run| scope.spawn(run)).collect();
        running
            .into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// HAProxy's variable-length integer (the peers protocol's).
pub fn varint(mut i: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if i < 240 {
        out.push(i as u8);
        return out;
    }
    out.push((i | 240) as u8);
    i = (i - 240) >> 4;
    while i >= 128 {
        out.push((i | 128) as u8);
        i = (i - 128) >> 7;
    }
    out.push(i as u8);
    out
}

/// A process alone in its `peers` section (the member `local`, listening at `peer`), tracking
/// requests by path in `table`, which replicates; with `server`, the requests go there and
/// each response counts in `gpc0`, else the frontend answers them.
pub fn lone_config(sock: &Path, peer: u16, http: u16, table: &str, server: Option<u16>) -> String {
    let serve = match server {
        Some(port) => format!(
            "  http-response sc-inc-gpc0(0)\n  default_backend be\n\
             backend be\n  server s 127.0.0.1:{port}\n"
        ),
        None => "  http-request return status 200\n".to_string(),
    };
    format!(
        "global\n  stats socket {} level admin\n\
         peers mypeers\n  peer local 127.0.0.1:{peer}\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend fe\n  bind 127.0.0.1:{http}\n  http-request track-sc0 path table {table}\n\
         {serve}\
         backend {table}\n  stick-table type string len 16 size 1k expire 10m \
         store http_req_cnt,gpc0 peers mypeers\n",
        sock.display()
    )
}

/// An HTTP server answering every request at once, but `/held`, which it answers only once
/// the test releases it ([`HeldServer::release`]), telling first that it arrived.
#[derive(Debug)]
pub struct HeldServer {
    pub port: u16,
    arrived: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl HeldServer {
    pub fn start() -> HeldServer {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex, mpsc};
        let listener = std::net::TcpListener::bind((LO, 0)).expect("binding the server");
        let port = listener.local_addr().expect("its address").port();
        let (arrived_tx, arrived) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let (arrived, released) = (arrived_tx.clone(), released.clone());
                std::thread::spawn(move || {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    if request.starts_with(b"GET /held ") {
                        let _ = arrived.send(());
                        let released = released.lock().unwrap_or_else(|e| e.into_inner());
                        let _ = released.recv();
                    }
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                });
            }
        });
        HeldServer {
            port,
            arrived,
            release,
        }
    }

    /// Waits (at most 10 s) for a `/held` request to arrive.
    pub fn wait_arrival(&self) {
        (self
            .arrived
            .recv_timeout(std::time::Duration::from_secs(10)))
        .expect("the held request reaches the server");
    }

    /// Answers one held request.
    pub fn release(&self) {
        let _ = self.release.send(());
    }
}
