//! Adapting the seed's files to the demo's network, changing as little as possible.
//!
//! The crm script keeps every line; only the IPaddr2 primitive's address, broadcast, netmask
//! and interface move to the demo network, and the haproxy primitive gets the parameters that
//! point it at the demo's configuration, hapx-proxy and a pid file. `haproxy.cfg` keeps its
//! sections, frontends, balancing, checks and stats page; the servers' names (resolved through
//! the seed's DNS server) become the demo backends' addresses, and what would reach outside
//! the demo (syslog, chroot, the DNS server, the admin socket's system path) is dropped or
//! moved into the demo directory. Each change is listed so the demo can show it.

use std::net::Ipv4Addr;

/// Where the demo puts the VIP.
#[derive(Debug, Clone)]
pub struct VipPlan {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub broadcast: Ipv4Addr,
    pub nic: String,
}

/// The crm script, adapted.
#[derive(Debug, Clone)]
pub struct Script {
    pub text: String,
    pub changes: Vec<String>,
    /// The IPaddr2 primitive's id.
    pub vip_id: String,
    /// The haproxy primitive's id.
    pub proxy_id: String,
}

/// `haproxy.cfg`, adapted.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub text: String,
    pub changes: Vec<String>,
    /// Server names in order, with their ports.
    pub servers: Vec<(String, u16)>,
    /// The first frontend's port.
    pub frontend_port: u16,
    /// The stats page's port and `user:password`, when there is one.
    pub stats: Option<(u16, Option<String>)>,
}

fn agent_of(tokens: &[&str]) -> Option<String> {
    tokens
        .get(2)
        .map(|a| a.rsplit(':').next().unwrap_or(a).to_string())
}

/// Adapts the seed's crm script. `proxy_params` are added to the haproxy primitive.
pub fn adapt_script(
    text: &str,
    vip: &VipPlan,
    proxy_params: &[(&str, String)],
) -> Result<Script, String> {
    let mut out = Vec::new();
    let mut changes = Vec::new();
    let (mut vip_id, mut proxy_id) = (None, None);
    for (n, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() != Some(&"primitive") {
            out.push(line.to_string());
            continue;
        }
        let id = tokens.get(1).copied().unwrap_or("").to_string();
        match agent_of(&tokens).as_deref() {
            Some("IPaddr2") => {
                let replaced: Vec<String> = tokens
                    .iter()
                    .map(|t| match t.split_once('=') {
                        Some(("ip", _)) => format!("ip={}", vip.address),
                        Some(("broadcast", _)) => format!("broadcast={}", vip.broadcast),
                        Some(("cidr_netmask", _)) => format!("cidr_netmask={}", vip.prefix_len),
                        Some(("nic", _)) => format!("nic={}", vip.nic),
                        _ => t.to_string(),
                    })
                    .collect();
                for (old, new) in tokens.iter().zip(&replaced) {
                    if *old != new {
                        changes.push(format!("configure.crm:{}: {old} -> {new}", n + 1));
                    }
                }
                out.push(replaced.join(" "));
                vip_id = Some(id);
            }
            Some("haproxy") => {
                let added: Vec<String> = proxy_params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let mut replaced: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
                match replaced.iter().position(|t| t == "params") {
                    Some(i) => {
                        for (j, a) in added.iter().enumerate() {
                            replaced.insert(i + 1 + j, a.clone());
                        }
                    }
                    None => {
                        replaced.insert(3, "params".to_string());
                        for (j, a) in added.iter().enumerate() {
                            replaced.insert(4 + j, a.clone());
                        }
                    }
                }
                changes.push(format!(
                    "configure.crm:{}: + params {}",
                    n + 1,
                    added.join(" ")
                ));
                out.push(replaced.join(" "));
                proxy_id = Some(id);
            }
            _ => out.push(line.to_string()),
        }
    }
    let vip_id =
        vip_id.ok_or("defines no IPaddr2 primitive (the demo runs the seed's floating IP)")?;
    let proxy_id =
        proxy_id.ok_or("defines no haproxy primitive (the demo runs the seed's load balancer)")?;
    let mut text = out.join("\n");
    text.push('\n');
    Ok(Script {
        text,
        changes,
        vip_id,
        proxy_id,
    })
}

const SECTIONS: [&str; 12] = [
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "mailers",
    "cache",
    "program",
    "http-errors",
];

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit(':').next()?.parse().ok()
}

/// Adapts the seed's `haproxy.cfg`: server `i` goes to `addresses[i]`, the admin socket to
/// `admin_socket`.
pub fn adapt_haproxy_cfg(
    text: &str,
    addresses: &[Ipv4Addr],
    admin_socket: &str,
) -> Result<ProxyConfig, String> {
    let mut out = Vec::new();
    let mut changes = Vec::new();
    let mut servers = Vec::new();
    let mut frontend_port = None;
    let mut stats: Option<(u16, Option<String>)> = None;
    let mut section = String::new();
    let mut is_stats = false;
    for (n, line) in text.lines().enumerate() {
        let at = format!("haproxy.cfg:{}", n + 1);
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(&keyword) = tokens.first() else {
            out.push(line.to_string());
            continue;
        };
        if SECTIONS.contains(&keyword) {
            section = keyword.to_string();
            is_stats = false;
            if section == "resolvers" {
                changes.push(format!(
                    "{at}: dropped section 'resolvers {}' (no DNS server in the demo)",
                    tokens.get(1).unwrap_or(&"")
                ));
                continue;
            }
            out.push(line.to_string());
            continue;
        }
        let drop = |why: &str, changes: &mut Vec<String>| {
            changes.push(format!("{at}: dropped '{}' ({why})", line.trim()))
        };
        match (section.as_str(), keyword) {
            ("resolvers", _) => continue,
            ("global", "log") => drop("the demo does not write to the host's syslog", &mut changes),
            ("global", "chroot" | "user" | "group") => {
                drop("the demo runs unconfined, as root", &mut changes)
            }
            ("global", "stats") if tokens.get(1) == Some(&"socket") => {
                let mut t: Vec<String> = tokens.iter().map(|s| s.to_string()).collect();
                t[2] = admin_socket.to_string();
                changes.push(format!(
                    "{at}: stats socket {} -> {admin_socket}",
                    tokens.get(2).unwrap_or(&"")
                ));
                out.push(format!("  {}", t.join(" ")));
            }
            (_, "server") => {
                let (Some(name), Some(addr)) = (tokens.get(1), tokens.get(2)) else {
                    return Err(format!("{at}: a server line without a name and address"));
                };
                let port =
                    port_of(addr).ok_or(format!("{at}: server {name}: no port in '{addr}'"))?;
                let Some(ip) = addresses.get(servers.len()) else {
                    return Err(format!(
                        "{at}: more servers than the demo has backends ({})",
                        addresses.len()
                    ));
                };
                let mut t: Vec<String> = Vec::new();
                let mut skip = false;
                for (i, tok) in tokens.iter().enumerate() {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if *tok == "resolvers" {
                        skip = true;
                        continue;
                    }
                    t.push(if i == 2 {
                        format!("{ip}:{port}")
                    } else {
                        tok.to_string()
                    });
                }
                changes.push(format!("{at}: server {name} {addr} -> {ip}:{port}"));
                servers.push((name.to_string(), port));
                out.push(format!("    {}", t.join(" ")));
            }
            ("frontend", "bind") => {
                if frontend_port.is_none() {
                    frontend_port = tokens.get(1).and_then(|a| port_of(a));
                }
                out.push(line.to_string());
            }
            ("listen", "bind") => {
                if let Some(p) = tokens.get(1).and_then(|a| port_of(a)) {
                    stats = Some((p, stats.and_then(|s| s.1)));
                }
                out.push(line.to_string());
            }
            ("listen", "stats") => {
                if tokens.get(1) == Some(&"enable") {
                    is_stats = true;
                }
                if tokens.get(1) == Some(&"auth") {
                    if let (Some(s), Some(cred)) = (stats.as_mut(), tokens.get(2)) {
                        s.1 = Some(cred.to_string());
                    }
                }
                out.push(line.to_string());
            }
            _ => out.push(line.to_string()),
        }
    }
    let _ = is_stats;
    let frontend_port = frontend_port.ok_or("has no frontend with a bind line")?;
    if servers.is_empty() {
        return Err("has no server lines".into());
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(ProxyConfig {
        text,
        changes,
        servers,
        frontend_port,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip() -> VipPlan {
        VipPlan {
            address: Ipv4Addr::new(198, 51, 100, 20),
            prefix_len: 27,
            broadcast: Ipv4Addr::new(198, 51, 100, 31),
            nic: "eth0".into(),
        }
    }

    #[test]
    fn the_script_keeps_its_lines_and_moves_the_vip() {
        let seed = "property stonith-enabled=no\n\
                    primitive vip ocf:heartbeat:IPaddr2 params ip=\"192.168.4.20\" broadcast=192.168.4.31 nic=enp0s3.41 cidr_netmask=27 op monitor interval=20\n\
                    primitive lb ocf:heartbeat:haproxy op monitor interval=20\n\
                    commit\n";
        let s = adapt_script(seed, &vip(), &[("conffile", "/d/haproxy.cfg".into())]).unwrap();
        let lines: Vec<&str> = s.text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            "primitive vip ocf:heartbeat:IPaddr2 params ip=198.51.100.20 broadcast=198.51.100.31 nic=eth0 cidr_netmask=27 op monitor interval=20"
        );
        assert_eq!(
            lines[2],
            "primitive lb ocf:heartbeat:haproxy params conffile=/d/haproxy.cfg op monitor interval=20"
        );
        assert_eq!((s.vip_id.as_str(), s.proxy_id.as_str()), ("vip", "lb"));
        assert_eq!(s.changes.len(), 4, "{:?}", s.changes);
    }

    #[test]
    fn a_script_without_the_scenario_is_refused() {
        let e = adapt_script("primitive a ocf:heartbeat:Dummy\n", &vip(), &[]).unwrap_err();
        assert!(e.contains("IPaddr2"), "{e}");
    }

    #[test]
    fn servers_move_to_the_backends_and_outside_references_go() {
        let cfg = "global\n  log /dev/log local0\n  stats socket /run/haproxy/admin.sock mode 660 level admin\n\
                   resolvers dns\n  nameserver dns-01 192.168.4.1:53\n\
                   frontend f\n  bind *:6443\n  default_backend b\n\
                   backend b\n  balance roundrobin\n    server m1 m1:6443 check resolvers dns fall 3 rise 2\n    server m2 m2:6443 check\n\
                   listen stats\n  bind *:32700\n  stats enable\n  stats auth admin:secret\n";
        let ips = [
            Ipv4Addr::new(198, 51, 100, 11),
            Ipv4Addr::new(198, 51, 100, 12),
        ];
        let p = adapt_haproxy_cfg(cfg, &ips, "/d/admin.sock").unwrap();
        assert!(
            p.text
                .contains("    server m1 198.51.100.11:6443 check fall 3 rise 2\n"),
            "{}",
            p.text
        );
        assert!(
            p.text.contains("    server m2 198.51.100.12:6443 check\n"),
            "{}",
            p.text
        );
        assert!(
            !p.text.contains("/dev/log") && !p.text.contains("192.168.4.1"),
            "{}",
            p.text
        );
        assert!(
            p.text
                .contains("stats socket /d/admin.sock mode 660 level admin"),
            "{}",
            p.text
        );
        assert_eq!(p.frontend_port, 6443);
        assert_eq!(p.stats, Some((32700, Some("admin:secret".into()))));
        assert_eq!(p.servers, vec![("m1".into(), 6443), ("m2".into(), 6443)]);
    }
}
