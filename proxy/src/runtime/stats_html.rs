//! The HTML stats page (`stats uri`), as HAProxy 2.6's: its head and style sheet, the
//! general process information with the legend and the display options, an optional
//! banner for the last admin action (`;st=`), then a table per proxy with HAProxy's column
//! groups (Queue, Session rate, Sessions, Bytes, Denied, Errors, Warnings, Server), whose
//! frontend, server and backend rows show the `show stat` rows ([`super::stats`]) cell for
//! cell as HAProxy's `stats_dump_fields_html` shows them: numbers grouped by thousands
//! (`U2H`), ages as `human_time` (`1m2s`, `?`), tooltips (`<u>...<div class=tips>`) on the
//! same cells, the same row classes.
//!
//! The URL's options: `;up` hides the servers that are down or in maintenance, `;norefresh`
//! stops the refresh; the links keep them as HAProxy's do. HAProxy's scope box and JSON
//! export are not on hapx's page: hapx serves neither.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::state::{Backend, State};
use super::stats::{Row, backend_row, esc, frontend_row, process_info, server_row, uptime};
use crate::config::model::{Proxy, StatsPage};

/// How one request sees the page.
#[derive(Debug, Clone, Default)]
pub struct PageView<'a> {
    /// `stats hide-version`: no version shown.
    pub hide_version: bool,
    /// The page refreshes (`stats refresh`), unless `;norefresh`.
    pub refresh: Option<u64>,
    /// `stats refresh` is set (the page offers to enable or disable it).
    pub refreshable: bool,
    /// The page's own prefix (`stats uri`).
    pub uri: &'a str,
    /// A `stats admin` condition holds: the backends' server forms are shown
    /// (see `runtime::stats_admin`).
    pub admin: bool,
    /// The outcome of the last action (`;st=`), as HAProxy's banner.
    pub banner: Option<String>,
    /// `;up`: only servers that are not down.
    pub only_up: bool,
    /// `stats show-node`: the node named in the title.
    pub node: Option<&'a str>,
    /// `stats show-desc`: the description in the title.
    pub desc: Option<&'a str>,
    /// `stats show-legends`: the proxies', servers' and backends' tooltips.
    pub legends: bool,
}

impl<'a> PageView<'a> {
    /// The view of `page` that a request for `path` asks for (`admin`: a `stats admin`
    /// condition holds for it).
    pub fn of(page: &'a StatsPage, path: &str, admin: bool) -> PageView<'a> {
        let refreshable = page.refresh.is_some();
        PageView {
            hide_version: page.hide_version,
            refresh: page
                .refresh
                .filter(|_| !path.contains(";norefresh"))
                .map(|r| r.as_secs()),
            refreshable,
            uri: page.uri(),
            admin,
            banner: super::stats_admin::banner(page, path),
            only_up: path.contains(";up"),
            node: page.show_node.as_deref(),
            desc: page.show_desc.as_deref(),
            legends: page.show_legends,
        }
    }
}

/// The actions of the admin form, HAProxy's values and labels in its order.
const ADMIN_ACTIONS: &[(&str, &str)] = &[
    ("", ""),
    ("ready", "Set state to READY"),
    ("drain", "Set state to DRAIN"),
    ("maint", "Set state to MAINT"),
    ("dhlth", "Health: disable checks"),
    ("ehlth", "Health: enable checks"),
    ("hrunn", "Health: force UP"),
    ("hnolb", "Health: force NOLB"),
    ("hdown", "Health: force DOWN"),
    ("dagent", "Agent: disable checks"),
    ("eagent", "Agent: enable checks"),
    ("arunn", "Agent: force UP"),
    ("adown", "Agent: force DOWN"),
    ("shutdown", "Kill Sessions"),
];

/// The HTML stats page.
pub fn html(state: &State, view: &PageView<'_>) -> String {
    let mut o = String::with_capacity(4 * super::BUFSIZE);
    let node = view.node.map(|n| node_name(state, n));
    match &node {
        // HAProxy's title names the node too.
        Some(node) => o.push_str(&HEAD.replacen("</title>", &format!(" on {node}</title>"), 1)),
        None => o.push_str(HEAD),
    }
    general_information(&mut o, state, view, node.as_deref());
    if let Some(banner) = &view.banner {
        o.push_str(banner);
    }
    for p in &state.config.proxies {
        proxy_table(&mut o, state, p, view);
    }
    o.push_str("</body></html>\n");
    o
}

/// The page's title, the "General process information" block, its legend and links. The
/// figures are `show info`'s: the output bit rate (`BytesOutRate` in bits, HAProxy's unit
/// chosen by size) and `Run_queue`/`Tasks` as `meter::tasks` counts them.
fn general_information(o: &mut String, state: &State, view: &PageView<'_>, node: Option<&str>) {
    let version = if view.hide_version {
        String::new()
    } else {
        format!(" version {}", env!("CARGO_PKG_VERSION"))
    };
    let desc = view.desc.map(|d| match d {
        "" => state.config.global.description.clone().unwrap_or_default(),
        d => d.to_string(),
    });
    let info = process_info(state);
    let (run_queue, tasks) = super::meter::tasks();
    let up = state.started.elapsed().as_secs();
    let _ = write!(
        o,
        "<body><h1><a href=\"http://www.haproxy.org/\" style=\"text-decoration: none;\">hapx-proxy{version}</a></h1>\n\
         <h2>Statistics Report for pid {pid}{on}{node}{colon}{desc}</h2>\n\
         <hr width=\"100%\" class=\"hr\">\n\
         <h3>&gt; General process information</h3>\n\
         <table border=0><tr><td align=\"left\" nowrap width=\"1%\">\n\
         <p><b>pid = </b> {pid} (process #1, nbproc = 1, nbthread = {threads})<br>\n\
         <b>uptime = </b> {uptime}<br>\n\
         <b>system limits:</b> memmax = unlimited; ulimit-n = {ulimit}<br>\n\
         <b>maxsock = </b> {maxsock}; <b>maxconn = </b> {maxconn}; <b>maxpipes = </b> {maxpipes}<br>\n\
         current conns = {conns}; current pipes = {pipes_used}/{pipes}; conn rate = {rate}/sec; bit rate = {bit_rate}bps<br>\n\
         Running tasks: {run_queue}/{tasks}; idle = {idle} %<br>\n\
         </td><td align=\"center\" nowrap>\n{LEGEND}",
        pid = state.pid,
        on = if node.is_some() { " on " } else { "" },
        node = node.unwrap_or_default(),
        colon = if desc.is_some() { ": " } else { "" },
        desc = desc.unwrap_or_default(),
        threads = info.threads,
        uptime = uptime(up),
        ulimit = info.ulimit,
        maxsock = state.max_sock,
        maxconn = state.max_conns,
        maxpipes = state.max_pipes,
        conns = state.cur_conns.load(Relaxed),
        pipes_used = info.pipes_used,
        pipes = info.pipes_used + info.pipes_free as u64,
        rate = state.conn_rate.per_second(),
        bit_rate = bit_rate(super::meter::sent_per_second() * 8),
        idle = super::stats::idle_pct(state, info.threads),
    );
    display_options(o, view);
}

/// Bits per second as HAProxy's page prints them: three decimals of kbps, Mbps from a
/// million, Gbps from a billion, with the unit's letter.
fn bit_rate(bps: u64) -> String {
    let (unit, letter) = match bps {
        1_000_000_000.. => (1e9, 'G'),
        1_000_000.. => (1e6, 'M'),
        _ => (1e3, 'k'),
    };
    format!("{:.3} {letter}", bps as f64 / unit)
}

/// The node `stats show-node` names: its own name, else the global `node`, else the host's
/// name.
fn node_name(state: &State, named: &str) -> String {
    match named {
        "" => (state.config.global.node.clone()).unwrap_or_else(super::log::hostname),
        named => named.to_string(),
    }
}

/// The "Display option" links (keeping `;up` and `;norefresh` as HAProxy's do) and the
/// external resources.
fn display_options(o: &mut String, view: &PageView<'_>) {
    let uri = esc(view.uri);
    let up = if view.only_up { ";up" } else { "" };
    let norefresh = if view.refresh.is_none() && view.refreshable {
        ";norefresh"
    } else {
        ""
    };
    o.push_str("<b>Display option:</b><ul style=\"margin-top: 0.25em;\">");
    if view.only_up {
        let _ = writeln!(
            o,
            "<li><a href=\"{uri}{norefresh}\">Show all servers</a><br>"
        );
    } else {
        let _ = writeln!(
            o,
            "<li><a href=\"{uri};up{norefresh}\">Hide 'DOWN' servers</a><br>"
        );
    }
    if view.refreshable {
        if view.refresh.is_some() {
            let _ = writeln!(
                o,
                "<li><a href=\"{uri}{up};norefresh\">Disable refresh</a><br>"
            );
        } else {
            let _ = writeln!(o, "<li><a href=\"{uri}{up}\">Enable refresh</a><br>");
        }
    }
    let csv_norefresh = if view.refreshable { ";norefresh" } else { "" };
    let _ = write!(
        o,
        "<li><a href=\"{uri}{up}{norefresh}\">Refresh now</a><br>\n\
         <li><a href=\"{uri};csv{csv_norefresh}\">CSV export</a><br>\n\
         </ul></td><td align=\"left\" valign=\"top\" nowrap width=\"1%\"><b>External resources:</b><ul style=\"margin-top: 0.25em;\">\n\
         <li><a href=\"http://www.haproxy.org/\">Primary site</a><br>\n\
         <li><a href=\"http://www.haproxy.org/#down\">Updates (v2.6)</a><br>\n\
         <li><a href=\"http://www.haproxy.org/#docs\">Online manual</a><br>\n\
         </ul></td></tr></table>\n"
    );
}

/// One proxy's tables (its title, then its frontend, servers and backend rows), inside the
/// admin form when it is a backend with servers and a `stats admin` allows it.
fn proxy_table(o: &mut String, state: &State, p: &Proxy, view: &PageView<'_>) {
    let fe = state.frontends.iter().find(|f| f.name == p.name);
    let be = state.backends.iter().find(|b| b.name == p.name);
    if fe.is_none() && be.is_none() {
        // Not running (`disabled`): HAProxy's page skips it too.
        return;
    }
    let form = be
        .filter(|b| view.admin && !b.servers.is_empty())
        .map(|b| &**b);
    if form.is_some() {
        o.push_str("<form method=\"post\">");
    }
    let id = fe.map(|f| f.id).or(be.map(|b| b.id)).unwrap_or_default();
    let cap = match (fe.is_some(), be.is_some()) {
        (true, true) => "proxy",
        (true, false) => "frontend",
        _ => "backend",
    };
    table_head(
        o,
        p,
        view,
        form,
        &format!("cap: {cap}, mode: {}, id: {id}", p.mode.as_str()),
    );
    let cells = Cells {
        admin: view.admin,
        legends: view.legends,
    };
    if let Some(fe) = fe {
        cells.frontend(o, &frontend_row(state, fe));
    }
    if let Some(be) = be {
        let servers: Vec<Row> = be.servers.iter().map(|s| server_row(be, s)).collect();
        for row in servers
            .iter()
            .filter(|r| !(view.only_up && hidden_when_up_only(r)))
        {
            cells.server(o, row);
        }
        let mut row = backend_row(state, be);
        if view.only_up {
            // HAProxy then counts the servers up (neither down nor in maintenance).
            let up = servers.iter().filter(|r| !is_down(r)).count();
            if let Some(status) = row.get_mut("status") {
                let _ = write!(status, " ({up}/{})", servers.len());
            }
        }
        cells.backend(o, &row, be.servers.is_empty());
    }
    o.push_str("</table>");
    if let Some(b) = form {
        admin_form_end(o, b);
    }
    o.push_str("<p>\n");
}

/// A server down or in maintenance (on its way up or not).
pub(super) fn is_down(row: &Row) -> bool {
    let status = field(row, "status");
    status.starts_with("DOWN") || status.starts_with("MAINT")
}

/// `;up` hides the servers in maintenance and those down and not on their way up.
pub(super) fn hidden_when_up_only(row: &Row) -> bool {
    let status = field(row, "status");
    status.starts_with("MAINT") || status == "DOWN" || status == "DOWN (agent)"
}

/// A table's title (with its tooltip under `stats show-legends`) and column headers; in
/// admin mode every table has the checkbox column, whose header box in the form's selects
/// all its servers.
fn table_head(
    o: &mut String,
    p: &Proxy,
    view: &PageView<'_>,
    form: Option<&Backend>,
    legend: &str,
) {
    let name = esc(&p.name);
    let title = if view.legends {
        format!("<u><a class=px href=\"#{name}\">{name}</a><div class=tips>{legend}</div></u>")
    } else {
        format!("<a class=px href=\"#{name}\">{name}</a>")
    };
    // As HAProxy writes it: the configuration's text, not escaped.
    let desc = match &p.description {
        Some(d) => format!("<th class=\"desc\" width=\"90%\">{d}</th>"),
        None => "<th class=\"empty\" width=\"90%\"></th>".into(),
    };
    let select_all = match (view.admin, form) {
        (false, _) => String::new(),
        (true, None) => "<th rowspan=2></th>".into(),
        (true, Some(b)) => format!(
            "<th rowspan=2 width=1><input type=\"checkbox\" onclick=\"for(c in document.getElementsByClassName('{0}-checkbox')) document.getElementsByClassName('{0}-checkbox').item(c).checked = this.checked\"></th>",
            esc(&b.name)
        ),
    };
    let _ = write!(
        o,
        "<table class=\"tbl\" width=\"100%\">\n\
         <tr class=\"titre\"><th class=\"pxname\" width=\"10%\"><a name=\"{name}\"></a>{title}</th>{desc}</tr>\n\
         </table>\n\
         <table class=\"tbl\" width=\"100%\">\n\
         <tr class=\"titre\">{select_all}<th rowspan=2></th><th colspan=3>Queue</th><th colspan=3>Session rate</th><th colspan=6>Sessions</th><th colspan=2>Bytes</th><th colspan=2>Denied</th><th colspan=3>Errors</th><th colspan=2>Warnings</th><th colspan=9>Server</th></tr>\n\
         <tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th>\n\
         </tr>"
    );
}

/// A row's column as text (empty when absent).
fn field<'r>(row: &'r Row, column: &str) -> &'r str {
    row.get(column).map_or("", |v| v.as_str())
}

/// A row's numeric column (0 when absent, as HAProxy's unset fields).
fn num(row: &Row, column: &str) -> u64 {
    field(row, column).parse().unwrap_or(0)
}

/// A row's column as HAProxy's `U2H` shows it.
fn u2h(row: &Row, column: &str) -> String {
    grouped(num(row, column))
}

/// HAProxy's `ulltoh`: the digits, each group of thousands but the last marked by a
/// spaced first digit (`<span class="rls">9</span>984`).
fn grouped(mut n: u64) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut digit = 0;
    loop {
        if digit == 3 {
            parts.push("</span>".into());
        }
        parts.push(char::from(b'0' + (n % 10) as u8).to_string());
        n /= 10;
        if digit == 3 {
            parts.push("<span class=\"rls\">".into());
        }
        digit = if digit == 3 { 1 } else { digit + 1 };
        if n == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

/// HAProxy's `LIM2A`: a limit, or `alt` when there is none (0).
fn limit(row: &Row, column: &str, alt: &str) -> String {
    match num(row, column) {
        0 => alt.to_string(),
        n => n.to_string(),
    }
}

/// HAProxy's `human_time`: an age in seconds as at most two units (`1d2h`, `1m2s`, `0s`),
/// `?` when unknown (negative).
fn human_time(t: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    if t < 0 {
        return "?".into();
    }
    let mut out = String::new();
    let mut count = 2;
    if t >= DAY {
        let _ = write!(out, "{}d", t / DAY);
        count -= 1;
    }
    if count > 0 && t % DAY / HOUR > 0 {
        let _ = write!(out, "{}h", t % DAY / HOUR);
        count -= 1;
    }
    if count > 0 && t % HOUR / MINUTE > 0 {
        let _ = write!(out, "{}m", t % HOUR / MINUTE);
        count -= 1;
    }
    if (count > 0 && t % MINUTE > 0) || t == 0 {
        let _ = write!(out, "{}s", t % MINUTE);
    }
    out
}

/// An age column as [`human_time`] shows it.
fn age(row: &Row, column: &str) -> String {
    human_time(field(row, column).parse().unwrap_or(-1))
}

/// `part * 100 / whole` as HAProxy's percentages (0 of nothing).
fn percent(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

fn is_http(row: &Row) -> bool {
    field(row, "mode") == "http"
}

/// How a table's rows are written.
struct Cells {
    /// The checkbox column (admin mode).
    admin: bool,
    /// `stats show-legends`' tooltips.
    legends: bool,
}

impl Cells {
    fn frontend(&self, o: &mut String, row: &Row) {
        let px = esc(field(row, "pxname"));
        o.push_str("<tr class=\"frontend\">");
        if self.admin {
            o.push_str("<td></td>");
        }
        let _ = write!(
            o,
            "<td class=ac><a name=\"{px}/Frontend\"></a><a class=lfsb href=\"#{px}/Frontend\">Frontend</a></td><td colspan=3></td>\
             <td><u>{}<div class=tips><table class=det><tr><th>Current connection rate:</th><td>{}/s</td></tr><tr><th>Current session rate:</th><td>{}/s</td></tr>",
            u2h(row, "rate"),
            u2h(row, "conn_rate"),
            u2h(row, "rate")
        );
        if is_http(row) {
            let _ = write!(
                o,
                "<tr><th>Current request rate:</th><td>{}/s</td></tr>",
                u2h(row, "req_rate")
            );
        }
        let _ = write!(
            o,
            "</table></div></u></td><td><u>{}<div class=tips><table class=det><tr><th>Max connection rate:</th><td>{}/s</td></tr><tr><th>Max session rate:</th><td>{}/s</td></tr>",
            u2h(row, "rate_max"),
            u2h(row, "conn_rate_max"),
            u2h(row, "rate_max")
        );
        if is_http(row) {
            let _ = write!(
                o,
                "<tr><th>Max request rate:</th><td>{}/s</td></tr>",
                u2h(row, "req_rate_max")
            );
        }
        let _ = write!(
            o,
            "</table></div></u></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><u>{}<div class=tips><table class=det><tr><th>Cum. connections:</th><td>{}</td></tr><tr><th>Cum. sessions:</th><td>{}</td></tr>",
            limit(row, "rate_lim", "-"),
            u2h(row, "scur"),
            u2h(row, "smax"),
            u2h(row, "slim"),
            u2h(row, "stot"),
            u2h(row, "conn_tot"),
            u2h(row, "stot")
        );
        if is_http(row) {
            http_responses(o, row, true);
        }
        let _ = write!(
            o,
            "</table></div></u></td><td></td><td></td><td>{}</td>",
            u2h(row, "bin")
        );
        bytes_out(o, row);
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td><td>{}</td><td></td><td></td><td></td><td></td><td class=ac>{}</td><td class=ac colspan=8></td></tr>",
            u2h(row, "dreq"),
            u2h(row, "dresp"),
            u2h(row, "ereq"),
            field(row, "status")
        );
    }

    fn server(&self, o: &mut String, row: &Row) {
        let (px, sv) = (esc(field(row, "pxname")), esc(field(row, "svname")));
        let _ = write!(o, "<tr class=\"{}\">", server_class(row));
        if self.admin {
            let _ = write!(
                o,
                "<td><input class='{px}-checkbox' type=\"checkbox\" name=\"s\" value=\"{sv}\"></td>"
            );
        }
        let _ = write!(
            o,
            "<td class=ac><a name=\"{px}/{sv}\"></a>{}<a class=lfsb href=\"#{px}/{sv}\">{sv}</a>",
            if self.legends { "<u>" } else { "" }
        );
        if self.legends {
            server_legend(o, row);
        }
        let _ = write!(
            o,
            "{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td></td>",
            if self.legends { "</u>" } else { "" },
            u2h(row, "qcur"),
            u2h(row, "qmax"),
            limit(row, "qlimit", "-"),
            u2h(row, "rate"),
            u2h(row, "rate_max")
        );
        let idle_limit = match field(row, "srv_ilim") {
            "" => "-".to_string(),
            _ => u2h(row, "srv_ilim"),
        };
        let _ = write!(
            o,
            "<td><u>{}<div class=tips><table class=det>\
             <tr><th>Current active connections:</th><td>{}</td></tr>\
             <tr><th>Current used connections:</th><td>{}</td></tr>\
             <tr><th>Current idle connections:</th><td>{}</td></tr>\
             <tr><th>- unsafe:</th><td>{}</td></tr>\
             <tr><th>- safe:</th><td>{}</td></tr>\
             <tr><th>Estimated need of connections:</th><td>{}</td></tr>\
             <tr><th>Active connections limit:</th><td>{}</td></tr>\
             <tr><th>Idle connections limit:</th><td>{}</td></tr>\
             </table></div></u></td><td>{}</td><td>{}</td>\
             <td><u>{}<div class=tips><table class=det><tr><th>Cum. sessions:</th><td>{}</td></tr>",
            u2h(row, "scur"),
            u2h(row, "scur"),
            u2h(row, "used_conn_cur"),
            u2h(row, "srv_icur"),
            u2h(row, "idle_conn_cur"),
            u2h(row, "safe_conn_cur"),
            u2h(row, "need_conn_est"),
            limit(row, "slim", "-"),
            idle_limit,
            u2h(row, "smax"),
            limit(row, "slim", "-"),
            u2h(row, "stot"),
            u2h(row, "stot")
        );
        if is_http(row) {
            server_http(o, row);
        }
        times(o, row);
        let _ = write!(
            o,
            "</table></div></u></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td></td><td>{}</td><td></td><td>{}</td>",
            u2h(row, "lbtot"),
            age(row, "lastsess"),
            u2h(row, "bin"),
            u2h(row, "bout"),
            u2h(row, "dresp"),
            u2h(row, "econ")
        );
        response_errors(o, row);
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td><td class=ac>",
            num(row, "wretr"),
            num(row, "wredis")
        );
        server_status(o, row);
        server_check(o, row);
        let backup = num(row, "bck") != 0;
        let _ = write!(
            o,
            "</td><td class=ac>{}/{}</td><td class=ac>{}</td><td class=ac>{}</td>",
            num(row, "weight"),
            num(row, "uweight"),
            if backup { "-" } else { "Y" },
            if backup { "Y" } else { "-" }
        );
        server_failures(o, row);
        match field(row, "throttle") {
            "" => o.push_str("<td class=ac>-</td>"),
            t => {
                let _ = writeln!(o, "<td class=ac>{t} %</td>");
            }
        }
        o.push_str("</tr>\n");
    }

    /// `no_servers`: a backend without servers has no downtime (HAProxy's empty field).
    fn backend(&self, o: &mut String, row: &Row, no_servers: bool) {
        let px = esc(field(row, "pxname"));
        o.push_str("<tr class=\"backend\">");
        if self.admin {
            o.push_str("<td></td>");
        }
        let _ = write!(
            o,
            "<td class=ac>{}<a name=\"{px}/Backend\"></a><a class=lfsb href=\"#{px}/Backend\">Backend</a>",
            if self.legends { "<u>" } else { "" }
        );
        if self.legends {
            let _ = write!(o, "<div class=tips>balancing: {}", field(row, "algo"));
            cookie_legend(o, row);
            o.push_str("</div>");
        }
        let _ = write!(
            o,
            "{}</td><td>{}</td><td>{}</td><td></td><td>{}</td><td>{}</td><td></td>\
             <td>{}</td><td>{}</td><td>{}</td><td><u>{}<div class=tips><table class=det><tr><th>Cum. sessions:</th><td>{}</td></tr>",
            if self.legends { "</u>" } else { "" },
            u2h(row, "qcur"),
            u2h(row, "qmax"),
            u2h(row, "rate"),
            u2h(row, "rate_max"),
            u2h(row, "scur"),
            u2h(row, "smax"),
            u2h(row, "slim"),
            u2h(row, "stot"),
            u2h(row, "stot")
        );
        if is_http(row) {
            let (connect, reuse) = (num(row, "connect"), num(row, "reuse"));
            let _ = write!(
                o,
                "<tr><th>New connections:</th><td>{}</td></tr><tr><th>Reused connections:</th><td>{}</td><td>({}%)</td></tr>",
                grouped(connect),
                grouped(reuse),
                percent(reuse, connect + reuse)
            );
            http_responses(o, row, false);
        }
        times(o, row);
        let _ = write!(
            o,
            "</table></div></u></td><td>{}</td><td>{}</td><td>{}</td>",
            u2h(row, "lbtot"),
            age(row, "lastsess"),
            u2h(row, "bin")
        );
        bytes_out(o, row);
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td><td></td><td>{}</td>",
            u2h(row, "dreq"),
            u2h(row, "dresp"),
            u2h(row, "econ")
        );
        response_errors(o, row);
        let status = match field(row, "status") {
            "DOWN" => "<font color=\"red\"><b>DOWN</b></font>",
            status => status,
        };
        let downtime = if no_servers {
            "&nbsp;".to_string()
        } else {
            age(row, "downtime")
        };
        let _ = write!(
            o,
            "<td>{}</td><td>{}</td><td class=ac>{} {status}</td><td class=ac>&nbsp;</td><td class=ac>{}/{}</td>\
             <td class=ac>{}</td><td class=ac>{}</td><td class=ac>&nbsp;</td><td>{}</td><td>{downtime}</td><td></td></tr>",
            num(row, "wretr"),
            num(row, "wredis"),
            age(row, "lastchg"),
            num(row, "weight"),
            num(row, "uweight"),
            num(row, "act"),
            num(row, "bck"),
            num(row, "chkdown")
        );
    }
}

/// The HTTP responses' part of a frontend's or backend's sessions tooltip (`intercepted`:
/// the frontend's intercepted requests line).
fn http_responses(o: &mut String, row: &Row, intercepted: bool) {
    let two = num(row, "hrsp_2xx");
    let compressed = num(row, "comp_rsp");
    let _ = write!(
        o,
        "<tr><th>Cum. HTTP requests:</th><td>{}</td></tr>\
         <tr><th>- HTTP 1xx responses:</th><td>{}</td></tr>\
         <tr><th>- HTTP 2xx responses:</th><td>{}</td></tr>\
         <tr><th>&nbsp;&nbsp;Compressed 2xx:</th><td>{}</td><td>({}%)</td></tr>\
         <tr><th>- HTTP 3xx responses:</th><td>{}</td></tr>\
         <tr><th>- HTTP 4xx responses:</th><td>{}</td></tr>\
         <tr><th>- HTTP 5xx responses:</th><td>{}</td></tr>\
         <tr><th>- other responses:</th><td>{}</td></tr>",
        u2h(row, "req_tot"),
        u2h(row, "hrsp_1xx"),
        grouped(two),
        grouped(compressed),
        percent(compressed, two),
        u2h(row, "hrsp_3xx"),
        u2h(row, "hrsp_4xx"),
        u2h(row, "hrsp_5xx"),
        u2h(row, "hrsp_other")
    );
    if intercepted {
        let _ = write!(
            o,
            "<tr><th>Intercepted requests:</th><td>{}</td></tr>",
            u2h(row, "intercepted")
        );
    }
    let (lookups, hits) = (num(row, "cache_lookups"), num(row, "cache_hits"));
    let _ = write!(
        o,
        "<tr><th>Cache lookups:</th><td>{}</td></tr><tr><th>Cache hits:</th><td>{}</td><td>({}%)</td></tr>\
         <tr><th>Failed hdr rewrites:</th><td>{}</td></tr><tr><th>Internal errors:</th><td>{}</td></tr>",
        grouped(lookups),
        grouped(hits),
        percent(hits, lookups),
        u2h(row, "wrew"),
        u2h(row, "eint")
    );
}

/// A server's HTTP part of its sessions tooltip: connections and responses, each class
/// with its share of the requests.
fn server_http(o: &mut String, row: &Row) {
    let (connect, reuse) = (num(row, "connect"), num(row, "reuse"));
    let requests = num(row, "req_tot");
    let _ = write!(
        o,
        "<tr><th>New connections:</th><td>{}</td></tr><tr><th>Reused connections:</th><td>{}</td><td>({}%)</td></tr>\
         <tr><th>Cum. HTTP requests:</th><td>{}</td></tr>",
        grouped(connect),
        grouped(reuse),
        percent(reuse, connect + reuse),
        grouped(requests)
    );
    for (label, column) in [
        ("- HTTP 1xx responses:", "hrsp_1xx"),
        ("- HTTP 2xx responses:", "hrsp_2xx"),
        ("- HTTP 3xx responses:", "hrsp_3xx"),
        ("- HTTP 4xx responses:", "hrsp_4xx"),
        ("- HTTP 5xx responses:", "hrsp_5xx"),
        ("- other responses:", "hrsp_other"),
    ] {
        let n = num(row, column);
        let _ = write!(
            o,
            "<tr><th>{label}</th><td>{}</td><td>({}%)</td></tr>",
            grouped(n),
            percent(n, requests)
        );
    }
    let _ = write!(
        o,
        "<tr><th>Failed hdr rewrites:</th><td>{}</td></tr><tr><th>Internal error:</th><td>{}</td></tr>",
        u2h(row, "wrew"),
        u2h(row, "eint")
    );
}

/// The times' part of a server's or backend's sessions tooltip: max and mean over the last
/// sessions (the response time in HTTP only).
fn times(o: &mut String, row: &Row) {
    o.push_str("<tr><th colspan=3>Max / Avg over last 1024 success. conn.</th></tr>");
    let mut lines = vec![
        ("- Queue time:", "qtime_max", "qtime"),
        ("- Connect time:", "ctime_max", "ctime"),
    ];
    if is_http(row) {
        lines.push(("- Responses time:", "rtime_max", "rtime"));
    }
    lines.push(("- Total time:", "ttime_max", "ttime"));
    for (label, max, mean) in lines {
        let _ = write!(
            o,
            "<tr><th>{label}</th><td>{} / {}</td><td>ms</td></tr>",
            u2h(row, max),
            u2h(row, mean)
        );
    }
}

/// The bytes out cell with its compression tooltip (underlined once compression did
/// something).
fn bytes_out(o: &mut String, row: &Row) {
    let (comp_in, comp_out, bypass) = (
        num(row, "comp_in"),
        num(row, "comp_out"),
        num(row, "comp_byp"),
    );
    let out = num(row, "bout");
    let underline = comp_in != 0 || bypass != 0;
    let saved = comp_in.saturating_sub(comp_out);
    let _ = write!(
        o,
        "<td>{}{}<div class=tips><table class=det>\
         <tr><th>Response bytes in:</th><td>{}</td></tr>\
         <tr><th>Compression in:</th><td>{}</td></tr>\
         <tr><th>Compression out:</th><td>{}</td><td>({}%)</td></tr>\
         <tr><th>Compression bypass:</th><td>{}</td></tr>\
         <tr><th>Total bytes saved:</th><td>{}</td><td>({}%)</td></tr>\
         </table></div>{}</td>",
        if underline { "<u>" } else { "" },
        grouped(out),
        grouped(out),
        grouped(comp_in),
        grouped(comp_out),
        percent(comp_out, comp_in),
        grouped(bypass),
        grouped(saved),
        percent(saved, out),
        if underline { "</u>" } else { "" }
    );
}

/// The response errors' cell with the aborts in its tooltip.
fn response_errors(o: &mut String, row: &Row) {
    let _ = write!(
        o,
        "<td><u>{}<div class=tips>Connection resets during transfers: {} client, {} server</div></u></td>",
        u2h(row, "eresp"),
        num(row, "cli_abrt"),
        num(row, "srv_abrt")
    );
}

/// HAProxy's server row class: from its status (a server on its way up or down, `DOWN n/m`
/// or `NOLB n/m`, by its status's first word, as HAProxy 2.6.12 shows it), else its health
/// and weight.
fn server_class(row: &Row) -> String {
    let status = field(row, "status");
    if status.starts_with("MAINT") {
        return "maintain".into();
    }
    let style = match status {
        "DOWN" | "DOWN (agent)" => "down",
        _ if status.starts_with("DOWN ") => "going_up",
        "DRAIN" => "draining",
        _ if status.starts_with("NOLB ") => "going_down",
        "NOLB" => "nolb",
        "no check" => "no_check",
        _ if field(row, "chkfail").is_empty() || num(row, "check_health") == full_health(row) => {
            if num(row, "weight") != 0 {
                "up"
            } else {
                "draining"
            }
        }
        _ => "going_down",
    };
    let kind = if num(row, "bck") != 0 {
        "backup"
    } else {
        "active"
    };
    format!("{kind}_{style}")
}

/// `rise + fall - 1` in HAProxy's 32-bit arithmetic (no check: 0 - 1, the largest value).
fn full_health(row: &Row) -> u64 {
    let sum = (num(row, "check_rise") as u32).wrapping_add(num(row, "check_fall") as u32);
    u64::from(sum.wrapping_sub(1))
}

/// `stats show-legends`' tooltip on a server's name: its address, id and cookie.
fn server_legend(o: &mut String, row: &Row) {
    o.push_str("<div class=tips>");
    let addr = field(row, "addr");
    if addr.starts_with(|c: char| c.is_ascii_digit()) {
        let _ = write!(o, "IPv4: {addr}, ");
    } else if addr.starts_with('[') {
        let _ = write!(o, "IPv6: {addr}, ");
    } else if !addr.is_empty() {
        let _ = write!(o, "{addr}, ");
    }
    let _ = write!(o, "id: {}", num(row, "sid"));
    cookie_legend(o, row);
    o.push_str("</div>");
}

fn cookie_legend(o: &mut String, row: &Row) {
    if let Some(cookie) = row.get("cookie") {
        let _ = write!(o, ", cookie: '{}'", html_encode(cookie));
    }
}

/// HAProxy's `chunk_htmlencode`: `<`, `>`, `&`, `"`, `'` and non-printable bytes as
/// numeric references.
fn html_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '<' | '>' | '&' | '"' | '\'') || (c as u32) < 0x20 || c as u32 == 0x7f {
            let _ = write!(out, "&#{};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A server's status cell: its age and status, an arrow when its health is on its way.
fn server_status(o: &mut String, row: &Row) {
    let status = field(row, "status");
    if status.starts_with("MAINT") {
        let _ = write!(o, "{} MAINT", age(row, "lastchg"));
    } else if status == "no check" {
        o.push_str("<i>no check</i>");
    } else {
        let _ = write!(o, "{} {}", age(row, "lastchg"), esc(status));
        let health = num(row, "check_health");
        if status.starts_with("DOWN") {
            if health != 0 {
                o.push_str(" &uarr;");
            }
        } else if health < full_health(row) {
            o.push_str(" &darr;");
        }
    }
}

/// A server's LastChk cell (opened by the status cell): the agent's result when it holds
/// the server down, else the check's, with its description and detail in the tooltip.
fn server_check(o: &mut String, row: &Row) {
    let agent_down = field(row, "status").starts_with("DOWN")
        && !field(row, "agent_status").is_empty()
        && num(row, "agent_health") == 0;
    let prefix = if agent_down {
        "agent"
    } else if !field(row, "check_status").is_empty() {
        "check"
    } else {
        o.push_str("</td><td>");
        return;
    };
    let column = |name: &str| format!("{prefix}_{name}");
    let _ = write!(o, "</td><td class=ac><u> {}", field(row, &column("status")));
    if !field(row, &column("code")).is_empty() {
        let _ = write!(o, "/{}", field(row, &column("code")));
    }
    if !field(row, &column("duration")).is_empty() {
        let _ = write!(o, " in {}ms", field(row, &column("duration")));
    }
    let _ = write!(o, "<div class=tips>{}", field(row, &column("desc")));
    let detail = field(row, if agent_down { "last_agt" } else { "last_chk" });
    if !detail.is_empty() {
        let _ = write!(o, ": {}", html_encode(detail));
    }
    o.push_str("</div></u>");
}

/// The check failures' three cells (`Chk`, `Dwn`, `Dwntme`): `resolution` for a server in
/// maintenance for it, a checked server's counts, a link to the server a tracking one
/// follows, else empty.
fn server_failures(o: &mut String, row: &Row) {
    let status = field(row, "status");
    let tracked = field(row, "tracked");
    if status == "MAINT (resolution)" {
        o.push_str("<td class=ac colspan=3>resolution</td>");
    } else if !field(row, "chkfail").is_empty() {
        let _ = write!(o, "<td><u>{}", num(row, "chkfail"));
        let analyses = !field(row, "hanafail").is_empty();
        if analyses {
            let _ = write!(o, "/{}", num(row, "hanafail"));
        }
        let _ = write!(
            o,
            "<div class=tips>Failed Health Checks{}</div></u></td><td>{}</td><td>{}</td>",
            if analyses { "/Health Analyses" } else { "" },
            num(row, "chkdown"),
            age(row, "downtime")
        );
    } else if status != "MAINT" && !tracked.is_empty() {
        let t = esc(tracked);
        let _ = write!(
            o,
            "<td class=ac colspan=3><a class=lfsb href=\"#{t}\">via {t}</a></td>"
        );
    } else {
        o.push_str("<td colspan=3></td>");
    }
}

/// The admin form's end: the action to take, the backend (by id) and the button.
fn admin_form_end(o: &mut String, b: &Backend) {
    o.push_str("Choose the action to perform on the checked servers : <select name=action>");
    for (value, label) in ADMIN_ACTIONS {
        let _ = write!(o, "<option value=\"{value}\">{label}</option>");
    }
    let _ = write!(
        o,
        "</select><input type=\"hidden\" name=\"b\" value=\"#{}\">&nbsp;<input type=\"submit\" value=\"Apply\"></form>",
        b.id
    );
}

/// The page's head (HAProxy's style sheet, its dark variant included) up to its body.
const HEAD: &str = include_str!("stats_head.html");

/// The legend of the row colours and the display options' opening, as HAProxy's.
const LEGEND: &str = "<table class=\"lgd\"><tr>
<td class=\"active_up\">&nbsp;</td><td class=\"noborder\">active UP </td><td class=\"backup_up\">&nbsp;</td><td class=\"noborder\">backup UP </td></tr><tr>
<td class=\"active_going_down\"></td><td class=\"noborder\">active UP, going down </td><td class=\"backup_going_down\"></td><td class=\"noborder\">backup UP, going down </td></tr><tr>
<td class=\"active_going_up\"></td><td class=\"noborder\">active DOWN, going up </td><td class=\"backup_going_up\"></td><td class=\"noborder\">backup DOWN, going up </td></tr><tr>
<td class=\"active_down\"></td><td class=\"noborder\">active or backup DOWN &nbsp;</td><td class=\"active_no_check\"></td><td class=\"noborder\">not checked </td></tr><tr>
<td class=\"maintain\"></td><td class=\"noborder\" colspan=\"3\">active or backup DOWN for maintenance (MAINT) &nbsp;</td></tr><tr>
<td class=\"active_draining\"></td><td class=\"noborder\" colspan=\"3\">active or backup SOFT STOPPED for maintenance &nbsp;</td></tr></table>
Note: \"NOLB\"/\"DRAIN\" = UP with load-balancing disabled.</td><td align=\"left\" valign=\"top\" nowrap width=\"1%\">";

#[cfg(test)]
mod tests {
    use super::{grouped, human_time};

    #[test]
    fn numbers_are_grouped_as_haproxy_groups_them() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(9984), "<span class=\"rls\">9</span>984");
        assert_eq!(
            grouped(1234567),
            "<span class=\"rls\">1</span>23<span class=\"rls\">4</span>567"
        );
    }

    #[test]
    fn ages_are_shown_as_haproxy_shows_them() {
        assert_eq!(human_time(-1), "?");
        assert_eq!(human_time(0), "0s");
        assert_eq!(human_time(62), "1m2s");
        assert_eq!(human_time(3605), "1h5s");
        assert_eq!(human_time(86400), "1d");
        assert_eq!(human_time(90061), "1d1h");
    }
}
