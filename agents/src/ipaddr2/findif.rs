//! Where the address goes: the interface, prefix length and broadcast address, from the
//! parameters or, when they are not given, from the routing table the way heartbeat's findif
//! does it (the most specific directly connected route that contains the address).

use std::net::{IpAddr, Ipv4Addr};

use super::config::{Broadcast, Config};
use crate::agent::Failure;
use crate::netlink::{
    Family, Link, Netlink, RT_SCOPE_LINK, RT_TABLE_MAIN, RTN_UNICAST, Route, mask32,
    prefix_contains,
};

/// The resolved placement of the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub link: Link,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
}

/// Finds the interface, prefix and broadcast for `cfg`. An interface that does not exist or a
/// value that cannot be derived from this host's routes is OCF_ERR_ARGS (wrong for this host)
/// with the reason; a label too long for the kernel is OCF_ERR_CONFIGURED.
pub fn resolve(nl: &mut Netlink, cfg: &Config) -> Result<Target, Failure> {
    let nl_err = |e: crate::netlink::NetlinkError| Failure::generic(e.to_string());
    let given_link =
        match &cfg.nic {
            Some(nic) => Some(nl.link_by_name(nic).map_err(nl_err)?.ok_or_else(|| {
                Failure::args(format!("parameter nic={nic:?}: no such interface"))
            })?),
            None => None,
        };
    let (link, prefix_len) = match (given_link, cfg.prefix_len) {
        (Some(link), Some(prefix)) => (link, prefix),
        (given, prefix) => {
            let routes = nl.routes(cfg.family()).map_err(nl_err)?;
            let oif = given.as_ref().map(|l| l.index);
            let route = best_route(&routes, &cfg.ip, oif, prefix)
                .ok_or_else(|| Failure::args(no_route_reason(cfg, given.as_ref())))?;
            let link = match given {
                Some(link) => link,
                None => {
                    let index = route.oif.unwrap_or(0);
                    nl.link_by_index(index).map_err(nl_err)?.ok_or_else(|| {
                        Failure::args(format!(
                            "the route to {} names interface index {index}, which does not exist",
                            cfg.ip
                        ))
                    })?
                }
            };
            (link, prefix.unwrap_or(route.dst_len))
        }
    };
    let broadcast = broadcast_for(cfg, prefix_len);
    let label = cfg.label.as_ref().map(|l| {
        if l.starts_with(':') {
            format!("{}{l}", link.name)
        } else {
            l.clone()
        }
    });
    if let Some(label) = &label
        && label.len() > 15
    {
        return Err(Failure::configured(format!(
            "parameter iflabel: label {label} is longer than the kernel's 15 characters"
        )));
    }
    Ok(Target {
        link,
        prefix_len,
        broadcast,
        label,
    })
}

fn no_route_reason(cfg: &Config, link: Option<&Link>) -> String {
    match link {
        Some(link) => format!(
            "parameter cidr_netmask is not set and no directly connected route on {} contains {}; \
             set cidr_netmask",
            link.name, cfg.ip
        ),
        None => format!(
            "parameter nic is not set and no directly connected route contains {}; set nic \
             (and cidr_netmask)",
            cfg.ip
        ),
    }
}

/// The most specific directly connected route of the main table that contains `ip`, on `oif`
/// when given, and no more specific than `prefix` when given.
pub fn best_route<'a>(
    routes: &'a [Route],
    ip: &IpAddr,
    oif: Option<u32>,
    prefix: Option<u8>,
) -> Option<&'a Route> {
    routes
        .iter()
        .filter(|r| r.table == RT_TABLE_MAIN && r.kind == RTN_UNICAST && r.gateway.is_none())
        .filter(|r| r.family == Family::V6 || r.scope == RT_SCOPE_LINK)
        .filter(|r| r.dst_len > 0)
        .filter(|r| r.dst.is_some_and(|d| prefix_contains(&d, r.dst_len, ip)))
        .filter(|r| oif.is_none() || r.oif == oif)
        .filter(|r| prefix.is_none_or(|p| r.dst_len <= p))
        .max_by_key(|r| r.dst_len)
}

/// The broadcast address to set, IPv4 only.
pub fn broadcast_for(cfg: &Config, prefix_len: u8) -> Option<Ipv4Addr> {
    let IpAddr::V4(ip) = cfg.ip else {
        return None;
    };
    let mask = mask32(prefix_len);
    let set = Ipv4Addr::from(u32::from(ip) | !mask);
    let reset = Ipv4Addr::from(u32::from(ip) & mask);
    match cfg.broadcast {
        Broadcast::Address(b) => Some(b),
        Broadcast::HostBitsSet => Some(set),
        Broadcast::HostBitsReset => Some(reset),
        Broadcast::Derived if prefix_len < 31 => Some(set),
        Broadcast::Derived => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, len: u8, oif: u32, gateway: Option<&str>) -> Route {
        Route {
            family: Family::V4,
            table: RT_TABLE_MAIN,
            dst: Some(dst.parse().unwrap()),
            dst_len: len,
            oif: Some(oif),
            gateway: gateway.map(|g| g.parse().unwrap()),
            scope: if gateway.is_some() { 0 } else { RT_SCOPE_LINK },
            kind: RTN_UNICAST,
        }
    }

    #[test]
    fn the_most_specific_connected_route_wins() {
        let routes = vec![
            route("192.0.2.0", 24, 2, None),
            route("192.0.2.0", 27, 3, None),
            route("192.0.2.0", 28, 4, Some("198.51.100.1")),
            route("0.0.0.0", 0, 2, Some("192.0.2.1")),
        ];
        let ip: IpAddr = "192.0.2.20".parse().unwrap();
        assert_eq!(best_route(&routes, &ip, None, None).unwrap().oif, Some(3));
        assert_eq!(best_route(&routes, &ip, Some(2), None).unwrap().dst_len, 24);
        assert_eq!(
            best_route(&routes, &ip, None, Some(25)).unwrap().oif,
            Some(2)
        );
        let far: IpAddr = "203.0.113.1".parse().unwrap();
        assert!(best_route(&routes, &far, None, None).is_none());
    }
}
