//! Stick rules side by side with HAProxy 2.6, for follow-ups on stick tables: a `stick`
//! rule naming a peers section's table (`SECTION/NAME`) uses it, stores `server_id` and
//! `server_key` in it and replicates what it stores (with hapx or HAProxy on the other
//! side); a `stick store-response` condition reads the response, and of the request only
//! what HAProxy keeps once it is sent (the method), with HAProxy's warnings for the
//! others; a `non-stick` server is stored by no rule. Each test runs the same
//! configuration and traffic through hapx-proxy and then HAProxy and compares what clients
//! got, what `show table` shows (entry pointers and expiry masked) and what `-c` says.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Response, TIMEOUTS, check_alike, get, read_response, side_by_side,
};
use hapx_tests::proxy_stick::masked;
use hapx_tests::wait::eventually;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn front() -> SocketAddr {
    SocketAddr::from((LO, free_port()))
}

fn hapx() -> PathBuf {
    hapx_tests::bins::path("hapx-proxy")
}

/// A request for `path` with `headers` on a connection of its own; the response.
fn request(addr: SocketAddr, path: &str, headers: &str) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(get(path, &format!("{headers}connection: close\r\n")).as_bytes())
        .ok()?;
    read_response(&mut BufReader::new(s))
}

/// The server that answered `path`, "" if none did.
fn served(addr: SocketAddr, path: &str) -> String {
    request(addr, path, "").map_or(String::new(), |r| r.server().to_string())
}

/// `show table NAME` for each of `names`, entry pointers and expiry masked.
fn tables(socket: &Path, names: &[&str]) -> Vec<String> {
    (names.iter())
        .flat_map(|t| masked(&cli(socket, &format!("show table {t}")), 0..=i64::MAX))
        .collect()
}

/// Waits until `show table NAME` lists `entries` entries: the entries are stored as the
/// responses come, which the client may read first.
fn wait_entries(socket: &Path, name: &str, entries: usize) -> bool {
    let header = format!("used:{entries}\n");
    eventually(Duration::from_secs(5), || {
        cli(socket, &format!("show table {name}")).contains(&header)
    })
}

/// `stick` rules naming a peers section's table: `SECTION/NAME` is found (for each kind of
/// rule), a bare `NAME`, an unknown one or a key the table cannot take are refused, in
/// HAProxy's words.
#[test]
fn stick_rules_find_peers_section_tables() {
    let rules = [
        "stick on src table mypeers/t1",
        "stick match src table mypeers/t1",
        "stick store-request src table mypeers/t1",
        "stick store-response res.hdr(x) table mypeers/t1",
        "stick on src table t1",
        "stick store-response res.hdr(x) table mypeers/t9",
        "stick on method table mypeers/t1",
    ];
    for (i, rule) in rules.iter().enumerate() {
        let text = format!(
            "global\n  localpeer n0\n\
             peers mypeers\n  peer n0 127.0.0.1:{}\n  table t1 type ip size 10\n\
             defaults\n  mode http\n{TIMEOUTS}\
             backend b\n  {rule}\n  server s 127.0.0.1:1\n",
            free_port()
        );
        let (code, messages) = check_alike(&format!("stick-followups-check-{i}"), &text);
        let refused = messages.iter().any(|m| m.starts_with("ALERT"));
        assert_eq!(refused, i >= 4, "{rule}: {code} {messages:?}");
    }
}

/// A single member: `stick on src table mypeers/t1` keeps a client on the server it first
/// got, and the section's table shows `server_id` and `server_key` besides what it
/// declares, as HAProxy's.
#[test]
fn a_peers_section_table_keeps_clients() {
    let s1 = EchoServer::start("s1");
    let s2 = EchoServer::start("s2");
    let dir = temp_dir("stick-followups-peers-one");
    let socket = dir.join("stats.sock");
    let front = front();
    let config = format!(
        "global\n  localpeer n0\n  stats socket {} level admin\n\
         peers mypeers\n  peer n0 127.0.0.1:{}\n\
         \x20 table t1 type ip size 10 expire 60s store gpc0\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  default_backend b\n\
         backend b\n  balance roundrobin\n  stick on src table mypeers/t1\n\
         \x20 server s1 {}\n  server s2 {}\n",
        socket.display(),
        free_port(),
        s1.addr,
        s2.addr
    );
    let (ours, theirs) = side_by_side("stick-followups-peers-one", &config, front, |addr| {
        let first = served(addr, "/");
        assert!(wait_entries(&socket, "mypeers/t1", 1), "no entry stored");
        let later: Vec<String> = (0..3).map(|_| served(addr, "/")).collect();
        let mut shown = vec![cli(&socket, "show table")];
        shown.extend(masked(
            &cli(&socket, "show table mypeers/t1"),
            50_000..=60_000,
        ));
        (first, later, shown)
    });
    assert_eq!(ours.1, [ours.0.clone(), ours.0.clone(), ours.0.clone()]);
    let id = if ours.0 == "s1" { 1 } else { 2 };
    let entry = format!(
        "0x?: key=127.0.0.1 use=0 exp=? server_id={id} gpc0=0 server_key={}",
        ours.0
    );
    assert!(ours.2.contains(&entry), "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

/// A pair of members with a section table that a backend's `stick on src` uses.
struct Pair {
    peer: [u16; 2],
    http: [u16; 2],
}

impl Pair {
    fn new() -> Pair {
        Pair {
            peer: [free_port(), free_port()],
            http: [free_port(), free_port()],
        }
    }

    fn socket(dir: &Path, i: usize) -> PathBuf {
        dir.join(format!("n{i}.sock"))
    }

    /// Member `i`'s configuration: servers s1 and s2 at `servers`, listed in that order on
    /// n0 and the other way round on n1 (so their ids differ).
    fn config(&self, dir: &Path, i: usize, servers: [SocketAddr; 2]) -> String {
        let [s1, s2] = [
            format!("server s1 {}", servers[0]),
            format!("server s2 {}", servers[1]),
        ];
        let [first, second] = if i == 0 { [s1, s2] } else { [s2, s1] };
        format!(
            "global\n  stats socket {} level admin\n\
             peers mypeers\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             \x20 table t1 type ip size 100 expire 60s\n\
             defaults\n  mode http\n{TIMEOUTS}\
             frontend fe\n  bind 127.0.0.1:{}\n  default_backend b\n\
             backend b\n  balance roundrobin\n  stick on src table mypeers/t1\n\
             \x20 {first}\n  {second}\n",
            Self::socket(dir, i).display(),
            self.peer[0],
            self.peer[1],
            self.http[i],
        )
    }

    fn start(&self, dir: &Path, i: usize, binary: &Path, servers: [SocketAddr; 2]) -> Proxy {
        let front = SocketAddr::from((LO, self.http[i]));
        let extra = ["-L".to_string(), format!("n{i}")];
        let config = self.config(dir, i, servers);
        Proxy::start_with(binary.into(), dir, &format!("n{i}"), &config, front, &extra)
    }
}

/// What a `stick on` rule stores in a section table through member n0 reaches n1 (its
/// server's id and name), and n1 then sends the client to that server, found by its name
/// (on n1 the id names the other server, which its balancer would pick first): hapx on
/// both sides, and hapx with HAProxy each way.
#[test]
fn peers_section_stick_entries_replicate() {
    let s1 = EchoServer::start("s1");
    let s2 = EchoServer::start("s2");
    let servers = [s1.addr, s2.addr];
    let mut pairs = vec![("stick-followups-replicate-hapx", [hapx(), hapx()])];
    if hapx_tests::require::path(
        "peers_section_stick_entries_replicate",
        Path::new(HAPROXY),
        "HAProxy 2.6",
    ) {
        pairs.push((
            "stick-followups-replicate-to-haproxy",
            [hapx(), HAPROXY.into()],
        ));
        pairs.push((
            "stick-followups-replicate-from-haproxy",
            [HAPROXY.into(), hapx()],
        ));
    }
    for (test, binaries) in pairs {
        let dir = temp_dir(test);
        let pair = Pair::new();
        let _n0 = pair.start(&dir, 0, &binaries[0], servers);
        let _n1 = pair.start(&dir, 1, &binaries[1], servers);
        let n0 = SocketAddr::from((LO, pair.http[0]));
        let n1 = SocketAddr::from((LO, pair.http[1]));
        // n0's first request goes to s1 (round robin), its second stays there: the entry
        // names s1, and n1 learns it.
        assert_eq!(served(n0, "/"), "s1", "{test}");
        let want = "key=127.0.0.1 use=0 exp=? server_id=1 server_key=s1".to_string();
        let learned = || {
            let shown = tables(&Pair::socket(&dir, 1), &["mypeers/t1"]);
            shown.iter().any(|l| l.ends_with(&want))
        };
        assert!(
            eventually(Duration::from_secs(10), learned),
            "{test}: n1 has {:?}",
            tables(&Pair::socket(&dir, 1), &["mypeers/t1"])
        );
        assert_eq!([served(n1, "/"), served(n1, "/")], ["s1", "s1"], "{test}");
    }
}

/// `stick store-response` conditions: `method` reads the request's method, `res.hdr` and
/// `status` the response; the request's headers, path and cookies are gone (HAProxy warns
/// that such an ACL never matches, and it does not): `hdr()` there finds nothing, neither in
/// the request nor in the response.
#[test]
fn store_response_conditions_read_the_response() {
    let server = EchoServer::start_with("s1", "x-key: k\r\nx-store: 1\r\n");
    let dir = temp_dir("stick-followups-store-response-cond");
    let socket = dir.join("stats.sock");
    let front = front();
    let conditions = [
        "{ hdr(x-store) -m found }",
        "{ method GET }",
        "{ res.hdr(x-store) -m found }",
        "{ status 200 }",
        "{ path -m found }",
        "{ req.hdr(x-store) -m found }",
        "{ req.cook(a) -m found }",
        "named",
    ];
    let names: Vec<String> = (0..conditions.len()).map(|i| format!("t{i}")).collect();
    let rules: String = (conditions.iter().zip(&names))
        .map(|(c, t)| format!("  stick store-response res.hdr(x-key) table {t} if {c}\n"))
        .collect();
    let backends: String = (names.iter())
        .map(|t| format!("backend {t}\n  stick-table type string size 10\n"))
        .collect();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  default_backend b\n\
         backend b\n  acl named hdr(x-store) -m found\n{rules}  server s1 {}\n{backends}",
        socket.display(),
        server.addr
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (ours, theirs) = side_by_side(
        "stick-followups-store-response-cond",
        &config,
        front,
        |addr| {
            let r = request(addr, "/p", "x-store: 1\r\ncookie: a=1\r\n");
            assert_eq!(r.map(|r| r.status), Some(200));
            // The rules matching store an entry each (t1, t2, t3).
            assert!(wait_entries(&socket, "t3", 1), "nothing stored");
            tables(&socket, &names)
        },
    );
    let stored: Vec<&str> = (names.iter().copied())
        .filter(|t| {
            let header = format!("# table: {t}, type: string, size:10, used:1");
            ours.contains(&header)
        })
        .collect();
    assert_eq!(stored, ["t1", "t2", "t3"], "{ours:?}");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
    let (_, messages) = check_alike("stick-followups-store-response-warnings", &config);
    // The method stays: no warning names it.
    assert!(
        !messages.iter().any(|m| m.contains("'method'")),
        "{messages:?}"
    );
    assert_eq!(messages.len(), 5, "{messages:?}");
}

/// HAProxy's warnings for conditions using fetches a rule cannot: one per condition, for
/// the first ACL that can never match (a named one "only involves" such keywords), else the
/// first ACL with such a keyword ("involves"); the TCP rules' own words; the method and
/// `req.proto_http` usable by response rules.
#[test]
fn condition_conflicts_are_warned_as_haproxy() {
    let rules = [
        "tcp-request connection reject if mixed",
        "tcp-request connection reject if allreq",
        "tcp-request connection reject if { path /a } { url /b }",
        "tcp-request connection reject if mixed allreq",
        "http-response set-header x 1 if { method GET }",
        "http-response set-header x 1 if { path /a } || { url /b }",
        "http-response set-header x 1 if mixed allreq",
        "http-response set-header x 1 if mixed || allreq",
        "http-response set-header x 1 if mixed { path /a }",
        "http-response set-header x 1 if mixed",
    ];
    let lines: String = rules.iter().map(|r| format!("  {r}\n")).collect();
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}\
         frontend f\n  bind 127.0.0.1:{}\n\
         \x20 acl mixed src 1.2.3.4\n  acl mixed path /x\n\
         \x20 acl allreq path /y\n  acl allreq url /z\n{lines}  default_backend b\n\
         backend b\n  stick-table type string size 10\n\
         \x20 acl bmixed method GET\n  acl bmixed path /x\n\
         \x20 stick store-response res.hdr(x) if {{ req.proto_http }}\n\
         \x20 stick store-response res.hdr(x) if bmixed\n\
         \x20 server s1 127.0.0.1:1\n",
        free_port()
    );
    let (_, messages) = check_alike("stick-followups-conflicts", &text);
    let bmixed = "case.cfg:28] : acl 'bmixed' involves keywords 'path' which is incompatible with 'backend stick-store rule'";
    assert!(messages.iter().any(|m| m.ends_with(bmixed)), "{messages:?}");
    // One warning per condition, none for `method` or `req.proto_http` in response rules.
    assert_eq!(messages.len(), 10, "{messages:?}");
}

/// `non-stick` servers (on the line, or from `default-server`, which `stick` undoes) are
/// stored by no `stick on`, `store-request` or `store-response` rule: clients that reached
/// one are balanced again.
#[test]
fn non_stick_servers_are_not_stored() {
    let s1 = EchoServer::start_with("s1", "x-key: k1\r\n");
    let s2 = EchoServer::start_with("s2", "x-key: k2\r\n");
    let dir = temp_dir("stick-followups-non-stick");
    let socket = dir.join("stats.sock");
    let front = front();
    let (a1, a2) = (s1.addr, s2.addr);
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n{TIMEOUTS}\
         frontend fe\n  bind {front}\n  use_backend b2 if {{ path_beg /b2 }}\n\
         \x20 default_backend b\n\
         backend b\n  balance roundrobin\n  stick-table type ip size 10\n  stick on src\n\
         \x20 server s1 {a1} non-stick\n  server s2 {a2}\n\
         backend b2\n  balance roundrobin\n  stick-table type string size 10\n\
         \x20 stick store-request path\n  stick store-response res.hdr(x-key) table t\n\
         \x20 default-server non-stick\n  server s1 {a1}\n  server s2 {a2} stick\n\
         backend t\n  stick-table type string size 10\n",
        socket.display()
    );
    let (ours, theirs) = side_by_side("stick-followups-non-stick", &config, front, |addr| {
        let mut got = Vec::new();
        // s1 (non-stick) first: nothing stored, the next goes to s2, which is stored.
        got.push(served(addr, "/"));
        got.push(served(addr, "/"));
        assert!(wait_entries(&socket, "b", 1), "nothing stored in b");
        got.extend((0..2).map(|_| served(addr, "/")));
        for i in 1..=4 {
            got.push(served(addr, &format!("/b2/{i}")));
        }
        assert!(wait_entries(&socket, "b2", 2), "not two entries in b2");
        assert!(wait_entries(&socket, "t", 1), "not one entry in t");
        (got, tables(&socket, &["b", "b2", "t"]))
    });
    assert_eq!(
        ours.0,
        ["s1", "s2", "s2", "s2", "s1", "s2", "s1", "s2"],
        "{ours:?}"
    );
    for entry in [
        "0x?: key=127.0.0.1 use=0 exp=? server_id=2 server_key=s2",
        "0x?: key=/b2/2 use=0 exp=? server_id=2 server_key=s2",
        "0x?: key=/b2/4 use=0 exp=? server_id=2 server_key=s2",
        "0x?: key=k2 use=0 exp=? server_id=2 server_key=s2",
    ] {
        assert!(ours.1.contains(&entry.to_string()), "{entry}: {ours:?}");
    }
    assert!(
        !ours.1.iter().any(|l| l.contains("server_key=s1")),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}
