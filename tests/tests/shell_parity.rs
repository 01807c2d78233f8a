//! hapx against the installed crmsh 4.4.1 on what crmsh's replayed testcases do not cover:
//! the same script on the same file CIB through both shells gives the same configuration,
//! the same diagnostics (on the same stream) and the same exit status. Where hapx differs from
//! crmsh on purpose (crmsh crashes, or refuses `edit` in a script), the test says what hapx
//! does instead.

use hapx_tests::require;
use hapx_tests::shell::{Cib, canonical, describe, diagnostics, strip_colours};

/// A configuration the scripts below work on: two nodes, a fencing device, a group of two
/// and a clone.
const BASE: &str = "property stonith-enabled=false
node node1
node node2
primitive p1 ocf:heartbeat:Dummy op monitor interval=10s
primitive p2 ocf:heartbeat:Dummy
primitive p3 ocf:heartbeat:Dummy
primitive st stonith:null params hostlist=\"node1 node2\"
group g1 p2 p3
clone c1 p1
commit
";

/// The base configuration committed by crmsh, as a CIB file each shell gets a copy of.
fn base(tag: &str) -> (Cib, Cib) {
    let theirs = Cib::empty(&format!("{tag}-crmsh"));
    let out = theirs.crmsh(&["configure"], BASE);
    assert!(
        out.status.success(),
        "crmsh on the base: {}",
        describe(&out)
    );
    let ours = Cib::with_text(&format!("{tag}-hapx"), &theirs.text());
    (theirs, ours)
}

/// Runs `args` with `script` through both shells on copies of the base configuration and
/// asserts the same exit status, diagnostics on each stream, and configuration.
fn same_as_crmsh(test: &str, args: &[&str], script: &str) -> (Cib, Cib) {
    let (theirs, ours) = base(test);
    let want = theirs.crmsh(args, script);
    let got = ours.hapx(args, script);
    let context = format!(
        "{test}: {args:?}\n{script}\n--- crmsh\n{}\n--- hapx\n{}",
        describe(&want),
        describe(&got)
    );
    assert_eq!(got.status.success(), want.status.success(), "{context}");
    assert_eq!(
        diagnostics(&got.stdout),
        diagnostics(&want.stdout),
        "stdout: {context}"
    );
    assert_eq!(
        diagnostics(&got.stderr),
        diagnostics(&want.stderr),
        "stderr: {context}"
    );
    assert_eq!(
        canonical(&ours.text()),
        canonical(&theirs.text()),
        "{context}"
    );
    (theirs, ours)
}

fn crmsh_installed(test: &str) -> bool {
    require::command(test, "crm") && require::command(test, "crm_verify")
}

#[test]
fn operations_are_checked_against_the_agents_actions() {
    let test = "operations_are_checked_against_the_agents_actions";
    if !crmsh_installed(test) {
        return;
    }
    for script in [
        "primitive px ocf:heartbeat:Dummy op bogus interval=10s\ncommit\n",
        "primitive px ocf:heartbeat:Dummy op start timeout=5s op monitor interval=0 \
         op monitor interval=10s timeout=1s op monitor interval=10s\ncommit\n",
        "op_defaults timeout=5s\nprimitive px ocf:heartbeat:Dummy\ncommit\n",
        "primitive px ocf:pacemaker:Stateful op monitor role=Promoted interval=11s timeout=3s \
         op monitor role=Unpromoted interval=12s op promote timeout=1s op demote interval=3\n\
         commit\n",
        "primitive fx stonith:null params hostlist=node1 op start timeout=1s \
         op monitor interval=0\ncommit\n",
    ] {
        same_as_crmsh(test, &["configure"], script);
    }
}

#[test]
fn unknown_properties_and_defaults_are_warned_about() {
    let test = "unknown_properties_and_defaults_are_warned_about";
    if !crmsh_installed(test) {
        return;
    }
    same_as_crmsh(
        test,
        &["configure"],
        "property bogus-prop=1 maintenance-mode=false dc-version=x\n\
         rsc_defaults bogus=1 resource-stickiness=1\n\
         op_defaults bogus2=1 timeout=30s record-pending=true\n\
         property $id=other foo=bar\ncommit\n",
    );
}

#[test]
fn what_crm_verify_refuses_is_refused_at_commit() {
    let test = "what_crm_verify_refuses_is_refused_at_commit";
    if !crmsh_installed(test) {
        return;
    }
    // A target-role naming no role, and a ticket that would fence with fencing disabled: the
    // errors crm_verify reports, the CIB unchanged, a non-zero exit.
    let (_, ours) = same_as_crmsh(
        test,
        &["configure"],
        "primitive px ocf:heartbeat:Dummy meta target-role=Unknown\n\
         primitive py ocf:heartbeat:Dummy meta target-role=started\n\
         group gg py meta target-role=Bogus\ncommit\n",
    );
    assert!(!ours.text().contains("target-role"));
    same_as_crmsh(
        test,
        &["configure"],
        "rsc_ticket t2 ticketB: c1:Started g1 loss-policy=fence\ncommit\n",
    );
    // `commit force` reports them and writes anyway.
    let (_, ours) = same_as_crmsh(
        test,
        &["configure"],
        "primitive px ocf:heartbeat:Dummy meta target-role=Bogus\ncommit force\n",
    );
    assert!(ours.text().contains("value=\"Bogus\""));
}

#[test]
fn an_op_value_the_schema_refuses_never_reaches_the_cib() {
    let test = "an_op_value_the_schema_refuses_never_reaches_the_cib";
    if !crmsh_installed(test) {
        return;
    }
    // crmsh warns, then the CIB fails schema validation; hapx warns the same and refuses the
    // commit itself (it validates no schema), naming the value.
    let script =
        "primitive px ocf:heartbeat:Dummy op monitor interval=10s on-fail=explode\ncommit\n";
    let (theirs, ours) = base(test);
    let want = theirs.crmsh(&["configure"], script);
    let got = ours.hapx(&["configure"], script);
    assert!(
        !want.status.success() && !got.status.success(),
        "{}",
        describe(&got)
    );
    assert_eq!(diagnostics(&got.stdout), diagnostics(&want.stdout));
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(
        err.contains("px: op 'monitor' attribute 'on-fail' value 'explode' not recognized: Pacemaker's schema does not allow it"),
        "{err}"
    );
    assert_eq!(canonical(&ours.text()), canonical(&theirs.text()));
}

#[test]
fn constraints_may_name_tags_and_rules_name_nodes() {
    let test = "constraints_may_name_tags_and_rules_name_nodes";
    if !crmsh_installed(test) {
        return;
    }
    same_as_crmsh(
        test,
        &["configure"],
        "tag tag1: st g1\ntag tag2 g1 c1\nlocation l1 tag1 100: node1\n\
         colocation col1 inf: tag2 st\norder o1 Mandatory: tag1 c1\n\
         rsc_ticket tk1 tick: tag2\nlocation l2 g1 rule 10: #uname eq node9 or #uname eq node1\n\
         commit\n",
    );
}

#[test]
fn load_replace_update_push_and_xml_do_what_crmsh_does() {
    let test = "load_replace_update_push_and_xml_do_what_crmsh_does";
    if !crmsh_installed(test) {
        return;
    }
    let dir = Cib::empty("load-files");
    let text = dir.dir.join("load.crm");
    std::fs::write(
        &text,
        "node node1\nprimitive p5 ocf:heartbeat:Dummy\n\
         primitive p2 ocf:heartbeat:Dummy params fake=1 op monitor interval=20s\n\
         primitive p1 ocf:heartbeat:Dummy op monitor interval=10s timeout=30s\n\
         primitive p3 ocf:heartbeat:Dummy\n\
         group g1 p3 p2 meta target-role=Stopped\nlocation l9 p5 50: node1\n\
         property stonith-enabled=false\nrsc_defaults resource-stickiness=10\n",
    )
    .unwrap();
    let text = text.display();
    for method in ["update", "replace", "push"] {
        // A group member updated stays in its group; replace keeps the nodes; push drops what
        // the file does not name.
        same_as_crmsh(
            test,
            &["configure"],
            &format!("load {method} {text}\ncommit\n"),
        );
    }
    // `load xml replace` of a saved configuration with one object changed.
    let (theirs, _) = base("load-xml-source");
    let saved = theirs.crmsh(&["configure", "show", "xml"], "");
    let xml = String::from_utf8_lossy(&saved.stdout).replace("\"p3\"", "\"p7\"");
    let xml_file = dir.dir.join("load.xml");
    std::fs::write(&xml_file, xml).unwrap();
    same_as_crmsh(
        test,
        &["configure"],
        &format!("load xml replace {}\ncommit\n", xml_file.display()),
    );
}

#[test]
fn show_related_and_rename_follow_references() {
    let test = "show_related_and_rename_follow_references";
    if !crmsh_installed(test) {
        return;
    }
    let constraints = "location l1 g1 100: node1\ncolocation col1 inf: g1 c1\n\
                       colocation col2 -inf: ( p2 p3 ) st\n\
                       order o2 Optional: st:start ( p2 p3 ) symmetrical=false\n\
                       rsc_ticket tk1 tick: g1\n";
    let script = format!(
        "{constraints}show related:g1\nshow related:Dummy\nshow related:stonith:null\n\
         show xml related:c1\nrename g1 grp\nrename p2 px\nrename c1 cln\nshow\ncommit\n"
    );
    let (theirs, ours) = base(test);
    let want = theirs.crmsh(&["configure"], &script);
    let got = ours.hapx(&["configure"], &script);
    assert!(got.status.success(), "{}", describe(&got));
    let shown = |o: &std::process::Output| -> String {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.contains("WARNING") && !l.contains("INFO"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(shown(&got), shown(&want));
    assert_eq!(diagnostics(&got.stdout), diagnostics(&want.stdout));
    assert_eq!(canonical(&ours.text()), canonical(&theirs.text()));
}

#[test]
fn levels_aliases_and_one_shot_commands() {
    let test = "levels_aliases_and_one_shot_commands";
    if !crmsh_installed(test) {
        return;
    }
    for script in [
        "up\n",
        "end\n",
        "configure\nend\nend\n",
        "exit\n",
        "configure\nback\nbye\n",
    ] {
        same_as_crmsh(test, &[], script);
    }
    // A colocation has no score-attribute in Pacemaker's schema: crmsh writes one and the CIB
    // fails validation; hapx refuses the statement.
    let (_, ours) = base(test);
    let out = ours.hapx(&["configure"], "colocation cx foo: g1 c1\ncommit\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Invalid score foo: expected an integer, inf, +inf or -inf"),
        "{}",
        describe(&out)
    );
    // One-shot commands on a clone: crm_resource renders what the native status does not.
    for args in [
        &["resource", "status", "c1"][..],
        &["resource", "status", "p1"],
        &["resource", "list"],
    ] {
        let (theirs, ours) = base(test);
        let want = theirs.crmsh(args, "");
        let got = ours.hapx(args, "");
        let plain = |b: &[u8]| strip_colours(&String::from_utf8_lossy(b));
        assert_eq!(
            plain(&got.stdout),
            plain(&want.stdout),
            "{args:?}: {}",
            describe(&got)
        );
        assert_eq!(
            plain(&got.stderr),
            plain(&want.stderr),
            "{args:?}: {}",
            describe(&got)
        );
    }
}

#[test]
fn edit_keeps_objects_in_place_and_help_prints_a_topic() {
    // crmsh refuses `edit` in a script ("edit not allowed in batch mode"); hapx runs the
    // editor, here a non-interactive one, and updates the objects in place.
    let ours = Cib::empty("edit-in-place");
    let out = ours.hapx(&["configure"], BASE);
    assert!(out.status.success(), "{}", describe(&out));
    let editor = std::path::Path::new("sed -i s/interval=10s/interval=11s/");
    let out = ours.hapx_env(&["configure"], "edit p1\ncommit\n", &[("EDITOR", editor)]);
    assert!(out.status.success(), "{}", describe(&out));
    let show = ours.hapx(&["configure", "show"], "");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("clone c1 p1"), "the clone survives: {show}");
    assert!(show.contains("op monitor interval=11s"), "{show}");

    let help = ours.hapx(&["configure", "help", "primitive"], "");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.starts_with("primitive ID [class:[provider:]]type"),
        "{text}"
    );
    let help = ours.hapx(&[], "help resource stop\n");
    assert!(
        String::from_utf8_lossy(&help.stdout).starts_with("resource start|stop|restart RSC"),
        "{}",
        describe(&help)
    );
    let help = ours.hapx(&["configure", "help", "nosuch"], "");
    assert!(!help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stderr)
            .contains("configure.help: No help found for 'nosuch'"),
        "{}",
        describe(&help)
    );
}

/// hapx carries Pacemaker 2.1.5's cluster property names instead of asking three daemons on
/// every commit as crmsh does: the table must say what the installed daemons say.
#[test]
fn cluster_property_names_are_the_installed_pacemakers() {
    const TEST: &str = "cluster_property_names_are_the_installed_pacemakers";
    let daemons = [
        "pacemaker-controld",
        "pacemaker-schedulerd",
        "pacemaker-based",
    ]
    .map(|d| std::path::Path::new("/usr/lib/pacemaker").join(d));
    if !daemons
        .iter()
        .all(|d| require::path(TEST, d, "Pacemaker's daemons"))
    {
        return;
    }
    let mut installed: Vec<String> = Vec::new();
    for daemon in &daemons {
        let out = std::process::Command::new(daemon)
            .arg("metadata")
            .output()
            .expect("run the daemon's metadata");
        let doc = hapx_cib::xml::Document::parse(&String::from_utf8_lossy(&out.stdout))
            .expect("the daemon's meta-data is XML");
        let parameters = doc.root.child("parameters").expect("a parameters element");
        for p in parameters.children_named("parameter") {
            let name = p.attr("name").expect("a named parameter").to_string();
            if !installed.contains(&name) {
                installed.push(name);
            }
        }
    }
    assert_eq!(hapx_shell::ra::CLUSTER_PROPERTY_NAMES, installed.as_slice());
}

/// `resource stop`, `meta set` and `utilization set` add their attribute set where crmsh and
/// crm_resource add it, at the end of the primitive, so `configure show` prints the same.
#[test]
fn resource_level_sets_go_where_crmsh_puts_them() {
    let test = "resource_level_sets_go_where_crmsh_puts_them";
    if !crmsh_installed(test) {
        return;
    }
    let (theirs, ours) = base(test);
    let script = "primitive p9 ocf:heartbeat:Dummy op monitor interval=10s\ncommit\n";
    assert!(theirs.crmsh(&["configure"], script).status.success());
    assert!(ours.hapx(&["configure"], script).status.success());
    for args in [
        &["resource", "stop", "p9"][..],
        &["resource", "stop", "p2"],
        &["resource", "meta", "p1", "set", "m1", "7"],
        &["resource", "utilization", "p3", "set", "cpu", "2"],
    ] {
        let want = theirs.crmsh(args, "");
        let got = ours.hapx(args, "");
        assert_eq!(
            got.status.success(),
            want.status.success(),
            "{args:?}: {}\n{}",
            describe(&want),
            describe(&got)
        );
    }
    let show = |out: std::process::Output| strip_colours(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        show(ours.hapx(&["configure", "show"], "")),
        show(theirs.crmsh(&["configure", "show"], ""))
    );
    let resources = |cib: &Cib| {
        let doc = hapx_cib::xml::Document::parse(&cib.text()).expect("a CIB");
        doc.root
            .descendants()
            .filter(|e| ["primitive", "group", "clone"].contains(&e.name.as_str()))
            .map(|p| {
                let parts: Vec<&str> = p.elements().map(|c| c.name.as_str()).collect();
                format!("{}: {}", p.attr("id").unwrap_or_default(), parts.join(" "))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(resources(&ours), resources(&theirs));
}
