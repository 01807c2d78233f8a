//! Agent reloads, as Pacemaker 2.1.5's controller runs and records them.
//!
//! The scheduler reloads a running resource instead of restarting it when only parameters the
//! agent can reload changed, and it can tell only from what the controller recorded with the
//! resource's last start (or probe): the list of parameters that force a restart
//! (`op-force-restart`) and the digest of their values (`op-restart-digest`). The controller
//! records them from the agent's meta-data (`controld_metadata.c`, `append_restart_list`):
//!
//! - an OCF 1.1 agent (`<version>` at least 1.1) advertising `reload-agent` reloads with that
//!   action; every parameter not marked `reloadable="1"` forces a restart;
//! - an older agent advertising `reload` reloads with `reload`, and only its `unique="1"`
//!   parameters force a restart (Pacemaker's pre-OCF-1.1 rule);
//! - any other agent cannot reload, and nothing is recorded (every change restarts).
//!
//! A reload's result is recorded as a start when the agent ran to completion, whatever its
//! exit code, and as a (one-time) monitor otherwise (`pcmk__create_history_xml`), so a failed
//! reload is a failed start, handled as any other.

use std::path::Path;
use std::time::Duration;

use hapx_agents::exec::{self, Invocation, Termination};
use hapx_cib::digest::restart_digest;
use hapx_cib::model::Primitive;
use hapx_cib::xml::{Document, Element};

use super::history::exec_status;

/// How an agent reloads its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// OCF 1.1 `reload-agent`, with `reloadable` parameters.
    Agent,
    /// Pre-OCF-1.1 `reload`, with `unique` parameters forcing a restart.
    Legacy,
}

/// What the agent's meta-data says about reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    pub style: Style,
    /// The parameters whose change forces a restart, in the order Pacemaker lists them.
    pub force_restart: Vec<String>,
}

impl Support {
    /// Reads an agent's meta-data; `None` when the agent cannot reload (or the text is not
    /// meta-data).
    pub fn from_metadata(xml: &str) -> Option<Support> {
        let doc = Document::parse(xml).ok()?;
        if doc.root.name != "resource-agent" {
            return None;
        }
        let ocf_1_1 = doc
            .root
            .child("version")
            .is_some_and(|v| at_least_1_1(v.text().trim()));
        let actions: Vec<&str> = doc
            .root
            .child("actions")
            .into_iter()
            .flat_map(|a| a.children_named("action"))
            .filter_map(|a| a.attr("name"))
            .collect();
        let style = if ocf_1_1 && actions.contains(&"reload-agent") {
            Style::Agent
        } else if !ocf_1_1 && actions.iter().any(|a| a.eq_ignore_ascii_case("reload")) {
            Style::Legacy
        } else {
            return None;
        };
        let params: Vec<&Element> = doc
            .root
            .child("parameters")
            .into_iter()
            .flat_map(|p| p.children_named("parameter"))
            .filter(|p| p.attr("name").is_some())
            .collect();
        // The controller prepends each parameter to its list, so it names them last first.
        let force_restart = params
            .iter()
            .rev()
            .filter(|p| match style {
                Style::Agent => !is_true(p.attr("reloadable")),
                Style::Legacy => is_true(p.attr("unique")),
            })
            .filter_map(|p| p.attr("name").map(str::to_string))
            .collect();
        Some(Support {
            style,
            force_restart,
        })
    }

    /// The agent action that reloads (the controller maps the scheduler's `reload-agent`).
    pub fn action(&self) -> &'static str {
        match self.style {
            Style::Agent => "reload-agent",
            Style::Legacy => "reload",
        }
    }

    /// `op-force-restart` and `op-restart-digest` for a one-time operation run with `params`.
    pub fn restart_attrs<'a>(
        &self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (String, String) {
        let list = if self.force_restart.is_empty() {
            String::new()
        } else {
            // The controller starts and ends the list with a " " word, each added after a
            // separating space, so a name is found as " NAME " (2.1.5 writes "  a b  ").
            format!("  {}  ", self.force_restart.join(" "))
        };
        let digest = restart_digest(params, 0, 0, &list);
        (list, digest)
    }
}

/// `pcmk__xe_attr_is_true`.
fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "on" | "yes" | "y" | "1"
        )
    })
}

/// `compare_version(version, "1.1") >= 0`.
fn at_least_1_1(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (1, 1)
}

/// Runs the agent's `meta-data` action as the controller does and reads its reload support.
pub fn probe_agent(agent: &Path, ocf_root: &Path, p: &Primitive) -> Option<Support> {
    let mut inv = Invocation::new(agent, "meta-data")
        .timeout(Duration::from_secs(5))
        .env("OCF_ROOT", &ocf_root.to_string_lossy());
    inv.instance = p.agent.clone();
    let out = exec::run(&inv).ok()?;
    if !matches!(out.termination, Termination::Exited(0)) {
        return None;
    }
    Support::from_metadata(&out.stdout)
}

/// Whether the controller records restart digests for `task` (`crm_op_needs_metadata`, and
/// never for a recurring operation).
pub fn records_restart_digest(task: &str, interval_ms: u64) -> bool {
    interval_ms == 0
        && matches!(
            task,
            "start"
                | "monitor"
                | "promote"
                | "demote"
                | "reload"
                | "reload-agent"
                | "migrate_to"
                | "migrate_from"
                | "notify"
        )
}

/// The operation a reload's result is recorded as: a start when the agent ran to completion,
/// else a monitor.
pub fn recorded_task(op_status: i32) -> &'static str {
    if op_status == exec_status::DONE {
        "start"
    } else {
        "monitor"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: &str, actions: &[&str], params: &str) -> String {
        let actions: String = actions
            .iter()
            .map(|a| format!("<action name=\"{a}\" timeout=\"20s\"/>"))
            .collect();
        format!(
            "<?xml version=\"1.0\"?><resource-agent name=\"X\"><version>{version}</version>\
             <parameters>{params}</parameters><actions>{actions}</actions></resource-agent>"
        )
    }

    const PARAMS: &str = "<parameter name=\"state\" unique=\"1\"/>\
                          <parameter name=\"fake\" unique=\"0\" reloadable=\"1\"/>\
                          <parameter name=\"ip\" reloadable=\"0\"/>";

    #[test]
    fn an_ocf_1_1_agent_with_reload_agent_restarts_for_its_non_reloadable_parameters() {
        let s = Support::from_metadata(&meta("1.1", &["start", "reload-agent"], PARAMS))
            .expect("it reloads");
        assert_eq!(s.style, Style::Agent);
        assert_eq!(s.action(), "reload-agent");
        assert_eq!(s.force_restart, ["ip", "state"]);
        let (list, digest) = s.restart_attrs([("state", "/s"), ("fake", "1"), ("ip", "a")]);
        assert_eq!(list, "  ip state  ");
        assert_eq!(
            digest,
            hapx_cib::digest::op_digest([("ip", "a"), ("state", "/s")], 0, 0)
        );
    }

    #[test]
    fn an_ocf_1_0_agent_with_reload_restarts_for_its_unique_parameters() {
        let s =
            Support::from_metadata(&meta("1.0", &["start", "reload"], PARAMS)).expect("reloads");
        assert_eq!((s.style, s.action()), (Style::Legacy, "reload"));
        assert_eq!(s.force_restart, ["state"]);
    }

    #[test]
    fn agents_that_cannot_reload_record_nothing() {
        // reload-agent needs OCF 1.1; an OCF 1.1 agent's plain reload is not a parameter reload.
        assert_eq!(
            Support::from_metadata(&meta("1.0", &["reload-agent"], PARAMS)),
            None
        );
        assert_eq!(
            Support::from_metadata(&meta("1.1", &["reload"], PARAMS)),
            None
        );
        assert_eq!(
            Support::from_metadata(&meta("1.0", &["start"], PARAMS)),
            None
        );
        assert_eq!(Support::from_metadata("not xml"), None);
    }

    #[test]
    fn without_restart_parameters_the_list_is_empty_but_recorded() {
        let s = Support::from_metadata(&meta(
            "1.1",
            &["reload-agent"],
            "<parameter name=\"a\" reloadable=\"true\"/>",
        ))
        .expect("reloads");
        let (list, digest) = s.restart_attrs([("a", "1")]);
        assert_eq!(list, "");
        assert_eq!(digest, hapx_cib::digest::op_digest([], 0, 0));
    }

    #[test]
    fn a_reload_is_recorded_as_a_start_when_it_ran_and_as_a_monitor_otherwise() {
        assert_eq!(recorded_task(exec_status::DONE), "start");
        assert_eq!(recorded_task(exec_status::TIMEOUT), "monitor");
        assert!(records_restart_digest("start", 0));
        assert!(records_restart_digest("monitor", 0));
        assert!(!records_restart_digest("monitor", 10_000));
        assert!(!records_restart_digest("stop", 0));
    }
}
