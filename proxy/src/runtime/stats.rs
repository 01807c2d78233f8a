//! Statistics in HAProxy's formats: `show stat` CSV (the same 2.6 columns, in order), `show
//! info`, their typed forms (`typed`), `show servers state`; their rows make the HTML stats page ([`super::stats_html`]).

pub use super::stats_html::{PageView, html};

mod typed;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::state::{
    Admin, AdminFlag, Backend, CheckResult, Counters, Frontend, Server, State, now_secs,
};
use crate::config::model::Mode;

/// HAProxy 2.6's `show stat` header line, column for column.
pub const CSV_COLUMNS: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

/// One stats row: column name -> value (absent columns are empty).
pub(super) type Row = HashMap<&'static str, String>;

fn traffic(row: &mut Row, c: &Counters) {
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed).to_string();
    row.insert("scur", c.cur.load(Relaxed).to_string());
    row.insert("smax", c.max.load(Relaxed).to_string());
    row.insert("stot", get(&c.total));
    row.insert("wrew", get(&c.failed_rewrites));
    row.insert("eint", get(&c.internal_errors));
    row.insert("bin", get(&c.bytes_in));
    row.insert("bout", get(&c.bytes_out));
}

fn http_counts(row: &mut Row, c: &Counters) {
    for (i, col) in [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .iter()
    .enumerate()
    {
        row.insert(col, c.http_status[i].load(Relaxed).to_string());
    }
    row.insert("req_tot", c.http_reqs.load(Relaxed).to_string());
}

pub(super) fn frontend_row(state: &State, fe: &Frontend) -> Row {
    let mut row = Row::new();
    let c = &fe.counters;
    row.insert("pxname", fe.name.clone());
    row.insert("svname", "FRONTEND".into());
    traffic(&mut row, c);
    row.insert("slim", fe.slots.limit().to_string());
    row.insert("dreq", c.denied_req.load(Relaxed).to_string());
    row.insert("dresp", c.denied_resp.load(Relaxed).to_string());
    row.insert("intercepted", c.intercepted.load(Relaxed).to_string());
    row.insert("dcon", c.denied_conn.load(Relaxed).to_string());
    row.insert("dses", c.denied_sess.load(Relaxed).to_string());
    row.insert("ereq", c.req_errors.load(Relaxed).to_string());
    let status = if state.stopping.load(Relaxed) || super::api::is_shut_down(fe) {
        "STOP"
    } else if fe.is_paused() {
        "PAUSED"
    } else {
        "OPEN"
    };
    row.insert("status", status.into());
    common(&mut row, c, fe.id, 0, 0);
    row.insert("mode", fe.conf.mode.as_str().into());
    row.insert("conn_tot", c.connections.load(Relaxed).to_string());
    for (col, value) in [
        ("req_rate", c.request_rate.per_second()),
        ("req_rate_max", c.request_rate.max()),
        ("conn_rate", c.connection_rate.per_second()),
        ("conn_rate_max", c.connection_rate.max()),
    ] {
        row.insert(col, value.to_string());
    }
    // Every frontend counts its requests (none in TCP); HTTP ones their answers.
    row.insert("req_tot", c.http_reqs.load(Relaxed).to_string());
    if fe.conf.mode == Mode::Http {
        http_counts(&mut row, c);
    } else {
        row.remove("intercepted");
    }
    // `rate-limit sessions` (0: no limit).
    row.insert("rate_lim", fe.conf.rate_limit_sessions.to_string());
    features_never_used(&mut row, fe.conf.mode, RowKind::Frontend);
    if fe.conf.binds.iter().all(|b| b.tls.is_none()) {
        no_tls_sessions(&mut row);
    }
    for (col, value) in fe.h2.columns().into_iter().chain(fe.h1.columns(0)) {
        row.insert(col, value.to_string());
    }
    row
}

/// What a row stands for, as the columns HAProxy fills differ.
#[derive(Clone, Copy, PartialEq)]
enum RowKind {
    Frontend,
    Backend,
    Server,
}

/// The counters of what hapx never does, 0 in the rows where HAProxy 2.6 fills them (its
/// `stats_fill_{fe,be,sv}_stats` and stats modules): compression and caches (hapx refuses
/// `compression` and `cache`), HTTP/2 to servers (hapx speaks HTTP/1 to them; frontends'
/// h2 columns are counted, [`super::h2::Counters`], its protocol errors excepted). The backends'
/// aggregated statuses HAProxy computes for its exporter only: 0 in the CSV. The `-`
/// column marks where the stats modules' columns begin.
fn features_never_used(row: &mut Row, mode: Mode, kind: RowKind) {
    let zero = |row: &mut Row, cols: &[&'static str]| {
        for col in cols {
            row.insert(col, "0".into());
        }
    };
    row.insert("-", "-".into());
    if kind == RowKind::Server {
        return;
    }
    zero(row, &["comp_in", "comp_out", "comp_byp", "comp_rsp"]);
    zero(row, H2_COLUMNS);
    if mode == Mode::Http {
        zero(row, &["cache_lookups", "cache_hits"]);
    }
    if kind == RowKind::Backend {
        zero(
            row,
            &[
                "agg_server_status",
                "agg_server_check_status",
                "agg_check_status",
            ],
        );
    }
}

/// The HTTP/2 stats module's columns (frontends and backends).
const H2_COLUMNS: &[&str] = &[
    "h2_headers_rcvd",
    "h2_data_rcvd",
    "h2_settings_rcvd",
    "h2_rst_stream_rcvd",
    "h2_goaway_rcvd",
    "h2_detected_conn_protocol_errors",
    "h2_detected_strm_protocol_errors",
    "h2_rst_stream_resp",
    "h2_goaway_resp",
    "h2_open_connections",
    "h2_backend_open_streams",
    "h2_total_connections",
    "h2_backend_total_streams",
];

fn common(row: &mut Row, c: &Counters, iid: usize, sid: usize, kind: u8) {
    row.insert("pid", "1".into());
    row.insert("iid", iid.to_string());
    row.insert("sid", sid.to_string());
    row.insert("type", kind.to_string());
    row.insert("rate", c.session_rate.per_second().to_string());
    row.insert("rate_max", c.session_rate.max().to_string());
}

/// The columns backends and servers share: the last session, the mean times over the last
/// sessions and the aborts.
fn sessions(row: &mut Row, c: &Counters) {
    let last = c.last_session.load(Relaxed);
    let since = if last == 0 {
        "-1".to_string()
    } else {
        now_secs().saturating_sub(last).to_string()
    };
    row.insert("lastsess", since);
    for (col, col_max, mean) in [
        ("qtime", "qtime_max", &c.queue_ms),
        ("ctime", "ctime_max", &c.connect_ms),
        ("rtime", "rtime_max", &c.response_ms),
        ("ttime", "ttime_max", &c.total_ms),
    ] {
        row.insert(col, mean.mean().to_string());
        row.insert(col_max, mean.max().to_string());
    }
    row.insert("cli_abrt", c.client_aborts.load(Relaxed).to_string());
    row.insert("srv_abrt", c.server_aborts.load(Relaxed).to_string());
    row.insert("reuse", "0".into());
}

/// A backend's weight column: its usable active servers' weights, else its backups'
/// (also the total in `http-check send-state`'s header).
pub(super) fn backend_weight(be: &Backend) -> u32 {
    let usable =
        |backup: bool| (be.servers.iter()).filter(move |s| s.opts.backup == backup && s.usable());
    let total = |backup: bool| super::slowstart::total_column(be, usable(backup).map(|s| &**s));
    match total(false) {
        0 => total(true),
        active => active,
    }
}

/// `qcur` and `qmax` of queue `queue` (0: the backend's, i + 1: its server i's).
fn queue_columns(row: &mut Row, be: &Backend, queue: usize) {
    let (cur, max) = super::balance::queue_lengths(be)
        .get(queue)
        .copied()
        .unwrap_or_default();
    row.insert("qcur", cur.to_string());
    row.insert("qmax", max.to_string());
}

pub(super) fn server_row(be: &Backend, s: &Server) -> Row {
    let mut row = Row::new();
    let c = &s.counters;
    row.insert("pxname", be.name.clone());
    row.insert("svname", s.name.clone());
    let at = be.servers.iter().position(|x| std::ptr::eq(&**x, s));
    queue_columns(&mut row, be, at.map_or(usize::MAX, |i| i + 1));
    row.insert("eresp", c.resp_errors.load(Relaxed).to_string());
    row.insert("dresp", c.denied_resp.load(Relaxed).to_string());
    traffic(&mut row, c);
    row.insert(
        "slim",
        s.maxconn().map(|m| m.to_string()).unwrap_or_default(),
    );
    row.insert("econ", c.conn_errors.load(Relaxed).to_string());
    let qlimit = s.opts.maxqueue.map(|m| m.to_string());
    row.insert("qlimit", qlimit.unwrap_or_default());
    row.insert("wretr", c.retries.load(Relaxed).to_string());
    row.insert("wredis", c.redispatches.load(Relaxed).to_string());
    row.insert("status", s.status());
    // The operator's weight, also while in maintenance or draining (as HAProxy shows it),
    // in part during a slow start.
    let weight = super::slowstart::weight_column(be, s);
    row.insert("weight", weight.to_string());
    if let Some(percent) = super::slowstart::throttle(be, s) {
        row.insert("throttle", percent.to_string());
    }
    row.insert("act", u8::from(!s.opts.backup).to_string());
    row.insert("bck", u8::from(s.opts.backup).to_string());
    let since = now_secs().saturating_sub(s.last_change.load(Relaxed));
    row.insert("lastchg", since.to_string());
    if let Some(tracked) = super::track::tracked_name(be, s) {
        row.insert("tracked", tracked);
    }
    // Filled when the server whose checks decide this one (the end of its `track` chain,
    // else itself) observes its traffic, as HAProxy's `ref->observe`.
    let decider = super::track::checked(s);
    if decider.as_deref().unwrap_or(s).opts.observe.is_some() {
        row.insert("hanafail", s.hana_failures.load(Relaxed).to_string());
    }
    common(&mut row, c, be.id, s.id, 2);
    sessions(&mut row, c);
    row.insert("connect", c.total.load(Relaxed).to_string());
    row.insert("lbtot", s.lb_total.load(Relaxed).to_string());
    connection_columns(&mut row, s, be.mode);
    if s.checks_enabled() {
        row.insert("chkfail", s.check_failures.load(Relaxed).to_string());
        row.insert("chkdown", s.down_transitions.load(Relaxed).to_string());
        row.insert("downtime", s.downtime().to_string());
        // Maintenance pauses the checks: HAProxy then shows no check result.
        if !s.checks_paused() {
            let mut chk = s.check.lock().map(|c| c.clone()).unwrap_or_default();
            if chk.status.is_empty() {
                // No result yet: HAProxy's first status.
                chk.status = "INI".into();
            }
            check_columns(&mut row, &chk);
            if s.check_in_progress() {
                mark_in_progress(&mut row, "check_status");
            }
            row.insert("check_rise", s.opts.rise.to_string());
            row.insert("check_fall", s.opts.fall.to_string());
            row.insert("check_health", s.health.load(Relaxed).to_string());
        }
    }
    agent_columns(&mut row, s);
    let port = s.port().map(|p| p.to_string()).unwrap_or_default();
    row.insert(
        "addr",
        s.addr()
            .map(|ip| match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
                v4 => format!("{v4}:{port}"),
            })
            .unwrap_or_default(),
    );
    if let Some(cookie) = super::persist::server_cookie(be, s) {
        row.insert("cookie", cookie.into_owned());
    }
    row.insert("mode", be.mode.as_str().into());
    row.insert("iweight", s.opts.weight.to_string());
    row.insert("uweight", s.weight.load(Relaxed).to_string());
    if be.mode == Mode::Http {
        http_counts(&mut row, c);
    }
    features_never_used(&mut row, be.mode, RowKind::Server);
    if !s.opts.tls.ssl {
        no_tls_sessions(&mut row);
    }
    row
}

/// The SSL stats module's columns of a row whose traffic is never TLS: HAProxy's module
/// fills them in every row (0 there); hapx does not count TLS sessions per proxy or server,
/// so a row with TLS leaves them empty.
fn no_tls_sessions(row: &mut Row) {
    for col in ["ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"] {
        row.insert(col, "0".into());
    }
}

/// The last check's columns: `check_desc` describes the status, `last_chk` holds the detail
/// (the system's error, the response...).
fn check_columns(row: &mut Row, chk: &CheckResult) {
    let names = [
        "check_status",
        "check_code",
        "check_duration",
        "last_chk",
        "check_desc",
    ];
    result_columns(row, chk, names);
}

/// A server's agent columns (`agent_status` ... `agent_health`, `last_agt`), while it has
/// one enabled (its rise and fall are 1, as HAProxy's).
fn agent_columns(row: &mut Row, s: &Server) {
    if !s.agent.enabled() {
        return;
    }
    let probe = s.agent.probe();
    if !probe.result.status.is_empty() {
        let names = [
            "agent_status",
            "agent_code",
            "agent_duration",
            "last_agt",
            "agent_desc",
        ];
        result_columns(row, &probe.result, names);
        // Unlike a check's, HAProxy shows the agent's duration whatever its status: 0
        // before its first answer.
        let duration = probe.result.duration_ms.unwrap_or(0);
        row.insert("agent_duration", duration.to_string());
        if probe.in_progress {
            mark_in_progress(row, "agent_status");
        }
    }
    row.insert("agent_rise", "1".into());
    row.insert("agent_fall", "1".into());
    row.insert("agent_health", s.agent.health().to_string());
}

/// A check (or an agent) under way: HAProxy puts `* ` before the last result's status.
fn mark_in_progress(row: &mut Row, column: &'static str) {
    let status = row.get(column).cloned().unwrap_or_default();
    row.insert(column, format!("* {status}"));
}

/// A check's or an agent's result in its columns: status, code, duration, detail,
/// description.
fn result_columns(row: &mut Row, chk: &CheckResult, names: [&'static str; 5]) {
    let [status, code, duration, detail_column, description] = names;
    let described = check_status_description(&chk.status);
    let detail = chk
        .desc
        .strip_prefix(described)
        // The information as kept, a leading space included (HAProxy shows a tcp-check's
        // timeout as " at step N of tcp-check ...").
        .map(|rest| {
            rest.strip_prefix(": ")
                .unwrap_or(rest.trim_start_matches(':'))
        })
        .unwrap_or(&chk.desc);
    row.insert(status, chk.status.clone());
    // HAProxy keeps the code in a `short` and prints it as an unsigned int.
    let shown = chk.code.map(|c| (c as i16 as i32 as u32).to_string());
    row.insert(code, shown.unwrap_or_default());
    row.insert(duration, duration_field(chk));
    row.insert(detail_column, detail.to_string());
    row.insert(description, described.to_string());
}

/// A check result's duration as HAProxy keeps it (a `long` in milliseconds), shown from
/// `CHECKED` on in its order of statuses (None before). A result that was not timed (`HANA`,
/// set by the traffic's analysis) has HAProxy's -1 there.
pub(super) fn check_duration_ms(chk: &CheckResult) -> Option<i64> {
    const CHECKED: u8 = 3;
    if chk.status.is_empty() || check_status_code(&chk.status) < CHECKED {
        return None;
    }
    Some(chk.duration_ms.map_or(-1, |d| d as i64))
}

/// [`check_duration_ms`] as the CSV shows it: an unsigned 64-bit number, an untimed
/// result's -1 as 18446744073709551615 (and so `in ...ms` on the page).
fn duration_field(chk: &CheckResult) -> String {
    check_duration_ms(chk).map_or_else(String::new, |d| (d as u64).to_string())
}

/// HAProxy's check statuses: (short name, number in `show servers state`, description).
pub(super) const CHECK_STATUSES: &[(&str, u8, &str)] = &[
    ("UNK", 0, "Unknown"),
    ("INI", 1, "Initializing"),
    ("CHECKED", 3, "No status change"),
    ("HANA", 4, "Health analyze"),
    ("SOCKERR", 5, "Socket error"),
    ("L4OK", 6, "Layer4 check passed"),
    ("L4TOUT", 7, "Layer4 timeout"),
    ("L4CON", 8, "Layer4 connection problem"),
    ("L6OK", 9, "Layer6 check passed"),
    ("L6TOUT", 10, "Layer6 timeout"),
    ("L6RSP", 11, "Layer6 invalid response"),
    ("L7TOUT", 12, "Layer7 timeout"),
    ("L7RSP", 13, "Layer7 invalid response"),
    ("L7OK", 15, "Layer7 check passed"),
    ("L7OKC", 16, "Layer7 check conditionally passed"),
    ("L7STS", 17, "Layer7 wrong status"),
    ("PROCERR", 18, "External check error"),
    ("PROCTOUT", 19, "External check timeout"),
    ("PROCOK", 20, "External check passed"),
];

/// A check status's number; no check yet: INI.
fn check_status_code(status: &str) -> u8 {
    CHECK_STATUSES
        .iter()
        .find(|(name, ..)| *name == status)
        .map_or(1, |(_, code, _)| *code)
}

pub(super) fn check_status_description(status: &str) -> &'static str {
    CHECK_STATUSES
        .iter()
        .find(|(name, ..)| *name == status)
        .map_or("", |(.., desc)| desc)
}

/// A backend's `status`: UP while a server takes new connections, and always without
/// servers (HAProxy's `tot_weight > 0 || !px->srv`).
pub(super) fn backend_status(be: &Backend) -> &'static str {
    if be.servers.is_empty() || be.is_up() {
        "UP"
    } else {
        "DOWN"
    }
}

pub(super) fn backend_row(state: &State, be: &Backend) -> Row {
    let mut row = Row::new();
    let c = &be.counters;
    row.insert("pxname", be.name.clone());
    row.insert("svname", "BACKEND".into());
    queue_columns(&mut row, be, 0);
    // Requests its own rules denied (HAProxy counts them in the stream's backend).
    row.insert("dreq", c.denied_req.load(Relaxed).to_string());
    row.insert("eresp", c.resp_errors.load(Relaxed).to_string());
    row.insert("dresp", c.denied_resp.load(Relaxed).to_string());
    traffic(&mut row, c);
    // HAProxy shows a backend's `fullconn` as its limit (a backend has no `maxconn`).
    row.insert(
        "slim",
        crate::limits::fullconn(&state.config, &be.name, state.max_conns).to_string(),
    );
    row.insert("econ", c.conn_errors.load(Relaxed).to_string());
    row.insert("wretr", c.retries.load(Relaxed).to_string());
    row.insert("wredis", c.redispatches.load(Relaxed).to_string());
    row.insert("status", backend_status(be).into());
    let usable = |backup: bool| {
        be.servers
            .iter()
            .filter(move |s| s.opts.backup == backup && s.usable())
    };
    row.insert("weight", backend_weight(be).to_string());
    // Servers taking new sessions: neither down, in maintenance nor draining.
    let taking = |backup: bool| usable(backup).filter(|s| s.lb_weight() > 0);
    row.insert("act", taking(false).count().to_string());
    row.insert("bck", taking(true).count().to_string());
    let uweight: u32 = taking(false).map(|s| s.weight.load(Relaxed)).sum();
    row.insert("uweight", uweight.to_string());
    row.insert("chkdown", be.down_transitions.load(Relaxed).to_string());
    row.insert(
        "lastchg",
        now_secs()
            .saturating_sub(be.last_change.load(Relaxed))
            .to_string(),
    );
    // A backend without servers is never down: HAProxy leaves its downtime empty.
    if !be.servers.is_empty() {
        row.insert("downtime", be.downtime().to_string());
    }
    common(&mut row, c, be.id, 0, 1);
    sessions(&mut row, c);
    let lbtot: u64 = be.servers.iter().map(|s| s.lb_total.load(Relaxed)).sum();
    row.insert("lbtot", lbtot.to_string());
    // In HTTP a request opens a connection or reuses one (`runtime::pool`).
    let (connects, reuses) = be.servers.iter().fold((0, 0), |(c, r), s| match be.mode {
        Mode::Http => (
            c + s.idle.connects.load(Relaxed),
            r + s.idle.reuses.load(Relaxed),
        ),
        Mode::Tcp => (c + s.counters.total.load(Relaxed), r),
    });
    row.insert("connect", connects.to_string());
    row.insert("reuse", reuses.to_string());
    if let Some(c) = &be.conf.cookie {
        row.insert("cookie", c.name.clone());
    }
    row.insert("mode", be.mode.as_str().into());
    row.insert("algo", be.balance.as_str().into());
    if be.mode == Mode::Http {
        http_counts(&mut row, c);
    }
    features_never_used(&mut row, be.mode, RowKind::Backend);
    if be.servers.iter().all(|s| !s.opts.tls.ssl) {
        no_tls_sessions(&mut row);
    }
    // The servers' pools keep sockets of HTTP/1 connections, open all the same.
    let pooled = (be.servers.iter())
        .map(|s| s.idle.counts())
        .map(|pool| (pool.idle + pool.safe) as u64)
        .sum();
    for (col, value) in be.h1.columns(pooled) {
        row.insert(col, value.to_string());
    }
    row
}

/// A server's connection columns: connections opened and reused by HTTP requests, idle ones
/// (those that served one request, and the "safe" ones that served more), those in use (a
/// check's while it connects, as HAProxy's) and the estimated need the pool keeps (see `runtime::pool`). As in HAProxy,
/// a TCP session's connection is in use only while it opens.
fn connection_columns(row: &mut Row, s: &Server, mode: Mode) {
    let mut pool = s.idle.counts();
    if s.may_speak_h2() {
        // HTTP/2 connections with no stream are in HAProxy's safe list.
        pool.safe += super::h2_server::idle_connections(s);
    }
    let mut used = pool.checks;
    if mode == Mode::Http {
        used += super::pool::in_use(s);
        row.insert("connect", s.idle.connects.load(Relaxed).to_string());
        row.insert("reuse", s.idle.reuses.load(Relaxed).to_string());
    }
    row.insert("idle_conn_cur", pool.idle.to_string());
    row.insert("safe_conn_cur", pool.safe.to_string());
    row.insert("used_conn_cur", used.to_string());
    row.insert("need_conn_est", pool.need.to_string());
    row.insert("srv_icur", (pool.idle + pool.safe).to_string());
}

/// One `show stat` column of a backend's row.
pub(super) fn backend_column(state: &State, be: &Backend, column: &str) -> String {
    backend_row(state, be).remove(column).unwrap_or_default()
}

/// One `show stat` column of a server's row.
pub(super) fn server_column(be: &Backend, s: &Server, column: &str) -> String {
    server_row(be, s).remove(column).unwrap_or_default()
}

/// Every row in HAProxy's order: per proxy, frontend, servers, backend; a `disabled` proxy
/// has none, as in HAProxy.
fn rows(state: &State) -> Vec<Row> {
    let mut out = Vec::new();
    for p in state.config.proxies.iter().filter(|p| !p.disabled) {
        if let Some(fe) = state.frontends.iter().find(|f| f.name == p.name) {
            out.push(frontend_row(state, fe));
        }
        if let Some(be) = state.backends.iter().find(|b| b.name == p.name) {
            out.extend(be.servers.iter().map(|s| server_row(be, s)));
            out.push(backend_row(state, be));
        }
    }
    out
}

/// The rows `show stat <iid> <type> <sid>` keeps, as HAProxy 2.6 reads its words: the
/// proxy by name or number (-1: all), a mask of object types (1 frontends, 2 backends,
/// 4 servers; -1: all), a server number (-1: all; frontend and backend rows are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFilter {
    proxy: i64,
    types: i64,
    server: i64,
}

impl StatFilter {
    /// Every row.
    pub const ALL: StatFilter = StatFilter {
        proxy: -1,
        types: -1,
        server: -1,
    };

    /// Reads `show stat`'s arguments: the filter and the words after it, or HAProxy's
    /// answer when the proxy is none (a name no proxy has that does not begin with a number).
    pub fn read<'a>(state: &State, args: &'a [&'a str]) -> Result<(Self, &'a [&'a str]), String> {
        let [proxy, types, server, rest @ ..] = args else {
            return Ok((Self::ALL, args));
        };
        let proxy = match state.config.proxies.iter().position(|p| p.name == *proxy) {
            Some(found) => proxy_id(state, found),
            None => atoi(proxy),
        };
        if proxy == 0 {
            return Err("No such proxy.\n".into());
        }
        let filter = StatFilter {
            proxy,
            types: atoi(types),
            server: atoi(server),
        };
        Ok((filter, rest))
    }

    fn keeps(&self, row: &Row) -> bool {
        let number = |column: &str| row.get(column).and_then(|v| v.parse::<i64>().ok());
        let (Some(iid), Some(kind), Some(sid)) = (number("iid"), number("type"), number("sid"))
        else {
            return true;
        };
        let is_server = kind == 2;
        (self.proxy == -1 || self.proxy == iid)
            && self.types & (1 << kind) != 0
            && (!is_server || self.server == -1 || self.server == sid)
    }
}

/// How `show stat` prints its rows: the words after its filter, as HAProxy reads them in
/// any order (the last of `typed` and `json` wins; `desc` describes the typed fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatOutput {
    pub format: StatFormat,
    pub described: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatFormat {
    Csv,
    Typed,
    Json,
}

impl StatOutput {
    pub fn read(words: &[&str]) -> StatOutput {
        let mut output = StatOutput {
            format: StatFormat::Csv,
            described: false,
        };
        for word in words {
            match *word {
                "typed" => output.format = StatFormat::Typed,
                "json" => output.format = StatFormat::Json,
                "desc" => output.described = true,
                _ => {}
            }
        }
        output
    }
}

/// The `iid` HAProxy gives the proxy at `index` of the configuration (its rows' `iid`).
fn proxy_id(state: &State, index: usize) -> i64 {
    let name = &state.config.proxies[index].name;
    let fe = state
        .frontends
        .iter()
        .find(|f| &f.name == name)
        .map(|f| f.id);
    let be = state
        .backends
        .iter()
        .find(|b| &b.name == name)
        .map(|b| b.id);
    fe.or(be).map_or(0, |id| id as i64)
}

/// C's `atoi`: the leading decimal number, 0 when there is none.
fn atoi(text: &str) -> i64 {
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if negative { -value } else { value }
}

/// `show stat` / `;csv`: the header and one line per row (the runtime API adds the empty line
/// ending every answer).
pub fn csv(state: &State) -> String {
    csv_filtered(state, StatFilter::ALL)
}

/// [`csv`] of the rows `filter` keeps.
pub fn csv_filtered(state: &State, filter: StatFilter) -> String {
    csv_of(rows(state).into_iter().filter(|row| filter.keeps(row)))
}

/// The stats page's `;csv` export: [`csv`], or with `;up` (`only_up`) as HAProxy's page
/// gives it then: no server down or in maintenance, and each backend's status followed by
/// how many of its servers are neither, out of all (`UP (1/3)`).
pub fn csv_page(state: &State, only_up: bool) -> String {
    if !only_up {
        return csv(state);
    }
    let mut rows = rows(state);
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for row in rows
        .iter()
        .filter(|r| r.get("type").is_some_and(|t| t == "2"))
    {
        let count = counts.entry(row["pxname"].clone()).or_default();
        count.0 += usize::from(!super::stats_html::is_down(row));
        count.1 += 1;
    }
    rows.retain(|r| {
        !(r.get("type").is_some_and(|t| t == "2") && super::stats_html::hidden_when_up_only(r))
    });
    for row in rows
        .iter_mut()
        .filter(|r| r.get("type").is_some_and(|t| t == "1"))
    {
        let (up, all) = counts.get(&row["pxname"]).copied().unwrap_or_default();
        if let Some(status) = row.get_mut("status") {
            status.push_str(&format!(" ({up}/{all})"));
        }
    }
    csv_of(rows.into_iter())
}

/// The CSV header and one line per row.
fn csv_of(rows: impl Iterator<Item = Row>) -> String {
    let columns: Vec<&str> = CSV_COLUMNS.trim_start_matches("# ").split(',').collect();
    let mut out = String::from(CSV_COLUMNS);
    out.push('\n');
    for row in rows {
        for col in &columns {
            if !col.is_empty() {
                push_csv_field(&mut out, row.get(col).map_or("", |v| v.as_str()));
                out.push(',');
            }
        }
        out.push('\n');
    }
    out
}

/// One CSV field as HAProxy's `csv_enc(str, 1, 1)` writes it: quoted only when it holds a
/// comma, a double quote or a line break (a check's info does: "Detected 2 consecutive
/// errors, last one was: ..."), inner quotes doubled, kept on one line (a line feed becomes a
/// space, a carriage return is dropped), so that every row has the header's fields.
fn push_csv_field(out: &mut String, value: &str) {
    if !value.contains([',', '"', '\r', '\n']) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\n' => out.push(' '),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn uptime(secs: u64) -> String {
    format!(
        "{}d {}h{:02}m{:02}s",
        secs / 86400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// The sessions alive that are not a frontend's connection: CLI and peers sessions, which
/// HAProxy counts in its jobs but not in `CurrConns` (their listeners are unlimited).
static INNER_ALIVE: AtomicUsize = AtomicUsize::new(0);
/// Those sessions begun: each is a session (`CumConns`) and a stream (`CumReq`) in HAProxy.
static INNER_BEGUN: AtomicU64 = AtomicU64::new(0);

/// A CLI or peers session counted in `show info` while it lives (see [`INNER_ALIVE`]).
pub(super) struct InnerSession(());

impl InnerSession {
    pub(super) fn begin() -> InnerSession {
        INNER_ALIVE.fetch_add(1, Relaxed);
        INNER_BEGUN.fetch_add(1, Relaxed);
        InnerSession(())
    }
}

impl Drop for InnerSession {
    fn drop(&mut self) {
        INNER_ALIVE.fetch_sub(1, Relaxed);
    }
}

/// The frontends' streams: HAProxy begins one per HTTP request (none for a connection
/// closed before its first), and one per TCP session.
fn frontend_streams(state: &State) -> u64 {
    let streams = |f: &std::sync::Arc<Frontend>| match f.conf.mode {
        Mode::Tcp => f.counters.total.load(Relaxed),
        _ => f.counters.http_reqs.load(Relaxed),
    };
    state.frontends.iter().map(streams).sum()
}

/// Process-wide figures `show info` and the exporter share.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcessInfo {
    pub threads: usize,
    pub ulimit: u64,
    /// HAProxy's listeners: the frontends' binds, the `stats socket`s and the peers
    /// sections' local members.
    pub listeners: usize,
    /// HAProxy's jobs: the listeners and the sessions alive (frontends', CLI, peers).
    pub jobs: usize,
    /// HAProxy's `totalconn` (`CumConns`): every session begun, of frontends, CLI, peers.
    pub connections: u64,
    /// HAProxy's `req_count` (`CumReq`): every stream begun, one per HTTP request and per
    /// TCP session of the frontends, one per CLI and peer session.
    pub requests: u64,
    pub pipes_used: u64,
    pub pipes_free: usize,
    pub spliced_bytes_out: u64,
}

pub(super) fn process_info(state: &State) -> ProcessInfo {
    let (pipes_used, pipes_free) = super::forward::pipe_counts();
    let binds: usize = state.frontends.iter().map(|f| f.conf.binds.len()).sum();
    let listeners =
        binds + state.config.global.stats_sockets.len() + super::peers::listener_count(state);
    let (inner_alive, inner_begun) = (INNER_ALIVE.load(Relaxed), INNER_BEGUN.load(Relaxed));
    ProcessInfo {
        threads: super::threads_for(&state.config.global),
        ulimit: crate::limits::reported(state.config.global.ulimit_n, state.max_sock),
        listeners,
        jobs: state.cur_conns.load(Relaxed) + listeners + inner_alive,
        connections: state.total_conns.load(Relaxed) + inner_begun,
        requests: frontend_streams(state) + inner_begun,
        pipes_used,
        pipes_free,
        spliced_bytes_out: if state.splice {
            state.bytes_out.load(Relaxed)
        } else {
            0
        },
    }
}

/// HAProxy's `Idle_pct`: the share of the threads' time not spent working, over the time
/// since the previous reading (at least 100 ms ago; the process's life at the first). hapx
/// reads it from the process's CPU time, as its threads only use CPU while they work.
pub(super) fn idle_pct(state: &State, threads: usize) -> u32 {
    static LAST: Mutex<Option<(Instant, Duration)>> = Mutex::new(None);
    let now = Instant::now();
    let cpu = process_cpu_time();
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    let (since, used_before) = match *last {
        Some((at, used)) if now.duration_since(at) >= Duration::from_millis(100) => (at, used),
        Some(_) => return idle_share(state.started, now, cpu, threads),
        None => (state.started, Duration::ZERO),
    };
    *last = Some((now, cpu));
    idle_share(since, now, cpu.saturating_sub(used_before), threads)
}

/// The idle percentage of `threads` that used `busy` CPU time from `since` to `now`.
fn idle_share(since: Instant, now: Instant, busy: Duration, threads: usize) -> u32 {
    let wall = now.duration_since(since).as_secs_f64() * threads.max(1) as f64;
    if wall <= 0.0 {
        return 100;
    }
    let busy = (busy.as_secs_f64() / wall * 100.0).round().min(100.0);
    100 - busy as u32
}

/// The CPU time (user and system) the process used so far.
fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the whole struct on success; zeroed is a valid rusage.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// HAProxy's `SslFrontendSessionReuse_pct`: the share of the frontends' TLS sessions of the
/// last second that resumed one (no keys computed), rounded as HAProxy rounds it.
fn ssl_reuse_pct(tls: &super::tls::TlsCounts) -> u32 {
    let (sessions, keys) = (
        tls.frontend_sessions.per_second(),
        tls.frontend_keys.per_second(),
    );
    if keys >= sessions {
        return 0;
    }
    100 - (100 * keys + (sessions - 1) / 2) / sessions
}

/// `show info`: HAProxy's `Name: value` lines.
pub fn info(state: &State) -> String {
    let mut out = String::new();
    for (k, v) in info_lines(state) {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

/// `show info typed` (HAProxy's typed form of [`info`]).
pub fn info_typed(state: &State) -> String {
    typed::info(&info_lines(state))
}

/// `show stat json` (HAProxy's JSON form of [`csv`]).
pub fn stat_json(state: &State, filter: StatFilter) -> String {
    let rows: Vec<Row> = rows(state)
        .into_iter()
        .filter(|row| filter.keeps(row))
        .collect();
    typed::stat_json(&rows)
}

/// `show info json`.
pub fn info_json(state: &State) -> String {
    typed::info_json(&info_lines(state))
}

/// `show stat typed` (HAProxy's typed form of [`csv`]).
pub fn stat_typed(state: &State, filter: StatFilter, described: bool) -> String {
    let rows: Vec<Row> = rows(state)
        .into_iter()
        .filter(|row| filter.keeps(row))
        .collect();
    typed::stat(&rows, described)
}

/// `show info`'s lines: (name, value).
fn info_lines(state: &State) -> Vec<(&'static str, String)> {
    let up = state.started.elapsed().as_secs();
    let ProcessInfo {
        threads,
        ulimit,
        listeners,
        jobs,
        connections: cum_conns,
        requests: cum_req,
        pipes_used,
        pipes_free,
        spliced_bytes_out,
    } = process_info(state);
    let (active_peers, connected_peers) = super::peers::session_counts();
    let (run_queue, tasks) = super::meter::tasks();
    let tls = super::tls::counts();
    let node = state.config.global.node.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default()
    });
    let mut lines: Vec<(&'static str, String)> = vec![
        ("Name", "hapx-proxy".into()),
        ("Version", env!("CARGO_PKG_VERSION").into()),
        ("Release_date", "".into()),
        ("Nbthread", threads.to_string()),
        ("Nbproc", "1".into()),
        ("Process_num", "1".into()),
        ("Pid", state.pid.to_string()),
        ("Uptime", uptime(up)),
        ("Uptime_sec", up.to_string()),
        ("Memmax_MB", "0".into()),
        ("PoolAlloc_MB", "0".into()),
        ("PoolUsed_MB", "0".into()),
        ("PoolFailed", "0".into()),
        ("Ulimit-n", ulimit.to_string()),
        ("Maxsock", state.max_sock.to_string()),
        ("Maxconn", state.global_slots.limit().to_string()),
        ("Hard_maxconn", state.max_conns.to_string()),
        ("CurrConns", state.cur_conns.load(Relaxed).to_string()),
        ("CumConns", cum_conns.to_string()),
        ("CumReq", cum_req.to_string()),
        // `maxsslconn` is not supported: no limit, as HAProxy's without it.
        ("MaxSslConns", "0".into()),
        ("CurrSslConns", tls.current.load(Relaxed).to_string()),
        ("CumSslConns", tls.total.load(Relaxed).to_string()),
        ("Maxpipes", state.max_pipes.to_string()),
        ("PipesUsed", pipes_used.to_string()),
        ("PipesFree", pipes_free.to_string()),
        // Every accepted connection is a session: the two rates are one here.
        ("ConnRate", state.conn_rate.per_second().to_string()),
        (
            "ConnRateLimit",
            state.rate_limits.connections.load(Relaxed).to_string(),
        ),
        ("MaxConnRate", state.conn_rate.max().to_string()),
        ("SessRate", state.conn_rate.per_second().to_string()),
        (
            "SessRateLimit",
            state.rate_limits.sessions.load(Relaxed).to_string(),
        ),
        ("MaxSessRate", state.conn_rate.max().to_string()),
        ("SslRate", tls.frontend_sessions.per_second().to_string()),
        // `maxsslrate` is not supported: no limit.
        ("SslRateLimit", "0".into()),
        ("MaxSslRate", tls.frontend_sessions.max().to_string()),
        (
            "SslFrontendKeyRate",
            tls.frontend_keys.per_second().to_string(),
        ),
        ("SslFrontendMaxKeyRate", tls.frontend_keys.max().to_string()),
        (
            "SslFrontendSessionReuse_pct",
            ssl_reuse_pct(tls).to_string(),
        ),
        (
            "SslBackendKeyRate",
            tls.backend_keys.per_second().to_string(),
        ),
        ("SslBackendMaxKeyRate", tls.backend_keys.max().to_string()),
        // rustls resumes sessions by tickets or its own cache, not HAProxy's shared one.
        ("SslCacheLookups", "0".into()),
        ("SslCacheMisses", "0".into()),
        // No compression in hapx: HAProxy's counts without it.
        ("CompressBpsIn", "0".into()),
        ("CompressBpsOut", "0".into()),
        ("CompressBpsRateLim", "0".into()),
        ("Tasks", tasks.to_string()),
        ("Run_queue", run_queue.to_string()),
        ("Idle_pct", idle_pct(state, threads).to_string()),
        ("node", node),
    ];
    // HAProxy shows the line only when a description is set.
    if let Some(description) = &state.config.global.description {
        lines.push(("description", description.clone()));
    }
    lines.extend([
        (
            "Stopping",
            u8::from(state.stopping.load(Relaxed)).to_string(),
        ),
        ("Jobs", jobs.to_string()),
        ("Unstoppable Jobs", "0".into()),
        ("Listeners", listeners.to_string()),
        ("ActivePeers", active_peers.to_string()),
        ("ConnectedPeers", connected_peers.to_string()),
        ("DroppedLogs", "0".into()),
        ("BusyPolling", "0".into()),
        (
            "FailedResolutions",
            state.failed_resolutions.load(Relaxed).to_string(),
        ),
        ("TotalBytesOut", state.bytes_out.load(Relaxed).to_string()),
        ("TotalSplicdedBytesOut", spliced_bytes_out.to_string()),
        ("BytesOutRate", super::meter::sent_per_second().to_string()),
        ("DebugCommandsIssued", "0".into()),
        ("CumRecvLogs", "0".into()),
        ("Build info", env!("CARGO_PKG_VERSION").into()),
        // As the `_MB` lines: no `-m` limit, no memory pools.
        ("Memmax_bytes", "0".into()),
        ("PoolAlloc_bytes", "0".into()),
        ("PoolUsed_bytes", "0".into()),
        ("Start_time_sec", state.start_secs.to_string()),
        ("Tainted", "0".into()),
    ]);
    lines
}

/// `show servers state [backend]`: HAProxy's version-1 format.
pub fn servers_state(state: &State, only: Option<&str>) -> Result<String, String> {
    if let Some(name) = only {
        if state.backend(name).is_none() {
            return Err("Can't find backend.\n".into());
        }
    }
    let mut out = String::from(
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n",
    );
    for be in state
        .backends
        .iter()
        .filter(|b| only.is_none_or(|n| n == b.name))
    {
        for s in &be.servers {
            let op = match (s.usable(), s.is_up()) {
                // HAProxy's SRV_ST_STOPPING.
                (true, _) if s.is_stopping() => 3,
                // SRV_ST_STARTING: in its slow start.
                (true, _) if super::slowstart::warming(s) => 1,
                (true, _) => 2,
                (false, true) => 0,
                (false, false) => 0,
            };
            let admin = match s.admin() {
                Admin::Ready => 0,
                Admin::Maint => 1,
                Admin::Drain => 8,
            } | if s.opts.disabled {
                // Maintenance from the configuration (CMAINT): HAProxy keeps the flag when
                // the server leaves it.
                4
            } else {
                0
            } | if s.has_admin_flag(AdminFlag::Drain) {
                // A forced drain, kept under maintenance too.
                8
            } else {
                0
            } | if s.in_inherited_maint() {
                // Maintenance of the server it tracks (IMAINT).
                2
            } else {
                0
            } | if s.in_inherited_drain() {
                // Drain of the server it tracks (IDRAIN).
                16
            } else {
                0
            } | if s.addr().is_none() {
                // Maintenance for want of an address (RMAINT).
                32
            } else {
                0
            } | if s.shows_fqdn_set_by_cli() {
                // Its name set from the CLI (HMAINT).
                64
            } else {
                0
            };
            // HAProxy's check state flags: in progress 1, configured 2, enabled 4, paused
            // (maintenance) 8.
            let check_state = if s.opts.check {
                u8::from(s.check_in_progress())
                    | 2
                    | (4 * u8::from(s.checks_enabled()))
                    | (8 * u8::from(s.checks_paused()))
            } else if s.opts.disabled {
                // `disabled` pauses even a check not configured, and nothing resumes it
                // (HAProxy resumes only enabled checks when maintenance ends).
                8
            } else {
                0
            };
            let chk = s.check.lock().map(|c| c.status.clone()).unwrap_or_default();
            let status = check_status_code(&chk);
            // The last check's result: unknown 0 (none yet, or a check under way: HAProxy
            // forgets it as the next one starts), failed 2, passed 3, conditionally 4.
            let result = match (status, chk.as_str()) {
                (1, _) => 0,
                _ if s.check_in_progress() => 0,
                (_, "L7OKC") => 4,
                (_, "L4OK" | "L6OK" | "L7OK" | "PROCOK") => 3,
                _ => 2,
            };
            let host = s.host();
            let fqdn = if host.parse::<std::net::IpAddr>().is_ok() {
                "-".to_string()
            } else {
                host
            };
            let _ = writeln!(
                out,
                "{} {} {} {} {} {op} {admin} {} {} {} {} {result} {} {check_state} {} 0 0 {fqdn} {} - 0 {} - {} {}",
                be.id,
                be.name,
                s.id,
                s.name,
                s.addr().map_or("-".to_string(), |a| a.to_string()),
                s.weight.load(Relaxed),
                s.opts.weight,
                now_secs().saturating_sub(s.last_change.load(Relaxed)),
                status,
                s.health.load(Relaxed),
                s.agent.state_flags(),
                s.service_port().number(),
                s.check_port().unwrap_or(0),
                s.agent.addr().map_or("-".into(), |a| a.to_string()),
                // The server line's `port` sets the agent's port too; `check-port` does not.
                s.agent.port().unwrap_or(0),
            );
        }
    }
    Ok(out)
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::{Row, StatFilter, atoi, push_csv_field};

    #[test]
    fn atoi_reads_the_leading_number_as_c_does() {
        assert_eq!(atoi("-1"), -1);
        assert_eq!(atoi("3x"), 3);
        assert_eq!(atoi("+4"), 4);
        assert_eq!(atoi("x3"), 0);
        assert_eq!(atoi(""), 0);
    }

    #[test]
    fn a_filter_keeps_proxy_rows_whatever_the_server_asked() {
        let row = |kind: &str, sid: &str| -> Row {
            [("iid", "3"), ("type", kind), ("sid", sid)]
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect()
        };
        let filter = StatFilter {
            proxy: 3,
            types: 6,
            server: 2,
        };
        assert!(filter.keeps(&row("1", "0")));
        assert!(filter.keeps(&row("2", "2")));
        assert!(!filter.keeps(&row("2", "1")));
        assert!(!filter.keeps(&row("0", "0")));
        assert!(!StatFilter { proxy: 4, ..filter }.keeps(&row("1", "0")));
    }

    fn field(value: &str) -> String {
        let mut out = String::new();
        push_csv_field(&mut out, value);
        out
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(field("L7OK"), "L7OK");
        assert_eq!(field(""), "");
        assert_eq!(
            field("Detected 2 consecutive errors, last one was: Wrong http response"),
            "\"Detected 2 consecutive errors, last one was: Wrong http response\""
        );
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\r\nlines"), "\"two lines\"");
    }
}
