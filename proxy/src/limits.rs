//! File descriptors, HAProxy 2.6's way: how many the configuration needs (`maxsock`), the
//! `maxconn` derived from the open-files limit when the configuration sets none, and raising
//! `RLIMIT_NOFILE` to what is needed (or to `ulimit-n`) before anything is bound.
//!
//! HAProxy's sums (haproxy.c `compute_ideal_maxconn`, `compute_ideal_maxsock`,
//! `compute_ideal_maxpipes`): a fixed reserve, the listening sockets, one per runtime API
//! socket and per health-checked server, three per thread (poller and wake-up pipe), two per
//! connection, and two per pipe when splicing (`maxpipes` = `maxconn`/4). hapx splices unless
//! `nosplice` is set, so it counts pipes as HAProxy does under `option splice-auto`, and it
//! counts its listening sockets as it really holds them: one per thread per address (each
//! thread accepts on its own `SO_REUSEPORT` socket), each kept twice (the accepting thread's
//! copy and the one handed over on reload).
//!
//! Without `maxconn`, the connections are what the larger of the soft and hard limits at
//! start leaves (at least 100). The soft limit is then raised to `maxsock` (or set to
//! `ulimit-n`), the hard one too when it is lower and the process may (root). As HAProxy 2.6
//! does by default (`strict-limits`), a limit that cannot be set, or that stays below
//! `maxsock`, is an alert and the process exits 1; with `no strict-limits` the limit goes as
//! high as allowed, with a warning (and an alert if `maxsock` still does not fit).

use std::io;

use crate::config::model::Config;

/// HAProxy's descriptors kept for the process itself (standard streams, logs, the poller's
/// own needs...): `global.maxsock = 10` at start, and ten more in its listener setup.
const RESERVED: usize = 20;
/// Each thread: its poller, and a wake-up pipe (HAProxy) or eventfd plus spare (tokio).
const PER_THREAD: usize = 3;
/// HAProxy's DEFAULT_MAXCONN: the least `maxconn` ever derived from the limit.
const DEFAULT_MAXCONN: usize = 100;

/// The open-files limits (soft, hard) of this process.
pub fn current() -> io::Result<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((l.rlim_cur, l.rlim_max))
}

fn set(soft: u64, hard: u64) -> io::Result<()> {
    let l = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What the configuration needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Connections served at once (global `maxconn`, or derived from the limit).
    pub maxconn: usize,
    /// Splice pipes kept at most (0 when not splicing).
    pub maxpipes: usize,
    /// Descriptors needed in all.
    pub maxsock: usize,
}

impl Budget {
    /// The budget of `config` run with `threads` threads, `splice` on or off, when the process
    /// started with the open-files limits `boot` (soft, hard).
    pub fn plan(config: &Config, threads: usize, splice: bool, boot: (u64, u64)) -> Budget {
        let fixed = fixed_sockets(config, threads);
        let maxconn = config
            .global
            .maxconn
            .unwrap_or_else(|| ideal_maxconn(fixed, splice, boot));
        let maxpipes = if splice { pipes_for(maxconn) } else { 0 };
        // A huge `maxconn` (HAProxy's `-c` takes any) saturates instead of wrapping: no limit
        // can then be raised that far, which `apply` reports as HAProxy does.
        let maxsock = fixed
            .saturating_add(maxconn.saturating_mul(2))
            .saturating_add(maxpipes.saturating_mul(2));
        Budget {
            maxconn,
            maxpipes,
            maxsock,
        }
    }
}

/// Descriptors needed whatever the traffic: the reserve, listeners, runtime API sockets,
/// health checks, threads.
fn fixed_sockets(config: &Config, threads: usize) -> usize {
    let addresses: usize = config
        .proxies
        .iter()
        .filter(|p| p.kind.is_frontend() && !p.disabled)
        .map(|p| p.binds.len())
        .sum();
    let checks = config
        .proxies
        .iter()
        .filter(|p| p.kind.is_backend())
        .flat_map(|p| &p.servers)
        .filter(|s| s.opts.check)
        .count();
    RESERVED
        + 2 * threads * addresses
        + config.global.stats_sockets.len()
        + checks
        + PER_THREAD * threads
}

/// HAProxy's `compute_ideal_maxpipes` once `maxconn` is known: a quarter of the connections.
fn pipes_for(maxconn: usize) -> usize {
    if maxconn >= 4 { maxconn / 4 } else { maxconn }
}

/// HAProxy's `compute_ideal_maxconn`: what the larger limit leaves, two descriptors per
/// connection, plus half a descriptor more per connection when splicing (a pipe for every
/// fourth).
fn ideal_maxconn(fixed: usize, splice: bool, (soft, hard): (u64, u64)) -> usize {
    let limit = usize::try_from(soft.max(hard)).unwrap_or(usize::MAX);
    let remain = limit.saturating_sub(fixed);
    // An unlimited limit (RLIM_INFINITY) must not overflow `2 * remain`.
    let maxconn = if splice {
        remain / 5 * 2 + remain % 5 * 2 / 5
    } else {
        remain / 2
    };
    maxconn.max(DEFAULT_MAXCONN)
}

/// Why the limit could not be applied: HAProxy's alert text, after `[ARGV0.main()] `.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("Cannot raise FD limit to {wanted}, limit is {limit}.")]
    CannotRaise { wanted: u64, limit: u64 },
    #[error(
        "FD limit ({limit}) too low for maxconn={maxconn}/maxsock={maxsock}. Please raise 'ulimit-n' to {maxsock} or more to avoid any trouble."
    )]
    TooLow {
        limit: u64,
        maxconn: usize,
        maxsock: usize,
    },
}

/// A limit problem the process reports and goes on with (`no strict-limits`).
#[derive(Debug)]
pub enum Notice {
    Warning(LimitError),
    Alert(LimitError),
}

/// Sets the soft open-files limit to `ulimit_n` (global `ulimit-n`), else to the budget's
/// `maxsock`, raising the hard limit with it when needed (only root may); then checks that
/// `maxsock` fits. With `strict` (HAProxy 2.6's default) any failure is the error; without,
/// the limit goes as high as allowed and the failures come back as notices.
pub fn apply(
    budget: &Budget,
    ulimit_n: Option<u64>,
    boot: (u64, u64),
    strict: bool,
) -> Result<Vec<Notice>, LimitError> {
    let mut notices = Vec::new();
    let wanted = ulimit_n.filter(|&n| n > 0).unwrap_or(budget.maxsock as u64);
    if set(wanted, boot.1.max(wanted)).is_err() {
        let (soft, hard) = current().unwrap_or(boot);
        if strict {
            return Err(LimitError::CannotRaise {
                wanted,
                limit: soft,
            });
        }
        // At least as high as allowed.
        let _ = set(hard, hard);
        let limit = current().map_or(soft, |l| l.0);
        notices.push(Notice::Warning(LimitError::CannotRaise { wanted, limit }));
    }
    let limit = current().map_or(wanted, |l| l.0);
    if limit < budget.maxsock as u64 {
        let low = LimitError::TooLow {
            limit,
            maxconn: budget.maxconn,
            maxsock: budget.maxsock,
        };
        if strict {
            return Err(low);
        }
        notices.push(Notice::Alert(low));
    }
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_maxconn_follows_haproxy_arithmetic() {
        // HAProxy 2.6, 2 threads, one bind, a stats socket, limit 1024: maxconn 498, and 398
        // with splice-auto. hapx holds 3 more listening descriptors (2 threads, 2 copies).
        let fixed = RESERVED + 2 * 2 + 1 + 3 * 2;
        assert_eq!(ideal_maxconn(fixed - 3, false, (1024, 1024)), 498);
        assert_eq!(ideal_maxconn(fixed - 3, true, (1024, 1024)), 398);
        // The larger of soft and hard counts.
        assert_eq!(ideal_maxconn(fixed - 3, false, (256, 20000)), 9986);
        // Never below HAProxy's default.
        assert_eq!(ideal_maxconn(fixed, false, (64, 64)), DEFAULT_MAXCONN);
    }

    #[test]
    fn huge_limits_and_maxconn_saturate_instead_of_wrapping() {
        let mut config = Config::default();
        config.global.maxconn = Some(9_223_372_036_854_775_807);
        let b = Budget::plan(&config, 2, true, (1024, 1024));
        assert_eq!(b.maxsock, usize::MAX);
        config.global.maxconn = None;
        let b = Budget::plan(&config, 2, true, (u64::MAX, u64::MAX));
        assert!(b.maxconn > 1 << 60, "{b:?}");
    }

    #[test]
    fn pipes_are_a_quarter_of_the_connections() {
        assert_eq!(pipes_for(2000), 500);
        assert_eq!(pipes_for(3), 3);
    }
}
