//! The stats page's "General process information", beside HAProxy 2.6: the process's output
//! bit rate (HAProxy's `global.out_32bps`: bytes sent per second to clients and servers, in
//! 32-byte units, shown in kbps, Mbps or Gbps) and `Running tasks: RUN_QUEUE/TASKS`, with
//! `show info`'s `BytesOutRate` and `Tasks` beside them.
//!
//! Both proxies carry the same paced traffic (a 64 KB response every 50 ms, about 10 Mbps
//! out) while their page is read, so each one's rate covers the same load.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, http_get, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::wait;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const BODY: usize = 64 * 1024;

/// An HTTP server answering every request with a `BODY`-byte response, then closing.
fn bulk_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\nConnection: close\r\n\r\n{}",
                    "x".repeat(BODY)
                );
                let _ = conn.write_all(answer.as_bytes());
            });
        }
    });
    addr
}

/// Requests through `front` every 50 ms until `stop`.
fn paced_traffic(front: SocketAddr, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !stop.load(Relaxed) {
            if let Ok(mut conn) = TcpStream::connect(front) {
                let _ =
                    conn.write_all(b"GET /data HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                let _ = std::io::copy(&mut conn, &mut std::io::sink());
            }
            thread::sleep(Duration::from_millis(50));
        }
    })
}

/// What one page and `show info` said: the bit rate in bits per second, the run queue and
/// the tasks of the page, and `show info`'s `BytesOutRate` and `Tasks`.
#[derive(Debug, Default, Clone, Copy)]
struct Header {
    bits_per_second: f64,
    run_queue: u64,
    tasks: u64,
    bytes_out_rate: u64,
    info_tasks: u64,
}

fn between<'a>(text: &'a str, before: &str, after: &str) -> &'a str {
    let from = text.find(before).map_or(text.len(), |at| at + before.len());
    let rest = &text[from..];
    &rest[..rest.find(after).unwrap_or(rest.len())]
}

fn read_header(page: &str, info: &str) -> Header {
    let rate = between(page, "bit rate = ", "bps<br>");
    let (number, unit) = rate.split_once(' ').unwrap_or((rate, ""));
    let scale = match unit {
        "G" => 1e9,
        "M" => 1e6,
        _ => 1e3,
    };
    let tasks = between(page, "Running tasks: ", ";");
    let (run_queue, tasks) = tasks.split_once('/').unwrap_or(("", ""));
    let info_value = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Header {
        bits_per_second: number.parse::<f64>().unwrap_or(0.0) * scale,
        run_queue: run_queue.trim().parse().unwrap_or(u64::MAX),
        tasks: tasks.trim().parse().unwrap_or(0),
        bytes_out_rate: info_value("BytesOutRate"),
        info_tasks: info_value("Tasks"),
    }
}

#[test]
fn the_stats_page_shows_the_output_bit_rate_and_the_tasks() {
    let test = "the_stats_page_shows_the_output_bit_rate_and_the_tasks";
    let dir = temp_dir(test);
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  stats socket {}\ndefaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
         frontend fe\n  bind {front}\n  stats enable\n  stats uri /stats\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        socket.display(),
        bulk_server()
    );
    let traffic = |front: SocketAddr| {
        let stop = Arc::new(AtomicBool::new(false));
        let sender = paced_traffic(front, stop.clone());
        // Once the traffic shows (each proxy's rate counts the current and last second).
        let mut header = Header::default();
        wait::eventually(Duration::from_secs(10), || {
            let (_, _, page) = http_get(front, "/stats", None);
            header = read_header(&page, &cli(&socket, "show info"));
            header.bits_per_second > 1e6 && header.bytes_out_rate > 100_000
        });
        stop.store(true, Relaxed);
        sender.join().expect("the traffic thread");
        header
    };
    let (ours, theirs) = side_by_side(test, &config, front, traffic);
    assert!(ours.bits_per_second > 1e6, "hapx-proxy: {ours:?}");
    assert!(ours.bytes_out_rate > 100_000, "hapx-proxy: {ours:?}");
    assert!(
        ours.tasks > 0 && ours.info_tasks > 0,
        "hapx-proxy: {ours:?}"
    );
    assert!(ours.run_queue <= ours.tasks, "hapx-proxy: {ours:?}");
    if let Some(theirs) = theirs {
        assert!(theirs.bits_per_second > 1e6, "HAProxy: {theirs:?}");
        // The same paced load: the same order of magnitude.
        let ratio = ours.bits_per_second / theirs.bits_per_second;
        assert!(
            (0.25..4.0).contains(&ratio),
            "bit rates: hapx-proxy {ours:?}, HAProxy {theirs:?}"
        );
        assert!(theirs.tasks > 0, "HAProxy: {theirs:?}");
    }
}
