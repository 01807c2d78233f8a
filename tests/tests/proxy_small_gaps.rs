//! Small differences from HAProxy 2.6.12 closed side by side with it.
//!
//! - `show sess` lists an HTTP request waiting in its server's queue (`be=be srv=<none>`,
//!   dumped with HAProxy's `backend` and `server=<none> (id=0)` lines); `shutdown session`
//!   of it only marks it, as HAProxy's: it ends as its wait ends, with a 503 logged `KQ--`
//!   at `timeout queue`, or, given a slot, connected then ended at once with a 502 logged
//!   `KH--`, its client connection kept either way.
//! - A log format's unterminated or badly ended sample expression is refused with
//!   HAProxy's words: the expression is parsed first (its own error named with the rest of
//!   the format), then its `]` looked for; `Parsing [FILE:LINE]: failed to parse
//!   log-format|unique-id|error-log-format : ...`. A frontend with a format (even one that
//!   failed, with what was read before its error) and no log address is warned about; an
//!   empty format or `unique-id-header` is a missing argument.
//! - A TCP session with no server to go to (a `disabled` backend, every server disabled)
//!   logs `%Tw` as -1, not 1: it never reached a queue.
//! - In master-worker mode the sessions the master passes for its `@N` commands count in
//!   the worker's `stats maxconn` with those of its `stats socket`s: with it reached, an
//!   `@1` command waits for a slot, as HAProxy's.
//! - The master CLI's prompt is `master> ` after the answers' own empty line, an empty
//!   command is answered with its list of commands, and `@1` (`@!PID`) alone makes that
//!   worker the target of the commands that follow (the prompt its pid) until `@master`
//!   alone, as HAProxy's; `prompt`, `quit`, `operator` and `user` stay the master's
//!   whatever the target, and a reload ends the master CLI's sessions.
//! - `tcp-request content use_backend` does not exist in HAProxy 2.6: refused with its
//!   message.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use hapx_tests::proxy::{TestDir, cli, free_port, spawn_master, temp_dir, wait_until};
use hapx_tests::proxy_lifecycle::{SlowServer, agree, answered, fate, request};
use hapx_tests::proxy_rules::{HAPROXY, Syslog, check_alike, side_by_side};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const WAIT: Duration = Duration::from_secs(10);
/// The end of the proxies' error pages (503, 502).
const PAGE_END: &str = "</body></html>\n";
/// How long a connection that received its answer is watched for a close.
const QUIET: Duration = Duration::from_millis(500);

/// A test's admin stats socket and syslog sink.
struct Lab {
    _dir: TestDir,
    admin: PathBuf,
    syslog: Syslog,
    /// Request lines read while looking for another request's (two sessions ended together
    /// may be logged in either order).
    unclaimed: std::cell::RefCell<Vec<String>>,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let dir = temp_dir(test);
        Lab {
            admin: dir.join("admin.sock"),
            _dir: dir,
            syslog: Syslog::bind(),
            unclaimed: Default::default(),
        }
    }

    /// An HTTP frontend `fe` on `port` to backend `be`, whose one server takes one request
    /// at a time, the others waiting up to `queue`.
    fn http_queue(&self, port: u16, server: SocketAddr, queue: &str) -> String {
        format!(
            "global\n  stats socket {} level admin\n\
             defaults\n  mode http\n  log {} local0\n  option httplog\n  timeout client 10s\n  \
             timeout server 10s\n  timeout connect 1s\n  timeout queue {queue}\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server a {server} maxconn 1\n",
            self.admin.display(),
            self.syslog.addr,
        )
    }

    /// The log line of the request for `path`, as `SERVER STATUS BYTES FLAGS Tc=.. Tr=..`
    /// (the timers as set or `-1`).
    fn request_log(&self, path: &str) -> String {
        let wanted = format!("\"GET {path} HTTP/1.1\"");
        let mut unclaimed = self.unclaimed.borrow_mut();
        let earlier = unclaimed.iter().position(|l| l.ends_with(&wanted));
        let lines = earlier
            .map(|i| unclaimed.remove(i))
            .into_iter()
            .chain(std::iter::from_fn(|| self.syslog.lines(1).pop()));
        for line in lines {
            if !line.ends_with(&wanted) {
                if line.contains("\"GET ") {
                    unclaimed.push(line);
                }
                continue;
            }
            let words: Vec<&str> = line.split(' ').collect();
            let word = |i: usize| words.get(i).copied().unwrap_or_default();
            let timers: Vec<&str> = word(4).split('/').collect();
            let timer = |i: usize| match timers.get(i) {
                Some(&"-1") => "-1",
                Some(_) => "set",
                None => "?",
            };
            return format!(
                "{} {} {} {} Tc={} Tr={}",
                word(3),
                word(5),
                word(6),
                word(9),
                timer(2),
                timer(3)
            );
        }
        format!("no log line for {path}")
    }
}

/// The value of `key=` among a line's words.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// `show sess`'s line of the stream of `client`, if listed.
fn line_of(sock: &Path, client: SocketAddr) -> Option<String> {
    let answer = cli(sock, "show sess");
    let src = client.to_string();
    let line = answer
        .lines()
        .find(|l| field(l, "src") == Some(src.as_str()));
    line.map(str::to_string)
}

/// The stream of `client` as `show sess` lists it: `fe= be= srv=`.
fn listed(sock: &Path, client: SocketAddr) -> String {
    let Some(line) = line_of(sock, client) else {
        return "not listed".into();
    };
    let get = |key| field(&line, key).unwrap_or("?");
    format!("fe={} be={} srv={}", get("fe"), get("be"), get("srv"))
}

/// The number `show sess` gives the stream of `client`.
fn stream_of(sock: &Path, client: SocketAddr) -> String {
    let line = line_of(sock, client).unwrap_or_default();
    line.split(':').next().unwrap_or_default().to_string()
}

/// `show sess ID`'s frontend, backend and server lines.
fn dumped(sock: &Path, id: &str) -> Vec<String> {
    let answer = cli(sock, &format!("show sess {id}"));
    let wanted = ["  frontend=", "  backend=", "  server="];
    let lines = answer
        .lines()
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)));
    lines.map(|l| l.trim().to_string()).collect()
}

/// A request on the server (`/held`, answered once the test releases it, however slow the
/// machine) and one queued behind it.
fn served_and_queued(lab: &Lab, server: &SlowServer, front: SocketAddr) -> [TcpStream; 2] {
    let before = server.requests.load(SeqCst);
    let served = request(front, "/held");
    wait_until(WAIT, || server.requests.load(SeqCst) > before);
    let queued = request(front, "/queued");
    let client = queued.local_addr().unwrap();
    wait_until(WAIT, || line_of(&lab.admin, client).is_some());
    [served, queued]
}

/// What a killed queued request's client and log showed.
#[derive(Debug, PartialEq, Eq)]
struct Killed {
    listed: Vec<String>,
    dumped: Vec<String>,
    killed: String,
    /// Its response's status line, and whether its connection stayed open.
    answer: String,
    logs: Vec<String>,
}

#[test]
fn a_queued_http_request_is_listed_and_killed_ends_at_timeout_queue() {
    let lab = Lab::new("small-gaps-queued");
    let server = SlowServer::start("a");
    let port = free_port();
    let conf = lab.http_queue(port, server.addr, "2s");
    let (ours, theirs) = side_by_side("small-gaps-queued", &conf, (LO, port).into(), |front| {
        let [served, mut queued] = served_and_queued(&lab, &server, front);
        let clients = [served.local_addr().unwrap(), queued.local_addr().unwrap()];
        let listed = clients.map(|c| listed(&lab.admin, c)).to_vec();
        let id = stream_of(&lab.admin, clients[1]);
        let dumped = dumped(&lab.admin, &id);
        let killed = cli(&lab.admin, &format!("shutdown session {id}"));
        // The 503 at `timeout queue`, then whether the connection stays.
        let (head, fate) = answered(&mut queued, PAGE_END, QUIET);
        let status = head.lines().next().unwrap_or_default();
        server.release();
        Killed {
            listed,
            dumped,
            killed,
            answer: format!("{status} {fate}"),
            logs: vec![lab.request_log("/queued")],
        }
    });
    let expected = Killed {
        listed: vec!["fe=fe be=be srv=a".into(), "fe=fe be=be srv=<none>".into()],
        dumped: vec![
            format!("frontend=fe (id=2 mode=http), listener=? (id=1) addr=127.0.0.1:{port}"),
            "backend=be (id=3 mode=http)".into(),
            "server=<none> (id=0)".into(),
        ],
        killed: "\n".into(),
        answer: "HTTP/1.1 503 Service Unavailable open".into(),
        logs: vec!["be/<NOSRV> 503 217 KQ-- Tc=-1 Tr=-1".into()],
    };
    agree(ours, theirs, expected);
}

#[test]
fn a_killed_queued_http_request_given_a_slot_ends_at_once_with_a_502() {
    let lab = Lab::new("small-gaps-dequeued");
    let server = SlowServer::start("a");
    let port = free_port();
    let conf = lab.http_queue(port, server.addr, "20s");
    let (ours, theirs) = side_by_side("small-gaps-dequeued", &conf, (LO, port).into(), |front| {
        let [mut served, mut queued] = served_and_queued(&lab, &server, front);
        let clients = [served.local_addr().unwrap(), queued.local_addr().unwrap()];
        let killed = cli(
            &lab.admin,
            &format!("shutdown session {}", stream_of(&lab.admin, clients[1])),
        );
        // Still waiting, killed: listed as before until its server frees its slot.
        let listed = vec![listed(&lab.admin, clients[1])];
        let freed = cli(
            &lab.admin,
            &format!("shutdown session {}", stream_of(&lab.admin, clients[0])),
        );
        let answers = [&mut served, &mut queued].map(|c| {
            let (head, fate) = answered(c, PAGE_END, QUIET);
            format!("{} {fate}", head.lines().next().unwrap_or_default())
        });
        Killed {
            listed,
            dumped: Vec::new(),
            killed: killed + &freed,
            answer: answers.join(" | "),
            logs: vec![lab.request_log("/held"), lab.request_log("/queued")],
        }
    });
    let expected = Killed {
        listed: vec!["fe=fe be=be srv=<none>".into()],
        dumped: Vec::new(),
        killed: "\n\n".into(),
        answer: "HTTP/1.1 502 Bad Gateway open | HTTP/1.1 502 Bad Gateway open".into(),
        logs: vec![
            "be/a 502 209 KH-- Tc=set Tr=-1".into(),
            "be/a 502 209 KH-- Tc=set Tr=-1".into(),
        ],
    };
    agree(ours, theirs, expected);
}

/// `-c` on an HTTP frontend (which logs) holding `line`: the exit code and each message's
/// text after its place, asserted equal to HAProxy's.
fn format_refused(case: &str, line: &str) -> (i32, Vec<String>) {
    format_checked(case, line, "  log 127.0.0.1:514 local0\n")
}

/// [`format_refused`] with `log` (the defaults' log lines, if any).
fn format_checked(case: &str, line: &str, log: &str) -> (i32, Vec<String>) {
    let text = format!(
        "defaults\n  mode http\n{log}  timeout client 1s\n  \
         timeout server 1s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:1\n  {line}\n  default_backend be\n\
         backend be\n  server a 127.0.0.1:1\n"
    );
    let (code, messages) = check_alike(case, &text);
    // Without the place (`[FILE:LINE]`), whose path is the test's own.
    let after_place = |m: &String| match m.find('[').zip(m.find(']')) {
        Some((open, close)) if open < close => format!("{}{}", &m[..open], &m[close + 1..]),
        _ => m.clone(),
    };
    (code, messages.iter().map(after_place).collect())
}

#[test]
fn badly_ended_sample_expressions_in_formats_are_refused_as_by_haproxy() {
    let cases = [
        (
            "log-format \"%[src\"",
            "ALERT: Parsing : failed to parse log-format : missing ']' after 'src'.",
        ),
        (
            "log-format \"x %[foo\"",
            "ALERT: Parsing : failed to parse log-format : failed to parse sample expression \
             <foo> : unknown fetch method 'foo'.",
        ),
        (
            "log-format \"%[src)\"",
            "ALERT: Parsing : failed to parse log-format : expected ']' after 'src', but found ')'.",
        ),
        (
            "log-format \"%[src,lower x\"",
            "ALERT: Parsing : failed to parse log-format : expected ']' after 'src,lower', but \
             found ' '.",
        ),
        (
            "log-format \"ab%[ src\"",
            "ALERT: Parsing : failed to parse log-format : failed to parse sample expression \
             < src> : missing fetch method.",
        ),
        (
            "log-format \"%[src,]\"",
            "ALERT: Parsing : failed to parse log-format : failed to parse sample expression \
             <src,]> : unknown converter ''.",
        ),
        (
            "log-format \"%[src\tx]\"",
            "ALERT: Parsing : failed to parse log-format : missing ']' after 'src'.",
        ),
        (
            "unique-id-format %[foo",
            "ALERT: Parsing : failed to parse unique-id : failed to parse sample expression \
             <foo> : unknown fetch method 'foo'.",
        ),
        (
            "error-log-format \"%[src,lower,\"",
            "ALERT: Parsing : failed to parse error-log-format : missing ']' after 'src,lower,'.",
        ),
        (
            "http-request set-header X %[foo",
            "ALERT: parsing  : error detected in frontend 'fe' while parsing 'http-request \
             set-header' rule : failed to parse sample expression <foo> : unknown fetch method \
             'foo'.",
        ),
        (
            "http-request set-header X \"%[src)\"",
            "ALERT: parsing  : error detected in frontend 'fe' while parsing 'http-request \
             set-header' rule : expected ']' after 'src', but found ')'.",
        ),
    ];
    for (at, (line, message)) in cases.into_iter().enumerate() {
        let case = format!("small-gaps-format-{at}");
        assert_eq!(
            format_refused(&case, line),
            (1, vec![message.to_string()]),
            "{line}"
        );
    }
}

#[test]
fn a_format_without_log_address_is_warned_about_as_by_haproxy() {
    let ignored = "WARNING: log format ignored for frontend 'fe' since it has no log address.";
    let cases: [(&str, &[&str]); 6] = [
        ("log-format \"%[src]\"", &[ignored]),
        ("option httplog", &[ignored]),
        // What was read before the error is kept, and warned about.
        (
            "log-format \"a %[src\"",
            &[
                "ALERT: Parsing : failed to parse log-format : missing ']' after 'src'.",
                ignored,
            ],
        ),
        // Nothing read before the error: nothing to warn about.
        (
            "log-format \"%[foo\"",
            &[
                "ALERT: Parsing : failed to parse log-format : failed to parse sample \
               expression <foo> : unknown fetch method 'foo'.",
            ],
        ),
        (
            "log-format \"\"",
            &["ALERT: parsing  : log-format expects an argument."],
        ),
        (
            "unique-id-header \"\"",
            &["ALERT: parsing  : unique-id-header expects an argument."],
        ),
    ];
    for (at, (line, messages)) in cases.into_iter().enumerate() {
        let case = format!("small-gaps-no-log-{at}");
        let code = i32::from(messages.iter().any(|m| m.starts_with("ALERT")));
        let messages = messages.iter().map(|m| m.to_string()).collect();
        assert_eq!(format_checked(&case, line, ""), (code, messages), "{line}");
    }
}

#[test]
fn tcp_request_content_use_backend_is_refused_as_by_haproxy() {
    let text = "defaults\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                frontend fe\n  mode tcp\n  bind 127.0.0.1:1\n  \
                tcp-request content use_backend bh if { src 127.0.0.1 }\n  default_backend bt\n\
                backend bh\n  mode http\n  server a 127.0.0.1:1\n\
                backend bt\n  mode tcp\n  server a 127.0.0.1:1\n";
    let (code, messages) = check_alike("small-gaps-tcp-use-backend", text);
    assert_eq!(code, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].ends_with("in frontend 'fe' (got 'use_backend')."),
        "{messages:?}"
    );
}

/// A TCP frontend logging with `tcplog` to backend `be` (its `backend` lines).
fn tcp_config(syslog: &Syslog, port: u16, backend: &str) -> String {
    format!(
        "defaults\n  mode tcp\n  log {} local0\n  option tcplog\n  timeout client 5s\n  \
         timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n{backend}",
        syslog.addr
    )
}

#[test]
fn a_tcp_session_with_no_server_logs_no_queue_time() {
    let silent = std::net::TcpListener::bind((LO, 0)).unwrap();
    let addr = silent.local_addr().unwrap();
    for (case, backend) in [
        ("disabled", format!("  disabled\n  server a {addr}\n")),
        ("no-server", format!("  server a {addr} disabled\n")),
    ] {
        let syslog = Syslog::bind();
        let port = free_port();
        let conf = tcp_config(&syslog, port, &backend);
        let test = format!("small-gaps-tw-{case}");
        let (ours, theirs) = side_by_side(&test, &conf, (LO, port).into(), |front| {
            let mut conn = TcpStream::connect(front).expect("connecting");
            let fate = fate(&mut conn, Duration::from_secs(3)).to_string();
            let line = syslog.lines(1).pop().unwrap_or_default();
            // `be/SRV Tw/Tc/Tt BYTES FLAGS COUNTERS QUEUES`, Tt as set.
            let words: Vec<&str> = line.split(' ').collect();
            let word = |i: usize| words.get(i).copied().unwrap_or_default();
            let timers: Vec<&str> = word(4).split('/').collect();
            let timer = |i: usize| timers.get(i).copied().unwrap_or("?");
            let shown = format!(
                "{} {}/{}/Tt {} {} {} {}",
                word(3),
                timer(0),
                timer(1),
                word(5),
                word(6),
                word(7),
                word(8)
            );
            (fate, shown)
        });
        let expected = (
            "closed".to_string(),
            "be/<NOSRV> -1/-1/Tt 0 SC 1/1/0/0/0 0/0".to_string(),
        );
        agree(ours, theirs, expected);
    }
}

/// A master-worker process (`-W -S MASTER.sock`) and its worker's stats socket, stopped (by
/// SIGTERM to the master) when dropped.
struct MasterWorker {
    child: Child,
    master: PathBuf,
    worker: PathBuf,
}

impl MasterWorker {
    fn start(binary: &Path, dir: &Path, name: &str, port: u16, global: &str) -> MasterWorker {
        let (master, worker) = (
            dir.join(format!("{name}-m.sock")),
            dir.join(format!("{name}-w.sock")),
        );
        let config = format!(
            "global\n  stats socket {} level admin\n{global}\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server a 127.0.0.1:1\n",
            worker.display()
        );
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, config).expect("writing the configuration");
        // Owned before anything can fail: a failed start still stops the processes.
        let started = MasterWorker {
            child: spawn_master(binary, &master, &cfg),
            master,
            worker,
        };
        // HAProxy's master executes itself again once its worker runs (its wait mode): its
        // socket answers only after that. A socket's file exists from its bind(2), before
        // its listen(2) (HAProxy even renames it between the two): until then connecting is
        // refused, so each socket is asked without failing until it answers.
        let up = wait_until(WAIT, || {
            asked(&started.worker, "show info").starts_with("Name:")
                && asked(&started.master, "show proc").contains("worker")
        });
        assert!(up, "{name}: the worker's stats socket never answered");
        started
    }
}

impl Drop for MasterWorker {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The answer to `command` on the UNIX socket at `path`; empty when it cannot connect.
fn asked(path: &Path, command: &str) -> String {
    let Ok(mut conn) = UnixStream::connect(path) else {
        return String::new();
    };
    if conn.write_all(format!("{command}\n").as_bytes()).is_err() {
        return String::new();
    }
    read_for(&mut conn, Duration::from_secs(2))
}

/// Both programs, HAProxy only where it is installed (else the test says so, or fails in CI).
fn programs(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut out = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        out.push(("haproxy", HAPROXY.into()));
    }
    out
}

/// What `run` saw of each of [`programs`] (hapx first), the programs run at the same time:
/// each has its own processes, sockets and port, so neither waits for the other.
fn each_program<T: Send>(test: &str, run: impl Fn(&str, &Path) -> T + Sync) -> Vec<T> {
    let programs = programs(test);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (programs.iter())
            .map(|(name, binary)| scope.spawn(|| run(name, binary)))
            .collect();
        (runs.into_iter())
            .map(|r| {
                r.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// What `conn` received until it ended with its `prompts`th CLI prompt (`> `, the master's
/// `master> `, a worker's `PID> `: in prompt mode, what ends each answer), or it closed, or
/// `WAIT` passed.
fn prompted(conn: &mut UnixStream, prompts: usize) -> String {
    let is_prompt = |piece: &str| {
        let last = piece.rsplit('\n').next().unwrap_or_default();
        last.strip_suffix("> ")
            .is_some_and(|who| who == "master" || who.bytes().all(|b| b.is_ascii_digit()))
    };
    read_until(conn, |text| {
        let pieces: Vec<&str> = text.split_inclusive("> ").collect();
        pieces.last().is_some_and(|p| is_prompt(p))
            && pieces.iter().filter(|p| is_prompt(p)).count() >= prompts
    })
}

/// What `conn` received until it is `complete`, or it closed, or `WAIT` passed.
fn read_until(conn: &mut UnixStream, complete: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !complete(&String::from_utf8_lossy(&got)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match conn.read(&mut buf) {
            Ok(n @ 1..) => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// What `conn` received within `wait` (until it closed, or nothing more came).
fn read_for(conn: &mut UnixStream, wait: Duration) -> String {
    conn.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn the_masters_sessions_count_in_the_workers_stats_maxconn() {
    let test = "small-gaps-master-maxconn";
    let dir = temp_dir(test);
    each_program(test, |name, binary| {
        let process = MasterWorker::start(binary, &dir, name, free_port(), "  stats maxconn 1\n");
        // The worker's only CLI slot, held by an interactive session.
        let mut held = UnixStream::connect(&process.worker).unwrap();
        held.write_all(b"prompt\n").unwrap();
        assert_eq!(prompted(&mut held, 1), "\n> ", "{name}");
        let mut asking = UnixStream::connect(&process.master).unwrap();
        asking.write_all(b"@1 show info\n").unwrap();
        let meanwhile = read_for(&mut asking, Duration::from_secs(1));
        assert_eq!(meanwhile, "", "{name}: answered with the slots taken");
        drop(held);
        // Its whole answer: up to the empty line that ends it.
        let answer = read_until(&mut asking, |text| text.ends_with("\n\n"));
        assert!(answer.starts_with("Name: "), "{name}: {answer:?}");
    });
}

/// `answer` with each worker's prompt (its pid) as `PID> `.
fn pid_prompt(answer: String) -> String {
    let prompt = |piece: &str| {
        let before = piece.strip_suffix("> ")?;
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        (digits > 0).then(|| format!("{}PID> ", &before[..before.len() - digits]))
    };
    answer
        .split_inclusive("> ")
        .map(|piece| prompt(piece).unwrap_or_else(|| piece.to_string()))
        .collect()
}

#[test]
fn the_master_cli_prompts_and_takes_a_default_target_as_haproxy() {
    let test = "small-gaps-master-prompt";
    let dir = temp_dir(test);
    let seen = each_program(test, |name, binary| {
        let process = MasterWorker::start(binary, &dir, name, free_port(), "");
        let mut conn = UnixStream::connect(&process.master).unwrap();
        let mut answers = Vec::new();
        for line in [
            "prompt\n",
            "show cli level\n",
            "\n",
            "@1\n",
            "@master show cli level\n",
            "@master\n",
            "operator\n",
            "show cli level\n",
        ] {
            conn.write_all(line.as_bytes()).unwrap();
            answers.push(pid_prompt(prompted(&mut conn, 1)));
        }
        answers
    });
    let help = "Unknown command. Please enter one of the following commands only:\n";
    let ours = &seen[0];
    assert_eq!(ours[0], "master> ");
    assert_eq!(ours[1], "admin\n\nmaster> ");
    assert!(ours[2].starts_with(help), "{:?}", ours[2]);
    assert!(
        ours[2].ends_with(": disconnect\n\nmaster> "),
        "{:?}",
        ours[2]
    );
    assert_eq!(ours[3], "PID> ");
    assert_eq!(ours[4], "admin\n\nPID> ");
    assert_eq!(ours[5], "master> ");
    assert_eq!(ours[6], "master> ");
    assert_eq!(ours[7], "operator\n\nmaster> ");
    if let Some(theirs) = seen.get(1) {
        // HAProxy's list of commands has one hapx does not implement (`show cli sockets`).
        let without = |answers: &Vec<String>| {
            let lines = |a: &String| {
                let kept = a.lines().filter(|l| !l.contains("show cli sockets"));
                kept.collect::<Vec<_>>().join("\n")
            };
            answers.iter().map(lines).collect::<Vec<_>>()
        };
        assert_eq!(without(ours), without(theirs), "hapx, then HAProxy");
    }
}

/// Whether the other end closed `conn` (what it sent before was read).
fn closed(conn: &mut UnixStream) -> bool {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    matches!(conn.read(&mut [0u8; 1]), Ok(0))
}

#[test]
fn the_master_cli_keeps_its_own_commands_whatever_the_target_as_haproxy() {
    let test = "small-gaps-master-own-commands";
    let dir = temp_dir(test);
    let seen = each_program(test, |name, binary| {
        let process = MasterWorker::start(binary, &dir, name, free_port(), "");
        let mut answers = Vec::new();
        // What answers `line`: up to its `prompts`th prompt; without one, what came within
        // half a second.
        let mut say = |conn: &mut UnixStream, line: &str, prompts: usize| {
            conn.write_all(line.as_bytes()).unwrap();
            let answer = match prompts {
                0 => read_for(conn, Duration::from_millis(500)),
                _ => prompted(conn, prompts),
            };
            answers.push(pid_prompt(answer));
        };
        let session = || {
            let mut conn = UnixStream::connect(&process.master).unwrap();
            conn.write_all(b"prompt\n@1\n").unwrap();
            assert_eq!(
                pid_prompt(prompted(&mut conn, 2)),
                "master> PID> ",
                "{name}"
            );
            conn
        };
        // The master's, not sent on to the worker: the session's level, as `@master` shows.
        let mut conn = session();
        say(&mut conn, "operator\n", 1);
        say(&mut conn, "@master show cli level\n", 1);
        say(&mut conn, "user\n", 1);
        say(&mut conn, "@master show cli level\n", 1);
        // Several commands on a line: a prompt after each.
        say(
            &mut conn,
            "@master show cli level; @master show cli level\n",
            2,
        );
        // Closed after its prompt.
        let mut quitting = session();
        say(&mut quitting, "quit\n", 1);
        assert!(closed(&mut quitting), "{name}: open after quit");
        // Toggled off: no prompt after that command (HAProxy's session then goes on).
        let mut toggling = session();
        say(&mut toggling, "prompt\n", 0);
        // A reload ends the sessions: HAProxy's master executes itself again.
        assert_eq!(asked(&process.master, "reload"), "", "{name}: reload");
        assert!(closed(&mut conn), "{name}: a session open after a reload");
        answers
    });
    let ours = &seen[0];
    let expected = [
        "PID> ",
        "operator\n\nPID> ",
        "PID> ",
        "user\n\nPID> ",
        "user\n\nPID> user\n\nPID> ",
        "PID> ",
        "",
    ];
    assert_eq!(ours, &expected, "hapx");
    if let Some(theirs) = seen.get(1) {
        assert_eq!(ours, theirs, "hapx, then HAProxy");
    }
}
