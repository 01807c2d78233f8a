//! Shared pieces of the agent tests: an OCF provider directory holding hapx's agents, running
//! an agent action inside a namespace host through hapx's own executor, and reading a host's
//! addresses and neighbour table.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_agents::exec::{self, Invocation, Outcome};

use crate::bins;
use crate::netns::{Host, Network};

/// A temporary provider directory (`.../resource.d/hapx`) with `IPaddr2` and `haproxy` linked to
/// the built `hapx-ocf`, readable by everyone (ocf-tester runs meta-data as `nobody`).
#[derive(Debug)]
pub struct ProviderDir {
    root: PathBuf,
}

impl ProviderDir {
    pub fn new(tag: &str) -> ProviderDir {
        let root = std::env::temp_dir().join(format!("hapxt-ocf-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let binary = bins::path("hapx-ocf");
        let dir = root.join("resource.d/hapx");
        // From here on, Drop removes whatever was made.
        let made = ProviderDir { root };
        fs::create_dir_all(&dir).expect("create the provider directory");
        for d in [made.root.as_path(), &made.root.join("resource.d"), &dir] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for name in hapx_agents::AGENT_NAMES {
            symlink(&binary, dir.join(name)).expect("link an agent");
        }
        made
    }

    /// The provider directory, to bind-mount as `/usr/lib/ocf/resource.d/hapx`.
    pub fn dir(&self) -> PathBuf {
        self.root.join("resource.d/hapx")
    }

    /// The agent `name` (`IPaddr2`, `haproxy`).
    pub fn agent(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

impl Drop for ProviderDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Runs `agent action` with `params` inside `host`, through hapx's executor.
pub fn run_in(host: &Host, agent: &Path, action: &str, params: &[(&str, &str)]) -> Outcome {
    run_in_env(host, agent, action, params, &[])
}

/// [`run_in`] with extra environment variables (`OCF_CHECK_LEVEL`, `OCF_RESKEY_CRM_meta_*`).
pub fn run_in_env(
    host: &Host,
    agent: &Path,
    action: &str,
    params: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Outcome {
    let mut inv = Invocation::new(agent, action)
        .wrapped(&["ip", "netns", "exec", &host.netns])
        .timeout(Duration::from_secs(30));
    inv.params = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    for (k, v) in env {
        inv = inv.env(k, v);
    }
    exec::run(&inv).unwrap_or_else(|e| panic!("{e}"))
}

/// The exit status, panicking with the agent's stderr when it did not exit.
pub fn status(out: &Outcome) -> i32 {
    out.status()
        .unwrap_or_else(|| panic!("agent did not exit: {:?}\n{}", out.termination, out.stderr))
}

/// `ip -o address show` inside `host`: one line per address.
pub fn addresses(net: &Network, host: &Host) -> String {
    let out = net
        .run(host, &["ip", "-o", "address", "show"])
        .expect("run ip address");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `host`'s addresses ([`addresses`]) once the kernel's own have settled: its interface has
/// its IPv6 link-local address and that address passed duplicate detection, both of which
/// the kernel does by itself in the second or two after the host came up. A snapshot to
/// compare with a later one.
pub fn settled_addresses(net: &Network, host: &Host) -> String {
    let settled = |shown: &str| shown.contains(" scope link ") && !shown.contains(" tentative ");
    crate::wait::eventually(Duration::from_secs(10), || settled(&addresses(net, host)));
    addresses(net, host)
}

/// Whether `host` has `ip` (without prefix) on any interface.
pub fn has_address(net: &Network, host: &Host, ip: &str) -> bool {
    addresses(net, host)
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(ip))
}

/// The MAC address `host`'s neighbour table has for `ip`, if any.
pub fn neighbour_mac(net: &Network, host: &Host, ip: &str) -> Option<String> {
    let out = net
        .run(host, &["ip", "neigh", "show", ip, "dev", Host::INTERFACE])
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_string)
}

/// Packets `host` has sent on its `eth0`.
pub fn tx_packets(net: &Network, host: &Host) -> u64 {
    let path = format!("/sys/class/net/{}/statistics/tx_packets", Host::INTERFACE);
    let out = net.run(host, &["cat", &path]).expect("read tx_packets");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("tx_packets is a number")
}

/// Accepts TCP connections on 127.0.0.1:`port` inside `host`, from a thread of this process
/// that moved into the host's network namespace (setns affects only the calling thread), for
/// as long as the test process runs. A backend server for health checks, with no program to
/// install.
pub fn listen_in(host: &Host, port: u16) -> std::io::Result<()> {
    let netns = fs::File::open(format!("/run/netns/{}", host.netns))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let bound = nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)
            .and_then(|()| std::net::TcpListener::bind(("127.0.0.1", port)));
        let listener = match bound {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        // Health checks only connect; each connection is closed at once.
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    rx.recv().map_err(std::io::Error::other)?
}
