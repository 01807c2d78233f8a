//! Stick tables and persistence side by side with HAProxy 2.6, for what a review found
//! different: a stick match is as direct as a cookie (no cookie inserted) and touches its
//! entry, addresses key integer tables, `src_*` fetches read the table of the rule's own
//! proxy, string keys are cut in bytes and shown escaped, `gpt0` is 32 bits, text keys an
//! address table only when it is one of the table's family, the tables fetches name are
//! checked in HAProxy's words, and the table commands answer at each level as HAProxy's.
//! Each test runs the same configuration and traffic through hapx-proxy and then HAProxy
//! and compares what clients got, what `show table` shows (entry pointers masked) and what
//! `-c` says.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, TIMEOUTS, check_both, get, read_response, side_by_side,
};
use hapx_tests::proxy_stick::masked;

fn front() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// An HTTP configuration with an admin stats socket at `socket`: frontend `fe` on `front`
/// with `lines` and default backend `b`, then `sections` (backend `b` among them).
fn http_config(socket: &Path, front: SocketAddr, lines: &str, sections: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n{lines}  default_backend b\n{sections}",
        socket.display()
    )
}

/// A request for `path` with `headers` on a connection of its own; the response.
fn request(addr: SocketAddr, path: &str, headers: &str) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(get(path, &format!("{headers}connection: close\r\n")).as_bytes())
        .ok()?;
    read_response(&mut BufReader::new(s))
}

/// Lets the proxy end the streams whose responses were read.
fn settle() {
    std::thread::sleep(Duration::from_millis(200));
}

/// A runtime API command sent as raw bytes (a key that is not UTF-8); the answer, entry
/// pointers masked.
fn cli_bytes(path: &Path, command: &[u8]) -> String {
    let mut s = UnixStream::connect(path).expect("connecting to the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(&[command, b"\n"].concat()).expect("sending");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    masked(&String::from_utf8_lossy(&out), 0..=i64::MAX).join("|")
}

fn haproxy_here() -> bool {
    Path::new(HAPROXY).exists()
}

/// B1: a request a `stick match` sent to its server is direct, as one a cookie sent:
/// HAProxy inserts no cookie in its response (nor `Cache-control: private`).
#[test]
fn a_stick_match_is_direct_and_gets_no_cookie_inserted() {
    let (s1, s2) = (EchoServer::start("s1"), EchoServer::start("s2"));
    let dir = temp_dir("review-stick-cookie");
    let socket = dir.join("stats.sock");
    let front = front();
    let backend = format!(
        "backend b\n  balance roundrobin\n  cookie SRV insert indirect nocache\n\
         \x20 stick-table type ip size 10 expire 60s\n  stick on src\n\
         \x20 server s1 {} cookie a\n  server s2 {} cookie b\n",
        s1.addr, s2.addr
    );
    let config = http_config(&socket, front, "", &backend);
    let (ours, theirs) = side_by_side("review-stick-cookie", &config, front, |addr| {
        (0..3)
            .map(|_| {
                let r = request(addr, "/", "");
                settle();
                r.map(|r| {
                    let cookies =
                        ["set-cookie", "cache-control"].map(|h| r.header(h).map(String::from));
                    (r.server().to_string(), cookies)
                })
            })
            .collect::<Vec<_>>()
    });
    // The first one was balanced (the cookie inserted), the next ones matched the entry.
    let first = ours[0].clone().expect("a response");
    assert_eq!(
        first.1[0].as_deref(),
        Some(&*format!(
            "SRV={}; path=/",
            if first.0 == "s1" { "a" } else { "b" }
        ))
    );
    for later in &ours[1..] {
        let later = later.clone().expect("a response");
        assert_eq!(later.0, first.0);
        assert_eq!(later.1, [None, None], "{ours:?}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// B2: a `stick match` that finds an entry touches it: its expiry starts again.
#[test]
fn a_stick_match_touches_its_entry() {
    let (s1, s2) = (EchoServer::start("s1"), EchoServer::start("s2"));
    let dir = temp_dir("review-stick-touch");
    let socket = dir.join("stats.sock");
    let front = front();
    let backend = format!(
        "backend b\n  stick-table type ip size 10 expire 20s store server_id\n  stick match src\n\
         \x20 server s1 {}\n  server s2 {}\n",
        s1.addr, s2.addr
    );
    let config = http_config(&socket, front, "", &backend);
    let (ours, theirs) = side_by_side("review-stick-touch", &config, front, |addr| {
        cli(&socket, "set table b key 127.0.0.1 data.server_id 2");
        std::thread::sleep(Duration::from_secs(3));
        let served: Vec<String> = (0..2)
            .map(|_| request(addr, "/", "").map_or(String::new(), |r| r.server().to_string()))
            .collect();
        // Touched by the requests: close to 20 s again, not 17 s.
        (
            served,
            masked(&cli(&socket, "show table b"), 19_000..=20_000),
        )
    });
    assert_eq!(ours.0, ["s2", "s2"]);
    assert_eq!(
        ours.1,
        [
            "# table: b, type: ip, size:10, used:1",
            "0x?: key=127.0.0.1 use=0 exp=? server_id=2 server_key=-"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// B3: an IPv4 address keys an integer table (HAProxy casts it to its number), tracked or
/// stuck on.
#[test]
fn an_address_keys_an_integer_table() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("review-stick-int");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type integer size 10 expire 30s store conn_cnt,http_req_cnt\n\
                 \x20 http-request track-sc0 src\n";
    let backend = format!(
        "backend b\n  stick-table type integer size 10 expire 30s\n  stick on src\n\
         \x20 server s1 {}\n",
        server.addr
    );
    let config = http_config(&socket, front, lines, &backend);
    let (ours, theirs) = side_by_side("review-stick-int", &config, front, |addr| {
        let statuses: Vec<u16> = (0..2)
            .map(|_| request(addr, "/", "").map_or(0, |r| r.status))
            .collect();
        settle();
        (
            statuses,
            masked(&cli(&socket, "show table fe"), 25_000..=30_000),
            masked(&cli(&socket, "show table b"), 25_000..=30_000),
        )
    });
    assert_eq!(ours.0, [200, 200]);
    assert_eq!(
        ours.1[1],
        "0x?: key=2130706433 use=0 exp=? conn_cnt=2 http_req_cnt=2"
    );
    assert_eq!(
        ours.2[1],
        "0x?: key=2130706433 use=0 exp=? server_id=1 server_key=s1"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// B5: a `src_*` fetch without a table reads the table of the proxy its rule is written in
/// (the frontend's here, though the backend has one too and is chosen by then).
#[test]
fn src_fetches_read_the_table_of_their_own_proxy() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("review-stick-own");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 10 expire 30s store conn_cnt\n\
                 \x20 tcp-request connection track-sc0 src\n\
                 \x20 http-response set-header x-c \"%[src_conn_cnt]\"\n";
    let backend = format!(
        "backend b\n  stick-table type ip size 10 expire 30s store gpc0\n\
         \x20 http-request track-sc1 src\n  http-response set-header x-b \"%[src_get_gpc0]\"\n\
         \x20 server s1 {}\n",
        server.addr
    );
    let config = http_config(&socket, front, lines, &backend);
    let (ours, theirs) = side_by_side("review-stick-own", &config, front, |addr| {
        (0..3)
            .map(|_| {
                let r = request(addr, "/", "");
                settle();
                r.map(|r| {
                    (
                        r.header("x-c").map(String::from),
                        r.header("x-b").map(String::from),
                    )
                })
            })
            .collect::<Vec<_>>()
    });
    let seen: Vec<_> = ours
        .iter()
        .flatten()
        .map(|(c, b)| (c.as_deref(), b.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("1"), Some("0")),
            (Some("2"), Some("0")),
            (Some("3"), Some("0"))
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// B6, M7: string keys are cut at the table's length in bytes (whatever that cuts) and shown
/// with HAProxy's escapes; a text keys an address table only when it is an address of the
/// table's family (`::ffff:198.51.100.7` makes no `ip` key, `198.51.100.8` no `ipv6` one).
#[test]
fn text_keys_are_cut_in_bytes_and_shown_escaped() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("review-stick-text");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  http-request track-sc0 req.hdr(x-k) table st if { req.hdr(x-k) -m found }\n\
                 \x20 http-request track-sc1 req.hdr(x-ip) table ipt if { req.hdr(x-ip) -m found }\n\
                 \x20 http-request track-sc2 req.hdr(x-ip) table v6t if { req.hdr(x-ip) -m found }\n";
    let backends = format!(
        "backend st\n  stick-table type string len 8 size 10 store gpc0\n\
         backend ipt\n  stick-table type ip size 10 store gpc0\n\
         backend v6t\n  stick-table type ipv6 size 10 store gpc0\n\
         backend b\n  server s1 {}\n",
        server.addr
    );
    let config = http_config(&socket, front, lines, &backends);
    let (ours, theirs) = side_by_side("review-stick-text", &config, front, |addr| {
        for key in ["a b=c\\d", "tab\tx", "1234567890"] {
            request(addr, "/", &format!("x-k: {key}\r\n"));
        }
        for ip in ["::ffff:198.51.100.7", "198.51.100.8", "2001:db8::1"] {
            request(addr, "/", &format!("x-ip: {ip}\r\n"));
        }
        settle();
        let mut e9 = b"set table st key ".to_vec();
        e9.extend([0xE9; 10]);
        (
            [
                cli_bytes(&socket, &e9),
                cli_bytes(&socket, "set table st key 1234567é".as_bytes()),
                cli_bytes(&socket, b"show table st"),
            ],
            cli_bytes(&socket, b"show table ipt"),
            cli_bytes(&socket, b"show table v6t"),
        )
    });
    assert_eq!(
        ours.0[2],
        "# table: st, type: string, size:10, used:5|\
         0x?: key=12345678 use=0 exp=? gpc0=0|\
         0x?: key=1234567\\xC3 use=0 exp=? gpc0=0|\
         0x?: key=a\\ b\\=c\\\\d use=0 exp=? gpc0=0|\
         0x?: key=tab\\tx use=0 exp=? gpc0=0|\
         0x?: key=\\xE9\\xE9\\xE9\\xE9\\xE9\\xE9\\xE9\\xE9 use=0 exp=? gpc0=0"
    );
    assert_eq!(
        ours.1,
        "# table: ipt, type: ip, size:10, used:1|0x?: key=198.51.100.8 use=0 exp=? gpc0=0"
    );
    assert_eq!(
        ours.2,
        "# table: v6t, type: ipv6, size:10, used:2|\
         0x?: key=::ffff:198.51.100.7 use=0 exp=? gpc0=0|0x?: key=2001:db8::1 use=0 exp=? gpc0=0"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// B7, M2: `sc-set-gpt0` stores 32 bits (-1 is 4294967295); `sc-inc-gpc0` and
/// `sc-set-gpt0` without `(N)` act on slot 0.
#[test]
fn gpt0_is_32_bits_and_actions_without_a_slot_use_slot_0() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("review-stick-gpt0");
    let socket = dir.join("stats.sock");
    let front = front();
    let lines = "  stick-table type ip size 10 expire 30s store gpt0,gpc0\n\
                 \x20 http-request track-sc0 src\n\
                 \x20 http-request sc-inc-gpc0\n\
                 \x20 http-request sc-set-gpt0 5 if { path /five }\n\
                 \x20 http-request sc-set-gpt0(0) -1 if { path /minus }\n";
    let config = http_config(
        &socket,
        front,
        lines,
        &format!("backend b\n  server s1 {}\n", server.addr),
    );
    let (ours, theirs) = side_by_side("review-stick-gpt0", &config, front, |addr| {
        ["/five", "/minus"]
            .iter()
            .map(|p| {
                request(addr, p, "");
                settle();
                masked(&cli(&socket, "show table fe"), 25_000..=30_000)
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(ours[0][1], "0x?: key=127.0.0.1 use=0 exp=? gpt0=5 gpc0=1");
    assert_eq!(
        ours[1][1],
        "0x?: key=127.0.0.1 use=0 exp=? gpt0=4294967295 gpc0=2"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// M4, Q5: the table commands at levels user, operator and admin: what each may see or
/// change, how keys of an address table are read (HAProxy's `inetaddr_host`), how filters
/// and values are read, what a wrong one leaves applied, `server_key` unset.
#[test]
fn table_commands_answer_as_haproxy_at_each_level() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("review-stick-cli");
    let sock = |level: &str| dir.join(format!("{level}.sock"));
    let front = front();
    let config = format!(
        "global\n  stats socket {} level admin\n  stats socket {} level operator\n  stats socket {} level user\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind {front}\n\
         \x20 stick-table type ip size 20 store gpc0,server_id,server_key,bytes_in_cnt,conn_rate(10s)\n\
         \x20 default_backend b\n\
         backend b\n  server s1 {}\n\
         backend v6\n  stick-table type ipv6 size 10 store gpc0\n",
        sock("admin").display(),
        sock("operator").display(),
        sock("user").display(),
        server.addr
    );
    let commands = [
        ("user", "set table f key 1.1.1.1 data.gpc0 5"),
        ("operator", "set table f key 1.1.1.1 data.gpc0 5"),
        ("user", "show table f"),
        ("user", "show table f key 1.1.1.1"),
        ("user", "show table f data.gpc0 gt 0"),
        ("user", "show table nosuch"),
        ("user", "clear table nosuch"),
        ("user", "clear table f key 1.1.1.1"),
        ("user", "set table"),
        ("user", "set table f"),
        ("user", "clear table f"),
        ("user", "show table f key"),
        ("user", "show table f data.nope gt 1"),
        ("user", "clear table"),
        ("user", "show table"),
        ("operator", "show table f"),
        ("operator", "show table f key 1.1.1.1 extra"),
        ("operator", "clear table f key 1.1.1.1"),
        ("admin", "set table f key abc data.gpc0 1"),
        ("admin", "set table f key ::1 data.gpc0 2"),
        ("admin", "set table f key 1.2.3.4.5 data.gpc0 3"),
        ("admin", "set table f key 300.1.1.1 data.gpc0 4"),
        ("admin", "set table f key 1.300.1.1 data.gpc0 4"),
        ("admin", "set table f key 1234.5.6.7 data.gpc0 4"),
        ("admin", "set table f key 9.9.9.9 data.gpc0 1 2"),
        ("admin", "set table f key 9.9.9.8 data.gpc0 1 data.nope 3"),
        ("admin", "set table f key 9.9.9.7 data.gpc0"),
        (
            "admin",
            "set table f key 9.9.9.6 data.bytes_in_cnt 99999999999",
        ),
        ("admin", "set table f key 9.9.9.5 data.gpc0 +5"),
        ("admin", "set table f key 9.9.9.4 data.gpc0 -"),
        ("admin", "set table f key 9.9.9.3 data.server_id -1"),
        ("admin", "show table f"),
        ("admin", "show table f data.gpc0 gt -1"),
        ("admin", "show table f data.server_id lt 0"),
        ("admin", "show table f data.gpc0 gt 0 key 1.1.1.1"),
        ("admin", "show table f data.gpc0 gt 0 XXXXXgpc0 lt 3"),
        (
            "admin",
            "show table f data.gpc0 gt 0 data.gpc0 gt 0 data.gpc0 gt 0 data.gpc0 gt 0 extra",
        ),
        ("admin", "set table v6 key 1.2.3.4 data.gpc0 1"),
        ("admin", "set table v6 key ::ffff:1.2.3.4 data.gpc0 1"),
        ("admin", "show table v6"),
        ("admin", "clear table f data.gpc0 eq 4"),
        ("admin", "show table f"),
    ];
    let (ours, theirs) = side_by_side("review-stick-cli", &config, front, |_| {
        commands
            .iter()
            .map(|(level, c)| format!("[{level}] {c} => {}", cli_bytes(&sock(level), c.as_bytes())))
            .collect::<Vec<_>>()
    });
    let expect = |line: &str| assert!(ours.iter().any(|l| l == line), "{line}: {ours:#?}");
    expect("[user] set table f key 1.1.1.1 data.gpc0 5 => Permission denied");
    expect(
        "[user] show table f => # table: f, type: ip, size:20, used:1|# contents not dumped due to insufficient privileges",
    );
    expect("[user] show table nosuch => No such table");
    expect(
        "[operator] show table f => # table: f, type: ip, size:20, used:1|0x?: key=1.1.1.1 use=0 exp=? server_id=0 gpc0=5 conn_rate(10000)=0 bytes_in_cnt=0 server_key=-",
    );
    expect(
        "[admin] set table f key 9.9.9.9 data.gpc0 1 2 => \"data.<type>\" followed by a value expected",
    );
    expect("[admin] show table f data.gpc0 gt 0 key 1.1.1.1 => Filter entry #2: Unknown data type");
    expect("[admin] set table v6 key 1.2.3.4 data.gpc0 1 => Invalid key");
    let last = ours.last().expect("answers");
    for key in ["key=2.44.1.1 ", "key=44.1.1.1 ", "key=234.5.6.7 "] {
        assert!(!last.contains(key), "cleared by its gpc0: {last}");
    }
    for key in [
        "key=0.0.0.0 ",
        "key=1.2.3.4 ",
        "key=9.9.9.8 use=0 exp=? server_id=0 gpc0=1 ",
    ] {
        assert!(last.contains(key), "{key}: {last}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// `-c` on `lines` of frontend `f` (then backend `b`, with `backend_lines`): the exit code
/// and every message line, a multi-line one's continuation lines included, pids masked.
fn check_all(binary: &Path, file: &Path) -> (i32, Vec<String>) {
    let out = std::process::Command::new(binary)
        .args(["-c", "-f"])
        .arg(file)
        .output()
        .expect("running the checker");
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("[NOTICE]") && !l.contains("Configuration file is valid"))
        .map(|l| match l.split_once(" : config : ") {
            Some((level, text)) => {
                format!("{} {text}", level.split(' ').next().unwrap_or_default())
            }
            None => l.to_string(),
        })
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// B4: the tables that `src_*`, `sc_*(N,T)`, `scN_*(T)` and `table_cnt` fetches name (or
/// the proxy's own, by default) must exist, wherever the fetch is: HAProxy's message names
/// the line, the argument, and whether an ACL or which rule or format uses it, all of a
/// proxy's in one alert.
#[test]
fn fetch_tables_are_checked_as_haproxy() {
    let dir = temp_dir("review-stick-refs");
    let cases = [
        (
            "  http-request deny if { src_conn_rate gt 10 }\n",
            "  stick-table type ip size 10\n",
        ),
        (
            "  log 127.0.0.1:514 local0\n\
             \x20 acl a src_conn_rate(nosuch) gt 10\n\
             \x20 http-request set-header X %[src_conn_cnt(n1)]\n\
             \x20 http-request deny if a { sc_conn_cur(0,n2) gt 1 } { table_cnt gt 1 }\n\
             \x20 http-response set-header X %[sc1_conn_cnt(n3)]\n\
             \x20 tcp-request content track-sc1 src_conn_cnt(n4)\n\
             \x20 tcp-request content reject if { sc2_conn_cnt(n5) gt 1 }\n\
             \x20 use_backend b if { src_conn_cnt(n6) gt 1 }\n\
             \x20 log-format \"%[src_conn_cnt(n7)] %[table_cnt]\"\n\
             \x20 unique-id-format %[table_cnt(n8)]\n",
            "  stick-table type ip size 10\n\
             \x20 stick on src_conn_cnt(n9)\n\
             \x20 http-request redirect location /%[src_conn_cnt(n10)] if { src_conn_cnt gt 100 }\n",
        ),
        // Valid: the tables exist, `sc_*(N)` reads what its slot tracks.
        (
            "  http-request deny if { src_conn_rate(b) gt 10 } { sc_conn_cur(0) gt 1 }\n",
            "  stick-table type ip size 10 store conn_rate(1s)\n\
             \x20 http-request deny if { src_conn_rate gt 10 } { table_cnt gt 1 }\n",
        ),
    ];
    for (i, (front_lines, back_lines)) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{front_lines}  default_backend b\n\
             backend b\n{back_lines}  server s 127.0.0.1:1\n"
        );
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let ours = check_all(&hapx_tests::bins::path("hapx-proxy"), &file);
        assert_eq!(ours.0 == 0, i == 2, "case {i}: {ours:?}");
        if i == 0 {
            assert_eq!(
                ours.1[0],
                format!(
                    "[ALERT] parsing [{}:8]: unable to find table 'f' referenced in arg 1 of ACL keyword 'src_conn_rate' in proxy 'f'.",
                    file.display()
                )
            );
        }
        if i == 1 {
            let at = (ours.1.iter())
                .position(|l| l == "[ALERT] multiple argument resolution errors:")
                .expect("one alert for the frontend's tables");
            assert!(ours.1[at + 1].ends_with("unable to find table 'nosuch' referenced in arg 1 of ACL keyword 'src_conn_rate' in proxy 'f'."), "{ours:?}");
        }
        if haproxy_here() {
            assert_eq!(ours, check_all(Path::new(HAPROXY), &file), "case {i}");
        }
    }
}

/// B10, M2, M3, M5: messages of `stick-table size`, store periods, stick counter numbers.
#[test]
fn stick_configuration_messages_are_haproxys() {
    let dir = temp_dir("review-stick-errors");
    let cases = [
        "  stick-table type ip size 4g\n",
        "  stick-table type ip size 4294967296\n",
        "  stick-table type ip size 5000000k\n",
        "  stick-table type ip size 3g\n",
        "  stick-table type ip size 10kx\n",
        "  stick-table type ip size 10 store conn_rate(10x)\n",
        "  stick-table type ip size 10 store gpc0\n  http-request track-sc999 src\n",
        "  stick-table type ip size 10 store gpc0\n  tcp-request content track-sc1000 src\n",
        "  stick-table type ip size 10 store gpc0\n  http-request sc-inc-gpc0(3)\n",
        "  stick-table type ip size 10 store gpt0\n  http-request sc-set-gpt0(3) 5\n",
        "  stick-table type ip size 10 store gpc0\n  tcp-request connection sc-inc-gpc0(3)\n",
        "  stick-table type ip size 10 store gpc0,gpt0\n  http-request sc-inc-gpc0\n  http-request sc-set-gpt0 5\n",
    ];
    for (i, lines) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{lines}  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        let valid = lines.contains("size 3g") || lines.contains("sc-inc-gpc0\n");
        assert_eq!(ours.0 == 0, valid, "case {i}: {lines} {ours:?}");
        if haproxy_here() {
            assert_eq!(ours, theirs, "case {i}: {lines}");
        }
    }
    // M5: a cookie's `maxidle`/`maxlife` refused at the character HAProxy stops at.
    for (i, cookie) in ["maxidle 1x", "maxlife 2x", "maxidle abc"]
        .iter()
        .enumerate()
    {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
             backend b\n  cookie SRV insert {cookie}\n  server s 127.0.0.1:1 cookie a\n"
        );
        let file = dir.join(format!("cookie{i}.cfg"));
        std::fs::write(&file, text).expect("writing the configuration");
        let [ours, theirs] = check_both(&file);
        assert_ne!(ours.0, 0, "{cookie}: {ours:?}");
        assert!(ours.1[0].contains("]: unexpected character '"), "{ours:?}");
        if haproxy_here() {
            assert_eq!(ours, theirs, "{cookie}");
        }
    }
    // A `peers` section that exists without a member named as this host: it is removed with
    // HAProxy's warning (replication itself: proxy_peers.rs).
    let file = dir.join("peers.cfg");
    let text = format!(
        "peers mypeers\n  peer a 127.0.0.1:10000\n\
         defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n  stick-table type ip size 10 peers mypeers\n  server s 127.0.0.1:1\n"
    );
    std::fs::write(&file, text).expect("writing the configuration");
    let [ours, theirs] = check_both(&file);
    assert_eq!(ours.0, 0, "{ours:?}");
    assert!(
        ours.1.iter().any(|m| m
            .starts_with("WARNING: Removing incomplete section 'peers mypeers' (no peer named '")),
        "{ours:?}"
    );
    if haproxy_here() {
        assert_eq!(ours, theirs);
    }
}
