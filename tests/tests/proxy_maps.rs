//! Maps, hapx-proxy next to HAProxy 2.6: the `map*` converters on files written here
//! (every match type, integer and address outputs, defaults, the file's syntax), requests
//! routed by a map, the runtime API's map commands changing lookups live (answers compared
//! word for word), and broken map files and arguments refused with HAProxy's messages.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_frontend_line, exchange, get, side_by_side,
};
use hapx_tests::require;

/// Map files, by name: each match type's edge cases.
const FILES: &[(&str, &str)] = &[
    (
        "hosts.map",
        "# routing by host\n  api.example   be_api  \n\nwww.example\tbe_www\n#x.example be_no\n \
         #y.example be_y\nempty.example\nwww.example be_second\n",
    ),
    ("beg.map", "/api be_api\n/api/v2 be_v2\n/a be_a\n"),
    ("sub.map", "admin first\nmin second\n"),
    ("dir.map", "img images\n/static/css/ css\n"),
    ("dom.map", "example.com dom\nexample.org:80 org\n"),
    ("end.map", ".jpg image\n.html page\n"),
    ("reg.map", "^/v[0-9]+/ versioned\n^/u(ser)?s/ users\n"),
    (
        "regm.map",
        "^/u/([a-z]+)/([0-9]+) user=\\1,id=\\2\n^/g/(.*) group:\\1\n",
    ),
    ("int.map", "1:9 small\n10:99 medium\n100: large\n-5 minus\n"),
    (
        "ip.map",
        "10.0.0.0/8 ten\n10.1.0.0/16 ten-one\n10.1.2.3 host\n127.0.0.0/8 loop\n2001:db8::/32 doc6\n192.168.0.0/255.255.0.255 odd\n",
    ),
    ("vals.map", "a 42\nb -7\nc +3\n"),
    ("ips.map", "a 192.0.2.1\nb 2001:db8::5\nc 01.2.3.4/24 x\n"),
];

fn write_files(dir: &Path) {
    for (name, text) in FILES {
        std::fs::write(dir.join(name), text).expect("writing a map file");
    }
}

/// The expressions rendered, one a line, for each request.
fn expressions(dir: &Path) -> Vec<String> {
    let f = |n: &str| dir.join(n).display().to_string();
    [
        format!("%[req.hdr(host),lower,map({},none)]", f("hosts.map")),
        format!("%[req.hdr(host),map_str({})]", f("hosts.map")),
        format!("%[path,map_beg({},nobeg)]", f("beg.map")),
        format!("%[path,map_sub({},nosub)]", f("sub.map")),
        format!("%[path,map_dir({},nodir)]", f("dir.map")),
        format!("%[req.hdr(host),map_dom({},nodom)]", f("dom.map")),
        format!("%[path,map_end({},noend)]", f("end.map")),
        format!("%[path,map_reg({},noreg)]", f("reg.map")),
        format!("%[path,map_regm({},noregm)]", f("regm.map")),
        format!("%[req.hdr(x-n),map_int({},noint)]", f("int.map")),
        format!("%[req.hdr(x-ip),map_ip({},noip)]", f("ip.map")),
        format!("%[src,map_ip({},noip)]", f("ip.map")),
        format!("%[req.hdr(x-k),map_str_int({},5),add(1)]", f("vals.map")),
        format!("%[req.hdr(x-k),map_str_int({})]", f("vals.map")),
        format!("%[req.hdr(x-k),map_str_ip({},10.9.9.9)]", f("ips.map")),
        format!("%[req.hdr(x-k),map_str_ip({},::1)]", f("ips.map")),
        format!(
            "%[req.hdr(x-ip),map_ip_int({},0)]",
            f("ip.map").replace("ip.map", "vals-ip.map")
        ),
    ]
    .into()
}

fn requests() -> Vec<String> {
    let req = |host: &str, path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}\r\n")
    };
    vec![
        req(
            "API.example",
            "/api/v2/x.jpg",
            "x-n: 5\r\nx-ip: 10.1.2.3\r\nx-k: a\r\n",
        ),
        req(
            "www.example",
            "/static/css/site.html",
            "x-n: 100\r\nx-ip: 10.1.9.9\r\nx-k: b\r\n",
        ),
        req(
            "example.com",
            "/u/bob/42",
            "x-n: -5\r\nx-ip: 10.200.0.1\r\nx-k: c\r\n",
        ),
        req(
            "www.example.com:8080",
            "/v12/admin/img",
            "x-n: 0\r\nx-ip: 2001:db8:1::9\r\nx-k: zz\r\n",
        ),
        req(
            "example.org",
            "/usrs/img/x",
            "x-n: abc\r\nx-ip: ::ffff:127.0.0.9\r\n",
        ),
        req(
            "myexample.com",
            "/apix/g/all/of/it",
            "x-ip: 192.168.7.0\r\n",
        ),
        req("empty.example", "/aimg", "x-n: 12\r\nx-ip: 010.1.2.3x\r\n"),
    ]
}

/// Every match type, the outputs and the defaults: the same bodies as HAProxy's.
#[test]
fn map_converters_render_like_haproxy() {
    let test = "map_converters_render_like_haproxy";
    let dir = temp_dir(test);
    write_files(&dir);
    std::fs::write(dir.join("vals-ip.map"), "10.0.0.0/8 8\n10.1.2.3 32\n")
        .expect("writing a map file");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let body: Vec<String> = expressions(&dir)
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i}={e}"))
        .collect();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"{}\\n\"\n",
        body.join("\\n")
    );
    let requests = requests();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        exchange(a, &requests)
            .into_iter()
            .map(|r| r.map(|r| r.body).unwrap_or_default())
            .collect::<Vec<_>>()
    });
    assert_eq!(ours.len(), requests.len(), "{ours:?}");
    let first: Vec<&str> = ours[0].lines().collect();
    assert_eq!(first[0], "0=be_api");
    assert_eq!(first[1], "1=", "map without default");
    assert_eq!(first[2], "2=be_v2", "the longest prefix");
    assert_eq!(first[9], "9=small");
    assert_eq!(first[10], "10=host", "the longest network");
    assert_eq!(first[12], "12=43");
    let second: Vec<&str> = ours[1].lines().collect();
    assert_eq!(second[1], "1=be_www", "the first of two equal keys");
    assert_eq!(second[4], "4=css");
    assert_eq!(second[10], "10=ten-one");
    let third: Vec<&str> = ours[2].lines().collect();
    assert_eq!(third[8], "8=user=bob,id=42");
    if let Some(theirs) = theirs {
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            for (la, lb) in a.lines().zip(b.lines()) {
                assert_eq!(la, lb, "request {i}");
            }
            assert_eq!(a, b, "request {i}");
        }
    }
}

/// Requests routed by host through a map reach the backends HAProxy sends them to.
#[test]
fn maps_route_like_haproxy() {
    let test = "maps_route_like_haproxy";
    let dir = temp_dir(test);
    write_files(&dir);
    let hosts = dir.join("hosts.map");
    let names = ["be_api", "be_www", "be_default"];
    let servers: Vec<EchoServer> = names.iter().map(|n| EchoServer::start(n)).collect();
    let backends: String = names
        .iter()
        .zip(&servers)
        .map(|(n, s)| format!("backend {n}\n  server s {}\n", s.addr))
        .collect();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 acl api req.hdr(host),lower,map({m},be_default) -m str be_api\n\
         \x20 acl www req.hdr(host),lower,map({m},be_default) -m str be_www\n\
         \x20 use_backend be_api if api\n  use_backend be_www if www\n\
         \x20 default_backend be_default\n{backends}",
        m = hosts.display()
    );
    let requests: Vec<String> = [
        "API.Example",
        "www.example",
        "other.example",
        "empty.example",
    ]
    .iter()
    .map(|h| format!("GET / HTTP/1.1\r\nhost: {h}\r\n\r\n"))
    .collect();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        exchange(a, &requests)
            .into_iter()
            .map(|r| r.map(|r| r.server().to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
    });
    assert_eq!(ours, ["be_api", "be_www", "be_default", "be_default"]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// The runtime API's map commands: answers and their effect on the next lookups, as
/// HAProxy's. Entry addresses are HAProxy's pointers, so only their form is compared;
/// the description of `show map` is compared up to its "used by" list (see the report).
#[test]
fn map_commands_answer_like_haproxy() {
    let test = "map_commands_answer_like_haproxy";
    let dir = temp_dir(test);
    write_files(&dir);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let hosts = dir.join("hosts.map").display().to_string();
    let ips = dir.join("ip.map").display().to_string();
    let config = format!(
        "global\n  stats socket {} level user\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 hdr x-host %[req.hdr(host),map({hosts},def)] \
         hdr x-beg %[req.hdr(host),map_beg({hosts},def)] hdr x-ip %[req.hdr(x-ip),map_ip({ips},def)]\n",
        sock.display()
    );
    let commands: Vec<String> = [
        "show map",
        &format!("show map {hosts}"),
        "show map #1",
        "show map #7",
        "show map /nowhere",
        &format!("get map {hosts} api.example"),
        &format!("get map {hosts} api.examplex"),
        "get map #1 10.1.2.3",
        "get map #1 10.1.2.4",
        "get map #1 1.1.1.1",
        "get map #1 10.1.2.3x",
        "get map #1 abc",
        "get map #1 ::ffff:10.1.2.3",
        "get map #1 192.168.9.0",
        "show map #1 extra",
        "get map #0",
        "get map",
        &format!("add map {hosts} new.example be_new extra"),
        &format!("add map {hosts} new.example be_dup"),
        &format!("get map {hosts} new.example"),
        "add map #1 bad v",
        "add map #1 192.168.0.0/16 lan",
        "add map #1",
        "add map #1 k",
        &format!("set map {hosts} new.example be_set"),
        &format!("set map {hosts} nokey v"),
        "set map #0 #0x1 v",
        "set map #0",
        "show map",
        &format!("del map {hosts} nokey"),
        "del map #0",
        "del map #0 www.example",
        &format!("show map {hosts}"),
        "show map",
        "clear map",
        "clear map #9",
        "add map #9 a b",
        "set map #9 a b",
        "del map #9 a",
        "get map #9 a",
        "commit map @0 #0",
        "commit map #0",
        "commit map @1",
        "prepare map",
        "prepare map #0",
        "prepare map #0",
        "add map @1 #0 v1.example one",
        "add map @2 #0 v2.example two",
        "add map @9 #0 v9.example nine",
        "add map @ #0 v0.example zero",
        "show map @1 #0",
        "show map @2 #0",
        "show map @",
        "show map",
        "get map #0 v1.example",
        "set map #0 v1.example uno",
        "del map #0 v2.example",
        "show map @2 #0",
        "clear map @5 #0",
        "commit map @1 #0",
        "show map #0",
        "get map #0 v1.example",
        "show map",
        "commit map @1 #0",
        "add map @2 #0 v2.example dos",
        "commit map @2 #0",
        "show map #0",
        "show map @1 #0",
        "show map",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    let mask = |answer: String| -> String {
        answer
            .lines()
            .map(|l| match l.split_once(' ') {
                Some((ptr, rest)) if ptr.starts_with("0x") => format!("<ptr> {rest}"),
                _ => match l.split_once(" used by ") {
                    Some((head, tail)) => {
                        format!(
                            "{head} used by <uses>. curr_ver{}",
                            tail.split_once(". curr_ver").map_or("", |(_, t)| t)
                        )
                    }
                    None => l.to_string(),
                },
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ask = |host: &str, ip: &str| {
        let req =
            format!("GET / HTTP/1.1\r\nhost: {host}\r\nx-ip: {ip}\r\nconnection: close\r\n\r\n");
        exchange(addr, &[req])
            .into_iter()
            .flatten()
            .map(|r| {
                ["x-host", "x-beg", "x-ip"]
                    .map(|h| r.header(h).unwrap_or("-").to_string())
                    .join(",")
            })
            .collect::<String>()
    };
    let (ours, theirs) = side_by_side(test, &config, addr, |_| {
        let mut seen = vec![ask("new.example", "192.168.1.1")];
        for c in &commands {
            seen.push(format!("$ {c}\n{}", mask(cli(&sock, c))));
            seen.push(ask("new.exampleZ", "192.168.1.1"));
        }
        for c in ["clear map #1", "clear map #0", "show map"] {
            seen.push(format!("$ {c}\n{}", mask(cli(&sock, c))));
        }
        seen.push(ask("www.example", "10.1.2.3"));
        seen
    });
    assert_eq!(ours[0], "def,def,def");
    let after = |cmd: &str| {
        let at = commands
            .iter()
            .position(|c| c.starts_with(cmd))
            .expect("a command");
        ours[2 + 2 * at].clone()
    };
    assert_eq!(
        after("add map #1 192.168"),
        "def,be_new,lan",
        "changes apply at once"
    );
    assert_eq!(after("set map /"), "def,be_set,lan");
    assert_eq!(ours.last().map(String::as_str), Some("def,def,def"));
    assert!(ours[1].contains("Unknown map identifier") || ours[1].contains("# id (file)"));
    if let Some(theirs) = theirs {
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b);
        }
        assert_eq!(ours.len(), theirs.len());
    }
}

/// Broken map files and arguments: HAProxy's `-c` messages, word for word.
#[test]
fn map_errors_read_like_haproxys() {
    let test = "map_errors_read_like_haproxys";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir(test);
    write_files(&dir);
    let bad = [
        ("badint.map", "1 a\nx b\n"),
        ("badval.map", "a 1\nb 2x\n"),
        ("badip.map", "10.0.0.0/8 a\n\n# c\nfoo.example b\n"),
        ("badreg.map", "ok a\na(b x\n"),
        ("range1.map", "1:2 a\n5:1 b\n"),
        ("range2.map", "- a\n"),
        ("range3.map", "+5 a\n"),
        ("range4.map", "-5: a\n"),
        ("badipval.map", "a 1.2.3.4.\n"),
    ];
    for (name, text) in bad {
        std::fs::write(dir.join(name), text).expect("writing a map file");
    }
    let f = |n: &str| dir.join(n).display().to_string();
    let cases = [
        format!(
            "  http-request set-header X %[path,map({})]",
            f("missing.map")
        ),
        "  http-request set-header X %[path,map()]".to_string(),
        "  http-request set-header X %[path,map]".to_string(),
        format!(
            "  http-request set-header X %[path,map_str_ip({}),ipmask(24)]",
            f("ips.map")
        ),
        format!(
            "  http-request set-header X %[path,map_int({})]",
            f("badint.map")
        ),
        format!(
            "  http-request set-header X %[path,map_str_int({})]",
            f("badval.map")
        ),
        format!(
            "  http-request set-header X %[src,map_ip({})]",
            f("badip.map")
        ),
        format!(
            "  http-request set-header X %[path,map_reg({})]",
            f("badreg.map")
        ),
        format!(
            "  http-request set-header X %[path,map_str_int({},abc)]",
            f("vals.map")
        ),
        format!(
            "  http-request set-header X %[path,map_str_ip({},abc)]",
            f("ips.map")
        ),
        format!(
            "  http-request set-header X %[path,map_str_ip({},abc)]",
            f("hosts.map")
        ),
        format!(
            "  http-request set-header X %[path,map_rege({})]",
            f("hosts.map")
        ),
        format!(
            "  http-request set-header X %[path,map_regm_int({})]",
            f("regm.map")
        ),
        format!(
            "  http-request set-header X %[path,map_str_str({})]",
            f("hosts.map")
        ),
        format!(
            "  http-request set-header X %[path,map_beg({m})]\n  http-request set-header Y %[path,map_str_int({m})]",
            m = f("hosts.map")
        ),
        format!(
            "  acl a path,map_int({}) -m found\n  http-request deny if a",
            f("badint.map")
        ),
    ];
    let ranges = ["range1.map", "range2.map", "range3.map", "range4.map"].map(|m| {
        format!(
            "  http-request set-header X %[req.hdr(x),map_int({})]",
            f(m)
        )
    });
    let ip_value = format!(
        "  http-request set-header X %[req.hdr(x),map_str_ip({},1.2.3.4)]",
        f("badipval.map")
    );
    let cases = cases.into_iter().chain(ranges).chain([ip_value]);
    for (i, line) in cases.enumerate() {
        let [ours, theirs] = check_frontend_line(&dir, i, &line, "", "");
        assert_eq!(ours, theirs, "{line:?}");
    }
}

/// A map shared by two converters is one map: a change made through one name shows in
/// both lookups (checked on hapx alone: the side-by-side test covers HAProxy's answers).
#[test]
fn one_file_is_one_map() {
    let test = "one_file_is_one_map";
    let dir = temp_dir(test);
    write_files(&dir);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let hosts = dir.join("hosts.map").display().to_string();
    let config = format!(
        "global\n  stats socket {}\ndefaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 hdr a %[req.hdr(host),map({hosts},def)] \
         hdr b %[req.hdr(host),map_end({hosts},def)]\n",
        sock.display()
    );
    let _p = hapx_tests::proxy::Proxy::start(&dir, "hapx", &config, addr);
    let list = cli(&sock, "show map");
    assert_eq!(list.lines().count(), 3, "{list}");
    cli(&sock, "add map #0 .test shared");
    let got = exchange(addr, &[get("/", "").replace("test.example", "x.test")]);
    let r = got[0].as_ref().expect("a response");
    assert_eq!(
        (r.header("a"), r.header("b")),
        (Some("def"), Some("shared"))
    );
}

/// Sends `text` as it is on a new session of the UNIX socket at `path`; the whole answer,
/// entry addresses masked.
fn cli_raw(path: &Path, text: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connecting to the socket");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    s.write_all(text.as_bytes()).expect("sending the commands");
    s.shutdown(std::net::Shutdown::Write).ok();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    // An interactive session's first entry follows its prompt.
    let masked: Vec<String> = (out.split('\n'))
        .map(|l| {
            let (prompt, l) = l.split_at(if l.starts_with("> ") { 2 } else { 0 });
            match l.split_once(' ') {
                Some((ptr, rest)) if ptr.starts_with("0x") => format!("{prompt}<ptr> {rest}"),
                _ => format!("{prompt}{l}"),
            }
        })
        .collect();
    masked.join("\n")
}

/// `add map MAP <<` and its payload (a `key value` a line up to an empty line): entries
/// added in order, HAProxy's reading of lines without a value, of an empty payload and of
/// words before `<<`, and the `+ ` prompts of an interactive session; then looked up.
#[test]
fn map_payload_adds_like_haproxy() {
    let test = "map_payload_adds_like_haproxy";
    let dir = temp_dir(test);
    write_files(&dir);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let hosts = dir.join("hosts.map").display().to_string();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request return status 200 hdr x-host %[req.hdr(host),map({hosts},def)]\n",
        sock.display()
    );
    let sessions = [
        "add map #0 <<\nk1.example v1\nk2.example \t v2 with spaces\n\n",
        "add map #0 <<\nk3\nk4 v4\n\n",
        "add map #0 k5 <<\nv5\n\n",
        "add map #0 <<\n\n",
        "add map <<\nx y\n\n",
        "add map #9 <<\nx y\n\n",
        "prompt\nadd map #0 <<\nk6.example v6\n\nshow map #0\n",
        "show map #0\n",
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |_| {
        let answers: Vec<String> = sessions.iter().map(|s| cli_raw(&sock, s)).collect();
        let ask = |host: &str| {
            let req = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
            exchange(addr, &[req])
                .into_iter()
                .flatten()
                .map(|r| r.header("x-host").unwrap_or("-").to_string())
                .collect::<String>()
        };
        let lookups: Vec<String> = ["k1.example", "k2.example", "k6.example", "k5"]
            .iter()
            .map(|h| ask(h))
            .collect();
        (answers, lookups)
    });
    assert_eq!(ours.1, ["v1", "v2 with spaces", "v6", "def"]);
    assert_eq!(ours.0[2], "Missing value for key 'v5'.\n\n");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `show map` names each converter's line in its map's description, in the order they
/// were read, as HAProxy does (rule converters here; `proxy_acl_refs` numbers ACL
/// patterns and maps in one sequence).
#[test]
fn show_map_names_converter_lines_like_haproxy() {
    let test = "show_map_names_converter_lines_like_haproxy";
    let dir = temp_dir(test);
    write_files(&dir);
    let sock = dir.join("stats.sock");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let hosts = dir.join("hosts.map").display().to_string();
    let beg = dir.join("beg.map").display().to_string();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request set-header x-a %[req.hdr(host),map({hosts},none)]\n\
         \x20 http-request set-header x-b %[path,map_beg({beg},none)]\n\
         \x20 http-request return status 200 hdr x-c %[req.hdr(host),map_beg({hosts},none)]\n\
         frontend other\n  bind 127.0.0.1:{}\n\
         \x20 http-request return status 200 hdr x-d %[req.hdr(host),map({hosts},none)]\n",
        sock.display(),
        free_port()
    );
    // Each side reads its own copy of the configuration.
    let answer = |_| cli(&sock, "show map").replace("/haproxy.cfg'", "/hapx.cfg'");
    let (ours, theirs) = side_by_side(test, &config, addr, answer);
    let lines: Vec<&str> = ours.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{ours}");
    assert!(
        lines[1].contains("line 10, by map at file") && lines[1].contains("line 15."),
        "{ours}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
