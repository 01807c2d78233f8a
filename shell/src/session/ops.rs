//! crmsh's operation checks for a primitive (`sanity_check_ops` and
//! `_check_ops_attributes`), run with the other semantic checks at commit and `verify`:
//!
//! - an operation the agent does not advertise (`p: action 'bogus' not found in Resource
//!   Agent meta-data`);
//! - monitor intervals 0 or repeated, an interval on start, stop, promote or demote;
//! - a timeout (the op's own, else `op_defaults timeout`) shorter than the agent advises
//!   (`p: specified timeout 5s for start is smaller than the advised 20s`), start and stop
//!   counted even when not configured;
//! - `role` and `on-fail` values Pacemaker's schema does not list.
//!
//! All are warnings. The order of the messages is crmsh's: monitors first, then the other
//! operations as configured, then the start and stop it adds.

use hapx_cib::xml::Element;

use crate::ra::{self, AgentAction, Metadata};

/// Operations that run once, with no interval (crmsh's `no_interval_ops`).
const NO_INTERVAL: &[&str] = &["start", "stop", "promote", "demote"];
/// The values Pacemaker's schema (pacemaker-3.9) allows for an op's attributes.
const OP_ATTR_VALUES: &[(&str, &[&str])] = &[
    (
        "role",
        &[
            "Stopped",
            "Started",
            "Promoted",
            "Unpromoted",
            "Slave",
            "Master",
        ],
    ),
    (
        "on-fail",
        &[
            "ignore",
            "block",
            "demote",
            "stop",
            "restart",
            "standby",
            "fence",
            "restart-container",
        ],
    ),
];

type Attrs = Vec<(String, String)>;

/// The warnings for primitive `prim`; `default_timeout` is `op_defaults timeout`. An agent
/// without meta-data is reported elsewhere (when the primitive is defined).
pub fn check(prim: &Element, default_timeout: Option<&str>) -> Vec<String> {
    let (Some(class), Some(kind)) = (prim.attr("class"), prim.attr("type")) else {
        return Vec::new();
    };
    let Ok(meta) = ra::metadata(class, prim.attr("provider"), kind) else {
        return Vec::new();
    };
    let id = prim.id().unwrap_or_default();
    let ops: Vec<&Element> = prim
        .children_named("operations")
        .flat_map(|o| o.children_named("op"))
        .filter(|op| op.attr("name").is_some_and(|n| !n.is_empty()))
        .collect();
    let mut out = sanity_check_ops(id, class, &meta, &ops, default_timeout);
    out.extend(ops.iter().flat_map(|op| op_attribute_values(id, op)));
    out
}

/// crmsh's `sanity_check_ops`, over its `op_dict`: the monitors (a list), each other
/// operation (the last definition wins), then start and stop when missing.
fn sanity_check_ops(
    id: &str,
    class: &str,
    meta: &Metadata,
    ops: &[&Element],
    default_timeout: Option<&str>,
) -> Vec<String> {
    let mut monitors: Vec<Attrs> = Vec::new();
    let mut others: Vec<(String, Attrs)> = Vec::new();
    for op in ops {
        let name = op.attr("name").unwrap_or_default();
        let attrs: Attrs = op
            .attributes
            .iter()
            .filter(|(k, _)| k != "id" && k != "name")
            .cloned()
            .collect();
        if name == "monitor" {
            monitors.push(attrs);
        } else if let Some(slot) = others.iter_mut().find(|(n, _)| n == name) {
            slot.1 = attrs;
        } else {
            others.push((name.to_string(), attrs));
        }
    }
    for required in ["start", "stop"] {
        if !others.iter().any(|(n, _)| n == required) && class != "stonith" {
            others.push((required.to_string(), Vec::new()));
        }
    }
    let mut out = monitor_intervals(id, meta, &monitors);
    for m in &monitors {
        let advised = advised_monitor(meta, m, "timeout");
        out.extend(timeout_check(id, "monitor", m, advised, default_timeout));
    }
    for (name, attrs) in &others {
        if class == "stonith" && matches!(name.as_str(), "start" | "stop") {
            continue;
        }
        if !advertised(meta, name) {
            out.push(format!(
                "{id}: action '{name}' not found in Resource Agent meta-data"
            ));
            continue;
        }
        if let Some(value) = get(attrs, "interval")
            && NO_INTERVAL.contains(&name.as_str())
            && msec(Some(value)) != 0
        {
            out.push(format!(
                "{id}: Specified interval for {name} is {value}, it must be 0"
            ));
        }
        let advised = meta
            .actions
            .iter()
            .find(|a| a.name == *name)
            .and_then(|a| a.attr("timeout"));
        out.extend(timeout_check(id, name, attrs, advised, default_timeout));
    }
    out
}

/// crmsh keys its actions by name and always has a `monitor` key.
fn advertised(meta: &Metadata, name: &str) -> bool {
    name == "monitor" || meta.actions.iter().any(|a| a.name == name)
}

fn monitor_intervals(id: &str, meta: &Metadata, monitors: &[Attrs]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for m in monitors {
        let advised = advised_monitor(meta, m, "interval").unwrap_or("None");
        let interval = msec(get(m, "interval"));
        if interval == 0 {
            out.push(format!(
                "{id}: interval in monitor should be larger than 0, advised is {advised}"
            ));
        } else if seen.contains(&interval) {
            out.push(format!(
                "{id}: interval in monitor must be unique, advised is {advised}"
            ));
        } else {
            seen.push(interval);
        }
    }
    out
}

/// crmsh's `get_op_attr_value` for a monitor: the first advertised monitor when the op names
/// no role or depth, else the one of its role, else of its depth. Like crmsh, a monitor
/// without the attribute looked at ends the search with nothing.
fn advised_monitor<'m>(meta: &'m Metadata, op: &Attrs, key: &str) -> Option<&'m str> {
    let monitors: Vec<&AgentAction> = meta
        .actions
        .iter()
        .filter(|a| a.name == "monitor")
        .collect();
    let (role, depth) = (get(op, "role"), get(op, "depth"));
    if role.is_none() && depth.is_none() {
        return monitors.first().and_then(|m| m.attr(key));
    }
    for (wanted, attr) in [(role, "role"), (depth, "depth")] {
        let Some(wanted) = wanted.filter(|w| !w.is_empty()) else {
            continue;
        };
        for m in &monitors {
            match m.attr(attr) {
                None => return None,
                Some(v) if v == wanted => return m.attr(key),
                Some(_) => {}
            }
        }
    }
    None
}

fn timeout_check(
    id: &str,
    op: &str,
    attrs: &Attrs,
    advised: Option<&str>,
    default_timeout: Option<&str>,
) -> Option<String> {
    let (actual, which) = match get(attrs, "timeout") {
        Some(t) => (Some(t), "specified timeout"),
        None => (default_timeout, "default timeout"),
    };
    let actual = actual.filter(|a| !a.is_empty())?;
    let advised_value = advised?;
    (msec(advised) > msec(Some(actual))).then(|| {
        format!("{id}: {which} {actual} for {op} is smaller than the advised {advised_value}")
    })
}

/// crmsh's `_verify_op_attributes`: values the schema lists for an op attribute.
fn op_attribute_values(id: &str, op: &Element) -> Vec<String> {
    let name = op.attr("name").unwrap_or_default();
    op.attributes
        .iter()
        .filter_map(|(k, v)| {
            let (_, allowed) = OP_ATTR_VALUES.iter().find(|(a, _)| a == k)?;
            (!allowed.contains(&v.as_str()))
                .then(|| format!("{id}: op '{name}' attribute '{k}' value '{v}' not recognized"))
        })
        .collect()
}

/// The values of [`op_attribute_values`] as commit errors: Pacemaker's schema refuses them,
/// so a CIB holding one would not be accepted (crmsh reports the Relax-NG failure).
pub fn schema_errors(resources: Option<&Element>) -> Vec<String> {
    resources
        .into_iter()
        .flat_map(|r| r.descendants())
        .filter(|e| e.name == "primitive")
        .flat_map(|p| {
            let id = p.id().unwrap_or_default();
            p.children_named("operations")
                .flat_map(|o| o.children_named("op"))
                .flat_map(move |op| op_attribute_values(id, op))
        })
        .map(|w| format!("{w}: Pacemaker's schema does not allow it"))
        .collect()
}

fn get<'a>(attrs: &'a Attrs, key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// crmsh's `crm_msec` (after Pacemaker's `crm_get_msec`): a leading integer and an optional
/// unit; -1 when there is none or the unit is unknown.
pub(crate) fn msec(t: Option<&str>) -> i64 {
    let Some(t) = t.map(str::trim_start).filter(|t| !t.is_empty()) else {
        return -1;
    };
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    let Ok(n) = digits.parse::<i64>() else {
        return -1;
    };
    let unit: String = t[digits.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    let (mul, div) = match unit.as_str() {
        "ms" | "msec" => (1, 1),
        "us" | "usec" => (1, 1000),
        "" | "s" | "sec" => (1000, 1),
        "m" | "min" => (60_000, 1),
        "h" | "hr" => (3_600_000, 1),
        _ => return -1,
    };
    n.saturating_mul(mul) / div
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str, attrs: &[(&str, &str)]) -> AgentAction {
        AgentAction {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn dummy() -> Metadata {
        Metadata {
            parameters: Vec::new(),
            shortdesc: String::new(),
            actions: vec![
                action("start", &[("timeout", "20s")]),
                action("stop", &[("timeout", "20s")]),
                action("monitor", &[("timeout", "20s"), ("interval", "10s")]),
            ],
            xml: String::new(),
        }
    }

    fn op(name: &str, attrs: &[(&str, &str)]) -> Element {
        let mut e = Element::new("op").with_attr("name", name);
        for (k, v) in attrs {
            e.set_attr(*k, *v);
        }
        e
    }

    #[test]
    fn crm_msec_reads_units_like_crmsh() {
        assert_eq!(msec(Some("10")), 10_000);
        assert_eq!(msec(Some("90s")), 90_000);
        assert_eq!(msec(Some("2m")), 120_000);
        assert_eq!(msec(Some("500ms")), 500);
        assert_eq!(msec(Some("1h")), 3_600_000);
        assert_eq!(msec(Some("abc")), -1);
        assert_eq!(msec(Some("5 weeks")), -1);
        assert_eq!(msec(None), -1);
    }

    #[test]
    fn timeouts_intervals_and_unknown_actions_are_reported_in_crmshs_order() {
        let ops = [
            op("monitor", &[("interval", "0"), ("timeout", "30s")]),
            op("bogus", &[("interval", "0")]),
            op("start", &[("interval", "10s"), ("timeout", "5s")]),
        ];
        let refs: Vec<&Element> = ops.iter().collect();
        let found = sanity_check_ops("p", "ocf", &dummy(), &refs, Some("10s"));
        assert_eq!(
            found,
            [
                "p: interval in monitor should be larger than 0, advised is 10s",
                "p: action 'bogus' not found in Resource Agent meta-data",
                "p: Specified interval for start is 10s, it must be 0",
                "p: specified timeout 5s for start is smaller than the advised 20s",
                "p: default timeout 10s for stop is smaller than the advised 20s",
            ]
        );
    }

    #[test]
    fn repeated_monitor_intervals_and_unlisted_values_are_reported() {
        let ops = [
            op("monitor", &[("interval", "10s")]),
            op("monitor", &[("interval", "10000ms")]),
        ];
        let refs: Vec<&Element> = ops.iter().collect();
        assert_eq!(
            sanity_check_ops("p", "ocf", &dummy(), &refs, None),
            ["p: interval in monitor must be unique, advised is 10s"]
        );
        let bad = op("monitor", &[("on-fail", "explode"), ("role", "Promoted")]);
        assert_eq!(
            op_attribute_values("p", &bad),
            ["p: op 'monitor' attribute 'on-fail' value 'explode' not recognized"]
        );
    }
}
