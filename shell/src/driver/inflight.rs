//! Operations a previous driver left running.
//!
//! A driver that is killed while an agent runs leaves the agent running: it is in its own
//! process group, as the executor puts it. If the new driver probed at once, it could find the
//! resource "not running" halfway through that start and start it a second time. So every
//! agent the driver runs carries `HAPX_DRIVER_CIB=<cib>` in its environment, and a starting
//! driver first waits for the agents (processes with that mark whose command line runs an
//! agent from a `resource.d` directory) of its CIB to finish, then probes and so adopts what
//! they did. Past the longest operation timeout it ends them, as their executor would have.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The environment variable marking an agent run by the driver of a CIB.
pub const MARK: &str = "HAPX_DRIVER_CIB";

/// The mark's value for `cib`: its canonical path.
pub fn mark_value(cib: &Path) -> PathBuf {
    std::fs::canonicalize(cib).unwrap_or_else(|_| cib.to_path_buf())
}

/// Whether process `pid` is an agent run for `mark`.
fn is_agent_of(pid: i32, mark: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("{MARK}={mark}");
    if !environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes()) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    cmdline
        .split(|b| *b == 0)
        .any(|arg| String::from_utf8_lossy(arg).contains("/resource.d/"))
}

/// The pids of agents still running for `cib` (other than this process).
pub fn leftovers(cib: &Path) -> Vec<i32> {
    let mark = mark_value(cib).to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && is_agent_of(pid, &mark))
        .collect()
}

/// Waits for the agents a previous driver left running; ends their process groups after
/// `limit`. Returns how many there were.
pub fn wait_for_leftovers(cib: &Path, limit: Duration, mut report: impl FnMut(&str)) -> usize {
    let first = leftovers(cib);
    if first.is_empty() {
        return 0;
    }
    report(&format!(
        "waiting for {} operation(s) a previous driver left running (pids {:?})",
        first.len(),
        first
    ));
    let start = Instant::now();
    loop {
        let left = leftovers(cib);
        if left.is_empty() {
            return first.len();
        }
        if start.elapsed() >= limit {
            for pid in &left {
                let pgid =
                    nix::unistd::getpgid(Some(Pid::from_raw(*pid))).unwrap_or(Pid::from_raw(*pid));
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            report(&format!(
                "ended operations that outlived their timeout (pids {left:?})"
            ));
            return first.len();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
