//! Operation digests: the hashes Pacemaker records with each operation (`op-digest`,
//! `op-restart-digest`) so that its scheduler can tell when a resource's parameters changed
//! since the operation ran, and whether the change needs a restart, a reload or only a new
//! recurring monitor.
//!
//! Pacemaker 2.1.5 (`lib/pengine/pe_digest.c`, `lib/common/digest.c`) hashes the parameters as
//! an XML element, `<parameters name="value" .../>`: the resource's instance attributes plus the
//! action's meta attributes as `CRM_meta_*`, then filtered (`pcmk__filter_op_for_digest`: every
//! `CRM_meta_*` and a few bookkeeping names go, except `CRM_meta_timeout` of a recurring
//! operation), with attributes sorted by name, dumped as `" " + element + "\n"`, and the MD5 of
//! that text in lower-case hex.
//!
//! - [`op_digest`]: the main digest of an operation (what the controller records).
//! - [`restart_digest`]: the same over only the parameters an agent cannot reload
//!   (`op-force-restart`).
//! - [`secure_digest`]: the same without the private parameters (`op-secure-params`).
//! - [`compare`]: `rsc_action_digest_cmp`, a recorded operation against the current definition.

use md5::{Digest, Md5};

use crate::model::{OpConfig, Primitive};
use crate::xml::{Element, escape_attr};

/// Names `pcmk__filter_op_for_digest` drops besides `CRM_meta_*`.
const FILTERED: &[&str] = &[
    "id",
    "crm_feature_set",
    "op-digest",
    "on_node",
    "on_node_uuid",
    "pcmk_external_ip",
];

/// The parameters as hashed: filtered, with the timeout of a recurring operation, sorted.
fn digest_params<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    interval_ms: u64,
    timeout_ms: u64,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(name, _)| !name.starts_with("CRM_meta_") && !FILTERED.contains(name))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if interval_ms > 0 {
        pairs.push(("CRM_meta_timeout".into(), timeout_ms.to_string()));
    }
    // A later duplicate (an attribute set twice) wins, as it does in Pacemaker's hash table.
    pairs.reverse();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    pairs.dedup_by(|a, b| a.0 == b.0);
    pairs
}

/// `calculate_xml_digest_v1` of a sorted `<parameters/>` element.
fn hash(pairs: &[(String, String)]) -> String {
    let mut text = String::from(" <parameters");
    for (name, value) in pairs {
        text.push_str(&format!(" {name}=\"{}\"", escape_attr(value)));
    }
    text.push_str("/>\n");
    let hash = Md5::digest(text.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `name` is listed in a space-separated list such as `op-force-restart`
/// (`" a b "`), as Pacemaker's `attr_in_string` checks it.
fn listed(list: &str, name: &str) -> bool {
    list.split_whitespace().any(|n| n == name)
}

/// The digest of an operation with these resource parameters; `timeout_ms` is included for a
/// recurring operation (`interval_ms` > 0), as Pacemaker includes it.
pub fn op_digest<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    interval_ms: u64,
    timeout_ms: u64,
) -> String {
    hash(&digest_params(params, interval_ms, timeout_ms))
}

/// The configuration of `p`'s operation `task` at `interval_ms` (`pcmk__find_action_config`,
/// disabled ones included).
pub fn op_config<'p>(p: &'p Primitive, task: &str, interval_ms: u64) -> Option<&'p OpConfig> {
    p.ops
        .iter()
        .find(|o| o.name == task && o.interval_ms == interval_ms)
}

/// The parameters an operation runs with and is hashed over: the resource's instance
/// attributes, then the operation's own (which win, as in Pacemaker's parameter table).
pub fn operation_params<'p>(
    p: &'p Primitive,
    task: &str,
    interval_ms: u64,
) -> Vec<(&'p str, &'p str)> {
    let own = op_config(p, task, interval_ms)
        .map(|o| &o.params.0[..])
        .unwrap_or(&[]);
    p.params
        .0
        .iter()
        .filter(|(n, _)| !own.iter().any(|(o, _)| o == n))
        .chain(own)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// The `op-digest` the controller records for `p`'s operation `task` at `interval_ms` run
/// with `timeout_ms`.
pub fn operation_digest(p: &Primitive, task: &str, interval_ms: u64, timeout_ms: u64) -> String {
    op_digest(
        operation_params(p, task, interval_ms),
        interval_ms,
        timeout_ms,
    )
}

/// The restart digest: the main digest's parameters restricted to those listed in
/// `force_restart` (the agent's non-reloadable parameters, recorded as `op-force-restart`).
pub fn restart_digest<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    interval_ms: u64,
    timeout_ms: u64,
    force_restart: &str,
) -> String {
    let mut pairs = digest_params(params, interval_ms, timeout_ms);
    pairs.retain(|(name, _)| listed(force_restart, name));
    hash(&pairs)
}

/// The secure digest: the main digest's parameters without the private ones listed in
/// `secure_params` (recorded as `op-secure-params`), what `crm_simulate` compares on a
/// sanitized CIB.
pub fn secure_digest<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    interval_ms: u64,
    timeout_ms: u64,
    secure_params: &str,
) -> String {
    let mut pairs = digest_params(params, interval_ms, timeout_ms);
    pairs.retain(|(name, _)| !listed(secure_params, name));
    hash(&pairs)
}

/// How a recorded operation compares with the resource's current definition
/// (Pacemaker's `RSC_DIGEST_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMatch {
    /// Nothing changed.
    Match,
    /// A parameter the agent cannot reload changed: restart.
    Restart,
    /// Some parameter changed: reload if the agent can, else restart; a recurring operation
    /// is scheduled again.
    All,
    /// No digest was recorded: treated like [`DigestMatch::All`].
    Unknown,
}

/// `rsc_action_digest_cmp`: compares the digests recorded on `op` (an `lrm_rsc_op`) with
/// those of `params` (the resource's parameters now, evaluated for the node) and the
/// operation's configured timeout. `op_params` are the operation's own instance attributes:
/// with any, a changed one-time operation restarts even when the restart digest matches.
pub fn compare<'a>(
    op: &Element,
    params: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    op_params: bool,
    timeout_ms: u64,
) -> DigestMatch {
    let interval_ms: u64 = op
        .attr("interval")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    compare_with_interval(op, params, op_params, interval_ms, timeout_ms)
}

/// [`compare`] with the interval the digest is computed for given: 0 (no timeout hashed) for
/// a recurring operation that is no longer configured and enabled, as Pacemaker finds it.
pub fn compare_with_interval<'a>(
    op: &Element,
    params: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
    op_params: bool,
    interval_ms: u64,
    timeout_ms: u64,
) -> DigestMatch {
    if let Some(recorded) = op.attr("op-restart-digest") {
        let force = op.attr("op-force-restart").unwrap_or("");
        if restart_digest(params.clone(), interval_ms, timeout_ms, force) != recorded {
            return DigestMatch::Restart;
        }
    }
    let Some(recorded) = op.attr("op-digest") else {
        return DigestMatch::Unknown;
    };
    if op_digest(params, interval_ms, timeout_ms) == recorded {
        DigestMatch::Match
    } else if interval_ms == 0 && op_params {
        DigestMatch::Restart
    } else {
        DigestMatch::All
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Document;

    #[test]
    fn matches_pacemakers_digest_of_no_parameters() {
        // The op-digest of every parameterless Dummy operation in Pacemaker's own test CIBs.
        assert_eq!(op_digest([], 0, 20000), "f2317cad3d54cec5d7d7aa7d0bf35cf8");
    }

    #[test]
    fn sorts_parameters_and_adds_the_timeout_of_recurring_operations() {
        let a = op_digest([("b", "2"), ("a", "1")], 10000, 20000);
        let b = op_digest([("a", "1"), ("b", "2")], 10000, 20000);
        assert_eq!(a, b);
        assert_ne!(a, op_digest([("a", "1"), ("b", "2")], 0, 20000));
        assert_ne!(a, op_digest([("a", "1"), ("b", "2")], 10000, 30000));
    }

    #[test]
    fn restart_digest_hashes_only_the_listed_parameters() {
        let all = [("ip", "192.0.2.1"), ("nic", "eth0")];
        let r = restart_digest(all, 0, 20000, " ip ");
        assert_eq!(r, restart_digest([("ip", "192.0.2.1")], 0, 20000, " ip "));
        assert_eq!(r, op_digest([("ip", "192.0.2.1")], 0, 20000));
        assert_eq!(
            secure_digest(all, 0, 20000, " nic "),
            op_digest([("ip", "192.0.2.1")], 0, 20000)
        );
    }

    fn op(attrs: &str) -> Document {
        Document::parse(&format!(
            "<lrm_rsc_op id=\"r_start_0\" operation=\"start\" {attrs}/>"
        ))
        .unwrap()
    }

    #[test]
    fn compares_like_rsc_action_digest_cmp() {
        let digest = op_digest([("a", "1")], 0, 20000);
        let doc = op(&format!("interval=\"0\" op-digest=\"{digest}\""));
        let root = &doc.root;
        assert_eq!(
            compare(root, [("a", "1")], false, 20000),
            DigestMatch::Match
        );
        assert_eq!(compare(root, [("a", "2")], false, 20000), DigestMatch::All);
        assert_eq!(
            compare(root, [("a", "2")], true, 20000),
            DigestMatch::Restart
        );
        let doc = op("interval=\"0\"");
        assert_eq!(compare(&doc.root, [], false, 20000), DigestMatch::Unknown);
        let restart = restart_digest([("a", "1"), ("b", "1")], 0, 20000, " a ");
        let doc = op(&format!(
            "interval=\"0\" op-digest=\"x\" op-restart-digest=\"{restart}\" op-force-restart=\" a \""
        ));
        assert_eq!(
            compare(&doc.root, [("a", "1"), ("b", "2")], false, 20000),
            DigestMatch::All
        );
        assert_eq!(
            compare(&doc.root, [("a", "2"), ("b", "1")], false, 20000),
            DigestMatch::Restart
        );
    }
}
