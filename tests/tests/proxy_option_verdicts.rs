//! Verdicts on features hapx implements in part, beside HAProxy 2.6's `-c`:
//!
//! - `option external-check` and `external-check command|path`: what HAProxy refuses, hapx
//!   refuses with its words; what HAProxy would run (a command forked per check), hapx
//!   cannot, so it refuses the configuration at the option's line rather than leave the
//!   checked servers UP unchecked.
//! - `email-alert`: HAProxy's syntax errors, its warning for an incomplete set, its alert for
//!   an unknown `mailers` section; a set HAProxy would use is warned about (no mail is sent).
//! - `option http-no-delay` (hapx's behaviour always) is taken silently as HAProxy takes it;
//!   `option checkcache` and `max-keep-alive-queue` get a warning saying what hapx does.

use std::path::Path;

use hapx_tests::bins;
use hapx_tests::proxy::temp_dir;
use hapx_tests::proxy_rules::{HAPROXY, check_alike, check_messages};
use hapx_tests::require;

const TIMEOUTS: &str = "  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";

fn config(global: &str, backend: &str, server: &str) -> String {
    format!(
        "global\n{global}defaults\n{TIMEOUTS}backend b\n{backend}  server s 127.0.0.1:1{server}\n\
         frontend f\n  bind 127.0.0.1:1\n  default_backend b\n"
    )
}

#[test]
fn external_checks_haproxy_refuses_are_refused_alike() {
    let test = "external_checks_haproxy_refuses_are_refused_alike";
    let option = "  option external-check\n";
    let command = "  external-check command /bin/true\n";
    let cases = [
        // Neither the global keyword nor a command.
        config("", option, " check"),
        // No global `external-check`.
        config("", &format!("{option}{command}"), " check"),
        // No command.
        config("  external-check\n", option, " check"),
        // The keyword's own syntax.
        config(
            "  external-check x\n",
            "  external-check\n  external-check command\n  external-check path\n  external-check foo\n  external-check command /bin/a extra\n",
            "",
        ),
    ];
    for text in cases {
        let (code, messages) = check_alike(test, &text);
        assert_ne!(code, 0, "{text}: {messages:?}");
        assert!(
            messages.iter().any(|m| m.starts_with("ALERT: ")),
            "{messages:?}"
        );
    }
}

#[test]
fn an_external_check_hapx_cannot_run_is_refused_at_its_line() {
    let test = "an_external_check_hapx_cannot_run_is_refused_at_its_line";
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    let backend = "  option external-check\n  external-check command /bin/true\n  external-check path /usr/bin\n";
    let global = "  external-check\n  insecure-fork-wanted\n";
    // HAProxy runs it: a valid configuration.
    std::fs::write(&file, config(global, backend, " check")).expect("writing");
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let (code, messages) = check_messages(Path::new(HAPROXY), &file);
        assert_eq!((code, messages), (0, vec![]), "HAProxy");
    }
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_ne!(code, 0, "hapx-proxy runs no external check: {messages:?}");
    assert_eq!(
        messages,
        ["ALERT: parsing [".to_string()
            + &file.display().to_string()
            + ":9] : 'option external-check' is not implemented by hapx: the checked servers of backend 'b' would stay UP unchecked."]
    );
    // Without a checked server it is inert: warned about, not refused.
    std::fs::write(&file, config(global, backend, "")).expect("writing");
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("'option external-check' is not implemented by hapx and is ignored (backend 'b' checks no server).")),
        "{messages:?}"
    );
}

/// The `ALERT` lines of `-c` on `text`, for hapx-proxy then HAProxy (None without it).
fn alerts(test: &str, text: &str) -> (Vec<String>, Option<Vec<String>>) {
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    std::fs::write(&file, text).expect("writing");
    let only_alerts = |(_, messages): (i32, Vec<String>)| -> Vec<String> {
        messages
            .into_iter()
            .filter(|m| m.starts_with("ALERT: "))
            .collect()
    };
    let ours = only_alerts(check_messages(&bins::path("hapx-proxy"), &file));
    let theirs = require::path(test, Path::new(HAPROXY), "HAProxy")
        .then(|| only_alerts(check_messages(Path::new(HAPROXY), &file)));
    (ours, theirs)
}

#[test]
fn email_alert_lines_are_judged_as_haproxy_does() {
    let test = "email_alert_lines_are_judged_as_haproxy_does";
    let backends = [
        // Syntax: an unknown level, an unknown subcommand.
        "backend a\n  email-alert level bogus\n  email-alert foo\n  server s 127.0.0.1:1\n",
        // Complete, naming no section that exists.
        "backend b\n  email-alert from a@b\n  email-alert to c@d\n  email-alert mailers\n  server s 127.0.0.1:1\n",
        // Incomplete: warned about and dropped, its unknown section never looked for.
        "backend c\n  email-alert mailers zz\n  server s 127.0.0.1:1\n",
        // Complete and valid.
        "backend e\n  email-alert mailers mm\n  email-alert from a@b\n  email-alert to c@d\n  server s 127.0.0.1:1\n",
    ];
    // The syntax errors, then the section checks (which run only without those).
    for (chosen, count) in [(&backends[..1], 2), (&backends[1..], 1)] {
        let text = format!(
            "defaults\n{TIMEOUTS}{}mailers mm\n  mailer smtp1 127.0.0.1:25\n",
            chosen.concat()
        );
        let (ours, theirs) = alerts(test, &text);
        assert_eq!(ours.len(), count, "{ours:?}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
        }
    }
    // Without the refused ones: HAProxy's warning for the incomplete set, hapx's for the
    // complete one.
    let text = format!(
        "defaults\n{TIMEOUTS}{}{}mailers mm\n  mailer smtp1 127.0.0.1:25\n",
        backends[2], backends[3]
    );
    let (code, messages) = {
        let dir = temp_dir(test);
        let file = dir.join("valid.cfg");
        std::fs::write(&file, &text).expect("writing");
        check_messages(&bins::path("hapx-proxy"), &file)
    };
    assert!(code == 0 || code == 2, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("WARNING: 'email-alert' will be ignored for backend 'c'")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.ends_with("'email-alert' is not implemented by hapx and is ignored: no mail is sent when a server of backend 'e' changes state.")),
        "{messages:?}"
    );
}

#[test]
fn http_no_delay_is_taken_as_haproxy_takes_it() {
    let test = "http_no_delay_is_taken_as_haproxy_takes_it";
    for (lines, refused) in [
        ("  option http-no-delay\n", false),
        ("  no option http-no-delay\n", false),
        ("  option http-no-delay now\n", true),
    ] {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{lines}  default_backend b\n\
             backend b\n{lines}  server s 127.0.0.1:1\n"
        );
        let (code, messages) = check_alike(test, &text);
        assert_eq!(code != 0, refused, "{lines}: {messages:?}");
        assert!(
            messages.iter().all(|m| !m.contains("not implemented")),
            "{messages:?}"
        );
    }
}

#[test]
fn checkcache_and_max_keep_alive_queue_say_what_hapx_does() {
    let test = "checkcache_and_max_keep_alive_queue_say_what_hapx_does";
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n  option checkcache\n  max-keep-alive-queue 3\n  server s 127.0.0.1:1\n"
    );
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    std::fs::write(&file, &text).expect("writing");
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        assert_eq!(check_messages(Path::new(HAPROXY), &file), (0, vec![]));
    }
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:?}");
    let place = |line: usize| format!("WARNING: parsing [{}:{line}] : ", file.display());
    assert_eq!(
        messages,
        [
            place(10)
                + "'option checkcache' is not implemented by hapx and is ignored: a cacheable response carrying a cookie is forwarded, not refused with a 502.",
            place(11)
                + "'max-keep-alive-queue' is not implemented by hapx and is ignored: a request that stays with its connection's server waits in that server's queue whatever its length (HAProxy's default, -1).",
        ]
    );
}
