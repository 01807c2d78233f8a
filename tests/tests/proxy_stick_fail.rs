//! Stick tables' `http_fail_cnt` and `http_fail_rate(period)` side by side with HAProxy 2.6:
//! which answers count as a server's failure (its 5xx but 501 and 505; no valid response:
//! closed, not HTTP, timed out) and which do not (4xx, 501, 505, the proxy's own answers, a
//! server that cannot be reached), as `show table` shows them, as `show table`'s
//! `data.http_fail_cnt` filter selects them, and as the `sc*_`/`src_` fetches read them;
//! both replicate to and from an HAProxy peer (HAProxy's data types 20 and 21).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use hapx_tests::peers::{HAPROXY, hapx, have_haproxy, socket, start_member, two_ports};
use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{get, read_response, side_by_side};
use hapx_tests::proxy_stick::masked;
use hapx_tests::wait::eventually;

/// A server answering by path: `/sNNN` with status NNN, `/close` by closing, `/junk` with
/// what is not HTTP, `/hold` not at all until the proxy gives up (`timeout server`).
fn scripted_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a scripted server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || answer(conn));
        }
    });
    addr
}

/// Reads one request head from `conn` and answers as its path says.
fn answer(conn: TcpStream) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let path = first.split(' ').nth(1).unwrap_or_default();
    let reply = match path {
        "/close" => return,
        "/junk" => "garbage\r\n\r\n".to_string(),
        "/hold" => {
            // Until the proxy closes its side.
            let _ = reader.read_to_end(&mut Vec::new());
            return;
        }
        _ => {
            let status = path.strip_prefix("/s").unwrap_or("200");
            format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        }
    };
    let _ = writer.write_all(reply.as_bytes());
}

/// The paths requested in turn: each a kind of answer.
const PATHS: [&str; 13] = [
    "/s500", "/s501", "/s502", "/s503", "/s504", "/s505", "/s404", "/s200", "/close", "/junk",
    "/hold", "/dead", "/ret500",
];

fn config(socket: &Path, server: SocketAddr, dead: SocketAddr) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:{{PORT}}\n\
         \x20 http-request track-sc0 src table t\n\
         \x20 http-request return status 200 content-type text/plain lf-string \
         \"%[sc0_http_fail_cnt] %[sc0_http_fail_rate] %[sc_http_fail_cnt(0)] \
         %[src_http_fail_cnt(t)] %[src_http_fail_rate(t)] %[sc0_http_err_cnt]\" \
         if {{ path /count }}\n\
         \x20 http-request return status 500 if {{ path /ret500 }}\n\
         \x20 use_backend dead if {{ path /dead }}\n\
         \x20 default_backend b\n\
         backend t\n\
         \x20 stick-table type ip size 10 expire 1m \
         store http_fail_rate(10s),http_req_cnt,http_fail_cnt,http_err_cnt\n\
         backend b\n  server s {server}\n\
         backend dead\n  retries 0\n  server s {dead}\n",
        socket.display()
    )
}

/// What a client saw and what the table showed.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    statuses: Vec<String>,
    counted: String,
    table: Vec<String>,
    failing: Vec<String>,
}

fn status_of(front: SocketAddr, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(front) else {
        return "no connection".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = s.write_all(get(path, "connection: close\r\n").as_bytes());
    read_response(&mut BufReader::new(s))
        .map_or("no response".into(), |r| format!("{path} {}", r.status))
}

#[test]
fn server_failures_are_counted_as_haproxy_counts_them() {
    let test = "server_failures_are_counted_as_haproxy_counts_them";
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let server = scripted_server();
    // A port nothing listens on: the connection is refused.
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let text = config(&socket, server, dead).replace("{PORT}", &front.port().to_string());
    let traffic = |front: SocketAddr| {
        let statuses = PATHS.iter().map(|p| status_of(front, p)).collect();
        let counted = TcpStream::connect(front)
            .ok()
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                s.write_all(get("/count", "connection: close\r\n").as_bytes())
                    .ok()?;
                read_response(&mut BufReader::new(s))
            })
            .map(|r| r.body)
            .unwrap_or_default();
        // The last connection holds its entry (`use=1`) until the proxy has closed it.
        assert!(hapx_tests::proxy::no_connection_open(&socket));
        Seen {
            statuses,
            counted,
            table: masked(&cli(&socket, "show table t"), 0..=60_000),
            failing: masked(
                &cli(&socket, "show table t data.http_fail_cnt gt 5"),
                0..=60_000,
            ),
        }
    };
    let (ours, theirs) = side_by_side(test, &text, front, traffic);
    // What HAProxy counts, as the module's doc says: 500, 502, 503, 504, the closed
    // connection, the junk and the timeout; not 501, 505, 404, 200, the refused
    // connection or the proxy's own 500.
    assert_eq!(ours.counted, "7 7 7 7 7 1", "{ours:#?}");
    assert!(
        ours.table.iter().any(|l| l
            .contains("http_req_cnt=14 http_err_cnt=1 http_fail_cnt=7 http_fail_rate(10000)=7")),
        "{ours:#?}"
    );
    assert_eq!(ours.failing.len(), ours.table.len(), "{ours:#?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// The entry lines of `show table tb` behind `socket`, without address and expiry.
fn entries(socket: &Path) -> Vec<String> {
    cli(socket, "show table tb")
        .lines()
        .filter(|l| l.starts_with("0x"))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| !w.starts_with("0x") && !w.starts_with("exp="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn failure_counters_replicate_between_hapx_and_haproxy() {
    let test = "failure_counters_replicate_between_hapx_and_haproxy";
    if !have_haproxy(test) {
        return;
    }
    let dir = temp_dir(test);
    let (peer, http) = (two_ports(), two_ports());
    let config = |i: usize| {
        format!(
            "global\n  stats socket {} level admin\n\
             peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  http-request return status 200\n\
             backend tb\n  stick-table type ip size 10 expire 60s peers pair \
             store http_fail_cnt,http_fail_rate(10s),http_req_cnt\n",
            socket(&dir, i).display(),
            peer[0],
            peer[1],
            http[i]
        )
    };
    let binaries = [PathBuf::from(HAPROXY), hapx()];
    let _members: Vec<Proxy> = (0..2)
        .map(|i| {
            start_member(
                &binaries[i],
                &dir,
                &format!("n{i}"),
                &config(i),
                http[i],
                None,
            )
        })
        .collect();
    // Set in one, learned by the other, each way.
    for (from, to, key, count) in [(0, 1, "10.0.0.1", 5), (1, 0, "10.0.0.2", 7)] {
        let set = format!(
            "set table tb key {key} data.http_fail_cnt {count} data.http_fail_rate {count}"
        );
        assert_eq!(cli(&socket(&dir, from), &set).trim(), "", "{set}");
        let want = format!(
            "key={key} use=0 http_req_cnt=0 http_fail_cnt={count} http_fail_rate(10000)={count}"
        );
        let learned = || entries(&socket(&dir, to)).contains(&want);
        assert!(
            eventually(Duration::from_secs(10), learned),
            "n{to} shows {:?}, n{from} {:?}",
            entries(&socket(&dir, to)),
            entries(&socket(&dir, from))
        );
    }
}
