//! `show stat typed` and `show info typed`: HAProxy's typed output, one field a line with
//! its position, name, process, tags (origin, nature, scope) and type, e.g.
//! `S.3.1.4.scur.1:MGP:u32:0`. The tags and types are HAProxy 2.6's, per field and, where
//! they differ, per kind of row (a backend's `act` is a metric, a server's a status).
//! With `desc`, each stat line ends with the field's description in quotes.

use std::fmt::Write as _;

use super::{CSV_COLUMNS, Row, push_csv_field};

/// The kind of a `show stat` row, by its `type` column, as the typed output's first letter.
fn kind_letter(row: &Row) -> Option<char> {
    match row.get("type").map(String::as_str) {
        Some("0") => Some('F'),
        Some("1") => Some('B'),
        Some("2") => Some('S'),
        Some("3") => Some('L'),
        _ => None,
    }
}

/// A stat field's tags and type in a row of kind `kind` (HAProxy's `mkf_*` in its fill
/// functions); None for a field HAProxy never fills.
fn stat_meta(kind: char, column: &str) -> Option<&'static str> {
    let meta = match (kind, column) {
        ('S', "act" | "bck") => "SGP:u32",
        ('B', "act" | "bck" | "rate" | "rate_max") => "MGP:u32",
        (_, "pxname" | "svname") => "KNS:str",
        (_, "qcur" | "scur" | "srv_icur" | "idle_conn_cur" | "safe_conn_cur") => "MGP:u32",
        (_, "used_conn_cur" | "need_conn_est") => "MGP:u32",
        (_, "agg_server_status" | "agg_server_check_status" | "agg_check_status") => "MGP:u32",
        (_, "qmax" | "smax" | "rate_max" | "req_rate_max" | "conn_rate_max") => "MMP:u32",
        (_, "qtime_max" | "ctime_max" | "rtime_max" | "ttime_max") => "MMP:u32",
        (_, "slim" | "rate_lim" | "src_ilim") => "CLP:u32",
        (_, "stot" | "bin" | "bout" | "dreq" | "dresp" | "ereq" | "econ" | "eresp") => "MCP:u64",
        (_, "wretr" | "wredis" | "chkfail" | "chkdown" | "lbtot" | "hanafail") => "MCP:u64",
        (_, "hrsp_1xx" | "hrsp_2xx" | "hrsp_3xx" | "hrsp_4xx" | "hrsp_5xx") => "MCP:u64",
        (_, "hrsp_other" | "req_tot" | "cli_abrt" | "srv_abrt" | "comp_in") => "MCP:u64",
        (_, "comp_out" | "comp_byp" | "comp_rsp" | "conn_tot" | "intercepted") => "MCP:u64",
        (_, "dcon" | "dses" | "wrew" | "connect" | "reuse" | "cache_lookups") => "MCP:u64",
        (_, "cache_hits" | "eint" | "ssl_sess" | "ssl_reused_sess") => "MCP:u64",
        (_, "ssl_failed_handshake") => "MCP:u64",
        (_, "status") => "SGP:str",
        (_, "weight" | "uweight" | "qtime" | "ctime" | "rtime" | "ttime" | "throttle") => "MaP:u32",
        (_, "lastchg") => "MAP:u32",
        (_, "downtime") => "MCP:u32",
        (_, "qlimit") => "CGS:u32",
        (_, "iid" | "sid") => "KGS:u32",
        (_, "pid") => "KGP:u32",
        (_, "tracked" | "cookie") => "CNS:str",
        (_, "type") => "CGS:u32",
        (_, "check_rise" | "check_fall" | "check_health") => "CGS:u32",
        (_, "agent_rise" | "agent_fall" | "agent_health") => "CGS:u32",
        (_, "addr" | "mode" | "algo") => "CGS:str",
        (_, "rate" | "req_rate" | "conn_rate") => "MRP:u32",
        (_, "check_status" | "last_chk" | "last_agt" | "agent_status") => "MOP:str",
        (_, "check_desc" | "agent_desc") => "MOP:str",
        (_, "check_code" | "agent_code") => "MOP:u32",
        (_, "check_duration" | "agent_duration") => "MDP:u64",
        (_, "lastsess") => "MAP:s32",
        (_, name) if name.starts_with("h2_") || name.starts_with("h1_") => {
            if name.ends_with("open_connections") || name.ends_with("open_streams") {
                "MGP:u64"
            } else {
                "MCP:u64"
            }
        }
        _ => return None,
    };
    Some(meta)
}

/// One field HAProxy prints of a `show stat` row: its position, name, tags and type
/// (`MGP:u32`) and value.
struct StatField<'r> {
    position: usize,
    column: &'r str,
    meta: &'static str,
    value: &'r str,
}

/// The fields of `row` (of kind `kind`) HAProxy prints, in its order.
fn stat_fields(kind: char, row: &Row) -> impl Iterator<Item = StatField<'_>> {
    // HAProxy's positions count its fields, not the CSV's `-` between the proxies' fields
    // and the modules'.
    let fields = CSV_COLUMNS
        .trim_start_matches("# ")
        .split(',')
        .filter(|c| !c.is_empty() && *c != "-");
    fields.enumerate().filter_map(move |(position, column)| {
        let value = row.get(column)?;
        let meta = stat_meta(kind, column)?;
        // A string set empty is printed (a check's `last_chk` without detail), an empty
        // number is a field not filled.
        (!value.is_empty() || meta.ends_with(":str")).then_some(StatField {
            position,
            column,
            meta,
            value,
        })
    })
}

/// A row's kind letter and its `iid` and `sid`.
fn row_ids(row: &Row) -> Option<(char, &str, &str)> {
    let id = |column| row.get(column).map_or("0", String::as_str);
    Some((kind_letter(row)?, id("iid"), id("sid")))
}

/// A stat field's description, as `show stat typed desc` prints it after the value
/// (HAProxy 2.6's `stat_fields[].desc` and its modules' own).
fn description(column: &str) -> &'static str {
    match column {
        "pxname" => "Proxy name",
        "svname" => "Server name",
        "qcur" => "Number of current queued connections",
        "qmax" => "Highest value of queued connections encountered since process started",
        "scur" => "Number of current sessions on the frontend, backend or server",
        "smax" => "Highest value of current sessions encountered since process started",
        "slim" => "Frontend/listener/server's maxconn, backend's fullconn",
        "stot" => "Total number of sessions since process started",
        "bin" => "Total number of request bytes since process started",
        "bout" => "Total number of response bytes since process started",
        "dreq" => "Total number of denied requests since process started",
        "dresp" => "Total number of denied responses since process started",
        "ereq" => "Total number of invalid requests since process started",
        "econ" => "Total number of failed connections to server since the worker process started",
        "eresp" => "Total number of invalid responses since the worker process started",
        "wretr" => "Total number of server connection retries since the worker process started",
        "wredis" => {
            "Total number of server redispatches due to connection failures since the worker process started"
        }
        "status" => {
            "Frontend/listen status: OPEN/WAITING/FULL/STOP; backend: UP/DOWN; server: last check status"
        }
        "weight" => {
            "Server's effective weight, or sum of active servers' effective weights for a backend"
        }
        "act" => "Total number of active UP servers with a non-zero weight",
        "bck" => "Total number of backup UP servers with a non-zero weight",
        "chkfail" => {
            "Total number of failed individual health checks per server/backend, since the worker process started"
        }
        "chkdown" => {
            "Total number of failed checks causing UP to DOWN server transitions, per server/backend, since the worker process started"
        }
        "lastchg" => "How long ago the last server state changed, in seconds",
        "downtime" => "Total time spent in DOWN state, for server or backend",
        "qlimit" => {
            "Limit on the number of connections in queue, for servers only (maxqueue argument)"
        }
        "pid" => "Relative worker process number (1)",
        "iid" => "Frontend or Backend numeric identifier ('id' setting)",
        "sid" => "Server numeric identifier ('id' setting)",
        "throttle" => {
            "Throttling ratio applied to a server's maxconn and weight during the slowstart period (0 to 100%)"
        }
        "lbtot" => {
            "Total number of requests routed by load balancing since the worker process started (ignores queue pop and stickiness)"
        }
        "tracked" => "Name of the other server this server tracks for its state",
        "type" => "Type of the object (Listener, Frontend, Backend, Server)",
        "rate" => {
            "Total number of sessions processed by this object over the last second (sessions for listeners/frontends, requests for backends/servers)"
        }
        "rate_lim" => {
            "Limit on the number of sessions accepted in a second (frontend only, 'rate-limit sessions' setting)"
        }
        "rate_max" => {
            "Highest value of sessions per second observed since the worker process started"
        }
        "check_status" => {
            "Status report of the server's latest health check, prefixed with '*' if a check is currently in progress"
        }
        "check_code" => "HTTP/SMTP/LDAP status code reported by the latest server health check",
        "check_duration" => "Total duration of the latest server health check, in milliseconds",
        "hrsp_1xx" => {
            "Total number of HTTP responses with status 100-199 returned by this object since the worker process started"
        }
        "hrsp_2xx" => {
            "Total number of HTTP responses with status 200-299 returned by this object since the worker process started"
        }
        "hrsp_3xx" => {
            "Total number of HTTP responses with status 300-399 returned by this object since the worker process started"
        }
        "hrsp_4xx" => {
            "Total number of HTTP responses with status 400-499 returned by this object since the worker process started"
        }
        "hrsp_5xx" => {
            "Total number of HTTP responses with status 500-599 returned by this object since the worker process started"
        }
        "hrsp_other" => {
            "Total number of HTTP responses with status <100, >599 returned by this object since the worker process started (error -1 included)"
        }
        "hanafail" => {
            "Total number of failed checks caused by an 'on-error' directive after an 'observe' condition matched"
        }
        "req_rate" => "Number of HTTP requests processed over the last second on this object",
        "req_rate_max" => {
            "Highest value of http requests observed since the worker process started"
        }
        "req_tot" => {
            "Total number of HTTP requests processed by this object since the worker process started"
        }
        "cli_abrt" => {
            "Total number of requests or connections aborted by the client since the worker process started"
        }
        "srv_abrt" => {
            "Total number of requests or connections aborted by the server since the worker process started"
        }
        "comp_in" => {
            "Total number of bytes submitted to the HTTP compressor for this object since the worker process started"
        }
        "comp_out" => {
            "Total number of bytes emitted by the HTTP compressor for this object since the worker process started"
        }
        "comp_byp" => {
            "Total number of bytes that bypassed HTTP compression for this object since the worker process started (CPU/memory/bandwidth limitation)"
        }
        "comp_rsp" => {
            "Total number of HTTP responses that were compressed for this object since the worker process started"
        }
        "lastsess" => {
            "How long ago some traffic was seen on this object on this worker process, in seconds"
        }
        "last_chk" => {
            "Short description of the latest health check report for this server (see also check_desc)"
        }
        "last_agt" => {
            "Short description of the latest agent check report for this server (see also agent_desc)"
        }
        "qtime" => {
            "Time spent in the queue, in milliseconds, averaged over the 1024 last requests (backend/server)"
        }
        "ctime" => {
            "Time spent waiting for a connection to complete, in milliseconds, averaged over the 1024 last requests (backend/server)"
        }
        "rtime" => {
            "Time spent waiting for a server response, in milliseconds, averaged over the 1024 last requests (backend/server)"
        }
        "ttime" => {
            "Total request+response time (request+queue+connect+response+processing), in milliseconds, averaged over the 1024 last requests (backend/server)"
        }
        "agent_status" => {
            "Status report of the server's latest agent check, prefixed with '*' if a check is currently in progress"
        }
        "agent_code" => "Status code reported by the latest server agent check",
        "agent_duration" => "Total duration of the latest server agent check, in milliseconds",
        "check_desc" => "Textual description of the latest health check report for this server",
        "agent_desc" => "Textual description of the latest agent check report for this server",
        "check_rise" => {
            "Number of successful health checks before declaring a server UP (server 'rise' setting)"
        }
        "check_fall" => {
            "Number of failed health checks before declaring a server DOWN (server 'fall' setting)"
        }
        "check_health" => "Current server health check level (0..fall-1=DOWN, fall..rise-1=UP)",
        "agent_rise" => {
            "Number of successful agent checks before declaring a server UP (server 'rise' setting)"
        }
        "agent_fall" => {
            "Number of failed agent checks before declaring a server DOWN (server 'fall' setting)"
        }
        "agent_health" => "Current server agent check level (0..fall-1=DOWN, fall..rise-1=UP)",
        "addr" => {
            "Server's address:port, shown only if show-legends is set, or at levels oper/admin for the CLI"
        }
        "cookie" => {
            "Backend's cookie name or Server's cookie value, shown only if show-legends is set, or at levels oper/admin for the CLI"
        }
        "mode" => "'mode' setting (tcp/http/health/cli)",
        "algo" => {
            "Backend's load balancing algorithm, shown only if show-legends is set, or at levels oper/admin for the CLI"
        }
        "conn_rate" => {
            "Number of new connections accepted over the last second on the frontend for this worker process"
        }
        "conn_rate_max" => {
            "Highest value of connections per second observed since the worker process started"
        }
        "conn_tot" => {
            "Total number of new connections accepted on this frontend since the worker process started"
        }
        "intercepted" => {
            "Total number of HTTP requests intercepted on the frontend (redirects/stats/services) since the worker process started"
        }
        "dcon" => {
            "Total number of incoming connections blocked on a listener/frontend by a tcp-request connection rule since the worker process started"
        }
        "dses" => {
            "Total number of incoming sessions blocked on a listener/frontend by a tcp-request connection rule since the worker process started"
        }
        "wrew" => "Total number of failed HTTP header rewrites since the worker process started",
        "connect" => {
            "Total number of outgoing connection attempts on this backend/server since the worker process started"
        }
        "reuse" => {
            "Total number of reused connection on this backend/server since the worker process started"
        }
        "cache_lookups" => {
            "Total number of HTTP requests looked up in the cache on this frontend/backend since the worker process started"
        }
        "cache_hits" => {
            "Total number of HTTP requests not found in the cache on this frontend/backend since the worker process started"
        }
        "srv_icur" => "Current number of idle connections available for reuse on this server",
        "src_ilim" => {
            "Limit on the number of available idle connections on this server (server 'pool_max_conn' directive)"
        }
        "qtime_max" => "Maximum observed time spent in the queue, in milliseconds (backend/server)",
        "ctime_max" => {
            "Maximum observed time spent waiting for a connection to complete, in milliseconds (backend/server)"
        }
        "rtime_max" => {
            "Maximum observed time spent waiting for a server response, in milliseconds (backend/server)"
        }
        "ttime_max" => {
            "Maximum observed total request+response time (request+queue+connect+response+processing), in milliseconds (backend/server)"
        }
        "eint" => "Total number of internal errors since process started",
        "idle_conn_cur" => "Current number of unsafe idle connections",
        "safe_conn_cur" => "Current number of safe idle connections",
        "used_conn_cur" => "Current number of connections in use",
        "need_conn_est" => "Estimated needed number of connections",
        "uweight" => "Server's user weight, or sum of active servers' user weights for a backend",
        "agg_server_status" => "Backend's aggregated gauge of servers' status",
        "agg_server_check_status" => "Backend's aggregated gauge of servers' state check status",
        "agg_check_status" => "Backend's aggregated gauge of servers' state check status",
        "ssl_sess" => "Total number of ssl sessions established",
        "ssl_reused_sess" => "Total number of ssl sessions reused",
        "ssl_failed_handshake" => "Total number of failed handshake",
        "h2_headers_rcvd" => "Total number of received HEADERS frames",
        "h2_data_rcvd" => "Total number of received DATA frames",
        "h2_settings_rcvd" => "Total number of received SETTINGS frames",
        "h2_rst_stream_rcvd" => "Total number of received RST_STREAM frames",
        "h2_goaway_rcvd" => "Total number of received GOAWAY frames",
        "h2_detected_conn_protocol_errors" => "Total number of connection protocol errors",
        "h2_detected_strm_protocol_errors" => "Total number of stream protocol errors",
        "h2_rst_stream_resp" => "Total number of RST_STREAM sent on detected error",
        "h2_goaway_resp" => "Total number of GOAWAY sent on detected error",
        "h2_open_connections" => "Count of currently open connections",
        "h2_backend_open_streams" => "Count of currently open streams",
        "h2_total_connections" => "Total number of connections",
        "h2_backend_total_streams" => "Total number of streams",
        "h1_open_connections" => "Count of currently open connections",
        "h1_open_streams" => "Count of currently open streams",
        "h1_total_connections" => "Total number of connections",
        "h1_total_streams" => "Total number of streams",
        "h1_bytes_in" => "Total number of bytes received",
        "h1_bytes_out" => "Total number of bytes send",
        "h1_spliced_bytes_in" => "Total number of bytes received using kernel splicing",
        "h1_spliced_bytes_out" => "Total number of bytes sendusing kernel splicing",
        _ => "",
    }
}

/// `show stat typed`: every filled field of every row, in the rows' order; `described`
/// (`desc`): each followed by its description.
pub fn stat(rows: &[Row], described: bool) -> String {
    let mut out = String::new();
    for row in rows {
        let Some((kind, iid, sid)) = row_ids(row) else {
            continue;
        };
        for field in stat_fields(kind, row) {
            let StatField {
                position,
                column,
                meta,
                value,
            } = field;
            let _ = write!(out, "{kind}.{iid}.{sid}.{position}.{column}.1:{meta}:");
            push_csv_field(&mut out, value);
            if described {
                let _ = write!(out, ":\"{}\"", description(column));
            }
            out.push('\n');
        }
    }
    out
}

/// `show stat json`: the fields of [`stat`], one JSON array of objects per row, as HAProxy
/// 2.6 prints them (`[[{"objType":"Frontend","proxyId":2,"id":0,"field":...},...],...]`).
pub fn stat_json(rows: &[Row]) -> String {
    let mut out = String::from("[");
    for (kind, iid, sid, row) in rows
        .iter()
        .filter_map(|row| row_ids(row).map(|(kind, iid, sid)| (kind, iid, sid, row)))
    {
        if out.len() > 1 {
            out.push(',');
        }
        let object = match kind {
            'F' => "Frontend",
            'B' => "Backend",
            'S' => "Server",
            _ => "Listener",
        };
        out.push('[');
        for (n, field) in stat_fields(kind, row).enumerate() {
            if n > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"objType\":\"{object}\",\"proxyId\":{iid},\"id\":{sid},"
            );
            push_json_field(
                &mut out,
                field.position,
                field.column,
                field.meta,
                field.value,
            );
        }
        out.push(']');
    }
    out.push_str("]\n");
    out
}

/// One field's `"field":...,"processNum":1,"tags":...,"value":...}` (HAProxy's
/// `stats_emit_json_*`); `meta` is its typed tags and type (`MGP:u32`).
fn push_json_field(out: &mut String, position: usize, name: &str, meta: &str, value: &str) {
    let (tags, kind) = meta.split_once(':').unwrap_or((meta, "str"));
    let mut tag = tags.chars();
    let origin = match tag.next() {
        Some('M') => "Metric",
        Some('S') => "Status",
        Some('K') => "Key",
        Some('C') => "Config",
        _ => "Product",
    };
    let nature = match tag.next() {
        Some('G') => "Gauge",
        Some('L') => "Limit",
        Some('m') => "Min",
        Some('M') => "Max",
        Some('R') => "Rate",
        Some('C') => "Counter",
        Some('D') => "Duration",
        Some('A') => "Age",
        Some('T') => "Time",
        Some('N') => "Name",
        Some('a') => "Avg",
        _ => "Output",
    };
    let scope = match tag.next() {
        Some('P') => "Process",
        Some('s') => "System",
        Some('C') => "Cluster",
        _ => "Service",
    };
    let _ = write!(out, "\"field\":{{\"pos\":{position},\"name\":");
    push_json_string(out, name);
    let _ = write!(
        out,
        "}},\"processNum\":1,\"tags\":{{\"origin\":\"{origin}\",\"nature\":\"{nature}\",\"scope\":\"{scope}\"}},\"value\":{{\"type\":\"{kind}\",\"value\":"
    );
    // A number HAProxy prints bare; a value that is none (never filled so) stays a string,
    // so that the answer remains JSON.
    if kind != "str" && value.parse::<i64>().is_ok() {
        out.push_str(value);
    } else {
        push_json_string(out, value);
    }
    out.push_str("}}");
}

/// `text` as a JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `show info`'s fields: HAProxy's position, name, tags and type (the zlib lines, 45 and
/// 46, are HAProxy's without zlib: absent).
const INFO_FIELDS: &[(usize, &str, &str)] = &[
    (0, "Name", "POS:str"),
    (1, "Version", "POS:str"),
    (2, "Release_date", "POS:str"),
    (3, "Nbthread", "CGS:u32"),
    (4, "Nbproc", "CGS:u32"),
    (5, "Process_num", "KGP:u32"),
    (6, "Pid", "SGP:u32"),
    (7, "Uptime", "MDP:str"),
    (8, "Uptime_sec", "MDP:u32"),
    (9, "Memmax_MB", "CLP:u32"),
    (10, "PoolAlloc_MB", "MGP:u32"),
    (11, "PoolUsed_MB", "MGP:u32"),
    (12, "PoolFailed", "MCP:u32"),
    (13, "Ulimit-n", "CLP:u32"),
    (14, "Maxsock", "CLP:u32"),
    (15, "Maxconn", "CLP:u32"),
    (16, "Hard_maxconn", "CLP:u32"),
    (17, "CurrConns", "MGP:u32"),
    (18, "CumConns", "MCP:u32"),
    (19, "CumReq", "MCP:u32"),
    (20, "MaxSslConns", "MMP:u32"),
    (21, "CurrSslConns", "MGP:u32"),
    (22, "CumSslConns", "MCP:u32"),
    (23, "Maxpipes", "CLP:u32"),
    (24, "PipesUsed", "MGP:u32"),
    (25, "PipesFree", "MGP:u32"),
    (26, "ConnRate", "MRP:u32"),
    (27, "ConnRateLimit", "CLP:u32"),
    (28, "MaxConnRate", "MMP:u32"),
    (29, "SessRate", "MRP:u32"),
    (30, "SessRateLimit", "CLP:u32"),
    (31, "MaxSessRate", "MRP:u32"),
    (32, "SslRate", "MRP:u32"),
    (33, "SslRateLimit", "CLP:u32"),
    (34, "MaxSslRate", "MMP:u32"),
    (35, "SslFrontendKeyRate", "MGP:u32"),
    (36, "SslFrontendMaxKeyRate", "MMP:u32"),
    (37, "SslFrontendSessionReuse_pct", "MGP:u32"),
    (38, "SslBackendKeyRate", "MRP:u32"),
    (39, "SslBackendMaxKeyRate", "MMP:u32"),
    (40, "SslCacheLookups", "MCP:u32"),
    (41, "SslCacheMisses", "MCP:u32"),
    (42, "CompressBpsIn", "MRP:u32"),
    (43, "CompressBpsOut", "MRP:u32"),
    (44, "CompressBpsRateLim", "CLP:u32"),
    (47, "Tasks", "MGP:u32"),
    (48, "Run_queue", "MGP:u32"),
    (49, "Idle_pct", "MaP:u32"),
    (50, "node", "COS:str"),
    (51, "description", "COS:str"),
    (52, "Stopping", "MGP:u32"),
    (53, "Jobs", "MGP:u32"),
    (54, "Unstoppable Jobs", "MGP:u32"),
    (55, "Listeners", "MGP:u32"),
    (56, "ActivePeers", "MGP:u32"),
    (57, "ConnectedPeers", "MGP:u32"),
    (58, "DroppedLogs", "MGP:u32"),
    (59, "BusyPolling", "MGP:u32"),
    (60, "FailedResolutions", "MGP:u32"),
    (61, "TotalBytesOut", "MGP:u64"),
    (62, "TotalSplicdedBytesOut", "MGP:u64"),
    (63, "BytesOutRate", "MRP:u64"),
    (64, "DebugCommandsIssued", "MGP:u32"),
    (65, "CumRecvLogs", "MCP:u32"),
    (66, "Build info", "POS:str"),
    (67, "Memmax_bytes", "CLP:u32"),
    (68, "PoolAlloc_bytes", "MGP:u64"),
    (69, "PoolUsed_bytes", "MGP:u64"),
    (70, "Start_time_sec", "MDP:u32"),
    (71, "Tainted", "SGP:str"),
];

/// `show info typed`: `show info`'s `lines` (name, value), each with its position, tags and
/// type.
pub fn info(lines: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in lines {
        let Some((position, _, meta)) = INFO_FIELDS.iter().find(|(_, n, _)| n == name) else {
            continue;
        };
        let _ = writeln!(out, "{position}.{name}.1:{meta}:{value}");
    }
    out
}

/// `show info json`: [`info`]'s fields as HAProxy 2.6 prints them
/// (`[{"field":{"pos":0,"name":"Name"},"processNum":1,...},...]`).
pub fn info_json(lines: &[(&str, String)]) -> String {
    let mut out = String::from("[");
    for (name, value) in lines {
        let Some((position, _, meta)) = INFO_FIELDS.iter().find(|(_, n, _)| n == name) else {
            continue;
        };
        if out.len() > 1 {
            out.push(',');
        }
        out.push('{');
        push_json_field(&mut out, *position, name, meta, value);
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_carry_haproxys_tag_words_and_escaped_strings() {
        let info = info_json(&[("Pid", "7".into()), ("node", "a\"b\\c".into())]);
        assert_eq!(
            info,
            "[{\"field\":{\"pos\":6,\"name\":\"Pid\"},\"processNum\":1,\
             \"tags\":{\"origin\":\"Status\",\"nature\":\"Gauge\",\"scope\":\"Process\"},\
             \"value\":{\"type\":\"u32\",\"value\":7}},\
             {\"field\":{\"pos\":50,\"name\":\"node\"},\"processNum\":1,\
             \"tags\":{\"origin\":\"Config\",\"nature\":\"Output\",\"scope\":\"Service\"},\
             \"value\":{\"type\":\"str\",\"value\":\"a\\\"b\\\\c\"}}]\n"
        );
    }

    #[test]
    fn a_row_prints_its_filled_fields_and_empty_strings_at_haproxys_positions() {
        let row: Row = [
            ("pxname", "b"),
            ("svname", "a"),
            ("scur", "0"),
            ("status", "no check"),
            ("act", "1"),
            ("iid", "3"),
            ("sid", "1"),
            ("type", "2"),
            ("ssl_sess", "0"),
            ("qlimit", ""),
            ("last_chk", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        let described = stat(std::slice::from_ref(&row), true);
        assert!(
            described.starts_with("S.3.1.0.pxname.1:KNS:str:b:\"Proxy name\"\n"),
            "{described}"
        );
        assert_eq!(
            stat(&[row], false),
            "S.3.1.0.pxname.1:KNS:str:b\n\
             S.3.1.1.svname.1:KNS:str:a\n\
             S.3.1.4.scur.1:MGP:u32:0\n\
             S.3.1.17.status.1:SGP:str:no check\n\
             S.3.1.19.act.1:SGP:u32:1\n\
             S.3.1.27.iid.1:KGS:u32:3\n\
             S.3.1.28.sid.1:KGS:u32:1\n\
             S.3.1.32.type.1:CGS:u32:2\n\
             S.3.1.56.last_chk.1:MOP:str:\n\
             S.3.1.103.ssl_sess.1:MCP:u64:0\n"
        );
    }

    #[test]
    fn info_lines_carry_haproxys_positions() {
        let lines = [("Pid", "7".to_string()), ("Stopping", "0".to_string())];
        assert_eq!(info(&lines), "6.Pid.1:SGP:u32:7\n52.Stopping.1:MGP:u32:0\n");
    }
}
