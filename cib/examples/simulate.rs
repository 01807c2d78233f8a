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
            Ok(outcome) => print!("{}", outcome.text),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
