//! Regular expressions are PCRE2's, as in HAProxy 2.6 (built with PCRE2, JIT, no UTF):
//! hapx-proxy next to HAProxy on the same configurations and traffic. Look-around and
//! back-references in ACLs, `\N` groups in `replace-path`/`replace-header`/`replace-value`
//! and `regsub` (flags `i` and `g`, HAProxy's way of moving on after a match), bytes that
//! are not UTF-8 matched one by one, `$` before a final newline in health checks, and the
//! `-c` messages for invalid regexes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{free_port, settled_check_rows, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, TIMEOUTS, check_alike, exchange, get, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

/// Sends `request` (raw bytes) on a new connection to `addr`: the response's status line
/// and header lines as raw bytes (up to the blank line), or None without a response.
fn raw_head(addr: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(request).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")?;
    got.truncate(end);
    Some(got)
}

/// The status code of a raw response head.
fn status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// The value (raw bytes) of header `name` in a raw response head.
fn header<'h>(head: &'h [u8], name: &str) -> Option<&'h [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (n, v) = line.split_at(colon);
        n.eq_ignore_ascii_case(name.as_bytes())
            .then(|| v[1..].trim_ascii())
    })
}

/// A request for `path` with the extra header lines `headers` (raw bytes, each ending in
/// CRLF), closing after its response.
fn request(path: &str, headers: &[u8]) -> Vec<u8> {
    let mut r =
        format!("GET {path} HTTP/1.1\r\nhost: test.example\r\nconnection: close\r\n").into_bytes();
    r.extend_from_slice(headers);
    r.extend_from_slice(b"\r\n");
    r
}

/// ACL `-m reg` patterns with look-ahead, look-behind, named back-references and `-i`, and
/// one matched against a header whose bytes are not UTF-8: the same statuses as HAProxy.
#[test]
fn acl_regexes_are_pcre2s() {
    let test = "acl_regexes_are_pcre2s";
    let web = EchoServer::start("web");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request deny deny_status 401 if {{ path -m reg ^/look(?=ahead) }}\n\
         \x20 http-request deny deny_status 403 if {{ path -m reg (?<!x)behind$ }}\n\
         \x20 http-request deny deny_status 404 if {{ path -m reg ^/(?<w>[a-z]+)/\\k<w>$ }}\n\
         \x20 http-request deny deny_status 405 if {{ path -m reg -i ^/UPPER$ }}\n\
         \x20 http-request deny deny_status 410 if {{ req.hdr(x-name) -m reg ^caf.$ }}\n\
         \x20 http-request deny deny_status 429 if {{ req.hdr(x-name) -m reg ^caf\\w }}\n\
         \x20 http-request deny deny_status 413 if {{ req.hdr(x-name) -m reg ^caf }}\n\
         \x20 default_backend be\n\
         backend be\n  server web {web}\n",
        web = web.addr,
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/lookahead", vec![], 401),
        ("/look", vec![], 200),
        ("/behind", vec![], 403),
        ("/xbehind", vec![], 200),
        ("/abc/abc", vec![], 404),
        ("/abc/abd", vec![], 200),
        ("/upper", vec![], 405),
        // A latin-1 `é` is one byte, which `.` takes; `\w` takes no byte past ASCII.
        ("/", b"x-name: caf\xe9\r\n".to_vec(), 410),
        // The UTF-8 `é` is two bytes: neither `^caf.$` nor `^caf\w` match, `^caf` does.
        ("/", "x-name: café\r\n".as_bytes().to_vec(), 413),
        ("/", b"x-name: cafe1\r\n".to_vec(), 429),
        // `\w` takes no byte past ASCII.
        ("/", b"x-name: caf\xe91\r\n".to_vec(), 413),
    ];
    let traffic = |addr: SocketAddr| -> Vec<Option<u16>> {
        (cases.iter())
            .map(|(path, headers, _)| {
                raw_head(addr, &request(path, headers)).and_then(|h| status(&h))
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let wanted: Vec<Option<u16>> = cases.iter().map(|c| Some(c.2)).collect();
    assert_eq!(ours, wanted, "hapx-proxy: {cases:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `replace-path`, `replace-header`, `replace-value` with `\N` groups and `regsub` with
/// its `i` and `g` flags: what the server got is what it got through HAProxy. `regsub`
/// goes on after a match on the rest alone, not starting a line: `\b` sees no byte before
/// it, `^` does not match again. (hapx reads no parentheses in converter arguments yet, so
/// these `regsub`s have no groups.)
#[test]
fn replacements_take_groups_as_haproxy() {
    let test = "replacements_take_groups_as_haproxy";
    let web = EchoServer::start("web");
    let addr = front();
    let regsubs = [
        ("g", "regsub(a,X,g)"),
        ("i", "regsub(A,Y,i)"),
        ("first", "regsub(a,Z)"),
        ("gi", "regsub(A,W,gi)"),
        ("whole", "regsub(ab+,<\\0>,g)"),
        ("boundary", "regsub(\\bb,_,g)"),
        ("caret", "regsub(^b,_,g)"),
        ("empty", "regsub(x*,-,g)"),
    ];
    let set: String = (regsubs.iter())
        .map(|(name, conv)| format!("  http-request set-header x-{name} %[req.hdr(x-in),{conv}]\n"))
        .collect();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         {set}\
         \x20 http-request replace-path ^/old/(.*)/(?=end)(.*)$ /new/\\2/\\1\n\
         \x20 http-request replace-header x-user ^(\\w+)@(.+)$ \\2:\\1\n\
         \x20 http-request replace-value x-list ^i(.)$ <\\1>\n\
         \x20 http-request replace-header x-back ^(a)(?:x|\\1)$ [\\1\\1]\n\
         \x20 default_backend be\n\
         backend be\n  server web {web}\n",
        web = web.addr,
    );
    let headers = "x-in: aabba\r\nx-user: alice@example\r\nx-list: i1, j2,i3\r\n\
                   x-back: aa\r\n";
    let requests = [
        get("/old/a/b/end", headers),
        get("/old/x/end", "x-in: bbb\r\n"),
    ];
    let traffic = |addr: SocketAddr| {
        let seen = exchange(addr, &requests);
        let forwarded = |i: usize, name: &str| {
            (seen.get(i).cloned().flatten()).and_then(|r| r.forwarded(name).map(str::to_string))
        };
        let path = |i: usize| {
            (seen.get(i).cloned().flatten()).and_then(|r| r.body.lines().nth(1).map(str::to_string))
        };
        let mut out = vec![path(0), path(1)];
        for name in ["x-user", "x-list", "x-back"] {
            out.push(forwarded(0, name));
        }
        for (name, _) in regsubs {
            out.push(forwarded(0, &format!("x-{name}")));
            out.push(forwarded(1, &format!("x-{name}")));
        }
        out
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    let want = |s: &str| Some(s.to_string());
    assert_eq!(
        ours[..5],
        [
            want("GET /new/end/a/b HTTP/1.1"),
            want("GET /new/end/x HTTP/1.1"),
            want("example:alice"),
            want("<1>, j2,<3>"),
            want("[aa]"),
        ],
        "{ours:#?}"
    );
    // x-in "aabba", then "bbb".
    assert_eq!(
        ours[5..],
        [
            want("XXbbX"),
            want("bbb"),
            want("Yabba"),
            want("bbb"),
            want("Zabba"),
            want("bbb"),
            want("WWbbW"),
            want("bbb"),
            want("a<abb>a"),
            want("bbb"),
            want("aabba"),
            want("___"),
            want("aabba"),
            want("_bb"),
            want("-a-a-b-b-a-"),
            want("-b-b-b-"),
        ],
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A `regsub` on a header whose bytes are not UTF-8, its result sent back in a response
/// header: the same bytes as HAProxy's.
#[test]
fn regsub_works_on_bytes() {
    let test = "regsub_works_on_bytes";
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 hdr x-out %[req.hdr(x-name),regsub(.,<\\0>,g)]\n"
    );
    let cases: [&[u8]; 3] = [
        b"x-name: caf\xe9\r\n",
        "x-name: café\r\n".as_bytes(),
        b"x-name: caf\xff\xfe\r\n",
    ];
    let traffic = |addr: SocketAddr| -> Vec<Option<Vec<u8>>> {
        (cases.iter())
            .map(|h| {
                let head = raw_head(addr, &request("/", h))?;
                header(&head, "x-out").map(<[u8]>::to_vec)
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, traffic);
    assert_eq!(
        ours,
        [
            Some(b"<c><a><f><\xe9>".to_vec()),
            Some(b"<c><a><f><\xc3><\xa9>".to_vec()),
            Some(b"<c><a><f><\xff><\xfe>".to_vec()),
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A server answering every connection with `reply` and closing.
fn replying(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a test server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(reply);
        }
    });
    addr
}

/// Health-check regexes: `$` also matches before a final newline (`\z` does not),
/// look-around is PCRE2's, a latin-1 byte is one character. The servers' states and check
/// statuses are HAProxy's.
#[test]
fn check_regexes_are_pcre2s() {
    let test = "check_regexes_are_pcre2s";
    let pong = replying(b"+PONG\n");
    let latin1 = replying(b"caf\xe9\n");
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let addr = front();
    let backends = [
        ("dollar", "^[+]PONG$", pong, "UP", "L7OK"),
        ("strict_end", "^[+]PONG\\z", pong, "DOWN", "L7RSP"),
        ("ahead", "PO(?=NG)", pong, "UP", "L7OK"),
        ("behind", "(?<=[+])PONG", pong, "UP", "L7OK"),
        ("not_behind", "(?<!P)ONG", pong, "DOWN", "L7RSP"),
        ("byte", "^caf.$", latin1, "UP", "L7OK"),
        ("no_word", "^caf\\w", latin1, "DOWN", "L7RSP"),
    ];
    let sections: String = (backends.iter())
        .map(|(name, re, server, ..)| {
            format!(
                "backend {name}\n  option tcp-check\n  tcp-check expect rstring {re}\n\
                 \x20 server s {server} check inter 300ms rise 1 fall 1\n"
            )
        })
        .collect();
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n{TIMEOUTS}  timeout check 2s\n\
         frontend fe\n  bind {addr}\n  default_backend dollar\n{sections}",
        sock = sock.display(),
    );
    let servers: Vec<(&str, &str)> = backends.iter().map(|b| (b.0, "s")).collect();
    let expected: Vec<[&str; 2]> = backends.iter().map(|b| [b.3, b.4]).collect();
    let observe = |_| -> Vec<[String; 2]> {
        (settled_check_rows(&sock, &servers, &expected).into_iter())
            .map(|[state, status, ..]| [state, status])
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, observe);
    let want: Vec<[String; 2]> = expected.iter().map(|e| e.map(str::to_string)).collect();
    assert_eq!(ours, want, "hapx-proxy: {servers:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `-c` on invalid regexes: HAProxy's messages, PCRE2's words and offsets, wherever the
/// regex is written. Without captures (ACLs, checks) a numbered back-reference is an error.
#[test]
fn invalid_regexes_are_refused_in_haproxys_words() {
    let test = "invalid_regexes_are_refused_in_haproxys_words";
    let frontend = |line: &str| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:{port}\n  {line}\n\
             \x20 default_backend b\nbackend b\n  server s 127.0.0.1:9\n",
            port = free_port(),
        )
    };
    let backend = |lines: &str| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}backend b\n  {lines}\n  server s 127.0.0.1:9 check\n"
        )
    };
    let cases = [
        (
            frontend("acl a path -m reg ("),
            "parsing [case.cfg:8] : error detected while parsing ACL 'a' : regex '(' is invalid (error=missing closing parenthesis, erroffset=1).",
        ),
        (
            frontend("acl a path -m reg (a)\\1"),
            "parsing [case.cfg:8] : error detected while parsing ACL 'a' : regex '(a)\\1' is invalid (error=reference to non-existent subpattern, erroffset=4).",
        ),
        (
            frontend("http-request deny if { path -m reg -i [z-a] }"),
            "parsing [case.cfg:8] : error detected while parsing an 'http-request deny' condition : regex '[z-a]' is invalid (error=range out of order in character class, erroffset=3).",
        ),
        (
            frontend("http-request replace-header x a{2,1} y"),
            "parsing [case.cfg:8] : error detected in frontend 'f' while parsing 'http-request replace-header' rule : regex 'a{2,1}' is invalid (error=numbers out of order in {} quantifier, erroffset=5).",
        ),
        (
            frontend("http-response replace-value x ( y"),
            "parsing [case.cfg:8] : error detected in frontend 'f' while parsing 'http-response replace-value' rule : regex '(' is invalid (error=missing closing parenthesis, erroffset=1).",
        ),
        (
            frontend("http-request replace-path ( y"),
            "parsing [case.cfg:8] : error detected in frontend 'f' while parsing 'http-request replace-path' rule : failed to parse the regex : regex '(' is invalid (error=missing closing parenthesis, erroffset=1).",
        ),
        (
            backend("option httpchk\n  http-check expect rstring ("),
            "parsing [case.cfg:8] : 'http-check expect' : regex '(' is invalid (error=missing closing parenthesis, erroffset=1).",
        ),
        (
            backend("option httpchk\n  http-check expect rstring (a)\\1"),
            "parsing [case.cfg:8] : 'http-check expect' : regex '(a)\\1' is invalid (error=reference to non-existent subpattern, erroffset=4).",
        ),
        (
            backend("option httpchk\n  http-check expect hdr name -m reg ( value x"),
            "parsing [case.cfg:8] : 'http-check expect' : regex '(' is invalid (error=missing closing parenthesis, erroffset=1).",
        ),
        (
            backend("option tcp-check\n  tcp-check expect rbinary a**"),
            "parsing [case.cfg:8] : 'tcp-check expect' : regex 'a**' is invalid (error=quantifier does not follow a repeatable item, erroffset=2).",
        ),
    ];
    for (i, (config, message)) in cases.iter().enumerate() {
        let (code, messages) = check_alike(&format!("{test}-{i}"), config);
        assert_eq!(code, 1, "{config}\n{messages:#?}");
        // The file is named with its directory.
        let first = messages.first().map(String::as_str).unwrap_or_default();
        let (head, tail) = message.split_once('[').expect("a place");
        assert!(
            first.starts_with(&format!("ALERT: {head}[")) && first.ends_with(tail),
            "{config}\n{first}"
        );
    }
}
