//! Agent checks' display side by side with HAProxy 2.6, every field in every state: agents
//! the test drives connection by connection (each check waits for its answer: no timing in
//! the assertions) and, for each answer, `show stat`'s whole server row, `show servers
//! state`, the stats page's server row and the Prometheus server families. A check under
//! way shows `* ` before the last status with its detail cleared (`* INI` before the first
//! answer) and the in-progress bit in `srv_agent_state`; `agent_duration` is the real time
//! the agent took.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hapx_tests::proxy::{TestDir, cli, csv_fields, free_port, http_get, temp_dir, wait_until};
use hapx_tests::proxy_rules::side_by_side;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long a test waits for a proxy to ask again (a loaded machine is slow, never this slow).
const PATIENCE: Duration = Duration::from_secs(20);

/// An agent (or a `tcp-check` target) the test drives: the proxy's n-th connection of a
/// run (from 0) gets the answer set for n, and waits for it while there is none (its check
/// then stays under way).
struct Agent {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Shared {
    script: Mutex<Script>,
    changed: Condvar,
}

#[derive(Default)]
struct Script {
    /// Which proxy's run. Connections of an earlier one stay held (the proxy that made them
    /// asks nothing more before it stops) until the agent is dropped.
    run: usize,
    stopped: bool,
    accepted: usize,
    answers: HashMap<usize, String>,
}

impl Agent {
    fn start() -> Agent {
        let listener = TcpListener::bind((LO, 0)).expect("binding an agent");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking agent");
        let addr = listener.local_addr().expect("its address");
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok((conn, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let (run, n) = {
                    let mut script = sh.script.lock().unwrap();
                    script.accepted += 1;
                    (script.run, script.accepted - 1)
                };
                sh.changed.notify_all();
                let sh = sh.clone();
                thread::spawn(move || serve(&sh, conn, run, n));
            }
        });
        Agent { addr, shared, stop }
    }

    /// A new run, to set before its proxy starts (and after the last one's traffic):
    /// connections counted from 0, `answers` (connection, line) set at once.
    fn begin(&self, answers: &[(usize, &str)]) {
        let mut script = self.shared.script.lock().unwrap();
        script.run += 1;
        script.accepted = 0;
        script.answers = answers.iter().map(|(n, a)| (*n, a.to_string())).collect();
        drop(script);
        self.shared.changed.notify_all();
    }

    /// Connection `n` gets `line` ("": closed without a word).
    fn answer(&self, n: usize, line: &str) {
        let mut script = self.shared.script.lock().unwrap();
        script.answers.insert(n, line.to_string());
        drop(script);
        self.shared.changed.notify_all();
    }

    /// Waits until `count` connections were accepted in this run; when it saw them.
    fn accepted(&self, count: usize) -> Instant {
        let script = self.shared.script.lock().unwrap();
        let (script, timeout) = self
            .shared
            .changed
            .wait_timeout_while(script, PATIENCE, |s| s.accepted < count)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "the proxy did not connect {count} times (only {})",
            script.accepted
        );
        Instant::now()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.shared.script.lock().unwrap().stopped = true;
        self.shared.changed.notify_all();
    }
}

/// Connection `n` of run `run`: waits for its answer, sends it, and lets the proxy close
/// first (closing on unread bytes would reset the connection before the answer is read).
fn serve(shared: &Shared, mut conn: TcpStream, run: usize, n: usize) {
    let script = shared.script.lock().unwrap();
    let script = shared
        .changed
        .wait_while(script, |s| {
            !s.stopped && (s.run != run || !s.answers.contains_key(&n))
        })
        .unwrap();
    if script.stopped {
        return;
    }
    let answer = script.answers[&n].clone();
    drop(script);
    let _ = conn.write_all(answer.as_bytes());
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sink = [0u8; 512];
    while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
}

/// A proxy configuration: a stats socket, the stats page and the Prometheus exporter on
/// `port`, backend `b` with `servers`.
fn config(sock: &Path, port: u16, servers: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n  timeout check 30s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n\
         \x20 http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         \x20 stats enable\n  stats uri /stats\n  default_backend b\n\
         backend b\n  option tcp-check\n  tcp-check expect string OK\n{servers}",
        sock.display()
    )
}

/// Everything both proxies show of one server, what varies by the clock made the same:
/// ages as `T`, durations as `N` (or whether they lasted at least the time the test held
/// the agent).
#[derive(Debug, PartialEq)]
struct Shown {
    /// `show stat`'s row, column by column.
    row: Vec<(String, String)>,
    /// Its `show servers state` line.
    state: String,
    /// Its row of the stats page.
    html: String,
    /// Its Prometheus samples of the families hapx exposes for servers' states.
    metrics: Vec<String>,
}

/// What `sock` and the page at `front` show of `server`; `held`: how long the test held the
/// agent's last answer back (its duration must be at least that).
fn shown(sock: &Path, front: SocketAddr, server: &str, held: Option<Duration>) -> Shown {
    Shown {
        row: stat_row(sock, server, held),
        state: servers_state(sock, server),
        html: html_row(front, server),
        metrics: metrics(front, server),
    }
}

fn stat_row(sock: &Path, server: &str, held: Option<Duration>) -> Vec<(String, String)> {
    let csv = cli(sock, "show stat");
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .map(String::from)
        .collect();
    let fields = lines
        .map(csv_fields)
        .find(|f| f.first().is_some_and(|p| p == "b") && f.get(1).is_some_and(|s| s == server))
        .unwrap_or_default();
    header
        .into_iter()
        .zip(fields)
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| {
            let value = match name.as_str() {
                "lastchg" | "downtime" if !value.is_empty() => "T".into(),
                "check_duration" if !value.is_empty() => "N".into(),
                "agent_duration" => duration(&value, held),
                _ => value,
            };
            (name, value)
        })
        .collect()
}

/// A duration column: empty, `N`, or whether it covers `held`.
fn duration(value: &str, held: Option<Duration>) -> String {
    match (value.parse::<u128>(), held) {
        (Err(_), _) => value.to_string(),
        (Ok(_), None) => "N".into(),
        (Ok(ms), Some(held)) if ms >= held.as_millis() => "N, at least the time held".into(),
        (Ok(ms), Some(held)) => format!("{ms} ms, held {} ms", held.as_millis()),
    }
}

/// `show servers state b`'s line of `server`, its time since the last change as `T`.
fn servers_state(sock: &Path, server: &str) -> String {
    let out = cli(sock, "show servers state b");
    let line = out
        .lines()
        .find(|l| l.split(' ').nth(3) == Some(server))
        .unwrap_or_default();
    let mut words: Vec<&str> = line.split(' ').collect();
    if words.len() > 9 {
        words[9] = "T";
    }
    words.join(" ")
}

/// `server`'s row of the stats page, ages as `T` and durations as `N`.
fn html_row(front: SocketAddr, server: &str) -> String {
    let (_, _, page) = http_get(front, "/stats", None);
    let anchor = format!("<a name=\"b/{server}\">");
    let Some(at) = page.find(&anchor) else {
        return String::new();
    };
    let start = page[..at].rfind("<tr").unwrap_or(at);
    // (Its tooltips' tables hold rows too: a row of the page ends its line.)
    let end = page[at..].find("</tr>\n").map_or(page.len(), |e| at + e);
    masked_times(&page[start..end])
}

/// `html` with its durations (`in 12ms`) as `in Nms` and its ages (`>1m5s `, `>3s<`) as `T`.
fn masked_times(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("in ") {
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 && after[digits..].starts_with("ms") {
                out.push_str("in Nms");
                rest = &after[digits + 2..];
                continue;
            }
        }
        if c == '>' {
            let after = &rest[1..];
            let age = after.len()
                - after
                    .trim_start_matches(|c: char| c.is_ascii_alphanumeric())
                    .len();
            if age > 0 && is_age(&after[..age]) {
                out.push_str(">T");
                rest = &after[age..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// HAProxy's `human_time` forms: `0s`, `5m`, `1d2h`.
fn is_age(text: &str) -> bool {
    let mut digits = 0;
    for c in text.chars() {
        match c {
            '0'..='9' => digits += 1,
            'd' | 'h' | 'm' | 's' if digits > 0 => digits = 0,
            _ => return false,
        }
    }
    digits == 0 && !text.is_empty()
}

/// The Prometheus samples of `server` in the families that show its state and weights.
fn metrics(front: SocketAddr, server: &str) -> Vec<String> {
    const FAMILIES: [&str; 4] = [
        "haproxy_server_status{",
        "haproxy_server_weight{",
        "haproxy_server_uweight{",
        "haproxy_server_check_status{",
    ];
    let (_, _, text) = http_get(front, "/metrics", None);
    let label = format!("server=\"{server}\"");
    let mut samples: Vec<String> = text
        .lines()
        .filter(|l| FAMILIES.iter().any(|f| l.starts_with(f)) && l.contains(&label))
        .map(String::from)
        .collect();
    samples.sort();
    samples
}

/// The column `name` of a [`Shown`] row.
fn column<'a>(shown: &'a Shown, name: &str) -> &'a str {
    shown
        .row
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v)
}

/// Both proxies showed the same at each step (`label`, what was shown); the differences
/// named when not.
fn agree<L: std::fmt::Debug + PartialEq>(ours: &[(L, Shown)], theirs: Option<Vec<(L, Shown)>>) {
    let Some(theirs) = theirs else {
        return;
    };
    assert_eq!(ours.len(), theirs.len());
    for ((label, mine), (their_label, haproxy)) in ours.iter().zip(&theirs) {
        assert_eq!(label, their_label);
        let columns: Vec<_> = (mine.row.iter().zip(&haproxy.row))
            .filter(|(a, b)| a != b)
            .collect();
        assert!(
            columns.is_empty(),
            "{label:?}: columns (hapx-proxy, HAProxy) {columns:?}"
        );
        assert_eq!(mine.state, haproxy.state, "{label:?}: show servers state");
        assert_eq!(mine.html, haproxy.html, "{label:?}: stats page");
        assert_eq!(mine.metrics, haproxy.metrics, "{label:?}: Prometheus");
        assert_eq!(mine, haproxy, "{label:?}");
    }
}

/// The test's directory and stats socket.
fn lab(test: &str) -> (TestDir, std::path::PathBuf) {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    (dir, sock)
}

/// One agent asked again and again (`agent-inter 100`), each check held until the test
/// answers it: before the first answer and after each one, the next check is under way
/// (`* ` and the last status, its detail cleared, its duration the real one).
#[test]
fn an_agent_under_way_shows_its_last_answer_starred_as_haproxy() {
    let (_dir, sock) = lab("agent-under-way");
    let agent = Agent::start();
    // And a health check: its first passes, its second stays under way.
    let health = Agent::start();
    let port = free_port();
    let servers = format!(
        "  server s1 127.0.0.1:9 weight 20 agent-check agent-port {} agent-inter 100\n\
         \x20 server c1 127.0.0.1:9 check port {} inter 100 rise 1\n",
        agent.addr.port(),
        health.addr.port()
    );
    let conf = config(&sock, port, &servers);
    let answers = [
        "up 50%\n",
        "drain\n",
        "down #maintenance window\n",
        "maint\n",
        "ready\n",
        "fail\n",
        "up\n",
        "stopped\n",
        "up 100% maxconn:5\n",
        "bogus\n",
        "",
        "up maxconn:0\n",
    ];
    let front = SocketAddr::from((LO, port));
    agent.begin(&[]);
    health.begin(&[(0, "OK\n")]);
    let (ours, theirs) = side_by_side("agent-under-way", &conf, front, |front| {
        health.accepted(2);
        let checked = shown(&sock, front, "c1", None);
        let mut seen_at = agent.accepted(1);
        let mut seen = vec![
            ("health check under way", checked),
            ("before any answer", shown(&sock, front, "s1", None)),
        ];
        for (n, line) in answers.iter().enumerate() {
            let held = seen_at.elapsed();
            agent.answer(n, line);
            seen_at = agent.accepted(n + 2);
            seen.push((line, shown(&sock, front, "s1", Some(held))));
        }
        agent.begin(&[]);
        health.begin(&[(0, "OK\n")]);
        seen
    });
    let at = |line: &str| {
        &ours
            .iter()
            .find(|(l, _)| *l == line)
            .unwrap_or_else(|| panic!("no {line:?} in {ours:?}"))
            .1
    };
    let first = at("before any answer");
    let columns = [
        "agent_status",
        "agent_code",
        "agent_duration",
        "last_agt",
        "agent_desc",
    ];
    assert_eq!(
        columns.map(|c| column(first, c)),
        ["* INI", "", "N", "", "Initializing"],
        "{first:?}"
    );
    // In progress (1), configured (2), enabled (4), an agent (0x10).
    assert_eq!(first.state.split(' ').nth(14), Some("23"), "{first:?}");
    let down = at("down #maintenance window\n");
    assert_eq!(
        columns.map(|c| column(down, c)),
        [
            "* L7STS",
            "0",
            "N, at least the time held",
            "",
            "Layer7 wrong status"
        ],
        "{down:?}"
    );
    assert_eq!(column(down, "status"), "DOWN (agent)");
    assert!(
        down.html
            .contains("<u> * L7STS/0 in Nms<div class=tips>Layer7 wrong status</div></u>"),
        "{down:?}"
    );
    assert_eq!(column(at(""), "agent_status"), "* L7RSP");
    // A health check under way: its last result's detail cleared, that result unknown (0)
    // in `show servers state`, the in-progress bit in its check state.
    let checked = at("health check under way");
    let columns = ["check_status", "last_chk", "check_desc"];
    assert_eq!(
        columns.map(|c| column(checked, c)),
        ["* L7OK", "", "Layer7 check passed"],
        "{checked:?}"
    );
    let state: Vec<&str> = checked.state.split(' ').collect();
    assert_eq!(state[10..14], ["15", "0", "3", "7"], "{checked:?}");
    agree(&ours, theirs);
}

/// One server per answer, each agent asked once (`agent-inter 60s`, the proxies ask again
/// long after the test), and a health check with it: every field once the answers are in,
/// then with the agent of `off` disabled.
#[test]
fn each_agent_answer_shows_as_haproxy_once_answered() {
    let (_dir, sock) = lab("agent-answered");
    let cases = [
        ("up50", "up 50%\n"),
        ("drain", "drain\n"),
        ("down", "down #maintenance window\n"),
        ("maint", "maint\n"),
        ("fail", "fail\n"),
        ("bogus", "bogus 25%\n"),
        ("empty", ""),
        ("checked", "down #window\n"),
        ("addr", "up\n"),
        ("off", "up\n"),
        ("backup", "up 50% maxconn:5\n"),
        ("disabled", "up\n"),
        ("readied", "ready\n"),
    ];
    let agents: Vec<Agent> = cases.iter().map(|_| Agent::start()).collect();
    let health = Agent::start();
    let refused = free_port();
    let mut servers = String::new();
    for ((name, _), agent) in cases.iter().zip(&agents) {
        let port = agent.addr.port();
        let line = match *name {
            "checked" => format!(
                "  server {name} 127.0.0.1:9 weight 20 check port {} inter 60s rise 1 agent-check agent-port {port} agent-inter 60s\n",
                health.addr.port()
            ),
            "addr" => format!(
                "  server {name} 127.0.0.2:9 weight 20 agent-check agent-addr 127.0.0.1 agent-port {port} agent-inter 60s\n"
            ),
            _ => {
                let options = match *name {
                    "backup" => "backup",
                    "disabled" | "readied" => "disabled",
                    _ => "",
                };
                format!(
                    "  server {name} 127.0.0.1:9 weight 20 {options} agent-check agent-port {port} agent-inter 60s\n"
                )
            }
        };
        servers.push_str(&line);
    }
    servers.push_str(&format!(
        "  server refused 127.0.0.1:9 agent-check agent-port {refused} agent-inter 60s\n"
    ));
    let port = free_port();
    // HAProxy spreads each check's first run over its own interval (`max-spread-checks` at
    // most): all agents are asked within a second of the start.
    let conf =
        config(&sock, port, &servers).replace("global\n", "global\n  max-spread-checks 1s\n");
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).chain(["refused"]).collect();
    let front = SocketAddr::from((LO, port));
    let begin = || {
        for ((_, line), agent) in cases.iter().zip(&agents) {
            agent.begin(&[(0, line)]);
        }
        health.begin(&[(0, "OK\n")]);
    };
    begin();
    let (ours, theirs) = side_by_side("agent-answered", &conf, front, |front| {
        let answered = || {
            let csv = cli(&sock, "show stat");
            names.iter().all(|name| {
                let row = hapx_tests::proxy::stat_row(&csv, "b", name).unwrap_or_default();
                let agent = row.get("agent_status").map_or("", String::as_str);
                let check = row.get("check_status").map_or("", String::as_str);
                !["", "INI", "* INI"].contains(&agent) && !["INI", "* INI"].contains(&check)
            })
        };
        assert!(
            wait_until(PATIENCE, answered),
            "the agents' answers did not all show: {}",
            cli(&sock, "show stat")
        );
        let mut seen: Vec<(String, Shown)> = names
            .iter()
            .map(|name| (name.to_string(), shown(&sock, front, name, None)))
            .collect();
        let answer = cli(&sock, "disable agent b/off");
        seen.push((
            format!("off, agent disabled{answer}"),
            shown(&sock, front, "off", None),
        ));
        begin();
        seen
    });
    let at = |name: &str| &ours.iter().find(|(n, _)| n == name).expect("a server").1;
    assert_eq!(column(at("up50"), "weight"), "10");
    assert_eq!(
        column(at("down"), "last_agt"),
        "via agent : down (maintenance window)"
    );
    assert_eq!(column(at("checked"), "status"), "DOWN (agent)");
    assert_eq!(column(at("checked"), "check_status"), "L7OK");
    assert_eq!(column(at("refused"), "agent_status"), "L4CON");
    let agent_addr = format!(" 127.0.0.1 {}", agents[8].addr.port());
    assert!(at("addr").state.ends_with(&agent_addr), "{:?}", at("addr"));
    assert_eq!(column(at("off, agent disabled\n"), "agent_status"), "");
    agree(&ours, theirs);
}

/// A server tracking one that has an agent and no health check, and taken DOWN by its own
/// agent: HAProxy reads the check and agent part of its status from the end of its `track`
/// chain whatever that has (`DOWN 1/3`: the tracked server's check counts, its agent not
/// down), and so for a server tracking the tracker.
#[test]
fn a_tracker_down_by_its_agent_shows_the_tracked_servers_probes_as_haproxy() {
    let (_dir, sock) = lab("track-agent");
    let tracked = Agent::start();
    let own = Agent::start();
    let port = free_port();
    let servers = format!(
        "  server a 127.0.0.1:9 agent-check agent-port {} agent-inter 60s\n\
         \x20 server t 127.0.0.1:9 track a agent-check agent-port {} agent-inter 60s\n\
         \x20 server t2 127.0.0.1:9 track t\n",
        tracked.addr.port(),
        own.addr.port()
    );
    let conf =
        config(&sock, port, &servers).replace("global\n", "global\n  max-spread-checks 1s\n");
    let front = SocketAddr::from((LO, port));
    let begin = || {
        tracked.begin(&[(0, "up\n")]);
        own.begin(&[(0, "down #own agent\n")]);
    };
    begin();
    let names = ["a", "t", "t2"];
    let (ours, theirs) = side_by_side("track-agent", &conf, front, |front| {
        let answered = || {
            let csv = cli(&sock, "show stat");
            ["a", "t"].iter().all(|name| {
                let row = hapx_tests::proxy::stat_row(&csv, "b", name).unwrap_or_default();
                let agent = row.get("agent_status").map_or("", String::as_str);
                !["", "INI", "* INI"].contains(&agent)
            })
        };
        assert!(
            wait_until(PATIENCE, answered),
            "the agents' answers did not both show: {}",
            cli(&sock, "show stat")
        );
        let seen: Vec<(&str, Shown)> = names
            .iter()
            .map(|name| (*name, shown(&sock, front, name, None)))
            .collect();
        begin();
        seen
    });
    let at = |name: &str| &ours.iter().find(|(n, _)| *n == name).expect("a server").1;
    assert_eq!(column(at("a"), "status"), "no check");
    assert_eq!(column(at("t"), "agent_status"), "L7STS");
    assert_eq!(column(at("t"), "status"), "DOWN 1/3");
    assert_eq!(column(at("t2"), "status"), "DOWN 1/3");
    // The stats page's row class too: `active_going_up` for any `DOWN n/m`.
    agree(&ours, theirs);
}
