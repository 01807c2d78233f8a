//! The lab's state file: what `hapx lab up` created, so that every later `hapx lab ...`
//! command (and `down` after a crash) finds the namespaces, directories and processes by name
//! and pid instead of guessing.
//!
//! The file lives at `/run/hapx-lab/<lab name>.state` (overridable with `HAPX_LAB_RUN_DIR`) and
//! is plain text, one record a line, rewritten atomically after every step of `up`, so a crash
//! part-way leaves a record of exactly what exists.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where state files live unless `HAPX_LAB_RUN_DIR` says otherwise.
pub const RUN_DIR: &str = "/run/hapx-lab";

/// Which software runs the lab's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stack {
    /// hapx's agents (installed as ocf:heartbeat:IPaddr2 and ocf:heartbeat:haproxy) and
    /// hapx-proxy.
    Hapx,
    /// resource-agents' IPaddr2, and HAProxy under resource-agents' ocf:heartbeat:anything.
    Reference,
}

impl Stack {
    /// The name used on the command line and in the state file.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Hapx => "hapx",
            Stack::Reference => "reference",
        }
    }

    fn parse(text: &str) -> Option<Stack> {
        match text {
            "hapx" => Some(Stack::Hapx),
            "reference" => Some(Stack::Reference),
            _ => None,
        }
    }
}

/// What a lab host is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A Corosync + Pacemaker node.
    Node,
    /// A TCP responder standing in for a Kubernetes API server.
    Backend,
    /// The host the probe sends requests from.
    Client,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Backend => "backend",
            Role::Client => "client",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "node" => Some(Role::Node),
            "backend" => Some(Role::Backend),
            "client" => Some(Role::Client),
            _ => None,
        }
    }
}

/// One host of the lab: a network namespace with `eth0` plugged into the lab's bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub role: Role,
    /// The host's name (`hapx-node01`, `kube-mast01`, `client`).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its bridge port (a veth in the switch namespace).
    pub port: String,
    /// Its address on the lab network (without prefix length).
    pub address: String,
    /// The process the lab started for it (pacemakerd for a node, the responder for a
    /// backend), if one runs.
    pub pid: Option<u32>,
}

/// Everything one lab created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The lab's name (the state file's name).
    pub name: String,
    /// The pid of the `hapx lab up` that created it; part of every namespace name.
    pub id: u32,
    pub stack: Stack,
    /// The lab's directory (node directories, configuration files, logs).
    pub dir: PathBuf,
    /// The namespace holding the bridge.
    pub switch: String,
    /// The floating address the crm script was adapted to.
    pub vip: String,
    pub hosts: Vec<Host>,
}

/// A state file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: {what}")]
    Bad {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

/// The directory state files live in.
pub fn run_dir() -> PathBuf {
    std::env::var_os("HAPX_LAB_RUN_DIR").map_or_else(|| PathBuf::from(RUN_DIR), PathBuf::from)
}

/// The state file of the lab called `name`.
pub fn path_of(name: &str) -> PathBuf {
    run_dir().join(format!("{name}.state"))
}

impl State {
    /// The hosts of a role, in creation order.
    pub fn hosts(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The host called `name`, to change.
    pub fn host_mut(&mut self, name: &str) -> Option<&mut Host> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }

    /// Writes the state file (atomically: a temporary file renamed over it).
    pub fn save(&self) -> Result<(), StateError> {
        let path = path_of(&self.name);
        let io_err = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(run_dir()).map_err(io_err)?;
        let tmp = path.with_extension("state.tmp");
        fs::write(&tmp, self.to_text()).map_err(io_err)?;
        fs::rename(&tmp, &path).map_err(io_err)
    }

    /// Reads the lab called `name`; `None` when it has no state file.
    pub fn load(name: &str) -> Result<Option<State>, StateError> {
        let path = path_of(name);
        match fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// Removes the state file.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(path_of(&self.name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn to_text(&self) -> String {
        let mut text = format!(
            "name {}\nid {}\nstack {}\ndir {}\nswitch {}\nvip {}\n",
            self.name,
            self.id,
            self.stack.name(),
            self.dir.display(),
            self.switch,
            self.vip
        );
        for h in &self.hosts {
            let pid = h.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
            let _ = writeln!(
                text,
                "host {} {} {} {} {} {pid}",
                h.role.name(),
                h.name,
                h.netns,
                h.port,
                h.address
            );
        }
        text
    }

    /// Parses a state file's text; `path` is for messages.
    pub fn parse(path: &Path, text: &str) -> Result<State, StateError> {
        let bad = |line: usize, what: String| StateError::Bad {
            path: path.to_path_buf(),
            line,
            what,
        };
        let mut fields: std::collections::HashMap<&str, (usize, &str)> = Default::default();
        let mut hosts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let Some((key, value)) = line.split_once(' ') else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(bad(n, format!("expected `KEY VALUE`, found {line:?}")));
            };
            if key == "host" {
                hosts.push(parse_host(value).ok_or_else(|| {
                    bad(
                        n,
                        format!("expected `host ROLE NAME NETNS PORT ADDRESS PID`, found {line:?}"),
                    )
                })?);
            } else {
                fields.insert(key, (n, value));
            }
        }
        let field = |key: &str| {
            fields
                .get(key)
                .map(|(_, v)| *v)
                .ok_or_else(|| bad(0, format!("no `{key}` line")))
        };
        let id = field("id")?;
        let stack = field("stack")?;
        Ok(State {
            name: field("name")?.to_string(),
            id: id
                .parse()
                .map_err(|_| bad(fields["id"].0, format!("id {id:?} is not a pid")))?,
            stack: Stack::parse(stack)
                .ok_or_else(|| bad(fields["stack"].0, format!("unknown stack {stack:?}")))?,
            dir: PathBuf::from(field("dir")?),
            switch: field("switch")?.to_string(),
            vip: field("vip")?.to_string(),
            hosts,
        })
    }
}

fn parse_host(value: &str) -> Option<Host> {
    let words: Vec<&str> = value.split(' ').collect();
    let [role, name, netns, port, address, pid] = words.as_slice() else {
        return None;
    };
    Some(Host {
        role: Role::parse(role)?,
        name: name.to_string(),
        netns: netns.to_string(),
        port: port.to_string(),
        address: address.to_string(),
        pid: match *pid {
            "-" => None,
            p => Some(p.parse().ok()?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_text() {
        let state = State {
            name: "lab".into(),
            id: 42,
            stack: Stack::Reference,
            dir: PathBuf::from("/tmp/hapx-lab-lab-42"),
            switch: "hapxl-42-sw".into(),
            vip: "192.0.2.20".into(),
            hosts: vec![Host {
                role: Role::Node,
                name: "hapx-node01".into(),
                netns: "hapxl-42-n1".into(),
                port: "n1".into(),
                address: "192.0.2.11".into(),
                pid: Some(7),
            }],
        };
        let back = State::parse(Path::new("x"), &state.to_text()).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = State::parse(Path::new("s"), "name lab\nhost node x\n").unwrap_err();
        assert!(err.to_string().starts_with("s:2: expected `host"), "{err}");
    }
}
