//! The IPaddr2 agent: a virtual IPv4 or IPv6 address on an interface, managed in-process over
//! netlink, announced with gratuitous ARP or unsolicited neighbour advertisements. A drop-in for
//! heartbeat's IPaddr2 (same parameters), without its ~10 forked programs per call.
//!
//! - start: adds the address (idempotent), brings the interface up, announces it;
//! - stop: removes the address if present (idempotent), optionally flushes the route cache;
//! - monitor/status: 0 when the address is on the interface, 7 when it is not, an error when the
//!   interface is gone (OCF_ERR_INSTALLED during a probe, OCF_ERR_GENERIC otherwise); depth 10
//!   also requires the link to be up with carrier;
//! - validate-all: every parameter, plus what needs the kernel (interface, routes, namespace).

mod config;
mod findif;
mod spec;

use std::fs::File;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use config::{Announce, Broadcast, Config};
pub use findif::{Target, best_route, broadcast_for, resolve};
pub use spec::SPEC;

use crate::agent::{Agent, Context, Failure, Outcome};
use crate::netlink::{
    Address, Family, IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_TENTATIVE, Link,
    Netlink, NetlinkError, NewAddress,
};
use crate::ocf::{Action, ExitCode};
use crate::{arp, ndisc, sys};

/// The IPaddr2 agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpAddr2;

impl Agent for IpAddr2 {
    fn spec(&self) -> &'static crate::spec::AgentSpec {
        &SPEC
    }

    fn run(&self, ctx: &Context) -> Outcome {
        let cfg = Config::from_params(&ctx.params)?;
        if let Some(ns) = &cfg.network_namespace {
            enter_namespace(ns)?;
        }
        let mut nl = Netlink::open().map_err(netlink_failure)?;
        match ctx.action {
            Action::Start => start(ctx, &cfg, &mut nl),
            Action::Stop => stop(ctx, &cfg, &mut nl),
            Action::Monitor | Action::Status => monitor(ctx, &cfg, &mut nl),
            Action::ValidateAll => resolve(&mut nl, &cfg).map(|_| ExitCode::Success),
            _ => Ok(ExitCode::ErrUnimplemented),
        }
    }
}

fn netlink_failure(e: NetlinkError) -> Failure {
    if e.errno() == Some(libc::EPERM) {
        return Failure::new(ExitCode::ErrPerm, format!("{e} (IPaddr2 needs root)"));
    }
    Failure::generic(e.to_string())
}

/// Moves this process into the named network namespace, as `ip netns exec` would.
fn enter_namespace(name: &str) -> Result<(), Failure> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|e| {
        Failure::args(format!(
            "parameter network_namespace={name:?}: cannot open {path}: {e}"
        ))
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        Failure::new(
            ExitCode::ErrPerm,
            format!("parameter network_namespace={name:?}: cannot enter it: {e}"),
        )
    })
}

/// The addresses equal to the configured IP, on `link` when given.
fn find_addresses(
    nl: &mut Netlink,
    cfg: &Config,
    link: Option<&Link>,
) -> Result<Vec<Address>, Failure> {
    Ok(nl
        .addresses(Some(cfg.family()))
        .map_err(netlink_failure)?
        .into_iter()
        .filter(|a| a.ip == cfg.ip && link.is_none_or(|l| l.index == a.ifindex))
        .collect())
}

fn start(ctx: &Context, cfg: &Config, nl: &mut Netlink) -> Outcome {
    let target = resolve(nl, cfg)?;
    if !find_addresses(nl, cfg, Some(&target.link))?.is_empty() {
        ctx.log
            .info(&format!("{} is already on {}", cfg.ip, target.link.name));
        return Ok(ExitCode::Success);
    }
    if cfg.run_arping {
        check_nobody_answers(cfg, &target)?;
    }
    let mut flags = 0;
    if cfg.nodad && cfg.family() == Family::V6 {
        flags |= IFA_F_NODAD;
    }
    if cfg.noprefixroute {
        flags |= IFA_F_NOPREFIXROUTE;
    }
    let new = NewAddress {
        ifindex: target.link.index,
        ip: cfg.ip,
        prefix_len: target.prefix_len,
        broadcast: target.broadcast,
        label: target.label.clone(),
        flags,
        preferred_lft: cfg.preferred_lft.filter(|_| cfg.family() == Family::V6),
    };
    match nl.add_address(&new) {
        Ok(()) => {}
        // Someone added it between our look and our add: it is there, which is what start wants.
        Err(e) if e.errno() == Some(libc::EEXIST) => return Ok(ExitCode::Success),
        Err(e) => {
            return Err(Failure::generic(format!(
                "adding {}/{} to {}: {e}",
                cfg.ip, target.prefix_len, target.link.name
            )));
        }
    }
    ctx.log.info(&format!(
        "added {}/{} to {}",
        cfg.ip, target.prefix_len, target.link.name
    ));
    if !target.link.is_up() {
        nl.set_link_up(target.link.index).map_err(netlink_failure)?;
    }
    if cfg.family() == Family::V6 && !cfg.nodad {
        wait_for_dad(ctx, cfg, nl, &target)?;
    }
    announce(
        ctx,
        cfg,
        &target,
        cfg.announce.count,
        cfg.announce.background,
    );
    Ok(ExitCode::Success)
}

/// RFC 5227 probe before adding an IPv4 address: refuse when another host answers for it.
fn check_nobody_answers(cfg: &Config, target: &Target) -> Result<(), Failure> {
    let (IpAddr::V4(ip), Some(mac)) = (cfg.ip, target.link.ether_mac()) else {
        return Ok(());
    };
    // arping -D -c 2 -w 3, as heartbeat's run_arping does.
    let answer = arp::probe(
        target.link.index,
        mac,
        ip,
        2,
        Duration::from_secs(1),
        Duration::from_secs(3),
    )
    .map_err(|e| Failure::generic(format!("ARP probe for {ip} on {}: {e}", target.link.name)))?;
    match answer {
        Some(owner) => Err(Failure::generic(format!(
            "parameter run_arping: {ip} is already in use by {} on {}",
            arp::format_mac(&owner),
            target.link.name
        ))),
        None => Ok(()),
    }
}

/// Waits until IPv6 duplicate address detection is over; removes the address again when it
/// found a duplicate, so that a failed start leaves nothing behind.
fn wait_for_dad(ctx: &Context, cfg: &Config, nl: &mut Netlink, target: &Target) -> Outcome {
    let limit = ctx
        .params
        .meta_timeout()
        .map_or(Duration::from_secs(5), |t| t / 2);
    let deadline = Instant::now() + limit;
    loop {
        let found = find_addresses(nl, cfg, Some(&target.link))?;
        let Some(addr) = found.first() else {
            return Err(Failure::generic(format!(
                "{} disappeared from {} during duplicate address detection",
                cfg.ip, target.link.name
            )));
        };
        if addr.flags & IFA_F_DADFAILED != 0 {
            let _ = nl.del_address(addr);
            return Err(Failure::generic(format!(
                "duplicate address detection failed: another host on {} uses {}",
                target.link.name, cfg.ip
            )));
        }
        if addr.flags & IFA_F_TENTATIVE == 0 {
            return Ok(ExitCode::Success);
        }
        if Instant::now() >= deadline {
            ctx.log.warn(&format!(
                "{} is still tentative (duplicate address detection) after {limit:?}",
                cfg.ip
            ));
            return Ok(ExitCode::Success);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `count` unsolicited ARPs or NAs: all of them before returning, or, when `background`
/// is set, the first one before returning and the rest from a detached process. A failure to
/// announce is logged, not fatal: the address is there and works, neighbours will just learn
/// it later (as with heartbeat's send_arp).
fn announce(ctx: &Context, cfg: &Config, target: &Target, count: u32, background: bool) {
    let Some(mac) = target.link.ether_mac() else {
        ctx.log.debug(&format!(
            "{} has no Ethernet address; not announcing {}",
            target.link.name, cfg.ip
        ));
        return;
    };
    if count == 0 {
        return;
    }
    let interval = cfg.announce.interval;
    let now = if background { 1 } else { count };
    let result = match cfg.ip {
        IpAddr::V4(ip) => arp::Announcer::new(target.link.index, mac, ip).and_then(|garp| {
            garp.send(now, interval)?;
            // The detached child holds the last reference to the packet socket, so its
            // (slow) release happens there, after this agent has answered.
            sys::run_detached(move || {
                if count > now {
                    std::thread::sleep(interval);
                    let _ = garp.send(count - now, interval);
                }
            })
        }),
        IpAddr::V6(ip) => {
            let (name, index) = (target.link.name.as_str(), target.link.index);
            ndisc::announce(name, index, mac, ip, now, interval).and_then(|()| {
                if count == now {
                    return Ok(());
                }
                sys::run_detached(|| {
                    std::thread::sleep(interval);
                    let _ = ndisc::announce(name, index, mac, ip, count - now, interval);
                })
            })
        }
    };
    if let Err(e) = result {
        ctx.log.warn(&format!(
            "announcing {} on {}: {e}",
            cfg.ip, target.link.name
        ));
    }
}

fn stop(ctx: &Context, cfg: &Config, nl: &mut Netlink) -> Outcome {
    let link = match &cfg.nic {
        Some(nic) => match nl.link_by_name(nic).map_err(netlink_failure)? {
            Some(link) => Some(link),
            None => {
                ctx.log
                    .info(&format!("{nic} does not exist, so {} is not on it", cfg.ip));
                return Ok(ExitCode::Success);
            }
        },
        None => None,
    };
    let found = find_addresses(nl, cfg, link.as_ref())?;
    for addr in &found {
        match nl.del_address(addr) {
            Ok(()) => ctx
                .log
                .info(&format!("removed {}/{}", addr.ip, addr.prefix_len)),
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(Failure::generic(format!("removing {}: {e}", cfg.ip))),
        }
    }
    if cfg.flush_routes {
        flush_route_cache(ctx, cfg.family());
    }
    Ok(ExitCode::Success)
}

/// `ip route flush cache`: what heartbeat's flush_routes does.
fn flush_route_cache(ctx: &Context, family: Family) {
    let path = match family {
        Family::V4 => "/proc/sys/net/ipv4/route/flush",
        Family::V6 => "/proc/sys/net/ipv6/route/flush",
    };
    if let Err(e) = std::fs::write(path, "-1") {
        ctx.log
            .warn(&format!("flushing the route cache ({path}): {e}"));
    }
}

fn monitor(ctx: &Context, cfg: &Config, nl: &mut Netlink) -> Outcome {
    let link = match &cfg.nic {
        Some(nic) => match nl.link_by_name(nic).map_err(netlink_failure)? {
            Some(link) => Some(link),
            None => {
                let reason = format!("parameter nic={nic:?}: the interface is gone");
                return Err(if ctx.is_probe() {
                    Failure::installed(reason)
                } else {
                    Failure::generic(reason)
                });
            }
        },
        None => None,
    };
    let found = find_addresses(nl, cfg, link.as_ref())?;
    let Some(addr) = found.first() else {
        return Ok(ExitCode::NotRunning);
    };
    if addr.flags & IFA_F_DADFAILED != 0 {
        return Err(Failure::generic(format!(
            "{} failed duplicate address detection",
            cfg.ip
        )));
    }
    let link = match link {
        Some(link) => link,
        None => nl
            .link_by_index(addr.ifindex)
            .map_err(netlink_failure)?
            .ok_or_else(|| Failure::generic(format!("the interface of {} is gone", cfg.ip)))?,
    };
    if ctx.check_level() >= 10 && !link.has_link() {
        return Err(Failure::generic(format!(
            "{} is on {}, but {} has no link (down or no carrier)",
            cfg.ip, link.name, link.name
        )));
    }
    if cfg.announce.refresh_count > 0 && cfg.family() == Family::V4 {
        let target = Target {
            link,
            prefix_len: addr.prefix_len,
            broadcast: addr.broadcast,
            label: addr.label.clone(),
        };
        announce(ctx, cfg, &target, cfg.announce.refresh_count, false);
    }
    Ok(ExitCode::Success)
}
