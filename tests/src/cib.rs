//! Pacemaker's scheduler regression suite, read in place, and `crm_simulate` as the oracle.
//!
//! The corpus lives in `../shared/conformance/pacemaker-2.1.5` relative to the workspace root
//! (override the conformance directory with `HAPX_CONFORMANCE_DIR`). Its summaries went through
//! Pacemaker's own normalisation ([`normalise`]); hapx's output and `crm_simulate`'s go through
//! the same before comparing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The conformance directory (`HAPX_CONFORMANCE_DIR`, else `../shared/conformance`).
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os("HAPX_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    }
}

/// The Pacemaker 2.1.5 scheduler corpus.
pub fn pacemaker_dir() -> PathBuf {
    conformance_dir().join("pacemaker-2.1.5")
}

/// One regression case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub tier: u8,
    pub xml: PathBuf,
    pub summary: PathBuf,
}

/// Every case listed in `INDEX.tsv`, in its order.
pub fn cases() -> Vec<Case> {
    let dir = pacemaker_dir();
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap_or_default();
    index
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_string();
            let tier = fields.next()?.trim().parse().ok()?;
            Some(Case {
                xml: dir.join("xml").join(format!("{name}.xml")),
                summary: dir.join("summary").join(format!("{name}.summary")),
                name,
                tier,
            })
        })
        .collect()
}

/// Pacemaker's test-runner normalisation of `crm_simulate` output (old role names, `ocf::`).
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut l = line.replace("ocf::", "ocf:");
        l = l.replacen("Masters:", "Promoted:", 1);
        l = l.replacen("Slaves:", "Unpromoted:", 1);
        l = replace_master(&l);
        l = l.replacen(" Slave ", " Unpromoted ", 1);
        out.push_str(&l);
    }
    out
}

/// `s/ Master( |\[|$)/ Promoted\1/` (first occurrence).
fn replace_master(line: &str) -> String {
    let (body, newline) = match line.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (line, ""),
    };
    let mut from = 0;
    while let Some(pos) = body[from..].find(" Master") {
        let at = from + pos;
        let after = &body[at + " Master".len()..];
        if after.is_empty() || after.starts_with(' ') || after.starts_with('[') {
            return format!("{} Promoted{}{}", &body[..at], after, newline);
        }
        from = at + 1;
    }
    line.to_string()
}

/// The part compared for the "decisions" rate: the Transition Summary section and the Revised
/// Cluster Status section.
pub fn decisions(text: &str) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in text.lines() {
        if line.starts_with("Transition Summary:") || line.starts_with("Revised Cluster Status:") {
            keep = true;
        } else if line.starts_with("Executing Cluster Transition:")
            || line.starts_with("Using the original execution date")
        {
            keep = false;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A fixed "now" for CIBs without `execution-date`, so runs are reproducible.
pub const FIXED_NOW: i64 = 1_700_000_000;

/// hapx's `crm_simulate -S` output for a CIB text.
pub fn hapx_simulate(text: &str, now: i64) -> Result<String, String> {
    let options = hapx_cib::simulate::Options { now, execute: true };
    hapx_cib::simulate::simulate(text, options)
        .map(|o| o.text)
        .map_err(|e| e.to_string())
}

/// `crm_simulate -x FILE -S` output (stdout), or None when it could not run.
pub fn crm_simulate(path: &Path) -> Option<String> {
    let out = Command::new("crm_simulate")
        .arg("-x")
        .arg(path)
        .arg("-S")
        .env_remove("CIB_file")
        .env_remove("CIB_shadow")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// Rates per tier: (cases, decisions matching, whole output matching, failing names).
#[derive(Debug, Default, Clone)]
pub struct TierResult {
    pub cases: usize,
    pub decisions: usize,
    pub whole: usize,
    pub failures: Vec<String>,
}

impl TierResult {
    pub fn decisions_rate(&self) -> f64 {
        ratio(self.decisions, self.cases)
    }

    pub fn whole_rate(&self) -> f64 {
        ratio(self.whole, self.cases)
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

/// Floors kept in `tests/conformance-floor.toml`: `name = rate` lines.
pub fn floors() -> Vec<(String, f64)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance-floor.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: bad line '{l}'", path.display()));
            let v: f64 = v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{}: bad number in '{l}'", path.display()));
            (k.trim().to_string(), v)
        })
        .collect()
}

/// The floor named `name`; a missing floor is a failure (floors are never dropped).
pub fn floor(name: &str) -> f64 {
    floors()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("tests/conformance-floor.toml has no '{name}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_pacemakers_runner() {
        assert_eq!(normalise("x (ocf::a:b)\n"), "x (ocf:a:b)\n");
        assert_eq!(normalise("  * Masters: [ a ]\n"), "  * Promoted: [ a ]\n");
        assert_eq!(normalise("rsc Master node1\n"), "rsc Promoted node1\n");
        assert_eq!(normalise("rsc Master\n"), "rsc Promoted\n");
        assert_eq!(normalise("rsc Masterful\n"), "rsc Masterful\n");
    }

    #[test]
    fn extracts_decisions() {
        let text = "Current cluster status:\nA\n\nTransition Summary:\n  * x\n\n\
                    Executing Cluster Transition:\n  * y\n\nRevised Cluster Status:\nB\n";
        assert_eq!(
            decisions(text),
            "Transition Summary:\n  * x\n\nRevised Cluster Status:\nB\n"
        );
    }
}
