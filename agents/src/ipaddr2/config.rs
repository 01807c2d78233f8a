//! IPaddr2's parameters, checked and typed. Everything here is pure: what needs the kernel
//! (does the interface exist, which route covers the address) is in [`super::findif`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::agent::Failure;
use crate::netlink::Family;
use crate::params::{ParamError, Params, parse_bool};

/// How the IPv4 broadcast address is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// Not given: host bits set for prefixes shorter than /31, none otherwise (findif's rule).
    Derived,
    /// `+`: host bits set.
    HostBitsSet,
    /// `-`: host bits reset.
    HostBitsReset,
    Address(Ipv4Addr),
}

/// Unsolicited ARP / NA settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    pub count: u32,
    pub interval: Duration,
    pub refresh_count: u32,
    pub background: bool,
}

/// The checked configuration of one IPaddr2 resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ip: IpAddr,
    pub nic: Option<String>,
    /// The full label (`eth0:web`), IPv4 only.
    pub label: Option<String>,
    pub prefix_len: Option<u8>,
    pub broadcast: Broadcast,
    pub announce: Announce,
    pub flush_routes: bool,
    pub run_arping: bool,
    pub nodad: bool,
    pub noprefixroute: bool,
    /// Seconds; `None` is forever.
    pub preferred_lft: Option<u32>,
    pub network_namespace: Option<String>,
}

impl Config {
    pub fn family(&self) -> Family {
        Family::of(&self.ip)
    }

    /// Reads and checks every parameter. The first problem found is returned, naming the
    /// parameter.
    pub fn from_params(p: &Params) -> Result<Config, Failure> {
        p.check_spec()?;
        refuse_unsupported(p)?;
        let ip = parse_ip(p.required("ip")?)?;
        let family = Family::of(&ip);
        let (nic, nic_label) = parse_nic(p)?;
        let label = parse_label(p, family, nic.as_deref(), nic_label)?;
        let prefix_len = parse_prefix(p, family)?;
        let broadcast = parse_broadcast(p, family)?;
        let announce = parse_announce(p, family)?;
        Ok(Config {
            ip,
            nic,
            label,
            prefix_len,
            broadcast,
            announce,
            flush_routes: p.boolean("flush_routes")?,
            run_arping: string_bool(p, "run_arping")?,
            nodad: string_bool(p, "nodad")?,
            noprefixroute: string_bool(p, "noprefixroute")?,
            preferred_lft: parse_lifetime(p)?,
            network_namespace: parse_netns(p)?,
        })
    }
}

fn refuse_unsupported(p: &Params) -> Result<(), Failure> {
    if p.is_clone() {
        return Err(Failure::configured(
            "IPaddr2 runs as a clone (CRM_meta_clone_max is set): clone (CLUSTERIP) mode is \
             not supported by hapx's IPaddr2; configure it as a primitive",
        ));
    }
    for name in ["unique_clone_address", "lvs_support", "lvs_ipv6_addrlabel"] {
        if p.boolean(name)? {
            let what = if name == "unique_clone_address" {
                "clone (CLUSTERIP) mode is not supported by hapx's IPaddr2"
            } else {
                "LVS direct-routing support is not implemented by hapx's IPaddr2"
            };
            return Err(ParamError::new(name, p.get(name).unwrap_or(""), what).into());
        }
    }
    p.integer("lvs_ipv6_addrlabel_value", 0..=i64::from(u32::MAX))?;
    if let Some(sender) = p.get("arp_sender")
        && !["send_arp", "ipoibarping", "iputils_arping", "libnet_arping"].contains(&sender)
    {
        return Err(ParamError::new(
            "arp_sender",
            sender,
            "must be one of send_arp, ipoibarping, iputils_arping, libnet_arping",
        )
        .into());
    }
    Ok(())
}

fn parse_ip(value: &str) -> Result<IpAddr, ParamError> {
    let ip: IpAddr = value
        .trim()
        .parse()
        .map_err(|_| ParamError::new("ip", value, "not an IPv4 or IPv6 address"))?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(ParamError::new(
            "ip",
            value,
            "must be a unicast address (not unspecified, multicast or loopback)",
        ));
    }
    if let IpAddr::V4(v4) = ip
        && v4.is_broadcast()
    {
        return Err(ParamError::new(
            "ip",
            value,
            "must not be the broadcast address",
        ));
    }
    Ok(ip)
}

/// `nic`, split from a deprecated `eth0:label` form.
fn parse_nic(p: &Params) -> Result<(Option<String>, Option<String>), ParamError> {
    let Some(value) = p.get("nic") else {
        return Ok((None, None));
    };
    let (base, label) = match value.split_once(':') {
        Some((base, _)) => (base, Some(value.to_string())),
        None => (value, None),
    };
    if !valid_ifname(base) {
        return Err(ParamError::new(
            "nic",
            value,
            "not an interface name (1 to 15 characters, no '/', ':' or whitespace)",
        ));
    }
    Ok((Some(base.to_string()), label))
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
}

fn parse_label(
    p: &Params,
    family: Family,
    nic: Option<&str>,
    nic_label: Option<String>,
) -> Result<Option<String>, ParamError> {
    // As in heartbeat's IPaddr2, a label given in nic wins over iflabel.
    let label = match (nic_label, p.get("iflabel"), nic) {
        (Some(l), _, _) => Some(l),
        (None, Some(l), Some(nic)) => Some(format!("{nic}:{l}")),
        // The nic is found later; the label is completed by findif.
        (None, Some(l), None) => Some(format!(":{l}")),
        (None, None, _) => None,
    };
    let Some(label) = label else {
        return Ok(None);
    };
    if family == Family::V6 {
        return Err(ParamError::new(
            "iflabel",
            p.get("iflabel").unwrap_or(&label),
            "IPv6 addresses have no labels",
        ));
    }
    let suffix = label.split_once(':').map_or("", |(_, s)| s);
    if suffix.is_empty()
        || !suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(ParamError::new(
            "iflabel",
            suffix,
            "must be letters, digits, '_', '-' or '.'",
        ));
    }
    if nic.is_some() && label.len() > 15 {
        return Err(ParamError::new(
            "iflabel",
            suffix,
            format!("{label} is longer than the kernel's 15 characters"),
        ));
    }
    Ok(Some(label))
}

fn parse_prefix(p: &Params, family: Family) -> Result<Option<u8>, ParamError> {
    let Some(value) = p.get("cidr_netmask") else {
        return Ok(None);
    };
    let max = family.max_prefix();
    if let Ok(n) = value.trim().parse::<u8>()
        && n <= max
    {
        return Ok(Some(n));
    }
    // A dotted netmask is accepted for IPv4 when its bits are contiguous.
    if family == Family::V4
        && let Ok(mask) = value.trim().parse::<Ipv4Addr>()
    {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() == 32 {
            return Ok(Some(bits.leading_ones() as u8));
        }
    }
    Err(ParamError::new(
        "cidr_netmask",
        value,
        format!("must be a prefix length from 0 to {max}"),
    ))
}

fn parse_broadcast(p: &Params, family: Family) -> Result<Broadcast, ParamError> {
    let Some(value) = p.get("broadcast") else {
        return Ok(Broadcast::Derived);
    };
    if family == Family::V6 {
        return Err(ParamError::new(
            "broadcast",
            value,
            "IPv6 has no broadcast address",
        ));
    }
    match value.trim() {
        "+" => Ok(Broadcast::HostBitsSet),
        "-" => Ok(Broadcast::HostBitsReset),
        v => v
            .parse()
            .map(Broadcast::Address)
            .map_err(|_| ParamError::new("broadcast", value, "not an IPv4 address, '+' or '-'")),
    }
}

fn parse_announce(p: &Params, family: Family) -> Result<Announce, ParamError> {
    let count = p.integer("arp_count", 0..=1000)?.unwrap_or(5) as u32;
    let interval = p.integer("arp_interval", 0..=60_000)?.unwrap_or(200) as u64;
    let refresh_count = p.integer("arp_count_refresh", 0..=1000)?.unwrap_or(0) as u32;
    let background = match p.get("arp_bg") {
        None => family == Family::V4,
        Some(v) => parse_bool(v)
            .ok_or_else(|| ParamError::new("arp_bg", v, "must be a boolean (true/false)"))?,
    };
    Ok(Announce {
        count,
        interval: Duration::from_millis(interval),
        refresh_count,
        background,
    })
}

/// Parameters the reference declares as strings but reads as booleans.
fn string_bool(p: &Params, name: &str) -> Result<bool, ParamError> {
    p.boolean(name)
}

fn parse_lifetime(p: &Params) -> Result<Option<u32>, ParamError> {
    match p.get("preferred_lft") {
        None | Some("forever") => Ok(None),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if n < u32::MAX => Ok(Some(n)),
            _ => Err(ParamError::new(
                "preferred_lft",
                v,
                "must be 'forever' or a number of seconds",
            )),
        },
    }
}

fn parse_netns(p: &Params) -> Result<Option<String>, ParamError> {
    let Some(v) = p.get("network_namespace") else {
        return Ok(None);
    };
    if v.contains('/') || v == "." || v == ".." {
        return Err(ParamError::new(
            "network_namespace",
            v,
            "must be a namespace name as 'ip netns' lists them",
        ));
    }
    Ok(Some(v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipaddr2::SPEC;
    use crate::ocf::ExitCode;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Failure> {
        let params = Params::from_vars(
            &SPEC,
            vars.iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string())),
        );
        Config::from_params(&params)
    }

    fn refused(vars: &[(&str, &str)], param: &str) {
        let f = config(vars).unwrap_err();
        assert_eq!(f.code, ExitCode::ErrConfigured, "{f}");
        assert!(
            f.reason.contains(param),
            "{} does not name {param}",
            f.reason
        );
    }

    #[test]
    fn a_full_ipv4_configuration() {
        let c = config(&[
            ("ip", "192.0.2.20"),
            ("nic", "eth0"),
            ("cidr_netmask", "27"),
            ("broadcast", "192.0.2.31"),
            ("iflabel", "vip"),
        ])
        .unwrap();
        assert_eq!(c.ip, "192.0.2.20".parse::<IpAddr>().unwrap());
        assert_eq!(c.prefix_len, Some(27));
        assert_eq!(c.label.as_deref(), Some("eth0:vip"));
        assert_eq!(
            c.broadcast,
            Broadcast::Address(Ipv4Addr::new(192, 0, 2, 31))
        );
        assert!(c.announce.background);
        assert_eq!(c.announce.count, 5);
        assert_eq!(c.preferred_lft, None);
    }

    #[test]
    fn ipv6_defaults_and_flags() {
        let c = config(&[
            ("ip", "2001:db8::20"),
            ("nodad", "true"),
            ("preferred_lft", "0"),
        ])
        .unwrap();
        assert!(!c.announce.background);
        assert!(c.nodad);
        assert_eq!(c.preferred_lft, Some(0));
        assert_eq!(c.family(), Family::V6);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        refused(&[("ip", "300.1.1.1")], "ip");
        refused(&[], "ip");
        refused(
            &[("ip", "192.0.2.1"), ("cidr_netmask", "40")],
            "cidr_netmask",
        );
        refused(
            &[("ip", "2001:db8::1"), ("cidr_netmask", "129")],
            "cidr_netmask",
        );
        refused(&[("ip", "192.0.2.1"), ("nic", "a/b")], "nic");
        refused(&[("ip", "192.0.2.1"), ("broadcast", "x")], "broadcast");
        refused(&[("ip", "192.0.2.1"), ("arp_count", "-1")], "arp_count");
        refused(&[("ip", "192.0.2.1"), ("nodad", "perhaps")], "nodad");
        refused(
            &[("ip", "192.0.2.1"), ("preferred_lft", "soon")],
            "preferred_lft",
        );
        refused(&[("ip", "2001:db8::1"), ("iflabel", "x")], "iflabel");
        refused(
            &[
                ("ip", "192.0.2.1"),
                ("nic", "eth0"),
                ("iflabel", "waytoolonglabel"),
            ],
            "iflabel",
        );
        refused(
            &[("ip", "192.0.2.1"), ("unique_clone_address", "true")],
            "unique_clone_address",
        );
        refused(&[("ip", "192.0.2.1"), ("CRM_meta_clone_max", "2")], "clone");
    }

    #[test]
    fn dotted_netmask_and_label_in_nic() {
        let c = config(&[
            ("ip", "192.0.2.1"),
            ("cidr_netmask", "255.255.255.0"),
            ("nic", "eth0:old"),
            ("iflabel", "ignored"),
        ])
        .unwrap();
        assert_eq!(c.prefix_len, Some(24));
        assert_eq!(c.nic.as_deref(), Some("eth0"));
        assert_eq!(c.label.as_deref(), Some("eth0:old"));
    }
}
