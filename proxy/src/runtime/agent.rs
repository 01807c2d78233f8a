//! Agent checks (`agent-check`), as HAProxy 2.6 runs them: every `agent-inter` (else
//! `inter`) the proxy connects to the agent (`agent-addr`, else the server's address, on
//! `agent-port`, else the server line's `port`), sends `agent-send` if set, and reads one
//! line. Its words, separated by spaces, tabs or commas, say:
//!
//! - a health state: `up` (UP again if the health check agrees), or `down`, `fail`,
//!   `stopped` (DOWN, shown as `DOWN (agent)`), an optional `#description` following;
//! - an admin state: `ready`, `drain`, `maint` (as `set server ... state` does);
//! - a weight, `N%` of the configured one (as `set server ... weight N%`);
//! - `maxconn:N`, the server's new `maxconn` (0: none).
//!
//! A failed connection to the agent, a timeout, an empty answer or a line without its end
//! (or with a NUL byte) only show in the agent's status: they never mark the server DOWN.
//! While the agent is asked, its last result shows with `* ` before its status and without
//! its detail (`* INI` before the first answer), and `srv_agent_state` has its in-progress
//! bit, as HAProxy's `CHK_ST_INPROGRESS`.
//! An answer brings the server UP only when it may come up ([`Server::may_come_up`]: its
//! health check, and the server it tracks, agree; HAProxy's agent rise and fall are 1); an
//! operator forcing the agent up (`set server B/S agent up`, the stats page) brings it UP
//! unless in maintenance, as HAProxy does. The runtime API changes the agent
//! (`set server B/S agent|agent-addr|agent-port|agent-send`, `enable|disable agent B/S`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::api::Strtol;
use super::checks::{Timing, described};
use super::state::{Admin, Backend, CheckResult, Server, now_secs};
use super::{shutdown, track, transitions};
use crate::config::model::ServerOptions;

/// A server's agent: its settings (the runtime API changes them) and its last answer.
#[derive(Debug)]
pub struct AgentState {
    configured: bool,
    enabled: AtomicBool,
    /// 1: the agent lets the server be UP; 0: it said down (HAProxy's agent health, with
    /// rise and fall 1).
    health: AtomicU32,
    /// The last answer's result, and whether the agent is being asked again.
    result: Mutex<Probe>,
    /// 0: no port.
    port: AtomicU32,
    addr: RwLock<Option<IpAddr>>,
    send: RwLock<Option<String>>,
}

impl AgentState {
    pub fn new(o: &ServerOptions) -> Self {
        let a = &o.agent;
        AgentState {
            configured: a.enabled,
            enabled: AtomicBool::new(a.enabled),
            health: AtomicU32::new(1),
            // HAProxy's agent columns before its first answer.
            result: Mutex::new(Probe {
                result: CheckResult {
                    status: "INI".into(),
                    desc: "Initializing".into(),
                    ..CheckResult::default()
                },
                in_progress: false,
            }),
            port: AtomicU32::new(a.port.or(o.check_port).map_or(0, u32::from)),
            addr: RwLock::new(a.addr),
            send: RwLock::new(a.send.clone()),
        }
    }

    pub fn configured(&self) -> bool {
        self.configured
    }

    /// Configured and not disabled by `disable agent`.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    pub fn health(&self) -> u32 {
        self.health.load(Relaxed)
    }

    /// Whether the agent lets the server be UP: disabled, or not saying down.
    pub fn allows_up(&self) -> bool {
        !self.enabled() || self.health() > 0
    }

    pub fn result(&self) -> CheckResult {
        self.probe().result
    }

    /// The last result and whether the agent is being asked again, read together.
    pub fn probe(&self) -> Probe {
        self.result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The agent is asked again: as HAProxy's `HCHK_STATUS_START`, the last result keeps
    /// its status, code and duration but loses its detail until the answer comes.
    fn start(&self) {
        let mut probe = self.result.lock().unwrap_or_else(|e| e.into_inner());
        probe.result.desc = described(&probe.result.status, "");
        probe.in_progress = true;
    }

    /// The answer's result, which ends the asking.
    fn set_result(&self, result: CheckResult) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Probe {
            result,
            in_progress: false,
        };
    }

    /// The asking ended, its result recorded or dropped (the agent disabled meanwhile).
    fn stop(&self) {
        self.result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_progress = false;
    }

    pub fn port(&self) -> Option<u16> {
        u16::try_from(self.port.load(Relaxed))
            .ok()
            .filter(|&p| p != 0)
    }

    /// The address set by `agent-addr` (configuration or runtime API), if any.
    pub fn addr(&self) -> Option<IpAddr> {
        *self.addr.read().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self) -> Option<String> {
        self.send.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// HAProxy's agent state flags in `show servers state`: in progress 0x01, configured
    /// 0x02, enabled 0x04, agent 0x10.
    pub fn state_flags(&self) -> u32 {
        let in_progress = u32::from(self.probe().in_progress);
        match (self.configured, self.enabled()) {
            (false, _) => 0,
            (true, false) => 0x12 | in_progress,
            (true, true) => 0x16 | in_progress,
        }
    }
}

/// An agent's last result, and whether it is being asked again (HAProxy's
/// `CHK_ST_INPROGRESS`: `show stat` then puts `* ` before the status).
#[derive(Debug, Clone)]
pub struct Probe {
    pub result: CheckResult,
    pub in_progress: bool,
}

/// Starts a server's agent task, its first check after `first` (spread with the health
/// checks by `checks::first_runs`).
pub fn spawn(backend: Arc<Backend>, server: Arc<Server>, first: Duration) {
    tokio::spawn(agent_loop(backend, server, first));
}

fn interval(server: &Server) -> Duration {
    server.opts.agent.inter.unwrap_or(server.opts.inter)
}

async fn agent_loop(backend: Arc<Backend>, server: Arc<Server>, first: Duration) {
    tokio::time::sleep(first).await;
    loop {
        if server.agent.enabled() {
            if let Some(target) = target(&server) {
                let started = Instant::now();
                server.agent.start();
                let timing = Timing::starting(&backend, interval(&server));
                let answer = ask(&server, target, &timing).await;
                apply(&backend, &server, answer, started.elapsed());
                server.agent.stop();
            }
        }
        tokio::time::sleep(interval(&server)).await;
    }
}

/// Where the agent listens: `agent-addr` or the server's address, on the agent's port.
fn target(server: &Server) -> Option<SocketAddr> {
    let ip = server.agent.addr().or_else(|| server.addr())?;
    Some(SocketAddr::new(ip, server.agent.port()?))
}

/// What the agent answered.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A line (without its CR or LF).
    Line(String),
    /// Bytes without an end of line before the agent closed.
    Incomplete,
    /// No answer: (status, description).
    Failed(&'static str, String),
}

/// The most of an answer read (HAProxy's buffer size).
const ANSWER_MAX: usize = 16 * 1024;

async fn ask(server: &Server, target: SocketAddr, timing: &Timing) -> Answer {
    // In use while it opens, as HAProxy counts an agent's connection.
    let in_use = super::pool::CheckUse::new(server);
    let connecting = super::checks::connect_from(server.opts.source.as_ref(), target);
    let mut stream = match tokio::time::timeout(timing.connecting(), connecting).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Answer::Failed("L4CON", super::checks::connect_failure(&e)),
        Err(_) => return Answer::Failed("L4TOUT", "Layer4 timeout".into()),
    };
    drop(in_use);
    timing.connected();
    // Closed with a reset, as HAProxy closes its checks.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    let send = server.agent.send();
    let mut got = Vec::new();
    let exchange = async {
        if let Some(text) = send.as_deref().filter(|t| !t.is_empty()) {
            stream.write_all(text.as_bytes()).await?;
        }
        let complete = |got: &[u8]| line_len(got).is_some();
        super::checks::read_answer(&mut stream, &mut got, ANSWER_MAX, complete).await
    };
    let outcome = tokio::time::timeout(timing.left(), exchange).await;
    match outcome {
        Err(_) => Answer::Failed("L7TOUT", "Layer7 timeout".into()),
        // As HAProxy: the connection failed after something came, which is no line.
        Ok(Err(_)) if !got.is_empty() => Answer::Incomplete,
        Ok(Err(e)) => Answer::Failed(
            "SOCKERR",
            format!("Socket error: {}", super::checks::os_reason(&e)),
        ),
        Ok(Ok(())) if got.is_empty() => Answer::Failed(
            "L7RSP",
            // HAProxy's agent ruleset: its send rule (even without `agent-send`), then
            // the expect rule.
            "Layer7 invalid response: TCPCHK got an empty response at step 2".into(),
        ),
        Ok(Ok(())) => match line_len(&got) {
            Some(end) => Answer::Line(String::from_utf8_lossy(&got[..end]).into_owned()),
            None => Answer::Incomplete,
        },
    }
}

/// The length of the line in `got`, as HAProxy scans it: up to its first CR or LF, unless
/// a NUL comes first (a line with a NUL is never complete).
fn line_len(got: &[u8]) -> Option<usize> {
    let end = got.iter().position(|&b| matches!(b, 0 | b'\r' | b'\n'))?;
    (got[end] != 0).then_some(end)
}

/// The words of an agent's line, as HAProxy reads them: the last word of each kind wins,
/// the first word not understood is kept as an error.
#[derive(Debug, Default, PartialEq)]
struct Reply<'a> {
    /// `up`, `down`, `fail` or `stopped`.
    health: Option<&'a str>,
    admin: Option<Admin>,
    /// `N%`.
    weight: Option<&'a str>,
    /// `maxconn:N`.
    maxconn: Option<&'a str>,
    error: Option<&'a str>,
    /// After `#`.
    description: &'a str,
}

fn parse(line: &str) -> Reply<'_> {
    let mut reply = Reply::default();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        if let Some(description) = rest.strip_prefix('#') {
            reply.description = description.trim_start_matches([' ', '\t']);
            break;
        }
        let end = rest.find([' ', '\t', ',']).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "up" | "down" | "stopped" | "fail" => reply.health = Some(word),
            "ready" => reply.admin = Some(Admin::Ready),
            "drain" => reply.admin = Some(Admin::Drain),
            "maint" => reply.admin = Some(Admin::Maint),
            _ if word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('%') => {
                reply.weight = Some(word)
            }
            _ if lower.starts_with("maxconn:") => reply.maxconn = Some(&word[8..]),
            _ => {
                reply.error.get_or_insert(word);
            }
        }
    }
    reply
}

/// Records an answer and acts on it: admin state, weight, then health, in HAProxy's order.
fn apply(backend: &Backend, server: &Server, answer: Answer, took: Duration) {
    // `disable agent` while the answer was on its way: it is dropped.
    if !server.agent.enabled() {
        return;
    }
    let duration_ms = Some(took.as_millis() as u64);
    let previous = server.agent.result();
    let previous_status = previous.status.clone();
    // Kept, and logged under `option log-health-checks`.
    let record = |result: CheckResult| {
        let ok = result.status == "L7OK";
        server.agent.set_result(result);
        if backend.conf.options.log_health_checks {
            transitions::report_agent_result(backend, server, ok, &previous_status);
        }
    };
    let result = |status: &str, code, info: &str| CheckResult {
        status: status.into(),
        code,
        duration_ms,
        desc: described(status, info),
        at: now_secs(),
    };
    let line = match answer {
        Answer::Failed(status, desc) => {
            record(CheckResult {
                desc,
                ..result(status, None, "")
            });
            return;
        }
        // The status stays (a first answer's, unknown, is a timeout); the description
        // says why.
        Answer::Incomplete => {
            let status = match previous.status.as_str() {
                "INI" => "L7TOUT",
                kept => kept,
            };
            record(CheckResult {
                code: previous.code,
                ..result(status, None, "Ignoring incomplete line from agent")
            });
            return;
        }
        Answer::Line(line) => line,
    };
    let reply = parse(&line);
    let warning = act_on_words(backend, server, &reply);
    let Some(health) = reply.health else {
        let info = match (reply.error, warning) {
            (Some(e), _) => format!("agent reports an error : {e}"),
            (None, Some(w)) => format!("agent warns : {w}"),
            (None, None) => String::new(),
        };
        record(result("CHECKED", None, &info));
        return;
    };
    let up = health.eq_ignore_ascii_case("up");
    let status = if up { "L7OK" } else { "L7STS" };
    let info = health_info(health, &reply, warning);
    set_state(backend, server, up, Cause::Answer, || {
        // After the health: the logged result shows it.
        record(result(status, Some(0), &info));
        transitions::check_reason(backend, &server.agent.result())
    });
}

/// Applies an answer's admin state, weight and `maxconn`; the first refusal, the warning
/// shown.
fn act_on_words(backend: &Backend, server: &Server, reply: &Reply<'_>) -> Option<&'static str> {
    if let Some(admin) = reply.admin.filter(|&a| a != server.admin()) {
        let before = transitions::Before::of(backend, server);
        server.set_admin(admin);
        transitions::report_admin(backend, server, before, "");
    }
    let weight = reply
        .weight
        .and_then(|w| super::api::change_weight(backend, server, w).err());
    let maxconn = reply.maxconn.and_then(|m| change_maxconn(server, m).err());
    weight.or(maxconn)
}

/// `via agent : <health> (<what it said>)`: its description, else (and always for `up`)
/// its error or the warning.
fn health_info(health: &str, reply: &Reply<'_>, warning: Option<&str>) -> String {
    let up = health.eq_ignore_ascii_case("up");
    let mut said = reply.description;
    if said.is_empty() || up {
        if let Some(more) = reply.error.or(warning) {
            said = more;
        }
    }
    if said.is_empty() {
        format!("via agent : {health}")
    } else {
        format!("via agent : {health} ({said})")
    }
}

/// `maxconn:N`: the server's `maxconn` becomes N (0: none), read as HAProxy's strtol
/// (saturated), in its words otherwise. HAProxy keeps the low 32 bits, unsigned: a
/// negative number wraps, the smallest long is 0.
fn change_maxconn(server: &Server, text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("Require <maxconn>.\n");
    }
    let Some(n) = Strtol::read(text) else {
        return Err("maxconn string empty or preceded by garbage");
    };
    if !n.rest.is_empty() {
        return Err("Trailing garbage in maxconn string");
    }
    server.set_maxconn(Some(n.value as u32 as usize));
    Ok(())
}

/// What set the agent's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The agent's answer: the server comes up only when it may (see
    /// [`Server::may_come_up`]).
    Answer,
    /// An operator (`set server B/S agent`, the stats page): the server comes up unless in
    /// maintenance, whatever its checks and the server it tracks say, as HAProxy's
    /// `srv_set_running`.
    Operator,
}

/// The agent let the server up (`up`) or took it down: its health is set, `noted` records
/// it and says why (HAProxy's `, reason: ...` or `, changed from CLI`), and the server
/// follows as `cause` allows; all under the server's transition lock. A tracking server
/// changed by its agent's answer is logged as following the server it tracks, as HAProxy
/// logs it.
fn set_state(
    backend: &Backend,
    server: &Server,
    up: bool,
    cause: Cause,
    noted: impl FnOnce() -> String,
) {
    let (changed, maint, why) = server.transition(|| {
        server.agent.health.store(u32::from(up), Relaxed);
        let why = noted();
        let may = match cause {
            Cause::Answer => server.may_come_up(),
            Cause::Operator => server.admin() != Admin::Maint,
        };
        let change = if up {
            !server.is_up() && may
        } else {
            server.is_up()
        };
        if change {
            server.set_up(up);
        }
        (change, server.admin() == Admin::Maint, why)
    });
    if !changed {
        return;
    }
    let tracking = server.opts.track.is_some();
    match (maint, tracking && cause == Cause::Answer) {
        (true, _) => {}
        (false, true) => transitions::report_tracked(backend, server, up),
        (false, false) => transitions::report_change(backend, server, up, &why),
    }
    shutdown::on_marked(backend, server, up);
    track::follow(server);
}

/// An operator forces the agent's verdict (`set server B/S agent up|down`, the stats
/// page's agent actions, `via` saying which): the server comes up unless in maintenance
/// (as `Cause::Operator` says), the change logged with `via`.
pub fn force(backend: &Backend, server: &Server, up: bool, via: &str) {
    set_state(backend, server, up, Cause::Operator, || via.to_string());
}

/// `set server B/S agent|agent-addr|agent-port|agent-send ...` (`args` from `agent` on),
/// with HAProxy's answers.
pub fn set_server(backend: &Backend, server: &Server, args: &[&str]) -> String {
    const OFF: &str = "agent checks are not enabled on this server";
    let agent = &server.agent;
    match args {
        ["agent", rest @ ..] => {
            if !agent.enabled() {
                return format!("{OFF}.\n");
            }
            let up = match rest.first() {
                Some(&"up") => true,
                Some(&"down") => false,
                _ => return "'set server <srv> agent' expects 'up' or 'down'.\n".into(),
            };
            force(backend, server, up, ", changed from CLI");
            String::new()
        }
        ["agent-port"] => "set server <b>/<s> agent-port requires a port.\n".into(),
        ["agent-port", port, ..] => said(update_target(agent, None, Some(port))),
        ["agent-addr"] => {
            "set server <b>/<s> agent-addr requires an address and optionally a port.\n".into()
        }
        ["agent-addr", addr, rest @ ..] => {
            let port = match rest {
                ["port", port, ..] => Some(*port),
                // HAProxy reads the missing number as an empty one.
                ["port"] => Some(""),
                _ => None,
            };
            said(update_target(agent, Some(addr), port))
        }
        ["agent-send", ..] if !agent.enabled() => format!("{OFF}.\n"),
        ["agent-send", rest @ ..] => {
            let text = rest.first().map(|t| t.to_string());
            *agent.send.write().unwrap_or_else(|e| e.into_inner()) = text;
            String::new()
        }
        _ => String::new(),
    }
}

/// HAProxy's `srv_update_agent_addr_port`, for the runtime API and a state file: the
/// agent's address and port change together, or neither, and the reason is given.
pub fn update_target(
    agent: &AgentState,
    addr: Option<&str>,
    port: Option<&str>,
) -> Result<(), String> {
    if !agent.enabled() {
        return Err("agent checks are not enabled on this server".into());
    }
    let ip = addr
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| format!("invalid addr '{a}'"))
        })
        .transpose()?;
    let port = port.map(super::api::cli_port).transpose()?;
    if let Some(ip) = ip {
        *agent.addr.write().unwrap_or_else(|e| e.into_inner()) = Some(ip);
    }
    if let Some(port) = port {
        agent.port.store(u32::from(port), Relaxed);
    }
    Ok(())
}

/// A runtime API answer: nothing when done, else the reason.
fn said(result: Result<(), String>) -> String {
    result.err().unwrap_or_default()
}

/// `enable agent B/S` / `disable agent B/S`: a disabled agent neither runs nor keeps the
/// server DOWN (its next passing health check brings it UP, as in HAProxy).
pub fn enable(server: &Server, enable: bool) -> String {
    if enable && !server.agent.configured() {
        return "Agent was not configured on this server, cannot enable.\n".into();
    }
    server.agent.enabled.store(enable, Relaxed);
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_like_haproxy() {
        assert_eq!(
            parse("down #maintenance window"),
            Reply {
                health: Some("down"),
                description: "maintenance window",
                ..Reply::default()
            }
        );
        assert_eq!(
            parse("fail,drain\t10% #x"),
            Reply {
                health: Some("fail"),
                admin: Some(Admin::Drain),
                weight: Some("10%"),
                description: "x",
                ..Reply::default()
            }
        );
        // The last word of a kind wins; the first unknown word is the error.
        assert_eq!(
            parse("UP bogus ready maint 75% 50% other maxconn:30"),
            Reply {
                health: Some("UP"),
                admin: Some(Admin::Maint),
                weight: Some("50%"),
                maxconn: Some("30"),
                error: Some("bogus"),
                ..Reply::default()
            }
        );
        // A number without `%` is not a weight.
        assert_eq!(parse("50").error, Some("50"));
        assert_eq!(parse(""), Reply::default());
    }

    #[test]
    fn a_nul_byte_ends_no_line() {
        assert_eq!(line_len(b"up\n"), Some(2));
        assert_eq!(line_len(b"up\rdown\n"), Some(2));
        assert_eq!(line_len(b"up"), None);
        assert_eq!(line_len(b"up\0down\n"), None);
        assert_eq!(line_len(b"\0\n"), None);
    }

    #[test]
    fn maxconn_is_read_as_haproxy_keeps_it() {
        let server = Server::new(
            1,
            "b",
            &crate::config::model::Server {
                name: "s".into(),
                host: "127.0.0.1".into(),
                port: Some(1),
                opts: ServerOptions::default(),
                place: Default::default(),
                id: 1,
                addr: Some([127, 0, 0, 1].into()),
            },
            Default::default(),
        );
        for (text, maxconn) in [
            ("7", Some(7)),
            ("-5", Some(4_294_967_291)),
            ("99999999999999999999", Some(4_294_967_295)),
            // The smallest long: its low 32 bits are 0, no limit.
            ("-99999999999999999999", None),
        ] {
            assert_eq!(change_maxconn(&server, text), Ok(()), "{text}");
            assert_eq!(server.maxconn(), maxconn, "{text}");
        }
        assert_eq!(
            change_maxconn(&server, "3x"),
            Err("Trailing garbage in maxconn string")
        );
        assert_eq!(
            change_maxconn(&server, "x"),
            Err("maxconn string empty or preceded by garbage")
        );
        // An answer repeating the weight and maxconn wakes no queued connection.
        let waker = server.queue_waker();
        let notified = waker.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        server.set_maxconn(None);
        server.set_weight(server.weight.load(Relaxed));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(notified.as_mut().poll(&mut cx).is_pending());
        server.set_maxconn(Some(3));
        assert!(notified.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn results_keep_the_description_before_the_detail() {
        assert_eq!(
            described("L7OK", "via agent : up"),
            "Layer7 check passed: via agent : up"
        );
        assert_eq!(described("CHECKED", ""), "No status change");
        // HAProxy keeps 127 bytes of the information.
        let long = format!("via agent : down ({})", "é".repeat(100));
        let kept = described("L7STS", &long);
        assert_eq!(kept.len(), "Layer7 wrong status: ".len() + 126);
    }
}
