//! Runtime DNS for servers with `resolvers NAME`, with HAProxy 2.6's semantics.
//!
//! Servers that resolve the same name through the same section with the same family
//! preference share one resolution, as in HAProxy: every `timeout resolve` the name is
//! queried over UDP (`resolve_retries` rounds over the section's nameservers, `timeout retry`
//! each), the preferred family first (`resolve-prefer`, IPv6 by default) and the other when
//! that one fails or has no address. The answer is then offered to each server in turn. A
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
//! taken for the answer only when it is a response with the query's id and exactly the
//! query's question; anything else (spoofed, stale, larger than `accepted_payload_size`) is
//! ignored and the wait goes on. CNAME chains inside one answer are followed. A truncated
//! answer is an `other` failure: HAProxy 2.6 does not retry over TCP, neither does hapx.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Header, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
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
        eprintln!(
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
    // HAProxy keeps the name in lower case (but compares and answers with it as given). A
    // change of case alone names the same host: the resolution running goes on.
    if !old.eq_ignore_ascii_case(name) {
        let generation = server.set_host(&name.to_ascii_lowercase());
        if let Some((resolvers, dns_name)) = what_to_resolve(state, server) {
            let resolution = Resolution {
                resolvers: resolvers.clone(),
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
    let nameservers = nameservers(&res.resolvers);
    loop {
        if !res.keep_current() {
            return;
        }
        let outcome = resolve(&nameservers, &res.resolvers, &res.name, res.prefer_v6).await;
        // A name may have changed while the query ran.
        res.keep_current();
        match outcome {
            Ok(mut answer) => {
                // As HAProxy, the first server is told the nameserver that answered, the
                // others share the answer from its cache.
                let mut by = format!("{}/{}", res.resolvers.name, answer.nameserver);
                for index in 0..res.servers.len() {
                    let taken = records_taken(&res.servers, index);
                    let req = &mut res.servers[index];
                    req.last_valid = Instant::now();
                    apply_answer(req, &mut answer.addresses, res.prefer_v6, &by, &taken);
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
/// answer has none it may use.
fn apply_answer(
    req: &mut Requester,
    answer: &mut [IpAddr],
    prefer_v6: bool,
    by: &str,
    taken: &[IpAddr],
) {
    let server = &req.server;
    // As HAProxy, a server stays with the record it took its address from while that record
    // is answered, even when an operator moved it elsewhere since (`set server ... addr`).
    if req.resolved.is_some_and(|ip| answer.contains(&ip)) {
        return;
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
        Choice::Keep => {}
        Choice::Move(new) => {
            server.set_resolved_addr(Some(new));
            if let Some((backend, _)) = server.balancer() {
                transitions::report_resolved(&backend, server, current, new, by);
            }
        }
        // HAProxy's cause, its trailing space included.
        Choice::NoAddress if current.is_some() => {
            enter_resolution_maint(server, "No IP for server ")
        }
        Choice::NoAddress => {}
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

/// The section's nameservers by name; those of `parse-resolv-conf` are named after their
/// line, as HAProxy names them (`resolv.conf:LINE`).
fn nameservers(r: &Resolvers) -> Vec<Nameserver> {
    let mut list: Vec<Nameserver> = r.nameservers.clone();
    if r.parse_resolv_conf {
        if let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") {
            list.extend(text.lines().enumerate().filter_map(|(i, l)| {
                let mut w = l.split_whitespace();
                let ip = (w.next() == Some("nameserver"))
                    .then(|| w.next()?.parse::<IpAddr>().ok())
                    .flatten()?;
                Some((format!("resolv.conf:{}", i + 1), SocketAddr::new(ip, 53)))
            }));
        }
    }
    list
}

/// A nameserver's name and address.
type Nameserver = (String, SocketAddr);

/// A resolution's addresses and the name of the nameserver that gave them.
#[derive(Debug)]
pub struct Answer {
    pub addresses: Vec<IpAddr>,
    pub nameserver: String,
}

/// Resolves `name`: the preferred family first, the other when it has no address.
pub async fn resolve(
    nameservers: &[Nameserver],
    r: &Resolvers,
    name: &Name,
    prefer_v6: bool,
) -> Result<Answer, DnsError> {
    let order = if prefer_v6 {
        [RecordType::AAAA, RecordType::A]
    } else {
        [RecordType::A, RecordType::AAAA]
    };
    let mut first_err = DnsError::Other;
    for (i, qtype) in order.into_iter().enumerate() {
        match query_with_retries(nameservers, r, name, qtype).await {
            Ok(answer) if !answer.addresses.is_empty() => return Ok(answer),
            Ok(_) => {}
            Err(e) if i == 0 => first_err = e,
            Err(_) => {}
        }
    }
    Err(first_err)
}

async fn query_with_retries(
    nameservers: &[Nameserver],
    r: &Resolvers,
    name: &Name,
    qtype: RecordType,
) -> Result<Answer, DnsError> {
    let mut err = DnsError::Timeout;
    for _ in 0..r.resolve_retries.max(1) {
        for (ns_name, ns) in nameservers {
            let question = Question::new(name, qtype, r.accepted_payload_size)?;
            match query(*ns, &question, r.timeout_retry).await {
                Ok(addresses) => {
                    let nameserver = ns_name.clone();
                    return Ok(Answer {
                        addresses,
                        nameserver,
                    });
                }
                Err(e @ (DnsError::Nx | DnsError::Refused)) => return Err(e),
                Err(e) => err = e,
            }
        }
    }
    Err(err)
}

/// One query to one nameserver, waiting at most `timeout` for its answer.
pub async fn query(
    ns: SocketAddr,
    question: &Question,
    timeout: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    let bind: SocketAddr = if ns.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    // A fresh socket (random source port) connected to the nameserver: the kernel drops
    // datagrams from any other address or port.
    let sock = UdpSocket::bind(bind).await.map_err(|_| DnsError::Other)?;
    sock.connect(ns).await.map_err(|_| DnsError::Other)?;
    sock.send(&question.packet)
        .await
        .map_err(|_| DnsError::Other)?;
    // Room for any datagram, so an oversized one is recognised and dropped whole.
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            // ICMP unreachable: nobody answers there, as HAProxy sees it, a timeout.
            Ok(Err(_)) | Err(_) => return Err(DnsError::Timeout),
        };
        if let Some(result) = question.read_answer(&buf[..n]) {
            return result;
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

    /// What `packet` says to this question: `None` when it is not its answer (not a
    /// response, another id or question, undecodable, larger than the accepted payload).
    pub fn read_answer(&self, packet: &[u8]) -> Option<Result<Vec<IpAddr>, DnsError>> {
        if packet.len() > usize::from(self.payload.max(512)) {
            return None;
        }
        let mut decoder = BinDecoder::new(packet);
        let header = Header::read(&mut decoder).ok()?;
        let meta = &header.metadata;
        if meta.id != self.id || meta.message_type != MessageType::Response {
            return None;
        }
        if header.counts.queries != 1 {
            return None;
        }
        let query = Query::read(&mut decoder).ok()?;
        if query.name() != &self.name
            || query.query_type() != self.qtype
            || query.query_class() != DNSClass::IN
        {
            return None;
        }
        if let Some(e) = rcode_error(meta.response_code) {
            return Some(Err(e));
        }
        if meta.truncation {
            return Some(Err(DnsError::Truncated));
        }
        let Ok(msg) = Message::from_vec(packet) else {
            return Some(Err(DnsError::Other));
        };
        // EDNS may extend the response code past the header's four bits.
        if let Some(e) = rcode_error(msg.metadata.response_code) {
            return Some(Err(e));
        }
        Some(Ok(addresses(&msg.answers, &self.name, self.qtype)))
    }
}

fn rcode_error(code: ResponseCode) -> Option<DnsError> {
    match code {
        ResponseCode::NoError => None,
        ResponseCode::NXDomain => Some(DnsError::Nx),
        ResponseCode::Refused => Some(DnsError::Refused),
        _ => Some(DnsError::Other),
    }
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
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::rdata::{A, CNAME};

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
            Some(Ok(vec![IpAddr::from([192, 0, 2, 10])]))
        );
        // Names compare case-insensitively, as DNS does.
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![a("KUBE-Mast01", [192, 0, 2, 11])],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Some(Ok(vec![IpAddr::from([192, 0, 2, 11])]))
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
            Some(Ok(vec![IpAddr::from([192, 0, 2, 10])]))
        );
    }

    #[test]
    fn a_datagram_with_another_id_or_question_is_not_the_answer() {
        let q = question("kube-mast01");
        let good = vec![a("kube-mast01", [192, 0, 2, 10])];
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.metadata.id = q.id.wrapping_add(1);
        assert_eq!(q.read_answer(&bytes(&r)), None);
        // Same id, another name asked.
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.queries[0] = Query::query(name("kube-mast02"), RecordType::A);
        assert_eq!(q.read_answer(&bytes(&r)), None);
        // Same id and name, another type.
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.queries[0] = Query::query(q.name.clone(), RecordType::AAAA);
        assert_eq!(q.read_answer(&bytes(&r)), None);
        // No question at all, or two.
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.queries.clear();
        assert_eq!(q.read_answer(&bytes(&r)), None);
        let mut r = response(&q, ResponseCode::NoError, good.clone());
        r.add_query(Query::query(q.name.clone(), RecordType::A));
        assert_eq!(q.read_answer(&bytes(&r)), None);
        // A query, not a response (e.g. our own packet reflected).
        assert_eq!(q.read_answer(&q.packet), None);
        // Garbage and a bare header.
        assert_eq!(q.read_answer(&[0xde, 0xad]), None);
        assert_eq!(q.read_answer(&bytes(&r)[..12]), None);
    }

    #[test]
    fn an_answer_larger_than_the_accepted_payload_is_dropped() {
        let q = question("kube-mast01");
        let many = (0..40).map(|i| a("kube-mast01", [192, 0, 2, i])).collect();
        let big = bytes(&response(&q, ResponseCode::NoError, many));
        assert!(big.len() > 512);
        assert_eq!(q.read_answer(&big), None);
        let q = Question::new(&q.name, RecordType::A, 4096).unwrap();
        let many = (0..40).map(|i| a("kube-mast01", [192, 0, 2, i])).collect();
        let big = bytes(&response(&q, ResponseCode::NoError, many));
        assert_eq!(
            q.read_answer(&big).map(|r| r.map(|ips| ips.len())),
            Some(Ok(40))
        );
    }

    #[test]
    fn cname_chains_are_followed_within_the_answer() {
        let q = question("api");
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![
                cname("api", "lb.example"),
                a("unrelated.example", [198, 51, 100, 1]),
                cname("lb.example", "node.example"),
                a("node.example", [192, 0, 2, 20]),
                a("node.example", [192, 0, 2, 21]),
            ],
        );
        assert_eq!(
            q.read_answer(&bytes(&r)),
            Some(Ok(vec![
                IpAddr::from([192, 0, 2, 20]),
                IpAddr::from([192, 0, 2, 21])
            ]))
        );
        // A chain that loops or ends without an address gives no address.
        let r = response(
            &q,
            ResponseCode::NoError,
            vec![cname("api", "b.example"), cname("b.example", "api")],
        );
        assert_eq!(q.read_answer(&bytes(&r)), Some(Ok(vec![])));
    }

    #[test]
    fn failures_map_to_the_hold_statuses() {
        let q = question("kube-mast01");
        let cases = [
            (ResponseCode::NXDomain, DnsError::Nx, "nx"),
            (ResponseCode::Refused, DnsError::Refused, "refused"),
            (ResponseCode::ServFail, DnsError::Other, "other"),
        ];
        for (rcode, err, hold) in cases {
            let r = response(&q, rcode, vec![]);
            assert_eq!(q.read_answer(&bytes(&r)), Some(Err(err)));
            assert_eq!(err.hold_status(), hold);
        }
        let mut r = response(
            &q,
            ResponseCode::NoError,
            vec![a("kube-mast01", [192, 0, 2, 1])],
        );
        r.metadata.truncation = true;
        assert_eq!(q.read_answer(&bytes(&r)), Some(Err(DnsError::Truncated)));
        assert_eq!(DnsError::Truncated.hold_status(), "other");
        // A truncated answer cut in the middle of a record is still recognised.
        let cut = bytes(&r);
        assert_eq!(
            q.read_answer(&cut[..cut.len() - 3]),
            Some(Err(DnsError::Truncated))
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

    #[tokio::test]
    async fn silence_is_a_timeout() {
        let ns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let q = question("kube-mast01");
        let got = query(ns.local_addr().unwrap(), &q, Duration::from_millis(100)).await;
        assert_eq!(got, Err(DnsError::Timeout));
    }
}
