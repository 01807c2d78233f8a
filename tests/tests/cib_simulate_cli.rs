//! `hapx simulate` as users run it: the built binary on Pacemaker's own CIBs, with what-if
//! changes compared against `crm_simulate`, and clear errors for bad input.

use std::process::Command;

use hapx_tests::{bins, cib, require};

fn hapx_simulate(args: &[&str]) -> std::process::Output {
    Command::new(bins::path("hapx"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run hapx simulate")
}

#[test]
fn prints_what_crm_simulate_printed_for_the_suite() {
    let dir = cib::pacemaker_dir();
    if !require::path(
        "prints_what_crm_simulate_printed_for_the_suite",
        &dir,
        "the corpus",
    ) {
        return;
    }
    for name in ["rec-rsc-1", "rec-node-4", "migrate-1", "order7"] {
        let xml = dir.join("xml").join(format!("{name}.xml"));
        let out = hapx_simulate(&["-x", xml.to_str().unwrap(), "-S"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = std::fs::read_to_string(dir.join("summary").join(format!("{name}.summary")))
            .expect("summary");
        assert_eq!(
            cib::normalise(&String::from_utf8_lossy(&out.stdout)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn what_if_changes_match_crm_simulate() {
    let dir = cib::pacemaker_dir();
    if !require::path("what_if_changes_match_crm_simulate", &dir, "the corpus")
        || !require::command("what_if_changes_match_crm_simulate", "crm_simulate")
    {
        return;
    }
    let xml = dir.join("xml").join("rec-rsc-1.xml");
    let xml = xml.to_str().unwrap();
    for extra in [
        vec!["-u", "node3", "-d", "node2"],
        vec!["-i", "rsc1_monitor_0@node2=7"],
        vec!["-f", "node2"],
    ] {
        let mut args = vec!["-x", xml, "-S"];
        args.extend(&extra);
        let ours = hapx_simulate(&args);
        assert!(
            ours.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let theirs = Command::new("crm_simulate")
            .args(&args)
            .env_remove("CIB_file")
            .output()
            .expect("run crm_simulate");
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{extra:?}"
        );
    }
}

#[test]
fn explains_a_placement_and_saves_the_graph() {
    let dir = cib::pacemaker_dir();
    if !require::path(
        "explains_a_placement_and_saves_the_graph",
        &dir,
        "the corpus",
    ) {
        return;
    }
    let xml = dir.join("xml").join("rec-rsc-1.xml");
    let graph = std::env::temp_dir().join(format!("hapx-graph-{}.xml", std::process::id()));
    let out = hapx_simulate(&[
        "-x",
        xml.to_str().unwrap(),
        "-R",
        "-G",
        graph.to_str().unwrap(),
        "--explain",
        "rsc1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Transition Summary:"), "{text}");
    assert!(!text.contains("Executing Cluster Transition"), "{text}");
    assert!(
        text.contains("fail count 1 reached migration-threshold 1"),
        "{text}"
    );
    assert!(text.contains("decision: run on node2"), "{text}");
    let saved = std::fs::read_to_string(&graph).expect("graph written");
    let _ = std::fs::remove_file(&graph);
    let doc = hapx_cib::xml::Document::parse(&saved).expect("graph is XML");
    assert_eq!(doc.root.name, "transition_graph");
    assert!(saved.contains("operation_key=\"rsc1_start_0\""), "{saved}");
}

#[test]
fn bad_input_gets_one_clear_error() {
    let dir = std::env::temp_dir().join(format!("hapx-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cib.xml");
    std::fs::write(
        &file,
        "<cib>\n<configuration>\n<resources/>\n<constraints>\n\
         <rsc_colocation id=\"c1\" rsc=\"a\" with-rsc=\"b\" score=\"INFINITY\"/>\n\
         </constraints>\n</configuration>\n</cib>\n",
    )
    .unwrap();
    let out = hapx_simulate(&["-x", file.to_str().unwrap(), "-S"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cib.xml"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("rsc_colocation id=\"c1\""), "{err}");
    assert!(out.stdout.is_empty(), "nothing printed on error");
    std::fs::write(
        &file,
        "<cib>\n<configuration>\n<resources/>\n<constraints/>\n</configuration>\n</cib>\n",
    )
    .unwrap();
    let out = hapx_simulate(&["-x", file.to_str().unwrap(), "-i", "nonsense"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--op-inject nonsense"));
    let _ = std::fs::remove_dir_all(&dir);
}
