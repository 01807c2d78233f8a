//! `configure template`: a configuration made from crmsh's `virtual-ip` template, applied, the
//! same through hapx and through crmsh (private homes; the configuration file compared too).

use std::path::Path;

use hapx_tests::require;
use hapx_tests::shell::{Cib, describe, run_with_stdin};

const SESSION: &str = "configure
property stonith-enabled=false
template
new vip virtual-ip params ip=192.0.2.10
load vip
apply update
up
show
commit
";

fn run(program: &Path, cib: &Cib, home: &Path) -> std::process::Output {
    let mut cmd = std::process::Command::new(program);
    cmd.env("CIB_file", &cib.path)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CRM_CONFIG_FILE");
    run_with_stdin(cmd, SESSION)
}

#[test]
fn a_template_configuration_applies_as_crmshs_does() {
    let test = "a_template_configuration_applies_as_crmshs_does";
    let templates = Path::new("/usr/share/crmsh/templates/virtual-ip");
    if !require::path(test, templates, "crmsh's templates") {
        return;
    }
    let ours = Cib::empty("template-hapx");
    let home = ours.dir.join("home");
    let out = run(&hapx_tests::bins::path("hapx"), &ours, &home);
    assert!(out.status.success(), "{}", describe(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("INFO: 4: pulling in template virtual-ip\n")
            && shown.contains("primitive virtual-ip IPaddr \\\n\tparams ip=192.0.2.10\n"),
        "{}",
        describe(&out)
    );
    assert!(
        ours.text().contains(r#"value="192.0.2.10""#),
        "{}",
        ours.text()
    );
    let config = std::fs::read_to_string(home.join(".config/crm/crmconf/vip")).unwrap();
    assert!(config.contains("%% ip  192.0.2.10"), "{config}");

    if !require::command(test, "crm") {
        return;
    }
    let theirs = Cib::empty("template-crmsh");
    let their_home = theirs.dir.join("home");
    let out = run(Path::new("crm"), &theirs, &their_home);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        hapx_tests::shell::canonical(&ours.text()),
        hapx_tests::shell::canonical(&theirs.text())
    );
    assert_eq!(
        config,
        std::fs::read_to_string(their_home.join(".config/crm/crmconf/vip")).unwrap()
    );
}
