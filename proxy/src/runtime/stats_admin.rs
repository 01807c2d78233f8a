//! The stats page's admin mode, as HAProxy 2.6's `stats admin { if | unless } <cond>`.
//!
//! A request to the page for which one of the proxy's `stats admin` conditions holds sees a
//! form under each backend that has servers (a checkbox per server, an action, "Apply"), and
//! may POST it: `s=<server>&...&action=<action>&b=<backend name or #id>`, an
//! `application/x-www-form-urlencoded` body. The actions change the servers through the
//! runtime API's own functions ([`super::api::change_admin`], [`super::agent::enable`],
//! [`super::agent::set_server`]), and the answer is HAProxy's 303 back to the page with the
//! outcome in `;st=`: `DONE` (every named server changed), `PART` (some), `ERRP` (none, an
//! unknown backend or action, a parameter too long), `NONE` (nothing named), `EXCD` (the form
//! does not fit HAProxy's request buffer), `DENY` (no `stats admin` allows the request). The
//! page then shows HAProxy's banner for that outcome.
//!
//! The form is read as HAProxy's `stats_process_http_post` reads it: from the last
//! parameter to the first, the last `b` and `action` counting, servers named before them
//! handled once both are known.
//!
//! The legacy actions (`disable`/`enable`, `stop`/`start`) set or clear one of HAProxy's two
//! forced flags, maintenance and drain, keeping the other ([`AdminFlag`]), logged with
//! HAProxy's cause (`('disable' on stats page)`); `dhlth`/`ehlth` are the runtime API's
//! `disable|enable health`.
//!
//! `hrunn`, `hnolb` and `hdown` are the runtime API's `set server ... health up|stopping|down`.
//!
//! `shutdown` kills the server's sessions, as the runtime API's `shutdown sessions server`
//! ([`super::shutdown::kill_sessions`]); it counts as done even when there were none, as in
//! HAProxy.

use std::net::SocketAddr;

use super::BUFSIZE;
use super::api::{ForcedHealth, force_health};
use super::http::{Framing, Head};
use super::sample::{self, Context, Test};
use super::state::{Admin, AdminFlag, Backend, Frontend, Server, State};
use crate::config::model::StatsPage;

/// HAProxy's request buffer as it holds a request (HTX): `tune.bufsize` less its own
/// header (48 bytes) and the room kept for rewrites (`tune.maxrewrite`, 1024). A POST that
/// does not fit whole is refused with `EXCD`.
const ROOM: usize = BUFSIZE - 48 - 1024;

/// HAProxy's longest parameter (`key=value`), LINESIZE less its terminating byte.
const LONGEST_PARAM: usize = 2047;

/// The outcome of a POST, its `;st=` code and the banner the page then shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Deny,
    Done,
    Errp,
    Excd,
    None,
    Part,
    Unkn,
    Ival,
}

const STATUSES: [Status; 8] = [
    Status::Deny,
    Status::Done,
    Status::Errp,
    Status::Excd,
    Status::None,
    Status::Part,
    Status::Unkn,
    Status::Ival,
];

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Deny => "DENY",
            Status::Done => "DONE",
            Status::Errp => "ERRP",
            Status::Excd => "EXCD",
            Status::None => "NONE",
            Status::Part => "PART",
            Status::Unkn => "UNKN",
            Status::Ival => "IVAL",
        }
    }

    /// The status a page's `;st=` names; any other text is HAProxy's "unexpected result".
    fn named(text: &str) -> Status {
        STATUSES
            .into_iter()
            .find(|s| text.starts_with(s.code()))
            .unwrap_or(Status::Unkn)
    }

    /// The banner's class and text, HAProxy's.
    fn banner(self) -> (&'static str, &'static str) {
        match self {
            Status::Done => ("active_up", "Action processed successfully."),
            Status::None => ("active_going_down", "Nothing has changed."),
            Status::Part => (
                "active_going_down",
                "Action partially processed.<br>Some server names are probably unknown or ambiguous (duplicated names in the backend).",
            ),
            Status::Errp => (
                "active_down",
                "Action not processed because of invalid parameters.<ul><li>The action is maybe unknown.</li><li>Invalid key parameter (empty or too long).</li><li>The backend name is probably unknown or ambiguous (duplicated names).</li><li>Some server names are probably unknown or ambiguous (duplicated names in the backend).</li></ul>",
            ),
            Status::Excd => (
                "active_down",
                "<b>Action not processed : the buffer couldn't store all the data.<br>You should retry with less servers at a time.</b>",
            ),
            Status::Deny => ("active_down", "<b>Action denied.</b>"),
            Status::Ival => (
                "active_down",
                "<b>Invalid requests (unsupported method or chunked encoded request).</b>",
            ),
            Status::Unkn => ("active_no_check", "Unexpected result."),
        }
    }
}

/// What a POST to the page brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// The whole body (de-chunked).
    Body(Vec<u8>),
    /// More than HAProxy's buffer holds.
    TooLarge,
}

/// Why a POST's form could not be read whole; HAProxy answers each its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// The client sent nothing more within its timeout: HAProxy's 408.
    TimedOut,
    /// The client closed (or reset) before the end of the body: HAProxy closes too.
    Aborted,
    /// A chunked body broke its framing: HAProxy's 400.
    Malformed,
}

/// Reads a POST's form as its bytes arrive, measuring its data (de-chunked) against
/// HAProxy's buffer as HAProxy's HTX stores it, not the chunked framing around it.
#[derive(Debug, Default)]
pub struct FormReader {
    decoder: super::chunked::Decoder,
    /// A chunked body's data so far.
    data: Vec<u8>,
    /// How many of the buffered bytes the decoder has checked.
    checked: usize,
}

impl FormReader {
    /// The form once `buffered` (the body's bytes so far, from its start) shows it whole or
    /// too large; None while more must come.
    pub fn read(&mut self, head: &Head, buffered: &[u8]) -> Result<Option<Form>, Unread> {
        let (data, whole): (&[u8], bool) = match head.framing {
            Framing::None => (&[], true),
            Framing::Length(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                (&buffered[..buffered.len().min(n)], buffered.len() >= n)
            }
            Framing::Chunked => {
                let Self {
                    decoder,
                    data,
                    checked,
                } = self;
                *checked += decoder
                    .advance_with(&buffered[*checked..], |piece| {
                        data.extend_from_slice(piece);
                    })
                    .map_err(|_| Unread::Malformed)?;
                // The framing may hold up to five times its data (one-byte chunks): a looser
                // bound on what is kept while the data stays small.
                if *checked > 4 * BUFSIZE {
                    return Ok(Some(Form::TooLarge));
                }
                (&self.data[..], self.decoder.is_done())
            }
            // A request body is never delimited by the close.
            Framing::UntilClose => return Err(Unread::Malformed),
        };
        Ok(match (fits(head, data.len()), whole) {
            (false, _) => Some(Form::TooLarge),
            (true, true) => Some(Form::Body(data.to_vec())),
            (true, false) => None,
        })
    }
}

/// Whether `head` and a body of `body` bytes fit HAProxy's request buffer as it stores them:
/// each header and the start line in a block (8 bytes) with its text, the start line's own
/// 20 bytes, the end of headers (9) and the body's block.
pub fn fits(head: &Head, body: usize) -> bool {
    let headers: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 8)
        .sum();
    let start: usize = 28 + head.first.iter().map(String::len).sum::<usize>();
    let data = if body > 0 { body + 8 } else { 0 };
    headers + start + 9 + data <= ROOM
}

/// Whether a `stats admin` condition of `fe` holds for the request `head` from `src` to
/// `dst` (the first that does counts, as in HAProxy).
pub fn allowed(
    state: &State,
    fe: &Frontend,
    head: &Head,
    src: SocketAddr,
    dst: SocketAddr,
) -> bool {
    let conf = &fe.conf;
    if conf.stats.admin.is_empty() {
        return false;
    }
    let ctx = Context {
        request: Some(head),
        ..Context::new(state, fe, src, dst)
    };
    let acls = &conf.rules.acls.acls;
    conf.stats
        .admin
        .iter()
        .any(|c| sample::eval(Some(c), acls, &ctx) == Test::Pass)
}

/// The answer to a POST to the page at `path`: the form's actions taken when `admin`, then
/// HAProxy's 303 back to the page with the outcome.
pub fn post(
    state: &State,
    page: &StatsPage,
    path: &str,
    admin: bool,
    form: Option<&Form>,
) -> Vec<u8> {
    let status = match (admin, form) {
        (false, _) => Status::Deny,
        (true, Some(Form::Body(body))) => apply(state, body),
        (true, Some(Form::TooLarge)) => Status::Excd,
        // A POST without a form (an incomplete one never gets here: see `Unread`).
        (true, None) => Status::None,
    };
    format!(
        "HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\ncontent-length: 0\r\nlocation: {};st={}{}\r\n\r\n",
        page.uri(),
        status.code(),
        flags(page, path)
    )
    .into_bytes()
}

/// The page's display flags the request `path` carries, which links back to it keep:
/// `;up` (only servers UP), `;norefresh` (when the page refreshes).
fn flags(page: &StatsPage, path: &str) -> String {
    let mut out = String::new();
    if path.contains(";up") {
        out.push_str(";up");
    }
    if page.refresh.is_some() && path.contains(";norefresh") {
        out.push_str(";norefresh");
    }
    out
}

/// The banner the page at `path` shows for the outcome its `;st=` names, if any.
pub fn banner(page: &StatsPage, path: &str) -> Option<String> {
    let at = path.find(";st=")?;
    let (class, text) = Status::named(&path[at + 4..]).banner();
    Some(format!(
        "<p><div class={class}><a class=lfsb href=\"{}{}\" title=\"Remove this message\">[X]</a> {text}</div>\n<p>\n",
        page.uri(),
        flags(page, path)
    ))
}

/// The actions of HAProxy's stats page (with its older names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Ready,
    Drain,
    Maint,
    Shutdown,
    DisableHealth,
    EnableHealth,
    HealthUp,
    HealthNolb,
    HealthDown,
    DisableAgent,
    EnableAgent,
    AgentUp,
    AgentDown,
    Disable,
    Enable,
    Stop,
    Start,
}

impl Action {
    fn named(name: &[u8]) -> Option<Action> {
        Some(match name {
            b"ready" => Action::Ready,
            b"drain" => Action::Drain,
            b"maint" => Action::Maint,
            b"shutdown" => Action::Shutdown,
            b"dhlth" => Action::DisableHealth,
            b"ehlth" => Action::EnableHealth,
            b"hrunn" => Action::HealthUp,
            b"hnolb" => Action::HealthNolb,
            b"hdown" => Action::HealthDown,
            b"dagent" => Action::DisableAgent,
            b"eagent" => Action::EnableAgent,
            b"arunn" => Action::AgentUp,
            b"adown" => Action::AgentDown,
            b"disable" => Action::Disable,
            b"enable" => Action::Enable,
            b"stop" => Action::Stop,
            b"start" => Action::Start,
            _ => return None,
        })
    }
}

/// What an action did to one server: changed it, left it as it is without counting it
/// (HAProxy's way for a check or agent the server does not have), or could not (an unknown
/// server: counted as not changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Changed,
    Skipped,
    Unchanged,
}

/// Tallies of a form's servers.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    altered: usize,
}

impl Tally {
    fn status(&self) -> Status {
        match (self.total, self.altered) {
            (0, _) => Status::None,
            (_, 0) => Status::Errp,
            (t, a) if t == a => Status::Done,
            _ => Status::Part,
        }
    }
}

/// Takes a form's actions, reading it as HAProxy does (see the module's doc).
fn apply(state: &State, form: &[u8]) -> Status {
    let mut backend: Option<&Backend> = None;
    let mut action = None;
    let mut waiting: Vec<Vec<u8>> = Vec::new();
    let mut tally = Tally::default();
    for param in form.split(|&b| b == b'&').rev() {
        if param.len() > LONGEST_PARAM {
            return Status::Errp;
        }
        // HAProxy copies each parameter as a C string: a NUL ends it, `=` or not.
        let param = &param[..param.iter().position(|&b| b == 0).unwrap_or(param.len())];
        let (key, value) = match param.iter().position(|&b| b == b'=') {
            Some(at) => (&param[..at], &param[at + 1..]),
            None => (param, &b""[..]),
        };
        let (Some(key), Some(value)) = (
            super::convert::url_decode(key, true).map(up_to_nul),
            super::convert::url_decode(value, true).map(up_to_nul),
        ) else {
            break;
        };
        match key.as_slice() {
            b"b" if backend.is_none() => match find_backend(state, &value) {
                Some(b) => backend = Some(b),
                None => return Status::Errp,
            },
            b"action" if action.is_none() => match Action::named(&value) {
                Some(a) => action = Some(a),
                None => return Status::Errp,
            },
            b"s" => waiting.push(value),
            _ => {}
        }
        if let (Some(b), Some(a)) = (backend, action) {
            for name in waiting.drain(..) {
                let effect = match b.servers.iter().find(|s| s.name.as_bytes() == name) {
                    Some(server) => act(b, server, a),
                    // An unknown server counts, unchanged.
                    None => Effect::Unchanged,
                };
                tally.total += usize::from(effect != Effect::Skipped);
                tally.altered += usize::from(effect == Effect::Changed);
            }
        }
    }
    tally.status()
}

/// A decoded key or value up to its first NUL (a `%00`): HAProxy compares them as C
/// strings.
fn up_to_nul(mut text: Vec<u8>) -> Vec<u8> {
    if let Some(nul) = text.iter().position(|&b| b == 0) {
        text.truncate(nul);
    }
    text
}

/// A backend by name or `#id`, as HAProxy's `proxy_be_by_name`.
fn find_backend<'a>(state: &'a State, name: &[u8]) -> Option<&'a Backend> {
    let name = std::str::from_utf8(name).ok()?;
    let found = match name.strip_prefix('#') {
        Some(id) => {
            let id: usize = id.parse().ok()?;
            state.backends.iter().find(|b| b.id == id)
        }
        None => state.backends.iter().find(|b| b.name == name),
    };
    found.map(|b| &**b)
}

/// One action on one server, as HAProxy's stats page takes it.
fn act(backend: &Backend, server: &Server, action: Action) -> Effect {
    let change = |to: Admin| {
        super::api::change_admin(backend, server, to);
        Effect::Changed
    };
    // The legacy actions set or clear one flag, and count only when it was not so already.
    let flag = |flag: AdminFlag, on: bool, cause: &str| {
        if server.has_admin_flag(flag) == on {
            return Effect::Skipped;
        }
        super::api::change_admin_flag(backend, server, flag, on, cause);
        Effect::Changed
    };
    let tracking = server.opts.track.is_some();
    match action {
        Action::Ready => change(Admin::Ready),
        Action::Drain => change(Admin::Drain),
        Action::Maint => change(Admin::Maint),
        // HAProxy gives a cause only where it sets a flag.
        Action::Disable => flag(AdminFlag::Maint, true, "'disable' on stats page"),
        Action::Enable => flag(AdminFlag::Maint, false, ""),
        Action::Stop => flag(AdminFlag::Drain, true, "'stop' on stats page"),
        Action::Start => flag(AdminFlag::Drain, false, ""),
        Action::DisableHealth | Action::EnableHealth => {
            if server.enable_checks(action == Action::EnableHealth) {
                Effect::Changed
            } else {
                Effect::Skipped
            }
        }
        Action::HealthUp | Action::HealthNolb | Action::HealthDown if tracking => Effect::Skipped,
        Action::HealthUp | Action::HealthNolb | Action::HealthDown => {
            let to = match action {
                Action::HealthUp => ForcedHealth::Up,
                Action::HealthNolb => ForcedHealth::Stopping,
                _ => ForcedHealth::Down,
            };
            force_health(backend, server, to, ", changed from Web interface");
            Effect::Changed
        }
        Action::DisableAgent | Action::EnableAgent if server.agent.configured() => {
            super::agent::enable(server, action == Action::EnableAgent);
            Effect::Changed
        }
        Action::AgentUp | Action::AgentDown if server.agent.enabled() => {
            let to = if action == Action::AgentUp {
                "up"
            } else {
                "down"
            };
            super::agent::set_server(backend, server, &["agent", to]);
            Effect::Changed
        }
        // As HAProxy on a server without an agent (or with its agent disabled).
        Action::DisableAgent | Action::EnableAgent | Action::AgentUp | Action::AgentDown => {
            Effect::Skipped
        }
        Action::Shutdown => {
            super::shutdown::kill_sessions(server);
            Effect::Changed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Form, FormReader, Framing, Head, ROOM, Status, Tally, Unread};

    fn post(framing: Framing) -> Head {
        Head {
            first: ["POST".into(), "/".into(), "HTTP/1.1".into()],
            headers: vec![("host".into(), "x".into())],
            framing,
            dropped_length: false,
            conn: Default::default(),
            h2: None,
        }
    }

    /// Feeds `body` to a reader `step` bytes more at a time, as it would arrive.
    fn read(head: &Head, body: &[u8], step: usize) -> Result<Option<Form>, Unread> {
        let mut reader = FormReader::default();
        let mut end = 0;
        loop {
            end = (end + step).min(body.len());
            match reader.read(head, &body[..end])? {
                Some(form) => return Ok(Some(form)),
                None if end == body.len() => return Ok(None),
                None => {}
            }
        }
    }

    #[test]
    fn chunked_forms_are_read_whole_and_measured_by_their_data() {
        let head = post(Framing::Chunked);
        let body = b"4\r\ns=s1\r\n3;x=y\r\n&b=\r\n0\r\n\r\n";
        for step in [1, 5, body.len()] {
            assert_eq!(
                read(&head, body, step),
                Ok(Some(Form::Body(b"s=s1&b=".to_vec())))
            );
        }
        assert_eq!(read(&head, b"4\r\ns=", 1), Ok(None));
        assert_eq!(read(&head, b"zz\r\n", 1), Err(Unread::Malformed));
        // Small chunks: far more framing than data, the data fits.
        let data = vec![b'x'; ROOM / 2];
        let mut chunked = Vec::new();
        for piece in data.chunks(2) {
            chunked.extend_from_slice(b"2\r\n");
            chunked.extend_from_slice(piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        assert!(chunked.len() > ROOM);
        assert_eq!(read(&head, &chunked, 4096), Ok(Some(Form::Body(data))));
        // More data than the buffer holds: refused before its end.
        let big = format!("{:x}\r\n{}", ROOM, "x".repeat(ROOM));
        assert_eq!(read(&head, big.as_bytes(), 1000), Ok(Some(Form::TooLarge)));
    }

    #[test]
    fn sized_forms_are_read_to_their_length() {
        let head = post(Framing::Length(7));
        assert_eq!(read(&head, b"s=s1", 1), Ok(None));
        assert_eq!(
            read(&head, b"s=s1&b=GET / HTTP/1.1", 3),
            Ok(Some(Form::Body(b"s=s1&b=".to_vec())))
        );
        let head = post(Framing::Length(ROOM as u64 * 2));
        let body = vec![b'x'; ROOM];
        assert_eq!(read(&head, &body, 1000), Ok(Some(Form::TooLarge)));
    }

    #[test]
    fn outcomes_are_counted_as_haproxy_counts_them() {
        let status = |total, altered| Tally { total, altered }.status();
        assert_eq!(status(0, 0), Status::None);
        assert_eq!(status(2, 0), Status::Errp);
        assert_eq!(status(2, 2), Status::Done);
        assert_eq!(status(3, 1), Status::Part);
    }

    #[test]
    fn page_codes_name_their_status() {
        for code in [
            "DENY", "DONE", "ERRP", "EXCD", "NONE", "PART", "UNKN", "IVAL",
        ] {
            assert_eq!(Status::named(code).code(), code);
        }
        assert_eq!(Status::named("XXXX"), Status::Unkn);
        assert_eq!(Status::named("DONE;up"), Status::Done);
    }
}
