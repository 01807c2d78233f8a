//! Prints what `crm_simulate -x FILE -S` prints, for each FILE given (development aid; the
//! user-facing command is `hapx simulate`).

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let options = hapx_cib::simulate::Options { now, execute: true };
        match hapx_cib::simulate::simulate(&text, options) {
            Ok(outcome) => {
                print!("{}", outcome.text);
                // HAPX_DUMP_ACTIONS=1 also lists every action and ordering (debugging aid).
                if std::env::var_os("HAPX_DUMP_ACTIONS").is_some() {
                    let t = &outcome.transition;
                    for a in &t.actions {
                        eprintln!("{} {} {:?}", a.id, hapx_cib::execute::action_key(t, a), a);
                    }
                    for o in &t.orderings {
                        eprintln!("{} -> {} flags {:#x}", o.first, o.then, o.flags);
                    }
                }
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
