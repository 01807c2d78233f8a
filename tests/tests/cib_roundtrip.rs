//! Every CIB of Pacemaker's scheduler suite survives a read–write–read round trip unchanged,
//! and every one can be modelled (or, for a broken reference, gets an error naming it).

use hapx_cib::model::Cib;
use hapx_cib::xml::{Document, Element, Node};
use hapx_tests::{cib, require};

fn without_lines(mut e: Element) -> Element {
    e.line = 0;
    e.children = e
        .children
        .into_iter()
        .map(|n| match n {
            Node::Element(c) => Node::Element(without_lines(c)),
            other => other,
        })
        .collect();
    e
}

#[test]
fn every_corpus_cib_round_trips() {
    let dir = cib::pacemaker_dir();
    if !require::path(
        "every_corpus_cib_round_trips",
        &dir,
        "the Pacemaker conformance corpus",
    ) {
        return;
    }
    let cases = cib::cases();
    assert!(
        cases.len() > 500,
        "INDEX.tsv lists only {} cases",
        cases.len()
    );
    let mut modelled = 0;
    for case in &cases {
        let text = std::fs::read_to_string(&case.xml)
            .unwrap_or_else(|e| panic!("{}: {e}", case.xml.display()));
        let first = Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let written = first.to_xml();
        let second =
            Document::parse(&written).unwrap_or_else(|e| panic!("{} (rewritten): {e}", case.name));
        assert_eq!(first.declaration, second.declaration, "{}", case.name);
        assert_eq!(first.prolog, second.prolog, "{}", case.name);
        assert!(
            without_lines(first.root.clone()) == without_lines(second.root.clone()),
            "{}: the tree changed in a round trip",
            case.name
        );
        assert_eq!(
            written,
            second.to_xml(),
            "{}: writing is not stable",
            case.name
        );
        if Cib::from_document(first).is_ok() {
            modelled += 1;
        }
    }
    // The suite contains deliberately broken references; everything else must model.
    assert!(
        modelled * 100 >= cases.len() * 95,
        "only {modelled} of {} CIBs could be modelled",
        cases.len()
    );
}

#[test]
fn a_dangling_reference_names_the_constraint_and_line() {
    let text = "<cib>\n<configuration>\n<crm_config/>\n<nodes/>\n<resources/>\n<constraints>\n\
                <rsc_order id=\"o1\" first=\"a\" then=\"b\"/>\n</constraints>\n</configuration>\n<status/>\n</cib>\n";
    let err = Cib::parse(text).unwrap_err().to_string();
    assert!(err.contains("line 7"), "{err}");
    assert!(err.contains("rsc_order id=\"o1\""), "{err}");
    assert!(err.contains("'a'"), "{err}");
    let err = Cib::parse("<cib>\n<configuration>\n</cib>")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3"), "{err}");
}
