//! CIB objects back to crm syntax, formatted exactly as crmsh's `configure show` prints them.
//!
//! Objects come out in crmsh's order (nodes, primitives, groups, ms, clones, tags, constraints,
//! tickets, properties, defaults; by id within a kind), one per line with long objects broken
//! into ` \` + newline + tab continuation lines.

use hapx_cib::xml::{Element, Node};

/// A top-level configuration object: its crm kind, id, and element.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub kind: &'static str,
    pub id: &'a str,
    pub element: &'a Element,
}

/// crmsh's display rank of an object kind.
pub fn rank(kind: &str) -> u32 {
    match kind {
        "node" => 0,
        "rsc_template" => 1,
        "primitive" => 2,
        "bundle" => 3,
        "group" => 4,
        "ms" => 5,
        "clone" => 6,
        "op" => 7,
        "tag" => 8,
        "location" | "colocation" | "order" => 9,
        "rsc_ticket" | "fencing_topology" => 10,
        "property" => 11,
        "rsc_defaults" => 12,
        "op_defaults" => 13,
        "alert" => 14,
        _ => 1000,
    }
}

/// Every object of `configuration`, in display order.
pub fn objects(configuration: &Element) -> Vec<Object<'_>> {
    let mut out = objects_in_document_order(configuration);
    out.sort_by(|a, b| (rank(a.kind), a.id).cmp(&(rank(b.kind), b.id)));
    out
}

/// Every object of `configuration` as the document holds them (containers before members).
pub fn objects_in_document_order(configuration: &Element) -> Vec<Object<'_>> {
    let mut out = Vec::new();
    for section in configuration.elements() {
        match section.name.as_str() {
            "nodes" => push_kind(&mut out, section, "node", "node"),
            "resources" => push_resources(&mut out, section),
            "constraints" => {
                push_kind(&mut out, section, "rsc_location", "location");
                push_kind(&mut out, section, "rsc_colocation", "colocation");
                push_kind(&mut out, section, "rsc_order", "order");
                push_kind(&mut out, section, "rsc_ticket", "rsc_ticket");
            }
            "crm_config" => push_kind(&mut out, section, "cluster_property_set", "property"),
            "rsc_defaults" => push_kind(&mut out, section, "meta_attributes", "rsc_defaults"),
            "op_defaults" => push_kind(&mut out, section, "meta_attributes", "op_defaults"),
            "tags" => push_kind(&mut out, section, "tag", "tag"),
            "alerts" => push_kind(&mut out, section, "alert", "alert"),
            "fencing-topology" => out.push(Object {
                kind: "fencing_topology",
                id: "fencing_topology",
                element: section,
            }),
            _ => {}
        }
    }
    out
}

fn push_kind<'a>(out: &mut Vec<Object<'a>>, section: &'a Element, tag: &str, kind: &'static str) {
    for e in section.elements().filter(|e| e.name == tag) {
        let id = e.id().or(e.attr("uname")).unwrap_or_default();
        out.push(Object {
            kind,
            id,
            element: e,
        });
    }
}

fn push_resources<'a>(out: &mut Vec<Object<'a>>, parent: &'a Element) {
    for e in parent.elements() {
        let kind = match e.name.as_str() {
            "primitive" => "primitive",
            "template" => "rsc_template",
            "group" => "group",
            "clone" => "clone",
            "master" => "ms",
            "bundle" => "bundle",
            _ => continue,
        };
        out.push(Object {
            kind,
            id: e.id().unwrap_or_default(),
            element: e,
        });
        if matches!(kind, "group" | "clone" | "ms" | "bundle") {
            push_resources(out, e);
        }
    }
}

/// `configure show` for the given objects: each object's text, joined by newlines.
pub fn show(objects: &[Object<'_>], cib: &Element) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str(&object_cli(o, cib));
        out.push('\n');
    }
    out
}

fn no_quotes(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn quote_wrap(v: &str) -> String {
    if no_quotes(v) {
        v.to_string()
    } else if v.contains('"') {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        format!("\"{v}\"")
    }
}

fn nvpair_format(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{name}={}", quote_wrap(v)),
        None => name.to_string(),
    }
}

/// Whether an element named `tag` elsewhere refers to `id` with `id-ref`.
fn is_id_refd(cib: &Element, tag: &str, id: &str) -> bool {
    cib.descendants()
        .any(|e| e.name == tag && e.attr("id-ref") == Some(id))
}

fn cli_nvpair(nvp: &Element) -> String {
    let name = nvp.attr("name");
    if let Some(idref) = nvp.attr("id-ref") {
        return match name {
            Some(n) => format!("@{idref}:{n}"),
            None => format!("@{idref}"),
        };
    }
    // crmsh would print `$id:` for a referenced nvpair, but it never records references to
    // nvpairs (only to attribute sets, rules and operations), so `name=value` it is.
    nvpair_format(name.unwrap_or_default(), nvp.attr("value"))
}

fn cli_format(lines: &[String]) -> String {
    lines.join(" \\\n\t")
}

fn get_score(e: &Element) -> String {
    match e.attr("score") {
        Some(s) if !s.is_empty() => s.replace("INFINITY", "inf"),
        _ => e.attr("score-attribute").unwrap_or_default().to_string(),
    }
}

fn exp2cli(e: &Element) -> String {
    let mut operation = e.attr("operation").unwrap_or_default().to_string();
    if let Some(t) = e.attr("type") {
        operation = format!("{t}:{operation}");
    }
    let attribute = e.attr("attribute").unwrap_or_default();
    match e.attr("value") {
        None | Some("") => format!("{operation} {attribute}"),
        Some(value) => match e.attr("value-source") {
            None | Some("literal") => format!("{attribute} {operation} {value}"),
            Some(source) => format!("{attribute} {operation} {source}{{{value}}}"),
        },
    }
}

fn date_exp2cli(e: &Element) -> String {
    let operation = e.attr("operation").unwrap_or_default();
    let shown = match operation {
        "in_range" => "in",
        "date_spec" => "spec",
        other => other,
    };
    let mut l = vec!["date".to_string(), shown.to_string()];
    if operation == "lt" || operation == "gt" {
        let key = if operation == "lt" { "end" } else { "start" };
        l.push(quote_wrap(e.attr(key).unwrap_or_default()));
    } else {
        if operation == "in_range" {
            for name in ["start", "end"] {
                if let Some(v) = e.attr(name) {
                    l.push(nvpair_format(name, Some(v)));
                }
            }
        }
        for c in e
            .elements()
            .filter(|c| c.name == "duration" || c.name == "date_spec")
        {
            for (n, v) in c.attributes.iter().filter(|(n, _)| n != "id") {
                l.push(nvpair_format(n, Some(v)));
            }
        }
    }
    l.join(" ")
}

fn cli_rule(rule: &Element, cib: &Element) -> String {
    let mut s = Vec::new();
    match rule.id() {
        Some(id) if is_id_refd(cib, "rule", id) => s.push(nvpair_format("$id", Some(id))),
        _ => {
            if let Some(idref) = rule.attr("id-ref") {
                return nvpair_format("$id-ref", Some(idref));
            }
        }
    }
    if let Some(role) = rule.attr("role") {
        s.push(nvpair_format("$role", Some(role)));
    }
    if rule.attr("score") != Some("INFINITY") {
        let score = get_score(rule);
        if !score.is_empty() {
            s.push(format!("{score}:"));
        }
    }
    let boolop = rule.attr("boolean-op").unwrap_or("and");
    let exprs: Vec<String> = rule
        .elements()
        .filter_map(|c| match c.name.as_str() {
            "date_expression" => Some(date_exp2cli(c)),
            "expression" => Some(exp2cli(c)),
            _ => None,
        })
        .collect();
    s.push(exprs.join(&format!(" {boolop} ")));
    s.join(" ")
}

/// `params|meta|... [$id=..|$id-ref=..] [score:] [rule ...] n=v ...`
fn attr_set_str(keyword: &str, set: &Element, cib: &Element) -> String {
    let mut ret = format!("{keyword} ");
    match (set.id(), set.attr("id-ref")) {
        (Some(id), _) if is_id_refd(cib, &set.name, id) => {
            ret.push_str(&nvpair_format("$id", Some(id)));
            ret.push(' ');
        }
        (_, Some(idref)) => {
            ret.push_str(&nvpair_format("$id-ref", Some(idref)));
            ret.push(' ');
        }
        _ => {}
    }
    if let Some(score) = set.attr("score").filter(|s| !s.is_empty()) {
        ret.push_str(&format!("{score}: "));
    }
    for c in set.children_named("rule") {
        ret.push_str(&format!("rule {} ", cli_rule(c, cib)));
    }
    for c in set.children_named("nvpair") {
        ret.push_str(&cli_nvpair(c));
        ret.push(' ');
    }
    ret.trim_end_matches(' ').to_string()
}

fn set_keyword(kind: &str, tag: &str) -> Option<&'static str> {
    Some(match (kind, tag) {
        ("node", "instance_attributes") => "attributes",
        ("node", "utilization") => "utilization",
        ("op", "instance_attributes") => "op_params",
        ("op", "meta_attributes") => "op_meta",
        ("primitive" | "rsc_template", "utilization") => "utilization",
        (
            "primitive" | "rsc_template" | "group" | "clone" | "ms" | "bundle",
            "instance_attributes",
        ) => "params",
        ("primitive" | "rsc_template" | "group" | "clone" | "ms" | "bundle", "meta_attributes") => {
            "meta"
        }
        _ => return None,
    })
}

/// A bundle's `docker`/`rkt`/`network`/`storage`: its attributes, then its port or storage
/// mappings with theirs (crmsh's `_attr_set_str` for bundles).
fn bundle_part_cli(c: &Element) -> String {
    let mut words = vec![c.name.clone()];
    words.extend(c.attributes.iter().map(|(k, v)| nvpair_format(k, Some(v))));
    for m in c
        .elements()
        .filter(|m| matches!(m.name.as_str(), "port-mapping" | "storage-mapping"))
    {
        words.push(m.name.clone());
        words.extend(m.attributes.iter().map(|(k, v)| nvpair_format(k, Some(v))));
    }
    words.join(" ")
}

/// One object in crm syntax.
pub fn object_cli(o: &Object<'_>, cib: &Element) -> String {
    let e = o.element;
    let head = match o.kind {
        "node" => node_head(e, o.id),
        "primitive" | "rsc_template" => primitive_head(o.kind, e, o.id),
        "group" | "clone" | "ms" => {
            let children: Vec<&str> = e
                .elements()
                .filter(|c| matches!(c.name.as_str(), "primitive" | "group" | "clone" | "master"))
                .filter_map(Element::id)
                .collect();
            format!("{} {} {}", o.kind, o.id, children.join(" "))
        }
        "bundle" => format!("bundle {}", o.id),
        "location" => location_head(e, o.id),
        "colocation" | "order" => simple_constraint_head(o.kind, e, o.id),
        "rsc_ticket" => ticket_head(e, o.id),
        "property" | "rsc_defaults" | "op_defaults" => {
            let id = if no_quotes(o.id) {
                format!("{}:", o.id)
            } else {
                format!("$id=\"{}\"", o.id)
            };
            format!("{} {id}", o.kind)
        }
        "tag" => {
            let mut l = vec!["tag".to_string(), o.id.to_string()];
            l.extend(e.elements().filter_map(|c| c.id().map(str::to_string)));
            l.join(" ")
        }
        "fencing_topology" => return fencing_cli(e, cib),
        "alert" => format!("alert {} \"{}\"", o.id, e.attr("path").unwrap_or_default()),
        _ => format!("xml {}", e.id().unwrap_or_default()),
    };
    let mut lines = vec![head];
    if let Some(desc) = e.attr("description") {
        lines.push(nvpair_format("description", Some(desc)));
    }
    for c in e.elements() {
        if let Some(line) = child_cli(o.kind, c, cib) {
            lines.push(line);
        }
    }
    // Comments kept with the object (crmsh stores `# ...` lines of loaded text as XML
    // comments in it) come first, one a line.
    let comments: Vec<String> = e
        .children
        .iter()
        .filter_map(|n| match n {
            Node::Comment(text) => Some(comment_line(text)),
            _ => None,
        })
        .collect();
    if comments.is_empty() {
        cli_format(&lines)
    } else {
        format!("{}\n{}", comments.join("\n"), cli_format(&lines))
    }
}

/// crmsh's `fix_comments`: trimmed, and starting with `#`.
fn comment_line(text: &str) -> String {
    let text = text.trim();
    if text.starts_with('#') {
        text.to_string()
    } else {
        format!("# {text}")
    }
}

fn child_cli(kind: &str, c: &Element, cib: &Element) -> Option<String> {
    if let Some(keyword) = set_keyword(kind, &c.name) {
        return Some(attr_set_str(keyword, c, cib));
    }
    match (kind, c.name.as_str()) {
        ("primitive" | "rsc_template", "operations") => {
            let mut l = Vec::new();
            let mut s = String::new();
            if let Some(id) = c.id() {
                s = nvpair_format("$id", Some(id));
            }
            if let Some(idref) = c.attr("id-ref") {
                s = format!("{s} {}", nvpair_format("$id-ref", Some(idref)));
            }
            if !s.is_empty() {
                l.push(format!("operations {s}"));
            }
            for op in c.children_named("op") {
                l.push(op_cli(op, cib));
            }
            (!l.is_empty()).then(|| cli_format(&l))
        }
        ("bundle", "docker" | "rkt" | "network" | "storage") => Some(bundle_part_cli(c)),
        ("bundle", "primitive") => Some(format!("primitive {}", c.id().unwrap_or_default())),
        ("location", "rule") => Some(format!("rule {}", cli_rule(c, cib))),
        ("property" | "rsc_defaults" | "op_defaults", "rule") => {
            Some(format!("rule {}", cli_rule(c, cib)))
        }
        ("property" | "rsc_defaults" | "op_defaults", "nvpair") => Some(cli_nvpair(c)),
        ("alert", "select") => {
            let mut l = vec!["select".to_string()];
            for sel in c.elements() {
                let kind = sel.name.strip_prefix("select_").unwrap_or(&sel.name);
                l.push(kind.to_string());
                if kind == "attributes" {
                    let names: Vec<&str> = sel
                        .children_named("attribute")
                        .filter_map(|a| a.attr("name"))
                        .collect();
                    l.push(format!("{{ {} }}", names.join(" ")));
                }
            }
            Some(l.join(" "))
        }
        ("alert", "recipient") => {
            let mut l = vec![format!(
                "to {}",
                quote_wrap(c.attr("value").unwrap_or_default())
            )];
            l.extend(
                c.elements().filter_map(|set| {
                    alert_set_keyword(&set.name).map(|k| attr_set_str(k, set, cib))
                }),
            );
            Some(l.join(" "))
        }
        ("alert", tag) => alert_set_keyword(tag).map(|k| attr_set_str(k, c, cib)),
        _ => None,
    }
}

/// The keyword of an attribute set of an alert or a recipient.
fn alert_set_keyword(tag: &str) -> Option<&'static str> {
    match tag {
        "instance_attributes" => Some("attributes"),
        "meta_attributes" => Some("meta"),
        _ => None,
    }
}

fn op_cli(op: &Element, cib: &Element) -> String {
    let mut head = vec![format!("op {}", op.attr("name").unwrap_or_default())];
    for (n, v) in op
        .attributes
        .iter()
        .filter(|(n, _)| n != "name" && n != "id")
    {
        head.push(nvpair_format(n, Some(v)));
    }
    let mut lines = vec![head.join(" ")];
    for c in op.elements() {
        if let Some(k) = set_keyword("op", &c.name) {
            lines.push(attr_set_str(k, c, cib));
        }
    }
    cli_format(&lines)
}

fn node_head(e: &Element, id: &str) -> String {
    let uname = e.attr("uname").unwrap_or(id);
    let mut s = "node".to_string();
    if id != uname {
        if no_quotes(id) {
            s = format!("{s} {id}:");
        } else {
            s = format!("{s} $id=\"{id}\"");
        }
    }
    s = format!("{s} {uname}");
    if let Some(t) = e.attr("type").filter(|t| *t != "normal") {
        s = format!("{s}:{t}");
    }
    s
}

fn primitive_head(kind: &str, e: &Element, id: &str) -> String {
    let spec = match e.attr("template") {
        Some(t) if kind == "primitive" => format!("@{t}"),
        _ => rsc_type(e),
    };
    format!("{kind} {id} {spec}")
}

/// crmsh's `mk_rsc_type`: `ocf:heartbeat:X` and bare types print as `X`.
pub fn rsc_type(e: &Element) -> String {
    let kind = e.attr("type").unwrap_or_default();
    let class = e.attr("class");
    let provider = e.attr("provider");
    let unique = (class.is_none() && provider.is_none())
        || (class == Some("ocf") && provider.is_none())
        || provider == Some("heartbeat");
    if unique {
        return kind.to_string();
    }
    let mut s = String::new();
    if let Some(c) = class {
        s.push_str(c);
        s.push(':');
    }
    if let Some(p) = provider {
        s.push_str(p);
        s.push(':');
    }
    s.push_str(kind);
    s
}

fn location_head(e: &Element, id: &str) -> String {
    let rsc = if let Some(r) = e.attr("rsc") {
        r.to_string()
    } else if let Some(p) = e.attr("rsc-pattern") {
        format!("/{p}/")
    } else {
        format!("{{ {} }}", rsc_set_constraint(e, "location").join(" "))
    };
    let mut s = format!("location {id} {rsc}");
    for attr in ["role", "resource-discovery"] {
        if let Some(v) = e.attr(attr) {
            s.push_str(&format!(" {attr}={v}"));
        }
    }
    if let Some(node) = e.attr("node") {
        s = format!("{s} {}: {node}", get_score(e));
    }
    s
}

fn mk_rsc_q(e: &Element, n: &str, q: &str) -> String {
    let rsc = e.attr(n).unwrap_or_default();
    if let Some(v) = e.attr(&format!("{n}-{q}")) {
        format!("{rsc}:{v}")
    } else if let Some(v) = e.attr(&format!("{n}-instance")) {
        format!("{rsc}:{v}")
    } else {
        rsc.to_string()
    }
}

fn rsc_set_constraint(e: &Element, kind: &str) -> Vec<String> {
    let mut col = Vec::new();
    let mut cnt = 0;
    let mut sequential = None;
    let mut require_all = None;
    for set in e.children_named("resource_set") {
        sequential = set
            .attr("sequential")
            .and_then(crate::crm::parse::parse_bool);
        require_all = set
            .attr("require-all")
            .and_then(crate::crm::parse::parse_bool);
        if require_all == Some(false) {
            col.push("[".to_string());
        } else if sequential == Some(false) {
            col.push("(".to_string());
        }
        let q = if kind == "order" {
            set.attr("action")
        } else {
            set.attr("role")
        };
        for r in set.children_named("resource_ref") {
            let rsc = r.id().unwrap_or_default();
            col.push(match q {
                Some(q) => format!("{rsc}:{q}"),
                None => rsc.to_string(),
            });
            cnt += 1;
        }
        if require_all == Some(false) {
            if sequential != Some(false) {
                col.push("sequential=true".into());
            }
            col.push("]".into());
        } else if sequential == Some(false) {
            col.push(")".into());
        }
    }
    let is_ticket = kind == "rsc_ticket";
    let seq_all = sequential != Some(false) && require_all != Some(false);
    if kind != "location" && ((seq_all && !is_ticket && cnt <= 2) || (is_ticket && cnt <= 1)) {
        col.insert(0, "_rsc_set_".into());
    }
    col
}

fn simple_constraint_head(kind: &str, e: &Element, id: &str) -> String {
    let mut score = get_score(e);
    if score.is_empty() {
        score = e.attr("kind").unwrap_or_default().to_string();
    }
    let mut col = if e.child("resource_set").is_some() {
        rsc_set_constraint(e, kind)
    } else if kind == "colocation" {
        vec![mk_rsc_q(e, "rsc", "role"), mk_rsc_q(e, "with-rsc", "role")]
    } else {
        vec![
            mk_rsc_q(e, "first", "action"),
            mk_rsc_q(e, "then", "action"),
        ]
    };
    if kind == "order" {
        if let Some(s) = e.attr("symmetrical") {
            col.push(format!("symmetrical={s}"));
        }
    } else if let Some(a) = e.attr("node-attribute") {
        col.push(format!("node-attribute={a}"));
    }
    let mut s = format!("{kind} {id} ");
    if !score.is_empty() {
        s.push_str(&format!("{score}: "));
    }
    s + &col.join(" ")
}

fn ticket_head(e: &Element, id: &str) -> String {
    let mut col = if e.child("resource_set").is_some() {
        rsc_set_constraint(e, "rsc_ticket")
    } else {
        vec![mk_rsc_q(e, "rsc", "role")]
    };
    if let Some(p) = e.attr("loss-policy") {
        col.push(format!("loss-policy={p}"));
    }
    format!(
        "rsc_ticket {id} {}: {}",
        e.attr("ticket").unwrap_or_default(),
        col.join(" ")
    )
}

/// crmsh's fencing_topology rendering: the short form when every node has the same levels.
fn fencing_cli(e: &Element, cib: &Element) -> String {
    let mut targets: Vec<(String, Vec<(u32, String)>)> = Vec::new();
    for level in e.children_named("fencing-level") {
        let target = if let Some(p) = level.attr("target-pattern") {
            format!("pattern:{p}")
        } else if let Some(a) = level.attr("target-attribute") {
            format!(
                "attr:{a}={}",
                level.attr("target-value").unwrap_or_default()
            )
        } else {
            format!("{}:", level.attr("target").unwrap_or_default())
        };
        let index = level
            .attr("index")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let devices = level.attr("devices").unwrap_or_default().to_string();
        match targets.iter_mut().find(|(t, _)| *t == target) {
            Some((_, levels)) => levels.push((index, devices)),
            None => targets.push((target, vec![(index, devices)])),
        }
    }
    let rendered: Vec<(String, String)> = targets
        .into_iter()
        .map(|(t, mut levels)| {
            levels.sort();
            (
                t,
                levels
                    .into_iter()
                    .map(|(_, d)| d)
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
        .collect();
    let node_count = cib
        .path(&["configuration", "nodes"])
        .map(|n| n.children_named("node").count())
        .unwrap_or(0);
    let first = rendered.first().map(|(_, d)| d.clone()).unwrap_or_default();
    if !rendered.is_empty()
        && rendered.iter().all(|(_, d)| *d == first)
        && rendered.len() == node_count
    {
        return format!("fencing_topology {first}");
    }
    let mut lines = vec!["fencing_topology".to_string()];
    lines.extend(rendered.into_iter().map(|(t, d)| format!("{t} {d}")));
    cli_format(&lines)
}
