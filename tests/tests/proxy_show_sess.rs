//! The runtime API's `show sess` and `shutdown session`, side by side with HAProxy 2.6 (same
//! configuration, same streams, same observations): `show sess` (level operator) lists a
//! TCP session forwarding and an HTTP request waiting for its response, each with HAProxy's
//! `proto`, `src`, `fe`, `be`, `srv` and `age` (hapx prints no internal field, HAProxy's are
//! left out of the comparison, and so is the CLI's own stream's line: see
//! proxy_show_sess_phases.rs), not a
//! kept-alive HTTP connection between requests; `show sess ID` dumps that stream (its first
//! line, its frontend, backend and server lines); `shutdown session ID` (level admin) kills
//! that stream and no other, logged with HAProxy's `K` (`K-` in TCP mode, `KH--` and a 502
//! for a request waiting for its response); HAProxy's answers to a missing, a wrong or an
//! unknown number, and to lower levels. A request whose body is still coming ends at once,
//! its client connection closed (`K---`). A stream's `age` is HAProxy's difference of whole
//! wall-clock seconds (a stream accepted at x.8 s and listed at x+1.1 s is `1s` old); its
//! client's address is its socket's peer, not a PROXY header's source; a wildcard listener's
//! stream shows the address its client connected to, and its listener's number. One CLI line
//! killing more than 32 HTTP streams at once logs each `KH--`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hapx_tests::proxy::{NamedServer, TestDir, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_lifecycle::{
    SlowServer, agree, fate, received, received_until, request, request_logs, session,
};
use hapx_tests::proxy_rules::{Syslog, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A test's stats sockets (one per level) and its syslog sink.
struct Sockets {
    _dir: TestDir,
    admin: PathBuf,
    operator: PathBuf,
    user: PathBuf,
    syslog: Syslog,
}

impl Sockets {
    fn new(test: &str) -> Sockets {
        let dir = temp_dir(test);
        Sockets {
            admin: dir.join("admin.sock"),
            operator: dir.join("operator.sock"),
            user: dir.join("user.sock"),
            _dir: dir,
            syslog: Syslog::bind(),
        }
    }

    /// A frontend `fe` on `port` to backend `be` (its `servers` lines), in `mode`, logging.
    fn config(&self, mode: &str, port: u16, servers: &str) -> String {
        format!(
            "global\n  stats socket {} level admin\n  stats socket {} level operator\n  \
             stats socket {} level user\n\
             defaults\n  mode {mode}\n  log {} local0\n  option {mode}log\n  timeout client 10s\n  \
             timeout server 10s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n{servers}",
            self.admin.display(),
            self.operator.display(),
            self.user.display(),
            self.syslog.addr,
        )
    }
}

/// The value of `key=` among a line's words.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// The wall clock, since the epoch.
fn wall() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Sleeps until the wall clock is next `millis` past a whole second.
fn at_millis_past_a_second(millis: u32) {
    let now = wall().subsec_millis();
    let wait = (1000 + millis - now) % 1000;
    std::thread::sleep(Duration::from_millis(u64::from(wait.max(1))));
}

/// When the streams were accepted: between these wall-clock instants.
type Accepted = (Duration, Duration);

/// The ages HAProxy's rule allows a stream accepted within `accepted` and listed within
/// `listed`: now's whole seconds less the accept's, never the elapsed time's floor (listed at
/// x+1.1 s, a stream accepted at x.8 s is `1s` old, not `0s`).
fn ages(accepted: Accepted, listed: Accepted) -> RangeInclusive<u64> {
    let secs = |d: Duration| d.as_secs();
    secs(listed.0).saturating_sub(secs(accepted.1))..=secs(listed.1) - secs(accepted.0)
}

/// The name a client's address has in a proxy's answer: `c<i>` for `clients[i]` as it is,
/// `c<i>-mapped` for its IPv4 address mapped into IPv6 (a wildcard IPv6 listener's).
fn client_named(text: &str, clients: &[SocketAddr]) -> Option<String> {
    clients.iter().enumerate().find_map(|(i, c)| {
        let mapped = format!("::ffff:{}:{}", c.ip(), c.port());
        // As HAProxy prints it: no brackets around an IPv6 address.
        (format!("{}:{}", c.ip(), c.port()) == text)
            .then(|| format!("c{i}"))
            .or_else(|| (mapped == text).then(|| format!("c{i}-mapped")))
    })
}

/// `show sess` on `sock`, its lines as [`listed`] makes them, the ages checked against the
/// streams' accept within `accepted`.
///
/// HAProxy's age may be a second younger than the rule says: HAProxy 2.6 counts it from its
/// internal clock (`now`) to the accept's wall-clock date, and a thread woken more than
/// 100 ms after its poll's timeout (a loaded machine) takes that for a jump of the system
/// clock: its `now` then advances by the timeout alone and stays behind the wall clock by
/// the rest (clock_update_date), a lag no client can see. HAProxy's lower bound is one less
/// (a test lasts seconds: its lag stays under one); hapx counts from the wall clock, its
/// rule exact.
fn listed_on(sock: &Path, clients: &[SocketAddr], accepted: Accepted) -> Vec<String> {
    let lagging = cli(sock, "show info").starts_with("Name: HAProxy\n");
    let before = wall();
    let answer = cli(sock, "show sess");
    let exact = ages(accepted, (before, wall()));
    let allowed = if lagging {
        exact.start().saturating_sub(1)..=*exact.end()
    } else {
        exact
    };
    listed(&answer, clients, allowed)
}

/// `show sess`'s lines as `proto src fe be srv age`, the clients' addresses named by
/// `clients` (`c0`, `c1`...: [`client_named`]), an age as `ok` when it is one of `ages`
/// (`Ns`), sorted; without the CLI's own stream (`fe=GLOBAL`).
fn listed(answer: &str, clients: &[SocketAddr], ages: RangeInclusive<u64>) -> Vec<String> {
    let mut lines: Vec<String> = answer
        .lines()
        .filter(|l| !l.is_empty() && field(l, "fe") != Some("GLOBAL"))
        .map(|line| {
            let src = field(line, "src").unwrap_or("?");
            let client = client_named(src, clients);
            let age = field(line, "age").unwrap_or("?");
            let seconds = age.strip_suffix('s').and_then(|n| n.parse::<u64>().ok());
            format!(
                "{} src={} fe={} be={} srv={} age={}",
                field(line, "proto").unwrap_or("?"),
                client.unwrap_or_else(|| src.to_string()),
                field(line, "fe").unwrap_or("?"),
                field(line, "be").unwrap_or("?"),
                field(line, "srv").unwrap_or("?"),
                if seconds.is_some_and(|s| ages.contains(&s)) {
                    "ok"
                } else {
                    age
                },
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The number `show sess` gives the stream of `client`.
fn stream_of(sock: &Path, client: SocketAddr) -> String {
    let answer = cli(sock, "show sess");
    let line = answer
        .lines()
        .find(|l| field(l, "src") == Some(client.to_string().as_str()));
    let line = line.unwrap_or_else(|| panic!("no stream of {client} in:\n{answer}"));
    line.split(':').next().unwrap_or_default().to_string()
}

/// `show sess ID`'s first line and its frontend, backend and server lines, in the fields
/// both proxies print: the accept date's shape, `proto` and `source`; the proxies' names,
/// ids and modes; the frontend's address, the backend connection's (its port as `P`) and
/// the server's. The client's address is named as in [`listed`]; the frontend's line whole.
fn dumped(answer: &str, clients: &[SocketAddr]) -> Vec<String> {
    let mut out = Vec::new();
    for line in answer.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let addr = || field(line.trim_start(), "addr").unwrap_or("-").to_string();
        if line.starts_with("0x") {
            let date = words.get(1).copied().unwrap_or_default();
            let shaped = date.len() == 29 && date.starts_with('[') && date.ends_with(']');
            let source = field(line, "source").unwrap_or("?");
            let client = client_named(source, clients);
            out.push(format!(
                "date={} proto={} source={}",
                if shaped { "ok" } else { date },
                field(line, "proto").unwrap_or("?"),
                client.unwrap_or_else(|| source.to_string()),
            ));
        } else if let Some(rest) = line.strip_prefix("  frontend=") {
            out.push(format!("frontend={rest}"));
        } else if let Some(rest) = line.strip_prefix("  backend=") {
            let head = rest.split(')').next().unwrap_or_default();
            let local = addr();
            let ip = local.rsplit_once(':').map_or("-", |(ip, _)| ip);
            out.push(format!("backend={head}) addr={ip}:P"));
        } else if let Some(rest) = line.strip_prefix("  server=") {
            let head = rest.split(')').next().unwrap_or_default();
            out.push(format!("server={head}) addr={}", addr()));
        }
    }
    out
}

/// The answers to the commands' wrong uses, at each level.
fn refusals(sockets: &Sockets) -> Vec<String> {
    let (admin, operator, user) = (&sockets.admin, &sockets.operator, &sockets.user);
    vec![
        cli(user, "show sess"),
        cli(operator, "shutdown session 0x1"),
        cli(admin, "show sess 0x1"),
        cli(admin, "shutdown session"),
        cli(admin, "shutdown session zz"),
        cli(admin, "shutdown session 0"),
        cli(admin, "shutdown session 0x1"),
    ]
}

fn expected_refusals() -> Vec<String> {
    [
        "Permission denied\n\n",
        "Permission denied\n\n",
        "Session not found.\n\n",
        "Session pointer expected (use 'show sess').\n\n",
        "Session pointer expected (use 'show sess').\n\n",
        "Session pointer expected (use 'show sess').\n\n",
        "No such session (use 'show sess').\n\n",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// `show sess` at level admin, then operator.
    listed: Vec<Vec<String>>,
    /// `show sess ID` of the first client's stream.
    dumped: Vec<String>,
    refusals: Vec<String>,
    /// `shutdown session ID`'s answer.
    killed: String,
    /// Each client's fate after the kill.
    fates: Vec<String>,
    /// The killed stream's log line (its server and flags).
    logs: Vec<String>,
    /// `show sess` after the kill.
    after: Vec<String>,
}

/// The log line of the session from `client` as `be/SERVER FLAGS` (`tcplog`).
fn tcp_log(syslog: &Syslog, client: SocketAddr) -> Vec<String> {
    while let Some(line) = syslog.lines(1).pop() {
        let words: Vec<&str> = line.split(' ').collect();
        if words.first() == Some(&client.to_string().as_str()) {
            let word = |i: usize| words.get(i).copied().unwrap_or_default().to_string();
            return vec![format!("{} {} {}", word(2), word(3), word(6))];
        }
    }
    Vec::new()
}

#[test]
fn show_sess_lists_tcp_sessions_and_shutdown_session_kills_one() {
    let sockets = Sockets::new("show-sess-tcp");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let port = free_port();
    let conf = sockets.config("tcp", port, &format!("  server a {}\n", server.addr));
    let (ours, theirs) = side_by_side("show-sess-tcp", &conf, (LO, port).into(), |front| {
        // Accepted late in a second, listed early in the next: 1 s old by HAProxy's count.
        at_millis_past_a_second(800);
        let start = wall();
        let mut conns: Vec<TcpStream> = (0..2).map(|_| session(front).1).collect();
        let accepted = (start, wall());
        at_millis_past_a_second(100);
        let clients: Vec<SocketAddr> = conns.iter().map(|c| c.local_addr().unwrap()).collect();
        let listed_by = |sock: &Path| listed_on(sock, &clients, accepted);
        let before = vec![listed_by(&sockets.admin), listed_by(&sockets.operator)];
        let first = stream_of(&sockets.admin, clients[0]);
        let answer = cli(&sockets.admin, &format!("show sess {first}"));
        let killed = cli(&sockets.admin, &format!("shutdown session {first}"));
        let fates = conns
            .iter_mut()
            .map(|c| fate(c, Duration::from_millis(1500)).to_string())
            .collect();
        Observed {
            listed: before,
            dumped: dumped(&answer, &clients),
            refusals: refusals(&sockets),
            killed,
            fates,
            logs: tcp_log(&sockets.syslog, clients[0]),
            after: listed_by(&sockets.admin),
        }
    });
    let both = vec![
        "tcpv4 src=c0 fe=fe be=be srv=a age=ok".to_string(),
        "tcpv4 src=c1 fe=fe be=be srv=a age=ok".to_string(),
    ];
    let expected = Observed {
        listed: vec![both.clone(), both],
        dumped: vec![
            "date=ok proto=tcpv4 source=c0".into(),
            format!("frontend=fe (id=2 mode=tcp), listener=? (id=1) addr=127.0.0.1:{port}"),
            "backend=be (id=3 mode=tcp) addr=127.0.0.1:P".into(),
            format!("server=a (id=1) addr={}", server.addr),
        ],
        refusals: expected_refusals(),
        killed: "\n".into(),
        fates: vec!["closed".into(), "open".into()],
        logs: vec!["fe be/a K-".into()],
        after: vec!["tcpv4 src=c1 fe=fe be=be srv=a age=ok".into()],
    };
    agree(ours, theirs, expected);
}

#[test]
fn show_sess_lists_http_requests_on_a_server_and_shutdown_session_kills_one() {
    let sockets = Sockets::new("show-sess-http");
    let server = SlowServer::start("a");
    let port = free_port();
    let conf = sockets.config("http", port, &format!("  server a {}\n", server.addr));
    let (ours, theirs) = side_by_side("show-sess-http", &conf, (LO, port).into(), |front| {
        let (answer, quiet) = (Duration::from_secs(10), Duration::from_millis(500));
        // A kept-alive connection between requests (no stream), and a request waiting for
        // its response on the server, held there until the kill.
        let mut idle = request(front, "/");
        let first = received(&mut idle, quiet);
        let before = server.requests.load(SeqCst);
        at_millis_past_a_second(800);
        let start = wall();
        let mut waiting = request(front, "/held");
        wait_until(answer, || server.requests.load(SeqCst) > before);
        let accepted = (start, wall());
        at_millis_past_a_second(100);
        let clients = [waiting.local_addr().unwrap(), idle.local_addr().unwrap()];
        let listed_by = |sock: &Path| listed_on(sock, &clients, accepted);
        let before = vec![listed_by(&sockets.admin), listed_by(&sockets.operator)];
        let id = stream_of(&sockets.admin, clients[0]);
        let dump = cli(&sockets.admin, &format!("show sess {id}"));
        let killed = cli(&sockets.admin, &format!("shutdown session {id}"));
        let (head, fate) = received(&mut waiting, Duration::from_millis(1500));
        let status = head.lines().next().unwrap_or_default().to_string();
        let idle_after = received(&mut idle, quiet).1;
        server.release();
        Observed {
            listed: before,
            dumped: dumped(&dump, &clients),
            refusals: refusals(&sockets),
            killed,
            fates: vec![
                format!("{} {}", first.0.lines().next().unwrap_or_default(), first.1),
                format!("{status} {fate}"),
                idle_after.to_string(),
            ],
            logs: request_logs(&sockets.syslog, 2),
            after: listed_by(&sockets.admin),
        }
    });
    let one = vec!["tcpv4 src=c0 fe=fe be=be srv=a age=ok".to_string()];
    let expected = Observed {
        listed: vec![one.clone(), one],
        dumped: vec![
            "date=ok proto=tcpv4 source=c0".into(),
            format!("frontend=fe (id=2 mode=http), listener=? (id=1) addr=127.0.0.1:{port}"),
            "backend=be (id=3 mode=http) addr=127.0.0.1:P".into(),
            format!("server=a (id=1) addr={}", server.addr),
        ],
        refusals: expected_refusals(),
        killed: "\n".into(),
        fates: vec![
            "HTTP/1.1 200 OK open".into(),
            "HTTP/1.1 502 Bad Gateway open".into(),
            "open".into(),
        ],
        logs: vec![
            "be/a GET / HTTP/1.1 200 51 ---- Tr=set".into(),
            "be/a GET /held HTTP/1.1 502 209 KH-- Tr=-1".into(),
        ],
        after: Vec::new(),
    };
    agree(ours, theirs, expected);
}

#[test]
fn shutdown_session_ends_a_request_whose_body_is_still_coming() {
    let sockets = Sockets::new("show-sess-body");
    let server = SlowServer::start("a");
    let port = free_port();
    let conf = sockets.config("http", port, &format!("  server a {}\n", server.addr));
    let (ours, theirs) = side_by_side("show-sess-body", &conf, (LO, port).into(), |front| {
        // A POST whose body stops half-way: its stream waits for the client, on its server.
        let mut posting = TcpStream::connect(front).expect("connecting to the frontend");
        let head = "POST /upload HTTP/1.1\r\nhost: lab\r\ncontent-length: 100\r\n\r\n0123456789";
        posting
            .write_all(head.as_bytes())
            .expect("sending a request");
        let client = posting.local_addr().unwrap();
        wait_until(Duration::from_secs(10), || {
            cli(&sockets.admin, "show sess").contains(&format!("src={client} "))
        });
        let id = stream_of(&sockets.admin, client);
        let killed = cli(&sockets.admin, &format!("shutdown session {id}"));
        let (got, fate) = received(&mut posting, Duration::from_secs(3));
        let status = got.lines().next().unwrap_or_default().to_string();
        let log = request_logs(&sockets.syslog, 1);
        (killed, format!("{status} | {fate}"), log)
    });
    let expected = (
        "\n".to_string(),
        " | closed".to_string(),
        vec!["be/a POST /upload HTTP/1.1 -1 0 K--- Tr=-1".to_string()],
    );
    agree(ours, theirs, expected);
}

#[test]
fn one_cli_line_killing_many_http_streams_logs_each_killed() {
    const STREAMS: usize = 40;
    let sockets = Sockets::new("show-sess-many");
    let server = SlowServer::start("a");
    let port = free_port();
    // One thread: every stream in one shard of hapx's registry, killed before any runs.
    let conf = sockets
        .config("http", port, &format!("  server a {}\n", server.addr))
        .replacen("global\n", "global\n  nbthread 1\n", 1);
    let (ours, theirs) = side_by_side("show-sess-many", &conf, (LO, port).into(), |front| {
        let before = server.requests.load(SeqCst);
        let mut waiting: Vec<TcpStream> = (0..STREAMS).map(|_| request(front, "/held")).collect();
        wait_until(Duration::from_secs(10), || {
            server.requests.load(SeqCst) >= before + STREAMS
        });
        let clients: Vec<String> = waiting
            .iter()
            .map(|c| c.local_addr().unwrap().to_string())
            .collect();
        let answer = cli(&sockets.admin, "show sess");
        let ids: Vec<&str> = answer
            .lines()
            .filter(|l| field(l, "src").is_some_and(|s| clients.iter().any(|c| c == s)))
            .filter_map(|l| l.split(':').next())
            .collect();
        let line: Vec<String> = ids
            .iter()
            .map(|id| format!("shutdown session {id}"))
            .collect();
        let killed = cli(&sockets.admin, &line.join(";"));
        let statuses: Vec<String> = waiting
            .iter_mut()
            .map(|c| {
                // Its whole answer (the proxy's error page), or its close.
                let head = received_until(c, "</html>\n", Duration::from_secs(10)).0;
                head.lines().next().unwrap_or_default().to_string()
            })
            .collect();
        server.release();
        let mut flags: Vec<String> = request_logs(&sockets.syslog, STREAMS)
            .iter()
            .map(|l| l.split(' ').rev().nth(1).unwrap_or_default().to_string())
            .collect();
        flags.dedup();
        let bad_gateways = statuses
            .iter()
            .filter(|s| *s == "HTTP/1.1 502 Bad Gateway")
            .count();
        (ids.len(), killed.trim().is_empty(), bad_gateways, flags)
    });
    agree(
        ours,
        theirs,
        (STREAMS, true, STREAMS, vec!["KH--".to_string()]),
    );
}

#[test]
fn show_sess_shows_the_accepted_addresses_and_the_listener() {
    let sockets = Sockets::new("show-sess-addr");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let (proxied, wildcard) = (free_port(), free_port());
    // A PROXY-header listener (id 1) and a wildcard IPv6 one (id 2, taking IPv4 too).
    let conf = sockets
        .config("tcp", proxied, &format!("  server a {}\n", server.addr))
        .replacen(
            &format!("bind 127.0.0.1:{proxied}\n"),
            &format!("bind 127.0.0.1:{proxied} accept-proxy\n  bind :::{wildcard}\n"),
            1,
        );
    let front = SocketAddr::from((LO, wildcard));
    let (ours, theirs) = side_by_side("show-sess-addr", &conf, front, |front| {
        let mut proxied_conn = TcpStream::connect((LO, proxied)).expect("connecting");
        proxied_conn
            .write_all(b"PROXY TCP4 10.1.2.3 10.9.9.9 5555 80\r\n")
            .expect("sending a PROXY header");
        let mut by_header = [0u8; 2];
        std::io::Read::read_exact(&mut proxied_conn, &mut by_header).expect("its greeting");
        let v4 = session(front).1;
        let v6 = session((std::net::Ipv6Addr::LOCALHOST, wildcard).into()).1;
        let conns = [&proxied_conn, &v4, &v6];
        let clients: Vec<SocketAddr> = conns.iter().map(|c| c.local_addr().unwrap()).collect();
        let listing = listed(&cli(&sockets.admin, "show sess"), &clients, 0..=u64::MAX);
        let dumps: Vec<Vec<String>> = clients
            .iter()
            .map(|&client| {
                let answer = cli(&sockets.admin, "show sess");
                let line = answer.lines().find(|l| {
                    field(l, "src")
                        .and_then(|s| client_named(s, &[client]))
                        .is_some()
                });
                let id = line.and_then(|l| l.split(':').next()).unwrap_or("0");
                let dump = dumped(&cli(&sockets.admin, &format!("show sess {id}")), &clients);
                dump.into_iter().take(2).collect()
            })
            .collect();
        (listing, dumps)
    });
    let listener = |id: u32, addr: String| {
        format!("frontend=fe (id=2 mode=tcp), listener=? (id={id}) addr={addr}")
    };
    let expected = (
        vec![
            "tcpv4 src=c0 fe=fe be=be srv=a age=ok".to_string(),
            "tcpv6 src=c1-mapped fe=fe be=be srv=a age=ok".to_string(),
            "tcpv6 src=c2 fe=fe be=be srv=a age=ok".to_string(),
        ],
        vec![
            vec![
                "date=ok proto=tcpv4 source=c0".to_string(),
                listener(1, format!("127.0.0.1:{proxied}")),
            ],
            vec![
                "date=ok proto=tcpv6 source=c1-mapped".to_string(),
                listener(2, format!("::ffff:127.0.0.1:{wildcard}")),
            ],
            vec![
                "date=ok proto=tcpv6 source=c2".to_string(),
                listener(2, format!("::1:{wildcard}")),
            ],
        ],
    );
    agree(ours, theirs, expected);
}
