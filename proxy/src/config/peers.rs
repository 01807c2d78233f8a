//! `peers NAME` sections, as HAProxy 2.6 reads them: the processes a stick table naming the
//! section (`stick-table ... peers NAME`) replicates its entries with.
//!
//! A section lists its members as `peer NAME ADDR:PORT` lines, or (the 2.x form) a `bind
//! ADDR:PORT` for the local one and `server NAME [ADDR:PORT]` lines; `disabled`/`enabled`
//! switch replication off and on. The local member is the one named as this process: `-L
//! NAME`, else the global `localpeer`, else the host name ([`local_peer_name`]); it is where
//! the process listens, the others are whom it connects to. A section without a member of
//! that name is removed with HAProxy's warning (its tables stay, not replicated).
//!
//! `table NAME type ... size ... [expire ...] [nopurge] [store ...]` declares a stick table
//! of the section, not of a proxy: it is named `SECTION/NAME` where rules, fetches and
//! `show table` name it (`track-sc0 src table SECTION/NAME`; a bare `NAME` is not found,
//! as in HAProxy), and `/NAME` in the peers protocol (HAProxy 2.6's `nid`: the name less
//! the section's), so it replicates with a member's section table of that name. Its words are a
//! `stick-table` line's but `peers` (the section is its own), and its messages say
//! `table:` where a proxy's say `stick-table:`. Tables are listed (`show table`) in the
//! order the sections and proxies declare them ([`declared_tables`]).
//!
//! TLS between members, as HAProxy 2.6: the listener speaks TLS with `bind ADDR:PORT ssl
//! crt FILE ...` (the `server` form) or `default-bind ssl crt FILE ...` (the `peer` form: the
//! local member's listener takes the default-bind's settings); a member is reached over TLS
//! with `ssl` on its line or on the `default-server` line before it (`verify none`, or
//! `ca-file`; `crt` for a client certificate). The words are a frontend's `bind` and a
//! backend's `server` TLS words, read and loaded by the same code
//! ([`super::parse::bind_tls_server`], [`super::tls::build`]), with HAProxy's messages for a
//! peers section: a listener without `crt`, or with `verify` and no `ca-file`, is refused
//! once the file is read, and a local member whose listener and own line disagree on SSL
//! is warned about (the successor's lesson at a reload goes through that line).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use super::bind_tls::{BindTlsOptions, ClientVerify, TlsServer};
use super::diag::{Diags, LineError};
use super::hint_words;
use super::keywords::{self, Support};
use super::model::{Config, Global, Place, ServerTls};
use super::stick::TableSpec;
use super::tls::TlsClient;

/// One `peers` section.
#[derive(Debug, Clone)]
pub struct PeersSection {
    pub name: String,
    pub place: Place,
    /// `disabled` (and no `enabled` after it): nothing is replicated.
    pub disabled: bool,
    /// `bind ADDR:PORT`: where the local member listens (the `server` form), and its line.
    pub bind: Option<SocketAddr>,
    pub bind_place: Option<Place>,
    pub members: Vec<Member>,
    /// `peer` lines were read (they do not mix with `bind`).
    pub peer_lines: bool,
    /// The name HAProxy's messages give the section's proxy: the local peer's, once read.
    pub proxy_name: Option<String>,
    /// Its `table` lines.
    pub tables: Vec<SectionTable>,
    /// How many proxies were declared before the section (where its tables come among
    /// the proxies' tables).
    pub proxies_before: usize,
    /// No member is this process: HAProxy removes the section (its tables stay).
    pub removed: bool,
    /// `default-bind`'s words (the listener's in the `peer` form) and its TLS side.
    pub default_bind: Option<ListenerTls>,
    /// `bind`'s TLS side (the `server` form).
    pub bind_tls: Option<ListenerTls>,
    /// `default-server`'s TLS words: the base of each later member's.
    pub default_server: ServerTls,
}

/// The TLS words of a `bind` or `default-bind` line, and what they built.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub options: BindTlsOptions,
    /// Loaded when the line was read (None: in clear, or refused once the file is read).
    pub server: Option<Arc<TlsServer>>,
    /// The line (HAProxy's messages about the listener name it).
    pub place: Place,
}

/// A `table` line.
#[derive(Debug, Clone)]
pub struct SectionTable {
    /// `SECTION/NAME`.
    pub name: String,
    /// Its `peers` is the section's name (None once the section is removed or disabled).
    pub spec: TableSpec,
}

/// One `peer` or `server` line.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// None for a `server NAME` without address (the local member of the `bind` form).
    pub addr: Option<SocketAddr>,
    /// This process (its name is the local peer name).
    pub local: bool,
    pub place: Place,
    /// The TLS words of its line over its `default-server`'s.
    pub tls_options: ServerTls,
    /// With `ssl`: reached over TLS, so configured (built once the file is read, as
    /// HAProxy prepares its servers' TLS then).
    pub tls: Option<Arc<TlsClient>>,
}

impl PeersSection {
    /// Whether the section replicates (HAProxy lists it in `show peers`).
    pub fn active(&self) -> bool {
        !self.disabled && !self.removed
    }

    /// Where this process listens: the local `peer` line's address, else the `bind`.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.members
            .iter()
            .find(|m| m.local)
            .and_then(|m| m.addr)
            .or(self.bind)
    }

    /// The line of the local member's address (for HAProxy's bind error).
    pub fn listen_place(&self) -> &Place {
        let local = self.members.iter().find(|m| m.local && m.addr.is_some());
        local
            .map(|m| &m.place)
            .or(self.bind_place.as_ref())
            .unwrap_or(&self.place)
    }

    /// The local member's name.
    pub fn local_name(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.local)
            .map(|m| m.name.as_str())
    }

    /// The members this process connects to.
    pub fn remotes(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| !m.local)
    }

    /// The listener's TLS settings: `bind`'s, else (the `peer` form) `default-bind`'s.
    fn listener_tls(&self) -> Option<&ListenerTls> {
        self.bind_tls.as_ref().or(self.default_bind.as_ref())
    }

    /// The listener's TLS side, if it speaks TLS.
    pub fn listen_tls(&self) -> Option<&Arc<TlsServer>> {
        self.listener_tls().and_then(|l| l.server.as_ref())
    }
}

/// `-L NAME`, set once by the command line before the configuration is read.
static LOCAL_PEER_OVERRIDE: OnceLock<String> = OnceLock::new();

/// Records `-L NAME` (it wins over the global `localpeer`, as in HAProxy).
pub fn set_local_peer_override(name: String) {
    let _ = LOCAL_PEER_OVERRIDE.set(name);
}

/// The name this process has in `peers` sections: `-L`, else `localpeer`, else the host name.
pub fn local_peer_name(config: &Config) -> String {
    match (LOCAL_PEER_OVERRIDE.get(), &config.global.localpeer) {
        (None, Some(name)) => name.clone(),
        _ => startup_local_peer_name(),
    }
}

/// The name before the configuration says one: `-L`, else the host name.
pub fn startup_local_peer_name() -> String {
    if let Some(name) = LOCAL_PEER_OVERRIDE.get() {
        return name.clone();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// The global `localpeer NAME` (ignored, with HAProxy's warning, after `-L`).
pub fn localpeer(
    global: &mut super::model::Global,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    let Some(name) = words.get(1).filter(|n| !n.is_empty()) else {
        return Err("'localpeer' expects a name as an argument.".into());
    };
    if let Some(extra) = words.get(2) {
        return Err(format!(
            "'localpeer' cannot handle unexpected argument '{extra}'."
        ));
    }
    if LOCAL_PEER_OVERRIDE.get().is_some() {
        diags.warn(
            place,
            "'localpeer' ignored since it is already set by using the '-L' command line argument.",
        );
        return Ok(());
    }
    global.localpeer = Some(name.clone());
    // As HAProxy's: the lines after it read the name in `${HAPROXY_LOCALPEER}`.
    global.environment.set("HAPROXY_LOCALPEER", name.clone());
    Ok(())
}

/// What a `peers` header does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The section's lines follow.
    Section,
    /// Refused: its lines are skipped.
    Skip,
    /// Refused, and HAProxy reads no further (its `ERR_ABORT`).
    Abort,
}

/// `peers NAME`: starts a section.
pub fn start(config: &mut Config, words: &[String], place: &Place, diags: &mut Diags) -> Start {
    let Some(name) = words.get(1).filter(|n| !n.is_empty()) else {
        diags.alert(place, "missing name for peers section.");
        return Start::Abort;
    };
    if let Some(other) = config.peers.iter().find(|s| &s.name == name) {
        diags.global_alert(format!(
            "Parsing [{place}]: peers section '{name}' has the same name as another peers section declared at {}.",
            other.place
        ));
        return Start::Skip;
    }
    config.peers.push(PeersSection {
        name: name.clone(),
        place: place.clone(),
        disabled: false,
        bind: None,
        bind_place: None,
        members: Vec::new(),
        peer_lines: false,
        proxy_name: None,
        tables: Vec::new(),
        proxies_before: config.proxies.len(),
        removed: false,
        default_bind: None,
        bind_tls: None,
        default_server: ServerTls::default(),
    });
    Start::Section
}

/// Server keywords HAProxy reads on a `peer` line and ignores with a warning.
const IGNORED_SERVER_KEYWORDS: &[&str] = &["check", "init-addr", "resolvers", "agent-check"];

/// One line inside the section opened last.
pub fn line(
    section: &mut PeersSection,
    global: &Global,
    local: &str,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    let kw = words[0].as_str();
    match kw {
        "disabled" => section.disabled = true,
        "enabled" => section.disabled = false,
        "bind" => {
            if section.peer_lines {
                return Err("mixing \"peer\" and \"bind\" line is forbidden".into());
            }
            section.bind_tls = bind(section, global, words, place, diags)?;
            section.bind_place = Some(place.clone());
        }
        "peer" | "server" => {
            if kw == "peer" {
                if section.bind.is_some() {
                    return Err("mixing \"peer\" and \"bind\" line is forbidden".into());
                }
                section.peer_lines = true;
            }
            member(section, global, local, kw, words, place, diags)?;
        }
        "default-bind" => section.default_bind = default_bind(global, words, place, diags)?,
        "default-server" => {
            let mut tls = section.default_server.clone();
            let args = words[1..].iter();
            if let Err(m) = server_keywords(&mut tls, None, args, true, place, diags) {
                diags.check_alert(place, m);
                return Ok(());
            }
            section.default_server = tls;
        }
        "table" => table(section, words, place, diags)?,
        _ => return Err(format!("unknown keyword '{kw}' in 'peers' section")),
    }
    Ok(())
}

/// `table NAME ...`: a stick table of the section, read as a `stick-table` line's words
/// (by [`super::stick::parse_table`]), its messages worded as HAProxy's for `table`.
fn table(
    section: &mut PeersSection,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    // HAProxy reads the words after the name even without one (`table` alone lacks a size).
    let name = words.get(1).map_or("", String::as_str);
    let args = words.get(2..).unwrap_or_default();
    let mut warnings = Vec::new();
    let mut spec = match super::stick::parse_table(args, &mut warnings) {
        Ok(spec) => spec,
        Err(LineError::Line(m)) => return Err(table_message(&m)),
        Err(LineError::Unspaced(m)) => {
            diags.global_alert(format!("parsing [{place}]: {}", table_message(&m)));
            return Ok(());
        }
    };
    for w in warnings {
        diags.global_warn(format!("parsing [{place}]: {}", table_message(&w)));
    }
    if spec.peers.is_some() {
        return Err("table: unknown argument 'peers'.".into());
    }
    spec.peers = Some(section.name.clone());
    spec.declared_at = place.to_string();
    section.tables.push(SectionTable {
        name: format!("{}/{name}", section.name),
        spec,
    });
    Ok(())
}

/// A message of the `stick-table` parser, as HAProxy words it for a `table` line (it names
/// the line's keyword).
fn table_message(m: &str) -> String {
    match m.strip_prefix("stick-table:") {
        Some(rest) => format!("table:{rest}"),
        None => m.to_string(),
    }
}

/// Whether a section declares the table `name` (`SECTION/NAME`).
pub fn has_table(config: &Config, name: &str) -> bool {
    (config.peers.iter()).any(|s| s.tables.iter().any(|t| t.name == name))
}

/// Every stick table, proxies' and sections', named, in the order they are declared.
pub fn declared_tables(config: &Config) -> Vec<(String, TableSpec)> {
    let mut sections = config.peers.iter().peekable();
    let mut out = Vec::new();
    for (i, p) in config.proxies.iter().enumerate() {
        while let Some(s) = sections.next_if(|s| s.proxies_before <= i) {
            out.extend(s.tables.iter().map(|t| (t.name.clone(), t.spec.clone())));
        }
        if let Some(spec) = &p.stick_table {
            out.push((p.name.clone(), spec.clone()));
        }
    }
    for s in sections {
        out.extend(s.tables.iter().map(|t| (t.name.clone(), t.spec.clone())));
    }
    out
}

/// `bind ADDR:PORT [bind keywords]`: where the local member listens (the `server` form),
/// and its TLS side.
fn bind(
    section: &mut PeersSection,
    global: &Global,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<Option<ListenerTls>, String> {
    // HAProxy accepts a `bind` without address and makes nothing of it.
    let Some(text) = words.get(1) else {
        return Ok(None);
    };
    let addr = match address(text) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            let e = AddrError::MissingPort;
            return Err(format!("'bind {text}' : {}", e.bind_text(text)));
        }
        Err(e) => return Err(format!("'bind {text}' : {}", e.bind_text(text))),
    };
    let tls = listener_tls(global, "bind", text, &words[2..], place, diags)?;
    section.bind = Some(addr);
    Ok(Some(tls))
}

/// `default-bind [bind keywords]`: the local member's listener's settings in the `peer`
/// form. HAProxy names the line by its first word in its messages.
fn default_bind(
    global: &Global,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<Option<ListenerTls>, String> {
    let first = words.get(1).map_or("(null)", String::as_str);
    let tls = listener_tls(global, "default-bind", first, &words[1..], place, diags)?;
    Ok(Some(tls))
}

/// The bind keywords of a `bind` or `default-bind` line (`kw`, `name`: how HAProxy's
/// messages name it), read and loaded as a frontend's bind line's. A listener without
/// certificate, or with `verify` and no `ca-file`, is refused later ([`check_tls`]).
fn listener_tls(
    global: &Global,
    kw: &str,
    name: &str,
    args: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<ListenerTls, String> {
    let at = format!("'{kw} {name}' in section 'peers' : ");
    let mut options = BindTlsOptions::default();
    let mut rest = args.iter();
    while let Some(opt) = rest.next() {
        let Some((nargs, support)) = keywords::lookup_args(keywords::BIND, opt) else {
            let mut m = format!("'{kw} {name}' in section 'peers': unknown keyword '{opt}'");
            match keywords::suggest(opt, hint_words::BIND.iter().copied()) {
                Some(s) => m.push_str(&format!("; did you mean '{s}' maybe ?")),
                None => m.push('.'),
            }
            return Err(m);
        };
        let value = rest.clone().next().map_or("", String::as_str);
        let tls_word = super::parse::bind_tls_option(&mut options, opt, value, place, diags)
            .map_err(|e| format!("{at}{e}"))?;
        if !tls_word && matches!(support, Support::No | Support::Removed(_)) {
            return Err(format!(
                "'{kw} {name}' in section 'peers': '{opt}' is not implemented by hapx for peers."
            ));
        }
        for _ in 0..nargs {
            rest.next();
        }
    }
    let refused_later = options.ssl
        && (options.crts.is_empty()
            || (options.verify != ClientVerify::None && options.ca_file.is_none()));
    let server = match refused_later {
        true => None,
        false => super::parse::bind_tls_server(&options, global, name, &at, place, diags)?,
    };
    Ok(ListenerTls {
        options,
        server,
        place: place.clone(),
    })
}

/// `peer NAME ADDR:PORT [server keywords]` or `server NAME [ADDR:PORT [server keywords]]`.
fn member(
    section: &mut PeersSection,
    global: &Global,
    local: &str,
    kw: &str,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    // HAProxy accepts a line without a name and makes nothing of it.
    let Some(name) = words.get(1).filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    let is_local = name == local;
    if is_local {
        // HAProxy names the section's proxy after the local peer.
        section.proxy_name = Some(name.clone());
    }
    let first = section.members.iter().find(|m| &m.name == name);
    if let Some(first) = first.filter(|_| is_local) {
        return Err(format!(
            "'{kw} {name}' : local peer name already referenced at {}. {name}",
            first.place
        ));
    }
    let server = format!(
        "'server {}/{name}'",
        section.proxy_name.as_deref().unwrap_or("(null)")
    );
    let mut args = words[2..].iter();
    // In the `bind` form the local member has no address: its first word is a keyword.
    let text = match kw == "server" && is_local {
        true => None,
        false => args.next(),
    };
    let addr = match text {
        Some(text) => match address(text) {
            Ok(addr) => addr,
            Err(e) => {
                diags.check_alert(place, format!("{server} : {}", e.server_text(text)));
                if is_local && kw == "peer" && e.bind_too() {
                    diags.alert(place, format!("'peer {name}' : {}", e.bind_text(text)));
                }
                return Ok(());
            }
        },
        None => None,
    };
    if is_local && kw == "peer" && text.is_some() && addr.is_none() {
        let text = text.map(String::as_str).unwrap_or_default();
        let e = AddrError::MissingPort;
        return Err(format!("'peer {name}' : {}", e.bind_text(text)));
    }
    let mut tls = section.default_server.clone();
    let no_address = kw == "server" && is_local;
    if let Err(m) = server_keywords(&mut tls, Some(&server), args, no_address, place, diags) {
        diags.check_alert(place, m);
        return Ok(());
    }
    if let Some(ca_file) = &tls.ca_file {
        // HAProxy loads the CA file when it reads the line.
        let path = super::tls::resolve(global.ca_base.as_deref(), ca_file);
        if let Err(e) = std::fs::File::open(&path) {
            diags.check_alert(
                place,
                format!(
                    "{server} : Couldn't open the ca-file '{ca_file}' ({}).",
                    errno_text(&e)
                ),
            );
            diags.global_alert(format!("'ca-file' : unable to load {ca_file}."));
            return Ok(());
        }
    }
    if first.is_some() {
        // Another member of that name: HAProxy accepts it; the first one is the peer.
        return Ok(());
    }
    if words[2..]
        .iter()
        .any(|w| IGNORED_SERVER_KEYWORDS.contains(&w.as_str()))
    {
        diags.warn(
            place,
            format!("'{kw} {name}' : init_addr, resolvers, check and agent are ignored for peers."),
        );
    }
    section.members.push(Member {
        name: name.clone(),
        addr,
        local: false,
        place: place.clone(),
        tls_options: tls,
        tls: None,
    });
    Ok(())
}

/// An error as `strerror` words it (without Rust's " (os error N)").
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// A member's TLS client side, loaded as a backend server's, with HAProxy's messages for a
/// peers section (`server`: `'server LOCAL/NAME'`); None (alerted) when it cannot be.
fn client_tls(
    member: &Member,
    server: &str,
    global: &Global,
    diags: &mut Diags,
) -> Option<Arc<TlsClient>> {
    use super::tls::TlsError;
    let bases = super::tls::Bases {
        ca: global.ca_base.as_deref(),
        crt: global.crt_base.as_deref(),
        verify_none: global.ssl_server_verify_none,
    };
    let mut tls = member.tls_options.clone();
    tls.versions = tls
        .versions
        .with_defaults(&global.ssl_default_server.versions);
    if let Some(crt) = &tls.crt {
        let path = super::tls::resolve(bases.crt, crt);
        if let Err(e) = std::fs::metadata(&path) {
            diags.global_alert(format!(
                "unable to stat SSL certificate from file '{crt}' : {}.",
                errno_text(&e)
            ));
            return None;
        }
    }
    match super::tls::build(&tls, bases) {
        Ok(client) => Some(Arc::new(client)),
        // HAProxy words it without naming the line.
        Err(TlsError::NoCaFile) => {
            diags.global_alert(TlsError::NoCaFile.to_string());
            None
        }
        Err(e) => {
            diags.check_alert(&member.place, format!("{server} : {e}"));
            None
        }
    }
}

/// The server keywords of a member's (or `default-server`) line: the TLS ones set `tls`,
/// read as a backend server's; other known ones are accepted (nothing of them matters to
/// replication); an unknown one is HAProxy's error.
fn server_keywords<'a>(
    tls: &mut ServerTls,
    server: Option<&str>,
    mut args: impl Iterator<Item = &'a String> + Clone,
    no_address: bool,
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    // A member's line names its server in messages; `default-server` (None) does not.
    let prefix = server.map_or(String::new(), |s| format!("{s} : "));
    let mut first = true;
    while let Some(opt) = args.next() {
        match keywords::lookup_args(keywords::SERVER, opt) {
            Some((nargs, support)) => {
                let value = args.clone().next().map_or("", String::as_str);
                let tls_word = super::parse::server_tls_option(tls, opt, value, place, diags)
                    .map_err(|e| format!("{prefix}{e}."))?;
                // What a default gives members that does not matter to replication is
                // taken, as before; on a member's own line it is refused.
                let unsupported = matches!(support, Support::No | Support::Removed(_));
                if !tls_word && unsupported && server.is_some() {
                    return Err(format!(
                        "{prefix}'{opt}' is not implemented by hapx for peers."
                    ));
                }
                for _ in 0..nargs {
                    args.next();
                }
            }
            None => {
                let mut m = format!("{prefix}unknown keyword '{opt}'");
                if first && no_address {
                    m.push_str(". Hint: no address was expected for this server.");
                } else {
                    match keywords::suggest(opt, hint_words::SERVER.iter().copied()) {
                        Some(s) => m.push_str(&format!("; did you mean '{s}' maybe ?")),
                        None => m.push('.'),
                    }
                }
                return Err(m);
            }
        }
        first = false;
    }
    Ok(())
}

/// Why a member's address is refused.
#[derive(Debug)]
enum AddrError {
    MissingPort,
    Range,
    PortChar(char, String),
    Port(String),
    Host(String),
}

impl AddrError {
    /// As the `server` line's parser words it.
    fn server_text(&self, text: &str) -> String {
        match self {
            AddrError::MissingPort => format!("missing port specification in '{text}'"),
            AddrError::Range => format!("port range not permitted here in '{text}'"),
            AddrError::PortChar(c, port) => {
                format!("invalid character '{c}' in port number '{port}' in '{text}'\n")
            }
            AddrError::Port(port) => format!("invalid port '{port}'"),
            AddrError::Host(host) => format!("invalid address: '{host}' in '{text}'\n"),
        }
    }

    /// As the local member's listener words it.
    fn bind_text(&self, text: &str) -> String {
        match self {
            AddrError::PortChar(c, port) => {
                format!("invalid character '{c}' in port number '{port}' in '{text}'")
            }
            AddrError::Host(host) => format!("invalid address: '{host}' in '{text}'"),
            other => other.server_text(text),
        }
    }

    /// Whether HAProxy's listener of the local member reports it too.
    fn bind_too(&self) -> bool {
        !matches!(self, AddrError::Range)
    }
}

/// An `ADDR:PORT` of a member (a host name resolved now, as HAProxy does); None without port.
fn address(text: &str) -> Result<Option<SocketAddr>, AddrError> {
    let (_, bare) = super::values::strip_family(text);
    let (host, port) = super::values::split_host_port(bare);
    if port.is_empty() {
        return Ok(None);
    }
    if port.contains('-') {
        return Err(AddrError::Range);
    }
    if let Some(c) = port.chars().find(|c| !c.is_ascii_digit()) {
        return Err(AddrError::PortChar(c, port.to_string()));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| AddrError::Port(port.to_string()))?;
    if let Ok(ip) = host.parse() {
        return Ok(Some(SocketAddr::new(ip, port)));
    }
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(Some)
        .ok_or_else(|| AddrError::Host(host.to_string()))
}

/// The checks HAProxy makes of a section's TLS once the file is read: each member's TLS
/// client side is built (HAProxy's alerts when it cannot be), whether the local
/// member's listener and its own line agree on SSL (a warning), and a TLS listener without
/// certificate, or with `verify` but no `ca-file` (alerts naming the listener's address).
fn check_tls(section: &mut PeersSection, global: &Global, diags: &mut Diags) {
    let name = section
        .proxy_name
        .clone()
        .unwrap_or_else(|| "(null)".into());
    for member in section.members.iter_mut().filter(|m| m.tls_options.ssl) {
        let server = format!("'server {name}/{}'", member.name);
        member.tls = client_tls(member, &server, global, diags);
    }
    let listener = section.listener_tls().filter(|l| l.options.ssl);
    let local_ssl = section.members.iter().any(|m| m.local && m.tls_options.ssl);
    let mismatch = match (listener.is_some(), local_ssl) {
        (true, false) => Some("a SSL listener and a non-SSL server"),
        (false, true) => Some("a non-SSL listener and a SSL server"),
        _ => None,
    };
    if let Some(what) = mismatch {
        diags.global_warn(format!(
            "Peers section '{name}': local peer have {what} configured at line {}.",
            section.listen_place()
        ));
    }
    let Some(listener) = listener else {
        return;
    };
    let addr = section
        .listen_addr()
        .map_or(String::new(), |a| a.to_string());
    let at = format!("for bind '{addr}' at [{}]", listener.place);
    if listener.options.crts.is_empty() {
        diags.global_alert(format!(
            "Proxy '{name}': no SSL certificate specified {at} (use 'crt')."
        ));
    } else if listener.options.verify != ClientVerify::None && listener.options.ca_file.is_none() {
        diags.global_alert(format!(
            "Proxy '{name}': verify is enabled but no CA file specified {at}."
        ));
    }
}

/// After reading: marks each section's local member, and removes (with HAProxy's warning)
/// the sections that have none; their tables stay. (A table naming a section that was
/// never declared is refused before, by the stick-table checks.)
pub fn check(config: &mut Config, diags: &mut Diags) {
    let local = local_peer_name(config);
    for section in &mut config.peers {
        let mut found = false;
        for m in &mut section.members {
            m.local = m.name == local;
            found |= m.local;
        }
        if !found {
            diags.global_warn(format!(
                "Removing incomplete section 'peers {}' (no peer named '{local}').",
                section.name
            ));
        }
        section.removed = !found;
        if found {
            check_tls(section, &config.global, diags);
        }
    }
    // A table naming a removed (or disabled) section is not replicated: it keeps no
    // record of its changes for peers.
    let active: Vec<String> = (config.peers.iter())
        .filter(|s| s.active())
        .map(|s| s.name.clone())
        .collect();
    let proxies = config
        .proxies
        .iter_mut()
        .filter_map(|p| p.stick_table.as_mut());
    let sections = (config.peers.iter_mut()).flat_map(|s| s.tables.iter_mut().map(|t| &mut t.spec));
    for spec in proxies.chain(sections) {
        if !spec
            .peers
            .as_ref()
            .is_some_and(|name| active.contains(name))
        {
            spec.peers = None;
        }
    }
}
