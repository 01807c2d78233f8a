//! HTTP-mode findings of the runtime review, each checked side by side with HAProxy 2.6: the
//! same configuration and traffic through hapx-proxy and through HAProxy (both at once, each
//! on its own port with its own syslog socket), comparing what the client saw and what each
//! logged (server, status, bytes where they are deterministic, termination flags).
//!
//! - a request hapx answers itself (stats page) has its body read and dropped, never parsed
//!   as a next request; a POST to the stats page gets HAProxy's 303;
//! - a request head longer than HAProxy's limit (15360 bytes) gets 400 `PR--` whatever one
//!   read brought; a head cut by the client's close is `CR--`;
//! - a client that stops reading a response is dropped after `timeout client` (`cD--`); a
//!   server stalling mid-body after `timeout server` (`sD--`), with the bytes that went;
//! - a client stopping mid request body gets 504 `sH--` once `timeout server` passed;
//! - errors after the backend was chosen count in the backend's `hrsp_*`.
//!
//! Timeouts are short configured ones: the tests wait for the proxies' log lines, never
//! measure how long anything took.

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, free_port, http_get, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, HAPROXY, HttplogLine as Line, Syslog, read_response};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One proxy's run: what the traffic returned and the request lines it logged.
#[derive(Debug)]
struct Run<T> {
    seen: T,
    lines: Vec<Line>,
}

/// Runs `traffic` through hapx-proxy and through HAProxy at once, each with `config`
/// (`{front}` and `{stats}` replaced by its listening addresses, after the common global and
/// defaults sections, `timeouts` among them), and collects `lines` request lines from each
/// (waiting for them up to 10 seconds). HAProxy's run is None when it is not installed
/// (skipped loudly, failing under CI).
fn side_by_side<T: Send>(
    test: &str,
    timeouts: &str,
    config: &str,
    lines: usize,
    traffic: impl Fn(SocketAddr, SocketAddr) -> T + Sync,
) -> (Run<T>, Option<Run<T>>) {
    let hapx = bins::path("hapx-proxy");
    let has_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    thread::scope(|s| {
        let theirs = has_haproxy.then(|| {
            s.spawn(|| {
                run(
                    PathBuf::from(HAPROXY),
                    test,
                    timeouts,
                    config,
                    lines,
                    &traffic,
                )
            })
        });
        let ours = run(hapx, test, timeouts, config, lines, &traffic);
        (ours, theirs.map(|t| t.join().expect("HAProxy's run")))
    })
}

fn run<T>(
    binary: PathBuf,
    test: &str,
    timeouts: &str,
    body: &str,
    lines: usize,
    traffic: &impl Fn(SocketAddr, SocketAddr) -> T,
) -> Run<T> {
    let sink = Syslog::bind();
    let log = sink.addr;
    let front = SocketAddr::from((LO, free_port()));
    let stats = SocketAddr::from((LO, free_port()));
    let body = body
        .replace("{front}", &front.to_string())
        .replace("{stats}", &stats.to_string());
    let config = format!(
        "global\n  log {log} local0 info\ndefaults\n  mode http\n  log global\n  option httplog\n  \
         retries 0\n  timeout connect 1s\n{timeouts}{body}"
    );
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("proxy")
        .to_string();
    let dir = temp_dir(&format!("{test}-{name}"));
    let _proxy = Proxy::start_with(binary, &dir, &name, &config, front, &[]);
    let seen = traffic(front, stats);
    Run {
        seen,
        lines: sink.httplog_lines("fe", lines),
    }
}

/// Each line's byte count left out where it is the stats page's (whose CSV differs).
fn stats_bytes_masked<T>(mut run: Run<T>) -> Run<T> {
    for line in &mut run.lines {
        if line.server.ends_with("<STATS>") && line.status == "200" {
            line.bytes = 0;
        }
    }
    run
}

/// Asserts both runs saw and logged the same, and returns hapx's run.
fn same<T: std::fmt::Debug + PartialEq>(
    test: &str,
    ours: Run<T>,
    theirs: Option<Run<T>>,
) -> Run<T> {
    if let Some(theirs) = theirs {
        assert_eq!(
            ours.seen, theirs.seen,
            "{test}: what the client saw (hapx, HAProxy)"
        );
        // In any order: a line may come after the client moved on to its next connection
        // (the whole line is the key: two lines may share their status and flags).
        let sorted = |lines: &[Line]| {
            let mut lines = lines.to_vec();
            lines.sort_by(|a, b| {
                let key = |l: &Line| {
                    (
                        l.status.clone(),
                        l.flags.clone(),
                        l.request.clone(),
                        l.bytes,
                    )
                };
                key(a).cmp(&key(b))
            });
            lines
        };
        assert_eq!(
            sorted(&ours.lines),
            sorted(&theirs.lines),
            "{test}: the log lines (hapx, HAProxy)"
        );
    }
    ours
}

const TIMEOUTS: &str = "  timeout client 5s\n  timeout server 5s\n";

/// A frontend with the stats page and a backend of one echo server.
fn stats_config(server: SocketAddr) -> String {
    format!(
        "frontend fe\n  bind {{front}}\n  stats enable\n  stats uri /stats\n  default_backend be\n\
         backend be\n  server s1 {server}\n"
    )
}

/// Each response's status on a connection that sends `first`, reads one response, then
/// sends `then` and reads the rest until the proxy closes or goes quiet.
fn statuses(front: SocketAddr, first: &[u8], then: &[u8], more: usize) -> Vec<u16> {
    let (mut c, mut reader) = sent(front, first);
    let mut out: Vec<u16> = read_response(&mut reader)
        .map(|r| r.status)
        .into_iter()
        .collect();
    c.write_all(then).expect("sending");
    for _ in 0..more {
        match read_response_any(&mut reader) {
            Some(status) => out.push(status),
            None => break,
        }
    }
    out
}

/// A connection to `front` that sent `request`, with a reader of its answers (5 s at most
/// for each read).
fn sent(front: SocketAddr, request: &[u8]) -> (TcpStream, BufReader<TcpStream>) {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(request).expect("sending");
    let reader = BufReader::new(c.try_clone().expect("a clone"));
    (c, reader)
}

/// The head of a request announcing `Expect: 100-continue` for a 3000-byte body.
const EXPECTING: &[u8] =
    b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3000\r\n\r\n";

/// A response's status, its body skipped whatever its framing (HAProxy streams its stats
/// page chunked).
fn read_response_any(reader: &mut BufReader<TcpStream>) -> Option<u16> {
    use std::io::BufRead;
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.to_ascii_lowercase());
    }
    let status = head.first()?.split_whitespace().nth(1)?.parse().ok()?;
    if head
        .iter()
        .any(|h| h.starts_with("transfer-encoding: chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
        }
    } else if let Some(length) = head.iter().find_map(|h| h.strip_prefix("content-length:")) {
        let mut body = vec![0u8; length.trim().parse().ok()?];
        reader.read_exact(&mut body).ok()?;
    }
    Some(status)
}

/// Through a frontend with the stats page (and a backend): `first` sent, its answer read,
/// then `then` sent and one more answer read; each answer's status, and two lines logged,
/// the same through both proxies (the stats page's own size left out).
fn stats_requests(test: &str, first: &[u8], then: &[u8]) -> Run<Vec<u16>> {
    let server = EchoServer::start("s1");
    let traffic = |front, _| statuses(front, first, then, 1);
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &stats_config(server.addr), 2, traffic);
    same(
        test,
        stats_bytes_masked(ours),
        theirs.map(stats_bytes_masked),
    )
}

/// B1: a request to the stats page carrying a request as its body: HAProxy answers the POST
/// with 303 and drops the body; hapx once answered 200 and served the body as a request.
#[test]
fn stats_page_drops_a_request_body() {
    let test = "stats_page_drops_a_request_body";
    let inner = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let post = format!(
        "POST /stats;csv HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{inner}",
        inner.len()
    );
    let next = b"GET /stats;csv HTTP/1.1\r\nHost: x\r\n\r\n";
    let ours = stats_requests(test, post.as_bytes(), next);
    assert_eq!(ours.seen, [303, 200]);
    assert!(
        ours.lines.iter().all(|l| l.server == "fe/<STATS>"),
        "{:#?}",
        ours.lines
    );
}

/// B1: the body of a POST to the stats page arriving after the answer went is read and
/// dropped; the connection's next request is served.
#[test]
fn stats_page_drops_a_late_body() {
    let test = "stats_page_drops_a_late_body";
    let head = b"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n";
    let rest = b"GET / HTTP/GET /stats;csv HTTP/1.1\r\nHost: x\r\n\r\n";
    let ours = stats_requests(test, head, rest);
    assert_eq!(ours.seen, [303, 200]);
}

/// B5: a head is refused once it passes 15360 bytes (HAProxy's buffer less its rewrite
/// room), even when one read brought all of it.
#[test]
fn request_heads_past_the_limit_get_400() {
    let test = "request_heads_past_the_limit_get_400";
    let server = EchoServer::start("s1");
    let config = one_server_config(server.addr);
    let sizes = [15000, 15500, 20000, 30000];
    let traffic = |front, _| {
        sizes
            .iter()
            .map(|&size| {
                // The whole head in one write, padded by one header to `size` bytes.
                let start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
                let pad = "a".repeat(size - start.len() - 4);
                let head = format!("{start}{pad}\r\n\r\n");
                let (_c, mut reader) = sent(front, head.as_bytes());
                read_response_any(&mut reader)
            })
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &config, sizes.len(), traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(ours.seen, [Some(200), Some(400), Some(400), Some(400)]);
    // In any order (see [`same`]).
    let mut flags: Vec<&str> = ours.lines.iter().map(|l| l.flags.as_str()).collect();
    flags.sort_unstable();
    assert_eq!(flags, ["----", "PR--", "PR--", "PR--"]);
}

/// B4: a head the client cut short by closing its side is its abort: 400, `CR--`.
#[test]
fn a_truncated_head_is_the_clients_abort() {
    let test = "a_truncated_head_is_the_clients_abort";
    let server = EchoServer::start("s1");
    let config = one_server_config(server.addr);
    let traffic = |front, _| {
        let (c, mut reader) = sent(front, b"GET / HTTP/1.1\r\nHost: x\r\n");
        c.shutdown(std::net::Shutdown::Write)
            .expect("closing the sending side");
        read_response_any(&mut reader)
    };
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &config, 1, traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(ours.seen, Some(400));
    assert_eq!(ours.lines[0].flags, "CR--");
}

/// A server answering each request head with `head`, then `body_bytes` bytes of body (all
/// it can, 0: none), then holding the connection until the proxy closes it.
fn scripted_server(head: &'static str, body_bytes: usize) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = [b'x'; 65536];
                let mut left = body_bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if conn.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
                // Held until the proxy closes it.
                let _ = conn.read(&mut buf);
            });
        }
    });
    addr
}

/// A response bigger than any socket buffers on the way.
const BIG: usize = 64 << 20;
const BIG_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n";

fn one_server_config(server: SocketAddr) -> String {
    format!(
        "frontend fe\n  bind {{front}}\n  default_backend be\nbackend be\n  server s1 {server}\n"
    )
}

/// B2: a client that stops reading a big response is dropped once `timeout client` passed
/// without the proxy writing anything (`cD--`); hapx once held it forever.
#[test]
fn a_client_not_reading_is_dropped_after_its_timeout() {
    let test = "a_client_not_reading_is_dropped_after_its_timeout";
    let server = scripted_server(BIG_HEAD, BIG);
    let timeouts = "  timeout client 1s\n  timeout server 5s\n";
    let traffic = |front, _| {
        let (c, _reader) = sent(front, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        // Never read: kept open until the line is logged (the caller waits for it).
        c
    };
    let (ours, theirs) = side_by_side(test, timeouts, &one_server_config(server), 1, traffic);
    for run in [Some(&ours), theirs.as_ref()].into_iter().flatten() {
        assert_eq!(run.lines.len(), 1, "no line was logged: {:#?}", run.lines);
        assert_eq!(
            (run.lines[0].status.as_str(), run.lines[0].flags.as_str()),
            ("200", "cD--")
        );
        assert!(
            run.lines[0].bytes > 0 && run.lines[0].bytes < BIG as u64,
            "{:?}",
            run.lines
        );
    }
}

/// B4: a server that stalls mid-body is dropped after `timeout server` (`sD--`), and the
/// bytes relayed before count in the log line.
#[test]
fn a_server_stalling_mid_body_is_its_timeout() {
    let test = "a_server_stalling_mid_body_is_its_timeout";
    let server = scripted_server("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 10);
    let timeouts = "  timeout client 5s\n  timeout server 1s\n";
    let traffic = |front, _| {
        let (_c, mut reader) = sent(front, b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
        (text.lines().next().unwrap_or_default().to_string(), body)
    };
    let (ours, theirs) = side_by_side(test, timeouts, &one_server_config(server), 1, traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(ours.seen, ("HTTP/1.1 200 OK".to_string(), 10));
    assert_eq!(ours.lines[0].flags, "sD--");
}

/// B4: a client that closes mid-body is its abort (`CD--`), and what went before counts.
#[test]
fn a_client_closing_mid_body_is_its_abort() {
    let test = "a_client_closing_mid_body_is_its_abort";
    let server = scripted_server(BIG_HEAD, BIG);
    let traffic = |front, _| {
        let (_c, mut reader) = sent(front, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut some = vec![0u8; 100_000];
        reader.read_exact(&mut some).expect("the start of the body");
    };
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &one_server_config(server), 1, traffic);
    for run in [Some(&ours), theirs.as_ref()].into_iter().flatten() {
        assert_eq!(run.lines.len(), 1, "no line was logged: {:#?}", run.lines);
        assert_eq!(
            (run.lines[0].status.as_str(), run.lines[0].flags.as_str()),
            ("200", "CD--")
        );
        assert!(run.lines[0].bytes >= 100_000, "{:?}", run.lines);
    }
}

/// B11: a client that stops mid request body: HAProxy's server timeout covers the exchange,
/// the client's does not apply meanwhile: 504 `sH--` after `timeout server`, even when
/// `timeout client` is shorter.
#[test]
fn a_request_body_stalling_gets_504_after_the_server_timeout() {
    let test = "a_request_body_stalling_gets_504_after_the_server_timeout";
    let server = EchoServer::start("s1");
    let timeouts = "  timeout client 500ms\n  timeout server 1s\n";
    let traffic = |front, _| {
        let ten_of_100 = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
        let (_c, mut reader) = sent(front, ten_of_100);
        read_response_any(&mut reader)
    };
    let (ours, theirs) = side_by_side(test, timeouts, &one_server_config(server.addr), 1, traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(ours.seen, Some(504));
    assert_eq!(ours.lines[0].flags, "sH--");
}

/// B12: hapx's own error pages count in the backend's `hrsp_*` as its servers' responses do:
/// here a request whose chunked body turns out malformed once relayed (400).
#[test]
fn error_pages_count_in_the_backend() {
    let test = "error_pages_count_in_the_backend";
    // A server that says when a request head came, and never answers.
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let server = listener.local_addr().expect("its address");
    let (came, head_came) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let came = came.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = came.send(());
                        got.clear();
                    }
                }
            });
        }
    });
    let head_came = std::sync::Mutex::new(head_came);
    let config = format!(
        "frontend fe\n  bind {{front}}\n  default_backend be\nbackend be\n  server s1 {server}\n\
         listen stats\n  bind {{stats}}\n  stats enable\n  stats uri /stats\n"
    );
    let traffic = |front, stats: SocketAddr| {
        let mut seen = Vec::new();
        // The body starts well, then its second chunk's size is not hexadecimal.
        let start =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        let (mut c, mut reader) = sent(front, start);
        // The rest once the server has the head: the body is being relayed then.
        let _ = head_came
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(5));
        let _ = c.write_all(b"zz\r\n");
        seen.push(read_response_any(&mut reader));
        let (_, _, csv) = http_get(stats, "/stats;csv", None);
        let row = stat_row(&csv, "be", "BACKEND").expect("the backend's row");
        let columns = ["hrsp_4xx", "hrsp_5xx"].map(|c| row.get(c).cloned().unwrap_or_default());
        (seen, columns)
    };
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &config, 1, traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(
        ours.seen.1,
        ["1".to_string(), "0".to_string()],
        "{:?}",
        ours.seen
    );
}

/// A server that, for a request announcing `Expect: 100-continue`, answers `interim` first
/// (`None`: goes straight to a final 417 without reading the body), then reads the body
/// (by its Content-Length) and answers `got N`.
fn continue_server(interim: Option<&'static str>) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut writer = conn.try_clone().expect("a clone");
                let mut reader = BufReader::new(conn);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    use std::io::BufRead;
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let Some(interim) = interim else {
                    let _ = writer
                        .write_all(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
                    let _ = reader.read(&mut [0u8; 1]);
                    return;
                };
                let _ = writer.write_all(interim.as_bytes());
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_ok() {
                    let answer = format!("got {length}");
                    let _ = writer.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        )
                        .as_bytes(),
                    );
                }
                let _ = reader.read(&mut [0u8; 1]);
            });
        }
    });
    addr
}

/// B3: `Expect: 100-continue`: the server's `100 Continue` reaches the client before the
/// body went (the client waits for it: hapx once waited for the body first, and the client
/// sent it only after its own delay).
#[test]
fn expect_100_continue_gets_the_interim_answer_first() {
    let test = "expect_100_continue_gets_the_interim_answer_first";
    let server = continue_server(Some("HTTP/1.1 100 Continue\r\n\r\n"));
    let traffic = |front, _| {
        let (mut c, mut reader) = sent(front, EXPECTING);
        // The body goes only once the interim answer came, as a client waiting for it does.
        let interim = read_response_any(&mut reader);
        c.write_all(&[b'b'; 3000]).expect("sending the body");
        let last = read_response(&mut reader).map(|r| (r.status, r.body));
        (interim, last)
    };
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &one_server_config(server), 1, traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(ours.seen, (Some(100), Some((200, "got 3000".to_string()))));
}

/// B3: a server answering `Expect: 100-continue` with a final response at once: the client
/// gets it without sending its body.
#[test]
fn expect_100_continue_gets_an_early_final_answer() {
    let test = "expect_100_continue_gets_an_early_final_answer";
    let server = continue_server(None);
    let traffic = |front, _| {
        let (_c, mut reader) = sent(front, EXPECTING);
        read_response_any(&mut reader)
    };
    let (ours, theirs) = side_by_side(test, TIMEOUTS, &one_server_config(server), 1, traffic);
    let ours = same(test, ours, theirs);
    assert_eq!(ours.seen, Some(417));
}

/// A redirect of a request whose body has not come: the answer closes the connection, and its
/// logged size counts the `connection: close` HAProxy's redirect puts in the message (98
/// bytes, not 83); a GET's redirect logs 83 in both.
#[test]
fn a_redirect_closing_on_a_body_counts_its_connection_header() {
    let test = "a_redirect_closing_on_a_body_counts_its_connection_header";
    let config = "frontend fe\n  bind {front}\n  http-request redirect location /x if { path_beg /redir }\n\
                  \x20 http-request deny\n";
    let (ours, theirs) = side_by_side(test, TIMEOUTS, config, 2, |front, _| {
        let post = b"POST /redir HTTP/1.1\r\nhost: a\r\ncontent-length: 3000\r\n\r\n";
        let get = b"GET /redir HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
        [&post[..], &get[..]]
            .iter()
            .map(|request| {
                let (_conn, mut reader) = sent(front, request);
                read_response_any(&mut reader)
            })
            .collect::<Vec<_>>()
    });
    let ours = same(test, ours, theirs);
    let mut sizes: Vec<u64> = ours.lines.iter().map(|l| l.bytes).collect();
    sizes.sort();
    assert_eq!(ours.seen, [Some(302), Some(302)]);
    assert_eq!(sizes, [83, 98]);
}
