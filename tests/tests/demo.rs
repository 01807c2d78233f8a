//! `hapx demo`: the seed's scenario end to end (VIP, hapx-proxy, three backends, a client,
//! the proxy killed and restarted by the local driver), as root in private namespaces. The
//! seed is read in place from `../shared/seed`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hapx_tests::{bins, require};

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/seed")
}

fn prerequisites(test: &str) -> bool {
    require::network_namespaces(test)
        && require::path(
            test,
            &seed_dir().join("configure.crm"),
            "the seed's crm script",
        )
}

fn demo_command() -> Command {
    let mut cmd = Command::new(bins::path("hapx"));
    cmd.arg("demo")
        .arg("--script")
        .arg(seed_dir().join("configure.crm"))
        .arg("--haproxy-cfg")
        .arg(seed_dir().join("haproxy.cfg"))
        .env_remove("CIB_file")
        .env_remove("HAPX_CIB");
    cmd
}

/// The namespaces a demo process left (named `hapxd-<pid>-...`).
fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("hapxd-{pid}-")))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_demo_runs_the_seed_scenario_once_and_cleans_up() {
    if !prerequisites("the_demo_runs_the_seed_scenario_once_and_cleans_up") {
        return;
    }
    let child = demo_command()
        .arg("--once")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running hapx demo --once");
    let pid = child.id();
    let out = child.wait_with_output().expect("waiting for the demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("VERDICT: PASS"), "{text}");
    for backend in ["kube-mast01", "kube-mast02", "kube-mast03"] {
        // Each answered, before and after the proxy was killed.
        assert!(
            text.matches(&format!("answered by {backend}")).count() >= 4,
            "{text}"
        );
    }
    assert!(
        text.contains("http://198.51.100.20:32700/ (user admin, password admin)"),
        "{text}"
    );
    assert!(
        text.contains("GET with the credentials: HTTP/1.1 200"),
        "{text}"
    );
    assert!(text.contains("fail count 1"), "{text}");
    assert!(
        text.contains("crm_verify -x: clean") || text.contains("crm_verify is not installed"),
        "{text}"
    );
    assert!(
        namespaces_of(pid).is_empty(),
        "left behind: {:?}",
        namespaces_of(pid)
    );
    assert!(
        !std::env::temp_dir()
            .join(format!("hapx-demo-{pid}"))
            .exists()
    );
}

#[test]
fn ctrl_c_ends_a_running_demo_and_cleans_up() {
    if !prerequisites("ctrl_c_ends_a_running_demo_and_cleans_up") {
        return;
    }
    let mut child = demo_command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running hapx demo");
    let pid = child.id();
    let stdout = child.stdout.take().expect("the demo's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let start = Instant::now();
    while !seen.iter().any(|l: &String| l.starts_with("Press Ctrl-C")) {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "never came up: {seen:#?}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            seen.push(line);
        }
    }
    assert!(!namespaces_of(pid).is_empty(), "the demo's network is up");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("sending SIGINT to the demo");
    let status = child.wait().expect("waiting for the demo");
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(line);
    }
    assert!(status.success(), "{seen:#?}");
    assert!(seen.iter().any(|l| l == "done"), "{seen:#?}");
    assert!(
        namespaces_of(pid).is_empty(),
        "left behind: {:?}",
        namespaces_of(pid)
    );
    assert!(
        !std::env::temp_dir()
            .join(format!("hapx-demo-{pid}"))
            .exists()
    );
}
