//! The binaries as a user runs them: help, the `crm` name, the agent links.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hapx_tests::bins;

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .expect("run binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hapx-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_binary_prints_help() {
    for (name, expected) in [
        ("hapx", "crm-compatible"),
        ("hapx-proxy", "HAProxy"),
        ("hapx-ocf", "OCF"),
    ] {
        let out = run(&bins::path(name), &["--help"]);
        assert!(out.status.success(), "{name} --help failed");
        assert!(
            stdout(&out).contains(expected),
            "{name} --help: {}",
            stdout(&out)
        );
    }
}

#[test]
fn hapx_answers_as_crm() {
    let scratch = Scratch::new("crm");
    let crm = scratch.0.join("crm");
    symlink(bins::path("hapx"), &crm).unwrap();
    let out = run(&crm, &["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("Usage: crm"), "{text}");
    assert!(text.contains("agents"), "{text}");
}

#[test]
fn agents_install_links_hapx_ocf_for_pacemaker() {
    let scratch = Scratch::new("install");
    let root = scratch.0.join("ocf");
    let root_arg = root.to_str().unwrap();
    let hapx = bins::path("hapx");
    let out = run(&hapx, &["agents", "install", "--ocf-root", root_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("installed"), "{}", stdout(&out));
    let agent = root.join("resource.d/hapx/IPaddr2");
    let target = std::fs::read_link(&agent).expect("IPaddr2 is a link");
    assert_eq!(target.file_name().unwrap(), "hapx-ocf");
    assert!(root.join("resource.d/hapx/haproxy").exists());

    // Run through the link, the binary acts as the agent it is named after: an unknown action
    // gets OCF_ERR_UNIMPLEMENTED (3), as the OCF spec asks.
    let out = run(&agent, &["no-such-action"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IPaddr2"));

    let out = run(&hapx, &["agents", "uninstall", "--ocf-root", root_arg]);
    assert!(out.status.success());
    assert!(!agent.exists());
}

#[test]
fn agents_install_refuses_a_bad_provider_with_one_clear_error() {
    let scratch = Scratch::new("badprovider");
    let root = scratch.0.join("ocf");
    let out = run(
        &bins::path("hapx"),
        &[
            "agents",
            "install",
            "--provider",
            "../x",
            "--ocf-root",
            root.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("provider name \"../x\""), "{err}");
    assert!(
        !root.exists(),
        "nothing may be created on a refused install"
    );
}
