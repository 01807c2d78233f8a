//! The runtime API on the stats socket, as HAProxy's CLI speaks it: one line of commands
//! (several separated by `;`), each answer followed by an empty line (by the prompt in
//! interactive mode, which `prompt` turns on), then the connection closes. Answers and error
//! messages are HAProxy 2.6's, word for word.
//!
//! Commands: `help`, `show info`, `show stat`, `show servers state [BACKEND]`, `show backend`,
//! `show resolvers [SECTION]` (see `runtime::dns`), `show errors [PROXY] [request|response]`
//! (see `runtime::error_capture`), `clear counters [all]`,
//! `enable|disable server B/S`, `set server B/S state ready|drain|maint`,
//! `set server B/S health up|stopping|down`,
//! `set server B/S weight N[%]` (and `set weight B/S N[%]`), `set server B/S addr IP [port [+-]N]`,
//! `set server B/S check-port N`, `set server B/S fqdn NAME` (with `resolvers`),
//! `set server B/S agent up|down`, `agent-addr IP [port N]`, `agent-port N`, `agent-send
//! TEXT`, `enable|disable agent B/S` (see `runtime::agent`), `enable|disable health B/S`,
//! `get weight B/S`, `set maxconn server B/S N`, `set maxconn frontend F N`, `set maxconn
//! global N`, `set rate-limit connections|sessions global N`, `set timeout cli DELAY`,
//! `enable|disable frontend F`, `shutdown frontend F` (for good),
//! `enable|disable dynamic-cookie backend B`,
//! `set dynamic-cookie-key backend B KEY` (see `runtime::persist`),
//! `shutdown sessions server B/S` (see `runtime::shutdown`), the map commands (`show|get|add|
//! set|del|clear|prepare|commit map` and the same but `set` for `acl`, see `runtime::map`), `show sess [ID|all]` and
//! `shutdown session ID` (the streams on a server: see [`show_sess`]), `show ssl crt-list
//! [-n] [FILE]` (see `runtime::tls`), `show|set|commit|abort|new|del ssl cert` and
//! `add|del ssl crt-list` (see `runtime::ssl_cert`), `show|set ssl ocsp-response` (see
//! `runtime::ocsp`), `prompt`, `quit`; and
//! `_getsocks` (level admin with `expose-fd listeners`), which hands this process's listening sockets to a new process
//! over SCM_RIGHTS for a reload without a refused connection.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::state::{Admin, AdminFlag, Backend, Frontend, Server, ServicePort, State};
use super::{stats, transitions};
use crate::config::keywords;
use crate::config::model::{CliLevel, StatsSocket};

/// The listening sockets this process may hand over: address and a duplicate descriptor.
pub type Handover = Arc<Mutex<Vec<(SocketAddr, std::net::TcpListener)>>>;

const HELP: &str = "The following commands are valid at this level:
  help                                    : this message
  prompt                                  : toggle interactive mode with prompt
  quit                                    : disconnect
  show info                               : report information about the running process
  show stat                               : report counters for each proxy and server
  clear counters                          : clear max statistics counters (or all counters)
  show servers state [<backend>]          : dump volatile server information (all or for a single backend)
  show backend                            : list backends in the current running config
  show resolvers [id]                     : dumps counters from all resolvers section and associated name servers
  show env [var]                          : dump environment variables known to the process
  show errors [<px>] [request|response]   : report last request and/or response errors for each proxy
  show events [<sink>] [-w] [-n]          : show event sink state
  get weight <bk>/<srv>                   : report a server's current weight
  get var <name>                          : retrieve contents of a process-wide variable
  enable server <bk>/<srv>                : re-enable a server in maintenance
  disable server <bk>/<srv>               : put a server in maintenance
  enable frontend <frontend>              : re-enable specific frontend
  disable frontend <frontend>             : temporarily disable specific frontend
  enable dynamic-cookie backend <bk>      : enable dynamic cookies on a specific backend
  disable dynamic-cookie backend <bk>     : disable dynamic cookies on a specific backend
  set dynamic-cookie-key backend <bk> <k> : change a backend secret key for dynamic cookies
  set server <bk>/<srv> state <state>     : set a server's state: ready, drain or maint
  set server <bk>/<srv> health <h>        : force a server's health: up, stopping or down
  set server <bk>/<srv> weight <w>[%]     : change a server's weight
  set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)
  set maxconn frontend <frontend> <value> : change a frontend's maxconn setting
  set maxconn global <value>              : change the per-process maxconn setting
  set maxconn server <bk>/<srv>           : change a server's maxconn setting
  set rate-limit <setting> <value>        : change a rate limiting value
  set timeout [cli] <delay>               : change a timeout setting
  set server <bk>/<srv> agent <up|down>  : force a server's agent state
  set server <bk>/<srv> agent-addr <ip> [port <p>] : change the address (and port) of a server's agent
  set server <bk>/<srv> agent-port <p>    : change the port of a server's agent
  set server <bk>/<srv> agent-send <text> : change what is sent to a server's agent
  enable agent <bk>/<srv>                 : enable agent checks
  disable agent <bk>/<srv>                : disable agent checks
  enable health <bk>/<srv>                : enable health checks
  disable health <bk>/<srv>               : disable health checks
  set server <bk>/<srv> addr <ip> [port <p>] : change a server's address (and port)
  set server <bk>/<srv> check-port <p>    : change a server's health check port
  set server <bk>/<srv> fqdn <FQDN>       : change a server's FQDN (with resolvers)
  show sess [id]                          : report the list of current sessions or dump this exact session
  show ssl crt-list [-n] [<list>]         : show the list of crt-lists or the content of a crt-list file <list>
  add ssl crt-list <list> <cert> [opts]*  : add to crt-list file <list> a line <cert> or a payload
  del ssl crt-list <list> <cert[:line]>   : delete a line <cert> from crt-list file <list>
  show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file
  show ssl ocsp-response [id]             : display the IDs of the OCSP responses used in memory, or the details of a single OCSP response
  set ssl ocsp-response <resp|payload>    : update a certificate's OCSP Response from a base64-encode DER
  set ssl cert <certfile> <payload>       : replace a certificate file
  commit ssl cert <certfile>              : commit a certificate file
  abort ssl cert <certfile>               : abort a transaction for a certificate file
  new ssl cert <certfile>                 : create a new certificate file to be used in a crt-list or a directory
  del ssl cert <certfile>                 : delete an unused certificate file
  shutdown frontend <frontend>            : stop a specific frontend
  shutdown session [id]                   : kill a specific session
  shutdown sessions server <bk>/<srv>     : kill sessions on a server
  show peers [dict|-] [section]           : dump some information about all the peers or this peers section
  show table [<table>] [data.<type> <op> <v>] [key <k>] : report table usage stats or dump a table's entries
  clear table <table> [key <k>]           : remove entries from a table (all or by key)
  set table <table> key <k> [data.<type> <v>]... : update or create a table entry's data
  show acl [@<ver>] <acl>]                : report available acls or dump an acl's contents
  get acl <acl> <value>                   : report the patterns matching a sample for an ACL
  add acl [@<ver>] <acl> <pattern>        : add an acl entry
  del acl <acl> [<key>|#<ref>]            : delete acl entries matching <key>
  clear acl [@<ver>] <acl>                : clear the contents of this acl
  prepare acl <acl>                       : prepare a new version for atomic ACL replacement
  commit acl @<ver> <acl>                 : commit the ACL at this version
  show map [@<ver>] [<map>]               : report available maps or dump a map's contents
  get map <map> <value>                   : report the keys and values matching a sample for a map
  add map [@<ver>] <map> <key> <val>      : add a map entry
  set map <map> [<key>|#<ref>] <value>    : modify a map entry
  del map <map> [<key>|#<ref>]            : delete map entries matching <key>
  clear map [@<ver>] <map>                : clear the contents of this map
  prepare map <map>                       : prepare a new version for atomic map replacement
  commit map @<ver> <map>                 : commit the map at this version
";

/// Sessions the master passes for its CLI's `@N` commands ([`super::master_link`]), each
/// with the level of the master's CLI session, for [`serve`] to take as it takes a `stats
/// socket`'s connections.
pub type MasterSessions = tokio::sync::mpsc::UnboundedReceiver<(CliLevel, UnixStream)>;

/// Serves the runtime API until the process exits: connections on every `stats socket`
/// and, in master-worker mode, the sessions the master passes (`master`). They are HAProxy's
/// `GLOBAL` frontend, whose `maxconn` (`stats maxconn`, `limits::CLI_MAXCONN` by default)
/// bounds them all together (HAProxy's worker takes the master's on a listener of that same
/// frontend): with that many sessions open, no socket accepts and no passed session is
/// taken, and a new client waits (in the backlog, or in the link) until one leaves, as
/// when HAProxy pauses a full frontend's listeners. A session closes once it has been idle
/// (nothing read, nothing written) for `stats timeout`, the frontend's client timeout, or
/// what `set timeout cli` made it.
pub async fn serve(
    state: Arc<State>,
    sockets: Vec<(StatsSocket, UnixListener)>,
    handover: Handover,
    mut master: Option<MasterSessions>,
) {
    let bound = state.config.global.cli_maxconn;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        bound.unwrap_or(crate::limits::CLI_MAXCONN),
    ));
    let timeout = state
        .config
        .global
        .stats_timeout
        .unwrap_or(std::time::Duration::from_secs(10));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some((conf, stream, listener)) = next_session(&state, &sockets, &mut master).await
        else {
            return;
        };
        let (state, handover) = (state.clone(), handover.clone());
        tokio::spawn(async move {
            let _slot = slot;
            // HAProxy's session (a job, a connection and a stream in `show info`).
            let _session = super::stats::InnerSession::begin();
            super::cli_session_begun();
            let _ = session(state, conf, stream, handover, listener, timeout).await;
        });
    }
}

/// The next runtime API session: a connection accepted on a `stats socket` (its settings
/// and its number among the `stats socket` lines, from 1, as HAProxy numbers its
/// listeners), or one the master passed (at its session's level, with the listeners
/// exposed as on the master's own link in HAProxy; no number). None once there is neither
/// socket nor master any more.
async fn next_session(
    state: &State,
    sockets: &[(StatsSocket, UnixListener)],
    master: &mut Option<MasterSessions>,
) -> Option<(StatsSocket, UnixStream, Option<usize>)> {
    use std::task::Poll;
    loop {
        let next = std::future::poll_fn(|cx| {
            for (at, (_, socket)) in sockets.iter().enumerate() {
                if let Poll::Ready(accepted) = socket.poll_accept(cx) {
                    return Poll::Ready(Arrived::Socket(at, accepted.map(|(s, _)| s)));
                }
            }
            match master.as_mut().map(|m| m.poll_recv(cx)) {
                Some(Poll::Ready(passed)) => Poll::Ready(Arrived::Master(passed)),
                _ if sockets.is_empty() && master.is_none() => Poll::Ready(Arrived::Master(None)),
                _ => Poll::Pending,
            }
        })
        .await;
        match next {
            Arrived::Socket(at, Ok(stream)) => {
                let conf = sockets[at].0.clone();
                let global = &state.config.global;
                let listener = global
                    .stats_sockets
                    .iter()
                    .position(|s| s.path == conf.path);
                return Some((conf, stream, Some(listener.map_or(0, |at| at + 1))));
            }
            Arrived::Socket(_, Err(_)) => {}
            Arrived::Master(Some((level, stream))) => {
                let conf = StatsSocket {
                    path: "master".into(),
                    mode: None,
                    level,
                    expose_fd_listeners: true,
                    place: Default::default(),
                };
                return Some((conf, stream, None));
            }
            // The master's link is gone (the process stops): the sockets go on meanwhile.
            Arrived::Master(None) if master.take().is_some() && !sockets.is_empty() => {}
            Arrived::Master(None) => return None,
        }
    }
}

/// What [`next_session`] saw come: a `stats socket`'s connection (the socket's index), or
/// a session from the master (None: its link is gone, or there is neither).
enum Arrived {
    Socket(usize, std::io::Result<UnixStream>),
    Master(Option<(CliLevel, UnixStream)>),
}

/// Serves one CLI connection, listed by `show sess` as a stream of HAProxy's `GLOBAL`
/// frontend when it came to `stats socket` number `listener`. Killed (`shutdown session`),
/// its reading ends ([`super::shutdown::Registration::cli`]) and it closes, as HAProxy's,
/// once it has answered the command it runs and, killed by a command of its own, one more
/// of that line, as HAProxy's runs one more. Each read and write waits at most `idle`.
async fn session(
    state: Arc<State>,
    conf: StatsSocket,
    stream: UnixStream,
    handover: Handover,
    listener: Option<usize>,
    mut idle: Duration,
) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    // Declared after the socket's halves: dropped before it closes (see `runtime::shutdown`).
    let socket = reader.get_ref().as_ref().as_fd();
    let listed = listener.map(|at| super::shutdown::Registration::cli(at, socket));
    // Whether it was killed before the command it runs began (that command is its last).
    let mut killed_before = false;
    let mut interactive = false;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if within(idle, reader.read_until(b'\n', &mut raw)).await? == 0 {
            break;
        }
        // Bytes, as HAProxy reads them (a latin-1 server name is fine; see `bytestr`).
        let line = crate::bytestr::from_bytes(&raw).into_owned();
        let line = line.trim_end_matches(['\n', '\r']);
        // A line ending with HAProxy's payload pattern is followed by its payload.
        let (line, payload) = match line.strip_suffix("<<") {
            Some(command) => {
                let payload = read_payload(&mut reader, &mut write, interactive, idle).await?;
                (command, Some(payload))
            }
            None => (line, None),
        };
        for cmd in line.split(';').map(str::trim) {
            if killed_before {
                return Ok(());
            }
            killed_before = listed.as_ref().is_some_and(|l| l.killed_alone());
            if cmd == "_getsocks" {
                drop(listed);
                let reply = getsocks(&conf, &handover);
                let stream = reader
                    .into_inner()
                    .reunite(write)
                    .map_err(|e| std::io::Error::other(e.to_string()));
                return match (reply, stream) {
                    (Ok(fds), Ok(stream)) => super::handover::send_fds(&stream, &fds).await,
                    (Err(msg), Ok(mut stream)) => stream.write_all(msg.as_bytes()).await,
                    (_, Err(e)) => Err(e),
                };
            }
            // As HAProxy's keywords, `prompt` and `quit` are their first word alone.
            match cmd.split_whitespace().next() {
                None => continue,
                Some("prompt") => interactive = !interactive,
                Some("quit") => return Ok(()),
                Some(_) => {
                    let (answer, ended) = match (get_var(conf.level, cmd), cli_timeout(cmd)) {
                        (Some(shown), _) => shown,
                        (None, Some(Ok(limit))) => {
                            idle = limit;
                            (String::new(), false)
                        }
                        (None, Some(Err(refusal))) => (refusal.into(), false),
                        (None, None) => {
                            let payload = payload.as_deref();
                            (execute(&state, conf.level, cmd, payload).await, false)
                        }
                    };
                    let answer = crate::bytestr::to_bytes(&answer);
                    within(idle, write.write_all(&answer)).await?;
                    if ended && !interactive {
                        continue;
                    }
                }
            }
            // As HAProxy: every answer ends with an empty line, or the prompt.
            within(idle, write.write_all(end_of_answer(interactive))).await?;
        }
        if !interactive {
            return Ok(());
        }
        if line.trim().is_empty() {
            within(idle, write.write_all(end_of_answer(true))).await?;
        }
    }
    Ok(())
}

/// The payload after a command line ending with `<<`: the lines up to an empty one, joined
/// by line feeds (a single line feed when there is none, as HAProxy passes it). An
/// interactive session is prompted `+ ` for each line, as by HAProxy.
async fn read_payload(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    interactive: bool,
    idle: Duration,
) -> std::io::Result<String> {
    let mut payload = String::new();
    let mut raw = Vec::new();
    loop {
        if interactive {
            within(idle, write.write_all(b"+ ")).await?;
        }
        raw.clear();
        if within(idle, reader.read_until(b'\n', &mut raw)).await? == 0 {
            break;
        }
        let line = crate::bytestr::from_bytes(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            break;
        }
        if !payload.is_empty() {
            payload.push('\n');
        }
        payload.push_str(line);
    }
    // HAProxy then reads the line feed past its empty payload.
    if payload.is_empty() {
        payload.push('\n');
    }
    Ok(payload)
}

/// An I/O of a CLI session, ended as timed out when it waits more than `idle`.
async fn within<T>(
    idle: Duration,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match tokio::time::timeout(idle, io).await {
        Ok(done) => done,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// `set timeout cli DELAY` (None: another command), at any level as in HAProxy 2.6: the
/// session's idle timeout from now on (seconds unless a unit follows), or HAProxy's refusal.
fn cli_timeout(cmd: &str) -> Option<Result<Duration, &'static str>> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let ["set", "timeout", rest @ ..] = words.as_slice() else {
        return None;
    };
    Some(match rest {
        ["cli", delay, ..] => cli_delay(delay).ok_or("Invalid timeout value.\n"),
        ["cli"] => Err("Expects an integer value.\n"),
        _ => Err("'set timeout' only supports 'cli'.\n"),
    })
}

/// A `set timeout cli` delay as HAProxy's `parse_time_err` reads it in seconds: digits and
/// an optional unit, nothing after, from a millisecond to 2^32-1 ms.
fn cli_delay(text: &str) -> Option<Duration> {
    if crate::config::values::duration_stray_char(text).is_some() {
        return None;
    }
    let delay = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => crate::config::values::duration(text).ok()?,
    };
    // HAProxy's parse_time_err refuses what overflows its unsigned milliseconds.
    let max = Duration::from_millis(u32::MAX.into());
    (Duration::from_millis(1)..=max)
        .contains(&delay)
        .then_some(delay)
}

fn end_of_answer(interactive: bool) -> &'static [u8] {
    if interactive { b"\n> " } else { b"\n" }
}

/// `get var NAME` (None: another command): HAProxy's answer, and whether it is whole
/// without the empty line that ends the others (a shown variable's, in HAProxy 2.6). It
/// needs level operator, as HAProxy's.
fn get_var(level: CliLevel, cmd: &str) -> Option<(String, bool)> {
    let mut words = cmd.split_whitespace();
    if (words.next(), words.next()) != (Some("get"), Some("var")) {
        return None;
    }
    if level == CliLevel::User {
        return Some(("Permission denied\n".into(), false));
    }
    Some(super::vars::show_proc(words.next().unwrap_or_default()))
}

/// Runs one command, with the payload that followed its `<<` if any; the answer as HAProxy
/// words it. Only `add map`, `set ssl cert`, `set ssl ocsp-response` and `add ssl
/// crt-list` read a payload.
pub async fn execute(
    state: &Arc<State>,
    level: CliLevel,
    cmd: &str,
    payload: Option<&str>,
) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let admin = level == CliLevel::Admin;
    let denied = || "Permission denied\n".to_string();
    // As HAProxy: a command that names none of its keywords gets the close ones, whatever
    // the level; a known one is refused below when the level is not enough.
    if let Some(refusal) = keywords::cli_refusal(&words, keywords::WORKER_CLI) {
        return refusal;
    }
    // Table commands check the level each action needs, as HAProxy's.
    // Map and ACL commands need no level, as in HAProxy 2.6.
    if let (["add", "map", args @ ..], Some(payload)) = (words.as_slice(), payload) {
        return super::map::add_payload(args, payload);
    }
    if let [verb, noun @ ("map" | "acl"), args @ ..] = words.as_slice() {
        let listing = match *noun {
            "map" => super::map::Listing::Map,
            _ => super::map::Listing::Acl,
        };
        if super::map::is_command(listing, verb) {
            return super::map::command(listing, verb, args);
        }
    }
    if let [verb, "table", args @ ..] = words.as_slice()
        && let Some(action) = super::stick::cli::Action::named(verb)
    {
        return super::stick::cli::command(&state.tables, level, action, args);
    }
    if let [verb @ ("add" | "del"), "ssl", "crt-list", args @ ..] = words.as_slice() {
        return super::ssl_cert::edit_crt_list(state, level, verb, args, payload);
    }
    if let [verb, "ssl", "cert", args @ ..] = words.as_slice()
        && let Some(verb) = super::ssl_cert::Verb::named(verb)
    {
        return super::ssl_cert::command(state, level, verb, args, payload);
    }
    if let ["set", "ssl", "ocsp-response", args @ ..] = words.as_slice() {
        return super::ocsp::set(state, args, payload);
    }
    match words.as_slice() {
        ["help"] => HELP.into(),
        ["show", "peers", args @ ..] => super::peers::show(args),
        ["show", "info", args @ ..] if args.contains(&"typed") => stats::info_typed(state),
        ["show", "info", args @ ..] if args.contains(&"json") => stats::info_json(state),
        ["show", "info", ..] => stats::info(state),
        ["show", "stat", args @ ..] => match stats::StatFilter::read(state, args) {
            Ok((filter, words)) => {
                let output = stats::StatOutput::read(words);
                match output.format {
                    stats::StatFormat::Typed => stats::stat_typed(state, filter, output.described),
                    stats::StatFormat::Json => stats::stat_json(state, filter),
                    stats::StatFormat::Csv => stats::csv_filtered(state, filter),
                }
            }
            Err(refusal) => refusal,
        },
        ["show", "servers", "state"] => stats::servers_state(state, None).unwrap_or_else(|e| e),
        ["show", "servers", "state", b] => {
            stats::servers_state(state, Some(b)).unwrap_or_else(|e| e)
        }
        ["show", "backend"] => {
            let mut out = String::from("# name\n");
            for b in &state.backends {
                out.push_str(&b.name);
                out.push('\n');
            }
            out
        }
        ["get", "weight", spec] => match state.find_server(spec) {
            Ok((_, s)) => format!("{} (initial {})\n", s.weight.load(Relaxed), s.opts.weight),
            Err(e) => e.into(),
        },
        ["enable" | "disable", "server", spec] if admin => {
            let admin_state = if words[0] == "enable" {
                Admin::Ready
            } else {
                Admin::Maint
            };
            match state.find_server(spec) {
                Ok((backend, s)) => {
                    change_admin(backend, s, admin_state);
                    String::new()
                }
                Err(e) => e.into(),
            }
        }
        ["enable" | "disable", "frontend", name] if admin => match state.frontend(name) {
            Some(fe) if is_shut_down(fe) => {
                format!("Frontend was previously shut down, cannot {}.\n", words[0])
            }
            Some(fe) => match (fe.set_paused(words[0] == "disable"), words[0]) {
                (true, _) => {
                    fe.settled().await;
                    String::new()
                }
                (false, "disable") => "All sockets are already disabled.\n".into(),
                (false, _) => "All sockets are already enabled.\n".into(),
            },
            None => "No such frontend.\n".into(),
        },
        ["enable" | "disable", "agent", spec] if admin => match state.find_server(spec) {
            Ok((_, s)) => super::agent::enable(s, words[0] == "enable"),
            Err(e) => e.into(),
        },
        ["enable" | "disable", "health", spec] if admin => match state.find_server(spec) {
            Ok((_, s)) => enable_health(s, words[0] == "enable"),
            Err(e) => e.into(),
        },
        ["show", "version"] => format!("{}\n", env!("CARGO_PKG_VERSION")),
        ["show", "cli", "level"] => format!("{}\n", level_name(level)),
        ["enable" | "disable" | "shutdown", "frontend"] if admin => {
            "A frontend name is expected.\n".into()
        }
        ["shutdown", "frontend", name, ..] if admin => match state.frontend(name) {
            Some(fe) => shutdown_frontend(state, fe).await,
            None => "No such frontend.\n".into(),
        },
        ["set", "server", rest @ ..] if admin => match rest {
            [spec, args @ ..] if names_backend_and_server(spec) => set_server(state, spec, args),
            _ => "Require 'backend/server'.\n".into(),
        },
        ["set", "weight", rest @ ..] if admin => set_weight(state, rest),
        ["set", "maxconn", "server", rest @ ..] if admin => set_maxconn_server(state, rest),
        ["set", "maxconn", "frontend", rest @ ..] if admin => set_maxconn_frontend(state, rest),
        ["set", "maxconn", "global", rest @ ..] if admin => set_maxconn_global(state, rest),
        [
            "set",
            "rate-limit",
            kind @ ("connections" | "sessions"),
            rest @ ..,
        ] if admin => set_rate_limit(state, kind, rest),
        // hapx limits neither SSL session rates nor compression: not done, listed as such.
        ["set", "rate-limit", "ssl-sessions" | "http-compression", ..] if admin => {
            keywords::cli_usage(&words, keywords::WORKER_CLI)
        }
        ["set", "rate-limit", ..] if admin => RATE_LIMIT_USAGE.into(),
        ["set", "dynamic-cookie-key", "backend", args @ ..] if admin => {
            super::persist::cli_dyncookie(state, args, None)
        }
        ["enable" | "disable", "dynamic-cookie", "backend", args @ ..] if admin => {
            super::persist::cli_dyncookie(state, args, Some(words[0] == "enable"))
        }
        // As HAProxy: words after the server are not looked at.
        ["shutdown", "sessions", "server", rest @ ..] if admin => {
            match state.find_server(rest.first().copied().unwrap_or_default()) {
                Ok((_, s)) => {
                    super::shutdown::kill_sessions(s);
                    String::new()
                }
                Err(e) => e.into(),
            }
        }
        // As HAProxy: the maxima need level operator, every counter level admin; a word
        // other than `all` reads as none.
        ["clear", "counters", "all", ..] if admin => {
            state.clear_counters(true);
            String::new()
        }
        ["clear", "counters", rest @ ..]
            if level != CliLevel::User && rest.first() != Some(&"all") =>
        {
            state.clear_counters(false);
            String::new()
        }
        // As HAProxy: words after the section are not looked at.
        ["show", "events", args @ ..] => super::ring::show_events(args),
        ["show", "resolvers", section @ ..] => state.resolvers.show(section.first().copied()),
        ["show", "sess", arg @ ..] if level != CliLevel::User => show_sess(state, arg.first()),
        ["show", "env", name @ ..] if level != CliLevel::User => show_env(state, name.first()),
        ["show", "errors", args @ ..] if level != CliLevel::User => {
            super::error_capture::show(state, args)
        }
        ["show", "ssl", "crt-list", args @ ..] if admin => {
            super::ssl_cert::show_crt_list(state, args)
        }
        ["show", "ssl", "ocsp-response", id @ ..] => super::ocsp::show(state, id.first().copied()),
        ["shutdown", "session", arg @ ..] if admin => shutdown_session(state, arg.first()),
        ["enable" | "disable" | "set", ..] if !admin => denied(),
        ["shutdown", "sessions", "server", ..]
        | ["show", "sess", ..]
        | ["show", "env", ..]
        | ["show", "errors", ..]
        | ["shutdown", "frontend", ..]
        | ["clear", "counters", ..]
        | ["show", "ssl", "crt-list", ..]
        | ["shutdown", "session", ..] => denied(),
        // HAProxy 2.6 knows it, hapx does not run it (or `help WORDS`): the commands
        // that begin as it does, as HAProxy lists them.
        _ => keywords::cli_usage(&words, keywords::WORKER_CLI),
    }
}

/// The frontends `shutdown frontend` stopped (by id), for good: HAProxy's `PR_FL_STOPPED`.
static SHUT_DOWN: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Whether `shutdown frontend` stopped `fe` (`show stat` says STOP).
pub(super) fn is_shut_down(fe: &Frontend) -> bool {
    let stopped = SHUT_DOWN.lock().unwrap_or_else(PoisonError::into_inner);
    stopped.contains(&fe.id)
}

/// `shutdown frontend NAME` (level admin): its listeners stop for good, the connections it
/// has go on. Logged as HAProxy's `proxy_cond_disable` logs it, on stderr and to the
/// frontend's log targets, with its cumulated connections and those of its backend half.
async fn shutdown_frontend(state: &State, fe: &Frontend) -> String {
    {
        let mut stopped = SHUT_DOWN.lock().unwrap_or_else(PoisonError::into_inner);
        if stopped.contains(&fe.id) {
            return "Frontend was already shut down.\n".into();
        }
        stopped.push(fe.id);
    }
    // A listen section's backend half: the same proxy.
    let backend_conns = state
        .backends
        .iter()
        .find(|b| b.id == fe.id)
        .map_or(0, |b| b.counters.total.load(Relaxed));
    let msg = format!(
        "Proxy {} stopped (cumulated conns: FE: {}, BE: {backend_conns}).",
        fe.name,
        fe.counters.connections.load(Relaxed)
    );
    crate::process::say!("[WARNING]  ({}) : {msg}", std::process::id());
    fe.logger.send(super::log::LOG_WARNING, &msg);
    // Released as by `disable frontend` (connections refused, the port free), never resumed.
    fe.set_paused(true);
    fe.settled().await;
    String::new()
}

/// `show env [NAME]` (level operator): the process's variables as HAProxy's environment has
/// them (the configuration's `setenv` and the like applied, HAProxy's own `HAPROXY_*` last),
/// `NAME=value` a line, or only NAME's; words after the name are not looked at.
fn show_env(state: &State, name: Option<&&str>) -> String {
    let environment = &state.config.global.environment;
    let value = |n: &str| environment.get(n, &crate::env::var);
    if let Some(name) = name {
        return match value(name) {
            Some(v) => format!("{name}={v}\n"),
            None => "Variable not found\n".into(),
        };
    }
    // The process's names in order, a value the configuration changed in place; the names
    // the configuration added come where HAProxy's reading set them: after the variables
    // set before it, before those set after it.
    let all = crate::env::vars();
    let read_at = (all.iter())
        .position(|(n, _)| crate::env::SET_AFTER_READING.contains(&n.as_str()))
        .unwrap_or(all.len());
    let added = (environment.names())
        .filter(|n| crate::env::var(n).is_none())
        .map(str::to_string);
    let names = (all.iter().take(read_at).map(|(n, _)| n.clone()))
        .chain(added)
        .chain(all.iter().skip(read_at).map(|(n, _)| n.clone()));
    names
        .filter_map(|n| value(&n).map(|v| format!("{n}={v}\n")))
        .collect()
}

/// `show cli level`'s word for `level`.
fn level_name(level: CliLevel) -> &'static str {
    match level {
        CliLevel::Admin => "admin",
        CliLevel::Operator => "operator",
        CliLevel::User => "user",
    }
}

/// Whether `spec` is `BACKEND/SERVER` with neither side empty, which HAProxy's
/// `cli_find_server` requires before looking either up.
fn names_backend_and_server(spec: &str) -> bool {
    spec.split_once('/')
        .is_some_and(|(backend, server)| !backend.is_empty() && !server.is_empty())
}

/// `show sess [ID|all]` (level operator), as HAProxy 2.6 answers it: one line per stream, or
/// the first lines of its dump for one stream (`all`: every stream's). A word that is no
/// number lists them all, as HAProxy's `strtoul` reads 0 there.
///
/// The streams are those [`super::shutdown::streams`] lists: a TCP session from its accept
/// on (in its rules `be=<NONE> srv=<none>`, then `srv=<none>` until connected, HAProxy's
/// `srv` also while connecting), an HTTP stream waiting for its server (in a queue,
/// connecting: `srv=<none>`), then from its request's sending to its exchange's end (not
/// one in its rules, which HAProxy lists), and the CLI's own
/// (`fe=GLOBAL`, `proto=unix_stream src=unix:N`, its socket's number). Printed are the
/// fields hapx knows: a line has HAProxy's `proto`, `src`, `fe`, `be`,
/// `srv` and `age`, in its order and syntax, without its internal ones (task state, epoch,
/// calls, buffer and stream connector flags, expiry dates); a dump has its first line
/// (accept date, `proto`, `source`; not `id`) and its `frontend` (with its listener's number),
/// `backend` and `server` lines (the server connection's addresses), not its internal lines.
/// The client's addresses are its socket's (a PROXY header's are for the logs only), as
/// HAProxy's.
fn show_sess(state: &State, arg: Option<&&str>) -> String {
    let (all, target) = match arg {
        Some(&"all") => (true, None),
        Some(text) => (false, Some(strtoul(text)).filter(|&id| id != 0)),
        None => (false, None),
    };
    let detailed = all || target.is_some();
    let mut streams = super::shutdown::streams(detailed);
    let servers = ServersBySwitch::of(state);
    if let Some(id) = target {
        streams.retain(|s| s.id == id);
        if streams.is_empty() {
            return "Session not found.\n".into();
        }
    }
    let mut out = String::new();
    for shown in &streams {
        if detailed {
            dump_stream(state, &servers, shown, &mut out);
        } else {
            stream_line(state, &servers, shown, &mut out);
        }
    }
    out
}

/// `shutdown session ID` (level admin): kills that stream, as HAProxy's (logged `K`).
fn shutdown_session(state: &State, arg: Option<&&str>) -> String {
    let expected = "Session pointer expected (use 'show sess').\n";
    let Some(id) = arg.map(|text| strtoul(text)).filter(|&id| id != 0) else {
        return expected.into();
    };
    let Some(switch) = super::shutdown::kill_stream(id) else {
        return "No such session (use 'show sess').\n".into();
    };
    if let Some((_, server)) = server_named(state, switch) {
        server.kill.wake();
    }
    String::new()
}

/// The backend and server whose kill switch `switch` names.
fn server_named(state: &State, switch: usize) -> Option<(&Backend, &Server)> {
    state.backends.iter().find_map(|b| {
        let s = b.servers.iter().find(|s| s.kill.is_named(switch))?;
        Some((&**b, &**s))
    })
}

/// Every backend's servers by their kill switch's name ([`super::shutdown::Shown::switch`]),
/// made once per `show sess`: a lookup per stream, not a search of every server.
struct ServersBySwitch<'s>(std::collections::HashMap<usize, (&'s Backend, &'s Server)>);

impl<'s> ServersBySwitch<'s> {
    fn of(state: &'s State) -> ServersBySwitch<'s> {
        let all = state
            .backends
            .iter()
            .flat_map(|b| b.servers.iter().map(move |s| (s.kill.name(), (&**b, &**s))));
        ServersBySwitch(all.collect())
    }

    fn get(&self, switch: usize) -> Option<(&'s Backend, &'s Server)> {
        self.0.get(&switch).copied()
    }
}

/// A stream's `show sess` line.
fn stream_line(
    state: &State,
    servers: &ServersBySwitch<'_>,
    shown: &super::shutdown::Shown,
    out: &mut String,
) {
    use std::fmt::Write;
    let stream = &shown.stream;
    let served = servers.get(shown.switch);
    let backend = served.map(|(b, _)| b).or_else(|| waits_in(state, shown));
    let _ = writeln!(
        out,
        "0x{:x}: proto={} src={} fe={} be={} srv={} age={}",
        shown.id,
        proto(shown),
        source(shown),
        frontend_name(state, shown),
        backend.map_or("<NONE>", |b| &b.name),
        served.map_or("<none>", |(_, s)| &s.name),
        human_time(began(stream.started).1),
    );
}

/// The backend a stream with no server yet goes to, when its rules chose it.
fn waits_in<'s>(state: &'s State, shown: &super::shutdown::Shown) -> Option<&'s Backend> {
    let id = shown.backend?;
    state.backends.iter().find(|b| b.id == id).map(|b| &**b)
}

/// A stream's frontend's name: `GLOBAL` for the CLI's own.
fn frontend_name<'s>(state: &'s State, shown: &super::shutdown::Shown) -> &'s str {
    if shown.cli.is_some() {
        return "GLOBAL";
    }
    let fe = state
        .frontends
        .iter()
        .find(|f| f.id == shown.stream.frontend);
    fe.map_or("<NONE>", |f| &f.name)
}

/// A stream's client address as HAProxy prints it: `unix:N` on the CLI's `stats socket` N.
fn source(shown: &super::shutdown::Shown) -> String {
    match shown.cli {
        Some(listener) => format!("unix:{listener}"),
        None => format!("{}:{}", shown.src.ip(), shown.src.port()),
    }
}

/// When a stream that began at `started` began, since the epoch, and its age as HAProxy
/// counts it: the difference of the two dates' whole seconds (now's and its), not the
/// whole seconds of the time elapsed.
fn began(started: std::time::Instant) -> (std::time::Duration, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let since = now.saturating_sub(started.elapsed());
    (since, now.as_secs() - since.as_secs())
}

/// The first lines of a stream's `show sess ID` dump.
fn dump_stream(
    state: &State,
    servers: &ServersBySwitch<'_>,
    shown: &super::shutdown::Shown,
    out: &mut String,
) {
    use std::fmt::Write;
    let stream = &shown.stream;
    let (since, _) = began(stream.started);
    let _ = writeln!(
        out,
        "0x{:x}: [{}.{:06}] proto={} source={}",
        shown.id,
        super::log::LocalDate(since.as_secs()),
        since.subsec_micros(),
        proto(shown),
        source(shown),
    );
    if let Some(listener) = shown.cli {
        let at = format!("listener=? (id={listener}) addr=unix:{listener}");
        let _ = writeln!(
            out,
            "  frontend=GLOBAL (id={} mode=tcp), {at}",
            stream.frontend
        );
    } else if let Some(fe) = state.frontends.iter().find(|f| f.id == stream.frontend) {
        let (ip, port) = (shown.local.ip(), shown.local.port());
        let mode = fe.conf.mode.as_str();
        let _ = write!(out, "  frontend={} (id={} mode={mode})", fe.name, fe.id);
        // Its listener: numbered in its frontend from 1, as HAProxy; hapx names none.
        if let Some(at) = fe.conf.binds.iter().position(|b| b.addr == stream.local) {
            let _ = write!(out, ", listener=? (id={})", at + 1);
        }
        let _ = writeln!(out, " addr={ip}:{port}");
    }
    let (local, remote) = shown.server_socket.unzip();
    if let Some((backend, server)) = servers.get(shown.switch) {
        let _ = write!(
            out,
            "  backend={} (id={} mode={})",
            backend.name,
            backend.id,
            backend.mode.as_str()
        );
        let _ = match local {
            Some(a) => writeln!(out, " addr={}:{}", a.ip(), a.port()),
            None => writeln!(out),
        };
        let _ = write!(out, "  server={} (id={})", server.name, server.id);
        let _ = match remote {
            Some(a) => writeln!(out, " addr={}:{}", a.ip(), a.port()),
            None => writeln!(out),
        };
    } else if let Some(backend) = waits_in(state, shown) {
        // In its backend, no server yet (queued, connecting): HAProxy's null server.
        let mode = backend.mode.as_str();
        let _ = writeln!(
            out,
            "  backend={} (id={} mode={mode})",
            backend.name, backend.id
        );
        let _ = writeln!(out, "  server=<none> (id=0)");
    } else {
        let _ = writeln!(
            out,
            "  backend=<NONE> (id=-1 mode=-)\n  server=<NONE> (id=-1)"
        );
    }
}

/// The name of the protocol of the listener that took a stream's connection.
fn proto(shown: &super::shutdown::Shown) -> &'static str {
    match shown.cli {
        Some(_) => "unix_stream",
        None if shown.stream.local.is_ipv4() => "tcpv4",
        None => "tcpv6",
    }
}

/// A duration in seconds as HAProxy's `human_time` writes it: its two largest units of days,
/// hours, minutes and seconds, from the largest not zero (`0s` for none).
pub(crate) fn human_time(secs: u64) -> String {
    let parts = [
        (secs / 86_400, 'd'),
        (secs % 86_400 / 3600, 'h'),
        (secs % 3600 / 60, 'm'),
        (secs % 60, 's'),
    ];
    let mut out = String::new();
    let mut left = 2;
    for (i, (n, unit)) in parts.into_iter().enumerate() {
        // Days show whenever there are any; seconds also when the whole is zero.
        let shown = if i == 0 {
            n > 0
        } else {
            n > 0 || (i == 3 && secs == 0)
        };
        if left > 0 && shown {
            out.push_str(&format!("{n}{unit}"));
            left -= 1;
        }
    }
    out
}

/// A number as C's `strtoul(text, NULL, 0)` reads it: `0x` hexadecimal, `0` octal, else
/// decimal, up to the first other character (0 when none); a minus sign negates it modulo
/// 2^64, and a number too large saturates.
fn strtoul(text: &str) -> u64 {
    let text = text.trim_start();
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = text.to_ascii_lowercase();
    let (radix, digits) = match lower.strip_prefix("0x") {
        Some(hex) if hex.starts_with(|c: char| c.is_ascii_hexdigit()) => (16, hex),
        _ if lower.starts_with('0') => (8, &lower[..]),
        _ => (10, &lower[..]),
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let n =
        u64::from_str_radix(&digits[..end], radix).unwrap_or(if end == 0 { 0 } else { u64::MAX });
    if negative { n.wrapping_neg() } else { n }
}

/// An operator's change of a server's admin state, logged as HAProxy logs it.
pub(super) fn change_admin(backend: &Backend, server: &Server, admin: Admin) {
    let before = transitions::Before::of(backend, server);
    server.set_admin(admin);
    transitions::report_admin(backend, server, before, "");
}

/// [`change_admin`] for one forced flag, the other kept (the stats page's legacy actions),
/// logged with its `cause` as HAProxy's (`'disable' on stats page`).
pub(super) fn change_admin_flag(
    backend: &Backend,
    server: &Server,
    flag: AdminFlag,
    on: bool,
    cause: &str,
) {
    let before = transitions::Before::of(backend, server);
    server.set_admin_flag(flag, on);
    transitions::report_admin(backend, server, before, cause);
}

/// A server's health as an operator forces it (`set server ... health`, the stats page's
/// `hrunn`, `hnolb` and `hdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ForcedHealth {
    Up,
    Stopping,
    Down,
}

/// HAProxy's `srv_set_running`, `srv_set_stopping` and `srv_set_stopped` with the health
/// set to full or none; the change logged with `via` (", changed from CLI"). In
/// maintenance only the health changes, as in HAProxy.
pub(super) fn force_health(backend: &Backend, server: &Server, to: ForcedHealth, via: &str) {
    let (rise, fall) = (server.opts.rise, server.opts.fall);
    let up = to != ForcedHealth::Down;
    let before = transitions::HealthBefore::of(backend, server);
    let changed = server.transition(|| {
        server
            .health
            .store(if up { rise + fall - 1 } else { 0 }, Relaxed);
        let serving = server.admin() != Admin::Maint;
        // NOLB first: a server coming UP into it is never seen taking connections.
        if serving && up {
            server.set_stopping(to == ForcedHealth::Stopping);
        }
        let change = serving && server.is_up() != up;
        if change {
            server.set_up(up);
        }
        change
    });
    if server.admin() == Admin::Maint {
        return;
    }
    if let Some(up) = transitions::report_health(backend, server, before, via) {
        super::shutdown::on_marked(backend, server, up);
    }
    if changed {
        super::track::follow(server);
    }
}

/// `set server B/S health up|stopping|down`, HAProxy's checks and words.
fn set_health(backend: &Backend, server: &Server, to: Option<&str>) -> String {
    if server.opts.track.is_some() {
        return "cannot change health on a tracking server.\n".into();
    }
    let to = match to {
        Some("up") => ForcedHealth::Up,
        Some("stopping") => ForcedHealth::Stopping,
        Some("down") => ForcedHealth::Down,
        _ => return "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n".into(),
    };
    force_health(backend, server, to, ", changed from CLI");
    String::new()
}

/// `enable|disable health B/S`, in HAProxy's words: disabling checks a server has not is
/// quietly nothing, enabling them is refused.
fn enable_health(server: &Server, on: bool) -> String {
    if !server.enable_checks(on) && on {
        return "Health check was not configured on this server, cannot enable.\n".into();
    }
    String::new()
}

fn set_server(state: &Arc<State>, spec: &str, args: &[&str]) -> String {
    let (backend, s) = match state.find_server(spec) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    match args {
        ["state", st, ..] if matches!(*st, "ready" | "drain" | "maint") => {
            let admin = match *st {
                "ready" => Admin::Ready,
                "drain" => Admin::Drain,
                _ => Admin::Maint,
            };
            change_admin(backend, s, admin);
            String::new()
        }
        ["state", ..] => "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into(),
        ["health", rest @ ..] => set_health(backend, s, rest.first().copied()),
        ["weight"] => "Require <weight> or <weight%>.\n".into(),
        ["weight", w, ..] => match change_weight(backend, s, w) {
            Ok(()) => String::new(),
            Err(e) => e.into(),
        },
        ["addr"] => "set server <b>/<s> addr requires an address and optionally a port.\n".into(),
        ["addr", ip, rest @ ..] => {
            let port = match rest {
                ["port", port, ..] => Some(*port),
                ["port"] => Some(""),
                _ => None,
            };
            update_addr_port(s, ip, port)
        }
        ["check-port"] => "set server <b>/<s> check-port requires a port.\n".into(),
        ["check-port", port, ..] => set_check_port(s, port),
        ["agent" | "agent-addr" | "agent-port" | "agent-send", ..] => {
            super::agent::set_server(backend, s, args)
        }
        ["fqdn"] => "set server <b>/<s> fqdn requires a FQDN.\n".into(),
        ["fqdn", ..] if s.opts.resolvers.is_none() => {
            "set server <b>/<s> fqdn failed because no resolution is configured.\n".into()
        }
        ["fqdn", name, ..] => {
            super::dns::change_fqdn(state, backend, s, name) + " by 'stats socket command'\n"
        }
        _ => "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n".into(),
    }
}

/// `set server B/S addr IP [port P]`, HAProxy's way and in its words: the address changes
/// first (kept even when the port is refused), then the port: digits set a fixed port (read
/// as strtol does, wrapping to 16 bits), a sign a port map (the client's port plus or minus
/// it), which needs a check port of its own when the server had a fixed port.
fn update_addr_port(s: &Server, addr: &str, port: Option<&str>) -> String {
    const BY: &str = " by 'stats socket command'\n";
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return format!("Invalid addr '{addr}'{BY}");
    };
    // An unresolved server has no address family HAProxy would change.
    let Some(old) = s.addr() else {
        return format!(
            "Update for the current server address family is only supported through configuration file{BY}"
        );
    };
    let mut msg = if old == ip {
        "no need to change the addr".to_string()
    } else {
        s.set_addr(Some(ip));
        format!("IP changed from '{old}' to '{addr}'")
    };
    if let Some(text) = port {
        msg.push_str(", ");
        msg.push_str(&update_port(s, text));
    }
    msg + BY
}

/// The port half of [`update_addr_port`]: what it did, in HAProxy's words.
fn update_port(s: &Server, text: &str) -> String {
    let Some(value) = strtol(text) else {
        return format!("problem converting port '{text}' to an int");
    };
    // HAProxy keeps the port as a 16-bit number: the value wraps.
    let number = value as u16;
    let current = s.service_port();
    let sign = text.chars().next().filter(|c| matches!(c, '+' | '-'));
    let wanted = match sign {
        Some(_) => ServicePort::Mapped(number),
        None => ServicePort::Fixed(number),
    };
    let change = match (current, wanted) {
        (ServicePort::Fixed(_), ServicePort::Mapped(_)) => {
            if s.check_port().is_none() {
                return "can't change <port> to port map because it is incompatible with current health check port configuration (use 'port' statement from the 'server' directive.".into();
            }
            true
        }
        _ => current.number() != number,
    };
    if !change {
        return "no need to change the port".into();
    }
    s.set_service_port(wanted);
    let from = match current {
        ServicePort::Mapped(n) => format!("+{n}"),
        ServicePort::Fixed(n) => n.to_string(),
    };
    // A negative offset is shown as it was given.
    let to = match sign {
        Some('-') => format!("-{}", number.wrapping_neg()),
        Some(_) => format!("+{number}"),
        None => number.to_string(),
    };
    format!("port changed from '{from}' to '{to}'")
}

/// C's strtol in base 10 as HAProxy calls it for ports: None when no digit comes or the
/// value overflows a long (the rest is ignored).
fn strtol(text: &str) -> Option<i64> {
    Strtol::read(text)
        .filter(|n| !n.overflowed)
        .map(|n| n.value)
}

/// A number read as C's strtol reads it in base 10: leading blanks, a sign, digits,
/// saturated at the long's bounds on overflow.
#[derive(Debug, PartialEq)]
pub(super) struct Strtol<'a> {
    pub value: i64,
    pub overflowed: bool,
    /// What follows the digits.
    pub rest: &'a str,
}

impl<'a> Strtol<'a> {
    /// None when no digit comes (C's `end == text`).
    pub fn read(text: &'a str) -> Option<Self> {
        let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        let (negative, digits) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if end == 0 {
            return None;
        }
        // Capped past the long's range: the value saturates there anyway.
        let magnitude = digits[..end]
            .bytes()
            .fold(0i128, |m, d| (m * 10 + i128::from(d - b'0')).min(1 << 64));
        let signed = if negative { -magnitude } else { magnitude };
        let value = signed.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        Some(Strtol {
            value,
            overflowed: i128::from(value) != signed,
            rest: &digits[end..],
        })
    }
}

/// `set server B/S check-port P`: HAProxy's checks and messages (see [`cli_port`]; 0 goes
/// back to the server's port).
fn set_check_port(s: &Server, text: &str) -> String {
    match super::checks::update_port(s, text) {
        Ok(()) => String::new(),
        Err(why) => why.into(),
    }
}

/// A port given to the runtime API (`check-port`, `agent-port`), read as HAProxy's
/// strl2irc: an optional '-', then digits only ("-" alone is 0), then within 0..=65535.
pub(super) fn cli_port(text: &str) -> Result<u16, &'static str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("provided port is not an integer");
    }
    let value = match digits {
        "" => 0,
        d => match d.parse::<i64>() {
            Ok(v) if text.starts_with('-') => -v,
            Ok(v) => v,
            Err(_) => return Err("provided port is not an integer"),
        },
    };
    u16::try_from(value).map_err(|_| "provided port is invalid")
}

/// `set maxconn server B/S N`, as HAProxy 2.6's `server_parse_maxconn_change_request`:
/// the server's `maxconn` changes (0: no limit) and the connections queued for it take the
/// room it gets at once. The number is C's `strtol` stored in an unsigned int, as there.
/// C's `atoi`: strtol's value truncated to an int; 0 for no number.
fn atoi(text: &str) -> i32 {
    Strtol::read(text).map_or(0, |n| n.value as i32)
}

/// `set maxconn frontend F N`, as HAProxy 2.6's `cli_parse_set_maxconn_frontend`: the
/// frontend's `maxconn` becomes N (0: it accepts nothing more); read as `atoi`.
fn set_maxconn_frontend(state: &State, args: &[&str]) -> String {
    let Some(name) = args.first() else {
        return "A frontend name is expected.\n".into();
    };
    let Some(fe) = state.frontend(name) else {
        return "No such frontend.\n".into();
    };
    let Some(value) = args.get(1) else {
        return "Integer value expected.\n".into();
    };
    match usize::try_from(atoi(value)) {
        Ok(maxconn) => {
            fe.slots.set_limit(maxconn);
            String::new()
        }
        Err(_) => "Value out of range.\n".into(),
    }
}

/// `set maxconn global N`, as HAProxy 2.6's `cli_parse_set_maxconn_global`: the process's
/// `maxconn` becomes N, at most the hard one (`Hard_maxconn`), which 0 or less means.
fn set_maxconn_global(state: &State, args: &[&str]) -> String {
    let Some(value) = args.first() else {
        return "Expects an integer value.\n".into();
    };
    let maxconn = match usize::try_from(atoi(value)) {
        Ok(0) | Err(_) => state.max_conns,
        Ok(maxconn) if maxconn <= state.max_conns => maxconn,
        Ok(_) => return "Value out of range.\n".into(),
    };
    state.global_slots.set_limit(maxconn);
    String::new()
}

/// HAProxy's answer to a `set rate-limit` it does not know.
const RATE_LIMIT_USAGE: &str = "'set rate-limit' only supports :
   - 'connections global' to set the per-process maximum connection rate
   - 'sessions global' to set the per-process maximum session rate
   - 'ssl-sessions global' to set the per-process maximum SSL session rate
   - 'http-compression global' to set the per-process maximum compression speed in kB/s
";

/// `set rate-limit connections|sessions global N`, as HAProxy 2.6's
/// `cli_parse_set_ratelimit`: `maxconnrate` or `maxsessrate` becomes N (0: none).
fn set_rate_limit(state: &State, kind: &str, args: &[&str]) -> String {
    let limits = &state.rate_limits;
    let limit = match kind {
        "connections" => &limits.connections,
        _ => &limits.sessions,
    };
    match args {
        ["global", value, ..] => match u32::try_from(atoi(value)) {
            Ok(rate) => {
                limit.store(rate, Relaxed);
                String::new()
            }
            Err(_) => "Value out of range.\n".into(),
        },
        ["global"] => "Expects an integer value.\n".into(),
        _ => RATE_LIMIT_USAGE.into(),
    }
}

fn set_maxconn_server(state: &State, args: &[&str]) -> String {
    let (_, s) = match state.find_server(args.first().copied().unwrap_or_default()) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let Some(&text) = args.get(1) else {
        return "Require <maxconn>.\n".into();
    };
    match Strtol::read(text) {
        None => "maxconn string empty or preceded by garbage".into(),
        Some(n) if !n.rest.is_empty() => "Trailing garbage in maxconn string".into(),
        Some(n) => {
            // HAProxy's `sv->maxconn = v`: the long truncated to its unsigned int.
            s.set_maxconn(Some(n.value as u32 as usize));
            String::new()
        }
    }
}

/// `set server B/S weight W[%]` and an agent's `N%`: the weight changes, unless HAProxy
/// refuses it (its message).
pub(super) fn change_weight(backend: &Backend, s: &Server, text: &str) -> Result<(), &'static str> {
    let v = parse_weight(text, s.opts.weight)?;
    // As HAProxy: a static algorithm's table keeps the weights it was built with.
    if v != 0 && v != s.opts.weight && super::balance::static_weights(backend) {
        return Err(
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n",
        );
    }
    let backend_was_up = backend.is_up();
    s.set_weight(v);
    super::transitions::report_weight_change(backend, s, backend_was_up);
    Ok(())
}

/// `set weight B/S W[%]`, HAProxy's older form of `set server B/S weight`: the server found
/// first, then the weight required.
fn set_weight(state: &State, args: &[&str]) -> String {
    let (backend, s) = match state.find_server(args.first().copied().unwrap_or_default()) {
        Ok(found) => found,
        Err(e) => return e.into(),
    };
    let Some(w) = args.get(1) else {
        return "Require <weight> or <weight%>.\n".into();
    };
    match change_weight(backend, s, w) {
        Ok(()) => String::new(),
        Err(e) => e.into(),
    }
}

/// `set server B/S weight W[%]` as HAProxy reads it (strtol, then exactly `%`
/// relative to the configured weight, capped at 256), with HAProxy's messages in its order.
fn parse_weight(text: &str, initial: u32) -> Result<u32, &'static str> {
    let Some(n) = Strtol::read(text) else {
        return Err("Empty weight string empty or preceded by garbage");
    };
    match (n.value, n.rest) {
        (v, "%") if v < 0 => Err("Relative weight must be positive.\n"),
        (v, "%") => Ok((i64::from(initial) * v.min(25600) / 100).min(256) as u32),
        (v, _) if !(0..=256).contains(&v) => {
            Err("Absolute weight can only be between 0 and 256 inclusive.\n")
        }
        (_, "") => Ok(n.value as u32),
        _ => Err("Trailing garbage in weight string"),
    }
}

fn getsocks(conf: &StatsSocket, handover: &Handover) -> Result<Vec<(SocketAddr, OwnedFd)>, String> {
    if conf.level != CliLevel::Admin || !conf.expose_fd_listeners {
        return Err("Permission denied\n".into());
    }
    super::handover::duplicates(handover).map_err(|e| format!("{e}\n"))
}

/// Asks the process behind `path` for its listening sockets (`-x`), blocking; for start-up,
/// before the runtime exists.
pub fn fetch_listeners(path: &Path) -> anyhow::Result<Vec<(SocketAddr, OwnedFd)>> {
    use anyhow::Context;
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} to take its listeners over",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(b"_getsocks\n")?;
    super::handover::receive(&stream)
        .with_context(|| format!("receiving the listeners from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{Strtol, human_time, parse_weight, strtol, strtoul};

    #[test]
    fn durations_are_written_like_human_time() {
        let cases = [
            (0, "0s"),
            (2, "2s"),
            (60, "1m"),
            (61, "1m1s"),
            (3600, "1h"),
            (3661, "1h1m"),
            (86_400, "1d"),
            (90_061, "1d1h"),
            (86_401, "1d1s"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_time(secs), text, "{secs}s");
        }
    }

    #[test]
    fn session_numbers_are_read_like_strtoul() {
        assert_eq!(strtoul("0x1f"), 31);
        assert_eq!(strtoul("0X1F"), 31);
        assert_eq!(strtoul("017"), 15);
        assert_eq!(strtoul("12ab"), 12);
        assert_eq!(strtoul("zz"), 0);
        assert_eq!(strtoul("0x"), 0);
        assert_eq!(strtoul("-1"), u64::MAX);
        assert_eq!(strtoul("99999999999999999999999"), u64::MAX);
    }

    #[test]
    fn ports_are_read_like_strtol() {
        assert_eq!(strtol("19000"), Some(19000));
        assert_eq!(strtol("12abc"), Some(12));
        assert_eq!(strtol(" +5"), Some(5));
        assert_eq!(strtol("-3"), Some(-3));
        assert_eq!(strtol("99999999999"), Some(99_999_999_999));
        for bad in ["", "abc", "-", "99999999999999999999"] {
            assert_eq!(strtol(bad), None, "{bad}");
        }
    }

    #[test]
    fn strtol_saturates_as_c_does() {
        let read = |t| Strtol::read(t).map(|n| (n.value, n.overflowed, n.rest));
        assert_eq!(read(" -12x"), Some((-12, false, "x")));
        assert_eq!(read("99999999999999999999%"), Some((i64::MAX, true, "%")));
        assert_eq!(read("-99999999999999999999"), Some((i64::MIN, true, "")));
        assert_eq!(read("-9223372036854775808"), Some((i64::MIN, false, "")));
        assert_eq!(read("+"), None);
    }

    #[test]
    fn weights_are_read_like_haproxy() {
        assert_eq!(parse_weight("10", 20), Ok(10));
        assert_eq!(parse_weight("+7", 20), Ok(7));
        assert_eq!(parse_weight("50%", 20), Ok(10));
        assert_eq!(parse_weight("3000%", 20), Ok(256));
        // Base 10, as HAProxy reads it.
        assert_eq!(parse_weight("010", 20), Ok(10));
        assert_eq!(
            parse_weight("0x10", 20),
            Err("Trailing garbage in weight string")
        );
        for (text, error) in [
            ("abc", "Empty weight string empty or preceded by garbage"),
            ("%", "Empty weight string empty or preceded by garbage"),
            ("5x", "Trailing garbage in weight string"),
            (
                "257",
                "Absolute weight can only be between 0 and 256 inclusive.\n",
            ),
            (
                "-1",
                "Absolute weight can only be between 0 and 256 inclusive.\n",
            ),
            ("-5%", "Relative weight must be positive.\n"),
            // Saturated, keeping its sign; the range before the rest.
            (
                "-99999999999999999999%",
                "Relative weight must be positive.\n",
            ),
            (
                "300x",
                "Absolute weight can only be between 0 and 256 inclusive.\n",
            ),
        ] {
            assert_eq!(parse_weight(text, 20), Err(error), "{text}");
        }
    }
}
