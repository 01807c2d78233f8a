//! Rules in named `defaults` sections, beside HAProxy 2.6: a proxy that starts from such a
//! section (`frontend f from d`, or implicitly as the last defaults) runs the section's
//! `tcp-request`, `http-request`, `http-response`, `http-after-response` and
//! `tcp-response content` rules before its own, with the section's ACLs (which it does not
//! see itself). HAProxy limits who may start from such a section and stops reading at a
//! breach; it also stops at an `http-*` rule it cannot parse. `maxconn` in a backend is
//! warned about. `tcp-request session` rules on an `ssl` bind run after the handshake, with
//! the `ssl_fc_*` fetches.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, Response, TIMEOUTS, check_alike, exchange, get, side_by_side,
};
use hapx_tests::proxy_tls::{ClientHello, TlsClient, site_certificate};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A named defaults section `d` in HTTP mode with rules of each HTTP kind, the ACL `dpath`
/// its deny uses, then `rest`.
fn with_http_defaults(rest: &str) -> String {
    format!(
        "defaults d\n  mode http\n{TIMEOUTS}  acl dpath path_beg /d/\n\
         \x20 http-request set-header x-seq d\n  http-request deny deny_status 403 if dpath\n\
         \x20 http-request allow if {{ path /allow }}\n\
         \x20 http-response set-header x-resp %[res.hdr(x-resp)]d\n  http-after-response set-header x-after d\n{rest}"
    )
}

/// The status and the headers the rules wrote (`-` for a missing one), and what the server
/// got in `x-seq` and `x-be`; `<none>` without a response.
fn seen(r: &Option<Response>) -> String {
    let Some(r) = r else {
        return "<none>".into();
    };
    let h = |n: &str| r.header(n).unwrap_or("-").to_string();
    let f = |n: &str| r.forwarded(n).unwrap_or("-").to_string();
    format!(
        "{} resp={} after={} seq={} be={}",
        r.status,
        h("x-resp"),
        h("x-after"),
        f("x-seq"),
        f("x-be")
    )
}

#[test]
fn defaults_rules_run_before_the_proxys_own_with_the_sections_acls() {
    let server = EchoServer::start("s1");
    let front = SocketAddr::from((LO, free_port()));
    // The frontend's own `dpath` is another ACL than the section's; the backend starts from
    // a second named section whose rules are a backend's.
    let config = with_http_defaults(&format!(
        "frontend f from d\n  bind {front}\n  acl dpath path_beg /own/\n\
         \x20 http-request set-header x-seq %[req.hdr(x-seq)]f\n\
         \x20 http-request deny deny_status 404 if dpath\n  http-request deny deny_status 405 if {{ path /allow }}\n\
         \x20 http-response set-header x-resp %[res.hdr(x-resp)]f\n\
         \x20 http-after-response set-header x-after %[res.hdr(x-after)]f\n  default_backend b\n\
         defaults e\n  mode http\n{TIMEOUTS}  http-request set-header x-be e\n\
         \x20 http-response set-header x-resp %[res.hdr(x-resp)]e\n\
         backend b from e\n  http-request set-header x-be %[req.hdr(x-be)]b\n  server s1 {}\n",
        server.addr
    ));
    let paths = ["/plain", "/d/x", "/own/x", "/allow"];
    let traffic = |addr: SocketAddr| -> Vec<String> {
        paths
            .iter()
            .map(|p| seen(&exchange(addr, &[get(p, "")]).swap_remove(0)))
            .collect()
    };
    let (ours, theirs) = side_by_side("defaults-rules-http", &config, front, traffic);
    assert_eq!(
        ours,
        [
            // The backend's section, the backend, then the frontend's section and itself.
            "200 resp=edf after=df seq=df be=eb",
            "403 resp=- after=df seq=- be=-",
            "404 resp=- after=df seq=- be=-",
            // The section's `allow` ends the frontend's request rules, its own included.
            "200 resp=edf after=df seq=d be=eb",
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Whether the proxy at `addr` answers a request with data, or closes without a byte.
fn answered(addr: SocketAddr) -> bool {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return false;
    };
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = std::io::Write::write_all(&mut conn, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut byte = [0u8; 1];
    matches!(conn.read(&mut byte), Ok(1))
}

#[test]
fn tcp_defaults_rules_decide_for_their_frontends() {
    let server = EchoServer::start("s1");
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let [p1, p2, p3, p4, q2, q3] = ports[..] else {
        unreachable!("six ports")
    };
    // The section rejects connections to p2 and q2, sessions to p3 and q3, content to p4.
    // HAProxy runs a section's connection (session) rules only in frontends with such
    // rules of their own: `f` has connection rules, `g` session rules.
    let config = format!(
        "defaults t\n  mode tcp\n{TIMEOUTS}\
         \x20 tcp-request connection reject if {{ dst_port {p2} }} || {{ dst_port {q2} }}\n\
         \x20 tcp-request session reject if {{ dst_port {p3} }} || {{ dst_port {q3} }}\n\
         \x20 tcp-request content reject if {{ dst_port {p4} }}\n\
         frontend f from t\n  bind 127.0.0.1:{p1}\n  bind 127.0.0.1:{p2}\n  bind 127.0.0.1:{p3}\n\
         \x20 bind 127.0.0.1:{p4}\n  tcp-request connection accept\n  default_backend b\n\
         frontend g from t\n  bind 127.0.0.1:{q2}\n  bind 127.0.0.1:{q3}\n\
         \x20 tcp-request session accept\n  default_backend b\n\
         defaults\n  mode tcp\n{TIMEOUTS}backend b\n  server s1 {}\n",
        server.addr
    );
    let traffic = |_: SocketAddr| -> Vec<bool> {
        ports
            .iter()
            .map(|p| answered(SocketAddr::from((LO, *p))))
            .collect()
    };
    let front = SocketAddr::from((LO, q3));
    let (ours, theirs) = side_by_side("defaults-rules-tcp", &config, front, traffic);
    assert_eq!(ours, [true, false, true, false, true, false]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A named section with one rule of `rule`, then `rest`.
fn with_rule(rule: &str, rest: &str) -> String {
    format!("defaults d\n  mode http\n{TIMEOUTS}  {rule}\n{rest}")
}

const BACKEND: &str = "backend b from d\n  server s 127.0.0.1:1\n";

#[test]
fn defaults_with_rules_are_checked_as_haproxy() {
    // Every kind of rule, and the placement warnings within the section.
    let all = with_rule(
        "acl bad path /bad\n  http-request deny if bad\n  http-response set-header x 1\n\
         \x20 http-after-response set-header y 1\n  tcp-request session accept\n\
         \x20 tcp-request connection accept\n  tcp-request content accept",
        "frontend f from d\n  bind 127.0.0.1:1\n  default_backend b\n\
         defaults\n  mode http\nbackend b\n  server s 127.0.0.1:1\n  timeout server 1s\n  timeout connect 1s\n",
    );
    let (code, messages) = check_alike("defaults-rules-all", &all);
    assert_eq!(code, 0, "{messages:?}");
    assert_eq!(messages.len(), 3, "{messages:?}");
    // The section's ACL is its own.
    let (code, messages) = check_alike(
        "defaults-rules-acl",
        &with_rule(
            "acl bad path /bad\n  http-request deny if bad",
            "frontend f from d\n  bind 127.0.0.1:1\n  http-request deny if bad\n",
        ),
    );
    assert_eq!(code, 1);
    assert!(messages[0].contains("no such ACL : 'bad'"), "{messages:?}");
    // `tcp-response content` for backends.
    let (code, _) = check_alike(
        "defaults-rules-tcp-response",
        &with_rule("mode tcp\n  tcp-response content accept", BACKEND),
    );
    // No listener: valid, but nothing to start.
    assert_eq!(code, 2);
}

#[test]
fn who_may_start_from_defaults_with_rules_is_limited_as_haproxy() {
    let frontend = "frontend f from d\n  bind 127.0.0.1:1\n  default_backend b\n";
    // Each breach stops the reading: the unknown keyword after it is never seen.
    let after = "unknown-keyword here\n";
    let cases = [
        (
            "http-request deny",
            format!("{frontend}{BACKEND}{after}"),
            "frontends and backends cannot inherit",
        ),
        (
            "http-request deny",
            format!("listen l from d\n  bind 127.0.0.1:1\n{after}"),
            "a listen section cannot inherit",
        ),
        (
            "http-request deny",
            format!("defaults e from d\n{after}"),
            "a defaults section cannot inherit",
        ),
        (
            "tcp-request session accept",
            format!("{BACKEND}{after}"),
            "a backend section cannot inherit from a defaults section defining 'tcp-request connection' or 'tcp-request session' rules",
        ),
        (
            "mode tcp\n  tcp-response content accept",
            format!("{frontend}{after}"),
            "a frontend section cannot inherit from a defaults section defining 'tcp-response content' rules",
        ),
        // Used implicitly (the last defaults section) by both sides.
        (
            "http-response set-header x 1",
            format!(
                "frontend f\n  bind 127.0.0.1:1\n  default_backend b\nbackend b\n  server s 127.0.0.1:1\n{after}"
            ),
            "frontends and backends cannot inherit",
        ),
    ];
    for (i, (rule, rest, expected)) in cases.iter().enumerate() {
        let (code, messages) =
            check_alike(&format!("defaults-rules-use-{i}"), &with_rule(rule, rest));
        assert_eq!(code, 1, "{rule}: {messages:?}");
        assert_eq!(messages.len(), 1, "{rule}: {messages:?}");
        assert!(messages[0].contains(expected), "{rule}: {messages:?}");
    }
    // A section without rules, or a new defaults section, may serve both sides.
    let (code, messages) = check_alike(
        "defaults-rules-use-reset",
        &with_rule(
            "http-request deny",
            "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend f\n  bind 127.0.0.1:1\n  default_backend b\nbackend b\n  server s 127.0.0.1:1\n",
        ),
    );
    assert_eq!((code, messages.len()), (0, 0), "{messages:?}");
}

#[test]
fn keywords_refused_in_defaults_are_worded_as_haproxy() {
    // HAProxy reads the word after `tcp-request`/`tcp-response` first.
    let anonymous = "defaults\n  tcp-request content accept\n  tcp-request connection accept\n\
                     \x20 tcp-request inspect-delay 1s\n  tcp-response content accept\n  http-request deny\n\
                     \x20 tcp-request foo\n  tcp-request\n  tcp-response foo\n  redirect location /x\n";
    let (code, messages) = check_alike("defaults-rules-anonymous", anonymous);
    assert_eq!((code, messages.len()), (1, 9), "{messages:?}");
    let named = "defaults d\n  tcp-request foo\n  tcp-request\n  tcp-response foo\n  redirect location /x\n\
                 frontend f from d\n  tcp-request foo\n  tcp-request\nbackend b from d\n  tcp-response\n";
    let (code, messages) = check_alike("defaults-rules-named-words", named);
    assert_eq!((code, messages.len()), (1, 7), "{messages:?}");
}

#[test]
fn an_http_rule_haproxy_cannot_parse_stops_the_reading() {
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
         \x20 http-after-response set-header x 1\n  http-after-response frobnicate x\n\
         \x20 http-after-response bogus\n  unknown-keyword\n  default_backend b\n"
    );
    let (code, messages) = check_alike("defaults-rules-after-abort", &text);
    assert_eq!((code, messages.len()), (1, 1), "{messages:?}");
    assert!(messages[0].contains("but got 'frobnicate'"), "{messages:?}");
    let request = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
         \x20 http-request set-header x %[nosuchfetch]\n  unknown-keyword\n"
    );
    let (code, messages) = check_alike("defaults-rules-request-abort", &request);
    assert_eq!((code, messages.len()), (1, 1), "{messages:?}");
}

#[test]
fn maxconn_in_a_backend_is_warned_about() {
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  maxconn 10\n  default_backend b\n\
         backend b\n  maxconn 100\n  server s 127.0.0.1:1\n"
    );
    let (code, messages) = check_alike("defaults-rules-maxconn", &text);
    assert_eq!(code, 0);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("Maybe you want 'fullconn' instead ?"));
}

/// What a TLS client asking for `sni` got from `addr` for one request: the status line
/// and the `x-` headers, or `refused` (reset or closed without an answer).
fn tls_answer(addr: SocketAddr, sni: &str) -> String {
    let hello = ClientHello {
        sni: Some(sni),
        ..ClientHello::default()
    };
    let Ok(mut client) = TlsClient::connect(addr, &hello) else {
        return "handshake failed".into();
    };
    let answer = client
        .send_and_read(get("/", "").as_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&answer);
    let mut lines = text.lines();
    let Some(status) = lines.next().filter(|l| !l.is_empty()) else {
        return "refused".into();
    };
    let headers: Vec<&str> = lines.filter(|l| l.starts_with("x-")).collect();
    format!("{status} {}", headers.join(" "))
}

#[test]
fn tcp_request_session_rules_run_after_the_tls_handshake() {
    let server = EchoServer::start("s1");
    let dir = temp_dir("defaults-rules-tls");
    let crt = dir.join("site.pem");
    site_certificate(&crt, &["good.example", "bad.example"], false);
    let (http_port, tcp_port) = (free_port(), free_port());
    let reject = "tcp-request session reject if { ssl_fc_sni -m str bad.example }";
    // In both modes the rules see what the handshake negotiated.
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{http_port} ssl crt {crt}\n  {reject}\n\
         \x20 tcp-request session set-var(sess.proto) ssl_fc_protocol\n\
         \x20 tcp-request session set-var(sess.sni) ssl_fc_sni\n\
         \x20 http-after-response set-header x-proto %[var(sess.proto)]\n\
         \x20 http-after-response set-header x-sni %[var(sess.sni)]\n  default_backend b\n\
         frontend t\n  mode tcp\n  bind 127.0.0.1:{tcp_port} ssl crt {crt}\n  {reject}\n\
         \x20 default_backend bt\n\
         backend b\n  server s1 {server}\n\
         backend bt\n  mode tcp\n  server s1 {server}\n",
        crt = crt.display(),
        server = server.addr
    );
    let front = SocketAddr::from((LO, tcp_port));
    let traffic = |_: SocketAddr| -> Vec<String> {
        let mut seen = Vec::new();
        for port in [http_port, tcp_port] {
            for sni in ["good.example", "bad.example"] {
                seen.push(tls_answer(SocketAddr::from((LO, port)), sni));
            }
        }
        seen
    };
    let (ours, theirs) = side_by_side("defaults-rules-tls", &config, front, traffic);
    assert_eq!(
        ours,
        [
            "HTTP/1.1 200 OK x-proto: TLSv1.3 x-sni: good.example",
            "refused",
            "HTTP/1.1 200 OK ",
            "refused",
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

#[test]
fn a_backend_runs_the_tcp_response_rules_of_its_section() {
    let server = EchoServer::start("s1");
    let (p1, p2) = (free_port(), free_port());
    // `b` has no rule of its own, `b2` one that never applies: both run the section's.
    let config = format!(
        "defaults d\n  mode tcp\n{TIMEOUTS}  tcp-response content reject\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{p1}\n  default_backend b\n\
         frontend f2\n  bind 127.0.0.1:{p2}\n  default_backend b2\n\
         backend b from d\n  server s1 {server}\n\
         backend b2 from d\n  tcp-response content accept if FALSE\n  server s1 {server}\n",
        server = server.addr
    );
    let traffic = |_: SocketAddr| -> Vec<bool> {
        [p1, p2]
            .iter()
            .map(|p| answered(SocketAddr::from((LO, *p))))
            .collect()
    };
    let front = SocketAddr::from((LO, p2));
    let (ours, theirs) = side_by_side("defaults-rules-tcp-response", &config, front, traffic);
    assert_eq!(ours, [false, false]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
