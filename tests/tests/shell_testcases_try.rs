//! crmsh 4.4.1's `node` and `resource` regression testcases replayed through hapx as crmsh's own
//! runner (`evaltest.sh`) runs them (`hapx_tests::shell::replay_testcase`), every `.TRY` block
//! compared as `regression.sh` compares it (`hapx_tests::shell_try`): with the testcase's `.exp`,
//! and with the installed crmsh's transcript through the same runner.
//!
//! Each comparison keeps the exact list of blocks that do not match, with the reason. Every
//! other block must match, so a regression fails the test; and a listed block that starts to
//! match fails it too, so the list stays exact.

use hapx_tests::require;
use hapx_tests::shell::{CrmShell, Reference, compare_testcase};

/// A block known not to match: its index in the transcript, its `.TRY` line, and why.
type Known = (usize, &'static str, &'static str);

fn check(test: &str, testcase: &str, reference: Reference, known: &[Known]) {
    if !require::command(test, "grep") || !require::command(test, "awk") {
        return;
    }
    if reference == Reference::InstalledCrmsh && !require::command(test, "crm") {
        return;
    }
    let results = compare_testcase(testcase, CrmShell::Hapx, reference);
    let mut failures = Vec::new();
    for r in &results {
        let listed = known.iter().find(|(i, _, _)| *i == r.index);
        if let Some((_, header, _)) = listed {
            assert_eq!(
                *header, r.header,
                "{testcase}: known block {} is `{}` now; update the list",
                r.index, r.header
            );
        }
        match (r.matches(), listed) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => failures.push(format!("REGRESSION {}", r.describe())),
            (true, Some(_)) => failures.push(format!(
                "block {} `{}` matches now: remove it from the known list",
                r.index, r.header
            )),
        }
    }
    let matched = results.iter().filter(|r| r.matches()).count();
    println!(
        "{testcase} vs {reference:?}: {matched}/{} blocks match ({} known not to)",
        results.len(),
        known.len()
    );
    for (i, header, why) in known {
        println!("  not matching: block {i} `{header}`: {why}");
    }
    assert!(failures.is_empty(), "{testcase}:\n{}", failures.join("\n"));
}

const DELETED_BLANK_LINE: &str = "the .exp's crm_attribute printed an empty line after \
    `Deleted nodes attribute: ...`; Pacemaker 2.1.5's (installed) does not, nor does hapx: \
    installed crmsh differs from its .exp here the same way";

const OLD_CRM_SIMULATE: &str = "the .exp is an older crm_simulate's (`pcmk__native_allocate`, \
    `Stopped ( disabled )`); hapx's scheduler has no clones yet, so hapx runs the installed \
    crm_simulate 2.1.5 (`pcmk__primitive_assign`), which is exactly what installed crmsh prints";

const CLEANUP_CRASH: &str = "installed crmsh forks crm_resource --cleanup/--refresh, which \
    crashes (`Segmentation fault`) on a CIB_file; on crmsh's shadow CIB it fails to reach the \
    controller and common.excl hides that, so the .exp (matched by hapx) is empty";

#[test]
fn node_testcase_matches_its_exp() {
    check(
        "node_testcase_matches_its_exp",
        "node",
        Reference::Exp,
        &[(
            12,
            ".TRY node attribute node1 delete a1",
            DELETED_BLANK_LINE,
        )],
    );
}

#[test]
fn resource_testcase_matches_its_exp() {
    check(
        "resource_testcase_matches_its_exp",
        "resource",
        Reference::Exp,
        &[(66, ".TRY resource scores", OLD_CRM_SIMULATE)],
    );
}

#[test]
fn node_testcase_matches_installed_crmsh() {
    check(
        "node_testcase_matches_installed_crmsh",
        "node",
        Reference::InstalledCrmsh,
        &[],
    );
}

#[test]
fn resource_testcase_matches_installed_crmsh() {
    let known: Vec<Known> = [
        (51, ".TRY resource cleanup"),
        (52, ".TRY resource cleanup p3"),
        (53, ".TRY resource cleanup p3 node1"),
        (54, ".TRY resource cleanup force"),
        (55, ".TRY resource cleanup p3 force"),
        (56, ".TRY resource cleanup p3 node1 force"),
        (57, ".TRY resource refresh"),
        (58, ".TRY resource refresh p3"),
        (59, ".TRY resource refresh p3 node1"),
        (60, ".TRY resource refresh force"),
        (61, ".TRY resource refresh p3 force"),
        (62, ".TRY resource refresh p3 node1 force"),
    ]
    .into_iter()
    .map(|(i, header)| (i, header, CLEANUP_CRASH))
    .collect();
    check(
        "resource_testcase_matches_installed_crmsh",
        "resource",
        Reference::InstalledCrmsh,
        &known,
    );
}

/// Commands beyond the testcases (whole-resource trace, trace directories, utilization, bans,
/// aliases, parent clones, conflicts under `-F`, errors), each run by hapx and by the installed
/// crmsh (`-R`, so without colours) on copies of the same sample CIB: the same output, the same
/// diagnostics and the same configuration afterwards.
#[test]
fn more_resource_and_node_commands_match_installed_crmsh() {
    let test = "more_resource_and_node_commands_match_installed_crmsh";
    if !require::command(test, "crm") {
        return;
    }
    let ours = Sample::new("ours");
    let theirs = Sample::new("theirs");
    for line in [
        "resource trace p0",
        "resource untrace p0",
        "resource trace p3 start /var/tmp/hapx-trace",
        "resource untrace p3 start",
        "resource trace p0 monitor",
        "resource utilization p0 set cpu 2",
        "resource utilization p0 show cpu",
        "resource utilization p0 delete cpu",
        "resource meta p2 set m 1",
        "resource param p0 show nope",
        "resource ban p0 node1",
        "resource unban p0",
        "resource move p3 node1",
        "resource unmove p3",
        "resource move p3",
        "resource move p3 node1 PT1H",
        "resource ban p0 node1 P1D",
        "resource clear p0",
        "resource clear p3",
        "resource maintenance p0 maybe",
        "resource stop c1",
        "resource start m1 p3",
        "resource manage m1",
        "-F resource maintenance m1 on",
        "resource start nope",
        "node utilization node1 set mem 3",
        "node utilization node1 show mem",
        "node utilization node1 delete mem",
        "node attribute node1 show nope",
        "-F node maintenance node1",
        "node ready node1",
        "node list",
    ] {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (a, b) = (ours.run(&words, true), theirs.run(&words, false));
        assert_eq!(a.0, b.0, "`{line}`: stdout");
        assert_eq!(a.1, b.1, "`{line}`: stderr");
        assert_eq!(
            unordered(hapx_tests::shell::canonical(&ours.cib.text())),
            unordered(hapx_tests::shell::canonical(&theirs.cib.text())),
            "`{line}`: the configuration afterwards"
        );
    }
}

/// A configuration with every element's children sorted. On a CIB file crmsh appends a new
/// attribute set after a clone's primitive (its `show` then renders it first); hapx writes it
/// first, where Pacemaker's tools and crmsh's `show xml` put it. Which comes first means
/// nothing to Pacemaker, so the comparison leaves sibling order out.
/// A lifetime's end is a time of day: only that it is there counts.
fn unordered(mut c: hapx_tests::shell::Canonical) -> hapx_tests::shell::Canonical {
    for (k, v) in &mut c.attributes {
        if c.tag == "date_expression" && k == "end" {
            *v = "(the end of the lifetime)".into();
        }
    }
    c.children = c.children.into_iter().map(unordered).collect();
    c.children
        .sort_by(|a, b| (&a.tag, &a.attributes).cmp(&(&b.tag, &b.attributes)));
    c
}

/// crmsh's sample CIB (made by hapx from an empty one) with a home of its own for crm.conf.
struct Sample {
    cib: hapx_tests::shell::Cib,
}

impl Sample {
    fn new(tag: &str) -> Sample {
        let cib = hapx_tests::shell::Cib::empty(tag);
        let out = cib.hapx(&[], hapx_tests::shell::SAMPLE);
        assert!(
            out.status.success(),
            "{}",
            hapx_tests::shell::describe(&out)
        );
        Sample { cib }
    }

    /// stdout (without crmsh's `.EXT` traces) and stderr of one command line.
    fn run(&self, words: &[&str], hapx: bool) -> (String, String) {
        let mut cmd = if hapx {
            std::process::Command::new(hapx_tests::bins::path("hapx"))
        } else {
            std::process::Command::new("crm")
        };
        let home = self.cib.dir.join("home");
        cmd.arg("-R")
            .args(words)
            .env("CIB_file", &self.cib.path)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("CRM_CONFIG_FILE", home.join(".config/crm/crm.conf"));
        let out = hapx_tests::shell::run_with_stdin(cmd, "");
        let stdout = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(".EXT"))
            .map(|l| match l.split_once("take effect until: ") {
                // A time of day: only that it is said counts.
                Some((head, _)) => format!("{head}take effect until: (the end)\n"),
                None => format!("{l}\n"),
            })
            .collect();
        // crmsh in regression mode shows the Python traceback of a fatal error before the
        // error itself; the error is what a user reads.
        let stderr = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| {
                !l.starts_with("Traceback ")
                    && !l.starts_with("  ")
                    && !l
                        .split_once(": ")
                        .is_some_and(|(k, _)| k.ends_with("Error") && !k.contains(' '))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        (stdout, stderr)
    }
}
