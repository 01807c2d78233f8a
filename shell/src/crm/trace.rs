//! `resource trace|untrace`: the `trace_ra` (and `trace_dir`) operation attributes that make
//! resource-agents' `ocf-shellfuncs` write a shell trace of each call, set the way crmsh 4.4.1
//! sets them.
//!
//! Tracing an operation the primitive does not configure adds it as `<op name=OP interval=0>`
//! (id `RSC-OP-0`), holding an `instance_attributes` set `OPID-instance_attributes` with the
//! nvpair `trace_ra=1`; a configured operation gets the nvpair in its own set. Untracing removes
//! the nvpairs, and an operation left with nothing but its name, id and a zero interval is
//! removed again (with `operations` when it empties).

use hapx_cib::xml::{Element, Node};

use crate::crm::ids::IdStore;
use crate::session::ops::msec;

pub const TRACE_RA: &str = "trace_ra";
pub const TRACE_DIR: &str = "trace_dir";

/// Which operations a `trace`/`untrace` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No operation: start and stop (promote and demote for a promotable clone's primitive),
    /// and every configured operation.
    Resource,
    /// Every configured operation of this name (`probe` is `monitor` with interval 0).
    Op(String),
    /// The operation with this name and interval.
    OpInterval(String, String),
}

/// A trace request that cannot be carried out, worded as crmsh words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TraceError(pub String);

fn ops(prim: &Element) -> impl Iterator<Item = &Element> {
    prim.children_named("operations")
        .flat_map(|o| o.children_named("op"))
}

fn same_interval(a: Option<&str>, b: &str) -> bool {
    msec(Some(a.unwrap_or("0"))) == msec(Some(b))
}

/// Turns tracing on for `target` of primitive `prim`; `promotable` says whether it is the
/// primitive of a promotable clone. `dir` is the optional `trace_dir`.
pub fn trace(
    prim: &mut Element,
    target: &Target,
    dir: Option<&str>,
    promotable: bool,
    ids: &mut IdStore,
) -> Result<(), TraceError> {
    let id = prim.id().unwrap_or_default().to_string();
    match target {
        Target::Resource => {
            let mut names = vec!["start", "stop"];
            if promotable {
                names.extend(["promote", "demote"]);
            }
            let configured: Vec<String> = ops(prim)
                .filter_map(|o| o.attr("name").map(str::to_string))
                .collect();
            for name in names {
                if !configured.iter().any(|c| c == name) {
                    add_op(prim, name, "0", dir, ids);
                }
            }
            for_each_op(prim, |_| true, |op| set_op_attrs(op, dir, ids));
        }
        Target::Op(name) => {
            if !ops(prim).any(|o| o.attr("name") == Some(name)) {
                if name == "monitor" {
                    return Err(TraceError(format!(
                        "No monitor operation configured for {id}"
                    )));
                }
                add_op(prim, name, "0", dir, ids);
            } else {
                for_each_op(
                    prim,
                    |o| o.attr("name") == Some(name),
                    |op| set_op_attrs(op, dir, ids),
                );
            }
        }
        Target::OpInterval(name, interval) => {
            let matches = |o: &Element| {
                o.attr("name") == Some(name) && same_interval(o.attr("interval"), interval)
            };
            if ops(prim).any(matches) {
                for_each_op(prim, matches, |op| set_op_attrs(op, dir, ids));
            } else if msec(Some(interval)) != 0 {
                return Err(TraceError(format!(
                    "Operation {name} with interval {interval} not found in {id}"
                )));
            } else {
                add_op(prim, name, interval, dir, ids);
            }
        }
    }
    Ok(())
}

/// Turns tracing off for `target` of primitive `prim`.
pub fn untrace(prim: &mut Element, target: &Target) -> Result<(), TraceError> {
    let id = prim.id().unwrap_or_default().to_string();
    let traced = |o: &Element| {
        o.children_named("instance_attributes")
            .flat_map(|s| s.children_named("nvpair"))
            .any(|n| n.attr("name") == Some(TRACE_RA))
    };
    match target {
        Target::Resource => for_each_op(prim, traced, remove_trace),
        Target::Op(name) => {
            if !ops(prim).any(|o| o.attr("name") == Some(name)) {
                return Err(TraceError(format!("Operation {name} not found in {id}")));
            }
            for_each_op(prim, |o| o.attr("name") == Some(name), remove_trace);
        }
        Target::OpInterval(name, interval) => {
            let matches = |o: &Element| {
                o.attr("name") == Some(name) && same_interval(o.attr("interval"), interval)
            };
            if !ops(prim).any(matches) {
                return Err(TraceError(format!(
                    "Operation {name} with interval {interval} not found in {id}"
                )));
            }
            for_each_op(prim, matches, remove_trace);
        }
    }
    drop_dummy_ops(prim);
    Ok(())
}

fn for_each_op(
    prim: &mut Element,
    select: impl Fn(&Element) -> bool,
    mut change: impl FnMut(&mut Element),
) {
    for operations in prim.elements_mut().filter(|e| e.name == "operations") {
        for op in operations
            .elements_mut()
            .filter(|e| e.name == "op" && select(e))
        {
            change(op);
        }
    }
}

/// A new `<op name interval id>` with the trace attributes, at the end of `operations`.
fn add_op(prim: &mut Element, name: &str, interval: &str, dir: Option<&str>, ids: &mut IdStore) {
    let mut op = Element::new("op")
        .with_attr("name", name)
        .with_attr("interval", interval);
    let id = ids.new_id(&op, prim.id().unwrap_or_default());
    op.set_attr("id", id);
    set_op_attrs(&mut op, dir, ids);
    if prim.child("operations").is_none() {
        prim.children.push(Element::new("operations").into());
    }
    if let Some(operations) = prim.child_mut("operations") {
        operations.children.push(op.into());
    }
}

/// `trace_ra=1` (and `trace_dir`) in the operation's instance attributes.
fn set_op_attrs(op: &mut Element, dir: Option<&str>, ids: &mut IdStore) {
    set_op_attr(op, TRACE_RA, "1", ids);
    if let Some(dir) = dir {
        set_op_attr(op, TRACE_DIR, dir, ids);
    }
}

fn set_op_attr(op: &mut Element, name: &str, value: &str, ids: &mut IdStore) {
    if op.child("instance_attributes").is_none() {
        let mut set = Element::new("instance_attributes");
        let id = ids.new_id(&set, op.id().unwrap_or_default());
        set.set_attr("id", id);
        op.children.push(set.into());
    }
    let Some(set) = op.child_mut("instance_attributes") else {
        return;
    };
    if let Some(nvp) = set
        .elements_mut()
        .find(|n| n.name == "nvpair" && n.attr("name") == Some(name))
    {
        nvp.set_attr("value", value);
        return;
    }
    let mut nvp = Element::new("nvpair")
        .with_attr("name", name)
        .with_attr("value", value);
    let id = ids.new_id(&nvp, set.id().unwrap_or_default());
    nvp.set_attr("id", id);
    set.children.push(nvp.into());
}

/// Removes `trace_ra` and `trace_dir` from an operation; a set left empty goes too.
fn remove_trace(op: &mut Element) {
    for set in op
        .elements_mut()
        .filter(|e| e.name == "instance_attributes")
    {
        set.children.retain(|n| {
            !matches!(n, Node::Element(e) if e.name == "nvpair"
                && matches!(e.attr("name"), Some(TRACE_RA | TRACE_DIR)))
        });
    }
    op.children.retain(|n| match n {
        Node::Element(e) => !(e.name == "instance_attributes" && e.elements().next().is_none()),
        _ => true,
    });
}

/// crmsh's `is_dummy_operation`: only name, id and a zero interval, no children.
fn is_dummy(op: &Element) -> bool {
    let mut names: Vec<&str> = op.attributes.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    op.elements().next().is_none()
        && msec(Some(op.attr("interval").unwrap_or("0"))) == 0
        && names == ["id", "interval", "name"]
}

fn drop_dummy_ops(prim: &mut Element) {
    for operations in prim.elements_mut().filter(|e| e.name == "operations") {
        operations
            .children
            .retain(|n| !matches!(n, Node::Element(op) if op.name == "op" && is_dummy(op)));
    }
    prim.children.retain(|n| match n {
        Node::Element(e) => !(e.name == "operations" && e.elements().next().is_none()),
        _ => true,
    });
}
