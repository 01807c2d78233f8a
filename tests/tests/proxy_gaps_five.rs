//! Small differences from HAProxy 2.6.12 closed side by side with it (fifth round).
//!
//! - An idle server connection its client connection owns (`http-reuse never`, or a TLS
//!   one) that its server closes is closed at once with a FIN, as HAProxy's (through TLS
//!   after a close_notify of its own), not reset when its client connection ends.
//! - A `stick store-response` condition reads of the request only what HAProxy keeps once
//!   the head went to the server: a method HAProxy knows by number; `hdr_cnt()`, `url`,
//!   `req.proto_http` and the other request fetches find nothing.
//! - The master CLI keeps a connection open after its commands, `prompt` or not (which
//!   only toggles the prompt), until its client closes it or sends `quit`; ten sessions
//!   at once, the eleventh served only once one of them ends.
//! - A queued request killed by `shutdown session` then given its server's slot logs
//!   `%sc` without the request waiting behind it, which takes the slot only after.
//! - An ACL's own patterns under `-i` match as HAProxy's (folded without a copy per
//!   evaluation) with every string match method, on text and on numbers and addresses.
//! - `L6 sample fetches ignored on HTTP proxies` is warned about per rule whose condition
//!   reads raw bytes, at the rule (a named ACL at each rule using it, never where it is
//!   declared), not for `stick store-response`, `redirect`, `stats admin`,
//!   `force-persist`/`ignore-persist` or `monitor fail` (never checked at all); the
//!   never-match warnings name HAProxy's check points (`use-backend rule`, `backend
//!   use-server, balance or stick-match rule` for `stick` and `use-server`, `backend
//!   tcp-request content rule` for the persistence rules, a listen section's response
//!   rules by its backend).
//! - The `Did you mean` hint of an unknown rule action is HAProxy's choice: the closest
//!   action by its word fingerprints, within its tolerance.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, http_raw, spawn_master, temp_dir, wait_until};
use hapx_tests::proxy_lifecycle::{SlowServer, request};
use hapx_tests::proxy_rules::{EchoServer, Syslog, binaries, check_alike, side_by_side};
use hapx_tests::proxy_tls::Pki;

const WAIT: Duration = Duration::from_secs(5);

/// How a server connection the server half-closed after its response ended, seen from the
/// server: `FIN` or `RST` (or `open` if still open after [`WAIT`]), and whether TLS bytes
/// (a close_notify) came before the end.
type Ending = (&'static str, bool);

/// A server that answers one request on each connection, waits, closes its side (through
/// TLS, with a close_notify first) and reports how the proxy ended the connection.
fn closing_server(
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (SocketAddr, mpsc::Receiver<Ending>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    let (report, endings) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (tls, report) = (tls.clone(), report.clone());
            thread::spawn(move || {
                if let Some(ending) = answer_then_close(conn, tls) {
                    let _ = report.send(ending);
                }
            });
        }
    });
    (addr, endings)
}

fn answer_then_close(
    mut conn: TcpStream,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Option<Ending> {
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    conn.set_read_timeout(Some(WAIT)).ok()?;
    let mut session = match tls {
        Some(config) => Some(rustls::ServerConnection::new(config).ok()?),
        None => None,
    };
    let mut head = Vec::new();
    let mut chunk = [0; 4096];
    match session.as_mut() {
        Some(s) => {
            let mut stream = rustls::Stream::new(s, &mut conn);
            while !head.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
                head.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(ANSWER).ok()?;
        }
        None => {
            while !head.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
                head.extend_from_slice(&chunk[..n]);
            }
            conn.write_all(ANSWER).ok()?;
        }
    }
    // Idle in the proxy for a while, then closed by the server.
    thread::sleep(Duration::from_millis(300));
    if let Some(s) = session.as_mut() {
        s.send_close_notify();
        s.complete_io(&mut conn).ok()?;
    }
    conn.shutdown(std::net::Shutdown::Write).ok()?;
    let mut tls_bytes = false;
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => return Some(("FIN", tls_bytes)),
            Ok(_) => tls_bytes = true,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(("RST", tls_bytes)),
            Err(_) => return Some(("open", tls_bytes)),
        }
    }
}

/// One request through `front` on a connection kept open until the server reports how its
/// connection ended.
fn ending_while_client_idles(front: SocketAddr, endings: &mpsc::Receiver<Ending>) -> Ending {
    let mut client = TcpStream::connect(front).expect("connecting to the proxy");
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("sending a request");
    client.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut answer = [0; 1024];
    let n = client.read(&mut answer).expect("an answer");
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    let ending = endings
        .recv_timeout(WAIT * 2)
        .unwrap_or(("no report", false));
    drop(client);
    ending
}

fn owned_connection_config(
    front: SocketAddr,
    server: SocketAddr,
    reuse: &str,
    ssl: &str,
) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  http-reuse {reuse}\n  server a {server}{ssl}\n"
    )
}

#[test]
fn a_private_idle_connection_closed_by_its_server_ends_with_a_fin() {
    let (server, endings) = closing_server(None);
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = owned_connection_config(front, server, "never", "");
    let (ours, theirs) = side_by_side("private_idle_fin", &config, front, |front| {
        ending_while_client_idles(front, &endings)
    });
    assert_eq!(ours, ("FIN", false), "hapx");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

#[test]
fn a_tls_idle_connection_closed_by_its_server_ends_with_close_notify_and_fin() {
    let dir = temp_dir("tls_idle_fin");
    let pki = Pki::new(&dir);
    let (server, endings) = closing_server(Some(pki.server_config(false)));
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    for reuse in ["safe", "never"] {
        let config = owned_connection_config(front, server, reuse, " ssl verify none");
        let (ours, theirs) = side_by_side("tls_idle_fin", &config, front, |front| {
            ending_while_client_idles(front, &endings)
        });
        assert_eq!(ours, ("FIN", true), "hapx, http-reuse {reuse}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "hapx vs HAProxy, http-reuse {reuse}");
        }
    }
}

/// Request fetches tried in `stick store-response` conditions, one table each.
const REQUEST_FETCHES: [&str; 10] = [
    "method",
    "hdr_cnt",
    "hdr_cnt(host)",
    "req.hdr_cnt(host)",
    "hdr(host)",
    "url",
    "path",
    "req.ver",
    "req.proto_http",
    "http_auth_type",
];

#[test]
fn store_response_conditions_see_only_what_haproxy_keeps_of_the_request() {
    let dir = temp_dir("store_response_request");
    let sock = dir.join("admin.sock");
    let server = EchoServer::start("a");
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\nbackend be\n",
        sock.display()
    );
    for (i, fetch) in REQUEST_FETCHES.iter().enumerate() {
        config += &format!("  stick store-response str(k) table t{i} if {{ {fetch} -m found }}\n");
    }
    config += &format!("  server a {}\n", server.addr);
    for i in 0..REQUEST_FETCHES.len() {
        config += &format!("backend t{i}\n  stick-table type string size 10\n");
    }
    let (ours, theirs) = side_by_side("store_response_request", &config, front, |front| {
        ["GET", "FOO"].map(|method| {
            let request = format!(
                "{method} /p?a=1 HTTP/1.1\r\nHost: t\r\nAuthorization: Basic dTpw\r\n\
                 Connection: close\r\n\r\n"
            );
            let answer = http_raw(front, request.as_bytes(), WAIT);
            assert!(answer.starts_with("HTTP/1.1 200"), "{method}: {answer}");
            let stored: Vec<&str> = (REQUEST_FETCHES.iter().enumerate())
                .filter(|(i, _)| cli(&sock, &format!("show table t{i}")).contains("key=k "))
                .map(|(_, fetch)| *fetch)
                .collect();
            for i in 0..REQUEST_FETCHES.len() {
                cli(&sock, &format!("clear table t{i}"));
            }
            (method, stored)
        })
    });
    assert_eq!(ours, [("GET", vec!["method"]), ("FOO", vec![])], "hapx");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

/// A master-worker process (`-W -S PATH`), stopped by SIGTERM to the master when dropped.
struct MasterWorker {
    child: Child,
    master: PathBuf,
}

impl MasterWorker {
    fn start(binary: &Path, dir: &Path, name: &str) -> MasterWorker {
        let master = dir.join(format!("{name}-m.sock"));
        let config = format!(
            "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  default_backend be\n\
             backend be\n  server a 127.0.0.1:1\n",
            free_port()
        );
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, config).expect("writing the configuration");
        let child = spawn_master(binary, &master, &cfg);
        let mw = MasterWorker { child, master };
        // HAProxy's master executes itself again once its worker runs: its socket answers
        // only after that.
        let up = wait_until(WAIT, || {
            UnixStream::connect(&mw.master).is_ok_and(|mut conn| {
                let mut session = MasterSession::new(&mut conn);
                session.ask("show proc", TABLE_END, 1).contains("worker")
            })
        });
        assert!(up, "{name}: the master CLI never answered");
        mw
    }
}

impl Drop for MasterWorker {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// One connection to a master CLI, read answer by answer.
struct MasterSession<'a> {
    conn: &'a mut UnixStream,
}

impl MasterSession<'_> {
    fn new(conn: &mut UnixStream) -> MasterSession<'_> {
        conn.set_read_timeout(Some(WAIT)).expect("a timeout");
        MasterSession { conn }
    }

    /// Sends `line`; what came back until `ends` answers ended with `end` (shown with
    /// `<closed>` if the connection closed first, `<silent>` if nothing came).
    fn ask(&mut self, line: &str, end: &str, ends: usize) -> String {
        if self.conn.write_all(format!("{line}\n").as_bytes()).is_err() {
            return "<closed>".into();
        }
        let mut got = Vec::new();
        let mut chunk = [0; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if text.matches(end).count() >= ends && text.ends_with(end) {
                return text;
            }
            match self.conn.read(&mut chunk) {
                Ok(0) => return text + "<closed>",
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(_) if got.is_empty() => return "<silent>".into(),
                Err(_) => return text,
            }
        }
    }
}

/// The end of `show proc`'s answer.
const TABLE_END: &str = "# programs\n\n";

/// How a master CLI session goes through `lines`, one answer each, reduced to its shape:
/// `show proc`'s table as `TABLE`, the prompt as is.
fn master_session_shape(master: &Path, lines: &[&str]) -> Vec<String> {
    let mut conn = UnixStream::connect(master).expect("connecting to the master CLI");
    let mut session = MasterSession::new(&mut conn);
    // Each answer is read to its end: the prompt in interactive mode, else the table's.
    let mut interactive = false;
    lines
        .iter()
        .map(|line| {
            interactive ^= line.lines().filter(|l| *l == "prompt").count() % 2 == 1;
            let end = if interactive { "> " } else { TABLE_END };
            let mut answer = session.ask(line, end, line.split(';').count());
            // Each table as `TABLE`.
            while let (Some(start), Some(end)) = (answer.find("#<PID>"), answer.find(TABLE_END)) {
                answer.replace_range(start..end + TABLE_END.len(), "TABLE");
            }
            answer
        })
        .collect()
}

#[test]
fn the_master_cli_keeps_a_session_open_after_its_commands_as_haproxy() {
    let test = "gaps5-master-session";
    let dir = temp_dir(test);
    let scripts: [&[&str]; 3] = [
        &["show proc", "show proc", "quit"],
        // The second `prompt` has no answer: the table after it comes without a prompt.
        &["prompt", "show proc", "prompt\nshow proc", "show proc"],
        &["show proc; show proc", "show proc"],
    ];
    let mut seen = Vec::new();
    for (name, binary) in binaries(test) {
        let mw = MasterWorker::start(&binary, &dir, name);
        let shapes: Vec<Vec<String>> = scripts
            .iter()
            .map(|lines| master_session_shape(&mw.master, lines))
            .collect();
        seen.push((name, shapes));
    }
    let expected = vec![
        vec!["TABLE".to_string(), "TABLE".into(), "<closed>".into()],
        vec![
            "master> ".to_string(),
            "TABLEmaster> ".into(),
            "TABLE".into(),
            "TABLE".into(),
        ],
        vec!["TABLETABLE".to_string(), "TABLE".into()],
    ];
    for (name, shapes) in &seen {
        assert_eq!(shapes, &expected, "{name}");
    }
}

/// How a master CLI serves an eleventh connection while ten idle ones are open: what it
/// answers then (`<silent>`), and once one of the ten closed.
fn eleventh_master_session(master: &Path) -> (bool, String, String) {
    let mut ten: Vec<UnixStream> = (0..10)
        .map(|_| UnixStream::connect(master).expect("connecting to the master CLI"))
        .collect();
    // Each of the ten is being served before the eleventh comes.
    let served = ten.iter_mut().all(|conn| {
        MasterSession::new(conn)
            .ask("show proc", TABLE_END, 1)
            .ends_with(TABLE_END)
    });
    let mut eleventh = UnixStream::connect(master).expect("a connection waiting in the backlog");
    // Silence can only be shown by waiting; a second is long for a local answer.
    eleventh
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("a timeout");
    let while_full = MasterSession {
        conn: &mut eleventh,
    }
    .ask("show proc", TABLE_END, 1);
    drop(ten.pop());
    let mut got = Vec::new();
    eleventh.set_read_timeout(Some(WAIT)).expect("a timeout");
    let mut chunk = [0; 4096];
    while !String::from_utf8_lossy(&got).ends_with(TABLE_END) {
        match eleventh.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    let after_one_closed = if String::from_utf8_lossy(&got).contains("#<PID>") {
        "TABLE".to_string()
    } else {
        String::from_utf8_lossy(&got).into_owned()
    };
    (served, while_full, after_one_closed)
}

#[test]
fn the_master_cli_serves_ten_sessions_at_once_as_haproxy() {
    let test = "gaps5-master-cap";
    let dir = temp_dir(test);
    for (name, binary) in binaries(test) {
        let mw = MasterWorker::start(&binary, &dir, name);
        let seen = eleventh_master_session(&mw.master);
        assert_eq!(
            seen,
            (true, "<silent>".to_string(), "TABLE".to_string()),
            "{name}: ten served, the eleventh waiting, then served"
        );
    }
}

#[test]
fn unknown_action_hints_are_haproxys() {
    let places = [
        ("frontend fe\n  bind 127.0.0.1:1\n", "http-request"),
        ("frontend fe\n  bind 127.0.0.1:1\n", "http-response"),
        ("frontend fe\n  bind 127.0.0.1:1\n", "tcp-request content"),
        ("backend be\n", "tcp-response content"),
    ];
    let words = [
        "replace-headers-values",
        "add-header-to-request",
        "redirect-to-location",
        "set-timeout-server",
        "auth-realm",
        "set-vaar",
        "rejected",
        "capture-req",
        "denny",
        "xyz",
    ];
    for (section, keyword) in places {
        for word in words {
            let text = format!(
                "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                 {section}  {keyword} {word}\n"
            );
            let (code, messages) = check_alike("gaps5-action-hints", &text);
            assert_eq!(code, 1, "{keyword} {word}: {messages:?}");
        }
    }
}

/// The `show sess` id of the stream of `client`, once listed.
fn stream_id(admin: &Path, client: SocketAddr) -> Option<String> {
    let src = format!("src={client} ");
    let answer = cli(admin, "show sess");
    let line = answer.lines().find(|l| l.contains(&src))?;
    Some(line.split(':').next()?.to_string())
}

#[test]
fn a_killed_request_given_a_slot_logs_server_connections_as_haproxy() {
    let dir = temp_dir("gaps5-killed-sc");
    let admin = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let server = SlowServer::start("a");
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "global\n  stats socket {} level admin\n  nbthread 1\n\
         defaults\n  mode http\n  log {} local0\n  log-format \"%HP %ST %tsc %bc/%sc %sq/%bq\"\n\
         timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n  timeout queue 20s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  server a {} maxconn 1\n",
        admin.display(),
        syslog.addr,
        server.addr
    );
    let (ours, theirs) = side_by_side("gaps5-killed-sc", &config, front, |front| {
        let before = server.requests.load(std::sync::atomic::Ordering::SeqCst);
        let served = request(front, "/held");
        wait_until(WAIT, || {
            server.requests.load(std::sync::atomic::Ordering::SeqCst) > before
        });
        // Two requests wait in the server's queue; the first is killed while it waits.
        let queued = ["/killed", "/next"].map(|path| {
            let conn = request(front, path);
            let client = conn.local_addr().expect("its address");
            assert!(wait_until(WAIT, || stream_id(&admin, client).is_some()));
            conn
        });
        let killed = stream_id(&admin, queued[0].local_addr().expect("its address"));
        cli(
            &admin,
            &format!("shutdown session {}", killed.unwrap_or_default()),
        );
        // The server's slot frees only once the kill is done, however slow the machine: the
        // killed request then meets its kill when the slot gives it a turn, never on the
        // server. Both proxies mark the stream before they answer the command; with one
        // thread, HAProxy also runs the woken stream before it reads the server's answer
        // (with two, the stream's thread could run it after, and count it on the server).
        server.release();
        let mut lines = syslog.lines(3);
        lines.sort();
        drop((served, queued));
        lines
            .iter()
            .map(|l| {
                l.split_once(": ")
                    .map_or(l.as_str(), |(_, m)| m)
                    .to_string()
            })
            .collect::<Vec<_>>()
    });
    let expected = vec![
        "/held 200 ---- 2/0 0/0".to_string(),
        "/killed 502 KH-- 1/0 0/1".into(),
        "/next 200 ---- 0/0 0/2".into(),
    ];
    assert_eq!(ours, expected, "hapx");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

#[test]
fn inline_patterns_under_ignore_case_match_as_haproxys() {
    let server = EchoServer::start("a");
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let conditions = [
        "hdr(x) -i -m str foo.example.com/path?q",
        "hdr(x) -i -m beg FOO.ex",
        "hdr(x) -i -m end PATH?q",
        "hdr(x) -i -m sub EXAMPLE",
        "hdr(x) -m sub EXAMPLE",
        "hdr(x) -i -m dir path",
        "hdr(x) -i -m dom EXAMPLE",
        "hdr(x) -i -m reg ^foo",
        "hdr(x) -i -m len 22",
        "src -i -m beg 127.",
        "int(42) -i -m end 2",
        "hdr(x) -i -m sub {}",
    ];
    let mut config = format!(
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n"
    );
    for (i, condition) in conditions.iter().enumerate() {
        let condition = condition.replace("{}", &"y".repeat(300));
        config += &format!("  http-request set-header x-matched-{i} 1 if {{ {condition} }}\n");
    }
    config += &format!("backend be\n  server a {}\n", server.addr);
    let (ours, theirs) = side_by_side("gaps5-ignore-case", &config, front, |front| {
        let long = "Y".repeat(300);
        ["Foo.Example.COM/Path?Q".to_string(), format!("A{long}B")].map(|x| {
            let request =
                format!("GET / HTTP/1.1\r\nHost: t\r\nX: {x}\r\nConnection: close\r\n\r\n");
            let answer = http_raw(front, request.as_bytes(), WAIT);
            let matched: Vec<String> = (answer.lines())
                .filter_map(|l| l.strip_prefix("x-matched-"))
                .map(|l| l.split(':').next().unwrap_or_default().to_string())
                .collect();
            matched.join(",")
        })
    });
    assert_eq!(
        ours,
        ["0,1,2,3,5,6,7,8,9,10".to_string(), "9,10,11".into()],
        "hapx"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx vs HAProxy");
    }
}

#[test]
fn condition_checks_warn_where_and_as_haproxy() {
    let sections = [
        "listen be\n  bind 127.0.0.1:1\n  stick-table type string size 10\n  server a 127.0.0.1:1\n",
        "backend be\n  stick-table type string size 10\n  server a 127.0.0.1:1\n",
    ];
    let rules = [
        "acl x req.len gt 0",
        "acl x req.len gt 0\n  http-request deny if x\n  http-request deny if x",
        "acl x req.len gt 0\n  stick store-response str(k) if x",
        "stick on str(k) if { res.len gt 0 }",
        "stick store-request str(k) if { res.len gt 0 }",
        "stick store-response str(k) if { req.len gt 0 }",
        "use-server a if { res.len gt 0 }",
        "force-persist if { res.len gt 0 }",
        "ignore-persist if { req.len gt 0 }",
        "http-response deny if { req.len gt 0 }",
        "http-after-response set-header a b if { req.hdr(x) -m found }",
        "redirect location /x if { req.len gt 0 }",
        "monitor fail if { res.hdr(x) -m found }",
        "stats admin if { req.len gt 0 }",
        "use_backend b if { res.len gt 0 }",
    ];
    for section in sections {
        for rule in rules {
            let text = format!(
                "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                 {section}  {rule}\nbackend b\n"
            );
            check_alike("gaps5-condition-checks", &text);
        }
    }
}

#[test]
fn unknown_master_commands_get_haproxys_close_commands() {
    let test = "gaps5-master-hints";
    let dir = temp_dir(test);
    let commands = ["show sta", "zzz", "help show", "relaod", "show pro"];
    let mut seen = Vec::new();
    for (name, binary) in binaries(test) {
        let mw = MasterWorker::start(&binary, &dir, name);
        let answers: Vec<String> = commands
            .iter()
            .map(|command| {
                let mut conn = UnixStream::connect(&mw.master).expect("connecting to the master");
                // Every answer ends with an empty line.
                MasterSession::new(&mut conn).ask(command, "\n\n", 1)
            })
            .collect();
        seen.push((name, answers));
    }
    let (_, hapx) = &seen[0];
    assert!(
        hapx[0].starts_with(
            "Unknown command, but maybe one of the following ones is a better match:\n"
        ) && hapx[0].contains("  show proc ")
            && !hapx[0].contains("reload"),
        "hapx proposes the close master commands only: {}",
        hapx[0]
    );
    if let [(_, hapx), (_, haproxy)] = seen.as_slice() {
        for ((command, ours), theirs) in commands.iter().zip(hapx).zip(haproxy) {
            assert_eq!(ours, theirs, "'{command}' on the master CLI");
        }
    }
}
