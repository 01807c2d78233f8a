//! Maps after the round 8 review, hapx-proxy next to HAProxy 2.6: runtime changes to a big
//! map answer as HAProxy's (incremental indexes, no rebuild under the lock), addresses cross IPv4 and
//! IPv6 as HAProxy's `pat_match_ip` (maps and ACL `-m ip`), keys made only of delimiters
//! never match in `map_dir`/`map_dom`, integers beyond 64 bits saturate, and list-type maps
//! (`reg`, `sub`, `end`) give the same answers through their lookup cache as a CLI change
//! lands. Each match type reads its own file here: HAProxy shares one expression (and so
//! one cache slot) between `sub`/`end`/`dir`/`dom` on the same file, a bug hapx does not copy.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_frontend_line, exchange, side_by_side};

/// The bodies of `GET path` requests carrying each header line of `headers`.
fn bodies(addr: SocketAddr, path: &str, headers: &[&str]) -> Vec<String> {
    let asks: Vec<(&str, &str)> = headers.iter().map(|h| (path, *h)).collect();
    bodies_of(addr, &asks)
}

/// The bodies of requests for each (path, header line), on one connection closed by the last.
fn bodies_of(addr: SocketAddr, asks: &[(&str, &str)]) -> Vec<String> {
    let requests: Vec<String> = asks
        .iter()
        .enumerate()
        .map(|(i, (path, h))| {
            let close = match i + 1 == asks.len() {
                true => "connection: close\r\n",
                false => "",
            };
            let h = match h.is_empty() {
                true => String::new(),
                false => format!("{h}\r\n"),
            };
            format!("GET {path} HTTP/1.1\r\nhost: x\r\n{h}{close}\r\n")
        })
        .collect();
    let mut out: Vec<String> = exchange(addr, &requests)
        .into_iter()
        .map(|r| r.map(|r| r.body).unwrap_or_default())
        .collect();
    out.truncate(asks.len());
    out
}

/// A frontend answering `lf-string` for every request.
fn answering(addr: SocketAddr, extra: &str, body: &str) -> String {
    format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n{extra}\
         \x20 http-request return status 200 content-type text/plain lf-string \"{body}\"\n"
    )
}

fn compare(ours: &[String], theirs: Option<Vec<String>>, inputs: &[&str]) {
    if let Some(theirs) = theirs {
        assert_eq!(ours.len(), theirs.len());
        for ((a, b), input) in ours.iter().zip(&theirs).zip(inputs) {
            assert_eq!(a, b, "{input}");
        }
    }
}

/// `del map`, `set map`, `add map` and `clear map` on a 100,000-entry map answer as HAProxy's,
/// and the lookups after them see every change, through each index kind (`map` exact,
/// `map_beg` prefix, `map_end` list). How long each takes is a benchmark's business, not a
/// test's.
#[test]
fn big_map_changes_answer_like_haproxy() {
    let test = "big_map_changes_answer_like_haproxy";
    let dir = temp_dir(test);
    let map = dir.join("big.map");
    let mut text: String = (0..100_000)
        .map(|n| format!("host{n}.example.com backend_{n}\n"))
        .collect();
    text.push_str("host5.example.com second_5\nhost8.example.com second_8\n");
    std::fs::write(&map, text).expect("writing the map");
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let m = map.display();
    let config = answering(
        addr,
        "",
        &format!(
            "%[req.hdr(x-k),map({m},no)] %[req.hdr(x-k),map_beg({m},no)] \
             %[req.hdr(x-k),map_end({m},no)]"
        ),
    )
    .replace(
        "defaults\n",
        &format!("global\n  stats socket {}\ndefaults\n", sock.display()),
    );
    let commands = [
        "del map #0 host50000.example.com",
        "del map #0 host5.example.com",
        "set map #0 host7.example.com seven",
        "add map #0 new.example.com fresh",
        "del map #0 host99999.example.com",
        "clear map @1 #0",
    ];
    let keys = [
        "x-k: host50000.example.com",
        "x-k: host5.example.com",
        "x-k: host7.example.com",
        "x-k: new.example.com",
        "x-k: host99999.example.com",
        "x-k: host50001.example.com",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen = Vec::new();
        for c in commands {
            seen.push(format!("$ {c}\n{}", cli(&sock, c)));
        }
        seen.extend(bodies(a, "/", &keys));
        seen
    });
    let n = commands.len();
    assert_eq!(ours[n], "no no no", "deleted");
    assert_eq!(ours[n + 1], "no no no", "every entry of the key");
    assert_eq!(ours[n + 2], "seven seven seven");
    assert_eq!(ours[n + 3], "fresh fresh fresh");
    assert_eq!(ours[n + 5], "backend_50001 backend_50001 backend_50001");
    let labels: Vec<&str> = commands.iter().chain(&keys).copied().collect();
    compare(&ours, theirs, &labels);
}

/// IPv6 inputs looked up among IPv4 keys as `::ffff:a.b.c.d`, `::a.b.c.d` (`::1` too) and
/// 6to4 `2002:AABB:CCDD::`, IPv4 inputs among IPv6 keys as `::ffff:a.b.c.d`; the same in
/// ACL `-m ip`, whose strings are cast as HAProxy's `c_str2addr` (`010.1.2.3x`).
#[test]
fn addresses_cross_families_like_haproxy() {
    let test = "addresses_cross_families_like_haproxy";
    let dir = temp_dir(test);
    let v4 = dir.join("v4.map");
    std::fs::write(
        &v4,
        "0.0.0.0/0 any4\n10.0.0.0/8 ten\n192.168.0.0/255.255.0.255 odd\n",
    )
    .expect("writing the map");
    let v6 = dir.join("v6.map");
    std::fs::write(&v6, "::ffff:10.0.0.0/104 mapped\n2001:db8::/32 doc\n")
        .expect("writing the map");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let acls = "  acl ten req.hdr(x-ip) -m ip 10.0.0.0/8\n  acl any4 req.hdr(x-ip) -m ip 0.0.0.0/0\n\
                \x20 acl m6 req.hdr(x-ip) -m ip ::ffff:10.0.0.0/104\n\
                \x20 http-request set-var(txn.a) str(ten) if ten\n\
                \x20 http-request set-var(txn.b) str(any4) if any4\n\
                \x20 http-request set-var(txn.c) str(m6) if m6\n";
    let config = answering(
        addr,
        acls,
        &format!(
            "%[req.hdr(x-ip),map_ip({},no)] %[req.hdr(x-ip),map_ip({},no)] \
             acl=%[var(txn.a)],%[var(txn.b)],%[var(txn.c)]",
            v4.display(),
            v6.display()
        ),
    );
    let inputs = [
        "x-ip: ::1",
        "x-ip: ::",
        "x-ip: ::10.1.2.3",
        "x-ip: ::ffff:10.1.2.3",
        "x-ip: 2002:0a01:0203::",
        "x-ip: 2002:c0a8:0101:1::",
        "x-ip: 2003:0a01:0203::",
        "x-ip: ::1:10.1.2.3",
        "x-ip: 10.1.2.3",
        "x-ip: 010.9.9.9x",
        "x-ip: 2001:db8::1",
        "x-ip: ::192.168.5.1",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| bodies(a, "/", &inputs));
    assert_eq!(ours[0], "any4 no acl=,any4,");
    assert_eq!(ours[2], "ten no acl=ten,any4,");
    assert_eq!(ours[4], "ten no acl=ten,any4,");
    assert_eq!(
        ours[5], "any4 no acl=,any4,",
        "the tree before the odd masks"
    );
    assert_eq!(ours[8], "ten mapped acl=ten,any4,m6");
    assert_eq!(ours[9], "ten mapped acl=ten,any4,m6");
    compare(&ours, theirs, &inputs);
}

/// A `map_dir`/`map_dom` key made only of delimiters (`/`, `.:`) matches nothing, as in
/// HAProxy; keys holding a word still match. (HAProxy compares the byte past the sample
/// with the pattern's NUL: a header value may be followed by a 0 in its buffer, so only
/// the path, followed by a space, gives a reproducible answer.)
#[test]
fn delimiter_only_keys_never_match_like_haproxy() {
    let test = "delimiter_only_keys_never_match_like_haproxy";
    let dir = temp_dir(test);
    let dirs = dir.join("dir.map");
    std::fs::write(&dirs, "/ root\n/api/ api\n").expect("writing the map");
    let doms = dir.join("dom.map");
    std::fs::write(&doms, ".: dots\nexample.com ex\n").expect("writing the map");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = answering(
        addr,
        "",
        &format!(
            "%[path,map_dir({},none)] %[path,map_dom({},none)]",
            dirs.display(),
            doms.display()
        ),
    );
    let cases = [
        ("/", ""),
        ("/other/", ""),
        ("/a.b:", ""),
        ("/api/x/example.com:80", ""),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| bodies_of(a, &cases));
    assert_eq!(ours[..2], ["none none", "none none"]);
    assert_eq!(ours[3], "api ex");
    assert_eq!(ours[2], "none none");
    let labels: Vec<&str> = cases.iter().map(|c| c.0).collect();
    compare(&ours, theirs, &labels);
}

/// Integers beyond 64 bits saturate: in map values (file and CLI), in the string to
/// integer cast before `map_int`, in a converter's integer default; `get map` casts its
/// key as a sample (`12abc` is 12).
#[test]
fn integers_saturate_like_haproxy() {
    let test = "integers_saturate_like_haproxy";
    let dir = temp_dir(test);
    let ints = dir.join("ints.map");
    std::fs::write(
        &ints,
        "a 9223372036854775808\nb -9223372036854775808\nc 18446744073709551615\n\
         d -99999999999999999999\n",
    )
    .expect("writing the map");
    let intk = dir.join("intk.map");
    std::fs::write(&intk, "1:9 small\n10:99 medium\n100: large\n-5 minus\n")
        .expect("writing the map");
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = answering(
        addr,
        "",
        &format!(
            "%[req.hdr(x-k),map_str_int({i},9223372036854775808)] \
             %[req.hdr(x-k),map_int({k},no)] %[req.hdr(x-k),add(0)]",
            i = ints.display(),
            k = intk.display()
        ),
    )
    .replace(
        "defaults\n",
        &format!("global\n  stats socket {}\ndefaults\n", sock.display()),
    );
    let keys = [
        "x-k: a",
        "x-k: b",
        "x-k: c",
        "x-k: d",
        "x-k: zz",
        "x-k: 9223372036854775808",
        "x-k: 18446744073709551617",
        "x-k: 99999999999999999999",
        "x-k: -99999999999999999999",
        "x-k: e",
    ];
    let commands = [
        "set map #0 a 9223372036854775809",
        "add map #0 e -99999999999999999999",
        "add map #0 f 12abc",
        "get map #1 12abc",
        "get map #1 0x",
        "get map #1 99999999999999999999",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen: Vec<String> = commands
            .iter()
            .map(|c| format!("$ {c}\n{}", cli(&sock, c)))
            .collect();
        seen.extend(bodies(a, "/", &keys));
        seen
    });
    let n = commands.len();
    assert_eq!(ours[0], format!("$ {}\n\n", commands[0]));
    // `a` casts to 0, in the `-5` range (up to 5).
    assert_eq!(ours[n], "9223372036854775807 minus 0");
    assert_eq!(ours[n + 1], "-9223372036854775808 minus 0");
    assert_eq!(ours[n + 4], "9223372036854775807 minus 0", "the default");
    assert_eq!(ours[n + 6], "9223372036854775807 large 9223372036854775807");
    assert_eq!(ours[n + 9], "-9223372036854775808 minus 0");
    let labels: Vec<&str> = commands.iter().chain(&keys).copied().collect();
    compare(&ours, theirs, &labels);
}

/// `map_reg`, `map_sub` and `map_end` on 10,000 keys answer the same before and after CLI
/// changes, repeated inputs included (the lookup cache never serves a stale answer).
#[test]
fn list_maps_answer_through_changes_like_haproxy() {
    let test = "list_maps_answer_through_changes_like_haproxy";
    let dir = temp_dir(test);
    let file = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("writing the map");
        path.display().to_string()
    };
    let reg = file(
        "reg.map",
        (0..10_000).map(|n| format!("^/r{n}/ reg{n}\n")).collect(),
    );
    let sub = file(
        "sub.map",
        (0..10_000).map(|n| format!("zz{n}zz sub{n}\n")).collect(),
    );
    let end = file(
        "end.map",
        (0..10_000).map(|n| format!(".e{n} end{n}\n")).collect(),
    );
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = answering(
        addr,
        "",
        &format!("%[path,map_reg({reg},no)] %[path,map_sub({sub},no)] %[path,map_end({end},no)]"),
    )
    .replace(
        "defaults\n",
        &format!("global\n  stats socket {}\ndefaults\n", sock.display()),
    );
    let paths = ["/r5/zz7zz.e9", "/r9999/x.e1", "/nothing", "/r5/zz7zz.e9"];
    let changes = [
        format!("del map {reg} ^/r5/"),
        format!("add map {sub} 7zz early"),
        format!("set map {end} .e9 nine"),
        format!("add map {reg} ^/no new"),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let asks: Vec<(&str, &str)> = paths.iter().map(|p| (*p, "")).collect();
        let round = |seen: &mut Vec<String>| seen.extend(bodies_of(a, &asks));
        let mut seen = Vec::new();
        round(&mut seen);
        for c in &changes {
            seen.push(cli(&sock, c));
            round(&mut seen);
        }
        seen
    });
    assert_eq!(ours[0], "reg5 sub7 end9");
    assert_eq!(ours[3], ours[0], "a repeated input");
    assert_eq!(ours[5], "no sub7 end9", "deleted, not cached");
    assert_eq!(ours[15], "no sub7 nine", "changed, not cached");
    assert_eq!(ours[22], "new no no");
    let labels: Vec<&str> = ours.iter().map(|_| "step").collect();
    compare(&ours, theirs, &labels);
}

/// `#...` keys on `set map`/`del map` (only `#0x<hex>` names an element, a bad one is
/// "Malformed identifier"), a line longer than 16383 bytes cut into entries as HAProxy's
/// `fgets` cuts it, an empty mask (`10.0.0.0/`) refused, `tune.pattern.cache-size` read.
#[test]
fn small_review_items_like_haproxy() {
    let test = "small_review_items_like_haproxy";
    let dir = temp_dir(test);
    let keys = dir.join("k.map");
    std::fs::write(&keys, "#1 hashkey\nplain v\n").expect("writing the map");
    let long = dir.join("long.map");
    let long_line = format!(
        "{} v\nshort {}\nlast one\n",
        "k".repeat(20_000),
        "v".repeat(17_000)
    );
    std::fs::write(&long, long_line).expect("writing the map");
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = answering(
        addr,
        "",
        &format!(
            "%[req.hdr(x-k),map({},no)] %[req.hdr(x-k),map({},no),length]",
            keys.display(),
            long.display()
        ),
    )
    .replace(
        "defaults\n",
        &format!(
            "global\n  stats socket {}\n  tune.pattern.cache-size 5x\ndefaults\n",
            sock.display()
        ),
    );
    let commands = [
        "set map #0 #0x v",
        "set map #0 #0x1g v",
        "set map #0 #0x1 v",
        "del map #0 #0x",
        "del map #0 #0xzz",
        "del map #0 #0x1",
        "set map #0 #2 v",
        "set map #0 #1 changed",
        "get map #0 #1",
        "del map #0 #1",
        "get map #1 last",
    ];
    let inputs = ["x-k: #1", "x-k: short", "x-k: last", "x-k: kkkkk"];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen: Vec<String> = commands
            .iter()
            .map(|c| format!("$ {c}\n{}", cli(&sock, c)))
            .collect();
        seen.extend(bodies(a, "/", &inputs));
        seen
    });
    assert!(ours[0].ends_with("Malformed identifier. Please use #<id> or <file>.\n\n"));
    assert!(ours[6].ends_with("entry not found.\n\n"), "{}", ours[6]);
    let n = commands.len();
    assert_eq!(ours[n + 1], "no 16377", "the value cut with its line");
    let labels: Vec<&str> = commands.iter().chain(&inputs).copied().collect();
    compare(&ours, theirs, &labels);

    let ips = dir.join("ip.map");
    std::fs::write(&ips, "10.0.0.0/ x\n").expect("writing the map");
    let line = format!(
        "  http-request set-header X %[src,map_ip({})]",
        ips.display()
    );
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        let [ours, theirs] = check_frontend_line(&dir, 0, &line, "", "");
        assert_ne!(ours.0, 0, "refused: {:?}", ours.1);
        assert_eq!(ours, theirs);
    }
}
