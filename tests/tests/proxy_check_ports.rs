//! `-c` verdicts on health checks that have nothing to connect to, side by side with
//! HAProxy 2.6: a checked server without a port (none, or 0) and no check `port` is refused
//! once the configuration is read (HAProxy's `init_srv_check`), in one of three words: a
//! plain check; a protocol check or a tcp-check ruleset not starting with a `connect` that
//! has a port; a later `connect` without one. A plain check is worded as the first once a
//! backend before it had no check option either (they share HAProxy's default ruleset,
//! which that one left with an implicit connect).

use std::path::Path;

use hapx_tests::bins;
use hapx_tests::proxy::temp_dir;
use hapx_tests::proxy_rules::{HAPROXY, check_messages};

/// `-c` on `sections` (after a TCP defaults section and a frontend): hapx's verdict, and
/// HAProxy's when it is installed, which must be the same.
fn verdict(test: &str, sections: &str) -> (i32, Vec<String>) {
    let dir = temp_dir(test);
    let file = dir.join("c.cfg");
    let text = format!(
        "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend f\n  bind 127.0.0.1:1\n  default_backend plain\n{sections}"
    );
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_messages(&bins::path("hapx-proxy"), &file);
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = check_messages(Path::new(HAPROXY), &file);
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
    ours
}

#[test]
fn a_checked_server_needs_a_port() {
    let sections = "\
backend plain
  server zero 127.0.0.1:0 check
  server none 127.0.0.1 check
  server check_port_zero 127.0.0.1:0 check port 0
  server check_addr 127.0.0.1:0 check addr 127.0.0.2
  server unchecked 127.0.0.1:0
  server check_port 127.0.0.1:0 check port 80
backend empty_tcp_check
  option tcp-check
  server s 127.0.0.1:0 check
backend httpchk
  option httpchk
  server s 127.0.0.1:0 check
backend httpchk_connect_port
  option httpchk
  http-check connect port 80
  server s 127.0.0.1:0 check
backend ssl_hello
  option ssl-hello-chk
  server s 127.0.0.1:0 check
backend tcp_check_send_first
  option tcp-check
  tcp-check send foo
  server s 127.0.0.1:0 check
backend tcp_check_portless_connect
  option tcp-check
  tcp-check comment first
  tcp-check connect port 81
  tcp-check connect
  server s 127.0.0.1:0 check
backend tcp_check_connect_port
  option tcp-check
  tcp-check connect port 80
  server s 127.0.0.1:0 check
backend plain_again
  server s 127.0.0.1:0 check
";
    let (code, messages) = verdict("a_checked_server_needs_a_port", sections);
    assert_eq!(code, 1, "{messages:#?}");
    let neither = |backend: &str, server: &str, rest: &str| {
        format!(
            "ALERT: config: backend '{backend}': server '{server}' has neither service port nor check port{rest}"
        )
    };
    let no_rule = " nor tcp_check rule 'connect' with port information.";
    assert_eq!(
        messages,
        [
            neither("plain", "zero", "."),
            neither("plain", "none", "."),
            neither("plain", "check_port_zero", "."),
            neither("plain", "check_addr", "."),
            neither("empty_tcp_check", "s", "."),
            neither("httpchk", "s", no_rule),
            neither("httpchk_connect_port", "s", no_rule),
            neither("ssl_hello", "s", no_rule),
            neither("tcp_check_send_first", "s", no_rule),
            neither(
                "tcp_check_portless_connect",
                "s",
                ", and a tcp_check rule 'connect' with no port information."
            ),
            neither("plain_again", "s", no_rule),
        ]
    );
}

#[test]
fn backends_with_check_options_leave_the_default_ruleset_empty() {
    let sections = "\
backend httpchk
  option httpchk
  server s 127.0.0.1:80 check
backend tcp_check
  option tcp-check
  server s 127.0.0.1:80 check
backend plain
  server s 127.0.0.1:0 check
  server t 127.0.0.1:0 check
backend unchecked
  server s 127.0.0.1:80
";
    let (code, messages) = verdict(
        "backends_with_check_options_leave_the_default_ruleset_empty",
        sections,
    );
    assert_eq!(code, 1, "{messages:#?}");
    let neither = |server: &str| {
        format!(
            "ALERT: config: backend 'plain': server '{server}' has neither service port nor check port."
        )
    };
    assert_eq!(messages, [neither("s"), neither("t")]);
}

#[test]
fn check_intervals_must_be_above_zero() {
    let sections = "\
backend intervals
  server inter 127.0.0.1:80 check inter 0
  server fastinter 127.0.0.1:80 check fastinter 0
  server downinter 127.0.0.1:80 check downinter 0
  server agent_inter 127.0.0.1:80 check agent-inter 0
  server inter_ms 127.0.0.1:80 check inter 0ms
  server both 127.0.0.1:80 check inter 0s fastinter 0m
  server syntax 127.0.0.1:80 check fastinter 1x
  server overflow 127.0.0.1:80 check downinter 99999999999
  server fine 127.0.0.1:80 check inter 1s fastinter 100ms downinter 1m
backend defaults_zero
  default-server inter 0
  server s 127.0.0.1:80
";
    let (code, messages) = verdict("check_intervals_must_be_above_zero", sections);
    assert_eq!(code, 1, "{messages:#?}");
    let zero = [
        "inter",
        "fastinter",
        "downinter",
        "agent_inter",
        "inter_ms",
        "both",
    ];
    for server in zero {
        let said = messages
            .iter()
            .any(|m| m.contains(&format!("'server intervals/{server}' : invalid value 0")));
        assert!(said, "{server}: {messages:#?}");
    }
    assert!(
        messages
            .iter()
            .any(|m| m.contains("invalid value 0 for argument 'inter' of server default-server")),
        "{messages:#?}"
    );
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("'server intervals/fine'"))
    );
}
