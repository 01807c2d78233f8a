//! The words of HAProxy 2.6's refusals of a reply's file and status, in `http-error` and
//! in `http-request return`, side by side with HAProxy's `-c`: a page that is not an HTTP
//! response, a missing file, a status read with `atol`.

use hapx_tests::proxy::temp_dir;
use hapx_tests::proxy_rules::{TIMEOUTS, check_alike};

#[test]
fn reply_files_and_statuses_are_refused_in_haproxys_words() {
    let test = "reply_files_and_statuses_are_refused_in_haproxys_words";
    let dir = temp_dir(test);
    let page = dir.join("page.http");
    std::fs::write(&page, b"not http at all\n").expect("writing the page");
    let page = page.display();
    let cases = [
        (
            format!("http-error status 403 errorfile {page}"),
            "http-error : '".to_string(),
        ),
        (
            format!("http-request return status 403 errorfile {page}"),
            "unable to parse headers (error offset: 0).".to_string(),
        ),
        (
            "http-error status 403 file /nonexistent/page".to_string(),
            "http-error : error opening file '/nonexistent/page'".to_string(),
        ),
        (
            "http-request return status 200 file /nonexistent/page".to_string(),
            "rule : error opening file '/nonexistent/page'.".to_string(),
        ),
        (
            "http-error status abc".to_string(),
            "Unexpected status code '0'".to_string(),
        ),
        (
            "http-request return status 42x".to_string(),
            "Unexpected status code '42'.".to_string(),
        ),
    ];
    for (i, (line, wanted)) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:1\n  {line}\n  default_backend be\n\
             backend be\n  server s1 127.0.0.1:1\n"
        );
        let (code, messages) = check_alike(&format!("{test}-{i}"), &text);
        assert_eq!(code, 1, "{line}: {messages:?}");
        assert!(
            messages.iter().any(|m| m.contains(wanted.as_str())),
            "{line}: {messages:?}"
        );
    }
}
