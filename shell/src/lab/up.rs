//! `hapx lab up`: building a lab.
//!
//! Inputs are read and adapted before anything is created, so a bad script changes nothing.
//! The state file is written before the first namespace and after every step, so whatever a
//! failure or a crash leaves behind, `hapx lab down` finds it; a failing `up` removes what it
//! made itself unless told to keep it.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hapx_agents::install::{self, InstallTarget};

use super::node::{self, NodeSpec};
use super::state::{Host, Role, Stack, State};
use super::{UpArgs, backend, net, ops, probe, script};

/// The lab network's hosts: (role, name, short role for names, last address byte).
const HOSTS: [(Role, &str, &str, u8); 6] = [
    (Role::Backend, "kube-mast01", "b1", 21),
    (Role::Backend, "kube-mast02", "b2", 22),
    (Role::Backend, "kube-mast03", "b3", 23),
    (Role::Client, "client", "cl", 100),
    (Role::Node, "hapx-node01", "n1", 11),
    (Role::Node, "hapx-node02", "n2", 12),
];
/// Lab directories are `TMP/hapx-lab-NAME-ID`.
pub const DIR_PREFIX: &str = "hapx-lab-";
/// The lab network (a documentation range).
const NETWORK: &str = "192.0.2";
/// The floating address's last byte.
const VIP_BYTE: u8 = 20;

/// Where the seed's files are: `HAPX_SEED_DIR`, else `../shared/seed` beside the repository.
pub fn seed_dir() -> PathBuf {
    std::env::var_os("HAPX_SEED_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/seed")),
        PathBuf::from,
    )
}

/// The files `up` works from, read and adapted.
struct Inputs {
    crm: String,
    haproxy_cfg: String,
}

fn read_inputs(args: &UpArgs, vip: &str) -> Result<Inputs> {
    let crm_path = args
        .script
        .clone()
        .unwrap_or_else(|| seed_dir().join("configure.crm"));
    let cfg_path = args
        .haproxy_cfg
        .clone()
        .unwrap_or_else(|| seed_dir().join("haproxy.cfg"));
    let crm_text = fs::read_to_string(&crm_path)
        .with_context(|| format!("reading the crm script {}", crm_path.display()))?;
    let cfg_text = fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading haproxy.cfg {}", cfg_path.display()))?;
    let broadcast = format!("{NETWORK}.255");
    let lab = script::LabAddress {
        vip,
        prefix_len: net::PREFIX_LEN,
        broadcast: &broadcast,
        nic: net::INTERFACE,
    };
    let crm = script::adapt_crm(&crm_path.display().to_string(), &crm_text, &lab, args.stack)?;
    Ok(Inputs {
        crm: format!("{}{crm}", script::LAB_PROPERTIES),
        haproxy_cfg: script::adapt_haproxy_cfg(&cfg_text),
    })
}

/// The binaries a lab runs, kept in the lab directory (hard links, else copies) so that a
/// rebuild or reinstall while the lab lives does not pull them from under its nodes.
pub fn lab_binary(state: &State, name: &str) -> PathBuf {
    state.dir.join("bin").join(name)
}

/// Places `hapx` (and for the hapx stack `hapx-ocf` and `hapx-proxy`, found beside it) in the
/// lab directory.
fn stage_binaries(state: &State) -> Result<()> {
    let exe = std::env::current_exe().context("finding the running hapx")?;
    let bin = state.dir.join("bin");
    fs::create_dir_all(&bin)?;
    let mut names = vec!["hapx"];
    if state.stack == Stack::Hapx {
        names.extend(["hapx-ocf", "hapx-proxy"]);
    }
    for name in names {
        let source = if name == "hapx" {
            exe.clone()
        } else {
            exe.with_file_name(name)
        };
        let target = bin.join(name);
        if fs::hard_link(&source, &target).is_err() {
            // The running hapx may have been replaced on disk already: its own image is
            // still readable through /proc.
            let from = if name == "hapx" {
                PathBuf::from("/proc/self/exe")
            } else {
                source.clone()
            };
            fs::copy(&from, &target).with_context(|| {
                format!(
                    "{} not found beside {} (build or install it)",
                    name,
                    exe.display()
                )
            })?;
        }
    }
    Ok(())
}

fn check_tools(stack: Stack) -> Result<()> {
    let needed = [
        "ip",
        "setsid",
        "nsenter",
        "unshare",
        "corosync",
        "pacemakerd",
        "crm_mon",
    ];
    for tool in needed {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
        if !found {
            bail!("{tool} is not installed (the lab needs it on PATH)");
        }
    }
    // The nodes see the lab's own files bind-mounted over these, so they must exist.
    for path in ["/etc/hosts", "/etc/haproxy/haproxy.cfg", "/usr/local/sbin"] {
        if !Path::new(path).exists() {
            bail!(
                "{path} is missing: the lab mounts its own over it in the nodes (install haproxy)"
            );
        }
    }
    let required: &[&str] = match stack {
        Stack::Hapx => &["/usr/lib/ocf/resource.d/heartbeat"],
        Stack::Reference => &[
            "/usr/lib/ocf/resource.d/heartbeat/IPaddr2",
            "/usr/lib/ocf/resource.d/heartbeat/anything",
            "/usr/sbin/haproxy",
        ],
    };
    for path in required {
        if !Path::new(path).exists() {
            bail!("{path} is missing (install resource-agents and haproxy)");
        }
    }
    check_dev_null()
}

/// Pacemaker's daemons run as `hacluster` and hand /dev/null to the agents they start; an
/// agent that cannot open it fails at once (a Rust one aborts before `main`), and the
/// cluster waits on the failed action instead of recovering.
fn check_dev_null() -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata("/dev/null").context("/dev/null")?;
    let mode = meta.permissions().mode() & 0o777;
    if !meta.file_type().is_char_device() || mode & 0o666 != 0o666 {
        bail!(
            "/dev/null is not a character device open to everyone (mode {mode:03o}): \
             Pacemaker's daemons and agents need it (as root: chmod 666 /dev/null)"
        );
    }
    Ok(())
}

/// Runs `hapx lab up`.
pub fn up(name: &str, args: &UpArgs) -> Result<()> {
    if let Some(existing) = State::load(name)? {
        bail!(
            "lab {name:?} exists (made by pid {}, directory {}); `hapx lab --name {name} down` \
             removes it",
            existing.id,
            existing.dir.display()
        );
    }
    ops::sweep_stale()?;
    let vip = format!("{NETWORK}.{VIP_BYTE}");
    let inputs = read_inputs(args, &vip)?;
    check_tools(args.stack)?;
    let id = std::process::id();
    let mut state = State {
        name: name.to_string(),
        id,
        stack: args.stack,
        dir: std::env::temp_dir().join(format!("{DIR_PREFIX}{name}-{id}")),
        switch: net::netns_name(id, "sw"),
        vip: vip.clone(),
        hosts: Vec::new(),
    };
    state.save()?;
    match build(&mut state, &inputs, args) {
        Ok(answer) => {
            println!(
                "lab {name} is up ({} stack): {vip}:{} answered by {answer}",
                args.stack.name(),
                backend::PORT
            );
            println!("state: {}", super::state::path_of(name).display());
            Ok(())
        }
        Err(e) if args.keep_on_failure => Err(e.context(format!(
            "lab {name} kept for a look; `hapx lab down` removes it"
        ))),
        Err(e) => {
            let removed = ops::teardown(&state);
            Err(match removed {
                Ok(()) => e,
                Err(down) => e.context(format!("also, removing the lab failed: {down:#}")),
            })
        }
    }
}

fn build(state: &mut State, inputs: &Inputs, args: &UpArgs) -> Result<String> {
    fs::create_dir_all(&state.dir).with_context(|| format!("creating {}", state.dir.display()))?;
    stage_binaries(state)?;
    net::add_switch(&state.switch)?;
    for (role, host, short, byte) in HOSTS {
        let host = Host {
            role,
            name: host.to_string(),
            netns: net::netns_name(state.id, short),
            port: short.to_string(),
            address: format!("{NETWORK}.{byte}"),
            pid: None,
        };
        net::add_host(&state.switch, &host.netns, &host.port, &host.address)?;
        state.hosts.push(host);
        state.save()?;
    }
    write_node_files(state, inputs)?;
    start_backends(state)?;
    let members: Vec<(String, String)> = state
        .hosts(Role::Node)
        .map(|h| (h.name.clone(), h.address.clone()))
        .collect();
    for (name, _) in &members {
        let spec = node_spec(state, name)?;
        spec.prepare()
            .with_context(|| format!("preparing {}", spec.dir.display()))?;
        let pid = spec.launch().context("starting corosync and pacemakerd")?;
        set_pid(state, name, pid)?;
    }
    let timeout = Duration::from_secs(args.timeout);
    let first = ops::wait_cluster(state, timeout)?;
    apply_script(state, &first)?;
    let target = SocketAddr::new(state.vip.parse()?, backend::PORT);
    let client = state.host("client").map(|h| h.netns.clone());
    let client = client.context("the lab has no client")?;
    ops::in_netns(&client, move || probe::wait_served(target, timeout))?.with_context(|| {
        format!(
            "{target} did not serve within {timeout:?}; crm_mon says:\n{}",
            ops::crm_mon_text(state).unwrap_or_default()
        )
    })
}

fn set_pid(state: &mut State, name: &str, pid: u32) -> Result<()> {
    state
        .host_mut(name)
        .with_context(|| format!("no host {name}"))?
        .pid = Some(pid);
    state.save()?;
    Ok(())
}

/// The node's layout: its directory, the cluster's members, and the files it sees privately.
pub fn node_spec(state: &State, name: &str) -> Result<NodeSpec> {
    let host = state
        .host(name)
        .with_context(|| format!("no node {name}"))?;
    let members = state
        .hosts(Role::Node)
        .map(|h| (h.name.clone(), h.address.clone()))
        .collect();
    let shared = &state.dir;
    let mut binds = vec![
        (shared.join("hosts"), PathBuf::from("/etc/hosts")),
        (
            shared.join("haproxy.cfg"),
            PathBuf::from("/etc/haproxy/haproxy.cfg"),
        ),
    ];
    if state.stack == Stack::Hapx {
        binds.push((
            shared.join("ocf/resource.d/heartbeat"),
            PathBuf::from("/usr/lib/ocf/resource.d/heartbeat"),
        ));
        binds.push((shared.join("sbin"), PathBuf::from("/usr/local/sbin")));
    }
    Ok(NodeSpec {
        name: name.to_string(),
        netns: host.netns.clone(),
        dir: shared.join(name),
        members,
        cluster_name: "hapx-lab".to_string(),
        binds,
    })
}

/// The files every node shares: /etc/hosts naming the lab's hosts, haproxy.cfg, the crm
/// script, and for the hapx stack the heartbeat agents with hapx's installed over them and
/// hapx-proxy where the haproxy agent looks for it.
fn write_node_files(state: &State, inputs: &Inputs) -> Result<()> {
    let dir = &state.dir;
    let mut hosts = String::from("127.0.0.1\tlocalhost\n");
    for h in &state.hosts {
        hosts.push_str(&format!("{}\t{}\n", h.address, h.name));
    }
    fs::write(dir.join("hosts"), hosts)?;
    fs::write(dir.join("haproxy.cfg"), &inputs.haproxy_cfg)?;
    fs::write(dir.join("configure.crm"), &inputs.crm)?;
    if state.stack == Stack::Hapx {
        let ocf_root = dir.join("ocf");
        let heartbeat = ocf_root.join("resource.d");
        fs::create_dir_all(&heartbeat)?;
        let copied = Command::new("cp")
            .args(["-a", "/usr/lib/ocf/resource.d/heartbeat"])
            .arg(&heartbeat)
            .status()
            .context("copying the heartbeat agents")?;
        if !copied.success() {
            bail!("copying /usr/lib/ocf/resource.d/heartbeat failed");
        }
        let target = InstallTarget {
            ocf_root,
            provider: "heartbeat".into(),
            binary: lab_binary(state, "hapx-ocf"),
        };
        install::install(&target).context("installing hapx's agents for the nodes")?;
        let sbin = dir.join("sbin");
        fs::create_dir_all(&sbin)?;
        std::os::unix::fs::symlink(lab_binary(state, "hapx-proxy"), sbin.join("hapx-proxy"))?;
    }
    Ok(())
}

fn start_backends(state: &mut State) -> Result<()> {
    let exe = lab_binary(state, "hapx");
    let backends: Vec<(String, String)> = state
        .hosts(Role::Backend)
        .map(|h| (h.name.clone(), h.netns.clone()))
        .collect();
    for (name, netns) in backends {
        let log = fs::File::create(state.dir.join(format!("{name}.log")))?;
        let child = Command::new("setsid")
            .args(["ip", "netns", "exec", &netns])
            .arg(&exe)
            .args(["lab", "backend", &name])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting backend {name}"))?;
        set_pid(state, &name, child.id())?;
    }
    Ok(())
}

/// Applies the adapted crm script through hapx (`hapx configure < SCRIPT`), live, on `node`.
fn apply_script(state: &State, node: &str) -> Result<()> {
    let pid = state
        .host(node)
        .and_then(|h| h.pid)
        .with_context(|| format!("{node} does not run"))?;
    let exe = lab_binary(state, "hapx");
    let script = state.dir.join("configure.crm");
    // The seed's script is a configure-level script, fed as `crm configure < configure.crm`.
    let input = fs::File::open(&script)?;
    let out = node::command(pid, &exe)
        .arg("configure")
        .stdin(input)
        .output()
        .context("running hapx in the node")?;
    if !out.status.success() {
        bail!(
            "hapx configure < {} on {node} failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
