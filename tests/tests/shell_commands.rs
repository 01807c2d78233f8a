//! Configure-level commands that move the configuration around: `save` and `load` round trips,
//! `show changed`, `rename`, `erase`, `filter`, `edit` with a scripted editor.

use hapx_tests::shell::{Cib, canonical, describe};

const BASE: &str = "property stonith-enabled=false
primitive a ocf:heartbeat:Dummy op monitor interval=10s
primitive b ocf:heartbeat:Dummy
group g a b
location l g 100: node1
commit
";

fn configured(tag: &str) -> Cib {
    let cib = Cib::empty(tag);
    let out = cib.hapx(&["configure"], BASE);
    assert!(out.status.success(), "{}", describe(&out));
    cib
}

#[test]
fn save_and_load_round_trip_in_text_and_xml() {
    let cib = configured("saveload");
    let text_file = cib.dir.join("saved.crm");
    let xml_file = cib.dir.join("saved.xml");
    let script = format!(
        "save {}\nsave xml {}\n",
        text_file.display(),
        xml_file.display()
    );
    let out = cib.hapx(&["configure"], &script);
    assert!(out.status.success(), "{}", describe(&out));
    let saved = std::fs::read_to_string(&text_file).unwrap();
    assert!(saved.contains("group g a b"), "{saved}");

    for file in [&text_file, &xml_file] {
        let other = Cib::empty("loaded");
        let script = format!("load replace {}\ncommit\n", file.display());
        let out = other.hapx(&["configure"], &script);
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            describe(&out)
        );
        assert_eq!(
            canonical(&other.text()),
            canonical(&cib.text()),
            "{}",
            file.display()
        );
    }
}

#[test]
fn show_changed_lists_only_edited_objects() {
    let cib = configured("changed");
    let out = cib.hapx(
        &["configure"],
        "primitive c ocf:heartbeat:Dummy\nset a.monitor.timeout 30s\nshow changed\n",
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        shown,
        // The group holding an edited member counts as changed, as in crmsh.
        "primitive a Dummy \\\n\top monitor interval=10s timeout=30s\nprimitive c Dummy\ngroup g a b\n"
    );
}

#[test]
fn rename_erase_and_filter_edit_the_working_copy() {
    let cib = configured("rename");
    let out = cib.hapx(
        &["configure"],
        "rename a a2\nfilter \"sed 's/100:/200:/'\" l\ncommit\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let shown = cib.hapx(&["configure", "show"], "");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("group g a2 b"), "{shown}");
    assert!(shown.contains("location l g 200: node1"), "{shown}");

    let out = cib.hapx(&["configure"], "erase\ncommit\n");
    assert!(out.status.success(), "{}", describe(&out));
    // As crmsh's `erase`: every object but the nodes goes, properties too (crmsh 4.4.1 shows
    // nothing after it here).
    let shown = cib.hapx(&["configure", "show"], "");
    assert_eq!(String::from_utf8_lossy(&shown.stdout), "");
}

#[test]
fn edit_runs_the_editor_on_the_objects() {
    let cib = configured("edit");
    let mut cmd = std::process::Command::new(hapx_tests::bins::path("hapx"));
    cmd.args(["configure"])
        .env("CIB_file", &cib.path)
        .env("EDITOR", "sed -i s/interval=10s/interval=20s/");
    let out = hapx_tests::shell::run_with_stdin(cmd, "edit a\ncommit\n");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        cib.text().contains(r#"id="a-monitor-20s""#),
        "{}",
        cib.text()
    );

    // An editor that breaks the syntax changes nothing.
    let before = cib.text();
    let mut cmd = std::process::Command::new(hapx_tests::bins::path("hapx"));
    cmd.args(["configure"])
        .env("CIB_file", &cib.path)
        .env("EDITOR", "sed -i s/primitive/primitiv/");
    let out = hapx_tests::shell::run_with_stdin(cmd, "edit a\ncommit\n");
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(cib.text(), before);
}
