//! The protocol checks HAProxy 2.6 runs as fixed tcp-check rulesets (`option redis-check`,
//! `option smtpchk`, `option pgsql-check user NAME`, `option mysql-check [user NAME
//! [pre-41]]`, `option ldap-check`), side by side with HAProxy: against
//! small fake servers speaking the protocol (well or badly) or another one, each server's
//! state, check status, code and information must be HAProxy's.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{blank_check_duration, free_port, settled_check_rows, temp_dir};
use hapx_tests::proxy_rules::{Syslog, TIMEOUTS, check_alike, side_by_side};

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

/// A MySQL initial handshake (protocol 10, server version `5.7.99-fake`), sequence 0.
const MYSQL_HANDSHAKE: &[u8] = b"\x4f\x00\x00\x00\x0a5.7.99-fake\x00\x01\x00\x00\x00abcdefgh\x00\xff\xf7\x21\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ijklmnopqrst\x00mysql_native_password\x00";
/// The OK packet answering a login (sequence 2).
const MYSQL_OK: &[u8] = b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00";

#[test]
fn mysql_check_reads_the_handshake() {
    const GREETS: &[Act] = &[Say(MYSQL_HANDSHAKE)];
    const BLOCKED: &[Act] = &[Say(
        b"\x34\x00\x00\x00\xff\x6a\x04Host is blocked because of many connection errors",
    )];
    const CUT: &[Act] = &[Say(b"\x4a\x00\x00\x00\x0a5.7")];
    run(
        "mysql_check_reads_the_handshake",
        &[
            ("greets", "option mysql-check", GREETS),
            ("blocked", "option mysql-check", BLOCKED),
            ("cut", "option mysql-check", CUT),
            ("http", "option mysql-check", HTTP),
        ],
        &[
            ["UP", "L7OK"],
            ["DOWN", "L7STS"],
            ["DOWN", "L7RSP"],
            ["DOWN", "L7RSP"],
        ],
    );
}

#[test]
fn mysql_check_logs_in() {
    const LOGGED_IN: &[Act] = &[Say(MYSQL_HANDSHAKE), Hear, Say(MYSQL_OK)];
    const DENIED: &[Act] = &[
        Say(MYSQL_HANDSHAKE),
        Hear,
        Say(b"\x24\x00\x00\x02\xff\x15\x04#28000Access denied for user 'hc'"),
    ];
    const SILENT: &[Act] = &[Say(MYSQL_HANDSHAKE), Hear];
    run(
        "mysql_check_logs_in",
        &[
            ("logged_in", "option mysql-check user hc", LOGGED_IN),
            ("pre_41", "option mysql-check user hc pre-41", LOGGED_IN),
            ("denied", "option mysql-check user hc post-41", DENIED),
            ("silent", "option mysql-check user hc", SILENT),
        ],
        &[
            ["UP", "L7OK"],
            ["UP", "L7OK"],
            ["DOWN", "L7STS"],
            ["DOWN", "L7RSP"],
        ],
    );
}

#[test]
fn ldap_check_binds() {
    const BOUND: &[Act] = &[
        Hear,
        Say(b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00"),
    ];
    // Active Directory's lengths on 4 bytes.
    const LONG_FORM: &[Act] = &[
        Hear,
        Say(b"\x30\x84\x00\x00\x00\x10\x02\x01\x01\x61\x84\x00\x00\x00\x07\x0a\x01\x00\x04\x00\x04\x00"),
    ];
    const INVALID_CREDENTIALS: &[Act] = &[
        Hear,
        Say(b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x31\x04\x00\x04\x00"),
    ];
    const WRONG_ID: &[Act] = &[
        Hear,
        Say(b"\x30\x0c\x02\x01\x02\x64\x07\x0a\x01\x00\x04\x00\x04\x00"),
    ];
    const TRUNCATED: &[Act] = &[Hear, Say(b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00")];
    run(
        "ldap_check_binds",
        &[
            ("bound", "option ldap-check", BOUND),
            ("long_form", "option ldap-check", LONG_FORM),
            (
                "invalid_credentials",
                "option ldap-check",
                INVALID_CREDENTIALS,
            ),
            ("wrong_id", "option ldap-check", WRONG_ID),
            ("truncated", "option ldap-check", TRUNCATED),
            ("http", "option ldap-check", HTTP),
        ],
        &[
            ["UP", "L7OK"],
            ["UP", "L7OK"],
            ["DOWN", "L7STS"],
            ["DOWN", "L7RSP"],
            ["DOWN", "L7RSP"],
            ["DOWN", "L7RSP"],
        ],
    );
}

/// The arguments of `option mysql-check` and `option ldap-check` are refused with
/// HAProxy's words.
#[test]
fn mysql_and_ldap_check_arguments_are_read_as_haproxy_reads_them() {
    let test = "mysql_and_ldap_check_arguments_are_read_as_haproxy_reads_them";
    let cases = [
        ("mysql-check user hc post-41", 0, None),
        (
            "mysql-check foo",
            1,
            Some("'option mysql-check' only supports optional values: 'user' (got 'foo')."),
        ),
        (
            "mysql-check user",
            1,
            Some("'option mysql-check user' expects <username> as argument."),
        ),
        (
            "mysql-check user hc 41",
            1,
            Some("keyword 'user' only supports 'post-41' and 'pre-41' (got '41')."),
        ),
        (
            "ldap-check x",
            1,
            Some("'option ldap-check' cannot handle unexpected argument 'x'."),
        ),
    ];
    for (i, (option, code, message)) in cases.into_iter().enumerate() {
        let text = format!(
            "defaults\n  mode tcp\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
             backend b\n  option {option}\n  server s 127.0.0.1:1 check\n"
        );
        let (rc, messages) = check_alike(&format!("{test}-{i}"), &text);
        assert_eq!(rc, code, "{option}: {messages:?}");
        if let Some(message) = message {
            assert!(
                messages.iter().any(|m| m.ends_with(message)),
                "{option}: {messages:?}"
            );
        }
    }
}

/// A check an `expect custom` rule passed is logged with that rule's information (the
/// MySQL server's version, LDAP's "Success"), then shows none, as HAProxy's.
#[test]
fn custom_expect_passes_are_logged_with_their_information() {
    let test = "custom_expect_passes_are_logged_with_their_information";
    const GREETS: &[Act] = &[Say(MYSQL_HANDSHAKE)];
    const BOUND: &[Act] = &[
        Hear,
        Say(b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00"),
    ];
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let syslog = Syslog::bind();
    let port = free_port();
    let config = format!(
        "global\n  stats socket {sock} level admin\n  log {log} local0\n\
         defaults\n  mode tcp\n  log global\n  option log-health-checks\n{TIMEOUTS}  timeout check 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend mysql\n\
         backend mysql\n  option mysql-check\n  server s {mysql} check inter 300ms\n\
         backend ldap\n  option ldap-check\n  server s {ldap} check inter 300ms\n",
        sock = sock.display(),
        log = syslog.addr,
        mysql = fake(GREETS),
        ldap = fake(BOUND),
    );
    let servers = [("mysql", "s"), ("ldap", "s")];
    let expected = [["UP", "L7OK"], ["UP", "L7OK"]];
    let observe = |_| {
        let rows = settled_check_rows(&sock, &servers, &expected);
        let mut logged: Vec<String> = (syslog.lines(2).iter())
            .map(|l| blank_check_duration(l))
            .collect();
        logged.sort();
        (rows, logged)
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    assert_eq!(
        ours.1,
        [
            "Health check for server ldap/s succeeded, reason: Layer7 check passed, code: 0, \
             info: \"Success\", check duration: Nms, status: 3/3 UP.",
            "Health check for server mysql/s succeeded, reason: Layer7 check passed, code: 0, \
             info: \"5.7.99-fake\", check duration: Nms, status: 3/3 UP.",
        ]
    );
    for row in &ours.0 {
        assert_eq!(row[3], "", "no information kept: {row:?}");
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
