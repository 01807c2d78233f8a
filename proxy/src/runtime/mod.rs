//! The running load balancer on tokio: listeners, connections, health checks, resolvers, the
//! runtime API, and stopping (soft stop drains connections, hard stop ends them).
//!
//! - [`state`]: frontends, backends, servers, counters.
//! - [`balance`]: choosing a server.
//! - [`session`]: one TCP-mode connection (connect, retries, redispatch, PROXY header).
//! - [`http`]: one HTTP-mode connection (HTTP/1.1 keep-alive, forwardfor, errors, stats page).
//! - [`h1`]: the head each side gets, as HAProxy's HTTP/1 layer writes it (lower-case names,
//!   per-hop `Connection`, `h1-case-adjust`).
//! - [`forward`]: moving bytes both ways (splice(2) through pooled pipes, or copying).
//! - [`listener`]: listening sockets (`SO_REUSEPORT`, `IP_FREEBIND`).
//! - [`checks`]: health checks (connect, tcp-check, httpchk, ssl-hello-chk, over TLS or not;
//!   rise/fall/inter).
//! - [`tls`]: TLS connections to servers (`ssl`, `check-ssl`): handshakes, TCP-mode traffic.
//! - [`dns`]: the resolvers' DNS client and the re-resolution loop.
//! - [`stats`]: `show info`, `show stat` CSV, the HTML stats page.
//! - [`auth`]: HTTP Basic credentials checked against `userlist` sections.
//! - [`api`]: the runtime API on the stats socket, including `_getsocks` for reloads.
//! - [`handover`]: passing the listening sockets to the next process on reload.
//! - [`master_link`]: a worker's link to its master (master-worker mode).
//! - [`log`]: syslog lines.
//! - [`logformat`]: HAProxy's custom log formats, compiled and rendered.
//! - [`meter`]: per-second rates and sliding means for the stats.
//! - [`prometheus`]: the Prometheus exporter, in HAProxy's metric names.
//! - [`proxyproto`]: reading PROXY protocol headers (`accept-proxy`).
//! - [`sample`]: sample fetches and ACL matching; [`rules`]: applying a proxy's rules.
//! - [`rdp`]: RDP cookies (`balance rdp-cookie`, `persist rdp-cookie`, `req.rdp_cookie`).

pub mod agent;
pub mod api;
pub mod auth;
pub mod balance;
pub mod check_format;
pub mod checks;
pub mod chunked;
pub mod client_socket;
pub mod convert;
pub mod dns;
pub mod error_capture;
pub mod forward;
pub mod fwlc;
pub mod fwrr;
pub mod h1;
pub mod h2;
pub mod h2_server;
pub mod handover;
pub mod http;
pub mod lbhash;
pub mod listener;
pub mod log;
pub mod log_forward;
pub mod logformat;
pub mod map;
pub mod master_link;
pub mod meter;
pub mod observe;
pub mod ocsp;
pub mod peers;
pub mod persist;
pub mod pool;
pub mod prometheus;
pub mod proxyproto;
pub mod rdp;
pub mod ring;
pub mod rules;
pub mod sample;
pub mod server_state;
pub mod session;
pub mod shutdown;
pub mod slowstart;
pub mod ssl_cert;
pub mod state;
pub mod stats;
pub mod stats_admin;
pub mod stats_html;
pub mod stick;
pub mod target;
pub mod tls;
pub mod track;
pub mod transitions;
pub mod vars;

/// HAProxy's `tune.bufsize` (its default, which hapx does not change): a request buffer,
/// what `req.payload` reaches, what a TCP client's first bytes are inspected in, what the
/// stats page's admin form may fill.
pub const BUFSIZE: usize = 16 * 1024;
/// The most TCP content inspection holds of either side's first bytes: HAProxy's analysers
/// stop waiting once a buffer is full but for the room kept for rewrites (`tune.bufsize`
/// minus `tune.maxrewrite`, 1024 by default): 15360 bytes.
pub const INSPECT_LIMIT: usize = BUFSIZE - 1024;

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use tokio::io::unix::AsyncFd;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::model::{Mode, StatsSocket};
use state::{Backend, Frontend, State};

/// A listening socket and the frontend it serves.
#[derive(Debug)]
pub struct BoundListener {
    pub frontend: usize,
    pub addr: SocketAddr,
    /// Which of the address's sockets this is: thread `slot % threads` accepts on it.
    pub slot: usize,
    pub socket: std::net::TcpListener,
}

/// A runtime API socket, bound.
#[derive(Debug)]
pub struct BoundCli {
    pub conf: StatsSocket,
    pub socket: UnixListener,
}

/// Everything bound before the process detaches and drops privileges.
#[derive(Debug)]
pub struct Prepared {
    pub state: Arc<State>,
    pub listeners: Vec<BoundListener>,
    pub clis: Vec<BoundCli>,
    /// The private hand-over channel ([`handover::bind_channel`]), bound before dropping
    /// privileges so that its credentials are the starting user's.
    pub channel: Option<UnixListener>,
    /// In master-worker mode, the link to the master ([`master_link`]).
    pub master: Option<master_link::Link>,
}

/// An error as `strerror` words it (without Rust's " (os error N)"), as HAProxy's
/// messages give it.
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// Binds every frontend's addresses, reusing `inherited` sockets (from an old process) whose
/// address matches. `inherited` keeps every socket until all binds succeed: a failed attempt
/// (retried while old processes release their ports) must not close the sockets it meant
/// to take over, since that would drop the connections queued on them.
pub fn bind_listeners(
    state: &State,
    inherited: &mut Vec<(SocketAddr, OwnedFd)>,
) -> anyhow::Result<Vec<BoundListener>> {
    let threads = thread_count(state);
    // Per address: its frontend, the inherited sockets (by index) and the new ones.
    let mut plan = Vec::new();
    let mut claimed = vec![false; inherited.len()];
    for (i, fe) in state.frontends.iter().enumerate() {
        if fe.conf.disabled {
            continue;
        }
        for bind in &fe.conf.binds {
            listener::warn_device(bind, &fe.conf);
            let tuning = listener::AcceptTuning::new(&fe.conf, bind);
            let backlog = listener::backlog(bind, &fe.conf, state.max_conns);
            // Every socket an old process had for this address is kept (dropping one would
            // drop the connections queued on it), then one per thread is completed.
            let mut taken = Vec::new();
            for (at, (addr, fd)) in inherited.iter().enumerate() {
                if *addr == bind.addr && !claimed[at] {
                    listener::adopt(fd, backlog, tuning).with_context(|| {
                        format!("[{}] : taking over socket [{}]", bind.place, bind.spec)
                    })?;
                    claimed[at] = true;
                    taken.push(at);
                }
            }
            let fresh = (taken.len()..threads)
                .map(|_| {
                    listener::open(bind, backlog, tuning).map_err(|e| {
                        let argv0 = std::env::args().next().unwrap_or_default();
                        anyhow::anyhow!(
                            "Binding [{}] for {} {}: cannot bind socket ({}) for [{}:{}]\n\
                             [ALERT]    ({}) : [{argv0}.main()] Some protocols failed to start their listeners! Exiting.",
                            bind.place,
                            fe.conf.kind.type_str(),
                            fe.name,
                            errno_text(&e),
                            bind.addr.ip(),
                            bind.addr.port(),
                            std::process::id(),
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            plan.push((i, bind.addr, taken, fresh));
        }
    }
    // Everything is bound: only now do the inherited sockets leave `inherited`.
    let mut pool: Vec<Option<(SocketAddr, OwnedFd)>> =
        std::mem::take(inherited).into_iter().map(Some).collect();
    let mut out = Vec::new();
    for (frontend, addr, taken, fresh) in plan {
        let adopted = taken
            .into_iter()
            .filter_map(|at| pool[at].take())
            .map(|(_, fd)| std::net::TcpListener::from(fd));
        out.extend(
            adopted
                .chain(fresh)
                .enumerate()
                .map(|(slot, socket)| BoundListener {
                    frontend,
                    addr,
                    slot,
                    socket,
                }),
        );
    }
    inherited.extend(pool.into_iter().flatten());
    Ok(out)
}

/// Threads to run: `nbthread`, else one per CPU.
pub fn thread_count(state: &State) -> usize {
    threads_for(&state.config.global)
}

/// Threads a configuration runs: `nbthread`, else one per CPU.
pub fn threads_for(global: &crate::config::model::Global) -> usize {
    global
        .nbthread
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Binds the runtime API sockets (replacing stale socket files).
pub fn bind_clis(state: &State) -> anyhow::Result<Vec<BoundCli>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for conf in &state.config.global.stats_sockets {
        let _ = std::fs::remove_file(&conf.path);
        let socket = UnixListener::bind(&conf.path).with_context(|| {
            format!(
                "[{}] : cannot bind UNIX socket '{}'",
                conf.place,
                conf.path.display()
            )
        })?;
        if let Some(mode) = conf.mode {
            std::fs::set_permissions(&conf.path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set mode of '{}'", conf.path.display()))?;
        }
        socket.set_nonblocking(true)?;
        out.push(BoundCli {
            conf: conf.clone(),
            socket,
        });
    }
    Ok(out)
}

/// How the process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// SIGUSR1: stop listening, finish the connections.
    Soft,
    /// SIGTERM/SIGINT: stop now.
    Hard,
}

/// Runs until stopped. Must be called outside any tokio runtime (it builds them).
///
/// One single-threaded runtime per thread (`nbthread`, default: the CPU count), like
/// HAProxy's threads: each accepts on its own `SO_REUSEPORT` socket of every address (the
/// kernel spreads connections, no thread is woken for another's connection) and runs its
/// connections to their end without cross-thread wake-ups. The first thread also runs checks,
/// resolvers and the runtime API; stick-table replication runs on a thread of its own
/// ([`peers::start`]).
pub fn run(prepared: Prepared) -> anyhow::Result<()> {
    let threads = thread_count(&prepared.state);
    pool::set_threads(threads);
    // HAProxy holds one socket per listening address (hapx one per thread, see
    // `BoundListener::slot`): the idle pools' descriptor bounds count the addresses.
    let addresses = (prepared.listeners.iter()).filter(|l| l.slot == 0).count();
    let ratios = prepared.state.config.global.pool_fd_ratios;
    let ratios = (
        ratios.0.unwrap_or(pool::DEFAULT_FD_RATIOS.0),
        ratios.1.unwrap_or(pool::DEFAULT_FD_RATIOS.1),
    );
    let listening = addresses + prepared.clis.len();
    pool::bound_descriptors(prepared.state.max_sock, ratios, listening, threads);
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let (pause_tx, pause_rx) = watch::channel(false);
    let shared = Shared {
        // The runtime API's `set maxconn global|frontend` resizes these.
        global_slots: prepared.state.global_slots.semaphore(),
        frontend_slots: (prepared.state.frontends.iter())
            .map(|f| f.slots.semaphore())
            .collect(),
        stop: stop_rx,
        paused: pause_rx,
        threads,
    };
    let rt = single_runtime()?;
    meter::register_runtime(rt.handle().clone());
    // Before any socket accepts: a signal sent once the proxy answers must not meet the
    // default action (SIGTTOU's stops the process).
    let signals = {
        let _in_runtime = rt.enter();
        Signals::new().context("setting up the signal handlers")?
    };
    // Held since the start (see `process::main`), delivered to the handlers from now on.
    crate::process::unblock_signals();
    // Before any frontend accepts: a reload's lesson must reach the new process before the
    // clients the old one sends away (see `peers::start`).
    peers::start(&prepared.state, shared.stop.clone())?;
    for t in 1..threads {
        let copies = prepared
            .listeners
            .iter()
            .filter(|l| l.slot % threads == t)
            .map(|l| Ok((l.frontend, l.socket.try_clone()?)))
            .collect::<std::io::Result<Vec<_>>>()
            .context("duplicating the listeners")?;
        let (state, shared) = (prepared.state.clone(), shared.clone());
        std::thread::Builder::new()
            .name(format!("hapx-worker-{t}"))
            .spawn(move || {
                let Ok(rt) = single_runtime() else { return };
                meter::register_runtime(rt.handle().clone());
                rt.block_on(async move {
                    for (frontend, socket) in copies {
                        if let Ok(socket) = tokio::net::TcpListener::from_std(socket) {
                            spawn_accept(&state, &shared, frontend, socket);
                        }
                    }
                    // Connections run here until the process exits.
                    timer_heartbeat().await;
                });
            })
            .context("starting a worker thread")?;
    }
    rt.block_on(serve(prepared, shared, stop_tx, pause_tx, signals))
}

/// Ticks forever, so that the timer wheel always holds a deadline at most `HEARTBEAT` away.
///
/// Why: when a new timer (every connect timeout) is due before the time the runtime last
/// promised to wake up at, tokio wakes its own driver through an eventfd write, a system call
/// for about every other short connection. With this tick the promised wake-up is never more
/// than `HEARTBEAT` away, so connect timeouts longer than that cost no wake-up.
async fn timer_heartbeat() {
    const HEARTBEAT: Duration = Duration::from_millis(500);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

fn single_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// What every thread's accept loops share.
#[derive(Debug, Clone)]
struct Shared {
    global_slots: Arc<Semaphore>,
    /// Per frontend (by index): its `maxconn`.
    frontend_slots: Vec<Arc<Semaphore>>,
    stop: watch::Receiver<Stop>,
    /// SIGTTOU pauses the listeners (see [`Pauses::releases`]), SIGTTIN resumes them.
    paused: watch::Receiver<bool>,
    threads: usize,
}

fn spawn_accept(
    state: &Arc<State>,
    shared: &Shared,
    frontend: usize,
    socket: tokio::net::TcpListener,
) {
    tokio::spawn(accept_loop(
        state.clone(),
        state.frontends[frontend].clone(),
        socket,
        shared.global_slots.clone(),
        shared.frontend_slots[frontend].clone(),
        shared.stop.clone(),
        shared.paused.clone(),
    ));
}

async fn serve(
    prepared: Prepared,
    shared: Shared,
    stop_tx: watch::Sender<Stop>,
    pause_tx: watch::Sender<bool>,
    signals: Signals,
) -> anyhow::Result<()> {
    let Prepared {
        state,
        listeners,
        clis,
        channel,
        master,
    } = prepared;
    let stop_tx = Arc::new(stop_tx);
    let stop_rx = shared.stop.clone();
    let mut raw_listeners = Vec::new();
    for l in listeners {
        let dup = l.socket.try_clone().context("duplicating a listener")?;
        raw_listeners.push((l.addr, dup));
        if l.slot % shared.threads == 0 {
            let socket = tokio::net::TcpListener::from_std(l.socket)?;
            spawn_accept(&state, &shared, l.frontend, socket);
        }
    }
    let handover = Arc::new(std::sync::Mutex::new(raw_listeners));
    if let Some(channel) = channel {
        tokio::spawn(handover::serve_channel(
            state.clone(),
            channel,
            handover.clone(),
        ));
    }
    let mut cli_sockets = Vec::new();
    for cli in clis {
        cli_sockets.push((cli.conf, tokio::net::UnixListener::from_std(cli.socket)?));
    }
    // The master's `@N` sessions go to the runtime API with the `stats socket`s' connections
    // (within `stats maxconn` together).
    let (passed, master_sessions) = match master {
        Some(_) => {
            let (passed, sessions) = tokio::sync::mpsc::unbounded_channel();
            (Some(passed), Some(sessions))
        }
        None => (None, None),
    };
    if !cli_sockets.is_empty() || master_sessions.is_some() {
        let api = api::serve(
            state.clone(),
            cli_sockets,
            handover.clone(),
            master_sessions,
        );
        tokio::spawn(api);
    }
    if let (Some(link), Some(passed)) = (master, passed) {
        tokio::spawn(master_link::serve(
            link,
            state.clone(),
            stop_tx.clone(),
            passed,
        ));
    }
    ring::install(&state.config.rings);
    log_forward::start(&state.config.log_forwards)?;
    checks::spawn_all(&state);
    dns::spawn_all(&state);
    tokio::spawn(timer_heartbeat());
    tokio::spawn(meter::rotate_sent_periods());
    let mut stop_rx2 = stop_rx.clone();
    tokio::spawn(watch_signals(
        state.clone(),
        stop_tx.clone(),
        pause_tx,
        signals,
    ));
    loop {
        stop_rx2.changed().await.ok();
        let stop = *stop_rx2.borrow();
        match stop {
            Stop::Running => continue,
            Stop::Hard => return Ok(()),
            Stop::Soft => break,
        }
    }
    state.stop_softly();
    announce_stop(&state);
    // Our copies of the listening sockets go too: a new process may hold them now.
    handover.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let hard_stop = state.config.global.hard_stop_after;
    let finished = async {
        // A stopping process teaching its successor its stick tables stays for the lesson.
        while state.cur_conns.load(Relaxed) > 0 || peers::lesson_running() {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    };
    let hard_stop_due = async {
        match hard_stop {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = finished => {}
        () = hard_stop_due => stop_hard(&state).await,
        _ = wait_hard(stop_rx2) => {}
    }
    Ok(())
}

/// How often a stopping process looks whether its connections are gone.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How long the streams a hard stop kills have to end, as HAProxy's, which then exits anyway.
const HARD_STOP_GRACE: Duration = Duration::from_secs(1);

/// HAProxy's `hard_stop`, at `hard-stop-after` counted from the soft stop: it says so (on
/// stderr and in the global logs), names each frontend that still holds connections (in its
/// own logs), kills every stream (`stream_shutdown(SF_ERR_KILLED)`: each is logged with
/// termination code `K`, as the runtime API's `shutdown session` kills it), and exits once
/// they ended, or a second later, saying so, if some did not.
async fn stop_hard(state: &State) {
    let pid = std::process::id();
    let global = global_logger(state);
    let say = |logger: &log::Logger, msg: &str| {
        crate::process::say!("[WARNING]  ({pid}) : {msg}");
        logger.send(log::LOG_WARNING, msg);
    };
    say(
        &global,
        "soft-stop running for too long, performing a hard-stop.",
    );
    for fe in state.frontends.iter() {
        let remaining = fe.counters.cur.load(Relaxed);
        if remaining > 0 {
            let msg = format!(
                "Proxy {} hard-stopped ({remaining} remaining conns will be closed).",
                fe.name
            );
            say(&fe.logger, &msg);
        }
    }
    kill_every_stream(state);
    let ended = async {
        while state.cur_conns.load(Relaxed) > 0 {
            tokio::time::sleep(DRAIN_POLL).await;
        }
    };
    if tokio::time::timeout(HARD_STOP_GRACE, ended).await.is_err() {
        say(&global, "Some tasks resisted to hard-stop, exiting now.");
    }
}

/// The logger of the lines HAProxy sends to its global log targets (`send_log(NULL, ...)`).
fn global_logger(state: &State) -> log::Logger {
    let global = &state.config.global;
    log::Logger::new(&global.logs, global.log_tag.as_deref()).with_rings(&global.ring_logs)
}

/// Kills every registered stream, as the runtime API's `shutdown session` kills one.
fn kill_every_stream(state: &State) {
    for stream in shutdown::streams(false) {
        let Some(switch) = shutdown::kill_stream(stream.id) else {
            continue;
        };
        let mut servers = state.backends.iter().flat_map(|b| b.servers.iter());
        if let Some(server) = servers.find(|s| s.kill.is_named(switch)) {
            server.kill.wake();
        }
    }
}

async fn wait_hard(mut rx: watch::Receiver<Stop>) {
    while rx.changed().await.is_ok() {
        if *rx.borrow() == Stop::Hard {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// The signals HAProxy answers: SIGUSR1 soft stop, SIGTERM/SIGINT stop, SIGTTOU/SIGTTIN
/// pause/resume the listeners (a new process sends them when it cannot bind; their default
/// action would stop the process), saying so for each proxy that listens, as HAProxy does,
/// and SIGHUP dumps the servers' states ([`dump_server_states`]).
async fn watch_signals(
    state: Arc<State>,
    stop: Arc<watch::Sender<Stop>>,
    pause: watch::Sender<bool>,
    signals: Signals,
) {
    let Signals {
        mut usr1,
        mut term,
        mut int,
        mut ttou,
        mut ttin,
        mut hup,
    } = signals;
    loop {
        let next = tokio::select! {
            _ = usr1.recv() => Stop::Soft,
            _ = term.recv() => {
                crate::process::note_stop_signal(nix::sys::signal::Signal::SIGTERM);
                Stop::Hard
            }
            _ = int.recv() => {
                crate::process::note_stop_signal(nix::sys::signal::Signal::SIGINT);
                Stop::Hard
            }
            _ = ttou.recv() => {
                if !pause.send_replace(true) {
                    announce_pause(&state, "Paused");
                }
                continue;
            }
            _ = ttin.recv() => {
                if pause.send_replace(false) {
                    announce_pause(&state, "Resumed");
                }
                continue;
            }
            _ = hup.recv() => {
                dump_server_states(&state);
                continue;
            }
        };
        stop.send_replace(next);
    }
}

/// The signals [`watch_signals`] answers, caught from the moment they are set up (deliveries
/// wait in them until watched).
struct Signals {
    usr1: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    ttou: tokio::signal::unix::Signal,
    ttin: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// To call within a runtime.
    fn new() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            ttou: signal(SignalKind::from_raw(libc::SIGTTOU))?,
            ttin: signal(SignalKind::from_raw(libc::SIGTTIN))?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// "Paused frontend fe." (or "Resumed"), for each proxy that listens: HAProxy's warning.
fn announce_pause(state: &State, what: &str) {
    for fe in state.frontends.iter().filter(|f| !f.conf.disabled) {
        let kind = match fe.conf.kind {
            crate::config::model::ProxyKind::Listen => "proxy",
            kind => kind.keyword(),
        };
        let msg = format!("{what} {kind} {}.", fe.name);
        crate::process::say!("[WARNING]  ({}) : {msg}", std::process::id());
        fe.logger.send(log::LOG_WARNING, &msg);
    }
}

/// HAProxy's answer to SIGHUP (`sig_dump_state`): each proxy's servers, UP or DOWN (stopped:
/// down or in maintenance) with their current, queued and total sessions, then the proxy's
/// own line; as warnings on stderr, and at level notice in the proxy's logs, each proxy's
/// lines after one that announces them. Last, its internal HTTP client's, as HAProxy's.
fn dump_server_states(state: &State) {
    let pid = std::process::id();
    crate::process::say!("[WARNING]  ({pid}) : SIGHUP received, dumping servers states.");
    let say = |logger: &log::Logger, line: &str| {
        crate::process::say!("[WARNING]  ({pid}) : {line}");
        logger.send(log::LOG_NOTICE, line);
    };
    let say_proxy = |name: &str, logger: &log::Logger, lines: Vec<String>| {
        let intro = format!("SIGHUP received, dumping servers states for proxy {name}.");
        logger.send(log::LOG_NOTICE, &intro);
        lines.iter().for_each(|line| say(logger, line));
    };
    for p in &state.config.proxies {
        // A frontend and a backend may share a name: each is its own proxy.
        let fe = (state.frontends.iter()).find(|f| p.kind.is_frontend() && f.name == p.name);
        let be = (state.backends.iter()).find(|b| p.kind.is_backend() && b.name == p.name);
        let Some(logger) = fe.map(|f| &f.logger).or(be.map(|b| &b.logger)) else {
            continue;
        };
        say_proxy(&p.name, logger, proxy_state_lines(&p.name, fe, be));
    }
    let global = global_logger(state);
    let http_client = ["<HTTPCLIENT>", "<HTTPSCLIENT>"].map(|server| {
        format!("SIGHUP: Server <HTTPCLIENT>/{server} is UP. Conn: 0 act, 0 pend, 0 tot.")
    });
    let mut lines = http_client.to_vec();
    lines.push("SIGHUP: Proxy <HTTPCLIENT> has no server available ! Conn: act(FE+BE): 0+0, 0 pend (0 unass), tot(FE+BE): 0+0.".into());
    say_proxy("<HTTPCLIENT>", &global, lines);
}

/// One proxy's SIGHUP lines (see [`dump_server_states`]): its servers', then its own.
fn proxy_state_lines(
    name: &str,
    fe: Option<&Arc<Frontend>>,
    be: Option<&Arc<Backend>>,
) -> Vec<String> {
    let servers = be.map_or(&[][..], |b| &b.servers[..]);
    // The backend's own queue (unassigned), then each server's.
    let queues = be.map(|b| balance::queue_lengths(b)).unwrap_or_default();
    let queued = |i: usize| queues.get(i).map_or(0, |q| q.0);
    let mut lines: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "SIGHUP: Server {name}/{} is {}. Conn: {} act, {} pend, {} tot.",
                s.name,
                if s.is_stopped() { "DOWN" } else { "UP" },
                s.counters.cur.load(Relaxed),
                queued(i + 1),
                s.counters.total.load(Relaxed),
            )
        })
        .collect();
    let cur = |c: Option<&Arc<state::Counters>>| c.map_or(0, |c| c.cur.load(Relaxed));
    let total = |c: Option<&Arc<state::Counters>>| c.map_or(0, |c| c.total.load(Relaxed));
    let (fe_counters, be_counters) = (fe.map(|f| &f.counters), be.map(|b| &b.counters));
    let conns = format!(
        "Conn: act(FE+BE): {}+{}, {} pend ({} unass), tot(FE+BE): {}+{}.",
        cur(fe_counters),
        cur(be_counters),
        queues.iter().map(|q| q.0).sum::<usize>(),
        queued(0),
        total(fe_counters),
        total(be_counters),
    );
    let (active, backup) = be.map_or((0, 0), |b| (b.active_count(), b.backup_count()));
    let what = match (servers.is_empty(), active, backup) {
        (true, ..) => "has no servers.".to_string(),
        (false, 0, 0) => "has no server available !".to_string(),
        (false, 0, _) => "is running on backup servers !".to_string(),
        (false, ..) => {
            format!("has {active} active servers and {backup} backup servers available.")
        }
    };
    lines.push(format!("SIGHUP: Proxy {name} {what} {conns}"));
    lines
}

/// The runtime API's sessions begun (its stats sockets' and the master's): the cumulated
/// connections of HAProxy's `GLOBAL` proxy, which serves them.
static CLI_SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a runtime API session as it begins (see [`CLI_SESSIONS`]).
pub(crate) fn cli_session_begun() {
    CLI_SESSIONS.fetch_add(1, Relaxed);
}

/// What HAProxy says of each proxy a soft stop stops (on stderr and in its logs): the
/// connections it took as a frontend and as a backend, in HAProxy's order: first the proxies
/// that listen, as their listeners stop; then `GLOBAL` (the runtime API's, whose sessions are
/// its connections both ways) when a `stats socket` listens; then the other proxies, as the
/// stop goes through the list; last, its internal HTTP client's.
fn announce_stop(state: &State) {
    let pid = std::process::id();
    let say = |name: &str, fe: u64, be: u64, logger: Option<&log::Logger>| {
        let msg = format!("Proxy {name} stopped (cumulated conns: FE: {fe}, BE: {be}).");
        crate::process::say!("[WARNING]  ({pid}) : {msg}");
        if let Some(logger) = logger {
            logger.send(log::LOG_WARNING, &msg);
        }
    };
    let enabled = || state.config.proxies.iter().filter(|p| !p.disabled);
    let (listening, others): (Vec<_>, Vec<_>) = enabled().partition(|p| !p.binds.is_empty());
    let say_proxy = |p: &crate::config::model::Proxy| {
        // A frontend and a backend may share a name: each is its own proxy.
        let fe = (state.frontends.iter()).find(|f| p.kind.is_frontend() && f.name == p.name);
        let be = (state.backends.iter()).find(|b| p.kind.is_backend() && b.name == p.name);
        let total = |c: &state::Counters| c.total.load(Relaxed);
        say(
            &p.name,
            fe.map_or(0, |f| total(&f.counters)),
            be.map_or(0, |b| total(&b.counters)),
            // A backend's line goes to its own log targets.
            fe.map(|f| &f.logger).or(be.map(|b| &b.logger)),
        );
    };
    listening.into_iter().for_each(say_proxy);
    if !state.config.global.stats_sockets.is_empty() {
        let sessions = CLI_SESSIONS.load(Relaxed);
        say("GLOBAL", sessions, sessions, None);
    }
    others.into_iter().for_each(say_proxy);
    // The internal HTTP client's proxy logs to the global targets.
    say("<HTTPCLIENT>", 0, 0, Some(&global_logger(state)));
}

/// The two ways an accept loop is paused, watched together.
struct Pauses {
    /// SIGTTOU until SIGTTIN.
    process: watch::Receiver<bool>,
    /// `disable frontend` until `enable frontend`.
    frontend: watch::Receiver<bool>,
}

impl Pauses {
    fn any(&mut self) -> bool {
        let process = *self.process.borrow_and_update();
        *self.frontend.borrow_and_update() || process
    }

    /// Whether the socket must stop listening, so that new connections are refused and its
    /// port is free for another process to bind (with `SO_REUSEADDR`), as HAProxy pauses a
    /// listener on Linux: always for `disable frontend`; for SIGTTOU unless the socket was
    /// handed over to a new process, which listens on it now (the pause then only stops
    /// accepting here).
    fn releases(&self, socket: &std::net::TcpListener) -> bool {
        *self.frontend.borrow() || (*self.process.borrow() && !handover::handed_over(socket))
    }

    /// Waits for either pause to change; false when the process stops meanwhile.
    async fn changed(&mut self, stop: &mut watch::Receiver<Stop>) -> bool {
        tokio::select! {
            // A closed channel (the signal watcher gone) never changes again.
            Ok(()) = self.process.changed() => true,
            Ok(()) = self.frontend.changed() => true,
            _ = stop.changed() => false,
        }
    }
}

/// Holds a paused listener until neither pause holds. A released socket is shut down (on a
/// listening socket, the kernel's disconnect: queued connections are reset, the port is no
/// longer in use) and listens again when resumed; it comes back with a new registration,
/// the shutdown having left the old one read-closed for good. None when the process stops
/// meanwhile.
async fn hold_paused(
    socket: AsyncFd<std::net::TcpListener>,
    listening: &mut Listening,
    backlog: i32,
    pauses: &mut Pauses,
    stop: &mut watch::Receiver<Stop>,
) -> Option<AsyncFd<std::net::TcpListener>> {
    let socket = socket.into_inner();
    let mut running = true;
    while running && pauses.any() {
        if listening.now && pauses.releases(&socket) {
            let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Read);
            listening.set(false);
        }
        running = pauses.changed(stop).await;
    }
    if !listening.now {
        // Fails when another process took the port meanwhile: nothing comes to this
        // socket then, as with HAProxy's failed resume.
        let _ = socket2::SockRef::from(&socket).listen(backlog);
        listening.set(true);
    }
    running.then(|| watch_listener(socket)).flatten()
}

/// Counts an accept loop's socket in its frontend's, and whether it listens (see
/// [`Frontend::settled`]), while the loop runs.
struct Listening {
    fe: Arc<Frontend>,
    now: bool,
}

impl Listening {
    fn new(fe: &Arc<Frontend>) -> Self {
        fe.sockets.fetch_add(1, Relaxed);
        fe.listening.fetch_add(1, Relaxed);
        Listening {
            fe: fe.clone(),
            now: true,
        }
    }

    fn set(&mut self, listening: bool) {
        if listening != self.now {
            self.now = listening;
            match listening {
                true => self.fe.listening.fetch_add(1, Relaxed),
                false => self.fe.listening.fetch_sub(1, Relaxed),
            };
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.set(false);
        self.fe.sockets.fetch_sub(1, Relaxed);
    }
}

async fn accept_loop(
    state: Arc<State>,
    fe: Arc<Frontend>,
    socket: tokio::net::TcpListener,
    global_slots: Arc<Semaphore>,
    fe_slots: Arc<Semaphore>,
    mut stop: watch::Receiver<Stop>,
    paused: watch::Receiver<bool>,
) {
    // Readiness apart from accept(2): see `accept_with_slots`.
    let Some(mut socket) = socket.into_std().ok().and_then(watch_listener) else {
        return;
    };
    let Ok(bound) = socket.get_ref().local_addr() else {
        return;
    };
    let accept_proxy = fe
        .conf
        .binds
        .iter()
        .any(|b| b.addr == bound && b.accept_proxy);
    // `bind ... ssl`: decided by the socket that accepts, never by the connection's local
    // address (a plain wildcard bind and a TLS bind on one IP may share a port).
    let tls = fe
        .conf
        .binds
        .iter()
        .find(|b| b.addr == bound)
        .and_then(|b| b.tls.clone());
    // `bind ... proto`: the HTTP version its connections speak (see `http::serve_proto`).
    let proto = fe
        .conf
        .binds
        .iter()
        .find(|b| b.addr == bound)
        .and_then(|b| b.proto);
    // Any backend the frontend may choose (`default_backend` or a `use_backend`) counts.
    let sends_proxy = |b: &Backend| b.servers.iter().any(|s| s.opts.send_proxy.is_some());
    let exact_local = bound.ip().is_unspecified()
        && (fe.backend.as_deref().is_some_and(sends_proxy)
            || fe
                .switching
                .iter()
                .flat_map(rules::Switch::backends)
                .any(|b| sends_proxy(b)));
    let keepalive = fe.conf.options.clitcpka.then_some(fe.conf.clitcpka);
    let backlog = fe
        .conf
        .binds
        .iter()
        .find(|b| b.addr == bound)
        .map_or(i32::try_from(state.max_conns).unwrap_or(i32::MAX), |b| {
            listener::backlog(b, &fe.conf, state.max_conns)
        });
    let mut pauses = Pauses {
        process: paused,
        frontend: fe.paused.subscribe(),
    };
    let mut listening = Listening::new(&fe);
    // `bind ... maxconn`: this listener's own bound, shared with its sockets on other threads.
    let listener_slots = fe.listener_slots(bound);
    // `rate-limit sessions`: the frontend's own limit (0: none), on the connections it
    // accepted in the last second, all of which are sessions unless a connection rule
    // rejected them.
    let frontend_rate_limit = std::num::NonZeroU32::new(fe.conf.rate_limit_sessions);
    loop {
        // `maxconnrate`/`maxsessrate` (every connection is a session here): the lower one,
        // read each turn as `set rate-limit ... global` may change it.
        let rate_limit = state.rate_limits.effective();
        if let Some(limit) = rate_limit {
            accept_rate_wait(&state.conn_rate, limit - 1).await;
        }
        if let Some(limit) = frontend_rate_limit {
            accept_rate_wait(&fe.counters.connection_rate, limit.get() - 1).await;
        }
        if pauses.any() {
            match hold_paused(socket, &mut listening, backlog, &mut pauses, &mut stop).await {
                Some(resumed) => socket = resumed,
                None => return,
            }
            continue;
        }
        // A pause while waiting for a connection or a slot (at `maxconn`) takes effect at
        // once; slots taken meanwhile go with this turn.
        let accepted = tokio::select! {
            a = accept_with_slots(&socket, listener_slots.as_ref(), &global_slots, &fe_slots) => a,
            running = pauses.changed(&mut stop) => if running { continue } else { return },
        };
        let Some(accepted) = accepted else { return };
        let (client, peer, slots) = match accepted
            .and_then(|(c, peer, slots)| Ok((tokio::net::TcpStream::from_std(c)?, peer, slots)))
        {
            Ok(x) => x,
            Err(e) => {
                tokio::time::sleep(accept_failed(&state, &fe, &e)).await;
                continue;
            }
        };
        // TCP_NODELAY comes from the listener (`AcceptTuning`).
        if let Some(ka) = &keepalive {
            // Probes only detect dead peers sooner: a failure leaves the connection usable.
            let _ = listener::set_keepalive(socket2::SockRef::from(&client), ka);
        }
        // The listener's address gives the port; only a PROXY header needs the exact local
        // address of a wildcard bind, which costs a getsockname(2).
        let local = if exact_local {
            client.local_addr().unwrap_or(bound)
        } else {
            bound
        };
        let (state, fe, tls) = (state.clone(), fe.clone(), tls.clone());
        state.total_conns.fetch_add(1, Relaxed);
        state.conn_rate.tick();
        fe.counters.connection_accepted();
        if let Some(limit) = rate_limit {
            // Acceptors on other threads may have taken the same last slot: the extra
            // connections wait here until they fit.
            accept_rate_wait(&state.conn_rate, limit).await;
        }
        let open = OpenConn::new(state.clone(), slots);
        // A connection's stick counters exist only when the process has stick tables; only
        // then is its task wrapped in their scope (a plaintext task without tables is the
        // connection's future alone).
        let counters = (!state.tables.is_empty()).then(Arc::<stick::Counters>::default);
        let conn = NewConnection {
            client,
            peer,
            local,
            accept_proxy,
            tls,
        };
        // A TCP and an HTTP connection are tasks of their own types: each task is as large
        // as its session's future, and an HTTP session's (which boxes its exchanges) is the
        // smaller one.
        let kept = counters.clone();
        match fe.conf.mode {
            Mode::Tcp => spawn_connection(
                connection(state, fe, conn, open, kept, session::serve_tcp),
                counters,
            ),
            Mode::Http if proto.is_none() => spawn_connection(
                connection(state, fe, conn, open, kept, http::serve),
                counters,
            ),
            Mode::Http => spawn_connection(
                connection(state, fe, conn, open, kept, move |s, f, c, p, l, t| {
                    http::serve_proto(s, f, c, (p, l), t, proto)
                }),
                counters,
            ),
        }
    }
}

/// Runs a connection's task, in the scope of its variables and of its stick counters when
/// the process has tables.
fn spawn_connection<F>(task: F, counters: Option<Arc<stick::Counters>>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    // Its variables too (an empty store, which allocates nothing until one is set).
    let stream_vars = vars::StreamVars::default;
    match counters {
        Some(c) => drop(tokio::spawn(
            vars::STREAM.scope(stream_vars(), stick::SESSION.scope(c, task)),
        )),
        None => drop(tokio::spawn(vars::STREAM.scope(stream_vars(), task))),
    }
}

/// What a failed accept(2) costs its listener, as HAProxy's `listener_accept`: out of
/// descriptors or memory, the frontend's logs get HAProxy's emergency message and the
/// listener pauses for 100 ms (HAProxy's `transient_error`); a connection the client
/// aborted before it was taken is skipped at once; anything else pauses briefly rather than
/// spin.
fn accept_failed(state: &State, fe: &Frontend, e: &io::Error) -> Duration {
    let limit = match e.raw_os_error() {
        Some(libc::ENFILE) => "system FD limit",
        Some(libc::EMFILE) => "process FD limit",
        Some(libc::ENOBUFS | libc::ENOMEM) => "system memory limit",
        Some(libc::ECONNABORTED | libc::EINTR) => return Duration::ZERO,
        _ => return Duration::from_millis(10),
    };
    let advice = if e.raw_os_error() == Some(libc::EMFILE) {
        "Please check 'ulimit-n' and restart."
    } else {
        "Please check system tunables."
    };
    let msg = format!(
        "Proxy {} reached {limit} (maxsock={}). {advice}",
        fe.name, state.max_sock
    );
    fe.logger.send(log::LOG_EMERG, &msg);
    Duration::from_millis(100)
}

/// Waits while the process accepted more than `most` connections in the last second
/// (HAProxy stops its listeners the same way, until the rate falls below the limit).
async fn accept_rate_wait(rate: &meter::Rate, most: u32) {
    // One event's share of a second, so that the wait ends about when one more fits.
    let step = Duration::from_millis((1000 / u64::from(most.max(1))).clamp(1, 100));
    while rate.per_second() > most {
        tokio::time::sleep(step).await;
    }
}

/// What an accept hands its connection's task.
#[derive(Debug)]
struct NewConnection {
    client: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    accept_proxy: bool,
    tls: Option<Arc<crate::config::bind_tls::TlsServer>>,
}

/// One client connection, from its `tcp-request connection` rules and PROXY header to the
/// end of its session, which `serve` runs (`session::serve_tcp` or `http::serve`, as the
/// frontend's mode says). `open` holds its slots until the task ends.
fn connection<S, F>(
    state: Arc<State>,
    fe: Arc<Frontend>,
    conn: NewConnection,
    open: OpenConn,
    counters: Option<Arc<stick::Counters>>,
    serve: S,
) -> impl std::future::Future<Output = ()>
where
    S: FnOnce(
        Arc<State>,
        Arc<Frontend>,
        tokio::net::TcpStream,
        SocketAddr,
        SocketAddr,
        Option<Arc<crate::config::bind_tls::TlsServer>>,
    ) -> F,
    F: std::future::Future<Output = ()>,
{
    // Taken apart out here: a captured value moved into a local inside the block would be
    // held twice in the task.
    let NewConnection {
        mut client,
        peer,
        local,
        accept_proxy,
        tls,
    } = conn;
    // A block, not an `async fn`: an async fn keeps a second copy of its arguments in its
    // future, and this one lives as long as the connection.
    async move {
        // The slots go back when the task's future is dropped.
        let _open = &open;
        let verdict = match fe.conf.rules.tcp_connection.is_empty() {
            true => rules::ConnectionVerdict::default(),
            false => rules::accept_connection(
                &state,
                &fe,
                peer,
                rules::local_addr(&client, local),
                counters.as_deref(),
            ),
        };
        if !connection_goes_on(&fe, &client, &verdict) {
            return;
        }
        // `bind ... accept-proxy` for every connection, `expect-proxy layer4` for those its
        // rule matched: the header is read alike.
        let source = if accept_proxy || verdict.expect_proxy {
            let wait = fe.conf.timeouts.client.unwrap_or(Duration::from_secs(5));
            // Boxed: its state (632 bytes) would otherwise grow every connection's task.
            Box::pin(proxyproto::read(&mut client, wait))
                .await
                .map(|src| src.unwrap_or(peer))
        } else {
            Ok(peer)
        };
        // On a `bind ... ssl`, after the handshake (`tls_session_accepted`).
        let source = match (source, &tls) {
            (Ok(src), None) if !fe.conf.rules.tcp_session.is_empty() => {
                let counters = counters.as_deref();
                match session_accepted(&state, &fe, &client, src, local, counters, None) {
                    Some(src) => Ok(src),
                    None => return,
                }
            }
            (source, _) => source,
        };
        // A session once its handshakes are over (a TLS one's, after its handshake).
        if let (Some(c), Ok(_), None) = (&counters, &source, &tls) {
            c.session_accepted();
        }
        drop(counters);
        // The stream starts, past the connection's and session's rules: its variables' scopes.
        vars::stream_starts();
        match source {
            Ok(peer) => serve(state.clone(), fe, client, peer, local, tls).await,
            // A bind with accept-proxy takes no connection without a valid header.
            Err(e) => {
                fe.counters.req_errors.fetch_add(1, Relaxed);
                fe.logger.log_conn_error(&fe, peer, local, &e);
            }
        }
    }
}

/// Applies what a connection's `tcp-request connection` rules decided to its socket:
/// whether it goes on. Ended by a rule, it is not logged, as HAProxy does: `reject` resets
/// it and counts it (`dcon`), `silent-drop` closes it without a word to the client and
/// counts nothing (HAProxy 2.6 neither).
fn connection_goes_on(
    fe: &Frontend,
    client: &tokio::net::TcpStream,
    verdict: &rules::ConnectionVerdict,
) -> bool {
    client_socket::set_options(client, verdict.tos, verdict.mark);
    match verdict.end {
        rules::Layer4End::Accept => return true,
        rules::Layer4End::Reject => {
            fe.counters.denied_conn.fetch_add(1, Relaxed);
            let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
        }
        rules::Layer4End::SilentDrop => client_socket::silent_drop(client),
    }
    false
}

/// `tcp-request session` rules of a connection from `src` (its PROXY header's source):
/// the client address it goes on with (`set-src`'s), if it goes on. A rejected one is
/// reset, counted (`dses`) and not logged, as HAProxy; a dropped one (`silent-drop`) counted
/// in `dreq`, as HAProxy's action counts it.
fn session_accepted(
    state: &State,
    fe: &Frontend,
    client: &tokio::net::TcpStream,
    src: SocketAddr,
    local: SocketAddr,
    counters: Option<&stick::Counters>,
    tls: Option<&tls::ClientTls>,
) -> Option<SocketAddr> {
    let dst = rules::local_addr(client, local);
    let verdict = rules::accept_session(state, fe, (src, dst), counters, tls);
    client_socket::set_options(client, verdict.tos, verdict.mark);
    match verdict.end {
        rules::Layer4End::Accept => return Some(verdict.client(src)),
        rules::Layer4End::Reject => {
            fe.counters.denied_sess.fetch_add(1, Relaxed);
            let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
        }
        rules::Layer4End::SilentDrop => {
            fe.counters.denied_req.fetch_add(1, Relaxed);
            client_socket::silent_drop(client);
        }
    }
    None
}

/// A frontend's session from its accept (`scur`): counted in `stot` and the session rate at
/// once on a plain bind (its session rules are over), on a `bind ... ssl` only once its
/// handshake and session rules accept it ([`tls_session_accepted`]), as HAProxy's.
pub(crate) fn open_session(fe: &Frontend, tls: bool) -> state::SessionGuard {
    if tls {
        fe.counters.open_uncounted()
    } else {
        fe.counters.open()
    }
}

/// `tcp-request session` rules of a connection on a `bind ... ssl`, run once its handshake
/// is over, as HAProxy's (the `ssl_fc_*` fetches see what it negotiated): whether the
/// session goes on, counted then as a frontend's session (see [`open_session`]).
/// `src`: the client's address (its PROXY header's source).
pub(crate) fn tls_session_accepted(
    state: &State,
    fe: &Frontend,
    client: &tokio::net::TcpStream,
    (src, local): (SocketAddr, SocketAddr),
    facts: &tls::ClientTls,
) -> bool {
    let accepted = fe.conf.rules.tcp_session.is_empty() || {
        // Before any stream, as on a plain bind: the rules have no `txn`, `req` or `res`
        // scope (the task's stream began before the handshake: it begins again after).
        vars::stream_ends();
        let counters = stick::current();
        // The address a `set-src` gives is not taken on here: the TLS session goes on
        // with the handshake's client.
        let accepted = session_accepted(
            state,
            fe,
            client,
            src,
            local,
            counters.as_deref(),
            Some(facts),
        )
        .is_some();
        vars::stream_starts();
        accepted
    };
    if accepted {
        fe.counters.session_counted();
    }
    accepted
}

/// A listening socket registered for readiness alone, None if the reactor refuses it.
fn watch_listener(socket: std::net::TcpListener) -> Option<AsyncFd<std::net::TcpListener>> {
    // SAFETY: the listener owns its descriptor, which stays open and the same until the
    // AsyncFd gives the listener back or drops it.
    unsafe { AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE) }.ok()
}

/// A connection accepted with its slots.
type Accepted = (std::net::TcpStream, SocketAddr, ConnSlots);

/// Accepts a connection queued on `socket` once it has a slot in its frontend and in the
/// process; None if the slots are gone (never while the process runs). It waits for a
/// connection BEFORE taking slots: a frontend listens on a socket per thread
/// (`SO_REUSEPORT`), and a loop holding the last slot while waiting on its own empty socket
/// would leave a connection the kernel queued on another socket waiting for good. At
/// `maxconn` it waits for a slot with the connection left in the kernel's queue, as HAProxy
/// does (a reload's new process takes it from there). Readiness can be stale (another turn
/// emptied the queue): at `maxconn` the queue is looked at first, so that only a loop with
/// a connection waits for a slot, the frontend's first (a frontend at its own `maxconn`
/// takes none of the process's). A listener with its own `maxconn` takes its own slot
/// before those: full, it stops accepting, as HAProxy's `listener_full`.
async fn accept_with_slots(
    socket: &AsyncFd<std::net::TcpListener>,
    listener_slots: Option<&Arc<Semaphore>>,
    global_slots: &Arc<Semaphore>,
    fe_slots: &Arc<Semaphore>,
) -> Option<io::Result<Accepted>> {
    loop {
        let mut ready = match socket.readable().await {
            Ok(ready) => ready,
            Err(e) => return Some(Err(e)),
        };
        let slots = match free_slots(listener_slots, global_slots, fe_slots) {
            Some(slots) => slots,
            None if !listener::has_queued(socket.get_ref()) => {
                ready.clear_ready();
                continue;
            }
            // Waited for in one order by every loop, none held out of it: two loops each
            // holding the slot the other waits for would wait for good.
            None => {
                let listener = match listener_slots {
                    Some(slots) => Some(slots.clone().acquire_owned().await.ok()?),
                    None => None,
                };
                let f = fe_slots.clone().acquire_owned().await.ok()?;
                let g = global_slots.clone().acquire_owned().await.ok()?;
                ConnSlots {
                    _global: g,
                    _frontend: f,
                    _listener: listener,
                }
            }
        };
        match ready.try_io(|l| listener::accept(l.get_ref())) {
            Ok(Ok((conn, peer))) => return Some(Ok((conn, peer, slots))),
            Ok(Err(e)) => return Some(Err(e)),
            // The queue emptied (a client gave up): the slots go back.
            Err(_would_block) => continue,
        }
    }
}

/// A global, a frontend and (with its own `maxconn`) a listener slot if all are free at
/// once; else none taken.
fn free_slots(
    listener_slots: Option<&Arc<Semaphore>>,
    global_slots: &Arc<Semaphore>,
    fe_slots: &Arc<Semaphore>,
) -> Option<ConnSlots> {
    let listener = match listener_slots {
        Some(slots) => Some(slots.clone().try_acquire_owned().ok()?),
        None => None,
    };
    let frontend = fe_slots.clone().try_acquire_owned().ok()?;
    let global = global_slots.clone().try_acquire_owned().ok()?;
    Some(ConnSlots {
        _global: global,
        _frontend: frontend,
        _listener: listener,
    })
}

/// The slots one connection holds while it is open: the process's, its frontend's, and its
/// listener's when the bind line sets a `maxconn`.
#[derive(Debug)]
struct ConnSlots {
    // Held, never read: dropping them gives the slots back.
    _global: OwnedSemaphorePermit,
    _frontend: OwnedSemaphorePermit,
    _listener: Option<OwnedSemaphorePermit>,
}

/// One accepted connection in `cur_conns`, holding its global and frontend slots: dropping
/// it (at the task's end, or when a panic unwinds the task) gives both back, so a failed
/// connection can neither leak a slot nor keep a soft stop waiting forever.
struct OpenConn {
    state: Arc<State>,
    _slots: ConnSlots,
}

impl OpenConn {
    fn new(state: Arc<State>, slots: ConnSlots) -> Self {
        state.cur_conns.fetch_add(1, Relaxed);
        pool::count_client(true);
        OpenConn {
            state,
            _slots: slots,
        }
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.state.cur_conns.fetch_sub(1, Relaxed);
        pool::count_client(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_connection_gives_back_its_count_and_slots() {
        let budget = crate::limits::Budget {
            maxconn: 1,
            maxpipes: 0,
            maxsock: 30,
            fd_limit: 30,
        };
        let state = Arc::new(State::new(Default::default(), budget));
        let (global, frontend) = (Arc::new(Semaphore::new(1)), Arc::new(Semaphore::new(1)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let slots = ConnSlots {
                _global: global.clone().acquire_owned().await.unwrap(),
                _frontend: frontend.clone().acquire_owned().await.unwrap(),
                _listener: None,
            };
            let open = OpenConn::new(state.clone(), slots);
            assert_eq!(state.cur_conns.load(Relaxed), 1);
            let task = tokio::spawn(async move {
                let _open = open;
                panic!("a bug in a connection task");
            });
            assert!(task.await.unwrap_err().is_panic());
        });
        assert_eq!(state.cur_conns.load(Relaxed), 0);
        assert_eq!(
            (global.available_permits(), frontend.available_permits()),
            (1, 1)
        );
    }
}
