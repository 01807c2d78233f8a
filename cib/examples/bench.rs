//! Benchmark: hapx's scheduler against `crm_simulate`, side by side in one run.
//!
//! ```sh
//! cargo run --release -p hapx-cib --example bench -- [--corpus DIR] [--max-crm N] [--sizes 100,200,...]
//! ```
//!
//! 1. The whole tier-1 corpus (`DIR/INDEX.tsv`): hapx (in process, `-S` output) against
//!    `crm_simulate -x FILE -S`, one process per file as a user would run it.
//! 2. Generated clusters: 16 nodes, N primitives in colocation chains of 5 with mandatory
//!    orders along each chain, half the chains already running, some location preferences.
//!    hapx against `crm_simulate -R` (scheduling only) up to `--max-crm` primitives (it takes
//!    minutes beyond 1,000), comparing the Transition Summaries too.
//! 3. 100 nodes x 10,000 primitives, hapx alone.
//!
//! Timings are wall-clock medians of a few runs for hapx and single runs for crm_simulate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hapx_cib::simulate::{self, Options};

const NOW: i64 = 1_700_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let corpus = value("--corpus").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/pacemaker-2.1.5")
    });
    let max_crm: usize = value("--max-crm")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sizes: Vec<usize> = value("--sizes")
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 200, 400, 1000, 2000, 4000]);
    let have_crm = Command::new("crm_simulate")
        .arg("--version")
        .output()
        .is_ok();
    if !have_crm {
        println!("crm_simulate not found: printing hapx figures only");
    }
    corpus_bench(&corpus, have_crm);
    println!();
    println!("Generated clusters: 16 nodes, chains of 5 (colocated, ordered), half running");
    println!(
        "{:>10} {:>12} {:>12} {:>14} {:>8} {:>10}",
        "primitives", "hapx -R", "hapx -S", "crm_sim -R", "ratio", "summaries"
    );
    for &n in &sizes {
        let xml = generate(16, n);
        let hapx_r = median(3, || run_hapx(&xml, false));
        let hapx_s = median(3, || run_hapx(&xml, true));
        let (crm, same) = if have_crm && n <= max_crm {
            let path =
                std::env::temp_dir().join(format!("hapx-bench-{}-{n}.xml", std::process::id()));
            std::fs::write(&path, &xml).expect("write the generated CIB");
            let start = Instant::now();
            let reference = crm_simulate(&path, "-R");
            let elapsed = start.elapsed();
            let _ = std::fs::remove_file(&path);
            let ours = summary(&hapx_output(&xml, false));
            let same = reference.as_deref().map(summary) == Some(ours);
            (Some(elapsed), Some(same))
        } else {
            (None, None)
        };
        println!(
            "{:>10} {:>12} {:>12} {:>14} {:>8} {:>10}",
            n,
            secs(hapx_r),
            secs(hapx_s),
            crm.map(secs).unwrap_or_else(|| "-".into()),
            crm.map(|c| format!("{:.0}x", c.as_secs_f64() / hapx_r.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            match same {
                Some(true) => "same",
                Some(false) => "DIFFER",
                None => "-",
            }
        );
    }
    println!();
    let xml = generate(100, 10_000);
    let t = median(1, || run_hapx(&xml, false));
    println!("100 nodes x 10000 primitives: hapx -R {}", secs(t));
}

fn corpus_bench(dir: &Path, have_crm: bool) {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap_or_default();
    let files: Vec<(String, PathBuf)> = index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?;
            (f.next()? == "1").then(|| {
                (
                    name.to_string(),
                    dir.join("xml").join(format!("{name}.xml")),
                )
            })
        })
        .collect();
    if files.is_empty() {
        println!("no corpus at {}", dir.display());
        return;
    }
    let texts: Vec<String> = files
        .iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let ours = median(3, || {
        let start = Instant::now();
        for t in &texts {
            let _ = simulate::simulate(
                t,
                Options {
                    now: NOW,
                    execute: true,
                },
            );
        }
        start.elapsed()
    });
    let theirs = have_crm.then(|| {
        let start = Instant::now();
        for (_, p) in &files {
            let _ = crm_simulate(p, "-S");
        }
        start.elapsed()
    });
    println!("Tier-1 corpus ({} CIBs, -S):", files.len());
    println!("  hapx (in process)          {}", secs(ours));
    if let Some(t) = theirs {
        println!(
            "  crm_simulate (per process) {}   ratio {:.0}x",
            secs(t),
            t.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

fn hapx_output(xml: &str, execute: bool) -> String {
    simulate::simulate(xml, Options { now: NOW, execute })
        .map(|o| o.text)
        .unwrap_or_else(|e| format!("error: {e}"))
}

fn run_hapx(xml: &str, execute: bool) -> Duration {
    let start = Instant::now();
    let out = hapx_output(xml, execute);
    let elapsed = start.elapsed();
    assert!(!out.starts_with("error"), "{out}");
    elapsed
}

fn crm_simulate(path: &Path, mode: &str) -> Option<String> {
    let out = Command::new("crm_simulate")
        .arg("-x")
        .arg(path)
        .arg(mode)
        .env_remove("CIB_file")
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()
}

/// The Transition Summary lines of an output.
fn summary(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with("Transition Summary:"))
        .take_while(|l| !l.starts_with("Executing") && !l.starts_with("Revised"))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// A cluster of `nodes` nodes and `n` primitives in chains of 5 (each member colocated with
/// and ordered after the previous one); even chains run (all members on one node), every third
/// chain prefers a node.
fn generate(nodes: usize, n: usize) -> String {
    let mut x = String::new();
    x.push_str("<cib crm_feature_set=\"3.16.1\" validate-with=\"pacemaker-3.0\" epoch=\"1\" num_updates=\"1\" admin_epoch=\"0\" have-quorum=\"1\" dc-uuid=\"1\" execution-date=\"1700000000\">\n<configuration>\n<crm_config><cluster_property_set id=\"opts\"><nvpair id=\"opts-st\" name=\"stonith-enabled\" value=\"false\"/></cluster_property_set></crm_config>\n<nodes>\n");
    for i in 1..=nodes {
        let _ = writeln!(x, "<node id=\"{i}\" uname=\"node{i}\"/>");
    }
    x.push_str("</nodes>\n<resources>\n");
    for r in 0..n {
        let _ = writeln!(
            x,
            "<primitive id=\"r{r}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"><operations><op id=\"r{r}-mon\" name=\"monitor\" interval=\"10s\"/></operations></primitive>"
        );
    }
    x.push_str("</resources>\n<constraints>\n");
    for r in 0..n {
        let chain = r / 5;
        if r % 5 != 0 {
            let _ = writeln!(
                x,
                "<rsc_colocation id=\"c{r}\" rsc=\"r{r}\" with-rsc=\"r{}\" score=\"INFINITY\"/>\n<rsc_order id=\"o{r}\" first=\"r{}\" then=\"r{r}\" kind=\"Mandatory\"/>",
                r - 1,
                r - 1
            );
        } else if chain % 3 == 0 {
            let _ = writeln!(
                x,
                "<rsc_location id=\"l{r}\" rsc=\"r{r}\" node=\"node{}\" score=\"100\"/>",
                (chain * 7) % nodes + 1
            );
        }
    }
    x.push_str("</constraints>\n</configuration>\n<status>\n");
    for node in 1..=nodes {
        let _ = writeln!(
            x,
            "<node_state id=\"{node}\" uname=\"node{node}\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"><lrm id=\"{node}\"><lrm_resources>"
        );
        for r in 0..n {
            let chain = r / 5;
            if chain % 2 == 0 && chain % nodes + 1 == node {
                let _ = writeln!(
                    x,
                    "<lrm_resource id=\"r{r}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"><lrm_rsc_op id=\"r{r}_last_0\" operation_key=\"r{r}_start_0\" operation=\"start\" transition-key=\"1:1:0:x\" transition-magic=\"0:0;1:1:0:x\" call-id=\"1\" rc-code=\"0\" op-status=\"0\" interval=\"0\" op-digest=\"f2317cad3d54cec5d7d7aa7d0bf35cf8\"/><lrm_rsc_op id=\"r{r}_monitor_10000\" operation_key=\"r{r}_monitor_10000\" operation=\"monitor\" transition-key=\"2:1:0:x\" transition-magic=\"0:0;2:1:0:x\" call-id=\"2\" rc-code=\"0\" op-status=\"0\" interval=\"10000\" op-digest=\"4811cef7f7f94e3a35a70be7916cb2fd\"/></lrm_resource>"
                );
            }
        }
        x.push_str("</lrm_resources></lrm></node_state>\n");
    }
    x.push_str("</status>\n</cib>\n");
    x
}
