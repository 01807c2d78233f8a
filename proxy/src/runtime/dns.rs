//! Runtime DNS for servers with `resolvers NAME`, with HAProxy 2.6's semantics.
//!
//! Servers that resolve the same name through the same section with the same family
//! preference share one resolution, as in HAProxy: every `timeout resolve` the name is
//! queried over UDP, each query sent to every nameserver of the section at once, the
//! preferred family first (`resolve-prefer`, IPv6 by default) and the other one when every
//! nameserver answered with an error, up to `resolve_retries` tries of `timeout retry` each
//! (see [`resolve`]). The first valid answer is offered to each server in turn. A
//! server stays with the address a previous answer gave it while the answers still hold it,
//! even when an operator moved it since (`set server ... addr`), as HAProxy's server stays
//! linked to its answer record; otherwise:
//!
//! - an address another server of the same backend took from the same answers (HAProxy's
//!   servers attached to an answer record; not one it has from `init-addr`) is skipped
//!   (`resolve-opts prevent-dup-ip`, the default; `allow-dup-ip` lifts it); when nothing is
//!   left the server loses its address (MAINT (resolution));
//! - otherwise HAProxy's score picks the address: preferred family 8, inside a `resolve-net`
//!   4, not used by a sibling 2, the current address 1; the first best wins and the answer
//!   is rotated after each pick so ties spread over the servers.
//!
//! After a failure the last address is kept for the section's `hold nx|refused|timeout|other`
//! period since the last valid answer, then the server loses it until a resolution succeeds.
//!
//! Losing the address and getting one back are logged as HAProxy's resolution maintenance
//! (`SRV_ADMF_RMAINT`) is, through `runtime::transitions`: `is going DOWN for maintenance
//! (DNS NX status)` with the servers left (or `was DOWN and now enters maintenance`), the
//! backend's alert when none is left, and on the way back `changed its IP from (none) to A
//! by dns/NAMESERVER.` (`by DNS cache.` for the servers after the first sharing the answer),
//! `('HOST') is UP/READY (resolves again).` and `administratively READY thanks to valid DNS
//! answer.`, in the logs and on stderr.
//!
//! Messages are built and parsed with `hickory-proto`. Each query has a random id, an EDNS0
//! OPT record advertising `accepted_payload_size` (512 by default), and its own connected
//! socket, so the kernel only delivers datagrams from the nameserver queried. A datagram is
//! judged as HAProxy's `resolv_validate_dns_response` judges it ([`Question::read_answer`]):
//! one larger than `accepted_payload_size` or with another id is dropped and the wait goes
//! on; otherwise it is the nameserver's answer, valid (even without a usable address) or an
//! error (NX, refused, another code, no record, a broken CNAME chain, truncated, invalid).
//! CNAME chains inside one answer are followed. A truncated answer is an `other` failure:
//! HAProxy 2.6 does not retry over TCP, neither does hapx.
//!
//! Each nameserver counts what it was sent and answered as HAProxy's does ([`Counter`]):
//! `show resolvers` prints them ([`Sections::show`]), `clear counters all` resets them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use hickory_proto::op::{Edns, Header, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use thiserror::Error;
use tokio::net::UdpSocket;

use super::state::{Backend, Server, State};
use super::transitions;
use crate::config::model::{Network, Resolvers};

/// Why a resolution failed; [`DnsError::hold_status`] names the `hold` that applies.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    #[error("NX domain")]
    Nx,
    #[error("query refused")]
    Refused,
    #[error("timeout")]
    Timeout,
    #[error("truncated response")]
    Truncated,
    #[error("invalid or empty response")]
    Other,
}

impl DnsError {
    /// Why a server loses its address to this failure once its `hold` is over, in HAProxy's
    /// words (`snr_update_srv_status`).
    pub fn maint_cause(self) -> &'static str {
        match self {
            DnsError::Nx => "DNS NX status",
            DnsError::Refused => "DNS refused status",
            DnsError::Timeout => "DNS timeout status",
            DnsError::Truncated | DnsError::Other => "unspecified DNS error",
        }
    }

    /// The `hold` status of a resolvers section that applies after this failure.
    pub fn hold_status(self) -> &'static str {
        match self {
            DnsError::Nx => "nx",
            DnsError::Refused => "refused",
            DnsError::Timeout => "timeout",
            DnsError::Truncated | DnsError::Other => "other",
        }
    }
}

/// One name resolved for the servers that share it.
#[derive(Debug)]
struct Resolution {
    resolvers: Resolvers,
    /// The section's nameservers, with their `show resolvers` counters.
    nameservers: Arc<[Arc<Nameserver>]>,
    name: Name,
    prefer_v6: bool,
    servers: Vec<Requester>,
}

impl Resolution {
    /// Lets go of the servers whose name changed since (another resolution serves them
    /// now, even if the name came back to this one); false when none is left.
    fn keep_current(&mut self) -> bool {
        self.servers
            .retain(|r| r.server.host_generation() == r.generation);
        !self.servers.is_empty()
    }
}

/// A server waiting for a resolution's answers.
#[derive(Debug)]
struct Requester {
    server: Arc<Server>,
    /// The server's host generation this resolution serves: once `set server ... fqdn`
    /// changes the name, another resolution serves the server ([`change_fqdn`]) and this
    /// one lets it go.
    generation: u64,
    /// The other servers of its backend resolving the same name: the addresses they took
    /// from the same answers are the duplicates `prevent-dup-ip` avoids.
    siblings: Vec<Arc<Server>>,
    last_valid: Instant,
    /// The address the last answer gave it. HAProxy ties a server to the answer record it
    /// took its address from and leaves it there while that record is still answered.
    resolved: Option<IpAddr>,
}

/// Starts one resolution task per name to resolve (see the module documentation).
pub fn spawn_all(state: &Arc<State>) {
    let mut resolutions: Vec<(String, Resolution)> = Vec::new();
    for backend in &state.backends {
        for server in &backend.servers {
            let Some((resolvers, name)) = what_to_resolve(state, server) else {
                continue;
            };
            let requester = Requester::new(server, &backend.servers, server.host_generation());
            // HAProxy shares a resolution per section, name and preferred query type.
            let key = format!(
                "{}\0{}\0{}",
                resolvers.name,
                name.to_lowercase(),
                server.opts.resolve_prefer_v6
            );
            match resolutions.iter_mut().find(|(k, _)| *k == key) {
                Some((_, r)) => r.servers.push(requester),
                None => resolutions.push((
                    key,
                    Resolution {
                        resolvers: resolvers.clone(),
                        nameservers: state.resolvers.nameservers(&resolvers.name),
                        name,
                        prefer_v6: server.opts.resolve_prefer_v6,
                        servers: vec![requester],
                    },
                )),
            }
        }
    }
    for (_, resolution) in resolutions {
        tokio::spawn(resolve_loop(state.clone(), resolution));
    }
}

/// The section and the name a server resolves at run time, if it does.
fn what_to_resolve<'s>(state: &'s State, server: &Server) -> Option<(&'s Resolvers, Name)> {
    let resolvers = state.config.resolvers(server.opts.resolvers.as_deref()?)?;
    let host = server.host();
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let Some(name) = fqdn(&host) else {
        crate::process::say!(
            "[ALERT]    ({}) : {}/{}: '{host}' is not a valid host name to resolve.",
            std::process::id(),
            server.backend,
            server.name,
        );
        return None;
    };
    Some((resolvers, name))
}

impl Requester {
    fn new(server: &Arc<Server>, backend_servers: &[Arc<Server>], generation: u64) -> Requester {
        let siblings = backend_servers
            .iter()
            .filter(|s| !Arc::ptr_eq(s, server) && resolves_as(s, server))
            .cloned()
            .collect();
        Requester {
            server: server.clone(),
            generation,
            siblings,
            last_valid: Instant::now(),
            resolved: None,
        }
    }
}

/// Whether `other` resolves the same name as `server` (HAProxy compares host names
/// case-insensitively among servers that have resolvers).
fn resolves_as(other: &Server, server: &Server) -> bool {
    other.opts.resolvers.is_some() && other.host().eq_ignore_ascii_case(&server.host())
}

/// `set server B/S fqdn NAME` for a server with `resolvers`: the server takes the name and
/// resolves it from now on (an address-shaped name is not resolved); it keeps its address
/// until an answer for the new name moves it. HAProxy's answer, without its " by ..." end.
pub fn change_fqdn(
    state: &Arc<State>,
    backend: &Backend,
    server: &Arc<Server>,
    name: &str,
) -> String {
    if !valid_fqdn(name) {
        return format!("invalid fqdn '{name}'");
    }
    let old = server.host();
    if old == name {
        // Sic: HAProxy's spelling.
        return "no need to change the FDQN".into();
    }
    // HAProxy's SRV_ADMF_HMAINT: a state file dumped later carries the name over a reload.
    // Set first: the resolution of the new name may fail (an admin change) at once.
    server.set_fqdn_set_by_cli(true);
    // HAProxy keeps the name in lower case (but compares and answers with it as given). A
    // change of case alone names the same host: the resolution running goes on.
    if !old.eq_ignore_ascii_case(name) {
        let generation = server.set_host(&name.to_ascii_lowercase());
        if let Some((resolvers, dns_name)) = what_to_resolve(state, server) {
            let resolution = Resolution {
                resolvers: resolvers.clone(),
                nameservers: state.resolvers.nameservers(&resolvers.name),
                name: dns_name,
                prefer_v6: server.opts.resolve_prefer_v6,
                servers: vec![Requester::new(server, &backend.servers, generation)],
            };
            tokio::spawn(resolve_loop(state.clone(), resolution));
        }
    }
    format!(
        "{}/{} changed its FQDN from {old} to {name}",
        server.backend, server.name
    )
}

/// A host name HAProxy accepts: dot-separated labels of letters, digits and hyphens, 63
/// characters at most each, 255 in all.
fn valid_fqdn(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The absolute name for a host as written (no search domains: HAProxy uses none).
fn fqdn(host: &str) -> Option<Name> {
    let mut name = Name::from_ascii(host).ok()?;
    name.set_fqdn(true);
    Some(name)
}

async fn resolve_loop(state: Arc<State>, mut res: Resolution) {
    loop {
        if !res.keep_current() {
            return;
        }
        let outcome = resolve(&res.nameservers, &res.resolvers, &res.name, res.prefer_v6).await;
        // A name may have changed while the query ran.
        res.keep_current();
        match outcome {
            Ok(mut answer) => {
                // As HAProxy, the first server is told the nameserver that answered (and
                // counts in its `update` when it moves), the others share the answer from
                // its cache.
                let ns = &answer.nameserver;
                let mut by = format!("{}/{}", res.resolvers.name, ns.name);
                for index in 0..res.servers.len() {
                    let taken = records_taken(&res.servers, index);
                    let req = &mut res.servers[index];
                    req.last_valid = Instant::now();
                    let moved =
                        apply_answer(req, &mut answer.addresses, res.prefer_v6, &by, &taken);
                    if moved && index == 0 {
                        ns.count(Counter::Update);
                    }
                    by = "DNS cache".to_string();
                }
            }
            Err(e) => {
                state.failed_resolutions.fetch_add(1, Relaxed);
                for req in &mut res.servers {
                    apply_failure(req, e, &res.resolvers);
                }
            }
        }
        tokio::time::sleep(res.resolvers.timeout_resolve).await;
    }
}

/// Moves a server to the address the answer gives it, or takes its address away when the
/// answer has none it may use. Whether it moved to a new address.
fn apply_answer(
    req: &mut Requester,
    answer: &mut [IpAddr],
    prefer_v6: bool,
    by: &str,
    taken: &[IpAddr],
) -> bool {
    let server = &req.server;
    // As HAProxy, a server stays with the record it took its address from while that record
    // is answered, even when an operator moved it elsewhere since (`set server ... addr`).
    if req.resolved.is_some_and(|ip| answer.contains(&ip)) {
        return false;
    }
    let current = server.addr();
    let prefs = Preferences {
        prefer_v6,
        nets: &server.opts.resolve_nets,
        allow_dup_ip: server.opts.resolve_allow_dup_ip,
    };
    let taken = |ip: IpAddr| taken.contains(&ip);
    let choice = choose(answer, &prefs, current, taken);
    req.resolved = match choice {
        Choice::Keep => current,
        Choice::Move(new) => Some(new),
        Choice::NoAddress => None,
    };
    match choice {
        Choice::Keep => false,
        Choice::Move(new) => {
            server.set_resolved_addr(Some(new));
            if let Some((backend, _)) = server.balancer() {
                transitions::report_resolved(&backend, server, current, new, by);
            }
            true
        }
        // HAProxy's cause, its trailing space included.
        Choice::NoAddress if current.is_some() => {
            enter_resolution_maint(server, "No IP for server ");
            false
        }
        Choice::NoAddress => false,
    }
}

/// Takes the server's address away (HAProxy's resolution maintenance, `RMAINT`) and logs it
/// as any entry into maintenance, with `cause`.
fn enter_resolution_maint(server: &Server, cause: &str) {
    let Some((backend, _)) = server.balancer() else {
        server.set_resolved_addr(None);
        return;
    };
    let before = transitions::Before::of(&backend, server);
    server.set_resolved_addr(None);
    transitions::report_resolution_maint(&backend, server, before, cause);
}

/// The addresses the requester's siblings took from this resolution's answers, the
/// duplicates `prevent-dup-ip` avoids: HAProxy counts the servers attached to an answer
/// record, not an address a server has by other means (`init-addr`, `set server ... addr`).
fn records_taken(requesters: &[Requester], index: usize) -> Vec<IpAddr> {
    let req = &requesters[index];
    requesters
        .iter()
        .enumerate()
        .filter(|&(i, other)| {
            i != index && req.siblings.iter().any(|s| Arc::ptr_eq(s, &other.server))
        })
        .filter_map(|(_, other)| other.resolved)
        .collect()
}

/// After a failed resolution: the server keeps its address for the `hold` period of this
/// kind of failure since the last valid answer, then loses it.
fn apply_failure(req: &mut Requester, e: DnsError, resolvers: &Resolvers) {
    let server = &req.server;
    if server.addr().is_some() && req.last_valid.elapsed() >= resolvers.hold(e.hold_status()) {
        // The records it was tied to are gone with the answer that held them.
        req.resolved = None;
        enter_resolution_maint(server, e.maint_cause());
    }
}

/// A server's settings that weigh in when it picks an address from an answer.
#[derive(Debug, Clone, Copy)]
pub struct Preferences<'a> {
    pub prefer_v6: bool,
    pub nets: &'a [Network],
    pub allow_dup_ip: bool,
}

/// What a server does with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Its current address is the best one.
    Keep,
    Move(IpAddr),
    /// Every address is another server's (or the answer is empty).
    NoAddress,
}

/// HAProxy's `resolv_get_ip_from_response`: scores every address (preferred family 8,
/// preferred network 4, not `taken` by a sibling 2, current address 1), skips taken ones
/// unless duplicates are allowed, and keeps the first best of each family. The answer is
/// rotated afterwards so the next server starts from another address.
pub fn choose(
    answer: &mut [IpAddr],
    prefs: &Preferences<'_>,
    current: Option<IpAddr>,
    taken: impl Fn(IpAddr) -> bool,
) -> Choice {
    let (mut best_v4, mut best_v6) = (None, None);
    let mut best_score = -1;
    let mut best_is_current = false;
    for &ip in answer.iter() {
        let mut score = 0;
        if ip.is_ipv6() == prefs.prefer_v6 {
            score += 8;
        }
        if prefs.nets.iter().any(|n| n.contains(ip)) {
            score += 4;
        }
        if taken(ip) {
            if !prefs.allow_dup_ip {
                continue;
            }
        } else {
            score += 2;
        }
        let is_current = current == Some(ip);
        if is_current {
            score += 1;
        }
        if score > best_score {
            if ip.is_ipv6() {
                best_v6 = Some(ip);
            } else {
                best_v4 = Some(ip);
            }
            best_is_current = is_current;
            // The best possible score: this is the current address, nothing to change.
            if score == 15 {
                return Choice::Keep;
            }
            best_score = score;
        }
    }
    let (first, second) = if prefs.prefer_v6 {
        (best_v6, best_v4)
    } else {
        (best_v4, best_v6)
    };
    let Some(pick) = first.or(second) else {
        return Choice::NoAddress;
    };
    answer.rotate_left(1);
    if best_is_current {
        Choice::Keep
    } else {
        Choice::Move(pick)
    }
}

/// A `show resolvers` counter of a nameserver, in HAProxy 2.6's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Queries sent.
    Sent,
    /// Queries that could not be sent.
    SndError,
    /// Answers taken (valid, even without a usable address).
    Valid,
    /// Answers that moved the first server sharing the resolution to another address.
    Update,
    /// Never counted by HAProxy 2.6; printed all the same.
    Cname,
    /// Answers whose CNAME chain breaks or ends without an address record.
    CnameError,
    /// Answers without any record (NOERROR, empty answer section).
    AnyErr,
    Nx,
    /// Never counted by HAProxy 2.6 (a silent nameserver shows in `sent` alone).
    Timeout,
    Refused,
    /// Answers with another error code (SERVFAIL...).
    Other,
    /// Answers that do not parse, ask another name or have no single question.
    Invalid,
    /// Datagrams larger than `accepted_payload_size`, dropped.
    TooBig,
    Truncated,
    /// Datagrams with another query's id, dropped.
    Outdated,
}

impl Counter {
    const ALL: [Counter; 15] = [
        Counter::Sent,
        Counter::SndError,
        Counter::Valid,
        Counter::Update,
        Counter::Cname,
        Counter::CnameError,
        Counter::AnyErr,
        Counter::Nx,
        Counter::Timeout,
        Counter::Refused,
        Counter::Other,
        Counter::Invalid,
        Counter::TooBig,
        Counter::Truncated,
        Counter::Outdated,
    ];

    /// Its name in `show resolvers`.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Sent => "sent",
            Counter::SndError => "snd_error",
            Counter::Valid => "valid",
            Counter::Update => "update",
            Counter::Cname => "cname",
            Counter::CnameError => "cname_error",
            Counter::AnyErr => "any_err",
            Counter::Nx => "nx",
            Counter::Timeout => "timeout",
            Counter::Refused => "refused",
            Counter::Other => "other",
            Counter::Invalid => "invalid",
            Counter::TooBig => "too_big",
            Counter::Truncated => "truncated",
            Counter::Outdated => "outdated",
        }
    }
}

/// A nameserver of a resolvers section, with what it was sent and answered.
#[derive(Debug)]
pub struct Nameserver {
    pub name: String,
    pub addr: SocketAddr,
    counters: [AtomicU64; Counter::ALL.len()],
}

impl Nameserver {
    fn new(name: String, addr: SocketAddr) -> Nameserver {
        Nameserver {
            name,
            addr,
            counters: Default::default(),
        }
    }

    pub fn count(&self, counter: Counter) {
        self.counters[counter as usize].fetch_add(1, Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Relaxed)
    }
}

/// Every resolvers section's nameservers, in configuration order: what `show resolvers`
/// prints and what the resolutions count into.
#[derive(Debug, Default)]
pub struct Sections(Vec<(String, Arc<[Arc<Nameserver>]>)>);

impl Sections {
    pub fn of(config: &crate::config::model::Config) -> Sections {
        let sections = config.resolvers.iter().map(|r| {
            let nameservers = nameservers(r).into_iter();
            let nameservers = nameservers.map(|(name, addr)| Arc::new(Nameserver::new(name, addr)));
            (r.name.clone(), nameservers.collect())
        });
        Sections(sections.collect())
    }

    /// The nameservers of section `name` (none for an unknown one).
    fn nameservers(&self, name: &str) -> Arc<[Arc<Nameserver>]> {
        let found = self.0.iter().find(|(section, _)| section == name);
        found.map_or_else(|| Arc::from([]), |(_, list)| list.clone())
    }

    /// `show resolvers [SECTION]`, as HAProxy 2.6 prints it.
    pub fn show(&self, section: Option<&str>) -> String {
        use std::fmt::Write;
        let shown: Vec<_> = match section {
            Some(name) => self.0.iter().filter(|(s, _)| s == name).collect(),
            None => self.0.iter().collect(),
        };
        if section.is_some() && shown.is_empty() {
            return "Can't find that resolvers section\n".into();
        }
        let mut out = String::new();
        for (name, nameservers) in shown {
            let _ = writeln!(out, "Resolvers section {name}");
            for ns in nameservers.iter() {
                let _ = writeln!(out, " nameserver {}:", ns.name);
                for counter in Counter::ALL {
                    let label = format!("{}:", counter.name());
                    let _ = writeln!(out, "  {label:<13}{}", ns.get(counter));
                }
            }
        }
        out
    }

    /// `clear counters all` (HAProxy's resolvers counters are not cleared without `all`).
    pub fn clear(&self) {
        let nameservers = self.0.iter().flat_map(|(_, list)| list.iter());
        for counter in nameservers.flat_map(|ns| ns.counters.iter()) {
            counter.store(0, Relaxed);
        }
    }
}

/// The section's nameservers by name, in the order they were declared (those of
/// `parse-resolv-conf` and of the implicit `default` section named after their address, as
/// HAProxy names them).
fn nameservers(r: &Resolvers) -> Vec<(String, SocketAddr)> {
    let declared = r.nameservers.iter();
    declared.map(|n| (n.name.clone(), n.addr)).collect()
}

/// A resolution's addresses and the nameserver that gave them.
#[derive(Debug)]
pub struct Answer {
    pub addresses: Vec<IpAddr>,
    pub nameserver: Arc<Nameserver>,
}

/// Resolves `name` as HAProxy 2.6 does: each query goes to every nameserver of the section
/// at once and the first valid answer wins, even one without a usable address. When every
/// nameserver has answered with an error, the other family is asked at once; when `timeout
/// retry` passes first, the preferred family is asked again (the other one if some
/// nameserver answered the preferred one), one of the `resolve_retries` tries gone. The
/// last try over, the failure is the last answer's, or a timeout when none answered.
pub async fn resolve(
    nameservers: &[Arc<Nameserver>],
    r: &Resolvers,
    name: &Name,
    prefer_v6: bool,
) -> Result<Answer, DnsError> {
    let (preferred, fallback) = if prefer_v6 {
        (RecordType::AAAA, RecordType::A)
    } else {
        (RecordType::A, RecordType::AAAA)
    };
    let mut qtype = preferred;
    let mut tries_left = r.resolve_retries.max(1) - 1;
    loop {
        let question = Question::new(name, qtype, r.accepted_payload_size)?;
        let deadline = Instant::now() + r.timeout_retry;
        let round = Round::send(nameservers, &question).await;
        let answered = match round.wait(&question, deadline).await {
            Ok(answer) => return Ok(answer),
            Err(RoundEnd::AllFailed(_)) if qtype == preferred => {
                qtype = fallback;
                continue;
            }
            Err(RoundEnd::AllFailed(e)) if tries_left == 0 => return Err(e),
            Err(RoundEnd::AllFailed(_)) => {
                // HAProxy waits for its retry timer before the next try.
                tokio::time::sleep_until(deadline.into()).await;
                true
            }
            Err(RoundEnd::Expired { last_error }) if tries_left == 0 => {
                return Err(last_error.unwrap_or(DnsError::Timeout));
            }
            Err(RoundEnd::Expired { last_error }) => last_error.is_some(),
        };
        if answered && qtype == preferred {
            qtype = fallback;
        } else {
            qtype = preferred;
            tries_left -= 1;
        }
    }
}

/// One query sent to every nameserver, each on its own connected socket (a random source
/// port; the kernel drops datagrams from any other address or port).
struct Round {
    sockets: Vec<(Arc<Nameserver>, UdpSocket)>,
    /// Nameservers that answered (with an error: a valid answer ends the round).
    answered: usize,
    last_error: Option<DnsError>,
}

/// How a round ended without a valid answer.
enum RoundEnd {
    /// Every nameserver queried answered with an error; the last one's.
    AllFailed(DnsError),
    /// `timeout retry` passed first; the last error answered, if any.
    Expired { last_error: Option<DnsError> },
}

impl Round {
    async fn send(nameservers: &[Arc<Nameserver>], question: &Question) -> Round {
        let mut sockets = Vec::with_capacity(nameservers.len());
        for ns in nameservers {
            match send_query(ns.addr, &question.packet).await {
                Ok(socket) => {
                    ns.count(Counter::Sent);
                    sockets.push((ns.clone(), socket));
                }
                Err(_) => ns.count(Counter::SndError),
            }
        }
        Round {
            sockets,
            answered: 0,
            last_error: None,
        }
    }

    /// Reads the answers until one is valid, all are errors, or `deadline`.
    async fn wait(mut self, question: &Question, deadline: Instant) -> Result<Answer, RoundEnd> {
        // Room for any datagram, so an oversized one is recognised and dropped whole.
        let mut buf = vec![0u8; 65536];
        while self.answered < self.sockets.len() {
            let received = tokio::time::timeout_at(deadline.into(), self.recv(&mut buf)).await;
            let Ok((at, received)) = received else {
                break;
            };
            let ns = self.sockets[at].0.clone();
            let Ok(n) = received else {
                // ICMP unreachable: nobody answers there; as HAProxy sees it, silence.
                self.sockets.swap_remove(at);
                continue;
            };
            match question.read_answer(&buf[..n]) {
                Reading::Dropped(counter) => ns.count(counter),
                Reading::Valid(addresses) => {
                    ns.count(Counter::Valid);
                    self.sockets.swap_remove(at);
                    tokio::spawn(self.count_late_answers(deadline));
                    return Ok(Answer {
                        addresses,
                        nameserver: ns,
                    });
                }
                Reading::Failed(failure) => {
                    ns.count(failure.counter());
                    self.answered += 1;
                    self.last_error = Some(failure.status());
                }
            }
        }
        match self.last_error {
            Some(e) if self.answered >= self.sockets.len() && !self.sockets.is_empty() => {
                Err(RoundEnd::AllFailed(e))
            }
            last_error => {
                tokio::time::sleep_until(deadline.into()).await;
                Err(RoundEnd::Expired { last_error })
            }
        }
    }

    /// Once a valid answer ended the round, the other nameservers' answers until `deadline`
    /// count as `outdated`, as in HAProxy, where the query id is then unknown.
    async fn count_late_answers(self, deadline: Instant) {
        let mut buf = vec![0u8; 65536];
        let mut sockets = self;
        while !sockets.sockets.is_empty() {
            let received = tokio::time::timeout_at(deadline.into(), sockets.recv(&mut buf)).await;
            match received {
                Ok((at, Ok(_))) => sockets.sockets[at].0.count(Counter::Outdated),
                Ok((at, Err(_))) => drop(sockets.sockets.swap_remove(at)),
                Err(_) => return,
            }
        }
    }

    /// The next datagram from any nameserver: its socket's index and its length.
    async fn recv(&self, buf: &mut [u8]) -> (usize, std::io::Result<usize>) {
        use std::task::Poll;
        std::future::poll_fn(|cx| {
            let mut read = tokio::io::ReadBuf::new(buf);
            for (at, (_, socket)) in self.sockets.iter().enumerate() {
                if let Poll::Ready(done) = socket.poll_recv(cx, &mut read) {
                    return Poll::Ready((at, done.map(|()| read.filled().len())));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Sends `packet` to `ns` from a fresh socket connected to it.
async fn send_query(ns: SocketAddr, packet: &[u8]) -> std::io::Result<UdpSocket> {
    let bind: SocketAddr = if ns.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(ns).await?;
    socket.send(packet).await?;
    Ok(socket)
}

/// One query to one nameserver, waiting at most `timeout` for its answer.
#[cfg(test)]
async fn query(
    ns: SocketAddr,
    question: &Question,
    timeout: std::time::Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let nameservers = [Arc::new(Nameserver::new("ns".into(), ns))];
    let round = Round::send(&nameservers, question).await;
    match round.wait(question, Instant::now() + timeout).await {
        Ok(answer) => Ok(answer.addresses),
        Err(RoundEnd::AllFailed(e)) => Err(e),
        Err(RoundEnd::Expired { last_error }) => Err(last_error.unwrap_or(DnsError::Timeout)),
    }
}

/// What a datagram from a nameserver is to a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Not an answer to it (counted, the wait goes on).
    Dropped(Counter),
    /// Its answer: the addresses of the type asked (maybe none).
    Valid(Vec<IpAddr>),
    /// Its answer, an error.
    Failed(Failure),
}

/// An answer HAProxy's `resolv_validate_dns_response` rejects, in its terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Nx,
    Refused,
    /// Another response code.
    Error,
    /// No answer record.
    AncountZero,
    CnameError,
    Truncated,
    Invalid,
}

impl Failure {
    fn counter(self) -> Counter {
        match self {
            Failure::Nx => Counter::Nx,
            Failure::Refused => Counter::Refused,
            Failure::Error => Counter::Other,
            Failure::AncountZero => Counter::AnyErr,
            Failure::CnameError => Counter::CnameError,
            Failure::Truncated => Counter::Truncated,
            Failure::Invalid => Counter::Invalid,
        }
    }

    /// The resolution's status after it.
    fn status(self) -> DnsError {
        match self {
            Failure::Nx => DnsError::Nx,
            Failure::Refused => DnsError::Refused,
            Failure::Truncated => DnsError::Truncated,
            Failure::Error | Failure::AncountZero | Failure::CnameError | Failure::Invalid => {
                DnsError::Other
            }
        }
    }
}

/// One query as sent, and what a datagram must echo to be taken for its answer.
#[derive(Debug, Clone)]
pub struct Question {
    /// Random, from `hickory-proto`'s generator.
    pub id: u16,
    pub name: Name,
    pub qtype: RecordType,
    /// `accepted_payload_size`: advertised in EDNS0; larger answers are dropped.
    pub payload: u16,
    /// The encoded query.
    pub packet: Vec<u8>,
}

impl Question {
    /// A recursive query for `name` (absolute) with a random id and an EDNS0 OPT record.
    pub fn new(name: &Name, qtype: RecordType, payload: u16) -> Result<Question, DnsError> {
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name.clone(), qtype));
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        msg.set_edns(edns);
        let packet = msg.to_vec().map_err(|_| DnsError::Other)?;
        Ok(Question {
            id: msg.metadata.id,
            name: name.clone(),
            qtype,
            payload,
            packet,
        })
    }

    /// What `packet` is to this question, checked in HAProxy's order: size, id, response
    /// code, one question, some answer record, the name asked, truncation, then the
    /// records, each owned by the name asked or the previous CNAME's target.
    pub fn read_answer(&self, packet: &[u8]) -> Reading {
        if packet.len() > usize::from(self.payload.max(512)) {
            return Reading::Dropped(Counter::TooBig);
        }
        match packet {
            [high, low, ..] if u16::from_be_bytes([*high, *low]) != self.id => {
                return Reading::Dropped(Counter::Outdated);
            }
            _ => {}
        }
        match self.validate(packet) {
            Ok(addresses) => Reading::Valid(addresses),
            Err(failure) => Reading::Failed(failure),
        }
    }

    fn validate(&self, packet: &[u8]) -> Result<Vec<IpAddr>, Failure> {
        let mut decoder = BinDecoder::new(packet);
        let header = Header::read(&mut decoder).map_err(|_| Failure::Invalid)?;
        match header.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => return Err(Failure::Nx),
            ResponseCode::Refused => return Err(Failure::Refused),
            _ => return Err(Failure::Error),
        }
        if header.counts.queries != 1 {
            return Err(Failure::Invalid);
        }
        if header.counts.answers == 0 {
            return Err(Failure::AncountZero);
        }
        let query = Query::read(&mut decoder).map_err(|_| Failure::Invalid)?;
        if query.name() != &self.name {
            return Err(Failure::Invalid);
        }
        if header.metadata.truncation {
            return Err(Failure::Truncated);
        }
        let msg = Message::from_vec(packet).map_err(|_| Failure::Invalid)?;
        check_chain(&msg.answers, &self.name)?;
        Ok(addresses(&msg.answers, &self.name, self.qtype))
    }
}

/// HAProxy's walk of the answer records: each is owned by the name asked or by the previous
/// CNAME's target (the first one otherwise is invalid, a later one a broken chain), and the
/// last one is no CNAME.
fn check_chain(answers: &[Record], name: &Name) -> Result<(), Failure> {
    let mut owner = name;
    for (i, record) in answers.iter().enumerate() {
        if &record.name != owner {
            return Err(if i == 0 {
                Failure::Invalid
            } else {
                Failure::CnameError
            });
        }
        if let RData::CNAME(target) = &record.data {
            if i + 1 == answers.len() {
                return Err(Failure::CnameError);
            }
            owner = &target.0;
        }
    }
    Ok(())
}

/// The addresses of `name` in an answer section, in order, following CNAME records from
/// `name` to the name that has addresses. Only records of the type asked for (A or AAAA)
/// count, as in HAProxy; records of other names or types are ignored.
fn addresses(answers: &[Record], name: &Name, qtype: RecordType) -> Vec<IpAddr> {
    let mut target = name.clone();
    let mut ips = Vec::new();
    // Each step uses one record at least: a longer chain is a loop.
    for _ in 0..=answers.len() {
        let mut alias = None;
        for record in answers.iter().filter(|r| r.name == target) {
            match &record.data {
                RData::A(a) if qtype == RecordType::A => ips.push(IpAddr::V4(a.0)),
                RData::AAAA(a) if qtype == RecordType::AAAA => ips.push(IpAddr::V6(a.0)),
                RData::CNAME(c) => alias = Some(c.0.clone()),
                _ => {}
            }
        }
        match alias {
            Some(next) if ips.is_empty() => target = next,
            _ => break,
        }
    }
    ips
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, CNAME};
    use std::time::Duration;

    fn name(s: &str) -> Name {
        fqdn(s).unwrap()
    }

    fn question(host: &str) -> Question {
        Question::new(&name(host), RecordType::A, 512).unwrap()
    }

    fn a(owner: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A(ip.into())))
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    /// A response to `q` (same id and question unless the test changes them).
    fn response(q: &Question, rcode: ResponseCode, answers: Vec<Record>) -> Message {
        let mut m = Message::response(q.id, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_query(Query::query(q.name.clone(), q.qtype));
        m.add_answers(answers);
        m
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }

    #[test]
    fn the_query_has_a_random_id_recursion_and_edns0_with_the_accepted_payload() {
        let q = Question::new(&name("kube-mast01"), RecordType::AAAA, 1232).unwrap();
        let sent = Message::from_vec(&q.packet).unwrap();
        assert_eq!(sent.metadata.id, q.id);
        assert!(sent.metadata.recursion_desired);
        assert_eq!(sent.metadata.message_type, MessageType::Query);
        assert_eq!(sent.queries.len(), 1);
        assert_eq!(sent.queries[0].name().to_ascii(), "kube-mast01.");
        assert_eq!(sent.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(sent.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        // Ids are drawn at random: 32 queries do not all share one.
        let ids: std::collections::HashSet<u16> = (0..32).map(|_| question("x").id).collect();
        assert!(ids.len() > 1, "{ids:?}");
    }

    #[test]
    fn an_answer_gives_its_addresses() {
        let q = question("kube-mast01");
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![a("kube-mast01", [192, 0, 2, 10])],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Valid(vec![IpAddr::from([192, 0, 2, 10])])
        );
        // Names compare case-insensitively, as DNS does.
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![a("KUBE-Mast01", [192, 0, 2, 11])],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Valid(vec![IpAddr::from([192, 0, 2, 11])])
        );
    }

    #[test]
    fn only_records_of_the_type_asked_count() {
        let q = question("kube-mast01");
        let aaaa = Record::from_rdata(
            name("kube-mast01"),
            60,
            RData::AAAA(hickory_proto::rr::rdata::AAAA(
                "2001:db8::10".parse().unwrap(),
            )),
        );
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![aaaa, a("kube-mast01", [192, 0, 2, 10])],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Valid(vec![IpAddr::from([192, 0, 2, 10])])
        );
        // Records of another type alone: a valid answer without an address, as HAProxy
        // takes it (the other family is not asked).
        let txt = Record::from_rdata(
            name("kube-mast01"),
            60,
            RData::TXT(hickory_proto::rr::rdata::TXT::new(vec!["x".into()])),
        );
        let r = response(&q, ResponseCode::NoError, vec![txt]);
        assert_eq!(q.read_answer(&bytes(&r)), Reading::Valid(vec![]));
    }

    #[test]
    fn datagrams_are_judged_in_haproxys_order() {
        let q = question("kube-mast01");
        let good = vec![a("kube-mast01", [192, 0, 2, 10])];
        // Another id: an outdated answer, dropped.
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.metadata.id = q.id.wrapping_add(1);
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Dropped(Counter::Outdated)
        );
        // Same id, another name asked: invalid.
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.queries[0] = Query::query(name("kube-mast02"), RecordType::A);
        assert_eq!(q.read_answer(&bytes(&r)), Reading::Failed(Failure::Invalid));
        // ...unless it has no answer record, which HAProxy looks at first.
        let mut r = response(&q, ResponseCode::NoError, vec![]);
        r.queries[0] = Query::query(name("kube-mast02"), RecordType::A);
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Failed(Failure::AncountZero)
        );
        // No question at all, or two.
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.queries.clear();
        assert_eq!(q.read_answer(&bytes(&r)), Reading::Failed(Failure::Invalid));
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.add_query(Query::query(q.name.clone(), RecordType::A));
        assert_eq!(q.read_answer(&bytes(&r)), Reading::Failed(Failure::Invalid));
        // A first record of another name.
        let r = response(&q, ResponseCode::NoError, vec![a("other", [192, 0, 2, 1])]);
        assert_eq!(q.read_answer(&bytes(&r)), Reading::Failed(Failure::Invalid));
        // Garbage and a bare header.
        assert_eq!(
            q.read_answer(&[0xde, 0xad]),
            Reading::Dropped(Counter::Outdated)
        );
        let cut = &bytes(&r)[..12];
        assert_eq!(q.read_answer(cut), Reading::Failed(Failure::Invalid));
    }

    #[test]
    fn an_answer_larger_than_the_accepted_payload_is_dropped() {
        let q = question("kube-mast01");
        let many = (0..40).map(|i| a("kube-mast01", [192, 0, 2, i])).collect();
        let big = bytes(&response(&q, ResponseCode::NoError, many));
        assert!(big.len() > 512);
        assert_eq!(q.read_answer(&big), Reading::Dropped(Counter::TooBig));
        let q = Question::new(&q.name, RecordType::A, 4096).unwrap();
        let many = (0..40).map(|i| a("kube-mast01", [192, 0, 2, i])).collect();
        let big = bytes(&response(&q, ResponseCode::NoError, many));
        assert!(matches!(q.read_answer(&big), Reading::Valid(ips) if ips.len() == 40));
    }

    #[test]
    fn cname_chains_are_followed_within_the_answer() {
        let q = question("api");
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![
                cname("api", "lb.example"),
                cname("lb.example", "node.example"),
                a("node.example", [192, 0, 2, 20]),
                a("node.example", [192, 0, 2, 21]),
            ],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Valid(vec![
                IpAddr::from([192, 0, 2, 20]),
                IpAddr::from([192, 0, 2, 21])
            ])
        );
        // A chain that ends with a CNAME, or a record owned by another name inside it, is
        // a CNAME error.
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![cname("api", "b.example"), cname("b.example", "api")],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Failed(Failure::CnameError)
        );
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![
                cname("api", "lb.example"),
                a("unrelated.example", [198, 51, 100, 1]),
            ],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Failed(Failure::CnameError)
        );
    }

    #[test]
    fn failures_map_to_the_hold_statuses() {
        let q = question("kube-mast01");
        let cases = [
            (ResponseCode::NXDomain, Failure::Nx, "nx"),
            (ResponseCode::Refused, Failure::Refused, "refused"),
            (ResponseCode::ServFail, Failure::Error, "other"),
        ];
        for (rcode, failure, hold) in cases {
            let r = response(&q, rcode, vec![]);
            assert_eq!(q.read_answer(&bytes(&r)), Reading::Failed(failure));
            assert_eq!(failure.status().hold_status(), hold);
        }
        let mut r = response(
            &q,
            ResponseCode::NoError,
            vec![a("kube-mast01", [192, 0, 2, 1])],
        );
        r.metadata.truncation = true;
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Reading::Failed(Failure::Truncated)
        );
        assert_eq!(DnsError::Truncated.hold_status(), "other");
        // A truncated answer cut in the middle of a record is still recognised.
        let cut = bytes(&r);
        assert_eq!(
            q.read_answer(&cut[..cut.len() - 3]),
            Reading::Failed(Failure::Truncated)
        );
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    const V4: Preferences<'static> = Preferences {
        prefer_v6: false,
        nets: &[],
        allow_dup_ip: false,
    };

    #[test]
    fn an_address_used_by_a_sibling_is_skipped_unless_allowed() {
        let used = |ip: IpAddr| ip == "192.0.2.1".parse::<IpAddr>().unwrap();
        let mut one = ips(&["192.0.2.1"]);
        assert_eq!(choose(&mut one, &V4, None, used), Choice::NoAddress);
        let mut two = ips(&["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            choose(&mut two, &V4, None, used),
            Choice::Move(ips(&["192.0.2.2"])[0])
        );
        let allow = Preferences {
            allow_dup_ip: true,
            ..V4
        };
        let mut one = ips(&["192.0.2.1"]);
        assert_eq!(choose(&mut one, &allow, None, used), Choice::Move(one[0]));
        // With duplicates allowed a free address still scores higher.
        let mut two = ips(&["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            choose(&mut two, &allow, None, used),
            Choice::Move(ips(&["192.0.2.2"])[0])
        );
    }

    #[test]
    fn the_current_address_is_kept_and_ties_rotate() {
        let free = |_| false;
        let mut answer = ips(&["192.0.2.1", "192.0.2.2"]);
        let current = Some(answer[1]);
        assert_eq!(choose(&mut answer, &V4, current, free), Choice::Keep);
        let mut answer = ips(&["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            choose(&mut answer, &V4, None, free),
            Choice::Move(answer[1])
        );
        // Rotated: the next server without an address gets the other one.
        assert_eq!(answer, ips(&["192.0.2.2", "192.0.2.1"]));
        assert_eq!(
            choose(&mut answer, &V4, None, free),
            Choice::Move(ips(&["192.0.2.2"])[0])
        );
    }

    #[test]
    fn family_and_network_preferences_rank_the_answer() {
        let free = |_| false;
        let mixed = ips(&["2001:db8::1", "192.0.2.1"]);
        assert_eq!(
            choose(&mut mixed.clone(), &V4, None, free),
            Choice::Move(mixed[1])
        );
        let v6 = Preferences {
            prefer_v6: true,
            ..V4
        };
        assert_eq!(
            choose(&mut mixed.clone(), &v6, None, free),
            Choice::Move(mixed[0])
        );
        let nets = [Network {
            addr: "198.51.100.0".parse().unwrap(),
            prefix: 24,
        }];
        let in_net = Preferences { nets: &nets, ..V4 };
        let mut answer = ips(&["192.0.2.1", "198.51.100.7", "192.0.2.2"]);
        assert_eq!(
            choose(&mut answer, &in_net, Some(ips(&["192.0.2.1"])[0]), free),
            Choice::Move(ips(&["198.51.100.7"])[0])
        );
        assert_eq!(choose(&mut [], &V4, None, free), Choice::NoAddress);
    }

    #[tokio::test]
    async fn only_the_queried_nameserver_with_the_right_id_is_believed() {
        let ns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ns_addr = ns.local_addr().unwrap();
        let q = question("kube-mast01");
        let (id, qname) = (q.id, q.name.clone());
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (n, client) = ns.recv_from(&mut buf).unwrap();
            let sent = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(sent.metadata.id, id);
            let q = Question {
                id,
                name: qname,
                qtype: RecordType::A,
                payload: 512,
                packet: vec![],
            };
            // A spoofer on another port answers first with the right id: dropped by the
            // connected socket.
            let spoofer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let forged = response(
                &q,
                ResponseCode::NoError,
                vec![a("kube-mast01", [198, 51, 100, 66])],
            );
            spoofer.send_to(&bytes(&forged), client).unwrap();
            // The nameserver itself with a stale id: ignored.
            let mut stale = forged.clone();
            stale.metadata.id = id.wrapping_add(7);
            ns.send_to(&bytes(&stale), client).unwrap();
            let good = response(
                &q,
                ResponseCode::NoError,
                vec![a("kube-mast01", [192, 0, 2, 10])],
            );
            ns.send_to(&bytes(&good), client).unwrap();
        });
        let got = query(ns_addr, &q, Duration::from_secs(5)).await;
        server.join().unwrap();
        assert_eq!(got, Ok(vec![IpAddr::from([192, 0, 2, 10])]));
    }

    /// A nameserver answering every query with `rcode` until the test ends; the number
    /// of queries it got.
    fn answering(rcode: ResponseCode) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let ns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = ns.local_addr().unwrap();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, client)) = ns.recv_from(&mut buf) {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                counted.fetch_add(1, Relaxed);
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.metadata.response_code = rcode;
                reply.add_queries(query.queries.clone());
                let _ = ns.send_to(&bytes(&reply), client);
            }
        });
        (addr, count)
    }

    #[tokio::test]
    async fn an_error_answer_asks_the_other_family_then_each_try_both_again() {
        let (addr, queries) = answering(ResponseCode::NXDomain);
        let nameservers = [Arc::new(Nameserver::new("ns".into(), addr))];
        let mut section = Resolvers::new("dns".into(), Default::default());
        section.resolve_retries = 2;
        section.timeout_retry = std::time::Duration::from_millis(50);
        let got = resolve(&nameservers, &section, &name("gone"), false).await;
        assert_eq!(got.map(|a| a.addresses), Err(DnsError::Nx));
        // HAProxy's: A, AAAA at once, then both again on the second try.
        assert_eq!(queries.load(Relaxed), 4);
        assert_eq!(nameservers[0].get(Counter::Sent), 4);
        assert_eq!(nameservers[0].get(Counter::Nx), 4);
        assert_eq!(nameservers[0].get(Counter::Valid), 0);
    }

    #[tokio::test]
    async fn silence_is_a_timeout() {
        let ns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let q = question("kube-mast01");
        let got = query(ns.local_addr().unwrap(), &q, Duration::from_millis(100)).await;
        assert_eq!(got, Err(DnsError::Timeout));
    }
}
