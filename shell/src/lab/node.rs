//! A Corosync + Pacemaker node in private namespaces: the one launcher behind `hapx lab`'s
//! cluster nodes and the test harness's `hapx_tests::pacemaker::PacemakerNode`.
//!
//! A node runs in a network namespace (a host of a [`crate::netns`] network) plus a private
//! mount and UTS namespace of its own. Inside the node, `/run` and `/dev/shm` are fresh tmpfs,
//! `/var/lib/pacemaker`, `/var/log/pacemaker` and `/etc/corosync` are the node's own
//! directories, its hostname is its node name, and any further files are bind-mounted over the
//! node's paths ([`NodeSpec::binds`]: the lab's `/etc/hosts`, `haproxy.cfg`, hapx's agents over
//! `/usr/lib/ocf/resource.d/heartbeat` and `hapx-proxy` in `/usr/local/sbin`; the tests' OCF
//! providers). So two nodes (and the machine's own cluster, if it has one) never share state,
//! and Pacemaker's IPC (abstract unix sockets) is private to the node's network namespace.
//!
//! The launch runs `corosync -f` in the background with its pid written to the node directory,
//! then `exec pacemakerd -f`, so the pid the caller gets is pacemakerd's and cluster tools enter
//! the node through it ([`command`]: `nsenter --target PID`). The lab launches detached
//! (`setsid`, [`NodeSpec::launch`]) so nodes outlive `hapx lab up`; tests keep the child
//! ([`NodeSpec::spawn`]) to stop and reap it.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::unistd::{Group, User};

/// Corosync's token timeout in the lab (the seed's).
pub const TOKEN_MS: u32 = 3000;

/// How a node is laid out and started.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The node's name (and hostname).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its private directory.
    pub dir: PathBuf,
    /// Every member as (name, ring address).
    pub members: Vec<(String, String)>,
    /// Corosync's `cluster_name` (`hapx-lab`, `hapxtest`).
    pub cluster_name: String,
    /// Files bind-mounted over paths of the node: (source, target).
    pub binds: Vec<(PathBuf, PathBuf)>,
}

/// A first CIB with fencing off: a lab or test node has no fence device.
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

impl NodeSpec {
    /// Creates the node's directories with the owners Pacemaker expects, its corosync.conf and
    /// a first CIB.
    pub fn prepare(&self) -> io::Result<()> {
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
        let dir = &self.dir;
        for sub in ["lib", "lib/blackbox", "lib/cib", "lib/cores", "lib/pengine"] {
            owned(&dir.join(sub), 0o750)?;
        }
        owned(&dir.join("log"), 0o770)?;
        owned(&dir.join("log/bundles"), 0o770)?;
        fs::create_dir_all(dir.join("corosync/uidgid.d"))?;
        fs::write(
            dir.join("corosync/corosync.conf"),
            corosync_conf(&self.cluster_name, &self.members),
        )?;
        let cib = dir.join("lib/cib/cib.xml");
        fs::write(&cib, INITIAL_CIB)?;
        chown(
            &cib,
            Some(hacluster.uid.as_raw()),
            Some(haclient.gid.as_raw()),
        )?;
        fs::set_permissions(&cib, fs::Permissions::from_mode(0o600))
    }

    /// Starts Corosync and Pacemaker, detached from this process (its own session, not
    /// stopped with it); returns pacemakerd's pid.
    pub fn launch(&self) -> io::Result<u32> {
        Ok(self.spawn(true)?.id())
    }

    /// Starts Corosync and Pacemaker; the child is pacemakerd itself. With `detach`, it runs in
    /// a session of its own (`setsid`). Its standard streams are null: the daemons log to the
    /// node directory.
    pub fn spawn(&self, detach: bool) -> io::Result<Child> {
        let script = self.launch_script();
        // setsid(1) execs in place (the child is not a group leader), so the pid is
        // pacemakerd's; `ip netns exec` and `unshare` (without --fork) exec in place as well.
        let mut cmd = Command::new(if detach { "setsid" } else { "ip" });
        if detach {
            cmd.arg("ip");
        }
        cmd.args(["netns", "exec", &self.netns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    }

    fn launch_script(&self) -> String {
        let d = self.dir.display();
        let mut script = format!(
            "set -e\n\
             mount -t tmpfs -o mode=755 tmpfs /run\n\
             mkdir -p /run/lock /run/haproxy\n\
             mount -t tmpfs -o mode=1777 tmpfs /dev/shm\n\
             mount --bind {d}/lib /var/lib/pacemaker\n\
             mount --bind {d}/log /var/log/pacemaker\n\
             mount --bind {d}/corosync /etc/corosync\n\
             hostname {}\n",
            self.name
        );
        for (source, target) in &self.binds {
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
        script
    }

    /// The pid of the node's Corosync, as its launch wrote it down.
    pub fn corosync_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("corosync.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The last `lines` lines of the node's Pacemaker and Corosync logs, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        [
            "log/pacemaker.log",
            "log/corosync.log",
            "corosync.out",
            "pacemakerd.out",
        ]
        .iter()
        .map(|name| {
            let text = fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            format!("--- {name}\n{}", tail.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
    }
}

/// Corosync's configuration for cluster `cluster_name`: knet without crypto, the members, the
/// seed's token timeout, votequorum with two_node for two members. Its parser wants a newline
/// after every `{`.
pub fn corosync_conf(cluster_name: &str, members: &[(String, String)]) -> String {
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
        "totem {{\n  version: 2\n  cluster_name: {cluster_name}\n  transport: knet\n  \
         crypto_cipher: none\n  crypto_hash: none\n  token: {TOKEN_MS}\n}}\n\
         nodelist {{\n{nodes}}}\n\
         quorum {{\n  provider: corosync_votequorum\n{two_node}}}\n\
         logging {{\n  to_stderr: no\n  to_logfile: yes\n  timestamp: hires\n  \
         logfile: /var/log/pacemaker/corosync.log\n  to_syslog: no\n}}\n"
    )
}

/// A command running `program` inside the node whose pacemakerd is `pid` (its network, mount
/// and UTS namespaces).
pub fn command(pid: u32, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg("--target")
        .arg(pid.to_string())
        .args(["--net", "--mount", "--uts", "--"])
        .arg(program)
        .stdin(Stdio::null());
    cmd
}

/// Runs `args` inside the node to completion.
pub fn run(pid: u32, args: &[&str]) -> io::Result<Output> {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    command(pid, program).args(rest).output()
}

/// `crm_mon --one-shot --output-as=xml` in the node, as text.
pub fn crm_mon_xml(pid: u32) -> io::Result<String> {
    let out = run(pid, &["crm_mon", "--one-shot", "--output-as=xml"])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `crm_mon` in the node until `ready` accepts its XML; returns it, or the last seen.
pub fn wait_until(
    pid: u32,
    timeout: Duration,
    mut ready: impl FnMut(&str) -> bool,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(xml) = crm_mon_xml(pid) {
            if ready(&xml) {
                return Ok(xml);
            }
            last = xml;
        }
        thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

/// Whether crm_mon's XML shows a DC and every node of `names` online.
pub fn all_online(xml: &str, names: &[&str]) -> bool {
    xml.contains("<current_dc present=\"true\"")
        && names.iter().all(|name| {
            let tag = format!("<node name=\"{name}\" id=");
            xml.lines()
                .any(|l| l.contains(&tag) && l.contains("online=\"true\""))
        })
}

/// The nodes crm_mon's XML shows resource `rsc` active on.
pub fn resource_nodes(xml: &str, rsc: &str) -> Vec<String> {
    let tag = format!("<resource id=\"{rsc}\"");
    let mut nodes = Vec::new();
    let mut inside = false;
    for line in xml.lines() {
        let line = line.trim();
        if line.starts_with(&tag) {
            inside = line.contains("active=\"true\"") && !line.ends_with("/>");
            continue;
        }
        if inside {
            if line.starts_with("</resource>") {
                inside = false;
            } else if let Some(name) = attr(line, "name") {
                if line.starts_with("<node ") {
                    nodes.push(name);
                }
            }
        }
    }
    nodes
}

fn attr(line: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')?;
    Some(line[start..start + end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_members_make_a_two_node_cluster_with_the_seed_token() {
        let conf = corosync_conf(
            "hapx-lab",
            &[
                ("a".into(), "192.0.2.11".into()),
                ("b".into(), "192.0.2.12".into()),
            ],
        );
        assert!(conf.contains("cluster_name: hapx-lab\n"));
        assert!(conf.contains("token: 3000\n"));
        assert!(conf.contains("two_node: 1\n"));
        assert!(conf.contains("ring0_addr: 192.0.2.12\n    name: b\n    nodeid: 2\n"));
    }

    #[test]
    fn resource_nodes_reads_crm_mon_xml() {
        let xml = r#"<resources>
    <resource id="vip" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" orphaned="false" nodes_running_on="1">
      <node name="hapx-node02" id="2" cached="true"/>
    </resource>
    <resource id="proxy" resource_agent="ocf:heartbeat:haproxy" role="Stopped" active="false" nodes_running_on="0"/>
  </resources>"#;
        assert_eq!(resource_nodes(xml, "vip"), vec!["hapx-node02".to_string()]);
        assert!(resource_nodes(xml, "proxy").is_empty());
    }
}
