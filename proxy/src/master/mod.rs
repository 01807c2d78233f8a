//! Master-worker mode (`-W`, `-Ws` for systemd, or `master-worker` in the global section),
//! HAProxy's process model under systemd (Debian's `haproxy.service` runs `-Ws` and reloads
//! with `kill -USR2 $MAINPID`).
//!
//! The master serves no traffic. It starts a worker ([`worker`]): this same program, which
//! binds the listeners and serves, and says when it is ready over its link
//! ([`crate::runtime::master_link`]). Then:
//!
//! - SIGUSR2, SIGHUP or the master CLI's `reload`: the master reads the configuration again
//!   and starts a new worker with `-sf` naming the current one, which hands its listening
//!   sockets over and finishes its connections (the ordinary seamless reload). A
//!   configuration with errors, or a worker that exits before it is ready, is a failed
//!   reload: the old worker goes on serving. A reload asked for while a worker is still
//!   starting replaces that one too (HAProxy's master executes itself again at once).
//! - SIGTERM/SIGINT (stop) and SIGUSR1 (soft stop) go to every worker; the master exits once
//!   they all have. A worker dies of SIGTERM or SIGINT as HAProxy's does (143, 130); the
//!   master exits with 0, or with the status of the first current worker that ended
//!   otherwise than with 0 or SIGTERM (so 130 after a SIGINT). SIGTTOU/SIGTTIN go to every
//!   worker.
//! - Before its first warning or alert after each start (HAProxy's master executes itself
//!   again on each load), the master says its version and path
//!   ([`crate::process::tell_version`]).
//! - When no worker is left (they all exited), the master exits too, so that systemd sees
//!   the service is down.
//! - When the current worker fails (exits with another status than 0 or a SIGINT/SIGTERM
//!   death), the master stops the others and exits with its status (`exit-on-failure`),
//!   unless `master-worker no-exit-on-failure`. (HAProxy 2.6 documents that option but its
//!   master, executed again in "wait mode" without the configuration, forgets it; hapx's
//!   master keeps it, and a reload brings a worker back.)
//! - `mworker-max-reloads N`: a former worker still running after more than N reloads is
//!   stopped (SIGTERM).
//!
//! The messages, the pid file (the master's pid), the systemd notifications ([`notify`]) and
//! the master CLI ([`cli`], `-S`) are HAProxy 2.6's.

mod cli;
mod notify;
mod worker;

use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::cli::Cli;
use crate::config::{self, model::Global};
use notify::Notifier;
use worker::Worker;

/// What the master reacts to.
#[derive(Debug)]
pub enum Event {
    Reload,
    /// SIGTERM, SIGINT or SIGUSR1: passed on to every worker, then the master exits.
    Stop(Signal),
    /// SIGTTOU, SIGTTIN: passed on to every worker.
    Pass(Signal),
    /// A worker said it was ready, or exited before.
    Loaded {
        pid: u32,
        ok: bool,
    },
    Exited {
        pid: u32,
        status: ExitStatus,
    },
}

/// The processes, as `show proc` shows them and the CLI finds them.
#[derive(Debug)]
pub struct Registry {
    started: Instant,
    reloads: u32,
    failed_reloads: u32,
    /// Newest first, as HAProxy lists them.
    workers: Vec<Worker>,
}

impl Registry {
    /// `show proc`: HAProxy 2.6's table.
    fn show_proc(&self, version: &str) -> String {
        let row = |pid: u32, kind: &str, reloads: &str, since: Instant| {
            format!(
                "{pid:<15} {kind:<15} {reloads:<15} {:<15} {version}\n",
                uptime(since)
            )
        };
        let mut out = format!(
            "{:<15} {:<15} {:<15} {:<15} {:<15}\n",
            "#<PID>", "<type>", "<reloads>", "<uptime>", "<version>"
        );
        let master_reloads = format!("{} [failed: {}]", self.reloads, self.failed_reloads);
        out += &row(std::process::id(), "master", &master_reloads, self.started);
        let current = self.current();
        // The current worker and any still starting, then the former ones.
        let serving = |w: &&Worker| Some(w.pid) == current || !w.reported;
        for (title, listed_serving) in [("# workers\n", true), ("# old workers\n", false)] {
            let mut listed = self
                .workers
                .iter()
                .filter(|w| serving(w) == listed_serving)
                .peekable();
            if listed_serving || listed.peek().is_some() {
                out += title;
            }
            for w in listed {
                out += &row(w.pid, "worker", &w.reloads.to_string(), w.started);
            }
        }
        out + "# programs\n"
    }

    /// The current worker: the newest that said it was ready and is still there. Older ones
    /// are former workers (replaced, finishing their connections), whatever order their
    /// reloads were asked, started or reported in.
    fn current(&self) -> Option<u32> {
        self.workers.iter().find(|w| w.served).map(|w| w.pid)
    }

    fn worker_mut(&mut self, pid: u32) -> Option<&mut Worker> {
        self.workers.iter_mut().find(|w| w.pid == pid)
    }

    /// The pid and the link of the worker `@TARGET` names: `1` the current one, `!PID` any.
    fn link_for(&self, target: &str) -> Option<(u32, Arc<std::os::fd::OwnedFd>)> {
        let found = match target.strip_prefix('!') {
            Some(pid) => {
                let pid: u32 = pid.parse().ok()?;
                self.workers.iter().find(|w| w.pid == pid)
            }
            None if target == "1" => self.workers.iter().find(|w| w.served),
            None => None,
        };
        found.map(|w| (w.pid, w.link.clone()))
    }
}

fn uptime(since: Instant) -> String {
    let s = since.elapsed().as_secs();
    format!(
        "{}d{:02}h{:02}m{:02}s",
        s / 86400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// What the global section says about the master.
#[derive(Debug, Clone, Copy)]
struct Settings {
    exit_on_failure: bool,
    max_reloads: Option<u32>,
}

impl Settings {
    fn of(global: &Global) -> Settings {
        Settings {
            exit_on_failure: !global.master_stays_on_failure,
            max_reloads: global.mworker_max_reloads,
        }
    }
}

/// Runs the master until its workers are gone; `global` is the configuration's, already
/// checked and reported.
pub fn run(cli: Cli, global: &Global) -> anyhow::Result<ExitCode> {
    let specs = cli
        .master_cli
        .iter()
        .map(|s| cli::Spec::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sockets = specs
        .iter()
        .map(cli::Spec::bind)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dev_null = match background(&cli, global)? {
        // The parent of a master gone to the background: its job is done.
        Start::Parent => return Ok(ExitCode::SUCCESS),
        // Said already (HAProxy's alert), nothing left running.
        Start::Failed => return Ok(ExitCode::from(1)),
        Start::Master { dev_null } => dev_null,
    };
    let notifier = Notifier::new(cli.master_worker_systemd);
    // The path now, not on each reload: a package upgrade replaces the file, and the next
    // worker should be the new program.
    let exe = std::env::current_exe().context("finding this program's path")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the master's runtime")?;
    let code = runtime.block_on(async move {
        let (events, rx) = unbounded_channel();
        let (reloading, reloads) = tokio::sync::watch::channel(0);
        let master = Master {
            pid: std::process::id(),
            exe,
            settings: Settings::of(global),
            cli,
            notifier,
            registry: Arc::new(Mutex::new(Registry {
                started: Instant::now(),
                reloads: 0,
                failed_reloads: 0,
                workers: Vec::new(),
            })),
            events,
            reloading,
            newest: None,
            first_load: true,
            in_background: dev_null.is_some(),
            quiet_after_first_worker: dev_null,
            stopping: false,
            exit_code: None,
        };
        for socket in sockets {
            tokio::spawn(cli::serve(
                socket,
                master.registry.clone(),
                master.events.clone(),
                reloads.clone(),
            ));
        }
        master.serve(rx).await
    })?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Whether this process is a worker of a master in the background (see
/// [`worker::IN_BACKGROUND_ENV`]); to call once, at the start, before any thread exists.
pub(crate) fn worker_of_background_master() -> bool {
    let set = std::env::var_os(worker::IN_BACKGROUND_ENV).is_some_and(|v| v == "1");
    // SAFETY: called at the start of `process::main`, before any thread exists.
    unsafe { std::env::remove_var(worker::IN_BACKGROUND_ENV) };
    set
}

/// Where [`background`] leaves the process.
enum Start {
    /// The parent of a master gone to the background, which is to exit.
    Parent,
    /// The master; in the background, with /dev/null to point its standard streams at once
    /// its first worker is started (which keeps them to say its start's failures, as
    /// HAProxy's does).
    Master {
        dev_null: Option<crate::process::DevNull>,
    },
    /// The pid file could not be created: the start fails, as HAProxy's.
    Failed,
}

/// `-D` or `daemon`: forks, the parent writing the master's pid to the pid file. Otherwise
/// the master writes its own pid.
fn background(cli: &Cli, global: &Global) -> anyhow::Result<Start> {
    let pidfile = cli.pidfile.clone().or_else(|| global.pidfile.clone());
    // Under systemd (-Ws) the master is the service's main process: never in the background,
    // whatever the configuration says (Debian's haproxy.cfg has `daemon`), as with HAProxy.
    let daemon = (cli.daemon || global.daemon)
        && !cli.debug
        && !cli.no_background
        && !cli.master_worker_systemd;
    // Opened before the fork, as HAProxy's: a pid file that cannot be created fails the
    // start before a master runs in the background.
    let pidfile = match &pidfile {
        Some(path) => match crate::process::PidFile::create(path) {
            Some(file) => Some(file),
            None => return Ok(Start::Failed),
        },
        None => None,
    };
    if daemon {
        // SAFETY: no thread has been started yet.
        match unsafe { nix::unistd::fork() }.context("fork")? {
            nix::unistd::ForkResult::Parent { child } => {
                if let Some(file) = pidfile {
                    file.record(child.as_raw() as u32);
                }
                return Ok(Start::Parent);
            }
            nix::unistd::ForkResult::Child => {
                drop(pidfile);
                nix::unistd::setsid().context("setsid")?;
                let dev_null = crate::process::DevNull::open()?;
                return Ok(Start::Master {
                    dev_null: Some(dev_null),
                });
            }
        }
    } else if let Some(file) = pidfile {
        file.record(std::process::id());
    }
    Ok(Start::Master { dev_null: None })
}

struct Master {
    pid: u32,
    exe: PathBuf,
    cli: Cli,
    settings: Settings,
    notifier: Notifier,
    registry: Arc<Mutex<Registry>>,
    events: UnboundedSender<Event>,
    /// Counts the reloads started: the master CLI's sessions end at each, as HAProxy's
    /// master executes itself again.
    reloading: tokio::sync::watch::Sender<u64>,
    /// The worker of the latest load (the first, or the last reload's): its readiness is
    /// the load's outcome ("Loading success." or "failure!").
    newest: Option<u32>,
    /// Until the first worker is ready or gone: its failure is the master's.
    first_load: bool,
    /// Gone to the background (`-D`, `daemon`): its workers quiet their standard streams.
    in_background: bool,
    /// See [`Start::Master`]: taken when the first worker is started.
    quiet_after_first_worker: Option<crate::process::DevNull>,
    stopping: bool,
    /// The status the master exits with, once it is known: the first current worker's that
    /// was neither 0 nor a SIGTERM death, or 1 when the start failed (else 0).
    exit_code: Option<i32>,
}

impl Master {
    async fn serve(mut self, mut events: UnboundedReceiver<Event>) -> anyhow::Result<i32> {
        self.watch_signals()?;
        // Signals sent since the start waited, blocked; the handlers are in place now. The
        // master answers SIGINT and SIGTERM even when it came with them ignored, as
        // HAProxy's does (its workers keep them ignored: see `worker::start`).
        crate::process::unblock_master_signals();
        self.load(true);
        while let Some(event) = events.recv().await {
            match event {
                Event::Reload if !self.stopping => self.load(false),
                Event::Reload => {}
                Event::Stop(sig) => self.stop(sig),
                Event::Pass(sig) => self.signal_all(sig),
                Event::Loaded { pid, ok } => self.reported(pid, ok),
                Event::Exited { pid, status } => self.exited(pid, status),
            }
            let (empty, starting) =
                self.workers(|ws| (ws.is_empty(), ws.iter().any(|w| !w.reported)));
            // Nobody serves or starts: the master has nothing left to do, unless it waits
            // for a reload to bring a worker back (`no-exit-on-failure`).
            if empty && !starting && (self.stopping || self.settings.exit_on_failure) {
                let code = self.exit_code.unwrap_or(0);
                self.warning(&format!("All workers exited. Exiting... ({code})"));
                return Ok(code);
            }
        }
        Ok(self.exit_code.unwrap_or(0))
    }

    fn watch_signals(&self) -> std::io::Result<()> {
        let table = [
            (libc::SIGUSR2, None),
            (libc::SIGHUP, None),
            (libc::SIGTERM, Some(Signal::SIGTERM)),
            (libc::SIGINT, Some(Signal::SIGINT)),
            (libc::SIGUSR1, Some(Signal::SIGUSR1)),
            (libc::SIGTTOU, Some(Signal::SIGTTOU)),
            (libc::SIGTTIN, Some(Signal::SIGTTIN)),
        ];
        for (raw, sig) in table {
            let mut stream = signal(SignalKind::from_raw(raw))?;
            let events = self.events.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let event = match sig {
                        None => Event::Reload,
                        Some(s @ (Signal::SIGTTOU | Signal::SIGTTIN)) => Event::Pass(s),
                        Some(s) => Event::Stop(s),
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(())
    }

    /// Starts a worker: the first one, or a reload's. A reload asked for while a worker is
    /// still starting replaces that one too, as HAProxy's master does (it executes itself
    /// again at once): a worker stuck before it is ready never blocks the next reload.
    fn load(&mut self, first: bool) {
        self.notifier.reloading();
        let (soft, hard) = if first {
            (self.cli.soft_finish.clone(), self.cli.terminate.clone())
        } else {
            self.notice("Reloading HAProxy");
            self.reloading.send_modify(|n| *n += 1);
            // Where HAProxy's master executes itself again.
            crate::process::forget_version_told();
            self.count_reload();
            // HAProxy's master, executed again, reads the configuration from no state.
            crate::runtime::vars::reset_for_load();
            let (config, diags) = config::load(&self.cli.config);
            crate::process::report(&diags, self.cli.quiet(&config.global), false);
            if diags.has_errors() {
                // Nothing was started: a worker still starting goes on.
                if let Some(summary) = diags.fatal_summary() {
                    self.alert(&format!("config : {summary}"));
                }
                self.load_failed(false);
                return;
            }
            // As at start-up, and as HAProxy's master executed again: refused before any
            // worker starts, and the workers there are go on.
            if !crate::process::privileges_suffice(&config) {
                self.load_failed(false);
                return;
            }
            self.settings = Settings::of(&config.global);
            (self.replaced(), Vec::new())
        };
        let args = self.cli.worker_args(&soft, &hard);
        let started = match worker::start(&self.exe, args, self.in_background) {
            Ok(s) => s,
            Err(e) => {
                self.alert(&format!("cannot start a worker: {e}"));
                self.quiet_stdio();
                let first = std::mem::take(&mut self.first_load);
                self.load_failed(first);
                return;
            }
        };
        let pid = started.worker.pid;
        self.notice(&format!("New worker ({pid}) forked"));
        self.quiet_stdio();
        self.newest = Some(pid);
        let events = self.events.clone();
        let readiness = started.readiness;
        tokio::spawn(async move {
            let ok = worker::ready(readiness).await;
            let _ = events.send(Event::Loaded { pid, ok });
        });
        let events = self.events.clone();
        let mut child = started.child;
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = events.send(Event::Exited { pid, status });
            }
        });
        if let Ok(mut r) = self.registry.lock() {
            r.workers.insert(0, started.worker);
        }
    }

    /// A reload begins: the master's count and that of every worker that lives through it,
    /// whatever its outcome (HAProxy counts its master's executions).
    fn count_reload(&self) {
        if let Ok(mut r) = self.registry.lock() {
            r.reloads += 1;
            for w in r.workers.iter_mut() {
                w.reloads += 1;
            }
        }
    }

    /// The workers a reload's new worker replaces (`-sf`): the current one and any still
    /// starting (they take the sockets over from it, or may have).
    fn replaced(&self) -> Vec<u32> {
        self.workers(|ws| {
            let current = ws.iter().find(|w| w.served).map(|w| w.pid);
            ws.iter()
                .filter(|w| Some(w.pid) == current || !w.reported)
                .map(|w| w.pid)
                .collect()
        })
    }

    /// Worker `pid` said it was ready (`ok`), or its link closed first. Only the latest
    /// load's worker decides the load's outcome; an older one still starting when a reload
    /// replaced it is a former worker once ready (the newer one takes over from it), or the
    /// current one if the newer load failed. An exit that came before this is handled now.
    fn reported(&mut self, pid: u32, ok: bool) {
        let pending_exit = self.registry.lock().ok().and_then(|mut r| {
            let w = r.worker_mut(pid)?;
            w.reported = true;
            w.served = ok;
            w.pending_exit.take()
        });
        if self.newest == Some(pid) {
            self.newest = None;
            let first = std::mem::take(&mut self.first_load);
            if ok {
                self.loaded();
            } else {
                self.load_failed(first);
            }
        }
        if let Some(status) = pending_exit {
            self.exited(pid, status);
        }
    }

    /// The latest load's worker is ready: it is the current worker now.
    fn loaded(&mut self) {
        let max_reloads = self.settings.max_reloads;
        let too_old = self.workers(|ws| {
            let current = ws.iter().find(|w| w.served).map(|w| w.pid);
            // The former workers still finishing after more reloads than allowed (the one
            // just replaced finishes whatever its count).
            ws.iter()
                .skip_while(|w| Some(w.pid) != current)
                .skip(2)
                .filter(|w| max_reloads.is_some_and(|max| w.reloads > max))
                .map(|w| w.pid)
                .collect::<Vec<_>>()
        });
        self.notice("Loading success.");
        crate::process::forget_version_told();
        for old in too_old {
            self.warning(&format!(
                "Former worker ({old}) reached the maximum number of reloads ({}), sending SIGTERM",
                max_reloads.unwrap_or_default()
            ));
            signal_pid(old, Signal::SIGTERM);
        }
        self.notifier.ready();
    }

    /// A load that failed: a configuration with errors, a worker that could not start or
    /// exited before it was ready. The workers it was to replace go on serving.
    /// `first`: the start's own load, whose failure ends the master if nothing serves.
    fn load_failed(&mut self, first: bool) {
        if let Ok(mut r) = self.registry.lock() {
            r.failed_reloads += u32::from(!first);
        }
        self.warning("Loading failure!");
        let nobody = self.workers(|ws| ws.iter().all(|w| w.reported && !w.served));
        if first && nobody && !self.stopping {
            // Nothing serves: the start failed, and the master leaves.
            self.stopping = true;
            self.exit_code.get_or_insert(1);
        } else {
            // HAProxy's master executes itself again in "wait mode" after each load.
            crate::process::forget_version_told();
        }
        self.notifier.ready();
    }

    fn exited(&mut self, pid: u32, status: ExitStatus) {
        let gone = self.registry.lock().ok().and_then(|mut r| {
            let current = r.current();
            let at = r.workers.iter().position(|w| w.pid == pid)?;
            if !r.workers[at].reported {
                // Whether it said it was ready first is still to be read from its link,
                // which ends now: its exit is handled once that is known.
                r.workers[at].pending_exit = Some(status);
                return None;
            }
            let w = r.workers.remove(at);
            Some((w.served, current == Some(pid)))
        });
        let Some((served, was_current)) = gone else {
            return;
        };
        if !served {
            // Its load failed, and was reported so.
            return;
        }
        let (code, why) = worker::describe(status);
        if !was_current {
            self.warning(&format!(
                "Former worker ({pid}) exited with code {code} ({why})"
            ));
            return;
        }
        let line = format!("Current worker ({pid}) exited with code {code} ({why})");
        if code < 128 {
            self.warning(&line);
        } else {
            self.alert(&line);
        }
        // A worker stopped by SIGINT or SIGTERM (someone else's) is no failure, as in HAProxy;
        // but the master reports a SIGINT death in its own status (130), not a SIGTERM one.
        if !matches!(code, 0 | 143) {
            self.exit_code.get_or_insert(code);
        }
        let failed = !matches!(code, 0 | 130 | 143);
        if failed && !self.stopping && self.settings.exit_on_failure {
            self.alert("exit-on-failure: killing every processes with SIGTERM");
            self.stopping = true;
            self.signal_all(Signal::SIGTERM);
        }
    }

    fn stop(&mut self, sig: Signal) {
        if !self.stopping {
            self.warning("Exiting Master process...");
            self.notifier.stopping();
        }
        self.stopping = true;
        self.signal_all(sig);
    }

    fn signal_all(&self, sig: Signal) {
        // Not one that exited already (its pid may be reused).
        let pids = self.workers(|ws| {
            ws.iter()
                .filter(|w| w.pending_exit.is_none())
                .map(|w| w.pid)
                .collect::<Vec<_>>()
        });
        for pid in pids {
            signal_pid(pid, sig);
        }
    }

    fn workers<T>(&self, f: impl FnOnce(&Vec<Worker>) -> T) -> T {
        match self.registry.lock() {
            Ok(r) => f(&r.workers),
            Err(poisoned) => f(&poisoned.into_inner().workers),
        }
    }

    /// In the background, once the first worker is started (or could not be): what the
    /// master says from now on goes nowhere, as HAProxy's.
    fn quiet_stdio(&mut self) {
        if let Some(dev_null) = self.quiet_after_first_worker.take() {
            dev_null.quiet_stdio();
        }
    }

    fn notice(&self, text: &str) {
        crate::process::say!("[NOTICE]   ({}) : {text}", self.pid);
    }

    fn warning(&self, text: &str) {
        crate::process::say_line(&format!("[WARNING]  ({}) : {text}", self.pid));
    }

    fn alert(&self, text: &str) {
        crate::process::say_line(&format!("[ALERT]    ({}) : {text}", self.pid));
    }
}

fn signal_pid(pid: u32, sig: Signal) {
    // A worker that just exited may be gone: nothing to do then.
    let _ = kill(Pid::from_raw(pid as i32), sig);
}
