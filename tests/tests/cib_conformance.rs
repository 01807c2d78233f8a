//! hapx's scheduler against Pacemaker 2.1.5's own regression suite.
//!
//! For every case, hapx prints what `crm_simulate -x FILE -S` printed when the suite was made.
//! Per tier, the runner counts (a) cases whose decisions match (the "Transition Summary" and
//! "Revised Cluster Status" sections) and (b) cases whose whole output matches, lists the
//! failures, and fails when a rate drops below its floor in `tests/conformance-floor.toml`.
//! Floors only go up as the engine improves.

use hapx_tests::{cib, require};

#[test]
fn pacemaker_scheduler_suite() {
    let dir = cib::pacemaker_dir();
    if !require::path(
        "pacemaker_scheduler_suite",
        &dir,
        "the Pacemaker conformance corpus",
    ) {
        return;
    }
    let mut tiers: Vec<cib::TierResult> = vec![cib::TierResult::default(); 4];
    for case in cib::cases() {
        let text = std::fs::read_to_string(&case.xml).expect("corpus CIB is readable");
        let expected = std::fs::read_to_string(&case.summary).expect("corpus summary is readable");
        let got = match cib::hapx_simulate(&text, cib::FIXED_NOW) {
            Ok(out) => cib::normalise(&out),
            Err(e) => format!("error: {e}\n"),
        };
        let t = &mut tiers[case.tier as usize];
        t.cases += 1;
        let decisions = cib::decisions(&got) == cib::decisions(&expected)
            && cib::decisions(&expected).contains("Revised Cluster Status");
        if decisions {
            t.decisions += 1;
        } else {
            t.failures.push(case.name.clone());
        }
        if got == expected {
            t.whole += 1;
        }
    }
    let mut below = Vec::new();
    for (tier, t) in tiers.iter().enumerate().skip(1) {
        println!(
            "tier {tier}: {} cases; decisions match {} ({:.1}%); whole output matches {} ({:.1}%)",
            t.cases,
            t.decisions,
            100.0 * t.decisions_rate(),
            t.whole,
            100.0 * t.whole_rate()
        );
        println!("tier {tier} decision failures: {}", t.failures.join(" "));
        for (what, rate) in [("decisions", t.decisions_rate()), ("whole", t.whole_rate())] {
            let name = format!("tier{tier}_{what}");
            let floor = cib::floor(&name);
            if rate + 1e-9 < floor {
                below.push(format!("{name}: {:.4} < floor {floor}", rate));
            }
        }
    }
    assert!(
        below.is_empty(),
        "conformance dropped below its floor: {below:?}"
    );
}
