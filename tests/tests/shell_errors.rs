//! Bad input to hapx's crm shell: one clear error naming the line and what was expected, a
//! non-zero exit, and a CIB left exactly as it was.

use hapx_shell::backend::FileCib;
use hapx_shell::session::{Level, Session};
use hapx_tests::shell::{Cib, describe};

/// Runs `script` through `hapx configure` and checks it failed without touching the CIB;
/// returns stderr.
fn refused(script: &str) -> String {
    let cib = Cib::empty("errors");
    let before = cib.text();
    let out = cib.hapx(&["configure"], script);
    assert!(
        !out.status.success(),
        "accepted:\n{script}\n{}",
        describe(&out)
    );
    assert_eq!(
        cib.text(),
        before,
        "the CIB changed after a failed script:\n{script}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn syntax_errors_name_the_line_and_the_expected_token() {
    let err = refused(
        "property stonith-enabled=false\nprimitive p1 ocf:heartbeat:Dummy\ncolocation c1 foo p1 p1\ncommit\n",
    );
    assert!(
        err.contains("ERROR: 3: syntax in colocation: Expected <score>: near <foo> parsing 'colocation c1 foo p1 p1'"),
        "{err}"
    );
    assert!(err.contains("ERROR: 4: commit refused"), "{err}");

    let err = refused(
        "primitive p1 ocf:heartbeat:Dummy \\\n\top monitor interval=10 \\\n\ta:b\ncommit\n",
    );
    assert!(
        err.contains("ERROR: 1: syntax in primitive: Unknown arguments: a:b near <a:b> parsing"),
        "{err}"
    );

    let err =
        refused("primitive p1 Dummy\nprimitive p2 Dummy\norder o1 Mandatory: p1:frob p2\ncommit\n");
    assert!(
        err.contains("ERROR: 3: syntax in order: Invalid action 'frob' for 'p1' near <p2> parsing"),
        "{err}"
    );

    let err = refused("location l1 p1\ncommit\n");
    assert!(err.contains("ERROR: 1: syntax in location:"), "{err}");

    let err = refused("primitive p 'unclosed\ncommit\n");
    assert!(err.contains("ERROR: 1: No closing quotation"), "{err}");

    let err = refused("frobnicate x\ncommit\n");
    assert!(
        err.contains("ERROR: 1: configure.frobnicate: No such command"),
        "{err}"
    );
}

#[test]
fn unknown_and_duplicate_ids_are_refused() {
    let err = refused("primitive p1 ocf:heartbeat:Dummy\ncolocation c inf: p1 nope\ncommit\n");
    assert!(
        err.contains("ERROR: 2: c: resource nope does not exist"),
        "{err}"
    );

    let err =
        refused("primitive p1 ocf:heartbeat:Dummy\nprimitive p1 ocf:heartbeat:Dummy\ncommit\n");
    assert!(
        err.contains(
            "ERROR: 2: Cannot create primitive with ID 'p1': Found existing primitive with same ID."
        ),
        "{err}"
    );

    let err = refused("group g nope\ncommit\n");
    assert!(
        err.contains("ERROR: 1: g refers to missing object nope"),
        "{err}"
    );

    let err = refused("primitive p1 ocf:heartbeat:Dummy\ndelete nope\ncommit\n");
    assert!(
        err.contains("ERROR: 2: object nope does not exist"),
        "{err}"
    );
}

#[test]
fn bad_scores_are_refused() {
    let err = refused("primitive p1 ocf:heartbeat:Dummy\nlocation l p1 abc: node1\ncommit\n");
    assert!(
        err.contains("ERROR: 2: syntax in location: Invalid score abc"),
        "{err}"
    );
    let err = refused(
        "primitive p1 ocf:heartbeat:Dummy\nprimitive p2 ocf:heartbeat:Dummy\norder o bogus: p1 p2\ncommit\n",
    );
    assert!(
        err.contains("ERROR: 3: syntax in order: Invalid kind: bogus"),
        "{err}"
    );
}

#[test]
fn agent_parameters_are_checked_like_crmsh() {
    let err = refused("primitive p3 IPaddr2 params ipp=1\ncommit\n");
    assert!(
        err.contains("ERROR: 1: p3: required parameter \"ip\" not defined"),
        "{err}"
    );
    assert!(
        err.contains("ERROR: 1: p3: parameter \"ipp\" is not known"),
        "{err}"
    );
    let err = refused("primitive p2 ocf:heartbeat:Nope\ncommit\n");
    assert!(
        err.contains("ERROR: 1: ocf:heartbeat:Nope: got no meta-data, does this RA exist?"),
        "{err}"
    );
}

#[test]
fn a_concurrent_change_refuses_the_commit() {
    let cib = Cib::unfenced("concurrent");
    let backend = FileCib {
        path: cib.path.clone(),
        create: false,
    };
    let mut session = Session::new(backend, Level::Configure, false);
    session.run_line("primitive p1 ocf:heartbeat:Dummy", Some(1));
    assert_eq!(session.errors(), 0);
    // Someone else commits in between: the epoch moves on.
    let other = cib.hapx(
        &["configure", "primitive", "other", "ocf:heartbeat:Dummy"],
        "",
    );
    assert!(other.status.success(), "{}", describe(&other));
    let after_other = cib.text();
    session.run_line("commit", Some(2));
    assert_eq!(session.errors(), 1, "the stale commit was accepted");
    assert_eq!(cib.text(), after_other, "the stale commit wrote something");
    assert!(!after_other.contains("\"p1\""));
}

#[test]
fn commits_bump_the_epoch_and_write_atomically() {
    let cib = Cib::empty("epoch");
    let out = cib.hapx(
        &["configure"],
        "property stonith-enabled=false\ncommit\nprimitive p ocf:heartbeat:Dummy\ncommit\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = cib.text();
    assert!(
        text.contains(r#"epoch="3""#) && text.contains(r#"num_updates="0""#),
        "{text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&cib.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn missing_commit_commits_at_the_end_as_crmsh_does() {
    // crmsh's `end_game`: leaving `configure` non-interactively (end of input, `quit`) commits.
    for ending in ["quit\n", ""] {
        let cib = Cib::unfenced("nocommit");
        let out = cib.hapx(
            &["configure"],
            &format!("primitive p ocf:heartbeat:Dummy\n{ending}"),
        );
        assert!(out.status.success(), "{}", describe(&out));
        assert!(
            cib.text().contains("id=\"p\""),
            "{ending:?}: {}",
            cib.text()
        );
    }
    // A script with an error still writes nothing, and says why.
    let cib = Cib::unfenced("nocommit-error");
    let before = cib.text();
    let out = cib.hapx(
        &["configure"],
        "primitive p ocf:heartbeat:Dummy\nprimitive q\n",
    );
    assert!(!out.status.success());
    assert_eq!(cib.text(), before);
    // A warning goes to stdout, as crmsh's console handler sends it.
    assert!(String::from_utf8_lossy(&out.stdout).contains("uncommitted changes were discarded"));
}

#[test]
fn one_shot_commands_commit_and_show() {
    let cib = Cib::unfenced("oneshot");
    let out = cib.hapx(
        &[
            "configure",
            "primitive",
            "p",
            "Dummy",
            "op",
            "monitor",
            "interval=10s",
        ],
        "",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = cib.hapx(&["configure", "show", "p"], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "primitive p Dummy \\\n\top monitor interval=10s\n"
    );
    let out = cib.hapx(&["configure", "show", "nope"], "");
    assert!(!out.status.success());
    let out = cib.hapx(&["configure", "delete", "p"], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!cib.text().contains("primitive"));
}

#[test]
fn missing_cib_file_is_an_error() {
    let cib = Cib::empty("missing");
    std::fs::remove_file(&cib.path).unwrap();
    let out = cib.hapx(&["configure", "show"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cib.xml"),
        "{}",
        describe(&out)
    );
    assert!(
        !cib.path.exists(),
        "CIB_file naming a missing file must not create it"
    );
}

#[test]
fn a_status_update_meanwhile_is_kept_not_refused() {
    let cib = Cib::unfenced("statusupdate");
    let backend = FileCib {
        path: cib.path.clone(),
        create: false,
    };
    let mut session = Session::new(backend, Level::Configure, false);
    session.run_line("primitive p1 ocf:heartbeat:Dummy", Some(1));
    // The local driver records an operation: the status changes, num_updates moves.
    let text = cib.text().replace(
        "<status/>",
        "<status>\n    <node_state id=\"1\" uname=\"node1\"/>\n  </status>",
    );
    let text = text.replace("num_updates=\"0\"", "num_updates=\"1\"");
    std::fs::write(&cib.path, text).unwrap();
    session.run_line("commit", Some(2));
    assert_eq!(session.errors(), 0, "a status update made the commit stale");
    let after = cib.text();
    assert!(
        after.contains("\"p1\"") && after.contains("node_state"),
        "{after}"
    );
    assert!(
        after.contains("epoch=\"2\"") && after.contains("num_updates=\"0\""),
        "{after}"
    );
}

#[test]
fn the_embedded_cib_starts_as_cibadmin_empty_makes_it() {
    if !hapx_tests::require::command(
        "the_embedded_cib_starts_as_cibadmin_empty_makes_it",
        "cibadmin",
    ) {
        return;
    }
    let scratch = Cib::empty("embedded");
    let path = scratch.dir.join("var/lib/hapx/cib.xml");
    let mut cmd = std::process::Command::new(hapx_tests::bins::path("hapx"));
    cmd.args(["configure", "show"])
        .env_remove("CIB_file")
        .env("HAPX_CIB", &path);
    let out = hapx_tests::shell::run_with_stdin(cmd, "");
    assert!(out.status.success(), "{}", describe(&out));
    let ours = std::fs::read_to_string(&path).unwrap();
    let theirs = std::process::Command::new("cibadmin")
        .arg("--empty")
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&theirs.stdout);
    let (a, b) = (
        hapx_cib::xml::Document::parse(&ours).unwrap().root,
        hapx_cib::xml::Document::parse(&theirs).unwrap().root,
    );
    let mut a_attrs = a.attributes.clone();
    let mut b_attrs = b.attributes.clone();
    a_attrs.sort();
    b_attrs.sort();
    assert_eq!(a_attrs, b_attrs);
    assert_eq!(
        hapx_tests::shell::canonical(&ours),
        hapx_tests::shell::canonical(&theirs)
    );
    assert_eq!(a.elements().count(), b.elements().count());
}

#[test]
fn a_script_file_runs_from_the_top_level() {
    let cib = Cib::unfenced("dashf");
    let script = cib.dir.join("script.crm");
    std::fs::write(
        &script,
        "# a comment\nconfigure\nprimitive p ocf:heartbeat:Dummy \\\n\top monitor interval=10s\ncommit\nquit\n",
    )
    .unwrap();
    let out = cib.hapx(&["-f", script.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        cib.text().contains(r#"id="p-monitor-10s""#),
        "{}",
        cib.text()
    );
    std::fs::write(&script, "configure\nprimitive q Bogus:x:y:z\ncommit\n").unwrap();
    let before = cib.text();
    let out = cib.hapx(&["-f", script.to_str().unwrap()], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR: 2: "),
        "{}",
        describe(&out)
    );
    assert_eq!(cib.text(), before);
}

#[test]
fn resources_without_fencing_are_refused_unless_forced() {
    // crmsh refuses such a commit because crm_verify reports errors; so does hapx.
    let cib = Cib::empty("fencing");
    let before = cib.text();
    let out = cib.hapx(&["configure"], "primitive p ocf:heartbeat:Dummy\ncommit\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ERROR: 2: (unpack_resources) \terror: Resource start-up disabled since no STONITH resources have been defined"),
        "{err}"
    );
    assert!(
        err.contains("crm_verify: Errors found during check: config not valid"),
        "{err}"
    );
    assert_eq!(cib.text(), before);
    let out = cib.hapx(
        &["configure"],
        "primitive p ocf:heartbeat:Dummy\ncommit force\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(cib.text().contains("\"p\""));
}
