//! `observe`, `error-limit`, `on-error`: live traffic judges a server too, as HAProxy 2.6's
//! `health_adjust`. What counts depends on the mode, as HAProxy's table of analyzed
//! statuses says:
//!
//! | event                                   | `layer4`  | `layer7`  | last error named            |
//! |-----------------------------------------|-----------|-----------|-----------------------------|
//! | connection to the server failed         | error     | error     | L4 unsuccessful connection  |
//! | connection to the server made           | good      | -         |                             |
//! | HTTP response, status < 500, 501, 505   | -         | good      |                             |
//! | HTTP response, any other 5xx            | -         | error     | Wrong http response         |
//! | server closed before its response head  | -         | error     | Close from server (http)    |
//! | response head not HTTP                  | -         | error     | Invalid http response (headers) |
//!
//! (A server that times out counts nothing, as HAProxy 2.6 measured side by side.) A good
//! event clears the server's consecutive errors; at `error-limit` errors in a row the count
//! restarts, `hanafail` counts one, the next check comes after `fastinter`, and `on-error`
//! acts: `fail-check` records a failed check (HAProxy's `HANA` status, "Detected N
//! consecutive errors, last one was: L"), `sudden-death` one that leaves a single failure
//! before DOWN, `mark-down` one that marks the server DOWN, `fastinter` nothing more.
//!
//! Only a server with a health check of its own (`check`) is judged so: HAProxy's
//! `health_adjust` returns at once without the check's task, which a server without `check`
//! or tracking another's (`track`) lacks (measured side by side: `hanafail` stays 0, the
//! server UP).
//!
//! Cost: one field read per connection attempt or response on servers without `observe`.

use std::sync::atomic::Ordering::Relaxed;

use super::http::ReadError;
use super::state::{Backend, CheckResult, Server, now_secs};
use super::{shutdown, track, transitions};
use crate::config::model::{Observe, OnError};

/// What an HTTP exchange with a server told of it, as HAProxy's `HANA_STATUS_HTTP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutcome<'a> {
    /// A response head of this status (its text, not read on servers without `layer7`).
    Response(&'a str),
    /// The server closed (or reset) before sending its response head whole.
    Closed,
    /// Its response head was not HTTP.
    Malformed,
}

impl HttpOutcome<'_> {
    /// What a server's response head lost this way says (nothing for a timeout: HAProxy
    /// 2.6 counts none).
    pub fn lost(error: &ReadError) -> Option<HttpOutcome<'static>> {
        match error {
            ReadError::Closed | ReadError::Truncated => Some(HttpOutcome::Closed),
            ReadError::Malformed(_) => Some(HttpOutcome::Malformed),
            _ => None,
        }
    }
}

/// Counts a connection attempt to `server` (`connected`: it succeeded).
pub fn connection(backend: &Backend, server: &Server, connected: bool) {
    let Some(mode) = observed(server) else {
        return;
    };
    match (connected, mode) {
        (true, Observe::Layer4) => good(server),
        (true, Observe::Layer7) => {}
        (false, _) => error(backend, server, "L4 unsuccessful connection"),
    }
}

/// Counts what an HTTP exchange with `server` gave, for `observe layer7` (only a field
/// read for the other servers).
#[inline]
pub fn http(backend: &Backend, server: &Server, outcome: HttpOutcome<'_>) {
    if observed(server) == Some(Observe::Layer7) {
        http_layer7(backend, server, outcome);
    }
}

/// How live traffic judges `server`: its `observe` mode if it has a check of its own.
#[inline]
fn observed(server: &Server) -> Option<Observe> {
    server.opts.observe.filter(|_| server.opts.check)
}

fn http_layer7(backend: &Backend, server: &Server, outcome: HttpOutcome<'_>) {
    // HAProxy's `http_wait_for_response`: 501 and 505 say the request, not the server, was
    // at fault; a status below 100 is the server's; every head counts, interim ones too.
    match outcome {
        HttpOutcome::Response(status) => match status.parse::<u16>() {
            Ok(s) if (100..500).contains(&s) || s == 501 || s == 505 => good(server),
            _ => error(backend, server, "Wrong http response"),
        },
        HttpOutcome::Closed => error(backend, server, "Close from server (http)"),
        HttpOutcome::Malformed => error(backend, server, "Invalid http response (headers)"),
    }
}

/// A good event: the errors in a row start over.
fn good(server: &Server) {
    server.consecutive_errors.store(0, Relaxed);
}

/// One more error in a row, `last` naming it; `on-error` acts at `error-limit`.
fn error(backend: &Backend, server: &Server, last: &str) {
    let errors = server.consecutive_errors.fetch_add(1, Relaxed) + 1;
    if errors < server.opts.error_limit {
        return;
    }
    let detail = format!("Detected {errors} consecutive errors, last one was: {last}");
    server.fastinter_next.store(true, Relaxed);
    // The check task waits out `inter`: woken, it checks `fastinter` from now instead.
    server.check_soon.notify_one();
    let (rise, health) = (server.opts.rise, &server.health);
    match server.opts.on_error {
        OnError::FastInter => {}
        OnError::SuddenDeath => {
            if health.load(Relaxed) > rise {
                health.store(rise + 1, Relaxed);
            }
            failed_check(backend, server, &detail);
        }
        OnError::FailCheck => failed_check(backend, server, &detail),
        OnError::MarkDown => {
            health.store(rise, Relaxed);
            failed_check(backend, server, &detail);
        }
    }
    server.consecutive_errors.store(0, Relaxed);
    server.hana_failures.fetch_add(1, Relaxed);
}

/// Records a failed check of HAProxy's `HANA` status, with its consequences.
fn failed_check(backend: &Backend, server: &Server, detail: &str) {
    let before = transitions::CheckBefore::of(server);
    let result = CheckResult {
        status: "HANA".into(),
        code: None,
        duration_ms: None,
        desc: format!("Health analyze: {detail}"),
        at: now_secs(),
    };
    let changed = server.record_check(false, result);
    if backend.conf.options.log_health_checks {
        transitions::report_check_result(backend, server, false, &before);
    }
    if let Some(up) = changed {
        transitions::report_check(backend, server, up);
        shutdown::on_marked(backend, server, up);
        track::follow(server);
    }
}
