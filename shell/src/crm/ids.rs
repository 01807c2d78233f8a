//! Generated ids, the way crmsh's `idmgmt` makes them.
//!
//! An element that needs an id gets one from the nearest id above it: an nvpair becomes
//! `PREFIX-NAME`, an op `PREFIX-NAME-INTERVAL`, an attribute set `PREFIX-instance_attributes`,
//! a rule `PREFIX-rule`, an expression `PREFIX-expression`; taken ids get `-0`, `-1`... appended.
//! `operations`, reference elements and elements carrying `id-ref` get none.

use std::collections::HashSet;

use hapx_cib::xml::{Element, Node};

/// Every id in use in a CIB plus those handed out since.
#[derive(Debug, Default, Clone)]
pub struct IdStore {
    used: HashSet<String>,
}

const IDLESS: &[&str] = &[
    "operations",
    "fencing-topology",
    "network",
    "docker",
    "rkt",
    "storage",
    "select",
    "select_attributes",
    "select_fencing",
    "select_nodes",
    "select_resources",
];
const REFS: &[&str] = &["resource_ref", "obj_ref", "crmsh-ref"];

impl IdStore {
    /// The ids used at or below `root`.
    pub fn from_element(root: &Element) -> Self {
        IdStore {
            used: root
                .descendants()
                .filter_map(|e| e.id().map(str::to_string))
                .collect(),
        }
    }

    pub fn is_used(&self, id: &str) -> bool {
        self.used.contains(id)
    }

    pub fn save(&mut self, id: &str) {
        self.used.insert(id.to_string());
    }

    pub fn remove(&mut self, id: &str) {
        self.used.remove(id);
    }

    /// A fresh id for `node` from prefix `pfx` (crmsh's `idmgmt.new`), recorded as used.
    pub fn new_id(&mut self, node: &Element, pfx: &str) -> String {
        let pfx =
            if !pfx.is_empty() && pfx.bytes().all(|b| b.is_ascii_digit()) && node.name != "node" {
                format!("num-{pfx}")
            } else {
                pfx.to_string()
            };
        let name = node.attr("name").unwrap_or_default();
        let mut id = match node.name.as_str() {
            "nvpair" => format!("{pfx}-{name}"),
            "op" => match node.attr("interval") {
                Some(interval) if !interval.is_empty() => format!("{pfx}-{name}-{interval}"),
                _ => format!("{pfx}-{name}"),
            },
            tag => match sub_prefix(tag) {
                Some(sub) => format!("{pfx}-{sub}"),
                None => pfx,
            },
        };
        if self.is_used(&id) {
            if let Some(free) = (0..99)
                .map(|n| format!("{id}-{n}"))
                .find(|c| !self.is_used(c))
            {
                id = free;
            }
        }
        self.save(&id);
        id
    }

    /// Fills in missing ids below a new object (crmsh's `fix_node_ids` without an old node).
    pub fn fix_ids(&mut self, object: &mut Element) {
        let hint = match object.name.as_str() {
            "node" => "node",
            "primitive" | "template" => "rsc",
            "master" | "group" | "clone" => "grp",
            "rsc_location" => "location",
            "fencing-topology" => "fencing",
            "tags" => "tag",
            _ => "",
        };
        self.fix_recursive(object, hint);
    }

    fn fix_recursive(&mut self, node: &mut Element, prefix: &str) {
        let needs = !REFS.contains(&node.name.as_str())
            && node.attr("id-ref").is_none()
            && !IDLESS.contains(&node.name.as_str());
        if needs {
            match node.id().or(node.attr("uname")).map(str::to_string) {
                Some(id) => {
                    self.save(&id);
                    node.set_attr("id", id);
                }
                None => {
                    let id = self.new_id(node, prefix);
                    node.set_attr("id", id);
                }
            }
        }
        let prefix = if node.name == "node" && node.attr("uname").is_some() {
            node.attr("uname").unwrap_or_default().to_string()
        } else {
            node.id()
                .map(str::to_string)
                .unwrap_or_else(|| prefix.to_string())
        };
        for child in node.children.iter_mut() {
            if let Node::Element(e) = child {
                self.fix_recursive(e, &prefix);
            }
        }
    }
}

fn sub_prefix(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "instance_attributes" => "instance_attributes",
        "meta_attributes" => "meta_attributes",
        "utilization" => "utilization",
        "operations" => "ops",
        "rule" => "rule",
        "expression" | "date_expression" => "expression",
        "duration" => "duration",
        "date_spec" => "date_spec",
        "read" => "read",
        "write" => "write",
        "deny" => "deny",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_crmsh() {
        let mut store = IdStore::default();
        let mut prim = Element::new("primitive")
            .with_attr("id", "vip")
            .with_child(
                Element::new("instance_attributes")
                    .with_child(Element::new("nvpair").with_attr("name", "ip")),
            )
            .with_child(
                Element::new("operations").with_child(
                    Element::new("op")
                        .with_attr("name", "monitor")
                        .with_attr("interval", "20"),
                ),
            );
        store.fix_ids(&mut prim);
        assert!(prim.find_by_id("vip-instance_attributes-ip").is_some());
        assert!(prim.find_by_id("vip-monitor-20").is_some());
        let op = Element::new("op")
            .with_attr("name", "monitor")
            .with_attr("interval", "20");
        assert_eq!(store.new_id(&op, "vip"), "vip-monitor-20-0");
        assert_eq!(store.new_id(&Element::new("rule"), "12"), "num-12-rule");
    }
}
