//! Timers and stray words, checked beside HAProxy 2.6 (`hapx-proxy -c` and `haproxy -c` on
//! the same files, then traffic where the value changes what the proxy does).
//!
//! - A timer with characters after its unit (`20sec`, `1h30m`, `5mins`) is read as far as
//!   the unit and warned about with HAProxy's words, on proxies, servers and `default-server`
//!   alike; it used to refuse the configuration.
//! - A word past what a keyword takes is an error with HAProxy's words: `timeout client 20 s`
//!   used to run as 20 milliseconds, `retries 3 x` and `daemon x` passed unseen.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, check_messages, side_by_side};
use hapx_tests::{bins, require};

const DEFAULTS: &str =
    "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";

/// One checker's exit code and messages.
type Checked = (i32, Vec<String>);

/// Both checkers' (exit code, messages) on `text`; HAProxy's None when it is not installed.
fn check_both(test: &str, dir: &Path, name: &str, text: &str) -> (Checked, Option<Checked>) {
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_messages(&bins::path("hapx-proxy"), &file);
    let theirs = require::path(test, Path::new(HAPROXY), "HAProxy")
        .then(|| check_messages(Path::new(HAPROXY), &file));
    (ours, theirs)
}

/// A frontend with `line` (line 8) to a backend with a `default-server` and a server line.
fn proxies(line: &str, default_server: &str, server: &str) -> String {
    format!(
        "{DEFAULTS}frontend fe\n  bind 127.0.0.1:{}\n  {line}\n  default_backend b\n\
         backend b\n  default-server {default_server}\n  server s 127.0.0.1:9 {server}\n",
        free_port()
    )
}

#[test]
fn timers_with_words_after_their_unit_are_warned_about_as_haproxy_does() {
    let test = "timers_with_words_after_their_unit_are_warned_about_as_haproxy_does";
    let dir = temp_dir(test);
    for (i, (line, default_server, server)) in [
        ("timeout client 20sec", "fastinter 3sec", "inter 2sec"),
        ("timeout client 1h30m", "downinter 1d2h", "inter 5mins"),
        ("timeout client 20mx", "inter 2sx", "slowstart 1msx"),
    ]
    .into_iter()
    .enumerate()
    {
        let text = proxies(line, default_server, server);
        let ((code, ours), theirs) = check_both(test, &dir, &format!("t{i}"), &text);
        assert_eq!(code, 0, "{line}: {ours:#?}");
        let warned: Vec<&String> = ours
            .iter()
            .filter(|m| m.contains("after the timer value"))
            .collect();
        assert_eq!(warned.len(), 3, "{line}: {ours:#?}");
        assert!(
            warned[2].starts_with("WARNING: [") && warned[2].contains(" : 'server b/s' : "),
            "{ours:#?}"
        );
        if let Some((their_code, theirs)) = theirs {
            assert_eq!(their_code, 0, "{line}: {theirs:#?}");
            assert_eq!(ours, theirs, "{line}");
        }
    }
}

#[test]
fn words_past_a_keywords_arguments_are_refused_as_haproxy_refuses_them() {
    let test = "words_past_a_keywords_arguments_are_refused_as_haproxy_refuses_them";
    let dir = temp_dir(test);
    let in_listen = |line: &str| {
        format!(
            "{DEFAULTS}listen fe\n  bind 127.0.0.1:{}\n  {line}\n  server s 127.0.0.1:9\n\
             backend b\n  server t 127.0.0.1:9\n",
            free_port()
        )
    };
    let in_global = |line: &str| format!("global\n  {line}\n{}", in_listen("maxconn 10"));
    let cases = [
        in_listen("timeout client 20 s"),
        in_listen("timeout check 2s x"),
        in_listen("retries 3 x"),
        in_listen("maxconn 100 s"),
        in_listen("default_backend b extra"),
        in_listen("mode tcp x"),
        in_listen("http-reuse safe x"),
        in_listen("id 5 x"),
        in_listen("disabled x"),
        in_global("daemon x"),
        in_global("maxconn 4096 x"),
        in_global("user root x"),
        in_global("log-tag t x"),
    ];
    for (i, text) in cases.iter().enumerate() {
        let ((code, ours), theirs) = check_both(test, &dir, &format!("a{i}"), text);
        let first = ours.iter().find(|m| m.starts_with("ALERT: ")).cloned();
        assert_eq!(code, 1, "{text}: {ours:#?}");
        assert!(
            first.as_deref().is_some_and(|m| m.contains("unexpected")),
            "{text}: {ours:#?}"
        );
        if let Some((their_code, theirs)) = theirs {
            assert_eq!(their_code, 1, "HAProxy accepted {text}");
            let their_first = theirs.iter().find(|m| m.starts_with("ALERT: ")).cloned();
            assert_eq!(first, their_first, "{text}");
        }
    }
}

/// How long an idle client stays connected to `front` before the proxy closes it.
fn idle_client_lasts(front: SocketAddr) -> Duration {
    let mut client = TcpStream::connect(front).expect("connecting to the proxy");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let started = Instant::now();
    let _ = client.read(&mut [0; 64]);
    started.elapsed()
}

/// `timeout client 2sec` is two seconds in both proxies: an idle client is closed after
/// it, not at once (as a 2 ms timer would) nor never.
#[test]
fn a_timer_with_a_word_after_its_unit_runs_for_its_unit() {
    let test = "a_timer_with_a_word_after_its_unit_runs_for_its_unit";
    // A server that accepts and says nothing: only the client's timeout ends the session.
    let server = TcpListener::bind("127.0.0.1:0").expect("a quiet server");
    let server_addr = server.local_addr().expect("its address");
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = server.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let front = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let text = format!(
        "defaults\n  mode tcp\n  timeout client 2sec\n  timeout server 30s\n  timeout connect 1s\n\
         frontend fe\n  bind {front}\n  default_backend b\nbackend b\n  server s {}\n",
        server_addr
    );
    let (ours, theirs) = side_by_side(test, &text, front, idle_client_lasts);
    assert!(ours >= Duration::from_secs(2), "closed after {ours:?}");
    if let Some(theirs) = theirs {
        assert!(
            theirs >= Duration::from_secs(2),
            "HAProxy closed after {theirs:?}"
        );
        // Both within the same second past the timer (a timer read as 2 min would not be).
        assert!(
            ours < theirs + Duration::from_secs(1),
            "{ours:?} vs HAProxy's {theirs:?}"
        );
    }
}
