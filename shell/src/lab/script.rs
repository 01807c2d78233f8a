//! Adapting the user's files to the lab: the crm script's IPaddr2 primitive gets the lab's
//! address and interface (the seed's 192.168.4.20 on enp0s3.41 does not exist here), the
//! reference stack runs HAProxy under `ocf:heartbeat:anything` (the seed's downloaded haproxy
//! agent is not installed, and the lab fetches nothing), and haproxy.cfg loses its DNS
//! resolvers (the lab resolves the backends' names from the nodes' own /etc/hosts, and sends
//! nothing to the seed's nameserver).

use super::state::Stack;

/// What the crm script is adapted to.
#[derive(Debug, Clone)]
pub struct LabAddress<'a> {
    /// The floating address.
    pub vip: &'a str,
    /// The prefix length of the lab network.
    pub prefix_len: u8,
    /// The lab network's broadcast address.
    pub broadcast: &'a str,
    /// The nodes' interface.
    pub nic: &'a str,
}

/// The reference stack's haproxy resource: HAProxy in the foreground under `anything`.
const REFERENCE_HAPROXY: &str = "ocf:heartbeat:anything params binfile=/usr/sbin/haproxy \
     cmdline_options=\"-db -f /etc/haproxy/haproxy.cfg\"";

/// Cluster properties the lab sets before the user's script (which may set them otherwise).
///
/// Pacemaker's controller throttles the actions it runs in parallel on a node by the load
/// average of the machine: above 1.6 x `load-threshold` (80 %) per core it runs half as many,
/// above 2 x only one at a time. The lab's nodes share one machine, whose load is everyone
/// else's work, not the nodes': so throttled, a failover runs the VIP's first monitor before the
/// proxy's start instead of beside it. The property changes nothing else of the script's
/// meaning (what runs where, and in which order).
pub const LAB_PROPERTIES: &str = "# hapx lab: the nodes share this machine; its load average is not theirs\n\
     property load-threshold=1000%\n";

/// A crm script the lab cannot adapt.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    #[error("{file}:{line}: {what}")]
    Script {
        file: String,
        line: usize,
        what: String,
    },
    #[error("{file}: no IPaddr2 primitive: the lab needs one to know the floating address")]
    NoVip { file: String },
}

/// Adapts the crm script `text` (read from `file`) to the lab and `stack`.
pub fn adapt_crm(
    file: &str,
    text: &str,
    lab: &LabAddress<'_>,
    stack: Stack,
) -> Result<String, AdaptError> {
    let mut out = String::new();
    let mut found_vip = false;
    for (index, line) in logical_lines(text) {
        let words = split_words(&line);
        let adapted = if words.first().map(String::as_str) == Some("primitive") && words.len() > 2 {
            let agent = words[2].as_str();
            if agent.ends_with(":IPaddr2") || agent == "IPaddr2" {
                found_vip = true;
                adapt_ipaddr2(words, lab).map_err(|what| AdaptError::Script {
                    file: file.to_string(),
                    line: index,
                    what,
                })?
            } else if stack == Stack::Reference && agent == "ocf:heartbeat:haproxy" {
                if words.iter().any(|w| w == "params") {
                    return Err(AdaptError::Script {
                        file: file.to_string(),
                        line: index,
                        what: "the reference stack runs HAProxy under ocf:heartbeat:anything and \
                               cannot carry the haproxy agent's params"
                            .into(),
                    });
                }
                let mut words = words;
                words[2] = REFERENCE_HAPROXY.to_string();
                words.join(" ")
            } else {
                line.clone()
            }
        } else {
            line.clone()
        };
        out.push_str(&adapted);
        out.push('\n');
    }
    if !found_vip {
        return Err(AdaptError::NoVip {
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// Sets ip, nic, cidr_netmask and broadcast of an IPaddr2 primitive to the lab's.
fn adapt_ipaddr2(mut words: Vec<String>, lab: &LabAddress<'_>) -> Result<String, String> {
    let wanted = [
        ("ip", lab.vip.to_string()),
        ("nic", lab.nic.to_string()),
        ("cidr_netmask", lab.prefix_len.to_string()),
        ("broadcast", lab.broadcast.to_string()),
    ];
    let params_at = words
        .iter()
        .position(|w| w == "params")
        .ok_or("the IPaddr2 primitive has no params (the lab needs at least ip=)")?;
    let end = words[params_at + 1..]
        .iter()
        .position(|w| !w.contains('='))
        .map_or(words.len(), |p| params_at + 1 + p);
    if !words[params_at + 1..end]
        .iter()
        .any(|w| w.starts_with("ip="))
    {
        return Err("the IPaddr2 primitive has no ip= parameter".into());
    }
    let mut missing = Vec::new();
    for (key, value) in wanted {
        let prefix = format!("{key}=");
        match words[params_at + 1..end]
            .iter_mut()
            .find(|w| w.starts_with(&prefix))
        {
            Some(word) => *word = format!("{key}={value}"),
            None => missing.push(format!("{key}={value}")),
        }
    }
    let tail = words.split_off(end);
    words.extend(missing);
    words.extend(tail);
    Ok(words.join(" "))
}

/// The script's logical lines (backslash-continued lines joined) with their first line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                acc.push(' ');
                current = Some((start, acc));
            }
            None => {
                acc.push_str(raw);
                lines.push((start, acc));
            }
        }
    }
    lines.extend(current);
    lines
}

/// Splits a line on blanks, keeping double-quoted parts (quotes included) inside their word.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Adapts haproxy.cfg: drops `resolvers` sections and the `resolvers NAME` of server lines, so
/// that server names resolve once, at start, from /etc/hosts (`init-addr ... libc`).
pub fn adapt_haproxy_cfg(text: &str) -> String {
    let mut out = String::new();
    let mut in_resolvers = false;
    for line in text.lines() {
        let starts_section = line.starts_with(|c: char| !c.is_whitespace()) && !line.is_empty();
        if starts_section {
            in_resolvers = line.split_whitespace().next() == Some("resolvers");
        }
        if in_resolvers {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"server") {
            let mut kept = Vec::new();
            let mut skip_next = false;
            for w in &words {
                if skip_next {
                    skip_next = false;
                } else if *w == "resolvers" {
                    skip_next = true;
                } else {
                    kept.push(*w);
                }
            }
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(indent);
            out.push_str(&kept.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: LabAddress<'static> = LabAddress {
        vip: "192.0.2.20",
        prefix_len: 24,
        broadcast: "192.0.2.255",
        nic: "eth0",
    };

    const SEED: &str = "property stonith-enabled=no\n\
        primitive virtual-ip-resource ocf:heartbeat:IPaddr2 params ip=\"192.168.4.20\" \
        broadcast=192.168.4.31 nic=enp0s3.41 cidr_netmask=27 meta migration-threshold=2 \
        op monitor interval=20 timeout=60 on-fail=restart\n\
        primitive haproxy-resource ocf:heartbeat:haproxy op monitor interval=20 timeout=60\n\
        commit\n";

    #[test]
    fn the_seed_gets_the_lab_address_and_keeps_the_rest() {
        let out = adapt_crm("seed", SEED, &LAB, Stack::Hapx).unwrap();
        let vip_line = out.lines().nth(1).unwrap();
        assert_eq!(
            vip_line,
            "primitive virtual-ip-resource ocf:heartbeat:IPaddr2 params ip=192.0.2.20 \
             broadcast=192.0.2.255 nic=eth0 cidr_netmask=24 meta migration-threshold=2 \
             op monitor interval=20 timeout=60 on-fail=restart"
        );
        assert!(out.contains("primitive haproxy-resource ocf:heartbeat:haproxy op"));
    }

    #[test]
    fn the_reference_stack_runs_haproxy_under_anything() {
        let out = adapt_crm("seed", SEED, &LAB, Stack::Reference).unwrap();
        assert!(out.contains(
            "primitive haproxy-resource ocf:heartbeat:anything params binfile=/usr/sbin/haproxy \
             cmdline_options=\"-db -f /etc/haproxy/haproxy.cfg\" op monitor"
        ));
    }

    #[test]
    fn missing_parameters_are_added_before_meta() {
        let out = adapt_crm(
            "s",
            "primitive v IPaddr2 \\\n  params ip=10.0.0.1 meta a=b\n",
            &LAB,
            Stack::Hapx,
        )
        .unwrap();
        assert_eq!(
            out,
            "primitive v IPaddr2 params ip=192.0.2.20 nic=eth0 cidr_netmask=24 \
             broadcast=192.0.2.255 meta a=b\n"
        );
    }

    #[test]
    fn a_script_without_a_vip_is_refused_by_name() {
        let err = adapt_crm("my.crm", "primitive p Dummy\n", &LAB, Stack::Hapx).unwrap_err();
        assert!(err.to_string().starts_with("my.crm: no IPaddr2"), "{err}");
        let err = adapt_crm("my.crm", "\nprimitive v IPaddr2\n", &LAB, Stack::Hapx).unwrap_err();
        assert!(err.to_string().starts_with("my.crm:2: "), "{err}");
    }

    #[test]
    fn haproxy_cfg_loses_its_resolvers() {
        let cfg = "defaults\n  mode tcp\nresolvers dns\n  nameserver d 192.168.4.1:53\n\
                   backend b\n    server a a:6443 check resolvers dns fall 3\n";
        assert_eq!(
            adapt_haproxy_cfg(cfg),
            "defaults\n  mode tcp\nbackend b\n    server a a:6443 check fall 3\n"
        );
    }
}
