//! Server state kept across reloads: the file an operator writes with `show servers state`
//! before a reload (`server-state-file`, `server-state-base`, `server-state-file-name`,
//! `load-server-state-from-file`), applied at start-up as HAProxy 2.6's `apply_server_state`
//! does, before any connection or check.
//!
//! Reading: line by line as HAProxy's `fgets` reads it (at most 1999 bytes; a C string, so
//! a NUL ends the line there), never the whole file at once. The first line is the version
//! (1); each other line holds 20 to 25 fields; a line without its newline, or with too few
//! fields, makes the whole file "corrupted" and nothing of it applies.
//! The global file is read once, its lines keyed by backend and server names (the first of
//! two identical keys kept); a backend's own file is checked against the backend's id and
//! name. Applying (per server, in the configuration's order): every field is checked first,
//! and one bad value leaves the server as configured ("server-state application failed");
//! then the operational state (DOWN, stopping, starting, running: health set as HAProxy),
//! the maintenance (a configuration change of `disabled` wins over the file), a forced drain
//! (dropped when the configured weight left 0), the time since the last change, the last
//! check's status, `disable health`/`disable agent`, the weight (unless the configured one
//! changed), the service port; the address is kept for `init-addr
//! last`. Then each server written with a name takes its first address by its `init-addr`
//! methods, as HAProxy's `srv_init_addr` after the files: `last` takes the address a file
//! kept, a server left with none makes the start fail (`-c` too). Messages are HAProxy's, worded and ordered
//! as it prints them: on stderr only (`[WARNING]` with its `config : ` prefix; HAProxy's
//! logs are not set up yet when it reads the files, so none reaches syslog).
//!
//! Then the check's port and the agent's address and port, a refusal said as "partially
//! applied". `srv_fqdn` applies, as in HAProxy, only to a server written with a name whose
//! name was changed at run time (`set server ... fqdn`, with DNS resolution): flagged 64 in
//! the admin state (`SRV_ADMF_HMAINT`), which `show servers state` shows from the next admin
//! change after the `set` on; the new process takes its first address by its `init-addr`
//! methods on that name, then resolves it. Not applied: `srvrecord`, `srv_use_ssl`,
//! `srv_check_addr` (hapx checks the address its configuration gives). As HAProxy, `-c`
//! reads the files too and says what it finds.

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use super::state::{Admin, AdminFlag, Backend, Server, ServicePort, State, now_secs};
use crate::config::check::resolve_libc;
use crate::config::model::{self, InitAddr, ServerStateSource};

/// The only version HAProxy 2.6 writes and reads.
const VERSION: i64 = 1;
/// HAProxy 2.6's `SRV_STATE_LINE_MAXLEN`: `fgets` reads at most one less (checked with
/// 2.6.12: a 1999-byte line, its newline included, applies; a 2000-byte one is "corrupted").
const LINE_MAX: usize = 2000;
/// Fields of a version-1 line: up to `srvrecord`, and the optional ones after it.
const MIN_FIELDS: usize = 20;
const MAX_FIELDS: usize = 25;
/// HAProxy's `SRV_UWGHT_MAX`.
const WEIGHT_MAX: i64 = 256;
/// HAProxy's `HCHK_STATUS_SIZE`: check statuses are 0 to 20.
const CHECK_STATUS_SIZE: i64 = 21;
/// HAProxy's `CHK_ST_*`: in progress, configured, enabled, paused, agent.
const CHK_CONFIGURED: i64 = 0x02;
const CHK_ENABLED: i64 = 0x04;
const CHK_ALL: i64 = 0x1f;
/// HAProxy's `SRV_ADMF_*`.
const FMAINT: i64 = 0x01;
const IMAINT: i64 = 0x02;
const CMAINT: i64 = 0x04;
const FDRAIN: i64 = 0x08;
const IDRAIN: i64 = 0x10;
const RMAINT: i64 = 0x20;
const FQDN_CHANGED: i64 = 0x40;
/// HAProxy's `DNS_MAX_NAME_SIZE`.
const FQDN_MAX: usize = 255;

/// How many warnings [`apply`] printed, so that `-c` can say "Warnings were found.".
static WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Whether it warned about anything (`-c` then says "Warnings were found.").
    pub warned: bool,
    /// Whether every server got an address, or none by `init-addr none`; when not, HAProxy
    /// says "Failed to initialize server(s) addr." and does not start.
    pub addresses: bool,
}

/// Applies the server-state files the configuration names, then ends the servers'
/// `init-addr` walks, printing HAProxy's messages.
pub fn apply(state: &State) -> Applied {
    let before = WARNINGS.load(Relaxed);
    let kept = apply_files(state);
    let addresses = finish_addresses(state, &kept);
    Applied {
        warned: WARNINGS.load(Relaxed) != before,
        addresses,
    }
}

/// The addresses the files kept, by [`Line::key`] (HAProxy's `srv->lastaddr`).
type KeptAddrs = std::collections::BTreeMap<u64, String>;

fn apply_files(state: &State) -> KeptAddrs {
    let mut kept = KeptAddrs::new();
    let global = &state.config.global;
    let base = global.server_state_base.as_deref();
    let mut global_lines = global
        .server_state_file
        .as_deref()
        .and_then(|name| read_global(&path_of(base, name)));
    for backend in &state.backends {
        if backend.conf.disabled || backend.servers.is_empty() {
            continue;
        }
        match backend.conf.load_server_state {
            ServerStateSource::None => {}
            ServerStateSource::Global => {
                if let Some(lines) = &mut global_lines {
                    apply_lines(backend, lines, &mut kept);
                }
            }
            ServerStateSource::Local => apply_local(backend, base, &mut kept),
        }
    }
    inherit_admin_states(state);
    kept
}

/// HAProxy's `srv_init_addr`: each server of an enabled backend written with a name
/// takes its first address by its `init-addr` methods; whether each got one (or none by
/// `init-addr none`).
fn finish_addresses(state: &State, kept: &KeptAddrs) -> bool {
    let mut found = true;
    for backend in state.backends.iter().filter(|b| !b.conf.disabled) {
        // At start-up the backend's servers are its configuration's, in the same order.
        for (conf, server) in backend.conf.servers.iter().zip(&backend.servers) {
            if conf.addr.is_none() {
                let key = Line::key(&backend.name, &conf.name);
                found &= init_address(backend, conf, server, kept.get(&key));
            }
        }
    }
    if !found {
        alert("Failed to initialize server(s) addr.");
    }
    found
}

/// A server's `init-addr` methods: as written, else `last,libc` (and `none` with
/// `resolvers`, so that a name not resolved yet does not stop the start).
fn init_methods(conf: &model::Server) -> Vec<InitAddr> {
    let opts = &conf.opts;
    if !opts.init_addr.is_empty() {
        return opts.init_addr.clone();
    }
    let mut methods = vec![InitAddr::Last, InitAddr::Libc];
    if opts.resolvers.is_some() {
        methods.push(InitAddr::None);
    }
    methods
}

/// HAProxy's `srv_iterate_initaddr`: the server's methods in order, `last` taking the
/// address the file kept; whether one gave an address (or `none` left it without).
fn init_address(
    backend: &Backend,
    conf: &model::Server,
    server: &Server,
    kept: Option<&String>,
) -> bool {
    // The configured name, or the one a state file set ([`apply_fqdn`]).
    let host = &server.host();
    let said = |why: String| {
        let (be, name) = (&backend.name, &conf.name);
        format!("[{}] : 'server {be}/{name}' : {why}", conf.place)
    };
    // Whether a method failed (a name not resolved, an address kept not one):
    // HAProxy's words for what follows depend on it.
    let mut failed = false;
    for method in init_methods(conf) {
        match method {
            // HAProxy's `str2ip2` on what the file kept, without resolving it.
            InitAddr::Last => match kept.map(|addr| addr.parse::<IpAddr>()) {
                Some(Ok(ip)) => {
                    server.set_addr(Some(ip));
                    return true;
                }
                Some(Err(_)) => failed = true,
                None => {}
            },
            InitAddr::Libc => match resolve_libc(host, server.opts.resolve_prefer_v6) {
                Some(ip) => {
                    server.set_addr(Some(ip));
                    return true;
                }
                None => failed = true,
            },
            InitAddr::Ip(ip) => {
                if failed {
                    let why = "falling back to configured address";
                    warn(&said(format!("could not resolve address '{host}', {why}.")));
                }
                server.set_addr(Some(ip));
                return true;
            }
            InitAddr::None => {
                if failed {
                    let why = "disabling server";
                    warn(&said(format!("could not resolve address '{host}', {why}.")));
                }
                server.start_in_resolution_maint();
                super::track::inherit_start_maint(server);
                return true;
            }
        }
    }
    alert(&said(if failed {
        format!("could not resolve address '{host}'.")
    } else {
        format!("no method found to resolve address '{host}'.")
    }));
    false
}

/// HAProxy's `srv_compute_all_admin_states` after the files: each tracking server inherits
/// the maintenance and drain of the server it tracks, down the chain, silently.
fn inherit_admin_states(state: &State) {
    fn tracked(server: &Server) -> Option<std::sync::Arc<Server>> {
        server.tracking.get().and_then(std::sync::Weak::upgrade)
    }
    fn in_maint(server: &Server) -> bool {
        server.admin() == Admin::Maint || tracked(server).is_some_and(|t| in_maint(&t))
    }
    fn draining(server: &Server) -> bool {
        server.has_admin_flag(AdminFlag::Drain) || tracked(server).is_some_and(|t| draining(&t))
    }
    for server in state.backends.iter().flat_map(|b| &b.servers) {
        if let Some(t) = tracked(server) {
            server.set_inherited_maint(in_maint(&t));
            server.set_inherited_drain(draining(&t));
        }
    }
}

/// HAProxy's `srv_state_get_filepath`: a relative name under `server-state-base`.
fn path_of(base: Option<&str>, name: &str) -> PathBuf {
    match base {
        Some(base) if !name.starts_with('/') => {
            let sep = if base.ends_with('/') { "" } else { "/" };
            PathBuf::from(format!("{base}{sep}{name}"))
        }
        _ => PathBuf::from(name),
    }
}

/// One line of a state file, split into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    fields: Vec<String>,
}

impl Line {
    fn field(&self, i: usize) -> Option<&str> {
        self.fields.get(i).map(String::as_str)
    }

    /// The key HAProxy looks a server up by: `be_name srv_name`.
    fn key(backend: &str, server: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(format!("{backend} {server}").as_bytes())
    }
}

/// Lines by their key ([`Line::key`]), the first line of a key kept (HAProxy drops a
/// second one as hand-made).
type Keyed = std::collections::BTreeMap<u64, Line>;

/// Why a file gave no lines.
#[derive(Debug, PartialEq, Eq)]
enum FileError {
    /// It could not be opened: `strerror`'s words.
    Open(String),
    Version,
}

/// A file's server lines, up to the first bad one.
#[derive(Debug)]
struct Contents {
    lines: Vec<Line>,
    /// The 1-based number (after the version line) of a line cut short or with a wrong
    /// number of fields: the file is "corrupted" and none of it applies.
    corrupted_at: Option<usize>,
}

/// A state file read as HAProxy reads it: `fgets` into a buffer of [`LINE_MAX`] bytes.
struct Chunks<R> {
    input: R,
    buf: Vec<u8>,
}

impl<R: std::io::BufRead> Chunks<R> {
    fn new(input: R) -> Self {
        Self {
            input,
            buf: Vec::with_capacity(LINE_MAX),
        }
    }

    /// The next line as `fgets` gives it: at most `LINE_MAX - 1` bytes, up to and with its
    /// newline, cut at a NUL as C reads the string; None at the end or on a read error (a
    /// directory, say), where `fgets` returns NULL.
    fn next_chunk(&mut self) -> Option<&[u8]> {
        self.buf.clear();
        let mut line = (&mut self.input).take(LINE_MAX as u64 - 1);
        match line.read_until(b'\n', &mut self.buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let end = self.buf.iter().position(|&b| b == 0);
                Some(&self.buf[..end.unwrap_or(self.buf.len())])
            }
        }
    }
}

/// C's `strtol` in base 10: leading blanks, a sign, digits; what follows is left. None when
/// no digit was read or the value overflows (`ERANGE`).
fn strtol(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let magnitude: i128 = digits[..n].parse().ok()?;
    let value = if negative { -magnitude } else { magnitude };
    Some((i64::try_from(value).ok()?, &digits[n..]))
}

/// The version line: a number followed by the newline, and a version HAProxy reads.
fn version(line: Option<&[u8]>) -> Option<i64> {
    let text = String::from_utf8_lossy(line?);
    let (v, rest) = strtol(&text)?;
    (rest == "\n" && v == VERSION).then_some(v)
}

/// HAProxy's `srv_state_parse_line`: None for a comment or a blank line, Err for a line cut
/// short or with a wrong number of fields.
fn parse_line(raw: &[u8]) -> Result<Option<Line>, ()> {
    let Some(body) = raw.strip_suffix(b"\n") else {
        return Err(());
    };
    let text = crate::bytestr::from_bytes(body);
    let start = text.trim_start_matches([' ', '\t']);
    if start.is_empty() || start.starts_with('#') {
        return Ok(None);
    }
    let bytes = start.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    // As HAProxy's loop: blanks before a field skipped, a field ends at a blank; blanks at
    // the very end give one last empty field.
    while i < bytes.len() && fields.len() < MAX_FIELDS {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        let from = i;
        while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        fields.push(start[from..i].to_string());
        i += 1;
    }
    if fields.len() < MIN_FIELDS {
        return Err(());
    }
    Ok(Some(Line { fields }))
}

/// Reads a state file into its lines, the version checked.
fn read_file(path: &std::path::Path) -> Result<Contents, FileError> {
    let file = std::fs::File::open(path).map_err(|e| {
        let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
        FileError::Open(errno.desc().to_string())
    })?;
    read_lines(std::io::BufReader::new(file))
}

/// A state file's lines, read one at a time up to the first bad one.
fn read_lines(input: impl std::io::BufRead) -> Result<Contents, FileError> {
    let mut chunks = Chunks::new(input);
    version(chunks.next_chunk()).ok_or(FileError::Version)?;
    let mut contents = Contents {
        lines: Vec::new(),
        corrupted_at: None,
    };
    let mut n = 0;
    while let Some(raw) = chunks.next_chunk() {
        n += 1;
        match parse_line(raw) {
            Ok(Some(line)) => contents.lines.push(line),
            Ok(None) => {}
            Err(()) => {
                contents.corrupted_at = Some(n);
                break;
            }
        }
    }
    Ok(contents)
}

/// The global file's lines by `be_name srv_name`, the first of a key kept; None when it
/// cannot be used (said as HAProxy says it).
fn read_global(path: &std::path::Path) -> Option<Keyed> {
    let file = path.display();
    match read_file(path) {
        Ok(Contents {
            corrupted_at: Some(n),
            ..
        }) => {
            warn(&format!(
                "config: corrupted global server state file '{file}' at line {n}."
            ));
            None
        }
        Ok(Contents { lines, .. }) => {
            let mut keyed = Keyed::new();
            for line in lines {
                let key = Line::key(line.field(1)?, line.field(3)?);
                keyed.entry(key).or_insert(line);
            }
            Some(keyed)
        }
        Err(FileError::Open(why)) => {
            warn(&format!(
                "config: Can't open global server state file '{file}': {why}"
            ));
            None
        }
        Err(FileError::Version) => {
            warn(&format!(
                "config: Can't get version of the global server state file '{file}'."
            ));
            None
        }
    }
}

/// A backend's own file (`load-server-state-from-file local`).
fn apply_local(backend: &Backend, base: Option<&str>, kept: &mut KeptAddrs) {
    let be = &backend.name;
    let name = (backend.conf.server_state_file_name.as_deref()).unwrap_or(be);
    let path = path_of(base, name);
    let file = path.display();
    let contents = match read_file(&path) {
        Ok(contents) => contents,
        Err(FileError::Open(why)) => {
            return warn(&format!(
                "Proxy '{be}': Can't open server state file '{file}': {why}."
            ));
        }
        Err(FileError::Version) => {
            return warn(&format!(
                "Proxy '{be}': Can't get version of the server state file '{file}'."
            ));
        }
    };
    // Every line read is checked against the backend, those before a bad one too.
    let mut keyed = Keyed::new();
    for line in contents.lines {
        if !belongs(backend, &line) {
            continue;
        }
        let key = Line::key(be, line.field(3).unwrap_or_default());
        keyed.entry(key).or_insert(line);
    }
    if let Some(n) = contents.corrupted_at {
        return warn(&format!(
            "Proxy '{be}': corrupted server state file '{file}' at line {n}."
        ));
    }
    apply_lines(backend, &mut keyed, kept);
    // What is left, in HAProxy's order: its tree's, by key.
    for line in keyed.values() {
        let server = line.field(3).unwrap_or_default();
        warn(&format!(
            "Proxy '{be}': can't find server '{server}' in backend '{be}'"
        ));
    }
}

/// Whether a line of a backend's own file is for it: its id or its name matches (a
/// mismatch of either is said; a name mismatch skips the line unless the file's backend
/// id was forced).
fn belongs(backend: &Backend, line: &Line) -> bool {
    let be = &backend.name;
    let file_id = line.field(0).unwrap_or_default();
    let file_name = line.field(1).unwrap_or_default();
    let same_id = atoi(file_id) == backend.id as i64;
    let same_name = file_name == be.as_str();
    if !same_id && !same_name {
        return false;
    }
    if !same_id {
        let msg = format!(
            "backend ID mismatch: from server state file: '{file_id}', from running config '{}'",
            backend.id
        );
        warn(&format!("Proxy '{be}': {msg}"));
    } else if !same_name {
        let msg = format!(
            "backend name mismatch: from server state file: '{file_name}', from running config '{be}'"
        );
        warn(&format!("Proxy '{be}': {msg}"));
        return atoi(line.field(15).unwrap_or_default()) & 1 != 0;
    }
    true
}

/// C's `atoi`: `strtol`, 0 without digits.
fn atoi(s: &str) -> i64 {
    strtol(s).map_or(0, |(v, _)| v)
}

/// Applies the lines found for the backend's servers, in the configuration's order; the
/// lines taken leave `lines`, as they leave HAProxy's tree.
fn apply_lines(backend: &Backend, lines: &mut Keyed, kept: &mut KeptAddrs) {
    for server in &backend.servers {
        let key = Line::key(&backend.name, &server.name);
        if let Some(line) = lines.remove(&key) {
            if let Some(addr) = update_server(backend, server, &line.fields[4..]) {
                kept.insert(key, addr);
            }
        }
    }
}

/// A line's values, checked as HAProxy's `srv_state_srv_update` checks them.
#[derive(Debug)]
struct Values<'a> {
    addr: &'a str,
    op_state: i64,
    admin: i64,
    uweight: i64,
    iweight: i64,
    since_change: i64,
    check_status: i16,
    check_state: i64,
    agent_state: i64,
    /// `srv_fqdn`, unless `-`.
    fqdn: Option<&'a str>,
    /// The name was set from the CLI (admin flag 64, HAProxy's `SRV_ADMF_HMAINT`).
    fqdn_set_by_cli: bool,
    port: Option<u32>,
}

/// HAProxy's list of what is wrong on a line: `, invalid srv_op_state value '5', ...`.
#[derive(Default)]
struct Errors(String);

impl Errors {
    fn invalid(&mut self, name: &str, value: &str) {
        let _ = write!(self.0, ", invalid {name} value '{value}'");
    }
}

/// The values of `params` (the fields after the server's name), or HAProxy's list of what
/// is wrong (`, invalid srv_op_state value '5', ...`).
fn check_values<'a>(params: &'a [String]) -> Result<Values<'a>, String> {
    let p = |i: usize| params.get(i).map_or("", String::as_str);
    let mut errors = Errors::default();
    let mut number = |i: usize, name: &str, valid: &dyn Fn(i64) -> bool| -> i64 {
        match strtol(p(i)) {
            Some((v, _)) if valid(v) => v,
            _ => {
                errors.invalid(name, p(i));
                0
            }
        }
    };
    let op_state = number(1, "srv_op_state", &|v| (0..=3).contains(&v));
    // Inherited states are worked out again; HAProxy's admin state is an `enum` (int):
    // of the flags left, only these combinations are valid.
    let admin_flags = |v: i64| (v as i32 as i64) & !(IDRAIN | IMAINT | RMAINT | FQDN_CHANGED);
    let valid_admin = [0, FMAINT, CMAINT, CMAINT | FMAINT, CMAINT | FDRAIN, FDRAIN];
    let raw_admin = number(2, "srv_admin_state", &|v| {
        valid_admin.contains(&admin_flags(v))
    });
    let admin = admin_flags(raw_admin);
    // Unsigned in HAProxy: a negative weight is a huge one.
    let weight = |v: i64| (0..=WEIGHT_MAX).contains(&(v as u32 as i64));
    let uweight = number(3, "srv_uweight", &weight);
    let iweight = number(4, "srv_iweight", &weight);
    let since_change = number(5, "srv_last_time_change", &|_| true);
    // A `short` in HAProxy, compared signed.
    let check_status = number(6, "srv_check_status", &|v| {
        (v as i16 as i64) < CHECK_STATUS_SIZE
    });
    number(7, "srv_check_result", &|v| (0..=4).contains(&(v as i32)));
    number(8, "srv_check_health", &|_| true);
    let check_state = number(9, "srv_check_state", &|v| v as i32 as i64 & !CHK_ALL == 0);
    let agent_state = number(10, "srv_agent_state", &|v| v as i32 as i64 & !CHK_ALL == 0);
    number(11, "bk_f_forced_id", &|v| v == 0 || v == 1);
    number(12, "srv_f_forced_id", &|v| v == 0 || v == 1);
    let fqdn = p(13);
    let fqdn_ok = |f: &str| {
        f.len() <= FQDN_MAX
            && f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    if !fqdn.starts_with('-') && !fqdn_ok(fqdn) {
        errors.invalid("srv_fqdn", fqdn);
    }
    // HAProxy's `strl2uic`: the leading digits, none giving 0.
    let digits: String = p(14).chars().take_while(char::is_ascii_digit).collect();
    let port = digits
        .parse::<u64>()
        .map_or(Some(0), |v| u32::try_from(v).ok());
    let port = match port {
        Some(v) if v <= u32::from(u16::MAX) => Some(v),
        _ => {
            errors.invalid("srv_port", p(14));
            None
        }
    };
    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    Ok(Values {
        addr: p(0),
        op_state,
        admin,
        uweight,
        iweight,
        since_change,
        check_status: check_status as i16,
        check_state,
        agent_state,
        fqdn: (!fqdn.starts_with('-')).then_some(fqdn),
        fqdn_set_by_cli: raw_admin & FQDN_CHANGED != 0,
        port,
    })
}

/// HAProxy's `srv_state_srv_update` for one server; the address the line kept for
/// `init-addr last`, if any.
fn update_server(backend: &Backend, server: &Server, params: &[String]) -> Option<String> {
    let values = match check_values(params) {
        Ok(v) => v,
        Err(errors) => {
            warn(&format!(
                "server-state application failed for server '{}/{}'{errors}",
                backend.name, server.name
            ));
            return None;
        }
    };
    let file_health = strtol(&params[8]).map_or(0, |(v, _)| v as i32);
    apply_op_state(backend, server, values.op_state, file_health);
    apply_admin(backend, server, &values);
    if server.admin() == Admin::Drain {
        let msg = format!(
            "{}{}/{} remains in forced drain mode.",
            kind(server),
            backend.name,
            server.name
        );
        warn(&msg);
    }
    let since = now_secs().saturating_sub(values.since_change.max(0) as u64);
    server.last_change.store(since, Relaxed);
    apply_check_status(server, values.check_status);
    // Only `disable health` and `disable agent` carry over.
    let disabled = |flags: i64| flags & CHK_CONFIGURED != 0 && flags & CHK_ENABLED == 0;
    if server.opts.check && disabled(values.check_state) {
        server.enable_checks(false);
    }
    if server.agent.configured() && disabled(values.agent_state) {
        super::agent::enable(server, false);
    }
    // A weight changed in the configuration wins over one set at run time.
    if values.iweight == i64::from(server.opts.weight) {
        server.set_weight(values.uweight as u32);
    }
    apply_fqdn(server, &values);
    if let Some(port) = values.port {
        let port = port as u16;
        server.set_service_port(match server.service_port() {
            ServicePort::Mapped(_) => ServicePort::Mapped(port),
            ServicePort::Fixed(_) => ServicePort::Fixed(port),
        });
    }
    if let Err(why) = apply_probe_targets(server, params) {
        warn(&format!(
            "server-state partially applied for server '{}/{}', {why}",
            backend.name, server.name
        ));
    }
    (values.addr != "-").then(|| values.addr.to_string())
}

/// The name of a server written with one, as HAProxy's `srv_state_srv_update`: the file's
/// name when it was set from the CLI (flag 64 kept, and the resolution runs on it), the
/// configured one otherwise; the same name as configured drops the flag. Its first address
/// comes next by its `init-addr` methods, on that name.
fn apply_fqdn(server: &Server, values: &Values<'_>) {
    let Some(fqdn) = values.fqdn else { return };
    let host = server.host();
    if host.parse::<IpAddr>().is_ok() {
        return;
    }
    if host == fqdn {
        server.set_fqdn_set_by_cli(false);
    } else if values.fqdn_set_by_cli {
        // HAProxy's `srv_set_fqdn` needs a resolvers section (it keeps the name lower
        // case, as `set server ... fqdn`); the flag is set even without one.
        if server.opts.resolvers.is_some() {
            server.set_host(&fqdn.to_ascii_lowercase());
        }
        server.set_fqdn_set_by_cli(true);
    }
}

/// The check's, then the agent's, port and address, as the last steps of HAProxy's
/// `srv_state_srv_update`: a field at `0` or `-` is left alone, and the first refusal ends
/// the application there (the server keeps what was applied before it). hapx checks the
/// address the configuration gives (`srv_check_addr` is not applied).
fn apply_probe_targets(server: &Server, params: &[String]) -> Result<(), String> {
    let given = |i: usize, unset: &str| params.get(i).map(String::as_str).filter(|&v| v != unset);
    let (check_port, check_addr) = (given(17, "0"), given(18, "-"));
    if check_port.is_some() || check_addr.is_some() {
        if !server.checks_enabled() {
            return Err("health checks are not enabled on this server".into());
        }
        if let Some(port) = check_port {
            super::checks::update_port(server, port)?;
        }
    }
    let (agent_addr, agent_port) = (given(19, "-"), given(20, "0"));
    if agent_addr.is_some() || agent_port.is_some() {
        super::agent::update_target(&server.agent, agent_addr, agent_port)?;
    }
    Ok(())
}

/// HAProxy's states: stopped 0, starting 1, running 2, stopping 3. The health is set as
/// HAProxy sets it; a change from UP is said (none for a server in maintenance).
fn apply_op_state(backend: &Backend, server: &Server, op_state: i64, file_health: i32) {
    let (rise, fall) = (server.opts.rise, server.opts.fall);
    let stopped = op_state == 0 || (op_state == 3 && fall == 1);
    if stopped {
        server.health.store(0, Relaxed);
        set_state(backend, server, false, false);
    } else if op_state == 3 {
        let health = u32::try_from(file_health).unwrap_or(0);
        let health = if health < rise || health > rise + fall - 2 {
            rise
        } else {
            health
        };
        server.health.store(health, Relaxed);
        set_state(backend, server, true, true);
    } else if op_state == 1 && rise > 1 {
        let health = u32::try_from(file_health).unwrap_or(0);
        let health = if health < 1 || health >= rise {
            rise - 1
        } else {
            health
        };
        server.health.store(health, Relaxed);
    } else {
        server.health.store(rise + fall - 1, Relaxed);
        set_state(backend, server, true, false);
    }
}

/// Sets a server UP (stopping or not) or DOWN as the file says, and says so as HAProxy does.
fn set_state(backend: &Backend, server: &Server, up: bool, stopping: bool) {
    let serving = server.admin() != Admin::Maint && !server.in_inherited_maint();
    let was = (server.is_up(), server.is_stopping());
    let changed = server.transition(|| {
        if up {
            server.set_stopping(stopping);
        }
        let change = server.is_up() != up;
        if change {
            server.set_up(up);
        }
        change
    });
    // Said before the servers tracking it follow, as HAProxy does.
    if serving && was != (server.is_up(), server.is_stopping()) {
        say_state(backend, server, up, stopping);
    }
    if changed {
        super::track::follow(server);
    }
}

/// `Server B/S is DOWN|stopping|UP, changed from server-state after a reload`, with the
/// servers left or online.
fn say_state(backend: &Backend, server: &Server, up: bool, stopping: bool) {
    let kind = if server.opts.backup {
        "Backup Server"
    } else {
        "Server"
    };
    let (active, backup) = serving_counts(backend);
    let on_backup = if active == 0 && backup > 0 {
        " Running on backup."
    } else {
        ""
    };
    let (event, tail) = match (up, stopping) {
        (false, _) => (
            "is DOWN",
            format!(
                ". {active} active and {backup} backup servers left.{on_backup} 0 sessions active, 0 requeued, 0 remaining in queue."
            ),
        ),
        (true, true) => (
            "is stopping",
            format!(
                ". {active} active and {backup} backup servers online.{on_backup} 0 sessions requeued, 0 total in queue."
            ),
        ),
        (true, false) => (
            "is UP",
            format!(
                ". {active} active and {backup} backup servers online.{on_backup} 0 sessions requeued, 0 total in queue."
            ),
        ),
    };
    let msg = format!(
        "{kind} {}/{} {event}, changed from server-state after a reload{tail}",
        backend.name, server.name
    );
    warn(&msg);
}

/// The active and backup servers taking new connections, as HAProxy counts them while it
/// reads the files: before `init-addr`, so a server written with a name counts without
/// its address (`Backend::active_count` asks for one).
fn serving_counts(backend: &Backend) -> (usize, usize) {
    let serving = |s: &&std::sync::Arc<Server>| {
        s.admin() != Admin::Maint && !s.in_inherited_maint() && s.is_up() && s.lb_weight() > 0
    };
    let (backup, active): (Vec<_>, Vec<_>) = backend
        .servers
        .iter()
        .filter(serving)
        .partition(|s| s.opts.backup);
    (active.len(), backup.len())
}

/// Maintenance and drain: a change of `disabled` in the configuration wins; otherwise the
/// file's forced maintenance; a forced drain unless the configured weight left 0.
fn apply_admin(backend: &Backend, server: &Server, values: &Values<'_>) {
    let config_maint = server.opts.disabled;
    let file_cmaint = values.admin & CMAINT != 0;
    let maint = if file_cmaint != config_maint {
        config_maint
    } else {
        values.admin & FMAINT != 0
    };
    if maint && server.admin() != Admin::Maint {
        server.set_admin(Admin::Maint);
    } else if !maint && server.admin() == Admin::Maint {
        server.set_admin(Admin::Ready);
        // Said before any drain the file adds, as HAProxy's `srv_adm_set_ready` comes first.
        let state = if server.is_up() { "UP" } else { "DOWN" };
        warn(&format!(
            "{}{}/{} is {state}/READY (leaving forced maintenance).",
            kind(server),
            backend.name,
            server.name
        ));
    }
    let weight_kept = values.iweight > 0 || server.opts.weight == 0;
    if !maint && values.admin & FDRAIN != 0 && weight_kept {
        server.set_admin_flag(AdminFlag::Drain, true);
    }
}

/// How HAProxy's messages name a server: `Backup Server ` or `Server `.
fn kind(server: &Server) -> &'static str {
    if server.opts.backup {
        "Backup Server "
    } else {
        "Server "
    }
}

/// The last check's status by its number (`show servers state`'s).
fn apply_check_status(server: &Server, code: i16) {
    let Some((name, ..)) =
        (super::stats::CHECK_STATUSES.iter()).find(|(_, n, _)| i16::from(*n) == code)
    else {
        return;
    };
    if let Ok(mut check) = server.check.lock() {
        if check.status != *name {
            check.status = (*name).to_string();
            check.desc = String::new();
            check.code = None;
        }
    }
}

/// A start-up warning, as HAProxy prints those of its configuration stage.
fn warn(msg: &str) {
    WARNINGS.fetch_add(1, Relaxed);
    crate::process::say_line(&format!(
        "[WARNING]  ({}) : config : {msg}",
        std::process::id()
    ));
}

/// A start-up alert, as HAProxy prints those of its configuration stage.
fn alert(msg: &str) {
    crate::process::say_line(&format!(
        "[ALERT]    ({}) : config : {msg}",
        std::process::id()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8]) -> Vec<Vec<u8>> {
        let mut chunks = Chunks::new(input);
        std::iter::from_fn(|| chunks.next_chunk().map(<[u8]>::to_vec)).collect()
    }

    #[test]
    fn lines_are_cut_as_fgets_cuts_them() {
        let long = vec![b'x'; 2500];
        let lines = chunks(&long);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 1999);
        assert_eq!(lines[1].len(), 501);
        assert_eq!(
            chunks(b"1\nab\nc"),
            vec![b"1\n".to_vec(), b"ab\n".to_vec(), b"c".to_vec()]
        );
        // A C string ends at its NUL: what follows it is not seen, the newline neither.
        assert_eq!(chunks(b"a\0b\nc\n"), vec![b"a".to_vec(), b"c\n".to_vec()]);
    }

    #[test]
    fn an_endless_file_is_read_one_line_at_a_time() {
        // As /dev/zero: the version line is 1999 NULs, no version; nothing more is read.
        let endless = std::io::BufReader::new(std::io::repeat(0));
        assert_eq!(read_lines(endless).unwrap_err(), FileError::Version);
    }

    #[test]
    fn the_version_line_is_a_number_and_its_newline() {
        assert_eq!(version(Some(b"1\n")), Some(1));
        assert_eq!(version(Some(b" 1\n")), Some(1));
        assert_eq!(version(Some(b"1 \n")), None);
        assert_eq!(version(Some(b"2\n")), None);
        assert_eq!(version(Some(b"\n")), None);
        assert_eq!(version(None), None);
    }

    #[test]
    fn fields_are_split_on_blanks_as_haproxy_does() {
        let twenty = "2 be s 1 a 2 0 1 1 0 1 0 4 0 0 0 0 - 80 -";
        let line = parse_line(format!("{twenty}\n").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(line.fields.len(), 20);
        // Blanks at the end make one more, empty field.
        let line = parse_line(format!("{twenty}  \n").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(line.fields.len(), 21);
        assert_eq!(line.fields[20], "");
        // More than 25 fields: the rest is ignored.
        let many = format!("{twenty} 0 0 - - 0 extra more\n");
        assert_eq!(
            parse_line(many.as_bytes()).unwrap().unwrap().fields.len(),
            25
        );
        assert_eq!(parse_line(b"  # comment\n"), Ok(None));
        assert_eq!(parse_line(b"\n"), Ok(None));
        assert_eq!(parse_line(b"2 be 1 s\n"), Err(()));
        assert_eq!(parse_line(twenty.as_bytes()), Err(()));
    }

    #[test]
    fn values_are_checked_with_haproxy_words() {
        let fields = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let bad = fields("a 5 9 x 1 0 99 7 0 0 0 2 2 bad! 99999 -");
        assert_eq!(
            check_values(&bad).unwrap_err(),
            ", invalid srv_op_state value '5', invalid srv_admin_state value '9', invalid srv_uweight value 'x', invalid srv_check_status value '99', invalid srv_check_result value '7', invalid bk_f_forced_id value '2', invalid srv_f_forced_id value '2', invalid srv_fqdn value 'bad!', invalid srv_port value '99999'"
        );
        // Inherited flags and a changed name are not the file's to say.
        let good = fields("127.0.0.1 2 126 7 20 4 1 0 2 0 0 0 0 - 80 -");
        let v = check_values(&good).unwrap();
        assert_eq!((v.admin, v.uweight, v.port), (CMAINT | FDRAIN, 7, Some(80)));
    }

    #[test]
    fn relative_names_go_under_the_base() {
        assert_eq!(path_of(Some("/b"), "f"), PathBuf::from("/b/f"));
        assert_eq!(path_of(Some("/b/"), "f"), PathBuf::from("/b/f"));
        assert_eq!(path_of(Some("/b"), "/f"), PathBuf::from("/f"));
        assert_eq!(path_of(None, "f"), PathBuf::from("f"));
    }
}
