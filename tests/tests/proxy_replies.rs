//! The replies hapx-proxy writes itself (rule answers, its own error pages, `errorfile`
//! pages, the stats page), next to HAProxy 2.6 on the same configuration and traffic:
//! - a `HEAD` request gets the head only (its `content-length` as for `GET`), so that the
//!   next response on a kept connection is not read as its body, and the log counts the
//!   head only;
//! - an HTTP/1.0 client asking for `keep-alive` is told `connection: keep-alive` and kept,
//!   after the 503 of a backend without servers too;
//! - an `errorfile` page's own `Connection: close` counts in the logged bytes;
//! - `errorfile` pages whose body does not match their `content-length`, or chunked, are
//!   refused at startup with HAProxy's message.
//! - replies built from rules (`return`, `deny` with `hdr`, a fixed `http-error`) keep
//!   their `hdr` values as written; only `errorfile` pages are normalised;
//! - a 503 for a backend without a usable server logs `Tw` as -1;
//! - `deny` and `tarpit` alone or with `deny_status N` only send the error page for the
//!   status, `deny status N` (the reply syntax) an empty body, `return ...
//!   default-errorfiles` the error page (the proxy's `errorfile`, an `http-error` reply or
//!   HAProxy's own).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{Syslog, TIMEOUTS, check_text, side_by_side};

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// Writes `data` at once on a new connection and reads until the proxy closes it (every
/// exchange here ends with a close); what came, or what cut it short.
fn until_closed(addr: SocketAddr, data: &str) -> String {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return "<refused>".into();
    };
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    if conn.write_all(data.as_bytes()).is_err() {
        return "<write failed>".into();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                out.extend_from_slice(format!("<{}>", e.kind()).as_bytes());
                break;
            }
        }
        if Instant::now() > deadline {
            out.extend_from_slice(b"<still open>");
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What an `option httplog` line says of the answer: its status, bytes, termination
/// flags and request line (the timers are left out: they are not compared here).
fn logged(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let timers = words.iter().position(|w| w.split('/').count() == 5);
    let Some(t) = timers else {
        return format!("<no timers in {line:?}>");
    };
    let request = line.split_once('"').map_or("", |(_, r)| r);
    let pick = |i: usize| words.get(t + i).copied().unwrap_or_default();
    format!("{} {} {} \"{request}", pick(1), pick(2), pick(5))
}

/// The first `count` lines `syslog` received, as [`logged`] sums them up, sorted: which of
/// two requests' lines comes first is not the point here.
fn logged_lines(syslog: &Syslog, count: usize) -> Vec<String> {
    let mut lines: Vec<String> = syslog.lines(count).iter().map(|l| logged(l)).collect();
    lines.sort();
    lines
}

/// Writes an error page `name` into `dir`; its path.
fn page(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a page");
    path.display().to_string()
}

/// The Debian seed's 503 page: HTTP/1.0, no length, its own `Connection: close`.
const SEED_503: &str = "HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n";

/// A frontend answering by itself on each path: a `return`, a `deny` (HAProxy's 403), a
/// `deny` with a framed HTTP/1.1 `errorfile`, a 204 `return`, a backend without servers
/// (HAProxy's 503), one with the seed's 503 page, and the stats page; logging with
/// `option httplog` to `syslog`.
fn replying_config(dir: &Path, addr: SocketAddr, syslog: SocketAddr) -> String {
    let ef = page(
        dir,
        "403.http",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nno!\n",
    );
    let seed = page(dir, "503.http", SEED_503);
    format!(
        "global\n  log {syslog} local0\ndefaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  stats enable\n  stats uri /stats\n\
         \x20 http-request return status 200 content-type text/plain string hi if {{ path /ret }}\n\
         \x20 http-request return status 204 if {{ path /204 }}\n\
         \x20 http-request deny if {{ path /deny }}\n\
         \x20 http-request deny errorfile {ef} if {{ path /ef }}\n\
         \x20 use_backend seed if {{ path /seed }}\n\
         \x20 default_backend empty\n\
         backend empty\n\
         backend seed\n  errorfile 503 {seed}\n"
    )
}

/// `HEAD` on each reply, then on the same connection a `GET` closing it: the `HEAD`
/// answers carry no body, so the `GET`'s response follows each head at once; the page
/// that closes by itself (the seed's) is asked alone. The log counts heads only.
#[test]
fn head_requests_get_heads_only_like_haproxy() {
    let test = "head_requests_get_heads_only_like_haproxy";
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let addr = front();
    let config = replying_config(&dir, addr, syslog.addr);
    let then = "GET /ret HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let kept = ["/ret", "/204", "/deny", "/ef", "/none", "/stats;csv"];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let mut seen: Vec<String> = kept
            .iter()
            .map(|p| until_closed(addr, &format!("HEAD {p} HTTP/1.1\r\nhost: x\r\n\r\n{then}")))
            .collect();
        for method in ["HEAD", "GET"] {
            seen.push(until_closed(
                addr,
                &format!("{method} /seed HTTP/1.1\r\nhost: x\r\n\r\n"),
            ));
        }
        let count = 2 * kept.len() + 2;
        let lines = logged_lines(&syslog, count);
        // The stats page's head differs in its details (dates): its status and what follows.
        let stats = kept
            .iter()
            .position(|p| p.starts_with("/stats"))
            .unwrap_or(0);
        let head_end = seen[stats].find("\r\n\r\n").map_or(0, |e| e + 4);
        let first = seen[stats].lines().next().unwrap_or_default().to_string();
        seen[stats] = format!("{first} ... {}", &seen[stats][head_end..]);
        (seen, lines)
    });
    let (seen, lines) = &ours;
    for answer in &seen[..kept.len()] {
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            2,
            "a head, then the GET's response: {answer:?}"
        );
        assert!(answer.ends_with("\r\n\r\nhi"), "{answer:?}");
    }
    assert!(seen[kept.len()].ends_with("text/html\r\n\r\n"), "{seen:?}");
    assert_eq!(lines.len(), 2 * kept.len() + 2, "{lines:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// An HTTP/1.0 client asking for `keep-alive`: each reply says `connection: keep-alive`
/// (whatever the page's version) and the connection serves the next request, after the
/// 503 of a backend without servers too.
#[test]
fn http10_keep_alive_clients_are_kept_like_haproxy() {
    let test = "http10_keep_alive_clients_are_kept_like_haproxy";
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let addr = front();
    let config = replying_config(&dir, addr, syslog.addr);
    let then = "GET /ret HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let paths = ["/ret", "/204", "/deny", "/ef", "/none"];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let seen: Vec<String> = paths
            .iter()
            .map(|p| {
                until_closed(
                    addr,
                    &format!("GET {p} HTTP/1.0\r\nconnection: keep-alive\r\n\r\n{then}"),
                )
            })
            .collect();
        let lines = logged_lines(&syslog, 2 * paths.len());
        (seen, lines)
    });
    for answer in &ours.0 {
        assert!(
            answer.contains("connection: keep-alive\r\n") && answer.ends_with("\r\n\r\nhi"),
            "{answer:?}"
        );
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A page whose body is not as long as its `content-length` says, or chunked, would
/// desynchronise a kept connection: HAProxy refuses it wherever it is read (`errorfile`,
/// an `http-errors` section, a rule's `errorfile`), naming the line and the file.
#[test]
fn misframed_errorfile_pages_are_refused_like_haproxy() {
    let dir = temp_dir("misframed_errorfile_pages_are_refused_like_haproxy");
    let pages = [
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 50\r\n\r\ndown\n",
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\ndown\n",
        "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndown\n\r\n0\r\n\r\n",
    ];
    let mut case = 0;
    for (i, text) in pages.iter().enumerate() {
        let file = page(&dir, &format!("p{i}.http"), text);
        let places = [
            format!("backend b\n  errorfile 503 {file}\n  server s 127.0.0.1:1\n"),
            format!("http-errors e\n  errorfile 503 {file}\nbackend b\n  server s 127.0.0.1:1\n"),
            format!(
                "backend b\n  http-request deny deny_status 503 errorfile {file}\n  server s 127.0.0.1:1\n"
            ),
        ];
        for place in places {
            case += 1;
            let text = format!(
                "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n{place}"
            );
            let [ours, theirs] = check_text(&dir, case, &text);
            assert_ne!(ours.0, 0, "{place}: {ours:?}");
            assert!(
                ours.1.iter().any(|l| l.contains(&file)),
                "{place}: {ours:?}"
            );
            assert_eq!(ours, theirs, "{place}: hapx-proxy, then HAProxy");
        }
    }
}

/// The stats page's body, de-chunked when it came chunked (as HAProxy sends it).
fn stats_body(answer: &str) -> Option<String> {
    let (head, body) = answer.split_once("\r\n\r\n")?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(body.to_string());
    }
    let (mut data, mut rest) = (String::new(), body);
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(data);
        }
        data.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// The stats page's logged bytes beyond its body: its head as HAProxy counts it (its
/// `transfer-encoding: chunked` in, hapx's `content-length` out), for `GET` and `HEAD`.
#[test]
fn stats_page_heads_are_counted_like_haproxy() {
    let test = "stats_page_heads_are_counted_like_haproxy";
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let addr = front();
    let config = replying_config(&dir, addr, syslog.addr);
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let request =
            |m: &str| format!("{m} /stats;csv HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let got = until_closed(addr, &request("GET"));
        let body = stats_body(&got).map_or(0, |b| b.len());
        let head_only = until_closed(addr, &request("HEAD"));
        let lines = syslog.lines(2);
        let bytes = |line: &str| -> Option<usize> {
            let words: Vec<&str> = line.split(' ').collect();
            let t = words.iter().position(|w| w.split('/').count() == 5)?;
            words.get(t + 2)?.parse().ok()
        };
        // Each line goes when its connection ends, which the client does not wait for.
        let of = |method: &str| {
            let line = lines
                .iter()
                .find(|l| l.contains(&format!("\"{method} /stats")));
            line.and_then(|l| bytes(l))
        };
        (
            of("GET").map(|b| b.wrapping_sub(body)),
            of("HEAD"),
            head_only.ends_with("\r\n\r\n"),
        )
    });
    assert!(ours.2, "HEAD: the head only");
    assert!(
        ours.0.is_some() && ours.1.is_some(),
        "both logged: {ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A log line's timers (`TR/Tw/Tc/Tr/Ta`), each `-1` as written and any other number as
/// `N`: which of them HAProxy leaves unset, not how long they took.
fn timer_shape(line: &str) -> String {
    let timers = line.split(' ').find(|w| w.split('/').count() == 5);
    let Some(timers) = timers else {
        return format!("<no timers in {line:?}>");
    };
    let shape: Vec<&str> = (timers.split('/'))
        .map(|t| if t == "-1" { "-1" } else { "N" })
        .collect();
    shape.join("/")
}

/// Replies built from rules keep their `hdr` values (and names) as the configuration
/// writes them, spaces included, as HAProxy sends them: `return`, `deny` and a fixed
/// `http-error` reply; only an `errorfile` page is parsed and written out again (names
/// lower-cased, values trimmed). Each page's own `connection: close` counts in the logged
/// bytes, whichever way it is sent (an `errorfile` proxy page or a rule's `errorfile`).
#[test]
fn built_replies_keep_their_headers_as_written_like_haproxy() {
    let test = "built_replies_keep_their_headers_as_written_like_haproxy";
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let addr = front();
    let padded = page(
        &dir,
        "padded.http",
        "HTTP/1.1 403 Forbidden\r\nX-Pad:   p  q   \r\nContent-Length: 4\r\n\r\nno!\n",
    );
    let seed = page(&dir, "503.http", SEED_503);
    let config = format!(
        "global\n  log {} local0\ndefaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 content-type text/plain string hi hdr X-Sp \"  a b  \" if {{ path /ret }}\n\
         \x20 http-request deny deny_status 403 hdr x-deny \" d\\t\" if {{ path /deny }}\n\
         \x20 http-request deny errorfile {padded} if {{ path /ef }}\n\
         \x20 http-request deny deny_status 503 errorfile {seed} if {{ path /seed }}\n\
         \x20 use_backend fixed if {{ path /fixed }}\n\
         \x20 default_backend seedpage\n\
         backend fixed\n\
         \x20 http-error status 503 content-type text/plain string down hdr x-e \"  e  \"\n\
         backend seedpage\n  errorfile 503 {seed}\n",
        syslog.addr
    );
    let paths = ["/ret", "/deny", "/ef", "/seed", "/fixed", "/none"];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let seen: Vec<String> = (paths.iter())
            .map(|p| {
                until_closed(
                    addr,
                    &format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
                )
            })
            .collect();
        (seen, logged_lines(&syslog, paths.len()))
    });
    let (seen, _) = &ours;
    assert!(seen[0].contains("x-sp:   a b  \r\n"), "{:?}", seen[0]);
    assert!(seen[1].contains("x-deny:  d\t\r\n"), "{:?}", seen[1]);
    assert!(seen[2].contains("x-pad: p  q\r\n"), "{:?}", seen[2]);
    assert!(seen[4].contains("x-e:   e  \r\n"), "{:?}", seen[4]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Which `deny` and `return` forms answer with the error page and which with an empty
/// body, the proxy's own `errorfile`, `http-error` reply and `http-errors` section in play.
#[test]
fn error_pages_or_empty_replies_as_haproxy_chooses() {
    let test = "error_pages_or_empty_replies_as_haproxy_chooses";
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let addr = front();
    let own404 = page(
        &dir,
        "404.http",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nmine\n",
    );
    let config = format!(
        "global\n  log {} local0\ndefaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}\
         http-errors myerrs\n  errorfile 404 {own404}\n\
         frontend fe\n  bind {addr}\n  errorfile 404 {own404}\n\
         \x20 http-error status 429 content-type text/plain string calm-down\n\
         \x20 http-request deny status 403 if {{ path /s403 }}\n\
         \x20 http-request deny status 404 if {{ path /s404 }}\n\
         \x20 http-request deny deny_status 404 if {{ path /ds404 }}\n\
         \x20 http-request deny deny_status 429 if {{ path /ds429 }}\n\
         \x20 http-request deny if {{ path /d }}\n\
         \x20 http-request deny deny_status 403 hdr x-a b if {{ path /dshdr }}\n\
         \x20 http-request return status 403 default-errorfiles if {{ path /r403 }}\n\
         \x20 http-request return status 404 default-errorfiles if {{ path /r404 }}\n\
         \x20 http-request return status 429 default-errorfiles if {{ path /r429 }}\n\
         \x20 http-request return status 503 errorfiles myerrs if {{ path /r503 }}\n\
         \x20 http-request return status 404 errorfiles myerrs if {{ path /re404 }}\n\
         \x20 default_backend none\n\
         backend none\n",
        syslog.addr
    );
    let paths = [
        "/s403", "/s404", "/ds404", "/ds429", "/d", "/dshdr", "/r403", "/r404", "/r429", "/r503",
        "/re404",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        let seen: Vec<String> = (paths.iter())
            .map(|p| {
                let answer = until_closed(
                    addr,
                    &format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
                );
                let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                let status = answer.lines().next().unwrap_or_default().to_string();
                format!("{p}: {status} | {body:?}")
            })
            .collect();
        (seen, logged_lines(&syslog, paths.len()))
    });
    let (seen, _) = &ours;
    assert!(seen[0].ends_with("| \"\""), "{:?}", seen[0]);
    assert!(seen[2].ends_with("| \"mine\\n\""), "{:?}", seen[2]);
    assert!(seen[6].contains("Request forbidden"), "{:?}", seen[6]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A request refused by the HTTP/1 layer (malformed: 400) gets HAProxy's own page whatever
/// the frontend's `errorfile 400`, unless that file is empty: then nothing, the connection
/// closed; logged the same either way.
#[test]
fn bad_requests_get_the_own_page_or_nothing_as_haproxy() {
    let test = "bad_requests_get_the_own_page_or_nothing_as_haproxy";
    let dir = temp_dir(test);
    let syslog = Syslog::bind();
    let (silent, custom) = (front(), front());
    let empty = page(&dir, "empty.http", "");
    let own = page(
        &dir,
        "400.http",
        "HTTP/1.0 400 Bad request\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html>custom</html>\n",
    );
    let config = format!(
        "global\n  log {} local0\ndefaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}\
         frontend silent\n  bind {silent}\n  errorfile 400 {empty}\n  default_backend none\n\
         frontend custom\n  bind {custom}\n  errorfile 400 {own}\n  default_backend none\n\
         backend none\n",
        syslog.addr
    );
    let (ours, theirs) = side_by_side(test, &config, silent, |silent| {
        let seen: Vec<String> = [silent, custom]
            .iter()
            .map(|addr| until_closed(*addr, "BAD\r\n\r\n"))
            .collect();
        (seen, logged_lines(&syslog, 2))
    });
    let (seen, _) = &ours;
    assert_eq!(seen[0], "", "an empty errorfile: nothing");
    assert!(
        seen[1].contains("Your browser sent an invalid request."),
        "{:?}",
        seen[1]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A request to a backend without any usable server (none, or all of them down) gets a
/// 503 whose log line leaves the timers HAProxy leaves unset at `-1`: it never queued nor
/// connected.
#[test]
fn no_server_503_logs_timers_like_haproxy() {
    let test = "no_server_503_logs_timers_like_haproxy";
    let syslog = Syslog::bind();
    let addr = front();
    let config = format!(
        "global\n  log {} local0\ndefaults\n  log global\n  mode http\n  option httplog\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n  use_backend down if {{ path /down }}\n  default_backend empty\n\
         backend empty\n\
         backend down\n  server s 127.0.0.1:1 disabled\n",
        syslog.addr
    );
    let paths = ["/none", "/down"];
    let (ours, theirs) = side_by_side(test, &config, addr, |addr| {
        paths
            .iter()
            .map(|p| {
                let answer = until_closed(
                    addr,
                    &format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
                );
                let line = syslog.lines(1).pop().unwrap_or_default();
                (
                    answer.lines().next().unwrap_or_default().to_string(),
                    timer_shape(&line),
                )
            })
            .collect::<Vec<_>>()
    });
    for (status, _) in &ours {
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
