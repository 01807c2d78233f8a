//! The `options` level and what its settings change, through the `hapx` binary with a private
//! home (crm.conf never lands in the real one), and crmsh's refusal of agents that do not exist.

use std::path::{Path, PathBuf};
use std::process::Output;

use hapx_tests::shell::{Cib, describe};

/// `hapx ARGS` on `cib` with `home` as HOME (and no XDG_CONFIG_HOME/CRM_CONFIG_FILE).
fn hapx(cib: &Cib, home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = std::process::Command::new(hapx_tests::bins::path("hapx"));
    cmd.args(args)
        .env("CIB_file", &cib.path)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CRM_CONFIG_FILE");
    hapx_tests::shell::run_with_stdin(cmd, stdin)
}

fn home(cib: &Cib) -> PathBuf {
    let home = cib.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    home
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_shot_settings_persist_in_crmshs_file_and_session_ones_need_save() {
    let cib = Cib::unfenced("options-persist");
    let home = home(&cib);
    let out = hapx(&cib, &home, &["options", "check-mode", "relaxed"], "");
    assert!(out.status.success(), "{}", describe(&out));
    let conf = home.join(".config/crm/crm.conf");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "[core]\ncheck_mode = relaxed\n\n"
    );
    // Inside the level, a change lasts until `save`.
    let out = hapx(&cib, &home, &[], "options\nwait yes\nshow\n");
    assert!(
        stdout(&out).contains("wait \"yes\"\n"),
        "{}",
        describe(&out)
    );
    let shown = stdout(&hapx(&cib, &home, &["options", "show"], ""));
    assert!(shown.contains("wait \"no\"\n"), "{shown}");
    assert!(shown.contains("check-mode \"relaxed\"\n"), "{shown}");
    let out = hapx(&cib, &home, &[], "options\nwait yes\nsave\n");
    assert!(out.status.success(), "{}", describe(&out));
    let shown = stdout(&hapx(&cib, &home, &["options", "show"], ""));
    assert!(shown.contains("wait \"yes\"\n"), "{shown}");
    // XDG_CONFIG_HOME moves the file, as it does for crmsh.
    let xdg = cib.dir.join("xdg");
    let mut cmd = std::process::Command::new(hapx_tests::bins::path("hapx"));
    cmd.args(["options", "sort-elements", "no"])
        .env("CIB_file", &cib.path)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &xdg);
    let out = hapx_tests::shell::run_with_stdin(cmd, "");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        std::fs::read_to_string(xdg.join("crm/crm.conf"))
            .unwrap()
            .contains("sort_elements = no")
    );
}

#[test]
fn refused_values_say_why_and_change_nothing() {
    let cib = Cib::unfenced("options-refused");
    let home = home(&cib);
    let out = hapx(
        &cib,
        &home,
        &[],
        "options\ncheck-mode nosuchever\nwait happy\nskill_level joe\nsave\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ERROR: nosuchever not valid (choose one from strict,relaxed)\n")
            && err.contains("ERROR: happy not valid (yes or no are valid)\n")
            && err
                .contains("ERROR: joe not valid (choose one from operator,administrator,expert)\n"),
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains("This command 'skill_level' is deprecated, please use 'skill-level'"),
        "{}",
        describe(&out)
    );
    let shown = stdout(&hapx(&cib, &home, &["options", "show"], ""));
    assert!(shown.contains("check-mode \"strict\"") && shown.contains("wait \"no\""));
}

#[test]
fn sort_elements_no_shows_objects_as_made() {
    let cib = Cib::unfenced("options-sort");
    let home = home(&cib);
    let script =
        "configure\nprimitive zz ocf:heartbeat:Dummy\nprimitive aa ocf:heartbeat:Dummy\nshow\n";
    let sorted = stdout(&hapx(&cib, &home, &[], script));
    assert!(
        sorted.find("primitive aa") < sorted.find("primitive zz"),
        "{sorted}"
    );
    hapx(&cib, &home, &["options", "sort-elements", "no"], "");
    let unsorted = stdout(&hapx(&cib, &home, &[], script));
    assert!(
        unsorted.find("primitive zz") < unsorted.find("primitive aa"),
        "{unsorted}"
    );
}

#[test]
fn check_mode_and_frequency_decide_when_parameters_stop_a_script() {
    let cib = Cib::unfenced("options-check");
    let home = home(&cib);
    let script = "configure\nprimitive p ocf:heartbeat:Dummy params nosuch=1\ncommit\n";
    // strict (the default): an error at the line, nothing written.
    let out = hapx(&cib, &home, &[], script);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("ERROR: 2: p: parameter \"nosuch\" is not known"),
        "{}",
        describe(&out)
    );
    assert!(!cib.text().contains("id=\"p\""));
    // relaxed: a warning, and the primitive is committed.
    hapx(&cib, &home, &["options", "check-mode", "relaxed"], "");
    let out = hapx(&cib, &home, &[], script);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("WARNING: 2: p: parameter \"nosuch\" is not known"));
    assert!(cib.text().contains("id=\"p\""));
    // never: not even looked at.
    hapx(&cib, &home, &["options", "check-frequency", "never"], "");
    let out = hapx(
        &cib,
        &home,
        &[],
        "configure\nprimitive q ocf:heartbeat:Dummy params nosuch=1\ncommit\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("nosuch"),
        "{}",
        describe(&out)
    );
}

#[test]
fn an_operator_may_not_change_the_configuration() {
    let cib = Cib::unfenced("options-skill");
    let home = home(&cib);
    hapx(&cib, &home, &["options", "skill-level", "operator"], "");
    let before = cib.text();
    let out = hapx(
        &cib,
        &home,
        &[],
        "configure\nprimitive p ocf:heartbeat:Dummy\ncommit\n",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("ERROR: 2: configure.primitive: ACL administrator skill level required"),
        "{}",
        describe(&out)
    );
    assert_eq!(cib.text(), before);
    // Commands without a skill level (status, options) still run.
    assert!(hapx(&cib, &home, &["options", "show"], "").status.success());
    hapx(
        &cib,
        &home,
        &["options", "skill-level", "administrator"],
        "",
    );
    let out = hapx(
        &cib,
        &home,
        &["configure", "primitive", "p", "ocf:heartbeat:Dummy"],
        "",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(cib.text().contains("id=\"p\""));
}

#[test]
fn agents_that_do_not_exist_are_refused_and_nothing_is_written() {
    let cib = Cib::unfenced("unknown-agent");
    let home = home(&cib);
    let before = cib.text();
    for (agent, name) in [
        ("nosuch:agent", "nosuch:agent"),
        ("ocf:nosuch:Dummy", "ocf:nosuch:Dummy"),
        ("ocf:heartbeat:NoSuch", "ocf:heartbeat:NoSuch"),
    ] {
        let out = hapx(
            &cib,
            &home,
            &[],
            &format!("configure\nprimitive p {agent}\ncommit\n"),
        );
        assert!(!out.status.success(), "{agent}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        // crmsh 4.4.1's words (`ERROR: 2: nosuch:agent: got no meta-data, does this RA exist?`).
        assert!(
            err.contains(&format!(
                "ERROR: 2: {name}: got no meta-data, does this RA exist?\n"
            )),
            "{agent}: {}",
            describe(&out)
        );
        assert_eq!(cib.text(), before, "{agent}: nothing written");
    }
}
