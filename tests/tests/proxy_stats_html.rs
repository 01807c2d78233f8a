//! The HTML stats page beside HAProxy 2.6: one configuration (HTTP and TCP frontends, a
//! backend with servers up, down, in maintenance, draining, backup and tracking, checks,
//! some traffic) run by both; both pages are cut into tables, rows and cells (a small
//! tokenizer below), and compared cell by cell: the same tables, column headers, row
//! classes, values and tooltips. Only what must differ is normalised: ages and check
//! durations, the pid, the product's name and version. The display options differ by
//! HAProxy's scope box and JSON export, which hapx does not serve. Also: `;up`,
//! `;norefresh`, the `;st=` banner, and a POSTed form's body in the frontend's bytes in.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hapx_tests::proxy::{
    HttpServer, NamedServer, Proxy, cli, free_port, http_get, http_raw, kept_alive_client,
    read_response, stat_row, temp_dir, wait_until,
};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// One proxy (hapx-proxy or HAProxy) with its own servers.
struct Setup {
    proxy: Proxy,
    _http: Vec<HttpServer>,
    _tcp: NamedServer,
    sock: std::path::PathBuf,
    web: SocketAddr,
    tcp: SocketAddr,
    /// `stats admin if TRUE`, legends, node, description, refresh.
    admin: SocketAddr,
    /// A plain page: `stats hide-version`, no refresh.
    plain: SocketAddr,
    _dir: hapx_tests::proxy::TestDir,
}

fn setup_with(binary: &Path, test: &str) -> Setup {
    let http: Vec<HttpServer> = ["up1", "drain1", "bk1"]
        .iter()
        .map(|n| HttpServer::start(n))
        .collect();
    let tcp = NamedServer::start("t1", LO, Duration::from_secs(5));
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    // Nothing listens on the last port: `down1`'s check is refused.
    let cfg = format!(
        "global\n  stats socket {sock} mode 600 level admin\n  maxconn 1000\n  node testnode\n  description the test process\n\
         defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend web\n  mode http\n  bind 127.0.0.1:{web}\n  description web <b>front</b>\n  default_backend app\n\
         backend app\n  mode http\n  balance roundrobin\n  cookie SRV insert\n  default-server inter 1s downinter 60s rise 1 fall 1\n\
         \x20 server up1 {up1} check cookie u1 weight 3 maxconn 50 maxqueue 10 observe layer4\n\
         \x20 server down1 127.0.0.1:{closed} check\n\
         \x20 server maint1 {drain1} disabled\n\
         \x20 server drain1 {drain1} check\n\
         \x20 server bk1 {bk1} backup\n\
         \x20 server trk {up1} track app/up1\n\
         frontend tcpfe\n  mode tcp\n  bind 127.0.0.1:{tcpfe}\n  default_backend tcpbe\n\
         backend tcpbe\n  mode tcp\n  server t1 {t1} check inter 1s\n\
         listen stats\n  mode http\n  bind 127.0.0.1:{admin}\n  stats uri /\n  stats refresh 10s\n  stats show-legends\n  stats show-node\n  stats show-desc\n  stats admin if TRUE\n\
         listen plain\n  mode http\n  bind 127.0.0.1:{plain}\n  stats uri /s\n  stats hide-version\n",
        sock = sock.display(),
        web = ports[0],
        up1 = http[0].addr,
        drain1 = http[1].addr,
        bk1 = http[2].addr,
        closed = ports[4],
        tcpfe = ports[1],
        t1 = tcp.addr,
        admin = ports[2],
        plain = ports[3],
    );
    let at = |i: usize| SocketAddr::from((LO, ports[i]));
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, test, &cfg, at(3), &[]);
    Setup {
        proxy,
        _http: http,
        _tcp: tcp,
        sock,
        web: at(0),
        tcp: at(1),
        admin: at(2),
        plain: at(3),
        _dir: dir,
    }
}

/// Both, their servers settled (`drain1` drained by the runtime API), the same traffic
/// sent, their rates back to 0; None (skipped) without HAProxy.
fn side_by_side(test: &str) -> Option<(Setup, Setup)> {
    if !hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let ours = setup_with(
        &hapx_tests::bins::path("hapx-proxy"),
        &format!("{test}-hapx"),
    );
    let theirs = setup_with(Path::new(HAPROXY), &format!("{test}-haproxy"));
    for s in [&ours, &theirs] {
        cli(&s.sock, "set server app/drain1 state drain");
        let settled = [
            ("app", "up1", "UP"),
            ("app", "down1", "DOWN"),
            ("app", "drain1", "DRAIN"),
            ("tcpbe", "t1", "UP"),
        ];
        assert!(
            wait_until(Duration::from_secs(5), || {
                let csv = cli(&s.sock, "show stat");
                settled.iter().all(|(px, sv, status)| {
                    stat_row(&csv, px, sv).is_some_and(|r| r["status"] == *status)
                })
            }),
            "the servers did not settle"
        );
    }
    // A burst early in a second, to both: the same maximum rates.
    wait_until(Duration::from_secs(2), || {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_millis();
        (50..300).contains(&ms)
    });
    for s in [&ours, &theirs] {
        // Four requests on one kept-alive connection: one session, so the maximum counts
        // cannot depend on when each proxy counts a closing connection out.
        let mut conn = kept_alive_client(s.web);
        for _ in 0..4 {
            let request = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n";
            conn.get_mut()
                .write_all(request)
                .expect("sending a request");
            let (status, _) = read_response(&mut conn);
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        }
        drop(conn);
        assert!(wait_until(Duration::from_secs(2), || {
            let csv = cli(&s.sock, "show stat");
            stat_row(&csv, "web", "FRONTEND").is_some_and(|r| r["scur"] == "0")
        }));
        assert_eq!(hapx_tests::proxy::ask(s.tcp), "t1");
    }
    // The current rates read over the last second: 0 again before the pages are read; the
    // sessions over, their server connections released (a loaded host takes its time).
    for s in [&ours, &theirs] {
        assert!(wait_until(Duration::from_secs(4), || {
            let csv = cli(&s.sock, "show stat");
            let idle = |px: &str, row: &str| {
                stat_row(&csv, px, row).is_some_and(|r| r["used_conn_cur"] == "0")
            };
            ["web", "tcpfe"]
                .iter()
                .all(|fe| stat_row(&csv, fe, "FRONTEND").is_some_and(|r| r["rate"] == "0"))
                && idle("app", "up1")
                && idle("tcpbe", "t1")
        }));
    }
    Some((ours, theirs))
}

/// One table of a page: its class and rows.
#[derive(Debug, Clone, PartialEq)]
struct Table {
    class: String,
    rows: Vec<Row>,
}

/// One row: its class and its cells, each its opening tag (attributes but a script) and
/// its inner HTML, tooltips included.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    class: String,
    cells: Vec<(String, String)>,
}

/// An HTML tag or a text.
enum Token<'a> {
    Open(&'a str, &'a str),
    Close(&'a str, &'a str),
    Text(&'a str),
}

/// The page's tokens; comments, the doctype and the style sheet skipped.
fn tokens(page: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = page;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
        } else if rest.starts_with("<style") {
            rest = rest.find("</style>").map_or("", |e| &rest[e + 8..]);
        } else if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            let name: &str = tag[1..]
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or_default();
            out.push(if tag.starts_with("</") {
                Token::Close(name, tag)
            } else {
                Token::Open(name, tag)
            });
            rest = &rest[end..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            out.push(Token::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

/// A tag's attribute value (quoted or not).
fn attribute(tag: &str, name: &str) -> String {
    let Some(at) = tag.find(&format!(" {name}=")) else {
        return String::new();
    };
    let value = &tag[at + name.len() + 2..];
    match value.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default().to_string(),
        None => value
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The page's tables, in the order they close; a table inside a cell (a tooltip, the
/// legend) stays in that cell's HTML.
fn tables(page: &str) -> Vec<Table> {
    let mut done = Vec::new();
    // The open tables, each with whether one of its cells is open.
    let mut open: Vec<(Table, bool)> = Vec::new();
    // How deep inside a cell's own tables the tokens are.
    let mut nested = 0;
    for token in tokens(page) {
        let in_cell = open.last().is_some_and(|(_, cell)| *cell);
        match token {
            Token::Open("table", tag) if !in_cell => {
                let class = attribute(tag, "class");
                open.push((
                    Table {
                        class,
                        rows: Vec::new(),
                    },
                    false,
                ));
            }
            Token::Close("table", _) if nested == 0 && !in_cell => {
                if let Some((table, _)) = open.pop() {
                    done.push(table);
                }
            }
            Token::Open(name, tag) if nested == 0 && matches!(name, "tr" | "td" | "th") => {
                let Some((table, cell)) = open.last_mut() else {
                    continue;
                };
                if name == "tr" {
                    let class = attribute(tag, "class");
                    table.rows.push(Row {
                        class,
                        cells: Vec::new(),
                    });
                    *cell = false;
                } else if let Some(row) = table.rows.last_mut() {
                    // Its script aside (it names the table's checkboxes' class).
                    let opening = match tag.find(" onclick=") {
                        Some(at) => format!("{}>", &tag[..at]),
                        None => tag.to_string(),
                    };
                    row.cells.push((opening, String::new()));
                    *cell = true;
                }
            }
            Token::Close(name, _) if nested == 0 && matches!(name, "tr" | "td" | "th") => {
                if let Some((_, cell)) = open.last_mut() {
                    *cell = false;
                }
            }
            token if in_cell => {
                let text = match token {
                    Token::Open(name, tag) => {
                        nested += i32::from(name == "table");
                        tag
                    }
                    Token::Close(name, tag) => {
                        nested -= i32::from(name == "table");
                        tag
                    }
                    Token::Text(text) => text,
                };
                let cell = open
                    .last_mut()
                    .and_then(|(t, _)| t.rows.last_mut())
                    .and_then(|r| r.cells.last_mut());
                if let Some((_, html)) = cell {
                    html.push_str(text);
                }
            }
            _ => {}
        }
    }
    done
}

/// What must differ between the two pages, made the same: ages (`1m2s`), check durations
/// (`in 3ms`), the mean and max times (`1 / 0`), `pid`; in the process information, what
/// hapx does not measure (the bit rate, HAProxy's tasks) and the system limits (checked
/// against each one's `show info` instead, by [`assert_limits_as_shown`]). HAProxy marks a
/// check running as the page is made (`* L4OK`): a matter of that instant (a loaded host
/// shows it now and then), which hapx does not mark; the mark is dropped.
fn normalised(text: &str, pid: u32) -> String {
    let text = text
        .replace(&pid.to_string(), "PID")
        .replace("<u> * ", "<u> ");
    let mut out = String::new();
    let mut word = String::new();
    // Runs of digits and units between other characters.
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() || "dhms".contains(c) {
            word.push(c);
            continue;
        }
        let bounded =
            !c.is_ascii_alphabetic() && !out.ends_with(|p: char| p.is_ascii_alphanumeric());
        if bounded && is_age(&word) {
            out.push_str("AGE");
        } else if bounded && word.ends_with("ms") && is_digits(&word[..word.len() - 2]) {
            out.push_str("Nms");
        } else {
            out.push_str(&word);
        }
        word.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    let out = numbers_after(
        &out,
        &[
            // Each one's own servers.
            "127.0.0.1:",
            // hapx's pool (`runtime::pool`) estimates its need of connections its own way:
            // HAProxy's counts its checks' connections too (as its `show stat` shows).
            "<th>Estimated need of connections:</th><td>",
            "ulimit-n = ",
            "<b>maxsock = </b> ",
            "<b>maxpipes = </b> ",
            "bit rate = ",
            "Running tasks: ",
            // Measured over the time since the last reading.
            "idle = ",
            // The page requests' own connections over the last second: how many fell in it
            // depends on when each proxy's pages were read.
            "conn rate = ",
            // A health check's connection counts while it opens (in both): whether one is
            // under way when a page is read depends on when each proxy's checks run.
            "<th>Current used connections:</th><td>",
        ],
    );
    // hapx does not measure the bit rate: its unit too.
    let out = ["k", "M", "G", "T"].iter().fold(out, |out, unit| {
        out.replace(&format!("bit rate = N {unit}bps"), "bit rate = N bps")
    });
    // `<td>MAX / MEAN</td><td>ms</td>`: times measured.
    let mut times = String::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find(" / ") {
        let before = rest[..at].trim_end_matches(|c: char| c.is_ascii_digit());
        let after = rest[at + 3..].trim_start_matches(|c: char| c.is_ascii_digit());
        if before.ends_with("<td>") && after.starts_with("</td><td>ms</td>") {
            times.push_str(before);
            times.push_str("T / T");
            rest = after;
        } else {
            times.push_str(&rest[..at + 3]);
            rest = &rest[at + 3..];
        }
    }
    times.push_str(rest);
    times
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit())
}

/// `text` with the figures after each of `labels` (digits, dots, slashes) as `N`.
fn numbers_after(text: &str, labels: &[&str]) -> String {
    let mut out = text.to_string();
    for label in labels {
        let mut from = 0;
        while let Some(at) = out[from..].find(label) {
            let start = from + at + label.len();
            let end = out[start..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/'))
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "N");
            from = start + 1;
        }
    }
    out
}

/// The system limits the page shows are its `show info`'s.
fn assert_limits_as_shown(page: &str, s: &Setup) {
    let info = cli(&s.sock, "show info");
    let value = |key: &str| -> String {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_default()
            .to_string()
    };
    for (label, key) in [
        ("ulimit-n = ", "Ulimit-n"),
        ("<b>maxsock = </b> ", "Maxsock"),
        ("<b>maxconn = </b> ", "Maxconn"),
        ("<b>maxpipes = </b> ", "Maxpipes"),
    ] {
        let at = page.find(label).expect("the label") + label.len();
        let shown: String = page[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert_eq!(shown, value(key), "{label}");
    }
}

/// `human_time`'s forms: `0s`, `5m`, `1d2h`... (digits then a unit, one to four times).
fn is_age(text: &str) -> bool {
    let mut units = 0;
    let mut digits = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "dhms".contains(c) && digits > 0 {
            units += 1;
            digits = 0;
        } else {
            return false;
        }
    }
    units > 0 && digits == 0
}

/// Asserts two pages' tables are the same, cell by cell (`skip`: proxies whose tables are
/// not compared, their counters holding earlier pages of different sizes); the number of
/// tables compared.
fn assert_same_tables(ours: &str, theirs: &str, pids: (u32, u32), skip: &[&str]) -> usize {
    let keep = |tables: Vec<Table>| -> Vec<Table> {
        let mut out = Vec::new();
        let mut skipping = false;
        for t in tables {
            if t.class == "tbl" {
                // A title table starts a proxy; its rows' table follows it.
                if let Some(title) = t.rows.first().filter(|r| r.cells.len() == 2) {
                    let header = &title.cells[0].1;
                    skipping = skip
                        .iter()
                        .any(|name| header.starts_with(&format!("<a name=\"{name}\">")));
                }
            }
            if !skipping {
                out.push(t);
            }
        }
        out
    };
    let (a, b) = (keep(tables(ours)), keep(tables(theirs)));
    assert_eq!(a.len(), b.len(), "the number of tables");
    let mut differences = Vec::new();
    for (ta, tb) in a.iter().zip(&b) {
        assert_eq!(ta.class, tb.class, "a table's class");
        assert_eq!(ta.rows.len(), tb.rows.len(), "rows of {tb:?}");
        for (ra, rb) in ta.rows.iter().zip(&tb.rows) {
            assert_eq!(ra.class, rb.class, "a row's class: {rb:?}");
            assert_eq!(ra.cells.len(), rb.cells.len(), "cells of {rb:?}");
            // The row's name: its second cell (after the checkbox in admin mode).
            let name = rb
                .cells
                .iter()
                .map(|c| c.1.as_str())
                .find(|c| c.starts_with("<a name="));
            for (column, (ca, cb)) in ra.cells.iter().zip(&rb.cells).enumerate() {
                let (ca, cb) = (
                    (ca.0.clone(), normalised(&ca.1, pids.0)),
                    (cb.0.clone(), normalised(&cb.1, pids.1)),
                );
                let (ca, cb) = (display_options(ca), display_options(cb));
                if ca != cb && !haproxys_frontend_max_above(rb, column, &ca.1, &cb.1) {
                    differences.push(format!(
                        "row {:?} {:?}, cell {column}:\n  ours:    {ca:?}\n  HAProxy: {cb:?}",
                        rb.class,
                        name.map(|n| n.split('"').nth(1).unwrap_or_default()),
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    a.len()
}

/// Whether `column` of frontend row `row` is its "Max" sessions cell and HAProxy's reads one
/// above ours: HAProxy 2.6 with two threads now and then counts one connection twice in a
/// frontend's maximum (a lone connection to a TCP frontend showed `smax` 2 with `stot` 1 in
/// 1 of 15 plain HAProxy runs), so its maximum is no exact reference.
fn haproxys_frontend_max_above(row: &Row, column: usize, ours: &str, theirs: &str) -> bool {
    let name_at = row.cells.iter().position(|c| c.1.starts_with("<a name="));
    let is_max = row.class == "frontend" && name_at.is_some_and(|n| column == n + 6);
    let number = |text: &str| text.parse::<u64>().ok();
    is_max && matches!((number(ours), number(theirs)), (Some(a), Some(b)) if b == a + 1)
}

/// The display options' cell without HAProxy's scope box and JSON export (hapx serves
/// neither).
fn display_options((tag, html): (String, String)) -> (String, String) {
    if !html.starts_with("<b>Display option:</b>") {
        return (tag, html);
    }
    let lines: Vec<&str> = html.lines().filter(|l| !l.contains(";json")).collect();
    let html = lines
        .join("\n")
        .replace("<li><form method=\"GET\">Scope : <input value=\"\" name=\"scope\" size=\"8\" maxlength=\"20\" tabindex=\"1\"/></form>\n", "");
    (tag, html)
}

/// The text between `from` and `to` (included) in `page`.
fn between<'p>(page: &'p str, from: &str, to: &str) -> &'p str {
    let start = page
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} in the page"));
    let end = page[start..]
        .find(to)
        .map_or(page.len(), |e| start + e + to.len());
    &page[start..end]
}

fn page(addr: SocketAddr, path: &str) -> (String, String) {
    let (status, head, body) = http_get(addr, path, None);
    assert_eq!(status, 200, "{path}: {head}");
    (head, body)
}

#[test]
fn the_page_is_haproxys_cell_for_cell() {
    let Some((ours, theirs)) = side_by_side("the_page_is_haproxys_cell_for_cell") else {
        return;
    };
    let pids = (ours.proxy.pid(), theirs.proxy.pid());
    let (a, b) = (page(ours.admin, "/").1, page(theirs.admin, "/").1);
    assert_limits_as_shown(&a, &ours);
    assert_limits_as_shown(&b, &theirs);
    // The head and its style sheet, as HAProxy's.
    assert_eq!(
        between(&a, "<!DOCTYPE", "</head>"),
        between(&b, "<!DOCTYPE", "</head>")
    );
    // The title: the node and the description (`stats show-node`, `stats show-desc`).
    let title = |page: &str, pid: u32| normalised(between(page, "<h2>", "</h2>"), pid);
    assert_eq!(title(&a, pids.0), title(&b, pids.1));
    assert_eq!(
        title(&a, pids.0),
        "<h2>Statistics Report for pid PID on testnode: the test process</h2>"
    );
    // Tables: the process information (with the legend), then per proxy its title and its
    // rows; the proxies `web`, `app`, `tcpfe`, `tcpbe`, `stats` and `plain`.
    let compared = assert_same_tables(&a, &b, pids, &[]);
    assert_eq!(compared, 1 + 2 * 6);
    // The admin forms, each with its backend's id.
    let forms = |page: &str| -> Vec<String> {
        page.split("Choose the action")
            .skip(1)
            .map(|f| f[..f.find("</form>").unwrap_or(f.len())].to_string())
            .collect()
    };
    assert_eq!(forms(&a), forms(&b));
    assert_eq!(forms(&a).len(), 2, "app's and tcpbe's");
    // The rows' colours: those HAProxy gives each state.
    for class in [
        "active_up",
        "active_down",
        "maintain",
        "active_draining",
        "backup_no_check",
        "frontend",
        "backend",
    ] {
        let rows = |page: &str| page.matches(&format!("<tr class=\"{class}\">")).count();
        assert!(rows(&a) > 0, "a {class} row");
        assert_eq!(rows(&a), rows(&b), "{class} rows");
    }
}

#[test]
fn display_options_and_banners_are_haproxys() {
    let Some((ours, theirs)) = side_by_side("display_options_and_banners_are_haproxys") else {
        return;
    };
    let pids = (ours.proxy.pid(), theirs.proxy.pid());
    // The plain page: no version, no refresh; `;up` hides down and maintenance servers.
    let (a, b) = (page(ours.plain, "/s;up").1, page(theirs.plain, "/s;up").1);
    assert!(!a.contains("version"), "stats hide-version");
    assert!(!a.contains("<tr class=\"active_down\"><td class=ac>"));
    assert!(!a.contains("<tr class=\"maintain\">"));
    assert_same_tables(&a, &b, pids, &["plain"]);
    // The refreshing page's links keep `;up` and `;norefresh`; the banner of an action.
    let (head, a) = page(ours.admin, "/;up;norefresh;st=DONE");
    assert!(!head.to_ascii_lowercase().contains("\r\nrefresh:"));
    let b = page(theirs.admin, "/;up;norefresh;st=DONE").1;
    assert_eq!(
        between(&a, "<p><div class=", "<p>\n"),
        between(&b, "<p><div class=", "<p>\n")
    );
    assert_same_tables(&a, &b, pids, &["plain", "stats"]);
    let (head, a) = page(ours.admin, "/;up");
    assert!(head.to_ascii_lowercase().contains("\r\nrefresh: 10"));
    let b = page(theirs.admin, "/;up").1;
    assert_same_tables(&a, &b, pids, &["plain", "stats"]);
}

#[test]
fn a_posted_form_counts_in_the_bytes_in() {
    let Some((ours, theirs)) = side_by_side("a_posted_form_counts_in_the_bytes_in") else {
        return;
    };
    let form = "s=bk1&action=ready&b=app";
    let requests = [
        format!(
            "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            &form[..5],
            form.len() - 5,
            &form[5..]
        ),
    ];
    let bytes_in = |s: &Setup| -> Vec<String> {
        let csv = cli(&s.sock, "show stat");
        ["FRONTEND", "BACKEND"]
            .iter()
            .map(|row| stat_row(&csv, "stats", row).expect("the stats rows")["bin"].clone())
            .collect()
    };
    for request in &requests {
        for s in [&ours, &theirs] {
            let answer = http_raw(s.admin, request.as_bytes(), Duration::from_secs(5));
            assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
            // The page's own counts are made once the exchange is over.
            assert!(wait_until(Duration::from_secs(2), || cli(
                &s.sock,
                "show stat"
            )
            .contains("\nstats,FRONTEND,")));
        }
        assert!(
            wait_until(Duration::from_secs(2), || bytes_in(&ours)
                == bytes_in(&theirs)),
            "bytes in: {:?} and HAProxy's {:?}",
            bytes_in(&ours),
            bytes_in(&theirs)
        );
    }
    assert_ne!(bytes_in(&ours)[0], "0");
}

/// A proxy whose backend `trk` holds a tracking server for each state of its tracked one
/// (UP, DOWN, MAINT, NOLB) and one tracking a tracker; its stats page at `page`.
struct Trackers {
    proxy: Proxy,
    _web: HttpServer,
    sock: std::path::PathBuf,
    page: SocketAddr,
    _dir: hapx_tests::proxy::TestDir,
}

fn trackers_with(binary: &Path, test: &str) -> Trackers {
    let web = HttpServer::start("web");
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let (page, closed) = (free_port(), free_port());
    // `nolb`'s check passes conditionally (L7OKC): its server is NOLB. Checks are seldom:
    // one in flight as a page is made shows in it (its connection in use, `* L4OK`).
    let cfg = format!(
        "global\n  stats socket {sock} mode 600 level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         backend nolb\n  option httpchk GET /\n  http-check expect status 200 ok-status L7OKC\n\
         \x20 server s_nolb {web} check inter 2s rise 1 fall 1\n\
         backend trk\n  default-server inter 2s rise 1 fall 1\n\
         \x20 server s_up {web} check\n\
         \x20 server s_down 127.0.0.1:{closed} check\n\
         \x20 server s_maint {web} check disabled\n\
         \x20 server t_up {web} track trk/s_up\n\
         \x20 server t_down {web} track trk/s_down\n\
         \x20 server t_maint {web} track trk/s_maint\n\
         \x20 server t_nolb {web} track nolb/s_nolb\n\
         \x20 server t_chain {web} track trk/t_maint\n\
         listen stats\n  bind 127.0.0.1:{page}\n  stats uri /\n",
        sock = sock.display(),
        web = web.addr,
    );
    let page = SocketAddr::from((LO, page));
    let proxy = Proxy::start_with(binary.to_path_buf(), &dir, test, &cfg, page, &[]);
    Trackers {
        proxy,
        _web: web,
        sock,
        page,
        _dir: dir,
    }
}

/// The page from the tables of proxy `name` on: the process information before them holds
/// connection rates of the last second, which differ by when each page was read.
fn from_proxy<'p>(page: &'p str, name: &str) -> &'p str {
    let anchor = format!("<a name=\"{name}\"></a>");
    let at = page
        .find(&anchor)
        .unwrap_or_else(|| panic!("{name}'s tables"));
    let start = page[..at].rfind("<table").unwrap_or(at);
    &page[start..]
}

/// Waits until every `(server, column, value)` of backend `trk` shows in `show stat`.
fn settle(t: &Trackers, want: &[(&str, &str, &str)]) {
    assert!(
        wait_until(Duration::from_secs(5), || {
            let csv = cli(&t.sock, "show stat");
            want.iter().all(|(sv, column, value)| {
                stat_row(&csv, "trk", sv).is_some_and(|r| r[*column] == *value)
            })
        }),
        "the servers did not settle as {want:?}: {}",
        cli(&t.sock, "show stat")
    );
}

#[test]
fn trackers_in_every_state_are_shown_as_haproxys() {
    let test = "trackers_in_every_state_are_shown_as_haproxys";
    if !hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let ours = trackers_with(
        &hapx_tests::bins::path("hapx-proxy"),
        &format!("{test}-hapx"),
    );
    let theirs = trackers_with(Path::new(HAPROXY), &format!("{test}-haproxy"));
    let pids = (ours.proxy.pid(), theirs.proxy.pid());
    let compare = |want: &[(&str, &str, &str)]| {
        for t in [&ours, &theirs] {
            settle(t, want);
        }
        let (a, b) = (page(ours.page, "/").1, page(theirs.page, "/").1);
        // The stats proxy's own counters differ by the pages' sizes.
        let compared = assert_same_tables(
            from_proxy(&a, "nolb"),
            from_proxy(&b, "nolb"),
            pids,
            &["stats"],
        );
        assert_eq!(compared, 2 * 2, "nolb's and trk's tables");
        // Each tracker links to its tracked server in the check columns, whatever its state;
        // its status cell holds its status (`MAINT` without the `via`).
        for (tracker, tracked) in [
            ("t_up", "trk/s_up"),
            ("t_down", "trk/s_down"),
            ("t_maint", "trk/s_maint"),
            ("t_nolb", "nolb/s_nolb"),
            ("t_chain", "trk/t_maint"),
        ] {
            let row = between(&a, &format!("<a name=\"trk/{tracker}\">"), "</tr>\n");
            assert!(
                row.contains(&format!(
                    "<td class=ac colspan=3><a class=lfsb href=\"#{tracked}\">via {tracked}</a></td>"
                )),
                "{row}"
            );
            assert!(!row.contains("(via"), "{row}");
        }
        // `;up` hides the trackers that are down or in maintenance, as HAProxy's.
        let (a, b) = (page(ours.page, "/;up").1, page(theirs.page, "/;up").1);
        assert_same_tables(
            from_proxy(&a, "nolb"),
            from_proxy(&b, "nolb"),
            pids,
            &["stats"],
        );
    };
    compare(&[
        ("s_up", "status", "UP"),
        ("t_up", "status", "UP"),
        ("t_down", "status", "DOWN"),
        ("t_maint", "status", "MAINT (via trk/s_maint)"),
        ("t_nolb", "status", "NOLB"),
        ("t_chain", "status", "MAINT (via trk/t_maint)"),
    ]);
    // At run time: `t_down` follows its server into maintenance, `t_maint` and `t_chain`
    // out of it (once `s_maint`'s first check, made as it leaves maintenance, is over).
    // `s_down` is down already: its down transitions do not change.
    for t in [&ours, &theirs] {
        cli(&t.sock, "disable server trk/s_down");
        cli(&t.sock, "enable server trk/s_maint");
    }
    compare(&[
        ("t_down", "status", "MAINT (via trk/s_down)"),
        ("s_maint", "status", "UP"),
        ("s_maint", "check_status", "L4OK"),
        ("t_maint", "status", "UP"),
        ("t_chain", "status", "UP"),
        ("t_nolb", "status", "NOLB"),
    ]);
}
