//! NOLB from HTTP checks (`http-check disable-on-404`, `http-check expect ... ok-status
//! L7OKC`) and from the runtime API (`set server B/S health stopping|up`), run by
//! hapx-proxy and then by HAProxy 2.6 on the same configuration against the same loopback
//! servers: each phase's `show stat` rows (status, check status, code, detail), `show
//! servers state` (operational state, check status, result and health), the "Server B/S is
//! stopping|UP|DOWN, ..." log lines, and where requests go (a NOLB server gets no balanced
//! request, but a cookie or `use-server` still reaches it) must be HAProxy's.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::time::Duration;

use hapx_tests::proxy::{
    blank_check_duration, cli, free_port, http_raw, settled_check_row, stat_row, temp_dir,
    wait_until,
};
use hapx_tests::proxy_rules::{HAPROXY, Syslog, TIMEOUTS, check_text, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// An HTTP/1.0 server named NAME: `/health` gets the status the test sets (404: "Not
/// Found"), any other path 200 with the body `server=NAME`.
struct HealthServer {
    addr: SocketAddr,
    health: Arc<AtomicU16>,
}

impl HealthServer {
    fn start(name: &'static str) -> HealthServer {
        let listener = TcpListener::bind((LO, 0)).expect("binding a health server");
        let addr = listener.local_addr().expect("its address");
        let health = Arc::new(AtomicU16::new(200));
        let code = health.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let code = code.clone();
                std::thread::spawn(move || answer(conn, name, &code));
            }
        });
        HealthServer { addr, health }
    }

    fn answer_health(&self, code: u16) {
        self.health.store(code, Relaxed);
    }
}

fn answer(mut conn: TcpStream, name: &str, health: &AtomicU16) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    // The head is all a request brings (GET, no body).
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let code = if path == "/health" {
        health.load(Relaxed)
    } else {
        200
    };
    let reason = if code == 404 { "Not Found" } else { "OK" };
    let body = format!("server={name}\n");
    let response = format!(
        "HTTP/1.0 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// The server that answered a request through the proxy (its body's `server=NAME`).
fn served_by(front: SocketAddr, path: &str, cookie: Option<&str>) -> String {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{cookie}Connection: close\r\n\r\n");
    let resp = http_raw(front, req.as_bytes(), Duration::from_secs(3));
    (resp.lines())
        .find_map(|l| l.strip_prefix("server="))
        .unwrap_or("-")
        .to_string()
}

/// The servers watched: (backend, server).
const WATCHED: [(&str, &str); 3] = [("be", "a"), ("be", "b"), ("lc", "a")];

/// A server's `show stat` status, check status, code and detail; None while HAProxy runs
/// a check (its status marked "* ").
fn row(csv: &str, backend: &str, server: &str) -> Option<[String; 4]> {
    settled_check_row(&stat_row(csv, backend, server)?)
}

/// Waits for every watched server's (status, check status) to be `want`'s, then returns
/// their rows as seen between two checks.
fn settle(sock: &std::path::Path, want: [[&str; 2]; 3]) -> Vec<[String; 4]> {
    let read = || -> Vec<Option<[String; 4]>> {
        let csv = cli(sock, "show stat");
        WATCHED.iter().map(|(b, s)| row(&csv, b, s)).collect()
    };
    wait_until(Duration::from_secs(8), || {
        let rows = read();
        rows.iter().all(Option::is_some)
            && rows
                .iter()
                .flatten()
                .zip(&want)
                .all(|(r, w)| r[0] == w[0] && r[1] == w[1])
    });
    let mut rows: Vec<Option<[String; 4]>> = vec![None; WATCHED.len()];
    wait_until(Duration::from_secs(5), || {
        for (kept, seen) in rows.iter_mut().zip(read()) {
            if kept.is_none() {
                *kept = seen;
            }
        }
        rows.iter().all(Option::is_some)
    });
    rows.into_iter().map(Option::unwrap_or_default).collect()
}

/// `show servers state`'s operational state, admin state, check status, result and health
/// of the watched servers, each read between two checks: while a check runs, both proxies
/// show its result as unknown (0), so a row is taken only when its check state (column 13)
/// has no check in progress (bit 1).
fn servers_state(sock: &std::path::Path) -> Vec<String> {
    let read = || -> Vec<Option<String>> {
        let out = cli(sock, "show servers state");
        WATCHED
            .iter()
            .map(|(b, s)| {
                let fields = (out.lines())
                    .map(|l| l.split(' ').collect::<Vec<_>>())
                    .find(|f| f.len() > 13 && f[1] == *b && f[3] == *s)?;
                let check_state: u8 = fields[13].parse().ok()?;
                (check_state & 1 == 0).then(|| [5, 6, 10, 11, 12].map(|i| fields[i]).join(" "))
            })
            .collect()
    };
    let mut rows: Vec<Option<String>> = vec![None; WATCHED.len()];
    wait_until(Duration::from_secs(5), || {
        for (kept, seen) in rows.iter_mut().zip(read()) {
            if kept.is_none() {
                *kept = seen;
            }
        }
        rows.iter().all(Option::is_some)
    });
    rows.into_iter().map(Option::unwrap_or_default).collect()
}

/// `count` log lines, their check durations blanked, in order (the backends' checks run
/// side by side: their lines come in any order).
fn log_lines(syslog: &Syslog, count: usize) -> BTreeSet<String> {
    (syslog.lines(count).iter())
        .map(|l| blank_check_duration(l))
        .collect()
}

/// What one proxy showed, phase by phase.
#[derive(Debug, PartialEq)]
struct Phase {
    rows: Vec<[String; 4]>,
    state: Vec<String>,
    logs: BTreeSet<String>,
    traffic: Vec<String>,
}

#[test]
fn nolb_from_checks_and_the_cli_is_haproxys() {
    let test = "nolb_from_checks_and_the_cli_is_haproxys";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let (a, b) = (HealthServer::start("a"), HealthServer::start("b"));
    let port = free_port();
    let syslog = Syslog::bind();
    let config = format!(
        "global\n  stats socket {} level admin\n  log {} local0\ndefaults\n  mode http\n\
         \x20 timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n  timeout check 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  log global\n  option httpchk GET /health\n  http-check disable-on-404\n\
         \x20 cookie SRV insert indirect nocache\n  use-server a if {{ path_beg /to-a }}\n\
         \x20 server a {} check inter 200ms rise 2 fall 2 cookie a\n\
         \x20 server b {} check inter 200ms rise 2 fall 2 cookie b\n\
         backend lc\n  log global\n  option httpchk GET /health\n  http-check expect status 200 ok-status L7OKC\n\
         \x20 server a {} check inter 200ms rise 2 fall 2\n",
        sock.display(),
        syslog.addr,
        a.addr,
        b.addr,
        a.addr,
    );
    let traffic = |front: SocketAddr| -> Vec<String> {
        let mut seen: Vec<String> = (0..6).map(|_| served_by(front, "/", None)).collect();
        // Which server a round starts on after one comes back is fwrr's detail: the shares
        // are compared.
        seen.sort();
        seen.push(served_by(front, "/", Some("SRV=a")));
        seen.push(served_by(front, "/to-a", None));
        seen
    };
    let observe = |front: SocketAddr| -> Vec<Phase> {
        let mut phases = Vec::new();
        let mut phase = |want: [[&str; 2]; 3], logs: usize| {
            let rows = settle(&sock, want);
            let state = servers_state(&sock);
            let logs = log_lines(&syslog, logs);
            phases.push(Phase {
                rows,
                state,
                logs,
                traffic: traffic(front),
            });
        };
        a.answer_health(200);
        // The conditional pass puts lc/a in NOLB at its first check, leaving lc empty.
        phase([["UP", "L7OK"], ["UP", "L7OK"], ["NOLB", "L7OKC"]], 2);
        // A 404: be/a NOLB (still reached by its cookie and `use-server`), lc/a DOWN.
        a.answer_health(404);
        phase([["NOLB", "L7OKC"], ["UP", "L7OK"], ["DOWN", "L7STS"]], 2);
        // Back to 200: be/a UP, lc/a from DOWN straight into NOLB.
        a.answer_health(200);
        phase([["UP", "L7OK"], ["UP", "L7OK"], ["NOLB", "L7OKC"]], 2);
        // The runtime API, checks disabled so that none undoes it.
        for command in ["disable health be/b", "set server be/b health stopping"] {
            cli(&sock, command);
        }
        phase([["UP", "L7OK"], ["NOLB", "L7OK"], ["NOLB", "L7OKC"]], 1);
        for command in ["set server be/b health up", "enable health be/b"] {
            cli(&sock, command);
        }
        phase([["UP", "L7OK"], ["UP", "L7OK"], ["NOLB", "L7OKC"]], 1);
        phases
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);

    // hapx's own account, HAProxy or not.
    let nolb = &ours[1];
    assert_eq!(
        nolb.rows[0],
        ["NOLB", "L7OKC", "404", ""].map(String::from),
        "{nolb:#?}"
    );
    // Operational state 3 (stopping), check status 16 (L7OKC), result 4 (conditional).
    assert_eq!(nolb.state[0], "3 0 16 4 3", "{nolb:#?}");
    assert!(
        nolb.traffic[..6].iter().all(|s| s == "b"),
        "balanced requests avoid NOLB be/a: {nolb:#?}"
    );
    assert_eq!(nolb.traffic[6..], ["a", "a"], "cookie, then use-server");
    assert!(
        nolb.logs.contains(
            "Server be/a is stopping, reason: Layer7 check conditionally passed, code: 404, \
             check duration: Nms. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
        ),
        "{nolb:#?}"
    );
    assert!(ours[0].logs.contains("backend lc has no server available!"));
    assert!(
        ours[3].logs.contains(
            "Server be/b is stopping, changed from CLI. 1 active and 0 backup servers online. \
             0 sessions requeued, 0 total in queue."
        ),
        "{:#?}",
        ours[3]
    );
    assert!(
        ours[3].traffic[..6].iter().all(|s| s == "a"),
        "{:#?}",
        ours[3]
    );

    let Some(theirs) = theirs else { return };
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(o, t, "phase {i}: hapx-proxy, then HAProxy");
    }
}

/// `hapx-proxy -c` takes `http-check disable-on-404` and `ok-status L7OKC` silently, as
/// HAProxy does, and refuses an unknown `ok-status` with HAProxy's message.
#[test]
fn check_mode_takes_the_nolb_keywords_as_haproxy_does() {
    let test = "check_mode_takes_the_nolb_keywords_as_haproxy_does";
    let dir = temp_dir(test);
    let backend = |rules: &str| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\nbackend b\n  option httpchk GET /health\n{rules}\
             \x20 server s 127.0.0.1:1 check\n"
        )
    };
    let accepted = backend(
        "  http-check disable-on-404\n  http-check expect status 200-399 ok-status L7OKC\n",
    );
    let [ours, theirs] = check_text(&dir, 0, &accepted);
    assert_eq!(ours, (0, vec![]), "hapx-proxy -c");
    let refused = backend("  http-check expect status 200 ok-status L7NOPE\n");
    let [bad, theirs_bad] = check_text(&dir, 1, &refused);
    assert_ne!(bad.0, 0, "{bad:?}");
    assert!(
        bad.1.iter().any(|m| m.contains(
            "'ok-status' only supports 'L4OK', 'L6OK', 'L7OK' or 'L7OKC' status (got 'L7NOPE')"
        )),
        "{bad:?}"
    );
    if hapx_tests::require::path(test, std::path::Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
        assert_eq!(bad, theirs_bad, "hapx-proxy, then HAProxy");
    }
}

/// An HTTP/1.0 server whose every answer (200) comes `delay` after the request: a check to
/// it stays under way long enough to be seen so.
fn slow_health_server(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a slow health server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                std::thread::sleep(delay);
                let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
    addr
}

/// The (check state, check result) pairs `show servers state` shows for `be/s` over its
/// first checks after the first one ended: HAProxy forgets a check's result as the next
/// check starts (`CHK_RES_UNKNOWN`, 0) and shows it again once that check ended.
fn check_lifecycle(sock: &std::path::Path) -> BTreeSet<(u8, u8)> {
    let first_ended = wait_until(Duration::from_secs(5), || {
        stat_row(&cli(sock, "show stat"), "be", "s")
            .is_some_and(|r| r.get("check_status").is_some_and(|s| s.ends_with("L7OK")))
    });
    assert!(first_ended, "the first check never passed");
    let mut seen = BTreeSet::new();
    // Both a check under way and one between checks, each seen (a check lasts 300 ms,
    // the next one starts 100 ms after).
    wait_until(Duration::from_secs(5), || {
        let out = cli(sock, "show servers state");
        let pair = (out.lines())
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() > 13 && f[1] == "be" && f[3] == "s")
            .and_then(|f| Some((f[13].parse().ok()?, f[11].parse().ok()?)));
        seen.extend(pair);
        seen.iter().any(|(state, _)| state & 1 == 1) && seen.iter().any(|(state, _)| state & 1 == 0)
    });
    seen
}

/// A check's result in `show servers state` follows HAProxy's lifecycle: unknown (0) while
/// a check runs (check state 7), the last check's (3, passed) between checks (state 6).
#[test]
fn check_result_is_unknown_while_a_check_runs() {
    let test = "check_result_is_unknown_while_a_check_runs";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let server = slow_health_server(Duration::from_millis(300));
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n{TIMEOUTS}  timeout check 2s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  option httpchk GET /health\n  server s {server} check inter 100ms\n",
        sock.display(),
    );
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), |_| {
        check_lifecycle(&sock)
    });
    assert_eq!(ours, BTreeSet::from([(6, 3), (7, 0)]), "hapx-proxy");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
