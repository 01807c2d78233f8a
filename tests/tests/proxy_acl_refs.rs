//! ACL patterns as live pattern references, hapx-proxy next to HAProxy 2.6: every ACL's
//! own patterns and each `-f` file are references numbered in one sequence with the maps,
//! a file read as a map (`-M`) is the map's reference, and the runtime API's `show|get|
//! add|del|clear|prepare|commit acl` answer word for word and change routing at once.
//! Also the ACL `-m dom` delimiters (`:` included) and `ipmask` on IPv4-mapped addresses.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, TIMEOUTS, check_text, exchange, side_by_side};
use hapx_tests::require;

/// The pattern files, by name.
const FILES: &[(&str, &str)] = &[
    // Trailing blanks are part of a pattern; a `#` after blanks is one too.
    ("paths.acl", "/a\n  /b  \n#c\n #d\n\n/e\r\n"),
    ("hosts.map", "k1.example be1\nk2.example be2\n"),
    ("nets.acl", "10.0.0.0/8\n::ffff:192.168.0.0/120\n"),
    ("ints.acl", "1:3\n10\n"),
];

fn write_files(dir: &Path) {
    for (name, text) in FILES {
        std::fs::write(dir.join(name), text).expect("writing a pattern file");
    }
}

/// Entry addresses are pointers in HAProxy: only their form is compared. Each side reads
/// its own copy of the configuration. HAProxy's own `httpclient` proxy adds two ACLs of
/// its own after the configuration's (when a default resolver exists): hapx has no such
/// proxy, so they are left out.
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

/// The configuration of the command tests: ACLs of every kind ahead of a map converter.
fn config(dir: &Path, sock: &Path, addr: SocketAddr) -> String {
    let f = |n: &str| dir.join(n).display().to_string();
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 acl a1 path_beg -f {paths}\n\
         \x20 acl a2 path -i /X /Y\n\
         \x20 acl a3 req.hdr(host) -M -f {hosts}\n\
         \x20 acl a4 req.hdr_ip(x-ip) -f {nets} 127.0.0.1\n\
         \x20 acl a5 req.hdr_val(x-n) gt 5 le 3 7:9\n\
         \x20 acl a6 req.hdr_val(x-n) -f {ints}\n\
         \x20 acl a7 req.hdr(x-d) -m dom example.com\n\
         \x20 acl a8 req.hdr_ip(x-ip) 10.0.0.0/255.0.255.0\n\
         \x20 http-request set-header x-map %[req.hdr(host),map({hosts},none)]\n\
         \x20 http-request set-var(txn.a1) str(1) if a1\n\
         \x20 http-request set-var(txn.a2) str(1) if a2\n\
         \x20 http-request set-var(txn.a3) str(1) if a3\n\
         \x20 http-request set-var(txn.a4) str(1) if a4\n\
         \x20 http-request set-var(txn.a5) str(1) if a5\n\
         \x20 http-request set-var(txn.a6) str(1) if a6\n\
         \x20 http-request set-var(txn.a7) str(1) if a7 || {{ path_end .php }}\n\
         \x20 http-request set-var(txn.a8) str(1) if a8\n\
         \x20 http-request set-var(txn.lh) str(1) if LOCALHOST\n\
         \x20 http-request return status 200 content-type text/plain lf-string \
         \"%[var(txn.a1)],%[var(txn.a2)],%[var(txn.a3)],%[var(txn.a4)],%[var(txn.a5)],\
         %[var(txn.a6)],%[var(txn.a7)],%[var(txn.a8)],%[var(txn.lh)],%[req.hdr(x-map)]\"\n",
        sock.display(),
        paths = f("paths.acl"),
        hosts = f("hosts.map"),
        nets = f("nets.acl"),
        ints = f("ints.acl"),
    )
}

/// Which ACLs a request matches, as the frontend reports them.
fn ask(addr: SocketAddr, path: &str, host: &str, extra: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n");
    exchange(addr, &[req])
        .into_iter()
        .flatten()
        .map(|r| r.body)
        .collect()
}

/// The requests asked after each command: each ACL on both sides of its patterns.
fn probes(addr: SocketAddr) -> String {
    [
        ask(addr, "/a/x", "k1.example", "x-ip: 10.1.1.1\r\nx-n: 6\r\n"),
        ask(
            addr,
            "/b",
            "K2.example",
            "x-ip: ::ffff:192.168.0.9\r\nx-n: 2\r\n",
        ),
        ask(
            addr,
            "/b  /x",
            "new.example",
            "x-ip: 127.0.0.1\r\nx-n: 8\r\n",
        ),
        ask(addr, "/q/x", "k3.example", "x-ip: 11.0.0.1\r\nx-n: 4\r\n"),
        ask(
            addr,
            "/y",
            "x",
            "x-d: www.example.com:8080\r\nx-ip: 10.5.0.7\r\nx-n: 10\r\n",
        ),
        ask(addr, "/z.php", "x", "x-d: example.community\r\nx-n: 11\r\n"),
        ask(addr, "/n", "x", "x-ip: 172.16.0.1\r\nx-n: 42\r\n"),
    ]
    .join("|")
}

const COMMANDS: &[&str] = &[
    "show acl",
    "show map",
    "show acl #0",
    "show acl #1",
    "show acl #2",
    "show acl #3",
    "show acl #5",
    "show acl #7",
    "show acl #8",
    "show acl #10",
    "show acl #11",
    "show acl #99",
    "show map #0",
    "get acl #0 /a/x",
    "get acl #0 /zz",
    "get acl #2 /x",
    "get acl #3 k1.example",
    "get map #3 k1.example",
    "get acl #5 10.1.1.1",
    "get acl #5 ::ffff:10.1.1.1",
    "get acl #7 8",
    "get acl #7 4",
    "get acl #10 www.example.com:80",
    "get acl #99 x",
    "get acl",
    "get acl #0",
    "add acl #0 /n",
    "show acl #0",
    "add acl #7 zz",
    "add acl #7 eq",
    "add acl #7 40:50",
    "add acl #3 k3.example",
    "add map #3 k3.example be3",
    "add acl #5 300.1.1.1",
    "add acl #5 172.16.0.0/12",
    "add acl #2 /Z",
    "get acl #2 /z",
    "add acl",
    "add acl #0",
    "add acl #99 x",
    "add acl @1 #0 /q",
    "prepare acl #0",
    "add acl @1 #0 /q",
    "show acl @1 #0",
    "get acl #0 /q/x",
    "commit acl @1 #0",
    "commit acl #0",
    "commit acl",
    "commit acl @1",
    "commit acl @5 #0",
    "commit acl @1 #99",
    "show acl #0",
    "del acl #0 /q",
    "del acl #0 /q",
    "del acl #0",
    "del acl",
    "del acl #0 #0x1",
    "del acl #0 #zz",
    "del acl #0 #0xzz",
    "del acl #10 example.com",
    "clear acl #6",
    "clear acl",
    "clear acl #99",
    "prepare acl",
    "prepare acl #99",
    "show acl",
    "show map",
];

/// The runtime API's ACL commands: answers and their effect on routing, as HAProxy's.
#[test]
fn acl_commands_answer_and_route_like_haproxy() {
    let test = "acl_commands_answer_and_route_like_haproxy";
    let dir = temp_dir(test);
    write_files(&dir);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = config(&dir, &sock, addr);
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen = vec![probes(a)];
        for c in COMMANDS {
            seen.push(format!("$ {c}\n{}", mask(&cli(&sock, c))));
            seen.push(probes(a));
        }
        seen
    });
    // The first probes, before any change: each ACL's file and own patterns.
    let first: Vec<&str> = ours[0].split('|').collect();
    assert_eq!(first[0], "1,,1,1,1,,,,1,be1", "{ours:?}");
    assert_eq!(first[1], ",,,1,1,1,,,1,none");
    // `-m dom` delimits with ':'; a mask that is not a prefix matches.
    assert_eq!(first[4], ",1,,1,1,1,1,1,1,none");
    // A change through the ACL's name is seen by the map on the same file.
    let after = |cmd: &str| {
        let at = COMMANDS.iter().position(|c| *c == cmd).expect("a command");
        ours[2 + 2 * at].clone()
    };
    assert!(
        after("add map #3 k3.example be3").contains(",be3"),
        "{ours:?}"
    );
    assert!(
        after("add acl #0 /n")
            .split('|')
            .nth(6)
            .is_some_and(|p| p.starts_with('1'))
    );
    if let Some(theirs) = theirs {
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "hapx-proxy, then HAProxy");
        }
        assert_eq!(ours.len(), theirs.len());
    }
}

/// `show map` numbers maps after the ACLs written before them, as HAProxy does.
#[test]
fn show_map_ids_follow_the_acls_before() {
    let test = "show_map_ids_follow_the_acls_before";
    let dir = temp_dir(test);
    write_files(&dir);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let hosts = dir.join("hosts.map").display().to_string();
    let config = format!(
        "global\n  stats socket {} level user\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 acl a path /x /y\n  acl b path_beg /z\n\
         \x20 http-request return status 200 hdr x-m %[req.hdr(host),map({hosts},none)] if a || b\n",
        sock.display()
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |_| {
        ["show map", "show acl", "get map #2 k1.example"]
            .map(|c| mask(&cli(&sock, c)))
            .join("\n")
    });
    assert!(ours.contains("\n2 ("), "{ours}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Pattern files read one way only, `-m` after a file, files that do not open: HAProxy's
/// `-c` messages.
#[test]
fn acl_file_errors_read_like_haproxys() {
    let test = "acl_file_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    write_files(&dir);
    std::fs::write(dir.join("bad.acl"), "10\nx\n").expect("writing a pattern file");
    let f = |n: &str| dir.join(n).display().to_string();
    let frontend = |lines: &str| {
        format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{lines}\
             \x20 default_backend b\nbackend b\n  server s 127.0.0.1:1\n"
        )
    };
    let cases = [
        format!(
            "  http-request set-header x %[path,map({m})]\n  acl a path -f {m}\n",
            m = f("hosts.map")
        ),
        format!(
            "  acl a path -f {m}\n  http-request set-header x %[path,map({m})]\n",
            m = f("paths.acl")
        ),
        format!("  acl a path -f {} -m beg\n", f("paths.acl")),
        format!("  acl a path -f {}\n", f("missing.acl")),
        format!("  acl a req.hdr_val(x) -f {}\n", f("bad.acl")),
        format!("  acl a req.hdr_val(x) -m int -f {}\n", f("paths.acl")),
        "  acl a src 10.0.0.0/\n  acl b src 10.0.0.0/255.0.255.0\n".to_string(),
        "  acl a req.hdr_val(x) -5\n  acl b req.hdr_val(x) -\n  acl c req.hdr_val(x) -- -5\n"
            .to_string(),
        format!(
            "  acl a path -M -f {m}\n  http-request set-header x %[path,map({m})]\n  http-request deny if a\n",
            m = f("hosts.map")
        ),
    ];
    for (i, lines) in cases.iter().enumerate() {
        let [ours, theirs] = check_text(&dir, i, &frontend(lines));
        assert_eq!(ours, theirs, "{lines:?}");
    }
}

/// `ipmask` of an IPv4-mapped IPv6 address masks its IPv4 form, as HAProxy's.
#[test]
fn ipmask_takes_mapped_addresses_as_ipv4() {
    let test = "ipmask_takes_mapped_addresses_as_ipv4";
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \
         \"%[req.hdr(x-ip),ipmask(24)]|%[req.hdr(x-ip),ipmask(24,64)]\"\n"
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        ["::ffff:10.1.2.3", "::10.1.2.3", "2001:db8::1", "10.9.8.7"]
            .map(|ip| ask(a, "/", "x", &format!("x-ip: {ip}\r\n")))
            .join("\n")
    });
    assert!(ours.starts_with("10.1.2.0|10.1.2.0\n"), "{ours}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// ACLs and maps reading one file the same way (HAProxy's parse and index functions, flags
/// and output: `sub`/`end`, `int`/`len`) share one expression of its reference: one line of
/// `get acl|map` and one count of each entry, the others each their own.
#[test]
fn one_expression_per_way_of_reading_like_haproxy() {
    let test = "one_expression_per_way_of_reading_like_haproxy";
    let dir = temp_dir(test);
    std::fs::write(dir.join("w.acl"), "abc\n.php\n").expect("writing a pattern file");
    std::fs::write(dir.join("n.acl"), "3\n4:\n").expect("writing a pattern file");
    std::fs::write(dir.join("w.map"), "abc sub\n.php end\n").expect("writing a map");
    let f = |n: &str| dir.join(n).display().to_string();
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 acl a path_sub -f {w}\n  acl b path_end -f {w}\n  acl c path_sub -i -f {w}\n\
         \x20 acl d req.hdr(x) -m len -f {n}\n  acl e req.hdr_val(x) -f {n}\n\
         \x20 http-request set-header x-s %[path,map_sub({m},none)]\n\
         \x20 http-request set-header x-e %[path,map_end({m},none)]\n\
         \x20 http-request return status 200 content-type text/plain lf-string \
         \"%[req.hdr(x-s)],%[req.hdr(x-e)]\" if a || b || c || d || e\n",
        sock.display(),
        w = f("w.acl"),
        n = f("n.acl"),
        m = f("w.map"),
    );
    let commands = [
        "show acl",
        "show map",
        "get acl #0 xabcx",
        "get acl #0 ABC",
        "get acl #4 3",
        "get acl #4 abcd",
        "get map #7 x.php",
        "get map #7 /abc/x.php",
        "add acl #0 .PHP",
        "get acl #0 X.PHP",
        "show acl",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let mut seen: Vec<String> = commands
            .iter()
            .map(|c| format!("$ {c}\n{}", mask(&cli(&sock, c))))
            .collect();
        // One input through both converters would show HAProxy's cache shared by `sub`
        // and `end` on one expression (the second gets the first's answer), which hapx
        // keeps apart: each input goes through one of them only.
        seen.push(ask(a, "/x.php", "x", "x: 12\r\n"));
        seen.push(ask(a, "/abc", "x", ""));
        seen.push(ask(a, "/ABC", "x", ""));
        seen
    });
    assert!(ours[0].contains("entry_cnt=4"), "{}", ours[0]);
    let n = commands.len();
    assert_eq!(ours[n..], ["end,end", "sub,sub", "none,none"]);
    if let Some(theirs) = theirs {
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "hapx-proxy, then HAProxy");
        }
    }
}

/// Every kind of rule condition makes its anonymous and predefined ACLs' references in the
/// order HAProxy does: the same `show acl`.
#[test]
fn conditions_of_every_rule_number_like_haproxy() {
    let test = "conditions_of_every_rule_number_like_haproxy";
    let dir = temp_dir(test);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 acl x path /x\n\
         \x20 tcp-request content accept if {{ dst_port gt 0 }} || HTTP\n\
         \x20 monitor-uri /mon\n  monitor fail if {{ nbsrv(be) lt 1 }}\n\
         \x20 http-request deny if {{ path_beg /deny }} !x\n\
         \x20 http-request redirect location /y if {{ path /r }} METH_GET\n\
         \x20 http-response set-header x-a b if {{ status 200 }}\n\
         \x20 http-after-response set-header x-b c unless {{ status 404 }}\n\
         \x20 use_backend be if {{ hdr(host) -i a.example }}\n\
         \x20 default_backend be\n\
         backend be\n  stick-table type ip size 10\n  stick on src if {{ src 10.0.0.0/8 }}\n\
         \x20 use-server s1 if {{ path_end .x }}\n  server s1 127.0.0.1:1\n",
        sock.display()
    );
    let (ours, theirs) = side_by_side(test, &config, addr, |_| mask(&cli(&sock, "show acl")));
    assert_eq!(ours.lines().count(), 13, "{ours}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
