//! `show sess` and `shutdown session` of TCP streams before they have a server, side by side
//! with HAProxy 2.6: a stream is listed from its accept on, in its `tcp-request content`
//! rules (`be=<NONE> srv=<none>`), queued in its backend (`be=bq srv=<none>`), on its server
//! (`srv=a`); the CLI's own stream is listed too (`proto=unix_stream src=unix:N fe=GLOBAL`,
//! `N` its `stats socket`'s number); `show sess ID` dumps each with HAProxy's frontend,
//! backend and server lines (`backend=<NONE> (id=-1 mode=-)`, `server=<none> (id=0)`).
//!
//! A stream killed (`shutdown session`) in its queue or connecting whose client sent nothing
//! ends at once, as HAProxy's (its request channel empty), logged `KQ` or `KC`; one whose
//! client sent data waits on, as HAProxy's: queued, it ends at `timeout queue`, logged `KQ`,
//! or once a slot frees, connected then ended at once, logged `K-`; connecting, at the end
//! of its attempts, logged `KC`. The CLI's own stream killed (from another connection, or
//! by a line of its own, which runs one more command first) closes its connection.
//! A stream killed in its rules: HAProxy 2.6.12 never ends it (it stays listed, its client
//! open, nothing logged, even after its client left: a leak); hapx ends it as its rules end,
//! logged `KR`, its client closed. A killed session whose client does not read keeps what it
//! holds for its client until its idle timeout, then closes with a FIN (no reset), logged
//! `K-`, as HAProxy's. HTTP requests held in their rules (a tarpit, a POST waiting for its
//! body to choose its server) are listed too, and killed end as HAProxy's (`KT--`, `KR--`,
//! `K---`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{NamedServer, TestDir, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_lifecycle::{agree, fate, session};
use hapx_tests::proxy_rules::{Syslog, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A test's stats sockets (admin first, then operator) and its syslog sink.
struct Lab {
    _dir: TestDir,
    admin: PathBuf,
    operator: PathBuf,
    syslog: Syslog,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let dir = temp_dir(test);
        Lab {
            admin: dir.join("admin.sock"),
            operator: dir.join("operator.sock"),
            _dir: dir,
            syslog: Syslog::bind(),
        }
    }

    /// Frontend `fe` on `port` (its content rules waiting for 4 bytes, for `inspect`) to
    /// backend `be`, frontend `fe2` on `port2` to backend `bq` (its server `maxconn 1`),
    /// both to `server`, with `timeouts` (`client`, `server`, `queue`).
    fn config(
        &self,
        ports: (u16, u16),
        server: SocketAddr,
        inspect: &str,
        timeouts: &str,
    ) -> String {
        format!(
            "global\n  stats socket {} level admin\n  stats socket {} level operator\n\
             defaults\n  mode tcp\n  log {} local0\n  option tcplog\n  timeout connect 1s\n\
             {timeouts}\
             frontend fe\n  bind 127.0.0.1:{}\n  tcp-request inspect-delay {inspect}\n  \
             tcp-request content accept if {{ req.len gt 3 }}\n  default_backend be\n\
             frontend fe2\n  bind 127.0.0.1:{}\n  default_backend bq\n\
             backend be\n  server a {server}\n\
             backend bq\n  server a {server} maxconn 1\n",
            self.admin.display(),
            self.operator.display(),
            self.syslog.addr,
            ports.0,
            ports.1,
        )
    }

    /// The log line of the session from `client` as `fe be/SERVER FLAGS` (`tcplog`).
    fn log_of(&self, client: SocketAddr) -> String {
        while let Some(line) = self.syslog.lines(1).pop() {
            let words: Vec<&str> = line.split(' ').collect();
            if words.first() == Some(&client.to_string().as_str()) {
                let word = |i: usize| words.get(i).copied().unwrap_or_default();
                return format!("{} {} {}", word(2), word(3), word(6));
            }
        }
        "no log line".into()
    }
}

/// The value of `key=` among a line's words.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// The name of `src` in a listing: `cN` for `clients[N]`, else as it is (`unix:1`).
fn named(src: &str, clients: &[SocketAddr]) -> String {
    let at = clients.iter().position(|c| c.to_string() == src);
    at.map_or_else(|| src.to_string(), |i| format!("c{i}"))
}

/// `show sess` on `sock` as `proto src fe be srv` lines, the clients named ([`named`]),
/// sorted (HAProxy's own fields left out).
fn listed(sock: &Path, clients: &[SocketAddr]) -> Vec<String> {
    let answer = cli(sock, "show sess");
    let mut lines: Vec<String> = (answer.lines().filter(|l| l.starts_with("0x")))
        .map(|line| {
            let word = |key| field(line, key).unwrap_or("?");
            let src = named(word("src"), clients);
            let (proto, fe, be, srv) = (word("proto"), word("fe"), word("be"), word("srv"));
            format!("{proto} src={src} fe={fe} be={be} srv={srv}")
        })
        .collect();
    lines.sort();
    lines
}

/// The number `show sess` gives the stream whose `src` is `src`.
fn stream_of(sock: &Path, src: &str) -> String {
    let answer = cli(sock, "show sess");
    let line = answer.lines().find(|l| field(l, "src") == Some(src));
    let line = line.unwrap_or_else(|| panic!("no stream from {src} in:\n{answer}"));
    line.split(':').next().unwrap_or_default().to_string()
}

/// The dump of the stream from `src` in `show sess all` (the CLI's own stream is that of
/// the connection asking): its source, frontend, backend and server lines (without the
/// server connection's address, whose port differs), the clients named ([`named`]).
fn dumped(sock: &Path, src: &str, clients: &[SocketAddr]) -> Vec<String> {
    let answer = cli(sock, "show sess all");
    let mut out = Vec::new();
    let mut mine = false;
    for line in answer.lines() {
        if line.starts_with("0x") {
            let source = field(line, "source").unwrap_or("?");
            mine = source == src;
            if mine {
                let source = named(source, clients);
                out.push(format!(
                    "proto={} source={source}",
                    field(line, "proto").unwrap_or("?")
                ));
            }
        } else if !mine {
            continue;
        } else if let Some(rest) = line.strip_prefix("  frontend=") {
            out.push(format!("frontend={rest}"));
        } else if let Some(rest) = line.strip_prefix("  backend=") {
            out.push(format!(
                "backend={})",
                rest.split(')').next().unwrap_or_default()
            ));
        } else if let Some(rest) = line.strip_prefix("  server=") {
            out.push(format!(
                "server={})",
                rest.split(')').next().unwrap_or_default()
            ));
        }
    }
    out
}

/// Waits (10 s at most) until `show sess` on `sock` lists `count` streams of frontends.
fn wait_listed(sock: &Path, count: usize) {
    let streams = || {
        let answer = cli(sock, "show sess");
        answer
            .lines()
            .filter(|l| field(l, "fe").is_some_and(|f| f != "GLOBAL"))
            .count()
    };
    wait_until(Duration::from_secs(10), || streams() == count);
}

/// A client of `front` that sent `data` (none: it waits in its rules).
fn client(front: SocketAddr, data: &[u8]) -> TcpStream {
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    conn.write_all(data).expect("sending");
    conn
}

#[derive(Debug, PartialEq, Eq)]
struct Phases {
    /// `show sess` at level admin, then operator.
    listed: Vec<Vec<String>>,
    /// `show sess ID` of the stream in its rules, the queued one, the served one, the CLI's.
    dumped: Vec<Vec<String>>,
}

#[test]
fn show_sess_lists_streams_in_their_rules_their_queue_and_the_clis_own() {
    let lab = Lab::new("show-sess-phases");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 10s\n  timeout server 10s\n  timeout queue 10s\n";
    let conf = lab.config(ports, server.addr, "10s", timeouts);
    let fe2: SocketAddr = (LO, ports.1).into();
    let (ours, theirs) = side_by_side("show-sess-phases", &conf, (LO, ports.0).into(), |front| {
        let in_rules = client(front, b"ab");
        let (_, served) = session(fe2);
        let queued = client(fe2, b"q");
        wait_listed(&lab.admin, 3);
        let conns = [&in_rules, &served, &queued];
        let clients: Vec<SocketAddr> = conns.iter().map(|c| c.local_addr().unwrap()).collect();
        let dump = |src: &str| dumped(&lab.admin, src, &clients);
        let srcs: Vec<String> = clients.iter().map(ToString::to_string).collect();
        Phases {
            listed: vec![
                listed(&lab.admin, &clients),
                listed(&lab.operator, &clients),
            ],
            dumped: vec![
                dump(&srcs[0]),
                dump(&srcs[2]),
                dump(&srcs[1]),
                dump("unix:1"),
            ],
        }
    });
    let (p1, p2) = ports;
    let streams = |cli: &str| {
        vec![
            "tcpv4 src=c0 fe=fe be=<NONE> srv=<none>".to_string(),
            "tcpv4 src=c1 fe=fe2 be=bq srv=a".into(),
            "tcpv4 src=c2 fe=fe2 be=bq srv=<none>".into(),
            format!("unix_stream src={cli} fe=GLOBAL be=<NONE> srv=<none>"),
        ]
    };
    let expected = Phases {
        listed: vec![streams("unix:1"), streams("unix:2")],
        dumped: vec![
            vec![
                "proto=tcpv4 source=c0".into(),
                format!("frontend=fe (id=2 mode=tcp), listener=? (id=1) addr=127.0.0.1:{p1}"),
                "backend=<NONE> (id=-1 mode=-)".into(),
                "server=<NONE> (id=-1)".into(),
            ],
            vec![
                "proto=tcpv4 source=c2".into(),
                format!("frontend=fe2 (id=3 mode=tcp), listener=? (id=1) addr=127.0.0.1:{p2}"),
                "backend=bq (id=5 mode=tcp)".into(),
                "server=<none> (id=0)".into(),
            ],
            vec![
                "proto=tcpv4 source=c1".into(),
                format!("frontend=fe2 (id=3 mode=tcp), listener=? (id=1) addr=127.0.0.1:{p2}"),
                "backend=bq (id=5 mode=tcp)".into(),
                "server=a (id=1)".into(),
            ],
            vec![
                "proto=unix_stream source=unix:1".into(),
                "frontend=GLOBAL (id=0 mode=tcp), listener=? (id=1) addr=unix:1".into(),
                "backend=<NONE> (id=-1 mode=-)".into(),
                "server=<NONE> (id=-1)".into(),
            ],
        ],
    };
    agree(ours, theirs, expected);
}

#[derive(Debug, PartialEq, Eq)]
struct QueueKill {
    /// `shutdown session ID`'s answer.
    answer: String,
    /// Whether the killed stream is still listed at once.
    listed_after: bool,
    /// The killed client's fate before its `timeout queue`, then after.
    fates: Vec<String>,
    /// The killed stream's log line.
    log: String,
}

#[test]
fn a_queued_stream_holding_its_clients_data_killed_waits_for_its_timeout_queue_logged_kq() {
    let lab = Lab::new("show-sess-kill-queued");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 20s\n  timeout server 20s\n  timeout queue 2s\n";
    let conf = lab.config(ports, server.addr, "10s", timeouts);
    let (ours, theirs) = side_by_side(
        "show-sess-kill-queued",
        &conf,
        (LO, ports.1).into(),
        |fe2| {
            let (_, _served) = session(fe2);
            let mut queued = client(fe2, b"q");
            wait_listed(&lab.admin, 2);
            let src = queued.local_addr().unwrap();
            let id = stream_of(&lab.admin, &src.to_string());
            let answer = cli(&lab.admin, &format!("shutdown session {id}"));
            let listed_after = cli(&lab.admin, "show sess").contains(&src.to_string());
            let early = fate(&mut queued, Duration::from_millis(500)).to_string();
            let late = fate(&mut queued, Duration::from_secs(5)).to_string();
            QueueKill {
                answer,
                listed_after,
                fates: vec![early, late],
                log: lab.log_of(src),
            }
        },
    );
    let expected = QueueKill {
        answer: "\n".into(),
        listed_after: true,
        fates: vec!["open".into(), "closed".into()],
        log: "fe2 bq/<NOSRV> KQ".into(),
    };
    agree(ours, theirs, expected);
}

#[test]
fn a_queued_stream_killed_then_given_its_slot_connects_and_ends_at_once() {
    let lab = Lab::new("show-sess-kill-dequeued");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 20s\n  timeout server 20s\n  timeout queue 20s\n";
    let conf = lab.config(ports, server.addr, "10s", timeouts);
    let (ours, theirs) = side_by_side(
        "show-sess-kill-dequeued",
        &conf,
        (LO, ports.1).into(),
        |fe2| {
            let (_, served) = session(fe2);
            let mut queued = client(fe2, b"q");
            wait_listed(&lab.admin, 2);
            let src = queued.local_addr().unwrap();
            let id = stream_of(&lab.admin, &src.to_string());
            cli(&lab.admin, &format!("shutdown session {id}"));
            let early = fate(&mut queued, Duration::from_millis(300)).to_string();
            // Its slot frees: the killed stream connects, then ends.
            let holder = stream_of(&lab.admin, &served.local_addr().unwrap().to_string());
            cli(&lab.admin, &format!("shutdown session {holder}"));
            let late = fate(&mut queued, Duration::from_secs(5)).to_string();
            QueueKill {
                answer: String::new(),
                listed_after: true,
                fates: vec![early, late],
                log: lab.log_of(src),
            }
        },
    );
    let expected = QueueKill {
        answer: String::new(),
        listed_after: true,
        fates: vec!["open".into(), "closed".into()],
        log: "fe2 bq/a K-".into(),
    };
    agree(ours, theirs, expected);
}

#[derive(Debug, PartialEq, Eq)]
struct RulesKill {
    /// The client's fate before its rules' end, then after.
    fates: Vec<String>,
    /// Whether it is still listed after its rules' end.
    listed_after: bool,
}

#[test]
fn a_stream_killed_in_its_rules_ends_as_they_end_logged_kr() {
    let lab = Lab::new("show-sess-kill-rules");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 20s\n  timeout server 20s\n  timeout queue 20s\n";
    let conf = lab.config(ports, server.addr, "2s", timeouts);
    let (ours, theirs) = side_by_side("show-sess-kill-rules", &conf, (LO, ports.0).into(), |fe| {
        let mut in_rules = client(fe, b"");
        wait_listed(&lab.admin, 1);
        let src = in_rules.local_addr().unwrap().to_string();
        cli(
            &lab.admin,
            &format!("shutdown session {}", stream_of(&lab.admin, &src)),
        );
        let early = fate(&mut in_rules, Duration::from_millis(300)).to_string();
        let late = fate(&mut in_rules, Duration::from_secs(4)).to_string();
        let listed_after = cli(&lab.admin, "show sess").contains(&src);
        RulesKill {
            fates: vec![early, late],
            listed_after,
        }
    });
    let expected = RulesKill {
        fates: vec!["open".into(), "closed".into()],
        listed_after: false,
    };
    assert_eq!(ours, expected);
    // HAProxy 2.6.12 never ends it (a leak hapx does not copy): listed on, its client open.
    if let Some(theirs) = theirs {
        let leaked = RulesKill {
            fates: vec!["open".into(), "open".into()],
            listed_after: true,
        };
        assert_eq!(theirs, leaked, "HAProxy 2.6.12 as observed");
    }
}

/// A server that sends as much as its peers take, without reading.
fn flooding_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let chunk = [b'z'; 65536];
                while conn.write_all(&chunk).is_ok() {}
            });
        }
    });
    addr
}

#[derive(Debug, PartialEq, Eq)]
struct StalledKill {
    /// Still listed right after the kill (it holds data for its client).
    listed_after: bool,
    /// Gone within its idle timeout and a margin.
    gone_in_time: bool,
    /// What the client reads then: data, then the end (a FIN, not a reset).
    end: String,
    log: String,
}

#[test]
fn a_killed_session_whose_client_does_not_read_closes_at_its_idle_timeout() {
    let lab = Lab::new("show-sess-kill-stalled");
    let flood = flooding_server();
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 2s\n  timeout server 2s\n  timeout queue 2s\n";
    let conf = lab.config(ports, flood, "10s", timeouts);
    let (ours, theirs) = side_by_side(
        "show-sess-kill-stalled",
        &conf,
        (LO, ports.1).into(),
        |fe2| {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("a socket");
            socket
                .set_recv_buffer_size(4096)
                .expect("a small receive buffer");
            socket.connect(&fe2.into()).expect("connecting");
            let mut stalled: TcpStream = socket.into();
            stalled.write_all(b"x").expect("sending");
            let src = stalled.local_addr().unwrap().to_string();
            wait_listed(&lab.admin, 1);
            // The proxy's buffers towards the client fill up.
            std::thread::sleep(Duration::from_millis(500));
            cli(
                &lab.admin,
                &format!("shutdown session {}", stream_of(&lab.admin, &src)),
            );
            let killed = Instant::now();
            let listed_after = cli(&lab.admin, "show sess").contains(&src);
            wait_until(Duration::from_secs(8), || {
                !cli(&lab.admin, "show sess").contains(&src)
            });
            let gone_in_time = killed.elapsed() < Duration::from_secs(5);
            stalled
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0;
            let end = loop {
                match stalled.read(&mut buf) {
                    Ok(0) => break if got > 0 { "data then FIN" } else { "FIN" },
                    Ok(n) => got += n,
                    Err(e) => {
                        break if e.kind() == std::io::ErrorKind::ConnectionReset {
                            "reset"
                        } else {
                            "still open"
                        };
                    }
                }
            };
            StalledKill {
                listed_after,
                gone_in_time,
                end: end.into(),
                log: lab.log_of(stalled.local_addr().unwrap()),
            }
        },
    );
    let expected = StalledKill {
        listed_after: true,
        gone_in_time: true,
        end: "data then FIN".into(),
        log: "fe2 bq/a K-".into(),
    };
    agree(ours, theirs, expected);
}

#[derive(Debug, PartialEq, Eq)]
struct IdleKill {
    /// The killed client's fate soon after its kill (long before its timeouts).
    fate: String,
    log: String,
}

#[test]
fn a_queued_stream_whose_client_sent_nothing_killed_ends_at_once_logged_kq() {
    let lab = Lab::new("show-sess-kill-queued-idle");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 20s\n  timeout server 20s\n  timeout queue 10s\n";
    let conf = lab.config(ports, server.addr, "10s", timeouts);
    let (ours, theirs) = side_by_side(
        "show-sess-kill-queued-idle",
        &conf,
        (LO, ports.1).into(),
        |fe2| {
            let (_, _served) = session(fe2);
            let mut queued = client(fe2, b"");
            wait_listed(&lab.admin, 2);
            let src = queued.local_addr().unwrap();
            let id = stream_of(&lab.admin, &src.to_string());
            cli(&lab.admin, &format!("shutdown session {id}"));
            IdleKill {
                fate: fate(&mut queued, Duration::from_secs(3)).to_string(),
                log: lab.log_of(src),
            }
        },
    );
    let expected = IdleKill {
        fate: "closed".into(),
        log: "fe2 bq/<NOSRV> KQ".into(),
    };
    agree(ours, theirs, expected);
}

/// A server address whose connections never complete: a listener whose backlog is full,
/// whose SYNs the kernel drops. It lasts as long as what is returned.
fn black_hole() -> (SocketAddr, socket2::Socket, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    listener
        .bind(&SocketAddr::from((LO, 0)).into())
        .expect("binding");
    listener.listen(0).expect("listening");
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<Socket> = (0..3)
        .map(|_| {
            let filler = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
            filler.set_nonblocking(true).unwrap();
            let _ = filler.connect(&addr.into());
            filler
        })
        .collect();
    // The backlog fills as the handshakes complete.
    std::thread::sleep(Duration::from_millis(300));
    (addr, listener, fillers)
}

#[derive(Debug, PartialEq, Eq)]
struct ConnectingKill {
    /// The idle client's fate soon after its kill (its `timeout connect` is 3 s).
    idle: String,
    /// The client that sent data: its fate soon after its kill, then by its `timeout connect`.
    sent: Vec<String>,
    logs: Vec<String>,
}

#[test]
fn a_connecting_stream_killed_ends_at_once_unless_its_client_sent_data_logged_kc() {
    let lab = Lab::new("show-sess-kill-connecting");
    let (hole, _listener, _fillers) = black_hole();
    let port = free_port();
    let conf = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  log {} local0\n  option tcplog\n  timeout connect 3s\n  \
         timeout client 20s\n  timeout server 20s\n  retries 0\n\
         frontend fc\n  bind 127.0.0.1:{port}\n  default_backend bc\n\
         backend bc\n  server s {hole}\n",
        lab.admin.display(),
        lab.syslog.addr,
    );
    let (ours, theirs) = side_by_side(
        "show-sess-kill-connecting",
        &conf,
        (LO, port).into(),
        |fc| {
            let mut idle = client(fc, b"");
            let mut sent = client(fc, b"data");
            wait_listed(&lab.admin, 2);
            let srcs = [&idle, &sent].map(|c| c.local_addr().unwrap());
            for src in srcs {
                let id = stream_of(&lab.admin, &src.to_string());
                cli(&lab.admin, &format!("shutdown session {id}"));
            }
            let idle = fate(&mut idle, Duration::from_secs(1)).to_string();
            let early = fate(&mut sent, Duration::from_millis(500)).to_string();
            let late = fate(&mut sent, Duration::from_secs(5)).to_string();
            ConnectingKill {
                idle,
                sent: vec![early, late],
                logs: srcs.map(|src| lab.log_of(src)).to_vec(),
            }
        },
    );
    let expected = ConnectingKill {
        idle: "closed".into(),
        sent: vec!["open".into(), "closed".into()],
        logs: vec!["fc bc/s KC".into(), "fc bc/s KC".into()],
    };
    agree(ours, theirs, expected);
}

/// A CLI connection in interactive mode on `sock`, and its own stream's number.
fn prompt_session(sock: &Path) -> (std::os::unix::net::UnixStream, String) {
    let mut conn = std::os::unix::net::UnixStream::connect(sock).expect("connecting to the CLI");
    conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    conn.write_all(b"prompt\nshow sess\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // The prompt, then the listing and its prompt.
    while seen.matches("\n> ").count() < 2 {
        let n = conn.read(&mut buf).expect("the CLI's answer");
        assert!(n > 0, "the CLI closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let own = seen.lines().find(|l| field(l, "fe") == Some("GLOBAL"));
    let own = own.unwrap_or_else(|| panic!("its own stream is not listed: {seen}"));
    let own = own.trim_start_matches("> ");
    (conn, own.split(':').next().unwrap_or_default().to_string())
}

/// Everything `conn` receives until its end, each answer (between prompts) named by its
/// first line, and how it ended.
fn answers_to_end(conn: &mut std::os::unix::net::UnixStream) -> (Vec<String>, &'static str) {
    let mut out = Vec::new();
    let end = match conn.read_to_end(&mut out) {
        Ok(_) => "closed",
        Err(_) => "open",
    };
    let out = String::from_utf8_lossy(&out);
    let named = out.split("\n> ").map(|answer| {
        let first = answer.lines().next().unwrap_or_default();
        first.split(':').next().unwrap_or_default().to_string()
    });
    (named.collect(), end)
}

#[derive(Debug, PartialEq, Eq)]
struct CliKill {
    /// Killed from another connection while idle: the killer's answer, then the killed
    /// connection's end.
    killer: String,
    idle: (Vec<String>, &'static str),
    /// Killed by a line of its own (`shutdown session OWN; show info; help`): its answers
    /// and its end.
    own_line: (Vec<String>, &'static str),
}

#[test]
fn a_killed_cli_stream_closes_its_connection() {
    let lab = Lab::new("show-sess-kill-cli");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let ports = (free_port(), free_port());
    let timeouts = "  timeout client 20s\n  timeout server 20s\n  timeout queue 10s\n";
    let conf = lab.config(ports, server.addr, "10s", timeouts);
    let (ours, theirs) = side_by_side("show-sess-kill-cli", &conf, (LO, ports.1).into(), |_| {
        let (mut idle, id) = prompt_session(&lab.admin);
        let killer = cli(&lab.admin, &format!("shutdown session {id}"));
        let idle = answers_to_end(&mut idle);
        let (mut own, id) = prompt_session(&lab.admin);
        let line = format!("shutdown session {id}; show info; help\n");
        own.write_all(line.as_bytes()).unwrap();
        CliKill {
            killer,
            idle,
            own_line: answers_to_end(&mut own),
        }
    });
    let expected = CliKill {
        killer: "\n".into(),
        idle: (vec![String::new()], "closed"),
        // The kill's answer, then one more command's (HAProxy's runs one more), then the end.
        own_line: (vec![String::new(), "Name".into(), String::new()], "closed"),
    };
    agree(ours, theirs, expected);
}

/// What happened to the HTTP streams held in their rules (a tarpit, a `balance url_param
/// check_post` POST waiting for its body): `show sess` of them, then each killed.
#[derive(Debug, PartialEq, Eq)]
struct HeldInRules {
    listed: Vec<String>,
    /// The status each killed client got (0: none, its connection closed), in the order
    /// killed: the tarpitted one, the POST whose body never came, the one whose body came
    /// after its kill.
    answers: Vec<u16>,
    /// Their log lines, as `STATUS FLAGS "REQUEST"`, sorted.
    logged: Vec<String>,
}

/// HTTP requests held in their rules are listed by `show sess`, as HAProxy lists them: a
/// frontend's tarpit in no backend (`be=<NONE> srv=<none>`), a POST waiting for its body
/// to choose its server in its backend (`be=bp srv=<none>`). Killed, each is held on as
/// HAProxy holds it: the tarpit answers at its end, logged `KT--`; the POST gets its 408
/// at `timeout http-request`, logged `KR--`, or, its body come whole after the kill, no
/// answer at that timeout, logged `K---` with status -1.
#[test]
fn http_requests_held_in_their_rules_are_listed_and_killed_as_haproxys() {
    let lab = Lab::new("show-sess-http-rules");
    let server = NamedServer::start("a", LO, Duration::from_secs(30));
    let front = SocketAddr::from((LO, free_port()));
    let conf = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  log {} local0\n  option httplog\n  timeout connect 1s\n  \
         timeout client 10s\n  timeout server 10s\n  timeout tarpit 1s\n  \
         timeout http-request 1s\n\
         frontend fe\n  bind {front}\n  http-request tarpit if {{ path /tarpit }}\n  \
         default_backend bp\n\
         backend bp\n  balance url_param id check_post\n  server a {}\n",
        lab.admin.display(),
        lab.syslog.addr,
        server.addr,
    );
    let post = b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nid=";
    let (ours, theirs) = side_by_side("show-sess-http-rules", &conf, front, |front| {
        let mut tarpitted = client(front, b"GET /tarpit HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut waiting = client(front, post);
        let mut completing = client(front, post);
        wait_listed(&lab.admin, 3);
        let clients: Vec<SocketAddr> = [&tarpitted, &waiting, &completing]
            .iter()
            .map(|c| c.local_addr().expect("a client's address"))
            .collect();
        let listed = listed(&lab.admin, &clients);
        for src in &clients {
            let id = stream_of(&lab.admin, &src.to_string());
            cli(&lab.admin, &format!("shutdown session {id}"));
        }
        completing.write_all(b"1234567").expect("the body's rest");
        let answers = [&mut tarpitted, &mut waiting, &mut completing]
            .into_iter()
            .map(|c| {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut reader = std::io::BufReader::new(c);
                hapx_tests::proxy_rules::read_response(&mut reader).map_or(0, |r| r.status)
            })
            .collect();
        let mut logged: Vec<String> = (lab.syslog.httplog_lines("fe", 3).into_iter())
            .map(|l| format!("{} {} {:?}", l.status, l.flags, l.request))
            .collect();
        logged.sort();
        HeldInRules {
            listed,
            answers,
            logged,
        }
    });
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "(hapx, HAProxy)");
    }
    let expected = HeldInRules {
        listed: vec![
            "tcpv4 src=c0 fe=fe be=<NONE> srv=<none>".into(),
            "tcpv4 src=c1 fe=fe be=bp srv=<none>".into(),
            "tcpv4 src=c2 fe=fe be=bp srv=<none>".into(),
            "unix_stream src=unix:1 fe=GLOBAL be=<NONE> srv=<none>".into(),
        ],
        answers: vec![500, 408, 0],
        logged: vec![
            "-1 K--- \"POST /up HTTP/1.1\"".into(),
            "408 KR-- \"POST /up HTTP/1.1\"".into(),
            "500 KT-- \"GET /tarpit HTTP/1.1\"".into(),
        ],
    };
    assert_eq!(ours, expected);
}
