//! `ring NAME` and `log-forward NAME` sections, and `log ring@NAME` targets, beside HAProxy
//! 2.6: the sections are read with HAProxy's keywords and messages; a proxy logging to a ring
//! runs and serves. hapx keeps no ring buffer and forwards no syslog: each ring's server
//! lines (or its header, without servers) and each `log-forward` section get one warning
//! saying so.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::bins;
use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_messages, exchange, get, side_by_side,
};
use hapx_tests::require;

const RING: &str = "ring myring\n  description \"My local buffer\"\n  format rfc3164\n  maxlen 1200\n  size 32764\n\
                    \x20 timeout connect 5s\n  timeout server 10s\n  server mysyslogsrv 127.0.0.1:6514 log-proto octet-count\n";
const LOG_FORWARD: &str = "log-forward sylog-loadb\n  dgram-bind 127.0.0.1:1514\n  bind 127.0.0.1:1514\n  maxconn 10\n\
                           \x20 timeout client 10s\n  log 127.0.0.1:10001 local0\n  log global\n";

#[test]
fn ring_and_log_forward_lines_are_judged_as_haproxy_does() {
    let test = "ring_and_log_forward_lines_are_judged_as_haproxy_does";
    let cases = [
        // Every ring keyword's error, a second ring of a name, a ring without one, and a
        // log-forward section without a name (where HAProxy stops reading).
        "ring r\n  foo\n  size abc\n  format bogus\n  maxlen 0\n  server\n  timeout client 1s\n\
         ring r\nring\nlog-forward\nlog-forward lf\n  foo\n",
        // A missing timeout, a missing description, a maximum length above the size (a
        // warning); a log-forward keyword HAProxy does not know.
        "ring r\n  timeout connect\n  description\n  maxlen 100000\nlog-forward lf\n  foo\n  maxconn 10\n",
    ];
    let dir = temp_dir(test);
    let with_haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (case, text) in cases.iter().enumerate() {
        let file = dir.join(format!("case{case}.cfg"));
        std::fs::write(&file, text).expect("writing");
        let (code, ours) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_ne!(code, 0, "{ours:?}");
        // hapx's own warning for the log-forward section aside, HAProxy's messages.
        let ours: Vec<String> = (ours.into_iter())
            .filter(|m| !m.contains("not implemented by hapx"))
            .collect();
        if with_haproxy {
            let theirs = check_messages(Path::new(HAPROXY), &file);
            assert_eq!((code, ours), theirs, "hapx-proxy, then HAProxy");
        }
    }
}

#[test]
fn a_ring_and_a_log_forward_section_are_read_and_warned_about_once() {
    let test = "a_ring_and_a_log_forward_section_are_read_and_warned_about_once";
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    let text = format!(
        "{RING}ring quiet\ndefaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n\
         \x20 log ring@myring local0\n  log ring@quiet local0 info\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:2\n{LOG_FORWARD}"
    );
    std::fs::write(&file, text).expect("writing");
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(check_messages(Path::new(HAPROXY), &file), (0, vec![]));
    }
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:?}");
    let at = |line: usize| format!("WARNING: parsing [{}:{line}] : ", file.display());
    assert_eq!(
        messages,
        [
            at(8)
                + "ring 'myring' : sending events to server 'mysyslogsrv' is not implemented by hapx; lines logged to this ring are dropped.",
            at(22)
                + "'log-forward' sections are not implemented by hapx; section 'sylog-loadb' is ignored: nothing listens on its binds and no syslog line is forwarded.",
            at(9)
                + "ring 'quiet' : its buffer ('show events') is not implemented by hapx; lines logged to this ring are dropped.",
        ]
    );
}

#[test]
fn a_log_to_an_unknown_ring_is_refused() {
    let test = "a_log_to_an_unknown_ring_is_refused";
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    let text = format!(
        "{RING}defaults\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  log ring@nosuch local0\n\
         \x20 default_backend b\nbackend b\n  server s 127.0.0.1:2\n"
    );
    std::fs::write(&file, text).expect("writing");
    // HAProxy says so when it starts (its `-c` passes); hapx at once.
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_ne!(code, 0, "{messages:?}");
    assert!(
        messages.contains(&format!(
            "ALERT: log server declared in proxy section 'f' in file '{}' at line 15 uses unknown ring named 'nosuch'.",
            file.display()
        )),
        "{messages:?}"
    );
}

#[test]
fn a_proxy_logging_to_a_ring_serves_its_requests() {
    let test = "a_proxy_logging_to_a_ring_serves_its_requests";
    let server = EchoServer::start("s1");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "{RING}defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind {front}\n  log ring@myring local0\n\
         \x20 option httplog\n  default_backend b\nbackend b\n  server s1 {}\n{LOG_FORWARD}",
        server.addr
    );
    let answered = |front: SocketAddr| {
        exchange(front, &[get("/", "")])
            .into_iter()
            .map(|r| r.map(|r| r.server().to_string()))
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = side_by_side(test, &config, front, answered);
    assert_eq!(ours, [Some("s1".to_string())]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
