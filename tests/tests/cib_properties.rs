//! Invariants of hapx's scheduler, over generated tier-1 clusters and Pacemaker's suite:
//! a primitive is never started on two nodes, a -INFINITY colocation is never violated, and
//! nothing starts before its mandatory predecessor.

use hapx_cib::execute;
use hapx_cib::model::{Cib, OrderKind};
use hapx_cib::schedule::{Task, Transition};
use hapx_cib::score::INFINITY;
use hapx_cib::simulate;
use hapx_tests::cib;
use hapx_tests::cib_gen::{Rng, Spec};
use proptest::prelude::*;

fn schedule(xml: &str) -> Option<(Cib, Transition)> {
    let model = Cib::parse(xml).ok()?;
    let t = simulate::schedule_cib(&model, cib::FIXED_NOW).ok()?;
    Some((model, t))
}

fn rsc(t: &Transition, id: &str) -> Option<usize> {
    t.status.resources.iter().position(|r| r.id == id)
}

/// Whether `primary` depends (through colocations) on `dependent`.
fn in_colocation_loop(model: &Cib, dependent: &str, primary: &str) -> bool {
    let mut seen = vec![primary.to_string()];
    let mut todo = vec![primary.to_string()];
    while let Some(r) = todo.pop() {
        for c in model.colocations.iter().filter(|c| c.rsc == r) {
            if c.with_rsc == dependent {
                return true;
            }
            if !seen.contains(&c.with_rsc) {
                seen.push(c.with_rsc.clone());
                todo.push(c.with_rsc.clone());
            }
        }
    }
    false
}

/// Checks every invariant; returns a description of the first violation.
fn check(model: &Cib, t: &Transition) -> Result<(), String> {
    let order = execute::execution_order(t);
    let position = |id: usize| order.iter().position(|&a| a == id);
    // Never started on two nodes.
    for (r, rs) in t.status.resources.iter().enumerate() {
        let starts: Vec<_> = order
            .iter()
            .map(|&a| &t.actions[a])
            .filter(|a| a.rsc == Some(r) && a.task == Task::Start && !a.pseudo)
            .collect();
        if starts.len() > 1 {
            return Err(format!("{} is started {} times", rs.id, starts.len()));
        }
    }
    // -INFINITY colocations hold (except inside a colocation loop, where Pacemaker breaks
    // the loop and may place both together; crm_simulate does the same).
    for c in &model.colocations {
        let (Some(d), Some(p)) = (rsc(t, &c.rsc), rsc(t, &c.with_rsc)) else {
            continue;
        };
        if c.score <= -INFINITY
            && !in_colocation_loop(model, &c.rsc, &c.with_rsc)
            && t.assigned[d].is_some()
            && t.assigned[d] == t.assigned[p]
            && t.status.resources[d].managed
            && t.status.resources[p].managed
        {
            return Err(format!(
                "{} is placed with {} despite {}",
                c.rsc, c.with_rsc, c.id
            ));
        }
    }
    // Mandatory predecessors start first.
    for o in &model.orders {
        if o.kind != OrderKind::Mandatory || o.first_action != "start" || o.then_action != "start" {
            continue;
        }
        let (Some(f), Some(th)) = (rsc(t, &o.first), rsc(t, &o.then)) else {
            continue;
        };
        let start_of = |r: usize| {
            order
                .iter()
                .copied()
                .find(|&a| t.actions[a].rsc == Some(r) && t.actions[a].task == Task::Start)
        };
        if let Some(then_start) = start_of(th) {
            let first_running_after = t.assigned[f].is_some()
                && t.status.resources[f].role >= hapx_cib::status::Role::Started;
            match start_of(f) {
                Some(first_start) if position(first_start) > position(then_start) => {
                    return Err(format!("{} starts before {} ({})", o.then, o.first, o.id));
                }
                None if !first_running_after => {
                    return Err(format!(
                        "{} starts although {} does not run ({})",
                        o.then, o.first, o.id
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn generated_clusters_keep_the_invariants(seed in any::<u64>()) {
        let spec = Spec::generate(&mut Rng::new(seed));
        let xml = spec.to_xml();
        let (model, t) = schedule(&xml).expect("generated CIBs schedule");
        if let Err(e) = check(&model, &t) {
            prop_assert!(false, "{e}\n{xml}");
        }
    }
}

#[test]
fn corpus_transitions_keep_the_invariants() {
    let dir = cib::pacemaker_dir();
    if !hapx_tests::require::path("corpus_transitions_keep_the_invariants", &dir, "the corpus") {
        return;
    }
    let mut checked = 0;
    for case in cib::cases().iter().filter(|c| c.tier == 1) {
        let text = std::fs::read_to_string(&case.xml).expect("corpus CIB is readable");
        let Some((model, t)) = schedule(&text) else {
            continue;
        };
        checked += 1;
        if let Err(e) = check(&model, &t) {
            panic!("{}: {e}", case.name);
        }
    }
    assert!(checked > 100, "only {checked} tier-1 cases scheduled");
}
