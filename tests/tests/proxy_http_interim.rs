//! A server's interim responses (`100 Continue`, `103 Early Hints`), side by side with
//! HAProxy 2.6: the same configuration and traffic through hapx-proxy and through HAProxy
//! (both at once, each on its own port with its own syslog socket), comparing what the
//! client saw and what each logged.
//!
//! HAProxy forwards each interim response at once, to an HTTP/2 client as a HEADERS frame
//! without END_STREAM (a client holding its body for the `100` then sends it at once), and
//! resets its transaction for the final response: until one comes the request has no
//! response time (`Tr` -1) and its status is logged 0, not -1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{Proxy, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, Syslog};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The request bodies' size: more than one write, less than the windows on the way.
const BODY: usize = 100_000;

/// The parts of a logged request that do not vary between runs: the status, the bytes
/// out, the termination flags, and whether it had a response time (`Tr` not -1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Logged {
    status: String,
    bytes: u64,
    flags: String,
    responded: bool,
}

/// One proxy's run: what its client saw, what it logged, and its `Tr` (which varies).
#[derive(Debug)]
struct Run<T> {
    seen: T,
    logged: Logged,
    tr: i64,
}

/// An `option httplog` line's parts (after its syslog header) and its `Tr`.
fn parse(line: &str) -> Option<(Logged, i64)> {
    let words: Vec<&str> = line.split(' ').collect();
    let tr: i64 = words.get(4)?.split('/').nth(3)?.parse().ok()?;
    let logged = Logged {
        status: words.get(5)?.to_string(),
        bytes: words.get(6)?.parse().ok()?,
        flags: words.get(9)?.to_string(),
        responded: tr != -1,
    };
    Some((logged, tr))
}

/// Runs `traffic` through hapx-proxy and through HAProxy at once, each in front of its own
/// [`interim_server`] (`traffic` gets the server's word of each connection it accepted),
/// and asserts both saw and logged the same (one request each); returns what hapx's client
/// saw and logged.
fn side_by_side<T: Send + PartialEq + std::fmt::Debug>(
    test: &str,
    traffic: impl Fn(SocketAddr, &Receiver<()>) -> T + Sync,
) -> (T, Logged) {
    side_by_side_with(test, "", traffic)
}

/// [`side_by_side`] with these lines (each ending in a line feed) in the backend.
fn side_by_side_with<T: Send + PartialEq + std::fmt::Debug>(
    test: &str,
    backend: &str,
    traffic: impl Fn(SocketAddr, &Receiver<()>) -> T + Sync,
) -> (T, Logged) {
    let (ours, theirs) = both_runs(test, backend, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(
            (&ours.seen, &ours.logged),
            (&theirs.seen, &theirs.logged),
            "{test}: seen and logged (hapx, HAProxy)"
        );
    }
    (ours.seen, ours.logged)
}

/// hapx's run and HAProxy's, at once; HAProxy's is skipped loudly when it is not installed
/// (failing under CI).
fn both_runs<T: Send>(
    test: &str,
    backend: &str,
    traffic: impl Fn(SocketAddr, &Receiver<()>) -> T + Sync,
) -> (Run<T>, Option<Run<T>>) {
    let has_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let run = |binary| run(binary, test, backend, &traffic);
    thread::scope(|s| {
        let theirs = has_haproxy.then(|| s.spawn(|| run(PathBuf::from(HAPROXY))));
        let ours = run(bins::path("hapx-proxy"));
        (ours, theirs.map(|t| t.join().expect("HAProxy's run")))
    })
}

fn run<T>(
    binary: PathBuf,
    test: &str,
    backend: &str,
    traffic: &impl Fn(SocketAddr, &Receiver<()>) -> T,
) -> Run<T> {
    let (server, accepted) = interim_server();
    let sink = Syslog::bind();
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  log {} local0 info\ndefaults\n  mode http\n  log global\n  option httplog\n  \
         retries 0\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n{backend}  server s1 {server}\n",
        sink.addr
    );
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("proxy")
        .to_string();
    let dir = temp_dir(&format!("{test}-{name}"));
    let _proxy = Proxy::start_with(binary, &dir, &name, &config, front, &[]);
    let seen = traffic(front, &accepted);
    // (Other messages, HAProxy's start notices, may come first.)
    let (logged, tr) = std::iter::from_fn(|| sink.lines(1).pop())
        .filter(|l| l.contains('"') && l.split(' ').nth(2) == Some("fe"))
        .find_map(|l| parse(&l))
        .expect("the request's log line");
    Run { seen, logged, tr }
}

/// A server answering by path, once it has a request's head: `/continue` with `100
/// Continue`, `/hints` with a `103 Early Hints` carrying a `Link` header; either then reads
/// the whole body (its Content-Length) and answers 200 with its length; `/plain` does so
/// without an interim response. `/leave` answers
/// `100 Continue` and reads until the connection ends, answering nothing. `/halves` reads
/// the first half of the body before its `103`. Each connection it accepts is told on the
/// receiver.
fn interim_server() -> (SocketAddr, Receiver<()>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding the server");
    let addr = listener.local_addr().expect("its address");
    let (accepted, accepts) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = accepted.send(());
            thread::spawn(move || serve(conn));
        }
    });
    (addr, accepts)
}

fn serve(conn: TcpStream) {
    let mut writer = conn.try_clone().expect("a clone");
    let mut reader = BufReader::new(conn);
    while let Some((path, mut length)) = read_head(&mut reader) {
        if path == "/halves" {
            let mut half = vec![0; length / 2];
            if reader.read_exact(&mut half).is_err() {
                return;
            }
            length -= half.len();
        }
        let interim: &[u8] = match path.as_str() {
            "/hints" | "/halves" => {
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
            }
            "/plain" => b"",
            _ => b"HTTP/1.1 100 Continue\r\n\r\n",
        };
        if writer.write_all(interim).is_err() {
            return;
        }
        if path == "/leave" {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            return;
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let got = format!("got {length}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{got}",
            got.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads a request head: its path and Content-Length (0 without); None at the end.
fn read_head(reader: &mut impl BufRead) -> Option<(String, usize)> {
    let mut start = String::new();
    if reader.read_line(&mut start).ok()? == 0 {
        return None;
    }
    let path = start.split(' ').nth(1)?.to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            return Some((path, length));
        }
    }
}

/// What an HTTP/2 client (curl, prior knowledge) saw of a POST of [`BODY`] bytes to
/// `path`: the response heads' lines as curl tells them (`< ...`, in order), and the body.
/// With `Expect: 100-continue`, curl holds the body for the `100` up to its timeout, set
/// far beyond the test's: a `100` not forwarded leaves the heads without it.
fn h2_post(test: &str, front: SocketAddr, path: &str, expect: bool) -> (Vec<String>, String) {
    // One directory per proxy: both run at once, and one's directory is removed when done.
    let dir = temp_dir(&format!("{test}-body-{}", front.port()));
    let file = dir.join("body");
    std::fs::write(&file, vec![b'a'; BODY]).expect("writing the body");
    let mut curl = Command::new("curl");
    curl.args(["-sv", "--max-time", "20", "--http2-prior-knowledge"])
        .args(["--expect100-timeout", "15", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(format!("http://{front}{path}"));
    // (curl announces it itself for a body this size; without, it is told not to.)
    curl.args([
        "-H",
        if expect {
            "Expect: 100-continue"
        } else {
            "Expect:"
        },
    ]);
    let out = curl.output().expect("running curl");
    let heads = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("< ") && l.trim() != "<")
        .filter(|l| !l.starts_with("< date:"))
        .map(|l| l.trim_end().to_string())
        .collect();
    (heads, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A server's `100 Continue` to an HTTP/2 client announcing `Expect: 100-continue` goes to
/// it as a HEADERS frame of its own, before the final response; the client sends its body
/// on it and gets the server's answer to the whole body.
#[test]
fn an_h2_client_gets_the_servers_100_continue_before_its_body() {
    let test = "an_h2_client_gets_the_servers_100_continue_before_its_body";
    if !require::command(test, "curl") {
        return;
    }
    let (seen, logged) = side_by_side(test, |front, _| h2_post(test, front, "/continue", true));
    let (heads, body) = seen;
    assert_eq!(heads[0], "< HTTP/2 100", "{heads:?}");
    assert_eq!(heads[1], "< HTTP/2 200", "{heads:?}");
    assert_eq!(body, format!("got {BODY}"));
    assert_eq!(
        (logged.status.as_str(), logged.flags.as_str()),
        ("200", "----")
    );
    assert!(logged.responded, "{logged:?}");
}

/// A server's `103 Early Hints` goes to an HTTP/2 client with its headers, before the final
/// response.
#[test]
fn an_h2_client_gets_early_hints_with_their_headers() {
    let test = "an_h2_client_gets_early_hints_with_their_headers";
    if !require::command(test, "curl") {
        return;
    }
    let (seen, logged) = side_by_side(test, |front, _| h2_post(test, front, "/hints", false));
    let (heads, body) = seen;
    assert_eq!(
        heads[..3],
        [
            "< HTTP/2 103",
            "< link: </s.css>; rel=preload",
            "< HTTP/2 200"
        ],
        "{heads:?}"
    );
    assert_eq!(body, format!("got {BODY}"));
    assert_eq!(
        (logged.status.as_str(), logged.flags.as_str()),
        ("200", "----")
    );
}

/// A client leaving mid-body after the server's `100 Continue`: no final response, so no
/// response time (`Tr` -1) and the status HAProxy's reset transaction has, 0 (not -1);
/// `CD--`.
#[test]
fn a_client_leaving_after_an_interim_answer_is_logged_with_status_0() {
    let test = "a_client_leaving_after_an_interim_answer_is_logged_with_status_0";
    let (seen, logged) = side_by_side(test, |front, _| {
        let mut c = TcpStream::connect(front).expect("connecting");
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!("POST /leave HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
        c.write_all(&[head.as_bytes(), &[b'a'; 100]].concat())
            .expect("sending the head and the body's start");
        let mut reader = BufReader::new(c.try_clone().expect("a clone"));
        let mut status = String::new();
        reader.read_line(&mut status).expect("the interim response");
        let mut blank = String::new();
        reader.read_line(&mut blank).expect("its end");
        c.shutdown(Shutdown::Write).expect("leaving mid-body");
        // The proxy closes once it saw the client leave.
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        (status.trim_end().to_string(), rest.is_empty())
    });
    assert_eq!(seen, ("HTTP/1.1 100 Continue".to_string(), true));
    assert_eq!(
        logged,
        Logged {
            status: "0".into(),
            bytes: 40,
            flags: "CD--".into(),
            responded: false,
        }
    );
}

/// `Tr` runs from the server connection to the final response's head, the body's upload
/// in it, not to an interim response sent mid-body: the client, once the server has its
/// connection, shows that nothing comes before the body's first half (for a while its
/// reads wait on), then sends that half; the server's `103` comes, then the client sends the
/// rest, and the server answers once it has it. The logged `Tr` is at least the time from
/// the server's connection to the body's end (a bound by causality, whatever the load).
#[test]
fn tr_counts_to_the_final_head_from_the_connection() {
    let test = "tr_counts_to_the_final_head_from_the_connection";
    let (ours, theirs) = both_runs(test, "", |front, accepted| {
        let mut c = TcpStream::connect(front).expect("connecting");
        let head = format!("POST /halves HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
        c.write_all(head.as_bytes()).expect("sending the head");
        accepted.recv().expect("the server's connection");
        let connected = Instant::now();
        // Nothing answers a request whose body has not come.
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let early = c.read(&mut [0; 1]).map_err(|e| e.kind());
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&[b'a'; BODY / 2])
            .expect("the body's first half");
        let mut reader = BufReader::new(c.try_clone().expect("a clone"));
        let mut interim = String::new();
        reader.read_line(&mut interim).expect("the 103");
        c.write_all(&[b'a'; BODY - BODY / 2]).expect("the rest");
        let uploaded = connected.elapsed().as_millis() as i64;
        let mut answer = Vec::new();
        let _ = c.shutdown(Shutdown::Write);
        let _ = reader.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let seen = (
            early.is_err(),
            interim.trim_end().to_string(),
            answer.ends_with(&format!("got {}", BODY - BODY / 2)),
        );
        (seen, uploaded)
    });
    let runs = std::iter::once(("hapx", &ours)).chain(theirs.as_ref().map(|t| ("HAProxy", t)));
    for (name, run) in runs {
        let (seen, uploaded) = &run.seen;
        assert_eq!(*seen, (true, "HTTP/1.1 103 Early Hints".to_string(), true));
        assert_eq!(
            (run.logged.status.as_str(), run.logged.flags.as_str()),
            ("200", "----")
        );
        // (Milliseconds, each rounded down.)
        assert!(
            run.tr >= uploaded - 1,
            "{name}: Tr {} < the upload's {uploaded} ms",
            run.tr
        );
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours.logged, theirs.logged, "{test}: logged (hapx, HAProxy)");
    }
}

/// A backend balancing on a POST's body (`balance url_param ... check_post`) waits for the
/// body before it picks a server: an HTTP/2 client announcing `Expect: 100-continue` is
/// told to send it by the proxy's own `100`, a HEADERS frame of its own (HAProxy's
/// `http_handle_expect_hdr`: an HTTP/2 request is HTTP/1.1 to it), not left waiting for one
/// until its own timeout (beyond the proxy's here: the request would fail, 408).
#[test]
fn an_h2_client_waited_for_by_url_param_gets_the_proxys_100() {
    let test = "an_h2_client_waited_for_by_url_param_gets_the_proxys_100";
    if !require::command(test, "curl") {
        return;
    }
    let backend = "  balance url_param id check_post\n";
    let (seen, logged) = side_by_side_with(test, backend, |front, _| {
        h2_post(test, front, "/plain", true)
    });
    let (heads, body) = seen;
    assert_eq!(
        heads.first().map(String::as_str),
        Some("< HTTP/2 100"),
        "{heads:?}"
    );
    assert!(heads.iter().any(|h| h == "< HTTP/2 200"), "{heads:?}");
    assert_eq!(body, format!("got {BODY}"));
    assert_eq!(
        (logged.status.as_str(), logged.flags.as_str()),
        ("200", "----")
    );
}
