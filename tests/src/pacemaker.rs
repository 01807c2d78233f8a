//! Real Corosync + Pacemaker nodes for tests.
//!
//! A [`PacemakerNode`] runs `corosync -f` and `pacemakerd -f` inside a network namespace (a host
//! of a [`Network`]) and a private mount and UTS namespace of its own: `/run`, `/dev/shm`,
//! `/var/lib/pacemaker`, `/var/log/pacemaker` and `/etc/corosync` are private to the node, its
//! hostname is its node name, and Pacemaker's IPC (abstract unix sockets) is private to its
//! network namespace. So several tests, or several nodes of one test, run Pacemaker at once
//! without seeing each other, and nothing of the machine's own cluster configuration is touched.
//!
//! Cluster tools for the node (`crm_mon`, `cibadmin`, `crm`, `ip`) run through
//! [`PacemakerNode::command`], which enters the node's namespaces with `nsenter`.
//!
//! Dropping the node stops Pacemaker (which stops its resources first), then Corosync, by the
//! pids the harness started, and removes the node's directory; namespaces go with the
//! [`Network`].
//!
//! Start-up takes about 25 s: the controller waits out its election timer before it becomes DC.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Group, Pid, User};

use crate::netns::{Host, Network};
use crate::require;

static NEXT_NODE: AtomicU32 = AtomicU32::new(0);

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's name in the cluster (and its hostname).
    pub name: String,
    /// The address Corosync binds to; loopback for a one-node cluster.
    pub ring_address: String,
    /// Every node of the cluster as (name, ring address); empty means just this one.
    pub members: Vec<(String, String)>,
    /// OCF provider directories to show the node at `/usr/lib/ocf/resource.d/PROVIDER`.
    pub ocf_providers: Vec<(String, PathBuf)>,
    /// How long to wait for the node to be online with a DC.
    pub startup_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            name: "node1".into(),
            ring_address: "127.0.0.1".into(),
            members: Vec::new(),
            ocf_providers: Vec::new(),
            startup_timeout: Duration::from_secs(120),
        }
    }
}

/// A running Pacemaker node; stopped on drop.
#[derive(Debug)]
pub struct PacemakerNode {
    name: String,
    dir: PathBuf,
    netns: String,
    pacemakerd: Child,
    /// The network this node made for itself, if [`PacemakerNode::start`] made one. Dropped
    /// after the daemons are stopped.
    own_network: Option<Network>,
}

/// The tools a node needs on this machine.
const TOOLS: [&str; 5] = ["corosync", "pacemakerd", "crm_mon", "nsenter", "unshare"];

impl PacemakerNode {
    /// Starts a one-node cluster in a network of its own (host `pcmk`, `eth0` 192.0.2.1/24,
    /// loopback for Corosync) and waits until it is online with a DC.
    ///
    /// Returns `None` (after a loud SKIPPED line) when this machine cannot run it; under `CI`
    /// that panics instead. A start that fails on a machine that has everything panics with the
    /// node's logs: that is a real failure.
    pub fn start(test: &str, options: NodeOptions) -> Option<PacemakerNode> {
        if !Self::available(test) {
            return None;
        }
        let mut network = Network::new().expect("create the node's network");
        let host = network
            .add_host("pcmk", &["192.0.2.1/24"])
            .expect("add the node's host");
        let mut node = Self::start_in(&host, options).unwrap_or_else(|e| panic!("{test}: {e}"));
        node.own_network = Some(network);
        Some(node)
    }

    /// Whether this machine can run a node; skips (or fails under CI) when it cannot.
    pub fn available(test: &str) -> bool {
        require::network_namespaces(test) && TOOLS.iter().all(|tool| require::command(test, tool))
    }

    /// Starts a node inside `host`'s network namespace and waits until it is online with a DC.
    /// For clusters of several nodes, give every node the same `members`.
    pub fn start_in(host: &Host, options: NodeOptions) -> io::Result<PacemakerNode> {
        let seq = NEXT_NODE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "hapxt-pcmk-{}-{seq}-{}",
            std::process::id(),
            options.name
        ));
        prepare_dir(&dir, &options)?;
        let script = launch_script(&dir, &options)?;
        let pacemakerd = Command::new("ip")
            .args(["netns", "exec", &host.netns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let node = PacemakerNode {
            name: options.name.clone(),
            dir,
            netns: host.netns.clone(),
            pacemakerd,
            own_network: None,
        };
        let online = format!("name=\"{}\" id=", node.name);
        node.wait_until(options.startup_timeout, |xml| {
            xml.contains("<current_dc present=\"true\"")
                && xml
                    .lines()
                    .any(|l| l.contains(&online) && l.contains("online=\"true\""))
        })
        .map_err(|last| {
            io::Error::other(format!(
                "node {} not online with a DC after {:?}; last crm_mon: {last}\n{}",
                node.name,
                options.startup_timeout,
                node.log_tail(40)
            ))
        })?;
        Ok(node)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network namespace the node runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The pid of `pacemakerd`, whose namespaces [`PacemakerNode::command`] enters.
    pub fn pid(&self) -> u32 {
        self.pacemakerd.id()
    }

    /// The node's private directory (its `/var/lib/pacemaker` is `DIR/lib`, logs in `DIR/log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The network the node made for itself with [`PacemakerNode::start`].
    pub fn network(&self) -> Option<&Network> {
        self.own_network.as_ref()
    }

    /// A command running `program` inside the node's network, mount and UTS namespaces.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.pid().to_string())
            .args(["--net", "--mount", "--uts", "--"])
            .arg(program);
        cmd
    }

    /// Runs `args` inside the node to completion.
    pub fn run(&self, args: &[&str]) -> io::Result<Output> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        self.command(program)
            .args(rest)
            .stdin(Stdio::null())
            .output()
    }

    /// `crm_mon --one-shot --output-as=xml`, as text.
    pub fn crm_mon_xml(&self) -> io::Result<String> {
        let out = self.run(&["crm_mon", "--one-shot", "--output-as=xml"])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls `crm_mon` until `ready` accepts its XML; returns that XML, or the last one seen.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(xml) = self.crm_mon_xml() {
                if ready(&xml) {
                    return Ok(xml);
                }
                last = xml;
            }
            thread::sleep(Duration::from_millis(250));
        }
        Err(last)
    }

    /// The last `lines` lines of Pacemaker's and Corosync's logs, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        ["log/pacemaker.log", "log/corosync.log", "corosync.out"]
            .iter()
            .map(|name| {
                let text = fs::read_to_string(self.dir.join(name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(lines).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {name}\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn corosync_pid(&self) -> Option<Pid> {
        let text = fs::read_to_string(self.dir.join("corosync.pid")).ok()?;
        text.trim().parse().ok().map(Pid::from_raw)
    }

    /// Stops Pacemaker (it stops its resources first), then Corosync.
    fn stop(&mut self) {
        if self.pacemakerd.try_wait().ok().flatten().is_none() {
            if let Ok(pid) = i32::try_from(self.pacemakerd.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            if !wait_child(&mut self.pacemakerd, Duration::from_secs(90)) {
                let _ = self.pacemakerd.kill();
                let _ = self.pacemakerd.wait();
            }
        }
        // Corosync was started by the node's launch script, so its pid is ours to end.
        if let Some(pid) = self.corosync_pid() {
            if kill(pid, Signal::SIGTERM).is_ok() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && process_runs(pid) {
                    thread::sleep(Duration::from_millis(50));
                }
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }
}

impl Drop for PacemakerNode {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("Pacemaker node {} logs:\n{}", self.name, self.log_tail(60));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether `pid` is a process that has not exited (a zombie has).
fn process_runs(pid: Pid) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !status.is_empty() && !status.contains("State:\tZ")
}

fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Creates the node's private directories with the owners Pacemaker expects, its
/// corosync.conf, and a first CIB with fencing off (a test node has no fence device).
fn prepare_dir(dir: &Path, options: &NodeOptions) -> io::Result<()> {
    let _ = fs::remove_dir_all(dir);
    let hacluster = User::from_name("hacluster")
        .ok()
        .flatten()
        .ok_or_else(|| io::Error::other("user hacluster missing: is pacemaker installed?"))?;
    let haclient = Group::from_name("haclient")
        .ok()
        .flatten()
        .ok_or_else(|| io::Error::other("group haclient missing: is pacemaker installed?"))?;
    let owned = |path: &Path, mode: u32| -> io::Result<()> {
        fs::create_dir_all(path)?;
        chown(
            path,
            Some(hacluster.uid.as_raw()),
            Some(haclient.gid.as_raw()),
        )?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    };
    owned(&dir.join("lib"), 0o750)?;
    for sub in ["blackbox", "cib", "cores", "pengine"] {
        owned(&dir.join("lib").join(sub), 0o750)?;
    }
    owned(&dir.join("log"), 0o770)?;
    owned(&dir.join("log/bundles"), 0o770)?;
    fs::create_dir_all(dir.join("corosync/uidgid.d"))?;
    fs::write(dir.join("corosync/corosync.conf"), corosync_conf(options))?;
    let cib = dir.join("lib/cib/cib.xml");
    fs::write(&cib, INITIAL_CIB)?;
    chown(
        &cib,
        Some(hacluster.uid.as_raw()),
        Some(haclient.gid.as_raw()),
    )?;
    fs::set_permissions(&cib, fs::Permissions::from_mode(0o600))
}

const INITIAL_CIB: &str = r#"<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"#;

/// Corosync's configuration: knet without crypto, the members, votequorum (two_node for two).
/// Corosync's parser wants a newline after every `{`.
fn corosync_conf(options: &NodeOptions) -> String {
    let members = if options.members.is_empty() {
        vec![(options.name.clone(), options.ring_address.clone())]
    } else {
        options.members.clone()
    };
    let mut nodes = String::new();
    for (id, (name, addr)) in members.iter().enumerate() {
        nodes.push_str(&format!(
            "  node {{\n    ring0_addr: {addr}\n    name: {name}\n    nodeid: {}\n  }}\n",
            id + 1
        ));
    }
    let two_node = if members.len() == 2 {
        "  two_node: 1\n"
    } else {
        ""
    };
    format!(
        "totem {{\n  version: 2\n  cluster_name: hapxtest\n  transport: knet\n  \
         crypto_cipher: none\n  crypto_hash: none\n  token: 3000\n}}\n\
         nodelist {{\n{nodes}}}\n\
         quorum {{\n  provider: corosync_votequorum\n{two_node}}}\n\
         logging {{\n  to_stderr: no\n  to_logfile: yes\n  \
         logfile: /var/log/pacemaker/corosync.log\n  to_syslog: no\n}}\n"
    )
}

/// The shell script run inside the node's fresh mount and UTS namespaces: private mounts,
/// hostname, Corosync in the background (its pid written down), then `exec pacemakerd`, so the
/// harness's child is pacemakerd itself.
fn launch_script(dir: &Path, options: &NodeOptions) -> io::Result<String> {
    let d = dir.display();
    let mut script = format!(
        "set -e\n\
         mount -t tmpfs -o mode=755 tmpfs /run\n\
         mkdir -p /run/lock\n\
         mount -t tmpfs -o mode=1777 tmpfs /dev/shm\n\
         mount --bind {d}/lib /var/lib/pacemaker\n\
         mount --bind {d}/log /var/log/pacemaker\n\
         mount --bind {d}/corosync /etc/corosync\n\
         hostname {name}\n",
        name = options.name
    );
    for (provider, source) in &options.ocf_providers {
        if provider.is_empty() || provider.contains('/') || provider.starts_with('.') {
            return Err(io::Error::other(format!(
                "bad OCF provider name {provider:?}"
            )));
        }
        // The mount point must exist in the shared file system; an empty directory is harmless.
        let target = Path::new("/usr/lib/ocf/resource.d").join(provider);
        fs::create_dir_all(&target)?;
        script.push_str(&format!(
            "mount --bind '{}' '{}'\n",
            source.display(),
            target.display()
        ));
    }
    script.push_str(&format!(
        "corosync -f > {d}/corosync.out 2>&1 &\n\
         echo $! > {d}/corosync.pid\n\
         exec pacemakerd -f > {d}/pacemakerd.out 2>&1\n"
    ));
    Ok(script)
}
