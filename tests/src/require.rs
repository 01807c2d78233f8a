//! Skip loudly on a developer machine, fail under CI.
//!
//! A test that needs something this machine may lack (root, network namespaces, Pacemaker)
//! starts with one of these checks. Each returns `true` when the test can run. When it cannot,
//! it prints a line starting with `SKIPPED` to stderr and returns `false`, unless the `CI`
//! environment variable is set, in which case it panics: CI installs everything, so a missing
//! piece there is a failure, not a reason to pass.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether the `CI` environment variable is set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Skips (or, under CI, fails) the calling test with `reason`. Always returns `false`.
pub fn skip(test: &str, reason: &str) -> bool {
    if in_ci() {
        panic!("{test}: cannot run under CI: {reason}");
    }
    eprintln!("SKIPPED {test}: {reason} (set CI=1 to make this a failure)");
    false
}

/// True when running as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Root and a working `ip netns`: everything the namespace harness needs.
pub fn network_namespaces(test: &str) -> bool {
    if !is_root() {
        return skip(test, "needs root to create network namespaces");
    }
    if !command_exists("ip") {
        return skip(test, "needs `ip` from iproute2");
    }
    true
}

/// An executable named `name` is on PATH.
pub fn command(test: &str, name: &str) -> bool {
    command_exists(name) || skip(test, &format!("needs `{name}` on PATH"))
}

/// A file or directory that the test reads exists (conformance data, a seed file).
pub fn path(test: &str, path: &Path, what: &str) -> bool {
    path.exists() || skip(test, &format!("needs {what} at {}", path.display()))
}

fn command_exists(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
