//! `observe layer7` and `track` leftovers, side by side with HAProxy 2.6 (same
//! configuration, same traffic, same observations): HTTP responses judge a server observed
//! at layer 7 (a 5xx but 501 and 505 is an error, any other status clears the errors in a
//! row, a server closing before its response or answering something not HTTP is an error),
//! and `on-error mark-down` takes it DOWN at `error-limit` errors in a row, logged with the
//! last error's name; `on-error fastinter` brings the next check forward to `fastinter`
//! after the error. NOLB passes down a chain of trackers (no new traffic) and back. A server in maintenance passes it down its chain of trackers
//! (`MAINT (via be/s)`, no traffic, HAProxy's admin state 2 and messages), which leave it
//! with it.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{blank_check_duration, cli, free_port, http_get, stat_row, wait_until};
use hapx_tests::proxy_lifecycle::{CheckPort, Lab, agree, messages, status};

/// An HTTP server answering `GET /NNN` with status NNN, `/close` by closing without an
/// answer, `/garbage` with a head that is not HTTP; one request per connection.
struct StatusServer {
    addr: SocketAddr,
}

impl StatusServer {
    fn start() -> StatusServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a server");
        let addr = listener.local_addr().expect("its address");
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                thread::spawn(move || answer(conn));
            }
        });
        StatusServer { addr }
    }
}

fn answer(conn: TcpStream) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut first = String::new();
    let _ = reader.read_line(&mut first);
    // The rest of the head.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let path = first
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/');
    let reply = match path {
        "close" => return,
        "garbage" => "HTTX garbage\r\n\r\n".to_string(),
        code => {
            format!("HTTP/1.1 {code} Whatever\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx")
        }
    };
    let _ = out.write_all(reply.as_bytes());
}

/// GETs each of `paths` (a new connection each): the status each got and the server's
/// state on the stats socket after it.
fn walk(sock: &Path, front: SocketAddr, paths: &[&str]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            let (code, ..) = http_get(front, &format!("/{p}"), None);
            format!("{p}->{code} {}", status(sock, "a"))
        })
        .collect()
}

/// `show stat`'s counters of health analysis for server `a`.
fn analysis(sock: &Path) -> Vec<String> {
    let row = stat_row(&cli(sock, "show stat"), "be", "a").unwrap_or_default();
    // `last_chk` holds a comma: it is read whole only if both proxies quote it.
    [
        "status",
        "check_status",
        "hanafail",
        "chkfail",
        "chkdown",
        "last_chk",
    ]
    .map(|k| format!("{k}={}", row.get(k).cloned().unwrap_or_default()))
    .to_vec()
}

/// Server a's next state-change message (the count of sessions at that moment races with
/// the request that made it, in HAProxy too).
fn change(lab: &Lab<StatusServer>) -> String {
    messages(&lab.syslog, &["Server be/a "], 1)
        .concat()
        .replace(" 1 sessions active", " 0 sessions active")
}

/// A lab whose server `a` is observed at layer 7, `on-error mark-down` at `limit` errors in
/// a row, its checks passing (slowly: the one after the errors would replace their `HANA`
/// check status): the lab, its backend, its open check port.
fn observed(test: &str, limit: u32) -> (Lab<StatusServer>, String, CheckPort) {
    let lab = Lab::new(test, "http", StatusServer::start());
    let check = free_port();
    let be = format!(
        "  server a {} check port {check} inter 3s fall 3 rise 100 observe layer7 error-limit {limit} on-error mark-down\n",
        lab.servers.addr
    );
    (lab, be, CheckPort::open(check))
}

#[test]
fn observe_layer7_marks_a_server_answering_errors_down() {
    let (lab, be, _checks) = observed("observe-l7", 3);
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("observe-l7", &be, |front| {
        assert!(wait_until(Duration::from_secs(8), || {
            stat_row(&cli(sock, "show stat"), "be", "a")
                .is_some_and(|r| r["check_status"] == "L4OK")
        }));
        // Good answers (100 to 499, 501, 505) clear the errors in a row; the third in a row
        // takes a DOWN, and the proxy answers 503 itself.
        let paths = [
            "500", "500", "200", "500", "502", "501", "503", "504", "505", "404", "500", "599",
            "099", "503", "200",
        ];
        let mut seen = walk(sock, front, &paths);
        seen.extend(analysis(sock));
        seen.push(change(&lab));
        seen
    });
    let expected = [
        "500->500 UP",
        "500->500 UP",
        "200->200 UP",
        "500->500 UP",
        "502->502 UP",
        "501->501 UP",
        "503->503 UP",
        "504->504 UP",
        "505->505 UP",
        "404->404 UP",
        "500->500 UP",
        "599->599 UP",
        // A status below 100 is an error too: the third in a row.
        "099->99 DOWN",
        "503->503 DOWN",
        "200->503 DOWN",
        "status=DOWN",
        "check_status=HANA",
        "hanafail=1",
        "chkfail=1",
        "chkdown=1",
        "last_chk=Detected 3 consecutive errors, last one was: Wrong http response",
        "Server be/a is DOWN, reason: Health analyze, info: \"Detected 3 consecutive errors, last one was: Wrong http response\". 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.",
    ];
    agree(ours, theirs, expected.map(String::from).to_vec());
}

#[test]
fn observe_layer7_counts_lost_and_broken_responses() {
    let (lab, be, _checks) = observed("observe-l7-lost", 2);
    let sock = &lab.sock;
    let (ours, theirs) = lab.run("observe-l7-lost", &be, |front| {
        assert!(wait_until(Duration::from_secs(8), || status(sock, "a") == "UP"));
        // A server closing before its answer: an error.
        let mut seen = walk(sock, front, &["500", "close"]);
        seen.push(change(&lab));
        cli(sock, "set server be/a health up");
        assert!(wait_until(Duration::from_secs(2), || status(sock, "a") == "UP"));
        // A response that is not HTTP: an error too.
        seen.extend(walk(sock, front, &["garbage", "garbage"]));
        seen.extend(messages(&lab.syslog, &["Server be/a "], 2));
        seen.extend(analysis(sock).into_iter().skip(2));
        seen.into_iter()
            .map(|s| s.replace(" 1 sessions active", " 0 sessions active"))
            .collect::<Vec<_>>()
    });
    let down = |last: &str| {
        format!(
            "Server be/a is DOWN, reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: {last}\". 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        )
    };
    let expected = vec![
        "500->500 UP".to_string(),
        "close->502 DOWN".into(),
        down("Close from server (http)"),
        "garbage->502 UP".into(),
        "garbage->502 DOWN".into(),
        "Server be/a is UP, changed from CLI. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.".into(),
        down("Invalid http response (headers)"),
        "hanafail=2".into(),
        "chkfail=2".into(),
        "chkdown=2".into(),
        "last_chk=Detected 2 consecutive errors, last one was: Invalid http response (headers)"
            .into(),
    ];
    agree(ours, theirs, expected);
}

/// `show stat`'s `FIELD` of each of `servers`, joined by commas.
fn column(sock: &Path, field: &str, servers: &[&str]) -> String {
    let stat = cli(sock, "show stat");
    servers
        .iter()
        .map(|s| {
            stat_row(&stat, "be", s)
                .map(|r| r[field].clone())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `show servers state be`'s `srv_admin_state` of each of `servers`, joined by commas.
fn admin_states(sock: &Path, servers: &[&str]) -> String {
    let state = cli(sock, "show servers state be");
    servers
        .iter()
        .map(|name| {
            state
                .lines()
                .map(|l| l.split(' ').collect::<Vec<_>>())
                .find(|f| f.len() > 6 && f[3] == *name)
                .map(|f| f[6].to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The chain of servers every `track` test watches.
const CHAIN: [&str; 3] = ["a", "t", "u"];

/// A lab whose server `a` is checked every `inter` on its own port, tracked by `t`, itself
/// tracked by `u`, next to an unchecked `b`: the lab, its check port, its backend.
fn track_chain(test: &str, inter: &str) -> (Lab<StatusServer>, u16, String) {
    let lab = Lab::new(test, "http", StatusServer::start());
    let check = free_port();
    let addr = lab.servers.addr;
    let be = format!(
        "  server a {addr} check port {check} inter {inter} fall 1 rise 1
  server t {addr} track a
  server u {addr} track t
  server b {addr}\n"
    );
    (lab, check, be)
}

#[test]
fn trackers_inherit_the_tracked_servers_maintenance() {
    let (lab, check, be) = track_chain("track-maint", "100ms");
    let sock = &lab.sock;
    let chain = CHAIN;
    let (ours, theirs) = lab.run("track-maint", &be, |front| {
        let checks = CheckPort::open(check);
        let up = || column(sock, "status", &chain);
        assert!(
            wait_until(Duration::from_secs(5), || up() == "UP,UP,UP"),
            "{}",
            up()
        );
        // a UP enters maintenance: so do t and u, which take no traffic.
        cli(sock, "disable server be/a");
        let mut seen = vec![column(sock, "status", &chain), admin_states(sock, &chain)];
        for _ in 0..6 {
            http_get(front, "/200", None);
        }
        seen.push(column(sock, "stot", &["a", "t", "u", "b"]));
        cli(sock, "enable server be/a");
        assert!(wait_until(Duration::from_secs(5), || status(sock, "u") == "UP"));
        seen.push(admin_states(sock, &chain));
        // a DOWN enters maintenance, and leaves it DOWN.
        drop(checks);
        assert!(wait_until(Duration::from_secs(5), || status(sock, "u") == "DOWN"));
        cli(sock, "disable server be/a");
        seen.push(column(sock, "status", &chain));
        cli(sock, "enable server be/a");
        assert!(wait_until(Duration::from_secs(5), || column(
            sock, "status", &chain
        ) == "DOWN,DOWN,DOWN"));
        // From the first maintenance on (the first checks may fail before the port opens).
        seen.extend(messages(
            &lab.syslog,
            &["Server be/a is going DOWN for maint"],
            1,
        ));
        // A check's duration is the host's (0 or 1 ms on loopback).
        let lines = messages(&lab.syslog, &["Server be/"], 14);
        seen.extend(lines.iter().map(|l| blank_check_duration(l)));
        seen
    });
    let left = |n: u32| {
        format!(
            ". {n} active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        )
    };
    let refused =
        "reason: Layer4 connection problem, info: \"Connection refused\", check duration: Nms";
    let expected = vec![
        "MAINT,MAINT (via be/a),MAINT (via be/t)".to_string(),
        "1,2,2".into(),
        "0,0,0,6".into(),
        "0,0,0".into(),
        "MAINT,MAINT (via be/a),MAINT (via be/t)".into(),
        format!("Server be/a is going DOWN for maintenance{}", left(3)),
        format!(
            "Server be/t is going DOWN for maintenance via be/a{}",
            left(2)
        ),
        format!(
            "Server be/u is going DOWN for maintenance via be/t{}",
            left(1)
        ),
        "Server be/a is UP/READY (leaving forced maintenance).".into(),
        "Server be/t is UP/READY (leaving maintenance).".into(),
        "Server be/u is UP/READY (leaving maintenance).".into(),
        format!("Server be/a is DOWN, {refused}{}", left(3)),
        format!("Server be/t is DOWN via be/a{}", left(2)),
        format!("Server be/u is DOWN via be/t{}", left(1)),
        "Server be/a was DOWN and now enters maintenance.".into(),
        "Server be/t was DOWN and now enters maintenance via be/a.".into(),
        "Server be/u was DOWN and now enters maintenance via be/t.".into(),
        "Server be/a is UP/READY (leaving forced maintenance).".into(),
        "Server be/t is UP/READY (leaving maintenance).".into(),
        "Server be/u is UP/READY (leaving maintenance).".into(),
    ];
    agree(ours, theirs, expected);
}

/// A server in NOLB (`set server ... health stopping`) passes it down its chain of trackers,
/// which take no new balanced traffic with it, and come back UP with it.
#[test]
fn trackers_follow_the_tracked_servers_nolb() {
    let (lab, check, be) = track_chain("track-nolb", "10s");
    let sock = &lab.sock;
    let chain = CHAIN;
    // Open before either proxy starts: their first checks pass (the next one, 10 s later,
    // would end the NOLB).
    let _checks = CheckPort::open(check);
    let (ours, theirs) = lab.run("track-nolb", &be, |front| {
        let up = || column(sock, "status", &chain);
        assert!(
            wait_until(Duration::from_secs(5), || up() == "UP,UP,UP"),
            "{}",
            up()
        );
        cli(sock, "set server be/a health stopping");
        let mut seen = vec![up()];
        for _ in 0..6 {
            http_get(front, "/200", None);
        }
        seen.push(column(sock, "stot", &["a", "t", "u", "b"]));
        cli(sock, "set server be/a health up");
        seen.push(up());
        for _ in 0..6 {
            http_get(front, "/200", None);
        }
        seen.push(column(sock, "stot", &["a", "t", "u", "b"]));
        seen.extend(messages(&lab.syslog, &["Server be/a is stopping"], 1));
        seen.extend(messages(&lab.syslog, &["Server be/"], 5));
        seen
    });
    let online = |n: u32| {
        format!(". {n} active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")
    };
    let expected = vec![
        "NOLB,NOLB,NOLB".to_string(),
        "0,0,0,6".into(),
        "UP,UP,UP".into(),
        "2,1,1,8".into(),
        format!("Server be/a is stopping, changed from CLI{}", online(3)),
        format!("Server be/t is stopping via be/a{}", online(2)),
        format!("Server be/u is stopping via be/t{}", online(1)),
        format!("Server be/a is UP, changed from CLI{}", online(2)),
        format!("Server be/t is UP via be/a{}", online(3)),
        format!("Server be/u is UP via be/t{}", online(4)),
    ];
    agree(ours, theirs, expected);
}

/// Answers HTTP health checks on `port` with 200, counting them, until the test ends (an
/// HTTP check is counted when read: a layer-4 one, reset at once, may never be accepted).
fn counting_checks(port: u16) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let listener = (0..100)
        .find_map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .inspect_err(|_| thread::sleep(Duration::from_millis(20)))
                .ok()
        })
        .expect("binding the check port");
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Ok(mut out) = conn.try_clone() else {
                continue;
            };
            let mut head = String::new();
            if BufReader::new(conn).read_line(&mut head).unwrap_or(0) > 0 {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    count
}

/// `on-error fastinter`: the next check comes `fastinter` after the error, not after the
/// `inter` being waited out.
#[test]
fn observe_on_error_fastinter_brings_the_next_check_forward() {
    let lab = Lab::new("observe-fastinter", "http", StatusServer::start());
    let check = free_port();
    let be = format!(
        "  option httpchk GET /chk\n  server a {} check port {check} inter 10s fastinter 300ms fall 3 rise 1 observe layer7 error-limit 1 on-error fastinter\n",
        lab.servers.addr
    );
    // Open before either proxy starts: their first checks pass.
    let checks = counting_checks(check);
    let (ours, theirs) = lab.run("observe-fastinter", &be, |front| {
        let count = || checks.load(std::sync::atomic::Ordering::SeqCst);
        // The first check comes as the proxy starts, the next one 10 s later.
        thread::sleep(Duration::from_secs(1));
        let before = count();
        let (code, ..) = http_get(front, "/500", None);
        thread::sleep(Duration::from_secs(2));
        vec![
            format!("status {code}"),
            format!("checks in the 2s after the error: {}", count() - before),
        ]
    });
    let expected = vec![
        "status 500".to_string(),
        "checks in the 2s after the error: 1".into(),
    ];
    agree(ours, theirs, expected);
}
