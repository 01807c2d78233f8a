//! `hapx demo`: the seed's scenario, live, on this machine.
//!
//! The demo builds a private network of namespaces (a switch, a load-balancer node, a client
//! and one backend per server of the seed's `haproxy.cfg`, standing in for kube-mast01..03),
//! installs hapx's agents under a demo OCF root as `ocf:heartbeat:IPaddr2` and
//! `ocf:heartbeat:haproxy`, applies the seed's `configure.crm` through hapx's shell (only the
//! VIP's address and interface and the proxy's file locations adapted), and starts the local
//! driver inside the node's namespace. Then it shows what the seed promises: the cluster's
//! status, requests through the VIP answered round-robin by the backends, the stats page with
//! its credentials, and recovery: it kills the proxy and waits for the driver to restart it
//! (on-fail=restart) and for the client to be served again.
//!
//! With `--once` it runs end to end, prints a verdict and cleans up; the exit status says
//! whether every step passed. Otherwise it stays up until Ctrl-C. Every exit path (success,
//! failure, Ctrl-C, a panic) stops the driver (which stops the proxy and removes the VIP),
//! ends the backends and deletes the namespaces.

mod backends;
mod net;
mod seed;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hapx_cib::model::Cib;
use hapx_cib::status::unpack;

use crate::driver::action::unix_now;

/// `hapx demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run the scenario once, print a verdict and clean up; the exit status says pass or fail.
    #[arg(long)]
    pub once: bool,
    /// The crm script to apply (relative paths also tried from the source tree's root).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "../shared/seed/configure.crm"
    )]
    pub script: PathBuf,
    /// The haproxy.cfg to adapt for hapx-proxy.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "../shared/seed/haproxy.cfg"
    )]
    pub haproxy_cfg: PathBuf,
}

/// The demo network's plan: 198.51.100.0/27 (a documentation range), the VIP where the seed
/// has it in its /27.
const NET: [u8; 3] = [198, 51, 100];
const PREFIX_LEN: u8 = 27;
const NODE_IP: u8 = 2;
const CLIENT_IP: u8 = 3;
const VIP: u8 = 20;
const BROADCAST: u8 = 31;
const FIRST_BACKEND: u8 = 11;
/// The node's name in the CIB.
const NODE: &str = "demo-lb1";

fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(NET[0], NET[1], NET[2], last)
}

/// Runs `hapx demo`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        bail!("hapx demo needs root: it creates network namespaces");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let mut demo = Demo::new(stop)?;
    let passed = match demo.scenario(args) {
        Ok(()) => true,
        Err(e) => {
            println!("\nFAILED: {e:#}");
            demo.show_driver_log();
            false
        }
    };
    if passed && !args.once && !demo.interrupted() {
        println!(
            "\nThe demo stays up. From the client: ip netns exec {} curl -s http://{}:{}/",
            demo.client_ns,
            addr(VIP),
            demo.frontend_port
        );
        println!("Press Ctrl-C to stop it and clean up.");
        while !demo.interrupted() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    println!("\n== Cleaning up");
    drop(demo);
    println!("done");
    if args.once {
        println!("\nVERDICT: {}", if passed { "PASS" } else { "FAIL" });
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A relative path from the current directory, else from the source tree's root.
fn locate(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let alt = root.join(path);
    if alt.exists() {
        alt
    } else {
        path.to_path_buf()
    }
}

/// A program beside this `hapx`, else on PATH.
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the hapx binary")?;
    if let Some(p) = exe.parent().map(|d| d.join(name)).filter(|p| p.is_file()) {
        return Ok(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{name} is neither beside {} nor on PATH (build the workspace: cargo build --workspace)", exe.display()))
}

fn step(title: &str) {
    println!("\n== {title}");
}

/// Everything the demo made, undone on drop.
#[derive(Debug)]
struct Demo {
    stop: Arc<AtomicBool>,
    dir: PathBuf,
    hapx: PathBuf,
    net: Option<net::Network>,
    backends: Option<backends::Backends>,
    driver: Option<Child>,
    node_ns: String,
    client_ns: String,
    frontend_port: u16,
}

impl Demo {
    fn new(stop: Arc<AtomicBool>) -> Result<Demo> {
        let dir = std::env::temp_dir().join(format!("hapx-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Demo {
            stop,
            hapx: std::env::current_exe().context("finding the hapx binary")?,
            dir,
            net: None,
            backends: None,
            driver: None,
            node_ns: String::new(),
            client_ns: String::new(),
            frontend_port: 0,
        })
    }

    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn cib(&self) -> PathBuf {
        self.dir.join("cib.xml")
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("haproxy.pid")
    }

    /// `hapx` with the demo's CIB and OCF root.
    fn hapx(&self) -> Command {
        let mut cmd = Command::new(&self.hapx);
        cmd.env("HAPX_CIB", self.cib())
            .env_remove("CIB_file")
            .env("OCF_ROOT", self.dir.join("ocf"));
        cmd
    }

    /// Polls `check` until it holds, for at most `timeout`; Ctrl-C ends the wait.
    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if check() {
                return Ok(());
            }
            if self.interrupted() {
                bail!("interrupted while waiting for {what}");
            }
            if start.elapsed() >= timeout {
                bail!("{what}: not within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn scenario(&mut self, args: &DemoArgs) -> Result<()> {
        let script_path = locate(&args.script);
        let cfg_path = locate(&args.haproxy_cfg);
        let script = std::fs::read_to_string(&script_path)
            .with_context(|| format!("reading the crm script {}", script_path.display()))?;
        let cfg = std::fs::read_to_string(&cfg_path)
            .with_context(|| format!("reading {}", cfg_path.display()))?;
        let ocf_binary = sibling("hapx-ocf")?;
        let proxy_binary = sibling("hapx-proxy")?;

        step("Adapting the seed to the demo network");
        let backend_ips: Vec<Ipv4Addr> = (0..8).map(|i| addr(FIRST_BACKEND + i)).collect();
        let admin_socket = self.dir.join("admin.sock");
        let proxy_cfg =
            seed::adapt_haproxy_cfg(&cfg, &backend_ips, &admin_socket.to_string_lossy())
                .map_err(|e| anyhow!("{}: {e}", cfg_path.display()))?;
        let cfg_file = self.dir.join("haproxy.cfg");
        std::fs::write(&cfg_file, &proxy_cfg.text)
            .with_context(|| format!("writing {}", cfg_file.display()))?;
        let vip = seed::VipPlan {
            address: addr(VIP),
            prefix_len: PREFIX_LEN,
            broadcast: addr(BROADCAST),
            nic: net::INTERFACE.to_string(),
        };
        let proxy_params = [
            ("conffile", cfg_file.to_string_lossy().into_owned()),
            ("binpath", proxy_binary.to_string_lossy().into_owned()),
            ("pidfile", self.pidfile().to_string_lossy().into_owned()),
        ];
        let crm = seed::adapt_script(&script, &vip, &proxy_params)
            .map_err(|e| anyhow!("{}: {e}", script_path.display()))?;
        for change in crm.changes.iter().chain(&proxy_cfg.changes) {
            println!("  {change}");
        }
        self.frontend_port = proxy_cfg.frontend_port;

        step("Building the network (namespaces hapxd-*)");
        let mut network = net::create().context("creating the demo switch")?;
        self.node_ns = network.add_host("node", &[&format!("{}/{PREFIX_LEN}", addr(NODE_IP))])?;
        self.client_ns =
            network.add_host("client", &[&format!("{}/{PREFIX_LEN}", addr(CLIENT_IP))])?;
        println!(
            "  node   {} ({}) - the load balancer, where the VIP {} will live",
            addr(NODE_IP),
            self.node_ns,
            addr(VIP)
        );
        println!("  client {} ({})", addr(CLIENT_IP), self.client_ns);
        let mut servers = Vec::new();
        for (i, (name, port)) in proxy_cfg.servers.iter().enumerate() {
            let ip = backend_ips[i];
            let ns = network.add_host(&format!("b{i}"), &[&format!("{ip}/{PREFIX_LEN}")])?;
            println!("  backend {name} at {ip}:{port} ({ns})");
            servers.push((name.clone(), ns, SocketAddr::from((ip, *port))));
        }
        self.net = Some(network);
        self.backends = Some(backends::Backends::start(&servers).context("starting the backends")?);

        step("Installing hapx's agents as ocf:heartbeat:IPaddr2 and ocf:heartbeat:haproxy");
        crate::agents::install(&crate::cli::AgentsTarget {
            provider: "heartbeat".into(),
            ocf_root: self.dir.join("ocf"),
            binary: Some(ocf_binary),
        })
        .context("installing the agents under the demo OCF root")?;

        step(&format!(
            "Applying {} through hapx configure",
            script_path.display()
        ));
        let script_file = self.dir.join("configure.crm");
        std::fs::write(&script_file, &crm.text)?;
        let out = self
            .hapx()
            .arg("configure")
            .stdin(std::fs::File::open(&script_file)?)
            .output()
            .context("running hapx configure")?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("hapx configure refused the script ({})", out.status);
        }

        step("Starting the local driver in the node's namespace");
        let log = std::fs::File::create(self.dir.join("driver.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node_ns])
            .arg(&self.hapx)
            .args([
                "cluster",
                "start",
                "--foreground",
                "--node",
                NODE,
                "--ocf-root",
            ])
            .arg(self.dir.join("ocf"))
            .env("HAPX_CIB", self.cib())
            .env_remove("CIB_file")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C reaches the demo, which then stops the driver in
            // order.
            .process_group(0)
            .spawn()
            .context("starting the driver")?;
        println!(
            "  driver pid {}, log {}",
            child.id(),
            self.dir.join("driver.log").display()
        );
        self.driver = Some(child);
        self.wait_for("both resources started", Duration::from_secs(60), || {
            self.running(&crm.vip_id) && self.running(&crm.proxy_id)
        })?;
        self.show_status();

        let vip_addr = SocketAddr::from((addr(VIP), proxy_cfg.frontend_port));
        step(&format!(
            "Requests from the client through the VIP {vip_addr}"
        ));
        let names: Vec<String> = proxy_cfg.servers.iter().map(|s| s.0.clone()).collect();
        self.requests(vip_addr, &names)?;

        if let Some((port, auth)) = &proxy_cfg.stats {
            let url = format!("http://{}:{port}/", addr(VIP));
            step("The stats page");
            match auth.as_deref().and_then(|a| a.split_once(':')) {
                Some((user, password)) => println!("  {url} (user {user}, password {password})"),
                None => println!("  {url}"),
            }
            let page = backends::get(
                &self.client_ns,
                SocketAddr::from((addr(VIP), *port)),
                "/",
                auth.as_deref(),
            )
            .context("fetching the stats page")?;
            let status = page.lines().next().unwrap_or("");
            println!("  GET with the credentials: {status}");
            if !status.contains(" 200") {
                bail!("the stats page answered '{status}'");
            }
        }

        step("Killing the proxy: the driver must restart it (on-fail=restart)");
        let old = read_pid(&self.pidfile())
            .ok_or_else(|| anyhow!("no pid in {}", self.pidfile().display()))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(old),
            nix::sys::signal::Signal::SIGKILL,
        )
        .with_context(|| format!("killing hapx-proxy (pid {old})"))?;
        let log_lines = std::fs::read_to_string(self.dir.join("driver.log"))
            .unwrap_or_default()
            .lines()
            .count();
        println!("  killed hapx-proxy (pid {old}); waiting for the next monitor to notice");
        let killed_at = Instant::now();
        self.wait_for(
            "the driver restarting the proxy",
            Duration::from_secs(120),
            || {
                let restarted = read_pid(&self.pidfile())
                    .is_some_and(|p| p != old && Path::new(&format!("/proc/{p}")).exists());
                restarted && self.running(&crm.proxy_id) && self.fail_count(&crm.proxy_id) > 0
            },
        )?;
        println!(
            "  restarted after {} s: new pid {}, fail count {}",
            killed_at.elapsed().as_secs(),
            read_pid(&self.pidfile()).unwrap_or(0),
            self.fail_count(&crm.proxy_id)
        );
        println!("  the driver's log:");
        let log = std::fs::read_to_string(self.dir.join("driver.log")).unwrap_or_default();
        for line in log.lines().skip(log_lines) {
            println!("    {line}");
        }
        self.show_status();
        step("The client is served again");
        self.requests(vip_addr, &names)?;
        self.verify()?;
        Ok(())
    }

    /// `crm_verify -x` on the CIB the driver wrote, when Pacemaker's tools are installed.
    fn verify(&self) -> Result<()> {
        step("Pacemaker's crm_verify on the CIB the driver wrote");
        let out = match Command::new("crm_verify")
            .arg("-x")
            .arg(self.cib())
            .output()
        {
            Ok(out) => out,
            Err(_) => {
                println!("  crm_verify is not installed: skipped");
                return Ok(());
            }
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !text.trim().is_empty() {
            bail!("crm_verify -x {}: {}", self.cib().display(), text.trim());
        }
        println!("  crm_verify -x: clean");
        Ok(())
    }

    /// 2 rounds of requests; every backend must answer, in turn.
    fn requests(&self, vip: SocketAddr, names: &[String]) -> Result<()> {
        let mut answers = Vec::new();
        for i in 0..names.len() * 2 {
            let mut last_err = None;
            // The first request after a (re)start may race the proxy's listeners.
            for _ in 0..10 {
                match backends::get(&self.client_ns, vip, "/", None) {
                    Ok(r) => {
                        let who = r
                            .lines()
                            .find_map(|l| l.strip_prefix("answered by "))
                            .unwrap_or("?")
                            .to_string();
                        println!(
                            "  request {}: {}",
                            i + 1,
                            if who == "?" {
                                r.lines().next().unwrap_or("").to_string()
                            } else {
                                format!("answered by {who}")
                            }
                        );
                        answers.push(who);
                        last_err = None;
                        break;
                    }
                    Err(e) => {
                        last_err = Some(e);
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
            }
            if let Some(e) = last_err {
                bail!("request {} through {vip}: {e}", i + 1);
            }
        }
        for name in names {
            if !answers.contains(name) {
                bail!("{name} never answered: {answers:?}");
            }
        }
        let first_round = &answers[..names.len()];
        let distinct: std::collections::BTreeSet<&String> = first_round.iter().collect();
        if distinct.len() != names.len() {
            bail!("not round-robin: {answers:?}");
        }
        println!("  round-robin over {} backends: yes", names.len());
        Ok(())
    }

    fn model(&self) -> Option<Cib> {
        Cib::parse(&std::fs::read_to_string(self.cib()).ok()?).ok()
    }

    fn running(&self, rsc: &str) -> bool {
        let Some(cib) = self.model() else {
            return false;
        };
        let st = unpack(&cib, unix_now());
        st.resources
            .iter()
            .any(|r| r.id == rsc && !r.running_on.is_empty() && !r.failed)
    }

    fn fail_count(&self, rsc: &str) -> i32 {
        let Some(cib) = self.model() else { return 0 };
        let st = unpack(&cib, unix_now());
        st.resources
            .iter()
            .filter(|r| r.id == rsc)
            .flat_map(|r| r.fail_counts.iter().copied())
            .sum()
    }

    /// `hapx status` (crm_mon's view of the CIB), else the driver's own summary.
    fn show_status(&self) {
        step("Status (hapx status)");
        match self.hapx().arg("status").output() {
            Ok(out) if out.status.success() && !out.stdout.is_empty() => {
                print!("{}", String::from_utf8_lossy(&out.stdout));
            }
            _ => match self.hapx().args(["cluster", "status"]).output() {
                Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
                Err(e) => println!("  hapx cluster status: {e}"),
            },
        }
    }

    fn show_driver_log(&self) {
        let text = std::fs::read_to_string(self.dir.join("driver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        println!("\nLast lines of the driver's log:");
        for l in &lines[lines.len().saturating_sub(20)..] {
            println!("  {l}");
        }
    }

    fn stop_driver(&mut self) {
        let Some(mut child) = self.driver.take() else {
            return;
        };
        let _ = self
            .hapx()
            .args(["cluster", "stop", "--timeout", "60"])
            .stdout(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop_driver();
        // A proxy the driver could not stop (the driver died): ours by its pid file.
        if let Some(pid) = read_pid(&self.pidfile()) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "hapx-proxy") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        self.backends = None;
        self.net = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
