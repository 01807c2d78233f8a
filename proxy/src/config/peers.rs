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

use std::net::SocketAddr;
use std::sync::OnceLock;

use super::diag::{Diags, LineError};
use super::hint_words;
use super::keywords::{self, Support};
use super::model::{Config, Place};
use super::stick::TableSpec;

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
}

/// `-L NAME`, set once by the command line before the configuration is read.
static LOCAL_PEER_OVERRIDE: OnceLock<String> = OnceLock::new();

/// Records `-L NAME` (it wins over the global `localpeer`, as in HAProxy).
pub fn set_local_peer_override(name: String) {
    let _ = LOCAL_PEER_OVERRIDE.set(name);
}

/// The name this process has in `peers` sections: `-L`, else `localpeer`, else the host name.
pub fn local_peer_name(config: &Config) -> String {
    if let Some(name) = LOCAL_PEER_OVERRIDE.get() {
        return name.clone();
    }
    if let Some(name) = &config.global.localpeer {
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
    });
    Start::Section
}

/// Server keywords HAProxy reads on a `peer` line and ignores with a warning.
const IGNORED_SERVER_KEYWORDS: &[&str] = &["check", "init-addr", "resolvers", "agent-check"];

/// One line inside the section opened last.
pub fn line(
    section: &mut PeersSection,
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
            bind(section, words)?;
            section.bind_place = Some(place.clone());
        }
        "peer" | "server" => {
            if kw == "peer" {
                if section.bind.is_some() {
                    return Err("mixing \"peer\" and \"bind\" line is forbidden".into());
                }
                section.peer_lines = true;
            }
            member(section, local, kw, words, place, diags)?;
        }
        // Defaults for the `server` lines: nothing of them matters to hapx's peers.
        "default-server" | "default-bind" => {}
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

/// `bind ADDR:PORT [bind keywords]`: where the local member listens (the `server` form).
fn bind(section: &mut PeersSection, words: &[String]) -> Result<(), String> {
    // HAProxy accepts a `bind` without address and makes nothing of it.
    let Some(text) = words.get(1) else {
        return Ok(());
    };
    let addr = match address(text) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            let e = AddrError::MissingPort;
            return Err(format!("'bind {text}' : {}", e.bind_text(text)));
        }
        Err(e) => return Err(format!("'bind {text}' : {}", e.bind_text(text))),
    };
    let mut rest = words[2..].iter();
    while let Some(opt) = rest.next() {
        let Some((nargs, support)) = keywords::lookup_args(keywords::BIND, opt) else {
            let mut m = format!("'bind {text}' in section 'peers': unknown keyword '{opt}'");
            match keywords::suggest(opt, hint_words::BIND.iter().copied()) {
                Some(s) => m.push_str(&format!("; did you mean '{s}' maybe ?")),
                None => m.push('.'),
            }
            return Err(m);
        };
        if opt == "ssl" || matches!(support, Support::No | Support::Removed(_)) {
            return Err(format!(
                "'bind {text}' in section 'peers': '{opt}' is not implemented by hapx for peers."
            ));
        }
        for _ in 0..nargs {
            rest.next();
        }
    }
    section.bind = Some(addr);
    Ok(())
}

/// `peer NAME ADDR:PORT [server keywords]` or `server NAME [ADDR:PORT [server keywords]]`.
fn member(
    section: &mut PeersSection,
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
    if let Err(m) = server_keywords(&server, args, kw == "server" && is_local) {
        diags.check_alert(place, m);
        return Ok(());
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
    });
    Ok(())
}

/// The server keywords of a member's line: known ones are accepted (nothing of them matters
/// to replication), SSL is refused, an unknown one is HAProxy's error.
fn server_keywords<'a>(
    server: &str,
    mut args: impl Iterator<Item = &'a String>,
    no_address: bool,
) -> Result<(), String> {
    let mut first = true;
    while let Some(opt) = args.next() {
        match keywords::lookup_args(keywords::SERVER, opt) {
            Some((_, Support::No | Support::Removed(_))) => {
                return Err(format!(
                    "{server} : '{opt}' is not implemented by hapx for peers."
                ));
            }
            Some(_) if opt == "ssl" => {
                return Err(format!(
                    "{server} : '{opt}' is not implemented by hapx for peers."
                ));
            }
            Some((nargs, _)) => {
                for _ in 0..nargs {
                    args.next();
                }
            }
            None => {
                let mut m = format!("{server} : unknown keyword '{opt}'");
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
