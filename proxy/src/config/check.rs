//! Checks that need the whole configuration, as HAProxy runs them after reading: references
//! between sections, mode consistency, the ids of proxies and servers (custom `id`s kept, the
//! others numbered as HAProxy numbers them) and the first address of each server
//! (`init-addr`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

pub mod protocol;

use super::bind_tls;
use super::check_order::{CommentCarry, RuleAction};
use super::diag::Diags;
use super::model::*;

/// Checks `config`, fixing what HAProxy fixes with a warning (e.g. `httplog` in TCP mode).
pub fn check(config: &mut Config, diags: &mut Diags) {
    // HAProxy resolves userlists first and checks nothing more when that fails.
    if !super::userlist::resolve(&mut config.userlists, diags) {
        return;
    }
    super::userlist::check_references(config, diags);
    super::errors::resolve(config, diags);
    let backends: Vec<(String, Mode, Place)> = config
        .proxies
        .iter()
        .filter(|p| p.kind.is_backend())
        .map(|p| (p.name.clone(), p.mode, p.place.clone()))
        .collect();
    let resolvers: Vec<String> = config.resolvers.iter().map(|r| r.name.clone()).collect();
    let inspecting: Vec<String> = (config.proxies.iter())
        .filter(|p| p.kind.is_backend() && !p.rules.tcp_content.is_empty())
        .map(|p| p.name.clone())
        .collect();
    let named: Vec<_> = config
        .proxies
        .iter()
        .map(|p| {
            let servers = p.servers.iter().map(|s| s.name.clone()).collect();
            (p.name.clone(), p.kind, p.mode, p.place.clone(), servers)
        })
        .collect();
    // HAProxy's runtime API frontend (`GLOBAL`, made by a `stats socket`, `timeout` or
    // `maxconn` line) takes id 1, before the proxies.
    let first_id = if config.global.cli_maxconn.is_some() {
        2
    } else {
        1
    };
    assign_proxy_ids(&mut config.proxies, first_id, diags);
    check_tracking(&config.proxies, diags);
    check_agent_ports(&config.proxies, diags);
    super::stick::check(config, diags);
    for p in &mut config.proxies {
        external_check(p, &config.global, diags);
        email_alert(p, &config.mailers, diags);
        if p.kind.is_frontend() {
            check_default_backend(p, &backends, diags);
        }
        super::rules::check(p, &named, diags);
        if p.kind.is_frontend() {
            check_frontend(p, diags);
            inspection_under_tls(p, &inspecting, diags);
            alpn_spoken(p, diags);
        }
        if p.kind.is_backend() {
            check_backend(p, &resolvers, diags);
            if p.load_server_state == ServerStateSource::Global
                && config.global.server_state_file.is_none()
            {
                diags.global_warn(format!("backend '{}' configured to load server state file from global section 'server-state-file' directive. Unfortunately, 'server-state-file' is not set!", p.name));
                p.load_server_state = ServerStateSource::None;
            }
            server_tls(p, &config.global, diags);
        }
        unused_tcp_check_rules(p, diags);
        if p.stats.enabled && p.mode != Mode::Http {
            // Without a place, as HAProxy's.
            diags.global_warn(format!(
                "'stats' statement ignored for {} '{}' as it requires HTTP mode.",
                p.kind.type_str(),
                p.name
            ));
            p.stats.enabled = false;
        }
        super::rules::warn_http_only(p, diags);
    }
    check_ring_logs(config, diags);
    super::logging::check_rings(&config.rings, diags);
    // After the proxies, whose log formats are compiled by now.
    super::stick::check_fetch_tables(config, diags);
    for r in &config.resolvers {
        if r.nameservers.is_empty() && !r.parse_resolv_conf {
            diags.check_alert(
                &r.place,
                format!("resolvers '{}' has no nameserver.", r.name),
            );
        }
    }
    // HAProxy's `init_srv_check` runs once the whole configuration is valid.
    let mut default_ruleset_used = false;
    for p in config.proxies.iter().filter(|p| p.kind.is_backend()) {
        check_ports(p, &mut default_ruleset_used, diags);
    }
}

/// `log ring@NAME` lines must name a `ring` section, in HAProxy's words (which it says at
/// start-up; hapx at once).
fn check_ring_logs(config: &Config, diags: &mut Diags) {
    let known = |name: &str| config.rings.iter().any(|r| r.name == name);
    let at = |place: &Place| {
        let text = place.to_string();
        let (file, line) = text.rsplit_once(':').unwrap_or((&text, ""));
        format!("in file '{file}' at line {line}")
    };
    for log in config.global.ring_logs.iter().filter(|l| !known(&l.ring)) {
        diags.global_alert(format!(
            "global log server declared {} uses unknown ring named '{}'.",
            at(&log.place),
            log.ring
        ));
    }
    for p in &config.proxies {
        for log in p.log.rings.iter().filter(|l| !known(&l.ring)) {
            diags.global_alert(format!(
                "log server declared in proxy section '{}' {} uses unknown ring named '{}'.",
                p.name,
                at(&log.place),
                log.ring
            ));
        }
    }
}

/// `email-alert`: HAProxy's verdicts (an incomplete set is warned about and dropped, a
/// complete one must name a `mailers` section); hapx sends no mail, and says so once for a
/// set HAProxy would use.
fn email_alert(p: &Proxy, mailers: &[String], diags: &mut Diags) {
    let alert = &p.email_alert;
    if !alert.set {
        return;
    }
    let (kind, name) = (p.kind.type_str(), &p.name);
    let (Some(section), Some(_), Some(_)) = (&alert.mailers, &alert.from, &alert.to) else {
        diags.global_warn(format!(
            "'email-alert' will be ignored for {kind} '{name}' (the presence any of 'email-alert from', 'email-alert level' 'email-alert mailers', 'email-alert myhostname', or 'email-alert to' requires each of 'email-alert from', 'email-alert mailers' and 'email-alert to' to be present)."
        ));
        return;
    };
    if !mailers.contains(section) {
        diags.global_alert(format!(
            "Proxy '{name}': unable to find mailers '{section}'."
        ));
    } else if let Some(place) = &alert.place {
        diags.warn(
            place,
            format!("'email-alert' is not implemented by hapx and is ignored: no mail is sent when a server of {kind} '{name}' changes state."),
        );
    }
}

/// `option external-check`: HAProxy's verdicts (the global `external-check` and an
/// `external-check command` are required, `insecure-fork-wanted` advised). hapx runs no
/// external command: with a checked server, the configuration is refused at the option's
/// line, since its servers would otherwise stay UP unchecked; with none, it is inert.
fn external_check(p: &Proxy, g: &super::model::Global, diags: &mut Diags) {
    let Some(place) = &p.options.external_check else {
        return;
    };
    let name = &p.name;
    let option = "option external-check";
    let mut refused = false;
    if !g.external_check {
        diags.global_alert(format!(
            "Proxy '{name}' : '{option}' unable to find required 'global.external-check'."
        ));
        refused = true;
    }
    if p.external_check_command.is_none() {
        diags.global_alert(format!(
            "Proxy '{name}' : '{option}' unable to find required 'external-check command'."
        ));
        refused = true;
    }
    if !g.insecure_fork_wanted {
        diags.global_warn(format!(
            "Proxy '{name}' : 'insecure-fork-wanted' not enabled in the global section, '{option}' will likely fail."
        ));
    }
    if refused {
        return;
    }
    if p.servers.iter().any(|s| s.opts.check) {
        diags.alert(
            place,
            format!(
                "'{option}' is not implemented by hapx: the checked servers of {} '{name}' would stay UP unchecked.",
                p.kind.type_str()
            ),
        );
    } else {
        diags.warn(
            place,
            format!(
                "'{option}' is not implemented by hapx and is ignored ({} '{name}' checks no server).",
                p.kind.type_str()
            ),
        );
    }
}

/// A checked server must have a port to check: its own, a check `port`, or, with
/// `tcp-check` rules, one on every `connect` rule, the first rule being one (HAProxy's
/// `init_srv_check` and its three alerts, by what the backend's ruleset holds).
fn check_ports(p: &Proxy, default_ruleset_used: &mut bool, diags: &mut Diags) {
    let portless = |port: Option<u16>| port.is_none_or(|port| port == 0);
    let ruleset = CheckRuleset::of(p, default_ruleset_used);
    let checked_without_port = (p.servers.iter())
        .filter(|s| s.opts.check && portless(s.opts.check_port) && portless(s.port));
    for s in checked_without_port {
        let (kind, name) = (p.kind.type_str(), &p.name);
        let start = format!(
            "config: {kind} '{name}': server '{}' has neither service port nor check port",
            s.name
        );
        let mut rules = (p.tcp_checks.iter()).filter(|r| !matches!(r, TcpCheckRule::Comment(_)));
        let connect_port = |rule: Option<&TcpCheckRule>| match rule {
            Some(TcpCheckRule::Connect(c)) => !portless(c.port),
            _ => false,
        };
        let nor_rule = || format!("{start} nor tcp_check rule 'connect' with port information.");
        let message = match ruleset {
            CheckRuleset::Empty => format!("{start}."),
            CheckRuleset::ImplicitConnect => nor_rule(),
            CheckRuleset::Rules if !connect_port(rules.next()) => nor_rule(),
            CheckRuleset::Rules => {
                if !rules.any(|r| matches!(r, TcpCheckRule::Connect(_)) && !connect_port(Some(r))) {
                    continue;
                }
                format!("{start}, and a tcp_check rule 'connect' with no port information.")
            }
        };
        diags.global_alert(message);
    }
}

/// What a backend's check ruleset holds when HAProxy validates its servers' ports.
#[derive(Clone, Copy)]
enum CheckRuleset {
    /// Nothing: `option tcp-check` without rules, or the default ruleset HAProxy shares
    /// between the backends without a check option, as the first of them finds it.
    Empty,
    /// An implicit connect without a port first: a protocol check (`httpchk`,
    /// `ssl-hello-chk`...), or the shared default ruleset once a backend before took it.
    ImplicitConnect,
    /// The backend's own `tcp-check` rules.
    Rules,
}

impl CheckRuleset {
    fn of(p: &Proxy, default_ruleset_used: &mut bool) -> CheckRuleset {
        let o = &p.options;
        let protocol_check = o.httpchk.is_some() || o.ssl_hello_chk || o.protocol_check.is_some();
        if protocol_check {
            CheckRuleset::ImplicitConnect
        } else if !o.tcp_check {
            match std::mem::replace(default_ruleset_used, true) {
                true => CheckRuleset::ImplicitConnect,
                false => CheckRuleset::Empty,
            }
        } else if p.tcp_checks.is_empty() {
            CheckRuleset::Empty
        } else {
            CheckRuleset::Rules
        }
    }
}

/// Numbers proxies as HAProxy does, from `first_id`, and the servers of each from 1; a
/// custom id used twice is an error.
fn assign_proxy_ids(proxies: &mut [Proxy], first_id: usize, diags: &mut Diags) {
    let mut seen: BTreeMap<usize, &Proxy> = BTreeMap::new();
    for p in proxies.iter() {
        let Some(id) = p.forced_id else { continue };
        match seen.get(&id) {
            Some(first) => diags.check_alert(
                &p.place,
                format!(
                    "{} {} reuses same custom id as {} {} (declared at {}).",
                    p.kind.keyword(),
                    p.name,
                    first.kind.keyword(),
                    first.name,
                    first.place
                ),
            ),
            None => {
                seen.insert(id, p);
            }
        }
    }
    let forced: Vec<Option<usize>> = proxies.iter().map(|p| p.forced_id).collect();
    for (p, id) in proxies.iter_mut().zip(number(&forced, first_id)) {
        p.id = id;
        assign_server_ids(p, diags);
    }
}

fn assign_server_ids(p: &mut Proxy, diags: &mut Diags) {
    let mut seen: BTreeMap<usize, &Server> = BTreeMap::new();
    for s in &p.servers {
        let Some(id) = s.opts.forced_id else { continue };
        match seen.get(&id) {
            Some(first) => diags.check_alert(
                &s.place,
                format!(
                    "'server {}/{}' : 'id' : custom id {id} already used at {} ('server {}').",
                    p.name, s.name, first.place, first.name
                ),
            ),
            None => {
                seen.insert(id, s);
            }
        }
    }
    let forced: Vec<Option<usize>> = p.servers.iter().map(|s| s.opts.forced_id).collect();
    for (s, id) in p.servers.iter_mut().zip(number(&forced, 1)) {
        s.id = id;
    }
}

/// HAProxy's numbering: a custom id is kept, the others take the first id not taken from a
/// counter that starts at `first` and moves on one per item (past the id found, for those).
fn number(forced: &[Option<usize>], first: usize) -> Vec<usize> {
    let mut taken: BTreeSet<usize> = forced.iter().flatten().copied().collect();
    let mut next = first;
    forced
        .iter()
        .map(|custom| {
            let id = custom.unwrap_or_else(|| {
                while taken.contains(&next) {
                    next += 1;
                }
                taken.insert(next);
                next
            });
            next += 1;
            id
        })
        .collect()
}

/// `tcp-request content` rules of a TCP frontend, and of every backend it may hand a
/// connection to (`default_backend`, `use_backend`), see what the client sends, which on an
/// `ssl` bind HAProxy decrypts first: hapx inspects the socket itself and would read the
/// encrypted bytes, so the combination is refused rather than matched on ciphertext.
/// `inspecting`: the backends with such rules.
fn inspection_under_tls(p: &Proxy, inspecting: &[String], diags: &mut Diags) {
    let tls = p.binds.iter().find(|b| b.tls.is_some());
    let (Some(bind), Mode::Tcp) = (tls, p.mode) else {
        return;
    };
    if !p.rules.tcp_content.is_empty() {
        diags.check_alert(
            &bind.place,
            format!(
                "{} '{}': 'tcp-request content' rules on a TCP frontend with 'ssl' binds are not supported by hapx yet.",
                p.kind.keyword(),
                p.name
            ),
        );
    }
    let targets = (p.default_backend.iter().map(|(name, _)| name))
        .chain(p.rules.use_backends.iter().map(|u| &u.backend))
        // A dynamic `use_backend` may choose any backend.
        .chain(
            inspecting
                .iter()
                .filter(|_| super::rules::dynamic_switching(p)),
        );
    let mut named = BTreeSet::new();
    for name in targets.filter(|n| *n != &p.name && inspecting.contains(n)) {
        if named.insert(name) {
            diags.check_alert(
                &bind.place,
                format!(
                    "{} '{}': 'tcp-request content' rules of backend '{name}' behind a TCP frontend with 'ssl' binds are not supported by hapx yet.",
                    p.kind.keyword(),
                    p.name
                ),
            );
        }
    }
}

/// An HTTP frontend's `ssl` binds advertise only the protocols hapx speaks there (HTTP/1
/// and HTTP/2, `runtime::h2`): a client told another one (`h3`) would speak it to a proxy
/// that answers it with a 400.
fn alpn_spoken(p: &mut Proxy, diags: &mut Diags) {
    if p.mode != Mode::Http {
        return;
    }
    let spoken = |proto: &[u8]| matches!(proto, b"h2" | b"http/1.1" | b"http/1.0");
    // Binds of one line (`bind A,B`) share their TLS server: one warning, one replacement.
    let mut replaced: Vec<(*const bind_tls::TlsServer, Arc<bind_tls::TlsServer>)> = Vec::new();
    for bind in &mut p.binds {
        let Some(tls) = &bind.tls else { continue };
        let key = Arc::as_ptr(tls);
        if let Some((_, done)) = replaced.iter().find(|(k, _)| *k == key) {
            bind.tls = Some(done.clone());
            continue;
        }
        let Some((spoken, dropped)) = tls.without_protocols(spoken) else {
            continue;
        };
        diags.warn(
            &bind.place,
            format!(
                "'bind {}' : 'alpn' : hapx speaks HTTP/1 and HTTP/2 only in 'mode http': '{}' is not advertised.",
                bind.spec,
                dropped.join(",")
            ),
        );
        let spoken = Arc::new(spoken);
        replaced.push((key, spoken.clone()));
        bind.tls = Some(spoken);
    }
}

/// `default_backend`: the backend exists, is not the proxy itself, and speaks HTTP when
/// the frontend does (a TCP frontend's connections turn to HTTP in an HTTP backend, as in
/// HAProxy: no warning). Checked before the `use_backend` rules, in HAProxy's order.
fn check_default_backend(p: &Proxy, backends: &[(String, Mode, Place)], diags: &mut Diags) {
    let Some((name, _)) = &p.default_backend else {
        return;
    };
    // Named without the line of the `default_backend`, as HAProxy's.
    match backends.iter().find(|(n, _, _)| n == name) {
        None => diags.global_alert(format!(
            "Proxy '{}': unable to find required default_backend: '{name}'.",
            p.name
        )),
        Some(_) if *name == p.name && p.kind.is_backend() => diags.global_alert(format!(
            "Proxy '{}': loop detected for default_backend: '{name}'.",
            p.name
        )),
        Some((_, Mode::Tcp, bplace)) if p.mode == Mode::Http => diags.global_alert(format!(
            "http frontend '{}' ({}) tries to use incompatible tcp backend '{name}' ({bplace}) as its default backend (see 'mode').",
            p.name, p.place
        )),
        Some(_) => {}
    }
}

fn check_frontend(p: &mut Proxy, diags: &mut Diags) {
    // Only a warning: the frontend then takes no connection, and `-c` exits 2 when no
    // proxy listens at all (`cli::check_outcome`).
    if p.binds.is_empty() && !p.disabled {
        diags.global_warn(format!(
            "{} '{}' has no 'bind' directive. Please declare it as a backend if this was intended.",
            p.kind.type_str(),
            p.name
        ));
    }
    unused_http_check_rules(p, diags);
    // One alert per `bind` line, naming its addresses as written.
    let mut lines: Vec<(&Place, MuxProto, Vec<&str>)> = Vec::new();
    for bind in &p.binds {
        let Some(proto) = bind.proto.filter(|proto| !proto.usable_in(p.mode)) else {
            continue;
        };
        match lines.last_mut() {
            Some((place, _, specs)) if *place == &bind.place => {
                if !specs.contains(&bind.spec.as_str()) {
                    specs.push(&bind.spec);
                }
            }
            _ => lines.push((&bind.place, proto, vec![&bind.spec])),
        }
    }
    for (place, proto, specs) in lines {
        diags.global_alert(format!(
            "{} '{}' : MUX protocol '{}' is not usable for 'bind {}' at [{place}].",
            p.kind.keyword(),
            p.name,
            proto.name(),
            specs.join(",")
        ));
    }
    // HAProxy names its log format's line, which a later rule's format moves
    // (`parse::note_log_format_line`).
    if p.mode != Mode::Http && std::mem::take(&mut p.rules.formats_use_http) {
        if let Some(place) = super::logging::noted_format_place(p).cloned() {
            diags.warn(
                &place,
                format!(
                    "HTTP log/header format not usable with {} '{}' (needs 'mode http').",
                    p.kind.type_str(),
                    p.name
                ),
            );
        }
    }
    if let Some(place) = p.options.httplog.clone() {
        if p.mode != Mode::Http {
            diags.warn(
                &place,
                format!("'option httplog' not usable with {} '{}' (needs 'mode http'). Falling back to 'option tcplog'.", p.kind.keyword(), p.name),
            );
            p.options.httplog = None;
            p.options.tcplog = Some(place);
        }
    }
    super::logging::compile(p, diags);
    if p.timeouts.client.is_none() && !p.disabled {
        diags.global_warn(missing_timeouts(p.kind.type_str(), &p.name));
    }
}

/// `http-check` rules without `option httpchk`: HAProxy ignores them, and says so for a
/// proxy's own, whatever its side (before its missing timeouts).
fn unused_http_check_rules(p: &mut Proxy, diags: &mut Diags) {
    if std::mem::take(&mut p.options.http_check_without_httpchk) {
        // HAProxy says so only for a proxy's own rules, not those of its defaults.
        let own = (p.options.httpchk.as_ref()).is_some_and(|h| h.order.written_in(&p.place));
        if own {
            diags.global_warn(format!(
                "{} '{}' uses http-check rules without 'option httpchk', so the rules are ignored.",
                p.kind.type_str(),
                p.name
            ));
        }
        p.options.httpchk = None;
    }
}

/// `tcp-check` rules of the proxy's own without `option tcp-check`: ignored, with HAProxy's
/// warning (after its missing timeouts).
fn unused_tcp_check_rules(p: &mut Proxy, diags: &mut Diags) {
    if std::mem::take(&mut p.options.tcp_check_without_option) && !p.options.tcp_check {
        diags.global_warn(format!(
            "{} '{}' uses tcp-check rules without 'option tcp-check', so the rules are ignored.",
            p.kind.type_str(),
            p.name
        ));
    }
}

/// HAProxy's warning about a proxy without the timeouts it needs, on four lines.
fn missing_timeouts(kind: &str, name: &str) -> String {
    format!(
        "missing timeouts for {kind} '{name}'.\n   \
         | While not properly invalid, you will certainly encounter various problems\n   \
         | with such a configuration. To fix this, please ensure that all following\n   \
         | timeouts are set to a non-zero value: 'client', 'connect', 'server'."
    )
}

/// Servers named as an earlier one of the same proxy, as HAProxy finds them once the
/// file is read (worded as while reading).
fn duplicate_servers(p: &Proxy, diags: &mut Diags) {
    let mut first_of: BTreeMap<&str, &Server> = BTreeMap::new();
    for s in &p.servers {
        match first_of.get(s.name.as_str()) {
            Some(first) => diags.global_alert(format!(
                "parsing [{}] : {} '{}', another server named '{}' was already defined at line {}, please use distinct names.",
                s.place,
                p.kind.type_str(),
                p.name,
                s.name,
                first.place.line
            )),
            None => {
                first_of.insert(&s.name, s);
            }
        }
    }
}

fn check_backend(p: &mut Proxy, resolvers: &[String], diags: &mut Diags) {
    duplicate_servers(p, diags);
    let label = p.name.clone();
    carry_tcp_check_comments(&mut p.tcp_checks);
    // A listen section's were said with its frontend side.
    unused_http_check_rules(p, diags);
    let kind = p.kind.type_str();
    if p.mode != Mode::Http && p.balance.needs_http() {
        diags.global_warn(format!(
            "Layer 7 hash not possible for {kind} '{label}' (needs 'mode http'). Falling back to round robin."
        ));
        p.balance = Balance::RoundRobin;
    }
    if let Balance::Hash(fetch, expr) = &p.balance {
        if p.mode == Mode::Http && fetch.layer() == super::acl::Layer::L6 {
            diags.global_warn(format!(
                "{kind} '{label}' [{}]: L6 sample fetch <{expr}> will be ignored in 'balance hash' expression in HTTP mode.",
                p.place
            ));
        }
    }
    if !p.kind.is_frontend()
        && !p.disabled
        && (p.timeouts.connect.is_none() || p.timeouts.server.is_none())
    {
        diags.global_warn(missing_timeouts("backend", &label));
    }
    for s in &mut p.servers {
        // HAProxy's `check_config_validity`: a server's `proto` must suit its proxy's mode.
        if s.opts.proto_h2 && p.mode != Mode::Http {
            diags.global_alert(format!(
                "{} '{label}' : MUX protocol 'h2' is not usable for server '{}' at [{}].",
                p.kind.keyword(),
                s.name,
                s.place
            ));
        }
        // HAProxy's `init_srv_check`: h1 and h2 are HTTP muxes, for HTTP checks only.
        if s.opts.check && s.opts.check_proto_h2.is_some() && p.options.httpchk.is_none() {
            diags.global_alert(format!(
                "config: {} '{label}': server '{}' uses an incompatible MUX protocol for the selected check type",
                p.kind.keyword(),
                s.name
            ));
        }
        if let Some(r) = &s.opts.resolvers {
            if !resolvers.contains(r) {
                diags.global_alert(format!(
                    "{kind} '{label}', server '{}': unable to find required resolvers '{r}'",
                    s.name
                ));
            }
        }
        initial_address(s);
    }
}

/// Builds the TLS client side of each server whose traffic or checks use TLS.
/// Gives each `tcp-check comment`'s text to the rules after it that have none, as HAProxy's
/// `check_proxy_tcpcheck` does (see [`CommentCarry`]).
fn carry_tcp_check_comments(rules: &mut [TcpCheckRule]) {
    let mut carry = CommentCarry::default();
    for rule in rules {
        match rule {
            TcpCheckRule::Comment(text) => {
                carry.next(RuleAction::Comment, Some(text));
            }
            TcpCheckRule::Connect(connect) => {
                let comment = carry.next(RuleAction::Connect, None);
                connect.comment = connect.comment.take().or(comment);
            }
            TcpCheckRule::Send(_) | TcpCheckRule::SendFormat { .. } => {
                carry.next(RuleAction::Send, None);
            }
            TcpCheckRule::Expect(expect) => {
                let comment = carry.next(RuleAction::Expect, None);
                expect.report.comment = expect.report.comment.take().or(comment);
            }
            TcpCheckRule::Var(_) => {
                carry.next(RuleAction::Var, None);
            }
        }
    }
}

fn server_tls(p: &mut Proxy, g: &Global, diags: &mut Diags) {
    let bases = super::tls::Bases {
        ca: g.ca_base.as_deref(),
        crt: g.crt_base.as_deref(),
        verify_none: g.ssl_server_verify_none,
    };
    let checks_tls = check_tls_rules(p);
    for s in &mut p.servers {
        let tls = &s.opts.tls;
        let checked_tls = s.opts.check && (checks_tls || tls.check_uses_ssl());
        if !tls.ssl && !checked_tls {
            continue;
        }
        match super::tls::build(&with_global_defaults(tls, g), bases) {
            Ok(client) => s.opts.tls.client = Some(std::sync::Arc::new(client)),
            Err(e) => diags.check_alert(&s.place, format!("'server {}/{}' : {e}", p.name, s.name)),
        }
    }
}

/// A server's TLS settings, its versions completed by `ssl-default-server-options`.
fn with_global_defaults(tls: &ServerTls, g: &Global) -> ServerTls {
    let mut tls = tls.clone();
    tls.versions = tls.versions.with_defaults(&g.ssl_default_server.versions);
    tls
}

/// Whether the backend's check rules ask for TLS themselves (`connect ... ssl`).
fn check_tls_rules(p: &Proxy) -> bool {
    match &p.options.httpchk {
        Some(http) => (http.groups.iter()).any(|g| g.connect.as_ref().is_some_and(|c| c.ssl)),
        None => {
            p.options.tcp_check
                && p.tcp_checks
                    .iter()
                    .any(|r| matches!(r, TcpCheckRule::Connect(c) if c.ssl))
        }
    }
}

/// A server written with an IP address has it from the start. A name is resolved later,
/// by its `init-addr` methods, once the server-state files are read
/// (`runtime::server_state`): as HAProxy's `srv_init_addr` runs after them, `init-addr
/// last` can take the address a file kept.
fn initial_address(s: &mut Server) {
    if let Ok(ip) = s.host.parse::<IpAddr>() {
        s.addr = Some(ip);
    }
}

/// Resolves `host` with the system resolver, preferring one address family.
pub fn resolve_libc(host: &str, prefer_v6: bool) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = (host, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    addrs
        .iter()
        .find(|ip| ip.is_ipv6() == prefer_v6)
        .or_else(|| addrs.first())
        .copied()
}

/// `agent-check` needs a port: `agent-port`, or the server line's `port` (HAProxy's alert,
/// a fatal error).
fn check_agent_ports(proxies: &[Proxy], diags: &mut Diags) {
    for p in proxies {
        for s in &p.servers {
            let agent = &s.opts.agent;
            if agent.enabled && agent.port.or(s.opts.check_port).is_none_or(|p| p == 0) {
                diags.check_alert(
                    &s.place,
                    format!(
                        "'server {}/{}' : server {} does not have agent port. Agent check has been disabled.",
                        p.name, s.name, s.name
                    ),
                );
            }
        }
    }
}

/// `track`: as HAProxy's `srv_apply_track`, in the order of the servers: the proxy and the
/// server must exist, the server must be checked or track one itself, and a chain of
/// servers tracking each other must not loop (found on the server closing the loop, the
/// chains resolved so far being followed).
fn check_tracking(proxies: &[Proxy], diags: &mut Diags) {
    let mut resolved: BTreeMap<(&str, &str), (&str, &str)> = BTreeMap::new();
    for p in proxies {
        for s in &p.servers {
            let Some((proxy, server)) = &s.opts.track else {
                continue;
            };
            let me = (p.name.as_str(), s.name.as_str());
            let fail = |diags: &mut Diags, why: String| {
                diags.check_alert(&s.place, format!("'server {}/{}' : {why}", me.0, me.1));
            };
            let proxy = proxy.as_deref().unwrap_or(&p.name);
            let Some(tp) = proxies
                .iter()
                .find(|x| x.name == proxy && x.kind.is_backend())
            else {
                fail(
                    diags,
                    format!("unable to find required proxy '{proxy}' for tracking."),
                );
                continue;
            };
            let Some(target) = tp.servers.iter().find(|x| &x.name == server) else {
                fail(
                    diags,
                    format!("unable to find required server '{server}' for tracking."),
                );
                continue;
            };
            let them = (tp.name.as_str(), target.name.as_str());
            let mut at = Some(them);
            while let Some(link) = at.filter(|&l| l != me) {
                at = resolved.get(&link).copied();
            }
            if at == Some(me) {
                fail(
                    diags,
                    format!(
                        "unable to track {}/{} as it belongs to a tracking chain looping back to {}/{}.",
                        them.0, them.1, me.0, me.1
                    ),
                );
                continue;
            }
            if !target.opts.check && !target.opts.agent.enabled && target.opts.track.is_none() {
                fail(
                    diags,
                    format!(
                        "unable to use {}/{} for tracking as it does not have any check nor agent enabled.",
                        them.0, them.1
                    ),
                );
                continue;
            }
            resolved.insert(me, them);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::number;
    use super::{Global, ServerTls, TlsVersion, with_global_defaults};

    #[test]
    fn global_tls_versions_fill_what_servers_leave_unset() {
        let mut g = Global::default();
        g.ssl_default_server.versions.min = Some(TlsVersion::Tls13);
        g.ssl_default_server
            .versions
            .disabled
            .push(TlsVersion::Tls12);
        let unset = with_global_defaults(&ServerTls::default(), &g);
        assert_eq!(unset.versions.min, Some(TlsVersion::Tls13));
        assert_eq!(unset.versions.disabled, [TlsVersion::Tls12]);
        let mut own = ServerTls::default();
        own.versions.min = Some(TlsVersion::Tls12);
        assert_eq!(
            with_global_defaults(&own, &g).versions.min,
            Some(TlsVersion::Tls12)
        );
    }

    /// What HAProxy 2.6 shows in `show stat` for servers s1, s2 `id 1`, s3 of one backend,
    /// and for proxies f1, b1 `id 3`, l1 after its CLI proxy.
    #[test]
    fn numbers_like_haproxy() {
        assert_eq!(number(&[None, Some(1), None], 1), [2, 1, 4]);
        assert_eq!(number(&[None, Some(3), None], 2), [2, 3, 4]);
        assert_eq!(number(&[None, None, None], 1), [1, 2, 3]);
    }
}
