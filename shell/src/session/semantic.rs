//! crmsh's semantic checks (`semantic_check`), run by `verify` on every object and by
//! `commit` on the changed ones, unless `check-frequency` is `never`.
//!
//! - resources: meta attributes crmsh does not know (`st: unknown attribute 'yoyo-meta'`), for
//!   primitives, groups, clones and ms each with its own list;
//! - primitives, when `check-frequency` is `on-verify` (otherwise they were checked when
//!   defined): the agent's parameters, as errors under `check-mode strict` and warnings under
//!   `relaxed`;
//! - the cluster properties (`cib-bootstrap-options`) against Pacemaker's daemons' meta-data,
//!   rsc_defaults against the resource meta attributes, op_defaults against an op's attributes;
//! - primitives: their operations against the agent's actions ([`super::ops`]);
//! - constraints: the resources they name exist and are not members of a group (colocations)
//!   or of a clone (`ambiguous, apply constraints to container`); a location's node exists.
//!
//! Objects are checked in id order, as crmsh sorts them.

use hapx_cib::xml::Element;

use crate::crm::config::Config;
use crate::crm::show::Object;
use crate::options::{CheckFrequency, CheckMode, Options};

/// crmsh's `constants.rsc_meta_attributes`.
const RSC_META: &[&str] = &[
    "allow-migrate",
    "maintenance",
    "is-managed",
    "interval-origin",
    "migration-threshold",
    "priority",
    "multiple-active",
    "failure-timeout",
    "resource-stickiness",
    "target-role",
    "restart-type",
    "description",
    "remote-node",
    "requires",
    "provides",
    "remote-port",
    "remote-addr",
    "remote-connect-timeout",
];
/// crmsh's `extra_cluster_properties`: set by the cluster, in no daemon's meta-data.
const EXTRA_PROPERTIES: &[&str] = &[
    "dc-version",
    "cluster-infrastructure",
    "last-lrm-refresh",
    "cluster-name",
];
const COMMON_META: &[&str] = &["priority", "target-role", "is-managed"];
const GROUP_META: &[&str] = &["container"];
const CLONE_META: &[&str] = &[
    "ordered",
    "notify",
    "interleave",
    "globally-unique",
    "clone-max",
    "clone-node-max",
    "clone-state",
    "description",
    "clone-min",
    "promotable",
    "promoted-max",
    "promoted-node-max",
];
const MS_META: &[&str] = &[
    "clone-max",
    "clone-node-max",
    "notify",
    "globally-unique",
    "ordered",
    "interleave",
    "master-max",
    "master-node-max",
    "description",
];

/// One finding: an error (fails a commit) or a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub error: bool,
    pub message: String,
}

fn warning(message: String) -> Finding {
    Finding {
        error: false,
        message,
    }
}

/// The findings on `objects` of `config`, as `options` asks.
pub fn check(config: &Config, objects: &[Object<'_>], options: &Options) -> Vec<Finding> {
    if options.check_frequency() == CheckFrequency::Never {
        return Vec::new();
    }
    let mut sorted = objects.to_vec();
    sorted.sort_by_key(|o| o.id);
    let mut findings = Vec::new();
    for o in sorted {
        match o.kind {
            "primitive" => {
                findings.extend(unknown_meta(o, &[RSC_META]));
                let default_timeout = op_default(config, "timeout");
                let ops = super::ops::check(o.element, default_timeout.as_deref());
                findings.extend(ops.into_iter().map(warning));
                if options.check_frequency() == CheckFrequency::OnVerify {
                    findings.extend(params(o.element, options));
                }
            }
            "property" if o.id == "cib-bootstrap-options" => {
                findings.extend(unknown_nvpairs(o, |n| {
                    crate::ra::CLUSTER_PROPERTY_NAMES.contains(&n) || EXTRA_PROPERTIES.contains(&n)
                }));
            }
            "rsc_defaults" => findings.extend(unknown_nvpairs(o, |n| RSC_META.contains(&n))),
            "op_defaults" => findings.extend(unknown_nvpairs(o, |n| {
                crate::crm::parse::OP_SCHEMA_ATTRIBUTES.contains(&n)
            })),
            "group" => findings.extend(unknown_meta(o, &[RSC_META, GROUP_META])),
            "clone" => findings.extend(unknown_meta(o, &[RSC_META, COMMON_META, CLONE_META])),
            "ms" => findings.extend(unknown_meta(
                o,
                &[RSC_META, COMMON_META, CLONE_META, MS_META],
            )),
            "location" | "colocation" | "order" | "rsc_ticket" => {
                findings.extend(constraint_refs(config, o));
                if o.kind == "location" {
                    findings.extend(location_node(config, o));
                }
            }
            _ => {}
        }
    }
    findings
}

/// crmsh's `get_op_default`: the value of `name` in the op_defaults sets.
fn op_default(config: &Config, name: &str) -> Option<String> {
    config
        .configuration()?
        .child("op_defaults")?
        .descendants()
        .filter(|e| e.name == "nvpair" && e.attr("name") == Some(name))
        .find_map(|e| e.attr("value").map(str::to_string))
}

/// crmsh's `sanity_check_nvpairs` on a property or defaults set.
fn unknown_nvpairs(o: Object<'_>, known: impl Fn(&str) -> bool) -> Vec<Finding> {
    o.element
        .children_named("nvpair")
        .filter_map(|nvp| nvp.attr("name"))
        .filter(|name| !known(name))
        .map(|name| warning(format!("{}: unknown attribute '{name}'", o.id)))
        .collect()
}

fn unknown_meta(o: Object<'_>, lists: &[&[&str]]) -> Vec<Finding> {
    o.element
        .children_named("meta_attributes")
        .flat_map(|set| set.children_named("nvpair"))
        .filter_map(|nvp| nvp.attr("name"))
        .filter(|name| !lists.iter().any(|l| l.contains(name)))
        .map(|name| warning(format!("{}: unknown attribute '{name}'", o.id)))
        .collect()
}

/// The agent's parameter checks, deferred to verify and commit (`check-frequency on-verify`).
fn params(prim: &Element, options: &Options) -> Vec<Finding> {
    let error = options.check_mode() == CheckMode::Strict;
    match super::agent_params(prim, options.check_mode()) {
        Ok(warnings) => warnings.into_iter().map(warning).collect(),
        Err(messages) => messages
            .into_iter()
            .map(|message| Finding { error, message })
            .collect(),
    }
}

/// crmsh's `referenced_resources`: a constraint's sets, else its rsc/with-rsc/first/then.
fn referenced(c: &Element) -> Vec<&str> {
    let in_sets: Vec<&str> = c
        .descendants()
        .filter(|e| e.name == "resource_ref")
        .filter_map(Element::id)
        .collect();
    if !in_sets.is_empty() {
        return in_sets;
    }
    let attrs: &[&str] = match c.name.as_str() {
        "rsc_order" => &["first", "then"],
        "rsc_colocation" => &["rsc", "with-rsc"],
        _ => &["rsc"],
    };
    attrs.iter().filter_map(|a| c.attr(a)).collect()
}

/// crmsh's `_check_if_constraint_ref_is_child`.
fn constraint_refs(config: &Config, o: Object<'_>) -> Vec<Finding> {
    let resources = config.configuration().and_then(|c| c.child("resources"));
    let mut findings = Vec::new();
    for rsc in referenced(o.element) {
        let parent = resources.and_then(|r| {
            r.descendants()
                .find(|e| e.elements().any(|c| c.id() == Some(rsc) && is_resource(c)))
        });
        // crmsh's `find_object`: any object, a tag (Pacemaker expands it) as well.
        let exists = resources.is_some_and(|r| {
            r.descendants()
                .any(|e| e.id() == Some(rsc) && is_resource(e))
        }) || config
            .objects()
            .iter()
            .any(|t| t.kind == "tag" && t.id == rsc);
        let id = o.id;
        if !exists {
            findings.push(warning(format!("{id}: resource {rsc} does not exist")));
        } else if let Some(p) = parent.filter(|p| p.name != "resources") {
            if p.name == "group" {
                if o.kind == "colocation" {
                    findings.push(warning(format!(
                        "{id}: resource {rsc} is grouped, constraints should apply to the group"
                    )));
                }
            } else {
                findings.push(warning(format!(
                    "{id}: resource {rsc} ambiguous, apply constraints to container"
                )));
            }
        }
    }
    findings
}

/// crmsh's location `check_sanity`: the node a location names, directly or in a rule's
/// `#uname` expression, should be one of the configured nodes.
fn location_node(config: &Config, o: Object<'_>) -> Vec<Finding> {
    let rule_nodes = o
        .element
        .children_named("rule")
        .flat_map(|r| r.children_named("expression"))
        .filter(|e| e.attr("attribute") == Some("#uname"))
        .filter_map(|e| e.attr("value"));
    let names = config.node_names();
    o.element
        .attr("node")
        .into_iter()
        .chain(rule_nodes)
        .filter(|node| !node.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(node)))
        .map(|node| warning(format!("{}: referenced node {node} does not exist", o.id)))
        .collect()
}

fn is_resource(e: &Element) -> bool {
    matches!(
        e.name.as_str(),
        "primitive" | "group" | "clone" | "master" | "bundle"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hapx_cib::xml::Document;

    fn config() -> Config {
        Config::new(
            Document::parse(
                r#"<cib><configuration><crm_config/><nodes><node id="n1" uname="node1"/></nodes>
<resources>
  <group id="g"><primitive id="d1" class="ocf" provider="heartbeat" type="Dummy"/></group>
  <clone id="c"><primitive id="d2" class="ocf" provider="heartbeat" type="Dummy">
    <meta_attributes id="d2-meta"><nvpair id="d2-m1" name="yoyo" value="1"/></meta_attributes>
  </primitive></clone>
</resources>
<constraints>
  <rsc_colocation id="col" rsc="d1" with-rsc="nosuch" score="INFINITY"/>
  <rsc_order id="ord" first="d2" then="g"/>
  <rsc_location id="loc" rsc="g" node="node9" score="10"/>
</constraints></configuration></cib>"#,
            )
            .unwrap(),
        )
    }

    #[test]
    fn crmshs_warnings_in_id_order() {
        let config = config();
        let mut options = Options::default();
        let relaxed = crate::options::setting("check-frequency").unwrap();
        options.set(relaxed, "on-verify").unwrap();
        let objects: Vec<_> = config
            .objects()
            .into_iter()
            .filter(|o| o.kind != "primitive")
            .collect();
        let messages: Vec<String> = check(&config, &objects, &options)
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert_eq!(
            messages,
            [
                "col: resource d1 is grouped, constraints should apply to the group",
                "col: resource nosuch does not exist",
                "loc: referenced node node9 does not exist",
                "ord: resource d2 ambiguous, apply constraints to container",
            ]
        );
        let d2: Vec<_> = config
            .objects()
            .into_iter()
            .filter(|o| o.id == "d2")
            .collect();
        let found = check(&config, &d2, &Options::default());
        assert_eq!(found[0].message, "d2: unknown attribute 'yoyo'");
        options.set(relaxed, "never").unwrap();
        assert!(check(&config, &config.objects(), &options).is_empty());
    }
}
