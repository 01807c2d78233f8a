//! The logging keywords of a proxy and of `log` lines: `log-format`, `log-format-sd`,
//! `error-log-format`, `unique-id-format`, `unique-id-header`, `capture request|response
//! header`, `log-tag`, and `log <target> [len N] [format F] [sample R:S] <facility> [level
//! [minlevel]]`.
//!
//! Formats are kept as written while reading (a later `option httplog`/`tcplog` or
//! `log-format` replaces an earlier one, as in HAProxy, where all three set the same
//! format) and compiled by [`compile`] once the proxy's mode is final, with HAProxy's
//! messages: an unknown variable, or one reserved for HTTP mode in a TCP proxy, is an error
//! naming the line of the format.

use std::sync::Arc;

use super::diag::Diags;
use super::model::{LogDest, LogSample, LogTarget, Place, Proxy, ProxyKind, SyslogFormat};
use super::values;
use crate::runtime::logformat::{self, LogFormat, Stage};

/// A proxy's logging settings.
#[derive(Debug, Clone, Default)]
pub struct ProxyLog {
    /// `log-format`; unset: `option httplog`/`tcplog` decide.
    pub format: Option<Source>,
    /// `log-format-sd`: the structured data of RFC 5424 lines.
    pub sd_format: Option<Source>,
    /// `error-log-format`: the line of a connection refused before it became a session
    /// (an invalid PROXY header).
    pub error_format: Option<Source>,
    pub unique_id_format: Option<Source>,
    /// `unique-id-header NAME`: the unique id added to requests sent to servers.
    pub unique_id_header: Option<String>,
    pub req_captures: Vec<Capture>,
    pub resp_captures: Vec<Capture>,
    /// `capture cookie NAME len N`: the first request cookie (`%CC`) and response cookie
    /// (`%CS`) whose name starts with NAME, as `name=value` cut to N.
    pub cookie_capture: Option<Capture>,
    /// `log-tag` of this proxy (over the global one).
    pub tag: Option<String>,
    /// `option httplog clf`.
    pub clf: bool,
    /// `log ring@NAME` lines (and those `log global` copied).
    pub rings: Vec<RingLog>,
    /// `option logasap`: a session is logged once connected (TCP) or once the response
    /// head is forwarded (HTTP), its total time and bytes marked `+` as partial.
    pub logasap: bool,
    /// `option dontlog-normal`: only sessions with an error are logged.
    pub dontlog_normal: bool,
    /// `option log-separate-errors`: sessions with an error are logged at `err`, not `info`.
    pub separate_errors: bool,
    /// Filled by [`compile`].
    pub compiled: Compiled,
}

/// A format as written, and where.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub place: Place,
}

/// `capture request|response header NAME len N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub name: String,
    pub len: usize,
}

/// The compiled formats the runtime renders.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// The traffic line (`log-format`, `option httplog|tcplog`); None: no traffic logs.
    pub line: Option<Arc<LogFormat>>,
    pub sd: Option<Arc<LogFormat>>,
    pub error: Option<Arc<LogFormat>>,
    pub unique_id: Option<Arc<LogFormat>>,
}

/// Handles a logging keyword of a proxy section; false when `words[0]` is none of them.
pub fn proxy_keyword(
    p: &mut Proxy,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<bool, String> {
    let kw = words[0].as_str();
    let arg = |i: usize| words.get(i).map(String::as_str);
    // An empty argument is none, as HAProxy reads it.
    let source = || -> Result<Source, String> {
        match (arg(1).filter(|a| !a.is_empty()), arg(2)) {
            (None, _) => Err(format!("{kw} expects an argument.")),
            (Some(_), Some(_)) => Err(format!(
                "{kw} expects only one argument, don't forget to escape spaces!"
            )),
            (Some(text), None) => Ok(Source {
                text: text.into(),
                place: place.clone(),
            }),
        }
    };
    let ignored_in_backend = |diags: &mut Diags| {
        let ignored = p.kind == ProxyKind::Backend;
        if ignored {
            diags.warn(
                place,
                format!(
                    "backend '{}' : '{kw}' directive is ignored in backends.",
                    p.name
                ),
            );
        }
        ignored
    };
    match kw {
        "log-format" => {
            let s = source()?;
            if !ignored_in_backend(diags) {
                p.log.format = Some(s);
                p.options.httplog = None;
                p.options.tcplog = None;
            }
        }
        "log-format-sd" => {
            let s = source()?;
            if !ignored_in_backend(diags) {
                p.log.sd_format = Some(s);
            }
        }
        "error-log-format" => {
            let s = source()?;
            if !ignored_in_backend(diags) {
                p.log.error_format = Some(s);
            }
        }
        "unique-id-format" => p.log.unique_id_format = Some(source()?),
        "unique-id-header" => {
            let name = (arg(1).filter(|a| !a.is_empty()))
                .ok_or("unique-id-header expects an argument.")?;
            p.log.unique_id_header = Some(name.into());
        }
        "log-tag" => {
            let tag = arg(1).ok_or("'log-tag' expects a tag for the syslog records.")?;
            p.log.tag = Some(tag.into());
        }
        "capture" => capture(p, words, place, diags)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// HAProxy's longest cookie capture (`CAPTURE_LEN` - 1).
const MAX_COOKIE_CAPTURE: usize = 63;

/// `capture cookie NAME len N`, `capture request|response header NAME len N`.
fn capture(
    p: &mut Proxy,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    let arg = |i: usize| words.get(i).map(String::as_str);
    let side = arg(1).unwrap_or_default();
    if p.kind == ProxyKind::Defaults {
        return Err(format!(
            "'capture {side}' not allowed in 'defaults' section."
        ));
    }
    if !p.kind.is_frontend() {
        diags.warn(
            place,
            format!(
                "'capture' ignored because {} '{}' has no frontend capability.",
                p.kind.keyword(),
                p.name
            ),
        );
        return Ok(());
    }
    match side {
        "cookie" => {
            // As HAProxy: the fourth word is not checked, a sixth is let through.
            let (Some(name), Some(len)) = (arg(2), arg(4)) else {
                return Err("'capture' expects 'cookie' <cookie_name> 'len' <len>.".into());
            };
            if let Some(extra) = arg(6) {
                return Err(format!(
                    "'capture' cannot handle unexpected argument '{extra}'."
                ));
            }
            let mut len = values::number::<usize>(len, "capture")?;
            if len > MAX_COOKIE_CAPTURE {
                // HAProxy calls a listen section a proxy there.
                let kind = match p.kind {
                    ProxyKind::Listen => "proxy",
                    kind => kind.keyword(),
                };
                diags.global_warn(format!(
                    "truncating capture length to {MAX_COOKIE_CAPTURE} bytes for {kind} '{}'.",
                    p.name
                ));
                len = MAX_COOKIE_CAPTURE;
            }
            p.log.cookie_capture = Some(Capture {
                name: name.into(),
                len,
            });
            return Ok(());
        }
        "request" | "response" => {}
        _ => {
            return Err(
                "'capture' expects 'cookie', 'request header' or 'response header'.".into(),
            );
        }
    }
    let (Some("header"), Some(name), Some("len"), Some(len)) = (arg(2), arg(3), arg(4), arg(5))
    else {
        return Err(format!(
            "'capture {side}' expects 'header' <header_name> 'len' <len>."
        ));
    };
    if let Some(extra) = arg(6) {
        return Err(format!(
            "'capture {side}' cannot handle unexpected argument '{extra}'."
        ));
    }
    let len = values::number::<usize>(len, "capture")?;
    let capture = Capture {
        name: name.into(),
        len,
    };
    if side == "request" {
        p.log.req_captures.push(capture);
    } else {
        p.log.resp_captures.push(capture);
    }
    Ok(())
}

/// The line HAProxy notes as a proxy's log format's (`conf.lfs_line`), if any: the last of
/// `log-format`, `option httplog|tcplog` and the rules that parse a log format
/// (`parse::note_log_format_line` moves them all to that last line, so the first set is it).
pub fn noted_format_place(p: &Proxy) -> Option<&Place> {
    let logged = p.log.format.as_ref().map(|f| &f.place);
    logged
        .or(p.options.httplog.as_ref())
        .or(p.options.tcplog.as_ref())
        .or(p.rules.format_place.as_ref())
}

/// Compiles a proxy's formats once its mode is final (a frontend's; backends log nothing
/// of their own). Errors name the line of the format, as HAProxy's do (`log-format-sd`'s
/// the noted log-format line, [`noted_format_place`]); a log line's format
/// that holds something (even one that failed, by what was read before its error) in a
/// proxy with no log address is warned about, as HAProxy warns.
pub fn compile(p: &mut Proxy, diags: &mut Diags) {
    if !p.kind.is_frontend() {
        return;
    }
    let mode = p.mode;
    let own = p.name.clone();
    let noted_place = noted_format_place(p).cloned();
    // The tables their stick fetches name, for the checks (worded as HAProxy's contexts).
    let table_refs = std::cell::RefCell::new(Vec::new());
    let backend_refs = std::cell::RefCell::new(Vec::new());
    // `log-format` holds something, compiled or not (see `LogFormat::compile_kept`).
    let line_kept = std::cell::Cell::new(false);
    let at = |src: &Option<Source>, kw: &str, stage, diags: &mut Diags| {
        let src = src.as_ref()?;
        let within = match kw {
            "unique-id-format" => "unique-id-format string",
            _ => "log-format string",
        };
        let ((compiled, refs), named) = super::acl::collect_backend_refs(|| {
            super::stick::written_at(&own, &src.place, Some(within), || {
                if kw == "log-format" {
                    let (format, kept) = LogFormat::compile_kept(&src.text, mode, stage);
                    line_kept.set(kept);
                    return format;
                }
                if kw != "unique-id-format" {
                    return LogFormat::compile_at(&src.text, mode, stage);
                }
                let mut warnings = Vec::new();
                let f = LogFormat::compile_unique_id(&src.text, mode, &mut warnings);
                for w in warnings {
                    diags.warn(&src.place, w);
                }
                f
            })
        });
        table_refs.borrow_mut().extend(refs);
        (backend_refs.borrow_mut()).push((src.place.clone(), within, named));
        match compiled {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => {
                // Worded as HAProxy's check words it (`unique-id-format` as `unique-id`).
                // HAProxy names `log-format-sd`'s error by the proxy's noted log-format
                // line (`lfs_line`, not its own `lfsd_line`); with no noted line it names
                // `(null):0`, where hapx names the format's own line.
                let what = if kw == "unique-id-format" {
                    "unique-id"
                } else {
                    kw
                };
                let noted = noted_place.as_ref().filter(|_| kw == "log-format-sd");
                let place = noted.unwrap_or(&src.place);
                diags.global_alert(format!("Parsing [{place}]: failed to parse {what} : {e}"));
                None
            }
        }
    };
    let builtin = |text: &str| {
        Some(Arc::new(
            LogFormat::compile(text, mode).expect("HAProxy's predefined formats compile"),
        ))
    };
    let one = |src: &Option<Source>, kw: &str, diags: &mut Diags| at(src, kw, Stage::LogEnd, diags);
    let log = &p.log;
    let line = if log.format.is_some() {
        one(&log.format, "log-format", diags)
    } else if p.options.httplog.is_some() && log.clf {
        builtin(logformat::CLF_HTTP_LOG)
    } else if p.options.httplog.is_some() {
        builtin(logformat::HTTP_LOG)
    } else if p.options.tcplog.is_some() {
        builtin(logformat::TCP_LOG)
    } else {
        None
    };
    let compiled = Compiled {
        line,
        sd: one(&log.sd_format, "log-format-sd", diags),
        error: one(&log.error_format, "error-log-format", diags),
        unique_id: at(
            &log.unique_id_format,
            "unique-id-format",
            Stage::Request,
            diags,
        ),
    };
    let kept = line_kept.get() || (log.format.is_none() && compiled.line.is_some());
    if kept && p.logs.is_empty() && p.log.rings.is_empty() {
        diags.global_warn(format!(
            "log format ignored for {} '{}' since it has no log address.",
            p.kind.type_str(),
            p.name
        ));
    }
    p.log.compiled = compiled;
    p.rules.table_refs.extend(table_refs.into_inner());
    for (place, within, named) in backend_refs.into_inner() {
        super::rules::note_backend_refs(&mut p.rules, &place, Some(within), named);
    }
}

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// HAProxy's datagram size limit per target when `len` is not given.
pub const DEFAULT_MAX_LEN: usize = 1024;

/// What a `log` line says: `log global`, a target, or a ring's buffer (`ring@NAME`, with
/// the line's settings: facility, levels, `len`, `sample`).
#[derive(Debug, Clone)]
pub enum ParsedLog {
    Global,
    Target(LogTarget),
    Ring(String, LogTarget),
}

/// A `log ring@NAME ...` line: its lines go to the ring's buffer (and its servers) through
/// the ring's own format; the line's `format` and destination are not used.
#[derive(Debug, Clone)]
pub struct RingLog {
    pub ring: String,
    pub target: LogTarget,
    pub place: Place,
}

/// A `ring NAME` section (HAProxy's sink): a buffer of the last lines logged to it, read
/// with the runtime API's `show events`, and sent to its servers.
#[derive(Debug, Clone)]
pub struct Ring {
    pub name: String,
    pub place: Place,
    pub description: Option<String>,
    /// `format`: the header each line is stored with (raw: none).
    pub format: SyslogFormat,
    /// `size`: the buffer's bytes (HAProxy's default: one buffer, 16384).
    pub size: u64,
    /// `maxlen`: a stored line's longest, header included.
    pub maxlen: u64,
    /// `timeout connect`: how long a connection to a server may take.
    pub timeout_connect: Option<std::time::Duration>,
    /// `timeout server` (read, not acted on: the forwarder only writes).
    pub timeout_server: Option<std::time::Duration>,
    pub servers: Vec<RingServer>,
}

/// A ring's `server NAME ADDR [log-proto legacy|octet-count]`: a TCP syslog server the
/// ring's lines are sent to, oldest first.
#[derive(Debug, Clone)]
pub struct RingServer {
    pub name: String,
    pub addr: std::net::SocketAddr,
    /// `log-proto octet-count` (RFC 6587's octet counting); else each line ends with LF.
    pub octet_count: bool,
    pub place: Place,
}

/// HAProxy's sink formats (`ring ... format`).
const RING_FORMATS: [&str; 7] = [
    "raw", "short", "iso", "timed", "priority", "rfc3164", "rfc5424",
];

/// HAProxy's default ring size and line length: one buffer.
const RING_DEFAULT_SIZE: u64 = 16384;

/// `ring NAME`: a new section in `rings`, refused as HAProxy refuses a missing or taken name.
pub fn ring_start(rings: &mut Vec<Ring>, words: &[String], place: &Place) -> Result<(), String> {
    let name = words
        .get(1)
        .filter(|n| !n.is_empty())
        .ok_or("missing ring name.")?;
    if rings.iter().any(|r| &r.name == name) {
        return Err(format!("sink named '{name}' already exists."));
    }
    rings.push(Ring {
        name: name.clone(),
        place: place.clone(),
        description: None,
        format: SyslogFormat::Raw,
        size: RING_DEFAULT_SIZE,
        maxlen: RING_DEFAULT_SIZE,
        timeout_connect: None,
        timeout_server: None,
        servers: Vec::new(),
    });
    Ok(())
}

/// One line of a `ring` section, with HAProxy's messages.
pub fn ring_line(
    ring: &mut Ring,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    let arg = |i: usize| words.get(i).map(String::as_str).filter(|w| !w.is_empty());
    let invalid_size = |v: &str| format!("invalid size '{v}' for new sink buffer.");
    match words[0].as_str() {
        "description" => {
            let text = arg(1).ok_or("missing ring description text.")?;
            ring.description = Some(text.into());
        }
        "format" => {
            let v = arg(1).unwrap_or_default();
            if !RING_FORMATS.contains(&v) {
                return Err(format!("unknown format '{v}'."));
            }
            ring.format = SyslogFormat::parse(v).unwrap_or(SyslogFormat::Raw);
        }
        "size" => {
            let v = arg(1).unwrap_or_default();
            let size = u64::try_from(values_atol(v))
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid_size(v))?;
            if size < ring.size {
                // HAProxy also refuses the configuration then, with no message of its
                // own; hapx only warns (its diagnostics have no silent error).
                diags.warn(
                    place,
                    format!(
                        "ignoring new size '{size}' that is smaller than current size '{}' for ring '{}'.",
                        ring.size, ring.name
                    ),
                );
            } else {
                ring.size = size;
            }
        }
        "maxlen" => {
            let v = arg(1).unwrap_or_default();
            let maxlen = u64::try_from(values_atol(v))
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid_size(v))?;
            if maxlen > ring.size {
                diags.global_warn(format!(
                    "ring '{}' event max length '{maxlen}' exceeds size, forced to size '{}'.",
                    ring.name, ring.size
                ));
            }
            ring.maxlen = maxlen.min(ring.size);
        }
        "timeout" => {
            // HAProxy reads `connect` and `server`, and passes over any other word.
            if let Some(which @ ("connect" | "server")) = arg(1) {
                let v = arg(2)
                    .ok_or_else(|| format!("'timeout {which}' expects <time> as argument."))?;
                let t = values::timer(v, &format!("timeout {which}"))?;
                let t = (!t.is_zero()).then_some(t);
                match which {
                    "connect" => ring.timeout_connect = t,
                    _ => ring.timeout_server = t,
                }
            }
        }
        "server" => ring_server(ring, words, place, diags)?,
        other => return Err(format!("unknown statement '{other}'.")),
    }
    Ok(())
}

/// `server NAME ADDR [log-proto legacy|octet-count]` in a ring.
fn ring_server(
    ring: &mut Ring,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    let arg = |i: usize| words.get(i).map(String::as_str).filter(|w| !w.is_empty());
    let (Some(name), Some(addr)) = (arg(1), arg(2)) else {
        // HAProxy's server parser words it without "parsing".
        diags.check_alert(
            place,
            "'server' expects <name> and <addr>[:<port>] as arguments.",
        );
        return Ok(());
    };
    // Worded as HAProxy's server parser words them, without "parsing", naming the ring.
    let mut refuse = |message: String| {
        diags.check_alert(place, format!("'server {}/{name}' : {message}", ring.name));
    };
    let (_, host_port) = values::strip_family(addr);
    let (host, port) = values::split_host_port(host_port);
    let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() else {
        refuse(format!("invalid address: '{host}' in '{addr}'"));
        return Ok(());
    };
    // Without a port, as HAProxy: port 0, which no connection reaches.
    let port = port.parse().unwrap_or(0);
    let mut octet_count = false;
    let mut i = 3;
    while let Some(word) = arg(i) {
        if word == "log-proto" {
            octet_count = match arg(i + 1) {
                Some("octet-count") => true,
                Some("legacy") => false,
                other => {
                    refuse(format!(
                        "'log-proto' expects one of 'legacy' or 'octet-count' but got '{}'.",
                        other.unwrap_or_default()
                    ));
                    return Ok(());
                }
            };
            i += 1;
        }
        i += 1;
    }
    ring.servers.push(RingServer {
        name: name.into(),
        addr: std::net::SocketAddr::new(ip, port),
        octet_count,
        place: place.clone(),
    });
    Ok(())
}

/// A ring with servers is a backend to HAProxy, warned about as one when it lacks its
/// connect or server timeout (the last declared first, as HAProxy lists its sinks).
pub fn check_rings(rings: &[Ring], diags: &mut Diags) {
    let untimed = |r: &&Ring| r.timeout_connect.is_none() || r.timeout_server.is_none();
    for ring in rings
        .iter()
        .rev()
        .filter(|r| !r.servers.is_empty())
        .filter(untimed)
    {
        diags.global_warn(format!(
            "missing timeouts for backend '{}'.\n   \
             | While not properly invalid, you will certainly encounter various problems\n   \
             | with such a configuration. To fix this, please ensure that all following\n   \
             | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
            ring.name
        ));
    }
}

/// A `log-forward NAME` section: syslog received on its `bind` (TCP) and `dgram-bind`
/// (UDP) addresses, re-emitted to its `log` targets.
#[derive(Debug, Clone)]
pub struct LogForward {
    pub name: String,
    pub place: Place,
    /// `bind`: TCP listeners (octet-counting or LF framing).
    pub binds: Vec<(std::net::SocketAddr, Place)>,
    /// `dgram-bind`: UDP listeners, one message per datagram.
    pub dgram_binds: Vec<(std::net::SocketAddr, Place)>,
    /// `maxconn`: TCP connections at once (HAProxy's default: 10).
    pub maxconn: usize,
    /// `backlog`: the TCP listeners' queue.
    pub backlog: Option<u32>,
    /// `timeout client`: a TCP connection idle that long is closed (none: never).
    pub timeout_client: Option<std::time::Duration>,
    pub logs: Vec<LogTarget>,
    pub rings: Vec<RingLog>,
}

/// `log-forward NAME`: a new section, with HAProxy's message for a missing name.
pub fn log_forward_start(
    sections: &mut Vec<LogForward>,
    words: &[String],
    place: &Place,
) -> Result<(), String> {
    let name = words
        .get(1)
        .filter(|n| !n.is_empty())
        .ok_or("missing name for ip-forward section.")?;
    sections.push(LogForward {
        name: name.clone(),
        place: place.clone(),
        binds: Vec::new(),
        dgram_binds: Vec::new(),
        maxconn: 10,
        backlog: None,
        timeout_client: None,
        logs: Vec::new(),
        rings: Vec::new(),
    });
    Ok(())
}

/// One line of a `log-forward` section, any keyword HAProxy does not know refused with
/// its message. `global`: the global `log` lines, which `log global` copies.
pub fn log_forward_line(
    section: &mut LogForward,
    words: &[String],
    place: &Place,
    global: &super::model::Global,
) -> Result<(), String> {
    let arg = |i: usize| words.get(i).map(String::as_str).filter(|w| !w.is_empty());
    let kw = words[0].as_str();
    let integer = || arg(1).ok_or_else(|| format!("'{kw}' expects an integer argument."));
    match kw {
        "bind" | "dgram-bind" => {
            // HAProxy passes over a `bind` without an address.
            let Some(spec) = arg(1) else {
                return Ok(());
            };
            let addr = forward_bind_addr(spec).map_err(|e| format!("'{kw} {spec}' : {e}"))?;
            let list = if kw == "bind" {
                &mut section.binds
            } else {
                &mut section.dgram_binds
            };
            list.push((addr, place.clone()));
        }
        "maxconn" => section.maxconn = usize::try_from(values_atol(integer()?)).unwrap_or(0),
        "backlog" => section.backlog = u32::try_from(values_atol(integer()?)).ok(),
        "timeout" => {
            if arg(1) == Some("client") {
                let v = arg(2).ok_or("missing timeout client value.")?;
                let t = values::timer(v, "timeout client")?;
                section.timeout_client = (!t.is_zero()).then_some(t);
            }
        }
        "log" => match log_target(words, false)? {
            ParsedLog::Global => {
                section.logs.extend(global.logs.iter().cloned());
                section.rings.extend(global.ring_logs.iter().cloned());
            }
            ParsedLog::Target(t) => section.logs.push(t),
            ParsedLog::Ring(ring, target) => section.rings.push(RingLog {
                ring,
                target,
                place: place.clone(),
            }),
        },
        other => return Err(format!("unknown keyword '{other}' in log-forward section.")),
    }
    Ok(())
}

/// A log-forward listener's address: `[udp@|tcp@|ipv4@|ipv6@]host:port`, refused with
/// HAProxy's words.
fn forward_bind_addr(spec: &str) -> Result<std::net::SocketAddr, String> {
    let (_, host_port) = values::strip_family(spec);
    let (host, port) = values::split_host_port(host_port);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse()
        .map_err(|_| format!("missing port specification in '{spec}'"))?;
    let ip: std::net::IpAddr = if host.is_empty() || host == "*" {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        host.parse()
            .map_err(|_| format!("invalid address: '{host}' in '{spec}'"))?
    };
    Ok(std::net::SocketAddr::new(ip, port))
}

/// C's atol: the number the text starts with, 0 without one.
fn values_atol(text: &str) -> i64 {
    let t = text.trim_start();
    let (sign, digits) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    sign * digits[..end].parse::<i64>().unwrap_or(0)
}

/// A `log` line: `log global`, or a target `log <address> [len <length>] [format <format>]
/// [sample <ranges>:<size>] <facility> [<level> [<minlevel>]]` (`ring@NAME` for a ring).
/// `in_global`: whether the line is the global section's, where HAProxy's message for a
/// missing argument does not offer `global`.
pub fn log_target(words: &[String], in_global: bool) -> Result<ParsedLog, String> {
    let arg = |i: usize| words.get(i).map(String::as_str).filter(|w| !w.is_empty());
    let missing = || {
        let or_global = if in_global { "" } else { "or global" };
        format!("log : expects <address> and <facility> {or_global} as arguments")
    };
    let addr = arg(1).ok_or_else(missing)?;
    if addr == "global" {
        return Ok(ParsedLog::Global);
    }
    // A ring's line is read as any other, then kept apart (see `RingLog`).
    let ring = addr.strip_prefix("ring@");
    let dest = match ring {
        Some(_) => LogDest::Stdout,
        None => destination(addr)?,
    };
    let mut target = LogTarget {
        dest,
        facility: 0,
        level: 7,
        min_level: 0,
        max_len: DEFAULT_MAX_LEN,
        format: SyslogFormat::Default,
        sample: None,
    };
    // In HAProxy's order, each at most once: `len`, `format`, `sample` (another order
    // reads the word as the facility).
    let mut i = 2;
    if arg(i) == Some("len") {
        let v = arg(i + 1).unwrap_or_default();
        target.max_len = v
            .parse()
            .ok()
            .filter(|n| (80..=65535).contains(n))
            .ok_or_else(|| {
                format!("log : invalid log length '{v}', must be between 80 and 65535")
            })?;
        i += 2;
    }
    if arg(i) == Some("format") {
        let v = arg(i + 1).unwrap_or_default();
        target.format =
            SyslogFormat::parse(v).ok_or_else(|| format!("log : unknown log format '{v}'"))?;
        i += 2;
    }
    if arg(i) == Some("sample") {
        let v = arg(i + 1).ok_or("'log' : missing value after 'sample'.")?;
        target.sample = Some(sample(v)?);
        i += 2;
    }
    let facility = arg(i).ok_or_else(missing)?;
    target.facility = FACILITIES
        .iter()
        .position(|f| *f == facility)
        .ok_or_else(|| format!("log : unknown log facility '{facility}'"))?
        as u8;
    if let Some(l) = arg(i + 1) {
        target.level = level(l).ok_or_else(|| format!("log : unknown optional log level '{l}'"))?;
    }
    if let Some(min) = arg(i + 2) {
        target.min_level = level(min)
            .ok_or_else(|| format!("log : unknown optional minimum log level '{min}'"))?;
    }
    if let Some(extra) = arg(i + 3) {
        return Err(format!("log : cannot handle unexpected argument '{extra}'"));
    }
    Ok(match ring {
        Some(name) => ParsedLog::Ring(name.into(), target),
        None => ParsedLog::Target(target),
    })
}

pub(super) fn level(name: &str) -> Option<u8> {
    LEVELS.iter().position(|x| *x == name).map(|n| n as u8)
}

fn destination(addr: &str) -> Result<LogDest, String> {
    Ok(match values::strip_family(addr) {
        (_, "stdout") => LogDest::Stdout,
        (_, "stderr") => LogDest::Stderr,
        (Some("unix") | None, path) if path.starts_with('/') => LogDest::Unix(path.into()),
        (Some("udp" | "ipv4" | "ipv6" | "udp4" | "udp6") | None, hp) => {
            let (host, port) = values::split_host_port(hp);
            let port = if port.is_empty() {
                514
            } else {
                values::number(port, "log")?
            };
            let ip = host
                .parse()
                .map_err(|_| format!("log address '{addr}' is not an IP address or a path"))?;
            LogDest::Udp(std::net::SocketAddr::new(ip, port))
        }
        (Some(f), _) => return Err(format!("log address family '{f}@' is not supported")),
    })
}

/// `sample <ranges>:<size>`: of every `size` lines, those numbered in `ranges` (from 1,
/// `a-b` or `n`, comma-separated) are sent.
fn sample(v: &str) -> Result<LogSample, String> {
    let (ranges, size) = v.split_once(':').ok_or("log : Missing sample size")?;
    let mut picked = Vec::new();
    for range in ranges.split(',') {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        match (lo.parse::<u32>(), hi.parse::<u32>()) {
            (Ok(lo), Ok(hi)) if lo > 0 && lo <= hi => picked.push((lo, hi)),
            _ => return Err(format!("log : wrong sample range '{range}'")),
        }
    }
    let size: u32 =
        size.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("log : wrong sample size '{size}' for sample range '{ranges}'")
        })?;
    let highest = picked.iter().map(|r| r.1).max().unwrap_or(0);
    if highest > size {
        return Err(format!(
            "log : sample size {size} should be greater or equal to {highest} the maximum of the high ranges limits"
        ));
    }
    Ok(LogSample {
        ranges: picked,
        size,
    })
}

/// `global` section keywords for logging: `log-send-hostname [name]`.
pub fn send_hostname(words: &[String]) -> String {
    match words.get(1) {
        Some(name) => name.clone(),
        None => crate::runtime::log::hostname(),
    }
}
