//! `errorfile` pages that are not HTTP responses HAProxy 2.6 can load, side by side with
//! HAProxy's `-c`: each file variant (no status line, a bad header line, a missing blank
//! line, a bad version or status, LF-only lines, framing errors ...) must be taken or refused
//! as HAProxy does, with its words and the offset its HTTP/1 parser stopped at; and
//! `http-error status` must name an unhandled status as HAProxy does.

use std::path::Path;

use hapx_tests::proxy::temp_dir;
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_both, check_messages};

/// (name, page) of each variant tried.
const PAGES: &[(&str, &[u8])] = &[
    ("not_http", b"not http at all\n"),
    ("not_http_no_lf", b"not http at all"),
    ("html", b"<html><body>oops</body></html>\n"),
    ("empty", b""),
    (
        "crlf",
        b"HTTP/1.0 403 Forbidden\r\nContent-Length: 2\r\n\r\nok",
    ),
    (
        "lf_only",
        b"HTTP/1.0 403 Forbidden\nContent-Length: 2\n\nok",
    ),
    (
        "no_blank_line",
        b"HTTP/1.0 403 Forbidden\r\nContent-Length: 2\r\n",
    ),
    ("status_line_only", b"HTTP/1.0 403 Forbidden"),
    (
        "bad_header_line",
        b"HTTP/1.0 403 Forbidden\r\nbad header line\r\n\r\n",
    ),
    (
        "bad_second_header",
        b"HTTP/1.0 403 Forbidden\r\nX-A: 1\r\nbad line\r\n\r\n",
    ),
    (
        "space_before_colon",
        b"HTTP/1.0 403 Forbidden\r\nX-A : 1\r\n\r\n",
    ),
    (
        "empty_header_name",
        b"HTTP/1.0 403 Forbidden\r\n: v\r\n\r\n",
    ),
    (
        "header_without_colon",
        b"HTTP/1.0 403 Forbidden\r\nX-A\r\n\r\n",
    ),
    ("cr_without_lf", b"HTTP/1.0 403 Forbidden\rX: 1\r\r"),
    (
        "leading_blank_lines",
        b"\r\n\nHTTP/1.0 403 Forbidden\r\n\r\n",
    ),
    ("leading_space", b" HTTP/1.0 403 Forbidden\r\n\r\n"),
    ("lower_case_version", b"http/1.0 403 Forbidden\r\n\r\n"),
    ("short_version", b"HTTP/1 403 Forbidden\r\n\r\n"),
    ("no_status", b"HTTP/1.0\r\n\r\n"),
    ("letters_in_status", b"HTTP/1.0 40a Forbidden\r\n\r\n"),
    ("interim_status", b"HTTP/1.1 100 Continue\r\n\r\n"),
    ("no_reason", b"HTTP/1.0 403\r\n\r\n"),
    (
        "folded_header",
        b"HTTP/1.0 403 Forbidden\r\nX-A: 1\r\n  more\r\n\r\n",
    ),
    (
        "chunked",
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "chunked_twice",
        b"HTTP/1.1 403 F\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    ),
    (
        "two_lengths",
        b"HTTP/1.0 403 F\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    ),
    (
        "bad_length",
        b"HTTP/1.0 403 F\r\nContent-Length: -1\r\n\r\n",
    ),
    (
        "short_body",
        b"HTTP/1.0 403 F\r\nContent-Length: 5\r\n\r\nok",
    ),
    (
        "body_after_zero_length",
        b"HTTP/1.0 403 F\r\nContent-Length: 0\r\n\r\nabc",
    ),
    ("body_of_a_204", b"HTTP/1.1 204 No Content\r\n\r\nabc"),
    (
        "body_without_length",
        b"HTTP/1.0 403 Forbidden\r\n\r\nbody here",
    ),
];

fn config(page: &Path) -> String {
    format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:1\n  errorfile 403 {}\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:1\n",
        page.display()
    )
}

#[test]
fn errorfile_pages_are_taken_or_refused_as_haproxy_does() {
    let test = "errorfile_pages_are_taken_or_refused_as_haproxy_does";
    let dir = temp_dir(test);
    let mut variants = Vec::new();
    for (i, (name, page)) in PAGES.iter().enumerate() {
        let file = dir.join(format!("{name}.http"));
        std::fs::write(&file, page).expect("writing the page");
        let cfg = dir.join(format!("case{i}.cfg"));
        std::fs::write(&cfg, config(&file)).expect("writing the configuration");
        variants.push((*name, file, cfg));
    }
    let verdict = |name: &str| -> (i32, Vec<String>) {
        let (_, _, cfg) = variants
            .iter()
            .find(|(n, ..)| *n == name)
            .expect("a variant");
        check_messages(&hapx_tests::bins::path("hapx-proxy"), cfg)
    };
    // hapx's own account, HAProxy or not: a text file is refused where its parser stopped.
    let (code, messages) = verdict("not_http");
    assert_eq!(code, 1, "{messages:?}");
    assert!(
        messages[0].ends_with("not_http.http': unable to parse headers (error offset: 0)"),
        "{messages:?}"
    );
    assert!(verdict("bad_header_line").1[0].ends_with("(error offset: 27)"));
    assert!(verdict("no_blank_line").1[0].ends_with("(error offset: -2)"));
    assert_eq!(verdict("lf_only"), (0, vec![]));
    if !hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    for (name, _, cfg) in &variants {
        let [ours, theirs] = check_both(cfg);
        assert_eq!(ours, theirs, "{name}: hapx-proxy, then HAProxy");
    }
}

/// An `http-error status` HAProxy has no error message for is refused with its words.
#[test]
fn http_error_names_an_unhandled_status_as_haproxy_does() {
    let test = "http_error_names_an_unhandled_status_as_haproxy_does";
    let dir = temp_dir(test);
    let cfg = dir.join("case.cfg");
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:1\n  http-error status 418\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:1\n"
    );
    std::fs::write(&cfg, text).expect("writing the configuration");
    let ours = check_messages(&hapx_tests::bins::path("hapx-proxy"), &cfg);
    assert_eq!(
        ours,
        (
            1,
            vec![
                "ALERT: parsing [".to_string()
                    + &cfg.display().to_string()
                    + ":8] : http-error: status code '418' not handled."
            ]
        )
    );
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(
            ours,
            check_messages(Path::new(HAPROXY), &cfg),
            "hapx-proxy, then HAProxy"
        );
    }
}

/// An `http-errors` section's `errorfile` is judged as a proxy's.
#[test]
fn http_errors_sections_judge_their_pages_as_haproxy_does() {
    let test = "http_errors_sections_judge_their_pages_as_haproxy_does";
    let dir = temp_dir(test);
    let page = dir.join("page.http");
    std::fs::write(&page, b"<html>oops</html>\n").expect("writing the page");
    let cfg = dir.join("case.cfg");
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}http-errors pages\n  errorfile 503 {}\n\
         frontend fe\n  bind 127.0.0.1:1\n  errorfiles pages\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:1\n",
        page.display()
    );
    std::fs::write(&cfg, text).expect("writing the configuration");
    let ours = check_messages(&hapx_tests::bins::path("hapx-proxy"), &cfg);
    assert_eq!(ours.0, 1, "{ours:?}");
    assert!(
        ours.1[0].ends_with("page.http': unable to parse headers (error offset: 0)"),
        "{ours:?}"
    );
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(
            ours,
            check_messages(Path::new(HAPROXY), &cfg),
            "hapx-proxy, then HAProxy"
        );
    }
}
