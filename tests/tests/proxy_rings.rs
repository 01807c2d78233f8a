//! `ring` sections beside HAProxy 2.6: lines logged to a ring (`log ring@NAME`) are kept
//! with the ring's format, cut to its `maxlen`, the oldest leaving once its `size` is full;
//! the runtime API's `show events` lists the rings and dumps one; a ring's servers get its
//! lines over TCP, octet-counted or each followed by a line feed. Compared byte for byte,
//! the dates and process ids masked.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{TIMEOUTS, exchange, get, side_by_side};
use hapx_tests::wait::eventually;

/// A line with its dates, pids and lengths masked: every run of digits written `N`, but
/// within a `<PRI>`.
fn masked(line: &str) -> String {
    let mut out = String::new();
    let (mut in_pri, mut in_digits) = (false, false);
    for c in line.chars() {
        in_pri = match c {
            '<' => true,
            '>' => false,
            _ => in_pri && c.is_ascii_digit(),
        };
        if c.is_ascii_digit() && !in_pri {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

fn masked_answer(answer: &str) -> Vec<String> {
    answer.lines().map(masked).collect()
}

/// Waits until `show events RING` holds `count` lines.
fn wait_for_lines(socket: &std::path::Path, ring: &str, count: usize) -> bool {
    eventually(Duration::from_secs(10), || {
        cli(socket, &format!("show events {ring}"))
            .lines()
            .filter(|l| !l.is_empty())
            .count()
            >= count
    })
}

#[test]
fn show_events_lists_the_rings_and_dumps_their_lines_as_haproxy_does() {
    let test = "show_events_lists_the_rings_and_dumps_their_lines_as_haproxy_does";
    // Short: HAProxy's socket paths are at most 97 bytes.
    let dir = temp_dir("rings-show");
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {}\n\
         ring local\n  description \"My local buffer\"\n  format rfc3164\n  maxlen 1200\n\
         ring iso\n  format rfc5424\n  maxlen 60\n\
         ring plain\n\
         ring levels\n  format short\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind {front}\n  log-format \"request %HU\"\n\
         \x20 log ring@local local0\n  log ring@iso local1\n  log ring@plain len 80 local2\n\
         \x20 log ring@levels local3 notice\n  http-request return status 200\n",
        socket.display()
    );
    let observe = |front: SocketAddr| {
        let long = format!("/{}", "x".repeat(100));
        let requests = [get("/a", ""), get("/b", ""), get(&long, "")];
        exchange(front, &requests);
        assert!(wait_for_lines(&socket, "plain", 3), "three lines logged");
        let mut answers = vec![masked_answer(&cli(&socket, "show events"))];
        for command in [
            "show events local",
            "show events iso",
            "show events plain",
            "show events levels",
            "show events plain -n",
            "show events nosuch",
        ] {
            answers.push(masked_answer(&cli(&socket, command)));
        }
        answers
    };
    let (ours, theirs) = side_by_side(test, &config, front, observe);
    assert_eq!(ours[3][..2], ["request /a", "request /b"], "{ours:?}");
    assert_eq!(ours[3][2].len(), 80, "cut to the log line's len: {ours:?}");
    assert!(ours[0][4].contains("My local buffer"), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn a_full_ring_keeps_as_many_of_the_last_lines_as_haproxy_keeps() {
    let test = "a_full_ring_keeps_as_many_of_the_last_lines_as_haproxy_keeps";
    // Short: HAProxy's socket paths are at most 97 bytes.
    let dir = temp_dir("rings-full");
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {}\nring small\n  maxlen 60\n  size 16384\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind {front}\n  log-format \"request %HU\"\n\
         \x20 log ring@small local0\n  http-request return status 200\n",
        socket.display()
    );
    // 300 lines of 60 bytes (62 with their length and counter) in 16384 bytes.
    let observe = |front: SocketAddr| {
        let requests: Vec<String> = (0..300)
            .map(|n| get(&format!("/{n:03}{}", "x".repeat(70)), ""))
            .collect();
        exchange(front, &requests);
        assert!(
            eventually(Duration::from_secs(10), || {
                cli(&socket, "show events small").contains("request /299")
            }),
            "the last line logged"
        );
        cli(&socket, "show events small")
    };
    let (ours, theirs) = side_by_side(test, &config, front, observe);
    let kept = ours.lines().filter(|l| !l.is_empty()).count();
    assert!(kept < 300 && kept > 200, "{kept} lines kept");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A TCP server keeping every byte its clients send.
struct Collector {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a collector");
        let addr = listener.local_addr().expect("its address");
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let kept = bytes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        kept.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Collector { addr, bytes }
    }

    /// Takes what came so far, once it ends with `end`.
    fn take_until(&self, end: &str) -> String {
        let came = eventually(Duration::from_secs(10), || {
            let bytes = self.bytes.lock().unwrap();
            String::from_utf8_lossy(&bytes).ends_with(end)
        });
        assert!(came, "the collector at {} got {end:?}", self.addr);
        let bytes = std::mem::take(&mut *self.bytes.lock().unwrap());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Whether `text` is a run of `LEN message` frames, each LEN the bytes of its message.
fn octet_counted(mut text: &str) -> bool {
    while !text.is_empty() {
        let Some((len, rest)) = text.split_once(' ') else {
            return false;
        };
        let Some(len) = len.parse::<usize>().ok().filter(|&l| l <= rest.len()) else {
            return false;
        };
        text = &rest[len..];
    }
    true
}

#[test]
fn a_rings_servers_get_its_lines_framed_as_haproxy_frames_them() {
    let test = "a_rings_servers_get_its_lines_framed_as_haproxy_frames_them";
    let octets = Collector::start();
    let lines = Collector::start();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "ring counted\n  format rfc3164\n  timeout connect 1s\n  timeout server 10s\n\
         \x20 server s1 {} log-proto octet-count\n\
         ring plain\n  format rfc5424\n  timeout connect 1s\n  timeout server 10s\n\
         \x20 server s2 {}\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind {front}\n  log-format \"request %HU\"\n\
         \x20 log ring@counted local0\n  log ring@plain local1\n  http-request return status 200\n",
        octets.addr, lines.addr
    );
    let observe = |front: SocketAddr| {
        exchange(front, &[get("/a", ""), get("/b", "")]);
        let counted = octets.take_until("request /b");
        let plain = lines.take_until("request /b\n");
        assert!(octet_counted(&counted), "{counted:?}");
        (masked(&counted), masked(&plain))
    };
    let (ours, theirs) = side_by_side(test, &config, front, observe);
    assert!(ours.0.starts_with("N <134>"), "{ours:?}");
    assert_eq!(ours.1.lines().count(), 2, "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn a_rings_format_shows_the_host_name_tag_and_structured_data_as_haproxys() {
    let test = "a_rings_format_shows_the_host_name_tag_and_structured_data_as_haproxys";
    let dir = temp_dir("rings-formats");
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let formats = ["iso", "timed", "priority", "rfc5424", "rfc3164", "short"];
    let mut config = format!(
        "global\n  stats socket {}\n  log-send-hostname myhost\n  log-tag mytag\n",
        socket.display()
    );
    for format in formats {
        config += &format!("ring {format}\n  format {format}\n");
    }
    config += &format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind {front}\n  log-format \"request %HU\"\n\
         \x20 log-format-sd \"[exa@1 method=\\\"%HM\\\"]\"\n  http-request return status 200\n"
    );
    // Levels raised by a minimum one, or kept.
    for (format, levels) in formats
        .iter()
        .zip(["", "info debug", "info warning", "", "", ""])
    {
        config += &format!("  log ring@{format} local0 {levels}\n");
    }
    let observe = |front: SocketAddr| {
        exchange(front, &[get("/a", "")]);
        assert!(wait_for_lines(&socket, "short", 1), "a line logged");
        (formats.iter())
            .map(|f| masked_answer(&cli(&socket, &format!("show events {f}"))))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, front, observe);
    assert!(
        ours[3][0].ends_with(" myhost mytag N - [exa@N method=\"GET\"] request /a"),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
