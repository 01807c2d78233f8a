//! The HTTP/1 multiplexer's columns of `show stat` (`h1_open_connections` to
//! `h1_spliced_bytes_out`) and their typed lines beside HAProxy 2.6, on the same traffic:
//! a client's three kept-alive requests, a POST with a body, a 404, a bad request (a stream
//! of its own in HAProxy), an HTTP/2 client with prior knowledge (read as HTTP/1 until its
//! preface is seen: a connection and its first read, no stream), and a TCP proxy's session
//! (none of them). The frontend counts the client connections' raw bytes, the backend its
//! server connections'; listeners and servers have no such columns.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

const H1_COLUMNS: [&str; 8] = [
    "h1_open_connections",
    "h1_open_streams",
    "h1_total_connections",
    "h1_total_streams",
    "h1_bytes_in",
    "h1_bytes_out",
    "h1_spliced_bytes_in",
    "h1_spliced_bytes_out",
];

/// An HTTP/1.1 server answering each request (its body read) `200 hello`, or `404` for a
/// path under `/missing`, and closing: the proxies keep no server connection.
fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a test server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || answer_once(conn));
        }
    });
    addr
}

fn answer_once(conn: TcpStream) {
    let mut reader = BufReader::new(&conn);
    let (mut path, mut length) = (String::new(), 0usize);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        let lower = line.to_ascii_lowercase();
        if path.is_empty() {
            path = line.split(' ').nth(1).unwrap_or_default().to_string();
        } else if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    if path.is_empty() {
        return;
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let status = if path.starts_with("/missing") {
        "404 Not Found"
    } else {
        "200 OK"
    };
    let answer =
        format!("HTTP/1.1 {status}\r\ncontent-length: 6\r\nconnection: close\r\n\r\nhello\n");
    let _ = (&conn).write_all(answer.as_bytes());
}

/// A TCP server echoing what it reads.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a test server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = std::io::copy(&mut &conn, &mut &conn);
            });
        }
    });
    addr
}

/// Sends `request` on `conn` and reads its response (head and `content-length` body).
fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> String {
    conn.get_mut()
        .write_all(request)
        .expect("sending a request");
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).unwrap_or(0) == 0 {
            return head;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = conn.read_exact(&mut body);
    head.lines().next().unwrap_or_default().to_string()
}

fn connect(front: SocketAddr) -> BufReader<TcpStream> {
    let conn = TcpStream::connect(front).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    BufReader::new(conn)
}

/// Sends `bytes` and reads until the proxy closes (or 10 s pass).
fn until_closed(front: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut conn = connect(front);
    conn.get_mut().write_all(bytes).expect("sending");
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    out
}

/// Sends `bytes` through a TCP proxy, ends its side, and reads the echo to the end.
fn echoed(front: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut conn = connect(front);
    conn.get_mut().write_all(bytes).expect("sending");
    let _ = conn.get_ref().shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    out
}

/// An HTTP/2 client with prior knowledge: its preface and an empty SETTINGS frame in one
/// write, then the proxy's SETTINGS frame read, then gone.
fn h2_client(front: SocketAddr) -> bool {
    let mut conn = connect(front);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    conn.get_mut()
        .write_all(&hello)
        .expect("sending the preface");
    let mut frame_head = [0u8; 9];
    conn.read_exact(&mut frame_head).is_ok() && frame_head[3] == 4
}

/// The h1 columns of every row, and the typed lines of the frontend and backend ones.
fn h1_stats(sock: &Path) -> (Vec<String>, Vec<String>) {
    let csv = cli(sock, "show stat");
    let mut rows = Vec::new();
    for (proxy, server) in [
        ("web", "FRONTEND"),
        ("web", "s1"),
        ("web", "BACKEND"),
        ("tcp", "FRONTEND"),
        ("tcp", "t1"),
        ("tcp", "BACKEND"),
    ] {
        let row = stat_row(&csv, proxy, server).unwrap_or_else(|| panic!("no {proxy}/{server}"));
        let values = H1_COLUMNS.map(|c| row.get(c).cloned().unwrap_or_default());
        rows.push(format!("{proxy}/{server}: {}", values.join(",")));
    }
    let typed = cli(sock, "show stat typed")
        .lines()
        .filter(|l| l.contains(".h1_"))
        .map(String::from)
        .collect();
    (rows, typed)
}

/// Waits until no client or server connection is open (the counts are then final).
fn settled(sock: &Path) -> bool {
    eventually(Duration::from_secs(10), || {
        let csv = cli(sock, "show stat");
        let open = |row: &str| {
            stat_row(&csv, "web", row)
                .and_then(|r| r.get("h1_open_connections").cloned())
                .unwrap_or_default()
        };
        open("FRONTEND") == "0" && open("BACKEND") == "0" && csv.contains("\ntcp,FRONTEND,")
    }) && cli(sock, "show info").contains("\nCurrConns: 0\n")
}

#[test]
fn h1_columns_count_as_haproxy_s() {
    let dir = temp_dir("stat-h1");
    let sock = dir.join("stats.sock");
    let (web, tcp) = (free_port(), free_port());
    let (http_server, tcp_server) = (closing_server(), echo_server());
    let cfg = format!(
        "global\n    stats socket {sock} level admin\n\
         defaults\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\
         listen web\n    mode http\n    bind 127.0.0.1:{web}\n    server s1 {http_server}\n\
         listen tcp\n    mode tcp\n    bind 127.0.0.1:{tcp}\n    server t1 {tcp_server}\n",
        sock = sock.display()
    );
    let front = SocketAddr::from((LO, web));
    let (ours, theirs) = side_by_side("stat-h1", &cfg, front, |front| {
        let mut statuses = Vec::new();
        let mut kept = connect(front);
        for path in ["/a", "/b", "/c"] {
            let get = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
            statuses.push(exchange(&mut kept, get.as_bytes()));
        }
        drop(kept);
        let post = b"POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabcdefghij";
        statuses.push(exchange(&mut connect(front), post));
        let missing = b"GET /missing HTTP/1.1\r\nhost: x\r\n\r\n";
        statuses.push(exchange(&mut connect(front), missing));
        let bad = until_closed(front, b"GET / HTTP/1.1\r\nhost: x\r\nBad header\r\n\r\n");
        statuses.push(
            String::from_utf8_lossy(&bad)
                .lines()
                .next()
                .unwrap_or("")
                .into(),
        );
        statuses.push(format!("h2 settings: {}", h2_client(front)));
        let echoed = echoed(SocketAddr::from((LO, tcp)), b"ping");
        statuses.push(String::from_utf8_lossy(&echoed).into_owned());
        assert!(settled(&sock), "connections stayed open");
        (statuses, h1_stats(&sock))
    });
    eprintln!("hapx: {ours:#?}\nHAProxy: {theirs:#?}");
    let (statuses, (rows, typed)) = &ours;
    assert_eq!(statuses[..3], ["HTTP/1.1 200 OK"; 3]);
    assert_eq!(statuses[4], "HTTP/1.1 404 Not Found");
    assert!(statuses[5].starts_with("HTTP/1.1 400"), "{statuses:?}");
    assert_eq!(statuses[6], "h2 settings: true");
    // hapx's own: streams, connections and bytes counted where they were made.
    let frontend: Vec<u64> = rows[0]
        .split(": ")
        .nth(1)
        .expect("values")
        .split(',')
        .map(|v| v.parse().expect("a number"))
        .collect();
    assert!(frontend[2] > 0 && frontend[3] > 0 && frontend[4] > 0 && frontend[5] > 0);
    assert_eq!(typed.len(), 4 * 8, "{typed:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
