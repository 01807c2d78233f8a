//! File descriptors, HAProxy 2.6's way: how many the configuration needs (`maxsock`), the
//! `maxconn` derived from the open-files limit when the configuration sets none, the splice
//! pipes (`maxpipes`), and raising `RLIMIT_NOFILE` before anything is bound.
//!
//! HAProxy's sums (haproxy.c `compute_ideal_maxconn`, the `global.maxsock` additions in
//! `init`, `compute_ideal_maxpipes`): a fixed reserve of 10, one per listening socket (the
//! frontends' binds, each `stats socket`, a master-worker's worker link), one per
//! health-checked server and two per agent check, the runtime API frontend's `maxconn`
//! (`stats maxconn`, 10 by default) when it exists (any `stats socket`, `stats timeout` or
//! `stats maxconn` line, or a worker of a master), three per thread (poller and wake-up
//! pipe), two per connection, and two per pipe. The pipes are a quarter of the connections
//! of the proxies with an `option splice-*` (none without such an option, and then hapx
//! copies instead of splicing, as HAProxy does); global `maxpipes` sets them. `show info`
//! reports these.
//!
//! hapx holds some descriptors HAProxy does not: one listening socket per thread per address
//! (each thread accepts on its own `SO_REUSEPORT` socket), each kept twice (the accepting
//! thread's copy and the one handed over on reload), and four per thread (two pollers, an
//! eventfd, a wake-up socket); its own base (standard streams, the hand-over channel, the
//! signal socket pair) is smaller than HAProxy's reserve. Measured idle: 8 + 4 per thread +
//! 2 per thread per address + one per runtime API socket; a worker has its master link
//! too. Beside those it may hold one descriptor per health check and one per agent check
//! (both at once), per log target of each proxy's logger (a syslog socket), and per server
//! resolved at run time (a resolver's query socket), and its runtime API sessions (as
//! HAProxy). So hapx often needs a few more than HAProxy counts: already with two threads
//! and one address (8 + 4 + 8 = 20 against HAProxy's 10 + 1 + 6 = 17).
//!
//! Users compare the figures with HAProxy's and size their limits by them, so every figure
//! is HAProxy's: `maxconn` derived from HAProxy's count only, `Maxsock`, `Ulimit-n`, and
//! the checks and messages below. hapx's extra is covered apart: once HAProxy's limit is
//! in place, the soft limit is raised further to what hapx needs at `maxconn` (`fd_limit`),
//! as far as the hard limit allows, silently (HAProxy would start and say nothing). Only
//! when the hard limit leaves no room for that extra may the last few connections near
//! `maxconn` meet EMFILE, which pauses the listener as in HAProxy (`runtime::accept_failed`).
//!
//! Without `maxconn`, the connections are what the larger of the soft and hard limits at
//! start leaves (at least 100). The soft limit is then raised to `maxsock` (or to
//! `ulimit-n`), never lowered, the hard one too when it is lower and the process may. As
//! HAProxy 2.6 does by default (`strict-limits`), a limit that cannot be raised is an alert
//! and the process exits 1, and so is a resulting limit below `maxsock` (an explicit
//! `ulimit-n` lower than `maxsock` is fine while the process's limit is high enough: HAProxy
//! never lowers it); with `no strict-limits` the limit goes as high as allowed, with a
//! warning (and an alert if `maxsock` still does not fit).

use std::io;

use crate::config::model::{Config, LogDest, ProxyKind};

/// HAProxy's descriptors kept for the process itself (standard streams, logs, the poller's
/// own needs...): `global.maxsock = 10` at start.
const RESERVED: usize = 10;
/// The connections of HAProxy's runtime API frontend (`cli_fe->maxconn`) unless `stats
/// maxconn` says otherwise, added to `maxsock` when that frontend exists (measured, one
/// bind, 2 threads, `maxconn 20`: 57 without one, 68 with a `stats socket`, 67 with only
/// `stats timeout`, 61 with `stats socket` and `stats maxconn 3`).
pub const CLI_MAXCONN: usize = 10;
/// HAProxy's per thread: its poller and a wake-up pipe.
const PER_THREAD: usize = 3;
/// hapx's own base, measured: standard streams, the listeners' hand-over channel, the
/// signal socket pair, and one inherited descriptor.
const HAPX_BASE: usize = 8;
/// hapx's per thread, measured: two pollers (tokio's and the accept loop's), an eventfd, a
/// wake-up socket.
const HAPX_PER_THREAD: usize = 4;
/// HAProxy's DEFAULT_MAXCONN: the least `maxconn` ever derived from the limit.
const DEFAULT_MAXCONN: usize = 100;

/// HAProxy's `rlimit_nofile` (`show info`'s `Ulimit-n`): `ulimit-n`, else `maxsock`; the
/// process's own when lower (a limit that could not be raised). Never hapx's `fd_limit`.
pub fn reported(ulimit_n: Option<u64>, maxsock: usize) -> u64 {
    let asked = ulimit_n.filter(|&n| n > 0).unwrap_or(maxsock as u64);
    current().map_or(asked, |(soft, _)| asked.min(soft))
}

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
    /// Splice pipes kept at most (HAProxy's `maxpipes`).
    pub maxpipes: usize,
    /// Descriptors needed in all, as HAProxy counts them (`show info`'s `Maxsock`).
    pub maxsock: usize,
    /// The open-files limit hapx needs: `maxsock`, or more when hapx holds more than
    /// HAProxy counts (raised to as far as allowed, never reported: see the module doc).
    pub fd_limit: usize,
}

impl Budget {
    /// The budget of `config` run with `threads` threads, `splice` on or off (`nosplice`),
    /// as a master's `worker` or not, when the process started with the open-files limits
    /// `boot` (soft, hard).
    pub fn plan(
        config: &Config,
        threads: usize,
        splice: bool,
        worker: bool,
        boot: (u64, u64),
    ) -> Budget {
        let theirs = haproxy_fixed(config, threads, worker);
        let ours = hapx_fixed(config, threads, worker);
        // From HAProxy's count alone, so that it is HAProxy's figure (see the module doc).
        let maxconn = config.global.maxconn.unwrap_or_else(|| {
            let pipes = config
                .global
                .maxpipes
                .map_or_else(|| ideal_pipes(config, None), Some);
            ideal_maxconn(theirs, pipes, boot)
        });
        let maxpipes = config
            .global
            .maxpipes
            .or_else(|| ideal_pipes(config, Some(maxconn)))
            .unwrap_or(maxconn);
        // A huge `maxconn` (HAProxy's `-c` takes any) saturates instead of wrapping: no limit
        // can then be raised that far, which `apply` reports as HAProxy does.
        let with = |fixed: usize, pipes: usize| {
            fixed
                .saturating_add(maxconn.saturating_mul(2))
                .saturating_add(pipes.saturating_mul(2))
        };
        let maxsock = with(theirs, maxpipes);
        let needed = with(ours, if splice { maxpipes } else { 0 });
        Budget {
            maxconn,
            maxpipes,
            maxsock,
            fd_limit: maxsock.max(needed),
        }
    }
}

/// The listening addresses of the enabled frontends.
fn addresses(config: &Config) -> usize {
    config
        .proxies
        .iter()
        .filter(|p| p.kind.is_frontend() && !p.disabled)
        .map(|p| p.binds.len())
        .sum()
}

/// The servers of the backends (a `listen` counts once).
fn servers(config: &Config) -> impl Iterator<Item = &crate::config::model::Server> {
    config
        .proxies
        .iter()
        .filter(|p| p.kind.is_backend())
        .flat_map(|p| &p.servers)
}

/// Health-checked servers and servers with an agent check.
fn checks_and_agents(config: &Config) -> (usize, usize) {
    let checks = servers(config).filter(|s| s.opts.check).count();
    let agents = servers(config).filter(|s| s.opts.agent.enabled).count();
    (checks, agents)
}

/// HAProxy's descriptors needed whatever the traffic: the reserve, one per listening
/// address, one per health check, two per agent check (HAProxy 2.6.12 counts an agent
/// twice: `Maxsock` grows by 2 per `agent-check`), the runtime API's, threads.
fn haproxy_fixed(config: &Config, threads: usize, worker: bool) -> usize {
    let (checks, agents) = checks_and_agents(config);
    RESERVED
        + addresses(config)
        + runtime_api(config, worker)
        + checks
        + 2 * agents
        + PER_THREAD * threads
}

/// HAProxy's runtime API frontend (`GLOBAL`): one per listening socket (each `stats
/// socket`, and a worker's link to its master: HAProxy's worker serves the master's CLI
/// through a socket pair of that frontend, measured: `-W` adds 11), and its `maxconn`
/// connections when the frontend exists.
fn runtime_api(config: &Config, worker: bool) -> usize {
    config.global.stats_sockets.len() + usize::from(worker) + runtime_api_sessions(config, worker)
}

/// The runtime API sessions open at once at most: the `maxconn` of HAProxy's `GLOBAL`
/// frontend, when there is one.
fn runtime_api_sessions(config: &Config, worker: bool) -> usize {
    config
        .global
        .cli_maxconn
        .or(worker.then_some(CLI_MAXCONN))
        .unwrap_or(0)
}

/// hapx's, every descriptor it may hold besides the connections and pipes: its base, the
/// master link of a worker, one listening socket per thread per address kept twice, one per
/// runtime API socket and per runtime API session, one per health check and one per agent
/// check (both may be open at once), the log sockets, one resolver socket per server
/// resolved at run time, threads.
fn hapx_fixed(config: &Config, threads: usize, worker: bool) -> usize {
    let (checks, agents) = checks_and_agents(config);
    let resolved = servers(config)
        .filter(|s| s.opts.resolvers.is_some())
        .count();
    HAPX_BASE
        + usize::from(worker)
        + 2 * threads * addresses(config)
        + config.global.stats_sockets.len()
        + runtime_api_sessions(config, worker)
        + checks
        + agents
        + log_sockets(config)
        + resolved
        + HAPX_PER_THREAD * threads
}

/// The log sockets hapx opens: each proxy's logger opens one per syslog target (UDP or
/// UNIX socket), a frontend's and a backend's their own (a `listen` is both).
fn log_sockets(config: &Config) -> usize {
    config
        .proxies
        .iter()
        .filter(|p| p.kind != ProxyKind::Defaults)
        .map(|p| {
            let sockets = p
                .logs
                .iter()
                .filter(|l| matches!(l.dest, LogDest::Udp(_) | LogDest::Unix(_)))
                .count();
            sockets * (usize::from(p.kind.is_frontend()) + usize::from(p.kind.is_backend()))
        })
        .sum()
}

/// HAProxy's `compute_ideal_maxpipes`: a quarter of the connections the proxies with an
/// `option splice-*` may have (a frontend its `maxconn`, a backend its `fullconn`, else
/// `maxconn`, the process's), at most `maxconn`. None when unlimited: `maxconn` unknown yet
/// and a splicing frontend has no `maxconn` of its own.
fn ideal_pipes(config: &Config, maxconn: Option<usize>) -> Option<usize> {
    let mut unlimited = false;
    let (mut frontends, mut backends) = (0usize, 0usize);
    for p in config
        .proxies
        .iter()
        .filter(|p| p.options.splice.any() && p.kind != ProxyKind::Defaults)
    {
        if p.kind.is_frontend() {
            let max = p.maxconn.unwrap_or(0);
            frontends = frontends.saturating_add(max);
            unlimited |= max == 0;
        }
        if p.kind.is_backend() {
            let max = p.fullconn.or(maxconn).unwrap_or(0);
            backends = backends.saturating_add(max);
            unlimited |= max == 0;
        }
    }
    let mut pipes = frontends.max(backends);
    match maxconn {
        Some(maxconn) if unlimited || pipes > maxconn => pipes = maxconn,
        None if unlimited => return None,
        _ => {}
    }
    Some(if pipes >= 4 { pipes / 4 } else { pipes })
}

/// HAProxy's `compute_ideal_maxconn`: what the larger limit leaves after `fixed`, two
/// descriptors per connection, plus the `pipes` (None: half a descriptor more per
/// connection, a pipe for every fourth).
fn ideal_maxconn(fixed: usize, pipes: Option<usize>, (soft, hard): (u64, u64)) -> usize {
    let limit = usize::try_from(soft.max(hard)).unwrap_or(usize::MAX);
    let mut remain = limit.saturating_sub(fixed);
    // An unlimited limit (RLIM_INFINITY) must not overflow `2 * remain`.
    let maxconn = match pipes {
        None => remain / 5 * 2 + remain % 5 * 2 / 5,
        Some(pipes) => {
            // Pipes are optional: only counted when they leave room.
            if pipes.saturating_mul(2) < remain {
                remain -= pipes * 2;
            }
            remain / 2
        }
    };
    maxconn.max(DEFAULT_MAXCONN)
}

/// A backend's `fullconn`: its own setting, else a tenth (rounded up, at least 1) of the
/// `maxconn` of the enabled frontends that may send it connections, as HAProxy's
/// `proxy_adjust_all_maxconn` counts them: a frontend counts once per backend, through its
/// `default_backend` (a `listen` without one sends to itself) or its `use_backend` rules
/// (a rule naming the default backend, or a backend an earlier rule named, adds nothing).
/// A frontend without `maxconn` counts the process's `maxconn`. No frontend: 1.
pub fn fullconn(config: &Config, backend: &str, maxconn: usize) -> usize {
    let Some(conf) = config
        .proxies
        .iter()
        .find(|p| p.kind.is_backend() && p.name == backend)
    else {
        return 1;
    };
    if let Some(set) = conf.fullconn.filter(|&n| n > 0) {
        return set;
    }
    let reaching: usize = config
        .proxies
        .iter()
        .filter(|p| p.kind.is_frontend() && !p.disabled && sends_to(p, backend))
        .map(|p| p.maxconn.unwrap_or(maxconn))
        .fold(0, usize::saturating_add);
    reaching.div_ceil(10).max(1)
}

/// Whether the frontend `p` may send connections to the backend named `backend`.
fn sends_to(p: &crate::config::model::Proxy, backend: &str) -> bool {
    let default = match &p.default_backend {
        Some((name, _)) => Some(name.as_str()),
        None if p.kind == ProxyKind::Listen => Some(p.name.as_str()),
        None => None,
    };
    default == Some(backend) || p.rules.use_backends.iter().any(|u| u.backend == backend)
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

/// HAProxy's steps: raises the soft open-files limit to `ulimit_n` (global `ulimit-n`),
/// else to the budget's `maxsock`, the hard limit with it when needed (only root may); a
/// higher limit is kept, never lowered. Then checks that the resulting limit holds
/// `maxsock`. With `strict` (HAProxy 2.6's default) any failure is the error; without, the
/// limit goes as high as allowed and the failures come back as notices. Last, hapx's own:
/// the soft limit raised on to `fd_limit` as far as the hard limit allows, silently (see
/// the module doc).
pub fn apply(
    budget: &Budget,
    ulimit_n: Option<u64>,
    boot: (u64, u64),
    strict: bool,
) -> Result<Vec<Notice>, LimitError> {
    let mut notices = Vec::new();
    let wanted = ulimit_n.filter(|&n| n > 0).unwrap_or(budget.maxsock as u64);
    let (soft, hard) = current().unwrap_or(boot);
    if soft < wanted && set(wanted, hard.max(wanted)).is_err() {
        let (soft, hard) = current().unwrap_or((soft, hard));
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
    let (limit, hard) = current().unwrap_or((soft.max(wanted), hard));
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
    let ours = (budget.fd_limit as u64).min(hard);
    if limit < ours {
        // Best effort: the hard limit allows it, so only a failing call could refuse it.
        let _ = set(ours, hard);
    }
    Ok(notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Config {
        // One file per call: the tests run in parallel threads of one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("hapx-limits-{}-{n}.cfg", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("writing a configuration");
        let (config, diags) = crate::config::load(std::slice::from_ref(&path));
        let _ = std::fs::remove_file(&path);
        assert!(!diags.has_errors(), "{diags:?}");
        config
    }

    const SECTIONS: &str = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  \
        timeout server 1s\nfrontend f\n  bind 127.0.0.1:1\n  default_backend b\n@F\
        backend b\n  server s 127.0.0.1:2\n@B";

    fn config(global: &str, frontend: &str, backend: &str) -> Config {
        let text = SECTIONS.replace("@F", frontend).replace("@B", backend);
        load(&format!("global\n{global}{text}"))
    }

    #[test]
    fn derived_maxconn_follows_haproxy_arithmetic() {
        // HAProxy 2.6, 2 threads, one bind, a stats socket, limit 1024: maxconn 498, and 398
        // with splice-auto (unlimited pipes).
        let fixed = RESERVED + CLI_MAXCONN + 1 + 1 + PER_THREAD * 2;
        assert_eq!(ideal_maxconn(fixed, Some(0), (1024, 1024)), 498);
        assert_eq!(ideal_maxconn(fixed, None, (1024, 1024)), 398);
        // Fixed pipes count when they leave room.
        assert_eq!(ideal_maxconn(fixed, Some(10), (1024, 1024)), 488);
        // The larger of soft and hard counts.
        assert_eq!(ideal_maxconn(fixed, Some(0), (256, 20000)), 9986);
        // Never below HAProxy's default.
        assert_eq!(ideal_maxconn(fixed, Some(0), (64, 64)), DEFAULT_MAXCONN);
    }

    #[test]
    fn huge_limits_and_maxconn_saturate_instead_of_wrapping() {
        let mut config = Config::default();
        config.global.maxconn = Some(9_223_372_036_854_775_807);
        let b = Budget::plan(&config, 2, true, false, (1024, 1024));
        assert_eq!(b.maxsock, usize::MAX);
        config.global.maxconn = None;
        let b = Budget::plan(&config, 2, true, false, (u64::MAX, u64::MAX));
        assert!(b.maxconn > 1 << 60, "{b:?}");
    }

    #[test]
    fn pipes_come_from_the_splicing_proxies_as_in_haproxy() {
        // Measured with HAProxy 2.6.12, maxconn 1000, 2 threads, one bind, a stats socket.
        let global = "  maxconn 1000\n  stats socket /tmp/x.sock\n";
        let plan = |g: &str, f: &str, b: &str| {
            let b = Budget::plan(&config(g, f, b), 2, true, false, (1024, 1024));
            (b.maxpipes, b.maxsock)
        };
        assert_eq!(plan(global, "", ""), (0, 2028));
        assert_eq!(plan(global, "  option splice-auto\n", ""), (250, 2528));
        assert_eq!(plan(global, "", "  option splice-auto\n"), (250, 2528));
        let f = "  option splice-auto\n  maxconn 100\n";
        assert_eq!(plan(global, f, ""), (25, 2078));
        let b = "  option splice-auto\n  fullconn 40\n";
        assert_eq!(plan(global, "", b), (10, 2048));
        let g = format!("{global}  maxpipes 7\n");
        assert_eq!(plan(&g, "", ""), (7, 2042));
    }

    #[test]
    fn the_limit_covers_what_hapx_holds() {
        // Few threads: hapx's base is smaller than HAProxy's reserve, yet with the runtime
        // API's sessions it needs a few more than HAProxy counts.
        let c = config("  maxconn 1000\n  stats socket /tmp/x.sock\n", "", "");
        let b = Budget::plan(&c, 2, true, false, (1024, 1024));
        assert_eq!(b.maxsock, 2028);
        assert_eq!(b.fd_limit, 2031);
        // One thread, no runtime API: HAProxy's count covers hapx's exactly; a log target
        // is one more for hapx.
        let b = Budget::plan(
            &config("  maxconn 1000\n", "", ""),
            1,
            true,
            false,
            (1024, 1024),
        );
        assert_eq!((b.maxsock, b.fd_limit), (2014, 2014));
        let c1 = config(
            "  maxconn 1000\n  log 127.0.0.1:514 local0\n",
            "  log global\n",
            "",
        );
        let b = Budget::plan(&c1, 1, true, false, (1024, 1024));
        assert_eq!((b.maxsock, b.fd_limit), (2014, 2015));
        // Many threads: hapx's sockets per thread need more than HAProxy counts.
        let b = Budget::plan(&c, 32, true, false, (1024, 1024));
        assert_eq!(
            b.fd_limit,
            HAPX_BASE + 2 * 32 + 1 + CLI_MAXCONN + HAPX_PER_THREAD * 32 + 2000
        );
        assert!(b.fd_limit > b.maxsock);
    }

    #[test]
    fn checks_agents_and_log_targets_are_counted() {
        // HAProxy 2.6.12, maxconn 200, 2 threads, one bind, a stats socket: Maxsock 428,
        // one more per `check`, two more per `agent-check` (measured with 4 servers).
        let global = "  maxconn 200\n  stats socket /tmp/x.sock\n";
        let plan = |g: &str, b: &str| Budget::plan(&config(g, "", b), 2, true, false, (1024, 1024));
        assert_eq!(plan(global, "").maxsock, 428);
        let checked = "  server c 127.0.0.1:3 check\n";
        assert_eq!(plan(global, checked).maxsock, 429);
        let both = "  server c 127.0.0.1:3 check agent-check agent-port 4\n";
        assert_eq!(plan(global, both).maxsock, 431);
        // hapx holds one per check and one per agent check, a log socket per target in
        // each logger (frontend and backend), and the master link of a worker.
        let logs = format!("{global}  log 127.0.0.1:514 local0\n  log 127.0.0.1:515 local0\n");
        let b = "  log global\n".to_string() + both;
        let threads = 64;
        let ours = |g: &str, b: &str, worker| {
            Budget::plan(&config(g, "", b), threads, true, worker, (1024, 1024)).fd_limit
        };
        let base = ours(global, "", false);
        assert_eq!(ours(global, both, false), base + 2);
        assert_eq!(ours(&logs, &b, false), base + 2 + 2);
        assert_eq!(ours(global, "", true), base + 1);
    }

    #[test]
    fn the_runtime_api_frontend_counts_as_in_haproxy() {
        // HAProxy 2.6.12, 2 threads, one bind, `maxconn 20`, limit 1024.
        let maxsock = |global: &str, worker| {
            let c = config(&format!("  maxconn 20\n{global}"), "", "");
            Budget::plan(&c, 2, true, worker, (1024, 1024)).maxsock
        };
        assert_eq!(maxsock("", false), 57);
        assert_eq!(maxsock("  stats socket /tmp/x.sock\n", false), 68);
        assert_eq!(maxsock("  stats timeout 5s\n", false), 67);
        assert_eq!(maxsock("  stats maxconn 3\n", false), 60);
        let sockets = "  stats socket /tmp/x.sock\n  stats socket /tmp/y.sock\n";
        assert_eq!(maxsock(&format!("  stats maxconn 3\n{sockets}"), false), 62);
        assert_eq!(maxsock("", true), 68);
        assert_eq!(maxsock("  stats maxconn 4\n", true), 62);
    }

    #[test]
    fn derived_maxconn_ignores_hapx_own_descriptors() {
        // HAProxy 2.6.12, 2 threads, one bind, no runtime API, limit 1024: 503 and 1023,
        // whatever hapx holds beside; its limit covers that.
        let b = Budget::plan(&config("", "", ""), 2, true, false, (1024, 1024));
        assert_eq!((b.maxconn, b.maxsock), (503, 1023));
        assert!(b.fd_limit > b.maxsock, "{b:?}");
        let c = config("  stats maxconn 30\n", "", "");
        let b = Budget::plan(&c, 2, true, false, (1024, 1024));
        assert_eq!((b.maxconn, b.maxsock), (488, 1023));
    }

    #[test]
    fn fullconn_is_a_tenth_of_the_frontends_reaching_the_backend() {
        let c = load(
            "global\n  maxconn 1000\ndefaults\n  mode http\n\
             frontend f1\n  bind 127.0.0.1:1\n  use_backend b2 if { path /a }\n  \
             use_backend b2 if { path /b }\n  use_backend b1 if { path /c }\n  default_backend b1\n\
             frontend f2\n  bind 127.0.0.1:2\n  maxconn 500\n  use_backend b1 if { path /a }\n  \
             use_backend b3 if { path /b }\n\
             frontend f3\n  bind 127.0.0.1:3\n  maxconn 33\n  disabled\n  default_backend b3\n\
             listen l\n  bind 127.0.0.1:4\n  maxconn 300\n  server s 127.0.0.1:5\n\
             backend b1\n  server s 127.0.0.1:5\nbackend b2\n  server s 127.0.0.1:5\n\
             backend b3\n  fullconn 77\n  server s 127.0.0.1:5\nbackend b4\n  server s 127.0.0.1:5\n",
        );
        // HAProxy 2.6.12's slim for each.
        for (backend, slim) in [("l", 30), ("b1", 150), ("b2", 100), ("b3", 77), ("b4", 1)] {
            assert_eq!(fullconn(&c, backend, 1000), slim, "{backend}");
        }
    }
}
