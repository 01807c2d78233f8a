//! Differential test: random tier-1 CIBs through hapx and through `crm_simulate`.
//!
//! At least 200 generated clusters per run (`HAPX_DIFF_CASES` raises it, `HAPX_DIFF_SEED`
//! changes the seed). The match rates of (a) the decisions (Transition Summary + Revised Cluster
//! Status) and (b) the whole output are printed and held to the `differential_*` floors in
//! `tests/conformance-floor.toml`. The smallest mismatching CIB (shrunk while it keeps
//! mismatching) is printed so it can be turned into a fix.

use std::path::PathBuf;

use hapx_tests::cib_gen::{Rng, Spec, shrink};
use hapx_tests::{cib, require};

struct Compared {
    decisions: bool,
    whole: bool,
}

fn temp_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hapx-diff-{}-{tag}.xml", std::process::id()))
}

/// Runs both on one CIB; None when crm_simulate could not run it.
fn compare(xml: &str, tag: &str) -> Option<Compared> {
    let path = temp_file(tag);
    std::fs::write(&path, xml).expect("write a temporary CIB");
    let reference = cib::crm_simulate(&path);
    let _ = std::fs::remove_file(&path);
    let reference = cib::normalise(&reference?);
    let ours = cib::normalise(&cib::hapx_simulate(xml, cib::FIXED_NOW).unwrap_or_default());
    Some(Compared {
        decisions: cib::decisions(&ours) == cib::decisions(&reference),
        whole: ours == reference,
    })
}

#[test]
fn generated_clusters_match_crm_simulate() {
    if !require::command("generated_clusters_match_crm_simulate", "crm_simulate") {
        return;
    }
    let cases: usize = std::env::var("HAPX_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        .max(200);
    let seed: u64 = std::env::var("HAPX_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_251_125);
    let mut rng = Rng::new(seed);
    let (mut ran, mut decisions, mut whole) = (0usize, 0usize, 0usize);
    let mut failing: Vec<Spec> = Vec::new();
    for i in 0..cases {
        let spec = Spec::generate(&mut rng);
        let Some(result) = compare(&spec.to_xml(), &i.to_string()) else {
            continue;
        };
        ran += 1;
        decisions += usize::from(result.decisions);
        whole += usize::from(result.whole);
        if !result.decisions {
            failing.push(spec);
        }
    }
    assert!(
        ran * 10 >= cases * 9,
        "crm_simulate ran only {ran} of {cases} cases"
    );
    let rate = |n: usize| n as f64 / ran.max(1) as f64;
    println!(
        "differential (seed {seed}): {ran} clusters; decisions match {decisions} ({:.1}%); \
         whole output matches {whole} ({:.1}%)",
        100.0 * rate(decisions),
        100.0 * rate(whole)
    );
    if let Some(smallest) = failing.iter().min_by_key(|s| s.to_xml().len()).cloned() {
        let shrunk = shrink(smallest, |s| {
            compare(&s.to_xml(), "shrink").is_some_and(|c| !c.decisions)
        });
        let xml = shrunk.to_xml();
        let path = temp_file("smallest");
        std::fs::write(&path, &xml).expect("write the smallest failing CIB");
        let reference = cib::crm_simulate(&path).unwrap_or_default();
        let ours = cib::hapx_simulate(&xml, cib::FIXED_NOW).unwrap_or_else(|e| e);
        let _ = std::fs::remove_file(&path);
        println!("smallest mismatching CIB:\n{xml}\ncrm_simulate:\n{reference}\nhapx:\n{ours}");
    }
    let floor_decisions = cib::floor("differential_decisions");
    let floor_whole = cib::floor("differential_whole");
    assert!(
        rate(decisions) + 1e-9 >= floor_decisions && rate(whole) + 1e-9 >= floor_whole,
        "differential match rates {:.3}/{:.3} fell below the floors {floor_decisions}/{floor_whole}",
        rate(decisions),
        rate(whole)
    );
}
