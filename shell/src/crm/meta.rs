//! Meta attributes that reach down and up a resource tree, and node attributes that reach into
//! resources: crmsh's `set_deep_meta_attr` (behind `resource start|stop|manage|unmanage|
//! maintenance`) and `update_xml_node` (behind `node maintenance`), as pure edits of a CIB.
//!
//! crmsh's rules, kept here because they decide what a user's CIB looks like afterwards:
//! - The attribute lands on the resource named, unless it sits inside a clone: a primitive in a
//!   group keeps it, anything else hands it to its topmost container (a primitive in a clone
//!   sets the clone's `target-role`).
//! - On a clone, the same attribute is dropped from its child (and the child's children, unless
//!   the child is a group's member).
//! - On a group, or a clone of a group, the `manage-children` option decides whether members
//!   lose their own copy (`always`), keep it (`never`), or the user is asked (`ask`).
//! - `maintenance` and `is-managed` conflict: setting one asks whether to drop the other.
//! - Attribute sets left empty are removed; a new set is `RSC-meta_attributes`, a new nvpair
//!   `SET-NAME` (crmsh's `idmgmt`).
//!
//! Questions go through the caller's `ask`, which answers as `-F`, the terminal, or a script
//! (no) would.

use std::collections::HashSet;

use hapx_cib::xml::{Element, Node};

use crate::crm::ids::IdStore;
use crate::options::ManageChildren;

const CONTAINERS: &[&str] = &["group", "clone", "ms", "master", "bundle"];
const CLONES: &[&str] = &["clone", "ms", "master"];
const RESOURCES: &[&str] = &[
    "primitive",
    "group",
    "clone",
    "ms",
    "master",
    "template",
    "bundle",
];
const NVPAIR_SETS: &[&str] = &["meta_attributes", "instance_attributes", "utilization"];

/// A question for the user; the answer says whether to go ahead.
pub type Ask<'a> = &'a mut dyn FnMut(&str) -> bool;

/// Positions (indexes into `children`) from an element down to a descendant.
type Path = Vec<usize>;

fn find_path(e: &Element, want: &dyn Fn(&Element) -> bool) -> Option<Path> {
    for (i, child) in e.children.iter().enumerate() {
        let Node::Element(c) = child else { continue };
        if want(c) {
            return Some(vec![i]);
        }
        if let Some(mut rest) = find_path(c, want) {
            rest.insert(0, i);
            return Some(rest);
        }
    }
    None
}

fn at<'a>(e: &'a Element, path: &[usize]) -> &'a Element {
    path.iter().fold(e, |e, &i| match &e.children[i] {
        Node::Element(c) => c,
        _ => unreachable!("paths only name elements"),
    })
}

fn at_mut<'a>(e: &'a mut Element, path: &[usize]) -> &'a mut Element {
    path.iter().fold(e, |e, &i| match &mut e.children[i] {
        Node::Element(c) => c,
        _ => unreachable!("paths only name elements"),
    })
}

/// The resources an id names: the resource itself, or a tag's resources.
fn resolve(resources: &Element, tags: Option<&Element>, id: &str) -> Vec<String> {
    let is_rsc = |e: &Element| RESOURCES.contains(&e.name.as_str()) && e.id() == Some(id);
    if find_path(resources, &is_rsc).is_some() {
        return vec![id.to_string()];
    }
    let Some(tag) = tags.and_then(|t| t.children_named("tag").find(|t| t.id() == Some(id))) else {
        return Vec::new();
    };
    tag.children_named("obj_ref")
        .filter_map(|r| r.id())
        .flat_map(|r| resolve(resources, tags, r))
        .collect()
}

/// `maintenance` and `is-managed` each conflict with the other.
fn conflicting(attr: &str) -> Option<&'static str> {
    match attr {
        "maintenance" => Some("is-managed"),
        "is-managed" => Some("maintenance"),
        _ => None,
    }
}

/// crmsh's `set_deep_meta_attr` on the CIB `cib` for the resource (or tag) `rsc`.
pub fn set_deep_meta_attr(
    cib: &mut Element,
    rsc: &str,
    attr: &str,
    value: &str,
    manage: ManageChildren,
    ask: Ask<'_>,
) -> Result<(), String> {
    let mut ids = IdStore::from_element(cib);
    let configuration = cib.child_mut("configuration").ok_or("CIB is not valid!")?;
    let targets = {
        let resources = configuration
            .child("resources")
            .ok_or("CIB is not valid!")?;
        resolve(resources, configuration.child("tags"), rsc)
    };
    if targets.is_empty() {
        return Err(format!("Resource not found: {rsc}"));
    }
    let resources = configuration
        .child_mut("resources")
        .ok_or("CIB is not valid!")?;
    for id in targets {
        let want = |e: &Element| RESOURCES.contains(&e.name.as_str()) && e.id() == Some(&id);
        let Some(mut path) = find_path(resources, &want) else {
            continue;
        };
        let in_group = at(resources, &path).name == "primitive"
            && path.len() > 1
            && at(resources, &path[..path.len() - 1]).name == "group";
        if !in_group {
            // The topmost resource holding this one.
            while path.len() > 1
                && CONTAINERS.contains(&at(resources, &path[..path.len() - 1]).name.as_str())
            {
                path.pop();
            }
        }
        set_on_node(at_mut(resources, &path), attr, value, manage, ask, &mut ids);
    }
    Ok(())
}

/// crmsh's `set_deep_meta_attr_node`.
fn set_on_node(
    target: &mut Element,
    attr: &str,
    value: &str,
    manage: ManageChildren,
    ask: Ask<'_>,
    ids: &mut IdStore,
) {
    let conflict = conflicting(attr);
    let mut doomed: HashSet<String> = HashSet::new();
    let is_clone = CLONES.contains(&target.name.as_str());
    if is_clone {
        for c in target.elements().filter(|c| is_child_rsc(c)) {
            collect_meta(c, attr, false, &mut doomed);
        }
    }
    let cloned_group = is_clone
        && target
            .elements()
            .find(|c| RESOURCES.contains(&c.name.as_str()))
            .is_some_and(|c| c.name == "group");
    if manage != ManageChildren::Never && (target.name == "group" || cloned_group) {
        let mut override_children = |name: &str, question: &dyn Fn(&str) -> String| {
            for c in primitives_with_meta(target, name) {
                let id = c.id().unwrap_or_default();
                if manage == ManageChildren::Always || ask(&question(id)) {
                    collect_meta(c, name, true, &mut doomed);
                }
            }
        };
        if let Some(conflict) = conflict {
            override_children(conflict, &|id| {
                format!(
                    "'{attr}' conflicts with '{conflict}' attribute. Remove '{conflict}' for \
                     child resource {id}?"
                )
            });
        }
        override_children(attr, &|id| {
            format!("Do you want to override '{attr}' for child resource {id}?")
        });
    }
    remove_nvpairs(target, &|e| e.id().is_some_and(|id| doomed.contains(id)));
    if let Some(conflict) = conflict {
        let own = target
            .children_named("meta_attributes")
            .flat_map(|s| s.children_named("nvpair"))
            .any(|n| n.attr("name") == Some(conflict));
        let id = target.id().unwrap_or_default().to_string();
        if own
            && ask(&format!(
                "'{attr}' conflicts with '{conflict}' attribute. Remove '{conflict}' for \
                 resource {id}?"
            ))
        {
            for set in target
                .elements_mut()
                .filter(|s| s.name == "meta_attributes")
            {
                set.children.retain(
                    |n| !matches!(n, Node::Element(e) if e.name == "nvpair" && e.attr("name") == Some(conflict)),
                );
            }
        }
    }
    remove_empty_sets(target);
    set_in_sets(target, "meta_attributes", attr, value, ids);
}

fn is_child_rsc(e: &Element) -> bool {
    matches!(e.name.as_str(), "group" | "primitive")
}

/// crmsh's `rm_meta_attribute`: the ids of `attr`'s nvpairs in `node`'s meta attributes and,
/// recursively, its child resources' (a group's members only when `force_children`).
fn collect_meta(node: &Element, attr: &str, force_children: bool, out: &mut HashSet<String>) {
    for c in node.elements() {
        if c.name == "meta_attributes" {
            if let Some(id) = c
                .children_named("nvpair")
                .find(|n| n.attr("name") == Some(attr))
                .and_then(Element::id)
            {
                out.insert(id.to_string());
            }
        } else if force_children || (is_child_rsc(c) && node.name != "group") {
            collect_meta(c, attr, force_children, out);
        }
    }
}

/// The primitives under `node` with `attr` in one of their meta attribute sets.
fn primitives_with_meta<'a>(node: &'a Element, attr: &'a str) -> Vec<&'a Element> {
    node.descendants()
        .filter(|p| p.name == "primitive")
        .filter(|p| {
            p.children_named("meta_attributes")
                .flat_map(|s| s.children_named("nvpair"))
                .any(|n| n.attr("name") == Some(attr))
        })
        .collect()
}

fn remove_nvpairs(e: &mut Element, doomed: &dyn Fn(&Element) -> bool) {
    e.children
        .retain(|n| !matches!(n, Node::Element(c) if c.name == "nvpair" && doomed(c)));
    for c in e.elements_mut() {
        remove_nvpairs(c, doomed);
    }
}

/// crmsh's `xml_processnodes(e, is_emptynvpairs, rmnodes)`: attribute sets below `e` with no
/// children (and no `id-ref`) are removed.
pub fn remove_empty_sets(e: &mut Element) {
    for c in e.elements_mut() {
        remove_empty_sets(c);
    }
    e.children.retain(|n| match n {
        Node::Element(c) => {
            !(NVPAIR_SETS.contains(&c.name.as_str())
                && c.attr("id-ref").is_none()
                && !c
                    .children
                    .iter()
                    .any(|n| !matches!(n, Node::Text(t) if t.trim().is_empty())))
        }
        _ => true,
    });
}

/// Sets `attr` in `e`'s sets of kind `set_tag`: every existing nvpair of that name gets the
/// value; else the attribute is added to every such set, one set (`ID-SET_TAG`) made if none.
pub fn set_in_sets(e: &mut Element, set_tag: &str, attr: &str, value: &str, ids: &mut IdStore) {
    let mut found = false;
    for set in e.elements_mut().filter(|s| s.name == set_tag) {
        for nvp in set
            .elements_mut()
            .filter(|n| n.name == "nvpair" && n.attr("name") == Some(attr))
        {
            nvp.set_attr("value", value);
            found = true;
        }
    }
    if found {
        return;
    }
    if e.child(set_tag).is_none() {
        let mut set = Element::new(set_tag);
        let id = ids.new_id(&set, e.id().unwrap_or_default());
        set.set_attr("id", id);
        insert_set(e, set);
    }
    for set in e.elements_mut().filter(|s| s.name == set_tag) {
        let probe = Element::new("nvpair").with_attr("name", attr);
        let id = ids.new_id(&probe, set.id().unwrap_or_default());
        let nvp = Element::new("nvpair")
            .with_attr("id", id)
            .with_attr("name", attr)
            .with_attr("value", value);
        set.children.push(nvp.into());
    }
}

/// A new attribute set goes at the end of the element, after its operations and child
/// resources: crmsh (`SubElement`) and crm_resource append it there, and `configure show`
/// prints a primitive's parts in the order they are in the CIB.
pub fn insert_set(e: &mut Element, set: Element) {
    e.children.push(set.into());
}

/// The resources `update_xml_node` looks at: crmsh's objects of type primitive, group and
/// clone, in its processing order (primitives, then groups, then clones, each in CIB order),
/// leaving out those with a `cli-prefer-` location to another node.
fn resources_on_node(configuration: &Element, node: &str) -> Vec<Path> {
    let Some(resources) = configuration.child("resources") else {
        return Vec::new();
    };
    let excluded: Vec<String> = configuration
        .child("constraints")
        .into_iter()
        .flat_map(|c| c.children_named("rsc_location"))
        .filter(|l| l.attr("node") != Some(node))
        .filter_map(|l| l.id().map(|id| id.replace("cli-prefer-", "")))
        .collect();
    let mut found: Vec<(usize, Path)> = Vec::new();
    collect_paths(resources, &mut Vec::new(), &mut found);
    found.retain(|(_, path)| {
        let id = at(resources, path).id().unwrap_or_default();
        !excluded.iter().any(|x| x == id)
    });
    found.sort_by_key(|(rank, _)| *rank);
    found.into_iter().map(|(_, p)| p).collect()
}

fn collect_paths(e: &Element, prefix: &mut Path, out: &mut Vec<(usize, Path)>) {
    for (i, child) in e.children.iter().enumerate() {
        let Node::Element(c) = child else { continue };
        prefix.push(i);
        let rank = match c.name.as_str() {
            "primitive" => Some(0),
            "group" => Some(1),
            "clone" => Some(2),
            _ => None,
        };
        if let Some(rank) = rank {
            out.push((rank, prefix.clone()));
        }
        collect_paths(c, prefix, out);
        prefix.pop();
    }
}

/// crmsh's `update_xml_node`: node attribute `attr` of `uname` set to `value`, after offering
/// to drop the same (and the conflicting) meta attribute from the resources and the
/// conflicting attribute from the node.
pub fn update_node_attr(
    cib: &mut Element,
    uname: &str,
    attr: &str,
    value: &str,
    manage: ManageChildren,
    ask: Ask<'_>,
) -> Result<(), String> {
    let mut ids = IdStore::from_element(cib);
    let configuration = cib.child_mut("configuration").ok_or("CIB is not valid!")?;
    let node_path = configuration
        .child("nodes")
        .and_then(|nodes| {
            nodes
                .children
                .iter()
                .position(|n| matches!(n, Node::Element(e) if e.name == "node" && (e.attr("uname") == Some(uname) || e.id() == Some(uname))))
        })
        .ok_or("CIB is not valid!")?;
    let conflict = conflicting(attr);
    let paths = resources_on_node(configuration, uname);
    if let Some(resources) = configuration.child_mut("resources") {
        for path in paths {
            let r = at_mut(resources, &path);
            remove_redundant(r, "meta_attributes", attr, conflict, manage, ask);
        }
    }
    let Some(nodes) = configuration.child_mut("nodes") else {
        return Err("CIB is not valid!".into());
    };
    let Node::Element(node) = &mut nodes.children[node_path] else {
        return Err("CIB is not valid!".into());
    };
    if let Some(conflict) = conflict {
        let has = node
            .children_named("instance_attributes")
            .flat_map(|s| s.children_named("nvpair"))
            .any(|n| n.attr("name") == Some(conflict));
        let name = node.attr("uname").unwrap_or_default().to_string();
        if has
            && ask(&format!(
                "'{conflict}' conflicts with '{attr}' in {name}. Remove it?"
            ))
        {
            for set in node
                .elements_mut()
                .filter(|s| s.name == "instance_attributes")
            {
                set.children
                    .retain(|n| !matches!(n, Node::Element(e) if e.attr("name") == Some(conflict)));
            }
            remove_empty_sets(node);
        }
    }
    set_node_attr(node, attr, value, &mut ids);
    Ok(())
}

/// A node's attribute set: every nvpair of that name gets the value; else it is added to the
/// node's instance attributes, `nodes-ID` made when there are none (crmsh's
/// `get_set_instace_attributes`).
fn set_node_attr(node: &mut Element, attr: &str, value: &str, ids: &mut IdStore) {
    if node.child("instance_attributes").is_none() {
        let id = format!("nodes-{}", node.id().unwrap_or_default());
        ids.save(&id);
        node.children.push(
            Element::new("instance_attributes")
                .with_attr("id", id)
                .into(),
        );
    }
    set_in_sets(node, "instance_attributes", attr, value, ids);
}

/// crmsh's `remove_redundant_attrs` for one resource.
/// `sets` is the kind of attribute set looked in: a resource's `meta_attributes` (named by
/// id in the questions) or a node's `instance_attributes` (named by uname).
fn remove_redundant(
    r: &mut Element,
    sets: &str,
    attr: &str,
    conflict: Option<&str>,
    manage: ManageChildren,
    ask: Ask<'_>,
) {
    let id = match sets {
        "instance_attributes" => r.attr("uname").or(r.id()),
        _ => r.id(),
    }
    .unwrap_or_default()
    .to_string();
    let set_count = r.children_named(sets).count();
    let mut removed = false;
    for index in 0..set_count {
        let mut names = vec![(
            attr,
            format!("'{attr}' attribute already exists in {id}. Remove it?"),
        )];
        if let Some(c) = conflict {
            names.push((
                c,
                format!("'{c}' conflicts with '{attr}' in {id}. Remove it?"),
            ));
        }
        for (name, question) in names {
            let Some(set) = r.elements_mut().filter(|s| s.name == sets).nth(index) else {
                break;
            };
            let present = set
                .children_named("nvpair")
                .any(|n| n.attr("name") == Some(name));
            if present
                && (manage == ManageChildren::Always
                    || (manage == ManageChildren::Ask && ask(&question)))
            {
                if let Some(pos) = set.children.iter().position(
                    |n| matches!(n, Node::Element(e) if e.name == "nvpair" && e.attr("name") == Some(name)),
                ) {
                    set.children.remove(pos);
                    removed = true;
                }
            }
        }
    }
    if removed {
        remove_empty_sets(r);
    }
}

/// crmsh's `__override_lower_level_attrs`, behind `configure property maintenance-mode=...`:
/// every primitive, group and clone (but those a location names for a node that is not in
/// the CIB, as crmsh's `get_resources_on_nodes` excludes them), then every node, is offered
/// to drop its own `attr` and the conflicting one: resources from their meta attributes,
/// nodes from their instance attributes.
pub fn override_lower_level_attrs(
    configuration: &mut Element,
    attr: &str,
    manage: ManageChildren,
    ask: Ask<'_>,
) {
    let conflict = conflicting(attr);
    let node_ids: Vec<String> = configuration
        .child("nodes")
        .map(|n| {
            n.children_named("node")
                .filter_map(|n| n.id().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let excluded: Vec<String> = configuration
        .child("constraints")
        .into_iter()
        .flat_map(|c| c.children_named("rsc_location"))
        .filter(|l| {
            !l.attr("node")
                .is_some_and(|n| node_ids.iter().any(|i| i == n))
        })
        .filter_map(|l| l.id().map(|id| id.replace("cli-prefer-", "")))
        .collect();
    if let Some(resources) = configuration.child_mut("resources") {
        let mut found: Vec<(usize, Path)> = Vec::new();
        collect_paths(resources, &mut Vec::new(), &mut found);
        found.sort_by_key(|(rank, _)| *rank);
        for (_, path) in found {
            let r = at_mut(resources, &path);
            if !excluded.iter().any(|x| Some(x.as_str()) == r.id()) {
                remove_redundant(r, "meta_attributes", attr, conflict, manage, ask);
            }
        }
    }
    if let Some(nodes) = configuration.child_mut("nodes") {
        for node in nodes.elements_mut().filter(|n| n.name == "node") {
            remove_redundant(node, "instance_attributes", attr, conflict, manage, ask);
        }
    }
}
