//! The Prometheus exporter (`http-request use-service prometheus-exporter`), in HAProxy
//! 2.6's exposition: the same metric names, HELP texts, TYPEs and labels (`proxy`,
//! `server`, `state` for status gauges, `code` for response classes), for every value hapx
//! keeps, queues, denials, errors and connection reuse included. Families hapx has no value
//! for (SSL, compression, caches, pools, tasks...) are left out rather than reported as zeros;
//! a family without samples prints nothing, as in HAProxy.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::state::{Admin, Backend, Counters, Frontend, Server, State, now_secs};
use super::stats;
use crate::config::model::Mode;

/// Metric kinds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// One sample: its labels (already `k="v"` joined) and value.
type Sample = (String, String);

#[derive(Debug, Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str, samples: Vec<Sample>) {
        if samples.is_empty() {
            return;
        }
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let o = &mut self.0;
        let _ = writeln!(
            o,
            "# HELP haproxy_{name} {help}\n# TYPE haproxy_{name} {kind}"
        );
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(o, "haproxy_{name} {value}");
            } else {
                let _ = writeln!(o, "haproxy_{name}{{{labels}}} {value}");
            }
        }
    }

    fn process(&mut self, name: &str, kind: Kind, help: &str, value: impl ToString) {
        let sample = (String::new(), value.to_string());
        self.family(&format!("process_{name}"), kind, help, vec![sample]);
    }
}

/// Label values escaped as the text format wants.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(ms: u64) -> String {
    format!("{:.6}", ms as f64 / 1000.0)
}

/// Seconds since an epoch time in seconds; -1 for never (0).
fn ago(at: u64) -> String {
    if at == 0 {
        "-1".into()
    } else {
        now_secs().saturating_sub(at).to_string()
    }
}

/// Families every frontend, backend and server has, from their traffic counters.
type CounterFamily = (&'static str, Kind, &'static str, fn(&Counters) -> String);

const SESSION_FAMILIES: &[CounterFamily] = &[
    (
        "current_sessions",
        Kind::Gauge,
        "Number of current sessions on the frontend, backend or server",
        |c| c.cur.load(Relaxed).to_string(),
    ),
    (
        "max_sessions",
        Kind::Gauge,
        "Highest value of current sessions encountered since process started",
        |c| c.max.load(Relaxed).to_string(),
    ),
    (
        "sessions_total",
        Kind::Counter,
        "Total number of sessions since process started",
        |c| c.total.load(Relaxed).to_string(),
    ),
    (
        "bytes_in_total",
        Kind::Counter,
        "Total number of request bytes since process started",
        |c| c.bytes_in.load(Relaxed).to_string(),
    ),
    (
        "bytes_out_total",
        Kind::Counter,
        "Total number of response bytes since process started",
        |c| c.bytes_out.load(Relaxed).to_string(),
    ),
    (
        "max_session_rate",
        Kind::Gauge,
        "Highest value of sessions per second observed since the worker process started",
        |c| c.session_rate.max().to_string(),
    ),
];

/// Families of backends and servers: the outcome of connecting, and the session times.
const SERVER_SIDE_FAMILIES: &[CounterFamily] = &[
    (
        "connection_errors_total",
        Kind::Counter,
        "Total number of failed connections to server since the worker process started",
        |c| c.conn_errors.load(Relaxed).to_string(),
    ),
    (
        "retry_warnings_total",
        Kind::Counter,
        "Total number of server connection retries since the worker process started",
        |c| c.retries.load(Relaxed).to_string(),
    ),
    (
        "redispatch_warnings_total",
        Kind::Counter,
        "Total number of server redispatches due to connection failures since the worker process started",
        |c| c.redispatches.load(Relaxed).to_string(),
    ),
    (
        "client_aborts_total",
        Kind::Counter,
        "Total number of requests or connections aborted by the client since the worker process started",
        |c| c.client_aborts.load(Relaxed).to_string(),
    ),
    (
        "server_aborts_total",
        Kind::Counter,
        "Total number of requests or connections aborted by the server since the worker process started",
        |c| c.server_aborts.load(Relaxed).to_string(),
    ),
    (
        "last_session_seconds",
        Kind::Gauge,
        "How long ago some traffic was seen on this object on this worker process, in seconds",
        |c| ago(c.last_session.load(Relaxed)),
    ),
    (
        "queue_time_average_seconds",
        Kind::Gauge,
        "Avg. queue time for last 1024 successful connections.",
        |c| seconds(c.queue_ms.mean()),
    ),
    (
        "connect_time_average_seconds",
        Kind::Gauge,
        "Avg. connect time for last 1024 successful connections.",
        |c| seconds(c.connect_ms.mean()),
    ),
    (
        "response_time_average_seconds",
        Kind::Gauge,
        "Avg. response time for last 1024 successful connections.",
        |c| seconds(c.response_ms.mean()),
    ),
    (
        "total_time_average_seconds",
        Kind::Gauge,
        "Avg. total time for last 1024 successful connections.",
        |c| seconds(c.total_ms.mean()),
    ),
    (
        "max_queue_time_seconds",
        Kind::Gauge,
        "Maximum observed time spent in the queue",
        |c| seconds(c.queue_ms.max()),
    ),
    (
        "max_connect_time_seconds",
        Kind::Gauge,
        "Maximum observed time spent waiting for a connection to complete",
        |c| seconds(c.connect_ms.max()),
    ),
    (
        "max_response_time_seconds",
        Kind::Gauge,
        "Maximum observed time spent waiting for a server response",
        |c| seconds(c.response_ms.max()),
    ),
    (
        "max_total_time_seconds",
        Kind::Gauge,
        "Maximum observed total request+response time (request+queue+connect+response+processing)",
        |c| seconds(c.total_ms.max()),
    ),
];

/// Families read from a backend's or server's `show stat` row: (name, column, kind, help).
type RowFamily = (&'static str, &'static str, Kind, &'static str);

const ROW_FAMILIES: &[RowFamily] = &[
    (
        "weight",
        "weight",
        Kind::Gauge,
        "Server's effective weight, or sum of active servers' effective weights for a backend",
    ),
    (
        "uweight",
        "uweight",
        Kind::Gauge,
        "Server's user weight, or sum of active servers' user weights for a backend",
    ),
    (
        "check_last_change_seconds",
        "lastchg",
        Kind::Gauge,
        "How long ago the last server state changed, in seconds",
    ),
    (
        "loadbalanced_total",
        "lbtot",
        Kind::Counter,
        "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)",
    ),
    (
        "connection_attempts_total",
        "connect",
        Kind::Counter,
        "Total number of outgoing connection attempts on this backend/server since the worker process started",
    ),
];

/// Families read from a `show stat` column, with HAProxy's value when the column is empty
/// (`NaN` for a limit there is none of): (name, column, kind, help, when empty).
type FilledRowFamily = (&'static str, &'static str, Kind, &'static str, &'static str);

const DENIED_RESPONSES_HELP: &str = "Total number of denied responses since process started";
const FAILED_REWRITES_HELP: &str =
    "Total number of failed HTTP header rewrites since the worker process started";
const INTERNAL_ERRORS_HELP: &str = "Total number of internal errors since process started";
const REUSES_HELP: &str =
    "Total number of reused connection on this backend/server since the worker process started";
const CURRENT_QUEUE_HELP: &str = "Number of current queued connections";
const MAX_QUEUE_HELP: &str =
    "Highest value of queued connections encountered since process started";

const FRONTEND_ROW_FAMILIES: &[FilledRowFamily] = &[
    (
        "limit_session_rate",
        "rate_lim",
        Kind::Gauge,
        "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)",
        "0",
    ),
    (
        "responses_denied_total",
        "dresp",
        Kind::Counter,
        DENIED_RESPONSES_HELP,
        "0",
    ),
    (
        "denied_connections_total",
        "dcon",
        Kind::Counter,
        "Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since the worker process started",
        "0",
    ),
    (
        "denied_sessions_total",
        "dses",
        Kind::Counter,
        "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started",
        "0",
    ),
    (
        "failed_header_rewriting_total",
        "wrew",
        Kind::Counter,
        FAILED_REWRITES_HELP,
        "0",
    ),
    (
        "internal_errors_total",
        "eint",
        Kind::Counter,
        INTERNAL_ERRORS_HELP,
        "0",
    ),
    (
        "intercepted_requests_total",
        "intercepted",
        Kind::Counter,
        "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker process started",
        "0",
    ),
];

/// Families of backends and servers alike.
const QUEUE_AND_ERROR_FAMILIES: &[FilledRowFamily] = &[
    (
        "current_queue",
        "qcur",
        Kind::Gauge,
        CURRENT_QUEUE_HELP,
        "0",
    ),
    ("max_queue", "qmax", Kind::Gauge, MAX_QUEUE_HELP, "0"),
    (
        "responses_denied_total",
        "dresp",
        Kind::Counter,
        DENIED_RESPONSES_HELP,
        "0",
    ),
    (
        "failed_header_rewriting_total",
        "wrew",
        Kind::Counter,
        FAILED_REWRITES_HELP,
        "0",
    ),
    (
        "internal_errors_total",
        "eint",
        Kind::Counter,
        INTERNAL_ERRORS_HELP,
        "0",
    ),
    (
        "connection_reuses_total",
        "reuse",
        Kind::Counter,
        REUSES_HELP,
        "0",
    ),
];

const BACKEND_ROW_FAMILIES: &[FilledRowFamily] = &[(
    "requests_denied_total",
    "dreq",
    Kind::Counter,
    "Total number of denied requests since process started",
    "0",
)];

const SERVER_ROW_FAMILIES: &[FilledRowFamily] = &[
    (
        "queue_limit",
        "qlimit",
        Kind::Gauge,
        "Limit on the number of connections in queue, for servers only (maxqueue argument)",
        "NaN",
    ),
    (
        "current_throttle",
        "throttle",
        Kind::Gauge,
        "Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)",
        "NaN",
    ),
    (
        "response_errors_total",
        "eresp",
        Kind::Counter,
        "Total number of invalid responses since the worker process started",
        "0",
    ),
    (
        "idle_connections_current",
        "srv_icur",
        Kind::Gauge,
        "Current number of idle connections available for reuse on this server",
        "0",
    ),
    (
        "idle_connections_limit",
        "src_ilim",
        Kind::Gauge,
        "Limit on the number of available idle connections on this server (server 'pool_max_conn' directive)",
        "NaN",
    ),
    (
        "unsafe_idle_connections_current",
        "idle_conn_cur",
        Kind::Gauge,
        "Current number of unsafe idle connections",
        "0",
    ),
    (
        "safe_idle_connections_current",
        "safe_conn_cur",
        Kind::Gauge,
        "Current number of safe idle connections",
        "0",
    ),
    (
        "used_connections_current",
        "used_conn_cur",
        Kind::Gauge,
        "Current number of connections in use",
        "0",
    ),
    (
        "need_connections_current",
        "need_conn_est",
        Kind::Gauge,
        "Estimated needed number of connections",
        "0",
    ),
];

/// A column's value, or HAProxy's value for it when empty.
fn filled(value: String, when_empty: &str) -> String {
    if value.is_empty() {
        when_empty.to_string()
    } else {
        value
    }
}

const HTTP_REQUESTS_HELP: &str =
    "Total number of HTTP requests processed by this object since the worker process started";
/// HAProxy's exporter describes the whole family by its first code class.
const HTTP_RESPONSES_HELP: &str = "Total number of HTTP responses with status 100-199 returned by this object since the worker process started";
const CODES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
const STATUS_HELP: &str = "Current status of the service, per state label value.";
const SERVER_STATES: [&str; 5] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];

/// The whole exposition.
pub fn render(state: &State) -> String {
    let mut out = Exposition::default();
    process(&mut out, state);
    frontends(&mut out, state);
    backends(&mut out, state);
    servers(&mut out, state);
    out.0
}

fn process(out: &mut Exposition, state: &State) {
    let info = stats::process_info(state);
    let g = Kind::Gauge;
    let c = Kind::Counter;
    out.process(
        "nbthread",
        g,
        "Number of started threads (global.nbthread)",
        info.threads,
    );
    out.process(
        "nbproc",
        g,
        "Number of started worker processes (historical, always 1)",
        1,
    );
    out.process(
        "relative_process_id",
        g,
        "Relative worker process number (1)",
        1,
    );
    out.process(
        "uptime_seconds",
        g,
        "How long ago this worker process was started (seconds)",
        state.started.elapsed().as_secs(),
    );
    out.process(
        "max_fds",
        g,
        "Hard limit on the number of per-process file descriptors",
        info.ulimit,
    );
    out.process(
        "max_sockets",
        g,
        "Hard limit on the number of per-process sockets",
        state.max_sock,
    );
    out.process(
        "max_connections",
        g,
        "Hard limit on the number of per-process connections (configured or imposed by Ulimit-n)",
        state.global_slots.limit(),
    );
    out.process(
        "hard_max_connections",
        g,
        "Hard limit on the number of per-process connections (imposed by Memmax_MB or Ulimit-n)",
        state.max_conns,
    );
    out.process(
        "current_connections",
        g,
        "Current number of connections on this worker process",
        state.cur_conns.load(Relaxed),
    );
    out.process(
        "connections_total",
        c,
        "Total number of connections on this worker process since started",
        state.total_conns.load(Relaxed),
    );
    out.process(
        "requests_total",
        c,
        "Total number of requests on this worker process since started",
        info.requests,
    );
    out.process(
        "max_pipes",
        g,
        "Hard limit on the number of pipes for splicing, 0=unlimited",
        state.max_pipes,
    );
    out.process(
        "pipes_used_total",
        c,
        "Current number of pipes in use in this worker process",
        info.pipes_used,
    );
    out.process(
        "pipes_free_total",
        c,
        "Current number of allocated and available pipes in this worker process",
        info.pipes_free,
    );
    for (name, help, value) in [
        (
            "current_connection_rate",
            "Number of front connections created on this worker process over the last second",
            state.conn_rate.per_second(),
        ),
        (
            "max_connection_rate",
            "Highest ConnRate reached on this worker process since started (in connections per second)",
            state.conn_rate.max(),
        ),
        (
            "current_session_rate",
            "Number of sessions created on this worker process over the last second",
            state.conn_rate.per_second(),
        ),
        (
            "max_session_rate",
            "Highest SessRate reached on this worker process since started (in sessions per second)",
            state.conn_rate.max(),
        ),
    ] {
        out.process(name, g, help, value);
    }
    out.process(
        "stopping",
        g,
        "1 if the worker process is currently stopping, otherwise zero",
        u8::from(state.stopping.load(Relaxed)),
    );
    out.process(
        "jobs",
        g,
        "Current number of active jobs on the current worker process (frontend connections, master connections, listeners)",
        info.jobs,
    );
    out.process(
        "listeners",
        g,
        "Current number of active listeners on the current worker process",
        info.listeners,
    );
    let (active_peers, connected_peers) = super::peers::session_counts();
    for (name, help, value) in [
        (
            "active_peers",
            "Current number of verified active peers connections on the current worker process",
            active_peers,
        ),
        (
            "connected_peers",
            "Current number of peers having passed the connection step on the current worker process",
            connected_peers,
        ),
        (
            "limit_connection_rate",
            "Hard limit for ConnRate (global.maxconnrate)",
            state.rate_limits.connections.load(Relaxed).into(),
        ),
        (
            "limit_session_rate",
            "Hard limit for SessRate (global.maxsessrate)",
            state.rate_limits.sessions.load(Relaxed).into(),
        ),
        (
            "idle_time_percent",
            "Percentage of last second spent waiting in the current worker thread",
            stats::idle_pct(state, info.threads).into(),
        ),
        // hapx never busy-polls, and has no memory limit (HAProxy's `-m`): true zeros.
        (
            "busy_polling_enabled",
            "1 if busy-polling is currently in use on the worker process, otherwise zero (config.busy-polling)",
            0,
        ),
        (
            "max_memory_bytes",
            "Worker process's hard limit on memory usage in byes (-m on command line)",
            0,
        ),
    ] {
        out.process(name, g, help, value);
    }
    out.process(
        "failed_resolutions",
        c,
        "Total number of failed DNS resolutions in current worker process since started",
        state.failed_resolutions.load(Relaxed),
    );
    out.process(
        "bytes_out_total",
        c,
        "Total number of bytes emitted by current worker process since started",
        state.bytes_out.load(Relaxed),
    );
    out.process(
        "spliced_bytes_out_total",
        c,
        "Total number of bytes emitted by current worker process through a kernel pipe since started",
        info.spliced_bytes_out,
    );
    out.family(
        "process_build_info",
        g,
        "Build info",
        vec![(
            format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
            "1".into(),
        )],
    );
    out.process(
        "start_time_seconds",
        g,
        "Start time in seconds",
        state.start_secs,
    );
}

fn frontends(out: &mut Exposition, state: &State) {
    let label = |f: &Frontend| format!("proxy=\"{}\"", esc(&f.name));
    let each = |value: &dyn Fn(&Frontend) -> String| -> Vec<Sample> {
        state
            .frontends
            .iter()
            .map(|f| (label(f), value(f)))
            .collect()
    };
    let http = |value: &dyn Fn(&Frontend) -> String| -> Vec<Sample> {
        state
            .frontends
            .iter()
            .filter(|f| f.conf.mode == Mode::Http)
            .map(|f| (label(f), value(f)))
            .collect()
    };
    for (name, kind, help, get) in SESSION_FAMILIES {
        out.family(
            &format!("frontend_{name}"),
            *kind,
            help,
            each(&|f| get(&f.counters)),
        );
    }
    out.family(
        "frontend_limit_sessions",
        Kind::Gauge,
        "Frontend/listener/server's maxconn, backend's fullconn",
        each(&|f| f.slots.limit().to_string()),
    );
    out.family(
        "frontend_requests_denied_total",
        Kind::Counter,
        "Total number of denied requests since process started",
        each(&|f| f.counters.denied_req.load(Relaxed).to_string()),
    );
    out.family(
        "frontend_request_errors_total",
        Kind::Counter,
        "Total number of invalid requests since process started",
        each(&|f| f.counters.req_errors.load(Relaxed).to_string()),
    );
    for (name, col, kind, help, when_empty) in FRONTEND_ROW_FAMILIES {
        out.family(
            &format!("frontend_{name}"),
            *kind,
            help,
            each(&|f| {
                let mut row = stats::frontend_row(state, f);
                filled(row.remove(col).unwrap_or_default(), when_empty)
            }),
        );
    }
    // A paused frontend (`disable frontend`) is still UP to HAProxy's exporter: only a
    // stopped one is DOWN.
    let up = |_: &Frontend| !state.stopping.load(Relaxed);
    out.family(
        "frontend_status",
        Kind::Gauge,
        STATUS_HELP,
        state
            .frontends
            .iter()
            .flat_map(|f| {
                per_state(
                    &label(f),
                    &["DOWN", "UP"],
                    if up(f) { "UP" } else { "DOWN" },
                )
            })
            .collect(),
    );
    out.family(
        "frontend_connections_rate_max",
        Kind::Gauge,
        "Highest value of connections per second observed since the worker process started",
        each(&|f| f.counters.connection_rate.max().to_string()),
    );
    out.family(
        "frontend_connections_total",
        Kind::Counter,
        "Total number of new connections accepted on this frontend since the worker process started",
        each(&|f| f.counters.connections.load(Relaxed).to_string()),
    );
    out.family(
        "frontend_http_requests_rate_max",
        Kind::Gauge,
        "Highest value of http requests observed since the worker process started",
        http(&|f| f.counters.request_rate.max().to_string()),
    );
    out.family(
        "frontend_http_requests_total",
        Kind::Counter,
        HTTP_REQUESTS_HELP,
        http(&|f| f.counters.http_reqs.load(Relaxed).to_string()),
    );
    out.family(
        "frontend_http_responses_total",
        Kind::Counter,
        HTTP_RESPONSES_HELP,
        state
            .frontends
            .iter()
            .filter(|f| f.conf.mode == Mode::Http)
            .flat_map(|f| per_code(&label(f), &f.counters))
            .collect(),
    );
}

/// One sample per state, 1 for the current one.
fn per_state(labels: &str, states: &[&str], current: &str) -> Vec<Sample> {
    states
        .iter()
        .map(|s| {
            (
                format!("{labels},state=\"{s}\""),
                u8::from(*s == current).to_string(),
            )
        })
        .collect()
}

fn per_code(labels: &str, c: &Counters) -> Vec<Sample> {
    CODES
        .iter()
        .zip(&c.http_status)
        .map(|(code, n)| {
            (
                format!("{labels},code=\"{code}\""),
                n.load(Relaxed).to_string(),
            )
        })
        .collect()
}

/// The server's state as the exporter names it (HAProxy's `promex_srv_status`):
/// maintenance (its own, the tracked server's, or for want of an address) first; else by
/// its health, a running server draining shown as DRAIN (a drained server DOWN is DOWN).
fn server_state(s: &Server) -> &'static str {
    if s.admin() == Admin::Maint || s.in_inherited_maint() || s.addr().is_none() {
        "MAINT"
    } else if s.is_stopping() {
        "NOLB"
    } else if !s.is_up() {
        "DOWN"
    } else if s.is_draining() {
        "DRAIN"
    } else {
        "UP"
    }
}

fn backends(out: &mut Exposition, state: &State) {
    let label = |b: &Backend| format!("proxy=\"{}\"", esc(&b.name));
    let each = |value: &dyn Fn(&Backend) -> String| -> Vec<Sample> {
        state
            .backends
            .iter()
            .map(|b| (label(b), value(b)))
            .collect()
    };
    let http = |b: &&std::sync::Arc<Backend>| b.mode == Mode::Http;
    for (name, kind, help, get) in SESSION_FAMILIES.iter().chain(SERVER_SIDE_FAMILIES) {
        out.family(
            &format!("backend_{name}"),
            *kind,
            help,
            each(&|b| get(&b.counters)),
        );
    }
    let row = |b: &Backend, col: &str| stats::backend_column(state, b, col);
    let backend_only: &[RowFamily] = &[
        (
            "limit_sessions",
            "slim",
            Kind::Gauge,
            "Frontend/listener/server's maxconn, backend's fullconn",
        ),
        (
            "active_servers",
            "act",
            Kind::Gauge,
            "Total number of active UP servers with a non-zero weight",
        ),
        (
            "backup_servers",
            "bck",
            Kind::Gauge,
            "Total number of backup UP servers with a non-zero weight",
        ),
        (
            "check_up_down_total",
            "chkdown",
            Kind::Counter,
            "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started",
        ),
        (
            "downtime_seconds_total",
            "downtime",
            Kind::Counter,
            "Total time spent in DOWN state, for server or backend",
        ),
    ];
    for (name, col, kind, help) in ROW_FAMILIES.iter().chain(backend_only) {
        out.family(
            &format!("backend_{name}"),
            *kind,
            help,
            each(&|b| row(b, col)),
        );
    }
    for (name, col, kind, help, when_empty) in
        QUEUE_AND_ERROR_FAMILIES.iter().chain(BACKEND_ROW_FAMILIES)
    {
        out.family(
            &format!("backend_{name}"),
            *kind,
            help,
            each(&|b| filled(row(b, col), when_empty)),
        );
    }
    out.family(
        "backend_response_errors_total",
        Kind::Counter,
        "Total number of invalid responses since the worker process started",
        each(&|b| b.counters.resp_errors.load(Relaxed).to_string()),
    );
    out.family(
        "backend_status",
        Kind::Gauge,
        STATUS_HELP,
        state
            .backends
            .iter()
            .flat_map(|b| {
                let current = stats::backend_status(b);
                per_state(&label(b), &["DOWN", "UP"], current)
            })
            .collect(),
    );
    out.family(
        "backend_http_requests_total",
        Kind::Counter,
        HTTP_REQUESTS_HELP,
        state
            .backends
            .iter()
            .filter(http)
            .map(|b| (label(b), b.counters.http_reqs.load(Relaxed).to_string()))
            .collect(),
    );
    out.family(
        "backend_http_responses_total",
        Kind::Counter,
        HTTP_RESPONSES_HELP,
        state
            .backends
            .iter()
            .filter(http)
            .flat_map(|b| per_code(&label(b), &b.counters))
            .collect(),
    );
    // The aggregates leave out backends without servers, as HAProxy does.
    for (name, help) in [
        (
            "agg_server_status",
            "Backend's aggregated gauge of servers' status",
        ),
        (
            "agg_server_check_status",
            "Backend's aggregated gauge of servers' state check status",
        ),
    ] {
        out.family(
            &format!("backend_{name}"),
            Kind::Gauge,
            help,
            state
                .backends
                .iter()
                .filter(|b| !b.servers.is_empty())
                .flat_map(|b| {
                    SERVER_STATES.map(|st| {
                        let n = b.servers.iter().filter(|s| server_state(s) == st).count();
                        (format!("{},state=\"{st}\"", label(b)), n.to_string())
                    })
                })
                .collect(),
        );
    }
    out.family(
        "backend_agg_check_status",
        Kind::Gauge,
        "Backend's aggregated gauge of servers' state check status",
        state
            .backends
            .iter()
            .filter(|b| !b.servers.is_empty())
            .flat_map(|b| {
                stats::CHECK_STATUSES
                    .iter()
                    .filter(|(.., code, _)| *code >= 4)
                    .map(|(name, ..)| {
                        let n = b
                            .servers
                            .iter()
                            .filter(|s| s.opts.check && last_check(s) == *name)
                            .count();
                        (format!("{},state=\"{name}\"", label(b)), n.to_string())
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
}

fn last_check(s: &Server) -> String {
    s.check.lock().map(|c| c.status.clone()).unwrap_or_default()
}

fn servers(out: &mut Exposition, state: &State) {
    let all: Vec<(&Backend, &Server)> = state
        .backends
        .iter()
        .flat_map(|b| b.servers.iter().map(move |s| (b.as_ref(), s.as_ref())))
        .collect();
    let label =
        |b: &Backend, s: &Server| format!("proxy=\"{}\",server=\"{}\"", esc(&b.name), esc(&s.name));
    let each = |keep: &dyn Fn(&Backend, &Server) -> bool,
                value: &dyn Fn(&Backend, &Server) -> String|
     -> Vec<Sample> {
        all.iter()
            .filter(|(b, s)| keep(b, s))
            .map(|(b, s)| (label(b, s), value(b, s)))
            .collect()
    };
    let any = |_: &Backend, _: &Server| true;
    for (name, kind, help, get) in SESSION_FAMILIES.iter().chain(SERVER_SIDE_FAMILIES) {
        out.family(
            &format!("server_{name}"),
            *kind,
            help,
            each(&any, &|_, s| get(&s.counters)),
        );
    }
    let row = |b: &Backend, s: &Server, col: &str| stats::server_column(b, s, col);
    for (name, col, kind, help) in ROW_FAMILIES {
        out.family(
            &format!("server_{name}"),
            *kind,
            help,
            each(&any, &|b, s| row(b, s, col)),
        );
    }
    for (name, col, kind, help, when_empty) in
        QUEUE_AND_ERROR_FAMILIES.iter().chain(SERVER_ROW_FAMILIES)
    {
        out.family(
            &format!("server_{name}"),
            *kind,
            help,
            each(&any, &|b, s| filled(row(b, s, col), when_empty)),
        );
    }
    out.family(
        "server_limit_sessions",
        Kind::Gauge,
        "Frontend/listener/server's maxconn, backend's fullconn",
        each(&any, &|_, s| {
            s.maxconn().map_or("NaN".into(), |m| m.to_string())
        }),
    );
    out.family(
        "server_status",
        Kind::Gauge,
        STATUS_HELP,
        all.iter()
            .flat_map(|(b, s)| per_state(&label(b, s), &SERVER_STATES, server_state(s)))
            .collect(),
    );
    let checked = |_: &Backend, s: &Server| s.opts.check;
    // Maintenance pauses the checks: HAProxy then reports no last check.
    let reporting = |_: &Backend, s: &Server| s.opts.check && s.admin() != Admin::Maint;
    let timed = |_: &Backend, s: &Server| {
        let result = s.check.lock().ok();
        s.opts.check && result.is_some_and(|c| stats::check_duration_ms(&c).is_some())
    };
    out.family(
        "server_check_failures_total",
        Kind::Counter,
        "Total number of failed individual health checks per server/backend, since the worker process started",
        each(&checked, &|_, s| s.check_failures.load(Relaxed).to_string()),
    );
    out.family(
        "server_check_up_down_total",
        Kind::Counter,
        "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started",
        each(&checked, &|_, s| s.down_transitions.load(Relaxed).to_string()),
    );
    out.family(
        "server_downtime_seconds_total",
        Kind::Counter,
        "Total time spent in DOWN state, for server or backend",
        each(&checked, &|b, s| row(b, s, "downtime")),
    );
    out.family(
        "server_check_status",
        Kind::Gauge,
        "Status of last health check, per state label value.",
        all.iter()
            .filter(|(b, s)| reporting(b, s))
            .flat_map(|(b, s)| {
                let current = last_check(s);
                stats::CHECK_STATUSES
                    .iter()
                    .filter(|(.., code, _)| *code >= 4)
                    .map(|(name, ..)| {
                        (
                            format!("{},state=\"{name}\"", label(b, s)),
                            u8::from(*name == current).to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
    out.family(
        "server_check_code",
        Kind::Gauge,
        "layer5-7 code, if available of the last health check.",
        each(&reporting, &|_, s| {
            let code = s.check.lock().ok().and_then(|c| c.code);
            code.unwrap_or(0).to_string()
        }),
    );
    out.family(
        "server_check_duration_seconds",
        Kind::Gauge,
        "Total duration of the latest server health check, in seconds.",
        // As HAProxy's exporter: from a `CHECKED` result on, an untimed one at -1 ms.
        each(&timed, &|_, s| {
            let ms = s
                .check
                .lock()
                .ok()
                .and_then(|c| stats::check_duration_ms(&c));
            format!("{:.6}", ms.unwrap_or(0) as f64 / 1000.0)
        }),
    );
    out.family(
        "server_http_responses_total",
        Kind::Counter,
        HTTP_RESPONSES_HELP,
        all.iter()
            .filter(|(b, _)| b.mode == Mode::Http)
            .flat_map(|(b, s)| per_code(&label(b, s), &s.counters))
            .collect(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model;

    fn server() -> Server {
        let conf = model::Server {
            name: "s".into(),
            host: "127.0.0.1".into(),
            port: Some(1),
            opts: model::ServerOptions::default(),
            place: Default::default(),
            id: 1,
            addr: Some([127, 0, 0, 1].into()),
        };
        Server::new(1, "b", &conf, Default::default())
    }

    #[test]
    fn server_states_are_named_as_haproxys_exporter_names_them() {
        let s = server();
        assert_eq!(server_state(&s), "UP");
        s.set_admin(Admin::Drain);
        assert_eq!(server_state(&s), "DRAIN");
        // Drained and DOWN: DOWN, as `promex_srv_status` takes a drain only when running.
        s.set_up(false);
        assert_eq!(server_state(&s), "DOWN");
        s.set_admin(Admin::Maint);
        assert_eq!(server_state(&s), "MAINT");
        s.set_admin(Admin::Ready);
        s.set_up(true);
        s.set_stopping(true);
        assert_eq!(server_state(&s), "NOLB");
    }
}
