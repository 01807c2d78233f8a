//! The configuration as typed values: what the runtime needs, with the place each thing was
//! declared so later checks and runtime messages can name it.

use crate::runtime::logformat::LogFormat;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A place in the configuration: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    pub file: Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The whole configuration, all files merged.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub global: Global,
    /// Frontends, backends and listens, in declaration order.
    pub proxies: Vec<Proxy>,
    pub resolvers: Vec<Resolvers>,
    /// `userlist` sections, in declaration order.
    pub userlists: Vec<super::userlist::Userlist>,
    /// `http-errors` sections, in declaration order.
    pub http_errors: Vec<super::errors::HttpErrors>,
    /// The files that were read, in order (HAProxy's `HAPROXY_CFGFILES`).
    pub files: Vec<PathBuf>,
    /// The `peers` sections, in declaration order ([`super::peers`]).
    pub peers: Vec<super::peers::PeersSection>,
    /// The `ring` sections, in declaration order ([`super::logging::Ring`]).
    pub rings: Vec<super::logging::Ring>,
    /// The `log-forward` sections, in declaration order (read, not served).
    pub log_forwards: Vec<super::logging::LogForward>,
    /// The names of the `mailers` sections (hapx sends no mail; `email-alert mailers`
    /// must name one all the same, as in HAProxy).
    pub mailers: Vec<String>,
}

impl Config {
    pub fn proxy(&self, name: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.name == name)
    }

    pub fn backend(&self, name: &str) -> Option<&Proxy> {
        self.proxies
            .iter()
            .find(|p| p.name == name && p.kind.is_backend())
    }

    /// Whether `-c` says the configuration would start: a stats socket, an enabled frontend
    /// with a `bind`, or a replicating `peers` section this process is a member of, even one
    /// without an address to listen at (HAProxy's check looks for the section's proxy).
    pub fn has_listener(&self) -> bool {
        self.serves_frontends()
            || self
                .peers
                .iter()
                .any(|s| s.active() && s.local_name().is_some())
    }

    /// Whether a start has something to listen at (HAProxy's `listeners` count, without
    /// which it exits): as [`Config::has_listener`], but a `peers` section counts only with
    /// its local member's address.
    pub fn listens_anywhere(&self) -> bool {
        self.serves_frontends()
            || self
                .peers
                .iter()
                .any(|s| s.active() && s.listen_addr().is_some())
    }

    /// A stats socket, an enabled frontend with a `bind`, or a `log-forward` section with
    /// a `bind` or `dgram-bind`.
    fn serves_frontends(&self) -> bool {
        let forwards =
            |l: &super::logging::LogForward| !l.binds.is_empty() || !l.dgram_binds.is_empty();
        !self.global.stats_sockets.is_empty()
            || self
                .proxies
                .iter()
                .any(|p| p.kind.is_frontend() && !p.disabled && !p.binds.is_empty())
            || self.log_forwards.iter().any(forwards)
    }

    /// Whether an option needs the privileges a `uid`/`user` change would drop: a `source`
    /// with `usesrc` or `interface`, of a proxy or a server, disabled or not (HAProxy's
    /// `LSTCHK_NETADM`, set as such a line is read).
    pub fn needs_net_admin(&self) -> bool {
        let needs = |s: &Option<ConnSource>| {
            s.as_ref()
                .is_some_and(|s| s.usesrc.is_some() || s.interface.is_some())
        };
        self.proxies
            .iter()
            .any(|p| needs(&p.source) || p.servers.iter().any(|server| needs(&server.opts.source)))
    }

    pub fn resolvers(&self, name: &str) -> Option<&Resolvers> {
        self.resolvers.iter().find(|r| r.name == name)
    }
}

/// The `global` section.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `external-check`: HAProxy lets proxies run external check commands.
    pub external_check: bool,
    /// `insecure-fork-wanted`: HAProxy lets its threads fork (external checks need it).
    pub insecure_fork_wanted: bool,
    /// `setenv` and its kin, applied while reading ([`super::values::Environment`]).
    pub environment: super::values::Environment,
    /// `tune.pool-low-fd-ratio`, `tune.pool-high-fd-ratio` (percent of `maxsock`; unset:
    /// HAProxy's defaults, `runtime::pool::DEFAULT_FD_RATIOS`).
    pub pool_fd_ratios: (Option<u8>, Option<u8>),
    /// `description TEXT...`: `show info` shows it.
    pub description: Option<String>,
    /// `maxconnrate`, `maxsessrate`: accepted connections (sessions) per second, process-wide.
    pub max_conn_rate: Option<u32>,
    pub max_sess_rate: Option<u32>,
    pub daemon: bool,
    pub chroot: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pidfile: Option<PathBuf>,
    pub maxconn: Option<usize>,
    /// `ulimit-n`: the open-files limit to set instead of the computed one.
    pub ulimit_n: Option<u64>,
    /// `maxpipes`: splice pipes at most, instead of the computed number (see `limits`).
    pub maxpipes: Option<usize>,
    pub nbthread: Option<usize>,
    pub stats_sockets: Vec<StatsSocket>,
    /// The connections HAProxy's runtime API frontend (`cli_fe`) serves at once: `stats
    /// maxconn`, else `limits::CLI_MAXCONN`. None when no `stats socket`, `stats timeout` or
    /// `stats maxconn` line made that frontend (it then adds nothing to `maxsock`).
    pub cli_maxconn: Option<usize>,
    /// How long the runtime API waits for a command (`stats timeout`, default 10s).
    pub stats_timeout: Option<Duration>,
    /// `server-state-file`: the servers' state saved before a reload, for the backends
    /// loading it with `load-server-state-from-file global` (see `runtime::server_state`).
    pub server_state_file: Option<String>,
    /// `server-state-base`: the directory of relative server-state file names.
    pub server_state_base: Option<String>,
    pub logs: Vec<LogTarget>,
    /// `log ring@NAME` lines of the global section.
    pub ring_logs: Vec<super::logging::RingLog>,
    /// `nosplice`: forward through user-space buffers instead of splice(2).
    pub nosplice: bool,
    /// `no strict-limits`: a file-descriptor limit that cannot be set is a warning, not fatal.
    pub lax_limits: bool,
    pub hard_stop_after: Option<Duration>,
    pub node: Option<String>,
    /// `localpeer NAME`: this process's name in `peers` sections (unless `-L`).
    pub localpeer: Option<String>,
    pub log_tag: Option<String>,
    /// `log-send-hostname [NAME]`: the host name in syslog headers.
    pub log_send_hostname: Option<String>,
    /// `quiet`: print no message while starting (as `-q`).
    pub quiet: bool,
    /// `master-worker`: run as master and worker (as `-W`).
    pub master_worker: bool,
    /// `master-worker no-exit-on-failure`: the master stays when its current worker dies.
    pub master_stays_on_failure: bool,
    /// `mworker-max-reloads N`: a former worker that lived through more reloads is stopped.
    pub mworker_max_reloads: Option<u32>,
    /// `spread-checks N`: each check interval varies by up to +/- N% (0..50).
    pub spread_checks: u8,
    /// `max-spread-checks DELAY`: the first checks start within this delay of each other,
    /// however long the check intervals (None: spread over the shortest interval).
    pub max_spread_checks: Option<std::time::Duration>,
    /// `h1-case-adjust FROM TO` and the lines of `h1-case-adjust-file`: lower-case header
    /// names and how to spell them for the proxies with `option h1-case-adjust-bogus-*`.
    pub h1_case_adjust: std::collections::HashMap<String, String>,
    /// `ca-base DIR`: where relative `ca-file`s are.
    pub ca_base: Option<PathBuf>,
    /// `crt-base DIR`: where relative `crt`s are.
    pub crt_base: Option<PathBuf>,
    /// `ssl-server-verify none`: servers without `verify` are not verified.
    pub ssl_server_verify_none: bool,
    /// `ssl-default-server-options`: the TLS versions of servers that set none.
    pub ssl_default_server: ServerTls,
    /// `ssl-default-bind-options`: the TLS versions of `ssl` binds that set none.
    pub ssl_default_bind: super::bind_tls::BindTlsOptions,
}

/// Privilege of a runtime API socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum CliLevel {
    User,
    #[default]
    Operator,
    Admin,
}

/// `stats socket PATH [mode M] [level L] [expose-fd listeners] ...`.
#[derive(Debug, Clone)]
pub struct StatsSocket {
    pub path: PathBuf,
    pub mode: Option<u32>,
    pub level: CliLevel,
    pub expose_fd_listeners: bool,
    pub place: Place,
}

/// Where log lines go: `log ADDR [len N] [format F] [sample R:S] FACILITY [LEVEL
/// [MINLEVEL]]` (read by [`super::logging::log_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub dest: LogDest,
    pub facility: u8,
    /// Most verbose severity sent (0 emerg .. 7 debug).
    pub level: u8,
    /// Least severe a line is stamped with: a line's severity is raised to it (0: none).
    pub min_level: u8,
    /// `len N`: datagrams are cut to N bytes, the final line feed included (1024).
    pub max_len: usize,
    pub format: SyslogFormat,
    /// `sample RANGES:SIZE`: only these lines of every SIZE are sent.
    pub sample: Option<LogSample>,
}

/// A log target's `format`: the header before the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFormat {
    /// None given: RFC 3164 with no host name unless `log-send-hostname`.
    Default,
    /// `local`: RFC 3164 without the host name, whatever `log-send-hostname` says.
    Local,
    Rfc3164,
    Rfc5424,
    Short,
    Raw,
    Iso,
    Timed,
    Priority,
}

impl SyslogFormat {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "rfc3164" => SyslogFormat::Rfc3164,
            "rfc5424" => SyslogFormat::Rfc5424,
            "short" => SyslogFormat::Short,
            "raw" => SyslogFormat::Raw,
            "iso" => SyslogFormat::Iso,
            "timed" => SyslogFormat::Timed,
            "priority" => SyslogFormat::Priority,
            "local" => SyslogFormat::Local,
            _ => return None,
        })
    }
}

/// `sample 1-2,5:10`: inclusive ranges of line numbers (from 1) out of every `size` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSample {
    pub ranges: Vec<(u32, u32)>,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Unix(PathBuf),
    Udp(SocketAddr),
    Stdout,
    Stderr,
}

/// A `resolvers` section.
#[derive(Debug, Clone)]
pub struct Resolvers {
    pub name: String,
    pub place: Place,
    pub nameservers: Vec<Nameserver>,
    pub resolve_retries: u32,
    pub timeout_retry: Duration,
    pub timeout_resolve: Duration,
    /// `hold <status> <period>`: how long the last answer is kept after each kind of failure.
    pub hold: BTreeMap<String, Duration>,
    pub accepted_payload_size: u16,
    /// `parse-resolv-conf`: nameservers from /etc/resolv.conf.
    pub parse_resolv_conf: bool,
}

impl Resolvers {
    pub fn new(name: String, place: Place) -> Self {
        let hold = [
            ("nx", 30),
            ("other", 30),
            ("refused", 30),
            ("timeout", 30),
            ("valid", 10),
            ("obsolete", 0),
        ]
        .into_iter()
        .map(|(k, s)| (k.to_string(), Duration::from_secs(s)))
        .collect();
        Resolvers {
            name,
            place,
            nameservers: Vec::new(),
            resolve_retries: 3,
            timeout_retry: Duration::from_secs(1),
            timeout_resolve: Duration::from_secs(1),
            hold,
            accepted_payload_size: 512,
            parse_resolv_conf: false,
        }
    }

    pub fn hold(&self, status: &str) -> Duration {
        self.hold.get(status).copied().unwrap_or_default()
    }

    /// HAProxy 2.6's implicit section `default`, made when the configuration has none by
    /// that name (its `resolvers_create_default`): the nameservers of resolv.conf, read from
    /// `resolv_conf` (None: unreadable), with the default settings. None when it names no
    /// usable nameserver; its warnings are not shown, as HAProxy shows none. `resolve` looks
    /// up a nameserver written as a host name (see [`Resolvers::add_resolv_conf`]).
    pub fn implicit_default(
        resolv_conf: Option<&str>,
        resolve: &dyn Fn(&str) -> Option<IpAddr>,
    ) -> Option<Resolvers> {
        let place = Place {
            file: Arc::from("<internal>"),
            line: 0,
        };
        let mut section = Resolvers::new(DEFAULT_RESOLVERS.into(), place);
        let _unshown_warnings = section.add_resolv_conf(resolv_conf?, resolve);
        (!section.nameservers.is_empty()).then_some(section)
    }

    /// HAProxy's `parse_resolve_conf`: adds the nameservers of resolv.conf's `text`, each
    /// named after its address (port 53), in the file's order; returns the warnings for the
    /// lines left out (no address, a name already taken, no address found). As HAProxy's
    /// `str2ip2`, an address that is a valid host name is looked up with `resolve` (the
    /// system's resolver).
    pub fn add_resolv_conf(
        &mut self,
        text: &str,
        resolve: &dyn Fn(&str) -> Option<IpAddr>,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let at = Place {
                file: Arc::from(RESOLV_CONF),
                line: index + 1,
            };
            match resolv_conf_address(line) {
                ResolvConfLine::Other => {}
                ResolvConfLine::MissingAddress => warnings.push(format!(
                    "parsing [{at}] : nameserver line is missing address."
                )),
                ResolvConfLine::Address(address) => {
                    if let Some(taken) = self.nameservers.iter().find(|n| n.name == address) {
                        warnings.push(format!(
                            "Parsing [{at}] : generated name for {RESOLV_CONF} nameserver '{address}' conflicts with another nameserver (declared at {}), it appears to be a duplicate and will be excluded.",
                            taken.place
                        ));
                        continue;
                    }
                    let ip = address.parse::<IpAddr>().ok();
                    let looked_up = || is_host_name(address).then(|| resolve(address)).flatten();
                    let Some(ip) = ip.or_else(looked_up) else {
                        warnings.push(format!(
                            "parsing [{at}] : address '{address}' could not be recognized, nameserver will be excluded."
                        ));
                        continue;
                    };
                    self.nameservers.push(Nameserver {
                        name: address.into(),
                        addr: SocketAddr::new(ip, 53),
                        place: at,
                    });
                }
            }
        }
        warnings
    }
}

/// The name of HAProxy's implicit resolvers section.
pub const DEFAULT_RESOLVERS: &str = "default";

/// Where HAProxy reads the system's nameservers (`parse-resolv-conf`, the implicit
/// `default` section).
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A nameserver of a resolvers section.
#[derive(Debug, Clone)]
pub struct Nameserver {
    pub name: String,
    pub addr: SocketAddr,
    /// Where it was declared: its `nameserver` line, or its line of resolv.conf.
    pub place: Place,
}

/// Whether `text` is a host name HAProxy would look up (its `dns_hostname_validation`):
/// letters, digits, `-` and `.`, labels of 63 characters at most.
fn is_host_name(text: &str) -> bool {
    let label_ok = |l: &str| l.len() <= 63;
    !text.is_empty()
        && text.len() <= 255
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && text.split('.').all(label_ok)
}

/// What a line of resolv.conf says, as HAProxy reads it.
#[derive(Debug, PartialEq, Eq)]
enum ResolvConfLine<'a> {
    /// Not a `nameserver` line (as HAProxy: one starting with the word, unindented).
    Other,
    MissingAddress,
    Address(&'a str),
}

fn resolv_conf_address(line: &str) -> ResolvConfLine<'_> {
    const BLANKS: &[char] = &['\r', '\n', '\t', ' '];
    let Some(rest) = line.strip_prefix("nameserver") else {
        return ResolvConfLine::Other;
    };
    // `nameserverX ...` is another word.
    if !rest.is_empty() && !rest.starts_with(BLANKS) {
        return ResolvConfLine::Other;
    }
    rest.split(BLANKS)
        .find(|word| !word.is_empty())
        .map_or(ResolvConfLine::MissingAddress, ResolvConfLine::Address)
}

/// What a proxy section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl ProxyKind {
    pub fn is_frontend(self) -> bool {
        matches!(self, ProxyKind::Frontend | ProxyKind::Listen)
    }
    pub fn is_backend(self) -> bool {
        matches!(self, ProxyKind::Backend | ProxyKind::Listen)
    }
    pub fn keyword(self) -> &'static str {
        match self {
            ProxyKind::Defaults => "defaults",
            ProxyKind::Frontend => "frontend",
            ProxyKind::Backend => "backend",
            ProxyKind::Listen => "listen",
        }
    }

    /// What HAProxy's messages call such a section (`proxy_type_str`): a listen section is
    /// a "proxy".
    pub fn type_str(self) -> &'static str {
        match self {
            ProxyKind::Listen => "proxy",
            kind => kind.keyword(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Tcp,
    Http,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
        }
    }
}

/// Load-balancing algorithms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    /// `random[(draws)]`: the least loaded of `draws` servers picked at random by weight
    /// (HAProxy's default: 2, the "power of two choices").
    Random(u32),
    /// `uri [whole] [len N] [depth N] [path-only]`: a hash of the request's URI.
    Uri(UriHash),
    /// `url_param NAME [check_post]`: a hash of the value of a query-string parameter.
    UrlParam(String),
    /// `hdr(NAME) [use_domain_only]`: a hash of a request header's (first) value.
    Hdr {
        name: String,
        domain_only: bool,
    },
    /// `hash EXPR`: a hash of a sample expression's value (as binary); the expression as
    /// written.
    Hash(Box<super::acl::Fetch>, String),
    /// `rdp-cookie[(NAME)]`: a hash of the RDP cookie NAME (`mstshash` by default) of a TCP
    /// client's connection request.
    RdpCookie(String),
}

/// The part of the URI `balance uri` hashes (HAProxy's `lbprm.arg_opt1..3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UriHash {
    /// `whole`: the query string too (else the hash stops at `?`).
    pub whole: bool,
    /// `path-only`: the path of an absolute URI, without scheme and authority.
    pub path_only: bool,
    /// `len N`: the first N characters only (0: all).
    pub len: usize,
    /// `depth N`: up to the (N+1)th `/` (0: no limit).
    pub depth: usize,
}

/// `cookie NAME ...`: persistence by a cookie naming the server (HAProxy's `ck_opts`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CookiePersist {
    pub name: String,
    pub mode: CookieMode,
    /// `indirect`: with `insert`, the cookie is taken out of requests before the server.
    pub indirect: bool,
    /// `nocache`: a response carrying an inserted cookie gets `Cache-control: private`.
    pub nocache: bool,
    /// `postonly`: cookies are inserted in responses to POST requests only.
    pub postonly: bool,
    /// `preserve`: a cookie the server sets is left alone (nothing inserted over it).
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    /// `domain D` (each one): `; domain=D` attributes of inserted cookies.
    pub domains: Vec<String>,
    /// `attr V` (each one): more attributes of inserted cookies.
    pub attrs: Vec<String>,
    /// `maxidle T`: seconds a cookie may go unseen (its last-seen date); 0: not checked.
    pub maxidle: u32,
    /// `maxlife T`: seconds a cookie lives from its first date; 0: not checked.
    pub maxlife: u32,
    /// `dynamic`: servers without a `cookie` value get one from `dynamic-cookie-key`,
    /// their address and port.
    pub dynamic: bool,
}

/// How the persistence cookie is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieMode {
    /// No mode: the server sets the cookie itself (to its `cookie` value).
    #[default]
    Passive,
    /// `insert`: hapx sets the cookie in responses.
    Insert,
    /// `rewrite`: the value of the cookie the server sets becomes the server's.
    Rewrite,
    /// `prefix`: the server's value is prefixed with `VALUE~` (stripped from requests).
    Prefix,
}

/// `hash-type`: how a hash picks a server, and which function makes the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashType {
    /// `consistent`: a ring of points per server (HAProxy's `lb_chash`); else
    /// `map-based`: a weighted table of the usable servers (`lb_map`).
    pub consistent: bool,
    pub function: HashFunction,
    /// `avalanche`: the hash goes through HAProxy's `full_hash` before use.
    pub avalanche: bool,
}

/// `hash-type`'s function (HAProxy's `hash.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashFunction {
    #[default]
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
}

/// `http-reuse`: which idle server connections (HAProxy's idle and safe lists: a connection
/// is safe once it served a second request) a request may take, beside those its own client
/// connection owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpReuse {
    /// None: every connection belongs to its client connection.
    Never,
    /// A client connection's first request opens its own; later ones take any.
    Safe,
    /// A first request may take a safe connection.
    Aggressive,
    /// A first request may take any.
    Always,
}

impl Balance {
    pub fn as_str(&self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::StaticRr => "static-rr",
            Balance::LeastConn => "leastconn",
            Balance::First => "first",
            Balance::Source => "source",
            Balance::Random(_) => "random",
            Balance::Uri(_) => "uri",
            Balance::UrlParam(_) => "url_param",
            Balance::Hdr { .. } => "hdr",
            Balance::Hash(..) => "hash",
            Balance::RdpCookie(_) => "rdp-cookie",
        }
    }

    /// Whether the algorithm hashes something of the connection or request (HAProxy's
    /// `BE_LB_KIND_HI`): a client keeps its server whatever the load.
    pub fn hashes(&self) -> bool {
        matches!(
            self,
            Balance::Source
                | Balance::Uri(_)
                | Balance::UrlParam(_)
                | Balance::Hdr { .. }
                | Balance::Hash(..)
                | Balance::RdpCookie(_)
        )
    }

    /// Whether it needs an HTTP request (HAProxy's `BE_LB_NEED_HTTP`).
    pub fn needs_http(&self) -> bool {
        matches!(
            self,
            Balance::Uri(_) | Balance::UrlParam(_) | Balance::Hdr { .. }
        )
    }
}

/// The timeouts of a proxy; `None` = infinite (HAProxy warns about missing ones).
#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub connect: Option<Duration>,
    pub check: Option<Duration>,
    pub queue: Option<Duration>,
    pub http_request: Option<Duration>,
    pub http_keep_alive: Option<Duration>,
    pub tunnel: Option<Duration>,
    /// Inactivity toward the client once the connection is closed in one direction.
    pub client_fin: Option<Duration>,
    /// Inactivity toward the server once the connection is closed in one direction.
    pub server_fin: Option<Duration>,
    /// How long `http-request tarpit` holds a request before answering.
    pub tarpit: Option<Duration>,
}

/// One `tcp-check` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCheckRule {
    Connect(CheckConnect),
    /// `send STRING`, `send-binary HEX`.
    Send(Vec<u8>),
    /// `send-lf FMT`; `send-binary-lf FMT` (`binary`): the rendered text is hexadecimal.
    SendFormat {
        format: LogFormat,
        binary: bool,
    },
    Expect(Box<TcpExpect>),
    /// `set-var(NAME[,COND...]) EXPR`, `set-var-fmt(NAME[,COND...]) FMT`, `unset-var(NAME)`.
    Var(Box<super::rules::VarRule>),
    /// `comment TEXT`: nothing to do, but a step HAProxy counts in its messages; its text is
    /// given at load to the rules after it (see `check::carry_comments`).
    Comment(String),
}

/// What a check's `set-var`, `set-var-fmt` or `unset-var` rule does to the variable `name`
/// (`SCOPE.NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarAction {
    Set {
        name: String,
        expr: super::acl::Fetch,
    },
    SetFormat {
        name: String,
        format: LogFormat,
    },
    Unset {
        name: String,
    },
}

/// A variable rule of an `http-check` group and when it runs: before the request is built
/// (`after_expects` none), or once that many of the group's expects passed.
#[derive(Debug, Clone)]
pub struct HttpVarRule {
    pub after_expects: Option<usize>,
    pub rule: super::rules::VarRule,
}

/// `tcp-check expect [!] string|binary|string-lf|binary-lf PATTERN [options]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpExpect {
    pub pattern: TcpPattern,
    pub negate: bool,
    pub report: ExpectReport,
}

/// What a `tcp-check expect` looks for in what the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpPattern {
    /// `string TEXT`, or `binary HEX` (`binary`: written in hexadecimal).
    Bytes { bytes: Vec<u8>, binary: bool },
    /// `string-lf FMT`, or `binary-lf FMT` (`binary`: rendering hexadecimal text), rendered
    /// per check.
    Format { format: LogFormat, binary: bool },
    /// `rstring REGEX`, or `rbinary REGEX` (`binary`: matched against the received bytes
    /// written as upper-case hexadecimal, as HAProxy's `dump_binary`).
    Regex { regex: CheckRegex, binary: bool },
}

/// A check rule's regex: matching only, case-sensitive (HAProxy's `regex_comp(p, 1, 0)`).
pub use super::pcre::Regex as CheckRegex;

/// The options of an `http-check expect` or `tcp-check expect` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectReport {
    /// `ok-status`, `error-status`, `tout-status`: the check statuses this rule reports
    /// (none: HAProxy's defaults).
    pub ok_status: Option<&'static str>,
    pub error_status: Option<&'static str>,
    pub tout_status: Option<&'static str>,
    /// `on-success`, `on-error`: formats rendered as the check's information instead of
    /// HAProxy's.
    pub on_success: Option<LogFormat>,
    pub on_error: Option<LogFormat>,
    /// `comment`: appended to the information of a failure (` comment: TEXT`).
    pub comment: Option<String>,
    /// `min-recv N`: the bytes (of the body, for HTTP) to wait for before matching; with
    /// it, a mismatch is final without waiting for more.
    pub min_recv: Option<usize>,
    /// `status-code EXPR`: the check's code when this rule reports, the expression's value
    /// as an integer (HAProxy's `status_expr`).
    pub status_code: Option<Box<super::acl::Fetch>>,
}

/// `tcp-check connect` / `http-check connect [port N] [addr IP] [ssl] [sni S] [alpn A]
/// [linger]`: how a check opens its connection (unset: as the server says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConnect {
    /// `default`: the server's check settings (`check-ssl`, `check-sni` ...) apply.
    pub default: bool,
    pub port: Option<u16>,
    pub addr: Option<std::net::IpAddr>,
    /// `ssl`: TLS on this connection, whatever the server's `check-ssl` says.
    pub ssl: bool,
    pub sni: Option<String>,
    pub alpn: Option<Vec<String>>,
    /// `linger`: close cleanly (FIN) instead of resetting the connection.
    pub linger: bool,
    /// `send-proxy`: the connection starts with a PROXY header (v2 if the server has
    /// `send-proxy-v2`).
    pub send_proxy: bool,
    /// `comment TEXT`, or a `comment` rule's before it: quoted in its failure's information.
    pub comment: Option<String>,
}

/// `option httpchk [METHOD] [URI] [VERSION]` with its `http-check` rules: one or more
/// groups run in order, each a connection, one request and its expectations; the check
/// passes when every group passes (HAProxy 2.2+'s multi-step rulesets).
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Never empty: the first group takes `option httpchk`'s request (its implicit `send`).
    pub groups: Vec<HttpCheckGroup>,
    /// The rules' order so far, for HAProxy's messages while parsing.
    pub order: super::check_order::CheckOrder,
}

impl HttpCheck {
    /// HAProxy's request without arguments: `OPTIONS / HTTP/1.0`, in one group.
    pub fn default_request() -> Self {
        HttpCheck {
            groups: vec![HttpCheckGroup::default()],
            order: Default::default(),
        }
    }

    /// The first group, whose request `option httpchk` sets.
    pub fn first(&mut self) -> &mut HttpCheckGroup {
        if self.groups.is_empty() {
            self.groups.push(HttpCheckGroup::default());
        }
        &mut self.groups[0]
    }

    /// The group the next `send` or `expect` belongs to.
    pub fn current(&mut self) -> &mut HttpCheckGroup {
        if self.groups.is_empty() {
            self.groups.push(HttpCheckGroup::default());
        }
        let last = self.groups.len() - 1;
        &mut self.groups[last]
    }
}

/// One `http-check connect` (implicit for the first group), its `send` and its `expect`s.
#[derive(Debug, Clone)]
pub struct HttpCheckGroup {
    /// `http-check connect ...`; none: as the server says (only the first group).
    pub connect: Option<CheckConnect>,
    pub method: String,
    pub uri: String,
    pub version: String,
    /// `http-check send uri-lf FMT`: the URI rendered per check, instead of `uri`.
    pub uri_format: Option<LogFormat>,
    /// `http-check send hdr NAME FMT`, in order (values are formats, as in HAProxy).
    pub headers: Vec<(String, LogFormat)>,
    /// `http-check send body STRING` (a format writing it) or `body-lf FMT`.
    pub body: Option<LogFormat>,
    /// `http-check expect ...`; none: any 2xx or 3xx status passes.
    pub expects: Vec<HttpExpect>,
    /// `http-check set-var`, `set-var-fmt`, `unset-var`, in order.
    pub vars: Vec<HttpVarRule>,
}

impl Default for HttpCheckGroup {
    /// An explicit `send` without arguments: `OPTIONS / HTTP/1.0`, as HAProxy.
    fn default() -> Self {
        HttpCheckGroup {
            connect: None,
            method: "OPTIONS".into(),
            uri: "/".into(),
            version: "HTTP/1.0".into(),
            uri_format: None,
            headers: Vec::new(),
            body: None,
            expects: Vec::new(),
            vars: Vec::new(),
        }
    }
}

/// One `http-check expect [!] KIND PATTERN [options]`.
#[derive(Debug, Clone)]
pub struct HttpExpect {
    pub negate: bool,
    pub kind: HttpExpectKind,
    /// Its options (default statuses: L7OK, L7STS/L7RSP by the match, L7TOUT).
    pub report: ExpectReport,
}

impl HttpExpect {
    /// A rule without options.
    pub fn new(negate: bool, kind: HttpExpectKind) -> Self {
        HttpExpect {
            negate,
            kind,
            report: ExpectReport::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum HttpExpectKind {
    /// `status 200,300-399`: inclusive ranges of status codes.
    Status(Vec<(u16, u16)>),
    RStatus(CheckRegex),
    /// `string S`: the body contains S.
    String(String),
    /// `string-lf FMT`: the body contains FMT rendered for the check (when it judges).
    StringFormat(LogFormat),
    RString(CheckRegex),
    /// `hdr name N [value V]`: a header named N (one of whose comma-separated values is V,
    /// when given); `fhdr` (`full`): its whole value is V.
    Header {
        name: TextMatch,
        value: Option<TextMatch>,
        full: bool,
    },
}

/// How a header expectation's `-m` compares (a header name's pattern is lower-cased, its
/// regex case-insensitive: names compare without case).
#[derive(Debug, Clone)]
pub enum TextMatch {
    Str(String),
    Beg(String),
    End(String),
    Sub(String),
    Reg(CheckRegex),
}

impl TextMatch {
    /// Whether `text` (a header's lower-cased name, or a value) matches.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            TextMatch::Str(p) => text == p,
            TextMatch::Beg(p) => text.starts_with(p.as_str()),
            TextMatch::End(p) => text.ends_with(p.as_str()),
            TextMatch::Sub(p) => text.contains(p.as_str()),
            TextMatch::Reg(re) => re.is_match_text(text),
        }
    }
}

/// The `option`s the runtime uses, each with the place it was set (for later warnings).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `option external-check`: where it was set, while it is the proxy's check type (a
    /// later check option replaces it). hapx runs no external check (see `config::check`).
    pub external_check: Option<Place>,
    pub httplog: Option<Place>,
    pub tcplog: Option<Place>,
    pub dontlognull: bool,
    /// `option http-ignore-probes`: a connection that sends no request before
    /// `timeout http-request` is closed without HAProxy's 408 (and not logged).
    pub http_ignore_probes: bool,
    pub forwardfor: Option<Forwardfor>,
    pub redispatch: bool,
    /// `option redispatch <interval>` (-1 without one): which failed attempts redispatch,
    /// see `runtime::session`.
    pub redispatch_after: i32,
    pub tcp_check: bool,
    pub httpchk: Option<HttpCheck>,
    /// `option ssl-hello-chk`: an SSLv3 ClientHello, a TLS record back.
    pub ssl_hello_chk: bool,
    /// `option redis-check`, `smtpchk`, `pgsql-check`: HAProxy's fixed tcp-check rulesets.
    pub protocol_check: Option<super::check::protocol::ProtocolCheck>,
    /// `http-check` rules came without `option httpchk`: HAProxy ignores them (a warning).
    pub http_check_without_httpchk: bool,
    /// The proxy's own `tcp-check` rules came without `option tcp-check` (nor one after
    /// them): HAProxy ignores them, with a warning.
    pub tcp_check_without_option: bool,
    /// `http-check send-state`: checks tell the server its state (`X-Haproxy-Server-State`).
    pub http_check_send_state: bool,
    /// `http-check disable-on-404`: a 404 to an UP server's check passes conditionally
    /// (L7OKC): the server stops taking new balanced connections (NOLB).
    pub http_check_disable_on_404: bool,
    pub allbackups: bool,
    /// `option log-health-checks`: every check result that changes the server's health or
    /// the check's status is logged.
    pub log_health_checks: bool,
    /// `option persist`: a persistence cookie sends its client to its server even when the
    /// server is down (until a retry redispatches it).
    pub persist: bool,
    /// `option prefer-last-server`: a request goes to the server of an idle connection its
    /// client connection owns (`http-reuse never`, `send-proxy`) while that server is usable,
    /// instead of being balanced (hash algorithms balance anyway, as in HAProxy).
    pub prefer_last_server: bool,
    /// `option abortonclose`: a connection waiting for a server (in a queue, or while
    /// connecting) is dropped when its client closes its side, even with a request or
    /// data to send (see `runtime::session::Watch`).
    pub abortonclose: bool,
    pub http_server_close: bool,
    pub httpclose: bool,
    /// `option h1-case-adjust-bogus-client`: response header names to clients spelled as
    /// the global `h1-case-adjust` map says.
    pub h1_case_adjust_bogus_client: bool,
    /// `option h1-case-adjust-bogus-server`: the same for request header names to servers.
    pub h1_case_adjust_bogus_server: bool,
    /// `option splice-auto`, `splice-request`, `splice-response`.
    pub splice: SpliceOptions,
    /// `[no] option tcp-smart-accept`; unset: automatic, on in HTTP mode (as HAProxy).
    pub tcp_smart_accept: Option<bool>,
    /// `option tcp-smart-connect`.
    pub tcp_smart_connect: bool,
    /// `option clitcpka` (or `tcpka`): TCP keep-alive probes on client connections.
    pub clitcpka: bool,
    /// `option srvtcpka` (or `tcpka`): TCP keep-alive probes on server connections.
    pub srvtcpka: bool,
    /// `option nolinger`: connections are closed with SO_LINGER 0, so the peer gets a reset
    /// instead of a clean close (a frontend's client side, a backend's server side).
    pub nolinger: bool,
}

/// `clitcpka-*`/`srvtcpka-*`: the keep-alive probe settings (unset: the system's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keepalive {
    /// Probes lost before the connection is dropped (TCP_KEEPCNT).
    pub count: Option<u32>,
    /// Idle time before the first probe (TCP_KEEPIDLE).
    pub idle: Option<Duration>,
    /// Time between probes (TCP_KEEPINTVL).
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwardfor {
    pub header: String,
    /// `except NET`: clients from this network get no header.
    pub except: Option<Network>,
    /// `if-none`: only when the request has no such header yet.
    pub if_none: bool,
}

/// `stats ...` in a proxy.
#[derive(Debug, Clone, Default)]
pub struct StatsPage {
    pub enabled: bool,
    pub uri: Option<String>,
    pub realm: Option<String>,
    pub auth: Vec<(String, String)>,
    pub refresh: Option<Duration>,
    pub hide_version: bool,
    /// `stats admin if|unless COND` lines, in order: the page takes actions (a POST) from a
    /// request the first one holds for.
    pub admin: Vec<super::acl::Condition>,
    /// `stats show-node [NAME]`: the page's title names the node (empty: `node`, else the
    /// host name).
    pub show_node: Option<String>,
    /// `stats show-desc [TEXT]`: the page's title shows the description (empty: the
    /// global `description`).
    pub show_desc: Option<String>,
    /// `stats show-legends`: the page's tooltips on proxies, servers and backends.
    pub show_legends: bool,
}

impl StatsPage {
    pub fn uri(&self) -> &str {
        self.uri.as_deref().unwrap_or("/haproxy?stats")
    }
}

/// One address of a `bind` line.
#[derive(Debug, Clone)]
pub struct Bind {
    pub addr: SocketAddr,
    /// The address as written (`*:6443`).
    pub spec: String,
    pub v6only: bool,
    pub backlog: Option<u32>,
    pub accept_proxy: bool,
    /// `defer-accept`: accept a connection only once data arrives (TCP_DEFER_ACCEPT).
    pub defer_accept: bool,
    /// `ssl`: the TLS server side of the listener, built when the line was read.
    pub tls: Option<Arc<super::bind_tls::TlsServer>>,
    /// `proto`: the protocol its connections speak, whatever they send (None: HTTP/1 or
    /// HTTP/2 as each connection begins, in `mode http`).
    pub proto: Option<MuxProto>,
    /// `maxconn`: the connections this listener holds at once (None: only the frontend's
    /// and the process's bounds); at the bound it stops accepting, as HAProxy's
    /// `listener_full`, and new connections wait in the kernel's queue.
    pub maxconn: Option<usize>,
    /// `interface`: the network interface its sockets are bound to (SO_BINDTODEVICE), so
    /// that only connections arriving through it are accepted.
    pub interface: Option<String>,
    pub place: Place,
}

/// A proxy's `email-alert` settings, as far as HAProxy's checks of them need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailAlert {
    /// Some `email-alert` line was read (HAProxy's `email_alert.set`).
    pub set: bool,
    pub from: Option<String>,
    pub to: Option<String>,
    pub mailers: Option<String>,
    /// The first line, where hapx's warning points.
    pub place: Option<Place>,
}

/// HAProxy's multiplexer protocols a `bind ... proto` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxProto {
    H1,
    H2,
    Fcgi,
    /// Raw TCP (`mode tcp`).
    None,
}

impl MuxProto {
    pub fn parse(name: &str) -> Option<MuxProto> {
        Some(match name {
            "h1" => MuxProto::H1,
            "h2" => MuxProto::H2,
            "fcgi" => MuxProto::Fcgi,
            "none" => MuxProto::None,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            MuxProto::H1 => "h1",
            MuxProto::H2 => "h2",
            MuxProto::Fcgi => "fcgi",
            MuxProto::None => "none",
        }
    }

    /// Whether a frontend of `mode` serves its connections with it (`fcgi` is a server's).
    pub fn usable_in(self, mode: Mode) -> bool {
        match self {
            MuxProto::H1 | MuxProto::H2 => mode == Mode::Http,
            MuxProto::None => mode == Mode::Tcp,
            MuxProto::Fcgi => false,
        }
    }
}

/// Where a server's first address comes from: `init-addr last,libc,none,<ip>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitAddr {
    Last,
    Libc,
    None,
    Ip(std::net::IpAddr),
}

/// Settings a `server` line takes and `default-server` presets.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub check: bool,
    pub inter: Duration,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    pub weight: u32,
    pub backup: bool,
    /// `non-stick` (`stick` undoes it): `stick` rules store no entry naming the server.
    pub non_stick: bool,
    /// `cookie VALUE`: the value of the persistence cookie naming this server.
    pub cookie: Option<String>,
    pub maxconn: Option<usize>,
    /// `maxqueue`: most connections waiting in the server's own queue (None: no limit).
    pub maxqueue: Option<usize>,
    pub resolvers: Option<String>,
    pub resolve_prefer_v6: bool,
    /// `resolve-opts allow-dup-ip`: a resolved address may already be another server's
    /// (HAProxy's default, `prevent-dup-ip`, skips those).
    pub resolve_allow_dup_ip: bool,
    /// `resolve-net`: addresses inside these networks are preferred in answers.
    pub resolve_nets: Vec<Network>,
    /// `init-addr`, empty when not set: HAProxy then tries `last,libc` (and `none` for a
    /// server with `resolvers`).
    pub init_addr: Vec<InitAddr>,
    pub disabled: bool,
    /// `id N`: the server's id in its backend, instead of the next free one.
    pub forced_id: Option<usize>,
    pub send_proxy: Option<u8>,
    /// `check-send-proxy`: its checks send a PROXY header even where `send-proxy` would not
    /// reach them (a check `port` or `addr`), v2 if the server has `send-proxy-v2`.
    pub check_send_proxy: bool,
    /// `source ADDR[:PORT[-PORT]]`: the local address of the server's connections and
    /// checks, before the backend's.
    pub source: Option<ConnSource>,
    /// `pool-max-conn`: idle connections kept for reuse (None: no limit; 0: none).
    pub pool_max_conn: Option<usize>,
    /// `proto h2`: its connections speak HTTP/2 from their first byte (prior knowledge);
    /// false: HTTP/1.1, or HTTP/2 when TLS's ALPN picks `h2`.
    pub proto_h2: bool,
    /// `check-proto h2|h1`: whether its HTTP checks speak HTTP/2 (None: as its traffic).
    pub check_proto_h2: Option<bool>,
    /// `pool-purge-delay`: how often idle connections beyond the recent need are closed
    /// (HAProxy's default 5 s; 0: none are kept).
    pub pool_purge_delay: Duration,
    pub check_port: Option<u16>,
    pub check_addr: Option<std::net::IpAddr>,
    /// `ssl`, `verify`, `ca-file` ...: TLS towards the server.
    pub tls: ServerTls,
    /// `on-marked-down shutdown-sessions`: the server's sessions are killed when it goes
    /// DOWN.
    pub shutdown_on_down: bool,
    /// `on-marked-up shutdown-backup-sessions`: the backup servers' sessions are killed when
    /// this (active) server comes UP.
    pub shutdown_backups_on_up: bool,
    /// `slowstart`: how long the server's weight and `maxconn` ramp up after it comes back
    /// (HAProxy counts it in whole seconds, rounded up; zero: none).
    pub slowstart_secs: u32,
    /// `track [PROXY/]SERVER`: the server whose checks decide this one's state (the proxy
    /// None: the server's own).
    pub track: Option<(Option<String>, String)>,
    /// `observe layer4|layer7`: connection errors count against the server (layer 7 also
    /// HTTP responses: see `runtime::observe`).
    pub observe: Option<Observe>,
    /// `error-limit`: consecutive errors that trigger `on-error` (default 10).
    pub error_limit: u32,
    /// `on-error`: what those errors do (default `fail-check`).
    pub on_error: OnError,
    /// `agent-check` and its settings (see `runtime::agent`).
    pub agent: AgentOptions,
}

/// A proxy's `option splice-*`: which directions of its streams may splice(2). HAProxy
/// looks at the frontend's and the backend's (either one's option counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpliceOptions {
    /// `splice-auto`: both directions, for bulk transfers.
    pub auto: bool,
    /// `splice-request`: client to server.
    pub request: bool,
    /// `splice-response`: server to client.
    pub response: bool,
}

impl SpliceOptions {
    /// Whether any `option splice-*` is set (HAProxy's `PR_O2_SPLIC_ANY`).
    pub fn any(self) -> bool {
        self.auto || self.request || self.response
    }
}

/// `agent-check`, `agent-port`, `agent-addr`, `agent-inter`, `agent-send`: an agent the
/// server runs tells its state, weight and admin state in one line (see `runtime::agent`).
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// `agent-check` (`no-agent-check` clears it).
    pub enabled: bool,
    /// `agent-port` (else the server line's `port`).
    pub port: Option<u16>,
    /// `agent-addr` (else the server's address).
    pub addr: Option<std::net::IpAddr>,
    /// `agent-inter` (else `inter`).
    pub inter: Option<Duration>,
    /// `agent-send`: what is sent once connected.
    pub send: Option<String>,
}

/// `observe`: which errors of live traffic count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    Layer4,
    /// A connection that succeeds does not clear the count: only a good response would.
    Layer7,
}

/// `on-error`: what `error-limit` consecutive errors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Only the next check comes after `fastinter`.
    FastInter,
    /// A failed check (and `fastinter`).
    FailCheck,
    /// A failed check after which one more failure marks the server DOWN.
    SuddenDeath,
    /// The server is marked DOWN at once.
    MarkDown,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            check: false,
            inter: Duration::from_secs(2),
            fastinter: None,
            downinter: None,
            rise: 2,
            fall: 3,
            weight: 1,
            backup: false,
            non_stick: false,
            cookie: None,
            maxconn: None,
            maxqueue: None,
            resolvers: None,
            resolve_prefer_v6: true,
            resolve_allow_dup_ip: false,
            resolve_nets: Vec::new(),
            init_addr: Vec::new(),
            disabled: false,
            forced_id: None,
            send_proxy: None,
            check_send_proxy: false,
            source: None,
            pool_max_conn: None,
            proto_h2: false,
            check_proto_h2: None,
            pool_purge_delay: Duration::from_secs(5),
            check_port: None,
            check_addr: None,
            tls: ServerTls::default(),
            shutdown_on_down: false,
            shutdown_backups_on_up: false,
            slowstart_secs: 0,
            track: None,
            observe: None,
            error_limit: 10,
            on_error: OnError::FailCheck,
            agent: AgentOptions::default(),
        }
    }
}

/// `verify none|required` on a server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    None,
    Required,
}

/// The TLS protocol versions rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `ssl-min-ver`, `ssl-max-ver`, `no-tlsv1x` and `force-tlsv1x` on a server or bind line
/// (or in the global `ssl-default-*-options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsVersions {
    pub min: Option<TlsVersion>,
    pub max: Option<TlsVersion>,
    /// `no-tlsv12` / `no-tlsv13`.
    pub disabled: Vec<TlsVersion>,
}

impl TlsVersions {
    /// These, with `defaults` where they set nothing (a bound, the versions disabled).
    pub fn with_defaults(&self, defaults: &TlsVersions) -> TlsVersions {
        let mut disabled = self.disabled.clone();
        disabled.extend_from_slice(&defaults.disabled);
        TlsVersions {
            min: self.min.or(defaults.min),
            max: self.max.or(defaults.max),
            disabled,
        }
    }

    /// The versions left for rustls; None when none is.
    pub fn rustls(&self) -> Option<Vec<&'static rustls::SupportedProtocolVersion>> {
        let all = [
            (TlsVersion::Tls12, &rustls::version::TLS12),
            (TlsVersion::Tls13, &rustls::version::TLS13),
        ];
        let left: Vec<_> = all
            .into_iter()
            .filter(|(v, _)| self.min.is_none_or(|min| *v >= min))
            .filter(|(v, _)| self.max.is_none_or(|max| *v <= max))
            .filter(|(v, _)| !self.disabled.contains(v))
            .map(|(_, p)| p)
            .collect();
        (!left.is_empty()).then_some(left)
    }
}

/// A server's TLS settings as written; [`super::tls`] turns them into client configurations.
#[derive(Debug, Clone, Default)]
pub struct ServerTls {
    /// `ssl`: traffic to the server is TLS.
    pub ssl: bool,
    /// `check-ssl` (true) / `no-check-ssl` (false); unset: checks follow `ssl`.
    pub check_ssl: Option<bool>,
    /// Unset: the global `ssl-server-verify` (required by default).
    pub verify: Option<Verify>,
    pub verifyhost: Option<String>,
    /// `ca-file` as written (under `ca-base`; `@system-ca`: the system's store).
    pub ca_file: Option<String>,
    /// `crl-file`, under `ca-base`.
    pub crl_file: Option<String>,
    /// `crt`: client certificate and key (PEM), under `crt-base`.
    pub crt: Option<String>,
    /// `sni`: a constant server name (from `str(NAME)` or a plain name).
    pub sni: Option<String>,
    pub check_sni: Option<String>,
    pub alpn: Option<Vec<String>>,
    pub check_alpn: Option<Vec<String>>,
    pub versions: TlsVersions,
    /// `no-ssl-reuse`: no TLS session resumption.
    pub no_reuse: bool,
    /// Built from the above by the configuration checks when traffic or checks use TLS.
    pub client: Option<Arc<super::tls::TlsClient>>,
}

impl ServerTls {
    /// Whether checks use TLS: `check-ssl`, or `ssl` without `no-check-ssl`.
    pub fn check_uses_ssl(&self) -> bool {
        self.check_ssl.unwrap_or(self.ssl)
    }
}

/// An IP network, `ADDR/PREFIX` (`resolve-net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network (an IPv4 network never holds an IPv6 address).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let (net, ip, bits) = match (self.addr, ip) {
            (V4(n), V4(i)) => (u128::from(n.to_bits()), u128::from(i.to_bits()), 32),
            (V6(n), V6(i)) => (n.to_bits(), i.to_bits(), 128),
            _ => return false,
        };
        let host_bits = bits - u32::from(self.prefix.min(bits as u8));
        net.checked_shr(host_bits).unwrap_or(0) == ip.checked_shr(host_bits).unwrap_or(0)
    }
}

/// A `server NAME ADDR[:PORT] [options]` line.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    /// Host as written: an IP address or a name to resolve.
    pub host: String,
    /// `None` = same port as the client connected to.
    pub port: Option<u16>,
    pub opts: ServerOptions,
    pub place: Place,
    /// Id in its backend (`sid`): `id N`, else the next free one, as HAProxy numbers them.
    pub id: usize,
    /// The address written (an IP address); a name's is found at start-up by its
    /// `init-addr` methods (`runtime::server_state`); `None` = none yet.
    pub addr: Option<std::net::IpAddr>,
}

/// Where connections to a server are bound before they connect (`source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSource {
    /// Port 0: the kernel's choice.
    pub addr: SocketAddr,
    /// A server's `ADDR:LOW-HIGH` (LOW != HIGH): each connection on a port of that range.
    pub ports: Option<PortRange>,
    /// `usesrc ...`: transparent proxying, the address the server sees instead (not for
    /// checks, as HAProxy's checks bind to `addr` only).
    pub usesrc: Option<UseSrc>,
    /// `interface NAME`: the connections (and checks) leave through that device only
    /// (SO_BINDTODEVICE).
    pub interface: Option<String>,
}

/// `usesrc`: where a server connection is bound instead of its `source` address, with
/// IP_TRANSPARENT (HAProxy's `CO_SRC_TPROXY_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseSrc {
    /// `usesrc ADDR[:PORT]`: a fixed address (port 0: the kernel's choice).
    Addr(SocketAddr),
    /// `usesrc client`: the client's address and port.
    Client,
    /// `usesrc clientip`: the client's address, any port.
    ClientIp,
    /// `usesrc hdr_ip(NAME[,OCC])`: the IPv4 address in occurrence `occurrence` of the
    /// request's header `name` (negative: from the last, -1 being the last). Occurrence 0
    /// never binds: HAProxy then fails the connection (`IC`), as it does out of HTTP mode
    /// (where it sets it to 0) and in a section that took it from its `defaults` (where
    /// neither the name nor the occurrence are copied).
    Header { name: String, occurrence: i32 },
}

/// A server's source port range. Each server has its own copy (cloning gives a fresh
/// one, as HAProxy's `srv_conn_src_cpy` does): ports are handed out in turn from the one
/// after the last taken. The kernel keeps a port from going to two live connections to the
/// same server (with SO_REUSEADDR, connect() refuses a 4-tuple in use); HAProxy's ring of
/// free ports does it by its own accounting, and gives the least recently released port.
#[derive(Debug)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
    /// The next port to try, as an offset from `low`.
    next: std::sync::atomic::AtomicU32,
}

impl PortRange {
    pub fn new(low: u16, high: u16) -> Self {
        PortRange {
            low,
            high,
            next: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The port to try next; port 0 (in a range from 0) is never handed out, as HAProxy's
    /// ring gives it as "no port".
    pub fn next_port(&self) -> u16 {
        use std::sync::atomic::Ordering::Relaxed;
        let size = u32::from(self.high - self.low) + 1;
        loop {
            let offset = self.next.fetch_add(1, Relaxed) % size;
            // `offset` < size <= 65536 - low: the sum fits.
            let port = self.low + offset as u16;
            if port != 0 {
                return port;
            }
        }
    }
}

impl Clone for PortRange {
    fn clone(&self) -> Self {
        PortRange::new(self.low, self.high)
    }
}

impl PartialEq for PortRange {
    fn eq(&self, other: &Self) -> bool {
        (self.low, self.high) == (other.low, other.high)
    }
}

impl Eq for PortRange {}

/// HAProxy's `MAX_SRV_LIST`: the default of `max-session-srv-conns`.
pub const MAX_SESSION_SRV_CONNS: usize = 5;

/// A frontend, backend, listen or defaults section.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub name: String,
    pub kind: ProxyKind,
    pub place: Place,
    /// `description TEXT...`: the stats page shows it by the proxy's name.
    pub description: Option<String>,
    /// `id N`: the proxy's id, instead of the next free one.
    pub forced_id: Option<usize>,
    /// Id (`iid`): `id N`, else the next free one, as HAProxy numbers them (set by checks).
    pub id: usize,
    pub mode: Mode,
    pub binds: Vec<Bind>,
    /// `external-check command CMD` (`path` is read and not kept: hapx runs no command).
    pub external_check_command: Option<String>,
    /// `email-alert ...`: what of it was set (hapx sends no mail, see `config::check`).
    pub email_alert: EmailAlert,
    pub default_backend: Option<(String, Place)>,
    pub balance: Balance,
    /// `hash-type`: how the hashing algorithms map a hash to a server.
    pub hash_type: HashType,
    /// `hash-balance-factor`: a consistent-hash server takes at most this percentage of the
    /// average load (0: unbounded).
    pub hash_balance_factor: u32,
    /// `cookie`: persistence by cookie (HTTP).
    pub cookie: Option<CookiePersist>,
    /// `persist rdp-cookie[(NAME)]`: the RDP cookie (`msts` by default) whose routing token
    /// names the server of a TCP connection.
    pub persist_rdp_cookie: Option<String>,
    /// `source ADDR[:PORT]`: the local address of connections to servers (and their checks),
    /// given to the servers that have no `source` of their own once the section is read.
    pub source: Option<ConnSource>,
    /// `dynamic-cookie-key KEY`: the secret of the `dynamic` cookies' values.
    pub dynamic_cookie_key: Option<String>,
    /// `http-reuse`: which idle server connections a request may take.
    pub http_reuse: HttpReuse,
    /// `load-server-state-from-file`: where the servers' state saved before a reload comes
    /// from (see `runtime::server_state`).
    pub load_server_state: ServerStateSource,
    /// `server-state-file-name`: the backend's own state file (`local`); unset: its name.
    pub server_state_file_name: Option<String>,
    pub servers: Vec<Server>,
    pub default_server: ServerOptions,
    pub timeouts: Timeouts,
    pub options: Options,
    pub tcp_checks: Vec<TcpCheckRule>,
    pub retries: u32,
    pub maxconn: Option<usize>,
    /// `max-session-srv-conns N` (a frontend's): the most idle server connections one of
    /// its client connections keeps for itself (HAProxy's `max_out_conns`; `MAX_SRV_LIST`, 5,
    /// by default; 0 keeps none).
    pub max_session_srv_conns: usize,
    /// `rate-limit sessions N` (a frontend's): new sessions accepted per second at most
    /// (HAProxy's `fe_sps_lim`; 0, the default, is no limit).
    pub rate_limit_sessions: u32,
    /// `fullconn N`: the backend's load at which dynamic limits reach their maximum, and its
    /// `slim` in the stats (unset: a tenth of what its frontends may send, see
    /// `limits::fullconn`).
    pub fullconn: Option<usize>,
    /// `backlog N`: the listen queue of this frontend's binds (unset: its maxconn).
    pub backlog: Option<u32>,
    pub clitcpka: Keepalive,
    pub srvtcpka: Keepalive,
    /// Status code -> the reply sent instead of HAProxy's, prepared when loaded ([`super::errors::Page`]).
    pub errorfiles: BTreeMap<u16, super::errors::Page>,
    /// `errorfiles NAME [CODE...]`, resolved into `errorfiles` by the checks.
    pub errorfiles_refs: Vec<super::errors::ErrorfilesRef>,
    /// `http-error` replies rendered per request (`lf-string`, `lf-file`, `hdr` with `%`
    /// values): they stand for `errorfiles`' page of their status.
    pub error_replies: BTreeMap<u16, super::rules::Reply>,
    pub stats: StatsPage,
    pub logs: Vec<LogTarget>,
    /// `log-format`, `capture`, `unique-id-*`, `log-tag` ([`super::logging`]).
    pub log: super::logging::ProxyLog,
    pub disabled: bool,
    /// `http-request use-service prometheus-exporter [if { path P }]`: the path served
    /// (empty: every request).
    pub prometheus: Option<String>,
    /// ACLs, `use_backend`, `tcp-request`, `http-request`, `http-response`, `monitor-uri`.
    pub rules: super::rules::Rules,
    /// `stick-table ...`: the proxy's table (named as the proxy).
    pub stick_table: Option<super::stick::TableSpec>,
}

/// `load-server-state-from-file`: which file a backend's servers' state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStateSource {
    /// Not loaded (HAProxy's default).
    None,
    /// The global `server-state-file`.
    Global,
    /// The backend's `server-state-file-name`.
    Local,
}

impl Proxy {
    pub fn new(name: String, kind: ProxyKind, place: Place) -> Self {
        Proxy {
            name,
            kind,
            place,
            description: None,
            forced_id: None,
            id: 0,
            mode: Mode::Tcp,
            binds: Vec::new(),
            external_check_command: None,
            email_alert: EmailAlert::default(),
            default_backend: None,
            balance: Balance::RoundRobin,
            hash_type: HashType::default(),
            hash_balance_factor: 0,
            cookie: None,
            persist_rdp_cookie: None,
            source: None,
            dynamic_cookie_key: None,
            http_reuse: HttpReuse::Safe,
            load_server_state: ServerStateSource::None,
            server_state_file_name: None,
            servers: Vec::new(),
            default_server: ServerOptions::default(),
            timeouts: Timeouts::default(),
            options: Options::default(),
            tcp_checks: Vec::new(),
            retries: 3,
            maxconn: None,
            max_session_srv_conns: MAX_SESSION_SRV_CONNS,
            rate_limit_sessions: 0,
            fullconn: None,
            backlog: None,
            clitcpka: Keepalive::default(),
            srvtcpka: Keepalive::default(),
            errorfiles: BTreeMap::new(),
            errorfiles_refs: Vec::new(),
            error_replies: BTreeMap::new(),
            stats: StatsPage::default(),
            logs: Vec::new(),
            log: Default::default(),
            disabled: false,
            prometheus: None,
            rules: Default::default(),
            stick_table: None,
        }
    }

    /// Whether the listeners delay the ACK of what clients send, so that it leaves with the
    /// response (`option tcp-smart-accept`, automatic in HTTP mode as in HAProxy).
    pub fn smart_accept(&self) -> bool {
        self.options
            .tcp_smart_accept
            .unwrap_or(self.mode == Mode::Http)
    }

    /// A new section of `kind` that starts from the settings of a defaults section.
    pub fn from_defaults(defaults: &Proxy, name: String, kind: ProxyKind, place: Place) -> Self {
        let mut options = defaults.options.clone();
        // Only a proxy's own unused `tcp-check` rules are warned about.
        options.tcp_check_without_option = false;
        Proxy {
            options,
            name,
            kind,
            place,
            description: None,
            forced_id: None,
            id: 0,
            binds: Vec::new(),
            servers: Vec::new(),
            disabled: false,
            prometheus: None,
            stick_table: None,
            rules: defaults.rules.inherited(),
            ..defaults.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Place, Resolvers};

    fn names(section: &Resolvers) -> Vec<(String, String)> {
        let shown = section.nameservers.iter();
        shown
            .map(|n| (n.name.clone(), n.addr.to_string()))
            .collect()
    }

    /// As HAProxy's `parse_resolve_conf`: unindented `nameserver` lines only, named after
    /// their address, port 53; the others warned about and left out.
    #[test]
    fn resolv_conf_gives_its_nameservers_as_haproxy_reads_them() {
        let mut section = Resolvers::new("r".into(), Place::default());
        let text = "search x\nnameserver 127.0.0.9\nnameserver\t127.0.0.9 # again\n  nameserver 10.0.0.1\nnameserverx 10.0.0.2\nnameserver\nnameserver 127.0.0.3:53\nnameserver ::1 extra\nnameserver ns.test\nnameserver gone.test\n";
        let looked_up = |host: &str| (host == "ns.test").then(|| [127, 0, 0, 8].into());
        let warnings = section.add_resolv_conf(text, &looked_up);
        assert_eq!(
            names(&section),
            [
                ("127.0.0.9".to_string(), "127.0.0.9:53".to_string()),
                ("::1".to_string(), "[::1]:53".to_string()),
                ("ns.test".to_string(), "127.0.0.8:53".to_string())
            ]
        );
        assert_eq!(
            warnings,
            [
                "Parsing [/etc/resolv.conf:3] : generated name for /etc/resolv.conf nameserver '127.0.0.9' conflicts with another nameserver (declared at /etc/resolv.conf:2), it appears to be a duplicate and will be excluded.",
                "parsing [/etc/resolv.conf:6] : nameserver line is missing address.",
                "parsing [/etc/resolv.conf:7] : address '127.0.0.3:53' could not be recognized, nameserver will be excluded.",
                "parsing [/etc/resolv.conf:10] : address 'gone.test' could not be recognized, nameserver will be excluded.",
            ]
        );
    }

    /// The implicit `default` section exists only with a readable resolv.conf naming a
    /// nameserver.
    #[test]
    fn the_implicit_default_section_needs_a_nameserver() {
        let nowhere = |_: &str| None;
        assert!(Resolvers::implicit_default(None, &nowhere).is_none());
        let unusable = "search x\nnameserver\nnameserver gone.test\n";
        assert!(Resolvers::implicit_default(Some(unusable), &nowhere).is_none());
        let section = Resolvers::implicit_default(Some("nameserver 127.0.0.9\n"), &nowhere);
        let section = section.expect("a default section");
        assert_eq!(section.name, "default");
        assert_eq!(
            names(&section),
            [("127.0.0.9".into(), "127.0.0.9:53".into())]
        );
    }
}
