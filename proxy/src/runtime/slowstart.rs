//! `slowstart`: a server that comes back (UP by its checks, or out of maintenance) does not
//! take its full share at once. As HAProxy 2.6 (`server_recalc_eweight`, `server_warmup`,
//! `srv_dynamic_maxconn`): for the whole seconds `e` since it came back, out of `slowstart`
//! seconds `S`, its effective weight is `weight * (16 * e + S) / S` on HAProxy's scale of 16
//! per unit of weight (with the dynamic algorithms only: `static-rr` and map-based hashes
//! keep full weights), and its `maxconn` is `max(1, maxconn * (100 * e / S) / 100)`. The
//! `show stat` `weight` column shows the effective weight on the user's scale (rounded up)
//! and `throttle` the percentage, while it ramps. It never applies when the proxy starts.
//!
//! HAProxy recomputes this once a second from the server's return (its warm-up task); here it
//! is computed when read, counting seconds from the same instant, so the steps fall at the
//! same moments. When the last step is reached, HAProxy's server goes from STARTING to
//! RUNNING: its `last_change` is reset and `Server B/S is UP. ...` logged (with the drain
//! reminder when drained), as here from the task that wakes the server's waiters; a drained
//! server is reminded of its drain at each step before, as HAProxy's warm-up task does.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::meter;
use super::state::{Admin, Backend, Server};

/// HAProxy's `BE_WEIGHT_SCALE`: an effective weight is the user's times this.
pub const WEIGHT_SCALE: u32 = 16;

/// Starts the server's slow start now, if it has one.
pub fn begin(server: &Server) {
    if server.opts.slowstart_secs == 0 {
        return;
    }
    // Never 0, which means "not starting".
    let since = meter::now_ms().max(1);
    server.warming_since.store(since, Relaxed);
    // Each second its weight and `maxconn` grow: the balancer takes the new weight and the
    // server the connections queued, as HAProxy's warm-up task does
    // (`server_recalc_eweight`, `pendconn_grab_from_px`).
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let Some((backend, index)) = server.balancer() else {
        return;
    };
    let (backend, seconds) = (
        std::sync::Arc::downgrade(&backend),
        server.opts.slowstart_secs,
    );
    runtime.spawn(async move {
        for step in 1..=seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(backend) = backend.upgrade() else {
                return;
            };
            let server = &backend.servers[index];
            if server.warming_since.load(Relaxed) != since {
                // Ended: DOWN, in maintenance, or begun again.
                return;
            }
            server.slots_opened();
            if step < seconds {
                super::transitions::report_warming_step(&backend, server);
            } else {
                warmed_up(&backend, server, since);
            }
        }
    });
}

/// Whole seconds into the server's slow start; None once it is over (or without one).
fn elapsed(server: &Server) -> Option<u32> {
    let since = server.warming_since.load(Relaxed);
    if since == 0 {
        return None;
    }
    let secs = meter::now_ms().saturating_sub(since) / 1000;
    u32::try_from(secs)
        .ok()
        .filter(|&e| e < server.opts.slowstart_secs)
}

/// Whether the server is in its slow start (HAProxy's STARTING state).
pub fn warming(server: &Server) -> bool {
    elapsed(server).is_some()
}

/// Whether the server, in its slow start, would get a new weight if it were recomputed now:
/// HAProxy recomputes it on other changes too (entering drain), counting whole seconds of
/// the wall clock (`now.tv_sec - last_change`), one step ahead of its warm-up task's count
/// once a second of the clock has begun since the server came back.
pub fn step_ahead_on_wall_clock(server: &Server) -> bool {
    let since = server.warming_since.load(Relaxed);
    if since == 0 || elapsed(server).is_none() {
        return false;
    }
    let now = meter::now_ms();
    now / 1000 - since / 1000 != now.saturating_sub(since) / 1000
}

/// The end of the slow start begun at `since` (unless it was ended since: the server went
/// DOWN or into maintenance, or began another): the server is RUNNING, a change of state
/// HAProxy logs as `is UP` (no reason) and counts from.
fn warmed_up(backend: &Backend, server: &Server, since: u64) {
    let ended = server
        .warming_since
        .compare_exchange(since, 0, Relaxed, Relaxed)
        .is_ok();
    if ended && server.is_up() {
        server.last_change.store(super::state::now_secs(), Relaxed);
        super::transitions::report_change(backend, server, true, "");
    }
}

/// Whether the backend's algorithm follows weights changed at run time (HAProxy's
/// `BE_LB_PROP_DYN`).
fn dynamic(backend: &Backend) -> bool {
    !super::balance::static_weights(backend)
}

/// `uweight` made effective: on HAProxy's scale ([`WEIGHT_SCALE`]), ramped in slow start.
fn effective(backend: &Backend, server: &Server, uweight: u32) -> u32 {
    match elapsed(server) {
        Some(e) if dynamic(backend) => {
            let s = server.opts.slowstart_secs;
            uweight * ((WEIGHT_SCALE * e + s) / s)
        }
        _ => uweight * WEIGHT_SCALE,
    }
}

/// The weight the balancer uses, on HAProxy's scale: 0 when draining or in maintenance.
pub fn lb_eweight(backend: &Backend, server: &Server) -> u32 {
    effective(backend, server, server.lb_weight())
}

/// The `show stat` `weight` column of a server: its effective weight on the user's scale.
pub fn weight_column(backend: &Backend, server: &Server) -> u32 {
    effective(backend, server, server.weight.load(Relaxed)).div_ceil(WEIGHT_SCALE)
}

/// A backend's `weight` column from its servers' effective weights.
pub fn total_column<'a>(backend: &Backend, servers: impl Iterator<Item = &'a Server>) -> u32 {
    let total: u32 = servers.map(|s| lb_eweight(backend, s)).sum();
    total.div_ceil(WEIGHT_SCALE)
}

/// The `throttle` column: the percentage of its weight a server in slow start has (not
/// shown when draining, as HAProxy).
pub fn throttle(backend: &Backend, server: &Server) -> Option<u32> {
    elapsed(server)?;
    let uweight = server.weight.load(Relaxed);
    if uweight == 0 || server.admin() == Admin::Drain {
        return None;
    }
    let eweight = effective(backend, server, uweight);
    Some((100 * eweight + WEIGHT_SCALE - 1) / (WEIGHT_SCALE * uweight))
}

/// `maxconn` during slow start: the share of the seconds gone by, at least 1.
pub fn maxconn(server: &Server, maxconn: usize) -> usize {
    match elapsed(server) {
        Some(e) => {
            let ratio = 100 * e as usize / server.opts.slowstart_secs as usize;
            (maxconn * ratio / 100).max(1)
        }
        None => maxconn,
    }
}
