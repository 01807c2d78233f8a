//! `observe`, `error-limit`, `on-error`: live traffic judges a server too, as HAProxy 2.6's
//! `health_adjust`. Every connection attempt to a server with `observe` counts: a failure
//! adds to its consecutive errors, a success clears them (`observe layer4`; with `layer7`
//! only a good response would, which hapx does not observe). At `error-limit` errors in a
//! row the count restarts, `hanafail` counts one, the next check comes after `fastinter`,
//! and `on-error` acts: `fail-check` records a failed check (HAProxy's `HANA` status,
//! "Detected N consecutive errors, last one was: L4 unsuccessful connection"),
//! `sudden-death` one that leaves a single failure before DOWN, `mark-down` one that marks
//! the server DOWN, `fastinter` nothing more.
//!
//! Cost: one field read per connection attempt on servers without `observe`.

use std::sync::atomic::Ordering::Relaxed;

use super::state::{Backend, CheckResult, Server, now_secs};
use super::{shutdown, track, transitions};
use crate::config::model::{Observe, OnError};

/// Counts a connection attempt to `server` (`connected`: it succeeded).
pub fn connection(backend: &Backend, server: &Server, connected: bool) {
    let Some(mode) = server.opts.observe else {
        return;
    };
    if connected {
        if mode == Observe::Layer4 {
            server.consecutive_errors.store(0, Relaxed);
        }
        return;
    }
    let errors = server.consecutive_errors.fetch_add(1, Relaxed) + 1;
    if errors < server.opts.error_limit {
        return;
    }
    let detail =
        format!("Detected {errors} consecutive errors, last one was: L4 unsuccessful connection");
    server.fastinter_next.store(true, Relaxed);
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
        track::follow(server, up);
    }
}
