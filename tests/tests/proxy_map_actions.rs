//! The rule actions that change pattern references while requests run, hapx-proxy next to
//! HAProxy 2.6: `http-request|http-response add-acl|del-acl|set-map|del-map(FILE)`. What
//! each request changed is compared through the references' listings (`show map`,
//! `show acl`) and through what the next requests' ACLs and map converters decide; their
//! `-c` messages for misuse too.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_frontend_line, exchange, side_by_side};
use hapx_tests::require;

/// Entry addresses are pointers in HAProxy: only their form is compared. HAProxy's own
/// `httpclient` proxy adds ACLs of its own, which hapx has not.
fn mask(answer: &str) -> String {
    answer
        .lines()
        .filter(|l| !l.contains("file 'httpclient' line 0"))
        .map(|l| match l.split_once(' ') {
            Some((ptr, rest)) if ptr.starts_with("0x") => format!("<ptr> {rest}"),
            _ => l.replace("/haproxy.cfg'", "/hapx.cfg'"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A frontend whose request rules edit a map and an ACL file by path, answering with what
/// the map gives and whether the ACL matches; `/resp` goes to a backend whose response
/// rules edit them from the server's headers (an origin frontend echoing `k` and `v`).
fn config(dir: &Path, sock: &Path, addr: SocketAddr, origin: SocketAddr) -> String {
    let map = dir.join("m.map").display().to_string();
    let acl = dir.join("a.acl").display().to_string();
    let unused = dir.join("unused.map").display().to_string();
    format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 acl listed req.hdr(k) -f {acl}\n\
         \x20 http-request set-map({map}) %[req.hdr(k)] %[req.hdr(v)] if {{ path /set-map }}\n\
         \x20 http-request del-map({map}) %[req.hdr(k)] if {{ path /del-map }}\n\
         \x20 http-request add-acl({acl}) %[req.hdr(k)] if {{ path /add-acl }}\n\
         \x20 http-request del-acl({acl}) %[req.hdr(k)] if {{ path /del-acl }}\n\
         \x20 http-request add-acl({map}) %[req.hdr(k)] if {{ path /add-acl-to-map }}\n\
         \x20 http-request set-map({acl}) %[req.hdr(k)] %[req.hdr(v)] if {{ path /set-map-to-acl }}\n\
         \x20 http-request set-map({unused}) %[req.hdr(k)] x if {{ path /unused }}\n\
         \x20 http-request add-acl({acl}) k%[req.hdr(k)] \"\" if FALSE\n\
         \x20 acl resp path /resp\n\
         \x20 http-request return status 200 content-type text/plain \
         lf-string \"m=%[req.hdr(k),map({map},none)] acl=1\" if !resp listed\n\
         \x20 http-request return status 200 content-type text/plain \
         lf-string \"m=%[req.hdr(k),map({map},none)] acl=0\" if !resp\n\
         \x20 use_backend be if resp\n\
         backend be\n\
         \x20 http-response set-map({map}) %[res.hdr(x-k)] %[res.hdr(x-v)]\n\
         \x20 http-response del-acl({acl}) %[res.hdr(x-k)]\n\
         \x20 server s {origin}\n\
         frontend origin\n  bind {origin}\n\
         \x20 http-request return status 200 hdr x-k %[req.hdr(k)] hdr x-v %[req.hdr(v)]\n",
        sock = sock.display(),
    )
}

/// One request to `path` with headers `k` and `v`: its status and body.
fn ask(addr: SocketAddr, path: &str, k: &str, v: &str) -> String {
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nk: {k}\r\nv: {v}\r\nconnection: close\r\n\r\n");
    let answers = exchange(addr, &[req]);
    match answers.first() {
        Some(Some(r)) => format!("{path} k={k} v={v}: {} {}", r.status, r.body),
        _ => format!("{path} k={k} v={v}: no answer"),
    }
}

/// The steps: requests (path, k, v), then the listings they changed.
const STEPS: &[(&str, &str, &str)] = &[
    ("/q", "a", ""),
    // Every entry with the key takes the value; a missing key is added.
    ("/set-map", "a", "9"),
    ("/q", "a", ""),
    ("/set-map", "c", "5"),
    ("/q", "c", ""),
    // Every entry with the key goes.
    ("/del-map", "a", ""),
    ("/q", "a", ""),
    // Present keys are not added again.
    ("/add-acl", "x", ""),
    ("/add-acl", "z", ""),
    ("/q", "z", ""),
    ("/del-acl", "x", ""),
    ("/q", "x", ""),
    // A pattern in a map's file has no value: the map gives true.
    ("/add-acl-to-map", "b", ""),
    ("/add-acl-to-map", "p", ""),
    ("/q", "p", ""),
    // A value in an ACL file's entry is listed with it.
    ("/set-map-to-acl", "y", "yy"),
    ("/set-map-to-acl", "w", "ww"),
    ("/q", "w", ""),
    ("/unused", "u", ""),
    // An empty key is a key.
    ("/set-map", "", "e"),
    // Response rules, from the server's headers.
    ("/resp", "d", "4"),
    ("/q", "d", ""),
    ("/resp", "w", "1"),
    ("/q", "w", ""),
];

const LISTINGS: &[&str] = &["show map", "show acl", "show acl #0"];

/// Each action's effect on the references' listings and on the next requests, as HAProxy's.
#[test]
fn pattern_actions_change_references_like_haproxy() {
    let test = "pattern_actions_change_references_like_haproxy";
    let dir = temp_dir(test);
    std::fs::write(dir.join("m.map"), "a 1\nb 2\na 3\n").expect("writing the map");
    std::fs::write(dir.join("a.acl"), "x\ny\nx\n").expect("writing the ACL file");
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let origin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = config(&dir, &sock, addr, origin);
    let map = dir.join("m.map").display().to_string();
    let acl = dir.join("a.acl").display().to_string();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen = Vec::new();
        for (path, k, v) in STEPS {
            seen.push(ask(a, path, k, v));
            if !path.starts_with("/q") {
                seen.push(mask(&cli(&sock, &format!("show map {map}"))));
                seen.push(mask(&cli(&sock, &format!("show acl {acl}"))));
            }
        }
        let lookups = [format!("get map {map} p"), format!("get acl {acl} w")];
        for c in LISTINGS
            .iter()
            .copied()
            .chain(lookups.iter().map(String::as_str))
        {
            seen.push(format!("$ {c}\n{}", mask(&cli(&sock, c))));
        }
        seen
    });
    let said = |path: &str, k: &str| -> &str {
        let head = format!("{path} k={k} v=: ");
        let at = (ours.iter()).rposition(|l| l.starts_with(&head));
        at.map_or("", |i| &ours[i][head.len()..])
    };
    assert_eq!(said("/q", "a"), "200 m=none acl=0", "{ours:#?}");
    assert_eq!(said("/q", "c"), "200 m=5 acl=0", "{ours:#?}");
    assert_eq!(said("/q", "z"), "200 m=none acl=1", "{ours:#?}");
    assert_eq!(said("/q", "x"), "200 m=none acl=0", "{ours:#?}");
    assert_eq!(said("/q", "p"), "200 m=1 acl=0", "{ours:#?}");
    assert_eq!(said("/q", "d"), "200 m=4 acl=0", "{ours:#?}");
    // `w` was added to the ACL file, then deleted by the response rule.
    assert_eq!(said("/q", "w"), "200 m=1 acl=0", "{ours:#?}");
    let listing = ours.join("\n");
    assert!(listing.contains("<ptr> w ww"), "{listing}");
    if let Some(theirs) = theirs {
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "hapx-proxy, then HAProxy");
        }
        assert_eq!(ours.len(), theirs.len());
    }
}

/// What `-c` says of these actions misused, and where HAProxy has none of them; a file no
/// map or ACL uses is no error. HAProxy 2.6.12 crashes after some of these messages: its
/// messages are compared, and the exit status where it ends normally.
#[test]
fn pattern_action_errors_read_like_haproxys() {
    let test = "pattern_action_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    let map = dir.join("m.map");
    std::fs::write(&map, "a 1\n").expect("writing the map");
    let map = map.display().to_string();
    let uses = format!("  acl m req.hdr(x) -M -f {map}\n");
    let lines = [
        format!("  http-request set-map({map}) %[src]"),
        format!("  http-request set-map({map}) a \"\""),
        format!("  http-request del-map({map})"),
        format!("  http-request add-acl({map}) a b"),
        format!("  http-request del-acl({map}) a if {{ status 200 }}"),
        format!("  http-request set-map({map}) %[res.hdr(x)] 1"),
        format!("  http-request add-acl({map}) %[nosuch]"),
        format!("  http-response del-acl({map}) %[req.hdr(x)] if {{ status 200 }}"),
        format!("  http-response set-map({map}) %[res.hdr(x)] %[status]"),
        format!("  http-request add-acl({map}) a \"\" if FALSE"),
        // Short names: HAProxy's `Did you mean` compares the whole word, hapx's its name.
        "  tcp-request connection del-acl(m) a".to_string(),
        "  http-after-response set-map(m) a 1".to_string(),
        "  http-request set-map(/nowhere.map) %[src] 1".to_string(),
        "  http-request set-map /nowhere.map 1".to_string(),
        "  http-request del-map() a".to_string(),
    ];
    for (i, line) in lines.iter().enumerate() {
        let [(our_code, ours), (their_code, theirs)] =
            check_frontend_line(&dir, i, line, &uses, "");
        assert_eq!(ours, theirs, "{line}");
        // HAProxy's crashes end without a status; its normal ends are compared.
        if (0..=2).contains(&their_code) {
            assert_eq!(our_code, their_code, "{line}: {ours:?}");
        } else {
            assert_eq!(our_code, 1, "{line}: {ours:?}");
        }
    }
}

/// The actions on references with versions, case-insensitive ACLs and typed maps: `set-map`
/// reaches the entries of every version and adds nothing then; a value or key an expression
/// cannot read leaves the reference as it was.
#[test]
fn pattern_actions_on_versions_and_types_like_haproxy() {
    let test = "pattern_actions_on_versions_and_types_like_haproxy";
    let dir = temp_dir(test);
    std::fs::write(dir.join("n.map"), "a 1\n").expect("writing the map");
    std::fs::write(dir.join("i.acl"), "Abc\n").expect("writing the ACL file");
    std::fs::write(dir.join("ip.map"), "10.0.0.0/8 ten\n").expect("writing the map");
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let [n, i, ip] = ["n.map", "i.acl", "ip.map"].map(|f| dir.join(f).display().to_string());
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {addr}\n\
         \x20 acl ci req.hdr(k) -i -f {i}\n\
         \x20 http-request set-map({n}) %[req.hdr(k)] %[req.hdr(v)] if {{ path /set-map }}\n\
         \x20 http-request del-map({n}) %[req.hdr(k)] if {{ path /del-map }}\n\
         \x20 http-request add-acl({i}) %[req.hdr(k)] if {{ path /add-acl }}\n\
         \x20 http-request del-acl({i}) %[req.hdr(k)] if {{ path /del-acl }}\n\
         \x20 http-request set-map({ip}) %[req.hdr(k)] %[req.hdr(v)] if {{ path /set-ip }}\n\
         \x20 http-request add-acl({ip}) %[req.hdr(k)] if {{ path /add-ip }}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \
         \"n=%[req.hdr(k),map_str_int({n},-1)] s=%[req.hdr(k),map({n},none)] \
         ip=%[req.hdr(k),map_ip({ip},none)] ci=%[bool(1)]\" if ci\n\
         \x20 http-request return status 200 content-type text/plain lf-string \
         \"n=%[req.hdr(k),map_str_int({n},-1)] s=%[req.hdr(k),map({n},none)] \
         ip=%[req.hdr(k),map_ip({ip},none)] ci=0\"\n",
        sock = sock.display(),
    );
    let steps: &[(&str, &str, &str)] = &[
        ("/set-map", "a", "x"),
        ("/set-map", "b", "x"),
        ("/set-map", "a", "7"),
        ("/add-acl", "ABC", ""),
        ("/add-acl", "abc", ""),
        ("/q", "aBc", ""),
        ("/del-acl", "abc", ""),
        ("/q", "aBc", ""),
        ("/del-acl", "Abc", ""),
        ("/q", "aBc", ""),
        ("/set-ip", "10.1.2.3", "x"),
        ("/set-ip", "not-an-ip", "y"),
        ("/add-ip", "192.168.0.0/16", ""),
        ("/q", "192.168.1.1", ""),
        ("/q", "10.1.1.1", ""),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen = Vec::new();
        seen.push(mask(&cli(&sock, &format!("prepare map {n}"))));
        seen.push(mask(&cli(&sock, &format!("add map @1 {n} c 3"))));
        seen.push(ask(a, "/set-map", "c", "4"));
        seen.push(mask(&cli(&sock, &format!("show map @1 {n}"))));
        seen.push(mask(&cli(&sock, &format!("show map {n}"))));
        seen.push(ask(a, "/q", "c", ""));
        seen.push(ask(a, "/del-map", "c", ""));
        seen.push(mask(&cli(&sock, &format!("show map @1 {n}"))));
        for (path, k, v) in steps {
            seen.push(ask(a, path, k, v));
            for f in [&n, &ip] {
                seen.push(mask(&cli(&sock, &format!("show map {f}"))));
            }
            seen.push(mask(&cli(&sock, &format!("show acl {i}"))));
        }
        seen.push(mask(&cli(&sock, "show map")));
        seen
    });
    // A value the integer map cannot read is not added.
    assert!(!ours.iter().any(|l| l.contains("<ptr> b x")), "{ours:#?}");
    assert!(ours.iter().any(|l| l == "<ptr> a 7\n"), "{ours:#?}");
    if let Some(theirs) = theirs {
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "hapx-proxy, then HAProxy");
        }
        assert_eq!(ours.len(), theirs.len());
    }
}
