//! Runtime API commands of review round 12, side by side with HAProxy 2.6: `clear counters
//! [all]` (which stats each resets), `show stat <iid> <type> <sid>` (which rows it keeps),
//! and the answers to commands that are wrong, partial or not run by hapx on an admin
//! socket (never "Permission denied" there).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use hapx_tests::proxy::{cli, csv_fields, free_port, http_get, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, side_by_side};

/// Columns the clock decides, or that hapx leaves to other findings (`h1_*`: round 12 #13).
fn compared(column: &str) -> bool {
    const TIMED: [&str; 11] = [
        "lastchg",
        "downtime",
        "lastsess",
        "qtime",
        "ctime",
        "rtime",
        "ttime",
        "rate",
        "req_rate",
        "conn_rate",
        "throttle",
    ];
    !TIMED.contains(&column) && !column.starts_with("h1_") && !column.is_empty()
}

/// A `show stat` answer as rows keyed by (pxname, svname), each column -> value.
type Rows = BTreeMap<(String, String), BTreeMap<String, String>>;

fn stat_rows(csv: &str) -> Rows {
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|line| {
            let cells = csv_fields(line);
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(cells)
                .filter(|(name, _)| compared(name))
                .map(|(name, value)| (name.clone(), value))
                .collect();
            ((row["pxname"].clone(), row["svname"].clone()), row)
        })
        .collect()
}

fn config(sock: &std::path::Path, port: u16, echo: SocketAddr) -> String {
    let e = echo.port();
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server a 127.0.0.1:{e}\n  server c 127.0.0.1:{e}\n\
         backend other\n  server z 127.0.0.1:{e}\n",
        sock.display()
    )
}

/// Sends two requests, then runs `command` and reads `show stat`: (answer, stats after).
fn counters_after(sock: &std::path::Path, front: SocketAddr, command: &str) -> (String, Rows) {
    assert!(hapx_tests::proxy::no_connection_open(sock));
    for _ in 0..2 {
        assert_eq!(http_get(front, "/", None).0, 200);
    }
    let before = stat_rows(&cli(sock, "show stat"));
    assert_ne!(before[&("fe".into(), "FRONTEND".into())]["stot"], "0");
    let answer = cli(sock, command);
    (answer, stat_rows(&cli(sock, "show stat")))
}

fn clear_counters_as_haproxy(test: &str, command: &str) {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let echo = EchoServer::start("e");
    let port = free_port();
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side(test, &config(&sock, port, echo.addr), front, |front| {
        counters_after(&sock, front, command)
    });
    let Some(theirs) = theirs else { return };
    assert_eq!(ours.0, theirs.0, "{command}: the answer");
    let differing: Vec<String> = differing_cells(&ours.1, &theirs.1);
    assert!(
        differing.is_empty(),
        "{command}: hapx/HAProxy {differing:?}"
    );
}

/// The cells `ours` and `theirs` fill differently: `pxname/svname column: ours/theirs`.
fn differing_cells(ours: &Rows, theirs: &Rows) -> Vec<String> {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the rows"
    );
    let mut out = Vec::new();
    for ((px, sv), row) in ours {
        let their_row = &theirs[&(px.clone(), sv.clone())];
        for (column, value) in row {
            let theirs = their_row.get(column).map_or("(none)", String::as_str);
            if value != theirs {
                out.push(format!("{px}/{sv} {column}: {value}/{theirs}"));
            }
        }
    }
    out
}

#[test]
fn clear_counters_resets_the_maxima_as_haproxy() {
    clear_counters_as_haproxy("cli-review-clear", "clear counters");
}

#[test]
fn clear_counters_all_resets_every_counter_as_haproxy() {
    clear_counters_as_haproxy("cli-review-clear-all", "clear counters all");
}

/// Both forms of `clear counters` zero the longest queues (`qmax` of the backend and of
/// its server), as HAProxy's: two requests queued behind a held one on a `maxconn 1` server.
#[test]
fn clear_counters_zeroes_the_longest_queues_as_haproxy() {
    use hapx_tests::proxy_lifecycle::{SlowServer, request};
    use std::sync::atomic::Ordering::SeqCst;
    let test = "cli-review-clear-qmax";
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let server = SlowServer::start("a");
    let port = free_port();
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n  timeout queue 10s\n\
         frontend fe\n  bind {front}\n  default_backend b\n\
         backend b\n  server a {} maxconn 1\n",
        sock.display(),
        server.addr
    );
    let queues = |sock: &std::path::Path, column: &str| -> Vec<String> {
        let rows = stat_rows(&cli(sock, "show stat"));
        ["BACKEND", "a"]
            .iter()
            .map(|sv| {
                format!(
                    "{sv} {column}={}",
                    rows[&("b".into(), sv.to_string())][column]
                )
            })
            .collect()
    };
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let before = server.requests.load(SeqCst);
        let _held = request(front, "/held");
        hapx_tests::proxy::wait_until(std::time::Duration::from_secs(5), || {
            server.requests.load(SeqCst) > before
        });
        let _queued = [request(front, "/"), request(front, "/")];
        // Not asserted here: the maxima below are.
        hapx_tests::proxy::wait_until(std::time::Duration::from_secs(5), || {
            queues(&sock, "qcur").join(" ").matches("=2").count() == 1
        });
        let mut seen = vec![format!("queued: {:?}", queues(&sock, "qmax"))];
        for command in ["clear counters", "clear counters all"] {
            server.release();
            cli(&sock, command);
            seen.push(format!("{command}: {:?}", queues(&sock, "qmax")));
        }
        seen
    });
    let expected = [
        "queued: [\"BACKEND qmax=2\", \"a qmax=0\"]",
        "clear counters: [\"BACKEND qmax=0\", \"a qmax=0\"]",
        "clear counters all: [\"BACKEND qmax=0\", \"a qmax=0\"]",
    ];
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The (pxname, svname) of the rows `show stat ARGS` prints, and its answer when it is
/// no CSV.
fn rows_shown(sock: &std::path::Path, args: &str) -> Vec<String> {
    let answer = cli(sock, &format!("show stat {args}"));
    if !answer.starts_with("# pxname") {
        return vec![answer];
    }
    answer
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|line| csv_fields(line)[..2].join("/"))
        .collect()
}

#[test]
fn show_stat_filters_rows_as_haproxy() {
    const FILTERS: [&str; 10] = [
        "-1 4 -1",
        "-1 2 -1",
        "-1 1 -1",
        "2 -1 -1",
        "b -1 2",
        "other 6 -1",
        "fe 1 -1",
        "nosuch -1 -1",
        "9 -1 -1",
        "3x -1 -1",
    ];
    let dir = temp_dir("cli-review-filters");
    let sock = dir.join("admin.sock");
    let echo = EchoServer::start("e");
    let port = free_port();
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side(
        "cli-review-filters",
        &config(&sock, port, echo.addr),
        front,
        |_| {
            FILTERS
                .iter()
                .map(|args| rows_shown(&sock, args))
                .collect::<Vec<_>>()
        },
    );
    assert_eq!(ours[0], ["b/a", "b/c", "other/z"], "servers only");
    let Some(theirs) = theirs else { return };
    for ((args, ours), theirs) in FILTERS.iter().zip(&ours).zip(&theirs) {
        assert_eq!(ours, theirs, "show stat {args}");
    }
}

#[test]
fn wrong_or_partial_commands_get_haproxys_answers() {
    const COMMANDS: [&str; 9] = [
        "show cli level",
        "disable frontend",
        "enable frontend",
        "set server",
        "set server b/",
        "set server /a state ready",
        "set server b state ready",
        "set server b/a weight",
        "clear counters foo",
    ];
    let dir = temp_dir("cli-review-answers");
    let sock = dir.join("admin.sock");
    let echo = EchoServer::start("e");
    let port = free_port();
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side(
        "cli-review-answers",
        &config(&sock, port, echo.addr),
        front,
        |_| {
            let answers: Vec<String> = COMMANDS.iter().map(|c| cli(&sock, c)).collect();
            // A command hapx does not run is not refused for the level on an admin socket.
            let unrun = cli(&sock, "set timeout cli 5");
            (answers, unrun)
        },
    );
    assert!(
        !ours.1.contains("Permission denied"),
        "set timeout cli: {}",
        ours.1
    );
    let Some(theirs) = theirs else { return };
    for ((command, ours), theirs) in COMMANDS.iter().zip(&ours.0).zip(&theirs.0) {
        assert_eq!(ours, theirs, "{command}");
    }
}

/// A JSON answer with each field's value left out (`"value":{"type":"u32","value":0}` ->
/// `u32`): its shape, which the values the clock decides do not change.
fn json_shape(answer: &str) -> String {
    const VALUE: &str = "\"value\":{\"type\":\"";
    let mut out = String::new();
    let mut rest = answer;
    while let Some(at) = rest.find(VALUE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + VALUE.len()..];
        let (kind, after) = after.split_once('"').unwrap_or((after, ""));
        out.push_str(kind);
        let value = after.strip_prefix(",\"value\":").unwrap_or(after);
        rest = skip_json_value(value).strip_prefix('}').unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// What follows the JSON number or string `text` begins with.
fn skip_json_value(text: &str) -> &str {
    let Some(string) = text.strip_prefix('"') else {
        return text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
    };
    let mut escaped = false;
    for (at, c) in string.char_indices() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '"') => return &string[at + 1..],
            _ => escaped = false,
        }
    }
    ""
}

#[test]
fn show_stat_and_info_json_are_haproxys() {
    const COMMANDS: [&str; 3] = ["show stat json", "show stat -1 4 -1 json", "show info json"];
    let dir = temp_dir("cli-review-json");
    let sock = dir.join("admin.sock");
    let echo = EchoServer::start("e");
    let port = free_port();
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let (ours, theirs) = side_by_side(
        "cli-review-json",
        &config(&sock, port, echo.addr),
        front,
        |front| {
            assert_eq!(http_get(front, "/", None).0, 200);
            COMMANDS
                .iter()
                .map(|c| json_shape(&cli(&sock, c)))
                .collect::<Vec<_>>()
        },
    );
    assert!(
        ours[0].starts_with("[[{\"objType\":\"Frontend\""),
        "{}",
        ours[0]
    );
    let Some(theirs) = theirs else { return };
    for ((command, ours), theirs) in COMMANDS.iter().zip(&ours).zip(&theirs) {
        assert_eq!(ours, theirs, "{command}");
    }
}
