//! Running any OCF agent (hapx's or a shell one) the way Pacemaker's executor does: the action
//! as the argument, parameters as `OCF_RESKEY_*`, the OCF environment, a timeout after which the
//! agent's whole process group is killed.
//!
//! Used by tests, benchmarks, the shell's `ra` commands and the local driver.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::ocf::ExitCode;

/// One call of an agent.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The agent's executable.
    pub agent: PathBuf,
    /// `start`, `monitor`, ...
    pub action: String,
    /// Parameters, by name without the `OCF_RESKEY_` prefix.
    pub params: BTreeMap<String, String>,
    /// Other environment variables (`OCF_CHECK_LEVEL`, `HA_LOGFILE`, ...).
    pub env: BTreeMap<String, String>,
    /// The resource's id (`OCF_RESOURCE_INSTANCE`).
    pub instance: String,
    pub timeout: Duration,
    /// A program and arguments to run the agent through (`ip netns exec NS`), empty for none.
    pub wrapper: Vec<String>,
}

impl Invocation {
    /// A call of `action` on `agent` with no parameters and a 20 s timeout.
    pub fn new(agent: impl Into<PathBuf>, action: &str) -> Invocation {
        Invocation {
            agent: agent.into(),
            action: action.to_string(),
            params: BTreeMap::new(),
            env: BTreeMap::new(),
            instance: "hapx-rsc".to_string(),
            timeout: Duration::from_secs(20),
            wrapper: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: &str, value: &str) -> Invocation {
        self.params.insert(name.to_string(), value.to_string());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Invocation {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Invocation {
        self.timeout = timeout;
        self
    }

    /// Runs the agent through `wrapper` (for example `["ip", "netns", "exec", "NS"]`).
    pub fn wrapped(mut self, wrapper: &[&str]) -> Invocation {
        self.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        self
    }

    /// The command, with the environment Pacemaker's executor gives an agent.
    pub fn command(&self) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.agent);
                cmd
            }
            None => Command::new(&self.agent),
        };
        cmd.arg(&self.action);
        let ocf_root = std::env::var("OCF_ROOT").unwrap_or_else(|_| "/usr/lib/ocf".into());
        cmd.env("OCF_ROOT", &ocf_root)
            .env("OCF_RA_VERSION_MAJOR", "1")
            .env("OCF_RA_VERSION_MINOR", "1")
            .env("OCF_RESOURCE_INSTANCE", &self.instance)
            .env(
                "OCF_RESKEY_CRM_meta_timeout",
                self.timeout.as_millis().to_string(),
            );
        if let Some(name) = self.agent.file_name() {
            cmd.env("OCF_RESOURCE_TYPE", name);
        }
        if let Some(provider) = provider_of(&self.agent) {
            cmd.env("OCF_RESOURCE_PROVIDER", provider);
        }
        for (name, value) in &self.params {
            cmd.env(format!("OCF_RESKEY_{name}"), value);
        }
        cmd.envs(&self.env);
        cmd
    }
}

/// `heartbeat` for `/usr/lib/ocf/resource.d/heartbeat/IPaddr2`.
fn provider_of(agent: &Path) -> Option<String> {
    let dir = agent.parent()?;
    let grand = dir.parent()?;
    if grand.file_name()? != "resource.d" {
        return None;
    }
    Some(dir.file_name()?.to_string_lossy().into_owned())
}

/// How the agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
    /// It ran past the timeout and its process group was killed.
    TimedOut,
}

/// What one call produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub termination: Termination,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl Outcome {
    /// The OCF code, when the agent exited with one (0..=9).
    pub fn exit_code(&self) -> Option<ExitCode> {
        match self.termination {
            Termination::Exited(c) => ExitCode::from_code(c),
            _ => None,
        }
    }

    /// The raw exit status, when the agent exited.
    pub fn status(&self) -> Option<i32> {
        match self.termination {
            Termination::Exited(c) => Some(c),
            _ => None,
        }
    }
}

/// Could not run the agent at all.
#[derive(Debug, thiserror::Error)]
#[error("running {agent} {action}: {source}")]
pub struct ExecError {
    pub agent: PathBuf,
    pub action: String,
    #[source]
    pub source: io::Error,
}

/// How long output readers are waited for after the agent exited: a daemon the agent started
/// may have kept the pipes open, and its output is not the agent's.
const READER_GRACE: Duration = Duration::from_millis(200);

/// Runs the invocation to completion or timeout.
pub fn run(inv: &Invocation) -> Result<Outcome, ExecError> {
    let fail = |source| ExecError {
        agent: inv.agent.clone(),
        action: inv.action.clone(),
        source,
    };
    let started = Instant::now();
    let mut cmd = inv.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(fail)?;
    let pid = child.id() as i32;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let termination = match rx.recv_timeout(inv.timeout) {
        Ok(()) => None,
        Err(_) => {
            // The agent is not reaped yet, so its pid (and so its group id) is still its own.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            Some(Termination::TimedOut)
        }
    };
    let status = waiter
        .join()
        .map_err(|_| fail(io::Error::other("waiter thread panicked")))?
        .map_err(fail)?;
    let duration = started.elapsed();
    let termination = termination.unwrap_or_else(|| match status.code() {
        Some(c) => Termination::Exited(c),
        None => Termination::Signalled(status.signal().unwrap_or(0)),
    });
    Ok(Outcome {
        termination,
        stdout: collect(out),
        stderr: collect(err),
        duration,
    })
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    }
    rx
}

fn collect(rx: mpsc::Receiver<String>) -> String {
    rx.recv_timeout(READER_GRACE).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of test scripts, removed on drop.
    struct Scripts(PathBuf);

    impl Scripts {
        fn new(tag: &str) -> Scripts {
            let dir = std::env::temp_dir().join(format!("hapx-exec-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scripts(dir)
        }

        /// Writes an executable script. A `sh` of its own writes it: had this process held the
        /// file open for writing, a child forked meanwhile by another test would inherit the
        /// descriptor, and running the script would fail with `ETXTBSY` until that child execs.
        fn script(&self, name: &str, body: &str) -> PathBuf {
            use std::io::Write;
            let path = self.0.join(name);
            let mut writer = Command::new("/bin/sh")
                .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
                .arg(&path)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = writer.stdin.take().unwrap();
            write!(stdin, "#!/bin/sh\n{body}\n").unwrap();
            drop(stdin);
            assert!(writer.wait().unwrap().success());
            path
        }
    }

    impl Drop for Scripts {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn passes_action_params_and_collects_output() {
        let scripts = Scripts::new("echo");
        let agent = scripts.script(
            "echoer",
            "echo \"$1 $OCF_RESKEY_ip $OCF_RESOURCE_INSTANCE $OCF_RESKEY_CRM_meta_timeout\"; \
             echo oops >&2; exit 7",
        );
        let out = run(&Invocation::new(&agent, "monitor").param("ip", "192.0.2.1")).unwrap();
        assert_eq!(out.exit_code(), Some(ExitCode::NotRunning));
        assert_eq!(out.stdout.trim(), "monitor 192.0.2.1 hapx-rsc 20000");
        assert_eq!(out.stderr.trim(), "oops");
    }

    #[test]
    fn a_timeout_kills_the_whole_group() {
        let scripts = Scripts::new("timeout");
        let marker = scripts.0.join("grandchild.pid");
        let agent = scripts.script(
            "sleeper",
            &format!("sleep 30 & echo $! > {}; wait", marker.display()),
        );
        let out =
            run(&Invocation::new(&agent, "start").timeout(Duration::from_millis(1000))).unwrap();
        assert_eq!(out.termination, Termination::TimedOut);
        assert!(out.duration < Duration::from_secs(5), "{:?}", out.duration);
        let grandchild = std::fs::read_to_string(&marker).unwrap();
        let proc = format!("/proc/{}/status", grandchild.trim());
        // The grandchild was killed with the group (it may linger as a zombie of init). The
        // signal is delivered at once but the process takes a moment to exit: poll briefly.
        let gone = |state: &str| state.is_empty() || state.contains("State:\tZ");
        let mut state = std::fs::read_to_string(&proc).unwrap_or_default();
        for _ in 0..200 {
            if gone(&state) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            state = std::fs::read_to_string(&proc).unwrap_or_default();
        }
        assert!(gone(&state), "{state}");
    }

    #[test]
    fn a_missing_agent_is_an_error_naming_it() {
        let e = run(&Invocation::new("/nonexistent/agent", "start")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/agent"), "{e}");
    }
}
