//! Agent checks side by side with HAProxy 2.6: a scripted agent on loopback answers each
//! connection with the line of the moment; after each answer both proxies must show the
//! same server state, weight and agent columns in `show stat`, log the same messages, and
//! share traffic the same way (a weight the agent set, a drain). The runtime API's agent
//! commands answer and act as HAProxy's.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{
    NamedServer, TestDir, blank_check_duration, cli, free_port, stat_row, tally, temp_dir,
    wait_until,
};
use hapx_tests::proxy_rules::side_by_side;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// An agent: answers every connection with its current line (after reading what the proxy
/// sends), counting the connections it answered.
struct Agent {
    addr: SocketAddr,
    line: Arc<Mutex<String>>,
    answered: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
    /// Resets each connection after answering.
    reset: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Agent {
    fn start() -> Agent {
        let listener = TcpListener::bind((LO, 0)).expect("binding the agent");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking agent");
        let addr = listener.local_addr().expect("its address");
        let line = Arc::new(Mutex::new("up\n".to_string()));
        let answered = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reset = Arc::new(AtomicBool::new(false));
        let (l, a, r, s, rst) = (
            line.clone(),
            answered.clone(),
            received.clone(),
            stop.clone(),
            reset.clone(),
        );
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                // `agent-send` is a line: read it before answering.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut got = Vec::new();
                let mut buf = [0u8; 256];
                while !got.contains(&b'\n') {
                    match conn.read(&mut buf) {
                        Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                r.lock().unwrap().extend_from_slice(&got);
                let answer = l.lock().unwrap().clone();
                let _ = conn.write_all(answer.as_bytes());
                if rst.load(Ordering::SeqCst) {
                    let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
                }
                a.fetch_add(1, Ordering::SeqCst);
            }
        });
        Agent {
            addr,
            line,
            answered,
            received,
            reset,
            stop,
        }
    }

    /// Answers `line` from now on, and returns once the proxy has acted on it: a proxy asks
    /// its agent again only after it applied the last answer, so the third connection
    /// answered since (the first may have been answered before the change) proves the
    /// second, which said `line`, was applied, however slow the machine.
    fn say(&self, line: &str) {
        *self.line.lock().unwrap() = line.to_string();
        self.asked_again(3, line);
    }

    /// Waits until the agent has answered `count` more connections.
    fn asked_again(&self, count: usize, after: &str) {
        let seen = self.answered.load(Ordering::SeqCst);
        assert!(
            wait_until(Duration::from_secs(5), || self
                .answered
                .load(Ordering::SeqCst)
                >= seen + count),
            "the agent was not asked again after {after:?}"
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A syslog sink whose messages are taken as they come.
struct Logs(UdpSocket);

impl Logs {
    fn bind() -> Logs {
        let s = UdpSocket::bind((LO, 0)).expect("binding a syslog socket");
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .expect("a read timeout");
        Logs(s)
    }

    fn addr(&self) -> SocketAddr {
        self.0.local_addr().expect("its address")
    }

    /// The messages received so far (after `]: `) about servers and agents, durations as
    /// `Nms` (health check and traffic lines left out).
    fn take(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.0.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            let msg = text.split_once("]: ").map_or(&*text, |(_, m)| m).trim_end();
            if ["Server ", "backend ", "Agent check"]
                .iter()
                .any(|p| msg.starts_with(p))
            {
                out.push(blank_check_duration(msg));
            }
        }
        out
    }
}

/// What `show stat` says of a server's state and agent.
fn server_state(sock: &Path, server: &str) -> String {
    let cols = [
        "status",
        "weight",
        "agent_status",
        "agent_code",
        "last_agt",
        "agent_desc",
        "agent_rise",
        "agent_fall",
        "agent_health",
        "check_health",
        "slim",
    ];
    stat_columns(sock, server, &cols)
}

/// A server's `cols` in `show stat`, joined by commas.
fn stat_columns(sock: &Path, server: &str, cols: &[&str]) -> String {
    let row = settled(|| {
        let csv = cli(sock, "show stat");
        let row = stat_row(&csv, "b", server).unwrap_or_default();
        // HAProxy marks a check under way with `* ` (and has cleared its detail).
        let running = ["check_status", "agent_status"]
            .iter()
            .any(|c| row.get(*c).is_some_and(|v| v.starts_with("* ")));
        (row, running)
    });
    cols.iter()
        .map(|c| row.get(*c).cloned().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}

/// `show servers state` of a server, without its time since the last change.
fn servers_state(sock: &Path, server: &str) -> String {
    settled(|| {
        let out = cli(sock, "show servers state b");
        let line = out
            .lines()
            .find(|l| l.split(' ').nth(3) == Some(server))
            .unwrap_or_default();
        let mut words: Vec<&str> = line.split(' ').collect();
        if words.len() > 9 {
            words[9] = "T";
        }
        // The check and agent state flags: 1 while a check is under way (its result
        // unknown yet).
        let running = [13, 14].iter().any(|&i| {
            words
                .get(i)
                .and_then(|w| w.parse::<u32>().ok())
                .is_some_and(|flags| flags & 1 == 1)
        });
        (words.join(" "), running)
    })
}

/// What `look` sees once no check is under way (HAProxy shows a check in progress, hapx
/// only finished ones): a few tries, the last one taken as it is.
fn settled<T>(look: impl Fn() -> (T, bool)) -> T {
    // (An agent without `agent-send` waits half a second before it answers.)
    for _ in 0..200 {
        let (seen, running) = look();
        if !running {
            return seen;
        }
        thread::sleep(Duration::from_millis(5));
    }
    look().0
}

fn config(sock: &Path, logs: SocketAddr, port: u16, servers: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  log {logs} local0\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n  timeout check 2s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  balance roundrobin\n{servers}",
        sock.display()
    )
}

/// A test's surroundings: its directory and stats socket, a syslog sink, the agent, two
/// servers answering with their names.
struct Lab {
    _dir: TestDir,
    sock: PathBuf,
    logs: Logs,
    agent: Agent,
    servers: [NamedServer; 2],
}

impl Lab {
    fn new(test: &str) -> Lab {
        let dir = temp_dir(test);
        Lab {
            sock: dir.join("admin.sock"),
            _dir: dir,
            logs: Logs::bind(),
            agent: Agent::start(),
            servers: ["s1", "s2"].map(|n| NamedServer::start(n, LO, Duration::ZERO)),
        }
    }

    /// `traffic` through hapx-proxy, then HAProxy, running backend `b` with `servers`
    /// (its server lines, `{s1}`, `{s2}` and `{agent}` replaced by the addresses and the
    /// agent's port); what both saw, which must agree.
    fn run<T: PartialEq + std::fmt::Debug>(
        &self,
        test: &str,
        servers: &str,
        traffic: impl Fn(SocketAddr) -> T,
    ) -> T {
        self.run_from("up\n", test, servers, traffic)
    }

    /// [`Lab::run`] with the agent answering `first` when each proxy starts.
    fn run_from<T: PartialEq + std::fmt::Debug>(
        &self,
        first: &str,
        test: &str,
        servers: &str,
        traffic: impl Fn(SocketAddr) -> T,
    ) -> T {
        let servers = servers
            .replace("{s1}", &self.servers[0].addr.to_string())
            .replace("{s2}", &self.servers[1].addr.to_string())
            .replace("{agent}", &self.agent.addr.port().to_string());
        let port = free_port();
        let conf = config(&self.sock, self.logs.addr(), port, &servers);
        // Each proxy starts with an agent saying `first`.
        *self.agent.line.lock().unwrap() = first.into();
        let run = |front| {
            let seen = traffic(front);
            *self.agent.line.lock().unwrap() = first.into();
            seen
        };
        let (ours, theirs) = side_by_side(test, &conf, SocketAddr::from((LO, port)), run);
        agree(ours, theirs)
    }
}

/// Both proxies saw the same, and hapx-proxy what was expected of it.
fn agree<T: PartialEq + std::fmt::Debug>(ours: T, theirs: Option<T>) -> T {
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) vs HAProxy (right)");
    }
    ours
}

#[test]
fn agent_answers_set_state_weight_and_admin_as_haproxy() {
    let lab = Lab::new("agent-answers");
    let (sock, logs, agent) = (&lab.sock, &lab.logs, &lab.agent);
    let servers = "  server s1 {s1} check inter 200 weight 10 agent-check agent-addr 127.0.0.1 agent-port {agent} agent-inter 100 agent-send \"hello\\n\"\n\
         server s2 {s2} check inter 200 weight 10\n";
    let script = [
        "up\n",
        "down #maintenance window\n",
        "up\n",
        "50%\n",
        "drain\n",
        "ready\n",
        "maint\n",
        "ready\n",
        "fail\n",
        "up 100%\n",
        "stopped\n",
        "bogus 75%\n",
        "up bogus\n",
        "200%\n",
        "xyz\n",
        // (A line without its end is not scripted: HAProxy 2.6 may read past it.)
        "",
        "0%\n",
        "UP,100%\n",
        "maxconn:7\n",
        "maxconn:x 5%x\n",
        "maxconn:3x\n",
        "maxconn:0 -5%\n",
    ];
    // An agent that cannot be reached: the server stays as it was, UP or DOWN.
    let closed = free_port();
    let ours = lab.run("agent-answers", servers, |_| {
        assert!(wait_until(Duration::from_secs(5), || server_state(
            sock, "s1"
        )
        .starts_with("UP,10,L7OK")));
        logs.take();
        let mut seen = Vec::new();
        let mut snapshot = |what: &str| {
            // Leaving maintenance, a server starts UP at `rise` (`UP 1/3`) and climbs with
            // each passing check; how many ran by now depends on when each proxy's next
            // check falls (HAProxy's at its next tick, hapx's at once). Compare once the
            // health check's count has settled (its checks always pass here).
            assert!(
                wait_until(Duration::from_secs(5), || !server_state(sock, "s1")
                    .split(',')
                    .next()
                    .is_some_and(|status| status.contains('/'))),
                "the health of s1 did not settle after {what:?}"
            );
            seen.push((
                what.to_string(),
                server_state(sock, "s1"),
                servers_state(sock, "s1"),
                logs.take(),
            ));
        };
        for line in script {
            agent.say(line);
            snapshot(line);
        }
        for line in ["up\n", "down\n"] {
            agent.say(line);
            cli(sock, &format!("set server b/s1 agent-port {closed}"));
            assert!(wait_until(Duration::from_secs(5), || {
                server_state(sock, "s1").contains(",L4CON,")
            }));
            snapshot(&format!("{line} then refused"));
            cli(
                sock,
                &format!("set server b/s1 agent-port {}", agent.addr.port()),
            );
        }
        seen
    });
    // The agent's words had their effects (also checked against HAProxy above).
    let state_after = |line: &str| {
        ours.iter()
            .find(|(l, ..)| l == line)
            .map(|(_, s, ..)| s.clone())
            .unwrap_or_default()
    };
    assert!(state_after("down #maintenance window\n").starts_with(
        "DOWN (agent),10,L7STS,0,via agent : down (maintenance window),Layer7 wrong status,1,1,0,"
    ));
    assert!(state_after("50%\n").starts_with("UP,5,CHECKED,,,No status change"));
    assert!(state_after("drain\n").starts_with("DRAIN (agent),5,"));
    assert!(state_after("maint\n").starts_with("MAINT,5,"));
    assert!(state_after("bogus 75%\n").contains(",agent reports an error : bogus,"));
    assert!(state_after("").contains(",L7RSP,,TCPCHK got an empty response at step 2,"));
    assert!(
        state_after("up\n then refused")
            .starts_with("UP,10,L4CON,,Connection refused,Layer4 connection problem,1,1,1,")
    );
    assert!(state_after("down\n then refused").starts_with("DOWN (agent),10,L4CON,"));
    let downs = ours
        .iter()
        .find(|(l, ..)| l == "fail\n")
        .map(|(.., logs)| logs.clone())
        .unwrap_or_default();
    assert_eq!(
        downs,
        [
            "Server b/s1 is DOWN, reason: Layer7 wrong status, code: 0, info: \"via agent : fail\", check duration: Nms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        ]
    );
    assert!(String::from_utf8_lossy(&agent.received.lock().unwrap()).starts_with("hello\nhello\n"));
}

#[test]
fn agent_weight_and_drain_shape_the_traffic_as_haproxy() {
    let lab = Lab::new("agent-traffic");
    let (sock, agent) = (&lab.sock, &lab.agent);
    let servers = "  server s1 {s1} weight 10 agent-check agent-port {agent} agent-inter 100 agent-send \"hello\\n\"\n  server s2 {s2} weight 10\n";
    let ours = lab.run("agent-traffic", servers, |front| {
        let mut shares = Vec::new();
        for line in ["up 100%\n", "30%\n", "drain\n", "ready 100%\n", "down\n"] {
            agent.say(line);
            let counts = tally(front, 26);
            let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
            counts.sort();
            shares.push((line, counts, server_state(sock, "s1")));
        }
        shares
    });
    let share = |i: usize, name: &str| {
        ours[i]
            .1
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    };
    // Equal weights, then 3 to 10, then none to a draining or DOWN server.
    assert_eq!(share(0, "s1"), 13);
    assert!((5..=7).contains(&share(1, "s1")), "{:?}", ours[1]);
    assert_eq!(share(2, "s1"), 0);
    assert_eq!(share(3, "s1"), 13);
    assert_eq!(share(4, "s1"), 0);
    assert!(ours[4].2.starts_with("DOWN (agent),"));
}

#[test]
fn runtime_api_agent_commands_answer_as_haproxy() {
    let lab = Lab::new("agent-cli");
    let (sock, logs) = (&lab.sock, &lab.logs);
    // A long agent-inter: only the commands change the agent's state during the test.
    let servers = "  server s1 {s1} check inter 200 agent-check agent-port {agent} agent-inter 60s agent-send \"hello\\n\"\n  server s2 {s2} check inter 200\n";
    let commands = [
        "set server b/s1 agent down",
        "set server b/s1 agent up",
        "set server b/s2 agent down",
        "set server b/s1 agent foo",
        "set server b/s1 agent",
        "set server b/s1 agent down",
        "disable agent b/s1",
        "enable agent b/s2",
        "disable agent b/s9",
        "set server b/s1 agent-port x",
        "set server b/s1 agent-port 70000",
        "set server b/s1 agent-port",
        "set server b/s1 agent-addr",
        "set server b/s1 agent-addr bad",
        "set server b/s1 agent-addr 127.0.0.1 port x",
        "set server b/s2 agent-port 1",
        "set server b/s2 agent-addr 127.0.0.1",
        "set server b/s2 agent-send x",
        "enable agent b/s1",
        "set server b/s1 agent-addr 127.0.0.2 port 1234",
        "set server b/s1 agent-send hi",
    ];
    let ours = lab.run("agent-cli", servers, |_| {
        assert!(wait_until(Duration::from_secs(5), || server_state(
            sock, "s1"
        )
        .starts_with("UP,")));
        logs.take();
        let mut seen = Vec::new();
        for command in commands {
            let answer = cli(sock, command);
            // A disabled agent lets the next passing health check bring the server up.
            if command == "disable agent b/s1" {
                assert!(wait_until(Duration::from_secs(5), || server_state(
                    sock, "s1"
                )
                .starts_with("UP,")));
            }
            // The agent's own columns left out: when its first answer comes differs (HAProxy
            // spreads first checks over the longest interval).
            let cols = ["status", "weight", "agent_health", "check_health"];
            seen.push((
                command,
                answer,
                stat_columns(sock, "s1", &cols),
                servers_state(sock, "s1"),
                logs.take(),
            ));
        }
        seen
    });
    assert_eq!(ours[0].1, "\n");
    assert!(ours[0].2.starts_with("DOWN (agent),"), "{:?}", ours[0]);
    assert_eq!(
        ours[0].4,
        [
            "Server b/s1 is DOWN, changed from CLI. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        ]
    );
    assert_eq!(
        ours[2].1,
        "agent checks are not enabled on this server.\n\n"
    );
    assert!(ours[19].3.ends_with(" 127.0.0.2 1234"), "{:?}", ours[19]);
}

#[test]
fn agent_keywords_are_checked_as_haproxy() {
    if !hapx_tests::require::path(
        "agent-keywords",
        Path::new(hapx_tests::proxy_rules::HAPROXY),
        "HAProxy",
    ) {
        return;
    }
    let dir = temp_dir("agent-keywords");
    let cases = [
        "agent-check",
        "agent-check agent-port 0",
        "agent-check port 17001",
        "agent-check agent-port 17001 agent-inter 0",
        "agent-check agent-port 17001 agent-inter 5x",
        "agent-check agent-port 17001 agent-addr bad",
        "agent-check agent-port 17001 agent-addr 127.0.0.2 agent-inter 500ms agent-send ping",
        "agent-check agent-port 17001 no-agent-check",
    ];
    for (i, options) in cases.iter().enumerate() {
        let text = format!(
            "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
             backend b\n  server s1 127.0.0.1:17101 {options}\n"
        );
        let [ours, theirs] = hapx_tests::proxy_rules::check_text(&dir, i, &text);
        assert_eq!(ours.0, theirs.0, "{options}: {ours:?} vs {theirs:?}");
        assert_eq!(
            ours.1.len(),
            theirs.1.len(),
            "{options}: {ours:?} vs {theirs:?}"
        );
        // The same words; hapx-proxy names the line its way for server keywords' values.
        for (mine, haproxy) in ours.1.iter().zip(&theirs.1) {
            let words = haproxy.split(" : ").last().unwrap_or_default();
            let words = words.strip_suffix('.').unwrap_or(words);
            assert!(mine.contains(words), "{options}: {mine:?} vs {haproxy:?}");
        }
    }
}

#[test]
fn agent_results_are_logged_as_haproxy_with_log_health_checks() {
    let lab = Lab::new("agent-log-checks");
    let (sock, logs, agent) = (&lab.sock, &lab.logs, &lab.agent);
    let servers = "  option log-health-checks\n  server s1 {s1} check inter 200 agent-check agent-port {agent} agent-inter 100 agent-send \"hello\\n\"\n  server s2 {s2} check inter 200\n";
    let ours = lab.run("agent-log-checks", servers, |_| {
        assert!(wait_until(Duration::from_secs(5), || {
            server_state(sock, "s1").starts_with("UP,1,L7OK")
        }));
        logs.take();
        let mut seen = Vec::new();
        for line in ["down #x\n", "50%\n", "up\n", "", "up\n", "0%\n", "fail\n"] {
            agent.say(line);
            seen.push((line, logs.take()));
        }
        seen
    });
    assert_eq!(
        ours[0].1,
        [
            "Agent check for server b/s1 failed, reason: Layer7 wrong status, code: 0, info: \"via agent : down (x)\", check duration: Nms, status: 0/1 DOWN.",
            "Server b/s1 is DOWN. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        ]
    );
    assert!(ours[1].1.is_empty(), "{:?}", ours[1]);
}

#[test]
fn a_tracking_server_follows_its_tracked_server_whatever_its_agent_says() {
    let lab = Lab::new("agent-track");
    let (sock, logs, agent) = (&lab.sock, &lab.logs, &lab.agent);
    // `a` is DOWN (nothing listens): its tracker `t` stays DOWN while its agent says up;
    // the runtime API forcing the agent up brings it UP (HAProxy's `srv_set_running`).
    let closed = free_port();
    let servers = format!(
        "  server a 127.0.0.1:{closed} check inter 100 fall 1 rise 1\n\
         server t {{s1}} track a agent-check agent-port {{agent}} agent-inter 100\n\
         server s2 {{s2}} check inter 100\n"
    );
    let cols = ["status", "agent_status", "agent_health"];
    let ours = lab.run("agent-track", &servers, |_| {
        assert!(wait_until(Duration::from_secs(5), || {
            stat_columns(sock, "a", &cols).starts_with("DOWN,")
        }));
        let mut seen = Vec::new();
        agent.say("up\n");
        logs.take();
        agent.say("up\n");
        seen.push(("up", stat_columns(sock, "t", &cols), logs.take()));
        let answer = cli(sock, "set server b/t agent up");
        agent.say("up\n");
        seen.push((
            "set server b/t agent up",
            answer + &stat_columns(sock, "t", &cols),
            logs.take(),
        ));
        seen
    });
    assert!(ours[0].1.starts_with("DOWN,L7OK,1"), "{ours:?}");
    assert!(ours[0].2.is_empty(), "{ours:?}");
    assert!(ours[1].1.starts_with("\nUP"), "{ours:?}");
    // `a` UP: an agent saying down takes `t` down, logged as following `a`.
    let servers = "  server a {s2} check inter 100\n\
         server t {s1} track a agent-check agent-port {agent} agent-inter 100\n";
    let ours = lab.run("agent-track-down", servers, |_| {
        assert!(wait_until(Duration::from_secs(5), || {
            stat_columns(sock, "t", &cols).starts_with("UP,L7OK")
        }));
        logs.take();
        agent.say("down\n");
        (stat_columns(sock, "t", &cols), logs.take())
    });
    assert!(ours.0.starts_with("DOWN"), "{ours:?}");
    assert_eq!(
        ours.1,
        [
            "Server b/t is DOWN via b/a. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."
        ]
    );
}

#[test]
fn hostile_agent_lines_are_read_as_haproxy() {
    let lab = Lab::new("agent-hostile");
    let (sock, agent) = (&lab.sock, &lab.agent);
    // No `agent-send`; the first answer has no end of line.
    let servers = "  server s1 {s1} weight 10 agent-check agent-port {agent} agent-inter 100\n\
         server s2 {s2} weight 10\n";
    let long = format!("down #{}\n", "d".repeat(16376));
    let script = [
        "up\n",
        "\0down\n",
        "down #a\0b\n",
        "up\0down\n",
        "",
        &long,
        "up maxconn:-99999999999999999999\n",
        "up maxconn:99999999999999999999\n",
        "up maxconn:-5\n",
        "up 100%\n",
    ];
    let commands = [
        "set server b/s1 weight -99999999999999999999%",
        "set server b/s1 weight 300x",
        "set server b/s1 weight 0x10",
        "set server b/s1 weight 010",
        "set server b/s1 weight 12 ",
        "set server b/s1 weight 99999999999999999999%",
    ];
    let ours = lab.run_from("down", "agent-hostile", servers, |_| {
        agent.asked_again(3, "down");
        let mut seen = vec![("down".to_string(), server_state(sock, "s1"))];
        for line in script {
            agent.say(line);
            let label: String = line.escape_debug().take(40).collect();
            seen.push((label, server_state(sock, "s1")));
        }
        for command in commands {
            let answer = cli(sock, command);
            seen.push((answer, stat_columns(sock, "s1", &["weight"])));
        }
        // A partial line, then the connection reset.
        agent.reset.store(true, Ordering::SeqCst);
        agent.say("25%");
        seen.push(("25% reset".into(), server_state(sock, "s1")));
        agent.reset.store(false, Ordering::SeqCst);
        // Held DOWN by its agent, then the agent disabled: DOWN it stays.
        agent.say("down\n");
        let answer = cli(sock, "disable agent b/s1");
        seen.push((
            answer,
            stat_columns(sock, "s1", &["status", "agent_status"]),
        ));
        seen
    });
    let state = |i: usize| ours[i].1.clone();
    assert_eq!(ours.last().map(|s| &*s.1), Some("DOWN,"), "{ours:?}");
    assert!(
        state(0).contains(",L7TOUT,,Ignoring incomplete line from agent,"),
        "{ours:?}"
    );
    // A NUL ends no line: the server stays UP (`no check`, its agent the only check).
    assert!(
        state(2).starts_with("no check,10,L7OK,0,Ignoring incomplete line from agent,"),
        "{ours:?}"
    );
    assert!(
        state(5).contains(",TCPCHK got an empty response at step 2,"),
        "{ours:?}"
    );
    let kept = state(6).split(',').nth(4).map_or(0, str::len);
    assert_eq!(kept, 127, "{ours:?}");
    assert!(state(7).ends_with(",1,,"), "{ours:?}");
    assert!(
        ours[11].0.starts_with("Relative weight must be positive."),
        "{ours:?}"
    );
    assert!(
        ours[12].0.starts_with("Absolute weight can only"),
        "{ours:?}"
    );
    assert_eq!(ours[15].1, "12", "{ours:?}");
    // The status stays (the last answer's), the information says why.
    assert!(
        ours[17]
            .1
            .contains(",L7OK,0,Ignoring incomplete line from agent,"),
        "{ours:?}"
    );
}
