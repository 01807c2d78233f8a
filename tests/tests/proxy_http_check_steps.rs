//! Multi-step HTTP health checks (HAProxy 2.2+ `http-check connect/send/expect` groups, each
//! `connect` opening a connection of its own), run by hapx-proxy and then by HAProxy 2.6 on
//! the same configuration against the same loopback servers: every server's `show stat`
//! row (state, check status, code, detail), the requests each group sent, and the
//! "Server B/S is DOWN, reason: ..." log lines must be HAProxy's. The `expect` options
//! (`comment`, `error-status`, `on-error`, `ok-status`, `on-success`, `tout-status`) change
//! what a check reports as HAProxy's do; `hapx-proxy -c` takes such rulesets silently.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::bins;
use hapx_tests::proxy::{
    blank_check_duration, cli, free_port, settled_check_row, settled_check_rows, stat_row,
    temp_dir, wait_until,
};
use hapx_tests::proxy_rules::{HAPROXY, Syslog, check_messages, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// An HTTP/1.0 server answering `/.../CODE` with status CODE (200 without one), an
/// `X-Path` header and the body `path=PATH`, then closing; it keeps each request it read
/// (request line, the `x-*`, `host` and `content-length` headers, names lower-cased, and
/// the body).
struct StatusServer {
    addr: SocketAddr,
    requests: Arc<Mutex<BTreeSet<String>>>,
}

impl StatusServer {
    fn start() -> StatusServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding a status server");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(Mutex::new(BTreeSet::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || answer(conn, &seen));
            }
        });
        StatusServer { addr, requests }
    }

    /// The requests seen since the last call (a proxy's, from its start).
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}

fn answer(conn: TcpStream, seen: &Mutex<BTreeSet<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut kept = vec![first.trim_end().to_string()];
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
        // The name lower-cased (HAProxy writes names so), the value as sent.
        let line = match line.trim_end().split_once(':') {
            Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
            None => line.trim_end().to_string(),
        };
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line.starts_with("x-")
            || line.starts_with("host:")
            || line.starts_with("content-length:")
        {
            kept.push(line);
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_ok() && length > 0 {
        kept.push(String::from_utf8_lossy(&body).into_owned());
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let code: u16 = path
        .rsplit('/')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    let reason = match code {
        200 => "OK",
        201 => "Created",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Other",
    };
    let body = format!("path={path}\n");
    let response = format!(
        "HTTP/1.0 {code} {reason}\r\nX-Path: {path}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    seen.lock().unwrap().insert(kept.join(" | "));
    let _ = writer.write_all(response.as_bytes());
}

/// A server that accepts connections and never answers (kept until the test ends).
fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a silent server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

/// (backend, rules after `option httpchk`, hapx's expected state and check status).
/// `{T}`: the second server's port, `{R}` a refused port, `{Q}` the silent server's port.
const CASES: [(&str, &str, [&str; 2]); 7] = [
    (
        "both_pass",
        "http-check connect\n  http-check send meth GET uri /both/200 hdr X-Step one\n  http-check expect status 200\n\
         \x20 http-check connect port {T}\n  http-check send meth POST uri /both/201 body hello\n  http-check expect status 201\n  http-check expect string path=/both/201",
        ["UP", "L7OK"],
    ),
    (
        "second_503",
        "http-check connect\n  http-check send meth GET uri /second/200\n  http-check expect status 200\n\
         \x20 http-check connect port {T}\n  http-check send uri /second/503\n  http-check expect status 200 comment \"second step\"",
        ["DOWN", "L7STS"],
    ),
    (
        "second_refused",
        "http-check connect\n  http-check send meth GET uri /refused/200\n  http-check expect status 200\n\
         \x20 http-check connect port {R}\n  http-check send meth GET uri /refused/200\n  http-check expect status 200",
        ["DOWN", "L4CON"],
    ),
    (
        "on_error",
        "http-check connect\n  http-check send\n  http-check expect status 200\n\
         \x20 http-check connect port {T}\n  http-check send meth GET uri /onerror/404\n  http-check expect ! status 404 error-status L7RSP on-error \"bad answer\"",
        ["DOWN", "L7RSP"],
    ),
    (
        "on_success",
        "http-check connect\n  http-check send meth GET uri /onsuccess/200\n  http-check expect status 200 on-success ignored\n\
         \x20 http-check connect port {T}\n  http-check send meth GET uri /onsuccess/201 ver HTTP/1.1 hdr Host api.example\n  http-check expect rstatus ^2 ok-status L7OK on-success \"all good\"",
        ["UP", "L7OK"],
    ),
    (
        "second_silent",
        "http-check connect\n  http-check send meth GET uri /silent/200\n  http-check expect status 200\n\
         \x20 http-check connect port {Q}\n  http-check send meth GET uri /silent/200\n  http-check expect status 200 tout-status L6TOUT",
        ["DOWN", "L6TOUT"],
    ),
    (
        "header_hdr",
        "http-check connect\n  http-check send meth GET uri /hdr/200\n  http-check expect ! string nope\n\
         \x20 http-check connect port {T}\n  http-check send meth GET uri /hdr/200\n  http-check expect hdr name x-path value /hdr/404",
        ["DOWN", "L7STS"],
    ),
];

/// The failing cases' "Server B/S is DOWN" lines: a DOWN line and a "no server available"
/// one each.
fn down_lines(syslog: &Syslog) -> BTreeSet<String> {
    let failing = CASES.iter().filter(|c| c.2[0] == "DOWN").count();
    syslog
        .lines(2 * failing)
        .into_iter()
        .filter(|l| l.contains(" is DOWN, reason: "))
        .map(|l| blank_check_duration(&l))
        .collect()
}

#[test]
fn multi_step_checks_report_like_haproxy() {
    let test = "multi_step_checks_report_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let (main, second, quiet) = (
        StatusServer::start(),
        StatusServer::start(),
        silent_server(),
    );
    let refused = free_port();
    let port = free_port();
    let syslog = Syslog::bind();
    let backends: String = CASES
        .iter()
        .map(|(name, rules, _)| {
            let rules = rules
                .replace("{T}", &second.addr.port().to_string())
                .replace("{R}", &refused.to_string())
                .replace("{Q}", &quiet.port().to_string());
            format!(
                "backend {name}\n  option httpchk GET /{name}/200\n  {rules}\n  server s {} check inter 300ms rise 1 fall 1\n",
                main.addr
            )
        })
        .collect();
    let config = format!(
        "global\n  stats socket {} level admin\n  log {} local0\ndefaults\n  mode http\n  log global\n  timeout client 5s\n\
         \x20 timeout server 5s\n  timeout connect 1s\n  timeout check 500ms\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend both_pass\n{backends}",
        sock.display(),
        syslog.addr
    );
    let observe = |_| {
        let servers: Vec<(&str, &str)> = CASES.iter().map(|(name, ..)| (*name, "s")).collect();
        let expected: Vec<[&str; 2]> = CASES.iter().map(|c| c.2).collect();
        let rows = settled_check_rows(&sock, &servers, &expected);
        (rows, down_lines(&syslog), main.take(), second.take())
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (name, _, want)) in ours.0.iter().zip(&CASES) {
        assert_eq!(
            [&row[0], &row[1]],
            want.map(String::from).each_ref(),
            "{name}: {row:?}"
        );
    }
    let failing = CASES.iter().filter(|c| c.2[0] == "DOWN").count();
    assert_eq!(ours.1.len(), failing, "{:#?}", ours.1);
    assert!(
        ours.1.iter().any(|l| l.contains(
            "Server second_503/s is DOWN, reason: Layer7 wrong status, code: 503, info: \"Service Unavailable comment: second step\""
        )),
        "{:#?}",
        ours.1
    );
    // Each group's request went to its own server, the second send without `meth` as OPTIONS.
    assert!(second.addr.port() != main.addr.port());
    assert!(
        ours.3.contains("OPTIONS /second/503 HTTP/1.0"),
        "{:#?}",
        ours.3
    );
    assert!(
        ours.3
            .contains("POST /both/201 HTTP/1.0 | content-length: 5 | hello"),
        "{:#?}",
        ours.3
    );
    assert!(
        ours.2.contains("GET /both/200 HTTP/1.0 | x-step: one"),
        "{:#?}",
        ours.2
    );
    let Some(theirs) = theirs else { return };
    for (i, (o, t)) in ours.0.iter().zip(&theirs.0).enumerate() {
        assert_eq!(o, t, "{}: hapx-proxy, then HAProxy", CASES[i].0);
    }
    assert_eq!(ours.1, theirs.1, "log lines: hapx-proxy, then HAProxy");
    assert_eq!(
        ours.2, theirs.2,
        "first server's requests: hapx-proxy, then HAProxy"
    );
    assert_eq!(
        ours.3, theirs.3,
        "second server's requests: hapx-proxy, then HAProxy"
    );
}

/// `http-check send-state`: every check request carries `X-Haproxy-Server-State` with the
/// server's state, weights, sessions and queue, HAProxy's value for HAProxy's state (up,
/// settled or not, a backup, down), on each group's connection, after the `hdr` headers.
#[test]
fn send_state_tells_servers_what_haproxy_tells_them() {
    let test = "send_state_tells_servers_what_haproxy_tells_them";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let (main, second) = (StatusServer::start(), StatusServer::start());
    let refused = free_port();
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n  node testnode\ndefaults\n  mode http\n  timeout client 5s\n\
         \x20 timeout server 5s\n  timeout connect 1s\n  timeout check 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  option httpchk GET /be/200\n  http-check send-state\n\
         \x20 server s {m} check inter 200ms rise 2 fall 3 weight 3\n\
         \x20 server t {m} check inter 200ms rise 2 fall 3 weight 5\n\
         \x20 server u {m} backup check inter 200ms rise 2 fall 3\n\
         \x20 server v 127.0.0.1:{refused} check inter 200ms rise 2 fall 1\n\
         backend steps\n  option httpchk\n  http-check send-state\n  http-check connect\n\
         \x20 http-check send meth GET uri /steps/200 hdr X-Step one\n  http-check expect status 200\n\
         \x20 http-check connect port {p2}\n  http-check send meth GET uri /steps/503\n  http-check expect status 200\n\
         \x20 server w {m} check inter 200ms rise 2 fall 2\n",
        sock.display(),
        m = main.addr,
        p2 = second.addr.port(),
    );
    let observe = |_| {
        let settled = || {
            let csv = cli(&sock, "show stat");
            let state = |b: &str, s: &str| {
                stat_row(&csv, b, s)
                    .map(|r| r["status"].clone())
                    .unwrap_or_default()
            };
            state("be", "v") == "DOWN" && state("steps", "w") == "DOWN"
        };
        wait_until(Duration::from_secs(5), settled);
        // The states reached, then what the next checks said.
        std::thread::sleep(Duration::from_millis(700));
        main.take();
        second.take();
        std::thread::sleep(Duration::from_millis(700));
        (main.take(), second.take())
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    let state = |name: &str, rest: &str| {
        format!(
            "x-haproxy-server-state: {rest}; address=127.0.0.1; port={}; name={name}; node=testnode; ",
            main.addr.port()
        )
    };
    for (name, rest, total) in [
        ("be/s", "UP", "3/8"),
        ("be/t", "UP", "5/8"),
        ("be/u", "UP", "1/8"),
    ] {
        let line = format!(
            "GET /be/200 HTTP/1.0 | {}weight={total}; scur=0/0; qcur=0",
            state(name, rest)
        );
        assert!(ours.0.contains(&line), "{line}: {:#?}", ours.0);
    }
    let w = format!(
        "GET /steps/200 HTTP/1.0 | x-step: one | {}weight=1/0; scur=0/0; qcur=0",
        state("steps/w", "DOWN")
    );
    assert!(ours.0.contains(&w), "{w}: {:#?}", ours.0);
    assert_eq!(ours.1.len(), 1, "{:#?}", ours.1);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A server answering every request with a list header and a repeated one, then closing.
fn header_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a header server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = conn.read(&mut [0u8; 4096]);
            let _ = conn.write_all(
                b"HTTP/1.0 200 OK\r\nX-List: alpha, beta\r\nX-Other: one\r\nX-Other: two\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    addr
}

/// `expect hdr` and `fhdr` with each `-m` method: names compare without case, `hdr` values
/// one by one between commas, `fhdr` values whole; each server's row must be HAProxy's.
#[test]
fn header_expectations_match_like_haproxy() {
    let test = "header_expectations_match_like_haproxy";
    let cases: [(&str, &str); 12] = [
        ("hdr name x-list value beta", "UP"),
        ("fhdr name x-list value beta", "DOWN"),
        ("fhdr name x-list value -m str \"alpha, beta\"", "UP"),
        ("hdr name x-list value \"alpha, beta\"", "DOWN"),
        ("hdr name x-other value two", "UP"),
        ("hdr name -m beg x-oth", "UP"),
        ("hdr name -m end list value -m beg al", "UP"),
        ("hdr name -m sub -lis value -m sub et", "UP"),
        ("hdr name -m reg ^x-l.st$ value -m reg ^b", "UP"),
        ("fhdr name x-list value -m reg ^alpha,\\sbeta$", "UP"),
        ("hdr name x-list value -m end pha", "UP"),
        ("hdr name X-LIST value BETA", "DOWN"),
    ];
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let server = header_server();
    let port = free_port();
    let backends: String = (cases.iter().enumerate())
        .map(|(i, (expect, _))| {
            format!(
                "backend b{i}\n  option httpchk\n  http-check expect {expect}\n  server s {server} check inter 300ms rise 1 fall 1\n"
            )
        })
        .collect();
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n\
         \x20 timeout server 5s\n  timeout connect 1s\n  timeout check 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b0\n{backends}",
        sock.display()
    );
    let observe = |_| {
        let read = || -> Vec<Option<[String; 4]>> {
            let csv = cli(&sock, "show stat");
            (0..cases.len())
                .map(|i| {
                    settled_check_row(&stat_row(&csv, &format!("b{i}"), "s").unwrap_or_default())
                })
                .collect()
        };
        let settled = |rows: &[Option<[String; 4]>]| {
            rows.iter()
                .zip(&cases)
                .all(|(r, (_, want))| r.as_ref().is_some_and(|r| r[0] == *want))
        };
        // The read that showed every row settled: a later one may catch a check under way.
        let mut last = Vec::new();
        wait_until(Duration::from_secs(5), || {
            last = read();
            settled(&last)
        });
        last
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for (row, (expect, want)) in ours.iter().zip(&cases) {
        let row = row.as_ref().expect("hapx never marks a check under way");
        assert_eq!(row[0], *want, "{expect}: {row:?}");
    }
    if let Some(theirs) = theirs {
        for ((o, t), (expect, _)) in ours.iter().zip(&theirs).zip(&cases) {
            assert_eq!(o, t, "{expect}: hapx-proxy, then HAProxy");
        }
    }
}

/// `-c` on a multi-step ruleset with `expect` options: both accept it without a word; a
/// status an option does not take is refused by both, at its line.
#[test]
fn multi_step_rulesets_are_accepted_and_bad_statuses_refused() {
    let test = "multi_step_rulesets_are_accepted_and_bad_statuses_refused";
    let dir = temp_dir(test);
    let write = |name: &str, rules: &str| {
        let path = dir.join(format!("{name}.cfg"));
        let cfg = format!(
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             listen be\n  bind 127.0.0.1:8443\n  option httpchk\n{rules}  server s 127.0.0.1:8080 check\n"
        );
        std::fs::write(&path, cfg).unwrap();
        path
    };
    let good = write(
        "good",
        "  http-check connect\n  http-check send meth GET uri /a\n  http-check expect status 200 comment first\n\
         \x20 http-check connect port 8081 linger\n  http-check send uri /b hdr Host x\n\
         \x20 http-check expect string ok error-status L7STS tout-status L4TOUT on-error \"not ok\"\n",
    );
    let bad = write(
        "bad",
        "  http-check send meth GET uri /a\n  http-check expect status 200 error-status L7OK\n",
    );
    let run = |binary: &Path| (check_messages(binary, &good), check_messages(binary, &bad));
    let ((code, messages), (bad_code, bad_messages)) = run(&bins::path("hapx-proxy"));
    assert_eq!((code, messages.as_slice()), (0, &[][..]), "{messages:#?}");
    assert_ne!(bad_code, 0);
    let refusal = "'http-check expect' : 'error-status' only supports 'L4CON', 'L6RSP', 'L7RSP' or 'L7STS' status (got 'L7OK')..";
    assert!(
        bad_messages
            .iter()
            .any(|m| m.starts_with("ALERT") && m.contains("bad.cfg:10]") && m.ends_with(refusal)),
        "{bad_messages:#?}"
    );
    if !hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let ((code, messages), (bad_code, theirs)) = run(Path::new(HAPROXY));
    assert_eq!(
        (code, messages.as_slice()),
        (0, &[][..]),
        "HAProxy: {messages:#?}"
    );
    assert_ne!(bad_code, 0, "HAProxy takes the bad status");
    let strip = |m: &str| m.split_once(".cfg:").map(|(_, rest)| rest.to_string());
    assert_eq!(
        bad_messages.iter().map(|m| strip(m)).collect::<Vec<_>>(),
        theirs.iter().map(|m| strip(m)).collect::<Vec<_>>(),
        "hapx-proxy, then HAProxy"
    );
}
