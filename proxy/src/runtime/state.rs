//! The running proxies: frontends, backends and servers with their live state and counters,
//! shared between the connection tasks, the health checks, the resolvers, the stats page and
//! the runtime API.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::meter::{self, Mean, Rate};

use crate::config::model::{self, Balance, Mode, Proxy, ServerOptions};

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Traffic counters shared by frontends, backends and servers.
#[derive(Debug, Default)]
pub struct Counters {
    pub cur: AtomicUsize,
    pub max: AtomicUsize,
    pub total: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub conn_errors: AtomicU64,
    pub resp_errors: AtomicU64,
    pub req_errors: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
    pub denied_req: AtomicU64,
    /// Responses denied by `http-response deny` (`dresp`).
    pub denied_resp: AtomicU64,
    /// Connections refused by `tcp-request connection reject` (`dcon`).
    pub denied_conn: AtomicU64,
    /// Sessions refused by `tcp-request session reject` (`dses`).
    pub denied_sess: AtomicU64,
    /// Requests the proxy answered itself: `monitor-uri`, the stats page (`intercepted`).
    pub intercepted: AtomicU64,
    pub http_reqs: AtomicU64,
    /// Responses by class: 1xx .. 5xx, other.
    pub http_status: [AtomicU64; 6],
    /// Sessions per second (`rate`).
    pub session_rate: Rate,
    /// A frontend's connections accepted, before its `tcp-request connection` and
    /// `session` rules (`conn_tot`), and per second (`conn_rate`): HAProxy counts them as
    /// its listener accepts them, where a session (`stot`) is one the rules let in.
    pub connections: AtomicU64,
    pub connection_rate: Rate,
    /// HTTP requests per second (`req_rate`).
    pub request_rate: Rate,
    /// When the last session started, in seconds since the epoch; 0: never (`lastsess`).
    pub last_session: AtomicU64,
    /// Milliseconds sessions spent queued, connecting, waiting for the response head, in all
    /// (`qtime`, `ctime`, `rtime`, `ttime` and their `_max`).
    pub queue_ms: Mean,
    pub connect_ms: Mean,
    pub response_ms: Mean,
    pub total_ms: Mean,
    /// Transfers aborted by the client, by the server (`cli_abrt`, `srv_abrt`).
    pub client_aborts: AtomicU64,
    pub server_aborts: AtomicU64,
    /// Rewrites by rules that failed (`wrew`), and the internal errors (`eint`) they end in.
    pub failed_rewrites: AtomicU64,
    pub internal_errors: AtomicU64,
}

/// How long one session took, for [`Counters::record_session`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionTimes {
    pub queue: Option<Duration>,
    pub connect: Option<Duration>,
    pub response: Option<Duration>,
    pub total: Duration,
}

impl Counters {
    /// Counts a new session; the returned guard ends it.
    pub fn open(self: &Arc<Self>) -> SessionGuard {
        self.open_at(meter::now_ms())
    }

    /// [`Counters::open`] at `ms` ([`meter::ms_at`] of a clock reading already made).
    pub fn open_at(self: &Arc<Self>, ms: u64) -> SessionGuard {
        let guard = self.open_uncounted();
        self.session_counted_at(ms);
        guard
    }

    /// A session open (`scur`) but not yet counted in `stot` and the session rate: a
    /// `bind ... ssl` connection's during its handshake and `tcp-request session` rules
    /// (HAProxy counts it in `feconn` from its accept, as a session once they are over).
    pub fn open_uncounted(self: &Arc<Self>) -> SessionGuard {
        self.count_open();
        SessionGuard(self.clone())
    }

    /// One more session open now (`scur`, `smax`), ended by [`Counters::count_closed`]: for
    /// an owner that keeps its own account of it (a server's slot), rather than a guard.
    pub fn count_open(&self) {
        let cur = self.cur.fetch_add(1, Relaxed) + 1;
        meter::raise_max!(self.max, cur);
    }

    /// Ends a session [`Counters::count_open`] counted.
    pub fn count_closed(&self) {
        self.cur.fetch_sub(1, Relaxed);
    }

    /// Counts an open session in `stot` and the session rate (see [`Counters::open_uncounted`]).
    pub fn session_counted(&self) {
        self.session_counted_at(meter::now_ms());
    }

    fn session_counted_at(&self, ms: u64) {
        self.total.fetch_add(1, Relaxed);
        self.session_rate.tick_at(ms);
        // Written only when the second changes: most sessions leave the line shared.
        let second = ms / 1000;
        if self.last_session.load(Relaxed) != second {
            self.last_session.store(second, Relaxed);
        }
    }

    /// Counts a frontend's accepted connection, before its rules: in `conn_tot`,
    /// `conn_rate` and `smax` (HAProxy's `feconn` counts it from then on; the connection is
    /// one more than the sessions open).
    pub fn connection_accepted(&self) {
        self.connections.fetch_add(1, Relaxed);
        self.connection_rate.tick();
        meter::raise_max!(self.max, self.cur.load(Relaxed) + 1);
    }

    /// Counts an HTTP request at `ms` ([`meter::ms_at`]).
    pub fn request_at(&self, ms: u64) {
        self.http_reqs.fetch_add(1, Relaxed);
        self.request_rate.tick_at(ms);
    }

    /// The means of the session times (`qtime`, `ctime`, `rtime`, `ttime`).
    fn time_means(&self) -> [&Mean; 4] {
        [
            &self.queue_ms,
            &self.connect_ms,
            &self.response_ms,
            &self.total_ms,
        ]
    }

    /// Counts a TCP session balanced to this backend or server (HAProxy's `cum_lbconn`) as
    /// a sample of the time means, which its times join if it connects
    /// ([`Counters::record_balanced_session`]): one that never does weighs them down.
    pub fn count_balanced(&self) {
        for mean in self.time_means() {
            mean.count_sample();
        }
    }

    /// Adds an ended session's times to the means, each a sample of its own (an HTTP
    /// request's), and counts it as aborted when its termination flags (HAProxy's, as
    /// logged) say the client or the server broke off the data transfer.
    pub fn record_session(&self, times: &SessionTimes, flags: &str) {
        self.record_times(times, Mean::add);
        self.count_abort(flags);
    }

    /// [`Counters::record_session`] for a TCP session that connected: its samples are the
    /// balanced connections, counted already ([`Counters::count_balanced`]), as HAProxy
    /// divides a TCP proxy's times by `cum_lbconn`.
    pub fn record_balanced_session(&self, times: &SessionTimes, flags: &str) {
        self.record_times(times, Mean::add_counted);
        self.count_abort(flags);
    }

    fn record_times(&self, times: &SessionTimes, add: fn(&Mean, u64)) {
        let ms = |d: Duration| d.as_millis() as u64;
        let values = [
            times.queue,
            times.connect,
            times.response,
            Some(times.total),
        ];
        for (mean, value) in self.time_means().into_iter().zip(values) {
            if let Some(v) = value {
                add(mean, ms(v));
            }
        }
    }

    /// Counts an ended session as aborted when its termination flags say the client or the
    /// server broke off the data transfer.
    fn count_abort(&self, flags: &str) {
        match flags.as_bytes() {
            [b'C' | b'c', b'D', ..] => self.client_aborts.fetch_add(1, Relaxed),
            // A server killed by its change of state (`D`, `U`) or an operator (`K`) aborts as
            // it would.
            [b'S' | b's' | b'D' | b'U' | b'K', b'D', ..] => {
                self.server_aborts.fetch_add(1, Relaxed)
            }
            _ => 0,
        };
    }

    /// Forgets the highest values seen: sessions, rates, times (`clear counters`, which
    /// HAProxy lets an operator run).
    pub fn clear_maxima(&self) {
        self.max.store(0, Relaxed);
        for rate in [
            &self.session_rate,
            &self.connection_rate,
            &self.request_rate,
        ] {
            rate.clear_max();
        }
        for mean in [
            &self.queue_ms,
            &self.connect_ms,
            &self.response_ms,
            &self.total_ms,
        ] {
            mean.clear_max();
        }
    }

    /// Forgets everything counted but the sessions open now (`clear counters all`).
    pub fn clear_all(&self) {
        let totals = [
            &self.total,
            &self.bytes_in,
            &self.bytes_out,
            &self.conn_errors,
            &self.resp_errors,
            &self.req_errors,
            &self.retries,
            &self.redispatches,
            &self.denied_req,
            &self.denied_resp,
            &self.denied_conn,
            &self.denied_sess,
            &self.intercepted,
            &self.http_reqs,
            &self.connections,
            &self.last_session,
            &self.client_aborts,
            &self.server_aborts,
            &self.failed_rewrites,
            &self.internal_errors,
        ];
        for total in totals.into_iter().chain(&self.http_status) {
            total.store(0, Relaxed);
        }
        for rate in [
            &self.session_rate,
            &self.connection_rate,
            &self.request_rate,
        ] {
            rate.clear();
        }
        for mean in [
            &self.queue_ms,
            &self.connect_ms,
            &self.response_ms,
            &self.total_ms,
        ] {
            mean.clear();
        }
        self.clear_maxima();
    }

    pub fn count_status(&self, status: u16) {
        let class = match status {
            100..=599 => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.http_status[class].fetch_add(1, Relaxed);
    }
}

/// Decrements the current-session count when dropped.
#[derive(Debug)]
pub struct SessionGuard(Arc<Counters>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.cur.fetch_sub(1, Relaxed);
    }
}

/// What the operator said about a server (runtime API), apart from the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Ready,
    Drain,
    Maint,
}

/// HAProxy's forced admin flags (`SRV_ADMF_FMAINT`, `SRV_ADMF_FDRAIN`), which the stats
/// page's legacy actions (`disable`/`enable`, `stop`/`start`) set and clear one at a time:
/// a server may be in maintenance and forced to drain at once, shown in maintenance, and
/// draining again when the maintenance ends. The runtime API's `set server ... state`
/// sets both at once ([`Server::set_admin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminFlag {
    Maint,
    Drain,
}

/// The last health check's outcome, as the stats page shows it.
#[derive(Debug, Clone, Default)]
pub struct CheckResult {
    /// HAProxy's short status: L4OK, L4CON, L4TOUT, L7OK, L7STS, L7RSP, L7TOUT, L6OK ...
    pub status: String,
    pub code: Option<u16>,
    pub duration_ms: Option<u64>,
    pub desc: String,
    /// When it finished (seconds since the epoch); 0 = never.
    pub at: u64,
}

/// Where a server's connections go on its address, as HAProxy keeps it (`svc_port` and
/// `SRV_F_MAPPORTS`): a fixed port, or the client's destination port plus an offset (a
/// server without a port is mapped with offset 0; a negative offset wraps, as in HAProxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePort {
    Fixed(u16),
    Mapped(u16),
}

impl ServicePort {
    const MAPPED: u32 = 1 << 16;

    /// A configured port (`None`: no port, the client's).
    pub fn from_config(port: Option<u16>) -> Self {
        port.map_or(ServicePort::Mapped(0), ServicePort::Fixed)
    }

    /// The port a connection from a client that connected to `dst_port` goes to.
    pub fn for_client(self, dst_port: u16) -> u16 {
        match self {
            ServicePort::Fixed(p) => p,
            ServicePort::Mapped(offset) => dst_port.wrapping_add(offset),
        }
    }

    /// HAProxy's `svc_port`: the port or the offset.
    pub fn number(self) -> u16 {
        match self {
            ServicePort::Fixed(p) | ServicePort::Mapped(p) => p,
        }
    }

    fn encode(self) -> u32 {
        match self {
            ServicePort::Fixed(p) => u32::from(p),
            ServicePort::Mapped(p) => Self::MAPPED | u32::from(p),
        }
    }

    fn decode(raw: u32) -> Self {
        let number = raw as u16;
        if raw & Self::MAPPED != 0 {
            ServicePort::Mapped(number)
        } else {
            ServicePort::Fixed(number)
        }
    }
}

/// One server of a backend.
#[derive(Debug)]
pub struct Server {
    pub id: usize,
    pub name: String,
    pub backend: String,
    /// The address or name of the server line (`set server ... fqdn` changes a name).
    host: RwLock<String>,
    /// How many times `host` changed: a DNS resolution started for one name lets the
    /// server go once it is superseded (see `runtime::dns`).
    host_generation: AtomicU64,
    /// The port connections go to, as a [`ServicePort`] (`set server ... addr ... port`
    /// changes it).
    service_port: AtomicU32,
    /// The health checks' port (`port` on the server line; `set server ... check-port`
    /// changes it); 0: the server's.
    check_port: AtomicU32,
    pub opts: ServerOptions,
    pub addr: RwLock<Option<IpAddr>>,
    pub admin: Mutex<Admin>,
    /// A forced drain kept while in maintenance (see [`AdminFlag`]).
    drain_under_maint: AtomicBool,
    /// Health checks enabled (`enable|disable health`, HAProxy's `CHK_ST_ENABLED`):
    /// disabled, they are not run and the server keeps its state and health.
    checks_enabled: AtomicBool,
    /// Health checks paused by maintenance (HAProxy's `CHK_ST_PAUSED`): set entering it with
    /// the checks enabled, cleared leaving it only if they still are.
    checks_paused: AtomicBool,
    /// From health checks; always true when not checked.
    pub up: AtomicBool,
    /// UP but given no new connection by the balancer (HAProxy's `SRV_ST_STOPPING`, shown
    /// NOLB): set by `set server ... health stopping` (the stats page's `hnolb`), ended by a
    /// passing check or any other change of state.
    stopping: AtomicBool,
    /// HAProxy's health counter: 0..rise+fall-1, UP when >= rise.
    pub health: AtomicU32,
    /// Current user weight (`set server ... weight`).
    pub weight: AtomicU32,
    /// Current `maxconn` (an agent's `maxconn:N` changes it); 0: no limit.
    maxconn: AtomicUsize,
    pub counters: Arc<Counters>,
    pub check_failures: AtomicU64,
    /// Its times gone from taking traffic (UP, NOLB) to not (DOWN, maintenance): HAProxy's
    /// `down_trans` (`chkdown`), counted by [`Server::record_op_change`].
    pub down_transitions: AtomicU64,
    /// When its operational state last changed (or its admin state, as HAProxy resets it
    /// then too), in seconds since the epoch (`lastchg`).
    pub last_change: AtomicU64,
    /// Seconds spent stopped (DOWN or in maintenance) before the current state, as
    /// HAProxy's `down_time` adds them up; see [`Server::downtime`].
    down_time: AtomicU64,
    /// A health check is under way (HAProxy's `CHK_ST_INPROGRESS`): from its start to its
    /// result, shown `* ` before its status in `show stat`.
    check_in_progress: AtomicBool,
    pub lb_total: AtomicU64,
    /// The connections holding one of its slots ([`super::balance::Slot`]), HAProxy's
    /// `served`: what its `maxconn` limits and `leastconn` weighs. A connection waiting to
    /// retry it keeps its slot but is no session of the server's meanwhile (`scur`,
    /// [`Counters::cur`], HAProxy's `cur_sess`).
    pub served: AtomicUsize,
    /// Idle HTTP connections kept for reuse (`runtime::pool`).
    pub idle: super::pool::IdlePool,
    /// Bumped when the server's connections must not be reused (see
    /// [`Server::retire_connections`]); each kept connection holds the one it began in.
    conn_generation: AtomicU64,
    pub check: Mutex<CheckResult>,
    /// Ends the server's sessions when it changes state (`on-marked-down`, `on-marked-up`).
    pub kill: super::shutdown::KillSwitch,
    /// When its slow start began ([`super::meter::now_ms`]); 0: not in one (see
    /// `runtime::slowstart`).
    pub warming_since: AtomicU64,
    /// The servers tracking this one (`track`) and their backends: they follow its state
    /// (see `runtime::track`). Weak: a tracker's backend holds this server's.
    pub trackers: std::sync::OnceLock<Vec<super::track::Tracker>>,
    /// The server this one tracks (`track`), set with `trackers`.
    pub tracking: std::sync::OnceLock<std::sync::Weak<Server>>,
    /// In maintenance because the server it tracks is (HAProxy's IMAINT, see
    /// `runtime::track`).
    inherited_maint: AtomicBool,
    /// Draining because the server it tracks is (HAProxy's IDRAIN, see `runtime::track`).
    inherited_drain: AtomicBool,
    /// Its name was set by `set server ... fqdn` (or kept so by a state file): HAProxy's
    /// `SRV_ADMF_HMAINT` in its next admin state, which a new process reads to keep the name.
    fqdn_set_by_cli: AtomicBool,
    /// The same flag in its current admin state, as `show servers state` shows it: HAProxy
    /// copies the next state to the current one at an admin change only, so the flag shows
    /// from the next change of maintenance or drain on (see
    /// [`Server::commit_admin_change`]).
    fqdn_set_by_cli_shown: AtomicBool,
    /// Leaving maintenance (its own or inherited), until the change is applied: a backend
    /// it brings back counts no downtime for the time before (see
    /// [`Backend::server_changed`]).
    leaving_maint: AtomicBool,
    /// Held while deciding and making a change of UP/DOWN state (see [`Server::transition`]).
    transition: Mutex<()>,
    /// `observe`: failed connection attempts in a row, and the times they reached
    /// `error-limit` (`hanafail`); the next check comes after `fastinter` (see
    /// `runtime::observe`).
    pub consecutive_errors: AtomicU32,
    pub hana_failures: AtomicU64,
    pub fastinter_next: AtomicBool,
    /// Wakes its check task when `fastinter_next` is set, so the next check comes
    /// `fastinter` after the error rather than after the `inter` already being waited out.
    pub check_soon: tokio::sync::Notify,
    /// Its agent (`agent-check`, see `runtime::agent`).
    pub agent: super::agent::AgentState,
    /// Its dynamic cookie, once computed (see `runtime::persist`).
    pub dynamic_cookie: super::persist::DynamicCookieCache,
    /// The backend's [`Backend::servers_changed`]: told when the server may take queued
    /// connections it could not take before (UP again, out of maintenance, an address).
    servers_changed: Arc<tokio::sync::Notify>,
    /// Its backend and its index there, set once the backend is shared: every change is
    /// applied to the balancer as it is made ([`Server::changed`]).
    balancer: std::sync::OnceLock<(std::sync::Weak<Backend>, usize)>,
}

impl Server {
    pub fn new(
        id: usize,
        backend: &str,
        s: &model::Server,
        servers_changed: Arc<tokio::sync::Notify>,
    ) -> Self {
        let o = &s.opts;
        let admin = if o.disabled {
            Admin::Maint
        } else {
            Admin::Ready
        };
        Server {
            id,
            name: s.name.clone(),
            backend: backend.into(),
            host: RwLock::new(s.host.clone()),
            host_generation: AtomicU64::new(0),
            service_port: AtomicU32::new(ServicePort::from_config(s.port).encode()),
            check_port: AtomicU32::new(o.check_port.map_or(0, u32::from)),
            opts: o.clone(),
            addr: RwLock::new(s.addr),
            admin: Mutex::new(admin),
            drain_under_maint: AtomicBool::new(false),
            checks_enabled: AtomicBool::new(o.check),
            checks_paused: AtomicBool::new(o.check && o.disabled),
            up: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            // Maintenance holds the health at 0, as `set_admin` does.
            health: AtomicU32::new(if o.disabled { 0 } else { o.rise }),
            weight: AtomicU32::new(o.weight),
            maxconn: AtomicUsize::new(o.maxconn.unwrap_or(0)),
            counters: Arc::default(),
            check_failures: AtomicU64::new(0),
            down_transitions: AtomicU64::new(0),
            last_change: AtomicU64::new(now_secs()),
            down_time: AtomicU64::new(0),
            check_in_progress: AtomicBool::new(false),
            lb_total: AtomicU64::new(0),
            served: AtomicUsize::new(0),
            idle: Default::default(),
            conn_generation: AtomicU64::new(0),
            check: Mutex::new(CheckResult::default()),
            kill: Default::default(),
            warming_since: AtomicU64::new(0),
            trackers: std::sync::OnceLock::new(),
            tracking: std::sync::OnceLock::new(),
            transition: Mutex::new(()),
            leaving_maint: AtomicBool::new(false),
            inherited_maint: AtomicBool::new(false),
            inherited_drain: AtomicBool::new(false),
            fqdn_set_by_cli: AtomicBool::new(false),
            fqdn_set_by_cli_shown: AtomicBool::new(false),
            consecutive_errors: AtomicU32::new(0),
            hana_failures: AtomicU64::new(0),
            fastinter_next: AtomicBool::new(false),
            check_soon: tokio::sync::Notify::new(),
            agent: super::agent::AgentState::new(o),
            dynamic_cookie: Default::default(),
            servers_changed,
            balancer: std::sync::OnceLock::new(),
        }
    }

    pub fn admin(&self) -> Admin {
        *self.admin.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether one of HAProxy's forced admin flags is set.
    pub fn has_admin_flag(&self, flag: AdminFlag) -> bool {
        match (self.admin(), flag) {
            (Admin::Maint, AdminFlag::Maint) | (Admin::Drain, AdminFlag::Drain) => true,
            (Admin::Maint, AdminFlag::Drain) => self.drain_under_maint.load(Relaxed),
            _ => false,
        }
    }

    /// Sets or clears one forced admin flag, the other kept (HAProxy's `srv_set_admin_flag`
    /// and `srv_clr_admin_flag`).
    pub fn set_admin_flag(&self, flag: AdminFlag, on: bool) {
        let mut maint = self.has_admin_flag(AdminFlag::Maint);
        let mut drain = self.has_admin_flag(AdminFlag::Drain);
        match flag {
            AdminFlag::Maint => maint = on,
            AdminFlag::Drain => drain = on,
        }
        let admin = match (maint, drain) {
            (true, _) => Admin::Maint,
            (false, true) => Admin::Drain,
            (false, false) => Admin::Ready,
        };
        let kept_drain_changed = self.drain_under_maint.load(Relaxed) != (maint && drain);
        if admin != self.admin() {
            self.set_admin(admin);
        } else if kept_drain_changed {
            self.commit_admin_change();
        }
        self.drain_under_maint.store(maint && drain, Relaxed);
    }

    /// Flags its name as set from the CLI, or not (HAProxy's `SRV_ADMF_HMAINT` in
    /// `next_admin`); shown from the next admin change on.
    pub fn set_fqdn_set_by_cli(&self, on: bool) {
        self.fqdn_set_by_cli.store(on, Relaxed);
    }

    /// Whether `show servers state` shows its name as set from the CLI (admin flag 64).
    pub fn shows_fqdn_set_by_cli(&self) -> bool {
        self.fqdn_set_by_cli_shown.load(Relaxed)
    }

    /// An admin flag changed: as HAProxy's `srv_update_status` copying `next_admin` to
    /// `cur_admin`, the flags set without a change of their own (the name set from the CLI)
    /// become current too.
    fn commit_admin_change(&self) {
        let pending = self.fqdn_set_by_cli.load(Relaxed);
        self.fqdn_set_by_cli_shown.store(pending, Relaxed);
    }

    /// As HAProxy: maintenance pauses the checks with the health at 0; leaving it starts the
    /// server UP at `rise` (one failed check then takes it down). Both forced flags are set
    /// as `admin` says (a drain kept under maintenance goes).
    pub fn set_admin(&self, admin: Admin) {
        self.drain_under_maint.store(false, Relaxed);
        let was_stopped = self.is_stopped();
        let was = std::mem::replace(
            &mut *self.admin.lock().unwrap_or_else(|e| e.into_inner()),
            admin,
        );
        if was != admin {
            self.commit_admin_change();
        }
        if was != admin && (was == Admin::Maint || admin == Admin::Maint) && self.checks_enabled() {
            self.checks_paused.store(admin == Admin::Maint, Relaxed);
        }
        match (was == Admin::Maint, admin == Admin::Maint) {
            (false, true) => self.enter_maint(was_stopped),
            (true, false) => self.come_back_from_maint(was_stopped),
            (false, false) => {
                let inherited = self.in_inherited_drain();
                let drained = |a: Admin| a == Admin::Drain || inherited;
                self.record_drain_change(drained(was), drained(admin));
            }
            (true, true) => {}
        }
        match (was == Admin::Maint, admin == Admin::Maint) {
            // (Begun already when it came back UP just above.)
            (true, false) if self.warming_since.load(Relaxed) == 0 => super::slowstart::begin(self),
            (false, true) => self.warming_since.store(0, Relaxed),
            _ => {}
        }
        if admin == Admin::Maint && was != Admin::Maint {
            // Maintenance stops the server: it comes back running, not stopping.
            self.stopping.store(false, Relaxed);
            self.retire_connections();
            // HAProxy ends them entering maintenance as when the checks fail.
            if self.opts.shutdown_on_down {
                self.kill.fire(super::shutdown::Killed::Down);
            }
        }
        self.changed();
        self.leaving_maint.store(false, Relaxed);
    }

    /// HAProxy's SRV_ST_STOPPED: taking no traffic, DOWN or in maintenance (its own, the
    /// one it inherits, or for want of an address: DNS's resolution maintenance).
    pub fn is_stopped(&self) -> bool {
        !self.is_up()
            || self.admin() == Admin::Maint
            || self.in_inherited_maint()
            || self.addr().is_none()
    }

    /// Seconds spent stopped so far, the current stop included (`downtime`, HAProxy's
    /// `srv_downtime`).
    pub fn downtime(&self) -> u64 {
        let past = self.down_time.load(Relaxed);
        if self.is_stopped() {
            past + now_secs().saturating_sub(self.last_change.load(Relaxed))
        } else {
            past
        }
    }

    /// HAProxy's accounting of a change of operational state (the end of its
    /// `srv_update_status`), `was_stopped` the state before: a server stopping counts a
    /// `chkdown`, one running again adds the time since its last change to its downtime,
    /// and either restarts `lastchg`. Nothing when it stays stopped or running (maintenance
    /// entered DOWN keeps the clock of its DOWN).
    fn record_op_change(&self, was_stopped: bool) {
        let stopped = self.is_stopped();
        if stopped == was_stopped {
            return;
        }
        let now = now_secs();
        if stopped {
            self.down_transitions.fetch_add(1, Relaxed);
        } else {
            let since = self.last_change.load(Relaxed);
            self.down_time.fetch_add(now.saturating_sub(since), Relaxed);
        }
        self.last_change.store(now, Relaxed);
    }

    /// Into maintenance (its own or inherited), `was_stopped` before it: as HAProxy, a
    /// running server's health drops to 0 (checked or not, `show servers state` shows it;
    /// only checks raise it again) and it stops; one DOWN already keeps its health and clock.
    fn enter_maint(&self, was_stopped: bool) {
        if !was_stopped {
            self.health.store(0, Relaxed);
        }
        self.record_op_change(was_stopped);
    }

    /// Out of maintenance, `was_stopped` before it: HAProxy restarts `lastchg` first,
    /// whatever the server comes out in, so the time spent in maintenance is not added to
    /// its downtime when it runs again; a checked server starts at `rise`.
    fn leave_maint(&self, was_stopped: bool) {
        self.last_change.store(now_secs(), Relaxed);
        if self.opts.check {
            self.health.store(self.opts.rise, Relaxed);
        }
        self.record_op_change(was_stopped);
    }

    /// Into or out of drain (forced or inherited), out of maintenance: HAProxy restarts
    /// `lastchg` either way, and leaving adds the time since to the downtime, running or
    /// not (its `srv_update_status` counts a drain as time down).
    fn record_drain_change(&self, was_draining: bool, draining: bool) {
        if was_draining == draining {
            return;
        }
        let now = now_secs();
        if was_draining {
            let since = self.last_change.load(Relaxed);
            self.down_time.fetch_add(now.saturating_sub(since), Relaxed);
        }
        self.last_change.store(now, Relaxed);
    }

    /// Whether a health check is under way (see `check_in_progress`).
    pub fn check_in_progress(&self) -> bool {
        self.check_in_progress.load(Relaxed)
    }

    /// A health check starts (true) or has its result (false).
    pub fn set_check_in_progress(&self, on: bool) {
        self.check_in_progress.store(on, Relaxed);
    }

    /// In maintenance because the server it tracks is (HAProxy's IMAINT).
    pub fn in_inherited_maint(&self) -> bool {
        self.inherited_maint.load(Relaxed)
    }

    /// Enters or leaves the maintenance of the server it tracks (see `runtime::track`):
    /// whether that changed anything. As its own maintenance, entering it ends its kept
    /// connections; leaving it may let queued connections in.
    pub fn set_inherited_maint(&self, on: bool) -> bool {
        let was_stopped = self.is_stopped();
        if self.inherited_maint.swap(on, Relaxed) == on {
            return false;
        }
        self.commit_admin_change();
        if on {
            self.enter_maint(was_stopped);
            self.retire_connections();
            self.warming_since.store(0, Relaxed);
        } else {
            self.leaving_maint.store(true, Relaxed);
            self.leave_maint(was_stopped);
            super::slowstart::begin(self);
        }
        self.changed();
        self.leaving_maint.store(false, Relaxed);
        true
    }

    /// Whether its connections may speak HTTP/2: `proto h2`, or an `alpn` offering `h2`.
    pub fn may_speak_h2(&self) -> bool {
        let alpn = self.opts.tls.alpn.as_ref();
        self.opts.proto_h2 || alpn.is_some_and(|a| a.iter().any(|p| p == "h2"))
    }

    /// The generation of the server's connections: one kept from an older generation (idle
    /// in the pool, or owned by a client connection) is closed, not reused.
    pub fn conn_generation(&self) -> u64 {
        self.conn_generation.load(Relaxed)
    }

    /// The kept connections go: a new address, maintenance or the server going down, as
    /// HAProxy closes its idle connections then (the next request connects anew).
    pub fn retire_connections(&self) {
        self.conn_generation.fetch_add(1, Relaxed);
        self.idle.clear();
        if self.may_speak_h2() {
            super::h2_server::retire(self);
        }
    }

    pub fn host(&self) -> String {
        self.host.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the host; its new generation.
    pub fn set_host(&self, host: &str) -> u64 {
        let mut current = self.host.write().unwrap_or_else(|e| e.into_inner());
        *current = host.into();
        // Under the lock: generations follow the order the names were set in.
        self.host_generation.fetch_add(1, Relaxed) + 1
    }

    /// The generation of the current host (see [`Server::set_host`]).
    pub fn host_generation(&self) -> u64 {
        self.host_generation.load(Relaxed)
    }

    pub fn addr(&self) -> Option<IpAddr> {
        *self.addr.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the run-time weight (`set server B/S weight`); a weight raised from 0 may let
    /// the server take queued connections at once.
    pub fn set_weight(&self, weight: u32) {
        // An agent repeats its weight every answer: the queues wake on a change only.
        if self.weight.swap(weight, Relaxed) != weight {
            self.changed();
        }
    }

    /// What tells the connections waiting in the backend's queues that a server may take
    /// more now.
    pub fn queue_waker(&self) -> Arc<tokio::sync::Notify> {
        self.servers_changed.clone()
    }

    /// Links the server to its backend's balancer (once, as the state is built).
    pub fn link_balancer(&self, backend: std::sync::Weak<Backend>, index: usize) {
        let _ = self.balancer.set((backend, index));
    }

    /// Its index in its backend's servers, once linked (no reference counted: read for
    /// each HTTP request).
    pub fn index(&self) -> Option<usize> {
        self.balancer.get().map(|&(_, index)| index)
    }

    /// Its backend's balancer and its index there, once linked.
    pub fn balancer(&self) -> Option<(Arc<Backend>, usize)> {
        let (backend, index) = self.balancer.get()?;
        Some((backend.upgrade()?, *index))
    }

    /// After any change of its state, weight, address or `maxconn`: the balancer applies
    /// it at once, as HAProxy's `srv_update_status` calls the algorithm's callbacks (two
    /// changes with no connection in between both count, in their order), and the waiting
    /// connections are woken.
    fn changed(&self) {
        self.changed_with(false);
    }

    /// A change that may have opened slots (a higher `maxconn`, a slow start's step): the
    /// server takes connections from the queues as well, as HAProxy's `process_srv_queue`
    /// and `pendconn_grab_from_px` then.
    pub fn slots_opened(&self) {
        self.changed_with(true);
    }

    fn changed_with(&self, slots_opened: bool) {
        if let Some((backend, index)) = self.balancer() {
            super::balance::server_changed(&backend, index, slots_opened);
            backend.server_changed(self.leaving_maint.load(Relaxed));
        }
        self.servers_changed.notify_waiters();
    }

    pub fn set_addr(&self, ip: Option<IpAddr>) {
        self.swap_addr(ip);
        self.changed();
    }

    /// Sets its address, the former one returned; kept connections to another one go.
    fn swap_addr(&self, ip: Option<IpAddr>) -> Option<IpAddr> {
        let was = std::mem::replace(
            &mut *self.addr.write().unwrap_or_else(|e| e.into_inner()),
            ip,
        );
        if was != ip {
            self.retire_connections();
        }
        was
    }

    /// DNS sets or takes its address: losing it enters the resolution maintenance and
    /// getting one back leaves it (HAProxy's `SRV_ADMF_RMAINT`), accounted as any
    /// maintenance (see [`Server::set_admin`]).
    pub fn set_resolved_addr(&self, ip: Option<IpAddr>) {
        let was_stopped = self.is_stopped();
        let was = self.swap_addr(ip);
        if was.is_some() != ip.is_some() {
            self.commit_admin_change();
        }
        match (was.is_some(), ip.is_some()) {
            (true, false) => self.enter_resolution_maint(was_stopped),
            (false, true) => self.leave_resolution_maint(was_stopped),
            _ => {}
        }
        self.changed();
        self.leaving_maint.store(false, Relaxed);
    }

    /// At start-up, a server left without an address (`init-addr none`) starts in the
    /// resolution maintenance, as HAProxy's `srv_init_addr` puts it there: from running,
    /// so a stop is counted.
    pub fn start_in_resolution_maint(&self) {
        self.commit_admin_change();
        self.swap_addr(None);
        self.enter_resolution_maint(false);
    }

    /// In a maintenance other than the resolution's: its own or the one it inherits.
    fn in_other_maint(&self) -> bool {
        self.admin() == Admin::Maint || self.in_inherited_maint()
    }

    /// Into the resolution maintenance, `was_stopped` before it: the checks pause and a
    /// running server stops with its health at 0; one in another maintenance already is
    /// left as it is.
    fn enter_resolution_maint(&self, was_stopped: bool) {
        if self.in_other_maint() {
            return;
        }
        if self.checks_enabled() {
            self.checks_paused.store(true, Relaxed);
        }
        self.enter_maint(was_stopped);
        self.stopping.store(false, Relaxed);
        self.warming_since.store(0, Relaxed);
    }

    /// Out of the resolution maintenance, `was_stopped` before it: as leaving the
    /// operator's, unless another maintenance still holds it.
    /// Out of maintenance (its own or DNS's): as HAProxy, a server comes UP when it may,
    /// checked or not (one set DOWN from the CLI too; an agent saying down keeps it DOWN),
    /// and the servers tracking it follow.
    fn come_back_from_maint(&self, was_stopped: bool) {
        self.leaving_maint.store(true, Relaxed);
        self.leave_maint(was_stopped);
        let back = self.transition(|| {
            let back = !self.is_up() && self.may_come_up();
            if back {
                self.set_up(true);
            }
            back
        });
        if back {
            super::track::follow(self);
        }
    }

    fn leave_resolution_maint(&self, was_stopped: bool) {
        if self.in_other_maint() {
            return;
        }
        if self.checks_enabled() {
            self.checks_paused.store(false, Relaxed);
        }
        self.come_back_from_maint(was_stopped);
        if self.warming_since.load(Relaxed) == 0 {
            super::slowstart::begin(self);
        }
    }

    /// The address to connect to for a client that connected to `dst_port`.
    pub fn socket_addr(&self, dst_port: u16) -> Option<SocketAddr> {
        let port = self.service_port().for_client(dst_port);
        self.addr().map(|ip| SocketAddr::new(ip, port))
    }

    pub fn service_port(&self) -> ServicePort {
        ServicePort::decode(self.service_port.load(Relaxed))
    }

    pub fn set_service_port(&self, port: ServicePort) {
        if self.service_port.swap(port.encode(), Relaxed) != port.encode() {
            self.retire_connections();
        }
    }

    /// The fixed port connections go to; None with a port map (the client's port).
    pub fn port(&self) -> Option<u16> {
        match self.service_port() {
            ServicePort::Fixed(p) => Some(p),
            ServicePort::Mapped(_) => None,
        }
    }

    /// The health checks' own port, if any.
    pub fn check_port(&self) -> Option<u16> {
        u16::try_from(self.check_port.load(Relaxed))
            .ok()
            .filter(|&p| p != 0)
    }

    pub fn set_check_port(&self, port: u16) {
        self.check_port.store(u32::from(port), Relaxed);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Whether its health checks run: configured (`check`) and not disabled.
    pub fn checks_enabled(&self) -> bool {
        self.checks_enabled.load(Relaxed)
    }

    /// Whether its health checks are paused by maintenance (see `checks_paused`).
    pub fn checks_paused(&self) -> bool {
        self.checks_paused.load(Relaxed)
    }

    /// Whether its health checks run now: enabled and not paused.
    pub fn checks_running(&self) -> bool {
        self.checks_enabled() && !self.checks_paused()
    }

    /// `enable|disable health`: the checks resume or stop, the server's state and health
    /// kept; false when it has no checks (nothing changed).
    pub fn enable_checks(&self, on: bool) -> bool {
        if !self.opts.check {
            return false;
        }
        self.checks_enabled.store(on, Relaxed);
        true
    }

    /// Draining because the server it tracks is (HAProxy's IDRAIN).
    pub fn in_inherited_drain(&self) -> bool {
        self.inherited_drain.load(Relaxed)
    }

    /// Enters or leaves the drain of the server it tracks: whether that changed anything.
    /// The balancer is told (its weight is 0 while draining).
    pub fn set_inherited_drain(&self, on: bool) -> bool {
        if self.inherited_drain.swap(on, Relaxed) == on {
            return false;
        }
        self.commit_admin_change();
        if self.admin() == Admin::Ready && !self.in_inherited_maint() {
            self.record_drain_change(!on, on);
        }
        self.changed();
        true
    }

    /// Draining: forced (`set server ... state drain`, an agent) or inherited.
    pub fn is_draining(&self) -> bool {
        self.admin() == Admin::Drain || (self.admin() == Admin::Ready && self.in_inherited_drain())
    }

    /// May take new connections: an address, not in maintenance, checks passing.
    pub fn usable(&self) -> bool {
        self.addr().is_some()
            && self.admin() != Admin::Maint
            && !self.in_inherited_maint()
            && self.is_up()
    }

    /// The weight the balancer uses: 0 when draining or stopping (NOLB).
    pub fn lb_weight(&self) -> u32 {
        match self.admin() {
            Admin::Ready if !self.is_stopping() && !self.in_inherited_drain() => {
                self.weight.load(Relaxed)
            }
            _ => 0,
        }
    }

    /// UP and stopping (NOLB, see `stopping`).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Relaxed) && self.is_up()
    }

    /// Sets the server UP and stopping (NOLB), or ends that; the balancer is told.
    pub fn set_stopping(&self, on: bool) {
        if self.stopping.swap(on, Relaxed) != on {
            self.last_change.store(now_secs(), Relaxed);
            self.changed();
        }
    }

    /// Its `maxconn`, if it has one.
    pub fn maxconn(&self) -> Option<usize> {
        Some(self.maxconn.load(Relaxed)).filter(|&m| m != 0)
    }

    /// Sets `maxconn` (None or 0: no limit); connections queued for the server may take
    /// the slots it opens at once.
    pub fn set_maxconn(&self, maxconn: Option<usize>) {
        let maxconn = maxconn.unwrap_or(0);
        if self.maxconn.swap(maxconn, Relaxed) != maxconn {
            self.slots_opened();
        }
    }

    /// Below its `maxconn` (lowered during a slow start).
    pub fn has_free_slot(&self) -> bool {
        self.maxconn()
            .is_none_or(|m| self.served.load(Relaxed) < super::slowstart::maxconn(self, m))
    }

    /// The status column of the stats page, as HAProxy's `stats_fill_sv_stats` words it.
    pub fn status(&self) -> String {
        // A tracking server's own state is shown with the checks and agent of the server
        // its chain ends at, whatever that one has (HAProxy's `ref`).
        let tracked = self.tracking.get().and_then(std::sync::Weak::upgrade);
        let checked = super::track::checked(self);
        let reference = checked.as_deref().unwrap_or(self);
        if let Some(via) = tracked.as_deref().filter(|_| self.in_inherited_maint()) {
            if self.addr().is_some() {
                return format!("MAINT (via {}/{})", via.backend, via.name);
            }
        }
        match (self.admin(), self.addr()) {
            (Admin::Maint, None) => return "MAINT (resolution)".into(),
            (Admin::Maint, _) => return "MAINT".into(),
            (_, None) => return "MAINT (resolution)".into(),
            _ => {}
        }
        let probes = Probes::of(reference);
        if self.is_stopping() {
            // Unchecked and tracking none, or its reference fully healthy: no counts.
            let untracked_unchecked = !self.checks_enabled() && tracked.is_none();
            return if untracked_unchecked || probes.healthy() {
                "NOLB".into()
            } else {
                format!("NOLB {}", probes.counts())
            };
        }
        if self.is_up() {
            return self.running_status(&probes);
        }
        if probes.agent && reference.agent.health() == 0 {
            "DOWN (agent)".into()
        } else if probes.checks && probes.health == 0 {
            "DOWN".into()
        } else if probes.agent || probes.checks {
            // Either probe may bring it back: the check's counts towards UP.
            format!("DOWN {}", probes.counts())
        } else {
            "DOWN".into()
        }
    }

    /// [`Server::status`] of a running server (UP, not NOLB).
    fn running_status(&self, probes: &Probes) -> String {
        let going_down = probes.checks && !probes.healthy();
        if self.is_draining() {
            return if probes.agent {
                // HAProxy takes any drain of an agent's server for the agent's.
                "DRAIN (agent)".into()
            } else if going_down {
                format!("DRAIN {}", probes.counts())
            } else {
                "DRAIN".into()
            };
        }
        match (probes.checks, going_down) {
            (false, _) => "no check".into(),
            (true, true) => format!("UP {}", probes.counts()),
            (true, false) => "UP".into(),
        }
    }

    /// Records a check result; returns the new UP/DOWN state when it changed.
    pub fn record_check(&self, ok: bool, result: CheckResult) -> Option<bool> {
        self.transition(|| self.apply_check(ok, result))
    }

    fn apply_check(&self, ok: bool, result: CheckResult) -> Option<bool> {
        let (rise, fall) = (self.opts.rise, self.opts.fall);
        let health = self.health.load(Relaxed);
        let was_up = self.is_up();
        let health = if ok {
            match health + 1 {
                h if h >= rise => rise + fall - 1,
                h => h,
            }
        } else {
            // As HAProxy: a failure counts while the health has room to fall.
            if health > 0 {
                self.check_failures.fetch_add(1, Relaxed);
            }
            if health > rise { health - 1 } else { 0 }
        };
        // A conditional pass (L7OKC: `ok-status L7OKC`, `http-check disable-on-404`)
        // puts the server in NOLB, any other pass ends it (HAProxy's `srv_set_stopping`
        // and `srv_set_running`).
        let conditional = ok && result.status == "L7OKC";
        self.health.store(health, Relaxed);
        *self.check.lock().unwrap_or_else(|e| e.into_inner()) = result;
        // Coming UP needs the agent's consent too (HAProxy's check_notify_success).
        let up = if was_up {
            health > 0
        } else {
            self.may_come_up()
        };
        // Set before it comes UP: the balancer never sees it UP and taking connections.
        if ok && up && health >= rise {
            self.set_stopping(conditional);
        }
        (up != was_up).then(|| {
            self.set_up(up);
            up
        })
    }

    /// Whether the server may be UP, the one rule every path bringing it up follows
    /// (checks, agent, runtime API, stats page): not in maintenance, its health check at
    /// `rise` (when it has one), its agent not saying down, and the server it tracks UP.
    pub fn may_come_up(&self) -> bool {
        self.admin() != Admin::Maint
            && (!self.opts.check || self.health.load(Relaxed) >= self.opts.rise)
            && self.agent.allows_up()
            && super::track::tracked_is_up(self)
    }

    /// Runs `change` under the server's transition lock. The checks and agents run on the
    /// main runtime, the stats page's actions on the worker threads: every check-then-set
    /// of the UP/DOWN state (and of the healths it is decided from) goes through here, so
    /// of two deciding at once one changes the state and the other sees it changed.
    /// Servers are locked tracked before tracking (`track` chains have no loop).
    pub fn transition<R>(&self, change: impl FnOnce() -> R) -> R {
        let _held = self.transition.lock().unwrap_or_else(|e| e.into_inner());
        change()
    }

    /// Sets the server UP (keeping a NOLB just set, see `stopping`) or DOWN (ending it).
    pub fn set_up(&self, up: bool) {
        let was_stopped = self.is_stopped();
        self.up.store(up, Relaxed);
        if !up {
            self.stopping.store(false, Relaxed);
        }
        if up {
            super::slowstart::begin(self);
        } else {
            self.warming_since.store(0, Relaxed);
        }
        self.record_op_change(was_stopped);
        if !up {
            self.retire_connections();
        }
        self.changed();
    }
}

/// What the stats show of the checks and agent a server's status is read from (its own, or
/// those of the server its `track` chain ends at).
struct Probes {
    /// Health checks enabled (HAProxy's `CHK_ST_ENABLED`, `disable health` clears it).
    checks: bool,
    agent: bool,
    health: u32,
    rise: u32,
    fall: u32,
    /// The reference is running: its counts go towards DOWN.
    up: bool,
}

impl Probes {
    fn of(reference: &Server) -> Self {
        Probes {
            checks: reference.checks_enabled(),
            agent: reference.agent.enabled(),
            health: reference.health.load(Relaxed),
            rise: reference.opts.rise,
            fall: reference.opts.fall,
            up: reference.is_up(),
        }
    }

    /// The check's health at its top: no failure since the last success.
    fn healthy(&self) -> bool {
        self.health == self.rise + self.fall - 1
    }

    /// HAProxy's counts: towards DOWN (`1/3`) while the reference runs, towards UP (`1/2`)
    /// otherwise.
    fn counts(&self) -> String {
        if self.up {
            let towards_down = i64::from(self.health) + 1 - i64::from(self.rise);
            format!("{towards_down}/{}", self.fall)
        } else {
            format!("{}/{}", self.health, self.rise)
        }
    }
}

/// A backend: its servers and how to pick one.
#[derive(Debug)]
pub struct Backend {
    pub id: usize,
    pub name: String,
    pub mode: Mode,
    pub balance: Balance,
    pub conf: Proxy,
    pub servers: Vec<Arc<Server>>,
    pub counters: Arc<Counters>,
    pub lb: Mutex<super::balance::LbState>,
    pub logger: super::log::Logger,
    pub down_transitions: AtomicU64,
    /// When it last lost its last server taking connections or got one back, in seconds
    /// since the epoch (HAProxy's `last_change`, `lastchg`).
    pub last_change: AtomicU64,
    /// Seconds spent with no server taking connections before the current stretch
    /// (HAProxy's `down_time`); see [`Backend::downtime`].
    down_time: AtomicU64,
    /// Whether a server took connections at the last change of one of its servers.
    had_server_up: AtomicBool,
    /// Wakes the connections queued for a server (every one at its `maxconn`) when a server
    /// changed state; a freed slot goes to the oldest of them directly (`balance::Slot`).
    pub servers_changed: Arc<tokio::sync::Notify>,
    /// An active server has `on-marked-up shutdown-backup-sessions`: the backup servers'
    /// sessions may be killed.
    pub backups_killed_on_up: bool,
    /// Its dynamic cookies (`cookie ... dynamic`, `dynamic-cookie-key`), which the runtime
    /// API turns on and off and rekeys (see `runtime::persist`).
    pub dyncookie: RwLock<super::persist::DynCookie>,
    /// Its HTTP/1 server connections' counters (`show stat`'s h1 columns; its servers'
    /// pooled connections are counted open there).
    pub h1: Arc<super::h1::Counters>,
}

impl Backend {
    pub fn new(id: usize, conf: &Proxy) -> Self {
        let servers_changed = Arc::new(tokio::sync::Notify::new());
        let servers: Vec<Arc<Server>> = conf
            .servers
            .iter()
            .map(|s| Arc::new(Server::new(s.id, &conf.name, s, servers_changed.clone())))
            .collect();
        Backend {
            id,
            name: conf.name.clone(),
            mode: conf.mode,
            balance: conf.balance.clone(),
            lb: Mutex::new(super::balance::LbState::new(servers.len())),
            servers,
            conf: conf.clone(),
            logger: super::log::Logger::new(&conf.logs, None).with_rings(&conf.log.rings),
            counters: Arc::default(),
            down_transitions: AtomicU64::new(0),
            last_change: AtomicU64::new(now_secs()),
            down_time: AtomicU64::new(0),
            had_server_up: AtomicBool::new(false),
            servers_changed,
            backups_killed_on_up: conf
                .servers
                .iter()
                .any(|s| s.opts.shutdown_backups_on_up && !s.opts.backup),
            dyncookie: RwLock::new(super::persist::DynCookie::of(conf)),
            h1: Arc::default(),
        }
    }

    pub fn server(&self, name: &str) -> Option<&Arc<Server>> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// After any change of one of its servers: a backend that had no server taking
    /// connections and has one now ends its time down, as HAProxy's `srv_update_status`
    /// when a server runs again or leaves drain (adding the time to its `down_time`), or
    /// leaves maintenance (`leaving_maint`: only restarting `lastchg`, the time lost).
    /// Losing the last one restarts `lastchg` too, as its alert is given.
    pub fn server_changed(&self, leaving_maint: bool) {
        let up = self.is_up();
        if self.had_server_up.swap(up, Relaxed) || !up {
            return;
        }
        let now = now_secs();
        if !leaving_maint {
            let since = self.last_change.load(Relaxed);
            self.down_time.fetch_add(now.saturating_sub(since), Relaxed);
        }
        self.last_change.store(now, Relaxed);
    }

    /// Seconds spent with no server taking connections, the current stretch included
    /// (`downtime`, HAProxy's `be_downtime`).
    pub fn downtime(&self) -> u64 {
        let past = self.down_time.load(Relaxed);
        if self.is_up() {
            past
        } else {
            past + now_secs().saturating_sub(self.last_change.load(Relaxed))
        }
    }

    /// Whether any server takes new connections (the backend's UP/DOWN): usable and not
    /// draining, as HAProxy counts them; a stats-only backend (no servers, `stats enable`)
    /// is UP, as in HAProxy.
    pub fn is_up(&self) -> bool {
        if self.servers.is_empty() {
            return self.conf.stats.enabled;
        }
        self.servers.iter().any(|s| s.usable() && s.lb_weight() > 0)
    }

    /// The active servers taking new connections (usable, weight above 0: a drained one is
    /// not counted), HAProxy's `srv_act`.
    pub fn active_count(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| !s.opts.backup && s.usable() && s.lb_weight() > 0)
            .count()
    }

    /// The same among backup servers, HAProxy's `srv_bck`.
    pub fn backup_count(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.opts.backup && s.usable() && s.lb_weight() > 0)
            .count()
    }
}

/// A frontend (or the frontend half of a listen).
#[derive(Debug)]
pub struct Frontend {
    pub id: usize,
    pub name: String,
    pub conf: Proxy,
    pub backend: Option<Arc<Backend>>,
    /// Its `use_backend` rules, in order, each with its backend.
    pub switching: Vec<super::rules::Switch>,
    pub counters: Arc<Counters>,
    /// Paused by `disable frontend`: its listeners stop listening until `enable frontend`.
    pub paused: tokio::sync::watch::Sender<bool>,
    /// The accept loops' listening sockets, and how many of them listen now.
    pub sockets: AtomicUsize,
    pub listening: AtomicUsize,
    pub logger: super::log::Logger,
    /// Its HTTP/2 connections' counters (`show stat`'s h2 columns).
    pub h2: Arc<super::h2::Counters>,
    /// Its HTTP/1 client connections' counters (`show stat`'s h1 columns).
    pub h1: Arc<super::h1::Counters>,
    /// Its `maxconn`: the connections it holds at once (`set maxconn frontend` changes it).
    pub slots: Slots,
    /// Per bind (as `conf.binds`): the permits of its `maxconn`, None without one. Shared by
    /// the listener's sockets on every thread, since HAProxy counts per listener.
    pub bind_slots: Vec<Option<Arc<tokio::sync::Semaphore>>>,
}

/// A bound on connections held at once that the runtime API may change (`set maxconn
/// frontend|global`): a semaphore with one permit per connection, and its current bound.
#[derive(Debug)]
pub struct Slots {
    semaphore: Arc<tokio::sync::Semaphore>,
    limit: Mutex<usize>,
}

impl Slots {
    pub fn new(limit: usize) -> Slots {
        let limit = limit.min(tokio::sync::Semaphore::MAX_PERMITS);
        Slots {
            semaphore: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit: Mutex::new(limit),
        }
    }

    /// The permits the accept loops take, one per connection.
    pub fn semaphore(&self) -> Arc<tokio::sync::Semaphore> {
        self.semaphore.clone()
    }

    pub fn limit(&self) -> usize {
        *self
            .limit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new bound. A lower one takes the free permits away at once and the others as the
    /// connections holding them end (a waiting acquisition ahead of the accept loops, so
    /// none is accepted meanwhile), as HAProxy stops accepting above its new `maxconn`
    /// and leaves the connections it has.
    pub fn set_limit(&self, limit: usize) {
        let limit = limit.min(tokio::sync::Semaphore::MAX_PERMITS);
        let mut current = self
            .limit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if limit >= *current {
            self.semaphore.add_permits(limit - *current);
        } else {
            let excess = *current - limit;
            let pending = excess - self.semaphore.forget_permits(excess);
            if pending > 0 {
                let semaphore = self.semaphore.clone();
                let pending = u32::try_from(pending).unwrap_or(u32::MAX);
                tokio::spawn(async move {
                    if let Ok(permits) = semaphore.acquire_many_owned(pending).await {
                        permits.forget();
                    }
                });
            }
        }
        *current = limit;
    }
}

/// The process's rate limits the runtime API may change (`set rate-limit connections|sessions
/// global`): `maxconnrate` and `maxsessrate`, 0 for none.
#[derive(Debug, Default)]
pub struct RateLimits {
    pub connections: AtomicU32,
    pub sessions: AtomicU32,
}

impl RateLimits {
    /// The lower of the two that are set (every connection is a session in hapx): the rate
    /// the accept loops hold to.
    pub fn effective(&self) -> Option<u32> {
        [&self.connections, &self.sessions]
            .into_iter()
            .map(|limit| limit.load(Relaxed))
            .filter(|&limit| limit > 0)
            .min()
    }
}

impl Frontend {
    /// The permits of each bind's `maxconn` (see [`Frontend::bind_slots`]).
    fn bind_slots(conf: &Proxy) -> Vec<Option<Arc<tokio::sync::Semaphore>>> {
        (conf.binds.iter())
            .map(|b| {
                let limit = b.maxconn?.min(tokio::sync::Semaphore::MAX_PERMITS);
                Some(Arc::new(tokio::sync::Semaphore::new(limit)))
            })
            .collect()
    }

    /// The permits of the `maxconn` of the bind listening at `addr`, if it has one.
    pub fn listener_slots(
        &self,
        addr: std::net::SocketAddr,
    ) -> Option<Arc<tokio::sync::Semaphore>> {
        let at = self.conf.binds.iter().position(|b| b.addr == addr)?;
        self.bind_slots.get(at)?.clone()
    }

    /// Paused by `disable frontend` (or a soft stop): its listeners do not accept.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Pauses or resumes the listeners; false when they already were so.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused
            .send_if_modified(|p| std::mem::replace(p, paused) != paused)
    }

    /// Waits (a second at most) until every accept loop followed [`Frontend::set_paused`]:
    /// the runtime API answers once the sockets refuse or accept again, as HAProxy does.
    pub async fn settled(&self) {
        let end = Instant::now() + Duration::from_secs(1);
        while Instant::now() < end {
            let listening = self.listening.load(Relaxed);
            let want = if self.is_paused() {
                0
            } else {
                self.sockets.load(Relaxed)
            };
            if listening == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Everything the process runs.
#[derive(Debug)]
pub struct State {
    pub config: model::Config,
    pub frontends: Vec<Arc<Frontend>>,
    pub backends: Vec<Arc<Backend>>,
    pub started: Instant,
    pub start_secs: u64,
    pub pid: u32,
    pub stopping: AtomicBool,
    /// Wakes the connections waiting for a soft stop ([`State::soft_stopped`]): one per
    /// thread (by [`stop_shard`]), as every kept-alive HTTP connection registers there
    /// between requests and one shared list would be a lock all threads contend for.
    pub stop_notify: [tokio::sync::Notify; STOP_SHARDS],
    pub total_conns: AtomicU64,
    /// Connections accepted per second (`show info` ConnRate, SessRate).
    pub conn_rate: Rate,
    pub cur_conns: AtomicUsize,
    /// The hard `maxconn`: what the descriptors allow (`show info` Hard_maxconn).
    pub max_conns: usize,
    /// The process's `maxconn` now (`show info` Maxconn; `set maxconn global`).
    pub global_slots: Slots,
    pub rate_limits: RateLimits,
    /// Descriptors the configuration needs (`show info` Maxsock).
    pub max_sock: usize,
    /// Splice pipes kept at most.
    pub max_pipes: usize,
    pub failed_resolutions: AtomicU64,
    /// The resolvers sections' nameservers and their counters (`show resolvers`).
    pub resolvers: super::dns::Sections,
    pub bytes_out: AtomicU64,
    pub splice: bool,
    /// The proxies' stick tables (none: connections do no stick work at all).
    pub tables: super::stick::Tables,
    /// The certificate files of the listeners and servers, for the `ssl cert` commands.
    pub certificate_stores: std::sync::Mutex<super::ssl_cert::Stores>,
}

/// Soft-stop wake-up lists; threads beyond this share them.
pub const STOP_SHARDS: usize = 16;

/// This thread's soft-stop wake-up list.
fn stop_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % STOP_SHARDS;
    }
    SHARD.with(|s| *s)
}

impl State {
    /// `clear counters [all]`, as HAProxy 2.6 runs it: the highest values seen (sessions,
    /// rates, times; `show info`'s Max*Rate), or with `all` also every total (`stot`,
    /// bytes, errors, `lbtot`, `chkfail`, `chkdown`, `hanafail`..., and the nameservers'
    /// `show resolvers` counters). Global totals (`CumConns`...) and queue maxima are kept.
    pub fn clear_counters(&self, all: bool) {
        let proxies = self.frontends.iter().map(|fe| &fe.counters);
        let backends = self.backends.iter().map(|be| &be.counters);
        let servers = self.backends.iter().flat_map(|be| &be.servers);
        for counters in proxies
            .chain(backends)
            .chain(servers.clone().map(|s| &s.counters))
        {
            if all {
                counters.clear_all();
            } else {
                counters.clear_maxima();
            }
        }
        if all {
            for server in servers {
                for total in [
                    &server.lb_total,
                    &server.check_failures,
                    &server.down_transitions,
                    &server.hana_failures,
                    &server.idle.connects,
                    &server.idle.reuses,
                ] {
                    total.store(0, Relaxed);
                }
            }
        }
        if all {
            self.resolvers.clear();
        }
        for backend in &self.backends {
            super::balance::clear_longest_queues(backend);
        }
        self.conn_rate.clear_max();
        let tls = super::tls::counts();
        for rate in [
            &tls.frontend_sessions,
            &tls.frontend_keys,
            &tls.backend_keys,
        ] {
            rate.clear_max();
        }
    }

    /// Builds the runtime objects of a checked configuration, within its descriptor budget.
    pub fn new(config: model::Config, budget: crate::limits::Budget) -> Self {
        let mut backends = Vec::new();
        let mut frontends = Vec::new();
        for p in &config.proxies {
            if p.kind.is_backend() {
                backends.push(Arc::new(Backend::new(p.id, p)));
            }
        }
        for p in &config.proxies {
            if !p.kind.is_frontend() {
                continue;
            }
            let backend = match (&p.default_backend, p.kind) {
                (Some((name, _)), _) => backends.iter().find(|b| &b.name == name).cloned(),
                (None, model::ProxyKind::Listen) => {
                    backends.iter().find(|b| b.name == p.name).cloned()
                }
                _ => None,
            };
            frontends.push(Arc::new(Frontend {
                id: p.id,
                name: p.name.clone(),
                conf: p.clone(),
                backend,
                switching: super::rules::switching(p, &backends),
                counters: Arc::default(),
                paused: tokio::sync::watch::Sender::new(false),
                sockets: AtomicUsize::new(0),
                listening: AtomicUsize::new(0),
                logger: super::log::Logger::for_proxy(p, &config.global),
                h2: Arc::default(),
                h1: Arc::default(),
                slots: Slots::new(p.maxconn.unwrap_or(budget.maxconn)),
                bind_slots: Frontend::bind_slots(p),
            }));
        }
        super::track::link(&backends);
        for backend in &backends {
            super::balance::link(backend);
            // Its servers' states at the start, maintenance inherited included.
            backend.had_server_up.store(backend.is_up(), Relaxed);
        }
        let splice = Self::splices(&config.global);
        let tables = super::stick::Tables::new(&config);
        let certificate_stores = super::ssl_cert::Stores::of(&frontends, &backends);
        let resolvers = super::dns::Sections::of(&config);
        let rate_limits = RateLimits {
            connections: AtomicU32::new(config.global.max_conn_rate.unwrap_or(0)),
            sessions: AtomicU32::new(config.global.max_sess_rate.unwrap_or(0)),
        };
        State {
            config,
            frontends,
            backends,
            started: Instant::now(),
            start_secs: now_secs(),
            pid: std::process::id(),
            stopping: AtomicBool::new(false),
            stop_notify: std::array::from_fn(|_| tokio::sync::Notify::new()),
            total_conns: AtomicU64::new(0),
            conn_rate: Rate::default(),
            cur_conns: AtomicUsize::new(0),
            max_conns: budget.maxconn,
            global_slots: Slots::new(budget.maxconn),
            rate_limits,
            max_sock: budget.maxsock,
            max_pipes: budget.maxpipes,
            failed_resolutions: AtomicU64::new(0),
            resolvers,
            bytes_out: AtomicU64::new(0),
            splice,
            tables,
            certificate_stores: std::sync::Mutex::new(certificate_stores),
        }
    }

    /// Begins a soft stop: idle keep-alive connections close, responses say `Connection: close`.
    pub fn stop_softly(&self) {
        self.stopping.store(true, Relaxed);
        // No request takes an idle connection any more: they close now, as in HAProxy.
        for server in self.backends.iter().flat_map(|b| &b.servers) {
            server.retire_connections();
        }
        for notify in &self.stop_notify {
            notify.notify_waiters();
        }
    }

    /// Resolves once a soft stop has begun (at once if it has).
    pub async fn soft_stopped(&self) {
        // Registered before the flag is read, so a stop between the two still wakes us.
        let notified = self.stop_notify[stop_shard()].notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.stopping.load(Relaxed) {
            return;
        }
        notified.await;
    }

    /// The directions of a stream from frontend `fe` to backend `be` that splice(2) bulk
    /// transfers (see [`super::forward::Splicing`]).
    pub fn splicing(&self, fe: &Frontend, be: &Backend) -> super::forward::Splicing {
        let (fe, be) = (fe.conf.options.splice, be.conf.options.splice);
        super::forward::Splicing::of(self.splice, fe, be)
    }

    /// Whether bulk transfers may go through splice(2): unless `nosplice` or
    /// `HAPX_NO_SPLICE`. Each stream splices only as its proxies' options say ([`Self::splicing`]).
    pub fn splices(global: &model::Global) -> bool {
        !global.nosplice && std::env::var_os("HAPX_NO_SPLICE").is_none()
    }

    pub fn backend(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.name == name)
    }

    pub fn frontend(&self, name: &str) -> Option<&Arc<Frontend>> {
        self.frontends.iter().find(|f| f.name == name)
    }

    /// `backend/server` as the runtime API names it.
    pub fn find_server(&self, spec: &str) -> Result<(&Arc<Backend>, &Arc<Server>), &'static str> {
        let (b, s) = spec.split_once('/').ok_or("Require 'backend/server'.\n")?;
        let backend = self.backend(b).ok_or("No such backend.\n")?;
        let server = backend.server(s).ok_or("No such server.\n")?;
        Ok((backend, server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any `maxconn` passes `-c` (as with HAProxy); one beyond what a semaphore holds
    /// (2^61 - 1) cannot be reached anyway and is capped there.
    #[test]
    fn any_maxconn_makes_slots() {
        assert_eq!(Slots::new(5).semaphore().available_permits(), 5);
        let huge = Slots::new(2_305_843_009_213_693_952);
        let max = tokio::sync::Semaphore::MAX_PERMITS;
        assert_eq!(
            (huge.limit(), huge.semaphore().available_permits()),
            (max, max)
        );
    }

    #[tokio::test]
    async fn a_lower_bound_takes_the_slots_back_as_connections_end() {
        let slots = Slots::new(3);
        let semaphore = slots.semaphore();
        let held: Vec<_> = (0..2)
            .map(|_| semaphore.clone().try_acquire_owned().unwrap())
            .collect();
        // Two in use, one free: down to one, the free one goes at once and one of the two
        // in use when it ends.
        slots.set_limit(1);
        assert_eq!(slots.limit(), 1);
        assert_eq!(semaphore.available_permits(), 0);
        drop(held);
        tokio::task::yield_now().await;
        for _ in 0..100 {
            if semaphore.available_permits() == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(semaphore.available_permits(), 1);
        // Raised again: the new slots are free at once.
        slots.set_limit(4);
        assert_eq!(semaphore.available_permits(), 4);
    }

    #[test]
    fn the_lower_rate_limit_that_is_set_applies() {
        let limits = RateLimits::default();
        assert_eq!(limits.effective(), None);
        limits.sessions.store(20, Relaxed);
        assert_eq!(limits.effective(), Some(20));
        limits.connections.store(10, Relaxed);
        assert_eq!(limits.effective(), Some(10));
    }

    #[test]
    fn a_name_set_from_the_cli_shows_from_the_next_admin_change() {
        let server = Server::new(
            1,
            "b",
            &model::Server {
                name: "s".into(),
                host: "web".into(),
                port: Some(1),
                opts: ServerOptions::default(),
                place: Default::default(),
                id: 1,
                addr: Some([127, 0, 0, 1].into()),
            },
            Default::default(),
        );
        server.set_fqdn_set_by_cli(true);
        assert!(!server.shows_fqdn_set_by_cli());
        // No change: a server ready made ready, a weight.
        server.set_admin_flag(AdminFlag::Drain, false);
        server.set_weight(3);
        assert!(!server.shows_fqdn_set_by_cli());
        server.set_admin(Admin::Drain);
        assert!(server.shows_fqdn_set_by_cli());
        // A forced drain kept under maintenance, then dropped, is a change too.
        server.set_fqdn_set_by_cli(false);
        server.set_admin_flag(AdminFlag::Maint, true);
        server.set_fqdn_set_by_cli(true);
        server.set_admin_flag(AdminFlag::Drain, false);
        assert!(server.shows_fqdn_set_by_cli());
        // The resolution's maintenance too.
        server.set_fqdn_set_by_cli(false);
        server.set_resolved_addr(None);
        assert!(!server.shows_fqdn_set_by_cli());
    }
}
