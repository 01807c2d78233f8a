//! Health checks through a real hapx-proxy: a backend that dies goes DOWN after `fall`
//! checks and gets no new connections; it comes back UP after `rise`; tcp-check and httpchk
//! judge by content (HTTP responses judged as HAProxy 2.6 judges them, side by side); servers
//! found by name through a DNS responder follow its answers.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use hapx_tests::proxy::{
    DnsResponder, HttpServer, NamedServer, Proxy, cli, free_port, stat_row, tally, temp_dir,
    wait_until,
};
use hapx_tests::proxy_rules::side_by_side;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn config(sock: &std::path::Path, port: u16, backend: &str, extra: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n{extra}defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n{backend}",
        sock.display()
    )
}

fn status(sock: &std::path::Path, server: &str) -> String {
    stat_row(&cli(sock, "show stat"), "be", server)
        .and_then(|r| r.get("status").cloned())
        .unwrap_or_default()
}

#[test]
fn server_goes_down_and_comes_back() {
    let dir = temp_dir("health");
    let sock = dir.join("admin.sock");
    let a = NamedServer::start("a", LO, Duration::from_secs(5));
    let b = NamedServer::start("b", LO, Duration::from_secs(5));
    let b_addr = b.addr;
    let port = free_port();
    let be = format!(
        "  server a {} check inter 100ms fall 2 rise 3\n  server b {} check inter 100ms fall 2 rise 3\n",
        a.addr, b.addr
    );
    let addr = SocketAddr::from((LO, port));
    let _p = Proxy::start(&dir, "health", &config(&sock, port, &be, ""), addr);
    assert!(wait_until(Duration::from_secs(5), || status(&sock, "b") == "UP"));
    assert_eq!(tally(addr, 4).len(), 2);
    drop(b);
    assert!(
        wait_until(Duration::from_secs(5), || status(&sock, "b") == "DOWN"),
        "{}",
        status(&sock, "b")
    );
    let row = stat_row(&cli(&sock, "show stat"), "be", "b").unwrap();
    assert_eq!(row["check_status"], "L4CON");
    assert_eq!(row["chkdown"], "1");
    // DOWN: every new connection goes to a.
    assert_eq!(tally(addr, 10).get("a"), Some(&10));
    // Back on the same port: "DOWN 1/3", "DOWN 2/3", then UP.
    let back = NamedServer::start_on("b", b_addr, Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(5), || status(&sock, "b") == "UP"));
    assert!(wait_until(Duration::from_secs(2), || tally(addr, 4)
        .get("b")
        == Some(&2)));
    drop(back);
}

/// A server that answers `banner` to every connection, then closes.
fn banner_server(banner: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let mut buf = [0u8; 64];
            let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
            let _ = c.read(&mut buf);
            let _ = c.write_all(banner.as_bytes());
        }
    });
    addr
}

#[test]
fn tcp_check_expects_content() {
    let dir = temp_dir("tcpcheck");
    let sock = dir.join("admin.sock");
    let good = banner_server("+PONG\r\n");
    let bad = banner_server("-ERR\r\n");
    let port = free_port();
    let be = format!(
        "  option tcp-check\n  tcp-check connect\n  tcp-check send PING\\r\\n\n  tcp-check expect string +PONG\n\
         server good {good} check inter 100ms fall 1 rise 1\n  server bad {bad} check inter 100ms fall 1 rise 1\n"
    );
    let _p = Proxy::start(
        &dir,
        "tcpcheck",
        &config(&sock, port, &be, ""),
        SocketAddr::from((LO, port)),
    );
    assert!(wait_until(Duration::from_secs(5), || status(&sock, "bad")
        == "DOWN"
        && status(&sock, "good") == "UP"));
    let row = stat_row(&cli(&sock, "show stat"), "be", "bad").unwrap();
    assert_eq!(row["check_status"], "L7RSP", "{row:?}");
    assert_eq!(
        stat_row(&cli(&sock, "show stat"), "be", "good").unwrap()["check_status"],
        "L7OK"
    );
}

#[test]
fn httpchk_judges_the_status() {
    let dir = temp_dir("httpchk");
    let sock = dir.join("admin.sock");
    let ok = HttpServer::start("ok");
    let wrong = banner_server("HTTP/1.0 500 Oops\r\n\r\n");
    let port = free_port();
    let be = format!(
        "  option httpchk GET /health\n  http-check expect status 200\n  server ok {} check inter 100ms fall 1 rise 1\n  server wrong {wrong} check inter 100ms fall 1 rise 1\n",
        ok.addr
    );
    let _p = Proxy::start(
        &dir,
        "httpchk",
        &config(&sock, port, &be, ""),
        SocketAddr::from((LO, port)),
    );
    assert!(wait_until(Duration::from_secs(5), || status(
        &sock, "wrong"
    ) == "DOWN"
        && status(&sock, "ok") == "UP"));
    let row = stat_row(&cli(&sock, "show stat"), "be", "wrong").unwrap();
    assert_eq!(
        (row["check_status"].as_str(), row["check_code"].as_str()),
        ("L7STS", "500")
    );
    assert!(ok.requests.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

#[test]
fn servers_follow_the_resolvers() {
    let dir = temp_dir("dns");
    let sock = dir.join("admin.sock");
    let dns = DnsResponder::start();
    // Two servers on different loopback addresses, same port: the name moves between them.
    let port_b = free_port();
    let one = NamedServer::start_on(
        "one",
        SocketAddr::from(([127, 0, 0, 1], port_b)),
        Duration::from_secs(5),
    );
    let two = NamedServer::start_on(
        "two",
        SocketAddr::from(([127, 0, 0, 2], port_b)),
        Duration::from_secs(5),
    );
    dns.set("kube-mast01", Some(Ipv4Addr::new(127, 0, 0, 1)));
    let port = free_port();
    let resolvers = format!(
        "resolvers dns\n  nameserver ns1 {}\n  resolve_retries 2\n  timeout retry 200ms\n  timeout resolve 100ms\n  hold nx 300ms\n  hold valid 1s\n",
        dns.addr
    );
    let be = format!(
        "  default-server init-addr last,libc,none\n  server kube-mast01 kube-mast01:{port_b} resolvers dns resolve-prefer ipv4 check inter 100ms\n"
    );
    let cfg = config(&sock, port, &be, "").replace("defaults\n", &format!("{resolvers}defaults\n"));
    let addr = SocketAddr::from((LO, port));
    let _p = Proxy::start(&dir, "dns", &cfg, addr);
    // Unresolvable by libc: no address until the resolvers answer.
    assert!(wait_until(Duration::from_secs(5), || tally(addr, 2)
        .get("one")
        == Some(&2)));
    dns.set("kube-mast01", Some(Ipv4Addr::new(127, 0, 0, 2)));
    assert!(wait_until(Duration::from_secs(5), || tally(addr, 2)
        .get("two")
        == Some(&2)));
    let row = stat_row(&cli(&sock, "show stat"), "be", "kube-mast01").unwrap();
    assert_eq!(row["addr"], format!("127.0.0.2:{port_b}"));
    // NXDOMAIN past `hold nx`: the server loses its address and is in maintenance.
    dns.set("kube-mast01", None);
    assert!(wait_until(Duration::from_secs(5), || status(
        &sock,
        "kube-mast01"
    ) == "MAINT (resolution)"));
    assert!(dns.queries.load(std::sync::atomic::Ordering::SeqCst) > 2);
    drop((one, two));
}

/// A server that reads a check's request, writes each of `parts` with a pause between them
/// (a response arriving in pieces), then closes.
fn piecewise_server(parts: &'static [&'static str]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = c.read(&mut [0u8; 1024]);
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let _ = c.write_all(part.as_bytes());
                }
            });
        }
    });
    addr
}

/// HTTP check responses judged as HAProxy judges them: a head written in pieces is judged
/// whole (an expected header in its second piece is found), and a status line alone, a head
/// cut by the close or a malformed header line is an invalid response (L7RSP), whatever the
/// status says. Each case is its own backend; every server's row in `show stat` (state,
/// check status, code, detail) must be HAProxy's.
#[test]
fn http_check_responses_are_judged_like_haproxy() {
    let test = "http_check_responses_are_judged_like_haproxy";
    // (response pieces, http-check expectation, hapx's state and check status)
    let cases: [(&'static [&'static str], &str, [&str; 2]); 6] = [
        (
            &["HTTP/1.1 200 OK\r\n", "x-ok: 1\r\n\r\n"],
            "http-check expect hdr name x-ok",
            ["UP", "L7OK"],
        ),
        (
            &["HTTP/1.1 200 OK\r\n", "content-length: 5\r\n\r\nhel", "lo"],
            "http-check expect string hello",
            ["UP", "L7OK"],
        ),
        (&["HTTP/1.1 200 OK\r\n"], "", ["DOWN", "L7RSP"]),
        (
            &["HTTP/1.1 200 OK\r\nx-ok: 1\r\n"],
            "http-check expect hdr name x-ok",
            ["DOWN", "L7RSP"],
        ),
        (
            &["HTTP/1.1 200 OK\r\nnot a header\r\n\r\n"],
            "",
            ["DOWN", "L7RSP"],
        ),
        (&["HTTP/1.0 503 Busy\r\n\r\n"], "", ["DOWN", "L7STS"]),
    ];
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let backends: String = cases
        .iter()
        .enumerate()
        .map(|(i, (parts, expect, _))| {
            format!(
                "backend b{i}\n  option httpchk\n  {expect}\n  server s {} check inter 200ms rise 1 fall 1\n",
                piecewise_server(parts)
            )
        })
        .collect();
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n  timeout client 5s\n\
         \x20 timeout server 5s\n  timeout connect 1s\n  timeout check 2s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b0\n{backends}",
        sock.display()
    );
    let rows = |_| {
        let read = || -> Vec<[String; 4]> {
            let csv = cli(&sock, "show stat");
            (0..cases.len())
                .map(|i| {
                    let r = stat_row(&csv, &format!("b{i}"), "s").unwrap_or_default();
                    // `* ` marks a check under way at that moment (in both): the status is
                    // the last one's.
                    ["status", "check_status", "check_code", "last_chk"].map(|k| {
                        let value = r.get(k).cloned().unwrap_or_default();
                        value
                            .strip_prefix("* ")
                            .map_or(value.clone(), str::to_string)
                    })
                })
                .collect()
        };
        // Settled: every server judged as hapx should judge it, or 5 s passed.
        wait_until(Duration::from_secs(5), || {
            read()
                .iter()
                .zip(&cases)
                .all(|(r, (_, _, want))| r[0] == want[0] && r[1] == want[1])
        });
        read()
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), rows);
    for (i, (row, (_, expect, want))) in ours.iter().zip(&cases).enumerate() {
        assert_eq!(
            [&row[0], &row[1]],
            want.map(String::from).each_ref(),
            "case {i} ({expect}): {row:?}"
        );
    }
    if let Some(theirs) = theirs {
        for (i, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                ours, theirs,
                "case {i} ({}): hapx-proxy, then HAProxy",
                cases[i].1
            );
        }
    }
}
