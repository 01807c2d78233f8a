//! The crm configure language: one command's tokens to the XML crmsh builds for it.
//!
//! This mirrors crmsh 4.4.1's `parse.py`: each command becomes an element without generated ids
//! (those are filled in by [`crate::crm::ids`] when the object joins a CIB), resource references
//! inside groups and clones are `crmsh-ref` placeholders resolved against the CIB, and errors read
//! the way crmsh's do: `syntax in colocation: Expected <score>: near <foo> parsing '...'`.

use hapx_cib::xml::Element;

/// A command that is not valid crm syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SyntaxError {
    /// The command (or sub-part) being parsed: `primitive`, `role`...
    pub context: String,
    /// What went wrong, usually what was expected.
    pub message: String,
    /// The token where parsing stopped, if any.
    pub token: Option<String>,
    /// The whole command, re-joined.
    pub command: String,
}

impl SyntaxError {
    fn render(&self) -> String {
        let mut out = format!("syntax in {}: {}", self.context, self.message);
        match &self.token {
            Some(token) => out.push_str(&format!(" near <{token}> parsing '{}'", self.command)),
            None => out.push_str(&format!(" parsing '{}'", self.command)),
        }
        out
    }
}

type Result<T> = std::result::Result<T, SyntaxError>;

/// Resource roles Pacemaker's schema accepts (canonical spelling).
pub const ROLES: &[&str] = &[
    "Stopped",
    "Started",
    "Promoted",
    "Unpromoted",
    "Master",
    "Slave",
];
/// Resource actions in orders and resource sets.
pub const ACTIONS: &[&str] = &["start", "promote", "demote", "stop"];
/// Order kinds.
pub const ORDER_KINDS: &[&str] = &["Optional", "Mandatory", "Serialize"];
const BINARY_OPS: &[&str] = &["lt", "gt", "lte", "gte", "eq", "ne"];
const EXPRESSION_TYPES: &[&str] = &["string", "integer", "number", "version"];
const DATE_SPEC_NAMES: &[&str] = &[
    "hours",
    "monthdays",
    "weekdays",
    "yearsdays",
    "yeardays",
    "months",
    "weeks",
    "years",
    "weekyears",
    "moon",
];
/// Words that end a list of name=value pairs.
const TERMINATORS: &[&str] = &[
    "params",
    "meta",
    "utilization",
    "operations",
    "op",
    "op_params",
    "op_meta",
    "rule",
    "attributes",
];
/// The attributes of an `<op>` in Pacemaker's schema (pacemaker-3.9); crmsh also takes them
/// as the names `op_defaults` may set.
pub(crate) const OP_SCHEMA_ATTRIBUTES: &[&str] = &[
    "id",
    "name",
    "interval",
    "description",
    "start-delay",
    "interval-origin",
    "timeout",
    "enabled",
    "record-pending",
    "role",
    "on-fail",
];

/// Whether an op pair is an attribute of the `<op>` element itself (other pairs are instance
/// attributes): the schema's, plus `requires`, which crmsh still writes there.
fn is_op_attribute(name: &str) -> bool {
    OP_SCHEMA_ATTRIBUTES.contains(&name) || name == "requires"
}

/// Converts Python-style regex matching helpers into small, explicit token tests.
struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
}

/// Lower-cases the first token and parses the command. Returns the element crmsh would build.
pub fn parse(tokens: &[String]) -> Result<Element> {
    let mut p = Parser { tokens, pos: 0 };
    let keyword = tokens
        .first()
        .map(|t| t.to_ascii_lowercase())
        .unwrap_or_default();
    let out = match keyword.as_str() {
        "node" => p.node()?,
        "primitive" => p.primitive()?,
        "group" => p.group()?,
        "bundle" => p.bundle()?,
        "clone" | "ms" | "master" => p.clone_or_ms()?,
        "location" => p.location()?,
        "colocation" | "collocation" => p.colocation()?,
        "order" => p.order()?,
        "rsc_ticket" => p.rsc_ticket()?,
        "monitor" => p.monitor()?,
        "property" | "rsc_defaults" | "op_defaults" => p.property()?,
        "tag" => p.tag()?,
        "alert" => p.alert()?,
        "fencing_topology" | "fencing-topology" => p.fencing_topology()?,
        _ => return Err(p.err_at(Some(&keyword), "Unknown command", tokens.first().cloned())),
    };
    if p.has_tokens() {
        let rest = p.tokens[p.pos..].join(" ");
        return Err(p.err(&format!("Unknown arguments: {rest}")));
    }
    Ok(out)
}

/// A bundle's `docker`/`network`/`storage` element: its own attributes, then
/// `port-mapping`/`storage-mapping` children, each taking the pairs that follow it.
fn bundle_part(tag: &str, pairs: &[Element]) -> Element {
    let mut part = Element::new(tag);
    let mut mapping: Option<Element> = None;
    for nvp in pairs {
        let name = nvp.attr("name").unwrap_or_default();
        let value = nvp.attr("value").unwrap_or_default();
        if matches!(name, "port-mapping" | "storage-mapping") {
            if let Some(m) = mapping.take() {
                part.children.push(m.into());
            }
            mapping = Some(Element::new(name));
        } else if let Some(m) = mapping.as_mut() {
            m.set_attr(name, value);
        } else {
            part.set_attr(name, value);
        }
    }
    if let Some(m) = mapping {
        part.children.push(m.into());
    }
    part
}

fn ieq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `name=value` with a non-empty name not starting with `=`, `@` or `$`.
fn split_nvpair(tok: &str) -> Option<(&str, &str)> {
    let (name, value) = tok.split_once('=')?;
    let first = name.chars().next()?;
    (!matches!(first, '@' | '$')).then_some((name, value))
}

/// An identifier: starts with a letter, digit, `_`, `#`, `$` or `-` and has no `=`.
fn is_ident(tok: &str) -> bool {
    tok.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | '$' | '-'))
        && !tok.contains('=')
}

/// A resource name: starts with a letter, `_`, `#` or `$` and has no `=`.
fn is_resource(tok: &str) -> bool {
    tok.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '#' | '$'))
        && !tok.contains('=')
}

/// `SCORE:` (anything without a colon, then a colon).
fn score_prefix(tok: &str) -> Option<&str> {
    let s = tok.strip_suffix(':')?;
    (!s.is_empty() && !s.contains(':')).then_some(s)
}

/// `$id=X` or `$id-ref=X` (case-insensitive key): (`id` | `id-ref`, X).
fn idspec(tok: &str) -> Option<(&'static str, &str)> {
    let (key, value) = tok.split_once('=')?;
    if ieq(key, "$id") {
        Some(("id", value))
    } else if ieq(key, "$id-ref") {
        Some(("id-ref", value))
    } else {
        None
    }
}

/// The id an object statement may open with: `$id=X` or `X:`.
fn object_id(tok: &str) -> Option<String> {
    if let Some(v) = tok.strip_prefix("$id=") {
        return Some(v.to_string());
    }
    let id = tok.strip_suffix(':')?;
    (!id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
    .then(|| id.to_string())
}

fn canonize<'a>(value: &str, list: &[&'a str]) -> Option<&'a str> {
    list.iter().copied().find(|x| ieq(x, value))
}

fn new_nvpair(name: &str, value: Option<&str>) -> Element {
    let mut e = Element::new("nvpair").with_attr("name", name);
    if let Some(v) = value {
        e.set_attr("value", v);
    }
    e
}

impl Parser<'_> {
    fn has_tokens(&self) -> bool {
        self.pos < self.tokens.len()
    }

    fn current(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn command(&self) -> String {
        self.tokens.join(" ")
    }

    fn err(&self, message: &str) -> SyntaxError {
        self.err_at(None, message, self.current().map(str::to_string))
    }

    fn err_at(&self, context: Option<&str>, message: &str, token: Option<String>) -> SyntaxError {
        SyntaxError {
            context: context
                .map(str::to_string)
                .or_else(|| self.tokens.first().map(|t| t.to_ascii_lowercase()))
                .unwrap_or_default(),
            message: message.to_string(),
            token,
            command: self.command(),
        }
    }

    /// Consumes the current token when `test` accepts it, returning what `test` extracted.
    fn try_take<T>(&mut self, test: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let tok = self.tokens.get(self.pos)?;
        let out = test(tok)?;
        self.pos += 1;
        Some(out)
    }

    fn try_keyword(&mut self, word: &str) -> bool {
        self.try_take(|t| ieq(t, word).then_some(())).is_some()
    }

    fn take<T>(&mut self, test: impl FnOnce(&str) -> Option<T>, expected: &str) -> Result<T> {
        match self.try_take(test) {
            Some(v) => Ok(v),
            None => Err(self.err(expected)),
        }
    }

    fn any(&mut self) -> Result<String> {
        match self.tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(self.err("Unexpected end of line")),
        }
    }

    fn identifier(&mut self) -> Result<String> {
        self.take(
            |t| is_ident(t).then(|| t.to_string()),
            "Expected identifier",
        )
    }

    fn resource(&mut self) -> Result<String> {
        self.take(
            |t| is_resource(t).then(|| t.to_string()),
            "Expected resource",
        )
    }

    fn description(&mut self) -> Option<String> {
        self.try_take(|t| {
            let (k, v) = t.split_once('=')?;
            (ieq(k, "description") && !v.is_empty()).then(|| v.to_string())
        })
    }

    /// `value[:value]`
    fn split_value(&mut self) -> Result<(String, Option<String>)> {
        let Some(tok) = self.current() else {
            return Err(self.err("Expected value[:value]"));
        };
        let parts: Vec<&str> = tok.split(':').collect();
        if parts.len() > 2 {
            return Err(self.err("Expected value[:value]"));
        }
        let out = (parts[0].to_string(), parts.get(1).map(|s| s.to_string()));
        self.pos += 1;
        Ok(out)
    }

    /// `p=v` pairs (also `$id:name=v`, `@ref[:name]`, and bare names unless terminators are
    /// empty), stopping at a terminator keyword.
    fn nvpairs(
        &mut self,
        terminators: &[&str],
        min: usize,
        allow_empty: bool,
    ) -> Result<Vec<Element>> {
        let mut out = Vec::new();
        while let Some(tok) = self.current() {
            if terminators.iter().any(|t| ieq(t, tok)) {
                break;
            }
            if let Some(rest) = tok.strip_prefix('@') {
                let (idref, name) = match rest.split_once(':') {
                    Some((r, n)) => (r, Some(n)),
                    None => (rest, None),
                };
                if idref.is_empty() {
                    break;
                }
                let mut e = Element::new("nvpair").with_attr("id-ref", idref);
                if let Some(n) = name {
                    e.set_attr("name", n);
                }
                out.push(e);
            } else if let Some((key, value)) = tok.strip_prefix('$').and_then(|r| r.split_once('='))
            {
                let (id, name) = match key.split_once(':') {
                    Some((i, n)) => (i, n),
                    None => (key, key),
                };
                if id.is_empty() {
                    break;
                }
                out.push(
                    Element::new("nvpair")
                        .with_attr("id", id)
                        .with_attr("name", name)
                        .with_attr("value", value),
                );
            } else if let Some((name, value)) = split_nvpair(tok) {
                if !allow_empty && value.is_empty() {
                    return Err(self.err(&format!("Empty value for {name} is not allowed")));
                }
                out.push(new_nvpair(name, Some(value)));
            } else if !terminators.is_empty() && !tok.contains([':', '=']) {
                out.push(new_nvpair(tok, None));
            } else {
                break;
            }
            self.pos += 1;
        }
        if out.len() < min {
            return Err(self.err("Expected at least one name-value pair"));
        }
        Ok(out)
    }

    /// Pairs whose names are among `keys` (date specs and durations).
    fn nvpairs_by_key(&mut self, keys: &[&str], min: usize) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        while let Some(tok) = self.current() {
            let pair = match tok.split_once('=') {
                Some((k, v)) if keys.contains(&k) && !v.is_empty() => {
                    (k.to_string(), v.to_string())
                }
                None if keys.contains(&tok) => (tok.to_string(), String::new()),
                _ => break,
            };
            out.push(pair);
            self.pos += 1;
        }
        if out.len() < min {
            let message = if min == 1 {
                "Expected at least one name-value pair".to_string()
            } else {
                format!("Expected at least {min} name-value pairs")
            };
            return Err(self.err(&message));
        }
        Ok(out)
    }

    /// `[$id=<id>] [<score>:] [rule ...] <n>=<v> ... | $id-ref=<id>`
    fn attr_list(
        &mut self,
        tag: &str,
        allow_empty: bool,
        terminators: &[&str],
    ) -> Result<Option<Element>> {
        let mut xmlid = None;
        if let Some((kind, value)) = self.try_take(|t| idspec(t).map(|(k, v)| (k, v.to_string()))) {
            if kind == "id-ref" {
                return Ok(Some(Element::new(tag).with_attr("id-ref", value)));
            }
            xmlid = Some(value);
        }
        let score = self.try_take(|t| score_prefix(t).map(str::to_string));
        let rules = self.rules()?;
        let values = self.nvpairs(terminators, 0, true)?;
        if !allow_empty
            && xmlid.is_none()
            && score.is_none()
            && rules.is_empty()
            && values.is_empty()
        {
            return Ok(None);
        }
        let mut e = Element::new(tag);
        if let Some(id) = xmlid {
            e.set_attr("id", id);
        }
        if let Some(score) = score {
            e.set_attr("score", score);
        }
        for child in rules.into_iter().chain(values) {
            e = e.with_child(child);
        }
        Ok(Some(e))
    }

    /// Repeated `<keyword> attr_list` where keywords map to XML tags; with `implicit`, a first
    /// list without its keyword counts as that keyword's (`primitive p Dummy state=1`).
    fn attr_lists(
        &mut self,
        map: &[(&str, &str)],
        implicit: Option<&str>,
        out: &mut Element,
    ) -> Result<()> {
        let keyword = |p: &mut Self| {
            p.try_take(|t| {
                map.iter()
                    .find(|(k, _)| ieq(k, t))
                    .map(|(_, tag)| tag.to_string())
            })
        };
        if let Some(tag) = keyword(self) {
            if let Some(list) = self.attr_list(&tag, true, TERMINATORS)? {
                out.children.push(list.into());
            }
        } else if let Some(initial) = implicit {
            let tag = map
                .iter()
                .find(|(k, _)| *k == initial)
                .map(|(_, t)| *t)
                .unwrap_or(initial);
            if let Some(list) = self.attr_list(tag, false, TERMINATORS)? {
                out.children.push(list.into());
            }
        }
        while let Some(tag) = keyword(self) {
            if let Some(list) = self.attr_list(&tag, true, TERMINATORS)? {
                out.children.push(list.into());
            }
        }
        Ok(())
    }

    /// The argument section of nodes, primitives and containers: attribute lists, `operations`
    /// and `op` in any order.
    fn arguments(
        &mut self,
        out: &mut Element,
        map: &[(&str, &str)],
        with_ops: bool,
        implicit: &str,
    ) -> Result<()> {
        let mut initial = true;
        while let Some(tok) = self.current() {
            let lower = tok.to_ascii_lowercase();
            let known = map.iter().any(|(k, _)| *k == lower);
            if with_ops && (lower == "op" || lower == "operations") {
                initial = false;
                self.operations(out, lower == "operations")?;
            } else if known {
                initial = false;
                self.attr_lists(map, None, out)?;
            } else if initial {
                initial = false;
                let before = self.pos;
                self.attr_lists(map, Some(implicit), out)?;
                if self.pos == before {
                    break;
                }
            } else {
                break;
            }
        }
        Ok(())
    }

    fn operations(&mut self, out: &mut Element, match_id: bool) -> Result<()> {
        if match_id {
            self.take(
                |t| ieq(t, "operations").then_some(()),
                "Expected operations",
            )?;
        }
        let mut ops = out
            .child_mut("operations")
            .map(std::mem::take)
            .unwrap_or_default();
        ops.name = "operations".into();
        if match_id {
            let (kind, value) = self.take(
                |t| idspec(t).map(|(k, v)| (k, v.to_string())),
                "Expected $id-ref=<id> or $id=<id>",
            )?;
            ops.set_attr(kind, value);
        }
        while self.current().is_some_and(|t| ieq(t, "op")) {
            let op = self.op()?;
            ops.children.push(op.into());
        }
        if let Some(existing) = out.child_mut("operations") {
            *existing = ops;
        } else {
            out.children.push(ops.into());
        }
        Ok(())
    }

    /// `op <name> [<n>=<v> ...] [op_params ...] [op_meta ...]`
    fn op(&mut self) -> Result<Element> {
        self.pos += 1; // "op"
        let name = self.identifier()?;
        let mut pairs = self.nvpairs(TERMINATORS, 0, true)?;
        if !pairs.iter().any(|p| p.attr("name") == Some("interval")) {
            pairs.push(new_nvpair("interval", Some("0")));
        }
        let mut node = Element::new("op").with_attr("name", name);
        let mut inst: Option<Element> = None;
        for nvp in pairs {
            let n = nvp.attr("name").unwrap_or_default().to_string();
            if is_op_attribute(&n) {
                if inst.is_some() {
                    return Err(self.err(&format!(
                        "Attribute order error: {n} must appear before any instance attribute"
                    )));
                }
                node.set_attr(n, nvp.attr("value").unwrap_or_default());
            } else {
                inst.get_or_insert_with(|| Element::new("instance_attributes"))
                    .children
                    .push(nvp.into());
            }
        }
        if let Some(inst) = inst {
            node.children.push(inst.into());
        }
        self.attr_lists(
            &[
                ("op_params", "instance_attributes"),
                ("op_meta", "meta_attributes"),
            ],
            Some("op_params"),
            &mut node,
        )?;
        Ok(node)
    }

    fn rules(&mut self) -> Result<Vec<Element>> {
        let mut rules = Vec::new();
        while self.try_keyword("rule") {
            let mut rule = Element::new("rule");
            let mut idref = false;
            if let Some((kind, value)) =
                self.try_take(|t| idspec(t).map(|(k, v)| (k, v.to_string())))
            {
                idref = kind == "id-ref";
                rule.set_attr(kind, value);
            }
            if let Some(role) = self.try_take(|t| {
                let (k, v) = t.split_once('=')?;
                (ieq(k, "$role") || ieq(k, "role")).then(|| v.to_string())
            }) {
                rule.set_attr("role", role);
            }
            if idref {
                rules.push(rule);
                continue;
            }
            match self.try_take(|t| score_prefix(t).map(str::to_string)) {
                Some(score) => {
                    let (k, v) = self.validate_score(&score, false, false)?;
                    rule.set_attr(k, v);
                }
                None => rule.set_attr("score", "INFINITY"),
            }
            let (boolop, exprs) = self.rule_expression()?;
            if let Some(op) = boolop.filter(|op| !ieq(op, "and")) {
                rule.set_attr("boolean-op", op);
            }
            for e in exprs {
                rule.children.push(e.into());
            }
            rules.push(rule);
        }
        Ok(rules)
    }

    fn rule_expression(&mut self) -> Result<(Option<String>, Vec<Element>)> {
        let mut boolop: Option<String> = None;
        let mut exprs = vec![self.simple_expression()?];
        while let Some(op) =
            self.try_take(|t| (ieq(t, "and") || ieq(t, "or")).then(|| t.to_string()))
        {
            match &boolop {
                Some(prev) if *prev != op => {
                    return Err(self.err(&format!("Mixing bool ops not allowed: {prev} != {op}")));
                }
                _ => boolop = Some(op),
            }
            exprs.push(self.simple_expression()?);
        }
        Ok((boolop, exprs))
    }

    fn simple_expression(&mut self) -> Result<Element> {
        if self.try_keyword("date") {
            return self.date_expression();
        }
        if let Some(op) = self.try_take(|t| {
            ["defined", "not_defined"]
                .iter()
                .find(|o| ieq(o, t))
                .map(|o| o.to_string())
        }) {
            let attr = self.identifier()?;
            return Ok(Element::new("expression")
                .with_attr("operation", op)
                .with_attr("attribute", attr));
        }
        let attr = self.identifier()?;
        let expected = format!(
            "Expected (({}):)?({})",
            EXPRESSION_TYPES.join("|"),
            BINARY_OPS.join("|")
        );
        let (typ, op) = self.take(
            |t| {
                let (typ, op) = match t.split_once(':') {
                    Some((typ, op)) => (Some(canonize(typ, EXPRESSION_TYPES)?), op),
                    None => (None, t),
                };
                Some((typ, canonize(op, BINARY_OPS)?))
            },
            &expected,
        )?;
        let mut node = Element::new("expression")
            .with_attr("operation", op)
            .with_attr("attribute", attr);
        if let Some(typ) = typ {
            node.set_attr("type", typ);
        }
        let value = self.any()?;
        // `param{value}` reads the value from a resource parameter or meta-attribute.
        match value.split_once('{') {
            Some((source, inner)) if inner.ends_with('}') && !source.is_empty() => {
                node.set_attr("value", &inner[..inner.len() - 1]);
                node.set_attr("value-source", source);
            }
            _ => node.set_attr("value", value),
        }
        Ok(node)
    }

    fn date_expression(&mut self) -> Result<Element> {
        let op = self.take(
            |t| {
                ["in_range", "gt", "lt", "date_spec", "spec", "in"]
                    .iter()
                    .find(|o| ieq(o, t))
                    .map(|o| o.to_string())
            },
            "Expected (in_range|gt|lt|date_spec|spec|in)$",
        )?;
        let operation = match op.as_str() {
            "in" => "in_range",
            "spec" => "date_spec",
            other => other,
        }
        .to_string();
        let mut node = Element::new("date_expression").with_attr("operation", &operation);
        match operation.as_str() {
            "lt" => {
                let v = self.any()?;
                node.set_attr("end", v);
            }
            "gt" => {
                let v = self.any()?;
                node.set_attr("start", v);
            }
            "in_range" => {
                let mut keys = vec!["start", "end"];
                keys.extend(DATE_SPEC_NAMES);
                let vals = self.nvpairs_by_key(&keys, 2)?;
                set_date_expression(&mut node, "duration", vals);
            }
            _ => {
                let vals = self.nvpairs_by_key(DATE_SPEC_NAMES, 1)?;
                set_date_expression(&mut node, "date_spec", vals);
            }
        }
        Ok(node)
    }

    /// crmsh's `validate_score`: (attribute, value).
    fn validate_score(
        &self,
        score: &str,
        noattr: bool,
        to_kind: bool,
    ) -> Result<(&'static str, String)> {
        if !noattr {
            if ieq(score, "advisory") {
                return Ok(("score", "0".into()));
            }
            if ieq(score, "mandatory") {
                return Ok(("score", "INFINITY".into()));
            }
        }
        if let Some(normal) = numeric_score(score) {
            if to_kind {
                let kind = if normal == "0" {
                    "Optional"
                } else {
                    "Mandatory"
                };
                return Ok(("kind", kind.into()));
            }
            return Ok(("score", normal));
        }
        if noattr {
            return match canonize(score, ORDER_KINDS) {
                Some(kind) => Ok(("kind", kind.into())),
                None => Err(self.err(&format!("Invalid kind: {score}"))),
            };
        }
        Ok(("score-attribute", score.to_string()))
    }

    fn node(&mut self) -> Result<Element> {
        if self.tokens.len() < 2 {
            return Err(self.err("Expected at least 1 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("node");
        if let Some(id) = self.try_take(object_id) {
            out.set_attr("id", id);
        }
        let (uname, kind) = self.take(
            |t| {
                let (u, k) = match t.split_once(':') {
                    Some((u, k)) => (u, Some(k)),
                    None => (t, None),
                };
                if u.is_empty() {
                    return None;
                }
                match k {
                    Some(k) => canonize(k, &["normal", "member", "ping", "remote"])
                        .map(|k| (u.to_string(), Some(k.to_string()))),
                    None => Some((u.to_string(), None)),
                }
            },
            "Expected uname[:type]",
        )?;
        out.set_attr("uname", uname);
        if let Some(k) = kind {
            out.set_attr("type", k);
        }
        if let Some(d) = self.description() {
            out.set_attr("description", d);
        }
        self.arguments(
            &mut out,
            &[
                ("attributes", "instance_attributes"),
                ("utilization", "utilization"),
            ],
            false,
            "attributes",
        )?;
        Ok(out)
    }

    fn primitive(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("primitive");
        out.set_attr("id", self.identifier()?);
        if let Some(template) = self.try_take(|t| {
            t.strip_prefix('@')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }) {
            out.set_attr("template", template);
        } else {
            let Some(spec) = self.current().map(str::to_string) else {
                return Err(self.err("Expected resource type"));
            };
            let (class, provider, kind) =
                crate::ra::disambiguate(&spec).ok_or_else(|| self.err("Unknown resource type"))?;
            self.pos += 1;
            out.set_attr("class", class);
            if let Some(p) = provider {
                out.set_attr("provider", p);
            }
            out.set_attr("type", kind);
        }
        if let Some(d) = self.description() {
            out.set_attr("description", d);
        }
        self.arguments(
            &mut out,
            &[
                ("params", "instance_attributes"),
                ("meta", "meta_attributes"),
                ("utilization", "utilization"),
            ],
            true,
            "params",
        )?;
        Ok(out)
    }

    fn clone_or_ms(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        let tag = if ieq(&self.tokens[0], "clone") {
            "clone"
        } else {
            "master"
        };
        self.pos = 1;
        let mut out = Element::new(tag);
        out.set_attr("id", self.identifier()?);
        let child = self.resource()?;
        if let Some(d) = self.description() {
            out.set_attr("description", d);
        }
        self.arguments(
            &mut out,
            &[
                ("params", "instance_attributes"),
                ("meta", "meta_attributes"),
            ],
            false,
            "params",
        )?;
        out.children
            .push(Element::new("crmsh-ref").with_attr("id", child).into());
        Ok(out)
    }

    fn group(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("group");
        out.set_attr("id", self.identifier()?);
        let mut children: Vec<String> = Vec::new();
        while let Some(t) = self.current() {
            if t.contains('=') || ieq(t, "params") || ieq(t, "meta") {
                break;
            }
            if children.iter().any(|c| c == t) {
                let id = out.id().unwrap_or_default().to_string();
                return Err(self.err(&format!("child {t} listed more than once in group {id}")));
            }
            children.push(t.to_string());
            self.pos += 1;
        }
        if let Some(d) = self.description() {
            out.set_attr("description", d);
        }
        self.arguments(
            &mut out,
            &[
                ("params", "instance_attributes"),
                ("meta", "meta_attributes"),
            ],
            false,
            "params",
        )?;
        for c in children {
            out.children
                .push(Element::new("crmsh-ref").with_attr("id", c).into());
        }
        Ok(out)
    }

    /// crmsh's `parse_bundle`: `bundle ID [description=..] docker|rkt K=V... network K=V...
    /// [port-mapping K=V...]... storage [storage-mapping K=V...]... primitive RSC meta ...`.
    fn bundle(&mut self) -> Result<Element> {
        self.pos = 1;
        let mut out = Element::new("bundle");
        out.set_attr("id", self.identifier()?);
        if let Some(d) = self.description() {
            out.set_attr("description", d);
        }
        const PARTS: &[&str] = &["docker", "rkt", "network", "storage", "primitive"];
        const PART_ENDS: &[&str] = &["network", "storage", "meta", "primitive"];
        while let Some(tok) = self.current() {
            let lower = tok.to_ascii_lowercase();
            if PARTS.contains(&lower.as_str()) {
                self.pos += 1;
                let pairs = self.nvpairs(PART_ENDS, 0, true)?;
                if lower == "primitive" {
                    let [only] = pairs.as_slice() else {
                        return Err(self.err("Expected primitive reference"));
                    };
                    if only.attr("value").is_some_and(|v| !v.is_empty()) {
                        return Err(self.err("Expected primitive reference"));
                    }
                    let id = only.attr("name").unwrap_or_default();
                    out.children
                        .push(Element::new("crmsh-ref").with_attr("id", id).into());
                    continue;
                }
                out.children.push(bundle_part(&lower, &pairs).into());
            } else if lower == "meta" {
                self.pos += 1;
                let ends: Vec<&str> = TERMINATORS.iter().chain(PART_ENDS).copied().collect();
                if let Some(list) = self.attr_list("meta_attributes", true, &ends)? {
                    out.children.push(list.into());
                }
            } else {
                break;
            }
        }
        Ok(out)
    }

    fn location(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("rsc_location");
        out.set_attr("id", self.identifier()?);
        if let Some(pattern) = self.try_take(|t| {
            t.strip_prefix('/')
                .and_then(|s| s.strip_suffix('/'))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }) {
            out.set_attr("rsc-pattern", pattern);
        } else if self.try_keyword("{") {
            let start = self.pos;
            while self.current().is_some_and(|t| t != "}") {
                self.pos += 1;
            }
            let tokens = self.tokens[start..self.pos].to_vec();
            self.take(|t| (t == "}").then_some(()), "Expected }")?;
            if tokens.is_empty() {
                return Err(self.err("Empty resource set"));
            }
            for set in ResourceSets::new(self, "role", tokens).parse()? {
                out.children.push(set.into());
            }
        } else {
            out.set_attr("rsc", self.resource()?);
        }
        while let Some((name, value)) = self.try_take(|t| {
            let t = t.strip_prefix('$').unwrap_or(t);
            let (n, v) = t.split_once('=')?;
            (!n.is_empty()).then(|| (n.to_string(), v.to_string()))
        }) {
            out.set_attr(name, value);
        }
        if let Some(score) = self.try_take(|t| score_prefix(t).map(str::to_string)) {
            let (k, v) = self.validate_score(&score, false, false)?;
            if k != "score" {
                // A node preference needs a number; Pacemaker's schema has no attribute here.
                self.pos -= 1;
                return Err(self.err(&format!(
                    "Invalid score {score}: expected an integer, inf, +inf or -inf"
                )));
            }
            out.set_attr(k, v);
            out.set_attr("node", self.identifier()?);
            if out.attr("role").is_none()
                && let Some(role) = self.try_take(|t| {
                    let (k, v) = t.split_once('=')?;
                    (ieq(k, "$role") || ieq(k, "role")).then(|| v.to_string())
                })
            {
                out.set_attr("role", role);
            }
        } else {
            let rules = self.rules()?;
            if rules.is_empty() {
                return Err(self.err("expected <score>: <node> or <rule> [<rule> ...]"));
            }
            for r in rules {
                out.children.push(r.into());
            }
        }
        Ok(out)
    }

    /// Takes a trailing `name=value` off the end of the command (crmsh's `try_match_tail`).
    fn take_tail(&mut self, name: &str, allowed: Option<&[&str]>) -> Option<String> {
        let last = self.tokens.last()?;
        if self.pos >= self.tokens.len() {
            return None;
        }
        let (k, v) = last.split_once('=')?;
        if k != name || v.is_empty() {
            return None;
        }
        if let Some(allowed) = allowed
            && !allowed.contains(&v)
        {
            return None;
        }
        let v = v.to_string();
        self.tokens = &self.tokens[..self.tokens.len() - 1];
        Some(v)
    }

    fn colocation(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("rsc_colocation");
        out.set_attr("id", self.identifier()?);
        let score = self.take(|t| score_prefix(t).map(str::to_string), "Expected <score>:")?;
        let (k, v) = self.validate_score(&score, false, false)?;
        if k != "score" {
            // Pacemaker's schema (3.0 on) has no score-attribute on a colocation.
            self.pos -= 1;
            return Err(self.err(&format!(
                "Invalid score {score}: expected an integer, inf, +inf or -inf"
            )));
        }
        out.set_attr(k, v);
        if let Some(attr) = self.take_tail("node-attribute", None) {
            out.set_attr("node-attribute", attr.to_lowercase());
        }
        self.resource_set_or_pair(&mut out, "role", 2)?;
        Ok(out)
    }

    fn order(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("rsc_order");
        out.set_attr("id", self.identifier()?);
        if let Some(kind) =
            self.try_take(|t| score_prefix(t).and_then(|s| canonize(s, ORDER_KINDS)))
        {
            out.set_attr("kind", kind);
        } else if let Some(score) = self.try_take(|t| score_prefix(t).map(str::to_string)) {
            let (k, v) = self.validate_score(&score, true, true)?;
            out.set_attr(k, v);
        }
        if let Some(sym) = self.take_tail(
            "symmetrical",
            Some(&["true", "false", "yes", "no", "on", "off"]),
        ) {
            let canonical = if matches!(sym.as_str(), "true" | "yes" | "on") {
                "true"
            } else {
                "false"
            };
            out.set_attr("symmetrical", canonical);
        }
        self.resource_set_or_pair(&mut out, "action", 2)?;
        Ok(out)
    }

    fn rsc_ticket(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("rsc_ticket");
        out.set_attr("id", self.identifier()?);
        let ticket = self.take(
            |t| score_prefix(t).map(str::to_string),
            "Expected <ticket-id>:",
        )?;
        out.set_attr("ticket", ticket);
        if let Some(policy) =
            self.take_tail("loss-policy", Some(&["stop", "demote", "fence", "freeze"]))
        {
            out.set_attr("loss-policy", policy);
        }
        self.resource_set_or_pair(&mut out, "role", 1)?;
        Ok(out)
    }

    fn resource_set_or_pair(
        &mut self,
        out: &mut Element,
        kind: &str,
        simple_count: usize,
    ) -> Result<()> {
        let remaining = self.tokens.len() - self.pos;
        if remaining == simple_count {
            let names: &[&str] = match (kind, simple_count) {
                ("role", 1) => &["rsc"],
                ("role", _) => &["rsc", "with-rsc"],
                _ => &["first", "then"],
            };
            for name in names {
                let (rsc, qualifier) = self.split_value()?;
                out.set_attr(*name, &rsc);
                if let Some(q) = qualifier.filter(|q| !q.is_empty()) {
                    let list = if kind == "role" { ROLES } else { ACTIONS };
                    if let Some(c) = canonize(&q, list) {
                        out.set_attr(format!("{name}-{kind}"), c);
                    } else if q.chars().all(|c| c.is_ascii_digit()) {
                        out.set_attr(format!("{name}-instance"), q);
                    } else {
                        return Err(self.err(&format!("Invalid {kind} '{q}' for '{rsc}'")));
                    }
                }
            }
            return Ok(());
        }
        let tokens = self.tokens[self.pos..].to_vec();
        self.pos = self.tokens.len();
        let sets = ResourceSets::new(self, kind, tokens).parse()?;
        if sets.is_empty() {
            let one = format!("<rsc>[:<{kind}>]");
            let expected = vec![one; simple_count].join(" ");
            return Err(self.err(&format!("Expected {expected} | resource_sets")));
        }
        for set in sets {
            out.children.push(set.into());
        }
        Ok(())
    }

    fn monitor(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let mut out = Element::new("op").with_attr("name", "monitor");
        let (rsc, role) = self.split_value()?;
        if let Some(role) = role {
            match canonize(&role, ROLES) {
                Some(r) => out.set_attr("role", r),
                None if role.chars().all(|c| c.is_ascii_digit()) => out.set_attr("instance", role),
                None => {
                    return Err(self.err(&format!("Invalid role '{role}' for resource '{rsc}'")));
                }
            }
        }
        out.set_attr("rsc", rsc);
        let (interval, timeout) = self.split_value()?;
        if !interval.is_empty() {
            out.set_attr("interval", interval);
        }
        if let Some(t) = timeout.filter(|t| !t.is_empty()) {
            out.set_attr("timeout", t);
        }
        Ok(out)
    }

    fn property(&mut self) -> Result<Element> {
        let kind = self.tokens[0].to_ascii_lowercase();
        self.pos = 1;
        let set_tag = if kind == "property" {
            "cluster_property_set"
        } else {
            "meta_attributes"
        };
        let mut attrs = Element::new(set_tag);
        if let Some(id) = self.try_take(object_id) {
            attrs.set_attr("id", id);
        } else if let Some((k, v)) = self.try_take(|t| idspec(t).map(|(k, v)| (k, v.to_string()))) {
            attrs.set_attr(k, v);
        }
        for rule in self.rules()? {
            attrs.children.push(rule.into());
        }
        for nvp in self.nvpairs(TERMINATORS, 0, true)? {
            attrs.children.push(nvp.into());
        }
        if kind == "property" {
            Ok(attrs)
        } else {
            Ok(Element::new(kind).with_child(attrs))
        }
    }

    /// `alert ID PATH [attributes ...] [meta ...] [select fencing|nodes|resources|attributes
    /// [{ ATTR ... }] ...] [to [{] RECIPIENT [attributes ...] [meta ...] [}] ...]`
    /// (crmsh's `parse_alert`): recipients are numbered `ID-recipient-N`.
    fn alert(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let id = self.identifier()?;
        let path = self.take(|t| (!t.is_empty()).then(|| t.to_string()), "Expected path")?;
        let mut out = Element::new("alert")
            .with_attr("id", id.as_str())
            .with_attr("path", path);
        if let Some(d) = self.description() {
            out.set_attr("description", d);
        }
        let sets = [
            ("attributes", "instance_attributes"),
            ("meta", "meta_attributes"),
        ];
        let mut recipients = 0;
        let mut attribute_ids = 0;
        while let Some(tok) = self.current().map(str::to_ascii_lowercase) {
            match tok.as_str() {
                "attributes" | "meta" => {
                    self.alert_sets(&mut out, &sets, &["attributes", "meta", "to", "select"])?;
                }
                "select" => {
                    self.pos += 1;
                    let mut select = Element::new("select");
                    while let Some(kind) = self
                        .current()
                        .filter(|t| matches!(*t, "nodes" | "fencing" | "resources" | "attributes"))
                        .map(str::to_string)
                    {
                        self.pos += 1;
                        let mut selector = Element::new(format!("select_{kind}"));
                        if kind == "attributes" {
                            if !self.try_keyword("{") {
                                self.pos -= 1;
                                break;
                            }
                            while self.current().is_some_and(|t| t != "}") {
                                let name = self.identifier()?;
                                selector.children.push(
                                    Element::new("attribute")
                                        .with_attr("name", name)
                                        .with_attr("id", format!("{id}-{attribute_ids}"))
                                        .into(),
                                );
                                attribute_ids += 1;
                            }
                            self.take(|t| (t == "}").then_some(()), "Expected }")?;
                        }
                        select.children.push(selector.into());
                    }
                    if !select.children.is_empty() {
                        out.children.push(select.into());
                    }
                }
                _ => {
                    self.take(|t| ieq(t, "to").then_some(()), "Expected to")?;
                    recipients += 1;
                    let braced = self.try_keyword("{");
                    let value = self.any()?;
                    let mut r = Element::new("recipient")
                        .with_attr("id", format!("{id}-recipient-{recipients}"))
                        .with_attr("value", value);
                    if let Some(d) = self.description() {
                        r.set_attr("description", d);
                    }
                    let mut ends = vec!["attributes", "meta", "to"];
                    if braced {
                        ends.push("}");
                    }
                    self.alert_sets(&mut r, &sets, &ends)?;
                    if braced {
                        self.take(|t| (t == "}").then_some(()), "Expected }")?;
                    }
                    out.children.push(r.into());
                }
            }
        }
        Ok(out)
    }

    /// Keyword-led attribute sets (`attributes n=v ...`, `meta n=v ...`) up to `terminators`.
    fn alert_sets(
        &mut self,
        out: &mut Element,
        map: &[(&str, &str)],
        terminators: &[&str],
    ) -> Result<()> {
        while let Some(tag) = self.try_take(|t| {
            map.iter()
                .find(|(k, _)| ieq(k, t))
                .map(|(_, tag)| tag.to_string())
        }) {
            if let Some(list) = self.attr_list(&tag, true, terminators)? {
                out.children.push(list.into());
            }
        }
        Ok(())
    }

    fn tag(&mut self) -> Result<Element> {
        if self.tokens.len() < 3 {
            return Err(self.err("Expected at least 2 arguments"));
        }
        self.pos = 1;
        let name = self.take(
            |t| {
                let name = t.strip_suffix(':').unwrap_or(t);
                let first = name.chars().next()?;
                ((first.is_ascii_alphabetic() || first == '_')
                    && !name.contains(|c: char| c.is_whitespace() || c == ':'))
                .then(|| name.to_string())
            },
            "Expected tag name",
        )?;
        let mut out = Element::new("tag").with_attr("id", name);
        while self.has_tokens() {
            let r = self.resource()?;
            out.children
                .push(Element::new("obj_ref").with_attr("id", r).into());
        }
        Ok(out)
    }
}

/// Where a fencing level applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// No target given: every node of the CIB.
    AllNodes,
    Node(String),
    Attribute(String, String),
    Pattern(String),
}

impl Parser<'_> {
    /// `fencing_topology [target:] devices... ...`: levels numbered per target. Levels without a
    /// target are marked with `crmsh-all-nodes`, expanded against the CIB's nodes when added.
    fn fencing_topology(&mut self) -> Result<Element> {
        self.pos = 1;
        let mut target = Target::AllNodes;
        let mut levels: Vec<(Target, String)> = Vec::new();
        while let Some(tok) = self.current().map(str::to_string) {
            self.pos += 1;
            if let Some((n, v)) = tok.strip_prefix("attr:").and_then(|r| r.split_once('=')) {
                target = Target::Attribute(n.to_string(), v.to_string());
            } else if let Some(p) = tok.strip_prefix("pattern:") {
                target = Target::Pattern(p.to_string());
            } else if let Some(t) = tok
                .strip_suffix(':')
                .filter(|t| !t.is_empty() && !t.contains(':'))
            {
                target = Target::Node(t.to_string());
            } else {
                levels.push((target.clone(), tok));
            }
        }
        let mut out = Element::new("fencing-topology");
        let mut counters: Vec<(Target, u32)> = Vec::new();
        for (target, devices) in levels {
            let index = match counters.iter_mut().find(|(t, _)| *t == target) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counters.push((target.clone(), 1));
                    1
                }
            };
            let mut level = Element::new("fencing-level");
            match target {
                Target::AllNodes => {
                    level.set_attr("crmsh-all-nodes", "true");
                    level.set_attr("index", index.to_string());
                    level.set_attr("devices", devices);
                }
                Target::Node(node) => {
                    level.set_attr("target", node);
                    level.set_attr("index", index.to_string());
                    level.set_attr("devices", devices);
                }
                Target::Attribute(n, v) => {
                    level.set_attr("index", index.to_string());
                    level.set_attr("devices", devices);
                    level.set_attr("target-attribute", n);
                    level.set_attr("target-value", v);
                }
                Target::Pattern(p) => {
                    level.set_attr("index", index.to_string());
                    level.set_attr("devices", devices);
                    level.set_attr("target-pattern", p);
                }
            }
            out.children.push(level.into());
        }
        Ok(out)
    }
}

/// A score as crmsh accepts it in numeric form: `[+-]` then digits or inf/infinity (either
/// case); inf becomes INFINITY.
pub fn numeric_score(score: &str) -> Option<String> {
    let (sign, rest) = match score.as_bytes().first() {
        Some(b'+' | b'-') => score.split_at(1),
        _ => ("", score),
    };
    let infinite = ["inf", "infinity", "INF", "INFINITY"].contains(&rest);
    let digits = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    if infinite {
        Some(format!("{sign}INFINITY"))
    } else if digits {
        Some(score.to_string())
    } else {
        None
    }
}

fn set_date_expression(expr: &mut Element, tag: &str, values: Vec<(String, String)>) {
    let only_range = values.len() == 2
        && values.iter().any(|(n, _)| n == "start")
        && values.iter().any(|(n, _)| n == "end");
    if only_range {
        for (n, v) in values {
            expr.set_attr(n, v);
        }
        return;
    }
    let mut sub = Element::new(tag);
    for (n, v) in values {
        if n == "start" || n == "end" {
            expr.set_attr(n, v);
        } else {
            sub.set_attr(n, v);
        }
    }
    expr.children.push(sub.into());
}

/// crmsh's `ResourceSet`: `a ( b c:start ) d:Master [ e f ] sequential=false`.
struct ResourceSets<'p, 'a> {
    parent: &'p Parser<'a>,
    kind: &'static str,
    tokens: Vec<String>,
    sets: Vec<Element>,
    current: Element,
    prev_q: String,
    curr_attr: bool,
    opened: Option<char>,
    sequential: bool,
    require_all: bool,
}

impl<'p, 'a> ResourceSets<'p, 'a> {
    fn new(parent: &'p Parser<'a>, kind: &str, tokens: Vec<String>) -> Self {
        // "(a" and "b)" are split into separate brackets.
        let mut split = Vec::new();
        for t in tokens {
            let first = t.chars().next().unwrap_or(' ');
            let last = t.chars().last().unwrap_or(' ');
            if t.len() > 1 && matches!(first, '(' | '[') {
                split.push(first.to_string());
                split.push(t[1..].to_string());
            } else if t.len() > 1 && matches!(last, ')' | ']') {
                split.push(t[..t.len() - 1].to_string());
                split.push(last.to_string());
            } else {
                split.push(t);
            }
        }
        ResourceSets {
            parent,
            kind: if kind == "role" { "role" } else { "action" },
            tokens: split,
            sets: Vec::new(),
            current: Element::new("resource_set"),
            prev_q: String::new(),
            curr_attr: false,
            opened: None,
            sequential: true,
            require_all: true,
        }
    }

    fn err(&self, message: &str, token: &str) -> SyntaxError {
        self.parent
            .err_at(Some(self.kind), message, Some(token.to_string()))
    }

    fn save(&mut self) {
        if self.current.children.is_empty() {
            return;
        }
        let mut set = std::mem::replace(&mut self.current, Element::new("resource_set"));
        if !self.require_all {
            set.set_attr("require-all", "false");
        }
        if !self.sequential {
            set.set_attr("sequential", "false");
        }
        if self.curr_attr {
            set.set_attr(self.kind, &self.prev_q);
        }
        self.sets.push(set);
        self.prev_q.clear();
        self.curr_attr = false;
    }

    fn bracket(&mut self, b: char, token: &str) -> Result<()> {
        match b {
            '(' | '[' => {
                if self.opened.is_some() {
                    return Err(self.err("Cannot nest resource sets", token));
                }
                self.sequential = false;
                if b == '[' {
                    self.require_all = false;
                }
                self.opened = Some(b);
            }
            _ => {
                let Some(open) = self.opened else {
                    return Err(self.err("Unmatched closing bracket", token));
                };
                if (open == '(' && b != ')') || (open == '[' && b != ']') {
                    return Err(self.err("Mismatched closing bracket", token));
                }
                self.sequential = true;
                self.require_all = true;
                self.opened = None;
            }
        }
        Ok(())
    }

    fn parse(mut self) -> Result<Vec<Element>> {
        let tokens = std::mem::take(&mut self.tokens);
        for p in &tokens {
            if p == "_rsc_set_" {
                continue;
            }
            if p == "(" || p == "[" {
                self.save();
                self.bracket(p.chars().next().unwrap_or('('), p)?;
                continue;
            }
            if p == ")" || p == "]" {
                if self.current.children.is_empty() {
                    return Err(self.err("Empty resource set", p));
                }
                self.save();
                self.bracket(p.chars().next().unwrap_or(')'), p)?;
                continue;
            }
            if let Some((k, v)) = p.split_once('=') {
                if v.contains('=') {
                    return Err(self.err(&format!("Extra = in {p}"), p));
                }
                let Some(b) = parse_bool(v) else {
                    return Err(self.err(&format!("Not a boolean: {v}"), p));
                };
                match k {
                    "sequential" => self.sequential = b,
                    "require-all" => self.require_all = b,
                    _ => return Err(self.err("Unknown attribute", p)),
                }
                continue;
            }
            let (rsc, q) = match p.split(':').collect::<Vec<_>>().as_slice() {
                [rsc, q] => {
                    let list = if self.kind == "role" { ROLES } else { ACTIONS };
                    match canonize(q, list) {
                        Some(c) => (rsc.to_string(), c.to_string()),
                        None => {
                            return Err(self.err(&format!("Invalid {} for {p}", self.kind), p));
                        }
                    }
                }
                _ => (p.clone(), String::new()),
            };
            if q != self.prev_q {
                self.save();
                self.prev_q = q.clone();
            }
            self.curr_attr = !q.is_empty();
            self.current
                .children
                .push(Element::new("resource_ref").with_attr("id", rsc).into());
        }
        if self.opened.is_some() {
            let last = tokens.last().cloned().unwrap_or_default();
            return Err(self.err("Unmatched opening bracket", &last));
        }
        self.save();
        Ok(self.sets)
    }
}

/// crmsh's boolean words.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(line: &str) -> Vec<String> {
        crate::crm::lex::split(line).unwrap()
    }

    fn xml(line: &str) -> String {
        let e = parse(&tokens(line)).unwrap();
        hapx_cib::xml::Document::new(e).to_xml()
    }

    #[test]
    fn primitive_with_params_meta_and_op() {
        let out = xml(
            "primitive vip ocf:heartbeat:IPaddr2 params ip=192.0.2.20 meta migration-threshold=2 \
             op monitor interval=20 timeout=60 on-fail=restart op start interval=0 depth=0",
        );
        assert!(
            out.starts_with(
                r#"<primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"<nvpair name="ip" value="192.0.2.20"/>"#),
            "{out}"
        );
        assert!(out.contains(r#"<meta_attributes>"#), "{out}");
        assert!(
            out.contains(r#"<op name="monitor" interval="20" timeout="60" on-fail="restart"/>"#),
            "{out}"
        );
        // Unknown op pairs are its instance attributes; an op without interval gets interval=0
        // appended after them, which crmsh then refuses (and so does hapx).
        let err = parse(&tokens("primitive x Dummy op start depth=0")).unwrap_err();
        assert!(
            err.to_string().contains("Attribute order error: interval"),
            "{err}"
        );
        assert!(
            out.contains(r#"<op name="start">"#)
                || out.contains(r#"<op name="start" interval="0">"#),
            "{out}"
        );
        assert!(out.contains(r#"<nvpair name="depth" value="0"/>"#), "{out}");
    }

    #[test]
    fn scores_and_kinds() {
        assert_eq!(numeric_score("inf").as_deref(), Some("INFINITY"));
        assert_eq!(numeric_score("-inf").as_deref(), Some("-INFINITY"));
        assert_eq!(numeric_score("+100").as_deref(), Some("+100"));
        assert_eq!(numeric_score("abc"), None);
        assert!(xml("order o inf: a b").contains(r#"kind="Mandatory""#));
        assert!(xml("order o 0: a b").contains(r#"kind="Optional""#));
        assert!(xml("colocation c mandatory: a b").contains(r#"score="INFINITY""#));
    }

    #[test]
    fn resource_sets_split_on_brackets_and_roles() {
        let out = xml("colocation c inf: a ( b c ) d:Master");
        assert_eq!(out.matches("<resource_set").count(), 3, "{out}");
        assert!(
            out.contains(r#"<resource_set sequential="false">"#),
            "{out}"
        );
        assert!(out.contains(r#"<resource_set role="Master">"#), "{out}");
        let out = xml("order o Optional: [ a b ] c");
        assert!(
            out.contains(r#"require-all="false" sequential="false""#),
            "{out}"
        );
    }

    #[test]
    fn errors_say_what_was_expected_where() {
        let err = parse(&tokens("colocation c1 foo p1 p2")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax in colocation: Expected <score>: near <foo> parsing 'colocation c1 foo p1 p2'"
        );
        let err = parse(&tokens("order o bogus: a b")).unwrap_err();
        assert!(err.to_string().contains("Invalid kind: bogus"), "{err}");
        let err = parse(&tokens("colocation c inf: a ( b")).unwrap_err();
        assert!(
            err.to_string().contains("Unmatched opening bracket"),
            "{err}"
        );
        let err = parse(&tokens("frob x")).unwrap_err();
        assert!(err.to_string().contains("Unknown command"), "{err}");
    }

    #[test]
    fn rules_with_boolean_and_date_expressions() {
        let out = xml(
            "location l r rule -inf: not_defined pingd or pingd number:lte 0 \
             rule inf: date in start=2009-05-26 years=2009",
        );
        assert!(
            out.contains(r#"<rule score="-INFINITY" boolean-op="or">"#),
            "{out}"
        );
        assert!(
            out.contains(
                r#"<expression operation="lte" attribute="pingd" type="number" value="0"/>"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"<date_expression operation="in_range" start="2009-05-26">"#),
            "{out}"
        );
        assert!(out.contains(r#"<duration years="2009"/>"#), "{out}");
        let err = parse(&tokens("location l r rule a eq 1 and b eq 2 or c eq 3")).unwrap_err();
        assert!(err.to_string().contains("Mixing bool ops"), "{err}");
    }
}
