//! Fetch arguments naming backends and servers (`nbsrv(B)`, `srv_is_up(B/S)`) resolved as
//! HAProxy 2.6 resolves them after reading: `hapx-proxy -c` and `haproxy -c` on the same
//! files give the same exit code and the same alert lines, word for word, wherever the
//! fetch is written (ACL, rule expression, `%[...]` of a header, a reply, a log or unique-id
//! format, a health check's formats), one alert per proxy or several grouped under
//! `multiple argument resolution errors:` (with the tables stick fetches name). Also
//! integer arguments past 64 bits (`req.payload_lv(99999999999999999999,1)`), which
//! HAProxy saturates and accepts.

use std::path::Path;

use hapx_tests::proxy::temp_dir;
use hapx_tests::proxy_rules::HAPROXY;
use hapx_tests::{bins, require};

const HEAD: &str =
    "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";

/// `BINARY -c -f FILE`: its exit code and its alerts, each with the lines continuing it
/// (a grouped alert lists its errors on indented lines), the pid and HAProxy's closing
/// summary left out, files named from their directory.
fn alerts(binary: &Path, file: &Path) -> (i32, Vec<String>) {
    let out = std::process::Command::new(binary)
        .args(["-c", "-f"])
        .arg(file)
        .output()
        .expect("running the checker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dir = file
        .parent()
        .map_or(String::new(), |d| format!("{}/", d.display()));
    let mut alerts: Vec<String> = Vec::new();
    let mut in_alert = false;
    for line in stderr.lines() {
        if line.starts_with('[') {
            in_alert = line.starts_with("[ALERT]");
            if let Some((_, text)) = line.split_once("config : ").filter(|_| in_alert) {
                alerts.push(text.replace(&dir, ""));
            }
        } else if let (true, Some(last)) = (in_alert, alerts.last_mut()) {
            last.push('\n');
            last.push_str(&line.replace(&dir, ""));
        }
    }
    alerts.retain(|a| !a.starts_with("Fatal errors") && !a.starts_with("Error(s) found"));
    (out.status.code().unwrap_or(-1), alerts)
}

/// A frontend `f` with `lines` (from line 8), its default backend `b` (server `s`), then
/// `extra`.
fn frontend(lines: &[&str], extra: &str) -> String {
    let mut text = format!("{HEAD}frontend f\n  bind 127.0.0.1:18080\n");
    for l in lines {
        text.push_str(&format!("  {l}\n"));
    }
    text.push_str("  default_backend b\nbackend b\n  server s 127.0.0.1:1\n");
    text.push_str(extra);
    text
}

/// A backend `c` checking its server with `lines` (from line 13), besides the frontend's.
fn checked_backend(lines: &[&str]) -> String {
    let mut text = frontend(&[], "backend c\n");
    for l in lines {
        text.push_str(&format!("  {l}\n"));
    }
    text.push_str("  server s 127.0.0.1:1 check\n");
    text
}

/// The cases: a name, the configuration, and what hapx must answer on its own (exit code
/// and the start of its first alert) when HAProxy is not installed.
fn cases() -> Vec<(&'static str, String, i32, &'static str)> {
    let fe = |lines: &[&str]| frontend(lines, "");
    vec![
        (
            "header",
            fe(&["http-request set-header X %[nbsrv(nope)]"]),
            1,
            "parsing [header.cfg:8]: unable to find backend 'nope' referenced in arg 1 of sample fetch keyword 'nbsrv' in http-request expression in proxy 'f'.",
        ),
        (
            "server",
            fe(&["http-request set-header X %[srv_is_up(b/zz)]"]),
            1,
            "parsing [server.cfg:8]: unable to find server 'zz' in proxy 'b', referenced",
        ),
        (
            "proxy",
            fe(&["http-request set-header X %[srv_is_up(nob/s)]"]),
            1,
            "parsing [proxy.cfg:8]: unable to find proxy 'nob' referenced",
        ),
        (
            "grouped",
            fe(&[
                "http-request set-header X %[nbsrv(nope)]",
                "http-request set-header Y %[srv_is_up(b/zz)]",
            ]),
            1,
            "multiple argument resolution errors:",
        ),
        (
            "reply",
            fe(&[
                "http-request return status 200 content-type text/plain lf-string \"%[nbsrv(nope)]\"",
            ]),
            1,
            "parsing [reply.cfg:8]: unable to find backend 'nope'",
        ),
        (
            "response",
            fe(&["http-response set-header X %[nbsrv(nope)]"]),
            1,
            "parsing [response.cfg:8]: unable to find backend 'nope'",
        ),
        (
            "redirect",
            fe(&["http-request redirect location /%[nbsrv(nope)]"]),
            1,
            "parsing [redirect.cfg:8]: unable to find backend 'nope'",
        ),
        (
            "acl_and_expression",
            fe(&[
                "acl a nbsrv(nope) gt 0",
                "http-request set-header X %[nbsrv(nope2)] if a",
            ]),
            1,
            "multiple argument resolution errors:",
        ),
        (
            "log_format",
            fe(&["log-format \"%[nbsrv(nope)]\""]),
            1,
            "parsing [log_format.cfg:8]: unable to find backend 'nope' referenced in arg 1 of sample fetch keyword 'nbsrv' in log-format string",
        ),
        (
            "unique_id",
            fe(&["unique-id-format \"%[nbsrv(nope)]\""]),
            1,
            "parsing [unique_id.cfg:8]: unable to find backend 'nope' referenced in arg 1 of sample fetch keyword 'nbsrv' in unique-id-format string",
        ),
        (
            // Log formats are read after the rules: theirs come last in the group, and the
            // tables stick fetches name are in it.
            "with_tables_in_order",
            fe(&[
                "http-request deny if { nbsrv(nope) gt 0 }",
                "http-request set-header X %[src_conn_rate(nt)]",
                "unique-id-format \"%[nbsrv(n3)]\"",
                "use_backend zz",
                "log-format \"%[nbsrv(n2)]\"",
            ]),
            1,
            "Proxy 'f': unable to find required use_backend: 'zz'.",
        ),
        (
            "existing",
            fe(&[
                "http-request set-header X %[nbsrv(b)]",
                "http-request set-header Y %[srv_is_up(b/s)]",
                "log-format \"%[nbsrv(b)]\"",
            ]),
            0,
            "",
        ),
        (
            "check_header",
            checked_backend(&["option httpchk", "http-check send hdr X %[nbsrv(nope)]"]),
            1,
            "parsing [check_header.cfg:13]: unable to find backend 'nope' referenced in arg 1 of ACL keyword 'nbsrv' in proxy 'c'.",
        ),
        (
            "check_uri",
            checked_backend(&["option httpchk", "http-check send uri-lf /%[nbsrv(nope)]"]),
            1,
            "parsing [check_uri.cfg:13]: unable to find backend 'nope' referenced in arg 1 of sample fetch keyword 'nbsrv' in server directive in proxy 'c'.",
        ),
        (
            "tcp_checks",
            checked_backend(&[
                "option tcp-check",
                "tcp-check send-lf %[srv_is_up(b/zz)]",
                "tcp-check expect string x on-error %[nbsrv(nope)]",
            ]),
            1,
            "multiple argument resolution errors:",
        ),
        (
            "huge_payload_offset",
            format!(
                "{HEAD}frontend f\n  mode tcp\n  bind 127.0.0.1:18080\n  tcp-request inspect-delay 1s\n  tcp-request content reject if {{ req.payload_lv(99999999999999999999,1) -m found }}\n  default_backend b\nbackend b\n  mode tcp\n  server s 127.0.0.1:1\n"
            ),
            0,
            "",
        ),
    ]
}

#[test]
fn missing_backends_in_fetch_arguments_are_refused_like_haproxy() {
    let test = "missing_backends_in_fetch_arguments_are_refused_like_haproxy";
    let dir = temp_dir(test);
    let haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (name, text, code, first) in cases() {
        let file = dir.join(format!("{name}.cfg"));
        std::fs::write(&file, &text).expect("writing the configuration");
        let ours = alerts(&bins::path("hapx-proxy"), &file);
        assert_eq!(ours.0, code, "{name}: {ours:#?}");
        let head = ours.1.first().map_or("", String::as_str);
        assert!(head.starts_with(first), "{name}: {ours:#?}");
        if haproxy {
            let theirs = alerts(Path::new(HAPROXY), &file);
            assert_eq!(ours, theirs, "{name}: hapx, then HAProxy");
        }
    }
}
