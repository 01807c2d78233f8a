//! `hapx status` rendered natively (no Pacemaker needed) against Pacemaker's own `crm_mon -1`,
//! byte for byte except the "Last updated" clock line: on Pacemaker's scheduler corpus (tiers
//! 1 and 2, with a floor like the engine's conformance runner), on crmsh's cibtests' CIBs and
//! on CIBs the local driver writes while it runs real agents. Also `resource status` against
//! `crm_resource`, and `resource failcount` on a file CIB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hapx_shell::mon::{self, MonOptions};
use hapx_tests::driver::{Fixture, Rsc, started, transient};
use hapx_tests::require;
use hapx_tests::shell::{self, describe};

/// The share of corpus cases whose output must match crm_mon's exactly, per flag set. The
/// cases that differ do so where hapx-cib's unpacking differs (rules in meta attributes,
/// blocked multi-active groups, on-fail=ignore, timed-out operations on nodes to be fenced).
const CORPUS_FLOOR: f64 = 0.96;
const WAIT: Duration = Duration::from_secs(30);

fn scheduler_corpus() -> PathBuf {
    shell::conformance_dir().join("pacemaker-2.1.5")
}

/// Tier 1 and 2 cases of the scheduler corpus (`INDEX.tsv`: name, tier, features).
fn tier12_cases(dir: &Path) -> Vec<PathBuf> {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, tier) = (f.next()?, f.next()?);
            matches!(tier, "1" | "2").then(|| dir.join("xml").join(format!("{name}.xml")))
        })
        .collect()
}

/// Output without the "Last updated" line, the one line that is the clock's.
fn without_clock(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("  * Last updated: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn crm_mon(cib: &Path, flags: &[&str]) -> String {
    let out = Command::new("crm_mon")
        .arg("-1")
        .args(flags)
        .env("CIB_file", cib)
        .output()
        .expect("running crm_mon");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The crm_mon flags `status FLAGS` stands for: `status` alone is `crm_mon -1 -r` in crmsh,
/// and so in hapx.
fn as_crm_mon<'a>(flags: &'a [&'a str]) -> &'a [&'a str] {
    if flags.is_empty() { &["-r"] } else { flags }
}

fn hapx_status(cib: &Path, flags: &[&str]) -> String {
    let mut args = vec!["status"];
    args.extend_from_slice(flags);
    let out = Command::new(hapx_tests::bins::path("hapx"))
        .args(&args)
        .env("CIB_file", cib)
        .output()
        .expect("running hapx status");
    assert!(out.status.success(), "hapx status: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_matches_crm_mon_on_the_scheduler_corpus() {
    let test = "status_matches_crm_mon_on_the_scheduler_corpus";
    let dir = scheduler_corpus();
    if !require::path(test, &dir, "Pacemaker's scheduler corpus")
        || !require::command(test, "crm_mon")
    {
        return;
    }
    let cases = tier12_cases(&dir);
    assert!(cases.len() > 200, "the corpus has its tier 1/2 cases");
    for flags in [&[][..], &["-r", "-A", "-f"][..]] {
        let opts = MonOptions::parse(&flags.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("flags parse");
        let mut differ = Vec::new();
        for case in &cases {
            let doc = hapx_cib::xml::Document::parse(&std::fs::read_to_string(case).unwrap())
                .expect("the case parses");
            let ours = mon::render(doc, &opts, mon::text::now())
                .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
            assert!(ours.starts_with("Cluster Summary:\n"), "{ours}");
            let theirs = crm_mon(case, flags);
            if without_clock(&ours) != without_clock(&theirs) {
                differ.push(case.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        let rate = 1.0 - differ.len() as f64 / cases.len() as f64;
        println!(
            "status {flags:?}: {}/{} match crm_mon ({:.1}%); differ: {}",
            cases.len() - differ.len(),
            cases.len(),
            rate * 100.0,
            differ.join(" ")
        );
        assert!(
            rate >= CORPUS_FLOOR,
            "status {flags:?} dropped below its floor: {rate:.3} < {CORPUS_FLOOR}; differ: {differ:?}"
        );
    }
}

#[test]
fn status_matches_crm_mon_on_crmsh_cibtests() {
    let test = "status_matches_crm_mon_on_crmsh_cibtests";
    let dir = shell::crmsh_dir().join("cibtests");
    if !require::path(test, &dir, "crmsh's cibtests") || !require::command(test, "crm_mon") {
        return;
    }
    let mut cibs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".exp.xml"))
        .collect();
    cibs.push(dir.join("shadow.base"));
    cibs.sort();
    for cib in cibs {
        for flags in [&[][..], &["-r"][..]] {
            assert_eq!(
                without_clock(&hapx_status(&cib, flags)),
                without_clock(&crm_mon(&cib, as_crm_mon(flags))),
                "{} {flags:?}",
                cib.display()
            );
        }
    }
}

fn driver_prerequisites(test: &str) -> bool {
    require::path(
        test,
        Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy"),
        "resource-agents' Dummy",
    ) && require::command(test, "crm_mon")
}

/// `hapx status` and crm_mon on one snapshot of the driver's CIB (the driver keeps writing
/// the live file, so both must read the same state).
fn assert_status_matches(f: &Fixture, flags: &[&str]) {
    let snapshot = f.dir.join("snapshot.xml");
    std::fs::copy(&f.cib, &snapshot).expect("snapshot of the CIB");
    assert_eq!(
        without_clock(&hapx_status(&snapshot, flags)),
        without_clock(&crm_mon(&snapshot, as_crm_mon(flags))),
        "status {flags:?}"
    );
}

#[test]
fn status_matches_crm_mon_on_the_local_drivers_cib() {
    let test = "status_matches_crm_mon_on_the_local_drivers_cib";
    if !driver_prerequisites(test) {
        return;
    }
    let mut f = Fixture::new("status");
    f.write_cib(&[Rsc::new("A").on_fail("restart"), Rsc::new("B")], "");
    f.start_driver();
    f.wait_until("A and B started", WAIT, |d| {
        started(d, "A") && started(d, "B")
    });
    assert_status_matches(&f, &[]);
    assert_status_matches(&f, &["-r"]);

    // The driver's own change (its node) is stamped as Pacemaker's CIB manager stamps one.
    let ours =
        String::from_utf8_lossy(&f.hapx().arg("status").output().unwrap().stdout).into_owned();
    assert!(
        ours.lines()
            .any(|l| l.starts_with("  * Last change:  ") && l.contains(" via hapx-driver on ")),
        "{ours}"
    );

    // A failure: a fail count, a failed action, a restart.
    std::fs::remove_file(f.state_file("A")).expect("removing A's state");
    f.wait_until("a fail count and A restarted", WAIT, |d| {
        transient(d, "fail-count-A#monitor_1000").as_deref() == Some("1") && started(d, "A")
    });
    for flags in [&[][..], &["-r", "-f", "-A"][..]] {
        assert_status_matches(&f, flags);
    }
    let text = String::from_utf8_lossy(&f.hapx().args(["status", "-f"]).output().unwrap().stdout)
        .into_owned();
    assert!(text.contains("Failed Resource Actions:"), "{text}");
    assert!(text.contains("    * A: migration-threshold="), "{text}");
    // Stopped, the node is offline: what crm_mon shows of a cluster that is down.
    f.stop_driver();
    assert_status_matches(&f, &["-r", "-f"]);

    // A stopped resource: "Stopped (disabled)" with -r, counted as DISABLED.
    let out = f
        .hapx()
        .args(["resource", "stop", "B"])
        .output()
        .expect("resource stop");
    assert!(out.status.success(), "{}", describe(&out));
    assert_status_matches(&f, &["-r"]);
    let text = String::from_utf8_lossy(&f.hapx().args(["status", "-r"]).output().unwrap().stdout)
        .into_owned();
    assert!(text.contains("(1 DISABLED)"), "{text}");
    // crmsh makes `resource stop` itself and commits it with cibadmin, as hapx does.
    assert!(
        text.lines()
            .any(|l| l.starts_with("  * Last change:  ") && l.contains(" via cibadmin on ")),
        "{text}"
    );
}

#[test]
fn resource_status_matches_crm_resource() {
    let test = "resource_status_matches_crm_resource";
    let dir = scheduler_corpus();
    if !require::path(test, &dir, "Pacemaker's scheduler corpus")
        || !require::command(test, "crm_resource")
    {
        return;
    }
    let xml = dir.join("xml");
    for (case, rsc) in [
        ("994", "postfix_9"),
        ("994", "group_1"),
        ("1484", "the-future-of-vaj"),
        ("attrs1", "rsc1"),
    ] {
        let cib = xml.join(format!("{case}.xml"));
        let run = |mut cmd: Command| {
            let out = cmd.env("CIB_file", &cib).output().unwrap();
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            )
        };
        let mut theirs = Command::new("crm_resource");
        theirs.args(["--locate", "--resource", rsc]);
        let mut ours = Command::new(hapx_tests::bins::path("hapx"));
        ours.args(["resource", "status", rsc]);
        assert_eq!(run(ours), run(theirs), "{case} {rsc}");
        let mut theirs = Command::new("crm_resource");
        theirs.arg("--list");
        let mut ours = Command::new(hapx_tests::bins::path("hapx"));
        ours.args(["resource", "status"]);
        assert_eq!(run(ours).0, run(theirs).0, "{case}: list");
    }
    let out = Command::new(hapx_tests::bins::path("hapx"))
        .args(["resource", "status", "nosuch"])
        .env("CIB_file", xml.join("994.xml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Resource 'nosuch' not found"),
        "{}",
        describe(&out)
    );
}

#[test]
fn failcount_show_set_delete_on_a_file_cib() {
    let test = "failcount_show_set_delete_on_a_file_cib";
    let dir = scheduler_corpus();
    if !require::path(test, &dir, "Pacemaker's scheduler corpus")
        || !require::command(test, "crm_failcount")
    {
        return;
    }
    let text = std::fs::read_to_string(dir.join("xml/failcount-block.xml")).unwrap();
    let cib = shell::Cib::with_text("failcount", &text);
    let query = |rsc: &str| {
        let theirs = Command::new("crm_failcount")
            .args(["--query", "-r", rsc, "-N", "pcmk-1"])
            .env("CIB_file", &cib.path)
            .output()
            .unwrap();
        let ours = cib.hapx(&["resource", "failcount", rsc, "show", "pcmk-1"], "");
        assert!(ours.status.success(), "{}", describe(&ours));
        let ours = String::from_utf8_lossy(&ours.stdout).into_owned();
        assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout), "{rsc}");
        ours
    };
    assert!(query("rsc_pcmk-2").ends_with("value=2\n"));
    // Set: the one recorded operation's count.
    let out = cib.hapx(
        &["resource", "failcount", "rsc_pcmk-2", "set", "pcmk-1", "5"],
        "",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(query("rsc_pcmk-2").ends_with("value=5\n"));
    // Delete: every count of the resource on the node.
    let out = cib.hapx(
        &["resource", "failcount", "rsc_pcmk-2", "delete", "pcmk-1"],
        "",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !cib.text().contains("fail-count-rsc_pcmk-2"),
        "the fail count is gone"
    );
    assert!(cib.text().contains("fail-count-rsc_pcmk-3"), "others stay");
    // Bad input: named, non-zero, nothing written.
    let before = cib.text();
    for (args, needle) in [
        (
            &["resource", "failcount", "nosuch", "show", "pcmk-1"][..],
            "nosuch",
        ),
        (
            &["resource", "failcount", "rsc_pcmk-3", "set", "nonode", "1"][..],
            "nonode",
        ),
        (
            &["resource", "failcount", "rsc_pcmk-3", "set", "pcmk-1", "x"][..],
            "'x'",
        ),
    ] {
        let out = cib.hapx(args, "");
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            describe(&out)
        );
    }
    assert_eq!(cib.text(), before, "a refused command wrote nothing");
}

#[test]
fn status_refuses_unknown_flags() {
    let cib = shell::Cib::unfenced("statusflags");
    let out = cib.hapx(&["status", "--bogus"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'--bogus'"),
        "{}",
        describe(&out)
    );
    // And with no Pacemaker needed, an empty CIB renders (`status` alone lists every
    // resource, as `crm_mon -1 -r` does; `-1` only the active ones).
    let out = cib.hapx(&["status"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  * 0 nodes configured\n"), "{text}");
    assert!(
        text.contains("Full List of Resources:\n  * No resources\n"),
        "{text}"
    );
    let out = cib.hapx(&["status", "-1"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("  * No active resources\n"));
}
