//! Server lifecycle keywords in HTTP mode, side by side with HAProxy 2.6 (same
//! configuration, same traffic, same observations): when a server with `on-marked-down
//! shutdown-sessions` goes DOWN (its checks, or maintenance on the stats socket), its
//! requests in progress are killed, and when an active server with `on-marked-up
//! shutdown-backup-sessions` comes UP, the backup servers' requests are: a request still
//! waiting for its response gets HAProxy's 502 (`DH--`, `Tr` -1, an `eresp`) and its client
//! connection stays open; a response under way is cut with its client connection (`DD--`,
//! `UD--`, a `srv_abrt`); a kept-alive request that is not its connection's first closes the
//! connection without an answer nor a log line; a kept-alive client connection waiting
//! between requests is no stream and stays open, its next request going to another server.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, wait_until};
use hapx_tests::proxy_lifecycle::{
    CheckPort, Lab, SlowServer, agree, answered, received, received_until, request, request_logs,
    send, status,
};

fn lab(test: &str, names: [&str; 2]) -> Lab<[SlowServer; 2]> {
    Lab::new(test, "http", names.map(SlowServer::start))
}

/// The backend's servers: the first with `options`, the second a backup.
fn servers(lab: &Lab<[SlowServer; 2]>, options: &str) -> String {
    let [a, b] = &lab.servers;
    format!(
        "  server {} {} {options}\n  server {} {} backup\n",
        a.name, a.addr, b.name, b.addr
    )
}

/// How long a test waits for what a proxy is bound to send (a loaded machine may be slow).
const ANSWER: Duration = Duration::from_secs(10);

/// `show stat`'s `scur` of `be/server` is `streams`, within [`ANSWER`].
fn streams_on(sock: &Path, server: &str, streams: usize) -> bool {
    let scur = streams.to_string();
    wait_until(ANSWER, || {
        stat_row(&cli(sock, "show stat"), "be", server).is_some_and(|r| r["scur"] == scur)
    })
}

/// A response's status line and body (the part after its head), for comparison.
fn summary((text, fate): (String, &'static str)) -> String {
    let status = text.lines().next().unwrap_or_default();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let body = body.trim_end().replace('\n', " ");
    format!("{status} | {body} | {fate}")
}

/// `show stat`'s `columns` of `be/server` (or `fe/FRONTEND` with `proxy` "fe").
fn counters(proxy: &str, server: &str, columns: &[&str], stat: &str) -> String {
    let row = stat_row(stat, proxy, server).unwrap_or_default();
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("{c}={}", row.get(*c).map_or("?", |v| v.as_str())))
        .collect();
    format!("{proxy}/{server} {}", values.join(" "))
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// Per client connection: what it received after the kill, and its fate.
    clients: Vec<String>,
    /// The request log lines.
    logs: Vec<String>,
    /// `show stat` counters once all is over.
    stats: Vec<String>,
}

/// One client's stream killed: what it saw `before` the kill and after it until the proxy
/// closed it, the stream's log line, and `be/a`'s `columns` once it ended.
fn after_kill(
    before: String,
    conn: &mut TcpStream,
    lab: &Lab<[SlowServer; 2]>,
    columns: &[&str],
) -> Observed {
    let after = summary(received(conn, ANSWER));
    let logs = request_logs(&lab.syslog, 1);
    assert!(streams_on(&lab.sock, "a", 0), "the stream did not end");
    let stat = cli(&lab.sock, "show stat");
    Observed {
        clients: vec![before, after],
        logs,
        stats: vec![counters("be", "a", columns, &stat)],
    }
}

/// Waits until the stream just started is on be/a (a loaded machine may take a while), so
/// that disabling be/a kills it rather than sending it elsewhere.
fn on_server_a(sock: &std::path::Path) {
    assert!(
        wait_until(Duration::from_secs(5), || {
            stat_row(&cli(sock, "show stat"), "be", "a").is_some_and(|r| r["scur"] == "1")
        }),
        "the stream did not reach be/a"
    );
}

/// A stream on `be`'s server `a` killed by its maintenance (`disable server be/a`) once its
/// client, connected by `start`, got what ends with `first` (nothing: "") and what came
/// within 500 ms more: [`after_kill`]'s view of it through hapx-proxy, then HAProxy.
fn killed_in_maintenance(
    lab: &Lab<[SlowServer; 2]>,
    be: &str,
    start: impl Fn(SocketAddr) -> TcpStream,
    first: &str,
    columns: &[&str],
) -> (Observed, Option<Observed>) {
    lab.run(&lab.name, be, |front| {
        let mut conn = start(front);
        on_server_a(&lab.sock);
        let before = summary(answered(&mut conn, first, Duration::from_millis(500)));
        cli(&lab.sock, "disable server be/a");
        after_kill(before, &mut conn, lab, columns)
    })
}

#[test]
fn maintenance_kills_the_servers_http_streams() {
    let lab = lab("http-lifecycle-maint", ["a", "b"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let be = servers(&lab, "on-marked-down shutdown-sessions");
    let a = &lab.servers[0];
    let (ours, theirs) = lab.run("http-lifecycle-maint", &be, |front| {
        let quick = Duration::from_millis(500);
        let on_a = a.requests.load(SeqCst);
        // A kept-alive connection between requests, a request waiting for its response, a
        // response under way, and a kept-alive connection's second request waiting, each
        // held by the server until the kill.
        let mut idle = request(front, "/fast");
        let served_first = summary(answered(&mut idle, "\r\n\r\na\n", quick));
        let mut waiting = request(front, "/held");
        let mut cut = request(front, "/held-body");
        // A request whose body is still coming (5 of its 10 bytes).
        let mut sending = TcpStream::connect(front).expect("connecting to the frontend");
        let post = "POST /post HTTP/1.1\r\nhost: lab\r\ncontent-length: 10\r\n\r\n01234";
        sending
            .write_all(post.as_bytes())
            .expect("sending a request");
        let mut second = request(front, "/fast");
        let _ = received_until(&mut second, "\r\n\r\na\n", ANSWER);
        send(&mut second, "/held");
        let started_body = summary(answered(&mut cut, "0123456789", quick));
        // Every request on a (the POST's head too), so that the kill finds each there.
        assert!(
            wait_until(ANSWER, || a.requests.load(SeqCst) >= on_a + 5),
            "the requests did not reach be/a"
        );
        assert!(streams_on(sock, "a", 4), "the streams are not all on be/a");
        cli(sock, "disable server be/a");
        let page_end = "</body></html>\n";
        let mut clients = vec![
            format!("idle first: {served_first}"),
            format!("body start: {started_body}"),
            format!(
                "waiting: {}",
                summary(answered(&mut waiting, page_end, quick))
            ),
            format!("cut: {}", summary(received(&mut cut, ANSWER))),
            format!("second: {}", summary(received(&mut second, ANSWER))),
            format!("sending: {}", summary(received(&mut sending, ANSWER))),
            format!("idle: {}", summary(received(&mut idle, quick))),
        ];
        // The idle connection's next request goes to the backup.
        send(&mut idle, "/fast");
        clients.push(format!(
            "idle next: {}",
            summary(answered(&mut idle, "\r\n\r\nb\n", quick))
        ));
        let logs = request_logs(syslog, 6);
        // The counters once every stream ended (a log line may come before its counts).
        assert!(streams_on(sock, "a", 0) && streams_on(sock, "b", 0));
        a.release();
        let stat = cli(sock, "show stat");
        let columns = [
            "scur", "stot", "req_tot", "eresp", "cli_abrt", "srv_abrt", "hrsp_2xx", "hrsp_5xx",
            "bin", "bout",
        ];
        let stats = vec![
            counters("be", "a", &columns, &stat),
            counters("be", "b", &columns, &stat),
            counters("be", "BACKEND", &columns, &stat),
            counters(
                "fe",
                "FRONTEND",
                &["req_tot", "hrsp_2xx", "hrsp_5xx", "bout"],
                &stat,
            ),
        ];
        Observed {
            clients,
            logs,
            stats,
        }
    });
    let page = "HTTP/1.1 502 Bad Gateway | <html><body><h1>502 Bad Gateway</h1> The server returned an invalid or incomplete response. </body></html> | open";
    let expected = Observed {
        clients: vec![
            "idle first: HTTP/1.1 200 OK | a | open".into(),
            "body start: HTTP/1.1 200 OK | 0123456789 | open".into(),
            format!("waiting: {page}"),
            "cut:  |  | closed".into(),
            "second:  |  | closed".into(),
            "sending:  |  | closed".into(),
            "idle:  |  | open".into(),
            "idle next: HTTP/1.1 200 OK | b | open".into(),
        ],
        logs: vec![
            "be/a GET /fast HTTP/1.1 200 51 ---- Tr=set".into(),
            "be/a GET /fast HTTP/1.1 200 51 ---- Tr=set".into(),
            "be/a GET /held HTTP/1.1 502 209 DH-- Tr=-1".into(),
            "be/a GET /held-body HTTP/1.1 200 61 DD-- Tr=set".into(),
            "be/a POST /post HTTP/1.1 -1 0 D--- Tr=-1".into(),
            "be/b GET /fast HTTP/1.1 200 51 ---- Tr=set".into(),
        ],
        stats: vec![
            "be/a scur=0 stot=6 req_tot=3 eresp=1 cli_abrt=0 srv_abrt=1 hrsp_2xx=3 hrsp_5xx=0 bin=291 bout=372".into(),
            "be/b scur=0 stot=1 req_tot=1 eresp=0 cli_abrt=0 srv_abrt=0 hrsp_2xx=1 hrsp_5xx=0 bin=44 bout=51".into(),
            "be/BACKEND scur=0 stot=7 req_tot=6 eresp=1 cli_abrt=0 srv_abrt=1 hrsp_2xx=4 hrsp_5xx=1 bin=335 bout=423".into(),
            "fe/FRONTEND req_tot=7 hrsp_2xx=4 hrsp_5xx=1 bout=423".into(),
        ],
    };
    agree(ours, theirs, expected);
}

#[test]
fn failed_checks_kill_the_servers_http_streams() {
    let lab = lab("http-lifecycle-down", ["a", "b"]);
    let sock = &lab.sock;
    let check_a = free_port();
    let checks = format!("check port {check_a} inter 100ms fall 1 rise 1");
    let be = servers(&lab, &format!("{checks} on-marked-down shutdown-sessions"));
    let (ours, theirs) = lab.run("http-lifecycle-down", &be, |front| {
        let checks = CheckPort::open(check_a);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "UP"));
        // Held by the server until the kill.
        let mut cut = request(front, "/held-body");
        let started = summary(answered(&mut cut, "0123456789", Duration::from_millis(500)));
        drop(checks);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        let seen = after_kill(started, &mut cut, &lab, &["scur", "srv_abrt", "eresp"]);
        lab.servers[0].release();
        seen
    });
    let expected = Observed {
        clients: vec![
            "HTTP/1.1 200 OK | 0123456789 | open".into(),
            " |  | closed".into(),
        ],
        logs: vec!["be/a GET /held-body HTTP/1.1 200 61 DD-- Tr=set".into()],
        stats: vec!["be/a scur=0 srv_abrt=1 eresp=0".into()],
    };
    agree(ours, theirs, expected);
}

#[test]
fn an_active_server_coming_up_kills_the_backup_http_streams() {
    let lab = lab("http-lifecycle-up", ["a", "bk"]);
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let bk = &lab.servers[1];
    let check_a = free_port();
    let checks = format!("check port {check_a} inter 100ms fall 1 rise 1");
    let be = servers(
        &lab,
        &format!("{checks} on-marked-up shutdown-backup-sessions"),
    );
    let (ours, theirs) = lab.run("http-lifecycle-up", &be, |front| {
        // a's checks fail from the start: the requests go to the backup.
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "DOWN"));
        let on_bk = bk.requests.load(SeqCst);
        let quick = Duration::from_millis(500);
        // Both held by the backup until the kill.
        let mut cut = request(front, "/held-body");
        let mut waiting = request(front, "/held");
        let started = summary(answered(&mut cut, "0123456789", quick));
        assert!(
            wait_until(ANSWER, || bk.requests.load(SeqCst) >= on_bk + 2),
            "the requests did not reach be/bk"
        );
        let _checks = CheckPort::open(check_a);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "a") == "UP"));
        let mut clients = vec![
            started,
            summary(received(&mut cut, ANSWER)),
            summary(answered(&mut waiting, "</body></html>\n", quick)),
        ];
        // The waiting client's connection stays: its next request goes to a.
        send(&mut waiting, "/fast");
        clients.push(summary(answered(&mut waiting, "\r\n\r\na\n", quick)));
        let logs = request_logs(syslog, 3);
        bk.release();
        Observed {
            clients,
            logs,
            stats: Vec::new(),
        }
    });
    let expected = Observed {
        clients: vec![
            "HTTP/1.1 200 OK | 0123456789 | open".into(),
            " |  | closed".into(),
            "HTTP/1.1 502 Bad Gateway | <html><body><h1>502 Bad Gateway</h1> The server returned an invalid or incomplete response. </body></html> | open".into(),
            "HTTP/1.1 200 OK | a | open".into(),
        ],
        logs: vec![
            "be/a GET /fast HTTP/1.1 200 51 ---- Tr=set".into(),
            "be/bk GET /held HTTP/1.1 502 209 UH-- Tr=-1".into(),
            "be/bk GET /held-body HTTP/1.1 200 61 UD-- Tr=set".into(),
        ],
        stats: Vec::new(),
    };
    agree(ours, theirs, expected);
}

#[test]
fn a_websocket_tunnel_is_killed_too() {
    let lab = lab("http-lifecycle-tunnel", ["a", "b"]);
    let sock = &lab.sock;
    let be = servers(&lab, "on-marked-down shutdown-sessions");
    let (ours, theirs) = lab.run("http-lifecycle-tunnel", &be, |front| {
        let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
        let upgrade = "GET /ws HTTP/1.1\r\nhost: lab\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                       sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
        conn.write_all(upgrade.as_bytes()).expect("sending a request");
        // The switch and the server's first bytes, however they came in reads.
        let answer = Duration::from_secs(10);
        let switched = summary(received_until(&mut conn, "\r\n\r\nhi", answer));
        // Through the tunnel both ways: counted in `bin` and `bout`.
        conn.write_all(b"through the tunnel\n").expect("sending in the tunnel");
        let (echoed, _) = received_until(&mut conn, "through the tunnel\n", answer);
        cli(sock, "disable server be/a");
        let columns = ["scur", "srv_abrt", "bin", "bout"];
        let mut seen = after_kill(switched, &mut conn, &lab, &columns);
        seen.clients.insert(1, echoed);
        let stat = cli(sock, "show stat");
        seen.stats.push(counters("fe", "FRONTEND", &columns[2..], &stat));
        seen
    });
    let expected = Observed {
        clients: vec![
            "HTTP/1.1 101 Switching Protocols | hi | open".into(),
            "through the tunnel\n".into(),
            " |  | closed".into(),
        ],
        logs: vec!["be/a GET /ws HTTP/1.1 101 153 D--- Tr=set".into()],
        stats: vec![
            "be/a scur=0 srv_abrt=0 bin=158 bout=153".into(),
            "fe/FRONTEND bin=158 bout=153".into(),
        ],
    };
    agree(ours, theirs, expected);
}

#[test]
fn a_request_waiting_for_100_continue_is_killed() {
    let lab = lab("http-lifecycle-continue", ["a", "b"]);
    let be = servers(&lab, "on-marked-down shutdown-sessions");
    // The server waits for the body, the proxy for the server's `100 Continue`.
    let post = |front| {
        let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
        let post = "POST /continue HTTP/1.1\r\nhost: lab\r\nexpect: 100-continue\r\ncontent-length: 10\r\n\r\n";
        conn.write_all(post.as_bytes()).expect("sending a request");
        conn
    };
    let columns = ["scur", "eresp", "hrsp_5xx", "bout"];
    let (ours, theirs) = killed_in_maintenance(&lab, &be, post, "", &columns);
    let expected = Observed {
        clients: vec![" |  | open".into(), " |  | closed".into()],
        logs: vec!["be/a POST /continue HTTP/1.1 -1 0 D--- Tr=-1".into()],
        stats: vec!["be/a scur=0 eresp=0 hrsp_5xx=0 bout=0".into()],
    };
    agree(ours, theirs, expected);
}

#[test]
fn a_close_delimited_response_cut_by_a_kill_is_the_kills() {
    let lab = lab("http-lifecycle-close", ["a", "b"]);
    let be = servers(&lab, "on-marked-down shutdown-sessions");
    let get = |front| request(front, "/close-body");
    let columns = ["scur", "srv_abrt", "cli_abrt"];
    let (ours, theirs) = killed_in_maintenance(&lab, &be, get, "0123456789", &columns);
    let expected = Observed {
        clients: vec![
            "HTTP/1.1 200 OK | 0123456789 | open".into(),
            " |  | closed".into(),
        ],
        logs: vec!["be/a GET /close-body HTTP/1.1 200 44 D--- Tr=set".into()],
        stats: vec!["be/a scur=0 srv_abrt=0 cli_abrt=0".into()],
    };
    agree(ours, theirs, expected);
}

/// Whether what `conn`, a client reading nothing, was sent stopped coming: its receive
/// queue holds bytes, and no more through ten polls in a row (the sockets on the way are
/// full, the proxy waits for the client), within [`ANSWER`].
fn filled(conn: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let queued = || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int to `n`; the socket is open while `conn` lives.
        let done = unsafe { libc::ioctl(conn.as_raw_fd(), libc::FIONREAD, &mut n) };
        if done == 0 { n } else { -1 }
    };
    let (mut last, mut still) = (-1, 0);
    wait_until(ANSWER, || {
        let now = queued();
        still = if now > 0 && now == last { still + 1 } else { 0 };
        last = now;
        still >= 10
    })
}

#[test]
fn a_killed_response_to_a_client_not_reading_is_no_client_abort() {
    let lab = lab("http-lifecycle-unread", ["a", "b"]).client_timeout("2s");
    let (sock, syslog) = (&lab.sock, &lab.syslog);
    let be = servers(&lab, "on-marked-down shutdown-sessions");
    let (ours, theirs) = lab.run("http-lifecycle-unread", &be, |front| {
        // The client reads nothing: the response fills the sockets on the way.
        let conn = request(front, "/big");
        on_server_a(sock);
        assert!(filled(&conn), "the response did not fill the sockets");
        cli(sock, "disable server be/a");
        // Its log line comes once the client's timeout ended the stream; the bytes it
        // counts depend on the sockets' buffers, left out.
        let logs: Vec<String> = (request_logs(syslog, 1).iter())
            .map(|l| {
                l.split(' ')
                    .filter(|w| w.len() == 4 || w.starts_with("be/"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        drop(conn);
        // The counters once the stream ended (its log line may come before its counts).
        streams_on(sock, "BACKEND", 0);
        let stat = cli(sock, "show stat");
        let columns = ["scur", "cli_abrt", "srv_abrt"];
        Observed {
            clients: Vec::new(),
            logs,
            stats: vec![
                counters("be", "a", &columns, &stat),
                counters("be", "BACKEND", &columns, &stat),
            ],
        }
    });
    let expected = Observed {
        clients: Vec::new(),
        logs: vec!["be/a /big D---".into()],
        stats: vec![
            "be/a scur=0 cli_abrt=0 srv_abrt=0".into(),
            "be/BACKEND scur=0 cli_abrt=0 srv_abrt=0".into(),
        ],
    };
    agree(ours, theirs, expected);
}

#[test]
fn a_servers_interim_responses_count_as_its_requests() {
    let lab = lab("http-lifecycle-interim", ["a", "b"]);
    let sock = &lab.sock;
    let be = servers(&lab, "");
    let (ours, theirs) = lab.run("http-lifecycle-interim", &be, |front| {
        let mut conn = request(front, "/interim");
        // The interim response and the final one, however late and split they come.
        let got = received_until(&mut conn, "\r\n\r\na\n", ANSWER).0;
        let final_status = got.lines().rfind(|l| l.starts_with("HTTP/"));
        let logs = request_logs(&lab.syslog, 1);
        // The counters once the stream ended (its log line may come before its counts).
        assert!(streams_on(sock, "a", 0), "the stream did not end");
        let stat = cli(sock, "show stat");
        Observed {
            clients: vec![final_status.unwrap_or_default().into()],
            logs,
            stats: vec![
                counters("be", "a", &["req_tot", "hrsp_2xx"], &stat),
                counters("be", "BACKEND", &["req_tot"], &stat),
            ],
        }
    });
    let expected = Observed {
        clients: vec!["HTTP/1.1 200 OK".into()],
        logs: vec!["be/a GET /interim HTTP/1.1 200 91 ---- Tr=set".into()],
        stats: vec![
            "be/a req_tot=2 hrsp_2xx=1".into(),
            "be/BACKEND req_tot=1".into(),
        ],
    };
    agree(ours, theirs, expected);
}

/// The open files of the proxy behind the stats socket `sock` (its `Pid` in `show info`).
fn open_files(sock: &std::path::Path) -> usize {
    let info = cli(sock, "show info");
    let pid = (info.lines())
        .find_map(|l| l.strip_prefix("Pid: "))
        .expect("show info gives the Pid");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", pid.trim())).expect("the proxy's fds");
    fds.count()
}

#[test]
fn killable_streams_hold_no_file_of_their_own() {
    let lab = lab("http-lifecycle-fds", ["a", "b"]);
    let sock = &lab.sock;
    let be = servers(&lab, "on-marked-down shutdown-sessions");
    let streams = 20;
    let (ours, theirs) = lab.run("http-lifecycle-fds", &be, |front| {
        let idle = open_files(sock);
        let waiting: Vec<TcpStream> = (0..streams).map(|_| request(front, "/held")).collect();
        // Until every stream has reached its server (a loaded machine may take a while): a
        // proxy holding fewer files is measured when the wait gives up, and fails.
        wait_until(Duration::from_secs(5), || {
            open_files(sock) >= idle + 2 * streams
        });
        let busy = open_files(sock);
        drop(waiting);
        lab.servers[0].release();
        // Each request waiting for its response: its client's and its server's sockets
        // (rounded: a proxy may open or close a file of its own meanwhile).
        let more = busy as f64 - idle as f64;
        format!("{} files per stream", (more / streams as f64).round())
    });
    agree(ours, theirs, "2 files per stream".to_string());
}

#[test]
fn the_frontends_own_answers_count_in_its_bytes() {
    let lab =
        lab("http-lifecycle-deny", ["a", "b"]).frontend("  http-request deny if { path /deny }\n");
    let sock = &lab.sock;
    let be = servers(&lab, "");
    let (ours, theirs) = lab.run("http-lifecycle-deny", &be, |front| {
        let mut conn = request(front, "/deny");
        let quick = Duration::from_millis(500);
        let denied = summary(answered(&mut conn, "</body></html>\n", quick));
        let logs = request_logs(&lab.syslog, 1);
        let stat = cli(sock, "show stat");
        let columns = ["req_tot", "hrsp_4xx", "bin", "bout"];
        Observed {
            clients: vec![denied],
            logs,
            stats: vec![counters("fe", "FRONTEND", &columns, &stat)],
        }
    });
    let expected = Observed {
        clients: vec!["HTTP/1.1 403 Forbidden | <html><body><h1>403 Forbidden</h1> Request forbidden by administrative rules. </body></html> | open".into()],
        logs: vec!["fe/<NOSRV> GET /deny HTTP/1.1 403 192 PR-- Tr=-1".into()],
        stats: vec!["fe/FRONTEND req_tot=1 hrsp_4xx=1 bin=44 bout=192".into()],
    };
    agree(ours, theirs, expected);
}

/// A listener whose accept queue is full, and the connections that filled it: a connection
/// to it waits for `timeout connect`.
fn unanswering() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    listener.bind(&addr.into()).expect("binding it");
    listener.listen(0).expect("listening");
    let addr = listener
        .local_addr()
        .unwrap()
        .as_socket()
        .expect("an inet address");
    let mut filled = Vec::new();
    while let Ok(conn) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        filled.push(conn);
        assert!(filled.len() < 1000, "the accept queue never filled");
    }
    (listener, filled, addr)
}

#[test]
fn a_stream_connecting_to_its_server_is_killed() {
    let lab = lab("http-lifecycle-connecting", ["a", "b"]);
    let (_listener, _filled, silent) = unanswering();
    let backup = lab.servers[1].addr;
    let be = format!(
        "  timeout connect 3s\n  server a {silent} on-marked-down shutdown-sessions\n  server b {backup} backup\n"
    );
    let get = |front| request(front, "/fast");
    let columns = ["scur", "econ", "wretr", "hrsp_5xx", "bout"];
    let (ours, theirs) = killed_in_maintenance(&lab, &be, get, "", &columns);
    let expected = Observed {
        clients: vec![" |  | open".into(), " |  | closed".into()],
        logs: vec!["be/a GET /fast HTTP/1.1 -1 0 D--- Tr=-1".into()],
        stats: vec!["be/a scur=0 econ=0 wretr=0 hrsp_5xx=0 bout=0".into()],
    };
    agree(ours, theirs, expected);
}
