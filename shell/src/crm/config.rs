//! The configuration being edited: a CIB document plus the edits crm commands make to it.
//!
//! Adding an object follows crmsh's `create_from_cli`: ids are checked for clashes, generated
//! ids are filled in, group and clone members are moved into their container, properties and
//! defaults merge into an existing set of the same id, `monitor` adds an op to its primitive.
//! Every edit either completes or leaves the document as it was.

use hapx_cib::xml::{Document, Element, Node};

use crate::crm::ids::IdStore;
use crate::crm::show;

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EditError(pub String);

type Result<T> = std::result::Result<T, EditError>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(EditError(message.into()))
}

/// The sections of `<configuration>` that hold each kind of top-level object.
fn section_of(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "node" => "nodes",
        "primitive" | "group" | "clone" | "master" | "template" | "bundle" => "resources",
        "rsc_location" | "rsc_colocation" | "rsc_order" | "rsc_ticket" => "constraints",
        "cluster_property_set" => "crm_config",
        "tag" => "tags",
        "alert" => "alerts",
        _ => return None,
    })
}

/// The crm name of a top-level element.
pub fn kind_of(tag: &str) -> &'static str {
    match tag {
        "node" => "node",
        "primitive" => "primitive",
        "template" => "rsc_template",
        "group" => "group",
        "clone" => "clone",
        "master" => "ms",
        "bundle" => "bundle",
        "rsc_location" => "location",
        "rsc_colocation" => "colocation",
        "rsc_order" => "order",
        "rsc_ticket" => "rsc_ticket",
        "cluster_property_set" => "property",
        "tag" => "tag",
        "alert" => "alert",
        "op" => "op",
        _ => "object",
    }
}

/// A CIB under edit.
#[derive(Debug, Clone)]
pub struct Config {
    pub doc: Document,
    /// INFO messages from the last edits (constraints redirected or dropped), for the user.
    pub notes: Vec<String>,
    /// Object ids in crmsh's session order: as read from the CIB (document order), then as
    /// created; what `show` follows when `sort-elements` is off.
    order: Vec<String>,
}

impl Config {
    pub fn new(doc: Document) -> Self {
        let mut config = Config {
            doc,
            notes: Vec::new(),
            order: Vec::new(),
        };
        config.reread_order();
        config
    }

    /// Session order starts again from the document (crmsh re-reads the CIB after a commit).
    pub fn reread_order(&mut self) {
        // crmsh reads objects in document order, sorted (stably) by kind.
        let mut objects = self
            .configuration()
            .map(show::objects_in_document_order)
            .unwrap_or_default();
        objects.sort_by_key(|o| show::rank(o.kind));
        self.order = objects.iter().map(|o| o.id.to_string()).collect();
    }

    /// The top-level objects by kind and then in session order (`sort-elements no`).
    pub fn objects_as_created(&self) -> Vec<show::Object<'_>> {
        let mut objects = self.objects();
        let position = |id: &str| self.order.iter().position(|o| o == id);
        objects.sort_by_key(|o| (show::rank(o.kind), position(o.id).unwrap_or(usize::MAX)));
        objects
    }

    fn remember(&mut self, id: String) {
        if !self.order.contains(&id) {
            self.order.push(id);
        }
    }

    /// `<configuration>`, created when missing.
    pub fn configuration(&self) -> Option<&Element> {
        self.doc.root.child("configuration")
    }

    fn configuration_mut(&mut self) -> &mut Element {
        self.doc.root.child_or_insert("configuration")
    }

    fn section_mut(&mut self, name: &str) -> &mut Element {
        self.configuration_mut().child_or_insert(name)
    }

    fn ids(&self) -> IdStore {
        self.configuration()
            .map(IdStore::from_element)
            .unwrap_or_default()
    }

    /// The top-level objects, in display order.
    pub fn objects(&self) -> Vec<show::Object<'_>> {
        self.configuration().map(show::objects).unwrap_or_default()
    }

    /// The object with id (or node uname) `id`.
    pub fn find(&self, id: &str) -> Option<show::Object<'_>> {
        self.objects().into_iter().find(|o| o.id == id)
    }

    /// Ids of every resource (primitives, groups, clones...), nested ones included.
    pub fn resource_ids(&self) -> Vec<String> {
        self.objects()
            .iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    "primitive" | "group" | "clone" | "ms" | "bundle" | "rsc_template"
                )
            })
            .map(|o| o.id.to_string())
            .collect()
    }

    fn check_new_id(&self, tag: &str, id: &str) -> Result<()> {
        // Node names are a namespace of their own: crmsh lets a resource be named like a node.
        let existing = self
            .objects()
            .into_iter()
            .find(|o| o.id == id && (o.kind != "node" || tag == "node"));
        if let Some(existing) = existing {
            return fail(format!(
                "Cannot create {} with ID '{id}': Found existing {} with same ID.",
                kind_of(tag),
                existing.kind
            ));
        }
        let a_nodes_name = tag != "node"
            && self
                .objects()
                .iter()
                .any(|o| o.kind == "node" && o.id == id);
        if self.ids().is_used(id) && !a_nodes_name {
            return fail(format!("id {id} is already in use"));
        }
        if !valid_id(id) && tag != "node" {
            return fail(format!("{id}: invalid object id"));
        }
        Ok(())
    }

    /// Adds one parsed object (the output of [`crate::crm::parse::parse`]).
    pub fn add(&mut self, parsed: Element) -> Result<()> {
        let id = created_id(&parsed);
        self.add_object(parsed)?;
        if let Some(id) = id {
            self.remember(id);
        }
        Ok(())
    }

    /// `load update` of an object that exists: the new definition replaces it in place, as an
    /// edit does (a group member stays in its group, generated ids come out as before).
    pub fn update(&mut self, id: &str, parsed: Element) -> Result<()> {
        self.replace_one(id, parsed)
    }

    fn add_object(&mut self, mut parsed: Element) -> Result<()> {
        match parsed.name.as_str() {
            "cluster_property_set" => self.merge_set(parsed, "crm_config", "cib-bootstrap-options"),
            "rsc_defaults" | "op_defaults" => {
                let section = parsed.name.clone();
                let set = parsed
                    .elements()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| Element::new("meta_attributes"));
                let default = if section == "rsc_defaults" {
                    "rsc-options"
                } else {
                    "op-options"
                };
                self.merge_set(set, &section, default)
            }
            "op" => self.add_monitor(parsed),
            "fencing-topology" => self.add_fencing_topology(parsed),
            "node" => {
                let id = parsed
                    .id()
                    .or(parsed.attr("uname"))
                    .unwrap_or_default()
                    .to_string();
                if self.find(&id).is_some() {
                    // crmsh makes an exception for nodes: a node defined again is merged
                    // into the existing one (`merge_from_cli`).
                    return self.merge_node(&id, parsed);
                }
                self.ids().fix_ids(&mut parsed);
                self.section_mut("nodes").children.push(parsed.into());
                Ok(())
            }
            tag => {
                let Some(section) = section_of(tag) else {
                    return fail(format!("{tag} is not supported"));
                };
                let id = parsed.id().unwrap_or_default().to_string();
                self.check_new_id(tag, &id)?;
                self.check_references(&parsed)?;
                self.resolve_id_refs(&mut parsed)?;
                let mut ids = self.ids();
                ids.fix_ids(&mut parsed);
                let mut next = self.clone();
                next.resolve_members(&mut parsed)?;
                let members: Vec<String> = parsed
                    .elements()
                    .filter(|c| is_resource(c))
                    .filter_map(|c| c.id().map(str::to_string))
                    .collect();
                next.section_mut(section).children.push(parsed.into());
                if !members.is_empty() {
                    next.redirect_member_constraints(&id, &members);
                }
                *self = next;
                Ok(())
            }
        }
    }

    /// `$id-ref=X` naming an object (not an attribute set) means that object's first element of
    /// the same kind: `operations $id-ref=d1` is d1's operations (crmsh's `resolve_idref`).
    fn resolve_id_refs(&self, e: &mut Element) -> Result<()> {
        if let Some(r) = e.attr("id-ref").map(str::to_string) {
            let resolved = self
                .find(&r)
                .and_then(|o| {
                    o.element
                        .descendants()
                        .skip(1)
                        .find(|d| d.name == e.name && d.id().is_some())
                        .and_then(Element::id)
                        .map(str::to_string)
                })
                .or_else(|| self.ids().is_used(&r).then(|| r.clone()));
            match resolved {
                Some(id) => e.set_attr("id-ref", id),
                None => return fail(format!("Reference not found: {r}")),
            }
        }
        for child in e.elements_mut() {
            self.resolve_id_refs(child)?;
        }
        Ok(())
    }

    /// The node names of the CIB, in order.
    pub fn node_names(&self) -> Vec<String> {
        self.configuration()
            .and_then(|c| c.child("nodes"))
            .map(|nodes| {
                nodes
                    .children_named("node")
                    .filter_map(|n| n.attr("uname").or(n.id()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `fencing_topology`: levels without a target apply to every node.
    fn add_fencing_topology(&mut self, parsed: Element) -> Result<()> {
        if self
            .configuration()
            .and_then(|c| c.child("fencing-topology"))
            .is_some()
        {
            return fail(
                "Cannot create fencing_topology with ID 'fencing_topology': Found existing fencing_topology with same ID.",
            );
        }
        let nodes = self.node_names();
        let mut topology = Element::new("fencing-topology");
        let (all, specific): (Vec<&Element>, Vec<&Element>) = parsed
            .elements()
            .partition(|l| l.attr("crmsh-all-nodes").is_some());
        for node in &nodes {
            for level in &all {
                let mut l = Element::new("fencing-level").with_attr("target", node);
                l.set_attr("index", level.attr("index").unwrap_or("1"));
                l.set_attr("devices", level.attr("devices").unwrap_or_default());
                topology.children.push(l.into());
            }
        }
        for level in specific {
            topology.children.push(level.clone().into());
        }
        let mut ids = self.ids();
        for level in topology.elements_mut() {
            let id = ids.new_id(level, "fencing");
            level.set_attr("id", id);
        }
        self.configuration_mut().children.push(topology.into());
        Ok(())
    }

    /// `set ID.NAME VALUE`, `set ID.OP.NAME VALUE`, `set ID.OP.INTERVAL.NAME VALUE`.
    pub fn set_path(&mut self, path: &str, value: &str) -> Result<()> {
        let parts: Vec<&str> = path.split('.').collect();
        if !(2..=4).contains(&parts.len()) {
            return fail(format!(
                "Invalid path: \"{path}\"; Valid path: \"id.[op_type.][interval.]name\""
            ));
        }
        let id = parts[0];
        if self.find(id).is_none() {
            return fail(format!("Object {id} not found"));
        }
        let configuration = self.configuration_mut();
        let Some(object) = find_any_mut(configuration, id) else {
            return fail(format!("Object {id} not found"));
        };
        match parts[1..] {
            [name] => {
                let count = object
                    .descendants()
                    .filter(|e| e.name == "nvpair" && e.attr("name") == Some(name))
                    .count();
                if count == 0 {
                    return fail(format!("Attribute not found: {path}"));
                }
                if count > 1 {
                    return fail(format!("Expected 1 attribute named {name}, found {count}"));
                }
                if let Some(nvp) = find_nvpair_mut(object, name) {
                    nvp.set_attr("value", value);
                }
            }
            [op, name] => {
                let ops = object.child_mut("operations");
                let matching: Vec<&mut Element> = ops
                    .into_iter()
                    .flat_map(|o| o.elements_mut())
                    .filter(|e| e.name == "op" && e.attr("name") == Some(op))
                    .collect();
                match matching.len() {
                    0 => return fail(format!("Operation \"{op}\" not found for resource {id}")),
                    1 => {
                        for e in matching {
                            e.set_attr(name, value);
                        }
                    }
                    _ => return fail(format!("Should specify interval of {op}")),
                }
            }
            [op, interval, name] => {
                let op_id = format!("{id}-{op}-{interval}");
                match object
                    .child_mut("operations")
                    .and_then(|o| o.elements_mut().find(|e| e.id() == Some(op_id.as_str())))
                {
                    Some(e) => e.set_attr(name, value),
                    None => {
                        return fail(format!(
                            "Operation \"{op}\" interval \"{interval}\" not found for resource {id}"
                        ));
                    }
                }
            }
            _ => unreachable!("length checked above"),
        }
        Ok(())
    }

    /// Constraints must name existing resources or tags (Pacemaker expands a tag to the
    /// resources it lists), tags existing objects.
    fn check_references(&self, parsed: &Element) -> Result<()> {
        let id = parsed.id().unwrap_or_default();
        let mut resources = self.resource_ids();
        resources.extend(
            self.objects()
                .iter()
                .filter(|o| o.kind == "tag")
                .map(|o| o.id.to_string()),
        );
        let mut named: Vec<&str> = Vec::new();
        match parsed.name.as_str() {
            "rsc_location" | "rsc_colocation" | "rsc_order" | "rsc_ticket" => {
                for attr in ["rsc", "with-rsc", "first", "then"] {
                    named.extend(parsed.attr(attr));
                }
                for set in parsed.children_named("resource_set") {
                    named.extend(set.children_named("resource_ref").filter_map(Element::id));
                }
            }
            "tag" => {
                let all: Vec<String> = self.objects().iter().map(|o| o.id.to_string()).collect();
                for r in parsed.children_named("obj_ref").filter_map(Element::id) {
                    if !all.iter().any(|a| a == r) {
                        return fail(format!("{id}: object {r} does not exist"));
                    }
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
        for r in named {
            if !resources.iter().any(|x| x == r) {
                return fail(format!("{id}: resource {r} does not exist"));
            }
        }
        Ok(())
    }

    /// Replaces `crmsh-ref` placeholders by the resources they name, moved out of the top level.
    fn resolve_members(&mut self, container: &mut Element) -> Result<()> {
        let id = container.id().unwrap_or_default().to_string();
        let refs: Vec<String> = container
            .children_named("crmsh-ref")
            .filter_map(|e| e.id().map(str::to_string))
            .collect();
        let mut members = Vec::new();
        for r in refs {
            let resources = self.section_mut("resources");
            let Some(pos) = resources
                .children
                .iter()
                .position(|n| matches!(n, Node::Element(e) if e.id() == Some(&r)))
            else {
                let nested = self.find(&r).map(|o| o.kind);
                return match nested {
                    Some("primitive" | "group") => fail(format!(
                        "{id}: resource {r} already belongs to a group or clone"
                    )),
                    _ => fail(format!("{id} refers to missing object {r}")),
                };
            };
            let Node::Element(member) = resources.children.remove(pos) else {
                unreachable!("position() matched an element");
            };
            let allowed = match container.name.as_str() {
                "group" | "bundle" => member.name == "primitive",
                _ => matches!(member.name.as_str(), "primitive" | "group"),
            };
            if !allowed {
                return fail(format!(
                    "{id}: {} {r} cannot be a member of a {}",
                    kind_of(&member.name),
                    kind_of(&container.name)
                ));
            }
            members.push(member);
        }
        let mut members = members.into_iter();
        for child in container.children.iter_mut() {
            if matches!(child, Node::Element(e) if e.name == "crmsh-ref")
                && let Some(m) = members.next()
            {
                *child = Node::Element(m);
            }
        }
        Ok(())
    }

    /// `property`, `rsc_defaults`, `op_defaults`: merge into the set with the same id.
    fn merge_set(&mut self, mut set: Element, section: &str, default_id: &str) -> Result<()> {
        if set.attr("id-ref").is_none() && set.id().is_none() {
            set.set_attr("id", default_id);
        }
        let id = set.id().unwrap_or_default().to_string();
        let mut ids = self.ids();
        let set_tag = set.name.clone();
        let sec = self.section_mut(section);
        let existing = sec
            .elements_mut()
            .find(|e| e.name == set_tag && e.id() == Some(id.as_str()));
        match existing {
            Some(existing) => {
                for child in set.children {
                    let Node::Element(nvp) = child else { continue };
                    if nvp.name != "nvpair" {
                        existing.children.push(nvp.into());
                        continue;
                    }
                    let name = nvp.attr("name").unwrap_or_default().to_string();
                    let same = existing
                        .elements_mut()
                        .find(|e| e.name == "nvpair" && e.attr("name") == Some(name.as_str()));
                    match same {
                        Some(old) => match nvp.attr("value") {
                            Some(v) => old.set_attr("value", v),
                            None => {
                                old.remove_attr("value");
                            }
                        },
                        None => {
                            let mut nvp = nvp;
                            if nvp.id().is_none() {
                                let new_id = ids.new_id(&nvp, &id);
                                nvp.set_attr("id", new_id);
                            }
                            existing.children.push(nvp.into());
                        }
                    }
                }
            }
            None => {
                ids.fix_ids(&mut set);
                sec.children.push(set.into());
            }
        }
        Ok(())
    }

    /// A node defined again: its attributes are set and its attribute sets merged, name by
    /// name, into the existing node's sets of the same kind.
    fn merge_node(&mut self, id: &str, new: Element) -> Result<()> {
        let mut ids = self.ids();
        let Some(nodes) = self.configuration_mut().child_mut("nodes") else {
            return fail(format!("node {id} does not exist"));
        };
        let Some(node) = nodes
            .elements_mut()
            .find(|n| n.id().or(n.attr("uname")) == Some(id))
        else {
            return fail(format!("node {id} does not exist"));
        };
        for (name, value) in &new.attributes {
            if name != "id" {
                node.set_attr(name, value);
            }
        }
        for child in new.children {
            let Node::Element(set) = child else { continue };
            let existing = node.elements_mut().find(|e| e.name == set.name);
            match existing {
                Some(existing) => {
                    let set_id = existing.id().unwrap_or(id).to_string();
                    for nvp in set.elements() {
                        let name = nvp.attr("name").unwrap_or_default();
                        let same = existing
                            .elements_mut()
                            .find(|e| e.name == "nvpair" && e.attr("name") == Some(name));
                        match (same, nvp.attr("value")) {
                            (Some(old), Some(v)) => old.set_attr("value", v),
                            (Some(_), None) => {}
                            (None, _) => {
                                let mut nvp = nvp.clone();
                                let new_id = ids.new_id(&nvp, &set_id);
                                nvp.set_attr("id", new_id);
                                existing.children.push(nvp.into());
                            }
                        }
                    }
                }
                None => {
                    let mut set = set;
                    ids.fix_ids(&mut set);
                    node.children.push(set.into());
                }
            }
        }
        Ok(())
    }

    /// `monitor RSC[:ROLE] INTERVAL[:TIMEOUT]`: an op on an existing primitive.
    fn add_monitor(&mut self, mut op: Element) -> Result<()> {
        let rsc = op.remove_attr("rsc").unwrap_or_default();
        let mut ids = self.ids();
        let Some(resources) = self.configuration_mut().child_mut("resources") else {
            return fail(format!("monitor: resource {rsc} does not exist"));
        };
        let Some(prim) = find_element_mut(resources, "primitive", &rsc) else {
            return fail(format!("monitor: resource {rsc} does not exist"));
        };
        let id = ids.new_id(&op, &rsc);
        op.set_attr("id", id);
        prim.child_or_insert("operations").children.push(op.into());
        Ok(())
    }

    /// Deletes objects by id, as crmsh does: a container's members move to the top level and
    /// inherit its simple constraints; a container left without members goes too; constraints
    /// and tags left naming nothing are removed ("hanging").
    pub fn delete(&mut self, ids: &[String]) -> Result<()> {
        let mut next = self.clone();
        let mut objects = Vec::new();
        for id in ids {
            let Some(o) = next.find(id) else {
                return fail(format!("object {id} does not exist"));
            };
            objects.push((show::rank(o.kind), o.id.to_string()));
        }
        objects.sort();
        for (_, id) in objects.iter().rev() {
            next.delete_one(id, false);
        }
        *self = next;
        Ok(())
    }

    /// Deletes one object (and the container it was the last member of); `quiet` leaves out
    /// the notes about hanging constraints.
    fn delete_one(&mut self, id: &str, quiet: bool) {
        if let Some(parent) = self.parent_of(id)
            && self.children_of(&parent).len() == 1
        {
            self.delete_one(&parent, quiet);
        }
        if self.find(id).is_some() {
            self.remove_object(id, quiet);
        }
    }

    /// The container directly holding resource `id`.
    fn parent_of(&self, id: &str) -> Option<String> {
        let resources = self.configuration()?.child("resources")?;
        resources
            .descendants()
            .find(|e| is_container(e) && e.elements().any(|c| c.id() == Some(id) && is_resource(c)))
            .and_then(|e| e.id().map(str::to_string))
    }

    /// The member resources of container `id`.
    fn children_of(&self, id: &str) -> Vec<String> {
        self.find(id)
            .filter(|o| is_container(o.element))
            .map(|o| {
                o.element
                    .elements()
                    .filter(|c| is_resource(c))
                    .filter_map(|c| c.id().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn constraint_ids_naming(&self, rsc: &str) -> Vec<String> {
        let Some(constraints) = self.configuration().and_then(|c| c.child("constraints")) else {
            return Vec::new();
        };
        constraints
            .elements()
            .filter(|c| names_resource(c, rsc))
            .filter_map(|c| c.id().map(str::to_string))
            .collect()
    }

    fn constraint_mut(&mut self, id: &str) -> Option<&mut Element> {
        self.configuration_mut()
            .child_mut("constraints")?
            .elements_mut()
            .find(|c| c.id() == Some(id))
    }

    fn note(&mut self, message: String) {
        self.notes.push(message);
    }

    fn remove_object(&mut self, id: &str, quiet: bool) {
        let Some(kind) = self.find(id).map(|o| o.kind) else {
            return;
        };
        // Made again later, it comes last in session order, as in crmsh's object list.
        self.order.retain(|o| o != id);
        let children = self.children_of(id);
        for child in &children {
            if let Some(node) = take_resource(self.configuration_mut(), child) {
                self.section_mut("resources").children.push(node.into());
            }
        }
        let configuration = self.configuration_mut();
        if kind == "fencing_topology" {
            configuration
                .children
                .retain(|n| !matches!(n, Node::Element(e) if e.name == "fencing-topology"));
        } else {
            remove_top_object(configuration, id, kind == "node");
        }
        if !matches!(
            kind,
            "primitive" | "group" | "clone" | "ms" | "bundle" | "rsc_template"
        ) {
            return;
        }
        self.drop_from_tags(id);
        for cid in self.constraint_ids_naming(id) {
            let Some(c) = self.constraint_mut(&cid) else {
                continue;
            };
            let ckind = kind_of(&c.name);
            let simple = c.child("resource_set").is_none();
            let mut messages = Vec::new();
            if simple
                && let Some(first) = children.first()
                && rename_refs(c, id, first)
            {
                messages.push(format!("modified {ckind}:{cid} from {id} to {first}"));
            }
            let deleted = delete_refs(c, id);
            let silly = silly_constraint(c, id);
            for m in messages {
                self.note(m);
            }
            if silly {
                self.remove_constraint(&cid);
                if !quiet {
                    self.note(format!("hanging {ckind}:{cid} deleted"));
                }
            } else if deleted {
                self.convert_if_two(&cid, true);
                self.note(format!("constraint {ckind}:{cid} updated"));
            }
        }
    }

    fn remove_constraint(&mut self, id: &str) {
        if let Some(constraints) = self.configuration_mut().child_mut("constraints") {
            constraints
                .children
                .retain(|n| !matches!(n, Node::Element(e) if e.id() == Some(id)));
        }
    }

    fn drop_from_tags(&mut self, id: &str) {
        let mut emptied = Vec::new();
        if let Some(tags) = self.configuration_mut().child_mut("tags") {
            for t in tags.elements_mut() {
                let before = t.children.len();
                t.children.retain(
                    |n| !matches!(n, Node::Element(r) if r.name == "obj_ref" && r.id() == Some(id)),
                );
                if before != t.children.len() && t.elements().next().is_none() {
                    emptied.extend(t.id().map(str::to_string));
                }
            }
            tags.children
                .retain(|n| !matches!(n, Node::Element(t) if t.elements().next().is_none()));
        }
        for t in emptied {
            self.note(format!("hanging tag:{t} deleted"));
        }
    }

    /// After a reference change, a constraint left with two resources in sequential sets
    /// becomes a simple one again (crmsh's `rset_convert`).
    fn convert_if_two(&mut self, cid: &str, after_delete: bool) {
        let Some(c) = self.constraint_mut(cid) else {
            return;
        };
        let sets: Vec<&Element> = c.children_named("resource_set").collect();
        if sets.is_empty() {
            return;
        }
        let count: usize = sets
            .iter()
            .map(|s| s.children_named("resource_ref").count())
            .sum();
        let nonsequential = sets.iter().any(|s| {
            s.attr("sequential").and_then(crate::crm::parse::parse_bool) == Some(false)
                && s.children_named("resource_ref").count() > 1
        });
        if count != 2 || (after_delete && nonsequential) {
            return;
        }
        let set_count = sets.len();
        for set in c.elements_mut().filter(|e| e.name == "resource_set") {
            set.remove_attr("sequential");
        }
        let object = show::Object {
            kind: kind_of(&c.name),
            id: cid,
            element: c,
        };
        let text = show::object_cli(&object, c).replace("_rsc_set_ ", "");
        let Ok(tokens) = crate::crm::lex::split(&text) else {
            return;
        };
        let Ok(mut simple) = crate::crm::parse::parse(&tokens) else {
            return;
        };
        if set_count == 1 && simple.name == "rsc_colocation" {
            let rsc = simple.attr("rsc").map(str::to_string);
            let with = simple.attr("with-rsc").map(str::to_string);
            if let Some(w) = with {
                simple.set_attr("rsc", w);
            }
            if let Some(r) = rsc {
                simple.set_attr("with-rsc", r);
            }
        }
        *c = simple;
    }

    /// A new container takes over its members' constraints (crmsh's
    /// `_redirect_children_constraints`); constraints it is left with on both sides go.
    fn redirect_member_constraints(&mut self, container: &str, members: &[String]) {
        for member in members {
            for cid in self.constraint_ids_naming(member) {
                let Some(c) = self.constraint_mut(&cid) else {
                    continue;
                };
                let ckind = kind_of(&c.name);
                if rename_refs(c, member, container) {
                    self.note(format!(
                        "modified {ckind}:{cid} from {member} to {container}"
                    ));
                    self.convert_if_two(&cid, false);
                }
            }
        }
        for cid in self.constraint_ids_naming(container) {
            if self
                .constraint_mut(&cid)
                .is_some_and(|c| silly_constraint(c, container))
            {
                self.remove_constraint(&cid);
            }
        }
    }

    /// Replaces objects by new definitions of the same ids, in place (crmsh's update of an
    /// edited or filtered object): generated ids come out as before, a container's former
    /// members not named any more go back to the top level. New ids are added; `dropped`
    /// objects absent from `new` are deleted.
    pub fn replace_objects(&mut self, dropped: &[String], new: Vec<Element>) -> Result<()> {
        let mut next = self.clone();
        let new_ids: Vec<String> = new.iter().filter_map(object_id).collect();
        let gone: Vec<String> = dropped
            .iter()
            .filter(|d| !new_ids.contains(d))
            .cloned()
            .collect();
        if !gone.is_empty() {
            next.delete(&gone)?;
        }
        for parsed in new {
            let Some(id) = object_id(&parsed) else {
                next.add(parsed)?;
                continue;
            };
            if next.find(&id).is_none() {
                next.add(parsed)?;
                continue;
            }
            next.replace_one(&id, parsed)?;
        }
        *self = next;
        Ok(())
    }

    fn replace_one(&mut self, id: &str, mut parsed: Element) -> Result<()> {
        let Some(old) = self.find(id).map(|o| o.element.clone()) else {
            return self.add(parsed);
        };
        if matches!(
            parsed.name.as_str(),
            "cluster_property_set" | "rsc_defaults" | "op_defaults"
        ) {
            self.remove_object(id, true);
            return self.add(parsed);
        }
        if is_container(&old) || is_container(&parsed) {
            // Former members go back to the top level; the new definition takes what it names.
            for member in self.children_of(id) {
                if let Some(node) = take_resource(self.configuration_mut(), &member) {
                    self.section_mut("resources").children.push(node.into());
                }
            }
            // The old container's own ids (its members are out now) are free for the new one,
            // which takes its place.
            let mut ids = self.ids();
            if let Some(emptied) = self.find(id) {
                for i in emptied.element.descendants().filter_map(Element::id) {
                    ids.remove(i);
                }
            }
            ids.fix_ids(&mut parsed);
            self.resolve_members(&mut parsed)?;
            replace_element(self.configuration_mut(), id, parsed);
            // crmsh redirects members' constraints only for a new container
            // (`_add_element`), not for one updated (`_adjust_children`).
            return Ok(());
        }
        self.check_references(&parsed)?;
        self.resolve_id_refs(&mut parsed)?;
        let mut ids = self.ids();
        for d in old.descendants() {
            if let Some(i) = d.id() {
                ids.remove(i);
            }
        }
        ids.fix_ids(&mut parsed);
        replace_element(self.configuration_mut(), id, parsed);
        Ok(())
    }

    /// The errors `crm_verify` reports that make crmsh refuse a commit, checked here without
    /// running it: resources but no fencing device while `stonith-enabled` is on (its default);
    /// a ticket's `loss-policy=fence` while it is off.
    /// Everything else crm_verify checks is kept valid by construction (ids, references,
    /// scores, agent parameters); `verify` runs the real crm_verify.
    pub fn verify_errors(&self) -> Vec<String> {
        let Some(conf) = self.configuration() else {
            return Vec::new();
        };
        let stonith_enabled = conf
            .child("crm_config")
            .into_iter()
            .flat_map(|c| c.children_named("cluster_property_set"))
            .flat_map(|set| set.children_named("nvpair"))
            .filter(|n| n.attr("name") == Some("stonith-enabled"))
            .filter_map(|n| n.attr("value"))
            .last()
            .and_then(crate::crm::parse::parse_bool)
            .unwrap_or(true);
        let primitives: Vec<&Element> = conf
            .child("resources")
            .map(|r| r.descendants().filter(|e| e.name == "primitive").collect())
            .unwrap_or_default();
        let fencing = primitives
            .iter()
            .any(|p| p.attr("class") == Some("stonith"));
        // In crm_verify's order: resources as unpacked, then the fencing check closing
        // unpack_resources, then the constraints.
        let mut errors = conf
            .child("resources")
            .map(target_role_errors)
            .unwrap_or_default();
        if !stonith_enabled {
            errors.extend(ticket_fence_without_fencing(conf));
        } else if !primitives.is_empty() && !fencing {
            errors.extend(
                [
                    "Resource start-up disabled since no STONITH resources have been defined",
                    "Either configure some or disable STONITH with the stonith-enabled option",
                    "NOTE: Clusters with shared data need STONITH to ensure data integrity",
                ]
                .iter()
                .map(|m| format!("(unpack_resources) \terror: {m}")),
            );
        }
        errors
    }

    /// crmsh's `_test` (`check_structure`): containers hold what they may (a group holds
    /// primitives, a clone or ms exactly one primitive or group) and no id is used twice.
    pub fn check_structure(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(conf) = self.configuration() else {
            return problems;
        };
        let mut seen = std::collections::HashSet::new();
        for e in conf.descendants() {
            // resource_ref and obj_ref name an object by its id; they define none.
            // (A node's id is its own namespace: crmsh allows a resource named like a node.)
            let defines = !matches!(e.name.as_str(), "resource_ref" | "obj_ref" | "node");
            if let Some(id) = e.id().filter(|_| defines)
                && !seen.insert(id)
            {
                problems.push(format!("id {id} is used more than once"));
            }
            let members: Vec<&Element> = e.elements().filter(|c| is_resource(c)).collect();
            let allowed: &[&str] = match e.name.as_str() {
                "group" => &["primitive"],
                "clone" | "master" => &["primitive", "group"],
                _ => continue,
            };
            let id = e.id().unwrap_or_default();
            if let Some(bad) = members.iter().find(|m| !allowed.contains(&m.name.as_str())) {
                problems.push(format!("{id}: a {} cannot hold a {}", e.name, bad.name));
            }
            if e.name != "group" && members.len() != 1 {
                problems.push(format!("{id}: a {} holds exactly one resource", e.name));
            }
            if e.name == "group" && members.is_empty() {
                problems.push(format!("{id}: a group holds at least one primitive"));
            }
        }
        problems
    }

    /// Renames an object and every reference to it.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<()> {
        let Some(kind) = self.find(old).map(|o| o.kind) else {
            return fail(format!("object {old} does not exist"));
        };
        if self.ids().is_used(new) {
            return fail(format!("id {new} is already in use"));
        }
        if !valid_id(new) {
            return fail(format!("{new}: invalid object id"));
        }
        let constraints = self.constraint_ids_naming(old);
        for id in self.order.iter_mut().filter(|id| *id == old) {
            *id = new.to_string();
        }
        let configuration = self.configuration_mut();
        rename_in(configuration, old, new, kind == "node");
        for cid in constraints {
            let ckind = self
                .constraint_mut(&cid)
                .map(|c| kind_of(&c.name))
                .unwrap_or("constraint");
            self.note(format!("modified {ckind}:{cid} from {old} to {new}"));
        }
        Ok(())
    }

    /// crmsh's `erase`: every object but the nodes goes. Objects without members are deleted
    /// one by one in session order, as `delete` would delete them (containers follow their last
    /// member; constraints are updated or redirected on the way, with the same notes), except
    /// that constraints left hanging go silently; whatever remains then goes too.
    pub fn erase(&mut self) {
        let leaves: Vec<String> = self
            .objects_in_session_order()
            .iter()
            .filter(|o| o.kind != "node" && !is_constraint_kind(o.kind))
            .filter(|o| !(is_container(o.element) && o.element.elements().any(is_resource)))
            .map(|o| o.id.to_string())
            .collect();
        for id in leaves {
            self.delete_one(&id, true);
        }
        let configuration = self.configuration_mut();
        for name in [
            "crm_config",
            "resources",
            "constraints",
            "rsc_defaults",
            "op_defaults",
        ] {
            if let Some(sec) = configuration.child_mut(name) {
                sec.children.clear();
            }
        }
        configuration.children.retain(|n| {
            !matches!(n, Node::Element(e) if matches!(e.name.as_str(), "tags" | "alerts" | "fencing-topology"))
        });
    }

    /// `erase nodes`: the nodes only.
    pub fn erase_nodes(&mut self) {
        if let Some(nodes) = self.configuration_mut().child_mut("nodes") {
            nodes.children.clear();
        }
    }

    /// The objects in crmsh's session order (as read, by kind; then as created).
    pub fn objects_in_session_order(&self) -> Vec<show::Object<'_>> {
        let mut objects = self.objects();
        let position = |id: &str| self.order.iter().position(|o| o == id);
        objects.sort_by_key(|o| position(o.id).unwrap_or(usize::MAX));
        objects
    }
}

fn is_constraint_kind(kind: &str) -> bool {
    matches!(kind, "location" | "colocation" | "order" | "rsc_ticket")
}

/// The id of the object a parsed statement creates or merges into (None for `monitor`).
fn created_id(parsed: &Element) -> Option<String> {
    let own = parsed.id().map(str::to_string);
    match parsed.name.as_str() {
        "op" => None,
        "fencing-topology" => Some("fencing_topology".into()),
        "cluster_property_set" => own.or_else(|| Some("cib-bootstrap-options".into())),
        "rsc_defaults" | "op_defaults" => {
            let default = if parsed.name == "rsc_defaults" {
                "rsc-options"
            } else {
                "op-options"
            };
            let set = parsed.elements().next().and_then(Element::id);
            Some(set.unwrap_or(default).to_string())
        }
        "node" => own.or_else(|| parsed.attr("uname").map(str::to_string)),
        _ => own,
    }
}

/// crmsh's `sort_container_children` (part of its `sanitize_cib`, run on every CIB it reads):
/// in groups, clones and bundles, the member resources move after everything else, in their
/// order. It shows (a bundle read back prints `meta` before `primitive`) and writes them so.
pub fn members_last(doc: &mut Document) {
    fn walk(e: &mut Element) {
        if matches!(e.name.as_str(), "group" | "clone" | "master" | "bundle") {
            let (members, rest): (Vec<Node>, Vec<Node>) = std::mem::take(&mut e.children)
                .into_iter()
                .partition(|n| {
                    matches!(n, Node::Element(c) if matches!(c.name.as_str(), "primitive" | "group"))
                });
            e.children = rest;
            e.children.extend(members);
        }
        for child in e.elements_mut() {
            walk(child);
        }
    }
    if let Some(resources) = doc
        .root
        .child_mut("configuration")
        .and_then(|c| c.child_mut("resources"))
    {
        walk(resources);
    }
}

/// Pacemaker's `get_target_role` refusing a `target-role` that names no role (its
/// `text2role` knows Stopped, Started, Unpromoted/Slave and Promoted/Master, in any case),
/// for each resource in the order it unpacks them (a container before its members).
fn target_role_errors(resources: &Element) -> Vec<String> {
    const ROLES: &[&str] = &[
        "stopped",
        "started",
        "unpromoted",
        "slave",
        "promoted",
        "master",
    ];
    let mut errors = Vec::new();
    for rsc in resources.descendants().filter(|e| is_resource(e)) {
        let roles = rsc
            .children_named("meta_attributes")
            .flat_map(|set| set.children_named("nvpair"))
            .filter(|n| n.attr("name") == Some("target-role"))
            .filter_map(|n| n.attr("value"));
        for value in roles {
            if ROLES.contains(&value.to_ascii_lowercase().as_str()) {
                continue;
            }
            if !value.eq_ignore_ascii_case("unknown") {
                errors.push(format!("(text2role) \terror: Unknown role: {value}"));
            }
            errors.push(format!(
                "(get_target_role) \terror: Ignoring 'target-role' for {} because '{value}' \
                 is not valid",
                rsc.id().unwrap_or_default()
            ));
        }
    }
    errors
}

/// Pacemaker's `rsc_ticket_new` refusing `loss-policy=fence` with fencing disabled: once per
/// resource the ticket constrains (each `resource_ref` of its sets, or its `rsc`).
fn ticket_fence_without_fencing(conf: &Element) -> Vec<String> {
    let Some(constraints) = conf.child("constraints") else {
        return Vec::new();
    };
    constraints
        .children_named("rsc_ticket")
        .filter(|t| {
            t.attr("loss-policy")
                .is_some_and(|p| p.eq_ignore_ascii_case("fence"))
        })
        .flat_map(|t| {
            let ticket = t.attr("ticket").unwrap_or_default();
            let sets = t.children_named("resource_set");
            let refs = sets.flat_map(|s| s.children_named("resource_ref")).count();
            let resources = if t.attr("rsc").is_some() { 1 } else { refs };
            std::iter::repeat_n(
                format!(
                    "(rsc_ticket_new) \terror: Resetting 'loss-policy' for ticket '{ticket}' \
                     to 'stop' because fencing is not configured"
                ),
                resources,
            )
        })
        .collect()
}

/// crmsh's `sanitize_cib`, run on every CIB it reads: members last ([`members_last`]) and
/// attributes at their default value dropped ([`drop_default_attrs`]). Both show in `show`
/// and in what a later commit writes for the objects it changes.
pub fn sanitize(doc: &mut Document) {
    members_last(doc);
    drop_default_attrs(&mut doc.root);
}

/// crmsh's `remove_dflt_attrs` and `drop_attr_defaults`: an optional attribute set to its
/// default (a normal node's type, a sequential set, an `and` rule, a string comparison) is
/// dropped, so `show` never prints it.
pub fn drop_default_attrs(e: &mut Element) {
    let defaults: &[(&str, &str)] = match e.name.as_str() {
        "node" => &[("type", "normal")],
        "resource_set" => &[("sequential", "true"), ("require-all", "true")],
        "rule" => &[("boolean-op", "and")],
        "expression" => &[("type", "string")],
        _ => &[],
    };
    for (name, value) in defaults {
        if e.attr(name) == Some(value) {
            e.remove_attr(name);
        }
    }
    for child in e.elements_mut() {
        drop_default_attrs(child);
    }
}

/// crmsh's `is_id_valid`: an XML NCName-like id.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn find_any_mut<'a>(e: &'a mut Element, id: &str) -> Option<&'a mut Element> {
    if e.id() == Some(id) && e.name != "nvpair" {
        return Some(e);
    }
    e.elements_mut().find_map(|c| find_any_mut(c, id))
}

fn find_nvpair_mut<'a>(e: &'a mut Element, name: &str) -> Option<&'a mut Element> {
    if e.name == "nvpair" && e.attr("name") == Some(name) {
        return Some(e);
    }
    e.elements_mut().find_map(|c| find_nvpair_mut(c, name))
}

fn find_element_mut<'a>(e: &'a mut Element, tag: &str, id: &str) -> Option<&'a mut Element> {
    if e.name == tag && e.id() == Some(id) {
        return Some(e);
    }
    e.elements_mut().find_map(|c| find_element_mut(c, tag, id))
}

/// The object id a parsed statement defines.
fn object_id(e: &Element) -> Option<String> {
    let inner = if matches!(e.name.as_str(), "rsc_defaults" | "op_defaults") {
        e.elements().next()
    } else {
        Some(e)
    };
    inner
        .and_then(|i| i.id().or(i.attr("uname")))
        .map(str::to_string)
}

/// Puts `new` where the object `id` is.
fn replace_element(e: &mut Element, id: &str, new: Element) -> bool {
    for child in e.children.iter_mut() {
        if let Node::Element(c) = child {
            let is_object = section_of(&c.name).is_some() || c.name == "meta_attributes";
            if is_object
                && (c.id() == Some(id) || (c.name == "node" && c.attr("uname") == Some(id)))
            {
                *child = Node::Element(new);
                return true;
            }
        }
    }
    e.elements_mut()
        .any(|c| replace_element(c, id, new.clone()))
}

fn is_container(e: &Element) -> bool {
    matches!(e.name.as_str(), "group" | "clone" | "master" | "bundle")
}

fn is_resource(e: &Element) -> bool {
    matches!(
        e.name.as_str(),
        "primitive" | "group" | "clone" | "master" | "bundle"
    )
}

/// Whether constraint `c` names resource `rsc` (crmsh's `rsc_constraint`).
fn names_resource(c: &Element, rsc: &str) -> bool {
    RSC_REFS.iter().any(|a| c.attr(a) == Some(rsc))
        || c.children_named("resource_set")
            .flat_map(|s| s.children_named("resource_ref"))
            .any(|r| r.id() == Some(rsc))
}

const RSC_REFS: [&str; 4] = ["rsc", "with-rsc", "first", "then"];

/// Renames references in a constraint; duplicates in sets are dropped (crmsh's `rename_rscref`).
fn rename_refs(c: &mut Element, old: &str, new: &str) -> bool {
    let mut modified = false;
    for a in RSC_REFS {
        if c.attr(a) == Some(old) {
            c.set_attr(a, new);
            modified = true;
        }
    }
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for set in c.elements_mut().filter(|e| e.name == "resource_set") {
        for r in set.elements_mut().filter(|e| e.name == "resource_ref") {
            if r.id() == Some(old) {
                r.set_attr("id", new);
                modified = true;
            }
            *seen
                .entry(r.id().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    // rset_uniq: while an id is referenced more than once, drop one of its references.
    for set in c.elements_mut().filter(|e| e.name == "resource_set") {
        set.children.retain(|n| match n {
            Node::Element(r) if r.name == "resource_ref" => {
                let count = seen.get_mut(r.id().unwrap_or_default());
                match count {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    _ => true,
                }
            }
            _ => true,
        });
    }
    modified
}

/// Removes references to `rsc`; empty sets go (crmsh's `delete_rscref`).
fn delete_refs(c: &mut Element, rsc: &str) -> bool {
    let mut modified = false;
    for a in RSC_REFS {
        if c.attr(a) == Some(rsc) {
            c.remove_attr(a);
            modified = true;
        }
    }
    for set in c.elements_mut().filter(|e| e.name == "resource_set") {
        let before = set.children.len();
        set.children.retain(
            |n| !matches!(n, Node::Element(r) if r.name == "resource_ref" && r.id() == Some(rsc)),
        );
        modified |= before != set.children.len();
    }
    let before = c.children.len();
    c.children.retain(
        |n| !matches!(n, Node::Element(s) if s.name == "resource_set" && s.children_named("resource_ref").next().is_none()),
    );
    modified | (before != c.children.len())
}

/// A constraint from `rsc` to itself, or naming too few resources (crmsh's `silly_constraint`).
fn silly_constraint(c: &Element, rsc: &str) -> bool {
    let single = matches!(c.name.as_str(), "rsc_location" | "rsc_ticket");
    let refs: usize = c
        .children_named("resource_set")
        .map(|s| s.children_named("resource_ref").count())
        .sum();
    if refs > 0 {
        return if single { refs < 1 } else { refs <= 1 };
    }
    let count = RSC_REFS.iter().filter(|a| c.attr(a).is_some()).count();
    let own = RSC_REFS.iter().filter(|a| c.attr(a) == Some(rsc)).count();
    if single {
        count < 1 && c.attr("rsc-pattern").is_none()
    } else {
        own == 2 || count < 2
    }
}

/// Takes resource `id` out of wherever it is.
fn take_resource(e: &mut Element, id: &str) -> Option<Element> {
    if let Some(pos) = e
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(c) if c.id() == Some(id) && is_resource(c)))
    {
        let Node::Element(found) = e.children.remove(pos) else {
            unreachable!("position() matched an element");
        };
        return Some(found);
    }
    e.elements_mut().find_map(|c| take_resource(c, id))
}

/// Removes top-level object `id` (a resource wherever it is, or a section's object).
fn remove_top_object(e: &mut Element, id: &str, node: bool) -> bool {
    let before = e.children.len();
    e.children.retain(|n| match n {
        Node::Element(c) => {
            let matches =
                c.id() == Some(id) || (node && c.name == "node" && c.attr("uname") == Some(id));
            !(matches && (section_of(&c.name).is_some() || c.name == "meta_attributes"))
        }
        _ => true,
    });
    before != e.children.len() || e.elements_mut().any(|c| remove_top_object(c, id, node))
}

fn rename_in(e: &mut Element, old: &str, new: &str, node: bool) {
    let is_object = section_of(&e.name).is_some() || e.name == "meta_attributes";
    if is_object && (e.id() == Some(old) || (node && e.attr("uname") == Some(old))) {
        e.set_attr("id", new);
    }
    if matches!(e.name.as_str(), "resource_ref" | "obj_ref") && e.id() == Some(old) {
        e.set_attr("id", new);
    }
    if matches!(
        e.name.as_str(),
        "rsc_location" | "rsc_colocation" | "rsc_order" | "rsc_ticket"
    ) {
        for a in ["rsc", "with-rsc", "first", "then"] {
            if e.attr(a) == Some(old) {
                e.set_attr(a, new);
            }
        }
    }
    for c in e.elements_mut() {
        rename_in(c, old, new, node);
    }
}
