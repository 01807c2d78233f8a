//! Health checks' log-format parts and `min-recv`, run by hapx-proxy and then by HAProxy 2.6
//! on the same configuration against the same loopback servers:
//! - `http-check send uri-lf`, `hdr`, `body-lf` and `tcp-check send-lf`, `send-binary-lf`
//!   render `%b %s %si %sp %ci` and `%[srv_name]`, `%[srv_id]`, `%[be_id]`, `%[env()]`
//!   with converters for the checked server: the servers must receive HAProxy's bytes;
//! - `on-success` / `on-error` (with the response's `status` and `res.hdr()`) become the
//!   check's information: every server's `show stat` row and "is DOWN" log line must be
//!   HAProxy's;
//! - `min-recv` makes a mismatch final once that much came (TCP data, an HTTP body), where
//!   without it the check waits for more;
//! - `tcp-check expect string-lf` / `binary-lf` match the rendered format, an empty one
//!   failing as HAProxy's does; a `!` rule waiting in vain times out (L7TOUT) as HAProxy's;
//!   an expect after a send judges only what came after it; an empty answer is reported
//!   as HAProxy reports it; a `uri-lf` rendered empty is `/`, a `hdr` rendered empty is
//!   not sent;
//! - formats a check cannot render are refused at load with HAProxy's message and line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{
    Unanswering, blank_check_duration, free_port, settled_check_rows, temp_dir,
};
use hapx_tests::proxy_rules::{HAPROXY, check_text, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What a test server does with each connection after reading what the check sent.
#[derive(Clone, Copy)]
enum Script {
    /// HTTP: 200 with `X-Path`, or 503 with `X-Why` for a path starting `/down`.
    Http,
    /// TCP: `OK` when the check pinged server `ok` (and sent `ABC`), else `NO`.
    Pong,
    /// Sends the first part, waits, sends the second, closes.
    Slow(&'static [u8], &'static [u8]),
    /// Sends nothing for 3 s.
    Silent,
    /// Answers `OK` to what the check sends first, `NO` to what it sends next, and keeps
    /// the connection open (3 s).
    Chat,
    /// Sends each part once its time (ms from the connection) came, then keeps the
    /// connection open (3 s).
    Timed(&'static [(u64, &'static [u8])]),
    /// Reads what the check sent, then resets the connection.
    Reset,
}

/// A loopback server keeping what each check sent (HTTP header names lower-cased, only the
/// request line, `x-*` and `content-length` headers and the body kept, as hapx adds
/// `Connection: close` where HAProxy sends none).
struct CheckServer {
    addr: SocketAddr,
    seen: Arc<Mutex<BTreeSet<String>>>,
}

impl CheckServer {
    fn start(script: Script) -> CheckServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding a check server");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(conn, script, &kept));
            }
        });
        CheckServer { addr, seen }
    }

    /// What the checks sent since the last call (a proxy's, from its start).
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.seen.lock().unwrap())
    }
}

/// Reads what the check sends until it pauses for 150 ms (or closes).
fn read_sent(conn: &mut TcpStream) -> Vec<u8> {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(150)));
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = conn.read(&mut chunk) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

fn serve(mut conn: TcpStream, script: Script, seen: &Mutex<BTreeSet<String>>) {
    let _ = conn.set_nodelay(true);
    if let Script::Timed(parts) = script {
        let start = Instant::now();
        for (at, part) in parts {
            std::thread::sleep(Duration::from_millis(*at).saturating_sub(start.elapsed()));
            let _ = conn.write_all(part);
        }
        std::thread::sleep(Duration::from_secs(3));
        return;
    }
    let sent = read_sent(&mut conn);
    let text = String::from_utf8_lossy(&sent).into_owned();
    let answer: Vec<u8> = match script {
        Script::Http => {
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let mut lines = head.lines();
            let first = lines.next().unwrap_or_default().to_string();
            let mut kept = vec![first.clone()];
            for line in lines {
                if let Some((name, value)) = line.split_once(':') {
                    let name = name.to_ascii_lowercase();
                    if name.starts_with("x-") || name == "content-length" {
                        kept.push(format!("{name}:{value}"));
                    }
                }
            }
            if !body.is_empty() {
                kept.push(body.to_string());
            }
            seen.lock().unwrap().insert(kept.join(" | "));
            let path = first.split_whitespace().nth(1).unwrap_or("/");
            if path.starts_with("/down") {
                b"HTTP/1.0 503 Service Unavailable\r\nX-Why: maintenance\r\nContent-Length: 0\r\n\r\n"
                    .to_vec()
            } else {
                format!("HTTP/1.0 200 OK\r\nX-Path: {path}\r\nContent-Length: 0\r\n\r\n")
                    .into_bytes()
            }
        }
        Script::Pong => {
            seen.lock().unwrap().insert(format!("{text:?}"));
            if text.contains("PING ok") && text.contains("ABC") {
                b"OK\n".to_vec()
            } else {
                b"NO\n".to_vec()
            }
        }
        Script::Silent => {
            std::thread::sleep(Duration::from_secs(3));
            Vec::new()
        }
        Script::Chat => {
            let _ = conn.write_all(b"OK\n");
            let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
            if conn.read(&mut [0u8; 256]).unwrap_or(0) > 0 {
                let _ = conn.write_all(b"NO\n");
                let _ = conn.read(&mut [0u8; 256]);
            }
            Vec::new()
        }
        Script::Reset => {
            let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
            return;
        }
        Script::Timed(_) => return,
        Script::Slow(first, second) => {
            let _ = conn.write_all(first);
            std::thread::sleep(Duration::from_millis(300));
            second.to_vec()
        }
    };
    let _ = conn.write_all(&answer);
}

/// (backend, server) and the state and check status hapx must settle in.
const EXPECTED: [(&str, &str, &str, &str); 15] = [
    ("web", "up", "UP", "L7OK"),
    ("web", "down", "DOWN", "L7STS"),
    ("pong", "ok", "UP", "L7OK"),
    ("pong", "no", "DOWN", "L7RSP"),
    ("minrecv", "s", "DOWN", "L7RSP"),
    ("waits", "s", "UP", "L7OK"),
    ("httpmin", "s", "DOWN", "L7RSP"),
    ("httpwaits", "s", "UP", "L7OK"),
    ("binmiss", "s", "DOWN", "L7RSP"),
    ("lfmatch", "s", "UP", "L7OK"),
    ("lfempty", "s", "DOWN", "L7RSP"),
    ("silentneg", "s", "DOWN", "L7TOUT"),
    ("rooturi", "s", "UP", "L7OK"),
    ("chat", "s", "DOWN", "L7TOUT"),
    ("empty", "s", "DOWN", "L7RSP"),
];

/// `backend/server` of the servers `expected` DOWN.
fn down_servers(expected: &[(&str, &str, &str, &str)]) -> Vec<String> {
    (expected.iter())
        .filter(|(.., state, _)| *state == "DOWN")
        .map(|(b, s, ..)| format!("{b}/{s}"))
        .collect()
}

/// A syslog sink keeping the "is DOWN" lines of each proxy run in turn: a line of a
/// process whose lines an earlier run took (still queued when the next proxy starts) is
/// skipped.
struct DownLog {
    socket: UdpSocket,
    addr: SocketAddr,
    earlier: Mutex<BTreeSet<String>>,
}

impl DownLog {
    fn bind() -> DownLog {
        let socket = UdpSocket::bind((LO, 0)).expect("binding a syslog socket");
        let addr = socket.local_addr().expect("its address");
        let earlier = Mutex::default();
        DownLog {
            socket,
            addr,
            earlier,
        }
    }

    /// The "is DOWN" lines (after their syslog header, check durations blanked) that came
    /// until each of `servers` (`backend/server`) has one, or 15 s passed.
    fn until_down(&self, servers: &[String]) -> BTreeSet<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let (mut lines, mut pids) = (BTreeSet::new(), BTreeSet::new());
        let all_down = |lines: &BTreeSet<String>| {
            servers.iter().all(|s| {
                let wanted = format!("Server {s} is DOWN, ");
                lines.iter().any(|l: &String| l.starts_with(&wanted))
            })
        };
        let mut buf = [0u8; 4096];
        while !all_down(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = self.socket.set_read_timeout(Some(left));
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let datagram = String::from_utf8_lossy(&buf[..n]);
            let Some((header, message)) = datagram.split_once("]: ") else {
                continue;
            };
            let pid = header.rsplit('[').next().unwrap_or_default().to_string();
            if self.earlier.lock().unwrap().contains(&pid) {
                continue;
            }
            pids.insert(pid);
            if message.contains(" is DOWN, reason: ") {
                lines.insert(blank_check_duration(message.trim_end()));
            }
        }
        self.earlier.lock().unwrap().extend(pids);
        lines
    }
}

#[test]
fn check_formats_and_min_recv_behave_like_haproxy() {
    let test = "check_formats_and_min_recv_behave_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let web = CheckServer::start(Script::Http);
    let pong = CheckServer::start(Script::Pong);
    let tcp_slow = CheckServer::start(Script::Slow(b"XX", b"OK\n"));
    let http_slow = CheckServer::start(Script::Slow(b"HTTP/1.0 200 OK\r\n\r\nxx", b"ok"));
    let silent = CheckServer::start(Script::Silent);
    let chat = CheckServer::start(Script::Chat);
    let mute = CheckServer::start(Script::Slow(b"", b""));
    let port = free_port();
    let syslog = DownLog::bind();
    let server = |name: &str, addr: SocketAddr| {
        format!("  server {name} {addr} check inter 300ms rise 1 fall 1\n")
    };
    let config = format!(
        "global\n  stats socket {sock} level admin\n  log {log} local0\n  setenv CHECK_TOKEN 414243\n  setenv PONG OK\n\
         defaults\n  mode http\n  log global\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend web\n\
         backend web\n  option httpchk\n\
         \x20 http-check send meth GET uri-lf \"/%[srv_name]/%b?id=%[srv_id]&be=%[be_id]&ci=%ci\" \
         hdr X-Check \"%s@%si:%sp %{{+Q}}ci\" hdr X-Env \"%[env(CHECK_TOKEN),lower]\" \
         body-lf \"from %[be_name,upper] to %s\"\n\
         \x20 http-check expect status 200 on-success \"fine %[srv_name] %[status] %[res.hdr(x-path)]\" \
         on-error \"bad %s %[status] %[res.hdr(x-why)]\" comment \"see runbook\"\n\
         {up}{down}\
         backend pong\n  mode tcp\n  option tcp-check\n\
         \x20 tcp-check send-lf \"PING %s %[srv_id]\\r\\n\"\n\
         \x20 tcp-check send-binary-lf \"%[env(CHECK_TOKEN)]0D0A\"\n\
         \x20 tcp-check expect string OK on-success \"pong from %[srv_name]\" on-error \"no pong from %s\"\n\
         {ok}{no}\
         backend minrecv\n  mode tcp\n  option tcp-check\n  tcp-check expect string OK min-recv 2\n{ms}\
         backend waits\n  mode tcp\n  option tcp-check\n  tcp-check expect string OK\n{ws}\
         backend httpmin\n  option httpchk GET /slow\n  http-check expect string ok min-recv 2\n{hm}\
         backend httpwaits\n  option httpchk GET /slow\n  http-check expect string ok\n{hw}\
         backend binmiss\n  mode tcp\n  option tcp-check\n  tcp-check send-lf \"PING %s\\r\\n\"\n\
         \x20 tcp-check expect binary 4F4B\n{pong_s}\
         backend lfmatch\n  mode tcp\n  option tcp-check\n  tcp-check send \"PING ok ABC\\r\\n\"\n\
         \x20 tcp-check expect string-lf \"%[env(PONG)]\"\n{pong_s}\
         backend lfempty\n  mode tcp\n  option tcp-check\n  tcp-check send \"x\\r\\n\"\n\
         \x20 tcp-check expect binary-lf \"%[env(NOPE)]\" comment empty\n{pong_s}\
         backend silentneg\n  mode tcp\n  option tcp-check\n  tcp-check expect ! string ZZ\n{silent_s}\
         backend rooturi\n  option httpchk\n  http-check send uri-lf \"%[env(NOPE)]\" \
         hdr X-Empty \"%[env(NOPE)]\" hdr X-Full full\n{web_s}\
         backend chat\n  mode tcp\n  option tcp-check\n  tcp-check send \"one\\r\\n\"\n\
         \x20 tcp-check expect string OK\n  tcp-check send \"two\\r\\n\"\n  tcp-check expect string OK\n{chat_s}\
         backend empty\n  mode tcp\n  option tcp-check\n  tcp-check send \"x\\r\\n\"\n\
         \x20 tcp-check expect string OK comment hush\n{mute_s}",
        sock = sock.display(),
        log = syslog.addr,
        up = server("up", web.addr),
        down = server("down", web.addr),
        ok = server("ok", pong.addr),
        no = server("no", pong.addr),
        ms = server("s", tcp_slow.addr),
        ws = server("s", tcp_slow.addr),
        hm = server("s", http_slow.addr),
        hw = server("s", http_slow.addr),
        pong_s = server("s", pong.addr),
        silent_s = server("s", silent.addr),
        web_s = server("s", web.addr),
        chat_s = server("s", chat.addr),
        mute_s = server("s", mute.addr),
    );
    let observe = |_| {
        let servers: Vec<(&str, &str)> = EXPECTED.iter().map(|(b, s, ..)| (*b, *s)).collect();
        let expected: Vec<[&str; 2]> = EXPECTED.iter().map(|(.., st, c)| [*st, *c]).collect();
        let rows = settled_check_rows(&sock, &servers, &expected);
        let down = syslog.until_down(&down_servers(&EXPECTED));
        (rows, down, web.take(), pong.take())
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (b, s, state, status)) in ours.0.iter().zip(&EXPECTED) {
        assert_eq!([&row[0], &row[1]], [state, status], "{b}/{s}: {row:?}");
    }
    let last_chk: BTreeMap<String, &str> = (EXPECTED.iter().zip(&ours.0))
        .map(|((b, s, ..), row)| (format!("{b}/{s}"), row[3].as_str()))
        .collect();
    assert_eq!(last_chk["web/up"], "fine up 200 /up/web?id=1&be=3&ci=");
    assert_eq!(
        last_chk["web/down"],
        "bad down 503 maintenance comment: see runbook"
    );
    assert_eq!(last_chk["pong/ok"], "pong from ok");
    assert_eq!(last_chk["pong/no"], "no pong from no");
    assert_eq!(
        last_chk["minrecv/s"],
        "TCPCHK did not match content 'OK' at step 1"
    );
    assert_eq!(last_chk["httpmin/s"], "HTTP content check did not match");
    assert!(
        ours.2.contains(&format!(
            "GET /up/web?id=1&be=3&ci= HTTP/1.0 | x-check: up@{}:{} \"\" | x-env: 414243 | content-length: 14 | from WEB to up",
            web.addr.ip(),
            web.addr.port()
        )),
        "{:#?}",
        ours.2
    );
    assert!(
        ours.3.contains("\"PING ok 1\\r\\nABC\\r\\n\""),
        "{:#?}",
        ours.3
    );
    assert_eq!(
        last_chk["binmiss/s"],
        "TCPCHK did not match content (binary) at step 2"
    );
    assert_eq!(
        last_chk["lfempty/s"],
        "log-format string evaluated to an empty string comment: empty"
    );
    assert!(
        ours.1.iter().any(|l| l.contains(
            "Server silentneg/s is DOWN, reason: Layer7 timeout, info: \" at step 1 of tcp-check (expect string 'ZZ')\""
        )),
        "{:#?}",
        ours.1
    );
    assert_eq!(
        last_chk["chat/s"],
        " at step 4 of tcp-check (expect string 'OK')"
    );
    assert_eq!(
        last_chk["empty/s"],
        "TCPCHK got an empty response at step 2 comment: 'hush'"
    );
    assert!(
        ours.2.contains("OPTIONS / HTTP/1.0 | x-full: full"),
        "{:#?}",
        ours.2
    );
    // One line per server going DOWN (the same line again if it flapped).
    assert_eq!(ours.1.len(), 9, "{:#?}", ours.1);
    let Some(theirs) = theirs else { return };
    let sent = |run: &Run4| (run.0.clone(), run.1.clone(), run.2.clone());
    assert_like_haproxy(&EXPECTED, sent(&ours), sent(&theirs));
    assert_eq!(
        ours.3, theirs.3,
        "TCP checks sent: hapx-proxy, then HAProxy"
    );
}

/// (backend, server) and the state and check status hapx must settle in, as HAProxy does:
/// - `twostep`: `timeout check` counts once from the connection, not again for each expect
///   (the second answer comes in time only if it restarted): L7TOUT; `nochk`, `hnochk`:
///   without `timeout check`, a check has `inter` (the answer comes after `inter` but within
///   `timeout connect` + `inter`);
/// - `rst`: a reset during an expect is SOCKERR with the system's reason and the step;
/// - `lfsilent`, `lfmute`: a format pattern is rendered once data came (a silent server
///   times out, one closing at once is an empty response, L7STS with code 0);
/// - `stsc`: a tcp-check failing with `error-status L7STS` shows code 0;
/// - `binnul`: a binary pattern is named up to its NUL, the comment quoted after;
/// - `checkport`, `checkaddr`: `%si`/`%sp` are where the check connects;
/// - `hmulti`, `hzero`: each HTTP body rule is judged at its own `min-recv`, `min-recv 0`
///   waiting for a byte;
/// - `hec`, `hnone`: an empty body, no response at all (the rule's comment reported);
/// - `noanswer`: a connection that times out (a powered-off server) is logged with its step
///   as the information (`reason: Layer4 timeout, info: " at initial connection step ..."`).
const REVIEWED: [(&str, &str, &str, &str); 15] = [
    ("twostep", "s", "DOWN", "L7TOUT"),
    ("rst", "s", "DOWN", "SOCKERR"),
    ("lfsilent", "s", "DOWN", "L7TOUT"),
    ("lfmute", "s", "DOWN", "L7STS"),
    ("stsc", "s", "DOWN", "L7STS"),
    ("binnul", "s", "DOWN", "L7TOUT"),
    ("checkport", "s", "UP", "L7OK"),
    ("checkaddr", "s", "UP", "L7OK"),
    ("hmulti", "s", "DOWN", "L7RSP"),
    ("hzero", "s", "UP", "L7OK"),
    ("hec", "s", "DOWN", "L7RSP"),
    ("hnone", "s", "DOWN", "L7RSP"),
    ("nochk", "s", "DOWN", "L7TOUT"),
    ("hnochk", "s", "DOWN", "L7TOUT"),
    ("noanswer", "s", "DOWN", "L4TOUT"),
];

#[test]
fn check_timing_errors_and_messages_behave_like_haproxy() {
    let test = "check_timing_errors_and_messages_behave_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let two_step = CheckServer::start(Script::Timed(&[(700, b"A\n"), (1400, b"B\n")]));
    let reset = CheckServer::start(Script::Reset);
    let silent = CheckServer::start(Script::Silent);
    let mute = CheckServer::start(Script::Slow(b"", b""));
    let pong = CheckServer::start(Script::Pong);
    let web = CheckServer::start(Script::Http);
    let multi = CheckServer::start(Script::Slow(b"HTTP/1.0 200 OK\r\n\r\nab", b"cd"));
    let zero = CheckServer::start(Script::Slow(b"HTTP/1.0 200 OK\r\n\r\n", b"ok"));
    let late = CheckServer::start(Script::Timed(&[(2000, b"A\n")]));
    let late_http = CheckServer::start(Script::Timed(&[(
        2000,
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    )]));
    let unanswering = Unanswering::start();
    let port = free_port();
    let syslog = DownLog::bind();
    let server = |addr: SocketAddr| format!("  server s {addr} check inter 500ms rise 1 fall 1\n");
    let slow_server =
        |addr: SocketAddr| format!("  server s {addr} check inter 1500ms rise 1 fall 1\n");
    let tcp = "  mode tcp\n  option tcp-check\n";
    let config = format!(
        "global\n  stats socket {sock} level admin\n  log {log} local0\n\
         defaults\n  mode http\n  log global\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend checkport\n\
         backend twostep\n{tcp}  tcp-check expect string A\n  tcp-check send x\\n\n\
         \x20 tcp-check expect string B comment zz\n{two}\
         backend rst\n{tcp}  tcp-check send x\\n\n  tcp-check expect string OK comment c1\n{rst}\
         backend lfsilent\n{tcp}  tcp-check expect string-lf \"%[env(NOPE)]\"\n{silent_s}\
         backend lfmute\n{tcp}  tcp-check send x\\n\n\
         \x20 tcp-check expect string-lf \"%[env(NOPE)]\" error-status L7STS\n{mute_s}\
         backend stsc\n{tcp}  tcp-check send x\\n\n  tcp-check expect string OK error-status L7STS\n{pong_s}\
         backend binnul\n{tcp}  tcp-check expect binary 00FF0a comment zz\n{silent_s}\
         backend checkport\n  option httpchk\n  http-check send uri-lf \"/%si/%sp\"\n\
         \x20 server s 127.0.0.1:1 check port {web_port} inter 500ms rise 1 fall 1\n\
         backend checkaddr\n  option httpchk\n  http-check send uri-lf \"/%si/%sp/a\"\n\
         \x20 server s 127.0.0.2:1 check addr 127.0.0.1 port {web_port} inter 500ms rise 1 fall 1\n\
         backend hmulti\n  option httpchk\n  http-check expect string cd min-recv 2\n\
         \x20 http-check expect string abcd min-recv 4\n{multi_s}\
         backend hzero\n  option httpchk\n  http-check expect string ok min-recv 0\n{zero_s}\
         backend hec\n  option httpchk\n  http-check expect string ok\n{hec_s}\
         backend hnone\n  option httpchk\n  http-check expect status 200 comment zz\n{mute_s}\
         backend noanswer\n{tcp}  tcp-check send x\\n\n{noanswer_s}\
         defaults\n  mode http\n  log global\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n\
         backend nochk\n{tcp}  tcp-check expect string A\n{late_s}\
         backend hnochk\n  option httpchk\n{late_http_s}",
        sock = sock.display(),
        log = syslog.addr,
        two = server(two_step.addr),
        rst = server(reset.addr),
        silent_s = server(silent.addr),
        mute_s = server(mute.addr),
        pong_s = server(pong.addr),
        web_port = web.addr.port(),
        multi_s = server(multi.addr),
        zero_s = server(zero.addr),
        hec_s = server(CheckServer::start(Script::Slow(b"HTTP/1.0 200 OK\r\n\r\n", b"")).addr),
        late_s = slow_server(late.addr),
        late_http_s = slow_server(late_http.addr),
        noanswer_s = server(unanswering.addr),
    );
    let observe = |_| {
        let servers: Vec<(&str, &str)> = REVIEWED.iter().map(|(b, s, ..)| (*b, *s)).collect();
        let expected: Vec<[&str; 2]> = REVIEWED.iter().map(|(.., st, c)| [*st, *c]).collect();
        let rows = settled_check_rows(&sock, &servers, &expected);
        let down = syslog.until_down(&down_servers(&REVIEWED));
        (rows, down, web.take())
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (b, s, state, status)) in ours.0.iter().zip(&REVIEWED) {
        assert_eq!([&row[0], &row[1]], [state, status], "{b}/{s}: {row:?}");
    }
    let row: BTreeMap<&str, &[String; 4]> = (REVIEWED.iter().zip(&ours.0))
        .map(|((b, ..), row)| (*b, row))
        .collect();
    assert_eq!(
        row["twostep"][3],
        " at step 3 of tcp-check (expect string 'B') comment: 'zz'"
    );
    assert_eq!(
        row["rst"][3],
        "Connection reset by peer at step 2 of tcp-check (expect string 'OK') comment: 'c1'"
    );
    assert_eq!(
        row["lfsilent"][3],
        " at step 1 of tcp-check (expect log-format string)"
    );
    assert_eq!(
        [row["lfmute"][2].as_str(), row["lfmute"][3].as_str()],
        ["0", "TCPCHK got an empty response at step 2"]
    );
    assert_eq!(
        [row["stsc"][2].as_str(), row["stsc"][3].as_str()],
        ["0", "TCPCHK did not match content 'OK' at step 2"]
    );
    assert_eq!(
        row["binnul"][3],
        " at step 1 of tcp-check (expect binary '') comment: 'zz'"
    );
    assert_eq!(row["hmulti"][3], "HTTP content check did not match");
    assert_eq!(
        row["hec"][3],
        "HTTP content check could not find a response body"
    );
    assert_eq!(row["hnone"][3], " comment: zz");
    let at = format!("{}/{}", web.addr.ip(), web.addr.port());
    for path in [
        format!("OPTIONS /{at} HTTP/1.0"),
        format!("OPTIONS /{at}/a HTTP/1.0"),
    ] {
        assert!(ours.2.contains(&path), "{path}: {:#?}", ours.2);
    }
    assert_eq!(ours.1.len(), down_servers(&REVIEWED).len(), "{:#?}", ours.1);
    assert!(
        ours.1.iter().any(|l| l.starts_with(
            "Server noanswer/s is DOWN, reason: Layer4 timeout, info: \" at initial connection step of tcp-check\","
        )),
        "{:#?}",
        ours.1
    );
    let Some(theirs) = theirs else { return };
    assert_like_haproxy(&REVIEWED, ours, theirs);
}

/// What one proxy showed: each server's check row, the "is DOWN" lines, what the HTTP
/// checks sent.
type Run = (Vec<[String; 4]>, BTreeSet<String>, BTreeSet<String>);
/// [`Run`] and what the TCP checks sent.
type Run4 = (
    Vec<[String; 4]>,
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeSet<String>,
);

/// hapx-proxy's run (`ours`) and HAProxy's show the same for each of `servers`.
fn assert_like_haproxy(servers: &[(&str, &str, &str, &str)], ours: Run, theirs: Run) {
    for ((o, t), (b, s, ..)) in ours.0.iter().zip(&theirs.0).zip(servers) {
        assert_eq!(o, t, "{b}/{s}: hapx-proxy, then HAProxy");
    }
    assert_eq!(ours.1, theirs.1, "log lines: hapx-proxy, then HAProxy");
    assert_eq!(
        ours.2, theirs.2,
        "HTTP checks sent: hapx-proxy, then HAProxy"
    );
}

/// Formats a check cannot render are refused at load, as HAProxy refuses them: the same
/// exit code and the same message naming the file, the line and the fetch.
#[test]
fn check_formats_are_refused_at_load_like_haproxy() {
    let test = "check_formats_are_refused_at_load_like_haproxy";
    let dir = temp_dir(test);
    let haproxy = hapx_tests::require::path(test, std::path::Path::new(HAPROXY), "HAProxy");
    let cases = [
        "option httpchk\n  http-check send uri-lf \"/a?%[req.hdr(host)]\"",
        "option httpchk\n  http-check send hdr X-A \"%[method]\"",
        "option httpchk\n  http-check send body-lf \"%[fe_name]\"",
        "option httpchk\n  http-check expect status 200 on-success \"%[ssl_fc]\"",
        "option tcp-check\n  tcp-check send-lf \"%[path]\"",
        "option tcp-check\n  tcp-check expect string OK on-error \"%[req.len]\"",
        "option tcp-check\n  tcp-check send-lf \"%[nosuch]\"",
        "option tcp-check\n  tcp-check send-lf \"%[srv_name\"",
        "option tcp-check\n  tcp-check send-lf \"%zz\"",
        "option tcp-check\n  tcp-check send-lf",
        "option tcp-check\n  tcp-check expect string OK min-recv",
        "option httpchk\n  http-check expect string OK min-recv",
        "option tcp-check\n  tcp-check expect string OK min-recv -5",
        "option tcp-check\n  tcp-check expect string OK min-recv 99999999999999999999",
        "option tcp-check\n  tcp-check expect string-lf \"%[srv_name]\" extra",
        "option tcp-check\n  tcp-check expect extra string OK",
        "option httpchk\n  http-check expect status 200 extra",
        "option httpchk\n  http-check expect status 200 on-success \"\"",
        "option httpchk\n  http-check send hdr X-E \"\"",
        "option httpchk\n  http-check send uri-lf",
        "option httpchk\n  http-check send body-lf \"\"",
        // Accepted by both.
        "option httpchk\n  http-check send uri-lf \"/%[srv_name,upper]\" hdr X-B \"%[srv_id,add(1)] %ci\"",
        "option tcp-check\n  tcp-check expect string OK min-recv 5 on-success \"%[srv_name]\"",
        "option httpchk\n  http-check expect string OK min-recv -1",
    ];
    let refused = 21;
    for (i, rules) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n\
             listen be\n  bind 127.0.0.1:1\n  {rules}\n  server s1 127.0.0.1:1 check\n"
        );
        let [ours, theirs] = check_text(&dir, i, &text);
        if i < refused {
            assert_eq!(ours.0, 1, "case {i}: {:#?}", ours.1);
            assert!(
                ours.1.iter().any(|m| m.contains(&format!("case{i}.cfg:9"))),
                "case {i}: {:#?}",
                ours.1
            );
        } else {
            assert_eq!(ours.0, 0, "case {i}: {:#?}", ours.1);
        }
        if haproxy {
            assert_eq!(ours, theirs, "case {i}: hapx-proxy, then HAProxy");
        }
    }
    // HAProxy reads `payload()` from the server's response there; hapx says it does not.
    let text = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n\
                listen be\n  bind 127.0.0.1:1\n  option tcp-check\n  tcp-check send-lf \"%[payload(0,1)]\"\n\
                \x20 server s1 127.0.0.1:1 check\n";
    let [ours, _] = check_text(&dir, cases.len(), text);
    assert_eq!(ours.0, 1, "{:#?}", ours.1);
    assert!(
        ours.1.iter().any(|m| m.contains(&format!("case{}.cfg:9", cases.len()))
            && m.contains("'%[payload(0,1)]' uses the response's payload in a health check, which is not implemented by hapx.")),
        "{:#?}",
        ours.1
    );
}
