//! `tcp-request session` rules on a `bind ... ssl`, beside HAProxy 2.6: they run once the
//! handshake is over and before any stream, as on a plain bind (a `txn` variable they set
//! is not kept), and a session they reject is not counted as a frontend's session (`stot`),
//! while the connection is (`conn_tot`, and `scur` during its handshake). Also the implicit
//! proxy arguments of fetches (`nbsrv`, a table left unnamed, `srv_is_up(s)`), resolved
//! against the section they are written in: a named defaults section's are refused.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, Syslog, TIMEOUTS, check_alike, get, side_by_side};
use hapx_tests::proxy_tls::{ClientHello, TlsClient, site_certificate};
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One request through a TLS connection to `addr` asking for `sni`; whether it was
/// answered (a rejected session is reset without one).
fn answered(addr: SocketAddr, sni: &str) -> bool {
    let hello = ClientHello {
        sni: Some(sni),
        ..ClientHello::default()
    };
    let Ok(mut client) = TlsClient::connect(addr, &hello) else {
        return false;
    };
    (client.send_and_read(get("/", "").as_bytes())).is_ok_and(|answer| !answer.is_empty())
}

#[test]
fn session_rules_on_an_ssl_bind_run_before_the_stream() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("ssl-session-vars");
    let crt = dir.join("site.pem");
    site_certificate(&crt, &["foo.example"], false);
    let syslog = Syslog::bind();
    let (tls_port, plain_port) = (free_port(), free_port());
    let rules = "log global\n  log-format \"L txn=%[var(txn.t)] sess=%[var(sess.s)] sni=%[var(sess.n)]\"\n\
                 \x20 tcp-request session set-var(txn.t) str(T)\n\
                 \x20 tcp-request session set-var(sess.s) str(S)\n\
                 \x20 tcp-request session set-var(sess.n) ssl_fc_sni\n  default_backend b\n";
    let config = format!(
        "global\n  log {} local0\ndefaults\n  mode tcp\n{TIMEOUTS}\
         frontend t\n  bind 127.0.0.1:{tls_port} ssl crt {}\n  {rules}\
         frontend p\n  bind 127.0.0.1:{plain_port}\n  {rules}\
         backend b\n  server s1 {}\n",
        syslog.addr,
        crt.display(),
        server.addr
    );
    let front = SocketAddr::from((LO, tls_port));
    let traffic = |_: SocketAddr| -> Vec<String> {
        assert!(answered(front, "foo.example"), "no answer through TLS");
        let tls = syslog.lines(1);
        let mut plain = TcpStream::connect((LO, plain_port)).expect("connecting");
        std::io::Write::write_all(&mut plain, get("/", "").as_bytes()).expect("sending");
        plain
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a read timeout");
        let mut answer = [0u8; 64];
        assert!(std::io::Read::read(&mut plain, &mut answer).is_ok_and(|n| n > 0));
        drop(plain);
        tls.into_iter().chain(syslog.lines(1)).collect()
    };
    let (ours, theirs) = side_by_side("ssl-session-vars", &config, front, traffic);
    assert_eq!(
        ours,
        ["L txn=- sess=S sni=foo.example", "L txn=- sess=S sni=-",]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The frontend `f` counters these tests compare, from `show stat` on `sock`.
fn counters(sock: &Path) -> String {
    let csv = cli(sock, "show stat");
    let row = stat_row(&csv, "f", "FRONTEND").expect("the frontend's row");
    ["scur", "stot", "dses", "conn_tot"]
        .map(|c| format!("{c}={}", row[c]))
        .join(" ")
}

#[test]
fn a_session_its_rules_reject_on_an_ssl_bind_is_not_counted() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("ssl-session-counts");
    let crt = dir.join("site.pem");
    site_certificate(&crt, &["ok.example", "rej.example"], false);
    let sock = dir.join("stats.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{port} ssl crt {}\n\
         \x20 tcp-request session reject if {{ ssl_fc_sni rej.example }}\n  default_backend b\n\
         backend b\n  server s1 {}\n",
        sock.display(),
        crt.display(),
        server.addr
    );
    let front = SocketAddr::from((LO, port));
    let traffic = |_: SocketAddr| -> Vec<String> {
        let mut seen = Vec::new();
        // A connection in its handshake is open, not yet a session.
        let idle = TcpStream::connect(front).expect("connecting");
        let open = || counters(&sock).starts_with("scur=1 ");
        assert!(
            eventually(Duration::from_secs(5), open),
            "{}",
            counters(&sock)
        );
        seen.push(counters(&sock));
        drop(idle);
        for sni in ["rej.example", "rej.example", "ok.example"] {
            seen.push(format!("{sni}: {}", answered(front, sni)));
        }
        let closed = || counters(&sock).starts_with("scur=0 ");
        assert!(
            eventually(Duration::from_secs(5), closed),
            "{}",
            counters(&sock)
        );
        seen.push(counters(&sock));
        seen
    };
    let (ours, theirs) = side_by_side("ssl-session-counts", &config, front, traffic);
    assert_eq!(
        ours,
        [
            "scur=1 stot=0 dses=0 conn_tot=1",
            "rej.example: false",
            "rej.example: false",
            "ok.example: true",
            "scur=0 stot=1 dses=2 conn_tot=4",
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A named defaults section `d` with `rule`, a frontend from it, then a backend from a
/// last defaults section of its own.
fn defaults_with(rule: &str) -> String {
    format!(
        "defaults d\n  mode http\n{TIMEOUTS}  {rule}\n\
         frontend f from d\n  bind 127.0.0.1:1\n  default_backend b\n\
         defaults e\n  mode http\n{TIMEOUTS}backend b\n  server s 127.0.0.1:1\n"
    )
}

#[test]
fn implicit_proxy_arguments_of_defaults_rules_are_refused_as_haproxy() {
    let cases = [
        (
            "http-request deny if { nbsrv lt 1 }",
            "proxy 'd', referenced in arg 1 of ACL keyword 'nbsrv' in proxy 'd', has not backend capability.",
        ),
        (
            "http-request set-var(txn.x) nbsrv",
            "proxy 'd', referenced in arg 1 of sample fetch keyword 'nbsrv' in http-request expression in proxy 'd', has not backend capability.",
        ),
        (
            "http-request deny if { src_conn_cur gt 1 }",
            "table name must be set in arg 1 of ACL keyword 'src_conn_cur' in proxy 'd'.",
        ),
        (
            "http-request deny if { srv_is_up(s) }",
            "backend name must be set in arg 1 of ACL keyword 'srv_is_up' in proxy 'd'.",
        ),
        (
            "http-request deny if { src_conn_cur(d) gt 1 }",
            "unable to find table 'd' referenced in arg 1 of ACL keyword 'src_conn_cur' in proxy 'd'.",
        ),
    ];
    for (i, (rule, message)) in cases.iter().enumerate() {
        let (code, messages) = check_alike(&format!("defaults-implicit-{i}"), &defaults_with(rule));
        assert_eq!(code, 1, "{rule}: {messages:?}");
        assert!(
            messages[0].ends_with(&format!("/case.cfg:6]: {message}")),
            "{rule}: {messages:?}"
        );
    }
    // Named, or in a backend: valid.
    let (code, messages) = check_alike(
        "defaults-implicit-named",
        &defaults_with("http-request deny if { nbsrv(b) lt 1 } || { srv_is_up(b/s) }"),
    );
    assert_eq!(code, 0, "{messages:?}");
    // The section's arguments are resolved together (in their lines' order) before the
    // first proxy that runs its rules, after the proxies ahead of it.
    let (code, messages) = check_alike(
        "defaults-implicit-order",
        &format!(
            "defaults d\n  mode http\n{TIMEOUTS}  http-request deny if {{ src_conn_cur gt 1 }}\n\
             \x20 http-request deny if {{ nbsrv lt 1 }}\n\
             defaults e\n  mode http\n{TIMEOUTS}\
             frontend x\n  bind 127.0.0.1:1\n  http-request deny if {{ nbsrv(nosuch) lt 1 }}\n\
             \x20 default_backend b\n\
             frontend f from d\n  bind 127.0.0.1:2\n  default_backend b\n\
             backend b\n  http-request deny if {{ nbsrv lt 1 }} || {{ srv_is_up(s) }}\n\
             \x20 server s 127.0.0.1:1\n"
        ),
    );
    assert_eq!(code, 1, "{messages:?}");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("backend 'nosuch'"), "{messages:?}");
    assert!(
        messages[1].contains("multiple argument resolution errors"),
        "{messages:?}"
    );
}

#[test]
fn implicit_proxy_arguments_in_a_frontend_are_refused_as_haproxy() {
    let cases = [
        (
            "http-request deny if { nbsrv lt 1 }",
            "proxy 'f', referenced in arg 1 of ACL keyword 'nbsrv' in proxy 'f', has not backend capability.",
        ),
        (
            "http-request deny if { srv_is_up(s) }",
            "unable to find server 's' in proxy 'f', referenced in arg 1 of ACL keyword 'srv_is_up' in proxy 'f'.",
        ),
    ];
    for (i, (rule, message)) in cases.iter().enumerate() {
        let config = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  {rule}\n\
             \x20 default_backend b\nbackend b\n  server s 127.0.0.1:1\n"
        );
        let (code, messages) = check_alike(&format!("frontend-implicit-{i}"), &config);
        assert_eq!(code, 1, "{rule}: {messages:?}");
        assert!(
            messages[0].ends_with(&format!("/case.cfg:8]: {message}")),
            "{rule}: {messages:?}"
        );
    }
}
