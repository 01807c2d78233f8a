//! The process around the proxy, HAProxy's way: check mode (`-c`), the open-files limit
//! ([`crate::limits`]), binding before detaching
//! (so a bind error is reported by the starting command), `-D`/`daemon`, the pid file,
//! `chroot`/`user`/`group`, taking listeners over from an old process (`-x`, or when
//! `-sf`/`-st` name it, its stats socket with `expose-fd listeners`, falling back to each old
//! process's private hand-over channel, see [`crate::runtime::handover`]), pausing old
//! processes (SIGTTOU) while a bind is retried and resuming them (SIGTTIN) if the start
//! fails, and telling old processes to finish (`-sf`: SIGUSR1, soft stop) or to stop (`-st`:
//! SIGTERM). In master-worker mode the master ([`crate::master`]) takes over after the
//! configuration check, and this process is its worker when started with a link to it.
//!
//! As HAProxy's, a daemon's pid file is created before the fork (a path that cannot be
//! written fails the start with nothing left running; a process in the foreground writes
//! none), and a daemon keeps the starting command's standard streams until it has chrooted
//! and changed users, so that their failures are said there.
//!
//! As HAProxy's, a process stopped by SIGTERM or SIGINT dies of that signal (its parent or
//! master sees 143 or 130), and the first warning or alert of a starting process comes after
//! the version and path notices ([`tell_version`]).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{ForkResult, Pid};

use crate::cli::Cli;
use crate::config::{self, Diags};
use crate::limits::{self, Budget};
use crate::runtime::{self, Prepared, api, handover, master_link, state::State};

/// Runs the command line; the exit code HAProxy would give.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.config.is_empty() {
        // HAProxy's answer to a command line without `-f`, `-c` or not.
        eprint!("{}", crate::cli::USAGE);
        return Ok(ExitCode::from(1));
    }
    let quiet = cli.quiet && !cli.verbose;
    match start(cli) {
        // HAProxy's `-q` (or `quiet`) hides even the alert it fails with.
        Err(_) if quiet || QUIET.load(Ordering::Relaxed) => Ok(ExitCode::from(1)),
        outcome => outcome,
    }
}

fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    // Before any handler exists: whether SIGINT/SIGTERM came ignored.
    note_inherited_stop_signals();
    // Until the handlers are in place (see `unblock_signals`): a reload or pause signal sent
    // as soon as the pid file exists must wait, not meet its default action (termination).
    block_signals();
    // HAProxy sizes `maxconn` from the limits the process started with.
    let boot = limits::current().context("reading the open-files limit")?;
    // The hand-over trusts the user we start as (and root), not the one `user` drops to.
    handover::note_starting_user();
    if let Some(dir) = &cli.chdir {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot change to {}", dir.display()))?;
    }
    // A worker of a master (master-worker mode): the master reported the configuration's
    // warnings already, and it writes the pid file.
    let mut master = master_link::Link::from_env()?;
    let background_master = crate::master::worker_of_background_master();
    if master.is_some() && master_link::version_told() {
        // HAProxy's worker is a fork of its master, and remembers what the master said.
        VERSION_TOLD.store(true, Ordering::Relaxed);
    }
    let (config, diags) = config::load(&cli.config);
    let quiet = cli.quiet(&config.global);
    // HAProxy's `-q` says no notice, the version's neither.
    QUIET.store(quiet, Ordering::Relaxed);
    report(&diags, quiet, master.is_some());
    let pid = std::process::id();
    if diags.has_errors() {
        if let Some(summary) = diags.fatal_summary() {
            say_line(&format!("[ALERT]    ({pid}) : config : {summary}"));
        }
        return Ok(ExitCode::from(1));
    }
    if cli.check {
        // HAProxy reads the server-state files in check mode too, and says what it finds.
        let budget = Budget::plan(&config, 1, false, false, boot);
        let state = State::new(config.clone(), budget);
        let applied = runtime::server_state::apply(&state);
        if !applied.addresses {
            return Ok(ExitCode::from(1));
        }
        return Ok(crate::cli::check_outcome(
            &config,
            &diags,
            quiet,
            applied.warned,
        ));
    }
    if master.is_none() && cli.master_worker(&config.global) {
        // HAProxy's master checks the privileges before it forks a worker.
        if !privileges_suffice(&config) {
            return Ok(ExitCode::from(1));
        }
        return crate::master::run(cli, &config.global).map_err(|e| alert(&e));
    }
    let threads = runtime::threads_for(&config.global);
    let splice = State::splices(&config.global);
    let budget = Budget::plan(&config, threads, splice, master.is_some(), boot);
    if !apply_limits(&config, &budget, boot) {
        return Ok(ExitCode::from(1));
    }
    if splice {
        runtime::forward::set_max_pipes(budget.maxpipes);
    }
    let state = Arc::new(State::new(config, budget));
    // Before any connection or check, as HAProxy's `apply_server_state` and
    // `srv_init_addr` (their warnings are all they have to say here).
    if !runtime::server_state::apply(&state).addresses {
        return Ok(ExitCode::from(1));
    }
    // A worker listens at least on its link to the master, as HAProxy's.
    if master.is_none() && !state.config.listens_anywhere() {
        say_line(&format!(
            "[ALERT]    ({pid}) : [{}.main()] No enabled listener found (check for 'bind' directives) ! Exiting.",
            argv0()
        ));
        return Ok(ExitCode::from(1));
    }
    let mut inherited = take_over(&cli, &state);
    // Dropped on any way out below (an error, a failed fork...): old processes paused to
    // free their ports listen again rather than leave nobody serving.
    let mut paused = PausedOld::default();
    let listeners =
        bind_beside_old(&cli, &state, &mut inherited, &mut paused).map_err(|e| alert(&e))?;
    // Before the old processes are told to stop: their lesson reaches this listener.
    runtime::peers::bind_listeners(&state).map_err(|e| alert(&e))?;
    drop(inherited);
    // After the listeners, as HAProxy says a bind failure first; the master checked already.
    if master.is_none() && !privileges_suffice(&state.config) {
        return Ok(ExitCode::from(1));
    }
    let global = &state.config.global;
    let worker = master.is_some();
    let daemon = (cli.daemon || global.daemon) && !cli.debug && !cli.no_background && !worker;
    // Opened before the fork, as HAProxy's: a pid file that cannot be created fails the
    // start while nothing runs in the background yet. Only a daemon's: a process in the
    // foreground writes none, as HAProxy's (a master's worker neither: its master does).
    let pidfile = match cli.pidfile.clone().or_else(|| global.pidfile.clone()) {
        Some(path) if daemon => match PidFile::create(&path) {
            Some(file) => Some(file),
            None => return Ok(ExitCode::from(1)),
        },
        _ => None,
    };
    // After the checks that refuse a start: binding replaces the stats socket files, which a
    // refused reload (`-sf`) must leave to the old process (HAProxy 2.6 replaces them before
    // its checks, and leaves the old process's path dead).
    let clis = runtime::bind_clis(&state).map_err(|e| alert(&e))?;
    if daemon {
        // SAFETY: no thread has been started yet, so the child may do anything.
        match unsafe { nix::unistd::fork() }.context("fork")? {
            ForkResult::Parent { child } => {
                // The child carries on, resuming the old processes if it fails.
                paused.disarm();
                if let Some(file) = pidfile {
                    file.record(child.as_raw() as u32);
                }
                return Ok(ExitCode::SUCCESS);
            }
            ForkResult::Child => {
                drop(pidfile);
                nix::unistd::setsid().context("setsid")?;
            }
        }
    }
    // Before dropping privileges, so that the next process sees who started this one.
    let channel = handover::bind_channel();
    // A worker of a master in the background quiets its standard streams as a daemon does.
    let quiets_stdio = daemon || (worker && background_master);
    let dev_null = quiets_stdio.then(DevNull::open).transpose()?;
    // Before the old processes are told to finish: the master must know this worker is the
    // current one before it sees them exit. Before the chroot and the change of user too:
    // HAProxy 2.6's master says "Loading success." once its worker is forked, so a worker
    // that fails there is a current worker exiting (`exit-on-failure`), not a failed load.
    if let Some(link) = &mut master {
        link.ready()
            .context("telling the master this worker is ready")?;
    }
    drop_privileges(&state).map_err(|e| alert(&e))?;
    if let Some(dev_null) = dev_null {
        // Only now, as HAProxy's: a failure to chroot or to change users is said where the
        // daemon was started from.
        dev_null.quiet_stdio();
    }
    // Marked as a successor's: the old process retries a lesson that times out, and takes
    // this process's table definitions for the whole list.
    for &pid in &cli.soft_finish {
        if let Err(e) = runtime::peers::finish_for_successor(pid) {
            warn_unsignalled(pid, e);
        }
    }
    signal_old(&cli.terminate, Signal::SIGTERM);
    // Told to stop: they need not listen again.
    paused.disarm();
    let state = Arc::new(State {
        pid: std::process::id(),
        ..Arc::try_unwrap(state).map_err(|_| anyhow::anyhow!("state still shared"))?
    });
    STARTING.store(false, Ordering::Relaxed);
    runtime::run(Prepared {
        state,
        listeners,
        clis,
        channel,
        master,
    })?;
    die_of_stop_signal();
    Ok(ExitCode::SUCCESS)
}

/// Prints the configuration's messages: none when `quiet` (HAProxy's `-q` hides even its
/// alerts), only the errors in a `worker` (its master said the warnings).
pub(crate) fn report(diags: &Diags, quiet: bool, worker: bool) {
    let pid = std::process::id();
    for d in &diags.list {
        if !quiet && (d.is_error() || !worker) {
            say_line(&d.render(pid));
        }
    }
}

/// HAProxy's start-up messages: while a process starts (a master, which HAProxy executes
/// again on each load and in between, never stops starting), its first warning or alert is
/// preceded by two notices, the version (hapx's own here) and the program's path. A master
/// forgets it said them each time HAProxy's would have executed itself again.
static VERSION_TOLD: AtomicBool = AtomicBool::new(false);
static STARTING: AtomicBool = AtomicBool::new(true);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Says the version and path notices, if this is the first warning or alert since the start.
pub fn tell_version() {
    if !STARTING.load(Ordering::Relaxed)
        || VERSION_TOLD.swap(true, Ordering::Relaxed)
        || QUIET.load(Ordering::Relaxed)
    {
        return;
    }
    let pid = std::process::id();
    say!(
        "[NOTICE]   ({pid}) : haproxy version is {}",
        env!("CARGO_PKG_VERSION")
    );
    if let Ok(path) = std::env::current_exe() {
        say!(
            "[NOTICE]   ({pid}) : path to executable is {}",
            path.display()
        );
    }
}

/// Whether the version notices were said (a master passes it to the worker it starts).
pub(crate) fn version_told() -> bool {
    VERSION_TOLD.load(Ordering::Relaxed)
}

/// A master's new start, where HAProxy's executes itself again: the next warning or alert
/// says the version again.
pub(crate) fn forget_version_told() {
    VERSION_TOLD.store(false, Ordering::Relaxed);
}

/// Prints a whole `[LEVEL]    (PID) : text` line; a warning or alert tells the version first.
pub(crate) fn say_line(line: &str) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    if line.starts_with("[WARNING]") || line.starts_with("[ALERT]") {
        tell_version();
    }
    write_stderr_line(line);
}

/// Writes `line` and its line feed to the standard error in one `write(2)`, as HAProxy
/// writes its messages: a master and its worker share that stream, and `eprintln!` writes a
/// line's parts one by one, so the other process's line could land in the middle of one.
pub(crate) fn write_stderr_line(line: &str) {
    use std::io::Write as _;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&bytes);
}

/// `eprintln!` as one `write(2)` ([`write_stderr_line`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::process::write_stderr_line(&format!($($arg)*))
    };
}
pub(crate) use say;

/// The signal (SIGTERM or SIGINT) that stopped the proxy, if one did.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Notes that `sig` stops the proxy: once stopped, the process dies of it, as HAProxy's
/// does (its parent, or its master, sees "Terminated" or "Interrupt": 143 or 130).
pub fn note_stop_signal(sig: Signal) {
    STOP_SIGNAL.store(sig as i32, Ordering::Relaxed);
}

fn die_of_stop_signal() {
    let raw = STOP_SIGNAL.load(Ordering::Relaxed);
    let Ok(sig) = Signal::try_from(raw) else {
        return;
    };
    let _ = std::io::stderr().flush();
    // SAFETY: restoring a signal's default action and raising it; no handler runs after.
    unsafe {
        let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
    }
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(sig);
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&set),
        None,
    );
    let _ = nix::sys::signal::raise(sig);
}

/// The command's name as HAProxy's messages give it (`[ARGV0.main()] ...`).
fn argv0() -> String {
    std::env::args()
        .next()
        .unwrap_or_else(|| "hapx-proxy".into())
}

/// False (after HAProxy's alert) when `uid`/`user` would drop privileges an option needs
/// (`source ... usesrc` or `interface`); a process not started as root is warned that
/// such options may fail.
pub(crate) fn privileges_suffice(config: &config::model::Config) -> bool {
    if !config.needs_net_admin() {
        return true;
    }
    let pid = std::process::id();
    let g = &config.global;
    // A `user` unknown here fails later, when privileges are dropped.
    let uid = match &g.user {
        Some(name) => nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid),
        None => g.uid.map(nix::unistd::Uid::from_raw),
    };
    if uid.is_some_and(|u| !u.is_root()) {
        say_line(&format!(
            "[ALERT]    ({pid}) : [{}.main()] Some configuration options require full privileges, so global.uid cannot be changed.",
            argv0()
        ));
        return false;
    }
    if !nix::unistd::getuid().is_root() {
        say_line(&format!(
            "[WARNING]  ({pid}) : [{}.main()] Some options which require full privileges might not work well.",
            argv0()
        ));
    }
    true
}

fn alert(e: &anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("[ALERT]    ({}) : {e:#}", std::process::id())
}

/// The old process's listening sockets: from `-x`; when reloading (`-sf`/`-st PID...`), from
/// its stats socket with `expose-fd listeners`, else (or when that fails) through each old
/// process's private hand-over channel, keeping what each one gives. Whatever cannot be taken
/// over is bound anew (beside the old sockets, `SO_REUSEPORT`), with a warning.
fn take_over(cli: &Cli, state: &State) -> Vec<(std::net::SocketAddr, std::os::fd::OwnedFd)> {
    let pid = std::process::id();
    let old_pids = old_pids(cli);
    let exposed = || {
        state
            .config
            .global
            .stats_sockets
            .iter()
            .find(|s| s.expose_fd_listeners && s.level == crate::config::model::CliLevel::Admin)
            .map(|s| s.path.clone())
    };
    let path = cli
        .takeover_socket
        .clone()
        .or_else(|| (!old_pids.is_empty()).then(exposed).flatten());
    if let Some(path) = path {
        match api::fetch_listeners(&path) {
            Ok(fds) => return fds,
            Err(e) => {
                let then = if old_pids.is_empty() {
                    "binding new ones"
                } else {
                    "trying the old processes' hand-over channels"
                };
                say_line(&format!(
                    "[WARNING]  ({pid}) : Failed to get the sockets from the old process: {e:#}; {then}."
                ));
            }
        }
    }
    let mut fds = Vec::new();
    for &old in &old_pids {
        match handover::fetch_from_pid(old) {
            Ok(list) => fds.extend(list),
            Err(e) => say_line(&format!(
                "[WARNING]  ({pid}) : Failed to get the sockets from the old process {old}: {e:#}; binding new ones in place of its own."
            )),
        }
    }
    fds
}

/// Applies the descriptor budget, printing what HAProxy prints; false when the process must
/// exit (`strict-limits`, the default).
fn apply_limits(config: &config::model::Config, budget: &Budget, boot: (u64, u64)) -> bool {
    let pid = std::process::id();
    let argv0 = argv0();
    let strict = !config.global.lax_limits;
    match limits::apply(budget, config.global.ulimit_n, boot, strict) {
        Ok(notices) => {
            for notice in notices {
                match notice {
                    limits::Notice::Warning(e) => {
                        say_line(&format!("[WARNING]  ({pid}) : [{argv0}.main()] {e}"))
                    }
                    limits::Notice::Alert(e) => {
                        say_line(&format!("[ALERT]    ({pid}) : [{argv0}.main()] {e}"))
                    }
                }
            }
            true
        }
        Err(e) => {
            say_line(&format!("[ALERT]    ({pid}) : [{argv0}.main()] {e}"));
            false
        }
    }
}

/// The processes this one replaces (`-sf`/`-st`).
fn old_pids(cli: &Cli) -> Vec<u32> {
    cli.soft_finish
        .iter()
        .chain(&cli.terminate)
        .copied()
        .collect()
}

/// Binds the listeners. When a bind fails while old processes run, HAProxy's way: ask them
/// to pause their listeners (SIGTTOU), retry for up to a second, and if it still fails let
/// them resume (SIGTTIN, when `paused` drops) and report the error.
///
/// The retry works because a paused process releases its ports: HAProxy and hapx alike shut
/// their listening sockets down on SIGTTOU (they stay open, not listening, and listen again
/// on SIGTTIN), so `hapx-proxy -sf` can replace a process bound without `SO_REUSEPORT` or
/// as another user. A hapx process that already handed its sockets over to this one only
/// stops accepting on them, since the shutdown would stop them listening here too (and the
/// retried bind listens on every socket taken over again anyway).
fn bind_beside_old(
    cli: &Cli,
    state: &State,
    inherited: &mut Vec<(std::net::SocketAddr, std::os::fd::OwnedFd)>,
    paused: &mut PausedOld,
) -> anyhow::Result<Vec<runtime::BoundListener>> {
    let first = runtime::bind_listeners(state, inherited);
    let old = old_pids(cli);
    if first.is_ok() || old.is_empty() {
        return first;
    }
    paused.pause(old);
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        if let Ok(listeners) = runtime::bind_listeners(state, inherited) {
            return Ok(listeners);
        }
    }
    first
}

/// Old processes this one paused (SIGTTOU), resumed (SIGTTIN) when it drops, unless disarmed
/// first: once they are told to stop, or in the parent of a daemon (its child carries on).
#[derive(Debug, Default)]
struct PausedOld {
    pids: Vec<u32>,
}

impl PausedOld {
    fn pause(&mut self, pids: Vec<u32>) {
        signal_old(&pids, Signal::SIGTTOU);
        self.pids = pids;
    }

    fn disarm(&mut self) {
        self.pids.clear();
    }
}

impl Drop for PausedOld {
    fn drop(&mut self) {
        signal_old(&self.pids, Signal::SIGTTIN);
    }
}

/// A pid file, created (emptied) before the process forks and written after, as HAProxy's.
#[derive(Debug)]
pub(crate) struct PidFile(std::fs::File);

impl PidFile {
    /// Creates `path`, or says HAProxy's alert and gives None: the start fails.
    pub(crate) fn create(path: &Path) -> Option<PidFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path);
        match opened {
            Ok(file) => Some(PidFile(file)),
            Err(_) => {
                say_line(&format!(
                    "[ALERT]    ({}) : [{}.main()] Cannot create pidfile {}",
                    std::process::id(),
                    argv0(),
                    path.display()
                ));
                None
            }
        }
    }

    /// Writes `pid` and closes the file. A failed write is not reported, as HAProxy's: the
    /// file could be created, and the process it names is running by now.
    pub(crate) fn record(mut self, pid: u32) {
        let _ = writeln!(self.0, "{pid}");
    }
}

/// /dev/null, opened before a `chroot` (whose directory seldom has it), to quiet the
/// standard streams with after it, as HAProxy's daemon does.
#[derive(Debug)]
pub(crate) struct DevNull(std::fs::File);

impl DevNull {
    pub(crate) fn open() -> anyhow::Result<DevNull> {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .context("Cannot open /dev/null")?;
        Ok(DevNull(null))
    }

    /// Points the standard streams at /dev/null (a daemon's, once it has said all a start
    /// says).
    pub(crate) fn quiet_stdio(self) {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(self.0.as_raw_fd(), fd) };
        }
    }
}

/// The user the configuration runs as (`user`, `uid`), if any.
fn run_as(state: &State) -> anyhow::Result<Option<nix::unistd::Uid>> {
    use nix::unistd::{Uid, User};
    let g = &state.config.global;
    Ok(match (&g.user, g.uid) {
        (Some(name), _) => Some(
            User::from_name(name)?
                .with_context(|| format!("unknown user '{name}'"))?
                .uid,
        ),
        (None, Some(u)) => Some(Uid::from_raw(u)),
        _ => None,
    })
}

fn drop_privileges(state: &State) -> anyhow::Result<()> {
    use nix::unistd::{Gid, Group, setgid, setgroups, setuid};
    let g = &state.config.global;
    let uid = run_as(state)?;
    let gid = match (&g.group, g.gid) {
        (Some(name), _) => Some(
            Group::from_name(name)?
                .with_context(|| format!("unknown group '{name}'"))?
                .gid,
        ),
        (None, Some(id)) => Some(Gid::from_raw(id)),
        _ => None,
    };
    // HAProxy's alerts (`[PROGRAM.main()] Cannot ...`), which give no reason.
    let cannot = |what: String| anyhow::anyhow!("[{}.main()] Cannot {what}.", argv0());
    if let Some(dir) = &g.chroot {
        nix::unistd::chroot(dir)
            .ok()
            .and_then(|()| std::env::set_current_dir("/").ok())
            .ok_or_else(|| cannot(format!("chroot({})", dir.display())))?;
    }
    if let Some(gid) = gid {
        setgroups(&[gid]).context("setgroups")?;
        setgid(gid).map_err(|_| cannot(format!("set gid {gid}")))?;
    }
    if let Some(uid) = uid {
        setuid(uid).map_err(|_| cannot(format!("set uid {uid}")))?;
    }
    Ok(())
}

/// The signals held while a process starts: those whose default action would end (or
/// stop) a process that is meant to answer them. SIGTERM and SIGINT are not held: until
/// their handlers exist, their default action (ending the start) is what the sender means.
const HANDLED: [Signal; 5] = [
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGHUP,
    Signal::SIGTTOU,
    Signal::SIGTTIN,
];

fn handled() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for sig in HANDLED {
        set.add(sig);
    }
    set
}

/// Holds the handled signals pending while the process starts; to call before any thread.
fn block_signals() {
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&handled()),
        None,
    );
}

/// Delivers the signals held since the start, once the proxy's handlers are set (on the
/// thread that sets them, before it starts any other: threads inherit the mask); a stop
/// signal that came ignored is ignored again (see [`INHERITED_IGNORED`]), and the signals
/// the proxy outlives are ignored (see [`OUTLIVED`]).
pub(crate) fn unblock_signals() {
    keep_inherited_ignores();
    ignore_all(&OUTLIVED);
    unblock_held_signals();
}

/// The master's [`unblock_signals`], once its handlers are set: it answers every stop
/// signal (even one it came with ignored), SIGUSR2 and SIGHUP, and ignores SIGQUIT, as
/// HAProxy's master does.
pub(crate) fn unblock_master_signals() {
    ignore_all(&[Signal::SIGQUIT]);
    unblock_held_signals();
}

/// Signals a proxy process (on its own or a master's worker) outlives without acting on
/// them, as HAProxy's does, where their default action would end it: SIGUSR2 (HAProxy
/// ignores it outside a master) and SIGQUIT (HAProxy dumps its memory pools, which hapx does
/// not have). A signal the runtime comes to answer (SIGHUP: the servers' states) must leave
/// this list, which would undo its handler.
const OUTLIVED: [Signal; 2] = [Signal::SIGUSR2, Signal::SIGQUIT];

fn ignore_all(signals: &[Signal]) {
    for &sig in signals {
        // SAFETY: SIG_IGN runs no code in the process.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn);
        }
    }
}

fn unblock_held_signals() {
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&handled()),
        None,
    );
}

/// The stop signals HAProxy leaves as it found them: it never sets a handler for SIGINT or
/// SIGTERM (their default action stops it), so a process started with one of them ignored
/// (`trap '' INT`, `nohup`-like launchers) keeps ignoring it; every other signal it answers
/// gets its handler whatever it inherited. Its master answers them all, but its workers
/// inherit the master's original dispositions.
const STOP_SIGNALS: [Signal; 2] = [Signal::SIGINT, Signal::SIGTERM];

/// The [`STOP_SIGNALS`] that were ignored when the process started, as a mask of
/// `1 << signal number`; set once, before any handler.
static INHERITED_IGNORED: AtomicU64 = AtomicU64::new(0);

fn note_inherited_stop_signals() {
    let ignored = STOP_SIGNALS
        .into_iter()
        .filter(|&sig| disposition_is_ignore(sig))
        .fold(0, |mask, sig| mask | signal_bit(sig));
    INHERITED_IGNORED.store(ignored, Ordering::Relaxed);
}

fn signal_bit(sig: Signal) -> u64 {
    1 << (sig as i32)
}

/// Whether `sig` was ignored when the process started.
fn inherited_ignored(sig: Signal) -> bool {
    INHERITED_IGNORED.load(Ordering::Relaxed) & signal_bit(sig) != 0
}

/// Whether `sig`'s action is SIG_IGN now.
fn disposition_is_ignore(sig: Signal) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into storage of its type.
    let rc = unsafe { libc::sigaction(sig as libc::c_int, std::ptr::null(), current.as_mut_ptr()) };
    // SAFETY: zeroed storage is a valid sigaction, which sigaction(2) filled on success.
    rc == 0 && unsafe { current.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Ignores again each stop signal that came ignored: the runtime sets a handler for every
/// stop signal, and this puts HAProxy's disposition back right after (a signal arriving in
/// between stops the process as it would have before the start completed).
fn keep_inherited_ignores() {
    let ignored: Vec<Signal> = STOP_SIGNALS
        .into_iter()
        .filter(|&s| inherited_ignored(s))
        .collect();
    ignore_all(&ignored);
}

/// Between fork and exec of a worker: the stop signals the master came with ignored are
/// ignored in the worker too, which keeps them so (see [`STOP_SIGNALS`]). Only
/// async-signal-safe calls (sigaction(2)).
pub(crate) fn ignore_inherited_in_child() -> std::io::Result<()> {
    for sig in STOP_SIGNALS {
        if inherited_ignored(sig) {
            // SAFETY: SIG_IGN runs no code; sigaction(2) is async-signal-safe.
            let old = unsafe { libc::signal(sig as libc::c_int, libc::SIG_IGN) };
            if old == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn signal_old(pids: &[u32], sig: Signal) {
    for &pid in pids {
        if let Err(e) = kill(Pid::from_raw(pid as i32), sig) {
            warn_unsignalled(pid, e);
        }
    }
}

fn warn_unsignalled(pid: u32, e: nix::errno::Errno) {
    say_line(&format!(
        "[WARNING]  ({}) : cannot signal old process {pid}: {e}",
        std::process::id()
    ));
}
