//! `hapx simulate`: what Pacemaker's scheduler would do with a CIB, printed the way
//! `crm_simulate` prints it, plus `--explain RSC`.
//!
//! The CIB comes from a file (`-x`) or the live cluster (`-L`, through `cibadmin -Q`). What-if
//! changes (`-u/-d/-f` nodes, `-i` injected results) are applied first; `-R` prints the
//! response, `-S` also executes it and prints the revised status, `-F` makes actions fail
//! during that execution, `-G` saves the transition graph.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use hapx_cib::inject::OpSpec;
use hapx_cib::model::Cib;
use hapx_cib::simulate::{self, Options, WhatIf};

/// `hapx simulate` arguments (crm_simulate's meanings).
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Read the CIB from FILE.
    #[arg(
        short = 'x',
        long = "xml-file",
        value_name = "FILE",
        conflicts_with = "live_check"
    )]
    pub xml_file: Option<PathBuf>,
    /// Read the live cluster's CIB (through `cibadmin -Q`).
    #[arg(short = 'L', long = "live-check")]
    pub live_check: bool,
    /// Print the response: what the scheduler would do (the Transition Summary).
    #[arg(short = 'R', long = "run")]
    pub run: bool,
    /// Also simulate executing the transition and print the revised cluster status.
    #[arg(short = 'S', long = "simulate")]
    pub simulate: bool,
    /// Show the allocation scores.
    #[arg(short = 's', long = "show-scores")]
    pub show_scores: bool,
    /// Bring NODE online before scheduling (repeatable).
    #[arg(short = 'u', long = "node-up", value_name = "NODE")]
    pub node_up: Vec<String>,
    /// Take NODE offline cleanly before scheduling (repeatable).
    #[arg(short = 'd', long = "node-down", value_name = "NODE")]
    pub node_down: Vec<String>,
    /// Mark NODE as failed (lost unexpectedly) before scheduling (repeatable).
    #[arg(short = 'f', long = "node-fail", value_name = "NODE")]
    pub node_fail: Vec<String>,
    /// Inject an operation result before scheduling: RSC_TASK_INTERVAL@NODE=RC
    /// (e.g. vip_monitor_10000@node1=7). Repeatable.
    #[arg(short = 'i', long = "op-inject", value_name = "SPEC")]
    pub op_inject: Vec<String>,
    /// Make an action fail while executing the transition: RSC_TASK_INTERVAL@NODE=RC.
    /// Repeatable; implies --simulate.
    #[arg(short = 'F', long = "op-fail", value_name = "SPEC")]
    pub op_fail: Vec<String>,
    /// Save the transition graph (Pacemaker's graph XML) to FILE.
    #[arg(short = 'G', long = "save-graph", value_name = "FILE")]
    pub save_graph: Option<PathBuf>,
    /// Explain, in plain words, why RSC goes where it goes: every contribution to its scores
    /// and the constraint ids behind them.
    #[arg(long, value_name = "RSC")]
    pub explain: Option<String>,
    /// Seconds since the epoch to use as "now" [default: the CIB's execution-date, else the
    /// current time].
    #[arg(long, value_name = "SECONDS")]
    pub now: Option<i64>,
}

/// Runs `hapx simulate`.
pub fn run(args: &SimulateArgs) -> Result<ExitCode> {
    let (text, source) = read_cib(args)?;
    let now = match args.now {
        Some(n) => n,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    let parse_specs = |specs: &[String], flag: &str| -> Result<Vec<OpSpec>> {
        specs
            .iter()
            .map(|s| OpSpec::parse(s).with_context(|| format!("{flag} {s}")))
            .collect()
    };
    let what_if = WhatIf {
        node_up: args.node_up.clone(),
        node_down: args.node_down.clone(),
        node_fail: args.node_fail.clone(),
        op_inject: parse_specs(&args.op_inject, "--op-inject")?,
        op_fail: parse_specs(&args.op_fail, "--op-fail")?,
        show_scores: args.show_scores,
    };
    let execute = args.simulate || !args.op_fail.is_empty();
    let options = Options { now, execute };
    let outcome = simulate::simulate_what_if(&text, options, &what_if)
        .with_context(|| format!("simulating {source}"))?;
    let mut out = outcome.text.clone();
    if !args.run && !execute && !args.show_scores {
        // Without -R or -S, crm_simulate prints only the current status.
        if let Some(end) = out.find("\nTransition Summary:") {
            out.truncate(end + 1);
            out.pop();
        }
    }
    print!("{out}");
    if let Some(path) = &args.save_graph {
        std::fs::write(path, hapx_cib::execute::graph_xml(&outcome.transition))
            .with_context(|| format!("writing the transition graph to {}", path.display()))?;
    }
    if let Some(rsc) = &args.explain {
        match hapx_cib::render::explain(&outcome.transition, rsc) {
            Some(text) => print!("\n{text}"),
            None => bail!("--explain {rsc}: {source} has no primitive named '{rsc}'"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_cib(args: &SimulateArgs) -> Result<(String, String)> {
    if let Some(path) = &args.xml_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // Check it models before anything else, so that errors name the file and line.
        Cib::parse(&text).with_context(|| format!("{}", path.display()))?;
        return Ok((text, path.display().to_string()));
    }
    if args.live_check {
        let out = Command::new("cibadmin")
            .arg("-Q")
            .output()
            .context("running `cibadmin -Q` for the live CIB")?;
        if !out.status.success() {
            bail!(
                "`cibadmin -Q` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8(out.stdout).context("the live CIB is not UTF-8")?;
        return Ok((text, "the live CIB".to_string()));
    }
    bail!("give a CIB with -x FILE or -L (the live cluster)")
}
