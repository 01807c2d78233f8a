//! `hapx cluster start [--foreground] | stop | status | cleanup`: running the local driver.
//!
//! `start` without `--foreground` starts the same command with `--foreground` in the
//! background (its own process group, output appended to `<cib>.driver.log`) and returns once
//! the new driver holds the CIB's driver lock. `stop` sends the driver SIGTERM and waits until
//! it has stopped every resource and released the lock.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hapx_cib::model::Cib;
use hapx_cib::status::unpack;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::action::unix_now;
use super::lock::{self, DriverLock};
use super::store::{Bump, Store};
use super::{Driver, DriverConfig, history};
use crate::backend::FileCib;

/// `hapx cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the local driver for the embedded CIB (CIB_file, HAPX_CIB, else
    /// /var/lib/hapx/cib.xml): it probes every resource, then keeps this node matching the CIB.
    Start(StartArgs),
    /// Stop the local driver: resources stop in the reverse of their order, then it exits.
    Stop(StopArgs),
    /// Whether a driver runs for the CIB, and the state of each resource.
    Status,
    /// Forget the failures and history of RSC (default: of every failed resource), so that it
    /// is probed again and its fail counts no longer count (crm's `resource cleanup`).
    Cleanup {
        /// The resource.
        rsc: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Run in this process, logging to stdout, until SIGTERM or SIGINT.
    #[arg(long)]
    pub foreground: bool,
    /// This node's name in the CIB [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Where agents are found (OCF-ROOT/resource.d/PROVIDER/TYPE).
    #[arg(
        long,
        value_name = "DIR",
        env = "OCF_ROOT",
        default_value = "/usr/lib/ocf"
    )]
    pub ocf_root: PathBuf,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// How long to wait for the driver to stop the resources, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

fn cib_path() -> PathBuf {
    FileCib::from_env().path
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Runs `hapx cluster ...`.
pub fn run(command: &ClusterCommand) -> Result<ExitCode> {
    let cib = cib_path();
    match command {
        ClusterCommand::Start(args) if args.foreground => foreground(&cib, args),
        ClusterCommand::Start(args) => background(&cib, args),
        ClusterCommand::Stop(args) => stop(&cib, Duration::from_secs(args.timeout)),
        ClusterCommand::Status => status(&cib),
        ClusterCommand::Cleanup { rsc } => cleanup(&cib, rsc.as_deref()),
    }
}

fn foreground(cib: &Path, args: &StartArgs) -> Result<ExitCode> {
    let _lock = DriverLock::acquire(cib)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let mut cfg = DriverConfig::new(cib, args.node.clone().unwrap_or_else(hostname));
    cfg.ocf_root = args.ocf_root.clone();
    Driver::join(cfg, stop)
        .and_then(Driver::run)
        .with_context(|| format!("local driver for {}", cib.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn log_path(cib: &Path) -> PathBuf {
    let mut p = cib.as_os_str().to_owned();
    p.push(".driver.log");
    PathBuf::from(p)
}

fn background(cib: &Path, args: &StartArgs) -> Result<ExitCode> {
    if let Some(pid) = lock::holder(cib) {
        bail!(
            "a driver for {} is already running (pid {pid}, lock {})",
            cib.display(),
            lock::lock_path(cib).display()
        );
    }
    let log = log_path(cib);
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let exe = std::env::current_exe().context("finding the hapx binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["cluster", "start", "--foreground", "--ocf-root"])
        .arg(&args.ocf_root)
        .env("HAPX_CIB", cib)
        .env_remove("CIB_file")
        .stdin(Stdio::null())
        .stdout(out.try_clone().context("duplicating the log file")?)
        .stderr(out)
        .process_group(0);
    if let Some(node) = &args.node {
        cmd.args(["--node", node]);
    }
    use std::os::unix::process::CommandExt;
    let mut child = cmd.spawn().context("starting the driver")?;
    let pid = child.id() as i32;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if lock::holder(cib) == Some(pid) {
            println!(
                "local driver started (pid {pid}) for {}; log: {}",
                cib.display(),
                log.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(status) = child.try_wait().context("waiting for the driver")? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!(
                "the driver exited at once ({status}); last lines of {}:\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "the driver (pid {pid}) did not take the lock within 15 s; see {}",
        log.display()
    )
}

fn stop(cib: &Path, timeout: Duration) -> Result<ExitCode> {
    let Some(pid) = lock::holder(cib) else {
        println!("no driver is running for {}", cib.display());
        return Ok(ExitCode::SUCCESS);
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM)
        .with_context(|| format!("signalling the driver (pid {pid})"))?;
    let started = Instant::now();
    while started.elapsed() < timeout {
        if lock::holder(cib).is_none() {
            println!("local driver (pid {pid}) stopped its resources and exited");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the driver (pid {pid}) is still stopping resources after {} s",
        timeout.as_secs()
    )
}

fn status(cib: &Path) -> Result<ExitCode> {
    match lock::holder(cib) {
        Some(pid) => println!("Local driver: running (pid {pid}) for {}", cib.display()),
        None => println!("Local driver: not running for {}", cib.display()),
    }
    let text =
        std::fs::read_to_string(cib).with_context(|| format!("reading {}", cib.display()))?;
    let model = Cib::parse(&text).with_context(|| format!("reading {}", cib.display()))?;
    print!("{}", summary(&model, unix_now()));
    Ok(ExitCode::SUCCESS)
}

/// The nodes and each resource's state, one line each, as `crm_mon` lists them.
pub fn summary(cib: &Cib, now: i64) -> String {
    let st = unpack(cib, now);
    let mut out = String::new();
    let online: Vec<&str> = st
        .nodes
        .iter()
        .filter(|n| n.online)
        .map(|n| n.uname.as_str())
        .collect();
    let offline: Vec<&str> = st
        .nodes
        .iter()
        .filter(|n| !n.online)
        .map(|n| n.uname.as_str())
        .collect();
    if !online.is_empty() {
        out.push_str(&format!("  * Online: [ {} ]\n", online.join(" ")));
    }
    if !offline.is_empty() {
        out.push_str(&format!("  * OFFLINE: [ {} ]\n", offline.join(" ")));
    }
    for (r, rs) in st.resources.iter().enumerate() {
        let p = &st.configs[r];
        let state = if rs.running_on.is_empty() {
            "Stopped".to_string()
        } else {
            let nodes: Vec<&str> = rs
                .running_on
                .iter()
                .map(|&n| st.nodes[n].uname.as_str())
                .collect();
            format!("{} {}", rs.role.text(), nodes.join(" "))
        };
        let mut flags = Vec::new();
        if rs.failed {
            flags.push("FAILED".to_string());
        }
        if rs.blocked {
            flags.push("blocked".to_string());
        }
        if !rs.managed {
            flags.push("unmanaged".to_string());
        }
        for (n, node) in st.nodes.iter().enumerate() {
            let count = rs.fail_counts.get(n).copied().unwrap_or(0);
            if count > 0 {
                flags.push(format!("fail-count={count} on {}", node.uname));
            }
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", flags.join(", "))
        };
        out.push_str(&format!(
            "  * {}\t({}):\t {state}{flags}\n",
            p.id,
            p.agent_spec()
        ));
    }
    out
}

/// `resource cleanup [RSC] [NODE]` on a file CIB: forgets the failures and history of `rsc`
/// (default: of every resource that failed) on `node` (default: every node) so that the driver
/// probes it again. Returns the resources cleaned up. An unknown resource or node is an error
/// naming it, and nothing is written.
pub fn cleanup_file(cib: &Path, rsc: Option<&str>, node: Option<&str>) -> Result<Vec<String>> {
    let store = Store::new(cib);
    if rsc.is_some() || node.is_some() {
        let doc = store.load()?;
        if let Some(n) = node {
            let known = doc.root.descendants().any(|e| {
                matches!(e.name.as_str(), "node" | "node_state")
                    && (e.attr("uname") == Some(n) || e.id() == Some(n))
            });
            if !known {
                bail!("node {n} does not exist in {}", cib.display());
            }
        }
        let model =
            Cib::from_document(doc).with_context(|| format!("reading {}", cib.display()))?;
        if let Some(r) = rsc.filter(|r| model.primitive(r).is_none()) {
            bail!("resource {r} does not exist in {}", cib.display());
        }
    }
    Ok(store
        .update(Bump::Status, |doc| {
            let cleaned = history::cleanup(doc, rsc, node);
            (!cleaned.is_empty()).then_some(cleaned)
        })?
        .unwrap_or_default())
}

fn cleanup(cib: &Path, rsc: Option<&str>) -> Result<ExitCode> {
    let cleaned = cleanup_file(cib, rsc, None)?;
    if cleaned.is_empty() {
        println!("nothing to clean up");
    }
    for r in cleaned {
        println!("Cleaned up {r}");
    }
    Ok(ExitCode::SUCCESS)
}
