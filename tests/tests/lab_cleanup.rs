//! `hapx lab down` after `hapx lab up` was killed part-way: from the state file, and, when even
//! the state file is gone, by sweeping the namespaces of the lab naming scheme whose owner is
//! gone. Nothing the crashed `up` started may be left: no process, namespace or directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use hapx_shell::lab::net;
use hapx_shell::lab::state::{self, Role, State};
use hapx_tests::bins;
use hapx_tests::pacemaker::PacemakerNode;

const TEST: &str = "lab_cleanup";

fn hapx_lab(name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(bins::path("hapx"));
    cmd.args(["lab", "--name", name])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Starts `hapx lab up` and kills it (SIGKILL) once both nodes' daemons have been launched;
/// returns what its state file recorded then.
fn crash_up(name: &str) -> State {
    let mut up: Child = hapx_lab(name, &["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        assert!(Instant::now() < deadline, "up never launched its nodes");
        if let Ok(Some(state)) = State::load(name)
            && state.hosts(Role::Node).filter(|h| h.pid.is_some()).count() == 2
        {
            break state;
        }
        thread::sleep(Duration::from_millis(100));
    };
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(
        state
            .hosts(Role::Node)
            .all(|h| h.pid.is_some_and(net::process_runs)),
        "the nodes outlive the up that started them"
    );
    state
}

fn assert_nothing_left(state: &State) {
    for host in &state.hosts {
        assert!(
            !host.pid.is_some_and(net::process_runs),
            "{} still runs",
            host.name
        );
        assert!(
            !Path::new("/run/netns").join(&host.netns).exists(),
            "{} is left",
            host.netns
        );
    }
    assert!(!Path::new("/run/netns").join(&state.switch).exists());
    assert!(!state.dir.exists(), "{} is left", state.dir.display());
    assert!(!state::path_of(&state.name).exists());
}

#[test]
fn down_cleans_up_after_a_crashed_up_with_and_without_its_state_file() {
    if !PacemakerNode::available(TEST) || !hapx_tests::require::command(TEST, "setsid") {
        return;
    }
    let name = format!("crash-{}", std::process::id());

    let crashed = crash_up(&name);
    let out = hapx_lab(&name, &["down"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("lab {name} removed")));
    assert_nothing_left(&crashed);

    // Lost state file: the namespaces are found by name, their owner (the up's pid) is gone.
    let crashed = crash_up(&name);
    std::fs::remove_file(state::path_of(&name)).unwrap();
    let out = hapx_lab(&name, &["down"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("namespaces left by labs whose owner is gone"),
        "{stdout}"
    );
    assert_nothing_left(&crashed);
}
