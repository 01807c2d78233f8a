//! `resource failcount RSC show|delete|set NODE ...` on a file CIB.
//!
//! The local driver keeps fail counts where Pacemaker's attribute manager does: transient node
//! attributes `fail-count-RSC#TASK_INTERVAL` (and `last-failure-...`) in the node's
//! `node_state`. These commands read and change them under the CIB lock, as a status update
//! (`num_updates` + 1), with crmsh's semantics:
//! - `show NODE`: `crm_failcount --query`'s line, the fail counts of all operations summed;
//! - `delete NODE`: `crm_failcount --delete`, every fail count and last-failure time removed;
//! - `set NODE VALUE [OP [INTERVAL]]`: the one recorded operation's count set (with several,
//!   the operation and interval in seconds choose; `0` resets them all, as crmsh's `-P` does).

use std::path::Path;

use anyhow::{Context, Result, bail};
use hapx_cib::score;
use hapx_cib::xml::Document;

use crate::driver::history::{clear_failcounts, set_transient};
use crate::driver::store::{Bump, Store};

/// The node's id (the `node_state` key) for `uname`, from the configuration.
fn node_id(doc: &Document, uname: &str) -> Result<String> {
    doc.root
        .path(&["configuration", "nodes"])
        .into_iter()
        .flat_map(|n| n.children_named("node"))
        .find(|n| n.attr("uname") == Some(uname))
        .and_then(|n| n.id().map(str::to_string))
        .with_context(|| format!("Node {uname} not in this cluster"))
}

fn check_resource(doc: &Document, rsc: &str) -> Result<()> {
    let known = doc
        .root
        .path(&["configuration", "resources"])
        .is_some_and(|r| {
            r.descendants()
                .any(|e| e.name == "primitive" && e.id() == Some(rsc))
        });
    if !known {
        bail!("Resource {rsc} not exists in this cluster");
    }
    Ok(())
}

/// The `(TASK_INTERVAL, value)` fail counts of `rsc` on the node.
fn failcounts(doc: &Document, node_id: &str, uname: &str, rsc: &str) -> Vec<(String, String)> {
    let prefix = format!("fail-count-{rsc}");
    doc.root
        .child("status")
        .into_iter()
        .flat_map(|s| s.children_named("node_state"))
        .filter(|s| s.id() == Some(node_id) || s.attr("uname") == Some(uname))
        .filter_map(|s| s.child("transient_attributes"))
        .flat_map(|t| t.children_named("instance_attributes"))
        .flat_map(|set| set.children_named("nvpair"))
        .filter_map(|nv| {
            let rest = nv.attr("name")?.strip_prefix(&prefix)?;
            let op = match rest.strip_prefix('#') {
                Some(op) => op.to_string(),
                None if rest.is_empty() => String::new(),
                None => return None,
            };
            Some((op, nv.attr("value").unwrap_or_default().to_string()))
        })
        .collect()
}

/// `failcount RSC show NODE`: `scope=status  name=fail-count-RSC value=N`.
pub fn show(cib: &Path, rsc: &str, node: &str) -> Result<String> {
    let doc = Store::new(cib).load()?;
    check_resource(&doc, rsc)?;
    let id = node_id(&doc, node)?;
    let total = failcounts(&doc, &id, node, rsc)
        .iter()
        .fold(0, |sum, (_, v)| score::add(sum, score::parse_plain(v)));
    let value = if total >= score::INFINITY {
        "INFINITY".to_string()
    } else {
        total.to_string()
    };
    Ok(format!(
        "scope=status  name=fail-count-{rsc} value={value}\n"
    ))
}

/// `failcount RSC delete NODE`.
pub fn delete(cib: &Path, rsc: &str, node: &str) -> Result<()> {
    let store = Store::new(cib);
    let doc = store.load()?;
    check_resource(&doc, rsc)?;
    let id = node_id(&doc, node)?;
    store.update(Bump::Status, |doc| {
        clear_failcounts(doc, &id, node, rsc).then_some(())
    })?;
    Ok(())
}

/// Sets the attribute where it is recorded (a node's transient attributes may come in several
/// sets), or adds it to the node's first set.
fn set_count(doc: &mut Document, node_id: &str, uname: &str, name: &str, value: &str) {
    let existing = doc
        .root
        .child_mut("status")
        .into_iter()
        .flat_map(|s| s.elements_mut())
        .filter(|s| s.name == "node_state")
        .filter(|s| s.id() == Some(node_id) || s.attr("uname") == Some(uname))
        .flat_map(|s| s.elements_mut())
        .filter(|t| t.name == "transient_attributes")
        .flat_map(|t| t.elements_mut())
        .flat_map(|set| set.elements_mut())
        .filter(|nv| nv.name == "nvpair" && nv.attr("name") == Some(name))
        .map(|nv| nv.set_attr("value", value))
        .count();
    if existing == 0 {
        set_transient(doc, node_id, uname, name, Some(value));
    }
}

/// `failcount RSC set NODE VALUE [OP [INTERVAL_SECONDS]]`.
pub fn set(
    cib: &Path,
    rsc: &str,
    node: &str,
    value: &str,
    op: Option<&str>,
    interval_s: Option<&str>,
) -> Result<()> {
    let parsed: i64 = value
        .parse()
        .ok()
        .filter(|v| *v >= 0)
        .with_context(|| format!("failcount: '{value}' is not a non-negative number"))?;
    let store = Store::new(cib);
    let doc = store.load()?;
    check_resource(&doc, rsc)?;
    let id = node_id(&doc, node)?;
    let existing = failcounts(&doc, &id, node, rsc);
    let targets = choose(&existing, parsed, op, interval_s)?;
    if targets.is_empty() {
        return Ok(());
    }
    store.update(Bump::Status, |doc| {
        for t in &targets {
            let name = match t.as_str() {
                "" => format!("fail-count-{rsc}"),
                op => format!("fail-count-{rsc}#{op}"),
            };
            set_count(doc, &id, node, &name, value);
        }
        Some(())
    })?;
    Ok(())
}

/// Which `TASK_INTERVAL` entries a `set` changes (crmsh's `do_failcount`).
fn choose(
    existing: &[(String, String)],
    value: i64,
    op: Option<&str>,
    interval_s: Option<&str>,
) -> Result<Vec<String>> {
    let ops: Vec<&str> = existing
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !k.is_empty())
        .collect();
    if ops.is_empty() {
        // Only a legacy `fail-count-RSC` (no operation): that one is set.
        if existing.iter().any(|(k, _)| k.is_empty()) && op.is_none() {
            return Ok(vec![String::new()]);
        }
        if value == 0 {
            return Ok(Vec::new());
        }
        bail!("failcount: no failures recorded for this resource on this node to set");
    }
    let task_of = |k: &str| {
        k.rsplit_once('_')
            .map(|(t, _)| t.to_string())
            .unwrap_or_default()
    };
    if let Some(op) = op
        && !ops.iter().any(|k| task_of(k) == op)
    {
        let tasks: Vec<String> = ops.iter().map(|k| task_of(k)).collect();
        bail!(
            "Usage: failcount <rsc> set <node> <value> [operation] [interval]\n\
             Should specify operation between \"{}\"",
            tasks.join(" ")
        );
    }
    if let (Some(op), Some(secs)) = (op, interval_s) {
        let key = format!("{op}_{secs}000");
        if !ops.contains(&key.as_str()) {
            bail!("failcount: no failure of {op} with interval {secs}s is recorded");
        }
        return Ok(vec![key]);
    }
    if ops.len() == 1 {
        return Ok(vec![ops[0].to_string()]);
    }
    let matching: Vec<String> = ops
        .iter()
        .filter(|k| op.is_none_or(|o| task_of(k) == o))
        .map(|k| k.to_string())
        .collect();
    if value == 0 || matching.len() == 1 {
        return Ok(matching);
    }
    let pairs: Vec<String> = ops.iter().map(|k| format!("'{k}'")).collect();
    bail!(
        "Should specify (operation, interval) between [{}]",
        pairs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: &[&str]) -> Vec<(String, String)> {
        list.iter().map(|k| (k.to_string(), "1".into())).collect()
    }

    #[test]
    fn one_recorded_operation_is_the_one_set() {
        let got = choose(&ops(&["monitor_10000"]), 3, None, None).unwrap();
        assert_eq!(got, ["monitor_10000"]);
    }

    #[test]
    fn several_need_a_choice_unless_resetting() {
        let both = ops(&["monitor_10000", "start_0"]);
        assert!(choose(&both, 2, None, None).is_err());
        assert_eq!(choose(&both, 0, None, None).unwrap().len(), 2);
        assert_eq!(
            choose(&both, 2, Some("monitor"), Some("10")).unwrap(),
            ["monitor_10000"]
        );
        assert!(choose(&both, 2, Some("stop"), None).is_err());
    }

    #[test]
    fn a_legacy_count_without_operation_is_set() {
        let legacy = vec![(String::new(), "2".to_string())];
        assert_eq!(choose(&legacy, 5, None, None).unwrap(), [""]);
    }

    #[test]
    fn nothing_recorded_sets_nothing_or_refuses() {
        assert!(choose(&[], 0, None, None).unwrap().is_empty());
        assert!(choose(&[], 1, None, None).is_err());
    }
}
