//! Sessions ended by a server's change of state, as HAProxy's `on-marked-down
//! shutdown-sessions` and `on-marked-up shutdown-backup-sessions` end them: when the checks
//! mark a server DOWN, its established sessions are closed (logged with termination code
//! `D`); when an active server with `on-marked-up` comes UP, every session on the backend's
//! backup servers is closed (code `U`).
//!
//! Cost: only sessions on a server these options concern are registered, each once, on the
//! server's [`KillSwitch`] (a `tokio::sync::Notify`: one short lock when the session starts
//! forwarding and one when it ends); every other session does nothing more than read a bool.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use super::state::{Backend, Server};

/// Why a session was killed: its termination code in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Killed {
    /// Its server went DOWN (`on-marked-down shutdown-sessions`).
    Down,
    /// An active server came UP (`on-marked-up shutdown-backup-sessions` on a backup).
    Up,
}

impl Killed {
    /// The session's termination flags, as HAProxy logs a session it killed.
    pub fn flags(self) -> &'static str {
        match self {
            Killed::Down => "D-",
            Killed::Up => "U-",
        }
    }
}

/// Ends the sessions registered on one server.
#[derive(Debug, Default)]
pub struct KillSwitch {
    /// The reason of the last firing ([`Killed`] as 1 or 2).
    why: AtomicU8,
    fired: tokio::sync::Notify,
}

impl KillSwitch {
    /// Ends every session running in [`KillSwitch::unless_fired`] now.
    pub fn fire(&self, why: Killed) {
        self.why.store(why as u8 + 1, Relaxed);
        self.fired.notify_waiters();
    }

    /// Runs `work` to its end, unless the switch fires first: then `work` is dropped (its
    /// sockets with it) and the reason returned.
    pub async fn unless_fired<F: Future>(&self, work: F) -> Result<F::Output, Killed> {
        // Registered before `work` starts: a firing from then on reaches it.
        let fired = self.fired.notified();
        tokio::pin!(fired);
        fired.as_mut().enable();
        tokio::select! {
            biased;
            () = fired => Err(match self.why.load(Relaxed) {
                2 => Killed::Up,
                _ => Killed::Down,
            }),
            out = work => Ok(out),
        }
    }
}

/// Runs `work` under `kill` when there is one (see [`KillSwitch::unless_fired`]), else to
/// its end.
pub async fn unless_fired<F: Future>(
    kill: Option<&KillSwitch>,
    work: F,
) -> Result<F::Output, Killed> {
    match kill {
        Some(kill) => kill.unless_fired(work).await,
        None => Ok(work.await),
    }
}

/// Whether a session on `server` may be killed by a change of state (see the module's doc):
/// only those run under [`KillSwitch::unless_fired`].
pub fn killable(backend: &Backend, server: &Server) -> bool {
    server.opts.shutdown_on_down || (server.opts.backup && backend.backups_killed_on_up)
}

/// Acts on a server's change of state by its checks (`up`: it came UP).
pub fn on_marked(backend: &Backend, server: &Server, up: bool) {
    if !up {
        if server.opts.shutdown_on_down {
            server.kill.fire(Killed::Down);
        }
        return;
    }
    // As HAProxy: only an active server with a weight takes the traffic back.
    if server.opts.shutdown_backups_on_up && !server.opts.backup && server.lb_weight() > 0 {
        for backup in backend.servers.iter().filter(|s| s.opts.backup) {
            backup.kill.fire(Killed::Up);
        }
    }
}
