//! Operation digests: the `op-digest` Pacemaker records with each operation, so that its
//! scheduler can tell when a resource's parameters changed since the operation ran.
//!
//! Pacemaker 2.1.5 (`pe_digest.c`, `digest.c`) hashes the parameters as an XML element,
//! `<parameters name="value" .../>`, with attributes sorted by name, `CRM_meta_*` removed
//! except `CRM_meta_timeout` for recurring operations, dumped as " " + the element + "\n",
//! and the MD5 of that text in lower-case hex.

use md5::{Digest, Md5};

use hapx_cib::xml::escape_attr;

/// The digest of an operation with these resource parameters; `timeout_ms` is included for a
/// recurring operation (`interval_ms` > 0), as Pacemaker includes it.
pub fn op_digest<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    interval_ms: u64,
    timeout_ms: u64,
) -> String {
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(name, _)| !name.starts_with("CRM_meta_"))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if interval_ms > 0 {
        pairs.push(("CRM_meta_timeout".into(), timeout_ms.to_string()));
    }
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = String::from(" <parameters");
    for (name, value) in &pairs {
        text.push_str(&format!(" {name}=\"{}\"", escape_attr(value)));
    }
    text.push_str("/>\n");
    let hash = Md5::digest(text.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
