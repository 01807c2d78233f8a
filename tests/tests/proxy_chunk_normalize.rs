//! Chunked bodies are framed anew as they cross the proxy, both ways, as HAProxy 2.6 does:
//! its HTTP/1 layer decodes a body and encodes it again, so that a peer never sees the
//! sender's own framing (bare LF line ends, chunk extensions, odd trailer spellings), which
//! it might parse differently from the proxy (request smuggling).
//!
//! Each case is a body sent in pieces, each piece sent once the receiver got the data of
//! the ones before (so that it crossed the proxy in a read of its own), side by side with
//! HAProxy. How chunks are cut follows the reads, so what is compared is what does not
//! depend on them: the head, the decoded data, the last chunk and trailers as bytes, the
//! framing's faults (none: every line ends with CRLF, each size is upper-case hex without
//! leading zeros nor extensions, each trailer `name: value` lower-case and trimmed), and
//! the sizes logged.
//!
//! Trailers also cross between HTTP/2 and chunked HTTP/1 (an HTTP/2 client's request
//! trailers end its body's last chunk; an HTTP/1 server's trailers reach an HTTP/2 client
//! as a last HEADERS), and `h1-case-adjust` spells trailer names as it spells header names.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::free_port;
use hapx_tests::proxy_rules::{Syslog, TIMEOUTS, side_by_side};
use hapx_tests::wait::eventually;

/// How long a receiver may take to get what was sent.
const PATIENCE: Duration = Duration::from_secs(10);

/// A body sent in pieces, and the last chunk and trailers HAProxy 2.6.12 forwards for it.
struct Case {
    name: &'static str,
    pieces: Vec<Vec<u8>>,
    ending: &'static [u8],
}

fn cases() -> Vec<Case> {
    let small_chunks: String = (0..300)
        .map(|i| format!("1\r\n{}\r\n", char::from(b'a' + (i % 26) as u8)))
        .chain(["a\r\n0123456789\r\n0\r\n\r\n".to_string()])
        .collect();
    let case = |name, pieces: &[&[u8]], ending| Case {
        name,
        pieces: pieces.iter().map(|p| p.to_vec()).collect(),
        ending,
    };
    vec![
        case(
            "bare LF, extensions, blanks, upper-case trailers",
            &[b"3;ext=1\nabc\n00A;x=\"y\"\r\n0123456789\r\n1 \t\r\nx\n0;e\r\nX-Sum: 1\r\nFoo-Bar:  baz \r\nTag:\r\n\n"],
            b"0\r\nx-sum: 1\r\nfoo-bar: baz\r\ntag: \r\n\r\n",
        ),
        case("many small chunks", &[small_chunks.as_bytes()], b"0\r\n\r\n"),
        case(
            "chunks split across reads",
            &[
                b"5\r\nab",
                b"cde\r\n3\r",
                b"\nfgh\n0\r\nX-A: 1\r\n",
                b"\r\n",
            ],
            b"0\r\nx-a: 1\r\n\r\n",
        ),
        case("a zero-length body", &[b"0\r\n\r\n"], b"0\r\n\r\n"),
        case(
            "trailers in a read of their own",
            &[b"4;last\r\ndata\r\n", b"0\r\nX-Late: Yes\r\n\r\n"],
            b"0\r\nx-late: Yes\r\n\r\n",
        ),
        case(
            "a size with leading zeros cut across reads",
            &[b"00", b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"],
            b"0\r\n\r\n",
        ),
    ]
}

/// A chunked message as far as it came, parsed leniently, with what strict framing
/// (HAProxy's) would not have.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Received {
    head: String,
    data: Vec<u8>,
    /// The last chunk's line through the empty line after the trailers, once whole.
    ending: Option<Vec<u8>>,
    faults: Vec<String>,
}

fn parse(raw: &[u8]) -> Received {
    let mut got = Received::default();
    let Some(head_end) = find(raw, b"\r\n\r\n").map(|at| at + 4) else {
        return got;
    };
    got.head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut at = head_end;
    // Each complete line from `at` without its line end, checked for its CRLF.
    let next_line = |at: &mut usize, faults: &mut Vec<String>| {
        let end = raw[*at..].iter().position(|&b| b == b'\n')? + *at + 1;
        let line = &raw[*at..end];
        *at = end;
        match line.strip_suffix(b"\r\n") {
            Some(line) => Some(line),
            None => {
                faults.push(format!(
                    "line without CRLF: {:?}",
                    String::from_utf8_lossy(line)
                ));
                line.strip_suffix(b"\n")
            }
        }
    };
    loop {
        let line_start = at;
        let Some(size_line) = next_line(&mut at, &mut got.faults) else {
            return got;
        };
        let text = String::from_utf8_lossy(size_line).into_owned();
        let digits = text.split([';', ' ', '\t']).next().unwrap_or_default();
        let well_written = !digits.is_empty()
            && digits == text
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            && (digits == "0" || !digits.starts_with('0'));
        if !well_written {
            got.faults.push(format!("size line {text:?}"));
        }
        let Ok(size) = usize::from_str_radix(digits.trim_end(), 16) else {
            got.faults.push(format!("unreadable size {text:?}"));
            return got;
        };
        if size == 0 {
            while let Some(trailer) = next_line(&mut at, &mut got.faults) {
                if trailer.is_empty() {
                    got.ending = Some(raw[line_start..at].to_vec());
                    return got;
                }
                check_trailer(trailer, &mut got.faults);
            }
            return got;
        }
        let data_end = (at + size).min(raw.len());
        got.data.extend_from_slice(&raw[at..data_end]);
        at = data_end;
        match &raw[at..] {
            [] | [b'\r'] => return got,
            [b'\r', b'\n', ..] => at += 2,
            [b'\n', ..] => {
                got.faults.push("chunk data ended by a bare LF".into());
                at += 1;
            }
            _ => {
                got.faults.push("chunk data without its CRLF".into());
                return got;
            }
        }
    }
}

/// A trailer as HAProxy writes it: `name: value`, the name lower-case, the value trimmed.
fn check_trailer(line: &[u8], faults: &mut Vec<String>) {
    let text = String::from_utf8_lossy(line);
    let well_written = text.split_once(": ").is_some_and(|(name, value)| {
        !name.is_empty()
            && !name.bytes().any(|b| b.is_ascii_uppercase())
            && value == value.trim_matches([' ', '\t'])
    });
    if !well_written {
        faults.push(format!("trailer {text:?}"));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The data of `pieces` as a lenient parser reads it.
fn data_of(pieces: &[Vec<u8>]) -> Vec<u8> {
    parse(&[b"H\r\n\r\n".as_slice(), &pieces.concat()].concat()).data
}

/// Sends `pieces` through `send`, each once `received` (what the other end got so far)
/// holds the data of the ones before: each crosses the proxy in a read of its own.
fn send_in_pieces(
    pieces: &[Vec<u8>],
    received: &Mutex<Vec<u8>>,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for (i, piece) in pieces.iter().enumerate() {
        let before = data_of(&pieces[..i]).len();
        let got = || {
            parse(&received.lock().expect("the receiver's bytes"))
                .data
                .len()
        };
        if !eventually(PATIENCE, || got() >= before) {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        send(piece)?;
    }
    Ok(())
}

/// Reads from `conn` into `into` until `whole` says the message there is whole (or EOF).
fn receive(conn: &mut TcpStream, into: &Mutex<Vec<u8>>, whole: impl Fn(&[u8]) -> bool) {
    let _ = conn.set_read_timeout(Some(PATIENCE));
    let mut buf = [0u8; 16384];
    loop {
        if whole(&into.lock().expect("received bytes")) {
            return;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => into
                .lock()
                .expect("received bytes")
                .extend_from_slice(&buf[..n]),
        }
    }
}

fn chunked_whole(raw: &[u8]) -> bool {
    parse(raw).ending.is_some()
}

/// A server that records each request it gets (a chunked body whole), and answers
/// `GET /response/N` with case N's body in pieces, each once the client (`client_got`)
/// got the data before it, anything else with an empty 200.
struct Server {
    addr: SocketAddr,
    /// What the server got on its latest connection.
    got: Arc<Mutex<Vec<u8>>>,
    /// What the client got of the latest response.
    client_got: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the server");
        let addr = listener.local_addr().expect("its address");
        let got = Arc::new(Mutex::new(Vec::new()));
        let client_got = Arc::new(Mutex::new(Vec::new()));
        let (got2, client_got2) = (got.clone(), client_got.clone());
        thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                got2.lock().expect("the server's bytes").clear();
                serve(&mut conn, &got2, &client_got2);
            }
        });
        Server {
            addr,
            got,
            client_got,
        }
    }
}

fn serve(conn: &mut TcpStream, got: &Mutex<Vec<u8>>, client_got: &Mutex<Vec<u8>>) {
    receive(conn, got, |raw| {
        let Some(end) = find(raw, b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        !head.contains("transfer-encoding: chunked") || chunked_whole(raw)
    });
    let head = String::from_utf8_lossy(&got.lock().expect("the server's bytes")).into_owned();
    let asked = head
        .strip_prefix("GET /response/")
        .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok());
    let Some(case) = asked.and_then(|n| cases().into_iter().nth(n)) else {
        let _ =
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    let mut pieces = case.pieces;
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n";
    pieces[0].splice(0..0, head.iter().copied());
    let _ = send_in_pieces(&pieces, client_got, |piece| conn.write_all(piece));
}

/// Case `n`'s body sent by the client to the server: what the server got.
fn request_through(front: SocketAddr, server: &Server, n: usize, case: &Case) -> Received {
    // (The server is done with the previous exchange: what it got then is not waited on.)
    server.got.lock().expect("the server's bytes").clear();
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    let mut pieces = case.pieces.clone();
    let head =
        format!("POST /request/{n} HTTP/1.1\r\nhost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    pieces[0].splice(0..0, head.bytes());
    let sent = send_in_pieces(&pieces, &server.got, |piece| conn.write_all(piece));
    assert!(sent.is_ok(), "{}: sending the request: {sent:?}", case.name);
    let answer = Mutex::new(Vec::new());
    receive(&mut conn, &answer, |raw| find(raw, b"\r\n\r\n").is_some());
    parse(&server.got.lock().expect("the server's bytes"))
}

/// Case `n`'s body sent by the server to the client: what the client got.
fn response_through(front: SocketAddr, server: &Server, n: usize) -> Received {
    server
        .client_got
        .lock()
        .expect("the client's bytes")
        .clear();
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    let request = format!("GET /response/{n} HTTP/1.1\r\nhost: x\r\n\r\n");
    conn.write_all(request.as_bytes())
        .expect("sending the request");
    receive(&mut conn, &server.client_got, chunked_whole);
    parse(&server.client_got.lock().expect("the client's bytes"))
}

/// The next `count` access log lines (those starting with `log:`), sorted.
fn access_lines(log: &Syslog, count: usize) -> Vec<String> {
    let mut lines = Vec::new();
    while lines.len() < count {
        let Some(line) = log.lines(1).pop() else {
            break;
        };
        if let Some(line) = line.strip_prefix("log: ") {
            lines.push(line.to_string());
        }
    }
    lines.sort();
    lines
}

#[test]
fn chunked_bodies_are_framed_anew_both_ways() {
    let test = "chunked_bodies_are_framed_anew_both_ways";
    let server = Server::start();
    let log = Syslog::bind();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  log {} local0 info\ndefaults\n  mode http\n  log global\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  log-format \"log: %HU %ST %U %B %ts\"\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        log.addr, server.addr
    );
    let cases = cases();
    let traffic = |front: SocketAddr| {
        let mut seen = Vec::new();
        for (n, case) in cases.iter().enumerate() {
            seen.push(request_through(front, &server, n, case));
            seen.push(response_through(front, &server, n));
        }
        (seen, access_lines(&log, 2 * cases.len()))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    for (i, got) in ours.0.iter().enumerate() {
        let case = &cases[i / 2];
        let way = ["request", "response"][i % 2];
        let what = format!("{}, {way}", case.name);
        assert_eq!(got.faults, Vec::<String>::new(), "{what}");
        assert_eq!(got.data, data_of(&case.pieces), "{what}");
        let ending = got.ending.as_deref().map(String::from_utf8_lossy);
        assert_eq!(ending, Some(String::from_utf8_lossy(case.ending)), "{what}");
    }
    assert_eq!(ours.1.len(), 2 * cases.len(), "{:?}", ours.1);
    if let Some(theirs) = theirs {
        for (i, (mine, haproxy)) in ours.0.iter().zip(&theirs.0).enumerate() {
            assert_eq!(
                mine,
                haproxy,
                "{}, {}",
                cases[i / 2].name,
                ["request", "response"][i % 2]
            );
        }
        assert_eq!(ours.1, theirs.1);
    }
}

/// An HTTP/2 frame of `kind` with `flags` on `stream`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HPACK block of literal fields (not indexed, no Huffman coding), after `indexed` ones.
fn header_block(indexed: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = indexed.to_vec();
    for (name, value) in fields {
        block.push(0);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// A POST without a length from an HTTP/2 client, its body in two DATA frames, ended by
/// trailers: what the HTTP/1 server got (the body chunked, the trailers its last chunk's).
fn h2_request_with_trailers(front: SocketAddr, server: &Server) -> Received {
    server.got.lock().expect("the server's bytes").clear();
    let mut conn = TcpStream::connect(front).expect("connecting to the proxy");
    let (end_stream, end_headers) = (0x01, 0x04);
    // `:method POST`, `:scheme http`, `:path /` from the static table, `:authority x`.
    let head = header_block(&[0x83, 0x86, 0x84, 0x01, 0x01, b'x'], &[]);
    let trailers = header_block(&[], &[("x-req-tr", "v1"), ("x-other", "a b")]);
    let frames = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        frame(4, 0, 0, &[]),
        frame(1, end_headers, 1, &head),
        frame(0, 0, 1, b"hello "),
        frame(0, 0, 1, b"world"),
        frame(1, end_stream | end_headers, 1, &trailers),
    ];
    conn.write_all(&frames.concat())
        .expect("sending the request");
    let whole = eventually(PATIENCE, || {
        chunked_whole(&server.got.lock().expect("the server's bytes"))
    });
    assert!(
        whole,
        "the server did not get the whole request: {:?}",
        String::from_utf8_lossy(&server.got.lock().expect("the server's bytes"))
    );
    parse(&server.got.lock().expect("the server's bytes"))
}

/// Case `n`'s response through an HTTP/2 client (`nghttp`): its data and the trailer
/// fields after it.
fn h2_response(front: SocketAddr, n: usize) -> (String, Vec<String>) {
    let out = std::process::Command::new("nghttp")
        .args(["-v", "-t", "10", &format!("http://{front}/response/{n}")])
        .output()
        .expect("running nghttp");
    let text = String::from_utf8_lossy(&out.stdout);
    // `-v` shows each frame after its content: a DATA frame's data (here without a line
    // feed) just before its line, the trailer fields after the last one.
    let data = (text.lines())
        .filter_map(|line| line.split_once("recv DATA frame"))
        .map(|(before, _)| before.rsplit_once('[').map_or(before, |(data, _)| data))
        .collect();
    let after = &text[text.rfind("recv DATA frame").unwrap_or(text.len())..];
    let trailers = after
        .lines()
        .filter_map(|line| line.split_once("recv (stream_id=13) "))
        .map(|(_, field)| field.to_string())
        .collect();
    (data, trailers)
}

#[test]
fn trailers_cross_between_http2_and_chunked_http1() {
    let test = "trailers_cross_between_http2_and_chunked_http1";
    if !hapx_tests::require::command(test, "nghttp") {
        return;
    }
    let server = Server::start();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front} proto h2\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        server.addr
    );
    let traffic = |front: SocketAddr| {
        (
            h2_request_with_trailers(front, &server),
            h2_response(front, 0),
        )
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    let (request, (data, trailers)) = &ours;
    assert_eq!(request.faults, Vec::<String>::new());
    assert_eq!(request.data, b"hello world");
    let ending = request.ending.as_deref().map(String::from_utf8_lossy);
    assert_eq!(
        ending.as_deref(),
        Some("0\r\nx-req-tr: v1\r\nx-other: a b\r\n\r\n")
    );
    assert_eq!(data, "abc0123456789x");
    assert_eq!(trailers, &["x-sum: 1", "foo-bar: baz", "tag: "]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// `h1-case-adjust` spells trailer names as it spells header names, both ways.
#[test]
fn trailer_names_follow_h1_case_adjust() {
    let test = "trailer_names_follow_h1_case_adjust";
    let server = Server::start();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  h1-case-adjust x-late X-LATE\ndefaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  option h1-case-adjust-bogus-client\n  default_backend be\n\
         backend be\n  option h1-case-adjust-bogus-server\n  server s1 {}\n",
        server.addr
    );
    let cases = cases();
    let (n, case) = (cases.iter().enumerate())
        .find(|(_, case)| case.name == "trailers in a read of their own")
        .expect("the case with a trailer");
    let traffic = |front: SocketAddr| {
        [
            request_through(front, &server, n, case),
            response_through(front, &server, n),
        ]
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    for got in &ours {
        assert_eq!(got.faults.len(), 1, "{:?}", got.faults);
        assert!(got.faults[0].contains("X-LATE"), "{:?}", got.faults);
        let ending = got.ending.as_deref().map(String::from_utf8_lossy);
        assert_eq!(ending.as_deref(), Some("0\r\nX-LATE: Yes\r\n\r\n"));
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
