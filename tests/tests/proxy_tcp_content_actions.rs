//! `tcp-request content` and `tcp-request session` actions on the stream's socket, its
//! client address and its log line (`set-log-level`, `set-src`, `set-tos`, `set-mark`,
//! `silent-drop`), and `http-after-response capture`, side by side with HAProxy: what the
//! client and the server see, the log lines (their syslog priority too), the counters, and
//! the `-c` verdicts.

use std::io::{BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{cli, free_port, socket_seen, stat_row, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_both, check_frontend_line, exchange, get, read_response,
    shape, side_by_side,
};
use hapx_tests::require;
use hapx_tests::wait::eventually;

/// Syslog messages as `(priority, line)`, the line from its client address on.
struct Lines {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl Lines {
    fn bind() -> Lines {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a syslog socket");
        let addr = socket.local_addr().expect("its address");
        Lines { socket, addr }
    }

    /// The traffic lines received until one that `last` says is the last (given its
    /// frontend and the line), sorted (each goes when its stream ends, in no set order),
    /// each as `<PRI> CLIENT-IP LINE` with the line's numbers shaped; fewer if they do not
    /// come within 10 s.
    fn until(&self, last: impl Fn(&str, &str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.socket.set_read_timeout(Some(left)).expect("a timeout");
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let text = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            let (Some((pri, _)), Some((_, line))) = (text.split_once('>'), text.split_once("]: "))
            else {
                continue;
            };
            let words: Vec<&str> = line.split(' ').collect();
            // Traffic lines alone: `IP:PORT [DATE] FRONTEND ...`.
            let (Some(client), Some(frontend)) = (words.first(), words.get(2)) else {
                continue;
            };
            let Some((ip, _)) = client
                .rsplit_once(':')
                .filter(|_| words[1].starts_with('['))
            else {
                continue;
            };
            lines.push(format!("{pri}> {ip} {}", shape(line)));
            if last(frontend, line) {
                break;
            }
        }
        lines.sort();
        lines
    }
}

/// What a client saw sending a request for `path` to `front`: the status, the echo
/// server's name and the client address it got (`x-src`, `x-forwarded-for`); or, when the
/// proxy closed its side without a word, `dropped` if the client's own socket never heard
/// of it. With `ss`, whether the proxy's socket carried `mark` while the request was served.
fn request(front: SocketAddr, path: &str, mark: Option<&str>) -> String {
    let mut client = TcpStream::connect(front).expect("connecting to the proxy");
    let local = client.local_addr().expect("the client's address");
    client
        .write_all(get(path, "connection: close\r\n").as_bytes())
        .expect("sending the request");
    let marked = mark.map(|mark| {
        eventually(Duration::from_secs(5), || {
            socket_seen(front, local).is_some_and(|s| s.contains(mark))
        })
    });
    // An answer (or an end) to read, or the proxy's side gone without a word.
    client.set_nonblocking(true).expect("a non-blocking socket");
    let mut byte = [0u8; 1];
    let mut answered = false;
    eventually(Duration::from_secs(5), || {
        answered = !matches!(client.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
        answered || socket_seen(front, local).is_none()
    });
    client.set_nonblocking(false).expect("a blocking socket");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let reader = &mut BufReader::new(client.try_clone().expect("a clone of the socket"));
    let mut seen = Vec::new();
    match answered.then(|| read_response(reader)).flatten() {
        Some(r) => {
            seen.push(format!("{} {}", r.status, r.server()));
            for name in ["x-src", "x-port", "x-forwarded-for"] {
                seen.extend(r.forwarded(name).map(|v| format!("{name}={v}")));
            }
        }
        // Dropped if the client's side never heard of the end (still established).
        None => {
            let state = socket_seen(local, front);
            let heard = !state.is_some_and(|s| s.starts_with("ESTAB"));
            seen.push(if heard { "closed" } else { "dropped" }.into());
        }
    }
    if let Some(marked) = marked {
        seen.push(format!("marked={marked}"));
    }
    seen.join(" | ")
}

/// How a connection to `front` on which the client sends nothing ends: `dropped` when the
/// proxy's side went while the client's stayed established (it heard nothing). Nothing
/// sent: a byte coming after the drop would be answered with a reset by the client's own
/// system (no socket for it any more), whichever proxy it is.
fn unheard_end(front: SocketAddr) -> String {
    let client = TcpStream::connect(front).expect("connecting to the proxy");
    let local = client.local_addr().expect("the client's address");
    let gone = eventually(Duration::from_secs(5), || {
        socket_seen(front, local).is_none()
    });
    let established = socket_seen(local, front).is_some_and(|s| s.starts_with("ESTAB"));
    match (gone, established) {
        (true, true) => "dropped".into(),
        (true, false) => "closed".into(),
        (false, _) => "open".into(),
    }
}

/// The `fields` of each `(section, row)` of a `show stat` CSV, as `SECTION/ROW:
/// FIELD=VALUE ...`.
fn counted(csv: &str, rows: &[(&str, &str)], fields: &[&str]) -> Vec<String> {
    rows.iter()
        .map(|(section, row)| {
            let r = stat_row(csv, section, row).expect("a stat row");
            let values: Vec<String> = fields.iter().map(|f| format!("{f}={}", r[*f])).collect();
            format!("{section}/{row}: {}", values.join(" "))
        })
        .collect()
}

/// HTTP mode: the content rules run on each request before the HTTP rules, which see the
/// address `set-src` gave, as `option forwardfor` and the log line do; `set-log-level`
/// sets the line's priority (a backend's rule too) or leaves it out; `silent-drop`, in a
/// frontend or a backend, ends the connection unheard, logged `PR--` and counted denied.
#[test]
fn http_mode_content_actions_act_like_haproxys() {
    let test = "http_mode_content_actions_act_like_haproxys";
    if !require::command(test, "ss") {
        return;
    }
    let dir = temp_dir(test);
    let stats = dir.join("stats.sock");
    let syslog = Lines::bind();
    let (s1, s2) = (EchoServer::start("s1"), EchoServer::start("s2"));
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let quiet = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let last = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {stats} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {front}\n\
         \x20 tcp-request content set-log-level err if {{ path /err }}\n\
         \x20 tcp-request content set-log-level silent if {{ path /silent }}\n\
         \x20 tcp-request content set-src str(10.1.2.3) if {{ path /src }}\n\
         \x20 tcp-request content set-src-port int(4242) if {{ path /src }}\n\
         \x20 tcp-request content set-mark 0x2a if {{ path /mark }}\n\
         \x20 tcp-request content set-tos 0x10 if {{ path /mark }}\n\
         \x20 tcp-request content silent-drop if {{ path /fe-drop }}\n\
         \x20 http-request set-header x-src %[src]\n\
         \x20 http-request set-header x-port %[src_port] if {{ path /src }}\n\
         \x20 option forwardfor\n\
         \x20 use_backend other if {{ src 10.1.2.3 }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 tcp-request content set-log-level warning if {{ path /be-warn }}\n\
         \x20 tcp-request content silent-drop if {{ path /be-drop }}\n\
         \x20 server s {s1}\n\
         backend other\n  server s {s2}\n\
         frontend quiet\n  bind {quiet}\n  no log\n\
         \x20 tcp-request content silent-drop if {{ path /drop }}\n\
         \x20 default_backend be\n\
         frontend last\n  bind {last}\n  default_backend be\n",
        stats = stats.display(),
        log = syslog.addr,
        s1 = s1.addr,
        s2 = s2.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let mut seen: Vec<String> = ["/ok", "/err", "/silent", "/src", "/be-warn", "/be-drop"]
            .iter()
            .map(|p| format!("{p}: {}", request(front, p, None)))
            .collect();
        seen.push(format!(
            "/mark: {}",
            request(front, "/mark", Some("fwmark:0x2a"))
        ));
        seen.push(format!("/drop: {}", request(quiet, "/drop", None)));
        seen.push(format!("/fe-drop: {}", request(front, "/fe-drop", None)));
        seen.push(format!("/last: {}", request(last, "/last", None)));
        let lines = syslog.until(|frontend, _| frontend == "last");
        let csv = cli(&stats, "show stat");
        let rows = [("fe", "FRONTEND"), ("quiet", "FRONTEND"), ("be", "BACKEND")];
        (seen, lines, counted(&csv, &rows, &["dreq", "stot"]))
    });
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
    assert_eq!(
        ours.0[3], "/src: 200 s2 | x-src=10.1.2.3 | x-port=4242 | x-forwarded-for=10.1.2.3",
        "{ours:#?}"
    );
    assert!(ours.0[5].ends_with("dropped"), "{ours:#?}");
    assert!(ours.0[6].ends_with("marked=true"), "{ours:#?}");
    assert!(ours.0[7].ends_with("dropped"), "{ours:#?}");
    assert!(ours.0[8].ends_with("dropped"), "{ours:#?}");
    // `/silent` has no line; `/err` and `/be-warn` theirs at err (3) and warning (4); the
    // frontend's drop ends the request before its HTTP analysis: `<BADREQ>`.
    assert_eq!(ours.1.len(), 8, "{ours:#?}");
    assert!(ours.1.iter().any(|l| l.contains("<BADREQ>")), "{ours:#?}");
    assert!(
        ours.1
            .iter()
            .any(|l| l.starts_with("<131>") && l.contains("/err"))
    );
    assert!(
        ours.1
            .iter()
            .any(|l| l.starts_with("<132>") && l.contains("/be-warn"))
    );
    assert!(
        ours.1
            .iter()
            .any(|l| l.contains(" 10.1.2.3 ") && l.contains("/src"))
    );
}

/// What a client saw of a TCP-mode stream to `front` carrying an HTTP request for `path`
/// ([`request`]).
fn tcp_request(front: SocketAddr, path: &str) -> String {
    format!("{path}: {}", request(front, path, None))
}

/// TCP mode: the content rules (frontend's and backend's) on what the client sent: later
/// rules and the backend choice see the address `set-src` gave, as the log line does
/// (`option tcplog`); `set-log-level` sets the line's priority, or leaves it out
/// (`silent`); `silent-drop` ends the
/// stream unheard, logged `PR` and counted denied (in the backend too for its rule).
#[test]
fn tcp_mode_content_actions_act_like_haproxys() {
    let test = "tcp_mode_content_actions_act_like_haproxys";
    if !require::command(test, "ss") {
        return;
    }
    let dir = temp_dir(test);
    let stats = dir.join("stats.sock");
    let syslog = Lines::bind();
    let (s1, s2) = (EchoServer::start("s1"), EchoServer::start("s2"));
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let last = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    // `req.payload(5,2)`: the path's first two letters, after `GET /`.
    let config = format!(
        "global\n  stats socket {stats} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}  log {log} local0\n  option tcplog\n\
         frontend fe\n  bind {front}\n\
         \x20 tcp-request inspect-delay 5s\n\
         \x20 tcp-request content set-src str(10.1.2.3) if {{ req.payload(5,2) -m str sr }}\n\
         \x20 tcp-request content set-src-port int(4242) if {{ src 10.1.2.3 }}\n\
         \x20 tcp-request content set-log-level silent if {{ req.payload(5,2) -m str qu }}\n\
         \x20 tcp-request content set-log-level err if {{ req.payload(5,2) -m str er }}\n\
         \x20 tcp-request content set-tos 0x10\n\
         \x20 tcp-request content set-mark 0x2a if {{ src 10.1.2.3 }}\n\
         \x20 tcp-request content silent-drop if {{ req.payload(5,2) -m str dr }}\n\
         \x20 use_backend other if {{ src 10.1.2.3 }} {{ src_port 4242 }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 tcp-request content silent-drop if {{ req.payload(5,2) -m str bd }}\n\
         \x20 server s {s1}\n\
         backend other\n  server s {s2}\n\
         frontend last\n  bind {last}\n  default_backend be\n",
        stats = stats.display(),
        log = syslog.addr,
        s1 = s1.addr,
        s2 = s2.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let mut seen: Vec<String> = ["/ok", "/src", "/quiet", "/drop", "/bdrop", "/err"]
            .iter()
            .map(|p| tcp_request(front, p))
            .collect();
        seen.push(tcp_request(last, "/last"));
        let lines = syslog.until(|frontend, _| frontend == "last");
        let csv = cli(&stats, "show stat");
        let rows = [("fe", "FRONTEND"), ("be", "BACKEND"), ("other", "BACKEND")];
        (seen, lines, counted(&csv, &rows, &["dreq", "stot"]))
    });
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
    assert_eq!(ours.0[1], "/src: 200 s2", "{ours:#?}");
    assert!(ours.0[3].ends_with("dropped"), "{ours:#?}");
    assert!(ours.0[4].ends_with("dropped"), "{ours:#?}");
    // `/quiet` has no line; `/err`'s is at err (3).
    assert_eq!(ours.1.len(), 6, "{ours:#?}");
    assert_eq!(
        ours.1.iter().filter(|l| l.starts_with("<131>")).count(),
        1,
        "{ours:#?}"
    );
    assert!(ours.1.iter().any(|l| l.contains(" 10.1.2.3 ")), "{ours:#?}");
    assert_eq!(ours.2[0], "fe/FRONTEND: dreq=2 stot=6", "{ours:#?}");
}

/// `tcp-request session` socket actions: `set-src` and `set-src-port` give the address the
/// stream sees (its backend choice, its log line), `set-mark` marks the socket, `silent-drop` closes
/// the connection unheard, counted as a denied request and no session.
#[test]
fn session_socket_actions_act_like_haproxys() {
    let test = "session_socket_actions_act_like_haproxys";
    if !require::command(test, "ss") {
        return;
    }
    let dir = temp_dir(test);
    let stats = dir.join("stats.sock");
    let syslog = Lines::bind();
    let (s1, s2) = (EchoServer::start("s1"), EchoServer::start("s2"));
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let dropping = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let last = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {stats} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}  log {log} local0\n  option tcplog\n\
         frontend fe\n  bind {front}\n\
         \x20 tcp-request session set-src str(10.9.8.7)\n\
         \x20 tcp-request session set-src-port int(4242)\n\
         \x20 tcp-request session set-mark 0x2b if {{ src 10.9.8.7 }}\n\
         \x20 tcp-request session set-tos 0x10\n\
         \x20 use_backend other if {{ src 10.9.8.7 }} {{ src_port 4242 }}\n\
         \x20 default_backend be\n\
         frontend dropping\n  bind {dropping}\n\
         \x20 tcp-request session silent-drop\n\
         \x20 default_backend be\n\
         backend be\n  server s {s1}\n\
         backend other\n  server s {s2}\n\
         frontend last\n  bind {last}\n  default_backend be\n",
        stats = stats.display(),
        log = syslog.addr,
        s1 = s1.addr,
        s2 = s2.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let seen = [
            request(front, "/src", Some("fwmark:0x2b")),
            unheard_end(dropping),
            request(last, "/last", None),
        ];
        let lines = syslog.until(|frontend, _| frontend == "last");
        let csv = cli(&stats, "show stat");
        let rows = [("fe", "FRONTEND"), ("dropping", "FRONTEND")];
        (seen, lines, counted(&csv, &rows, &["dreq", "dses", "stot"]))
    });
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
    assert!(ours.0[0].starts_with("200 s2"), "{ours:#?}");
    assert!(ours.0[0].ends_with("marked=true"), "{ours:#?}");
    assert!(ours.0[1].ends_with("dropped"), "{ours:#?}");
    assert!(ours.1.iter().any(|l| l.contains(" 10.9.8.7 ")), "{ours:#?}");
    assert_eq!(
        ours.2,
        [
            "fe/FRONTEND: dreq=0 dses=0 stot=1",
            "dropping/FRONTEND: dreq=1 dses=0 stot=0"
        ],
        "{ours:#?}"
    );
}

/// `http-after-response capture EXPR id N`: the backend's then the frontend's rules fill a
/// declared response slot, on a server's response and on a reply of the proxy's own,
/// shown in the log line's `{...}` block.
#[test]
fn after_response_capture_fills_log_slots_like_haproxy() {
    let test = "after_response_capture_fills_log_slots_like_haproxy";
    let syslog = Lines::bind();
    let server = EchoServer::start_with("s1", "x-r: response-value\r\n");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}  log {log} local0\n  option httplog\n\
         frontend fe\n  bind {addr}\n\
         \x20 declare capture response len 8\n\
         \x20 capture response header x-r len 20\n\
         \x20 http-request deny deny_status 403 if {{ path /deny }}\n\
         \x20 http-after-response capture res.hdr(x-r) id 0\n\
         \x20 http-after-response capture status,add(1000) id 1 if {{ status 403 }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-after-response capture str(from-backend) id 0 if {{ res.hdr(x-r) -m found }}\n\
         \x20 server s1 {server}\n",
        log = syslog.addr,
        server = server.addr,
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let close = "connection: close\r\n";
        let requests = [get("/ok", ""), get("/deny", ""), get("/last", close)];
        let statuses: Vec<u16> = exchange(a, &requests)
            .iter()
            .flatten()
            .map(|r| r.status)
            .collect();
        (statuses, syslog.until(|_, line| line.contains("/last")))
    });
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
    assert_eq!(ours.0, [200, 403, 200], "{ours:#?}");
    assert!(
        ours.1
            .iter()
            .any(|l| l.contains("{response|response-value}")),
        "{ours:#?}"
    );
    assert!(ours.1.iter().any(|l| l.contains("{|N}")), "{ours:#?}");
}

/// What `-c` says of these actions, well and badly written, as HAProxy says it.
#[test]
fn content_and_session_action_verdicts_read_like_haproxys() {
    let test = "content_and_session_action_verdicts_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let lines = [
        "tcp-request content set-log-level err",
        "tcp-request content set-log-level silent if { path /x }",
        "tcp-request content set-log-level",
        "tcp-request content set-log-level bogus",
        "tcp-request content set-log-level err x",
        "tcp-request content set-src src",
        "tcp-request content set-src req.hdr(x-real) if { req.hdr(x-real) -m found }",
        "tcp-request content set-src",
        "tcp-request content set-src res.hdr(x)",
        "tcp-request content set-src nosuch",
        "tcp-request content set-src src x",
        "tcp-request content set-src-port int(80)",
        "tcp-request content set-src-port",
        "tcp-request content set-src-port res.hdr(x)",
        "tcp-request content set-src-port src_port x",
        "tcp-request session set-src-port int(80)",
        "tcp-request session set-src-port req.len",
        "tcp-request content set-tos 0x10",
        "tcp-request content set-tos 1x",
        "tcp-request content set-tos",
        "tcp-request content set-tos 1 x",
        "tcp-request content set-mark 010",
        "tcp-request content set-mark",
        "tcp-request content silent-drop",
        "tcp-request content silent-drop x",
        "tcp-request content silent-drop if { path /d }",
        "tcp-request session set-tos 0x10",
        "tcp-request session set-mark 3 if { src 10.0.0.1 }",
        "tcp-request session set-mark q",
        "tcp-request session set-tos 1 x",
        "tcp-request session silent-drop",
        "tcp-request session silent-drop x",
        "tcp-request session set-src src",
        "tcp-request session set-src req.payload(0,1)",
        "tcp-request session set-src res.hdr(x)",
        "tcp-request session set-src",
        "tcp-request session set-log-level err",
        "declare capture response len 4\n  http-after-response capture res.hdr(x) id 0",
        "declare capture response len 4\n  http-after-response capture res.hdr(x) id 1",
        "declare capture response len 4\n  http-after-response capture res.hdr(x) id -1",
        "declare capture response len 4\n  http-after-response capture req.hdr(x) id 0",
        "declare capture response len 4\n  http-after-response capture res.hdr(x) len 4",
        "declare capture response len 4\n  http-after-response capture res.hdr(x) id 0 x",
        "declare capture response len 4\n  http-after-response capture res.hdr(x) id x",
        "http-after-response capture res.hdr(x) id",
        "http-after-response capture",
    ];
    for (i, line) in lines.iter().enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, &format!("  {line}"), "", "");
        assert_eq!(ours, theirs, "{line}");
    }
    // In a backend: content rules as in a frontend, session rules refused; capture ids
    // are not checked there.
    let backend_lines = [
        "tcp-request content set-log-level warning",
        "tcp-request content set-src src",
        "tcp-request content silent-drop",
        "tcp-request content set-mark 1",
        "tcp-request session silent-drop",
        "tcp-request session set-src src",
        "http-after-response capture res.hdr(x) id 3",
        "http-response capture res.hdr(x) id 3",
    ];
    for (i, line) in backend_lines.iter().enumerate() {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
             backend b\n  {line}\n  server s 127.0.0.1:1\n"
        );
        let file = dir.join(format!("backend{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        assert_eq!(ours, theirs, "{line}");
    }
}
