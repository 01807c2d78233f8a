//! `balance url_param NAME [check_post]` with POST bodies, side by side with HAProxy 2.6:
//! the same configuration and requests through hapx-proxy and then through HAProxy, the
//! server of every request compared.
//!
//! As HAProxy 2.6 (which takes `check_post` and ignores it), a POST waits for its body
//! (all of it, or what fills HAProxy's buffer) before its server is chosen; without the
//! parameter in the query string, it is looked for in the body as `get_server_ph_post`
//! reads it (any content type; a chunked body's data joined; a value not starting with a
//! token character ends at once on a blank, else is no parameter), and without it either
//! the servers are taken in turn. A body that does not come within `timeout http-request`
//! gets 408 (`cR--`), a client leaving meanwhile gets nothing (`CR--`). A POST whose server
//! a stick entry chose waits too; only one whose persistence cookie chose it does not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::free_port;
use hapx_tests::proxy_rules::{Syslog, shape, side_by_side};

/// A server answering each request with its name, once it read the request's body (by its
/// Content-Length, or a chunked one to its end).
fn named_server(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || answer_each(conn, name));
        }
    });
    addr
}

fn answer_each(conn: TcpStream, name: &str) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.trim_end().to_ascii_lowercase();
            if lower.is_empty() {
                break;
            }
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            chunked |= lower.starts_with("transfer-encoding:") && lower.ends_with("chunked");
        }
        let read = if chunked {
            read_chunked(&mut reader)
        } else {
            reader.read_exact(&mut vec![0u8; length]).is_ok()
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
            name.len()
        );
        if !read || writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads a chunked body (without trailers) to its end.
fn read_chunked(reader: &mut impl BufRead) -> bool {
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).unwrap_or(0) == 0 {
            return false;
        }
        let Ok(n) = usize::from_str_radix(size.trim_end(), 16) else {
            return false;
        };
        // The data and its CRLF (the last chunk: the empty line).
        if reader.read_exact(&mut vec![0u8; n + 2]).is_err() {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

/// Four servers of distinct weights behind `balance url_param id check_post` with
/// `hash_type`, a frontend on `front`.
fn config(
    front: SocketAddr,
    hash_type: &str,
    servers: &[SocketAddr],
    log: Option<SocketAddr>,
) -> String {
    let global = log.map_or(String::new(), |l| {
        format!("global\n  log {l} local0 info\n")
    });
    let mut text = format!(
        "{global}defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 1s\n  \
         timeout client 5s\n  timeout server 5s\n  timeout http-request 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\n\
         backend be\n  balance url_param id check_post\n  hash-type {hash_type}\n"
    );
    for (i, (addr, weight)) in servers.iter().zip([1, 2, 3, 5]).enumerate() {
        text.push_str(&format!("  server s{} {addr} weight {weight}\n", i + 1));
    }
    text
}

fn servers() -> Vec<SocketAddr> {
    ["s1", "s2", "s3", "s4"]
        .into_iter()
        .map(named_server)
        .collect()
}

/// The server that answered `request` (sent in one write on a new connection), or what
/// came instead.
fn served(front: SocketAddr, request: &[u8]) -> String {
    let mut c = TcpStream::connect(front).expect("connecting");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(request).expect("sending");
    let mut reader = BufReader::new(c);
    let Some(r) = hapx_tests::proxy_rules::read_response(&mut reader) else {
        return "no answer".into();
    };
    if r.status == 200 {
        r.body
    } else {
        r.status.to_string()
    }
}

fn post(uri: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {uri} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The requests compared, each with what it shows.
fn requests() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for v in ["a", "b", "c", "d", "eight", "user-42", "x%20y"] {
        out.push((
            format!("GET ?id={v}"),
            format!("GET /?id={v} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
        ));
        out.push((
            format!("form id={v}"),
            post("/", FORM, format!("id={v}").as_bytes()),
        ));
        out.push((
            format!("form amid id={v}"),
            post("/p", FORM, format!("x=1&id={v}&y=2").as_bytes()),
        ));
        out.push((
            format!("text id={v}"),
            post("/", "text/plain", format!("id={v}").as_bytes()),
        ));
        out.push((
            format!("query wins {v}"),
            post("/?id=q", FORM, format!("id={v}").as_bytes()),
        ));
        let chunked = format!(
            "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nid=\r\n{:x}\r\n{v}\r\n0\r\n\r\n",
            v.len()
        );
        out.push((format!("chunked id={v}"), chunked.into_bytes()));
        out.push((
            format!("PUT id={v}"),
            format!(
                "PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\nid={v}",
                v.len() + 3
            )
            .into_bytes(),
        ));
    }
    for body in [
        "id=\u{1}b",
        "id= b",
        "id=",
        "id=&x=1",
        "xid=1",
        "id==1",
        "id",
    ] {
        out.push((format!("form {body:?}"), post("/", FORM, body.as_bytes())));
    }
    // Around the end of HAProxy's buffer: the parameter just in it, and just out of it.
    for pad in [15150, 15155, 15156, 15160, 20000] {
        let body = format!("k={}&id=ab", "z".repeat(pad));
        out.push((format!("padded {pad}"), post("/", FORM, body.as_bytes())));
    }
    out
}

/// Every request's server, for each hash type, as HAProxy's.
#[test]
fn post_bodies_choose_servers_as_haproxy() {
    let test = "post_bodies_choose_servers_as_haproxy";
    let servers = servers();
    let requests = requests();
    for hash_type in ["map-based", "consistent", "map-based djb2 avalanche"] {
        let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let text = config(front, hash_type, &servers, None);
        let traffic = |front| {
            (requests.iter())
                .map(|(what, raw)| (what.clone(), served(front, raw)))
                .collect::<Vec<_>>()
        };
        let (ours, theirs) = side_by_side(test, &text, front, traffic);
        if let Some(theirs) = theirs {
            for (mine, haproxy) in ours.iter().zip(&theirs) {
                assert_eq!(mine, haproxy, "{test}: {hash_type} (hapx, HAProxy)");
            }
        }
        // A form's parameter is the query string's.
        let of = |what: &str| ours.iter().find(|(w, _)| w == what).map(|(_, s)| s.clone());
        for v in ["a", "b", "c", "d", "eight"] {
            let get = of(&format!("GET ?id={v}"));
            assert_eq!(of(&format!("form id={v}")), get, "{hash_type}: {v}");
            assert_eq!(of(&format!("chunked id={v}")), get, "{hash_type}: {v}");
        }
        assert!(ours.iter().all(|(_, s)| s.starts_with('s')), "{ours:?}");
    }
}

/// The first `count` request lines `syslog` receives (start notices skipped); fewer if
/// one does not come within 10 s.
fn request_lines(syslog: &Syslog, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < count {
        let Some(line) = syslog.lines(1).pop() else {
            break;
        };
        if line.contains('"') {
            out.push(line);
        }
    }
    out
}

/// A POST whose body does not come: 408 after `timeout http-request` (`cR--`); a client
/// leaving meanwhile gets no answer (`CR--`, status -1). The log lines, numbers masked but
/// the status and size, as HAProxy's.
#[test]
fn a_body_that_does_not_come_gets_408() {
    let test = "a_body_that_does_not_come_gets_408";
    let servers = servers();
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let syslog = Syslog::bind();
    let text = config(front, "map-based", &servers, Some(syslog.addr));
    let partial = b"POST /?x=1 HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nid=b";
    let traffic = |front| {
        let slow = served(front, partial);
        let mut c = TcpStream::connect(front).expect("connecting");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(partial).expect("sending");
        c.shutdown(std::net::Shutdown::Write).expect("closing");
        let left = c.read(&mut [0u8; 64]).map_or(usize::MAX, |n| n);
        // Sorted: the first may be logged after the second connection ended.
        let mut lines: Vec<String> = request_lines(&syslog, 2)
            .iter()
            .map(|l| {
                let words: Vec<&str> = l.split(' ').collect();
                // Status, bytes, flags kept; the rest's numbers masked.
                let kept = [words.get(5), words.get(6), words.get(9)]
                    .map(|w| w.copied().unwrap_or_default().to_string());
                format!("{} {kept:?}", shape(l))
            })
            .collect();
        lines.sort();
        (slow, left, lines)
    };
    let (ours, theirs) = side_by_side(test, &text, front, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "{test} (hapx, HAProxy)");
    }
    assert_eq!(ours.0, "408");
    assert_eq!(
        ours.1, 0,
        "the leaving client's connection closed without an answer"
    );
    assert!(ours.2[0].contains("\"CR--\""), "{:?}", ours.2);
    assert!(ours.2[1].contains("\"cR--\""), "{:?}", ours.2);
}

/// A POST whose server its stick entry chose still waits for its body, as HAProxy's (its
/// stick rules come after the wait; only a persistence cookie skips it): a body that does
/// not come gets 408 (`cR--`) after `timeout http-request`. One whose cookie chose its
/// server goes to it at once, and waits for its body there: the server's timeout ends it
/// (504, `sH--`).
#[test]
fn only_a_cookie_skips_the_wait_for_a_posts_body() {
    let test = "only_a_cookie_skips_the_wait_for_a_posts_body";
    let servers = servers();
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let syslog = Syslog::bind();
    let text = config(front, "map-based", &servers, Some(syslog.addr)).replace(
        "  server s1 ",
        "  timeout server 1500ms\n  stick-table type ip size 10 expire 1m\n  stick on src\n  \
         cookie SRV\n  server s1 ",
    );
    let text = text.replace("weight 1\n", "weight 1 cookie c1\n");
    let partial = b"POST /?x=1 HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nid=b";
    let cookied =
        b"POST /?x=1 HTTP/1.1\r\nhost: x\r\ncookie: SRV=c1\r\ncontent-length: 100\r\n\r\nid=b";
    let traffic = |front| {
        // The first request stores the client's entry, which directs the next ones.
        let stuck = served(front, b"GET /?id=a HTTP/1.1\r\nhost: x\r\n\r\n");
        let answers = [served(front, partial), served(front, cookied)];
        let flags: Vec<String> = (request_lines(&syslog, 3).iter())
            .map(|l| l.split(' ').nth(9).unwrap_or_default().to_string())
            .collect();
        (stuck, answers, flags)
    };
    let (ours, theirs) = side_by_side(test, &text, front, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "{test} (hapx, HAProxy)");
    }
    assert!(ours.0.starts_with('s'), "{ours:?}");
    assert_eq!(ours.1, ["408", "504"], "{ours:?}");
    assert_eq!(ours.2[1..], ["cR--", "sH--"], "{ours:?}");
}

/// A POST announcing `Expect: 100-continue` is told to send its body before the wait for
/// it (a client waiting for that answer would otherwise wait for a 408), whether or not
/// the body came with its head, as HAProxy's `http_handle_expect_hdr` tells it; the header
/// is then gone from the request its server gets (not asked again), and the answer counts
/// in the logged size.
#[test]
fn an_expected_body_is_asked_for_before_the_wait() {
    let test = "an_expected_body_is_asked_for_before_the_wait";
    let server = hapx_tests::proxy_rules::EchoServer::start("s1");
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let syslog = Syslog::bind();
    let text = config(front, "map-based", &[server.addr], Some(syslog.addr));
    let head = b"POST /p HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n";
    let traffic = |front| {
        let mut seen = Vec::new();
        for body_with_head in [false, true] {
            let mut c = TcpStream::connect(front).expect("connecting");
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(c.try_clone().expect("a clone"));
            if body_with_head {
                c.write_all(&[&head[..], b"id=1"].concat())
                    .expect("sending");
            } else {
                c.write_all(head).expect("sending the head");
            }
            let first = hapx_tests::proxy_rules::read_response(&mut reader).map(|r| r.status);
            if !body_with_head {
                c.write_all(b"id=1").expect("sending the body");
            }
            let last = hapx_tests::proxy_rules::read_response(&mut reader);
            let last = last.map(|r| (r.status, r.body));
            seen.push((first, last));
        }
        // Status, size and flags of each.
        let mut logged: Vec<[String; 3]> = (request_lines(&syslog, 2).iter())
            .map(|l| {
                let words: Vec<&str> = l.split(' ').collect();
                [5, 6, 9].map(|i| words.get(i).copied().unwrap_or_default().to_string())
            })
            .collect();
        logged.sort();
        (seen, logged)
    };
    let (ours, theirs) = side_by_side(test, &text, front, traffic);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "{test} (hapx, HAProxy)");
    }
    let echoed = "s1\nPOST /p HTTP/1.1\nhost: x\ncontent-length: 4\n".to_string();
    let answer = (Some(100), Some((200, echoed)));
    assert_eq!(ours.0, [answer.clone(), answer], "{ours:?}");
}
