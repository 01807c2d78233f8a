//! A server's changes of state, logged in HAProxy 2.6's words and at its levels: UP and DOWN
//! by health checks, and an operator's maintenance and drain (`disable server`, `set server
//! ... state`). Each goes to the backend's log targets and to stderr as a `[WARNING]`; a
//! backend left without a usable server adds HAProxy's alert (`[ALERT]` on stderr, an
//! emergency in the logs: once, when the last server taking connections goes, by its state or
//! a weight of 0). A drained server whose operational state changes (or whose slow start
//! steps on) is reminded that it `remains in forced drain mode.`, as HAProxy does.

use std::sync::atomic::Ordering::Relaxed;

use super::log;
use super::state::{Admin, AdminFlag, Backend, Server, now_secs};

/// What a server and its backend were before an operator's change.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    admin: Admin,
    /// DOWN by its health checks.
    down: bool,
    backend_up: bool,
}

impl Before {
    pub fn of(backend: &Backend, server: &Server) -> Self {
        Before {
            admin: server.admin(),
            // Checked or not: one set DOWN from the CLI was DOWN too, as HAProxy says.
            down: !server.is_up(),
            backend_up: backend.is_up(),
        }
    }
}

/// A server's check state before a check's result is recorded, for
/// [`report_check_result`].
#[derive(Debug)]
pub struct CheckBefore {
    status: String,
    health: u32,
}

impl CheckBefore {
    pub fn of(server: &Server) -> Self {
        let status = server.check.lock().map(|c| c.status.clone());
        CheckBefore {
            status: status.unwrap_or_default(),
            health: server.health.load(Relaxed),
        }
    }
}

/// `option log-health-checks`: logs a check's result when it moved the health or changed
/// the check's status, as HAProxy's `set_server_check_status` (a notice), with the health
/// after it (`status: 2/3 UP`, `status: 1/2 DOWN`).
pub fn report_check_result(backend: &Backend, server: &Server, ok: bool, before: &CheckBefore) {
    let check = server.check.lock().map(|c| c.clone()).unwrap_or_default();
    let health = server.health.load(Relaxed);
    if check.status == before.status && health == before.health {
        return;
    }
    let counts = (health, server.opts.rise, server.opts.fall);
    report_probe(backend, server, "Health", ok, &check, counts);
}

/// An agent's answer under `option log-health-checks` (HAProxy logs those that change its
/// status, and not `CHECKED`, which changes nothing): as a health check's, with the agent's
/// health (its rise and fall are 1).
pub fn report_agent_result(backend: &Backend, server: &Server, ok: bool, previous: &str) {
    let result = server.agent.result();
    if result.status == previous || result.status == "CHECKED" {
        return;
    }
    let counts = (server.agent.health(), 1, 1);
    report_probe(backend, server, "Agent", ok, &result, counts);
}

/// `KIND check for server B/S succeeded|failed, reason: ..., status: N/M STATE.`, with
/// the check's (health, rise, fall).
fn report_probe(
    backend: &Backend,
    server: &Server,
    kind: &str,
    ok: bool,
    check: &super::state::CheckResult,
    (health, rise, fall): (u32, u32, u32),
) {
    let (n, of, state) = if health >= rise {
        let state = if server.weight.load(Relaxed) > 0 {
            "UP"
        } else {
            "DRAIN"
        };
        (health - rise + 1, fall, state)
    } else {
        (health, rise, "DOWN")
    };
    let backup = if server.opts.backup { "backup " } else { "" };
    let verdict = match (ok, check.status.as_str()) {
        (true, "L7OKC") => "conditionally succeeded",
        (true, _) => "succeeded",
        (false, _) => "failed",
    };
    let line = format!(
        "{kind} check for {backup}server {}/{} {verdict}, {}, status: {n}/{of} {state}.",
        backend.name,
        server.name,
        check_outcome(check)
    );
    warn(backend, log::LOG_NOTICE, &line);
}

/// A check's `reason: ..., code: ..., info: "...", check duration: Nms`, as HAProxy words it.
fn check_outcome(check: &super::state::CheckResult) -> String {
    let (reason, info) = check.desc.split_once(": ").unwrap_or((&check.desc, ""));
    let mut why = format!("reason: {reason}");
    if let Some(code) = check.code {
        // HAProxy's `short`, printed signed.
        why.push_str(&format!(", code: {}", code as i16));
    }
    if !info.is_empty() {
        why.push_str(&format!(", info: \"{info}\""));
    }
    // None for a check simulated by `observe`: HAProxy gives no duration then.
    if let Some(duration) = check.duration_ms {
        why.push_str(&format!(", check duration: {duration}ms"));
    }
    why
}

/// Logs a health check's verdict that changed the server's state: the check's status, code
/// and detail, then the servers left.
pub fn report_check(backend: &Backend, server: &Server, up: bool) {
    let check = server.check.lock().map(|c| c.clone()).unwrap_or_default();
    report_change(backend, server, up, &check_reason(backend, &check));
}

/// `, reason: ...` of a check's (or an agent's) result, as a change of state it made is
/// logged; nothing with `option log-health-checks` (the check's outcome was just logged:
/// HAProxy does not repeat it).
pub fn check_reason(backend: &Backend, check: &super::state::CheckResult) -> String {
    if backend.conf.options.log_health_checks {
        String::new()
    } else {
        format!(", {}", check_outcome(check))
    }
}

/// A server's operational state (UP, NOLB, DOWN) and its backend's before a check or an
/// operator changed its health, for [`report_health`].
#[derive(Debug, Clone, Copy)]
pub struct HealthBefore {
    up: bool,
    stopping: bool,
    backend_up: bool,
}

impl HealthBefore {
    pub fn of(backend: &Backend, server: &Server) -> Self {
        HealthBefore {
            up: server.is_up(),
            stopping: server.is_stopping(),
            backend_up: backend.is_up(),
        }
    }
}

/// Logs the server's change of operational state since `before`, as HAProxy's
/// `srv_update_status`: `is stopping` into NOLB (from UP or DOWN), `is UP` out of it,
/// `is DOWN`, each with `why` after it (`, reason: ...`, `, changed from CLI`); a backend
/// that balanced to a server before and has none left adds the alert (a NOLB server going
/// DOWN leaves nothing newly lost). The change as HAProxy's `on-marked-down|up` see it:
/// Some(false) gone DOWN, Some(true) UP and taking connections again, None for no change
/// or one into NOLB.
pub fn report_health(
    backend: &Backend,
    server: &Server,
    before: HealthBefore,
    why: &str,
) -> Option<bool> {
    let (up, stopping) = (server.is_up(), server.is_stopping());
    if (up, stopping) == (before.up, before.stopping) {
        return None;
    }
    if stopping {
        let name = server_named(backend, server);
        let counts = servers_online(backend);
        warn(
            backend,
            log::LOG_NOTICE,
            &format!("{name}is stopping{why}{counts}"),
        );
        remind_drain(backend, server);
    } else {
        announce(backend, server, up, why, before.stopping);
    }
    if up && before.up {
        // Into NOLB or out of it: the servers tracking it follow.
        super::track::follow_stopping(server, stopping);
    }
    if before.backend_up {
        report_if_none_left(backend);
    }
    (!stopping).then_some(up)
}

/// Logs a server gone UP or DOWN, `why` after the state (`, reason: ...`, `, changed from
/// CLI`), then the servers left.
pub fn report_change(backend: &Backend, server: &Server, up: bool, why: &str) {
    announce(backend, server, up, why, false);
    if !up && counted_when_up(server) {
        report_if_none_left(backend);
    }
}

/// Whether the server (gone DOWN or into maintenance just now) took new connections before:
/// HAProxy alerts that a backend has no server left only when its count of usable servers
/// went to 0, and a drained server (forced or inherited, or one of weight 0) was never
/// counted. (Going DOWN ended any NOLB: its balancing weight is the one it had.)
fn counted_when_up(server: &Server) -> bool {
    server.lb_weight() > 0
}

/// `Server B/S is UP|DOWN` with `why` and the servers online or left, at HAProxy's level
/// (see [`down_level`]; `was_stopping`: it was NOLB before going DOWN).
fn announce(backend: &Backend, server: &Server, up: bool, why: &str, was_stopping: bool) {
    let event = format!("is {}{why}", if up { "UP" } else { "DOWN" });
    let counts = if up {
        servers_online(backend)
    } else {
        servers_left(backend, server)
    };
    let level = if up {
        log::LOG_NOTICE
    } else {
        down_level(server, was_stopping)
    };
    warn(
        backend,
        level,
        &format!("{}{event}{counts}", server_named(backend, server)),
    );
    remind_drain(backend, server);
}

/// The level of a server's `is DOWN`: HAProxy's `srv_update_status` sends no alert for a
/// server that took no new traffic anyway, NOLB (`was_stopping`) or drained, only a notice.
fn down_level(server: &Server, was_stopping: bool) -> u8 {
    if was_stopping || server.is_draining() {
        log::LOG_NOTICE
    } else {
        log::LOG_ALERT
    }
}

/// A step of a server's slow start (HAProxy's warm-up task recomputing its weight): a
/// drained server is reminded of its drain each time.
pub fn report_warming_step(backend: &Backend, server: &Server) {
    remind_drain(backend, server);
}

/// HAProxy's reminder each time `srv_update_status` recomputes a drained server's status
/// without an admin change: its operational state changed (UP, DOWN, stopping, by its
/// checks, its agent, the server it tracks, the CLI), a step of its slow start, its weight
/// set; the operator's drain still holds. (Not for what leaves the status as it is: the
/// checks or the agent enabled or disabled, a drain asked again.)
fn remind_drain(backend: &Backend, server: &Server) {
    if server.admin() == Admin::Drain {
        let name = server_named(backend, server);
        warn(
            backend,
            log::LOG_NOTICE,
            &format!("{name}remains in forced drain mode."),
        );
    }
}

/// Logs a tracking server going into NOLB (`stopping`) or back UP with the server it tracks.
pub fn report_tracked_stopping(backend: &Backend, server: &Server, stopping: bool) {
    let via = super::track::tracked_name(backend, server).unwrap_or_default();
    let event = if stopping { "stopping" } else { "UP" };
    let name = server_named(backend, server);
    let counts = servers_online(backend);
    warn(
        backend,
        log::LOG_NOTICE,
        &format!("{name}is {event} via {via}{counts}"),
    );
    remind_drain(backend, server);
}

/// Logs a tracking server's change of state, following the server it tracks (`track`).
pub fn report_tracked(backend: &Backend, server: &Server, up: bool) {
    let via = super::track::tracked_name(backend, server).unwrap_or_default();
    let (level, event, counts) = if up {
        (log::LOG_NOTICE, "UP", servers_online(backend))
    } else {
        (
            down_level(server, false),
            "DOWN",
            servers_left(backend, server),
        )
    };
    let name = server_named(backend, server);
    warn(
        backend,
        level,
        &format!("{name}is {event} via {via}{counts}"),
    );
    remind_drain(backend, server);
    if !up && counted_when_up(server) {
        report_if_none_left(backend);
    }
}

/// Logs a tracking server entering or leaving the maintenance of the server it tracks
/// (HAProxy's IMAINT), as HAProxy words it.
pub fn report_inherited_maint(
    backend: &Backend,
    server: &Server,
    entered: bool,
    cause: Option<&str>,
) {
    let name = server_named(backend, server);
    if !entered {
        let state = match (server.is_up(), server.is_draining()) {
            (false, _) => "DOWN",
            (true, true) => "UP/DRAIN",
            (true, false) => "UP/READY",
        };
        warn(
            backend,
            log::LOG_NOTICE,
            &format!("{name}is {state} (leaving maintenance)."),
        );
        if server.is_up() && server.admin() == Admin::Ready && server.in_inherited_drain() {
            // HAProxy's words when the drain it inherits came with the end of maintenance.
            let via = super::track::tracked_name(backend, server).unwrap_or_default();
            let line =
                format!("{name}is leaving forced drain but remains in drain mode via {via}.");
            warn(backend, log::LOG_NOTICE, &line);
        } else if server.is_up() {
            remind_drain(backend, server);
        }
        return;
    }
    let via = super::track::tracked_name(backend, server).unwrap_or_default();
    let cause = cause.map_or_else(String::new, |c| format!(" ({c})"));
    if !server.is_up() {
        let line = format!("{name}was DOWN and now enters maintenance{cause} via {via}.");
        warn(backend, log::LOG_NOTICE, &line);
        return;
    }
    let counts = servers_left(backend, server);
    let line = format!("{name}is going DOWN for maintenance{cause} via {via}{counts}");
    warn(backend, log::LOG_ALERT, &line);
    if counted_when_up(server) {
        report_if_none_left(backend);
    }
}

/// Logs a tracking server in its forced maintenance leaving the one it inherited, as
/// HAProxy's `srv_clr_admin_flag` says it.
pub fn report_still_forced_maint(backend: &Backend, server: &Server) {
    let line = format!(
        "{}remains in forced maintenance.",
        server_named(backend, server)
    );
    warn(backend, log::LOG_NOTICE, &line);
}

/// Logs a tracking server entering or leaving the drain of the server it tracks (HAProxy's
/// IDRAIN), as HAProxy words it: one forced to drain already only remains so. A backend
/// that balanced to a server before (`backend_was_up`) and has none left gets its alert.
pub fn report_inherited_drain(
    backend: &Backend,
    server: &Server,
    entered: bool,
    backend_was_up: bool,
) {
    let name = server_named(backend, server);
    let line = if server.admin() == Admin::Drain {
        format!("{name}remains in forced drain mode.")
    } else if entered {
        let via = super::track::tracked_name(backend, server).unwrap_or_default();
        let counts = if server.is_up() {
            servers_online(backend)
        } else {
            servers_left(backend, server)
        };
        format!("{name}enters drain state via {via}{counts}")
    } else {
        let state = if server.is_up() { "UP" } else { "DOWN" };
        format!("{name}is {state} (leaving forced drain).")
    };
    warn(backend, log::LOG_NOTICE, &line);
    if backend_was_up {
        report_if_none_left(backend);
    }
}

/// Logs an operator's change of the server's admin state from `before` (nothing when it
/// did not change), entering maintenance or drain with its `cause` in parentheses when there
/// is one (HAProxy's `adm_st_chg_cause`: the stats page's legacy actions give one).
pub fn report_admin(backend: &Backend, server: &Server, before: Before, cause: &str) {
    let name = server_named(backend, server);
    let cause = if cause.is_empty() {
        String::new()
    } else {
        format!(" ({cause})")
    };
    let now = server.admin();
    // As HAProxy's `srv_set_admin_flag`/`srv_clr_admin_flag`: in another maintenance (the
    // one it inherits, DNS's), its forced states change silently, but for leaving the
    // forced maintenance, which it says it does not really leave.
    if server.in_inherited_maint() || server.addr().is_none() {
        if before.admin == Admin::Maint && now != Admin::Maint {
            let line = format!("{name}is leaving forced maintenance but remains in maintenance.");
            warn(backend, log::LOG_NOTICE, &line);
        }
        followed_by_trackers(server);
        return;
    }
    let (level, lines): (u8, Vec<String>) = match (before.admin, now) {
        (was, Admin::Maint) if was != Admin::Maint => {
            let level = if was == Admin::Drain {
                log::LOG_NOTICE
            } else {
                log::LOG_ALERT
            };
            if before.down {
                let line = format!("{name}was DOWN and now enters maintenance{cause}.");
                (log::LOG_NOTICE, vec![line])
            } else {
                let counts = servers_left(backend, server);
                (
                    level,
                    vec![format!(
                        "{name}is going DOWN for maintenance{cause}{counts}"
                    )],
                )
            }
        }
        // Still draining with the server it tracks (IDRAIN), as HAProxy says.
        (Admin::Maint, Admin::Ready) if server.in_inherited_drain() => {
            let via = super::track::tracked_name(backend, server).unwrap_or_default();
            (
                log::LOG_NOTICE,
                vec![
                    format!("{name}is UP/DRAIN (leaving forced maintenance)."),
                    format!("{name}is leaving forced drain but remains in drain mode via {via}."),
                ],
            )
        }
        (Admin::Maint, Admin::Ready) => (
            log::LOG_NOTICE,
            vec![format!("{name}is UP/READY (leaving forced maintenance).")],
        ),
        (Admin::Maint, Admin::Drain) => (
            log::LOG_NOTICE,
            vec![
                format!("{name}is UP/DRAIN (leaving forced maintenance)."),
                format!("{name}remains in forced drain mode."),
            ],
        ),
        // As HAProxy: a server DOWN (its checks) that enters drain tells the servers left;
        // one in its slow start whose weight this recomputes is reminded at once.
        (Admin::Ready, Admin::Drain) => {
            let counts = if server.is_up() {
                servers_online(backend)
            } else {
                servers_left(backend, server)
            };
            let mut lines = vec![format!("{name}enters drain state{cause}{counts}")];
            if super::slowstart::step_ahead_on_wall_clock(server) {
                lines.push(format!("{name}remains in forced drain mode."));
            }
            (log::LOG_NOTICE, lines)
        }
        // A server DOWN (by its checks or its agent) says so.
        (Admin::Drain, Admin::Ready) => (
            log::LOG_NOTICE,
            vec![format!(
                "{name}is {} (leaving forced drain).",
                if server.is_up() { "UP" } else { "DOWN" }
            )],
        ),
        _ => return,
    };
    for line in &lines {
        warn(backend, level, line);
    }
    if before.backend_up {
        report_if_none_left(backend);
    }
    followed_by_trackers(server);
}

/// The servers tracking `server` follow its admin state, logged after it. Into
/// maintenance, they enter it first (their drain then changes silently); out of it, they
/// take the drain first, so that they leave maintenance draining, as HAProxy changes both
/// at once. Its resolution maintenance (no address) stays theirs when it leaves another one.
fn followed_by_trackers(server: &Server) {
    let maint = super::track::in_own_maint(server) || server.in_inherited_maint();
    let draining = server.has_admin_flag(AdminFlag::Drain) || server.in_inherited_drain();
    if maint {
        super::track::follow_maint(server, true, None);
        super::track::follow_drain(server, draining);
    } else {
        super::track::follow_drain(server, draining);
        super::track::follow_maint(server, false, None);
    }
}

/// `Server be/s ` or `Backup Server be/s `.
fn server_named(backend: &Backend, server: &Server) -> String {
    let kind = if server.opts.backup {
        "Backup Server"
    } else {
        "Server"
    };
    format!("{kind} {}/{} ", backend.name, server.name)
}

/// HAProxy's tail of a message about a server gone: the servers left, its sessions, and
/// its queue (sent to other servers, left waiting).
fn servers_left(backend: &Backend, server: &Server) -> String {
    let (active, backup) = (backend.active_count(), backend.backup_count());
    let (requeued, remaining) = super::balance::requeue_counts(backend, server);
    format!(
        ". {active} active and {backup} backup servers left.{} {} sessions active, {requeued} requeued, {remaining} remaining in queue.",
        running_on_backup(active, backup),
        server.counters.cur.load(Relaxed)
    )
}

/// HAProxy's tail of a message about a server back or drained: the servers online.
fn servers_online(backend: &Backend) -> String {
    let (active, backup) = (backend.active_count(), backend.backup_count());
    format!(
        ". {active} active and {backup} backup servers online.{} 0 sessions requeued, 0 total in queue.",
        running_on_backup(active, backup)
    )
}

fn running_on_backup(active: usize, backup: usize) -> &'static str {
    if active == 0 && backup > 0 {
        " Running on backup."
    } else {
        ""
    }
}

/// A server's weight was set (`set server ... weight`, `set weight`, an agent's answer),
/// to a new value or the same: HAProxy recomputes the server's status, which reminds a
/// drained server of its drain each time, and a backend that balanced to a server before
/// and has none left now (the weight was 0) gets HAProxy's alert, as any change of a
/// server's state that leaves none.
pub fn report_weight_change(backend: &Backend, server: &Server, backend_was_up: bool) {
    remind_drain(backend, server);
    if backend_was_up {
        report_if_none_left(backend);
    }
}

/// HAProxy's alert when the last usable server of a backend is gone.
fn report_if_none_left(backend: &Backend) {
    if backend.is_up() {
        return;
    }
    backend.down_transitions.fetch_add(1, Relaxed);
    backend.last_change.store(now_secs(), Relaxed);
    // The logs name the backend bare, stderr quotes it: HAProxy's two messages, which
    // call a listen section a proxy.
    let kind = backend.conf.kind.type_str();
    let log_msg = format!("{kind} {} has no server available!", backend.name);
    backend.logger.send(log::LOG_EMERG, &log_msg);
    crate::process::say!(
        "[ALERT]    ({}) : {kind} '{}' has no server available!",
        std::process::id(),
        backend.name
    );
}

fn warn(backend: &Backend, level: u8, msg: &str) {
    backend.logger.send(level, msg);
    crate::process::say!("[WARNING]  ({}) : {msg}", std::process::id());
}

/// Logs a server losing its address to DNS (HAProxy's `SRV_ADMF_RMAINT` set with `cause`,
/// e.g. `DNS NX status`): as any entry into maintenance, `going DOWN` with the servers left
/// (an alert) or `was DOWN and now enters` (a notice), then the backend's alert if none is
/// left. A server in maintenance already (forced or inherited) says nothing, as in HAProxy.
pub fn report_resolution_maint(backend: &Backend, server: &Server, before: Before, cause: &str) {
    if before.admin == Admin::Maint || server.in_inherited_maint() {
        return;
    }
    let name = server_named(backend, server);
    if before.down {
        let line = format!("{name}was DOWN and now enters maintenance ({cause}).");
        warn(backend, log::LOG_NOTICE, &line);
    } else {
        let counts = servers_left(backend, server);
        let line = format!("{name}is going DOWN for maintenance ({cause}){counts}");
        warn(backend, log::LOG_ALERT, &line);
    }
    if before.backend_up {
        report_if_none_left(backend);
    }
    // Its trackers follow it into it (HAProxy's `srv_set_admin_flag` passing IMAINT on with
    // the cause), logged after it.
    super::track::follow_maint(server, true, Some(cause));
}

/// Logs a server given an address by DNS: HAProxy's `changed its IP` (`by` names the
/// nameserver that answered, `dns/NS`, or `DNS cache` for the servers after the first that
/// share the answer), then, when it had none (resolution maintenance), `is UP|DOWN/READY|DRAIN
/// (resolves again)` if that ends its maintenance and `administratively READY thanks to
/// valid DNS answer` in any case; all notices.
pub fn report_resolved(
    backend: &Backend,
    server: &Server,
    old: Option<std::net::IpAddr>,
    new: std::net::IpAddr,
    by: &str,
) {
    let old_text = old.map_or_else(|| "(none)".to_string(), |ip| ip.to_string());
    let line = format!(
        "{}/{} changed its IP from {old_text} to {new} by {by}.",
        backend.name, server.name
    );
    warn(backend, log::LOG_NOTICE, &line);
    if old.is_some() {
        return;
    }
    let name = server_named(backend, server);
    if server.admin() != Admin::Maint && !server.in_inherited_maint() {
        let state = if server.is_up() { "UP" } else { "DOWN" };
        let admin = if server.is_draining() {
            "DRAIN"
        } else {
            "READY"
        };
        let host = server.host();
        let line = format!("{name}('{host}') is {state}/{admin} (resolves again).");
        warn(backend, log::LOG_NOTICE, &line);
        // Out of its only maintenance: its trackers leave the one they inherited.
        super::track::follow_maint(server, false, None);
    }
    let line = format!(
        "Server {}/{} administratively READY thanks to valid DNS answer.",
        backend.name, server.name
    );
    warn(backend, log::LOG_NOTICE, &line);
}
