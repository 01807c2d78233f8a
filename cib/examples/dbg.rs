fn main() {
    let path = std::env::args().nth(1).unwrap();
    let want = std::env::args().nth(2).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let cib = hapx_cib::model::Cib::parse(&text).unwrap();
    let t = hapx_cib::simulate::schedule_cib(&cib, 0).unwrap();
    for o in &t.orderings {
        let f = &t.actions[o.first];
        let th = &t.actions[o.then];
        let k = |a: &hapx_cib::schedule::Action| {
            format!(
                "{}@{:?} opt={} run={}",
                hapx_cib::execute::action_key(&t, a),
                a.node,
                a.optional,
                a.runnable
            )
        };
        if k(th).starts_with(&want) || k(f).starts_with(&want) {
            println!("{} -> {} flags={}", k(f), k(th), o.flags);
        }
    }
}
