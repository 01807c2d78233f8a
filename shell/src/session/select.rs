//! Which objects `show` (and friends) name: crmsh's `filter_objects`.
//!
//! Specs are ids (with `*`/`?` wildcards), `type:KIND` (every object of that kind),
//! `tag:TAG` (the objects a tag lists), `related:NAME` (what constrains, lists or holds
//! a resource, and the resources of an agent type) and `changed` (edited since the last commit). Specs
//! add up (`or`, the default); `and` keeps what the next spec also selects. No spec selects
//! everything. An id that matches nothing is an error naming it.

use crate::crm::show::Object;
use hapx_cib::xml::Element;

/// The indexes into `all` of the selected objects, in display order, or the spec that
/// named nothing.
pub fn filter(
    all: &[Object<'_>],
    specs: &[&str],
    changed: impl Fn(&Object<'_>) -> bool,
) -> Result<Vec<usize>, String> {
    if specs.is_empty() {
        return Ok((0..all.len()).collect());
    }
    let mut set: Vec<usize> = Vec::new();
    let mut and_set: Option<Vec<usize>> = None;
    for spec in specs {
        match *spec {
            "or" => continue,
            "and" => {
                and_set = Some(std::mem::take(&mut set));
                continue;
            }
            _ => {}
        }
        let found: Vec<usize> = if *spec == "changed" {
            indexes(all, |o| changed(o))
        } else if let Some(kind) = spec.strip_prefix("type:") {
            indexes(all, |o| o.kind == kind)
        } else if let Some(tag) = spec.strip_prefix("tag:") {
            let refs: Vec<&str> = all
                .iter()
                .filter(|o| o.kind == "tag" && o.id == tag)
                .flat_map(|o| o.element.children_named("obj_ref"))
                .filter_map(|r| r.id())
                .collect();
            indexes(all, |o| o.kind != "tag" && refs.contains(&o.id))
        } else if let Some(name) = spec.strip_prefix("related:") {
            related(all, name)
        } else {
            let found = indexes(all, |o| wildcard_match(spec, o.id));
            if found.is_empty() {
                return Err(spec.to_string());
            }
            found
        };
        for i in found {
            if !set.contains(&i) {
                set.push(i);
            }
        }
        if let Some(previous) = and_set.take() {
            set.retain(|i| previous.contains(i));
        }
    }
    if let Some(previous) = and_set {
        set = previous;
    }
    set.sort_unstable();
    Ok(set)
}

/// crmsh's `related:NAME`: the objects NAME matches, the objects related to the resource it
/// names (constraints on it, tags listing it, containers holding it) and the resources of
/// agent type NAME (`Dummy`, `ocf:Dummy`, `ocf:heartbeat:Dummy`). Never an error.
fn related(all: &[Object<'_>], name: &str) -> Vec<usize> {
    let mut found = indexes(all, |o| wildcard_match(name, o.id));
    let resource = found.first().map(|&i| &all[i]).filter(|o| {
        matches!(
            o.element.name.as_str(),
            "primitive" | "group" | "clone" | "master" | "template" | "bundle"
        )
    });
    if let Some(rsc) = resource {
        found.extend(indexes(all, |o| is_related(rsc.id, o.element)));
    }
    let parts: Vec<&str> = name.split(':').collect();
    found.extend(indexes(all, |o| {
        let e = o.element;
        let attr = |a| e.attr(a).unwrap_or_default();
        match parts.as_slice() {
            [class, provider, kind] => {
                attr("type") == *kind && attr("provider") == *provider && attr("class") == *class
            }
            [class, kind] => attr("type") == *kind && attr("class") == *class,
            [kind] => !kind.is_empty() && attr("type") == *kind,
            _ => false,
        }
    }));
    found
}

/// crmsh's `is_related`: `e` constrains, lists or contains the resource `id`.
fn is_related(id: &str, e: &Element) -> bool {
    match e.name.as_str() {
        "rsc_location" | "rsc_colocation" | "rsc_order" | "rsc_ticket" => {
            ["rsc", "with-rsc", "first", "then"]
                .iter()
                .any(|a| e.attr(a) == Some(id))
                || e.children_named("resource_set")
                    .flat_map(|s| s.children_named("resource_ref"))
                    .any(|r| r.id() == Some(id))
        }
        "tag" => e
            .descendants()
            .any(|r| r.name == "obj_ref" && r.id() == Some(id)),
        "group" | "clone" | "master" | "bundle" => e.descendants().any(|c| {
            matches!(c.name.as_str(), "primitive" | "group" | "clone" | "master")
                && c.id() == Some(id)
        }),
        _ => false,
    }
}

fn indexes(all: &[Object<'_>], keep: impl Fn(&Object<'_>) -> bool) -> Vec<usize> {
    all.iter()
        .enumerate()
        .filter(|(_, o)| keep(o))
        .map(|(i, _)| i)
        .collect()
}

/// fnmatch-style `*` and `?` (crmsh's `find_objects`).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_intersects_or_adds_and_missing_ids_are_named() {
        let p1 = Element::new("primitive").with_attr("id", "p1");
        let p2 = Element::new("primitive").with_attr("id", "p2");
        let l1 = Element::new("rsc_location").with_attr("id", "l1");
        let tag = Element::new("tag")
            .with_attr("id", "ones")
            .with_child(Element::new("obj_ref").with_attr("id", "l1"))
            .with_child(Element::new("obj_ref").with_attr("id", "p1"));
        let all = [
            Object {
                kind: "primitive",
                id: "p1",
                element: &p1,
            },
            Object {
                kind: "primitive",
                id: "p2",
                element: &p2,
            },
            Object {
                kind: "tag",
                id: "ones",
                element: &tag,
            },
            Object {
                kind: "location",
                id: "l1",
                element: &l1,
            },
        ];
        let none = |_: &Object<'_>| false;
        assert_eq!(
            filter(&all, &["tag:ones", "and", "type:location"], none),
            Ok(vec![3])
        );
        assert_eq!(filter(&all, &["tag:ones", "and", "p1"], none), Ok(vec![0]));
        assert_eq!(filter(&all, &["p*"], none), Ok(vec![0, 1]));
        assert_eq!(filter(&all, &["p2", "or", "l1"], none), Ok(vec![1, 3]));
        assert_eq!(filter(&all, &["nosuch"], none), Err("nosuch".to_string()));
    }
}
