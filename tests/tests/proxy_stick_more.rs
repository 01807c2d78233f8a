//! Stick tables side by side with HAProxy 2.6: binary keys (padded or cut to the table's
//! `len`, shown in hex, no key of theirs named on the command line), `stick store-response`
//! in HTTP and TCP modes, and samples of one type keying a table of another (HAProxy's
//! `sample_casts`, and the configurations it refuses for a type it cannot cast). Each test
//! runs the same configuration and traffic through hapx-proxy and then HAProxy and compares
//! what clients got, what `show table` shows (entry pointers masked) and what `-c` says.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, Response, TIMEOUTS, check_alike, get, read_response, side_by_side,
};
use hapx_tests::proxy_stick::masked;

fn front() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A configuration with an admin stats socket at `socket` and `sections` after the
/// defaults (of `mode`).
fn config(socket: &Path, mode: &str, sections: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode {mode}\n{TIMEOUTS}{sections}",
        socket.display()
    )
}

/// A request for `/` with `headers` on a connection of its own; the response.
fn request(addr: SocketAddr, headers: &str) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(get("/", &format!("{headers}connection: close\r\n")).as_bytes())
        .ok()?;
    read_response(&mut BufReader::new(s))
}

/// `data` sent on a TCP connection of its own, then the first line the server answered.
fn send_tcp(addr: SocketAddr, data: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(data).is_err() {
        return String::new();
    }
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.trim().to_string()
}

/// `show table NAME` for each of `tables`, entry pointers masked.
fn tables(socket: &Path, tables: &[&str]) -> Vec<String> {
    (tables.iter())
        .flat_map(|t| masked(&cli(socket, &format!("show table {t}")), 0..=i64::MAX))
        .collect()
}

/// Waits until `show table NAME` lists `entries` entries (sessions end after their
/// clients read the answer), up to a few seconds.
fn wait_entries(socket: &Path, name: &str, entries: usize) {
    let header = format!("used:{entries}\n");
    for _ in 0..50 {
        if cli(socket, &format!("show table {name}")).contains(&header) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until no entry of `names` is in use (the sessions that tracked them ended), up to
/// a few seconds.
fn wait_unused(socket: &Path, names: &[&str]) {
    for _ in 0..50 {
        let shown = tables(socket, names);
        if !shown
            .iter()
            .any(|l| l.contains(" use=") && !l.contains(" use=0 "))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lets the proxy end the streams whose responses were read.
fn settle() {
    std::thread::sleep(Duration::from_millis(200));
}

/// Binary keys from the request's first bytes: padded with zeros to `len` (32 by default)
/// or cut to it, shown in uppercase hex; a string table beside them cuts at the NUL byte.
/// The table commands filter them by data, and refuse to name one by key as HAProxy 2.6
/// does, in its words for each action.
#[test]
fn binary_keys_track_and_show_as_haproxy() {
    let server = NamedServer::start("s1", Ipv4Addr::LOCALHOST, Duration::from_secs(1));
    let dir = temp_dir("stick-more-binary");
    let socket = dir.join("stats.sock");
    let front = front();
    let sections = format!(
        "frontend fe\n  bind {front}\n  tcp-request inspect-delay 2s\n\
         \x20 tcp-request content track-sc0 req.payload(0,4) table tb\n\
         \x20 tcp-request content track-sc1 req.payload(0,4) table tl\n\
         \x20 tcp-request content track-sc2 req.payload(0,4) table ts\n\
         \x20 default_backend b\n\
         backend tb\n  stick-table type binary size 10 store gpc0,conn_cnt\n\
         backend tl\n  stick-table type binary len 2 size 10 store conn_cnt\n\
         backend ts\n  stick-table type string size 10 store conn_cnt\n\
         backend b\n  server s1 {}\n",
        server.addr
    );
    let config = config(&socket, "tcp", &sections);
    let (ours, theirs) = side_by_side("stick-more-binary", &config, front, |addr| {
        let answers: Vec<String> = [&b"ab\0xyz"[..], b"\xff\xab\x124", b"GET / HTTP/1.0\r\n"]
            .iter()
            .map(|data| send_tcp(addr, data))
            .collect();
        wait_entries(&socket, "tb", 3);
        wait_unused(&socket, &["tb", "tl", "ts"]);
        let shown = tables(&socket, &["tb", "tl", "ts"]);
        let commands = [
            "show table",
            "show table tb data.conn_cnt gt 0",
            "show table tb key 61620078",
            "clear table tb key 00",
            "set table tb key 00 data.gpc0 1",
            "show table tb key",
        ]
        .map(|c| masked(&cli(&socket, c), 0..=i64::MAX));
        (answers, shown, commands)
    });
    assert_eq!(ours.0, ["s1", "s1", "s1"]);
    assert!(
        ours.1
            .contains(&"0x?: key=FFAB use=0 exp=? conn_cnt=1".to_string()),
        "{:?}",
        ours.1
    );
    assert!(
        ours.1
            .contains(&"0x?: key=ab use=0 exp=? conn_cnt=1".to_string()),
        "{:?}",
        ours.1
    );
    assert_eq!(
        ours.2[2],
        [
            "Showing keys from tables of type other than ip, ipv6, string and integer is not supported"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// `stick on req.payload(0,4)` with a binary table: a client's first bytes keep it on the
/// server its first connection went to.
#[test]
fn stick_on_binary_keys_keeps_clients() {
    let s1 = NamedServer::start("s1", Ipv4Addr::LOCALHOST, Duration::from_secs(1));
    let s2 = NamedServer::start("s2", Ipv4Addr::LOCALHOST, Duration::from_secs(1));
    let dir = temp_dir("stick-more-binary-on");
    let socket = dir.join("stats.sock");
    let front = front();
    let sections = format!(
        "listen l\n  bind {front}\n  balance roundrobin\n  tcp-request inspect-delay 2s\n\
         \x20 tcp-request content accept if {{ req.len ge 4 }}\n\
         \x20 stick-table type binary len 6 size 10\n  stick on req.payload(0,4)\n\
         \x20 server s1 {}\n  server s2 {}\n",
        s1.addr, s2.addr
    );
    let config = config(&socket, "tcp", &sections);
    let (ours, theirs) = side_by_side("stick-more-binary-on", &config, front, |addr| {
        let answers: Vec<String> = [b"AAAAx", b"BBBBy", b"BBBBz", b"AAAAw", b"BBBBv"]
            .iter()
            .map(|data| send_tcp(addr, &data[..]))
            .collect();
        wait_unused(&socket, &["l"]);
        (answers, tables(&socket, &["l"]))
    });
    let (a, b) = (ours.0[0].clone(), ours.0[1].clone());
    assert_ne!(a, b, "{ours:?}");
    assert_eq!(ours.0, [&a, &b, &b, &a, &b].map(String::from), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Stick fetches read entries of binary keys (`sc_*`, `scN_*`, `table_cnt`), the HTTP
/// tracking counting the requests of each key.
#[test]
fn stick_fetches_read_binary_entries() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("stick-more-fetches");
    let socket = dir.join("stats.sock");
    let front = front();
    let sections = format!(
        "frontend fe\n  bind {front}\n\
         \x20 http-request track-sc0 req.hdr(x),b64dec table tb\n\
         \x20 http-request set-header x-req %[sc_http_req_cnt(0)]\n\
         \x20 http-request set-header x-gpc %[sc0_inc_gpc0]\n\
         \x20 http-request set-header x-cnt %[table_cnt(tb)]\n\
         \x20 default_backend b\n\
         backend tb\n  stick-table type binary len 6 size 10 store gpc0,http_req_cnt\n\
         backend b\n  server s1 {}\n",
        server.addr
    );
    let config = config(&socket, "http", &sections);
    let (ours, theirs) = side_by_side("stick-more-fetches", &config, front, |addr| {
        let seen: Vec<[Option<String>; 3]> = ["YWIAYw==", "YWIAYw==", "AQIDBAUGBwg=", "YWIAYw=="]
            .iter()
            .map(|x| {
                let r = request(addr, &format!("x: {x}\r\n"));
                settle();
                ["x-req", "x-gpc", "x-cnt"]
                    .map(|h| r.as_ref().and_then(|r| r.forwarded(h)).map(String::from))
            })
            .collect();
        (seen, tables(&socket, &["tb"]))
    });
    let third = ours.0[2].clone().map(|v| v.unwrap_or_default());
    assert_eq!(third, ["1", "1", "2"], "{ours:?}");
    assert!(
        ours.1
            .contains(&"0x?: key=616200630000 use=0 exp=? gpc0=3 http_req_cnt=3".into()),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// Samples of each type keying tables of each type, as HAProxy casts them: text read as
/// `buf2ip`/`inet_pton`/`read_int64` read it, integers keeping their low 32 bits (and 8
/// big-endian bytes in a binary key), addresses mapped between families when they can be,
/// binary text cut at its NUL, a string key at 31 bytes by default; what casts to nothing
/// stores nothing. Integer keys are listed in HAProxy's tree order (their bytes in the
/// host's order).
#[test]
fn samples_cast_into_keys_as_haproxy() {
    let dir = temp_dir("stick-more-casts");
    let socket = dir.join("stats.sock");
    let front = front();
    let fetches = [
        ("str", "req.hdr(x)"),
        ("int", "req.hdr_val(x)"),
        ("ip", "req.hdr_ip(x)"),
        ("bin", "req.hdr(x),b64dec"),
    ];
    let types = [
        ("ip", "ip"),
        ("ip6", "ipv6"),
        ("int", "integer"),
        ("str", "string"),
        ("bin", "binary len 20"),
    ];
    let mut rules = String::new();
    let mut backends = String::new();
    for (t, kind) in types {
        for (f, fetch) in fetches {
            // The casts HAProxy has no function for are refused in the configuration.
            if f == "bin" && matches!(t, "ip" | "ip6" | "int") {
                continue;
            }
            rules += &format!(
                "  http-request track-sc0 {fetch} table t{t} if {{ req.hdr(f) {f} }} {{ req.hdr(t) {t} }}\n"
            );
        }
        backends += &format!("backend t{t}\n  stick-table type {kind} size 100\n");
    }
    let sections =
        format!("frontend fe\n  bind {front}\n{rules}  http-request return status 200\n{backends}");
    let config = config(&socket, "http", &sections);
    let cases = [
        "str ip 1.2.3.4xyz",
        "str ip 01.2.3.9",
        "str ip 1.2.3",
        "str ip ::ffff:1.2.3.10",
        "str ip 1.2.3.256",
        "str ip 1.2.3.11.5",
        "str ip6 ::1",
        "str ip6 1.2.3.4",
        "str ip6 ::ffff:1.2.3.4",
        "str ip6 0:0:0:0:0:0:0:0:4",
        "str int 12abc",
        "str int abc",
        "str int -5",
        "str int +7",
        "str int 99999999999",
        "str int 4294967297",
        "str str 0123456789012345678901234567890123456789",
        "str bin ab",
        "str bin 0123456789012345678901234567890",
        "int ip 16909060",
        "int ip6 16909061",
        "int int -1",
        "int str -42",
        "int bin 258",
        "ip ip ::ffff:1.2.3.8",
        "ip ip ::9",
        "ip ip6 1.2.3.12",
        "ip int 1.2.3.13",
        "ip int ::1",
        "ip str ::ffff:1.2.3.14",
        "ip bin 1.2.3.15",
        "ip bin ::16",
        "bin str YWIAY2Q=",
        "bin bin YWIAY2Q=",
    ];
    let (ours, theirs) = side_by_side("stick-more-casts", &config, front, |addr| {
        for case in cases {
            let [f, t, x] = [0, 1, 2].map(|i| case.split(' ').nth(i).unwrap_or_default());
            let r = request(addr, &format!("f: {f}\r\nt: {t}\r\nx: {x}\r\n"));
            assert_eq!(r.map(|r| r.status), Some(200), "{case}");
        }
        settle();
        tables(&socket, &["tip", "tip6", "tint", "tstr", "tbin"])
    });
    for entry in [
        "0x?: key=1.2.3.4 use=0 exp=?",
        "0x?: key=::ffff:1.2.3.12 use=0 exp=?",
        "0x?: key=4294967291 use=0 exp=?",
        "0x?: key=0123456789012345678901234567890 use=0 exp=?",
        "0x?: key=0000000000000102000000000000000000000000 use=0 exp=?",
    ] {
        assert!(ours.contains(&entry.to_string()), "{entry}: {ours:?}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// The configurations HAProxy refuses for a key its table cannot take (a boolean or binary
/// sample for an address, binary for an integer, the method for either), for `stick` and
/// `track-sc` rules, in its words; binary tables take everything; `stick store-response`
/// takes only what the response has, in HAProxy's words too.
#[test]
fn keys_a_table_cannot_take_are_refused_as_haproxy() {
    let cases = [
        (
            "ip",
            "stick on always_true",
            "tcp-request content track-sc0 always_true",
        ),
        (
            "ipv6",
            "stick on req.payload(0,4)",
            "http-request track-sc1 req.payload(0,4)",
        ),
        (
            "integer",
            "stick match method",
            "http-request track-sc2 req.hdr(x),b64dec",
        ),
        ("integer", "stick on str(a)", "http-request track-sc0 src"),
        (
            "binary",
            "stick on always_true",
            "http-request track-sc0 method",
        ),
        ("binary len 0", "stick on src", ""),
        ("binary len abc", "stick on src", ""),
        ("ip", "stick store-response always_true", ""),
        ("ip", "stick store-response req.hdr(x)", ""),
        ("ip", "stick store-response req.len", ""),
        (
            "string",
            "stick store-response method",
            "stick store-response res.hdr(x) foo",
        ),
        ("string", "stick store-response res.hdr(x) table nosuch", ""),
        (
            "string",
            "stick store-response res.hdr(x) if { path / }",
            "",
        ),
        ("string", "stick on res.hdr(x)", "stick on bogus"),
        ("string", "stick on src table", "stick match"),
    ];
    for (i, (kind, first, second)) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}\
             backend b\n  stick-table type {kind} size 10\n  {first}\n  {second}\n\
             \x20 server s 127.0.0.1:1\n"
        );
        let (_, messages) = check_alike(&format!("stick-more-check-{i}"), &text);
        if *kind == "ip" && i == 0 {
            assert_eq!(
                messages,
                [
                    "ALERT: Proxy 'b': type of fetch not usable with type of stick-table 'b'.",
                    "ALERT: Proxy 'b': stick-table 'b' uses a type incompatible with the 'track-sc0' rule."
                ]
            );
        }
    }
}

/// `stick store-response res.hdr(x-srv)`: each server's answer stores its name under the
/// value it sent, and later requests naming that value (`stick match`) go to it; `hdr`
/// reads the response's headers in such a rule.
#[test]
fn store_response_stores_what_the_server_answered() {
    let s1 = EchoServer::start_with("s1", "x-srv: one\r\n");
    let s2 = EchoServer::start_with("s2", "x-srv: two\r\n");
    let dir = temp_dir("stick-more-store-response");
    let socket = dir.join("stats.sock");
    let front = front();
    let sections = format!(
        "frontend fe\n  bind {front}\n  default_backend b\n\
         backend b\n  balance roundrobin\n  stick-table type string size 10 expire 60s\n\
         \x20 stick match req.hdr(x-want)\n  stick store-response res.hdr(x-srv)\n\
         \x20 stick store-response hdr(x-srv) table t2\n\
         \x20 server s1 {}\n  server s2 {}\n\
         backend t2\n  stick-table type string size 10\n",
        s1.addr, s2.addr
    );
    let config = config(&socket, "http", &sections);
    let (ours, theirs) = side_by_side("stick-more-store-response", &config, front, |addr| {
        let served: Vec<String> = ["", "", "two", "two", "one", "two"]
            .iter()
            .map(|want| {
                let header = match *want {
                    "" => String::new(),
                    w => format!("x-want: {w}\r\n"),
                };
                let r = request(addr, &header);
                settle();
                r.map_or(String::new(), |r| r.server().to_string())
            })
            .collect();
        let mut shown = masked(&cli(&socket, "show table b"), 50_000..=60_000);
        // `hdr` reads the response's headers there, as HAProxy's.
        shown.extend(tables(&socket, &["t2"]));
        (served, shown)
    });
    let first = ours.0[0].clone();
    let other = if first == "s1" { "s2" } else { "s1" };
    assert_eq!(ours.0[1], other);
    assert_eq!(ours.0[2..], ["s2", "s2", "s1", "s2"], "{ours:?}");
    assert!(
        ours.1
            .contains(&"0x?: key=two use=0 exp=? server_id=2 server_key=s2".to_string()),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// `stick store-response res.cook(SRV)` with `stick match req.cook(SRV)`: the cookie a
/// server sets (the first `NAME=VALUE` of each comma-separated part of a `Set-Cookie`
/// line) names it, and a client sending that cookie back goes to it.
#[test]
fn a_cookie_the_server_sets_keeps_its_clients() {
    let s1 = EchoServer::start_with("s1", "Set-Cookie: x=1, SRV=one; path=/\r\n");
    let s2 = EchoServer::start_with("s2", "Set-Cookie: SRV=two; Expires=Wed, 21 Oct 2037\r\n");
    let dir = temp_dir("stick-more-res-cook");
    let socket = dir.join("stats.sock");
    let front = front();
    let sections = format!(
        "frontend fe\n  bind {front}\n  default_backend b\n\
         backend b\n  balance roundrobin\n  stick-table type string len 8 size 10\n\
         \x20 stick match req.cook(SRV)\n  stick store-response res.cook(SRV)\n\
         \x20 server s1 {}\n  server s2 {}\n",
        s1.addr, s2.addr
    );
    let config = config(&socket, "http", &sections);
    let (ours, theirs) = side_by_side("stick-more-res-cook", &config, front, |addr| {
        let served: Vec<String> = ["", "", "one", "two", "two", "one"]
            .iter()
            .map(|cookie| {
                let header = match *cookie {
                    "" => String::new(),
                    c => format!("cookie: SRV={c}\r\n"),
                };
                let r = request(addr, &header);
                settle();
                r.map_or(String::new(), |r| r.server().to_string())
            })
            .collect();
        (served, tables(&socket, &["b"]))
    });
    assert_eq!(ours.0[2..], ["s1", "s2", "s2", "s1"], "{ours:?}");
    assert!(
        ours.1
            .contains(&"0x?: key=one use=0 exp=? server_id=1 server_key=s1".to_string()),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// The entries of `stick store-request` rules are stored when the response comes, as
/// HAProxy's `process_store_rules`: an HTTP request its server never answers (504) stores
/// nothing, while a TCP session without `tcp-response content` rules has stored its entry
/// by the time its client reads what its server sent first. (hapx stores it as the
/// connection is made; HAProxy as its response analysers first run, which is mostly then
/// too, but now and then, as its tasks are scheduled, only with the response's first data:
/// a silent server would leave its table empty.)
#[test]
fn store_request_waits_for_the_response() {
    let silent = hapx_tests::proxy::silent_server();
    let greeting = NamedServer::start("s1", Ipv4Addr::LOCALHOST, Duration::from_secs(10));
    let dir = temp_dir("stick-more-store-request");
    let socket = dir.join("stats.sock");
    let [fh, ft] = [front(), front()];
    let sections = format!(
        "listen h\n  bind {fh}\n  stick-table type ip size 10\n  stick store-request src\n\
         \x20 server s1 {silent}\n\
         listen t\n  mode tcp\n  bind {ft}\n  stick-table type ip size 10\n\
         \x20 stick store-request src\n  server s1 {greets}\n",
        greets = greeting.addr
    );
    let config = config(&socket, "http", &sections);
    let (ours, theirs) = side_by_side("stick-more-store-request", &config, fh, |_| {
        let status = request(fh, "").map(|r| r.status);
        let greeted = send_tcp(ft, b"");
        (status, greeted, tables(&socket, &["h", "t"]))
    });
    assert_eq!((ours.0, ours.1.as_str()), (Some(504), "s1"));
    assert_eq!(
        ours.2,
        [
            "# table: h, type: ip, size:10, used:0",
            "# table: t, type: ip, size:10, used:1",
            "0x?: key=127.0.0.1 use=0 exp=? server_id=1 server_key=s1",
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// `stick store-response` in TCP mode runs when HAProxy's response analysers do: without
/// `tcp-response content` rules as the connection is made (nothing of the response read:
/// a payload key stores nothing, the client's address does), with them on what their
/// inspection read.
#[test]
fn store_response_in_tcp_mode_sees_what_inspection_read() {
    let server = NamedServer::start("s1", Ipv4Addr::LOCALHOST, Duration::from_secs(1));
    let dir = temp_dir("stick-more-store-tcp");
    let socket = dir.join("stats.sock");
    let [fa, fb, fc] = [front(), front(), front()];
    let sections = format!(
        "listen a\n  bind {fa}\n  stick-table type string size 10\n\
         \x20 stick store-response res.payload(0,2)\n  server s1 {srv}\n\
         listen b\n  bind {fb}\n  stick-table type string size 10\n\
         \x20 tcp-response inspect-delay 2s\n  tcp-response content accept if {{ res.len ge 3 }}\n\
         \x20 stick store-response res.payload(0,2)\n  server s1 {srv}\n\
         listen c\n  bind {fc}\n  stick-table type ip size 10\n\
         \x20 stick store-response src\n  server s1 {srv}\n",
        srv = server.addr
    );
    let config = config(&socket, "tcp", &sections);
    let (ours, theirs) = side_by_side("stick-more-store-tcp", &config, fc, |_| {
        let answers: Vec<String> = [fa, fb, fc].iter().map(|a| send_tcp(*a, b"")).collect();
        wait_entries(&socket, "b", 1);
        wait_unused(&socket, &["a", "b", "c"]);
        (answers, tables(&socket, &["a", "b", "c"]))
    });
    assert_eq!(ours.0, ["s1", "s1", "s1"]);
    assert!(
        ours.1
            .contains(&"0x?: key=s1 use=0 exp=? server_id=1 server_key=s1".to_string()),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// The entry lines of `show table tb` at `socket`, without the entry's address and expiry,
/// sorted.
fn peer_entries(socket: &Path) -> Vec<String> {
    let mut entries: Vec<String> = (cli(socket, "show table tb").lines())
        .filter(|l| l.starts_with("0x"))
        .map(|l| {
            (l.split_whitespace())
                .filter(|w| !w.starts_with("0x") && !w.starts_with("exp="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    entries.sort();
    entries
}

/// Binary keys replicate between HAProxy and hapx-proxy both ways (HAProxy's key type 7,
/// the table's `len` bytes as they are), and so do string keys of the default length
/// (HAProxy's 32-byte key: 31 bytes and the NUL announced).
#[test]
fn binary_and_default_string_keys_replicate_with_haproxy() {
    if !hapx_tests::require::path(
        "stick-more-peers",
        Path::new(hapx_tests::proxy_rules::HAPROXY),
        "HAProxy",
    ) {
        return;
    }
    let cases = [
        (
            "binary len 6",
            "req.hdr(x-k),b64dec",
            ["YWIAYw==", "AQIDBAUGBwg="],
            "key=616200630000 ",
        ),
        (
            "binary",
            "req.hdr(x-k),b64dec",
            ["/w==", "AAEC"],
            "key=FF00000000000000000000000000000000000000000000000000000000000000 ",
        ),
        (
            "string",
            "req.hdr(x-k)",
            ["0123456789012345678901234567890123456789", "short"],
            "key=0123456789012345678901234567890 ",
        ),
    ];
    for (kind, fetch, keys, learned) in cases {
        let dir = temp_dir("stick-more-peers");
        let (peer, http) = ([free_port(), free_port()], [free_port(), free_port()]);
        let socket = |i: usize| dir.join(format!("n{i}.sock"));
        let config = |i: usize| {
            format!(
                "global\n  stats socket {} level admin\n\
                 peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
                 defaults\n  mode http\n{TIMEOUTS}\
                 frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 {fetch} table tb\n\
                 \x20 http-request return status 200\n\
                 backend tb\n  stick-table type {kind} size 100 expire 60s peers pair store http_req_cnt\n",
                socket(i).display(),
                peer[0],
                peer[1],
                http[i]
            )
        };
        let front = |i: usize| SocketAddr::from(([127, 0, 0, 1], http[i]));
        let binaries = [
            std::path::PathBuf::from(hapx_tests::proxy_rules::HAPROXY),
            hapx_tests::bins::path("hapx-proxy"),
        ];
        let _procs: Vec<hapx_tests::proxy::Proxy> = (0..2)
            .map(|i| {
                let extra = ["-L".to_string(), format!("n{i}")];
                hapx_tests::proxy::Proxy::start_with(
                    binaries[i].clone(),
                    &dir,
                    &format!("n{i}"),
                    &config(i),
                    front(i),
                    &extra,
                )
            })
            .collect();
        for (i, key) in keys.iter().enumerate() {
            let r = request(front(i), &format!("x-k: {key}\r\n"));
            assert_eq!(r.map(|r| r.status), Some(200), "{kind}");
        }
        let replicated = hapx_tests::wait::eventually(Duration::from_secs(10), || {
            let theirs = peer_entries(&socket(0));
            theirs.len() == 2 && theirs == peer_entries(&socket(1))
        });
        assert!(
            replicated,
            "{kind}: HAProxy shows {:?}, hapx {:?}",
            peer_entries(&socket(0)),
            peer_entries(&socket(1))
        );
        // Made on HAProxy's side, learned by hapx's.
        let ours = peer_entries(&socket(1));
        assert!(
            ours.iter().any(|e| e.starts_with(learned)),
            "{kind}: {ours:?}"
        );
    }
}
