//! A server's changes of state, logged in HAProxy 2.6's words and at its levels: UP and DOWN
//! by health checks, and an operator's maintenance and drain (`disable server`, `set server
//! ... state`). Each goes to the backend's log targets and to stderr as a `[WARNING]`; a
//! backend left without a usable server adds HAProxy's alert (`[ALERT]` on stderr, an
//! emergency in the logs).

use std::sync::atomic::Ordering::Relaxed;

use super::log;
use super::state::{Admin, Backend, Server, now_secs};

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
            down: server.opts.check && !server.is_up(),
            backend_up: backend.is_up(),
        }
    }
}

/// Logs a health check's verdict that changed the server's state: the check's status, code
/// and detail, then the servers left.
pub fn report_check(backend: &Backend, server: &Server, up: bool) {
    let check = server.check.lock().map(|c| c.clone()).unwrap_or_default();
    let (reason, info) = check.desc.split_once(": ").unwrap_or((&check.desc, ""));
    let mut why = format!("reason: {reason}");
    if let Some(code) = check.code {
        why.push_str(&format!(", code: {code}"));
    }
    if !info.is_empty() {
        why.push_str(&format!(", info: \"{info}\""));
    }
    let duration = check.duration_ms.unwrap_or(0);
    let event = format!(
        "is {}, {why}, check duration: {duration}ms",
        if up { "UP" } else { "DOWN" }
    );
    let counts = if up {
        servers_online(backend)
    } else {
        servers_left(backend, server)
    };
    let level = if up { log::LOG_NOTICE } else { log::LOG_ALERT };
    warn(
        backend,
        level,
        &format!("{}{event}{counts}", server_named(backend, server)),
    );
    if !up {
        report_if_none_left(backend);
    }
}

/// Logs an operator's change of the server's admin state from `before` (nothing when it
/// did not change).
pub fn report_admin(backend: &Backend, server: &Server, before: Before) {
    let name = server_named(backend, server);
    let now = server.admin();
    let (level, lines): (u8, Vec<String>) = match (before.admin, now) {
        (was, Admin::Maint) if was != Admin::Maint => {
            let level = if was == Admin::Drain {
                log::LOG_NOTICE
            } else {
                log::LOG_ALERT
            };
            if before.down {
                let line = format!("{name}was DOWN and now enters maintenance.");
                (log::LOG_NOTICE, vec![line])
            } else {
                let counts = servers_left(backend, server);
                (
                    level,
                    vec![format!("{name}is going DOWN for maintenance{counts}")],
                )
            }
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
        (Admin::Ready, Admin::Drain) => (
            log::LOG_NOTICE,
            vec![format!(
                "{name}enters drain state{}",
                servers_online(backend)
            )],
        ),
        (Admin::Drain, Admin::Ready) => (
            log::LOG_NOTICE,
            vec![format!("{name}is UP (leaving forced drain).")],
        ),
        _ => return,
    };
    for line in &lines {
        warn(backend, level, line);
    }
    if before.backend_up {
        report_if_none_left(backend);
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

/// HAProxy's tail of a message about a server gone: the servers left and its sessions.
fn servers_left(backend: &Backend, server: &Server) -> String {
    let (active, backup) = (backend.active_count(), backend.backup_count());
    format!(
        ". {active} active and {backup} backup servers left.{} {} sessions active, 0 requeued, 0 remaining in queue.",
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

/// HAProxy's alert when the last usable server of a backend is gone.
fn report_if_none_left(backend: &Backend) {
    if backend.is_up() {
        return;
    }
    backend.down_transitions.fetch_add(1, Relaxed);
    backend.last_change.store(now_secs(), Relaxed);
    // The logs name the backend bare, stderr quotes it: HAProxy's two messages.
    let log_msg = format!("backend {} has no server available!", backend.name);
    backend.logger.send(log::LOG_EMERG, &log_msg);
    eprintln!(
        "[ALERT]    ({}) : backend '{}' has no server available!",
        std::process::id(),
        backend.name
    );
}

fn warn(backend: &Backend, level: u8, msg: &str) {
    backend.logger.send(level, msg);
    eprintln!("[WARNING]  ({}) : {msg}", std::process::id());
}
