//! hapx's crm language against crmsh 4.4.1: its own cibtests, and our corpus of scripts run
//! through both shells on file CIBs (identical configuration, identical `configure show`).

use std::path::{Path, PathBuf};

use hapx_tests::require;
use hapx_tests::shell::{self, Cib, canonical, describe};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shell-corpus");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/shell-corpus exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "crm"))
        .collect();
    scripts.sort();
    assert!(
        scripts.len() >= 5,
        "the corpus has its scripts: {scripts:?}"
    );
    scripts
}

#[test]
fn crmsh_cibtests_produce_their_expected_xml() {
    let dir = shell::crmsh_dir().join("cibtests");
    if !require::path(
        "crmsh_cibtests_produce_their_expected_xml",
        &dir,
        "crmsh's cibtests",
    ) {
        return;
    }
    let base = std::fs::read_to_string(dir.join("shadow.base")).expect("shadow.base");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "input"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty());
    for input in inputs {
        let script = std::fs::read_to_string(&input).unwrap();
        let expected = std::fs::read_to_string(input.with_extension("exp.xml")).unwrap();
        let cib = Cib::with_text("cibtest", &base);
        let out = cib.hapx(&[], &script);
        assert!(
            out.status.success(),
            "{}: {}",
            input.display(),
            describe(&out)
        );
        let got = canonical(&cib.text());
        let want = canonical(&expected);
        assert_eq!(
            got,
            want,
            "{}:\n--- got\n{got}--- want\n{want}",
            input.display()
        );
    }
}

#[test]
fn corpus_scripts_give_crmshs_configuration_and_show() {
    if !require::command("corpus_scripts_give_crmshs_configuration_and_show", "crm") {
        return;
    }
    for script_path in corpus() {
        let script = std::fs::read_to_string(&script_path).unwrap();
        let name = script_path.display();
        let theirs = Cib::empty("crmsh");
        let ours = Cib::empty("hapx");
        let out = theirs.crmsh(&["configure"], &script);
        assert!(out.status.success(), "crmsh on {name}: {}", describe(&out));
        let out = ours.hapx(&["configure"], &script);
        assert!(out.status.success(), "hapx on {name}: {}", describe(&out));
        let (want, got) = (canonical(&theirs.text()), canonical(&ours.text()));
        assert_eq!(
            got, want,
            "{name}: configuration differs:\n--- hapx\n{got}--- crmsh\n{want}"
        );
        assert!(!want.children.is_empty(), "{name} configured something");

        let crmsh_show = theirs.crmsh(&["configure", "show"], "");
        let hapx_show = ours.hapx(&["configure", "show"], "");
        assert!(hapx_show.status.success(), "{}", describe(&hapx_show));
        assert_eq!(
            String::from_utf8_lossy(&hapx_show.stdout),
            String::from_utf8_lossy(&crmsh_show.stdout),
            "{name}: `configure show` differs"
        );
        let crmsh_xml = theirs.crmsh(&["configure", "show", "xml"], "");
        let hapx_xml = ours.hapx(&["configure", "show", "xml"], "");
        assert_eq!(
            String::from_utf8_lossy(&hapx_xml.stdout),
            String::from_utf8_lossy(&crmsh_xml.stdout),
            "{name}: `configure show xml` differs"
        );
        // hapx shows crmsh's own CIB the way crmsh does, too.
        assert_eq!(
            shell::show_text(&theirs.text()),
            String::from_utf8_lossy(&crmsh_show.stdout)
        );
    }
}

/// The heartbeat agents with hapx's IPaddr2 and haproxy installed over them, the way the seed's
/// user installs them (`hapx agents install --provider heartbeat`), in a scratch OCF root.
fn ocf_root_with_hapx_agents(dir: &Path) -> PathBuf {
    let root = dir.join("ocf");
    let heartbeat = root.join("resource.d/heartbeat");
    std::fs::create_dir_all(&heartbeat).unwrap();
    for entry in std::fs::read_dir("/usr/lib/ocf/resource.d/heartbeat").unwrap() {
        let entry = entry.unwrap();
        // Copies, not links: crmsh sees this directory mounted over the original.
        let to = heartbeat.join(entry.file_name());
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to).unwrap();
        } else {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), to).unwrap();
        }
    }
    std::os::unix::fs::symlink("/usr/lib/ocf/lib", root.join("lib")).unwrap();
    let out = std::process::Command::new(hapx_tests::bins::path("hapx"))
        .args(["agents", "install", "--provider", "heartbeat", "--ocf-root"])
        .arg(&root)
        .arg("--binary")
        .arg(hapx_tests::bins::path("hapx-ocf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    root
}

#[test]
fn seed_script_verbatim_gives_crmshs_configuration() {
    let test = "seed_script_verbatim_gives_crmshs_configuration";
    let seed = shell::seed_dir().join("configure.crm");
    if !require::path(test, &seed, "the seed's configure.crm")
        || !require::command(test, "crm")
        || !require::command(test, "unshare")
        || !(require::is_root() || require::skip(test, "needs root to show crmsh the agents"))
    {
        return;
    }
    let script = std::fs::read_to_string(&seed).unwrap();
    let theirs = Cib::empty("seed-crmsh");
    let ours = Cib::empty("seed-hapx");
    let root = ocf_root_with_hapx_agents(&ours.dir);
    // crmsh only looks in /usr/lib/ocf: give it the same agents in a private mount namespace.
    let mut cmd = std::process::Command::new("unshare");
    cmd.arg("--mount")
        .arg("sh")
        .arg("-c")
        .arg("mount --make-rprivate / && mount --bind \"$1\" /usr/lib/ocf/resource.d/heartbeat && exec crm configure")
        .arg("sh")
        .arg(root.join("resource.d/heartbeat"))
        .env("CIB_file", &theirs.path);
    let out = shell::run_with_stdin(cmd, &script);
    assert!(out.status.success(), "crmsh: {}", describe(&out));
    let out = ours.hapx_env(&["configure"], &script, &[("OCF_ROOT", &root)]);
    assert!(out.status.success(), "hapx: {}", describe(&out));
    let (want, got) = (canonical(&theirs.text()), canonical(&ours.text()));
    assert_eq!(
        got, want,
        "seed: configuration differs:\n--- hapx\n{got}--- crmsh\n{want}"
    );
    let text = ours.text();
    assert!(
        text.contains(r#"type="haproxy""#)
            && text.contains(r#"id="virtual-ip-resource-monitor-20""#),
        "{text}"
    );
}

/// crmsh testcases whose every `configure show` hapx reproduces.
const SHOW_TESTCASES: &[&str] = &["confbasic", "delete", "rset", "commit"];

#[test]
fn crmsh_testcase_shows_match() {
    let dir = shell::crmsh_dir().join("testcases");
    if !require::path("crmsh_testcase_shows_match", &dir, "crmsh's testcases") {
        return;
    }
    for name in SHOW_TESTCASES {
        let checks = shell::replay_testcase(&dir.join(format!("{name}.exp")));
        assert!(!checks.is_empty(), "{name} has shows");
        for check in checks {
            assert_eq!(check.got, check.expected, "{name}: `{}`", check.command);
        }
    }
}
