//! Two small HTTP behaviours beside HAProxy 2.6:
//! - `timeout server` is one timer through a `tcp-response inspect-delay` hold in `mode
//!   http`: a server silent past it gets its 504 (`sH--`) when it runs out, not once more
//!   after the hold (or after the delay);
//! - chunked bodies with lowercase sizes, leading zeros, blanks and extensions, and
//!   trailers, reach each peer with the same data and trailers and are logged with the
//!   same sizes (HAProxy re-chunks on the wire; the decoded message is what must agree).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use hapx_tests::proxy::{free_port, silent_server};
use hapx_tests::proxy_rules::{Syslog, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The longest any read of a test waits (an upper bound, never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);

/// What one request's log line says: `%Tr %Tt %ST %B %U %tsc`, for the sections compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Logged {
    section: String,
    response_ms: i64,
    total_ms: i64,
    rest: String,
}

const LOG_FORMAT: &str = "%ft %Tr %Tt %ST %B %U %tsc";

impl Logged {
    fn parse(line: &str) -> Logged {
        let words: Vec<&str> = line.split(' ').collect();
        let number = |i: usize| -> i64 {
            let word = words.get(i).unwrap_or(&"");
            word.parse()
                .unwrap_or_else(|_| panic!("a timer at {i}: {line}"))
        };
        Logged {
            section: words[0].to_string(),
            response_ms: number(1),
            total_ms: number(2),
            rest: words[3..].join(" "),
        }
    }
}

fn config(log: SocketAddr, sections: &str) -> String {
    format!(
        "global\n  log {log} local0\ndefaults\n  mode http\n  log global\n  \
         log-format \"{LOG_FORMAT}\"\n  timeout client 10s\n  timeout connect 5s\n{sections}"
    )
}

/// One request on a new connection; the response as it came, until it is `whole` or the
/// proxy closed.
fn ask(port: u16, request: &[u8], whole: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut conn = TcpStream::connect((LO, port)).expect("connecting to the proxy");
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !whole(&got) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// `timeout server` shorter than `tcp-response inspect-delay` (`held`), a delay shorter than
/// it (`short`), and no rules (`plain`, the reference), each to a server that never answers.
const TIMEOUT_SECTIONS: [(&str, &str); 3] = [
    (
        "held",
        "  timeout server 400ms\n  tcp-response inspect-delay 5s\n  tcp-response content reject if { res.len gt 0 }\n",
    ),
    (
        "short",
        "  timeout server 600ms\n  tcp-response inspect-delay 500ms\n  tcp-response content accept if { res.len gt 0 }\n",
    ),
    ("plain", "  timeout server 400ms\n"),
];

/// The server's timeout through an inspection hold: 504 `sH--` with no response time, as
/// HAProxy, when `timeout server` runs out from the request's sending (not after the hold,
/// nor after the delay: compared with the section without rules and with HAProxy's own).
#[test]
fn server_timeout_runs_through_a_response_inspection() {
    let server = silent_server();
    let log = Syslog::bind();
    let ports: Vec<u16> = TIMEOUT_SECTIONS.iter().map(|_| free_port()).collect();
    let sections: String = TIMEOUT_SECTIONS
        .iter()
        .zip(&ports)
        .map(|((name, rules), port)| {
            format!("listen {name}\n  bind {LO}:{port}\n{rules}  server s {server}\n")
        })
        .collect();
    let cfg = config(log.addr, &sections);
    let front = SocketAddr::from((LO, ports[0]));
    let traffic = |_| {
        let mut logged = Vec::new();
        for port in &ports {
            let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
            let answer = ask(*port, request, |got| got.ends_with(b"</html>\n"));
            let status = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
            let line = log.lines(1).pop().expect("a log line");
            logged.push((status, Logged::parse(&line)));
        }
        logged
    };
    let (ours, theirs) = side_by_side("http-small-timeout", &cfg, front, traffic);
    for (name, run) in [("hapx", Some(&ours)), ("HAProxy", theirs.as_ref())] {
        let Some(run) = run else { continue };
        for ((status, line), (section, _)) in run.iter().zip(TIMEOUT_SECTIONS) {
            assert_eq!(status, "HTTP/1.1 504", "{name} {section}");
            assert_eq!(line.section, section, "{name}");
            assert_eq!(line.response_ms, -1, "{name} {line:?}");
            assert!(line.rest.starts_with("504 "), "{name} {line:?}");
            assert!(line.rest.ends_with(" sH--"), "{name} {line:?}");
        }
        // Not before the timeout, and no later after it than the section without rules
        // is after its own, give or take 200 ms (the timeout applied again after the hold,
        // or after the delay, would be 400 or 500 ms more).
        let plain_late = run[2].1.total_ms - 400;
        for (_, line) in &run[..2] {
            let timeout = if line.section == "short" { 600 } else { 400 };
            assert!(line.total_ms >= timeout, "{name} {line:?}");
            assert!(
                line.total_ms - timeout < plain_late + 200,
                "{name} {line:?}, {plain_late} ms late without rules"
            );
        }
    }
    if let Some(theirs) = theirs {
        for ((_, ours), (_, theirs)) in ours.iter().zip(&theirs) {
            assert_eq!((&ours.section, &ours.rest), (&theirs.section, &theirs.rest));
            // HAProxy's own time, with room for a loaded machine.
            assert!(
                ours.total_ms < theirs.total_ms * 3 / 2,
                "{ours:?} beside HAProxy's {theirs:?}"
            );
        }
    }
}

/// A request's body sent chunked with lowercase sizes, leading zeros, blanks after a size
/// and extensions, then a trailer.
const CHUNKED_BODY: &[u8] = b"a\r\n0123456789\r\n000a;name=val\r\nabcdefghij\r\n1A \r\n\
    ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\nff;x;y=\"q\"\r\n";
const TRAILERS: &[u8] = b"0\r\nX-Sum: 46\r\n\r\n";

/// The whole chunked body: [`CHUNKED_BODY`], 255 bytes, [`TRAILERS`].
fn chunked_body(fill: u8) -> Vec<u8> {
    let mut body = CHUNKED_BODY.to_vec();
    body.extend(std::iter::repeat_n(fill, 255));
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(TRAILERS);
    body
}

/// A chunked message's data and trailer fields (names in lower case) decoded from `body`.
fn decode_chunked(body: &[u8]) -> (Vec<u8>, Vec<String>) {
    let mut reader = BufReader::new(body);
    let mut data = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a size line");
        let digits: String = line.chars().take_while(char::is_ascii_hexdigit).collect();
        let size = usize::from_str_radix(&digits, 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).expect("a chunk");
        assert!(chunk.ends_with(b"\r\n"), "{line:?}");
        data.extend_from_slice(&chunk[..size]);
    }
    let trailers = reader
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase())
        .collect();
    (data, trailers)
}

/// The body after a message's head.
fn body_of(message: &[u8]) -> &[u8] {
    let at = message.windows(4).position(|w| w == b"\r\n\r\n");
    at.map_or(&[][..], |at| &message[at + 4..])
}

/// A server that hands over each request it received whole (chunked) and answers it with a
/// chunked body of its own.
fn chunked_server() -> (SocketAddr, Receiver<Vec<u8>>) {
    let listener = TcpListener::bind((LO, 0)).expect("a server socket");
    let addr = listener.local_addr().unwrap();
    let (tell, told) = channel();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            conn.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !(body_of(&got).ends_with(b"\r\n\r\n")) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tell.send(got);
            let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = conn.write_all(&[&head[..], &chunked_body(b'x')].concat());
        }
    });
    (addr, told)
}

/// Chunked bodies both ways: each peer decodes the same data and trailers through either
/// proxy, and both log the same sizes (`%B`, `%U`: HAProxy's internal message, not the
/// wire's chunk framing).
#[test]
fn chunked_bodies_reach_peers_alike_and_log_the_same_sizes() {
    let (server, requests) = chunked_server();
    let log = Syslog::bind();
    let port = free_port();
    let sections =
        format!("listen chunked\n  bind {LO}:{port}\n  timeout server 10s\n  server s {server}\n");
    let cfg = config(log.addr, &sections);
    let request = [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        &chunked_body(b'y'),
    ]
    .concat();
    let traffic = |front: SocketAddr| {
        let whole = |got: &[u8]| got.ends_with(b"46\r\n\r\n");
        let response = ask(front.port(), &request, whole);
        let received = requests.recv_timeout(PATIENCE).expect("the request");
        let line = Logged::parse(&log.lines(1).pop().expect("a log line"));
        (
            decode_chunked(body_of(&received)),
            decode_chunked(body_of(&response)),
            line.rest,
        )
    };
    let (ours, theirs) = side_by_side(
        "http-small-chunked",
        &cfg,
        SocketAddr::from((LO, port)),
        traffic,
    );
    let want = |fill: u8| {
        let mut data = b"0123456789abcdefghijABCDEFGHIJKLMNOPQRSTUVWXYZ".to_vec();
        data.extend(std::iter::repeat_n(fill, 255));
        (data, vec!["x-sum: 46".to_string()])
    };
    for (name, run) in [("hapx", Some(&ours)), ("HAProxy", theirs.as_ref())] {
        let Some((to_server, to_client, logged)) = run else {
            continue;
        };
        assert_eq!(to_server, &want(b'y'), "{name}: the server's request");
        assert_eq!(to_client, &want(b'x'), "{name}: the client's response");
        assert!(logged.starts_with("200 "), "{name}: {logged}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours.2, theirs.2, "the logged sizes, hapx then HAProxy");
    }
}
