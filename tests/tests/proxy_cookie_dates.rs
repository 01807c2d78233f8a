//! Cookie dates (`maxidle`, `maxlife`) and dynamic cookies (`dynamic`,
//! `dynamic-cookie-key`) beside HAProxy 2.6: the same configuration behind hapx-proxy and
//! then HAProxy, the same requests.
//!
//! Dates: requests carry cookies whose `|LAST|FIRST` fields are crafted around the current
//! time (the encoding is deterministic: 4-second units, 30 bits in 5 base64 characters,
//! made here independently of hapx): fresh, idle too long, too old, a day ahead, malformed,
//! too short, none at all where the configuration wants them, and dates where it wants
//! none. Each response must come from the same server, the log's termination state (whose
//! 3rd and 4th characters are the cookie's: `E`xpired, `O`ld, `U`pdated...) must be the
//! same, and the `Set-Cookie` the same in structure: each date field in it is decoded and
//! compared as "what the client sent" or "now" (within a few seconds), never as raw bytes.
//!
//! Dynamic cookies: the servers' cookie values (XXH64 of key, address and port) must be
//! byte-identical to HAProxy's, in `Set-Cookie` and in `show stat`; a client with one
//! reaches its server; `set dynamic-cookie-key backend`, `disable|enable dynamic-cookie
//! backend` change them as in HAProxy, with the same answers (errors too).

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    CookieSeen as Seen, EchoServer, Response, Syslog, read_response, side_by_side,
};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A date as HAProxy writes it in a cookie: `secs / 4` in 5 base64 characters, the most
/// significant first.
fn encode(secs: i64) -> String {
    let units = (secs >> 2) as u32;
    (0..5)
        .map(|i| char::from(B64[((units >> (24 - 6 * i)) & 0x3f) as usize]))
        .collect()
}

/// The seconds of a 5-character date; None if it is not one.
fn decode(field: &str) -> Option<i64> {
    if field.len() != 5 {
        return None;
    }
    field
        .bytes()
        .try_fold(0i64, |acc, c| {
            let v = B64.iter().position(|&b| b == c)?;
            Some((acc << 6) | v as i64)
        })
        .map(|units| units << 2)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The backends with dates: (cookie line). `maxidle 20`, `maxlife 60`: the crafted dates
/// are well inside or well outside them, whatever second the requests go in.
const DATED: &[&str] = &[
    "cookie SRV insert indirect maxidle 20 maxlife 60",
    "cookie SRV insert indirect maxidle 20",
    "cookie SRV insert indirect maxlife 60",
    "cookie SRV insert indirect",
    "cookie SRV rewrite maxidle 20",
];

/// The Cookie headers sent to every dated backend, `now` the time of sending.
fn dated_cookies(now: i64) -> Vec<Option<String>> {
    let e = encode;
    [
        None,
        Some(format!("SRV=a|{}|{}", e(now - 8), e(now - 12))),
        Some(format!("SRV=a|{}|{}", e(now - 40), e(now - 44))),
        Some(format!("SRV=b|{}|{}", e(now - 8), e(now - 100))),
        Some(format!("SRV=a|{}", e(now - 40))),
        Some(format!("SRV=a|{}|{}", e(now + 2 * 86400), e(now - 8))),
        Some(format!("SRV=a|{}|{}", e(now + 40), e(now + 40))),
        Some("SRV=a|@@@@@|=====".to_string()),
        Some("SRV=b|abc".to_string()),
        Some("SRV=a".to_string()),
        Some(format!("SRV=zz|{}", e(now - 8))),
        Some(format!("SRV=|{}", e(now - 8))),
        Some(format!("x=1; SRV=b|{}|{}; y=2", e(now - 8), e(now - 8))),
        Some(format!("SRV=a|{}|{}; SRV=b", e(now - 40), e(now - 8))),
        // Dates with bit 31 set: HAProxy takes them as negative, so past.
        Some("SRV=b|zzzzz".to_string()),
        Some("SRV=b|/////".to_string()),
        Some(format!("SRV=b|{}|zzzzz", e(now - 8))),
    ]
    .into_iter()
    .collect()
}

/// A Set-Cookie with its date fields replaced by `SENT` (the date field the request
/// carried, byte for byte), `NOW` (within 8 seconds of `sent_at`) or `?DATE(value)`.
fn normalize(set_cookie: &str, sent: Option<&str>, sent_at: i64) -> String {
    let (value, attrs) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
    format!("{};{attrs}", dates_named(value, sent, sent_at))
}

/// A Cookie header the server got, each cookie's dates named as [`normalize`] names them:
/// the dates the client sent are its own clock's, which differs between the two proxies' runs.
fn normalize_forwarded(cookie: &str, sent: Option<&str>, sent_at: i64) -> String {
    (cookie.split("; "))
        .map(|c| dates_named(c, sent, sent_at))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `NAME=VALUE|DATE|DATE` with its dates named (see [`normalize`]).
fn dates_named(value: &str, sent: Option<&str>, sent_at: i64) -> String {
    let mut fields = value.split('|');
    let mut out = fields.next().unwrap_or_default().to_string();
    let sent_fields: Vec<&str> = sent
        .map(|s| s.split(['|', ';', ' ']).collect())
        .unwrap_or_default();
    for f in fields {
        out.push('|');
        match decode(f) {
            _ if sent_fields.contains(&f) => out.push_str("SENT"),
            Some(d) if (d - sent_at).abs() <= 8 => out.push_str("NOW"),
            _ => out.push_str(&format!("?DATE({f})")),
        }
    }
    out
}

/// `GET uri` on a connection of its own, with a Cookie header if any.
fn fetch(front: SocketAddr, uri: &str, cookie: Option<&str>) -> Option<Response> {
    let mut conn = TcpStream::connect(front).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let cookie = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {uri} HTTP/1.1\r\nhost: test.example\r\n{cookie}\r\n");
    conn.write_all(request.as_bytes()).ok()?;
    read_response(&mut BufReader::new(conn))
}

fn send(front: SocketAddr, uri: &str, cookie: Option<&str>) -> Seen {
    let sent_at = now();
    seen(fetch(front, uri, cookie), cookie, sent_at)
}

fn seen(r: Option<Response>, sent: Option<&str>, sent_at: i64) -> Seen {
    let mut seen = Seen::of(r, |v| normalize(v, sent, sent_at));
    for cookie in &mut seen.forwarded_cookies {
        *cookie = normalize_forwarded(cookie, sent, sent_at);
    }
    seen
}

fn head(sock: &Path, syslog: SocketAddr) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  option httplog\n  log {syslog} local0\n\
         \x20 log-format \"%b %s %ST %tsc\"\n\
         \x20 timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n",
        sock.display()
    )
}

/// The log lines of `count` requests, sorted (each starts with its backend).
fn logs(syslog: &Syslog, count: usize) -> Vec<String> {
    let mut lines: Vec<String> = syslog
        .lines(count)
        .iter()
        .map(|line| line.rsplit(": ").next().unwrap_or_default().to_string())
        .collect();
    lines.sort();
    lines
}

/// A fresh cookie from an earlier response (its value) must still be valid, then every
/// crafted one goes to every dated backend.
fn dated_traffic(ports: &[u16], syslog: &Syslog) -> (Vec<Vec<Seen>>, Vec<String>) {
    let mut out = Vec::new();
    let mut sent = 0;
    for (k, port) in ports.iter().enumerate() {
        let front = SocketAddr::from((LO, *port));
        let cookies = dated_cookies(now());
        sent += cookies.len();
        out.push(
            (cookies.iter().enumerate())
                .map(|(i, c)| send(front, &format!("/p{k}/r{i}"), c.as_deref()))
                .collect(),
        );
    }
    (out, logs(syslog, sent))
}

#[test]
fn cookie_dates_are_read_and_written_as_by_haproxy() {
    let web: Vec<EchoServer> = (0..3)
        .map(|i| EchoServer::start_with(&format!("web{i}"), "set-cookie: SRV=app; path=/\r\n"))
        .collect();
    let dir = temp_dir("cookie-dates");
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let ports: Vec<u16> = DATED.iter().map(|_| free_port()).collect();
    let mut cfg = head(&sock, syslog.addr);
    for (k, cookie) in DATED.iter().enumerate() {
        cfg += &format!(
            "listen p{k}\n  bind 127.0.0.1:{}\n  balance uri\n  {cookie}\n\
             \x20 server s0 {} cookie a\n  server s1 {} cookie b\n  server s2 {} cookie c\n",
            ports[k], web[0].addr, web[1].addr, web[2].addr
        );
    }
    let last = SocketAddr::from((LO, ports[ports.len() - 1]));
    let (ours, theirs) = side_by_side("cookie-dates", &cfg, last, |_| {
        dated_traffic(&ports, &syslog)
    });
    // Sound on its own (`maxidle 20 maxlife 60`): a new client gets both dates, now; a
    // fresh cookie reaches its server and has its last date refreshed, its first kept; an
    // idle or old one is balanced again and replaced.
    let (responses, logs) = &ours;
    let p0 = &responses[0];
    assert_eq!(p0[0].set_cookie.len(), 1, "{:?}", p0[0]);
    assert!(p0[0].set_cookie[0].starts_with("SRV="), "{:?}", p0[0]);
    assert!(
        p0[0].set_cookie[0].contains("|NOW|NOW; path=/"),
        "{:?}",
        p0[0]
    );
    assert_eq!(p0[1].server, "web0");
    assert_eq!(p0[1].set_cookie, ["SRV=a|NOW|SENT; path=/"]);
    assert!(
        p0[2].set_cookie[0].ends_with("|NOW|NOW; path=/"),
        "{:?}",
        p0[2]
    );
    assert!(
        p0[3].set_cookie[0].ends_with("|NOW|NOW; path=/"),
        "{:?}",
        p0[3]
    );
    // Without dates in the configuration, a cookie's dates still end its server's name.
    assert_eq!(responses[3][9].server, "web0");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("p0 ") && l.ends_with("--EI")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("p0 ") && l.ends_with("--OI")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("p0 ") && l.ends_with("--VU")),
        "{logs:?}"
    );
    let Some((their_responses, their_logs)) = theirs else {
        return;
    };
    let cookies = dated_cookies(0);
    for (k, cookie) in DATED.iter().enumerate() {
        for (i, (ours, theirs)) in responses[k].iter().zip(&their_responses[k]).enumerate() {
            assert_eq!(
                ours, theirs,
                "{cookie}: request {i} cookie {:?} (dates around 0)",
                cookies[i]
            );
        }
    }
    assert_eq!(logs, &their_logs);
}

/// What the dynamic-cookie traffic saw: the Set-Cookie values (raw), the servers reached,
/// the CLI's answers and `show stat`'s cookie column, the log lines.
fn dynamic_traffic(front: SocketAddr, sock: &Path, syslog: &Syslog) -> Vec<String> {
    let mut out = Vec::new();
    let mut sent = 0;
    let mut get = |out: &mut Vec<String>, uri: &str, cookie: Option<&str>| {
        sent += 1;
        let response = fetch(front, uri, cookie);
        let Some(r) = response else {
            out.push(format!("{uri}: no response"));
            return None;
        };
        let set = r.header("set-cookie").map(String::from);
        out.push(format!("{uri}: {} {set:?}", r.server()));
        set.and_then(|s| {
            let value = s.split(';').next()?.strip_prefix("SRV=")?.to_string();
            Some(value)
        })
    };
    let stat_cookies = |out: &mut Vec<String>| {
        let stat = cli(sock, "show stat");
        let columns: Vec<&str> = stat.lines().next().unwrap_or_default().split(',').collect();
        let at = columns.iter().position(|c| *c == "cookie").unwrap_or(0);
        for line in stat.lines().skip(1).filter(|l| l.starts_with("p,")) {
            let fields: Vec<&str> = line.split(',').collect();
            out.push(format!("stat {} cookie={:?}", fields[1], fields.get(at)));
        }
    };
    stat_cookies(&mut out);
    let first = get(&mut out, "/a", None);
    let second = get(&mut out, "/bb", None);
    for (uri, value) in [("/c", &first), ("/d", &second)] {
        get(
            &mut out,
            uri,
            value.as_ref().map(|v| format!("SRV={v}")).as_deref(),
        );
    }
    for command in [
        "set dynamic-cookie-key backend p k2",
        "set dynamic-cookie-key backend p",
        "set dynamic-cookie-key backend nope k",
        "set dynamic-cookie-key backend",
        "enable dynamic-cookie backend nope",
        "disable dynamic-cookie backend",
    ] {
        out.push(format!("{command}: {:?}", cli(sock, command)));
    }
    stat_cookies(&mut out);
    // The old key's cookie names no server now.
    get(
        &mut out,
        "/e",
        first.as_ref().map(|v| format!("SRV={v}")).as_deref(),
    );
    get(&mut out, "/a", None);
    out.push(format!(
        "disable: {:?}",
        cli(sock, "disable dynamic-cookie backend p")
    ));
    stat_cookies(&mut out);
    get(&mut out, "/a", None);
    out.push(format!(
        "rekey: {:?}",
        cli(sock, "set dynamic-cookie-key backend p k3")
    ));
    stat_cookies(&mut out);
    out.push(format!(
        "enable: {:?}",
        cli(sock, "enable dynamic-cookie backend p")
    ));
    stat_cookies(&mut out);
    get(&mut out, "/a", None);
    // A new address and port make a new value.
    let moved = cli(sock, "set server p/s1 addr 127.0.0.2 port 9");
    out.push(format!("moved: {moved:?}"));
    stat_cookies(&mut out);
    out.extend(logs(syslog, sent));
    out
}

#[test]
fn dynamic_cookies_are_haproxys() {
    let web: Vec<EchoServer> = (0..3)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let dir = temp_dir("cookie-dynamic");
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let port = free_port();
    let cfg = head(&sock, syslog.addr)
        + &format!(
            "listen p\n  bind 127.0.0.1:{port}\n  balance uri\n\
             \x20 cookie SRV insert indirect dynamic\n  dynamic-cookie-key k1\n\
             \x20 server s0 {}\n  server s1 {}\n  server s2 {} cookie fixed\n",
            web[0].addr, web[1].addr, web[2].addr
        );
    let front = SocketAddr::from((LO, port));
    let (ours, theirs) = side_by_side("cookie-dynamic", &cfg, front, |front| {
        dynamic_traffic(front, &sock, &syslog)
    });
    // Sound on its own: 16 hexadecimal digits, and a client that has one reaches its
    // server.
    let stat_s0 = &ours[1];
    let hex = stat_s0.split('"').nth(1).unwrap_or_default();
    assert!(
        hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{ours:?}"
    );
    assert!(ours.iter().any(|l| l.ends_with("--VN")), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
