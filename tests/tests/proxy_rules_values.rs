//! Rule values are log formats, hapx-proxy next to HAProxy 2.6: `http-request set-header`,
//! `http-response set-header`, `http-request redirect` and `set-path` values using log-format
//! variables (`%ci %cp %fi %fp %ft %b %s %H %ID %HM %HP %HU %HV %rt %pid %Ts` ...), flags
//! (`%{+Q}`, `%{+X}`, `%{+E}`) and `%[fetch,converter]`. Compared: the headers the server
//! received and the client got, and redirect locations, byte for byte where both must agree;
//! values that differ between two runs (ports, pids, dates) by their shape and derivation.
//! Replies built from formats (`return|deny ... hdr NAME FMT`, `lf-string FMT`): the same
//! responses. Broken values: the same `-c` messages as HAProxy. Timers (`%Ti %TR %Tq ...`)
//! in the values of a backend's request and response rules, for a client that waits and
//! sends its head in parts, in a frontend that does not log: the same derivations as
//! HAProxy's, within tolerances.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, TIMEOUTS, check_frontend_line, exchange, get, read_response,
    side_by_side,
};
use hapx_tests::require;

/// Request headers whose values are the same through both proxies, byte for byte.
const EXACT: &[&str] = &[
    "x-front", "x-line", "x-after", "x-host", "x-empty", "x-fetch", "x-spaces", "x-counts",
    "x-timers", "x-be",
];

fn config(addr: SocketAddr, server: SocketAddr) -> String {
    format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 unique-id-format %{{+X}}o%ci:%cp_%rt\n  unique-id-header X-UID\n\
         \x20 http-request set-header X-Client %ci:%cp\n\
         \x20 http-request set-header X-Front \"%fi:%fp %ft %f %b %s\"\n\
         \x20 http-request set-header X-Line \"%{{+Q}}r %HM %HP %HU %HV %HQ %HPO %{{+Q}}HU\"\n\
         \x20 http-request set-path /rewritten%[path] if {{ path_beg /rw/ }}\n\
         \x20 http-request set-header X-After \"%HU %[path]\"\n\
         \x20 http-request set-header X-Host %H\n\
         \x20 http-request set-header X-Num \"%rt %{{+X}}rt %pid %{{+X}}pid\"\n\
         \x20 http-request set-header X-Dates \"%Ts %{{+X}}Ts %T %t %ms %tr %trg\"\n\
         \x20 http-request set-header X-Timers \"%Tq %TR %Tw %Tc %Tr %Tt %Th %ST %Td\"\n\
         \x20 http-request set-header X-Empty \"<%ID|%CC|%{{+Q}}CC|%bi|%si|%sp|%[req.hdr(x-none)]|%{{+Q}}[req.hdr(x-none)]|%{{+Q}}ID>\"\n\
         \x20 http-request set-header X-Fetch \"%{{+Q}}[src] %[req.hdr(host),upper] %{{+E}}[req.hdr(x-q)] %[req.hdr(x-ctl)] %{{+Q}}ci %{{+X}}ci\"\n\
         \x20 http-request set-header X-Spaces \"a  b   %%  %[path] %+x\"\n\
         \x20 http-request set-header X-Counts \"%fc %bc %sc %rc %sq %bq %ts %tsc %B %U %lc\"\n\
         \x20 http-request redirect location /to/%[src]/%HM%HP?c=%ci if {{ path /go }}\n\
         \x20 http-request redirect prefix /pre-%fp code 301 if {{ path_beg /pfx/ }}\n\
         \x20 redirect location /lit/%ci%[src] if {{ path /lit }}\n\
         \x20 use_backend be\n\
         \x20 http-response set-header X-Resp \"%b %s %ST %[status] %[res.hdr(x-srv)] %HM %si:%sp %ac\"\n\
         \x20 http-response set-header X-Resp-ID %ID\n\
         backend be\n  http-request set-header X-Be \"%b %s %f %{{+Q}}b\"\n  server s1 {server}\n"
    )
}

fn requests() -> Vec<String> {
    vec![
        get("/p/a%22b?q=1&r=2", "x-q: a\"b]c\\d\r\nx-ctl: a\tb\x01c\r\n"),
        get("/rw/x?k=v", ""),
        get("/go", ""),
        get("/pfx/a?z=1", ""),
        get("/lit", ""),
    ]
}

/// `value` with each run of upper-case hexadecimal digits masked: numbers that differ
/// between runs, in decimal or in `%{+X}` form.
fn masked(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match (
            c.is_ascii_digit() || ('A'..='F').contains(&c),
            out.ends_with('#'),
        ) {
            (true, true) => {}
            (true, false) => out.push('#'),
            (false, _) => out.push(c),
        }
    }
    out
}

/// `%{+X}` of `n`: upper-case hexadecimal, four digits at least.
fn hex(n: u64) -> String {
    format!("{n:04X}")
}

/// hapx's own values that differ from run to run, checked by how they derive from what the
/// client and the server know.
fn check_derivations(seen: &[Option<Response>], server: SocketAddr) {
    let first = seen[0].as_ref().expect("a response to the first request");
    // `%ci:%cp`: the client's address and a port.
    let client = first.forwarded("x-client").expect("x-client");
    let (ip, port) = client.split_once(':').expect("ip:port");
    assert_eq!(ip, "127.0.0.1");
    assert!(port.parse::<u16>().is_ok(), "{client}");
    // `%rt %{+X}rt %pid %{+X}pid`: a request number and the process id, each in both forms.
    let num: Vec<&str> = first
        .forwarded("x-num")
        .expect("x-num")
        .split(' ')
        .collect();
    let (rt, pid): (u64, u64) = (num[0].parse().unwrap(), num[2].parse().unwrap());
    assert_eq!((num[1], num[3]), (hex(rt).as_str(), hex(pid).as_str()));
    // The next request on the connection has the next number.
    let second: Vec<String> = seen[1]
        .as_ref()
        .expect("a second response")
        .forwarded("x-num")
        .expect("x-num")
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(second[0], (rt + 1).to_string());
    // `%Ts %{+X}Ts`: now, in seconds since the epoch.
    let dates: Vec<&str> = first
        .forwarded("x-dates")
        .expect("x-dates")
        .split(' ')
        .collect();
    let ts: u64 = dates[0].parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts) < 60, "{dates:?}");
    assert_eq!(dates[1], hex(ts));
    // The unique id goes to the server, and shows in the response's `%ID`.
    let uid = first.forwarded("x-uid").expect("x-uid");
    assert_eq!(first.header("x-resp-id"), Some(uid));
    assert!(uid.ends_with(&format!("_{}", hex(rt))), "{uid}");
    // The response's `%si:%sp` is the server.
    let resp = first.header("x-resp").expect("x-resp");
    assert!(resp.contains(&server.to_string()), "{resp}");
}

#[test]
fn rule_values_are_log_formats_like_haproxy() {
    let test = "rule_values_are_log_formats_like_haproxy";
    let web = EchoServer::start_with("web", "x-srv: one\r\n");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = config(addr, web.addr);
    let reqs = requests();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| exchange(a, &reqs));
    let resp = |seen: &[Option<Response>], i: usize| -> Response {
        seen[i]
            .clone()
            .unwrap_or_else(|| panic!("no response to request {i}: {seen:#?}"))
    };
    // What hapx did, on its own.
    let first = resp(&ours, 0);
    let fwd = |name| first.forwarded(name).unwrap_or_default().to_string();
    assert_eq!(
        fwd("x-front"),
        format!("127.0.0.1:{} fe fe fe <NOSRV>", addr.port())
    );
    assert_eq!(
        fwd("x-line"),
        "\"GET /p/a%22b?q=1&r=2 HTTP/1.1\" GET /p/a%22b /p/a%22b?q=1&r=2 HTTP/1.1 ?q=1&r=2 /p/a%22b \"/p/a%22b?q=1&r=2\""
    );
    assert_eq!(fwd("x-empty"), "<||\"\"||||||\"\">");
    assert_eq!(
        fwd("x-fetch"),
        "127.0.0.1 TEST.EXAMPLE a\\\"b\\]c\\\\d a\tb%01c \"127.0.0.1\" 7F000001"
    );
    assert_eq!(fwd("x-spaces"), "a  b   %  /p/a%22b +x");
    assert_eq!(fwd("x-timers"), "-1 -1 -1 -1 -1 0 0 -1 -1");
    assert_eq!(fwd("x-be"), "be <NOSRV> fe \"be\"");
    assert_eq!(
        first
            .header("x-resp")
            .map(|r| r.rsplit_once(' ').map_or(r, |(a, _)| a)),
        Some(format!("be s1 200 200 one GET {}", web.addr).as_str())
    );
    // The request line as the client sent it, before `set-path` rewrote it.
    let rewritten = resp(&ours, 1);
    assert_eq!(
        rewritten.forwarded("x-after"),
        Some("/rw/x?k=v /rewritten/rw/x")
    );
    assert_eq!(
        resp(&ours, 2).header("location"),
        Some("/to/127.0.0.1/GET/go?c=127.0.0.1")
    );
    let prefixed = format!("/pre-{}/pfx/a?z=1", addr.port());
    assert_eq!(resp(&ours, 3).header("location"), Some(prefixed.as_str()));
    // The `redirect` keyword takes its location as it is written.
    assert_eq!(resp(&ours, 4).header("location"), Some("/lit/%ci%[src]"));
    check_derivations(&ours, web.addr);
    let Some(theirs) = theirs else { return };
    // Side by side: the same statuses and locations, the same values byte for byte where
    // nothing differs between two runs, the same shape where something does.
    assert_eq!(ours.len(), theirs.len(), "{ours:#?}\n{theirs:#?}");
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        let (o, t) = (
            o.as_ref().expect("hapx answered"),
            t.as_ref().expect("HAProxy answered"),
        );
        assert_eq!(
            (o.status, o.header("location")),
            (t.status, t.header("location")),
            "request {i}"
        );
        for name in EXACT {
            assert_eq!(
                o.forwarded(name),
                t.forwarded(name),
                "{name} of request {i}"
            );
        }
        for name in ["x-client", "x-num", "x-dates", "x-uid"] {
            assert_eq!(
                o.forwarded(name).map(masked),
                t.forwarded(name).map(masked),
                "{name} of request {i}"
            );
        }
        for name in ["x-resp", "x-resp-id"] {
            assert_eq!(
                o.header(name).map(masked),
                t.header(name).map(masked),
                "{name} of request {i}"
            );
        }
    }
}

/// Broken rule values: the same `-c` messages as HAProxy, word for word; an L6 fetch in an
/// HTTP value is a warning in both.
#[test]
fn rule_value_errors_read_like_haproxys() {
    let test = "rule_value_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let cases = [
        ("  http-request set-header X %zz", 1),
        ("  http-request set-header X a%[res.hdr(a)]b", 1),
        ("  http-request set-header X %[status]", 1),
        ("  http-response set-header X <%[path]>", 1),
        ("  http-response set-header X %[req.len]", 1),
        ("  http-request set-path /a%[nosuch]", 1),
        ("  http-request set-header X %[src,nosuch]", 1),
        ("  http-request set-header X %[src", 1),
        ("  http-request set-header X \"%[src b\"", 1),
        ("  http-request set-header X a%{+Q}", 1),
        ("  http-request redirect location /x%[res.hdr(a)]", 1),
        ("  http-request add-header X 5%", 1),
        ("  http-request set-uri %1", 1),
        ("  http-request set-header X %[req.len]", 0),
        ("  http-request set-header X %[req.ssl_sni]_%ci", 0),
        ("  redirect location /x%zz", 0),
        (
            "  http-request return status 200 hdr Content-Length 5 hdr X %ci",
            0,
        ),
        ("  http-request return default-errorfiles hdr X a", 0),
        ("  http-request return hdr X", 1),
        ("  http-request return lf-string %ci", 1),
        (
            "  http-request return content-type text/plain lf-string %[res.hdr(a)]",
            1,
        ),
        ("  http-request deny hdr X %zz", 1),
    ];
    for (i, (line, status)) in cases.iter().enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, line, "", "");
        assert_eq!(theirs.0, *status, "HAProxy on {line:?}: {theirs:#?}");
        assert_eq!(ours, theirs, "{line:?}");
    }
}

/// Replies with log-format parts, `return|deny ... hdr NAME FMT` and `lf-string FMT`, in
/// request and response rules: the same responses as HAProxy's, byte for byte.
#[test]
fn replies_with_formats_like_haproxy() {
    let test = "replies_with_formats_like_haproxy";
    let web = EchoServer::start_with("web", "x-srv: one\r\n");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  unique-id-format id-%ci-%b\n\
         \x20 http-request return status 201 content-type text/plain hdr X-A \"%ci %[path]\" hdr X-B lit string hello if {{ path /a }}\n\
         \x20 http-request return status 202 hdr X-C %b hdr Content-Length 99 if {{ path /b }}\n\
         \x20 http-request return content-type text/plain lf-string \"p=%[path] f=%f %{{+Q}}HM\" hdr X-D 1 if {{ path /c }}\n\
         \x20 http-request deny hdr X-E %fi:%fp if {{ path /d }}\n\
         \x20 http-request deny deny_status 429 if {{ path /e }}\n\
         \x20 default_backend be\n\
         backend be\n\
         \x20 http-response return status 203 hdr X-F \"%s %b %HU %ID\" if {{ res.hdr(x-srv) one }}\n\
         \x20 server s1 {}\n",
        web.addr
    );
    let requests: Vec<String> = ["/a", "/b", "/c?q", "/d", "/e", "/f?x=1"]
        .iter()
        .map(|p| get(p, ""))
        .collect();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| exchange(a, &requests));
    let resp = |i: usize| ours[i].clone().expect("a response");
    let a = resp(0);
    assert_eq!((a.status, a.body.as_str()), (201, "hello"));
    assert_eq!(a.header("x-a"), Some("127.0.0.1 /a"));
    assert_eq!(a.header("x-b"), Some("lit"));
    let b = resp(1);
    assert_eq!((b.status, b.header("x-c")), (202, Some("fe")));
    assert_eq!(b.header("content-length"), Some("0"));
    assert_eq!(resp(2).body, "p=/c f=fe \"GET\"");
    let d = resp(3);
    let front = format!("127.0.0.1:{}", addr.port());
    assert_eq!(
        (d.status, d.header("x-e"), d.body.as_str()),
        (403, Some(front.as_str()), "")
    );
    assert_eq!(resp(4).status, 429);
    let f = resp(5);
    assert_eq!(
        (f.status, f.header("x-f")),
        (203, Some("s1 be /f?x=1 id-127.0.0.1-be"))
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Every timer, in a value: `Th Ti TR Tq Tw Tc Tr Td Ta Tt Tu`.
const TIMERS: &str = "%Th/%Ti/%TR/%Tq/%Tw/%Tc/%Tr/%Td/%Ta/%Tt/%Tu";

/// A client's request: after `wait`, its head in `parts`, each `gap` after the previous one.
struct Slow<'a> {
    wait: Duration,
    parts: &'a [&'a str],
    gap: Duration,
}

/// Sends `requests` one after the other on one connection, each after its wait and in its
/// parts, reading each response.
fn slow_exchange(addr: SocketAddr, requests: &[Slow<'_>]) -> Vec<Option<Response>> {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Vec::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(s.try_clone().expect("a clone of the stream"));
    let mut out = Vec::new();
    for req in requests {
        sleep(req.wait);
        for (i, part) in req.parts.iter().enumerate() {
            if i > 0 {
                sleep(req.gap);
            }
            if s.write_all(part.as_bytes()).is_err() {
                return out;
            }
        }
        out.push(read_response(&mut reader));
    }
    out
}

/// The milliseconds of the day of a `%t`/`%tr` date (`26/Nov/2026:06:19:34.455`).
fn day_ms(date: &str) -> i64 {
    let time = date.split_once(':').expect("a date, then a time").1;
    let (hms, ms) = time.split_once('.').expect("milliseconds");
    let n: Vec<i64> = hms.split(':').map(|v| v.parse().unwrap()).collect();
    ((n[0] * 60 + n[1]) * 60 + n[2]) * 1000 + ms.parse::<i64>().unwrap()
}

/// A value of [`TIMERS`], by name.
#[derive(Debug)]
struct Timers {
    th: i64,
    ti: i64,
    tr_: i64,
    tq: i64,
    tw: i64,
    tc: i64,
    tr: i64,
    td: i64,
    ta: i64,
    tt: i64,
    tu: i64,
}

/// The timers of a value shown for a frontend that logs no end of sessions: HAProxy marks
/// `Ta`, `Tt` and `Tu` with `+` (as partial), and only them.
fn timers(value: Option<&str>) -> Timers {
    let value = value.expect("a timers value");
    let (marked, t): (Vec<bool>, Vec<i64>) = value
        .split('/')
        .map(|v| {
            let n = v.strip_prefix('+').unwrap_or(v);
            (
                n != v,
                n.parse::<i64>().unwrap_or_else(|_| panic!("{value}")),
            )
        })
        .unzip();
    assert_eq!(t.len(), 11, "{value}");
    let partial: Vec<usize> = (0..11).filter(|&i| marked[i]).collect();
    assert_eq!(partial, [8, 9, 10], "{value}");
    Timers {
        th: t[0],
        ti: t[1],
        tr_: t[2],
        tq: t[3],
        tw: t[4],
        tc: t[5],
        tr: t[6],
        td: t[7],
        ta: t[8],
        tt: t[9],
        tu: t[10],
    }
}

/// `ms` is about `expected`: a little less at most (a first byte read late on a loaded
/// machine moves time from `TR` to `Ti`), not much more.
fn about(ms: i64, expected: i64, what: &str) {
    assert!(
        (expected - 50..=expected + 400).contains(&ms),
        "{what}: {ms} ms, expected about {expected}"
    );
}

/// The timers of a request that waited `idle` ms before its first byte and took `head` ms
/// more to send its head: in a request rule's value, only `Ti` is known (the request's own
/// times come once its rules ran); in a response rule's value, the request's and the
/// server's, the end not yet (`Tt` 0).
fn check_timers(seen: &Response, idle: i64, head: i64, who: &str) {
    let req = timers(seen.forwarded("x-req"));
    about(req.ti, idle, &format!("{who}: request Ti"));
    assert_eq!(
        (
            req.th, req.tr_, req.tq, req.tw, req.tc, req.tr, req.td, req.tt
        ),
        (0, -1, -1, -1, -1, -1, -1, 0),
        "{who}: {req:?}"
    );
    assert_eq!((req.ta, req.tu), (-req.ti, -req.ti), "{who}: {req:?}");
    // `%tr` is the date of the first byte: `%t` and `Ti` later.
    let dates: Vec<&str> = seen
        .forwarded("x-dates")
        .expect("x-dates")
        .split(' ')
        .collect();
    assert_eq!(
        day_ms(dates[1]) - day_ms(dates[0]),
        req.ti,
        "{who}: {dates:?}"
    );
    let resp = timers(seen.header("x-t"));
    about(resp.ti, idle, &format!("{who}: response Ti"));
    about(resp.tr_, head, &format!("{who}: response TR"));
    assert_eq!(resp.tq, resp.th + resp.ti + resp.tr_, "{who}: {resp:?}");
    assert!(
        resp.tw >= 0 && resp.tc >= 0 && resp.tr >= 0,
        "{who}: {resp:?}"
    );
    // The end is not known yet: 0, and the others counted back from it.
    assert_eq!(resp.tt, 0, "{who}: {resp:?}");
    assert_eq!(
        resp.td,
        -(resp.tq + resp.tw + resp.tc + resp.tr),
        "{who}: {resp:?}"
    );
    assert_eq!((resp.ta, resp.tu), (-resp.ti, -resp.ti), "{who}: {resp:?}");
}

/// Timers in rule values, where only a backend's values show them and nothing logs: a
/// request whose first byte comes after 300 ms and its head 200 ms later, then one 100 ms
/// after the first response on the kept-alive connection, as HAProxy shows them (`Ta Tt Tu`
/// marked partial, as the frontend shows no end of sessions); a request to the other
/// backend, whose response rules are literal, is edited the same.
#[test]
fn timers_in_values_like_haproxy() {
    let test = "timers_in_values_like_haproxy";
    let web = EchoServer::start("web");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request set-header X-Fe literal\n\
         \x20 use_backend timed if {{ path_beg /t }}\n  default_backend plain\n\
         backend timed\n\
         \x20 http-request set-header X-Req \"{TIMERS}\"\n\
         \x20 http-request set-header X-Dates \"%t %tr\"\n\
         \x20 http-response set-header X-T \"{TIMERS}\"\n\
         \x20 server s1 {web}\n\
         backend plain\n\
         \x20 http-response set-header X-Plain \"a b\"\n\
         \x20 http-response del-header content-type\n\
         \x20 server s1 {web}\n",
        web = web.addr
    );
    let requests = [
        Slow {
            wait: Duration::from_millis(300),
            parts: &["GET /t/1 HTTP/1.1\r\nhost: a\r\n", "x-a: 1\r\n\r\n"],
            gap: Duration::from_millis(200),
        },
        Slow {
            wait: Duration::from_millis(100),
            parts: &["GET /t/2 HTTP/1.1\r\nhost: a\r\n\r\n"],
            gap: Duration::ZERO,
        },
        Slow {
            wait: Duration::ZERO,
            parts: &["GET /p HTTP/1.1\r\nhost: a\r\n\r\n"],
            gap: Duration::ZERO,
        },
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| slow_exchange(a, &requests));
    for (who, seen) in [("hapx", Some(&ours)), ("HAProxy", theirs.as_ref())] {
        let Some(seen) = seen else { continue };
        assert_eq!(seen.len(), 3, "{who}: {seen:#?}");
        let resp = |i: usize| -> &Response {
            seen[i]
                .as_ref()
                .unwrap_or_else(|| panic!("{who}: no response to request {i}"))
        };
        check_timers(resp(0), 300, 200, who);
        check_timers(resp(1), 100, 0, who);
        let plain = resp(2);
        assert_eq!(
            (
                plain.forwarded("x-fe"),
                plain.forwarded("x-req"),
                plain.header("x-plain"),
                plain.header("x-t")
            ),
            (Some("literal"), None, Some("a b"), None),
            "{who}: {plain:#?}"
        );
    }
}

/// `%rt` is HAProxy's count of streams: every HTTP request and every TCP session takes a
/// number, whether a log line or a value shows it or not; a request refused by the HTTP
/// layer (400) takes none. Numbers seen in a frontend with `unique-id-format %rt`, in one
/// that only shows `%rt` in a rule for some paths, around TCP sessions and a bad request;
/// the unique id header comes after the rules' headers.
#[test]
fn request_numbers_count_every_stream_like_haproxy() {
    let test = "request_numbers_count_every_stream_like_haproxy";
    let server = EchoServer::start("s");
    let ports = [free_port(), free_port(), free_port()];
    let [ids, quiet, tcp] = ports.map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend ids\n  bind {ids}\n\
         \x20 unique-id-format %rt\n  unique-id-header X-UID\n\
         \x20 http-request set-header X-RT %rt if {{ path_beg /a }}\n  default_backend be\n\
         frontend quiet\n  bind {quiet}\n\
         \x20 http-request set-header X-RT2 %rt if {{ path_beg /a }}\n  default_backend be\n\
         listen tcp\n  mode tcp\n  bind {tcp}\n  server s {}\n\
         backend be\n  server s {}\n",
        server.addr, server.addr
    );
    let run = |_: SocketAddr| {
        let mut seen = Vec::new();
        let mut note = |responses: Vec<Option<Response>>| {
            for r in responses.into_iter().flatten() {
                // The numbered headers, in the order the server got them.
                let numbered: Vec<String> = r
                    .body
                    .lines()
                    .skip(2)
                    .filter(|l| l.starts_with("x-rt") || l.starts_with("x-uid"))
                    .map(str::to_string)
                    .collect();
                seen.push(numbered);
            }
        };
        let paths = |list: &[&str]| list.iter().map(|p| get(p, "")).collect::<Vec<_>>();
        note(exchange(ids, &paths(&["/a", "/b", "/a"])));
        note(exchange(quiet, &paths(&["/a", "/b", "/a"])));
        note(exchange(tcp, &paths(&["/t"])));
        let mut bad = TcpStream::connect(quiet).unwrap();
        bad.write_all(b"GET /a\x01 HTTP/1.1\r\nhost: h\r\n\r\n")
            .unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let status = read_response(&mut BufReader::new(bad)).map(|r| r.status);
        assert_eq!(status, Some(400));
        note(exchange(quiet, &paths(&["/b", "/a"])));
        note(exchange(ids, &paths(&["/a"])));
        seen
    };
    let (ours, theirs) = side_by_side(test, &config, ids, run);
    let expected: [&[&str]; 10] = [
        &["x-rt: 0", "x-uid: 0"],
        &["x-uid: 1"],
        &["x-rt: 2", "x-uid: 2"],
        &["x-rt2: 3"],
        &[],
        &["x-rt2: 5"],
        &[],
        &[],
        &["x-rt2: 8"],
        &["x-rt: 9", "x-uid: 9"],
    ];
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right) differ");
    }
}
