//! Configuration details left after the rules came, hapx-proxy beside HAProxy 2.6 (`-c`):
//! a converter's regex that does not compile is reported with the unresolved arguments
//! once the file is read; converter arguments are quoted as HAProxy's `make_arg_list`
//! quotes them (parentheses within quotes, `\1` groups, read the same at run time);
//! `deny_status` comes first and needs an error page of its status; a named defaults
//! section used both by `from` and as the last one gets HAProxy's alert, which refuses
//! nothing; the "Fatal errors" summary only when reading went to its end; the rules a
//! defaults section gives its proxies are checked once, under its name.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, HAPROXY, check_alike, exchange, get, side_by_side};
use hapx_tests::{bins, require};

const TIMEOUTS: &str = "  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n";

/// A frontend `f` in HTTP mode with `lines`, and a backend `b` without servers.
fn frontend(lines: &str) -> String {
    format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{lines}\
         \x20 default_backend b\nbackend b\n"
    )
}

/// What `-c -f FILE` gave: the exit code, stdout, and the stderr lines but the notices,
/// each `[LEVEL] text` (the pid left out), continuation lines as they are.
type Checked = (i32, String, Vec<String>);

fn whole_check(binary: &Path, file: &Path) -> Checked {
    let out = std::process::Command::new(binary)
        .args(["-c", "-f"])
        .arg(file)
        .output()
        .expect("running the checker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = (stderr.lines())
        .filter(|l| !l.starts_with("[NOTICE]"))
        .map(|l| match (l.split_once(' '), l.split_once("config : ")) {
            (Some((level, _)), Some((_, text))) if l.starts_with('[') => {
                format!("{level} {text}")
            }
            _ => l.to_string(),
        })
        .collect();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout, lines)
}

/// [`whole_check`] of `text` (written as `case.cfg` in the test's directory) by hapx-proxy,
/// asserted the same as HAProxy's when it runs; with the file's path.
fn whole_check_alike(test: &str, text: &str) -> (Checked, String) {
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = whole_check(&bins::path("hapx-proxy"), &file);
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(
            ours,
            whole_check(Path::new(HAPROXY), &file),
            "hapx, then HAProxy"
        );
    }
    (ours, file.display().to_string())
}

#[test]
fn bad_regexes_are_reported_with_the_unresolved_arguments() {
    let text = frontend(
        "  http-request set-header x %[path,regsub(a**,b)]\n\
         \x20 http-request deny if { path,regsub(c**,d,i) -m str x }\n\
         \x20 acl a path,regsub(e**,f) x\n\
         \x20 http-request deny if a\n\
         \x20 http-request set-var(txn.x) path,regsub(g**,h)\n",
    );
    let ((code, _, lines), file) = whole_check_alike("regsub_bad_regex", &text);
    assert_eq!(code, 1);
    let error = |line: usize, pattern: &str, what: &str| {
        format!(
            "        parsing [{file}:{line}]: error in regex '{pattern}' in arg 1 of conversion keyword 'regsub' for {what} in proxy 'f' : regex '{pattern}' is invalid (error=quantifier does not follow a repeatable item, erroffset=2)."
        )
    };
    let rule = "sample fetch keyword 'path' in http-request expression";
    let acl = "ACL keyword 'path'";
    assert_eq!(
        lines,
        [
            "[ALERT] multiple argument resolution errors:".to_string(),
            error(8, "a**", rule),
            error(9, "c**", acl),
            error(10, "e**", acl),
            error(12, "g**", rule),
            "[ALERT] Fatal errors found in configuration.".to_string(),
        ]
    );
    // Alone in its proxy: on one line.
    let (code, messages) = check_alike(
        "regsub_bad_regex_alone",
        &frontend("  http-request set-header x %[path,regsub(x(,y)]\n"),
    );
    assert_eq!(code, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].ends_with(
            "in proxy 'f' : regex 'x(' is invalid (error=missing closing parenthesis, erroffset=2)."
        ),
        "{messages:?}"
    );
}

#[test]
fn quoted_converter_arguments_read_as_haproxy_reads_them() {
    // Parentheses outside quotes end the arguments, for both.
    for (i, value) in [
        "\"%[path,regsub((a),\\\\1,g)]\"",
        "%[path,regsub((a),<\\1>,g)]",
        "%[path,regsub(a\\x29,x)]",
    ]
    .iter()
    .enumerate()
    {
        let text = frontend(&format!("  http-request set-header x {value}\n"));
        let (code, messages) = check_alike(&format!("regsub_parens_{i}"), &text);
        assert_eq!(code, 1, "{value}");
        assert!(
            messages[0].ends_with(
                "invalid arg 2 in converter 'regsub' : missing arguments (got 1/2), type 'string' expected."
            ),
            "{value}: {messages:?}"
        );
    }
    // Within quotes they are the regex's, and `\1` its group, at run time too.
    let server = EchoServer::start("s1");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind {addr}\n\
         \x20 http-request set-var(txn.p) path\n\
         \x20 http-response set-header x-single \"%[var(txn.p),regsub('(a)','<\\\\1>',g)]\"\n\
         \x20 http-response set-header x-double \"%[var(txn.p),regsub(\\\"(a)(,?)\\\",[\\\\1\\\\2],g)]\"\n\
         \x20 http-response set-header x-escaped \"%[var(txn.p),regsub('/',<\\\\ \\\\\\\\\\\\\\\\\\\\t)]\"\n\
         \x20 default_backend b\nbackend b\n  server s1 {}\n",
        server.addr
    );
    let headers = ["x-single", "x-double", "x-escaped"];
    let (ours, theirs) = side_by_side("regsub_quoted", &config, addr, |a| {
        let response = exchange(a, &[get("/xaa,ax", "")]).remove(0);
        let response = response.expect("a response");
        headers.map(|h| response.header(h).map(str::to_string))
    });
    assert_eq!(
        ours,
        [
            Some("/x<a><a>,<a>x".to_string()),
            Some("/x[a][a,][a]x".to_string()),
            Some("< \\\txaa,ax".to_string()),
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn deny_status_comes_first_and_needs_an_error_page() {
    let cases: [(&str, i32); 10] = [
        ("http-request deny deny_status 451", 1),
        ("http-request tarpit deny_status 451 if TRUE", 1),
        ("http-response deny deny_status 451", 1),
        ("http-request deny deny_status 429", 0),
        ("http-request deny deny_status 451 hdr x y", 0),
        ("http-request deny hdr x y deny_status 429", 1),
        ("http-request return deny_status 451", 1),
        ("http-request deny deny_status", 1),
        ("http-request deny deny_status 12abc", 1),
        ("http-request deny foo", 1),
    ];
    for (i, (rule, code)) in cases.iter().enumerate() {
        let text = frontend(&format!("  {rule}\n"));
        let ((got, _, lines), _) = whole_check_alike(&format!("deny_status_{i}"), &text);
        assert_eq!(got, *code, "{rule}: {lines:?}");
        // A refused rule stops the reading: no "Fatal errors" summary.
        assert!(
            !lines.iter().any(|l| l.contains("Fatal errors")),
            "{rule}: {lines:?}"
        );
    }
    let (_, messages) = check_alike(
        "deny_status_message",
        &frontend("  http-request deny deny_status 451\n"),
    );
    assert!(
        messages[0].ends_with(
            "while parsing 'http-request deny' rule : status code '451' not handled by default with 'default-errorfiles' argument.."
        ),
        "{messages:?}"
    );
}

#[test]
fn a_defaults_section_used_both_ways_gets_an_alert_and_passes() {
    let text = format!(
        "defaults d\n  mode http\n{TIMEOUTS}\
         \x20 http-request deny if {{ path /x }}\n\
         frontend f1 from d\n  bind 127.0.0.1:1\n  default_backend b\n\
         frontend f2\n  bind 127.0.0.1:2\n  default_backend b\n\
         defaults e\n  mode http\n{TIMEOUTS}backend b\n"
    );
    let ((code, stdout, lines), file) = whole_check_alike("defaults_both_ways", &text);
    assert_eq!(code, 0);
    assert_eq!(stdout, "Configuration file is valid\n");
    assert_eq!(
        lines,
        [format!(
            "[ALERT] parsing [{file}:10] : defaults section 'd' (declared at {file}:1) is explicitly referenced by another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always use explicit references."
        )]
    );
    // The other way round: the alert at the uses by name.
    let text = format!(
        "defaults d\n  mode http\n{TIMEOUTS}\
         frontend f2\n  bind 127.0.0.1:2\n  default_backend b\n\
         frontend f1 from d\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b from d\n"
    );
    let ((code, _, lines), _) = whole_check_alike("defaults_both_ways_reversed", &text);
    assert_eq!(code, 0);
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn fatal_errors_summary_only_after_the_whole_file() {
    // An unknown keyword: reading goes on, the checks do not run, the summary comes.
    let ((code, _, lines), _) =
        whole_check_alike("fatal_summary_unknown", &frontend("  foo bar\n"));
    assert_eq!(code, 1);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("[ALERT] Fatal errors found in configuration.")
    );
    // A rule HAProxy cannot parse stops the reading: no summary.
    let ((code, _, lines), file) = whole_check_alike(
        "fatal_summary_stop",
        &frontend("  http-request set-header x %[path,regsub((a),b)]\n  foo bar\n"),
    );
    assert_eq!(code, 1);
    assert_eq!(
        lines.last(),
        Some(&format!(
            "[ALERT] Error(s) found in configuration file : {file}"
        ))
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn inherited_rules_are_checked_once_under_their_defaults_section() {
    let text = format!(
        "defaults d\n  mode http\n{TIMEOUTS}\
         \x20 http-request track-sc0 src table nope\n\
         \x20 http-request deny if {{ src_conn_cnt(nope2) gt 1 }}\n\
         \x20 http-request set-header x %[path,regsub(a**,b)]\n\
         frontend f1 from d\n  bind 127.0.0.1:1\n  default_backend b\n\
         frontend f2 from d\n  bind 127.0.0.1:2\n  default_backend b\n\
         defaults e\n  mode http\n{TIMEOUTS}backend b\n"
    );
    let ((code, _, lines), file) = whole_check_alike("inherited_checked_once", &text);
    assert_eq!(code, 1);
    assert_eq!(
        lines,
        [
            "[ALERT] Proxy 'd': unable to find table 'nope' referenced by track-sc0.".to_string(),
            "[ALERT] multiple argument resolution errors:".to_string(),
            format!(
                "        parsing [{file}:7]: unable to find table 'nope2' referenced in arg 1 of ACL keyword 'src_conn_cnt' in proxy 'd'."
            ),
            format!(
                "        parsing [{file}:8]: error in regex 'a**' in arg 1 of conversion keyword 'regsub' for sample fetch keyword 'path' in http-request expression in proxy 'd' : regex 'a**' is invalid (error=quantifier does not follow a repeatable item, erroffset=2)."
            ),
            "[ALERT] Fatal errors found in configuration.".to_string(),
        ]
    );
}
