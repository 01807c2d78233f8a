//! hapx's crm language against crmsh 4.4.1: its own cibtests, and our corpus of scripts run
//! through both shells on file CIBs (identical configuration, identical `configure show`).

use std::path::{Path, PathBuf};

use hapx_tests::require;
use hapx_tests::shell::{self, Cib, CrmShell, Reference, canonical, describe};

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

/// crmsh testcases hapx reproduces line for line: every line of the transcript crmsh's runner
/// makes (output, ERROR/WARNING/INFO diagnostics, `.INP:` echoes), after crmsh's own filters,
/// against the `.exp` or, where [`AGAINST_INSTALLED_CRMSH`] says why, against the installed
/// crmsh through the same runner. Grow this list; never shrink it.
const TESTCASES: &[&str] = &[
    "options",
    "confbasic",
    "delete",
    "rset",
    "commit",
    "file",
    "bugs",
    "confbasic-xml",
    "rset-xml",
    "ra",
    "newfeatures",
    "bundle",
];

/// Testcases whose `.exp` the installed crmsh 4.4.1 (with Pacemaker 2.1.5) no longer prints,
/// and why; hapx is compared with what crmsh prints here instead.
const AGAINST_INSTALLED_CRMSH: &[(&str, &str)] = &[
    (
        "ra",
        "stonith:external/ssh's meta-data carries the fencer's pcmk_* parameters, which \
         Pacemaker 2.1.5 words differently from the Pacemaker the .exp was made with",
    ),
    (
        "file",
        "the .exp was made when an empty shadow CIB held `rsc_defaults build-resource-defaults: \
     resource-stickiness=1`; Pacemaker 2.1.5's crm_shadow --create-empty does not add it",
    ),
];

/// Blocks of listed testcases that hapx does not do yet, and why. They must still differ (so
/// this list shrinks when they are done); every other block must match.
const NOT_DONE: &[(&str, &str, &str)] = &[];

fn reference(name: &str) -> Reference {
    if AGAINST_INSTALLED_CRMSH.iter().any(|(n, _)| *n == name) {
        Reference::InstalledCrmsh
    } else {
        Reference::Exp
    }
}

fn not_done(name: &str, header: &str) -> bool {
    NOT_DONE.iter().any(|(n, h, _)| *n == name && *h == header)
}

/// Prints the blocks that differ, returns how many lines matched and how many there were.
fn report(name: &str, who: &str, results: &[hapx_tests::shell_try::BlockResult]) -> (usize, usize) {
    let squash = |l: &String| l.split_whitespace().collect::<String>();
    let mut matched = 0;
    let mut total = 0;
    for r in results {
        total += r.expected.len() + 1;
        if r.matches() {
            matched += r.expected.len() + 1;
        } else {
            matched += 1 + common_lines(&r.expected, &r.got, squash);
            eprintln!("{name} ({who}): {}", r.describe());
        }
    }
    (matched, total)
}

/// How many lines the two sides have in common, in order (their longest common subsequence,
/// as `diff` pairs them).
fn common_lines(a: &[String], b: &[String], key: impl Fn(&String) -> String) -> usize {
    let (a, b): (Vec<String>, Vec<String>) =
        (a.iter().map(&key).collect(), b.iter().map(&key).collect());
    let mut row = vec![0usize; b.len() + 1];
    for x in &a {
        let mut diagonal = 0;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal + 1
            } else {
                row[j + 1].max(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[test]
fn crmsh_testcases_replay_line_for_line() {
    let test = "crmsh_testcases_replay_line_for_line";
    let dir = shell::crmsh_dir().join("testcases");
    if !require::path(test, &dir, "crmsh's testcases") {
        return;
    }
    let mut failed = Vec::new();
    for name in TESTCASES {
        let reference = reference(name);
        if reference == Reference::InstalledCrmsh && !require::command(test, "crm") {
            continue;
        }
        let results = shell::compare_testcase(name, CrmShell::Hapx, reference);
        assert!(!results.is_empty(), "{name} has blocks");
        let (done, pending): (Vec<_>, Vec<_>) = results
            .into_iter()
            .partition(|r| !not_done(name, &r.header));
        for r in &pending {
            assert!(
                !r.matches(),
                "{name}: `{}` matches now: take it off NOT_DONE",
                r.header
            );
        }
        let (matched, total) = report(name, "hapx", &done);
        eprintln!(
            "{name}: {matched}/{total} lines match (against {reference:?}; {} block(s) not done)",
            pending.len()
        );
        if matched != total {
            failed.push(*name);
        }
    }
    assert!(
        failed.is_empty(),
        "testcases differ from their reference: {failed:?}"
    );
}

/// The runner replays installed crmsh too, and must give the `.exp`'s blocks (the runner is
/// crmsh's own); where crmsh 4.4.1 as installed prints something else than its `.exp`, the
/// differing lines are shown, and the testcase must be one [`AGAINST_INSTALLED_CRMSH`] names
/// (or `options`, whose `.exp` hapx follows: see the options module).
#[test]
fn installed_crmsh_through_the_same_runner() {
    let test = "installed_crmsh_through_the_same_runner";
    let dir = shell::crmsh_dir().join("testcases");
    if !require::path(test, &dir, "crmsh's testcases") || !require::command(test, "crm") {
        return;
    }
    for name in TESTCASES {
        let results = shell::compare_testcase(name, CrmShell::Crmsh, Reference::Exp);
        assert!(
            results
                .iter()
                .all(|r| !r.got.first().is_some_and(
                    |l| l.starts_with("(no such") || l.starts_with("(a different block")
                )),
            "{name}: crmsh's replay has the .exp's blocks"
        );
        let (matched, total) = report(name, "installed crmsh", &results);
        eprintln!("{name}: installed crmsh matches {matched}/{total} lines of its .exp");
        assert!(
            matched == total || *name == "options" || reference(name) == Reference::InstalledCrmsh,
            "{name}: installed crmsh differs from its .exp; say why in AGAINST_INSTALLED_CRMSH"
        );
    }
}
