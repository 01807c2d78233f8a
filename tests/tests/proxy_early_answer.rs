//! A server's answer that comes while the request's body is still on its way (or, to an
//! `Expect: 100-continue` request, before any of it), side by side with HAProxy 2.6: the same configuration and traffic
//! through hapx-proxy and through HAProxy (both at once, each on its own port with its own
//! syslog socket), comparing what the client saw and what each logged.
//!
//! HAProxy forwards such an answer at once and goes on relaying the body to the server;
//! the request is logged when both ended: `----` when the body went whole (the client
//! connection kept), `SD--` when the server's connection failed under the body, `sD--` when
//! the server took none of it for `timeout server`, `CD--` when the client closed, `cD--`
//! when the client sent nothing for `timeout client` once the response was whole (whether
//! or not the server's connection is still open).
//!
//! The test servers answer 413 as soon as they have a request's head and the start of its
//! body. The clients read that
//! answer before sending the rest of the body: a proxy holding the answer until the body
//! went would never give it. No test sleeps: each waits for what it reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, HttplogLine as Line, Syslog, read_response};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The request's declared body, of which the first [`FIRST`] bytes come with its head.
const BODY: usize = 5000;
const FIRST: usize = 100;

/// One proxy's run: what the client saw and the request lines logged.
#[derive(Debug)]
struct Run<T> {
    seen: T,
    lines: Vec<Line>,
}

/// Runs `traffic` through hapx-proxy and through HAProxy at once, each proxying frontend
/// `fe` to its own [`answering_server`] doing as `after` says (`traffic` gets that server's
/// resets), and asserts both saw and logged the same (`lines` request lines each,
/// in any order); returns hapx's run. HAProxy's is skipped loudly when it is not installed
/// (failing under CI).
fn side_by_side<T: Send + PartialEq + std::fmt::Debug>(
    test: &str,
    after: After,
    lines: usize,
    traffic: impl Fn(SocketAddr, &Receiver<()>) -> T + Sync,
) -> Run<T> {
    side_by_side_over(test, (after, Hop::Http1), lines, traffic)
}

/// How the proxies reach their [`answering_server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// Straight, over HTTP/1.1.
    Http1,
    /// Over HTTP/2 (`proto h2`), through an HAProxy that takes HTTP/2 and gives the server
    /// HTTP/1.1 (skipped loudly when HAProxy is not installed, failing under CI).
    Http2,
}

/// [`side_by_side`] with the proxies reaching their servers as `hop` says.
fn side_by_side_over<T: Send + PartialEq + std::fmt::Debug>(
    test: &str,
    (after, hop): (After, Hop),
    lines: usize,
    traffic: impl Fn(SocketAddr, &Receiver<()>) -> T + Sync,
) -> Run<T> {
    let config = "defaults\n  mode http\n  log global\n  option httplog\n  retries 0\n  \
                  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n\
                  frontend fe\n  bind {front}\n  default_backend be\n\
                  backend be\n  server s1 {server}\n";
    let has_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let (ours, theirs) = thread::scope(|s| {
        let theirs = has_haproxy.then(|| {
            s.spawn(|| {
                run(
                    PathBuf::from(HAPROXY),
                    test,
                    (config, after, hop),
                    lines,
                    &traffic,
                )
            })
        });
        let ours = run(
            bins::path("hapx-proxy"),
            test,
            (config, after, hop),
            lines,
            &traffic,
        );
        (ours, theirs.map(|t| t.join().expect("HAProxy's run")))
    });
    if let Some(mut theirs) = theirs {
        assert_eq!(
            ours.seen, theirs.seen,
            "{test}: what the client saw (hapx, HAProxy)"
        );
        let mut mine = ours.lines.clone();
        mine.sort();
        theirs.lines.sort();
        assert_eq!(mine, theirs.lines, "{test}: the log lines (hapx, HAProxy)");
    }
    ours
}

fn run<T>(
    binary: PathBuf,
    test: &str,
    (config, after, hop): (&str, After, Hop),
    lines: usize,
    traffic: &impl Fn(SocketAddr, &Receiver<()>) -> T,
) -> Run<T> {
    let (server, resets) = answering_server(after);
    let sink = Syslog::bind();
    let log = sink.addr;
    let front = SocketAddr::from((LO, free_port()));
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("proxy")
        .to_string();
    let dir = temp_dir(&format!("{test}-{name}"));
    let (server, _h2_hop) = match hop {
        Hop::Http1 => (server.to_string(), None),
        Hop::Http2 => {
            let (addr, hop) = h2_hop(&dir, server);
            (format!("{addr} proto h2"), Some(hop))
        }
    };
    let config = format!(
        "global\n  log {log} local0 info\n{}",
        config
            .replace("{front}", &front.to_string())
            .replace("{server}", &server)
    );
    let _proxy = Proxy::start_with(binary, &dir, &name, &config, front, &[]);
    let seen = traffic(front, &resets);
    Run {
        seen,
        lines: sink.httplog_lines("fe", lines),
    }
}

/// An HAProxy taking HTTP/2 (`proto h2`) and giving `server` HTTP/1.1: its address.
fn h2_hop(dir: &Path, server: SocketAddr) -> (SocketAddr, Proxy) {
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  \
         timeout server 5s\nfrontend hop\n  bind {front} proto h2\n  default_backend be\n\
         backend be\n  server s1 {server}\n"
    );
    let hop = Proxy::start_with(PathBuf::from(HAPROXY), dir, "h2-hop", &config, front, &[]);
    (front, hop)
}

/// What a test server does once it answered a request's head with 413.
#[derive(Debug, Clone, Copy)]
enum After {
    /// Reads the rest of the body, then answers the connection's next requests with 200.
    Reads,
    /// Closes with a reset (nothing more of the body can reach it).
    Resets,
    /// Answers as soon as the head came, without waiting for the body's start, then closes
    /// with a reset.
    ResetsOnHead,
    /// Keeps the connection open without reading from it (until the test's process ends).
    Holds,
    /// Answers with this interim response in place of the 413, reads the rest of the body,
    /// then answers 200, and the connection's next requests as [`After::Reads`].
    Interim(&'static str),
    /// Answers 200 in place of the 413, its body the request's (the same length), echoed
    /// as it comes: the response ends only after the request's body; the connection's next
    /// requests as [`After::Reads`].
    Echoes,
    /// Answers 200 as soon as the head came, in place of the 413 and without waiting for
    /// the body's start, its body the request's whole body echoed as it comes; the
    /// connection's next requests as [`After::Reads`].
    EchoesOnHead,
    /// Answers `100 Continue` in place of the 413, reads the rest of the body, then answers
    /// 200 `got` and the body's length, and the connection's next requests with their
    /// request line as body.
    Continues,
    /// Answers `100 Continue` in place of the 413, then as [`After::Holds`].
    ContinuesThenHolds,
    /// Reads nothing more until the body stalls (the sockets on its way full: the proxy
    /// holds some of it unread), then closes with a reset.
    ResetsOnceStalled,
}

/// A server answering each connection's first request 413 as soon as its head and the
/// first [`FIRST`] bytes of its body came, then doing as `after` says; each reset it made is
/// told on the receiver.
fn answering_server(after: After) -> (SocketAddr, Receiver<()>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    let (reset, resets) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let reset = reset.clone();
            thread::spawn(move || serve(conn, after, &reset));
        }
    });
    (addr, resets)
}

fn serve(conn: TcpStream, after: After, reset: &Sender<()>) {
    let mut writer = conn.try_clone().expect("a clone");
    let mut reader = BufReader::new(conn);
    let Some(length) = read_head(&mut reader) else {
        return;
    };
    if length == 0 {
        // A next request the HTTP/2 hop sent on a connection of its own.
        answer_next(&mut reader, &mut writer);
        return;
    }
    // The body's start first: the proxies wrote it in one write with the head, so the
    // answer comes while the rest is awaited.
    let mut start = [0u8; FIRST];
    let on_head = matches!(after, After::ResetsOnHead | After::EchoesOnHead);
    if !on_head && reader.read_exact(&mut start).is_err() {
        return;
    }
    let echoed = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
    let answer = match after {
        After::Interim(interim) => interim.as_bytes(),
        After::Echoes => &[echoed.as_bytes(), &start].concat(),
        After::EchoesOnHead => echoed.as_bytes(),
        After::Continues | After::ContinuesThenHolds => b"HTTP/1.1 100 Continue\r\n\r\n",
        _ => b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\n\r\nlarge",
    };
    let _ = writer.write_all(answer);
    match after {
        After::Echoes | After::EchoesOnHead => {
            let mut left = if on_head { length } else { length - FIRST };
            let mut chunk = [0u8; 1024];
            while left > 0 {
                let Ok(n) = reader.read(&mut chunk[..left.min(1024)]) else {
                    return;
                };
                if n == 0 || writer.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
            while read_head(&mut reader).is_some() {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext");
            }
        }
        After::Continues => {
            let mut body = vec![0u8; length - FIRST];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let got = format!("got {length}");
            let _ = write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{got}",
                got.len()
            );
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    return;
                }
                if read_head(&mut reader).is_none() {
                    return;
                }
                let said = request_line.trim_end();
                let _ = write!(
                    writer,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{said}",
                    said.len()
                );
            }
        }
        After::Resets | After::ResetsOnHead | After::ResetsOnceStalled => {
            if matches!(after, After::ResetsOnceStalled) {
                stalled(reader.get_ref());
            }
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let _ =
                nix::sys::socket::setsockopt(&writer, nix::sys::socket::sockopt::Linger, &linger);
            drop((writer, reader));
            let _ = reset.send(());
        }
        After::Holds | After::ContinuesThenHolds => {
            // Nothing is read: held until the test's process ends.
            loop {
                thread::park();
            }
        }
        After::Reads | After::Interim(_) => {
            let mut body = vec![0u8; length - FIRST];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            if matches!(after, After::Interim(_)) {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
            }
            while read_head(&mut reader).is_some() {
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext");
            }
        }
    }
}

/// Answers 200 `next` to a request whose head was read, then to each next one.
fn answer_next(reader: &mut impl BufRead, writer: &mut impl Write) {
    loop {
        let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext");
        if read_head(reader).is_none() {
            return;
        }
    }
}

/// Waits until what comes to `conn`, which reads nothing, stopped coming: its receive queue
/// holds bytes, and no more through ten polls of 20 ms in a row (within 10 s).
fn stalled(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let queued = || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int to `n`; the socket is open while `conn` lives.
        let done = unsafe { libc::ioctl(conn.as_raw_fd(), libc::FIONREAD, &mut n) };
        if done == 0 { n } else { -1 }
    };
    let (mut last, mut still) = (-1, 0);
    for _ in 0..500 {
        let now = queued();
        still = if now > 0 && now == last { still + 1 } else { 0 };
        if still >= 10 {
            return;
        }
        last = now;
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a request head; its Content-Length (0 without), None at the connection's end.
fn read_head(reader: &mut impl BufRead) -> Option<usize> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            return Some(length);
        }
    }
}

/// A connection to `front` that sent a POST head announcing `body` bytes and the first
/// [`FIRST`] of them (in one write), with a reader of its answers.
fn upload(front: SocketAddr, body: usize) -> (TcpStream, BufReader<TcpStream>) {
    upload_with(front, body, "")
}

/// [`upload`] with more header lines (each ending in CRLF).
fn upload_with(front: SocketAddr, body: usize, headers: &str) -> (TcpStream, BufReader<TcpStream>) {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("POST /up HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {body}\r\n\r\n");
    c.write_all(&[head.as_bytes(), &[b'a'; FIRST]].concat())
        .expect("sending the head and the body's start");
    let reader = BufReader::new(c.try_clone().expect("a clone"));
    (c, reader)
}

/// Whether the proxy closed the connection (read within its read timeout: an end, or a
/// reset).
fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    matches!(reader.read(&mut [0u8; 1]), Ok(0) | Err(_))
}

fn line(request: &str, status: &str, bytes: u64, flags: &str) -> Line {
    Line {
        request: request.into(),
        server: "be/s1".into(),
        status: status.into(),
        bytes,
        flags: flags.into(),
    }
}

/// The log lines of a 200 exchange and the `GET /next` after it on the same connection:
/// both whole (`----`).
fn next_after_a_whole_exchange(mut lines: Vec<Line>) {
    lines.sort();
    assert_eq!(lines[0], line("GET /next HTTP/1.1", "200", 53, "----"));
    assert_eq!(
        (lines[1].status.as_str(), lines[1].flags.as_str()),
        ("200", "----")
    );
}

/// The answer comes before the body went; the body then goes whole to the server, which
/// reads it: the exchange ends as any other and the connection takes the next request.
#[test]
fn an_early_answer_comes_before_the_body_and_the_body_still_goes() {
    let test = "an_early_answer_comes_before_the_body_and_the_body_still_goes";
    let run = side_by_side(test, After::Reads, 2, |front, _| {
        let (mut c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| (r.status, r.body));
        c.write_all(&[b'a'; BODY - FIRST])
            .expect("sending the rest");
        c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("the next request");
        let next = read_response(&mut reader).map(|r| (r.status, r.body));
        (early, next)
    });
    assert_eq!(
        run.seen,
        (Some((413, "large".into())), Some((200, "next".into())))
    );
    let mut lines = run.lines;
    lines.sort();
    assert_eq!(
        lines,
        [
            line("GET /next HTTP/1.1", "200", 53, "----"),
            line("POST /up HTTP/1.1", "413", 69, "----")
        ]
    );
}

/// A server's interim response (`100 Continue` to a request without `Expect`, `103 Early
/// Hints`) while the body is on its way goes to the client at once, and the body goes on
/// to the server, which gives its final response once it has it all.
#[test]
fn an_interim_answer_mid_body_goes_and_the_body_goes_on() {
    let test = "an_interim_answer_mid_body_goes_and_the_body_goes_on";
    for interim in [
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
    ] {
        let run = side_by_side(test, After::Interim(interim), 2, |front, _| {
            let (mut c, mut reader) = upload(front, BODY);
            let first = read_response(&mut reader).map(|r| (r.status, r.headers));
            c.write_all(&[b'a'; BODY - FIRST])
                .expect("sending the rest");
            let last = read_response(&mut reader).map(|r| (r.status, r.body));
            c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("the next request");
            let next = read_response(&mut reader).map(|r| (r.status, r.body));
            (first.map(|f| f.0), last, next)
        });
        assert_eq!(
            run.seen,
            (
                Some(interim[9..12].parse().expect("a status")),
                Some((200, "done".into())),
                Some((200, "next".into()))
            ),
            "{interim:?}"
        );
        let mut lines = run.lines;
        lines.sort();
        assert_eq!(lines[0], line("GET /next HTTP/1.1", "200", 53, "----"));
        assert_eq!(lines[1].status, "200", "{interim:?}");
        assert_eq!(lines[1].flags, "----", "{interim:?}");
    }
}

/// A server that answered and reset its connection: the rest of the body fails on it,
/// `SD--`, and the client connection closes.
#[test]
fn the_body_after_an_answer_fails_on_a_reset_server() {
    let test = "the_body_after_an_answer_fails_on_a_reset_server";
    let run = side_by_side(test, After::Resets, 1, |front, resets| {
        let (mut c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| r.status);
        resets.recv().expect("the server's reset");
        // (The proxy may close before all of it went.)
        let _ = c.write_all(&[b'a'; BODY - FIRST]);
        (early, closed(&mut reader))
    });
    assert_eq!(run.seen, (Some(413), true));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "SD--")]);
}

/// A client sending nothing more after the answer, its server gone: `timeout client` ends
/// it, `cD--`.
#[test]
fn a_client_idle_after_the_answer_times_out_once_the_server_left() {
    let test = "a_client_idle_after_the_answer_times_out_once_the_server_left";
    let run = side_by_side(test, After::Resets, 1, |front, resets| {
        let (_c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| r.status);
        resets.recv().expect("the server's reset");
        (early, closed(&mut reader))
    });
    assert_eq!(run.seen, (Some(413), true));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "cD--")]);
}

/// A server answering and resetting as soon as it has the request's head: the body's first
/// bytes, which came with the head, went with it in one write (as HAProxy sends them), so
/// nothing fails on the server; the client sending nothing more then times out, `cD--`.
#[test]
fn a_server_resetting_on_the_head_had_the_bodys_start_with_it() {
    let test = "a_server_resetting_on_the_head_had_the_bodys_start_with_it";
    let run = side_by_side(test, After::ResetsOnHead, 1, |front, resets| {
        let (_c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| r.status);
        resets.recv().expect("the server's reset");
        (early, closed(&mut reader))
    });
    assert_eq!(run.seen, (Some(413), true));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "cD--")]);
}

/// A client closing after the answer, its body not sent: `CD--`.
#[test]
fn a_client_closing_after_the_answer_is_its_abort() {
    let test = "a_client_closing_after_the_answer_is_its_abort";
    let run = side_by_side(test, After::Holds, 1, |front, _| {
        let (c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| r.status);
        drop(reader);
        drop(c);
        early
    });
    assert_eq!(run.seen, Some(413));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "CD--")]);
}

/// A body far larger than the sockets hold, to a server that answered and reads nothing:
/// the answer still comes, and `timeout server` ends the body, `sD--`.
#[test]
fn a_body_the_server_stopped_reading_ends_at_its_timeout() {
    let test = "a_body_the_server_stopped_reading_ends_at_its_timeout";
    const LARGE: usize = 256 << 20;
    let run = side_by_side(test, After::Holds, 1, |front, _| {
        let (c, mut reader) = upload(front, LARGE);
        // Sent while the answer is read, until the proxy closes.
        let mut writer = c.try_clone().expect("a clone");
        let sender = thread::spawn(move || {
            let chunk = vec![b'a'; 1 << 16];
            let mut left = LARGE - FIRST;
            while left > 0 {
                let n = left.min(chunk.len());
                if writer.write_all(&chunk[..n]).is_err() {
                    return false;
                }
                left -= n;
            }
            true
        });
        let early = read_response(&mut reader).map(|r| r.status);
        let closed = closed(&mut reader);
        let _ = c.shutdown(std::net::Shutdown::Both);
        let sent_all = sender.join().expect("the sender");
        (early, closed, sent_all)
    });
    assert_eq!(run.seen, (Some(413), true, false));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "sD--")]);
}

/// A server streaming its answer while it reads the body (an echo): the response and the
/// rest of the body go both ways at once, as HAProxy relays them; a proxy relaying the
/// response to its end before the body would wait for a response that waits for the body.
#[test]
fn a_streamed_answer_and_the_body_go_both_ways_at_once() {
    let test = "a_streamed_answer_and_the_body_go_both_ways_at_once";
    let run = side_by_side(test, After::Echoes, 2, |front, _| {
        let (mut c, mut reader) = upload(front, BODY);
        // The answer's head and the body's start, echoed, before the rest is sent.
        let came = reader
            .fill_buf()
            .map(|b| b.starts_with(b"HTTP/1.1 200"))
            .ok();
        c.write_all(&[b'b'; BODY - FIRST])
            .expect("sending the rest");
        let echoed = read_response(&mut reader).map(|r| (r.status, r.body));
        c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("the next request");
        let next = read_response(&mut reader).map(|r| (r.status, r.body));
        (came, echoed, next)
    });
    let body = format!("{}{}", "a".repeat(FIRST), "b".repeat(BODY - FIRST));
    assert_eq!(
        run.seen,
        (Some(true), Some((200, body)), Some((200, "next".into())))
    );
    next_after_a_whole_exchange(run.lines);
}

/// The rest of the body after the server's `100 Continue` (a client that sent the body's
/// start with its `Expect: 100-continue` head) goes on to the server as body, even when it
/// looks like a request: the server never sees it as one, and the connection's next
/// request is the client's next.
#[test]
fn a_body_after_the_servers_100_continue_is_never_a_request() {
    let test = "a_body_after_the_servers_100_continue_is_never_a_request";
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: y\r\n\r\n";
    let run = side_by_side(test, After::Continues, 2, |front, _| {
        let (mut c, mut reader) = upload_with(front, BODY, "Expect: 100-continue\r\n");
        let interim = read_response(&mut reader).map(|r| r.status);
        let padding = vec![b'a'; BODY - FIRST - smuggled.len()];
        c.write_all(&[&padding[..], smuggled].concat())
            .expect("sending the rest");
        let last = read_response(&mut reader).map(|r| (r.status, r.body));
        c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("the next request");
        let next = read_response(&mut reader).map(|r| (r.status, r.body));
        (interim, last, next)
    });
    assert_eq!(
        run.seen,
        (
            Some(100),
            Some((200, format!("got {BODY}"))),
            Some((200, "GET /next HTTP/1.1".into()))
        )
    );
    let mut lines = run.lines;
    lines.sort();
    assert_eq!(lines[0].request, "GET /next HTTP/1.1");
    assert_eq!(lines[1].request, "POST /up HTTP/1.1");
    assert_eq!(
        (lines[1].status.as_str(), lines[1].flags.as_str()),
        ("200", "----")
    );
}

/// A server that sent `100 Continue` and nothing more for `timeout server`, the client's
/// body not sent whole yet: 504, `sH--`, and the connection closes (the rest of the body
/// is never read as a request).
#[test]
fn a_server_silent_after_its_100_continue_closes_the_connection() {
    let test = "a_server_silent_after_its_100_continue_closes_the_connection";
    let run = side_by_side(test, After::ContinuesThenHolds, 1, |front, _| {
        let (mut c, mut reader) = upload_with(front, BODY, "Expect: 100-continue\r\n");
        let interim = read_response(&mut reader).map(|r| r.status);
        let failed = read_response(&mut reader).map(|r| r.status);
        // (The proxy may have closed already.)
        let _ = c.write_all(b"GET /smuggled HTTP/1.1\r\nHost: y\r\n\r\n");
        (interim, failed, closed(&mut reader))
    });
    assert_eq!(run.seen, (Some(100), Some(504), true));
    assert_eq!(run.lines.len(), 1);
    assert_eq!(run.lines[0].flags, "sH--");
}

/// A server answering, then resetting once the rest of a large body stalled on its way
/// (the proxy holding some unread): the client reads the answer, then the connection's
/// end, not a reset that could destroy the answer (HAProxy drains what came of the body
/// before it closes).
#[test]
fn a_close_under_a_large_body_is_an_end_after_the_answer() {
    let test = "a_close_under_a_large_body_is_an_end_after_the_answer";
    // More than the sockets on the way hold: it can not all go before the reset.
    const LARGE: usize = 64 << 20;
    let run = side_by_side(test, After::ResetsOnceStalled, 1, |front, _| {
        let (c, mut reader) = upload(front, LARGE);
        let early = read_response(&mut reader).map(|r| (r.status, r.body));
        let mut writer = c.try_clone().expect("a clone");
        let sender = thread::spawn(move || {
            let chunk = vec![b'a'; 1 << 16];
            let mut left = LARGE - FIRST;
            while left > 0 && writer.write_all(&chunk[..left.min(chunk.len())]).is_ok() {
                left -= left.min(chunk.len());
            }
        });
        let end = match reader.read(&mut [0u8; 1]) {
            Ok(0) => "end",
            Ok(_) => "more",
            Err(_) => "reset",
        };
        let _ = c.shutdown(std::net::Shutdown::Both);
        sender.join().expect("the sender");
        (early, end)
    });
    assert_eq!(run.seen, (Some((413, "large".into())), "end"));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "SD--")]);
}

/// A client announcing `Expect: 100-continue` that sends its body anyway once the server
/// answered on the head alone (a streaming echo): the body still goes to the server while
/// the answer streams back, as HAProxy relays it; a proxy keeping the body from the server
/// would wait for an echo that waits for the body. The connection then takes the next
/// request.
#[test]
fn a_body_sent_after_an_answer_to_its_expect_still_goes() {
    let test = "a_body_sent_after_an_answer_to_its_expect_still_goes";
    let run = side_by_side(test, After::EchoesOnHead, 2, |front, _| {
        expect_answered_then_body(front)
    });
    assert_eq!(
        run.seen,
        (Some(true), Some((200, BODY)), Some((200, "next".into())))
    );
    next_after_a_whole_exchange(run.lines);
}

/// A client that stops sending its body after a whole early answer, its server still
/// connected and waiting for the rest: `timeout client` ends it, `cD--` (neither
/// connection is held longer).
#[test]
fn a_client_idle_after_the_answer_times_out_while_the_server_waits() {
    let test = "a_client_idle_after_the_answer_times_out_while_the_server_waits";
    let run = side_by_side(test, After::Reads, 1, |front, _| {
        let (_c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| r.status);
        // Within the client's read timeout (10 s), past `timeout client` (2 s).
        let ended = matches!(reader.read(&mut [0u8; 1]), Ok(0));
        (early, ended)
    });
    assert_eq!(run.seen, (Some(413), true));
    assert_eq!(run.lines, [line("POST /up HTTP/1.1", "413", 69, "cD--")]);
}

/// An HTTP/2 server's early answer, while the body is on its way, reaches the client before
/// the body went (the server's stream is watched while the body goes), and the body still
/// goes on that stream; the connection then takes the next request.
#[test]
fn an_h2_servers_early_answer_comes_before_the_body() {
    let test = "an_h2_servers_early_answer_comes_before_the_body";
    if !require::path(test, Path::new(HAPROXY), "HAProxy (the HTTP/2 hop)") {
        return;
    }
    let run = side_by_side_over(test, (After::Reads, Hop::Http2), 2, |front, _| {
        let (mut c, mut reader) = upload(front, BODY);
        let early = read_response(&mut reader).map(|r| (r.status, r.body));
        c.write_all(&[b'a'; BODY - FIRST])
            .expect("sending the rest");
        c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("the next request");
        let next = read_response(&mut reader).map(|r| (r.status, r.body));
        (early, next)
    });
    assert_eq!(
        run.seen,
        (Some((413, "large".into())), Some((200, "next".into())))
    );
    let mut lines = run.lines;
    lines.sort();
    assert_eq!(
        (
            lines[0].request.as_str(),
            lines[0].status.as_str(),
            lines[0].flags.as_str()
        ),
        ("GET /next HTTP/1.1", "200", "----")
    );
    assert_eq!(
        (lines[1].status.as_str(), lines[1].flags.as_str()),
        ("413", "----")
    );
}

/// A body sent after an HTTP/2 server's answer on the head of an `Expect: 100-continue`
/// request (a streaming echo) still goes to the server on its stream, as HAProxy relays
/// it: the echo, which waits for the body, comes whole, and the connection takes the next
/// request.
#[test]
fn a_body_sent_after_an_h2_servers_answer_to_its_expect_still_goes() {
    let test = "a_body_sent_after_an_h2_servers_answer_to_its_expect_still_goes";
    if !require::path(test, Path::new(HAPROXY), "HAProxy (the HTTP/2 hop)") {
        return;
    }
    let run = side_by_side_over(test, (After::EchoesOnHead, Hop::Http2), 2, |front, _| {
        expect_answered_then_body(front)
    });
    assert_eq!(
        run.seen,
        (Some(true), Some((200, BODY)), Some((200, "next".into())))
    );
    // (Over HTTP/2 the responses' sizes are not an HTTP/1 server's.)
    let mut lines = run.lines;
    lines.sort();
    let ends: Vec<_> = lines
        .iter()
        .map(|l| (l.status.as_str(), l.flags.as_str()))
        .collect();
    assert_eq!(lines[0].request, "GET /next HTTP/1.1");
    assert_eq!(ends, [("200", "----"), ("200", "----")]);
}

/// An `Expect: 100-continue` POST whose answer comes before its body, then its body anyway,
/// then a next request on the connection: whether the answer's head came first, the echoed
/// response (status, body length) and the next one (status, body).
type ExpectRun = (Option<bool>, Option<(u16, usize)>, Option<(u16, String)>);

fn expect_answered_then_body(front: SocketAddr) -> ExpectRun {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
         Content-Length: {BODY}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).expect("sending the head");
    let mut reader = BufReader::new(c.try_clone().expect("a clone"));
    // The answer's head before any of the body is sent.
    let came = reader
        .fill_buf()
        .map(|b| b.starts_with(b"HTTP/1.1 200"))
        .ok();
    c.write_all(&[b'b'; BODY]).expect("sending the body");
    let echoed = read_response(&mut reader).map(|r| (r.status, r.body.len()));
    c.write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("the next request");
    let next = read_response(&mut reader).map(|r| (r.status, r.body));
    (came, echoed, next)
}
