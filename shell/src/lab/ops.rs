//! `hapx lab status|fail|recover|probe|down`, and what `up` shares with them.

use std::collections::HashSet;
use std::fs;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use super::node::{self};
use super::state::{self, Host, Role, State};
use super::{FailMode, ProbeArgs, backend, net, probe, up};

/// The lab called `name`, or an error saying there is none.
fn load(name: &str) -> Result<State> {
    State::load(name)?.with_context(|| {
        format!(
            "no lab {name:?} ({} does not exist); `hapx lab up` builds one",
            state::path_of(name).display()
        )
    })
}

/// Runs `f` on a thread inside network namespace `netns`.
pub fn in_netns<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let name = netns.to_string();
    thread::spawn(move || -> Result<T> {
        net::enter(&name).with_context(|| format!("entering network namespace {name}"))?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread in {netns} panicked"))?
}

/// The nodes whose pacemakerd runs, as (name, pid).
fn running_nodes(state: &State) -> Vec<(String, u32)> {
    state
        .hosts(Role::Node)
        .filter_map(|h| Some((h.name.clone(), h.pid.filter(|p| net::process_runs(*p))?)))
        .collect()
}

/// Waits until every node is online with a DC; returns the first node's name.
pub fn wait_cluster(state: &State, timeout: Duration) -> Result<String> {
    let names: Vec<String> = state.hosts(Role::Node).map(|h| h.name.clone()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (first, pid) = running_nodes(state)
        .into_iter()
        .next()
        .context("no cluster node runs")?;
    node::wait_until(pid, timeout, |xml| node::all_online(xml, &refs)).map_err(|last| {
        let logs: Vec<String> = names
            .iter()
            .filter_map(|n| up::node_spec(state, n).ok())
            .map(|spec| spec.log_tail(20))
            .collect();
        anyhow::anyhow!(
            "the nodes were not all online with a DC after {timeout:?}; last crm_mon:\n{last}\n{}",
            logs.join("\n")
        )
    })?;
    Ok(first)
}

/// `crm_mon -1` as seen from the first node that runs.
pub fn crm_mon_text(state: &State) -> Result<String> {
    let (_, pid) = running_nodes(state)
        .into_iter()
        .next()
        .context("no cluster node runs")?;
    let out = node::run(pid, &["crm_mon", "-1"])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The nodes whose `eth0` carries the VIP (what the kernel says, not what Pacemaker thinks).
pub fn vip_holders(state: &State) -> Vec<String> {
    state
        .hosts(Role::Node)
        .filter(|h| net::addresses(&h.netns).is_ok_and(|a| a.contains(&state.vip)))
        .map(|h| h.name.clone())
        .collect()
}

/// Runs `hapx lab status`.
pub fn status(name: &str) -> Result<()> {
    let state = load(name)?;
    println!(
        "lab {} ({} stack), made by pid {}, directory {}",
        state.name,
        state.stack.name(),
        state.id,
        state.dir.display()
    );
    for h in &state.hosts {
        let process = match h.pid {
            Some(pid) if net::process_runs(pid) => format!("pid {pid}"),
            Some(pid) => format!("pid {pid} (gone)"),
            None => "no process".into(),
        };
        let link = match net::port_is_up(&state.switch, &h.port) {
            Ok(true) => "plugged in",
            Ok(false) => "unplugged",
            Err(_) => "no port",
        };
        println!(
            "  {:<12} {:<8} {:<15} {:<18} {link}, {process}",
            h.name,
            role_name(h.role),
            h.address,
            h.netns
        );
    }
    println!("VIP {} on: {}", state.vip, vip_holders(&state).join(", "));
    if let Some(client) = state.host("client") {
        let neighbour = net::neighbour(&client.netns, &state.vip)?;
        println!(
            "client's neighbour entry for the VIP: {}",
            neighbour.as_deref().unwrap_or("none")
        );
    }
    match crm_mon_text(&state) {
        Ok(text) => print!("{text}"),
        Err(e) => println!("crm_mon: {e:#}"),
    }
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Node => "node",
        Role::Backend => "backend",
        Role::Client => "client",
    }
}

fn node_host(state: &State, node: &str) -> Result<Host> {
    state
        .hosts(Role::Node)
        .find(|h| h.name == node)
        .cloned()
        .with_context(|| {
            let names: Vec<&str> = state.hosts(Role::Node).map(|h| h.name.as_str()).collect();
            format!(
                "no node {node:?} in lab {}; nodes: {}",
                state.name,
                names.join(", ")
            )
        })
}

/// Runs `hapx lab fail NODE`.
pub fn fail(name: &str, node: &str, mode: FailMode) -> Result<()> {
    let mut state = load(name)?;
    let host = node_host(&state, node)?;
    net::set_port(&state.switch, &host.port, false)?;
    if mode == FailMode::Poweroff {
        net::kill_all_in(&host.netns);
        net::reset_addresses(&host.netns, &host.address)?;
        if let Some(h) = state.host_mut(node) {
            h.pid = None;
        }
        state.save()?;
        println!("{node} powered off (processes killed, addresses dropped, unplugged)");
    } else {
        println!("{node} cut off (unplugged; it runs on alone)");
    }
    Ok(())
}

/// Runs `hapx lab recover NODE`.
pub fn recover(name: &str, node: &str) -> Result<()> {
    let mut state = load(name)?;
    let host = node_host(&state, node)?;
    let runs = host.pid.is_some_and(net::process_runs);
    if !runs {
        // A machine that comes back has only its own address and nothing running; it boots
        // with its network plugged in, so Corosync finds the peer at once.
        net::kill_all_in(&host.netns);
        net::reset_addresses(&host.netns, &host.address)?;
        net::set_port(&state.switch, &host.port, true)?;
        let spec = up::node_spec(&state, node)?;
        let pid = spec.launch().context("starting corosync and pacemakerd")?;
        if let Some(h) = state.host_mut(node) {
            h.pid = Some(pid);
        }
        state.save()?;
    } else {
        net::set_port(&state.switch, &host.port, true)?;
    }
    wait_cluster(&state, Duration::from_secs(180))?;
    println!("{node} is back: every node is online");
    Ok(())
}

/// Runs `hapx lab probe`.
pub fn probe(name: &str, args: &ProbeArgs) -> Result<()> {
    let state = load(name)?;
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 86_400.0) {
        bail!(
            "--duration {}: give seconds between 0 and 86400",
            args.duration
        );
    }
    if args.interval_ms == 0 {
        bail!("--interval-ms 0: give at least 1");
    }
    let client = state.host("client").context("the lab has no client")?;
    let options = probe::ProbeOptions {
        target: SocketAddr::new(state.vip.parse()?, backend::PORT),
        interval: Duration::from_millis(args.interval_ms),
        timeout: Duration::from_millis(args.timeout_ms),
        duration: Duration::from_secs_f64(args.duration),
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    println!(
        "probing {} from the client every {} ms for {} s (started at unix time {:.3})",
        options.target,
        args.interval_ms,
        args.duration,
        started.as_secs_f64()
    );
    let samples = in_netns(&client.netns, move || probe::run(options, |_| {}))?;
    if args.verbose {
        for sample in samples.iter().filter(|s| s.answer.is_none()) {
            println!(
                "{:.3} s: {} (at {:.3} s)",
                sample.start.as_secs_f64(),
                sample
                    .error
                    .as_ref()
                    .map_or("failed", |f| f.message.as_str()),
                sample.end.as_secs_f64()
            );
        }
    }
    print!("{}", probe::report(&samples));
    Ok(())
}

/// Runs `hapx lab down`.
pub fn down(name: &str) -> Result<()> {
    match State::load(name)? {
        Some(state) => {
            teardown(&state)?;
            println!("lab {name} removed");
        }
        None => println!("no lab {name:?}"),
    }
    let swept = sweep_stale()?;
    if swept > 0 {
        println!("removed {swept} namespaces left by labs whose owner is gone");
    }
    Ok(())
}

/// Removes everything `state` records: processes (every one in the lab's namespaces, and the
/// recorded pids), namespaces, the lab directory, then the state file.
pub fn teardown(state: &State) -> Result<()> {
    for host in &state.hosts {
        net::kill_all_in(&host.netns);
        let recorded = host.pid.into_iter();
        let corosync = (host.role == Role::Node)
            .then(|| up::node_spec(state, &host.name).ok()?.corosync_pid())
            .flatten();
        for pid in recorded.chain(corosync) {
            if net::process_runs(pid) && belongs_to_lab(pid) {
                net::signal(pid, Signal::SIGKILL);
            }
        }
    }
    let mut errors = Vec::new();
    for netns in state.hosts.iter().map(|h| &h.netns).chain([&state.switch]) {
        if let Err(e) = net::delete_netns(netns) {
            errors.push(e.to_string());
        }
    }
    wait_gone(state, Duration::from_secs(5));
    if let Err(e) = fs::remove_dir_all(&state.dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        errors.push(format!("{}: {e}", state.dir.display()));
    }
    if !errors.is_empty() {
        bail!("removing lab {}: {}", state.name, errors.join("; "));
    }
    state.remove()?;
    Ok(())
}

/// Whether a recorded `pid` is still one the lab started (a pid recorded long ago may have been
/// reused): it runs corosync, pacemakerd or hapx, in a network namespace other than ours.
fn belongs_to_lab(pid: u32) -> bool {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let ours = fs::read_link("/proc/self/ns/net").ok();
    let its = fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    ["corosync", "pacemakerd", "hapx"].contains(&comm.trim()) && its.is_some() && its != ours
}

fn wait_gone(state: &State, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline
        && state
            .hosts
            .iter()
            .filter_map(|h| h.pid)
            .any(net::process_runs)
    {
        thread::sleep(Duration::from_millis(50));
    }
}

/// Removes lab namespaces whose owner is gone (no state file names their lab, and the
/// `hapx lab up` that made them no longer runs), after killing what runs in them.
pub fn sweep_stale() -> Result<usize> {
    let mut live: HashSet<u32> = HashSet::new();
    if let Ok(entries) = fs::read_dir(state::run_dir()) {
        for entry in entries.flatten() {
            let file = entry.path();
            if file.extension().is_some_and(|e| e == "state")
                && let Ok(text) = fs::read_to_string(&file)
                && let Ok(s) = State::parse(&file, &text)
            {
                live.insert(s.id);
            }
        }
    }
    let stale = net::stale_namespaces(&live);
    let mut ids = HashSet::new();
    for netns in &stale {
        net::kill_all_in(netns);
        net::delete_netns(netns)?;
        ids.extend(
            netns
                .split('-')
                .nth(1)
                .and_then(|id| id.parse::<u32>().ok()),
        );
    }
    remove_stale_dirs(&ids);
    Ok(stale.len())
}

/// Removes the lab directories (`TMP/hapx-lab-NAME-ID`) of the stale labs `ids`.
fn remove_stale_dirs(ids: &HashSet<u32>) {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = name
            .strip_prefix(up::DIR_PREFIX)
            .and_then(|rest| rest.rsplit('-').next())
            .and_then(|id| id.parse::<u32>().ok());
        if id.is_some_and(|id| ids.contains(&id)) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
