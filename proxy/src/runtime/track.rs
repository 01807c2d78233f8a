//! `track [<backend>/]<server>`: a server without checks of its own takes the UP/DOWN state
//! of the server it tracks, as HAProxy 2.6 does: when the tracked server's checks change its
//! state, every server tracking it (and every one tracking those, down the chain) changes
//! too, logged `Server be/s is DOWN via be2/c.` with the servers left, its
//! `on-marked-down`/`on-marked-up` actions applied. NOLB (stopping) passes down the chain
//! too, and back to UP ([`follow_stopping`]): `... is stopping via be/s.`. Maintenance
//! passes down the chain the same way (HAProxy's inherited IMAINT, [`follow_maint`]): a
//! tracker is shown `MAINT (via be/s)`, admin state 2 in `show servers state`, takes no
//! traffic, and says so (`... is going DOWN for maintenance via be/s.`, `... is UP/READY
//! (leaving maintenance).`). Drain passes down too ([`follow_drain`], HAProxy's IDRAIN). The
//! configuration check refuses what HAProxy refuses (a missing proxy or server, a tracked
//! server without checks, a loop).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use super::state::{Admin, AdminFlag, Backend, Server};
use super::{shutdown, transitions};

/// A server tracking another, and its backend.
#[derive(Debug)]
pub struct Tracker {
    backend: Weak<Backend>,
    server: Weak<Server>,
}

/// Fills each tracked server's list of trackers, once, when the state is built.
pub fn link(backends: &[Arc<Backend>]) {
    let all = || {
        backends
            .iter()
            .flat_map(|be| be.servers.iter().map(move |sv| (be, sv)))
    };
    for (tb, target) in all() {
        let followers: Vec<_> = all()
            .filter(|(b, s)| tracked(b, s) == Some((&*tb.name, &*target.name)))
            .collect();
        for (_, s) in &followers {
            let _ = s.tracking.set(Arc::downgrade(target));
        }
        // HAProxy links each new tracker at the head of the list: the last declared is told
        // first.
        let trackers = followers
            .into_iter()
            .rev()
            .map(|(b, s)| Tracker {
                backend: Arc::downgrade(b),
                server: Arc::downgrade(s),
            })
            .collect();
        let _ = target.trackers.set(trackers);
    }
    inherit_configured_maint(backends);
}

/// The servers tracking `server` enter or leave maintenance with it (`maint`), down the
/// chain, as HAProxy's inherited maintenance (IMAINT): shown `MAINT (via be/s)`, given no
/// traffic, logged `... is going DOWN for maintenance via be/s.` (with the `cause` of the
/// maintenance that started it, as DNS's `(DNS NX status)`; its sessions ended by its own
/// `on-marked-down shutdown-sessions`), then `... is UP/READY (leaving maintenance).`
pub fn follow_maint(server: &Server, maint: bool, cause: Option<&str>) {
    for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
        let (Some(backend), Some(tracker)) = (t.backend.upgrade(), t.server.upgrade()) else {
            continue;
        };
        // A chain inherits it whole: a tracker in a maintenance of its own passes it on too.
        let inherits = maint || in_own_maint(&tracker);
        if !tracker.set_inherited_maint(maint) {
            continue;
        }
        if !in_own_maint(&tracker) {
            transitions::report_inherited_maint(&backend, &tracker, maint, cause);
            if maint {
                shutdown::on_marked(&backend, &tracker, false);
            }
        } else if !maint && tracker.admin() == Admin::Maint {
            transitions::report_still_forced_maint(&backend, &tracker);
        }
        follow_maint(&tracker, inherits, cause);
    }
}

/// Whether `server` is in a maintenance of its own, which its trackers inherit: forced
/// (`disabled`, `set server ... state maint`) or DNS's resolution maintenance (RMAINT, no
/// address).
pub fn in_own_maint(server: &Server) -> bool {
    server.admin() == Admin::Maint || server.addr().is_none()
}

/// At start-up, the servers tracking `server`, which starts in the resolution maintenance
/// (`init-addr none`), inherit it silently, down the chain, as HAProxy's `srv_init_addr`
/// passes it on.
pub fn inherit_start_maint(server: &Server) {
    for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
        if let Some(tracker) = t.server.upgrade() {
            if tracker.set_inherited_maint(true) {
                inherit_start_maint(&tracker);
            }
        }
    }
}

/// The servers tracking `server` enter or leave its drain (`drain`), down the chain, as
/// HAProxy's inherited drain (IDRAIN): weight 0 for the balancer, shown `DRAIN`, admin
/// state 16 in `show servers state`, logged `... enters drain state via be/s.` and `... is
/// UP (leaving forced drain).`; one forced to drain already `remains in forced drain mode`
/// (and passes the drain on), one in maintenance changes silently.
pub fn follow_drain(server: &Server, drain: bool) {
    for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
        let (Some(backend), Some(tracker)) = (t.backend.upgrade(), t.server.upgrade()) else {
            continue;
        };
        let backend_was_up = backend.is_up();
        if !tracker.set_inherited_drain(drain) {
            continue;
        }
        if tracker.admin() != Admin::Maint && !tracker.in_inherited_maint() {
            transitions::report_inherited_drain(&backend, &tracker, drain, backend_was_up);
        }
        follow_drain(&tracker, drain || tracker.has_admin_flag(AdminFlag::Drain));
    }
}

/// The maintenance of the servers `disabled` in the configuration passes to the servers
/// tracking them, unlogged, as the proxy starts.
fn inherit_configured_maint(backends: &[Arc<Backend>]) {
    fn pass_on(server: &Server) {
        for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
            if let Some(tracker) = t.server.upgrade() {
                tracker.set_inherited_maint(true);
                pass_on(&tracker);
            }
        }
    }
    for server in backends.iter().flat_map(|b| b.servers.iter()) {
        if server.admin() == Admin::Maint {
            pass_on(server);
        }
    }
}

/// Whether the server `server` tracks is UP (true when it tracks none).
pub fn tracked_is_up(server: &Server) -> bool {
    server
        .tracking
        .get()
        .and_then(std::sync::Weak::upgrade)
        .is_none_or(|t| t.is_up())
}

/// The servers tracking `server` (UP ones) follow it into NOLB (`stopping`) or out of it,
/// down the chain, one after the other as HAProxy's `srv_set_stopping` and
/// `srv_set_running`: each logged (`... is stopping via be/s.`, `... is UP via be/s.`, not
/// in maintenance) before the next one changes.
pub fn follow_stopping(server: &Server, stopping: bool) {
    for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
        let (Some(backend), Some(tracker)) = (t.backend.upgrade(), t.server.upgrade()) else {
            continue;
        };
        let changed = tracker.transition(|| {
            let changed = tracker.is_up() && tracker.is_stopping() != stopping;
            if changed {
                tracker.set_stopping(stopping);
            }
            changed
        });
        if !changed {
            continue;
        }
        if tracker.admin() != Admin::Maint && !tracker.in_inherited_maint() {
            transitions::report_tracked_stopping(&backend, &tracker, stopping);
        }
        follow_stopping(&tracker, stopping);
    }
}

/// The server `server`'s chain of `track` ends at, whose checks decide it (None when it
/// tracks none).
pub fn checked(server: &Server) -> Option<Arc<Server>> {
    let mut end = server.tracking.get().and_then(Weak::upgrade)?;
    while let Some(next) = end.tracking.get().and_then(Weak::upgrade) {
        end = next;
    }
    Some(end)
}

/// The (backend, server) `server` of `backend` tracks.
pub fn tracked<'a>(backend: &'a Backend, server: &'a Server) -> Option<(&'a str, &'a str)> {
    let (proxy, name) = server.opts.track.as_ref()?;
    Some((proxy.as_deref().unwrap_or(&backend.name), name))
}

/// `be/s`, as the stats page's `tracked` column and the messages name a tracked server.
pub fn tracked_name(backend: &Backend, server: &Server) -> Option<String> {
    tracked(backend, server).map(|(b, s)| format!("{b}/{s}"))
}

/// The servers tracking `server` follow it into the state it is in now, down the chain.
/// The state is read under `server`'s transition lock, each tracker's changed under its
/// own (taken after, as `Server::transition` orders them): of a check's result and an
/// operator's command changing `server` at once, the one following last applies the state
/// `server` ended in, not the one its caller saw before the other changed it.
pub fn follow(server: &Server) {
    for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
        let (Some(backend), Some(tracker)) = (t.backend.upgrade(), t.server.upgrade()) else {
            continue;
        };
        // As HAProxy: a server in maintenance (its own or the one it inherits) changes
        // silently, and so do the servers tracking it; it comes out of it in the state it
        // follows.
        let quiet = tracker.admin() == Admin::Maint || tracker.in_inherited_maint();
        let changed = server.transition(|| {
            tracker.transition(|| {
                let up = server.is_up();
                if tracker.is_up() == up {
                    return None;
                }
                // Coming UP into NOLB with it (set first: never seen taking connections).
                if up {
                    tracker.set_stopping(server.is_stopping());
                }
                if quiet {
                    tracker.up.store(up, Relaxed);
                } else {
                    tracker.set_up(up);
                }
                Some(up)
            })
        });
        let Some(up) = changed else {
            continue;
        };
        if !quiet {
            transitions::report_tracked(&backend, &tracker, up);
            shutdown::on_marked(&backend, &tracker, up);
        }
        follow(&tracker);
    }
}

#[cfg(test)]
mod tests {
    use super::follow;

    /// A check takes `a` DOWN and, before it lets `b` follow, an operator brings `a` back UP
    /// and lets `b` follow first: the check's late `follow` leaves `b` in the state `a` is in
    /// (UP), where acting on what the check saw would take it DOWN behind an UP `a`.
    #[test]
    fn a_late_follow_applies_the_tracked_servers_current_state() {
        let state = super::super::checks::loaded_state(
            "backend be\n  server a 127.0.0.1:1 check\n  server b 127.0.0.1:1 track a\n",
        );
        let be = state.backend("be").expect("backend be");
        let (a, b) = (&be.servers[0], &be.servers[1]);
        assert!(a.is_up() && b.is_up());
        a.transition(|| a.set_up(false));
        a.transition(|| a.set_up(true));
        follow(a);
        assert!(b.is_up());
        follow(a);
        assert!(a.is_up() && b.is_up(), "b follows a into the state a is in");
        // A change followed is followed.
        a.transition(|| a.set_up(false));
        follow(a);
        assert!(!b.is_up());
    }
}
