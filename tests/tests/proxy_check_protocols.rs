//! The protocol checks HAProxy 2.6 runs as fixed tcp-check rulesets (`option redis-check`,
//! `option smtpchk`, `option pgsql-check user NAME`), side by side with HAProxy: against
//! small fake servers speaking the protocol (well or badly) or another one, each server's
//! state, check status, code and information must be HAProxy's.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{free_port, settled_check_rows, temp_dir};
use hapx_tests::proxy_rules::side_by_side;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What a fake server does on each connection, in order.
#[derive(Clone, Copy)]
enum Act {
    /// Writes these bytes.
    Say(&'static [u8]),
    /// Waits for the check to write something (300 ms at most).
    Hear,
}

use Act::{Hear, Say};

/// A server playing `acts` on every connection, then closing it.
fn fake(acts: &'static [Act]) -> SocketAddr {
    let listener = TcpListener::bind((LO, 0)).expect("binding a fake server");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || play(conn, acts));
        }
    });
    addr
}

fn play(mut conn: TcpStream, acts: &[Act]) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
    let mut chunk = [0u8; 1024];
    for act in acts {
        let ok = match act {
            Say(bytes) => conn.write_all(bytes).is_ok(),
            Hear => matches!(conn.read(&mut chunk), Ok(1..)),
        };
        if !ok {
            return;
        }
    }
}

const HTTP: &[Act] = &[Hear, Say(b"HTTP/1.0 200 OK\r\n\r\n")];

/// Runs `backends` (name, option line, server acts) on both proxies; hapx's rows must show
/// `expected` (state, check status) and be HAProxy's, whole.
fn run(test: &str, backends: &[(&str, &str, &'static [Act])], expected: &[[&str; 2]]) {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let sections: String = (backends.iter())
        .map(|(name, option, acts)| {
            format!(
                "backend {name}\n  {option}\n  server s {} check inter 300ms rise 1 fall 1\n",
                fake(acts)
            )
        })
        .collect();
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n\
         \x20 timeout connect 1s\n  timeout check 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend {first}\n{sections}",
        sock = sock.display(),
        first = backends[0].0,
    );
    let servers: Vec<(&str, &str)> = backends.iter().map(|(b, ..)| (*b, "s")).collect();
    let observe = |_| settled_check_rows(&sock, &servers, expected);
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for ((row, want), (b, ..)) in ours.iter().zip(expected).zip(backends) {
        assert_eq!([&row[0], &row[1]], [&want[0], &want[1]], "{b}: {row:?}");
    }
    if let Some(theirs) = theirs {
        for ((o, t), (b, ..)) in ours.iter().zip(&theirs).zip(backends) {
            assert_eq!(o, t, "{b}: hapx-proxy, then HAProxy");
        }
    }
}

#[test]
fn redis_check_pings() {
    const PONG: &[Act] = &[Hear, Say(b"+PONG\r\n")];
    const LOADING: &[Act] = &[Hear, Say(b"-LOADING Redis is loading the dataset\r\n")];
    run(
        "redis_check_pings",
        &[
            ("pong", "option redis-check", PONG),
            ("loading", "option redis-check", LOADING),
            ("http", "option redis-check", HTTP),
        ],
        &[["UP", "L7OK"], ["DOWN", "L7STS"], ["DOWN", "L7STS"]],
    );
}

#[test]
fn smtpchk_greets_and_quits() {
    const OK: &[Act] = &[
        Say(b"220 mx ESMTP\r\n"),
        Hear,
        Say(b"250-mx\r\n250 OK\r\n"),
        Hear,
        Say(b"221 2.0.0 bye\r\n"),
        Hear,
    ];
    const BUSY: &[Act] = &[Say(b"421 4.3.2 too busy\r\n"), Hear];
    const REFUSED: &[Act] = &[
        Say(b"220 mx ESMTP\r\n"),
        Hear,
        Say(b"554 5.7.1 go away\r\n"),
    ];
    const BAD_QUIT: &[Act] = &[
        Say(b"220 mx ESMTP\r\n"),
        Hear,
        Say(b"250 mx hello\r\n"),
        Hear,
        Say(b"500 5.5.1 no\r\n"),
        Hear,
    ];
    run(
        "smtpchk_greets_and_quits",
        &[
            ("ok", "option smtpchk EHLO hc.example", OK),
            ("busy", "option smtpchk", BUSY),
            ("refused", "option smtpchk HELO hc.example", REFUSED),
            ("bad_quit", "option smtpchk", BAD_QUIT),
        ],
        &[
            ["UP", "L7OK"],
            ["DOWN", "L7STS"],
            ["DOWN", "L7STS"],
            ["DOWN", "L7STS"],
        ],
    );
}

#[test]
fn pgsql_check_starts_up() {
    const TRUST: &[Act] = &[Hear, Say(b"R\x00\x00\x00\x08\x00\x00\x00\x00")];
    const MD5: &[Act] = &[Hear, Say(b"R\x00\x00\x00\x0c\x00\x00\x00\x05salt")];
    const REFUSED: &[Act] = &[
        Hear,
        Say(b"E\x00\x00\x00\x30SFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry\x00\x00"),
    ];
    run(
        "pgsql_check_starts_up",
        &[
            ("trust", "option pgsql-check user hc", TRUST),
            ("md5", "option pgsql-check user hc", MD5),
            ("refused", "option pgsql-check user hc", REFUSED),
            ("http", "option pgsql-check user hc", HTTP),
        ],
        &[
            ["UP", "L7OK"],
            ["UP", "L7OK"],
            ["DOWN", "L7RSP"],
            ["DOWN", "L7STS"],
        ],
    );
}
