//! `observe` judges only a server with a health check of its own, side by side with HAProxy
//! 2.6 (whose `health_adjust` returns at once without the check's task): a server without
//! `check`, and one tracking another's (`track`), stay as they were however many errors
//! their responses are, `hanafail` 0; a server with `check` counts them (`hanafail`, a
//! `HANA` check result).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, http_get, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::side_by_side;

/// A server answering every request with a 500, one request a connection.
fn failing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a failing server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || answer_500(conn));
        }
    });
    addr
}

fn answer_500(conn: TcpStream) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let _ = out.write_all(b"HTTP/1.1 500 X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
}

/// The server rows' columns compared: server, status, hanafail, hrsp_5xx. (`s6`'s status
/// is left out: it is its tracked `s4`'s, whose first check HAProxy spreads over `inter`.)
fn judged(csv: &str) -> Vec<[String; 4]> {
    [("b1", "s1"), ("b2", "s2"), ("b3", "s3"), ("b6", "s6")]
        .iter()
        .map(|(b, s)| {
            let row = stat_row(csv, b, s).unwrap_or_default();
            let cell = |c: &str| row.get(c).cloned().unwrap_or_default();
            let status = if *s == "s6" {
                String::new()
            } else {
                cell("status")
            };
            [s.to_string(), status, cell("hanafail"), cell("hrsp_5xx")]
        })
        .collect()
}

#[test]
fn only_a_server_with_its_own_check_is_judged_by_observe() {
    let test = "only_a_server_with_its_own_check_is_judged_by_observe";
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let server = failing_server();
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // `inter 60s`: no check but the first meanwhile; the statuses come of `observe`. `s2`
    // tracks `s3`, which observes: its `hanafail` is shown (0); `s6` tracks `s4`, which
    // does not: none shown.
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend f\n  bind {front}\n\
         \x20 use_backend b1 if {{ path /b1 }}\n\
         \x20 use_backend b2 if {{ path /b2 }}\n\
         \x20 use_backend b6 if {{ path /b6 }}\n\
         \x20 default_backend b3\n\
         backend b3\n  server s3 {server} check inter 60s observe layer7 error-limit 2 on-error fail-check\n\
         backend b1\n  server s1 {server} observe layer7 error-limit 1 on-error mark-down\n\
         backend b2\n  server s2 {server} track b3/s3 observe layer7 error-limit 1 on-error mark-down\n\
         backend b4\n  server s4 {server} check inter 60s\n\
         backend b6\n  server s6 {server} track b4/s4 observe layer7 error-limit 1 on-error mark-down\n",
        socket.display()
    );
    let traffic = |front: SocketAddr| {
        // `s3`'s first check done (HAProxy's comes at once for the first checked server).
        let checked = wait_until(Duration::from_secs(5), || {
            stat_row(&cli(&socket, "show stat"), "b3", "s3")
                .is_some_and(|r| r.get("check_status").is_some_and(|c| c == "L4OK"))
        });
        assert!(checked, "s3 was never checked");
        let statuses: Vec<u16> = ["/b1", "/b2", "/b6", "/b3"]
            .iter()
            .flat_map(|p| [*p; 4])
            .map(|p| http_get(front, p, None).0)
            .collect();
        (statuses, judged(&cli(&socket, "show stat")))
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    // Every request reached its server (none was refused for a server marked DOWN).
    assert_eq!(ours.0, vec![500; 16], "{ours:?}");
    let hanafail: Vec<&str> = ours.1.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(hanafail, ["0", "0", "2", ""], "{ours:?}");
    assert_eq!(ours.1[0][1], "no check", "{ours:?}");
    // `s2` is as the server it tracks is.
    assert_eq!(ours.1[1][1], ours.1[2][1], "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
