//! `track [<backend>/]<server>`: a server without checks of its own takes the UP/DOWN state
//! of the server it tracks, as HAProxy 2.6 does: when the tracked server's checks change its
//! state, every server tracking it (and every one tracking those, down the chain) changes
//! too, logged `Server be/s is DOWN via be2/c.` with the servers left, its
//! `on-marked-down`/`on-marked-up` actions applied. The configuration check refuses what
//! HAProxy refuses (a missing proxy or server, a tracked server without checks, a loop).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use super::state::{Admin, Backend, Server};
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
        let trackers = all()
            .filter(|(b, s)| tracked(b, s) == Some((&*tb.name, &*target.name)))
            .map(|(b, s)| Tracker {
                backend: Arc::downgrade(b),
                server: Arc::downgrade(s),
            })
            .collect();
        let _ = target.trackers.set(trackers);
    }
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

/// The servers tracking `server` follow it, now `up` or not (down the chain).
pub fn follow(server: &Server, up: bool) {
    for t in server.trackers.get().map_or(&[][..], Vec::as_slice) {
        let (Some(backend), Some(tracker)) = (t.backend.upgrade(), t.server.upgrade()) else {
            continue;
        };
        if tracker.is_up() == up {
            continue;
        }
        if tracker.admin() == Admin::Maint {
            // As HAProxy: a server in maintenance changes silently; it comes out of it in the
            // state it follows.
            tracker.up.store(up, Relaxed);
            continue;
        }
        tracker.set_up(up);
        transitions::report_tracked(&backend, &tracker, up);
        shutdown::on_marked(&backend, &tracker, up);
        follow(&tracker, up);
    }
}
